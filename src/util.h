/* SPDX-License-Identifier: ISC */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

uint64_t	 util_now_ms(void);
int64_t		 util_wall_us(void);
void		 util_iso8601(char *, size_t, int64_t);
int		 util_parse_iso8601(const char *, int64_t *);
void		 util_random_hex(char *, size_t);
char		*util_read_file(const char *, size_t, size_t *, char **);
int		 util_write_file(const char *, const void *, size_t, mode_t,
		    char **);
int		 util_mkdirs(const char *, mode_t, char **);
char		*util_path(const char *, const char *);
char		*util_base64_encode(const unsigned char *, size_t);
int		 util_base64_decode(const char *, size_t, unsigned char *,
		    size_t, size_t *);

#endif

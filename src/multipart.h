/* SPDX-License-Identifier: ISC */
#ifndef MULTIPART_H
#define MULTIPART_H

#include <stddef.h>

/* One part of a multipart/form-data body. */
struct mp_part {
	char		*name;		/* form field name, never NULL */
	char		*filename;	/* as sent, or NULL if not a file */
	char		*content_type;	/* or NULL if the part had none */
	unsigned char	*data;		/* owned copy, NUL-terminated */
	size_t		 len;		/* bytes in data, without the NUL */
};

struct multipart;

struct multipart	*multipart_parse(const char *, const void *, size_t,
			    char **);
size_t			 multipart_count(const struct multipart *);
const struct mp_part	*multipart_part(const struct multipart *, size_t);
const struct mp_part	*multipart_get(const struct multipart *,
			    const char *);
void			 multipart_free(struct multipart *);

#define MULTIPART_MAX_PARTS	32
#define MULTIPART_MAX_HEADER	8192

#endif

/* SPDX-License-Identifier: ISC */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

#define LOG_LEVEL_WARN	0
#define LOG_LEVEL_INFO	1
#define LOG_LEVEL_DEBUG	2

void	log_init(int, int);
void	log_setlevel(int);
int	log_getlevel(void);
int	log_toggle_debug(void);
void	log_warn(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));
void	log_warnx(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));
void	log_info(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));
void	log_debug(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));
void	log_vwrite(int, const char *, va_list)
	    __attribute__((__format__(__printf__, 2, 0)));
void	fatal(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2), __noreturn__));
void	fatalx(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2), __noreturn__));

/* Skip formatting entirely when debug logging is off. */
#define log_debug_on()	(log_getlevel() >= LOG_LEVEL_DEBUG)

#endif

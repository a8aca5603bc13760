/* SPDX-License-Identifier: ISC */
/*
 * Logging: syslog (LOG_DAEMON) when daemonised, stderr in the foreground.
 * One line per event, key=value where there is more than a message.
 * Control characters are escaped so that input cannot forge log lines.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int	log_stderr = 1;
static int	log_level = LOG_LEVEL_INFO;
static int	log_saved_level = LOG_LEVEL_INFO;

static void	log_emit(int, const char *, const char *);

/* Start logging: to stderr if foreground, else to syslog. */
void
log_init(int foreground, int level)
{
	log_stderr = foreground;
	log_level = log_saved_level = level;
	if (!foreground)
		openlog("uplinkd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

/* Set the level (from -v or the configuration file). */
void
log_setlevel(int level)
{
	log_level = log_saved_level = level;
}

/* Current level. */
int
log_getlevel(void)
{
	return (log_level);
}

/* SIGUSR1: switch debug logging on, or back to the configured level. */
int
log_toggle_debug(void)
{
	if (log_level >= LOG_LEVEL_DEBUG && log_saved_level < LOG_LEVEL_DEBUG)
		log_level = log_saved_level;
	else if (log_level < LOG_LEVEL_DEBUG)
		log_level = LOG_LEVEL_DEBUG;
	return (log_level >= LOG_LEVEL_DEBUG);
}

/* Write one line; control characters become \ooo. */
static void
log_emit(int pri, const char *msg, const char *suffix)
{
	char		 line[2048], stamp[32];
	size_t		 n = 0;
	const char	*p;
	struct timespec	 ts;
	struct tm	 tm;

	for (p = msg; *p != '\0' && n < sizeof line - 5; p++) {
		unsigned char c = *p;
		if (c < 0x20 || c == 0x7f) {
			snprintf(line + n, 5, "\\%03o", c);
			n += 4;
		} else
			line[n++] = c;
	}
	line[n] = '\0';

	if (!log_stderr) {
		syslog(pri, "%s%s", line, suffix);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s%s\n", stamp, ts.tv_nsec / 1000000,
	    line, suffix);
}

/* Format and write at a level. */
void
log_vwrite(int pri, const char *fmt, va_list ap)
{
	char	msg[2048];

	vsnprintf(msg, sizeof msg, fmt, ap);
	log_emit(pri, msg, "");
}

/* Warning with strerror(errno) appended. */
void
log_warn(const char *fmt, ...)
{
	char	msg[2048], suffix[256];
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(suffix, sizeof suffix, ": %s", strerror(saved));
	log_emit(LOG_WARNING, msg, suffix);
	errno = saved;
}

/* Warning. */
void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap);
	va_end(ap);
}

/* Informational event. */
void
log_info(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap);
	va_end(ap);
}

/* Debug detail. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

/* A broken invariant or a failed start, with errno: log and exit. */
void
fatal(const char *fmt, ...)
{
	char	msg[2048], suffix[256];
	int	saved = errno;
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(suffix, sizeof suffix, ": %s", strerror(saved));
	log_emit(LOG_CRIT, msg, saved != 0 ? suffix : "");
	exit(1);
}

/* A broken invariant or a failed start: log and exit. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

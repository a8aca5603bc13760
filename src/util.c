/* SPDX-License-Identifier: ISC */
/*
 * Small helpers shared by the modules: clocks, ISO-8601 times, random
 * tokens and whole-file reads and atomic writes.
 */

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "util.h"
#include "xmalloc.h"

/* Monotonic milliseconds. */
uint64_t
util_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Wall-clock microseconds since the epoch. */
int64_t
util_wall_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* Format microseconds since the epoch as 2006-01-02T15:04:05.000Z. */
void
util_iso8601(char *buf, size_t len, int64_t us)
{
	time_t		t = us / 1000000;
	struct tm	tm;
	char		tmp[32];

	gmtime_r(&t, &tm);
	strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)((us / 1000) % 1000));
}

/* Read n digits. */
static int
util_digits(const char **p, int n, int *out)
{
	int	v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return (-1);
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return (0);
}

/*
 * Parse an ISO-8601 date-time ("2020-11-12T11:45:26Z", with a fraction
 * and a +hh:mm offset allowed) or "2020-11-12 11:45:26[.ffffff]"; without
 * an offset the time is UTC.  Result in microseconds since the epoch.
 */
int
util_parse_iso8601(const char *s, int64_t *us)
{
	struct tm	 tm;
	const char	*p = s;
	int		 y, mo, d, h, mi, sec, oh, om, sign;
	int64_t		 frac = 0, scale = 1000000, t;

	if (util_digits(&p, 4, &y) || *p++ != '-' ||
	    util_digits(&p, 2, &mo) || *p++ != '-' ||
	    util_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
		return (-1);
	p++;
	if (util_digits(&p, 2, &h) || *p++ != ':' ||
	    util_digits(&p, 2, &mi) || *p++ != ':' ||
	    util_digits(&p, 2, &sec))
		return (-1);
	if (*p == '.' || *p == ',') {
		p++;
		if (!isdigit((unsigned char)*p))
			return (-1);
		while (isdigit((unsigned char)*p)) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
			p++;
		}
	}
	oh = om = 0;
	sign = 1;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = (*p == '-') ? -1 : 1;
		p++;
		if (util_digits(&p, 2, &oh))
			return (-1);
		if (*p == ':')
			p++;
		if (util_digits(&p, 2, &om))
			return (-1);
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || oh > 23 || om > 59)
		return (-1);
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (tm.tm_mday != d)	/* 31 February and the like */
		return (-1);
	t -= sign * (oh * 3600 + om * 60);
	*us = t * 1000000 + frac;
	return (0);
}

/* Fill buf (len bytes including the NUL) with random hex digits. */
void
util_random_hex(char *buf, size_t len)
{
	unsigned char	r[128];
	size_t		i, n = (len - 1 + 1) / 2;
	static const char hex[] = "0123456789abcdef";

	if (n > sizeof r)
		fatalx("util_random_hex: %zu too long", len);
	if (RAND_bytes(r, n) != 1)
		fatalx("RAND_bytes failed");
	for (i = 0; i < len - 1; i++)
		buf[i] = hex[(r[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
	buf[len - 1] = '\0';
}

/*
 * Read a whole file of at most max bytes; returns a NUL-terminated copy
 * (caller frees) or NULL with *cause.
 */
char *
util_read_file(const char *path, size_t max, size_t *lenp, char **cause)
{
	int		 fd;
	struct stat	 st;
	char		*buf;
	ssize_t		 n;
	size_t		 off = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &st) == -1) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		close(fd);
		return (NULL);
	}
	if ((size_t)st.st_size > max) {
		xasprintf(cause, "%s: larger than %zu bytes", path, max);
		close(fd);
		return (NULL);
	}
	buf = xmalloc(st.st_size + 1);
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	close(fd);
	buf[off] = '\0';
	if (lenp != NULL)
		*lenp = off;
	return (buf);
}

/*
 * Write a file atomically (temporary file, fsync, rename) with the given
 * mode; -1 and *cause on failure.
 */
int
util_write_file(const char *path, const void *data, size_t len, mode_t mode,
    char **cause)
{
	char		*tmp;
	int		 fd;
	ssize_t		 n;
	size_t		 off = 0;

	xasprintf(&tmp, "%s.tmp%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1)
		goto fail;
	if (fchmod(fd, mode) == -1)
		goto fail;
	while (off < len) {
		n = write(fd, (const char *)data + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		off += n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	return (0);

fail:
	xasprintf(cause, "%s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	return (-1);
}

/* mkdir -p with mode for directories it creates. */
int
util_mkdirs(const char *path, mode_t mode, char **cause)
{
	char	*p, *s;

	p = xstrdup(path);
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		if (*s == '/')
			*s = '\0';
		if (mkdir(p, mode) == -1 && errno != EEXIST) {
			xasprintf(cause, "%s: %s", p, strerror(errno));
			free(p);
			return (-1);
		}
		if (s - p == (ptrdiff_t)strlen(path))
			break;
		*s = '/';
	}
	free(p);
	return (0);
}

/* dir "/" name; caller frees. */
char *
util_path(const char *dir, const char *name)
{
	char	*p;

	xasprintf(&p, "%s/%s", dir, name);
	return (p);
}

static const char util_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; caller frees. */
char *
util_base64_encode(const unsigned char *in, size_t len)
{
	char		*out, *p;
	size_t		 i;
	uint32_t	 v;

	out = p = xmalloc((len + 2) / 3 * 4 + 1);
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | in[i + 1] << 8 | in[i + 2];
		*p++ = util_b64[v >> 18 & 63];
		*p++ = util_b64[v >> 12 & 63];
		*p++ = util_b64[v >> 6 & 63];
		*p++ = util_b64[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = util_b64[v >> 18 & 63];
		*p++ = util_b64[v >> 12 & 63];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | in[i + 1] << 8;
		*p++ = util_b64[v >> 18 & 63];
		*p++ = util_b64[v >> 12 & 63];
		*p++ = util_b64[v >> 6 & 63];
		*p++ = '=';
	}
	*p = '\0';
	return (out);
}

/*
 * Decode standard base64 (padding required, no white space) into out
 * (outlen bytes); 0 with *n set, or -1 if malformed or too long.
 */
int
util_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen, size_t *n)
{
	size_t		 i, k = 0, pad = 0;
	uint32_t	 v;
	const char	*c;
	int		 j, d[4];

	if (len % 4 != 0)
		return (-1);
	for (i = 0; i < len; i += 4) {
		for (j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				d[j] = 0;
				pad++;
				continue;
			}
			if (pad != 0 || (c = memchr(util_b64, in[i + j],
			    64)) == NULL || in[i + j] == '\0')
				return (-1);
			d[j] = c - util_b64;
		}
		v = d[0] << 18 | d[1] << 12 | d[2] << 6 | d[3];
		if (k + 3 - pad > outlen)
			return (-1);
		out[k++] = v >> 16;
		if (pad < 2)
			out[k++] = v >> 8 & 0xff;
		if (pad < 1)
			out[k++] = v & 0xff;
	}
	*n = k;
	return (0);
}

/* SPDX-License-Identifier: ISC */

/*
 * The library of the bench helper programs: see bench.h.  No state but
 * bench_quit, no library beyond libc, so that every script can build it
 * next to a program with the same cc line.
 */

#define _GNU_SOURCE		/* memmem, TCP_QUICKACK */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

volatile sig_atomic_t	 bench_quit;

static struct timespec	 bench_clock(clockid_t);
static void		 bench_on_signal(int);
static int		 bench_http_read(int, struct bench_buf *, size_t *,
			    size_t *, int);
static size_t		 bench_mqtt_fixed(unsigned char *, unsigned char,
			    size_t);
static size_t		 bench_mqtt_str(unsigned char *, const char *);

/*
 * The decimal number s in *v: 0, or -1 if s is empty, has more after
 * the number or does not fit.
 */
int
bench_parse(const char *s, unsigned long long *v)
{
	char	*end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return (-1);
	return (0);
}

/* The number s of option what, from min to max, or exit 2. */
unsigned long long
bench_number(const char *s, const char *what, unsigned long long min,
    unsigned long long max)
{
	unsigned long long	v;

	if (bench_parse(s, &v) == -1 || v < min || v > max)
		errx(2, "%s: must be a number from %llu to %llu, not %s", what,
		    min, max, s);
	return (v);
}

/* The same, for the programs that word the complaint this way. */
unsigned long long
bench_range(const char *s, const char *what, unsigned long long min,
    unsigned long long max)
{
	unsigned long long	v;

	if (bench_parse(s, &v) == -1 || v < min || v > max)
		errx(2, "%s: not a number in %llu..%llu: %s", what, min, max,
		    s);
	return (v);
}

/* The time of clock id. */
static struct timespec
bench_clock(clockid_t id)
{
	struct timespec	ts;

	clock_gettime(id, &ts);
	return (ts);
}

/* Seconds of the monotonic clock. */
double
bench_mono(void)
{
	struct timespec	ts = bench_clock(CLOCK_MONOTONIC);

	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* Wall-clock seconds, which other processes can compare. */
double
bench_wall(void)
{
	struct timespec	ts = bench_clock(CLOCK_REALTIME);

	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* Wall-clock microseconds. */
int64_t
bench_wall_us(void)
{
	struct timespec	ts = bench_clock(CLOCK_REALTIME);

	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* The CPU time of this process so far, in seconds. */
double
bench_self_cpu(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

/* utime + stime of pid in clock ticks; -1 for pid 0 or if /proc fails. */
long long
bench_ticks(pid_t pid)
{
	char			 path[64], buf[2048], *p;
	unsigned long long	 ut, st;
	size_t			 n;
	FILE			*f;

	if (pid == 0)
		return (-1);
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/*
	 * The command name may hold anything: the fields resume after the
	 * last ')', state first, utime and stime the 12th and 13th.
	 */
	if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0' ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%llu %llu", &ut, &st) != 2)
		return (-1);
	return ((long long)(ut + st));
}

/*
 * The first line of path without its line end; the caller frees it.  If
 * the file cannot be read or is empty, the program exits with status
 * eval, or with eval 0 the answer is NULL.
 */
char *
bench_line(const char *path, int eval)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL) {
		if (eval == 0)
			return (NULL);
		err(eval, "%s", path);
	}
	if ((n = getline(&line, &cap, f)) == -1) {
		fclose(f);
		free(line);
		if (eval == 0)
			return (NULL);
		errx(eval, "%s: empty", path);
	}
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return (line);
}

/* Write path anew with the text of fmt. */
void
bench_put(const char *path, const char *fmt, ...)
{
	va_list	 ap;
	FILE	*f;
	int	 n;

	if ((f = fopen(path, "w")) == NULL)
		err(1, "%s", path);
	va_start(ap, fmt);
	n = vfprintf(f, fmt, ap);
	va_end(ap);
	if (n < 0 || fclose(f) == EOF)
		err(1, "%s", path);
}

/* Write path anew with the len bytes of buf. */
void
bench_save(const char *path, const void *buf, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fwrite(buf, 1, len, f) != len ||
	    fclose(f) == EOF)
		err(1, "%s", path);
}

static void
bench_on_signal(int sig)
{
	(void)sig;
	bench_quit = 1;
}

/*
 * SIGTERM and SIGINT call fn, or with NULL set bench_quit.  Calls are
 * not restarted: a signal interrupts a wait with EINTR.
 */
void
bench_catch(void (*fn)(int))
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn != NULL ? fn : bench_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* sin for host, an IPv4 address, and port: 0, or -1 for another host. */
int
bench_inet(struct sockaddr_in *sin, const char *host, unsigned int port)
{
	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return (-1);
	return (0);
}

/*
 * unix:path or tcp:host:port (an IPv4 address, a port from minport to
 * 65535) into ss and its length into *len: 0, or a BENCH_ADDR_ reason.
 */
int
bench_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len,
    unsigned int minport)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;
	const char		*colon;
	char			 host[64];
	unsigned long long	 port;

	memset(ss, 0, sizeof *ss);
	if (strncmp(s, "unix:", 5) == 0) {
		if (strlen(s + 5) >= sizeof sun->sun_path)
			return (BENCH_ADDR_PATH);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, s + 5, strlen(s + 5) + 1);
		*len = sizeof *sun;
		return (0);
	}
	if (strncmp(s, "tcp:", 4) != 0 || (colon = strrchr(s + 4, ':')) ==
	    NULL || (size_t)(colon - (s + 4)) >= sizeof host)
		return (BENCH_ADDR_FORM);
	memcpy(host, s + 4, colon - (s + 4));
	host[colon - (s + 4)] = '\0';
	if (bench_parse(colon + 1, &port) == -1 || port < minport ||
	    port > 65535)
		return (BENCH_ADDR_PORT);
	if (bench_inet((struct sockaddr_in *)ss, host, port) == -1)
		return (BENCH_ADDR_HOST);
	*len = sizeof (struct sockaddr_in);
	return (0);
}

/*
 * A new stream socket connected to sa, with TCP_NODELAY over TCP if
 * nodelay; -1 if connect fails (errno says why).  If no socket can be
 * made the program exits with status eval.
 */
int
bench_dial(const struct sockaddr *sa, socklen_t len, int nodelay, int eval)
{
	int	fd, one = 1, saved;

	if ((fd = socket(sa->sa_family, SOCK_STREAM, 0)) == -1)
		err(eval, "socket");
	if (connect(fd, sa, len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return (-1);
	}
	if (nodelay && sa->sa_family == AF_INET)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return (fd);
}

/* A socket connected to addr, unix:path or tcp:host:port, or exit. */
int
bench_connect(const char *addr, int nodelay)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	const char		*colon = strrchr(addr, ':');
	int			 fd;

	switch (bench_addr(addr, &ss, &len, 1)) {
	case BENCH_ADDR_PATH:
		errx(2, "%s: path too long", addr);
	case BENCH_ADDR_FORM:
		errx(2, "%s: not unix:path or tcp:host:port", addr);
	case BENCH_ADDR_PORT:
		errx(2, "port: must be a number from 1 to 65535, not %s",
		    colon + 1);
	case BENCH_ADDR_HOST:
		errx(2, "%.*s: not an IPv4 address", (int)(colon - addr - 4),
		    addr + 4);
	default:
		break;
	}
	if ((fd = bench_dial((struct sockaddr *)&ss, len, nodelay, 1)) == -1)
		err(1, "connect %s", addr);
	return (fd);
}

/*
 * Send all len bytes of buf, blocking; what names the peer in the
 * complaint.  With flags 0 this is write(2), SIGPIPE included.
 */
void
bench_send(int fd, const void *buf, size_t len, int flags, const char *what)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = send(fd, p, len, flags)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "%s", what);
		}
		p += n;
		len -= n;
	}
}

/* An empty buffer of cap bytes. */
void
bench_buf_init(struct bench_buf *b, size_t cap)
{
	if ((b->data = malloc(cap)) == NULL)
		err(1, "malloc");
	b->len = 0;
	b->cap = cap;
}

/* Double b until it holds need bytes in all and has room for one more. */
void
bench_buf_grow(struct bench_buf *b, size_t need)
{
	size_t	cap = b->cap;

	while (cap <= b->len || cap < need)
		cap *= 2;
	if (cap == b->cap)
		return;
	if ((b->data = realloc(b->data, cap)) == NULL)
		err(1, "realloc");
	b->cap = cap;
}

/* Forget the first n bytes of b. */
void
bench_buf_drop(struct bench_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/*
 * The header of an HTTP/1.1 request in buf, as snprintf(3) makes it: a
 * Bearer token unless token is NULL, a JSON Content-Type if json, and a
 * body of clen bytes to follow.
 */
int
bench_http_head(char *buf, size_t cap, const char *method, const char *path,
    const char *token, int json, size_t clen)
{
	return (snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: localhost\r\n"
	    "%s%s%s%sContent-Length: %zu\r\n\r\n", method, path,
	    token != NULL ? "Authorization: Bearer " : "",
	    token != NULL ? token : "", token != NULL ? "\r\n" : "",
	    json ? "Content-Type: application/json\r\n" : "", clen));
}

/*
 * The length of the HTTP header that buf starts with, blank line
 * included, or 0 if its end has not come yet.  *clen is the value of
 * its (last) Content-Length line, 0 without one; *have, unless NULL,
 * says whether there was one.
 */
size_t
bench_http_header(const char *buf, size_t len, size_t *clen, int *have)
{
	const char	*end, *p, *q;

	*clen = 0;
	if (have != NULL)
		*have = 0;
	if (len == 0 || (end = memmem(buf, len, "\r\n\r\n", 4)) == NULL)
		return (0);
	for (p = buf; p < end; p = q + 2) {
		if ((q = memmem(p, end + 2 - p, "\r\n", 2)) == NULL)
			break;
		if (q - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
			*clen = strtoul(p + 15, NULL, 10);
			if (have != NULL)
				*have = 1;
		}
	}
	return (end + 4 - buf);
}

/*
 * Check the answer at ans (a header of hlen bytes, a body of clen) to a
 * POST /api/v1/tags/publish of count records: exit 1 unless it is a 200
 * that says so.
 */
void
bench_http_published(const char *ans, size_t hlen, size_t clen,
    unsigned int count)
{
	const char	*body = ans + hlen, *p;
	unsigned long	 published;

	if (strncmp(ans, "HTTP/1.1 200 ", 13) != 0)
		errx(1, "answer is not 200: %.*s", (int)(hlen + clen), ans);
	p = memmem(body, clen, "\"published\":", 12);
	published = p == NULL ? 0 : strtoul(p + 12, NULL, 10);
	if (published != count)
		errx(1, "answer does not publish %u records: %.*s", count,
		    (int)clen, body);
}

/*
 * The options of a REST client: -k tokenfile, whose first line goes to
 * *token, and -o file, which goes to *outpath.  0, or -1 for another
 * option or other than one operand (argv[optind]).
 */
int
bench_rest_options(int argc, char **argv, char **token,
    const char **outpath)
{
	int	ch;

	while ((ch = getopt(argc, argv, "k:o:")) != -1) {
		if (ch == 'k')
			*token = bench_line(optarg, 1);
		else if (ch == 'o')
			*outpath = optarg;
		else
			return (-1);
	}
	return (argc - optind == 1 ? 0 : -1);
}

/*
 * The next line of f, METHOD PATH [BODY], split in r and made into an
 * HTTP/1.1 request in r->req with token, unless NULL, as a Bearer
 * token; the body goes as JSON.  Blank lines are skipped.  0 at the end
 * of f, else 1.  r starts zeroed.
 */
int
bench_rest_next(struct bench_rest *r, FILE *f, const char *token)
{
	ssize_t	llen;
	size_t	need, blen;
	int	n;

	do {
		if ((llen = getline(&r->line, &r->lcap, f)) == -1)
			return (0);
		if (llen > 0 && r->line[llen - 1] == '\n')
			r->line[--llen] = '\0';
	} while (llen == 0);
	if ((r->path = strchr(r->line, ' ')) == NULL)
		errx(2, "not METHOD PATH [BODY]: %s", r->line);
	*r->path++ = '\0';
	if ((r->body = strchr(r->path, ' ')) != NULL)
		*r->body++ = '\0';
	need = llen + 512 + (token != NULL ? strlen(token) : 0);
	if (need > r->rcap) {
		if ((r->req = realloc(r->req, need)) == NULL)
			err(1, "realloc");
		r->rcap = need;
	}
	blen = r->body != NULL ? strlen(r->body) : 0;
	n = bench_http_head(r->req, r->rcap, r->line, r->path, token,
	    r->body != NULL, blen);
	if (n < 0 || (size_t)n + blen >= r->rcap)
		errx(1, "request too long");
	if (blen > 0)
		memcpy(r->req + n, r->body, blen);
	r->rlen = n + blen;
	return (1);
}

/*
 * Read from fd into b, after what it holds, until it has a whole answer
 * framed by Content-Length: the lengths of its header and body in *hlen
 * and *clen.  Returns whether the header had a Content-Length line, or
 * -1 if the server closed the connection first.  With quickack, ACKs
 * are asked to go out at once before each read.
 */
static int
bench_http_read(int fd, struct bench_buf *b, size_t *hlen, size_t *clen,
    int quickack)
{
	ssize_t	n;
	int	have = 0, one = 1;

	*hlen = *clen = 0;
	for (;;) {
		if (*hlen == 0)
			*hlen = bench_http_header(b->data, b->len, clen, &have);
		if (*hlen != 0 && b->len >= *hlen + *clen)
			return (have);
		bench_buf_grow(b, *hlen + *clen);
		if (quickack)
			setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one,
			    sizeof one);
		n = recv(fd, b->data + b->len, b->cap - b->len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(1, "recv");
		if (n == 0)
			return (-1);
		b->len += n;
	}
}

/*
 * Send the request of r over fd and read its answer into r->ans (see
 * bench_http_read); exit 1 if the server closes the connection first.
 * Whether the answer had a Content-Length line.
 */
int
bench_rest_call(struct bench_rest *r, int fd, int quickack)
{
	int	have;

	if (r->ans.cap == 0)
		bench_buf_init(&r->ans, 1 << 20);
	bench_send(fd, r->req, r->rlen, MSG_NOSIGNAL, "send");
	if ((have = bench_http_read(fd, &r->ans, &r->hlen, &r->clen,
	    quickack)) == -1)
		errx(1, "the server closed the connection during %s %s",
		    r->line, r->path);
	return (have);
}

/*
 * The answer in r->ans has status: unless it is 2xx, print the request
 * and up to 2000 bytes of the answer to standard error, after prog, and
 * exit 1.  Else write its body to outpath, unless NULL, and forget it.
 */
void
bench_rest_done(struct bench_rest *r, int status, const char *outpath,
    const char *prog)
{
	size_t	len = r->hlen + r->clen;

	if (status < 200 || status > 299) {
		fprintf(stderr, "%s: %s %s: %.*s\n", prog, r->line, r->path,
		    (int)(len > 2000 ? 2000 : len), r->ans.data);
		exit(1);
	}
	if (outpath != NULL)
		bench_save(outpath, r->ans.data + r->hlen, r->clen);
	bench_buf_drop(&r->ans, len);
}

/* Free what r holds. */
void
bench_rest_free(struct bench_rest *r)
{
	free(r->line);
	free(r->req);
	free(r->ans.data);
}

/* Append an MQTT fixed header, type and remaining length; its bytes. */
static size_t
bench_mqtt_fixed(unsigned char *p, unsigned char type, size_t rem)
{
	size_t	n = 0;

	p[n++] = type;
	do {
		p[n] = rem % 128;
		rem /= 128;
		if (rem > 0)
			p[n] |= 0x80;
		n++;
	} while (rem > 0);
	return (n);
}

/* Append a two-byte length and the string. */
static size_t
bench_mqtt_str(unsigned char *p, const char *s)
{
	size_t	len = strlen(s);

	p[0] = len >> 8;
	p[1] = len & 0xff;
	memcpy(p + 2, s, len);
	return (len + 2);
}

/*
 * A CONNECT at p (room for 20 bytes and the client id): MQTT 3.1.1,
 * keep-alive off, a clean session if clean.  Its length.
 */
size_t
bench_mqtt_connect(unsigned char *p, const char *client, int clean)
{
	size_t	n;

	n = bench_mqtt_fixed(p, 0x10, 12 + strlen(client));
	n += bench_mqtt_str(p + n, "MQTT");
	p[n++] = 4;			/* protocol level: 3.1.1 */
	p[n++] = clean ? 0x02 : 0x00;
	p[n++] = 0;			/* keep-alive */
	p[n++] = 0;
	n += bench_mqtt_str(p + n, client);
	return (n);
}

/*
 * A SUBSCRIBE at p (room for 10 bytes and the filter), packet id 1, of
 * filter at qos.  Its length.
 */
size_t
bench_mqtt_subscribe(unsigned char *p, const char *filter, int qos)
{
	size_t	n;

	n = bench_mqtt_fixed(p, 0x82, 5 + strlen(filter));
	p[n++] = 0;
	p[n++] = 1;
	n += bench_mqtt_str(p + n, filter);
	p[n++] = qos;
	return (n);
}

/*
 * A whole packet at buf, if there is one: its length in *plen, the
 * offset of its variable header in *hlen; 0 when more bytes are needed.
 */
int
bench_mqtt_packet(const unsigned char *buf, size_t len, size_t *plen,
    size_t *hlen)
{
	size_t	rem = 0, mul = 1, i;

	for (i = 1; i < len && i <= 4; i++) {
		rem += (buf[i] & 0x7f) * mul;
		mul *= 128;
		if ((buf[i] & 0x80) == 0) {
			if (len < i + 1 + rem)
				return (0);
			*hlen = i + 1;
			*plen = i + 1 + rem;
			return (1);
		}
	}
	if (i > 4)
		errx(1, "malformed remaining length from the broker");
	return (0);
}

/*
 * Check the packet at p if it is a CONNACK or a SUBACK (for filter):
 * exit 1 if the broker refused.  1 for a SUBACK, else 0.
 */
int
bench_mqtt_acked(const unsigned char *p, size_t plen, size_t hlen,
    const char *filter)
{
	switch (p[0] >> 4) {
	case 2:
		if (plen - hlen < 2 || p[hlen + 1] != 0)
			errx(1, "the broker refused the connection");
		return (0);
	case 9:
		if (plen - hlen < 3 || p[hlen + 2] == 0x80)
			errx(1, "the broker refused the subscription to %s",
			    filter);
		return (1);
	default:
		return (0);
	}
}

/*
 * Read what the broker has sent into b without waiting, b growing as
 * it fills: the bytes read, 0 if the broker closed the connection, -1
 * if nothing had come (or a signal came first).
 */
ssize_t
bench_mqtt_read(int fd, struct bench_buf *b)
{
	ssize_t	n;

	bench_buf_grow(b, 0);
	n = recv(fd, b->data + b->len, b->cap - b->len, MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return (-1);
	if (n == -1)
		err(1, "read from the broker");
	b->len += n;
	return (n);
}

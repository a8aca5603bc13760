/* SPDX-License-Identifier: ISC */

/*
 * The producer of bench/cache: string tag values, numbered, through
 * POST /api/v1/tags/publish.
 *
 * usage: cache-load [-b batch] [-d seconds] [-i ms] [-k tokenfile]
 *            [-n records] [-o first] [-p pid] [-q depth] [-s source]
 *            [-v bytes] unix:path | tcp:host:port
 *
 * Bulk mode (the default) sends requests of batch records (default
 * 1000) for the string tag bench/<source>/v, each value "B" and a
 * ten-digit sequence number padded with 'x' to -v bytes (default 100),
 * numbered from -o (default 1) on, as fast as the server answers with
 * up to depth requests in flight (default 2) on one keep-alive
 * connection.  Requests are made from one template whose digits are
 * rewritten in place, so the producer costs little next to the daemon.
 * It stops after -d seconds (default 10) or -n records, whichever comes
 * first; the last request of a -n run may be shorter.
 *
 * Tick mode (-i ms) sends one record every ms milliseconds to
 * bench/<source>/t, a value "L", the ten-digit sequence number, ':', the
 * wall-clock time of the send in microseconds (CLOCK_REALTIME, sixteen
 * digits), padded to -v bytes; it waits for each answer, for -d seconds.
 * The subscriber (cache-sub.c) reads the time back and takes the delay.
 *
 * Every answer must be 200 with {"published":n} for the n records sent;
 * anything else ends the run with status 1.  Prints one line of
 * key=value pairs: records and requests answered, the first and next
 * sequence number, the wall-clock times (seconds) of the first send and
 * of the last answer, the rate, the slowest answer and, with -p, the
 * CPU (utime + stime, /proc/pid/stat) of that process over the run.
 */

#define _GNU_SOURCE		/* memmem */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOAD_DIGITS	10
#define LOAD_RBUF	65536

/* A request whose sequence numbers are rewritten for each send. */
struct load_tpl {
	char		*data;
	size_t		 len;
	unsigned int	 count;		/* records */
	size_t		*digits;	/* offset of each record's number */
};

static unsigned int	 load_batch = 1000;
static unsigned int	 load_vlen = 100;
static const char	*load_source = "bulk";
static const char	*load_token = "";
static char		 load_rbuf[LOAD_RBUF];
static size_t		 load_rlen;

static void
load_usage(void)
{
	fprintf(stderr, "usage: cache-load [-b batch] [-d seconds] [-i ms] "
	    "[-k tokenfile] [-n records]\n"
	    "           [-o first] [-p pid] [-q depth] [-s source] "
	    "[-v bytes] unix:path | tcp:host:port\n");
	exit(2);
}

static unsigned long long
load_number(const char *s, const char *what, unsigned long long min,
    unsigned long long max)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		errx(2, "%s: must be a number from %llu to %llu, not %s", what,
		    min, max, s);
	return (v);
}

/* Wall-clock time in seconds: comparable with the other processes. */
static double
load_wall(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static double
load_mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* utime + stime of pid in clock ticks; -1 if /proc cannot tell. */
static long long
load_ticks(pid_t pid)
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
	/* The command name may hold anything: fields resume after ')'. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	    &st) != 2)
		return (-1);
	return ((long long)(ut + st));
}

/* The first line of path, without its newline; caller frees. */
static char *
load_read_token(const char *path)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL)
		err(2, "%s", path);
	if ((n = getline(&line, &cap, f)) == -1)
		errx(2, "%s: empty", path);
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return (line);
}

/* A connected socket to unix:path or tcp:host:port. */
static int
load_connect(const char *addr)
{
	struct sockaddr_un	 sun;
	struct sockaddr_in	 sin;
	const char		*colon;
	char			 host[64];
	int			 fd, one = 1;

	if (strncmp(addr, "unix:", 5) == 0) {
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		if (strlen(addr + 5) >= sizeof sun.sun_path)
			errx(2, "%s: path too long", addr);
		memcpy(sun.sun_path, addr + 5, strlen(addr + 5) + 1);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
			err(1, "socket");
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
			err(1, "connect %s", addr);
		return (fd);
	}
	if (strncmp(addr, "tcp:", 4) != 0 ||
	    (colon = strrchr(addr + 4, ':')) == NULL ||
	    (size_t)(colon - addr - 4) >= sizeof host)
		errx(2, "%s: not unix:path or tcp:host:port", addr);
	memcpy(host, addr + 4, colon - addr - 4);
	host[colon - addr - 4] = '\0';
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(load_number(colon + 1, "port", 1, 65535));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		errx(2, "%s: not an IPv4 address", host);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		err(1, "connect %s", addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return (fd);
}

/*
 * A request of count records for tag name: the digits of record j start
 * at t->digits[j]; with tick, a ':' and sixteen more digits follow them.
 */
static void
load_template(struct load_tpl *t, unsigned int count, const char *name,
    int tick)
{
	char		*body, *p, *hdr;
	size_t		 reclen, cap, hcap;
	unsigned int	 j, fixed;
	int		 n;

	/* "B" or "L", the number, for ticks ':' and the time. */
	fixed = 1 + LOAD_DIGITS + (tick ? 1 + 16 : 0);
	if (load_vlen < fixed)
		errx(2, "-v: values must be at least %u bytes", fixed);
	reclen = 160 + strlen(load_source) + strlen(name) + load_vlen;
	cap = (size_t)count * reclen + 16;
	if ((body = malloc(cap)) == NULL ||
	    (t->digits = calloc(count, sizeof *t->digits)) == NULL)
		err(1, "malloc");
	p = body;
	*p++ = '[';
	for (j = 0; j < count; j++) {
		n = snprintf(p, cap - (p - body), "%s{\"prvdName\":\"bench\","
		    "\"srcName\":\"%s\",\"tagName\":\"%s\",\"dataType\":"
		    "\"string\",\"dataValue\":\"%c", j == 0 ? "" : ",",
		    load_source, name, tick ? 'L' : 'B');
		if (n < 0 || (size_t)n >= cap - (p - body))
			errx(1, "template too long");
		p += n;
		t->digits[j] = p - body;
		memset(p, '0', fixed - 1);
		if (tick)
			p[LOAD_DIGITS] = ':';
		memset(p + fixed - 1, 'x', load_vlen - fixed);
		p += load_vlen - 1;
		n = snprintf(p, cap - (p - body), "\",\"dataUnit\":\"\"}");
		p += n;
	}
	*p++ = ']';

	hcap = 512 + strlen(load_token);
	if ((hdr = malloc(hcap)) == NULL)
		err(1, "malloc");
	n = snprintf(hdr, hcap, "POST /api/v1/tags/publish HTTP/1.1\r\n"
	    "Host: localhost\r\n%s%s%s"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n",
	    *load_token == '\0' ? "" : "Authorization: Bearer ", load_token,
	    *load_token == '\0' ? "" : "\r\n", (size_t)(p - body));
	if (n < 0 || (size_t)n >= hcap)
		errx(1, "header too long");
	if ((t->data = malloc(n + (p - body))) == NULL)
		err(1, "malloc");
	memcpy(t->data, hdr, n);
	memcpy(t->data + n, body, p - body);
	for (j = 0; j < count; j++)
		t->digits[j] += n;
	t->len = n + (p - body);
	t->count = count;
	free(hdr);
	free(body);
}

/* Write v as width decimal digits at p. */
static void
load_digits(char *p, uint64_t v, int width)
{
	int	i;

	for (i = width - 1; i >= 0; i--) {
		p[i] = '0' + v % 10;
		v /= 10;
	}
}

/* Number the records of t from seq on. */
static void
load_fill(struct load_tpl *t, uint64_t seq)
{
	unsigned int	j;

	for (j = 0; j < t->count; j++)
		load_digits(t->data + t->digits[j], seq + j, LOAD_DIGITS);
}

static void
load_send(int fd, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "send to the server");
		}
		p += n;
		len -= n;
	}
}

/* Read one answer; it must be 200 publishing count records. */
static void
load_answer(int fd, unsigned int count)
{
	char		*end, *p, *q, *body;
	size_t		 hlen, clen, used;
	unsigned long	 published;
	ssize_t		 n;
	int		 have_len;

	for (;;) {
		end = memmem(load_rbuf, load_rlen, "\r\n\r\n", 4);
		if (end != NULL) {
			hlen = end + 4 - load_rbuf;
			clen = 0;
			have_len = 0;
			for (p = load_rbuf; p < end; p = q + 2) {
				if ((q = memmem(p, end + 2 - p, "\r\n", 2)) ==
				    NULL)
					break;
				if (q - p > 15 && strncasecmp(p,
				    "Content-Length:", 15) == 0) {
					clen = strtoul(p + 15, NULL, 10);
					have_len = 1;
				}
			}
			if (!have_len || clen > LOAD_RBUF - hlen)
				errx(1, "answer without a usable "
				    "Content-Length: %.*s", (int)hlen,
				    load_rbuf);
			if (load_rlen >= hlen + clen)
				break;
		} else if (load_rlen == LOAD_RBUF)
			errx(1, "answer header longer than %d bytes",
			    LOAD_RBUF);
		n = recv(fd, load_rbuf + load_rlen, LOAD_RBUF - load_rlen, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(1, "read from the server");
		if (n == 0)
			errx(1, "the server closed the connection");
		load_rlen += n;
	}
	body = load_rbuf + hlen;
	if (strncmp(load_rbuf, "HTTP/1.1 200 ", 13) != 0)
		errx(1, "answer is not 200: %.*s", (int)(hlen + clen),
		    load_rbuf);
	p = memmem(body, clen, "\"published\":", 12);
	published = p == NULL ? 0 : strtoul(p + 12, NULL, 10);
	if (published != count)
		errx(1, "answer does not publish %u records: %.*s", count,
		    (int)clen, body);
	used = hlen + clen;
	memmove(load_rbuf, load_rbuf + used, load_rlen - used);
	load_rlen -= used;
}

int
main(int argc, char **argv)
{
	struct load_tpl		 full, last, *t;
	struct timespec		 ts;
	unsigned long long	 limit = 0, seq, first = 1;
	unsigned long		 seconds = 10, interval = 0, depth = 2;
	unsigned int		 ring[1024], head = 0, inflight = 0, count;
	uint64_t		 records = 0, requests = 0, us;
	pid_t			 pid = 0;
	long long		 t0, t1;
	double			 start, wall0, wall1 = 0, deadline, sent;
	double			 slow = 0, next, now, hz;
	double			 sendt[1024];
	int			 ch, fd;

	while ((ch = getopt(argc, argv, "b:d:i:k:n:o:p:q:s:v:")) != -1) {
		switch (ch) {
		case 'b':
			load_batch = load_number(optarg, "-b", 1, 1000000);
			break;
		case 'd':
			seconds = load_number(optarg, "-d", 1, 86400);
			break;
		case 'i':
			interval = load_number(optarg, "-i", 1, 60000);
			break;
		case 'k':
			load_token = load_read_token(optarg);
			break;
		case 'n':
			limit = load_number(optarg, "-n", 1, 9999999999ULL);
			break;
		case 'o':
			first = load_number(optarg, "-o", 0, 9999999999ULL);
			break;
		case 'p':
			pid = load_number(optarg, "-p", 1, INT_MAX);
			break;
		case 'q':
			depth = load_number(optarg, "-q", 1, 1024);
			break;
		case 's':
			load_source = optarg;
			break;
		case 'v':
			load_vlen = load_number(optarg, "-v", 1, 65536);
			break;
		default:
			load_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		load_usage();

	if (interval != 0) {
		load_batch = 1;
		depth = 1;
	}
	load_template(&full, load_batch, interval != 0 ? "t" : "v",
	    interval != 0);
	memset(&last, 0, sizeof last);
	if (limit != 0 && limit % load_batch != 0)
		load_template(&last, limit % load_batch, interval != 0 ? "t" :
		    "v", interval != 0);
	fd = load_connect(argv[0]);

	hz = sysconf(_SC_CLK_TCK);
	t0 = load_ticks(pid);
	start = load_mono();
	wall0 = load_wall();
	deadline = start + seconds;
	next = start;
	seq = first;
	for (;;) {
		now = load_mono();
		/* Issue while there is room, time and records left. */
		if (inflight < depth && now < deadline &&
		    (limit == 0 || seq - first < limit)) {
			if (interval != 0 && now < next) {
				usleep((next - now) * 1e6);
				continue;
			}
			t = limit != 0 && limit - (seq - first) < load_batch ?
			    &last : &full;
			load_fill(t, seq);
			if (interval != 0) {
				clock_gettime(CLOCK_REALTIME, &ts);
				us = (uint64_t)ts.tv_sec * 1000000 +
				    ts.tv_nsec / 1000;
				load_digits(t->data + t->digits[0] +
				    LOAD_DIGITS + 1, us, 16);
				next += interval / 1000.0;
			}
			load_send(fd, t->data, t->len);
			ring[(head + inflight) % depth] = t->count;
			sendt[(head + inflight) % depth] = load_mono();
			inflight++;
			seq += t->count;
			continue;
		}
		if (inflight == 0)
			break;
		count = ring[head];
		sent = sendt[head];
		load_answer(fd, count);
		if ((now = load_mono()) - sent > slow)
			slow = now - sent;
		head = (head + 1) % depth;
		inflight--;
		records += count;
		requests++;
		wall1 = load_wall();
	}
	t1 = load_ticks(pid);
	close(fd);
	if (requests == 0)
		errx(1, "no request was answered");
	printf("records=%" PRIu64 " requests=%" PRIu64 " first_seq=%llu "
	    "next_seq=%llu start=%.6f end=%.6f seconds=%.3f "
	    "records_per_s=%.0f max_answer_ms=%.1f server_cpu_pct=%.0f\n",
	    records, requests, first, seq, wall0, wall1, wall1 - wall0,
	    records / (wall1 - wall0), slow * 1000,
	    t0 >= 0 && t1 >= 0 ? 100 * (t1 - t0) / hz / (wall1 - wall0) :
	    -1.0);
	return (0);
}

/* SPDX-License-Identifier: ISC */

/*
 * Load generator and sink for bench/ingest.
 *
 * usage: ingest-load load [-b batch] [-c conns] [-d seconds]
 *            [-k tokenfile] [-n buffers] [-p pid] [-q depth] [-r requests]
 *            [-s source] [-t tags] [-w seconds] unix:path | tcp:host:port
 *        ingest-load sink [-b batch] portfile unix:path | tcp:host:port ...
 *
 * load pre-builds buffers HTTP/1.1 keep-alive requests, each a POST
 * /api/v1/tags/publish whose body is an array of batch int64 records
 * spread over tags distinct tags (values vary from request to request),
 * with the first line of tokenfile as a Bearer token if -k is given.
 * It opens conns connections and keeps up to depth requests in flight on
 * each (depth > 1 pipelines), sending the buffers round robin as fast as
 * the server answers.  Every answer must be 200 with {"published":batch}
 * in its body; anything else ends the run with status 1.  It warms up
 * for -w seconds, measures for -d seconds (or, with -r, sends exactly
 * that many requests and measures them all), stops issuing, waits for the
 * answers in flight, and prints one line of key=value pairs: requests,
 * records and bytes (request bytes, headers included) answered in the
 * measured window, its length, the rates, the client's CPU and, with -p,
 * the CPU (utime + stime from /proc/pid/stat) and VmRSS/VmHWM of the
 * server process.
 *
 * sink listens on every address given (tcp port 0: the kernel picks one,
 * and the first such port is written to portfile; "-" writes none) and
 * reads requests, looking at nothing but the header lines to find
 * Content-Length; the body bytes are read and discarded.  Each request
 * is answered with a fixed small 200 carrying {"published":batch}, so
 * the client's flow is the same as with uplinkd.  Serves until SIGTERM
 * or SIGINT.  Single-threaded, like uplinkd.
 */

#define _GNU_SOURCE		/* memmem */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define LOAD_MAXEVENTS	64
#define LOAD_RBUF	65536
#define SINK_RBUF	262144
#define SINK_HDRMAX	65536
#define SINK_OBUFMAX	(1024 * 1024)

/* One pre-built request. */
struct load_req {
	char		*data;
	size_t		 len;
};

/* One client connection. */
struct load_conn {
	int			 fd;
	const struct load_req	*cur;	/* being written, or NULL */
	size_t			 off;	/* of cur already written */
	size_t			*ring;	/* lengths of requests in flight */
	unsigned int		 head;	/* oldest in flight */
	unsigned int		 inflight;
	char			*rbuf;	/* answers read, not yet parsed */
	size_t			 rlen;
};

/* Totals of answered requests. */
struct load_count {
	uint64_t	 requests;
	uint64_t	 records;
	uint64_t	 bytes;
};

/* One sink connection. */
struct sink_conn {
	int		 fd;
	int		 listener;
	int		 in_body;
	uint64_t	 body_left;
	char		*hdr;	/* header bytes of the current request */
	size_t		 hlen;
	char		*obuf;	/* answers not yet written */
	size_t		 olen;
};

static int		 load_main(int, char **);
static int		 sink_main(int, char **);
static void		 load_usage(void) __attribute__((__noreturn__));
static long		 load_proc_kb(pid_t, const char *);
static void		 load_build(struct load_req *, unsigned int,
			    unsigned int, unsigned int, const char *,
			    const char *);
static void		 load_nonblock(int);
static void		 load_pump(struct load_conn *, int);
static int		 load_answer(struct load_conn *, size_t *);
static int		 sink_read(struct sink_conn *, char *);
static int		 sink_flush(struct sink_conn *);

static unsigned int	 load_batch = 1000;
static unsigned int	 load_depth = 1;
static unsigned int	 load_nreqs;
static struct load_req	*load_reqs;
static uint64_t		 load_next;	/* requests issued so far */
static uint64_t		 load_limit;	/* -r: issue no more */
static int		 load_stop;	/* issue no more */
static struct load_count load_total;
static double		 load_last;	/* time of the last answer */

static char		 sink_answer[256];
static size_t		 sink_answer_len;

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "load") == 0)
		return (load_main(argc - 1, argv + 1));
	if (argc >= 2 && strcmp(argv[1], "sink") == 0)
		return (sink_main(argc - 1, argv + 1));
	load_usage();
}

static void
load_usage(void)
{
	fprintf(stderr,
	    "usage: ingest-load load [-b batch] [-c conns] [-d seconds]\n"
	    "           [-k tokenfile] [-n buffers] [-p pid] [-q depth] "
	    "[-r requests]\n"
	    "           [-s source] [-t tags] [-w seconds] "
	    "unix:path | tcp:host:port\n"
	    "       ingest-load sink [-b batch] portfile "
	    "unix:path | tcp:host:port ...\n");
	exit(2);
}

/* A kB field of /proc/pid/status (VmRSS, VmHWM); -1 if absent. */
static long
load_proc_kb(pid_t pid, const char *key)
{
	char	 path[64], line[256];
	size_t	 klen = strlen(key);
	long	 kb = -1;
	FILE	*f;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return (kb);
}

/*
 * Fill r with request number i: batch records, record j of it for tag
 * (i * batch + j) % tags, values from a generator seeded by i.  Caller
 * frees r->data.
 */
static void
load_build(struct load_req *r, unsigned int i, unsigned int batch,
    unsigned int tags, const char *source, const char *token)
{
	char		*body, *p;
	size_t		 cap, left, hcap;
	uint64_t	 x = 0x9e3779b97f4a7c15ULL * (i + 1);
	unsigned int	 j, tag;
	int		 n;
	int64_t		 v;

	cap = (size_t)batch * (120 + strlen(source)) + 16;
	if ((body = malloc(cap)) == NULL)
		err(1, "malloc");
	p = body;
	left = cap;
	*p++ = '[';
	left--;
	for (j = 0; j < batch; j++) {
		tag = (unsigned int)(((uint64_t)i * batch + j) % tags);
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Mostly small values, now and then the full 64-bit range. */
		v = (x & 0xf) == 0 ? (int64_t)x : (int64_t)(x % 2000001) -
		    1000000;
		n = snprintf(p, left, "%s{\"prvdName\":\"bench\",\"srcName\":"
		    "\"%s\",\"tagName\":\"t%u\",\"dataType\":\"int64\","
		    "\"dataValue\":%" PRId64 ",\"dataUnit\":\"\"}",
		    j == 0 ? "" : ",", source, tag, v);
		if (n < 0 || (size_t)n >= left)
			errx(1, "request %u: body buffer too small", i);
		p += n;
		left -= n;
	}
	if (left < 2)
		errx(1, "request %u: body buffer too small", i);
	*p++ = ']';

	hcap = 512 + strlen(token);
	if ((r->data = malloc(hcap + (p - body))) == NULL)
		err(1, "malloc");
	n = bench_http_head(r->data, hcap, "POST", "/api/v1/tags/publish",
	    *token == '\0' ? NULL : token, 1, p - body);
	if (n < 0 || (size_t)n >= hcap)
		errx(1, "request %u: header buffer too small", i);
	memcpy(r->data + n, body, p - body);
	r->len = n + (p - body);
	free(body);
}

static void
load_nonblock(int fd)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		err(1, "fcntl");
}

/*
 * Check the oldest answer in c->rbuf: 0 with *used its length if it is a
 * 200 with the right count, 1 if it is not complete yet; exits on a bad
 * answer.
 */
static int
load_answer(struct load_conn *c, size_t *used)
{
	size_t	hlen, clen;
	int	have_len;

	hlen = bench_http_header(c->rbuf, c->rlen, &clen, &have_len);
	if (hlen == 0) {
		if (c->rlen == LOAD_RBUF)
			errx(1, "answer header longer than %d bytes",
			    LOAD_RBUF);
		return (1);
	}
	if (!have_len)
		errx(1, "answer without Content-Length: %.*s", (int)hlen,
		    c->rbuf);
	if (clen > LOAD_RBUF - hlen)
		errx(1, "answer of %zu bytes: %.*s", clen, (int)hlen, c->rbuf);
	if (c->rlen < hlen + clen)
		return (1);
	bench_http_published(c->rbuf, hlen, clen, load_batch);
	*used = hlen + clen;
	return (0);
}

/*
 * Read what the server answered, then write until the socket is full
 * or depth requests are in flight.  Edge-triggered: both directions are
 * driven until they would block.
 */
static void
load_pump(struct load_conn *c, int events)
{
	const struct load_req	*r;
	ssize_t			 n;
	size_t			 used;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			n = read(c->fd, c->rbuf + c->rlen, LOAD_RBUF - c->rlen);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN)
				break;
			if (n == -1)
				err(1, "read from server");
			if (n == 0)
				errx(1, "server closed a connection with %u "
				    "requests in flight", c->inflight);
			c->rlen += n;
			while (c->rlen > 0 && load_answer(c, &used) == 0) {
				if (c->inflight == 0)
					errx(1, "answer without a request");
				load_total.requests++;
				load_total.records += load_batch;
				load_total.bytes += c->ring[c->head];
				c->head = (c->head + 1) % load_depth;
				c->inflight--;
				memmove(c->rbuf, c->rbuf + used,
				    c->rlen - used);
				c->rlen -= used;
				load_last = bench_mono();
			}
		}
	}
	for (;;) {
		if (c->cur == NULL) {
			if (load_stop || c->inflight == load_depth ||
			    (load_limit != 0 && load_next == load_limit))
				break;
			r = &load_reqs[load_next++ % load_nreqs];
			c->cur = r;
			c->off = 0;
			c->ring[(c->head + c->inflight) % load_depth] = r->len;
			c->inflight++;
		}
		n = send(c->fd, c->cur->data + c->off, c->cur->len - c->off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n == -1)
			err(1, "write to server");
		c->off += n;
		if (c->off == c->cur->len)
			c->cur = NULL;
	}
}

static int
load_main(int argc, char **argv)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct epoll_event	 ev, evs[LOAD_MAXEVENTS];
	struct load_conn	*conns;
	struct load_count	 start;
	const char		*token = "", *source = "ingest";
	unsigned int		 nconns = 4, tags = 10000, i;
	unsigned long		 seconds = 10, warmup = 1;
	uint64_t		 inflight;
	pid_t			 pid = 0;
	double			 now, begin, tstart = 0, deadline;
	double			 cpu0 = 0, secs, hz;
	long long		 t0 = 0, t1 = 0;
	long			 rss, hwm;
	int			 ch, ep, n, k, measuring;

	load_nreqs = 0;
	while ((ch = getopt(argc, argv, "b:c:d:k:n:p:q:r:s:t:w:")) != -1) {
		switch (ch) {
		case 'b':
			load_batch = bench_number(optarg, "-b", 1, 10000000);
			break;
		case 'c':
			nconns = bench_number(optarg, "-c", 1, 10000);
			break;
		case 'd':
			seconds = bench_number(optarg, "-d", 1, 86400);
			break;
		case 'k':
			token = bench_line(optarg, 2);
			break;
		case 'n':
			load_nreqs = bench_number(optarg, "-n", 1, 1000000);
			break;
		case 'p':
			pid = bench_number(optarg, "-p", 1, INT_MAX);
			break;
		case 'q':
			load_depth = bench_number(optarg, "-q", 1, 1024);
			break;
		case 'r':
			load_limit = bench_number(optarg, "-r", 1,
			    1000000000);
			break;
		case 's':
			source = optarg;
			break;
		case 't':
			tags = bench_number(optarg, "-t", 1,
			    100000000);
			break;
		case 'w':
			if (strcmp(optarg, "0") == 0)
				warmup = 0;
			else
				warmup = bench_number(optarg, "-w", 1,
				    3600);
			break;
		default:
			load_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		load_usage();
	if (bench_addr(argv[0], &ss, &sslen, 0) != 0)
		errx(2, "%s: not unix:path or tcp:host:port", argv[0]);
	if (load_limit != 0)
		warmup = 0;

	/* Enough buffers to name every tag, and some variety of values. */
	if (load_nreqs == 0) {
		load_nreqs = (tags + load_batch - 1) / load_batch;
		if (load_nreqs < 16)
			load_nreqs = 16;
	}
	if ((load_reqs = calloc(load_nreqs, sizeof *load_reqs)) == NULL)
		err(1, "calloc");
	for (i = 0; i < load_nreqs; i++)
		load_build(&load_reqs[i], i, load_batch, tags, source,
		    token);

	if ((ep = epoll_create1(0)) == -1)
		err(1, "epoll_create1");
	if ((conns = calloc(nconns, sizeof *conns)) == NULL)
		err(1, "calloc");
	for (i = 0; i < nconns; i++) {
		struct load_conn	*c = &conns[i];

		if ((c->fd = bench_dial((struct sockaddr *)&ss, sslen, 1,
		    1)) == -1)
			err(1, "connect %s", argv[0]);
		load_nonblock(c->fd);
		if ((c->ring = calloc(load_depth, sizeof *c->ring)) == NULL ||
		    (c->rbuf = malloc(LOAD_RBUF)) == NULL)
			err(1, "malloc");
		ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
			err(1, "epoll_ctl");
	}

	begin = bench_mono();
	measuring = warmup == 0;
	deadline = begin + (measuring ? seconds : warmup);
	memset(&start, 0, sizeof start);
	if (measuring) {
		tstart = begin;
		cpu0 = bench_self_cpu();
		if (pid != 0 && (t0 = bench_ticks(pid)) == -1)
			errx(1, "cannot read /proc/%ld/stat", (long)pid);
	}
	for (;;) {
		now = bench_mono();
		if (!load_stop && load_limit == 0 && now >= deadline) {
			if (!measuring) {
				/* Warm-up over: count from here. */
				measuring = 1;
				start = load_total;
				tstart = now;
				cpu0 = bench_self_cpu();
				if (pid != 0 && (t0 = bench_ticks(pid)) ==
				    -1)
					errx(1, "cannot read /proc/%ld/stat",
					    (long)pid);
				deadline = now + seconds;
			} else
				load_stop = 1;
		}
		inflight = 0;
		for (i = 0; i < nconns; i++)
			inflight += conns[i].inflight;
		if ((load_stop || (load_limit != 0 &&
		    load_next == load_limit)) && inflight == 0)
			break;
		if (load_stop && now > deadline + 30)
			errx(1, "%" PRIu64 " answers still missing 30 s after "
			    "the end", inflight);
		n = epoll_wait(ep, evs, LOAD_MAXEVENTS, 50);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(1, "epoll_wait");
		for (k = 0; k < n; k++)
			load_pump(evs[k].data.ptr, evs[k].events);
	}

	secs = load_last - tstart;
	if (secs <= 0)
		errx(1, "no answer in the measured window");
	hz = sysconf(_SC_CLK_TCK);
	rss = hwm = -1;
	if (pid != 0) {
		if ((t1 = bench_ticks(pid)) == -1)
			errx(1, "cannot read /proc/%ld/stat", (long)pid);
		rss = load_proc_kb(pid, "VmRSS");
		hwm = load_proc_kb(pid, "VmHWM");
	}
	printf("requests=%" PRIu64 " records=%" PRIu64 " bytes=%" PRIu64
	    " seconds=%.3f records_per_s=%.0f bytes_per_s=%.0f"
	    " client_cpu_pct=%.0f server_cpu_pct=%.0f server_rss_kb=%ld"
	    " server_hwm_kb=%ld batch=%u conns=%u depth=%u tags=%u"
	    " request_bytes=%zu\n",
	    load_total.requests - start.requests,
	    load_total.records - start.records,
	    load_total.bytes - start.bytes, secs,
	    (load_total.records - start.records) / secs,
	    (load_total.bytes - start.bytes) / secs,
	    100 * (bench_self_cpu() - cpu0) / secs,
	    pid != 0 ? 100 * (t1 - t0) / hz / secs : -1.0, rss, hwm,
	    load_batch, nconns, load_depth, tags, load_reqs[0].len);
	for (i = 0; i < nconns; i++)
		close(conns[i].fd);
	return (0);
}

/* Write what is queued; -1 if the peer is gone. */
static int
sink_flush(struct sink_conn *c)
{
	ssize_t	 n;

	while (c->olen > 0) {
		n = send(c->fd, c->obuf, c->olen, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return (0);
		if (n == -1)
			return (-1);
		memmove(c->obuf, c->obuf + n, c->olen - n);
		c->olen -= n;
	}
	return (0);
}

/* Answer one request: queue the fixed 200 and try to send it. */
static int
sink_reply(struct sink_conn *c)
{
	if (c->olen + sink_answer_len > SINK_OBUFMAX)
		return (-1);
	memcpy(c->obuf + c->olen, sink_answer, sink_answer_len);
	c->olen += sink_answer_len;
	return (sink_flush(c));
}

/*
 * Read until the socket is empty.  Header bytes are gathered to find
 * Content-Length; body bytes are only counted off.  -1 when the
 * connection is over (closed, error or a request we cannot frame).
 */
static int
sink_read(struct sink_conn *c, char *buf)
{
	char		*p;
	size_t		 take, rest, hlen, clen;
	ssize_t		 n;

	for (;;) {
		n = read(c->fd, buf, SINK_RBUF);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return (0);
		if (n <= 0)
			return (-1);
		p = buf;
		rest = n;
		while (rest > 0) {
			if (c->in_body) {
				take = rest < c->body_left ? rest :
				    c->body_left;
				c->body_left -= take;
				p += take;
				rest -= take;
				if (c->body_left == 0) {
					c->in_body = 0;
					if (sink_reply(c) == -1)
						return (-1);
				}
				continue;
			}
			/* Header: gather until the blank line. */
			take = rest < SINK_HDRMAX - c->hlen ? rest :
			    SINK_HDRMAX - c->hlen;
			if (take == 0)
				return (-1);
			memcpy(c->hdr + c->hlen, p, take);
			hlen = bench_http_header(c->hdr, c->hlen + take, &clen,
			    NULL);
			if (hlen == 0) {
				c->hlen += take;
				p += take;
				rest -= take;
				continue;
			}
			/* Bytes past the header go back to the body. */
			take = hlen - c->hlen;
			p += take;
			rest -= take;
			c->hlen = 0;
			if (clen == 0) {
				if (sink_reply(c) == -1)
					return (-1);
			} else {
				c->in_body = 1;
				c->body_left = clen;
			}
		}
	}
}

static int
sink_main(int argc, char **argv)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct sockaddr_in	 sin;
	socklen_t		 sinlen;
	struct epoll_event	 ev, evs[LOAD_MAXEVENTS];
	struct sink_conn	*c, *lc;
	unsigned int		 batch = 1000;
	char			*buf, body[64];
	const char		*portfile;
	int			 ch, ep, fd, i, k, n, one = 1, port = -1;

	while ((ch = getopt(argc, argv, "b:")) != -1) {
		switch (ch) {
		case 'b':
			batch = bench_number(optarg, "-b", 1, 10000000);
			break;
		default:
			load_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		load_usage();
	portfile = argv[0];

	/* The same shape as uplinkd's answer, of the same length. */
	snprintf(body, sizeof body, "{\"data\":{\"published\":%u}}", batch);
	n = snprintf(sink_answer, sizeof sink_answer, "HTTP/1.1 200 OK\r\n"
	    "Cache-Control: no-store\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "\r\n%s", strlen(body), body);
	if (n < 0 || (size_t)n >= sizeof sink_answer)
		errx(1, "answer too long");
	sink_answer_len = n;

	bench_catch(NULL);

	if ((ep = epoll_create1(0)) == -1)
		err(1, "epoll_create1");
	if ((buf = malloc(SINK_RBUF)) == NULL)
		err(1, "malloc");
	for (i = 1; i < argc; i++) {
		if (bench_addr(argv[i], &ss, &sslen, 0) != 0)
			errx(2, "%s: not unix:path or tcp:host:port", argv[i]);
		if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1)
			err(1, "socket");
		if (ss.ss_family == AF_INET)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			    sizeof one);
		if (bind(fd, (struct sockaddr *)&ss, sslen) == -1)
			err(1, "bind %s", argv[i]);
		if (listen(fd, 128) == -1)
			err(1, "listen %s", argv[i]);
		if (ss.ss_family == AF_INET && port == -1) {
			sinlen = sizeof sin;
			if (getsockname(fd, (struct sockaddr *)&sin, &sinlen) ==
			    -1)
				err(1, "getsockname");
			port = ntohs(sin.sin_port);
		}
		load_nonblock(fd);
		if ((lc = calloc(1, sizeof *lc)) == NULL)
			err(1, "calloc");
		lc->fd = fd;
		lc->listener = 1;
		ev.events = EPOLLIN;
		ev.data.ptr = lc;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			err(1, "epoll_ctl");
	}
	if (strcmp(portfile, "-") != 0)
		bench_put(portfile, "%d\n", port);

	while (!bench_quit) {
		n = epoll_wait(ep, evs, LOAD_MAXEVENTS, 500);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(1, "epoll_wait");
		for (k = 0; k < n; k++) {
			c = evs[k].data.ptr;
			if (c->listener) {
				while ((fd = accept(c->fd, NULL, NULL)) != -1) {
					load_nonblock(fd);
					setsockopt(fd, IPPROTO_TCP,
					    TCP_NODELAY, &one, sizeof one);
					if ((lc = calloc(1, sizeof *lc)) ==
					    NULL || (lc->hdr =
					    malloc(SINK_HDRMAX)) == NULL ||
					    (lc->obuf = malloc(SINK_OBUFMAX)) ==
					    NULL)
						err(1, "malloc");
					lc->fd = fd;
					ev.events = EPOLLIN | EPOLLOUT |
					    EPOLLET;
					ev.data.ptr = lc;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd,
					    &ev) == -1)
						err(1, "epoll_ctl");
				}
				continue;
			}
			if (((evs[k].events & EPOLLOUT) &&
			    sink_flush(c) == -1) ||
			    ((evs[k].events & (EPOLLIN | EPOLLHUP |
			    EPOLLERR)) && sink_read(c, buf) == -1)) {
				/* Closing removes it from the epoll set. */
				close(c->fd);
				free(c->hdr);
				free(c->obuf);
				free(c);
			}
		}
	}
	return (0);
}

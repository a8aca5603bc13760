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

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

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
	n = bench_http_head(hdr, hcap, "POST", "/api/v1/tags/publish",
	    *load_token == '\0' ? NULL : load_token, 1, p - body);
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

/* Read one answer; it must be 200 publishing count records. */
static void
load_answer(int fd, unsigned int count)
{
	size_t	hlen, clen, used;
	ssize_t	n;
	int	have_len;

	for (;;) {
		hlen = bench_http_header(load_rbuf, load_rlen, &clen,
		    &have_len);
		if (hlen != 0) {
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
	bench_http_published(load_rbuf, hlen, clen, count);
	used = hlen + clen;
	memmove(load_rbuf, load_rbuf + used, load_rlen - used);
	load_rlen -= used;
}

int
main(int argc, char **argv)
{
	struct load_tpl		 full, last, *t;
	unsigned long long	 limit = 0, seq, first = 1;
	unsigned long		 seconds = 10, interval = 0, depth = 2;
	unsigned int		 ring[1024], head = 0, inflight = 0, count;
	uint64_t		 records = 0, requests = 0;
	pid_t			 pid = 0;
	long long		 t0, t1;
	double			 start, wall0, wall1 = 0, deadline, sent;
	double			 slow = 0, next, now, hz;
	double			 sendt[1024];
	int			 ch, fd;

	while ((ch = getopt(argc, argv, "b:d:i:k:n:o:p:q:s:v:")) != -1) {
		switch (ch) {
		case 'b':
			load_batch = bench_number(optarg, "-b", 1, 1000000);
			break;
		case 'd':
			seconds = bench_number(optarg, "-d", 1, 86400);
			break;
		case 'i':
			interval = bench_number(optarg, "-i", 1, 60000);
			break;
		case 'k':
			load_token = bench_line(optarg, 2);
			break;
		case 'n':
			limit = bench_number(optarg, "-n", 1,
			    9999999999ULL);
			break;
		case 'o':
			first = bench_number(optarg, "-o", 0,
			    9999999999ULL);
			break;
		case 'p':
			pid = bench_number(optarg, "-p", 1, INT_MAX);
			break;
		case 'q':
			depth = bench_number(optarg, "-q", 1, 1024);
			break;
		case 's':
			load_source = optarg;
			break;
		case 'v':
			load_vlen = bench_number(optarg, "-v", 1, 65536);
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
	fd = bench_connect(argv[0], 1);

	hz = sysconf(_SC_CLK_TCK);
	t0 = bench_ticks(pid);
	start = bench_mono();
	wall0 = bench_wall();
	deadline = start + seconds;
	next = start;
	seq = first;
	for (;;) {
		now = bench_mono();
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
				load_digits(t->data + t->digits[0] +
				    LOAD_DIGITS + 1, bench_wall_us(), 16);
				next += interval / 1000.0;
			}
			bench_send(fd, t->data, t->len, MSG_NOSIGNAL,
			    "send to the server");
			ring[(head + inflight) % depth] = t->count;
			sendt[(head + inflight) % depth] = bench_mono();
			inflight++;
			seq += t->count;
			continue;
		}
		if (inflight == 0)
			break;
		count = ring[head];
		sent = sendt[head];
		load_answer(fd, count);
		if ((now = bench_mono()) - sent > slow)
			slow = now - sent;
		head = (head + 1) % depth;
		inflight--;
		records += count;
		requests++;
		wall1 = bench_wall();
	}
	t1 = bench_ticks(pid);
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

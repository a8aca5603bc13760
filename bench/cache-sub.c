/* SPDX-License-Identifier: ISC */

/*
 * The subscriber of bench/cache: counts the numbered messages of
 * cache-load.c as a broker delivers them, at QoS 1, and times the live
 * ones.
 *
 * usage: cache-sub [-C count] [-c clientid] [-i seconds] [-l file]
 *            [-o file] [-P] [-q qos] [-r] [-s file] readyfile host port
 *            filter
 *
 * Speaks MQTT 3.1.1 over a plain socket: CONNECT (clean session unless
 * -P, which keeps the session at the broker under clientid, so that
 * what is published while this process is away is kept for it),
 * SUBSCRIBE at -q qos (0 or 1, default 1), then PUBLISH packets parsed
 * straight from the read buffer, every QoS 1 one acknowledged (the
 * PUBACKs of one read go out in one write).  The connection is retried
 * for 10 s while nobody listens, so this may start with the broker.
 * "ready" and the wall-clock time go to readyfile once the broker has
 * answered the SUBSCRIBE.  With -r it disconnects then and exits: a
 * session is registered (with -P) for a later run.
 *
 * In each payload the string after "value":" is read: "B" and ten
 * digits is a bulk message, numbered; "L", ten digits, ':' and sixteen
 * digits is a live one, with the wall-clock time in microseconds when
 * it was published; the delay is the time of the read that brought it
 * less that.  Bulk numbers are kept in a bitmap: duplicates and numbers
 * that come after a higher one (out of order) are counted.  -s writes
 * the arrivals of new bulk numbers in 10 ms buckets, "wall-clock start
 * count" a line; -l writes each live message as "seq sent_us recv_us
 * delay_ms"; -o writes the first bulk payload.
 *
 * Stops when count distinct bulk numbers have come (-C), when nothing
 * has come for -i seconds after something did, at SIGTERM or SIGINT, or
 * when the broker closes the connection (status 1).  Prints one line of
 * key=value pairs: counts, the wall-clock times of the first and last
 * new bulk number and the rate between them, payload sizes, and the
 * live delays (largest, median, 99th percentile, mean) in ms.
 */

#define _GNU_SOURCE		/* memmem */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define SUB_BUF		(4 * 1024 * 1024)
#define SUB_OBUF	65536
#define SUB_BUCKET_US	10000
#define SUB_MARK	"\"value\":\""
#define SUB_MARKLEN	(sizeof SUB_MARK - 1)

static int		 sub_fd;
static unsigned char	 sub_obuf[SUB_OBUF];
static size_t		 sub_olen;

static uint8_t		*sub_bits;	/* bulk numbers seen */
static size_t		 sub_nbits;	/* bytes of sub_bits */
static uint64_t		 sub_msgs, sub_bulk, sub_distinct, sub_dups;
static uint64_t		 sub_reorders, sub_live, sub_other, sub_last_seq;
static uint64_t		 sub_bytes;
static size_t		 sub_min = SIZE_MAX, sub_max;
static int64_t		 sub_first_us, sub_last_us;

static uint32_t		*sub_series;	/* new bulk numbers per bucket */
static size_t		 sub_nseries;

static double		*sub_delays;	/* live delays, ms */
static size_t		 sub_ndelays, sub_capdelays;
static FILE		*sub_lat, *sub_pay;

static void
sub_usage(void)
{
	fprintf(stderr, "usage: cache-sub [-C count] [-c clientid] "
	    "[-i seconds] [-l file] [-o file] [-P]\n"
	    "           [-q qos] [-r] [-s file] readyfile host port "
	    "filter\n");
	exit(2);
}

static void
sub_flush(void)
{
	bench_send(sub_fd, sub_obuf, sub_olen, MSG_NOSIGNAL,
	    "write to the broker");
	sub_olen = 0;
}

/* n decimal digits at p, or -1 if one is not a digit. */
static int64_t
sub_digits(const unsigned char *p, int n)
{
	int64_t	v = 0;
	int	i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return (-1);
		v = v * 10 + (p[i] - '0');
	}
	return (v);
}

/* A bulk number came at now. */
static void
sub_bulk_seen(uint64_t seq, int64_t now)
{
	size_t	need, bucket;

	sub_bulk++;
	need = seq / 8 + 1;
	if (need > sub_nbits) {
		need = need < 2 * sub_nbits ? 2 * sub_nbits : need + 65536;
		if ((sub_bits = realloc(sub_bits, need)) == NULL)
			err(1, "realloc");
		memset(sub_bits + sub_nbits, 0, need - sub_nbits);
		sub_nbits = need;
	}
	if (sub_bulk > 1 && seq < sub_last_seq)
		sub_reorders++;
	sub_last_seq = seq;
	if (sub_bits[seq / 8] & (1 << (seq % 8))) {
		sub_dups++;
		return;
	}
	sub_bits[seq / 8] |= 1 << (seq % 8);
	if (sub_distinct++ == 0)
		sub_first_us = now;
	sub_last_us = now;
	bucket = (now - sub_first_us) / SUB_BUCKET_US;
	if (bucket >= sub_nseries) {
		need = bucket + 1 < 2 * sub_nseries ? 2 * sub_nseries :
		    bucket + 1024;
		if ((sub_series = reallocarray(sub_series, need,
		    sizeof *sub_series)) == NULL)
			err(1, "reallocarray");
		memset(sub_series + sub_nseries, 0,
		    (need - sub_nseries) * sizeof *sub_series);
		sub_nseries = need;
	}
	sub_series[bucket]++;
}

/* A live message, published at sent (us), came at now. */
static void
sub_live_seen(uint64_t seq, int64_t sent, int64_t now)
{
	double	ms = (now - sent) / 1000.0;

	sub_live++;
	if (sub_ndelays == sub_capdelays) {
		sub_capdelays = sub_capdelays == 0 ? 1024 : 2 * sub_capdelays;
		if ((sub_delays = reallocarray(sub_delays, sub_capdelays,
		    sizeof *sub_delays)) == NULL)
			err(1, "reallocarray");
	}
	sub_delays[sub_ndelays++] = ms;
	if (sub_lat != NULL)
		fprintf(sub_lat, "%" PRIu64 " %" PRId64 " %" PRId64 " %.3f\n",
		    seq, sent, now, ms);
}

/* One PUBLISH (p: its variable header, len bytes), read at now. */
static void
sub_publish(unsigned char flags, const unsigned char *p, size_t len,
    int64_t now)
{
	const unsigned char	*pay, *v, *end;
	size_t			 tlen, plen;
	int			 qos = (flags >> 1) & 3;
	int64_t			 seq, sent;
	unsigned char		 ack[4];

	if (len < 2)
		errx(1, "PUBLISH without a topic");
	tlen = (size_t)p[0] << 8 | p[1];
	pay = p + 2 + tlen;
	if (qos == 1) {
		if (2 + tlen + 2 > len)
			errx(1, "PUBLISH shorter than its header");
		ack[0] = 0x40;
		ack[1] = 2;
		ack[2] = pay[0];
		ack[3] = pay[1];
		if (sub_olen + 4 > SUB_OBUF)
			sub_flush();
		memcpy(sub_obuf + sub_olen, ack, 4);
		sub_olen += 4;
		pay += 2;
	} else if (qos != 0)
		errx(1, "PUBLISH at QoS %d: subscribed at most at 1", qos);
	if (pay > p + len)
		errx(1, "PUBLISH shorter than its header");
	plen = p + len - pay;
	end = pay + plen;
	sub_msgs++;
	v = memmem(pay, plen, SUB_MARK, SUB_MARKLEN);
	if (v != NULL)
		v += SUB_MARKLEN;
	if (v != NULL && end - v >= 11 && v[0] == 'B' &&
	    (seq = sub_digits(v + 1, 10)) >= 0) {
		sub_bytes += plen;
		if (plen < sub_min)
			sub_min = plen;
		if (plen > sub_max)
			sub_max = plen;
		if (sub_pay != NULL) {
			if (fwrite(pay, 1, plen, sub_pay) != plen ||
			    putc('\n', sub_pay) == EOF || fclose(sub_pay) ==
			    EOF)
				err(1, "write the payload");
			sub_pay = NULL;
		}
		sub_bulk_seen(seq, now);
	} else if (v != NULL && end - v >= 28 && v[0] == 'L' &&
	    (seq = sub_digits(v + 1, 10)) >= 0 && v[11] == ':' &&
	    (sent = sub_digits(v + 12, 16)) >= 0)
		sub_live_seen(seq, sent, now);
	else
		sub_other++;
}

static int
sub_cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

/* The p-th fraction of the sorted delays. */
static double
sub_pct(double p)
{
	size_t	i;

	if (sub_ndelays == 0)
		return (0);
	i = (size_t)(p * (sub_ndelays - 1) + 0.5);
	return (sub_delays[i]);
}

/* Connect to host:port, retrying for 10 s while nobody listens. */
static int
sub_connect(const char *host, const char *port)
{
	struct sockaddr_in	sin;
	int			fd, n;

	if (bench_inet(&sin, host, bench_range(port, "port", 0, 65535)) == -1)
		errx(2, "%s: not an IPv4 address", host);
	for (n = 0; (fd = bench_dial((struct sockaddr *)&sin, sizeof sin, 1,
	    1)) == -1; n++) {
		if (errno != ECONNREFUSED || n == 1000 || bench_quit)
			err(1, "connect %s:%s", host, port);
		usleep(10000);
	}
	return (fd);
}

int
main(int argc, char **argv)
{
	struct pollfd		 pfd;
	struct bench_buf	 b;
	unsigned char		*p, pkt[600];
	const char		*ready, *filter, *client = NULL;
	const char		*series = NULL;
	char			 idbuf[64];
	unsigned long		 idle = 0, qos = 1;
	unsigned long long	 count = 0;
	size_t			 plen, hlen, off, n, i;
	ssize_t			 r;
	int64_t			 now, last = 0, sub_at = 0;
	double			 sum = 0, secs;
	int			 ch, persist = 0, reg = 0, subscribed = 0;
	int			 closed = 0;
	FILE			*f;

	while ((ch = getopt(argc, argv, "C:c:i:l:o:Pq:rs:")) != -1) {
		switch (ch) {
		case 'C':
			count = bench_range(optarg, "-C", 0, ULONG_MAX);
			break;
		case 'c':
			client = optarg;
			break;
		case 'i':
			idle = bench_range(optarg, "-i", 0, 86400);
			break;
		case 'l':
			if ((sub_lat = fopen(optarg, "w")) == NULL)
				err(1, "%s", optarg);
			break;
		case 'o':
			if ((sub_pay = fopen(optarg, "w")) == NULL)
				err(1, "%s", optarg);
			break;
		case 'P':
			persist = 1;
			break;
		case 'q':
			qos = bench_range(optarg, "-q", 0, 1);
			break;
		case 'r':
			reg = 1;
			break;
		case 's':
			series = optarg;
			break;
		default:
			sub_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4)
		sub_usage();
	ready = argv[0];
	filter = argv[3];
	if (strlen(filter) > 256)
		errx(2, "topic filter too long");
	if (client == NULL) {
		snprintf(idbuf, sizeof idbuf, "cache-sub-%ld", (long)getpid());
		client = idbuf;
	}
	if (strlen(client) > 23)
		errx(2, "-c: a client id has at most 23 bytes");

	bench_catch(NULL);
	bench_buf_init(&b, SUB_BUF);
	sub_fd = sub_connect(argv[1], argv[2]);
	/* With -P the broker keeps the session; SUBSCRIBE has packet id 1. */
	n = bench_mqtt_connect(pkt, client, !persist);
	bench_send(sub_fd, pkt, n, MSG_NOSIGNAL, "write to the broker");
	n = bench_mqtt_subscribe(pkt, filter, qos);
	bench_send(sub_fd, pkt, n, MSG_NOSIGNAL, "write to the broker");

	pfd.fd = sub_fd;
	pfd.events = POLLIN;
	while (!bench_quit) {
		if (count != 0 && sub_distinct >= count)
			break;
		if (idle != 0 && last != 0 &&
		    bench_wall_us() - last >= (int64_t)idle * 1000000)
			break;
		if (poll(&pfd, 1, 20) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if ((r = bench_mqtt_read(sub_fd, &b)) == -1)
			continue;
		if (r == 0) {
			closed = 1;
			break;
		}
		now = bench_wall_us();
		off = 0;
		while (b.len - off >= 2 && bench_mqtt_packet((unsigned char *)
		    b.data + off, b.len - off, &plen, &hlen)) {
			p = (unsigned char *)b.data + off;
			if (p[0] >> 4 == 3) {
				sub_publish(p[0] & 0x0f, p + hlen, plen - hlen,
				    now);
				last = now;
			} else if (bench_mqtt_acked(p, plen, hlen, filter)) {
				sub_at = now;
				bench_put(ready, "ready %.6f\n", now / 1e6);
				subscribed = 1;
			}
			off += plen;
		}
		bench_buf_drop(&b, off);
		if (sub_olen != 0)
			sub_flush();
		if (reg && subscribed) {
			pkt[0] = 0xe0;		/* DISCONNECT */
			pkt[1] = 0;
			bench_send(sub_fd, pkt, 2, MSG_NOSIGNAL,
			    "write to the broker");
			return (0);
		}
	}
	if (sub_olen != 0 && !closed)
		sub_flush();
	if (!subscribed)
		errx(1, "stopped before the broker acknowledged the "
		    "subscription");
	if (sub_lat != NULL && fclose(sub_lat) == EOF)
		err(1, "write the delays");
	if (series != NULL) {
		if ((f = fopen(series, "w")) == NULL)
			err(1, "%s", series);
		for (i = 0; i < sub_nseries; i++)
			if (sub_series[i] != 0)
				fprintf(f, "%.6f %u\n", (sub_first_us +
				    (int64_t)i * SUB_BUCKET_US) / 1e6,
				    sub_series[i]);
		if (fclose(f) == EOF)
			err(1, "%s", series);
	}
	for (i = 0; i < sub_ndelays; i++)
		sum += sub_delays[i];
	qsort(sub_delays, sub_ndelays, sizeof *sub_delays, sub_cmp);
	secs = (sub_last_us - sub_first_us) / 1e6;
	printf("msgs=%" PRIu64 " bulk=%" PRIu64 " distinct=%" PRIu64
	    " dups=%" PRIu64 " reorders=%" PRIu64 " live=%" PRIu64
	    " other=%" PRIu64 " subscribed=%.6f first=%.6f last=%.6f"
	    " seconds=%.3f bulk_per_s=%.0f bytes=%" PRIu64 " min_size=%zu"
	    " max_size=%zu live_max_ms=%.1f live_p50_ms=%.1f"
	    " live_p99_ms=%.1f live_mean_ms=%.1f complete=%d\n",
	    sub_msgs, sub_bulk, sub_distinct, sub_dups, sub_reorders, sub_live,
	    sub_other, sub_at / 1e6, sub_first_us / 1e6, sub_last_us / 1e6,
	    secs, secs > 0 ? (sub_distinct - 1) / secs : 0.0, sub_bytes,
	    sub_min == SIZE_MAX ? 0 : sub_min, sub_max,
	    sub_ndelays != 0 ? sub_delays[sub_ndelays - 1] : 0.0,
	    sub_pct(0.5), sub_pct(0.99),
	    sub_ndelays != 0 ? sum / sub_ndelays : 0.0,
	    count == 0 || sub_distinct >= count);
	if (closed) {
		fprintf(stderr, "cache-sub: the broker closed the connection "
		    "after %" PRIu64 " messages\n", sub_msgs);
		return (1);
	}
	return (0);
}

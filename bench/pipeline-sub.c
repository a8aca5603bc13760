/* SPDX-License-Identifier: ISC */

/*
 * The subscriber of bench/pipeline: counts what a broker delivers on a
 * topic filter, over a measured window, for uplinkd's runs and for the
 * baseline publisher's alike.
 *
 * usage: pipeline-sub [-b pid] [-c count] [-d seconds] [-i seconds]
 *            [-o file] [-p pid] [-R] [-w seconds] readyfile host port filter
 *
 * Speaks MQTT 3.1.1 over a plain socket, with no library between the
 * broker and the count: CONNECT (clean session, no keep-alive),
 * SUBSCRIBE at QoS 0, then PUBLISH packets parsed straight out of a
 * large read buffer.  "ready" goes to readyfile once the broker has
 * answered the SUBSCRIBE, so the caller knows that nothing it sends from
 * then on is missed.
 *
 * The window opens -w seconds (default 1) after the first message and
 * lasts -d seconds (default 10).  After it, messages are still counted
 * until none has come for -i seconds (default 2), so that the totals
 * can be compared with what the publisher sent.  With -c the run ends
 * after count messages instead (no window); with -o every payload is
 * written to file, one a line (the payloads are JSON, which holds no raw
 * newline).  -R counts records inside the payloads: the occurrences of
 * "updateTimeStamp", one per record in uplinkd's default format.  -p and
 * -b name processes (uplinkd, the broker) whose CPU (utime + stime from
 * /proc/<pid>/stat) over the window is reported, with the time all the
 * machine's processes used (/proc/stat), which shows what else ran.
 *
 * Prints one line of key=value pairs: the window's messages, bytes,
 * records and rates, the totals, the smallest and largest payload, and
 * the CPU figures.  SIGTERM or SIGINT ends the run early, with the line.
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
#define SUB_LOWAT	65536	/* bytes that wake the reader */
#define SUB_MARK	"\"updateTimeStamp\""
#define SUB_MARKLEN	(sizeof SUB_MARK - 1)

struct sub_count {
	uint64_t	 msgs;
	uint64_t	 bytes;		/* payload bytes */
	uint64_t	 records;
};

/* What the window compares between its two edges. */
struct sub_edge {
	struct sub_count	 count;
	double			 t;
	double			 self;		/* this process's CPU */
	long long		 pid;		/* ticks of -p, -b, all */
	long long		 broker;
	long long		 machine;
};

static int			 sub_records;
static FILE			*sub_out;
static struct sub_count		 sub_total;
static size_t			 sub_min = SIZE_MAX, sub_max;

static void
sub_usage(void)
{
	fprintf(stderr, "usage: pipeline-sub [-b pid] [-c count] "
	    "[-d seconds] [-i seconds] [-o file] [-p pid] [-R] [-w seconds] "
	    "readyfile host port filter\n");
	exit(2);
}

/* Time all CPUs spent in processes, in ticks (/proc/stat); -1 on failure. */
static long long
sub_machine(void)
{
	unsigned long long	 v[8];
	FILE			*f;
	int			 n;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return (-1);
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return (-1);
	/*
	 * user nice system; not irq and softirq (loopback networking,
	 * which no process is charged for) nor steal.
	 */
	return (v[0] + v[1] + v[2]);
}

/* One edge of the window, at t. */
static void
sub_edge(struct sub_edge *e, double t, pid_t pid, pid_t bpid)
{
	e->count = sub_total;
	e->t = t;
	e->self = bench_self_cpu();
	e->pid = bench_ticks(pid);
	e->broker = bench_ticks(bpid);
	e->machine = sub_machine();
}

/* Count one PUBLISH (p: the variable header, len bytes of it). */
static void
sub_publish(unsigned char flags, const unsigned char *p, size_t len)
{
	const unsigned char	*pay, *q, *end;
	size_t			 tlen, plen;

	if (len < 2)
		errx(1, "PUBLISH without a topic");
	tlen = (size_t)p[0] << 8 | p[1];
	if (2 + tlen > len)
		errx(1, "PUBLISH topic longer than the packet");
	pay = p + 2 + tlen;
	if ((flags & 0x06) != 0)
		pay += 2;		/* packet id: QoS > 0 */
	if (pay > p + len)
		errx(1, "PUBLISH shorter than its header");
	plen = p + len - pay;
	sub_total.msgs++;
	sub_total.bytes += plen;
	if (plen < sub_min)
		sub_min = plen;
	if (plen > sub_max)
		sub_max = plen;
	if (sub_records) {
		end = pay + plen;
		for (q = pay; q < end; q += SUB_MARKLEN) {
			q = memmem(q, end - q, SUB_MARK, SUB_MARKLEN);
			if (q == NULL)
				break;
			sub_total.records++;
		}
	}
	if (sub_out != NULL && (fwrite(pay, 1, plen, sub_out) != plen ||
	    putc('\n', sub_out) == EOF))
		err(1, "write payload");
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	struct sub_edge		 e0, e1;
	struct bench_buf	 b;
	unsigned char		*p, pkt[512];
	const char		*ready, *filter, *outpath = NULL;
	char			 client[64];
	unsigned long		 warm = 1, dur = 10, idle = 2, count = 0;
	pid_t			 pid = 0, bpid = 0;
	size_t			 plen, hlen, off, n;
	ssize_t			 r;
	double			 now, start = 0, end = 0, last = 0, hz, secs;
	int			 ch, fd, subscribed = 0, phase = 0;
	int			 lowat = SUB_LOWAT;

	while ((ch = getopt(argc, argv, "b:c:d:i:o:p:Rw:")) != -1) {
		switch (ch) {
		case 'b':
			bpid = bench_range(optarg, "-b", 0, INT_MAX);
			break;
		case 'c':
			count = bench_range(optarg, "-c", 0, ULONG_MAX);
			break;
		case 'd':
			dur = bench_range(optarg, "-d", 0, 86400);
			break;
		case 'i':
			idle = bench_range(optarg, "-i", 0, 3600);
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'p':
			pid = bench_range(optarg, "-p", 0, INT_MAX);
			break;
		case 'R':
			sub_records = 1;
			break;
		case 'w':
			warm = bench_range(optarg, "-w", 0, 3600);
			break;
		default:
			sub_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4 || dur == 0 || idle == 0)
		sub_usage();
	ready = argv[0];
	filter = argv[3];
	if (strlen(filter) > 256)
		errx(2, "topic filter too long");
	if (bench_inet(&sin, argv[1], bench_range(argv[2], "port", 0,
	    65535)) == -1)
		errx(2, "%s: not an IPv4 address", argv[1]);
	if (outpath != NULL && (sub_out = fopen(outpath, "w")) == NULL)
		err(1, "%s", outpath);

	bench_catch(NULL);
	bench_buf_init(&b, SUB_BUF);
	if ((fd = bench_dial((struct sockaddr *)&sin, sizeof sin, 1, 1)) == -1)
		err(1, "connect %s:%s", argv[1], argv[2]);
	setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);

	/* A clean session; SUBSCRIBE has packet id 1, QoS 0. */
	snprintf(client, sizeof client, "pipeline-sub-%ld", (long)getpid());
	n = bench_mqtt_connect(pkt, client, 1);
	bench_send(fd, pkt, n, 0, "write to the broker");
	n = bench_mqtt_subscribe(pkt, filter, 0);
	bench_send(fd, pkt, n, 0, "write to the broker");

	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		now = bench_mono();
		/* Window edges, checked between reads. */
		if (phase == 0 && count == 0 && sub_total.msgs > 0) {
			start = last + warm;
			phase = 1;
		}
		if (phase == 1 && now >= start) {
			sub_edge(&e0, now, pid, bpid);
			end = now + dur;
			phase = 2;
		}
		if (phase == 2 && now >= end) {
			sub_edge(&e1, now, pid, bpid);
			phase = 3;
		}
		if (bench_quit)
			break;
		if (count != 0 && sub_total.msgs >= count)
			break;
		if (phase == 3 && now - last >= idle)
			break;
		/*
		 * SO_RCVLOWAT wakes us only for a good load of bytes; what
		 * is left below it is read when the poll times out.
		 */
		if (poll(&pfd, 1, 20) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if ((r = bench_mqtt_read(fd, &b)) == -1)
			continue;
		if (r == 0)
			errx(1, "the broker closed the connection after "
			    "%" PRIu64 " messages", sub_total.msgs);
		off = 0;
		while (b.len - off >= 2 && bench_mqtt_packet((unsigned char *)
		    b.data + off, b.len - off, &plen, &hlen)) {
			p = (unsigned char *)b.data + off;
			if (p[0] >> 4 == 3) {
				sub_publish(p[0] & 0x0f, p + hlen, plen - hlen);
				last = bench_mono();
			} else if (bench_mqtt_acked(p, plen, hlen, filter)) {
				bench_put(ready, "ready\n");
				subscribed = 1;
			}
			off += plen;
		}
		bench_buf_drop(&b, off);
	}
	if (!subscribed)
		errx(1, "stopped before the broker acknowledged the "
		    "subscription");
	if (sub_out != NULL && fclose(sub_out) == EOF)
		err(1, "%s", outpath);

	hz = sysconf(_SC_CLK_TCK);
	if (phase < 3) {
		/* Ended early: the window is what there was of it. */
		if (phase < 2)
			sub_edge(&e0, bench_mono(), pid, bpid);
		sub_edge(&e1, bench_mono(), pid, bpid);
	}
	secs = e1.t - e0.t;
	if (secs <= 0)
		secs = 1e-9;
	printf("msgs=%" PRIu64 " bytes=%" PRIu64 " records=%" PRIu64
	    " seconds=%.3f msgs_per_s=%.0f bytes_per_s=%.0f"
	    " records_per_s=%.0f total_msgs=%" PRIu64 " total_bytes=%" PRIu64
	    " total_records=%" PRIu64 " min_size=%zu max_size=%zu"
	    " self_cpu_pct=%.0f pid_cpu_pct=%.0f broker_cpu_pct=%.0f"
	    " machine_cpu_pct=%.0f cpus=%ld complete=%d\n",
	    e1.count.msgs - e0.count.msgs, e1.count.bytes - e0.count.bytes,
	    e1.count.records - e0.count.records, secs,
	    (e1.count.msgs - e0.count.msgs) / secs,
	    (e1.count.bytes - e0.count.bytes) / secs,
	    (e1.count.records - e0.count.records) / secs, sub_total.msgs,
	    sub_total.bytes, sub_total.records,
	    sub_min == SIZE_MAX ? 0 : sub_min, sub_max,
	    100 * (e1.self - e0.self) / secs,
	    e0.pid >= 0 && e1.pid >= 0 ?
	    100 * (e1.pid - e0.pid) / hz / secs : -1.0,
	    e0.broker >= 0 && e1.broker >= 0 ?
	    100 * (e1.broker - e0.broker) / hz / secs : -1.0,
	    e0.machine >= 0 && e1.machine >= 0 ?
	    100 * (e1.machine - e0.machine) / hz / secs : -1.0,
	    sysconf(_SC_NPROCESSORS_ONLN),
	    phase == 3 || (count != 0 && sub_total.msgs >= count));
	return (0);
}

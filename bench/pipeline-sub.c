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
#include <sys/resource.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUB_BUF		(4 * 1024 * 1024)
#define SUB_LOWAT	65536	/* bytes that wake the reader */
#define SUB_MARK	"\"updateTimeStamp\""
#define SUB_MARKLEN	(sizeof SUB_MARK - 1)

struct sub_count {
	uint64_t	 msgs;
	uint64_t	 bytes;		/* payload bytes */
	uint64_t	 records;
};

static volatile sig_atomic_t	 sub_quit;
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

static void
sub_signal(int sig)
{
	(void)sig;
	sub_quit = 1;
}

static double
sub_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static double
sub_self_cpu(void)
{
	struct rusage	ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

/* utime + stime of pid in clock ticks; -1 if it cannot be read. */
static long long
sub_ticks(pid_t pid)
{
	char		 path[64], buf[1024], *p;
	unsigned long	 ut, st;
	FILE		*f;
	size_t		 n;

	if (pid == 0)
		return (-1);
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command's closing parenthesis: state is 3. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		return (-1);
	return ((long long)ut + st);
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

static unsigned long
sub_number(const char *s, const char *what, unsigned long max)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v > max)
		errx(2, "%s: not a number in 0..%lu: %s", what, max, s);
	return (v);
}

/* Write all of buf, blocking. */
static void
sub_write(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "write to the broker");
		}
		p += n;
		len -= n;
	}
}

/* Append an MQTT remaining length; the bytes used. */
static size_t
sub_varint(unsigned char *p, size_t v)
{
	size_t	n = 0;

	do {
		p[n] = v % 128;
		v /= 128;
		if (v > 0)
			p[n] |= 0x80;
		n++;
	} while (v > 0);
	return (n);
}

/* Append a two-byte length and the string. */
static size_t
sub_str(unsigned char *p, const char *s)
{
	size_t	len = strlen(s);

	p[0] = len >> 8;
	p[1] = len & 0xff;
	memcpy(p + 2, s, len);
	return (len + 2);
}

/*
 * A whole packet at buf, if there is one: its length in *plen, the
 * offset of its variable header in *hlen; 0 when more bytes are needed.
 */
static int
sub_packet(const unsigned char *buf, size_t len, size_t *plen, size_t *hlen)
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
	struct sigaction	 sa;
	struct pollfd		 pfd;
	struct sub_count	 c0 = { 0, 0, 0 }, c1 = { 0, 0, 0 };
	unsigned char		*buf, pkt[512];
	const char		*ready, *filter, *outpath = NULL;
	unsigned long		 warm = 1, dur = 10, idle = 2, count = 0;
	pid_t			 pid = 0, bpid = 0;
	size_t			 len = 0, cap = SUB_BUF, plen, hlen, off, n;
	ssize_t			 r;
	double			 now, first = 0, start = 0, end = 0, last = 0;
	double			 self0 = 0, self1 = 0, hz, secs;
	long long		 p0 = -1, p1 = -1, b0 = -1, b1 = -1;
	long long		 m0 = -1, m1 = -1;
	int			 ch, fd, one = 1, subscribed = 0, phase = 0;
	int			 lowat = SUB_LOWAT;
	FILE			*f;

	while ((ch = getopt(argc, argv, "b:c:d:i:o:p:Rw:")) != -1) {
		switch (ch) {
		case 'b':
			bpid = sub_number(optarg, "-b", INT_MAX);
			break;
		case 'c':
			count = sub_number(optarg, "-c", ULONG_MAX);
			break;
		case 'd':
			dur = sub_number(optarg, "-d", 86400);
			break;
		case 'i':
			idle = sub_number(optarg, "-i", 3600);
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'p':
			pid = sub_number(optarg, "-p", INT_MAX);
			break;
		case 'R':
			sub_records = 1;
			break;
		case 'w':
			warm = sub_number(optarg, "-w", 3600);
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
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(sub_number(argv[2], "port", 65535));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		errx(2, "%s: not an IPv4 address", argv[1]);
	if (outpath != NULL && (sub_out = fopen(outpath, "w")) == NULL)
		err(1, "%s", outpath);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sub_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((buf = malloc(cap)) == NULL)
		err(1, "malloc");
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		err(1, "connect %s:%s", argv[1], argv[2]);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);

	/* CONNECT: MQTT 3.1.1, clean session, keep-alive off. */
	n = 0;
	n += sub_str(pkt + 16 + n, "MQTT");
	pkt[16 + n++] = 4;
	pkt[16 + n++] = 0x02;
	pkt[16 + n++] = 0;
	pkt[16 + n++] = 0;
	snprintf((char *)buf, 64, "pipeline-sub-%ld", (long)getpid());
	n += sub_str(pkt + 16 + n, (char *)buf);
	off = 16 - 1 - (n < 128 ? 1 : 2);
	pkt[off] = 0x10;
	sub_varint(pkt + off + 1, n);
	sub_write(fd, pkt + off, 16 - off + n);
	/* SUBSCRIBE, packet id 1, QoS 0. */
	n = 0;
	pkt[16 + n++] = 0;
	pkt[16 + n++] = 1;
	n += sub_str(pkt + 16 + n, filter);
	pkt[16 + n++] = 0;
	off = 16 - 1 - (n < 128 ? 1 : 2);
	pkt[off] = 0x82;
	sub_varint(pkt + off + 1, n);
	sub_write(fd, pkt + off, 16 - off + n);

	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		now = sub_now();
		/* Window edges, checked between reads. */
		if (phase == 0 && count == 0 && sub_total.msgs > 0) {
			first = last;
			start = first + warm;
			phase = 1;
		}
		if (phase == 1 && now >= start) {
			c0 = sub_total;
			start = now;
			self0 = sub_self_cpu();
			p0 = sub_ticks(pid);
			b0 = sub_ticks(bpid);
			m0 = sub_machine();
			end = start + dur;
			phase = 2;
		}
		if (phase == 2 && now >= end) {
			c1 = sub_total;
			end = now;
			self1 = sub_self_cpu();
			p1 = sub_ticks(pid);
			b1 = sub_ticks(bpid);
			m1 = sub_machine();
			phase = 3;
		}
		if (sub_quit)
			break;
		if (count != 0 && sub_total.msgs >= count)
			break;
		if (phase == 3 && now - last >= idle)
			break;
		/*
		 * SO_RCVLOWAT wakes us only for a good load of bytes; what
		 * is left below it is read when the poll times out.
		 */
		if ((r = poll(&pfd, 1, 20)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if (len == cap) {
			cap *= 2;
			if ((buf = realloc(buf, cap)) == NULL)
				err(1, "realloc");
		}
		if ((r = recv(fd, buf + len, cap - len, MSG_DONTWAIT)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err(1, "read from the broker");
		}
		if (r == 0)
			errx(1, "the broker closed the connection after "
			    "%" PRIu64 " messages", sub_total.msgs);
		len += r;
		off = 0;
		while (len - off >= 2 && sub_packet(buf + off, len - off, &plen,
		    &hlen)) {
			switch (buf[off] >> 4) {
			case 3:
				sub_publish(buf[off] & 0x0f, buf + off + hlen,
				    plen - hlen);
				last = sub_now();
				break;
			case 2:
				if (plen - hlen < 2 || buf[off + hlen + 1] != 0)
					errx(1, "the broker refused the "
					    "connection");
				break;
			case 9:
				if (plen - hlen < 3 ||
				    buf[off + hlen + 2] == 0x80)
					errx(1, "the broker refused the "
					    "subscription to %s", filter);
				if ((f = fopen(ready, "w")) == NULL ||
				    fputs("ready\n", f) == EOF ||
				    fclose(f) == EOF)
					err(1, "%s", ready);
				subscribed = 1;
				break;
			default:
				break;
			}
			off += plen;
		}
		memmove(buf, buf + off, len - off);
		len -= off;
	}
	if (!subscribed)
		errx(1, "stopped before the broker acknowledged the "
		    "subscription");
	if (sub_out != NULL && fclose(sub_out) == EOF)
		err(1, "%s", outpath);

	hz = sysconf(_SC_CLK_TCK);
	if (phase < 3) {
		/* Ended early: the window is what there was of it. */
		if (phase < 2) {
			c0 = sub_total;
			start = sub_now();
			self0 = sub_self_cpu();
			p0 = sub_ticks(pid);
			b0 = sub_ticks(bpid);
			m0 = sub_machine();
		}
		c1 = sub_total;
		end = sub_now();
		self1 = sub_self_cpu();
		p1 = sub_ticks(pid);
		b1 = sub_ticks(bpid);
		m1 = sub_machine();
	}
	secs = end - start;
	if (secs <= 0)
		secs = 1e-9;
	printf("msgs=%" PRIu64 " bytes=%" PRIu64 " records=%" PRIu64
	    " seconds=%.3f msgs_per_s=%.0f bytes_per_s=%.0f"
	    " records_per_s=%.0f total_msgs=%" PRIu64 " total_bytes=%" PRIu64
	    " total_records=%" PRIu64 " min_size=%zu max_size=%zu"
	    " self_cpu_pct=%.0f pid_cpu_pct=%.0f broker_cpu_pct=%.0f"
	    " machine_cpu_pct=%.0f cpus=%ld complete=%d\n",
	    c1.msgs - c0.msgs, c1.bytes - c0.bytes, c1.records - c0.records,
	    secs, (c1.msgs - c0.msgs) / secs, (c1.bytes - c0.bytes) / secs,
	    (c1.records - c0.records) / secs, sub_total.msgs, sub_total.bytes,
	    sub_total.records, sub_min == SIZE_MAX ? 0 : sub_min, sub_max,
	    100 * (self1 - self0) / secs,
	    p0 >= 0 && p1 >= 0 ? 100 * (p1 - p0) / hz / secs : -1.0,
	    b0 >= 0 && b1 >= 0 ? 100 * (b1 - b0) / hz / secs : -1.0,
	    m0 >= 0 && m1 >= 0 ? 100 * (m1 - m0) / hz / secs : -1.0,
	    sysconf(_SC_NPROCESSORS_ONLN),
	    phase == 3 || (count != 0 && sub_total.msgs >= count));
	return (0);
}

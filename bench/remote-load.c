/* SPDX-License-Identifier: ISC */

/*
 * The load generator of bench/remote: the same GET, as a remote call over
 * MQTT and over HTTP, with the same number of calls in flight, timed the
 * same way (from the request written to its whole answer read).
 *
 * usage: remote-load mqtt [-c inflight] [-d seconds] [-q qos] [-w warmup]
 *            host port request-topic response-topic path
 *        remote-load http [-c inflight] [-d seconds] [-w warmup]
 *            host port path
 *
 * mqtt: one libmosquitto client publishes request documents
 * {"path": path, "method": "GET", "headers": [{"request-id": N}]} on
 * request-topic and reads the answers on response-topic; each answer
 * (matched by its request-id) lets the next request go, so that exactly
 * -c requests are in flight.  Before the run it sends probe requests
 * until one is answered (the daemon's client is connected and
 * subscribed), for at most 15 s.  http: -c keep-alive connections, one
 * GET path in flight on each, HTTP/1.1 answers read by their
 * Content-Length.
 *
 * Both disable Nagle's algorithm (TCP_NODELAY) on their sockets, so
 * that a small request is not held back waiting for an ACK.
 *
 * No threads: one poll() loop.  The first -w seconds (default 1) warm up
 * and are not counted; then -d seconds (default 10) are measured: calls
 * whose answer came inside the window, their latencies (p50, p99, max).
 * Then no new request goes out and the loop waits up to 5 s for those
 * still in flight.  One line of key=value pairs on stdout: calls,
 * seconds, calls_per_s, p50_ms, p99_ms, max_ms, errors (answers that
 * are not state/status 200, unknown request-ids, broken connections) and
 * lost (requests never answered).  Exit status 0, or 1 on a setup
 * failure.
 */

#include <sys/socket.h>

#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bench.h"

#define RL_RING		65536	/* send times by request-id */
#define RL_MAXFLIGHT	4096
#define RL_BUF		16384

struct rl_stats {
	double		 t_start;	/* window opens */
	double		 t_end;		/* window closes */
	uint64_t	 calls;		/* answered inside the window */
	uint64_t	 errors;
	uint64_t	 inflight;
	uint32_t	*lat_us;	/* latencies inside the window */
	size_t		 nlat, caplat;
};

static struct rl_stats	rl;

static void
rl_usage(void)
{
	fprintf(stderr, "usage: remote-load mqtt [-c inflight] [-d seconds] "
	    "[-q qos] [-w warmup]\n"
	    "           host port request-topic response-topic path\n"
	    "       remote-load http [-c inflight] [-d seconds] [-w warmup]\n"
	    "           host port path\n");
	exit(2);
}

/* One call answered at now, sent at sent. */
static void
rl_answered(double sent, double now, int ok)
{
	rl.inflight--;
	if (!ok)
		rl.errors++;
	if (now < rl.t_start || now >= rl.t_end)
		return;
	rl.calls++;
	if (rl.nlat == rl.caplat) {
		rl.caplat = rl.caplat == 0 ? 65536 : rl.caplat * 2;
		if ((rl.lat_us = realloc(rl.lat_us, rl.caplat *
		    sizeof *rl.lat_us)) == NULL)
			err(1, "realloc");
	}
	rl.lat_us[rl.nlat++] = (uint32_t)((now - sent) * 1e6 + 0.5);
}

static int
rl_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

static double
rl_pct(double p)
{
	size_t	i;

	if (rl.nlat == 0)
		return (0);
	i = (size_t)(p * (rl.nlat - 1) + 0.5);
	return (rl.lat_us[i] / 1000.0);
}

static void
rl_report(void)
{
	double	secs = rl.t_end - rl.t_start;

	qsort(rl.lat_us, rl.nlat, sizeof *rl.lat_us, rl_cmp);
	printf("calls=%" PRIu64 " seconds=%.3f calls_per_s=%.0f p50_ms=%.3f "
	    "p99_ms=%.3f max_ms=%.3f errors=%" PRIu64 " lost=%" PRIu64 "\n",
	    rl.calls, secs, rl.calls / secs, rl_pct(0.50), rl_pct(0.99),
	    rl_pct(1.0), rl.errors, rl.inflight);
}

/* --- MQTT --------------------------------------------------------------- */

struct rl_mqtt {
	struct mosquitto	*m;
	const char		*req_topic;
	const char		*path;
	int			 qos;
	int			 connected;
	int			 subscribed;
	uint64_t		 next_id;	/* next request-id */
	double			 sent[RL_RING];
	unsigned char		 pending[RL_RING];
	uint64_t		 probe_answered;
	int			 sending;	/* 0: probes only */
};

static struct rl_mqtt	mq;

static void
rl_mqtt_send(void)
{
	char	buf[1024];
	int	len, rc;
	size_t	slot;

	slot = mq.next_id % RL_RING;
	if (mq.pending[slot])
		errx(1, "request-id %" PRIu64 " would reuse a slot still in "
		    "flight", mq.next_id);
	len = snprintf(buf, sizeof buf, "{\"path\":\"%s\",\"method\":\"GET\","
	    "\"headers\":[{\"request-id\":%" PRIu64 "}]}", mq.path,
	    mq.next_id);
	if (len < 0 || (size_t)len >= sizeof buf)
		errx(1, "path too long");
	mq.pending[slot] = 1;
	mq.sent[slot] = bench_mono();
	rl.inflight++;
	mq.next_id++;
	if ((rc = mosquitto_publish(mq.m, NULL, mq.req_topic, len, buf,
	    mq.qos, false)) != MOSQ_ERR_SUCCESS)
		errx(1, "publish: %s", mosquitto_strerror(rc));
}

static void
rl_mqtt_on_connect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	(void)arg;
	mq.connected = rc == 0;
}

static void
rl_mqtt_on_disconnect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	(void)arg;
	(void)rc;
	mq.connected = 0;
}

static void
rl_mqtt_on_subscribe(struct mosquitto *m, void *arg, int mid, int n,
    const int *granted)
{
	(void)m;
	(void)arg;
	(void)mid;
	(void)n;
	(void)granted;
	mq.subscribed = 1;
}

/* An answer: {"request-id":N,"state":S,...}; libmosquitto terminates. */
static void
rl_mqtt_on_message(struct mosquitto *m, void *arg,
    const struct mosquitto_message *msg)
{
	const char	*p, *s;
	uint64_t	 id;
	size_t		 slot;
	double		 now = bench_mono();
	int		 state = 0;

	(void)m;
	(void)arg;
	if ((p = strstr(msg->payload, "\"request-id\":")) == NULL) {
		rl.errors++;
		return;
	}
	p += strlen("\"request-id\":");
	if (*p == '"') {
		/* A probe ("p<n>"): the daemon answers. */
		mq.probe_answered++;
		return;
	}
	id = strtoull(p, NULL, 10);
	slot = id % RL_RING;
	if (id >= mq.next_id || !mq.pending[slot]) {
		rl.errors++;
		return;
	}
	if ((s = strstr(p, "\"state\":")) != NULL)
		state = atoi(s + strlen("\"state\":"));
	mq.pending[slot] = 0;
	rl_answered(mq.sent[slot], now, state == 200);
	if (mq.sending && !bench_quit && now < rl.t_end)
		rl_mqtt_send();
}

/* One turn of the loop: wait for the socket up to ms, then serve it. */
static void
rl_mqtt_turn(int ms)
{
	struct pollfd	pfd;
	int		rc;

	pfd.fd = mosquitto_socket(mq.m);
	if (pfd.fd < 0)
		errx(1, "lost the broker");
	pfd.events = POLLIN | (mosquitto_want_write(mq.m) ? POLLOUT : 0);
	pfd.revents = 0;
	if (poll(&pfd, 1, ms) == -1 && errno != EINTR)
		err(1, "poll");
	if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
		if ((rc = mosquitto_loop_read(mq.m, 1)) != MOSQ_ERR_SUCCESS)
			errx(1, "read: %s", mosquitto_strerror(rc));
	if (mosquitto_want_write(mq.m))
		if ((rc = mosquitto_loop_write(mq.m, 1)) != MOSQ_ERR_SUCCESS)
			errx(1, "write: %s", mosquitto_strerror(rc));
	if ((rc = mosquitto_loop_misc(mq.m)) != MOSQ_ERR_SUCCESS)
		errx(1, "misc: %s", mosquitto_strerror(rc));
}

static int
rl_mqtt(int argc, char **argv, unsigned long inflight, unsigned long dur,
    unsigned long warm, int qos)
{
	char	 probe[512];
	double	 deadline, next_probe = 0;
	unsigned long i;
	int	 rc, n = 0, len;

	if (argc != 5)
		rl_usage();
	mq.req_topic = argv[2];
	mq.path = argv[4];
	mq.qos = qos;
	mq.next_id = 1;
	mosquitto_lib_init();
	if ((mq.m = mosquitto_new(NULL, true, NULL)) == NULL)
		err(1, "mosquitto_new");
	mosquitto_connect_callback_set(mq.m, rl_mqtt_on_connect);
	mosquitto_disconnect_callback_set(mq.m, rl_mqtt_on_disconnect);
	mosquitto_subscribe_callback_set(mq.m, rl_mqtt_on_subscribe);
	mosquitto_message_callback_set(mq.m, rl_mqtt_on_message);
	mosquitto_int_option(mq.m, MOSQ_OPT_SEND_MAXIMUM, 65535);
	mosquitto_int_option(mq.m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_max_inflight_messages_set(mq.m, 0);
	if ((rc = mosquitto_connect(mq.m, argv[0], bench_range(argv[1],
	    "port", 1, 65535), 60)) != MOSQ_ERR_SUCCESS)
		errx(1, "connect %s:%s: %s", argv[0], argv[1],
		    mosquitto_strerror(rc));
	deadline = bench_mono() + 10;
	while (!mq.connected && bench_mono() < deadline)
		rl_mqtt_turn(100);
	if (!mq.connected)
		errx(1, "no CONNACK from %s:%s", argv[0], argv[1]);
	mosquitto_subscribe(mq.m, NULL, argv[3], qos);
	while (!mq.subscribed && bench_mono() < deadline)
		rl_mqtt_turn(100);
	if (!mq.subscribed)
		errx(1, "no SUBACK for %s", argv[3]);

	/* Probes until the daemon answers: it is connected and subscribed. */
	deadline = bench_mono() + 15;
	while (mq.probe_answered == 0 && bench_mono() < deadline &&
	    !bench_quit) {
		if (bench_mono() >= next_probe) {
			len = snprintf(probe, sizeof probe, "{\"path\":\"%s\","
			    "\"method\":\"GET\",\"headers\":[{\"request-id\":"
			    "\"p%d\"}]}", mq.path, n++);
			mosquitto_publish(mq.m, NULL, mq.req_topic, len, probe,
			    qos, false);
			next_probe = bench_mono() + 0.2;
		}
		rl_mqtt_turn(20);
	}
	if (mq.probe_answered == 0)
		errx(1, "no answer to a probe on %s within 15 s", mq.req_topic);

	rl.t_start = bench_mono() + warm;
	rl.t_end = rl.t_start + dur;
	mq.sending = 1;
	for (i = 0; i < inflight; i++)
		rl_mqtt_send();
	while (!bench_quit && bench_mono() < rl.t_end)
		rl_mqtt_turn(50);
	rl.t_end = rl.t_end < bench_mono() ? rl.t_end : bench_mono();
	deadline = bench_mono() + 5;
	while (rl.inflight > 0 && bench_mono() < deadline)
		rl_mqtt_turn(50);
	rl_report();
	mosquitto_disconnect(mq.m);
	mosquitto_destroy(mq.m);
	mosquitto_lib_cleanup();
	return (0);
}

/* --- HTTP --------------------------------------------------------------- */

struct rl_conn {
	int	 fd;
	double	 sent;
	int	 busy;
	size_t	 len;
	char	 buf[RL_BUF];
};

static struct sockaddr_in	 rl_addr;
static char			 rl_req[1024];
static size_t			 rl_reqlen;

static void
rl_http_open(struct rl_conn *c)
{
	if ((c->fd = bench_dial((struct sockaddr *)&rl_addr, sizeof rl_addr,
	    1, 1)) == -1)
		err(1, "connect");
	c->len = 0;
	c->busy = 0;
}

static void
rl_http_send(struct rl_conn *c)
{
	ssize_t	n;

	c->sent = bench_mono();
	/* Small enough for the socket buffer of an idle connection. */
	if ((n = write(c->fd, rl_req, rl_reqlen)) != (ssize_t)rl_reqlen)
		err(1, "write");
	c->busy = 1;
	rl.inflight++;
}

/*
 * A connection that broke or answered what cannot be read: an error,
 * and a new connection in its place, which sends again unless draining.
 */
static void
rl_http_reopen(struct rl_conn *c, int draining)
{
	close(c->fd);
	rl.inflight--;
	rl.errors++;
	rl_http_open(c);
	if (!draining)
		rl_http_send(c);
}

/* A whole answer in c->buf?  Its length, 0 if not yet, -1 if broken. */
static ssize_t
rl_http_answer(struct rl_conn *c, int *status)
{
	char	*end, *p, *line;
	size_t	 hlen, clen = 0;

	c->buf[c->len] = '\0';
	if ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
		return (c->len >= RL_BUF - 1 ? -1 : 0);
	hlen = end - c->buf + 4;
	if (strncmp(c->buf, "HTTP/1.", 7) != 0)
		return (-1);
	*status = atoi(c->buf + 9);
	for (line = strstr(c->buf, "\r\n"); line != NULL && line < end;
	    line = strstr(line + 2, "\r\n")) {
		p = line + 2;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			clen = strtoul(p + 15, NULL, 10);
	}
	if (hlen + clen >= RL_BUF)
		return (-1);
	if (c->len < hlen + clen)
		return (0);
	return (hlen + clen);
}

static int
rl_http(int argc, char **argv, unsigned long inflight, unsigned long dur,
    unsigned long warm)
{
	struct rl_conn	*conns;
	struct pollfd	*pfd;
	double		 now, deadline;
	ssize_t		 n, alen;
	unsigned long	 i;
	int		 status, draining = 0;

	if (argc != 3)
		rl_usage();
	if (bench_inet(&rl_addr, argv[0], bench_range(argv[1], "port", 1,
	    65535)) == -1)
		errx(2, "host: an IPv4 address, not %s", argv[0]);
	rl_reqlen = snprintf(rl_req, sizeof rl_req, "GET %s HTTP/1.1\r\n"
	    "Host: %s:%s\r\n\r\n", argv[2], argv[0], argv[1]);
	if (rl_reqlen >= sizeof rl_req)
		errx(2, "path too long");
	if ((conns = calloc(inflight, sizeof *conns)) == NULL ||
	    (pfd = calloc(inflight, sizeof *pfd)) == NULL)
		err(1, "calloc");
	for (i = 0; i < inflight; i++)
		rl_http_open(&conns[i]);

	rl.t_start = bench_mono() + warm;
	rl.t_end = rl.t_start + dur;
	deadline = rl.t_end + 5;
	for (i = 0; i < inflight; i++)
		rl_http_send(&conns[i]);
	while (rl.inflight > 0) {
		now = bench_mono();
		if (!draining && (bench_quit || now >= rl.t_end)) {
			draining = 1;
			if (rl.t_end > now)
				rl.t_end = now;
		}
		if (now >= deadline)
			break;
		for (i = 0; i < inflight; i++) {
			pfd[i].fd = conns[i].busy ? conns[i].fd : -1;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, inflight, 50) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		for (i = 0; i < inflight; i++) {
			struct rl_conn	*c = &conns[i];

			if (pfd[i].revents == 0)
				continue;
			n = read(c->fd, c->buf + c->len, RL_BUF - 1 - c->len);
			if (n <= 0) {
				/* Closed. */
				rl_http_reopen(c, draining);
				continue;
			}
			c->len += n;
			if ((alen = rl_http_answer(c, &status)) == 0)
				continue;
			if (alen < 0) {
				rl_http_reopen(c, draining);
				continue;
			}
			now = bench_mono();
			c->busy = 0;
			rl_answered(c->sent, now, status == 200);
			memmove(c->buf, c->buf + alen, c->len - alen);
			c->len -= alen;
			if (!draining && !bench_quit && now < rl.t_end)
				rl_http_send(c);
		}
	}
	rl_report();
	for (i = 0; i < inflight; i++)
		close(conns[i].fd);
	free(conns);
	free(pfd);
	return (0);
}

int
main(int argc, char **argv)
{
	unsigned long		 inflight = 32, dur = 10, warm = 1;
	unsigned long		 qos = 1;
	const char		*mode;
	int			 ch;

	if (argc < 2)
		rl_usage();
	mode = argv[1];
	argc--;
	argv++;
	while ((ch = getopt(argc, argv, "c:d:q:w:")) != -1) {
		switch (ch) {
		case 'c':
			inflight = bench_range(optarg, "-c", 1, RL_MAXFLIGHT);
			break;
		case 'd':
			dur = bench_range(optarg, "-d", 1, 86400);
			break;
		case 'q':
			qos = bench_range(optarg, "-q", 0, 2);
			break;
		case 'w':
			warm = bench_range(optarg, "-w", 0, 600);
			break;
		default:
			rl_usage();
		}
	}
	argc -= optind;
	argv += optind;

	bench_catch(NULL);
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(mode, "mqtt") == 0)
		return (rl_mqtt(argc, argv, inflight, dur, warm, qos));
	if (strcmp(mode, "http") == 0)
		return (rl_http(argc, argv, inflight, dur, warm));
	rl_usage();
	return (2);
}

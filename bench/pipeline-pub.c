/* SPDX-License-Identifier: ISC */

/*
 * The baseline publisher of bench/pipeline: a plain C libmosquitto
 * client that publishes given payloads as fast as the broker takes them.
 *
 * usage: pipeline-pub [-d seconds] [-q qos] host port topic payloadfile
 *
 * payloadfile holds the payloads, one a line (captured from uplinkd by
 * pipeline-sub -o); they are sent in turn, over and over, to topic.
 * No threads: mosquitto_publish() writes to the socket at once while the
 * kernel takes the bytes; when it does not, the packet waits in the
 * library's queue (mosquitto_want_write()) and mosquitto_loop() waits
 * for the socket to take it before the next publish, so the broker's
 * pace sets the rate and nothing piles up in this process.  Stops after
 * -d seconds (default 10) or at SIGTERM or SIGINT, writes out what the
 * library still holds, disconnects and prints one line of key=value
 * pairs: messages written (counted in on_publish, which libmosquitto
 * calls for QoS 0 once the packet is on the socket), payload bytes, the
 * time and the rate.
 */

#include <err.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bench.h"

static int			 pub_connected;
static int			 pub_connack = -1;
static uint64_t			 pub_written;

static void
pub_usage(void)
{
	fprintf(stderr, "usage: pipeline-pub [-d seconds] [-q qos] host port "
	    "topic payloadfile\n");
	exit(2);
}

static void
pub_on_connect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	(void)arg;
	pub_connack = rc;
	pub_connected = rc == 0;
}

static void
pub_on_disconnect(struct mosquitto *m, void *arg, int rc)
{
	(void)m;
	(void)arg;
	(void)rc;
	pub_connected = 0;
}

static void
pub_on_publish(struct mosquitto *m, void *arg, int mid)
{
	(void)m;
	(void)arg;
	(void)mid;
	pub_written++;
}

/* The payloads of file, one a line; their number in *n. */
static char **
pub_payloads(const char *path, size_t **lens, size_t *n)
{
	FILE	*f;
	char	**v = NULL, *line = NULL;
	size_t	 cap = 0, lcap = 0;
	ssize_t	 len;

	if ((f = fopen(path, "r")) == NULL)
		err(1, "%s", path);
	*n = 0;
	*lens = NULL;
	while ((len = getline(&line, &lcap, f)) != -1) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (*n == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			if ((v = realloc(v, cap * sizeof *v)) == NULL ||
			    (*lens = realloc(*lens, cap * sizeof **lens)) ==
			    NULL)
				err(1, "realloc");
		}
		if ((v[*n] = malloc(len)) == NULL)
			err(1, "malloc");
		memcpy(v[*n], line, len);
		(*lens)[*n] = len;
		(*n)++;
	}
	if (ferror(f))
		err(1, "%s", path);
	fclose(f);
	free(line);
	if (*n == 0)
		errx(1, "%s: no payloads", path);
	return (v);
}

int
main(int argc, char **argv)
{
	struct mosquitto	*m;
	char			**pay;
	size_t			*lens, npay, i = 0;
	uint64_t		 issued = 0, bytes = 0;
	unsigned long		 dur = 10, qos = 0;
	double			 t0, t1, deadline, cpu0;
	int			 ch, rc, port;

	while ((ch = getopt(argc, argv, "d:q:")) != -1) {
		switch (ch) {
		case 'd':
			dur = bench_range(optarg, "-d", 0, 86400);
			break;
		case 'q':
			qos = bench_range(optarg, "-q", 0, 2);
			break;
		default:
			pub_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 4 || dur == 0)
		pub_usage();
	port = bench_range(argv[1], "port", 0, 65535);
	pay = pub_payloads(argv[3], &lens, &npay);

	bench_catch(NULL);

	mosquitto_lib_init();
	if ((m = mosquitto_new(NULL, true, NULL)) == NULL)
		err(1, "mosquitto_new");
	mosquitto_connect_callback_set(m, pub_on_connect);
	mosquitto_disconnect_callback_set(m, pub_on_disconnect);
	mosquitto_publish_callback_set(m, pub_on_publish);
	if ((rc = mosquitto_connect(m, argv[0], port, 60)) != MOSQ_ERR_SUCCESS)
		errx(1, "connect %s:%d: %s", argv[0], port,
		    mosquitto_strerror(rc));
	t0 = bench_mono();
	while (pub_connack == -1) {
		if ((rc = mosquitto_loop(m, 100, 1)) != MOSQ_ERR_SUCCESS)
			errx(1, "waiting for CONNACK: %s",
			    mosquitto_strerror(rc));
		if (bench_mono() - t0 > 10)
			errx(1, "no CONNACK within 10 s");
	}
	if (!pub_connected)
		errx(1, "the broker refused the connection: %s",
		    mosquitto_connack_string(pub_connack));

	t0 = bench_mono();
	cpu0 = bench_self_cpu();
	deadline = t0 + dur;
	while (!bench_quit) {
		if (mosquitto_want_write(m)) {
			/* The socket is full: wait until it takes more. */
			if ((rc = mosquitto_loop(m, 100, 1)) !=
			    MOSQ_ERR_SUCCESS)
				errx(1, "mosquitto_loop: %s",
				    mosquitto_strerror(rc));
		} else {
			rc = mosquitto_publish(m, NULL, argv[2], lens[i],
			    pay[i], qos, false);
			if (rc != MOSQ_ERR_SUCCESS)
				errx(1, "publish: %s", mosquitto_strerror(rc));
			bytes += lens[i];
			issued++;
			if (++i == npay)
				i = 0;
		}
		if ((issued & 63) == 0 && bench_mono() >= deadline)
			break;
	}
	/* Whatever the library still holds goes out before the count. */
	while (mosquitto_want_write(m) && pub_connected)
		if ((rc = mosquitto_loop(m, 100, 1)) != MOSQ_ERR_SUCCESS)
			errx(1, "mosquitto_loop: %s", mosquitto_strerror(rc));
	t1 = bench_mono();
	printf("msgs=%" PRIu64 " issued=%" PRIu64 " bytes=%" PRIu64
	    " seconds=%.3f msgs_per_s=%.0f self_cpu_pct=%.0f payloads=%zu\n",
	    pub_written, issued, bytes, t1 - t0, pub_written / (t1 - t0),
	    100 * (bench_self_cpu() - cpu0) / (t1 - t0), npay);
	mosquitto_disconnect(m);
	mosquitto_loop(m, 100, 1);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	for (i = 0; i < npay; i++)
		free(pay[i]);
	free(pay);
	free(lens);
	return (pub_written == issued ? 0 : 1);
}

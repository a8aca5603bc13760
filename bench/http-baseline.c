/* SPDX-License-Identifier: ISC */

/*
 * The physical limit for bench/http: the smallest evhttp server that
 * answers every request with one fixed JSON body and the same headers
 * uplinkd sends.  Whatever uplinkd does beyond this costs its share of
 * the ratio bench/http prints.
 *
 * usage: http-baseline portfile body
 *
 * Listens on 127.0.0.1 on a port the kernel picks, writes that port
 * to portfile once it listens, and serves until SIGTERM or SIGINT.
 */

#include <sys/socket.h>

#include <netinet/in.h>

#include <err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#include "bench.h"

static void	baseline_request_cb(struct evhttp_request *, void *);
static void	baseline_signal_cb(evutil_socket_t, short, void *);

static const char	*baseline_body;
static size_t		 baseline_len;

int
main(int argc, char **argv)
{
	struct event_base		*base;
	struct evhttp			*evh;
	struct evhttp_bound_socket	*bound;
	struct event			*sigterm, *sigint;
	struct sockaddr_storage		 ss;
	ev_socklen_t			 sslen = sizeof(ss);
	int				 port;

	if (argc != 3) {
		fprintf(stderr, "usage: %s portfile body\n", argv[0]);
		return (1);
	}
	baseline_body = argv[2];
	baseline_len = strlen(baseline_body);

	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		errx(1, "event_base_new failed");
	if ((evh = evhttp_new(base)) == NULL)
		errx(1, "evhttp_new failed");
	evhttp_set_gencb(evh, baseline_request_cb, NULL);
	if ((bound = evhttp_bind_socket_with_handle(evh, "127.0.0.1", 0)) ==
	    NULL)
		errx(1, "cannot listen on 127.0.0.1");
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&ss, &sslen) == -1)
		err(1, "getsockname");
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

	sigterm = evsignal_new(base, SIGTERM, baseline_signal_cb, base);
	sigint = evsignal_new(base, SIGINT, baseline_signal_cb, base);
	if (sigterm == NULL || sigint == NULL ||
	    evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1)
		errx(1, "cannot catch signals");

	bench_put(argv[1], "%d\n", port);

	event_base_dispatch(base);

	event_free(sigterm);
	event_free(sigint);
	evhttp_free(evh);
	event_base_free(base);
	return (0);
}

/* Every request gets the fixed body; the request is evhttp's. */
static void
baseline_request_cb(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf = evhttp_request_get_output_buffer(req);

	(void)arg;
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(buf, baseline_body, baseline_len);
	evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* TERM or INT: leave the loop; arg is the event_base. */
static void
baseline_signal_cb(evutil_socket_t sig, short events, void *arg)
{
	(void)sig;
	(void)events;
	event_base_loopbreak(arg);
}

/* SPDX-License-Identifier: ISC */

/*
 * REST requests for bench/pipeline, many of them over one keep-alive
 * connection: setting up a link and thousands of message groups, and
 * reading /metrics and link status.
 *
 * usage: pipeline-api [-k tokenfile] [-o file] unix:path | tcp:host:port
 *
 * Reads requests from standard input, one a line: METHOD PATH [BODY]
 * (the body is the rest of the line, sent as application/json).  Each
 * is sent as HTTP/1.1 with the token of tokenfile as a Bearer token,
 * and its answer read by Content-Length.  An answer that is not 2xx
 * ends the run with status 1 after printing it.  With -o the body of
 * the last answer is written to file.  Prints one line of key=value
 * pairs: requests, seconds, the mean and largest answer time.
 *
 * Over TCP the socket is set to acknowledge at once before each read
 * (TCP_QUICKACK).  uplinkd's answers longer than 16 KiB leave libevent
 * in 16 KiB writes, and the server does not set TCP_NODELAY: the short
 * last write waits (Nagle) for the acknowledgement that a delayed ACK
 * holds back, up to 40 ms an answer once the connection has left its
 * quick-ACK start.  Setting up thousands of groups, whose every answer
 * is the link's whole group list, would take minutes.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void
api_usage(void)
{
	fprintf(stderr, "usage: pipeline-api [-k tokenfile] [-o file] "
	    "unix:path | tcp:host:port\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench_rest	 r;
	char			*token = NULL;
	const char		*outpath = NULL;
	size_t			 nreq = 0;
	double			 t0, t, tmax = 0, begin;
	int			 fd, tcp;

	if (bench_rest_options(argc, argv, &token, &outpath) == -1)
		api_usage();
	fd = bench_connect(argv[optind], 0);
	tcp = strncmp(argv[optind], "tcp:", 4) == 0;
	memset(&r, 0, sizeof r);

	begin = bench_mono();
	while (bench_rest_next(&r, stdin, token)) {
		t0 = bench_mono();
		if (!bench_rest_call(&r, fd, tcp))
			errx(1, "answer to %s %s without Content-Length",
			    r.line, r.path);
		if ((t = bench_mono() - t0) > tmax)
			tmax = t;
		if (r.ans.len < 12 || strncmp(r.ans.data, "HTTP/1.", 7) != 0)
			errx(1, "not an HTTP answer to %s %s", r.line, r.path);
		bench_rest_done(&r, atoi(r.ans.data + 9), outpath,
		    "pipeline-api");
		nreq++;
	}
	t = bench_mono() - begin;
	printf("requests=%zu seconds=%.3f mean_ms=%.2f max_ms=%.2f\n", nreq, t,
	    nreq != 0 ? 1000 * t / nreq : 0.0, 1000 * tmax);
	close(fd);
	bench_rest_free(&r);
	free(token);
	return (0);
}

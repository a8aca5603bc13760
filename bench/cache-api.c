/* SPDX-License-Identifier: ISC */

/*
 * REST requests for bench/cache: setting up clients and groups, reading
 * /metrics and the store-and-forward backlog.
 *
 * usage: cache-api [-k tokenfile] [-o file] port
 *
 * Reads requests from standard input, one a line: METHOD PATH [BODY]
 * (the body, the rest of the line, is sent as application/json), and
 * sends them in turn over one HTTP/1.1 keep-alive connection to
 * 127.0.0.1:port, with the first line of tokenfile as a Bearer token.
 * Each answer is read by its Content-Length.  One that is not 2xx ends
 * the run with status 1 after it is printed to standard error.  With -o
 * the body of the last answer is written to file.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void
api_usage(void)
{
	fprintf(stderr, "usage: cache-api [-k tokenfile] [-o file] port\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	struct bench_rest	 r;
	char			*token = NULL;
	const char		*outpath = NULL, *port;
	int			 fd, status;

	if (bench_rest_options(argc, argv, &token, &outpath) == -1)
		api_usage();
	port = argv[optind];
	bench_inet(&sin, "127.0.0.1", atoi(port));
	if ((fd = bench_dial((struct sockaddr *)&sin, sizeof sin, 1, 1)) == -1)
		err(1, "connect 127.0.0.1:%s", port);
	memset(&r, 0, sizeof r);

	while (bench_rest_next(&r, stdin, token)) {
		bench_rest_call(&r, fd, 0);
		status = r.ans.len > 12 &&
		    strncmp(r.ans.data, "HTTP/1.", 7) == 0 ?
		    atoi(r.ans.data + 9) : 0;
		bench_rest_done(&r, status, outpath, "cache-api");
	}
	close(fd);
	return (0);
}

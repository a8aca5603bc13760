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

#define _GNU_SOURCE		/* memmem */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static double
api_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
api_usage(void)
{
	fprintf(stderr, "usage: pipeline-api [-k tokenfile] [-o file] "
	    "unix:path | tcp:host:port\n");
	exit(2);
}

/* A connected socket to unix:path or tcp:host:port. */
static int
api_connect(const char *addr)
{
	struct sockaddr_un	 sun;
	struct sockaddr_in	 sin;
	const char		*colon;
	char			 host[64];
	int			 fd;

	if (strncmp(addr, "unix:", 5) == 0) {
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		if (strlen(addr + 5) >= sizeof sun.sun_path)
			errx(2, "%s: path too long", addr);
		memcpy(sun.sun_path, addr + 5, strlen(addr + 5) + 1);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
			err(1, "socket");
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
			err(1, "connect %s", addr);
		return (fd);
	}
	if (strncmp(addr, "tcp:", 4) != 0 ||
	    (colon = strrchr(addr + 4, ':')) == NULL ||
	    (size_t)(colon - addr - 4) >= sizeof host)
		errx(2, "%s: not unix:path or tcp:host:port", addr);
	memcpy(host, addr + 4, colon - addr - 4);
	host[colon - addr - 4] = '\0';
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		errx(2, "%s: not an IPv4 address", host);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		err(1, "connect %s", addr);
	return (fd);
}

static void
api_send(int fd, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "send");
		}
		p += n;
		len -= n;
	}
}

/* The first line of path, without its newline (caller frees). */
static char *
api_token(const char *path)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if ((f = fopen(path, "r")) == NULL)
		err(1, "%s", path);
	if ((n = getline(&line, &cap, f)) == -1)
		errx(1, "%s: empty", path);
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return (line);
}

int
main(int argc, char **argv)
{
	char		*token = NULL, *line = NULL, *req = NULL, *buf, *path;
	char		*body, *hend, *p, *q;
	const char	*outpath = NULL;
	size_t		 lcap = 0, rcap = 0, bcap = 1 << 20, blen = 0, hlen;
	size_t		 clen, need, nreq = 0;
	ssize_t		 llen, n;
	double		 t0, t, tmax = 0, begin;
	int		 ch, fd, status, have_len, rlen, one = 1, tcp;
	FILE		*f;

	while ((ch = getopt(argc, argv, "k:o:")) != -1) {
		switch (ch) {
		case 'k':
			token = api_token(optarg);
			break;
		case 'o':
			outpath = optarg;
			break;
		default:
			api_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		api_usage();
	fd = api_connect(argv[0]);
	tcp = strncmp(argv[0], "tcp:", 4) == 0;
	if ((buf = malloc(bcap)) == NULL)
		err(1, "malloc");

	begin = api_now();
	while ((llen = getline(&line, &lcap, stdin)) != -1) {
		if (llen > 0 && line[llen - 1] == '\n')
			line[--llen] = '\0';
		if (llen == 0)
			continue;
		if ((path = strchr(line, ' ')) == NULL)
			errx(2, "not METHOD PATH [BODY]: %s", line);
		*path++ = '\0';
		if ((body = strchr(path, ' ')) != NULL)
			*body++ = '\0';
		need = llen + 512 + (token != NULL ? strlen(token) : 0);
		if (need > rcap) {
			rcap = need;
			if ((req = realloc(req, rcap)) == NULL)
				err(1, "realloc");
		}
		rlen = snprintf(req, rcap, "%s %s HTTP/1.1\r\n"
		    "Host: localhost\r\n%s%s%s"
		    "%sContent-Length: %zu\r\n\r\n%s", line, path,
		    token != NULL ? "Authorization: Bearer " : "",
		    token != NULL ? token : "", token != NULL ? "\r\n" : "",
		    body != NULL ? "Content-Type: application/json\r\n" : "",
		    body != NULL ? strlen(body) : 0, body != NULL ? body : "");
		if (rlen < 0 || (size_t)rlen >= rcap)
			errx(1, "request too long");
		t0 = api_now();
		api_send(fd, req, rlen);

		/* The answer: header, then Content-Length bytes of body. */
		hlen = clen = 0;
		have_len = 0;
		for (;;) {
			if (hlen == 0 && (hend = memmem(buf, blen, "\r\n\r\n",
			    4)) != NULL) {
				hlen = hend + 4 - buf;
				for (p = buf; p < hend; p = q + 2) {
					q = memmem(p, hend + 2 - p, "\r\n", 2);
					if (q == NULL)
						break;
					if (q - p > 15 && strncasecmp(p,
					    "Content-Length:", 15) == 0) {
						clen = strtoul(p + 15, NULL,
						    10);
						have_len = 1;
					}
				}
				if (!have_len)
					errx(1, "answer to %s %s without "
					    "Content-Length", line, path);
			}
			if (hlen != 0 && blen >= hlen + clen)
				break;
			if (blen == bcap || (hlen != 0 && hlen + clen > bcap)) {
				while (bcap < blen + 1 || bcap < hlen + clen)
					bcap *= 2;
				if ((buf = realloc(buf, bcap)) == NULL)
					err(1, "realloc");
			}
			if (tcp)
				setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK,
				    &one, sizeof one);
			if ((n = recv(fd, buf + blen, bcap - blen, 0)) == -1) {
				if (errno == EINTR)
					continue;
				err(1, "recv");
			}
			if (n == 0)
				errx(1, "the server closed the connection "
				    "during %s %s", line, path);
			blen += n;
		}
		if ((t = api_now() - t0) > tmax)
			tmax = t;
		if (blen < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
			errx(1, "not an HTTP answer to %s %s", line, path);
		status = atoi(buf + 9);
		if (status < 200 || status > 299) {
			need = hlen + clen > 2000 ? 2000 : hlen + clen;
			fprintf(stderr, "pipeline-api: %s %s: %.*s\n", line,
			    path, (int)need, buf);
			return (1);
		}
		if (outpath != NULL) {
			if ((f = fopen(outpath, "w")) == NULL ||
			    fwrite(buf + hlen, 1, clen, f) != clen ||
			    fclose(f) == EOF)
				err(1, "%s", outpath);
		}
		memmove(buf, buf + hlen + clen, blen - hlen - clen);
		blen -= hlen + clen;
		nreq++;
	}
	t = api_now() - begin;
	printf("requests=%zu seconds=%.3f mean_ms=%.2f max_ms=%.2f\n", nreq, t,
	    nreq != 0 ? 1000 * t / nreq : 0.0, 1000 * tmax);
	close(fd);
	free(line);
	free(req);
	free(buf);
	free(token);
	return (0);
}

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

#define _GNU_SOURCE		/* memmem */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void
api_usage(void)
{
	fprintf(stderr, "usage: cache-api [-k tokenfile] [-o file] port\n");
	exit(2);
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

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	char			*token = NULL, *line = NULL, *req = NULL;
	char			*buf, *path, *body, *hend, *p, *q;
	const char		*outpath = NULL;
	size_t			 lcap = 0, tcap = 0, bcap = 1 << 20, blen = 0;
	size_t			 hlen, clen, rcap;
	ssize_t			 llen, n;
	int			 ch, fd, rlen, status, one = 1;
	FILE			*f;

	while ((ch = getopt(argc, argv, "k:o:")) != -1) {
		switch (ch) {
		case 'k':
			if ((f = fopen(optarg, "r")) == NULL)
				err(1, "%s", optarg);
			if ((n = getline(&token, &tcap, f)) == -1)
				errx(1, "%s: empty", optarg);
			fclose(f);
			while (n > 0 && (token[n - 1] == '\n' ||
			    token[n - 1] == '\r'))
				token[--n] = '\0';
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
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(argv[0]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1)
		err(1, "connect 127.0.0.1:%s", argv[0]);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if ((buf = malloc(bcap)) == NULL)
		err(1, "malloc");

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
		rcap = llen + 512 + (token != NULL ? strlen(token) : 0);
		if ((req = realloc(req, rcap)) == NULL)
			err(1, "realloc");
		rlen = snprintf(req, rcap, "%s %s HTTP/1.1\r\nHost: localhost\r\n"
		    "%s%s%s%sContent-Length: %zu\r\n\r\n%s", line, path,
		    token != NULL ? "Authorization: Bearer " : "",
		    token != NULL ? token : "", token != NULL ? "\r\n" : "",
		    body != NULL ? "Content-Type: application/json\r\n" : "",
		    body != NULL ? strlen(body) : 0, body != NULL ? body : "");
		if (rlen < 0 || (size_t)rlen >= rcap)
			errx(1, "request too long");
		api_send(fd, req, rlen);

		/* The header, then Content-Length bytes of body. */
		hlen = clen = 0;
		for (;;) {
			if (hlen == 0 && (hend = memmem(buf, blen, "\r\n\r\n",
			    4)) != NULL) {
				hlen = hend + 4 - buf;
				for (p = buf; p < hend; p = q + 2) {
					if ((q = memmem(p, hend + 2 - p, "\r\n",
					    2)) == NULL)
						break;
					if (q - p > 15 && strncasecmp(p,
					    "Content-Length:", 15) == 0)
						clen = strtoul(p + 15, NULL,
						    10);
				}
			}
			if (hlen != 0 && blen >= hlen + clen)
				break;
			while (blen == bcap || hlen + clen > bcap) {
				bcap *= 2;
				if ((buf = realloc(buf, bcap)) == NULL)
					err(1, "realloc");
			}
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
		status = blen > 12 && strncmp(buf, "HTTP/1.", 7) == 0 ?
		    atoi(buf + 9) : 0;
		if (status < 200 || status > 299) {
			fprintf(stderr, "cache-api: %s %s: %.*s\n", line, path,
			    (int)(hlen + clen > 2000 ? 2000 : hlen + clen),
			    buf);
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
	}
	close(fd);
	return (0);
}

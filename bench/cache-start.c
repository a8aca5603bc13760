/* SPDX-License-Identifier: ISC */

/*
 * Times a start of uplinkd for bench/cache: from exec to the first 200
 * of GET /api/v1/health and of GET /api/v1/mqtt/<id>/store-and-forward.
 *
 * usage: cache-start [-c id] [-k tokenfile] -o outfile -p port
 *            command [argument ...]
 *
 * Takes the time, forks and execs command (uplinkd, kept in the
 * foreground).  Meanwhile it asks 127.0.0.1:port for GET /api/v1/health
 * (HTTP/1.0, a new connection each time: refused until the daemon
 * listens, answered once its loop runs) every millisecond until one
 * answers 200, then likewise for GET /api/v1/mqtt/<id>/store-and-forward
 * (default id 1) with the token of tokenfile, which also gives the
 * backlog the daemon found.  One line of key=value pairs goes to
 * outfile: the daemon's pid, the milliseconds from exec to each 200,
 * and backlog.messages and backlog.bytes of the answer.  Then it stays
 * the daemon's parent: SIGTERM and SIGINT are passed on, and it exits
 * with the daemon's status (128 + the signal if one killed it), so the
 * caller can wait for it as for the daemon.  If the daemon exits first,
 * or nothing answers 200 within 60 s, outfile says why and the status is
 * 2 (the daemon is killed in the second case).
 */

#define _GNU_SOURCE		/* memmem */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define START_LIMIT	60.0	/* seconds for both answers */

static volatile sig_atomic_t	 start_sig;
static pid_t			 start_child;

static void
start_usage(void)
{
	fprintf(stderr, "usage: cache-start [-c id] [-k tokenfile] "
	    "-o outfile -p port command [argument ...]\n");
	exit(2);
}

static void
start_signal(int sig)
{
	start_sig = sig;
	if (start_child > 0)
		kill(start_child, sig);
}

/*
 * One GET over a new connection: the status (0 if nobody listens or the
 * connection broke), the body (up to cap - 1 bytes) in body.
 */
static int
start_get(int port, const char *path, const char *token, char *body,
    size_t cap, double deadline)
{
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	char			 req[1024], buf[65536], *p;
	size_t			 len = 0;
	ssize_t			 n;
	int			 fd, status = 0, ms;

	bench_inet(&sin, "127.0.0.1", port);
	if ((fd = bench_dial((struct sockaddr *)&sin, sizeof sin, 0, 2)) == -1)
		return (0);
	n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
	    "%s%s%s\r\n", path, token != NULL ? "Authorization: Bearer " : "",
	    token != NULL ? token : "", token != NULL ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof req ||
	    send(fd, req, n, MSG_NOSIGNAL) != n) {
		close(fd);
		return (0);
	}
	/* HTTP/1.0: the answer ends when the server closes. */
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		ms = (deadline - bench_mono()) * 1000;
		if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
			break;
		n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
		if (n <= 0)
			break;
		len += n;
		if (len == sizeof buf - 1)
			break;
	}
	close(fd);
	buf[len] = '\0';
	if (len > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
		status = atoi(buf + 9);
	if (body != NULL && cap > 0) {
		body[0] = '\0';
		if ((p = strstr(buf, "\r\n\r\n")) != NULL)
			snprintf(body, cap, "%s", p + 4);
	}
	return (status);
}

/* The number after "key": in s, or -1. */
static long long
start_field(const char *s, const char *key)
{
	char		 pat[64];
	const char	*p;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	if ((p = strstr(s, pat)) == NULL)
		return (-1);
	return (strtoll(p + strlen(pat), NULL, 10));
}

int
main(int argc, char **argv)
{
	const char		*outpath = NULL, *tokpath = NULL, *id = "1";
	char			*token = NULL, path[128], body[65536];
	char			*backlog;
	double			 t0, health = -1, saf = -1, deadline;
	int			 ch, port = 0, status, phase = 0, rc;
	pid_t			 pid;
	FILE			*f;

	while ((ch = getopt(argc, argv, "+c:k:o:p:")) != -1) {
		switch (ch) {
		case 'c':
			id = optarg;
			break;
		case 'k':
			tokpath = optarg;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		default:
			start_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || outpath == NULL || port <= 0 || port > 65535)
		start_usage();
	snprintf(path, sizeof path, "/api/v1/mqtt/%s/store-and-forward", id);

	bench_catch(start_signal);

	t0 = bench_mono();
	if ((pid = fork()) == -1)
		err(2, "fork");
	if (pid == 0) {
		execv(argv[0], argv);
		err(127, "%s", argv[0]);
	}
	start_child = pid;
	deadline = t0 + START_LIMIT;
	while (phase < 2 && !start_sig) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			if ((f = fopen(outpath, "w")) != NULL) {
				fprintf(f, "error=exited\n");
				fclose(f);
			}
			return (2);
		}
		if (bench_mono() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			if ((f = fopen(outpath, "w")) != NULL) {
				fprintf(f, "error=timeout\n");
				fclose(f);
			}
			return (2);
		}
		if (phase == 0) {
			if (start_get(port, "/api/v1/health", NULL, NULL, 0,
			    deadline) == 200) {
				health = bench_mono() - t0;
				phase = 1;
				continue;
			}
		} else {
			/* The token exists once the daemon has started. */
			if (token == NULL && tokpath != NULL)
				token = bench_line(tokpath, 0);
			if (start_get(port, path, token, body, sizeof body,
			    deadline) == 200) {
				saf = bench_mono() - t0;
				phase = 2;
				continue;
			}
		}
		usleep(1000);
	}
	if (phase == 2) {
		backlog = strstr(body, "\"backlog\":");
		if ((f = fopen(outpath, "w")) == NULL)
			err(2, "%s", outpath);
		fprintf(f, "pid=%ld health_ms=%.1f saf_ms=%.1f messages=%lld "
		    "bytes=%lld\n", (long)pid, health * 1000, saf * 1000,
		    backlog != NULL ? start_field(backlog, "messages") : -1,
		    backlog != NULL ? start_field(backlog, "bytes") : -1);
		if (fclose(f) == EOF)
			err(2, "%s", outpath);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			err(2, "waitpid");
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		rc = 128 + WTERMSIG(status);
	else
		rc = 2;
	return (rc);
}

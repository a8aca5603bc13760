/* SPDX-License-Identifier: ISC */

/*
 * What the helper programs of the bench scripts share: option numbers,
 * clocks and CPU times, small files, signals, sockets, and the bits of
 * HTTP/1.1 and MQTT 3.1.1 they speak without a library.  Each script
 * compiles bench.c along with the program it builds.
 *
 * Functions that can fail exit the way the programs always have: err(3)
 * with status 1 for a system call, status 2 for a bad argument, unless
 * a comment says otherwise.
 */

#ifndef BENCH_H
#define BENCH_H

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Why bench_addr() did not take an address. */
#define BENCH_ADDR_FORM	(-1)	/* neither unix:path nor tcp:host:port */
#define BENCH_ADDR_PATH	(-2)	/* the path does not fit a sockaddr_un */
#define BENCH_ADDR_PORT	(-3)	/* the port is not a number in range */
#define BENCH_ADDR_HOST	(-4)	/* the host is not an IPv4 address */

/* Bytes read from a socket and not yet used. */
struct bench_buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

/* A line of a REST script, METHOD PATH [BODY], its request, its answer. */
struct bench_rest {
	char			*line;	/* the method, once it is split */
	size_t			 lcap;
	char			*path;
	char			*body;	/* NULL without one */
	char			*req;	/* the HTTP/1.1 request */
	size_t			 rlen;
	size_t			 rcap;
	struct bench_buf	 ans;
	size_t			 hlen;	/* the answer's header */
	size_t			 clen;	/* and body */
};

extern volatile sig_atomic_t	 bench_quit;

int		 bench_parse(const char *, unsigned long long *);
unsigned long long
		 bench_number(const char *, const char *, unsigned long long,
		    unsigned long long);
unsigned long long
		 bench_range(const char *, const char *, unsigned long long,
		    unsigned long long);

double		 bench_mono(void);
double		 bench_wall(void);
int64_t		 bench_wall_us(void);
double		 bench_self_cpu(void);
long long	 bench_ticks(pid_t);

char		*bench_line(const char *, int);
void		 bench_put(const char *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
void		 bench_save(const char *, const void *, size_t);

void		 bench_catch(void (*)(int));

int		 bench_inet(struct sockaddr_in *, const char *, unsigned int);
int		 bench_addr(const char *, struct sockaddr_storage *,
		    socklen_t *, unsigned int);
int		 bench_dial(const struct sockaddr *, socklen_t, int, int);
int		 bench_connect(const char *, int);
void		 bench_send(int, const void *, size_t, int, const char *);

void		 bench_buf_init(struct bench_buf *, size_t);
void		 bench_buf_grow(struct bench_buf *, size_t);
void		 bench_buf_drop(struct bench_buf *, size_t);

int		 bench_http_head(char *, size_t, const char *, const char *,
		    const char *, int, size_t);
size_t		 bench_http_header(const char *, size_t, size_t *, int *);
void		 bench_http_published(const char *, size_t, size_t,
		    unsigned int);
int		 bench_rest_options(int, char **, char **, const char **);
int		 bench_rest_next(struct bench_rest *, FILE *, const char *);
int		 bench_rest_call(struct bench_rest *, int, int);
void		 bench_rest_done(struct bench_rest *, int, const char *,
		    const char *);
void		 bench_rest_free(struct bench_rest *);

size_t		 bench_mqtt_connect(unsigned char *, const char *, int);
size_t		 bench_mqtt_subscribe(unsigned char *, const char *, int);
int		 bench_mqtt_packet(const unsigned char *, size_t, size_t *,
		    size_t *);
int		 bench_mqtt_acked(const unsigned char *, size_t, size_t,
		    const char *);
ssize_t		 bench_mqtt_read(int, struct bench_buf *);

#endif /* BENCH_H */

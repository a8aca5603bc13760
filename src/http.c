/* SPDX-License-Identifier: ISC */
/*
 * The HTTP transport: evhttp listeners for plain HTTP, HTTPS and a unix
 * socket, adapting each evhttp request to api_dispatch().
 *
 * evhttp 2.1 has no hook for connections coming and going, so each
 * connection's bufferevent is made here (evhttp_set_bevcb) and, right
 * after evhttp has taken it, bound to a close callback found through the
 * bufferevent's callback argument (evhttp's connection).  That is how
 * connections are counted against max_connections (the listeners pause at
 * the limit) and how each request is timed from its first byte, so a
 * client that trickles a request in cannot hold a slot past
 * request_timeout.  idle_timeout (evhttp's own timeout) ends idle
 * keep-alive connections and stalled writes.
 *
 * Each request gets exactly one reply: at once, or after resp.delay_ms
 * (failed logins), from a timer; a stop answers delayed replies at once.
 */

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <openssl/ssl.h>

#include "api.h"
#include "conf.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "tls.h"
#include "util.h"
#include "xmalloc.h"

#define HTTP_PREFIX		"/api/v1"
#define HTTP_MAX_HEADERS	100
#define HTTP_MAX_QUERY		64
#define HTTP_STREAM_BACKLOG	(1024 * 1024)	/* unsent stream bytes */

enum http_kind {
	HTTP_PLAIN,
	HTTP_TLS,
	HTTP_UNIX,
	HTTP_NKINDS
};

struct http;

struct http_listener {
	struct http			*http;
	enum http_kind			 kind;
	struct evhttp			*evh;
	struct evhttp_bound_socket	*bound;
	char				*addr, *cause;	/* as configured */
	SSL_CTX				*ssl;
};

struct http_conn;

struct http_stream {
	struct api_stream		 st;
	struct http			*http;
	struct http_conn		*conn;
	struct evhttp_request		*req;
	int				 dead;
	struct event			*closev;
	TAILQ_ENTRY(http_stream)	 entry;
};

struct http_conn {
	struct http		*http;
	struct http_listener	*l;
	struct bufferevent	*bev;
	int			 fd;
	int			 reading;	/* a request has begun */
	struct event		*deadline;
	struct event		*bind;
	struct evbuffer_cb_entry *incb;
	struct http_stream	*stream;	/* a long-lived answer */
	struct evhttp_request	*unfinished;	/* its request, until ended */
};

struct http_pending {
	struct http			*http;
	struct evhttp_request		*req;
	struct api_resp			 resp;
	struct event			*ev;
	TAILQ_ENTRY(http_pending)	 entry;
};

struct http {
	struct event_base		*base;
	struct http_listener		 l[HTTP_NKINDS];
	unsigned int			 nconns;
	unsigned int			 max_conns;
	int				 paused;
	struct http_conn		**byfd;
	size_t				 nbyfd;
	unsigned int			 request_timeout;
	unsigned int			 idle_timeout;
	unsigned int			 max_body;
	unsigned int			 max_header;
	unsigned int			 socket_mode;
	char				*tls_cert;
	char				*tls_key;
	TAILQ_HEAD(, http_pending)	 pending;
	TAILQ_HEAD(, http_stream)	 streams;
};

static struct bufferevent *http_bev_cb(struct event_base *, void *);
static void	http_bind_cb(evutil_socket_t, short, void *);
static void	http_in_cb(struct evbuffer *, const struct evbuffer_cb_info *,
		    void *);
static void	http_close_cb(struct evhttp_connection *, void *);
static void	http_conn_free(struct http_conn *);
static void	http_deadline_start(struct http_conn *);
static void	http_stream_begin(struct http *, struct evhttp_request *,
		    struct api_resp *);
static int	http_stream_write(struct api_stream *, const void *, size_t);
static void	http_stream_end(struct api_stream *);
static void	http_stream_kill(struct http_stream *, const char *);
static void	http_stream_closed_cb(evutil_socket_t, short, void *);

static const struct api_stream_ops http_stream_ops = {
	.write = http_stream_write,
	.end = http_stream_end,
};
static void	http_deadline_cb(evutil_socket_t, short, void *);
static void	http_request_cb(struct evhttp_request *, void *);
static void	http_pending_cb(evutil_socket_t, short, void *);
static void	http_send(struct http *, struct evhttp_request *,
		    struct api_resp *);
static void	http_pause(struct http *, int);
static int	http_listen(struct http *, enum http_kind, const char *,
		    char **);
static void	http_unlisten(struct http_listener *);
static void	http_limits(struct http *);
static int	http_tls_setup(struct http *, const struct conf *, char **);

/*
 * Start the listeners the configuration asks for.  NULL and *cause if
 * one cannot be opened.
 */
struct http *
http_new(struct event_base *base, const struct conf *conf, char **cause)
{
	struct http	*h;
	int		 k;

	h = xcalloc(1, sizeof *h);
	h->base = base;
	TAILQ_INIT(&h->pending);
	TAILQ_INIT(&h->streams);
	for (k = 0; k < HTTP_NKINDS; k++) {
		h->l[k].http = h;
		h->l[k].kind = k;
	}
	if (http_reconfigure(h, conf, cause) != 0) {
		http_free(h);
		return (NULL);
	}
	return (h);
}

/* Load (or make) the HTTPS certificate into a new context. */
static int
http_tls_setup(struct http *h, const struct conf *conf, char **cause)
{
	char		*cert, *key, *dir;
	SSL_CTX		*ctx;
	struct stat	 st;

	if (*conf->tls_cert != '\0' || *conf->tls_key != '\0') {
		if (*conf->tls_cert == '\0' || *conf->tls_key == '\0') {
			xasprintf(cause, "tls_cert and tls_key must be set "
			    "together");
			return (-1);
		}
		cert = xstrdup(conf->tls_cert);
		key = xstrdup(conf->tls_key);
	} else {
		dir = util_path(conf->datadir, "tls");
		cert = util_path(dir, "uplinkd.crt");
		key = util_path(dir, "uplinkd.key");
		if (stat(cert, &st) == -1 || stat(key, &st) == -1) {
			if (util_mkdirs(dir, 0700, cause) != 0 ||
			    tls_selfsigned(cert, key, cause) != 0) {
				free(dir);
				free(cert);
				free(key);
				return (-1);
			}
		}
		free(dir);
	}
	if ((ctx = tls_server_ctx(cert, key, cause)) == NULL) {
		free(cert);
		free(key);
		return (-1);
	}
	/* Connections in progress keep a reference to the old context. */
	SSL_CTX_free(h->l[HTTP_TLS].ssl);
	h->l[HTTP_TLS].ssl = ctx;
	free(h->tls_cert);
	free(h->tls_key);
	h->tls_cert = cert;
	h->tls_key = key;
	return (0);
}

/*
 * Apply a configuration: limits and timeouts, the certificate, and any
 * listener whose address changed.  A listener that cannot be opened
 * keeps the old one and gives *cause.
 */
int
http_reconfigure(struct http *h, const struct conf *conf, char **cause)
{
	const char	*want[HTTP_NKINDS];
	int		 k;

	h->max_conns = conf->max_connections;
	h->request_timeout = conf->request_timeout;
	h->idle_timeout = conf->idle_timeout;
	h->max_body = conf->max_body_size;
	h->max_header = conf->max_header_size;
	h->socket_mode = conf->unix_socket_mode;

	want[HTTP_PLAIN] = conf->http_listen;
	want[HTTP_TLS] = conf->https_listen;
	want[HTTP_UNIX] = conf->unix_socket;
	if (strcmp(want[HTTP_TLS], "off") != 0 &&
	    http_tls_setup(h, conf, cause) != 0)
		return (-1);
	for (k = 0; k < HTTP_NKINDS; k++) {
		if (h->l[k].addr != NULL && strcmp(h->l[k].addr, want[k]) == 0)
			continue;
		if (http_listen(h, k, want[k], cause) != 0)
			return (-1);
	}
	http_limits(h);
	if (h->nconns < h->max_conns && h->paused)
		http_pause(h, 0);
	return (0);
}

/* Push the limits into every evhttp. */
static void
http_limits(struct http *h)
{
	struct timeval	tv;
	int		k;

	tv.tv_sec = h->idle_timeout;
	tv.tv_usec = 0;
	for (k = 0; k < HTTP_NKINDS; k++) {
		if (h->l[k].evh == NULL)
			continue;
		evhttp_set_max_body_size(h->l[k].evh, h->max_body);
		evhttp_set_max_headers_size(h->l[k].evh, h->max_header);
		evhttp_set_timeout_tv(h->l[k].evh, &tv);
	}
}

/* Open a unix socket listening at path; -1 and *cause on failure. */
static int
http_unix_socket(const char *path, unsigned int mode, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	char			*dir, *slash;
	int			 fd, probe;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (util_mkdirs(dir, 0755, cause) != 0) {
			free(dir);
			return (-1);
		}
	}
	free(dir);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			xasprintf(cause, "unix_socket %s: exists and is not a "
			    "socket", path);
			return (-1);
		}
		/* A socket someone still answers on is not stale. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&sun,
		    sizeof sun) == 0) {
			close(probe);
			xasprintf(cause, "unix_socket %s: in use by another "
			    "process", path);
			return (-1);
		}
		if (probe != -1)
			close(probe);
		unlink(path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    chmod(path, mode) == -1 || listen(fd, 128) == -1) {
		xasprintf(cause, "unix_socket %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * (Re)open listener k at addr ("off" closes it).  On failure the old
 * listener, if any, stays.
 */
static int
http_listen(struct http *h, enum http_kind k, const char *addr, char **cause)
{
	struct http_listener		*l = &h->l[k];
	struct evhttp			*evh;
	struct evhttp_bound_socket	*bound;
	char				*host = NULL, *port = NULL, *why;
	int				 fd;

	if (strcmp(addr, "off") == 0) {
		http_unlisten(l);
		l->addr = xstrdup(addr);
		return (0);
	}
	if ((evh = evhttp_new(h->base)) == NULL)
		fatalx("evhttp_new failed");
	evhttp_set_allowed_methods(evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(evh, http_request_cb, l);
	evhttp_set_bevcb(evh, http_bev_cb, l);
	evhttp_set_default_content_type(evh, "application/json");

	if (k == HTTP_UNIX) {
		if ((fd = http_unix_socket(addr, h->socket_mode,
		    cause)) == -1) {
			evhttp_free(evh);
			return (-1);
		}
		bound = evhttp_accept_socket_with_handle(evh, fd);
		if (bound == NULL) {
			close(fd);
			xasprintf(cause, "unix_socket %s: cannot accept", addr);
			evhttp_free(evh);
			return (-1);
		}
	} else {
		if (conf_parse_listen(addr, &host, &port, &why) != 0) {
			xasprintf(cause, "%s: %s", k == HTTP_TLS ?
			    "https_listen" : "http_listen", why);
			free(why);
			evhttp_free(evh);
			return (-1);
		}
		bound = evhttp_bind_socket_with_handle(evh, host, atoi(port));
		if (bound == NULL) {
			xasprintf(cause, "%s %s: cannot listen: %s",
			    k == HTTP_TLS ? "https_listen" : "http_listen",
			    addr, strerror(errno));
			free(host);
			free(port);
			evhttp_free(evh);
			return (-1);
		}
		free(host);
		free(port);
	}
	http_unlisten(l);
	l->evh = evh;
	l->bound = bound;
	l->addr = xstrdup(addr);
	if (h->paused)
		evconnlistener_disable(evhttp_bound_socket_get_listener(bound));
	log_info("http: listening kind=%s addr=%s", k == HTTP_PLAIN ? "http" :
	    k == HTTP_TLS ? "https" : "unix", addr);
	return (0);
}

/*
 * Close a listener.  evhttp_free() also closes its connections; their
 * filters' free callbacks keep the count right.
 */
static void
http_unlisten(struct http_listener *l)
{
	if (l->evh != NULL) {
		if (l->kind == HTTP_UNIX && l->addr != NULL)
			unlink(l->addr);
		evhttp_free(l->evh);
	}
	l->evh = NULL;
	l->bound = NULL;
	free(l->addr);
	l->addr = NULL;
}

/* Pause (or resume) accepting on every listener. */
static void
http_pause(struct http *h, int pause)
{
	int			 k;
	struct evconnlistener	*lev;

	for (k = 0; k < HTTP_NKINDS; k++) {
		if (h->l[k].bound == NULL)
			continue;
		lev = evhttp_bound_socket_get_listener(h->l[k].bound);
		if (pause)
			evconnlistener_disable(lev);
		else
			evconnlistener_enable(lev);
	}
	if (pause && !h->paused)
		log_warnx("http: connection limit reached max_connections=%u",
		    h->max_conns);
	h->paused = pause;
}

/*
 * evhttp asks for a bufferevent for each accepted connection.  It sets
 * its callbacks on it as soon as this returns; http_bind_cb(), run next,
 * finds evhttp's connection there.  The extra reference keeps the
 * bufferevent valid until then even if evhttp gives up on it at once.
 */
static struct bufferevent *
http_bev_cb(struct event_base *base, void *arg)
{
	struct http_listener	*l = arg;
	struct http		*h = l->http;
	struct http_conn	*c;
	SSL			*ssl;

	c = xcalloc(1, sizeof *c);
	c->http = h;
	c->l = l;
	c->fd = -1;
	if (l->kind == HTTP_TLS) {
		if ((ssl = SSL_new(l->ssl)) == NULL)
			fatalx("SSL_new failed");
		c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else
		c->bev = bufferevent_socket_new(base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_incref(c->bev);
	c->deadline = evtimer_new(base, http_deadline_cb, c);
	c->bind = event_new(base, -1, 0, http_bind_cb, c);
	event_active(c->bind, EV_TIMEOUT, 0);
	if (++h->nconns >= h->max_conns && !h->paused)
		http_pause(h, 1);
	return (c->bev);
}

/* Remember which connection owns a descriptor. */
static void
http_conn_register(struct http *h, struct http_conn *c, int fd)
{
	size_t	n;

	if ((size_t)fd >= h->nbyfd) {
		n = h->nbyfd == 0 ? 64 : h->nbyfd;
		while (n <= (size_t)fd)
			n *= 2;
		h->byfd = xreallocarray(h->byfd, n, sizeof *h->byfd);
		memset(h->byfd + h->nbyfd, 0, (n - h->nbyfd) *
		    sizeof *h->byfd);
		h->nbyfd = n;
	}
	h->byfd[fd] = c;
	c->fd = fd;
}

/*
 * Bind a new connection to evhttp's: a close callback to count it out,
 * an input callback to time its requests.  The first request's clock
 * starts now.
 */
static void
http_bind_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct http_conn		*c = arg;
	struct bufferevent		*bev = c->bev;
	struct evhttp_connection	*evcon;
	bufferevent_data_cb		 readcb;
	void				*cbarg;
	int				 one = 1;

	bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
	if (readcb == NULL || cbarg == NULL) {
		/* evhttp gave up on it already. */
		c->bev = NULL;
		http_conn_free(c);
		bufferevent_decref(bev);
		return;
	}
	evcon = cbarg;
	evhttp_connection_set_closecb(evcon, http_close_cb, c);
	if ((fd = bufferevent_getfd(bev)) != -1) {
		http_conn_register(c->http, c, fd);
		/* A reply's short last piece must not wait for an ack. */
		if (c->l->kind != HTTP_UNIX)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof one);
	}
	c->incb = evbuffer_add_cb(bufferevent_get_input(bev), http_in_cb, c);
	http_deadline_start(c);
	bufferevent_decref(bev);
}

/* Start the clock of a request. */
static void
http_deadline_start(struct http_conn *c)
{
	struct timeval	tv;

	c->reading = 1;
	tv.tv_sec = c->http->request_timeout;
	tv.tv_usec = 0;
	evtimer_add(c->deadline, &tv);
}

/* Input arrived: the first bytes of a request start its clock. */
static void
http_in_cb(__attribute__((unused)) struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn	*c = arg;

	if (info->n_added != 0 && !c->reading)
		http_deadline_start(c);
}

/* evhttp is freeing a connection. */
static void
http_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn	*c = arg;
	struct bufferevent	*bev;

	bev = evhttp_connection_get_bufferevent(evcon);
	if (bev != NULL && c->incb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(bev), c->incb);
	if (c->stream != NULL) {
		c->stream->req = NULL;
		c->stream->conn = NULL;
		http_stream_kill(c->stream, "client gone");
		c->stream = NULL;
	}
	/*
	 * A reply cut short: evhttp has detached its request from the
	 * connection and leaves it to us.  One still attached goes with
	 * the connection.
	 */
	if (c->unfinished != NULL &&
	    evhttp_request_get_connection(c->unfinished) == NULL)
		evhttp_request_free(c->unfinished);
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	http_conn_free(c);
}

/* Forget a connection and count it out. */
static void
http_conn_free(struct http_conn *c)
{
	struct http	*h = c->http;

	if (c->fd != -1 && (size_t)c->fd < h->nbyfd && h->byfd[c->fd] == c)
		h->byfd[c->fd] = NULL;
	event_free(c->deadline);
	event_free(c->bind);
	free(c);
	h->nconns--;
	if (h->paused && h->nconns < h->max_conns)
		http_pause(h, 0);
}

/* A request took longer than request_timeout to arrive: drop it. */
static void
http_deadline_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct http_conn	*c = arg;

	log_info("http: request not complete after %us, closing fd=%d",
	    c->http->request_timeout, c->fd);
	if (c->fd != -1)
		shutdown(c->fd, SHUT_RDWR);
}

/* The reason phrase of a status. */
static const char *
http_reason(int status)
{
	switch (status) {
	case 200: return ("OK");
	case 202: return ("Accepted");
	case 204: return ("No Content");
	case 400: return ("Bad Request");
	case 401: return ("Unauthorized");
	case 403: return ("Forbidden");
	case 404: return ("Not Found");
	case 405: return ("Method Not Allowed");
	case 408: return ("Request Timeout");
	case 409: return ("Conflict");
	case 413: return ("Payload Too Large");
	case 415: return ("Unsupported Media Type");
	case 423: return ("Locked");
	case 429: return ("Too Many Requests");
	case 500: return ("Internal Server Error");
	case 503: return ("Service Unavailable");
	}
	return ("Unknown");
}

/* Send an answer and clear it. */
static void
http_send(struct http *h, struct evhttp_request *req, struct api_resp *resp)
{
	struct evbuffer		*out;
	struct evkeyvalq	*oh = evhttp_request_get_output_headers(req);
	char			*text;
	size_t			 len, i;

	for (i = 0; i < resp->nheaders; i++)
		evhttp_add_header(oh, resp->headers[i].key,
		    resp->headers[i].value);
	evhttp_add_header(oh, "Cache-Control", "no-store");
	if (resp->stream_start != NULL) {
		http_stream_begin(h, req, resp);
		return;
	}
	if (resp->status == 204) {
		evhttp_send_reply(req, 204, http_reason(204), NULL);
		api_resp_clear(resp);
		return;
	}
	if ((out = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	if (resp->raw != NULL) {
		evhttp_add_header(oh, "Content-Type", resp->content_type);
		evbuffer_add(out, resp->raw, resp->rawlen);
	} else if (resp->body != NULL) {
		evhttp_add_header(oh, "Content-Type", "application/json");
		text = json_dump(resp->body, &len);
		evbuffer_add(out, text, len);
		free(text);
	}
	evhttp_send_reply(req, resp->status, http_reason(resp->status), out);
	evbuffer_free(out);
	api_resp_clear(resp);
}

/* A delayed answer is due. */
static void
http_pending_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct http_pending	*p = arg;

	TAILQ_REMOVE(&p->http->pending, p, entry);
	http_send(p->http, p->req, &p->resp);
	event_free(p->ev);
	free(p);
}

/* evhttp: a whole request has arrived. */
static void
http_request_cb(struct evhttp_request *ereq, void *arg)
{
	struct http_listener		*l = arg;
	struct http			*h = l->http;
	struct http_conn		*c = NULL;
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	const struct evhttp_uri		*uri;
	struct evkeyvalq		*ih;
	struct evkeyval			*kv;
	struct api_kv			 headers[HTTP_MAX_HEADERS];
	struct api_kv			*query = NULL;
	struct api_req			 req;
	struct api_resp			 resp;
	struct evbuffer			*in;
	struct http_pending		*p;
	struct timeval			 tv;
	const char			*path, *q;
	char				 peer[128];
	ev_uint16_t			 port;
	char				*addr, *cause;
	int				 fd;

	evcon = evhttp_request_get_connection(ereq);
	if (evcon != NULL) {
		bev = evhttp_connection_get_bufferevent(evcon);
		fd = bufferevent_getfd(bev);
		if (fd >= 0 && (size_t)fd < h->nbyfd)
			c = h->byfd[fd];
		if (c != NULL) {
			c->reading = 0;
			evtimer_del(c->deadline);
			/* A pipelined request may already have begun. */
			if (evbuffer_get_length(bufferevent_get_input(
			    bev)) != 0)
				http_deadline_start(c);
		}
		evhttp_connection_get_peer(evcon, &addr, &port);
		if (l->kind == HTTP_UNIX)
			snprintf(peer, sizeof peer, "unix");
		else
			snprintf(peer, sizeof peer, "%s:%u", addr, port);
	} else
		snprintf(peer, sizeof peer, "?");

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.peer = peer;
	req.origin = l->kind == HTTP_PLAIN ? API_ORIGIN_HTTP :
	    l->kind == HTTP_TLS ? API_ORIGIN_HTTPS : API_ORIGIN_UNIX;
	switch (evhttp_request_get_command(ereq)) {
	case EVHTTP_REQ_GET:
		req.method = API_GET;
		break;
	case EVHTTP_REQ_POST:
		req.method = API_POST;
		break;
	case EVHTTP_REQ_PUT:
		req.method = API_PUT;
		break;
	case EVHTTP_REQ_DELETE:
		req.method = API_DELETE;
		break;
	case EVHTTP_REQ_PATCH:
		req.method = API_PATCH;
		break;
	default:
		req.method = API_OTHER;
		break;
	}

	uri = evhttp_request_get_evhttp_uri(ereq);
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL || strncmp(path, HTTP_PREFIX,
	    strlen(HTTP_PREFIX)) != 0 || (path[strlen(HTTP_PREFIX)] != '/' &&
	    path[strlen(HTTP_PREFIX)] != '\0')) {
		req.path = path != NULL ? path : "";
		api_error(&req, &resp, 404, "no such resource: %s (the API is "
		    "under " HTTP_PREFIX ")", req.path);
		goto send;
	}
	req.path = path + strlen(HTTP_PREFIX);
	if (*req.path == '\0')
		req.path = "/";

	if ((q = evhttp_uri_get_query(uri)) != NULL &&
	    api_query_parse(q, &query, &req.nquery, HTTP_MAX_QUERY,
	    &cause) != 0) {
		api_error(&req, &resp, 400, "%s", cause);
		free(cause);
		goto send;
	}
	req.query = query;
	ih = evhttp_request_get_input_headers(ereq);
	TAILQ_FOREACH(kv, ih, next) {
		if (req.nheaders == HTTP_MAX_HEADERS)
			break;
		headers[req.nheaders].key = kv->key;
		headers[req.nheaders++].value = kv->value;
	}
	req.headers = headers;
	req.content_type = evhttp_find_header(ih, "Content-Type");
	in = evhttp_request_get_input_buffer(ereq);
	req.bodylen = evbuffer_get_length(in);
	req.body = req.bodylen != 0 ? (const void *)evbuffer_pullup(in, -1) :
	    "";

	api_dispatch(&req, &resp);

send:
	log_debug("http: %s %s status=%d peer=%s", api_method_name(req.method),
	    path != NULL ? path : "?", resp.status, peer);
	api_req_clear(&req);
	api_query_free(query, req.nquery);
	if (resp.delay_ms != 0) {
		p = xcalloc(1, sizeof *p);
		p->http = h;
		p->req = ereq;
		p->resp = resp;
		p->ev = evtimer_new(h->base, http_pending_cb, p);
		tv.tv_sec = resp.delay_ms / 1000;
		tv.tv_usec = (resp.delay_ms % 1000) * 1000;
		evtimer_add(p->ev, &tv);
		TAILQ_INSERT_TAIL(&h->pending, p, entry);
		return;
	}
	http_send(h, ereq, &resp);
}

/*
 * Start a stream: send the head, lift the read timeout (a monitoring
 * client sends nothing for hours) and let the producer begin.
 */
static void
http_stream_begin(struct http *h, struct evhttp_request *req,
    struct api_resp *resp)
{
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	struct http_conn		*c = NULL;
	struct http_stream		*hs;
	struct timeval			 tv;
	int				 fd;

	if ((evcon = evhttp_request_get_connection(req)) != NULL) {
		bev = evhttp_connection_get_bufferevent(evcon);
		fd = bufferevent_getfd(bev);
		if (fd >= 0 && (size_t)fd < h->nbyfd)
			c = h->byfd[fd];
	}
	if (c == NULL || c->stream != NULL) {
		resp->stream_closed(NULL, resp->stream_arg);
		api_resp_clear(resp);
		evhttp_send_error(req, 503, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", resp->stream_type);
	evhttp_send_reply_start(req, 200, "OK");
	tv.tv_sec = h->idle_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(bev, NULL, &tv);

	hs = xcalloc(1, sizeof *hs);
	hs->st.ops = &http_stream_ops;
	hs->st.transport = hs;
	hs->st.start = resp->stream_start;
	hs->st.closed = resp->stream_closed;
	hs->st.arg = resp->stream_arg;
	hs->http = h;
	hs->conn = c;
	hs->req = req;
	hs->closev = event_new(h->base, -1, 0, http_stream_closed_cb, hs);
	c->stream = hs;
	c->unfinished = req;
	TAILQ_INSERT_TAIL(&h->streams, hs, entry);
	api_resp_clear(resp);
	hs->st.start(&hs->st, hs->st.arg);
}

/* Send a chunk; -1 if the stream is dead or its client too slow. */
static int
http_stream_write(struct api_stream *st, const void *data, size_t len)
{
	struct http_stream		*hs = st->transport;
	struct evhttp_connection	*evcon;
	struct evbuffer			*buf;

	if (hs->dead || hs->req == NULL)
		return (-1);
	evcon = evhttp_request_get_connection(hs->req);
	if (evcon != NULL && evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(evcon))) > HTTP_STREAM_BACKLOG) {
		http_stream_kill(hs, "client too slow");
		return (-1);
	}
	if ((buf = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	evbuffer_add(buf, data, len);
	evhttp_send_reply_chunk(hs->req, buf);
	evbuffer_free(buf);
	return (0);
}

/* Detach a stream from its connection and free it. */
static void
http_stream_free(struct http_stream *hs)
{
	if (hs->conn != NULL)
		hs->conn->stream = NULL;
	TAILQ_REMOVE(&hs->http->streams, hs, entry);
	event_free(hs->closev);
	free(hs);
}

/* The producer finishes a stream. */
static void
http_stream_end(struct api_stream *st)
{
	struct http_stream		*hs = st->transport;
	struct evhttp_connection	*evcon;
	struct timeval			 tv;

	if (!hs->dead && hs->req != NULL) {
		evcon = evhttp_request_get_connection(hs->req);
		if (evcon != NULL) {
			tv.tv_sec = hs->http->idle_timeout;
			tv.tv_usec = 0;
			bufferevent_set_timeouts(
			    evhttp_connection_get_bufferevent(evcon), &tv, &tv);
		}
		evhttp_send_reply_end(hs->req);
		if (hs->conn != NULL)
			hs->conn->unfinished = NULL;
	}
	http_stream_free(hs);
}

/*
 * A stream can go on no longer: close its connection (if it still has
 * one) and tell the producer from the loop.
 */
static void
http_stream_kill(struct http_stream *hs, const char *why)
{
	if (hs->dead)
		return;
	hs->dead = 1;
	log_info("http: stream ended reason=\"%s\" fd=%d", why,
	    hs->conn != NULL ? hs->conn->fd : -1);
	if (hs->conn != NULL && hs->conn->fd != -1)
		shutdown(hs->conn->fd, SHUT_RDWR);
	event_active(hs->closev, EV_TIMEOUT, 0);
}

/* Tell the producer its stream is gone, then forget the stream. */
static void
http_stream_closed_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct http_stream	*hs = arg;

	hs->st.closed(&hs->st, hs->st.arg);
	http_stream_free(hs);
}

/* Stop accepting; answer delayed replies now; end streams. */
void
http_stop(struct http *h)
{
	struct http_pending	*p;
	struct http_stream	*hs;
	int			 k;

	while ((hs = TAILQ_FIRST(&h->streams)) != NULL) {
		if (!hs->dead && hs->req != NULL) {
			evhttp_send_reply_end(hs->req);
			if (hs->conn != NULL)
				hs->conn->unfinished = NULL;
		}
		hs->dead = 1;
		hs->st.closed(&hs->st, hs->st.arg);
		http_stream_free(hs);
	}

	while ((p = TAILQ_FIRST(&h->pending)) != NULL) {
		TAILQ_REMOVE(&h->pending, p, entry);
		http_send(p->http, p->req, &p->resp);
		event_free(p->ev);
		free(p);
	}
	for (k = 0; k < HTTP_NKINDS; k++) {
		if (h->l[k].bound == NULL)
			continue;
		evhttp_del_accept_socket(h->l[k].evh, h->l[k].bound);
		h->l[k].bound = NULL;
		if (k == HTTP_UNIX && h->l[k].addr != NULL)
			unlink(h->l[k].addr);
	}
}

/* Close everything (connections included). */
void
http_free(struct http *h)
{
	int	k;

	if (h == NULL)
		return;
	http_stop(h);
	for (k = 0; k < HTTP_NKINDS; k++) {
		if (h->l[k].evh != NULL)
			evhttp_free(h->l[k].evh);
		free(h->l[k].addr);
		SSL_CTX_free(h->l[k].ssl);
	}
	free(h->byfd);
	free(h->tls_cert);
	free(h->tls_key);
	free(h);
}

/* Open connections, for /metrics. */
unsigned int
http_connections(const struct http *h)
{
	return (h->nconns);
}

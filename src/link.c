/* SPDX-License-Identifier: ISC */
/*
 * One MQTT session on the loop.
 *
 * libmosquitto runs through its socket interface only: a read event on
 * mosquitto_socket(), a write event while mosquitto_want_write(), and a
 * one-second timer for mosquitto_loop_misc() (keepalive).  Every
 * connection attempt gets a fresh struct mosquitto, so nothing the library
 * queued survives a disconnect: the outbox above resends what was not
 * acknowledged.  libmosquitto callbacks only record what happened; the
 * consequences (tearing the session down, telling the owner) run after
 * the library call returns, never inside it.
 *
 * Names are resolved with evdns on the loop.  libmosquitto resolves the
 * broker's name itself with a blocking getaddrinfo(); this file defines
 * getaddrinfo() so that the library's look-up is answered at once from
 * the addresses evdns found, while the library still uses the host name
 * for TLS (SNI and certificate verification).  Other look-ups go to the
 * C library's getaddrinfo().
 *
 * A failed attempt or a lost session is retried after a jittered
 * exponential backoff (1 s, 2 s, 4 s, ... capped by retry_interval).
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <mosquitto.h>

#include "link.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define LINK_DNS_TTL		60	/* seconds a resolved name is kept */
#define LINK_DNS_SLOTS		64
#define LINK_MISC_MS		1000

enum link_phase {
	LINK_IDLE,		/* disabled */
	LINK_WAIT,		/* waiting to retry */
	LINK_RESOLVING,
	LINK_OPENING,		/* TCP, TLS, CONNECT, waiting for CONNACK */
	LINK_UP
};

struct link {
	char			*name;
	struct event_base	*base;
	struct link_cfg		 cfg;
	const struct link_ops	*ops;
	void			*arg;

	int			 enabled;
	enum link_phase		 phase;
	enum link_status	 status;
	char			*error;	/* why the last attempt failed */
	unsigned int		 failures;	/* in a row */
	uint64_t		 attempts;

	struct mosquitto	*mosq;
	int			 fd;
	struct event		*rev;
	struct event		*wev;
	struct event		*misc;
	struct event		*retry;
	struct event		*handshake;
	struct evdns_getaddrinfo_request *dnsreq;
	int			 inflight;

	/* Recorded by libmosquitto callbacks, acted on afterwards. */
	int			 got_connack;
	int			 connack_rc;
	int			 lost;
	char			 liberr[256];

	int			 in_lib;	/* inside a libmosquitto call */
	int			 in_publish;	/* inside mosquitto_publish() */
	int			*acks;		/* acks seen in_publish */
	size_t			 nacks;
	size_t			 capacks;
	struct event		*ackev;
	int			 in_callback;
	int			 dead;		/* free after the callback */
};

struct link_dns_entry {
	char		*host;
	struct addrinfo	*ai;		/* ours, freed with link_dns_ai_free */
	time_t		 expires;
};

struct link_dns {
	struct evdns_base	*evdns;
	struct link_dns_entry	 cache[LINK_DNS_SLOTS];
	int			(*real_getaddrinfo)(const char *, const char *,
				    const struct addrinfo *,
				    struct addrinfo **);
};

static struct link_dns	 link_dns;
static int		 link_libinit;

static void	link_attempt(struct link *);
static void	link_fail(struct link *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
static void	link_teardown(struct link *);
static void	link_schedule_retry(struct link *);
static void	link_update_write(struct link *);
static void	link_after(struct link *);
static void	link_read_cb(evutil_socket_t, short, void *);
static void	link_write_cb(evutil_socket_t, short, void *);
static void	link_misc_cb(evutil_socket_t, short, void *);
static void	link_retry_cb(evutil_socket_t, short, void *);
static void	link_handshake_cb(evutil_socket_t, short, void *);
static void	link_dns_cb(int, struct evutil_addrinfo *, void *);
static void	link_on_connect(struct mosquitto *, void *, int);
static void	link_on_disconnect(struct mosquitto *, void *, int);
static void	link_on_publish(struct mosquitto *, void *, int);
static void	link_acks_cb(evutil_socket_t, short, void *);
static void	link_on_message(struct mosquitto *, void *,
		    const struct mosquitto_message *);
static void	link_on_log(struct mosquitto *, void *, int, const char *);

/* --- names ------------------------------------------------------------ */

/*
 * Start resolving on base.  servers: "" for the system's resolv.conf, or
 * a list of "address[:port]" separated by spaces or commas.
 */
void
link_dns_init(struct event_base *base, const char *servers)
{
	char	*copy, *p, *tok;

	if (servers == NULL || *servers == '\0')
		link_dns.evdns = evdns_base_new(base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS);
	else {
		link_dns.evdns = evdns_base_new(base, 0);
		copy = xstrdup(servers);
		for (p = copy; (tok = strsep(&p, " ,")) != NULL; ) {
			if (*tok != '\0' && evdns_base_nameserver_ip_add(
			    link_dns.evdns, tok) != 0)
				log_warnx("dns: bad name server \"%s\"", tok);
		}
		free(copy);
		if (link_dns.evdns != NULL &&
		    evdns_base_load_hosts(link_dns.evdns, NULL) != 0)
			log_warnx("dns: cannot read /etc/hosts");
	}
	if (link_dns.evdns == NULL) {
		/* No resolv.conf: numeric hosts still work. */
		log_warnx("dns: no name servers; only numeric hosts resolve");
		link_dns.evdns = evdns_base_new(base, 0);
	}
	evdns_base_set_option(link_dns.evdns, "timeout:", "3");
	evdns_base_set_option(link_dns.evdns, "attempts:", "2");
	evdns_base_set_option(link_dns.evdns, "randomize-case:", "0");
}

/* Free a list made by link_dns_ai_copy(). */
static void
link_dns_ai_free(struct addrinfo *ai)
{
	struct addrinfo	*next;

	for (; ai != NULL; ai = next) {
		next = ai->ai_next;
		free(ai->ai_canonname);
		free(ai);
	}
}

/* Stop resolving; forget the cache. */
void
link_dns_free(void)
{
	int	i;

	for (i = 0; i < LINK_DNS_SLOTS; i++) {
		free(link_dns.cache[i].host);
		link_dns_ai_free(link_dns.cache[i].ai);
	}
	if (link_dns.evdns != NULL)
		evdns_base_free(link_dns.evdns, 1);
	memset(&link_dns.cache, 0, sizeof link_dns.cache);
	link_dns.evdns = NULL;
}

/*
 * Copy an address list, each node and its address in one allocation (the
 * layout the C library's freeaddrinfo() frees), keeping the entries that
 * match hints and setting port.  NULL if nothing matches.
 */
static struct addrinfo *
link_dns_ai_copy(const struct addrinfo *src, const struct addrinfo *hints,
    int port)
{
	struct addrinfo	*head = NULL, **tail = &head, *n;
	int		 want_family = AF_UNSPEC, want_type = 0;

	if (hints != NULL) {
		want_family = hints->ai_family;
		want_type = hints->ai_socktype;
	}
	for (; src != NULL; src = src->ai_next) {
		if (want_family != AF_UNSPEC && src->ai_family != want_family)
			continue;
		if (src->ai_family != AF_INET && src->ai_family != AF_INET6)
			continue;
		n = xcalloc(1, sizeof *n + src->ai_addrlen);
		n->ai_family = src->ai_family;
		n->ai_socktype = want_type != 0 ? want_type : SOCK_STREAM;
		n->ai_protocol = n->ai_socktype == SOCK_DGRAM ? IPPROTO_UDP :
		    IPPROTO_TCP;
		n->ai_addrlen = src->ai_addrlen;
		n->ai_addr = (struct sockaddr *)(n + 1);
		memcpy(n->ai_addr, src->ai_addr, src->ai_addrlen);
		if (n->ai_family == AF_INET)
			((struct sockaddr_in *)n->ai_addr)->sin_port =
			    htons(port);
		else
			((struct sockaddr_in6 *)n->ai_addr)->sin6_port =
			    htons(port);
		*tail = n;
		tail = &n->ai_next;
	}
	return (head);
}

/* The cache slot of a fresh entry for host, or NULL. */
static struct link_dns_entry *
link_dns_find(const char *host)
{
	int	i;

	for (i = 0; i < LINK_DNS_SLOTS; i++)
		if (link_dns.cache[i].host != NULL &&
		    strcmp(link_dns.cache[i].host, host) == 0 &&
		    link_dns.cache[i].expires > time(NULL))
			return (&link_dns.cache[i]);
	return (NULL);
}

/* Remember what host resolved to. */
static void
link_dns_store(const char *host, const struct evutil_addrinfo *ai)
{
	struct link_dns_entry	*e = NULL, *old = NULL;
	int			 i;

	for (i = 0; i < LINK_DNS_SLOTS; i++) {
		if (link_dns.cache[i].host != NULL &&
		    strcmp(link_dns.cache[i].host, host) == 0) {
			e = &link_dns.cache[i];
			break;
		}
		if (old == NULL || link_dns.cache[i].expires < old->expires)
			old = &link_dns.cache[i];
	}
	if (e == NULL)
		e = old;
	free(e->host);
	link_dns_ai_free(e->ai);
	e->host = xstrdup(host);
	e->ai = link_dns_ai_copy((const struct addrinfo *)ai, NULL, 0);
	e->expires = time(NULL) + LINK_DNS_TTL;
}

/*
 * getaddrinfo() for the whole process: names resolved by the loop are
 * answered from the cache at once; the rest goes to the C library.
 */
int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	struct link_dns_entry	*e;
	int			 port = 0;

	if (node != NULL && (hints == NULL ||
	    !(hints->ai_flags & AI_NUMERICHOST)) &&
	    (e = link_dns_find(node)) != NULL) {
		if (service != NULL)
			port = atoi(service);
		if ((*res = link_dns_ai_copy(e->ai, hints, port)) != NULL)
			return (0);
	}
	if (link_dns.real_getaddrinfo == NULL) {
		link_dns.real_getaddrinfo = (int (*)(const char *,
		    const char *, const struct addrinfo *,
		    struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
		if (link_dns.real_getaddrinfo == NULL)
			return (EAI_SYSTEM);
	}
	return (link_dns.real_getaddrinfo(node, service, hints, res));
}

/* Is host a numeric address? */
static int
link_numeric(const char *host)
{
	struct in6_addr	a;

	return (inet_pton(AF_INET, host, &a) == 1 ||
	    inet_pton(AF_INET6, host, &a) == 1);
}

/* --- configuration ---------------------------------------------------- */

static char *
link_strdup(const char *s)
{
	return (s == NULL ? NULL : xstrdup(s));
}

/* Deep copy of a configuration (dst is overwritten, not freed). */
void
link_cfg_copy(struct link_cfg *dst, const struct link_cfg *src)
{
	*dst = *src;
	dst->host = link_strdup(src->host);
	dst->client_id = link_strdup(src->client_id);
	dst->username = link_strdup(src->username);
	dst->password = link_strdup(src->password);
	dst->tls_version = link_strdup(src->tls_version);
	dst->ca_file = link_strdup(src->ca_file);
	dst->cert_file = link_strdup(src->cert_file);
	dst->key_file = link_strdup(src->key_file);
	dst->will_topic = link_strdup(src->will_topic);
	dst->will_payload = link_strdup(src->will_payload);
}

/* Free a configuration's strings. */
void
link_cfg_clear(struct link_cfg *c)
{
	free(c->host);
	free(c->client_id);
	free(c->username);
	free(c->password);
	free(c->tls_version);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->will_topic);
	free(c->will_payload);
	memset(c, 0, sizeof *c);
}

/* --- lifecycle -------------------------------------------------------- */

/*
 * A new link named name (for logs and metrics), disabled; ops are called
 * with arg.  The configuration is copied.
 */
struct link *
link_new(struct event_base *base, const char *name, const struct link_cfg *cfg,
    const struct link_ops *ops, void *arg)
{
	struct link	*l;

	if (!link_libinit) {
		mosquitto_lib_init();
		link_libinit = 1;
	}
	l = xcalloc(1, sizeof *l);
	l->name = xstrdup(name);
	l->base = base;
	link_cfg_copy(&l->cfg, cfg);
	l->ops = ops;
	l->arg = arg;
	l->fd = -1;
	l->status = LINK_DISCONNECT;
	l->misc = event_new(base, -1, EV_PERSIST, link_misc_cb, l);
	l->retry = evtimer_new(base, link_retry_cb, l);
	l->handshake = evtimer_new(base, link_handshake_cb, l);
	l->ackev = event_new(base, -1, 0, link_acks_cb, l);
	return (l);
}

/* Take a new configuration: reconnect if enabled. */
void
link_reconfigure(struct link *l, const struct link_cfg *cfg)
{
	int	was = l->enabled;

	link_enable(l, 0);
	link_cfg_clear(&l->cfg);
	link_cfg_copy(&l->cfg, cfg);
	l->failures = 0;
	if (was)
		link_enable(l, 1);
}

/* Connect (on) or disconnect and stay down (off). */
void
link_enable(struct link *l, int on)
{
	if (on && !l->enabled) {
		l->enabled = 1;
		l->failures = 0;
		link_attempt(l);
	} else if (!on && l->enabled) {
		l->enabled = 0;
		if (l->phase == LINK_UP && l->mosq != NULL)
			mosquitto_disconnect(l->mosq);
		link_teardown(l);
		evtimer_del(l->retry);
		l->phase = LINK_IDLE;
		l->status = LINK_DISCONNECT;
		log_info("link %s: disabled", l->name);
	}
}

/* Free a link (from inside one of its own callbacks too). */
void
link_free(struct link *l)
{
	if (l == NULL)
		return;
	if (l->in_callback || l->in_lib) {
		l->dead = 1;
		return;
	}
	link_enable(l, 0);
	event_free(l->misc);
	event_free(l->retry);
	event_free(l->handshake);
	event_free(l->ackev);
	free(l->acks);
	link_cfg_clear(&l->cfg);
	free(l->error);
	free(l->name);
	free(l);
}

enum link_status
link_get_status(const struct link *l)
{
	return (l->status);
}

/* The status as the REST API shows it. */
const char *
link_status_name(enum link_status s)
{
	switch (s) {
	case LINK_CONNECTING:
		return ("connecting");
	case LINK_CONNECT_FAILURE:
		return ("connectFailure");
	case LINK_CONNECTED:
		return ("connected");
	default:
		return ("disconnect");
	}
}

/* Why the last attempt failed (NULL if it did not). */
const char *
link_last_error(const struct link *l)
{
	return (l->error);
}

const char *
link_name(const struct link *l)
{
	return (l->name);
}

/* How many more publishes the window takes now (0 when not connected). */
int
link_room(const struct link *l)
{
	if (l->phase != LINK_UP)
		return (0);
	return (l->cfg.max_inflight - l->inflight);
}

/*
 * Publish (payload copied by libmosquitto).  0 with *mid, or -1 when not
 * connected, the window is full, or the library refuses.
 */
int
link_publish(struct link *l, const char *topic, const void *payload,
    size_t len, int qos, int retain, int *mid)
{
	int	rc;

	if (link_room(l) <= 0)
		return (-1);
	/* A QoS 0 publish may be done before this returns: see link_acks_cb. */
	l->in_publish = 1;
	rc = mosquitto_publish(l->mosq, mid, topic, len, payload, qos,
	    retain != 0);
	l->in_publish = 0;
	if (rc != MOSQ_ERR_SUCCESS) {
		log_warnx("link %s: publish topic=%s: %s", l->name, topic,
		    mosquitto_strerror(rc));
		if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST)
			l->lost = 1;
		if (!l->in_lib && !l->in_callback)
			link_after(l);
		return (-1);
	}
	l->inflight++;
	link_update_write(l);
	return (0);
}

/* Subscribe (when connected); 0 or -1. */
int
link_subscribe(struct link *l, const char *topic, int qos)
{
	int	rc;

	if (l->phase != LINK_UP)
		return (-1);
	rc = mosquitto_subscribe(l->mosq, NULL, topic, qos);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_warnx("link %s: subscribe %s: %s", l->name, topic,
		    mosquitto_strerror(rc));
		return (-1);
	}
	link_update_write(l);
	return (0);
}

/* --- connecting ------------------------------------------------------- */

/* Start an attempt: resolve the host if needed, then connect. */
static void
link_attempt(struct link *l)
{
	struct evutil_addrinfo	hints;

	l->attempts++;
	/* After a failure the status stays connectFailure until success. */
	if (l->failures == 0)
		l->status = LINK_CONNECTING;
	if (link_numeric(l->cfg.host) || link_dns_find(l->cfg.host) != NULL) {
		link_dns_cb(0, NULL, l);
		return;
	}
	if (link_dns.evdns == NULL) {
		link_fail(l, "cannot resolve %s: no resolver", l->cfg.host);
		return;
	}
	l->phase = LINK_RESOLVING;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	l->dnsreq = evdns_getaddrinfo(link_dns.evdns, l->cfg.host, NULL,
	    &hints, link_dns_cb, l);
}

/* Map "1.2" to what libmosquitto calls it; 1.0 is not offered. */
static const char *
link_tls_version(const char *v)
{
	if (v == NULL || strcmp(v, "1.2") == 0)
		return ("tlsv1.2");
	if (strcmp(v, "1.3") == 0)
		return ("tlsv1.3");
	return ("tlsv1.1");
}

/* The name is known (err 0) or could not be: open the session. */
static void
link_dns_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct link	*l = arg;
	struct timeval	 tv;
	int		 rc;

	if (err == EVUTIL_EAI_CANCEL)
		return;
	l->dnsreq = NULL;
	if (ai != NULL) {
		if (err == 0)
			link_dns_store(l->cfg.host, ai);
		evutil_freeaddrinfo(ai);
	}
	if (err != 0) {
		link_fail(l, "cannot resolve %s: %s", l->cfg.host,
		    evutil_gai_strerror(err));
		return;
	}

	l->phase = LINK_OPENING;
	l->got_connack = l->lost = 0;
	l->liberr[0] = '\0';
	l->inflight = 0;
	l->mosq = mosquitto_new(l->cfg.client_id, l->cfg.clean_session != 0,
	    l);
	if (l->mosq == NULL) {
		link_fail(l, "mosquitto_new: %s", strerror(errno));
		return;
	}
	mosquitto_connect_callback_set(l->mosq, link_on_connect);
	mosquitto_disconnect_callback_set(l->mosq, link_on_disconnect);
	mosquitto_publish_callback_set(l->mosq, link_on_publish);
	mosquitto_message_callback_set(l->mosq, link_on_message);
	mosquitto_log_callback_set(l->mosq, link_on_log);
	mosquitto_int_option(l->mosq, MOSQ_OPT_PROTOCOL_VERSION,
	    l->cfg.protocol == 3 ? MQTT_PROTOCOL_V31 : MQTT_PROTOCOL_V311);
	mosquitto_max_inflight_messages_set(l->mosq, 0);
	mosquitto_int_option(l->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	if (l->cfg.username != NULL && *l->cfg.username != '\0')
		mosquitto_username_pw_set(l->mosq, l->cfg.username,
		    l->cfg.password);
	if (l->cfg.will && l->cfg.will_topic != NULL) {
		rc = mosquitto_will_set(l->mosq, l->cfg.will_topic,
		    strlen(l->cfg.will_payload != NULL ?
		    l->cfg.will_payload : ""), l->cfg.will_payload,
		    l->cfg.will_qos, l->cfg.will_retain != 0);
		if (rc != MOSQ_ERR_SUCCESS) {
			link_fail(l, "will: %s", mosquitto_strerror(rc));
			return;
		}
	}
	if (l->cfg.tls) {
		rc = mosquitto_tls_set(l->mosq, l->cfg.ca_file,
		    l->cfg.ca_file == NULL ? "/etc/ssl/certs" : NULL,
		    l->cfg.cert_file, l->cfg.key_file, NULL);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_opts_set(l->mosq,
			    l->cfg.insecure ? 0 : 1,
			    link_tls_version(l->cfg.tls_version), NULL);
		if (rc == MOSQ_ERR_SUCCESS && l->cfg.insecure)
			rc = mosquitto_tls_insecure_set(l->mosq, true);
		if (rc != MOSQ_ERR_SUCCESS) {
			link_fail(l, "TLS settings: %s%s%s",
			    mosquitto_strerror(rc), l->liberr[0] != '\0' ?
			    ": " : "", l->liberr);
			return;
		}
	}

	tv.tv_sec = l->cfg.handshake_timeout;
	tv.tv_usec = 0;
	evtimer_add(l->handshake, &tv);
	rc = mosquitto_connect_async(l->mosq, l->cfg.host, l->cfg.port,
	    l->cfg.keepalive);
	if (rc != MOSQ_ERR_SUCCESS) {
		link_fail(l, "connect to %s:%d: %s%s%s", l->cfg.host,
		    l->cfg.port, rc == MOSQ_ERR_ERRNO ? strerror(errno) :
		    mosquitto_strerror(rc), l->liberr[0] != '\0' ? ": " : "",
		    l->liberr);
		return;
	}
	l->fd = mosquitto_socket(l->mosq);
	if (l->fd < 0) {
		link_fail(l, "connect to %s:%d: no socket", l->cfg.host,
		    l->cfg.port);
		return;
	}
	l->rev = event_new(l->base, l->fd, EV_READ | EV_PERSIST, link_read_cb,
	    l);
	l->wev = event_new(l->base, l->fd, EV_WRITE, link_write_cb, l);
	event_add(l->rev, NULL);
	tv.tv_sec = LINK_MISC_MS / 1000;
	tv.tv_usec = (LINK_MISC_MS % 1000) * 1000;
	evtimer_add(l->misc, &tv);
	link_update_write(l);
}

/* Close the session's socket and libmosquitto state (not the link). */
static void
link_teardown(struct link *l)
{
	if (l->dnsreq != NULL) {
		evdns_getaddrinfo_cancel(l->dnsreq);
		l->dnsreq = NULL;
	}
	if (l->rev != NULL) {
		event_free(l->rev);
		l->rev = NULL;
	}
	if (l->wev != NULL) {
		event_free(l->wev);
		l->wev = NULL;
	}
	evtimer_del(l->misc);
	evtimer_del(l->handshake);
	if (l->mosq != NULL) {
		mosquitto_destroy(l->mosq);
		l->mosq = NULL;
	}
	l->fd = -1;
	l->inflight = 0;
	/* Acks of the old session would match the new one's ids. */
	l->nacks = 0;
	if (l->ackev != NULL)
		event_del(l->ackev);
}

/* An attempt failed: say why once, and retry later. */
static void
link_fail(struct link *l, const char *fmt, ...)
{
	va_list	ap;
	char	*why;

	va_start(ap, fmt);
	xvasprintf(&why, fmt, ap);
	va_end(ap);
	free(l->error);
	l->error = why;
	link_teardown(l);
	l->failures++;
	l->status = LINK_CONNECT_FAILURE;
	if (l->failures <= 3)
		log_warnx("link %s: connect failed reason=\"%s\" failures=%u",
		    l->name, why, l->failures);
	else
		log_debug("link %s: connect failed reason=\"%s\" failures=%u",
		    l->name, why, l->failures);
	link_schedule_retry(l);
}

/* Wait before the next attempt: 1 s doubling, capped, +-20% jitter. */
static void
link_schedule_retry(struct link *l)
{
	struct timeval	tv;
	double		secs, cap;
	unsigned int	n = l->failures > 0 ? l->failures - 1 : 0;
	unsigned char	r;

	cap = l->cfg.retry_interval > 0 ? l->cfg.retry_interval : 60;
	secs = n >= 16 ? cap : (double)(1u << n);
	if (secs > cap)
		secs = cap;
	evutil_secure_rng_get_bytes(&r, 1);
	secs *= 0.8 + 0.4 * (r / 255.0);
	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - tv.tv_sec) * 1e6);
	l->phase = LINK_WAIT;
	evtimer_add(l->retry, &tv);
}

static void
link_retry_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct link	*l = arg;

	if (l->enabled)
		link_attempt(l);
}

/* No CONNACK in handshake_timeout seconds. */
static void
link_handshake_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct link	*l = arg;

	if (l->phase == LINK_OPENING)
		link_fail(l, "no answer from %s:%d within %d s%s%s",
		    l->cfg.host, l->cfg.port, l->cfg.handshake_timeout,
		    l->liberr[0] != '\0' ? ": " : "", l->liberr);
}

/* --- running ---------------------------------------------------------- */

/* Watch for writability only while libmosquitto has something to send. */
static void
link_update_write(struct link *l)
{
	if (l->wev == NULL || l->mosq == NULL)
		return;
	if (mosquitto_want_write(l->mosq))
		event_add(l->wev, NULL);
	else
		event_del(l->wev);
}

/*
 * After a libmosquitto call: act on what its callbacks recorded (CONNACK,
 * loss), then tell the owner.  Owner callbacks may free the link.
 */
static void
link_after(struct link *l)
{
	const struct link_ops	*ops = l->ops;
	int			 was_up = (l->phase == LINK_UP);

	if (l->got_connack && l->phase == LINK_OPENING) {
		l->got_connack = 0;
		if (l->connack_rc != 0) {
			link_fail(l, "broker refused: %s",
			    mosquitto_connack_string(l->connack_rc));
			return;
		}
		evtimer_del(l->handshake);
		l->phase = LINK_UP;
		l->status = LINK_CONNECTED;
		l->failures = 0;
		free(l->error);
		l->error = NULL;
		log_info("link %s: connected to %s:%d", l->name, l->cfg.host,
		    l->cfg.port);
		l->in_callback = 1;
		if (ops->connected != NULL)
			ops->connected(l, l->arg);
		l->in_callback = 0;
		if (l->dead) {
			link_free(l);
			return;
		}
	}
	if (l->lost) {
		l->lost = 0;
		if (!was_up && l->phase == LINK_OPENING) {
			link_fail(l, "connection to %s:%d closed%s%s",
			    l->cfg.host, l->cfg.port,
			    l->liberr[0] != '\0' ? ": " : "", l->liberr);
			return;
		}
		if (l->phase != LINK_UP)
			return;
		log_warnx("link %s: disconnected from %s:%d%s%s", l->name,
		    l->cfg.host, l->cfg.port, l->liberr[0] != '\0' ?
		    " reason=" : "", l->liberr);
		link_teardown(l);
		l->status = LINK_DISCONNECT;
		l->failures = 1;
		link_schedule_retry(l);
		l->in_callback = 1;
		if (ops->disconnected != NULL)
			ops->disconnected(l, l->arg);
		l->in_callback = 0;
		if (l->dead)
			link_free(l);
		return;
	}
	link_update_write(l);
}

/* libmosquitto's error text, with the ones it leaves unnamed named. */
static const char *
link_strerror(int rc)
{
	switch (rc) {
	case MOSQ_ERR_ERRNO:
		return (strerror(errno));
	case MOSQ_ERR_KEEPALIVE:
		return ("keepalive timeout: the broker stopped answering");
	default:
		return (mosquitto_strerror(rc));
	}
}

/* A libmosquitto return code from the loop functions. */
static void
link_check(struct link *l, int rc)
{
	if (rc == MOSQ_ERR_SUCCESS)
		return;
	if (l->liberr[0] == '\0')
		snprintf(l->liberr, sizeof l->liberr, "%s", link_strerror(rc));
	l->lost = 1;
}

/*
 * Run one of libmosquitto's loop functions; its callbacks may have asked
 * for the link to be freed.
 */
static void
link_run(struct link *l, int (*fn)(struct link *))
{
	int	rc;

	if (l->mosq == NULL)
		return;
	l->in_lib = 1;
	rc = fn(l);
	l->in_lib = 0;
	if (l->dead) {
		link_free(l);
		return;
	}
	link_check(l, rc);
	link_after(l);
}

static int
link_loop_read(struct link *l)
{
	return (mosquitto_loop_read(l->mosq, 64));
}

static int
link_loop_write(struct link *l)
{
	return (mosquitto_loop_write(l->mosq, 64));
}

/*
 * Keepalive only once the session is up: before CONNACK the handshake
 * timer is the limit (libmosquitto's keepalive check would cut the
 * attempt short).
 */
static int
link_loop_misc(struct link *l)
{
	if (l->phase != LINK_UP)
		return (MOSQ_ERR_SUCCESS);
	return (mosquitto_loop_misc(l->mosq));
}

static void
link_read_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	link_run(arg, link_loop_read);
}

static void
link_write_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	link_run(arg, link_loop_write);
}

static void
link_misc_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	link_run(arg, link_loop_misc);
}

/* --- libmosquitto callbacks: record only -------------------------------- */

static void
link_on_connect(__attribute__((unused)) struct mosquitto *mosq, void *arg,
    int rc)
{
	struct link	*l = arg;

	l->got_connack = 1;
	l->connack_rc = rc;
}

static void
link_on_disconnect(__attribute__((unused)) struct mosquitto *mosq, void *arg,
    int rc)
{
	struct link	*l = arg;

	if (rc != 0 && l->liberr[0] == '\0')
		snprintf(l->liberr, sizeof l->liberr, "%s", link_strerror(rc));
	l->lost = 1;
}

/*
 * Acks libmosquitto gave from inside mosquitto_publish() (QoS 0 written at
 * once): handed on from the loop, after the publisher has recorded the
 * message id.
 */
static void
link_acks_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct link	*l = arg;
	size_t		 i, n = l->nacks;
	int		*acks = l->acks;

	l->acks = NULL;
	l->nacks = l->capacks = 0;
	for (i = 0; i < n && !l->dead; i++)
		link_on_publish(NULL, l, acks[i]);
	free(acks);
	if (l->dead)
		link_free(l);
}

/* A publish is acknowledged (QoS 1, 2) or written (QoS 0). */
static void
link_on_publish(__attribute__((unused)) struct mosquitto *mosq, void *arg,
    int mid)
{
	struct link	*l = arg;
	int		 was_full = (l->inflight >= l->cfg.max_inflight);

	if (l->in_publish) {
		if (l->nacks == l->capacks) {
			l->capacks = l->capacks == 0 ? 16 : l->capacks * 2;
			l->acks = xreallocarray(l->acks, l->capacks,
			    sizeof *l->acks);
		}
		l->acks[l->nacks++] = mid;
		event_active(l->ackev, EV_TIMEOUT, 0);
		return;
	}
	if (l->inflight > 0)
		l->inflight--;
	l->in_callback = 1;
	if (l->ops->acked != NULL)
		l->ops->acked(l, mid, l->arg);
	if (was_full && l->ops->writable != NULL && !l->dead)
		l->ops->writable(l, l->arg);
	l->in_callback = 0;
}

static void
link_on_message(__attribute__((unused)) struct mosquitto *mosq, void *arg,
    const struct mosquitto_message *msg)
{
	struct link	*l = arg;

	if (l->ops->message == NULL || l->dead)
		return;
	l->in_callback = 1;
	l->ops->message(l, msg->topic, msg->payload, msg->payloadlen, l->arg);
	l->in_callback = 0;
}

/* Keep libmosquitto's last error (TLS reasons come this way). */
static void
link_on_log(__attribute__((unused)) struct mosquitto *mosq, void *arg,
    int level, const char *msg)
{
	struct link	*l = arg;

	if (level & MOSQ_LOG_ERR)
		snprintf(l->liberr, sizeof l->liberr, "%s", msg);
	else if (log_debug_on())
		log_debug("link %s: mosquitto: %s", l->name, msg);
}

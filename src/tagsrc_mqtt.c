/* SPDX-License-Identifier: ISC */
/*
 * Local MQTT ingest: one libmosquitto client subscribes to
 * mqtt_ingest_topic on a broker on the gateway and hands every payload (a
 * tag record or an array of them) to tag_ingest(), for producers that
 * already speak MQTT.  A payload that fails is counted and reported at
 * most once a minute (the count since the last line and the latest
 * cause); it never stops the client.
 *
 * No threads: the client is driven from the event loop.  Its socket has a
 * persistent read event, a write event while mosquitto_want_write() says
 * so (asked again after every call into the library), and a 1 s timer runs
 * mosquitto_loop_misc() for keepalive.  libmosquitto reports a broken
 * connection from inside those calls (on_disconnect, after it has closed
 * the socket); the callback only takes note, and the caller drops the
 * socket's events and arms the reconnect timer: 1 s, doubling up to 30 s,
 * plus up to 20% jitter.  The events are freed when the next attempt
 * starts, on a later loop turn.
 *
 * mosquitto_connect_async() resolves the host with a blocking
 * getaddrinfo(); mqtt_ingest only takes numeric addresses
 * (conf_parse_listen), so that returns at once and the loop never waits on
 * DNS.  The TCP connect is non-blocking: CONNECT waits in the library's
 * queue until the socket turns writable, and a connect or CONNACK that
 * never comes is ended by libmosquitto's keepalive check on the 1 s timer.
 *
 * With mqtt_ingest_write_topic set, every MQTT-origin tag gets a write
 * path: tag_write() publishes {"prvdName", "srcName", "tagName",
 * "dataType", "dataValue", "ts"} at QoS 1 to the template with {provider},
 * {source} and {tag} filled in.  A message that arrives on a topic of that
 * form is one of those commands coming back through an overlapping
 * subscription; it is not taken as a value.
 *
 * SIGHUP starts a new client when any mqtt_ingest* key changed.  The
 * counters live from tagsrc_mqtt_init() to tagsrc_mqtt_free().
 */

#include <sys/time.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <mosquitto.h>

#include "conf.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "tag.h"
#include "tagsrc_mqtt.h"
#include "util.h"
#include "xmalloc.h"

#define TAGSRC_MQTT_QOS		1
#define TAGSRC_MQTT_KEEPALIVE	60	/* seconds */
#define TAGSRC_MQTT_BACKOFF_MIN	1	/* seconds */
#define TAGSRC_MQTT_BACKOFF_MAX	30	/* seconds */
#define TAGSRC_MQTT_JITTER	20	/* percent of the backoff, at most */
#define TAGSRC_MQTT_LOG_FAILS	3	/* failed attempts in a row logged */
#define TAGSRC_MQTT_REPORT_MS	60000	/* one malformed-payload line per */
#define TAGSRC_MQTT_READ_BATCH	64	/* loop_read calls per wakeup */

enum tagsrc_mqtt_state {
	TAGSRC_MQTT_OFF,		/* mqtt_ingest = off */
	TAGSRC_MQTT_WAITING,		/* the retry timer runs */
	TAGSRC_MQTT_CONNECTING,		/* socket open, no CONNACK yet */
	TAGSRC_MQTT_CONNECTED		/* CONNACK accepted */
};

/* The mqtt_ingest* settings a client runs with. */
struct tagsrc_mqtt_cfg {
	char		*addr;		/* mqtt_ingest as written; NULL: off */
	char		*host;
	int		 port;
	char		*topic;
	char		*client_id;
	char		*username;	/* "": none */
	char		*password;
	char		*write_topic;	/* "": no write path */
};

struct tagsrc_mqtt {
	struct event_base	*base;
	struct tagsrc_mqtt_cfg	 cfg;
	size_t			 max_records;
	int			 writer;	/* our write path is set */

	struct mosquitto	*mosq;
	enum tagsrc_mqtt_state	 state;
	struct event		*rev;		/* socket readable (persist) */
	struct event		*wev;		/* socket writable, if wanted */
	struct event		*misc;		/* 1 s: mosquitto_loop_misc() */
	struct event		*retry;		/* the next connect attempt */
	unsigned int		 backoff;	/* seconds, without jitter */
	unsigned int		 failures;	/* attempts failed in a row */
	int			 connack;	/* refusal code in CONNACK */
	int			 lost;		/* on_disconnect was called */
	int			 lost_rc;
	int			 lost_errno;
	unsigned short		 seed[3];	/* nrand48() state, jitter */

	struct event		*report;	/* deferred malformed line */
	int			 reported;	/* a line was logged ... */
	uint64_t		 report_ms;	/* ... at this time */
	uint64_t		 unreported;	/* malformed payloads since */
	char			*last_topic;
	char			*last_cause;

	uint64_t		 messages;
	uint64_t		 malformed;
	uint64_t		 writes;
};

static struct tagsrc_mqtt	*tagsrc_mqtt;
static int			 tagsrc_mqtt_registered;	/* metrics */
static int			 tagsrc_mqtt_libinit;

static const char *tagsrc_mqtt_placeholders[] = {
	"{provider}", "{source}", "{tag}"
};
#define TAGSRC_MQTT_NPH	3

static int	 tagsrc_mqtt_cfg_load(const struct conf *,
		    struct tagsrc_mqtt_cfg *, char **);
static int	 tagsrc_mqtt_cfg_equal(const struct tagsrc_mqtt_cfg *,
		    const struct tagsrc_mqtt_cfg *);
static void	 tagsrc_mqtt_cfg_clear(struct tagsrc_mqtt_cfg *);
static void	 tagsrc_mqtt_start(struct tagsrc_mqtt *,
		    struct tagsrc_mqtt_cfg *);
static void	 tagsrc_mqtt_stop(struct tagsrc_mqtt *, const char *);
static void	 tagsrc_mqtt_sockev_free(struct tagsrc_mqtt *);
static void	 tagsrc_mqtt_want_write(struct tagsrc_mqtt *);
static void	 tagsrc_mqtt_check(struct tagsrc_mqtt *, int, int);
static void	 tagsrc_mqtt_down(struct tagsrc_mqtt *, int, int);
static const char *tagsrc_mqtt_reason(struct tagsrc_mqtt *, int, int);
static unsigned int tagsrc_mqtt_delay(struct tagsrc_mqtt *);
static int	 tagsrc_mqtt_utf8_ok(const char *);
static size_t	 tagsrc_mqtt_placeholder(const char *);
static size_t	 tagsrc_mqtt_expand_into(const char *, const char *const *,
		    char *);
static char	*tagsrc_mqtt_expand(const char *, const char *, const char *,
		    const char *);
static int	 tagsrc_mqtt_match(const char *, const char *);
static void	 tagsrc_mqtt_malformed(struct tagsrc_mqtt *, const char *,
		    const char *);
static void	 tagsrc_mqtt_report(struct tagsrc_mqtt *);
static void	 tagsrc_mqtt_metrics(FILE *);
static int	 tagsrc_mqtt_write_cb(const struct tag_rec *, void *,
		    char **);
static void	 tagsrc_mqtt_retry_cb(evutil_socket_t, short, void *);
static void	 tagsrc_mqtt_read_cb(evutil_socket_t, short, void *);
static void	 tagsrc_mqtt_write_ready_cb(evutil_socket_t, short, void *);
static void	 tagsrc_mqtt_misc_cb(evutil_socket_t, short, void *);
static void	 tagsrc_mqtt_report_cb(evutil_socket_t, short, void *);
static void	 tagsrc_mqtt_connect_cb(struct mosquitto *, void *, int);
static void	 tagsrc_mqtt_disconnect_cb(struct mosquitto *, void *, int);
static void	 tagsrc_mqtt_subscribe_cb(struct mosquitto *, void *, int,
		    int, const int *);
static void	 tagsrc_mqtt_message_cb(struct mosquitto *, void *,
		    const struct mosquitto_message *);
static void	 tagsrc_mqtt_log_cb(struct mosquitto *, void *, int,
		    const char *);

/*
 * Start the ingest on base with the settings in c (borrowed for the
 * call); nothing runs when mqtt_ingest is off.  0, or -1 with *cause
 * (caller frees) for settings that cannot work.
 */
int
tagsrc_mqtt_init(struct event_base *base, const struct conf *c,
    char **cause)
{
	struct tagsrc_mqtt	*mq;
	struct tagsrc_mqtt_cfg	 cfg;
	uint64_t		 now = util_now_ms();
	pid_t			 pid = getpid();

	if (tagsrc_mqtt != NULL)
		fatalx("mqtt ingest: started twice");
	if (tagsrc_mqtt_cfg_load(c, &cfg, cause) != 0)
		return (-1);
	mq = tagsrc_mqtt = xcalloc(1, sizeof *mq);
	mq->base = base;
	mq->max_records = c->publish_max_records;
	mq->seed[0] = (unsigned short)now;
	mq->seed[1] = (unsigned short)(now >> 16);
	mq->seed[2] = (unsigned short)pid;
	mq->report = evtimer_new(base, tagsrc_mqtt_report_cb, mq);
	if (mq->report == NULL)
		fatalx("mqtt ingest: evtimer_new failed");
	if (!tagsrc_mqtt_registered) {
		metrics_register(tagsrc_mqtt_metrics);
		tagsrc_mqtt_registered = 1;
	}
	tagsrc_mqtt_start(mq, &cfg);
	return (0);
}

/*
 * SIGHUP: take the new settings (c borrowed for the call).  A change to
 * any mqtt_ingest* key ends the client and starts a new one; -1 with
 * *cause (caller frees) leaves the running client as it was.
 */
int
tagsrc_mqtt_reconfigure(const struct conf *c, char **cause)
{
	struct tagsrc_mqtt	*mq = tagsrc_mqtt;
	struct tagsrc_mqtt_cfg	 cfg;

	if (mq == NULL)
		fatalx("mqtt ingest: reconfigured before init");
	if (tagsrc_mqtt_cfg_load(c, &cfg, cause) != 0)
		return (-1);
	mq->max_records = c->publish_max_records;
	if (tagsrc_mqtt_cfg_equal(&cfg, &mq->cfg)) {
		tagsrc_mqtt_cfg_clear(&cfg);
		return (0);
	}
	tagsrc_mqtt_stop(mq, "configuration changed");
	tagsrc_mqtt_start(mq, &cfg);
	return (0);
}

/*
 * Disconnect and free everything, including the library.  Call before
 * tag_free(): the tags' write path is taken away here.
 */
void
tagsrc_mqtt_free(void)
{
	struct tagsrc_mqtt	*mq = tagsrc_mqtt;

	if (mq == NULL)
		return;
	tagsrc_mqtt_report(mq);
	tagsrc_mqtt_stop(mq, "stopping");
	event_free(mq->report);
	free(mq->last_topic);
	free(mq->last_cause);
	free(mq);
	tagsrc_mqtt = NULL;
	if (tagsrc_mqtt_libinit) {
		mosquitto_lib_cleanup();
		tagsrc_mqtt_libinit = 0;
	}
}

/*
 * Read the mqtt_ingest* keys of c into cfg (which the caller clears);
 * 0, or -1 with *cause and nothing left to clear.
 */
static int
tagsrc_mqtt_cfg_load(const struct conf *c, struct tagsrc_mqtt_cfg *cfg,
    char **cause)
{
	char	*port, *why, *t;
	int	 ok;

	memset(cfg, 0, sizeof *cfg);
	if (c->mqtt_ingest == NULL || strcmp(c->mqtt_ingest, "off") == 0)
		return (0);
	if (conf_parse_listen(c->mqtt_ingest, &cfg->host, &port, &why) != 0) {
		xasprintf(cause, "mqtt_ingest: %s", why);
		free(why);
		return (-1);
	}
	cfg->port = (int)strtol(port, NULL, 10);	/* checked: 1-65535 */
	free(port);
	cfg->addr = xstrdup(c->mqtt_ingest);
	cfg->topic = xstrdup(c->mqtt_ingest_topic != NULL ?
	    c->mqtt_ingest_topic : "");
	cfg->client_id = xstrdup(c->mqtt_ingest_client_id != NULL ?
	    c->mqtt_ingest_client_id : "");
	cfg->username = xstrdup(c->mqtt_ingest_username != NULL ?
	    c->mqtt_ingest_username : "");
	cfg->password = xstrdup(c->mqtt_ingest_password != NULL ?
	    c->mqtt_ingest_password : "");
	cfg->write_topic = xstrdup(c->mqtt_ingest_write_topic != NULL ?
	    c->mqtt_ingest_write_topic : "");

	if (!tagsrc_mqtt_utf8_ok(cfg->topic) || *cfg->topic == '\0' ||
	    mosquitto_sub_topic_check(cfg->topic) != MOSQ_ERR_SUCCESS) {
		xasprintf(cause, "mqtt_ingest_topic: \"%s\" is not a valid "
		    "MQTT topic filter", cfg->topic);
		goto fail;
	}
	if (*cfg->client_id == '\0' || !tagsrc_mqtt_utf8_ok(cfg->client_id)) {
		xasprintf(cause, "mqtt_ingest_client_id: must be 1 to 23 "
		    "bytes of UTF-8");
		goto fail;
	}
	if (!tagsrc_mqtt_utf8_ok(cfg->username)) {
		xasprintf(cause, "mqtt_ingest_username: must be UTF-8");
		goto fail;
	}
	if (*cfg->password != '\0' && *cfg->username == '\0') {
		xasprintf(cause, "mqtt_ingest_password: is set but "
		    "mqtt_ingest_username is empty (MQTT 3.1.1 sends a "
		    "password only with a user name)");
		goto fail;
	}
	if (*cfg->write_topic != '\0') {
		/* Check it with plain names in the placeholders. */
		t = tagsrc_mqtt_expand(cfg->write_topic, "x", "x", "x");
		ok = tagsrc_mqtt_utf8_ok(t) &&
		    mosquitto_pub_topic_check(t) == MOSQ_ERR_SUCCESS;
		free(t);
		if (!ok) {
			xasprintf(cause, "mqtt_ingest_write_topic: \"%s\" is "
			    "not a valid MQTT topic name (no + or #; "
			    "{provider}, {source} and {tag} are filled in)",
			    cfg->write_topic);
			goto fail;
		}
	}
	return (0);

fail:
	tagsrc_mqtt_cfg_clear(cfg);
	return (-1);
}

/* Are two settings the same (both borrowed)? */
static int
tagsrc_mqtt_cfg_equal(const struct tagsrc_mqtt_cfg *a,
    const struct tagsrc_mqtt_cfg *b)
{
	if (a->addr == NULL || b->addr == NULL)
		return (a->addr == b->addr);
	return (strcmp(a->addr, b->addr) == 0 &&
	    strcmp(a->topic, b->topic) == 0 &&
	    strcmp(a->client_id, b->client_id) == 0 &&
	    strcmp(a->username, b->username) == 0 &&
	    strcmp(a->password, b->password) == 0 &&
	    strcmp(a->write_topic, b->write_topic) == 0);
}

/* Free what a settings structure holds; it is left off. */
static void
tagsrc_mqtt_cfg_clear(struct tagsrc_mqtt_cfg *cfg)
{
	free(cfg->addr);
	free(cfg->host);
	free(cfg->topic);
	free(cfg->client_id);
	free(cfg->username);
	free(cfg->password);
	free(cfg->write_topic);
	memset(cfg, 0, sizeof *cfg);
}

/*
 * Run a client with cfg (taking ownership of what it holds): make it,
 * set up the write path and try to connect on the next loop turn.
 */
static void
tagsrc_mqtt_start(struct tagsrc_mqtt *mq, struct tagsrc_mqtt_cfg *cfg)
{
	struct timeval	 tv = { 0, 0 };
	int		 rc;

	mq->cfg = *cfg;
	memset(cfg, 0, sizeof *cfg);
	mq->state = TAGSRC_MQTT_OFF;
	if (mq->cfg.addr == NULL) {
		log_debug("mqtt ingest: off");
		return;
	}

	if (!tagsrc_mqtt_libinit) {
		if ((rc = mosquitto_lib_init()) != MOSQ_ERR_SUCCESS)
			fatalx("mqtt ingest: mosquitto_lib_init: %s",
			    mosquitto_strerror(rc));
		tagsrc_mqtt_libinit = 1;
	}
	/* A clean session: the broker keeps nothing between connections. */
	if ((mq->mosq = mosquitto_new(mq->cfg.client_id, true, mq)) == NULL)
		fatal("mqtt ingest: mosquitto_new");
	mosquitto_connect_callback_set(mq->mosq, tagsrc_mqtt_connect_cb);
	mosquitto_disconnect_callback_set(mq->mosq,
	    tagsrc_mqtt_disconnect_cb);
	mosquitto_subscribe_callback_set(mq->mosq, tagsrc_mqtt_subscribe_cb);
	mosquitto_message_callback_set(mq->mosq, tagsrc_mqtt_message_cb);
	mosquitto_log_callback_set(mq->mosq, tagsrc_mqtt_log_cb);
	if (*mq->cfg.username != '\0') {
		rc = mosquitto_username_pw_set(mq->mosq, mq->cfg.username,
		    *mq->cfg.password != '\0' ? mq->cfg.password : NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			fatalx("mqtt ingest: mosquitto_username_pw_set: %s",
			    mosquitto_strerror(rc));
	}

	mq->misc = event_new(mq->base, -1, EV_PERSIST, tagsrc_mqtt_misc_cb,
	    mq);
	mq->retry = evtimer_new(mq->base, tagsrc_mqtt_retry_cb, mq);
	if (mq->misc == NULL || mq->retry == NULL)
		fatalx("mqtt ingest: event_new failed");
	mq->backoff = TAGSRC_MQTT_BACKOFF_MIN;
	mq->failures = 0;

	if (*mq->cfg.write_topic != '\0') {
		tag_set_origin_writer(TAG_ORIGIN_MQTT, tagsrc_mqtt_write_cb,
		    mq);
		mq->writer = 1;
	} else {
		tag_set_origin_writer(TAG_ORIGIN_MQTT, NULL, NULL);
		mq->writer = 0;
	}

	log_info("mqtt ingest: started broker=%s topic=%s client_id=%s%s%s",
	    mq->cfg.addr, mq->cfg.topic, mq->cfg.client_id,
	    mq->writer ? " write_topic=" : "", mq->cfg.write_topic);
	mq->state = TAGSRC_MQTT_WAITING;
	evtimer_add(mq->retry, &tv);
}

/*
 * End the client, if any: its events, the session (a DISCONNECT if it
 * was up), the write path and the settings.  Not from our own callbacks.
 */
static void
tagsrc_mqtt_stop(struct tagsrc_mqtt *mq, const char *why)
{
	int	up = (mq->state == TAGSRC_MQTT_CONNECTED);

	tagsrc_mqtt_sockev_free(mq);
	if (mq->misc != NULL)
		event_free(mq->misc);
	if (mq->retry != NULL)
		event_free(mq->retry);
	mq->misc = mq->retry = NULL;
	if (mq->mosq != NULL) {
		/* Closes the socket once DISCONNECT is written. */
		if (up)
			mosquitto_disconnect(mq->mosq);
		mosquitto_destroy(mq->mosq);
		mq->mosq = NULL;
	}
	if (mq->writer) {
		tag_set_origin_writer(TAG_ORIGIN_MQTT, NULL, NULL);
		mq->writer = 0;
	}
	if (mq->cfg.addr != NULL)
		log_info("mqtt ingest: stopped broker=%s reason=\"%s\"",
		    mq->cfg.addr, why);
	mq->state = TAGSRC_MQTT_OFF;
	tagsrc_mqtt_cfg_clear(&mq->cfg);
}

/* Free the events of the last socket (deleted, or never added). */
static void
tagsrc_mqtt_sockev_free(struct tagsrc_mqtt *mq)
{
	if (mq->rev != NULL)
		event_free(mq->rev);
	if (mq->wev != NULL)
		event_free(mq->wev);
	mq->rev = mq->wev = NULL;
}

/* Watch for writability exactly while the library has bytes to send. */
static void
tagsrc_mqtt_want_write(struct tagsrc_mqtt *mq)
{
	if (mq->wev == NULL)
		return;
	if (mosquitto_want_write(mq->mosq)) {
		if (!event_pending(mq->wev, EV_WRITE, NULL))
			event_add(mq->wev, NULL);
	} else
		event_del(mq->wev);
}

/*
 * After a call into the library (rc its result, err its errno): go down
 * if the connection broke, else update the write interest.
 */
static void
tagsrc_mqtt_check(struct tagsrc_mqtt *mq, int rc, int err)
{
	if (mq->state != TAGSRC_MQTT_CONNECTING &&
	    mq->state != TAGSRC_MQTT_CONNECTED)
		return;
	if (mq->lost)
		tagsrc_mqtt_down(mq, mq->lost_rc, mq->lost_errno);
	else if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(mq->mosq) == -1)
		tagsrc_mqtt_down(mq, rc != MOSQ_ERR_SUCCESS ? rc :
		    MOSQ_ERR_CONN_LOST, err);
	else
		tagsrc_mqtt_want_write(mq);
}

/*
 * The connection failed or broke: drop the socket's events (freed by the
 * next attempt), log the change and arm the retry timer.
 */
static void
tagsrc_mqtt_down(struct tagsrc_mqtt *mq, int rc, int err)
{
	enum tagsrc_mqtt_state	 was = mq->state;
	const char		*why;
	unsigned int		 ms;
	struct timeval		 tv;

	if (mq->rev != NULL)
		event_del(mq->rev);
	if (mq->wev != NULL)
		event_del(mq->wev);
	event_del(mq->misc);
	mq->state = TAGSRC_MQTT_WAITING;
	mq->lost = 0;
	why = tagsrc_mqtt_reason(mq, rc, err);
	ms = tagsrc_mqtt_delay(mq);
	if (was == TAGSRC_MQTT_CONNECTED)
		log_warnx("mqtt ingest: disconnected broker=%s reason=\"%s\" "
		    "retry_in=%u.%03us", mq->cfg.addr, why, ms / 1000,
		    ms % 1000);
	else if (++mq->failures < TAGSRC_MQTT_LOG_FAILS)
		log_warnx("mqtt ingest: cannot connect broker=%s reason=\"%s\" "
		    "retry_in=%u.%03us", mq->cfg.addr, why, ms / 1000,
		    ms % 1000);
	else if (mq->failures == TAGSRC_MQTT_LOG_FAILS)
		log_warnx("mqtt ingest: cannot connect broker=%s reason=\"%s\" "
		    "retry_in=%u.%03us (further failures are logged at debug "
		    "level)", mq->cfg.addr, why, ms / 1000, ms % 1000);
	else
		log_debug("mqtt ingest: cannot connect broker=%s reason=\"%s\" "
		    "retry_in=%u.%03us attempts=%u", mq->cfg.addr, why,
		    ms / 1000, ms % 1000, mq->failures);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(mq->retry, &tv);
}

/* Why the connection went (a static string, or strerror's). */
static const char *
tagsrc_mqtt_reason(struct tagsrc_mqtt *mq, int rc, int err)
{
	if (mq->connack != 0)
		return (mosquitto_connack_string(mq->connack));
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		return ("connection closed");
	case MOSQ_ERR_ERRNO:
		return (err != 0 ? strerror(err) : "connection closed");
	case MOSQ_ERR_EAI:
		return (gai_strerror(err));
	case MOSQ_ERR_KEEPALIVE:	/* not in 2.0's mosquitto_strerror */
		return ("no answer from the broker within the keepalive time");
	case MOSQ_ERR_MALFORMED_PACKET:
		return ("malformed packet from the broker");
	default:
		return (mosquitto_strerror(rc));
	}
}

/* Milliseconds before the next attempt; doubles the backoff for later. */
static unsigned int
tagsrc_mqtt_delay(struct tagsrc_mqtt *mq)
{
	unsigned int	base = mq->backoff * 1000;
	unsigned int	jitter;

	jitter = (unsigned int)nrand48(mq->seed) %
	    (base * TAGSRC_MQTT_JITTER / 100 + 1);
	mq->backoff = mq->backoff * 2 > TAGSRC_MQTT_BACKOFF_MAX ?
	    TAGSRC_MQTT_BACKOFF_MAX : mq->backoff * 2;
	return (base + jitter);
}

/* Is s a valid MQTT string: UTF-8 and at most 65535 bytes? */
static int
tagsrc_mqtt_utf8_ok(const char *s)
{
	size_t	len = strlen(s);

	return (len <= UINT16_MAX &&
	    mosquitto_validate_utf8(s, (int)len) == MOSQ_ERR_SUCCESS);
}

/* The placeholder p starts with (an index), or TAGSRC_MQTT_NPH. */
static size_t
tagsrc_mqtt_placeholder(const char *p)
{
	size_t	i;

	if (*p != '{')
		return (TAGSRC_MQTT_NPH);
	for (i = 0; i < TAGSRC_MQTT_NPH; i++)
		if (strncmp(p, tagsrc_mqtt_placeholders[i],
		    strlen(tagsrc_mqtt_placeholders[i])) == 0)
			return (i);
	return (TAGSRC_MQTT_NPH);
}

/*
 * The template with placeholders replaced by vals (borrowed), written to
 * out (NULL: only count); returns the length without the NUL.
 */
static size_t
tagsrc_mqtt_expand_into(const char *tmpl, const char *const *vals,
    char *out)
{
	const char	*p = tmpl;
	size_t		 n = 0, i, len;

	while (*p != '\0') {
		if ((i = tagsrc_mqtt_placeholder(p)) < TAGSRC_MQTT_NPH) {
			len = strlen(vals[i]);
			if (out != NULL)
				memcpy(out + n, vals[i], len);
			n += len;
			p += strlen(tagsrc_mqtt_placeholders[i]);
		} else {
			if (out != NULL)
				out[n] = *p;
			n++;
			p++;
		}
	}
	if (out != NULL)
		out[n] = '\0';
	return (n);
}

/* The write topic for a tag; caller frees. */
static char *
tagsrc_mqtt_expand(const char *tmpl, const char *prvd, const char *src,
    const char *name)
{
	const char	*vals[TAGSRC_MQTT_NPH] = { prvd, src, name };
	char		*out;

	out = xmalloc(tagsrc_mqtt_expand_into(tmpl, vals, NULL) + 1);
	tagsrc_mqtt_expand_into(tmpl, vals, out);
	return (out);
}

/*
 * Could topic have come from the write template (both borrowed)?  Each
 * placeholder matches any run of bytes; one backtracking point, so the
 * cost stays at most length times length.
 */
static int
tagsrc_mqtt_match(const char *tmpl, const char *topic)
{
	const char	*t = tmpl, *s = topic, *star_t = NULL, *star_s = NULL;
	size_t		 i;

	while (*s != '\0') {
		if ((i = tagsrc_mqtt_placeholder(t)) < TAGSRC_MQTT_NPH) {
			t += strlen(tagsrc_mqtt_placeholders[i]);
			star_t = t;
			star_s = s;
		} else if (*t != '\0' && *t == *s) {
			t++;
			s++;
		} else if (star_t != NULL) {
			t = star_t;
			s = ++star_s;
		} else
			return (0);
	}
	while ((i = tagsrc_mqtt_placeholder(t)) < TAGSRC_MQTT_NPH)
		t += strlen(tagsrc_mqtt_placeholders[i]);
	return (*t == '\0');
}

/*
 * Count a payload that was refused (topic and cause borrowed).  The first
 * is logged at once; later ones within the minute only update the count
 * and the latest cause, logged when the minute is up.
 */
static void
tagsrc_mqtt_malformed(struct tagsrc_mqtt *mq, const char *topic,
    const char *cause)
{
	uint64_t	now = util_now_ms(), left;
	struct timeval	tv;

	mq->malformed++;
	if (mq->unreported == 0 && (!mq->reported ||
	    now - mq->report_ms >= TAGSRC_MQTT_REPORT_MS)) {
		log_warnx("mqtt ingest: malformed payload topic=%s: %s", topic,
		    cause);
		mq->reported = 1;
		mq->report_ms = now;
		return;
	}
	mq->unreported++;
	free(mq->last_topic);
	free(mq->last_cause);
	mq->last_topic = xstrdup(topic);
	mq->last_cause = xstrdup(cause);
	if (!evtimer_pending(mq->report, NULL)) {
		left = now - mq->report_ms >= TAGSRC_MQTT_REPORT_MS ? 0 :
		    TAGSRC_MQTT_REPORT_MS - (now - mq->report_ms);
		tv.tv_sec = left / 1000;
		tv.tv_usec = (left % 1000) * 1000;
		evtimer_add(mq->report, &tv);
	}
}

/* Log the malformed payloads not logged yet, if any. */
static void
tagsrc_mqtt_report(struct tagsrc_mqtt *mq)
{
	if (mq->unreported == 0)
		return;
	log_warnx("mqtt ingest: %" PRIu64 " malformed payload%s since the "
	    "last report, latest topic=%s: %s", mq->unreported,
	    mq->unreported == 1 ? "" : "s", mq->last_topic, mq->last_cause);
	mq->unreported = 0;
	free(mq->last_topic);
	free(mq->last_cause);
	mq->last_topic = mq->last_cause = NULL;
	mq->reported = 1;
	mq->report_ms = util_now_ms();
}

/* The ingest's figures for /metrics (nothing while it is off). */
static void
tagsrc_mqtt_metrics(FILE *f)
{
	struct tagsrc_mqtt	*mq = tagsrc_mqtt;

	if (mq == NULL || mq->cfg.addr == NULL)
		return;
	fprintf(f, "# HELP uplinkd_mqtt_ingest_connected Whether the local "
	    "MQTT ingest client is connected to its broker.\n"
	    "# TYPE uplinkd_mqtt_ingest_connected gauge\n"
	    "uplinkd_mqtt_ingest_connected %d\n",
	    mq->state == TAGSRC_MQTT_CONNECTED);
	fprintf(f, "# HELP uplinkd_mqtt_ingest_messages_total Messages "
	    "received on the MQTT ingest subscription.\n"
	    "# TYPE uplinkd_mqtt_ingest_messages_total counter\n"
	    "uplinkd_mqtt_ingest_messages_total %" PRIu64 "\n", mq->messages);
	fprintf(f, "# HELP uplinkd_mqtt_ingest_malformed_total MQTT ingest "
	    "payloads refused (bad JSON, bad records, empty).\n"
	    "# TYPE uplinkd_mqtt_ingest_malformed_total counter\n"
	    "uplinkd_mqtt_ingest_malformed_total %" PRIu64 "\n",
	    mq->malformed);
	fprintf(f, "# HELP uplinkd_mqtt_ingest_writes_total Tag writes "
	    "published to the MQTT ingest write topic.\n"
	    "# TYPE uplinkd_mqtt_ingest_writes_total counter\n"
	    "uplinkd_mqtt_ingest_writes_total %" PRIu64 "\n", mq->writes);
}

/*
 * A tag write (rec borrowed for the call): publish it at QoS 1 to the
 * tag's write topic.  0, or -1 with *cause (caller frees).
 */
static int
tagsrc_mqtt_write_cb(const struct tag_rec *rec, void *arg, char **cause)
{
	struct tagsrc_mqtt	*mq = arg;
	struct json		*j;
	char			*topic, *payload;
	size_t			 len;
	int			 rc, err;

	if (mq->state != TAGSRC_MQTT_CONNECTED) {
		xasprintf(cause, "mqtt ingest: not connected to the broker");
		return (-1);
	}
	topic = tagsrc_mqtt_expand(mq->cfg.write_topic, rec->prvd, rec->src,
	    rec->name);
	if (!tagsrc_mqtt_utf8_ok(topic) ||
	    mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS) {
		xasprintf(cause, "mqtt ingest: the write topic for tag "
		    "%s/%s/%s is not a valid topic name (+ or # in a name, "
		    "or longer than 65535 bytes)",
		    rec->prvd, rec->src, rec->name);
		free(topic);
		return (-1);
	}

	j = tag_rec_json(rec);
	json_del(j, "dataUnit");
	payload = json_dump(j, &len);
	json_free(j);
	if (len > INT_MAX) {
		xasprintf(cause, "mqtt ingest: the value of tag %s/%s/%s is "
		    "too large to publish", rec->prvd, rec->src, rec->name);
		free(payload);
		free(topic);
		return (-1);
	}

	errno = 0;
	rc = mosquitto_publish(mq->mosq, NULL, topic, (int)len, payload,
	    TAGSRC_MQTT_QOS, false);
	err = errno;
	free(payload);
	if (rc != MOSQ_ERR_SUCCESS) {
		xasprintf(cause, "mqtt ingest: publishing to %s failed: %s",
		    topic, tagsrc_mqtt_reason(mq, rc, err));
		free(topic);
		if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST ||
		    rc == MOSQ_ERR_ERRNO)
			tagsrc_mqtt_down(mq, rc, err);
		return (-1);
	}
	mq->writes++;
	log_debug("mqtt ingest: write tag=%s/%s/%s topic=%s", rec->prvd,
	    rec->src, rec->name, topic);
	free(topic);
	tagsrc_mqtt_want_write(mq);
	return (0);
}

/* The retry timer: free the last socket's events and connect again. */
static void
tagsrc_mqtt_retry_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct tagsrc_mqtt	*mq = arg;
	struct timeval		 tv = { 1, 0 };
	int			 rc, err, s;

	tagsrc_mqtt_sockev_free(mq);
	mq->lost = 0;
	mq->connack = 0;
	mq->state = TAGSRC_MQTT_CONNECTING;

	/* host is numeric: getaddrinfo() inside does not block. */
	errno = 0;
	rc = mosquitto_connect_async(mq->mosq, mq->cfg.host, mq->cfg.port,
	    TAGSRC_MQTT_KEEPALIVE);
	err = errno;
	if (rc != MOSQ_ERR_SUCCESS) {
		tagsrc_mqtt_down(mq, rc, err);
		return;
	}
	if ((s = mosquitto_socket(mq->mosq)) == -1) {
		tagsrc_mqtt_down(mq, MOSQ_ERR_NO_CONN, 0);
		return;
	}
	mq->rev = event_new(mq->base, s, EV_READ | EV_PERSIST,
	    tagsrc_mqtt_read_cb, mq);
	mq->wev = event_new(mq->base, s, EV_WRITE, tagsrc_mqtt_write_ready_cb,
	    mq);
	if (mq->rev == NULL || mq->wev == NULL)
		fatalx("mqtt ingest: event_new failed");
	event_add(mq->rev, NULL);
	evtimer_add(mq->misc, &tv);
	log_debug("mqtt ingest: connecting broker=%s fd=%d", mq->cfg.addr, s);
	tagsrc_mqtt_want_write(mq);
}

/* The socket is readable: let the library read a batch of packets. */
static void
tagsrc_mqtt_read_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct tagsrc_mqtt	*mq = arg;
	int			 rc = MOSQ_ERR_SUCCESS, err = 0, i;

	for (i = 0; i < TAGSRC_MQTT_READ_BATCH; i++) {
		errno = 0;
		rc = mosquitto_loop_read(mq->mosq, 1);
		err = errno;
		/* A read that found nothing more leaves EAGAIN behind. */
		if (rc != MOSQ_ERR_SUCCESS || mq->lost || err == EAGAIN ||
		    err == EWOULDBLOCK || mq->state == TAGSRC_MQTT_WAITING)
			break;
	}
	tagsrc_mqtt_check(mq, rc, err);
}

/* The socket is writable: let the library write what it has queued. */
static void
tagsrc_mqtt_write_ready_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct tagsrc_mqtt	*mq = arg;
	int			 rc, err;

	errno = 0;
	rc = mosquitto_loop_write(mq->mosq, 1);
	err = errno;
	tagsrc_mqtt_check(mq, rc, err);
}

/* Every second: keepalive (PINGREQ, or the end of a dead connection). */
static void
tagsrc_mqtt_misc_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct tagsrc_mqtt	*mq = arg;
	int			 rc, err;

	errno = 0;
	rc = mosquitto_loop_misc(mq->mosq);
	err = errno;
	tagsrc_mqtt_check(mq, rc, err);
}

/* The minute after a malformed-payload line is up. */
static void
tagsrc_mqtt_report_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	tagsrc_mqtt_report(arg);
}

/* CONNACK (inside loop_read): subscribe, or note the refusal. */
static void
tagsrc_mqtt_connect_cb(struct mosquitto *mosq, void *arg, int rc)
{
	struct tagsrc_mqtt	*mq = arg;

	if (rc != 0) {
		/* libmosquitto closes the connection next. */
		mq->connack = rc;
		return;
	}
	mq->state = TAGSRC_MQTT_CONNECTED;
	if (mq->failures > 0)
		log_info("mqtt ingest: connected broker=%s client_id=%s "
		    "after %u failed attempt%s", mq->cfg.addr,
		    mq->cfg.client_id, mq->failures,
		    mq->failures == 1 ? "" : "s");
	else
		log_info("mqtt ingest: connected broker=%s client_id=%s",
		    mq->cfg.addr, mq->cfg.client_id);
	mq->failures = 0;
	mq->backoff = TAGSRC_MQTT_BACKOFF_MIN;
	/* Queued only (we are in a callback); check() adds EV_WRITE. */
	rc = mosquitto_subscribe(mosq, NULL, mq->cfg.topic, TAGSRC_MQTT_QOS);
	if (rc != MOSQ_ERR_SUCCESS)
		log_warnx("mqtt ingest: cannot subscribe topic=%s: %s",
		    mq->cfg.topic, mosquitto_strerror(rc));
}

/*
 * The connection is gone (inside a loop call; the socket is already
 * closed).  Only take note: the caller goes down after the call returns.
 */
static void
tagsrc_mqtt_disconnect_cb(__attribute__((unused)) struct mosquitto *mosq,
    void *arg, int rc)
{
	struct tagsrc_mqtt	*mq = arg;

	mq->lost_errno = errno;
	mq->lost = 1;
	mq->lost_rc = rc;
}

/* SUBACK: did the broker grant the subscription? */
static void
tagsrc_mqtt_subscribe_cb(__attribute__((unused)) struct mosquitto *mosq,
    void *arg, __attribute__((unused)) int mid, int n, const int *granted)
{
	struct tagsrc_mqtt	*mq = arg;

	if (n < 1 || granted[0] > 2)
		log_warnx("mqtt ingest: the broker refused the subscription "
		    "topic=%s", mq->cfg.topic);
	else
		log_debug("mqtt ingest: subscribed topic=%s qos=%d",
		    mq->cfg.topic, granted[0]);
}

/* A message (borrowed for the call): its payload goes to the tag hub. */
static void
tagsrc_mqtt_message_cb(__attribute__((unused)) struct mosquitto *mosq,
    void *arg, const struct mosquitto_message *msg)
{
	struct tagsrc_mqtt	*mq = arg;
	size_t			 n;
	int			 toobig;
	char			*cause;

	mq->messages++;
	if (*mq->cfg.write_topic != '\0' &&
	    tagsrc_mqtt_match(mq->cfg.write_topic, msg->topic)) {
		log_debug("mqtt ingest: skipped a write command topic=%s",
		    msg->topic);
		return;
	}
	if (msg->payloadlen <= 0 || msg->payload == NULL) {
		tagsrc_mqtt_malformed(mq, msg->topic, "empty payload");
		return;
	}
	if (tag_ingest(msg->payload, (size_t)msg->payloadlen,
	    mq->max_records, TAG_ORIGIN_MQTT, &n, &toobig, &cause) != 0) {
		tagsrc_mqtt_malformed(mq, msg->topic, cause);
		free(cause);
	}
}

/* libmosquitto's own log lines, at debug level only. */
static void
tagsrc_mqtt_log_cb(__attribute__((unused)) struct mosquitto *mosq,
    __attribute__((unused)) void *arg, __attribute__((unused)) int level,
    const char *line)
{
	if (log_debug_on())
		log_debug("mqtt ingest: libmosquitto: %s", line);
}

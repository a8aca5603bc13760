/* SPDX-License-Identifier: ISC */
/*
 * Generic MQTT clients (/mqtt): each stored configuration becomes a link
 * to its broker, an outbox, and the message groups that feed it.
 * Configurations live in the "mqtt" collection of the store, their groups
 * in "mqtt.<id>.messages", their certificates in datadir/certs/mqtt-<id>.
 * Changing a client reconnects its link; the outbox (and what waits in
 * it) stays.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "cloud.h"
#include "cloud_mqtt.h"
#include "group.h"
#include "json.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "multipart.h"
#include "outbox.h"
#include "remote.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define CLOUD_MQTT_COLL		"mqtt"
#define CLOUD_MQTT_INFLIGHT	32

struct cloud_mqtt_client {
	uint64_t		 id;
	char			*name;		/* "mqtt-<id>" */
	struct json		*doc;		/* as stored, with secrets */
	struct link		*link;
	struct outbox		*outbox;
	struct cloud_groups	*groups;
	struct remote		*remote;	/* remote API, or NULL */
};

struct cloud_mqtt {
	struct event_base		 *base;
	struct store			 *store;
	struct cloud_mqtt_client	**v;
	size_t				  n;
	size_t				  ob_messages;
	size_t				  ob_bytes;
};

static struct cloud_mqtt	*cm;

static const char *const cloud_mqtt_certs[] = {
	"rootCaCertFile", "caCertFile", "caPkFile", NULL
};

static const char *const cloud_mqtt_protocols[] = { "3.1", "3.1.1", NULL };
static const char *const cloud_mqtt_tls[] = { "1.3", "1.2", "1.1", "1.0",
	NULL };

static const struct json_field cloud_mqtt_cert_fields[] = {
	{ "rootCaCertFile", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ "caCertFile", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ "caPkFile", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field cloud_mqtt_will_fields[] = {
	{ "enable", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "topic", JF_STRING, 0, 0, 65536, NULL, "\"\"", NULL, NULL },
	{ "message", JF_STRING, 0, 0, 65536, NULL, "\"\"", NULL, NULL },
	{ "qos", JF_INT, 0, 0, 2, NULL, "0", NULL, NULL },
	{ "retain", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field cloud_mqtt_remote_fields[] = {
	{ "enable", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "requestSubTopic", JF_STRING, 0, 0, 65536, NULL, "\"\"", NULL,
	    NULL },
	{ "responsePubTopic", JF_STRING, 0, 0, 65536, NULL, "\"\"", NULL,
	    NULL },
	{ "ttl", JF_INT, 0, 0, 86400, NULL, NULL, NULL, NULL },
	{ "qos", JF_INT, 0, 0, 2, NULL, "1", NULL, NULL },
	{ "retain", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* MQTTConfiguration (research notes §4.1). */
const struct json_field cloud_mqtt_schema[] = {
	{ "id", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "status", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "enable", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "protocolVersion", JF_ENUM, 0, 0, 0, cloud_mqtt_protocols,
	    "\"3.1.1\"", NULL, NULL },
	{ "server", JF_STRING, JF_REQUIRED, 1, 255, NULL, NULL, NULL, NULL },
	{ "port", JF_INT, JF_REQUIRED, 1, 65535, NULL, NULL, NULL, NULL },
	{ "keepAliveSec", JF_INT, 0, 10, 65536, NULL, "60", NULL, NULL },
	{ "handshakeTimeout", JF_INT, 0, 10, 600, NULL, "10", NULL, NULL },
	{ "retryInterval", JF_INT, 0, 10, 3600, NULL, "60", NULL, NULL },
	{ "clearSession", JF_BOOL, 0, 0, 0, NULL, "true", NULL, NULL },
	{ "certificateOverTLS", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "clientID", JF_STRING, 0, 0, 65536, NULL, "\"\"", NULL, NULL },
	{ "userName", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ "password", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ "tlsVersion", JF_ENUM, 0, 0, 0, cloud_mqtt_tls, "\"1.2\"", NULL,
	    NULL },
	{ "insecureSkipVerify", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "certificate", JF_OBJECT, 0, 0, 0, NULL, NULL,
	    cloud_mqtt_cert_fields, NULL },
	{ "qos", JF_INT, 0, 0, 2, NULL, "1", NULL, NULL },
	{ "retain", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "willMessage", JF_OBJECT, 0, 0, 0, NULL, NULL,
	    cloud_mqtt_will_fields, NULL },
	{ "remoteAPI", JF_OBJECT, 0, 0, 0, NULL, NULL,
	    cloud_mqtt_remote_fields, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static void	cloud_mqtt_connected_cb(struct link *, void *);
static void	cloud_mqtt_disconnected_cb(struct link *, void *);
static void	cloud_mqtt_acked_cb(struct link *, int, void *);
static void	cloud_mqtt_writable_cb(struct link *, void *);
static void	cloud_mqtt_metrics(FILE *);
static void	cloud_mqtt_message_cb(struct link *, const char *,
		    const void *, size_t, void *);
static void	cloud_mqtt_answer_cb(const char *, size_t, void *);
static void	cloud_mqtt_remote(struct cloud_mqtt_client *);

static const struct link_ops cloud_mqtt_link_ops = {
	.connected = cloud_mqtt_connected_cb,
	.disconnected = cloud_mqtt_disconnected_cb,
	.acked = cloud_mqtt_acked_cb,
	.writable = cloud_mqtt_writable_cb,
	.message = cloud_mqtt_message_cb,
};

static void
cloud_mqtt_connected_cb(struct link *l, void *arg)
{
	struct cloud_mqtt_client	*c = arg;
	const struct json		*r = json_get(c->doc, "remoteAPI");

	if (c->remote != NULL)
		link_subscribe(l, json_get_string(r, "requestSubTopic"),
		    json_int(json_get(r, "qos")));
	outbox_link_connected(c->outbox);
}

/* A message on a subscribed topic: a remote REST call. */
static void
cloud_mqtt_message_cb(__attribute__((unused)) struct link *l,
    const char *topic, const void *payload, size_t len, void *arg)
{
	struct cloud_mqtt_client	*c = arg;
	const char			*sub;
	bool				 match = false;

	if (c->remote == NULL)
		return;
	sub = json_get_string(json_get(c->doc, "remoteAPI"),
	    "requestSubTopic");
	if (mosquitto_topic_matches_sub(sub, topic, &match) !=
	    MOSQ_ERR_SUCCESS || !match)
		return;
	remote_push(c->remote, payload, len);
}

/* The answer to a remote call goes to the response topic. */
static void
cloud_mqtt_answer_cb(const char *text, size_t len, void *arg)
{
	struct cloud_mqtt_client	*c = arg;
	const struct json		*r = json_get(c->doc, "remoteAPI");

	outbox_put(c->outbox, json_get_string(r, "responsePubTopic"), text,
	    len, json_int(json_get(r, "qos")), json_bool(json_get(r,
	    "retain")));
}

/*
 * Start or stop the remote API as the configuration says; requests
 * waiting (and a call running) carry over.
 */
static void
cloud_mqtt_remote(struct cloud_mqtt_client *c)
{
	struct remote	*old = c->remote;

	c->remote = NULL;
	if (json_bool(json_get(json_get(c->doc, "remoteAPI"), "enable")))
		c->remote = remote_new(cm->base, c->name,
		    cloud_mqtt_answer_cb, c);
	remote_handover(old, c->remote);
}

static void
cloud_mqtt_disconnected_cb(__attribute__((unused)) struct link *l,
    void *arg)
{
	struct cloud_mqtt_client	*c = arg;

	outbox_link_disconnected(c->outbox);
}

static void
cloud_mqtt_acked_cb(__attribute__((unused)) struct link *l, int mid,
    void *arg)
{
	struct cloud_mqtt_client	*c = arg;

	outbox_link_acked(c->outbox, mid);
}

static void
cloud_mqtt_writable_cb(__attribute__((unused)) struct link *l, void *arg)
{
	struct cloud_mqtt_client	*c = arg;

	outbox_link_writable(c->outbox);
}

/* A certificate file of the client, if one was uploaded; caller frees. */
static char *
cloud_mqtt_cert(const struct cloud_mqtt_client *c, const char *field)
{
	const char	*name;
	char		*path;

	name = json_get_string(json_get(c->doc, "certificate"), field);
	if (name == NULL || *name == '\0')
		return (NULL);
	path = cloud_cert_path(c->name, field);
	if (access(path, R_OK) != 0) {
		free(path);
		return (NULL);
	}
	return (path);
}

/* The link settings of a client's document (cfg cleared by the caller). */
static void
cloud_mqtt_link_cfg(const struct cloud_mqtt_client *c, struct link_cfg *cfg)
{
	const struct json	*d = c->doc, *w;
	const char		*s;

	memset(cfg, 0, sizeof *cfg);
	cfg->host = xstrdup(json_get_string(d, "server"));
	cfg->port = json_int(json_get(d, "port"));
	s = json_get_string(d, "clientID");
	if (s != NULL && *s != '\0')
		cfg->client_id = xstrdup(s);
	else
		xasprintf(&cfg->client_id, "uplinkd-%s", c->name);
	s = json_get_string(d, "userName");
	if (s != NULL && *s != '\0') {
		cfg->username = xstrdup(s);
		cfg->password = xstrdup(json_get_string(d, "password"));
	}
	cfg->keepalive = json_int(json_get(d, "keepAliveSec"));
	cfg->clean_session = json_bool(json_get(d, "clearSession"));
	cfg->protocol = strcmp(json_get_string(d, "protocolVersion"),
	    "3.1") == 0 ? 3 : 4;
	cfg->tls = json_bool(json_get(d, "certificateOverTLS"));
	cfg->tls_version = xstrdup(json_get_string(d, "tlsVersion"));
	cfg->ca_file = cloud_mqtt_cert(c, "rootCaCertFile");
	cfg->cert_file = cloud_mqtt_cert(c, "caCertFile");
	cfg->key_file = cloud_mqtt_cert(c, "caPkFile");
	cfg->insecure = json_bool(json_get(d, "insecureSkipVerify"));
	w = json_get(d, "willMessage");
	if (json_bool(json_get(w, "enable"))) {
		cfg->will = 1;
		cfg->will_topic = xstrdup(json_get_string(w, "topic"));
		cfg->will_payload = xstrdup(json_get_string(w, "message"));
		cfg->will_qos = json_int(json_get(w, "qos"));
		cfg->will_retain = json_bool(json_get(w, "retain"));
	}
	cfg->handshake_timeout = json_int(json_get(d, "handshakeTimeout"));
	cfg->retry_interval = json_int(json_get(d, "retryInterval"));
	cfg->max_inflight = CLOUD_MQTT_INFLIGHT;
}

/* Where the client's groups deliver. */
static void
cloud_mqtt_target(const struct cloud_mqtt_client *c, struct group_target *t)
{
	t->outbox = c->outbox;
	t->qos = json_int(json_get(c->doc, "qos"));
	t->retain = json_bool(json_get(c->doc, "retain"));
}

/* Start a client from its document (takes ownership of doc). */
static struct cloud_mqtt_client *
cloud_mqtt_start(uint64_t id, struct json *doc)
{
	struct cloud_mqtt_client	*c;
	struct link_cfg			 cfg;
	struct group_target		 t;
	struct json			*saf;
	char				*coll, *cause;

	c = xcalloc(1, sizeof *c);
	c->id = id;
	c->doc = doc;
	xasprintf(&c->name, "mqtt-%" PRIu64, id);
	c->outbox = outbox_new(c->name, cm->ob_messages, cm->ob_bytes);
	saf = cloud_saf_get(cm->store, c->name);
	if (cloud_saf_apply(cm->base, c->outbox, c->name, saf, &cause) != 0) {
		log_warnx("mqtt: client %" PRIu64 ": store and forward: %s",
		    id, cause);
		free(cause);
	}
	json_free(saf);
	cloud_mqtt_link_cfg(c, &cfg);
	c->link = link_new(cm->base, c->name, &cfg, &cloud_mqtt_link_ops, c);
	link_cfg_clear(&cfg);
	outbox_attach(c->outbox, c->link);
	cloud_mqtt_remote(c);
	cloud_mqtt_target(c, &t);
	xasprintf(&coll, "mqtt.%" PRIu64 ".messages", id);
	c->groups = cloud_groups_new(cm->base, cm->store, coll, c->name, &t);
	free(coll);
	if (json_bool(json_get(doc, "enable")))
		link_enable(c->link, 1);
	cm->v = xreallocarray(cm->v, cm->n + 1, sizeof *cm->v);
	cm->v[cm->n++] = c;
	return (c);
}

/*
 * Stop a client and free its runtime (what is stored stays).  What the
 * groups hold goes to the outbox, and with store and forward on, to disk.
 */
static void
cloud_mqtt_stop(struct cloud_mqtt_client *c)
{
	cloud_groups_flush(c->groups);
	cloud_groups_free(c->groups);
	remote_free(c->remote);
	link_free(c->link);
	outbox_free(c->outbox);
	json_free(c->doc);
	free(c->name);
	free(c);
}

/*
 * Load every stored client and start those enabled.  ob_messages and
 * ob_bytes bound each client's outbox.
 */
int
cloud_mqtt_init(struct event_base *base, struct store *store,
    size_t ob_messages, size_t ob_bytes, __attribute__((unused))
    char **cause)
{
	struct json	*list;
	size_t		 i;
	static int	 registered;

	cm = xcalloc(1, sizeof *cm);
	cm->base = base;
	cm->store = store;
	cm->ob_messages = ob_messages;
	cm->ob_bytes = ob_bytes;
	list = store_list(store, CLOUD_MQTT_COLL);
	for (i = 0; i < json_array_size(list); i++)
		cloud_mqtt_start(json_uint(json_get(json_array_get(list, i),
		    "id")), json_copy(json_array_get(list, i)));
	json_free(list);
	if (!registered) {
		metrics_register(cloud_mqtt_metrics);
		registered = 1;
	}
	return (0);
}

/* Stop every client. */
void
cloud_mqtt_free(void)
{
	size_t	i;

	if (cm == NULL)
		return;
	for (i = 0; i < cm->n; i++)
		cloud_mqtt_stop(cm->v[i]);
	free(cm->v);
	free(cm);
	cm = NULL;
}

/* A client by id, or NULL. */
static struct cloud_mqtt_client *
cloud_mqtt_find(uint64_t id)
{
	size_t	i;

	for (i = 0; i < cm->n; i++)
		if (cm->v[i]->id == id)
			return (cm->v[i]);
	return (NULL);
}

/* A client as clients of the API see it; caller frees. */
static struct json *
cloud_mqtt_view(const struct cloud_mqtt_client *c)
{
	struct json	*v;
	const char	*pw;

	v = cloud_public(c->doc);
	json_set(v, "status", json_new_string(link_status_name(
	    link_get_status(c->link))));
	pw = json_get_string(c->doc, "password");
	if (pw != NULL && *pw != '\0')
		json_set(v, "password", json_new_string(CLOUD_MASK));
	return (v);
}

/* Every client, in id order; caller frees. */
struct json *
cloud_mqtt_list(void)
{
	struct json	*a;
	size_t		 i;

	a = json_new_array();
	for (i = 0; i < cm->n; i++)
		json_array_push(a, cloud_mqtt_view(cm->v[i]));
	return (a);
}

/* One client; NULL if unknown.  Caller frees. */
struct json *
cloud_mqtt_get(uint64_t id)
{
	struct cloud_mqtt_client	*c;

	if ((c = cloud_mqtt_find(id)) == NULL)
		return (NULL);
	return (cloud_mqtt_view(c));
}

/* The message groups of a client, or NULL. */
struct cloud_groups *
cloud_mqtt_groups(uint64_t id)
{
	struct cloud_mqtt_client	*c;

	if ((c = cloud_mqtt_find(id)) == NULL)
		return (NULL);
	return (c->groups);
}

/*
 * Rules the field table cannot say.  owner names the certificate
 * directory (NULL for a new client); files uploaded with the request
 * count too.
 */
static int
cloud_mqtt_check(const struct json *d, const char *owner,
    const struct multipart *mp, char **cause)
{
	const struct json	*w, *r, *cert;
	const char		*name, *const *f;
	char			*path;
	int			 have;

	if (strcmp(json_get_string(d, "protocolVersion"), "3.1") == 0 &&
	    strlen(json_get_string(d, "clientID")) > 23) {
		xasprintf(cause, "clientID: must be at most 23 characters "
		    "with MQTT 3.1");
		return (-1);
	}
	w = json_get(d, "willMessage");
	if (json_bool(json_get(w, "enable")) &&
	    *json_get_string(w, "topic") == '\0') {
		xasprintf(cause, "willMessage.topic: is required when "
		    "willMessage.enable is true");
		return (-1);
	}
	r = json_get(d, "remoteAPI");
	if (json_bool(json_get(r, "enable")) &&
	    (*json_get_string(r, "requestSubTopic") == '\0' ||
	    *json_get_string(r, "responsePubTopic") == '\0')) {
		xasprintf(cause, "remoteAPI: requestSubTopic and "
		    "responsePubTopic are required when remoteAPI.enable is "
		    "true");
		return (-1);
	}
	if (*json_get_string(d, "userName") == '\0' &&
	    *json_get_string(d, "password") != '\0') {
		xasprintf(cause, "password: needs a userName");
		return (-1);
	}
	cert = json_get(d, "certificate");
	for (f = cloud_mqtt_certs; *f != NULL; f++) {
		name = json_get_string(cert, *f);
		if (name == NULL || *name == '\0')
			continue;
		have = (mp != NULL && multipart_get(mp, *f) != NULL);
		if (!have && owner != NULL) {
			path = cloud_cert_path(owner, *f);
			have = (access(path, R_OK) == 0);
			free(path);
		}
		if (!have) {
			xasprintf(cause, "certificate.%s: no file was uploaded "
			    "for \"%s\" (send it as the multipart part %s)", *f,
			    name, *f);
			return (-1);
		}
	}
	if ((*json_get_string(cert, "caCertFile") == '\0') !=
	    (*json_get_string(cert, "caPkFile") == '\0')) {
		xasprintf(cause, "certificate: caCertFile and caPkFile go "
		    "together (a client certificate needs its key)");
		return (-1);
	}
	return (0);
}

/*
 * The document a request makes: JSON body or multipart form, merged onto
 * base (NULL for a new client), a masked password keeping the stored one,
 * validated.  Caller frees; NULL with *cause.
 */
static struct json *
cloud_mqtt_doc(const struct json *base, struct json *body,
    const struct multipart *mp, const char *owner, char **cause)
{
	struct json	*in, *doc;
	const char	*pw;

	if (mp != NULL) {
		if ((in = cloud_form_json(mp, cloud_mqtt_certs, cause)) == NULL)
			return (NULL);
		json_coerce_strings(in, cloud_mqtt_schema);
	} else if (json_type(body) == JSON_OBJECT)
		in = json_copy(body);
	else {
		xasprintf(cause, "body: must be an MQTT client object");
		return (NULL);
	}
	pw = json_get_string(in, "password");
	if (pw != NULL && strcmp(pw, CLOUD_MASK) == 0)
		json_del(in, "password");
	doc = base != NULL ? json_copy(base) : json_new_object();
	json_del(doc, "id");
	json_merge(doc, in);
	json_free(in);
	if (json_validate(doc, cloud_mqtt_schema, cause) != 0 ||
	    cloud_mqtt_check(doc, owner, mp, cause) != 0) {
		json_free(doc);
		return (NULL);
	}
	return (doc);
}

/* Create a client; 0, or -1 with *cause (400). */
int
cloud_mqtt_add(struct json *body, const struct multipart *mp,
    struct json **out, char **cause)
{
	struct json	*doc;
	uint64_t	 id;
	char		*owner;

	if ((doc = cloud_mqtt_doc(NULL, body, mp, NULL, cause)) == NULL)
		return (-1);
	if ((id = store_next_id(cm->store, CLOUD_MQTT_COLL, cause)) == 0) {
		json_free(doc);
		return (-1);
	}
	xasprintf(&owner, "mqtt-%" PRIu64, id);
	if (mp != NULL && cloud_cert_save(owner, mp, cloud_mqtt_certs, doc,
	    cause) != 0) {
		cloud_cert_remove(owner, cloud_mqtt_certs);
		json_free(doc);
		free(owner);
		return (-1);
	}
	json_set(doc, "id", json_new_uint(id));
	if (store_put(cm->store, CLOUD_MQTT_COLL, id, doc, cause) != 0) {
		cloud_cert_remove(owner, cloud_mqtt_certs);
		json_free(doc);
		free(owner);
		return (-1);
	}
	free(owner);
	cloud_mqtt_start(id, doc);
	log_info("mqtt: client %" PRIu64 " created", id);
	*out = cloud_mqtt_list();
	return (0);
}

/*
 * Change a client: its link reconnects with the new settings, what waits
 * in its outbox stays.  -1 with *status (404, 400) and *cause.
 */
int
cloud_mqtt_update(uint64_t id, struct json *body, const struct multipart *mp,
    struct json **out, int *status, char **cause)
{
	struct cloud_mqtt_client	*c;
	struct json			*doc;
	struct link_cfg			 cfg;
	struct group_target		 t;
	int				 qos, retain, remote_changed;

	*status = 400;
	if ((c = cloud_mqtt_find(id)) == NULL) {
		*status = 404;
		xasprintf(cause, "MQTT client %" PRIu64 " not found", id);
		return (-1);
	}
	if ((doc = cloud_mqtt_doc(c->doc, body, mp, c->name, cause)) == NULL)
		return (-1);
	if (mp != NULL && cloud_cert_save(c->name, mp, cloud_mqtt_certs, doc,
	    cause) != 0) {
		json_free(doc);
		return (-1);
	}
	json_set(doc, "id", json_new_uint(id));
	if (store_put(cm->store, CLOUD_MQTT_COLL, id, doc, cause) != 0) {
		json_free(doc);
		return (-1);
	}
	qos = json_int(json_get(c->doc, "qos"));
	retain = json_bool(json_get(c->doc, "retain"));
	remote_changed = !json_equal(json_get(c->doc, "remoteAPI"),
	    json_get(doc, "remoteAPI"));
	json_free(c->doc);
	c->doc = doc;
	/* A call that changes this client keeps its answer channel. */
	if (remote_changed)
		cloud_mqtt_remote(c);
	cloud_mqtt_link_cfg(c, &cfg);
	link_reconfigure(c->link, &cfg);
	link_cfg_clear(&cfg);
	link_enable(c->link, json_bool(json_get(doc, "enable")));
	if (qos != json_int(json_get(doc, "qos")) ||
	    retain != json_bool(json_get(doc, "retain"))) {
		cloud_mqtt_target(c, &t);
		cloud_groups_retarget(c->groups, &t);
	}
	log_info("mqtt: client %" PRIu64 " changed", id);
	*out = cloud_mqtt_view(c);
	return (0);
}

/* Delete a client, its groups and certificates; -1 if unknown. */
int
cloud_mqtt_delete(uint64_t id, char **cause)
{
	struct cloud_mqtt_client	*c;
	size_t				 i;
	char				*owner;

	if ((c = cloud_mqtt_find(id)) == NULL) {
		xasprintf(cause, "MQTT client %" PRIu64 " not found", id);
		return (-1);
	}
	if (store_del(cm->store, CLOUD_MQTT_COLL, id, cause) != 0)
		return (-1);
	cloud_groups_purge(c->groups);
	cloud_cert_remove(c->name, cloud_mqtt_certs);
	for (i = 0; i < cm->n; i++)
		if (cm->v[i] == c)
			break;
	memmove(&cm->v[i], &cm->v[i + 1], (cm->n - i - 1) * sizeof *cm->v);
	cm->n--;
	owner = xstrdup(c->name);
	cloud_mqtt_stop(c);
	cloud_saf_remove(cm->store, owner);
	free(owner);
	log_info("mqtt: client %" PRIu64 " deleted", id);
	return (0);
}

/* Forget a client's certificates (TLS off unless the system CAs do). */
int
cloud_mqtt_clear_certs(uint64_t id, struct json **out, int *status,
    char **cause)
{
	struct cloud_mqtt_client	*c;
	struct json			*doc, *cert;
	const char *const		*f;
	struct link_cfg			 cfg;

	*status = 400;
	if ((c = cloud_mqtt_find(id)) == NULL) {
		*status = 404;
		xasprintf(cause, "MQTT client %" PRIu64 " not found", id);
		return (-1);
	}
	doc = json_copy(c->doc);
	cert = json_new_object();
	for (f = cloud_mqtt_certs; *f != NULL; f++)
		json_set(cert, *f, json_new_string(""));
	json_set(doc, "certificate", cert);
	if (store_put(cm->store, CLOUD_MQTT_COLL, id, doc, cause) != 0) {
		json_free(doc);
		return (-1);
	}
	cloud_cert_remove(c->name, cloud_mqtt_certs);
	json_free(c->doc);
	c->doc = doc;
	cloud_mqtt_link_cfg(c, &cfg);
	link_reconfigure(c->link, &cfg);
	link_cfg_clear(&cfg);
	*out = cloud_mqtt_view(c);
	return (0);
}

/* GET .../store-and-forward: the settings and the backlog. */
struct json *
cloud_mqtt_saf_get(uint64_t id)
{
	struct cloud_mqtt_client	*c;
	struct json			*doc, *v;

	if ((c = cloud_mqtt_find(id)) == NULL)
		return (NULL);
	doc = cloud_saf_get(cm->store, c->name);
	v = cloud_saf_view(doc, c->outbox);
	json_free(doc);
	return (v);
}

/* PUT .../store-and-forward; -1 with *status (404, 400) and *cause. */
int
cloud_mqtt_saf_put(uint64_t id, struct json *body, struct json **out,
    int *status, char **cause)
{
	struct cloud_mqtt_client	*c;
	struct json			*doc;

	*status = 400;
	if ((c = cloud_mqtt_find(id)) == NULL) {
		*status = 404;
		xasprintf(cause, "MQTT client %" PRIu64 " not found", id);
		return (-1);
	}
	if (cloud_saf_put(cm->store, c->name, body, &doc, cause) != 0)
		return (-1);
	if (cloud_saf_apply(cm->base, c->outbox, c->name, doc, cause) != 0) {
		*status = 500;
		json_free(doc);
		return (-1);
	}
	*out = cloud_saf_view(doc, c->outbox);
	json_free(doc);
	return (0);
}

/* Link state, outboxes and groups for /metrics. */
static void
cloud_mqtt_metrics(FILE *f)
{
	size_t	i;

	if (cm == NULL)
		return;
	fprintf(f, "# HELP uplinkd_link_connected 1 while a link is "
	    "connected.\n# TYPE uplinkd_link_connected gauge\n");
	for (i = 0; i < cm->n; i++)
		fprintf(f, "uplinkd_link_connected{link=\"%s\"} %d\n",
		    cm->v[i]->name, link_get_status(cm->v[i]->link) ==
		    LINK_CONNECTED);
	fprintf(f, "# HELP uplinkd_outbox_messages Messages waiting in a "
	    "link's outbox.\n# TYPE uplinkd_outbox_messages gauge\n"
	    "# TYPE uplinkd_outbox_bytes gauge\n"
	    "# TYPE uplinkd_outbox_inflight gauge\n"
	    "# TYPE uplinkd_outbox_sent_total counter\n"
	    "# TYPE uplinkd_outbox_dropped_total counter\n");
	for (i = 0; i < cm->n; i++)
		outbox_metrics(cm->v[i]->outbox, f);
	fprintf(f, "# TYPE uplinkd_group_records_total counter\n"
	    "# TYPE uplinkd_group_messages_total counter\n"
	    "# TYPE uplinkd_group_filter_errors_total counter\n"
	    "# TYPE uplinkd_group_records_dropped_total counter\n");
	for (i = 0; i < cm->n; i++)
		cloud_groups_metrics(cm->v[i]->groups, f);
}

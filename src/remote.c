/* SPDX-License-Identifier: ISC */
/*
 * Remote REST calls: the cloud sends a request document over its channel
 * (an MQTT request topic today; direct methods, jobs and Sparkplug
 * commands later) and gets the answer document back.
 *
 *	{"path": "/device/general?x=1", "method": "PUT",
 *	 "headers": [{"request-id": "7"},
 *	             {"request-expired-time": "2026-11-25 10:00:00"}],
 *	 "requestBody": {...} or "{...}"}
 *
 *	{"request-id": "7", "state": 200, "payload": {"data": ...}}
 *
 * A request runs through api_dispatch(), the same handlers, validation
 * and errors as HTTP, with the remote origin (the channel authenticated
 * the cloud; routes marked not remote answer 403).  Requests queue per
 * connection and run from the loop in order of arrival, never inside the
 * MQTT library's callback, so a call may even change or delete the
 * connection it came on.  Every call is logged as one line.
 */

#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "remote.h"
#include "util.h"
#include "xmalloc.h"

#define REMOTE_QUEUE_MAX	4096
#define REMOTE_BATCH		64	/* calls per loop turn */
#define REMOTE_MAX_QUERY	64

struct remote_msg {
	TAILQ_ENTRY(remote_msg)	 entry;
	char			*data;
	size_t			 len;
};
TAILQ_HEAD(remote_queue, remote_msg);

struct remote {
	char			*client;
	remote_answer_cb	 answer;
	void			*arg;
	struct remote_queue	 queue;
	size_t			 n;
	struct event		*run;
	int			 busy;
	int			 dead;
	int			 handover;	/* dead, but still answers */
};

struct remote_stats {
	uint64_t	calls;
	uint64_t	malformed;
	uint64_t	expired;
	uint64_t	dropped;
	int		registered;
	char		**allow;
	size_t		 nallow;
	uint64_t	 last_drop_log;
};

static struct remote_stats	remote_stats;

static void	remote_run_cb(evutil_socket_t, short, void *);
static void	remote_metrics(FILE *);

/*
 * Paths remote calls may use: prefixes separated by commas ("" = all).
 */
void
remote_set_allow(const char *list)
{
	char	*copy, *p, *tok;
	size_t	 i;

	for (i = 0; i < remote_stats.nallow; i++)
		free(remote_stats.allow[i]);
	free(remote_stats.allow);
	remote_stats.allow = NULL;
	remote_stats.nallow = 0;
	if (list == NULL)
		return;
	copy = xstrdup(list);
	for (p = copy; (tok = strsep(&p, ",")) != NULL; ) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		remote_stats.allow = xreallocarray(remote_stats.allow,
		    remote_stats.nallow + 1, sizeof *remote_stats.allow);
		remote_stats.allow[remote_stats.nallow++] = xstrdup(tok);
	}
	free(copy);
}

/* May remote calls use path? */
static int
remote_allowed(const char *path)
{
	size_t	i, len;

	if (remote_stats.nallow == 0)
		return (1);
	for (i = 0; i < remote_stats.nallow; i++) {
		len = strlen(remote_stats.allow[i]);
		if (strncmp(path, remote_stats.allow[i], len) == 0 &&
		    (path[len] == '\0' || path[len] == '/' ||
		    path[len] == '?' || remote_stats.allow[i][len - 1] == '/'))
			return (1);
	}
	return (0);
}

/* The request queue of one connection; answers go to answer(arg). */
struct remote *
remote_new(struct event_base *base, const char *client, remote_answer_cb answer,
    void *arg)
{
	struct remote	*r;

	r = xcalloc(1, sizeof *r);
	r->client = xstrdup(client);
	r->answer = answer;
	r->arg = arg;
	TAILQ_INIT(&r->queue);
	r->run = event_new(base, -1, 0, remote_run_cb, r);
	if (!remote_stats.registered) {
		metrics_register(remote_metrics);
		remote_stats.registered = 1;
	}
	return (r);
}

/* Free a queue (safe from inside one of its own calls). */
void
remote_free(struct remote *r)
{
	struct remote_msg	*m;

	if (r == NULL)
		return;
	if (r->busy) {
		r->dead = 1;
		return;
	}
	while ((m = TAILQ_FIRST(&r->queue)) != NULL) {
		TAILQ_REMOVE(&r->queue, m, entry);
		free(m->data);
		free(m);
	}
	event_free(r->run);
	free(r->client);
	free(r);
}

/*
 * The connection's remote settings changed: new takes over old's waiting
 * requests; a call of old's that is running still gets its answer out
 * (the connection is the same).  old is freed.
 */
void
remote_handover(struct remote *old, struct remote *new)
{
	struct remote_msg	*m;

	if (old == NULL)
		return;
	while ((m = TAILQ_LAST(&old->queue, remote_queue)) != NULL) {
		TAILQ_REMOVE(&old->queue, m, entry);
		old->n--;
		if (new != NULL) {
			TAILQ_INSERT_HEAD(&new->queue, m, entry);
			new->n++;
		} else {
			free(m->data);
			free(m);
		}
	}
	if (new != NULL && new->n != 0)
		event_active(new->run, EV_TIMEOUT, 0);
	if (old->busy)
		old->handover = 1;
	remote_free(old);
}

/* Queue a request (copied); it runs from the loop. */
void
remote_push(struct remote *r, const void *data, size_t len)
{
	struct remote_msg	*m;
	uint64_t		 now;

	if (r->n >= REMOTE_QUEUE_MAX) {
		remote_stats.dropped++;
		now = util_now_ms();
		if (now - remote_stats.last_drop_log >= 60000) {
			remote_stats.last_drop_log = now;
			log_warnx("remote: client=%s more than %d requests "
			    "waiting; dropped=%" PRIu64, r->client,
			    REMOTE_QUEUE_MAX, remote_stats.dropped);
		}
		return;
	}
	m = xcalloc(1, sizeof *m);
	/* NUL-terminated: a malformed message is searched as text. */
	m->data = xmalloc(len + 1);
	if (len > 0)		/* an empty message comes as NULL */
		memcpy(m->data, data, len);
	m->data[len] = '\0';
	m->len = len;
	TAILQ_INSERT_TAIL(&r->queue, m, entry);
	r->n++;
	if (r->n == 1)
		event_active(r->run, EV_TIMEOUT, 0);
}

/* A header's value from the headers array (or object); borrowed. */
static const struct json *
remote_header(const struct json *headers, const char *name)
{
	const struct json	*h, *v;
	size_t			 i;

	if (json_type(headers) == JSON_OBJECT)
		return (json_get(headers, name));
	for (i = 0; i < json_array_size(headers); i++) {
		h = json_array_get(headers, i);
		if ((v = json_get(h, name)) != NULL)
			return (v);
	}
	return (NULL);
}

/* An answer document; payload is taken. */
static struct json *
remote_answer_doc(const struct json *id, int state, struct json *payload)
{
	struct json	*a;

	a = json_new_object();
	json_set(a, "request-id", id != NULL ? json_copy(id) :
	    json_new_null());
	json_set(a, "state", json_new_int(state));
	json_set(a, "payload", payload != NULL ? payload : json_new_null());
	return (a);
}

/* {"error": msg} as a payload. */
static struct json *
remote_error(const char *fmt, ...)
{
	struct json	*e;
	char		*msg;
	va_list		 ap;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	e = json_new_object();
	json_set(e, "error", json_new_string(msg));
	free(msg);
	return (e);
}

/*
 * Run one request document for client (for logs).  The answer document,
 * caller frees; *state is its state.
 */
struct json *
remote_call(const struct json *request, const char *client, int *state)
{
	const struct json	*id, *exp, *headers, *body;
	struct api_req		 req;
	struct api_resp		 resp;
	struct api_kv		*query = NULL;
	const char		*path, *method, *q, *es;
	char			*pathonly = NULL, *cause = NULL, *idtext = NULL;
	struct json		*payload = NULL;
	int64_t			 expires;
	int			 m;

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	headers = json_get(request, "headers");
	id = remote_header(headers, "request-id");
	if (id != NULL && json_type(id) != JSON_STRING &&
	    json_type(id) != JSON_NUMBER)
		id = NULL;
	path = json_get_string(request, "path");
	method = json_get_string(request, "method");

	if (id == NULL) {
		*state = 400;
		payload = remote_error("headers: a request-id (string or "
		    "number) is required");
		goto done;
	}
	exp = remote_header(headers, "request-expired-time");
	if (exp != NULL) {
		es = json_string(exp);
		if (es == NULL || util_parse_iso8601(es, &expires) != 0) {
			*state = 408;
			remote_stats.expired++;
			payload = remote_error("request-expired-time: "
			    "\"%s\" is not a time (ISO-8601 or YYYY-MM-DD "
			    "HH:MM:SS, UTC); the request was not run",
			    es != NULL ? es : "");
			goto done;
		}
		if (expires <= util_wall_us()) {
			*state = 408;
			remote_stats.expired++;
			payload = remote_error("request-expired-time: %s has "
			    "passed; the request was not run", es);
			goto done;
		}
	}
	if (path == NULL || *path != '/') {
		*state = 400;
		payload = remote_error("path: must be a string starting with "
		    "/ (relative to /api/v1)");
		goto done;
	}
	if (method == NULL || (m = api_method_parse(method)) == 0) {
		*state = 400;
		payload = remote_error("method: must be one of GET, POST, PUT, "
		    "DELETE, PATCH");
		goto done;
	}
	if (!remote_allowed(path)) {
		*state = 403;
		payload = remote_error("path: %s may not be called remotely "
		    "(remote_api_allow)", path);
		goto done;
	}

	if ((q = strchr(path, '?')) != NULL) {
		pathonly = xstrndup(path, q - path);
		if (api_query_parse(q + 1, &query, &req.nquery,
		    REMOTE_MAX_QUERY, &cause) != 0) {
			*state = 400;
			payload = remote_error("%s", cause);
			free(cause);
			goto done;
		}
		req.query = query;
	}
	req.path = pathonly != NULL ? pathonly : path;
	req.method = m;
	req.origin = API_ORIGIN_REMOTE;
	req.peer = client;
	body = json_get(request, "requestBody");
	if (json_type(body) == JSON_STRING) {
		if (json_strlen(body) != 0 && (req.json = json_parse(
		    json_string(body), json_strlen(body), &cause)) == NULL) {
			*state = 400;
			payload = remote_error("requestBody: %s", cause);
			free(cause);
			goto done;
		}
	} else if (body != NULL && json_type(body) != JSON_NULL)
		req.json = json_copy(body);
	api_dispatch(&req, &resp);
	*state = resp.status;
	if (resp.body != NULL) {
		payload = resp.body;
		resp.body = NULL;
	} else if (resp.raw != NULL)
		payload = json_new_stringn(resp.raw, resp.rawlen);
	else if (resp.stream_closed != NULL) {
		/* Streams have no place on this channel. */
		resp.stream_closed(NULL, resp.stream_arg);
		*state = 400;
		payload = remote_error("streams cannot be opened remotely");
	}

done:
	remote_stats.calls++;
	if (id != NULL)
		idtext = json_dump(id, NULL);
	log_info("remote: client=%s request-id=%s method=%s path=%s state=%d",
	    client, idtext != NULL ? idtext : "-", method != NULL ? method :
	    "-", path != NULL ? path : "-", *state);
	free(idtext);
	api_req_clear(&req);
	api_resp_clear(&resp);
	api_query_free(query, req.nquery);
	free(pathonly);
	return (remote_answer_doc(id, *state, payload));
}

/*
 * A request message: parse it and run it.  The answer document (caller
 * frees), or NULL for a message nobody can be answered for.
 */
static struct json *
remote_message(struct remote *r, const char *data, size_t len)
{
	struct json	*req, *ans;
	char		*cause = NULL, *s;
	const char	*p;
	int		 state, quoted;

	req = json_parse(data, len, &cause);
	if (req != NULL && json_type(req) != JSON_OBJECT)
		xasprintf(&cause, "not a JSON object");
	if (req == NULL || json_type(req) != JSON_OBJECT) {
		remote_stats.malformed++;
		log_warnx("remote: client=%s malformed request: %s", r->client,
		    cause);
		/* Answer 400 if a request-id can be read all the same. */
		ans = NULL;
		if (req == NULL && (p = strstr(data, "\"request-id\"")) !=
		    NULL && (p = strchr(p + 12, ':')) != NULL) {
			p++;
			while (*p == ' ' || *p == '"')
				p++;
			quoted = (p[-1] == '"');
			s = xstrndup(p, strcspn(p, "\",}] \t\r\n"));
			if (*s != '\0') {
				ans = remote_answer_doc(NULL, 400,
				    remote_error("malformed request: %s",
				    cause));
				/* The id as it came: a number stays one. */
				json_set(ans, "request-id", !quoted &&
				    strspn(s, "0123456789") == strlen(s) ?
				    json_new_number(s) : json_new_string(s));
			}
			free(s);
		}
		free(cause);
		json_free(req);
		return (ans);
	}
	ans = remote_call(req, r->client, &state);
	json_free(req);
	return (ans);
}

/* Run queued requests, a bounded number per loop turn, in order. */
static void
remote_run_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct remote		*r = arg;
	struct remote_msg	*m;
	struct json		*ans;
	char			*text;
	size_t			 len;
	int			 n = 0;

	r->busy = 1;
	while ((m = TAILQ_FIRST(&r->queue)) != NULL && n++ < REMOTE_BATCH) {
		TAILQ_REMOVE(&r->queue, m, entry);
		r->n--;
		ans = remote_message(r, m->data, m->len);
		free(m->data);
		free(m);
		if (ans != NULL && (!r->dead || r->handover)) {
			text = json_dump(ans, &len);
			r->answer(text, len, r->arg);
			free(text);
		}
		json_free(ans);
		if (r->dead)
			break;
	}
	r->busy = 0;
	if (r->dead) {
		remote_free(r);
		return;
	}
	if (r->n != 0) {
		struct timeval tv = { 0, 0 };
		evtimer_add(r->run, &tv);
	}
}

/* Remote-call counters for /metrics. */
static void
remote_metrics(FILE *f)
{
	fprintf(f, "# HELP uplinkd_remote_calls_total Remote REST calls "
	    "answered.\n# TYPE uplinkd_remote_calls_total counter\n"
	    "uplinkd_remote_calls_total %" PRIu64 "\n"
	    "# HELP uplinkd_remote_malformed_total Remote requests that were "
	    "not JSON objects.\n"
	    "# TYPE uplinkd_remote_malformed_total counter\n"
	    "uplinkd_remote_malformed_total %" PRIu64 "\n"
	    "# HELP uplinkd_remote_expired_total Remote requests not run "
	    "because they expired.\n"
	    "# TYPE uplinkd_remote_expired_total counter\n"
	    "uplinkd_remote_expired_total %" PRIu64 "\n"
	    "# HELP uplinkd_remote_dropped_total Remote requests dropped "
	    "because too many waited.\n"
	    "# TYPE uplinkd_remote_dropped_total counter\n"
	    "uplinkd_remote_dropped_total %" PRIu64 "\n",
	    remote_stats.calls, remote_stats.malformed, remote_stats.expired,
	    remote_stats.dropped);
}

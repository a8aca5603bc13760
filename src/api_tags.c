/* SPDX-License-Identifier: ISC */
/*
 * The tag hub API (taghub 2.0.0): /tags/list, /tags/monitor (latest
 * values, or a stream of them), /tags/publish, /tags/access and
 * /tags/virtual.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "tag.h"
#include "tagsrc_virtual.h"
#include "uplinkd.h"
#include "util.h"
#include "xmalloc.h"

#define API_TAGS_STREAM_MIN_MS	100
#define API_TAGS_STREAM_MAX_MS	3600000
#define API_TAGS_MONITOR_MAX	4096

static void	api_tags_list(struct api_req *, struct api_resp *);
static void	api_tags_monitor(struct api_req *, struct api_resp *);
static void	api_tags_publish(struct api_req *, struct api_resp *);
static void	api_tags_read(struct api_req *, struct api_resp *);
static void	api_tags_write(struct api_req *, struct api_resp *);
static void	api_tags_vadd(struct api_req *, struct api_resp *);
static void	api_tags_vput(struct api_req *, struct api_resp *);
static void	api_tags_vdel(struct api_req *, struct api_resp *);

const struct api_route api_tags_routes[] = {
	{ API_GET, "/tags/list", 0, api_tags_list },
	{ API_GET, "/tags/monitor/{provider}/{source}", 0, api_tags_monitor },
	{ API_POST, "/tags/publish", API_RAWBODY, api_tags_publish },
	{ API_GET, "/tags/access/{provider}/{source}/{tag}", 0,
	    api_tags_read },
	{ API_PUT, "/tags/access/{provider}/{source}/{tag}", API_BODY,
	    api_tags_write },
	{ API_POST, "/tags/virtual", API_BODY, api_tags_vadd },
	{ API_PUT, "/tags/virtual", API_BODY, api_tags_vput },
	{ API_DELETE, "/tags/virtual", API_BODY, api_tags_vdel },
	{ 0, NULL, 0, NULL }
};

/* Ceiling on records per publish request (uplinkd.conf). */
static size_t	api_tags_max_records = 65536;

/* Set the ceiling on records per publish request. */
void
api_tags_set_max_records(size_t n)
{
	api_tags_max_records = n;
}

/* Does s contain one of the comma-separated keywords of list? */
static int
api_tags_match(const char *s, const char *list)
{
	const char	*p = list, *comma;
	char		 word[1025];
	size_t		 len;

	if (list == NULL || *list == '\0')
		return (1);
	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len != 0 && len < sizeof word) {
			memcpy(word, p, len);
			word[len] = '\0';
			if (strstr(s, word) != NULL)
				return (1);
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return (0);
}

static int	api_tags_order;		/* 0 provider, 1 source, 2 name */
static int	api_tags_desc;

/* qsort: by the chosen key, then the others, ascending or descending. */
static int
api_tags_cmp(const void *a, const void *b)
{
	const struct tag	*x = *(struct tag *const *)a;
	const struct tag	*y = *(struct tag *const *)b;
	const char		*kx[3], *ky[3];
	int			 i, k, c = 0;

	kx[0] = tag_get_prvd(x);
	kx[1] = tag_get_src(x);
	kx[2] = tag_get_name(x);
	ky[0] = tag_get_prvd(y);
	ky[1] = tag_get_src(y);
	ky[2] = tag_get_name(y);
	for (i = 0; i < 3 && c == 0; i++) {
		k = (api_tags_order + i) % 3;
		c = strcmp(kx[k], ky[k]);
	}
	return (api_tags_desc ? -c : c);
}

/* Read a non-negative integer query parameter; -1 after answering 400. */
static int
api_tags_uint(struct api_req *req, struct api_resp *resp, const char *name,
    uint64_t def, uint64_t max, uint64_t *out)
{
	const char	*s = api_query(req, name);
	char		*end;

	*out = def;
	if (s == NULL || *s == '\0')
		return (0);
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end != '\0' || errno != 0 ||
	    *out > max) {
		api_error(req, resp, 400, "%s: must be an integer from 0 to %"
		    PRIu64 ", not \"%s\"", name, max, s);
		return (-1);
	}
	return (0);
}

/* GET /tags/list?provider=&source=&name=&limit=&offset=&order=&sort= */
static void
api_tags_list(struct api_req *req, struct api_resp *resp)
{
	struct tag	**all;
	size_t		  n, i, k = 0, total;
	uint64_t	  limit, offset;
	const char	 *order = api_query(req, "order");
	const char	 *sort = api_query(req, "sort");
	struct json	 *body, *data;

	if (api_tags_uint(req, resp, "limit", 0, UINT32_MAX, &limit) != 0 ||
	    api_tags_uint(req, resp, "offset", 0, UINT32_MAX, &offset) != 0)
		return;
	if (order == NULL || strcmp(order, "provider") == 0)
		api_tags_order = 0;
	else if (strcmp(order, "source") == 0)
		api_tags_order = 1;
	else if (strcmp(order, "name") == 0)
		api_tags_order = 2;
	else {
		api_error(req, resp, 400, "order: must be one of provider, "
		    "source, name, not \"%s\"", order);
		return;
	}
	if (sort == NULL || strcmp(sort, "asc") == 0)
		api_tags_desc = 0;
	else if (strcmp(sort, "desc") == 0)
		api_tags_desc = 1;
	else {
		api_error(req, resp, 400, "sort: must be one of asc, desc, not "
		    "\"%s\"", sort);
		return;
	}

	all = tag_all(&n);
	for (i = 0; i < n; i++) {
		if (api_tags_match(tag_get_prvd(all[i]),
		    api_query(req, "provider")) &&
		    api_tags_match(tag_get_src(all[i]),
		    api_query(req, "source")) &&
		    api_tags_match(tag_get_name(all[i]),
		    api_query(req, "name")))
			all[k++] = all[i];
	}
	total = k;
	qsort(all, total, sizeof *all, api_tags_cmp);
	data = json_new_array();
	for (i = offset; i < total && (limit == 0 ||
	    i < offset + limit); i++)
		json_array_push(data, tag_def_json(all[i]));
	free(all);
	body = json_new_object();
	json_set(body, "count", json_new_uint(json_array_size(data)));
	json_set(body, "limit", json_new_uint(limit));
	json_set(body, "offset", json_new_uint(offset));
	json_set(body, "total", json_new_uint(total));
	json_set(body, "data", data);
	api_bare(resp, 200, body);
}

/* A tag's latest value as a record (dataValue null if it has none). */
static struct json *
api_tags_latest(const struct tag *t)
{
	struct tag_rec	 rec;
	struct json	*j;

	if (tag_get(t, &rec) == 0)
		return (tag_rec_json(&rec));
	j = tag_rec_json(&rec);
	json_set(j, "dataValue", json_new_null());
	return (j);
}

/* A monitor: the tags it watches, its subscription and its stream. */
struct api_tags_mon {
	struct api_stream	 *st;
	char			 *prvd;
	char			 *src;
	char			**names;	/* NULL: the whole source */
	size_t			  nnames;
	struct tag_sub		**subs;
	size_t			  nsubs;
	unsigned int		  interval_ms;
	int			  on_changed;
	struct json		 *changed;	/* records not yet sent */
	struct event		 *tick;
	struct event		 *flush;
};

/* Free a monitor (its stream is already gone or ended). */
static void
api_tags_mon_free(struct api_tags_mon *m)
{
	size_t	i;

	for (i = 0; i < m->nsubs; i++)
		tag_unsubscribe(m->subs[i]);
	free(m->subs);
	for (i = 0; i < m->nnames; i++)
		free(m->names[i]);
	free(m->names);
	free(m->prvd);
	free(m->src);
	json_free(m->changed);
	if (m->tick != NULL)
		event_free(m->tick);
	if (m->flush != NULL)
		event_free(m->flush);
	free(m);
}

/* Send "data:<records>\n\n"; on failure the stream's closed follows. */
static void
api_tags_mon_send(struct api_tags_mon *m, const struct json *records)
{
	char	*text, *line;
	size_t	 len;

	text = json_dump(records, &len);
	line = xmalloc(len + 8);
	memcpy(line, "data:", 5);
	memcpy(line + 5, text, len);
	memcpy(line + 5 + len, "\n\n", 2);
	api_stream_write(m->st, line, len + 7);
	free(line);
	free(text);
}

/* The latest values of every watched tag. */
static struct json *
api_tags_mon_snapshot(struct api_tags_mon *m)
{
	struct json		*a;
	struct tag		*t;
	struct tag *const	*tags;
	size_t			 i, n;

	a = json_new_array();
	if (m->names != NULL) {
		for (i = 0; i < m->nnames; i++)
			if ((t = tag_find(m->prvd, m->src, m->names[i])) !=
			    NULL)
				json_array_push(a, api_tags_latest(t));
		return (a);
	}
	tags = tag_source_tags(m->prvd, m->src, &n);
	for (i = 0; i < n; i++)
		json_array_push(a, api_tags_latest(tags[i]));
	return (a);
}

/* streamInterval: send what is due. */
static void
api_tags_mon_tick_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct api_tags_mon	*m = arg;
	struct json		*a;

	if (m->on_changed) {
		if (json_array_size(m->changed) == 0)
			return;
		api_tags_mon_send(m, m->changed);
		json_free(m->changed);
		m->changed = json_new_array();
		return;
	}
	a = api_tags_mon_snapshot(m);
	api_tags_mon_send(m, a);
	json_free(a);
}

/* onChanged without an interval: send what changed this loop turn. */
static void
api_tags_mon_flush_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct api_tags_mon	*m = arg;

	if (json_array_size(m->changed) == 0)
		return;
	api_tags_mon_send(m, m->changed);
	json_free(m->changed);
	m->changed = json_new_array();
}

/* A watched tag has a new value. */
static void
api_tags_mon_value_cb(const struct tag_rec *rec, void *arg)
{
	struct api_tags_mon	*m = arg;

	if (json_array_size(m->changed) >= API_TAGS_MONITOR_MAX)
		json_free(json_array_take(m->changed, 0));
	json_array_push(m->changed, tag_rec_json(rec));
	if (m->interval_ms == 0 && m->flush != NULL)
		event_active(m->flush, EV_TIMEOUT, 0);
}

/* The stream is open: send the current values, then start watching. */
static void
api_tags_mon_start(struct api_stream *st, void *arg)
{
	struct api_tags_mon	*m = arg;
	struct json		*a;
	struct timeval		 tv;
	size_t			 i;

	m->st = st;
	a = api_tags_mon_snapshot(m);
	api_tags_mon_send(m, a);
	json_free(a);
	if (m->on_changed) {
		m->changed = json_new_array();
		if (m->names == NULL) {
			m->subs = xcalloc(1, sizeof *m->subs);
			m->subs[m->nsubs++] = tag_subscribe(m->prvd, m->src,
			    NULL, api_tags_mon_value_cb, m);
		} else {
			m->subs = xcalloc(m->nnames, sizeof *m->subs);
			for (i = 0; i < m->nnames; i++)
				m->subs[m->nsubs++] = tag_subscribe(m->prvd,
				    m->src, m->names[i], api_tags_mon_value_cb,
				    m);
		}
		m->flush = event_new(uplinkd_base(), -1, 0,
		    api_tags_mon_flush_cb, m);
	}
	if (m->interval_ms != 0) {
		m->tick = event_new(uplinkd_base(), -1, EV_PERSIST,
		    api_tags_mon_tick_cb, m);
		tv.tv_sec = m->interval_ms / 1000;
		tv.tv_usec = (m->interval_ms % 1000) * 1000;
		evtimer_add(m->tick, &tv);
	}
}

/* The client went away (or the daemon stops): forget the monitor. */
static void
api_tags_mon_closed(__attribute__((unused)) struct api_stream *st,
    void *arg)
{
	api_tags_mon_free(arg);
}

/* Split "a,b,c" into names; -1 after answering 400. */
static int
api_tags_names(struct api_req *req, struct api_resp *resp, const char *list,
    struct api_tags_mon *m)
{
	const char	*p = list, *comma;
	size_t		 len;

	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len != 0) {
			if (m->nnames == API_TAGS_MONITOR_MAX) {
				api_error(req, resp, 400, "tags: at most %d "
				    "names", API_TAGS_MONITOR_MAX);
				return (-1);
			}
			m->names = xreallocarray(m->names, m->nnames + 1,
			    sizeof *m->names);
			m->names[m->nnames++] = xstrndup(p, len);
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return (0);
}

/*
 * GET /tags/monitor/{provider}/{source}?tags=a,b — the latest values;
 * with streamInterval=ms and/or onChanged=true a stream of
 * "data:[records]" events instead.
 */
static void
api_tags_monitor(struct api_req *req, struct api_resp *resp)
{
	struct api_tags_mon	*m;
	const char		*tags = api_query(req, "tags");
	const char		*oc = api_query(req, "onChanged");
	uint64_t		 interval;
	struct json		*a;
	size_t			 i;

	m = xcalloc(1, sizeof *m);
	m->prvd = xstrdup(api_param(req, "provider"));
	m->src = xstrdup(api_param(req, "source"));
	if (tags != NULL && *tags != '\0' &&
	    api_tags_names(req, resp, tags, m) != 0)
		goto fail;
	if (api_tags_uint(req, resp, "streamInterval", 0,
	    API_TAGS_STREAM_MAX_MS, &interval) != 0)
		goto fail;
	if (interval != 0 && interval < API_TAGS_STREAM_MIN_MS) {
		api_error(req, resp, 400, "streamInterval: must be 0 or from "
		    "%d to %d ms", API_TAGS_STREAM_MIN_MS,
		    API_TAGS_STREAM_MAX_MS);
		goto fail;
	}
	m->interval_ms = interval;
	if (oc != NULL && strcmp(oc, "true") != 0 && strcmp(oc, "false") != 0 &&
	    *oc != '\0') {
		api_error(req, resp, 400, "onChanged: must be true or false, "
		    "not \"%s\"", oc);
		goto fail;
	}
	m->on_changed = (oc != NULL && strcmp(oc, "false") != 0);
	for (i = 0; i < m->nnames; i++) {
		if (tag_find(m->prvd, m->src, m->names[i]) == NULL &&
		    !m->on_changed) {
			api_error(req, resp, 404, "tag %s/%s/%s not found",
			    m->prvd, m->src, m->names[i]);
			goto fail;
		}
	}

	if (m->interval_ms == 0 && !m->on_changed) {
		a = api_tags_mon_snapshot(m);
		if (m->names == NULL && json_array_size(a) == 0) {
			json_free(a);
			api_error(req, resp, 404, "source %s/%s has no tags",
			    m->prvd, m->src);
			goto fail;
		}
		api_data(resp, a);
		api_tags_mon_free(m);
		return;
	}
	if (req->origin == API_ORIGIN_REMOTE) {
		api_error(req, resp, 400, "streamInterval, onChanged: streams "
		    "cannot be opened remotely");
		goto fail;
	}
	api_stream(resp, "text/event-stream", api_tags_mon_start,
	    api_tags_mon_closed, m);
	return;
fail:
	api_tags_mon_free(m);
}

/* POST /tags/publish: one record or an array of records. */
static void
api_tags_publish(struct api_req *req, struct api_resp *resp)
{
	const char	*ct = req->content_type;
	size_t		 n;
	int		 toobig;
	char		*cause;
	struct json	*data;

	if (req->json != NULL) {
		/* A remote call brings a parsed body: print it again. */
		char	*text;
		size_t	 len;
		int	 rc;

		text = json_dump(req->json, &len);
		rc = tag_ingest(text, len, api_tags_max_records,
		    TAG_ORIGIN_REST, &n, &toobig, &cause);
		free(text);
		if (rc != 0)
			goto fail;
		goto ok;
	}
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		api_error(req, resp, 415, "Content-Type: must be "
		    "application/json, not %s", ct == NULL ? "absent" : ct);
		return;
	}
	if (req->bodylen == 0) {
		api_error(req, resp, 400, "body: a tag record or an array of "
		    "them is required");
		return;
	}
	if (tag_ingest(req->body, req->bodylen, api_tags_max_records,
	    req->origin == API_ORIGIN_UNIX ? TAG_ORIGIN_UNIX : TAG_ORIGIN_REST,
	    &n, &toobig, &cause) != 0)
		goto fail;
ok:
	data = json_new_object();
	json_set(data, "published", json_new_uint(n));
	api_data(resp, data);
	return;
fail:
	api_error(req, resp, toobig ? 413 : 400, "%s", cause);
	free(cause);
}

/* The tag named by the path; NULL after answering 404. */
static struct tag *
api_tags_path(struct api_req *req, struct api_resp *resp)
{
	struct tag	*t;

	t = tag_find(api_param(req, "provider"), api_param(req, "source"),
	    api_param(req, "tag"));
	if (t == NULL)
		api_error(req, resp, 404, "tag %s/%s/%s not found",
		    api_param(req, "provider"), api_param(req, "source"),
		    api_param(req, "tag"));
	return (t);
}

/* GET /tags/access/{provider}/{source}/{tag}: a direct read. */
static void
api_tags_read(struct api_req *req, struct api_resp *resp)
{
	struct tag	*t;
	struct json	*j;
	struct tag_rec	 rec;
	char		 ms[32];

	if ((t = api_tags_path(req, resp)) == NULL)
		return;
	if (!(tag_get_access(t) & TAG_ACCESS_R)) {
		api_error(req, resp, 400, "tag %s/%s/%s is not readable "
		    "(access %s)", tag_get_prvd(t), tag_get_src(t),
		    tag_get_name(t), tag_access_name(tag_get_access(t)));
		return;
	}
	j = api_tags_latest(t);
	if (tag_get(t, &rec) == 0) {
		snprintf(ms, sizeof ms, "%" PRId64, rec.ts / 1000);
		json_set(j, "timestamp", json_new_string(ms));
	}
	api_data(resp, j);
}

/* PUT /tags/access/{provider}/{source}/{tag} {dataType?, dataValue} */
static void
api_tags_write(struct api_req *req, struct api_resp *resp)
{
	struct tag		*t;
	struct tag_value	 v;
	struct tag_rec		 rec;
	enum tag_type		 type;
	const char		*ts;
	char			*buf = NULL, *cause = NULL;
	struct json		*dv;

	if ((t = api_tags_path(req, resp)) == NULL)
		return;
	if (json_type(req->json) != JSON_OBJECT) {
		api_error(req, resp, 400, "body: must be an object");
		return;
	}
	if ((ts = json_get_string(req->json, "dataType")) != NULL) {
		if (tag_type_parse(ts, &type) != 0) {
			api_error(req, resp, 400, "dataType: \"%s\" is not a "
			    "tag type", ts);
			return;
		}
		if (type != tag_get_type(t)) {
			api_error(req, resp, 400, "dataType: tag %s/%s/%s is "
			    "%s, not %s", tag_get_prvd(t), tag_get_src(t),
			    tag_get_name(t), tag_type_name(tag_get_type(t)),
			    ts);
			return;
		}
	} else if (json_get(req->json, "dataType") != NULL) {
		api_error(req, resp, 400, "dataType: must be a string");
		return;
	}
	if ((dv = json_get(req->json, "dataValue")) == NULL) {
		api_error(req, resp, 400, "dataValue: is required");
		return;
	}
	if (tag_value_from_json(dv, tag_get_type(t), &v, &buf, &cause) != 0) {
		api_error(req, resp, 400, "dataValue: %s", cause);
		free(cause);
		return;
	}
	if (tag_write(t, &v, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		free(buf);
		return;
	}
	tag_get(t, &rec);
	rec.value = v;
	api_data(resp, tag_rec_json(&rec));
	free(buf);
}

/* POST or PUT /tags/virtual. */
static void
api_tags_vset(struct api_req *req, struct api_resp *resp, int update)
{
	struct json	*def;
	char		*cause;
	int		 status;

	if (tagsrc_virtual_add(req->json, update, &def, &status,
	    &cause) != 0) {
		api_error(req, resp, status, "%s", cause);
		free(cause);
		return;
	}
	api_data(resp, def);
}

static void
api_tags_vadd(struct api_req *req, struct api_resp *resp)
{
	api_tags_vset(req, resp, 0);
}

static void
api_tags_vput(struct api_req *req, struct api_resp *resp)
{
	api_tags_vset(req, resp, 1);
}

/* DELETE /tags/virtual {prvdName, srcName, tagName} -> the remaining list */
static void
api_tags_vdel(struct api_req *req, struct api_resp *resp)
{
	struct json	*body, *list;
	char		*cause;
	int		 status;

	if (tagsrc_virtual_delete(req->json, &status, &cause) != 0) {
		api_error(req, resp, status, "%s", cause);
		free(cause);
		return;
	}
	list = tagsrc_virtual_list();
	body = json_new_object();
	json_set(body, "count", json_new_uint(json_array_size(list)));
	json_set(body, "limit", json_new_uint(0));
	json_set(body, "offset", json_new_uint(0));
	json_set(body, "total", json_new_uint(json_array_size(list)));
	json_set(body, "data", list);
	api_bare(resp, 200, body);
}

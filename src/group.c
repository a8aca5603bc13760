/* SPDX-License-Identifier: ISC */
/*
 * Message groups.  A group selects tags as {provider: {source: [tag...]}}
 * and turns their values into messages for one outbox.
 *
 * Sampling.  In subscribe mode the tag hub hands the group every new
 * value from the loop (tag_subscribe(); a tag that does not exist yet is
 * picked up when it appears).  In polling mode the group reads the latest
 * value of each tag every N seconds: tag_find() once, then the cached
 * pointer (the hub never frees a tag while it runs).  A tag still missing
 * is not looked up again on every tick: a subscription waits for its
 * first value and is dropped once the tag is found.  The *Changed modes
 * drop a value equal to the last one this group took for the tag.
 *
 * Timers.  No group owns a libevent timer.  Per event base there is one
 * timer per distinct period in use, shared by every group that polls at
 * that period or sends by time at that period: on a tick the polling
 * groups sample first, then the groups with something buffered send (so
 * latestValues sampled at the send period goes out on the same tick).
 * A byTime group is on its period's send list only while its buffer holds
 * records, and a period timer is armed only while one of its lists is
 * not empty.  One-shot deadlines (bySize's idle timer, the hold of
 * minPublishInterval) sit in a binary heap with one timer armed at the
 * earliest.  An idle group costs no timer and no work.
 *
 * Send-out.  Each record goes through the format into the group's buffer
 * with the size limit; a record that would overflow it (FORMAT_FULL)
 * sends the buffer and starts the next one.  A record too large for the
 * limit on its own is dropped and counted, so a message is never larger
 * than the limit.  Without a size threshold the limit is GROUP_MSG_MAX.
 * byTime sends on the ticks of its period (a record waits at most time
 * s); bySize's idle timer starts with the first record of a buffer;
 * immediately sends each record (subscribe mode) or round (polling),
 * holding and merging until minPublishInterval has passed since the last
 * send.  The 2.2.0 {size, time}: time 0 is immediately, otherwise byTime;
 * size, if not 0, is the limit either way.  group_flush() ignores all
 * of these.
 *
 * Freeing.  group_free() detaches a group at once; called from inside
 * the group's own work (an outbox or a sent hook calling back), it leaves
 * the memory to go when that work unwinds.
 */

#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "format.h"
#include "group.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "tag.h"
#include "util.h"
#include "xmalloc.h"

#define GROUP_MSG_MAX	(16 * 1024 * 1024)	/* without a size threshold */
#define GROUP_LOG_MS	60000	/* a failing filter is logged this seldom */
#define GROUP_TOPIC_MAX	65535	/* bytes in an MQTT topic */

enum group_form {
	GROUP_V20,
	GROUP_V24
};

enum group_send {
	GROUP_SEND_TIME,	/* every time s, if anything is buffered */
	GROUP_SEND_SIZE,	/* when full, or idle_ms after a first record */
	GROUP_SEND_NOW		/* each record or round, mpi_ms apart */
};

struct group;
TAILQ_HEAD(group_list, group);

struct group_tag {
	struct group		*group;		/* NULL: a duplicate */
	const char		*prvd;		/* borrowed from the document */
	const char		*src;
	const char		*name;
	struct tag		*tag;		/* polling: NULL until found */
	struct tag_sub		*sub;		/* values, or waiting for it */
	int			 has_last;
	struct tag_value	 last;		/* *Changed: the last taken */
	char			*lbuf;		/* owns last.s */
	size_t			 lcap;
};

struct group_period {
	LIST_ENTRY(group_period) entry;
	struct group_sched	*sched;
	int			 secs;
	struct event		*ev;
	int			 armed;
	int			 running;
	size_t			 refs;		/* groups configured with it */
	struct group_list	 polls;		/* groups sampling each tick */
	struct group_list	 sends;		/* byTime groups with records */
	struct group		*pnext;		/* cursors of a running tick */
	struct group		*snext;
};
LIST_HEAD(group_period_list, group_period);

struct group_sched {
	LIST_ENTRY(group_sched)	 entry;
	struct event_base	*base;
	struct group_period_list periods;
	struct group		**heap;		/* deadlines, earliest first */
	size_t			 nheap;
	size_t			 heapcap;
	struct event		*heap_ev;
	int			 heap_armed;
	uint64_t		 heap_at;	/* the deadline armed for */
	int			 running;
	size_t			 ngroups;
};
LIST_HEAD(group_sched_list, group_sched);

struct group {
	char			*name;
	struct json		*doc;		/* own copy; names point here */
	struct group_target	 target;
	const char		*topic;
	struct group_sched	*sched;
	int			 enabled;
	enum group_form		 form;

	int			 changed;	/* *Changed sampling */
	int			 poll;		/* seconds; 0: subscribe */
	enum group_send		 send;
	int			 time;		/* GROUP_SEND_TIME period */
	int			 has_idle;	/* GROUP_SEND_SIZE idle timer */
	uint64_t		 idle_ms;
	uint64_t		 mpi_ms;	/* minPublishInterval */
	size_t			 limit;		/* bytes in a message */

	struct format		*fmt;
	struct format_buf	*buf;
	struct group_tag	*tags;
	size_t			 ntags;

	struct group_period	*pollp;
	struct group_period	*sendp;
	TAILQ_ENTRY(group)	 poll_entry;
	TAILQ_ENTRY(group)	 send_entry;
	int			 on_send;
	size_t			 hidx;		/* heap slot + 1; 0: none */
	uint64_t		 deadline;
	uint64_t		 last_pub;
	int			 published;

	int			 busy;		/* in the group's own work */
	int			 dead;		/* freed while busy */

	uint64_t		 records;
	uint64_t		 messages;
	uint64_t		 errors;
	uint64_t		 dropped;
	uint64_t		 err_unlogged;
	uint64_t		 err_logged_at;
	int			 err_logged;
	uint64_t		 drop_logged_at;
	int			 drop_logged;
};

static enum group_form group_form_of(const struct json *);
static int	group_topic_check(struct json *, const char *, char **);
static int64_t	group_int(const struct json *, const char *, int64_t,
		    int64_t);
static int	group_flag(const struct json *, const char *, int);
static void	group_config(struct group *);
static void	group_tags_load(struct group *);
static int	group_tag_cmp(const void *, const void *);
static struct group_sched *group_sched_get(struct event_base *);
static void	group_sched_maybe_free(struct group_sched *);
static struct group_period *group_period_ref(struct group_sched *, int);
static void	group_period_unref(struct group_period *);
static void	group_period_update(struct group_period *);
static void	group_poll_leave(struct group *);
static void	group_send_join(struct group *);
static void	group_send_leave(struct group *);
static void	group_heap_place(struct group_sched *, size_t, struct group *);
static void	group_heap_up(struct group_sched *, size_t);
static void	group_heap_down(struct group_sched *, size_t);
static void	group_heap_set(struct group *, uint64_t);
static void	group_heap_del(struct group *);
static void	group_heap_arm(struct group_sched *);
static int	group_changed(struct group_tag *, const struct tag_value *);
static void	group_sample(struct group *);
static void	group_add(struct group *, const struct tag_rec *);
static void	group_started(struct group *);
static void	group_round(struct group *);
static void	group_idle(struct group *);
static void	group_send(struct group *);
static void	group_error(struct group *, const char *);
static void	group_oversize(struct group *);
static void	group_enter(struct group *);
static void	group_leave(struct group *);
static void	group_detach(struct group *);
static void	group_destroy(struct group *);
static void	group_tag_cb(const struct tag_rec *, void *);
static void	group_found_cb(const struct tag_rec *, void *);
static void	group_period_cb(evutil_socket_t, short, void *);
static void	group_heap_cb(evutil_socket_t, short, void *);

static struct group_sched_list	 group_scheds =
    LIST_HEAD_INITIALIZER(group_scheds);
static group_sent_cb		 group_sent_hook;
static void			*group_sent_arg;

static const char *const group_sampling_modes[] = {
	"allValues", "latestValues", "allChangedValues", "latestChangedValues",
	NULL
};
static const char *const group_send_modes[] = {
	"byTime", "bySize", "immediately", NULL
};

/* tags: {provider: {source: [tag name...]}} */
static const struct json_field group_schema_tag[] = {
	{ "tag", JF_STRING, 0, 1, 255, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};
static const struct json_field group_schema_source[] = {
	{ "source", JF_ARRAY, 0, 0, 0, NULL, NULL, group_schema_tag, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};
static const struct json_field group_schema_provider[] = {
	{ "provider", JF_MAP, 0, 0, 0, NULL, NULL, group_schema_source, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field group_schema_property_fields[] = {
	{ "key", JF_STRING, JF_REQUIRED, 1, 65535, NULL, NULL, NULL, NULL },
	{ "value", JF_STRING, JF_REQUIRED, 1, 65535, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};
static const struct json_field group_schema_property[] = {
	{ "property", JF_OBJECT, 0, 0, 0, NULL, NULL,
	    group_schema_property_fields, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field group_schema_threshold_v20[] = {
	{ "size", JF_INT, 0, 0, 262144, NULL, "4096", NULL, NULL },
	{ "time", JF_INT, 0, 0, 86400, NULL, "60", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field group_schema_idle[] = {
	{ "enable", JF_BOOL, 0, 0, 0, NULL, "true", NULL, NULL },
	{ "time", JF_INT, 0, 0, 86400, NULL, "60", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field group_schema_threshold_v24[] = {
	{ "mode", JF_ENUM, 0, 0, 0, group_send_modes, "\"byTime\"", NULL,
	    NULL },
	{ "time", JF_INT, 0, 0, 86400, NULL, "60", NULL, NULL },
	{ "size", JF_INT, 0, 0, 262144, NULL, "4096", NULL, NULL },
	{ "sizeIdleTimer", JF_OBJECT, 0, 0, 0, NULL, NULL, group_schema_idle,
	    NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* The 2.2.0 form (MessagePolicyV20). */
static const struct json_field group_schema_v20_fields[] = {
	{ "id", JF_INT, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "enable", JF_BOOL, JF_REQUIRED, 0, 0, NULL, NULL, NULL, NULL },
	{ "outputTopic", JF_STRING, 0, 1, GROUP_TOPIC_MAX, NULL, "\"sample\"",
	    NULL, group_topic_check },
	{ "properties", JF_ARRAY, 0, 0, 0, NULL, "[]", group_schema_property,
	    NULL },
	{ "tags", JF_MAP, JF_REQUIRED, 0, 0, NULL, NULL, group_schema_provider,
	    NULL },
	{ "pollingInterval", JF_INT, 0, 0, 86400, NULL, "0", NULL, NULL },
	{ "sendOutThreshold", JF_OBJECT, 0, 0, 0, NULL, NULL,
	    group_schema_threshold_v20, NULL },
	{ "format", JF_STRING, 0, 0, 4096, NULL, "\"\"", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* The 2.4.0 form (MessagePolicy). */
static const struct json_field group_schema_v24_fields[] = {
	{ "id", JF_INT, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "enable", JF_BOOL, JF_REQUIRED, 0, 0, NULL, NULL, NULL, NULL },
	{ "description", JF_STRING, 0, 0, 1024, NULL, NULL, NULL, NULL },
	{ "outputTopic", JF_STRING, 0, 1, GROUP_TOPIC_MAX, NULL, "\"sample\"",
	    NULL, group_topic_check },
	{ "properties", JF_ARRAY, 0, 0, 0, NULL, "[]", group_schema_property,
	    NULL },
	{ "tags", JF_MAP, JF_REQUIRED, 0, 0, NULL, NULL, group_schema_provider,
	    NULL },
	{ "onChange", JF_BOOL, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "minPublishInterval", JF_INT, 0, 0, 60, NULL, "0", NULL, NULL },
	{ "samplingMode", JF_ENUM, 0, 0, 0, group_sampling_modes,
	    "\"allChangedValues\"", NULL, NULL },
	{ "customSamplingRate", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "pollingInterval", JF_INT, 0, 0, 86400, NULL, "0", NULL, NULL },
	{ "sendOutThreshold", JF_OBJECT, 0, 0, 0, NULL, NULL,
	    group_schema_threshold_v24, NULL },
	{ "format", JF_STRING, 0, 0, 4096, NULL, "\"\"", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

const struct json_field *const group_schema_v20 = group_schema_v20_fields;
const struct json_field *const group_schema_v24 = group_schema_v24_fields;

/*
 * The form a document is written in: 2.4.0 if it has any member only
 * that form knows (sizeIdleTimer too, which the 2.2.0 form would drop).
 */
static enum group_form
group_form_of(const struct json *doc)
{
	if (json_get(doc, "samplingMode") != NULL ||
	    json_get(doc, "customSamplingRate") != NULL ||
	    json_get(doc, "minPublishInterval") != NULL ||
	    json_get(doc, "description") != NULL ||
	    json_get_path(doc, "sendOutThreshold.mode") != NULL ||
	    json_get_path(doc, "sendOutThreshold.sizeIdleTimer") != NULL)
		return (GROUP_V24);
	return (GROUP_V20);
}

/* outputTopic: an MQTT topic one can publish to. */
static int
group_topic_check(struct json *v, const char *path, char **cause)
{
	if (json_strlen(v) > GROUP_TOPIC_MAX) {
		xasprintf(cause, "%s: must be at most %d bytes long", path,
		    GROUP_TOPIC_MAX);
		return (-1);
	}
	if (strpbrk(json_string(v), "+#") != NULL) {
		xasprintf(cause, "%s: must not contain the MQTT wildcards + "
		    "and #", path);
		return (-1);
	}
	return (0);
}

/*
 * Check a group document in either form, edited in place: defaults
 * filled, onChange set (2.4.0), the form kept as "_form".  0, or -1 with
 * *cause (caller frees) naming the field and the rule.
 */
int
group_validate(struct json *doc, char **cause)
{
	enum group_form	 form;
	struct format	*f;
	const char	*s;
	char		*why = NULL;

	form = group_form_of(doc);
	if (json_validate(doc, form == GROUP_V24 ? group_schema_v24 :
	    group_schema_v20, cause) != 0)
		return (-1);
	s = json_get_string(doc, "format");
	if (s != NULL && *s != '\0') {
		/* format_new() names the field in its cause. */
		if ((f = format_new(s, &why)) == NULL) {
			*cause = why != NULL ? why : xstrdup("format: does "
			    "not compile");
			return (-1);
		}
		format_free(f);
	}
	if (form == GROUP_V24) {
		s = json_get_string(doc, "samplingMode");
		json_set(doc, "onChange", json_new_bool(s != NULL &&
		    strstr(s, "Changed") != NULL));
	}
	json_set(doc, "_form", json_new_string(form == GROUP_V24 ? "v24" :
	    "v20"));
	return (0);
}

/* An integer member by dotted path within 0..max, or def. */
static int64_t
group_int(const struct json *doc, const char *path, int64_t def,
    int64_t max)
{
	struct json	*v = json_get_path(doc, path);
	int64_t		 i;

	if (!json_is_int(v))
		return (def);
	i = json_int(v);
	return (i < 0 ? 0 : i > max ? max : i);
}

/* A boolean member by dotted path, or def. */
static int
group_flag(const struct json *doc, const char *path, int def)
{
	struct json	*v = json_get_path(doc, path);

	return (json_type(v) == JSON_BOOL ? json_bool(v) : def);
}

/* Read sampling and send-out settings from the group's document. */
static void
group_config(struct group *g)
{
	const struct json	*d = g->doc;
	const char		*s;
	int64_t			 pi, time, size;
	int			 custom, latest;

	if ((s = json_get_string(d, "_form")) != NULL)
		g->form = strcmp(s, "v24") == 0 ? GROUP_V24 : GROUP_V20;
	else
		g->form = group_form_of(d);
	/* Validated already; the ranges only keep a stray document sane. */
	pi = group_int(d, "pollingInterval", 0, 86400);
	time = group_int(d, "sendOutThreshold.time", 60, 86400);
	size = group_int(d, "sendOutThreshold.size", 4096, GROUP_MSG_MAX);
	g->limit = GROUP_MSG_MAX;

	if (g->form == GROUP_V20) {
		/* Every value or the latest every N s; size, time or both. */
		g->poll = pi;
		if (size > 0)
			g->limit = size;
		if (time > 0) {
			g->send = GROUP_SEND_TIME;
			g->time = time;
		} else
			g->send = GROUP_SEND_NOW;
		return;
	}

	if ((s = json_get_string(d, "samplingMode")) == NULL)
		s = "allChangedValues";
	custom = group_flag(d, "customSamplingRate", 0);
	latest = strncmp(s, "latest", 6) == 0;
	g->changed = strstr(s, "Changed") != NULL;
	if (custom)
		g->poll = pi;
	else
		g->poll = latest ? time : 0;
	g->mpi_ms = group_int(d, "minPublishInterval", 0, 60) * 1000;

	if ((s = json_string(json_get_path(d, "sendOutThreshold.mode"))) ==
	    NULL)
		s = "byTime";
	if (strcmp(s, "bySize") == 0) {
		g->send = GROUP_SEND_SIZE;
		if (size > 0)
			g->limit = size;
		g->has_idle = group_flag(d,
		    "sendOutThreshold.sizeIdleTimer.enable", 1);
		g->idle_ms = group_int(d,
		    "sendOutThreshold.sizeIdleTimer.time", 60, 86400) * 1000;
	} else if (strcmp(s, "immediately") == 0 || time == 0)
		g->send = GROUP_SEND_NOW;
	else {
		g->send = GROUP_SEND_TIME;
		g->time = time;
	}
}

/*
 * Start a group of a validated document (copied) on base, sending to
 * target (copied; the outbox is borrowed and must outlive the group).
 * NULL with *cause if the format does not compile.  Caller frees with
 * group_free().
 */
struct group *
group_new(struct event_base *base, const char *name, const struct json *doc,
    const struct group_target *target, char **cause)
{
	struct group		*g;
	struct group_tag	*gt;
	const char		*s;
	char			*why = NULL;
	size_t			 i;

	g = xcalloc(1, sizeof *g);
	g->name = xstrdup(name);
	g->doc = json_copy(doc);
	g->target = *target;
	if ((g->topic = json_get_string(g->doc, "outputTopic")) == NULL)
		g->topic = "sample";
	g->enabled = json_bool(json_get(g->doc, "enable"));
	group_config(g);
	g->sched = group_sched_get(base);
	g->sched->ngroups++;
	if (!g->enabled) {
		log_debug("group %s: disabled", g->name);
		return (g);
	}

	if ((s = json_get_string(g->doc, "format")) == NULL)
		s = "";
	if ((g->fmt = format_new(s, &why)) == NULL) {
		*cause = why != NULL ? why : xstrdup("format: does not "
		    "compile");
		group_free(g);
		return (NULL);
	}
	g->buf = format_buf_new(g->fmt);
	group_tags_load(g);

	if (g->poll == 0) {
		for (i = 0; i < g->ntags; i++) {
			gt = &g->tags[i];
			gt->sub = tag_subscribe(gt->prvd, gt->src, gt->name,
			    group_tag_cb, gt);
		}
	} else {
		for (i = 0; i < g->ntags; i++) {
			gt = &g->tags[i];
			gt->tag = tag_find(gt->prvd, gt->src, gt->name);
			if (gt->tag == NULL)
				gt->sub = tag_subscribe(gt->prvd, gt->src,
				    gt->name, group_found_cb, gt);
		}
		g->pollp = group_period_ref(g->sched, g->poll);
		TAILQ_INSERT_TAIL(&g->pollp->polls, g, poll_entry);
		group_period_update(g->pollp);
	}
	if (g->send == GROUP_SEND_TIME)
		g->sendp = group_period_ref(g->sched, g->time);

	log_debug("group %s: started form=%s tags=%zu poll=%d changed=%d "
	    "send=%s time=%d limit=%zu", g->name,
	    g->form == GROUP_V24 ? "v24" : "v20", g->ntags, g->poll,
	    g->changed, g->send == GROUP_SEND_TIME ? "byTime" :
	    g->send == GROUP_SEND_SIZE ? "bySize" : "immediately", g->time,
	    g->limit);
	return (g);
}

/*
 * Stop a group and free it (NULL: nothing).  Safe from anywhere; from
 * inside the group's own work the memory goes when that work unwinds.
 */
void
group_free(struct group *g)
{
	if (g == NULL || g->dead)
		return;
	group_detach(g);
	g->dead = 1;
	if (g->busy == 0)
		group_destroy(g);
}

/* Send what the group holds now, whatever its threshold. */
void
group_flush(struct group *g)
{
	if (g == NULL || g->dead || g->buf == NULL)
		return;
	group_enter(g);
	group_send(g);
	group_leave(g);
}

/* Records merged into messages. */
uint64_t
group_records(const struct group *g)
{
	return (g->records);
}

/* Messages handed to the outbox. */
uint64_t
group_messages(const struct group *g)
{
	return (g->messages);
}

/* Records the filter failed on. */
uint64_t
group_filter_errors(const struct group *g)
{
	return (g->errors);
}

/* Records dropped because alone they exceed the size threshold. */
uint64_t
group_dropped(const struct group *g)
{
	return (g->dropped);
}

/* The name given to group_new(); borrowed. */
const char *
group_name(const struct group *g)
{
	return (g->name);
}

/* libevent timers made by groups now (each shared by many groups). */
size_t
group_timer_count(void)
{
	struct group_sched	*s;
	struct group_period	*p;
	size_t			 n = 0;

	LIST_FOREACH(s, &group_scheds, entry) {
		LIST_FOREACH(p, &s->periods, entry)
			n++;
		if (s->heap_ev != NULL)
			n++;
	}
	return (n);
}

/* Call cb (NULL: nothing) with every message any group sends. */
void
group_set_sent_cb(group_sent_cb cb, void *arg)
{
	group_sent_hook = cb;
	group_sent_arg = arg;
}

/*
 * The group's tags from its document, in document order, duplicates
 * dropped; names borrowed from g->doc.
 */
static void
group_tags_load(struct group *g)
{
	const struct json	*tags, *srcs, *names;
	struct group_tag	*gt, **idx;
	const char		*name;
	size_t			 i, j, k, n = 0;

	tags = json_get(g->doc, "tags");
	for (i = 0; i < json_object_size(tags); i++) {
		srcs = json_object_value(tags, i);
		for (j = 0; j < json_object_size(srcs); j++)
			n += json_array_size(json_object_value(srcs, j));
	}
	if (n == 0)
		return;
	g->tags = xcalloc(n, sizeof *g->tags);
	for (i = 0; i < json_object_size(tags); i++) {
		srcs = json_object_value(tags, i);
		for (j = 0; j < json_object_size(srcs); j++) {
			names = json_object_value(srcs, j);
			for (k = 0; k < json_array_size(names); k++) {
				name = json_string(json_array_get(names, k));
				if (name == NULL)
					continue;
				gt = &g->tags[g->ntags++];
				gt->group = g;
				gt->prvd = json_object_key(tags, i);
				gt->src = json_object_key(srcs, j);
				gt->name = name;
			}
		}
	}
	if (g->ntags < 2)
		return;

	/* Mark every later copy of a name, then close the gaps. */
	idx = xcalloc(g->ntags, sizeof *idx);
	for (i = 0; i < g->ntags; i++)
		idx[i] = &g->tags[i];
	qsort(idx, g->ntags, sizeof *idx, group_tag_cmp);
	for (i = 1; i < g->ntags; i++)
		if (strcmp(idx[i]->name, idx[i - 1]->name) == 0 &&
		    strcmp(idx[i]->src, idx[i - 1]->src) == 0 &&
		    strcmp(idx[i]->prvd, idx[i - 1]->prvd) == 0)
			idx[i]->group = NULL;
	free(idx);
	for (i = j = 0; i < g->ntags; i++)
		if (g->tags[i].group != NULL)
			g->tags[j++] = g->tags[i];
	if (j != g->ntags)
		log_debug("group %s: duplicate tags dropped=%zu", g->name,
		    g->ntags - j);
	g->ntags = j;
}

/* qsort: by names, then by place (so the first copy sorts first). */
static int
group_tag_cmp(const void *a, const void *b)
{
	const struct group_tag	*x = *(const struct group_tag *const *)a;
	const struct group_tag	*y = *(const struct group_tag *const *)b;
	int			 c;

	if ((c = strcmp(x->prvd, y->prvd)) != 0)
		return (c);
	if ((c = strcmp(x->src, y->src)) != 0)
		return (c);
	if ((c = strcmp(x->name, y->name)) != 0)
		return (c);
	return (x < y ? -1 : x > y);
}

/* The timers of base, made on first use. */
static struct group_sched *
group_sched_get(struct event_base *base)
{
	struct group_sched	*s;

	LIST_FOREACH(s, &group_scheds, entry)
		if (s->base == base)
			return (s);
	s = xcalloc(1, sizeof *s);
	s->base = base;
	LIST_INIT(&s->periods);
	LIST_INSERT_HEAD(&group_scheds, s, entry);
	return (s);
}

/* Free the timers of a base no group uses any more. */
static void
group_sched_maybe_free(struct group_sched *s)
{
	if (s->ngroups != 0 || !LIST_EMPTY(&s->periods) || s->running ||
	    s->nheap != 0)
		return;
	if (s->heap_ev != NULL)
		event_free(s->heap_ev);
	free(s->heap);
	LIST_REMOVE(s, entry);
	free(s);
}

/* The shared timer of a period, made on first use; one more user. */
static struct group_period *
group_period_ref(struct group_sched *s, int secs)
{
	struct group_period	*p;

	LIST_FOREACH(p, &s->periods, entry)
		if (p->secs == secs)
			break;
	if (p == NULL) {
		p = xcalloc(1, sizeof *p);
		p->sched = s;
		p->secs = secs;
		TAILQ_INIT(&p->polls);
		TAILQ_INIT(&p->sends);
		if ((p->ev = event_new(s->base, -1, EV_PERSIST,
		    group_period_cb, p)) == NULL)
			fatalx("group: event_new failed");
		LIST_INSERT_HEAD(&s->periods, p, entry);
	}
	p->refs++;
	return (p);
}

/* One user less (its lists left already). */
static void
group_period_unref(struct group_period *p)
{
	p->refs--;
	group_period_update(p);
}

/*
 * Arm a period's timer while a list has a group, disarm it otherwise,
 * free it when nobody uses it; all deferred while its tick runs.
 */
static void
group_period_update(struct group_period *p)
{
	struct timeval	tv;
	int		busy;

	if (p->running)
		return;
	if (p->refs == 0) {
		LIST_REMOVE(p, entry);
		event_free(p->ev);
		free(p);
		return;
	}
	busy = !TAILQ_EMPTY(&p->polls) || !TAILQ_EMPTY(&p->sends);
	if (busy && !p->armed) {
		tv.tv_sec = p->secs;
		tv.tv_usec = 0;
		event_add(p->ev, &tv);
		p->armed = 1;
	} else if (!busy && p->armed) {
		event_del(p->ev);
		p->armed = 0;
	}
}

/* Stop polling (the tick's cursor steps over the group). */
static void
group_poll_leave(struct group *g)
{
	struct group_period	*p = g->pollp;

	if (p->pnext == g)
		p->pnext = TAILQ_NEXT(g, poll_entry);
	TAILQ_REMOVE(&p->polls, g, poll_entry);
	group_period_update(p);
}

/* A byTime buffer has records: send it on the period's next tick. */
static void
group_send_join(struct group *g)
{
	if (g->sendp == NULL || g->on_send)
		return;
	TAILQ_INSERT_TAIL(&g->sendp->sends, g, send_entry);
	g->on_send = 1;
	group_period_update(g->sendp);
}

/* Nothing to send by time any more. */
static void
group_send_leave(struct group *g)
{
	struct group_period	*p = g->sendp;

	if (!g->on_send)
		return;
	if (p->snext == g)
		p->snext = TAILQ_NEXT(g, send_entry);
	TAILQ_REMOVE(&p->sends, g, send_entry);
	g->on_send = 0;
	group_period_update(p);
}

/* Put g at heap slot i. */
static void
group_heap_place(struct group_sched *s, size_t i, struct group *g)
{
	s->heap[i] = g;
	g->hidx = i + 1;
}

/* Move the group at slot i up to its place. */
static void
group_heap_up(struct group_sched *s, size_t i)
{
	struct group	*g = s->heap[i];
	size_t		 parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (s->heap[parent]->deadline <= g->deadline)
			break;
		group_heap_place(s, i, s->heap[parent]);
		i = parent;
	}
	group_heap_place(s, i, g);
}

/* Move the group at slot i down to its place. */
static void
group_heap_down(struct group_sched *s, size_t i)
{
	struct group	*g = s->heap[i];
	size_t		 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap &&
		    s->heap[c + 1]->deadline < s->heap[c]->deadline)
			c++;
		if (g->deadline <= s->heap[c]->deadline)
			break;
		group_heap_place(s, i, s->heap[c]);
		i = c;
	}
	group_heap_place(s, i, g);
}

/* Set (or move) the group's one-shot deadline, monotonic ms. */
static void
group_heap_set(struct group *g, uint64_t deadline)
{
	struct group_sched	*s = g->sched;

	g->deadline = deadline;
	if (g->hidx == 0) {
		if (s->nheap == s->heapcap) {
			s->heapcap = s->heapcap == 0 ? 16 : s->heapcap * 2;
			s->heap = xreallocarray(s->heap, s->heapcap,
			    sizeof *s->heap);
		}
		s->heap[s->nheap++] = g;
		group_heap_up(s, s->nheap - 1);
	} else {
		group_heap_up(s, g->hidx - 1);
		group_heap_down(s, g->hidx - 1);
	}
	group_heap_arm(s);
}

/* Cancel the group's deadline, if it has one. */
static void
group_heap_del(struct group *g)
{
	struct group_sched	*s = g->sched;
	struct group		*last;
	size_t			 i;

	if (g->hidx == 0)
		return;
	i = g->hidx - 1;
	g->hidx = 0;
	last = s->heap[--s->nheap];
	if (i < s->nheap) {
		group_heap_place(s, i, last);
		group_heap_up(s, i);
		group_heap_down(s, last->hidx - 1);
	}
	group_heap_arm(s);
}

/* Arm the heap's timer for the earliest deadline (or disarm it). */
static void
group_heap_arm(struct group_sched *s)
{
	struct timeval	tv;
	uint64_t	at, now;

	if (s->running)
		return;
	if (s->nheap == 0) {
		if (s->heap_armed) {
			event_del(s->heap_ev);
			s->heap_armed = 0;
		}
		return;
	}
	at = s->heap[0]->deadline;
	if (s->heap_armed && s->heap_at == at)
		return;
	if (s->heap_ev == NULL && (s->heap_ev = event_new(s->base, -1, 0,
	    group_heap_cb, s)) == NULL)
		fatalx("group: event_new failed");
	now = util_now_ms();
	at = at > now ? at - now : 0;
	tv.tv_sec = at / 1000;
	tv.tv_usec = (at % 1000) * 1000;
	event_add(s->heap_ev, &tv);
	s->heap_armed = 1;
	s->heap_at = s->heap[0]->deadline;
}

/*
 * Is v a change for a *Changed group?  The first value is; the value
 * becomes the one to compare the next with.
 */
static int
group_changed(struct group_tag *gt, const struct tag_value *v)
{
	struct tag_value	*l = &gt->last;
	int			 same;

	if (gt->has_last && l->type == v->type) {
		switch (v->type) {
		case TAG_STRING:
		case TAG_RAW:
			same = l->len == v->len && (v->len == 0 ||
			    memcmp(l->s, v->s, v->len) == 0);
			break;
		case TAG_BOOLEAN:
			same = (l->n.b != 0) == (v->n.b != 0);
			break;
		default:
			same = l->n.u == v->n.u;
			break;
		}
		if (same)
			return (0);
	}
	l->type = v->type;
	l->n = v->n;
	l->len = v->len;
	if ((v->type == TAG_STRING || v->type == TAG_RAW) && v->len != 0) {
		if (gt->lcap < v->len) {
			gt->lbuf = xrealloc(gt->lbuf, v->len);
			gt->lcap = v->len;
		}
		memcpy(gt->lbuf, v->s, v->len);
	}
	l->s = gt->lbuf;
	gt->has_last = 1;
	return (1);
}

/* A polling round: the latest value of each tag that has one. */
static void
group_sample(struct group *g)
{
	struct group_tag	*gt;
	struct tag_rec		 rec;
	size_t			 i;

	for (i = 0; i < g->ntags && !g->dead; i++) {
		gt = &g->tags[i];
		if (gt->tag == NULL || tag_get(gt->tag, &rec) != 0)
			continue;
		if (g->changed && !group_changed(gt, &rec.value))
			continue;
		group_add(g, &rec);
	}
	if (!g->dead)
		group_round(g);
}

/* Merge one record into the buffer; a full buffer goes out first. */
static void
group_add(struct group *g, const struct tag_rec *rec)
{
	char	*cause = NULL;
	int	 rc, was_empty;

	was_empty = format_buf_records(g->buf) == 0;
	rc = format_buf_add(g->buf, rec, g->limit, &cause);
	if (rc == FORMAT_FULL && !was_empty) {
		group_send(g);
		if (g->dead)
			return;
		was_empty = 1;
		rc = format_buf_add(g->buf, rec, g->limit, &cause);
	}
	if (rc == FORMAT_ERROR) {
		group_error(g, cause);
		free(cause);
		return;
	}
	free(cause);
	if (rc != FORMAT_OK ||
	    (was_empty && format_buf_size(g->buf) > g->limit)) {
		group_oversize(g);
		return;
	}
	g->records++;
	if (was_empty)
		group_started(g);
}

/* The buffer got its first record: set the send-out going. */
static void
group_started(struct group *g)
{
	switch (g->send) {
	case GROUP_SEND_TIME:
		group_send_join(g);
		break;
	case GROUP_SEND_SIZE:
		if (g->has_idle)
			group_heap_set(g, util_now_ms() + g->idle_ms);
		break;
	case GROUP_SEND_NOW:
		break;
	}
}

/*
 * A record (subscribe mode) or a polling round is in: "immediately"
 * sends now, or when minPublishInterval has passed since the last send.
 */
static void
group_round(struct group *g)
{
	uint64_t	now;

	if (g->send != GROUP_SEND_NOW || format_buf_records(g->buf) == 0)
		return;
	now = util_now_ms();
	if (!g->published || now >= g->last_pub + g->mpi_ms)
		group_send(g);
	else if (g->hidx == 0)
		group_heap_set(g, g->last_pub + g->mpi_ms);
}

/* The buffer is empty: no send-out pending. */
static void
group_idle(struct group *g)
{
	group_send_leave(g);
	group_heap_del(g);
}

/* Hand the buffer to the outbox as one message (if it holds any). */
static void
group_send(struct group *g)
{
	char	*msg;
	size_t	 len;

	if (format_buf_records(g->buf) == 0) {
		group_idle(g);
		return;
	}
	msg = format_buf_take(g->buf, &len);
	group_idle(g);
	g->last_pub = util_now_ms();
	g->published = 1;
	if (group_sent_hook != NULL)
		group_sent_hook(g, g->topic, msg, len, group_sent_arg);
	if (g->target.outbox == NULL || outbox_put(g->target.outbox,
	    g->topic, msg, len, g->target.qos, g->target.retain) == 0)
		g->messages++;
	free(msg);
}

/* The filter failed on a record: count it, log once a minute. */
static void
group_error(struct group *g, const char *cause)
{
	uint64_t	now = util_now_ms();

	g->errors++;
	g->err_unlogged++;
	if (g->err_logged && now - g->err_logged_at < GROUP_LOG_MS)
		return;
	log_warnx("group %s: filter failed count=%" PRIu64 " total=%" PRIu64
	    ": %s", g->name, g->err_unlogged, g->errors,
	    cause != NULL ? cause : "no reason given");
	g->err_logged = 1;
	g->err_logged_at = now;
	g->err_unlogged = 0;
}

/* A record alone is larger than the limit: drop it, log once a minute. */
static void
group_oversize(struct group *g)
{
	uint64_t	 now = util_now_ms();
	size_t		 len = 0;

	free(format_buf_take(g->buf, &len));
	group_idle(g);
	g->dropped++;
	if (g->drop_logged && now - g->drop_logged_at < GROUP_LOG_MS)
		return;
	log_warnx("group %s: record of %zu bytes larger than the message "
	    "size %zu; dropped total=%" PRIu64, g->name, len, g->limit,
	    g->dropped);
	g->drop_logged = 1;
	g->drop_logged_at = now;
}

/* The group's own work begins (it cannot be freed under it). */
static void
group_enter(struct group *g)
{
	g->busy++;
}

/* The group's work ends; free it if that was asked meanwhile. */
static void
group_leave(struct group *g)
{
	if (--g->busy == 0 && g->dead)
		group_destroy(g);
}

/* Cut a group off the hub and the timers. */
static void
group_detach(struct group *g)
{
	struct group_sched	*s = g->sched;
	struct group_period	*p;
	size_t			 i;

	for (i = 0; i < g->ntags; i++) {
		tag_unsubscribe(g->tags[i].sub);
		g->tags[i].sub = NULL;
	}
	if ((p = g->pollp) != NULL) {
		group_poll_leave(g);
		g->pollp = NULL;
		group_period_unref(p);
	}
	if ((p = g->sendp) != NULL) {
		group_send_leave(g);
		g->sendp = NULL;
		group_period_unref(p);
	}
	if (s != NULL) {
		group_heap_del(g);
		s->ngroups--;
		g->sched = NULL;
		group_sched_maybe_free(s);
	}
}

/* Free a detached group's memory. */
static void
group_destroy(struct group *g)
{
	size_t	i;

	for (i = 0; i < g->ntags; i++)
		free(g->tags[i].lbuf);
	free(g->tags);
	format_buf_free(g->buf);
	format_free(g->fmt);
	json_free(g->doc);
	free(g->name);
	free(g);
}

/* A new value of one of the group's tags (subscribe mode). */
static void
group_tag_cb(const struct tag_rec *rec, void *arg)
{
	struct group_tag	*gt = arg;
	struct group		*g = gt->group;

	if (g->changed && !group_changed(gt, &rec->value))
		return;
	group_enter(g);
	group_add(g, rec);
	if (!g->dead)
		group_round(g);
	group_leave(g);
}

/* A polled tag that was missing has a value: keep the tag, not the wait. */
static void
group_found_cb(__attribute__((unused)) const struct tag_rec *rec, void *arg)
{
	struct group_tag	*gt = arg;

	if ((gt->tag = tag_find(gt->prvd, gt->src, gt->name)) == NULL)
		return;
	tag_unsubscribe(gt->sub);
	gt->sub = NULL;
}

/* A period's tick: polling groups sample, then byTime groups send. */
static void
group_period_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct group_period	*p = arg;
	struct group_sched	*s = p->sched;
	struct group		*g;

	p->running = 1;
	for (g = TAILQ_FIRST(&p->polls); g != NULL; g = p->pnext) {
		p->pnext = TAILQ_NEXT(g, poll_entry);
		group_enter(g);
		group_sample(g);
		group_leave(g);
	}
	for (g = TAILQ_FIRST(&p->sends); g != NULL; g = p->snext) {
		p->snext = TAILQ_NEXT(g, send_entry);
		group_enter(g);
		group_send(g);
		group_leave(g);
	}
	p->pnext = p->snext = NULL;
	p->running = 0;
	group_period_update(p);
	group_sched_maybe_free(s);
}

/* Deadlines are due: idle bySize buffers and held messages go out. */
static void
group_heap_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct group_sched	*s = arg;
	struct group		*g;
	uint64_t		 now = util_now_ms();

	s->heap_armed = 0;
	s->running = 1;
	while (s->nheap > 0 && (g = s->heap[0])->deadline <= now) {
		group_heap_del(g);
		group_enter(g);
		group_send(g);
		group_leave(g);
	}
	s->running = 0;
	group_heap_arm(s);
	group_sched_maybe_free(s);
}

/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for message groups (group.c) on a real event loop with the
 * real tag hub, format and outbox: group_validate() (both forms, "_form",
 * defaults, errors naming the field and the rule); subscribe mode gets
 * every value, polling mode the latest; the four sampling modes and
 * customSamplingRate; byTime, bySize (never above the size, FORMAT_FULL
 * splitting, the idle timer, a record too large alone), immediately with
 * minPublishInterval; the 2.2.0 thresholds with time 0 and size 0; a
 * group of 1,000 tags; 100 groups on one polling timer; a tag that
 * appears after the group; enable false; a failing filter counted and
 * logged once; freeing from inside a group's own send; no timer armed
 * while buffers are empty.
 *
 * Every message any group sends is captured with group_set_sent_cb().
 * Filters used: {(.tagName): [.dataValue]}, so a message lists the values
 * of each tag in order.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "group.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "tag.h"
#include "tap.h"
#include "util.h"
#include "xmalloc.h"

#define GROUP_TEST_F	"{(.tagName): [.dataValue]}"
#define GROUP_TEST_FERR	"{(.tagName): [(if .dataValue == 13 then " \
			"error(.tagName) else .dataValue end)]}"
#define GROUP_TEST_MSGS	4096
#define GROUP_TEST_SLACK 5	/* ms of clock granularity allowed */

struct group_test_msg {
	const struct group	*group;
	char			*topic;
	char			*payload;
	size_t			 len;
	uint64_t		 at;		/* monotonic ms */
};

static struct event_base	*group_test_base;
static struct outbox		*group_test_ob;
static struct group_test_msg	 group_test_msgs[GROUP_TEST_MSGS];
static size_t			 group_test_n;
static struct group		*group_test_suicide;

/* metrics.c names HTTP methods; this test links no api.c. */
const char *
api_method_name(__attribute__((unused)) int m)
{
	return ("GET");
}

/* Keep every message sent; free the group marked to go from here. */
static void
group_test_sent_cb(const struct group *g, const char *topic,
    const void *payload, size_t len, __attribute__((unused)) void *arg)
{
	struct group_test_msg	*m;

	if (group_test_n < GROUP_TEST_MSGS) {
		m = &group_test_msgs[group_test_n];
		m->group = g;
		m->topic = xstrdup(topic);
		m->payload = xstrndup(payload, len);
		m->len = len;
		m->at = util_now_ms();
	}
	group_test_n++;
	if (g == group_test_suicide) {
		group_test_suicide = NULL;
		group_free((struct group *)g);
	}
}

/* Forget the captured messages. */
static void
group_test_clear(void)
{
	size_t	i;

	for (i = 0; i < group_test_n && i < GROUP_TEST_MSGS; i++) {
		free(group_test_msgs[i].topic);
		free(group_test_msgs[i].payload);
	}
	group_test_n = 0;
}

/* Messages captured from g. */
static size_t
group_test_count(const struct group *g)
{
	size_t	i, n = 0;

	for (i = 0; i < group_test_n && i < GROUP_TEST_MSGS; i++)
		if (group_test_msgs[i].group == g)
			n++;
	return (n);
}

/* The k-th captured message of g (from 0); NULL if none. */
static struct group_test_msg *
group_test_nth(const struct group *g, size_t k)
{
	size_t	i;

	for (i = 0; i < group_test_n && i < GROUP_TEST_MSGS; i++)
		if (group_test_msgs[i].group == g && k-- == 0)
			return (&group_test_msgs[i]);
	return (NULL);
}

/* Append s to the string in buf (size bytes), cutting it short. */
static void
group_test_append(char *buf, const char *s, size_t size)
{
	size_t	len = strlen(buf);

	snprintf(buf + len, size - len, "%s", s);
}

/* Append the values of member name of a message to buf, comma-separated. */
static void
group_test_cat(char *buf, size_t size, const struct group_test_msg *m,
    const char *name)
{
	struct json	*doc, *a, *v;
	char		*cause = NULL;
	size_t		 i;

	if (m == NULL)
		return;
	if ((doc = json_parse(m->payload, m->len, &cause)) == NULL) {
		printf("#   unparsable message: %s\n", cause);
		free(cause);
		return;
	}
	a = json_get(doc, name);
	for (i = 0; i < json_array_size(a); i++) {
		v = json_array_get(a, i);
		if (*buf != '\0')
			group_test_append(buf, ",", size);
		group_test_append(buf, json_type(v) == JSON_STRING ?
		    json_string(v) : json_number_text(v), size);
	}
	json_free(doc);
}

/* The values of tag name in the k-th message of g ("" if none). */
static const char *
group_test_vals(const struct group *g, size_t k, const char *name)
{
	static char	buf[8192];

	buf[0] = '\0';
	group_test_cat(buf, sizeof buf, group_test_nth(g, k), name);
	return (buf);
}

/* The values of tag name over every message of g. */
static const char *
group_test_allvals(const struct group *g, const char *name)
{
	static char	buf[8192];
	size_t		k, n = group_test_count(g);

	buf[0] = '\0';
	for (k = 0; k < n; k++)
		group_test_cat(buf, sizeof buf, group_test_nth(g, k), name);
	return (buf);
}

/* The largest message of g. */
static size_t
group_test_maxlen(const struct group *g)
{
	size_t	k, n = group_test_count(g), max = 0;

	for (k = 0; k < n; k++)
		if (group_test_nth(g, k)->len > max)
			max = group_test_nth(g, k)->len;
	return (max);
}

/* JSON written with ' for " (easier in C); caller frees. */
static struct json *
group_test_json(const char *text)
{
	struct json	*doc;
	char		*s, *p, *cause = NULL;

	s = xstrdup(text);
	for (p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	if ((doc = json_parse(s, strlen(s), &cause)) == NULL) {
		printf("Bail out! test JSON %s: %s\n", s, cause);
		exit(1);
	}
	free(s);
	return (doc);
}

/* A validated document; caller frees. */
static struct json *
group_test_good(const char *text)
{
	struct json	*doc;
	char		*cause = NULL;

	doc = group_test_json(text);
	if (group_validate(doc, &cause) != 0) {
		printf("Bail out! %s: %s\n", text, cause);
		exit(1);
	}
	return (doc);
}

/* Is the document refused with a message containing want? */
static void
group_test_bad(const char *text, const char *want, const char *what)
{
	struct json	*doc;
	char		*cause = NULL;
	int		 rc;

	doc = group_test_json(text);
	rc = group_validate(doc, &cause);
	if (!tap_ok(rc == -1 && cause != NULL && strstr(cause, want) != NULL,
	    what))
		printf("#   rc %d, cause \"%s\", want \"%s\"\n", rc,
		    cause != NULL ? cause : "(null)", want);
	free(cause);
	json_free(doc);
}

/* A started group of a document; bails out if it does not start. */
static struct group *
group_test_new(const char *name, const char *text)
{
	struct group_target	 t = { group_test_ob, 1, 0 };
	struct json		*doc;
	struct group		*g;
	char			*cause = NULL;

	doc = group_test_good(text);
	if ((g = group_new(group_test_base, name, doc, &t, &cause)) == NULL) {
		printf("Bail out! group %s: %s\n", name, cause);
		exit(1);
	}
	json_free(doc);
	return (g);
}

/* Publish test/src/name = v (int64) or s (string). */
static void
group_test_pub(const char *src, const char *name, int64_t v, const char *s)
{
	struct tag_pub	 pub;
	char		*cause = NULL;

	memset(&pub, 0, sizeof pub);
	pub.prvd = "test";
	pub.src = src;
	pub.name = name;
	pub.has_type = 1;
	if (s != NULL) {
		pub.value.type = TAG_STRING;
		pub.value.s = s;
		pub.value.len = strlen(s);
	} else {
		pub.value.type = TAG_INT64;
		pub.value.n.i = v;
	}
	if (tag_publish(&pub, 1, TAG_ORIGIN_REST, &cause) != 0) {
		printf("Bail out! publish %s: %s\n", name, cause);
		exit(1);
	}
}

/* Let queued tag values reach their subscribers (no timer is due). */
static void
group_test_drain(void)
{
	int	i;

	for (i = 0; i < 4; i++)
		event_base_loop(group_test_base, EVLOOP_NONBLOCK);
}

/* Run the loop for ms milliseconds. */
static void
group_test_run(int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(group_test_base, &tv);
	event_base_dispatch(group_test_base);
}

/* libevent events pending on the loop (armed timers among them). */
static int
group_test_armed(void)
{
	return (event_base_get_num_events(group_test_base,
	    EVENT_BASE_COUNT_ADDED));
}

/* Both forms: detection, defaults, read-only fields. */
static void
group_test_forms(void)
{
	struct json	*d;
	static const char *const v24[] = {
		"'customSamplingRate':false",
		"'minPublishInterval':0",
		"'description':'x'",
		"'sendOutThreshold':{'mode':'byTime'}",
		"'sendOutThreshold':{'sizeIdleTimer':{'enable':false}}",
		NULL
	};
	const char *const *p;
	char		 text[512], what[160];

	d = group_test_good("{'id':7,'enable':true,'tags':{'p':{'s':['a']}}}");
	tap_is_str(json_get_string(d, "_form"), "v20",
	    "a body without 2.4.0 members is the 2.2.0 form");
	tap_is_str(json_get_string(d, "outputTopic"), "sample",
	    "v20: outputTopic defaults to sample");
	tap_ok(json_int(json_get(d, "pollingInterval")) == 0 &&
	    json_int(json_get_path(d, "sendOutThreshold.size")) == 4096 &&
	    json_int(json_get_path(d, "sendOutThreshold.time")) == 60,
	    "v20: pollingInterval 0, size 4096, time 60 by default");
	tap_ok(json_get_string(d, "format") != NULL &&
	    *json_get_string(d, "format") == '\0' &&
	    json_array_size(json_get(d, "properties")) == 0,
	    "v20: format \"\" and no properties by default");
	tap_ok(json_get(d, "samplingMode") == NULL &&
	    json_get(d, "onChange") == NULL &&
	    json_get_path(d, "sendOutThreshold.mode") == NULL,
	    "v20: no 2.4.0 member is added");
	tap_ok(json_get(d, "id") == NULL, "id is read-only: dropped");
	json_free(d);

	d = group_test_good("{'enable':false,'samplingMode':'latestValues',"
	    "'tags':{}}");
	tap_is_str(json_get_string(d, "_form"), "v24",
	    "samplingMode makes the 2.4.0 form");
	tap_ok(strcmp(json_get_string(json_get(d, "sendOutThreshold"),
	    "mode"), "byTime") == 0 &&
	    json_int(json_get_path(d, "sendOutThreshold.time")) == 60 &&
	    json_int(json_get_path(d, "sendOutThreshold.size")) == 4096,
	    "v24: byTime, time 60, size 4096 by default");
	tap_ok(json_bool(json_get_path(d,
	    "sendOutThreshold.sizeIdleTimer.enable")) &&
	    json_int(json_get_path(d, "sendOutThreshold.sizeIdleTimer.time"))
	    == 60, "v24: sizeIdleTimer enable true, time 60 by default");
	tap_ok(json_type(json_get(d, "customSamplingRate")) == JSON_BOOL &&
	    !json_bool(json_get(d, "customSamplingRate")) &&
	    json_int(json_get(d, "minPublishInterval")) == 0 &&
	    json_int(json_get(d, "pollingInterval")) == 0,
	    "v24: customSamplingRate false, minPublishInterval 0, "
	    "pollingInterval 0 by default");
	tap_ok(json_type(json_get(d, "onChange")) == JSON_BOOL &&
	    !json_bool(json_get(d, "onChange")),
	    "v24: onChange false for latestValues");
	json_free(d);

	d = group_test_good("{'enable':true,'description':'d','onChange':false,"
	    "'tags':{}}");
	tap_is_str(json_get_string(d, "samplingMode"), "allChangedValues",
	    "v24: samplingMode defaults to allChangedValues");
	tap_ok(json_bool(json_get(d, "onChange")),
	    "v24: onChange is read-only and true for a Changed mode");
	json_free(d);

	for (p = v24; *p != NULL; p++) {
		snprintf(text, sizeof text, "{'enable':true,'tags':{},%s}", *p);
		d = group_test_good(text);
		snprintf(what, sizeof what, "%s makes the 2.4.0 form", *p);
		tap_is_str(json_get_string(d, "_form"), "v24", what);
		json_free(d);
	}

	d = group_test_good("{'enable':true,'tags':{},'_form':'v24',"
	    "'sendOutThreshold':{'size':0,'time':0}}");
	tap_is_str(json_get_string(d, "_form"), "v20",
	    "{size, time} alone stays 2.2.0; a client's _form is ignored");
	json_free(d);
}

/* Errors name the field and the rule. */
static void
group_test_errors(void)
{
	char	*big, *text, *cause = NULL;
	struct group_target t = { NULL, 0, 0 };
	struct json *d;

	group_test_bad("{'tags':{}}", "enable: is required",
	    "enable is required");
	group_test_bad("{'enable':'yes','tags':{}}",
	    "enable: must be a boolean", "enable must be a boolean");
	group_test_bad("{'enable':true}", "tags: is required",
	    "tags is required");
	group_test_bad("{'enable':true,'tags':{'p':{'s':'a'}}}",
	    "tags.p.s: must be an array", "a source maps to an array");
	group_test_bad("{'enable':true,'tags':{'p':{'s':['a','']}}}",
	    "tags.p.s[1]: must be 1 to 255 characters long",
	    "an empty tag name is refused");
	big = xmalloc(4200);
	memset(big, 'x', 4199);
	big[4199] = '\0';
	big[256] = '\0';
	xasprintf(&text, "{'enable':true,'tags':{'p':{'s':['%s']}}}", big);
	group_test_bad(text, "tags.p.s[0]: must be 1 to 255 characters long",
	    "a 256-character tag name is refused");
	free(text);
	group_test_bad("{'enable':true,'tags':{},'pollingInterval':86401}",
	    "pollingInterval: must be an integer from 0 to 86400, not 86401",
	    "pollingInterval above 86400");
	group_test_bad("{'enable':true,'tags':{},'pollingInterval':-1}",
	    "pollingInterval: must be an integer from 0 to 86400",
	    "pollingInterval below 0");
	group_test_bad("{'enable':true,'tags':{},'sendOutThreshold':"
	    "{'size':262145}}", "sendOutThreshold.size: must be an integer "
	    "from 0 to 262144", "v20 size above 262144");
	group_test_bad("{'enable':true,'tags':{},'sendOutThreshold':"
	    "{'time':86401}}", "sendOutThreshold.time: must be an integer "
	    "from 0 to 86400", "v20 time above 86400");
	group_test_bad("{'enable':true,'tags':{},'samplingMode':'sometimes'}",
	    "samplingMode: must be one of allValues, latestValues, "
	    "allChangedValues, latestChangedValues", "samplingMode enum");
	group_test_bad("{'enable':true,'tags':{},'sendOutThreshold':"
	    "{'mode':'bySpeed'}}", "sendOutThreshold.mode: must be one of "
	    "byTime, bySize, immediately", "sendOutThreshold.mode enum");
	group_test_bad("{'enable':true,'tags':{},'minPublishInterval':61}",
	    "minPublishInterval: must be an integer from 0 to 60",
	    "minPublishInterval above 60");
	group_test_bad("{'enable':true,'tags':{},'sendOutThreshold':"
	    "{'mode':'bySize','sizeIdleTimer':{'time':86401}}}",
	    "sendOutThreshold.sizeIdleTimer.time: must be an integer from 0 "
	    "to 86400", "sizeIdleTimer.time above 86400");
	group_test_bad("{'enable':true,'tags':{},'customSamplingRate':1}",
	    "customSamplingRate: must be a boolean",
	    "customSamplingRate must be a boolean");
	memset(big, 'x', 4199);
	big[1025] = '\0';
	xasprintf(&text, "{'enable':true,'tags':{},'description':'%s'}", big);
	group_test_bad(text, "description: must be at most 1024 characters",
	    "description longer than 1024");
	free(text);
	memset(big, 'x', 4199);
	big[4097] = '\0';
	xasprintf(&text, "{'enable':true,'tags':{},'format':'%s'}", big);
	group_test_bad(text, "format: must be at most 4096 characters",
	    "format longer than 4096");
	free(text);
	free(big);
	group_test_bad("{'enable':true,'tags':{},'outputTopic':''}",
	    "outputTopic: must be 1 to 65535 characters long",
	    "an empty outputTopic is refused");
	group_test_bad("{'enable':true,'tags':{},'outputTopic':'a/+/b'}",
	    "outputTopic: must not contain the MQTT wildcards",
	    "an outputTopic with a wildcard is refused");
	group_test_bad("{'enable':true,'tags':{},'properties':[{'key':'k'}]}",
	    "properties[0].value: is required",
	    "a property needs a value");
	group_test_bad("{'enable':true,'tags':{},'properties':"
	    "[{'key':'','value':'v'}]}", "properties[0].key: must be 1 to",
	    "a property key must not be empty");
	group_test_bad("{'enable':true,'tags':{},'format':'{(((.a'}",
	    "format: ", "a filter that does not compile: \"format: <jq's "
	    "message>\"");

	d = group_test_json("{'enable':true,'tags':{},'format':'{(((.a'}");
	tap_ok(group_new(group_test_base, "bad", d, &t, &cause) == NULL &&
	    cause != NULL && strncmp(cause, "format: ", 8) == 0,
	    "group_new refuses a filter that does not compile");
	free(cause);
	json_free(d);
}

/* Subscribe mode, immediately (2.2.0 time 0): every value, one each. */
static void
group_test_subscribe(void)
{
	struct group	*g;
	size_t		 q0 = outbox_queued(group_test_ob);

	g = group_test_new("sub", "{'enable':true,'outputTopic':'t/sub',"
	    "'format':'" GROUP_TEST_F "','tags':{'test':{'a':['x']}},"
	    "'pollingInterval':0,'sendOutThreshold':{'size':0,'time':0}}");
	group_test_pub("a", "x", 1, NULL);
	group_test_drain();
	group_test_pub("a", "x", 2, NULL);
	group_test_pub("a", "x", 3, NULL);
	group_test_drain();
	tap_is_int(group_test_count(g), 3, "subscribe mode: a message per "
	    "value with v20 time 0");
	tap_ok(strcmp(group_test_vals(g, 0, "x"), "1") == 0 &&
	    strcmp(group_test_vals(g, 1, "x"), "2") == 0 &&
	    strcmp(group_test_vals(g, 2, "x"), "3") == 0,
	    "subscribe mode: every value, in order");
	tap_is_str(group_test_nth(g, 0)->topic, "t/sub",
	    "messages go to outputTopic");
	tap_is_int(outbox_queued(group_test_ob) - q0, 3,
	    "the messages are in the outbox");
	tap_ok(group_records(g) == 3 && group_messages(g) == 3,
	    "records and messages counted");
	group_free(g);
	group_test_clear();
}

/* Sampling modes side by side on one tag. */
static void
group_test_sampling(void)
{
	struct group	*all, *allch, *lat, *latch, *cust, *custch, *str;

	all = group_test_new("all", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'m':"
	    "['v']}},'sendOutThreshold':{'mode':'immediately'}}");
	allch = group_test_new("allch", "{'enable':true,'samplingMode':"
	    "'allChangedValues','format':'" GROUP_TEST_F "','tags':{'test':"
	    "{'m':['v']}},'sendOutThreshold':{'mode':'immediately'}}");
	lat = group_test_new("lat", "{'enable':true,'samplingMode':"
	    "'latestValues','format':'" GROUP_TEST_F "','tags':{'test':{'m':"
	    "['v']}},'sendOutThreshold':{'mode':'byTime','time':1}}");
	latch = group_test_new("latch", "{'enable':true,'samplingMode':"
	    "'latestChangedValues','format':'" GROUP_TEST_F "','tags':"
	    "{'test':{'m':['v']}},'sendOutThreshold':{'mode':'byTime',"
	    "'time':1}}");
	cust = group_test_new("cust", "{'enable':true,'samplingMode':"
	    "'allValues','customSamplingRate':true,'pollingInterval':1,"
	    "'format':'" GROUP_TEST_F "','tags':{'test':{'m':['v']}},"
	    "'sendOutThreshold':{'mode':'immediately'}}");
	custch = group_test_new("custch", "{'enable':true,'samplingMode':"
	    "'allChangedValues','customSamplingRate':true,"
	    "'pollingInterval':1,'format':'" GROUP_TEST_F "','tags':{'test':"
	    "{'m':['v']}},'sendOutThreshold':{'mode':'immediately'}}");
	str = group_test_new("str", "{'enable':true,'format':'" GROUP_TEST_F
	    "','tags':{'test':{'m':['s']}},'sendOutThreshold':"
	    "{'mode':'immediately'}}");

	group_test_pub("m", "v", 5, NULL);
	group_test_pub("m", "v", 5, NULL);
	group_test_pub("m", "v", 6, NULL);
	group_test_pub("m", "v", 6, NULL);
	group_test_pub("m", "v", 5, NULL);
	group_test_pub("m", "s", 0, "a");
	group_test_pub("m", "s", 0, "a");
	group_test_pub("m", "s", 0, "b");
	group_test_drain();
	tap_is_str(group_test_allvals(all, "v"), "5,5,6,6,5",
	    "allValues: every published value");
	tap_is_str(group_test_allvals(allch, "v"), "5,6,5",
	    "allChangedValues: every value that differs from the last");
	tap_is_str(group_test_allvals(str, "s"), "a,b",
	    "allChangedValues compares strings too");
	tap_ok(group_test_count(lat) == 0 && group_test_count(latch) == 0 &&
	    group_test_count(cust) == 0, "latest modes wait for the tick");

	group_test_run(1300);
	tap_ok(group_test_count(lat) == 1 &&
	    strcmp(group_test_vals(lat, 0, "v"), "5") == 0,
	    "latestValues: the latest value, sent on the sampling tick");
	tap_ok(group_test_count(latch) == 1 &&
	    strcmp(group_test_vals(latch, 0, "v"), "5") == 0,
	    "latestChangedValues: the latest value at the first tick");
	tap_ok(group_test_count(cust) == 1 &&
	    strcmp(group_test_vals(cust, 0, "v"), "5") == 0,
	    "allValues with customSamplingRate: the latest every "
	    "pollingInterval");

	group_test_run(1000);
	tap_ok(group_test_count(lat) == 2 &&
	    strcmp(group_test_vals(lat, 1, "v"), "5") == 0,
	    "latestValues: the same latest value again next period");
	tap_is_int(group_test_count(latch), 1,
	    "latestChangedValues: nothing when the value did not change");
	tap_ok(group_test_count(cust) == 2 && group_test_count(custch) == 1,
	    "customSamplingRate: allValues samples again, allChangedValues "
	    "does not");

	group_test_pub("m", "v", 9, NULL);
	group_test_drain();
	group_test_run(1000);
	tap_ok(group_test_count(latch) == 2 &&
	    strcmp(group_test_vals(latch, 1, "v"), "9") == 0,
	    "latestChangedValues: the changed value next period");
	tap_ok(group_test_count(custch) == 2 &&
	    strcmp(group_test_vals(custch, 1, "v"), "9") == 0,
	    "allChangedValues with customSamplingRate: the change");
	tap_is_str(group_test_allvals(all, "v"), "5,5,6,6,5,9",
	    "allValues got the new value at once");

	group_free(all);
	group_free(allch);
	group_free(lat);
	group_free(latch);
	group_free(cust);
	group_free(custch);
	group_free(str);
	tap_is_int(group_timer_count(), 0, "no timer left after the groups");
	group_test_clear();
}

/* byTime, bySize, the idle timer, immediately with minPublishInterval. */
static void
group_test_sendout(void)
{
	struct group		*tm, *sz, *idle, *mpi, *tiny, *v20t;
	struct group_test_msg	*m0, *m1, *m2;
	char			 want[256], n[16];
	int			 armed0, i;

	tm = group_test_new("bytime", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'s':"
	    "['a']}},'sendOutThreshold':{'mode':'byTime','time':1}}");
	sz = group_test_new("bysize", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'s':"
	    "['b']}},'sendOutThreshold':{'mode':'bySize','size':40,"
	    "'sizeIdleTimer':{'enable':false}}}");
	idle = group_test_new("idle", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'s':"
	    "['c']}},'sendOutThreshold':{'mode':'bySize','size':1000,"
	    "'sizeIdleTimer':{'enable':true,'time':1}}}");
	mpi = group_test_new("mpi", "{'enable':true,'samplingMode':"
	    "'allValues','minPublishInterval':1,'format':'" GROUP_TEST_F
	    "','tags':{'test':{'s':['d']}},'sendOutThreshold':"
	    "{'mode':'immediately'}}");
	tiny = group_test_new("tiny", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'s':"
	    "['e']}},'sendOutThreshold':{'mode':'bySize','size':5}}");
	v20t = group_test_new("v20t", "{'enable':true,'format':'" GROUP_TEST_F
	    "','tags':{'test':{'s':['f']}},'sendOutThreshold':{'size':0,"
	    "'time':1}}");
	armed0 = group_test_armed();

	for (i = 1; i <= 5; i++)
		group_test_pub("s", "a", i, NULL);
	for (i = 1; i <= 20; i++)
		group_test_pub("s", "b", i, NULL);
	group_test_pub("s", "c", 1, NULL);
	group_test_pub("s", "c", 2, NULL);
	group_test_pub("s", "d", 1, NULL);
	group_test_pub("s", "e", 123456, NULL);
	for (i = 1; i <= 200; i++)
		group_test_pub("s", "f", i, NULL);
	group_test_drain();
	group_test_pub("s", "d", 2, NULL);
	group_test_drain();
	group_test_pub("s", "d", 3, NULL);
	group_test_drain();

	tap_ok(group_test_count(tm) == 0 && group_records(tm) == 5,
	    "byTime: records wait in the buffer");
	tap_ok(group_test_armed() > armed0,
	    "a timer is armed once buffers hold records");
	tap_ok(group_test_count(sz) >= 1, "bySize: a full buffer goes out");
	tap_ok(group_test_maxlen(sz) <= 40 && group_test_maxlen(sz) > 20,
	    "bySize: no message is larger than size");
	tap_is_int(group_test_count(idle), 0,
	    "bySize: a buffer below size waits");
	tap_ok(group_test_count(mpi) == 1 &&
	    strcmp(group_test_vals(mpi, 0, "d"), "1") == 0,
	    "immediately: the first value goes out at once");
	tap_ok(group_test_count(tiny) == 0 && group_dropped(tiny) == 1 &&
	    group_records(tiny) == 0,
	    "a record larger than size on its own is dropped and counted");

	group_test_run(1300);
	tap_ok(group_test_count(tm) == 1 &&
	    strcmp(group_test_vals(tm, 0, "a"), "1,2,3,4,5") == 0,
	    "byTime: the buffer goes out after time s, merged");
	tap_ok(group_test_count(idle) == 1 &&
	    strcmp(group_test_vals(idle, 0, "c"), "1,2") == 0,
	    "bySize: the idle timer sends after sizeIdleTimer.time s");
	m0 = group_test_nth(mpi, 0);
	m1 = group_test_nth(mpi, 1);
	tap_ok(group_test_count(mpi) == 2 && m1 != NULL &&
	    strcmp(group_test_vals(mpi, 1, "d"), "2,3") == 0,
	    "immediately: values held by minPublishInterval go out merged");
	if (!tap_ok(m1 != NULL && m1->at - m0->at + GROUP_TEST_SLACK >= 1000,
	    "immediately: no two publishes closer than minPublishInterval"))
		printf("#   %" PRIu64 " ms apart\n", m1 != NULL ?
		    m1->at - m0->at : 0);
	tap_ok(group_test_count(v20t) == 1 && group_records(v20t) == 200,
	    "v20 size 0: one message however large, by time");

	group_test_pub("s", "d", 4, NULL);
	group_test_drain();
	tap_is_int(group_test_count(mpi), 2,
	    "immediately: a value within the interval of the held send waits");
	group_test_run(1000);
	m1 = group_test_nth(mpi, 1);
	m2 = group_test_nth(mpi, 2);
	tap_ok(m2 != NULL && strcmp(group_test_vals(mpi, 2, "d"), "4") == 0 &&
	    m2->at - m1->at + GROUP_TEST_SLACK >= 1000,
	    "immediately: it goes out minPublishInterval after the last");

	tap_ok(group_test_count(sz) < 20, "bySize: records merge");
	group_flush(sz);
	want[0] = '\0';
	for (i = 1; i <= 20; i++) {
		snprintf(n, sizeof n, "%s%d", i == 1 ? "" : ",", i);
		group_test_append(want, n, sizeof want);
	}
	tap_is_str(group_test_allvals(sz, "b"), want,
	    "bySize: split messages carry every record once, in order");
	tap_ok(group_test_count(sz) >= 2 && group_test_maxlen(sz) <= 40,
	    "bySize: still no message larger than size after the flush");
	tap_is_int(group_test_armed(), armed0,
	    "no timer is armed while every buffer is empty");

	group_free(tm);
	group_free(sz);
	group_free(idle);
	group_free(mpi);
	group_free(tiny);
	group_free(v20t);
	group_test_clear();
}

/* 2.2.0: polling the latest, time 0, a size that splits a round. */
static void
group_test_v20(void)
{
	struct group	*poll, *split;
	char		 text[1024], tags[512], n[16], all[512];
	size_t		 k, vals;
	int		 i;

	poll = group_test_new("poll", "{'enable':true,'format':'" GROUP_TEST_F
	    "','tags':{'test':{'p':['x']}},'pollingInterval':1,"
	    "'sendOutThreshold':{'size':4096,'time':0}}");
	tags[0] = '\0';
	for (i = 0; i < 10; i++) {
		snprintf(n, sizeof n, "%s'r%d'", i == 0 ? "" : ",", i);
		group_test_append(tags, n, sizeof tags);
		snprintf(n, sizeof n, "r%d", i);
		group_test_pub("p", n, 100 + i, NULL);
	}
	snprintf(text, sizeof text, "{'enable':true,'format':'" GROUP_TEST_F
	    "','tags':{'test':{'p':[%s]}},'pollingInterval':1,"
	    "'sendOutThreshold':{'size':30,'time':0}}", tags);
	split = group_test_new("split", text);
	group_test_pub("p", "x", 1, NULL);
	group_test_pub("p", "x", 2, NULL);
	group_test_pub("p", "x", 3, NULL);
	group_test_drain();
	tap_is_int(group_test_count(poll), 0,
	    "polling: nothing before the first tick");
	group_test_run(1300);
	tap_ok(group_test_count(poll) == 1 &&
	    strcmp(group_test_vals(poll, 0, "x"), "3") == 0,
	    "polling: the latest value at the tick");
	tap_ok(group_test_count(split) >= 2 && group_test_maxlen(split) <= 30,
	    "v20 time 0: a sampling round split by size, none above it");
	vals = 0;
	for (k = 0; k < group_test_count(split); k++) {
		for (i = 0; i < 10; i++) {
			snprintf(n, sizeof n, "r%d", i);
			all[0] = '\0';
			group_test_cat(all, sizeof all, group_test_nth(split,
			    k), n);
			if (*all != '\0')
				vals++;
		}
	}
	tap_is_int(vals, 10, "v20 time 0: every tag of the round sent once");
	group_test_run(1000);
	tap_ok(group_test_count(poll) == 2 &&
	    strcmp(group_test_vals(poll, 1, "x"), "3") == 0,
	    "polling: the latest value again next period");
	group_free(poll);
	group_free(split);
	group_test_clear();
}

/* A group of 1,000 tags; 100 groups on one timer. */
static void
group_test_many(void)
{
	struct group	*big, *gs[100];
	struct json	*doc;
	struct group_test_msg *m;
	char		*text, name[16], *cause = NULL;
	size_t		 len, i, k, sum;
	uint64_t	 first, last;
	int		 good;

	len = 200 + 1000 * 10;
	text = xmalloc(len);
	snprintf(text, len, "{'enable':true,'format':'" GROUP_TEST_F "','tags':"
	    "{'test':{'k':[");
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "%s't%zu'", i == 0 ? "" : ",", i);
		group_test_append(text, name, len);
		snprintf(name, sizeof name, "t%zu", i);
		group_test_pub("k", name, i, NULL);
	}
	group_test_append(text, "]}},'pollingInterval':1,'sendOutThreshold':"
	    "{'size':0,'time':1}}", len);
	big = group_test_new("big", text);
	free(text);
	tap_is_int(group_timer_count(), 1, "a 1,000-tag group: one timer");
	group_test_run(1300);
	tap_ok(group_test_count(big) == 1 && group_records(big) == 1000,
	    "a 1,000-tag group: one message of 1,000 records");
	doc = group_test_count(big) == 0 ? NULL :
	    json_parse(group_test_nth(big, 0)->payload,
	    group_test_nth(big, 0)->len, &cause);
	free(cause);
	tap_ok(json_object_size(doc) == 1000 &&
	    strcmp(json_number_text(json_array_get(json_get(doc, "t999"), 0)),
	    "999") == 0, "a 1,000-tag group: every tag in the message");
	json_free(doc);
	group_free(big);
	group_test_clear();

	group_test_pub("h", "x", 42, NULL);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "g%zu", i);
		gs[i] = group_test_new(name, "{'enable':true,'format':'',"
		    "'tags':{'test':{'h':['x']}},'pollingInterval':1,"
		    "'sendOutThreshold':{'size':4096,'time':1}}");
	}
	tap_is_int(group_timer_count(), 1,
	    "100 groups polling every second share one timer");
	group_test_run(1300);
	/* However long making them took, each tick serves every group. */
	k = group_test_count(gs[0]);
	good = k >= 1;
	sum = 0;
	first = last = group_test_nth(gs[0], 0) != NULL ?
	    group_test_nth(gs[0], 0)->at : 0;
	for (i = 0; i < 100; i++) {
		good &= group_test_count(gs[i]) == k;
		sum += group_messages(gs[i]);
		if ((m = group_test_nth(gs[i], 0)) == NULL)
			continue;
		if (m->at < first)
			first = m->at;
		if (m->at > last)
			last = m->at;
	}
	if (!tap_ok(good && last - first < 100,
	    "100 groups: each sampled and sent on the shared tick"))
		printf("#   %zu messages each, %" PRIu64 " ms apart\n", k,
		    last - first);
	tap_is_int(sum, 100 * k, "100 groups: their messages in the outbox");
	m = group_test_nth(gs[0], 0);
	doc = m == NULL ? NULL : json_parse(m->payload, m->len, &cause);
	free(cause);
	cause = NULL;
	tap_ok(json_array_size(json_get_path(doc, "tags.test.h.x.values")) ==
	    1 && strcmp(json_number_text(json_get_path(json_array_get(
	    json_get_path(doc, "tags.test.h.x.values"), 0), "value")), "42") ==
	    0, "format \"\": the vendor's default message");
	json_free(doc);
	for (i = 0; i < 100; i++)
		group_free(gs[i]);
	tap_is_int(group_timer_count(), 0, "the shared timer goes with the "
	    "last group");
	group_test_clear();
}

/* Tags that appear later, duplicates, enable false. */
static void
group_test_late(void)
{
	struct group	*sub, *poll, *off, *dup;
	int		 timers;

	sub = group_test_new("latesub", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'late':"
	    "['x']}},'sendOutThreshold':{'mode':'immediately'}}");
	poll = group_test_new("latepoll", "{'enable':true,'format':'"
	    GROUP_TEST_F "','tags':{'test':{'late':['y']}},"
	    "'pollingInterval':1,'sendOutThreshold':{'size':0,'time':0}}");
	dup = group_test_new("dup", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'late':"
	    "['z','z','x2','z']}},'sendOutThreshold':{'mode':'immediately'}}");
	timers = group_timer_count();
	off = group_test_new("off", "{'enable':false,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'late':"
	    "['x','y']}},'pollingInterval':1,'sendOutThreshold':"
	    "{'mode':'immediately'}}");
	tap_is_int(group_timer_count(), timers,
	    "enable false: the group takes no timer");
	tap_ok(tag_find("test", "late", "x") == NULL &&
	    tag_find("test", "late", "y") == NULL,
	    "the tags do not exist when the groups are made");
	group_test_pub("late", "x", 11, NULL);
	group_test_pub("late", "y", 12, NULL);
	group_test_pub("late", "z", 13, NULL);
	group_test_drain();
	tap_ok(group_test_count(sub) == 1 &&
	    strcmp(group_test_vals(sub, 0, "x"), "11") == 0,
	    "subscribe mode picks up a tag that appears later");
	tap_ok(group_test_count(dup) == 1 && group_records(dup) == 1 &&
	    strcmp(group_test_vals(dup, 0, "z"), "13") == 0,
	    "a tag listed three times is taken once");
	group_test_run(1300);
	tap_ok(group_test_count(poll) == 1 &&
	    strcmp(group_test_vals(poll, 0, "y"), "12") == 0,
	    "polling mode picks up a tag that appears later");
	tap_ok(group_test_count(off) == 0 && group_records(off) == 0 &&
	    group_messages(off) == 0, "enable false: the group does nothing");
	group_flush(off);
	tap_is_int(group_test_count(off), 0, "enable false: flush sends "
	    "nothing");
	group_free(sub);
	group_free(poll);
	group_free(dup);
	group_free(off);
	group_test_clear();
}

/* A filter failing on some records; freeing from inside a send. */
static void
group_test_failures(void)
{
	struct group	*err, *self, *held;
	char		 buf[8192];
	const char	*p;
	FILE		*log;
	size_t		 n;
	int		 saved, lines = 0, armed0;

	err = group_test_new("failing", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_FERR "','tags':{'test':"
	    "{'err':['x']}},'sendOutThreshold':{'mode':'immediately'}}");
	fflush(stderr);
	saved = dup(2);
	log = tmpfile();
	dup2(fileno(log), 2);
	group_test_pub("err", "x", 12, NULL);
	group_test_pub("err", "x", 13, NULL);
	group_test_pub("err", "x", 14, NULL);
	group_test_pub("err", "x", 13, NULL);
	group_test_pub("err", "x", 13, NULL);
	group_test_drain();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(log);
	n = fread(buf, 1, sizeof buf - 1, log);
	buf[n] = '\0';
	fclose(log);
	for (p = buf; (p = strstr(p, "filter failed")) != NULL; p++)
		lines++;
	tap_is_int(group_filter_errors(err), 3, "filter errors counted");
	tap_ok(group_records(err) == 2 &&
	    strcmp(group_test_allvals(err, "x"), "12,14") == 0,
	    "the group goes on after a filter error");
	if (!tap_is_int(lines, 1, "filter errors logged once a minute"))
		printf("#   log: %s\n", buf);
	tap_ok(strstr(buf, "group failing") != NULL &&
	    strstr(buf, "count=1") != NULL,
	    "the log line names the group and the count");
	group_free(err);
	group_test_clear();

	self = group_test_new("self", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'self':"
	    "['x']}},'sendOutThreshold':{'mode':'immediately'}}");
	group_test_suicide = self;
	group_test_pub("self", "x", 1, NULL);
	group_test_pub("self", "x", 2, NULL);
	group_test_drain();
	tap_ok(group_test_n == 1 && group_test_suicide == NULL,
	    "a group freed inside its own send stops at once");
	group_test_clear();

	armed0 = group_test_armed();
	held = group_test_new("held", "{'enable':true,'samplingMode':"
	    "'allValues','format':'" GROUP_TEST_F "','tags':{'test':{'self':"
	    "['x']}},'sendOutThreshold':{'mode':'byTime','time':5}}");
	group_test_pub("self", "x", 3, NULL);
	group_test_drain();
	tap_ok(group_test_armed() == armed0 + 1 && group_timer_count() == 1,
	    "byTime with records: one timer armed");
	group_free(held);
	tap_ok(group_test_armed() == armed0 && group_timer_count() == 0,
	    "freeing a group with records disarms and frees its timer");
	tap_is_int(group_test_n, 0, "group_free does not send");
	group_test_clear();
}

int
main(void)
{
	log_init(1, LOG_LEVEL_WARN);
	if ((group_test_base = event_base_new()) == NULL) {
		printf("Bail out! event_base_new\n");
		return (1);
	}
	metrics_init();
	tag_init(group_test_base);
	group_test_ob = outbox_new("test", 100000, 256 * 1024 * 1024);
	group_set_sent_cb(group_test_sent_cb, NULL);

	group_test_forms();
	group_test_errors();
	group_test_subscribe();
	group_test_sampling();
	group_test_sendout();
	group_test_v20();
	group_test_many();
	group_test_late();
	group_test_failures();
	tap_is_int(group_timer_count(), 0, "no group timer is left");

	group_set_sent_cb(NULL, NULL);
	outbox_free(group_test_ob);
	tag_free();
	event_base_free(group_test_base);
	metrics_free();
	return (tap_done());
}

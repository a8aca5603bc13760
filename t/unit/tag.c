/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the tag hub (tag.c and tag_ingest.c) on a real event
 * loop: the registry (placeholders stay invisible, ids are stable and
 * unique, 100,000 tags are found again), publishing (a batch is applied
 * whole or not at all; types, names and values are checked; strings and
 * raw bytes are kept byte for byte), the value parser and printer at the
 * 64-bit and float edges, the JSON fast path, the fan-out (never inside
 * the producer's call, every value in order and as it was published,
 * unsubscribing from a callback, the queue cap) and origin writers.
 */

#include <float.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "tag.h"
#include "tap.h"
#include "util.h"

#define TAG_TEST_NBIG		100000
#define TAG_TEST_NSRC		64
#define TAG_TEST_NORDER		10000
#define TAG_TEST_QMAX		(1 << 20)	/* TAG_QUEUE_MAX in tag.c */
#define TAG_TEST_QOVER		10
#define TAG_TEST_BATCH		1024
#define TAG_TEST_QPROBE		65536		/* values timed, then judged */
#define TAG_TEST_QBUDGET	5.0		/* seconds the cap may take */
#define TAG_TEST_NSTR		4

/* What a subscriber saw. */
struct tag_test_got {
	int		 n;
	int		 ordered;		/* each value the last + 1 */
	uint64_t	 first;
	uint64_t	 last;
	uint32_t	 id;
	int64_t		 ts;
	char		 name[64];
	char		 unit[16];
	char		 s[TAG_TEST_NSTR][32];	/* the first string values */
	uint32_t	 len[TAG_TEST_NSTR];
	struct tag_sub	*self;			/* unsubscribed on a call */
	struct tag_sub	*other;			/* likewise */
};

/* A token for tag_value_parse() and what must come of it. */
struct tag_test_case {
	enum tag_type	 type;
	enum tag_tok	 kind;
	const char	*text;
	const char	*json;		/* printed back; NULL: refused */
};

/* What a writer saw. */
struct tag_test_writer {
	int		 calls;
	int		 fail;
	void		*arg;
	char		 name[64];
	enum tag_type	 type;
	uint64_t	 u;
};

static int	tag_test_publishing;	/* inside tag_publish() */
static int	tag_test_reentered;	/* a subscriber ran in there */

/* metrics.c names HTTP methods; this test links no api.c. */
const char *
api_method_name(__attribute__((unused)) int m)
{
	return ("GET");
}

/* Seconds since an arbitrary start. */
static double
tag_test_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* The value of one metrics line (name with labels); -1 if missing. */
static long long
tag_test_metric(const char *name)
{
	char		*text, *p;
	size_t		 len, nlen = strlen(name);
	long long	 v = -1;

	text = metrics_render(&len);
	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ') {
			v = strtoll(p + nlen + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return (v);
}

/* Run the loop until the fan-out queue is empty; the turns it took. */
static int
tag_test_drain(struct event_base *base)
{
	int	turns = 0;

	while (tag_test_metric("uplinkd_tag_fanout_queue") > 0 &&
	    turns < 100000) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		turns++;
	}
	return (turns);
}

/* Start a fresh record of deliveries. */
static void
tag_test_got_init(struct tag_test_got *g)
{
	memset(g, 0, sizeof *g);
	g->ordered = 1;
}

/* Note a delivered value; unsubscribe what the test asked for. */
static void
tag_test_cb(const struct tag_rec *rec, void *arg)
{
	struct tag_test_got	*g = arg;
	int			 k = g->n;

	if (tag_test_publishing)
		tag_test_reentered = 1;
	if (k == 0)
		g->first = rec->value.n.u;
	else if (rec->value.n.u != g->last + 1)
		g->ordered = 0;
	g->last = rec->value.n.u;
	if (k < TAG_TEST_NSTR && rec->value.s != NULL &&
	    rec->value.len <= sizeof g->s[k]) {
		memcpy(g->s[k], rec->value.s, rec->value.len);
		g->len[k] = rec->value.len;
	}
	g->id = rec->id;
	g->ts = rec->ts;
	snprintf(g->name, sizeof g->name, "%s", rec->name);
	snprintf(g->unit, sizeof g->unit, "%s", rec->unit);
	g->n++;
	if (g->self != NULL) {
		tag_unsubscribe(g->self);
		g->self = NULL;
	}
	if (g->other != NULL) {
		tag_unsubscribe(g->other);
		g->other = NULL;
	}
}

/* A write path that notes the call; fails if asked to. */
static int
tag_test_write_cb(const struct tag_rec *rec, void *arg, char **cause)
{
	struct tag_test_writer	*w = arg;

	w->calls++;
	w->arg = arg;
	snprintf(w->name, sizeof w->name, "%s/%s/%s", rec->prvd, rec->src,
	    rec->name);
	w->type = rec->value.type;
	w->u = rec->value.n.u;
	if (w->fail) {
		*cause = strdup("device says no");
		return (-1);
	}
	return (0);
}

/* Fill a record of provider "test" with a typed integer. */
static void
tag_test_pub(struct tag_pub *p, const char *src, const char *name,
    enum tag_type type, uint64_t u)
{
	memset(p, 0, sizeof *p);
	p->prvd = "test";
	p->src = src;
	p->name = name;
	p->has_type = 1;
	p->value.type = type;
	p->value.n.u = u;
}

/* Fill a record with string or raw bytes. */
static void
tag_test_pub_bytes(struct tag_pub *p, const char *src, const char *name,
    enum tag_type type, const char *s, size_t len)
{
	tag_test_pub(p, src, name, type, 0);
	p->value.s = s;
	p->value.len = len;
}

/* tag_publish(), noting that the hub is inside a producer's call. */
static int
tag_test_publish(struct tag_pub *recs, size_t n, enum tag_origin origin,
    char **cause)
{
	int	rc;

	*cause = NULL;
	tag_test_publishing = 1;
	rc = tag_publish(recs, n, origin, cause);
	tag_test_publishing = 0;
	return (rc);
}

/* Publish one record; expect it to be refused with want in the cause. */
static void
tag_test_refused(struct tag_pub *p, const char *want, const char *name)
{
	char	*cause;
	int	 rc;

	rc = tag_test_publish(p, 1, TAG_ORIGIN_REST, &cause);
	if (!tap_ok(rc == -1 && cause != NULL && strstr(cause, want) != NULL,
	    name))
		printf("#   rc %d, cause \"%s\", want \"%s\"\n", rc,
		    cause != NULL ? cause : "(null)", want);
	free(cause);
}

/* The latest value of test/src/name; 0 if found with a value. */
static int
tag_test_get(const char *src, const char *name, struct tag_rec *rec)
{
	struct tag	*t;

	memset(rec, 0, sizeof *rec);
	if ((t = tag_find("test", src, name)) == NULL)
		return (-1);
	return (tag_get(t, rec));
}

/* Are a tag's bytes exactly s/len? */
static int
tag_test_bytes_are(const char *src, const char *name, const char *s,
    size_t len)
{
	struct tag_rec	rec;

	if (tag_test_get(src, name, &rec) != 0)
		return (0);
	return (rec.value.len == len && rec.value.s != NULL &&
	    memcmp(rec.value.s, s, len) == 0 && rec.value.s[len] == '\0');
}

/* A value as JSON text; caller frees. */
static char *
tag_test_json(const struct tag_value *v)
{
	struct json	*j;
	char		*text;
	size_t		 len;

	j = tag_value_json(v);
	text = json_dump(j, &len);
	json_free(j);
	return (text);
}

/* Parse a token; 0, -1 with a cause, or -2 for -1 without one. */
static int
tag_test_parse(enum tag_type type, enum tag_tok kind, const char *text,
    size_t len, char *store, struct tag_value *v)
{
	char	*cause = NULL;
	int	 rc;

	rc = tag_value_parse(type, kind, text, len, store, v, &cause);
	if (rc != 0 && cause == NULL)
		rc = -2;
	free(cause);
	return (rc);
}

/*
 * One test point for a table: each token must parse and print back as
 * its json, or (json NULL) be refused with a cause.
 */
static void
tag_test_cases(const struct tag_test_case *c, size_t n, const char *name)
{
	struct tag_value	 v;
	char			 store[64], diag[1024], *got;
	size_t			 i, used = 0;
	int			 rc, wrong;

	diag[0] = '\0';
	for (i = 0; i < n; i++) {
		got = NULL;
		rc = tag_test_parse(c[i].type, c[i].kind, c[i].text,
		    strlen(c[i].text), store, &v);
		if (rc == 0)
			got = tag_test_json(&v);
		if (c[i].json == NULL)
			wrong = rc != -1;
		else
			wrong = rc != 0 || strcmp(got, c[i].json) != 0;
		if (wrong && used < sizeof diag)
			used += snprintf(diag + used, sizeof diag - used,
			    "#   %s \"%s\": rc %d, got %s, want %s\n",
			    tag_type_name(c[i].type), c[i].text, rc,
			    got != NULL ? got : "(none)",
			    c[i].json != NULL ? c[i].json : "refused");
		free(got);
	}
	if (!tap_ok(diag[0] == '\0', name))
		printf("%s", diag);
}

/* Does a base64 string decode to want/wlen and print back the same? */
static int
tag_test_raw(const char *text, const char *want, size_t wlen)
{
	struct tag_value	 v;
	char			 store[64], *got = NULL;
	int			 rc, good;

	rc = tag_test_parse(TAG_RAW, TAG_TOK_STRING, text, strlen(text),
	    store, &v);
	if (rc == 0)
		got = tag_test_json(&v);
	good = rc == 0 && v.len == wlen && memcmp(v.s, want, wlen) == 0 &&
	    got != NULL && strlen(got) == strlen(text) + 2 &&
	    strncmp(got + 1, text, strlen(text)) == 0;
	if (!good)
		printf("#   \"%s\": rc %d, len %u, json %s\n", text, rc,
		    rc == 0 ? v.len : 0, got != NULL ? got : "(none)");
	free(got);
	return (good);
}

/* Feed JSON text to tag_ingest() from the REST origin. */
static int
tag_test_ingest(const char *text, size_t max, size_t *n, int *toobig,
    char **cause)
{
	*cause = NULL;
	return (tag_ingest(text, strlen(text), max, TAG_ORIGIN_REST, n,
	    toobig, cause));
}

/* Ingest text; expect it refused with every one of want in the cause. */
static void
tag_test_ingest_bad(const char *text, const char *want, const char *want2,
    const char *name)
{
	char	*cause;
	size_t	 n;
	int	 rc, toobig, good;

	rc = tag_test_ingest(text, 100, &n, &toobig, &cause);
	good = rc == -1 && n == 0 && cause != NULL &&
	    strstr(cause, want) != NULL &&
	    (want2 == NULL || strstr(cause, want2) != NULL) &&
	    strchr(cause, '\n') == NULL;
	if (!tap_ok(good, name))
		printf("#   rc %d, cause \"%s\"\n", rc,
		    cause != NULL ? cause : "(null)");
	free(cause);
}

/* Ingest text; expect n records published. */
static void
tag_test_ingest_ok(const char *text, size_t want, const char *name)
{
	char	*cause;
	size_t	 n;
	int	 rc, toobig;

	rc = tag_test_ingest(text, 100, &n, &toobig, &cause);
	if (!tap_ok(rc == 0 && n == want && cause == NULL && !toobig, name))
		printf("#   rc %d, n %zu, cause \"%s\"\n", rc, n,
		    cause != NULL ? cause : "(null)");
	free(cause);
}

/* Does a list of tags hold t? */
static int
tag_test_holds(struct tag *const *list, size_t n, const struct tag *t)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (list[i] == t)
			return (1);
	return (0);
}

/* For qsort: ids in order. */
static int
tag_test_id_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

/* The id of a tag. */
static uint32_t
tag_test_id(const struct tag *t)
{
	struct tag_rec	rec;

	tag_get(t, &rec);
	return (rec.id);
}

/* Define, find, redefine, undefine; placeholders stay invisible. */
static void
tag_test_registry(struct event_base *base)
{
	struct tag		*a, *b, *c, *t, **all;
	struct tag *const	*list;
	struct tag_sub		*sub1, *sub2;
	struct tag_test_got	 g;
	struct tag_rec		 rec;
	struct tag_pub		 pub;
	char			*cause;
	size_t			 n, m;
	uint32_t		 ida, idb, idc;
	int			 rc;

	tag_init(base);
	a = tag_define("test", "line1", "speed", TAG_UINT32, "rpm",
	    TAG_ACCESS_R, 0, TAG_ORIGIN_REST);
	tap_ok(a != NULL && tag_find("test", "line1", "speed") == a &&
	    tag_get_type(a) == TAG_UINT32 &&
	    strcmp(tag_get_unit(a), "rpm") == 0 &&
	    tag_get_access(a) == TAG_ACCESS_R &&
	    tag_get_origin(a) == TAG_ORIGIN_REST &&
	    strcmp(tag_get_prvd(a), "test") == 0 &&
	    strcmp(tag_get_src(a), "line1") == 0 &&
	    strcmp(tag_get_name(a), "speed") == 0 && tag_get(a, &rec) == -1,
	    "tag_define, then tag_find: the definition reads back, no value");
	b = tag_define("test", "line1", "temp", TAG_DOUBLE, "C",
	    TAG_ACCESS_R, 0, TAG_ORIGIN_REST);
	c = tag_define("test", "line2", "speed", TAG_UINT32, "rpm",
	    TAG_ACCESS_R, 0, TAG_ORIGIN_REST);
	ida = tag_test_id(a);
	idb = tag_test_id(b);
	idc = tag_test_id(c);
	if (!tap_ok(a != b && a != c && b != c && ida != 0 && idb != 0 &&
	    idc != 0 && ida != idb && ida != idc && idb != idc &&
	    tag_count() == 3, "three tags, three ids (none 0), tag_count 3"))
		printf("#   ids %u %u %u, count %zu\n", ida, idb, idc,
		    tag_count());
	t = tag_define("test", "line1", "speed", TAG_UINT32, NULL,
	    TAG_ACCESS_R | TAG_ACCESS_W, 0, TAG_ORIGIN_REST);
	tap_ok(t == a && tag_test_id(t) == ida &&
	    strcmp(tag_get_unit(t), "rpm") == 0 &&
	    tag_get_access(t) == (TAG_ACCESS_R | TAG_ACCESS_W) &&
	    tag_count() == 3,
	    "redefining keeps the tag, its id and (unit NULL) its unit");

	tag_test_pub(&pub, "line1", "temp", TAG_DOUBLE, 0);
	pub.value.n.d = 21.5;
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_define("test", "line1", "temp", TAG_DOUBLE, "C", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_REST);
	tap_ok(rc == 0 && tag_get(b, &rec) == 0 && rec.value.n.d == 21.5,
	    "redefining with the same type keeps the value");
	tag_define("test", "line1", "temp", TAG_STRING, "C", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_REST);
	tap_ok(tag_get(b, &rec) == -1 && tag_get_type(b) == TAG_STRING &&
	    rec.value.type == TAG_STRING,
	    "redefining with a new type drops the old value");
	tag_test_pub_bytes(&pub, "line1", "temp", TAG_STRING, "warm", 4);
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_define("test", "line1", "temp", TAG_INT16, "C", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_REST);
	tap_ok(rc == 0 && tag_get(b, &rec) == -1 && rec.value.s == NULL &&
	    rec.value.len == 0 && tag_test_id(b) == idb,
	    "a string value goes with its type; the id stays");

	tag_undefine(c);
	list = tag_source_tags("test", "line2", &m);
	all = tag_all(&n);
	tap_ok(tag_find("test", "line2", "speed") == NULL &&
	    tag_count() == 2 && m == 0 && n == 2 &&
	    tag_test_holds(all, n, a) && tag_test_holds(all, n, b),
	    "tag_undefine: gone from tag_find, tag_count, its source, "
	    "tag_all");
	free(all);
	c = tag_define("test", "line2", "speed", TAG_UINT32, "rpm",
	    TAG_ACCESS_R, 0, TAG_ORIGIN_REST);
	tap_ok(tag_find("test", "line2", "speed") == c &&
	    tag_test_id(c) != ida && tag_test_id(c) != idb &&
	    tag_count() == 3 && tag_get(c, &rec) == -1,
	    "an undefined tag can be defined again, without a value");

	tag_test_got_init(&g);
	sub1 = tag_subscribe("test", "line1", "ghost", tag_test_cb, &g);
	sub2 = tag_subscribe("test", "line9", NULL, tag_test_cb, &g);
	all = tag_all(&n);
	tap_ok(tag_find("test", "line1", "ghost") == NULL &&
	    tag_count() == 3 && n == 3,
	    "a placeholder is invisible to tag_find, tag_count, tag_all");
	free(all);
	list = tag_source_tags("test", "line1", &n);
	tag_source_tags("test", "line9", &m);
	tap_ok(n == 2 && tag_test_holds(list, n, a) &&
	    tag_test_holds(list, n, b) && m == 0,
	    "tag_source_tags lists no placeholder, a subscribed source none");
	n = 99;
	list = tag_source_tags("test", "nowhere", &n);
	tap_ok(list == NULL && n == 0 &&
	    tag_find("test", "line1", "nope") == NULL &&
	    tag_find("test", "nope", "speed") == NULL &&
	    tag_find("nope", "line1", "speed") == NULL,
	    "unknown names: tag_find and tag_source_tags give NULL");
	tag_test_pub(&pub, "line1", "ghost", TAG_UINT8, 1);
	pub.has_type = 0;
	tag_test_refused(&pub, "dataType: is required",
	    "a placeholder needs a dataType like any new tag");
	tag_unsubscribe(sub1);
	tag_unsubscribe(sub2);
	tag_free();
}

/* Names with '/' and UTF-8. */
static void
tag_test_names(struct event_base *base)
{
	struct tag	*x, *y, *z, *u;
	struct tag_rec	 rec;

	tag_init(base);
	x = tag_define("a/b", "c", "d", TAG_UINT8, "", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_REST);
	y = tag_define("a", "b/c", "d", TAG_UINT8, "", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_REST);
	z = tag_define("a", "b", "c/d", TAG_UINT8, "", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_REST);
	tap_ok(x != y && y != z && x != z && tag_count() == 3 &&
	    tag_find("a/b", "c", "d") == x && tag_find("a", "b/c", "d") == y &&
	    tag_find("a", "b", "c/d") == z,
	    "a/b|c|d, a|b/c|d and a|b|c/d are three tags");
	tap_ok(tag_find("a", "b", "c") == NULL &&
	    tag_find("a/b/c", "", "d") == NULL,
	    "names are not joined with '/'");
	u = tag_define("Fabrik M\xc3\xbcnchen", "Halle 3",
	    "\xe6\xb8\xa9\xe5\xba\xa6/\xc2\xb0" "C", TAG_DOUBLE, "\xc2\xb0" "C",
	    TAG_ACCESS_R, 0, TAG_ORIGIN_REST);
	tap_ok(tag_find("Fabrik M\xc3\xbcnchen", "Halle 3",
	    "\xe6\xb8\xa9\xe5\xba\xa6/\xc2\xb0" "C") == u &&
	    strcmp(tag_get_name(u), "\xe6\xb8\xa9\xe5\xba\xa6/\xc2\xb0" "C") ==
	    0 && strcmp(tag_get_prvd(u), "Fabrik M\xc3\xbcnchen") == 0,
	    "UTF-8 names are found and read back byte for byte");
	tag_test_ingest_ok("{\"prvdName\":\"Fabrik M\\u00fcnchen\","
	    "\"srcName\":\"Halle 3\",\"tagName\":\"\\u6e29\\u5ea6/\\u00b0C\","
	    "\"dataValue\":21.25}", 1,
	    "tag_ingest: \\u escapes reach the UTF-8 tag");
	tap_ok(tag_get(u, &rec) == 0 && rec.value.n.d == 21.25,
	    "the UTF-8 tag has the value");
	tag_free();
}

/* 100,000 tags: defined, found again, ids unique and stable. */
static void
tag_test_big(struct event_base *base)
{
	struct tag	**tags, *first, **all;
	struct tag *const *list;
	uint32_t	 *ids, id0;
	char		  src[32], name[32];
	size_t		  i, n, found = 0, unknown = 0, dups = 0;

	tag_init(base);
	first = tag_define("big", "first", "t", TAG_INT64, "", TAG_ACCESS_R,
	    0, TAG_ORIGIN_REST);
	id0 = tag_test_id(first);
	tags = calloc(TAG_TEST_NBIG, sizeof *tags);
	ids = calloc(TAG_TEST_NBIG, sizeof *ids);
	if (tags == NULL || ids == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	for (i = 0; i < TAG_TEST_NBIG; i++) {
		snprintf(src, sizeof src, "src%zu", i % TAG_TEST_NSRC);
		snprintf(name, sizeof name, "tag%06zu", i);
		tags[i] = tag_define("big", src, name, TAG_INT64, "",
		    TAG_ACCESS_R, 0, TAG_ORIGIN_REST);
	}
	tap_is_int(tag_count(), TAG_TEST_NBIG + 1, "100,001 tags defined");
	for (i = 0; i < TAG_TEST_NBIG; i++) {
		snprintf(src, sizeof src, "src%zu", i % TAG_TEST_NSRC);
		snprintf(name, sizeof name, "tag%06zu", i);
		if (tag_find("big", src, name) == tags[i] &&
		    strcmp(tag_get_name(tags[i]), name) == 0 &&
		    strcmp(tag_get_src(tags[i]), src) == 0)
			found++;
		ids[i] = tag_test_id(tags[i]);
	}
	tap_is_int(found, TAG_TEST_NBIG, "every one of them is found again");
	qsort(ids, TAG_TEST_NBIG, sizeof *ids, tag_test_id_cmp);
	for (i = 0; i < TAG_TEST_NBIG; i++)
		if (ids[i] == 0 || ids[i] == id0 ||
		    (i > 0 && ids[i] == ids[i - 1]))
			dups++;
	tap_is_int(dups, 0, "their ids are unique");
	tap_ok(tag_find("big", "first", "t") == first &&
	    tag_test_id(first) == id0,
	    "the first tag keeps its id while the table grows");
	for (i = 0; i < TAG_TEST_NBIG; i++) {
		snprintf(src, sizeof src, "src%zu", (i + 1) % TAG_TEST_NSRC);
		snprintf(name, sizeof name, "tag%06zu", i);
		unknown += tag_find("big", src, name) == NULL;
		snprintf(name, sizeof name, "nope%06zu", i);
		unknown += tag_find("big", src, name) == NULL;
	}
	tap_is_int(unknown, 2 * TAG_TEST_NBIG,
	    "200,000 unknown names: tag_find returns NULL");
	list = tag_source_tags("big", "src0", &n);
	tap_ok(n == (TAG_TEST_NBIG + TAG_TEST_NSRC - 1) / TAG_TEST_NSRC &&
	    tag_test_holds(list, n, tags[0]) &&
	    tag_test_holds(list, n, tags[TAG_TEST_NSRC]) &&
	    !tag_test_holds(list, n, tags[1]),
	    "a source lists its tags");
	all = tag_all(&n);
	tap_is_int(n, TAG_TEST_NBIG + 1, "tag_all returns them all");
	free(all);
	free(ids);
	free(tags);
	tag_free();
}

/* tag_publish and tag_check: batches, types, names, values. */
static void
tag_test_checks(struct event_base *base)
{
	struct tag_pub	 recs[4], pub;
	struct tag_rec	 rec;
	struct tag	*t;
	char		*cause, lname[1026], unit[66], big[300];
	static const char raw[] = "\0a\0b\xff";
	int64_t		 before, after;
	long long	 rejected, ingested;
	int		 rc, good;

	tag_init(base);
	tag_test_pub(&pub, "s", "a", TAG_INT32, 0);
	pub.value.n.i = -5;
	pub.unit = "bar";
	ingested = tag_test_metric("uplinkd_tag_records_total"
	    "{origin=\"rest\"}");
	before = util_wall_us();
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	after = util_wall_us();
	free(cause);
	t = tag_find("test", "s", "a");
	tap_ok(rc == 0 && t != NULL && tag_get_type(t) == TAG_INT32 &&
	    tag_get_access(t) == TAG_ACCESS_R &&
	    tag_get_origin(t) == TAG_ORIGIN_REST &&
	    strcmp(tag_get_unit(t), "bar") == 0 && tag_get(t, &rec) == 0 &&
	    rec.value.n.i == -5 && rec.value.type == TAG_INT32,
	    "publishing a new tag registers it (type, unit, r) with the value");
	if (!tap_ok(rec.ts >= before && rec.ts <= after, "ts 0 means now"))
		printf("#   ts %" PRId64 " not in %" PRId64 "..%" PRId64 "\n",
		    rec.ts, before, after);
	pub.ts = 1234567;
	pub.value.n.i = -6;
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tap_ok(rc == 0 && tag_test_get("s", "a", &rec) == 0 &&
	    rec.ts == 1234567 && rec.value.n.i == -6 &&
	    tag_test_metric("uplinkd_tag_records_total{origin=\"rest\"}") ==
	    ingested + 2, "a given ts is kept; records are counted by origin");

	tag_test_pub(&recs[0], "s", "a", TAG_INT32, 7);
	tag_test_pub(&recs[1], "s", "newb", TAG_UINT16, 9);
	tag_test_pub_bytes(&recs[2], "s", "a", TAG_STRING, "oops", 4);
	tag_test_pub(&recs[3], "s", "newc", TAG_UINT8, 1);
	rejected = tag_test_metric("uplinkd_tag_records_rejected_total");
	rc = tag_test_publish(recs, 4, TAG_ORIGIN_REST, &cause);
	tap_ok(rc == -1 && tag_test_get("s", "a", &rec) == 0 &&
	    rec.value.n.i == -6 && tag_find("test", "s", "newb") == NULL &&
	    tag_find("test", "s", "newc") == NULL && tag_count() == 1,
	    "a bad record in the middle: nothing of the batch is applied");
	if (!tap_ok(cause != NULL && strstr(cause, "test/s/a") != NULL &&
	    strstr(cause, "the tag is int32, not string") != NULL,
	    "the cause names the tag and both types"))
		printf("#   cause \"%s\"\n", cause != NULL ? cause : "(null)");
	free(cause);
	tap_is_int(tag_test_metric("uplinkd_tag_records_rejected_total"),
	    rejected + 4, "the whole batch counts as rejected");

	tag_test_pub(&recs[0], "s", "x", TAG_UINT8, 1);
	tag_test_pub(&recs[1], "s", "x", TAG_INT8, 1);
	rc = tag_test_publish(recs, 2, TAG_ORIGIN_REST, &cause);
	tap_ok(rc == -1 && cause != NULL &&
	    strstr(cause, "test/s/x") != NULL &&
	    strstr(cause, "earlier in the batch") != NULL &&
	    tag_find("test", "s", "x") == NULL,
	    "two types for one new tag in one batch: refused");
	free(cause);
	tag_test_pub(&recs[0], "s", "y", TAG_UINT8, 1);
	tag_test_pub(&recs[1], "s", "y", TAG_UINT8, 2);
	tag_test_pub(&recs[2], "s", "y", TAG_UINT8, 3);
	rc = tag_test_publish(recs, 3, TAG_ORIGIN_REST, &cause);
	if (!tap_ok(rc == 0 && tag_test_get("s", "y", &rec) == 0 &&
	    rec.value.n.u == 3,
	    "one new tag three times, one type: the last value wins"))
		printf("#   cause \"%s\"\n", cause != NULL ? cause : "(null)");
	free(cause);

	tag_define("test", "sys", "cpu", TAG_DOUBLE, "%", TAG_ACCESS_R, 0,
	    TAG_ORIGIN_SYSTEM);
	tag_test_pub(&pub, "sys", "cpu", TAG_DOUBLE, 0);
	tag_test_refused(&pub, "system provider", "a system tag is refused");
	tag_test_pub(&pub, "s", "untyped", TAG_UINT8, 1);
	pub.has_type = 0;
	tag_test_refused(&pub, "dataType: is required for a new tag",
	    "a new tag without dataType is refused");
	tag_test_pub(&pub, "s", "a", TAG_INT32, 11);
	pub.has_type = 0;
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tap_ok(rc == 0 && tag_test_get("s", "a", &rec) == 0 &&
	    rec.value.n.i == 11, "a known tag needs no dataType");
	tag_test_pub(&pub, "s", "a", TAG_INT64, 11);
	tag_test_refused(&pub, "the tag is int32, not int64",
	    "a value of another integer type is refused");

	memset(lname, 'n', sizeof lname);
	lname[1024] = '\0';
	tag_test_pub(&pub, "s", lname, TAG_UINT8, 1);
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tap_ok(rc == 0 && tag_find("test", "s", lname) != NULL,
	    "a 1024-byte tagName is accepted");
	lname[1024] = 'n';
	lname[1025] = '\0';
	tag_test_refused(&pub, "tagName: must be at most 1024 bytes",
	    "a 1025-byte tagName is refused");
	tag_test_pub(&pub, lname, "a", TAG_UINT8, 1);
	tag_test_refused(&pub, "srcName: must be at most 1024 bytes",
	    "a 1025-byte srcName is refused");
	good = 1;
	tag_test_pub(&pub, "s", "tab\there", TAG_UINT8, 1);
	good &= tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause) == -1 &&
	    strstr(cause, "tagName: must not contain control") != NULL;
	free(cause);
	tag_test_pub(&pub, "s", "del\x7f", TAG_UINT8, 1);
	good &= tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause) == -1 &&
	    strstr(cause, "tagName: must not contain control") != NULL;
	free(cause);
	tag_test_pub(&pub, "line\n1", "a", TAG_UINT8, 1);
	good &= tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause) == -1 &&
	    strstr(cause, "srcName: must not contain control") != NULL;
	free(cause);
	pub.prvd = "\x1b[0m";
	good &= tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause) == -1 &&
	    strstr(cause, "prvdName: must not contain control") != NULL;
	free(cause);
	tap_ok(good && tag_count() == 4,
	    "TAB, DEL, newline and ESC in names are refused, naming the field");
	tag_test_pub(&pub, "s", "", TAG_UINT8, 1);
	tag_test_refused(&pub, "tagName: is required",
	    "an empty tagName is refused");
	tag_test_pub(&pub, "s", "u", TAG_UINT8, 1);
	memset(unit, 'u', sizeof unit);
	unit[65] = '\0';
	pub.unit = unit;
	tag_test_refused(&pub, "dataUnit: must be at most 64 bytes",
	    "a 65-byte dataUnit is refused");

	tag_test_pub_bytes(&pub, "s", "str", TAG_STRING, "hello, world", 12);
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tap_ok(rc == 0 && tag_test_bytes_are("s", "str", "hello, world", 12),
	    "a string value is returned exactly");
	memset(big, 'b', sizeof big);
	tag_test_pub_bytes(&pub, "s", "str", TAG_STRING, "hi", 2);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	good = tag_test_bytes_are("s", "str", "hi", 2);
	tag_test_pub_bytes(&pub, "s", "str", TAG_STRING, big, sizeof big);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	good &= tag_test_bytes_are("s", "str", big, sizeof big);
	tag_test_pub_bytes(&pub, "s", "str", TAG_STRING, "", 0);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	good &= tag_test_bytes_are("s", "str", "", 0);
	tap_ok(good, "shorter, longer and empty strings replace it exactly");
	tag_test_pub_bytes(&pub, "s", "raw", TAG_RAW, raw, sizeof raw - 1);
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tap_ok(rc == 0 && tag_test_bytes_are("s", "raw", raw, sizeof raw - 1),
	    "raw bytes with embedded NULs are returned exactly");
	tag_free();
}

#define N	TAG_TOK_NUMBER
#define S	TAG_TOK_STRING
#define B	TAG_TOK_BOOL

static const struct tag_test_case tag_test_int64s[] = {
	{ TAG_INT64, N, "-9223372036854775808", "-9223372036854775808" },
	{ TAG_INT64, N, "9223372036854775807", "9223372036854775807" },
	{ TAG_INT64, N, "9007199254740993", "9007199254740993" },
	{ TAG_INT64, N, "-0", "0" }
};

static const struct tag_test_case tag_test_uint64s[] = {
	{ TAG_UINT64, N, "18446744073709551615", "18446744073709551615" },
	{ TAG_UINT64, N, "18446744073709551614", "18446744073709551614" },
	{ TAG_UINT64, N, "-0", "0" },
	{ TAG_UINT64, N, "0", "0" }
};

static const struct tag_test_case tag_test_beyond64[] = {
	{ TAG_INT64, N, "9223372036854775808", NULL },
	{ TAG_INT64, N, "-9223372036854775809", NULL },
	{ TAG_UINT64, N, "18446744073709551616", NULL },
	{ TAG_UINT64, N, "99999999999999999999999", NULL },
	{ TAG_UINT64, N, "-1", NULL }
};

static const struct tag_test_case tag_test_nonints[] = {
	{ TAG_INT32, N, "1.0", NULL },
	{ TAG_INT64, N, "1e3", NULL },
	{ TAG_UINT16, N, "1E3", NULL },
	{ TAG_UINT64, N, "1e0", NULL },
	{ TAG_INT8, N, "-1.5", NULL }
};

static const struct tag_test_case tag_test_narrow[] = {
	{ TAG_INT8, N, "-128", "-128" },
	{ TAG_INT8, N, "127", "127" },
	{ TAG_INT8, N, "128", NULL },
	{ TAG_INT8, N, "-129", NULL },
	{ TAG_UINT8, N, "255", "255" },
	{ TAG_UINT8, N, "256", NULL },
	{ TAG_INT16, N, "-32768", "-32768" },
	{ TAG_INT16, N, "-32769", NULL },
	{ TAG_UINT16, N, "65535", "65535" },
	{ TAG_UINT16, N, "65536", NULL },
	{ TAG_INT32, N, "-2147483648", "-2147483648" },
	{ TAG_INT32, N, "2147483648", NULL },
	{ TAG_UINT32, N, "4294967295", "4294967295" },
	{ TAG_UINT32, N, "4294967296", NULL }
};

static const struct tag_test_case tag_test_kinds[] = {
	{ TAG_INT32, S, "5", NULL },
	{ TAG_UINT8, TAG_TOK_NULL, "null", NULL },
	{ TAG_INT64, B, "true", NULL },
	{ TAG_DOUBLE, S, "1.5", NULL },
	{ TAG_FLOAT, TAG_TOK_OTHER, "", NULL },
	{ TAG_STRING, N, "5", NULL },
	{ TAG_RAW, N, "12", NULL }
};

static const struct tag_test_case tag_test_floats[] = {
	{ TAG_FLOAT, N, "0.1", "0.1" },
	{ TAG_FLOAT, N, "-0.1", "-0.1" },
	{ TAG_FLOAT, N, "16777217", "16777216" },
	{ TAG_FLOAT, N, "3.4028235e38", "3.4028235e+38" },
	{ TAG_FLOAT, N, "3.5e38", NULL },
	{ TAG_FLOAT, N, "-3.5e38", NULL },
	{ TAG_FLOAT, N, "1e39", NULL }
};

static const struct tag_test_case tag_test_doubles[] = {
	{ TAG_DOUBLE, N, "0.1", "0.1" },
	{ TAG_DOUBLE, N, "100", "100" },
	{ TAG_DOUBLE, N, "1e308", "1e+308" },
	{ TAG_DOUBLE, N, "1e309", NULL },
	{ TAG_DOUBLE, N, "-1e309", NULL }
};

static const struct tag_test_case tag_test_bools[] = {
	{ TAG_BOOLEAN, B, "true", "true" },
	{ TAG_BOOLEAN, B, "false", "false" },
	{ TAG_BOOLEAN, N, "1", "true" },
	{ TAG_BOOLEAN, N, "0", "false" },
	{ TAG_BOOLEAN, N, "2", NULL },
	{ TAG_BOOLEAN, N, "01", NULL },
	{ TAG_BOOLEAN, S, "true", NULL },
	{ TAG_BOOLEAN, TAG_TOK_NULL, "null", NULL }
};

static const struct tag_test_case tag_test_badraw[] = {
	{ TAG_RAW, S, "YQ", NULL },
	{ TAG_RAW, S, "Y===", NULL },
	{ TAG_RAW, S, "YQ=a", NULL },
	{ TAG_RAW, S, "YQ==YQ==", NULL },
	{ TAG_RAW, S, "=AAA", NULL },
	{ TAG_RAW, S, "YW*j", NULL },
	{ TAG_RAW, S, "YW\nj", NULL }
};

#undef N
#undef S
#undef B

#define TAG_TEST_CASES(c, name)	tag_test_cases((c), sizeof (c) / sizeof *(c), \
				    (name))

/* tag_value_parse and tag_value_json at the edges. */
static void
tag_test_values(void)
{
	struct tag_value	 v, w;
	struct json		*j;
	char			*buf = NULL, *text, *cause;
	const char		*lit;
	int			 rc;

	TAG_TEST_CASES(tag_test_int64s, "int64: INT64_MIN, INT64_MAX, "
	    "2^53 + 1 and -0 print back exactly");
	TAG_TEST_CASES(tag_test_uint64s, "uint64: UINT64_MAX prints back "
	    "exactly, -0 is 0");
	TAG_TEST_CASES(tag_test_beyond64, "64-bit values out of range are "
	    "refused, -1 for uint64 too");
	TAG_TEST_CASES(tag_test_nonints, "1.0, 1e3, 1E3 are refused for "
	    "integer types");
	TAG_TEST_CASES(tag_test_narrow, "8-, 16- and 32-bit limits: in "
	    "range taken, one beyond refused");
	TAG_TEST_CASES(tag_test_kinds, "a token of the wrong kind is refused");
	TAG_TEST_CASES(tag_test_floats, "float: shortest printing, FLT_MAX "
	    "taken, 3.5e38 refused");
	tap_ok(tag_test_parse(TAG_FLOAT, TAG_TOK_NUMBER, "0.1", 3, NULL,
	    &v) == 0 && v.n.d == (double)0.1f &&
	    tag_test_parse(TAG_FLOAT, TAG_TOK_NUMBER, "3.4028235e38", 12,
	    NULL, &w) == 0 && w.n.d == (double)FLT_MAX,
	    "float: 0.1 and 3.4028235e38 are held as the nearest float");
	TAG_TEST_CASES(tag_test_doubles, "double: shortest printing, 1e309 "
	    "refused");
	rc = tag_test_parse(TAG_FLOAT, TAG_TOK_NUMBER, "100", 3, NULL, &v);
	text = rc == 0 ? tag_test_json(&v) : NULL;
	if (!tap_ok(text != NULL && strcmp(text, "100") == 0,
	    "float: 100 prints as 100, like a double"))
		printf("#   got %s\n", text != NULL ? text : "(none)");
	free(text);
	lit = "0.1000000000000000000000000000000000000000000000000000000000"
	    "000000000001";
	rc = tag_test_parse(TAG_DOUBLE, TAG_TOK_NUMBER, lit, strlen(lit), NULL,
	    &v);
	if (!tap_ok(rc == 0 && v.n.d == 0.1,
	    "double: a 72-character literal is read, not refused"))
		printf("#   rc %d\n", rc);
	TAG_TEST_CASES(tag_test_bools, "boolean: true, false, 1, 0 taken, "
	    "nothing else");

	rc = tag_test_parse(TAG_STRING, TAG_TOK_STRING, "a\0b", 3, NULL, &v);
	text = rc == 0 ? tag_test_json(&v) : NULL;
	tap_ok(rc == 0 && v.len == 3 && memcmp(v.s, "a\0b", 3) == 0 &&
	    text != NULL && strcmp(text, "\"a\\u0000b\"") == 0,
	    "string: an embedded NUL is kept and escaped");
	free(text);
	tap_ok(tag_test_raw("AGEA", "\0a\0", 3) &&
	    tag_test_raw("YWI=", "ab", 2) && tag_test_raw("YQ==", "a", 1) &&
	    tag_test_raw("", "", 0),
	    "raw: base64 with 0, 1 and 2 '=' decodes and prints back");
	TAG_TEST_CASES(tag_test_badraw, "raw: bad padding and characters "
	    "are refused");

	cause = NULL;
	j = json_parse("18446744073709551615", 20, NULL);
	rc = j != NULL ? tag_value_from_json(j, TAG_UINT64, &v, &buf,
	    &cause) : -1;
	json_free(j);
	j = json_parse("\"AGEA\"", 6, NULL);
	if (rc == 0 && v.n.u == UINT64_MAX && buf == NULL)
		rc = j != NULL ? tag_value_from_json(j, TAG_RAW, &v, &buf,
		    &cause) : -1;
	else
		rc = -1;
	tap_ok(rc == 0 && v.len == 3 && memcmp(v.s, "\0a\0", 3) == 0 &&
	    v.s == buf,
	    "tag_value_from_json: UINT64_MAX exact, raw bytes into *buf");
	free(buf);
	free(cause);
	json_free(j);
}

/* The JSON fast path. */
static void
tag_test_fast(struct event_base *base)
{
	struct tag_rec	 rec;
	struct tag	*t;
	char		*cause;
	size_t		 n;
	int		 rc, toobig;

	tag_init(base);
	tag_test_ingest_ok("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"one\",\"dataType\":\"int64\",\"dataValue\":"
	    "-9223372036854775808,\"dataUnit\":\"x\"}", 1,
	    "tag_ingest: a single record");
	t = tag_find("test", "in", "one");
	tap_ok(t != NULL && tag_get(t, &rec) == 0 &&
	    rec.value.n.i == INT64_MIN && strcmp(rec.unit, "x") == 0,
	    "tag_ingest: INT64_MIN arrives exactly, with its unit");
	tag_test_ingest_ok("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"u\",\"dataType\":\"uint64\",\"dataValue\":"
	    "18446744073709551615},{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"f\",\"dataType\":\"float\",\"dataValue\":0.1},"
	    "{\"prvdName\":\"test\",\"srcName\":\"in\",\"tagName\":\"b\","
	    "\"dataType\":\"boolean\",\"dataValue\":true}]", 3,
	    "tag_ingest: an array of three records");
	tap_ok(tag_test_get("in", "u", &rec) == 0 &&
	    rec.value.n.u == UINT64_MAX &&
	    tag_test_get("in", "f", &rec) == 0 &&
	    rec.value.n.d == (double)0.1f &&
	    tag_test_get("in", "b", &rec) == 0 && rec.value.n.b == 1,
	    "tag_ingest: the three values are stored (UINT64_MAX exactly)");
	tag_test_ingest_ok(" [ ] ", 0, "tag_ingest: [] publishes nothing");
	tag_test_ingest_ok("[{\"prvdName\":\"test\","
	    "\"x\":{\"a\":[1,{\"b\":2}]},\"srcName\":\"in\","
	    "\"y\":[[],{},\"dataValue\"],\"tagName\":\"nest\","
	    "\"dataType\":\"uint8\",\"z\":null,\"dataValue\":7},"
	    "{\"prvdName\":\"test\",\"q\":{\"r\":{}},\"srcName\":\"in\","
	    "\"tagName\":\"nest2\",\"dataType\":\"int8\",\"dataValue\":-7}]", 2,
	    "tag_ingest: unknown keys and nested values are skipped");
	tap_ok(tag_test_get("in", "nest", &rec) == 0 && rec.value.n.u == 7 &&
	    tag_test_get("in", "nest2", &rec) == 0 && rec.value.n.i == -7,
	    "tag_ingest: the records around them are read");

	rc = tag_test_ingest("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"good\",\"dataType\":\"uint8\",\"dataValue\":1},5]",
	    100, &n, &toobig, &cause);
	tap_ok(rc == -1 && n == 0 && cause != NULL &&
	    strstr(cause, "record 1") != NULL &&
	    strstr(cause, "must be an object") != NULL &&
	    tag_find("test", "in", "good") == NULL,
	    "tag_ingest: a record that is not an object: refused, the good "
	    "record before it not applied");
	free(cause);
	rc = tag_test_ingest("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"good\",\"dataType\":\"uint8\",\"dataValue\":1},[]]",
	    100, &n, &toobig, &cause);
	if (!tap_ok(rc == -1 && cause != NULL &&
	    strstr(cause, "must be an object") != NULL &&
	    strstr(cause, "good") == NULL,
	    "tag_ingest: [] after a record: the cause neither names that "
	    "record nor blames its dataValue"))
		printf("#   cause \"%s\"\n", cause != NULL ? cause : "(null)");
	free(cause);
	tag_test_ingest_bad("42", "record 0", "must be an object",
	    "tag_ingest: a top-level number is refused");
	tag_test_ingest_bad("[[]]", "record 0", "must be an object",
	    "tag_ingest: an array in the array is refused");
	tag_test_ingest_bad("{\"prvdName\":", "malformed JSON", NULL,
	    "tag_ingest: cut-off JSON: a one-line cause");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"o\",\"dataType\":\"uint8\",\"dataValue\":1} {}",
	    "malformed JSON", NULL, "tag_ingest: two documents are refused");

	rc = tag_test_ingest("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"m1\",\"dataType\":\"uint8\",\"dataValue\":1},"
	    "{\"prvdName\":\"test\",\"srcName\":\"in\",\"tagName\":\"m2\","
	    "\"dataType\":\"uint8\",\"dataValue\":2},{\"prvdName\":\"test\","
	    "\"srcName\":\"in\",\"tagName\":\"m3\",\"dataType\":\"uint8\","
	    "\"dataValue\":3}]", 2, &n, &toobig, &cause);
	if (!tap_ok(rc == -1 && toobig == 1 && n == 0 && cause != NULL &&
	    strstr(cause, "at most 2 records") != NULL &&
	    tag_find("test", "in", "m1") == NULL,
	    "tag_ingest: max + 1 records: toobig, nothing applied"))
		printf("#   rc %d toobig %d cause \"%s\"\n", rc, toobig,
		    cause != NULL ? cause : "(null)");
	free(cause);
	rc = tag_test_ingest("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"m1\",\"dataType\":\"uint8\",\"dataValue\":1},"
	    "{\"prvdName\":\"test\",\"srcName\":\"in\",\"tagName\":\"m2\","
	    "\"dataType\":\"uint8\",\"dataValue\":2}]", 2, &n, &toobig, &cause);
	tap_ok(rc == 0 && toobig == 0 && n == 2 &&
	    tag_find("test", "in", "m2") != NULL,
	    "tag_ingest: exactly max records are taken");
	free(cause);

	tag_test_ingest_ok("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"one\",\"dataValue\":9223372036854775807}", 1,
	    "tag_ingest: a known tag without dataType is accepted");
	tap_ok(tag_test_get("in", "one", &rec) == 0 &&
	    rec.value.n.i == INT64_MAX,
	    "tag_ingest: its value is read as its type (INT64_MAX)");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"fresh\",\"dataValue\":1}",
	    "record 0 (tag test/in/fresh)", "dataType: is required",
	    "tag_ingest: a new tag without dataType is refused");
	tag_test_ingest_bad("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"m1\",\"dataValue\":4},{\"prvdName\":\"test\","
	    "\"srcName\":\"in\",\"tagName\":\"m2\",\"dataValue\":5},"
	    "{\"prvdName\":\"test\",\"srcName\":\"in\",\"tagName\":\"bad\","
	    "\"dataType\":\"uint8\",\"dataValue\":300}]",
	    "record 2 (tag test/in/bad)", "out of range for uint8",
	    "tag_ingest: a bad value names its record and tag");
	tap_ok(tag_test_get("in", "m1", &rec) == 0 && rec.value.n.u == 1,
	    "tag_ingest: records before it are not applied");
	tag_test_ingest_bad("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"m1\",\"dataValue\":4},{\"prvdName\":\"test\","
	    "\"srcName\":\"in\",\"tagName\":\"m2\",\"dataType\":\"string\","
	    "\"dataValue\":\"x\"}]", "test/in/m2", "record 1",
	    "tag_ingest: a type mismatch names its record and tag");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"t\",\"dataType\":\"int128\",\"dataValue\":1}",
	    "record 0 (tag test/in/t)", "dataType: must be one of",
	    "tag_ingest: an unknown dataType is refused");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"t\",\"dataType\":\"int8\",\"dataValue\":{}}",
	    "record 0", "dataValue: must be a number",
	    "tag_ingest: an object as dataValue is refused");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"a\\u0000b\",\"dataType\":\"int8\",\"dataValue\":1}",
	    "record 0", "tagName: must not contain NUL",
	    "tag_ingest: a NUL in tagName is refused");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"t\",\"dataType\":\"int8\",\"dataValue\":1,"
	    "\"ts\":-1}", "record 0", "ts: must be a non-negative",
	    "tag_ingest: a negative ts is refused");
	tag_test_ingest_bad("{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"t\",\"dataType\":\"raw\",\"dataValue\":\"YQ=\"}",
	    "record 0 (tag test/in/t)", "base64",
	    "tag_ingest: bad base64 is refused");
	tag_test_ingest_ok("[{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"ts\",\"dataType\":\"int8\",\"dataValue\":1,"
	    "\"ts\":1700000000000001},{\"prvdName\":\"test\",\"srcName\":"
	    "\"in\",\"tagName\":\"s\",\"dataType\":\"string\",\"dataValue\":"
	    "\"a\\u0000b\\\"c\"},{\"prvdName\":\"test\",\"srcName\":\"in\","
	    "\"tagName\":\"r\",\"dataType\":\"raw\",\"dataValue\":\"AGEA\"}]",
	    3, "tag_ingest: ts, a string with \\u0000, a raw value");
	tap_ok(tag_test_get("in", "ts", &rec) == 0 &&
	    rec.ts == 1700000000000001LL &&
	    tag_test_bytes_are("in", "s", "a\0b\"c", 5) &&
	    tag_test_bytes_are("in", "r", "\0a\0", 3),
	    "tag_ingest: ts, string and raw bytes are stored exactly");
	tag_free();
}

/* Subscribers: from the loop only, in order, values as published. */
static void
tag_test_fanout(struct event_base *base)
{
	struct tag_test_got	 g, g2, g3, g4, g5, ga, gb;
	struct tag_sub		*sub, *sub4, *suba, *subb;
	struct tag_pub		 pub, recs[4], *many;
	struct tag		*t;
	struct tag_rec		 rec;
	char			*cause;
	static const char	 raw1[] = "\0x\0", raw2[] = "\0y";
	size_t			 i;
	int			 rc, n1;

	tag_init(base);
	tag_test_reentered = 0;
	tag_test_got_init(&g);
	sub = tag_subscribe("test", "fan", "a", tag_test_cb, &g);
	tag_test_pub(&pub, "fan", "a", TAG_UINT64, 0);
	pub.unit = "u";
	pub.ts = 42;
	rc = tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tap_ok(rc == 0 && g.n == 0,
	    "a subscriber is not called inside tag_publish");
	tag_test_drain(base);
	t = tag_find("test", "fan", "a");
	tap_ok(g.n == 1 && g.first == 0 && strcmp(g.name, "a") == 0 &&
	    strcmp(g.unit, "u") == 0 && g.ts == 42 && t != NULL &&
	    g.id == tag_test_id(t),
	    "it is called from the loop, with the tag's record");

	tag_test_got_init(&g);
	pub.ts = 0;
	for (i = 1; i <= TAG_TEST_NORDER; i++) {
		pub.value.n.u = i;
		tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
		free(cause);
	}
	n1 = g.n;
	/*
	 * EVLOOP_ONCE is one turn: poll, timeouts, active callbacks.  The
	 * rest of the queue must wait for the next poll.
	 */
	event_base_loop(base, EVLOOP_ONCE);
	if (!tap_ok(n1 == 0 && g.n > 0 && g.n < TAG_TEST_NORDER,
	    "one loop turn delivers a bounded batch, not the whole queue"))
		printf("#   %d of %d delivered in one turn\n", g.n,
		    TAG_TEST_NORDER);
	tag_test_drain(base);
	if (!tap_ok(g.n == TAG_TEST_NORDER && g.ordered && g.first == 1 &&
	    g.last == TAG_TEST_NORDER,
	    "10,000 values are each delivered once, in order"))
		printf("#   n %d ordered %d first %" PRIu64 " last %" PRIu64
		    "\n", g.n, g.ordered, g.first, g.last);
	many = calloc(TAG_TEST_NORDER, sizeof *many);
	if (many == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	for (i = 0; i < TAG_TEST_NORDER; i++)
		tag_test_pub(&many[i], "fan", "a", TAG_UINT64, 100000 + i);
	tag_test_got_init(&g);
	rc = tag_test_publish(many, TAG_TEST_NORDER, TAG_ORIGIN_REST, &cause);
	free(cause);
	free(many);
	tag_test_drain(base);
	tap_ok(rc == 0 && g.n == TAG_TEST_NORDER && g.ordered &&
	    g.first == 100000 && g.last == 100000 + TAG_TEST_NORDER - 1,
	    "a batch of 10,000 values of one tag: each delivered, in order");

	tag_test_got_init(&g2);
	tag_subscribe("test", "fan", "later", tag_test_cb, &g2);
	tag_test_pub_bytes(&pub, "fan", "later", TAG_STRING, "v1", 2);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	tap_ok(g2.n == 1 && g2.len[0] == 2 && memcmp(g2.s[0], "v1", 2) == 0,
	    "a subscription made before the tag exists gets its values");
	tag_undefine(tag_find("test", "fan", "later"));
	tag_test_pub_bytes(&pub, "fan", "later", TAG_STRING, "v2", 2);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	tap_ok(g2.n == 2 && g2.len[1] == 2 && memcmp(g2.s[1], "v2", 2) == 0,
	    "and keeps getting them after tag_undefine and a new value");

	tag_test_got_init(&g2);
	tag_test_pub_bytes(&pub, "fan", "later", TAG_STRING, "first", 5);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_pub_bytes(&pub, "fan", "later", TAG_STRING, "second!", 7);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_pub_bytes(&pub, "fan", "later", TAG_STRING, "3", 1);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	n1 = tag_test_bytes_are("fan", "later", "3", 1) && g2.n == 0;
	tag_test_drain(base);
	tap_ok(n1 && g2.n == 3 && g2.len[0] == 5 &&
	    memcmp(g2.s[0], "first", 5) == 0 && g2.len[1] == 7 &&
	    memcmp(g2.s[1], "second!", 7) == 0 && g2.len[2] == 1 &&
	    g2.s[2][0] == '3',
	    "each string delivered is the value at publish time");
	tag_test_got_init(&g5);
	tag_subscribe("test", "fan", "raw", tag_test_cb, &g5);
	tag_test_pub_bytes(&pub, "fan", "raw", TAG_RAW, raw1, 3);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_pub_bytes(&pub, "fan", "raw", TAG_RAW, raw2, 2);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	tap_ok(g5.n == 2 && g5.len[0] == 3 && memcmp(g5.s[0], raw1, 3) == 0 &&
	    g5.len[1] == 2 && memcmp(g5.s[1], raw2, 2) == 0,
	    "raw values are delivered byte for byte, as published");

	tag_test_got_init(&g3);
	tag_subscribe("test", "src2", NULL, tag_test_cb, &g3);
	tag_test_pub(&recs[0], "src2", "x", TAG_UINT32, 0);
	tag_test_pub(&recs[1], "src2", "y", TAG_UINT32, 1);
	tag_test_pub(&recs[2], "src3", "x", TAG_UINT32, 7);
	tag_test_pub(&recs[3], "src2", "z", TAG_UINT32, 2);
	tag_test_publish(recs, 4, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	tap_ok(g3.n == 3 && g3.ordered && g3.first == 0 && g3.last == 2,
	    "a source subscription gets every tag of the source, no other");
	tag_test_got_init(&g3);
	tag_test_got_init(&g4);
	tag_subscribe("test", "src2", "y", tag_test_cb, &g4);
	tag_test_publish(&recs[1], 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	tap_ok(g3.n == 1 && g4.n == 1,
	    "a tag and its source subscriber each get the value once");

	tag_test_got_init(&g4);
	sub4 = tag_subscribe("test", "fan", "self", tag_test_cb, &g4);
	g4.self = sub4;
	tag_test_pub(&recs[0], "fan", "self", TAG_INT8, 1);
	tag_test_pub(&recs[1], "fan", "self", TAG_INT8, 2);
	tag_test_pub(&recs[2], "fan", "self", TAG_INT8, 3);
	tag_test_publish(recs, 3, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	n1 = g4.n;
	tag_test_publish(recs, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	if (!tap_ok(n1 == 1 && g4.n == 1, "tag_unsubscribe from the callback "
	    "stops the values queued behind it and later ones"))
		printf("#   %d calls, then %d\n", n1, g4.n);
	tag_test_got_init(&ga);
	tag_test_got_init(&gb);
	subb = tag_subscribe("test", "fan", "pair", tag_test_cb, &gb);
	suba = tag_subscribe("test", "fan", "pair", tag_test_cb, &ga);
	ga.other = subb;
	gb.other = suba;
	tag_test_pub(&pub, "fan", "pair", TAG_BOOLEAN, 1);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	n1 = ga.n + gb.n;
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_test_drain(base);
	if (!tap_ok(n1 == 1 && ga.n + gb.n == 2 && (ga.n == 0 || gb.n == 0),
	    "a callback unsubscribing the other subscriber: that one is not "
	    "called, the first gets the next value"))
		printf("#   %d calls, then %d + %d\n", n1, ga.n, gb.n);

	tag_test_got_init(&g);
	tag_test_pub(&pub, "fan", "a", TAG_UINT64, 5);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	tag_unsubscribe(sub);
	tag_test_drain(base);
	tap_ok(g.n == 0 && tag_get(t, &rec) == 0 && rec.value.n.u == 5,
	    "tag_unsubscribe before the loop runs: nothing delivered");
	tap_ok(!tag_test_reentered,
	    "no subscriber ever ran inside a tag_publish call");
	tag_free();
}

/* The queue cap: more than TAG_QUEUE_MAX values drop the oldest. */
static void
tag_test_cap(struct event_base *base)
{
	struct tag_test_got	 g;
	struct tag_sub		*sub;
	struct tag_pub		*recs;
	char			*cause, buf[4096], what[128];
	const char		*p;
	double			 t0, spent = 0;
	uint64_t		 v = 0, total = TAG_TEST_QMAX + TAG_TEST_QOVER;
	size_t			 i, k, len;
	FILE			*log;
	int			 saved, skip = 0, logged = 0;

	tag_init(base);
	tag_test_got_init(&g);
	sub = tag_subscribe("test", "cap", "v", tag_test_cb, &g);
	if ((recs = calloc(TAG_TEST_BATCH, sizeof *recs)) == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	fflush(stderr);
	saved = dup(2);
	log = tmpfile();
	dup2(fileno(log), 2);
	t0 = tag_test_now();
	while (v < total) {
		k = total - v < TAG_TEST_BATCH ? total - v : TAG_TEST_BATCH;
		for (i = 0; i < k; i++)
			tag_test_pub(&recs[i], "cap", "v", TAG_UINT64, v + i);
		if (tag_test_publish(recs, k, TAG_ORIGIN_REST, &cause) != 0) {
			printf("Bail out! publish: %s\n", cause);
			exit(1);
		}
		v += k;
		if (v == TAG_TEST_QPROBE) {
			spent = (tag_test_now() - t0) * total / TAG_TEST_QPROBE;
			if (spent > TAG_TEST_QBUDGET) {
				skip = 1;
				break;
			}
		}
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(log);
	len = fread(buf, 1, sizeof buf - 1, log);
	buf[len] = '\0';
	fclose(log);
	for (p = buf; (p = strstr(p, "queue full")) != NULL; p++)
		logged++;
	if (skip) {
		snprintf(what, sizeof what, "the queue cap # SKIP 2^20 values "
		    "would take %.1f s", spent);
		for (i = 0; i < 5; i++)
			tap_ok(1, what);
	} else {
		tap_is_int(tag_test_metric("uplinkd_tag_fanout_dropped_total"),
		    TAG_TEST_QOVER, "2^20 + 10 values queued: 10 dropped");
		tap_is_int(tag_test_metric("uplinkd_tag_fanout_queue"),
		    TAG_TEST_QMAX, "the queue holds 2^20 values");
		if (!tap_is_int(logged, 1, "the drops are logged once"))
			printf("#   log: %s\n", buf);
		tap_is_int(g.n, 0, "nothing was delivered inside tag_publish");
		tag_test_drain(base);
		if (!tap_ok(g.n == TAG_TEST_QMAX && g.ordered &&
		    g.first == TAG_TEST_QOVER && g.last == total - 1,
		    "the oldest were dropped; the rest come in order"))
			printf("#   n %d ordered %d first %" PRIu64 "\n", g.n,
			    g.ordered, g.first);
	}
	tag_unsubscribe(sub);
	free(recs);
	tag_free();
}

/* Origin writers and tag_write. */
static void
tag_test_writers(struct event_base *base)
{
	struct tag_test_writer	 w;
	struct tag_pub		 pub;
	struct tag_value	 val;
	struct tag		*old, *rest, *fresh, *rw, *late;
	char			*cause;
	int			 rc;

	tag_init(base);
	memset(&w, 0, sizeof w);
	memset(&val, 0, sizeof val);
	val.type = TAG_UINT16;
	val.n.u = 42;
	tag_test_pub(&pub, "mq", "old", TAG_UINT16, 5);
	tag_test_publish(&pub, 1, TAG_ORIGIN_MQTT, &cause);
	free(cause);
	tag_test_pub(&pub, "mq", "rest", TAG_UINT16, 5);
	tag_test_publish(&pub, 1, TAG_ORIGIN_REST, &cause);
	free(cause);
	old = tag_find("test", "mq", "old");
	rest = tag_find("test", "mq", "rest");
	tap_ok(old != NULL && rest != NULL &&
	    tag_get_access(old) == TAG_ACCESS_R &&
	    tag_get_origin(old) == TAG_ORIGIN_MQTT,
	    "a published tag is read-only without an origin writer");
	cause = NULL;
	rc = tag_write(old, &val, &cause);
	tap_ok(rc == -1 && cause != NULL &&
	    strstr(cause, "test/mq/old") != NULL &&
	    strstr(cause, "not writable") != NULL && w.calls == 0,
	    "tag_write refuses an r-only tag and names it");
	free(cause);

	tag_set_origin_writer(TAG_ORIGIN_MQTT, tag_test_write_cb, &w);
	tap_is_int(tag_get_access(old), TAG_ACCESS_R | TAG_ACCESS_W,
	    "tag_set_origin_writer makes the origin's tags rw");
	cause = NULL;
	rc = tag_write(old, &val, &cause);
	tap_ok(rc == 0 && cause == NULL && w.calls == 1 && w.arg == &w &&
	    strcmp(w.name, "test/mq/old") == 0 && w.type == TAG_UINT16 &&
	    w.u == 42, "tag_write hands the tag and value to the writer");
	cause = NULL;
	rc = tag_write(rest, &val, &cause);
	tap_ok(tag_get_access(rest) == TAG_ACCESS_R && rc == -1 &&
	    cause != NULL && strstr(cause, "test/mq/rest") != NULL &&
	    w.calls == 1, "a tag of another origin stays r-only");
	free(cause);
	tag_test_pub(&pub, "mq", "fresh", TAG_UINT16, 5);
	tag_test_publish(&pub, 1, TAG_ORIGIN_MQTT, &cause);
	free(cause);
	fresh = tag_find("test", "mq", "fresh");
	cause = NULL;
	rc = fresh != NULL ? tag_write(fresh, &val, &cause) : -2;
	tap_ok(rc == 0 && tag_get_access(fresh) ==
	    (TAG_ACCESS_R | TAG_ACCESS_W) && w.calls == 2 &&
	    strcmp(w.name, "test/mq/fresh") == 0,
	    "a new tag of the origin gets rw and the writer");
	free(cause);
	w.fail = 1;
	cause = NULL;
	rc = tag_write(fresh, &val, &cause);
	tap_ok(rc == -1 && cause != NULL &&
	    strcmp(cause, "device says no") == 0,
	    "the writer's failure and cause come back");
	free(cause);
	w.fail = 0;

	tag_set_origin_writer(TAG_ORIGIN_MQTT, NULL, NULL);
	cause = NULL;
	rc = tag_write(old, &val, &cause);
	tap_ok(tag_get_access(old) == TAG_ACCESS_R &&
	    tag_get_access(fresh) == TAG_ACCESS_R && rc == -1 &&
	    cause != NULL && strstr(cause, "test/mq/old") != NULL &&
	    w.calls == 3,
	    "a NULL origin writer takes w away; tag_write names the tag");
	free(cause);
	tag_test_pub(&pub, "mq", "late", TAG_UINT16, 5);
	tag_test_publish(&pub, 1, TAG_ORIGIN_MQTT, &cause);
	free(cause);
	late = tag_find("test", "mq", "late");
	tap_ok(late != NULL && tag_get_access(late) == TAG_ACCESS_R,
	    "a new tag of the origin is r-only again");
	rw = tag_define("test", "virt", "rw", TAG_INT32, "",
	    TAG_ACCESS_R | TAG_ACCESS_W, 0, TAG_ORIGIN_VIRTUAL);
	cause = NULL;
	rc = tag_write(rw, &val, &cause);
	tap_ok(rc == -1 && cause != NULL &&
	    strstr(cause, "test/virt/rw") != NULL &&
	    strstr(cause, "no write path") != NULL,
	    "a w tag without a writer is refused, naming the tag");
	free(cause);
	tag_free();
}

int
main(void)
{
	struct event_base	*base;

	log_init(1, LOG_LEVEL_WARN);
	metrics_init();
	if ((base = event_base_new()) == NULL) {
		printf("Bail out! event_base_new\n");
		return (1);
	}
	tag_test_registry(base);
	tag_test_names(base);
	tag_test_big(base);
	tag_test_checks(base);
	tag_test_values();
	tag_test_fast(base);
	tag_test_fanout(base);
	tag_test_cap(base);
	tag_test_writers(base);
	tap_is_int(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
	    EVENT_BASE_COUNT_ACTIVE), 0, "tag_free leaves nothing on the loop");
	event_base_free(base);
	metrics_free();
	return (tap_done());
}

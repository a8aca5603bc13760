/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the twin / shadow engine (twin.c): dotted paths, the
 * mapping's validation and bounds, diffs, the Azure array encoding both
 * ways, and reported and desired properties against the daemon's real
 * route tables, with a real configuration store and a real auth module in
 * a temporary data directory.  Hostile documents: deep nesting, huge
 * arrays, wrong types, oversized mappings.
 */

#include <sys/stat.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tap.h"
#include "twin.h"
#include "uplinkd.h"
#include "util.h"
#include "xmalloc.h"

/* Calls a twin made, and whether they go in as a local caller. */
struct twin_test_calls {
	int	get;
	int	put;
	int	local;
};

static char	 twin_test_dir[] = "/tmp/uplinkd-twin-test.XXXXXX";
static char	*twin_test_token;	/* the static API token */
static uint64_t	 twin_test_uptime;

/* api_system.c wants these from uplinkd.c, which is not in the library. */
uint64_t
uplinkd_uptime(void)
{
	return (twin_test_uptime);
}

struct event_base *
uplinkd_base(void)
{
	return (NULL);
}

/* Parse test JSON; caller frees.  Bails out on a broken literal. */
static struct json *
twin_test_json(const char *text)
{
	struct json	*j;
	char		*cause = NULL;

	if ((j = json_parse(text, strlen(text), &cause)) == NULL) {
		printf("Bail out! test JSON %s: %s\n", text, cause);
		exit(1);
	}
	return (j);
}

/* Is got the document want (JSON text; NULL: no document)? */
static int
twin_test_is(const struct json *got, const char *want, const char *name)
{
	struct json	*w = NULL;
	char		*g;
	int		 same;

	if (want != NULL)
		w = twin_test_json(want);
	same = want == NULL ? got == NULL : got != NULL && json_equal(got, w);
	json_free(w);
	if (!tap_ok(same, name)) {
		g = got == NULL ? xstrdup("NULL") : json_dump(got, NULL);
		printf("#   got  %s\n#   want %s\n", g, want ? want : "NULL");
		free(g);
	}
	return (same);
}

/* Is the dump of got exactly want (member order included)? */
static int
twin_test_text(const struct json *got, const char *want, const char *name)
{
	char	*g;
	int	 same;

	g = got == NULL ? xstrdup("NULL") : json_dump(got, NULL);
	same = tap_is_str(g, want, name);
	free(g);
	return (same);
}

/* Does cause start with want?  Frees cause. */
static int
twin_test_cause(char *cause, const char *want, const char *name)
{
	int	good;

	good = cause != NULL && strncmp(cause, want, strlen(want)) == 0;
	if (!tap_ok(good, name))
		printf("#   got \"%s\", want \"%s...\"\n",
		    cause ? cause : "(null)", want);
	free(cause);
	return (good);
}

/* The dispatcher, counting; a local caller carries the API token. */
static void
twin_test_dispatch(struct api_req *req, struct api_resp *resp, void *arg)
{
	struct twin_test_calls	*c = arg;
	static struct api_kv	 h;

	if (req->method == API_GET)
		c->get++;
	else if (req->method == API_PUT)
		c->put++;
	if (c->local) {
		h.key = "mx-api-token";
		h.value = twin_test_token;
		req->headers = &h;
		req->nheaders = 1;
		req->origin = API_ORIGIN_HTTP;
	}
	api_dispatch(req, resp);
}

/* A local call with the API token; the answer's data (caller frees). */
static struct json *
twin_test_api(int method, const char *path, const char *body, int *status)
{
	struct api_req	 req;
	struct api_resp	 resp;
	struct api_kv	 h;
	struct json	*data;

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.method = method;
	req.path = path;
	req.peer = "test";
	h.key = "mx-api-token";
	h.value = twin_test_token;
	req.headers = &h;
	req.nheaders = 1;
	if (body != NULL) {
		req.content_type = "application/json";
		req.body = body;
		req.bodylen = strlen(body);
	}
	api_dispatch(&req, &resp);
	*status = resp.status;
	data = json_take(resp.body, "data");
	api_req_clear(&req);
	api_resp_clear(&resp);
	return (data);
}

/* admin's e-mail address as the API has it now; caller frees. */
static char *
twin_test_email(void)
{
	struct json	*u;
	const char	*s;
	char		*email;
	int		 status;

	u = twin_test_api(API_GET, "/users/1", NULL, &status);
	s = json_get_string(u, "email");
	email = xstrdup(status == 200 && s != NULL ? s : "(none)");
	json_free(u);
	return (email);
}

/* Send stderr (the log) to a file of the test directory; the old fd. */
static int
twin_test_log_begin(void)
{
	char	*path;
	int	 fd, saved;

	fflush(stderr);
	path = util_path(twin_test_dir, "log");
	if ((saved = dup(2)) == -1 ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    dup2(fd, 2) == -1) {
		printf("Bail out! cannot redirect stderr to %s\n", path);
		exit(1);
	}
	close(fd);
	free(path);
	return (saved);
}

/* Restore stderr; what was logged meanwhile (caller frees). */
static char *
twin_test_log_end(int saved)
{
	char	*path, *text, *cause = NULL;

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	path = util_path(twin_test_dir, "log");
	if ((text = util_read_file(path, 1 << 20, NULL, &cause)) == NULL) {
		printf("Bail out! %s\n", cause);
		exit(1);
	}
	free(path);
	return (text);
}

/* How often needle occurs in s. */
static int
twin_test_count(const char *s, const char *needle)
{
	int	n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return (n);
}

/* A twin over mapping text, or bail out. */
static struct twin *
twin_test_new(const char *mapping, int flags)
{
	struct json	*m;
	struct twin	*tw;
	char		*cause = NULL;

	m = twin_test_json(mapping);
	if ((tw = twin_new(m, flags, &cause)) == NULL) {
		printf("Bail out! twin_new: %s\n", cause);
		exit(1);
	}
	json_free(m);
	return (tw);
}

/* Validate mapping text; the cause (caller frees) or NULL if valid. */
static char *
twin_test_validate(const char *mapping)
{
	struct json	*m;
	char		*cause = NULL;

	m = twin_test_json(mapping);
	if (twin_validate(m, &cause) == 0) {
		free(cause);
		cause = NULL;
	}
	json_free(m);
	return (cause);
}

/* {"a":...} nested n levels deep around 1, as text; caller frees. */
static char *
twin_test_nest(const char *outer, const char *key, int n)
{
	char	*s;
	size_t	 len, i, off = 0;

	len = strlen(outer) + n * (strlen(key) + 5) + 8;
	s = xmalloc(len);
	off += snprintf(s + off, len - off, "{\"%s\":", outer);
	for (i = 0; i < (size_t)n; i++)
		off += snprintf(s + off, len - off, "{\"%s\":", key);
	off += snprintf(s + off, len - off, "1");
	for (i = 0; i <= (size_t)n; i++)
		off += snprintf(s + off, len - off, "}");
	return (s);
}

/* [v]; takes ownership of v. */
static struct json *
twin_wrap_array(struct json *v)
{
	struct json	*a;

	a = json_new_array();
	json_array_push(a, v);
	return (a);
}

/* Paths: set and get, the empty path, deep paths, collisions. */
static void
twin_test_paths(void)
{
	struct json	*doc, *v;
	char		*cause = NULL, path[1024];
	size_t		 i, off;
	int		 rc;

	doc = json_new_object();
	rc = twin_path_set(doc, "a", json_new_int(1), &cause);
	tap_ok(rc == 0 && json_int(json_get_path(doc, "a")) == 1,
	    "set a one-segment path, get it back");
	rc = twin_path_set(doc, "b.c.d", json_new_string("x"), &cause);
	tap_ok(rc == 0 && json_type(json_get(doc, "b")) == JSON_OBJECT &&
	    json_type(json_get_path(doc, "b.c")) == JSON_OBJECT &&
	    strcmp(json_string(json_get_path(doc, "b.c.d")), "x") == 0,
	    "set b.c.d: the objects on the way are made");
	rc = twin_path_set(doc, "b.c.e", json_new_bool(1), &cause);
	twin_test_is(doc, "{\"a\":1,\"b\":{\"c\":{\"d\":\"x\",\"e\":true}}}",
	    "setting next to a member keeps its siblings");
	rc = twin_path_set(doc, "b.c", json_new_int(7), &cause);
	twin_test_is(doc, "{\"a\":1,\"b\":{\"c\":7}}",
	    "setting an existing member replaces it, subtree and all");

	rc = twin_path_set(doc, "b.c.z", json_new_string("lost"), &cause);
	tap_ok(rc == -1, "descending into a number is refused");
	tap_is_str(cause, "path \"b.c.z\": \"b.c\" is a number, not an object",
	    "the cause names the path, where it stopped and what is there");
	free(cause);
	cause = NULL;
	twin_test_is(doc, "{\"a\":1,\"b\":{\"c\":7}}",
	    "a refused set leaves the document as it was");
	rc = twin_path_set(doc, "a.b.c.d", json_new_array(), &cause);
	twin_test_cause(cause, "path \"a.b.c.d\": \"a\" is a number",
	    "a collision at the first segment is named too");
	cause = NULL;

	rc = twin_path_set(doc, "", twin_test_json("{\"new\":[1,2]}"), &cause);
	twin_test_is(rc == 0 ? doc : NULL, "{\"new\":[1,2]}",
	    "the empty path replaces the whole document by an object");
	rc = twin_path_set(doc, "", json_new_int(3), &cause);
	tap_ok(rc == -1, "the empty path with a number is refused");
	twin_test_cause(cause, "path \"\": only an object can replace",
	    "and says an object is needed");
	cause = NULL;

	rc = twin_path_set(doc, "a..b", json_new_int(1), &cause);
	twin_test_cause(rc == -1 ? cause : NULL, "path: \"a..b\" has an empty "
	    "segment", "a..b: an empty segment is refused");
	cause = NULL;
	rc = twin_path_set(doc, ".a", json_new_int(1), &cause);
	tap_ok(rc == -1, "a leading dot is refused");
	free(cause);
	cause = NULL;
	rc = twin_path_set(doc, "a.", json_new_int(1), &cause);
	tap_ok(rc == -1, "a trailing dot is refused");
	free(cause);
	cause = NULL;

	/* 32 segments are the most. */
	off = 0;
	for (i = 0; i < 32; i++)
		off += snprintf(path + off, sizeof path - off, "%sk%zu",
		    i == 0 ? "" : ".", i);
	rc = twin_path_set(doc, path, json_new_string("deep"), &cause);
	v = json_get_path(doc, path);
	tap_ok(rc == 0 && v != NULL && strcmp(json_string(v), "deep") == 0,
	    "a path of 32 segments is set and read back");
	snprintf(path + off, sizeof path - off, ".k32");
	rc = twin_path_set(doc, path, json_new_int(1), &cause);
	twin_test_cause(rc == -1 ? cause : NULL, "path: deeper than 32 "
	    "segments", "33 segments are refused");
	cause = NULL;

	memset(path, 'x', 255);
	path[255] = '\0';
	rc = twin_path_set(doc, path, json_new_int(255), &cause);
	tap_ok(rc == 0 && json_int(json_get_path(doc, path)) == 255,
	    "a segment of 255 bytes is fine (json_get_path reads it)");
	path[255] = 'x';
	path[256] = '\0';
	rc = twin_path_set(doc, path, json_new_int(256), &cause);
	twin_test_cause(rc == -1 ? cause : NULL, "path: a segment is longer "
	    "than 255 bytes", "a segment of 256 bytes is refused");
	cause = NULL;
	for (i = 0; i < 600; i++)
		path[i] = (i % 10 == 9) ? '.' : 'y';
	path[600] = '\0';
	rc = twin_path_set(doc, path, json_new_int(1), &cause);
	twin_test_cause(rc == -1 ? cause : NULL, "path: must be at most 512 "
	    "bytes long", "a path of 600 bytes is refused");
	cause = NULL;
	json_free(doc);

	doc = json_new_array();
	rc = twin_path_set(doc, "a", json_new_int(1), &cause);
	twin_test_cause(rc == -1 ? cause : NULL, "path \"a\": the document is "
	    "an array, not an object", "a document that is not an object is "
	    "refused");
	json_free(doc);
}

/* The mapping: shape, known resources, bounds, messages. */
static void
twin_test_validation(void)
{
	struct json	*m, *origin, *list;
	struct twin	*tw;
	char		*cause = NULL, *big, name[32];
	size_t		 i, off, len;

	tap_ok(twin_test_validate("{\"device\":{\"general\":[{\"reportedPath\":"
	    "\"general\",\"desiredPath\":\"general\"}],\"ethernets\":[{"
	    "\"source\":\"\",\"reportedPath\":\"eth\",\"desiredPath\":\"\"}],"
	    "\"time\":[]},"
	    "\"system services\":{\"status\":[{\"source\":\"load.avg1\","
	    "\"reportedPath\":\"sys.load\",\"desiredPath\":\"\"}]},\"system\":"
	    "{\"status\":[]},\"cloud\":{\"mqtt\":[]},\"x\":{\"/users/1\":[{"
	    "\"reportedPath\":\"u\",\"desiredPath\":\"u\"}]}}") == NULL,
	    "the vendor's shape with every known resource and a path "
	    "resource is valid");
	tap_is_str(twin_resource_path("device", "general"), "/device/general",
	    "device.general is /device/general");
	tap_is_str(twin_resource_path("device", "ethernets"),
	    "/device/ethernets", "device.ethernets is /device/ethernets");
	tap_is_str(twin_resource_path("device", "time"), "/device/time",
	    "device.time is /device/time");
	tap_ok(twin_resource_path("system services", "status") != NULL &&
	    strcmp(twin_resource_path("system", "status"), "/system/status")
	    == 0 && strcmp(twin_resource_path("system services", "status"),
	    "/system/status") == 0,
	    "\"system services\".status and system.status are /system/status");
	tap_is_str(twin_resource_path("cloud", "mqtt"), "/mqtt",
	    "cloud.mqtt is /mqtt");
	tap_is_str(twin_resource_path("anything", "/tags/list"), "/tags/list",
	    "a resource named by a path is that path, under any origin");
	tap_ok(twin_resource_path("device", "status") == NULL &&
	    twin_resource_path("cloud", "general") == NULL,
	    "a known name under the wrong origin is unknown");

	twin_test_cause(twin_test_validate("{\"device\":{\"foo\":[]}}"),
	    "device.foo: unknown resource", "device.foo: unknown resource");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":[{"
	    "\"desiredPath\":\"g\"}]}}"), "device.general[0].reportedPath: is "
	    "required", "a missing reportedPath is named with its entry");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":[{"
	    "\"reportedPath\":\"\",\"desiredPath\":\"g\"}]}}"),
	    "device.general[0].reportedPath: must be 1 to 512 characters",
	    "an empty reportedPath is refused");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":[{"
	    "\"reportedPath\":\"g\"}]}}"), "device.general[0].desiredPath: is "
	    "required", "desiredPath is required");
	tap_ok(twin_test_validate("{\"device\":{\"general\":[{\"reportedPath\":"
	    "\"g\",\"desiredPath\":\"\"}]}}") == NULL,
	    "an empty desiredPath (report only) is valid");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":[{"
	    "\"source\":5,\"reportedPath\":\"g\",\"desiredPath\":\"\"}]}}"),
	    "device.general[0].source: must be a string, not a number",
	    "a source that is not a string");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":[{"
	    "\"reportedPath\":\"a..b\",\"desiredPath\":\"\"}]}}"),
	    "device.general[0].reportedPath: \"a..b\" has an empty segment",
	    "a malformed path is named with its entry");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":{}}}"),
	    "device.general: must be an array, not an object",
	    "entries that are not an array");
	twin_test_cause(twin_test_validate("{\"device\":{\"general\":[5]}}"),
	    "device.general[0]: must be an object, not a number",
	    "an entry that is not an object");
	twin_test_cause(twin_test_validate("{\"device\":[]}"),
	    "device: must be an object, not an array",
	    "an origin that is not an object");
	twin_test_cause(twin_test_validate("[]"),
	    "mapping: must be an object, not an array",
	    "a mapping that is not an object");
	twin_test_cause(twin_test_validate("{\"\":{}}"),
	    "mapping: an origin name must not be empty",
	    "an empty origin name");

	/* 17 entries for one resource. */
	m = twin_test_json("{\"device\":{\"general\":[]}}");
	list = json_get_path(m, "device.general");
	for (i = 0; i < 17; i++)
		json_array_push(list, twin_test_json("{\"reportedPath\":\"g\","
		    "\"desiredPath\":\"\"}"));
	tap_ok(twin_validate(m, &cause) == -1, "17 entries are refused");
	twin_test_cause(cause, "device.general: must have 0 to 16 elements",
	    "and the message names the resource");
	cause = NULL;
	json_free(json_array_take(list, 16));
	tap_ok(twin_validate(m, &cause) == 0, "16 entries are fine");
	json_free(m);

	/* 10,000 resources under one origin. */
	m = json_new_object();
	origin = json_new_object();
	json_set(m, "x", origin);
	for (i = 0; i < 10000; i++) {
		snprintf(name, sizeof name, "/r/%zu", i);
		json_set(origin, name, twin_test_json("[{\"reportedPath\":"
		    "\"a\",\"desiredPath\":\"\"}]"));
	}
	tw = twin_new(m, 0, &cause);
	tap_ok(tw == NULL, "a mapping of 10,000 resources is refused");
	twin_test_cause(cause, "x: at most 64 resources, not 10000",
	    "with a cause naming the origin and the bound");
	cause = NULL;
	json_free(m);

	/* 65 origins. */
	m = json_new_object();
	for (i = 0; i < 65; i++) {
		snprintf(name, sizeof name, "o%zu", i);
		json_set(m, name, json_new_object());
	}
	twin_test_cause(twin_validate(m, &cause) == -1 ? cause : NULL,
	    "mapping: at most 64 origins, not 65", "65 origins are refused");
	cause = NULL;
	json_free(json_take(m, "o64"));
	tap_ok(twin_validate(m, &cause) == 0, "64 origins are fine");
	json_free(m);

	/* A reportedPath of 513 bytes. */
	len = 513 + 128;
	big = xmalloc(len);
	off = snprintf(big, len, "{\"d\":{\"/a\":[{\"desiredPath\":\"\","
	    "\"reportedPath\":\"");
	for (i = 0; i < 513; i++)
		big[off++] = (i % 8 == 7) ? '.' : 'p';
	snprintf(big + off, len - off, "\"}]}}");
	twin_test_cause(twin_test_validate(big), "d./a[0].reportedPath: must "
	    "be 1 to 512 characters long", "a path of 513 bytes is refused");
	free(big);

	m = twin_test_json("{\"device\":{\"foo\":[]}}");
	tw = twin_new(m, 0, &cause);
	tap_ok(tw == NULL && json_get_path(m, "device.foo") != NULL,
	    "twin_new refuses an invalid mapping and leaves it alone");
	free(cause);
	cause = NULL;
	json_free(m);
	twin_free(NULL);
}

/* Diffs: changed, unchanged, removed, nested, arrays as a whole. */
static void
twin_test_diffs(void)
{
	struct {
		const char	*old;
		const char	*cur;
		const char	*want;
		const char	*name;
	} t[] = {
		{ "{\"a\":1,\"b\":\"x\"}", "{\"b\":\"x\",\"a\":1}", NULL,
		    "identical documents (any member order): no patch" },
		{ "{\"a\":1,\"b\":\"x\"}", "{\"a\":2,\"b\":\"x\"}", "{\"a\":2}",
		    "a changed member; the unchanged one is absent" },
		{ "{\"a\":1,\"b\":2}", "{\"a\":1}", "{\"b\":null}",
		    "a member gone becomes null" },
		{ "{\"a\":1}", "{\"a\":1,\"c\":{\"d\":[1]}}",
		    "{\"c\":{\"d\":[1]}}", "a new member comes whole" },
		{ "{\"a\":{\"x\":1,\"y\":2}}", "{\"a\":{\"x\":1,\"y\":3,"
		    "\"z\":4}}", "{\"a\":{\"y\":3,\"z\":4}}",
		    "nested objects are compared member by member" },
		{ "{\"a\":{\"b\":{\"c\":1,\"d\":2}}}", "{\"a\":{\"b\":{"
		    "\"c\":1}}}", "{\"a\":{\"b\":{\"d\":null}}}",
		    "a member gone deep down becomes null deep down" },
		{ "{\"a\":[1,2,3]}", "{\"a\":[1,2,4]}", "{\"a\":[1,2,4]}",
		    "a changed array is replaced as a whole" },
		{ "{\"a\":[{\"x\":1}]}", "{\"a\":[{\"x\":1}]}", NULL,
		    "equal arrays of objects: no patch" },
		{ "{\"a\":{\"x\":1}}", "{\"a\":5}", "{\"a\":5}",
		    "an object replaced by a number" },
		{ "{\"a\":5}", "{\"a\":{\"x\":1}}", "{\"a\":{\"x\":1}}",
		    "a number replaced by an object comes whole" },
		{ "{\"a\":1}", "{\"a\":null}", "{\"a\":null}",
		    "a value that became null" },
		{ "{\"a\":1}", "{\"a\":1.0}", NULL,
		    "1 and 1.0 are the same number" },
		{ "{}", "{}", NULL, "two empty objects: no patch" },
		{ "{\"a\":{}}", "{\"a\":{}}", NULL,
		    "equal empty members: no patch" },
	};
	struct json	*old, *cur, *d;
	size_t		 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		old = twin_test_json(t[i].old);
		cur = twin_test_json(t[i].cur);
		d = twin_diff(old, cur);
		twin_test_is(d, t[i].want, t[i].name);
		json_free(d);
		json_free(old);
		json_free(cur);
	}
	cur = twin_test_json("{\"a\":{\"b\":1}}");
	d = twin_diff(NULL, cur);
	twin_test_is(d, "{\"a\":{\"b\":1}}",
	    "no old document: everything is new");
	json_free(d);
	d = twin_diff(cur, NULL);
	twin_test_is(d, "{\"a\":null}",
	    "no new document: everything is gone");
	json_free(d);
	json_free(cur);
	cur = json_new_object();
	tap_ok(twin_diff(NULL, cur) == NULL, "nothing against {}: no patch");
	json_free(cur);
}

/* The Azure array encoding both ways. */
static void
twin_test_arrays(void)
{
	struct {
		const char	*plain;
		const char	*encoded;
		const char	*name;
	} t[] = {
		{ "[1,2]", "{\"0\":1,\"1\":2,\"arraySize\":2}",
		    "a flat array" },
		{ "[]", "{\"arraySize\":0}", "an empty array" },
		{ "{\"a\":[[1],[2,3]]}", "{\"a\":{\"0\":{\"0\":1,"
		    "\"arraySize\":1},\"1\":{\"0\":2,\"1\":3,\"arraySize\":2},"
		    "\"arraySize\":2}}", "nested arrays" },
		{ "{\"e\":[{\"ip\":[\"a\",\"b\"],\"up\":true},null]}",
		    "{\"e\":{\"0\":{\"ip\":{\"0\":\"a\",\"1\":\"b\","
		    "\"arraySize\":2},\"up\":true},\"1\":null,"
		    "\"arraySize\":2}}",
		    "arrays inside objects inside arrays" },
		{ "{\"s\":\"x\",\"n\":1.5,\"o\":{}}",
		    "{\"s\":\"x\",\"n\":1.5,\"o\":{}}",
		    "a document without arrays is unchanged" },
		{ "7", "7", "a lone scalar" },
	};
	struct {
		const char	*doc;
		const char	*cause;
		const char	*name;
	} bad[] = {
		{ "{\"0\":1,\"arraySize\":\"1\"}", "document: malformed array "
		    "encoding (arraySize must be an integer from 0 to 65536)",
		    "arraySize as a string" },
		{ "{\"arraySize\":-1}", "document: malformed array encoding",
		    "arraySize -1" },
		{ "{\"0\":1,\"arraySize\":1.5}", "document: malformed array "
		    "encoding", "arraySize 1.5" },
		{ "{\"arraySize\":65537}", "document: malformed array "
		    "encoding (arraySize must be", "arraySize 65537" },
		{ "{\"0\":1,\"2\":3,\"arraySize\":2}", "document: malformed "
		    "array encoding (element \"1\" is missing)",
		    "a missing element" },
		{ "{\"0\":1,\"x\":2,\"arraySize\":1}", "document: malformed "
		    "array encoding (2 members for arraySize 1)",
		    "a member that is no element" },
		{ "{\"a\":{\"b\":[{\"arraySize\":1}]}}", "a.b[0]: malformed "
		    "array encoding (0 members for arraySize 1)",
		    "a malformed encoding deep down is named by its path" },
		{ "{\"a\":{\"0\":{\"0\":true,\"arraySize\":3},"
		    "\"arraySize\":1}}",
		    "a.0: malformed array encoding",
		    "inside an encoding, the element is named" },
	};
	struct json	*p, *e, *d, *big;
	char		*cause = NULL;
	size_t		 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		p = twin_test_json(t[i].plain);
		e = twin_encode_arrays(p);
		twin_test_is(e, t[i].encoded, t[i].name);
		d = twin_decode_arrays(e, &cause);
		if (!twin_test_is(d, t[i].plain, "and it decodes back"))
			printf("#   cause %s\n", cause ? cause : "none");
		json_free(p);
		json_free(e);
		json_free(d);
	}
	p = twin_test_json("[\"a\",\"b\"]");
	e = twin_encode_arrays(p);
	twin_test_text(e, "{\"0\":\"a\",\"1\":\"b\",\"arraySize\":2}",
	    "elements in order, arraySize last");
	json_free(p);
	json_free(e);

	e = twin_test_json("{\"x\":{\"y\":{\"1\":\"b\",\"0\":\"a\","
	    "\"arraySize\":2},\"z\":{\"k\":{\"arraySize\":0}}}}");
	d = twin_decode_arrays(e, &cause);
	twin_test_is(d, "{\"x\":{\"y\":[\"a\",\"b\"],\"z\":{\"k\":[]}}}",
	    "encodings anywhere decode, in any member order; other objects "
	    "pass through");
	json_free(d);
	json_free(e);

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		e = twin_test_json(bad[i].doc);
		cause = NULL;
		d = twin_decode_arrays(e, &cause);
		if (d != NULL)
			tap_ok(0, bad[i].name);
		else
			twin_test_cause(cause, bad[i].cause, bad[i].name);
		json_free(d);
		json_free(e);
	}

	/* The largest array round-trips; the next size is refused. */
	big = json_new_array();
	for (i = 0; i < 65536; i++)
		json_array_push(big, json_new_int(i));
	e = twin_encode_arrays(big);
	d = twin_decode_arrays(e, &cause);
	tap_ok(json_int(json_get(e, "arraySize")) == 65536 && d != NULL &&
	    json_equal(d, big), "65,536 elements round-trip");
	json_free(d);
	json_free(e);
	for (; i < 100000; i++)
		json_array_push(big, json_new_int(i));
	e = twin_encode_arrays(big);
	cause = NULL;
	d = twin_decode_arrays(e, &cause);
	twin_test_cause(d == NULL ? cause : NULL, "document: malformed array "
	    "encoding (arraySize must be", "an encoding of 100,000 elements "
	    "is refused");
	cause = NULL;
	d = twin_decode_arrays(big, &cause);
	twin_test_cause(d == NULL ? cause : NULL, "document: an array of "
	    "100000 elements is too long (at most 65536)", "a plain array of "
	    "100,000 elements is refused too");
	json_free(e);
	json_free(big);

	/* As deep as a parsed document can be, and one level more. */
	big = json_new_int(1);
	for (i = 0; i < 64; i++) {
		if (i % 2 == 0)
			big = twin_wrap_array(big);
		else {
			e = json_new_object();
			json_set(e, "d", big);
			big = e;
		}
	}
	cause = NULL;
	d = twin_decode_arrays(big, &cause);
	tap_ok(d != NULL && json_equal(d, big), "64 levels (objects and "
	    "arrays) are decoded");
	json_free(d);
	free(cause);
	big = twin_wrap_array(big);
	cause = NULL;
	d = twin_decode_arrays(big, &cause);
	twin_test_cause(d == NULL ? cause : NULL, "[0].d[0].d[0].d[0].d",
	    "65 levels are refused");
	json_free(big);

	/* Deeper than any parsed document can be. */
	big = json_new_int(1);
	for (i = 0; i < 200; i++) {
		e = json_new_object();
		json_set(e, "d", big);
		big = e;
	}
	cause = NULL;
	d = twin_decode_arrays(big, &cause);
	tap_ok(d == NULL && cause != NULL && strncmp(cause, "d.d.d.d.", 8) ==
	    0 && strstr(cause, ": nested deeper than 64 levels") != NULL,
	    "a document 200 levels deep is refused, not recursed through");
	free(cause);
	json_free(big);
}

/* Reported properties over real routes. */
static void
twin_test_report(void)
{
	struct twin_test_calls	 calls;
	struct twin		*tw;
	struct json		*r, *list;
	const char		*first;
	char			*log;
	int			 saved;

	tw = twin_test_new("{\"system\":{\"/health\":["
	    "{\"source\":\"status\",\"reportedPath\":\"health.status\","
	    "\"desiredPath\":\"\"},"
	    "{\"source\":\"uptimeSec\",\"reportedPath\":\"health.uptime\","
	    "\"desiredPath\":\"\"},"
	    "{\"source\":\"nothere\",\"reportedPath\":\"health.missing\","
	    "\"desiredPath\":\"\"},"
	    "{\"source\":\"status\",\"reportedPath\":\"health.status.sub\","
	    "\"desiredPath\":\"\"}],"
	    "\"/metrics\":[{\"reportedPath\":\"metrics\","
	    "\"desiredPath\":\"\"}],"
	    "\"/nope\":[{\"reportedPath\":\"nope\",\"desiredPath\":\"\"}]},"
	    "\"users\":{\"/users/1\":["
	    "{\"source\":\"name\",\"reportedPath\":\"admin.name\","
	    "\"desiredPath\":\"\"},"
	    "{\"source\":\"permissions\",\"reportedPath\":\"admin.perms\","
	    "\"desiredPath\":\"\"}]}}", 0);
	memset(&calls, 0, sizeof calls);
	twin_set_dispatch(tw, twin_test_dispatch, &calls);
	first = "{\"health\":{\"status\":\"ok\",\"uptime\":0,\"missing\":null},"
	    "\"metrics\":{\"error\":\"/metrics is not a JSON resource\","
	    "\"status\":500},\"nope\":{\"error\":\"no such resource: /nope\","
	    "\"status\":404},\"admin\":{\"name\":\"admin\",\"perms\":["
	    "\"SYS_MAINTENANCE_RW\",\"SYS_USER_RW\"]}}";
	twin_test_uptime = 0;
	saved = twin_test_log_begin();
	r = twin_report(tw, 0);
	twin_test_is(r, first, "the first report has everything: values cut "
	    "at source, null for a missing source, error entries; the "
	    "colliding entry is skipped");
	json_free(r);
	tap_is_int(calls.get, 4, "8 entries over 4 resources: 4 GETs");
	tap_is_int(calls.put, 0, "a report PUTs nothing");
	r = twin_report(tw, 0);
	tap_ok(r == NULL, "nothing changed: no patch");
	json_free(r);
	tap_is_int(calls.get, 8, "each report GETs each resource again, once");

	twin_test_uptime = 42;
	r = twin_report(tw, 0);
	twin_test_is(r, "{\"health\":{\"uptime\":42}}",
	    "the resource changed: only the change is reported");
	json_free(r);
	r = twin_report(tw, 1);
	twin_test_is(r, "{\"health\":{\"status\":\"ok\",\"uptime\":42,"
	    "\"missing\":null},\"metrics\":{\"error\":\"/metrics is not a JSON "
	    "resource\",\"status\":500},\"nope\":{\"error\":\"no such "
	    "resource: /nope\",\"status\":404},\"admin\":{\"name\":\"admin\","
	    "\"perms\":[\"SYS_MAINTENANCE_RW\",\"SYS_USER_RW\"]}}",
	    "a full report has everything again");
	json_free(r);
	log = twin_test_log_end(saved);
	tap_ok(twin_test_count(log, "collides") == 1 && strstr(log,
	    "twin: system./health: reportedPath health.status.sub collides, "
	    "entry skipped: path \"health.status.sub\": \"health.status\" is "
	    "a string, not an object") != NULL, "over four reports, the "
	    "collision is logged once, naming the entry and why");
	free(log);

	list = twin_test_json("[\"/health\",\"/nope\"]");
	twin_forget(tw, list);
	json_free(list);
	r = twin_report(tw, 0);
	twin_test_is(r, "{\"health\":{\"status\":\"ok\",\"uptime\":42,"
	    "\"missing\":null},\"nope\":{\"error\":\"no such resource: /nope\","
	    "\"status\":404}}", "forgotten resources are reported again, "
	    "the others not");
	json_free(r);
	list = twin_test_json("[\"nothing\",5,null,{\"a\":1}]");
	twin_forget(tw, list);
	twin_forget(tw, NULL);
	json_free(list);
	list = twin_test_json("{\"/health\":1}");
	twin_forget(tw, list);
	json_free(list);
	r = twin_report(tw, 0);
	tap_ok(r == NULL, "unknown names, non-strings and a non-array are "
	    "ignored by twin_forget");
	json_free(r);

	twin_set_dispatch(tw, NULL, NULL);
	r = twin_report(tw, 0);
	tap_ok(r == NULL && calls.get == 24, "without a hook the twin calls "
	    "api_dispatch() itself");
	json_free(r);
	twin_free(tw);

	tw = twin_test_new("{\"u\":{\"/users/1\":[{\"source\":\"permissions\","
	    "\"reportedPath\":\"perms\",\"desiredPath\":\"\"},{\"source\":"
	    "\"roles\",\"reportedPath\":\"r.roles\",\"desiredPath\":\"\"}]}}",
	    TWIN_AZURE_ARRAYS);
	r = twin_report(tw, 0);
	twin_test_is(r, "{\"perms\":{\"0\":\"SYS_MAINTENANCE_RW\",\"1\":"
	    "\"SYS_USER_RW\",\"arraySize\":2},\"r\":{\"roles\":{\"0\":{"
	    "\"id\":1,\"name\":\"Administrator\"},\"arraySize\":1}}}",
	    "TWIN_AZURE_ARRAYS: reported arrays are encoded, recursively");
	json_free(r);
	twin_free(tw);
}

/* Desired properties: PUTs over real routes, errors, hostile documents. */
static void
twin_test_desired(void)
{
	struct twin_test_calls	 calls;
	struct twin		*tw;
	struct json		*d, *r, *v, *big;
	char			*email, *text, *cause;
	size_t			 i;
	const char		*mapping;

	mapping = "{\"users\":{\"/users/1\":["
	    "{\"source\":\"email\",\"reportedPath\":\"admin.email\","
	    "\"desiredPath\":\"admin.email\"},"
	    "{\"source\":\"isActive\",\"reportedPath\":\"admin.active\","
	    "\"desiredPath\":\"admin.active\"},"
	    "{\"source\":\"\",\"reportedPath\":\"adminAll\","
	    "\"desiredPath\":\"adminAll\"},"
	    "{\"source\":\"name.first\",\"reportedPath\":\"admin.first\","
	    "\"desiredPath\":\"admin.first\"}],"
	    "\"/nope\":[{\"reportedPath\":\"nope\","
	    "\"desiredPath\":\"nope\"}]}}";

	/* As the clouds call: PUT /users/{id} is not remotely callable. */
	tw = twin_test_new(mapping, 0);
	d = twin_test_json("{\"admin\":{\"email\":\"cloud@example.com\"}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"email\":{\"error\":\"PUT /users/{id} "
	    "cannot be called remotely\",\"status\":403}}}", "as a remote "
	    "caller, a desired change to a route closed to the clouds is an "
	    "error entry with 403");
	json_free(r);
	json_free(d);
	email = twin_test_email();
	tap_is_str(email, "(none)", "and the account is unchanged");
	free(email);
	twin_free(tw);

	/* As a local caller (the hook adds the API token). */
	tw = twin_test_new(mapping, 0);
	memset(&calls, 0, sizeof calls);
	calls.local = 1;
	twin_set_dispatch(tw, twin_test_dispatch, &calls);
	r = twin_report(tw, 1);
	json_free(r);
	calls.get = 0;

	d = twin_test_json("{\"$version\":3,\"admin\":{\"email\":"
	    "\"new@example.com\"}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"email\":\"new@example.com\"}}",
	    "desired e-mail: PUT /users/1, the new value reported back");
	json_free(r);
	json_free(d);
	email = twin_test_email();
	tap_is_str(email, "new@example.com", "the account has it");
	free(email);
	tap_ok(calls.get == 1 && calls.put == 1, "one GET, one PUT");
	r = twin_report(tw, 0);
	twin_test_is(r, "{\"adminAll\":{\"email\":\"new@example.com\"}}",
	    "the next report sends only what the desired answer did not");
	json_free(r);

	calls.get = calls.put = 0;
	d = twin_test_json("{\"admin\":{\"email\":\"two@example.com\","
	    "\"active\":true},\"adminAll\":{\"expiredAfter\":null,"
	    "\"$metadata\":{\"x\":1}}}");
	r = twin_desired(tw, d);
	tap_ok(calls.put == 1 && calls.get == 1, "three entries into one "
	    "resource: one GET, one PUT");
	tap_ok(json_equal(json_get_path(r, "admin.email"), json_get_path(d,
	    "admin.email")) && json_bool(json_get_path(r, "admin.active")) &&
	    strcmp(json_get_string(json_get(r, "adminAll"), "email"),
	    "two@example.com") == 0 && json_get_path(r, "adminAll.$metadata")
	    == NULL, "all three are reported back; \"$\" members are ignored");
	json_free(r);
	json_free(d);

	calls.get = calls.put = 0;
	d = twin_test_json("{\"admin\":{\"email\":\"two@example.com\"}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"email\":\"two@example.com\"}}",
	    "a desired value the resource has already is reported back");
	tap_ok(calls.put == 0, "without a PUT");
	json_free(r);
	json_free(d);

	calls.get = calls.put = 0;
	d = twin_test_json("{\"adminAll\":{\"$version\":7,\"$metadata\":{"
	    "\"$lastUpdated\":\"2024-01-01T00:00:00Z\"}}}");
	r = twin_desired(tw, d);
	tap_ok(calls.put == 0 && calls.get == 1 && strcmp(json_get_string(
	    json_get(r, "adminAll"), "email"), "two@example.com") == 0,
	    "a desired section of nothing but \"$\" members changes nothing: "
	    "no PUT, the resource reported back");
	json_free(r);
	json_free(d);

	calls.get = calls.put = 0;
	d = twin_test_json("{\"admin\":{\"email\":5}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"email\":{\"error\":\"email: must be a "
	    "string, not a number\",\"status\":400}}}", "a PUT that fails (a "
	    "number for the e-mail): error entry with the handler's message "
	    "and 400");
	json_free(r);
	json_free(d);
	email = twin_test_email();
	tap_is_str(email, "two@example.com", "the account keeps its address");
	free(email);

	d = twin_test_json("{\"admin\":{\"email\":{\"a\":1},"
	    "\"active\":false}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"email\":{\"error\":\"email: must be a "
	    "string, not an object\",\"status\":400},\"active\":{\"error\":"
	    "\"email: must be a string, not an object\",\"status\":400}}}",
	    "a failed PUT is the answer of every entry it carried");
	json_free(r);
	json_free(d);

	d = twin_test_json("{\"admin\":{\"active\":false}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"active\":{\"error\":\"isActive: the "
	    "last active account cannot be deactivated\",\"status\":400}}}",
	    "a PUT the resource refuses for its own reasons");
	json_free(r);
	json_free(d);

	calls.put = 0;
	d = twin_test_json("{\"adminAll\":\"not an object\",\"nope\":1}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"adminAll\":{\"error\":\"adminAll: must be an "
	    "object, not a string\",\"status\":400},\"nope\":{\"error\":\"no "
	    "such resource: /nope\",\"status\":404}}", "a whole-resource "
	    "entry given a string, and a resource that cannot be read");
	tap_ok(calls.put == 0, "neither PUTs anything");
	json_free(r);
	json_free(d);

	calls.put = 0;
	d = twin_test_json("{\"admin\":{\"first\":\"Ada\"}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"admin\":{\"first\":{\"error\":\"path "
	    "\\\"name.first\\\": \\\"name\\\" is a string, not an object\","
	    "\"status\":400}}}", "a source that runs into a string in the "
	    "resource: an error entry, no PUT");
	tap_ok(calls.put == 0, "and no PUT");
	json_free(r);
	json_free(d);

	d = twin_test_json("{\"admin\":\"flat\",\"adminAll\":null}");
	r = twin_desired(tw, d);
	tap_ok(r == NULL, "a desiredPath under a string, and a null (an "
	    "Azure deletion), concern no entry: no patch");
	json_free(r);
	json_free(d);
	d = twin_test_json("[1,2]");
	r = twin_desired(tw, d);
	tap_ok(r == NULL && twin_desired(tw, NULL) == NULL,
	    "a desired document that is not an object: no patch");
	json_free(d);

	/* Nested 60 deep: within what the parser takes. */
	calls.put = 0;
	text = twin_test_nest("adminAll", "n", 59);
	d = twin_test_json(text);
	free(text);
	r = twin_desired(tw, d);
	tap_ok(r != NULL && strcmp(json_get_string(json_get(r, "adminAll"),
	    "email"), "two@example.com") == 0 && json_get_path(r,
	    "adminAll.n") == NULL, "a desired document 60 levels deep is "
	    "PUT; the resource drops what it does not know");
	json_free(r);
	json_free(d);

	/* 200 deep, hand-built. */
	big = json_new_int(1);
	for (i = 0; i < 200; i++) {
		v = json_new_object();
		json_set(v, "n", big);
		big = v;
	}
	d = json_new_object();
	json_set(d, "adminAll", big);
	calls.put = 0;
	r = twin_desired(tw, d);
	text = json_dump(r, NULL);
	tap_ok(calls.put == 0 && json_int(json_get_path(r, "adminAll.status"))
	    == 400 && json_get_string(json_get(r, "adminAll"), "error") !=
	    NULL && strncmp(json_get_string(json_get(r, "adminAll"), "error"),
	    "adminAll.n.n.n", 14) == 0 && strstr(json_get_string(json_get(r,
	    "adminAll"), "error"), "nested deeper than 64 levels") != NULL,
	    "200 levels: an error entry, no PUT");
	if (calls.put != 0 || r == NULL)
		printf("#   got %s\n", text);
	free(text);
	json_free(r);
	json_free(d);

	/* 100,000 elements. */
	big = json_new_array();
	for (i = 0; i < 100000; i++)
		json_array_push(big, json_new_int(i));
	d = json_new_object();
	v = json_new_object();
	json_set(v, "roles", big);
	json_set(d, "adminAll", v);
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"adminAll\":{\"error\":\"adminAll.roles: an array "
	    "of 100000 elements is too long (at most 65536)\",\"status\":400}}",
	    "a desired array of 100,000 elements: an error entry");
	tap_ok(calls.put == 0, "and no PUT");
	json_free(r);
	json_free(d);
	twin_free(tw);

	/* Azure encodings in desired documents. */
	tw = twin_test_new(mapping, TWIN_AZURE_ARRAYS);
	memset(&calls, 0, sizeof calls);
	calls.local = 1;
	twin_set_dispatch(tw, twin_test_dispatch, &calls);
	d = twin_test_json("{\"adminAll\":{\"email\":\"az@example.com\","
	    "\"roles\":{\"0\":{\"id\":1,\"name\":\"Administrator\"},"
	    "\"$metadata\":{},\"arraySize\":1}}}");
	r = twin_desired(tw, d);
	tap_ok(calls.put == 1 && strcmp(json_get_string(json_get(r,
	    "adminAll"), "email"), "az@example.com") == 0 &&
	    json_int(json_get_path(r, "adminAll.roles.arraySize")) == 1 &&
	    json_int(json_get_path(r, "adminAll.permissions.arraySize")) == 2,
	    "TWIN_AZURE_ARRAYS: an encoded desired array (with Azure's \"$\" "
	    "members) is decoded for the PUT, and the answer is encoded");
	json_free(r);
	json_free(d);
	email = twin_test_email();
	tap_is_str(email, "az@example.com", "the account has the address");
	free(email);

	calls.put = 0;
	d = twin_test_json("{\"adminAll\":{\"email\":\"bad@example.com\","
	    "\"roles\":{\"0\":1,\"5\":2,\"arraySize\":2}}}");
	r = twin_desired(tw, d);
	twin_test_is(r, "{\"adminAll\":{\"error\":\"adminAll.roles: malformed "
	    "array encoding (element \\\"1\\\" is missing)\",\"status\":400}}",
	    "a malformed encoding: an error entry naming where");
	tap_ok(calls.put == 0, "and nothing is PUT");
	json_free(r);
	json_free(d);

	big = json_new_object();
	for (i = 0; i < 100000; i++) {
		char	key[16];

		snprintf(key, sizeof key, "%zu", i);
		json_set(big, key, json_new_int(i));
	}
	json_set(big, "arraySize", json_new_int(100000));
	d = json_new_object();
	v = json_new_object();
	json_set(v, "roles", big);
	json_set(d, "adminAll", v);
	r = twin_desired(tw, d);
	cause = xstrdup(json_get_string(json_get(r, "adminAll"), "error") ?
	    json_get_string(json_get(r, "adminAll"), "error") : "none");
	twin_test_cause(cause, "adminAll.roles: malformed array encoding "
	    "(arraySize must be an integer from 0 to 65536)",
	    "an encoded array of 100,000 elements is refused");
	tap_ok(calls.put == 0, "without a PUT");
	json_free(r);
	json_free(d);
	email = twin_test_email();
	tap_is_str(email, "az@example.com", "the account is untouched by the "
	    "refused documents");
	free(email);
	twin_free(tw);
}

static int
twin_test_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

int
main(void)
{
	struct store	*store;
	char		*cause = NULL, *path;

	log_init(1, LOG_LEVEL_WARN);
	if (mkdtemp(twin_test_dir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	path = util_path(twin_test_dir, "config.tch");
	if ((store = store_open(path, &cause)) == NULL ||
	    auth_init(store, twin_test_dir, &cause) != 0) {
		printf("Bail out! %s\n", cause);
		return (1);
	}
	free(path);
	auth_set_iterations(1000);
	metrics_init();
	api_init(store);
	path = util_path(twin_test_dir, "api-token");
	twin_test_token = util_read_file(path, 4096, NULL, &cause);
	free(path);
	if (twin_test_token == NULL) {
		printf("Bail out! %s\n", cause);
		return (1);
	}
	twin_test_token[strcspn(twin_test_token, "\r\n")] = '\0';

	twin_test_paths();
	twin_test_validation();
	twin_test_diffs();
	twin_test_arrays();
	twin_test_report();
	twin_test_desired();

	api_free();
	metrics_free();
	auth_free();
	store_close(store);
	free(twin_test_token);
	nftw(twin_test_dir, twin_test_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return (tap_done());
}

/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the REST core (api.c): api_dispatch() with hand-built
 * requests over the daemon's real route tables, a real configuration
 * store and a real auth module in a temporary data directory.  Covers
 * tokens in both header forms, 401/404/405/415/400 and their shapes,
 * route precedence, percent-escapes, remote origins and the counters.
 */

#include <sys/stat.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tap.h"
#include "uplinkd.h"
#include "util.h"
#include "xmalloc.h"

static char	 api_test_dir[] = "/tmp/uplinkd-api-test.XXXXXX";
static char	*api_test_token;	/* the static API token */
static char	*api_test_jwt;		/* admin's JWT */

/* api_system.c wants these from uplinkd.c, which is not in the library. */
uint64_t
uplinkd_uptime(void)
{
	return (0);
}

struct event_base *
uplinkd_base(void)
{
	return (NULL);
}

/* Run one request; resp is filled and must be cleared by the caller. */
static void
api_test_req(struct api_req *req, struct api_resp *resp)
{
	memset(resp, 0, sizeof *resp);
	if (req->peer == NULL)
		req->peer = "test";
	api_dispatch(req, resp);
	api_req_clear(req);
}

/*
 * A request with an optional "Authorization: Bearer" token and an
 * optional JSON body (sent as application/json).
 */
static void
api_test(struct api_resp *resp, int method, const char *path,
    const char *bearer, const char *body)
{
	struct api_req	 req;
	struct api_kv	 h;
	char		*value = NULL;

	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = path;
	if (bearer != NULL) {
		xasprintf(&value, "Bearer %s", bearer);
		h.key = "Authorization";
		h.value = value;
		req.headers = &h;
		req.nheaders = 1;
	}
	if (body != NULL) {
		req.content_type = "application/json";
		req.body = body;
		req.bodylen = strlen(body);
	}
	api_test_req(&req, resp);
	free(value);
}

/* A response header; borrowed, NULL if absent. */
static const char *
api_test_header(const struct api_resp *resp, const char *key)
{
	size_t	i;

	for (i = 0; i < resp->nheaders; i++)
		if (strcasecmp(resp->headers[i].key, key) == 0)
			return (resp->headers[i].value);
	return (NULL);
}

/* The message of a nested error, or NULL. */
static const char *
api_test_msg(const struct api_resp *resp)
{
	return (json_string(json_get_path(resp->body, "error.message")));
}

/*
 * Is resp a nested error {"error":{"code":status,"message":...}} whose
 * message starts with want?  Prints what it got if not.
 */
static int
api_test_error(const struct api_resp *resp, int status, const char *want)
{
	const struct json	*err = json_get(resp->body, "error");
	const char		*msg = api_test_msg(resp);
	int			 good;

	good = resp->status == status && json_object_size(resp->body) == 1 &&
	    json_object_size(err) == 2 &&
	    json_int(json_get(err, "code")) == status && msg != NULL &&
	    strncmp(msg, want, strlen(want)) == 0;
	if (!good) {
		char	*dump = json_dump(resp->body, NULL);

		printf("#   status %d body %s; want %d \"%s...\"\n",
		    resp->status, dump, status, want);
		free(dump);
	}
	return (good);
}

/* Read a one-line file of the data directory; caller frees. */
static char *
api_test_read(const char *name)
{
	char	*path, *text, *cause = NULL;

	path = util_path(api_test_dir, name);
	if ((text = util_read_file(path, 4096, NULL, &cause)) == NULL) {
		printf("# %s\n", cause);
		exit(1);
	}
	text[strcspn(text, "\r\n")] = '\0';
	free(path);
	return (text);
}

/* Log in through the API; the token (caller frees) or NULL. */
static char *
api_test_login(const char *name, const char *pw, struct api_resp *resp)
{
	struct json	*body;
	char		*text, *token = NULL;

	body = json_new_object();
	json_set(body, "name", json_new_string(name));
	json_set(body, "password", json_new_string(pw));
	text = json_dump(body, NULL);
	json_free(body);
	api_test(resp, API_POST, "/auth", NULL, text);
	free(text);
	if (resp->status == 200)
		token = xstrdup(json_string(json_get_path(resp->body,
		    "data.token")));
	return (token);
}

static int
api_test_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

/*
 * Swap two GET routes in the dispatcher's table, so that a test can show
 * that precedence does not come from the order of the tables.  The table
 * is api.c's own heap copy; api_routes() lends it read-only, and this is
 * the one place that writes to it.
 */
static void
api_test_swap(const char *a, const char *b)
{
	struct api_route	*r, tmp;
	size_t			 n, i, ia = SIZE_MAX, ib = SIZE_MAX;

	r = (struct api_route *)api_routes(&n);
	for (i = 0; i < n; i++) {
		if (r[i].method != API_GET)
			continue;
		if (strcmp(r[i].pattern, a) == 0)
			ia = i;
		else if (strcmp(r[i].pattern, b) == 0)
			ib = i;
	}
	if (ia == SIZE_MAX || ib == SIZE_MAX) {
		printf("Bail out! GET %s or %s is not routed\n", a, b);
		exit(1);
	}
	tmp = r[ia];
	r[ia] = r[ib];
	r[ib] = tmp;
}

/* Tokens: both header forms, bad and missing ones. */
static void
api_test_tokens(void)
{
	struct api_resp	 resp;
	struct api_req	 req;
	struct api_kv	 h[2];
	char		*bad;

	api_test(&resp, API_GET, "/health", NULL, NULL);
	tap_ok(resp.status == 200 && strcmp(json_string(json_get_path(
	    resp.body, "data.status")), "ok") == 0,
	    "GET /health needs no token");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/users", NULL, NULL);
	tap_ok(api_test_error(&resp, 401, "authentication required") &&
	    api_test_header(&resp, "WWW-Authenticate") != NULL &&
	    strncmp(api_test_header(&resp, "WWW-Authenticate"), "Bearer", 6)
	    == 0, "no token: 401 {error:{code,message}} with WWW-Authenticate");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/users", "not-a-token", NULL);
	tap_ok(api_test_error(&resp, 401, "authentication required"),
	    "a bad token: 401");
	api_resp_clear(&resp);

	bad = xstrdup(api_test_token);
	bad[strlen(bad) - 1] = '\0';
	api_test(&resp, API_GET, "/users", bad, NULL);
	tap_ok(resp.status == 401, "the API token less its last character: "
	    "401");
	api_resp_clear(&resp);
	free(bad);
	xasprintf(&bad, "%sx", api_test_token);
	api_test(&resp, API_GET, "/users", bad, NULL);
	tap_ok(resp.status == 401, "the API token plus a character: 401");
	api_resp_clear(&resp);
	free(bad);

	api_test(&resp, API_GET, "/users", api_test_token, NULL);
	tap_ok(resp.status == 200 &&
	    json_int(json_get(resp.body, "count")) == 1 &&
	    json_array_size(json_get(resp.body, "data")) == 1,
	    "Authorization: Bearer <API token>: 200 {count,data}");
	api_resp_clear(&resp);

	memset(&req, 0, sizeof req);
	req.method = API_GET;
	req.path = "/users";
	h[0].key = "MX-API-Token";
	h[0].value = api_test_token;
	req.headers = h;
	req.nheaders = 1;
	api_test_req(&req, &resp);
	tap_ok(resp.status == 200, "mx-api-token: <API token> (any case): 200");
	api_resp_clear(&resp);

	xasprintf(&bad, "bearer   %s", api_test_jwt);
	h[0].key = "authorization";
	h[0].value = bad;
	api_test_req(&req, &resp);
	tap_ok(resp.status == 200,
	    "authorization: bearer <JWT> (lower case, extra blanks): 200");
	api_resp_clear(&resp);
	free(bad);

	xasprintf(&bad, "Basic %s", api_test_token);
	h[0].value = bad;
	api_test_req(&req, &resp);
	tap_ok(resp.status == 401, "Authorization: Basic <token>: 401");
	api_resp_clear(&resp);
	free(bad);

	h[0].key = "Authorization";
	h[0].value = "Bearer ";
	h[1].key = "mx-api-token";
	h[1].value = api_test_token;
	req.nheaders = 2;
	api_test_req(&req, &resp);
	tap_ok(resp.status == 200,
	    "an empty Bearer falls back to mx-api-token");
	api_resp_clear(&resp);
	h[0].value = "Bearer wrong";
	api_test_req(&req, &resp);
	tap_ok(resp.status == 401,
	    "a wrong Bearer token is not rescued by a good mx-api-token");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/auth", api_test_jwt, NULL);
	tap_ok(resp.status == 200 && strcmp(json_string(json_get(resp.body,
	    "data")), "ok") == 0, "GET /auth with a JWT: 200 \"ok\"");
	api_resp_clear(&resp);
}

/* Routing: 404, 405, precedence, ids, escapes, slashes. */
static void
api_test_routing(void)
{
	struct api_resp	 resp;
	char		 path[256];
	size_t		 i;

	api_test(&resp, API_GET, "/nope", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 404, "no such resource: /nope"),
	    "unknown path with a token: 404 naming it");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/nope", NULL, NULL);
	tap_ok(api_test_error(&resp, 401, "authentication required"),
	    "unknown path without a token: 401, nothing revealed");
	api_resp_clear(&resp);

	api_test(&resp, API_DELETE, "/auth", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 405, "method DELETE is not allowed here; "
	    "allowed: GET, POST") && api_test_header(&resp, "Allow") != NULL &&
	    strcmp(api_test_header(&resp, "Allow"), "GET, POST") == 0,
	    "DELETE /auth: 405 with Allow: GET, POST");
	api_resp_clear(&resp);
	api_test(&resp, API_POST, "/health", api_test_token, "{}");
	tap_ok(resp.status == 405 && api_test_header(&resp, "Allow") != NULL &&
	    strcmp(api_test_header(&resp, "Allow"), "GET") == 0,
	    "POST /health: 405 with Allow: GET");
	api_resp_clear(&resp);
	api_test(&resp, API_POST, "/health", NULL, "{}");
	tap_ok(resp.status == 401 && api_test_header(&resp, "Allow") == NULL,
	    "405 is not revealed without a token either");
	api_resp_clear(&resp);
	api_test(&resp, API_OTHER, "/users", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 405, "this method is not allowed here; "
	    "allowed: GET, POST"), "HEAD, OPTIONS and the like: 405");
	api_resp_clear(&resp);
	api_test(&resp, API_OTHER, "/users", NULL, NULL);
	tap_ok(resp.status == 401, "and 401 without a token");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/users/me", api_test_jwt, NULL);
	tap_ok(resp.status == 200 && strcmp(json_string(json_get_path(
	    resp.body, "data.name")), "admin") == 0,
	    "GET /users/me (literal) beats /users/{id}: admin's account");
	api_resp_clear(&resp);
	api_test_swap("/users/me", "/users/{id}");
	api_test(&resp, API_GET, "/users/me", api_test_jwt, NULL);
	tap_ok(resp.status == 200 && strcmp(json_string(json_get_path(
	    resp.body, "data.name")), "admin") == 0,
	    "still so with /users/{id} first in the table: the score decides");
	api_resp_clear(&resp);
	api_test_swap("/users/me", "/users/{id}");
	api_test(&resp, API_GET, "/users/me", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "Authorization: the API token "
	    "belongs to no account"), "GET /users/me with the API token: 400 "
	    "from the /users/me handler, not an id error");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/1", api_test_token, NULL);
	tap_ok(resp.status == 200 && json_int(json_get_path(resp.body,
	    "data.id")) == 1 && json_get_path(resp.body,
	    "data.passwordHash") == NULL,
	    "GET /users/1: 200, no password hash");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/abc", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "id: must be a positive integer, "
	    "not \"abc\""), "GET /users/abc: 400 naming the id");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/0", api_test_token, NULL);
	tap_ok(resp.status == 400, "GET /users/0: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/-1", api_test_token, NULL);
	tap_ok(resp.status == 400, "GET /users/-1: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/1x", api_test_token, NULL);
	tap_ok(resp.status == 400, "GET /users/1x: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/18446744073709551616", api_test_token,
	    NULL);
	tap_ok(resp.status == 400, "GET /users/2^64: 400, no wrap-around");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/99", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 404, "user 99 not found"),
	    "GET /users/99: 404");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/users/%31", api_test_token, NULL);
	tap_ok(resp.status == 200 && json_int(json_get_path(resp.body,
	    "data.id")) == 1, "GET /users/%31 decodes to /users/1");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users%2Fme", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 404, "no such resource"),
	    "/users%2Fme is one segment: 404");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/me%2F", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "id: must be a positive integer, "
	    "not \"me/\""), "/users/me%2F: %2F stays inside the segment");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/%00", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "path: bad percent-escape"),
	    "%00 in a path: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/%zz", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "path: bad percent-escape"),
	    "%zz in a path: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/1%4", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "path: bad percent-escape"),
	    "a truncated escape at the end: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/%/x", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "path: bad percent-escape"),
	    "a lone % before a slash: 400");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/users/", api_test_token, NULL);
	tap_ok(resp.status == 200 && json_get(resp.body, "count") != NULL,
	    "GET /users/ (trailing slash) is GET /users");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "/users/1/", api_test_token, NULL);
	tap_ok(resp.status == 200, "GET /users/1/ is GET /users/1");
	api_resp_clear(&resp);
	api_test(&resp, API_GET, "users", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "path: must start with /"),
	    "a path without a leading slash: 400");
	api_resp_clear(&resp);
	for (i = 0; i < 17; i++)
		memcpy(path + 2 * i, "/a", 3);
	api_test(&resp, API_GET, path, api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "path: more than 16 segments"),
	    "17 segments: 400");
	api_resp_clear(&resp);
}

/* Bodies: 415, malformed JSON, required bodies, validation. */
static void
api_test_bodies(void)
{
	struct api_resp	 resp;
	struct api_req	 req;
	struct api_kv	 h;
	const char	*msg;
	char		*auth;

	memset(&req, 0, sizeof req);
	xasprintf(&auth, "Bearer %s", api_test_token);
	h.key = "Authorization";
	h.value = auth;
	req.headers = &h;
	req.nheaders = 1;
	req.method = API_POST;
	req.path = "/users";
	req.body = "{\"name\":\"x\"}";
	req.bodylen = strlen(req.body);
	req.content_type = "text/plain";
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 415, "Content-Type: must be "
	    "application/json, not text/plain"), "text/plain: 415");
	api_resp_clear(&resp);
	req.content_type = NULL;
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 415, "Content-Type: must be "
	    "application/json, not absent"), "no Content-Type: 415");
	api_resp_clear(&resp);
	req.content_type = "application/jsonx";
	api_test_req(&req, &resp);
	tap_ok(resp.status == 415, "application/jsonx: 415");
	api_resp_clear(&resp);
	req.content_type = "multipart/form-data; boundary=x";
	api_test_req(&req, &resp);
	tap_ok(resp.status == 415, "multipart where the route takes none: 415");
	api_resp_clear(&resp);
	req.content_type = " Application/JSON ; charset=utf-8";
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "password: is required"),
	    "Application/JSON with parameters is JSON (reaches validation)");
	api_resp_clear(&resp);

	req.content_type = "application/json";
	req.body = "{\"name\":";
	req.bodylen = strlen(req.body);
	api_test_req(&req, &resp);
	msg = api_test_msg(&resp);
	tap_ok(api_test_error(&resp, 400, "body: malformed JSON at byte 8") &&
	    strchr(msg, '\n') == NULL, "malformed JSON: 400 \"body: ...\" "
	    "with the byte, one line");
	api_resp_clear(&resp);
	req.body = "{\"name\":\"a\\u0000b\",\"password\":\"12345678\"}";
	req.bodylen = strlen(req.body);
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "name: must not contain NUL"),
	    "a NUL in a string: 400 naming the field");
	api_resp_clear(&resp);
	req.body = "";
	req.bodylen = 0;
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "body: a JSON document is required"),
	    "an empty body where one is required: 400");
	api_resp_clear(&resp);
	req.body = "[1]";
	req.bodylen = 3;
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "body: must be an object, not an "
	    "array"), "a body that is not an object: 400");
	api_resp_clear(&resp);
	req.body = "{\"name\":\"bob\",\"password\":\"short\"}";
	req.bodylen = strlen(req.body);
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "password: must be 8 to 128 "
	    "characters long"), "a short password: 400 naming the rule");
	api_resp_clear(&resp);
	req.body = "{\"name\":\"bob\",\"password\":\"bobsecret\",\"id\":7,"
	    "\"whatever\":1}";
	req.bodylen = strlen(req.body);
	api_test_req(&req, &resp);
	tap_ok(resp.status == 200 && strcmp(json_string(json_get_path(
	    resp.body, "data.name")), "bob") == 0 &&
	    json_bool(json_get_path(resp.body, "data.isActive")) &&
	    json_int(json_get_path(resp.body, "data.id")) == 2,
	    "POST /users: 200, unknown members ignored, id allocated");
	api_resp_clear(&resp);
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "name: an account named bob already "
	    "exists"), "the same name again: 400");
	api_resp_clear(&resp);

	req.path = "/auth";
	req.nheaders = 0;
	req.body = "{\"name\":\"bob\"";
	req.bodylen = strlen(req.body);
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 400, "body: malformed JSON"),
	    "malformed JSON on the public POST /auth: 400 too");
	api_resp_clear(&resp);
	free(auth);
}

/* Logins, throttling, password changes and deletion through the API. */
static void
api_test_accounts(void)
{
	struct api_resp	 resp;
	char		*jwt, *old;

	jwt = api_test_login("bob", "bobsecret", &resp);
	tap_ok(jwt != NULL && strcmp(json_string(json_get_path(resp.body,
	    "data.user.name")), "bob") == 0 && json_get_path(resp.body,
	    "data.user.passwordHash") == NULL,
	    "POST /auth: 200 with a token and the user, no hash");
	api_resp_clear(&resp);
	free(api_test_login("bob", "wrongpass", &resp));
	tap_ok(api_test_error(&resp, 401, "The account or password") &&
	    resp.delay_ms > 0, "a wrong password: 401, answer delayed");
	api_resp_clear(&resp);
	free(api_test_login("bob", "bobsecret", &resp));
	tap_ok(api_test_error(&resp, 429, "too many failed logins") &&
	    api_test_header(&resp, "Retry-After") != NULL,
	    "right password at once after a failure: 429 with Retry-After");
	api_resp_clear(&resp);

	api_test(&resp, API_GET, "/users/me", jwt, NULL);
	tap_ok(resp.status == 200 && strcmp(json_string(json_get_path(
	    resp.body, "data.name")), "bob") == 0,
	    "bob's JWT: /users/me is bob");
	api_resp_clear(&resp);
	api_test(&resp, API_PUT, "/users/me/password", jwt,
	    "{\"oldPassword\":\"nope-nope\",\"newPassword\":\"bobsecret2\"}");
	tap_ok(api_test_error(&resp, 400, "oldPassword: Invalid current"),
	    "a wrong old password: 400");
	api_resp_clear(&resp);
	api_test(&resp, API_PUT, "/users/me/password", jwt,
	    "{\"oldPassword\":\"bobsecret\",\"newPassword\":\"bobsecret2\"}");
	tap_ok(resp.status == 200, "PUT /users/me/password: 200");
	api_resp_clear(&resp);
	old = jwt;
	api_test(&resp, API_GET, "/users/me", old, NULL);
	tap_ok(resp.status == 401, "the token from before the change: 401");
	api_resp_clear(&resp);
	free(old);

	api_test(&resp, API_DELETE, "/users/2", api_test_token, NULL);
	tap_ok(resp.status == 204 && resp.body == NULL,
	    "DELETE /users/2: 204 without a body");
	api_resp_clear(&resp);
	api_test(&resp, API_DELETE, "/users/2", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 404, "user 2 not found"),
	    "DELETE it again: 404");
	api_resp_clear(&resp);
	api_test(&resp, API_DELETE, "/users/1", api_test_token, NULL);
	tap_ok(api_test_error(&resp, 400, "id: the last active account cannot "
	    "be deleted"), "DELETE the last account: 400");
	api_resp_clear(&resp);
}

/* Remote callers (the clouds): no token, but not every route. */
static void
api_test_remote(void)
{
	struct api_resp	 resp;
	struct api_req	 req;

	memset(&req, 0, sizeof req);
	req.origin = API_ORIGIN_REMOTE;
	req.method = API_GET;
	req.path = "/users";
	api_test_req(&req, &resp);
	tap_ok(resp.status == 200, "remote GET /users needs no token");
	api_resp_clear(&resp);
	req.path = "/users/me";
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 403, "GET /users/me cannot be called "
	    "remotely"), "remote GET /users/me (API_NOREMOTE): 403");
	api_resp_clear(&resp);
	req.method = API_POST;
	req.path = "/auth";
	req.content_type = "application/json";
	req.body = "{\"name\":\"admin\",\"password\":\"x\"}";
	req.bodylen = strlen(req.body);
	api_test_req(&req, &resp);
	tap_ok(resp.status == 403, "remote POST /auth: 403, no login from "
	    "the clouds");
	api_resp_clear(&resp);
	req.method = API_GET;
	req.path = "/nowhere";
	api_test_req(&req, &resp);
	tap_ok(api_test_error(&resp, 404, "no such resource"),
	    "remote unknown path: 404 (no token to ask for)");
	api_resp_clear(&resp);
	req.method = API_DELETE;
	req.path = "/users/1";
	api_test_req(&req, &resp);
	tap_ok(resp.status == 403, "remote DELETE /users/1: 403");
	api_resp_clear(&resp);
}

static void
api_test_cloud_handler(struct api_req *req, struct api_resp *resp)
{
	api_error(req, resp, 400, "boom %d", 7);
}

/* Error shapes, helpers and the counters. */
static void
api_test_misc(void)
{
	static const struct api_route	 cloud = { API_PUT, "/mqtt/{id}",
	    API_CLOUDERR, api_test_cloud_handler };
	struct api_resp			 resp;
	struct api_req			 req;
	struct api_kv			 q[3];
	const struct api_route		*routes;
	char				*text;
	size_t				 n, i, len;
	int				 found = 0;

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.route = &cloud;
	cloud.handler(&req, &resp);
	text = json_dump(resp.body, NULL);
	tap_ok(resp.status == 400 && strcmp(text, "{\"error\":\"boom 7\"}") ==
	    0, "API_CLOUDERR routes answer {\"error\":\"...\"}");
	free(text);
	api_resp_clear(&resp);
	req.route = NULL;
	api_error(&req, &resp, 409, "%s", "clash");
	text = json_dump(resp.body, NULL);
	tap_ok(resp.status == 409 && strcmp(text, "{\"error\":{\"code\":409,"
	    "\"message\":\"clash\"}}") == 0,
	    "other routes answer {\"error\":{\"code\",\"message\"}}");
	free(text);
	api_resp_clear(&resp);

	q[0].key = "a";
	q[0].value = "1";
	q[1].key = "b";
	q[1].value = "2";
	q[2].key = "a";
	q[2].value = "3";
	req.query = q;
	req.nquery = 3;
	req.headers = q;
	req.nheaders = 3;
	tap_ok(strcmp(api_query(&req, "a"), "3") == 0 &&
	    api_query(&req, "c") == NULL && strcmp(api_header(&req, "A"),
	    "1") == 0, "api_query: the last wins; api_header: the first, any "
	    "case");
	tap_ok(api_method_parse("get") == API_GET &&
	    api_method_parse("Patch") == API_PATCH &&
	    api_method_parse("HEAD") == 0 &&
	    strcmp(api_method_name(API_DELETE), "DELETE") == 0,
	    "method names both ways");
	routes = api_routes(&n);
	for (i = 0; i < n; i++)
		if (routes[i].method == API_GET &&
		    strcmp(routes[i].pattern, "/users/{id}") == 0)
			found = 1;
	tap_ok(found, "api_routes lists GET /users/{id}");

	for (i = 0; i < 3; i++) {
		api_test(&resp, API_GET, "/health", NULL, NULL);
		api_resp_clear(&resp);
	}
	api_test(&resp, API_GET, "/metrics", api_test_token, NULL);
	tap_ok(resp.status == 200 && resp.raw != NULL &&
	    strncmp(resp.content_type, "text/plain", 10) == 0,
	    "GET /metrics: 200 text/plain");
	text = NULL;
	if (resp.raw != NULL) {
		len = resp.rawlen;
		text = xmalloc(len + 1);
		memcpy(text, resp.raw, len);
		text[len] = '\0';
	}
	api_resp_clear(&resp);
	tap_ok(text != NULL && strstr(text, "uplinkd_http_requests_total{"
	    "route=\"/health\",method=\"GET\",status=\"200\"} 4\n") != NULL,
	    "GET /health counted under its route: 4");
	tap_ok(text != NULL && strstr(text, "uplinkd_http_requests_total{"
	    "route=\"/users/{id}\",method=\"GET\",status=\"400\"}") != NULL &&
	    strstr(text, "route=\"/users/{id}\",method=\"DELETE\","
	    "status=\"204\"} 1\n") != NULL,
	    "routes are counted by pattern, method and status");
	tap_ok(text != NULL && strstr(text, "route=\"unmatched\","
	    "method=\"GET\",status=\"404\"}") != NULL &&
	    strstr(text, "route=\"unmatched\",method=\"GET\","
	    "status=\"401\"}") != NULL,
	    "unmatched paths are counted apart");
	free(text);
}

int
main(void)
{
	struct store	*store;
	struct api_resp	 resp;
	char		*cause = NULL, *path, *pw;

	log_init(1, LOG_LEVEL_WARN);
	if (mkdtemp(api_test_dir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	path = util_path(api_test_dir, "config.tch");
	if ((store = store_open(path, &cause)) == NULL ||
	    auth_init(store, api_test_dir, &cause) != 0) {
		printf("Bail out! %s\n", cause);
		return (1);
	}
	free(path);
	auth_set_iterations(1000);
	metrics_init();
	api_init(store);
	tap_ok(api_store() == store, "api_init keeps the store");
	api_test_token = api_test_read("api-token");
	pw = api_test_read("admin-password");
	api_test_jwt = api_test_login("admin", pw, &resp);
	tap_ok(api_test_jwt != NULL, "admin logs in with the first-start "
	    "password");
	api_resp_clear(&resp);
	free(pw);
	if (api_test_jwt == NULL) {
		printf("Bail out! no login\n");
		return (1);
	}

	api_test_tokens();
	api_test_routing();
	api_test_bodies();
	api_test_accounts();
	api_test_remote();
	api_test_misc();

	api_free();
	metrics_free();
	auth_free();
	store_close(store);
	free(api_test_token);
	free(api_test_jwt);
	nftw(api_test_dir, api_test_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return (tap_done());
}

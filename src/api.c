/* SPDX-License-Identifier: ISC */
/*
 * The REST core: the route table and api_dispatch().
 *
 * Handlers know nothing of HTTP.  A transport (http.c today; the clouds'
 * remote calls later) fills a struct api_req and gets back a struct
 * api_resp.  The dispatcher finds the route (a literal segment beats a
 * {parameter}, so ".../messages/test" wins over ".../messages/{id}"),
 * checks the token, parses the body, calls the handler and counts the
 * answer.  Errors take the shape of the route's family: {"error":"..."}
 * for the cloud applications, {"error":{"code":N,"message":"..."}} for
 * everything else.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "multipart.h"
#include "xmalloc.h"

#define API_MAX_SEGS	16

struct api {
	struct store		 *store;
	struct api_route	 *routes;
	size_t			  nroutes;
};

static struct api	*api;

static const struct api_route *api_route_tables[] = {
	api_auth_routes,
	api_users_routes,
	api_system_routes,
	api_tags_routes,
	api_mqtt_routes,
	api_device_routes,
};

static int	api_split(const char *, char **, size_t *, char **);
static int	api_match(const struct api_route *, char **, size_t,
		    struct api_req *, unsigned int *);
static int	api_authenticate(struct api_req *, struct api_resp *);
static int	api_body(struct api_req *, struct api_resp *);
static int	api_media_is(const char *, const char *);

/* Build the route table from every resource's table. */
void
api_init(struct store *store)
{
	const struct api_route	*t;
	size_t			 i;

	api = xcalloc(1, sizeof *api);
	api->store = store;
	for (i = 0; i < sizeof api_route_tables / sizeof *api_route_tables;
	    i++) {
		for (t = api_route_tables[i]; t->pattern != NULL; t++) {
			api->routes = xreallocarray(api->routes,
			    api->nroutes + 1, sizeof *api->routes);
			api->routes[api->nroutes++] = *t;
		}
	}
}

/* Drop the table. */
void
api_free(void)
{
	if (api == NULL)
		return;
	free(api->routes);
	free(api);
	api = NULL;
}

/* The configuration store, for handlers. */
struct store *
api_store(void)
{
	return (api->store);
}

/* Every route, for the OpenAPI document and tests. */
const struct api_route *
api_routes(size_t *n)
{
	*n = api->nroutes;
	return (api->routes);
}

/* "GET" and friends. */
const char *
api_method_name(int m)
{
	switch (m) {
	case API_GET:
		return ("GET");
	case API_POST:
		return ("POST");
	case API_PUT:
		return ("PUT");
	case API_DELETE:
		return ("DELETE");
	case API_PATCH:
		return ("PATCH");
	}
	return ("OTHER");	/* HEAD, OPTIONS, ... (never routed) */
}

/* A method name (any case) to its API_* bit, or 0. */
int
api_method_parse(const char *s)
{
	if (strcasecmp(s, "GET") == 0)
		return (API_GET);
	if (strcasecmp(s, "POST") == 0)
		return (API_POST);
	if (strcasecmp(s, "PUT") == 0)
		return (API_PUT);
	if (strcasecmp(s, "DELETE") == 0)
		return (API_DELETE);
	if (strcasecmp(s, "PATCH") == 0)
		return (API_PATCH);
	return (0);
}

/* Value of a hex digit, or -1. */
static int
api_hex(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

/*
 * Split a raw path into percent-decoded segments (each allocated; the
 * caller frees them).  An empty path or "/" has no segments; a trailing
 * slash is ignored.  -1 with *cause for a bad escape or a NUL.
 */
static int
api_split(const char *path, char **segs, size_t *nsegs, char **cause)
{
	const char	*p = path, *end;
	char		*s;
	size_t		 n = 0, i, len;
	int		 hi, lo;

	*nsegs = 0;
	if (*p != '/') {
		xasprintf(cause, "path: must start with /");
		return (-1);
	}
	while (*p == '/') {
		p++;
		if (*p == '\0')
			break;
		end = strchr(p, '/');
		len = (end == NULL) ? strlen(p) : (size_t)(end - p);
		if (n == API_MAX_SEGS) {
			xasprintf(cause, "path: more than %d segments",
			    API_MAX_SEGS);
			goto fail;
		}
		s = segs[n++] = xmalloc(len + 1);
		for (i = 0; i < len; i++) {
			if (p[i] != '%') {
				*s++ = p[i];
				continue;
			}
			if (i + 2 >= len)
				goto badescape;
			if ((hi = api_hex((unsigned char)p[i + 1])) == -1 ||
			    (lo = api_hex((unsigned char)p[i + 2])) == -1 ||
			    (hi == 0 && lo == 0))
				goto badescape;
			*s++ = hi << 4 | lo;
			i += 2;
		}
		*s = '\0';
		p += len;
	}
	*nsegs = n;
	return (0);

badescape:
	xasprintf(cause, "path: bad percent-escape");
fail:
	for (i = 0; i < n; i++)
		free(segs[i]);
	return (-1);
}

/*
 * Does a route's pattern match the segments?  On a match the score has a
 * bit set for every literal segment, highest bit first, so that literal
 * segments win; parameters are stored in req.
 */
static int
api_match(const struct api_route *r, char **segs, size_t nsegs,
    struct api_req *req, unsigned int *score)
{
	const char	*p = r->pattern, *end;
	size_t		 i = 0, len;

	*score = 0;
	req->nparams = 0;
	while (*p == '/') {
		p++;
		if (*p == '\0')
			break;
		end = strchr(p, '/');
		len = (end == NULL) ? strlen(p) : (size_t)(end - p);
		if (i == nsegs)
			return (0);
		if (p[0] == '{' && p[len - 1] == '}') {
			if (req->nparams == API_MAX_PARAMS)
				fatalx("route %s: too many parameters",
				    r->pattern);
			req->pnames[req->nparams] = p + 1;
			req->params[req->nparams++] = segs[i];
		} else if (strlen(segs[i]) != len ||
		    strncmp(segs[i], p, len) != 0)
			return (0);
		else
			*score |= 1u << (API_MAX_SEGS - i);
		i++;
		p += len;
	}
	return (i == nsegs);
}

/* A parameter by name ("id" for "{id}"); borrowed, NULL if absent. */
const char *
api_param(const struct api_req *req, const char *name)
{
	size_t	i, len = strlen(name);

	for (i = 0; i < req->nparams; i++)
		if (strncmp(req->pnames[i], name, len) == 0 &&
		    req->pnames[i][len] == '}')
			return (req->params[i]);
	return (NULL);
}

/*
 * A numeric id parameter.  0 with *id set, or -1 after answering 400 for
 * something that is not a positive integer.
 */
int
api_param_id(struct api_req *req, struct api_resp *resp, const char *name,
    uint64_t *id)
{
	const char	*s = api_param(req, name);
	char		*end;

	if (s == NULL || !isdigit((unsigned char)*s)) {
		api_error(req, resp, 400, "%s: must be a positive integer, "
		    "not \"%s\"", name, s == NULL ? "" : s);
		return (-1);
	}
	errno = 0;
	*id = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || *id == 0) {
		api_error(req, resp, 400, "%s: must be a positive integer, "
		    "not \"%s\"", name, s);
		return (-1);
	}
	return (0);
}

/* Decode a query component in place (%XX and '+'); -1 if malformed. */
static int
api_query_decode(char *s)
{
	char	*w = s;
	int	 hi, lo;

	for (; *s != '\0'; s++) {
		if (*s == '+')
			*w++ = ' ';
		else if (*s == '%') {
			if ((hi = api_hex((unsigned char)s[1])) == -1 ||
			    (lo = api_hex((unsigned char)s[2])) == -1 ||
			    (hi == 0 && lo == 0))
				return (-1);
			*w++ = hi << 4 | lo;
			s += 2;
		} else
			*w++ = *s;
	}
	*w = '\0';
	return (0);
}

/*
 * Parse a query string ("a=1&b&c=x%20y") into *kv (caller frees with
 * api_query_free()); a parameter without '=' has the value "".  At most
 * max parameters.  0, or -1 with *cause for a bad escape or too many.
 */
int
api_query_parse(const char *qs, struct api_kv **kv, size_t *n, size_t max,
    char **cause)
{
	char		*copy, *p, *amp, *eq;
	struct api_kv	*out = NULL;
	size_t		 count = 0;

	*kv = NULL;
	*n = 0;
	copy = xstrdup(qs);
	for (p = copy; p != NULL && *p != '\0'; p = amp) {
		if ((amp = strchr(p, '&')) != NULL)
			*amp++ = '\0';
		if (*p == '\0')
			continue;
		if (count == max) {
			xasprintf(cause, "query: more than %zu parameters",
			    max);
			goto fail;
		}
		if ((eq = strchr(p, '=')) != NULL)
			*eq++ = '\0';
		if (api_query_decode(p) != 0 ||
		    (eq != NULL && api_query_decode(eq) != 0)) {
			xasprintf(cause, "query: bad percent-escape");
			goto fail;
		}
		out = xreallocarray(out, count + 1, sizeof *out);
		out[count].key = xstrdup(p);
		out[count++].value = xstrdup(eq != NULL ? eq : "");
	}
	free(copy);
	*kv = out;
	*n = count;
	return (0);
fail:
	free(copy);
	api_query_free(out, count);
	return (-1);
}

/* Free what api_query_parse() made. */
void
api_query_free(struct api_kv *kv, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free((char *)kv[i].key);
		free((char *)kv[i].value);
	}
	free(kv);
}

/* A query parameter (last one wins); borrowed, NULL if absent. */
const char *
api_query(const struct api_req *req, const char *name)
{
	size_t		 i;
	const char	*v = NULL;

	for (i = 0; i < req->nquery; i++)
		if (strcmp(req->query[i].key, name) == 0)
			v = req->query[i].value;
	return (v);
}

/* A request header, case-insensitively; borrowed, NULL if absent. */
const char *
api_header(const struct api_req *req, const char *name)
{
	size_t	i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].key, name) == 0)
			return (req->headers[i].value);
	return (NULL);
}

/* Answer 200 {"data": data}; takes ownership of data. */
void
api_data(struct api_resp *resp, struct json *data)
{
	struct json	*env;

	env = json_new_object();
	json_set(env, "data", data);
	json_free(resp->body);
	resp->body = env;
	resp->status = 200;
}

/* Answer with a body as it is (no envelope); takes ownership. */
void
api_bare(struct api_resp *resp, int status, struct json *body)
{
	json_free(resp->body);
	resp->body = body;
	resp->status = status;
}

/* Answer raw bytes; takes ownership of data (malloc'd). */
void
api_text(struct api_resp *resp, int status, const char *type, char *data,
    size_t len)
{
	json_free(resp->body);
	resp->body = NULL;
	free(resp->raw);
	resp->raw = data;
	resp->rawlen = len;
	resp->content_type = type;
	resp->status = status;
}

/* Add a response header (value copied). */
void
api_add_header(struct api_resp *resp, const char *key, const char *value)
{
	if (resp->nheaders == sizeof resp->headers / sizeof *resp->headers)
		fatalx("api: too many response headers");
	resp->hvalues[resp->nheaders] = xstrdup(value);
	resp->headers[resp->nheaders].key = key;
	resp->headers[resp->nheaders].value = resp->hvalues[resp->nheaders];
	resp->nheaders++;
}

/*
 * Answer with a stream (see api.h); the transport calls start when the
 * head has gone out.
 */
void
api_stream(struct api_resp *resp, const char *type, api_stream_cb start,
    api_stream_cb closed, void *arg)
{
	json_free(resp->body);
	resp->body = NULL;
	resp->status = 200;
	resp->stream_type = type;
	resp->stream_start = start;
	resp->stream_closed = closed;
	resp->stream_arg = arg;
}

/* Send bytes on a stream; -1 if it failed (closed follows from the loop). */
int
api_stream_write(struct api_stream *st, const void *data, size_t len)
{
	return (st->ops->write(st, data, len));
}

/* Finish a stream; st is invalid afterwards. */
void
api_stream_end(struct api_stream *st)
{
	st->ops->end(st);
}

/* Answer an error in the shape of the route's family. */
void
api_error(struct api_req *req, struct api_resp *resp, int status,
    const char *fmt, ...)
{
	struct json	*body, *err;
	char		*msg;
	va_list		 ap;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	body = json_new_object();
	if (req->route != NULL && (req->route->flags & API_CLOUDERR))
		json_set(body, "error", json_new_string(msg));
	else {
		err = json_new_object();
		json_set(err, "code", json_new_int(status));
		json_set(err, "message", json_new_string(msg));
		json_set(body, "error", err);
	}
	free(msg);
	api_bare(resp, status, body);
}

/* Is the media type of a Content-Type value type (ignoring parameters)? */
static int
api_media_is(const char *ct, const char *type)
{
	size_t	len = strlen(type);

	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, type, len) != 0)
		return (0);
	ct += len;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return (*ct == '\0' || *ct == ';');
}

/*
 * Check the token: "Authorization: Bearer <t>" or "mx-api-token: <t>",
 * each either the API token or a JWT.  0, or -1 after answering 401.
 */
static int
api_authenticate(struct api_req *req, struct api_resp *resp)
{
	const char		*h, *tok = NULL;
	const struct api_route	*route;

	if ((h = api_header(req, "Authorization")) != NULL) {
		if (strncasecmp(h, "Bearer ", 7) == 0) {
			tok = h + 7;
			while (*tok == ' ')
				tok++;
		}
	}
	if (tok == NULL || *tok == '\0')
		tok = api_header(req, "mx-api-token");
	if (tok != NULL && *tok != '\0' && auth_verify(tok, &req->user) == 0)
		return (0);
	api_add_header(resp, "WWW-Authenticate", "Bearer realm=\"uplinkd\"");
	/* 401 has the platform's shape on every route, as the vendor's. */
	route = req->route;
	req->route = NULL;
	api_error(req, resp, 401, "authentication required");
	req->route = route;
	return (-1);
}

/*
 * Parse the body the route expects: JSON, or multipart/form-data where
 * the route takes files.  0, or -1 after answering 400 or 415.
 */
static int
api_body(struct api_req *req, struct api_resp *resp)
{
	const struct api_route	*r = req->route;
	const char		*ct = req->content_type;
	char			*cause;

	if (req->json != NULL || (r->flags & (API_BODY | API_MULTIPART |
	    API_RAWBODY)) == 0 || (r->flags & API_RAWBODY))
		return (0);
	if (req->bodylen == 0) {
		if (r->flags & API_BODY) {
			api_error(req, resp, 400, "body: a JSON document is "
			    "required");
			return (-1);
		}
		return (0);
	}
	if (ct != NULL && api_media_is(ct, "application/json")) {
		req->json = json_parse(req->body, req->bodylen, &cause);
		if (req->json == NULL) {
			api_error(req, resp, 400, "body: %s", cause);
			free(cause);
			return (-1);
		}
		return (0);
	}
	if (ct != NULL && (r->flags & API_MULTIPART) &&
	    api_media_is(ct, "multipart/form-data")) {
		req->mp = multipart_parse(ct, req->body, req->bodylen, &cause);
		if (req->mp == NULL) {
			api_error(req, resp, 400, "body: %s", cause);
			free(cause);
			return (-1);
		}
		return (0);
	}
	api_error(req, resp, 415, "Content-Type: must be application/json%s, "
	    "not %s", (r->flags & API_MULTIPART) ? " or multipart/form-data" :
	    "", ct == NULL ? "absent" : ct);
	return (-1);
}

/*
 * Run one request.  resp must be zeroed by the caller; it is always
 * filled with an answer.  Parsed parts of req are freed with
 * api_req_clear() by the caller.
 */
void
api_dispatch(struct api_req *req, struct api_resp *resp)
{
	char			*segs[API_MAX_SEGS], *cause;
	size_t			 nsegs = 0, i, len;
	const struct api_route	*r, *best = NULL;
	unsigned int		 score, best_score = 0;
	int			 allow = 0;
	char			 allowbuf[64];
	const char		*label = "unmatched";

	req->route = NULL;
	if (api_split(req->path, segs, &nsegs, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		goto out;
	}
	for (i = 0; i < api->nroutes; i++) {
		r = &api->routes[i];
		if (!api_match(r, segs, nsegs, req, &score))
			continue;
		allow |= r->method;
		if (r->method != req->method)
			continue;
		if (best == NULL || score > best_score) {
			best = r;
			best_score = score;
		}
	}

	if (best == NULL) {
		/* Unknown paths are only revealed to callers with a token. */
		if (req->origin != API_ORIGIN_REMOTE &&
		    api_authenticate(req, resp) != 0)
			goto out;
		if (allow != 0) {
			len = 0;
			allowbuf[0] = '\0';
			for (i = API_GET; i <= API_PATCH; i <<= 1) {
				if (allow & i)
					len += snprintf(allowbuf + len,
					    sizeof allowbuf - len, "%s%s",
					    len == 0 ? "" : ", ",
					    api_method_name(i));
			}
			api_add_header(resp, "Allow", allowbuf);
			api_error(req, resp, 405, "%s%s is not allowed here; "
			    "allowed: %s", req->method == API_OTHER ? "this "
			    "method" : "method ", req->method == API_OTHER ?
			    "" : api_method_name(req->method), allowbuf);
		} else
			api_error(req, resp, 404, "no such resource: %s",
			    req->path);
		goto out;
	}

	/* Match again to leave the winner's parameters in req. */
	api_match(best, segs, nsegs, req, &score);
	req->route = best;
	label = best->pattern;
	for (i = 0; i < req->nparams; i++)
		req->params[i] = xstrdup(req->params[i]);
	if (req->origin == API_ORIGIN_REMOTE) {
		/* Routes that also take files take JSON remotely. */
		if (best->flags & API_NOREMOTE) {
			api_error(req, resp, 403, "%s %s cannot be called "
			    "remotely", api_method_name(req->method),
			    best->pattern);
			goto out;
		}
	} else if (!(best->flags & API_PUBLIC) &&
	    api_authenticate(req, resp) != 0)
		goto out;
	if (api_body(req, resp) != 0)
		goto out;
	resp->status = 200;
	best->handler(req, resp);

out:
	for (i = 0; i < nsegs; i++)
		free(segs[i]);
	if (req->route == NULL)
		req->nparams = 0;
	if (resp->status == 0)
		fatalx("api: %s %s: handler gave no answer",
		    api_method_name(req->method), req->path);
	metrics_http(label, req->method, resp->status);
}

/* Free what api_dispatch() added to a request. */
void
api_req_clear(struct api_req *req)
{
	size_t	i;

	json_free(req->json);
	req->json = NULL;
	multipart_free(req->mp);
	req->mp = NULL;
	if (req->route != NULL)
		for (i = 0; i < req->nparams; i++)
			free(req->params[i]);
	req->nparams = 0;
	free(req->user);
	req->user = NULL;
}

/* Free a response's contents. */
void
api_resp_clear(struct api_resp *resp)
{
	size_t	i;

	json_free(resp->body);
	free(resp->raw);
	for (i = 0; i < resp->nheaders; i++)
		free(resp->hvalues[i]);
	memset(resp, 0, sizeof *resp);
}

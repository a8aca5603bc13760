/* SPDX-License-Identifier: ISC */
/*
 * The twin / shadow property engine shared by the Azure device twin, the
 * AWS shadow and Sparkplug node properties.
 *
 * A mapping {origin: {resource: [{source, reportedPath, desiredPath}]}}
 * names REST resources of this daemon (twin_resource_path() turns an
 * origin and a resource name into a path; a name that starts with "/" is
 * a path already).  Every resource is called through api_dispatch() as a
 * remote (cloud) caller, so the clouds reach exactly what the remote API
 * lets them reach.
 *
 * Reported.  twin_report() GETs every mapped resource once, cuts each
 * answer at the entry's source and places it at its reportedPath in a new
 * document.  The engine remembers what it reported last and answers with
 * the difference (an Azure-style patch: changed members, null for the
 * ones gone), or with everything on request.
 *
 * Desired.  twin_desired() takes the value at each entry's desiredPath,
 * writes it into the resource at source ("" = merged over the whole
 * resource), PUTs every changed resource once, and answers with a patch
 * that reports the new values, or {"error", "status"} where it failed.
 *
 * Azure twins hold no arrays: with TWIN_AZURE_ARRAYS arrays go out as
 * {"0":..,"1":..,"arraySize":N} and come back the same way.  Documents
 * from the cloud are bounded: arrays of at most TWIN_ARRAY_MAX elements,
 * nesting of at most TWIN_WALK_DEPTH levels (what the parser lets in, so
 * that a value placed under a reportedPath stays printable).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "twin.h"
#include "xmalloc.h"

#define TWIN_MAX_ORIGINS	64
#define TWIN_MAX_RESOURCES	64	/* per origin */
#define TWIN_MAX_ENTRIES	16	/* per resource */
#define TWIN_PATH_MAX		512	/* bytes in a dotted path */
#define TWIN_SEG_MAX		255	/* bytes in a segment (json_get_path) */
#define TWIN_PATH_DEPTH		32	/* segments in a dotted path */
#define TWIN_ARRAY_MAX		65536	/* elements of a cloud's array */
#define TWIN_WALK_DEPTH		JSON_MAX_DEPTH	/* as deep as parsed text */

/* What twin_desired() did with an entry. */
#define TWIN_E_NONE	0
#define TWIN_E_APPLIED	1	/* written into its resource */
#define TWIN_E_FAILED	2	/* err holds its error entry */

struct twin_res {
	char		*path;		/* the REST path */

	/* Valid during one call. */
	int		 fetched;
	int		 status;
	struct json	*data;		/* the GET's data; NULL if it failed */
	char		*msg;		/* why the GET failed */
	struct json	*work;		/* desired: the resource being edited */
	struct json	*now;		/* desired: its value after the PUT */
	struct json	*err;		/* desired: the failed PUT's entry */
};

struct twin_entry {
	const char	*origin;	/* all borrowed from tw->mapping */
	const char	*name;
	const char	*source;
	const char	*reported;
	const char	*desired;
	size_t		 res;		/* index in tw->res */
	int		 warned;	/* a collision was logged */
	int		 state;		/* TWIN_E_* during twin_desired() */
	struct json	*err;
};

struct twin {
	struct json		*mapping;
	int			 flags;
	struct twin_entry	*ent;
	size_t			 nent;
	struct twin_res		*res;
	size_t			 nres;
	struct json		*last;		/* what was reported last */
	twin_dispatch_cb	 dispatch;
	void			*arg;
};

/* A walk over a cloud's document: copied, checked, maybe decoded. */
struct twin_walk {
	int	 decode;		/* Azure encodings become arrays */
	int	 strip;			/* "$version" and the like dropped */
	char	 path[TWIN_PATH_MAX + 1];	/* where the walk is */
	size_t	 len;
	char	*cause;
};

static int		 twin_path_ok(const char *, const char *, char **);
static int		 twin_path_check_cb(struct json *, const char *,
			     char **);
static void		 twin_path_del(struct json *, const char *);
static size_t		 twin_walk_push(struct twin_walk *, const char *,
			     const char *);
static void		 twin_walk_pop(struct twin_walk *, size_t);
static void		 twin_walk_fail(struct twin_walk *, const char *, ...)
			     __attribute__((__format__(__printf__, 2, 3)));
static struct json	*twin_walk_r(struct twin_walk *, const struct json *,
			     int);
static struct json	*twin_walk_decode(struct twin_walk *,
			     const struct json *, const struct json *, int);
static struct json	*twin_encode_r(const struct json *);
static struct json	*twin_error_entry(int, const char *);
static char		*twin_resp_error(const struct api_resp *);
static struct json	*twin_call(struct twin *, int, const char *,
			     const struct json *, int *, char **);
static void		 twin_fetch(struct twin *, struct twin_res *);
static void		 twin_reset(struct twin *);
static struct json	*twin_out(const struct twin *, const struct json *);
static struct json	*twin_cut(const struct twin *, const struct json *,
			     const char *);
static int		 twin_place(struct twin_entry *, struct json *,
			     struct json *);
static int		 twin_apply(struct twin *, struct twin_entry *,
			     const struct json *);
static void		 twin_put(struct twin *, struct twin_res *);

static const struct json_field twin_entry_fields[] = {
	{ "source", JF_STRING, 0, 0, TWIN_PATH_MAX, NULL, NULL, NULL,
	    twin_path_check_cb },
	{ "reportedPath", JF_STRING, JF_REQUIRED, 1, TWIN_PATH_MAX, NULL,
	    NULL, NULL, twin_path_check_cb },
	{ "desiredPath", JF_STRING, JF_REQUIRED, 0, TWIN_PATH_MAX, NULL,
	    NULL, NULL, twin_path_check_cb },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field twin_entry_item[] = {
	{ "", JF_OBJECT, 0, 0, 0, NULL, NULL, twin_entry_fields, NULL }
};

static const struct json_field twin_entries_field = {
	"", JF_ARRAY, 0, 0, TWIN_MAX_ENTRIES, NULL, NULL, twin_entry_item, NULL
};

/* Resources by origin and name. */
static const struct {
	const char	*origin;
	const char	*name;
	const char	*path;
} twin_resources[] = {
	{ "device", "general", "/device/general" },
	{ "device", "ethernets", "/device/ethernets" },
	{ "device", "time", "/device/time" },
	{ "system services", "status", "/system/status" },
	{ "system", "status", "/system/status" },
	{ "cloud", "mqtt", "/mqtt" },
};

/*
 * Is p "" or 1..TWIN_PATH_DEPTH non-empty segments of at most
 * TWIN_SEG_MAX bytes, TWIN_PATH_MAX bytes in all?  0, or -1 with *cause
 * (caller frees) starting with name.
 */
static int
twin_path_ok(const char *p, const char *name, char **cause)
{
	const char	*s = p, *dot;
	size_t		 len, n = 0;

	if (*p == '\0')
		return (0);
	if (strlen(p) > TWIN_PATH_MAX) {
		xasprintf(cause, "%s: must be at most %d bytes long", name,
		    TWIN_PATH_MAX);
		return (-1);
	}
	for (;;) {
		dot = strchr(s, '.');
		len = dot != NULL ? (size_t)(dot - s) : strlen(s);
		if (len == 0) {
			xasprintf(cause, "%s: \"%s\" has an empty segment",
			    name, p);
			return (-1);
		}
		if (len > TWIN_SEG_MAX) {
			xasprintf(cause, "%s: a segment is longer than %d "
			    "bytes", name, TWIN_SEG_MAX);
			return (-1);
		}
		if (++n > TWIN_PATH_DEPTH) {
			xasprintf(cause, "%s: deeper than %d segments", name,
			    TWIN_PATH_DEPTH);
			return (-1);
		}
		if (dot == NULL)
			return (0);
		s = dot + 1;
	}
}

/* json_validate() check of a path member; v is a string already. */
static int
twin_path_check_cb(struct json *v, const char *name, char **cause)
{
	return (twin_path_ok(json_string(v), name, cause));
}

/*
 * Check a mapping (unknown members of entries are dropped).  0, or -1
 * with *cause (caller frees) naming the origin, resource and rule.
 */
int
twin_validate(struct json *mapping, char **cause)
{
	struct json	*origin, *list;
	const char	*oname, *rname;
	char		*label;
	size_t		 i, j;
	int		 rc;

	if (json_type(mapping) != JSON_OBJECT) {
		xasprintf(cause, "mapping: must be an object, not %s",
		    json_type_name(json_type(mapping)));
		return (-1);
	}
	if (json_object_size(mapping) > TWIN_MAX_ORIGINS) {
		xasprintf(cause, "mapping: at most %d origins, not %zu",
		    TWIN_MAX_ORIGINS, json_object_size(mapping));
		return (-1);
	}
	for (i = 0; i < json_object_size(mapping); i++) {
		oname = json_object_key(mapping, i);
		origin = json_object_value(mapping, i);
		if (*oname == '\0') {
			xasprintf(cause, "mapping: an origin name must not be "
			    "empty");
			return (-1);
		}
		if (json_type(origin) != JSON_OBJECT) {
			xasprintf(cause, "%s: must be an object, not %s",
			    oname, json_type_name(json_type(origin)));
			return (-1);
		}
		if (json_object_size(origin) > TWIN_MAX_RESOURCES) {
			xasprintf(cause, "%s: at most %d resources, not %zu",
			    oname, TWIN_MAX_RESOURCES,
			    json_object_size(origin));
			return (-1);
		}
		for (j = 0; j < json_object_size(origin); j++) {
			rname = json_object_key(origin, j);
			list = json_object_value(origin, j);
			xasprintf(&label, "%s.%s", oname, rname);
			if (twin_resource_path(oname, rname) == NULL) {
				xasprintf(cause, "%s: unknown resource", label);
				free(label);
				return (-1);
			}
			if (strlen(rname) > TWIN_PATH_MAX) {
				xasprintf(cause, "%s.%.32s...: a resource path "
				    "must be at most %d bytes long", oname,
				    rname, TWIN_PATH_MAX);
				free(label);
				return (-1);
			}
			rc = json_validate_value(list, &twin_entries_field,
			    label, cause);
			free(label);
			if (rc != 0)
				return (-1);
		}
	}
	return (0);
}

/*
 * The REST path of a resource, or NULL if unknown; borrowed (static, or
 * resource itself when it is a path).
 */
const char *
twin_resource_path(const char *origin, const char *resource)
{
	size_t	i;

	if (resource[0] == '/')
		return (resource);
	for (i = 0; i < sizeof twin_resources / sizeof twin_resources[0];
	    i++) {
		if (strcmp(twin_resources[i].origin, origin) == 0 &&
		    strcmp(twin_resources[i].name, resource) == 0)
			return (twin_resources[i].path);
	}
	return (NULL);
}

/* A twin over a copy of mapping; caller frees with twin_free(), or NULL. */
struct twin *
twin_new(const struct json *mapping, int flags, char **cause)
{
	struct twin		*tw;
	struct twin_entry	*e;
	struct json		*origin, *list, *item;
	const char		*oname, *rname, *path;
	size_t			 i, j, k, r, n = 0;

	tw = xcalloc(1, sizeof *tw);
	tw->mapping = json_copy(mapping);
	tw->flags = flags;
	tw->last = json_new_object();
	if (twin_validate(tw->mapping, cause) != 0) {
		twin_free(tw);
		return (NULL);
	}
	for (i = 0; i < json_object_size(tw->mapping); i++) {
		origin = json_object_value(tw->mapping, i);
		for (j = 0; j < json_object_size(origin); j++)
			n += json_array_size(json_object_value(origin, j));
	}
	tw->ent = xcalloc(n == 0 ? 1 : n, sizeof *tw->ent);
	tw->res = xcalloc(n == 0 ? 1 : n, sizeof *tw->res);
	for (i = 0; i < json_object_size(tw->mapping); i++) {
		oname = json_object_key(tw->mapping, i);
		origin = json_object_value(tw->mapping, i);
		for (j = 0; j < json_object_size(origin); j++) {
			rname = json_object_key(origin, j);
			list = json_object_value(origin, j);
			if (json_array_size(list) == 0)
				continue;
			path = twin_resource_path(oname, rname);
			for (r = 0; r < tw->nres; r++)
				if (strcmp(tw->res[r].path, path) == 0)
					break;
			if (r == tw->nres)
				tw->res[tw->nres++].path = xstrdup(path);
			for (k = 0; k < json_array_size(list); k++) {
				item = json_array_get(list, k);
				e = &tw->ent[tw->nent++];
				e->origin = oname;
				e->name = rname;
				e->source = json_get_string(item, "source");
				if (e->source == NULL)
					e->source = "";
				e->reported = json_get_string(item,
				    "reportedPath");
				e->desired = json_get_string(item,
				    "desiredPath");
				e->res = r;
			}
		}
	}
	return (tw);
}

/* Free a twin; NULL is fine. */
void
twin_free(struct twin *tw)
{
	size_t	i;

	if (tw == NULL)
		return;
	twin_reset(tw);
	for (i = 0; i < tw->nres; i++)
		free(tw->res[i].path);
	free(tw->res);
	free(tw->ent);
	json_free(tw->mapping);
	json_free(tw->last);
	free(tw);
}

/* Route the twin's calls through cb (NULL: api_dispatch()); arg borrowed. */
void
twin_set_dispatch(struct twin *tw, twin_dispatch_cb cb, void *arg)
{
	tw->dispatch = cb;
	tw->arg = arg;
}

/*
 * The reported properties: everything if full, else what changed since
 * the last report (NULL if nothing did).  Caller frees.
 */
struct json *
twin_report(struct twin *tw, int full)
{
	struct twin_entry	*e;
	struct twin_res		*r;
	struct json		*doc, *v, *out;
	size_t			 i;

	doc = json_new_object();
	for (i = 0; i < tw->nent; i++) {
		e = &tw->ent[i];
		r = &tw->res[e->res];
		twin_fetch(tw, r);
		if (r->data == NULL)
			v = twin_error_entry(r->status, r->msg);
		else
			v = twin_cut(tw, r->data, e->source);
		twin_place(e, doc, v);
	}
	twin_reset(tw);
	if (full)
		out = json_copy(doc);
	else
		out = twin_diff(tw->last, doc);
	json_free(tw->last);
	tw->last = doc;
	return (out);
}

/*
 * Apply desired properties: each entry whose desiredPath is in desired
 * (and not null there) is written into its resource, each changed
 * resource is PUT once, and the answer is a patch of reported properties
 * with the new values or error entries.  NULL if desired concerned no
 * entry.  desired is only read; caller frees the patch.
 */
struct json *
twin_desired(struct twin *tw, const struct json *desired)
{
	struct twin_entry	*e;
	struct twin_res		*r;
	struct json		*patch, *v, *mine;
	const struct json	*dv;
	size_t			 i;

	if (json_type(desired) != JSON_OBJECT)
		return (NULL);
	for (i = 0; i < tw->nent; i++) {
		e = &tw->ent[i];
		if (*e->desired == '\0')
			continue;
		dv = json_get_path(desired, e->desired);
		if (dv == NULL || json_type(dv) == JSON_NULL)
			continue;
		twin_apply(tw, e, dv);
	}
	for (i = 0; i < tw->nres; i++)
		if (tw->res[i].work != NULL)
			twin_put(tw, &tw->res[i]);

	patch = json_new_object();
	for (i = 0; i < tw->nent; i++) {
		e = &tw->ent[i];
		r = &tw->res[e->res];
		if (e->state == TWIN_E_NONE)
			continue;
		if (e->state == TWIN_E_FAILED)
			v = json_copy(e->err);
		else if (r->err != NULL)
			v = json_copy(r->err);
		else
			v = twin_cut(tw, r->now, e->source);
		mine = json_copy(v);
		if (twin_place(e, patch, v) == 0)
			twin_place(e, tw->last, mine);
		else
			json_free(mine);
	}
	twin_reset(tw);
	if (json_object_size(patch) == 0) {
		json_free(patch);
		return (NULL);
	}
	return (patch);
}

/*
 * Forget what was reported for the resources named in list (a JSON
 * array of resource names), so that the next report sends them again.
 */
void
twin_forget(struct twin *tw, const struct json *list)
{
	const char	*name;
	size_t		 i, j;

	for (i = 0; i < json_array_size(list); i++) {
		if ((name = json_string(json_array_get(list, i))) == NULL)
			continue;
		for (j = 0; j < tw->nent; j++)
			if (strcmp(tw->ent[j].name, name) == 0)
				twin_path_del(tw->last, tw->ent[j].reported);
	}
}

/* The Azure encoding of j, every array an object; caller frees. */
struct json *
twin_encode_arrays(const struct json *j)
{
	return (twin_encode_r(j));
}

/*
 * The arrays of an Azure document back from their encoding: a copy with
 * every {"0":..,"arraySize":N} an array; other objects are copied member
 * by member.  NULL with *cause (caller frees) if an encoding is
 * malformed, an array is too long or the document too deep.
 */
struct json *
twin_decode_arrays(const struct json *j, char **cause)
{
	struct twin_walk	 w;
	struct json		*out;

	memset(&w, 0, sizeof w);
	w.decode = 1;
	if ((out = twin_walk_r(&w, j, 0)) == NULL)
		*cause = w.cause;
	return (out);
}

/*
 * What turns old into cur, as a patch: the members whose value changed
 * (objects compared member by member, anything else as a whole), null
 * for members gone.  NULL if they are equal; caller frees.
 */
struct json *
twin_diff(const struct json *old, const struct json *cur)
{
	struct json		*patch, *d;
	const struct json	*ov, *nv;
	const char		*k;
	size_t			 i;

	if (old != NULL && cur != NULL && json_equal(old, cur))
		return (NULL);
	if (old == NULL && cur == NULL)
		return (NULL);
	if ((cur != NULL && json_type(cur) != JSON_OBJECT) ||
	    (old != NULL && json_type(old) != JSON_OBJECT))
		return (cur == NULL ? json_new_null() : json_copy(cur));

	/* Objects, a missing one standing for {}. */
	patch = json_new_object();
	for (i = 0; i < json_object_size(cur); i++) {
		k = json_object_key(cur, i);
		nv = json_object_value(cur, i);
		if ((ov = json_get(old, k)) == NULL)
			json_set(patch, k, json_copy(nv));
		else if (json_type(ov) == JSON_OBJECT &&
		    json_type(nv) == JSON_OBJECT) {
			if ((d = twin_diff(ov, nv)) != NULL)
				json_set(patch, k, d);
		} else if (!json_equal(ov, nv))
			json_set(patch, k, json_copy(nv));
	}
	for (i = 0; i < json_object_size(old); i++) {
		k = json_object_key(old, i);
		if (json_get(cur, k) == NULL)
			json_set(patch, k, json_new_null());
	}
	if (json_object_size(patch) == 0) {
		json_free(patch);
		return (NULL);
	}
	return (patch);
}

/*
 * Set the member at a dotted path of doc, making the objects on the way;
 * "" replaces the whole of doc by the members of an object.  Takes
 * ownership of val (freed on failure).  0, or -1 with *cause (caller
 * frees) if the path is malformed or runs into something not an object.
 */
int
twin_path_set(struct json *doc, const char *path, struct json *val,
    char **cause)
{
	struct json	*cur = doc, *next;
	char		 key[TWIN_SEG_MAX + 1];
	const char	*p = path, *dot;
	size_t		 len, i;

	if (json_type(doc) != JSON_OBJECT) {
		xasprintf(cause, "path \"%s\": the document is %s, not an "
		    "object", path, json_type_name(json_type(doc)));
		goto fail;
	}
	if (twin_path_ok(path, "path", cause) != 0)
		goto fail;
	if (*path == '\0') {
		if (json_type(val) != JSON_OBJECT) {
			xasprintf(cause, "path \"\": only an object can "
			    "replace the whole document, not %s",
			    json_type_name(json_type(val)));
			goto fail;
		}
		while ((len = json_object_size(doc)) > 0)
			json_del(doc, json_object_key(doc, len - 1));
		for (i = 0; i < json_object_size(val); i++)
			json_set(doc, json_object_key(val, i),
			    json_copy(json_object_value(val, i)));
		json_free(val);
		return (0);
	}
	for (;;) {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		memcpy(key, p, len);
		key[len] = '\0';
		if (dot == NULL)
			break;
		if ((next = json_get(cur, key)) == NULL) {
			next = json_new_object();
			json_set(cur, key, next);
		} else if (json_type(next) != JSON_OBJECT) {
			xasprintf(cause, "path \"%s\": \"%.*s\" is %s, not an "
			    "object", path, (int)(dot - path), path,
			    json_type_name(json_type(next)));
			goto fail;
		}
		cur = next;
		p = dot + 1;
	}
	json_set(cur, key, val);
	return (0);

fail:
	json_free(val);
	return (-1);
}

/* Remove the member at a (valid) dotted path of doc, if there is one. */
static void
twin_path_del(struct json *doc, const char *path)
{
	char		 parent[TWIN_PATH_MAX + 1];
	const char	*dot;
	struct json	*o = doc;

	if ((dot = strrchr(path, '.')) != NULL) {
		if ((size_t)(dot - path) >= sizeof parent)
			return;
		memcpy(parent, path, dot - path);
		parent[dot - path] = '\0';
		o = json_get_path(doc, parent);
		path = dot + 1;
	}
	json_del(o, path);
}

/* Step into key (prefix "." unless it starts with "["); the old length. */
static size_t
twin_walk_push(struct twin_walk *w, const char *pre, const char *key)
{
	size_t	old = w->len;
	int	n;

	if (w->len == 0 || *pre == '[')
		pre = "";
	n = snprintf(w->path + w->len, sizeof w->path - w->len, "%s%s",
	    pre, key);
	if (n < 0 || (size_t)n >= sizeof w->path - w->len)
		w->len = sizeof w->path - 1;
	else
		w->len += n;
	return (old);
}

/* Step back out to length old. */
static void
twin_walk_pop(struct twin_walk *w, size_t old)
{
	w->len = old;
	w->path[old] = '\0';
}

/* Record why the walk stopped, naming where. */
static void
twin_walk_fail(struct twin_walk *w, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	xasprintf(&w->cause, "%s: %s", w->len == 0 ? "document" : w->path,
	    msg);
	free(msg);
}

/* A checked copy of j (decoded, stripped as w says); caller frees, or NULL. */
static struct json *
twin_walk_r(struct twin_walk *w, const struct json *j, int depth)
{
	struct json		*out, *c;
	const struct json	*size;
	const char		*k;
	char			 idx[32];
	size_t			 i, n, mark;

	if (depth > TWIN_WALK_DEPTH) {
		twin_walk_fail(w, "nested deeper than %d levels",
		    TWIN_WALK_DEPTH);
		return (NULL);
	}
	switch (json_type(j)) {
	case JSON_ARRAY:
		n = json_array_size(j);
		if (n > TWIN_ARRAY_MAX) {
			twin_walk_fail(w, "an array of %zu elements is too "
			    "long (at most %d)", n, TWIN_ARRAY_MAX);
			return (NULL);
		}
		out = json_new_array();
		for (i = 0; i < n; i++) {
			snprintf(idx, sizeof idx, "[%zu]", i);
			mark = twin_walk_push(w, "[", idx);
			c = twin_walk_r(w, json_array_get(j, i), depth + 1);
			if (c == NULL) {
				json_free(out);
				return (NULL);
			}
			twin_walk_pop(w, mark);
			json_array_push(out, c);
		}
		return (out);
	case JSON_OBJECT:
		if (w->decode && (size = json_get(j, "arraySize")) != NULL)
			return (twin_walk_decode(w, j, size, depth));
		out = json_new_object();
		for (i = 0; i < json_object_size(j); i++) {
			k = json_object_key(j, i);
			if (w->strip && k[0] == '$')
				continue;
			mark = twin_walk_push(w, ".", k);
			c = twin_walk_r(w, json_object_value(j, i), depth + 1);
			if (c == NULL) {
				json_free(out);
				return (NULL);
			}
			twin_walk_pop(w, mark);
			json_set(out, k, c);
		}
		return (out);
	default:
		return (j == NULL ? json_new_null() : json_copy(j));
	}
}

/*
 * Decode {"0":..,"N-1":..,"arraySize":N}: exactly those members (and
 * "$" ones when stripping).  The array (caller frees) or NULL.
 */
static struct json *
twin_walk_decode(struct twin_walk *w, const struct json *j,
    const struct json *size, int depth)
{
	struct json	*out, *c;
	const char	*k;
	char		 key[32];
	size_t		 i, n, m, mark;

	if (!json_is_int(size) || json_int(size) < 0 ||
	    json_int(size) > TWIN_ARRAY_MAX) {
		twin_walk_fail(w, "malformed array encoding (arraySize must "
		    "be an integer from 0 to %d)", TWIN_ARRAY_MAX);
		return (NULL);
	}
	n = json_int(size);
	m = json_object_size(j) - 1;
	for (i = 0; w->strip && i < json_object_size(j); i++) {
		k = json_object_key(j, i);
		if (k[0] == '$')
			m--;
	}
	if (m != n) {
		twin_walk_fail(w, "malformed array encoding (%zu members for "
		    "arraySize %zu)", m, n);
		return (NULL);
	}
	out = json_new_array();
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%zu", i);
		if (json_get(j, key) == NULL) {
			json_free(out);
			twin_walk_fail(w, "malformed array encoding (element "
			    "\"%s\" is missing)", key);
			return (NULL);
		}
		mark = twin_walk_push(w, ".", key);
		c = twin_walk_r(w, json_get(j, key), depth + 1);
		if (c == NULL) {
			json_free(out);
			return (NULL);
		}
		twin_walk_pop(w, mark);
		json_array_push(out, c);
	}
	return (out);
}

/* A copy of j with every array encoded; caller frees. */
static struct json *
twin_encode_r(const struct json *j)
{
	struct json	*out;
	char		 key[32];
	size_t		 i;

	switch (json_type(j)) {
	case JSON_ARRAY:
		out = json_new_object();
		for (i = 0; i < json_array_size(j); i++) {
			snprintf(key, sizeof key, "%zu", i);
			json_set(out, key, twin_encode_r(json_array_get(j,
			    i)));
		}
		json_set(out, "arraySize", json_new_uint(json_array_size(j)));
		return (out);
	case JSON_OBJECT:
		out = json_new_object();
		for (i = 0; i < json_object_size(j); i++)
			json_set(out, json_object_key(j, i),
			    twin_encode_r(json_object_value(j, i)));
		return (out);
	default:
		return (j == NULL ? json_new_null() : json_copy(j));
	}
}

/* {"error": msg, "status": status}; caller frees. */
static struct json *
twin_error_entry(int status, const char *msg)
{
	struct json	*o;

	o = json_new_object();
	json_set(o, "error", json_new_string(msg));
	json_set(o, "status", json_new_int(status));
	return (o);
}

/* The message of an error answer (either shape); caller frees. */
static char *
twin_resp_error(const struct api_resp *resp)
{
	const struct json	*err = json_get(resp->body, "error");
	const char		*s;
	char			*msg;

	if ((s = json_string(err)) != NULL ||
	    (s = json_get_string(err, "message")) != NULL)
		return (xstrdup(s));
	xasprintf(&msg, "HTTP status %d", resp->status);
	return (msg);
}

/*
 * Call a resource; body (only read) is sent as the JSON body.  The
 * answer's data (caller frees; the whole body if it has no "data"), or
 * NULL with *status and *msg (caller frees).
 */
static struct json *
twin_call(struct twin *tw, int method, const char *path,
    const struct json *body, int *status, char **msg)
{
	struct api_req	 req;
	struct api_resp	 resp;
	struct json	*data = NULL;

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.method = method;
	req.path = path;
	req.origin = API_ORIGIN_REMOTE;
	req.peer = "twin";
	if (body != NULL) {
		req.json = json_copy(body);
		req.content_type = "application/json";
	}
	if (tw->dispatch != NULL)
		tw->dispatch(&req, &resp, tw->arg);
	else
		api_dispatch(&req, &resp);
	*status = resp.status;
	*msg = NULL;
	if (resp.stream_start != NULL) {
		/* A stream cannot be a property; it is never started. */
		if (resp.stream_closed != NULL)
			resp.stream_closed(NULL, resp.stream_arg);
		*status = 500;
		xasprintf(msg, "%s is a stream, not a resource", path);
	} else if (resp.status < 200 || resp.status > 299)
		*msg = twin_resp_error(&resp);
	else if (resp.raw != NULL || resp.content_type != NULL) {
		*status = 500;
		xasprintf(msg, "%s is not a JSON resource", path);
	} else if (resp.body == NULL)
		data = json_new_null();
	else if ((data = json_take(resp.body, "data")) == NULL) {
		data = resp.body;
		resp.body = NULL;
	}
	if (data == NULL)
		log_debug("twin: %s %s: %d %s", api_method_name(method), path,
		    *status, *msg);
	api_req_clear(&req);
	api_resp_clear(&resp);
	return (data);
}

/* GET a resource once per call. */
static void
twin_fetch(struct twin *tw, struct twin_res *r)
{
	if (r->fetched)
		return;
	r->data = twin_call(tw, API_GET, r->path, NULL, &r->status, &r->msg);
	r->fetched = 1;
}

/* Forget what one call learnt about the resources and entries. */
static void
twin_reset(struct twin *tw)
{
	struct twin_res	*r;
	size_t		 i;

	for (i = 0; i < tw->nres; i++) {
		r = &tw->res[i];
		json_free(r->data);
		json_free(r->work);
		json_free(r->now);
		json_free(r->err);
		free(r->msg);
		r->data = r->work = r->now = r->err = NULL;
		r->msg = NULL;
		r->fetched = 0;
		r->status = 0;
	}
	for (i = 0; i < tw->nent; i++) {
		json_free(tw->ent[i].err);
		tw->ent[i].err = NULL;
		tw->ent[i].state = TWIN_E_NONE;
	}
}

/* A copy of v as it goes to the cloud (arrays encoded if asked). */
static struct json *
twin_out(const struct twin *tw, const struct json *v)
{
	if (tw->flags & TWIN_AZURE_ARRAYS)
		return (twin_encode_r(v));
	return (json_copy(v));
}

/* What goes out for data cut at source (null if absent); caller frees. */
static struct json *
twin_cut(const struct twin *tw, const struct json *data, const char *source)
{
	const struct json	*v = data;

	if (*source != '\0')
		v = json_get_path(data, source);
	if (v == NULL)
		return (json_new_null());
	return (twin_out(tw, v));
}

/*
 * Place v (taken) at the entry's reportedPath in doc; a collision is
 * logged once per entry and the value dropped.  0 if placed.
 */
static int
twin_place(struct twin_entry *e, struct json *doc, struct json *v)
{
	char	*cause;

	if (twin_path_set(doc, e->reported, v, &cause) == 0)
		return (0);
	if (!e->warned) {
		log_warnx("twin: %s.%s: reportedPath %s collides, entry "
		    "skipped: %s", e->origin, e->name, e->reported, cause);
		e->warned = 1;
	}
	free(cause);
	return (-1);
}

/*
 * Write a desired value (dv, only read) into the entry's resource,
 * fetching it first.  0 if applied; -1 if the entry failed (state and
 * err say so).
 */
static int
twin_apply(struct twin *tw, struct twin_entry *e, const struct json *dv)
{
	struct twin_res		*r = &tw->res[e->res];
	struct twin_walk	 w;
	struct json		*v;
	char			*cause;

	memset(&w, 0, sizeof w);
	w.decode = (tw->flags & TWIN_AZURE_ARRAYS) != 0;
	w.strip = 1;
	twin_walk_push(&w, ".", e->desired);
	if ((v = twin_walk_r(&w, dv, 0)) == NULL) {
		e->err = twin_error_entry(400, w.cause);
		free(w.cause);
		goto fail;
	}
	twin_fetch(tw, r);
	if (r->data == NULL) {
		e->err = twin_error_entry(r->status, r->msg);
		json_free(v);
		goto fail;
	}
	if (*e->source == '\0' && json_type(v) != JSON_OBJECT) {
		xasprintf(&cause, "%s: must be an object, not %s", e->desired,
		    json_type_name(json_type(v)));
		goto failv;
	}
	if (*e->source == '\0' && json_type(r->data) != JSON_OBJECT) {
		xasprintf(&cause, "%s: resource %s is not an object",
		    e->desired, r->path);
		goto failv;
	}
	if (r->work == NULL)
		r->work = json_copy(r->data);
	if (*e->source == '\0') {
		json_merge(r->work, v);
		json_free(v);
	} else if (twin_path_set(r->work, e->source, v, &cause) != 0)
		goto failcause;
	e->state = TWIN_E_APPLIED;
	return (0);

failv:
	json_free(v);
failcause:
	e->err = twin_error_entry(400, cause);
	free(cause);
fail:
	e->state = TWIN_E_FAILED;
	return (-1);
}

/*
 * PUT an edited resource (unless nothing changed) and keep its new value
 * in r->now, or the error entry in r->err.
 */
static void
twin_put(struct twin *tw, struct twin_res *r)
{
	struct json	*data;
	char		*msg;
	int		 status;

	if (json_equal(r->work, r->data)) {
		r->now = json_copy(r->data);
		return;
	}
	data = twin_call(tw, API_PUT, r->path, r->work, &status, &msg);
	if (data == NULL) {
		log_info("twin: PUT %s: %d %s", r->path, status, msg);
		r->err = twin_error_entry(status, msg);
		free(msg);
		return;
	}
	if (json_type(data) == JSON_NULL) {
		/* No value in the answer: read it back. */
		json_free(data);
		data = twin_call(tw, API_GET, r->path, NULL, &status, &msg);
		if (data == NULL) {
			r->err = twin_error_entry(status, msg);
			free(msg);
			return;
		}
	}
	r->now = data;
}

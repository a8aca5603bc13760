/* SPDX-License-Identifier: ISC */
/*
 * Virtual tags: tags an operator defines through /tags/virtual, kept in
 * the configuration store ("vtags") so they survive restarts.  Their
 * values come from POST /tags/publish or from writes through
 * PUT /tags/access (when their access allows writing).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "store.h"
#include "tag.h"
#include "tagsrc_virtual.h"
#include "util.h"
#include "xmalloc.h"

#define VTAG_COLL	"vtags"

struct tagsrc_virtual {
	struct store	*store;
	struct json	*defs;		/* array of stored definitions */
};

static struct tagsrc_virtual	*vt;

static const char *const tagsrc_virtual_types[] = {
	"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
	"int64", "float", "double", "string", "boolean", "raw", NULL
};
static const char *const tagsrc_virtual_access[] = { "r", "w", "rw", NULL };

static const struct json_field tagsrc_virtual_schema[] = {
	{ "prvdName", JF_STRING, JF_REQUIRED, 1, 1024, NULL, NULL, NULL,
	    NULL },
	{ "srcName", JF_STRING, JF_REQUIRED, 1, 1024, NULL, NULL, NULL, NULL },
	{ "tagName", JF_STRING, JF_REQUIRED, 1, 1024, NULL, NULL, NULL, NULL },
	{ "dataType", JF_ENUM, JF_REQUIRED, 0, 0, tagsrc_virtual_types, NULL,
	    NULL, NULL },
	{ "dataSize", JF_INT, 0, 0, 4294967295LL, NULL, "0", NULL, NULL },
	{ "dataUnit", JF_STRING, 0, 0, 16, NULL, "\"\"", NULL, NULL },
	{ "access", JF_ENUM, JF_REQUIRED, 0, 0, tagsrc_virtual_access, NULL,
	    NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field tagsrc_virtual_key_schema[] = {
	{ "prvdName", JF_STRING, JF_REQUIRED, 1, 1024, NULL, NULL, NULL,
	    NULL },
	{ "srcName", JF_STRING, JF_REQUIRED, 1, 1024, NULL, NULL, NULL, NULL },
	{ "tagName", JF_STRING, JF_REQUIRED, 1, 1024, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* A write to a virtual tag: it becomes the tag's value. */
static int
tagsrc_virtual_write_cb(const struct tag_rec *rec, __attribute__((unused))
    void *arg, __attribute__((unused)) char **cause)
{
	struct tag_pub	pub;

	memset(&pub, 0, sizeof pub);
	pub.prvd = rec->prvd;
	pub.src = rec->src;
	pub.name = rec->name;
	pub.has_type = 1;
	pub.value = rec->value;
	pub.ts = rec->ts;
	tag_apply(&pub, 1, TAG_ORIGIN_VIRTUAL);
	return (0);
}

/* Register a stored definition with the tag hub. */
static void
tagsrc_virtual_define(const struct json *d)
{
	enum tag_type	 type;
	struct tag	*t;

	if (tag_type_parse(json_get_string(d, "dataType"), &type) != 0)
		return;
	t = tag_define(json_get_string(d, "prvdName"),
	    json_get_string(d, "srcName"), json_get_string(d, "tagName"), type,
	    json_get_string(d, "dataUnit"),
	    tag_access_parse(json_get_string(d, "access")),
	    json_uint(json_get(d, "dataSize")), TAG_ORIGIN_VIRTUAL);
	tag_set_writer(t, tagsrc_virtual_write_cb, NULL);
}

/* Load the stored definitions. */
int
tagsrc_virtual_init(struct store *store, __attribute__((unused))
    char **cause)
{
	size_t	i;

	vt = xcalloc(1, sizeof *vt);
	vt->store = store;
	vt->defs = store_list(store, VTAG_COLL);
	for (i = 0; i < json_array_size(vt->defs); i++)
		tagsrc_virtual_define(json_array_get(vt->defs, i));
	if (json_array_size(vt->defs) != 0)
		log_info("tag: loaded virtual tags count=%zu",
		    json_array_size(vt->defs));
	return (0);
}

/* Forget the definitions (the tag hub frees the tags). */
void
tagsrc_virtual_free(void)
{
	if (vt == NULL)
		return;
	json_free(vt->defs);
	free(vt);
	vt = NULL;
}

/* Index of the stored definition of a tag, or -1. */
static ssize_t
tagsrc_virtual_find(const char *prvd, const char *src, const char *name)
{
	size_t		 i;
	struct json	*d;

	for (i = 0; i < json_array_size(vt->defs); i++) {
		d = json_array_get(vt->defs, i);
		if (strcmp(json_get_string(d, "prvdName"), prvd) == 0 &&
		    strcmp(json_get_string(d, "srcName"), src) == 0 &&
		    strcmp(json_get_string(d, "tagName"), name) == 0)
			return (i);
	}
	return (-1);
}

/* The public form of a definition; caller frees. */
static struct json *
tagsrc_virtual_public(const struct json *d)
{
	struct json	*p;

	p = json_copy(d);
	json_del(p, "id");
	return (p);
}

/*
 * Create (update 0) or change (update 1) a virtual tag from a request
 * body (edited in place).  *out is the definition (caller frees).  -1
 * with *status (400, 404) and *cause on failure.
 */
int
tagsrc_virtual_add(struct json *body, int update, struct json **out,
    int *status, char **cause)
{
	const char	*prvd, *src, *name;
	struct tag	*t;
	ssize_t		 at;
	uint64_t	 id;
	struct json	*d;

	*status = 400;
	if (json_validate(body, tagsrc_virtual_schema, cause) != 0)
		return (-1);
	prvd = json_get_string(body, "prvdName");
	src = json_get_string(body, "srcName");
	name = json_get_string(body, "tagName");
	at = tagsrc_virtual_find(prvd, src, name);
	if (update && at == -1) {
		*status = 404;
		xasprintf(cause, "virtual tag %s/%s/%s not found", prvd, src,
		    name);
		return (-1);
	}
	if (!update && at != -1) {
		xasprintf(cause, "tagName: virtual tag %s/%s/%s already exists",
		    prvd, src, name);
		return (-1);
	}
	if (!update && (t = tag_find(prvd, src, name)) != NULL) {
		xasprintf(cause, "tagName: tag %s/%s/%s already exists and is "
		    "not virtual", prvd, src, name);
		return (-1);
	}
	if (update)
		id = json_uint(json_get(json_array_get(vt->defs, at), "id"));
	else if ((id = store_next_id(vt->store, VTAG_COLL, cause)) == 0)
		return (-1);
	d = json_copy(body);
	json_set(d, "id", json_new_uint(id));
	if (store_put(vt->store, VTAG_COLL, id, d, cause) != 0) {
		json_free(d);
		return (-1);
	}
	if (update)
		json_free(json_array_take(vt->defs, at));
	json_array_push(vt->defs, d);
	tagsrc_virtual_define(d);
	log_info("tag: virtual tag %s %s/%s/%s", update ? "changed" :
	    "created", prvd, src, name);
	*out = tagsrc_virtual_public(d);
	return (0);
}

/* Delete a virtual tag named by a body {prvdName, srcName, tagName}. */
int
tagsrc_virtual_delete(struct json *body, int *status, char **cause)
{
	const char	*prvd, *src, *name;
	struct json	*d;
	struct tag	*t;
	ssize_t		 at;

	*status = 400;
	if (json_validate(body, tagsrc_virtual_key_schema, cause) != 0)
		return (-1);
	prvd = json_get_string(body, "prvdName");
	src = json_get_string(body, "srcName");
	name = json_get_string(body, "tagName");
	if ((at = tagsrc_virtual_find(prvd, src, name)) == -1) {
		*status = 404;
		xasprintf(cause, "virtual tag %s/%s/%s not found", prvd, src,
		    name);
		return (-1);
	}
	d = json_array_get(vt->defs, at);
	if (store_del(vt->store, VTAG_COLL, json_uint(json_get(d, "id")),
	    cause) != 0)
		return (-1);
	if ((t = tag_find(prvd, src, name)) != NULL)
		tag_undefine(t);
	json_free(json_array_take(vt->defs, at));
	log_info("tag: virtual tag deleted %s/%s/%s", prvd, src, name);
	return (0);
}

/* Every virtual tag's definition; caller frees. */
struct json *
tagsrc_virtual_list(void)
{
	struct json	*a;
	size_t		 i;

	a = json_new_array();
	for (i = 0; i < json_array_size(vt->defs); i++)
		json_array_push(a,
		    tagsrc_virtual_public(json_array_get(vt->defs, i)));
	return (a);
}

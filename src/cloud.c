/* SPDX-License-Identifier: ISC */
/*
 * Pieces every cloud connection shares.
 *
 * Message groups: the documents live in a collection of the configuration
 * store per connection; each enabled document runs as a group (group.c)
 * feeding the connection's outbox.  Certificates: files uploaded with
 * multipart/form-data are checked to be PEM and kept in datadir/certs,
 * mode 0600; the configuration keeps only their names.  Answers never
 * carry internal fields (names starting with '_').  The "test custom
 * payload" call runs a filter over tags through the same format code as
 * real messages.
 */

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cloud.h"
#include "format.h"
#include "group.h"
#include "json.h"
#include "log.h"
#include "multipart.h"
#include "outbox.h"
#include "store.h"
#include "tag.h"
#include "util.h"
#include "xmalloc.h"

#define CLOUD_CERT_MAX	65536	/* bytes in one uploaded PEM file */

struct cloud_group {
	uint64_t		 id;
	struct json		*doc;
	struct group		*group;		/* NULL if it could not start */
};

struct cloud_groups {
	struct event_base	*base;
	struct store		*store;
	char			*coll;
	char			*name;
	struct group_target	 target;
	struct cloud_group	*v;
	size_t			 n;
};

static char	*cloud_datadir;

static void	cloud_group_start(struct cloud_groups *, struct cloud_group *);

/* Where certificates live (datadir/certs). */
void
cloud_init(const char *datadir)
{
	free(cloud_datadir);
	cloud_datadir = datadir != NULL ? util_path(datadir, "certs") : NULL;
}

/* A copy of doc without internal fields ('_' names); caller frees. */
struct json *
cloud_public(const struct json *doc)
{
	struct json	*p;
	size_t		 i;

	p = json_copy(doc);
	for (i = 0; i < json_object_size(p); ) {
		if (json_object_key(p, i)[0] == '_')
			json_del(p, json_object_key(p, i));
		else
			i++;
	}
	return (p);
}

/* Start (or restart) the runtime group of a document. */
static void
cloud_group_start(struct cloud_groups *cg, struct cloud_group *g)
{
	char	*cause, *name;

	group_free(g->group);
	g->group = NULL;
	xasprintf(&name, "%s/%" PRIu64, cg->name, g->id);
	g->group = group_new(cg->base, name, g->doc, &cg->target, &cause);
	if (g->group == NULL) {
		log_warnx("group %s: not started: %s", name, cause);
		free(cause);
	}
	free(name);
}

/*
 * The message groups of one connection, loaded from collection coll of
 * the store and started against target (copied).
 */
struct cloud_groups *
cloud_groups_new(struct event_base *base, struct store *store,
    const char *coll, const char *name, const struct group_target *target)
{
	struct cloud_groups	*cg;
	struct json		*list, *doc;
	size_t			 i;

	cg = xcalloc(1, sizeof *cg);
	cg->base = base;
	cg->store = store;
	cg->coll = xstrdup(coll);
	cg->name = xstrdup(name);
	cg->target = *target;
	list = store_list(store, coll);
	for (i = 0; i < json_array_size(list); i++) {
		doc = json_array_get(list, i);
		cg->v = xreallocarray(cg->v, cg->n + 1, sizeof *cg->v);
		cg->v[cg->n].id = json_uint(json_get(doc, "id"));
		cg->v[cg->n].doc = json_copy(doc);
		cg->v[cg->n].group = NULL;
		cloud_group_start(cg, &cg->v[cg->n]);
		cg->n++;
	}
	json_free(list);
	return (cg);
}

/* Send what every group holds now. */
void
cloud_groups_flush(struct cloud_groups *cg)
{
	size_t	i;

	for (i = 0; i < cg->n; i++)
		if (cg->v[i].group != NULL)
			group_flush(cg->v[i].group);
}

/* Stop the groups (what is stored stays). */
void
cloud_groups_free(struct cloud_groups *cg)
{
	size_t	i;

	if (cg == NULL)
		return;
	for (i = 0; i < cg->n; i++) {
		group_free(cg->v[i].group);
		json_free(cg->v[i].doc);
	}
	free(cg->v);
	free(cg->coll);
	free(cg->name);
	free(cg);
}

/* Delete the stored groups too (the connection is going away). */
void
cloud_groups_purge(struct cloud_groups *cg)
{
	char	*cause;
	size_t	 i;

	for (i = 0; i < cg->n; i++) {
		if (store_del(cg->store, cg->coll, cg->v[i].id, &cause) != 0) {
			log_warnx("%s", cause);
			free(cause);
		}
	}
}

/* The connection's QoS, retain or outbox changed: restart the groups. */
void
cloud_groups_retarget(struct cloud_groups *cg, const struct group_target *t)
{
	size_t	i;

	cg->target = *t;
	for (i = 0; i < cg->n; i++)
		cloud_group_start(cg, &cg->v[i]);
}

/* Every group as clients see it (a bare array); caller frees. */
struct json *
cloud_groups_list(struct cloud_groups *cg)
{
	struct json	*a;
	size_t		 i;

	a = json_new_array();
	for (i = 0; i < cg->n; i++)
		json_array_push(a, cloud_public(cg->v[i].doc));
	return (a);
}

/* The slot of group id, or NULL. */
static struct cloud_group *
cloud_groups_find(struct cloud_groups *cg, uint64_t id)
{
	size_t	i;

	for (i = 0; i < cg->n; i++)
		if (cg->v[i].id == id)
			return (&cg->v[i]);
	return (NULL);
}

/* One group as clients see it; NULL if unknown.  Caller frees. */
struct json *
cloud_groups_get(struct cloud_groups *cg, uint64_t id)
{
	struct cloud_group	*g;

	if ((g = cloud_groups_find(cg, id)) == NULL)
		return (NULL);
	return (cloud_public(g->doc));
}

/* Validate a group body (edited in place); 0 or -1 with *cause. */
static int
cloud_groups_valid(struct json *body, char **cause)
{
	if (json_type(body) != JSON_OBJECT) {
		xasprintf(cause, "body: must be a message group object");
		return (-1);
	}
	return (group_validate(body, cause));
}

/* Create a group from a request body; *out its public form. */
int
cloud_groups_add(struct cloud_groups *cg, struct json *body,
    struct json **out, char **cause)
{
	struct json	*doc;
	uint64_t	 id;

	if (cloud_groups_valid(body, cause) != 0)
		return (-1);
	if ((id = store_next_id(cg->store, cg->coll, cause)) == 0)
		return (-1);
	doc = json_copy(body);
	json_set(doc, "id", json_new_uint(id));
	if (store_put(cg->store, cg->coll, id, doc, cause) != 0) {
		json_free(doc);
		return (-1);
	}
	cg->v = xreallocarray(cg->v, cg->n + 1, sizeof *cg->v);
	cg->v[cg->n].id = id;
	cg->v[cg->n].doc = doc;
	cg->v[cg->n].group = NULL;
	cloud_group_start(cg, &cg->v[cg->n]);
	cg->n++;
	log_info("group %s/%" PRIu64 ": created", cg->name, id);
	*out = cloud_public(doc);
	return (0);
}

/*
 * Replace group id with a request body; *out its public form.  -1 with
 * *status 404 (unknown) or 400 and *cause.
 */
int
cloud_groups_update(struct cloud_groups *cg, uint64_t id, struct json *body,
    struct json **out, int *status, char **cause)
{
	struct cloud_group	*g;
	struct json		*doc;

	*status = 400;
	if ((g = cloud_groups_find(cg, id)) == NULL) {
		*status = 404;
		xasprintf(cause, "message group %" PRIu64 " not found", id);
		return (-1);
	}
	if (cloud_groups_valid(body, cause) != 0)
		return (-1);
	doc = json_copy(body);
	json_set(doc, "id", json_new_uint(id));
	if (store_put(cg->store, cg->coll, id, doc, cause) != 0) {
		json_free(doc);
		return (-1);
	}
	/* The old group flushes what it holds before it goes. */
	if (g->group != NULL)
		group_flush(g->group);
	json_free(g->doc);
	g->doc = doc;
	cloud_group_start(cg, g);
	log_info("group %s/%" PRIu64 ": changed", cg->name, id);
	*out = cloud_public(doc);
	return (0);
}

/* Delete group id; -1 with *cause if unknown or the store fails. */
int
cloud_groups_delete(struct cloud_groups *cg, uint64_t id, char **cause)
{
	struct cloud_group	*g;
	size_t			 i;

	if ((g = cloud_groups_find(cg, id)) == NULL) {
		xasprintf(cause, "message group %" PRIu64 " not found", id);
		return (-1);
	}
	if (store_del(cg->store, cg->coll, id, cause) != 0)
		return (-1);
	if (g->group != NULL)
		group_flush(g->group);
	group_free(g->group);
	json_free(g->doc);
	i = g - cg->v;
	memmove(&cg->v[i], &cg->v[i + 1], (cg->n - i - 1) * sizeof *cg->v);
	cg->n--;
	log_info("group %s/%" PRIu64 ": deleted", cg->name, id);
	return (0);
}

/* Per-group counters for /metrics. */
void
cloud_groups_metrics(struct cloud_groups *cg, FILE *f)
{
	size_t	i;

	for (i = 0; i < cg->n; i++) {
		if (cg->v[i].group == NULL)
			continue;
		fprintf(f, "uplinkd_group_records_total{group=\"%s/%" PRIu64
		    "\"} %" PRIu64 "\n", cg->name, cg->v[i].id,
		    group_records(cg->v[i].group));
		fprintf(f, "uplinkd_group_messages_total{group=\"%s/%" PRIu64
		    "\"} %" PRIu64 "\n", cg->name, cg->v[i].id,
		    group_messages(cg->v[i].group));
		fprintf(f, "uplinkd_group_filter_errors_total{group=\"%s/%"
		    PRIu64 "\"} %" PRIu64 "\n", cg->name, cg->v[i].id,
		    group_filter_errors(cg->v[i].group));
		fprintf(f, "uplinkd_group_records_dropped_total{group=\"%s/%"
		    PRIu64 "\"} %" PRIu64 "\n", cg->name, cg->v[i].id,
		    group_dropped(cg->v[i].group));
	}
}

/* --- test custom payload ------------------------------------------------ */

/* A typed stand-in value for a tag that has none yet. */
static void
cloud_sample_value(enum tag_type type, struct tag_value *v)
{
	memset(v, 0, sizeof *v);
	v->type = type;
	if (type == TAG_STRING || type == TAG_RAW) {
		v->s = "";
		v->len = 0;
	}
}

/* The latest value of a tag named by a test entry; borrowed, or NULL. */
static struct tag *
cloud_test_tag(const char *prvd, const char *src, const char *name)
{
	struct tag	**all, *t = NULL;
	size_t		  n, i;

	if (prvd != NULL)
		return (tag_find(prvd, src, name));
	all = tag_all(&n);
	for (i = 0; i < n && t == NULL; i++)
		if (strcmp(tag_get_src(all[i]), src) == 0 &&
		    strcmp(tag_get_name(all[i]), name) == 0)
			t = all[i];
	free(all);
	return (t);
}

/*
 * PUT .../messages/test {format, tags:[{prvdName?, srcName, tagName,
 * dataType?}]}: each tag's current value (or a typed sample value)
 * through the filter, merged.  The merged document, or NULL with *status
 * and *cause.
 */
struct json *
cloud_format_test(struct json *body, int *status, char **cause)
{
	struct format		*fmt;
	struct format_buf	*buf;
	struct json		*tags, *e, *out;
	struct tag		*t;
	struct tag_rec		 rec;
	const char		*filter, *src, *name, *ts;
	enum tag_type		 type;
	size_t			 i;
	char			*why;

	*status = 400;
	if (json_type(body) != JSON_OBJECT) {
		xasprintf(cause, "body: must be an object");
		return (NULL);
	}
	filter = json_get_string(body, "format");
	if (json_get(body, "format") != NULL && filter == NULL) {
		xasprintf(cause, "format: must be a string");
		return (NULL);
	}
	tags = json_get(body, "tags");
	if (json_type(tags) != JSON_ARRAY) {
		xasprintf(cause, "tags: must be an array of tags");
		return (NULL);
	}
	if ((fmt = format_new(filter != NULL ? filter : "", cause)) == NULL)
		return (NULL);
	buf = format_buf_new(fmt);
	for (i = 0; i < json_array_size(tags); i++) {
		e = json_array_get(tags, i);
		src = json_get_string(e, "srcName");
		name = json_get_string(e, "tagName");
		if (src == NULL || name == NULL) {
			xasprintf(cause, "tags[%zu]: srcName and tagName are "
			    "required strings", i);
			goto fail;
		}
		t = cloud_test_tag(json_get_string(e, "prvdName"), src, name);
		if (t != NULL && tag_get(t, &rec) == 0)
			;
		else {
			type = TAG_INT32;
			if ((ts = json_get_string(e, "dataType")) != NULL &&
			    tag_type_parse(ts, &type) != 0) {
				xasprintf(cause, "tags[%zu].dataType: "
				    "\"%s\" is not a tag type", i, ts);
				goto fail;
			}
			memset(&rec, 0, sizeof rec);
			rec.prvd = json_get_string(e, "prvdName") != NULL ?
			    json_get_string(e, "prvdName") : "system";
			rec.src = src;
			rec.name = name;
			rec.unit = json_get_string(e, "dataUnit") != NULL ?
			    json_get_string(e, "dataUnit") : "";
			cloud_sample_value(type, &rec.value);
			rec.ts = util_wall_us();
		}
		if (format_buf_add(buf, &rec, 0, &why) == FORMAT_ERROR) {
			*cause = why;
			goto fail;
		}
	}
	out = format_buf_take_json(buf);
	format_buf_free(buf);
	format_free(fmt);
	return (out != NULL ? out : json_new_object());
fail:
	format_buf_free(buf);
	format_free(fmt);
	return (NULL);
}

/* --- certificates and forms --------------------------------------------- */

/* The file of an owner's certificate field; caller frees. */
char *
cloud_cert_path(const char *owner, const char *field)
{
	char	*p;

	xasprintf(&p, "%s/%s/%s.pem", cloud_datadir, owner, field);
	return (p);
}

/* The last component of an uploaded file name, made safe. */
static char *
cloud_basename(const char *name)
{
	const char	*p;
	char		*s, *q;

	if ((p = strrchr(name, '/')) != NULL)
		name = p + 1;
	if ((p = strrchr(name, '\\')) != NULL)
		name = p + 1;
	s = xstrndup(name, 255);
	for (q = s; *q != '\0'; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			*q = '_';
	return (s);
}

/*
 * Keep the file parts of fields (NULL-terminated) for owner: each must be
 * PEM, is written 0600 and named in doc's "certificate" object.
 */
int
cloud_cert_save(const char *owner, const struct multipart *mp,
    const char *const *fields, struct json *doc, char **cause)
{
	const struct mp_part	*part;
	const char *const	*f;
	struct json		*cert;
	char			*dir, *path, *base;

	for (f = fields; *f != NULL; f++) {
		if ((part = multipart_get(mp, *f)) == NULL)
			continue;
		if (part->len == 0 || part->len > CLOUD_CERT_MAX ||
		    memmem(part->data, part->len, "-----BEGIN ", 11) == NULL) {
			xasprintf(cause, "%s: must be a PEM file of at most %d "
			    "bytes", *f, CLOUD_CERT_MAX);
			return (-1);
		}
	}
	for (f = fields; *f != NULL; f++) {
		if ((part = multipart_get(mp, *f)) == NULL)
			continue;
		xasprintf(&dir, "%s/%s", cloud_datadir, owner);
		if (util_mkdirs(dir, 0700, cause) != 0) {
			free(dir);
			return (-1);
		}
		free(dir);
		path = cloud_cert_path(owner, *f);
		if (util_write_file(path, part->data, part->len, 0600,
		    cause) != 0) {
			free(path);
			return (-1);
		}
		free(path);
		if ((cert = json_get(doc, "certificate")) == NULL ||
		    json_type(cert) != JSON_OBJECT) {
			cert = json_new_object();
			json_set(doc, "certificate", cert);
		}
		base = cloud_basename(part->filename != NULL &&
		    *part->filename != '\0' ? part->filename : *f);
		json_set(cert, *f, json_new_string(base));
		free(base);
	}
	return (0);
}

/* Remove an owner's certificate files (fields NULL-terminated). */
void
cloud_cert_remove(const char *owner, const char *const *fields)
{
	const char *const	*f;
	char			*path;

	for (f = fields; *f != NULL; f++) {
		path = cloud_cert_path(owner, *f);
		if (unlink(path) == -1 && errno != ENOENT)
			log_warn("certificates: %s", path);
		free(path);
	}
	xasprintf(&path, "%s/%s", cloud_datadir, owner);
	rmdir(path);
	free(path);
}

/*
 * The configuration carried by a multipart form: a part "data" (or
 * "config") holding JSON, and/or plain fields named like "server" or
 * "willMessage.topic" (strings; json_coerce_strings() types them).  The
 * file fields are left out.  Caller frees; NULL with *cause.
 */
struct json *
cloud_form_json(const struct multipart *mp, const char *const *files,
    char **cause)
{
	const struct mp_part	*p;
	const char *const	*f;
	struct json		*doc = NULL, *o, *sub;
	char			*key, *dot, *k, *why;
	size_t			 i;
	int			 isfile;

	for (i = 0; i < multipart_count(mp); i++) {
		p = multipart_part(mp, i);
		if (strcmp(p->name, "data") != 0 &&
		    strcmp(p->name, "config") != 0)
			continue;
		if ((doc = json_parse(p->data, p->len, &why)) == NULL) {
			xasprintf(cause, "%s: %s", p->name, why);
			free(why);
			return (NULL);
		}
		if (json_type(doc) != JSON_OBJECT) {
			json_free(doc);
			xasprintf(cause, "%s: must be a JSON object", p->name);
			return (NULL);
		}
		break;
	}
	if (doc == NULL)
		doc = json_new_object();
	for (i = 0; i < multipart_count(mp); i++) {
		p = multipart_part(mp, i);
		isfile = 0;
		for (f = files; *f != NULL; f++)
			if (strcmp(p->name, *f) == 0)
				isfile = 1;
		if (isfile || strcmp(p->name, "data") == 0 ||
		    strcmp(p->name, "config") == 0)
			continue;
		if (strlen((const char *)p->data) != p->len) {
			json_free(doc);
			xasprintf(cause, "%s: must be text", p->name);
			return (NULL);
		}
		key = xstrdup(p->name);
		o = doc;
		for (k = key; (dot = strchr(k, '.')) != NULL; k = dot + 1) {
			*dot = '\0';
			sub = json_get(o, k);
			if (json_type(sub) != JSON_OBJECT) {
				sub = json_new_object();
				json_set(o, k, sub);
			}
			o = sub;
		}
		json_set(o, k, json_new_stringn((const char *)p->data,
		    p->len));
		free(key);
	}
	return (doc);
}

/* --- store and forward ---------------------------------------------------- */

struct cloud_disk {
	char	*name;
	char	*dir;
};

static struct cloud_disk	*cloud_disks;
static size_t			 cloud_ndisks;
static int			 cloud_cache_sync = CACHE_SYNC_PAGES;
static unsigned int		 cloud_cache_commit_ms = 100;

static const char *const cloud_saf_drops[] = { "oldest", "newest", NULL };

static const struct json_field cloud_saf_fields[] = {
	{ "enable", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "targetDiskName", JF_STRING, 0, 0, 255, NULL, NULL, NULL, NULL },
	{ "desiredDiskCacheSizeMB", JF_INT, 0, 1, 1048576, NULL, "64", NULL,
	    NULL },
	{ "timeToLiveSec", JF_INT, 0, 0, 31536000, NULL, "86400", NULL,
	    NULL },
	{ "dropBehavior", JF_ENUM, 0, 0, 0, cloud_saf_drops, "\"oldest\"",
	    NULL, NULL },
	{ "sendDelayMillsecond", JF_INT, 0, 0, 1000, NULL, "0", NULL, NULL },
	{ "strictOrder", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "disks", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "backlog", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/*
 * Where caches may live: "Name=dir[,Name=dir...]" from cache_disks, or
 * "System=<datadir>/cache" when that is empty; sync and commit_ms as
 * uplinkd.conf says.  0, or -1 with *cause for a malformed list.
 */
int
cloud_saf_init(const char *disks, const char *datadir, int sync,
    unsigned int commit_ms, char **cause)
{
	char	*copy, *p, *tok, *eq;
	size_t	 i;

	for (i = 0; i < cloud_ndisks; i++) {
		free(cloud_disks[i].name);
		free(cloud_disks[i].dir);
	}
	free(cloud_disks);
	cloud_disks = NULL;
	cloud_ndisks = 0;
	cloud_cache_sync = sync;
	cloud_cache_commit_ms = commit_ms;
	if (disks == NULL)
		return (0);
	if (*disks == '\0') {
		cloud_disks = xcalloc(1, sizeof *cloud_disks);
		cloud_disks[0].name = xstrdup("System");
		cloud_disks[0].dir = util_path(datadir, "cache");
		cloud_ndisks = 1;
		return (0);
	}
	copy = xstrdup(disks);
	for (p = copy; (tok = strsep(&p, ",")) != NULL; ) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if ((eq = strchr(tok, '=')) == NULL || eq == tok ||
		    eq[1] != '/') {
			xasprintf(cause, "cache_disks: \"%s\" must be "
			    "Name=/absolute/dir", tok);
			free(copy);
			return (-1);
		}
		*eq = '\0';
		cloud_disks = xreallocarray(cloud_disks, cloud_ndisks + 1,
		    sizeof *cloud_disks);
		cloud_disks[cloud_ndisks].name = xstrdup(tok);
		cloud_disks[cloud_ndisks++].dir = xstrdup(eq + 1);
	}
	free(copy);
	if (cloud_ndisks == 0) {
		xasprintf(cause, "cache_disks: no disk named");
		return (-1);
	}
	return (0);
}

/* The disk named name, or NULL. */
static const struct cloud_disk *
cloud_disk(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < cloud_ndisks; i++)
		if (strcmp(cloud_disks[i].name, name) == 0)
			return (&cloud_disks[i]);
	return (NULL);
}

/* The mount point and device holding path (longest /proc/mounts match). */
static void
cloud_mount_of(const char *path, char **mount, char **device)
{
	FILE	*f;
	char	 dev[512], mnt[512], best_dev[512] = "", best[512] = "/";
	char	 real[4096];
	size_t	 len, bestlen = 0;

	if (realpath(path, real) == NULL)
		snprintf(real, sizeof real, "%s", path);
	if ((f = fopen("/proc/mounts", "r")) != NULL) {
		while (fscanf(f, "%511s %511s %*s %*s %*d %*d", dev,
		    mnt) == 2) {
			len = strlen(mnt);
			if (strncmp(real, mnt, len) == 0 && (real[len] == '/' ||
			    real[len] == '\0' || len == 1) && len >= bestlen) {
				bestlen = len;
				snprintf(best, sizeof best, "%s", mnt);
				snprintf(best_dev, sizeof best_dev, "%s", dev);
			}
		}
		fclose(f);
	}
	*mount = xstrdup(best);
	*device = xstrdup(best_dev);
}

/* The disks as the API shows them (statvfs figures); caller frees. */
struct json *
cloud_saf_disks(void)
{
	struct json	*a, *d;
	struct statvfs	 sv;
	char		*mount, *device, *cause;
	size_t		 i;
	uint64_t	 total = 0, freeb = 0, avail = 0;

	a = json_new_array();
	for (i = 0; i < cloud_ndisks; i++) {
		if (util_mkdirs(cloud_disks[i].dir, 0700, &cause) != 0)
			free(cause);
		if (statvfs(cloud_disks[i].dir, &sv) == 0) {
			total = (uint64_t)sv.f_blocks * sv.f_frsize;
			freeb = (uint64_t)sv.f_bfree * sv.f_frsize;
			avail = (uint64_t)sv.f_bavail * sv.f_frsize;
		}
		cloud_mount_of(cloud_disks[i].dir, &mount, &device);
		d = json_new_object();
		json_set(d, "name", json_new_string(cloud_disks[i].name));
		json_set(d, "mount", json_new_string(mount));
		json_set(d, "device", json_new_string(device));
		json_set(d, "total", json_new_uint(total));
		json_set(d, "used", json_new_uint(total - freeb));
		json_set(d, "free", json_new_uint(avail));
		json_array_push(a, d);
		free(mount);
		free(device);
	}
	return (a);
}

/* The stored settings of a connection's cache, defaults filled. */
struct json *
cloud_saf_get(struct store *store, const char *owner)
{
	struct json	*doc;
	char		*key, *cause;

	xasprintf(&key, "saf.%s", owner);
	if ((doc = store_get_doc(store, key)) == NULL)
		doc = json_new_object();
	free(key);
	if (json_validate(doc, cloud_saf_fields, &cause) != 0) {
		free(cause);
		json_free(doc);
		doc = json_new_object();
		json_validate(doc, cloud_saf_fields, &cause);
	}
	if (json_get(doc, "targetDiskName") == NULL && cloud_ndisks != 0)
		json_set(doc, "targetDiskName",
		    json_new_string(cloud_disks[0].name));
	return (doc);
}

/*
 * Validate and store new settings (body edited; a PUT merges over the
 * stored ones).  *out the stored document (caller frees).
 */
int
cloud_saf_put(struct store *store, const char *owner, struct json *body,
    struct json **out, char **cause)
{
	struct json	*doc;
	char		*key;
	const char	*disk;

	if (json_type(body) != JSON_OBJECT) {
		xasprintf(cause, "body: must be a store-and-forward object");
		return (-1);
	}
	doc = cloud_saf_get(store, owner);
	json_merge(doc, body);
	if (json_validate(doc, cloud_saf_fields, cause) != 0) {
		json_free(doc);
		return (-1);
	}
	disk = json_get_string(doc, "targetDiskName");
	if (cloud_disk(disk) == NULL) {
		xasprintf(cause, "targetDiskName: must be the name of one of "
		    "disks[] (\"%s\" is not)", disk != NULL ? disk : "");
		json_free(doc);
		return (-1);
	}
	xasprintf(&key, "saf.%s", owner);
	if (store_put_doc(store, key, doc, cause) != 0) {
		free(key);
		json_free(doc);
		return (-1);
	}
	free(key);
	*out = doc;
	return (0);
}

/* The cache file of a connection on its disk; caller frees. */
static char *
cloud_saf_file(const struct json *doc, const char *owner)
{
	const struct cloud_disk	*d;
	char			*p;

	if ((d = cloud_disk(json_get_string(doc, "targetDiskName"))) == NULL)
		d = &cloud_disks[0];
	xasprintf(&p, "%s/%s.tcb", d->dir, owner);
	return (p);
}

/*
 * Put settings into effect for ob: open (or re-tune) the cache, or go
 * back to memory only.  A cache that cannot open leaves memory only and
 * says why.
 */
int
cloud_saf_apply(struct event_base *base, struct outbox *ob, const char *owner,
    const struct json *doc, char **cause)
{
	struct cache_cfg	 cfg;
	struct cache		*c = outbox_cache(ob);
	char			*path, *dir, *slash;

	if (!json_bool(json_get(doc, "enable")) || cloud_ndisks == 0) {
		if (c != NULL)
			log_info("outbox %s: store and forward off", owner);
		outbox_set_cache(ob, base, NULL, 0, 0);
		return (0);
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.cap_bytes = (uint64_t)json_int(json_get(doc,
	    "desiredDiskCacheSizeMB")) << 20;
	cfg.ttl_sec = json_int(json_get(doc, "timeToLiveSec"));
	cfg.drop_newest = strcmp(json_get_string(doc, "dropBehavior"),
	    "newest") == 0;
	path = cloud_saf_file(doc, owner);
	if (c != NULL && strcmp(cache_path(c), path) == 0) {
		cache_set(c, &cfg);
		outbox_set_cache(ob, base, c,
		    json_bool(json_get(doc, "strictOrder")),
		    json_int(json_get(doc, "sendDelayMillsecond")));
		free(path);
		return (0);
	}
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if (util_mkdirs(dir, 0700, cause) != 0) {
		free(dir);
		free(path);
		outbox_set_cache(ob, base, NULL, 0, 0);
		return (-1);
	}
	free(dir);
	c = cache_open(base, path, owner, cloud_cache_sync,
	    cloud_cache_commit_ms, &cfg, cause);
	free(path);
	if (c == NULL) {
		outbox_set_cache(ob, base, NULL, 0, 0);
		return (-1);
	}
	outbox_set_cache(ob, base, c, json_bool(json_get(doc, "strictOrder")),
	    json_int(json_get(doc, "sendDelayMillsecond")));
	log_info("outbox %s: store and forward on file=%s cap=%" PRIu64 "MB",
	    owner, cache_path(c), cfg.cap_bytes >> 20);
	return (0);
}

/* The settings with the disks and the live backlog; caller frees. */
struct json *
cloud_saf_view(const struct json *doc, struct outbox *ob)
{
	struct json	*v, *b, *d;
	struct cache	*c = outbox_cache(ob);
	int64_t		 oldest;
	int		 i;

	v = json_copy(doc);
	json_set(v, "disks", cloud_saf_disks());
	b = json_new_object();
	json_set(b, "messages", json_new_uint(c != NULL ? cache_count(c) : 0));
	json_set(b, "bytes", json_new_uint(c != NULL ? cache_bytes(c) : 0));
	json_set(b, "diskBytes", json_new_uint(c != NULL ?
	    cache_disk_bytes(c) : 0));
	oldest = c != NULL ? cache_oldest_us(c) : 0;
	json_set(b, "oldestAgeSec", json_new_int(oldest == 0 ? 0 :
	    (util_wall_us() - oldest) / 1000000));
	json_set(b, "replayRate", json_new_double(outbox_replay_rate(ob)));
	d = json_new_object();
	for (i = 0; i < CACHE_NDROPS; i++)
		json_set(d, cache_drop_name(i), json_new_uint(c != NULL ?
		    cache_drops(c, i) : 0));
	json_set(b, "dropped", d);
	json_set(b, "memoryMessages", json_new_uint(outbox_queued(ob)));
	json_set(v, "backlog", b);
	return (v);
}

/* Delete a connection's stored settings and cache file (it is gone). */
void
cloud_saf_remove(struct store *store, const char *owner)
{
	struct json	*doc;
	char		*key, *path, *wal, *cause;

	doc = cloud_saf_get(store, owner);
	path = cloud_saf_file(doc, owner);
	unlink(path);
	xasprintf(&wal, "%s.wal", path);
	unlink(wal);
	free(wal);
	free(path);
	json_free(doc);
	xasprintf(&key, "saf.%s", owner);
	doc = json_new_object();
	if (store_put_doc(store, key, doc, &cause) != 0) {
		log_warnx("%s", cause);
		free(cause);
	}
	json_free(doc);
	free(key);
}

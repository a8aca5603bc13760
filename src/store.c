/* SPDX-License-Identifier: ISC */
/*
 * The configuration store: JSON documents in a Tokyo Cabinet hash
 * database (config.tch in the data directory).
 *
 * Documents live in collections ("mqtt", "users", ...) under keys
 * "d/<collection>/<id>", with ids allocated per collection from a counter
 * under "n/<collection>" that never goes back, so a deleted id is not
 * reused.  Singleton documents live under "s/<name>".  Every change is a
 * Tokyo Cabinet transaction, synchronised to disk when it commits
 * (HDBOTSYNC), so a kill -9 or a power cut leaves either the old or the
 * new state.  Several changes can be grouped with store_begin() and
 * store_commit(); outside such a group every call commits on its own.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcutil.h>
#include <tchdb.h>

#include "json.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

struct store {
	TCHDB	*hdb;
	char	*path;
	int	 depth;		/* open store_begin() groups */
	int	 failed;	/* a write inside the group failed */
};

static int	store_check(struct store *, char **);
static int	store_write_begin(struct store *, char **);
static int	store_write_end(struct store *, int, char **);
static int	store_cmp_id(const void *, const void *);

/* Open (creating if needed) the store at path; NULL and *cause on error. */
struct store *
store_open(const char *path, char **cause)
{
	struct store	*s;

	s = xcalloc(1, sizeof *s);
	s->path = xstrdup(path);
	if ((s->hdb = tchdbnew()) == NULL)
		fatalx("tchdbnew failed");
	tchdbsetmutex(s->hdb);
	tchdbtune(s->hdb, 1021, -1, -1, 0);
	if (!tchdbopen(s->hdb, path, HDBOWRITER | HDBOCREAT | HDBOTSYNC |
	    HDBOLCKNB)) {
		xasprintf(cause, "config store %s: %s", path,
		    tchdberrmsg(tchdbecode(s->hdb)));
		tchdbdel(s->hdb);
		free(s->path);
		free(s);
		return (NULL);
	}
	if (store_check(s, cause) != 0) {
		store_close(s);
		return (NULL);
	}
	log_debug("store: opened %s records=%" PRIu64, path,
	    tchdbrnum(s->hdb));
	return (s);
}

/*
 * Read every record once: a damaged store is refused at start rather
 * than found out later (an unreadable account list would otherwise look
 * like a first start).
 */
static int
store_check(struct store *s, char **cause)
{
	char		*key, *val, *why;
	int		 klen, vlen, ecode;
	uint64_t	 bad = 0;
	struct json	*j;

	if (!tchdbiterinit(s->hdb))
		goto damaged;
	while ((key = tchdbiternext(s->hdb, &klen)) != NULL) {
		val = tchdbget(s->hdb, key, klen, &vlen);
		if (val == NULL || (j = json_parse(val, vlen, &why)) == NULL) {
			if (val != NULL)
				free(why);
			bad++;
		} else
			json_free(j);
		free(val);
		free(key);
	}
	ecode = tchdbecode(s->hdb);
	if (ecode != TCESUCCESS && ecode != TCENOREC)
		goto damaged;
	if (bad != 0) {
		xasprintf(cause, "config store %s: %" PRIu64 " unreadable "
		    "records; move the file away to start with an empty "
		    "configuration, or restore a backup", s->path, bad);
		return (-1);
	}
	return (0);
damaged:
	xasprintf(cause, "config store %s: damaged (%s); move the file away "
	    "to start with an empty configuration, or restore a backup",
	    s->path, tchdberrmsg(tchdbecode(s->hdb)));
	return (-1);
}

/* Close the store (aborting an unfinished group); NULL is fine. */
void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->depth > 0)
		tchdbtranabort(s->hdb);
	if (!tchdbclose(s->hdb))
		log_warnx("store: close %s: %s", s->path,
		    tchdberrmsg(tchdbecode(s->hdb)));
	tchdbdel(s->hdb);
	free(s->path);
	free(s);
}

/* Start a group of changes that commit together. */
int
store_begin(struct store *s)
{
	if (s->depth++ > 0)
		return (0);
	s->failed = 0;
	if (!tchdbtranbegin(s->hdb)) {
		log_warnx("store: begin: %s",
		    tchdberrmsg(tchdbecode(s->hdb)));
		s->depth = 0;
		return (-1);
	}
	return (0);
}

/* Commit a group (the outermost one writes); -1 and *cause on failure. */
int
store_commit(struct store *s, char **cause)
{
	if (s->depth == 0)
		fatalx("store_commit without store_begin");
	if (--s->depth > 0)
		return (0);
	if (s->failed) {
		tchdbtranabort(s->hdb);
		xasprintf(cause, "%s: a write failed, nothing was changed",
		    s->path);
		return (-1);
	}
	if (!tchdbtrancommit(s->hdb)) {
		xasprintf(cause, "%s: commit: %s", s->path,
		    tchdberrmsg(tchdbecode(s->hdb)));
		tchdbtranabort(s->hdb);
		return (-1);
	}
	return (0);
}

/* Throw away a group. */
void
store_abort(struct store *s)
{
	if (s->depth == 0)
		fatalx("store_abort without store_begin");
	if (--s->depth > 0) {
		s->failed = 1;
		return;
	}
	tchdbtranabort(s->hdb);
}

/* Begin a write: its own transaction unless inside a group. */
static int
store_write_begin(struct store *s, char **cause)
{
	if (s->depth > 0)
		return (0);
	if (!tchdbtranbegin(s->hdb)) {
		xasprintf(cause, "%s: begin: %s", s->path,
		    tchdberrmsg(tchdbecode(s->hdb)));
		return (-1);
	}
	return (0);
}

/* End a write begun with store_write_begin(); ok says if it worked. */
static int
store_write_end(struct store *s, int ok, char **cause)
{
	if (s->depth > 0) {
		if (!ok) {
			s->failed = 1;
			xasprintf(cause, "%s: %s", s->path,
			    tchdberrmsg(tchdbecode(s->hdb)));
			return (-1);
		}
		return (0);
	}
	if (!ok) {
		xasprintf(cause, "%s: %s", s->path,
		    tchdberrmsg(tchdbecode(s->hdb)));
		tchdbtranabort(s->hdb);
		return (-1);
	}
	if (!tchdbtrancommit(s->hdb)) {
		xasprintf(cause, "%s: commit: %s", s->path,
		    tchdberrmsg(tchdbecode(s->hdb)));
		tchdbtranabort(s->hdb);
		return (-1);
	}
	return (0);
}

/* Read a stored document by key; caller frees, NULL if absent. */
static struct json *
store_read(struct store *s, const char *key)
{
	char		*val, *cause;
	int		 len;
	struct json	*j;

	if ((val = tchdbget(s->hdb, key, strlen(key), &len)) == NULL)
		return (NULL);
	j = json_parse(val, len, &cause);
	if (j == NULL) {
		log_warnx("store: %s: unreadable record %s: %s", s->path, key,
		    cause);
		free(cause);
	}
	free(val);
	return (j);
}

/* Write a document under key; -1 and *cause on failure. */
static int
store_write(struct store *s, const char *key, const struct json *j,
    char **cause)
{
	char	*text;
	size_t	 len;
	int	 ok;

	text = json_dump(j, &len);
	if (store_write_begin(s, cause) != 0) {
		free(text);
		return (-1);
	}
	ok = tchdbput(s->hdb, key, strlen(key), text, len);
	free(text);
	return (store_write_end(s, ok, cause));
}

/* Document id of a collection; caller frees, NULL if absent. */
struct json *
store_get(struct store *s, const char *coll, uint64_t id)
{
	char	key[256];

	snprintf(key, sizeof key, "d/%s/%" PRIu64, coll, id);
	return (store_read(s, key));
}

/* Store document id of a collection (j is only read). */
int
store_put(struct store *s, const char *coll, uint64_t id,
    const struct json *j, char **cause)
{
	char	key[256];

	snprintf(key, sizeof key, "d/%s/%" PRIu64, coll, id);
	return (store_write(s, key, j, cause));
}

/* Delete document id of a collection; deleting nothing is not an error. */
int
store_del(struct store *s, const char *coll, uint64_t id, char **cause)
{
	char	key[256];
	int	ok;

	snprintf(key, sizeof key, "d/%s/%" PRIu64, coll, id);
	if (store_write_begin(s, cause) != 0)
		return (-1);
	ok = tchdbout2(s->hdb, key) || tchdbecode(s->hdb) == TCENOREC;
	return (store_write_end(s, ok, cause));
}

struct store_item {
	uint64_t	 id;
	struct json	*doc;
};

static int
store_cmp_id(const void *a, const void *b)
{
	const struct store_item	*x = a, *y = b;

	return (x->id < y->id ? -1 : x->id > y->id);
}

/* All documents of a collection as an array in id order; caller frees. */
struct json *
store_list(struct store *s, const char *coll)
{
	struct store_item	*items = NULL;
	size_t			 n = 0, cap = 0, i, plen;
	char			 prefix[256], *key, *end;
	int			 klen;
	uint64_t		 id;
	struct json		*doc, *arr;

	plen = snprintf(prefix, sizeof prefix, "d/%s/", coll);
	tchdbiterinit(s->hdb);
	while ((key = tchdbiternext(s->hdb, &klen)) != NULL) {
		if ((size_t)klen <= plen || strncmp(key, prefix, plen) != 0) {
			free(key);
			continue;
		}
		errno = 0;
		id = strtoull(key + plen, &end, 10);
		if (errno != 0 || *end != '\0' ||
		    (doc = store_read(s, key)) == NULL) {
			free(key);
			continue;
		}
		free(key);
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			items = xreallocarray(items, cap, sizeof *items);
		}
		items[n].id = id;
		items[n++].doc = doc;
	}
	if (n > 1)
		qsort(items, n, sizeof *items, store_cmp_id);
	arr = json_new_array();
	for (i = 0; i < n; i++)
		json_array_push(arr, items[i].doc);
	free(items);
	return (arr);
}

/* Allocate the next id of a collection (starting at 1); 0 on failure. */
uint64_t
store_next_id(struct store *s, const char *coll, char **cause)
{
	char		 key[256];
	struct json	*n;
	uint64_t	 id;

	snprintf(key, sizeof key, "n/%s", coll);
	n = store_read(s, key);
	id = json_uint(n) + 1;
	json_free(n);
	n = json_new_uint(id);
	if (store_write(s, key, n, cause) != 0)
		id = 0;
	json_free(n);
	return (id);
}

/* A singleton document; caller frees, NULL if absent. */
struct json *
store_get_doc(struct store *s, const char *name)
{
	char	key[256];

	snprintf(key, sizeof key, "s/%s", name);
	return (store_read(s, key));
}

/* Store a singleton document (j is only read). */
int
store_put_doc(struct store *s, const char *name, const struct json *j,
    char **cause)
{
	char	key[256];

	snprintf(key, sizeof key, "s/%s", name);
	return (store_write(s, key, j, cause));
}

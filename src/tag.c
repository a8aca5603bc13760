/* SPDX-License-Identifier: ISC */
/*
 * The tag hub: every tag is (provider, source, tag name) with a type, a
 * unit, an access mode, its latest value and the time of that value.
 *
 * Tags are interned once in a hash table keyed by the three names, so a
 * lookup on the hot path costs one hash and one comparison and allocates
 * nothing.  Provider, source and unit strings are shared.  Each source
 * (provider, source) keeps the list of its tags.
 *
 * Subscribers (message groups, monitor streams) attach to one tag or to a
 * whole source; a subscription to a tag that does not exist yet makes a
 * placeholder that the first value turns into a real tag.  Every new
 * value is applied at once (readers see it immediately) and queued for
 * the subscribers; the queue is drained from the event loop, never inside
 * the producer's call, a bounded batch per loop turn.  A queue that
 * outgrows TAG_QUEUE_MAX drops its oldest entries and counts them.
 */

#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "json.h"
#include "log.h"
#include "metrics.h"
#include "tag.h"
#include "util.h"
#include "xmalloc.h"

#define TAG_QUEUE_MAX	(1 << 20)	/* queued values at most */
#define TAG_FANOUT_BATCH 8192		/* values delivered per loop turn */
#define TAG_NAME_MAX	1024
#define TAG_RATE_SLOTS	16		/* seconds of ingest counts kept */
#define TAG_RATE_WINDOW	10		/* seconds averaged for the rate */

struct tag_sub {
	tag_cb			 cb;
	void			*arg;
	struct tag		*tag;		/* or src */
	struct tag_source	*src;
	int			 dead;
	LIST_ENTRY(tag_sub)	 entry;
	LIST_ENTRY(tag_sub)	 dead_entry;
};
LIST_HEAD(tag_sub_list, tag_sub);

struct tag_source {
	struct tag_source	*hnext;
	uint32_t		 hash;
	const char		*prvd;		/* interned */
	const char		*src;		/* interned */
	struct tag		**tags;		/* defined tags */
	size_t			 ntags;
	size_t			 cap;
	struct tag_sub_list	 subs;
};

struct tag {
	struct tag		*hnext;
	uint32_t		 hash;
	uint32_t		 id;
	struct tag_source	*source;
	char			*name;
	const char		*unit;		/* interned */
	uint8_t			 type;
	uint8_t			 access;
	uint8_t			 origin;
	uint8_t			 defined;	/* not a placeholder */
	uint8_t			 has_value;
	uint32_t		 size;		/* dataSize */
	int64_t			 ts;
	union {
		int64_t		 i;
		uint64_t	 u;
		double		 d;
		int		 b;
	} n;
	char			*s;		/* string and raw values */
	uint32_t		 len;
	struct tag_sub_list	 subs;
	tag_write_cb		 writer;
	void			*warg;
};

struct tag_event {
	struct tag		*tag;
	struct tag_value	 value;		/* s owned by the queue */
	int64_t			 ts;
};

struct tag_strings {
	char		**slots;
	size_t		  n;
	size_t		  cap;		/* power of two */
};

struct tag_hub {
	struct event_base	*base;
	struct tag		**tags;		/* hash table */
	size_t			  tcap;
	size_t			  ntags;	/* defined */
	size_t			  nall;		/* with placeholders */
	uint32_t		  next_id;
	struct tag_source	**sources;
	size_t			  scap;
	size_t			  nsources;
	struct tag_strings	  strings;

	struct tag_event	 *queue;	/* ring */
	size_t			  qcap;
	size_t			  qhead;
	size_t			  qlen;
	struct event		 *fanout;
	int			  delivering;
	struct tag_sub_list	  dead;

	tag_write_cb		  owriter[TAG_NORIGINS];
	void			 *owarg[TAG_NORIGINS];
	uint64_t		  ingested[TAG_NORIGINS];
	uint64_t		  rejected;
	uint64_t		  rate_n[TAG_RATE_SLOTS];	/* per second */
	uint64_t		  rate_s[TAG_RATE_SLOTS];
	uint64_t		  dropped;
	uint64_t		  delivered;
};

static struct tag_hub	*hub;

static const char *tag_type_names[TAG_NTYPES] = {
	"uint8", "uint16", "uint32", "uint64",
	"int8", "int16", "int32", "int64",
	"float", "double", "string", "boolean", "raw"
};

static const char *tag_origin_names[TAG_NORIGINS] = {
	"rest", "unix", "mqtt", "system", "virtual"
};

static uint32_t	 tag_hash3(const char *, const char *, const char *);
static const char *tag_intern(const char *);
static struct tag_source *tag_source_get(const char *, const char *, int);
static struct tag *tag_lookup(const char *, const char *, const char *,
		    uint32_t);
static struct tag *tag_make(const char *, const char *, const char *);
static void	 tag_set_value(struct tag *, const struct tag_value *,
		    int64_t);
static void	 tag_enqueue(struct tag *, int64_t);
static void	 tag_fanout_cb(evutil_socket_t, short, void *);
static void	 tag_metrics(FILE *);
static void	 tag_rate_add(uint64_t);
static double	 tag_rate(void);

/* Start the hub on the loop. */
void
tag_init(struct event_base *base)
{
	static int	registered;

	hub = xcalloc(1, sizeof *hub);
	hub->base = base;
	hub->tcap = 1024;
	hub->tags = xcalloc(hub->tcap, sizeof *hub->tags);
	hub->scap = 64;
	hub->sources = xcalloc(hub->scap, sizeof *hub->sources);
	hub->strings.cap = 256;
	hub->strings.slots = xcalloc(hub->strings.cap, sizeof (char *));
	LIST_INIT(&hub->dead);
	hub->next_id = 1;
	if (base != NULL)
		hub->fanout = event_new(base, -1, 0, tag_fanout_cb, NULL);
	if (!registered) {
		metrics_register(tag_metrics);
		registered = 1;
	}
}

/* Free every tag, source, string and queued value. */
void
tag_free(void)
{
	struct tag		*t, *tn;
	struct tag_source	*s, *sn;
	struct tag_sub		*sub;
	size_t			 i;

	if (hub == NULL)
		return;
	for (i = 0; i < hub->qlen; i++)
		free((char *)hub->queue[(hub->qhead + i) % hub->qcap].value.s);
	free(hub->queue);
	for (i = 0; i < hub->tcap; i++) {
		for (t = hub->tags[i]; t != NULL; t = tn) {
			tn = t->hnext;
			while ((sub = LIST_FIRST(&t->subs)) != NULL) {
				LIST_REMOVE(sub, entry);
				free(sub);
			}
			free(t->name);
			free(t->s);
			free(t);
		}
	}
	for (i = 0; i < hub->scap; i++) {
		for (s = hub->sources[i]; s != NULL; s = sn) {
			sn = s->hnext;
			while ((sub = LIST_FIRST(&s->subs)) != NULL) {
				LIST_REMOVE(sub, entry);
				free(sub);
			}
			free(s->tags);
			free(s);
		}
	}
	while ((sub = LIST_FIRST(&hub->dead)) != NULL) {
		LIST_REMOVE(sub, dead_entry);
		free(sub);
	}
	for (i = 0; i < hub->strings.cap; i++)
		free(hub->strings.slots[i]);
	free(hub->strings.slots);
	free(hub->tags);
	free(hub->sources);
	if (hub->fanout != NULL)
		event_free(hub->fanout);
	free(hub);
	hub = NULL;
}

/* FNV-1a over up to three strings and their terminators. */
static uint32_t
tag_hash3(const char *a, const char *b, const char *c)
{
	uint32_t	 h = 2166136261u;
	const char	*p[3] = { a, b, c };
	int		 i;
	const unsigned char *q;

	for (i = 0; i < 3 && p[i] != NULL; i++) {
		for (q = (const unsigned char *)p[i]; *q != '\0'; q++) {
			h ^= *q;
			h *= 16777619u;
		}
		h ^= 0xff;
		h *= 16777619u;
	}
	return (h);
}

/* The shared copy of a string (provider, source, unit); never freed. */
static const char *
tag_intern(const char *s)
{
	struct tag_strings	*st = &hub->strings;
	size_t			 slot, i, ncap;
	char			**n;

	if (st->n * 2 >= st->cap) {
		ncap = st->cap * 2;
		n = xcalloc(ncap, sizeof *n);
		for (i = 0; i < st->cap; i++) {
			if (st->slots[i] == NULL)
				continue;
			slot = tag_hash3(st->slots[i], NULL, NULL) & (ncap - 1);
			while (n[slot] != NULL)
				slot = (slot + 1) & (ncap - 1);
			n[slot] = st->slots[i];
		}
		free(st->slots);
		st->slots = n;
		st->cap = ncap;
	}
	slot = tag_hash3(s, NULL, NULL) & (st->cap - 1);
	while (st->slots[slot] != NULL) {
		if (strcmp(st->slots[slot], s) == 0)
			return (st->slots[slot]);
		slot = (slot + 1) & (st->cap - 1);
	}
	st->slots[slot] = xstrdup(s);
	st->n++;
	return (st->slots[slot]);
}

/* A source by names; created if create is set, else NULL if unknown. */
static struct tag_source *
tag_source_get(const char *prvd, const char *src, int create)
{
	struct tag_source	*s, *next, **n;
	uint32_t		 h = tag_hash3(prvd, src, NULL);
	size_t			 i, ncap;

	for (s = hub->sources[h & (hub->scap - 1)]; s != NULL; s = s->hnext)
		if (s->hash == h && strcmp(s->prvd, prvd) == 0 &&
		    strcmp(s->src, src) == 0)
			return (s);
	if (!create)
		return (NULL);
	if (hub->nsources >= hub->scap) {
		ncap = hub->scap * 2;
		n = xcalloc(ncap, sizeof *n);
		for (i = 0; i < hub->scap; i++) {
			for (s = hub->sources[i]; s != NULL; s = next) {
				next = s->hnext;
				s->hnext = n[s->hash & (ncap - 1)];
				n[s->hash & (ncap - 1)] = s;
			}
		}
		free(hub->sources);
		hub->sources = n;
		hub->scap = ncap;
	}
	s = xcalloc(1, sizeof *s);
	s->hash = h;
	s->prvd = tag_intern(prvd);
	s->src = tag_intern(src);
	LIST_INIT(&s->subs);
	s->hnext = hub->sources[h & (hub->scap - 1)];
	hub->sources[h & (hub->scap - 1)] = s;
	hub->nsources++;
	return (s);
}

/* A tag or placeholder by names and hash; NULL if unknown. */
static struct tag *
tag_lookup(const char *prvd, const char *src, const char *name, uint32_t h)
{
	struct tag	*t;

	for (t = hub->tags[h & (hub->tcap - 1)]; t != NULL; t = t->hnext)
		if (t->hash == h && strcmp(t->name, name) == 0 &&
		    strcmp(t->source->src, src) == 0 &&
		    strcmp(t->source->prvd, prvd) == 0)
			return (t);
	return (NULL);
}

/* A (defined) tag by names; NULL if unknown.  Allocates nothing. */
struct tag *
tag_find(const char *prvd, const char *src, const char *name)
{
	struct tag	*t;

	t = tag_lookup(prvd, src, name, tag_hash3(prvd, src, name));
	return (t != NULL && t->defined ? t : NULL);
}

/* Make a placeholder (not yet defined) for names. */
static struct tag *
tag_make(const char *prvd, const char *src, const char *name)
{
	struct tag	*t, *next, **n;
	size_t		 i, ncap;

	if (hub->nall >= hub->tcap) {
		ncap = hub->tcap * 2;
		n = xcalloc(ncap, sizeof *n);
		for (i = 0; i < hub->tcap; i++) {
			for (t = hub->tags[i]; t != NULL; t = next) {
				next = t->hnext;
				t->hnext = n[t->hash & (ncap - 1)];
				n[t->hash & (ncap - 1)] = t;
			}
		}
		free(hub->tags);
		hub->tags = n;
		hub->tcap = ncap;
	}
	t = xcalloc(1, sizeof *t);
	t->hash = tag_hash3(prvd, src, name);
	t->source = tag_source_get(prvd, src, 1);
	t->name = xstrdup(name);
	t->unit = tag_intern("");
	LIST_INIT(&t->subs);
	t->hnext = hub->tags[t->hash & (hub->tcap - 1)];
	hub->tags[t->hash & (hub->tcap - 1)] = t;
	hub->nall++;
	return (t);
}

/*
 * Define (register) a tag, or redefine an existing one; returns it.  A
 * placeholder with subscribers becomes the tag.  unit NULL keeps the old
 * unit (or "").
 */
struct tag *
tag_define(const char *prvd, const char *src, const char *name,
    enum tag_type type, const char *unit, int access, uint32_t size,
    enum tag_origin origin)
{
	struct tag		*t;
	struct tag_source	*s;

	t = tag_lookup(prvd, src, name, tag_hash3(prvd, src, name));
	if (t == NULL)
		t = tag_make(prvd, src, name);
	if (t->type != type && t->has_value) {
		/* A new type makes the old value meaningless. */
		free(t->s);
		t->s = NULL;
		t->len = 0;
		t->has_value = 0;
	}
	t->type = type;
	if (unit != NULL)
		t->unit = tag_intern(unit);
	t->access = access;
	t->size = size;
	t->origin = origin;
	if (!t->defined) {
		t->defined = 1;
		t->id = hub->next_id++;
		s = t->source;
		if (s->ntags == s->cap) {
			s->cap = s->cap == 0 ? 8 : s->cap * 2;
			s->tags = xreallocarray(s->tags, s->cap,
			    sizeof *s->tags);
		}
		s->tags[s->ntags++] = t;
		hub->ntags++;
	}
	return (t);
}

/*
 * Remove a tag from the registry.  Its structure stays as a placeholder
 * (queued values and subscribers may still point at it).
 */
void
tag_undefine(struct tag *t)
{
	struct tag_source	*s = t->source;
	size_t			 i;

	if (!t->defined)
		return;
	for (i = 0; i < s->ntags; i++) {
		if (s->tags[i] == t) {
			memmove(&s->tags[i], &s->tags[i + 1],
			    (s->ntags - i - 1) * sizeof *s->tags);
			s->ntags--;
			break;
		}
	}
	t->defined = 0;
	t->has_value = 0;
	t->writer = NULL;
	t->warg = NULL;
	free(t->s);
	t->s = NULL;
	t->len = 0;
	hub->ntags--;
}

/*
 * The defined tags of a source; borrowed until the next tag_define() or
 * tag_undefine().  NULL (and *n 0) for an unknown source.
 */
struct tag *const *
tag_source_tags(const char *prvd, const char *src, size_t *n)
{
	struct tag_source	*s;

	if ((s = tag_source_get(prvd, src, 0)) == NULL) {
		*n = 0;
		return (NULL);
	}
	*n = s->ntags;
	return (s->tags);
}

/* Defined tags. */
size_t
tag_count(void)
{
	return (hub->ntags);
}

/* Every defined tag (array caller frees; tags borrowed). */
struct tag **
tag_all(size_t *n)
{
	struct tag	**all, *t;
	size_t		  i, k = 0;

	all = xcalloc(hub->ntags + 1, sizeof *all);
	for (i = 0; i < hub->tcap; i++)
		for (t = hub->tags[i]; t != NULL; t = t->hnext)
			if (t->defined)
				all[k++] = t;
	*n = k;
	return (all);
}

enum tag_type
tag_get_type(const struct tag *t)
{
	return (t->type);
}

int
tag_get_access(const struct tag *t)
{
	return (t->access);
}

enum tag_origin
tag_get_origin(const struct tag *t)
{
	return (t->origin);
}

uint32_t
tag_get_size(const struct tag *t)
{
	return (t->size);
}

const char *
tag_get_prvd(const struct tag *t)
{
	return (t->source->prvd);
}

const char *
tag_get_src(const struct tag *t)
{
	return (t->source->src);
}

const char *
tag_get_name(const struct tag *t)
{
	return (t->name);
}

const char *
tag_get_unit(const struct tag *t)
{
	return (t->unit);
}

/* The latest value as a record (borrowed); 0, or -1 if it has none. */
int
tag_get(const struct tag *t, struct tag_rec *rec)
{
	rec->id = t->id;
	rec->prvd = t->source->prvd;
	rec->src = t->source->src;
	rec->name = t->name;
	rec->unit = t->unit;
	rec->value.type = t->type;
	rec->value.n.u = t->n.u;
	rec->value.s = t->s;
	rec->value.len = t->len;
	rec->ts = t->ts;
	return (t->has_value ? 0 : -1);
}

/* Set how values are written to the tag's producer (NULL: none). */
void
tag_set_writer(struct tag *t, tag_write_cb cb, void *arg)
{
	t->writer = cb;
	t->warg = arg;
}

/*
 * Give every tag an origin registers from now on a write path (and the
 * w access); NULL removes it again from the origin's tags.
 */
void
tag_set_origin_writer(enum tag_origin origin, tag_write_cb cb, void *arg)
{
	struct tag	*t;
	size_t		 i;

	hub->owriter[origin] = cb;
	hub->owarg[origin] = arg;
	for (i = 0; i < hub->tcap; i++) {
		for (t = hub->tags[i]; t != NULL; t = t->hnext) {
			if (!t->defined || t->origin != origin)
				continue;
			if (cb != NULL)
				t->access |= TAG_ACCESS_W;
			else
				t->access &= ~TAG_ACCESS_W;
			tag_set_writer(t, cb, arg);
		}
	}
}

/* Write a value through the tag's write path; 0, or -1 with *cause. */
int
tag_write(struct tag *t, const struct tag_value *v, char **cause)
{
	struct tag_rec	rec;

	if (!(t->access & TAG_ACCESS_W)) {
		xasprintf(cause, "tag %s/%s/%s is not writable (access %s)",
		    t->source->prvd, t->source->src, t->name,
		    tag_access_name(t->access));
		return (-1);
	}
	if (t->writer == NULL) {
		xasprintf(cause, "tag %s/%s/%s has no write path",
		    t->source->prvd, t->source->src, t->name);
		return (-1);
	}
	tag_get(t, &rec);
	rec.value = *v;
	rec.ts = util_wall_us();
	return (t->writer(&rec, t->warg, cause));
}

/* Names of types, access modes. */
const char *
tag_type_name(enum tag_type type)
{
	return ((unsigned)type < TAG_NTYPES ? tag_type_names[type] : "?");
}

/* A type by name ("float32", "float64" and "bytearray" accepted too). */
int
tag_type_parse(const char *s, enum tag_type *type)
{
	int	i;

	for (i = 0; i < TAG_NTYPES; i++) {
		if (strcmp(s, tag_type_names[i]) == 0) {
			*type = i;
			return (0);
		}
	}
	if (strcmp(s, "float32") == 0)
		*type = TAG_FLOAT;
	else if (strcmp(s, "float64") == 0)
		*type = TAG_DOUBLE;
	else if (strcmp(s, "bytearray") == 0 || strcmp(s, "byte-array") == 0)
		*type = TAG_RAW;
	else
		return (-1);
	return (0);
}

const char *
tag_access_name(int access)
{
	switch (access & (TAG_ACCESS_R | TAG_ACCESS_W)) {
	case TAG_ACCESS_R:
		return ("r");
	case TAG_ACCESS_W:
		return ("w");
	case TAG_ACCESS_R | TAG_ACCESS_W:
		return ("rw");
	}
	return ("");
}

/* "r", "w", "rw" (and the older "ro", "wo") to bits; -1 if unknown. */
int
tag_access_parse(const char *s)
{
	if (strcmp(s, "r") == 0 || strcmp(s, "ro") == 0)
		return (TAG_ACCESS_R);
	if (strcmp(s, "w") == 0 || strcmp(s, "wo") == 0)
		return (TAG_ACCESS_W);
	if (strcmp(s, "rw") == 0)
		return (TAG_ACCESS_R | TAG_ACCESS_W);
	return (-1);
}

/* Integer range of a type. */
static void
tag_type_range(enum tag_type type, int64_t *min, uint64_t *max)
{
	switch (type) {
	case TAG_UINT8:
		*min = 0, *max = UINT8_MAX;
		break;
	case TAG_UINT16:
		*min = 0, *max = UINT16_MAX;
		break;
	case TAG_UINT32:
		*min = 0, *max = UINT32_MAX;
		break;
	case TAG_UINT64:
		*min = 0, *max = UINT64_MAX;
		break;
	case TAG_INT8:
		*min = INT8_MIN, *max = INT8_MAX;
		break;
	case TAG_INT16:
		*min = INT16_MIN, *max = INT16_MAX;
		break;
	case TAG_INT32:
		*min = INT32_MIN, *max = INT32_MAX;
		break;
	default:
		*min = INT64_MIN, *max = INT64_MAX;
		break;
	}
}

/* Is an integer type unsigned? */
static int
tag_type_unsigned(enum tag_type type)
{
	return (type <= TAG_UINT64);
}

/* Read a JSON integer literal exactly; -1 if it is not one. */
static int
tag_parse_int(const char *text, size_t len, int unsig, int64_t *i,
    uint64_t *u)
{
	char	buf[32], *end;

	if (len == 0 || len >= sizeof buf || memchr(text, '.', len) != NULL ||
	    memchr(text, 'e', len) != NULL || memchr(text, 'E', len) != NULL)
		return (-1);
	memcpy(buf, text, len);
	buf[len] = '\0';
	errno = 0;
	if (unsig) {
		if (buf[0] == '-')
			return (strcmp(buf, "-0") == 0 ? (*u = 0, 0) : -1);
		*u = strtoull(buf, &end, 10);
	} else
		*i = strtoll(buf, &end, 10);
	return (errno != 0 || *end != '\0' ? -1 : 0);
}

/*
 * Convert a JSON token (its kind and text; for strings the unescaped
 * bytes) to a value of type.  Strings point at text; raw bytes are
 * base64-decoded into store, which must hold len * 3 / 4 + 3 bytes.  0,
 * or -1 with *cause saying why the value does not fit.
 */
int
tag_value_parse(enum tag_type type, enum tag_tok kind, const char *text,
    size_t len, char *store, struct tag_value *v, char **cause)
{
	int64_t		 min, i = 0;
	uint64_t	 max, u = 0;
	double		 d;
	char		 buf[512];
	size_t		 n;

	memset(v, 0, sizeof *v);
	v->type = type;
	switch (type) {
	case TAG_FLOAT:
	case TAG_DOUBLE:
		if (kind != TAG_TOK_NUMBER)
			goto wrongtype;
		if (len >= sizeof buf) {
			xasprintf(cause, "a number of %zu characters is too "
			    "long", len);
			return (-1);
		}
		memcpy(buf, text, len);
		buf[len] = '\0';
		d = strtod(buf, NULL);
		if (!isfinite(d) || (type == TAG_FLOAT && isinf((float)d))) {
			xasprintf(cause, "%s is out of range for %s", buf,
			    tag_type_name(type));
			return (-1);
		}
		v->n.d = (type == TAG_FLOAT) ? (double)(float)d : d;
		return (0);
	case TAG_STRING:
		if (kind != TAG_TOK_STRING)
			goto wrongtype;
		v->s = text;
		v->len = len;
		return (0);
	case TAG_BOOLEAN:
		if (kind == TAG_TOK_BOOL)
			v->n.b = (len == 4);	/* "true" */
		else if (kind == TAG_TOK_NUMBER && len == 1 &&
		    (*text == '0' || *text == '1'))
			v->n.b = (*text == '1');
		else
			goto wrongtype;
		return (0);
	case TAG_RAW:
		if (kind != TAG_TOK_STRING)
			goto wrongtype;
		if (util_base64_decode(text, len, (unsigned char *)store,
		    len * 3 / 4 + 3, &n) != 0) {
			xasprintf(cause, "raw values are base64 strings");
			return (-1);
		}
		v->s = store;
		v->len = n;
		return (0);
	default:
		break;
	}

	/* Integers: exact, no detour through double. */
	if (kind != TAG_TOK_NUMBER)
		goto wrongtype;
	tag_type_range(type, &min, &max);
	if (tag_parse_int(text, len, tag_type_unsigned(type), &i, &u) != 0)
		goto range;
	if (tag_type_unsigned(type)) {
		if (u > max)
			goto range;
		v->n.u = u;
	} else {
		if (i < min || (i > 0 && (uint64_t)i > max))
			goto range;
		v->n.i = i;
	}
	return (0);

range:
	xasprintf(cause, "%.*s is out of range for %s", (int)(len > 40 ? 40 :
	    len), text, tag_type_name(type));
	return (-1);
wrongtype:
	xasprintf(cause, "%s is not %s %s value", kind == TAG_TOK_NUMBER ?
	    "a number" : kind == TAG_TOK_STRING ? "a string" :
	    kind == TAG_TOK_BOOL ? "a boolean" : kind == TAG_TOK_NULL ?
	    "null" : "an object or array", (type == TAG_INT8 ||
	    type == TAG_INT16 || type == TAG_INT32 || type == TAG_INT64) ?
	    "an" : "a", tag_type_name(type));
	return (-1);
}

/*
 * Convert a JSON value to a value of type; strings and raw bytes are
 * copied into *buf (caller frees; NULL for other types).
 */
int
tag_value_from_json(const struct json *j, enum tag_type type,
    struct tag_value *v, char **buf, char **cause)
{
	enum tag_tok	 kind;
	const char	*text;
	size_t		 len;

	*buf = NULL;
	switch (json_type(j)) {
	case JSON_NUMBER:
		kind = TAG_TOK_NUMBER;
		text = json_number_text(j);
		len = strlen(text);
		break;
	case JSON_STRING:
		kind = TAG_TOK_STRING;
		text = json_string(j);
		len = json_strlen(j);
		break;
	case JSON_BOOL:
		kind = TAG_TOK_BOOL;
		text = json_bool(j) ? "true" : "false";
		len = strlen(text);
		break;
	case JSON_NULL:
		kind = TAG_TOK_NULL;
		text = "null";
		len = 4;
		break;
	default:
		kind = TAG_TOK_OTHER;
		text = "";
		len = 0;
		break;
	}
	if (type == TAG_STRING || type == TAG_RAW) {
		*buf = xmalloc(len + 4);
		memcpy(*buf, text, len);
		(*buf)[len] = '\0';
		if (type == TAG_STRING)
			text = *buf;
	}
	if (tag_value_parse(type, kind, text, len, *buf, v, cause) != 0) {
		free(*buf);
		*buf = NULL;
		return (-1);
	}
	return (0);
}

/* Print a float with the fewest digits that read back as the same float. */
static struct json *
tag_float_json(double d)
{
	char	buf[64];
	int	prec;
	float	f = (float)d;

	if (!isfinite(d))
		return (json_new_null());
	/* Whole numbers print as integers, as json_new_double() does. */
	if (f == floorf(f) && fabsf(f) < 1e16f)
		return (json_new_double(f));
	for (prec = 1; prec <= 9; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
		if (strtof(buf, NULL) == f)
			break;
	}
	return (json_new_number(buf));
}

/* A value as JSON; caller frees. */
struct json *
tag_value_json(const struct tag_value *v)
{
	char	*b64;
	struct json *j;

	switch (v->type) {
	case TAG_UINT8:
	case TAG_UINT16:
	case TAG_UINT32:
	case TAG_UINT64:
		return (json_new_uint(v->n.u));
	case TAG_INT8:
	case TAG_INT16:
	case TAG_INT32:
	case TAG_INT64:
		return (json_new_int(v->n.i));
	case TAG_FLOAT:
		return (tag_float_json(v->n.d));
	case TAG_DOUBLE:
		return (json_new_double(v->n.d));
	case TAG_STRING:
		return (json_new_stringn(v->s != NULL ? v->s : "", v->len));
	case TAG_BOOLEAN:
		return (json_new_bool(v->n.b));
	case TAG_RAW:
		b64 = util_base64_encode((const unsigned char *)v->s, v->len);
		j = json_new_string(b64);
		free(b64);
		return (j);
	default:
		break;
	}
	return (json_new_null());
}

/* A record as the tag hub API shows it; caller frees. */
struct json *
tag_rec_json(const struct tag_rec *r)
{
	struct json	*j;

	j = json_new_object();
	json_set(j, "prvdName", json_new_string(r->prvd));
	json_set(j, "srcName", json_new_string(r->src));
	json_set(j, "tagName", json_new_string(r->name));
	json_set(j, "dataType", json_new_string(tag_type_name(r->value.type)));
	json_set(j, "dataValue", tag_value_json(&r->value));
	json_set(j, "dataUnit", json_new_string(r->unit));
	json_set(j, "ts", json_new_int(r->ts));
	return (j);
}

/* A tag's definition as /tags/list shows it; caller frees. */
struct json *
tag_def_json(const struct tag *t)
{
	struct json	*j;

	j = json_new_object();
	json_set(j, "prvdName", json_new_string(t->source->prvd));
	json_set(j, "srcName", json_new_string(t->source->src));
	json_set(j, "tagName", json_new_string(t->name));
	json_set(j, "dataType", json_new_string(tag_type_name(t->type)));
	if (t->type == TAG_STRING || t->type == TAG_RAW)
		json_set(j, "dataSize", json_new_uint(t->size));
	json_set(j, "dataUnit", json_new_string(t->unit));
	json_set(j, "access", json_new_string(tag_access_name(t->access)));
	return (j);
}

/* Does a name fit the rules (1..1024 bytes, no control characters)? */
static int
tag_name_ok(const char *what, const char *s, char **cause)
{
	const unsigned char	*p;

	if (s == NULL || *s == '\0') {
		xasprintf(cause, "%s: is required", what);
		return (-1);
	}
	if (strlen(s) > TAG_NAME_MAX) {
		xasprintf(cause, "%s: must be at most %d bytes", what,
		    TAG_NAME_MAX);
		return (-1);
	}
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			xasprintf(cause, "%s: must not contain control "
			    "characters", what);
			return (-1);
		}
	}
	return (0);
}

/*
 * Check a batch before anything is applied: names, and the type of each
 * record against the tag's registered type.  0, or -1 with *bad the index
 * of the first bad record and *cause naming the tag.
 */
int
tag_check(struct tag_pub *recs, size_t n, size_t *bad, char **cause)
{
	struct tag_pub		*r;
	const struct tag_pub	*o;
	struct tag		*t;
	size_t			 i, cap = 0, slot;
	uint32_t		*seen = NULL, h;
	int			 rc = -1;

	for (i = 0; i < n; i++) {
		r = &recs[i];
		*bad = i;
		if (tag_name_ok("prvdName", r->prvd, cause) != 0 ||
		    tag_name_ok("srcName", r->src, cause) != 0 ||
		    tag_name_ok("tagName", r->name, cause) != 0)
			goto out;
		if (r->unit != NULL && strlen(r->unit) > 64) {
			xasprintf(cause, "tag %s/%s/%s: dataUnit: must be at "
			    "most 64 bytes", r->prvd, r->src, r->name);
			goto out;
		}
		h = tag_hash3(r->prvd, r->src, r->name);
		t = tag_lookup(r->prvd, r->src, r->name, h);
		r->tag = (t != NULL && t->defined) ? t : NULL;
		if (t != NULL && t->defined) {
			if (t->origin == TAG_ORIGIN_SYSTEM) {
				xasprintf(cause, "tag %s/%s/%s: cannot be "
				    "published: it belongs to the system "
				    "provider", r->prvd, r->src, r->name);
				goto out;
			}
			if (t->type != r->value.type) {
				xasprintf(cause, "tag %s/%s/%s: dataType: the "
				    "tag is %s, not %s", r->prvd, r->src,
				    r->name, tag_type_name(t->type),
				    tag_type_name(r->value.type));
				goto out;
			}
			continue;
		}
		if (!r->has_type) {
			xasprintf(cause, "tag %s/%s/%s: dataType: is required "
			    "for a new tag", r->prvd, r->src, r->name);
			goto out;
		}
		/* A new tag: earlier records of this batch fix its type. */
		if (seen == NULL) {
			for (cap = 16; cap < 2 * (n - i); cap *= 2)
				;
			seen = xcalloc(cap, sizeof *seen);
		}
		for (slot = h & (cap - 1); seen[slot] != 0;
		    slot = (slot + 1) & (cap - 1)) {
			o = &recs[seen[slot] - 1];
			if (strcmp(o->name, r->name) != 0 ||
			    strcmp(o->src, r->src) != 0 ||
			    strcmp(o->prvd, r->prvd) != 0)
				continue;
			if (o->value.type != r->value.type) {
				xasprintf(cause, "tag %s/%s/%s: dataType: %s "
				    "here but %s earlier in the batch", r->prvd,
				    r->src, r->name,
				    tag_type_name(r->value.type),
				    tag_type_name(o->value.type));
				goto out;
			}
			break;
		}
		if (seen[slot] == 0)
			seen[slot] = i + 1;
	}
	rc = 0;
out:
	free(seen);
	return (rc);
}

/* Store a new latest value. */
static void
tag_set_value(struct tag *t, const struct tag_value *v, int64_t ts)
{
	if (t->type == TAG_STRING || t->type == TAG_RAW) {
		if (t->s == NULL || t->len < v->len) {
			free(t->s);
			t->s = xmalloc(v->len + 1);
		}
		if (v->len != 0)
			memcpy(t->s, v->s, v->len);
		t->s[v->len] = '\0';
		t->len = v->len;
	} else
		t->n.u = v->n.u;
	t->ts = ts;
	t->has_value = 1;
	if (!LIST_EMPTY(&t->subs) || !LIST_EMPTY(&t->source->subs))
		tag_enqueue(t, ts);
}

/*
 * Apply a checked batch: new tags are registered (access r), values
 * stored and queued for subscribers.
 */
void
tag_apply(const struct tag_pub *recs, size_t n, enum tag_origin origin)
{
	const struct tag_pub	*r;
	struct tag		*t;
	size_t			 i;
	int64_t			 now = 0;

	for (i = 0; i < n; i++) {
		r = &recs[i];
		t = r->tag;
		if (t == NULL || !t->defined)
			t = tag_find(r->prvd, r->src, r->name);
		if (t == NULL) {
			t = tag_define(r->prvd, r->src, r->name, r->value.type,
			    r->unit != NULL ? r->unit : "", TAG_ACCESS_R,
			    r->value.len, origin);
			if (hub->owriter[origin] != NULL) {
				t->access |= TAG_ACCESS_W;
				tag_set_writer(t, hub->owriter[origin],
				    hub->owarg[origin]);
			}
		} else if (r->unit != NULL && strcmp(t->unit, r->unit) != 0)
			t->unit = tag_intern(r->unit);
		if (r->ts == 0 && now == 0)
			now = util_wall_us();
		tag_set_value(t, &r->value, r->ts != 0 ? r->ts : now);
	}
	hub->ingested[origin] += n;
	tag_rate_add(n);
}

/* Count n records in the current second. */
static void
tag_rate_add(uint64_t n)
{
	uint64_t	sec = util_now_ms() / 1000;
	size_t		slot = sec % TAG_RATE_SLOTS;

	if (hub->rate_s[slot] != sec) {
		hub->rate_s[slot] = sec;
		hub->rate_n[slot] = 0;
	}
	hub->rate_n[slot] += n;
}

/* Records per second over the last TAG_RATE_WINDOW whole seconds. */
static double
tag_rate(void)
{
	uint64_t	sec = util_now_ms() / 1000, sum = 0;
	size_t		i, slot;

	for (i = 1; i <= TAG_RATE_WINDOW; i++) {
		slot = (sec - i) % TAG_RATE_SLOTS;
		if (hub->rate_s[slot] == sec - i)
			sum += hub->rate_n[slot];
	}
	return ((double)sum / TAG_RATE_WINDOW);
}

/* Count n records refused before they reached tag_publish(). */
void
tag_rejected(size_t n)
{
	hub->rejected += n;
}

/* Check and apply; -1 with *cause (nothing applied) if a record is bad. */
int
tag_publish(struct tag_pub *recs, size_t n, enum tag_origin origin,
    char **cause)
{
	size_t	 bad;
	char	*why;

	if (tag_check(recs, n, &bad, cause) != 0) {
		hub->rejected += n;
		if (n > 1) {
			why = *cause;
			xasprintf(cause, "record %zu: %s", bad, why);
			free(why);
		}
		return (-1);
	}
	tag_apply(recs, n, origin);
	return (0);
}

/* Queue a value of t for its subscribers (copying string bytes). */
static void
tag_enqueue(struct tag *t, int64_t ts)
{
	struct tag_event	*e;
	size_t			 ncap, i;
	struct tag_event	*nq;

	if (hub->qlen == TAG_QUEUE_MAX) {
		e = &hub->queue[hub->qhead];
		free((char *)e->value.s);
		hub->qhead = (hub->qhead + 1) % hub->qcap;
		hub->qlen--;
		if (hub->dropped++ % 100000 == 0)
			log_warnx("tag: subscriber queue full, dropping "
			    "oldest values dropped=%" PRIu64, hub->dropped);
	}
	if (hub->qlen == hub->qcap) {
		ncap = hub->qcap == 0 ? 1024 : hub->qcap * 2;
		nq = xreallocarray(NULL, ncap, sizeof *nq);
		for (i = 0; i < hub->qlen; i++)
			nq[i] = hub->queue[(hub->qhead + i) % hub->qcap];
		free(hub->queue);
		hub->queue = nq;
		hub->qcap = ncap;
		hub->qhead = 0;
	}
	e = &hub->queue[(hub->qhead + hub->qlen) % hub->qcap];
	hub->qlen++;
	e->tag = t;
	e->ts = ts;
	e->value.type = t->type;
	e->value.n.u = t->n.u;
	e->value.len = t->len;
	e->value.s = NULL;
	if (t->type == TAG_STRING || t->type == TAG_RAW)
		e->value.s = xmemdup(t->s, t->len + 1);
	if (hub->fanout != NULL && hub->qlen == 1 && !hub->delivering)
		event_active(hub->fanout, EV_TIMEOUT, 0);
}

/* Deliver one queued value to the tag's and its source's subscribers. */
static void
tag_deliver(struct tag_event *e)
{
	struct tag		*t = e->tag;
	struct tag_sub		*sub;
	struct tag_rec		 rec;

	rec.id = t->id;
	rec.prvd = t->source->prvd;
	rec.src = t->source->src;
	rec.name = t->name;
	rec.unit = t->unit;
	rec.value = e->value;
	rec.ts = e->ts;
	LIST_FOREACH(sub, &t->subs, entry) {
		if (!sub->dead) {
			sub->cb(&rec, sub->arg);
			hub->delivered++;
		}
	}
	LIST_FOREACH(sub, &t->source->subs, entry) {
		if (!sub->dead) {
			sub->cb(&rec, sub->arg);
			hub->delivered++;
		}
	}
}

/* Drain a batch of the queue; come back next turn if there is more. */
static void
tag_fanout_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, __attribute__((unused)) void *arg)
{
	struct tag_event	 e;
	struct tag_sub		*sub;
	size_t			 n = 0;
	struct timeval		 tv = { 0, 0 };

	hub->delivering = 1;
	while (hub->qlen > 0 && n++ < TAG_FANOUT_BATCH) {
		e = hub->queue[hub->qhead];
		hub->qhead = (hub->qhead + 1) % hub->qcap;
		hub->qlen--;
		tag_deliver(&e);
		free((char *)e.value.s);
	}
	hub->delivering = 0;
	while ((sub = LIST_FIRST(&hub->dead)) != NULL) {
		LIST_REMOVE(sub, dead_entry);
		free(sub);
	}
	/* More next turn: a timeout runs after the loop polls again. */
	if (hub->qlen > 0)
		evtimer_add(hub->fanout, &tv);
}

/*
 * Subscribe to a tag (name) or to every tag of a source (name NULL);
 * the tag need not exist yet.  cb runs from the loop for each new value.
 */
struct tag_sub *
tag_subscribe(const char *prvd, const char *src, const char *name, tag_cb cb,
    void *arg)
{
	struct tag_sub	*sub;
	struct tag	*t;

	sub = xcalloc(1, sizeof *sub);
	sub->cb = cb;
	sub->arg = arg;
	if (name == NULL) {
		sub->src = tag_source_get(prvd, src, 1);
		LIST_INSERT_HEAD(&sub->src->subs, sub, entry);
	} else {
		t = tag_lookup(prvd, src, name, tag_hash3(prvd, src, name));
		if (t == NULL)
			t = tag_make(prvd, src, name);
		sub->tag = t;
		LIST_INSERT_HEAD(&t->subs, sub, entry);
	}
	return (sub);
}

/* Stop a subscription; safe from inside its own callback. */
void
tag_unsubscribe(struct tag_sub *sub)
{
	if (sub == NULL)
		return;
	LIST_REMOVE(sub, entry);
	if (hub->delivering) {
		/* The delivery loop may stand on it: free after the batch. */
		sub->dead = 1;
		LIST_INSERT_HEAD(&hub->dead, sub, dead_entry);
		return;
	}
	free(sub);
}

/* Tag counts and ingest counters for /metrics. */
static void
tag_metrics(FILE *f)
{
	int	i;

	if (hub == NULL)
		return;
	fprintf(f, "# HELP uplinkd_tags Registered tags.\n"
	    "# TYPE uplinkd_tags gauge\nuplinkd_tags %zu\n", hub->ntags);
	fprintf(f, "# HELP uplinkd_tag_sources Tag sources (provider, "
	    "source).\n# TYPE uplinkd_tag_sources gauge\n"
	    "uplinkd_tag_sources %zu\n", hub->nsources);
	fprintf(f, "# HELP uplinkd_tag_records_total Tag values taken in, by "
	    "origin.\n# TYPE uplinkd_tag_records_total counter\n");
	for (i = 0; i < TAG_NORIGINS; i++)
		fprintf(f, "uplinkd_tag_records_total{origin=\"%s\"} %" PRIu64
		    "\n", tag_origin_names[i], hub->ingested[i]);
	fprintf(f, "# HELP uplinkd_tag_records_per_second Tag values taken "
	    "in per second, over the last %d seconds.\n"
	    "# TYPE uplinkd_tag_records_per_second gauge\n"
	    "uplinkd_tag_records_per_second %.1f\n", TAG_RATE_WINDOW,
	    tag_rate());
	fprintf(f, "# HELP uplinkd_tag_records_rejected_total Tag values "
	    "refused (the whole batch counts).\n"
	    "# TYPE uplinkd_tag_records_rejected_total counter\n"
	    "uplinkd_tag_records_rejected_total %" PRIu64 "\n", hub->rejected);
	fprintf(f, "# HELP uplinkd_tag_fanout_queue Values waiting for "
	    "subscribers.\n# TYPE uplinkd_tag_fanout_queue gauge\n"
	    "uplinkd_tag_fanout_queue %zu\n", hub->qlen);
	fprintf(f, "# HELP uplinkd_tag_fanout_delivered_total Values handed "
	    "to subscribers.\n# TYPE uplinkd_tag_fanout_delivered_total "
	    "counter\nuplinkd_tag_fanout_delivered_total %" PRIu64 "\n",
	    hub->delivered);
	fprintf(f, "# HELP uplinkd_tag_fanout_dropped_total Values dropped "
	    "because the subscriber queue was full.\n"
	    "# TYPE uplinkd_tag_fanout_dropped_total counter\n"
	    "uplinkd_tag_fanout_dropped_total %" PRIu64 "\n", hub->dropped);
}

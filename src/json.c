/* SPDX-License-Identifier: ISC */
/*
 * A small mutable JSON document model on top of yajl.
 *
 * yajl's own tree is read-only; configuration documents are merged,
 * defaulted and edited, so uplinkd keeps its own.  Numbers keep the text
 * they were written with, so 64-bit integers (and anything else) round-trip
 * exactly; their int64, uint64 and double readings are computed once.
 * Objects keep member order and grow a hash index when they get large,
 * so hostile documents with many keys cost O(n), not O(n^2).
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "json.h"
#include "log.h"
#include "xmalloc.h"

#define JSON_NUM_INT	0x1	/* integer literal that fits int64 */
#define JSON_NUM_UINT	0x2	/* integer literal that fits uint64 */

#define JSON_HASH_MIN	16	/* members before an object gets an index */

#define JSON_STR(x)	JSON_STR1(x)
#define JSON_STR1(x)	#x

struct json_member {
	char		*key;
	struct json	*val;
};

struct json {
	enum json_type	 type;
	union {
		int	 b;
		struct {
			char	*text;
			int64_t	 i;
			uint64_t u;
			double	 d;
			int	 flags;
		} num;
		struct {
			char	*s;
			size_t	 len;
		} str;
		struct {
			struct json	**v;
			size_t		  n;
			size_t		  cap;
		} arr;
		struct {
			struct json_member	*m;
			size_t			 n;
			size_t			 cap;
			uint32_t		*hash;	/* index+1, 0 empty */
			size_t			 hcap;
		} obj;
	} u;
};

struct json_parse_ctx {
	struct json	*root;
	struct json	*stack[JSON_MAX_DEPTH + 1];
	int		 depth;
	char		*key;
	const char	*why;	/* what a callback refused */
};

static struct json	*json_alloc(enum json_type);
static void		 json_number_init(struct json *);
static uint32_t		 json_hash_key(const char *);
static void		 json_index_build(struct json *);
static void		 json_index_drop_last(struct json *, uint32_t);
static ssize_t		 json_find(const struct json *, const char *);
static int		 json_utf8_ok(const unsigned char *, size_t);
static int		 json_parse_add(struct json_parse_ctx *, struct json *);
static int		 json_parse_null_cb(void *);
static int		 json_parse_bool_cb(void *, int);
static int		 json_parse_number_cb(void *, const char *, size_t);
static int		 json_parse_string_cb(void *, const unsigned char *,
			     size_t);
static int		 json_parse_start_map_cb(void *);
static int		 json_parse_key_cb(void *, const unsigned char *,
			     size_t);
static int		 json_parse_end_cb(void *);
static int		 json_parse_start_array_cb(void *);
static void		 json_gen(yajl_gen, const struct json *);
static char		*json_dump_with(const struct json *, size_t *, int);

/* A new value of a type; caller owns it. */
static struct json *
json_alloc(enum json_type type)
{
	struct json	*j;

	j = xcalloc(1, sizeof *j);
	j->type = type;
	return (j);
}

/* null; caller owns it. */
struct json *
json_new_null(void)
{
	return (json_alloc(JSON_NULL));
}

/* true or false; caller owns it. */
struct json *
json_new_bool(int b)
{
	struct json	*j;

	j = json_alloc(JSON_BOOL);
	j->u.b = (b != 0);
	return (j);
}

/* Work out the readings of a number from its text. */
static void
json_number_init(struct json *j)
{
	const char	*t = j->u.num.text;
	char		*end;
	int		 integer;

	integer = strpbrk(t, ".eE") == NULL;
	j->u.num.flags = 0;
	if (integer) {
		errno = 0;
		j->u.num.i = strtoll(t, &end, 10);
		if (errno == 0 && *end == '\0')
			j->u.num.flags |= JSON_NUM_INT;
		if (*t != '-') {
			errno = 0;
			j->u.num.u = strtoull(t, &end, 10);
			if (errno == 0 && *end == '\0')
				j->u.num.flags |= JSON_NUM_UINT;
		} else if (j->u.num.flags & JSON_NUM_INT && j->u.num.i == 0)
			j->u.num.flags |= JSON_NUM_UINT;
	}
	j->u.num.d = strtod(t, NULL);
	if (!(j->u.num.flags & JSON_NUM_INT))
		j->u.num.i = 0;
	if (!(j->u.num.flags & JSON_NUM_UINT))
		j->u.num.u = 0;
}

/* A signed integer; caller owns it. */
struct json *
json_new_int(int64_t i)
{
	struct json	*j;

	j = json_alloc(JSON_NUMBER);
	xasprintf(&j->u.num.text, "%" PRId64, i);
	json_number_init(j);
	return (j);
}

/* An unsigned integer; caller owns it. */
struct json *
json_new_uint(uint64_t u)
{
	struct json	*j;

	j = json_alloc(JSON_NUMBER);
	xasprintf(&j->u.num.text, "%" PRIu64, u);
	json_number_init(j);
	return (j);
}

/*
 * A double, printed with the fewest digits that read back the same, and
 * whole numbers below 1e16 without an exponent (100, not 1e+02); NaN and
 * infinities have no JSON form and become null.
 */
struct json *
json_new_double(double d)
{
	struct json	*j;
	char		 buf[64];
	int		 prec;

	if (!isfinite(d))
		return (json_new_null());
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (strchr(buf, 'e') != NULL && d > -1e16 && d < 1e16 &&
	    d == (double)(int64_t)d)
		snprintf(buf, sizeof buf, "%.0f", d);
	j = json_alloc(JSON_NUMBER);
	j->u.num.text = xstrdup(buf);
	json_number_init(j);
	return (j);
}

/* A number from its JSON text (not checked here); caller owns it. */
struct json *
json_new_number(const char *text)
{
	struct json	*j;

	j = json_alloc(JSON_NUMBER);
	j->u.num.text = xstrdup(text);
	json_number_init(j);
	return (j);
}

/* A string (copied); caller owns it. */
struct json *
json_new_string(const char *s)
{
	return (json_new_stringn(s, strlen(s)));
}

/* A string of len bytes (copied); caller owns it. */
struct json *
json_new_stringn(const char *s, size_t len)
{
	struct json	*j;

	/* Not xstrndup(): it would stop at a NUL that belongs to s. */
	j = json_alloc(JSON_STRING);
	j->u.str.s = xmalloc(len + 1);
	memcpy(j->u.str.s, s, len);
	j->u.str.s[len] = '\0';
	j->u.str.len = len;
	return (j);
}

/* A formatted string; caller owns it. */
struct json *
json_new_stringf(const char *fmt, ...)
{
	struct json	*j;
	va_list		 ap;
	int		 n;

	j = json_alloc(JSON_STRING);
	va_start(ap, fmt);
	n = xvasprintf(&j->u.str.s, fmt, ap);
	va_end(ap);
	j->u.str.len = n;
	return (j);
}

/* An empty array; caller owns it. */
struct json *
json_new_array(void)
{
	return (json_alloc(JSON_ARRAY));
}

/* An empty object; caller owns it. */
struct json *
json_new_object(void)
{
	return (json_alloc(JSON_OBJECT));
}

/* A deep copy; caller owns it. */
struct json *
json_copy(const struct json *j)
{
	struct json	*c;
	size_t		 i;

	if (j == NULL)
		return (NULL);
	switch (j->type) {
	case JSON_NULL:
		return (json_new_null());
	case JSON_BOOL:
		return (json_new_bool(j->u.b));
	case JSON_NUMBER:
		c = json_alloc(JSON_NUMBER);
		c->u.num = j->u.num;
		c->u.num.text = xstrdup(j->u.num.text);
		return (c);
	case JSON_STRING:
		return (json_new_stringn(j->u.str.s, j->u.str.len));
	case JSON_ARRAY:
		c = json_new_array();
		for (i = 0; i < j->u.arr.n; i++)
			json_array_push(c, json_copy(j->u.arr.v[i]));
		return (c);
	case JSON_OBJECT:
		c = json_new_object();
		for (i = 0; i < j->u.obj.n; i++)
			json_set(c, j->u.obj.m[i].key,
			    json_copy(j->u.obj.m[i].val));
		return (c);
	}
	return (NULL);
}

/* Free a value and everything under it; NULL is fine. */
void
json_free(struct json *j)
{
	size_t	i;

	if (j == NULL)
		return;
	switch (j->type) {
	case JSON_NUMBER:
		free(j->u.num.text);
		break;
	case JSON_STRING:
		free(j->u.str.s);
		break;
	case JSON_ARRAY:
		for (i = 0; i < j->u.arr.n; i++)
			json_free(j->u.arr.v[i]);
		free(j->u.arr.v);
		break;
	case JSON_OBJECT:
		for (i = 0; i < j->u.obj.n; i++) {
			free(j->u.obj.m[i].key);
			json_free(j->u.obj.m[i].val);
		}
		free(j->u.obj.m);
		free(j->u.obj.hash);
		break;
	default:
		break;
	}
	free(j);
}

/* The type; NULL reads as JSON_NULL. */
enum json_type
json_type(const struct json *j)
{
	return (j == NULL ? JSON_NULL : j->type);
}

/* A name for messages ("must be a string, not an array"). */
const char *
json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL:
		return ("null");
	case JSON_BOOL:
		return ("a boolean");
	case JSON_NUMBER:
		return ("a number");
	case JSON_STRING:
		return ("a string");
	case JSON_ARRAY:
		return ("an array");
	case JSON_OBJECT:
		return ("an object");
	}
	return ("?");
}

/* Is this an integer that fits int64? */
int
json_is_int(const struct json *j)
{
	return (j != NULL && j->type == JSON_NUMBER &&
	    (j->u.num.flags & JSON_NUM_INT));
}

/* Is this an integer that fits uint64? */
int
json_is_uint(const struct json *j)
{
	return (j != NULL && j->type == JSON_NUMBER &&
	    (j->u.num.flags & JSON_NUM_UINT));
}

/* The int64 value (0 if not an int64). */
int64_t
json_int(const struct json *j)
{
	return (json_is_int(j) ? j->u.num.i : 0);
}

/* The uint64 value (0 if not a uint64). */
uint64_t
json_uint(const struct json *j)
{
	return (json_is_uint(j) ? j->u.num.u : 0);
}

/* The value as a double (0 if not a number). */
double
json_double(const struct json *j)
{
	if (j == NULL || j->type != JSON_NUMBER)
		return (0);
	return (j->u.num.d);
}

/* The number as written; borrowed. */
const char *
json_number_text(const struct json *j)
{
	if (j == NULL || j->type != JSON_NUMBER)
		return (NULL);
	return (j->u.num.text);
}

/* The boolean (0 if not a boolean). */
int
json_bool(const struct json *j)
{
	return (j != NULL && j->type == JSON_BOOL && j->u.b);
}

/* The string, borrowed from j; NULL if not a string. */
const char *
json_string(const struct json *j)
{
	if (j == NULL || j->type != JSON_STRING)
		return (NULL);
	return (j->u.str.s);
}

/* Length in bytes of a string (0 if not a string). */
size_t
json_strlen(const struct json *j)
{
	if (j == NULL || j->type != JSON_STRING)
		return (0);
	return (j->u.str.len);
}

/* Deep equality; object member order does not matter. */
int
json_equal(const struct json *a, const struct json *b)
{
	size_t	 i;

	if (json_type(a) != json_type(b))
		return (0);
	switch (json_type(a)) {
	case JSON_NULL:
		return (1);
	case JSON_BOOL:
		return (a->u.b == b->u.b);
	case JSON_NUMBER:
		if (strcmp(a->u.num.text, b->u.num.text) == 0)
			return (1);
		if ((a->u.num.flags & JSON_NUM_INT) &&
		    (b->u.num.flags & JSON_NUM_INT))
			return (a->u.num.i == b->u.num.i);
		if ((a->u.num.flags & JSON_NUM_UINT) &&
		    (b->u.num.flags & JSON_NUM_UINT))
			return (a->u.num.u == b->u.num.u);
		return (a->u.num.d == b->u.num.d);
	case JSON_STRING:
		return (a->u.str.len == b->u.str.len &&
		    memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0);
	case JSON_ARRAY:
		if (a->u.arr.n != b->u.arr.n)
			return (0);
		for (i = 0; i < a->u.arr.n; i++)
			if (!json_equal(a->u.arr.v[i], b->u.arr.v[i]))
				return (0);
		return (1);
	case JSON_OBJECT:
		if (a->u.obj.n != b->u.obj.n)
			return (0);
		for (i = 0; i < a->u.obj.n; i++) {
			if (!json_equal(a->u.obj.m[i].val,
			    json_get(b, a->u.obj.m[i].key)))
				return (0);
			if (json_find(b, a->u.obj.m[i].key) == -1)
				return (0);
		}
		return (1);
	}
	return (0);
}

/* FNV-1a over a key. */
static uint32_t
json_hash_key(const char *k)
{
	uint32_t	h = 2166136261u;

	for (; *k != '\0'; k++) {
		h ^= (unsigned char)*k;
		h *= 16777619u;
	}
	return (h);
}

/* (Re)build the hash index of a large object. */
static void
json_index_build(struct json *o)
{
	size_t		 i, slot;
	uint32_t	*h;

	free(o->u.obj.hash);
	o->u.obj.hash = NULL;
	o->u.obj.hcap = 0;
	if (o->u.obj.n < JSON_HASH_MIN)
		return;
	o->u.obj.hcap = 64;
	while (o->u.obj.hcap < o->u.obj.cap * 2)
		o->u.obj.hcap *= 2;
	h = xcalloc(o->u.obj.hcap, sizeof *h);
	for (i = 0; i < o->u.obj.n; i++) {
		slot = json_hash_key(o->u.obj.m[i].key) & (o->u.obj.hcap - 1);
		while (h[slot] != 0)
			slot = (slot + 1) & (o->u.obj.hcap - 1);
		h[slot] = i + 1;
	}
	o->u.obj.hash = h;
}

/*
 * Remove the index entry of the last member, whose key hashes to h:
 * linear-probing deletion, moving later entries of its cluster up into
 * the hole where their home slot allows.  O(1) on average, so that
 * emptying an object from its end costs O(n).
 */
static void
json_index_drop_last(struct json *o, uint32_t h)
{
	size_t		 mask = o->u.obj.hcap - 1, hole, next, home;
	uint32_t	 e;

	hole = h & mask;
	while (o->u.obj.hash[hole] != o->u.obj.n)
		hole = (hole + 1) & mask;
	o->u.obj.hash[hole] = 0;
	for (next = (hole + 1) & mask; (e = o->u.obj.hash[next]) != 0;
	    next = (next + 1) & mask) {
		home = json_hash_key(o->u.obj.m[e - 1].key) & mask;
		if (hole < next ? (home <= hole || home > next) :
		    (home <= hole && home > next)) {
			o->u.obj.hash[hole] = e;
			o->u.obj.hash[next] = 0;
			hole = next;
		}
	}
	o->u.obj.n--;
}

/* Index of a member, or -1. */
static ssize_t
json_find(const struct json *o, const char *key)
{
	size_t	i, slot;

	if (o == NULL || o->type != JSON_OBJECT)
		return (-1);
	if (o->u.obj.hash == NULL) {
		for (i = 0; i < o->u.obj.n; i++)
			if (strcmp(o->u.obj.m[i].key, key) == 0)
				return (i);
		return (-1);
	}
	slot = json_hash_key(key) & (o->u.obj.hcap - 1);
	while (o->u.obj.hash[slot] != 0) {
		i = o->u.obj.hash[slot] - 1;
		if (strcmp(o->u.obj.m[i].key, key) == 0)
			return (i);
		slot = (slot + 1) & (o->u.obj.hcap - 1);
	}
	return (-1);
}

/* Number of members (0 if not an object). */
size_t
json_object_size(const struct json *o)
{
	if (o == NULL || o->type != JSON_OBJECT)
		return (0);
	return (o->u.obj.n);
}

/* Key of member i; borrowed. */
const char *
json_object_key(const struct json *o, size_t i)
{
	return (o->u.obj.m[i].key);
}

/* Value of member i; borrowed. */
struct json *
json_object_value(const struct json *o, size_t i)
{
	return (o->u.obj.m[i].val);
}

/* A member by key; borrowed, NULL if absent or o is not an object. */
struct json *
json_get(const struct json *o, const char *key)
{
	ssize_t	i;

	if ((i = json_find(o, key)) == -1)
		return (NULL);
	return (o->u.obj.m[i].val);
}

/* A member by dotted path ("a.b.c"); borrowed, NULL if absent. */
struct json *
json_get_path(const struct json *o, const char *path)
{
	char		 key[256];
	const char	*dot;
	size_t		 len;

	while (o != NULL && *path != '\0') {
		if ((dot = strchr(path, '.')) == NULL)
			dot = path + strlen(path);
		len = dot - path;
		if (len >= sizeof key)
			return (NULL);
		memcpy(key, path, len);
		key[len] = '\0';
		o = json_get(o, key);
		path = (*dot == '.') ? dot + 1 : dot;
	}
	return ((struct json *)o);
}

/* A string member; borrowed, NULL if absent or not a string. */
const char *
json_get_string(const struct json *o, const char *key)
{
	return (json_string(json_get(o, key)));
}

/* Set a member, replacing any old value; takes ownership of val. */
void
json_set(struct json *o, const char *key, struct json *val)
{
	ssize_t			 i;
	struct json_member	*m;
	size_t			 slot;

	if ((i = json_find(o, key)) != -1) {
		json_free(o->u.obj.m[i].val);
		o->u.obj.m[i].val = val;
		return;
	}
	if (o->u.obj.n == o->u.obj.cap) {
		o->u.obj.cap = o->u.obj.cap == 0 ? 4 : o->u.obj.cap * 2;
		o->u.obj.m = xreallocarray(o->u.obj.m, o->u.obj.cap,
		    sizeof *o->u.obj.m);
	}
	m = &o->u.obj.m[o->u.obj.n++];
	m->key = xstrdup(key);
	m->val = val;
	if (o->u.obj.hash == NULL || o->u.obj.n * 2 > o->u.obj.hcap) {
		if (o->u.obj.n >= JSON_HASH_MIN)
			json_index_build(o);
		return;
	}
	slot = json_hash_key(key) & (o->u.obj.hcap - 1);
	while (o->u.obj.hash[slot] != 0)
		slot = (slot + 1) & (o->u.obj.hcap - 1);
	o->u.obj.hash[slot] = o->u.obj.n;
}

/* Remove a member and hand its value to the caller; NULL if absent. */
struct json *
json_take(struct json *o, const char *key)
{
	ssize_t		 i;
	struct json	*val;

	if ((i = json_find(o, key)) == -1)
		return (NULL);
	val = o->u.obj.m[i].val;
	if (o->u.obj.hash != NULL && (size_t)i == o->u.obj.n - 1) {
		/* The last member: no other index moves. */
		json_index_drop_last(o, json_hash_key(o->u.obj.m[i].key));
		free(o->u.obj.m[i].key);
		return (val);
	}
	free(o->u.obj.m[i].key);
	memmove(&o->u.obj.m[i], &o->u.obj.m[i + 1],
	    (o->u.obj.n - i - 1) * sizeof *o->u.obj.m);
	o->u.obj.n--;
	if (o->u.obj.hash != NULL)
		json_index_build(o);
	return (val);
}

/* Remove and free a member, if present. */
void
json_del(struct json *o, const char *key)
{
	json_free(json_take(o, key));
}

/*
 * Merge src into dst: objects merge member by member, anything else in
 * src replaces what dst had.  src is only read.
 */
void
json_merge(struct json *dst, const struct json *src)
{
	size_t		 i;
	const char	*k;
	struct json	*d, *s;

	if (json_type(dst) != JSON_OBJECT || json_type(src) != JSON_OBJECT)
		return;
	for (i = 0; i < src->u.obj.n; i++) {
		k = src->u.obj.m[i].key;
		s = src->u.obj.m[i].val;
		d = json_get(dst, k);
		if (json_type(d) == JSON_OBJECT && json_type(s) == JSON_OBJECT)
			json_merge(d, s);
		else
			json_set(dst, k, json_copy(s));
	}
}

/* Number of elements (0 if not an array). */
size_t
json_array_size(const struct json *a)
{
	if (a == NULL || a->type != JSON_ARRAY)
		return (0);
	return (a->u.arr.n);
}

/* Element i; borrowed, NULL if out of range. */
struct json *
json_array_get(const struct json *a, size_t i)
{
	if (a == NULL || a->type != JSON_ARRAY || i >= a->u.arr.n)
		return (NULL);
	return (a->u.arr.v[i]);
}

/* Append; takes ownership of val. */
void
json_array_push(struct json *a, struct json *val)
{
	if (a->u.arr.n == a->u.arr.cap) {
		a->u.arr.cap = a->u.arr.cap == 0 ? 4 : a->u.arr.cap * 2;
		a->u.arr.v = xreallocarray(a->u.arr.v, a->u.arr.cap,
		    sizeof *a->u.arr.v);
	}
	a->u.arr.v[a->u.arr.n++] = val;
}

/* Remove element i and hand it to the caller; NULL if out of range. */
struct json *
json_array_take(struct json *a, size_t i)
{
	struct json	*val;

	if (a == NULL || a->type != JSON_ARRAY || i >= a->u.arr.n)
		return (NULL);
	val = a->u.arr.v[i];
	memmove(&a->u.arr.v[i], &a->u.arr.v[i + 1],
	    (a->u.arr.n - i - 1) * sizeof *a->u.arr.v);
	a->u.arr.n--;
	return (val);
}

/* Attach a parsed value to the open container (or make it the root). */
static int
json_parse_add(struct json_parse_ctx *ctx, struct json *v)
{
	struct json	*top;

	if (ctx->depth == 0) {
		ctx->root = v;
		return (1);
	}
	top = ctx->stack[ctx->depth - 1];
	if (top->type == JSON_ARRAY)
		json_array_push(top, v);
	else {
		json_set(top, ctx->key, v);
		free(ctx->key);
		ctx->key = NULL;
	}
	return (1);
}

static int
json_parse_null_cb(void *arg)
{
	return (json_parse_add(arg, json_new_null()));
}

static int
json_parse_bool_cb(void *arg, int b)
{
	return (json_parse_add(arg, json_new_bool(b)));
}

static int
json_parse_number_cb(void *arg, const char *s, size_t len)
{
	struct json	*j;

	j = json_alloc(JSON_NUMBER);
	j->u.num.text = xstrndup(s, len);
	json_number_init(j);
	return (json_parse_add(arg, j));
}

/*
 * Is s well-formed UTF-8 as RFC 3629 has it?  yajl checks only the shape
 * of the sequences and lets overlong forms ("\xc0\xaf" for '/'),
 * surrogates and code points above U+10FFFF through.
 */
static int
json_utf8_ok(const unsigned char *s, size_t len)
{
	size_t		i = 0, n, k;
	uint32_t	c, min;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			c &= 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			c &= 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			c &= 0x07;
			min = 0x10000;
		} else
			return (0);
		if (len - i - 1 < n)
			return (0);
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return (0);
			c = (c << 6) | (s[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return (0);
		i += n + 1;
	}
	return (1);
}

static int
json_parse_string_cb(void *arg, const unsigned char *s, size_t len)
{
	struct json_parse_ctx	*ctx = arg;

	if (!json_utf8_ok(s, len)) {
		ctx->why = "invalid UTF-8 in a string";
		return (0);
	}
	return (json_parse_add(arg, json_new_stringn((const char *)s, len)));
}

/* Open a container, refusing to nest deeper than JSON_MAX_DEPTH. */
static int
json_parse_open(struct json_parse_ctx *ctx, struct json *c)
{
	if (ctx->depth >= JSON_MAX_DEPTH) {
		ctx->why = "nested deeper than " JSON_STR(JSON_MAX_DEPTH)
		    " levels";
		json_free(c);
		return (0);
	}
	json_parse_add(ctx, c);
	ctx->stack[ctx->depth++] = c;
	return (1);
}

static int
json_parse_start_map_cb(void *arg)
{
	return (json_parse_open(arg, json_new_object()));
}

static int
json_parse_start_array_cb(void *arg)
{
	return (json_parse_open(arg, json_new_array()));
}

static int
json_parse_key_cb(void *arg, const unsigned char *s, size_t len)
{
	struct json_parse_ctx	*ctx = arg;

	free(ctx->key);
	ctx->key = xstrndup((const char *)s, len);
	if (strlen(ctx->key) != len) {
		/* A key with a NUL byte cannot be stored faithfully. */
		ctx->why = "object key contains a NUL character";
		return (0);
	}
	if (!json_utf8_ok(s, len)) {
		ctx->why = "invalid UTF-8 in an object key";
		return (0);
	}
	return (1);
}

static int
json_parse_end_cb(void *arg)
{
	struct json_parse_ctx	*ctx = arg;

	ctx->depth--;
	return (1);
}

static const yajl_callbacks json_parse_callbacks = {
	.yajl_null = json_parse_null_cb,
	.yajl_boolean = json_parse_bool_cb,
	.yajl_number = json_parse_number_cb,
	.yajl_string = json_parse_string_cb,
	.yajl_start_map = json_parse_start_map_cb,
	.yajl_map_key = json_parse_key_cb,
	.yajl_end_map = json_parse_end_cb,
	.yajl_start_array = json_parse_start_array_cb,
	.yajl_end_array = json_parse_end_cb,
};

/*
 * Parse len bytes of JSON text.  Returns a new document (caller frees),
 * or NULL with *cause set (caller frees) naming what is wrong and where.
 */
struct json *
json_parse(const void *text, size_t len, char **cause)
{
	struct json_parse_ctx	 ctx;
	yajl_handle		 h;
	yajl_status		 st;
	unsigned char		*err;
	size_t			 off, elen;

	memset(&ctx, 0, sizeof ctx);
	h = yajl_alloc(&json_parse_callbacks, NULL, &ctx);
	if (h == NULL)
		fatalx("yajl_alloc failed");
	st = yajl_parse(h, text, len);
	off = yajl_get_bytes_consumed(h);
	if (st == yajl_status_ok) {
		/* What is wrong now is at the end ("premature EOF"). */
		st = yajl_complete_parse(h);
		off = len;
	}
	if (st == yajl_status_ok && ctx.root != NULL) {
		yajl_free(h);
		free(ctx.key);
		return (ctx.root);
	}
	if (cause != NULL) {
		if (st == yajl_status_client_canceled)
			xasprintf(cause, "malformed JSON at byte %zu: %s", off,
			    ctx.why);
		else if (ctx.root == NULL && st == yajl_status_ok)
			xasprintf(cause, "malformed JSON: empty document");
		else {
			/* yajl ends its message with a newline. */
			err = yajl_get_error(h, 0, text, len);
			elen = strlen((char *)err);
			while (elen > 0 && isspace(err[elen - 1]))
				elen--;
			xasprintf(cause, "malformed JSON at byte %zu: %.*s",
			    off, (int)elen, (char *)err);
			yajl_free_error(h, err);
		}
	}
	yajl_free(h);
	free(ctx.key);
	json_free(ctx.root);
	return (NULL);
}

/* Emit a value through a yajl generator. */
static void
json_gen(yajl_gen g, const struct json *j)
{
	size_t	i;

	switch (json_type(j)) {
	case JSON_NULL:
		yajl_gen_null(g);
		break;
	case JSON_BOOL:
		yajl_gen_bool(g, j->u.b);
		break;
	case JSON_NUMBER:
		yajl_gen_number(g, j->u.num.text, strlen(j->u.num.text));
		break;
	case JSON_STRING:
		yajl_gen_string(g, (const unsigned char *)j->u.str.s,
		    j->u.str.len);
		break;
	case JSON_ARRAY:
		yajl_gen_array_open(g);
		for (i = 0; i < j->u.arr.n; i++)
			json_gen(g, j->u.arr.v[i]);
		yajl_gen_array_close(g);
		break;
	case JSON_OBJECT:
		yajl_gen_map_open(g);
		for (i = 0; i < j->u.obj.n; i++) {
			yajl_gen_string(g,
			    (const unsigned char *)j->u.obj.m[i].key,
			    strlen(j->u.obj.m[i].key));
			json_gen(g, j->u.obj.m[i].val);
		}
		yajl_gen_map_close(g);
		break;
	}
}

/* Print a document; returns a NUL-terminated string the caller frees. */
static char *
json_dump_with(const struct json *j, size_t *lenp, int pretty)
{
	yajl_gen		 g;
	const unsigned char	*buf;
	size_t			 len;
	char			*out;

	if ((g = yajl_gen_alloc(NULL)) == NULL)
		abort();
	if (pretty) {
		yajl_gen_config(g, yajl_gen_beautify, 1);
		yajl_gen_config(g, yajl_gen_indent_string, "  ");
	}
	json_gen(g, j);
	yajl_gen_get_buf(g, &buf, &len);
	out = xmalloc(len + 1);
	memcpy(out, buf, len);
	out[len] = '\0';
	yajl_gen_free(g);
	if (lenp != NULL)
		*lenp = len;
	return (out);
}

/* Compact JSON text; caller frees. */
char *
json_dump(const struct json *j, size_t *lenp)
{
	return (json_dump_with(j, lenp, 0));
}

/* Indented JSON text; caller frees. */
char *
json_dump_pretty(const struct json *j, size_t *lenp)
{
	return (json_dump_with(j, lenp, 1));
}

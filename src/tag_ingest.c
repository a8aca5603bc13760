/* SPDX-License-Identifier: ISC */
/*
 * The fast ingest path: tag records straight from JSON text (the body of
 * POST /tags/publish, an MQTT payload) to the tag hub, without building
 * a document.  yajl's callbacks fill one record at a time; strings go to
 * an arena freed with the batch.  A body is one record or an array of
 * records; the batch is checked whole before any record is applied.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "log.h"
#include "tag.h"
#include "xmalloc.h"

#define TAG_ARENA_BLOCK	65536

enum tag_field {
	F_NONE,
	F_PRVD,
	F_SRC,
	F_NAME,
	F_TYPE,
	F_VALUE,
	F_UNIT,
	F_TS
};

struct tag_arena_block {
	struct tag_arena_block	*next;
	size_t			 used;
	size_t			 size;
	char			 data[];
};

struct tag_ingest {
	struct tag_arena_block	*arena;
	struct tag_pub		*recs;
	size_t			 n;
	size_t			 cap;
	size_t			 max;

	int			 depth;
	int			 skip;		/* inside an unused value */
	int			 top_array;
	enum tag_field		 field;

	/* The record being read. */
	const char		*prvd, *src, *name, *type, *unit;
	enum tag_tok		 vkind;
	const char		*vtext;
	size_t			 vlen;
	int			 has_value;
	int			 has_ts;
	int64_t			 ts;

	char			*cause;
	int			 toobig;
};

/* Bytes from the arena (never moved, freed with the batch). */
static char *
tag_ingest_alloc(struct tag_ingest *in, size_t len)
{
	struct tag_arena_block	*b = in->arena;
	size_t			 size;
	char			*p;

	len = (len + 7) & ~(size_t)7;
	if (b == NULL || b->size - b->used < len) {
		size = len > TAG_ARENA_BLOCK ? len : TAG_ARENA_BLOCK;
		b = xmalloc(sizeof *b + size);
		b->size = size;
		b->used = 0;
		b->next = in->arena;
		in->arena = b;
	}
	p = b->data + b->used;
	b->used += len;
	return (p);
}

/* A NUL-terminated arena copy of len bytes. */
static const char *
tag_ingest_str(struct tag_ingest *in, const void *s, size_t len)
{
	char	*p;

	p = tag_ingest_alloc(in, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return (p);
}

/* Record a failure (the first one wins) and stop the parser. */
static int
tag_ingest_fail(struct tag_ingest *in, const char *fmt, ...)
{
	va_list	ap;
	char	*msg, *who;

	if (in->cause != NULL)
		return (0);
	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	if (in->prvd != NULL && in->src != NULL && in->name != NULL)
		xasprintf(&who, "record %zu (tag %s/%s/%s)", in->n, in->prvd,
		    in->src, in->name);
	else
		xasprintf(&who, "record %zu", in->n);
	xasprintf(&in->cause, "%s: %s", who, msg);
	free(who);
	free(msg);
	return (0);
}

/* Are we directly inside a record object? */
static int
tag_ingest_in_record(struct tag_ingest *in)
{
	return (in->depth == (in->top_array ? 2 : 1));
}

/* A scalar token inside a record. */
static int
tag_ingest_scalar(struct tag_ingest *in, enum tag_tok kind, const char *s,
    size_t len)
{
	const char	*what;

	if (in->skip > 0)
		return (1);
	if (!tag_ingest_in_record(in))
		return (tag_ingest_fail(in, "must be an object"));
	switch (in->field) {
	case F_VALUE:
		in->vkind = kind;
		in->vtext = tag_ingest_str(in, s, len);
		in->vlen = len;
		in->has_value = 1;
		return (1);
	case F_TS:
		if (kind != TAG_TOK_NUMBER)
			return (tag_ingest_fail(in, "ts: must be an integer "
			    "(microseconds)"));
		{
			char	buf[32], *end;

			if (len >= sizeof buf)
				return (tag_ingest_fail(in, "ts: out of "
				    "range"));
			memcpy(buf, s, len);
			buf[len] = '\0';
			errno = 0;
			in->ts = strtoll(buf, &end, 10);
			if (errno != 0 || *end != '\0' || in->ts < 0)
				return (tag_ingest_fail(in, "ts: must be a "
				    "non-negative integer (microseconds)"));
		}
		in->has_ts = 1;
		return (1);
	case F_NONE:
		return (1);
	default:
		break;
	}
	what = in->field == F_PRVD ? "prvdName" : in->field == F_SRC ?
	    "srcName" : in->field == F_NAME ? "tagName" : in->field == F_TYPE ?
	    "dataType" : "dataUnit";
	if (kind != TAG_TOK_STRING)
		return (tag_ingest_fail(in, "%s: must be a string", what));
	s = tag_ingest_str(in, s, len);
	if (strlen(s) != len)
		return (tag_ingest_fail(in, "%s: must not contain NUL", what));
	switch (in->field) {
	case F_PRVD:
		in->prvd = s;
		break;
	case F_SRC:
		in->src = s;
		break;
	case F_NAME:
		in->name = s;
		break;
	case F_TYPE:
		in->type = s;
		break;
	default:
		in->unit = s;
		break;
	}
	return (1);
}

static int
tag_ingest_null_cb(void *arg)
{
	return (tag_ingest_scalar(arg, TAG_TOK_NULL, "null", 4));
}

static int
tag_ingest_bool_cb(void *arg, int b)
{
	return (tag_ingest_scalar(arg, TAG_TOK_BOOL, b ? "true" : "false",
	    b ? 4 : 5));
}

static int
tag_ingest_number_cb(void *arg, const char *s, size_t len)
{
	return (tag_ingest_scalar(arg, TAG_TOK_NUMBER, s, len));
}

static int
tag_ingest_string_cb(void *arg, const unsigned char *s, size_t len)
{
	return (tag_ingest_scalar(arg, TAG_TOK_STRING, (const char *)s, len));
}

static int
tag_ingest_key_cb(void *arg, const unsigned char *k, size_t len)
{
	struct tag_ingest	*in = arg;

	if (in->skip > 0)
		return (1);
#define KEY(s)	(len == sizeof(s) - 1 && memcmp(k, s, len) == 0)
	if (KEY("prvdName"))
		in->field = F_PRVD;
	else if (KEY("srcName"))
		in->field = F_SRC;
	else if (KEY("tagName"))
		in->field = F_NAME;
	else if (KEY("dataType"))
		in->field = F_TYPE;
	else if (KEY("dataValue"))
		in->field = F_VALUE;
	else if (KEY("dataUnit"))
		in->field = F_UNIT;
	else if (KEY("ts"))
		in->field = F_TS;
	else
		in->field = F_NONE;
#undef KEY
	return (1);
}

static int
tag_ingest_start_map_cb(void *arg)
{
	struct tag_ingest	*in = arg;

	if (in->skip > 0) {
		in->skip++;
		return (1);
	}
	if (in->depth == (in->top_array ? 1 : 0)) {
		if (in->n == in->max) {
			in->prvd = in->src = in->name = NULL;
			in->toobig = 1;
			return (tag_ingest_fail(in, "a batch holds at most "
			    "%zu records", in->max));
		}
		in->depth++;
		in->prvd = in->src = in->name = in->type = in->unit = NULL;
		in->has_value = in->has_ts = 0;
		in->ts = 0;
		in->field = F_NONE;
		return (1);
	}
	if (in->field == F_VALUE)
		return (tag_ingest_fail(in, "dataValue: must be a number, "
		    "string or boolean"));
	if (in->field == F_NONE && tag_ingest_in_record(in)) {
		/* An object under a key we do not use: skip it. */
		in->skip = 1;
		return (1);
	}
	return (tag_ingest_fail(in, "must be a string or number"));
}

static int
tag_ingest_start_array_cb(void *arg)
{
	struct tag_ingest	*in = arg;

	if (in->skip > 0) {
		in->skip++;
		return (1);
	}
	if (in->depth == 0 && !in->top_array) {
		in->top_array = 1;
		in->depth = 1;
		return (1);
	}
	if (in->field == F_VALUE)
		return (tag_ingest_fail(in, "dataValue: must be a number, "
		    "string or boolean"));
	if (in->field == F_NONE && tag_ingest_in_record(in)) {
		in->skip = 1;
		return (1);
	}
	if (tag_ingest_in_record(in))
		return (tag_ingest_fail(in, "must be a string or number"));
	return (tag_ingest_fail(in, "must be an object"));
}

/* The end of a record: check it and add it to the batch. */
static int
tag_ingest_finish(struct tag_ingest *in)
{
	struct tag_pub	*r;
	struct tag	*t;
	enum tag_type	 type;
	char		*why, *store = NULL;

	if (in->prvd == NULL)
		return (tag_ingest_fail(in, "prvdName: is required"));
	if (in->src == NULL)
		return (tag_ingest_fail(in, "srcName: is required"));
	if (in->name == NULL)
		return (tag_ingest_fail(in, "tagName: is required"));
	if (in->type == NULL) {
		/* A known tag keeps its type. */
		if ((t = tag_find(in->prvd, in->src, in->name)) == NULL)
			return (tag_ingest_fail(in, "dataType: is required "
			    "for a new tag"));
		type = tag_get_type(t);
	} else if (tag_type_parse(in->type, &type) != 0)
		return (tag_ingest_fail(in, "dataType: must be one of uint8, "
		    "uint16, uint32, uint64, int8, int16, int32, int64, float, "
		    "double, string, boolean, raw, not \"%s\"", in->type));
	if (!in->has_value)
		return (tag_ingest_fail(in, "dataValue: is required"));
	if (in->n == in->cap) {
		in->cap = in->cap == 0 ? 64 : in->cap * 2;
		in->recs = xreallocarray(in->recs, in->cap, sizeof *in->recs);
	}
	r = &in->recs[in->n];
	if (type == TAG_RAW)
		store = tag_ingest_alloc(in, in->vlen * 3 / 4 + 3);
	if (tag_value_parse(type, in->vkind, in->vtext, in->vlen, store,
	    &r->value, &why) != 0) {
		tag_ingest_fail(in, "dataValue: %s", why);
		free(why);
		return (0);
	}
	r->prvd = in->prvd;
	r->src = in->src;
	r->name = in->name;
	r->unit = in->unit;
	r->has_type = (in->type != NULL);
	r->ts = in->has_ts ? in->ts : 0;
	r->tag = NULL;
	in->n++;
	/* What comes next is not this record's fault. */
	in->prvd = in->src = in->name = NULL;
	in->field = F_NONE;
	return (1);
}

static int
tag_ingest_end_map_cb(void *arg)
{
	struct tag_ingest	*in = arg;
	int			 record;

	if (in->skip > 0) {
		in->skip--;
		return (1);
	}
	record = tag_ingest_in_record(in);
	in->depth--;
	if (record)
		return (tag_ingest_finish(in));
	return (1);
}

static int
tag_ingest_end_array_cb(void *arg)
{
	struct tag_ingest	*in = arg;

	if (in->skip > 0)
		in->skip--;
	else
		in->depth--;
	return (1);
}

static const yajl_callbacks tag_ingest_callbacks = {
	.yajl_null = tag_ingest_null_cb,
	.yajl_boolean = tag_ingest_bool_cb,
	.yajl_number = tag_ingest_number_cb,
	.yajl_string = tag_ingest_string_cb,
	.yajl_start_map = tag_ingest_start_map_cb,
	.yajl_map_key = tag_ingest_key_cb,
	.yajl_end_map = tag_ingest_end_map_cb,
	.yajl_start_array = tag_ingest_start_array_cb,
	.yajl_end_array = tag_ingest_end_array_cb,
};

/* Free a parse's arena and records. */
static void
tag_ingest_clear(struct tag_ingest *in)
{
	struct tag_arena_block	*b;

	while ((b = in->arena) != NULL) {
		in->arena = b->next;
		free(b);
	}
	free(in->recs);
	free(in->cause);
}

/*
 * Parse len bytes of JSON (one record or an array of at most max) and
 * publish them.  0 with *n the number published, or -1 with *cause
 * (caller frees): nothing is applied then.  *toobig is set when the
 * batch had more than max records.
 */
int
tag_ingest(const void *text, size_t len, size_t max, enum tag_origin origin,
    size_t *n, int *toobig, char **cause)
{
	struct tag_ingest	 in;
	yajl_handle		 h;
	yajl_status		 st;
	unsigned char		*err;
	int			 rc = -1;

	memset(&in, 0, sizeof in);
	in.max = max;
	*n = 0;
	*toobig = 0;
	if ((h = yajl_alloc(&tag_ingest_callbacks, NULL, &in)) == NULL)
		fatalx("yajl_alloc failed");
	st = yajl_parse(h, text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (in.cause != NULL || st != yajl_status_ok)
		tag_rejected(in.n + 1);
	if (in.cause != NULL) {
		*toobig = in.toobig;
		*cause = in.cause;
		in.cause = NULL;
	} else if (st != yajl_status_ok) {
		err = yajl_get_error(h, 0, text, len);
		err[strcspn((char *)err, "\r\n")] = '\0';
		xasprintf(cause, "malformed JSON at byte %zu: %s",
		    yajl_get_bytes_consumed(h), (char *)err);
		yajl_free_error(h, err);
	} else if (tag_publish(in.recs, in.n, origin, cause) == 0) {
		*n = in.n;
		rc = 0;
	}
	yajl_free(h);
	tag_ingest_clear(&in);
	return (rc);
}

/* SPDX-License-Identifier: ISC */
/*
 * Payload building: each tag record goes through a group's filter on its
 * own and the result merges into the message under construction.
 *
 * Custom filters run in libjq, compiled once per format.  The record
 * handed to jq carries ts in milliseconds; every output is converted to a
 * struct json (numbers keep the text jq prints for them) and merged into
 * the buffer's document: objects key by key, arrays append, anything else
 * replaces.  The growth of the printed message is worked out from the
 * outputs before anything is merged, so a record that would overflow the
 * limit is refused with the buffer untouched.
 *
 * The vendor's default filter is rendered natively: the buffer keeps
 * providers, sources and tags in first-seen order, each tag with its
 * value entries already printed, and lays them out when the message is
 * taken.  Its bytes are those of the jq path for the same records: jq's
 * number format (shortest digits, its own choice of exponent form), jq's
 * repair of bad UTF-8, todateiso8601's truncation of the seconds, and
 * yajl's escapes as json_dump() prints them.  Only integers beyond 2^53
 * differ: jq holds doubles, the native renderer keeps them exact.  That
 * printing is in format_print.c; the layout of the message is here.
 */

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jq.h>

#include "format.h"
#include "format_int.h"
#include "json.h"
#include "log.h"
#include "tag.h"
#include "xmalloc.h"

#define FORMAT_DEFAULT	"{tags:{(.prvdName):{(.srcName):{(.tagName):" \
			"{values:[{updateTimeStamp:(.ts/1000|todateiso8601)," \
			"value:.dataValue}]}}}}}"

/*
 * Put before every filter.  libjq 1.6 frees a value too many when
 * halt_error stops a program that has more to run (inside an if, say):
 * the next run reads freed memory.  Filters get error in its place.  With
 * definitions first, module directives (import, include) cannot follow:
 * a filter from the REST API reads no files.
 */
#define FORMAT_PRELUDE	"def halt_error: error(.); " \
			"def halt_error($code): error(.); "

#define FORMAT_MAX_OUTPUTS	100000	/* outputs of one record at most */
#define FORMAT_BLOCK		65536	/* arena block of the native buffer */
#define FORMAT_HASH_MIN		64	/* initial buckets */

/* Fixed text of the native layout. */
#define FORMAT_HEAD	"{\"tags\":{"
#define FORMAT_TAIL	"}}"
#define FORMAT_VALUES	"{\"values\":["
#define FORMAT_VEND	"]}"
#define FORMAT_ENT_TS	"{\"updateTimeStamp\":\""
#define FORMAT_ENT_VAL	"\",\"value\":"

#define FORMAT_LEN(s)	(sizeof(s) - 1)

/* Keys of the record handed to jq. */
enum format_key {
	FORMAT_K_PRVD,
	FORMAT_K_SRC,
	FORMAT_K_NAME,
	FORMAT_K_TYPE,
	FORMAT_K_VALUE,
	FORMAT_K_UNIT,
	FORMAT_K_TS,
	FORMAT_NKEYS
};

static const char *format_key_names[FORMAT_NKEYS] = {
	"prvdName", "srcName", "tagName", "dataType", "dataValue",
	"dataUnit", "ts"
};

struct format {
	jq_state	*jq;		/* NULL: the native default */
	jv		 keys[FORMAT_NKEYS];
	char		*err;		/* compile messages being collected */
	int		 compiling;
};

/* One printed value entry of a tag. */
struct format_ent {
	struct format_ent	*next;
	size_t			 len;
	char			 text[];
};

/*
 * An entry of the buffer's hash table: a key under an owner.  A
 * provider, source or tag is found by its printed key under its parent
 * (NULL for providers); a tag also by the names of a record, joined, under
 * the buffer itself, which spares printing them again.
 */
struct format_hent {
	struct format_hent	*next;
	const void		*owner;
	struct format_node	*node;
	uint32_t		 hash;
	size_t			 len;
	char			 key[];
};

/* A provider, source or tag, in first-seen order. */
struct format_node {
	const char		*key;		/* printed, in its hent */
	size_t			 klen;
	struct format_node	*child;
	struct format_node	*last;
	struct format_node	*sibling;
	struct format_ent	*efirst;	/* tags */
	struct format_ent	*elast;
};

struct format_block {
	struct format_block	*next;
	size_t			 used;
	size_t			 size;
	char			 data[];
};

static void	 format_jq_error_cb(void *, jv);
static char	*format_jq_cause(const char *);
static jv	 format_value_jv(const struct json *);
static jv	 format_rec_jv(struct format *, const struct tag_rec *);
static struct json *format_jv_json(jv, int, char **);
static char	*format_jv_cause(jv);
static int	 format_add_jq(struct format_buf *, const struct tag_rec *,
		     size_t, char **);
static size_t	 format_esc_len(const char *, size_t);
static size_t	 format_jsize(const struct json *);
static int64_t	 format_delta(const struct json *, struct json *const *,
		     size_t);
static int64_t	 format_delta_obj(const struct json *,
		     struct json *const *, size_t);
static int	 format_merge_in(struct json *, struct json *);
static void	*format_alloc(struct format_buf *, size_t);
static uint32_t	 format_hash(const void *, const char *, size_t);
static struct format_node *format_find(struct format_buf *, const void *,
		     const char *, size_t, uint32_t);
static void	 format_put(struct format_buf *, const void *, const char *,
		     size_t, uint32_t, struct format_node *);
static struct format_node *format_node_new(struct format_buf *,
		     struct format_node *, const char *, size_t, uint32_t);
static int	 format_add_native(struct format_buf *,
		     const struct tag_rec *, size_t);
static char	*format_print_native(struct format_buf *, size_t *);
static void	 format_reset_native(struct format_buf *);

/* The default filter's text; static. */
const char *
format_default_filter(void)
{
	return (FORMAT_DEFAULT);
}

/*
 * Compile a filter; NULL, "" or the default text make the native default
 * format.  Returns a new format (caller frees with format_free()), or NULL
 * with *cause (caller frees) holding jq's message.
 */
struct format *
format_new(const char *filter, char **cause)
{
	struct format	*f;
	const char	*s, *e;
	char		*prog, *home;
	int		 i, ok;

	f = xcalloc(1, sizeof *f);
	if (filter == NULL)
		filter = "";
	for (s = filter; isspace((unsigned char)*s); s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	if (e == s || ((size_t)(e - s) == FORMAT_LEN(FORMAT_DEFAULT) &&
	    memcmp(s, FORMAT_DEFAULT, e - s) == 0))
		return (f);

	for (i = 0; s[i] >= 'a' && s[i] <= 'z'; i++)
		;
	if ((i == 6 && (strncmp(s, "import", 6) == 0 ||
	    strncmp(s, "module", 6) == 0)) ||
	    (i == 7 && strncmp(s, "include", 7) == 0)) {
		if (cause != NULL)
			xasprintf(cause, "format: jq: modules (%.*s) are not "
			    "supported", i, s);
		free(f);
		return (NULL);
	}

	if ((f->jq = jq_init()) == NULL)
		fatalx("format: jq_init failed");
	jq_set_error_cb(f->jq, format_jq_error_cb, f);
	/* Without it libjq 1.6 aborts on an import. */
	jq_set_attr(f->jq, jv_string("JQ_LIBRARY_PATH"), jv_array());
	xasprintf(&prog, "%s%s", FORMAT_PRELUDE, filter);
	/*
	 * libjq 1.6 imports $HOME/.jq into every program it compiles: a
	 * file in root's home would change every message.  No HOME while
	 * compiling (one thread: nobody else reads it meanwhile).
	 */
	if ((home = getenv("HOME")) != NULL) {
		home = xstrdup(home);
		unsetenv("HOME");
	}
	f->compiling = 1;
	ok = jq_compile(f->jq, prog);
	f->compiling = 0;
	if (home != NULL) {
		setenv("HOME", home, 1);
		free(home);
	}
	free(prog);
	if (!ok) {
		if (cause != NULL)
			*cause = format_jq_cause(f->err);
		format_free(f);
		return (NULL);
	}
	free(f->err);
	f->err = NULL;
	for (i = 0; i < FORMAT_NKEYS; i++)
		f->keys[i] = jv_string(format_key_names[i]);
	return (f);
}

/* Free a format and its jq program; NULL is fine. */
void
format_free(struct format *f)
{
	int	i;

	if (f == NULL)
		return;
	if (f->jq != NULL) {
		jq_teardown(&f->jq);
		for (i = 0; i < FORMAT_NKEYS; i++)
			if (jv_is_valid(f->keys[i]))
				jv_free(f->keys[i]);
	}
	free(f->err);
	free(f);
}

/* Is this the natively rendered default format? */
int
format_is_default(const struct format *f)
{
	return (f->jq == NULL);
}

/* A new empty message for a format, which must outlive it; caller frees. */
struct format_buf *
format_buf_new(struct format *f)
{
	struct format_buf	*fb;

	fb = xcalloc(1, sizeof *fb);
	fb->fmt = f;
	return (fb);
}

/* Free a buffer and what it holds; NULL is fine. */
void
format_buf_free(struct format_buf *fb)
{
	struct format_block	*b;

	if (fb == NULL)
		return;
	json_free(fb->doc);
	format_reset_native(fb);
	while ((b = fb->arena) != NULL) {
		fb->arena = b->next;
		free(b);
	}
	free(fb->htab);
	free(fb->scratch.buf);
	free(fb);
}

/*
 * Run the record (borrowed) through the filter and merge the result.
 * FORMAT_FULL, with the buffer untouched, when limit is not 0 and the
 * message would grow beyond it (a record always fits an empty buffer);
 * FORMAT_ERROR with *cause (caller frees) when the filter fails on it.
 */
int
format_buf_add(struct format_buf *fb, const struct tag_rec *rec,
    size_t limit, char **cause)
{
	char	*why = NULL;
	int	 rc;

	if (fb->fmt->jq == NULL)
		return (format_add_native(fb, rec, limit));
	if ((rc = format_add_jq(fb, rec, limit, &why)) == FORMAT_ERROR &&
	    cause != NULL)
		*cause = why;
	else
		free(why);
	return (rc);
}

/* Exact length of the message the buffer would print now. */
size_t
format_buf_size(const struct format_buf *fb)
{
	return (fb->size);
}

/* Records merged since the buffer was last taken. */
size_t
format_buf_records(const struct format_buf *fb)
{
	return (fb->records);
}

/*
 * The message as compact JSON (caller frees; its length in *len) and an
 * empty buffer; NULL if nothing was merged.
 */
char *
format_buf_take(struct format_buf *fb, size_t *len)
{
	char	*text;
	size_t	 n;

	*len = 0;
	if (fb->records == 0)
		return (NULL);
	if (fb->fmt->jq == NULL)
		text = format_print_native(fb, &n);
	else {
		text = json_dump(fb->doc, &n);
		json_free(fb->doc);
		fb->doc = NULL;
	}
	if (n != fb->size)
		log_warnx("format: message is %zu bytes, %zu were counted; "
		    "please report this", n, fb->size);
	fb->size = 0;
	fb->records = 0;
	*len = n;
	return (text);
}

/* The message as a document (caller frees) and an empty buffer. */
struct json *
format_buf_take_json(struct format_buf *fb)
{
	struct json	*doc;
	char		*text, *cause = NULL;
	size_t		 len;

	if (fb->fmt->jq != NULL) {
		doc = fb->doc;
		fb->doc = NULL;
		fb->size = 0;
		fb->records = 0;
		return (doc);
	}
	if ((text = format_buf_take(fb, &len)) == NULL)
		return (NULL);
	if ((doc = json_parse(text, len, &cause)) == NULL)
		fatalx("format: native message does not parse: %s", cause);
	free(text);
	return (doc);
}

/*
 * Merge src (taken over) into *dst: objects key by key, new keys after
 * the old ones; arrays append; anything else replaces.
 */
void
format_merge(struct json **dst, struct json *src)
{
	if (src == NULL)
		return;
	if (*dst != NULL && format_merge_in(*dst, src))
		return;
	json_free(*dst);
	*dst = src;
}

/* Merge s into d in place when both are objects or both arrays (s taken). */
static int
format_merge_in(struct json *d, struct json *s)
{
	struct json	**vals, *c;
	char		**keys;
	size_t		  n, i;

	if (json_type(d) == JSON_OBJECT && json_type(s) == JSON_OBJECT) {
		/* Detach from the end: no member of s moves. */
		n = json_object_size(s);
		keys = xreallocarray(NULL, n + 1, sizeof *keys);
		vals = xreallocarray(NULL, n + 1, sizeof *vals);
		for (i = n; i-- > 0;) {
			keys[i] = xstrdup(json_object_key(s, i));
			vals[i] = json_take(s, keys[i]);
		}
		json_free(s);
		for (i = 0; i < n; i++) {
			c = json_get(d, keys[i]);
			if (c == NULL || !format_merge_in(c, vals[i]))
				json_set(d, keys[i], vals[i]);
			free(keys[i]);
		}
		free(keys);
		free(vals);
		return (1);
	}
	if (json_type(d) == JSON_ARRAY && json_type(s) == JSON_ARRAY) {
		n = json_array_size(s);
		vals = xreallocarray(NULL, n + 1, sizeof *vals);
		for (i = n; i-- > 0;)
			vals[i] = json_array_take(s, i);
		json_free(s);
		for (i = 0; i < n; i++)
			json_array_push(d, vals[i]);
		free(vals);
		return (1);
	}
	return (0);
}

/*
 * Collect jq's messages while a filter compiles (f->compiling); later ones
 * are only logged.  msg is taken.
 */
static void
format_jq_error_cb(void *arg, jv msg)
{
	struct format	*f = arg;
	char		*old;

	if (jv_get_kind(msg) != JV_KIND_STRING) {
		jv_free(msg);
		return;
	}
	if (!f->compiling)
		log_debug("format: %s", jv_string_value(msg));
	else if (f->err == NULL)
		f->err = xstrdup(jv_string_value(msg));
	else {
		old = f->err;
		xasprintf(&f->err, "%s\n%s", old, jv_string_value(msg));
		free(old);
	}
	jv_free(msg);
}

/*
 * One line from jq's compile messages (borrowed): "jq: error: " and the
 * quoted program dropped, the summary line skipped; caller frees.
 */
static char *
format_jq_cause(const char *err)
{
	struct format_out	 o;
	const char		*line, *end, *p;
	size_t			 len;
	char			*cause;

	memset(&o, 0, sizeof o);
	for (line = err; line != NULL && *line != '\0'; line = end) {
		if ((end = strchr(line, '\n')) == NULL)
			end = line + strlen(line);
		len = end - line;
		if (*end == '\n')
			end++;
		if (strncmp(line, "jq: error: ", 11) != 0)
			continue;	/* the program's text, the summary */
		p = line + 11;
		len -= 11;
		while (len > 0 && (p[len - 1] == ':' || isspace(
		    (unsigned char)p[len - 1])))
			len--;
		if (o.len > 0)
			format_out_add(&o, "; ", 2);
		format_out_add(&o, p, len);
	}
	if (o.len == 0)
		xasprintf(&cause, "format: jq: the filter does not compile");
	else
		xasprintf(&cause, "format: jq: %.*s", (int)o.len, o.buf);
	free(o.buf);
	return (cause);
}

/*
 * A value from tag_value_json() (borrowed) as jq would read its text;
 * the caller owns the result.
 */
static jv
format_value_jv(const struct json *j)
{
	switch (json_type(j)) {
	case JSON_BOOL:
		return (jv_bool(json_bool(j)));
	case JSON_NUMBER:
		return (jv_number(json_double(j)));
	case JSON_STRING:
		return (jv_string_sized(json_string(j), json_strlen(j)));
	default:
		return (jv_null());
	}
}

/* The record (borrowed) as jq sees it, ts in ms; the caller owns it. */
static jv
format_rec_jv(struct format *f, const struct tag_rec *rec)
{
	struct json	*val;
	jv		 r;

	val = tag_value_json(&rec->value);
	r = jv_object();
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_PRVD]),
	    jv_string(rec->prvd != NULL ? rec->prvd : ""));
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_SRC]),
	    jv_string(rec->src != NULL ? rec->src : ""));
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_NAME]),
	    jv_string(rec->name != NULL ? rec->name : ""));
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_TYPE]),
	    jv_string(tag_type_name(rec->value.type)));
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_VALUE]),
	    format_value_jv(val));
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_UNIT]),
	    jv_string(rec->unit != NULL ? rec->unit : ""));
	r = jv_object_set(r, jv_copy(f->keys[FORMAT_K_TS]),
	    jv_number((double)(rec->ts / 1000)));
	json_free(val);
	return (r);
}

/*
 * A jq output (taken) as a document the caller owns; numbers keep jq's
 * text.  NULL with *cause for what a message cannot hold.
 */
static struct json *
format_jv_json(jv v, int depth, char **cause)
{
	struct json	*j = NULL, *c;
	jv		 k, e, s;
	int		 i, n;

	if (depth > JSON_MAX_DEPTH && (jv_get_kind(v) == JV_KIND_ARRAY ||
	    jv_get_kind(v) == JV_KIND_OBJECT)) {
		xasprintf(cause, "format: output nested deeper than %d levels",
		    JSON_MAX_DEPTH);
		jv_free(v);
		return (NULL);
	}
	switch (jv_get_kind(v)) {
	case JV_KIND_TRUE:
		j = json_new_bool(1);
		break;
	case JV_KIND_FALSE:
		j = json_new_bool(0);
		break;
	case JV_KIND_NUMBER:
		if (isnan(jv_number_value(v))) {
			j = json_new_null();
			break;
		}
		s = jv_dump_string(jv_copy(v), 0);
		j = json_new_number(jv_string_value(s));
		jv_free(s);
		break;
	case JV_KIND_STRING:
		j = json_new_stringn(jv_string_value(v),
		    jv_string_length_bytes(jv_copy(v)));
		break;
	case JV_KIND_ARRAY:
		j = json_new_array();
		n = jv_array_length(jv_copy(v));
		for (i = 0; i < n; i++) {
			e = jv_array_get(jv_copy(v), i);
			if ((c = format_jv_json(e, depth + 1, cause)) == NULL) {
				json_free(j);
				j = NULL;
				break;
			}
			json_array_push(j, c);
		}
		break;
	case JV_KIND_OBJECT:
		j = json_new_object();
		for (i = jv_object_iter(v); jv_object_iter_valid(v, i);
		    i = jv_object_iter_next(v, i)) {
			k = jv_object_iter_key(v, i);
			if (memchr(jv_string_value(k), '\0',
			    jv_string_length_bytes(jv_copy(k))) != NULL) {
				xasprintf(cause, "format: output has an "
				    "object key with a NUL character");
				jv_free(k);
				json_free(j);
				j = NULL;
				break;
			}
			e = jv_object_iter_value(v, i);
			if ((c = format_jv_json(e, depth + 1, cause)) == NULL) {
				jv_free(k);
				json_free(j);
				j = NULL;
				break;
			}
			json_set(j, jv_string_value(k), c);
			jv_free(k);
		}
		break;
	default:
		j = json_new_null();
		break;
	}
	jv_free(v);
	return (j);
}

/* The message of a jq error (taken) as a cause; caller frees. */
static char *
format_jv_cause(jv msg)
{
	char	*cause;
	size_t	 len;
	jv	 s;

	if (jv_get_kind(msg) == JV_KIND_STRING) {
		len = strlen(jv_string_value(msg));
		while (len > 0 && isspace((unsigned char)
		    jv_string_value(msg)[len - 1]))
			len--;
		xasprintf(&cause, "format: jq: %.*s", (int)len,
		    jv_string_value(msg));
	} else {
		s = jv_dump_string(jv_copy(msg), 0);
		xasprintf(&cause, "format: jq: error (not a string): %s",
		    jv_string_value(s));
		jv_free(s);
	}
	jv_free(msg);
	return (cause);
}

/* format_buf_add() through libjq. */
static int
format_add_jq(struct format_buf *fb, const struct tag_rec *rec,
    size_t limit, char **cause)
{
	jq_state	 *jq = fb->fmt->jq;
	struct json	**outs = NULL, *j;
	size_t		  n = 0, cap = 0, i;
	int64_t		  delta;
	int		  rc = FORMAT_ERROR;
	jv		  v, msg;

	jq_start(jq, format_rec_jv(fb->fmt, rec), 0);
	while (jv_is_valid(v = jq_next(jq))) {
		if (n == FORMAT_MAX_OUTPUTS) {
			jv_free(v);
			xasprintf(cause, "format: more than %d outputs for "
			    "one record", FORMAT_MAX_OUTPUTS);
			goto out;
		}
		if ((j = format_jv_json(v, 1, cause)) == NULL)
			goto out;
		if (n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			outs = xreallocarray(outs, cap, sizeof *outs);
		}
		outs[n++] = j;
	}
	if (jv_invalid_has_msg(jv_copy(v))) {
		*cause = format_jv_cause(jv_invalid_get_msg(v));
		goto out;
	}
	jv_free(v);
	if (jq_halted(jq)) {
		msg = jq_get_error_message(jq);
		if (jv_is_valid(msg)) {
			*cause = format_jv_cause(msg);
			goto out;
		}
		jv_free(msg);
	}

	rc = FORMAT_OK;
	if (n == 0)
		goto out;
	if (fb->doc == NULL)
		delta = format_jsize(outs[0]) + format_delta(outs[0],
		    outs + 1, n - 1);
	else
		delta = format_delta(fb->doc, outs, n);
	if (limit != 0 && fb->records > 0 &&
	    (int64_t)fb->size + delta > (int64_t)limit) {
		rc = FORMAT_FULL;
		goto out;
	}
	for (i = 0; i < n; i++)
		format_merge(&fb->doc, outs[i]);
	n = 0;
	fb->size += delta;
	fb->records++;
out:
	for (i = 0; i < n; i++)
		json_free(outs[i]);
	free(outs);
	return (rc);
}

/* Length of s as yajl prints it, quotes included. */
static size_t
format_esc_len(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = len + 2, i;

	for (i = 0; i < len; i++) {
		switch (p[i]) {
		case '"':
		case '\\':
		case '\b':
		case '\f':
		case '\n':
		case '\r':
		case '\t':
			n += 1;
			break;
		default:
			if (p[i] < 0x20)
				n += 5;
			break;
		}
	}
	return (n);
}

/* Length of json_dump() of a document (borrowed). */
static size_t
format_jsize(const struct json *j)
{
	size_t	n, i, k;

	switch (json_type(j)) {
	case JSON_NULL:
		return (4);
	case JSON_BOOL:
		return (json_bool(j) ? 4 : 5);
	case JSON_NUMBER:
		return (strlen(json_number_text(j)));
	case JSON_STRING:
		return (format_esc_len(json_string(j), json_strlen(j)));
	case JSON_ARRAY:
		k = json_array_size(j);
		n = 2 + (k > 0 ? k - 1 : 0);
		for (i = 0; i < k; i++)
			n += format_jsize(json_array_get(j, i));
		return (n);
	case JSON_OBJECT:
		k = json_object_size(j);
		n = 2 + (k > 0 ? k - 1 : 0);
		for (i = 0; i < k; i++) {
			n += format_esc_len(json_object_key(j, i),
			    strlen(json_object_key(j, i))) + 1;
			n += format_jsize(json_object_value(j, i));
		}
		return (n);
	}
	return (0);
}

/*
 * How much the print of base (borrowed) grows when v[0..n) are merged
 * into it in turn; nothing is changed.  After the last value that
 * replaces rather than merges, only the values from it on count.
 */
static int64_t
format_delta(const struct json *base, struct json *const *v, size_t n)
{
	enum json_type	 kind = json_type(base), t;
	size_t		 i, k, m, r = n, cnt;
	int64_t		 d = 0;

	if (n == 0)
		return (0);
	for (i = 0; i < n; i++) {
		t = json_type(v[i]);
		if (t == kind && (t == JSON_OBJECT || t == JSON_ARRAY))
			continue;
		kind = t;
		r = i;
	}
	if (r != n)
		return ((int64_t)format_jsize(v[r]) +
		    format_delta(v[r], v + r + 1, n - r - 1) -
		    (int64_t)format_jsize(base));
	if (kind == JSON_OBJECT)
		return (format_delta_obj(base, v, n));
	/* Arrays: every element appended after a comma, but the first. */
	cnt = json_array_size(base);
	for (i = 0; i < n; i++) {
		m = json_array_size(v[i]);
		for (k = 0; k < m; k++) {
			d += format_jsize(json_array_get(v[i], k)) +
			    (cnt > 0 ? 1 : 0);
			cnt++;
		}
	}
	return (d);
}

/*
 * format_delta() for objects merged into an object base: each key counts
 * once, where it first appears, with the values it gets in turn.  Keys
 * are grouped through an index object, so many outputs cost no more
 * than their members.
 */
static int64_t
format_delta_obj(const struct json *base, struct json *const *v, size_t n)
{
	struct format_group {
		const char	 *key;
		struct json	 *first;
		struct json	**vals;		/* &first, or allocated */
		size_t		  n;
		size_t		  cap;
	}		*g, *gp;
	struct json	*index = NULL, *x;
	const struct json *b;
	size_t		 i, j, m, ng = 0, cnt, total = 0;
	int64_t		 d = 0;

	for (i = 0; i < n; i++)
		total += json_object_size(v[i]);
	g = xreallocarray(NULL, total + 1, sizeof *g);
	if (n > 1)
		index = json_new_object();
	for (i = 0; i < n; i++) {
		m = json_object_size(v[i]);
		for (j = 0; j < m; j++) {
			x = n > 1 ? json_get(index, json_object_key(v[i], j)) :
			    NULL;
			if (x == NULL) {
				gp = &g[ng];
				gp->key = json_object_key(v[i], j);
				gp->first = json_object_value(v[i], j);
				gp->vals = &gp->first;
				gp->n = gp->cap = 1;
				if (n > 1)
					json_set(index, gp->key,
					    json_new_uint(ng));
				ng++;
				continue;
			}
			gp = &g[json_uint(x)];
			if (gp->n == gp->cap) {
				gp->cap *= 2;
				if (gp->vals == &gp->first) {
					gp->vals = xreallocarray(NULL, gp->cap,
					    sizeof *gp->vals);
					gp->vals[0] = gp->first;
				} else
					gp->vals = xreallocarray(gp->vals,
					    gp->cap, sizeof *gp->vals);
			}
			gp->vals[gp->n++] = json_object_value(v[i], j);
		}
	}
	cnt = json_object_size(base);
	for (i = 0; i < ng; i++) {
		gp = &g[i];
		if ((b = json_get(base, gp->key)) != NULL)
			d += format_delta(b, gp->vals, gp->n);
		else {
			d += (cnt++ > 0 ? 1 : 0) + format_esc_len(gp->key,
			    strlen(gp->key)) + 1 + format_jsize(gp->vals[0]) +
			    format_delta(gp->vals[0], gp->vals + 1, gp->n - 1);
		}
		if (gp->vals != &gp->first)
			free(gp->vals);
	}
	json_free(index);
	free(g);
	return (d);
}

/* n bytes from the buffer's arena, freed when the buffer is reset. */
static void *
format_alloc(struct format_buf *fb, size_t n)
{
	struct format_block	*b;
	size_t			 size;
	void			*p;

	n = (n + 7) & ~(size_t)7;
	b = fb->arena;
	if (b == NULL || b->size - b->used < n) {
		size = n > FORMAT_BLOCK / 4 ? n : FORMAT_BLOCK;
		b = xmalloc(sizeof *b + size);
		b->used = 0;
		b->size = size;
		if (size != FORMAT_BLOCK && fb->arena != NULL) {
			/* A big piece of its own: keep filling the head. */
			b->next = fb->arena->next;
			fb->arena->next = b;
		} else {
			b->next = fb->arena;
			fb->arena = b;
		}
	}
	p = b->data + b->used;
	b->used += n;
	return (p);
}

/* A hash of a key under an owner, 8 bytes a step. */
static uint32_t
format_hash(const void *owner, const char *key, size_t len)
{
	uint64_t	h = (uintptr_t)owner ^ len, w;
	size_t		i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	for (w = 0; i < len; i++)
		w = w << 8 | (unsigned char)key[i];
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	return ((uint32_t)(h ^ h >> 32));
}

/* The node of a key (borrowed) under owner; NULL if there is none. */
static struct format_node *
format_find(struct format_buf *fb, const void *owner, const char *key,
    size_t len, uint32_t h)
{
	struct format_hent	*he;

	if (fb->htab == NULL)
		return (NULL);
	for (he = fb->htab[h & (fb->hcap - 1)]; he != NULL; he = he->next)
		if (he->hash == h && he->owner == owner && he->len == len &&
		    memcmp(he->key, key, len) == 0)
			return (he->node);
	return (NULL);
}

/* File a node under a key (copied) and owner; in the buffer's arena. */
static void
format_put(struct format_buf *fb, const void *owner, const char *key,
    size_t len, uint32_t h, struct format_node *node)
{
	struct format_hent	*he, *next, **ntab;
	size_t			 i, cap;

	if (fb->nhent >= fb->hcap) {
		cap = fb->hcap == 0 ? FORMAT_HASH_MIN : fb->hcap * 2;
		ntab = xcalloc(cap, sizeof *ntab);
		for (i = 0; i < fb->hcap; i++) {
			for (he = fb->htab[i]; he != NULL; he = next) {
				next = he->next;
				he->next = ntab[he->hash & (cap - 1)];
				ntab[he->hash & (cap - 1)] = he;
			}
		}
		free(fb->htab);
		fb->htab = ntab;
		fb->hcap = cap;
	}
	he = format_alloc(fb, sizeof *he + len);
	he->owner = owner;
	he->node = node;
	he->hash = h;
	he->len = len;
	memcpy(he->key, key, len);
	he->next = fb->htab[h & (fb->hcap - 1)];
	fb->htab[h & (fb->hcap - 1)] = he;
	fb->nhent++;
	if (node->key == NULL) {
		node->key = he->key;
		node->klen = len;
	}
}

/*
 * A new last child of parent (NULL: a provider), filed under its key and
 * that key's hash; owned by the buffer.
 */
static struct format_node *
format_node_new(struct format_buf *fb, struct format_node *parent,
    const char *key, size_t len, uint32_t h)
{
	struct format_node	*n;

	n = format_alloc(fb, sizeof *n);
	memset(n, 0, sizeof *n);
	format_put(fb, parent, key, len, h, n);
	if (parent == NULL) {
		if (fb->provlast != NULL)
			fb->provlast->sibling = n;
		else
			fb->prov = n;
		fb->provlast = n;
	} else {
		if (parent->last != NULL)
			parent->last->sibling = n;
		else
			parent->child = n;
		parent->last = n;
	}
	return (n);
}

/*
 * format_buf_add() for the default format.  The names as the record
 * gives them, joined, find a tag met before (filed under the buffer as
 * owner), and provider and source alone its source (under &fb->prov).
 * Failing that, they are printed, and the printed keys (what the message
 * shows: bad UTF-8 that jq repairs the same way is one key) find or make
 * provider, source and tag; the names are filed when they meet a second
 * time.  The entry is printed once; the growth of the message follows
 * from which of provider, source and tag are new.
 */
static int
format_add_native(struct format_buf *fb, const struct tag_rec *rec,
    size_t limit)
{
	struct format_out	*o = &fb->scratch;
	struct format_node	*p = NULL, *s = NULL, *t = NULL;
	struct format_ent	*e;
	const char		*names[3];
	size_t			 len[3], k0, ks, k1, k2, k3, elen, tag, delta;
	uint32_t		 h = 0, hsa = 0, hp = 0, hs = 0, ht = 0;
	int			 i;

	names[0] = rec->prvd;
	names[1] = rec->src;
	names[2] = rec->name;
	o->len = 0;
	for (i = 0; i < 3; i++) {
		if (names[i] == NULL)
			names[i] = "";
		len[i] = strlen(names[i]);
		format_out_add(o, names[i], len[i] + 1);
	}
	k0 = k1 = k2 = o->len;
	ks = len[0] + len[1] + 2;
	if (fb->prov != NULL) {
		h = format_hash(fb, o->buf, k0);
		t = format_find(fb, fb, o->buf, k0, h);
	}
	if (t == NULL) {
		if (fb->prov != NULL) {
			hsa = format_hash(&fb->prov, o->buf, ks);
			s = format_find(fb, &fb->prov, o->buf, ks, hsa);
		}
		if (s == NULL) {
			format_out_str(o, names[0], len[0]);
			k1 = o->len;
			format_out_str(o, names[1], len[1]);
			k2 = o->len;
			hp = format_hash(NULL, o->buf + k0, k1 - k0);
			p = fb->prov != NULL ? format_find(fb, NULL, o->buf +
			    k0, k1 - k0, hp) : NULL;
			if (p != NULL) {
				hs = format_hash(p, o->buf + k1, k2 - k1);
				s = format_find(fb, p, o->buf + k1, k2 - k1,
				    hs);
			}
			if (s != NULL)
				format_put(fb, &fb->prov, o->buf, ks, hsa, s);
		}
		format_out_str(o, names[2], len[2]);
		if (s != NULL) {
			ht = format_hash(s, o->buf + k2, o->len - k2);
			t = format_find(fb, s, o->buf + k2, o->len - k2, ht);
			if (t != NULL)
				format_put(fb, fb, o->buf, k0, h, t);
		}
	}
	k3 = o->len;
	format_out_add(o, FORMAT_ENT_TS, FORMAT_LEN(FORMAT_ENT_TS));
	format_out_date(fb, o, rec->ts);
	format_out_add(o, FORMAT_ENT_VAL, FORMAT_LEN(FORMAT_ENT_VAL));
	format_out_value(o, &rec->value);
	format_out_add(o, "}", 1);
	elen = o->len - k3;

	/* Under "prvd":{"src":{...}}: "tag":{"values":[entry,...]}. */
	tag = (k3 - k2) + 1 + FORMAT_LEN(FORMAT_VALUES) + elen +
	    FORMAT_LEN(FORMAT_VEND);
	if (t != NULL)
		delta = 1 + elen;
	else if (s != NULL)
		delta = 1 + tag;
	else if (p != NULL)
		delta = 1 + (k2 - k1) + 3 + tag;
	else
		delta = (fb->prov != NULL ? 1 : FORMAT_LEN(FORMAT_HEAD) +
		    FORMAT_LEN(FORMAT_TAIL)) + (k1 - k0) + 3 + (k2 - k1) + 3 +
		    tag;
	if (limit != 0 && fb->records > 0 && fb->size + delta > limit)
		return (FORMAT_FULL);

	if (t == NULL) {
		if (s == NULL) {
			if (p == NULL) {
				p = format_node_new(fb, NULL, o->buf + k0,
				    k1 - k0, hp);
				hs = format_hash(p, o->buf + k1, k2 - k1);
			}
			s = format_node_new(fb, p, o->buf + k1, k2 - k1, hs);
			ht = format_hash(s, o->buf + k2, k3 - k2);
		}
		t = format_node_new(fb, s, o->buf + k2, k3 - k2, ht);
	}
	e = format_alloc(fb, sizeof *e + elen);
	e->next = NULL;
	e->len = elen;
	memcpy(e->text, o->buf + k3, elen);
	if (t->elast != NULL)
		t->elast->next = e;
	else
		t->efirst = e;
	t->elast = e;
	fb->size += delta;
	fb->records++;
	return (FORMAT_OK);
}

/* Lay out the native message (caller frees) and empty the buffer. */
static char *
format_print_native(struct format_buf *fb, size_t *len)
{
	struct format_out	 o;
	struct format_node	*p, *s, *t;
	struct format_ent	*e;

	memset(&o, 0, sizeof o);
	format_out_need(&o, fb->size + 1);
	format_out_add(&o, FORMAT_HEAD, FORMAT_LEN(FORMAT_HEAD));
	for (p = fb->prov; p != NULL; p = p->sibling) {
		if (p != fb->prov)
			format_out_add(&o, ",", 1);
		format_out_add(&o, p->key, p->klen);
		format_out_add(&o, ":{", 2);
		for (s = p->child; s != NULL; s = s->sibling) {
			if (s != p->child)
				format_out_add(&o, ",", 1);
			format_out_add(&o, s->key, s->klen);
			format_out_add(&o, ":{", 2);
			for (t = s->child; t != NULL; t = t->sibling) {
				if (t != s->child)
					format_out_add(&o, ",", 1);
				format_out_add(&o, t->key, t->klen);
				format_out_add(&o, ":", 1);
				format_out_add(&o, FORMAT_VALUES,
				    FORMAT_LEN(FORMAT_VALUES));
				for (e = t->efirst; e != NULL; e = e->next) {
					if (e != t->efirst)
						format_out_add(&o, ",", 1);
					format_out_add(&o, e->text, e->len);
				}
				format_out_add(&o, FORMAT_VEND,
				    FORMAT_LEN(FORMAT_VEND));
			}
			format_out_add(&o, "}", 1);
		}
		format_out_add(&o, "}", 1);
	}
	format_out_add(&o, FORMAT_TAIL, FORMAT_LEN(FORMAT_TAIL));
	format_out_add(&o, "", 1);
	*len = o.len - 1;
	format_reset_native(fb);
	return (o.buf);
}

/* Forget every provider, source, tag and entry; keep one arena block. */
static void
format_reset_native(struct format_buf *fb)
{
	struct format_block	*b, *keep = NULL;

	while ((b = fb->arena) != NULL) {
		fb->arena = b->next;
		if (keep == NULL && b->size == FORMAT_BLOCK) {
			keep = b;
			continue;
		}
		free(b);
	}
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
	}
	fb->arena = keep;
	if (fb->htab != NULL)
		memset(fb->htab, 0, fb->hcap * sizeof *fb->htab);
	fb->nhent = 0;
	fb->prov = fb->provlast = NULL;
}

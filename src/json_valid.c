/* SPDX-License-Identifier: ISC */
/*
 * The request validator: one table per resource gives each field its type,
 * whether it is required or read-only, its range or length, its enum and
 * its default.  json_validate() edits the document in place (defaults
 * filled, read-only and unknown members dropped) and stops at the first
 * rule broken, with a message naming the field path and the rule.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "xmalloc.h"

static size_t	json_valid_utf8len(const char *, size_t);
static char	*json_valid_path(const char *, const char *);
static char	*json_valid_enums(const char *const *);
static int	json_valid_settable(const struct json_field *, const char *);
static struct json *json_valid_enum_text(const struct json *,
		    const struct json_field *);
static void	json_valid_enum_array(struct json *, const struct json_field *);
static int	json_valid_object(struct json *, const struct json_field *,
		    const char *, char **);

/* Characters (code points) in a UTF-8 string already known to be valid. */
static size_t
json_valid_utf8len(const char *s, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return (n);
}

/* "prefix.name" or "name"; caller frees. */
static char *
json_valid_path(const char *prefix, const char *name)
{
	char	*p;

	if (prefix == NULL || *prefix == '\0')
		return (xstrdup(name));
	if (*name == '[')
		xasprintf(&p, "%s%s", prefix, name);
	else
		xasprintf(&p, "%s.%s", prefix, name);
	return (p);
}

/* "a, b, c"; caller frees. */
static char *
json_valid_enums(const char *const *e)
{
	char	*s = NULL, *t;

	for (; *e != NULL; e++) {
		if (s == NULL)
			s = xstrdup(*e);
		else {
			xasprintf(&t, "%s, %s", s, *e);
			free(s);
			s = t;
		}
	}
	return (s == NULL ? xstrdup("") : s);
}

/* Is key a field of the table that clients may set? */
static int
json_valid_settable(const struct json_field *fields, const char *key)
{
	const struct json_field	*f;

	for (f = fields; f->name != NULL; f++)
		if (strcmp(f->name, key) == 0)
			return (!(f->flags & JF_READONLY));
	return (0);
}

/*
 * An enum given as a number (protocolVersion 3.1) stands for its text:
 * the string that replaces it (caller owns it), or NULL if v needs no
 * replacing.
 */
static struct json *
json_valid_enum_text(const struct json *v, const struct json_field *f)
{
	if (f->type != JF_ENUM || json_type(v) != JSON_NUMBER)
		return (NULL);
	return (json_new_string(json_number_text(v)));
}

/* Replace the numeric enums of a checked array by their text. */
static void
json_valid_enum_array(struct json *a, const struct json_field *f)
{
	struct json	*tmp, *v, *e;
	size_t		 i, n = json_array_size(a);

	if (f->type != JF_ENUM)
		return;
	for (i = 0; i < n; i++)
		if (json_type(json_array_get(a, i)) == JSON_NUMBER)
			break;
	if (i == n)
		return;
	/* Taking from the end is O(1); doing it twice keeps the order. */
	tmp = json_new_array();
	while ((n = json_array_size(a)) > 0)
		json_array_push(tmp, json_array_take(a, n - 1));
	while ((n = json_array_size(tmp)) > 0) {
		v = json_array_take(tmp, n - 1);
		if ((e = json_valid_enum_text(v, f)) != NULL) {
			json_free(v);
			v = e;
		}
		json_array_push(a, v);
	}
	json_free(tmp);
}

/*
 * Check one value v against field f; path names it in messages.  An enum
 * given as a number is replaced by its text where v is a member or an
 * element of what is checked (the caller of a lone value does it).
 */
int
json_validate_value(struct json *v, const struct json_field *f,
    const char *path, char **cause)
{
	enum json_type		 t = json_type(v);
	const char *const	*en;
	const char		*s;
	char			*list, *sub, idx[32];
	struct json		*e;
	size_t			 i, n;
	int64_t			 iv, lo, hi;
	double			 dv;

	if (t == JSON_NULL && (f->flags & JF_NULLABLE))
		return (0);
	switch (f->type) {
	case JF_BOOL:
		if (t != JSON_BOOL)
			goto wrongtype;
		break;
	case JF_INT:
		if (t != JSON_NUMBER)
			goto wrongtype;
		if (!json_is_int(v) &&
		    strpbrk(json_number_text(v), ".eE") != NULL) {
			xasprintf(cause, "%s: must be a whole number", path);
			return (-1);
		}
		/* An integer beyond int64 is out of any range. */
		lo = f->min;
		hi = f->max;
		if (lo == 0 && hi == 0) {
			lo = INT64_MIN;
			hi = INT64_MAX;
		}
		iv = json_int(v);
		if (!json_is_int(v) || iv < lo || iv > hi) {
			xasprintf(cause, "%s: must be an integer from %" PRId64
			    " to %" PRId64 ", not %s", path, lo, hi,
			    json_number_text(v));
			return (-1);
		}
		break;
	case JF_NUMBER:
		if (t != JSON_NUMBER)
			goto wrongtype;
		dv = json_double(v);
		if ((f->min != 0 || f->max != 0) &&
		    (dv < f->min || dv > f->max)) {
			xasprintf(cause, "%s: must be a number from %" PRId64
			    " to %" PRId64 ", not %s", path, f->min, f->max,
			    json_number_text(v));
			return (-1);
		}
		break;
	case JF_STRING:
		if (t != JSON_STRING)
			goto wrongtype;
		n = json_valid_utf8len(json_string(v), json_strlen(v));
		if ((f->min != 0 || f->max != 0) &&
		    (n < (size_t)f->min || n > (size_t)f->max)) {
			if (f->min == f->max)
				xasprintf(cause, "%s: must be %" PRId64
				    " characters long", path, f->min);
			else if (f->min == 0)
				xasprintf(cause, "%s: must be at most %" PRId64
				    " characters long", path, f->max);
			else
				xasprintf(cause, "%s: must be %" PRId64 " to %"
				    PRId64 " characters long", path, f->min,
				    f->max);
			return (-1);
		}
		if (strlen(json_string(v)) != json_strlen(v)) {
			xasprintf(cause, "%s: must not contain NUL characters",
			    path);
			return (-1);
		}
		break;
	case JF_ENUM:
		if (t == JSON_NUMBER)
			s = json_number_text(v);
		else if (t == JSON_STRING)
			s = json_string(v);
		else
			goto wrongtype;
		for (en = f->enums; *en != NULL; en++)
			if (strcmp(*en, s) == 0)
				break;
		if (*en == NULL) {
			list = json_valid_enums(f->enums);
			xasprintf(cause, "%s: must be one of %s, not \"%s\"",
			    path, list, s);
			free(list);
			return (-1);
		}
		break;
	case JF_OBJECT:
		if (t != JSON_OBJECT)
			goto wrongtype;
		if (f->sub != NULL &&
		    json_valid_object(v, f->sub, path, cause) != 0)
			return (-1);
		break;
	case JF_MAP:
		if (t != JSON_OBJECT)
			goto wrongtype;
		if ((f->min != 0 || f->max != 0) &&
		    (json_object_size(v) < (size_t)f->min ||
		    json_object_size(v) > (size_t)f->max)) {
			xasprintf(cause, "%s: must have %" PRId64 " to %" PRId64
			    " members", path, f->min, f->max);
			return (-1);
		}
		for (i = 0; f->sub != NULL && i < json_object_size(v); i++) {
			sub = json_valid_path(path, json_object_key(v, i));
			if (json_validate_value(json_object_value(v, i), f->sub,
			    sub, cause) != 0) {
				free(sub);
				return (-1);
			}
			free(sub);
			e = json_valid_enum_text(json_object_value(v, i),
			    f->sub);
			if (e != NULL)
				json_set(v, json_object_key(v, i), e);
		}
		break;
	case JF_ARRAY:
		if (t != JSON_ARRAY)
			goto wrongtype;
		n = json_array_size(v);
		if ((f->min != 0 || f->max != 0) &&
		    (n < (size_t)f->min || n > (size_t)f->max)) {
			xasprintf(cause, "%s: must have %" PRId64 " to %" PRId64
			    " elements", path, f->min, f->max);
			return (-1);
		}
		for (i = 0; f->sub != NULL && i < n; i++) {
			snprintf(idx, sizeof idx, "[%zu]", i);
			sub = json_valid_path(path, idx);
			if (json_validate_value(json_array_get(v, i), f->sub,
			    sub, cause) != 0) {
				free(sub);
				return (-1);
			}
			free(sub);
		}
		if (f->sub != NULL)
			json_valid_enum_array(v, f->sub);
		break;
	case JF_ANY:
		break;
	}
	if (f->check != NULL)
		return (f->check(v, path, cause));
	return (0);

wrongtype:
	xasprintf(cause, "%s: must be %s, not %s", path,
	    f->type == JF_BOOL ? "a boolean" :
	    f->type == JF_INT ? "an integer" :
	    f->type == JF_NUMBER ? "a number" :
	    f->type == JF_STRING || f->type == JF_ENUM ? "a string" :
	    f->type == JF_ARRAY ? "an array" : "an object",
	    json_type_name(t));
	return (-1);
}

/* Does a table have a required member (so an empty object is invalid)? */
static int
json_valid_needs(const struct json_field *fields)
{
	const struct json_field	*f;

	for (f = fields; f->name != NULL; f++)
		if ((f->flags & JF_REQUIRED) && f->def == NULL)
			return (1);
	return (0);
}

/* Check an object's members against a field table, editing it in place. */
static int
json_valid_object(struct json *o, const struct json_field *fields,
    const char *prefix, char **cause)
{
	const struct json_field	*f;
	struct json		*v, *def, *keep, *text;
	const char		*key;
	char			*path, *why;
	size_t			 i, n;

	/*
	 * Drop what the table does not know and what clients may not set.
	 * Members are not deleted one by one from the middle (each costs
	 * O(n)): the ones to keep are copied aside, the object is emptied
	 * from its end and refilled, so that a hostile document with many
	 * unknown members costs O(n).
	 */
	n = json_object_size(o);
	for (i = 0; i < n; i++)
		if (!json_valid_settable(fields, json_object_key(o, i)))
			break;
	if (i < n) {
		keep = json_new_object();
		for (i = 0; i < n; i++) {
			key = json_object_key(o, i);
			if (json_valid_settable(fields, key))
				json_set(keep, key,
				    json_copy(json_object_value(o, i)));
			else
				log_debug("validate: dropped %s%s%s",
				    prefix != NULL ? prefix : "",
				    prefix != NULL && *prefix != '\0' ?
				    "." : "", key);
		}
		while ((n = json_object_size(o)) > 0)
			json_del(o, json_object_key(o, n - 1));
		for (i = 0; i < json_object_size(keep); i++)
			json_set(o, json_object_key(keep, i),
			    json_copy(json_object_value(keep, i)));
		json_free(keep);
	}

	for (f = fields; f->name != NULL; f++) {
		if (f->flags & JF_READONLY)
			continue;
		path = json_valid_path(prefix, f->name);
		v = json_get(o, f->name);
		if (v == NULL && f->def != NULL) {
			if ((def = json_parse(f->def, strlen(f->def),
			    &why)) == NULL)
				fatalx("schema default of %s: %s", path, why);
			json_set(o, f->name, def);
			v = def;
		}
		if (v == NULL && f->type == JF_OBJECT && f->sub != NULL &&
		    !(f->flags & JF_REQUIRED) && !json_valid_needs(f->sub)) {
			/* An absent optional object gets its defaults. */
			v = json_new_object();
			json_set(o, f->name, v);
		}
		if (v == NULL) {
			if (f->flags & JF_REQUIRED) {
				xasprintf(cause, "%s: is required", path);
				free(path);
				return (-1);
			}
			free(path);
			continue;
		}
		if (json_validate_value(v, f, path, cause) != 0) {
			free(path);
			return (-1);
		}
		free(path);
		if ((text = json_valid_enum_text(v, f)) != NULL)
			json_set(o, f->name, text);
	}
	return (0);
}

/*
 * Form fields arrive as strings: turn those the table wants as booleans
 * or numbers into booleans or numbers (what does not parse stays a string
 * and fails validation with the usual message).  Recurses into objects.
 */
void
json_coerce_strings(struct json *o, const struct json_field *fields)
{
	const struct json_field	*f;
	struct json		*v;
	const char		*s;
	char			*end;

	if (json_type(o) != JSON_OBJECT)
		return;
	for (f = fields; f->name != NULL; f++) {
		if ((v = json_get(o, f->name)) == NULL)
			continue;
		if (f->type == JF_OBJECT && f->sub != NULL) {
			json_coerce_strings(v, f->sub);
			continue;
		}
		if ((s = json_string(v)) == NULL)
			continue;
		if (f->type == JF_BOOL && (strcmp(s, "true") == 0 ||
		    strcmp(s, "false") == 0))
			json_set(o, f->name, json_new_bool(*s == 't'));
		else if ((f->type == JF_INT || f->type == JF_NUMBER) &&
		    (*s == '-' || (*s >= '0' && *s <= '9')) &&
		    strspn(s, "-+.0123456789eE") == strlen(s)) {
			(void)strtod(s, &end);
			if (*end == '\0')
				json_set(o, f->name, json_new_number(s));
		}
	}
}

/*
 * Validate an object document against a field table: defaults filled,
 * read-only and unknown members dropped.  0, or -1 with *cause (caller
 * frees) naming the field and the rule.
 */
int
json_validate(struct json *doc, const struct json_field *fields,
    char **cause)
{
	if (json_type(doc) != JSON_OBJECT) {
		xasprintf(cause, "body: must be %s, not %s",
		    json_type_name(JSON_OBJECT),
		    json_type_name(json_type(doc)));
		return (-1);
	}
	return (json_valid_object(doc, fields, NULL, cause));
}

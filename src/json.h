/* SPDX-License-Identifier: ISC */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
};

struct json;

#define JSON_MAX_DEPTH	64

/* Parsing and printing. */
struct json	*json_parse(const void *, size_t, char **);
char		*json_dump(const struct json *, size_t *);
char		*json_dump_pretty(const struct json *, size_t *);

/* Construction; every json_new_* result is owned by the caller. */
struct json	*json_new_null(void);
struct json	*json_new_bool(int);
struct json	*json_new_int(int64_t);
struct json	*json_new_uint(uint64_t);
struct json	*json_new_double(double);
struct json	*json_new_number(const char *);
struct json	*json_new_string(const char *);
struct json	*json_new_stringn(const char *, size_t);
struct json	*json_new_stringf(const char *, ...)
		    __attribute__((__format__(__printf__, 1, 2)));
struct json	*json_new_array(void);
struct json	*json_new_object(void);
struct json	*json_copy(const struct json *);
void		 json_free(struct json *);

/* Inspection. */
enum json_type	 json_type(const struct json *);
const char	*json_type_name(enum json_type);
int		 json_is_int(const struct json *);
int		 json_is_uint(const struct json *);
int64_t		 json_int(const struct json *);
uint64_t	 json_uint(const struct json *);
double		 json_double(const struct json *);
const char	*json_number_text(const struct json *);
int		 json_bool(const struct json *);
const char	*json_string(const struct json *);
size_t		 json_strlen(const struct json *);
int		 json_equal(const struct json *, const struct json *);

/* Objects (member order is kept). */
size_t		 json_object_size(const struct json *);
const char	*json_object_key(const struct json *, size_t);
struct json	*json_object_value(const struct json *, size_t);
struct json	*json_get(const struct json *, const char *);
struct json	*json_get_path(const struct json *, const char *);
const char	*json_get_string(const struct json *, const char *);
void		 json_set(struct json *, const char *, struct json *);
struct json	*json_take(struct json *, const char *);
void		 json_del(struct json *, const char *);
void		 json_merge(struct json *, const struct json *);

/* Arrays. */
size_t		 json_array_size(const struct json *);
struct json	*json_array_get(const struct json *, size_t);
void		 json_array_push(struct json *, struct json *);
struct json	*json_array_take(struct json *, size_t);


/*
 * Table-driven validation of request documents (json_valid.c).  A schema
 * is an array of fields ended by one with a NULL name.
 */
enum json_ftype {
	JF_BOOL,
	JF_INT,		/* int64; min..max unless both are 0 */
	JF_NUMBER,	/* any number; min..max unless both are 0 */
	JF_STRING,	/* length in characters min..max unless both are 0 */
	JF_ENUM,	/* a string out of enums (a number is read as text) */
	JF_OBJECT,	/* members in sub */
	JF_MAP,		/* free-form object; each value checked against sub */
	JF_ARRAY,	/* elements checked against sub[0]; length min..max */
	JF_ANY
};

#define JF_REQUIRED	0x01	/* must be present (after defaults) */
#define JF_READONLY	0x02	/* accepted in requests and dropped */
#define JF_NULLABLE	0x04	/* null is allowed */

struct json_field {
	const char		 *name;
	enum json_ftype		  type;
	int			  flags;
	int64_t			  min;
	int64_t			  max;
	const char *const	 *enums;
	const char		 *def;		/* default, as JSON text */
	const struct json_field	 *sub;
	int			(*check)(struct json *, const char *,
				    char **);
};

int	json_validate(struct json *, const struct json_field *, char **);
void	json_coerce_strings(struct json *, const struct json_field *);
int	json_validate_value(struct json *, const struct json_field *,
	    const char *, char **);

#endif

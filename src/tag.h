/* SPDX-License-Identifier: ISC */
#ifndef TAG_H
#define TAG_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct json;

enum tag_type {
	TAG_UINT8,
	TAG_UINT16,
	TAG_UINT32,
	TAG_UINT64,
	TAG_INT8,
	TAG_INT16,
	TAG_INT32,
	TAG_INT64,
	TAG_FLOAT,
	TAG_DOUBLE,
	TAG_STRING,
	TAG_BOOLEAN,
	TAG_RAW,
	TAG_NTYPES
};

#define TAG_ACCESS_R	0x1
#define TAG_ACCESS_W	0x2

/* Where a tag's values come from. */
enum tag_origin {
	TAG_ORIGIN_REST,	/* POST /tags/publish over TCP */
	TAG_ORIGIN_UNIX,	/* POST /tags/publish over the unix socket */
	TAG_ORIGIN_MQTT,	/* local MQTT ingest */
	TAG_ORIGIN_SYSTEM,	/* the system provider */
	TAG_ORIGIN_VIRTUAL,	/* /tags/virtual */
	TAG_NORIGINS
};

/*
 * A value.  Integers keep 64 bits exactly (i for signed, u for unsigned
 * types); float values are held as the double nearest the float.  For
 * strings and raw bytes, s/len point at the bytes (borrowed).
 */
struct tag_value {
	enum tag_type	 type;
	union {
		int64_t	 i;
		uint64_t u;
		double	 d;
		int	 b;
	} n;
	const char	*s;
	uint32_t	 len;
};

/* A value as a subscriber sees it; everything borrowed for the call. */
struct tag_rec {
	uint32_t		 id;
	const char		*prvd;
	const char		*src;
	const char		*name;
	const char		*unit;
	struct tag_value	 value;
	int64_t			 ts;		/* microseconds */
};

/* One record to publish (names borrowed from the caller). */
struct tag_pub {
	const char		*prvd;
	const char		*src;
	const char		*name;
	const char		*unit;		/* NULL: keep the tag's */
	int			 has_type;	/* dataType was given */
	struct tag_value	 value;
	int64_t			 ts;		/* 0: now */
	struct tag		*tag;		/* found by tag_check() */
};

/* Kinds of JSON token a value can arrive as. */
enum tag_tok {
	TAG_TOK_NUMBER,
	TAG_TOK_STRING,
	TAG_TOK_BOOL,
	TAG_TOK_NULL,
	TAG_TOK_OTHER
};

struct tag;
struct tag_sub;

typedef void (*tag_cb)(const struct tag_rec *, void *);
/* Write a value to a tag's producer; 0, or -1 with *cause. */
typedef int (*tag_write_cb)(const struct tag_rec *, void *, char **);

void		 tag_init(struct event_base *);
void		 tag_free(void);

const char	*tag_type_name(enum tag_type);
int		 tag_type_parse(const char *, enum tag_type *);
const char	*tag_access_name(int);
int		 tag_access_parse(const char *);
int		 tag_value_parse(enum tag_type, enum tag_tok, const char *,
		    size_t, char *, struct tag_value *, char **);
int		 tag_value_from_json(const struct json *, enum tag_type,
		    struct tag_value *, char **, char **);
struct json	*tag_value_json(const struct tag_value *);
struct json	*tag_rec_json(const struct tag_rec *);

/* Publishing: all records are checked before any is applied. */
int		 tag_check(struct tag_pub *, size_t, size_t *, char **);
void		 tag_apply(const struct tag_pub *, size_t, enum tag_origin);
int		 tag_publish(struct tag_pub *, size_t, enum tag_origin,
		    char **);
void		 tag_rejected(size_t);

/* The fast path from JSON text (tag_ingest.c). */
int		 tag_ingest(const void *, size_t, size_t, enum tag_origin,
		    size_t *, int *, char **);

/* The registry. */
struct tag	*tag_find(const char *, const char *, const char *);
struct tag	*tag_define(const char *, const char *, const char *,
		    enum tag_type, const char *, int, uint32_t,
		    enum tag_origin);
void		 tag_undefine(struct tag *);
size_t		 tag_count(void);
struct tag *const *tag_source_tags(const char *, const char *, size_t *);
struct tag	**tag_all(size_t *);
int		 tag_get(const struct tag *, struct tag_rec *);
enum tag_type	 tag_get_type(const struct tag *);
int		 tag_get_access(const struct tag *);
enum tag_origin	 tag_get_origin(const struct tag *);
uint32_t	 tag_get_size(const struct tag *);
const char	*tag_get_prvd(const struct tag *);
const char	*tag_get_src(const struct tag *);
const char	*tag_get_name(const struct tag *);
const char	*tag_get_unit(const struct tag *);
struct json	*tag_def_json(const struct tag *);
void		 tag_set_writer(struct tag *, tag_write_cb, void *);
void		 tag_set_origin_writer(enum tag_origin, tag_write_cb, void *);
int		 tag_write(struct tag *, const struct tag_value *, char **);

/* Subscriptions: name NULL means every tag of the source. */
struct tag_sub	*tag_subscribe(const char *, const char *, const char *,
		    tag_cb, void *);
void		 tag_unsubscribe(struct tag_sub *);

#endif

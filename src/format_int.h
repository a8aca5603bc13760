/* SPDX-License-Identifier: ISC */
#ifndef FORMAT_INT_H
#define FORMAT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"

/*
 * Inside the format module only (format.c, format_print.c); not
 * installed.  The message buffer and the growable bytes its native path
 * prints into, and the jq-compatible printer (format_print.c) that
 * format.c lays the message out with.  Appending is inline: the layout
 * adds a few bytes at a time.
 */
struct format;
struct format_block;
struct format_hent;
struct format_node;
struct json;
struct tag_value;

/* Growable bytes. */
struct format_out {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

struct format_buf {
	struct format		*fmt;		/* borrowed */
	size_t			 size;
	size_t			 records;

	/* jq path. */
	struct json		*doc;

	/* Native path. */
	struct format_block	*arena;
	struct format_hent	**htab;
	size_t			 hcap;
	size_t			 nhent;
	struct format_node	*prov;
	struct format_node	*provlast;
	struct format_out	 scratch;
	int			 dvalid;
	time_t			 dsecs;
	char			 date[64];
	size_t			 dlen;
};

void		 format_out_str(struct format_out *, const char *, size_t);
void		 format_out_value(struct format_out *,
		    const struct tag_value *);
void		 format_out_date(struct format_buf *, struct format_out *,
		    int64_t);

/* Room for n more bytes. */
static inline void
format_out_need(struct format_out *o, size_t n)
{
	if (o->cap - o->len >= n)
		return;
	while (o->cap - o->len < n)
		o->cap = o->cap == 0 ? 256 : o->cap * 2;
	o->buf = xrealloc(o->buf, o->cap);
}

/* Append len bytes (borrowed). */
static inline void
format_out_add(struct format_out *o, const void *p, size_t len)
{
	format_out_need(o, len);
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

#endif

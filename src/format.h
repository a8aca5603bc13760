/* SPDX-License-Identifier: ISC */
#ifndef FORMAT_H
#define FORMAT_H

#include <stddef.h>

struct json;
struct tag_rec;

/*
 * Payload building (format.c).  A format is a group's filter, compiled
 * once: the empty filter is the vendor's default format, rendered
 * natively; anything else is a jq program run by libjq.  A format_buf is
 * a message under construction: each record goes through the filter on
 * its own and the result merges into the buffer (objects merge key by
 * key, later scalars override, arrays append).  The buffer always knows
 * the exact size of the message it would print.
 */
struct format;
struct format_buf;

#define FORMAT_OK	0
#define FORMAT_FULL	1	/* the record would overflow the limit */
#define FORMAT_ERROR	-1	/* the filter failed on the record */

struct format	*format_new(const char *, char **);
void		 format_free(struct format *);
int		 format_is_default(const struct format *);
const char	*format_default_filter(void);

struct format_buf *format_buf_new(struct format *);
void		 format_buf_free(struct format_buf *);
int		 format_buf_add(struct format_buf *, const struct tag_rec *,
		    size_t, char **);
size_t		 format_buf_size(const struct format_buf *);
size_t		 format_buf_records(const struct format_buf *);
char		*format_buf_take(struct format_buf *, size_t *);
struct json	*format_buf_take_json(struct format_buf *);

/* The per-record merge, exposed for tests and the twin engine. */
void		 format_merge(struct json **, struct json *);

#endif

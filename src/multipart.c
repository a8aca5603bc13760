/* SPDX-License-Identifier: ISC */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"
#include "multipart.h"

/*
 * A parser for multipart/form-data request bodies (RFC 7578 on top of
 * the RFC 2046 multipart syntax).  The whole body is in memory; the
 * parser walks it once and copies every part's data, so the result
 * does not borrow from the caller's buffer.
 *
 * The body is untrusted binary data: every read is bounded by the end
 * pointer, searches only move forward, and anything that does not fit
 * the grammar ends the parse with a reason in *cause.  The boundary is
 * at most 70 bytes and cannot contain CR, so the delimiter search is
 * linear in the length of the body.
 */

#define MULTIPART_MAX_BOUNDARY	70

/* Headers already seen in one part. */
#define MULTIPART_SEEN_DISPOSITION	0x1
#define MULTIPART_SEEN_TYPE		0x2

/* What follows a "--boundary" found in the body. */
enum multipart_delim {
	MULTIPART_DELIM_NONE,		/* not a delimiter: more data */
	MULTIPART_DELIM_PART,		/* another part follows */
	MULTIPART_DELIM_CLOSE,		/* the close delimiter */
	MULTIPART_DELIM_TRUNCATED,	/* the body ends inside the line */
	MULTIPART_DELIM_BARE_LF		/* the line ends in LF, not CRLF */
};

struct multipart {
	struct mp_part	*parts;
	size_t		 nparts;
};

static void	multipart_error(char **, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
static int	multipart_is_tchar(unsigned char);
static int	multipart_is_bchar(unsigned char);
static int	multipart_is_ctl(unsigned char);
static const char *multipart_skip_ows(const char *);
static int	multipart_param(const char **, char **, char **,
		    const char *, char **);
static char	*multipart_boundary(const char *, char **);
static const unsigned char *multipart_find(const unsigned char *,
		    const unsigned char *, const char *, size_t);
static enum multipart_delim multipart_delim(const unsigned char *,
		    const unsigned char *, const unsigned char **);
static int	multipart_bare_lf(const unsigned char *,
		    const unsigned char *, const char *, size_t);
static int	multipart_first(const unsigned char *, const unsigned char *,
		    const char *, size_t, const unsigned char **, char **);
static int	multipart_name_is(const unsigned char *, size_t,
		    const char *);
static int	multipart_disposition(struct mp_part *, size_t,
		    const char *, char **);
static int	multipart_header(struct mp_part *, size_t, int *,
		    const unsigned char *, const unsigned char *, char **);
static int	multipart_headers(struct mp_part *, size_t,
		    const unsigned char *, const unsigned char *,
		    const unsigned char **, char **);
static void	multipart_clear(struct mp_part *);

/* Set *cause to a new string (caller frees) unless cause is NULL. */
static void
multipart_error(char **cause, const char *fmt, ...)
{
	va_list	ap;

	if (cause == NULL)
		return;
	va_start(ap, fmt);
	xvasprintf(cause, fmt, ap);
	va_end(ap);
}

/* Is c a token character (RFC 9110 tchar)?  Borrows nothing. */
static int
multipart_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return (1);
	return (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Is c allowed in a boundary (RFC 2046 bchars)?  Borrows nothing. */
static int
multipart_is_bchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return (1);
	return (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

/* Is c a control character other than HT?  Borrows nothing. */
static int
multipart_is_ctl(unsigned char c)
{
	return ((c < 0x20 && c != '\t') || c == 0x7f);
}

/* Skip spaces and tabs; returns a pointer into the caller's string. */
static const char *
multipart_skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return (p);
}

/*
 * Read one ";name=value" parameter at *pp and advance *pp past it.
 * Returns 1 with *name and *value set (caller frees both), 0 at the end
 * of the string, or -1 with *cause set.  A quoted value may escape '"'
 * and '\' with a backslash; any other backslash is kept as it is, so a
 * Windows path sent without escaping survives.
 */
static int
multipart_param(const char **pp, char **name, char **value,
    const char *where, char **cause)
{
	const char	*p, *start;
	char		*buf;
	size_t		 n;

	*name = *value = NULL;
	p = multipart_skip_ows(*pp);
	if (*p == '\0')
		return (0);
	if (*p != ';') {
		multipart_error(cause, "multipart: %s: expected \";\" before "
		    "\"%.32s\"", where, p);
		return (-1);
	}
	p = multipart_skip_ows(p + 1);
	if (*p == '\0') {
		*pp = p;
		return (0);
	}

	for (start = p; multipart_is_tchar(*p); p++)
		/* nothing */;
	if (p == start) {
		multipart_error(cause, "multipart: %s: malformed parameter "
		    "\"%.32s\"", where, start);
		return (-1);
	}
	*name = xstrndup(start, p - start);

	p = multipart_skip_ows(p);
	if (*p != '=') {
		multipart_error(cause, "multipart: %s: parameter \"%s\" has "
		    "no value", where, *name);
		goto fail;
	}
	p = multipart_skip_ows(p + 1);

	if (*p != '"') {
		for (start = p; multipart_is_tchar(*p); p++)
			/* nothing */;
		if (p == start) {
			multipart_error(cause, "multipart: %s: parameter "
			    "\"%s\" has an empty or malformed value", where,
			    *name);
			goto fail;
		}
		*value = xstrndup(start, p - start);
		*pp = p;
		return (1);
	}

	p++;
	buf = xmalloc(strlen(p) + 1);
	n = 0;
	for (;;) {
		if (*p == '\0') {
			free(buf);
			multipart_error(cause, "multipart: %s: unterminated "
			    "quoted string in parameter \"%s\"", where, *name);
			goto fail;
		}
		if (*p == '"') {
			p++;
			break;
		}
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
			buf[n++] = p[1];
			p += 2;
			continue;
		}
		if (multipart_is_ctl(*p)) {
			free(buf);
			multipart_error(cause, "multipart: %s: control "
			    "character in parameter \"%s\"", where, *name);
			goto fail;
		}
		buf[n++] = *p++;
	}
	buf[n] = '\0';
	*value = buf;
	*pp = p;
	return (1);

fail:
	free(*name);
	*name = NULL;
	return (-1);
}

/*
 * Check that a Content-Type value is multipart/form-data and return
 * its boundary; caller frees.  Returns NULL with *cause set on error.
 */
static char *
multipart_boundary(const char *ct, char **cause)
{
	const char	*p, *start;
	char		*name, *value, *boundary = NULL;
	size_t		 len, i;
	int		 rc;

	if (ct == NULL) {
		multipart_error(cause, "multipart: no Content-Type");
		return (NULL);
	}

	p = multipart_skip_ows(ct);
	for (start = p; multipart_is_tchar(*p) || *p == '/'; p++)
		/* nothing */;
	len = p - start;
	if (len != strlen("multipart/form-data") ||
	    strncasecmp(start, "multipart/form-data", len) != 0) {
		multipart_error(cause, "multipart: Content-Type is \"%.*s\", "
		    "not multipart/form-data", (int)(len > 64 ? 64 : len),
		    start);
		return (NULL);
	}

	while ((rc = multipart_param(&p, &name, &value, "Content-Type",
	    cause)) == 1) {
		if (strcasecmp(name, "boundary") != 0) {
			free(name);
			free(value);
			continue;
		}
		free(name);
		if (boundary != NULL) {
			free(value);
			multipart_error(cause, "multipart: more than one "
			    "boundary parameter in Content-Type");
			goto fail;
		}
		boundary = value;
	}
	if (rc == -1)
		goto fail;

	if (boundary == NULL) {
		multipart_error(cause, "multipart: no boundary parameter in "
		    "Content-Type");
		return (NULL);
	}
	len = strlen(boundary);
	if (len == 0) {
		multipart_error(cause, "multipart: empty boundary in "
		    "Content-Type");
		goto fail;
	}
	if (len > MULTIPART_MAX_BOUNDARY) {
		multipart_error(cause, "multipart: boundary longer than %d "
		    "characters", MULTIPART_MAX_BOUNDARY);
		goto fail;
	}
	for (i = 0; i < len; i++) {
		if (!multipart_is_bchar(boundary[i])) {
			multipart_error(cause, "multipart: boundary contains "
			    "byte 0x%02x, which RFC 2046 does not allow",
			    (unsigned char)boundary[i]);
			goto fail;
		}
	}
	if (boundary[len - 1] == ' ') {
		multipart_error(cause, "multipart: boundary ends with a space");
		goto fail;
	}
	return (boundary);

fail:
	free(boundary);
	return (NULL);
}

/*
 * Find needle in [p, end); returns a pointer into the body or NULL.
 * The needle's first byte (CR or LF) appears nowhere else in it, so a
 * failed comparison never overlaps the next candidate and the search
 * is linear.
 */
static const unsigned char *
multipart_find(const unsigned char *p, const unsigned char *end,
    const char *needle, size_t nlen)
{
	const unsigned char	*q;

	while ((size_t)(end - p) >= nlen) {
		q = memchr(p, needle[0], (end - p) - nlen + 1);
		if (q == NULL)
			return (NULL);
		if (memcmp(q, needle, nlen) == 0)
			return (q);
		p = q + 1;
	}
	return (NULL);
}

/*
 * Classify what follows "--boundary" at p (p points just after it).
 * For MULTIPART_DELIM_PART, *next is set to the first byte of the
 * part's headers, a pointer into the body.
 */
static enum multipart_delim
multipart_delim(const unsigned char *p, const unsigned char *end,
    const unsigned char **next)
{
	if (end - p >= 2 && p[0] == '-' && p[1] == '-')
		return (MULTIPART_DELIM_CLOSE);
	if (end - p == 1 && p[0] == '-')
		return (MULTIPART_DELIM_TRUNCATED);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end)
		return (MULTIPART_DELIM_TRUNCATED);
	if (*p == '\n')
		return (MULTIPART_DELIM_BARE_LF);
	if (*p != '\r')
		return (MULTIPART_DELIM_NONE);
	if (p + 1 == end)
		return (MULTIPART_DELIM_TRUNCATED);
	if (p[1] != '\n')
		return (MULTIPART_DELIM_NONE);
	*next = p + 2;
	return (MULTIPART_DELIM_PART);
}

/*
 * Does the body contain "\n--boundary" without a CR before it, followed
 * by something that ends a boundary line?  Borrows the body.
 */
static int
multipart_bare_lf(const unsigned char *body, const unsigned char *end,
    const char *needle, size_t nlen)
{
	const unsigned char	*p, *q, *next;

	for (p = body; p < end; p = q + 1) {
		q = multipart_find(p, end, needle + 1, nlen - 1);
		if (q == NULL)
			return (0);
		if ((q == body || q[-1] != '\r') &&
		    multipart_delim(q + nlen - 1, end, &next) !=
		    MULTIPART_DELIM_NONE)
			return (1);
	}
	return (0);
}

/*
 * Find the first delimiter line, either at the very start of the body
 * or after a preamble.  Returns 0 with *next pointing into the body at
 * the first part's headers, 1 if the body starts with the close
 * delimiter (a form with no fields), or -1 with *cause set.
 */
static int
multipart_first(const unsigned char *body, const unsigned char *end,
    const char *needle, size_t nlen, const unsigned char **next,
    char **cause)
{
	const unsigned char	*p, *q;
	enum multipart_delim	 kind = MULTIPART_DELIM_NONE;
	int			 at_start;

	if ((size_t)(end - body) >= nlen - 2 &&
	    memcmp(body, needle + 2, nlen - 2) == 0)
		kind = multipart_delim(body + nlen - 2, end, next);
	at_start = kind != MULTIPART_DELIM_NONE;
	for (p = body; kind == MULTIPART_DELIM_NONE; p = q + 1) {
		q = multipart_find(p, end, needle, nlen);
		if (q == NULL)
			break;
		kind = multipart_delim(q + nlen, end, next);
	}

	switch (kind) {
	case MULTIPART_DELIM_PART:
		return (0);
	case MULTIPART_DELIM_CLOSE:
		/*
		 * An empty form is just the close delimiter.  After a
		 * preamble it more likely means the earlier delimiters
		 * were not recognised, and the parts would be lost.
		 */
		if (at_start)
			return (1);
		if (!multipart_bare_lf(body, end, needle, nlen)) {
			multipart_error(cause, "multipart: body has a closing "
			    "boundary but no parts before it");
			return (-1);
		}
		break;
	case MULTIPART_DELIM_TRUNCATED:
		multipart_error(cause, "multipart: body ends before the "
		    "closing boundary");
		return (-1);
	case MULTIPART_DELIM_BARE_LF:
		break;
	case MULTIPART_DELIM_NONE:
		if (!multipart_bare_lf(body, end, needle, nlen)) {
			multipart_error(cause, "multipart: the boundary from "
			    "Content-Type does not appear in the body");
			return (-1);
		}
		break;
	}
	multipart_error(cause, "multipart: body uses bare LF line endings; "
	    "CRLF is required");
	return (-1);
}

/*
 * Parse a Content-Disposition value into part->name and part->filename
 * (the part owns them).  Returns 0, or -1 with *cause set.
 */
static int
multipart_disposition(struct mp_part *part, size_t n, const char *value,
    char **cause)
{
	const char	*p, *start;
	char		 where[64], *name, *v, **dst;
	size_t		 len;
	int		 rc;

	snprintf(where, sizeof where, "part %zu Content-Disposition", n);

	p = multipart_skip_ows(value);
	for (start = p; multipart_is_tchar(*p); p++)
		/* nothing */;
	len = p - start;
	if (len != strlen("form-data") ||
	    strncasecmp(start, "form-data", len) != 0) {
		multipart_error(cause, "multipart: %s is \"%.*s\", not "
		    "form-data", where, (int)(len > 64 ? 64 : len), start);
		return (-1);
	}

	while ((rc = multipart_param(&p, &name, &v, where, cause)) == 1) {
		if (strcasecmp(name, "name") == 0)
			dst = &part->name;
		else if (strcasecmp(name, "filename") == 0)
			dst = &part->filename;
		else
			dst = NULL;	/* filename* and the like */
		if (dst != NULL && *dst != NULL) {
			multipart_error(cause, "multipart: %s: more than one "
			    "\"%s\" parameter", where, name);
			free(name);
			free(v);
			return (-1);
		}
		if (dst != NULL) {
			*dst = v;
			v = NULL;
		}
		free(name);
		free(v);
	}
	if (rc == -1)
		return (-1);

	if (part->name != NULL && part->name[0] == '\0') {
		multipart_error(cause, "multipart: part %zu has an empty name",
		    n);
		return (-1);
	}
	return (0);
}

/*
 * Is the header name in [p, p + len) equal to want, ignoring case?
 * Borrows both.
 */
static int
multipart_name_is(const unsigned char *p, size_t len, const char *want)
{
	return (len == strlen(want) &&
	    strncasecmp((const char *)p, want, len) == 0);
}

/*
 * Parse one header line [p, end) of part n (CRLF not included) into
 * part, which owns what is stored.  *seen records which headers were
 * already there.  Returns 0, or -1 with *cause set.
 */
static int
multipart_header(struct mp_part *part, size_t n, int *seen,
    const unsigned char *p, const unsigned char *end, char **cause)
{
	const unsigned char	*colon, *v, *e, *s;
	char			*value;
	size_t			 len;
	int			 rc = 0;

	for (colon = p; colon < end && *colon != ':'; colon++)
		/* nothing */;
	if (colon == end) {
		multipart_error(cause, "multipart: part %zu has a header line "
		    "without a colon", n);
		return (-1);
	}
	for (s = p; s < colon && multipart_is_tchar(*s); s++)
		/* nothing */;
	if (s == p || s != colon) {
		multipart_error(cause, "multipart: part %zu has a malformed "
		    "header name", n);
		return (-1);
	}
	len = colon - p;

	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		/* nothing */;
	for (e = end; e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		/* nothing */;
	value = xstrndup((const char *)v, e - v);

	if (multipart_name_is(p, len, "Content-Disposition")) {
		if (*seen & MULTIPART_SEEN_DISPOSITION) {
			multipart_error(cause, "multipart: part %zu has more "
			    "than one Content-Disposition", n);
			rc = -1;
		} else {
			*seen |= MULTIPART_SEEN_DISPOSITION;
			rc = multipart_disposition(part, n, value, cause);
		}
	} else if (multipart_name_is(p, len, "Content-Type")) {
		if (*seen & MULTIPART_SEEN_TYPE) {
			multipart_error(cause, "multipart: part %zu has more "
			    "than one Content-Type", n);
			rc = -1;
		} else {
			*seen |= MULTIPART_SEEN_TYPE;
			part->content_type = value;
			value = NULL;
		}
	} else if (multipart_name_is(p, len, "Content-Transfer-Encoding")) {
		if (strcasecmp(value, "binary") != 0 &&
		    strcasecmp(value, "8bit") != 0 &&
		    strcasecmp(value, "7bit") != 0) {
			multipart_error(cause, "multipart: part %zu uses "
			    "Content-Transfer-Encoding \"%.32s\", which is not "
			    "supported", n, value);
			rc = -1;
		}
	}
	free(value);
	return (rc);
}

/*
 * Parse the headers of part n, starting at p, into part (which owns
 * what is stored).  Returns 0 with *data pointing into the body just
 * past the empty line, or -1 with *cause set.
 */
static int
multipart_headers(struct mp_part *part, size_t n, const unsigned char *p,
    const unsigned char *end, const unsigned char **data, char **cause)
{
	const unsigned char	*lim, *q;
	int			 seen = 0;

	if ((size_t)(end - p) > MULTIPART_MAX_HEADER)
		lim = p + MULTIPART_MAX_HEADER;
	else
		lim = end;

	for (;;) {
		for (q = p; q < lim && *q != '\r' && *q != '\n'; q++) {
			if (multipart_is_ctl(*q)) {
				multipart_error(cause, "multipart: part %zu "
				    "headers contain control character 0x%02x",
				    n, *q);
				return (-1);
			}
		}
		if (q == lim || (*q == '\r' && q + 1 == lim)) {
			if (lim == end)
				multipart_error(cause, "multipart: body ends "
				    "inside the headers of part %zu", n);
			else
				multipart_error(cause, "multipart: part %zu "
				    "headers longer than %d bytes", n,
				    MULTIPART_MAX_HEADER);
			return (-1);
		}
		if (*q == '\n') {
			multipart_error(cause, "multipart: part %zu headers "
			    "use bare LF line endings; CRLF is required", n);
			return (-1);
		}
		if (q[1] != '\n') {
			multipart_error(cause, "multipart: part %zu headers "
			    "contain a CR without LF", n);
			return (-1);
		}
		if (q == p)
			break;
		if (*p == ' ' || *p == '\t') {
			multipart_error(cause, "multipart: part %zu headers "
			    "use obsolete line folding (a line starts with "
			    "white space)", n);
			return (-1);
		}
		if (multipart_header(part, n, &seen, p, q, cause) == -1)
			return (-1);
		p = q + 2;
	}

	if (part->name == NULL) {
		multipart_error(cause, "multipart: part %zu has no "
		    "Content-Disposition: form-data with a name", n);
		return (-1);
	}
	*data = q + 2;
	return (0);
}

/* Free what a part owns and zero it; the part itself is the caller's. */
static void
multipart_clear(struct mp_part *part)
{
	free(part->name);
	free(part->filename);
	free(part->content_type);
	free(part->data);
	memset(part, 0, sizeof *part);
}

/*
 * Parse a multipart/form-data body of len bytes; ct is the whole
 * Content-Type header value.  Borrows ct and body; returns a result
 * that owns copies of everything (free with multipart_free), or NULL
 * with *cause set (caller frees).
 */
struct multipart *
multipart_parse(const char *ct, const void *body, size_t len, char **cause)
{
	struct multipart	*m = NULL;
	struct mp_part		 part;
	const unsigned char	*p, *q, *s, *end, *next, *data;
	enum multipart_delim	 kind;
	char			*boundary, *needle = NULL;
	size_t			 nlen, dlen;
	int			 rc;

	if (cause != NULL)
		*cause = NULL;
	memset(&part, 0, sizeof part);

	if ((boundary = multipart_boundary(ct, cause)) == NULL)
		return (NULL);
	if (body == NULL || len == 0) {
		multipart_error(cause, "multipart: body is empty");
		goto fail;
	}
	xasprintf(&needle, "\r\n--%s", boundary);
	nlen = strlen(needle);
	m = xcalloc(1, sizeof *m);

	p = body;
	end = p + len;
	if ((rc = multipart_first(p, end, needle, nlen, &next, cause)) == -1)
		goto fail;
	if (rc == 1)
		goto done;

	for (p = next;; p = next) {
		if (m->nparts == MULTIPART_MAX_PARTS) {
			multipart_error(cause, "multipart: more than %d parts",
			    MULTIPART_MAX_PARTS);
			goto fail;
		}
		if (multipart_headers(&part, m->nparts + 1, p, end, &data,
		    cause) == -1)
			goto fail;
		if (multipart_get(m, part.name) != NULL) {
			multipart_error(cause, "multipart: duplicate part "
			    "\"%s\"", part.name);
			goto fail;
		}

		/*
		 * The CRLF that ends the headers may also be the one that
		 * starts the delimiter: then the part has no data.
		 */
		for (s = data - 2;; s = q + 1) {
			q = multipart_find(s, end, needle, nlen);
			if (q == NULL) {
				kind = MULTIPART_DELIM_TRUNCATED;
				break;
			}
			kind = multipart_delim(q + nlen, end, &next);
			if (kind != MULTIPART_DELIM_NONE)
				break;
		}
		if (kind == MULTIPART_DELIM_TRUNCATED) {
			multipart_error(cause, "multipart: body ends before "
			    "the closing boundary");
			goto fail;
		}
		if (kind == MULTIPART_DELIM_BARE_LF) {
			multipart_error(cause, "multipart: boundary line after "
			    "part %zu ends in a bare LF; CRLF is required",
			    m->nparts + 1);
			goto fail;
		}

		dlen = q > data ? (size_t)(q - data) : 0;
		part.data = xmalloc(dlen + 1);
		if (dlen > 0)
			memcpy(part.data, data, dlen);
		part.data[dlen] = '\0';
		part.len = dlen;

		m->parts = xreallocarray(m->parts, m->nparts + 1,
		    sizeof *m->parts);
		m->parts[m->nparts++] = part;
		memset(&part, 0, sizeof part);

		if (kind == MULTIPART_DELIM_CLOSE)
			break;
	}

done:
	free(needle);
	free(boundary);
	return (m);

fail:
	multipart_clear(&part);
	multipart_free(m);
	free(needle);
	free(boundary);
	return (NULL);
}

/* Number of parts; borrows m. */
size_t
multipart_count(const struct multipart *m)
{
	if (m == NULL)
		return (0);
	return (m->nparts);
}

/* Part i in body order, or NULL; borrowed until multipart_free. */
const struct mp_part *
multipart_part(const struct multipart *m, size_t i)
{
	if (m == NULL || i >= m->nparts)
		return (NULL);
	return (&m->parts[i]);
}

/* The part called name (exact), or NULL; borrowed until multipart_free. */
const struct mp_part *
multipart_get(const struct multipart *m, const char *name)
{
	size_t	i;

	if (m == NULL || name == NULL)
		return (NULL);
	for (i = 0; i < m->nparts; i++) {
		if (strcmp(m->parts[i].name, name) == 0)
			return (&m->parts[i]);
	}
	return (NULL);
}

/* Free m and everything it owns; NULL is a no-op. */
void
multipart_free(struct multipart *m)
{
	size_t	i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nparts; i++)
		multipart_clear(&m->parts[i]);
	free(m->parts);
	free(m);
}

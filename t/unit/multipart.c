/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the multipart/form-data parser: well-formed bodies the
 * way browsers and curl send them, the corners of RFC 2046 (preamble,
 * transport padding, epilogue, empty parts), hostile input that must
 * be refused with a cause, and a deterministic fuzz loop that mutates
 * a valid body a few thousand times.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "tap.h"
#include "xmalloc.h"

/* A string literal and its length, for bodies without NULs. */
#define LIT(s)		(s), (sizeof(s) - 1)

#define CT		"multipart/form-data; boundary=frontier"
#define DELIM		"--frontier\r\n"
#define CLOSE		"--frontier--\r\n"
#define CD(n)		"Content-Disposition: form-data; name=\"" n "\"\r\n"

#ifndef FUZZ_ROUNDS
#define FUZZ_ROUNDS	5000
#endif

static uint32_t	multipart_test_seed = 0x2545f491;

/* Parse and count a test point for success; caller frees the result. */
static struct multipart *
multipart_test_ok(const char *ct, const void *body, size_t len,
    const char *name)
{
	struct multipart	*m;
	char			*cause = NULL;

	m = multipart_parse(ct, body, len, &cause);
	if (!tap_ok(m != NULL && cause == NULL, name))
		printf("#   cause \"%s\"\n", cause != NULL ? cause : "(null)");
	free(cause);
	return (m);
}

/* Expect a failure whose cause contains want; borrows everything. */
static void
multipart_test_fail(const char *ct, const void *body, size_t len,
    const char *want, const char *name)
{
	struct multipart	*m;
	char			*cause = NULL;
	int			 good;

	m = multipart_parse(ct, body, len, &cause);
	good = m == NULL && cause != NULL && strstr(cause, want) != NULL;
	if (!tap_ok(good, name))
		printf("#   got %s, cause \"%s\", want \"%s\"\n",
		    m != NULL ? "a result" : "NULL",
		    cause != NULL ? cause : "(null)", want);
	else
		printf("#   cause: %s\n", cause);
	multipart_free(m);
	free(cause);
}

/* Is part i called name with exactly these len bytes?  Borrows all. */
static int
multipart_test_part(const struct multipart *m, size_t i, const char *name,
    const void *data, size_t len)
{
	const struct mp_part	*p;

	if ((p = multipart_part(m, i)) == NULL)
		return (0);
	return (strcmp(p->name, name) == 0 && p->len == len &&
	    memcmp(p->data, data, len) == 0 && p->data[len] == '\0');
}

/* Append len bytes to the buffer at *buf (grown as needed; caller frees). */
static void
multipart_test_add(char **buf, size_t *used, const void *data, size_t len)
{
	*buf = xrealloc(*buf, *used + len + 1);
	memcpy(*buf + *used, data, len);
	*used += len;
	(*buf)[*used] = '\0';
}

/* The next pseudo-random number (xorshift32); owns nothing. */
static uint32_t
multipart_test_rand(void)
{
	multipart_test_seed ^= multipart_test_seed << 13;
	multipart_test_seed ^= multipart_test_seed >> 17;
	multipart_test_seed ^= multipart_test_seed << 5;
	return (multipart_test_seed);
}

/* Simple fields, file parts, lookups. */
static void
multipart_test_basic(void)
{
	static const char	 simple[] = DELIM CD("field1") "\r\n"
	    "hello world\r\n" CLOSE;
	static const char	 file[] =
	    "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
	    "Content-Disposition: form-data; name=\"caCertFile\"; "
	    "filename=\"ca.pem\"\r\n"
	    "Content-Type: application/x-pem-file\r\n"
	    "\r\n"
	    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	    "\r\n"
	    "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
	    "content-disposition: FORM-DATA; NAME=enabled\r\n"
	    "X-Ignored: yes\r\n"
	    "Content-Transfer-Encoding: binary\r\n"
	    "\r\n"
	    "true\r\n"
	    "------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n";
	static const char	 pem[] =
	    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	struct multipart	*m;
	const struct mp_part	*p;

	m = multipart_test_ok(CT, LIT(simple), "simple field parses");
	tap_is_int(multipart_count(m), 1, "simple: one part");
	p = multipart_part(m, 0);
	tap_is_str(p ? p->name : NULL, "field1", "simple: name");
	tap_ok(multipart_test_part(m, 0, "field1", LIT("hello world")),
	    "simple: data, length and NUL");
	tap_ok(p != NULL && p->filename == NULL && p->content_type == NULL,
	    "simple: no filename, no content type");
	multipart_free(m);

	m = multipart_test_ok("multipart/form-data; "
	    "boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", LIT(file),
	    "file upload parses");
	tap_is_int(multipart_count(m), 2, "file: two parts");
	p = multipart_get(m, "caCertFile");
	tap_is_str(p ? p->filename : NULL, "ca.pem", "file: filename");
	tap_is_str(p ? p->content_type : NULL, "application/x-pem-file",
	    "file: content type");
	tap_ok(multipart_test_part(m, 0, "caCertFile", LIT(pem)),
	    "file: data keeps its bare LFs");
	tap_ok(multipart_test_part(m, 1, "enabled", LIT("true")),
	    "file: token name, header names in any case");
	tap_ok(multipart_get(m, "cacertfile") == NULL &&
	    multipart_get(m, "missing") == NULL &&
	    multipart_get(m, NULL) == NULL &&
	    multipart_part(m, 2) == NULL,
	    "lookups are exact; misses give NULL");
	multipart_free(m);

	multipart_free(NULL);
	tap_ok(multipart_count(NULL) == 0 && multipart_get(NULL, "x") == NULL,
	    "NULL result is harmless");
}

/* Binary data with NULs and things that look like boundaries. */
static void
multipart_test_binary(void)
{
	static const char	 data[] =
	    "\0\1\2\377\r\n\r\r\n\n"
	    "--frontier\r\n"		/* no CRLF before it */
	    "x\n--frontier\r\n"		/* LF, not CRLF, before it */
	    "\r\n--fronti"		/* too short */
	    "\r\n--frontierX\r\n"	/* longer boundary */
	    "\r\n--frontier x\r\n"	/* padding, then text */
	    "\r\n--frontier-x"		/* one dash only */
	    "\r\n-frontier\r\n"
	    "\0--frontier--\0"
	    "\r\n";
	static const char	 head[] = DELIM
	    "Content-Disposition: form-data; name=\"blob\"; filename=\"b\"\r\n"
	    "Content-Type: application/octet-stream\r\n\r\n";
	static const char	 tail[] = "\r\n" CLOSE;
	struct multipart	*m;
	char			*body = NULL, *flood = NULL;
	size_t			 len = 0, flen = 0, i;

	multipart_test_add(&body, &len, head, sizeof(head) - 1);
	multipart_test_add(&body, &len, data, sizeof(data) - 1);
	multipart_test_add(&body, &len, tail, sizeof(tail) - 1);
	m = multipart_test_ok(CT, body, len, "binary part parses");
	tap_ok(multipart_test_part(m, 0, "blob", data, sizeof(data) - 1),
	    "binary: NULs, CR/LF and look-alikes kept byte for byte");
	multipart_free(m);
	free(body);

	/* Many near misses must not slow the search down or confuse it. */
	body = NULL;
	len = 0;
	for (i = 0; i < 100000; i++)
		multipart_test_add(&flood, &flen, LIT("\r\n--frontie"));
	multipart_test_add(&body, &len, LIT(DELIM CD("flood") "\r\n"));
	multipart_test_add(&body, &len, flood, flen);
	multipart_test_add(&body, &len, LIT("\r\n" CLOSE));
	m = multipart_test_ok(CT, body, len, "near-miss flood parses");
	tap_ok(multipart_test_part(m, 0, "flood", flood, flen),
	    "near-miss flood: data intact");
	multipart_free(m);
	free(body);
	free(flood);
}

/* Content-Type variants, preamble, padding, epilogue, empty parts. */
static void
multipart_test_syntax(void)
{
	static const char	 quoted[] =
	    "--gc0p4Jq0M2Yt08j34c0p: with 'odd' (chars)?\r\n" CD("q") "\r\n"
	    "v\r\n--gc0p4Jq0M2Yt08j34c0p: with 'odd' (chars)?--";
	static const char	 preamble[] =
	    "This is the preamble.\r\n"
	    "--frontierX\r\n"
	    "--frontier is mentioned here\r\n"
	    DELIM CD("a") "\r\n" "after preamble\r\n" CLOSE;
	static const char	 empty[] = DELIM CD("e") "\r\n" "\r\n"
	    DELIM CD("f") "\r\n" DELIM CD("g") "\r\n" "x\r\n" CLOSE;
	static const char	 padding[] = "--frontier \t \r\n" CD("a") "\r\n"
	    "1\r\n--frontier\t\r\n" CD("b") "\r\n" "2\r\n--frontier--  \r\n";
	static const char	 epilogue[] = DELIM CD("a") "\r\n" "1\r\n"
	    "--frontier--\r\nthis is the epilogue\r\n" DELIM
	    "Content-Disposition: garbage\r\n\r\n\0\r\n--frontier--";
	static const char	 params[] = DELIM
	    "Content-Disposition: form-data ; filename*=UTF-8''x.txt; "
	    "name=\"a\\\"b\\\\c\"; filename=\"C:\\dir\\file.txt\"\r\n\r\n"
	    "1\r\n" DELIM
	    "Content-Disposition: form-data; name=\"\xc3\xa9t\xc3\xa9\"; "
	    "filename=\"\"\r\n\r\n" CLOSE;
	char			 longb[71], ct[128], body[256];
	struct multipart	*m;
	const struct mp_part	*p;

	m = multipart_test_ok("Multipart/Form-Data ; charset=utf-8; "
	    "BOUNDARY=\"gc0p4Jq0M2Yt08j34c0p: with 'odd' (chars)?\"",
	    LIT(quoted), "quoted boundary, parameters in any order and case");
	tap_ok(multipart_test_part(m, 0, "q", LIT("v")),
	    "quoted boundary: data; close without CRLF");
	multipart_free(m);

	m = multipart_test_ok(CT, LIT(preamble), "body with preamble parses");
	tap_ok(multipart_count(m) == 1 &&
	    multipart_test_part(m, 0, "a", LIT("after preamble")),
	    "preamble: skipped, look-alikes in it too");
	multipart_free(m);

	m = multipart_test_ok(CT, LIT(empty), "empty parts parse");
	tap_ok(multipart_count(m) == 3 &&
	    multipart_test_part(m, 0, "e", "", 0) &&
	    multipart_test_part(m, 1, "f", "", 0) &&
	    multipart_test_part(m, 2, "g", LIT("x")),
	    "empty parts: zero bytes, with or without the blank line");
	multipart_free(m);

	m = multipart_test_ok(CT, LIT(padding), "transport padding parses");
	tap_ok(multipart_count(m) == 2 && multipart_test_part(m, 0, "a",
	    LIT("1")) && multipart_test_part(m, 1, "b", LIT("2")),
	    "transport padding: data unchanged");
	multipart_free(m);

	m = multipart_test_ok(CT, epilogue, sizeof(epilogue) - 1,
	    "epilogue is ignored");
	tap_ok(multipart_count(m) == 1 && multipart_test_part(m, 0, "a",
	    LIT("1")), "epilogue: one part only");
	multipart_free(m);

	m = multipart_test_ok(CT, LIT(params), "parameter forms parse");
	p = multipart_part(m, 0);
	tap_is_str(p ? p->name : NULL, "a\"b\\c", "escapes in quoted name");
	tap_is_str(p ? p->filename : NULL, "C:\\dir\\file.txt",
	    "other backslashes kept; filename* ignored");
	p = multipart_part(m, 1);
	tap_ok(p != NULL && strcmp(p->name, "\xc3\xa9t\xc3\xa9") == 0 &&
	    p->filename != NULL && p->filename[0] == '\0' && p->len == 0,
	    "UTF-8 name; empty filename is \"\", not NULL");
	multipart_free(m);

	m = multipart_test_ok(CT, LIT(CLOSE), "form with no fields parses");
	tap_is_int(multipart_count(m), 0, "no fields: zero parts");
	multipart_free(m);

	memset(longb, 'b', 70);
	longb[70] = '\0';
	snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", longb);
	snprintf(body, sizeof body, "--%s\r\n" CD("x") "\r\n1\r\n--%s--",
	    longb, longb);
	m = multipart_test_ok(ct, body, strlen(body),
	    "70-character boundary parses");
	multipart_free(m);

	tap_ok(multipart_parse("text/plain", "", 0, NULL) == NULL,
	    "cause may be NULL");
}

/* Exactly at the limits, and one past them. */
static void
multipart_test_limits(void)
{
	static const char	 head[] = DELIM CD("x") "X-Pad: ";
	char			*body = NULL, name[128];
	size_t			 len = 0, pad, i;
	struct multipart	*m;

	for (i = 0; i < MULTIPART_MAX_PARTS; i++) {
		snprintf(name, sizeof name, DELIM CD("f%zu") "\r\n", i);
		multipart_test_add(&body, &len, name, strlen(name));
		multipart_test_add(&body, &len, LIT("v\r\n"));
	}
	multipart_test_add(&body, &len, LIT(CLOSE));
	m = multipart_test_ok(CT, body, len, "32 parts parse");
	multipart_free(m);
	len -= sizeof(CLOSE) - 1;
	multipart_test_add(&body, &len, LIT(DELIM CD("one-more") "\r\n"
	    "v\r\n" CLOSE));
	multipart_test_fail(CT, body, len, "multipart: more than 32 parts",
	    "33 parts are refused");
	free(body);

	/* A header block of exactly MULTIPART_MAX_HEADER bytes. */
	body = NULL;
	len = 0;
	multipart_test_add(&body, &len, LIT(head));
	pad = MULTIPART_MAX_HEADER - (sizeof(head) - 1 - strlen(DELIM)) - 4;
	for (i = 0; i < pad; i++)
		multipart_test_add(&body, &len, "p", 1);
	multipart_test_add(&body, &len, LIT("\r\n\r\nv\r\n" CLOSE));
	m = multipart_test_ok(CT, body, len, "8192 bytes of headers parse");
	multipart_free(m);
	free(body);

	body = NULL;
	len = 0;
	multipart_test_add(&body, &len, LIT(head));
	for (i = 0; i < pad + 1; i++)
		multipart_test_add(&body, &len, "p", 1);
	multipart_test_add(&body, &len, LIT("\r\n\r\nv\r\n" CLOSE));
	multipart_test_fail(CT, body, len,
	    "multipart: part 1 headers longer than 8192 bytes",
	    "8193 bytes of headers are refused");
	free(body);
}

/* Bad Content-Type header values. */
static void
multipart_test_bad_type(void)
{
	static const char	 body[] = DELIM CD("x") "\r\n1\r\n" CLOSE;
	char			 ct[128];

	multipart_test_fail(NULL, LIT(body), "no Content-Type",
	    "NULL Content-Type");
	multipart_test_fail("multipart/form-data", LIT(body),
	    "multipart: no boundary parameter in Content-Type",
	    "no parameters");
	multipart_test_fail("multipart/form-data; charset=utf-8", LIT(body),
	    "multipart: no boundary parameter in Content-Type",
	    "no boundary parameter");
	multipart_test_fail("multipart/form-data; boundary=\"\"", LIT(body),
	    "multipart: empty boundary", "empty quoted boundary");
	multipart_test_fail("multipart/form-data; boundary=", LIT(body),
	    "empty or malformed value", "empty token boundary");
	snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 0);
	multipart_test_fail(ct, LIT(body),
	    "multipart: boundary longer than 70 characters",
	    "71-character boundary");
	multipart_test_fail("multipart/form-data; boundary=\"a@b\"", LIT(body),
	    "boundary contains byte 0x40", "boundary with a bad character");
	multipart_test_fail("multipart/form-data; boundary=\"ab \"", LIT(body),
	    "boundary ends with a space", "boundary ending in a space");
	multipart_test_fail("multipart/form-data; boundary=a; boundary=b",
	    LIT(body), "more than one boundary", "two boundary parameters");
	multipart_test_fail("multipart/form-data; boundary=\"frontier",
	    LIT(body), "unterminated quoted string",
	    "unterminated quoted boundary");
	multipart_test_fail("multipart/form-data; boundary=front ier",
	    LIT(body), "expected \";\"", "junk after a parameter");
	multipart_test_fail("text/plain; boundary=frontier", LIT(body),
	    "not multipart/form-data", "text/plain");
	multipart_test_fail("multipart/mixed; boundary=frontier", LIT(body),
	    "not multipart/form-data", "multipart/mixed");
	multipart_test_fail("multipart/form-datax; boundary=frontier",
	    LIT(body), "not multipart/form-data", "longer media type");
}

/* Bodies that are cut short or do not follow the syntax. */
static void
multipart_test_bad_body(void)
{
	static const char	 nul[] = DELIM "Content-Dispo\0sition: x\r\n"
	    "\r\n" CLOSE;
	static const char	 lfonly[] = "--frontier\n"
	    "Content-Disposition: form-data; name=\"x\"\n\n1\n--frontier--\n";

	multipart_test_fail(CT, "", 0, "multipart: body is empty",
	    "zero-length body");
	multipart_test_fail(CT, NULL, 0, "multipart: body is empty",
	    "NULL body");
	multipart_test_fail(CT, LIT("--frontier"),
	    "multipart: body ends before the closing boundary",
	    "body of just the boundary");
	multipart_test_fail(CT, LIT("--frontier\r\n"),
	    "multipart: body ends inside the headers of part 1",
	    "body of just the boundary line");
	multipart_test_fail(CT, LIT("just some text\r\n"),
	    "does not appear in the body", "boundary missing from the body");
	multipart_test_fail(CT, LIT("preamble\r\n" CLOSE),
	    "closing boundary but no parts", "preamble, then only the close");
	multipart_test_fail(CT, LIT(DELIM CD("x") "\r\nvalue"),
	    "multipart: body ends before the closing boundary",
	    "missing closing delimiter");
	multipart_test_fail(CT, LIT(DELIM CD("x") "\r\nvalue\r\n--frontier"),
	    "multipart: body ends before the closing boundary",
	    "body ends on a delimiter");
	multipart_test_fail(CT, LIT(DELIM CD("x") "\r\nvalue\r\n--frontier-"),
	    "multipart: body ends before the closing boundary",
	    "body ends inside the close delimiter");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-da"),
	    "body ends inside the headers of part 1",
	    "truncated inside headers");
	multipart_test_fail(CT, LIT(lfonly),
	    "bare LF line endings; CRLF is required", "LF-only body");
	multipart_test_fail(CT, LIT("preamble\n--frontier\n" CD("x") "\r\n"
	    "1\r\n" CLOSE), "bare LF line endings", "LF before first boundary");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-data; "
	    "name=x\n\n1\r\n" CLOSE), "part 1 headers use bare LF",
	    "LF-only headers");
	multipart_test_fail(CT, LIT(DELIM CD("x") "\r\n1\r\n--frontier\n"
	    CD("y") "\r\n2\r\n" CLOSE), "ends in a bare LF",
	    "LF after a later boundary");
	multipart_test_fail(CT, LIT(DELIM CD("x") "X: a\rb\r\n\r\n1\r\n"
	    CLOSE), "CR without LF", "bare CR in headers");
	multipart_test_fail(CT, nul, sizeof(nul) - 1,
	    "control character 0x00", "NUL in headers");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-data;\r\n"
	    " name=\"x\"\r\n\r\n1\r\n" CLOSE), "obsolete line folding",
	    "obs-fold");
	multipart_test_fail(CT, LIT(DELIM CD("x") "no colon\r\n\r\n1\r\n"
	    CLOSE), "header line without a colon", "header without colon");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition : form-data; "
	    "name=x\r\n\r\n1\r\n" CLOSE), "malformed header name",
	    "space before the colon");
}

/* Parts whose headers say the wrong things. */
static void
multipart_test_bad_parts(void)
{
	multipart_test_fail(CT, LIT(DELIM CD("a") "\r\n1\r\n" DELIM
	    "Content-Type: text/plain\r\n\r\n2\r\n" CLOSE),
	    "multipart: part 2 has no Content-Disposition: form-data with "
	    "a name", "missing Content-Disposition");
	multipart_test_fail(CT, LIT(DELIM "\r\n1\r\n" CLOSE),
	    "part 1 has no Content-Disposition", "part without headers");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-data; "
	    "filename=\"a.txt\"\r\n\r\n1\r\n" CLOSE),
	    "part 1 has no Content-Disposition: form-data with a name",
	    "missing name");
	multipart_test_fail(CT, LIT(DELIM CD("") "\r\n1\r\n" CLOSE),
	    "part 1 has an empty name", "empty name");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: attachment; "
	    "name=x\r\n\r\n1\r\n" CLOSE), "is \"attachment\", not form-data",
	    "disposition is not form-data");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-data; "
	    "name=\"x\r\n\r\n1\r\n" CLOSE), "unterminated quoted string",
	    "unterminated quoted name");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-data; "
	    "name=x; name=y\r\n\r\n1\r\n" CLOSE), "more than one \"name\"",
	    "two name parameters");
	multipart_test_fail(CT, LIT(DELIM CD("x") CD("y") "\r\n1\r\n" CLOSE),
	    "more than one Content-Disposition", "two Content-Dispositions");
	multipart_test_fail(CT, LIT(DELIM CD("x") "Content-Type: a\r\n"
	    "Content-Type: b\r\n\r\n1\r\n" CLOSE),
	    "more than one Content-Type", "two Content-Types");
	multipart_test_fail(CT, LIT(DELIM "Content-Disposition: form-data; "
	    "name\r\n\r\n1\r\n" CLOSE), "parameter \"name\" has no value",
	    "parameter without a value");
	multipart_test_fail(CT, LIT(DELIM CD("x")
	    "Content-Transfer-Encoding: base64\r\n\r\nMQ==\r\n" CLOSE),
	    "Content-Transfer-Encoding \"base64\", which is not supported",
	    "base64 transfer encoding");
	multipart_test_fail(CT, LIT(DELIM CD("caCertFile") "\r\n1\r\n"
	    DELIM CD("caCertFile") "\r\n2\r\n" CLOSE),
	    "multipart: duplicate part \"caCertFile\"", "duplicate names");
}

/*
 * Mutate a valid body (and now and then the Content-Type) a few
 * thousand times.  Each variant lives in a buffer of exactly its own
 * size so the sanitizer sees any read past the end.  The only claims:
 * no crash, and either a sane result or a cause.
 */
static void
multipart_test_fuzz(void)
{
	static const char	 seed[] = "preamble\r\n" DELIM
	    "Content-Disposition: form-data; name=\"caCertFile\"; "
	    "filename=\"c\\\"a.pem\"\r\n"
	    "Content-Type: application/x-pem-file\r\n\r\n"
	    "\0\1\r\n--frontie\r\n--frontierX\r\n" DELIM
	    CD("enabled") "\r\n" "true\r\n" DELIM
	    "Content-Disposition: form-data; name=empty\r\n\r\n" DELIM
	    "Content-Disposition: form-data; name=\"last\"\r\n\r\n"
	    "\r\n" CLOSE "epilogue";
	static const char	 seedct[] =
	    "multipart/form-data; charset=utf-8; boundary=\"frontier\"";
	static const char	 bytes[] = "\r\n-\"\\;:= \t\0fa";
	static const char	*chunks[] = { "\r\n--frontier", "--", "\r\n",
	    "--frontier--", "\r\n\r\n", CD("dup"), "\"", "\\" };
	struct multipart	*m;
	const struct mp_part	*p;
	char			*buf, *exact, *cause, ct[sizeof(seedct)];
	size_t			 len, pos, n, clen, i, j, k;
	int			 rounds, muts, bad = 0, parsed = 0;

	buf = xmalloc(sizeof(seed) * 4);
	for (rounds = 0; rounds < FUZZ_ROUNDS; rounds++) {
		memcpy(buf, seed, sizeof(seed) - 1);
		len = sizeof(seed) - 1;
		memcpy(ct, seedct, sizeof(seedct));

		muts = 1 + multipart_test_rand() % 4;
		while (muts-- > 0) {
			pos = multipart_test_rand() % (len + 1);
			switch (multipart_test_rand() % 6) {
			case 0:		/* truncate */
				len = pos;
				break;
			case 1:		/* overwrite one byte */
				if (pos < len)
					buf[pos] = (multipart_test_rand() & 1) ?
					    bytes[multipart_test_rand() %
					    (sizeof(bytes) - 1)] :
					    (char)multipart_test_rand();
				break;
			case 2:		/* insert a chunk */
				k = multipart_test_rand() %
				    (sizeof(chunks) / sizeof(chunks[0]));
				clen = strlen(chunks[k]);
				if (len + clen > sizeof(seed) * 4)
					break;
				memmove(buf + pos + clen, buf + pos,
				    len - pos);
				memcpy(buf + pos, chunks[k], clen);
				len += clen;
				break;
			case 3:		/* delete a range */
				n = multipart_test_rand() % 16;
				if (n > len - pos)
					n = len - pos;
				memmove(buf + pos, buf + pos + n,
				    len - pos - n);
				len -= n;
				break;
			case 4:		/* duplicate a range */
				n = multipart_test_rand() % 64;
				if (n > len - pos)
					n = len - pos;
				if (len + n > sizeof(seed) * 4)
					break;
				memmove(buf + pos + n, buf + pos, len - pos);
				len += n;
				break;
			case 5:		/* damage the Content-Type */
				j = multipart_test_rand() %
				    (sizeof(seedct) - 1);
				ct[j] = bytes[multipart_test_rand() %
				    (sizeof(bytes) - 1)];
				break;
			}
		}

		exact = xmalloc(len);
		memcpy(exact, buf, len);
		cause = NULL;
		m = multipart_parse(ct, exact, len, &cause);
		if (m != NULL) {
			parsed++;
			if (cause != NULL ||
			    multipart_count(m) > MULTIPART_MAX_PARTS)
				bad++;
			for (i = 0; i < multipart_count(m); i++) {
				p = multipart_part(m, i);
				if (p->name == NULL || p->name[0] == '\0' ||
				    p->data == NULL || p->len > len ||
				    p->data[p->len] != '\0' ||
				    multipart_get(m, p->name) != p)
					bad++;
			}
		} else if (cause == NULL ||
		    strncmp(cause, "multipart: ", 11) != 0)
			bad++;
		multipart_free(m);
		free(cause);
		free(exact);
		if (bad != 0) {
			printf("#   fuzz round %d went wrong\n", rounds);
			break;
		}
	}
	free(buf);
	printf("#   fuzz: %d rounds, %d parsed, %d refused\n", rounds, parsed,
	    rounds - parsed);
	tap_ok(bad == 0, "fuzz: no crash; a result or a cause every time");
}

int
main(void)
{
	multipart_test_basic();
	multipart_test_binary();
	multipart_test_syntax();
	multipart_test_limits();
	multipart_test_bad_type();
	multipart_test_bad_body();
	multipart_test_bad_parts();
	multipart_test_fuzz();
	return (tap_done());
}

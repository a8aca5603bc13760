/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the JSON document model (json.c) and the request
 * validator (json_valid.c): exact round trips, 64-bit integers at their
 * edges, shortest doubles, hostile text (malformed, too deep, bad UTF-8,
 * NUL in keys), large objects behind the hash index, the editing calls,
 * and every rule of the validator with the message it gives.
 */

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"
#include "util.h"
#include "xmalloc.h"

/* A string literal and its length. */
#define LIT(s)			(s), (sizeof(s) - 1)

#define JSON_TEST_KEYS		10000
#define JSON_TEST_UNKNOWN	100000

static uint32_t	json_test_seed = 0x9e3779b9;

/* xorshift32: the same sequence on every run. */
static uint32_t
json_test_rand(void)
{
	json_test_seed ^= json_test_seed << 13;
	json_test_seed ^= json_test_seed >> 17;
	json_test_seed ^= json_test_seed << 5;
	return (json_test_seed);
}

/* Parse a string, counting a test point; caller frees the result. */
static struct json *
json_test_parse(const char *text, const char *name)
{
	struct json	*j;
	char		*cause = NULL;

	j = json_parse(text, strlen(text), &cause);
	if (!tap_ok(j != NULL, name))
		printf("#   cause \"%s\"\n", cause);
	free(cause);
	return (j);
}

/* Parse quietly; NULL on error. */
static struct json *
json_test_doc(const char *text)
{
	return (json_parse(text, strlen(text), NULL));
}

/*
 * Expect len bytes of text to be refused with a one-line cause that
 * contains want.
 */
static void
json_test_bad(const char *text, size_t len, const char *want,
    const char *name)
{
	struct json	*j;
	char		*cause = NULL;
	int		 good;

	j = json_parse(text, len, &cause);
	good = j == NULL && cause != NULL && strstr(cause, want) != NULL &&
	    strchr(cause, '\n') == NULL;
	if (!tap_ok(good, name))
		printf("#   got %s, cause \"%s\", want \"%s\"\n",
		    j != NULL ? "a document" : "NULL",
		    cause != NULL ? cause : "(null)", want);
	json_free(j);
	free(cause);
}

/* Does the compact dump of j equal want?  Borrows j. */
static int
json_test_dumps(const struct json *j, const char *want)
{
	char	*got;
	int	 same;

	got = json_dump(j, NULL);
	same = strcmp(got, want) == 0;
	if (!same)
		printf("#   dump \"%s\", want \"%s\"\n", got, want);
	free(got);
	return (same);
}

/* Parse text and check that it dumps back byte for byte. */
static void
json_test_roundtrip(const char *text, const char *name)
{
	struct json	*j;

	j = json_test_doc(text);
	if (j == NULL) {
		tap_ok(0, name);
		printf("#   \"%s\" did not parse\n", text);
		return;
	}
	tap_ok(json_test_dumps(j, text), name);
	json_free(j);
}

/* Text, flags and readings of a parsed number. */
static int
json_test_number(const char *text, int is_int, int64_t i, int is_uint,
    uint64_t u)
{
	struct json	*j;
	char		*dump;
	int		 good;

	if ((j = json_test_doc(text)) == NULL)
		return (0);
	dump = json_dump(j, NULL);
	good = json_type(j) == JSON_NUMBER &&
	    strcmp(json_number_text(j), text) == 0 &&
	    strcmp(dump, text) == 0 &&
	    json_is_int(j) == is_int && json_int(j) == i &&
	    json_is_uint(j) == is_uint && json_uint(j) == u;
	if (!good)
		printf("#   %s: text %s int %d/%" PRId64 " uint %d/%" PRIu64
		    "\n", text, json_number_text(j), json_is_int(j),
		    json_int(j), json_is_uint(j), json_uint(j));
	free(dump);
	json_free(j);
	return (good);
}

/* Significant digits of a number's text ("1.50e+02" has 2). */
static int
json_test_sigdigits(const char *t)
{
	char	digits[64];
	size_t	n = 0, first;

	for (; *t != '\0' && *t != 'e' && *t != 'E'; t++)
		if (*t >= '0' && *t <= '9' && n < sizeof digits)
			digits[n++] = *t;
	for (first = 0; first < n && digits[first] == '0'; first++)
		;
	while (n > first && digits[n - 1] == '0')
		n--;
	return (n > first ? (int)(n - first) : 1);
}

/* Is d printed exactly, shortest, and as valid JSON? */
static int
json_test_double(double d)
{
	struct json	*j, *back;
	const char	*t;
	char		 buf[512];
	int		 sig, good;

	j = json_new_double(d);
	t = json_number_text(j);
	back = json_parse(t, strlen(t), NULL);
	sig = json_test_sigdigits(t);
	good = back != NULL && json_double(back) == d &&
	    strtod(t, NULL) == d;
	if (good && sig > 1) {
		/* One digit fewer must not read back the same. */
		snprintf(buf, sizeof buf, "%.*g", sig - 1, d);
		good = strtod(buf, NULL) != d;
	}
	if (!good)
		printf("#   %.17g printed as %s\n", d, t);
	json_free(back);
	json_free(j);
	return (good);
}

/* Round trips of whole documents, strings and escapes. */
static void
json_test_roundtrips(void)
{
	struct json	*j, *k;
	char		*text;
	size_t		 len;

	json_test_roundtrip("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":"
	    "\"e\"},\"f\":-1.5e-3,\"g\":[],\"h\":{}}",
	    "object with every type dumps back byte for byte");
	json_test_roundtrip("{\"z\":1,\"a\":2,\"m\":3}",
	    "member order is kept, not sorted");
	json_test_roundtrip("[1.50,1E5,-0,0.000]",
	    "numbers keep the text they were written with");
	json_test_roundtrip("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
	    "UTF-8 strings dump back unchanged");
	j = json_test_parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac"
	    "\\ud83d\\ude00\"", "string with every escape parses");
	tap_is_str(json_string(j), "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80", "escapes decode to the right bytes");
	text = json_dump(j, &len);
	k = json_parse(text, len, NULL);
	tap_ok(k != NULL && json_equal(j, k) && strlen(text) == len,
	    "decoded escapes dump to JSON that parses back equal");
	free(text);
	json_free(k);
	json_free(j);

	j = json_test_parse("[\"a\\u0000b\"]", "string with \\u0000 parses");
	tap_ok(json_strlen(json_array_get(j, 0)) == 3 &&
	    memcmp(json_string(json_array_get(j, 0)), "a\0b", 3) == 0,
	    "a NUL inside a string value is kept, length 3");
	tap_ok(json_test_dumps(j, "[\"a\\u0000b\"]"),
	    "and it dumps back as \\u0000");
	json_free(j);

	j = json_test_doc("{\"a\":[1,{\"b\":null}],\"c\":\"x\"}");
	text = json_dump_pretty(j, NULL);
	k = json_test_doc(text);
	tap_ok(k != NULL && json_equal(j, k) && strchr(text, '\n') != NULL,
	    "pretty dump is indented and parses back equal");
	free(text);
	json_free(k);
	json_free(j);

	j = json_new_stringn("x\0y", 3);
	k = json_new_stringf("%s-%d", "id", 42);
	tap_ok(json_strlen(j) == 3 && json_test_dumps(j, "\"x\\u0000y\"") &&
	    strcmp(json_string(k), "id-42") == 0 && json_strlen(k) == 5,
	    "json_new_stringn keeps NULs, json_new_stringf formats");
	json_free(k);
	json_free(j);
}

/* 64-bit integers at their edges and the readings of other numbers. */
static void
json_test_numbers(void)
{
	struct json	*a, *b;
	char		 buf[64];

	tap_ok(json_test_number("-9223372036854775808", 1, INT64_MIN, 0, 0),
	    "INT64_MIN: exact text, is_int, not is_uint");
	tap_ok(json_test_number("9223372036854775807", 1, INT64_MAX, 1,
	    INT64_MAX), "INT64_MAX: exact text, is_int and is_uint");
	tap_ok(json_test_number("9223372036854775808", 0, 0, 1,
	    (uint64_t)INT64_MAX + 1), "INT64_MAX+1: only is_uint");
	tap_ok(json_test_number("18446744073709551615", 0, 0, 1, UINT64_MAX),
	    "UINT64_MAX: exact text, only is_uint");
	tap_ok(json_test_number("18446744073709551616", 0, 0, 0, 0),
	    "UINT64_MAX+1: neither integer reading, text kept");
	tap_ok(json_test_number("-9223372036854775809", 0, 0, 0, 0),
	    "INT64_MIN-1: neither integer reading, text kept");
	tap_ok(json_test_number("9007199254740993", 1, 9007199254740993LL, 1,
	    9007199254740993ULL), "2^53+1 keeps its exact value (no double)");
	tap_ok(json_test_number("-0", 1, 0, 1, 0) &&
	    json_test_number("1.0", 0, 0, 0, 0) &&
	    json_test_number("1e2", 0, 0, 0, 0),
	    "-0 is an integer; 1.0 and 1e2 are not");

	a = json_test_doc("1e400");
	tap_ok(a != NULL && isinf(json_double(a)) && json_test_dumps(a,
	    "1e400"), "1e400 reads as infinity but prints as written");
	json_free(a);

	a = json_new_int(INT64_MIN);
	b = json_new_uint(UINT64_MAX);
	tap_ok(strcmp(json_number_text(a), "-9223372036854775808") == 0 &&
	    json_int(a) == INT64_MIN && strcmp(json_number_text(b),
	    "18446744073709551615") == 0 && json_uint(b) == UINT64_MAX &&
	    !json_is_int(b), "json_new_int/json_new_uint at the limits");
	json_free(a);
	json_free(b);

	a = json_test_doc("9007199254740993");
	b = json_test_doc("9007199254740992");
	tap_ok(!json_equal(a, b),
	    "2^53+1 and 2^53 are not equal (their doubles are)");
	json_free(a);
	json_free(b);
	a = json_test_doc("[18446744073709551615,-9007199254740993]");
	b = json_test_doc("[18446744073709551614,-9007199254740992]");
	tap_ok(!json_equal(json_array_get(a, 0), json_array_get(b, 0)) &&
	    !json_equal(json_array_get(a, 1), json_array_get(b, 1)),
	    "UINT64_MAX and UINT64_MAX-1 differ, so do -(2^53+1) and -2^53");
	json_free(a);
	json_free(b);
	a = json_test_doc("[1,100,-5]");
	b = json_test_doc("[1.0,1e2,-5.00]");
	tap_ok(json_equal(a, b), "1 equals 1.0 and 100 equals 1e2");
	json_free(a);
	json_free(b);

	/* Doubles. */
	a = json_new_double(0.1);
	tap_is_str(json_number_text(a), "0.1", "0.1 prints as 0.1");
	json_free(a);
	a = json_new_double(1.0 / 3);
	tap_is_str(json_number_text(a), "0.3333333333333333",
	    "1/3 prints with 16 digits");
	json_free(a);
	a = json_new_double(100.0);
	b = json_new_double(-2.5);
	tap_ok(strcmp(json_number_text(a), "100") == 0 &&
	    strcmp(json_number_text(b), "-2.5") == 0,
	    "100.0 prints as 100 (not 1e+02), -2.5 as -2.5");
	json_free(a);
	json_free(b);
	a = json_new_double(1e300);
	b = json_new_double(5e-324);
	tap_ok(strcmp(json_number_text(a), "1e+300") == 0 &&
	    strcmp(json_number_text(b), "5e-324") == 0,
	    "1e300 and the smallest subnormal print in exponent form");
	json_free(a);
	json_free(b);
	a = json_new_double(DBL_MAX);
	snprintf(buf, sizeof buf, "%.17g", DBL_MAX);
	tap_is_str(json_number_text(a), buf, "DBL_MAX needs all 17 digits");
	json_free(a);
	a = json_new_double(NAN);
	b = json_new_double(-INFINITY);
	tap_ok(json_type(a) == JSON_NULL && json_type(b) == JSON_NULL,
	    "NaN and -Inf become null");
	json_free(a);
	json_free(b);
	{
		double	 d, special[] = { 0.0, -0.0, 1.0, 0.1, 0.2, 0.3,
		    123456.789, 1e21, 1e22, 1e-7, 2.2250738585072014e-308,
		    9007199254740993.0, 4.35, 1e16, 12345678901234567.0 };
		uint64_t bits;
		size_t	 i;
		int	 good = 1;

		for (i = 0; i < sizeof special / sizeof *special; i++)
			good &= json_test_double(special[i]);
		for (i = 0; i < 3000; i++) {
			bits = (uint64_t)json_test_rand() << 32 |
			    json_test_rand();
			memcpy(&d, &bits, sizeof d);
			if (!isfinite(d))
				continue;
			good &= json_test_double(d);
		}
		tap_ok(good, "3000 random doubles print shortest and exact");
	}
}

/* Malformed text: a cause naming the problem and the byte. */
static void
json_test_malformed(void)
{
	struct json	*j;
	char		*deep;
	size_t		 i, n;

	json_test_bad(LIT(""), "malformed JSON at byte 0: parse error: "
	    "premature EOF", "empty text: premature EOF at byte 0");
	json_test_bad(LIT("   "), "at byte 3", "blanks only: at the end");
	json_test_bad(LIT("[1, 2"), "at byte 5: parse error: premature EOF",
	    "truncated array: premature EOF at byte 5 (its end)");
	json_test_bad(LIT("{\"a\":1,}"), "at byte 8: parse error: invalid "
	    "object key", "trailing comma in an object");
	json_test_bad(LIT("[1,]"), "at byte 4", "trailing comma in an array");
	json_test_bad(LIT("[1] x"), "trailing garbage", "trailing garbage");
	json_test_bad(LIT("{\"a\":1}{\"b\":2}"), "trailing garbage",
	    "two documents in a row");
	json_test_bad(LIT("{'a':1}"), "at byte 2: lexical error",
	    "single quotes");
	json_test_bad(LIT("[tru]"), "lexical error", "misspelt true");
	json_test_bad(LIT("NaN"), "at byte 1", "NaN is not JSON");
	json_test_bad(LIT("[1.]"), "a digit is required after the decimal",
	    "1. is not a number");
	json_test_bad(LIT("01"), "trailing garbage", "leading zero");
	json_test_bad(LIT("/* c */ 1"), "comments are not enabled",
	    "comments are refused");
	json_test_bad(LIT("\"a\tb\""), "invalid character inside string",
	    "raw control character in a string");
	json_test_bad(LIT("\"\\x\""), "lexical error", "bad escape \\x");
	json_test_bad(LIT("[\"\\u12\"]"), "non-hex", "short \\u escape");
	json_test_bad(LIT("\xef\xbb\xbf{}"), "at byte 1", "byte order mark");

	/* Depth. */
	n = JSON_MAX_DEPTH + 1;
	deep = xmalloc(2 * n + 1);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[2 * n - 1 - i] = ']';
	}
	deep[2 * n] = '\0';
	j = json_parse(deep + 1, 2 * n - 2, NULL);
	tap_ok(j != NULL && json_array_size(j) == 1,
	    "JSON_MAX_DEPTH nested arrays are accepted");
	json_free(j);
	json_test_bad(deep, 2 * n, "nested deeper than 64 levels",
	    "JSON_MAX_DEPTH+1 nested arrays are refused");
	free(deep);
	n = 100000;
	deep = xmalloc(n);
	memset(deep, '[', n);
	json_test_bad(deep, n, "malformed JSON at byte 65: nested deeper than "
	    "64 levels", "100000 '[' refused at the 65th, no recursion");
	free(deep);
	n = JSON_MAX_DEPTH + 1;
	deep = xmalloc(6 * n + 2);
	for (i = 0; i < n; i++)
		memcpy(deep + 5 * i, "{\"a\":", 5);
	deep[5 * n] = '1';
	memset(deep + 5 * n + 1, '}', n);
	deep[6 * n + 1] = '\0';
	json_test_bad(deep, strlen(deep), "nested deeper",
	    "65 nested objects are refused too");
	free(deep);

	/* UTF-8. */
	json_test_bad(LIT("\"\xff\""), "invalid bytes in UTF8",
	    "0xff in a string");
	json_test_bad(LIT("[\"\xe2\x82\"]"), "UTF8", "truncated sequence");
	json_test_bad(LIT("\"\xc0\xaf\""), "invalid UTF-8 in a string",
	    "overlong '/' (C0 AF) is refused");
	json_test_bad(LIT("\"\xe0\x80\xaf\""), "invalid UTF-8",
	    "3-byte overlong is refused");
	json_test_bad(LIT("\"\xed\xa0\x80\""), "invalid UTF-8",
	    "UTF-8-encoded surrogate U+D800 is refused");
	json_test_bad(LIT("\"\xf4\x90\x80\x80\""), "invalid UTF-8",
	    "code point above U+10FFFF is refused");
	json_test_bad(LIT("{\"\xc0\xae\":1}"), "invalid UTF-8 in an object key",
	    "overlong byte sequence in a key is refused");
	json_test_bad(LIT("{\"\xff\":1}"), "UTF8", "0xff in a key");
	json_free(json_test_parse("[\"\xc2\x80\",\"\xef\xbf\xbf\","
	    "\"\xf4\x8f\xbf\xbf\",\"\xed\x9f\xbf\"]",
	    "U+0080, U+FFFF, U+10FFFF and U+D7FF are accepted"));

	/* NUL in a key. */
	json_test_bad(LIT("{\"a\\u0000b\":1}"), "object key contains a NUL",
	    "object key with \\u0000 is refused");
	json_test_bad(LIT("{\"ok\":{\"x\":[{\"\\u0000\":1}]}}"), "NUL",
	    "nested NUL key is refused");
}

/* Do json_get and the member list agree?  Borrows o. */
static int
json_test_consistent(const struct json *o)
{
	size_t	i;

	for (i = 0; i < json_object_size(o); i++)
		if (json_get(o, json_object_key(o, i)) !=
		    json_object_value(o, i))
			return (0);
	return (1);
}

/* 10,000 keys: the hash index through set, replace, del and take. */
static void
json_test_large(void)
{
	struct json	*o, *v, *p;
	char		 key[32], *text;
	int		*alive, good, k, i, n;
	size_t		 len, cap;

	alive = xcalloc(JSON_TEST_KEYS, sizeof *alive);
	o = json_new_object();
	for (k = 0; k < JSON_TEST_KEYS; k++) {
		snprintf(key, sizeof key, "k%d", k);
		json_set(o, key, json_new_int(k));
		alive[k] = 1;
	}
	good = json_object_size(o) == JSON_TEST_KEYS;
	for (k = 0; k < JSON_TEST_KEYS && good; k++) {
		snprintf(key, sizeof key, "k%d", k);
		good = json_int(json_get(o, key)) == k &&
		    strcmp(json_object_key(o, k), key) == 0;
	}
	tap_ok(good, "10000 keys: every json_get finds its value, in order");
	tap_ok(json_get(o, "k10000") == NULL && json_get(o, "") == NULL &&
	    json_get(o, "k") == NULL, "absent keys are not found");

	json_set(o, "k5000", json_new_string("five thousand"));
	tap_ok(json_object_size(o) == JSON_TEST_KEYS &&
	    strcmp(json_object_key(o, 5000), "k5000") == 0 &&
	    strcmp(json_get_string(o, "k5000"), "five thousand") == 0,
	    "json_set replaces in place: same size, same position");

	/* Delete half of the keys in a random order. */
	good = 1;
	for (n = 0; n < JSON_TEST_KEYS / 2; ) {
		k = json_test_rand() % JSON_TEST_KEYS;
		if (!alive[k])
			continue;
		snprintf(key, sizeof key, "k%d", k);
		if (n % 2 == 0)
			json_del(o, key);
		else {
			v = json_take(o, key);
			if (v == NULL || (k != 5000 && json_int(v) != k))
				good = 0;
			json_free(v);
		}
		alive[k] = 0;
		n++;
	}
	tap_ok(good, "json_take hands back the right values");
	good = json_object_size(o) == JSON_TEST_KEYS / 2 &&
	    json_test_consistent(o);
	for (k = 0; k < JSON_TEST_KEYS && good; k++) {
		snprintf(key, sizeof key, "k%d", k);
		good = (json_get(o, key) != NULL) == alive[k];
	}
	tap_ok(good, "after 5000 random deletions the index agrees with "
	    "the members");
	for (i = 1, good = 1; i < (int)json_object_size(o); i++)
		good &= atoi(json_object_key(o, i - 1) + 1) <
		    atoi(json_object_key(o, i) + 1);
	tap_ok(good, "the survivors keep their order");

	/* Add them back: they go to the end. */
	for (k = 0; k < JSON_TEST_KEYS; k++) {
		if (alive[k])
			continue;
		snprintf(key, sizeof key, "k%d", k);
		json_set(o, key, json_new_int(-k));
		alive[k] = 1;
	}
	good = json_object_size(o) == JSON_TEST_KEYS &&
	    json_test_consistent(o);
	for (k = 0; k < JSON_TEST_KEYS && good; k++) {
		snprintf(key, sizeof key, "k%d", k);
		good = json_get(o, key) != NULL;
	}
	tap_ok(good, "re-added keys are all found again");

	/* Empty it from the end, checking as it shrinks. */
	good = 1;
	while ((n = json_object_size(o)) > 0 && good) {
		snprintf(key, sizeof key, "%s", json_object_key(o, n - 1));
		v = json_take(o, key);
		good = v != NULL && json_get(o, key) == NULL &&
		    (int)json_object_size(o) == n - 1;
		json_free(v);
		if (n % 997 == 0 || n < 40)
			good = good && json_test_consistent(o);
	}
	tap_ok(good && json_object_size(o) == 0,
	    "taking the last member 10000 times keeps the index right");
	json_set(o, "again", json_new_bool(1));
	tap_ok(json_object_size(o) == 1 && json_bool(json_get(o, "again")),
	    "the emptied object is usable again");
	json_free(o);

	/*
	 * Small objects with a half-full index have long probe chains that
	 * wrap around the table: take the last member, check everything.
	 */
	good = 1;
	for (i = 0; i < 500 && good; i++) {
		o = json_new_object();
		for (k = 0; k < 17 + i % 16; k++) {
			snprintf(key, sizeof key, "%08x", json_test_rand());
			json_set(o, key, json_new_int(k));
		}
		while ((n = json_object_size(o)) > 0 && good) {
			snprintf(key, sizeof key, "%s",
			    json_object_key(o, n - 1));
			json_del(o, key);
			good = json_get(o, key) == NULL &&
			    json_test_consistent(o);
		}
		json_free(o);
	}
	tap_ok(good, "500 objects of 17 to 32 random keys emptied from the "
	    "end: every other key still found each time");

	/* A parsed document with many keys and duplicates. */
	cap = JSON_TEST_KEYS * 24 + 64;
	text = xmalloc(cap);
	len = 0;
	text[len++] = '{';
	for (k = 0; k < JSON_TEST_KEYS; k++)
		len += snprintf(text + len, cap - len, "\"k%d\":%d,", k % 7000,
		    k);
	len += snprintf(text + len, cap - len, "\"last\":true}");
	p = json_parse(text, len, NULL);
	good = p != NULL && json_object_size(p) == 7001 &&
	    json_int(json_get(p, "k0")) == 7000 &&
	    json_int(json_get(p, "k2999")) == 9999 &&
	    json_int(json_get(p, "k3000")) == 3000 &&
	    strcmp(json_object_key(p, 0), "k0") == 0 &&
	    json_test_consistent(p);
	tap_ok(good, "parsed 10000 members with 3000 duplicates: last wins, "
	    "first position kept");
	json_free(p);
	free(text);
	free(alive);

	p = json_test_doc("{\"a\":1,\"b\":2,\"a\":{\"x\":[1]},\"a\":3}");
	tap_ok(p != NULL && json_test_dumps(p, "{\"a\":3,\"b\":2}"),
	    "duplicate keys in a small object: last value wins");
	json_free(p);
}

/* json_merge, json_equal, json_get_path, json_copy, arrays. */
static void
json_test_edit(void)
{
	struct json	*d, *s, *c, *a, *v;
	char		 longkey[300];

	d = json_test_doc("{\"a\":1,\"o\":{\"x\":1,\"y\":2},\"arr\":[1,2],"
	    "\"s\":\"old\",\"keep\":{\"k\":true}}");
	s = json_test_doc("{\"o\":{\"y\":3,\"z\":{\"deep\":1}},\"arr\":[9],"
	    "\"s\":null,\"n\":\"new\"}");
	json_merge(d, s);
	tap_ok(json_test_dumps(d, "{\"a\":1,\"o\":{\"x\":1,\"y\":3,\"z\":"
	    "{\"deep\":1}},\"arr\":[9],\"s\":null,\"keep\":{\"k\":true},"
	    "\"n\":\"new\"}"), "json_merge: objects merge, arrays and "
	    "scalars replace, new keys appended");
	json_set(json_get(s, "o"), "y", json_new_int(99));
	tap_ok(json_int(json_get_path(d, "o.y")) == 3,
	    "merged values are copies of the source");
	json_free(s);
	s = json_test_doc("{\"o\":5,\"a\":{\"b\":1}}");
	json_merge(d, s);
	tap_ok(json_int(json_get(d, "o")) == 5 &&
	    json_int(json_get_path(d, "a.b")) == 1,
	    "an object is replaced by a scalar and a scalar by an object");
	json_free(s);
	c = json_copy(d);
	s = json_test_doc("[1]");
	json_merge(d, s);
	tap_ok(json_equal(c, d), "merging a non-object changes nothing");
	json_free(s);
	json_free(c);
	json_free(d);

	/* json_equal. */
	d = json_test_doc("{\"a\":1,\"b\":{\"c\":[1,\"x\",null]}}");
	s = json_test_doc("{\"b\":{\"c\":[1,\"x\",null]},\"a\":1}");
	tap_ok(json_equal(d, s) && json_equal(s, d),
	    "json_equal ignores member order");
	json_free(s);
	s = json_test_doc("{\"a\":1,\"b\":{\"c\":[1,null,\"x\"]}}");
	tap_ok(!json_equal(d, s), "json_equal keeps array order");
	json_free(s);
	json_free(d);
	d = json_test_doc("{\"a\":null}");
	s = json_test_doc("{\"b\":null}");
	tap_ok(!json_equal(d, s), "{a:null} and {b:null} differ");
	json_free(s);
	s = json_test_doc("{\"a\":null,\"b\":null}");
	tap_ok(!json_equal(d, s) && !json_equal(s, d),
	    "objects of different sizes differ");
	json_free(s);
	json_free(d);
	d = json_test_doc("[\"a\\u0000b\",1,0,null]");
	s = json_test_doc("[\"a\\u0000c\",\"1\",false,false]");
	tap_ok(!json_equal(json_array_get(d, 0), json_array_get(s, 0)) &&
	    !json_equal(json_array_get(d, 1), json_array_get(s, 1)) &&
	    !json_equal(json_array_get(d, 2), json_array_get(s, 2)) &&
	    !json_equal(json_array_get(d, 3), json_array_get(s, 3)),
	    "strings differing after a NUL, 1/\"1\", 0/false, null/false "
	    "all differ");
	json_free(s);
	json_free(d);

	/* json_get_path. */
	d = json_test_doc("{\"a\":{\"b\":{\"c\":\"deep\"}},\"l\":[{\"x\":1}]}");
	tap_ok(strcmp(json_string(json_get_path(d, "a.b.c")), "deep") == 0 &&
	    json_get_path(d, "a.x.c") == NULL &&
	    json_get_path(d, "a.b.c.d") == NULL &&
	    json_get_path(d, "l.x") == NULL && json_get_path(d, "") == d,
	    "json_get_path: found, missing middle, through a string or an "
	    "array, empty path");
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	json_set(d, longkey, json_new_int(7));
	tap_ok(json_int(json_get(d, longkey)) == 7 &&
	    json_get_path(d, longkey) == NULL,
	    "a path segment over 255 bytes finds nothing (no overflow)");

	/* json_copy is deep. */
	c = json_copy(d);
	tap_ok(json_equal(c, d) && c != d, "json_copy is equal");
	json_set(json_get_path(d, "a.b"), "c", json_new_string("changed"));
	json_array_push(json_get(d, "l"), json_new_null());
	tap_ok(strcmp(json_string(json_get_path(c, "a.b.c")), "deep") == 0 &&
	    json_array_size(json_get(c, "l")) == 1 && !json_equal(c, d),
	    "json_copy is deep: editing the original leaves the copy");
	json_free(c);
	json_free(d);
	d = json_test_doc("[2.50]");
	c = json_copy(d);
	tap_ok(json_test_dumps(c, "[2.50]"), "a copied number keeps its text");
	json_free(c);
	json_free(d);

	/* Arrays. */
	a = json_new_array();
	json_array_push(a, json_new_int(1));
	json_array_push(a, json_new_int(2));
	json_array_push(a, json_new_int(3));
	v = json_array_take(a, 1);
	tap_ok(json_int(v) == 2 && json_array_size(a) == 2 &&
	    json_int(json_array_get(a, 1)) == 3 &&
	    json_array_get(a, 2) == NULL && json_array_take(a, 5) == NULL,
	    "json_array_take shifts the rest; out of range gives NULL");
	json_free(v);
	tap_ok(json_object_size(a) == 0 && json_get(a, "x") == NULL &&
	    json_string(a) == NULL && json_array_size(NULL) == 0 &&
	    json_type(NULL) == JSON_NULL,
	    "object calls on an array and NULL are harmless");
	json_free(a);
	json_free(NULL);
	tap_ok(strcmp(json_type_name(JSON_BOOL), "a boolean") == 0 &&
	    strcmp(json_type_name(JSON_ARRAY), "an array") == 0,
	    "type names read well in messages");
}

static const char *const json_test_protos[] = { "3.1", "3.1.1", "5", NULL };
static const char *const json_test_modes[] = { "a", "b", NULL };

static const struct json_field json_test_will[] = {
	{ "topic", JF_STRING, 0, 1, 128, NULL, "\"will\"", NULL, NULL },
	{ "qos", JF_INT, 0, 0, 2, NULL, "0", NULL, NULL },
	{ "retain", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field json_test_tls[] = {
	{ "enable", JF_BOOL, 0, 0, 0, NULL, "false", NULL, NULL },
	{ "caFile", JF_STRING, JF_NULLABLE, 0, 0, NULL, "null", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field json_test_tag[] = {
	{ "", JF_STRING, 0, 1, 8, NULL, NULL, NULL, NULL }
};

static const struct json_field json_test_label[] = {
	{ "", JF_STRING, 0, 0, 4, NULL, NULL, NULL, NULL }
};

static const struct json_field json_test_mode[] = {
	{ "", JF_ENUM, JF_NULLABLE, 0, 0, json_test_modes, NULL, NULL, NULL }
};

static const struct json_field json_test_item_fields[] = {
	{ "name", JF_STRING, JF_REQUIRED, 1, 10, NULL, NULL, NULL, NULL },
	{ "n", JF_INT, 0, 0, 0, NULL, "7", NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field json_test_item[] = {
	{ "", JF_OBJECT, 0, 0, 0, NULL, NULL, json_test_item_fields, NULL }
};

static const struct json_field json_test_version[] = {
	{ "", JF_ENUM, 0, 0, 0, json_test_protos, NULL, NULL, NULL }
};

/* A check callback: the host may not be "forbidden". */
static int
json_test_check_host(struct json *v, const char *path, char **cause)
{
	if (strcmp(json_string(v), "forbidden") == 0) {
		xasprintf(cause, "%s: is not allowed here", path);
		return (-1);
	}
	return (0);
}

static const struct json_field json_test_schema[] = {
	{ "id", JF_INT, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "status", JF_STRING, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "name", JF_STRING, JF_REQUIRED, 1, 16, NULL, NULL, NULL, NULL },
	{ "host", JF_STRING, 0, 1, 253, NULL, "\"localhost\"", NULL,
	    json_test_check_host },
	{ "port", JF_INT, 0, 1, 65535, NULL, "1883", NULL, NULL },
	{ "protocolVersion", JF_ENUM, 0, 0, 0, json_test_protos, "\"3.1.1\"",
	    NULL, NULL },
	{ "keepAlive", JF_INT, 0, 0, 0, NULL, NULL, NULL, NULL },
	{ "ratio", JF_NUMBER, 0, 0, 1, NULL, NULL, NULL, NULL },
	{ "code", JF_STRING, 0, 4, 4, NULL, NULL, NULL, NULL },
	{ "comment", JF_STRING, JF_NULLABLE, 0, 10, NULL, NULL, NULL, NULL },
	{ "willMessage", JF_OBJECT, 0, 0, 0, NULL, NULL, json_test_will,
	    NULL },
	{ "tls", JF_OBJECT, 0, 0, 0, NULL, NULL, json_test_tls, NULL },
	{ "tags", JF_ARRAY, 0, 0, 4, NULL, NULL, json_test_tag, NULL },
	{ "items", JF_ARRAY, 0, 0, 0, NULL, NULL, json_test_item, NULL },
	{ "versions", JF_ARRAY, 0, 0, 0, NULL, NULL, json_test_version,
	    NULL },
	{ "labels", JF_MAP, 0, 0, 3, NULL, NULL, json_test_label, NULL },
	{ "modes", JF_MAP, 0, 0, 0, NULL, NULL, json_test_mode, NULL },
	{ "enabled", JF_BOOL, 0, 0, 0, NULL, NULL, NULL, NULL },
	{ "extra", JF_ANY, 0, 0, 0, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* Validate text against the test schema; the document, or NULL. */
static struct json *
json_test_validate(const char *text, char **cause)
{
	struct json	*j;

	*cause = NULL;
	if ((j = json_test_doc(text)) == NULL) {
		xasprintf(cause, "test document does not parse: %s", text);
		return (NULL);
	}
	if (json_validate(j, json_test_schema, cause) != 0) {
		json_free(j);
		return (NULL);
	}
	return (j);
}

/* Expect text to be refused with exactly the message want. */
static void
json_test_invalid(const char *text, const char *want, const char *name)
{
	struct json	*j;
	char		*cause;

	j = json_test_validate(text, &cause);
	if (j != NULL) {
		tap_ok(0, name);
		printf("#   accepted %s\n", text);
	} else
		tap_is_str(cause, want, name);
	json_free(j);
	free(cause);
}

/* Expect text to validate into exactly the document want. */
static void
json_test_valid(const char *text, const char *want, const char *name)
{
	struct json	*j;
	char		*cause;

	j = json_test_validate(text, &cause);
	if (j == NULL) {
		tap_ok(0, name);
		printf("#   refused: %s\n", cause);
	} else
		tap_ok(json_test_dumps(j, want), name);
	json_free(j);
	free(cause);
}

#define JSON_TEST_DEFAULTS						\
	"\"host\":\"localhost\",\"port\":1883,\"protocolVersion\":\"3.1.1\","\
	"\"willMessage\":{\"topic\":\"will\",\"qos\":0,\"retain\":false},"\
	"\"tls\":{\"enable\":false,\"caFile\":null}"

/* The validator: defaults, dropping, every rule and its message. */
static void
json_test_validator(void)
{
	struct json	*j;
	char		*cause, *text;
	size_t		 len, cap, k;
	uint64_t	 t0, ms;

	json_test_valid("{\"name\":\"n\"}",
	    "{\"name\":\"n\"," JSON_TEST_DEFAULTS "}",
	    "defaults are filled, absent objects get their members' defaults");
	json_test_valid("{\"id\":\"not even a number\",\"status\":[1],"
	    "\"name\":\"n\",\"bogus\":1,\"willMessage\":{\"qos\":1,"
	    "\"junk\":true}}", "{\"name\":\"n\",\"willMessage\":{\"qos\":1,"
	    "\"topic\":\"will\",\"retain\":false},\"host\":\"localhost\","
	    "\"port\":1883,\"protocolVersion\":\"3.1.1\",\"tls\":{\"enable\":"
	    "false,\"caFile\":null}}",
	    "read-only and unknown members are dropped, nested ones too, "
	    "without checking them");
	json_test_invalid("{\"host\":\"h\"}", "name: is required",
	    "a missing required member");
	json_test_invalid("[]", "body: must be an object, not an array",
	    "a body that is not an object");
	json_test_invalid("{\"name\":\"n\",\"willMessage\":{\"qos\":3}}",
	    "willMessage.qos: must be an integer from 0 to 2, not 3",
	    "nested range message names the dotted path");
	json_test_invalid("{\"name\":\"n\",\"port\":0}",
	    "port: must be an integer from 1 to 65535, not 0",
	    "int below its range");
	json_test_invalid("{\"name\":\"n\",\"port\":1.5}",
	    "port: must be a whole number", "a fraction for an int");
	json_test_invalid("{\"name\":\"n\",\"port\":18446744073709551615}",
	    "port: must be an integer from 1 to 65535, not "
	    "18446744073709551615", "an integer beyond int64 is out of range");
	json_test_invalid("{\"name\":\"n\",\"keepAlive\":"
	    "9223372036854775808}", "keepAlive: must be an integer from "
	    "-9223372036854775808 to 9223372036854775807, not "
	    "9223372036854775808", "beyond int64 without a range");
	json_test_valid("{\"name\":\"n\",\"keepAlive\":-5,\"port\":65535}",
	    "{\"name\":\"n\",\"keepAlive\":-5,\"port\":65535,\"host\":"
	    "\"localhost\",\"protocolVersion\":\"3.1.1\",\"willMessage\":{"
	    "\"topic\":\"will\",\"qos\":0,\"retain\":false},\"tls\":{"
	    "\"enable\":false,\"caFile\":null}}",
	    "an int without a range takes anything; the range is inclusive");
	json_test_invalid("{\"name\":\"n\",\"port\":\"80\"}",
	    "port: must be an integer, not a string", "a string for an int");
	json_test_invalid("{\"name\":\"n\",\"enabled\":\"yes\"}",
	    "enabled: must be a boolean, not a string", "a string for a bool");
	json_test_invalid("{\"name\":\"n\",\"enabled\":1}",
	    "enabled: must be a boolean, not a number", "a number for a bool");
	json_test_invalid("{\"name\":\"n\",\"ratio\":1.5}",
	    "ratio: must be a number from 0 to 1, not 1.5",
	    "number above its range");
	json_test_invalid("{\"name\":\"n\",\"host\":null}",
	    "host: must be a string, not null", "null where not nullable");
	json_test_invalid("{\"name\":\"n\",\"tls\":[]}",
	    "tls: must be an object, not an array", "an array for an object");

	/* Strings: length in characters. */
	json_test_valid("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80\"}",
	    "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xf0\x9f\x98\x80\"," JSON_TEST_DEFAULTS "}",
	    "16 characters in 34 bytes fit a 16-character limit");
	json_test_invalid("{\"name\":\"abcdefghijklmnopq\"}",
	    "name: must be 1 to 16 characters long", "17 characters");
	json_test_invalid("{\"name\":\"\"}",
	    "name: must be 1 to 16 characters long", "empty string");
	json_test_invalid("{\"name\":\"n\",\"code\":\"abc\"}",
	    "code: must be 4 characters long", "fixed length message");
	json_test_invalid("{\"name\":\"n\",\"comment\":\"12345678901\"}",
	    "comment: must be at most 10 characters long",
	    "maximum-only message");
	json_test_invalid("{\"name\":\"a\\u0000b\"}",
	    "name: must not contain NUL characters", "NUL in a string");
	json_test_valid("{\"name\":\"n\",\"comment\":null}",
	    "{\"name\":\"n\",\"comment\":null," JSON_TEST_DEFAULTS "}",
	    "JF_NULLABLE takes null");
	json_test_invalid("{\"name\":\"n\",\"host\":\"forbidden\"}",
	    "host: is not allowed here", "the check callback runs with the "
	    "path");

	/* Enums. */
	json_test_invalid("{\"name\":\"n\",\"protocolVersion\":\"4\"}",
	    "protocolVersion: must be one of 3.1, 3.1.1, 5, not \"4\"",
	    "an enum lists its values");
	json_test_invalid("{\"name\":\"n\",\"protocolVersion\":3.10}",
	    "protocolVersion: must be one of 3.1, 3.1.1, 5, not \"3.10\"",
	    "a number for an enum is read as written (3.10 is not 3.1)");
	json_test_invalid("{\"name\":\"n\",\"protocolVersion\":true}",
	    "protocolVersion: must be a string, not a boolean",
	    "a boolean for an enum");
	j = json_test_validate("{\"name\":\"n\",\"protocolVersion\":3.1,"
	    "\"versions\":[\"5\",5,3.1],\"modes\":{\"x\":\"a\",\"y\":null}}",
	    &cause);
	tap_ok(j != NULL && json_get_string(j, "protocolVersion") != NULL &&
	    strcmp(json_get_string(j, "protocolVersion"), "3.1") == 0,
	    "protocolVersion 3.1 (a number) is accepted as the string \"3.1\"");
	tap_ok(j != NULL && json_test_dumps(json_get(j, "versions"),
	    "[\"5\",\"5\",\"3.1\"]"), "numeric enums in an array become "
	    "strings, in order");
	tap_ok(j != NULL && json_test_dumps(json_get(j, "modes"),
	    "{\"x\":\"a\",\"y\":null}"), "a nullable enum map keeps its null");
	json_free(j);
	free(cause);
	json_test_invalid("{\"name\":\"n\",\"versions\":[\"5\",4]}",
	    "versions[1]: must be one of 3.1, 3.1.1, 5, not \"4\"",
	    "enum element path");

	/* Arrays and maps. */
	json_test_invalid("{\"name\":\"n\",\"tags\":[\"a\",\"b\",5]}",
	    "tags[2]: must be a string, not a number",
	    "array element path tags[2]");
	json_test_invalid("{\"name\":\"n\",\"tags\":[\"a\",\"b\",\"c\",\"d\","
	    "\"e\"]}", "tags: must have 0 to 4 elements", "too many elements");
	json_test_invalid("{\"name\":\"n\",\"tags\":[\"123456789\"]}",
	    "tags[0]: must be 1 to 8 characters long",
	    "element string length");
	json_test_invalid("{\"name\":\"n\",\"items\":[{\"name\":\"a\"},"
	    "{\"n\":1}]}", "items[1].name: is required",
	    "object inside an array: items[1].name");
	json_test_valid("{\"name\":\"n\",\"items\":[{\"name\":\"a\",\"x\":1}]}",
	    "{\"name\":\"n\",\"items\":[{\"name\":\"a\",\"n\":7}],"
	    JSON_TEST_DEFAULTS "}", "objects in arrays get defaults and lose "
	    "unknown members");
	json_test_invalid("{\"name\":\"n\",\"labels\":{\"a\":\"x\",\"b\":"
	    "\"toolong\"}}", "labels.b: must be at most 4 characters long",
	    "JF_MAP value path labels.b");
	json_test_invalid("{\"name\":\"n\",\"labels\":{\"a\":\"\",\"b\":\"\","
	    "\"c\":\"\",\"d\":\"\"}}", "labels: must have 0 to 3 members",
	    "JF_MAP member count");
	json_test_invalid("{\"name\":\"n\",\"labels\":[]}",
	    "labels: must be an object, not an array",
	    "JF_MAP wants an object");
	json_test_valid("{\"name\":\"n\",\"extra\":{\"any\":[1,{}]},"
	    "\"labels\":{\"free key\":\"v\"}}", "{\"name\":\"n\",\"extra\":"
	    "{\"any\":[1,{}]},\"labels\":{\"free key\":\"v\"},"
	    JSON_TEST_DEFAULTS "}", "JF_ANY and JF_MAP keys are kept as sent");

	/* A hostile body: many unknown members must cost O(n). */
	cap = JSON_TEST_UNKNOWN * 16 + 64;
	text = xmalloc(cap);
	len = snprintf(text, cap, "{\"name\":\"n\"");
	for (k = 0; k < JSON_TEST_UNKNOWN; k++)
		len += snprintf(text + len, cap - len, ",\"u%zu\":%zu", k, k);
	len += snprintf(text + len, cap - len, ",\"port\":8883}");
	j = json_parse(text, len, NULL);
	t0 = util_now_ms();
	cause = NULL;
	tap_ok(j != NULL && json_validate(j, json_test_schema, &cause) == 0 &&
	    json_test_dumps(j, "{\"name\":\"n\",\"port\":8883,\"host\":"
	    "\"localhost\",\"protocolVersion\":\"3.1.1\",\"willMessage\":{"
	    "\"topic\":\"will\",\"qos\":0,\"retain\":false},\"tls\":{"
	    "\"enable\":false,\"caFile\":null}}"),
	    "100000 unknown members are dropped, the known ones kept in order");
	ms = util_now_ms() - t0;
	if (!tap_ok(ms < 5000, "and that takes linear time, not quadratic"))
		printf("#   %" PRIu64 " ms\n", ms);
	json_free(j);
	free(cause);
	free(text);
}

int
main(void)
{
	json_test_roundtrips();
	json_test_numbers();
	json_test_malformed();
	json_test_large();
	json_test_edit();
	json_test_validator();
	return (tap_done());
}

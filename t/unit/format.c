/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for payload formatting (format.c): the native default format
 * against libjq running the same filter (through format.c, and through
 * jq alone with the merge written in jq) on thousands of pseudo-random
 * records of every type, with names and strings that need escapes or
 * hold bad UTF-8; jq 1.6's number and date printing at its edges; the
 * exact size after every record on both paths; the size limit; the merge
 * rules; the custom filters of the vendor's manual; compile and runtime
 * errors; and the speed of the native renderer against libjq.
 */

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jq.h>

#include "format.h"
#include "json.h"
#include "tag.h"
#include "tap.h"
#include "xmalloc.h"

#define FORMAT_TEST_NRAND	4000	/* random records compared */
#define FORMAT_TEST_BATCH	200	/* records per message compared */
#define FORMAT_TEST_NTYPE	300	/* records per type compared */
#define FORMAT_TEST_NPREFIX	120	/* records of the size-per-add runs */
#define FORMAT_TEST_NSPEED	20000	/* records of the speed runs */
#define FORMAT_TEST_EXACT	9007199254740992.0	/* 2^53 */

/* What uplinkd.c would give the modules linked in. */
uint64_t		 uplinkd_uptime(void);
struct event_base	*uplinkd_base(void);

uint64_t
uplinkd_uptime(void)
{
	return (0);
}

struct event_base *
uplinkd_base(void)
{
	return (NULL);
}

/* A record with room for its names and bytes. */
struct format_test_rec {
	struct tag_rec	 rec;
	char		 prvd[64];
	char		 src[64];
	char		 name[64];
	char		 unit[16];
	char		 bytes[2048];
};

static uint64_t	format_test_seed = 0x9e3779b97f4a7c15ULL;

/* Names that need escapes, or hold bad UTF-8 that jq repairs. */
static const char *const format_test_weird[] = {
	"quote\"d", "back\\slash", "ctl\x01\x1f", "tab\tnl\n", "del\x7f",
	"caf\xc3\xa9", "emoji\xf0\x9f\x98\x80", "bad\xff\xfe", "bad\xfe\xff",
	"cut\xe2\x82", "sur\xed\xa0\x80", "over\xc0\xaf", "high\xf5\xf8",
	"big\xf4\x90\x80\x80", "sl/ash", "euro\xe2\x82\xac", "lone\x80",
	"c2\xc2", "three\xe2\x28\xa1", "vt\x0b" "ff\x0c" "bs\x08", "", "tags",
	"values"
};
#define FORMAT_TEST_NWEIRD \
	(sizeof format_test_weird / sizeof format_test_weird[0])

static const double format_test_doubles[] = {
	0.0, -0.0, 1e-05, 1e+100, 0.1, 100.0, 1.5e16, 1e16, 1e17,
	123456789012345680000.0, 0.0001, 0.00001, 1e-7, 1.0000000000000002,
	5e-324, 2.2250738585072014e-308, DBL_MAX, -DBL_MAX,
	9007199254740991.0, 9007199254740992.0, 1e15, 999999999999999.9,
	0.30000000000000004, 5.9409111446723744e-213,
	6.0834930121445114e-210, 1e21, 1e22, 1e23, -1.5, 3.14159, 2.5e-5,
	1234567.125, 0x1p-1022, 0x1p1023, 0x1p-1074, 0x1p-1000, 0x1p100,
	12345678901234567890123.0, 1.25e-300, 3e21, 0.000123, -273.15,
	4.35, 2.675, 1e-308, 4.9406564584124654e-324, 1.7976931348623157e308,
	0.1 + 0.2, 100.5, 1e300, 99999999999999999.0, 1.5e-7, 123e-20
};

static const float format_test_floats[] = {
	0.0f, -0.0f, 0.1f, 1e10f, 16777216.0f, 16777217.0f, 3.4028235e38f,
	1e-45f, 1.17549435e-38f, 0.3f, 1e-7f, 123456.7f, 999999.9f, 1e6f,
	33554432.0f, -2.5f, 7e-10f, FLT_MIN, 1.0e-38f, 65504.0f, 0.15625f,
	2.5f, 0.5f, 1.5e-5f, 9.999999e-5f, 1e-4f, 100000.0f, 123456789.0f,
	-1e20f, 3.14159265f, 2.7182818f, 0.0001f, 8388608.5f, 1e-39f,
	999999.5f, 999999.56f
};

/* ts values whose dates are at jq's edges. */
static const int64_t format_test_ts[] = {
	0, 1, -1, 999, -999, 1000, -1000, 999999, 1000000, -1000000,
	-1500000, -500000, 1700000000123456, 1700000000999999,
	-1700000000999999, 253402300799999999, 253402300800000000,
	-30610224000000000, -30610224000000001, -62135596800000000,
	-62135596801000000, 1000000000000000000, -1000000000000000000,
	INT64_MAX, INT64_MIN, 951782400000000, 951868800000000,
	4107542400000000, -2208988800000000, 1709164800000000
};

static const char *const format_test_units[] = { "", "%", "°C", "kW\"h" };

/* xorshift64: the same sequence on every run. */
static uint64_t
format_test_rand(void)
{
	format_test_seed ^= format_test_seed << 13;
	format_test_seed ^= format_test_seed >> 7;
	format_test_seed ^= format_test_seed << 17;
	return (format_test_seed);
}

/* A name: mostly plain, sometimes one that needs care. */
static void
format_test_name(char *buf, size_t size, const char *prefix, unsigned int n)
{
	if (format_test_rand() % 8 == 0)
		snprintf(buf, size, "%s%u", format_test_weird[
		    format_test_rand() % FORMAT_TEST_NWEIRD], n % 3);
	else
		snprintf(buf, size, "%s%u", prefix, n);
}

/* Random bytes of every kind a string can hold; returns the length. */
static size_t
format_test_bytes(char *buf, size_t max)
{
	static const char *const pieces[] = {
		"\"", "\\", "/", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "\xed\xa0\x80", "\xc0\xaf", "\xff",
		"\xe2\x82", "\xf4\x90\x80\x80", "\x80\x80", "\xf5", "\xc2"
	};
	size_t	len, n = 0, k;
	int	c;

	len = format_test_rand() % 40;
	while (n < len && n + 8 < max) {
		c = format_test_rand() % 10;
		if (c < 5)
			buf[n++] = ' ' + format_test_rand() % 95;
		else if (c < 7)
			buf[n++] = format_test_rand() % 32;
		else if (c < 9) {
			k = format_test_rand() %
			    (sizeof pieces / sizeof pieces[0]);
			memcpy(buf + n, pieces[k], strlen(pieces[k]));
			n += strlen(pieces[k]);
		} else
			buf[n++] = (char)(0x80 + format_test_rand() % 128);
	}
	return (n);
}

/* A double of every kind: specials, whole bits, sensor-like, integers. */
static double
format_test_double(void)
{
	uint64_t	u;
	double		d;

	switch (format_test_rand() % 5) {
	case 0:
		return (format_test_doubles[format_test_rand() %
		    (sizeof format_test_doubles / sizeof (double))]);
	case 1:
		do {
			u = format_test_rand();
			memcpy(&d, &u, sizeof d);
		} while (!isfinite(d));
		return (d);
	case 2:
		return ((double)((int64_t)(format_test_rand() % 2000001) -
		    1000000) / 100.0);
	case 3:
		return (ldexp((double)(format_test_rand() >> 11),
		    (int)(format_test_rand() % 200) - 150));
	default:
		return ((double)((int64_t)(format_test_rand() % 20000001) -
		    10000000) / pow(10, format_test_rand() % 12));
	}
}

/* A float of every kind, held as the double nearest it. */
static double
format_test_float(void)
{
	uint32_t	u;
	float		f;

	switch (format_test_rand() % 4) {
	case 0:
		return (format_test_floats[format_test_rand() %
		    (sizeof format_test_floats / sizeof (float))]);
	case 1:
		do {
			u = (uint32_t)format_test_rand();
			memcpy(&f, &u, sizeof f);
		} while (!isfinite(f));
		return (f);
	case 2:
		return ((float)((int)(format_test_rand() % 200001) - 100000) /
		    10.0f);
	default:
		return ((float)((double)(format_test_rand() % 100000000) /
		    pow(10, format_test_rand() % 15)));
	}
}

/* A value of type t that libjq holds exactly (|integers| <= 2^53). */
static void
format_test_value(struct format_test_rec *r, enum tag_type t)
{
	struct tag_value	*v = &r->rec.value;
	uint64_t		 x = format_test_rand();

	memset(v, 0, sizeof *v);
	v->type = t;
	switch (t) {
	case TAG_UINT8:
		v->n.u = x % 256;
		break;
	case TAG_UINT16:
		v->n.u = x % 65536;
		break;
	case TAG_UINT32:
		v->n.u = x % 4294967296ULL;
		break;
	case TAG_UINT64:
		v->n.u = x % 3 == 0 ? (1ULL << 53) - x % 7 :
		    x % (1ULL << (x % 54));
		break;
	case TAG_INT8:
		v->n.i = (int8_t)x;
		break;
	case TAG_INT16:
		v->n.i = (int16_t)x;
		break;
	case TAG_INT32:
		v->n.i = (int32_t)x;
		break;
	case TAG_INT64:
		v->n.i = (int64_t)(x % (1ULL << 54)) - (1LL << 53);
		break;
	case TAG_FLOAT:
		v->n.d = format_test_float();
		break;
	case TAG_DOUBLE:
		v->n.d = format_test_double();
		break;
	case TAG_STRING:
	case TAG_RAW:
		v->len = format_test_bytes(r->bytes, sizeof r->bytes);
		v->s = r->bytes;
		break;
	case TAG_BOOLEAN:
		v->n.b = x & 1;
		break;
	default:
		break;
	}
}

/* A ts: mostly now-ish, sometimes an edge, sometimes anything at all. */
static int64_t
format_test_time(void)
{
	switch (format_test_rand() % 6) {
	case 0:
		return (format_test_ts[format_test_rand() %
		    (sizeof format_test_ts / sizeof format_test_ts[0])]);
	case 1:
		return ((int64_t)format_test_rand());
	case 2:
		return ((int64_t)(format_test_rand() % 20000000000000000ULL) -
		    10000000000000000LL);
	default:
		return (1700000000000000LL + (int64_t)(format_test_rand() %
		    100000000000ULL));
	}
}

/* Fill n random records (type -1: any) over nprv x nsrc x ntag tags. */
static void
format_test_fill(struct format_test_rec *r, size_t n, int type,
    unsigned int nprv, unsigned int nsrc, unsigned int ntag)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		memset(&r[i].rec, 0, sizeof r[i].rec);
		format_test_name(r[i].prvd, sizeof r[i].prvd, "prvd",
		    format_test_rand() % nprv);
		format_test_name(r[i].src, sizeof r[i].src, "src",
		    format_test_rand() % nsrc);
		format_test_name(r[i].name, sizeof r[i].name, "tag",
		    format_test_rand() % ntag);
		snprintf(r[i].unit, sizeof r[i].unit, "%s",
		    format_test_units[format_test_rand() % 4]);
		r[i].rec.prvd = r[i].prvd;
		r[i].rec.src = r[i].src;
		r[i].rec.name = r[i].name;
		r[i].rec.unit = r[i].unit;
		format_test_value(&r[i], type >= 0 ? (enum tag_type)type :
		    (enum tag_type)(format_test_rand() % TAG_NTYPES));
		r[i].rec.ts = format_test_time();
	}
}

/* A format that must compile; caller frees. */
static struct format *
format_test_format(const char *filter)
{
	struct format	*f;
	char		*cause = NULL;

	if ((f = format_new(filter, &cause)) == NULL) {
		printf("# filter %s: %s\n", filter, cause);
		exit(1);
	}
	return (f);
}

/* The default filter run by libjq through format.c; caller frees. */
static struct format *
format_test_jq_default(void)
{
	char		*text;
	struct format	*f;

	xasprintf(&text, "(%s)", format_default_filter());
	f = format_test_format(text);
	free(text);
	return (f);
}

/*
 * Run n records through a fresh buffer of f without a limit; the message
 * (caller frees) or NULL, its length in *len.  Counts a failed add.
 */
static char *
format_test_run(struct format *f, struct format_test_rec *r, size_t n,
    size_t *len, int *bad)
{
	struct format_buf	*fb;
	char			*text, *cause = NULL;
	size_t			 i;

	fb = format_buf_new(f);
	for (i = 0; i < n; i++) {
		if (format_buf_add(fb, &r[i].rec, 0, &cause) != FORMAT_OK) {
			printf("#   record %zu: %s\n", i, cause);
			free(cause);
			cause = NULL;
			(*bad)++;
		}
	}
	text = format_buf_take(fb, len);
	format_buf_free(fb);
	return (text);
}

/* Are two messages the same bytes?  Shows where they part if not. */
static int
format_test_same(const char *a, size_t alen, const char *b, size_t blen,
    const char *name)
{
	size_t	i;

	if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
		return (tap_ok(1, name));
	tap_ok(0, name);
	for (i = 0; i < alen && i < blen && a[i] == b[i]; i++)
		;
	printf("#   lengths %zu and %zu, first difference at %zu\n", alen,
	    blen, i);
	printf("#   got  ...%.80s\n", a + (i > 40 ? i - 40 : 0));
	printf("#   want ...%.80s\n", b + (i > 40 ? i - 40 : 0));
	return (0);
}

/*
 * The message jq alone makes of the records: the default filter, then
 * the merge written in jq, printed by jq (caller frees).
 */
static char *
format_test_oracle(struct format_test_rec *r, size_t n)
{
	static const char	*merge =
	    "def m($a; $b): if ($a|type) == \"object\" and ($b|type) == "
	    "\"object\" then reduce ($b|keys_unsorted[]) as $k ($a; "
	    ".[$k] = m(.[$k]; $b[$k])) elif ($a|type) == \"array\" and "
	    "($b|type) == \"array\" then $a + $b else $b end; m(.[0]; .[1])";
	jq_state	*fq, *mq;
	struct json	*val;
	jv		 rec, out, state = jv_null(), s;
	size_t		 i;
	char		*text;

	fq = jq_init();
	mq = jq_init();
	if (!jq_compile(fq, format_default_filter()) ||
	    !jq_compile(mq, merge))
		exit(1);
	for (i = 0; i < n; i++) {
		val = tag_value_json(&r[i].rec.value);
		rec = jv_object();
		rec = jv_object_set(rec, jv_string("prvdName"),
		    jv_string(r[i].rec.prvd));
		rec = jv_object_set(rec, jv_string("srcName"),
		    jv_string(r[i].rec.src));
		rec = jv_object_set(rec, jv_string("tagName"),
		    jv_string(r[i].rec.name));
		rec = jv_object_set(rec, jv_string("dataType"),
		    jv_string(tag_type_name(r[i].rec.value.type)));
		if (json_type(val) == JSON_STRING)
			rec = jv_object_set(rec, jv_string("dataValue"),
			    jv_string_sized(json_string(val),
			    json_strlen(val)));
		else {
			text = json_dump(val, NULL);
			rec = jv_object_set(rec, jv_string("dataValue"),
			    jv_parse(text));
			free(text);
		}
		rec = jv_object_set(rec, jv_string("dataUnit"),
		    jv_string(r[i].rec.unit));
		rec = jv_object_set(rec, jv_string("ts"),
		    jv_number((double)(r[i].rec.ts / 1000)));
		json_free(val);
		jq_start(fq, rec, 0);
		while (jv_is_valid(out = jq_next(fq))) {
			jq_start(mq, JV_ARRAY(state, out), 0);
			state = jq_next(mq);
			jv_free(jq_next(mq));
		}
		jv_free(out);
	}
	s = jv_dump_string(state, 0);
	text = xstrdup(jv_string_value(s));
	jv_free(s);
	jq_teardown(&fq);
	jq_teardown(&mq);
	return (text);
}

/*
 * json_dump()'s text as jq would print it: jq writes \u escapes in lower
 * case and escapes DEL, yajl does neither.  Caller frees.
 */
static char *
format_test_jqstyle(const char *s, size_t len)
{
	char	*out, *q;
	size_t	 i;
	int	 k;

	q = out = xmalloc(len * 6 + 1);
	for (i = 0; i < len; i++) {
		if (s[i] == 0x7f) {
			memcpy(q, "\\u007f", 6);
			q += 6;
		} else if (s[i] == '\\' && s[i + 1] == 'u') {
			memcpy(q, s + i, 6);
			for (k = 2; k < 6; k++)
				if (q[k] >= 'A' && q[k] <= 'F')
					q[k] += 'a' - 'A';
			q += 6;
			i += 5;
		} else if (s[i] == '\\') {
			*q++ = s[i++];
			*q++ = s[i];
		} else
			*q++ = s[i];
	}
	*q = '\0';
	return (out);
}

/*
 * Native against the jq path (byte for byte) and, with oracle, against
 * jq alone (modulo the escapes each printer picks).
 */
static void
format_test_compare(struct format *nat, struct format *jqf,
    struct format_test_rec *r, size_t n, int oracle, const char *name)
{
	char	*a, *b, *c, *d, label[160];
	size_t	 alen, blen;
	int	 bad = 0;

	a = format_test_run(nat, r, n, &alen, &bad);
	b = format_test_run(jqf, r, n, &blen, &bad);
	if (bad != 0)
		printf("#   %d records failed\n", bad);
	format_test_same(a, alen, b, blen, name);
	if (oracle) {
		c = format_test_oracle(r, n);
		d = format_test_jqstyle(a, alen);
		snprintf(label, sizeof label, "%s: same as jq alone", name);
		format_test_same(d, strlen(d), c, strlen(c), label);
		free(c);
		free(d);
	}
	free(a);
	free(b);
}

/* Native against libjq on random records, by type and all mixed. */
static void
format_test_random(void)
{
	struct format_test_rec	*r;
	struct format		*nat, *jqf;
	char			 name[128];
	size_t			 i;
	int			 t;

	nat = format_test_format("");
	jqf = format_test_jq_default();
	r = xcalloc(FORMAT_TEST_NRAND, sizeof *r);
	for (t = 0; t < TAG_NTYPES; t++) {
		format_test_fill(r, FORMAT_TEST_NTYPE, t, 3, 5, 40);
		snprintf(name, sizeof name, "native = jq: %d %s records",
		    FORMAT_TEST_NTYPE, tag_type_name(t));
		format_test_compare(nat, jqf, r, FORMAT_TEST_NTYPE, 0, name);
	}

	format_test_fill(r, FORMAT_TEST_NRAND, -1, 6, 20, 200);
	for (i = 0; i + FORMAT_TEST_BATCH <= FORMAT_TEST_NRAND;
	    i += FORMAT_TEST_BATCH * 5) {
		snprintf(name, sizeof name, "native = jq: mixed records "
		    "%zu..%zu", i, i + FORMAT_TEST_BATCH - 1);
		format_test_compare(nat, jqf, r + i, FORMAT_TEST_BATCH,
		    i == 0, name);
	}
	format_test_compare(nat, jqf, r, FORMAT_TEST_NRAND, 0,
	    "native = jq: all random records in one message");
	format_test_fill(r, 300, -1, 2, 2, 3);
	format_test_compare(nat, jqf, r, 300, 1,
	    "native = jq alone: 300 records on few tags (long arrays)");
	free(r);
	format_free(nat);
	format_free(jqf);
}

/* Every special double, float and ts on its own. */
static void
format_test_specials(void)
{
	struct format_test_rec	 r[1];
	struct format		*nat, *jqf;
	char			*a, *b;
	size_t			 i, nd, nf, nt, alen, blen;
	int			 bad = 0, diff = 0;

	nat = format_test_format("");
	jqf = format_test_jq_default();
	nd = sizeof format_test_doubles / sizeof format_test_doubles[0];
	nf = sizeof format_test_floats / sizeof format_test_floats[0];
	nt = sizeof format_test_ts / sizeof format_test_ts[0];
	for (i = 0; i < nd + nf + nt; i++) {
		format_test_fill(r, 1, TAG_DOUBLE, 1, 1, 1);
		if (i < nd)
			r[0].rec.value.n.d = format_test_doubles[i];
		else if (i < nd + nf) {
			r[0].rec.value.type = TAG_FLOAT;
			r[0].rec.value.n.d = format_test_floats[i - nd];
		} else {
			r[0].rec.value.n.d = 1.5;
			r[0].rec.ts = format_test_ts[i - nd - nf];
		}
		a = format_test_run(nat, r, 1, &alen, &bad);
		b = format_test_run(jqf, r, 1, &blen, &bad);
		if (alen != blen || memcmp(a, b, alen) != 0) {
			diff++;
			printf("#   %s\n#   %s\n", a, b);
		}
		free(a);
		free(b);
	}
	tap_ok(diff == 0 && bad == 0, "native = jq: each special double, "
	    "float and ts alone");

	/* The printing jq 1.6 does, spelled out. */
	format_test_fill(r, 1, TAG_DOUBLE, 1, 1, 1);
	snprintf(r[0].prvd, sizeof r[0].prvd, "p");
	snprintf(r[0].src, sizeof r[0].src, "s");
	snprintf(r[0].name, sizeof r[0].name, "t");
	r[0].rec.ts = 1700000000123456;
	{
		static const struct {
			double		 d;
			const char	*want;
		} cases[] = {
			{ 1e-05, "1e-05" }, { 1e+100, "1e+100" },
			{ 0.1, "0.1" }, { 100.0, "100" }, { -0.0, "-0" },
			{ 1e17, "1e+17" }, { 1.5e16, "15000000000000000" },
			{ 0.0001, "0.0001" }, { 5e-324, "5e-324" },
			{ 123456789012345680000.0, "123456789012345680000" },
			{ DBL_MAX, "1.7976931348623157e+308" },
		};
		char	want[256], label[128];

		for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			r[0].rec.value.n.d = cases[i].d;
			a = format_test_run(nat, r, 1, &alen, &bad);
			snprintf(want, sizeof want, "{\"tags\":{\"p\":{\"s\":"
			    "{\"t\":{\"values\":[{\"updateTimeStamp\":"
			    "\"2023-11-14T22:13:20Z\",\"value\":%s}]}}}}}",
			    cases[i].want);
			snprintf(label, sizeof label, "native prints %s as "
			    "jq 1.6 does", cases[i].want);
			tap_is_str(a, want, label);
			free(a);
		}
	}

	/* Beyond 2^53 the native path stays exact. */
	r[0].rec.value.type = TAG_UINT64;
	r[0].rec.value.n.u = UINT64_MAX;
	a = format_test_run(nat, r, 1, &alen, &bad);
	tap_ok(a != NULL && strstr(a, "\"value\":18446744073709551615}") !=
	    NULL, "native keeps uint64 max exact");
	free(a);
	r[0].rec.value.type = TAG_INT64;
	r[0].rec.value.n.i = INT64_MIN;
	a = format_test_run(nat, r, 1, &alen, &bad);
	tap_ok(a != NULL && strstr(a, "\"value\":-9223372036854775808}") !=
	    NULL, "native keeps int64 min exact");
	free(a);
	r[0].rec.value.n.i = (1LL << 53) + 1;
	a = format_test_run(jqf, r, 1, &alen, &bad);
	tap_ok(a != NULL && strstr(a, "\"value\":9007199254740992}") != NULL,
	    "libjq rounds 2^53+1 to a double (why the tests skip them)");
	free(a);

	/* Dates: fractions truncate, negative ones toward zero. */
	r[0].rec.value.type = TAG_BOOLEAN;
	r[0].rec.value.n.b = 1;
	r[0].rec.ts = -1500000;
	a = format_test_run(nat, r, 1, &alen, &bad);
	tap_ok(a != NULL && strstr(a, "\"1969-12-31T23:59:59Z\"") != NULL,
	    "ts -1.5 s is 23:59:59, as jq truncates toward zero");
	free(a);
	r[0].rec.ts = -62135596800000000LL;
	a = format_test_run(nat, r, 1, &alen, &bad);
	tap_ok(a != NULL && strstr(a, "\"1-01-01T00:00:00Z\"") != NULL,
	    "year 1 is printed without padding, as jq does");
	free(a);
	r[0].rec.ts = 1000000000000000000LL;
	a = format_test_run(nat, r, 1, &alen, &bad);
	tap_ok(a != NULL && strstr(a, "\"33658-09-27T01:46:40Z\"") != NULL,
	    "a five-digit year");
	free(a);
	tap_ok(bad == 0, "no special record failed");
	format_free(nat);
	format_free(jqf);
}

/*
 * For every k, the size after k records equals the length of the message
 * of those k records.
 */
static void
format_test_prefix(struct format *f, struct format_test_rec *r, size_t n,
    const char *name)
{
	struct format_buf	*fb;
	char			*text, *cause = NULL;
	size_t			 k, i, size, len;
	int			 bad = 0;

	for (k = 1; k <= n; k++) {
		fb = format_buf_new(f);
		for (i = 0; i < k; i++) {
			if (format_buf_add(fb, &r[i].rec, 0, &cause) ==
			    FORMAT_ERROR) {
				printf("#   %s\n", cause);
				free(cause);
				cause = NULL;
			}
		}
		size = format_buf_size(fb);
		text = format_buf_take(fb, &len);
		if (text == NULL || size != len || strlen(text) != len) {
			if (bad++ == 0)
				printf("#   after %zu records: size %zu, "
				    "message %zu bytes\n", k, size, len);
		}
		free(text);
		format_buf_free(fb);
	}
	tap_ok(bad == 0, name);
}

/* Exact size after every record, on both paths and for custom filters. */
static void
format_test_sizes(void)
{
	static const char *const filters[] = {
		"{(.tagName): .dataValue, ts: .ts}",
		"[.dataValue]",
		".dataValue",
		"{a: {(.srcName): [.dataValue]}, b: .tagName}",
		"if .dataType == \"string\" then {x: [.dataValue]} elif "
		    ".dataType == \"boolean\" then {x: .dataValue} else "
		    "{x: {(.tagName): .dataValue}} end",
		"{(.tagName): .dataValue}, {n: [.srcName]}, "
		    "{(.tagName): {u: .dataUnit}}",
		".dataValue, .dataType, [.tagName]",
		"if .dataType == \"int8\" then empty else "
		    "{(.prvdName): {(.srcName): .dataValue}} end",
		"{tags: {messageTimeStamp: now, (.srcName): {(.tagName): "
		    ".dataValue}}}",
		"range(40) as $i | {(.tagName + ($i % 7 | tostring)): [$i]}, "
		    "{k: {($i | tostring): .dataValue}}, {n: $i}",
	};
	struct format_test_rec	*r;
	struct format		*f;
	char			 name[256];
	size_t			 i;

	r = xcalloc(FORMAT_TEST_NPREFIX, sizeof *r);
	format_test_fill(r, FORMAT_TEST_NPREFIX, -1, 3, 4, 6);
	f = format_test_format("");
	format_test_prefix(f, r, FORMAT_TEST_NPREFIX, "native: size = "
	    "message length after every record");
	format_free(f);
	f = format_test_jq_default();
	format_test_prefix(f, r, FORMAT_TEST_NPREFIX, "jq default: size = "
	    "message length after every record");
	format_free(f);
	for (i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		f = format_test_format(filters[i]);
		snprintf(name, sizeof name, "%.200s: size = message length "
		    "after every record", filters[i]);
		format_test_prefix(f, r, 60, name);
		format_free(f);
	}
	free(r);
}

/*
 * The limit, exactly: with the size after k records as the limit, k
 * records fit and the next is refused with the buffer unchanged; one
 * byte less and the k-th is refused.
 */
static void
format_test_limit_exact(struct format *f, struct format_test_rec *r,
    const char *path)
{
	struct format_buf	*fb;
	size_t			 sizes[41], k, i, len, before, recs, max;
	char			*text, *want, *cause = NULL, name[160];
	int			 bad = 0, rc, tried = 0;

	fb = format_buf_new(f);
	for (k = 0; k < 40; k++) {
		sizes[k] = format_buf_size(fb);
		format_buf_add(fb, &r[k].rec, 0, &cause);
	}
	sizes[40] = format_buf_size(fb);
	free(format_buf_take(fb, &len));
	for (k = 1; k < 40; k++) {
		/* Custom filters can shrink a message: every prefix fits. */
		for (i = 1, max = 0; i < k; i++)
			if (sizes[i] > max)
				max = sizes[i];
		if (sizes[k + 1] <= sizes[k] || max > sizes[k])
			continue;
		tried++;
		for (i = 0; i < k; i++)
			if (format_buf_add(fb, &r[i].rec, sizes[k], &cause) !=
			    FORMAT_OK)
				bad++;
		before = format_buf_size(fb);
		recs = format_buf_records(fb);
		rc = format_buf_add(fb, &r[k].rec, sizes[k], &cause);
		if (rc != FORMAT_FULL || format_buf_size(fb) != before ||
		    format_buf_records(fb) != recs)
			bad++;
		text = format_buf_take(fb, &len);
		want = format_test_run(f, r, k, &i, &bad);
		if (len != sizes[k] || i != len || memcmp(text, want, len))
			bad++;
		free(text);
		free(want);
		if (max >= sizes[k])
			continue;
		for (i = 0; i < k; i++) {
			rc = format_buf_add(fb, &r[i].rec, sizes[k] - 1,
			    &cause);
			/* The first record fits an empty buffer anyway. */
			if (rc != (i + 1 < k || i == 0 ? FORMAT_OK :
			    FORMAT_FULL))
				bad++;
		}
		free(format_buf_take(fb, &len));
	}
	snprintf(name, sizeof name, "%s: a limit equal to the size fits, one "
	    "byte less is FORMAT_FULL, the buffer unchanged (%d cases)", path,
	    tried);
	if (!tap_ok(bad == 0 && tried >= 5, name))
		printf("#   %d failed\n", bad);
	format_buf_free(fb);
}

/*
 * A stream under a limit: on FORMAT_FULL the message goes and the record
 * starts the next; no message is over the limit unless it holds a single
 * record, and every record is in exactly one message.
 */
static void
format_test_limit_stream(struct format *f, struct format_test_rec *r,
    size_t n, size_t limit, const char *path)
{
	struct format_buf	*fb;
	char			*text, *cause = NULL, name[160];
	size_t			 i, len, recs, total = 0, msgs = 0, alone = 0;
	int			 bad = 0, rc;

	fb = format_buf_new(f);
	for (i = 0; i <= n; i++) {
		rc = i < n ? format_buf_add(fb, &r[i].rec, limit, &cause) :
		    FORMAT_FULL;
		if (rc == FORMAT_OK)
			continue;
		if (rc != FORMAT_FULL || format_buf_records(fb) == 0) {
			bad++;
			continue;
		}
		recs = format_buf_records(fb);
		if ((text = format_buf_take(fb, &len)) == NULL)
			bad++;
		if (len > limit && recs != 1)
			bad++;
		if (len > limit)
			alone++;
		total += recs;
		msgs++;
		free(text);
		if (i < n && format_buf_add(fb, &r[i].rec, limit, &cause) !=
		    FORMAT_OK)
			bad++;
	}
	snprintf(name, sizeof name, "%s: %zu records in %zu messages of at "
	    "most %zu bytes (%zu larger records alone)", path, total, msgs,
	    limit, alone);
	tap_ok(bad == 0 && total == n && alone > 0, name);
	format_buf_free(fb);
}

/* FORMAT_FULL on both paths. */
static void
format_test_limits(void)
{
	struct format_test_rec	*r;
	struct format		*f;
	size_t			 i;

	r = xcalloc(400, sizeof *r);
	format_test_fill(r, 400, -1, 2, 3, 10);
	for (i = 0; i < 400; i += 37) {
		/* Some records larger than the limit on their own. */
		r[i].rec.value.type = TAG_STRING;
		memset(r[i].bytes, 'x', 1500);
		r[i].rec.value.s = r[i].bytes;
		r[i].rec.value.len = 1500;
	}
	f = format_test_format("");
	format_test_limit_exact(f, r, "native");
	format_test_limit_stream(f, r, 400, 1000, "native");
	format_free(f);
	f = format_test_jq_default();
	format_test_limit_exact(f, r, "jq");
	format_test_limit_stream(f, r, 400, 1000, "jq");
	format_free(f);
	f = format_test_format("{(.tagName): .dataValue, ts: .ts}, "
	    "{all: [.dataValue]}");
	format_test_limit_exact(f, r, "jq, two outputs");
	format_test_limit_stream(f, r, 400, 1000, "jq, two outputs");
	format_free(f);
	free(r);
}

/* Merge two documents (JSON texts) and compare with the text wanted. */
static void
format_test_merge1(const char *a, const char *b, const char *want)
{
	struct json	*da, *db;
	char		*text, name[256];

	da = a != NULL ? json_parse(a, strlen(a), NULL) : NULL;
	db = b != NULL ? json_parse(b, strlen(b), NULL) : NULL;
	format_merge(&da, db);
	text = json_dump(da, NULL);
	snprintf(name, sizeof name, "merge %s + %s", a != NULL ? a : "(none)",
	    b != NULL ? b : "(none)");
	tap_is_str(text, want, name);
	free(text);
	json_free(da);
}

/* The merge rules. */
static void
format_test_merge(void)
{
	struct json	*a, *b;
	char		 key[16], *text;
	size_t		 i;
	int		 good;

	format_test_merge1(NULL, "{\"a\":1}", "{\"a\":1}");
	format_test_merge1("{\"a\":1,\"b\":{\"c\":1}}", "{\"b\":{\"d\":2},"
	    "\"e\":3}", "{\"a\":1,\"b\":{\"c\":1,\"d\":2},\"e\":3}");
	format_test_merge1("{\"z\":1,\"a\":2}", "{\"m\":3,\"a\":4,\"b\":5}",
	    "{\"z\":1,\"a\":4,\"m\":3,\"b\":5}");
	format_test_merge1("{\"a\":[1]}", "{\"a\":[2,3]}", "{\"a\":[1,2,3]}");
	format_test_merge1("[1]", "[2,[3]]", "[1,2,[3]]");
	format_test_merge1("{\"a\":1}", "{\"a\":\"x\"}", "{\"a\":\"x\"}");
	format_test_merge1("{\"a\":{\"b\":1}}", "{\"a\":5}", "{\"a\":5}");
	format_test_merge1("{\"a\":5}", "{\"a\":{\"b\":1}}",
	    "{\"a\":{\"b\":1}}");
	format_test_merge1("{\"a\":[1]}", "{\"a\":{\"x\":1}}",
	    "{\"a\":{\"x\":1}}");
	format_test_merge1("{\"a\":{\"x\":1}}", "{\"a\":[1]}",
	    "{\"a\":[1]}");
	format_test_merge1("{\"a\":1}", "[1]", "[1]");
	format_test_merge1("[1]", "{\"a\":1}", "{\"a\":1}");
	format_test_merge1("3", "4", "4");
	format_test_merge1("{\"a\":1}", "null", "null");
	format_test_merge1("{\"a\":1}", NULL, "{\"a\":1}");
	format_test_merge1("{}", "{}", "{}");
	format_test_merge1("[]", "[]", "[]");
	format_test_merge1("{\"a\":{\"b\":{\"c\":[1],\"d\":1}}}",
	    "{\"a\":{\"b\":{\"c\":[2],\"e\":2}},\"f\":{}}",
	    "{\"a\":{\"b\":{\"c\":[1,2],\"d\":1,\"e\":2}},\"f\":{}}");
	format_test_merge1("{\"a\":{\"b\":[{\"x\":1}]}}",
	    "{\"a\":{\"b\":[{\"x\":2}]}}",
	    "{\"a\":{\"b\":[{\"x\":1},{\"x\":2}]}}");

	/* Objects past the hash index threshold. */
	a = json_new_object();
	b = json_new_object();
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%zu", i);
		json_set(a, key, json_new_int(i));
		snprintf(key, sizeof key, "k%zu", i + 50);
		json_set(b, key, json_new_int(1000 + i));
	}
	format_merge(&a, b);
	good = json_object_size(a) == 150;
	for (i = 0; i < 150 && good; i++) {
		snprintf(key, sizeof key, "k%zu", i);
		good = strcmp(json_object_key(a, i), key) == 0 &&
		    json_int(json_object_value(a, i)) ==
		    (int64_t)(i < 50 ? i : 1000 + i - 50);
	}
	text = json_dump(a, NULL);
	tap_ok(good, "merge of two 100-key objects: order and values");
	free(text);
	json_free(a);
}

/* Add one record with value v (an int) to fb; the result code. */
static int
format_test_add_int(struct format_buf *fb, const char *tag, int64_t v,
    int64_t ts, char **cause)
{
	struct tag_rec	rec;

	memset(&rec, 0, sizeof rec);
	rec.prvd = "modbus_tcp_master";
	rec.src = "ioLogik";
	rec.name = tag;
	rec.unit = "";
	rec.value.type = TAG_INT32;
	rec.value.n.i = v;
	rec.ts = ts;
	return (format_buf_add(fb, &rec, 0, cause));
}

/* Run int records (tag, value, ts triples) through filter; the message. */
static char *
format_test_ints(const char *filter, const char *const *tags,
    const int64_t *vals, const int64_t *ts, size_t n)
{
	struct format		*f;
	struct format_buf	*fb;
	char			*text, *cause = NULL;
	size_t			 i, len;

	f = format_test_format(filter);
	fb = format_buf_new(f);
	for (i = 0; i < n; i++) {
		if (format_test_add_int(fb, tags[i], vals[i], ts[i],
		    &cause) != FORMAT_OK) {
			printf("#   %s\n", cause);
			free(cause);
			cause = NULL;
		}
	}
	text = format_buf_take(fb, &len);
	format_buf_free(fb);
	format_free(f);
	return (text);
}

/* The filters of the vendor's manual, and the record jq sees. */
static void
format_test_filters(void)
{
	static const char *const tags[] = { "di0", "di1", "di0" };
	static const int64_t vals[] = { 1, 2, 3 };
	static const int64_t ts[] = { 1000000, 2000000, 3000000 };
	struct format		*f;
	struct format_buf	*fb;
	struct json		*doc, *t;
	struct tag_rec		 rec;
	char			*text, *cause = NULL;
	size_t			 len;
	int			 good;

	text = format_test_ints("{(.tagName): .dataValue, ts: .ts}", tags,
	    vals, ts, 3);
	tap_is_str(text, "{\"di0\":3,\"ts\":3000,\"di1\":2}",
	    "override mode: last value per tag, ts in ms");
	free(text);
	text = format_test_ints("[.dataValue]", tags, vals, ts, 3);
	tap_is_str(text, "[1,2,3]", "array mode: [.dataValue] appends");
	free(text);
	text = format_test_ints("{t: .ts}", tags, vals, ts, 1);
	tap_is_str(text, "{\"t\":1000}", "{t: .ts} is ts in milliseconds");
	free(text);
	{
		static const int64_t big[] = { 1700000000123456LL };
		static const int64_t neg[] = { -1500 };

		text = format_test_ints("{t: .ts}", tags, vals, big, 1);
		tap_is_str(text, "{\"t\":1700000000123}",
		    "ts 1700000000123456 us is 1700000000123 ms");
		free(text);
		text = format_test_ints("{t: .ts}", tags, vals, neg, 1);
		tap_is_str(text, "{\"t\":-1}", "ts -1500 us is -1 ms");
		free(text);
	}
	text = format_test_ints("{a: .dataValue}, {b: .dataType}, "
	    "{a: [.tagName]}", tags, vals, ts, 1);
	tap_is_str(text, "{\"a\":[\"di0\"],\"b\":\"int32\"}",
	    "several outputs merge in order");
	free(text);
	text = format_test_ints(".dataValue, .dataType", tags, vals, ts, 2);
	tap_is_str(text, "\"int32\"", ".dataValue, .dataType: the last "
	    "scalar wins");
	free(text);
	text = format_test_ints("[.dataValue, .tagName], [.ts]", tags, vals,
	    ts, 2);
	tap_is_str(text, "[1,\"di0\",1000,2,\"di1\",2000]",
	    "array outputs append in order");
	free(text);
	text = format_test_ints("[nan, infinite, -infinite, 0.1 + 0.2]",
	    tags, vals, ts, 1);
	tap_is_str(text, "[null,1.7976931348623157e+308,"
	    "-1.7976931348623157e+308,0.30000000000000004]",
	    "jq's numbers keep jq's text (nan is null)");
	free(text);
	text = format_test_ints(format_default_filter(), tags, vals, ts, 3);
	tap_is_str(text, "{\"tags\":{\"modbus_tcp_master\":{\"ioLogik\":{"
	    "\"di0\":{\"values\":[{\"updateTimeStamp\":"
	    "\"1970-01-01T00:00:01Z\","
	    "\"value\":1},{\"updateTimeStamp\":\"1970-01-01T00:00:03Z\","
	    "\"value\":3}]},\"di1\":{\"values\":[{\"updateTimeStamp\":"
	    "\"1970-01-01T00:00:02Z\",\"value\":2}]}}}}}",
	    "the default format, as the research notes work it out");
	free(text);

	/* The real-world filter: messageTimeStamp changes, check the shape. */
	f = format_test_format("{tags:{messageTimeStamp:now,(.srcName):"
	    "{(.tagName):.dataValue}}}");
	fb = format_buf_new(f);
	memset(&rec, 0, sizeof rec);
	rec.prvd = "p";
	rec.unit = "";
	rec.value.type = TAG_DOUBLE;
	rec.src = "s1";
	rec.name = "a";
	rec.value.n.d = 1.5;
	format_buf_add(fb, &rec, 0, &cause);
	rec.name = "b";
	rec.value.n.d = 2.5;
	format_buf_add(fb, &rec, 0, &cause);
	rec.src = "s2";
	rec.name = "a";
	rec.value.n.d = 3.5;
	format_buf_add(fb, &rec, 0, &cause);
	rec.src = "s1";
	rec.value.n.d = 4.5;
	format_buf_add(fb, &rec, 0, &cause);
	len = format_buf_size(fb);
	doc = format_buf_take_json(fb);
	t = json_get(doc, "tags");
	text = json_dump(doc, NULL);
	good = json_object_size(doc) == 1 && json_object_size(t) == 3 &&
	    strcmp(json_object_key(t, 0), "messageTimeStamp") == 0 &&
	    json_type(json_get(t, "messageTimeStamp")) == JSON_NUMBER &&
	    json_double(json_get(t, "messageTimeStamp")) > 1.6e9 &&
	    json_double(json_get_path(doc, "tags.s1.a")) == 4.5 &&
	    json_double(json_get_path(doc, "tags.s1.b")) == 2.5 &&
	    json_double(json_get_path(doc, "tags.s2.a")) == 3.5 &&
	    json_object_size(json_get(t, "s1")) == 2 && strlen(text) == len;
	if (!tap_ok(good, "{tags:{messageTimeStamp:now,...}}: the shape, "
	    "later values override"))
		printf("#   %s\n", text);
	free(text);
	json_free(doc);
	tap_ok(format_buf_size(fb) == 0 && format_buf_records(fb) == 0 &&
	    format_buf_take_json(fb) == NULL, "take_json empties the buffer");
	format_buf_free(fb);
	format_free(f);
}

/* Default detection, errors and resets. */
/* A .jq file in $HOME is no part of any format; HOME is left as it was. */
static void
format_test_home(void)
{
	struct format	*f;
	char		 dir[] = "/tmp/uplinkd-format-XXXXXX", path[64];
	char		*cause = NULL, *old;
	const char	*now;
	FILE		*fp;

	if (mkdtemp(dir) == NULL) {
		tap_ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/.jq", dir);
	if ((fp = fopen(path, "w")) != NULL) {
		fputs("def homemade: 42;\n", fp);
		fclose(fp);
	}
	old = getenv("HOME") != NULL ? xstrdup(getenv("HOME")) : NULL;
	setenv("HOME", dir, 1);
	f = format_new("{v: homemade}", &cause);
	now = getenv("HOME");
	tap_ok(f == NULL && cause != NULL && strstr(cause, "homemade/0 is "
	    "not defined") != NULL && now != NULL && strcmp(now, dir) == 0,
	    "a definition in $HOME/.jq is not defined for a format; HOME is "
	    "as it was");
	format_free(f);
	free(cause);
	if (old != NULL) {
		setenv("HOME", old, 1);
		free(old);
	} else
		unsetenv("HOME");
	unlink(path);
	rmdir(dir);
}

static void
format_test_errors(void)
{
	struct format		*f, *g;
	struct format_buf	*fb, *ref;
	struct json		*deep;
	char			*cause = NULL, *text, *want, *s;
	size_t			 len, wlen, size;
	int			 rc;

	tap_ok(strcmp(format_default_filter(), "{tags:{(.prvdName):"
	    "{(.srcName):{(.tagName):{values:[{updateTimeStamp:(.ts/1000|"
	    "todateiso8601),value:.dataValue}]}}}}}") == 0,
	    "the default filter is the vendor's text");
	f = format_new(NULL, &cause);
	tap_ok(f != NULL && format_is_default(f), "NULL filter: native");
	format_free(f);
	f = format_new(" \n\t", &cause);
	tap_ok(f != NULL && format_is_default(f), "blank filter: native");
	format_free(f);
	xasprintf(&s, "\n  %s \n", format_default_filter());
	f = format_new(s, &cause);
	tap_ok(f != NULL && format_is_default(f), "default text between "
	    "blanks: native");
	format_free(f);
	free(s);
	f = format_test_jq_default();
	tap_ok(!format_is_default(f), "(default): through libjq");
	format_free(f);

	f = format_new(".a | | b", &cause);
	tap_ok(f == NULL && cause != NULL &&
	    strncmp(cause, "format: jq: syntax error, unexpected '|'", 40) ==
	    0 && strchr(cause, '\n') == NULL, "a syntax error: NULL and "
	    "jq's message on one line");
	printf("#   %s\n", cause);
	free(cause);
	cause = NULL;
	f = format_new("{a: foo(1)} | bar", &cause);
	tap_ok(f == NULL && cause != NULL && strstr(cause, "foo/1 is not "
	    "defined") != NULL && strstr(cause, "bar/0 is not defined") !=
	    NULL, "two compile errors: both messages");
	printf("#   %s\n", cause);
	free(cause);
	format_test_home();
	cause = NULL;
	f = format_new(" import \"foo\" as f; .", &cause);
	tap_ok(f == NULL && cause != NULL && strcmp(cause, "format: jq: "
	    "modules (import) are not supported") == 0, "import is refused "
	    "(libjq 1.6 would abort)");
	free(cause);
	cause = NULL;
	f = format_new("# a comment\ninclude \"foo\"; .", &cause);
	tap_ok(f == NULL && cause != NULL, "include after a comment does not "
	    "compile either");
	free(cause);
	cause = NULL;
	f = format_new("{a:", &cause);
	tap_ok(f == NULL && cause != NULL && strstr(cause, "syntax error") !=
	    NULL, "a cut filter does not compile");
	free(cause);
	cause = NULL;

	/* Runtime errors leave the buffer as it was. */
	f = format_test_format("if .dataValue == 13 then error(\"x\") elif "
	    ".dataValue == 14 then (.tagName | tonumber) elif .dataValue == "
	    "15 then error({a: 1}) elif .dataValue == 16 then .dataValue, "
	    "error(\"late\") elif .dataValue == 17 then \"bye\\n\" | "
	    "halt_error elif .dataValue == 18 then empty elif .dataValue == "
	    "19 then reduce range(100) as $i (1; [.]) elif .dataValue == 20 "
	    "then "
	    "{(\"a\\u0000b\"): 1} elif .dataValue == 21 then halt elif "
	    ".dataValue == 22 then {a: (reduce range(63) as $i (1; [.]))} "
	    "elif .dataValue == 23 then {a: (reduce range(64) as $i (1; "
	    "[.]))} else {(.tagName): [.dataValue]} end");
	g = format_test_format("{(.tagName): [.dataValue]}");
	fb = format_buf_new(f);
	ref = format_buf_new(g);
	format_test_add_int(fb, "a", 1, 0, &cause);
	format_test_add_int(fb, "b", 2, 0, &cause);
	format_test_add_int(ref, "a", 1, 0, &cause);
	format_test_add_int(ref, "b", 2, 0, &cause);
	size = format_buf_size(fb);

	rc = format_test_add_int(fb, "a", 13, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL &&
	    strcmp(cause, "format: jq: x") == 0, "error(\"x\"): FORMAT_ERROR "
	    "and its message");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "abc", 14, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strstr(cause,
	    "Invalid numeric literal") != NULL, "tonumber on \"abc\": "
	    "FORMAT_ERROR and jq's message");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "a", 15, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strstr(cause,
	    "{\"a\":1}") != NULL, "error({a: 1}): the object in the message");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "a", 16, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strcmp(cause,
	    "format: jq: late") == 0, "an error after an output: nothing of "
	    "the record is merged");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "a", 17, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strcmp(cause,
	    "format: jq: bye") == 0, "halt_error: FORMAT_ERROR with its "
	    "message (libjq 1.6 would read freed memory after it)");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "a", 19, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strstr(cause,
	    "deeper than") != NULL, "an output nested too deep is refused");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "a", 20, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strstr(cause,
	    "NUL") != NULL, "a key with a NUL is refused");
	free(cause);
	cause = NULL;
	rc = format_test_add_int(fb, "a", 18, 0, &cause);
	tap_ok(rc == FORMAT_OK && format_buf_records(fb) == 2,
	    "empty: FORMAT_OK, no record merged");
	rc = format_test_add_int(fb, "a", 21, 0, &cause);
	tap_ok(rc == FORMAT_OK && format_buf_records(fb) == 2,
	    "halt: FORMAT_OK, no record merged");
	tap_ok(format_buf_size(fb) == size && format_buf_records(fb) == 2,
	    "after the errors: size and records unchanged");
	rc = format_test_add_int(fb, "a", 3, 0, &cause);
	format_test_add_int(ref, "a", 3, 0, &cause);
	tap_ok(rc == FORMAT_OK, "the filter runs again after an error");
	text = format_buf_take(fb, &len);
	want = format_buf_take(ref, &wlen);
	format_test_same(text, len, want, wlen, "after the errors: the "
	    "message is the one without them");
	tap_ok(text != NULL && strcmp(text, "{\"a\":[1,3],\"b\":[2]}") == 0,
	    "...{\"a\":[1,3],\"b\":[2]}");
	free(text);
	free(want);

	/* Take resets. */
	text = format_buf_take(fb, &len);
	tap_ok(text == NULL && len == 0 && format_buf_size(fb) == 0 &&
	    format_buf_records(fb) == 0, "take of an empty buffer: NULL, "
	    "size 0");
	format_test_add_int(fb, "c", 5, 0, &cause);
	text = format_buf_take(fb, &len);
	tap_is_str(text, "{\"c\":[5]}", "after take the buffer starts anew");
	free(text);
	rc = format_test_add_int(fb, "a", 22, 0, &cause);
	text = format_buf_take(fb, &len);
	deep = text != NULL ? json_parse(text, len, NULL) : NULL;
	tap_ok(rc == FORMAT_OK && deep != NULL, "64 levels of nesting are "
	    "fine (and parse)");
	json_free(deep);
	free(text);
	rc = format_test_add_int(fb, "a", 23, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strstr(cause,
	    "deeper than 64") != NULL, "65 levels are refused");
	free(cause);
	cause = NULL;
	format_buf_free(fb);
	format_buf_free(ref);
	format_free(g);
	format_free(f);

	f = format_test_format("range(200000)");
	fb = format_buf_new(f);
	rc = format_test_add_int(fb, "a", 1, 0, &cause);
	tap_ok(rc == FORMAT_ERROR && cause != NULL && strstr(cause,
	    "outputs") != NULL && format_buf_records(fb) == 0,
	    "too many outputs for a record: FORMAT_ERROR");
	free(cause);
	cause = NULL;
	format_buf_free(fb);
	format_free(f);
	format_free(NULL);
	format_buf_free(NULL);
	tap_ok(1, "format_free(NULL), format_buf_free(NULL)");
}

/* take and take_json agree, on both paths. */
static void
format_test_take(void)
{
	struct format_test_rec	*r;
	struct format		*nat, *jqf;
	struct format_buf	*fb;
	struct json		*doc;
	char			*a, *b, *c;
	size_t			 i, alen, blen;
	int			 bad = 0;

	r = xcalloc(200, sizeof *r);
	format_test_fill(r, 200, -1, 3, 5, 20);
	nat = format_test_format("");
	jqf = format_test_jq_default();
	a = format_test_run(nat, r, 200, &alen, &bad);
	fb = format_buf_new(nat);
	for (i = 0; i < 200; i++)
		format_buf_add(fb, &r[i].rec, 0, NULL);
	doc = format_buf_take_json(fb);
	b = json_dump(doc, &blen);
	format_test_same(b, blen, a, alen, "native: take_json prints as "
	    "take");
	tap_ok(format_buf_size(fb) == 0 && format_buf_records(fb) == 0,
	    "native: take_json empties the buffer");
	free(b);
	json_free(doc);
	format_buf_free(fb);
	fb = format_buf_new(jqf);
	for (i = 0; i < 200; i++)
		format_buf_add(fb, &r[i].rec, 0, NULL);
	doc = format_buf_take_json(fb);
	c = json_dump(doc, &blen);
	format_test_same(c, blen, a, alen, "jq: take_json prints as native "
	    "take");
	free(c);
	json_free(doc);
	format_buf_free(fb);
	free(a);
	tap_ok(bad == 0, "no record failed");
	format_free(nat);
	format_free(jqf);
	free(r);
}

/* Seconds of CPU since some start. */
static double
format_test_cpu(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/*
 * Seconds to put n records (borrowed) through f in 64 KiB messages, best
 * of 3; the bytes of the messages in *bytes, their text in *all if not
 * NULL (caller frees).
 */
static double
format_test_time_run(struct format *f, const struct tag_rec *r, size_t n,
    size_t *bytes, char **all)
{
	struct format_buf	*fb;
	double			 t0, t, best = 1e9;
	size_t			 i, len, cap = 0;
	char			*text;
	int			 round;

	for (round = 0; round < 3; round++) {
		fb = format_buf_new(f);
		*bytes = 0;
		t0 = format_test_cpu();
		for (i = 0; i <= n; i++) {
			if (i < n && format_buf_add(fb, &r[i], 65536, NULL) !=
			    FORMAT_FULL)
				continue;
			text = format_buf_take(fb, &len);
			if (all != NULL && round == 0) {
				*all = xrealloc(*all, cap + len + 1);
				memcpy(*all + cap, text, len);
				cap += len;
				(*all)[cap] = '\0';
			}
			*bytes += len;
			free(text);
			if (i < n)
				format_buf_add(fb, &r[i], 65536, NULL);
		}
		t = format_test_cpu() - t0;
		if (t < best)
			best = t;
		format_buf_free(fb);
	}
	return (best);
}

/*
 * The speed of the native default format against libjq on the same
 * records (issue bench 3 wants 20x): sensor-like values over 500 tags,
 * then doubles of full precision, then doubles of random bits and edge
 * values (huge and tiny ones take printf's slow path).  The records are
 * small and their names shared, as the tag hub hands them out.  Printed,
 * not asserted.
 */
static void
format_test_speed(void)
{
	static const char *const prvds[] = { "system", "modbus_tcp_master" };
	char			 srcs[10][16], tags[50][8], strs[7][16];
	struct tag_rec		*r, *x;
	struct format		*nat, *jqf;
	double			 tn, tj;
	size_t			 i, bn, bj;
	char			*an, *aj;
	int			 pass, t, same = 1;

	for (i = 0; i < 10; i++)
		snprintf(srcs[i], sizeof srcs[i], "ioLogik%zu", i);
	for (i = 0; i < 50; i++)
		snprintf(tags[i], sizeof tags[i], "di%zu", i);
	for (i = 0; i < 7; i++)
		snprintf(strs[i], sizeof strs[i], "state %zu ok", i);
	r = xcalloc(FORMAT_TEST_NSPEED, sizeof *r);
	nat = format_test_format("");
	jqf = format_test_jq_default();
	for (pass = 0; pass < 3; pass++) {
		for (i = 0; i < FORMAT_TEST_NSPEED; i++) {
			x = &r[i];
			x->prvd = prvds[i % 5 == 0];
			x->src = srcs[i % 10];
			x->name = tags[i % 50];
			x->unit = "%";
			x->ts = 1700000000000000LL + (int64_t)i * 1000;
			t = pass == 0 ? (int)(i % 8) : 8;
			switch (t) {
			case 0:
			case 1:
				x->value.type = TAG_INT32;
				x->value.n.i = (int32_t)format_test_rand() %
				    100000;
				break;
			case 2:
				x->value.type = TAG_BOOLEAN;
				x->value.n.b = i & 1;
				break;
			case 3:
				x->value.type = TAG_FLOAT;
				x->value.n.d = (float)(format_test_rand() %
				    100000) / 10.0f;
				break;
			case 4:
				x->value.type = TAG_STRING;
				x->value.s = strs[i % 7];
				x->value.len = strlen(strs[i % 7]);
				break;
			case 5:
			case 6:
				x->value.type = TAG_DOUBLE;
				x->value.n.d = (double)(format_test_rand() %
				    10000000) / 1000.0;
				break;
			default:
				/* A register scaled: often 17 digits. */
				x->value.type = TAG_DOUBLE;
				x->value.n.d = (double)(format_test_rand() %
				    65536) * 0.1;
				if (pass == 1)
					x->value.n.d = (double)
					    format_test_rand() / 3e10;
				if (pass == 2)
					x->value.n.d = format_test_double();
				break;
			}
		}
		an = aj = NULL;
		tn = format_test_time_run(nat, r, FORMAT_TEST_NSPEED, &bn,
		    &an);
		tj = format_test_time_run(jqf, r, FORMAT_TEST_NSPEED, &bj,
		    &aj);
		if (bn != bj || strcmp(an, aj) != 0)
			same = 0;
		free(an);
		free(aj);
		printf("# %s: native %.0f records/s, libjq %.0f records/s, "
		    "ratio %.1f\n", pass == 0 ? "sensor-like records" :
		    pass == 1 ? "full-precision doubles" :
		    "doubles of any bits (worst)", FORMAT_TEST_NSPEED / tn,
		    FORMAT_TEST_NSPEED / tj, tj / tn);
	}
	tap_ok(same, "native = jq on the speed records (messages of 64 KiB)");
	format_free(nat);
	format_free(jqf);
	free(r);
}

int
main(void)
{
	format_test_random();
	format_test_specials();
	format_test_sizes();
	format_test_limits();
	format_test_merge();
	format_test_filters();
	format_test_errors();
	format_test_take();
	format_test_speed();
	return (tap_done());
}

/* SPDX-License-Identifier: ISC */
/*
 * The jq 1.6-compatible printer of the native default format: tag values,
 * dates and strings appended to a struct format_out byte for byte as the
 * jq path prints them.  Numbers get jq's shortest digits and its choice
 * of exponent form (floats those of the text tag_value_json() gives
 * them), worked out with double arithmetic where that is exact, with
 * 128-bit integers where it is not, and through printf and strtod for
 * the rest; dates get todateiso8601's truncation of the seconds; strings
 * get jq's repair of bad UTF-8 and yajl's escapes.
 */

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format_int.h"
#include "tag.h"
#include "util.h"

/* Bytes of a string: 0 plain, 1 escaped, 2 part of a UTF-8 sequence. */
static const unsigned char format_byte[256] = {
	[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 2
};

static const double format_p10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

static int	 format_utf8_next(const unsigned char *,
		     const unsigned char *, int *);
static int	 format_digits_text(const char *, char *, int *);
static int	 format_int_digits(uint64_t, int, char *, int *);
#ifdef __SIZEOF_INT128__
static unsigned __int128 format_pow10(int);
static int	 format_interval(uint64_t, int, int, int, uint64_t *, int *,
		     unsigned __int128 *, unsigned __int128 *);
static int	 format_dbl_exact(double, int, char *, int *);
static int	 format_flt_exact(float, int, char *, int *);
#endif
static int	 format_dbl_digits(double, char *, int *);
static int	 format_flt_digits(float, char *, int *);
static void	 format_out_num(struct format_out *, int, const char *, int,
		     int);
static void	 format_out_double(struct format_out *, double);
static void	 format_out_float(struct format_out *, double);
static void	 format_out_u64(struct format_out *, uint64_t);

/*
 * One character of a string the way jq reads it (jvp_utf8_next): its
 * length in bytes, *cp -1 for what jq replaces with U+FFFD (a stray or
 * invalid byte, a cut or overlong sequence, a surrogate, beyond U+10FFFF;
 * a sequence cut by the end of the string is one bad character).
 */
static int
format_utf8_next(const unsigned char *p, const unsigned char *end, int *cp)
{
	static const int	 first[] = { 0, 0, 0x80, 0x800, 0x10000 };
	int			 len, i, c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return (1);
	}
	*cp = -1;
	if (p[0] < 0xc2 || p[0] > 0xf4)
		return (1);
	len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	if (end - p < len)
		return (end - p);
	c = p[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (i);
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < first[len] || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return (len);
	*cp = c;
	return (len);
}

/*
 * Append a string (borrowed) as a JSON string: bad UTF-8 repaired as jq
 * repairs it, then escaped as yajl escapes.
 */
void
format_out_str(struct format_out *o, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const uint64_t		 ones = 0x0101010101010101ULL;
	const unsigned char	*p = (const unsigned char *)s, *end = p + len;
	uint64_t		 w;
	char			*q;
	int			 n, cp;

	format_out_need(o, len * 6 + 2);
	q = o->buf + o->len;
	*q++ = '"';
	while (p < end) {
		/*
		 * Plain ASCII 8 bytes a step: none below 0x20 or from 0x80,
		 * no quote, no backslash (the tests for a zero byte).
		 */
		while (end - p >= 8) {
			memcpy(&w, p, 8);
			if (((w - ones * 0x20) | w | ((w ^ ones * '"') -
			    ones) | ((w ^ ones * '\\') - ones)) & ones * 0x80)
				break;
			memcpy(q, p, 8);
			q += 8;
			p += 8;
		}
		while (p < end && format_byte[*p] == 0)
			*q++ = *p++;
		if (p == end)
			break;
		if (format_byte[*p] == 1) {
			*q++ = '\\';
			switch (*p) {
			case '"':
			case '\\':
				*q++ = *p;
				break;
			case '\b':
				*q++ = 'b';
				break;
			case '\f':
				*q++ = 'f';
				break;
			case '\n':
				*q++ = 'n';
				break;
			case '\r':
				*q++ = 'r';
				break;
			case '\t':
				*q++ = 't';
				break;
			default:
				*q++ = 'u';
				*q++ = '0';
				*q++ = '0';
				*q++ = hex[*p >> 4];
				*q++ = hex[*p & 0xf];
				break;
			}
			p++;
			continue;
		}
		n = format_utf8_next(p, end, &cp);
		if (cp == -1) {
			*q++ = (char)0xef;
			*q++ = (char)0xbf;
			*q++ = (char)0xbd;
		} else {
			memcpy(q, p, n);
			q += n;
		}
		p += n;
	}
	*q++ = '"';
	o->len = q - o->buf;
}

/*
 * The digits of printf's "%.*e" text (borrowed) into dig, trailing zeros
 * dropped; *decpt is the decimal point's position.  Returns the count.
 */
static int
format_digits_text(const char *text, char *dig, int *decpt)
{
	const char	*p;
	int		 n = 0;

	for (p = text; *p != 'e' && *p != '\0'; p++)
		if (*p >= '0' && *p <= '9')
			dig[n++] = *p;
	*decpt = (*p == 'e' ? atoi(p + 1) : 0) + 1;
	while (n > 1 && dig[n - 1] == '0')
		n--;
	return (n);
}

/* The digits of u into dig, trailing zeros dropped; *decpt = count - k. */
static int
format_int_digits(uint64_t u, int k, char *dig, int *decpt)
{
	char	tmp[24];
	int	n = 0, i;

	do {
		tmp[n++] = '0' + u % 10;
		u /= 10;
	} while (u != 0);
	for (i = 0; i < n; i++)
		dig[i] = tmp[n - 1 - i];
	*decpt = n - k;
	while (n > 1 && dig[n - 1] == '0')
		n--;
	return (n);
}

/* Exact decimals need 128-bit integers; without them, printf does. */
#ifdef __SIZEOF_INT128__
/* 10^k, k <= 38. */
static unsigned __int128
format_pow10(int k)
{
	unsigned __int128	p = 1;

	while (k-- > 0)
		p *= 10;
	return (p);
}

/*
 * Where the decimals of scale k (integers D standing for D / 10^k) read
 * back as m 2^-e: the decimals of the rounding interval, whose ends count
 * when m is even (ties go to even), and whose lower half is narrower
 * where the binade changes.  Sets *d to the decimal nearest to the value,
 * *tie when that is a tie; returns 0 if the interval holds none.  Exact
 * while 4m 10^k stays below 2^126.
 */
static int
format_interval(uint64_t m, int e, int narrow, int k, uint64_t *d,
    int *tie, unsigned __int128 *lo, unsigned __int128 *hi)
{
	unsigned __int128	t, n, l, h, mask, half, dl, dh, dn, rem;
	int			s = e + 2;

	t = format_pow10(k);
	n = (unsigned __int128)(m << 2) * t;
	h = n + 2 * t;
	l = n - (narrow ? t : 2 * t);
	mask = ((unsigned __int128)1 << s) - 1;
	half = (unsigned __int128)1 << (s - 1);
	dl = (l >> s) + ((l & mask) != 0 || (m & 1) ? 1 : 0);
	dh = h >> s;
	if ((h & mask) == 0 && (m & 1))
		dh--;
	dn = n >> s;
	rem = n & mask;
	*tie = rem == half;
	if (rem > half)
		dn++;
	*d = (uint64_t)dn;
	*lo = dl;
	*hi = dh;
	return (dl <= dh);
}

/*
 * The closest of the shortest decimals that read back as a, a double
 * from 1e-5 to 2^53 that is not a whole number, looking from k decimals
 * on; 0 when this cannot tell (an exact tie, too many decimals).
 */
static int
format_dbl_exact(double a, int k, char *dig, int *decpt)
{
	unsigned __int128	 lo, hi;
	uint64_t		 bits, m, d;
	int			 be, e, tie;

	memcpy(&bits, &a, sizeof bits);
	be = (int)(bits >> 52 & 0x7ff);
	m = (bits & ((1ULL << 52) - 1)) | 1ULL << 52;
	e = 1075 - be;			/* a = m 2^-e */
	if (e < 1 || e > 100)
		return (0);
	for (; k <= 21; k++) {
		if (!format_interval(m, e, m == 1ULL << 52 && be > 1, k, &d,
		    &tie, &lo, &hi))
			continue;
		if (tie || hi >= 10000000000000000000ULL)
			return (0);
		/* All of the same length: the nearest, or the end nearest. */
		if (d < lo)
			d = (uint64_t)lo;
		else if (d > hi)
			d = (uint64_t)hi;
		return (format_int_digits(d, k, dig, decpt));
	}
	return (0);
}

#endif

/*
 * The shortest digits that read back as a (finite, > 0), the closest to
 * a among them, as jq's dtoa picks them.  Most values have at most 15
 * digits and are found with double arithmetic: m / 10^k is rounded
 * correctly, as strtod would round the text, and up to 15 digits only one
 * text reads back.  Longer ones are worked out exactly; the rest (tiny,
 * huge) go through printf and strtod.
 */
static int
format_dbl_digits(double a, char *dig, int *decpt)
{
	char		 buf[64], tmp[32];
	uint64_t	 m;
	double		 p;
	int		 k = 0, n, prec, start, x;

	if (a < 9007199254740992.0 && a == floor(a))
		return (format_int_digits((uint64_t)a, 0, dig, decpt));
	start = a < DBL_MIN ? 1 : 15;
	if (a >= 1e-7 && a < 1e15) {
		for (k = 1; k <= 22; k++) {
			p = a * format_p10[k];
			if (p >= 1e15)
				break;
			m = (uint64_t)(p + 0.5);
			if ((double)m / format_p10[k] == a)
				return (format_int_digits(m, k, dig, decpt));
		}
		start = 16;
	}
#ifdef __SIZEOF_INT128__
	if (a >= 1e-5 && a < 9007199254740992.0 &&
	    (n = format_dbl_exact(a, k, dig, decpt)) > 0)
		return (n);
#endif
	for (prec = start; prec <= 16; prec++) {
		snprintf(buf, sizeof buf, "%.*e", prec - 1, a);
		if (strtod(buf, NULL) == a)
			return (format_digits_text(buf, dig, decpt));
	}
	/*
	 * Where the binade changes, the gap below a is half the gap above:
	 * a 16-digit neighbour of the rounded text may still read back.
	 */
	snprintf(buf, sizeof buf, "%.15e", a);
	n = format_digits_text(buf, tmp, &x);
	for (m = 0, k = 0; k < 16; k++)
		m = m * 10 + (k < n ? tmp[k] - '0' : 0);
	for (k = -1; k <= 1; k += 2) {
		snprintf(buf, sizeof buf, "%" PRIu64 "e%d", m + k, x - 16);
		if (strtod(buf, NULL) == a)
			return (format_int_digits(m + k, 16 - x, dig, decpt));
	}
	snprintf(buf, sizeof buf, "%.16e", a);
	return (format_digits_text(buf, dig, decpt));
}

#ifdef __SIZEOF_INT128__
/*
 * The digits of printf's "%.*e" of f for the first precision from 7 to
 * 9 that reads back (or 9), from k decimals on, exactly: printf rounds
 * the exact value half to even, strtof reads anything inside the
 * rounding interval.  For normal floats from 1e-5 that are not whole
 * numbers; 0 when this cannot tell.
 */
static int
format_flt_exact(float f, int k, char *dig, int *decpt)
{
	unsigned __int128	 lo, hi, t;
	uint32_t		 bits;
	uint64_t		 m, d;
	int			 be, e, tie, in, n;

	memcpy(&bits, &f, sizeof bits);
	be = (int)(bits >> 23 & 0xff);
	m = (bits & 0x7fffff) | 0x800000;
	e = 150 - be;			/* f = m 2^-e */
	if (e < 1 || e > 60)
		return (0);
	for (; k <= 30; k++) {
		/* Digits printf shows at this scale: those of floor(f 10^k). */
		t = ((unsigned __int128)m * format_pow10(k)) >> e;
		for (n = 0; t != 0; t /= 10)
			n++;
		in = format_interval(m, e, m == 0x800000 && be > 1, k, &d,
		    &tie, &lo, &hi);
		if (tie && (d & 1))
			d++;		/* half to even */
		if (n >= 9 || (in && d >= lo && d <= hi))
			return (format_int_digits(d, k, dig, decpt));
	}
	return (0);
}

#endif

/*
 * The digits tag_value_json() prints for a float (finite, > 0, not a
 * whole number below 1e16): the first precision from 1 to 9 that reads
 * back as the same float.  Up to 6 digits only one text reads back, so
 * for normal floats precision 6 is the first try, and double arithmetic
 * finds most of those: a double m / 10^k that is not halfway between two
 * floats rounds to the float strtof would give.  7 to 9 digits are
 * worked out exactly; tiny floats go through printf and strtof.
 */
static int
format_flt_digits(float f, char *dig, int *decpt)
{
	char		 buf[64];
	double		 a = f, p, q;
	uint64_t	 m, bits;
	int		 k = 0, prec, start;

	start = f < FLT_MIN ? 1 : 6;
	if (f >= FLT_MIN && a < 1e6) {
		for (k = 0; k <= 22; k++) {
			p = a * format_p10[k];
			if (p >= 999999.5) {
				start = 7;	/* no text of 6 digits */
				break;
			}
			if (fabs(p - floor(p) - 0.5) < 1e-6)
				break;	/* a tie: printf decides */
			m = (uint64_t)(p + 0.5);
			q = (double)m / format_p10[k];
			memcpy(&bits, &q, sizeof bits);
			if ((bits & 0x1fffffff) == 0x10000000)
				break;	/* halfway between two floats */
			if ((float)q == f)
				return (format_int_digits(m, k, dig, decpt));
		}
	} else if (a >= 1e6 && a < 8388608.0) {
		k = 0;
		start = 7;
	}
#ifdef __SIZEOF_INT128__
	if (start == 7 && a >= 1e-5) {
		int	n;

		if ((n = format_flt_exact(f, k, dig, decpt)) > 0)
			return (n);
	}
#endif
	for (prec = start; prec < 9; prec++) {
		snprintf(buf, sizeof buf, "%.*e", prec - 1, a);
		if (strtof(buf, NULL) == f)
			break;
	}
	if (prec == 9)
		snprintf(buf, sizeof buf, "%.8e", a);
	return (format_digits_text(buf, dig, decpt));
}

/*
 * Append a number from its digits as jq 1.6 lays it out: an exponent
 * (at least two digits) below 1e-4 or with more than 15 zeros to pad,
 * else plain.
 */
static void
format_out_num(struct format_out *o, int neg, const char *dig, int n,
    int decpt)
{
	char	*q;
	int	 i, x;

	format_out_need(o, n + 32 + (decpt > 0 ? decpt : 0) +
	    (decpt < 0 ? -decpt : 0));
	q = o->buf + o->len;
	if (neg)
		*q++ = '-';
	if (decpt <= -4 || decpt > n + 15) {
		*q++ = dig[0];
		if (n > 1) {
			*q++ = '.';
			memcpy(q, dig + 1, n - 1);
			q += n - 1;
		}
		x = decpt - 1;
		*q++ = 'e';
		*q++ = x < 0 ? '-' : '+';
		if (x < 0)
			x = -x;
		if (x >= 100)
			*q++ = '0' + x / 100;
		*q++ = '0' + x / 10 % 10;
		*q++ = '0' + x % 10;
	} else if (decpt <= 0) {
		*q++ = '0';
		*q++ = '.';
		for (i = decpt; i < 0; i++)
			*q++ = '0';
		memcpy(q, dig, n);
		q += n;
	} else {
		for (i = 0; i < n; i++) {
			*q++ = dig[i];
			if (i + 1 == decpt && i + 1 < n)
				*q++ = '.';
		}
		for (; i < decpt; i++)
			*q++ = '0';
	}
	o->len = q - o->buf;
}

/* Append a double as jq prints it (null if not finite). */
static void
format_out_double(struct format_out *o, double d)
{
	char	dig[32];
	int	n, decpt;

	if (!isfinite(d)) {
		format_out_add(o, "null", 4);
		return;
	}
	if (d == 0) {
		if (signbit(d))
			format_out_add(o, "-0", 2);
		else
			format_out_add(o, "0", 1);
		return;
	}
	n = format_dbl_digits(fabs(d), dig, &decpt);
	format_out_num(o, d < 0, dig, n, decpt);
}

/*
 * Append a float value as jq prints the text tag_value_json() gives it:
 * whole numbers below 1e16 as the double they are; others as the float's
 * shortest text, which jq reads into the nearest double, whose shortest
 * digits are the same (at most 9 of them, fewer than 15).
 */
static void
format_out_float(struct format_out *o, double d)
{
	char	dig[32];
	float	f = (float)d;
	int	n, decpt;

	if (!isfinite(d)) {
		format_out_add(o, "null", 4);
		return;
	}
	if (f == floorf(f) && fabsf(f) < 1e16f) {
		format_out_double(o, f);
		return;
	}
	n = format_flt_digits(fabsf(f), dig, &decpt);
	format_out_num(o, f < 0, dig, n, decpt);
}

/* Append an unsigned integer. */
static void
format_out_u64(struct format_out *o, uint64_t u)
{
	char	tmp[24];
	int	i = sizeof tmp;

	do {
		tmp[--i] = '0' + u % 10;
		u /= 10;
	} while (u != 0);
	format_out_add(o, tmp + i, sizeof tmp - i);
}

/* Append a tag value (borrowed) as the jq path would print it. */
void
format_out_value(struct format_out *o, const struct tag_value *v)
{
	char	*b64;

	switch (v->type) {
	case TAG_UINT8:
	case TAG_UINT16:
	case TAG_UINT32:
	case TAG_UINT64:
		format_out_u64(o, v->n.u);
		break;
	case TAG_INT8:
	case TAG_INT16:
	case TAG_INT32:
	case TAG_INT64:
		if (v->n.i < 0) {
			format_out_add(o, "-", 1);
			format_out_u64(o, -(uint64_t)v->n.i);
		} else
			format_out_u64(o, v->n.i);
		break;
	case TAG_FLOAT:
		format_out_float(o, v->n.d);
		break;
	case TAG_DOUBLE:
		format_out_double(o, v->n.d);
		break;
	case TAG_STRING:
		format_out_str(o, v->s != NULL ? v->s : "", v->len);
		break;
	case TAG_BOOLEAN:
		if (v->n.b)
			format_out_add(o, "true", 4);
		else
			format_out_add(o, "false", 5);
		break;
	case TAG_RAW:
		b64 = util_base64_encode((const unsigned char *)v->s, v->len);
		format_out_str(o, b64, strlen(b64));
		free(b64);
		break;
	default:
		format_out_add(o, "null", 4);
		break;
	}
}

/*
 * Append the date of ts (microseconds) as the default filter prints it:
 * jq gets ms, divides by 1000 as a double, and gmtime() truncates the
 * seconds toward zero.  Years 1000 to 9999 are worked out here; the
 * others through gmtime_r() and strftime(), as jq prints them (no
 * padding, a minus sign).
 */
void
format_out_date(struct format_buf *fb, struct format_out *o, int64_t ts)
{
	struct tm	 tm;
	time_t		 secs;
	int64_t		 days, rem, z, era, doe, yoe, y, doy, mp, d, mo;
	char		*q;

	secs = (time_t)((double)(ts / 1000) / 1000.0);
	if (!fb->dvalid || fb->dsecs != secs) {
		days = secs / 86400;
		rem = secs % 86400;
		if (rem < 0) {
			rem += 86400;
			days--;
		}
		/* Civil from days (H. Hinnant). */
		z = days + 719468;
		era = (z >= 0 ? z : z - 146096) / 146097;
		doe = z - era * 146097;
		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
		mp = (5 * doy + 2) / 153;
		d = doy - (153 * mp + 2) / 5 + 1;
		mo = mp < 10 ? mp + 3 : mp - 9;
		y = yoe + era * 400 + (mo <= 2);
		if (y >= 1000 && y <= 9999) {
			q = fb->date;
			*q++ = '0' + y / 1000;
			*q++ = '0' + y / 100 % 10;
			*q++ = '0' + y / 10 % 10;
			*q++ = '0' + y % 10;
			*q++ = '-';
			*q++ = '0' + mo / 10;
			*q++ = '0' + mo % 10;
			*q++ = '-';
			*q++ = '0' + d / 10;
			*q++ = '0' + d % 10;
			*q++ = 'T';
			*q++ = '0' + rem / 36000;
			*q++ = '0' + rem / 3600 % 10;
			*q++ = ':';
			*q++ = '0' + rem % 3600 / 600;
			*q++ = '0' + rem % 3600 / 60 % 10;
			*q++ = ':';
			*q++ = '0' + rem % 60 / 10;
			*q++ = '0' + rem % 10;
			*q++ = 'Z';
			fb->dlen = q - fb->date;
		} else if (gmtime_r(&secs, &tm) != NULL)
			fb->dlen = strftime(fb->date, sizeof fb->date,
			    "%Y-%m-%dT%H:%M:%SZ", &tm);
		else
			fb->dlen = 0;
		fb->dsecs = secs;
		fb->dvalid = 1;
	}
	format_out_add(o, fb->date, fb->dlen);
}

/* SPDX-License-Identifier: ISC */

/*
 * Figure 3 of bench/pipeline: the native default format against libjq
 * running the very same filter, on the same records, in one process.
 *
 * usage: pipeline-format [-n records] [-r rounds] [-t tags]
 *
 * Builds records sensor-like records over tags distinct tags (two
 * providers, eight sources; int64 values as bench/ingest sends them but
 * within 2^53, which libjq holds exactly; doubles, floats, booleans,
 * strings, small unsigned and signed integers; timestamps a millisecond
 * apart).  Two formats come from format.c: format_new("") (the default,
 * rendered natively) and format_new("(" default filter ")"), the same
 * jq program in parentheses, which format.c cannot recognise as the
 * default and hands to libjq.  Each path runs the records two ways, as
 * the daemon's groups do:
 *
 *   batch   into messages of at most 64 KiB (format_buf_add with the
 *           limit; FORMAT_FULL takes the message and starts the next);
 *   single  one record per message (add, then take).
 *
 * First one checked pass per path and way: every message of the native
 * path must be byte for byte the libjq path's (compared as they come;
 * the first difference ends the run with status 1).  Then rounds timed
 * rounds, native and libjq alternating, each path's best CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) kept.  Prints one line of key=value pairs.
 */

#include <err.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "tag.h"

#include "bench.h"

#define PF_LIMIT	65536	/* bytes in a batched message */
#define PF_EXACT	9007199254740992LL	/* 2^53 */

/* What uplinkd.c gives the modules linked in; format.c needs neither. */
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

/* Totals of one pass; the check pass also keeps the messages' bytes. */
struct pf_out {
	uint64_t	 messages;
	uint64_t	 bytes;
	size_t		 max;
};

static uint64_t	pf_seed = 0x2545f4914f6cdd1dULL;

static uint64_t
pf_rand(void)
{
	pf_seed ^= pf_seed << 13;
	pf_seed ^= pf_seed >> 7;
	pf_seed ^= pf_seed << 17;
	return (pf_seed);
}

static double
pf_cpu(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == -1)
		err(1, "clock_gettime");
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/*
 * The records, with their names and strings in one arena each.  Tags
 * are spread over sources and providers the way a gateway's are: a few
 * providers, a handful of sources each, many tags per source.
 */
static struct tag_rec *
pf_records(size_t n, unsigned int tags)
{
	static const char *const prvds[] = { "modbus_tcp_master", "system" };
	static const char *const units[] = { "", "degC", "%", "kPa", "V" };
	struct tag_rec	*r;
	char		*names, *strs;
	size_t		 i, tag;
	int		 kind;

	if ((r = calloc(n, sizeof *r)) == NULL ||
	    (names = calloc(tags, 48)) == NULL ||
	    (strs = calloc(n, 32)) == NULL)
		err(1, "calloc");
	for (tag = 0; tag < tags; tag++) {
		snprintf(names + tag * 48, 24, "ioLogik_e12_%zu", tag % 8);
		snprintf(names + tag * 48 + 24, 24, "tag%zu", tag);
	}
	for (i = 0; i < n; i++) {
		tag = pf_rand() % tags;
		r[i].id = tag + 1;
		r[i].prvd = prvds[tag % 8 == 7];
		r[i].src = names + tag * 48;
		r[i].name = names + tag * 48 + 24;
		r[i].unit = units[tag % 5];
		r[i].ts = 1764100000000000LL + (int64_t)i * 1000;
		/* The type belongs to the tag, as in the hub. */
		kind = tag % 10;
		switch (kind) {
		case 0:
		case 1:
		case 2:
			/* bench/ingest's int64 values, kept within 2^53. */
			r[i].value.type = TAG_INT64;
			if ((pf_rand() & 0xf) == 0)
				r[i].value.n.i = (int64_t)(pf_rand() %
				    PF_EXACT) - PF_EXACT / 2;
			else
				r[i].value.n.i = (int64_t)(pf_rand() %
				    2000001) - 1000000;
			break;
		case 3:
		case 4:
			r[i].value.type = TAG_DOUBLE;
			r[i].value.n.d = (double)(pf_rand() % 10000000) /
			    1000.0;
			break;
		case 5:
			r[i].value.type = TAG_FLOAT;
			r[i].value.n.d = (float)((pf_rand() % 200000) / 10.0f -
			    10000.0f);
			break;
		case 6:
			r[i].value.type = TAG_BOOLEAN;
			r[i].value.n.b = pf_rand() & 1;
			break;
		case 7:
			r[i].value.type = TAG_STRING;
			snprintf(strs + i * 32, 32, "state %u ok",
			    (unsigned int)(pf_rand() % 7));
			r[i].value.s = strs + i * 32;
			r[i].value.len = strlen(r[i].value.s);
			break;
		case 8:
			r[i].value.type = TAG_UINT16;
			r[i].value.n.u = pf_rand() % 65536;
			break;
		default:
			r[i].value.type = TAG_INT32;
			r[i].value.n.i = (int32_t)pf_rand();
			break;
		}
	}
	return (r);
}

/* Account for one message; with keep, append its bytes to *all. */
static void
pf_message(struct pf_out *o, char *text, size_t len, char **all,
    size_t *alen, size_t *acap)
{
	if (text == NULL)
		errx(1, "format_buf_take gave no message");
	o->messages++;
	o->bytes += len;
	if (len > o->max)
		o->max = len;
	if (all != NULL) {
		if (*alen + len + 1 > *acap) {
			while (*alen + len + 1 > *acap)
				*acap = *acap == 0 ? 1 << 20 : *acap * 2;
			if ((*all = realloc(*all, *acap)) == NULL)
				err(1, "realloc");
		}
		memcpy(*all + *alen, text, len);
		(*all)[*alen + len] = '\n';
		*alen += len + 1;
	}
	free(text);
}

/*
 * One pass of n records through f: batched (limit PF_LIMIT) or one
 * record per message.  With all, every message is kept, one a line.
 */
static void
pf_pass(struct format *f, const struct tag_rec *r, size_t n, int single,
    struct pf_out *o, char **all, size_t *alen)
{
	struct format_buf	*fb;
	size_t			 i, len, acap = 0;
	char			*text, *cause = NULL;
	int			 rc;

	memset(o, 0, sizeof *o);
	if (all != NULL) {
		*all = NULL;
		*alen = 0;
	}
	if ((fb = format_buf_new(f)) == NULL)
		errx(1, "format_buf_new failed");
	for (i = 0; i < n; i++) {
		rc = format_buf_add(fb, &r[i], PF_LIMIT, &cause);
		if (rc == FORMAT_FULL) {
			text = format_buf_take(fb, &len);
			pf_message(o, text, len, all, alen, &acap);
			rc = format_buf_add(fb, &r[i], PF_LIMIT, &cause);
		}
		if (rc != FORMAT_OK)
			errx(1, "record %zu (%s/%s/%s): %s", i, r[i].prvd,
			    r[i].src, r[i].name, rc == FORMAT_FULL ?
			    "larger than a message" : cause != NULL ? cause :
			    "the filter failed");
		if (single) {
			text = format_buf_take(fb, &len);
			pf_message(o, text, len, all, alen, &acap);
		}
	}
	if (format_buf_records(fb) != 0) {
		text = format_buf_take(fb, &len);
		pf_message(o, text, len, all, alen, &acap);
	}
	format_buf_free(fb);
}

/* Both paths must print the same messages; exits 1 on the first difference. */
static void
pf_check(struct format *nat, struct format *jqf, const struct tag_rec *r,
    size_t n, int single)
{
	struct pf_out	 on, oj;
	char		*an, *aj, *p, *q;
	size_t		 ln, lj, at, msg = 0, wn, wj;

	pf_pass(nat, r, n, single, &on, &an, &ln);
	pf_pass(jqf, r, n, single, &oj, &aj, &lj);
	if (ln == lj && memcmp(an, aj, ln) == 0 && on.messages == oj.messages) {
		free(an);
		free(aj);
		return;
	}
	for (at = 0; at < ln && at < lj && an[at] == aj[at]; at++)
		if (an[at] == '\n')
			msg++;
	/* The message holding the first difference, from both paths. */
	p = an + at;
	while (p > an && p[-1] != '\n')
		p--;
	q = aj + (p - an);
	wn = strcspn(p, "\n");
	wj = strcspn(q, "\n");
	fprintf(stderr, "pipeline-format: %s: native and libjq differ at byte "
	    "%zu of message %zu\nnative: %.*s\nlibjq:  %.*s\n", single ?
	    "single" : "batch", at - (size_t)(p - an), msg,
	    (int)(wn > 400 ? 400 : wn), p, (int)(wj > 400 ? 400 : wj), q);
	exit(1);
}

/* Best CPU seconds of rounds passes of each path, alternating. */
static void
pf_time(struct format *nat, struct format *jqf, const struct tag_rec *r,
    size_t n, int single, unsigned int rounds, double *tn, double *tj,
    struct pf_out *o)
{
	struct pf_out	 oj;
	double		 t0, t;
	unsigned int	 k;

	*tn = *tj = 1e30;
	for (k = 0; k < rounds; k++) {
		t0 = pf_cpu();
		pf_pass(nat, r, n, single, o, NULL, NULL);
		if ((t = pf_cpu() - t0) < *tn)
			*tn = t;
		t0 = pf_cpu();
		pf_pass(jqf, r, n, single, &oj, NULL, NULL);
		if ((t = pf_cpu() - t0) < *tj)
			*tj = t;
		if (oj.bytes != o->bytes || oj.messages != o->messages)
			errx(1, "timed passes printed different totals");
	}
	if (*tn <= 0 || *tj <= 0)
		errx(1, "a pass took no measurable CPU time: use more records");
}

int
main(int argc, char **argv)
{
	struct tag_rec	*r;
	struct format	*nat, *jqf;
	struct pf_out	 ob, os;
	char		*prog, *cause = NULL;
	size_t		 n = 200000, plen;
	unsigned int	 tags = 1000, rounds = 3;
	double		 bn, bj, sn, sj;
	int		 ch;

	while ((ch = getopt(argc, argv, "n:r:t:")) != -1) {
		switch (ch) {
		case 'n':
			n = bench_range(optarg, "-n", 1, 100000000);
			break;
		case 'r':
			rounds = bench_range(optarg, "-r", 1, 1000);
			break;
		case 't':
			tags = bench_range(optarg, "-t", 1, 1000000);
			break;
		default:
			fprintf(stderr, "usage: pipeline-format [-n records] "
			    "[-r rounds] [-t tags]\n");
			return (2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: pipeline-format [-n records] "
		    "[-r rounds] [-t tags]\n");
		return (2);
	}

	if ((nat = format_new("", &cause)) == NULL)
		errx(1, "the default format: %s", cause);
	plen = strlen(format_default_filter()) + 3;
	if ((prog = malloc(plen)) == NULL)
		err(1, "malloc");
	snprintf(prog, plen, "(%s)", format_default_filter());
	if ((jqf = format_new(prog, &cause)) == NULL)
		errx(1, "the default filter through libjq: %s", cause);
	if (!format_is_default(nat) || format_is_default(jqf))
		errx(1, "format.c did not pick the native path for \"\" and "
		    "libjq for \"%s\"", prog);

	r = pf_records(n, tags);
	pf_check(nat, jqf, r, n, 0);
	pf_check(nat, jqf, r, n, 1);
	pf_time(nat, jqf, r, n, 0, rounds, &bn, &bj, &ob);
	pf_time(nat, jqf, r, n, 1, rounds, &sn, &sj, &os);

	printf("records=%zu tags=%u rounds=%u identical=yes"
	    " batch_messages=%" PRIu64 " batch_bytes=%" PRIu64
	    " batch_max=%zu batch_native_rps=%.0f batch_jq_rps=%.0f"
	    " batch_ratio=%.1f single_bytes=%" PRIu64
	    " single_native_rps=%.0f single_jq_rps=%.0f single_ratio=%.1f\n",
	    n, tags, rounds, ob.messages, ob.bytes, ob.max, n / bn, n / bj,
	    bj / bn, os.bytes, n / sn, n / sj, sj / sn);
	format_free(nat);
	format_free(jqf);
	free(prog);
	return (0);
}

/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the system provider (tagsrc_system.c) on a real event
 * loop: every tag is defined with its type and unit and has a value at
 * once; the timer takes one more sample a second later, all values of a
 * sample in one batch with one timestamp; the values agree with what this
 * test reads from /proc and statvfs itself; publishing to a system tag is
 * refused; a disk path that cannot be read leaves out only its tags and
 * is logged once; subscribers get each sample; interval 0 defines nothing.
 */

#include <sys/statvfs.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "tag.h"
#include "tagsrc_system.h"
#include "tap.h"
#include "util.h"

#define TAGSRC_SYSTEM_TEST_NTAGS	13

struct tagsrc_system_test_def {
	const char	*name;
	enum tag_type	 type;
	const char	*unit;
};

static const struct tagsrc_system_test_def tagsrc_system_test_defs[] = {
	{ "cpuUsage", TAG_DOUBLE, "%" },
	{ "memoryUsage", TAG_DOUBLE, "%" },
	{ "memoryUsed", TAG_UINT64, "bytes" },
	{ "memoryTotal", TAG_UINT64, "bytes" },
	{ "memoryAvailable", TAG_UINT64, "bytes" },
	{ "diskUsage", TAG_DOUBLE, "%" },
	{ "diskUsed", TAG_UINT64, "bytes" },
	{ "diskTotal", TAG_UINT64, "bytes" },
	{ "diskFree", TAG_UINT64, "bytes" },
	{ "uptime", TAG_UINT64, "s" },
	{ "loadAverage1", TAG_DOUBLE, "" },
	{ "uplinkdRss", TAG_UINT64, "bytes" },
	{ "uplinkdCpuUsage", TAG_DOUBLE, "%" }
};

static int	tagsrc_system_test_delivered;

/* metrics.c names HTTP methods; this test links no api.c. */
const char *
api_method_name(__attribute__((unused)) int m)
{
	return ("GET");
}

/* A "Key:  N kB" line of a file, in bytes; 0 if missing. */
static uint64_t
tagsrc_system_test_kb(const char *path, const char *key)
{
	FILE		*f;
	char		 line[512];
	uint64_t	 v = 0;
	size_t		 len = strlen(key);

	if ((f = fopen(path, "r")) == NULL)
		return (0);
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, len) == 0)
			v = strtoull(line + len, NULL, 10) * 1024;
	fclose(f);
	return (v);
}

/* The first number of a file; -1 if unreadable. */
static double
tagsrc_system_test_first(const char *path)
{
	FILE	*f;
	double	 d = -1;

	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	if (fscanf(f, "%lf", &d) != 1)
		d = -1;
	fclose(f);
	return (d);
}

/* The latest value of system/status/name; 0 if it has none. */
static int
tagsrc_system_test_get(const char *name, struct tag_rec *rec)
{
	struct tag	*t;

	memset(rec, 0, sizeof *rec);
	if ((t = tag_find("system", "status", name)) == NULL)
		return (0);
	return (tag_get(t, rec) == 0);
}

/* A value within 0..max with at most 2 decimals. */
static void
tagsrc_system_test_pct(const char *name, double max)
{
	struct tag_rec	 rec;
	double		 x;
	long long	 k;
	char		 what[128];
	int		 good;

	tagsrc_system_test_get(name, &rec);
	x = rec.value.n.d * 100;
	k = (long long)(x + 0.5);
	good = rec.value.n.d >= 0 && rec.value.n.d <= max &&
	    x - k < 1e-6 && k - x < 1e-6;
	snprintf(what, sizeof what, "%s %.4f is in 0..%g, 2 decimals",
	    name, rec.value.n.d, max);
	tap_ok(good, what);
}

/* Run the loop for ms milliseconds. */
static void
tagsrc_system_test_run(struct event_base *base, int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Count values a subscriber gets. */
static void
tagsrc_system_test_cb(const struct tag_rec *rec,
    __attribute__((unused)) void *arg)
{
	if (strcmp(rec->prvd, "system") == 0)
		tagsrc_system_test_delivered++;
}

/* Definitions, the first sample, the timer, and each value. */
static void
tagsrc_system_test_values(struct event_base *base)
{
	const struct tagsrc_system_test_def *d;
	struct tag_rec	 rec, first;
	struct tag	*t;
	struct statvfs	 sv;
	char		*cause = NULL, *text, what[160];
	uint64_t	 bsize, self;
	int64_t		 t0, ts = 0;
	double		 up;
	size_t		 i, len;
	int		 good, have = 0, same = 1, typed = 0, units = 0;
	int		 origin = 0, access = 0;
	struct tag_pub	 pub = { .prvd = "system", .src = "status",
			    .name = "cpuUsage", .has_type = 1,
			    .value = { .type = TAG_DOUBLE, .n.d = 1.5 } };

	metrics_init();
	tag_init(NULL);
	tagsrc_system_init(base, 1, "/");
	tap_is_int(tag_count(), TAGSRC_SYSTEM_TEST_NTAGS, "13 tags defined");
	for (i = 0; i < TAGSRC_SYSTEM_TEST_NTAGS; i++)
		have += tagsrc_system_test_get(tagsrc_system_test_defs[i].name,
		    &rec);
	tap_is_int(have, TAGSRC_SYSTEM_TEST_NTAGS, "every tag has a value "
	    "at once");
	tagsrc_system_test_get("memoryTotal", &first);
	t0 = first.ts;
	tagsrc_system_test_pct("uplinkdCpuUsage", 100);
	tagsrc_system_test_pct("cpuUsage", 100);

	tagsrc_system_test_run(base, 1200);

	have = 0;
	for (i = 0; i < TAGSRC_SYSTEM_TEST_NTAGS; i++) {
		d = &tagsrc_system_test_defs[i];
		if ((t = tag_find("system", "status", d->name)) == NULL) {
			printf("#   %s is not defined\n", d->name);
			continue;
		}
		typed += tag_get_type(t) == d->type;
		units += strcmp(tag_get_unit(t), d->unit) == 0;
		origin += tag_get_origin(t) == TAG_ORIGIN_SYSTEM;
		access += tag_get_access(t) == TAG_ACCESS_R;
		if (tag_get(t, &rec) != 0) {
			printf("#   %s has no value\n", d->name);
			continue;
		}
		have++;
		if (ts == 0)
			ts = rec.ts;
		same &= rec.ts == ts && rec.value.type == d->type;
	}
	tap_is_int(typed, TAGSRC_SYSTEM_TEST_NTAGS, "every tag has its type");
	tap_is_int(units, TAGSRC_SYSTEM_TEST_NTAGS, "every tag has its unit");
	tap_is_int(origin, TAGSRC_SYSTEM_TEST_NTAGS, "every tag is of the "
	    "system origin");
	tap_is_int(access, TAGSRC_SYSTEM_TEST_NTAGS, "every tag is read-only");
	tap_is_int(have, TAGSRC_SYSTEM_TEST_NTAGS, "every tag has a value");
	tap_ok(same, "one timestamp and the tag's type in a sample");
	if (!tap_ok(ts - t0 >= 800000 && ts - t0 <= 1500000,
	    "the timer took a second sample about 1 s later"))
		printf("#   %" PRId64 " us apart\n", ts - t0);
	tap_ok(ts > util_wall_us() - 2000000 && ts <= util_wall_us(),
	    "timestamps are wall-clock microseconds");
	text = metrics_render(&len);
	tap_ok(strstr(text, "uplinkd_tag_records_total{origin=\"system\"} "
	    "26\n") != NULL, "two samples of 13 values counted as system");
	free(text);

	tagsrc_system_test_pct("cpuUsage", 100);
	tagsrc_system_test_pct("memoryUsage", 100);
	tagsrc_system_test_pct("diskUsage", 100);
	tagsrc_system_test_pct("uplinkdCpuUsage", 100);
	tagsrc_system_test_pct("loadAverage1", 1e6);

	tagsrc_system_test_get("memoryTotal", &rec);
	tap_ok(rec.value.n.u > 0 && rec.value.n.u ==
	    tagsrc_system_test_kb("/proc/meminfo", "MemTotal:"),
	    "memoryTotal is MemTotal in bytes");
	first = rec;
	tagsrc_system_test_get("memoryUsed", &rec);
	self = rec.value.n.u;
	tagsrc_system_test_get("memoryAvailable", &rec);
	tap_ok(self + rec.value.n.u == first.value.n.u && self > 0,
	    "memoryUsed + memoryAvailable is memoryTotal");

	tagsrc_system_test_get("diskTotal", &rec);
	good = statvfs("/", &sv) == 0;
	bsize = sv.f_frsize != 0 ? sv.f_frsize : sv.f_bsize;
	if (!tap_ok(good && rec.value.n.u == (uint64_t)sv.f_blocks * bsize &&
	    rec.value.n.u > 0, "diskTotal is statvfs(\"/\") in bytes"))
		printf("#   got %" PRIu64 "\n", rec.value.n.u);
	first = rec;
	tagsrc_system_test_get("diskUsed", &rec);
	self = rec.value.n.u;
	tagsrc_system_test_get("diskFree", &rec);
	tap_ok(self + rec.value.n.u <= first.value.n.u,
	    "diskUsed + diskFree is at most diskTotal");

	tagsrc_system_test_get("uptime", &rec);
	up = tagsrc_system_test_first("/proc/uptime");
	snprintf(what, sizeof what, "uptime %" PRIu64 " s is /proc/uptime "
	    "%.2f", rec.value.n.u, up);
	tap_ok(rec.value.n.u > 0 && rec.value.n.u <= up &&
	    rec.value.n.u + 3 >= up, what);

	tagsrc_system_test_get("uplinkdRss", &rec);
	self = tagsrc_system_test_kb("/proc/self/status", "VmRSS:");
	snprintf(what, sizeof what, "uplinkdRss %" PRIu64 " is over 1 MB "
	    "and near VmRSS %" PRIu64, rec.value.n.u, self);
	tap_ok(rec.value.n.u > 1024 * 1024 && rec.value.n.u >= self / 2 &&
	    rec.value.n.u <= self * 2, what);

	tap_ok(tag_publish(&pub, 1, TAG_ORIGIN_REST, &cause) == -1 &&
	    cause != NULL && strstr(cause, "system provider") != NULL,
	    "publishing to a system tag is refused");
	free(cause);

	tagsrc_system_free();
	tap_ok(tag_find("system", "status", "uptime") != NULL,
	    "the tags stay after tagsrc_system_free");
	tagsrc_system_free();
	tag_free();
}

/* A disk path that fails: its tags only are left out, logged once. */
static void
tagsrc_system_test_baddisk(struct event_base *base)
{
	struct tag_rec	 rec;
	struct tag_sub	*sub;
	char		 buf[4096];
	FILE		*log;
	size_t		 n;
	int		 saved, count = 0;
	const char	*p;

	tag_init(base);
	sub = tag_subscribe("system", "status", NULL, tagsrc_system_test_cb,
	    NULL);
	fflush(stderr);
	saved = dup(2);
	log = tmpfile();
	dup2(fileno(log), 2);
	tagsrc_system_init(base, 1, "/nonexistent/uplinkd-test");
	tagsrc_system_test_run(base, 1200);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(log);
	n = fread(buf, 1, sizeof buf - 1, log);
	buf[n] = '\0';
	fclose(log);
	for (p = buf; (p = strstr(p, "/nonexistent/uplinkd-test")) != NULL;
	    p++)
		count++;
	if (!tap_is_int(count, 1, "a failing disk path is logged once"))
		printf("#   log: %s\n", buf);
	tap_ok(strstr(buf, "cannot read") != NULL &&
	    strstr(buf, "No such file") != NULL,
	    "the log line says why");
	tap_ok(!tagsrc_system_test_get("diskUsage", &rec) &&
	    !tagsrc_system_test_get("diskTotal", &rec) &&
	    !tagsrc_system_test_get("diskUsed", &rec) &&
	    !tagsrc_system_test_get("diskFree", &rec),
	    "the disk tags have no value");
	tap_ok(tagsrc_system_test_get("memoryTotal", &rec) &&
	    tagsrc_system_test_get("uptime", &rec) &&
	    tagsrc_system_test_get("uplinkdRss", &rec),
	    "the other tags have values");
	tap_is_int(tagsrc_system_test_delivered, 2 * 9,
	    "a source subscriber got two samples of 9 values");
	tag_unsubscribe(sub);
	tagsrc_system_free();
	tag_free();
}

/* interval 0: system tags off. */
static void
tagsrc_system_test_off(struct event_base *base)
{
	tag_init(NULL);
	tagsrc_system_init(base, 0, "/");
	tap_is_int(tag_count(), 0, "interval 0 defines no tag");
	tap_is_int(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0,
	    "interval 0 adds no timer");
	tagsrc_system_free();
	tag_free();
}

int
main(void)
{
	struct event_base	*base;

	log_init(1, LOG_LEVEL_WARN);
	if ((base = event_base_new()) == NULL) {
		printf("Bail out! event_base_new\n");
		return (1);
	}
	tagsrc_system_test_values(base);
	tagsrc_system_test_baddisk(base);
	tagsrc_system_test_off(base);
	event_base_free(base);
	metrics_free();
	return (tap_done());
}

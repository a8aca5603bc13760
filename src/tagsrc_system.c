/* SPDX-License-Identifier: ISC */
/*
 * The system provider: tags under system/status with figures of the
 * gateway (CPU, memory, the disk holding diskpath, uptime, load) and of
 * the daemon itself (RSS, CPU), sampled every interval seconds.
 *
 * A sample opens, reads and closes a few small procfs files into a buffer
 * on the stack and calls statvfs(); nothing is allocated.  All values of
 * a sample go to the hub in one tag_apply() with one timestamp.  A file
 * that cannot be read or parsed leaves its tags out of that sample and is
 * logged the first time only.
 *
 * CPU figures are deltas between samples.  The first sample has no
 * previous one, so it reports the average since boot (cpuUsage, as top
 * and vmstat do) and since the daemon started (uplinkdCpuUsage).
 */

#include <sys/statvfs.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "tag.h"
#include "tagsrc_system.h"
#include "util.h"
#include "xmalloc.h"

#define TAGSRC_SYSTEM_PRVD	"system"
#define TAGSRC_SYSTEM_SRC	"status"
#define TAGSRC_SYSTEM_BUF	4096

/* The tags, in the order of tagsrc_system_defs. */
enum tagsrc_system_idx {
	TAGSRC_SYSTEM_CPU,
	TAGSRC_SYSTEM_MEMUSAGE,
	TAGSRC_SYSTEM_MEMUSED,
	TAGSRC_SYSTEM_MEMTOTAL,
	TAGSRC_SYSTEM_MEMAVAIL,
	TAGSRC_SYSTEM_DISKUSAGE,
	TAGSRC_SYSTEM_DISKUSED,
	TAGSRC_SYSTEM_DISKTOTAL,
	TAGSRC_SYSTEM_DISKFREE,
	TAGSRC_SYSTEM_UPTIME,
	TAGSRC_SYSTEM_LOAD1,
	TAGSRC_SYSTEM_RSS,
	TAGSRC_SYSTEM_SELFCPU,
	TAGSRC_SYSTEM_NTAGS
};

struct tagsrc_system_def {
	const char	*name;
	enum tag_type	 type;
	const char	*unit;
};

static const struct tagsrc_system_def tagsrc_system_defs[] = {
	[TAGSRC_SYSTEM_CPU] = { "cpuUsage", TAG_DOUBLE, "%" },
	[TAGSRC_SYSTEM_MEMUSAGE] = { "memoryUsage", TAG_DOUBLE, "%" },
	[TAGSRC_SYSTEM_MEMUSED] = { "memoryUsed", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_MEMTOTAL] = { "memoryTotal", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_MEMAVAIL] = { "memoryAvailable", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_DISKUSAGE] = { "diskUsage", TAG_DOUBLE, "%" },
	[TAGSRC_SYSTEM_DISKUSED] = { "diskUsed", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_DISKTOTAL] = { "diskTotal", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_DISKFREE] = { "diskFree", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_UPTIME] = { "uptime", TAG_UINT64, "s" },
	[TAGSRC_SYSTEM_LOAD1] = { "loadAverage1", TAG_DOUBLE, "" },
	[TAGSRC_SYSTEM_RSS] = { "uplinkdRss", TAG_UINT64, "bytes" },
	[TAGSRC_SYSTEM_SELFCPU] = { "uplinkdCpuUsage", TAG_DOUBLE, "%" }
};

struct tagsrc_system {
	struct event	*timer;
	char		*diskpath;
	long		 hz;		/* clock ticks per second */
	uint64_t	 cpu_total;	/* /proc/stat at the last sample */
	uint64_t	 cpu_idle;
	int		 self_have;
	uint64_t	 self_ticks;	/* utime + stime at the last sample */
	int64_t		 self_us;	/* CLOCK_BOOTTIME then */
	unsigned int	 warned;	/* 1 << first tag of a failing file */
	struct tag_pub	 recs[TAGSRC_SYSTEM_NTAGS];	/* this sample */
	size_t		 nrecs;
};

static struct tagsrc_system	*tagsrc_system;

static void	tagsrc_system_sample(void);
static void	tagsrc_system_timer_cb(evutil_socket_t, short, void *);

/* Start sampling every interval seconds (0: no system tags). */
void
tagsrc_system_init(struct event_base *base, unsigned int interval,
    const char *diskpath)
{
	struct tagsrc_system	*s;
	struct timeval		 tv;
	size_t			 i;

	tagsrc_system_free();
	if (interval == 0)
		return;
	s = tagsrc_system = xcalloc(1, sizeof *s);
	s->diskpath = xstrdup(diskpath != NULL ? diskpath : "/");
	if ((s->hz = sysconf(_SC_CLK_TCK)) <= 0)
		s->hz = 100;
	for (i = 0; i < TAGSRC_SYSTEM_NTAGS; i++)
		tag_define(TAGSRC_SYSTEM_PRVD, TAGSRC_SYSTEM_SRC,
		    tagsrc_system_defs[i].name, tagsrc_system_defs[i].type,
		    tagsrc_system_defs[i].unit, TAG_ACCESS_R, 0,
		    TAG_ORIGIN_SYSTEM);
	tagsrc_system_sample();
	s->timer = event_new(base, -1, EV_PERSIST, tagsrc_system_timer_cb,
	    NULL);
	tv = (struct timeval){ .tv_sec = interval };
	event_add(s->timer, &tv);
	log_debug("system tags: every %us disk=%s", interval, s->diskpath);
}

/* Stop sampling; the tags stay in the hub with their last values. */
void
tagsrc_system_free(void)
{
	struct tagsrc_system	*s = tagsrc_system;

	if (s == NULL)
		return;
	if (s->timer != NULL)
		event_free(s->timer);
	free(s->diskpath);
	free(s);
	tagsrc_system = NULL;
}

/* Log a failing source the first time only (errno kept for log_warn). */
static void
tagsrc_system_warn(enum tagsrc_system_idx f, const char *what, int sys)
{
	if (tagsrc_system->warned & (1u << f))
		return;
	tagsrc_system->warned |= 1u << f;
	if (sys)
		log_warn("system tags: cannot read %s, skipping it", what);
	else
		log_warnx("system tags: cannot parse %s, skipping it", what);
}

/* Read a small file into buf, NUL-terminated; 0, or -1 (logged once). */
static int
tagsrc_system_read(enum tagsrc_system_idx f, const char *path, char *buf,
    size_t size)
{
	size_t	len = 0;
	ssize_t	r;
	int	fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		goto fail;
	do {
		if ((r = read(fd, buf + len, size - 1 - len)) > 0)
			len += (size_t)r;
	} while ((r > 0 && len < size - 1) || (r == -1 && errno == EINTR));
	saved = errno;
	close(fd);
	buf[len] = '\0';
	if (r != -1)
		return (0);
	errno = saved;
fail:
	tagsrc_system_warn(f, path, 1);
	return (-1);
}

/* Busy share of all CPUs since the last sample, from /proc/stat. */
static int
tagsrc_system_cpu(double *pct)
{
	struct tagsrc_system	*s = tagsrc_system;
	char			 buf[512];
	uint64_t		 f[8] = { 0 }, total, idle, dt, di;
	int			 i, n;

	/* Only the first line, "cpu  user nice system idle iowait ...". */
	if (tagsrc_system_read(TAGSRC_SYSTEM_CPU, "/proc/stat", buf,
	    sizeof buf) != 0)
		return (-1);
	n = sscanf(buf, "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
	    " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &f[0], &f[1],
	    &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]);
	if (n < 4) {
		tagsrc_system_warn(TAGSRC_SYSTEM_CPU, "/proc/stat", 0);
		return (-1);
	}
	for (i = 0, total = 0; i < 8; i++)
		total += f[i];		/* guest time is inside user already */
	idle = f[3] + f[4];		/* idle + iowait */
	dt = total > s->cpu_total ? total - s->cpu_total : 0;
	di = idle > s->cpu_idle ? idle - s->cpu_idle : 0;
	*pct = dt == 0 || di > dt ? 0 : (double)(dt - di) / dt * 100;
	s->cpu_total = total;
	s->cpu_idle = idle;
	return (0);
}

/* Values of "Key:  N kB" lines of a file, in bytes; 0 or -1. */
static int
tagsrc_system_kb(enum tagsrc_system_idx f, const char *path,
    const char *const *keys, uint64_t *v, int n)
{
	char		 buf[TAGSRC_SYSTEM_BUF], *end;
	const char	*p;
	size_t		 len;
	int		 i;

	if (tagsrc_system_read(f, path, buf, sizeof buf) != 0)
		return (-1);
	for (i = 0; i < n; i++) {
		len = strlen(keys[i]);
		p = buf;
		while (p != NULL && strncmp(p, keys[i], len) != 0)
			if ((p = strchr(p, '\n')) != NULL)
				p++;
		if (p == NULL)
			break;
		v[i] = strtoull(p + len, &end, 10) * 1024;
		if (end == p + len)
			break;
	}
	if (i < n)
		tagsrc_system_warn(f, path, 0);
	return (i < n ? -1 : 0);
}

/* The first number of a file (/proc/uptime, /proc/loadavg). */
static int
tagsrc_system_first(enum tagsrc_system_idx f, const char *path, double *v)
{
	char	buf[256], *end;

	if (tagsrc_system_read(f, path, buf, sizeof buf) != 0)
		return (-1);
	*v = strtod(buf, &end);
	if (end == buf || !(*v >= 0)) {
		tagsrc_system_warn(f, path, 0);
		return (-1);
	}
	return (0);
}

/*
 * CPU of this process (utime + stime of /proc/self/stat) over the time
 * since the last sample, in percent of one core.  The first sample counts
 * from the start of the process, using uptime (-1 if unknown).
 */
static int
tagsrc_system_self(double uptime, double *pct)
{
	struct tagsrc_system	*s = tagsrc_system;
	struct timespec		 ts;
	char			 buf[1024], *p;
	uint64_t		 ut, st, start, ticks;
	int64_t			 now, dt;
	double			 age;

	if (tagsrc_system_read(TAGSRC_SYSTEM_SELFCPU, "/proc/self/stat",
	    buf, sizeof buf) != 0)
		return (-1);
	/* After "pid (comm)": fields 3-13, utime, stime, 16-21, starttime. */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, "%*s %*s %*s "
	    "%*s %*s %*s %*s %*s %*s %*s %*s %" SCNu64 " %" SCNu64 " %*s %*s "
	    "%*s %*s %*s %*s %" SCNu64, &ut, &st, &start) != 3) {
		tagsrc_system_warn(TAGSRC_SYSTEM_SELFCPU, "/proc/self/stat", 0);
		return (-1);
	}
	ticks = ut + st;
	clock_gettime(CLOCK_BOOTTIME, &ts);	/* the clock of /proc/uptime */
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (!s->self_have) {
		age = uptime - (double)start / s->hz;	/* < 0: unknown */
		s->self_have = 1;
		s->self_ticks = 0;
		s->self_us = now - (int64_t)(age > 0 ? age * 1e6 : 0);
	}
	dt = now - s->self_us;
	*pct = dt <= 0 || ticks < s->self_ticks ? 0 :
	    (double)(ticks - s->self_ticks) * 1e8 / s->hz / dt;
	if (*pct > 100)
		*pct = 100;	/* tick granularity; one thread uses one core */
	s->self_ticks = ticks;
	s->self_us = now;
	return (0);
}

/* Add tag idx with an integer value to this sample. */
static void
tagsrc_system_u(enum tagsrc_system_idx idx, uint64_t u)
{
	tagsrc_system->recs[tagsrc_system->nrecs++] = (struct tag_pub){
		.prvd = TAGSRC_SYSTEM_PRVD, .src = TAGSRC_SYSTEM_SRC,
		.name = tagsrc_system_defs[idx].name, .has_type = 1,
		.value = { .type = tagsrc_system_defs[idx].type, .n.u = u }
	};
}

/* Add tag idx with a double rounded to 2 decimals (below 0 is 0). */
static void
tagsrc_system_d(enum tagsrc_system_idx idx, double d)
{
	tagsrc_system_u(idx, 0);
	if (!(d > 0))
		d = 0;
	else if (d < 1e15)
		d = (double)(uint64_t)(d * 100 + 0.5) / 100;
	tagsrc_system->recs[tagsrc_system->nrecs - 1].value.n.d = d;
}

/* Read every figure and hand what could be read to the hub at once. */
static void
tagsrc_system_sample(void)
{
	struct tagsrc_system	*s = tagsrc_system;
	struct statvfs		 sv;
	uint64_t		 v[2], used, avail, bsize;
	double			 d, uptime = -1;
	size_t			 i;
	int64_t			 now;

	s->nrecs = 0;
	if (tagsrc_system_cpu(&d) == 0)
		tagsrc_system_d(TAGSRC_SYSTEM_CPU, d);
	if (tagsrc_system_kb(TAGSRC_SYSTEM_MEMUSAGE, "/proc/meminfo",
	    (const char *const []){ "MemTotal:", "MemAvailable:" }, v, 2) ==
	    0 && v[0] != 0) {
		v[1] = v[1] > v[0] ? v[0] : v[1];
		tagsrc_system_d(TAGSRC_SYSTEM_MEMUSAGE,
		    (double)(v[0] - v[1]) / v[0] * 100);
		tagsrc_system_u(TAGSRC_SYSTEM_MEMUSED, v[0] - v[1]);
		tagsrc_system_u(TAGSRC_SYSTEM_MEMTOTAL, v[0]);
		tagsrc_system_u(TAGSRC_SYSTEM_MEMAVAIL, v[1]);
	}
	if (statvfs(s->diskpath, &sv) == 0) {
		/* As df: usage is used over what non-root could have. */
		bsize = sv.f_frsize != 0 ? sv.f_frsize : sv.f_bsize;
		used = sv.f_blocks > sv.f_bfree ?
		    (uint64_t)(sv.f_blocks - sv.f_bfree) * bsize : 0;
		avail = (uint64_t)sv.f_bavail * bsize;
		tagsrc_system_d(TAGSRC_SYSTEM_DISKUSAGE, used + avail == 0 ? 0 :
		    (double)used / (used + avail) * 100);
		tagsrc_system_u(TAGSRC_SYSTEM_DISKUSED, used);
		tagsrc_system_u(TAGSRC_SYSTEM_DISKTOTAL,
		    (uint64_t)sv.f_blocks * bsize);
		tagsrc_system_u(TAGSRC_SYSTEM_DISKFREE, avail);
	} else
		tagsrc_system_warn(TAGSRC_SYSTEM_DISKUSAGE, s->diskpath, 1);
	if (tagsrc_system_first(TAGSRC_SYSTEM_UPTIME, "/proc/uptime",
	    &uptime) == 0)
		tagsrc_system_u(TAGSRC_SYSTEM_UPTIME, (uint64_t)uptime);
	if (tagsrc_system_first(TAGSRC_SYSTEM_LOAD1, "/proc/loadavg", &d) == 0)
		tagsrc_system_d(TAGSRC_SYSTEM_LOAD1, d);
	if (tagsrc_system_kb(TAGSRC_SYSTEM_RSS, "/proc/self/status",
	    (const char *const []){ "VmRSS:" }, v, 1) == 0)
		tagsrc_system_u(TAGSRC_SYSTEM_RSS, v[0]);
	if (tagsrc_system_self(uptime, &d) == 0)
		tagsrc_system_d(TAGSRC_SYSTEM_SELFCPU, d);

	now = util_wall_us();
	for (i = 0; i < s->nrecs; i++)
		s->recs[i].ts = now;
	if (s->nrecs != 0)
		tag_apply(s->recs, s->nrecs, TAG_ORIGIN_SYSTEM);
}

/* The sampling timer. */
static void
tagsrc_system_timer_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, __attribute__((unused)) void *arg)
{
	tagsrc_system_sample();
}

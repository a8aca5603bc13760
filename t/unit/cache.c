/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the store-and-forward cache (cache.c) on a real event
 * loop and real files: a message comes back as it was put (topic, bytes
 * with NULs, QoS, retain, enqueue time); cache_next() walks the committed
 * records then the staged ones in sequence order; acknowledged messages
 * never come back, not after a commit nor a reopen; sequence numbers go
 * on after a reopen; a crash (a child that _exit()s without closing, or
 * is killed during commits) keeps every committed message and loses only
 * what was not committed; TTL; the size cap and both drop policies; an
 * empty cache gives its space back; a damaged or garbage file opens; a
 * locked file is refused; a full disk (a small tmpfs) is survived and
 * writing resumes when space returns.  Rates are TAP comments only.
 */

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cache.h"
#include "log.h"
#include "tap.h"
#include "util.h"

#define CACHE_TEST_TOPIC	"t/cache"
#define CACHE_TEST_PLEN		200		/* payload bytes */
#define CACHE_TEST_VLEN		(16 + 7 + CACHE_TEST_PLEN)	/* stored */
#define CACHE_TEST_COST		(CACHE_TEST_VLEN + 24)		/* budgeted */
#define CACHE_TEST_MIB		(1024 * 1024)
#define CACHE_TEST_BATCH	8192		/* CACHE_COMMIT_BATCH */

/* What a walk with cache_next() found. */
struct cache_test_walk {
	uint64_t	 n;
	uint64_t	 first;		/* message indexes */
	uint64_t	 last;
	uint64_t	 last_seq;
	int		 ordered;	/* seq rising */
	int		 contiguous;	/* each index the last + 1 */
	int		 intact;	/* payload, topic, qos as put */
};

/* What a child on a small tmpfs saw (written to the parent's pipe). */
struct cache_test_disk {
	int		 stage;		/* how far it got */
	int		 opened;
	uint64_t	 puts;
	uint64_t	 refused;
	uint64_t	 drops;		/* disk-error */
	uint64_t	 count;
	uint64_t	 bytes;
	uint64_t	 walked;
	int		 walk_ok;
	uint64_t	 disk_before;
	uint64_t	 disk_after;
	uint64_t	 count_resumed;
	uint64_t	 count_reopen;
	uint64_t	 fail_logs;
	uint64_t	 fail_secs;	/* from the first failure to stage 3 */
	int		 again_logged;
	char		 why[160];
};

static char		 cache_test_dir[64];
static int		 cache_test_sync = CACHE_SYNC_NONE;
static struct event_base *cache_test_base;

/* A path in the test directory; static buffer, one at a time. */
static const char *
cache_test_path(const char *name)
{
	static char	path[256];

	snprintf(path, sizeof path, "%s/%s", cache_test_dir, name);
	return (path);
}

/* Remove a cache file, its write-ahead log and a salvaged copy. */
static void
cache_test_unlink(const char *path)
{
	char	other[300];

	unlink(path);
	snprintf(other, sizeof other, "%s.wal", path);
	unlink(other);
	snprintf(other, sizeof other, "%s.damaged", path);
	unlink(other);
}

/* Bytes on disk of a cache (file and WAL, as du counts them). */
static uint64_t
cache_test_du(const char *path)
{
	struct stat	st;
	char		wal[300];
	uint64_t	n = 0;

	if (stat(path, &st) == 0)
		n += (uint64_t)st.st_blocks * 512;
	snprintf(wal, sizeof wal, "%s.wal", path);
	if (stat(wal, &st) == 0)
		n += (uint64_t)st.st_blocks * 512;
	return (n);
}

/* Seconds, as a double, of the monotonic clock. */
static double
cache_test_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* Open with a configuration; the cause is printed and freed. */
static struct cache *
cache_test_open(const char *path, uint64_t cap, uint32_t ttl, int newest)
{
	struct cache_cfg	 cfg;
	struct cache		*c;
	char			*cause = NULL;

	memset(&cfg, 0, sizeof cfg);
	cfg.cap_bytes = cap;
	cfg.ttl_sec = ttl;
	cfg.drop_newest = newest;
	c = cache_open(cache_test_base, path, "test", cache_test_sync, 100,
	    &cfg, &cause);
	if (c == NULL)
		printf("#   cache_open %s: %s\n", path,
		    cause != NULL ? cause : "(no cause)");
	free(cause);
	return (c);
}

/* Message i's payload: its index, then bytes that include NULs. */
static void
cache_test_payload(uint64_t i, unsigned char *p)
{
	size_t	j;

	memcpy(p, &i, sizeof i);
	for (j = sizeof i; j < CACHE_TEST_PLEN; j++)
		p[j] = (unsigned char)(i * 31 + j * 7);
}

/* Put message i; cache_put()'s result. */
static int
cache_test_put(struct cache *c, uint64_t i, int64_t enq)
{
	unsigned char	p[CACHE_TEST_PLEN];

	cache_test_payload(i, p);
	return (cache_put(c, CACHE_TEST_TOPIC, p, sizeof p, 1, 0,
	    enq != 0 ? enq : util_wall_us()));
}

/* Put messages from..to-1; the number refused. */
static uint64_t
cache_test_put_range(struct cache *c, uint64_t from, uint64_t to)
{
	uint64_t	i, refused = 0;
	int64_t		now = util_wall_us();

	for (i = from; i < to; i++)
		if (cache_test_put(c, i, now) != 0)
			refused++;
	return (refused);
}

/* Walk everything after seq after. */
static void
cache_test_walk(struct cache *c, uint64_t after, struct cache_test_walk *w)
{
	struct cache_rec	rec;
	unsigned char		p[CACHE_TEST_PLEN];
	uint64_t		i;

	memset(w, 0, sizeof *w);
	w->ordered = w->contiguous = w->intact = 1;
	w->last_seq = after;
	memset(&rec, 0, sizeof rec);
	while (cache_next(c, w->last_seq, &rec)) {
		if (rec.seq <= w->last_seq)
			w->ordered = 0;
		if (rec.len != CACHE_TEST_PLEN ||
		    strcmp(rec.topic, CACHE_TEST_TOPIC) != 0 || rec.qos != 1) {
			w->intact = 0;
			i = UINT64_MAX;
		} else {
			memcpy(&i, rec.payload, sizeof i);
			cache_test_payload(i, p);
			if (memcmp(p, rec.payload, sizeof p) != 0)
				w->intact = 0;
		}
		if (w->n == 0)
			w->first = i;
		else if (i != w->last + 1)
			w->contiguous = 0;
		w->last = i;
		w->last_seq = rec.seq;
		w->n++;
		cache_rec_clear(&rec);
		if (!w->ordered)
			break;
	}
}

/* Commit tries times (a commit writes a bounded batch; more waits). */
static void
cache_test_flush(struct cache *c, int tries)
{
	while (tries-- > 0)
		cache_commit(c);
}

/* Run the loop for ms milliseconds. */
static void
cache_test_run(int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(cache_test_base, &tv);
	event_base_dispatch(cache_test_base);
}

/* Send stderr to a temporary file; the saved descriptor. */
static int
cache_test_capture(FILE **log)
{
	int	saved;

	fflush(stderr);
	saved = dup(2);
	*log = tmpfile();
	dup2(fileno(*log), 2);
	return (saved);
}

/* Put stderr back and read what was written into buf. */
static void
cache_test_captured(int saved, FILE *log, char *buf, size_t size)
{
	size_t	n;

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(log);
	n = fread(buf, 1, size - 1, log);
	buf[n] = '\0';
	fclose(log);
}

/* Print text as TAP comments, each line behind "# " and a label. */
static void
cache_test_diag(const char *label, const char *text)
{
	const char	*e;

	if (*text == '\0') {
		printf("# %s(nothing)\n", label);
		return;
	}
	while (*text != '\0') {
		if ((e = strchr(text, '\n')) == NULL)
			e = text + strlen(text);
		printf("# %s%.*s\n", label, (int)(e - text), text);
		text = *e == '\n' ? e + 1 : e;
	}
}

/* How often needle occurs in s. */
static int
cache_test_occurs(const char *s, const char *needle)
{
	int	n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s++;
	}
	return (n);
}

/* Fork; the child runs fn(arg, fd) and _exit()s; -1 on failure. */
static pid_t
cache_test_fork(void (*fn)(void *, int), void *arg, int *rfd)
{
	int	fds[2];
	pid_t	pid;

	if (pipe(fds) == -1)
		return (-1);
	fflush(NULL);
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	if (pid == 0) {
		close(fds[0]);
		/* A loop of its own: the parent's epoll is shared. */
		cache_test_base = event_base_new();
		fn(arg, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	*rfd = fds[0];
	return (pid);
}

/* Read up to size bytes until EOF. */
static size_t
cache_test_read_all(int fd, void *buf, size_t size)
{
	size_t	n = 0;
	ssize_t	r;

	while (n < size && (r = read(fd, (char *)buf + n, size - n)) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += r;
	}
	return (n);
}

/* The child's exit: 0 if it exited 0; its signal number + 1000 if killed. */
static int
cache_test_wait(pid_t pid)
{
	int	status;

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return (-1);
	if (WIFSIGNALED(status))
		return (1000 + WTERMSIG(status));
	return (WEXITSTATUS(status));
}

/* Put, next, commit, next again: every field as it was put. */
static void
cache_test_roundtrip(void)
{
	static const unsigned char bytes[] = { 'a', 0, 'b', 0, 0, 'c', 0xff };
	const char		*path = cache_test_path("rt.tcb");
	struct cache		*c;
	struct cache_rec	 rec;
	int64_t			 enq = 1700000000123457LL;
	uint64_t		 cost1, cost2, rest, n0, b0, n1, b1;
	size_t			 size1;
	int			 got;

	c = cache_test_open(path, 0, 0, 0);
	if (c == NULL) {
		printf("Bail out! cannot open %s\n", path);
		exit(1);
	}
	tap_is_str(cache_path(c), path, "a new cache opens; cache_path is "
	    "the path given");
	memset(&rec, 0, sizeof rec);
	tap_ok(cache_count(c) == 0 && cache_bytes(c) == 0 &&
	    !cache_next(c, 0, &rec), "a new cache is empty");

	cost1 = 16 + strlen("plant/line1/temp") + sizeof bytes + 24;
	tap_is_int(cache_put(c, "plant/line1/temp", bytes, sizeof bytes, 1, 1,
	    enq), 0, "cache_put keeps a message");
	cost2 = 16 + 0 + 0 + 24;
	cache_put(c, "", NULL, 0, 2, 0, -5);
	cache_put(c, "q0", "x", 1, 0, 0, enq + 1);
	tap_ok(cache_count(c) == 3 && cache_bytes(c) == cost1 + cost2 +
	    16 + 2 + 1 + 24, "count and bytes of three staged messages");

	got = cache_next(c, 0, &rec);
	tap_ok(got && rec.seq == 1 && strcmp(rec.topic,
	    "plant/line1/temp") == 0 && rec.len == sizeof bytes &&
	    memcmp(rec.payload, bytes, sizeof bytes) == 0 && rec.qos == 1 &&
	    rec.retain == 1 && rec.enq_us == enq,
	    "a staged message comes back whole (NULs, qos, retain, time)");
	if (got)
		cache_rec_clear(&rec);

	cache_commit(c);
	got = cache_next(c, 0, &rec);
	if (!tap_ok(got && rec.seq == 1 && strcmp(rec.topic,
	    "plant/line1/temp") == 0 && rec.len == sizeof bytes &&
	    memcmp(rec.payload, bytes, sizeof bytes) == 0 && rec.qos == 1 &&
	    rec.retain == 1 && rec.enq_us == enq,
	    "a committed message comes back whole from disk") && got)
		printf("#   seq %" PRIu64 " topic %s len %zu qos %d retain %d "
		    "enq %" PRId64 "\n", rec.seq, rec.topic, rec.len, rec.qos,
		    rec.retain, rec.enq_us);
	if (got)
		cache_rec_clear(&rec);

	got = cache_next(c, 1, &rec);
	tap_ok(got && rec.seq == 2 && rec.topic[0] == '\0' && rec.len == 0 &&
	    rec.qos == 2 && rec.retain == 0 && rec.enq_us == -5,
	    "an empty topic and payload, qos 2, a negative time come back");
	if (got)
		cache_rec_clear(&rec);
	got = cache_next(c, 2, &rec);
	tap_ok(got && rec.seq == 3 && strcmp(rec.topic, "q0") == 0 &&
	    rec.len == 1 && rec.qos == 0 && rec.enq_us == enq + 1,
	    "qos 0 comes back");
	if (got)
		cache_rec_clear(&rec);
	tap_ok(!cache_next(c, 3, &rec), "nothing after the last message");

	got = cache_next(c, 0, &rec);
	size1 = got ? cache_rec_size(&rec) : 0;
	tap_is_int(size1, cost1 - 24, "cache_rec_size is the stored size");
	if (got)
		cache_rec_clear(&rec);
	cache_ack(c, 1, size1);
	rest = cost2 + 16 + 2 + 1 + 24;
	got = cache_next(c, 0, &rec);
	tap_ok(cache_count(c) == 2 && cache_bytes(c) == rest && got &&
	    rec.seq == 2, "an acknowledged message is gone at once (before "
	    "the commit)");
	if (got)
		cache_rec_clear(&rec);
	cache_ack(c, 1, size1);
	tap_ok(cache_count(c) == 2 && cache_bytes(c) == rest,
	    "acknowledging twice changes nothing");
	cache_commit(c);
	cache_ack(c, 1, size1);
	if (!tap_ok(cache_count(c) == 2 && cache_bytes(c) == rest,
	    "acknowledging it again after the commit, with its size, "
	    "changes nothing"))
		printf("#   count %" PRIu64 ", bytes %" PRIu64 " (want 2, %"
		    PRIu64 ")\n", cache_count(c), cache_bytes(c), rest);
	cache_commit(c);
	n0 = cache_count(c);
	b0 = cache_bytes(c);
	cache_ack(c, 4711, 0);
	tap_ok(cache_count(c) == n0 && cache_bytes(c) == b0,
	    "acknowledging an unknown number changes nothing");
	cache_ack(c, 4712, 100);
	if (!tap_ok(cache_count(c) == n0 && cache_bytes(c) == b0,
	    "nor with a size"))
		printf("#   count %" PRIu64 ", bytes %" PRIu64 " (want %"
		    PRIu64 ", %" PRIu64 ")\n", cache_count(c), cache_bytes(c),
		    n0, b0);
	cache_commit(c);
	n0 = cache_count(c);
	b0 = cache_bytes(c);
	cache_ack(c, 0, 0);
	n1 = cache_count(c);
	b1 = cache_bytes(c);
	cache_commit(c);
	if (!tap_ok(n1 == n0 && b1 == b0 && cache_count(c) == n0 &&
	    cache_bytes(c) == b0, "acknowledging sequence number 0 (the "
	    "bookkeeping key) changes nothing"))
		printf("#   count %" PRIu64 " -> %" PRIu64 " -> %" PRIu64
		    ", bytes %" PRIu64 " -> %" PRIu64 " -> %" PRIu64 "\n",
		    n0, n1, cache_count(c), b0, b1, cache_bytes(c));
	cache_close(c);

	c = cache_test_open(path, 0, 0, 0);
	got = c != NULL && cache_next(c, 0, &rec);
	tap_ok(c != NULL && cache_count(c) == 2 && cache_bytes(c) == rest &&
	    got && rec.seq == 2, "after a reopen: the acknowledged message "
	    "stays gone; count and bytes as before");
	if (got)
		cache_rec_clear(&rec);
	tap_ok(strcmp(cache_drop_name(CACHE_DROP_TTL), "ttl") == 0 &&
	    strcmp(cache_drop_name(CACHE_DROP_FULL_OLDEST), "full-oldest") ==
	    0 && strcmp(cache_drop_name(CACHE_DROP_FULL_NEWEST),
	    "full-newest") == 0 && strcmp(cache_drop_name(
	    CACHE_DROP_DISK_ERROR), "disk-error") == 0,
	    "drop reasons are named");
	cache_remove(c);
	tap_ok(access(path, F_OK) == -1, "cache_remove deletes the file");
}

/* Committed then staged, in order, across commits and batches. */
static void
cache_test_order(void)
{
	const char		*path = cache_test_path("order.tcb");
	struct cache		*c;
	struct cache_test_walk	 w;
	struct cache_rec	 rec;
	uint64_t		 i, seq15 = 0, max_seq, n = 20000;
	int			 good = 1;

	c = cache_test_open(path, 0, 0, 0);
	cache_test_put_range(c, 0, 10);
	cache_commit(c);
	cache_test_put_range(c, 10, 20);
	cache_commit(c);
	cache_test_put_range(c, 20, 30);
	cache_test_walk(c, 0, &w);
	tap_ok(w.n == 30 && w.ordered && w.contiguous && w.intact &&
	    w.first == 0 && w.last == 29 && cache_count(c) == 30,
	    "30 messages over two commits and the staged ones: all, in "
	    "order, all counted");

	memset(&rec, 0, sizeof rec);
	for (i = 0; cache_next(c, seq15, &rec) && i < 15; i++) {
		seq15 = rec.seq;
		cache_rec_clear(&rec);
	}
	cache_rec_clear(&rec);
	cache_test_walk(c, seq15, &w);
	tap_ok(w.n == 15 && w.first == 15 && w.last == 29 && w.ordered,
	    "cache_next from the middle of the committed ones goes on into "
	    "the staged ones");
	cache_test_walk(c, 25, &w);
	tap_ok(w.n == 5 && w.first == 25 && w.contiguous,
	    "cache_next from a staged number");
	tap_ok(!cache_next(c, 30, &rec), "cache_next after the last is 0");

	/* Acknowledge the odd ones: committed and staged, then commit. */
	for (i = 1; i <= 30; i += 2)
		cache_ack(c, i, CACHE_TEST_VLEN);
	tap_is_int(cache_count(c), 15, "15 acknowledged out of 30");
	for (i = 0; cache_next(c, i, &rec); i = rec.seq, cache_rec_clear(&rec))
		good &= rec.seq % 2 == 0;
	tap_ok(good && i == 30, "no acknowledged message is returned "
	    "(before the commit)");
	cache_commit(c);
	good = 1;
	for (i = 0; cache_next(c, i, &rec); i = rec.seq, cache_rec_clear(&rec))
		good &= rec.seq % 2 == 0;
	tap_ok(good && i == 30 && cache_count(c) == 15 &&
	    cache_bytes(c) == 15 * CACHE_TEST_COST,
	    "nor after it; count and bytes follow");
	cache_close(c);
	c = cache_test_open(path, 0, 0, 0);
	good = c != NULL && cache_count(c) == 15;
	for (i = 0; c != NULL && cache_next(c, i, &rec);
	    i = rec.seq, cache_rec_clear(&rec))
		good &= rec.seq % 2 == 0;
	tap_ok(good && i == 30 && cache_bytes(c) == 15 * CACHE_TEST_COST,
	    "nor after a reopen");
	cache_test_put(c, 100, 0);
	cache_test_walk(c, 30, &w);
	tap_ok(w.n == 1 && w.last_seq == 31, "numbering goes on after a "
	    "reopen (31)");
	cache_remove(c);

	/* More than one commit batch waiting: a commit leaves some staged. */
	c = cache_test_open(path, 0, 0, 0);
	cache_test_put_range(c, 0, n);
	cache_commit(c);
	cache_test_walk(c, 0, &w);
	tap_ok(w.n == n && w.ordered && w.contiguous && w.intact,
	    "20000 messages, one commit of a batch: all, in order");
	cache_close(c);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_walk(c, 0, &w);
	tap_ok(cache_count(c) == n && w.n == n && w.contiguous && w.intact &&
	    w.last_seq == n, "cache_close writes every staged batch");
	max_seq = w.last_seq;
	for (i = 1; i <= max_seq; i++)
		cache_ack(c, i, 0);
	cache_test_flush(c, 3);
	tap_ok(cache_count(c) == 0 && cache_bytes(c) == 0 &&
	    !cache_next(c, 0, &rec), "everything acknowledged: empty");
	cache_close(c);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_put(c, 1, 0);
	cache_test_walk(c, 0, &w);
	if (!tap_ok(w.n == 1 && w.last_seq == max_seq + 1,
	    "an emptied cache numbers on after a reopen"))
		printf("#   new seq %" PRIu64 ", last was %" PRIu64 "\n",
		    w.last_seq, max_seq);
	cache_remove(c);
}

/* Child: put and commit (or not), then "crash". */
struct cache_test_crash {
	const char	*path;
	uint64_t	 committed;	/* put and committed */
	uint64_t	 staged;	/* put after, not committed */
	int		 loop_ms;	/* run the loop instead of committing */
};

/* Child: put, commit, put more, _exit without cache_close. */
static void
cache_test_crash_child(void *arg, int fd)
{
	struct cache_test_crash	*cr = arg;
	struct cache		*c;

	if ((c = cache_test_open(cr->path, 0, 0, 0)) == NULL)
		_exit(2);
	cache_test_put_range(c, 0, cr->committed);
	if (cr->loop_ms > 0)
		cache_test_run(cr->loop_ms);
	else
		cache_commit(c);
	cache_test_put_range(c, cr->committed, cr->committed + cr->staged);
	(void)write(fd, "k", 1);
	_exit(0);
}

/* Child: commit batches forever, telling how many are committed. */
static void
cache_test_kill_child(void *arg, int fd)
{
	struct cache	*c;
	uint64_t	 n = 0;

	if ((c = cache_test_open(arg, 0, 0, 0)) == NULL)
		_exit(2);
	for (;;) {
		cache_test_put_range(c, n, n + 1000);
		cache_commit(c);
		n += 1000;
		if (write(fd, &n, sizeof n) != sizeof n)
			_exit(3);
	}
}

/* Crashes: what was committed survives, what was not is lost. */
static void
cache_test_crash(void)
{
	struct cache_test_crash	 cr;
	struct cache		*c;
	struct cache_test_walk	 w;
	char			 buf[4096], k = 0, path[256];
	FILE			*log;
	uint64_t		 reported = 0, got, n;
	pid_t			 pid;
	int			 fd, rc, saved, reports = 0, i;

	snprintf(path, sizeof path, "%s", cache_test_path("crash.tcb"));
	cr.path = path;
	cr.committed = 5000;
	cr.staged = 0;
	cr.loop_ms = 0;
	pid = cache_test_fork(cache_test_crash_child, &cr, &fd);
	cache_test_read_all(fd, &k, 1);
	close(fd);
	rc = cache_test_wait(pid);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_walk(c, 0, &w);
	if (!tap_ok(rc == 0 && k == 'k' && c != NULL && cache_count(c) ==
	    5000 && w.n == 5000 && w.contiguous && w.intact,
	    "crash after a commit: all 5000 messages are there"))
		printf("#   child %d, count %" PRIu64 ", walked %" PRIu64 "\n",
		    rc, c != NULL ? cache_count(c) : 0, w.n);
	cache_test_put(c, 9999, 0);
	cache_test_walk(c, 5000, &w);
	tap_ok(w.n == 1 && w.last_seq == 5001, "after the crash numbering "
	    "goes on");
	cache_remove(c);

	cr.committed = 1000;
	cr.staged = 500;
	k = 0;
	pid = cache_test_fork(cache_test_crash_child, &cr, &fd);
	cache_test_read_all(fd, &k, 1);
	close(fd);
	rc = cache_test_wait(pid);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_walk(c, 0, &w);
	if (!tap_ok(rc == 0 && k == 'k' && cache_count(c) == 1000 &&
	    w.n == 1000 && w.last == 999 && w.contiguous,
	    "crash with 500 uncommitted: the 1000 committed are there, the "
	    "500 lost (the documented window)"))
		printf("#   count %" PRIu64 "\n", cache_count(c));
	cache_remove(c);

	cr.committed = 300;
	cr.staged = 0;
	cr.loop_ms = 400;
	k = 0;
	pid = cache_test_fork(cache_test_crash_child, &cr, &fd);
	cache_test_read_all(fd, &k, 1);
	close(fd);
	rc = cache_test_wait(pid);
	c = cache_test_open(path, 0, 0, 0);
	if (!tap_ok(rc == 0 && k == 'k' && cache_count(c) == 300,
	    "the commit timer (100 ms) wrote 300 messages before the crash"))
		printf("#   count %" PRIu64 "\n", cache_count(c));
	cache_remove(c);

	/* The other synchronisation modes keep what they committed too. */
	cr.committed = 2000;
	cr.staged = 100;
	cr.loop_ms = 0;
	for (i = 0; i < 2; i++) {
		cache_test_sync = i == 0 ? CACHE_SYNC_COMMIT : CACHE_SYNC_PAGES;
		k = 0;
		pid = cache_test_fork(cache_test_crash_child, &cr, &fd);
		cache_test_read_all(fd, &k, 1);
		close(fd);
		rc = cache_test_wait(pid);
		c = cache_test_open(path, 0, 0, 0);
		cache_test_walk(c, 0, &w);
		if (!tap_ok(rc == 0 && k == 'k' && cache_count(c) == 2000 &&
		    w.n == 2000 && w.contiguous && w.intact, i == 0 ?
		    "cache_sync commit: a crash keeps the 2000 committed" :
		    "cache_sync yes (pages): a crash keeps the 2000 committed"))
			printf("#   count %" PRIu64 "\n", cache_count(c));
		cache_remove(c);
	}
	cache_test_sync = CACHE_SYNC_NONE;

	/* kill -9 while it commits, at a random moment. */
	pid = cache_test_fork(cache_test_kill_child, path, &fd);
	while (reports < 25 && read(fd, &got, sizeof got) == sizeof got) {
		reported = got;
		reports++;
	}
	usleep(getpid() % 7919);
	kill(pid, SIGKILL);
	while (read(fd, &got, sizeof got) == sizeof got)
		reported = got;
	close(fd);
	rc = cache_test_wait(pid);
	saved = cache_test_capture(&log);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_captured(saved, log, buf, sizeof buf);
	n = c != NULL ? cache_count(c) : 0;
	cache_test_walk(c, 0, &w);
	if (!tap_ok(rc == 1000 + SIGKILL && c != NULL && n >= reported &&
	    n <= reported + 1000 && w.n == n && w.first == 0 &&
	    w.contiguous && w.intact, "kill -9 during commits: every "
	    "reported commit is there, whole and in order"))
		printf("#   child %d, reported %" PRIu64 ", count %" PRIu64
		    ", walked %" PRIu64 "\n", rc, reported, n, w.n);
	else
		printf("#   killed after %" PRIu64 " committed; %" PRIu64
		    " found\n", reported, n);
	if (!tap_ok(strstr(buf, "damaged") == NULL, "the killed file "
	    "opens without salvage"))
		cache_test_diag("  log: ", buf);
	cache_remove(c);
}

/* TTL: old messages are skipped, counted, and gone. */
static void
cache_test_ttl(void)
{
	const char		*path = cache_test_path("ttl.tcb");
	struct cache		*c;
	struct cache_test_walk	 w;
	int64_t			 now = util_wall_us();
	int64_t			 old = now - 3600 * 1000000LL;
	uint64_t		 i;

	c = cache_test_open(path, 0, 60, 0);
	for (i = 0; i < 10; i++)
		cache_test_put(c, i, i % 2 ? now : old);
	cache_commit(c);
	for (i = 10; i < 16; i++)
		cache_test_put(c, i, i % 2 ? now + (int64_t)i : old);
	tap_is_int(cache_oldest_us(c), now, "cache_oldest_us skips to the "
	    "oldest live message");
	cache_test_walk(c, 0, &w);
	tap_ok(w.n == 8 && w.first == 1 && w.last == 15 && w.intact,
	    "cache_next returns only the 8 live messages");
	tap_is_int(cache_drops(c, CACHE_DROP_TTL), 8, "8 expired messages "
	    "(committed and staged) counted as ttl");
	tap_ok(cache_count(c) == 8 && cache_bytes(c) == 8 * CACHE_TEST_COST,
	    "count and bytes without them");
	cache_close(c);
	c = cache_test_open(path, 0, 60, 0);
	cache_test_walk(c, 0, &w);
	tap_ok(cache_count(c) == 8 && w.n == 8 && cache_drops(c,
	    CACHE_DROP_TTL) == 0, "after a reopen the expired ones are gone");
	cache_remove(c);

	/* The sweep expires from the head without anyone reading. */
	c = cache_test_open(path, 0, 60, 0);
	for (i = 0; i < 3; i++)
		cache_test_put(c, i, old);
	cache_commit(c);
	cache_test_put(c, 3, old);
	cache_test_put(c, 4, util_wall_us() + 60 * 1000000LL);
	cache_test_run(1300);
	tap_ok(cache_drops(c, CACHE_DROP_TTL) == 4 && cache_count(c) == 1,
	    "the 1 s sweep drops 4 expired messages by itself");
	cache_remove(c);
}

/* The size cap, drop oldest: the file stays within the cap. */
static void
cache_test_cap_oldest(void)
{
	const char		*path = cache_test_path("cap.tcb");
	struct cache		*c;
	struct cache_test_walk	 w;
	uint64_t		 i, n, du, max_du = 0, refused = 0, every = 250;
	uint64_t		 cap = CACHE_TEST_MIB, slack = cap + cap / 10;
	uint64_t		 over = 0, du_mismatch = 0;
	double			 t0, t;
	int			 last_rc = -1;

	n = 20ULL * CACHE_TEST_MIB / CACHE_TEST_PLEN;
	c = cache_test_open(path, cap, 0, 0);
	t0 = cache_test_now();
	for (i = 0; i < n; i++) {
		if ((last_rc = cache_test_put(c, i, 0)) != 0)
			refused++;
		if ((i + 1) % every == 0 || i + 1 == n) {
			/* As the loop would: commit again while some wait. */
			cache_test_flush(c, 16);
			du = cache_test_du(path);
			if (du > max_du)
				max_du = du;
			if (du > slack)
				over++;
			if (cache_disk_bytes(c) != du)
				du_mismatch++;
		}
	}
	t = cache_test_now() - t0;
	printf("# cap 1 MiB, drop oldest: %" PRIu64 " messages of %d bytes, "
	    "commit every %" PRIu64 ": max on disk %" PRIu64 " bytes "
	    "(%.3f MiB), %.0f messages/s\n", n, CACHE_TEST_PLEN, every,
	    max_du, max_du / (double)CACHE_TEST_MIB, n / t);
	if (!tap_ok(max_du <= slack, "20 MiB through a 1 MiB cache: the "
	    "file stays within 1.1 MiB after every commit"))
		printf("#   %" PRIu64 " commits over\n", over);
	tap_is_int(du_mismatch, 0, "cache_disk_bytes is what du counts");
	cache_test_walk(c, 0, &w);
	tap_ok(w.n > 0 && w.last == n - 1 && last_rc == 0,
	    "the newest message is kept");
	tap_ok(w.n == cache_count(c) && w.first > 0 && w.contiguous &&
	    w.intact, "the oldest went, from the head, none in between");
	if (!tap_ok(cache_count(c) * CACHE_TEST_COST >= cap / 4,
	    "the cache still holds over a quarter of the cap"))
		printf("#   %" PRIu64 " messages (%" PRIu64 " bytes) kept, %"
		    PRIu64 " refused\n", cache_count(c), cache_bytes(c),
		    refused);
	if (!tap_ok(cache_drops(c, CACHE_DROP_FULL_OLDEST) == n -
	    cache_count(c) && cache_drops(c, CACHE_DROP_FULL_NEWEST) == 0 &&
	    cache_drops(c, CACHE_DROP_DISK_ERROR) == 0 &&
	    cache_drops(c, CACHE_DROP_TTL) == 0, "every message not kept is "
	    "counted full-oldest, none as anything else"))
		printf("#   full-oldest %" PRIu64 ", want %" PRIu64 "\n",
		    cache_drops(c, CACHE_DROP_FULL_OLDEST), n - cache_count(c));
	tap_is_int(cache_bytes(c), cache_count(c) * CACHE_TEST_COST,
	    "cache_bytes is count times the cost of a message");
	i = cache_count(c);
	cache_close(c);
	c = cache_test_open(path, cap, 0, 0);
	if (!tap_ok(cache_count(c) == i && cache_bytes(c) == i *
	    CACHE_TEST_COST, "the same count and bytes after a reopen"))
		printf("#   count %" PRIu64 ", bytes %" PRIu64 " (want %"
		    PRIu64 ", %" PRIu64 ")\n", cache_count(c), cache_bytes(c),
		    i, i * CACHE_TEST_COST);

	/* Acknowledge everything: an empty cache gives its space back. */
	cache_test_walk(c, 0, &w);
	for (i = 1; i <= w.last_seq; i++)
		cache_ack(c, i, CACHE_TEST_VLEN);
	cache_test_flush(c, 2);
	du = cache_test_du(path);
	tap_ok(cache_count(c) == 0 && cache_bytes(c) == 0,
	    "everything acknowledged: count and bytes 0");
	refused = cache_test_put_range(c, n, n + 1000);
	cache_commit(c);
	if (!tap_ok(cache_count(c) == 1000 && cache_drops(c,
	    CACHE_DROP_FULL_OLDEST) == 0, "an emptied cache takes 1000 "
	    "messages again without dropping"))
		printf("#   %" PRIu64 " kept, %" PRIu64 " refused, %" PRIu64
		    " full-oldest\n", cache_count(c), refused, cache_drops(c,
		    CACHE_DROP_FULL_OLDEST));
	cache_remove(c);
}

/*
 * Messages in flight (read, not yet acknowledged) are evicted by the cap
 * and the eviction committed; then the broker acknowledges them.
 */
static void
cache_test_inflight(void)
{
	const char		*path = cache_test_path("inflight.tcb");
	struct cache		*c;
	struct cache_rec	 rec;
	struct cache_test_walk	 w;
	uint64_t		 seqs[100], i, n = 0;

	c = cache_test_open(path, CACHE_TEST_MIB, 0, 0);
	cache_test_put_range(c, 0, 4000);
	cache_test_flush(c, 2);
	memset(&rec, 0, sizeof rec);
	while (n < 100 && cache_next(c, n > 0 ? seqs[n - 1] : 0, &rec)) {
		seqs[n++] = rec.seq;
		cache_rec_clear(&rec);
	}
	cache_test_put_range(c, 4000, 8000);
	cache_test_flush(c, 2);
	cache_test_walk(c, 0, &w);
	tap_ok(n == 100 && w.first > 100 && w.last == 7999,
	    "100 messages in flight were evicted by newer ones");
	for (i = 0; i < n; i++)
		cache_ack(c, seqs[i], CACHE_TEST_VLEN);
	cache_test_flush(c, 2);
	if (!tap_ok(cache_count(c) == w.n && cache_bytes(c) ==
	    w.n * CACHE_TEST_COST, "their late acknowledgements (with "
	    "their sizes) leave count and bytes right"))
		printf("#   count %" PRIu64 " (want %" PRIu64 "), bytes %"
		    PRIu64 " (want %" PRIu64 ")\n", cache_count(c), w.n,
		    cache_bytes(c), w.n * CACHE_TEST_COST);
	cache_remove(c);
}

/* The size cap, drop newest: the oldest stay, the newest are refused. */
static void
cache_test_cap_newest(void)
{
	const char		*path = cache_test_path("newest.tcb");
	struct cache		*c;
	struct cache_test_walk	 w;
	uint64_t		 i, first_refused = 0, refused = 0, late = 0;
	uint64_t		 du, max_du = 0, n = 20000;
	uint64_t		 cap = CACHE_TEST_MIB;

	c = cache_test_open(path, cap, 0, 1);
	for (i = 0; i < n; i++) {
		if (cache_test_put(c, i, 0) != 0) {
			if (refused++ == 0)
				first_refused = i;
		} else if (refused != 0)
			late++;
		if ((i + 1) % 1000 == 0) {
			cache_test_flush(c, 16);
			if ((du = cache_test_du(path)) > max_du)
				max_du = du;
		}
	}
	printf("# cap 1 MiB, drop newest: %" PRIu64 " kept, %" PRIu64
	    " refused, max on disk %" PRIu64 " bytes\n", n - refused, refused,
	    max_du);
	tap_ok(refused > 0 && late == 0, "when full cache_put refuses (-1) "
	    "every new message");
	tap_is_int(cache_drops(c, CACHE_DROP_FULL_NEWEST), refused,
	    "each refusal is counted full-newest");
	tap_is_int(cache_drops(c, CACHE_DROP_FULL_OLDEST), 0,
	    "nothing is evicted");
	cache_test_walk(c, 0, &w);
	tap_ok(w.n == first_refused && w.first == 0 && w.contiguous &&
	    cache_count(c) == w.n, "the oldest messages stay, 0 up to the "
	    "first refused");
	tap_ok(max_du <= cap + cap / 10, "the file stays within 1.1 MiB");
	tap_ok(cache_bytes(c) <= cap, "the live bytes are within the cap");
	for (i = 1; i <= w.last_seq / 2; i++)
		cache_ack(c, i, 0);
	cache_commit(c);
	tap_is_int(cache_test_put(c, n, 0), 0, "after acknowledging half, "
	    "a new message is taken");
	cache_remove(c);
}

/* cache_set: a lower cap evicts at once, a higher one takes more. */
static void
cache_test_set(void)
{
	const char		*path = cache_test_path("set.tcb");
	struct cache		*c;
	struct cache_cfg	 cfg;
	struct cache_test_walk	 w;
	uint64_t		 i, refused = 0, drops, count;

	c = cache_test_open(path, 0, 0, 0);
	cache_test_put_range(c, 0, 10000);
	cache_test_flush(c, 3);
	memset(&cfg, 0, sizeof cfg);
	cfg.cap_bytes = CACHE_TEST_MIB;
	cache_set(c, &cfg);
	cache_commit(c);
	cache_test_walk(c, 0, &w);
	tap_ok(cache_bytes(c) <= CACHE_TEST_MIB && w.last == 9999 &&
	    w.n == cache_count(c) && cache_drops(c, CACHE_DROP_FULL_OLDEST) ==
	    10000 - cache_count(c), "a lower cap evicts the oldest at once");
	for (i = 0; i < 10; i++) {
		refused = cache_test_put_range(c, 10000 + i * 500,
		    10000 + (i + 1) * 500);
		cache_commit(c);
	}
	if (!tap_ok(refused == 0 && cache_count(c) * CACHE_TEST_COST >=
	    CACHE_TEST_MIB / 4, "with the file over the new cap: 10 commits "
	    "later it still takes messages and holds over a quarter of the "
	    "cap"))
		printf("#   last 500: %" PRIu64 " refused; %" PRIu64 " kept, %"
		    PRIu64 " bytes on disk\n", refused, cache_count(c),
		    cache_test_du(path));
	cfg.cap_bytes = 64 * CACHE_TEST_MIB;
	cache_set(c, &cfg);
	drops = cache_drops(c, CACHE_DROP_FULL_OLDEST);
	count = cache_count(c);
	refused = cache_test_put_range(c, 20000, 30000);
	tap_ok(refused == 0 && cache_drops(c, CACHE_DROP_FULL_OLDEST) ==
	    drops && cache_count(c) == count + 10000,
	    "a higher cap takes 10000 more without dropping");
	cache_remove(c);
}

/* An emptied cache shrinks its file. */
static void
cache_test_shrink(void)
{
	const char		*path = cache_test_path("shrink.tcb");
	struct cache		*c;
	uint64_t		 i, full, empty, n = 15000;

	c = cache_test_open(path, 0, 0, 0);
	cache_test_put_range(c, 0, n);
	cache_test_flush(c, 3);
	full = cache_test_du(path);
	for (i = 1; i <= n; i++)
		cache_ack(c, i, CACHE_TEST_VLEN);
	cache_commit(c);
	empty = cache_test_du(path);
	printf("# %" PRIu64 " messages: %" PRIu64 " bytes on disk; all "
	    "acknowledged: %" PRIu64 "\n", n, full, empty);
	tap_ok(full > CACHE_TEST_MIB && empty < CACHE_TEST_MIB,
	    "an emptied cache shrinks below 1 MiB after the commit");
	tap_is_int(cache_disk_bytes(c), empty, "cache_disk_bytes follows");
	cache_remove(c);
}

/*
 * A file much larger than what it holds is rewritten compactly; the pages
 * it writes carry their sums like any other (read back, and after a
 * reopen).
 */
static void
cache_test_compact(void)
{
	const char		*path = cache_test_path("compact.tcb");
	struct cache		*c;
	struct cache_cfg	 cfg;
	struct cache_test_walk	 w;
	uint64_t		 i, n = 8000, keep = 50, big, small;

	c = cache_test_open(path, 2 * CACHE_TEST_MIB, 0, 0);
	cache_test_put_range(c, 0, n);
	cache_test_flush(c, 1000);
	big = cache_test_du(path);
	memset(&cfg, 0, sizeof cfg);
	cfg.cap_bytes = CACHE_TEST_MIB;
	cache_set(c, &cfg);
	for (i = 1; i <= n - keep; i++)
		cache_ack(c, i, CACHE_TEST_VLEN);
	cache_test_flush(c, 1000);
	small = cache_test_du(path);
	printf("# %" PRIu64 " bytes on disk; %" PRIu64 " messages left, cap "
	    "halved: %" PRIu64 " bytes\n", big, cache_count(c), small);
	tap_ok(big > CACHE_TEST_MIB && small < CACHE_TEST_MIB / 4,
	    "a file over 90% of the cap holding under a third of it is "
	    "compacted at the commit");
	cache_test_walk(c, 0, &w);
	tap_ok(w.n == keep && w.first == n - keep && w.contiguous &&
	    w.intact, "every message left reads back whole, in order");
	cache_close(c);
	c = cache_test_open(path, CACHE_TEST_MIB, 0, 0);
	cache_test_walk(c, 0, &w);
	tap_ok(c != NULL && cache_count(c) == keep && w.n == keep &&
	    w.first == n - keep && w.contiguous && w.intact,
	    "and after a reopen");
	cache_remove(c);
}

/* What a child saw of a damaged file. */
struct cache_test_dmg {
	int		 done;
	int		 opened;
	uint64_t	 count;
	uint64_t	 count_walked;	/* after the walk */
	uint64_t	 bytes;
	uint64_t	 kept;		/* as logged; UINT64_MAX: no line */
	struct cache_test_walk w;
	uint64_t	 new_seq;	/* of a message put after */
	uint64_t	 new_found;	/* of 10 put after, found on reopen */
	uint64_t	 count_reopen;
	int		 left;		/* a .damaged file is left */
	char		 log[512];
};

/*
 * Child: open a damaged file, read it all, write to it, reopen.  Tokyo
 * Cabinet leaks a few KB on every damaged page it reads (tcbdbcurjump,
 * tcbdbcurnext); the child _exit()s, so LeakSanitizer does not run on it.
 */
static void
cache_test_damaged_child(void *arg, int fd)
{
	struct cache_test_dmg	 r;
	struct cache_test_walk	 w;
	struct cache		*c;
	const char		*path = arg, *p;
	char			 buf[8192], dpath[300];
	FILE			*log;
	int			 saved;

	memset(&r, 0, sizeof r);
	saved = cache_test_capture(&log);
	c = cache_test_open(path, 0, 0, 0);
	r.opened = c != NULL;
	if (c != NULL) {
		r.count = cache_count(c);
		r.bytes = cache_bytes(c);
		cache_test_walk(c, 0, &r.w);
		r.count_walked = cache_count(c);
		cache_test_put_range(c, 1000000, 1000010);
		cache_test_walk(c, r.w.last_seq, &w);
		r.new_seq = w.n > 0 ? w.last_seq - w.n + 1 : 0;
		cache_test_flush(c, 2);
		cache_close(c);
	}
	c = cache_test_open(path, 0, 0, 0);
	if (c != NULL) {
		r.count_reopen = cache_count(c);
		cache_test_walk(c, r.w.last_seq, &w);
		if (w.intact && w.last == 1000009)
			r.new_found = w.n;
		cache_close(c);
	}
	cache_test_captured(saved, log, buf, sizeof buf);
	r.kept = UINT64_MAX;
	if ((p = strstr(buf, " kept ")) != NULL)
		r.kept = strtoull(p + 6, NULL, 10);
	snprintf(r.log, sizeof r.log, "%.*s", (int)sizeof r.log - 1, buf);
	snprintf(dpath, sizeof dpath, "%s.damaged", path);
	r.left = access(dpath, F_OK) == 0;
	r.done = 1;
	(void)write(fd, &r, sizeof r);
	_exit(0);
}

/* Write n messages, overwrite len bytes at off (negative: from the end). */
static int
cache_test_damage(const char *path, uint64_t n, off_t off, size_t len,
    struct cache_test_dmg *r)
{
	struct cache	*c;
	struct stat	 st;
	unsigned char	*junk;
	size_t		 i;
	pid_t		 pid;
	int		 fd, good;

	memset(r, 0, sizeof *r);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_put_range(c, 0, n);
	cache_close(c);
	if (stat(path, &st) == -1)
		return (-1);
	if (off < 0)
		off += st.st_size;
	junk = malloc(len);
	for (i = 0; i < len; i++)
		junk[i] = (unsigned char)(i * 131 + 17);
	good = (fd = open(path, O_WRONLY)) != -1 && off >= 256 &&
	    pwrite(fd, junk, len, off) == (ssize_t)len;
	if (fd != -1)
		close(fd);
	free(junk);
	printf("# %lld-byte file of %" PRIu64 " messages, %zu bytes "
	    "overwritten at %lld\n", (long long)st.st_size, n, len,
	    (long long)off);
	if (!good)
		return (-1);
	pid = cache_test_fork(cache_test_damaged_child, (void *)path, &fd);
	cache_test_read_all(fd, r, sizeof *r);
	close(fd);
	return (cache_test_wait(pid));
}

/* A damaged file, a garbage file. */
static void
cache_test_damaged(void)
{
	const char		*path = cache_test_path("dmg.tcb");
	struct cache		*c;
	struct cache_test_dmg	 r;
	char			 buf[8192], name[80];
	unsigned char		 junk[65536];
	FILE			*log;
	uint64_t		 n = 20000;
	size_t			 i;
	int			 rc, fd, saved;
	static const struct {
		unsigned int	at;		/* eighths of the file */
		size_t		len;
	} holes[] = { { 4, 65536 }, { 2, 65536 }, { 6, 300 }, { 3, 16 } };

	/* The tail: Tokyo Cabinet notices at open, cache.c salvages. */
	rc = cache_test_damage(path, n, -65536, 65536, &r);
	cache_test_diag("log: ", r.log);
	tap_ok(rc == 0 && r.done && r.opened, "a file with a damaged tail "
	    "opens");
	/*
	 * Pages the damage spared are kept even past a damaged one (which
	 * may hold the first messages: the first page, with the bookkeeping
	 * record, is rewritten at the end of the file at every commit).
	 */
	if (!tap_ok(r.count > 0 && r.count < n && r.w.n == r.count &&
	    r.w.ordered && r.w.intact, "it keeps the messages of the "
	    "pages the damage spared, all of them readable, whole, in order"))
		printf("#   count %" PRIu64 ", walked %" PRIu64 " (first %"
		    PRIu64 ", intact %d, ordered %d)\n", r.count, r.w.n,
		    r.w.first, r.w.intact, r.w.ordered);
	if (!tap_ok(r.kept == r.count, "the log says how many messages were "
	    "kept"))
		printf("#   the log says %" PRIu64 ", cache_count %" PRIu64
		    "\n", r.kept, r.count);
	if (!tap_is_int(r.bytes, r.count * CACHE_TEST_COST, "cache_bytes "
	    "counts only what was kept"))
		printf("#   (%" PRIu64 " bytes were put)\n",
		    n * CACHE_TEST_COST);
	tap_ok(r.new_seq > n, "numbering goes on after the salvage");
	tap_ok(r.new_found == 10 && r.count_reopen == r.count + 10 &&
	    !r.left, "it takes new messages; they are there after a reopen; "
	    "no .damaged file is left");
	cache_test_unlink(path);

	/*
	 * The middle: Tokyo Cabinet opens it; the damage shows on reading
	 * (a page's sum fails).  Holes of a page and of a few bytes, in
	 * several places, so that some fall inside pages, past their
	 * headers.
	 */
	for (i = 0; i < sizeof holes / sizeof holes[0]; i++) {
		rc = cache_test_damage(path, n, n * CACHE_TEST_COST *
		    holes[i].at / 8, holes[i].len, &r);
		cache_test_diag("log: ", r.log);
		snprintf(name, sizeof name, "a file damaged in the middle "
		    "opens (%zu bytes at %u/8 of it)", holes[i].len,
		    holes[i].at);
		tap_ok(rc == 0 && r.done && r.opened && r.count > 0, name);
		if (!tap_ok(r.w.intact && ((r.w.n == r.count &&
		    r.w.contiguous) || (r.kept != UINT64_MAX && r.w.n ==
		    r.kept && r.count_walked == r.kept)), "every message it "
		    "counts can be read, or the damage met on reading was "
		    "salvaged and what it kept is what it counts"))
			printf("#   count %" PRIu64 " (%" PRIu64 " after the "
			    "walk), walked %" PRIu64 " (%" PRIu64 "..%" PRIu64
			    ")\n", r.count, r.count_walked, r.w.n, r.w.first,
			    r.w.last);
		if (!tap_ok(r.new_found == 10, "after meeting the damage it "
		    "still commits new messages"))
			printf("#   %" PRIu64 " of 10 found after a reopen, "
			    "count %" PRIu64 "\n", r.new_found,
			    r.count_reopen);
		cache_test_unlink(path);
	}

	/* Pure garbage. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 131 + 17);
	for (i = 0; i < 16; i++)
		(void)write(fd, junk, sizeof junk);
	close(fd);
	saved = cache_test_capture(&log);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_captured(saved, log, buf, sizeof buf);
	tap_ok(c != NULL && cache_count(c) == 0 && cache_bytes(c) == 0,
	    "a file of garbage opens as an empty cache");
	if (!tap_ok(strstr(buf, "damaged") != NULL, "and the log says it "
	    "was damaged"))
		cache_test_diag("  log: ", buf);
	cache_test_put_range(c, 0, 10);
	cache_commit(c);
	cache_close(c);
	c = cache_test_open(path, 0, 0, 0);
	tap_is_int(cache_count(c), 10, "and it works as a cache after");
	cache_remove(c);
}

/* What the child that holds a cache is given. */
struct cache_test_hold {
	const char	*path;
	int		 go;		/* EOF here: close and exit */
	int		 go_w;		/* its other end, closed at once */
};

/* Child: open a cache, put 10, say so, hold it until told. */
static void
cache_test_hold_child(void *arg, int fd)
{
	struct cache_test_hold	*h = arg;
	struct cache		*c;
	char			 x;

	close(h->go_w);
	if ((c = cache_test_open(h->path, 0, 0, 0)) == NULL)
		_exit(2);
	cache_test_put_range(c, 0, 10);
	cache_commit(c);
	(void)write(fd, "r", 1);
	while (read(h->go, &x, 1) == 1)
		;
	cache_close(c);
	_exit(0);
}

/* A file in use is refused with a cause naming it. */
static void
cache_test_lock(void)
{
	struct cache_test_hold	 h;
	struct cache_cfg	 cfg;
	struct cache		*c, *c2;
	char			*cause = NULL, r = 0, path[256], dpath[300];
	pid_t			 pid;
	int			 fd, go[2];

	snprintf(path, sizeof path, "%s", cache_test_path("lock.tcb"));
	snprintf(dpath, sizeof dpath, "%s.damaged", path);
	memset(&cfg, 0, sizeof cfg);
	if (pipe(go) == -1)
		go[0] = go[1] = -1;
	h.path = path;
	h.go = go[0];
	h.go_w = go[1];
	pid = cache_test_fork(cache_test_hold_child, &h, &fd);
	close(go[0]);
	cache_test_read_all(fd, &r, 1);
	close(fd);
	c = cache_open(cache_test_base, path, "test", 0, 100, &cfg, &cause);
	if (!tap_ok(r == 'r' && c == NULL && cause != NULL &&
	    strstr(cause, path) != NULL, "a cache another process holds is "
	    "refused; the cause names the file"))
		printf("#   open %s, cause %s\n", c != NULL ? "succeeded" :
		    "failed", cause != NULL ? cause : "(none)");
	else
		printf("#   cause: %s\n", cause);
	free(cause);
	cause = NULL;
	cache_close(c);
	tap_ok(access(path, F_OK) == 0 && access(dpath, F_OK) == -1,
	    "the refused open leaves the file where it was");
	close(go[1]);
	cache_test_wait(pid);

	c = cache_test_open(path, 0, 0, 0);
	tap_ok(c != NULL && cache_count(c) == 10, "once the other process "
	    "has closed it, it opens with its 10 messages");

	memset(&cfg, 0, sizeof cfg);
	c2 = cache_open(cache_test_base, path, "test2", 0, 100, &cfg, &cause);
	if (!tap_ok(c2 == NULL && cause != NULL && strstr(cause, path) !=
	    NULL, "opening it a second time in the same process fails, "
	    "naming the file"))
		printf("#   second open %s, cause %s\n", c2 != NULL ?
		    "succeeded" : "failed", cause != NULL ? cause : "(none)");
	else
		printf("#   cause: %s\n", cause);
	free(cause);
	if (c2 != NULL)
		cache_close(c2);
	snprintf(dpath, sizeof dpath, "%s.damaged", path);
	if (!tap_ok(access(path, F_OK) == 0 && access(dpath, F_OK) == -1,
	    "the refused open leaves the file in use where it was"))
		printf("#   %s %s, %s %s\n", path, access(path, F_OK) == 0 ?
		    "exists" : "is gone", dpath, access(dpath, F_OK) == 0 ?
		    "exists" : "does not exist");
	cache_test_put_range(c, 10, 20);
	cache_close(c);
	c = cache_test_open(path, 0, 0, 0);
	if (!tap_ok(c != NULL && cache_count(c) == 20, "the first cache "
	    "kept its file: once closed it opens with all 20 messages"))
		printf("#   count %" PRIu64 "\n", c != NULL ? cache_count(c) :
		    0);
	cache_remove(c);
	cache_test_unlink(path);
}

/* What a child on a tmpfs is given. */
struct cache_test_disk_arg {
	char	dir[256];
	char	log[256];
	int	close_only;	/* remount, then close without a commit */
};

/* A skipped test point. */
static void
cache_test_skip(const char *name, const char *why)
{
	tap_n++;
	printf("ok %d - %s # SKIP %s\n", tap_n, name, why);
}

/* Read the child's log: failures, recovery, the first reason. */
static void
cache_test_disk_log(struct cache_test_disk *d, const char *logpath)
{
	static char	 buf[65536];
	FILE		*f;
	size_t		 n;
	const char	*p, *e;

	fflush(stderr);
	if ((f = fopen(logpath, "r")) == NULL)
		return;
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	/* "cache test: <what>: <why>; messages are kept ... and retried" */
	d->fail_logs = cache_test_occurs(buf, " and retried");
	d->again_logged = strstr(buf, "writing again") != NULL;
	if (d->why[0] == '\0' && (e = strstr(buf, " and retried")) != NULL) {
		for (p = e; p > buf && p[-1] != '\n'; p--)
			;
		if (strstr(p, "cache test: ") != NULL)
			p = strstr(p, "cache test: ") + 12;
		snprintf(d->why, sizeof d->why, "%.*s", (int)(e - p), p);
	}
}

/* Put 1000, commit; 1 once a failing commit has been logged. */
static int
cache_test_disk_round(struct cache *c, struct cache_test_disk *d,
    const char *logpath)
{
	d->refused += cache_test_put_range(c, d->puts, d->puts + 1000);
	d->puts += 1000;
	cache_commit(c);
	cache_test_disk_log(d, logpath);
	return (d->fail_logs != 0);
}

/* Child: fill a small tmpfs, overfill memory, give space, recover. */
static void
cache_test_disk_child(void *arg, int fd)
{
	struct cache_test_disk_arg	*a = arg;
	struct cache_test_disk		 d;
	struct cache_test_walk		 w;
	struct cache			*c;
	char				 path[300];
	uint64_t			 t0;
	int				 lfd, i;

	memset(&d, 0, sizeof d);
	if ((lfd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		_exit(2);
	log_setlevel(LOG_LEVEL_INFO);		/* "writing again" */
	dup2(lfd, 2);
	close(lfd);
	snprintf(path, sizeof path, "%s/disk.tcb", a->dir);
	c = cache_test_open(path, 0, 0, 0);
	d.opened = c != NULL;
	d.stage = 1;
	(void)write(fd, &d, sizeof d);
	if (c == NULL)
		_exit(0);
	while (!cache_test_disk_round(c, &d, a->log) && d.puts < 400000)
		;
	t0 = util_now_ms();
	/* The first 1000 were committed: acknowledge 100 while failing. */
	for (i = 1; i <= 100; i++)
		cache_ack(c, i, CACHE_TEST_VLEN);
	d.stage = 2;
	d.count = cache_count(c);
	(void)write(fd, &d, sizeof d);
	if (a->close_only) {
		d.refused += cache_test_put_range(c, d.puts, d.puts + 100);
		d.puts += 100;
		if (mount("tmpfs", a->dir, "tmpfs", MS_REMOUNT,
		    "size=64m") == -1)
			_exit(4);
		d.count = cache_count(c);
		cache_close(c);
		c = cache_test_open(path, 0, 0, 0);
		d.count_reopen = c != NULL ? cache_count(c) : 0;
		d.stage = 5;
		(void)write(fd, &d, sizeof d);
		_exit(0);
	}
	while (cache_drops(c, CACHE_DROP_DISK_ERROR) == 0 && d.puts < 400000)
		cache_test_disk_round(c, &d, a->log);
	d.drops = cache_drops(c, CACHE_DROP_DISK_ERROR);
	d.count = cache_count(c);
	d.bytes = cache_bytes(c);
	d.fail_secs = (util_now_ms() - t0) / 1000;
	cache_test_walk(c, 0, &w);
	d.walked = w.n;
	d.walk_ok = w.ordered && w.intact;
	d.stage = 3;
	(void)write(fd, &d, sizeof d);

	if (mount("tmpfs", a->dir, "tmpfs", MS_REMOUNT, "size=64m") == -1)
		_exit(4);
	d.disk_before = cache_disk_bytes(c);
	for (i = 0; i < 20; i++)
		cache_commit(c);
	d.disk_after = cache_disk_bytes(c);
	d.count_resumed = cache_count(c);
	cache_test_put_range(c, d.puts, d.puts + 1000);
	cache_commit(c);
	cache_test_disk_log(&d, a->log);
	d.stage = 4;
	(void)write(fd, &d, sizeof d);
	cache_close(c);
	c = cache_test_open(path, 0, 0, 0);
	d.count_reopen = c != NULL ? cache_count(c) : 0;
	d.stage = 5;
	(void)write(fd, &d, sizeof d);
	_exit(0);
}

/* Run a tmpfs child; its last report and exit. */
static int
cache_test_disk_run(struct cache_test_disk_arg *a, struct cache_test_disk *d)
{
	struct cache_test_disk	got;
	pid_t			pid;
	int			fd;

	memset(d, 0, sizeof *d);
	if (mount("tmpfs", a->dir, "tmpfs", 0, "size=512k") == -1)
		return (-2);
	pid = cache_test_fork(cache_test_disk_child, a, &fd);
	while (cache_test_read_all(fd, &got, sizeof got) == sizeof got)
		*d = got;
	close(fd);
	return (cache_test_wait(pid));
}

/*
 * Child: walk a damaged file 20 times while there is no room to repair
 * it; write the number of messages read and how often "no room" was
 * logged.
 */
static void
cache_test_noroom_child(void *arg, int fd)
{
	struct cache_test_walk	 w;
	struct cache		*c;
	FILE			*log;
	char			 buf[8192];
	uint64_t		 r[2] = { 0, 0 };
	int			 saved, i;

	saved = cache_test_capture(&log);
	c = cache_test_open(arg, 0, 0, 0);
	for (i = 0; c != NULL && i < 20; i++) {
		cache_test_walk(c, 0, &w);
		r[0] = w.n;
	}
	cache_test_captured(saved, log, buf, sizeof buf);
	r[1] = cache_test_occurs(buf, "no room to repair");
	(void)write(fd, r, sizeof r);
	_exit(c != NULL ? 0 : 3);
}

/*
 * A damaged file on a disk without room for a repaired copy: reading
 * stops at the damage, the repair is tried once (again a minute later),
 * nothing crashes.
 */
static void
cache_test_noroom(void)
{
	char		 dir[256], path[300];
	struct cache	*c;
	uint64_t	 r[2] = { 0, 0 }, n = 20000;
	pid_t		 pid;
	int		 fd, rc, wfd;
	unsigned char	 junk[4096];
	size_t		 i;

	snprintf(dir, sizeof dir, "%s/noroom", cache_test_dir);
	mkdir(dir, 0700);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=8m") == -1) {
		cache_test_skip("no room to repair: no crash, one log line",
		    "cannot mount a tmpfs");
		rmdir(dir);
		return;
	}
	snprintf(path, sizeof path, "%s/nr.tcb", dir);
	c = cache_test_open(path, 0, 0, 0);
	cache_test_put_range(c, 0, n);
	cache_close(c);
	for (i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 131 + 17);
	if ((wfd = open(path, O_WRONLY)) != -1) {
		(void)pwrite(wfd, junk, sizeof junk,
		    (off_t)(n * CACHE_TEST_COST / 2));
		close(wfd);
	}
	pid = cache_test_fork(cache_test_noroom_child, path, &fd);
	cache_test_read_all(fd, r, sizeof r);
	close(fd);
	rc = cache_test_wait(pid);
	if (!tap_ok(rc == 0 && r[0] > 0 && r[0] < n && r[1] == 1,
	    "a damaged file with no room to repair it: 20 reads stop at the "
	    "damage, no crash, \"no room\" logged once"))
		printf("#   child %d, read %" PRIu64 ", logged %" PRIu64 "\n",
		    rc, r[0], r[1]);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

/* A full disk: no crash, drops counted, logged once, recovery. */
static void
cache_test_disk(void)
{
	struct cache_test_disk_arg	a;
	struct cache_test_disk		d;
	char				why[128];
	int				rc;

	memset(&a, 0, sizeof a);
	snprintf(a.dir, sizeof a.dir, "%s/tmpfs", cache_test_dir);
	snprintf(a.log, sizeof a.log, "%s/disk.log", cache_test_dir);
	mkdir(a.dir, 0700);
	rc = cache_test_disk_run(&a, &d);
	if (rc == -2) {
		snprintf(why, sizeof why, "cannot mount a tmpfs: %s",
		    strerror(errno));
		cache_test_skip("full disk: no crash", why);
		cache_test_skip("full disk: logged", why);
		cache_test_skip("full disk: logged once", why);
		cache_test_skip("full disk: drops", why);
		cache_test_skip("full disk: bytes", why);
		cache_test_skip("full disk: readable", why);
		cache_test_skip("full disk: resumes", why);
		cache_test_skip("full disk: reopen", why);
		cache_test_skip("full disk: close writes", why);
		rmdir(a.dir);
		return;
	}
	printf("# 512k tmpfs: reached stage %d; %" PRIu64 " put, %" PRIu64
	    " waiting, %" PRIu64 " dropped; log: %s\n", d.stage, d.puts,
	    d.count, d.drops, d.why);
	if (!tap_ok(rc == 0 && d.opened, "a full disk: the writer does not "
	    "crash"))
		printf("#   child %s %d\n", rc >= 1000 ? "killed by signal" :
		    "exited", rc >= 1000 ? rc - 1000 : rc);
	tap_ok(d.stage >= 2 && d.fail_logs >= 1 && d.why[0] != '\0' &&
	    strchr(d.why, ':') != NULL, "a failing commit is logged with "
	    "the reason");
	tap_ok(d.stage >= 3 && d.fail_logs == 1 + d.fail_secs / 60,
	    "and logged once (a minute), not "
	    "at every commit");
	if (!tap_ok(d.stage >= 3 && d.drops > 0 && d.count == d.puts -
	    d.refused - d.drops - 100, "over 16 MB in memory: the oldest "
	    "waiting are dropped, counted as disk-error"))
		printf("#   puts %" PRIu64 " refused %" PRIu64 " drops %" PRIu64
		    " acked 100, count %" PRIu64 "\n", d.puts, d.refused,
		    d.drops, d.count);
	if (!tap_ok(d.stage >= 3 && d.bytes == d.count * CACHE_TEST_COST,
	    "while failing (100 acknowledgements pending) cache_bytes "
	    "agrees with cache_count"))
		printf("#   bytes %" PRIu64 ", count %" PRIu64 " x %d\n",
		    d.bytes, d.count, CACHE_TEST_COST);
	if (!tap_ok(d.stage >= 3 && d.walk_ok && d.walked == d.count,
	    "while failing, every waiting message is readable, in order"))
		printf("#   walked %" PRIu64 " of %" PRIu64 "\n", d.walked,
		    d.count);
	if (!tap_ok(d.stage >= 4 && d.disk_after > d.disk_before &&
	    d.again_logged && d.count_resumed == d.count,
	    "with space back, commits resume (logged), nothing more lost"))
		printf("#   on disk %" PRIu64 " before, %" PRIu64 " after; "
		    "\"writing again\" %slogged\n", d.disk_before,
		    d.disk_after, d.again_logged ? "" : "not ");
	if (!tap_ok(d.stage >= 5 && d.count_reopen == d.count + 1000,
	    "and after a reopen every message is there"))
		printf("#   %" PRIu64 " after reopen, want %" PRIu64 "\n",
		    d.count_reopen, d.count + 1000);
	umount2(a.dir, MNT_DETACH);

	a.close_only = 1;
	rc = cache_test_disk_run(&a, &d);
	if (!tap_ok(rc == 0 && d.stage == 5 && d.count_reopen == d.count,
	    "space back, then a clean stop: cache_close writes what waits"))
		printf("#   child %d stage %d: %" PRIu64 " waiting at close, "
		    "%" PRIu64 " after reopen\n", rc, d.stage, d.count,
		    d.count_reopen);
	umount2(a.dir, MNT_DETACH);
	rmdir(a.dir);
	unlink(a.log);
}

/* Rates, as comments only. */
static void
cache_test_rate(void)
{
	const char	*path = cache_test_path("rate.tcb");
	struct cache	*c;
	uint64_t	 i, n = 300000, every;
	double		 t0, t;

	c = cache_test_open(path, 0, 0, 0);
	t0 = cache_test_now();
	for (i = 0; i < n; i++) {
		cache_test_put(c, i, 0);
		if ((i + 1) % CACHE_TEST_BATCH == 0)
			cache_commit(c);
	}
	cache_test_flush(c, 3);
	t = cache_test_now() - t0;
	printf("# put+commit, %d-byte payloads, commit every %d: %.0f "
	    "messages/s\n", CACHE_TEST_PLEN, CACHE_TEST_BATCH, n / t);
	tap_is_int(cache_count(c), n, "rate run: every message kept");
	cache_remove(c);

	/* A full cache, drop oldest: cost against messages per commit. */
	for (every = 100; every <= 900; every *= 3) {
		c = cache_test_open(path, CACHE_TEST_MIB, 0, 0);
		cache_test_put_range(c, 0, 5000);
		cache_test_flush(c, 2);
		t0 = cache_test_now();
		for (i = 0; i < 1800; i++) {
			cache_test_put(c, i, 0);
			if ((i + 1) % every == 0)
				cache_commit(c);
		}
		t = cache_test_now() - t0;
		printf("# full 1 MiB cache, drop oldest, commit every %" PRIu64
		    ": %.0f messages/s\n", every, 1800 / t);
		cache_remove(c);
	}
}

/* Remove what is left in the test directory. */
static void
cache_test_cleanup(void)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[512];

	snprintf(path, sizeof path, "%s/tmpfs", cache_test_dir);
	umount2(path, MNT_DETACH);
	rmdir(path);

	if ((d = opendir(cache_test_dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", cache_test_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(cache_test_dir);
}

/* The test groups, in order; a name on the command line runs one. */
static const struct {
	const char	*name;
	void		(*fn)(void);
} cache_test_groups[] = {
	{ "roundtrip", cache_test_roundtrip },
	{ "order", cache_test_order },
	{ "crash", cache_test_crash },
	{ "ttl", cache_test_ttl },
	{ "cap_oldest", cache_test_cap_oldest },
	{ "inflight", cache_test_inflight },
	{ "cap_newest", cache_test_cap_newest },
	{ "set", cache_test_set },
	{ "shrink", cache_test_shrink },
	{ "compact", cache_test_compact },
	{ "damaged", cache_test_damaged },
	{ "noroom", cache_test_noroom },
	{ "lock", cache_test_lock },
	{ "disk", cache_test_disk },
	{ "rate", cache_test_rate }
};

int
main(int argc, char **argv)
{
	size_t	i;

	log_init(1, LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	snprintf(cache_test_dir, sizeof cache_test_dir,
	    "/tmp/uplinkd-cache-XXXXXX");
	if (mkdtemp(cache_test_dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return (1);
	}
	if ((cache_test_base = event_base_new()) == NULL) {
		printf("Bail out! event_base_new\n");
		return (1);
	}
	for (i = 0; i < sizeof cache_test_groups /
	    sizeof cache_test_groups[0]; i++)
		if (argc < 2 || strcmp(argv[1], cache_test_groups[i].name) == 0)
			cache_test_groups[i].fn();
	cache_test_cleanup();
	event_base_free(cache_test_base);
	return (tap_done());
}

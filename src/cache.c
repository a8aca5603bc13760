/* SPDX-License-Identifier: ISC */
/*
 * The store-and-forward cache of one link.
 *
 * Messages are records of a Tokyo Cabinet B+tree file, keyed by a 64-bit
 * sequence number in big-endian order, so the tree's order is the order
 * they were made in.  Key 0 holds the cache's own bookkeeping.
 *
 * Writes are group-committed: new messages and deletions wait in memory
 * and a timer (commit_ms, 100 ms by default) writes them in one
 * transaction, synchronised to disk if asked; a power cut loses at most
 * that window, and Tokyo Cabinet's write-ahead log keeps the file whole.
 * A commit writes a bounded number of records; more wait for the next
 * loop turn, so no turn is long.  A message leaves the cache only when
 * the broker acknowledged it (cache_ack()).
 *
 * The size cap counts everything the cache has on disk.  The file does
 * not shrink when records go (freed pages are reused), so the cache keeps
 * the bytes of live records under a budget that it lowers whenever the
 * file outgrows the cap; an empty cache truncates its file.  When full,
 * the oldest messages go, or the newest are refused; expired messages go
 * too; every drop is counted by reason.  A full or failing disk is logged
 * once, its drops counted, and retried; the rest of the daemon goes on.
 * A damaged file is opened by copying out what can still be read.
 */

#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tcutil.h>
#include <tchdb.h>
#include <tcbdb.h>

#include <event2/event.h>

#include "cache.h"
#include "log.h"
#include "pagesum.h"
#include "util.h"
#include "xmalloc.h"

#define CACHE_HDR		16		/* bytes before the topic */
#define CACHE_OVERHEAD		24		/* per record, key included */
#define CACHE_COMPACT_MAX	(16u << 20)	/* rewritten at most, live */
#define CACHE_COMMIT_BATCH	32768		/* records per transaction */
#define CACHE_STAGE_MAX		(16u << 20)	/* bytes waiting in memory */
#define CACHE_ERR_LOG_MS	60000
/*
 * Leaf pages.  With cache_sync yes, Tokyo Cabinet syncs its log once for
 * every region a transaction overwrites, about twice per leaf page
 * written: large pages make few syncs.  But a transaction's log holds the
 * old contents of the pages it rewrites, so pages stay small next to the
 * cap and to the disk (cache_lsmax).  Tokyo Cabinet keeps at least 64
 * pages in memory (its minimum); where those would take more than 8 MB,
 * the pages are let go after every commit (cache_commit).  No automatic
 * defragmentation: in a queue it would move every page of the backlog
 * towards the head, a page (and a sync) at a time, as the head is sent;
 * new pages reuse the free space instead.
 */
#define CACHE_LMEMB		2048		/* records per leaf, at most */
#define CACHE_LSMIN		(16u << 10)	/* bytes per leaf, at most: */
#define CACHE_LSMAX		(512u << 10)	/* cap / 128 within these */
#define CACHE_OUT		128		/* handed out, remembered */
#define CACHE_DEL_MS		1000		/* deletions alone wait */
#define CACHE_LOG_ROOM		(384u << 10)	/* a commit's log, at least */
#define CACHE_LEAF_MEM		(8u << 20)	/* pages in memory, bytes */
#define CACHE_LEAF_PAGES	64		/* pages in memory, at least */
#define CACHE_META_VERSION	1

struct cache_stage {
	TAILQ_ENTRY(cache_stage) entry;
	uint64_t		 seq;
	char			*val;
	size_t			 vlen;
};
TAILQ_HEAD(cache_stage_list, cache_stage);

struct cache {
	char			*path;
	char			*name;
	TCBDB			*bdb;
	int			 sync;
	unsigned int		 commit_ms;
	struct cache_cfg	 cfg;
	uint32_t		 lsmax;		/* bytes per leaf page */

	uint64_t		 next_seq;
	uint64_t		 db_count;	/* live committed records */
	uint64_t		 db_bytes;
	struct cache_stage_list	 stage;
	uint64_t		 nstage;
	uint64_t		 stage_bytes;
	uint64_t		*dels;		/* committed, to delete */
	size_t			 ndels;
	size_t			 capdels;
	uint64_t		*dhash;		/* seq + 1 of dels; 0 empty */
	size_t			 dcap;		/* power of two */
	uint64_t		 budget;	/* live bytes allowed */
	uint64_t		 evicted;	/* last seq evicted (full) */
	int			 salvaging;
	uint64_t		 repair_failed;	/* ms; 0: not lately */
	uint64_t		 last_optimize;	/* ms */
	/* Records handed out from disk, not acknowledged nor dropped. */
	uint64_t		 out[CACHE_OUT];	/* 0: free */
	uint32_t		 outlen[CACHE_OUT];
	unsigned int		 outpos;
	uint64_t		 disk_bytes;
	/*
	 * Where the last cache_next() left off: the next one steps on
	 * instead of searching the tree, until a write moves the pages.
	 */
	BDBCUR			*rcur;
	uint64_t		 rcur_seq;	/* 0: search again */

	struct event		*commit_ev;
	int			 commit_armed;	/* 2: for deletions only */
	struct event		*sweep_ev;
	uint64_t		 drops[CACHE_NDROPS];
	int			 failing;
	uint64_t		 last_err_log;
	uint64_t		 failed_commits;
};

static const char *cache_drop_names[CACHE_NDROPS] = {
	"ttl", "full-oldest", "full-newest", "disk-error"
};

static void	cache_commit_cb(evutil_socket_t, short, void *);
static void	cache_sweep_cb(evutil_socket_t, short, void *);
static void	cache_schedule(struct cache *, int);
static void	cache_enforce(struct cache *, uint64_t);
static int	cache_is_del(const struct cache *, uint64_t);
static int	cache_damage(int);
static void	cache_budget(struct cache *, uint64_t);
static int	cache_repair(struct cache *);
static void	cache_compact(struct cache *);
static void	cache_reopen(struct cache *);
static void	cache_out_clear(struct cache *);
static int	cache_room(const struct cache *);
static uint64_t	cache_free_bytes(const struct cache *);
static uint64_t	cache_fs_bytes(const struct cache *, int);
static void	cache_rcur_drop(struct cache *);

/* A sequence number as its 8-byte big-endian key. */
static void
cache_key(uint64_t seq, unsigned char k[8])
{
	int	i;

	for (i = 7; i >= 0; i--) {
		k[i] = seq & 0xff;
		seq >>= 8;
	}
}

/* A key back to its sequence number. */
static uint64_t
cache_seq(const void *kbuf, int ksiz)
{
	const unsigned char	*k = kbuf;
	uint64_t		 seq = 0;
	int			 i;

	if (ksiz != 8)
		return (0);
	for (i = 0; i < 8; i++)
		seq = (seq << 8) | k[i];
	return (seq);
}

/* The bytes a record stands for in the budget. */
static uint64_t
cache_cost(size_t vlen)
{
	return (vlen + CACHE_OVERHEAD);
}

/* The Tokyo Cabinet error, as text. */
static const char *
cache_tcerr(const struct cache *c)
{
	return (tcbdberrmsg(tcbdbecode(c->bdb)));
}

/* Bytes on disk of the file and its write-ahead log (as du counts). */
static uint64_t
cache_du(const char *path)
{
	struct stat	 st;
	uint64_t	 n = 0;
	char		*wal;

	if (stat(path, &st) == 0)
		n += (uint64_t)st.st_blocks * 512;
	xasprintf(&wal, "%s.wal", path);
	if (stat(wal, &st) == 0)
		n += (uint64_t)st.st_blocks * 512;
	free(wal);
	return (n);
}

/* Write the bookkeeping record (inside a transaction). */
static int
cache_meta_put(struct cache *c)
{
	unsigned char	k[8], v[24];
	uint64_t	x[3];
	int		i, j;

	cache_rcur_drop(c);
	cache_key(0, k);
	x[0] = CACHE_META_VERSION;
	x[1] = c->db_bytes;
	x[2] = c->next_seq;
	for (i = 0; i < 3; i++)
		for (j = 0; j < 8; j++)
			v[i * 8 + j] = x[i] >> (56 - 8 * j);
	return (tcbdbput(c->bdb, k, 8, v, sizeof v) ? 0 : -1);
}

/* Read the bookkeeping record and the highest key. */
static void
cache_meta_get(struct cache *c)
{
	unsigned char	 k[8];
	const void	*v, *kb;
	int		 vs, ks, i, j;
	uint64_t	 x[3] = { 0, 0, 0 };
	BDBCUR		*cur;

	cache_key(0, k);
	v = tcbdbget3(c->bdb, k, 8, &vs);
	if (v != NULL && vs == 24) {
		for (i = 0; i < 3; i++)
			for (j = 0; j < 8; j++)
				x[i] = (x[i] << 8) | ((const unsigned char *)v)
				    [i * 8 + j];
	}
	c->db_count = tcbdbrnum(c->bdb);
	if (v != NULL)
		c->db_count--;
	c->db_bytes = x[1];
	c->next_seq = x[2] > 0 ? x[2] : 1;
	cur = tcbdbcurnew(c->bdb);
	if (tcbdbcurlast(cur) && (kb = tcbdbcurkey3(cur, &ks)) != NULL &&
	    cache_seq(kb, ks) >= c->next_seq)
		c->next_seq = cache_seq(kb, ks) + 1;
	tcbdbcurdel(cur);
	if (c->db_count == 0)
		c->db_bytes = 0;
}

/* Total (or free) bytes of the cache's file system; UINT64_MAX: unknown. */
static uint64_t
cache_fs_bytes(const struct cache *c, int total)
{
	struct statvfs	 sv;
	char		*dir, *slash;
	uint64_t	 n = UINT64_MAX;

	dir = xstrdup(c->path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if (statvfs(dir, &sv) == 0)
		n = (uint64_t)(total ? sv.f_blocks : sv.f_bavail) *
		    sv.f_frsize;
	free(dir);
	return (n);
}

/*
 * Bytes per leaf page, at most: a 128th of the cap or of the file
 * system, whichever is smaller (a small disk holds small pages).
 */
static uint32_t
cache_lsmax(const struct cache *c)
{
	uint64_t	room = cache_fs_bytes(c, 1), lsmax;

	if (c->cfg.cap_bytes != 0 && c->cfg.cap_bytes < room)
		room = c->cfg.cap_bytes;
	lsmax = room != UINT64_MAX ? room / 128 : CACHE_LSMAX;
	return (lsmax < CACHE_LSMIN ? CACHE_LSMIN : lsmax > CACHE_LSMAX ?
	    CACHE_LSMAX : (uint32_t)lsmax);
}

/* A new Tokyo Cabinet object, tuned for a queue. */
static TCBDB *
cache_bdb_new(uint64_t cap, uint32_t lsmax)
{
	TCBDB		*bdb;
	int64_t		 bnum;

	if ((bdb = tcbdbnew()) == NULL)
		fatalx("tcbdbnew failed");
	/*
	 * The bucket array is a fixed part of the file: about one bucket
	 * per page the cap allows.  A bounded number of cached pages:
	 * memory does not grow with the backlog.
	 */
	bnum = cap / 16384;
	bnum = bnum < 1021 ? 1021 : bnum > 262139 ? 262139 : bnum;
	tcbdbtune(bdb, CACHE_LMEMB, 256, bnum, 8, 10,
	    BDBTLARGE | BDBTEXCODEC);
	/* Every page carries a CRC-32 (pagesum.c); old files have none. */
	tcbdbsetcodecfunc(bdb, pagesum_enc, NULL, pagesum_dec, NULL);
	tcbdbsetcache(bdb, CACHE_LEAF_PAGES, 64);
	tcbdbsetlsmax(bdb, lsmax);
	return (bdb);
}

/* What a salvage copied so far. */
struct cache_salvaged {
	uint64_t	kept;
	uint64_t	bytes;
	uint64_t	last;		/* highest number seen */
	uint64_t	limit;		/* next number to give */
};

/* Copy one record found in a damaged file (unless copied already). */
static void
cache_salvage_keep(struct cache *c, const void *kb, const void *vb, int vs,
    struct cache_salvaged *sv)
{
	uint64_t	seq = cache_seq(kb, 8);

	if (seq != 0 && tcbdbputkeep(c->bdb, kb, 8, vb, vs)) {
		sv->kept++;
		sv->bytes += cache_cost(vs);
	}
	if (seq > sv->last)
		sv->last = seq;
	if (seq >= sv->limit)
		sv->limit = seq + 1;
}

/*
 * Copy the readable records from the cursor on, up to a damaged page;
 * then find the first readable record past it (the keys are consecutive
 * numbers).  1 if one was found and copying can go on.
 */
static int
cache_salvage_run(struct cache *c, BDBCUR *cur, int ok,
    struct cache_salvaged *sv)
{
	const void	*kb, *vb;
	unsigned char	 k[8];
	int		 ks, vs;
	uint64_t	 step;

	while (ok) {
		kb = tcbdbcurkey3(cur, &ks);
		vb = tcbdbcurval3(cur, &vs);
		if (kb == NULL || vb == NULL)
			break;
		if (ks == 8)
			cache_salvage_keep(c, kb, vb, vs, sv);
		ok = tcbdbcurnext(cur);
	}
	for (step = 1; sv->last + step < sv->limit; step *= 2) {
		cache_key(sv->last + step, k);
		if (tcbdbcurjump(cur, k, 8) &&
		    (kb = tcbdbcurkey3(cur, &ks)) != NULL &&
		    cache_seq(kb, ks) > sv->last)
			return (1);
	}
	return (0);
}

/*
 * A number in Tokyo Cabinet's variable-length form: seven bits a byte,
 * least significant first; a byte b of a number that goes on holds
 * 255 - b.  0, or -1 if it runs past end.
 */
static int
cache_vnum(const unsigned char **pp, const unsigned char *end, uint64_t *num)
{
	const unsigned char	*p = *pp;
	uint64_t		 n = 0;
	unsigned int		 shift = 0;

	for (; p < end && shift < 64; p++, shift += 7) {
		if (*p < 0x80) {
			*num = n + ((uint64_t)*p << shift);
			*pp = p + 1;
			return (0);
		}
		n += (uint64_t)(0xff - *p) << shift;
	}
	return (-1);
}

/* Could v be a value this cache stored (cache_put())? */
static int
cache_wellformed(const unsigned char *v, uint64_t vlen)
{
	uint64_t	tlen;

	if (vlen < CACHE_HDR || v[0] != 1 || v[1] > 2 || v[2] > 1)
		return (0);
	tlen = (uint64_t)v[4] << 24 | (uint64_t)v[5] << 16 |
	    (uint64_t)v[6] << 8 | v[7];
	return (tlen <= vlen - CACHE_HDR);
}

/*
 * The records of one leaf page as Tokyo Cabinet stores it: the numbers
 * of the pages before and after, then for each record the sizes of its
 * key and value and how many more values it has, the key, the value and
 * the sizes and bytes of the other values.  A page is taken only if all
 * of it reads as this cache's records in order (nothing in a page says
 * whether it was damaged): the first pass checks, the second copies
 * what was not copied yet.
 */
static void
cache_salvage_leaf(struct cache *c, const unsigned char *page, size_t len,
    struct cache_salvaged *sv)
{
	const unsigned char	*p, *end = page + len, *key, *val;
	uint64_t		 prev, next, ksiz, vsiz, rnum, seq, last;
	int			 pass;

	for (pass = 0; pass < 2; pass++) {
		p = page;
		last = 0;
		if (cache_vnum(&p, end, &prev) != 0 ||
		    cache_vnum(&p, end, &next) != 0)
			return;
		while (p < end) {
			if (cache_vnum(&p, end, &ksiz) != 0 ||
			    cache_vnum(&p, end, &vsiz) != 0 ||
			    cache_vnum(&p, end, &rnum) != 0 || ksiz != 8 ||
			    rnum != 0 || vsiz > (uint64_t)(end - p) - 8 ||
			    vsiz > INT_MAX)
				return;
			key = p;
			val = p + 8;
			p += 8 + vsiz;
			seq = cache_seq(key, 8);
			if (seq <= last || !cache_wellformed(val, vsiz))
				return;
			last = seq;
			if (pass == 1)
				cache_salvage_keep(c, key, val, (int)vsiz, sv);
		}
	}
}

/*
 * Pages the tree no longer reaches (a damaged inner page, a damaged
 * header): read the leaf pages straight from the hash records under the
 * tree (inner pages have keys starting with '#').
 */
static void
cache_salvage_pages(struct cache *c, const char *bad,
    struct cache_salvaged *sv)
{
	TCHDB	*hdb;
	char	*k, *v;
	int	 ks, vs;

	if ((hdb = tchdbnew()) == NULL)
		return;
	/* A page whose sum fails is not read (tchdbget() fails). */
	tchdbsetcodecfunc(hdb, pagesum_enc, NULL, pagesum_dec, NULL);
	if (tchdbopen(hdb, bad, HDBOREADER | HDBONOLCK) &&
	    tchdbiterinit(hdb)) {
		while ((k = tchdbiternext(hdb, &ks)) != NULL) {
			if (ks > 0 && k[0] != '#' &&
			    (v = tchdbget(hdb, k, ks, &vs)) != NULL) {
				cache_salvage_leaf(c, (unsigned char *)v,
				    (size_t)vs, sv);
				free(v);
			}
			free(k);
		}
		tchdbclose(hdb);
	}
	tchdbdel(hdb);
}

/*
 * A damaged file: copy out every record still readable into a new file
 * at the same path; the rest is lost, and the log says how much was kept.
 */
static int
cache_salvage(struct cache *c, int omode, char **cause)
{
	struct cache_salvaged	 sv;
	char			*bad;
	TCBDB			*old;
	BDBCUR			*cur;
	int			 ok;

	cache_rcur_drop(c);
	memset(&sv, 0, sizeof sv);
	sv.limit = c->next_seq;
	xasprintf(&bad, "%s.damaged", c->path);
	if (rename(c->path, bad) == -1) {
		xasprintf(cause, "cache %s: damaged (%s) and cannot be moved "
		    "aside: %s", c->path, cache_tcerr(c), strerror(errno));
		free(bad);
		return (-1);
	}
	tcbdbdel(c->bdb);
	c->bdb = cache_bdb_new(c->cfg.cap_bytes, c->lsmax);
	if (!tcbdbopen(c->bdb, c->path, omode | BDBOCREAT | BDBOTRUNC)) {
		xasprintf(cause, "cache %s: %s", c->path, cache_tcerr(c));
		/* Keep the damaged file: it is all there is. */
		rename(bad, c->path);
		free(bad);
		return (-1);
	}
	tcbdbtranbegin(c->bdb);
	old = cache_bdb_new(0, CACHE_LSMAX);
	if (tcbdbopen(old, bad, BDBOREADER | BDBONOLCK)) {
		cur = tcbdbcurnew(old);
		ok = tcbdbcurfirst(cur);
		while (cache_salvage_run(c, cur, ok, &sv))
			ok = 1;
		tcbdbcurdel(cur);
		tcbdbclose(old);
	}
	tcbdbdel(old);
	cache_salvage_pages(c, bad, &sv);
	c->db_bytes = sv.bytes;
	c->next_seq = sv.limit;
	cache_meta_put(c);
	tcbdbtrancommit(c->bdb);
	unlink(bad);
	free(bad);
	log_warnx("cache %s: the file was damaged; kept %" PRIu64 " messages, "
	    "the rest is lost", c->name, sv.kept);
	return (0);
}

/* Does a Tokyo Cabinet error say the file is damaged? */
static int
cache_damage(int ecode)
{
	switch (ecode) {
	case TCEMETA:
	case TCERHEAD:
	case TCEREAD:
	case TCEMISC:
		return (1);
	}
	return (0);
}

/*
 * Open (creating if needed) the cache at path for link name.  sync: every
 * commit reaches the disk before it returns.  A damaged file is salvaged.
 */
struct cache *
cache_open(struct event_base *base, const char *path, const char *name,
    int sync, unsigned int commit_ms, const struct cache_cfg *cfg,
    char **cause)
{
	struct cache	*c;
	struct timeval	 tv = { 1, 0 };
	int		 omode;

	c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	c->name = xstrdup(name);
	c->sync = sync;
	c->commit_ms = commit_ms > 0 ? commit_ms : 100;
	c->cfg = *cfg;
	c->lsmax = cache_lsmax(c);
	TAILQ_INIT(&c->stage);
	c->bdb = cache_bdb_new(c->cfg.cap_bytes, c->lsmax);
	omode = BDBOWRITER | BDBOCREAT | BDBOLCKNB |
	    (sync == CACHE_SYNC_PAGES ? BDBOTSYNC : 0);
	if (!tcbdbopen(c->bdb, path, omode)) {
		/* Only a damaged file is salvaged; a busy one is refused. */
		if (!cache_damage(tcbdbecode(c->bdb))) {
			xasprintf(cause, "cache %s: %s", path, cache_tcerr(c));
			goto fail;
		}
		if (cache_salvage(c, omode, cause) != 0)
			goto fail;
	}
	cache_meta_get(c);
	if (cache_damage(tcbdbecode(c->bdb))) {
		/* Opened, but its pages do not read back. */
		if (cache_salvage(c, omode, cause) != 0)
			goto fail;
		cache_meta_get(c);
	}
	c->disk_bytes = cache_du(path);
	cache_budget(c, 0);
	c->commit_ev = evtimer_new(base, cache_commit_cb, c);
	c->sweep_ev = event_new(base, -1, EV_PERSIST, cache_sweep_cb, c);
	evtimer_add(c->sweep_ev, &tv);
	if (c->db_count != 0)
		log_info("cache %s: opened with %" PRIu64 " messages "
		    "(%" PRIu64 " bytes) waiting", c->name, c->db_count,
		    c->db_bytes);
	return (c);
fail:
	tcbdbdel(c->bdb);
	free(c->path);
	free(c->name);
	free(c);
	return (NULL);
}

/* New limits (takes effect at once). */
void
cache_set(struct cache *c, const struct cache_cfg *cfg)
{
	uint32_t	lsmax = c->lsmax;

	c->cfg = *cfg;
	/* Pages sized for the old cap: open the file again for the new. */
	if ((c->lsmax = cache_lsmax(c)) != lsmax)
		cache_reopen(c);
	cache_budget(c, 0);
	cache_enforce(c, 0);
}

/* Write what waits, then close. */
void
cache_close(struct cache *c)
{
	int	tries;

	if (c == NULL)
		return;
	/* Write what waits (once more even if the disk failed before). */
	cache_rcur_drop(c);
	for (tries = 0; (c->nstage != 0 || c->ndels != 0) && tries < 1000 &&
	    (tries == 0 || !c->failing); tries++)
		cache_commit(c);
	if (c->nstage != 0)
		log_warnx("cache %s: %" PRIu64 " messages could not be written "
		    "at close", c->name, c->nstage);
	if (!tcbdbclose(c->bdb))
		log_warnx("cache %s: close: %s", c->name, cache_tcerr(c));
	tcbdbdel(c->bdb);
	while (!TAILQ_EMPTY(&c->stage)) {
		struct cache_stage *s = TAILQ_FIRST(&c->stage);
		TAILQ_REMOVE(&c->stage, s, entry);
		free(s->val);
		free(s);
	}
	if (c->commit_ev != NULL)
		event_free(c->commit_ev);
	if (c->sweep_ev != NULL)
		event_free(c->sweep_ev);
	free(c->dels);
	free(c->dhash);
	free(c->path);
	free(c->name);
	free(c);
}

/* Close and delete the file (the link is gone). */
void
cache_remove(struct cache *c)
{
	char	*path, *wal;

	if (c == NULL)
		return;
	path = xstrdup(c->path);
	cache_close(c);
	unlink(path);
	xasprintf(&wal, "%s.wal", path);
	unlink(wal);
	free(wal);
	free(path);
}

/*
 * Arrange a commit: soon (now) or within the commit window.  Deletions
 * alone wait longer (CACHE_DEL_MS): each commit syncs, a replay makes
 * thousands of them a second, and one lost to a crash only sends a
 * message again.
 */
static void
cache_schedule(struct cache *c, int now)
{
	struct timeval	tv;
	unsigned int	ms = c->commit_ms;
	int		dels_only = !now && c->nstage == 0;

	if (dels_only && ms < CACHE_DEL_MS)
		ms = CACHE_DEL_MS;
	if (c->commit_armed && !now && (c->commit_armed == 1 || dels_only))
		return;
	tv.tv_sec = now ? 0 : ms / 1000;
	tv.tv_usec = now ? 0 : (ms % 1000) * 1000;
	evtimer_add(c->commit_ev, &tv);
	c->commit_armed = dels_only ? 2 : 1;
}

static void
cache_commit_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct cache	*c = arg;

	c->commit_armed = 0;
	cache_commit(c);
}

/* The slot of seq in the deletion index. */
static size_t
cache_dslot(const struct cache *c, uint64_t seq)
{
	size_t	slot;

	slot = (seq * 0x9e3779b97f4a7c15ull) >> 20 & (c->dcap - 1);
	while (c->dhash[slot] != 0 && c->dhash[slot] != seq + 1)
		slot = (slot + 1) & (c->dcap - 1);
	return (slot);
}

/* Is seq waiting to be deleted? */
static int
cache_is_del(const struct cache *c, uint64_t seq)
{
	if (c->ndels == 0)
		return (0);
	return (c->dhash[cache_dslot(c, seq)] == seq + 1);
}

/* The first n deletions are committed: forget them. */
static void
cache_dels_done(struct cache *c, size_t n)
{
	size_t	i;

	if (n == 0)
		return;
	memmove(c->dels, c->dels + n, (c->ndels - n) * sizeof *c->dels);
	c->ndels -= n;
	if (c->dhash == NULL)
		return;
	memset(c->dhash, 0, c->dcap * sizeof *c->dhash);
	for (i = 0; i < c->ndels; i++)
		c->dhash[cache_dslot(c, c->dels[i])] = c->dels[i] + 1;
}

/* Delete committed record seq at the next commit. */
static void
cache_del(struct cache *c, uint64_t seq, size_t vlen)
{
	size_t	i;

	for (i = 0; i < CACHE_OUT; i++)
		if (c->out[i] == seq)
			c->out[i] = 0;

	if (c->ndels == c->capdels) {
		c->capdels = c->capdels == 0 ? 256 : c->capdels * 2;
		c->dels = xreallocarray(c->dels, c->capdels, sizeof *c->dels);
	}
	if ((c->ndels + 1) * 2 > c->dcap) {
		/* Grow the index and put back what it had. */
		free(c->dhash);
		c->dcap = c->dcap == 0 ? 1024 : c->dcap * 2;
		c->dhash = xcalloc(c->dcap, sizeof *c->dhash);
		for (i = 0; i < c->ndels; i++)
			c->dhash[cache_dslot(c, c->dels[i])] = c->dels[i] + 1;
	}
	c->dels[c->ndels++] = seq;
	c->dhash[cache_dslot(c, seq)] = seq + 1;
	if (c->db_count > 0)
		c->db_count--;
	if (cache_cost(vlen) < c->db_bytes)
		c->db_bytes -= cache_cost(vlen);
	else
		c->db_bytes = 0;
	cache_schedule(c, 0);
}

/* Drop a message that waits in memory. */
static void
cache_stage_drop(struct cache *c, struct cache_stage *s)
{
	TAILQ_REMOVE(&c->stage, s, entry);
	c->nstage--;
	c->stage_bytes -= cache_cost(s->vlen);
	free(s->val);
	free(s);
}

/* Log a disk problem at most once a minute. */
static void
cache_disk_error(struct cache *c, const char *what, const char *why)
{
	uint64_t	now = util_now_ms();

	if (!c->failing || now - c->last_err_log >= CACHE_ERR_LOG_MS) {
		log_warnx("cache %s: %s: %s; messages are kept in memory up "
		    "to %u MB and retried", c->name, what, why != NULL ? why :
		    cache_tcerr(c), CACHE_STAGE_MAX >> 20);
		c->last_err_log = now;
	}
	c->failing = 1;
}

static int
cache_seq_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/*
 * Delete the first n records of the deletion list (inside a transaction).
 * Acknowledgements come nearly in order, so in order they are mostly runs
 * of neighbours: one search a run, then a step a record.  0, or -1 if the
 * file failed.
 */
static int
cache_out_runs(struct cache *c, size_t n)
{
	BDBCUR		*cur;
	unsigned char	 k[8];
	const void	*kb;
	int		 ks, rv = 0;
	size_t		 i = 0, first;
	uint64_t	 seq;

	if (n == 0)
		return (0);
	qsort(c->dels, n, sizeof *c->dels, cache_seq_cmp);
	cur = tcbdbcurnew(c->bdb);
	while (i < n && rv == 0) {
		cache_key(c->dels[i], k);
		if (!tcbdbcurjump(cur, k, 8)) {
			if (tcbdbecode(c->bdb) != TCENOREC)
				rv = -1;
			break;		/* none at or past it: all gone */
		}
		first = i;
		while (i < n && (kb = tcbdbcurkey3(cur, &ks)) != NULL) {
			if ((seq = cache_seq(kb, ks)) < c->dels[i])
				break;		/* a gap: search again */
			/* Deleted (the cursor steps on), or gone already. */
			if (seq == c->dels[i] && !tcbdbcurout(cur)) {
				rv = -1;
				break;
			}
			i++;
		}
		if (i == first && rv == 0) {
			/* The cursor read nothing where it stood. */
			if (tcbdbecode(c->bdb) != TCENOREC)
				rv = -1;
			break;
		}
	}
	tcbdbcurdel(cur);
	return (rv);
}

/*
 * Does the file hold nothing but the bookkeeping record?  Asked before
 * an empty-looking file is vanished: the count comes from the file's
 * header, which a write that failed half-way can leave too low.  If
 * messages are there, they are counted again.
 */
static int
cache_only_meta(struct cache *c)
{
	BDBCUR		*cur;
	const void	*kb;
	int		 ks, vs;
	uint64_t	 seq, n = 0, bytes = 0;

	cur = tcbdbcurnew(c->bdb);
	if (tcbdbcurfirst(cur)) {
		do {
			if ((kb = tcbdbcurkey3(cur, &ks)) != NULL &&
			    tcbdbcurval3(cur, &vs) != NULL &&
			    (seq = cache_seq(kb, ks)) != 0 &&
			    !cache_is_del(c, seq)) {
				n++;
				bytes += cache_cost(vs);
			}
		} while (tcbdbcurnext(cur));
	}
	tcbdbcurdel(cur);
	if (n == 0)
		return (1);
	log_warnx("cache %s: the file's count said no messages but it holds "
	    "%" PRIu64 "; counted again", c->name, n);
	c->db_count = n;
	c->db_bytes = bytes;
	return (0);
}

/*
 * Write what waits: deletions, then up to CACHE_COMMIT_BATCH new records,
 * in one transaction.  More waits for the next loop turn.
 */
void
cache_commit(struct cache *c)
{
	struct cache_stage	*s;
	unsigned char		 k[8];
	size_t			 n = 0;
	uint64_t		 bytes = 0, room, prev, spare;
	size_t			 ndel;

	if (c->nstage == 0 && c->ndels == 0)
		return;
	cache_rcur_drop(c);
	/*
	 * Tokyo Cabinet cannot roll back a transaction the disk filled up in
	 * the middle of (the file is damaged): write no more than fits,
	 * with room for the pages' log, which takes a whole page for every
	 * page the commit rewrites (deletions too).
	 */
	spare = (256u << 10) + 2 * (uint64_t)c->lsmax;
	room = cache_free_bytes(c);
	room = room > spare ? (room - spare) / 3 : 0;
	if (room < (c->nstage != 0 ? cache_cost(TAILQ_FIRST(&c->stage)->vlen) :
	    c->lsmax)) {
		cache_disk_error(c, "cannot write", "the disk is full");
		goto retry;
	}
	if (!tcbdbtranbegin(c->bdb)) {
		cache_disk_error(c, "cannot begin a transaction", NULL);
		cache_reopen(c);
		goto retry;
	}
	/* Deletions count against the transaction's size too. */
	ndel = c->ndels;
	if (c->cfg.cap_bytes != 0 && ndel > c->cfg.cap_bytes / 64 / 200 &&
	    ndel > 64)
		ndel = c->cfg.cap_bytes / 64 / 200 > 64 ?
		    c->cfg.cap_bytes / 64 / 200 : 64;
	if (cache_out_runs(c, ndel) != 0)
		goto abort;
	TAILQ_FOREACH(s, &c->stage, entry) {
		/*
		 * A transaction logs the pages it changes: keep it small next
		 * to the cap, so file and log stay within it together.
		 */
		if (n == CACHE_COMMIT_BATCH || (n != 0 && c->cfg.cap_bytes !=
		    0 && bytes >= c->cfg.cap_bytes / 64) || (n != 0 &&
		    bytes + cache_cost(s->vlen) > room))
			break;
		cache_key(s->seq, k);
		if (!tcbdbput(c->bdb, k, 8, s->val, s->vlen))
			goto abort;
		bytes += cache_cost(s->vlen);
		n++;
	}
	c->db_bytes += bytes;
	if (cache_meta_put(c) != 0 || !tcbdbtrancommit(c->bdb)) {
		c->db_bytes -= bytes;
		goto abort;
	}
	if (c->sync == CACHE_SYNC_COMMIT && !tcbdbsync(c->bdb))
		cache_disk_error(c, "sync failed", NULL);
	/* Large pages: memory stays near CACHE_LEAF_MEM (see the top). */
	if ((uint64_t)CACHE_LEAF_PAGES * c->lsmax > CACHE_LEAF_MEM)
		tcbdbcacheclear(c->bdb);
	if (c->failing) {
		log_info("cache %s: writing again", c->name);
		c->failing = 0;
	}
	cache_dels_done(c, ndel);
	/* Recount from the file (acks of records already gone are harmless). */
	c->db_count = tcbdbrnum(c->bdb);
	if (c->db_count > 0)
		c->db_count--;		/* the bookkeeping record */
	c->db_count -= c->ndels <= c->db_count ? c->ndels : c->db_count;
	/* The first n waiting records are on disk now. */
	while (n-- > 0)
		cache_stage_drop(c, TAILQ_FIRST(&c->stage));
	prev = c->disk_bytes;
	if (c->db_count == 0 && c->nstage == 0 &&
	    cache_du(c->path) > (1u << 20) && cache_only_meta(c)) {
		/* Empty: give the space back; numbering goes on. */
		if (tcbdbvanish(c->bdb)) {
			cache_out_clear(c);
			c->db_bytes = 0;
			cache_meta_put(c);
			prev = 0;
		}
	}
	c->disk_bytes = cache_du(c->path);
	cache_compact(c);
	if (c->disk_bytes < prev / 2)
		prev = 0;		/* compacted */
	cache_budget(c, prev);
	cache_enforce(c, 0);
	if (c->nstage != 0 || c->ndels != 0)
		cache_schedule(c, 1);
	return;

abort:
	cache_disk_error(c, "write failed", NULL);
	/*
	 * After a failed write Tokyo Cabinet refuses the handle for good:
	 * open the file again (what the transaction did is rolled back).
	 */
	tcbdbtranabort(c->bdb);
	cache_reopen(c);
retry:
	c->failed_commits++;
	/* Memory stays bounded: what cannot wait is lost. */
	while (c->stage_bytes > CACHE_STAGE_MAX &&
	    (s = TAILQ_FIRST(&c->stage)) != NULL) {
		cache_stage_drop(c, s);
		c->drops[CACHE_DROP_DISK_ERROR]++;
	}
	cache_schedule(c, 0);
}

/*
 * Open the file again after a failure, keeping what waits in memory; the
 * committed figures are read back from the file.
 */
static void
cache_reopen(struct cache *c)
{
	uint64_t	 next = c->next_seq;
	int		 omode;
	char		*cause = NULL;

	cache_out_clear(c);
	cache_rcur_drop(c);
	tcbdbclose(c->bdb);
	tcbdbdel(c->bdb);
	c->bdb = cache_bdb_new(c->cfg.cap_bytes, c->lsmax);
	omode = BDBOWRITER | BDBOCREAT | BDBOLCKNB |
	    (c->sync == CACHE_SYNC_PAGES ? BDBOTSYNC : 0);
	if (!tcbdbopen(c->bdb, c->path, omode) &&
	    cache_salvage(c, omode, &cause) != 0) {
		log_warnx("%s", cause);
		free(cause);
		return;
	}
	/*
	 * A write that failed half-way can leave pages the file cannot read
	 * back: salvage it then, but only where there is room to copy.
	 */
	cache_meta_get(c);
	if (!tcbdbtranbegin(c->bdb)) {
		if (cache_room(c)) {
			if (cache_salvage(c, omode, &cause) != 0) {
				log_warnx("%s", cause);
				free(cause);
			}
			cache_meta_get(c);
		}
	} else
		tcbdbtranabort(c->bdb);
	if (c->next_seq < next)
		c->next_seq = next;
	c->db_count -= c->ndels <= c->db_count ? c->ndels : c->db_count;
}

/* Free bytes on the cache's file system (UINT64_MAX if unknown). */
static uint64_t
cache_free_bytes(const struct cache *c)
{
	return (cache_fs_bytes(c, 0));
}

/* Is there room next to the file for a copy of it? */
static int
cache_room(const struct cache *c)
{
	return (cache_free_bytes(c) > 2 * cache_du(c->path) + (1u << 20));
}



/*
 * The file cannot read back some of its pages: salvage it (once per call
 * chain), keeping what waits in memory.
 */
static int
cache_repair(struct cache *c)
{
	char		*cause = NULL;
	int		 omode, rv = -1;
	uint64_t	 now = util_now_ms();

	/* One that could not be done is tried again a minute later. */
	if (c->repair_failed != 0 && now - c->repair_failed < 60000)
		return (-1);
	c->salvaging = 1;
	cache_out_clear(c);
	omode = BDBOWRITER | BDBOCREAT | BDBOLCKNB |
	    (c->sync == CACHE_SYNC_PAGES ? BDBOTSYNC : 0);
	if (!cache_room(c))
		log_warnx("cache %s: damaged, and no room to repair it yet",
		    c->name);
	else if (cache_salvage(c, omode, &cause) != 0) {
		log_warnx("%s", cause);
		free(cause);
	} else {
		cache_meta_get(c);
		cache_dels_done(c, c->ndels);
		c->disk_bytes = cache_du(c->path);
		rv = 0;
	}
	c->salvaging = 0;
	c->repair_failed = rv == 0 ? 0 : now != 0 ? now : 1;
	return (rv);
}

/*
 * A file much larger than what it holds (freed pages are reused, not
 * returned): rewrite it compactly, at most once a minute, and only while
 * what it holds is small enough to rewrite without stalling the loop.
 */
static void
cache_compact(struct cache *c)
{
	uint64_t	now = util_now_ms();
	int64_t		bnum;

	/* Not while deletions wait: the file still holds those records. */
	if (c->cfg.cap_bytes == 0 || c->ndels != 0 || c->disk_bytes <
	    c->cfg.cap_bytes / 10 * 9 || c->db_bytes * 3 > c->disk_bytes ||
	    c->db_bytes > CACHE_COMPACT_MAX ||
	    now - c->last_optimize < 60000)
		return;
	c->last_optimize = now;
	bnum = c->cfg.cap_bytes / 16384;
	bnum = bnum < 1021 ? 1021 : bnum > 262139 ? 262139 : bnum;
	if (!tcbdboptimize(c->bdb, CACHE_LMEMB, 256, bnum, 8,
	    10, BDBTLARGE | BDBTEXCODEC))
		log_warnx("cache %s: compacting: %s", c->name, cache_tcerr(c));
	c->disk_bytes = cache_du(c->path);
	log_debug("cache %s: compacted to %" PRIu64 " bytes", c->name,
	    c->disk_bytes);
}

/*
 * The live bytes allowed.  The file takes more than its live records
 * (pages, buckets, free space, a commit's log), and how much more is
 * only seen after a commit: when the file has grown past 90% of the cap,
 * take what it grew by off the budget; a file that is big but not
 * growing is reusing its free pages and is left alone.  While the file
 * is well within the cap a lowered budget creeps back up, never above
 * where it starts.  prev is the size before the commit; 0 starts afresh
 * (open, new cap, emptied or compacted file).  The start leaves room for
 * a commit's log of overwritten pages, which lives only while the commit
 * runs and takes up to a few hundred kB whatever the cap.
 */
static void
cache_budget(struct cache *c, uint64_t prev)
{
	uint64_t	cap = c->cfg.cap_bytes, start, disk = c->disk_bytes;
	uint64_t	grew, log;

	if (cap == 0)
		return;
	log = 3 * (uint64_t)c->lsmax;
	if (log < CACHE_LOG_ROOM)
		log = CACHE_LOG_ROOM;
	start = cap / 10 * 7 - (cap / 8 < log ? cap / 8 : log);
	if (prev == 0 || c->budget == 0) {
		c->budget = start;
		if (disk > cap && c->db_bytes < disk)
			c->budget = (uint64_t)((double)start * c->db_bytes /
			    disk);
	} else if (disk > cap / 10 * 9 && disk > prev) {
		/* Take what it grew by past the line off the budget. */
		grew = disk - (prev > cap / 10 * 9 ? prev : cap / 10 * 9);
		c->budget = c->budget > grew ? c->budget - grew : 0;
	} else if (disk < start)
		c->budget += cap / 64;
	if (c->budget > start)
		c->budget = start;
	if (c->budget < cap / 8)
		c->budget = cap / 8;
}

/*
 * Keep the live bytes under the budget, lowering the budget when the file
 * has outgrown the cap; incoming is the size of a message about to come.
 * With drop_newest nothing is evicted here (cache_put refuses instead).
 */
static void
cache_enforce(struct cache *c, uint64_t incoming)
{
	BDBCUR			*cur;
	const void		*kb;
	unsigned char		 k[8];
	int			 ks, vs;
	uint64_t		 seq, live;
	struct cache_stage	*s;

	if (c->cfg.cap_bytes == 0)
		return;
	live = c->db_bytes + c->stage_bytes;
	if (c->cfg.drop_newest || live + incoming <= c->budget)
		return;
	/* Start past what was evicted already (older records are gone). */
	cur = tcbdbcurnew(c->bdb);
	cache_key(c->evicted + 1, k);
	if (tcbdbcurjump(cur, k, 8)) {
		do {
			if ((kb = tcbdbcurkey3(cur, &ks)) == NULL)
				break;
			seq = cache_seq(kb, ks);
			if (seq == 0 || cache_is_del(c, seq))
				continue;
			vs = tcbdbvsiz(c->bdb, kb, ks);
			cache_del(c, seq, vs > 0 ? vs : 0);
			c->drops[CACHE_DROP_FULL_OLDEST]++;
			c->evicted = seq;
		} while (c->db_bytes + c->stage_bytes + incoming > c->budget &&
		    tcbdbcurnext(cur));
	}
	tcbdbcurdel(cur);
	while (c->db_bytes + c->stage_bytes + incoming > c->budget &&
	    (s = TAILQ_FIRST(&c->stage)) != NULL) {
		cache_stage_drop(c, s);
		c->drops[CACHE_DROP_FULL_OLDEST]++;
	}
}

/*
 * Keep a message (copied).  0, or -1 if it was refused (full with
 * drop_newest, or larger than the whole cache); drops are counted.
 */
int
cache_put(struct cache *c, const char *topic, const void *payload,
    size_t len, int qos, int retain, int64_t enq_us)
{
	struct cache_stage	*s;
	size_t			 tlen = strlen(topic), vlen;
	unsigned char		*v;
	int			 i;

	vlen = CACHE_HDR + tlen + len;
	if (c->cfg.cap_bytes != 0 && cache_cost(vlen) > c->budget) {
		c->drops[c->cfg.drop_newest ? CACHE_DROP_FULL_NEWEST :
		    CACHE_DROP_FULL_OLDEST]++;
		return (-1);
	}
	if (c->cfg.cap_bytes != 0 && c->db_bytes + c->stage_bytes +
	    cache_cost(vlen) > c->budget) {
		if (c->cfg.drop_newest) {
			c->drops[CACHE_DROP_FULL_NEWEST]++;
			return (-1);
		}
		cache_enforce(c, cache_cost(vlen));
	}
	v = xmalloc(vlen);
	v[0] = 1;
	v[1] = qos;
	v[2] = retain != 0;
	v[3] = 0;
	for (i = 0; i < 4; i++)
		v[4 + i] = tlen >> (24 - 8 * i);
	for (i = 0; i < 8; i++)
		v[8 + i] = (uint64_t)enq_us >> (56 - 8 * i);
	memcpy(v + CACHE_HDR, topic, tlen);
	if (len != 0)
		memcpy(v + CACHE_HDR + tlen, payload, len);
	s = xcalloc(1, sizeof *s);
	s->seq = c->next_seq++;
	s->val = (char *)v;
	s->vlen = vlen;
	TAILQ_INSERT_TAIL(&c->stage, s, entry);
	c->nstage++;
	c->stage_bytes += cache_cost(vlen);
	if (c->stage_bytes >= CACHE_STAGE_MAX / 2 && !c->failing)
		cache_schedule(c, 1);
	else
		cache_schedule(c, 0);
	return (0);
}

/* Decode a stored value into rec (allocating); -1 if malformed. */
static int
cache_decode(uint64_t seq, const unsigned char *v, size_t vlen,
    struct cache_rec *rec)
{
	size_t		tlen = 0;
	uint64_t	enq = 0;
	int		i;

	if (!cache_wellformed(v, vlen))
		return (-1);
	for (i = 0; i < 4; i++)
		tlen = (tlen << 8) | v[4 + i];
	for (i = 0; i < 8; i++)
		enq = (enq << 8) | v[8 + i];
	rec->seq = seq;
	rec->qos = v[1];
	rec->retain = v[2];
	rec->enq_us = (int64_t)enq;
	rec->topic = xstrndup((const char *)v + CACHE_HDR, tlen);
	rec->len = vlen - CACHE_HDR - tlen;
	rec->payload = xmemdup(v + CACHE_HDR + tlen, rec->len);
	return (0);
}

/* Has a message outlived the TTL? */
static int
cache_expired(const struct cache *c, int64_t enq_us, int64_t now)
{
	return (c->cfg.ttl_sec != 0 &&
	    enq_us + (int64_t)c->cfg.ttl_sec * 1000000 < now);
}

/* Forget which records were handed out (the file changed under them). */
static void
cache_out_clear(struct cache *c)
{
	memset(c->out, 0, sizeof c->out);
}

/*
 * The oldest message after sequence number after (0: from the start),
 * skipping expired ones (dropped).  1 with rec filled (free with
 * cache_rec_clear()), or 0 if there is none.
 */
int
cache_next(struct cache *c, uint64_t after, struct cache_rec *rec)
{
	unsigned char		 k[8];
	const void		*kb, *vb;
	int			 ks, vs, found = 0, ok;
	uint64_t		 seq;
	int64_t			 now = util_wall_us();
	struct cache_stage	*s, *next;

	if (c->rcur != NULL && c->rcur_seq != 0 && c->rcur_seq == after)
		ok = tcbdbcurnext(c->rcur);
	else {
		if (c->rcur == NULL)
			c->rcur = tcbdbcurnew(c->bdb);
		cache_key(after + 1 > 0 ? after + 1 : 1, k);
		ok = tcbdbcurjump(c->rcur, k, 8);
	}
	c->rcur_seq = 0;
	if (ok) {
		do {
			if ((kb = tcbdbcurkey3(c->rcur, &ks)) == NULL ||
			    (vb = tcbdbcurval3(c->rcur, &vs)) == NULL)
				break;
			seq = cache_seq(kb, ks);
			if (seq == 0 || cache_is_del(c, seq))
				continue;
			if (cache_decode(seq, vb, vs, rec) != 0) {
				cache_del(c, seq, vs);
				c->drops[CACHE_DROP_DISK_ERROR]++;
				continue;
			}
			if (cache_expired(c, rec->enq_us, now)) {
				cache_rec_clear(rec);
				cache_del(c, seq, vs);
				c->drops[CACHE_DROP_TTL]++;
				continue;
			}
			found = 1;
		} while (!found && tcbdbcurnext(c->rcur));
	}
	if (found) {
		c->rcur_seq = rec->seq;
		/* On disk until acknowledged or dropped (cache_del()). */
		c->out[c->outpos] = rec->seq;
		c->outlen[c->outpos] = (uint32_t)vs;
		c->outpos = (c->outpos + 1) % CACHE_OUT;
		return (1);
	}
	if (cache_damage(tcbdbecode(c->bdb)) && !c->salvaging) {
		/* A page that does not read back: copy out the rest. */
		if (cache_repair(c) == 0)
			return (cache_next(c, after, rec));
		/* Not now: what waits in memory can still go. */
	}
	for (s = TAILQ_FIRST(&c->stage); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->seq <= after)
			continue;
		if (cache_decode(s->seq, (unsigned char *)s->val, s->vlen,
		    rec) != 0)
			continue;
		if (cache_expired(c, rec->enq_us, now)) {
			cache_rec_clear(rec);
			cache_stage_drop(c, s);
			c->drops[CACHE_DROP_TTL]++;
			continue;
		}
		return (1);
	}
	return (0);
}

/* Forget where cache_next() left off (the file is about to change). */
static void
cache_rcur_drop(struct cache *c)
{
	if (c->rcur != NULL)
		tcbdbcurdel(c->rcur);
	c->rcur = NULL;
	c->rcur_seq = 0;
}

/* Free what cache_next() put in rec. */
void
cache_rec_clear(struct cache_rec *rec)
{
	free(rec->topic);
	free(rec->payload);
	memset(rec, 0, sizeof *rec);
}

/* The bytes a record takes as stored (for cache_ack()). */
size_t
cache_rec_size(const struct cache_rec *rec)
{
	return (CACHE_HDR + strlen(rec->topic) + rec->len);
}

/*
 * The broker has message seq (of vlen stored bytes, 0 if unknown): it
 * leaves the cache.
 */
void
cache_ack(struct cache *c, uint64_t seq, size_t vlen)
{
	struct cache_stage	*s;
	unsigned char		 k[8];
	int			 vs;
	size_t			 i;

	TAILQ_FOREACH(s, &c->stage, entry) {
		if (s->seq == seq) {
			cache_stage_drop(c, s);
			return;
		}
	}
	if (seq == 0 || cache_is_del(c, seq))
		return;
	/* Handed out by cache_next() and still there: no read needed. */
	for (i = 0; i < CACHE_OUT; i++)
		if (c->out[i] == seq) {
			cache_del(c, seq, c->outlen[i]);
			return;
		}
	/* It may be gone already (dropped by the cap or the TTL). */
	cache_key(seq, k);
	if ((vs = tcbdbvsiz(c->bdb, k, 8)) < 0)
		return;
	cache_del(c, seq, vlen != 0 ? vlen : (size_t)vs);
}

/* Once a second: expire old messages from the head. */
static void
cache_sweep_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct cache		*c = arg;
	struct cache_rec	 rec;

	if (c->cfg.ttl_sec == 0)
		return;
	/* cache_next() drops expired messages on its way to a live one. */
	memset(&rec, 0, sizeof rec);
	if (cache_next(c, 0, &rec))
		cache_rec_clear(&rec);
	if (c->failing && c->nstage != 0)
		cache_schedule(c, 0);
}

uint64_t
cache_count(const struct cache *c)
{
	return (c->db_count + c->nstage);
}

uint64_t
cache_bytes(const struct cache *c)
{
	return (c->db_bytes + c->stage_bytes);
}

uint64_t
cache_disk_bytes(const struct cache *c)
{
	return (c->disk_bytes);
}

/* When the oldest waiting message was made (0 if none). */
int64_t
cache_oldest_us(struct cache *c)
{
	struct cache_rec	rec;
	int64_t			t = 0;

	memset(&rec, 0, sizeof rec);
	if (cache_next(c, 0, &rec)) {
		t = rec.enq_us;
		cache_rec_clear(&rec);
	}
	return (t);
}

uint64_t
cache_drops(const struct cache *c, enum cache_drop why)
{
	return (c->drops[why]);
}

const char *
cache_drop_name(enum cache_drop why)
{
	return (cache_drop_names[why]);
}

const char *
cache_path(const struct cache *c)
{
	return (c->path);
}

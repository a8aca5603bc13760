/* SPDX-License-Identifier: ISC */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct cache;

/*
 * The store-and-forward cache of one link (cache.c): messages on disk in
 * a Tokyo Cabinet B+tree keyed by a 64-bit sequence number, written in
 * group commits, bounded in size, expiring by age.
 */
enum cache_drop {
	CACHE_DROP_TTL,
	CACHE_DROP_FULL_OLDEST,
	CACHE_DROP_FULL_NEWEST,
	CACHE_DROP_DISK_ERROR,
	CACHE_NDROPS
};

/* How commits reach the disk (uplinkd.conf cache_sync). */
#define CACHE_SYNC_NONE		0	/* when the kernel writes it */
#define CACHE_SYNC_COMMIT	1	/* one sync at the end of a commit */
#define CACHE_SYNC_PAGES	2	/* Tokyo Cabinet syncs each page */

struct cache_cfg {
	uint64_t	cap_bytes;	/* everything on disk */
	uint32_t	ttl_sec;	/* 0: messages never expire */
	int		drop_newest;	/* full: refuse new, not evict old */
};

struct cache_rec {
	uint64_t	 seq;
	char		*topic;
	void		*payload;
	size_t		 len;
	int		 qos;
	int		 retain;
	int64_t		 enq_us;
};

struct cache	*cache_open(struct event_base *, const char *, const char *,
		    int, unsigned int, const struct cache_cfg *, char **);
void		 cache_set(struct cache *, const struct cache_cfg *);
void		 cache_close(struct cache *);
void		 cache_remove(struct cache *);
int		 cache_put(struct cache *, const char *, const void *, size_t,
		    int, int, int64_t);
int		 cache_next(struct cache *, uint64_t, struct cache_rec *);
void		 cache_rec_clear(struct cache_rec *);
void		 cache_ack(struct cache *, uint64_t, size_t);
size_t		 cache_rec_size(const struct cache_rec *);
void		 cache_commit(struct cache *);

uint64_t	 cache_count(const struct cache *);
uint64_t	 cache_bytes(const struct cache *);
uint64_t	 cache_disk_bytes(const struct cache *);
int64_t		 cache_oldest_us(struct cache *);
uint64_t	 cache_drops(const struct cache *, enum cache_drop);
const char	*cache_drop_name(enum cache_drop);
const char	*cache_path(const struct cache *);

#endif

/* SPDX-License-Identifier: ISC */
/*
 * The outbox of a link: formatted messages waiting for the broker.
 *
 * Messages go to libmosquitto only while the link's window has room
 * (link_room()); one leaves the outbox when the broker acknowledged it
 * (QoS 1, 2) or libmosquitto wrote it (QoS 0).  After a disconnect what
 * was in flight is sent again: delivery is at least once.
 *
 * Without store-and-forward the outbox is memory only, bounded by count
 * and bytes; when it is full the oldest message is dropped and counted.
 * With a cache (cache.c) messages go to disk instead whenever the link is
 * down or slower than the messages come, and what waits in memory goes
 * to disk when the link goes down or the daemon stops.  When the link is
 * up, the backlog is replayed in order, one message every send_delay_ms,
 * while live messages keep flowing ahead of it (or, in strict FIFO
 * order, behind it: new messages then queue on disk while a backlog
 * exists).  Memory does not grow with the length of an outage.
 */

#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cache.h"
#include "link.h"
#include "log.h"
#include "outbox.h"
#include "util.h"
#include "xmalloc.h"

#define OUTBOX_REPLAY_MAX	64	/* replayed messages in flight */

struct outbox_msg {
	TAILQ_ENTRY(outbox_msg)	 entry;
	char			*topic;
	void			*payload;
	size_t			 len;
	int			 qos;
	int			 retain;
	int			 mid;		/* in flight; 0: not sent */
	int64_t			 enq_us;
};
TAILQ_HEAD(outbox_queue, outbox_msg);

struct outbox_replay {
	uint64_t	seq;
	size_t		vlen;
	int		mid;
};

struct outbox {
	char			*name;
	struct event_base	*base;
	struct link		*link;
	int			 up;
	struct outbox_queue	 queue;
	struct outbox_msg	*next;		/* first not in flight */
	size_t			 n;
	size_t			 bytes;
	size_t			 max_n;
	size_t			 max_bytes;
	size_t			 inflight;
	uint64_t		 sent;
	uint64_t		 dropped;
	uint64_t		 last_drop_log;

	struct cache		*cache;		/* store-and-forward, or NULL */
	int			 fifo;
	unsigned int		 delay_ms;
	uint64_t		 replay_after;	/* last seq handed out */
	struct outbox_replay	 rflight[OUTBOX_REPLAY_MAX];
	size_t			 nrflight;
	struct event		*pace;
	int			 pacing;
	int			 replaying;
	uint64_t		 replayed;
	uint64_t		 replay_t0;
	uint64_t		 replay_n0;
	double			 replay_rate;
	int			 buffering;
	uint64_t		 full_drops_seen;
};

static void	outbox_pump(struct outbox *);
static void	outbox_remove(struct outbox *, struct outbox_msg *);
static void	outbox_pace_cb(evutil_socket_t, short, void *);
static void	outbox_spill(struct outbox *);

/* A new outbox holding at most max_n messages and max_bytes in memory. */
struct outbox *
outbox_new(const char *name, size_t max_n, size_t max_bytes)
{
	struct outbox	*ob;

	ob = xcalloc(1, sizeof *ob);
	ob->name = xstrdup(name);
	ob->max_n = max_n;
	ob->max_bytes = max_bytes;
	TAILQ_INIT(&ob->queue);
	return (ob);
}

/*
 * Free the outbox.  With a cache, what waits in memory is written to it
 * first (the next start finds it); the cache is closed.
 */
void
outbox_free(struct outbox *ob)
{
	struct outbox_msg	*m;

	if (ob == NULL)
		return;
	if (ob->cache != NULL) {
		outbox_spill(ob);
		cache_close(ob->cache);
	} else if (ob->n != 0)
		log_info("outbox %s: freed with %zu messages unsent", ob->name,
		    ob->n);
	while ((m = TAILQ_FIRST(&ob->queue)) != NULL)
		outbox_remove(ob, m);
	if (ob->pace != NULL)
		event_free(ob->pace);
	free(ob->name);
	free(ob);
}

/* Deliver through link (NULL: none for now). */
void
outbox_attach(struct outbox *ob, struct link *link)
{
	ob->link = link;
	outbox_link_disconnected(ob);
	outbox_pump(ob);
}

/*
 * Use cache (owned from now on; NULL: memory only, closing the old one)
 * with replay pacing delay_ms and strict FIFO order if fifo.
 */
void
outbox_set_cache(struct outbox *ob, struct event_base *base,
    struct cache *cache, int fifo, unsigned int delay_ms)
{
	if (ob->cache != NULL && ob->cache != cache) {
		outbox_spill(ob);
		cache_close(ob->cache);
	}
	ob->cache = cache;
	ob->base = base;
	ob->fifo = fifo;
	ob->delay_ms = delay_ms;
	ob->replay_after = 0;
	ob->nrflight = 0;
	if (ob->pace == NULL && base != NULL)
		ob->pace = evtimer_new(base, outbox_pace_cb, ob);
	outbox_pump(ob);
}

/* The cache in use, or NULL. */
struct cache *
outbox_cache(const struct outbox *ob)
{
	return (ob->cache);
}

/* Unlink and free a message. */
static void
outbox_remove(struct outbox *ob, struct outbox_msg *m)
{
	if (ob->next == m)
		ob->next = TAILQ_NEXT(m, entry);
	if (m->mid != 0)
		ob->inflight--;
	TAILQ_REMOVE(&ob->queue, m, entry);
	ob->n--;
	ob->bytes -= m->len;
	free(m->topic);
	free(m->payload);
	free(m);
}

/* Move every message waiting in memory to the cache, in order. */
static void
outbox_spill(struct outbox *ob)
{
	struct outbox_msg	*m;

	if (ob->cache == NULL)
		return;
	while ((m = TAILQ_FIRST(&ob->queue)) != NULL) {
		cache_put(ob->cache, m->topic, m->payload, m->len, m->qos,
		    m->retain, m->enq_us);
		outbox_remove(ob, m);
	}
}

/* Say once when buffering starts and when the cache is full. */
static void
outbox_log_buffering(struct outbox *ob)
{
	uint64_t	full;

	if (!ob->buffering) {
		ob->buffering = 1;
		log_info("outbox %s: buffering to disk started", ob->name);
	}
	full = cache_drops(ob->cache, CACHE_DROP_FULL_OLDEST) +
	    cache_drops(ob->cache, CACHE_DROP_FULL_NEWEST);
	if (full != 0 && ob->full_drops_seen == 0)
		log_warnx("outbox %s: disk cache full, dropping %s messages",
		    ob->name, cache_drops(ob->cache,
		    CACHE_DROP_FULL_NEWEST) != 0 ? "new" : "the oldest");
	ob->full_drops_seen = full;
}

/*
 * Queue a message (topic and payload copied).  0, or -1 if it was
 * dropped at once (too large, or refused by a full cache).
 */
int
outbox_put(struct outbox *ob, const char *topic, const void *payload,
    size_t len, int qos, int retain)
{
	struct outbox_msg	*m;
	uint64_t		 now;
	int			 rc;

	if (ob->cache != NULL && (!ob->up || (ob->fifo &&
	    cache_count(ob->cache) != 0) || ob->n >= ob->max_n ||
	    ob->bytes + len > ob->max_bytes)) {
		rc = cache_put(ob->cache, topic, payload, len, qos, retain,
		    util_wall_us());
		outbox_log_buffering(ob);
		outbox_pump(ob);
		return (rc);
	}
	if (len > ob->max_bytes) {
		ob->dropped++;
		log_warnx("outbox %s: message of %zu bytes larger than the "
		    "queue (%zu bytes); dropped", ob->name, len, ob->max_bytes);
		return (-1);
	}
	while (ob->n != 0 && (ob->n >= ob->max_n ||
	    ob->bytes + len > ob->max_bytes)) {
		/* The oldest not yet handed to the link (it may still land). */
		outbox_remove(ob, ob->next != NULL ? ob->next :
		    TAILQ_FIRST(&ob->queue));
		ob->dropped++;
		now = util_now_ms();
		if (now - ob->last_drop_log >= 60000) {
			ob->last_drop_log = now;
			log_warnx("outbox %s: full, dropping the oldest "
			    "messages dropped=%" PRIu64, ob->name, ob->dropped);
		}
	}
	m = xcalloc(1, sizeof *m);
	m->topic = xstrdup(topic);
	m->payload = xmemdup(payload, len);
	m->len = len;
	m->qos = qos;
	m->retain = retain;
	m->enq_us = util_wall_us();
	TAILQ_INSERT_TAIL(&ob->queue, m, entry);
	ob->n++;
	ob->bytes += len;
	if (ob->next == NULL)
		ob->next = m;
	outbox_pump(ob);
	return (0);
}

/* Send the next message of the backlog; 0 if there was none to send. */
static int
outbox_replay_one(struct outbox *ob)
{
	struct cache_rec	rec;
	int			mid;

	memset(&rec, 0, sizeof rec);
	if (!cache_next(ob->cache, ob->replay_after, &rec)) {
		if (ob->replaying && ob->nrflight == 0) {
			ob->replaying = 0;
			log_info("outbox %s: replay finished messages=%" PRIu64,
			    ob->name, ob->replayed);
		}
		return (0);
	}
	if (link_publish(ob->link, rec.topic, rec.payload, rec.len, rec.qos,
	    rec.retain, &mid) != 0) {
		cache_rec_clear(&rec);
		return (0);
	}
	if (!ob->replaying) {
		ob->replaying = 1;
		ob->replayed = 0;
		ob->replay_t0 = util_now_ms();
		ob->replay_n0 = 0;
		log_info("outbox %s: replay started backlog=%" PRIu64, ob->name,
		    cache_count(ob->cache));
	}
	ob->rflight[ob->nrflight].seq = rec.seq;
	ob->rflight[ob->nrflight].vlen = cache_rec_size(&rec);
	ob->rflight[ob->nrflight++].mid = mid;
	ob->replay_after = rec.seq;
	cache_rec_clear(&rec);
	return (1);
}

/* Hand messages to the link while it has room: live first, then replay. */
static void
outbox_pump(struct outbox *ob)
{
	struct outbox_msg	*m;
	struct timeval		 tv;
	int			 mid;

	if (ob->link == NULL || !ob->up)
		return;
	if (ob->cache != NULL && ob->fifo && cache_count(ob->cache) != 0)
		goto replay;
	while ((m = ob->next) != NULL && link_room(ob->link) > 0) {
		if (link_publish(ob->link, m->topic, m->payload, m->len, m->qos,
		    m->retain, &mid) != 0)
			return;
		m->mid = mid;
		ob->inflight++;
		ob->next = TAILQ_NEXT(m, entry);
	}
replay:
	if (ob->cache == NULL || ob->pacing || link_room(ob->link) <= 0 ||
	    ob->nrflight == OUTBOX_REPLAY_MAX)
		return;
	if (!outbox_replay_one(ob))
		return;
	if (ob->delay_ms == 0) {
		while (link_room(ob->link) > 0 &&
		    ob->nrflight < OUTBOX_REPLAY_MAX && outbox_replay_one(ob))
			;
		return;
	}
	tv.tv_sec = ob->delay_ms / 1000;
	tv.tv_usec = (ob->delay_ms % 1000) * 1000;
	ob->pacing = 1;
	evtimer_add(ob->pace, &tv);
}

/* The pause between two replayed messages is over. */
static void
outbox_pace_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, void *arg)
{
	struct outbox	*ob = arg;

	ob->pacing = 0;
	outbox_pump(ob);
}

/* The link is up: start sending. */
void
outbox_link_connected(struct outbox *ob)
{
	ob->up = 1;
	if (ob->buffering) {
		ob->buffering = 0;
		log_info("outbox %s: buffering to disk stopped backlog=%"
		    PRIu64, ob->name, ob->cache != NULL ?
		    cache_count(ob->cache) : 0);
	}
	outbox_pump(ob);
}

/*
 * The link went down: what was in flight is unsent again; with a cache,
 * what waits in memory goes to disk.
 */
void
outbox_link_disconnected(struct outbox *ob)
{
	struct outbox_msg	*m;

	ob->up = 0;
	TAILQ_FOREACH(m, &ob->queue, entry)
		m->mid = 0;
	ob->inflight = 0;
	ob->next = TAILQ_FIRST(&ob->queue);
	ob->nrflight = 0;
	ob->replay_after = 0;
	ob->pacing = 0;
	if (ob->pace != NULL)
		evtimer_del(ob->pace);
	if (ob->cache != NULL && ob->n != 0) {
		outbox_spill(ob);
		outbox_log_buffering(ob);
	}
}

/* A message left the window: it is delivered. */
void
outbox_link_acked(struct outbox *ob, int mid)
{
	struct outbox_msg	*m;
	size_t			 i;

	TAILQ_FOREACH(m, &ob->queue, entry) {
		if (m == ob->next)
			break;
		if (m->mid == mid) {
			outbox_remove(ob, m);
			ob->sent++;
			outbox_pump(ob);
			return;
		}
	}
	for (i = 0; i < ob->nrflight; i++) {
		if (ob->rflight[i].mid != mid)
			continue;
		cache_ack(ob->cache, ob->rflight[i].seq, ob->rflight[i].vlen);
		ob->rflight[i] = ob->rflight[--ob->nrflight];
		ob->sent++;
		ob->replayed++;
		break;
	}
	outbox_pump(ob);
}

/* The window has room again. */
void
outbox_link_writable(struct outbox *ob)
{
	outbox_pump(ob);
}

size_t
outbox_queued(const struct outbox *ob)
{
	return (ob->n);
}

size_t
outbox_bytes(const struct outbox *ob)
{
	return (ob->bytes);
}

uint64_t
outbox_sent(const struct outbox *ob)
{
	return (ob->sent);
}

uint64_t
outbox_dropped(const struct outbox *ob)
{
	return (ob->dropped);
}

/* Replayed messages per second since the replay started. */
double
outbox_replay_rate(struct outbox *ob)
{
	uint64_t	ms;

	if (!ob->replaying)
		return (0);
	ms = util_now_ms() - ob->replay_t0;
	return (ms == 0 ? 0 : ob->replayed * 1000.0 / ms);
}

/* This outbox's figures, labelled with its name, for /metrics. */
void
outbox_metrics(struct outbox *ob, FILE *f)
{
	int	i;

	fprintf(f, "uplinkd_outbox_messages{link=\"%s\"} %zu\n"
	    "uplinkd_outbox_bytes{link=\"%s\"} %zu\n"
	    "uplinkd_outbox_inflight{link=\"%s\"} %zu\n"
	    "uplinkd_outbox_sent_total{link=\"%s\"} %" PRIu64 "\n"
	    "uplinkd_outbox_dropped_total{link=\"%s\"} %" PRIu64 "\n",
	    ob->name, ob->n, ob->name, ob->bytes, ob->name, ob->inflight,
	    ob->name, ob->sent, ob->name, ob->dropped);
	if (ob->cache == NULL)
		return;
	fprintf(f, "uplinkd_cache_messages{link=\"%s\"} %" PRIu64 "\n"
	    "uplinkd_cache_bytes{link=\"%s\"} %" PRIu64 "\n"
	    "uplinkd_cache_disk_bytes{link=\"%s\"} %" PRIu64 "\n"
	    "uplinkd_cache_replay_rate{link=\"%s\"} %.1f\n",
	    ob->name, cache_count(ob->cache), ob->name,
	    cache_bytes(ob->cache), ob->name, cache_disk_bytes(ob->cache),
	    ob->name, outbox_replay_rate(ob));
	for (i = 0; i < CACHE_NDROPS; i++)
		fprintf(f, "uplinkd_cache_dropped_total{link=\"%s\","
		    "reason=\"%s\"} %" PRIu64 "\n", ob->name,
		    cache_drop_name(i), cache_drops(ob->cache, i));
}

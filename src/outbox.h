/* SPDX-License-Identifier: ISC */
#ifndef OUTBOX_H
#define OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cache;
struct event_base;
struct link;
struct outbox;

/*
 * Per-link delivery (outbox.c): messages wait here until the link has
 * room, and stay until the broker acknowledged them (QoS 1, 2) or they
 * were written (QoS 0).  The in-memory part is bounded; when it is full
 * the oldest message is dropped and counted, unless a store-and-forward
 * cache takes the messages the link cannot.
 */
struct outbox	*outbox_new(const char *, size_t, size_t);
void		 outbox_free(struct outbox *);
void		 outbox_attach(struct outbox *, struct link *);
void		 outbox_set_cache(struct outbox *, struct event_base *,
		    struct cache *, int, unsigned int);
struct cache	*outbox_cache(const struct outbox *);
double		 outbox_replay_rate(struct outbox *);
int		 outbox_put(struct outbox *, const char *, const void *,
		    size_t, int, int);
size_t		 outbox_queued(const struct outbox *);
size_t		 outbox_bytes(const struct outbox *);
uint64_t	 outbox_sent(const struct outbox *);
uint64_t	 outbox_dropped(const struct outbox *);
void		 outbox_metrics(struct outbox *, FILE *);

/* Called by the owner of the link from its link_ops. */
void		 outbox_link_connected(struct outbox *);
void		 outbox_link_disconnected(struct outbox *);
void		 outbox_link_acked(struct outbox *, int);
void		 outbox_link_writable(struct outbox *);

#endif

/* SPDX-License-Identifier: ISC */
/*
 * The outbox of a link: formatted messages in the order they were made,
 * waiting for the link.  Messages go to libmosquitto only while the
 * link's window has room (link_room()); a message leaves the outbox when
 * the broker acknowledged it (QoS 1, 2) or libmosquitto wrote it (QoS 0).
 * On a disconnect every message in flight becomes unsent again and goes
 * out first after the reconnect, so delivery is at least once.
 *
 * The queue is bounded by count and bytes; a full queue drops its oldest
 * message (counted), so memory does not grow with an outage.
 */

#include <sys/queue.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "log.h"
#include "outbox.h"
#include "util.h"
#include "xmalloc.h"

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

struct outbox {
	char			*name;
	struct link		*link;
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
};

static void	outbox_pump(struct outbox *);
static void	outbox_remove(struct outbox *, struct outbox_msg *);

/* A new outbox holding at most max_n messages and max_bytes of payload. */
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

/* Free the outbox and what it still holds (counted as not sent). */
void
outbox_free(struct outbox *ob)
{
	struct outbox_msg	*m;

	if (ob == NULL)
		return;
	if (ob->n != 0)
		log_info("outbox %s: freed with %zu messages unsent", ob->name,
		    ob->n);
	while ((m = TAILQ_FIRST(&ob->queue)) != NULL)
		outbox_remove(ob, m);
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

/*
 * Queue a message (topic and payload copied).  When the outbox is full
 * the oldest message goes; 0, or -1 if the message alone is too large.
 */
int
outbox_put(struct outbox *ob, const char *topic, const void *payload,
    size_t len, int qos, int retain)
{
	struct outbox_msg	*m;
	uint64_t		 now;

	if (len > ob->max_bytes) {
		ob->dropped++;
		log_warnx("outbox %s: message of %zu bytes larger than the "
		    "queue (%zu bytes); dropped", ob->name, len, ob->max_bytes);
		return (-1);
	}
	while (ob->n != 0 && (ob->n >= ob->max_n ||
	    ob->bytes + len > ob->max_bytes)) {
		outbox_remove(ob, TAILQ_FIRST(&ob->queue));
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

/* Hand messages to the link while it has room. */
static void
outbox_pump(struct outbox *ob)
{
	struct outbox_msg	*m;
	int			 mid;

	if (ob->link == NULL)
		return;
	while ((m = ob->next) != NULL && link_room(ob->link) > 0) {
		if (link_publish(ob->link, m->topic, m->payload, m->len, m->qos,
		    m->retain, &mid) != 0)
			break;
		m->mid = mid;
		ob->inflight++;
		ob->next = TAILQ_NEXT(m, entry);
	}
}

/* The link is up: start sending. */
void
outbox_link_connected(struct outbox *ob)
{
	outbox_pump(ob);
}

/* The link went down: what was in flight is unsent again. */
void
outbox_link_disconnected(struct outbox *ob)
{
	struct outbox_msg	*m;

	TAILQ_FOREACH(m, &ob->queue, entry)
		m->mid = 0;
	ob->inflight = 0;
	ob->next = TAILQ_FIRST(&ob->queue);
}

/* A message left the window: it is delivered. */
void
outbox_link_acked(struct outbox *ob, int mid)
{
	struct outbox_msg	*m;

	TAILQ_FOREACH(m, &ob->queue, entry) {
		if (m == ob->next)
			break;
		if (m->mid == mid) {
			outbox_remove(ob, m);
			ob->sent++;
			break;
		}
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

/* This outbox's figures, labelled with its name, for /metrics. */
void
outbox_metrics(const struct outbox *ob, FILE *f)
{
	fprintf(f, "uplinkd_outbox_messages{link=\"%s\"} %zu\n"
	    "uplinkd_outbox_bytes{link=\"%s\"} %zu\n"
	    "uplinkd_outbox_inflight{link=\"%s\"} %zu\n"
	    "uplinkd_outbox_sent_total{link=\"%s\"} %" PRIu64 "\n"
	    "uplinkd_outbox_dropped_total{link=\"%s\"} %" PRIu64 "\n",
	    ob->name, ob->n, ob->name, ob->bytes, ob->name, ob->inflight,
	    ob->name, ob->sent, ob->name, ob->dropped);
}

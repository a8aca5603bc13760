/* SPDX-License-Identifier: ISC */
#ifndef GROUP_H
#define GROUP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct json;
struct json_field;
struct outbox;
struct group;

/*
 * Message groups (group.c): a group selects tags as
 * {provider: {source: [tag...]}}, samples them (every value, or the
 * latest every N s; all or only changed values), runs each sampled record
 * through its format into a message buffer, and hands the message to its
 * outbox when the send-out threshold fires.  Polling timers with the same
 * period are shared by all groups.
 */
struct group_target {
	struct outbox	*outbox;	/* NULL: messages are counted only */
	int		 qos;
	int		 retain;
};

/* Sees every message a group sends (tests, tracing); all borrowed. */
typedef void (*group_sent_cb)(const struct group *, const char *,
		    const void *, size_t, void *);

/* The two document forms (json.h validator tables). */
extern const struct json_field *const group_schema_v20;
extern const struct json_field *const group_schema_v24;

int		 group_validate(struct json *, char **);
struct group	*group_new(struct event_base *, const char *,
		    const struct json *, const struct group_target *, char **);
void		 group_free(struct group *);
void		 group_flush(struct group *);
uint64_t	 group_records(const struct group *);
uint64_t	 group_messages(const struct group *);
uint64_t	 group_filter_errors(const struct group *);
uint64_t	 group_dropped(const struct group *);
const char	*group_name(const struct group *);
size_t		 group_timer_count(void);
void		 group_set_sent_cb(group_sent_cb, void *);

#endif

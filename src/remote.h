/* SPDX-License-Identifier: ISC */
#ifndef REMOTE_H
#define REMOTE_H

#include <stddef.h>

struct event_base;
struct json;
struct remote;

typedef void (*remote_answer_cb)(const char *, size_t, void *);

void		 remote_set_allow(const char *);
struct remote	*remote_new(struct event_base *, const char *,
		    remote_answer_cb, void *);
void		 remote_free(struct remote *);
void		 remote_handover(struct remote *, struct remote *);
void		 remote_push(struct remote *, const void *, size_t);
struct json	*remote_call(const struct json *, const char *, int *);

#endif

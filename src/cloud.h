/* SPDX-License-Identifier: ISC */
#ifndef CLOUD_H
#define CLOUD_H

#include <stdint.h>
#include <stdio.h>

struct event_base;
struct group_target;
struct json;
struct multipart;
struct outbox;
struct store;

/*
 * What every cloud connection shares (cloud.c): its message groups (kept
 * in the configuration store, run by group.c), uploaded certificate files,
 * secrets masked in answers, and the "test custom payload" call.
 */
struct cloud_groups;

#define CLOUD_MASK	"********"

struct cloud_groups *cloud_groups_new(struct event_base *, struct store *,
		    const char *, const char *, const struct group_target *);
void		 cloud_groups_free(struct cloud_groups *);
void		 cloud_groups_flush(struct cloud_groups *);
void		 cloud_groups_purge(struct cloud_groups *);
void		 cloud_groups_retarget(struct cloud_groups *,
		    const struct group_target *);
struct json	*cloud_groups_list(struct cloud_groups *);
struct json	*cloud_groups_get(struct cloud_groups *, uint64_t);
int		 cloud_groups_add(struct cloud_groups *, struct json *,
		    struct json **, char **);
int		 cloud_groups_update(struct cloud_groups *, uint64_t,
		    struct json *, struct json **, int *, char **);
int		 cloud_groups_delete(struct cloud_groups *, uint64_t, char **);
void		 cloud_groups_metrics(struct cloud_groups *, FILE *);

struct json	*cloud_public(const struct json *);
struct json	*cloud_format_test(struct json *, int *, char **);

void		 cloud_init(const char *);
char		*cloud_cert_path(const char *, const char *);
int		 cloud_cert_save(const char *, const struct multipart *,
		    const char *const *, struct json *, char **);
void		 cloud_cert_remove(const char *, const char *const *);
struct json	*cloud_form_json(const struct multipart *,
		    const char *const *, char **);

int		 cloud_saf_init(const char *, const char *, int, unsigned int,
		    char **);
struct json	*cloud_saf_disks(void);
struct json	*cloud_saf_get(struct store *, const char *);
int		 cloud_saf_put(struct store *, const char *, struct json *,
		    struct json **, char **);
int		 cloud_saf_apply(struct event_base *, struct outbox *,
		    const char *, const struct json *, char **);
struct json	*cloud_saf_view(const struct json *, struct outbox *);
void		 cloud_saf_remove(struct store *, const char *);

#endif

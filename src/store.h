/* SPDX-License-Identifier: ISC */
#ifndef STORE_H
#define STORE_H

#include <stdint.h>

struct json;
struct store;

struct store	*store_open(const char *, char **);
void		 store_close(struct store *);
int		 store_begin(struct store *);
int		 store_commit(struct store *, char **);
void		 store_abort(struct store *);

struct json	*store_get(struct store *, const char *, uint64_t);
int		 store_put(struct store *, const char *, uint64_t,
		    const struct json *, char **);
int		 store_del(struct store *, const char *, uint64_t, char **);
struct json	*store_list(struct store *, const char *);
uint64_t	 store_next_id(struct store *, const char *, char **);

struct json	*store_get_doc(struct store *, const char *);
int		 store_put_doc(struct store *, const char *,
		    const struct json *, char **);

#endif

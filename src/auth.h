/* SPDX-License-Identifier: ISC */
#ifndef AUTH_H
#define AUTH_H

#include <stdint.h>

struct json;
struct store;

#define AUTH_PASSWORD_MIN	8
#define AUTH_PASSWORD_MAX	128
#define AUTH_NAME_MAX		64

int		 auth_init(struct store *, const char *, char **);
int		 auth_reload(char **);
void		 auth_free(void);
void		 auth_set_lifetime(unsigned int);
void		 auth_set_iterations(unsigned int);

int		 auth_verify(const char *, char **);
int		 auth_login(const char *, const char *, const char *, char **,
		    struct json **, unsigned int *, char **);

char		*auth_hash_password(const char *);
int		 auth_check_password(const char *, const char *);

struct json	*auth_user_list(void);
struct json	*auth_user_get(uint64_t);
struct json	*auth_user_by_name(const char *);
int		 auth_user_add(const char *, const char *, int, const char *,
		    struct json **, char **);
int		 auth_user_update(uint64_t, const struct json *,
		    struct json **, char **);
int		 auth_user_check(uint64_t, const char *);
int		 auth_user_password(uint64_t, const char *, char **);
int		 auth_user_delete(uint64_t, char **);

int		 auth_b64url_encode(const unsigned char *, size_t, char *,
		    size_t);
int		 auth_b64url_decode(const char *, size_t, unsigned char *,
		    size_t, size_t *);

/* Results of auth_login(). */
#define AUTH_OK		0
#define AUTH_BADCRED	1	/* 401 */
#define AUTH_THROTTLED	2	/* 429 */
#define AUTH_INACTIVE	3	/* 403 */

#endif

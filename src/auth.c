/* SPDX-License-Identifier: ISC */
/*
 * Authentication: user accounts, password hashes, JSON Web Tokens and the
 * static API token.
 *
 * Accounts are documents of the "users" collection of the configuration
 * store, cached here.  Passwords are hashed with PBKDF2-HMAC-SHA256 and a
 * random salt; the hash string carries its own iteration count, so the
 * count can be raised later without breaking old accounts.  Tokens are
 * HS256 JWTs signed with a secret kept in the data directory; only HS256
 * is accepted, whatever the header says.  A token carries the account's
 * password version, so changing a password revokes its old tokens.
 *
 * Failed logins are slowed down per account name: after each failure the
 * name may not try again for a growing while (answered 429 without
 * computing a hash), and the failure's own answer is delayed as long.
 * A global budget bounds how many hashes are computed per second, so a
 * password guesser cannot starve the event loop.
 */

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

#define AUTH_TOKEN_FILE		"api-token"
#define AUTH_SECRET_FILE	"jwt-secret"
#define AUTH_ADMIN_FILE		"admin-password"
#define AUTH_SECRET_LEN		32
#define AUTH_SALT_LEN		16
#define AUTH_HASH_LEN		32
#define AUTH_THROTTLE_SLOTS	256
#define AUTH_DELAY_MAX_MS	30000
#define AUTH_KDF_PER_SEC	20
#define AUTH_COLL		"users"

struct auth_throttle {
	char		name[AUTH_NAME_MAX + 1];
	int		account;	/* the name was an account's */
	unsigned int	fails;
	uint64_t	until;		/* monotonic ms */
	uint64_t	used;
};

struct auth {
	struct store		*store;
	char			*datadir;
	char			*api_token;
	unsigned char		 secret[AUTH_SECRET_LEN];
	unsigned int		 lifetime;	/* seconds */
	unsigned int		 iterations;
	struct json		*users;		/* array, id order */
	struct auth_throttle	 throttle[AUTH_THROTTLE_SLOTS];
	uint64_t		 kdf_second;
	unsigned int		 kdf_count;
};

static struct auth	*auth;

static int	auth_load_token(char **);
static int	auth_load_secret(char **);
static int	auth_create_admin(char **);
static struct json *auth_find(uint64_t, const char *);
static struct json *auth_public(const struct json *);
static int	auth_expired(const struct json *);
static int	auth_name_ok(const char *);
static const char *auth_log_name(const char *);
static size_t	auth_active_others(uint64_t);
static int	auth_user_delete_any(uint64_t, char **);
static struct auth_throttle *auth_throttle_get(const char *, uint64_t);
static char	*auth_jwt_make(const struct json *);

/*
 * Load (or create on first start) the API token, the JWT secret and the
 * accounts; the first start also makes the admin account and writes its
 * password to a 0600 file.
 */
int
auth_init(struct store *store, const char *datadir, char **cause)
{
	auth = xcalloc(1, sizeof *auth);
	auth->store = store;
	auth->datadir = xstrdup(datadir);
	auth->lifetime = 3600;
	auth->iterations = 50000;
	if (auth_load_token(cause) != 0 || auth_load_secret(cause) != 0)
		return (-1);
	auth->users = store_list(store, AUTH_COLL);
	if (json_array_size(auth->users) == 0 && auth_create_admin(cause) != 0)
		return (-1);
	return (0);
}

/* SIGHUP: read the API token file again (an operator may rotate it). */
int
auth_reload(char **cause)
{
	return (auth_load_token(cause));
}

/* Forget everything. */
void
auth_free(void)
{
	if (auth == NULL)
		return;
	OPENSSL_cleanse(auth->secret, sizeof auth->secret);
	if (auth->api_token != NULL) {
		OPENSSL_cleanse(auth->api_token, strlen(auth->api_token));
		free(auth->api_token);
	}
	json_free(auth->users);
	free(auth->datadir);
	free(auth);
	auth = NULL;
}

/* Token lifetime in seconds for new tokens. */
void
auth_set_lifetime(unsigned int seconds)
{
	auth->lifetime = seconds;
}

/* PBKDF2 iterations for new password hashes. */
void
auth_set_iterations(unsigned int n)
{
	auth->iterations = n;
}

/* Read the API token file, creating it (0600, random) if missing. */
static int
auth_load_token(char **cause)
{
	char	*path, *text, tok[65];
	size_t	 len;

	path = util_path(auth->datadir, AUTH_TOKEN_FILE);
	text = util_read_file(path, 4096, &len, cause);
	if (text == NULL && errno == ENOENT) {
		free(*cause);
		*cause = NULL;
		util_random_hex(tok, sizeof tok);
		xasprintf(&text, "%s\n", tok);
		if (util_write_file(path, text, strlen(text), 0600,
		    cause) != 0) {
			free(text);
			free(path);
			return (-1);
		}
		log_info("auth: created API token file=%s", path);
	} else if (text == NULL) {
		free(path);
		return (-1);
	}
	len = strcspn(text, "\r\n");
	text[len] = '\0';
	if (len < 16) {
		xasprintf(cause, "%s: API token shorter than 16 characters",
		    path);
		free(text);
		free(path);
		return (-1);
	}
	if (auth->api_token != NULL) {
		OPENSSL_cleanse(auth->api_token, strlen(auth->api_token));
		free(auth->api_token);
	}
	auth->api_token = text;
	free(path);
	return (0);
}

/* Read the JWT secret, creating it (0600, random) if missing. */
static int
auth_load_secret(char **cause)
{
	char		*path, *text, hex[2 * AUTH_SECRET_LEN + 1];
	size_t		 len, i;
	unsigned int	 byte;

	path = util_path(auth->datadir, AUTH_SECRET_FILE);
	text = util_read_file(path, 4096, &len, cause);
	if (text == NULL && errno == ENOENT) {
		free(*cause);
		*cause = NULL;
		util_random_hex(hex, sizeof hex);
		if (util_write_file(path, hex, strlen(hex), 0600, cause) != 0) {
			free(path);
			return (-1);
		}
		text = xstrdup(hex);
		len = strlen(text);
	} else if (text == NULL) {
		free(path);
		return (-1);
	}
	if (len < 2 * AUTH_SECRET_LEN) {
		xasprintf(cause, "%s: secret shorter than %d hex digits", path,
		    2 * AUTH_SECRET_LEN);
		free(text);
		free(path);
		return (-1);
	}
	for (i = 0; i < AUTH_SECRET_LEN; i++) {
		if (sscanf(text + 2 * i, "%2x", &byte) != 1) {
			xasprintf(cause, "%s: not a hex secret", path);
			free(text);
			free(path);
			return (-1);
		}
		auth->secret[i] = byte;
	}
	OPENSSL_cleanse(text, len);
	free(text);
	free(path);
	return (0);
}

/*
 * First start: make "admin" with a random password, then write the
 * password to a 0600 file (if that fails, the account goes again).
 */
static int
auth_create_admin(char **cause)
{
	char		 pw[17], *path, *text, *why;
	struct json	*user;
	uint64_t	 id;

	util_random_hex(pw, sizeof pw);
	if (auth_user_add("admin", pw, 1, NULL, &user, cause) != 0)
		return (-1);
	id = json_uint(json_get(user, "id"));
	json_free(user);
	path = util_path(auth->datadir, AUTH_ADMIN_FILE);
	xasprintf(&text, "%s\n", pw);
	OPENSSL_cleanse(pw, sizeof pw);
	if (util_write_file(path, text, strlen(text), 0600, cause) != 0) {
		if (auth_user_delete_any(id, &why) != 0) {
			log_warnx("auth: %s", why);
			free(why);
		}
		OPENSSL_cleanse(text, strlen(text));
		free(text);
		free(path);
		return (-1);
	}
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	log_info("auth: created account name=admin password_file=%s", path);
	free(path);
	return (0);
}

/*
 * Hash a password: "pbkdf2-sha256$<iterations>$<salt>$<hash>", salt and
 * hash in base64url; caller frees.
 */
char *
auth_hash_password(const char *pw)
{
	unsigned char	salt[AUTH_SALT_LEN], hash[AUTH_HASH_LEN];
	char		s64[64], h64[64], *out;

	if (RAND_bytes(salt, sizeof salt) != 1)
		fatalx("RAND_bytes failed");
	if (PKCS5_PBKDF2_HMAC(pw, strlen(pw), salt, sizeof salt,
	    auth->iterations, EVP_sha256(), sizeof hash, hash) != 1)
		fatalx("PKCS5_PBKDF2_HMAC failed");
	auth_b64url_encode(salt, sizeof salt, s64, sizeof s64);
	auth_b64url_encode(hash, sizeof hash, h64, sizeof h64);
	xasprintf(&out, "pbkdf2-sha256$%u$%s$%s", auth->iterations, s64, h64);
	return (out);
}

/* Does pw match the stored hash?  Constant time in the comparison. */
int
auth_check_password(const char *pw, const char *stored)
{
	unsigned char	 salt[64], want[64], got[AUTH_HASH_LEN];
	size_t		 slen, wlen;
	unsigned long	 iter;
	const char	*p, *q, *r;
	char		*end;

	if (strncmp(stored, "pbkdf2-sha256$", 14) != 0)
		return (0);
	p = stored + 14;
	iter = strtoul(p, &end, 10);
	if (*end != '$' || iter == 0 || iter > 10000000)
		return (0);
	q = end + 1;
	if ((r = strchr(q, '$')) == NULL)
		return (0);
	if (auth_b64url_decode(q, r - q, salt, sizeof salt, &slen) != 0 ||
	    auth_b64url_decode(r + 1, strlen(r + 1), want, sizeof want,
	    &wlen) != 0 || wlen != AUTH_HASH_LEN)
		return (0);
	if (PKCS5_PBKDF2_HMAC(pw, strlen(pw), salt, slen, iter, EVP_sha256(),
	    sizeof got, got) != 1)
		return (0);
	return (CRYPTO_memcmp(got, want, AUTH_HASH_LEN) == 0);
}

/* base64url without padding; returns the length or -1 if out is small. */
int
auth_b64url_encode(const unsigned char *in, size_t len, char *out,
    size_t outlen)
{
	static const char	 a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t			 i, n = 0;
	uint32_t		 v;

	if ((len + 2) / 3 * 4 + 1 > outlen)
		return (-1);
	for (i = 0; i + 2 < len; i += 3) {
		v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
		out[n++] = a[(v >> 18) & 63];
		out[n++] = a[(v >> 12) & 63];
		out[n++] = a[(v >> 6) & 63];
		out[n++] = a[v & 63];
	}
	if (len - i == 1) {
		v = in[i] << 16;
		out[n++] = a[(v >> 18) & 63];
		out[n++] = a[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (in[i] << 16) | (in[i + 1] << 8);
		out[n++] = a[(v >> 18) & 63];
		out[n++] = a[(v >> 12) & 63];
		out[n++] = a[(v >> 6) & 63];
	}
	out[n] = '\0';
	return (n);
}

/* Value of a base64url character, or -1. */
static int
auth_b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	if (c == '-')
		return (62);
	if (c == '_')
		return (63);
	return (-1);
}

/* Strict base64url decoding (no padding, no stray bits); 0 or -1. */
int
auth_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen, size_t *outn)
{
	size_t		i, n = 0;
	uint32_t	v = 0;
	int		bits = 0, c;

	if (len % 4 == 1)
		return (-1);
	for (i = 0; i < len; i++) {
		if ((c = auth_b64url_val(in[i])) == -1)
			return (-1);
		v = (v << 6) | c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= outlen)
				return (-1);
			out[n++] = (v >> bits) & 0xff;
		}
	}
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return (-1);
	*outn = n;
	return (0);
}

/* Sign a token for a user document; caller frees. */
static char *
auth_jwt_make(const struct json *user)
{
	static const char	 header[] =
	    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct json		*claims;
	char			*payload, *token, *signing;
	char			 h64[64], p64[1024], s64[64];
	unsigned char		 mac[EVP_MAX_MD_SIZE];
	unsigned int		 maclen;
	size_t			 plen;
	time_t			 now = time(NULL);

	claims = json_new_object();
	json_set(claims, "sub", json_new_string(json_get_string(user,
	    "name")));
	json_set(claims, "uid", json_copy(json_get(user, "id")));
	json_set(claims, "pwv", json_copy(json_get(user, "passwordVersion")));
	json_set(claims, "iat", json_new_int(now));
	json_set(claims, "exp", json_new_int(now + auth->lifetime));
	payload = json_dump(claims, &plen);
	json_free(claims);

	auth_b64url_encode((const unsigned char *)header, strlen(header), h64,
	    sizeof h64);
	if (auth_b64url_encode((unsigned char *)payload, plen, p64,
	    sizeof p64) == -1)
		fatalx("auth: claims too long");
	free(payload);
	xasprintf(&signing, "%s.%s", h64, p64);
	HMAC(EVP_sha256(), auth->secret, sizeof auth->secret,
	    (unsigned char *)signing, strlen(signing), mac, &maclen);
	auth_b64url_encode(mac, maclen, s64, sizeof s64);
	xasprintf(&token, "%s.%s", signing, s64);
	free(signing);
	return (token);
}

/* Verify a JWT; the account name on success (caller frees). */
static int
auth_jwt_verify(const char *token, char **name)
{
	const char	*d1, *d2;
	unsigned char	 buf[1024], mac[EVP_MAX_MD_SIZE], sig[64];
	size_t		 len, siglen;
	unsigned int	 maclen;
	struct json	*hdr = NULL, *claims = NULL, *user;
	int		 ok = 0;
	int64_t		 now = time(NULL);

	if ((d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return (-1);
	if (auth_b64url_decode(token, d1 - token, buf, sizeof buf, &len) != 0 ||
	    (hdr = json_parse(buf, len, NULL)) == NULL)
		goto out;
	/* Only HS256: "none", RS256 and friends are refused. */
	if (json_get_string(hdr, "alg") == NULL ||
	    strcmp(json_get_string(hdr, "alg"), "HS256") != 0)
		goto out;
	if (auth_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig,
	    &siglen) != 0 || siglen != 32)
		goto out;
	HMAC(EVP_sha256(), auth->secret, sizeof auth->secret,
	    (const unsigned char *)token, d2 - token, mac, &maclen);
	if (CRYPTO_memcmp(mac, sig, 32) != 0)
		goto out;
	if (auth_b64url_decode(d1 + 1, d2 - d1 - 1, buf, sizeof buf,
	    &len) != 0 || (claims = json_parse(buf, len, NULL)) == NULL)
		goto out;
	if (!json_is_int(json_get(claims, "exp")) ||
	    json_int(json_get(claims, "exp")) <= now)
		goto out;
	user = auth_find(json_uint(json_get(claims, "uid")), NULL);
	if (user == NULL || !json_bool(json_get(user, "isActive")) ||
	    !json_equal(json_get(user, "passwordVersion"),
	    json_get(claims, "pwv")))
		goto out;
	*name = xstrdup(json_get_string(user, "name"));
	ok = 1;
out:
	json_free(hdr);
	json_free(claims);
	return (ok ? 0 : -1);
}

/*
 * Check a credential from a request: the API token or a JWT.  0 with
 * *name set (caller frees), or -1.
 */
int
auth_verify(const char *token, char **name)
{
	size_t	len = strlen(token), tlen = strlen(auth->api_token);

	if (len == tlen &&
	    CRYPTO_memcmp(token, auth->api_token, tlen) == 0) {
		*name = xstrdup("api-token");
		return (0);
	}
	return (auth_jwt_verify(token, name));
}

/* Is a name made of the characters account names may have? */
static int
auth_name_ok(const char *name)
{
	const char	*p;

	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("._-@", *p) == NULL)
			return (0);
	return (p != name);
}

/*
 * A name as it may appear in a log line: other characters become '?', so
 * that a login attempt cannot forge fields; static buffer.
 */
static const char *
auth_log_name(const char *name)
{
	static char	buf[AUTH_NAME_MAX + 1];
	size_t		i;

	for (i = 0; name[i] != '\0' && i < AUTH_NAME_MAX; i++)
		buf[i] = (isalnum((unsigned char)name[i]) ||
		    strchr("._-@", name[i]) != NULL) ? name[i] : '?';
	buf[i] = '\0';
	return (buf);
}

/*
 * How willingly a throttle slot is given to another name: an empty one
 * first, then one of a name that is no account (held back or not), then
 * an account's with no failures; an account's failures go last, so that
 * logins under made-up names cannot wipe out an account's delay.
 */
static int
auth_throttle_rank(const struct auth_throttle *t, uint64_t now)
{
	if (t->name[0] == '\0')
		return (4);
	if (!t->account)
		return (t->until <= now ? 3 : 2);
	return (t->fails == 0 ? 1 : 0);
}

/* The throttle slot of a name (reusing the most willing, then the LRU). */
static struct auth_throttle *
auth_throttle_get(const char *name, uint64_t now)
{
	struct auth_throttle	*t, *old = NULL;
	size_t			 i;
	int			 rank, best = -1;

	for (i = 0; i < AUTH_THROTTLE_SLOTS; i++) {
		t = &auth->throttle[i];
		if (t->name[0] != '\0' && strcmp(t->name, name) == 0)
			return (t);
		rank = auth_throttle_rank(t, now);
		if (rank > best || (rank == best && t->used < old->used)) {
			best = rank;
			old = t;
		}
	}
	memset(old, 0, sizeof *old);
	snprintf(old->name, sizeof old->name, "%s", name);
	old->account = auth_find(0, name) != NULL;
	return (old);
}

/*
 * Log in.  Returns AUTH_OK with *token (caller frees) and *user (public
 * form, caller frees), or another AUTH_* with *cause.  For AUTH_BADCRED
 * *delay_ms says how long the answer should be held back; for
 * AUTH_THROTTLED, how long until the name may try again.
 */
int
auth_login(const char *name, const char *pw, const char *peer, char **token,
    struct json **user, unsigned int *delay_ms, char **cause)
{
	struct auth_throttle	*t;
	struct json		*u;
	uint64_t		 now = util_now_ms();
	const char		*hash;
	char			 stamp[40], *why = NULL;
	int			 good;

	*delay_ms = 0;
	t = auth_throttle_get(name, now);
	t->used = now;
	if (t->until > now) {
		*delay_ms = t->until - now;
		xasprintf(cause, "too many failed logins for this account, "
		    "try again in %" PRIu64 " ms", t->until - now);
		log_warnx("auth: login throttled name=%s peer=%s",
		    auth_log_name(name), peer);
		return (AUTH_THROTTLED);
	}
	if (now / 1000 != auth->kdf_second) {
		auth->kdf_second = now / 1000;
		auth->kdf_count = 0;
	}
	if (++auth->kdf_count > AUTH_KDF_PER_SEC) {
		*delay_ms = 1000 - now % 1000;
		xasprintf(cause, "too many logins, try again in a second");
		log_warnx("auth: login rate limit name=%s peer=%s",
		    auth_log_name(name), peer);
		return (AUTH_THROTTLED);
	}

	u = auth_find(0, name);
	hash = json_get_string(u, "passwordHash");
	good = (hash != NULL && auth_check_password(pw, hash));
	if (!good) {
		t->fails++;
		*delay_ms = 250u << (t->fails > 7 ? 7 : t->fails - 1);
		if (*delay_ms > AUTH_DELAY_MAX_MS)
			*delay_ms = AUTH_DELAY_MAX_MS;
		t->until = now + *delay_ms;
		xasprintf(cause, "The account or password you entered is not "
		    "correct.");
		log_warnx("auth: login failed name=%s peer=%s failures=%u",
		    auth_log_name(name), peer, t->fails);
		return (AUTH_BADCRED);
	}
	if (!json_bool(json_get(u, "isActive")) || auth_expired(u)) {
		xasprintf(cause, "account %s is not active or has expired",
		    name);
		log_warnx("auth: login refused name=%s peer=%s reason=inactive",
		    auth_log_name(name), peer);
		return (AUTH_INACTIVE);
	}
	t->fails = 0;
	t->until = 0;
	util_iso8601(stamp, sizeof stamp, util_wall_us());
	json_set(u, "loginAt", json_new_string(stamp));
	if (store_put(auth->store, AUTH_COLL, json_uint(json_get(u, "id")), u,
	    &why) != 0) {
		log_warnx("auth: %s", why);
		free(why);
	}
	*token = auth_jwt_make(u);
	*user = auth_public(u);
	log_info("auth: login name=%s peer=%s", name, peer);
	return (AUTH_OK);
}

/* Has the account's expiredAfter date passed? */
static int
auth_expired(const struct json *u)
{
	const char	*when = json_get_string(u, "expiredAfter");
	int64_t		 us;

	if (when == NULL || util_parse_iso8601(when, &us) != 0)
		return (0);
	return (us <= util_wall_us());
}

/* The cached account by id, or by name if name is not NULL; borrowed. */
static struct json *
auth_find(uint64_t id, const char *name)
{
	size_t		 i;
	struct json	*u;

	for (i = 0; i < json_array_size(auth->users); i++) {
		u = json_array_get(auth->users, i);
		if (name != NULL) {
			if (strcmp(json_get_string(u, "name"), name) == 0)
				return (u);
		} else if (json_uint(json_get(u, "id")) == id)
			return (u);
	}
	return (NULL);
}

/* The form clients see: no hash, with roles and permissions; caller frees. */
static struct json *
auth_public(const struct json *u)
{
	struct json	*p, *roles, *role, *perms;

	p = json_copy(u);
	json_del(p, "passwordHash");
	json_del(p, "passwordVersion");
	roles = json_new_array();
	role = json_new_object();
	json_set(role, "id", json_new_int(1));
	json_set(role, "name", json_new_string("Administrator"));
	json_array_push(roles, role);
	json_set(p, "roles", roles);
	perms = json_new_array();
	json_array_push(perms, json_new_string("SYS_MAINTENANCE_RW"));
	json_array_push(perms, json_new_string("SYS_USER_RW"));
	json_set(p, "permissions", perms);
	return (p);
}

/* All accounts, public form; caller frees. */
struct json *
auth_user_list(void)
{
	struct json	*a;
	size_t		 i;

	a = json_new_array();
	for (i = 0; i < json_array_size(auth->users); i++)
		json_array_push(a, auth_public(json_array_get(auth->users, i)));
	return (a);
}

/* One account, public form; caller frees; NULL if unknown. */
struct json *
auth_user_get(uint64_t id)
{
	struct json	*u;

	if ((u = auth_find(id, NULL)) == NULL)
		return (NULL);
	return (auth_public(u));
}

/* One account by name, public form; caller frees; NULL if unknown. */
struct json *
auth_user_by_name(const char *name)
{
	struct json	*u;

	if ((u = auth_find(0, name)) == NULL)
		return (NULL);
	return (auth_public(u));
}

/* Rules for a new password; 0 or -1 with *cause. */
static int
auth_password_ok(const char *pw, char **cause)
{
	size_t	len = strlen(pw);

	if (len < AUTH_PASSWORD_MIN || len > AUTH_PASSWORD_MAX) {
		xasprintf(cause, "password: must be %d to %d characters long",
		    AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
		return (-1);
	}
	return (0);
}

/* Create an account; *out is its public form (caller frees). */
int
auth_user_add(const char *name, const char *pw, int active, const char *email,
    struct json **out, char **cause)
{
	struct json	*u;
	uint64_t	 id;
	char		 stamp[40], *hash;

	if (*name == '\0' || strlen(name) > AUTH_NAME_MAX) {
		xasprintf(cause, "name: must be 1 to %d characters long",
		    AUTH_NAME_MAX);
		return (-1);
	}
	if (!auth_name_ok(name)) {
		xasprintf(cause, "name: must be letters, digits, '.', '_', '-' "
		    "or '@'");
		return (-1);
	}
	if (auth_find(0, name) != NULL) {
		xasprintf(cause, "name: an account named %s already exists",
		    name);
		return (-1);
	}
	if (auth_password_ok(pw, cause) != 0)
		return (-1);
	if ((id = store_next_id(auth->store, AUTH_COLL, cause)) == 0)
		return (-1);
	hash = auth_hash_password(pw);
	util_iso8601(stamp, sizeof stamp, util_wall_us());
	u = json_new_object();
	json_set(u, "id", json_new_uint(id));
	json_set(u, "name", json_new_string(name));
	json_set(u, "email", email == NULL ? json_new_null() :
	    json_new_string(email));
	json_set(u, "isActive", json_new_bool(active));
	json_set(u, "expiredAfter", json_new_null());
	json_set(u, "createdAt", json_new_string(stamp));
	json_set(u, "changedPasswordAt", json_new_null());
	json_set(u, "loginAt", json_new_string("0001-01-01T00:00:00Z"));
	json_set(u, "passwordHash", json_new_string(hash));
	json_set(u, "passwordVersion", json_new_int(1));
	free(hash);
	if (store_put(auth->store, AUTH_COLL, id, u, cause) != 0) {
		json_free(u);
		return (-1);
	}
	json_array_push(auth->users, u);
	*out = auth_public(u);
	log_info("auth: account created name=%s id=%" PRIu64, name, id);
	return (0);
}

/*
 * Change the editable fields of an account (email, isActive); the body
 * was validated by the caller.  *out is the public form (caller frees).
 */
int
auth_user_update(uint64_t id, const struct json *body, struct json **out,
    char **cause)
{
	struct json	*u, *next, *v;

	if ((u = auth_find(id, NULL)) == NULL) {
		xasprintf(cause, "user %" PRIu64 " not found", id);
		return (-1);
	}
	if (json_get(body, "isActive") != NULL &&
	    !json_bool(json_get(body, "isActive")) &&
	    auth_active_others(id) == 0) {
		xasprintf(cause, "isActive: the last active account cannot be "
		    "deactivated");
		return (-1);
	}
	next = json_copy(u);
	if ((v = json_get(body, "email")) != NULL)
		json_set(next, "email", json_copy(v));
	if ((v = json_get(body, "isActive")) != NULL)
		json_set(next, "isActive", json_copy(v));
	if ((v = json_get(body, "expiredAfter")) != NULL)
		json_set(next, "expiredAfter", json_copy(v));
	if (store_put(auth->store, AUTH_COLL, id, next, cause) != 0) {
		json_free(next);
		return (-1);
	}
	json_merge(u, next);
	json_free(next);
	*out = auth_public(u);
	return (0);
}

/* Is pw the password of account id? */
int
auth_user_check(uint64_t id, const char *pw)
{
	const char	*hash;

	hash = json_get_string(auth_find(id, NULL), "passwordHash");
	return (hash != NULL && auth_check_password(pw, hash));
}

/* Set a new password; revokes the account's existing tokens. */
int
auth_user_password(uint64_t id, const char *pw, char **cause)
{
	struct json	*u, *next;
	char		 stamp[40], *hash;

	if ((u = auth_find(id, NULL)) == NULL) {
		xasprintf(cause, "user %" PRIu64 " not found", id);
		return (-1);
	}
	if (auth_password_ok(pw, cause) != 0)
		return (-1);
	next = json_copy(u);
	hash = auth_hash_password(pw);
	util_iso8601(stamp, sizeof stamp, util_wall_us());
	json_set(next, "passwordHash", json_new_string(hash));
	json_set(next, "passwordVersion",
	    json_new_int(json_int(json_get(u, "passwordVersion")) + 1));
	json_set(next, "changedPasswordAt", json_new_string(stamp));
	free(hash);
	if (store_put(auth->store, AUTH_COLL, id, next, cause) != 0) {
		json_free(next);
		return (-1);
	}
	json_merge(u, next);
	json_free(next);
	log_info("auth: password changed name=%s", json_get_string(u, "name"));
	return (0);
}

/* Active accounts other than id. */
static size_t
auth_active_others(uint64_t id)
{
	size_t		 i, n = 0;
	struct json	*u;

	for (i = 0; i < json_array_size(auth->users); i++) {
		u = json_array_get(auth->users, i);
		if (json_uint(json_get(u, "id")) != id &&
		    json_bool(json_get(u, "isActive")))
			n++;
	}
	return (n);
}

/* Delete an account; the last active account cannot be deleted. */
int
auth_user_delete(uint64_t id, char **cause)
{
	if (auth_find(id, NULL) == NULL) {
		xasprintf(cause, "user %" PRIu64 " not found", id);
		return (-1);
	}
	if (auth_active_others(id) == 0) {
		xasprintf(cause, "id: the last active account cannot be "
		    "deleted");
		return (-1);
	}
	return (auth_user_delete_any(id, cause));
}

/* Delete an account without asking whether it is the last one. */
static int
auth_user_delete_any(uint64_t id, char **cause)
{
	size_t		 i;
	ssize_t		 at = -1;
	struct json	*u;

	for (i = 0; i < json_array_size(auth->users); i++)
		if (json_uint(json_get(json_array_get(auth->users, i),
		    "id")) == id)
			at = i;
	if (at == -1) {
		xasprintf(cause, "user %" PRIu64 " not found", id);
		return (-1);
	}
	if (store_del(auth->store, AUTH_COLL, id, cause) != 0)
		return (-1);
	u = json_array_take(auth->users, at);
	log_info("auth: account deleted name=%s", json_get_string(u, "name"));
	json_free(u);
	return (0);
}

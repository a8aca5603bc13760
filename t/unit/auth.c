/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for authentication (auth.c): base64url against RFC 4648,
 * password hashes against RFC 7914's PBKDF2 vectors, JWTs (tampered,
 * re-signed by the test with another alg, expired, revoked by a password
 * change or a deletion), the API token, login throttling, the account
 * rules and the files of the data directory.  Runs on a real store in a
 * temporary directory.
 */

#include <sys/stat.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "tap.h"
#include "util.h"
#include "xmalloc.h"

static char		 auth_test_dir[] = "/tmp/uplinkd-auth-test.XXXXXX";
static struct store	*auth_test_store;
static unsigned char	 auth_test_secret[32];

/* Free a cause and forget it, so that a later success leaves NULL. */
static void
auth_test_forget(char **cause)
{
	free(*cause);
	*cause = NULL;
}

/* Read a one-line file of the data directory; caller frees. */
static char *
auth_test_read(const char *dir, const char *name)
{
	char	*path, *text, *cause = NULL;

	path = util_path(dir, name);
	text = util_read_file(path, 4096, NULL, &cause);
	free(path);
	if (text == NULL) {
		printf("# %s\n", cause);
		auth_test_forget(&cause);
		return (NULL);
	}
	text[strcspn(text, "\r\n")] = '\0';
	return (text);
}

/* The permission bits of a file of the data directory, or -1. */
static int
auth_test_mode(const char *name)
{
	struct stat	 st;
	char		*path;
	int		 rc;

	path = util_path(auth_test_dir, name);
	rc = stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
	free(path);
	return (rc);
}

/* Sign header.payload with key the way auth.c does; caller frees. */
static char *
auth_test_sign(const char *header, const char *payload,
    const unsigned char *key)
{
	char		 h64[512], p64[1024], s64[128], *signing, *token;
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen;

	auth_b64url_encode((const unsigned char *)header, strlen(header), h64,
	    sizeof h64);
	auth_b64url_encode((const unsigned char *)payload, strlen(payload),
	    p64, sizeof p64);
	xasprintf(&signing, "%s.%s", h64, p64);
	HMAC(EVP_sha256(), key, 32, (unsigned char *)signing, strlen(signing),
	    mac, &maclen);
	auth_b64url_encode(mac, maclen, s64, sizeof s64);
	xasprintf(&token, "%s.%s", signing, s64);
	free(signing);
	return (token);
}

/* Does auth_verify accept token as name?  Borrows token. */
static int
auth_test_accepts(const char *token, const char *name)
{
	char	*who = NULL;
	int	 good;

	good = auth_verify(token, &who) == 0 && who != NULL &&
	    strcmp(who, name) == 0;
	free(who);
	return (good);
}

/* Does auth_verify refuse token (and leave the name alone)? */
static int
auth_test_refuses(const char *token)
{
	char	*who = NULL;

	if (auth_verify(token, &who) == 0 || who != NULL) {
		printf("#   accepted %s as %s\n", token, who);
		free(who);
		return (0);
	}
	return (1);
}

/* A claims set for a crafted token; caller frees. */
static char *
auth_test_claims(const char *uid, const char *pwv, const char *exp)
{
	char	*s;

	xasprintf(&s, "{\"sub\":\"admin\",\"uid\":%s,\"pwv\":%s,\"iat\":%lld"
	    "%s%s}", uid, pwv, (long long)time(NULL), exp != NULL ?
	    ",\"exp\":" : "", exp != NULL ? exp : "");
	return (s);
}

/* Sign crafted claims with the real secret and check the verdict. */
static void
auth_test_crafted(const char *header, const char *uid, const char *pwv,
    const char *exp, int accept, const char *name)
{
	char	*claims, *token;

	claims = auth_test_claims(uid, pwv, exp);
	token = auth_test_sign(header, claims, auth_test_secret);
	if (accept)
		tap_ok(auth_test_accepts(token, "admin"), name);
	else
		tap_ok(auth_test_refuses(token), name);
	free(token);
	free(claims);
}

/* Log in; the AUTH_* result, with *token (caller frees) on success. */
static int
auth_test_login(const char *name, const char *pw, char **token,
    unsigned int *delay, char **cause)
{
	struct json	*user = NULL;
	unsigned int	 d = 0;
	int		 rc;

	*token = NULL;
	*cause = NULL;
	rc = auth_login(name, pw, "test", token, &user, &d, cause);
	json_free(user);
	if (delay != NULL)
		*delay = d;
	return (rc);
}

/* Add an account; its id, or 0. */
static uint64_t
auth_test_add(const char *name, const char *pw, int active)
{
	struct json	*u = NULL;
	char		*cause = NULL;
	uint64_t	 id;

	if (auth_user_add(name, pw, active, NULL, &u, &cause) != 0) {
		printf("#   add %s: %s\n", name, cause);
		auth_test_forget(&cause);
		return (0);
	}
	id = json_uint(json_get(u, "id"));
	json_free(u);
	return (id);
}

/* Sleep ms milliseconds. */
static void
auth_test_sleep(unsigned int ms)
{
	struct timespec	ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1)
		;
}

/* Wait for the start of a monotonic second (the login budget's window). */
static void
auth_test_new_second(void)
{
	uint64_t	start = util_now_ms() / 1000;

	while (util_now_ms() / 1000 == start)
		auth_test_sleep(5);
}

static int
auth_test_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

/* base64url: RFC 4648 section 10 vectors, the URL alphabet, strictness. */
static void
auth_test_base64(void)
{
	static const char	*vec[][2] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" }
	};
	static const char	*bad[] = { "Zg==", "Zm8=", "Z", "A", "Zm9vY",
	    "Zm9vA", "Zh",
	    "Zm9", "Zm+v", "Zm/v", "Zm9v\n\n", "Zm 9", "Zm9vYg=",
	    "\xc3\xa9xx" };
	unsigned char		 out[300], in[256];
	char			 enc[400];
	size_t			 i, n, len;
	int			 good;

	for (i = 0; i < sizeof vec / sizeof *vec; i++) {
		good = auth_b64url_encode((const unsigned char *)vec[i][0],
		    strlen(vec[i][0]), enc, sizeof enc) ==
		    (int)strlen(vec[i][1]) && strcmp(enc, vec[i][1]) == 0 &&
		    auth_b64url_decode(vec[i][1], strlen(vec[i][1]), out,
		    sizeof out, &n) == 0 && n == strlen(vec[i][0]) &&
		    memcmp(out, vec[i][0], n) == 0;
		if (!tap_ok(good, "RFC 4648 vector both ways"))
			printf("#   \"%s\" -> \"%s\", want \"%s\"\n", vec[i][0],
			    enc, vec[i][1]);
	}
	in[0] = 0xfb;
	in[1] = 0xff;
	in[2] = 0xbf;
	auth_b64url_encode(in, 3, enc, sizeof enc);
	tap_is_str(enc, "-_-_", "0xfbffbf uses - and _ (not + and /)");
	auth_b64url_encode(in, 2, enc, sizeof enc);
	tap_is_str(enc, "-_8", "two bytes give three characters, no padding");
	tap_ok(auth_b64url_encode(in, 3, enc, 5) == 4 &&
	    auth_b64url_encode(in, 3, enc, 4) == -1,
	    "encoding wants room for the NUL, or gives -1");
	tap_ok(auth_b64url_decode("Zm9v", 4, out, 3, &n) == 0 && n == 3 &&
	    auth_b64url_decode("Zm9v", 4, out, 2, &n) == -1,
	    "decoding stops at the end of the output buffer");

	good = 1;
	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (auth_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out,
		    &n) != -1) {
			printf("#   accepted \"%s\"\n", bad[i]);
			good = 0;
		}
	}
	tap_ok(good, "padding, length%4==1, stray bits, + / blanks and "
	    "non-ASCII are refused");
	tap_ok(auth_b64url_decode("Zm\0v", 4, out, sizeof out, &n) == -1,
	    "a NUL inside the input is refused");

	good = 1;
	for (len = 0; len <= 256 && good; len += 1 + len / 8) {
		for (i = 0; i < len; i++)
			in[i] = (unsigned char)(i * 37 + len);
		n = auth_b64url_encode(in, len, enc, sizeof enc);
		good = (n == (len * 4 + 2) / 3) && strspn(enc,
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_") == n && auth_b64url_decode(enc, n, out,
		    sizeof out, &n) == 0 && n == len &&
		    memcmp(in, out, len) == 0;
	}
	tap_ok(good, "every length up to 256 bytes round-trips");
}

/* Password hashes. */
static void
auth_test_passwords(void)
{
	char	*h1, *h2, *h3, *bad, *p;
	int	 good;

	tap_ok(auth_check_password("passwd", "pbkdf2-sha256$1$c2FsdA$"
	    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw"),
	    "RFC 7914 PBKDF2-HMAC-SHA256 vector (passwd/salt/1) verifies");
	tap_ok(auth_check_password("Password", "pbkdf2-sha256$80000$TmFDbA$"
	    "TdzY9guYviGDDO5e8icB-WQaRBjQTAQUrv8Ih2s0q1Y"),
	    "RFC 7914 vector (Password/NaCl/80000) verifies");
	tap_ok(!auth_check_password("password", "pbkdf2-sha256$80000$TmFDbA$"
	    "TdzY9guYviGDDO5e8icB-WQaRBjQTAQUrv8Ih2s0q1Y"),
	    "and a different password does not");

	h1 = auth_hash_password("correct horse");
	h2 = auth_hash_password("correct horse");
	tap_ok(strncmp(h1, "pbkdf2-sha256$1000$", 19) == 0 &&
	    strcmp(h1, h2) != 0, "hashes carry their iteration count and a "
	    "fresh salt");
	tap_ok(auth_check_password("correct horse", h1) &&
	    auth_check_password("correct horse", h2),
	    "the right password matches both");
	tap_ok(!auth_check_password("correct horsE", h1) &&
	    !auth_check_password("", h1) &&
	    !auth_check_password("correct horse ", h1),
	    "near misses do not match");
	auth_set_iterations(2000);
	h3 = auth_hash_password("correct horse");
	auth_set_iterations(1000);
	tap_ok(strncmp(h3, "pbkdf2-sha256$2000$", 19) == 0 &&
	    auth_check_password("correct horse", h3) &&
	    auth_check_password("correct horse", h1),
	    "hashes made with 2000 and 1000 iterations both verify");

	/* The same string with another count must fail. */
	bad = xstrdup(h1);
	p = strstr(bad, "$1000$");
	memcpy(p, "$1001$", 6);
	tap_ok(!auth_check_password("correct horse", bad),
	    "changing the stored iteration count breaks the match");
	free(bad);

	good = 1;
	{
		const char	*malformed[] = { "", "pbkdf2-sha256$",
		    "pbkdf2-sha256$1000$", "pbkdf2-sha256$0$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "pbkdf2-sha256$x$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "pbkdf2-sha256$-1$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "pbkdf2-sha256$99999999999$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "pbkdf2-sha1$1$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "pbkdf2-sha256$1$c2FsdA",
		    "pbkdf2-sha256$1$c2F!dA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "pbkdf2-sha256$1$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INr",
		    "pbkdf2-sha256$1$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLwAA",
		    "pbkdf2-sha256$1$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw==",
		    "$pbkdf2-sha256$1$c2FsdA$"
		    "VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		    "passwd" };
		size_t		 i;

		for (i = 0; i < sizeof malformed / sizeof *malformed; i++) {
			if (auth_check_password("passwd", malformed[i])) {
				printf("#   matched \"%s\"\n", malformed[i]);
				good = 0;
			}
		}
	}
	tap_ok(good, "malformed stored strings never match (no count, zero, "
	    "negative or huge counts, other KDF, bad base64, short or long "
	    "hash, padding, the plain password)");
	free(h1);
	free(h2);
	free(h3);
}

/* JWTs from auth_login and crafted ones. */
static void
auth_test_jwt(const char *adminpw)
{
	struct json	*user = NULL, *claims;
	unsigned char	 buf[1024], wrongkey[32];
	char		*token = NULL, *cause = NULL, *t, *copy, *exp;
	const char	*d1, *d2;
	unsigned int	 delay;
	size_t		 n, i;
	int		 rc, good;
	static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

	rc = auth_login("admin", adminpw, "test", &token, &user, &delay,
	    &cause);
	tap_ok(rc == AUTH_OK && token != NULL && delay == 0 &&
	    strcmp(json_get_string(user, "name"), "admin") == 0 &&
	    json_get(user, "passwordHash") == NULL &&
	    json_get(user, "passwordVersion") == NULL &&
	    json_array_size(json_get(user, "roles")) == 1,
	    "admin logs in with the first-start password; public user form");
	json_free(user);
	auth_test_forget(&cause);
	if (token == NULL)
		return;
	tap_ok(auth_test_accepts(token, "admin"), "auth_verify accepts the "
	    "login token as admin");

	d1 = strchr(token, '.');
	d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
	good = d2 != NULL && auth_b64url_decode(token, d1 - token, buf,
	    sizeof buf, &n) == 0 && n == strlen(hs256) &&
	    memcmp(buf, hs256, n) == 0;
	tap_ok(good, "the header is {\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	claims = NULL;
	if (d2 != NULL && auth_b64url_decode(d1 + 1, d2 - d1 - 1, buf,
	    sizeof buf, &n) == 0)
		claims = json_parse(buf, n, NULL);
	tap_ok(claims != NULL &&
	    strcmp(json_get_string(claims, "sub"), "admin") == 0 &&
	    json_uint(json_get(claims, "uid")) == 1 &&
	    json_int(json_get(claims, "exp")) -
	    json_int(json_get(claims, "iat")) == 3600 &&
	    json_int(json_get(claims, "pwv")) == 1,
	    "claims: sub, uid, pwv, and exp an hour after iat");
	json_free(claims);

	/* Flip one character in each part. */
	good = 1;
	for (i = 0; token[i] != '\0'; i += 7) {
		if (token[i] == '.')
			continue;
		copy = xstrdup(token);
		copy[i] = copy[i] == 'A' ? 'B' : 'A';
		good &= auth_test_refuses(copy);
		free(copy);
	}
	tap_ok(good, "a token with any one character changed is refused");
	copy = xstrdup(token);
	copy[strlen(copy) - 1] = '\0';
	t = NULL;
	xasprintf(&t, "%s.", token);
	tap_ok(auth_test_refuses(copy) && auth_test_refuses(t) &&
	    auth_test_refuses("") && auth_test_refuses("a.b") &&
	    auth_test_refuses("..") && auth_test_refuses(d2 + 1),
	    "truncated, extra dot, empty, two parts, signature only: refused");
	free(copy);
	free(t);
	xasprintf(&t, "%.*s.%s", (int)(d2 - token), token, "");
	tap_ok(auth_test_refuses(t), "a token without its signature refused");
	free(t);
	good = auth_b64url_decode(d2 + 1, strlen(d2 + 1), buf, sizeof buf,
	    &n) == 0 && n == 32;
	buf[n++] = 0;
	copy = xmalloc(100);
	auth_b64url_encode(buf, n, copy, 100);
	xasprintf(&t, "%.*s.%s", (int)(d2 - token), token, copy);
	tap_ok(good && auth_test_refuses(t), "the right signature with a byte "
	    "appended is refused");
	free(copy);
	free(t);

	/* Crafted tokens, signed with the real secret. */
	xasprintf(&exp, "%lld", (long long)time(NULL) + 600);
	auth_test_crafted(hs256, "1", "1", exp, 1,
	    "a token the test signs itself is accepted (crafting is right)");
	auth_test_crafted("{\"alg\":\"HS256\"}", "1", "1", exp, 1,
	    "typ is not required");
	auth_test_crafted("{\"alg\":\"none\",\"typ\":\"JWT\"}", "1", "1", exp,
	    0, "alg none (even signed) is refused");
	auth_test_crafted("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "1", "1", exp,
	    0, "alg HS512 is refused");
	auth_test_crafted("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", "1", "1", exp,
	    0, "alg hs256 (lower case) is refused");
	auth_test_crafted("{\"typ\":\"JWT\"}", "1", "1", exp, 0,
	    "no alg is refused");
	auth_test_crafted("{\"alg\":[\"HS256\"]}", "1", "1", exp, 0,
	    "alg as an array is refused");
	auth_test_crafted("[\"HS256\"]", "1", "1", exp, 0,
	    "a header that is not an object is refused");
	auth_test_crafted(hs256, "1", "2", exp, 0,
	    "the wrong password version is refused");
	auth_test_crafted(hs256, "1", "\"1\"", exp, 0,
	    "the password version as a string is refused");
	auth_test_crafted(hs256, "99", "1", exp, 0,
	    "an unknown uid is refused");
	auth_test_crafted(hs256, "\"1\"", "1", exp, 0,
	    "a uid as a string is refused");
	auth_test_crafted(hs256, "1", "1", NULL, 0,
	    "a token without exp is refused");
	free(exp);
	xasprintf(&exp, "%lld", (long long)time(NULL) - 10);
	auth_test_crafted(hs256, "1", "1", exp, 0,
	    "an expired token (exp 10 s ago) is refused");
	free(exp);
	xasprintf(&exp, "\"%lld\"", (long long)time(NULL) + 600);
	auth_test_crafted(hs256, "1", "1", exp, 0,
	    "exp as a string is refused");
	free(exp);
	xasprintf(&exp, "%lld.5", (long long)time(NULL) + 600);
	auth_test_crafted(hs256, "1", "1", exp, 0,
	    "exp with a fraction is refused");
	free(exp);
	xasprintf(&exp, "%lld", (long long)time(NULL) + 600);
	memset(wrongkey, 0x5a, sizeof wrongkey);
	t = auth_test_claims("1", "1", exp);
	copy = auth_test_sign(hs256, t, wrongkey);
	tap_ok(auth_test_refuses(copy), "a token signed with another key is "
	    "refused");
	free(copy);
	free(t);
	copy = auth_test_sign(hs256, "not json", auth_test_secret);
	tap_ok(auth_test_refuses(copy), "claims that are not JSON: refused");
	free(copy);
	free(exp);

	auth_set_lifetime(120);
	free(token);
	rc = auth_test_login("admin", adminpw, &token, NULL, &cause);
	claims = NULL;
	if (rc == AUTH_OK && (d1 = strchr(token, '.')) != NULL &&
	    (d2 = strchr(d1 + 1, '.')) != NULL &&
	    auth_b64url_decode(d1 + 1, d2 - d1 - 1, buf, sizeof buf, &n) == 0)
		claims = json_parse(buf, n, NULL);
	tap_ok(claims != NULL && json_int(json_get(claims, "exp")) -
	    json_int(json_get(claims, "iat")) == 120,
	    "auth_set_lifetime(120): new tokens live two minutes");
	json_free(claims);
	auth_set_lifetime(3600);
	free(token);
	auth_test_forget(&cause);
}

/* Tokens die with their account's password or the account itself. */
static void
auth_test_revocation(void)
{
	struct json	*body, *out = NULL;
	char		*t1 = NULL, *t2 = NULL, *cause = NULL;
	uint64_t	 carol;
	int		 rc;

	carol = auth_test_add("carol", "carolpass1", 1);
	rc = auth_test_login("carol", "carolpass1", &t1, NULL, &cause);
	tap_ok(rc == AUTH_OK && auth_test_accepts(t1, "carol"),
	    "carol's token is good");
	auth_test_forget(&cause);
	tap_ok(auth_user_password(carol, "carolpass2", &cause) == 0 &&
	    auth_test_refuses(t1), "after auth_user_password her old token "
	    "is refused");
	auth_test_forget(&cause);
	tap_ok(auth_test_login("carol", "carolpass1", &t2, NULL, &cause) ==
	    AUTH_BADCRED && t2 == NULL, "the old password no longer logs in");
	auth_test_forget(&cause);
	free(t1);
	auth_test_sleep(300);
	rc = auth_test_login("carol", "carolpass2", &t1, NULL, &cause);
	tap_ok(rc == AUTH_OK && auth_test_accepts(t1, "carol"),
	    "the new password logs in and its token is good");
	auth_test_forget(&cause);

	body = json_new_object();
	json_set(body, "isActive", json_new_bool(0));
	tap_ok(auth_user_update(carol, body, &out, &cause) == 0 &&
	    !json_bool(json_get(out, "isActive")) && auth_test_refuses(t1),
	    "a deactivated account's token is refused");
	json_free(body);
	json_free(out);
	out = NULL;
	auth_test_forget(&cause);
	tap_ok(auth_test_login("carol", "carolpass2", &t2, NULL, &cause) ==
	    AUTH_INACTIVE && strstr(cause, "not active") != NULL,
	    "a deactivated account cannot log in (AUTH_INACTIVE)");
	auth_test_forget(&cause);
	body = json_new_object();
	json_set(body, "isActive", json_new_bool(1));
	if (auth_user_update(carol, body, &out, &cause) != 0)
		auth_test_forget(&cause);
	json_free(body);
	json_free(out);
	out = NULL;
	tap_ok(auth_test_accepts(t1, "carol"), "reactivated: the token is good "
	    "again");
	tap_ok(auth_user_delete(carol, &cause) == 0 && auth_test_refuses(t1),
	    "a deleted account's token is refused");
	auth_test_forget(&cause);
	tap_ok(auth_test_login("carol", "carolpass2", &t2, NULL, &cause) ==
	    AUTH_BADCRED, "a deleted account cannot log in");
	auth_test_forget(&cause);
	free(t1);

	body = json_new_object();
	carol = auth_test_add("erin", "erinpass1", 1);
	json_set(body, "expiredAfter", json_new_string("2001-01-01T00:00:00Z"));
	if (auth_user_update(carol, body, &out, &cause) != 0)
		auth_test_forget(&cause);
	json_free(body);
	json_free(out);
	tap_ok(auth_test_login("erin", "erinpass1", &t2, NULL, &cause) ==
	    AUTH_INACTIVE, "an account past its expiredAfter date cannot log "
	    "in");
	auth_test_forget(&cause);
	if (auth_user_delete(carol, &cause) != 0)
		auth_test_forget(&cause);
}

/* The static API token, and rotating it. */
static void
auth_test_api_token(void)
{
	char	*tok, *path, *cause = NULL, *longer;
	char	 fresh[] = "0123456789abcdef0123";

	tok = auth_test_read(auth_test_dir, "api-token");
	tap_ok(tok != NULL && strlen(tok) == 64 &&
	    strspn(tok, "0123456789abcdef") == 64,
	    "the API token is 64 random hex digits");
	tap_ok(auth_test_accepts(tok, "api-token"), "the API token is accepted "
	    "as \"api-token\"");
	xasprintf(&longer, "%s\n", tok);
	tap_ok(auth_test_refuses(longer), "the token with a newline is not");
	free(longer);

	path = util_path(auth_test_dir, "api-token");
	if (util_write_file(path, fresh, strlen(fresh), 0600, &cause) != 0)
		auth_test_forget(&cause);
	tap_ok(auth_reload(&cause) == 0 && auth_test_accepts(fresh,
	    "api-token") && auth_test_refuses(tok),
	    "auth_reload picks up a rotated token; the old one is refused");
	if (util_write_file(path, "short\n", 6, 0600, &cause) != 0)
		auth_test_forget(&cause);
	cause = NULL;
	tap_ok(auth_reload(&cause) == -1 && cause != NULL &&
	    strstr(cause, "shorter than 16 characters") != NULL &&
	    auth_test_accepts(fresh, "api-token"),
	    "a too-short token file is refused and the old token stays");
	auth_test_forget(&cause);
	if (util_write_file(path, tok, strlen(tok), 0600, &cause) != 0)
		auth_test_forget(&cause);
	cause = NULL;
	if (auth_reload(&cause) != 0)
		auth_test_forget(&cause);
	free(path);
	free(tok);
}

/* Failed logins slow the account name down; the global budget holds. */
static void
auth_test_throttle(const char *adminpw)
{
	char		*tok = NULL, *cause = NULL, name[32];
	unsigned int	 d1, d2, d3, d4;
	int		 r1, r2, r3, r4, rc, i;
	uint64_t	 id;

	auth_test_add("dave", "davepass1", 1);
	auth_test_new_second();
	r1 = auth_test_login("dave", "wrong-pass", &tok, &d1, &cause);
	tap_ok(r1 == AUTH_BADCRED && d1 == 250 &&
	    strcmp(cause, "The account or password you entered is not "
	    "correct.") == 0, "a wrong password: AUTH_BADCRED, 250 ms delay");
	auth_test_forget(&cause);
	r2 = auth_test_login("dave", "davepass1", &tok, &d2, &cause);
	tap_ok(r2 == AUTH_THROTTLED && tok == NULL &&
	    strstr(cause, "try again in") != NULL,
	    "an immediate retry, even with the right password: AUTH_THROTTLED");
	auth_test_forget(&cause);
	rc = auth_test_login("admin", adminpw, &tok, NULL, &cause);
	tap_ok(rc == AUTH_OK, "another account is not slowed down");
	free(tok);
	auth_test_forget(&cause);

	auth_test_sleep(d1 + 20);
	r2 = auth_test_login("dave", "wrong-again", &tok, &d2, &cause);
	auth_test_forget(&cause);
	auth_test_sleep(d2 + 20);
	r3 = auth_test_login("dave", "wrong-thrice", &tok, &d3, &cause);
	auth_test_forget(&cause);
	tap_ok(r2 == AUTH_BADCRED && r3 == AUTH_BADCRED && d2 == 500 &&
	    d3 == 1000, "the delay doubles with each failure: 500, 1000 ms");
	auth_test_sleep(d3 + 20);
	r4 = auth_test_login("dave", "davepass1", &tok, &d4, &cause);
	tap_ok(r4 == AUTH_OK && d4 == 0 && tok != NULL,
	    "after the wait the right password works");
	free(tok);
	auth_test_forget(&cause);
	r1 = auth_test_login("dave", "wrong-pass", &tok, &d1, &cause);
	tap_ok(r1 == AUTH_BADCRED && d1 == 250,
	    "a success resets the count: the next failure waits 250 ms");
	auth_test_forget(&cause);

	r1 = auth_test_login("nobody-here", "whatever1", &tok, &d1, &cause);
	tap_ok(r1 == AUTH_BADCRED && d1 == 250 && strcmp(cause, "The account "
	    "or password you entered is not correct.") == 0,
	    "an unknown name gets the same answer and delay as a wrong "
	    "password");
	auth_test_forget(&cause);

	/* At most 20 logins are tried per second, whatever the names. */
	auth_test_new_second();
	for (i = 0, rc = AUTH_BADCRED; i < 20 && rc == AUTH_BADCRED; i++) {
		snprintf(name, sizeof name, "guess%d", i);
		rc = auth_test_login(name, "password1", &tok, NULL, &cause);
		auth_test_forget(&cause);
	}
	r2 = auth_test_login("guess-last", "password1", &tok, NULL, &cause);
	tap_ok(rc == AUTH_BADCRED && r2 == AUTH_THROTTLED &&
	    strstr(cause, "too many logins") != NULL,
	    "the 21st login within a second is refused without a hash");
	auth_test_forget(&cause);
	auth_test_new_second();
	rc = auth_test_login("admin", adminpw, &tok, NULL, &cause);
	tap_ok(rc == AUTH_OK, "the next second logins work again");
	free(tok);
	auth_test_forget(&cause);

	/*
	 * Logins under 300 made-up names (more than the table has slots;
	 * 15 s at 20 a second) do not wipe out an account's failures.
	 */
	id = auth_test_add("heidi", "heidipass1", 1);
	auth_test_new_second();
	r1 = auth_test_login("heidi", "wrong-pass", &tok, &d1, &cause);
	auth_test_forget(&cause);
	auth_test_sleep(d1 + 20);
	r2 = auth_test_login("heidi", "wrong-again", &tok, &d2, &cause);
	auth_test_forget(&cause);
	for (i = 0; i < 300; ) {
		snprintf(name, sizeof name, "made-up-%d", i);
		rc = auth_test_login(name, "password1", &tok, NULL, &cause);
		auth_test_forget(&cause);
		if (rc == AUTH_THROTTLED)
			auth_test_new_second();
		else
			i++;
	}
	r3 = auth_test_login("heidi", "wrong-thrice", &tok, &d3, &cause);
	auth_test_forget(&cause);
	tap_ok(r1 == AUTH_BADCRED && r2 == AUTH_BADCRED && r3 ==
	    AUTH_BADCRED && d3 == 1000, "after 300 made-up names an "
	    "account's third failure still waits 1000 ms");
	if (d3 != 1000)
		printf("#   delays %u, %u, %u\n", d1, d2, d3);
	if (auth_user_delete(id, &cause) != 0)
		auth_test_forget(&cause);
}

/* Account rules. */
static void
auth_test_accounts(void)
{
	struct json	*u, *body, *list;
	char		*cause = NULL, name[80], pw[140];
	uint64_t	 id, id2, last;
	int		 good;

	tap_ok(auth_user_add("admin", "whatever1", 1, NULL, &u, &cause) == -1 &&
	    strcmp(cause, "name: an account named admin already exists") == 0,
	    "a duplicate name is refused");
	auth_test_forget(&cause);
	tap_ok(auth_user_add("frank", "1234567", 1, NULL, &u, &cause) == -1 &&
	    strcmp(cause, "password: must be 8 to 128 characters long") == 0,
	    "a 7-character password is refused");
	auth_test_forget(&cause);
	memset(pw, 'p', 129);
	pw[129] = '\0';
	tap_ok(auth_user_add("frank", pw, 1, NULL, &u, &cause) == -1,
	    "a 129-character password is refused");
	auth_test_forget(&cause);
	pw[128] = '\0';
	id = auth_test_add("frank", pw, 1);
	tap_ok(id != 0 && auth_user_check(id, pw) &&
	    !auth_user_check(id, "pppp"), "128 characters are fine; "
	    "auth_user_check knows it");
	good = 1;
	{
		const char	*bad[] = { "", "a b", "tab\there", "del\x7f",
		    "nl\n" };
		size_t		 i;

		for (i = 0; i < sizeof bad / sizeof *bad; i++) {
			if (auth_user_add(bad[i], "goodpass1", 1, NULL, &u,
			    &cause) == 0) {
				printf("#   accepted name \"%s\"\n", bad[i]);
				json_free(u);
				good = 0;
			} else
				auth_test_forget(&cause);
		}
	}
	tap_ok(good, "empty names, blanks and control characters are refused");
	memset(name, 'n', 65);
	name[65] = '\0';
	tap_ok(auth_user_add(name, "goodpass1", 1, NULL, &u, &cause) == -1 &&
	    strstr(cause, "1 to 64") != NULL, "a 65-byte name is refused");
	auth_test_forget(&cause);
	name[64] = '\0';
	id2 = auth_test_add(name, "goodpass1", 1);
	tap_ok(id2 != 0, "a 64-byte name is fine");
	if (auth_user_delete(id2, &cause) != 0)
		auth_test_forget(&cause);
	tap_ok(auth_user_add("jos\xc3\xa9", "goodpass1", 1, NULL, &u,
	    &cause) == -1 && strcmp(cause, "name: must be letters, digits, "
	    "'.', '_', '-' or '@'") == 0, "a name outside [A-Za-z0-9._-@] is "
	    "refused, naming the rule");
	auth_test_forget(&cause);
	id2 = auth_test_add("a.b_c-d@e", "goodpass1", 1);
	u = auth_user_by_name("a.b_c-d@e");
	tap_ok(id2 != 0 && u != NULL, "a.b_c-d@e is a good name");
	json_free(u);
	if (auth_user_delete(id2, &cause) != 0)
		auth_test_forget(&cause);
	last = id2;

	tap_ok(auth_user_delete(99999, &cause) == -1 &&
	    strcmp(cause, "user 99999 not found") == 0 &&
	    auth_user_get(99999) == NULL && auth_user_by_name("zed") == NULL,
	    "unknown ids and names are not found");
	auth_test_forget(&cause);
	tap_ok(auth_user_password(id, "short", &cause) == -1 &&
	    strstr(cause, "password: must be") != NULL,
	    "a short new password is refused");
	auth_test_forget(&cause);

	/* The last active account. */
	list = auth_user_list();
	tap_ok(json_array_size(list) >= 3 &&
	    json_get(json_array_get(list, 0), "passwordHash") == NULL,
	    "the account list hides the hashes");
	json_free(list);
	tap_ok(auth_user_delete(id, &cause) == 0, "frank is deleted");
	auth_test_forget(&cause);
	u = auth_user_by_name("dave");
	if (auth_user_delete(json_uint(json_get(u, "id")), &cause) != 0)
		auth_test_forget(&cause);
	json_free(u);
	id2 = auth_test_add("grace", "gracepass", 0);
	u = auth_user_get(id2);
	tap_ok(u != NULL && !json_bool(json_get(u, "isActive")) &&
	    json_uint(json_get(u, "id")) == last + 1,
	    "an inactive account; deleted ids are not reused");
	json_free(u);
	body = json_new_object();
	json_set(body, "isActive", json_new_bool(0));
	list = NULL;
	tap_ok(auth_user_update(1, body, &list, &cause) == -1 &&
	    strcmp(cause, "isActive: the last active account cannot be "
	    "deactivated") == 0, "deactivating the last active account is "
	    "refused");
	json_free(body);
	auth_test_forget(&cause);
	tap_ok(auth_user_delete(1, &cause) == -1 && strcmp(cause,
	    "id: the last active account cannot be deleted") == 0,
	    "deleting the last active account is refused");
	auth_test_forget(&cause);
	tap_ok(auth_user_delete(id2, &cause) == 0,
	    "an inactive account can go while an active one is left");
	auth_test_forget(&cause);
}

int
main(void)
{
	char	*adminpw, *secret, *cause = NULL, *path, *tok1, *tok2;
	char	*dir2, *jwt = NULL;
	size_t	 i;
	int	 good;

	log_init(1, LOG_LEVEL_WARN);
	if (mkdtemp(auth_test_dir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	path = util_path(auth_test_dir, "config.tch");
	if ((auth_test_store = store_open(path, &cause)) == NULL ||
	    auth_init(auth_test_store, auth_test_dir, &cause) != 0) {
		printf("Bail out! %s\n", cause);
		return (1);
	}
	free(path);
	auth_set_iterations(1000);

	tap_ok(auth_test_mode("api-token") == 0600 &&
	    auth_test_mode("jwt-secret") == 0600 &&
	    auth_test_mode("admin-password") == 0600,
	    "first start: api-token, jwt-secret and admin-password are 0600");
	adminpw = auth_test_read(auth_test_dir, "admin-password");
	secret = auth_test_read(auth_test_dir, "jwt-secret");
	good = secret != NULL && strlen(secret) == 64 &&
	    strspn(secret, "0123456789abcdef") == 64;
	tap_ok(good && adminpw != NULL && strlen(adminpw) == 16,
	    "the secret is 64 hex digits, the admin password 16");
	if (!good || adminpw == NULL) {
		printf("Bail out! no secret\n");
		return (1);
	}
	for (i = 0; i < 32; i++) {
		unsigned int	byte;

		sscanf(secret + 2 * i, "%2x", &byte);
		auth_test_secret[i] = byte;
	}

	auth_test_base64();
	auth_test_passwords();
	auth_test_jwt(adminpw);
	auth_test_revocation();
	auth_test_api_token();
	auth_test_throttle(adminpw);
	auth_test_accounts();

	/* A restart keeps the accounts, the token and the secret. */
	tok1 = auth_test_read(auth_test_dir, "api-token");
	if (auth_test_login("admin", adminpw, &jwt, NULL, &cause) != AUTH_OK)
		printf("# %s\n", cause);
	auth_test_forget(&cause);
	auth_free();
	cause = NULL;
	tap_ok(auth_init(auth_test_store, auth_test_dir, &cause) == 0,
	    "auth_init again on the same directory");
	tok2 = auth_test_read(auth_test_dir, "api-token");
	tap_ok(tok1 != NULL && tok2 != NULL && strcmp(tok1, tok2) == 0 &&
	    auth_test_accepts(tok1, "api-token") && jwt != NULL &&
	    auth_test_accepts(jwt, "admin"),
	    "after a restart the API token and the old JWT still work");
	free(tok1);
	free(tok2);
	free(jwt);
	auth_free();
	store_close(auth_test_store);

	/* A damaged secret file stops the start. */
	dir2 = xstrdup("/tmp/uplinkd-auth-test2.XXXXXX");
	if (mkdtemp(dir2) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	path = util_path(dir2, "jwt-secret");
	if (util_write_file(path, "abcdef\n", 7, 0600, &cause) != 0)
		auth_test_forget(&cause);
	free(path);
	path = util_path(dir2, "config.tch");
	auth_test_store = store_open(path, &cause);
	free(path);
	cause = NULL;
	tap_ok(auth_test_store != NULL && auth_init(auth_test_store, dir2,
	    &cause) == -1 && cause != NULL &&
	    strstr(cause, "secret shorter than 64 hex digits") != NULL,
	    "a short jwt-secret file: auth_init fails naming it");
	auth_test_forget(&cause);
	auth_free();
	store_close(auth_test_store);
	nftw(dir2, auth_test_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(dir2);

	free(adminpw);
	free(secret);
	nftw(auth_test_dir, auth_test_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return (tap_done());
}

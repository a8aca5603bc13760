#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Authentication: every route refuses missing and bad tokens (401, nested
# error, WWW-Authenticate) except POST /auth and GET /health; both header
# forms; logins, their throttling and their log lines; password changes
# revoke tokens; the users API.

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()

d = Daemon()

# The route tables of src/api_auth.c, src/api_users.c and src/api_system.c,
# copied by hand: (method, pattern, needs a token).
ROUTES = [
    ("POST", "/auth", False),
    ("GET", "/auth", True),
    ("GET", "/users", True),
    ("POST", "/users", True),
    ("GET", "/users/me", True),
    ("PUT", "/users/me", True),
    ("PUT", "/users/me/password", True),
    ("GET", "/users/{id}", True),
    ("PUT", "/users/{id}", True),
    ("DELETE", "/users/{id}", True),
    ("PUT", "/users/{id}/password", True),
    ("GET", "/health", False),
    ("GET", "/metrics", True),
]


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_make(header, claims, key):
    """A JWT; key None leaves the signature empty."""
    si = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = "" if key is None else \
        b64u(hmac.new(key, si.encode(), hashlib.sha256).digest())
    return si + "." + sig


def jwt_claims(tok):
    return json.loads(b64u_dec(tok.split(".")[1]))


def is_nested_error(r, status):
    """Is r the {"error":{"code":status,"message":"..."}} shape?"""
    j = r.json
    return (r.status == status and isinstance(j, dict) and list(j) == ["error"]
            and isinstance(j["error"], dict)
            and sorted(j["error"]) == ["code", "message"]
            and j["error"]["code"] == status
            and isinstance(j["error"]["message"], str)
            and j["error"]["message"] != "")


def refused(r):
    """A proper 401: status, nested body, WWW-Authenticate."""
    www = r.header("WWW-Authenticate")
    return is_nested_error(r, 401) and www is not None and \
        www.lower().startswith("bearer")


def hdrs(token, style="bearer"):
    if token is None:
        return {}
    if style == "bearer":
        return {"Authorization": "Bearer " + token}
    return {"mx-api-token": token}


def call(method, path, token_headers, body=None):
    """A request with exactly the given auth headers."""
    return d.request(method, path, body, token=None, headers=token_headers)


secret = bytes.fromhex(d.file("jwt-secret"))
admin_pw = d.admin_password
admin_jwt = d.login("admin", admin_pw)
parts = admin_jwt.split(".")
t.eq(len(parts), 3, "login token has three parts")
t.eq(json.loads(b64u_dec(parts[0])).get("alg"), "HS256", "login token is HS256")
claims = jwt_claims(admin_jwt)
t.ok(isinstance(claims.get("exp"), int) and isinstance(claims.get("iat"), int)
     and claims["exp"] - claims["iat"] == 3600,
     "login token expires after token_lifetime (3600 s)", claims)
now = int(time.time())

# A token crafted with the real secret is accepted (the control for the
# crafted bad tokens below).
good_claims = dict(claims, iat=now - 10, exp=now + 600)
crafted = jwt_make({"alg": "HS256", "typ": "JWT"}, good_claims, secret)
r = call("GET", "/auth", hdrs(crafted))
t.eq((r.status, r.json), (200, {"data": "ok"}), "control: a JWT crafted with the real secret works")

sig = bytearray(b64u_dec(parts[2]))
sig[0] ^= 0x55
expired_claims = dict(claims, iat=now - 7200, exp=now - 120)
BAD = [
    ("no token", {}),
    ("token abc", hdrs("abc")),
    ("token a.b", hdrs("a.b")),
    ("token a.b.c.d", hdrs("a.b.c.d")),
    ("wrong signature", hdrs(parts[0] + "." + parts[1] + "." + b64u(bytes(sig)))),
    ("alg none, empty signature",
     hdrs(jwt_make({"alg": "none", "typ": "JWT"}, good_claims, None))),
    ("HS256 signed with another key",
     hdrs(jwt_make({"alg": "HS256", "typ": "JWT"}, good_claims, os.urandom(32)))),
    ("expired JWT", hdrs(jwt_make({"alg": "HS256", "typ": "JWT"}, expired_claims, secret))),
    ("expired JWT as mx-api-token",
     hdrs(jwt_make({"alg": "HS256", "typ": "JWT"}, expired_claims, secret), "mx")),
    ("bad token as mx-api-token", hdrs("a.b.c", "mx")),
]

for method, pattern, needs in ROUTES:
    path = pattern.replace("{id}", "1")
    body = {"x": 1} if method in ("POST", "PUT") else None
    for what, h in BAD:
        r = call(method, path, h, body)
        if needs:
            t.ok(refused(r), "%s %s, %s: 401 with nested error and WWW-Authenticate"
                 % (method, pattern, what), "%r %r" % (r, r.headers))
        else:
            # POST /auth with a body lacking "name" is 400, not 401;
            # /health is 200: neither looks at the token.
            want = 400 if pattern == "/auth" else 200
            t.eq(r.status, want, "%s %s, %s: no token needed" % (method, pattern, what))

# More ways to be wrong, on one route.
MORE = [
    ("alg none with a valid HS256 signature",
     hdrs(jwt_make({"alg": "none", "typ": "JWT"}, good_claims, secret))),
    ("alg HS512", hdrs(jwt_make({"alg": "HS512", "typ": "JWT"}, good_claims, secret))),
    ("no alg", hdrs(jwt_make({"typ": "JWT"}, good_claims, secret))),
    ("no exp", hdrs(jwt_make({"alg": "HS256", "typ": "JWT"},
                             {k: v for k, v in good_claims.items() if k != "exp"}, secret))),
    ("unknown uid", hdrs(jwt_make({"alg": "HS256", "typ": "JWT"},
                                  dict(good_claims, uid=4242), secret))),
    ("wrong password version", hdrs(jwt_make({"alg": "HS256", "typ": "JWT"},
                                             dict(good_claims, pwv=99), secret))),
    ("API token with a suffix", hdrs(d.api_token + "x")),
    ("API token prefix", hdrs(d.api_token[:-1])),
    ("Basic scheme", {"Authorization": "Basic " + d.api_token}),
    ("Bearer without a token", {"Authorization": "Bearer "}),
    ("token without a scheme", {"Authorization": d.api_token}),
]
for what, h in MORE:
    r = call("GET", "/auth", h)
    t.ok(refused(r), "GET /auth, %s: 401" % what, r)

# Unknown paths are not revealed without a token.
for method, path in [("GET", "/nope"), ("GET", "/users/1/nope"),
                     ("DELETE", "/health"), ("PATCH", "/users"),
                     ("HEAD", "/users"), ("OPTIONS", "/users"), ("OPTIONS", "/nope")]:
    r = call(method, path, {})
    if method == "HEAD":
        ok = r.status == 401 and r.header("WWW-Authenticate") is not None
    else:
        ok = refused(r)
    t.ok(ok, "%s %s without a token: 401, not 404/405" % (method, path), r)

# --- Both header forms, both kinds of token ------------------------------

for what, tok in [("API token", d.api_token), ("JWT", admin_jwt)]:
    for style, h in [("Authorization: Bearer", {"Authorization": "Bearer " + tok}),
                     ("mx-api-token", {"mx-api-token": tok}),
                     ("lower-case bearer", {"Authorization": "bearer " + tok}),
                     ("upper-case BEARER", {"Authorization": "BEARER " + tok})]:
        r = call("GET", "/auth", h)
        t.eq((r.status, r.json), (200, {"data": "ok"}),
             "GET /auth with the %s as %s: {\"data\":\"ok\"}" % (what, style))
r = call("GET", "/users/me", hdrs(admin_jwt, "mx"))
t.ok(r.status == 200 and r.json["data"]["name"] == "admin",
     "GET /users/me with a JWT names its account", r)
r = call("GET", "/users", hdrs(admin_jwt))
t.eq(r.status, 200, "GET /users with a JWT")

# --- Logins --------------------------------------------------------------

r = d.post("/auth", {"name": "admin", "password": admin_pw}, token=None)
t.ok(r.status == 200 and list(r.json) == ["data"]
     and isinstance(r.json["data"].get("token"), str)
     and r.json["data"].get("user", {}).get("name") == "admin"
     and "passwordHash" not in r.json["data"]["user"],
     "POST /auth: {\"data\":{\"token\":...,\"user\":{...}}} without the hash", r)

r = d.post("/auth", {"password": "whatever-pw"}, token=None)
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("name"),
     "login without name: 400 naming the field", r)
r = d.post("/auth", {"name": "admin"}, token=None)
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("password"),
     "login without password: 400 naming the field", r)
r = d.post("/auth", {"name": 7, "password": "whatever-pw"}, token=None)
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("name"),
     "login with a numeric name: 400 naming the field", r)

# An account of our own, so that throttling admin cannot get in the way.
r = d.post("/users", {"name": "carol", "password": "carol-pass-1"})
t.eq(r.status, 200, "create carol")
carol_id = r.json["data"]["id"] if r.status == 200 else 0

t0 = time.time()
r = d.post("/auth", {"name": "carol", "password": "wrong-password"}, token=None)
el = time.time() - t0
t.ok(is_nested_error(r, 401), "wrong password: 401 nested error", r)
bad_msg = r.json["error"]["message"] if is_nested_error(r, 401) else None
t.ok(el >= 0.2, "wrong password: the answer is held back (%.3f s >= 0.2 s)" % el)

# A second failure, and while its answer is held back, another attempt,
# even with the right password, is refused at once.
res = {}


def wait_log(what, n, limit=5):
    """Wait until the daemon has logged what n times (it logs a failed
    login when it checks it, before the held-back answer)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if d.log().count(what) >= n:
            return True
        time.sleep(0.01)
    return False


def attempt(key, name, pw):
    t0 = time.time()
    res[key] = (d.post("/auth", {"name": name, "password": pw}, token=None),
                time.time() - t0)


th = threading.Thread(target=attempt, args=("second", "carol", "wrong-again"))
th.start()
wait_log("login failed name=carol ", 2)
r = d.post("/auth", {"name": "carol", "password": "carol-pass-1"}, token=None)
th.join(10)
t.ok(is_nested_error(r, 429) and r.header("Retry-After") is not None
     and r.header("Retry-After").isdigit(),
     "immediate retry while throttled: 429 with Retry-After", "%r %r" % (r, r.headers))
r2, el2 = res.get("second", (None, 0))
t.ok(r2 is not None and r2.status == 401 and el2 >= 0.4,
     "second failure: 401 after a longer delay (%.3f s >= 0.4 s)" % el2, r2)
time.sleep(0.3)
r = d.post("/auth", {"name": "carol", "password": "carol-pass-1"}, token=None)
t.eq(r.status, 200, "after the wait the right password logs in")

# An unknown name is answered like a wrong password.
t0 = time.time()
r = d.post("/auth", {"name": "mallory", "password": "guess-guess"}, token=None)
el = time.time() - t0
t.ok(is_nested_error(r, 401) and r.json["error"]["message"] == bad_msg,
     "unknown name: the same 401 as a wrong password", r)
t.ok(el >= 0.2, "unknown name: the answer is held back too (%.3f s)" % el)

# Retry-After says how long the throttle really lasts: after three
# failures (250 + 500 + 1000 ms) the fourth holds the name for 2 s.
for pw in ("guess-2xxx", "guess-3xxx"):
    time.sleep(0.1)
    r = d.post("/auth", {"name": "mallory", "password": pw}, token=None)
    t.eq(r.status, 401, "unknown name, another failure after the wait: 401")
time.sleep(0.1)
th = threading.Thread(target=attempt, args=("fourth", "mallory", "guess-4xxx"))
th.start()
wait_log("login failed name=mallory ", 4)
r = d.post("/auth", {"name": "mallory", "password": "guess-5xxx"}, token=None)
th.join(10)
ra = r.header("Retry-After")
t.ok(r.status == 429 and ra is not None and ra.isdigit() and int(ra) >= 2,
     "Retry-After covers the remaining throttle (>= 2 s after the 4th failure)",
     "%r Retry-After: %r" % (r, ra))
r4, el4 = res.get("fourth", (None, 0))
t.ok(r4 is not None and r4.status == 401 and el4 >= 1.8,
     "fourth failure: 401 held back about 2 s (%.3f s)" % el4, r4)

log = d.log()
fails = [ln for ln in log.splitlines() if "fail" in ln and "carol" in ln]
t.ok(any("127.0.0.1" in ln for ln in fails),
     "failed login logged with the name and the peer", log[-2000:])
t.ok(any("mallory" in ln and "127.0.0.1" in ln and "fail" in ln for ln in log.splitlines()),
     "failed login of an unknown name logged with the name and the peer")

# --- Password changes revoke tokens --------------------------------------

carol1 = d.login("carol", "carol-pass-1")
carol2 = d.login("carol", "carol-pass-1")
r = call("PUT", "/users/me/password", hdrs(carol1),
         {"oldPassword": "not-the-password", "newPassword": "carol-pass-2"})
t.ok(is_nested_error(r, 400) and "oldPassword" in r.json["error"]["message"],
     "PUT /users/me/password with a wrong oldPassword: 400 naming it", r)
r = call("PUT", "/users/me/password", hdrs(carol1),
         {"oldPassword": "carol-pass-1", "newPassword": "short"})
t.ok(is_nested_error(r, 400) and "assword" in r.json["error"]["message"],
     "PUT /users/me/password with a short new password: 400", r)
r = call("GET", "/auth", hdrs(carol1))
t.eq(r.status, 200, "carol's token still works after refused changes")
r = call("PUT", "/users/me/password", hdrs(carol1),
         {"oldPassword": "carol-pass-1", "newPassword": "carol-pass-2"})
t.ok(r.status == 200 and r.json["data"]["name"] == "carol",
     "PUT /users/me/password: 200", r)
r = call("GET", "/auth", hdrs(carol1))
t.ok(refused(r), "the token used for the change is revoked", r)
r = call("GET", "/auth", hdrs(carol2, "mx"))
t.ok(refused(r), "another old token of the account is revoked", r)
r = call("GET", "/auth", hdrs(admin_jwt))
t.eq(r.status, 200, "other accounts' tokens are untouched")
carol3 = d.login("carol", "carol-pass-2")
r = call("GET", "/users/me", hdrs(carol3))
t.ok(r.status == 200 and r.json["data"]["name"] == "carol", "the new password logs in", r)
r = d.post("/auth", {"name": "carol", "password": "carol-pass-1"}, token=None)
t.eq(r.status, 401, "the old password no longer logs in")
r = call("PUT", "/users/me/password", {"Authorization": "Bearer " + d.api_token},
         {"oldPassword": "x", "newPassword": "whatever-pw"})
t.ok(is_nested_error(r, 400), "PUT /users/me/password with the API token: 400 (no account)", r)

# An administrator sets another account's password: that revokes too.
r = d.put("/users/%d/password" % carol_id, {"newPassword": "carol-pass-3"})
t.eq(r.status, 200, "PUT /users/{id}/password: 200")
r = call("GET", "/auth", hdrs(carol3))
t.ok(refused(r), "PUT /users/{id}/password revokes the account's tokens", r)

# --- Users ---------------------------------------------------------------

r = d.post("/users", {"name": "bob", "password": "bob-password", "email": "bob@example.com"})
u = r.json.get("data") if r.json else None
t.ok(r.status == 200 and list(r.json) == ["data"] and u["name"] == "bob"
     and isinstance(u["id"], int) and u["isActive"] is True
     and u["email"] == "bob@example.com"
     and "passwordHash" not in u and "password" not in u,
     "POST /users: 200 {\"data\":{...}} without password fields", r)
bob_id = u["id"] if u else 0
r = d.get("/users/%d" % bob_id)
t.ok(r.status == 200 and r.json["data"]["name"] == "bob" and r.json["data"]["id"] == bob_id,
     "GET /users/{id}", r)
r = d.get("/users")
names = [x.get("name") for x in r.json.get("data", [])] if r.json else []
t.ok(r.status == 200 and sorted(r.json) == ["count", "data"]
     and r.json["count"] == len(r.json["data"]) and
     sorted(names) == ["admin", "bob", "carol"],
     "GET /users: {count, data} with every account", r)
r = d.post("/users", {"name": "bob", "password": "another-pw"})
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("name"),
     "duplicate name: 400 naming the field", r)
r = d.post("/users", {"name": "eve", "password": "short"})
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("password"),
     "short password: 400 naming the field", r)
r = d.post("/users", {"name": "eve", "password": "x" * 129})
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("password"),
     "password over 128 characters: 400", r)
r = d.post("/users", {"password": "long-enough"})
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("name"),
     "no name: 400 naming the field", r)
r = d.post("/users", {"name": "has space", "password": "long-enough"})
t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("name"),
     "name with a space: 400", r)
r = d.get("/users")
t.eq((r.json or {}).get("count"), 3, "refused creations created nothing")

bob_jwt = d.login("bob", "bob-password")
r = d.delete("/users/%d" % bob_id)
t.ok(r.status == 204 and r.body == b"", "DELETE /users/{id}: 204 without a body", r)
r = d.get("/users/%d" % bob_id)
t.ok(is_nested_error(r, 404), "a deleted account is 404", r)
r = call("GET", "/auth", hdrs(bob_jwt))
t.ok(refused(r), "a deleted account's token is refused", r)
r = d.post("/users", {"name": "bob", "password": "bob-password"})
t.ok(r.status == 200 and r.json["data"]["id"] != bob_id,
     "a new account with the same name gets a new id", r)
bob2_id = r.json["data"]["id"] if r.status == 200 else 0
r = call("GET", "/auth", hdrs(bob_jwt))
t.ok(refused(r), "the deleted account's token stays refused for the new account", r)

for method, path, body in [("GET", "/users/9999", None),
                           ("PUT", "/users/9999", {"email": "x@example.com"}),
                           ("DELETE", "/users/9999", None),
                           ("PUT", "/users/9999/password", {"newPassword": "long-enough"})]:
    r = d.request(method, path, body)
    t.ok(is_nested_error(r, 404), "%s %s: 404" % (method, path), r)
for bad in ("abc", "0", "-1", "1abc", "1.5"):
    r = d.get("/users/" + bad)
    t.ok(is_nested_error(r, 400) and r.json["error"]["message"].startswith("id"),
         "GET /users/%s: 400 naming id" % bad, r)
r = d.delete("/users/abc")
t.ok(is_nested_error(r, 400), "DELETE /users/abc: 400", r)

# Deactivation: the account's tokens stop working and it cannot log in.
r = d.put("/users/%d" % bob2_id, {"isActive": False})
t.ok(r.status == 200 and r.json["data"]["isActive"] is False, "PUT /users/{id} isActive false", r)
r = d.post("/auth", {"name": "bob", "password": "bob-password"}, token=None)
t.ok(r.status in (401, 403) and is_nested_error(r, r.status),
     "an inactive account cannot log in", r)

# The last active account: carol and admin are active; bob is not.
r = d.delete("/users/%d" % carol_id)
t.eq(r.status, 204, "delete carol")
r = d.delete("/users/1")
t.ok(is_nested_error(r, 400), "deleting the last active account: 400", r)
r = d.put("/users/1", {"isActive": False})
t.ok(is_nested_error(r, 400), "deactivating the last active account: 400", r)
r = d.get("/users/1")
t.ok(r.status == 200 and r.json["data"]["isActive"] is True, "admin is still there and active", r)
r = d.delete("/users/%d" % bob2_id)
t.eq(r.status, 204, "an inactive account can be deleted")
r = d.get("/users")
t.ok(r.json is not None and r.json["count"] == 1 and r.json["data"][0]["name"] == "admin",
     "only admin is left", r)

# --- Log lines cannot be forged; the global budget --------------------------

forged = "auth: login name=admin peer=203.0.113.9"
r = d.post("/auth", {"name": "x\n" + forged, "password": "guess-guess"}, token=None)
t.eq(r.status, 401, "a login name with a newline: 401")
lines = d.log().splitlines()
t.ok(not any(ln.startswith(forged) or ln.split(" ", 1)[-1].startswith(forged)
             for ln in lines),
     "a newline in the name does not start a forged log line",
     "\n".join(ln for ln in lines if "203.0.113.9" in ln))

# At most 20 passwords are checked per second in all: 45 logins of
# distinct names at once span at most two seconds, so some are refused
# with 429 without a check.
time.sleep(1.1)
burst = {}


def burst_login(i):
    try:
        burst[i] = d.post("/auth", {"name": "burst%d" % i, "password": "guess-guess"},
                          token=None, timeout=20).status
    except OSError as e:
        burst[i] = repr(e)


ths = [threading.Thread(target=burst_login, args=(i,)) for i in range(45)]
for x in ths:
    x.start()
for x in ths:
    x.join(30)
statuses = sorted(burst.values(), key=str)
n401 = statuses.count(401)
n429 = statuses.count(429)
t.ok(n401 + n429 == 45 and n429 >= 1 and n401 <= 40,
     "a burst of 45 logins: some 429 from the global budget (%d x 401, %d x 429)"
     % (n401, n429), statuses)
t.ok(any("rate limit" in ln or "throttled" in ln for ln in d.log().splitlines()
         if "burst" in ln),
     "refused logins of the burst are logged")
time.sleep(1.1)
r = d.post("/auth", {"name": "admin", "password": admin_pw}, token=None)
t.eq(r.status, 200, "after the burst, admin logs in")

t.ok(d.alive(), "the daemon is still running")
t.done()

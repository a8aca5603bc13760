#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Envelopes and statuses of the (non-cloud) REST core: {"data":...} on
# success, {"error":{"code":N,"message":...}} on error; 400 for malformed
# or misshapen JSON, 404, 405 with Allow, 415; path and query handling;
# content types; /metrics in the Prometheus text format.

import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()

d = Daemon()


def is_nested_error(r, status):
    j = r.json
    return (r.status == status and isinstance(j, dict) and list(j) == ["error"]
            and isinstance(j["error"], dict)
            and sorted(j["error"]) == ["code", "message"]
            and j["error"]["code"] == status
            and isinstance(j["error"]["message"], str)
            and j["error"]["message"] != "")


def msg(r):
    try:
        return r.json["error"]["message"]
    except (TypeError, KeyError):
        return None


def is_json_type(r):
    ct = r.header("Content-Type") or ""
    return ct.split(";")[0].strip().lower() == "application/json"


def allow_set(r):
    a = r.header("Allow")
    if a is None:
        return None
    return set(x.strip() for x in a.split(",") if x.strip())


jwt = d.login()

# --- Success: {"data": ...} and nothing else ------------------------------

r = d.get("/health", token=None)
t.ok(r.status == 200 and list(r.json) == ["data"] and r.json["data"].get("status") == "ok",
     "GET /health: {\"data\":{\"status\":\"ok\",...}}", r)
t.ok(is_json_type(r), "GET /health: Content-Type application/json", r.headers)
r = d.get("/auth")
t.eq(r.json, {"data": "ok"}, "GET /auth: {\"data\":\"ok\"}")
t.ok(is_json_type(r), "GET /auth: Content-Type application/json", r.headers)
r = d.get("/users/1")
t.ok(r.status == 200 and list(r.json) == ["data"] and r.json["data"].get("id") == 1,
     "GET /users/1: {\"data\":{...}}", r)
r = d.get("/users/me", token=jwt)
t.ok(r.status == 200 and list(r.json) == ["data"] and r.json["data"].get("name") == "admin",
     "GET /users/me: {\"data\":{...}}", r)
r = d.put("/users/me", {"email": "admin@example.com"}, token=jwt)
t.ok(r.status == 200 and list(r.json) == ["data"]
     and r.json["data"].get("email") == "admin@example.com",
     "PUT /users/me: {\"data\":{...}}", r)
r = d.post("/users", {"name": "dora", "password": "dora-password"})
t.ok(r.status == 200 and list(r.json) == ["data"] and r.json["data"].get("name") == "dora",
     "POST /users: {\"data\":{...}}", r)
dora = r.json["data"]["id"] if r.status == 200 else 2
r = d.put("/users/%d" % dora, {"email": "dora@example.com"})
t.ok(r.status == 200 and list(r.json) == ["data"]
     and r.json["data"].get("email") == "dora@example.com",
     "PUT /users/{id}: {\"data\":{...}}", r)
r = d.get("/users")
t.ok(r.status == 200 and sorted(r.json) == ["count", "data"] and r.json["count"] == 2,
     "GET /users: the core API's {count, data}", r)
r = d.delete("/users/%d" % dora)
t.ok(r.status == 204 and r.body == b"", "DELETE: 204, empty body", r)

# --- Malformed JSON -------------------------------------------------------

MALFORMED = [b"{", b'{"name":}', b"nul", b"{'name':'x'}", b"[1,", b"{} x",
             b'{"a":1}{"b":2}', b"   ", b'{"name":"\xff\xfe"}', b"[" * 5000,
             b'{"name":"a\x01b"}']
for body in MALFORMED:
    for path in ("/users", "/auth"):
        r = d.post(path, body, content_type="application/json",
                   token=None if path == "/auth" else "api")
        m = msg(r) or ""
        t.ok(is_nested_error(r, 400) and m.startswith("body: malformed JSON")
             and "\n" not in m and m == m.strip(),
             "POST %s %r: 400 body: malformed JSON... (one line)" % (path, body[:16]), r)
r = d.post("/users", b"", content_type="application/json")
t.ok(is_nested_error(r, 400) and msg(r).startswith("body"),
     "POST /users with an empty body: 400 naming the body", r)

# --- JSON that is not an object -------------------------------------------

for body in (b"[]", b'[{"name":"x"}]', b'"name"', b"1", b"null", b"true"):
    for method, path in (("POST", "/users"), ("POST", "/auth"), ("PUT", "/users/1"),
                         ("PUT", "/users/1/password")):
        r = d.request(method, path, body, content_type="application/json",
                      token=None if path == "/auth" else "api")
        t.ok(is_nested_error(r, 400) and msg(r).startswith("body: must be an object"),
             "%s %s %s: 400 body: must be an object" % (method, path, body.decode()), r)

# --- 404 ------------------------------------------------------------------

for path in ("/nope", "/users/1/nope", "/health/x", "/", "/userss", "/Users"):
    r = d.get(path)
    t.ok(is_nested_error(r, 404) and is_json_type(r),
         "GET /api/v1%s with a token: 404 nested error" % path, r)
for path in ("/", "/nope", "/api", "/api/v1x", "/api/v2/health", "/api/V1/health",
             "/health", "/v1/health"):
    r = d.get(path, prefix="")
    t.ok(is_nested_error(r, 404) and is_json_type(r),
         "GET %s (outside /api/v1): 404 nested error" % path, r)

# --- 405 with Allow -------------------------------------------------------

for method, path, allow in [("DELETE", "/health", {"GET"}),
                            ("POST", "/health", {"GET"}),
                            ("PATCH", "/users", {"GET", "POST"}),
                            ("DELETE", "/users", {"GET", "POST"}),
                            ("POST", "/users/1", {"GET", "PUT", "DELETE"}),
                            ("GET", "/users/1/password", {"PUT"}),
                            ("GET", "/users/me/password", {"PUT"}),
                            ("PUT", "/metrics", {"GET"}),
                            ("DELETE", "/auth", {"GET", "POST"})]:
    r = d.request(method, path, {} if method in ("POST", "PUT", "PATCH") else None)
    t.ok(is_nested_error(r, 405) and allow_set(r) == allow,
         "%s %s: 405, Allow: %s" % (method, path, ", ".join(sorted(allow))),
         "%r Allow: %r" % (r, r.header("Allow")))

for method in ("HEAD", "OPTIONS"):
    for path, allow in (("/health", {"GET"}), ("/users", {"GET", "POST"})):
        r = d.request(method, path)
        t.eq(r.status, 405, "%s %s: 405" % (method, path))
        t.ok(allow_set(r) == allow, "%s %s: Allow lists the path's methods (%s)"
             % (method, path, ", ".join(sorted(allow))), "Allow: %r" % r.header("Allow"))
r = d.request("OPTIONS", "/users")
t.ok(is_nested_error(r, 405) and is_json_type(r), "OPTIONS: nested error body", r)
r = d.request("HEAD", "/health")
t.eq(r.body, b"", "HEAD: no body")

# --- 415 ------------------------------------------------------------------

for ct in ("text/plain", None, "application/x-www-form-urlencoded", "application/jsonx",
           "multipart/form-data; boundary=x", "text/json"):
    r = d.post("/users", b'{"name":"x","password":"long-enough"}', content_type=ct)
    t.ok(is_nested_error(r, 415) and msg(r).startswith("Content-Type"),
         "POST /users with Content-Type %s: 415 naming Content-Type" % ct, r)
r = d.post("/auth", b'{"name":"admin"}', content_type="text/plain", token=None)
t.ok(is_nested_error(r, 415), "POST /auth with text/plain: 415", r)
r = d.put("/users/1", b'{"email":null}')
t.ok(is_nested_error(r, 415), "PUT /users/1 without Content-Type: 415", r)
for ct in ("application/json; charset=utf-8", "Application/JSON", "application/json ;charset=UTF-8"):
    r = d.post("/users", b'{"password":"long-enough"}', content_type=ct)
    t.ok(is_nested_error(r, 400) and msg(r).startswith("name"),
         "Content-Type %s is JSON (400 for the missing name, not 415)" % ct, r)

# --- Paths and queries ----------------------------------------------------

r = d.get("/health/", token=None)
t.eq(r.status, 200, "GET /health/: trailing slash tolerated")
r = d.get("/users/")
t.ok(r.status == 200 and r.json.get("count") == 1, "GET /users/: trailing slash tolerated", r)
r = d.get("/users/1/")
t.ok(r.status == 200 and r.json["data"]["id"] == 1, "GET /users/1/: trailing slash tolerated", r)
r = d.get("", token=None, prefix="/api/v1/health")
t.eq(r.status, 200, "GET /api/v1/health (no trailing slash)")
r = d.get("/%68ealth", token=None)
t.eq(r.status, 200, "GET /api/v1/%68ealth: percent-decoded to /health")
r = d.get("/users/%31")
t.ok(r.status == 200 and r.json["data"]["id"] == 1, "GET /users/%31 is user 1", r)
r = d.get("/%75sers/%6De", token=jwt)
t.ok(r.status == 200 and r.json["data"]["name"] == "admin", "GET /%75sers/%6De is /users/me", r)
r = d.get("/users%2F1")
t.ok(is_nested_error(r, 404), "GET /users%2F1: an encoded slash is no separator (404)", r)
for bad in ("/users/%zz", "/users/%4", "/users/%", "/users/%00"):
    r = d.get(bad)
    t.ok(is_nested_error(r, 400) and msg(r).startswith("path"),
         "GET %s: 400 naming the path" % bad, r)
r = d.get("/health?x=1", token=None)
t.eq(r.status, 200, "GET /health?x=1")
r = d.get("/users?limit=10&offset=0")
t.ok(r.status == 200 and r.json.get("count") == 1, "GET /users?limit=10&offset=0", r)
r = d.get("/users/1?fields=name&x=%20y")
t.ok(r.status == 200 and r.json["data"]["id"] == 1, "GET /users/1 with a query string", r)
r = d.get("/users/?x=1")
t.eq(r.status, 200, "trailing slash and a query string")

# Errors are JSON too.
for r, what in [(d.get("/users", token=None), "401"), (d.get("/nope"), "404"),
                (d.request("PATCH", "/users", {}), "405"),
                (d.post("/users", b"x", content_type="text/plain"), "415"),
                (d.post("/users", b"{", content_type="application/json"), "400")]:
    t.ok(is_json_type(r), "%s answer: Content-Type application/json" % what, r.headers)

# --- Answers on connections that close after them ------------------------
# HTTP/1.0 clients and "Connection: close" get their answer before the close.

for what, raw in [
        ("HTTP/1.0 GET /health", b"GET /api/v1/health HTTP/1.0\r\n\r\n"),
        ("HTTP/1.1 GET /health with Connection: close",
         b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        ("HTTP/1.1 GET /users with Connection: close",
         b"GET /api/v1/users HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         b"Authorization: Bearer " + d.api_token.encode() + b"\r\n\r\n"),
        ("HTTP/1.0 POST /auth",
         b"POST /api/v1/auth HTTP/1.0\r\nContent-Type: application/json\r\n"
         b"Content-Length: 2\r\n\r\n{}")]:
    out = raw_exchange(d.http_port, raw, timeout=5)
    head, _, body = out.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    want = b" 400 " if b"POST" in raw else b" 200 "
    t.ok(status.startswith(b"HTTP/1.") and want in status + b" " and body.startswith(b'{"'),
         "%s: answered (%s) before the close" % (what, want.strip().decode()), out[:300])

# --- /metrics -------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? '
                    r'([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics():
    """(response, {(name, frozenset(labels)): value}, bad lines)."""
    r = d.get("/metrics")
    out, bad = {}, []
    for ln in r.body.decode(errors="replace").splitlines():
        if ln == "" or ln.startswith("#"):
            continue
        m = SAMPLE.match(ln)
        if not m:
            bad.append(ln)
            continue
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return r, out, bad


def req_count(m, route, method, status):
    return m.get(("uplinkd_http_requests_total",
                  frozenset([("route", route), ("method", method), ("status", str(status))])), 0)


r = d.get("/metrics", token=None)
t.ok(is_nested_error(r, 401), "GET /metrics needs a token", r)
r, m1, bad = metrics()
t.eq(r.status, 200, "GET /metrics: 200")
ct = r.header("Content-Type") or ""
t.ok(ct.startswith("text/plain") and "version=0.0.4" in ct,
     "GET /metrics: Prometheus text Content-Type", ct)
t.eq(bad, [], "every sample line parses")
text = r.body.decode()
for name, typ in (("uplinkd_uptime_seconds", "gauge"),
                  ("uplinkd_event_loop_lag_seconds", "gauge"),
                  ("uplinkd_http_requests_total", "counter")):
    t.ok("# TYPE %s %s\n" % (name, typ) in text and "# HELP %s " % name in text,
         "%s has HELP and TYPE %s" % (name, typ))
up1 = m1.get(("uplinkd_uptime_seconds", frozenset()))
lag = m1.get(("uplinkd_event_loop_lag_seconds", frozenset()))
t.ok(up1 is not None and up1 >= 0, "uplinkd_uptime_seconds is a number", up1)
t.ok(lag is not None and 0 <= lag < 5, "uplinkd_event_loop_lag_seconds is a small number", lag)
t.ok(all(set(dict(k[1])) == {"route", "method", "status"}
         for k in m1 if k[0] == "uplinkd_http_requests_total"),
     "uplinkd_http_requests_total has route, method and status labels")

for _ in range(3):
    d.get("/health", token=None)
for _ in range(2):
    d.get("/no-such-thing")
d.get("/users", token=None)
for _ in range(2):
    d.post("/users", b"x", content_type="text/plain")
d.get("/users/1")
d.request("DELETE", "/health")
time.sleep(1.05)
r, m2, bad = metrics()
for route, method, status, n in [("/health", "GET", 200, 3),
                                 ("unmatched", "GET", 404, 2),
                                 ("/users", "GET", 401, 1),
                                 ("/users", "POST", 415, 2),
                                 ("/users/{id}", "GET", 200, 1),
                                 ("unmatched", "DELETE", 405, 1),
                                 ("/metrics", "GET", 200, 1)]:
    got = req_count(m2, route, method, status) - req_count(m1, route, method, status)
    t.eq(got, n, "uplinkd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} grew by %d"
         % (route, method, status, n))
up2 = m2.get(("uplinkd_uptime_seconds", frozenset()))
t.ok(up1 is not None and up2 is not None and up2 >= up1 + 1.0,
     "uplinkd_uptime_seconds advances (%r -> %r)" % (up1, up2))

t.ok(d.alive(), "the daemon is still running")
t.done()

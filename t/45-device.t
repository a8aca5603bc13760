#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Device resources: /device/general (every field and its type, the real
# host name, the writable fields stored and kept over a restart, their
# validation, read-only and unknown fields ignored), /device/ethernets
# (lo with 127.0.0.1, read-only), /device/time (close to this clock, the
# time zone from TZ) and /system/status (figures checked against /proc
# and statvfs); all of them need a token.

import os
import re
import socket
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()
t.time_limit(120)

GENERAL = ["hostName", "model", "serialNumber", "description", "version",
           "uptimeSec", "kernel"]
WRITABLE = ["model", "serialNumber", "description"]


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_nested_error(r, status, field=None):
    """{"error":{"code":status,"message":"field: ..."}}?"""
    j = r.json
    if r.status != status or not isinstance(j, dict) or list(j) != ["error"]:
        return False
    e = j["error"]
    if not isinstance(e, dict) or sorted(e) != ["code", "message"] or \
            e["code"] != status or not isinstance(e["message"], str):
        return False
    return field is None or e["message"].startswith(field + ":")


def proc_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


def general(d):
    r = d.get("/device/general")
    return r.json["data"] if r.status == 200 and r.json else None


started = time.time()
d = Daemon()

# --- GET /device/general -------------------------------------------------

r = d.get("/device/general")
t.eq(r.status, 200, "GET /device/general: 200")
g = r.json["data"]
t.eq(list(g), GENERAL, "general: the fields, in order")
t.eq(g["hostName"], socket.gethostname(), "general: hostName is the host name")
t.eq([g[k] for k in WRITABLE], ["", "", ""],
     "general: model, serialNumber and description default to \"\"")
health = d.get("/health", token=None).json["data"]
t.ok(isinstance(g["version"], str) and g["version"] == health["version"],
     "general: version is uplinkd's (as /health says)", g["version"])
t.ok(is_int(g["uptimeSec"]) and abs(g["uptimeSec"] - proc_uptime()) <= 5,
     "general: uptimeSec is the system's uptime", g["uptimeSec"])
u = os.uname()
t.eq(g["kernel"], "%s %s %s" % (u.sysname, u.release, u.machine),
     "general: kernel is uname -srm")

# --- GET /device/ethernets -----------------------------------------------

r = d.get("/device/ethernets")
t.eq(r.status, 200, "GET /device/ethernets: 200")
ifs = r.json["data"]
t.ok(isinstance(ifs, list) and len(ifs) >= 1, "ethernets: a list", ifs)
MAC = re.compile(r"^([0-9a-f]{2}(:[0-9a-f]{2})*)?$")
bad = []
for e in ifs:
    ok = (list(e) == ["name", "mac", "up", "running", "loopback", "mtu",
                      "ipv4", "ipv6"]
          and isinstance(e["name"], str) and e["name"] != ""
          and ":" not in e["name"]
          and isinstance(e["mac"], str) and MAC.match(e["mac"])
          and all(isinstance(e[k], bool) for k in ("up", "running", "loopback"))
          and (e["mtu"] is None or (is_int(e["mtu"]) and e["mtu"] > 0))
          and isinstance(e["ipv4"], list) and isinstance(e["ipv6"], list)
          and all(list(a) == ["address", "netmask"]
                  and all(isinstance(a[k], str) for k in a)
                  for a in e["ipv4"])
          and all(list(a) == ["address", "prefixLength"]
                  and isinstance(a["address"], str)
                  and is_int(a["prefixLength"])
                  and 0 <= a["prefixLength"] <= 128
                  for a in e["ipv6"]))
    if not ok:
        bad.append(e)
t.eq(bad, [], "ethernets: every interface has every field with its type")
names = [e["name"] for e in ifs]
t.eq(len(names), len(set(names)), "ethernets: each interface once")
t.eq(sorted(names), sorted(n for _, n in socket.if_nameindex()),
     "ethernets: the interfaces the system lists")
lo = [e for e in ifs if e["name"] == "lo"]
t.ok(len(lo) == 1 and lo[0]["loopback"] is True and lo[0]["up"] is True
     and {"address": "127.0.0.1", "netmask": "255.0.0.0"} in lo[0]["ipv4"],
     "ethernets: lo is there, up, marked loopback, with 127.0.0.1/255.0.0.0",
     lo)
t.ok(all(e["loopback"] is False for e in ifs if e["name"] != "lo"),
     "ethernets: the others are not marked loopback", ifs)
if lo and lo[0]["ipv6"]:
    t.ok({"address": "::1", "prefixLength": 128} in lo[0]["ipv6"],
         "ethernets: lo has ::1/128", lo[0]["ipv6"])
if lo:
    with open("/sys/class/net/lo/mtu") as f:
        t.eq(lo[0]["mtu"], int(f.read()), "ethernets: lo's MTU as /sys says")

# --- GET /device/time ----------------------------------------------------

before = time.time()
r = d.get("/device/time")
after = time.time()
t.eq(r.status, 200, "GET /device/time: 200")
tm = r.json["data"]
t.eq(list(tm), ["time", "timezone", "epochMs"], "time: the fields, in order")
t.ok(isinstance(tm["time"], str) and
     re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", tm["time"]),
     "time: time is ISO-8601 UTC with milliseconds", tm["time"])
when = datetime.strptime(tm["time"], "%Y-%m-%dT%H:%M:%S.%fZ") \
    .replace(tzinfo=timezone.utc).timestamp()
t.ok(before - 2 <= when <= after + 2, "time: within 2 s of the test's clock",
     (before, when, after))
t.ok(is_int(tm["epochMs"]) and before * 1000 - 2000 <= tm["epochMs"] <=
     after * 1000 + 2000, "time: epochMs within 2 s of the test's clock",
     tm["epochMs"])
t.eq(round(when * 1000), tm["epochMs"], "time: time and epochMs are one instant")
t.ok(isinstance(tm["timezone"], str) and tm["timezone"] != "",
     "time: timezone is named", tm["timezone"])

# The zone comes from TZ first (with or without the ":" and zoneinfo path).
for tz, want in [("Europe/Paris", "Europe/Paris"),
                 (":/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo")]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = tz
    try:
        z = Daemon(https=False, unix=False)
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
    r = z.get("/device/time")
    t.eq(r.json["data"]["timezone"] if r.status == 200 else r,
         want, "time: TZ=%s gives %s" % (tz, want))
    z.stop()

# --- GET /system/status --------------------------------------------------

r = d.get("/system/status")
t.eq(r.status, 200, "GET /system/status: 200")
st = r.json["data"]
t.eq(list(st), ["loadAverage", "memory", "disk", "uptimeSec", "uplinkd"],
     "status: the fields, in order")
la = st["loadAverage"]
t.ok(isinstance(la, list) and len(la) == 3 and
     all(is_num(x) and x >= 0 for x in la),
     "status: loadAverage is three numbers", la)
with open("/proc/loadavg") as f:
    want = [float(x) for x in f.read().split()[:3]]
t.ok(all(abs(a - b) < 5 for a, b in zip(la, want)),
     "status: loadAverage as /proc/loadavg says", (la, want))
m = st["memory"]
t.ok(isinstance(m, dict) and list(m) == ["total", "used", "free", "available"]
     and all(is_int(v) and v >= 0 for v in m.values()),
     "status: memory has total, used, free, available in bytes", m)
mi = meminfo()
t.eq(m["total"], mi["MemTotal"], "status: memory.total is MemTotal")
t.eq(m["used"] + m["available"], m["total"],
     "status: memory.used is total less available")
# MemAvailable can be below MemFree (the kernel's reserves count against
# it while little is cached), so each is only bounded by the total.
t.ok(m["free"] <= m["total"] and m["available"] <= m["total"],
     "status: memory free and available are each at most total", m)
dk = st["disk"]
sv = os.statvfs("/")
t.ok(isinstance(dk, dict) and list(dk) == ["path", "total", "used", "free"]
     and dk["path"] == "/" and all(is_int(dk[k]) for k in
                                  ("total", "used", "free")),
     "status: disk has path \"/\", total, used, free in bytes", dk)
t.eq(dk["total"], sv.f_blocks * sv.f_frsize, "status: disk.total as statvfs")
t.ok(dk["used"] <= dk["total"] and dk["free"] <= dk["total"],
     "status: disk used and free within total", dk)
t.ok(is_int(st["uptimeSec"]) and abs(st["uptimeSec"] - proc_uptime()) <= 5,
     "status: uptimeSec is the system's uptime", st["uptimeSec"])
me = st["uplinkd"]
t.ok(isinstance(me, dict) and list(me) == ["rssBytes", "uptimeSec"],
     "status: uplinkd has rssBytes and uptimeSec", me)
with open("/proc/%d/statm" % d.proc.pid) as f:
    rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
t.ok(is_int(me["rssBytes"]) and 0 < me["rssBytes"] and
     abs(me["rssBytes"] - rss) < 64 << 20,
     "status: uplinkd.rssBytes is the daemon's resident memory",
     (me["rssBytes"], rss))
t.ok(is_int(me["uptimeSec"]) and
     0 <= me["uptimeSec"] <= time.time() - started + 1,
     "status: uplinkd.uptimeSec is the daemon's age", me["uptimeSec"])

# Polled as the twins do: the answers stay whole and the daemon small.
for _ in range(200):
    r = d.get("/system/status")
    if r.status != 200:
        break
t.eq(r.status, 200, "status: 200 requests in a row answered")

# --- PUT /device/general -------------------------------------------------

body = {"model": "UC-8112A-ME-T", "serialNumber": "MOXA00000469",
        "description": "line 3, cabinet B \u00e9\u00e8"}
r = d.put("/device/general", body)
t.eq(r.status, 200, "PUT /device/general: 200")
p = r.json["data"] if r.status == 200 else {}
t.eq(list(p), GENERAL, "PUT answers the GET view")
t.eq({k: p.get(k) for k in WRITABLE}, body, "PUT: the new values in the answer")
g = general(d)
t.eq({k: g[k] for k in WRITABLE}, body, "GET: the new values")
t.eq(g["hostName"], socket.gethostname(), "GET: hostName unchanged")

# A PUT with some fields leaves the others alone.
r = d.put("/device/general", {"description": "only this"})
g = general(d)
t.eq({k: g[k] for k in WRITABLE},
     dict(body, description="only this"),
     "PUT of one field keeps the other stored fields")
r = d.put("/device/general", {})
t.eq((r.status, {k: general(d)[k] for k in WRITABLE}),
     (200, dict(body, description="only this")),
     "PUT of {} changes nothing")
r = d.put("/device/general", dict(body))
t.eq(r.status, 200, "PUT all three back")

# Read-only and unknown fields are accepted and ignored.
r = d.put("/device/general", {"hostName": "evil", "version": "99.0",
                              "uptimeSec": "x", "kernel": 5,
                              "colour": "red", "model": "M2"})
p = r.json["data"] if r.status == 200 else {}
t.eq(r.status, 200, "PUT with read-only and unknown fields: 200")
t.ok(p.get("hostName") == socket.gethostname() and
     p.get("version") == health["version"] and is_int(p.get("uptimeSec"))
     and p.get("kernel") == g["kernel"] and "colour" not in p
     and p.get("model") == "M2",
     "read-only fields are ignored, unknown ones dropped, model changed", p)
t.eq(list(general(d)), GENERAL, "GET: still exactly the fields")
# The whole GET view back (what a twin sends) is a valid PUT.
view = general(d)
view["serialNumber"] = "SN-2"
r = d.put("/device/general", view)
t.eq((r.status, general(d)["serialNumber"]), (200, "SN-2"),
     "the GET view itself, edited, is a valid PUT")
r = d.put("/device/general", dict(body))

# Validation names the field; nothing is stored on failure.
for what, b, field in [
        ("model of 256 characters", {"model": "m" * 256}, "model"),
        ("serialNumber of 256 characters", {"serialNumber": "s" * 256},
         "serialNumber"),
        ("description of 1025 characters", {"description": "d" * 1025},
         "description"),
        ("description not a string", {"description": 5}, "description"),
        ("description an object", {"description": {"a": 1}},
         "description"),
        ("model null", {"model": None}, "model"),
        ("serialNumber a boolean", {"serialNumber": True}, "serialNumber"),
        ("a good model with a bad description",
         {"model": "fine", "description": []}, "description")]:
    r = d.put("/device/general", b)
    t.ok(is_nested_error(r, 400, field),
         "PUT %s: 400 naming %s" % (what, field), r)
t.eq({k: general(d)[k] for k in WRITABLE}, body,
     "the refused PUTs stored nothing")
r = d.put("/device/general", [1, 2])
t.ok(is_nested_error(r, 400, "body"), "PUT of an array: 400 naming body", r)
r = d.put("/device/general", "{not json", content_type="application/json")
t.ok(is_nested_error(r, 400, "body"), "PUT of broken JSON: 400", r)
r = d.put("/device/general", None)
t.ok(is_nested_error(r, 400, "body"), "PUT without a body: 400", r)
r = d.put("/device/general", '{"model":"x"}', content_type="text/plain")
t.ok(is_nested_error(r, 415), "PUT as text/plain: 415", r)

# The limits are characters, not bytes; exactly at the limit is fine.
edge = {"model": "\u00e9" * 255, "serialNumber": "s" * 255,
        "description": "\u20ac" * 1024}
r = d.put("/device/general", edge)
t.eq(r.status, 200, "PUT at the limits (255, 255, 1024 characters): 200")
t.eq({k: general(d)[k] for k in WRITABLE}, edge, "the values at the limits")
r = d.put("/device/general", body)

# --- Kept over a restart -------------------------------------------------

t.eq(d.stop(), 0, "the daemon stops cleanly")
d.start()
g = general(d)
t.eq({k: g[k] for k in WRITABLE}, body,
     "model, serialNumber and description survive a restart")
t.eq(g["hostName"], socket.gethostname(), "after the restart: hostName")

# --- Methods and tokens --------------------------------------------------

for path in ["/device/ethernets", "/device/time", "/system/status"]:
    r = d.put(path, {"x": 1})
    t.ok(is_nested_error(r, 405) and r.header("Allow") == "GET",
         "PUT %s: 405, Allow: GET" % path, r)
r = d.post("/device/general", {"model": "x"})
t.ok(is_nested_error(r, 405) and r.header("Allow") == "GET, PUT",
     "POST /device/general: 405, Allow: GET, PUT", r)
r = d.delete("/device/general")
t.ok(is_nested_error(r, 405), "DELETE /device/general: 405", r)

ROUTES = [("GET", "/device/general"), ("PUT", "/device/general"),
          ("GET", "/device/ethernets"), ("PUT", "/device/ethernets"),
          ("GET", "/device/time"), ("GET", "/system/status")]
for method, path in ROUTES:
    b = {"model": "stolen"} if method == "PUT" else None
    for what, tok in [("no token", None), ("a bad token", "abc.def.ghi")]:
        r = d.request(method, path, b, token=tok)
        t.ok(is_nested_error(r, 401) and
             r.header("WWW-Authenticate") is not None,
             "%s %s with %s: 401" % (method, path, what), r)
t.eq(general(d)["model"], body["model"],
     "PUTs without a token changed nothing")
r = d.get("/device/general", header_style="mx")
t.eq(r.status, 200, "the mx-api-token header works too")

t.ok(d.alive(), "the daemon is still running")
t.done()

#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Remote REST calls over MQTT (uplinkd(8) REMOTE CALLS, DESIGN §3 "Remote
# API"), through a real mosquitto: a generic client with remoteAPI on,
# made over REST, takes request documents on its request topic and
# answers {"request-id", "state", "payload"} on its response topic.
#
# Covered: GET /device/general against the very answer of GET over HTTP;
# PUT with requestBody as an object and as a string holding JSON, the
# change seen over HTTP; request-id echoed with its type; query strings;
# 404 and 400 of the handlers as states with their bodies;
# request-expired-time in the past (both spellings), unparseable, in the
# future and absent (an expired PUT must not run); no request-id; a bad
# method; a relative path; routes never callable remotely (/auth); the
# remote_api_allow list of a second daemon; malformed messages (counted
# in /metrics, logged, answered only when a request-id can be read, never
# fatal); 1,000 requests in a burst answered in the order they were
# published; a call that changes its own client (it answers, and the
# client reconnects with the new setting); one log line per call.
#
# The whole file runs under a 120 s alarm and every wait is bounded: a
# hang is a failed test point.

import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()
t.time_limit(120)

if not have_mosquitto():
    print("1..0 # SKIP mosquitto is not installed")
    sys.exit(0)
try:
    import paho.mqtt.client as mqtt
except ImportError:
    print("1..0 # SKIP python3-paho-mqtt is not installed")
    sys.exit(0)

T0 = time.monotonic()
# Waits never run past this, so that a dead daemon fails points quickly
# instead of running into the alarm.
DEADLINE = T0 + 110
VOLATILE = ("uptimeSec",)


def left(timeout):
    return max(0.0, min(timeout, DEADLINE - time.monotonic()))


# --- a broker that logs to a file ------------------------------------------

class LogBroker(Broker):
    """A mosquitto that logs every event to a file (connects show the
    client id and keep-alive) and queues enough for the burst, so that
    whatever is lost is lost by the daemon, not the broker."""

    filelog = True

    def config(self):
        return ["allow_anonymous true", "max_queued_messages 100000"]

    def connects(self, needle):
        try:
            with open(self.brokerlog, errors="replace") as f:
                return [ln for ln in f
                        if "New client connected" in ln and needle in ln]
        except OSError:
            return []


# --- the cloud side: one paho client on the broker -------------------------

class Cloud:
    """Publishes requests on req and collects every message on the topics
    of resp (separated by blanks), in the order the broker delivers them:
    (topic, bytes, retain)."""

    def __init__(self, port, req, resp, name):
        self.req = req
        self.msgs = []
        self.cv = threading.Condition()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="t80-%s-%d" % (name, os.getpid()),
                             clean_session=True)
        self.c.max_inflight_messages_set(100)
        self.c.max_queued_messages_set(0)
        self.c.on_message = self._message
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        self.c.subscribe([(x, 1) for x in resp.split()])
        if not self.subscribed.wait(10):
            t.bail("the test's MQTT client could not subscribe to " + resp)

    def _message(self, client, userdata, msg):
        with self.cv:
            self.msgs.append((msg.topic, msg.payload, msg.retain))
            self.cv.notify_all()

    def mark(self):
        with self.cv:
            return len(self.msgs)

    def publish(self, payload):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        return self.c.publish(self.req, payload, qos=1)

    def wait(self, start, pred, timeout=5.0):
        """The first answer from index start on that pred accepts, as
        (index, parsed document, raw bytes, retain); None on timeout."""
        deadline = time.monotonic() + left(timeout)
        i = start
        with self.cv:
            while True:
                while i < len(self.msgs):
                    _, raw, retain = self.msgs[i]
                    try:
                        doc = json.loads(raw)
                    except ValueError:
                        doc = None
                    if pred(doc):
                        return i, doc, raw, retain
                    i += 1
                rest = deadline - time.monotonic()
                if rest <= 0:
                    return None
                self.cv.wait(rest)

    def since(self, start, end=None):
        with self.cv:
            return self.msgs[start:end]

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def rid_is(want):
    """Accepts an answer whose request-id is want, whatever its JSON type
    (the type is checked apart, so that a wrong type fails one point
    instead of timing out)."""
    def pred(doc):
        if not isinstance(doc, dict) or "request-id" not in doc:
            return False
        got = doc["request-id"]
        if want is None or got is None:
            return want is None and got is None
        return str(got) == str(want)
    return pred


CALLS = []      # (daemon, request-id, method, path, state): for the log


def call(cloud, path, method="GET", rid=None, body=None, expired=None,
         extra=None, timeout=5.0, daemon=None):
    """One request; the answer document (None if none came).  rid None
    makes a unique string id."""
    global _seq
    if rid is None:
        _seq += 1
        rid = "c%d" % _seq
    headers = [{"request-id": rid}]
    if expired is not None:
        headers.append({"request-expired-time": expired})
    doc = {"path": path, "method": method, "headers": headers}
    if body is not None:
        doc["requestBody"] = body
    if extra:
        doc.update(extra)
    start = cloud.mark()
    cloud.publish(doc)
    got = cloud.wait(start, rid_is(rid), timeout)
    ans = got[1] if got else None
    lp = doc.get("path") if isinstance(doc.get("path"), str) else "-"
    lm = doc.get("method") if isinstance(doc.get("method"), str) else "-"
    CALLS.append((daemon or d, rid, lm, lp,
                  ans.get("state") if isinstance(ans, dict) else None))
    return ans


_seq = 0


def wait_remote(cloud, path="/health", timeout=15):
    """Send probe requests until one is answered: the client is connected
    and subscribed.  The answer, or None."""
    deadline = time.monotonic() + left(timeout)
    n = 0
    while time.monotonic() < deadline:
        n += 1
        rid = "probe-%d-%d" % (id(cloud) % 1000, n)
        start = cloud.mark()
        cloud.publish({"path": path, "method": "GET",
                       "headers": [{"request-id": rid}]})
        got = cloud.wait(start, rid_is(rid), 0.25)
        if got:
            return got[1]
    return None


def http(daemon, path):
    try:
        r = daemon.get(path)
    except OSError:
        return None
    return r.json if r.status == 200 else None


def general(daemon):
    j = http(daemon, "/device/general")
    return j["data"] if j else None


def stable(g):
    """The general document without its volatile fields."""
    if not isinstance(g, dict):
        return g
    return {k: v for k, v in g.items() if k not in VOLATILE}


def strip(doc):
    """A {"data": general} document without its volatile fields."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return doc
    return {"data": stable(doc["data"])}


def metric(daemon, name):
    try:
        r = daemon.get("/metrics")
    except OSError:
        return None
    if r.status != 200:
        return None
    for line in r.body.decode(errors="replace").splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == name:
            return int(float(f[1]))
    return None


def err_text(payload):
    """The message of a flat or a nested error body, or None."""
    if not isinstance(payload, dict) or list(payload) != ["error"]:
        return None
    e = payload["error"]
    if isinstance(e, dict):
        e = e.get("message")
    return e if isinstance(e, str) else None


def is_answer(ans, rid, state):
    """An answer document with exactly the three members, the request-id
    of the same JSON type and value, and the state."""
    return (isinstance(ans, dict)
            and list(ans) == ["request-id", "state", "payload"]
            and type(ans["request-id"]) is type(rid)
            and ans["request-id"] == rid and ans["state"] == state)


def log_calls(daemon):
    """The remote: call lines of a daemon's log, as tuples."""
    out = []
    pat = re.compile(r" remote: client=(\S+) request-id=(\S+) method=(\S+) "
                     r"path=(\S+) state=(\d+)$")
    for ln in daemon.log().splitlines():
        m = pat.search(ln)
        if m:
            out.append(m.groups())
    return out


# --- setup -----------------------------------------------------------------

b = LogBroker()
d = Daemon()

REQ, RESP, RESP2 = "t80/gw/req/#", "t80/gw/resp", "t80/gw/resp2"
cloud = Cloud(b.port, "t80/gw/req/x", RESP + " " + RESP2, "a")

r = d.post("/mqtt", {"server": "127.0.0.1", "port": b.port, "enable": True,
                     "clientID": "t80-gateway",
                     "remoteAPI": {"enable": True, "requestSubTopic": REQ,
                                   "responsePubTopic": RESP}})
t.eq(r.status, 200, "POST /mqtt with remoteAPI on: 200")
cid = None
if r.json and isinstance(r.json.get("data"), list) and r.json["data"]:
    cid = r.json["data"][-1].get("id")
ra = (r.json["data"][-1].get("remoteAPI")
      if cid is not None else None)
t.eq(ra, {"enable": True, "requestSubTopic": REQ, "responsePubTopic": RESP,
          "qos": 1, "retain": False},
     "remoteAPI stored with its defaults (qos 1, retain false)")
t.ok(wait_for(lambda: [c.get("status") for c in
                      (http(d, "/mqtt") or {}).get("data", [])
                      if c.get("id") == cid] == ["connected"],
              timeout=left(10)),
     "the client connects to the broker")
probe = wait_remote(cloud)
if probe is None:
    t.ok(False, "a probe request is answered (connected and subscribed)",
         d.log())
    t.done()
t.ok(True, "a probe request is answered (connected and subscribed)")

# --- GET round trip: the exact answer document -----------------------------

start = cloud.mark()
cloud.publish({"path": "/device/general", "method": "GET",
               "headers": [{"request-id": "1"}]})
got = cloud.wait(start, rid_is("1"))
want = http(d, "/device/general")
ans = got[1] if got else None
CALLS.append((d, "1", "GET", "/device/general",
              ans.get("state") if ans else None))
t.ok(is_answer(ans, "1", 200),
     "GET /device/general: {\"request-id\":\"1\",\"state\":200,\"payload\":…}"
     " and nothing else", got)
t.ok(got is not None and got[0] == start and got[1] is not None
     and cloud.since(start)[0][0] == RESP,
     "the answer comes on responsePubTopic", cloud.since(start))
t.ok(got is not None and not got[3], "the answer is not retained")
pl = ans.get("payload") if ans else None
t.eq(strip(pl), strip(want),
     "GET /device/general: payload is what GET over HTTP answers "
     "(uptimeSec aside)")
t.ok(isinstance(pl, dict) and isinstance(pl.get("data"), dict)
     and want is not None
     and list(pl["data"]) == list(want["data"])
     and isinstance(pl["data"].get("uptimeSec"), int)
     and abs(pl["data"]["uptimeSec"] - want["data"]["uptimeSec"]) <= 2,
     "GET /device/general: same members in the same order, uptimeSec "
     "within 2 s of HTTP's", (pl, want))

for path in ["/device/ethernets", "/users", "/mqtt", "/tags/list?limit=1",
             "/tags/list?limit=2&offset=1"]:
    ans = call(cloud, path)
    want = http(d, path)
    t.ok(isinstance(ans, dict) and ans.get("state") == 200
         and ans.get("payload") == want and want is not None,
         "GET %s: state 200, payload as over HTTP" % path, (ans, want))
ans = call(cloud, "/tags/list?limit=1")
pl = ans.get("payload") if ans else None
t.ok(isinstance(pl, dict) and pl.get("limit") == 1
     and isinstance(pl.get("data"), list) and len(pl["data"]) == 1,
     "the query string reaches the handler: limit=1 gives one tag", ans)
ans = call(cloud, "/device/time")
pl = ans.get("payload") if ans else None
t.ok(isinstance(pl, dict) and isinstance(pl.get("data"), dict)
     and isinstance(pl["data"].get("epochMs"), int)
     and abs(pl["data"]["epochMs"] / 1000 - time.time()) < 5,
     "GET /device/time: state 200 and this clock", ans)
ans = call(cloud, "/system/status")
want = http(d, "/system/status")
t.ok(isinstance(ans, dict) and ans.get("state") == 200
     and isinstance(ans.get("payload"), dict) and want is not None
     and list(ans["payload"]["data"]) == list(want["data"]),
     "GET /system/status: state 200, the members of HTTP's answer", ans)

ans = call(cloud, "/tags/monitor/system/status?tags=cpuUsage")
want = http(d, "/tags/monitor/system/status?tags=cpuUsage")
t.ok(isinstance(ans, dict) and ans.get("state") == 200 and want is not None
     and isinstance(ans.get("payload"), dict)
     and [x.get("tagName") for x in ans["payload"].get("data", [])]
     == [x.get("tagName") for x in want["data"]] == ["cpuUsage"],
     "GET /tags/monitor/system/status?tags=cpuUsage: the snapshot", ans)
ans = call(cloud, "/tags/monitor/system/status?onChanged=true")
t.ok(isinstance(ans, dict) and ans.get("state") == 400
     and err_text(ans.get("payload")),
     "a stream (onChanged=true) cannot be opened remotely: state 400", ans)
ans = call(cloud, "/tags/monitor/system/status?streamInterval=abc")
r = d.get("/tags/monitor/system/status?streamInterval=abc")
t.ok(isinstance(ans, dict) and ans.get("state") == 400 == r.status
     and ans.get("payload") == r.json
     and (err_text(ans.get("payload")) or "").startswith("streamInterval"),
     "a bad query parameter: state 400 naming streamInterval, as over HTTP",
     (ans, r))

# --- PUT round trips -------------------------------------------------------

ans = call(cloud, "/device/general", "PUT", rid="put-obj",
           body={"model": "R-80", "serialNumber": "SN-0080"})
after = http(d, "/device/general")
t.ok(is_answer(ans, "put-obj", 200),
     "PUT /device/general, requestBody an object: state 200", ans)
t.eq(strip(ans.get("payload") if ans else None), strip(after),
     "PUT answer payload: the stored document, as GET over HTTP gives it")
t.eq(after and [after["data"]["model"], after["data"]["serialNumber"]],
     ["R-80", "SN-0080"], "PUT with an object: the change is seen over HTTP")

ans = call(cloud, "/device/general", "PUT", rid="put-str",
           body=json.dumps({"description": "set as a string"}))
t.ok(is_answer(ans, "put-str", 200),
     "PUT /device/general, requestBody a JSON string: state 200", ans)
t.eq((general(d) or {}).get("description"), "set as a string",
     "PUT with a string body: the change is seen over HTTP")

ans = call(cloud, "/device/general", "PUT", body='{"description": ')
t.ok(isinstance(ans, dict) and ans.get("state") == 400
     and (err_text(ans.get("payload")) or "").startswith("requestBody"),
     "requestBody a string that is not JSON: state 400 naming requestBody",
     ans)
t.eq((general(d) or {}).get("description"), "set as a string",
     "... and nothing changed")

# --- request-id types ------------------------------------------------------

ans = call(cloud, "/health", rid=424242)
t.ok(is_answer(ans, 424242, 200), "a numeric request-id comes back a number",
     ans)
ans = call(cloud, "/health", rid="424243")
t.ok(is_answer(ans, "424243", 200),
     "a string request-id comes back a string", ans)
start = cloud.mark()
cloud.publish({"path": "/health", "method": "GET",
               "headers": {"request-id": "obj-headers"}})
got = cloud.wait(start, rid_is("obj-headers"))
CALLS.append((d, "obj-headers", "GET", "/health",
              got[1].get("state") if got else None))
t.ok(got and is_answer(got[1], "obj-headers", 200),
     "headers as an object (not an array) are read as well", got)

# --- errors of the handlers come back as states ----------------------------

for path in ["/no/such/resource", "/mqtt/9999/store-and-forward",
             "/tags/access/system/status/noSuchTag"]:
    ans = call(cloud, path)
    r = d.get(path)
    t.ok(isinstance(ans, dict) and ans.get("state") == 404 == r.status
         and ans.get("payload") == r.json and err_text(r.json),
         "GET %s: state 404 with the handler's error body" % path,
         (ans, r))

before = stable(general(d))
ans = call(cloud, "/device/general", "PUT", body={"model": 80})
r = d.put("/device/general", {"model": 80})
t.ok(isinstance(ans, dict) and ans.get("state") == 400 == r.status
     and ans.get("payload") == r.json
     and (err_text(ans.get("payload")) or "").startswith("model:"),
     "PUT a number for model: state 400, the HTTP error body naming model",
     (ans, r))
t.eq(stable(general(d)), before, "... and nothing changed")

ans = call(cloud, "/device/general", "PUT")
r = d.put("/device/general")
t.ok(isinstance(ans, dict) and ans.get("state") == 400 == r.status
     and ans.get("payload") == r.json,
     "PUT without requestBody: state 400 as over HTTP", (ans, r))

ans = call(cloud, "/health", "DELETE")
t.ok(isinstance(ans, dict) and ans.get("state") == 405,
     "DELETE /health: state 405", ans)

# --- request-expired-time --------------------------------------------------

EXP0 = metric(d, "uplinkd_remote_expired_total")
before = (general(d) or {}).get("description")
for when in ["2001-01-01T00:00:00Z", "2001-01-01 00:00:00.123456",
             "2001-01-01T02:00:00+02:00"]:
    ans = call(cloud, "/device/general", "PUT", expired=when,
               body={"description": "expired " + when})
    t.ok(isinstance(ans, dict) and ans.get("state") == 408
         and err_text(ans.get("payload")),
         "expired %s: state 408 with a reason" % when, ans)
    t.eq((general(d) or {}).get("description"), before,
         "expired %s: the PUT did not run" % when)
for when in ["yesterday", "2001-02-30 00:00:00", "20010101T000000Z", 12345]:
    ans = call(cloud, "/device/general", "PUT", expired=when,
               body={"description": "unparseable %s" % when})
    t.ok(isinstance(ans, dict) and ans.get("state") == 408
         and err_text(ans.get("payload")),
         "unparseable time %r: state 408 with a reason" % when, ans)
    t.eq((general(d) or {}).get("description"), before,
         "unparseable time %r: the PUT did not run" % when)
t.eq(metric(d, "uplinkd_remote_expired_total"),
     None if EXP0 is None else EXP0 + 7,
     "/metrics: uplinkd_remote_expired_total counts the 7")
for when in ["2099-12-31T23:59:59Z", "2099-12-31 23:59:59.5"]:
    ans = call(cloud, "/device/general", "PUT", expired=when,
               body={"description": "future " + when})
    t.ok(isinstance(ans, dict) and ans.get("state") == 200,
         "future time %s: runs, state 200" % when, ans)
    t.eq((general(d) or {}).get("description"), "future " + when,
         "future time %s: the change is seen over HTTP" % when)
ans = call(cloud, "/device/general", "PUT", body={"description": "no expiry"})
t.ok(isinstance(ans, dict) and ans.get("state") == 200,
     "no request-expired-time: runs, state 200", ans)
t.eq((general(d) or {}).get("description"), "no expiry",
     "no request-expired-time: the change is seen over HTTP")

# --- requests that are not valid -------------------------------------------

before = stable(general(d))
for name, doc in [
        ("no request-id", {"path": "/device/general", "method": "PUT",
                           "headers": [{"request-expired-time":
                                        "2099-01-01T00:00:00Z"}],
                           "requestBody": {"description": "no id"}}),
        ("no headers", {"path": "/device/general", "method": "PUT",
                        "requestBody": {"description": "no headers"}}),
        ("request-id true", {"path": "/device/general", "method": "PUT",
                             "headers": [{"request-id": True}],
                             "requestBody": {"description": "bool id"}})]:
    start = cloud.mark()
    cloud.publish(doc)
    got = cloud.wait(start, rid_is(None))
    CALLS.append((d, None, "PUT", "/device/general",
                  got[1].get("state") if got else None))
    t.ok(got and list(got[1]) == ["request-id", "state", "payload"]
         and got[1]["request-id"] is None and got[1]["state"] == 400
         and err_text(got[1]["payload"]),
         "%s: state 400, request-id null, a reason" % name, got)
t.eq(stable(general(d)), before, "... and none of them ran")

ans = call(cloud, "/device/general", "FETCH")
t.ok(isinstance(ans, dict) and ans.get("state") == 400
     and "method" in (err_text(ans.get("payload")) or ""),
     "method FETCH: state 400 naming method", ans)
ans = call(cloud, "/health", extra={"method": None})
t.ok(isinstance(ans, dict) and ans.get("state") == 400,
     "no method: state 400", ans)
ans = call(cloud, "device/general")
t.ok(isinstance(ans, dict) and ans.get("state") == 400
     and "path" in (err_text(ans.get("payload")) or ""),
     "path without a leading /: state 400 naming path", ans)
ans = call(cloud, "/health", extra={"path": 7})
t.ok(isinstance(ans, dict) and ans.get("state") == 400,
     "path a number: state 400", ans)
ans = call(cloud, "/auth", "POST",
           body={"name": "admin", "password": d.admin_password})
t.ok(isinstance(ans, dict) and ans.get("state") == 403
     and err_text(ans.get("payload")),
     "POST /auth: state 403 with a reason", ans)
t.ok(isinstance(ans, dict) and "token" not in json.dumps(ans),
     "... and no token in it", ans)
ans = call(cloud, "/users/me")
t.ok(isinstance(ans, dict) and ans.get("state") == 403,
     "GET /users/me: state 403 (not callable remotely)", ans)

# --- malformed messages ----------------------------------------------------

MAL0 = metric(d, "uplinkd_remote_malformed_total")
LOG0 = d.log().count("malformed request")
CRASHED = []


def survive(what):
    """After a message that may have killed the daemon: if it did, say so,
    start it again on the same data (the client comes back from the
    store) so that the rest of the file still tests something."""
    if d.alive():
        return True
    CRASHED.append(what[:40])
    t.diag("the daemon died (status %s) after %r; started again"
           % (d.proc.returncode, what[:40]))
    d.start()
    if wait_remote(cloud) is None:
        t.bail("the daemon does not answer remote calls after a restart")
    return False


start = cloud.mark()
cloud.publish('{"headers":[{"request-id":"9"}], broken')
got = cloud.wait(start, rid_is("9"))
t.ok(got and list(got[1]) == ["request-id", "state", "payload"]
     and got[1]["request-id"] == "9" and got[1]["state"] == 400
     and err_text(got[1]["payload"]),
     "malformed JSON with a readable request-id \"9\": answered, state 400",
     got)
t.ok(survive("request-id 9"), "... and the daemon lives on")
start = cloud.mark()
cloud.publish('{"headers":[{"request-id":77}], broken')
got = cloud.wait(start, rid_is(77))
t.ok(got and is_answer(got[1], 77, 400),
     "malformed JSON with a numeric request-id 77: answered with 77, a "
     "number, as received", got)
survive("request-id 77")

JUNK = ["not json at all", "[1, 2, 3]", '"a string"', "", "null", "7",
        '{"path": "/health", "request-id"',
        '{"headers":[{"request-id":"", "x"', "A" * 70000]
for n, junk in enumerate(JUNK):
    start = cloud.mark()
    cloud.publish(junk)
    ans = call(cloud, "/health", rid="after-junk-%d" % n)
    between = [m for m in cloud.since(start)
               if b'"after-junk-%d"' % n not in m[1]]
    lived = survive(junk)
    t.ok(lived and isinstance(ans, dict) and ans.get("state") == 200
         and not between,
         "%r: not answered, the daemon lives on and answers the next "
         "request" % junk[:40], (ans, between))
NMAL = 2 + len(JUNK)
mal = metric(d, "uplinkd_remote_malformed_total")
t.ok(not CRASHED and MAL0 is not None and mal == MAL0 + NMAL,
     "/metrics: uplinkd_remote_malformed_total counts the %d malformed "
     "messages" % NMAL, "before %s, after %s, crashed on %r"
     % (MAL0, mal, CRASHED))
t.eq(d.log().count("malformed request") - LOG0, NMAL,
     "each malformed message is logged once")
t.ok(not CRASHED, "no malformed message stopped the daemon", CRASHED)

# --- 1,000 requests in a burst ---------------------------------------------

N = 1000
start = cloud.mark()
t_burst = time.monotonic()
for i in range(1, N + 1):
    cloud.publish({"path": "/health", "method": "GET",
                   "headers": [{"request-id": i}]})
got = cloud.wait(start, rid_is(N), timeout=40)
with cloud.cv:
    cloud.cv.wait_for(lambda: len(cloud.msgs) - start >= N, left(2))
burst = []
for _, raw, _ in cloud.since(start):
    try:
        burst.append(json.loads(raw))
    except ValueError:
        burst.append(raw)
t.diag("burst: %d answers in %.2f s" % (len(burst),
                                         time.monotonic() - t_burst))
t.eq(len(burst), N, "burst: 1,000 requests, 1,000 answers")
ids = [a.get("request-id") if isinstance(a, dict) else a for a in burst]
t.ok(ids == list(range(1, N + 1)),
     "burst: request-ids 1..1000 in the order they were published",
     "first out of order at %s" % next(
         (i for i, v in enumerate(ids) if v != i + 1), None))
t.ok(all(isinstance(a, dict) and a.get("state") == 200
         and isinstance(a.get("payload"), dict) for a in burst),
     "burst: every answer is state 200 with /health's body")
for i in range(1, N + 1):
    CALLS.append((d, i, "GET", "/health", 200))
lines = [c for c in log_calls(d) if c[2] == "GET" and c[3] == "/health"
         and re.fullmatch(r"\d+", c[1]) and int(c[1]) <= N]
t.eq([int(c[1]) for c in lines], list(range(1, N + 1)),
     "burst: the log has one line per call, in order")
t.eq(metric(d, "uplinkd_remote_dropped_total"), 0,
     "/metrics: uplinkd_remote_dropped_total is 0")

# --- remote_api_allow on a second daemon -----------------------------------

d2 = Daemon(conf={"remote_api_allow": "/device"})
cloud2 = Cloud(b.port, "t80/d2/req", "t80/d2/resp", "b")
r = d2.post("/mqtt", {"server": "127.0.0.1", "port": b.port, "enable": True,
                      "remoteAPI": {"enable": True,
                                    "requestSubTopic": "t80/d2/req",
                                    "responsePubTopic": "t80/d2/resp"}})
t.eq(r.status, 200, "remote_api_allow = \"/device\": client created")
ok2 = wait_remote(cloud2, "/device/time") is not None
t.ok(ok2, "remote_api_allow: a probe on /device/time is answered",
     d2.log())
for path, state in [("/device/time", 200), ("/device/general", 200),
                    ("/device/ethernets?x=1", 200), ("/tags/list", 403),
                    ("/tags/list?limit=1", 403), ("/health", 403),
                    ("/devices", 403), ("/mqtt", 403)]:
    ans = call(cloud2, path, daemon=d2, timeout=5 if ok2 else 0.1)
    t.ok(isinstance(ans, dict) and ans.get("state") == state
         and (state == 200 or err_text(ans.get("payload"))),
         "remote_api_allow = \"/device\": %s → %d" % (path, state), ans)
ans = call(cloud2, "/tags/virtual", "POST", daemon=d2,
           timeout=5 if ok2 else 0.1,
           body={"srcName": "v", "tagName": "t", "dataType": "int64"})
t.ok(isinstance(ans, dict) and ans.get("state") == 403,
     "remote_api_allow: POST /tags/virtual → 403", ans)
r = d2.get("/tags/list")
t.ok(r.status == 200 and r.json and not any(
     x.get("tagName") == "t" and x.get("srcName") == "v"
     for x in r.json.get("data", [])),
     "... and no virtual tag was made", r)

# remoteAPI.retain and remoteAPI.qos, changed over HTTP on daemon 2.
RA2 = {"enable": True, "requestSubTopic": "t80/d2/req",
       "responsePubTopic": "t80/d2/resp"}
r = d2.put("/mqtt/1", {"remoteAPI": dict(RA2, qos=1, retain=True)})
t.eq(r.status, 200, "daemon 2: PUT remoteAPI.retain true over HTTP: 200")
ok2 = wait_remote(cloud2, "/device/time", timeout=10) is not None
ans = call(cloud2, "/device/time", rid="retained-1", daemon=d2,
           timeout=5 if ok2 else 0.1)
t.ok(isinstance(ans, dict) and ans.get("state") == 200,
     "remoteAPI.retain true: the call is answered", ans)
late = Cloud(b.port, "t80/d2/req", "t80/d2/resp", "late")
got = late.wait(0, rid_is("retained-1"), 5 if ans else 0.1)
t.ok(got is not None and got[3],
     "remoteAPI.retain true: a subscriber that comes later gets the last "
     "answer, retained", late.since(0))
late.stop()
r = d2.put("/mqtt/1", {"remoteAPI": dict(RA2, qos=0, retain=False)})
t.eq(r.status, 200, "daemon 2: PUT remoteAPI.qos 0 over HTTP: 200")
ok2 = wait_remote(cloud2, "/device/time", timeout=8) is not None
answers = [call(cloud2, "/device/time", daemon=d2, timeout=3 if ok2 else 0.1)
           for _ in range(3)]
t.ok(ok2 and all(isinstance(a, dict) and a.get("state") == 200
                 for a in answers) and d2.alive(),
     "remoteAPI.qos 0: calls are answered and the daemon lives on",
     (answers, d2.alive(), d2.proc.returncode))
cloud2.stop()

# --- a call that changes its own client ------------------------------------

CONN0 = d.log().count("link mqtt-%s: connected" % cid)
ans = call(cloud, "/mqtt/%s" % cid, "PUT", rid="self-change",
           body={"keepAliveSec": 30}, timeout=10)
t.ok(isinstance(ans, dict) and ans.get("state") == 200
     and isinstance(ans.get("payload"), dict)
     and (ans["payload"].get("data") or {}).get("keepAliveSec") == 30,
     "PUT /mqtt/{own id} keepAliveSec 30 over its own channel: answered, "
     "state 200", ans)
t.eq([c.get("keepAliveSec") for c in (http(d, "/mqtt") or {}).get("data", [])
      if c.get("id") == cid], [30], "... the change is seen over HTTP")
t.ok(wait_for(lambda: d.log().count("link mqtt-%s: connected" % cid) > CONN0,
              timeout=left(10)),
     "... and the client reconnects", d.log()[-2000:])
t.ok(wait_for(lambda: b.connects("t80-gateway (p2, c1, k30"),
              timeout=left(5)),
     "... with keep-alive 30 at the broker", b.connects("t80-gateway"))
t.ok(wait_remote(cloud, timeout=10) is not None,
     "after the change the client still answers")

# The same call changing remoteAPI itself: the answer may go to the old
# or the new response topic, but it must go somewhere.
ans = call(cloud, "/mqtt/%s" % cid, "PUT", rid="self-topic",
           body={"remoteAPI": {"responsePubTopic": RESP2}}, timeout=8)
t.ok(isinstance(ans, dict) and ans.get("state") == 200,
     "PUT /mqtt/{own id} with a new remoteAPI.responsePubTopic: answered, "
     "state 200", ans)
t.eq([c.get("remoteAPI", {}).get("responsePubTopic") for c in
      (http(d, "/mqtt") or {}).get("data", []) if c.get("id") == cid],
     [RESP2], "... the change is seen over HTTP")
start = cloud.mark()
probe = wait_remote(cloud, timeout=10)
t.ok(probe is not None and all(m[0] == RESP2 for m in cloud.since(start)),
     "... and answers go to the new response topic",
     cloud.since(start)[-3:])

# --- the log: one line per call --------------------------------------------

for daemon in (d, d2):
    seen = {}
    for c in log_calls(daemon):
        seen[c[1:]] = seen.get(c[1:], 0) + 1
    bad = []
    for dm, rid, method, path, state in CALLS:
        if dm is not daemon or state is None:
            continue
        key = ("-" if rid is None else json.dumps(rid), method or "-",
               path, str(state))
        if rid is None:
            ok = seen.get(key, 0) >= 1
        else:
            ok = seen.get(key, 0) == 1
        if not ok:
            bad.append((key, seen.get(key, 0)))
    t.ok(not bad and all(c[0] == "mqtt-1" for c in log_calls(daemon)),
         "%s: every answered call is one log line remote: client=mqtt-1 "
         "request-id=… method=… path=… state=…" %
         ("daemon" if daemon is d else "daemon 2"), bad[:10])

t.ok(d.alive(), "the daemon still runs")
t.ok(d2.alive(), "daemon 2 still runs")
cloud.stop()
t.eq(d.stop(), 0, "the daemon stops cleanly with TERM")
t.eq(d2.stop(), 0, "daemon 2 stops cleanly with TERM")
t.diag("ran in %.1f s" % (time.monotonic() - T0))
t.done()

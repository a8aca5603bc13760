#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Store and forward of a generic MQTT client against a real mosquitto,
# QoS 1 everywhere, counting sequence numbers (the tag values) at one
# subscriber that was subscribed before anything was sent.
#
# The broker here keeps its sessions across its own restarts
# (persistence on a clean stop, no limit on queued messages), and the
# subscriber has a fixed client id with a persistent session: so a
# message the broker acknowledged to the daemon reaches the subscriber
# even when the daemon reconnects before the subscriber does, and what
# the subscriber misses is exactly what the daemon failed to deliver.
# Redeliveries by the broker itself carry the DUP flag and are told
# apart from copies the daemon sent twice.
#
# Parts: the REST resource (defaults, validation, read-only and unknown
# fields, persistence, 404); 20 broker restarts under a steady stream;
# kill -9 of the daemon while it buffers; a clean stop with the backlog
# still in memory; live messages ahead of a paced replay, and strict
# FIFO order; a replay cut by an outage and by a restart; the log.

import json
import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()

if not have_mosquitto():
    print("1..0 # SKIP mosquitto is not installed")
    sys.exit(0)
try:
    import paho.mqtt.client as mqtt
except ImportError:
    print("1..0 # SKIP python3-paho-mqtt is not installed")
    sys.exit(0)

t.time_limit(235)
T0 = time.monotonic()

WINDOW = 32             # the link's in-flight window
REPLAY_WINDOW = 64      # replayed messages in flight at most


# --- the broker and the subscriber ------------------------------------------

def values_of(payload):
    """The tag values a message carries (every value of every tag)."""
    doc = json.loads(payload)
    out = []
    for prv in doc["tags"].values():
        for src in prv.values():
            for tag in src.values():
                for v in tag["values"]:
                    out.append(v["value"])
    return out


class Subscriber:
    """Every value on saf/# with its topic, DUP flag and arrival time."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.got = []           # (topic, value, dup, monotonic time)
        self.bad = []
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="t70-sub-%d" % os.getpid(),
                             clean_session=False)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = self._connected
        self.c.on_subscribe = self._subscribed
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _connected(self, client, userdata, flags, rc):
        client.subscribe("saf/#", 1)

    def _subscribed(self, client, userdata, mid, granted):
        self.subscribed.set()

    def _message(self, client, userdata, msg):
        now = time.monotonic()
        try:
            vals = values_of(msg.payload)
        except (ValueError, KeyError, TypeError, AttributeError):
            with self.lock:
                self.bad.append(bytes(msg.payload[:200]))
            return
        with self.lock:
            for v in vals:
                self.got.append((msg.topic, v, bool(msg.dup), now))

    def on(self, topic):
        """[(value, dup, time)] of one topic in arrival order."""
        with self.lock:
            return [(v, dup, w) for tp, v, dup, w in self.got if tp == topic]

    def seqs(self, topic):
        return [v for v, _, _ in self.on(topic)]

    def distinct(self, topic):
        return set(self.seqs(topic))

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def first_order(seqs):
    """The values in the order of their first arrival."""
    seen = set()
    out = []
    for v in seqs:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def dup_counts(arrivals):
    """(extra copies in all, of which redeliveries flagged DUP)."""
    seen = set()
    extra = flagged = 0
    for v, dup, _ in arrivals:
        if v in seen:
            extra += 1
            if dup:
                flagged += 1
        seen.add(v)
    return extra, flagged


def missing(got, n):
    m = sorted(set(range(1, n + 1)) - set(got))
    return "%d missing, first: %r" % (len(m), m[:20])


# --- the daemon -------------------------------------------------------------

# Sessions and queues kept across the restarts below.
broker = Broker(conf=PERSISTENT + ["max_inflight_messages 20"])
d = Daemon()
TOKEN = d.api_token
SAF = "/mqtt/1/store-and-forward"
sub = Subscriber(broker.port)
if not sub.subscribed.wait(10):
    t.bail("the subscriber got no SUBACK")


def saf():
    r = d.get(SAF, token=TOKEN)
    return r.json["data"] if r.status == 200 and r.json else None


def backlog():
    """The backlog object, or None if the daemon does not answer."""
    try:
        doc = saf()
    except OSError:
        return None
    return doc.get("backlog") if doc else None


def drained():
    b = backlog()
    return b is not None and b.get("messages") == 0 and \
        b.get("memoryMessages", 0) == 0


def backlog_is(n):
    b = backlog()
    return b is not None and b.get("messages") == n


def publish(tag, vals):
    """POST /tags/publish with int32 values of p/s/tag; True on 200."""
    recs = [{"prvdName": "p", "srcName": "s", "tagName": tag,
             "dataType": "int32", "dataValue": v} for v in vals]
    r = d.post("/tags/publish", recs if len(recs) != 1 else recs[0],
               kind="unix", token=TOKEN, timeout=10)
    return r.status == 200


def publish_range(tag, lo, hi, batch=250):
    ok = True
    for a in range(lo, hi + 1, batch):
        ok = publish(tag, range(a, min(a + batch, hi + 1))) and ok
    return ok


def kick():
    """Reconnect now instead of after the link's backoff (a PUT on the
    client reconnects it; the outbox stays)."""
    return d.put("/mqtt/1", {"enable": True}, token=TOKEN).status == 200


def link_status():
    try:
        r = d.get("/mqtt", token=TOKEN)
        return r.json["data"][0].get("status") if r.status == 200 else None
    except (OSError, KeyError, IndexError, TypeError):
        return None


def broker_down():
    """Stop the broker and wait until the daemon has seen it go: what
    is published next is buffered."""
    broker.stop()
    wait_for(lambda: link_status() not in (None, "connected"), 5)


class Stream(threading.Thread):
    """Publishes tag values start, start+1, ... one every interval s
    until stopped; sent holds the values the daemon accepted (200)."""

    def __init__(self, tag, start, interval, last=None):
        super().__init__(daemon=True)
        self.tag = tag
        self.v = start
        self.interval = interval
        self.last = last
        self.sent = []
        self.errors = []
        self.halt = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.halt.is_set():
            if self.last is not None and self.v > self.last:
                break
            try:
                if publish(self.tag, [self.v]):
                    self.sent.append(self.v)
                else:
                    self.errors.append((self.v, "status"))
            except OSError as e:
                self.errors.append((self.v, str(e)))
            self.v += 1
            nxt += self.interval
            self.halt.wait(max(0.0, nxt - time.monotonic()))

    def stop(self):
        self.halt.set()
        self.join(15)


r = d.post("/mqtt", {"enable": True, "server": "127.0.0.1",
                     "port": broker.port, "retryInterval": 10, "qos": 1},
           token=TOKEN)
if r.status != 200:
    t.bail("POST /mqtt: %r" % (r,))


# --- REST -------------------------------------------------------------------

DEFAULTS = {"enable": False, "desiredDiskCacheSizeMB": 64,
            "timeToLiveSec": 86400, "dropBehavior": "oldest",
            "sendDelayMillsecond": 0, "strictOrder": False,
            "targetDiskName": "System"}


def settings(doc):
    return {k: doc.get(k) for k in DEFAULTS} if doc else None


def is_count(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


r = d.get(SAF, token=TOKEN)
t.eq(r.status, 200, "GET store-and-forward answers 200")
doc = r.json["data"] if r.json else {}
t.eq(settings(doc), DEFAULTS, "GET store-and-forward: the documented defaults")

disks = doc.get("disks")
cache_dir = os.path.join(d.datadir, "cache")
sv = os.statvfs(cache_dir if os.path.isdir(cache_dir) else d.datadir)
ok = isinstance(disks, list) and len(disks) == 1
if ok:
    k = disks[0]
    ok = (k.get("name") == "System" and isinstance(k.get("mount"), str) and
          k["mount"].startswith("/") and isinstance(k.get("device"), str) and
          all(is_count(k.get(f)) for f in ("total", "used", "free")) and
          k["used"] <= k["total"] and k["free"] <= k["total"] and
          k["total"] == sv.f_blocks * sv.f_frsize and
          os.path.realpath(cache_dir).startswith(k["mount"]))
t.ok(ok, "disks[]: System with mount, device and statvfs total/used/free",
     json.dumps(disks))

b = doc.get("backlog")
ok = isinstance(b, dict) and all(is_count(b.get(f)) for f in
                                 ("messages", "bytes", "diskBytes",
                                  "oldestAgeSec")) and \
    isinstance(b.get("replayRate"), (int, float)) and \
    isinstance(b.get("dropped"), dict) and \
    sorted(b["dropped"]) == sorted(["ttl", "full-oldest", "full-newest",
                                    "disk-error"]) and \
    all(is_count(x) for x in b["dropped"].values())
t.ok(ok, "backlog: messages, bytes, diskBytes, oldestAgeSec, replayRate, "
     "dropped by reason", json.dumps(b))

for body, field in [({"desiredDiskCacheSizeMB": 0}, "desiredDiskCacheSizeMB"),
                    ({"timeToLiveSec": -1}, "timeToLiveSec"),
                    ({"dropBehavior": "x"}, "dropBehavior"),
                    ({"targetDiskName": "nope"}, "targetDiskName"),
                    ({"sendDelayMillsecond": 1001}, "sendDelayMillsecond")]:
    r = d.put(SAF, body, token=TOKEN)
    t.ok(r.status == 400 and field in r.body.decode(errors="replace"),
         "PUT %s: 400 naming %s" % (json.dumps(body), field), repr(r))
t.eq(settings(saf()), DEFAULTS, "refused PUTs changed nothing")

r = d.put(SAF, {"timeToLiveSec": 1234,
                "disks": [{"name": "Fake", "mount": "/nowhere"}],
                "backlog": {"messages": 5, "dropped": {"ttl": 9}},
                "noSuchField": 1}, token=TOKEN)
doc = r.json["data"] if r.status == 200 and r.json else {}
t.ok(r.status == 200 and doc.get("timeToLiveSec") == 1234,
     "PUT with disks, backlog and an unknown field: 200, the rest applied",
     repr(r))
doc = saf() or {}
t.ok("noSuchField" not in doc and
     [k.get("name") for k in doc.get("disks", [])] == ["System"] and
     doc.get("backlog", {}).get("messages") == 0 and
     doc.get("backlog", {}).get("dropped", {}).get("ttl") == 0,
     "disks, backlog and unknown fields of a PUT are ignored", json.dumps(doc))

CHANGED = {"enable": False, "desiredDiskCacheSizeMB": 8,
           "timeToLiveSec": 4321, "dropBehavior": "newest",
           "sendDelayMillsecond": 7, "strictOrder": True,
           "targetDiskName": "System"}
r = d.put(SAF, CHANGED, token=TOKEN)
t.eq(settings(r.json["data"]) if r.status == 200 else r, CHANGED,
     "PUT store-and-forward: the answer has the new settings")
r = d.put(SAF, {"sendDelayMillsecond": 9}, token=TOKEN)
t.eq(settings(r.json["data"]) if r.status == 200 else r,
     dict(CHANGED, sendDelayMillsecond=9),
     "a PUT merges over the stored settings")
d.stop()
d.start()
t.eq(settings(saf()), dict(CHANGED, sendDelayMillsecond=9),
     "settings persist across a restart")
t.eq((d.get("/mqtt/99" + SAF[7:], token=TOKEN).status,
      d.put("/mqtt/99" + SAF[7:], {"enable": True}, token=TOKEN).status),
     (404, 404), "GET and PUT for an unknown client: 404")

# Store and forward on, with the defaults, for the rest of the file.
r = d.put(SAF, dict(DEFAULTS, enable=True), token=TOKEN)
t.ok(r.status == 200 and r.json["data"]["enable"] is True,
     "store and forward on", repr(r))

for tag in ("fl", "k9", "tm", "lv", "ff", "rs"):
    r = d.post("/mqtt/1/messages",
               {"enable": True, "outputTopic": "saf/" + tag,
                "tags": {"p": {"s": [tag]}}, "samplingMode": "allValues",
                "sendOutThreshold": {"mode": "immediately"}}, token=TOKEN)
    if r.status != 200:
        t.bail("POST /mqtt/1/messages: %r" % (r,))
wait_for(lambda: link_status() == "connected", 10)


# --- 20 broker restarts under a steady stream -------------------------------

t.diag("20 broker restarts under a stream of one value every 10 ms")
log_mark = len(d.log())
stream = Stream("fl", 1, 0.010)
stream.start()
time.sleep(1.0)
rng = random.Random(70)
for i in range(20):
    # Frozen for a moment first, so that messages are in flight (sent,
    # not acknowledged) when it goes.
    broker.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.15)
    broker.proc.send_signal(signal.SIGCONT)
    broker.stop()
    time.sleep(0.5)
    broker.start()
    time.sleep(rng.uniform(0.6, 1.0))
time.sleep(1.0)
stream.stop()
N = len(stream.sent)
t.ok(N > 1000 and not stream.errors,
     "the stream ran through the restarts: %d values accepted, every "
     "request answered" % N, "errors: %r" % stream.errors[:10])
wait_for(lambda: drained() and
         set(range(1, N + 1)) <= sub.distinct("saf/fl"), 60, 0.2)
arr = sub.on("saf/fl")
got = [v for v, _, _ in arr]
t.ok(drained(), "after the last start the backlog drains (messages 0, "
     "outbox empty)", json.dumps(backlog()))
t.ok(set(range(1, N + 1)) <= set(got),
     "every one of the %d values arrived at least once" % N, missing(got, N))
extra, flagged = dup_counts(arr)
sent_twice = extra - flagged
connects = d.log()[log_mark:].count("link mqtt-1: connected")
t.diag("restarts: 20, daemon reconnections: %d, duplicates: %d (%d sent "
       "twice by the daemon, %d redelivered by the broker with DUP)"
       % (connects, extra, sent_twice, flagged))
t.ok(extra <= 20 * WINDOW,
     "duplicates only from the in-flight window: %d <= 20 x %d"
     % (extra, WINDOW))
t.ok(connects >= 5, "the daemon reconnected between restarts (%d times)"
     % connects)


# --- kill -9 while buffering ------------------------------------------------

t.diag("kill -9 of the daemon while the broker is down")
N9 = 2000
broker_down()
ok = publish_range("k9", 1, N9)
t.ok(ok and wait_for(lambda: backlog_is(N9), 15),
     "%d values buffered (backlog.messages %d)" % (N9, N9),
     json.dumps(backlog()))
time.sleep(0.5)                 # > cache_commit_ms (100)
d.kill9()
d.start()
t.ok(wait_for(lambda: backlog_is(N9), 5),
     "after kill -9 and a restart the backlog holds all %d" % N9,
     json.dumps(backlog()))
m = re.search(r'uplinkd_cache_messages\{link="mqtt-1"\} (\d+)',
              d.get("/metrics", token=TOKEN).body.decode())
t.eq(int(m.group(1)) if m else None, N9,
     "/metrics uplinkd_cache_messages after the restart")
broker.start()
wait_for(lambda: len(sub.distinct("saf/k9")) >= N9 and drained(), 40, 0.2)
got = sub.seqs("saf/k9")
t.ok(set(range(1, N9 + 1)) <= set(got),
     "every value committed before kill -9 arrived", missing(got, N9))
t.eq(first_order(got)[:N9 + 5], list(range(1, N9 + 1)),
     "... in order")


# --- a clean stop with the backlog in memory --------------------------------

t.diag("SIGTERM with the backlog still in memory (cache_commit_ms 10000)")
NT = 1000
broker_down()
d.write_conf({"cache_commit_ms": "10000"})
d.stop()
d.start()
ok = publish_range("tm", 1, NT)
t.ok(ok and wait_for(lambda: backlog_is(NT), 5),
     "%d values buffered, not yet committed" % NT, json.dumps(backlog()))
rc = d.stop()
t.eq(rc, 0, "SIGTERM: the daemon exits 0")
d.write_conf()
d.start()
t.ok(wait_for(lambda: backlog_is(NT), 5),
     "the next start finds all %d in the cache" % NT, json.dumps(backlog()))
broker.start()
kick()
wait_for(lambda: len(sub.distinct("saf/tm")) >= NT and drained(), 30, 0.2)
got = sub.seqs("saf/tm")
t.ok(set(range(1, NT + 1)) <= set(got) and
     first_order(got) == list(range(1, NT + 1)),
     "all %d arrive, in order" % NT, missing(got, NT))


# --- live first, and strict order -------------------------------------------

def paced_replay(tag, n, strict):
    """A backlog of n values of tag, replayed with sendDelayMillsecond 5
    while values n+1... are published live (one every 20 ms from the
    first replayed arrival until value n arrived); (arrivals, live sent)."""
    r = d.put(SAF, {"sendDelayMillsecond": 5, "strictOrder": strict},
              token=TOKEN)
    if r.status != 200:
        return [], [], "PUT: %r" % (r,)
    broker_down()
    if not publish_range(tag, 1, n) or not wait_for(lambda: backlog_is(n),
                                                     15):
        return [], [], "not buffered: %s" % json.dumps(backlog())
    broker.start()
    kick()
    topic = "saf/" + tag
    wait_for(lambda: sub.seqs(topic), 20)
    live = Stream(tag, n + 1, 0.020, last=n + 1500)
    live.start()
    wait_for(lambda: n in sub.distinct(topic), 60, 0.1)
    time.sleep(0.2)
    live.stop()
    total = live.v - 1
    wait_for(lambda: set(range(1, total + 1)) <= sub.distinct(topic) and
             drained(), 30, 0.1)
    return sub.on(topic), live.sent, None


t.diag("live first: a backlog of 2000 replayed 5 ms apart, live values "
       "alongside")
arr, live, err = paced_replay("lv", 2000, False)
got = [v for v, _, _ in arr]
total = max(live) if live else 2000
t.ok(not err and live and set(range(1, total + 1)) <= set(got),
     "live first: the backlog and %d live values all arrived" % len(live),
     err or missing(got, total))
t_last = min([w for v, _, w in arr if v == 2000] or [0])
early = [v for v, _, w in arr if v > 2000 and w < t_last]
t.ok(len(early) > 0,
     "live first: live values arrive before the replay ends (%d of %d "
     "before value 2000)" % (len(early), len(live)))
fo = first_order(got)
t.ok([v for v in fo if v <= 2000] == list(range(1, 2001)) and
     [v for v in fo if v > 2000] == sorted(v for v in fo if v > 2000),
     "live first: the replay in order, the live values in order")

t.diag("strictOrder: the same with new values queued behind the backlog")
arr, live, err = paced_replay("ff", 2000, True)
got = [v for v, _, _ in arr]
total = max(live) if live else 2000
t.ok(not err and live and set(range(1, total + 1)) <= set(got),
     "strictOrder: the backlog and %d live values all arrived" % len(live),
     err or missing(got, total))
fo = first_order(got)
t.ok(fo == list(range(1, total + 1)),
     "strictOrder: every value arrives in order 1..%d" % total,
     "first out of order: %r" % (next(((i, a, b) for i, (a, b) in
                                       enumerate(zip(fo, fo[1:])) if b < a),
                                      None),))


# --- a replay cut by an outage and by a restart -----------------------------

t.diag("replay of 500 values 20 ms apart, cut by an outage and a restart")
NR = 500
r = d.put(SAF, {"sendDelayMillsecond": 20, "strictOrder": False}, token=TOKEN)
broker_down()
ok = publish_range("rs", 1, NR) and wait_for(lambda: backlog_is(NR), 15)
t.ok(ok, "%d values buffered" % NR, json.dumps(backlog()))
broker.start()
kick()
wait_for(lambda: len(sub.distinct("saf/rs")) >= 100, 30, 0.05)
broker.stop()
cut1 = len(sub.seqs("saf/rs"))
mid = len(sub.distinct("saf/rs"))
t.ok(100 <= mid < NR, "the broker stopped in the middle of the replay "
     "(%d of %d arrived)" % (mid, NR))
time.sleep(1.0)
broker.start()
kick()
wait_for(lambda: len(sub.distinct("saf/rs")) >= 300, 30, 0.05)
rc = d.stop()
cut2 = len(sub.seqs("saf/rs"))
mid2 = len(sub.distinct("saf/rs"))
t.ok(rc == 0 and mid2 < NR, "the daemon stopped in the middle of the replay "
     "(%d of %d arrived)" % (mid2, NR))
d.start()
wait_for(lambda: len(sub.distinct("saf/rs")) >= NR and drained(), 40, 0.1)
got = sub.seqs("saf/rs")
t.ok(set(range(1, NR + 1)) <= set(got),
     "after the outage and the restart all %d arrived" % NR, missing(got, NR))
seg = [set(got[:cut1]), set(got[cut1:cut2]), set(got[cut2:])]
again = (len(seg[0] & (seg[1] | seg[2])), len(seg[1] & seg[2]))
t.diag("sent again after the outage: %d, after the restart: %d" % again)
t.ok(again[0] <= REPLAY_WINDOW and again[1] <= REPLAY_WINDOW,
     "the replay resumed where it stopped: at most %d values sent again "
     "after each cut (%d, %d)" % ((REPLAY_WINDOW,) + again))


# --- the log ----------------------------------------------------------------

log = d.log()
for what in ("buffering to disk started", "buffering to disk stopped",
             "replay started", "replay finished"):
    t.ok("outbox mqtt-1: " + what in log, "the log says: %s" % what)
t.eq(sub.bad, [], "every message at the subscriber was a well-formed payload")
t.ok(d.alive(), "the daemon is still running")

sub.stop()
t.diag("%.1f s" % (time.monotonic() - T0))
t.done()

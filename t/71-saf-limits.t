#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# The limits of store and forward, against a real mosquitto with QoS 1,
# counting sequence numbers at one subscriber subscribed before anything
# was sent: the size cap under a long outage (what the cache's files take
# on disk, as du counts, sampled all along) with both drop policies; the
# time to live; a disk that fills up (a 1 MB tmpfs, when this runs as
# root) and gets space back; and the daemon's memory while the backlog
# grows toward 1 GB.
#
# As in 70-saf.t the broker keeps its sessions across its own restarts
# and the subscriber's session is persistent, so what the subscriber
# misses is what the daemon did not deliver.  A PUT on the client makes
# the link reconnect at once after the broker comes back, instead of
# after its backoff (needed where a time to live is running).

import atexit
import json
import os
import re
import subprocess
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

PAD = "x" * 190         # a value is "%010d" % seq + PAD: 200 bytes
SAF = "/mqtt/1/store-and-forward"


# --- the broker and the subscriber ------------------------------------------

class Subscriber:
    """Every sequence number on saf/# with its topic."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.got = []           # (topic, seq)
        self.bad = 0
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="t71-sub-%d" % os.getpid(),
                             clean_session=False)
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = lambda c, u, f, rc: c.subscribe("saf/#", 1)
        self.c.on_subscribe = lambda c, u, m, g: self.subscribed.set()
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _message(self, client, userdata, msg):
        try:
            doc = json.loads(msg.payload)
            vals = []
            for prv in doc["tags"].values():
                for src in prv.values():
                    for tag in src.values():
                        for v in tag["values"]:
                            x = v["value"]
                            vals.append(int(x[:10]) if isinstance(x, str)
                                        else x)
        except (ValueError, KeyError, TypeError, AttributeError):
            with self.lock:
                self.bad += 1
            return
        with self.lock:
            self.got.extend((msg.topic, v) for v in vals)

    def seqs(self, topic):
        with self.lock:
            return [v for tp, v in self.got if tp == topic]

    def distinct(self, topic):
        return set(self.seqs(topic))

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


# Sessions and queues kept across the outages below.
broker = Broker(conf=PERSISTENT)
sub = Subscriber(broker.port)
if not sub.subscribed.wait(10):
    t.bail("the subscriber got no SUBACK")


# --- a daemon and its client ------------------------------------------------

class Gateway:
    """A daemon with one MQTT client (id 1) and helpers around it."""

    def __init__(self, name, conf=None, port=None):
        self.d = Daemon(conf=conf)
        self.token = self.d.api_token
        r = self.d.post("/mqtt", {"enable": True, "server": "127.0.0.1",
                                  "port": port or broker.port,
                                  "retryInterval": 10, "qos": 1,
                                  "clientID": "t71-%s" % name},
                        token=self.token)
        if r.status != 200:
            t.bail("POST /mqtt: %r" % (r,))

    def group(self, tag, size=4096):
        r = self.d.post("/mqtt/1/messages",
                        {"enable": True, "outputTopic": "saf/" + tag,
                         "tags": {"p": {"s": [tag]}},
                         "samplingMode": "allValues",
                         "sendOutThreshold": {"mode": "immediately",
                                              "size": size}},
                        token=self.token)
        if r.status != 200:
            t.bail("POST /mqtt/1/messages: %r" % (r,))

    def saf(self, body=None):
        if body is None:
            r = self.d.get(SAF, token=self.token)
        else:
            r = self.d.put(SAF, body, token=self.token)
        return r.json["data"] if r.status == 200 and r.json else r

    def backlog(self):
        try:
            doc = self.saf()
        except OSError:
            return None
        return doc.get("backlog") if isinstance(doc, dict) else None

    def dropped(self, why):
        b = self.backlog()
        return b["dropped"][why] if b else None

    def drained(self):
        b = self.backlog()
        return b is not None and b["messages"] == 0 and \
            b.get("memoryMessages", 0) == 0

    def publish(self, tag, lo, hi, string=True, batch=500, pause=0):
        """Values lo..hi of p/s/tag (200-byte strings, or int32)."""
        ok = True
        for a in range(lo, hi + 1, batch):
            recs = [{"prvdName": "p", "srcName": "s", "tagName": tag,
                     "dataType": "string" if string else "int32",
                     "dataValue": ("%010d" % v + PAD) if string else v}
                    for v in range(a, min(a + batch, hi + 1))]
            r = self.d.post("/tags/publish", recs, kind="unix",
                            token=self.token, timeout=30)
            ok = ok and r.status == 200
            if pause:
                time.sleep(pause)
        return ok

    def kick(self):
        """Reconnect now (a PUT on the client reconnects its link)."""
        return self.d.put("/mqtt/1", {"enable": True},
                          token=self.token).status == 200

    def link_status(self):
        try:
            r = self.d.get("/mqtt", token=self.token)
            return r.json["data"][0].get("status")
        except (OSError, KeyError, IndexError, TypeError):
            return None

    def broker_down(self):
        broker.stop()
        wait_for(lambda: self.link_status() not in (None, "connected"), 5)

    def broker_up(self):
        broker.start()
        self.kick()


def du(files):
    """Bytes the files take on disk, as du counts them."""
    n = 0
    for p in files:
        try:
            n += os.stat(p).st_blocks * 512
        except OSError:
            pass
    return n


def cache_files(dirname, link="mqtt-1"):
    try:
        return [os.path.join(dirname, f) for f in os.listdir(dirname)
                if f.startswith(link + ".")]
    except OSError:
        return []


class HealthWatch(threading.Thread):
    """GET /health every 50 ms until stopped: the slowest answer and the
    failures."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.d = daemon
        self.slowest = 0.0
        self.bad = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t1 = time.monotonic()
            try:
                st = self.d.get("/health", token=None, timeout=5).status
            except OSError as e:
                st = str(e)
            self.slowest = max(self.slowest, time.monotonic() - t1)
            if st != 200:
                self.bad.append(st)
            self.halt.wait(0.05)

    def stop(self):
        self.halt.set()
        self.join(10)


class DiskSampler(threading.Thread):
    """du of the cache's files every few milliseconds until stopped."""

    def __init__(self, dirname):
        super().__init__(daemon=True)
        self.dir = dirname
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.samples.append(du(cache_files(self.dir)))
            time.sleep(0.002)

    def stop(self):
        self.halt.set()
        self.join(10)


def rss_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def ranges(vals):
    """Sorted values as [(first, last), ...] runs."""
    out = []
    for v in sorted(vals):
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return [tuple(r) for r in out]


def contiguous(s):
    return bool(s) and len(s) == max(s) - min(s) + 1


MB = 1 << 20


# --- the size cap -----------------------------------------------------------

g = Gateway("a")
cache_dir = os.path.join(g.d.datadir, "cache")
NC = 40000
CAP = 2
for tag in ("co", "cn", "tt"):
    g.group(tag)


def capped_outage(tag, policy):
    """NC 200-byte values with the broker down and a 2 MB cap; the
    largest du seen, the samples over the cap + 10%, the drops of the
    policy's kind during the outage, and the seconds it took."""
    why = "full-" + policy
    doc = g.saf({"enable": True, "desiredDiskCacheSizeMB": CAP,
                 "dropBehavior": policy, "timeToLiveSec": 86400})
    if not isinstance(doc, dict):
        t.bail("PUT store-and-forward: %r" % (doc,))
    before = g.dropped(why)
    g.broker_down()
    sampler = DiskSampler(cache_dir)
    sampler.start()
    watcher = HealthWatch(g.d)
    watcher.start()
    t0 = time.monotonic()
    ok = g.publish(tag, 1, NC)
    secs = time.monotonic() - t0
    watcher.stop()
    # Settled: every value is either waiting or counted as dropped.
    def settled():
        b = g.backlog()
        return b is not None and \
            b["messages"] + b["dropped"][why] - before == NC
    wait_for(settled, 30, 0.1)
    time.sleep(0.5)
    sampler.stop()
    b = g.backlog()
    s = sampler.samples
    over = [x for x in s if x > CAP * MB * 1.1]
    t.ok(ok, "%s: %d values published with the broker down (%.1f s)"
         % (policy, NC, secs))
    t.ok(not watcher.bad, "%s: /health answers all along (slowest %.3f s)"
         % (policy, watcher.slowest), "failed: %r" % watcher.bad[:5])
    t.diag("%s: %d du samples, largest %d bytes (cap %d); backlog %s"
           % (policy, len(s), max(s or [0]), CAP * MB, json.dumps(b)))
    t.ok(s and not over,
         "%s: the cache's files stay within %d MB + 10%% at every sample"
         % (policy, CAP),
         "%d of %d samples over %d bytes, largest %d"
         % (len(over), len(s), int(CAP * MB * 1.1), max(s or [0])))
    t.ok(b and b["diskBytes"] <= CAP * MB * 1.1,
         "%s: backlog.diskBytes within the cap" % policy, json.dumps(b))
    drops = g.dropped(why) - before
    t.ok(drops > 0, "%s: dropped.%s counts the drops (%d)"
         % (policy, why, drops))
    kept = b["messages"] if b else 0
    g.broker_up()
    wait_for(lambda: len(sub.distinct("saf/" + tag)) >= kept and
             g.drained(), 40, 0.2)
    got = sub.distinct("saf/" + tag)
    t.eq(len(got) + drops, NC,
         "%s: every value either arrived (%d) or was counted as dropped (%d)"
         % (policy, len(got), drops))
    t.ok(kept * 200 >= CAP * MB // 10,
         "%s: the full cache still holds a tenth of the cap in values (%d "
         "values)" % (policy, kept))
    return got


got = capped_outage("co", "oldest")
t.ok(contiguous(got) and max(got) == NC and 1 not in got,
     "oldest: the newest values survive (%s..%s arrived), the oldest do not"
     % (min(got or [0]), max(got or [0])))

got = capped_outage("cn", "newest")
t.ok(contiguous(got) and min(got) == 1 and NC not in got,
     "newest: the oldest values survive (%s..%s arrived), the newest do not"
     % (min(got or [0]), max(got or [0])))


# --- time to live -----------------------------------------------------------

doc = g.saf({"enable": True, "desiredDiskCacheSizeMB": 64,
             "dropBehavior": "oldest", "timeToLiveSec": 2})
ttl0 = g.dropped("ttl")
g.broker_down()
ok = g.publish("tt", 1, 100, string=False)
t.ok(ok and wait_for(lambda: (g.backlog() or {}).get("messages") == 100, 5),
     "ttl: 100 values buffered", json.dumps(g.backlog()))
time.sleep(4)
b = g.backlog()
t.ok(b and b["messages"] == 0 and b["dropped"]["ttl"] - ttl0 == 100,
     "ttl: after 4 s with timeToLiveSec 2 they are gone and dropped.ttl "
     "counts 100", json.dumps(b))
ok = g.publish("tt", 101, 200, string=False)
g.broker_up()
wait_for(lambda: set(range(101, 201)) <= sub.distinct("saf/tt") and
         g.drained(), 15, 0.1)
got = sub.distinct("saf/tt")
t.ok(not (got & set(range(1, 101))),
     "ttl: none of the expired values arrive",
     sorted(got & set(range(1, 101)))[:20])
t.ok(ok and set(range(101, 201)) <= got,
     "ttl: the values buffered after the expiry arrive",
     sorted(set(range(101, 201)) - got)[:20])
t.eq(g.dropped("ttl") - ttl0, 100, "ttl: dropped.ttl is 100 in the end")
t.ok(g.d.alive(), "the daemon is still running")
g.d.stop()


# --- a full disk ------------------------------------------------------------

small = tmpdir("uplinkd-small-")
mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                          small], capture_output=True).returncode == 0
gd = None


def unmount():
    if gd is not None and gd.d.alive():
        gd.d.kill9()
    if mounted:
        if subprocess.run(["umount", small], capture_output=True).returncode:
            subprocess.run(["umount", "-l", small], capture_output=True)


atexit.register(unmount)

FULL_POINTS = ["full disk: the cache writes until the disk is full",
               "full disk: no crash",
               "full disk: /health answers 200 within 0.5 s all along",
               "full disk: the drops are counted",
               "full disk: the write failure is logged once (not per message)",
               "full disk: space back: the cache writes again",
               "full disk: space back: new values reach the cache",
               "full disk: broker back: the values arrive, in order",
               "full disk: the backlog is 0 after the drain",
               "full disk: every value either arrived or was counted as "
               "dropped"]

if not mounted:
    for name in FULL_POINTS:
        t.ok(True, "%s # SKIP cannot mount a tmpfs (not root?)" % name)
else:
    gd = Gateway("b", conf={"cache_disks": "Small=%s" % small})
    gd.group("fd")
    doc = gd.saf({"enable": True, "targetDiskName": "Small",
                  "desiredDiskCacheSizeMB": 64})
    if not isinstance(doc, dict):
        t.bail("PUT store-and-forward on Small: %r" % (doc,))
    gd.broker_down()
    log_at = len(gd.d.log())
    fail_re = re.compile(r"cache mqtt-1: (write failed|cannot begin|cannot write)")

    watcher = HealthWatch(gd.d)
    watcher.start()

    # Slowly, so that commits succeed until the disk is full.
    seq = 0
    t_fill = time.monotonic()
    while time.monotonic() - t_fill < 30:
        gd.publish("fd", seq + 1, seq + 200, pause=0.12)
        seq += 200
        if fail_re.search(gd.d.log()[log_at:]) or gd.dropped("disk-error"):
            break
    filled = du(cache_files(small))
    t_failed = time.monotonic()
    t.ok(fail_re.search(gd.d.log()[log_at:]) and filled > 512 * 1024,
         FULL_POINTS[0] + " (%d values, %d bytes on the disk)"
         % (seq, filled))
    # More than the 16 MB that may wait in memory.
    gd.publish("fd", seq + 1, seq + 70000, batch=1000)
    seq += 70000
    time.sleep(1.0)
    b = gd.backlog()
    t.ok(gd.d.alive() and b is not None, FULL_POINTS[1], json.dumps(b))
    watcher.stop()
    t.ok(not watcher.bad and watcher.slowest < 0.5,
         FULL_POINTS[2] + " (slowest %.3f s)" % watcher.slowest,
         "failed: %r" % watcher.bad[:5])
    drops = b["dropped"] if b else {}
    t.ok(drops.get("disk-error", 0) > 0 or drops.get("full-oldest", 0) > 0,
         FULL_POINTS[3] + " (%s)" % json.dumps(drops))
    fails = len(fail_re.findall(gd.d.log()[log_at:]))
    minutes = int((time.monotonic() - t_failed) // 60) + 1
    t.ok(1 <= fails <= minutes, FULL_POINTS[4] + " (%d lines)" % fails,
         "\n".join(l for l in gd.d.log()[log_at:].splitlines()
                   if fail_re.search(l))[:2000])

    subprocess.run(["mount", "-o", "remount,size=64m", small], check=True)
    t.ok(wait_for(lambda: du(cache_files(small)) > filled + 4 * MB, 15, 0.2),
         FULL_POINTS[5] + " (files %d bytes, were %d)"
         % (du(cache_files(small)), filled))
    b0 = gd.backlog()
    err0 = b0["dropped"]["disk-error"] if b0 else None
    gd.publish("fd", seq + 1, seq + 2000)
    seq += 2000
    time.sleep(1.5)             # several commit windows
    b1 = gd.backlog()
    t.ok(b0 and b1 and b1["messages"] == b0["messages"] + 2000 and
         b1["dropped"]["disk-error"] == err0,
         FULL_POINTS[6] + " (backlog grows by 2000, no new drops)",
         "before %s\nafter  %s" % (json.dumps(b0), json.dumps(b1)))
    gd.broker_up()
    last = set(range(seq - 1999, seq + 1))

    def quiet():
        """Drained, or the last values in and nothing new for 3 s."""
        n = len(sub.seqs("saf/fd"))
        if n != quiet.n:
            quiet.n, quiet.at = n, time.monotonic()
        return (gd.drained() and last <= sub.distinct("saf/fd")) or \
            (last <= sub.distinct("saf/fd") and
             time.monotonic() - quiet.at > 3)
    quiet.n, quiet.at = -1, time.monotonic()
    wait_for(quiet, 60, 0.2)
    got = sub.seqs("saf/fd")
    gs = set(got)
    bf = gd.backlog()
    dropped_all = sum(bf["dropped"].values()) if bf else 0
    t.ok(last <= gs and got == sorted(got),
         FULL_POINTS[7] + " (%d values)" % len(gs),
         "of the last 2000, %d missing" % len(last - gs))
    t.ok(bf and bf["messages"] == 0, FULL_POINTS[8], json.dumps(bf))
    lost = sorted(set(range(1, seq + 1)) - gs)
    t.eq(len(gs) + dropped_all, seq, FULL_POINTS[9] + " (%d arrived, %d "
         "dropped)" % (len(gs), dropped_all))
    if len(gs) + dropped_all != seq:
        t.diag("values that did not arrive (%d), as ranges: %s"
               % (len(lost), ranges(lost)[:10]))
    gd.d.stop()
    unmount()
    mounted = False


# --- memory while the backlog grows -----------------------------------------

# desiredDiskCacheSizeMB 2048: live values are kept under a budget below
# the cap (the file's free pages count too), so a 1 GB backlog needs a
# cap above 1 GB.  The link points at a port where nothing listens.  The
# backlog grows in 200-byte values (many messages); when 1 GB of them
# would take more than about 60 s here (measured on the first 64 MB),
# they stop at 256 MB and 60 kB values take the backlog on to 1 GB (a
# TAP comment says so).  VmRSS is sampled at every 64 MB of backlog.
gm = Gateway("c", port=free_port())
gm.group("rs", size=262144)
doc = gm.saf({"enable": True, "desiredDiskCacheSizeMB": 2048})
wait_for(lambda: gm.link_status() not in (None, "connected"), 5)


def grow(target, value_len, batch, seq, samples, deadline):
    """Publish values of value_len bytes until backlog.bytes reaches
    target; an RSS sample at every 64 MB step.  The next seq."""
    pad = "x" * (value_len - 10)
    step = len(samples) + 1
    while time.monotonic() < deadline:
        recs = [{"prvdName": "p", "srcName": "s", "tagName": "rs",
                 "dataType": "string", "dataValue": "%010d" % v + pad}
                for v in range(seq, seq + batch)]
        seq += batch
        r = gm.d.post("/tags/publish", recs, kind="unix", token=gm.token,
                      timeout=30)
        if r.status != 200:
            break
        b = gm.backlog()
        if b is None:
            break
        while b["bytes"] >= step * 64 * MB:
            samples.append((b["bytes"], rss_of(gm.d.proc.pid)))
            step += 1
        if b["bytes"] >= target:
            break
    return seq


samples = []
t_rss = time.monotonic()
seq = grow(64 * MB, 200, 2000, 1, samples, t_rss + 40)
secs64 = time.monotonic() - t_rss
projected = secs64 * 16
small_target = 1024 * MB if projected <= 60 else 256 * MB
if small_target < 1024 * MB:
    t.diag("rss: 64 MB of 200-byte values took %.1f s; 1 GB would take "
           "about %.0f s, so 200-byte values to 256 MB, then 60 kB values "
           "to 1 GB" % (secs64, projected))
seq = grow(small_target, 200, 2000, seq, samples, t_rss + 100)
if small_target < 1024 * MB:
    seq = grow(1024 * MB, 60000, 20, seq, samples, t_rss + 130)
b = gm.backlog()
reached = b["bytes"] if b else 0
t.diag("rss: backlog %d MB in %d messages in %.1f s; samples (MB backlog: "
       "MB RSS): %s" % (reached >> 20, b["messages"] if b else 0,
                        time.monotonic() - t_rss,
                        ", ".join("%d: %.1f" % (x >> 20, r / MB)
                                  for x, r in samples)))
t.ok(b is not None and reached >= 1000 * MB and
     not sum(b["dropped"].values()),
     "rss: the backlog grew to 1 GB with nothing dropped",
     json.dumps(b))
growth = max(r for _, r in samples) - samples[0][1] if samples else None
t.ok(growth is not None and growth < 32 * MB,
     "rss: VmRSS grows by less than 32 MB from 64 MB of backlog to the end "
     "(%.1f MB)" % ((growth or 0) / MB))
t.ok(gm.d.alive(), "the daemon is still running")
gm.d.stop()

t.eq(sub.bad, 0, "every message at the subscriber was a well-formed payload")
sub.stop()
t.diag("%.1f s" % (time.monotonic() - T0))
t.done()

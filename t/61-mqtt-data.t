#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# The data path end to end: tag records in by POST /tags/publish, message
# groups of a generic MQTT client, payloads out at a real mosquitto.  One
# subscriber on t61/# runs from before the first record and keeps every
# message's bytes and arrival time; each group has its own outputTopic.
#
# Part A publishes batches (each group's records in one request, so one
# tick cannot split them) and compares whole payloads with texts built
# here: the default format with 64-bit integers, floats, strings, raw
# and booleans; custom jq filters and the merge; 500 values of one tag;
# a group of 1,000 tags; 100 groups at once; bySize and immediately.
# Part B is a timeline of about nine seconds for what depends on time:
# byTime, minPublishInterval, the sampling modes, the idle timer, tags
# that appear late, and groups deleted while they send.  Every timing
# bound is loose; every wait has a deadline; an alarm ends the file.

import datetime
import http.client
import json
import os
import re
import signal
import sys
import threading
import time
import traceback

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


t.time_limit(88)

DEFAULT_FILTER = ("{tags:{(.prvdName):{(.srcName):{(.tagName):{values:"
                  "[{updateTimeStamp:(.ts/1000|todateiso8601),"
                  "value:.dataValue}]}}}}}")


# --- the subscriber ----------------------------------------------------------

class Listener:
    """Every message on t61/# with its arrival time (monotonic)."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.msgs = []
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="t61-listener-%d" % os.getpid(),
                             clean_session=True)
        self.c.on_connect = self._connected
        self.c.on_subscribe = self._subscribed
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _connected(self, client, userdata, flags, rc):
        client.subscribe("t61/#", 1)

    def _subscribed(self, client, userdata, mid, granted):
        self.subscribed.set()

    def _message(self, client, userdata, msg):
        now = time.monotonic()
        with self.lock:
            self.msgs.append((now, msg.topic, bytes(msg.payload)))

    def on(self, topic):
        """[(arrival, payload)] of one topic, in order."""
        with self.lock:
            return [(w, p) for w, tp, p in self.msgs if tp == topic]

    def count(self, topic):
        return len(self.on(topic))

    def payloads(self, topic):
        return [p for _, p in self.on(topic)]

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


# --- records and the texts they should make ---------------------------------

def jstr(s):
    """A string as the daemon prints JSON: quote, backslash and the short
    control escapes, other controls as \\u00XX, UTF-8 as it is, no escape
    for the solidus."""
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
             "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = ['"']
    for ch in s:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def iso(ts_us):
    """updateTimeStamp of a ts in microseconds: whole seconds, UTC."""
    d = datetime.datetime.fromtimestamp(ts_us // 1000000,
                                        tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(p, s, n, typ, val, ts=None, text=None):
    """A record to publish; "text" is how the value must come out."""
    if ts is None:
        ts = int(time.time() * 1000000)
    if text is None:
        if typ == "boolean":
            text = "true" if val else "false"
        elif typ in ("string", "raw"):
            text = jstr(val)
        elif isinstance(val, int):
            text = str(val)
        else:
            text = repr(val)
    return {"prvdName": p, "srcName": s, "tagName": n, "dataType": typ,
            "dataValue": val, "ts": ts, "_text": text}


def wire(recs):
    return [{k: v for k, v in r.items() if k != "_text"} for r in recs]


def default_msg(recs):
    """The default format of records merged in order: providers, sources
    and tags in the order first seen, each tag's values in order."""
    tree = {}
    for r in recs:
        ent = '{"updateTimeStamp":"%s","value":%s}' % (iso(r["ts"]),
                                                       r["_text"])
        tree.setdefault(r["prvdName"], {}).setdefault(
            r["srcName"], {}).setdefault(r["tagName"], []).append(ent)
    provs = []
    for p, srcs in tree.items():
        ss = []
        for s, tags in srcs.items():
            ts = [jstr(n) + ':{"values":[' + ",".join(ents) + "]}"
                  for n, ents in tags.items()]
            ss.append(jstr(s) + ":{" + ",".join(ts) + "}")
        provs.append(jstr(p) + ":{" + ",".join(ss) + "}")
    return ('{"tags":{' + ",".join(provs) + "}}").encode()


def values(payload, p, s, n):
    """The values of one tag in a default-format message; None if the
    payload is not JSON, [] if the tag is not in it."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    try:
        return [e["value"] for e in doc["tags"][p][s][n]["values"]]
    except (KeyError, TypeError):
        return []


def all_values(msgs, p, s, n):
    out = []
    for _, pl in msgs:
        out += values(pl, p, s, n) or []
    return out


def gaps(msgs):
    return [round(b[0] - a[0], 3) for a, b in zip(msgs, msgs[1:])]


# --- daemon, broker, client -----------------------------------------------

broker = Broker()
sub = Listener(broker.port)
if not sub.subscribed.wait(10):
    t.bail("the subscriber did not get its SUBACK")
d = Daemon()

publish_errors = []


def call(method, path, body=None):
    """A request; a daemon that does not answer is a status 0 response."""
    try:
        return d.request(method, path, body)
    except (OSError, http.client.HTTPException) as e:
        return Response(0, [], str(e).encode())


def publish(recs):
    """POST the records; (monotonic time before, after)."""
    t0 = time.monotonic()
    r = call("POST", "/tags/publish", wire(recs))
    t1 = time.monotonic()
    if r.status != 200:
        publish_errors.append((recs[0]["tagName"], r))
    return t0, t1


r = d.post("/mqtt", {"enable": True, "server": "127.0.0.1",
                     "port": broker.port, "qos": 1})
if r.status != 200:
    t.bail("POST /mqtt: %r" % (r,))
cid = r.json["data"][-1]["id"]


def client_status():
    r = call("GET", "/mqtt")
    for c in r.json["data"] if r.status == 200 else []:
        if c["id"] == cid:
            return c["status"]
    return None


t.ok(wait_for(lambda: client_status() == "connected", 10),
     "the MQTT client connects to the broker", client_status())

group_errors = []


def group(body):
    """Create a group; its id (None on failure, which is kept)."""
    before = call("GET", "/mqtt/%d/messages" % cid)
    old = {g["id"] for g in before.json} if before.status == 200 else set()
    r = call("POST", "/mqtt/%d/messages" % cid, body)
    if r.status != 200 or not isinstance(r.json, list):
        group_errors.append((body.get("outputTopic"), r))
        return None
    new = [g["id"] for g in r.json if g["id"] not in old]
    return new[0] if len(new) == 1 else None


def v20(topic, tags, time_s=1, size=0, poll=0, fmt=None, enable=True):
    b = {"enable": enable, "outputTopic": topic, "tags": tags,
         "pollingInterval": poll,
         "sendOutThreshold": {"size": size, "time": time_s}}
    if fmt is not None:
        b["format"] = fmt
    return group(b)


def v24(topic, tags, mode="allValues", threshold=None, **kw):
    b = {"enable": True, "outputTopic": topic, "tags": tags,
         "samplingMode": mode,
         "sendOutThreshold": threshold or {"mode": "byTime", "time": 1}}
    b.update(kw)
    return group(b)


def group_metric(what, gid):
    """uplinkd_group_<what>_total of one of the client's groups."""
    r = call("GET", "/metrics")
    m = re.search(r'^uplinkd_group_%s_total\{group="mqtt-%d/%s"\} (\d+)$'
                  % (what, cid, gid), r.body.decode(errors="replace"), re.M)
    return int(m.group(1)) if m else None


# === Part A: whole payloads =================================================

# The default format over every type, two providers, three sources.
STR = 'say "hi" \\ back/slash \u6e29\u5ea6 \u2713 \U0001F600\ttab\nnl\x01'
A1 = [
    rec("plcA", "dev1", "i64", "int64", -9223372036854775808,
        1700000000999999),
    rec("plcB", "x/y", "str", "string", STR, 1700000001000000),
    rec("plcA", "dev2", "dbl", "double", 3.141592653589793,
        1700000001500000, "3.141592653589793"),
    rec("plcA", "dev1", "u64", "uint64", 18446744073709551615,
        1700000002000001),
    rec("plcA", "dev2", "flt", "float", 1.1, 1700000002999999, "1.1"),
    rec("plcB", "x/y", "bool", "boolean", True, 1700000003000000),
    rec("plcB", "x/y", "raw", "raw", "AAEC/w==", 1700000004000000),
    rec("plcA", "dev1", "i64", "int64", 9223372036854775807,
        1700000005000000),
    rec("plcB", "x/y", "\u00fcn\u00ef", "int32", -42, 4102444800000000),
    rec("plcB", "x/y", 'q"t', "int8", -1, 1700000006000000),
    rec("plcA", "dev2", "dbl", "double", -0.000123, 1700000007000000,
        "-0.000123"),
    rec("plcA", "dev2", "dbl", "double", 1e-05, 1700000008000000, "1e-05"),
    rec("plcA", "dev2", "dbl", "double", 1e21, 1700000009000000, "1e+21"),
    rec("plcA", "dev2", "flt", "float", -2.5, 1700000010000000, "-2.5"),
    rec("plcB", "x/y", "bool", "boolean", False, 1700000011000000),
    rec("plcA", "dev1", "u64", "uint64", 0, 1700000012000000),
]
A1_TAGS = {"plcA": {"dev1": ["i64", "u64"], "dev2": ["dbl", "flt"]},
           "plcB": {"x/y": ["str", "bool", "raw", "\u00fcn\u00ef", 'q"t']}}
A1_SMALL = {"plcA": {"dev2": ["dbl", "flt"]},
            "plcB": {"x/y": ["str", "bool", "raw", "\u00fcn\u00ef", 'q"t']}}
v20("t61/fmt/default", A1_TAGS)
v20("t61/fmt/default-text", A1_TAGS, fmt="  " + DEFAULT_FILTER + "\n")
# The same filter, not word for word, runs in jq: the same bytes for
# everything but integers beyond 2^53 (left out of this group).
v20("t61/fmt/default-jq", A1_SMALL, fmt=DEFAULT_FILTER + " | .")

# Custom filters and the merge.
CF = [rec("cf", "s", "a", "int32", 1, 1700000001000001),
      rec("cf", "s", "b", "int32", 2, 1700000002000002),
      rec("cf", "s", "a", "int32", 3, 1700000003123999)]
CF_TAGS = {"cf": {"s": ["a", "b"]}}
FILTERS = [
    ("{(.tagName): .dataValue}", b'{"a":3,"b":2}',
     "later scalars override, keys stay where first seen"),
    ("{v:[.dataValue]}", b'{"v":[1,2,3]}', "arrays append"),
    ("{t:.ts}", b'{"t":1700000003123}', "ts is in milliseconds"),
    ("[.tagName]", b'["a","b","a"]', "a top-level array accumulates"),
    ("{tags:{(.tagName):{last:.dataValue,all:[.dataValue]}}}",
     b'{"tags":{"a":{"last":3,"all":[1,3]},"b":{"last":2,"all":[2]}}}',
     "nested objects merge key by key"),
]
for i, (f, _, _) in enumerate(FILTERS):
    v20("t61/cf/%d" % i, CF_TAGS, fmt=f)
# A filter that fails on one record: that record is counted, the rest go.
cf_err = v20("t61/cf/error", CF_TAGS,
             fmt='if .dataValue == 2 then error("boom") '
                 'else {v:[.dataValue]} end')

# 500 values of one tag.
MG = [rec("mg", "s", "v", "int32", i * 3 - 700, 1700000000000000 + i * 250000)
      for i in range(500)]
v20("t61/merge", {"mg": {"s": ["v"]}})

# 1,000 tags in one group (the default size threshold, 4096, splits them).
K_NAMES = ["t%04d" % i for i in range(1000)]
K = [rec("kt", "s", n, "uint16", i, 1700000000000000)
     for i, n in enumerate(K_NAMES)]
v20("t61/kilo", {"kt": {"s": K_NAMES}}, size=4096)

# 100 groups, each its own topic, its own tag and one tag they share.
H = [rec("hg", "s", "common", "int32", 7, 1700000000000000)] + \
    [rec("hg", "s", "t%03d" % i, "int32", i, 1700000000500000)
     for i in range(100)]
for i in range(100):
    v20("t61/h/%03d" % i, {"hg": {"s": ["common", "t%03d" % i]}})

# immediately: each record its own message (2.4.0 mode, 2.2.0 time 0).
IM = [rec("im", "s", "v", "int32", 10 + i, 1700000000000000 + i * 1000000)
      for i in range(5)]
IM20 = [rec("im", "s", "w", "int32", 20 + i, 1700000000000000 + i * 1000000)
        for i in range(3)]
v24("t61/imm", {"im": {"s": ["v"]}}, threshold={"mode": "immediately"})
v20("t61/imm20", {"im": {"s": ["w"]}}, time_s=0)

# allValues, allChangedValues, and the 2.4.0 default (allChangedValues).
SM = [rec("sm", "s", "x", "int32", v, 1700000000000000 + i * 1000000)
      for i, v in enumerate([5, 5, 7, 7, 7, 5])]
v24("t61/smp/all", {"sm": {"s": ["x"]}}, "allValues")
v24("t61/smp/changed", {"sm": {"s": ["x"]}}, "allChangedValues")
group({"enable": True, "outputTopic": "t61/smp/default",
       "tags": {"sm": {"s": ["x"]}},
       "sendOutThreshold": {"mode": "byTime", "time": 1}})

# bySize 300 with a 1 s idle timer for the last, under-full message.
SZ = [rec("sz", "s", "v", "int32", 1000 + i, 1700000000000000 + i * 1000000)
      for i in range(40)]
size_gid = v24("t61/size", {"sz": {"s": ["v", "big"]}},
               threshold={"mode": "bySize", "size": 300,
                          "sizeIdleTimer": {"enable": True, "time": 1}})

# A disabled group over tags that all get values.
v20("t61/disabled", {"sm": {"s": ["x"]}, "cf": {"s": ["a", "b"]},
                     "st": {"s": ["bt", "mp"]}, "lt": {"s": ["lv"]}},
    enable=False)

# === Part B's groups, made now so that they wait for their tags ==============

v24("t61/bytime", {"st": {"s": ["bt"]}},
    threshold={"mode": "byTime", "time": 2})
v24("t61/mpi", {"st": {"s": ["mp"]}}, threshold={"mode": "immediately"},
    minPublishInterval=2)
v24("t61/lv", {"lt": {"s": ["lv"]}}, "latestValues",
    customSamplingRate=True, pollingInterval=1)
v24("t61/lv-forced", {"lt": {"s": ["lv"]}}, "latestValues",
    customSamplingRate=False, pollingInterval=5)
v24("t61/all-rate", {"lt": {"s": ["lv"]}}, "allValues",
    customSamplingRate=True, pollingInterval=1)
v24("t61/lcv", {"lt": {"s": ["lc"]}}, "latestChangedValues",
    customSamplingRate=True, pollingInterval=1)
v20("t61/v20poll", {"lt": {"s": ["lv"]}}, poll=1)
v24("t61/idle", {"id": {"s": ["a"]}},
    threshold={"mode": "bySize", "size": 100000,
               "sizeIdleTimer": {"enable": True, "time": 1}})
v24("t61/noidle", {"id": {"s": ["b"]}},
    threshold={"mode": "bySize", "size": 100000,
               "sizeIdleTimer": {"enable": False, "time": 1}})
late_absent = (call("GET", "/tags/access/late/s/n1").status == 404 and
               call("GET", "/tags/access/late/s/n2").status == 404)
v20("t61/late", {"late": {"s": ["n1"]}})
v20("t61/late-poll", {"late": {"s": ["n2"]}}, poll=1)
del_poll = v20("t61/del/poll", {"del": {"s": ["p"]}}, poll=1)
del_now = v20("t61/del/now", {"del": {"s": ["q"]}}, time_s=0)

t.eq(group_errors, [], "every group is created")
r = call("GET", "/mqtt/%d/messages" % cid)
ngroups = 3 + len(FILTERS) + 1 + 1 + 1 + 100 + 2 + 3 + 1 + 1 + 13
t.eq(len(r.json) if r.status == 200 and isinstance(r.json, list) else r,
     ngroups, "the client lists all %d groups" % ngroups)
t.ok(late_absent, "the late tags do not exist when their groups are made")

# --- Part A: publish, each group's records in one request ------------------

publish(A1)
publish(CF)
publish(MG)
publish(K)
publish(H)
publish(IM)
publish(IM20)
publish(SM)
t_sz = publish(SZ)
publish([rec("del", "s", "p", "int32", 1)])

want_counts = {"t61/fmt/default": 1, "t61/fmt/default-text": 1,
               "t61/fmt/default-jq": 1, "t61/cf/error": 1,
               "t61/merge": 1, "t61/imm": 5,
               "t61/imm20": 3, "t61/smp/all": 1, "t61/smp/changed": 1,
               "t61/smp/default": 1}
for i in range(len(FILTERS)):
    want_counts["t61/cf/%d" % i] = 1
for i in range(100):
    want_counts["t61/h/%03d" % i] = 1


def kilo_tags(payload):
    try:
        return json.loads(payload)["tags"]["kt"]["s"]
    except (ValueError, KeyError, TypeError):
        return {}


def part_a_in():
    if any(sub.count(tp) < n for tp, n in want_counts.items()):
        return False
    kv = sum(len(kilo_tags(p)) for p in sub.payloads("t61/kilo"))
    sv = len(all_values(sub.on("t61/size"), "sz", "s", "v"))
    return kv >= 1000 and sv >= 40


wait_for(part_a_in, 10)
time.sleep(1.3)     # anything more than expected would come by now

want = default_msg(A1)
t.eq(sub.payloads("t61/fmt/default"), [want],
     "default format: one message, exact bytes (64-bit integers exact, "
     "floats, strings, raw, booleans, first-seen order, whole seconds)")
t.eq(sub.payloads("t61/fmt/default-text"), [want],
     "the default filter given as text makes the same bytes")
small = [r_ for r_ in A1 if r_["srcName"] != "dev1"]
t.eq(sub.payloads("t61/fmt/default-jq"), [default_msg(small)],
     "the default filter run by jq makes the same bytes as the native one")

for i, (f, w, what) in enumerate(FILTERS):
    t.eq(sub.payloads("t61/cf/%d" % i), [w], "filter %s: %s" % (f, what))

t.eq(sub.payloads("t61/cf/error"), [b'{"v":[1,3]}'],
     "a record the filter fails on is left out, the others are sent")
t.eq(group_metric("filter_errors", cf_err), 1,
     "the failed record is counted in /metrics")
t.ok(re.search(r"group mqtt-%d/%s: filter failed count=1 total=1: .*boom"
               % (cid, cf_err), d.log()),
     "and logged with jq's message")

m = sub.payloads("t61/merge")
t.eq(len(m), 1, "500 values of one tag make one message")
t.eq(all_values(sub.on("t61/merge"), "mg", "s", "v"),
     [i * 3 - 700 for i in range(500)], "with all 500 values in order")
t.ok(m[:1] == [default_msg(MG)], "and exactly the expected bytes",
     "got %d bytes, want %d" % (len(m[0]) if m else 0, len(default_msg(MG))))

km = sub.payloads("t61/kilo")
got = {}
dups = 0
for p in km:
    for n, v in kilo_tags(p).items():
        for e in v["values"]:
            dups += n in got
            got[n] = e["value"]
t.ok(got == {n: i for i, n in enumerate(K_NAMES)} and dups == 0,
     "a group of 1,000 tags delivers each of the 1,000 values once",
     "%d tags, %d repeated, %d messages" % (len(got), dups, len(km)))
t.ok(km and max(len(p) for p in km) <= 4096,
     "in messages of at most 4096 bytes",
     [len(p) for p in km])

bad = [i for i in range(100) if sub.payloads("t61/h/%03d" % i) !=
       [default_msg([H[0], H[1 + i]])]]
t.eq(bad, [], "100 groups at once: each topic gets its one exact message")

t.eq(sub.payloads("t61/imm"), [default_msg([x]) for x in IM],
     "immediately: each of 5 records is its own message, in order")
t.eq(sub.payloads("t61/imm20"), [default_msg([x]) for x in IM20],
     "2.2.0 time 0 sends each record at once")

t.eq(all_values(sub.on("t61/smp/all"), "sm", "s", "x"), [5, 5, 7, 7, 7, 5],
     "allValues keeps every value")
t.eq(all_values(sub.on("t61/smp/changed"), "sm", "s", "x"), [5, 7, 5],
     "allChangedValues drops a value equal to the one before")
t.eq(sub.payloads("t61/smp/changed"),
     [default_msg([SM[0], SM[2], SM[5]])],
     "with the timestamps of the values it keeps")
t.eq(all_values(sub.on("t61/smp/default"), "sm", "s", "x"), [5, 7, 5],
     "a 2.4.0 group without samplingMode is allChangedValues")

sz = sub.on("t61/size")
t.eq(all_values(sz, "sz", "s", "v"), [1000 + i for i in range(40)],
     "bySize 300: all 40 values arrive, in order")
t.ok(sz and max(len(p) for _, p in sz) <= 300,
     "no message is longer than 300 bytes", [len(p) for _, p in sz])
short = []
for (_, p), (_, q) in zip(sz, sz[1:]):
    first = json.loads(q)["tags"]["sz"]["s"]["v"]["values"][0]
    ent = '{"updateTimeStamp":"%s","value":%d}' % (first["updateTimeStamp"],
                                                   first["value"])
    if len(p) + 1 + len(ent) <= 300:
        short.append(len(p))
t.ok(len(sz) >= 2 and short == [],
     "a message goes out only when the next record would not fit",
     "messages: %s; could have taken one more: %s"
     % ([len(p) for _, p in sz], short))
t.ok(len(sz) >= 2 and sz[-1][0] - t_sz[0] >= 0.7 and
     sz[-1][0] - t_sz[1] <= 3.0,
     "the last, under-full message goes out by the idle timer (~1 s)",
     "%.3f s after the request" % (sz[-1][0] - t_sz[0]) if sz else "none")

# === Part B: the timeline ==================================================

stream = {}         # i -> publish time
marks = {}


def ev_stream(i):
    def f():
        stream[i] = publish([rec("st", "s", "bt", "int32", i),
                             rec("st", "s", "mp", "int32", i)])[0]
    return f


def ev_mark(name, recs):
    def f():
        marks[name] = publish(recs)
    return f


def ev_delete(name, gid):
    def f():
        t0 = time.monotonic()
        r = call("DELETE", "/mqtt/%d/messages/%s" % (cid, gid))
        marks[name] = (t0, time.monotonic(), r)
    return f


BIG = "B" * 400
events = [(0.25 * i, ev_stream(i)) for i in range(20)]
events += [
    (0.0, ev_mark("lv1", [rec("lt", "s", "lv", "int32", v)
                          for v in range(1, 11)])),
    (0.0, ev_mark("lc1", [rec("lt", "s", "lc", "int32", v)
                          for v in range(1, 11)])),
    (0.4, ev_mark("idle", [rec("id", "s", "a", "int32", 1)])),
    (0.4, ev_mark("noidle", [rec("id", "s", "b", "int32", 1)])),
    (0.6, ev_mark("sm5", [rec("sm", "s", "x", "int32", 5)])),
    (0.8, ev_mark("late", [rec("late", "s", "n1", "int32", 41),
                           rec("late", "s", "n2", "int32", 42)])),
    (1.0, ev_mark("q1", [rec("del", "s", "q", "int32", 1)])),
    (1.2, ev_mark("big", [rec("sz", "s", "v", "int32", 2000),
                          rec("sz", "s", "big", "string", BIG),
                          rec("sz", "s", "v", "int32", 2001)])),
    (2.1, ev_mark("lc2", [rec("lt", "s", "lc", "int32", 10)])),
    (3.0, ev_mark("lv2", [rec("lt", "s", "lv", "int32", v)
                          for v in range(11, 21)])),
    (3.1, ev_delete("delp", del_poll)),
    (3.2, ev_delete("delq", del_now)),
    (3.6, ev_mark("lc3", [rec("lt", "s", "lc", "int32", v)
                          for v in range(11, 16)])),
    (4.1, ev_mark("sm6", [rec("sm", "s", "x", "int32", 6)])),
    (4.3, ev_mark("q2", [rec("del", "s", "q", "int32", 2)])),
    (9.5, lambda: None),
]
events.sort(key=lambda e: e[0])
n_sm = (sub.count("t61/smp/all"), sub.count("t61/smp/changed"))
n_sz = sub.count("t61/size")
B0 = time.monotonic()
for off, fn in events:
    delay = B0 + off - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    fn()
BEND = time.monotonic()

t.eq(publish_errors, [], "every publish is accepted")

# byTime 2: messages about 2 s apart, none empty, none after the values.
bt = sub.on("t61/bytime")
t.eq(all_values(bt, "st", "s", "bt"), list(range(20)),
     "byTime: every value arrives, in order")
t.ok(all(values(p, "st", "s", "bt") for _, p in bt),
     "byTime: no message is empty", [p[:80] for _, p in bt])
t.ok(len(bt) >= 2 and all(1.4 <= x <= 3.0 for x in gaps(bt)),
     "byTime 2: messages about 2 s apart", gaps(bt))
late_by = []
for w, p in bt:
    for v in values(p, "st", "s", "bt") or []:
        if v in stream and w - stream[v] > 3.0:
            late_by.append((v, round(w - stream[v], 3)))
t.eq(late_by, [], "byTime 2: no value waits much longer than 2 s")
t.ok(bt and BEND - bt[-1][0] >= 2.0,
     "byTime: nothing is sent once nothing is buffered",
     "last message %.3f s before the end" % (BEND - bt[-1][0])
     if bt else "no messages")

# immediately with minPublishInterval 2.
mp = sub.on("t61/mpi")
t.eq(all_values(mp, "st", "s", "mp"), list(range(20)),
     "minPublishInterval: every value arrives, in order")
t.ok(mp and values(mp[0][1], "st", "s", "mp") == [0] and 0 in stream and
     mp[0][0] - stream[0] <= 0.8,
     "minPublishInterval: the first value goes out at once, alone",
     (mp[0][0] - stream.get(0, 0), mp[0][1]) if mp else "none")
t.ok(len(mp) >= 2 and all(x >= 1.6 for x in gaps(mp)),
     "minPublishInterval 2: no two messages closer than ~2 s", gaps(mp))
t.ok(len(mp) >= 2 and all(len(values(p, "st", "s", "mp") or []) > 1
                          for _, p in mp[1:-1]) and
     3 <= len(mp) <= 5,
     "minPublishInterval: the values in between are merged",
     [values(p, "st", "s", "mp") for _, p in mp])

# latestValues with its own rate: every second, the latest value only.
lv2s, lv2 = marks["lv2"]


def check_latest(topic, what):
    msgs = sub.on(topic)
    vals = [values(p, "lt", "s", "lv") for _, p in msgs]
    t.ok(len(msgs) >= 5 and all(v in ([10], [20]) for v in vals),
         "%s: one value per message, the latest" % what, vals)
    t.ok(len(msgs) >= 5 and all(0.4 <= x <= 1.9 for x in gaps(msgs)),
         "%s: a message about every second, without new values" % what,
         gaps(msgs))
    stale = [v for (w, _), v in zip(msgs, vals) if w > lv2 + 1.5 and
             v != [20]]
    fresh = [v for (w, _), v in zip(msgs, vals) if w < marks["lv1"][0] or
             (w < lv2s and v != [10])]
    t.ok(not stale and not fresh and [20] in vals,
         "%s: a new value replaces the old one at the next sample" % what,
         list(zip([round(w - B0, 2) for w, _ in msgs], vals)))


check_latest("t61/lv", "latestValues, customSamplingRate, pollingInterval 1")
check_latest("t61/lv-forced",
             "latestValues without customSamplingRate samples at time 1")
check_latest("t61/v20poll", "2.2.0 pollingInterval 1")
check_latest("t61/all-rate",
             "allValues with customSamplingRate, pollingInterval 1")

lc = sub.on("t61/lcv")
t.eq([values(p, "lt", "s", "lc") for _, p in lc], [[10], [15]],
     "latestChangedValues: a message only when the latest value changed")
t.ok(len(lc) == 2 and lc[1][0] > marks["lc3"][0] and
     lc[1][0] - marks["lc3"][1] <= 2.5,
     "latestChangedValues: the change goes out at the next sample",
     [round(w - B0, 2) for w, _ in lc])

t.eq([all_values(sub.on("t61/smp/all")[n_sm[0]:], "sm", "s", "x"),
      all_values(sub.on("t61/smp/changed")[n_sm[1]:], "sm", "s", "x")],
     [[5, 6], [6]],
     "a repeated value later: allValues sends it, allChangedValues not")

# bySize idle timer.
idle = sub.on("t61/idle")
t.eq([values(p, "id", "s", "a") for _, p in idle], [[1]],
     "sizeIdleTimer: an under-full buffer goes out")
t.ok(idle and 0.7 <= idle[0][0] - marks["idle"][0] and
     idle[0][0] - marks["idle"][1] <= 2.5,
     "sizeIdleTimer 1: after about a second",
     "%.3f s" % (idle[0][0] - marks["idle"][0]) if idle else "none")
t.eq(sub.payloads("t61/noidle"), [],
     "sizeIdleTimer disabled: an under-full buffer waits for the size")

# A record larger than the size on its own: dropped, counted, logged.
after = sub.on("t61/size")[n_sz:]
t.eq(all_values(after, "sz", "s", "v"), [2000, 2001],
     "bySize: the records around an oversized one arrive")
t.ok(after and all(len(p) <= 300 and BIG.encode() not in p
                   for _, p in after),
     "bySize: the oversized record is not sent, no message exceeds 300",
     [len(p) for _, p in after])
t.ok(wait_for(lambda: re.search(r"record of \d+ bytes larger than the "
                                r"message size 300; dropped total=1",
                                d.log()), 3),
     "bySize: the dropped record is counted and logged")
t.eq((group_metric("records", size_gid), group_metric("messages", size_gid)),
     (42, len(sub.on("t61/size"))),
     "bySize: /metrics counts the records sent, not the dropped one")

# Tags that did not exist when the group was made.
t.eq([values(p, "late", "s", "n1") for p in sub.payloads("t61/late")],
     [[41]], "a group picks up a tag that appears later")
lp = [values(p, "late", "s", "n2") for p in sub.payloads("t61/late-poll")]
t.ok(len(lp) >= 3 and all(v == [42] for v in lp),
     "a polling group picks up a tag that appears later", lp)

# Deleting groups.
for name in ("delp", "delq"):
    t.ok(marks[name][2].status == 200 and isinstance(marks[name][2].json,
                                                     list),
         "DELETE of a group answers 200 with the groups left",
         marks[name][2])
dp = sub.on("t61/del/poll")
t.ok(len([w for w, _ in dp if w < marks["delp"][0]]) >= 2,
     "the polling group sends before it is deleted",
     [round(w - B0, 2) for w, _ in dp])
t.eq([round(w - B0, 2) for w, _ in dp if w > marks["delp"][1] + 0.5], [],
     "a deleted group sends nothing more")
dq = sub.on("t61/del/now")
t.eq([values(p, "del", "s", "q") for _, p in dq], [[1]],
     "a value of a deleted group's tag is not sent")
r = call("GET", "/mqtt/%d/messages/%s" % (cid, del_poll))
t.eq(r.status, 404, "a deleted group is gone from the API")

t.eq(sub.payloads("t61/disabled"), [], "a disabled group sends nothing")
t.ok(d.alive(), "the daemon is alive")

sub.stop()
t.eq(d.stop(), 0, "the daemon stops cleanly")
signal.alarm(0)
t.done()

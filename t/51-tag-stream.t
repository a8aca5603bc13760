#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Monitor streams (GET /tags/monitor/{provider}/{source} with onChanged or
# streamInterval): a chunked text/event-stream of "data:[records]\n\n"
# events, the current values first.  Then what a gateway's clients do to
# a stream: go away in the middle of it, come and go by the dozen, stop
# reading, or outlive the daemon (SIGTERM).  Raw sockets with a deadline
# on every read; no wait has a lower bound.

import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()




class Num(str):
    """A JSON number, kept as the text it was sent as."""


class Stream:
    """One monitor stream on a raw socket: the head, then the chunked
    body decoded into events as they arrive."""

    def __init__(self, d, path, kind="http", timeout=5, rcvbuf=None):
        self.d = d
        if kind == "unix":
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if rcvbuf:
                self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.s.settimeout(timeout)
            self.s.connect(d.sock)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.s.settimeout(timeout)
            self.s.connect(("127.0.0.1", d.http_port))
        req = ("GET /api/v1%s HTTP/1.1\r\nHost: localhost\r\n"
               "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
               % (path, d.api_token))
        self.s.sendall(req.encode())
        self.raw = b""		# bytes not yet decoded
        self.text = b""		# decoded body not yet split into events
        self.events = []	# each the text after "data:"
        self.status = None
        self.headers = {}
        self.body = b""		# the body of a response that is not a stream
        self.ended = False	# the terminating chunk came
        self.eof = False	# the connection closed

    def _recv(self, deadline):
        left = deadline - time.time()
        if left <= 0 or self.eof:
            return False
        self.s.settimeout(left)
        try:
            c = self.s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            c = b""
        if not c:
            self.eof = True
            return False
        self.raw += c
        return True

    def head(self, timeout=5):
        """Read the response head; the status (None if none came)."""
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline):
                return None
        h, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = h.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n and self._recv(deadline):
                pass
            self.body, self.raw = self.raw[:n], self.raw[n:]
        return self.status

    def _decode(self):
        """Move whole chunks from raw to text, whole events to events."""
        while not self.ended:
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                break
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.ended = True
                break
            if len(rest) < size + 2:
                break
            self.text += rest[:size]
            self.raw = rest[size + 2:]
        while b"\n\n" in self.text:
            ev, _, self.text = self.text.partition(b"\n\n")
            self.events.append(ev)

    def wait(self, pred, timeout):
        """Read until pred(self) holds, the stream ends or timeout."""
        deadline = time.time() + timeout
        while True:
            self._decode()
            if pred(self) or self.ended or self.eof:
                return pred(self)
            if not self._recv(deadline):
                self._decode()
                return pred(self)

    def wait_events(self, n, timeout):
        return self.wait(lambda s: len(s.events) >= n, timeout)

    def wait_end(self, timeout):
        """True once the stream has ended (last chunk or connection closed)."""
        return self.wait(lambda s: s.ended or s.eof, timeout)

    def records(self, exact=False):
        """Every record of every event so far, in order; events that are
        not "data:<JSON array>" give a None."""
        out = []
        for ev in self.events:
            if not ev.startswith(b"data:"):
                out.append(None)
                continue
            try:
                if exact:
                    a = json.loads(ev[5:].decode(), parse_int=Num,
                                   parse_float=Num)
                else:
                    a = json.loads(ev[5:].decode())
            except ValueError:
                out.append(None)
                continue
            if not isinstance(a, list):
                out.append(None)
                continue
            out.extend(a)
        return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def rec(p, s, n, typ, value, **kw):
    r = {"prvdName": p, "srcName": s, "tagName": n, "dataType": typ,
         "dataValue": value}
    r.update(kw)
    return r


def under_asan(pid):
    """Is the daemon built with AddressSanitizer?  (Its quarantine keeps
    freed memory resident, so RSS says nothing about leaks there.)"""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return None


def healthy(d, what):
    """The daemon runs, answers /health and /metrics, and logged no error."""
    alive = d.alive()
    try:
        h = d.get("/health", token=None, timeout=5).status
        m = d.get("/metrics", timeout=5)
        mok = m.status == 200 and b"uplinkd_tag_records_total" in m.body
    except OSError as e:
        h, mok = repr(e), False
    log = d.log()
    bad = [ln for ln in log.splitlines()
           if "ERROR" in ln or "AddressSanitizer" in ln or
           "runtime error" in ln or "fatal" in ln.lower()]
    return t.ok(alive and h == 200 and mok and not bad,
                "%s: the daemon is healthy (alive, /health 200, /metrics "
                "answers, no error in the log)" % what,
                "alive %r, /health %r, /metrics %r\n%s" % (alive, h, mok,
                                                           "\n".join(bad[-20:])))


class Publisher(threading.Thread):
    """Publishes a new value of one tag every interval seconds for a
    while, each on its own connection."""

    def __init__(self, d, p, s, n, interval, duration, typ="uint32",
                 value=None):
        super().__init__(daemon=True)
        self.d, self.p, self.s, self.n = d, p, s, n
        self.interval, self.duration = interval, duration
        self.typ, self.value = typ, value
        self.sent = 0
        self.failed = []
        self.stop_ev = threading.Event()

    def run(self):
        end = time.time() + self.duration
        i = 0
        while time.time() < end and not self.stop_ev.is_set():
            i += 1
            v = self.value if self.value is not None else i
            try:
                r = self.d.post("/tags/publish",
                                rec(self.p, self.s, self.n, self.typ, v),
                                timeout=10)
                if r.status != 200:
                    self.failed.append(r)
                else:
                    self.sent += 1
            except OSError as e:
                self.failed.append(repr(e))
            time.sleep(self.interval)


d = Daemon(conf={"max_connections": "64", "idle_timeout": "30"})

# --- onChanged: the current value first, then every new value -------------

r = d.post("/tags/publish", [rec("mon", "dev", "a", "uint32", 1),
                             rec("mon", "dev", "b", "uint32", 100),
                             rec("mon", "dev", "big", "int64", 0)])
t.eq(r.status, 200, "tags a, b and big are published")

st = Stream(d, "/tags/monitor/mon/dev?tags=a&onChanged=true")
t.eq(st.head(), 200, "onChanged stream: 200")
t.ok(st.headers.get("content-type", "").startswith("text/event-stream") and
     st.headers.get("transfer-encoding", "").lower() == "chunked",
     "onChanged stream: chunked text/event-stream", st.headers)
st.wait_events(1, 5)
first = st.records()
t.ok(len(st.events) >= 1 and st.events[0].startswith(b"data:[") and
     [(x.get("tagName"), x.get("dataValue")) for x in first[:1]] == [("a", 1)],
     "onChanged stream: the current value comes first as data:[...]",
     st.events[:2])
t.ok(set(first[0] if first else {}) >= {"prvdName", "srcName", "tagName",
                                         "dataType", "dataValue", "dataUnit",
                                         "ts"},
     "onChanged stream: events carry full records", first[:1])
for v in range(2, 7):
    d.post("/tags/publish", rec("mon", "dev", "a", "uint32", v))
    d.post("/tags/publish", rec("mon", "dev", "b", "uint32", 100 + v))
st.wait(lambda s: any(x.get("dataValue") == 6 for x in s.records()[1:]
                      if isinstance(x, dict)), 5)
got = [(x.get("tagName"), x.get("dataValue")) if isinstance(x, dict) else x
       for x in st.records()]
t.ok(got == [("a", v) for v in range(1, 7)],
     "onChanged stream: each new value of a, in order, and nothing of b", got)
t.ok(all(ev.startswith(b"data:") for ev in st.events),
     "onChanged stream: every event is a data: line", st.events)
st.close()

st = Stream(d, "/tags/monitor/mon/dev?tags=big&onChanged=true")
st.head()
st.wait_events(1, 5)
for v in ("-9223372036854775808", "9223372036854775807", "9007199254740993"):
    d.post("/tags/publish", '{"prvdName":"mon","srcName":"dev","tagName":"big",'
           '"dataType":"int64","dataValue":%s}' % v,
           content_type="application/json")
st.wait(lambda s: len(s.records()) >= 4, 5)
vals = [x.get("dataValue") for x in st.records(exact=True)
        if isinstance(x, dict)]
t.ok(vals == ["0", "-9223372036854775808", "9223372036854775807",
              "9007199254740993"],
     "onChanged stream: 64-bit values stream exactly", st.events)
st.close()

st = Stream(d, "/tags/monitor/mon/dev?onChanged=true", kind="unix")
t.eq(st.head(), 200, "onChanged stream of a whole source over the unix socket")
st.wait_events(1, 5)
t.ok(sorted(x.get("tagName") for x in st.records()) == ["a", "b", "big"],
     "whole-source stream: the current values of every tag first",
     st.events[:1])
d.post("/tags/publish", rec("mon", "dev", "b", "uint32", 555))
d.post("/tags/publish", rec("mon", "dev", "c", "string", "new tag"))
st.wait(lambda s: len(s.records()) >= 5, 5)
t.ok([(x.get("tagName"), x.get("dataValue")) for x in st.records()[3:]] ==
     [("b", 555), ("c", "new tag")],
     "whole-source stream: changes of any tag, a new tag included",
     st.events)
st.close()

# --- streamInterval: periodic snapshots -----------------------------------

st = Stream(d, "/tags/monitor/mon/dev?tags=a,b&streamInterval=200")
t.eq(st.head(), 200, "streamInterval=200: 200")
t0 = time.time()
st.wait_events(3, 1.5)
took = time.time() - t0
t.ok(len(st.events) >= 3,
     "streamInterval=200: the snapshot and at least 2 more within 1.5 s",
     "%d events in %.2fs" % (len(st.events), took))
snaps = []
for ev in st.events:
    try:
        snaps.append([(x["tagName"], x["dataValue"])
                      for x in json.loads(ev[5:].decode())])
    except (ValueError, KeyError, TypeError):
        snaps.append(ev)
t.ok(len(snaps) >= 1 and all(s == [("a", 6), ("b", 555)] for s in snaps),
     "streamInterval=200: each event is a snapshot of a and b", snaps)
d.post("/tags/publish", rec("mon", "dev", "a", "uint32", 77))
n0 = len(st.events)
st.wait(lambda s: any(b'"dataValue":77' in ev for ev in s.events[n0:]), 2)
t.ok(any(b'"dataValue":77' in ev and b'"dataValue":555' in ev
         for ev in st.events[n0:]),
     "streamInterval=200: a later snapshot has the new value",
     st.events[n0:])
st.close()

st = Stream(d, "/tags/monitor/mon/dev?tags=a&streamInterval=200&onChanged=true")
t.eq(st.head(), 200, "streamInterval=200 with onChanged: 200")
st.wait_events(1, 2)
st.wait_events(2, 0.7)
quiet = len(st.events)
d.post("/tags/publish", rec("mon", "dev", "a", "uint32", 78))
st.wait_events(quiet + 1, 2)
t.ok(quiet == 1 and len(st.events) == 2 and
     [x.get("dataValue") for x in st.records()] == [77, 78],
     "streamInterval with onChanged: nothing while nothing changes, then "
     "the change", st.events)
st.close()

for q, field in [("streamInterval=99", "streamInterval"),
                 ("streamInterval=50", "streamInterval"),
                 ("streamInterval=1", "streamInterval"),
                 ("streamInterval=abc", "streamInterval"),
                 ("streamInterval=-100", "streamInterval"),
                 ("streamInterval=3600001", "streamInterval"),
                 ("onChanged=maybe", "onChanged")]:
    r = d.get("/tags/monitor/mon/dev?tags=a&" + q)
    msg = ""
    try:
        msg = r.json["error"]["message"]
    except (TypeError, KeyError):
        pass
    t.ok(r.status == 400 and field in msg,
         "%s: 400 naming %s" % (q, field), r)
st = Stream(d, "/tags/monitor/mon/dev?tags=a&streamInterval=100")
t.ok(st.head() == 200 and st.wait_events(2, 2),
     "streamInterval=100 (the minimum) streams", (st.status, st.events))
st.close()

# --- a client that goes away mid-stream -------------------------------------

pub = Publisher(d, "mon", "dev", "a", 0.01, 2.0)
st = Stream(d, "/tags/monitor/mon/dev?tags=a&onChanged=true")
st.head()
pub.start()
st.wait_events(5, 3)
got_some = len(st.events)
st.close()
pub.join(15)
t.ok(got_some >= 5 and pub.sent > 50 and not pub.failed,
     "values flowed to the stream until the client closed it",
     "%d events, %d published, failures %r" % (got_some, pub.sent,
                                               pub.failed[:3]))
st = Stream(d, "/tags/monitor/mon/dev?tags=a&onChanged=true")
st.head()
pub = Publisher(d, "mon", "dev", "a", 0.01, 1.0)
pub.start()
st.wait_events(3, 3)
st.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
st.close()
pub.join(15)
t.ok(not pub.failed, "a client that resets its stream connection (RST) "
     "mid-stream: publishing goes on", pub.failed[:3])
healthy(d, "after clients left mid-stream")
deadline = time.time() + 5
while time.time() < deadline and 'reason="client gone"' not in d.log():
    time.sleep(0.05)
t.ok('reason="client gone"' in d.log(),
     "the daemon noticed the client had gone (stream ended log line)",
     d.log()[-2000:])
st = Stream(d, "/tags/monitor/mon/dev?tags=a&onChanged=true")
st.head()
st.wait_events(1, 5)
d.post("/tags/publish", rec("mon", "dev", "a", "uint32", 4242))
st.wait(lambda s: any(x.get("dataValue") == 4242 for x in s.records()), 5)
t.ok(any(x.get("dataValue") == 4242 for x in st.records()),
     "a new stream on the same tag still gets values", st.events)
st.close()

# --- 50 clients coming and going while values are published -----------------

pub = Publisher(d, "mon", "dev", "a", 0.005, 60)
pub.start()
opened = 0
errors = []
for i in range(50):
    try:
        st = Stream(d, "/tags/monitor/mon/dev?tags=a,b&onChanged=true"
                    + ("&streamInterval=100" if i % 2 else ""),
                    kind="unix" if i % 5 == 0 else "http", timeout=5)
        if st.head() == 200 and st.wait_events(1, 5):
            opened += 1
        else:
            errors.append((i, st.status, st.events[:1]))
        if i % 3 == 0:
            st.wait_events(2, 0.2)
        st.close()
    except OSError as e:
        errors.append((i, repr(e)))
pub.stop_ev.set()
pub.join(15)
t.ok(opened == 50 and not errors,
     "50 stream clients connected, got their first event and left",
     "%d opened, errors %r" % (opened, errors[:5]))


def concurrent(n, timeout=5):
    """Hold n connections open at once, each answered GET /health; the
    number that were."""
    socks, ok = [], 0
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", d.http_port),
                                         timeout=timeout)
            socks.append(s)
        for s in socks:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            buf = b""
            deadline = time.time() + timeout
            while b"\r\n\r\n" not in buf and time.time() < deadline:
                s.settimeout(max(0.01, deadline - time.time()))
                try:
                    c = s.recv(4096)
                except (socket.timeout, OSError):
                    break
                if not c:
                    break
                buf += c
            if buf.startswith(b"HTTP/1.1 200"):
                ok += 1
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
    return ok


# Wait until the daemon has seen every close (with no lower bound).
deadline = time.time() + 10
n = 0
while time.time() < deadline:
    n = concurrent(60, timeout=2)
    if n == 60:
        break
    time.sleep(0.2)
t.eq(n, 60, "afterwards 60 of max_connections=64 connections are served "
     "at once (no stream connection leaked)")
healthy(d, "after 50 stream clients came and went")

# Many more short-lived streams: each one that ends because its client
# went away must give back all it held.
asan = under_asan(d.proc.pid)
req = ("GET /api/v1/tags/monitor/mon/dev?tags=a&onChanged=true HTTP/1.1\r\n"
       "Host: x\r\nAuthorization: Bearer %s\r\n\r\n" % d.api_token).encode()


def short_streams(n):
    """n streams that each get their first event and are closed; the
    number that got it."""
    got = 0
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", d.http_port), timeout=5)
        buf = b""
        try:
            s.sendall(req)
            deadline = time.time() + 5
            while b"data:" not in buf and time.time() < deadline:
                c = s.recv(65536)
                if not c:
                    break
                buf += c
        except OSError:
            pass
        finally:
            s.close()
        if b"data:" in buf:
            got += 1
    return got


short_streams(500)
time.sleep(0.3)
rss0 = vmrss_kb(d.proc.pid)
n = short_streams(6000)
time.sleep(0.3)
rss1 = vmrss_kb(d.proc.pid)
t.eq(n, 6000, "6000 more short-lived streams each got their first event")
if asan:
    t.ok(True, "# SKIP RSS is meaningless under AddressSanitizer (LeakSanitizer "
         "reports leaks at exit instead)")
else:
    t.ok(rss1 - rss0 < 3 * 1024,
         "streams ended by their clients leave no memory behind (RSS %d kB "
         "-> %d kB after 6000 streams)" % (rss0, rss1), (rss0, rss1))
healthy(d, "after 6000 short-lived streams")

# --- a client that never reads ---------------------------------------------

big = "x" * 60000
r = d.post("/tags/publish", rec("slow", "dev", "s", "string", big))
rss0 = vmrss_kb(d.proc.pid)
slow = Stream(d, "/tags/monitor/slow/dev?tags=s&onChanged=true", rcvbuf=4096)
t.eq(slow.head(), 200, "slow client: the stream opens")
batch = [rec("slow", "dev", "s", "string", big[:-3] + "%03d" % i)
         for i in range(40)]
cut = False
sent = 0
t0 = time.time()
while time.time() - t0 < 30:
    r = d.post("/tags/publish", batch, timeout=10)
    if r.status == 200:
        sent += len(batch)
    if 'stream ended reason="client too slow"' in d.log():
        cut = True
        break
t.ok(cut, "slow client: cut off with 'stream ended reason=\"client too "
     "slow\"'", "%d values of 60 kB published in %.1fs\n%s"
     % (sent, time.time() - t0, d.log()[-1500:]))
for _ in range(20):
    d.post("/tags/publish", batch, timeout=10)
time.sleep(0.3)
rss1 = vmrss_kb(d.proc.pid)
slack = 64 * 1024 + (320 * 1024 if asan else 0)
t.ok(rss0 is not None and rss1 is not None and rss1 - rss0 < slack,
     "slow client: the daemon's memory did not grow without bound "
     "(RSS %s kB -> %s kB after %d MB more%s)"
     % (rss0, rss1, len(batch) * 20 * 60 // 1000,
        "; ASan quarantine allowed for" if asan else ""), (rss0, rss1))
drained = slow.wait_end(10)
t.ok(drained, "slow client: its connection ends once it reads again",
     "events %d, ended %r, eof %r" % (len(slow.events), slow.ended, slow.eof))
slow.close()
healthy(d, "after cutting off a slow client")

# --- SIGTERM ends the streams -----------------------------------------------

s1 = Stream(d, "/tags/monitor/mon/dev?tags=a&onChanged=true")
s2 = Stream(d, "/tags/monitor/mon/dev?tags=a,b&streamInterval=100", kind="unix")
t.ok(s1.head() == 200 and s2.head() == 200 and s1.wait_events(1, 5) and
     s2.wait_events(1, 5), "two streams open before SIGTERM")
d.signal(signal.SIGTERM)
e1 = s1.wait_end(10)
e2 = s2.wait_end(10)
t.ok(e1 and e2, "SIGTERM: both stream clients see their stream end",
     "onChanged: ended %r eof %r; interval: ended %r eof %r"
     % (s1.ended, s1.eof, s2.ended, s2.eof))
try:
    code = d.proc.wait(15)
except Exception:
    code = None
t.eq(code, 0, "SIGTERM with open streams: the daemon exits 0")
s1.close()
s2.close()
log = d.log()
t.ok("AddressSanitizer" not in log and "runtime error" not in log,
     "no sanitizer report in the log", log[-3000:])
t.done()

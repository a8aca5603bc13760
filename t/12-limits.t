#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# Limits of the HTTP transport: max_body_size (413), max_header_size,
# max_connections (the listeners stop accepting at the limit and resume),
# request_timeout (slow and stalled requests are cut off) and
# idle_timeout (idle connections are closed).  Raw sockets throughout;
# every wait has a generous upper bound and no wait has a lower one.

import os
import select
import socket
import ssl
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()



def connect(d, kind="http", timeout=5):
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(d.sock)
        return s
    port = d.http_port if kind == "http" else d.https_port
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def get_req(path="/api/v1/health", extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n"


def read_response(s, timeout):
    """One HTTP response from s: (status, body), or None if the peer
    closed or nothing complete came within timeout."""
    deadline = time.time() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.time()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            c = s.recv(65536)
        except (socket.timeout, OSError):
            return None
        if not c:
            return None
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    clen = 0
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    while len(body) < clen:
        left = deadline - time.time()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            c = s.recv(65536)
        except (socket.timeout, OSError):
            return None
        if not c:
            return None
        body += c
    return status, body


def drain_until_closed(s, limit):
    """Read until the peer closes or resets: (seconds it took or None if
    still open after limit, bytes read)."""
    t0 = time.time()
    out = b""
    while True:
        left = limit - (time.time() - t0)
        if left <= 0:
            return None, out
        s.settimeout(left)
        try:
            c = s.recv(65536)
        except socket.timeout:
            return None, out
        except OSError:
            return time.time() - t0, out
        if not c:
            return time.time() - t0, out
        out += c


def status_of(data):
    """The status of the first response in raw bytes, or None."""
    if not data.startswith(b"HTTP/"):
        return None
    try:
        return int(data.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return None


def send_quietly(s, data):
    """Send; the peer may already have given up on us."""
    try:
        s.sendall(data)
        return True
    except OSError:
        return False


def health_ok(d, what):
    try:
        r = d.get("/health", token=None, timeout=5)
        t.eq(r.status, 200, "%s: the daemon still answers /health" % what)
    except OSError as e:
        t.ok(False, "%s: the daemon still answers /health" % what, e)


# --- max_body_size, max_header_size, request_timeout ----------------------

d1 = Daemon(conf={"max_body_size": "2048", "max_header_size": "1024",
                  "request_timeout": "1", "idle_timeout": "30"})

body = b'{"name":"' + b"n" * 1500 + b'","password":"x"}'
r = d1.post("/auth", body, content_type="application/json", token=None)
t.ok(r.status == 400 and r.json is not None,
     "a body under max_body_size is read (400 for the long name, not 413)", r)

for what, head, payload in [
        ("Content-Length over max_body_size",
         b"POST /api/v1/auth HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
         b"Content-Length: 4096\r\n\r\n", b"x" * 4096),
        ("chunked body over max_body_size",
         b"POST /api/v1/auth HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n",
         b"800\r\n" + b"x" * 2048 + b"\r\n800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n"),
        ("authenticated PUT over max_body_size",
         b"PUT /api/v1/users/1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
         b"Authorization: Bearer " + d1.api_token.encode() + b"\r\n"
         b"Content-Length: 100000\r\n\r\n", b"y" * 100000)]:
    s = connect(d1)
    send_quietly(s, head)
    send_quietly(s, payload)
    el, out = drain_until_closed(s, 10)
    s.close()
    t.eq(status_of(out), 413, "%s: 413" % what)
    t.ok(el is not None, "%s: the connection is closed afterwards" % what)

s = connect(d1)
send_quietly(s, get_req(extra=b"X-Pad: " + b"a" * 4000 + b"\r\n"))
el, out = drain_until_closed(s, 10)
s.close()
t.ok(status_of(out) != 200 and el is not None,
     "a head over max_header_size is not served and the connection closes",
     "status %r after %r s: %r" % (status_of(out), el, out[:200]))
s = connect(d1)
send_quietly(s, get_req(extra=b"".join(b"X-H%d: v\r\n" % i for i in range(300))))
el, out = drain_until_closed(s, 10)
s.close()
t.ok(status_of(out) != 200 and el is not None,
     "many headers over max_header_size: not served, closed",
     "status %r after %r s" % (status_of(out), el))
health_ok(d1, "after oversized requests")

# request_timeout = 1: half a head, then nothing.
s = connect(d1)
send_quietly(s, b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n")
el, out = drain_until_closed(s, 10)
s.close()
t.ok(el is not None and el < 8 and status_of(out) != 200,
     "half a request head: disconnected within request_timeout (closed after %s s)" % el, out)

# Slowloris: one byte every 0.3 s keeps the connection busy but must not
# keep it open.
s = connect(d1)
trickle = b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 200
t0 = time.time()
closed = None
for i in range(len(trickle)):
    if time.time() - t0 > 10:
        break
    if not send_quietly(s, trickle[i:i + 1]):
        closed = time.time() - t0
        break
    rl, _, _ = select.select([s], [], [], 0.3)
    if rl:
        try:
            c = s.recv(4096)
        except OSError:
            c = b""
        if not c:
            closed = time.time() - t0
            break
s.close()
t.ok(closed is not None and closed < 8,
     "slowloris head (a byte every 0.3 s): disconnected (after %s s)" % closed)

# The same with a complete head and a trickled body.
s = connect(d1)
send_quietly(s, b"POST /api/v1/auth HTTP/1.1\r\nHost: localhost\r\n"
             b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
t0 = time.time()
closed = None
got = b""
for i in range(100):
    if time.time() - t0 > 10:
        break
    if not send_quietly(s, b" "):
        closed = time.time() - t0
        break
    rl, _, _ = select.select([s], [], [], 0.3)
    if rl:
        try:
            c = s.recv(4096)
        except OSError:
            c = b""
        got += c
        if not c:
            closed = time.time() - t0
            break
s.close()
t.ok(closed is not None and closed < 8 and status_of(got) != 200,
     "slowloris body (a byte every 0.3 s): disconnected (after %s s)" % closed)

# Half a request that arrives in the same segment as a complete one (a
# pipelining client) has its first byte too: it is cut off as well.
s = connect(d1)
send_quietly(s, get_req() + b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n")
a = read_response(s, 5)
el, out = drain_until_closed(s, 8)
s.close()
t.ok(a is not None and a[0] == 200, "pipelined: the complete request is answered", a)
t.ok(el is not None and status_of(out) != 200,
     "pipelined: the half request behind it is cut off by request_timeout (closed after %s s)"
     % el, out[:200])

# request_timeout counts from a request's first byte: a keep-alive
# connection may rest between requests longer than that.
s = connect(d1)
send_quietly(s, get_req())
a = read_response(s, 5)
time.sleep(1.6)
send_quietly(s, get_req())
b = read_response(s, 5)
s.close()
t.ok(a is not None and a[0] == 200 and b is not None and b[0] == 200,
     "a keep-alive connection resting longer than request_timeout still serves", (a, b))
health_ok(d1, "after slow clients")
t.ok("request not complete" in d1.log() or "timeout" in d1.log(),
     "the cut-off slow requests are logged")

# --- max_connections -------------------------------------------------------

d2 = Daemon(conf={"max_connections": "4", "idle_timeout": "30", "request_timeout": "30"})
time.sleep(0.5)             # let the start-up probe's connection go
held = []
for i in range(4):
    s = connect(d2)
    send_quietly(s, get_req())
    r = read_response(s, 5)
    t.ok(r is not None and r[0] == 200, "connection %d of 4 is served and kept open" % (i + 1), r)
    held.append(s)

fifth = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
fifth.settimeout(3)
try:
    fifth.connect(("127.0.0.1", d2.http_port))
    fifth_connected = True
except OSError:
    fifth_connected = False     # a full backlog may hold the SYN: also waiting
if fifth_connected:
    send_quietly(fifth, get_req())
    r = read_response(fifth, 1.5)
    t.ok(r is None, "a 5th connection gets no answer while 4 are held", r)
else:
    t.ok(True, "a 5th connection waits in connect() while 4 are held")

sixth = None
try:
    sixth = connect(d2, "unix", timeout=3)
    send_quietly(sixth, get_req())
    r = read_response(sixth, 1)
    t.ok(r is None, "the limit covers the unix socket too: no answer there", r)
except OSError as e:
    t.ok(True, "the limit covers the unix socket too: connect waits (%s)" % e)
    sixth = None

held.pop(0).close()
if fifth_connected:
    r = read_response(fifth, 8)
    t.ok(r is not None and r[0] == 200, "once one of the 4 closes, the 5th is served", r)
else:
    try:
        fifth.connect(("127.0.0.1", d2.http_port))
        send_quietly(fifth, get_req())
        r = read_response(fifth, 8)
    except OSError as e:
        r = e
    t.ok(isinstance(r, tuple) and r[0] == 200, "once one of the 4 closes, the 5th is served", r)
if sixth is not None:
    held.pop(0).close()
    r = read_response(sixth, 8)
    t.ok(r is not None and r[0] == 200, "and once another closes, the unix one", r)
    sixth.close()
fifth.close()
for s in held:
    s.close()
time.sleep(0.3)
health_ok(d2, "after the connection limit")
t.ok("max_connections" in d2.log(), "reaching the limit is logged")

# --- idle_timeout ----------------------------------------------------------

d3 = Daemon(conf={"idle_timeout": "2", "request_timeout": "30"})
ka = connect(d3)
send_quietly(ka, get_req())
a = read_response(ka, 5)
send_quietly(ka, get_req())
b = read_response(ka, 5)
ka_t0 = time.time()
t.ok(a is not None and a[0] == 200 and b is not None and b[0] == 200,
     "keep-alive: two requests on one connection", (a, b))
silent = connect(d3)
silent_unix = connect(d3, "unix")
silent_tls_tcp = connect(d3, "https")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
tls_idle = None
try:
    tls_idle = ctx.wrap_socket(connect(d3, "https"), server_hostname="localhost")
    tls_idle.sendall(get_req())
    r = read_response(tls_idle, 5)
    t.ok(r is not None and r[0] == 200, "HTTPS keep-alive connection served", r)
except (OSError, ssl.SSLError) as e:
    t.ok(False, "HTTPS keep-alive connection served", e)

for what, s in [("an idle keep-alive connection", ka),
                ("a connection that never sends a byte", silent),
                ("an idle unix socket connection", silent_unix),
                ("a TCP connection to the HTTPS port without a handshake", silent_tls_tcp),
                ("an idle HTTPS keep-alive connection", tls_idle)]:
    if s is None:
        t.ok(False, "%s is closed after idle_timeout" % what, "no connection")
        continue
    el, out = drain_until_closed(s, 12)
    t.ok(el is not None and out == b"",
         "%s is closed after idle_timeout (closed after %s s)" % (what, el), out[:200])
    s.close()
    if s is ka:
        t.ok(el is not None and time.time() - ka_t0 >= 1.0,
             "the idle keep-alive connection was not closed early (before 1 s)")
health_ok(d3, "after idle connections")

for d in (d1, d2, d3):
    t.ok(d.alive(), "daemon on port %d still running" % d.http_port)
t.done()

# SPDX-License-Identifier: ISC
#
# Signals: TERM and INT stop cleanly (exit 0, pidfile and socket removed,
# a held-back login answer still delivered), HUP re-reads the file (log
# level, timeouts, listener addresses, the API token; a broken file is
# ignored and logged), USR1 toggles debug logging.

import atexit
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()
_daemon_pids = []


def _kill_daemonised():
    for pid in _daemon_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


atexit.register(_kill_daemonised)


def wait_for(cond, timeout=5, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def wait_exit(d, timeout=5):
    try:
        return d.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def health(port, timeout=2):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", "/api/v1/health")
        st = c.getresponse().status
        c.close()
        return st
    except OSError as e:
        return "error: %s" % e.__class__.__name__


def refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def closed_by_peer(s, timeout):
    """Does the server close the idle connection s within timeout?"""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def log_count(d, text):
    return d.log().count(text)


def login_request(name, password, close=False):
    body = json.dumps({"name": name, "password": password}).encode()
    return (b"POST /api/v1/auth HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n%s"
            b"Content-Length: %d\r\n\r\n"
            % (b"Connection: close\r\n" if close else b"", len(body))) + body


def read_response(s, timeout):
    """One HTTP response from s: bytes, complete or as far as it came."""
    s.settimeout(timeout)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        head, sep, body = out.partition(b"\r\n\r\n")
        if sep:
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v.strip() or 0)
            if len(body) >= n:
                break
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


# --- TERM and INT ---------------------------------------------------------

def held_login(d, name, close):
    """Send a failed login, wait until it is checked (its answer is held
    back 250 ms); the socket, and whether the failure was logged."""
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=5)
    mark = log_count(d, "login failed")
    s.sendall(login_request(name, "not-the-password", close))
    held = wait_for(lambda: log_count(d, "login failed") > mark, 2, 0.005)
    return s, held


def stop_test(sig, signame):
    d = Daemon()
    t.ok(os.path.exists(d.pidfile) and os.path.exists(d.sock),
         "%s: pidfile and unix socket exist while running" % signame)
    idle = socket.create_connection(("127.0.0.1", d.http_port), timeout=5)
    # Two account names: a second failure of one name would be a 429.
    sent = time.time()
    s, held = held_login(d, "admin", False)
    s2, held2 = held_login(d, "nobody", True)
    t0 = time.time()
    d.signal(sig)
    t.ok(t0 - sent < 0.25, "%s: the signal came while the answers were "
         "held back (%.3f s after the first login)" % (signame, t0 - sent))
    resp = read_response(s, 5)
    took = time.time() - t0
    resp2 = read_response(s2, 5)
    s.close()
    s2.close()
    t.ok(held and held2,
         "%s: the failed logins were checked before the signal" % signame)
    t.ok(resp.startswith(b"HTTP/1.1 401"),
         "%s: the held-back login answer still arrives (401)" % signame,
         resp[:300])
    body = resp.split(b"\r\n\r\n", 1)[-1]
    try:
        err = json.loads(body).get("error")
    except ValueError:
        err = None
    t.ok(isinstance(err, dict) and err.get("code") == 401,
         "%s: ... with its whole JSON body" % signame, body[:300])
    t.ok(took < 3, "%s: ... promptly (%.2f s)" % (signame, took))
    t.ok(resp2.startswith(b"HTTP/1.1 401"),
         "%s: ... also for a request with 'Connection: close'" % signame,
         resp2[:300])
    rc = wait_exit(d, 5)
    idle.close()
    t.eq(rc, 0, "%s: the daemon exits 0 (with an idle connection open)"
         % signame)
    t.ok(not os.path.exists(d.pidfile), "%s: the pidfile is removed" % signame)
    t.ok(not os.path.exists(d.sock), "%s: the unix socket is removed"
         % signame)
    t.ok("stopped" in d.log(), "%s: 'stopped' is logged" % signame,
         d.log()[-2000:])


stop_test(signal.SIGTERM, "SIGTERM")
stop_test(signal.SIGINT, "SIGINT")

# --- HUP: log level, idle timeout, http_listen -----------------------------

d = Daemon()
old_port = d.http_port
token = d.api_token

# Before: info level (no request lines), a 60 s idle timeout.
d.get("/users/9001")
t.ok("/api/v1/users/9001" not in d.log(),
     "at log_level info requests are not logged")
idle = socket.create_connection(("127.0.0.1", old_port), timeout=5)
t.ok(not closed_by_peer(idle, 1.5),
     "with idle_timeout 60 an idle connection stays open for 1.5 s")
idle.close()

new_port = free_port()
d.settings.update({"http_listen": "127.0.0.1:%d" % new_port,
                   "log_level": "debug", "idle_timeout": "1"})
d.write_conf()
mark = log_count(d, "reloaded configuration")
d.signal(signal.SIGHUP)
t.ok(wait_for(lambda: health(new_port) == 200),
     "after HUP the new http_listen port answers")
t.ok(log_count(d, "reloaded configuration") > mark,
     "the reload is logged", d.log()[-1500:])
t.ok(refused(old_port), "the old port is closed")
d.http_port = new_port
t.eq(d.get("/users", token=token).status, 200,
     "the API answers on the new port")
t.eq(d.get("/health", kind="unix").status, 200,
     "the unix socket still answers")
t.eq(d.get("/health", kind="https").status, 200,
     "the HTTPS listener still answers")
d.get("/users/9002")
t.ok("http: GET /api/v1/users/9002" in d.log(),
     "log_level debug from the file: requests are logged")
idle = socket.create_connection(("127.0.0.1", new_port), timeout=5)
t0 = time.time()
t.ok(closed_by_peer(idle, 4),
     "idle_timeout 1 from the file: an idle connection is closed (%.1f s)"
     % (time.time() - t0))
idle.close()
t.ok(d.alive(), "the daemon runs on")

# --- HUP with a broken file -------------------------------------------------

other = free_port()
with open(d.conffile, "a") as f:
    f.write('http_listen = "127.0.0.1:%d"\nlog_level = warning\n' % other)
    f.write("no_such_key = 1\n")
mark = log_count(d, "reload:")
d.signal(signal.SIGHUP)
t.ok(wait_for(lambda: log_count(d, "reload:") > mark),
     "a HUP with a broken file logs 'reload:'", d.log()[-1500:])
line = [x for x in d.log().splitlines() if "reload:" in x][-1:]
t.ok(line and "no_such_key" in line[0] and d.conffile in line[0],
     "... naming the file and the bad key", line)
time.sleep(0.2)
t.ok(d.alive(), "the daemon keeps running")
t.eq(health(new_port), 200, "it still answers on the running port")
t.ok(refused(other), "the broken file's http_listen was not applied")
d.get("/users/9003")
t.ok("http: GET /api/v1/users/9003" in d.log(),
     "the broken file's log_level was not applied")

# A listener that cannot be opened keeps the old one.
busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
busy.bind(("127.0.0.1", 0))
busy.listen(1)
busy_port = busy.getsockname()[1]
d.settings.update({"http_listen": "127.0.0.1:%d" % busy_port})
d.write_conf()
mark = log_count(d, "reload:")
d.signal(signal.SIGHUP)
t.ok(wait_for(lambda: log_count(d, "reload:") > mark),
     "a HUP onto a port in use logs 'reload:'", d.log()[-1500:])
t.eq(health(new_port), 200, "... and the old listener keeps answering")
busy.close()

# --- HUP re-reads the API token --------------------------------------------

d.settings.update({"http_listen": "127.0.0.1:%d" % new_port})
d.write_conf()
new_token = "f00dfeed" * 4
with open(os.path.join(d.datadir, "api-token"), "w") as f:
    f.write(new_token + "\n")
t.eq(d.get("/users", token=new_token).status, 401,
     "a new API token is not used before HUP")
d.signal(signal.SIGHUP)
t.ok(wait_for(lambda: d.get("/users", token=new_token).status == 200),
     "after HUP the new API token works")
t.eq(d.get("/users", token=token).status, 401,
     "... and the old one is refused")
t.eq(d.get("/users", token=new_token, header_style="mx").status, 200,
     "... also as mx-api-token")

# --- USR1 -------------------------------------------------------------------

u = Daemon(https=False)
u.get("/users/9101")
t.ok("/api/v1/users/9101" not in u.log(), "USR1: not logged at info level")
u.signal(signal.SIGUSR1)
t.ok(wait_for(lambda: "debug logging on" in u.log()),
     "USR1 switches debug logging on (logged)")
u.get("/users/9102")
t.ok("http: GET /api/v1/users/9102" in u.log(),
     "... requests are logged as 'http: GET ...'", u.log()[-1500:])
u.get("/users/9103", kind="unix")
t.ok("http: GET /api/v1/users/9103" in u.log(),
     "... also those over the unix socket")
u.signal(signal.SIGUSR1)
t.ok(wait_for(lambda: "debug logging off" in u.log()),
     "a second USR1 switches it off (logged)")
u.get("/users/9104")
t.ok("/api/v1/users/9104" not in u.log(), "... requests are no longer logged")
u.signal(signal.SIGUSR1)
t.ok(wait_for(lambda: log_count(u, "debug logging on") == 2),
     "a third USR1 switches it on again")
u.get("/users/9105")
t.ok("http: GET /api/v1/users/9105" in u.log(), "... requests are logged")
t.eq(u.stop(), 0, "the daemon still stops with exit 0")

# --- HUP on a daemonised start with relative paths --------------------------

# "Relative paths are taken from the directory the daemon was started in"
# and HUP re-reads "the configuration file", also once the daemon has left
# that directory.
rdir = tmpdir()
p1, p2 = free_port(), free_port()
rconf = os.path.join(rdir, "rel.conf")


def write_rel(port):
    with open(rconf, "w") as f:
        f.write("datadir = data\npidfile = rel.pid\nunix_socket = rel.sock\n"
                "http_listen = 127.0.0.1:%d\nhttps_listen = off\n"
                "password_iterations = 1000\n" % port)


write_rel(p1)
p = subprocess.run([UPLINKD, "-f", "rel.conf"], cwd=rdir,
                   stdin=subprocess.DEVNULL, capture_output=True, text=True,
                   timeout=20)
rpid = None
try:
    with open(os.path.join(rdir, "rel.pid")) as f:
        rpid = int(f.read().strip())
    _daemon_pids.append(rpid)
except (OSError, ValueError):
    pass
t.ok(p.returncode == 0 and rpid is not None and health(p1) == 200,
     "a daemonised start with a relative -f path and relative paths",
     p.stderr)
if rpid is not None:
    write_rel(p2)
    os.kill(rpid, signal.SIGHUP)
    t.ok(wait_for(lambda: health(p2) == 200, 3),
         "HUP re-reads a relative -f file after daemonising (new port)")
    sock = os.path.join(rdir, "rel.sock")
    t.ok(os.path.exists(sock) and not os.path.exists("/rel.sock"),
         "... and a relative unix_socket stays where it was")
    os.kill(rpid, signal.SIGTERM)

    def gone():
        # Not our child: a zombie left to a non-reaping init counts as gone.
        try:
            with open("/proc/%d/stat" % rpid) as f:
                return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
        except OSError:
            return True
    t.ok(wait_for(gone, 5), "the daemonised daemon stops on TERM")
    t.ok(not os.path.exists(os.path.join(rdir, "rel.pid")),
         "... and removes its relative pidfile")

t.done()

# SPDX-License-Identifier: ISC
#
# Start-up: what the first start creates, the admin password file, the
# pidfile lock, daemonising (the parent exits 0 only once the daemon
# serves, 1 with the cause otherwise), a data directory that cannot be
# made, and the unix socket (mode, stale socket, socket in use).

import atexit
import http.client
import os
import signal
import socket
import stat
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


def mode_of(path):
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except OSError as e:
        return str(e)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def write_conf(path, settings):
    with open(path, "w") as f:
        for k, v in settings.items():
            f.write('%s = "%s"\n' % (k, v))


def base_settings(d, **over):
    s = {
        "datadir": os.path.join(d, "data"),
        "pidfile": os.path.join(d, "uplinkd.pid"),
        "http_listen": "127.0.0.1:%d" % free_port(),
        "https_listen": "off",
        "unix_socket": "off",
        "password_iterations": "1000",
    }
    s.update(over)
    return s


def health(port, timeout=2):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/api/v1/health")
        return c.getresponse().status
    except OSError as e:
        return "error: %s" % e
    finally:
        c.close()


def unix_health(path, timeout=2):
    c = http.client.HTTPConnection("localhost", timeout=timeout)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        c.sock = s
        c.request("GET", "/api/v1/health")
        return c.getresponse().status
    except OSError as e:
        return "error: %s" % e
    finally:
        c.close()


# --- first start -----------------------------------------------------------

d = Daemon()
t.ok(os.path.isdir(d.datadir), "first start creates the data directory")
t.eq(mode_of(d.datadir), 0o700, "data directory has mode 0700")
for name in ("api-token", "jwt-secret", "admin-password",
             os.path.join("tls", "uplinkd.key")):
    p = os.path.join(d.datadir, name)
    t.ok(os.path.isfile(p), "first start creates %s" % name)
    t.eq(mode_of(p), 0o600, "%s has mode 0600" % name)
t.ok(os.path.isfile(os.path.join(d.datadir, "tls", "uplinkd.crt")),
     "first start creates tls/uplinkd.crt")
t.ok(os.path.isfile(os.path.join(d.datadir, "config.tch")),
     "first start creates config.tch")
t.ok(len(d.api_token) >= 16, "the API token is at least 16 characters")
t.eq(d.get("/users").status, 200, "the API token from the file works")

pw = d.admin_password
t.ok(len(pw) >= 8, "the admin password file holds a password")
r = d.post("/auth", {"name": "admin", "password": pw}, token=None)
t.eq(r.status, 200, "the admin password from the file logs in")
jwt = (r.json or {}).get("data", {}).get("token") if r.status == 200 else None
t.ok(jwt and d.get("/users", token=jwt).status == 200,
     "the login token is accepted", r)
t.eq(d.post("/auth", {"name": "admin", "password": pw + "x"},
            token=None).status, 401, "a wrong admin password is refused")

# The pidfile holds the daemon's pid; the default socket mode is 0660.
with open(d.pidfile) as f:
    t.eq(f.read().strip(), str(d.proc.pid), "the pidfile holds the pid")
t.ok(stat.S_ISSOCK(os.lstat(d.sock).st_mode), "the unix socket exists")
t.eq(mode_of(d.sock), 0o660, "the unix socket has the default mode 0660")
t.eq(d.get("/health", kind="unix").status, 200,
     "the unix socket answers")

# A second start on the same datadir keeps what the first one made.
tok, secret = d.api_token, d.file("jwt-secret")
t.eq(d.stop(), 0, "SIGTERM stops the first daemon with status 0")
d.start()
t.eq((d.api_token, d.file("jwt-secret"), d.admin_password), (tok, secret, pw),
     "a restart keeps the API token, the JWT secret and the admin password")
t.eq(d.get("/users", token=jwt).status, 200,
     "a login token survives a restart")

# --- a second daemon with the same pidfile --------------------------------

d2dir = tmpdir()
conf2 = os.path.join(d2dir, "uplinkd.conf")
write_conf(conf2, base_settings(d2dir, pidfile=d.pidfile))
rc, out, err = run(["-d", "-f", conf2], timeout=15)
t.eq(rc, 1, "a second daemon with the same pidfile exits 1")
t.ok(d.pidfile in err and "running" in err,
     "... and says the pidfile is locked, naming it", err)
rc, out, err = run(["-f", conf2], timeout=15)
t.eq(rc, 1, "... also when daemonising")
t.ok(d.pidfile in err, "... naming the pidfile on stderr", err)
t.ok(d.alive() and d.get("/health", token=None).status == 200,
     "the first daemon still runs")
with open(d.pidfile) as f:
    t.eq(f.read().strip(), str(d.proc.pid),
         "the pidfile still holds the first daemon's pid")
t.ok(not os.path.exists(os.path.join(d2dir, "data", "config.tch")),
     "the refused daemon did not open a store")

# -p overrides the configuration file's pidfile, with the same lock.
rc, out, err = run(["-d", "-f", conf2, "-p", d.pidfile], timeout=15)
t.ok(rc == 1 and d.pidfile in err, "-p names a locked pidfile: exit 1",
     "rc=%r\n%s" % (rc, err))

# --- daemonised start -----------------------------------------------------

ddir = tmpdir()
dconf = os.path.join(ddir, "uplinkd.conf")
dset = base_settings(ddir, unix_socket=os.path.join(ddir, "u.sock"))
write_conf(dconf, dset)
dport = int(dset["http_listen"].rsplit(":", 1)[1])
t0 = time.time()
p = subprocess.run([UPLINKD, "-f", dconf], stdin=subprocess.DEVNULL,
                   capture_output=True, text=True, timeout=20)
took = time.time() - t0
dpid = None
try:
    with open(dset["pidfile"]) as f:
        dpid = int(f.read().strip())
    _daemon_pids.append(dpid)
except (OSError, ValueError):
    pass
t.eq(p.returncode, 0, "a daemonised start exits 0")
t.eq(health(dport), 200, "... and /health answers as soon as it returned")
t.eq(p.stderr, "", "... with nothing on stderr")
t.ok(took < 10, "... promptly (%.1f s)" % took)
t.ok(dpid is not None and pid_alive(dpid),
     "the pidfile holds the pid of a running daemon", dpid)
if dpid is not None:
    try:
        exe = os.readlink("/proc/%d/exe" % dpid)
    except OSError as e:
        exe = str(e)
    t.eq(os.path.realpath(exe), os.path.realpath(UPLINKD),
         "the pidfile's process is uplinkd")
    try:
        sid = os.getsid(dpid)
    except OSError:
        sid = None
    t.eq(sid, dpid, "the daemon leads its own session")
    t.eq(unix_health(dset["unix_socket"]), 200,
         "the daemonised daemon serves its unix socket")

    # A daemonised start on a port in use: exit 1 with the cause.
    bdir = tmpdir()
    bconf = os.path.join(bdir, "uplinkd.conf")
    write_conf(bconf, base_settings(bdir, http_listen="127.0.0.1:%d" % dport))
    t0 = time.time()
    p = subprocess.run([UPLINKD, "-f", bconf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    t.eq(p.returncode, 1, "a daemonised start on a port in use exits 1")
    t.ok("http_listen" in p.stderr and str(dport) in p.stderr and
         "in use" in p.stderr,
         "... and stderr names the listener and the cause", p.stderr)
    t.ok(time.time() - t0 < 10, "... promptly")
    left = None
    try:
        with open(os.path.join(bdir, "uplinkd.pid")) as f:
            left = int(f.read().strip())
    except (OSError, ValueError):
        pass
    t.ok(left is None or wait_gone(left, 5),
         "... and leaves no process behind", left)
    t.eq(health(dport), 200, "the running daemon still answers")

    # Stop the daemonised one: it removes its pidfile and socket.
    os.kill(dpid, signal.SIGTERM)
    t.ok(wait_gone(dpid, 10), "SIGTERM stops the daemonised daemon")
    t.ok(not os.path.exists(dset["pidfile"]),
         "... which removes its pidfile")
    t.ok(not os.path.exists(dset["unix_socket"]),
         "... and its unix socket")
else:
    t.ok(False, "daemonised start: no pid to check further")

# A daemonised start with a TCP port in use, foreground: exit 1 too.
fdir = tmpdir()
hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
hold.bind(("127.0.0.1", 0))
hold.listen(1)
hport = hold.getsockname()[1]
fconf = os.path.join(fdir, "uplinkd.conf")
write_conf(fconf, base_settings(fdir, http_listen="127.0.0.1:%d" % hport))
rc, out, err = run(["-d", "-f", fconf], timeout=15)
t.eq(rc, 1, "a foreground start on a port in use exits 1")
t.ok("http_listen" in err and str(hport) in err,
     "... naming the listener", err)
hold.close()

# --- a data directory that cannot be created ------------------------------

xdir = tmpdir()
blocker = os.path.join(xdir, "plainfile")
with open(blocker, "w") as f:
    f.write("not a directory\n")
xconf = os.path.join(xdir, "uplinkd.conf")
write_conf(xconf, base_settings(xdir, datadir=os.path.join(blocker, "data")))
rc, out, err = run(["-d", "-f", xconf], timeout=15)
t.eq(rc, 1, "a datadir under a regular file: exit 1 (foreground)")
t.ok("datadir" in err and "Not a directory" in err,
     "... with the cause on stderr", err)
p = subprocess.run([UPLINKD, "-f", xconf], stdin=subprocess.DEVNULL,
                   capture_output=True, text=True, timeout=20)
t.eq(p.returncode, 1, "a datadir under a regular file: exit 1 (daemonising)")
t.ok("datadir" in p.stderr and "Not a directory" in p.stderr,
     "... with the cause on stderr", p.stderr)

# -D overrides the datadir of the file.
rc, out, err = run(["-d", "-f", xconf, "-D", os.path.join(blocker, "d2")],
                   timeout=15)
t.ok(rc == 1 and os.path.join(blocker, "d2") in err,
     "-D names the data directory that cannot be created", err)

# --- the unix socket ------------------------------------------------------

# unix_socket_mode applies.
m = Daemon(conf={"unix_socket_mode": "0600"}, https=False)
t.eq(mode_of(m.sock), 0o600, "unix_socket_mode 0600 gives a 0600 socket")
t.eq(m.get("/health", kind="unix").status, 200, "... which answers")
m.stop()
m.write_conf({"unix_socket_mode": "0666"})
m.start()
t.eq(mode_of(m.sock), 0o666, "unix_socket_mode 0666 gives a 0666 socket")
m.stop()

# A stale socket (nobody listening) is replaced.
s = Daemon(start=False, https=False)
stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
stale.bind(s.sock)
stale.close()
t.ok(stat.S_ISSOCK(os.lstat(s.sock).st_mode), "a stale socket file is there")
try:
    s.start()
    started = True
except RuntimeError as e:
    started = False
    t.diag(str(e))
t.ok(started, "a stale socket does not stop the start")
t.eq(s.get("/health", kind="unix").status if started else None, 200,
     "the replaced socket answers")

# A socket another daemon answers on is refused, and left alone.
o = Daemon(start=False, https=False, unix=False)
o.settings["unix_socket"] = s.sock
o.write_conf()
rc, out, err = run(["-d", "-f", o.conffile], timeout=15)
t.eq(rc, 1, "a socket in use by another daemon: exit 1")
t.ok(s.sock in err and "in use" in err,
     "... naming the socket and the cause", err)
t.ok(os.path.exists(s.sock) and
     s.get("/health", kind="unix").status == 200,
     "the other daemon's socket still answers")

# A unix_socket path that is a regular file is refused, not deleted.
f_path = os.path.join(s.dir, "regular")
with open(f_path, "w") as f:
    f.write("data\n")
o.settings["unix_socket"] = f_path
o.write_conf()
rc, out, err = run(["-d", "-f", o.conffile], timeout=15)
t.ok(rc == 1 and f_path in err and "not a socket" in err,
     "a unix_socket path that is a regular file: exit 1, named", err)
t.ok(os.path.isfile(f_path), "... and the file is left alone")

t.done()

# SPDX-License-Identifier: ISC
"""Test harness for uplinkd integration tests.

Each t/NN-area.t imports this module, starts one or more real daemons on
free loopback ports with a temporary data directory, talks to them as a
client would, and prints TAP.  Every daemon started here is killed when
the test exits, however it exits.

Environment: UPLINKD (the binary; default ../src/uplinkd from this file),
UPLINKD_KEEP=1 keeps the temporary directories for a look afterwards.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("UPLINKD_SRCDIR", os.path.dirname(os.path.dirname(HERE)))
BUILDDIR = os.environ.get("UPLINKD_BUILDDIR", SRCDIR)
UPLINKD = os.environ.get("UPLINKD", os.path.join(BUILDDIR, "src", "uplinkd"))

# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default) and counts in VmRSS; a small one keeps the tests that watch
# the daemon's memory meaningful in the sanitizer build too.
def daemon_env():
    """The environment as it is now, with a small ASan quarantine."""
    env = dict(os.environ)
    if "quarantine_size_mb" not in env.get("ASAN_OPTIONS", ""):
        env["ASAN_OPTIONS"] = ":".join(
            x for x in (env.get("ASAN_OPTIONS"), "quarantine_size_mb=4")
            if x)
    return env


_daemons = []
_tmpdirs = []


# --- TAP -------------------------------------------------------------------

class TAP:
    """A TAP producer: ok(), eq(), done()."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        # An unexpected exception is a failed test point and the plan is
        # still printed, so that the TAP stream stays whole.
        sys.excepthook = self._crash

    def _crash(self, tp, value, tb):
        import traceback
        signal.alarm(0)
        self.ok(False, "the test runs to its end",
                "".join(traceback.format_exception(tp, value, tb)))
        print("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1)

    def time_limit(self, seconds):
        """A test still running after seconds fails a point and ends (the
        daemons it started are killed at exit)."""
        def overrun(signum, frame):
            import traceback
            self.ok(False, "the test ends within %d s" % seconds,
                    "".join(traceback.format_stack(frame)))
            self.done()
        signal.signal(signal.SIGALRM, overrun)
        signal.alarm(seconds)

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name))
        if not cond and diag is not None:
            for line in str(diag).splitlines() or [""]:
                print("#   " + line)
        sys.stdout.flush()
        return bool(cond)

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line)
        sys.stdout.flush()

    def bail(self, msg):
        print("Bail out! " + msg)
        sys.stdout.flush()
        sys.exit(1)

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


def tmpdir(prefix="uplinkd-t-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Daemon:
    """One uplinkd on free loopback ports with its own data directory."""

    def __init__(self, conf=None, start=True, https=True, unix=True,
                 datadir=None, args=None):
        self.dir = tmpdir()
        self.datadir = datadir or os.path.join(self.dir, "data")
        self.http_port = free_port()
        self.https_port = free_port() if https else None
        self.sock = os.path.join(self.dir, "uplinkd.sock") if unix else None
        self.conffile = os.path.join(self.dir, "uplinkd.conf")
        self.pidfile = os.path.join(self.dir, "uplinkd.pid")
        self.logfile = os.path.join(self.dir, "uplinkd.log")
        self.args = args or []
        self.proc = None
        self.settings = {
            "datadir": self.datadir,
            "pidfile": self.pidfile,
            "http_listen": "127.0.0.1:%d" % self.http_port,
            "https_listen": ("127.0.0.1:%d" % self.https_port) if https else "off",
            "unix_socket": self.sock or "off",
            "password_iterations": "1000",
        }
        if conf:
            self.settings.update(conf)
        self.write_conf()
        _daemons.append(self)
        if start:
            self.start()

    def write_conf(self, extra=None):
        s = dict(self.settings)
        if extra:
            s.update(extra)
        with open(self.conffile, "w") as f:
            for k, v in s.items():
                f.write('%s = "%s"\n' % (k, v))

    def start(self, wait=True):
        log = open(self.logfile, "a")
        self.proc = subprocess.Popen([UPLINKD, "-d", "-f", self.conffile] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=daemon_env())
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("uplinkd exited with %s during start:\n%s"
                                   % (self.proc.returncode, self.log()))
            try:
                r = self.get("/health", token=None, timeout=1)
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("uplinkd did not answer in %ds:\n%s" % (timeout, self.log()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop with sig; the exit status (None if it would not stop)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def file(self, name):
        with open(os.path.join(self.datadir, name)) as f:
            return f.read().strip()

    @property
    def api_token(self):
        return self.file("api-token")

    @property
    def admin_password(self):
        return self.file("admin-password")

    def login(self, name="admin", password=None):
        r = self.post("/auth", {"name": name, "password": password or self.admin_password},
                      token=None)
        if r.status != 200:
            raise RuntimeError("login failed: %r" % (r,))
        return r.json["data"]["token"]

    # --- HTTP --------------------------------------------------------------

    def connection(self, kind="http", timeout=10):
        if kind == "http":
            return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        if kind == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection("127.0.0.1", self.https_port,
                                               timeout=timeout, context=ctx)
        if kind == "unix":
            return _UnixHTTPConnection(self.sock, timeout)
        raise ValueError(kind)

    def request(self, method, path, body=None, token="api", headers=None,
                content_type=None, kind="http", timeout=10, prefix="/api/v1",
                header_style="bearer"):
        """One request on a new connection; body may be a dict/list (sent as
        JSON), bytes or str (sent as is).  token: "api" for the API token,
        None for none, or a string."""
        h = dict(headers or {})
        if token == "api":
            token = self.api_token
        if token is not None:
            if header_style == "bearer":
                h["Authorization"] = "Bearer " + token
            else:
                h["mx-api-token"] = token
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                h.setdefault("Content-Type", content_type or "application/json")
            else:
                data = body.encode() if isinstance(body, str) else body
                if content_type:
                    h["Content-Type"] = content_type
        c = self.connection(kind, timeout)
        try:
            c.request(method, prefix + path, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def raw_exchange(port, data, timeout=5, host="127.0.0.1"):
    """Send raw bytes, read until the server closes or timeout; bytes."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def run(args, **kw):
    """Run the daemon binary with args; (exit status, stdout, stderr)."""
    p = subprocess.run([UPLINKD] + args, capture_output=True, text=True,
                       timeout=kw.pop("timeout", 30), **kw)
    return p.returncode, p.stdout, p.stderr


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def _sanitizer_report(d):
    """Print, as TAP comments, a sanitizer report found in a daemon's log,
    so that a crash in CI shows its cause and not only its symptoms."""
    lines = d.log().splitlines()
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKS):
            print("# sanitizer report in %s:" % d.logfile)
            for l in lines[i:i + 60]:
                print("#   " + l)
            sys.stdout.flush()
            return


def _cleanup():
    for d in _daemons:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        _sanitizer_report(d)
    if os.environ.get("UPLINKD_KEEP") != "1":
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")


class Broker:
    """A mosquitto on a free loopback port (mosquitto 2 binds -p to
    loopback); stop() and start() keep the port.  conf: lines of a
    mosquitto.conf after the listener ({dir} is the broker's directory);
    subclasses may build them in config().  With filelog the broker logs
    every event to self.brokerlog."""

    filelog = False

    def __init__(self, start=True, conf=None):
        self.port = free_port()
        self.dir = tmpdir("uplinkd-mq-")
        self.logfile = os.path.join(self.dir, "mosquitto.log")
        self.brokerlog = os.path.join(self.dir, "broker.log")
        self.conf = conf
        self.proc = None
        _brokers.append(self)
        if start:
            self.start()

    def config(self):
        """The lines after the listener, or None to run with -p alone."""
        return self.conf

    def start(self, timeout=10):
        lines = self.config()
        if lines is None and not self.filelog:
            args = [MOSQUITTO, "-p", str(self.port)]
        else:
            lines = list(lines or [])
            if self.filelog:
                # Run as root, mosquitto opens its log after dropping to
                # its own user; its stdout is block-buffered, so it logs to
                # a file it can write.
                os.chmod(self.dir, 0o755)
                open(self.brokerlog, "a").close()
                os.chmod(self.brokerlog, 0o666)
                lines += ["log_dest file %s" % self.brokerlog,
                          "log_type all"]
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\n" % self.port)
                for line in lines:
                    f.write(line.format(dir=self.dir) + "\n")
            args = [MOSQUITTO, "-c", conf]
        log = open(self.logfile, "a")
        self.proc = subprocess.Popen(args, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start: %s" % self.log())

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def pub(self, topic, payload, qos=1):
        subprocess.run(["mosquitto_pub", "-p", str(self.port), "-q", str(qos),
                        "-t", topic, "-m", payload], check=True, timeout=10)

    def sub(self, topic, count=1, timeout=10):
        """Start collecting count messages on topic; returns a Popen whose
        communicate() gives "topic payload" lines."""
        p = subprocess.Popen(["mosquitto_sub", "-p", str(self.port), "-v",
                              "-t", topic, "-C", str(count), "-W", str(timeout)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        _subs.append(p)
        return p


_brokers = []
_subs = []

# A broker that keeps sessions and queued messages across a clean stop,
# with no cap on a client's queue (Broker(conf=PERSISTENT + [...])).
PERSISTENT = ["allow_anonymous true", "user root", "persistence true",
              "persistence_location {dir}/", "autosave_interval 0",
              "max_queued_messages 0", "log_dest stderr"]


def have_mosquitto():
    return os.access(MOSQUITTO, os.X_OK) and shutil.which("mosquitto_pub") is not None


def wait_for(cond, timeout=10, step=0.05):
    """Poll cond() until it is true or timeout; its last value."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def _cleanup_brokers():
    for p in _subs:
        if p.poll() is None:
            p.kill()
    for b in _brokers:
        if b.proc is not None and b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()


atexit.register(_cleanup_brokers)

# SPDX-License-Identifier: ISC
# The MQTT link of a generic client (/mqtt) against real mosquittos:
# a broker that is down and comes up (status, jittered exponential
# backoff capped by retryInterval, the log), TLS with a CA made here by
# openssl (verification, a wrong CA, a host name the certificate does not
# name, insecureSkipVerify, SNI), mTLS with an uploaded client
# certificate, the will message after kill -9 of the daemon, and name
# resolution against a server that never answers while the REST API
# keeps answering at once.
import atexit
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()
if not have_mosquitto() or not shutil.which("openssl"):
    print("1..0 # SKIP mosquitto or openssl is missing")
    sys.exit(0)

T0 = time.monotonic()


t.time_limit(115)

# --- helpers ---------------------------------------------------------------

_procs = []


def _kill_procs():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_procs)


def sh(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        t.bail("%s failed: %s" % (" ".join(args), p.stderr))
    return p


class TLSBroker:
    """A mosquitto from a config file written here; each listener is
    (name, lines); ports[name] is its port.  stop()/start() keep them."""

    def __init__(self, listeners):
        self.dir = tmpdir("uplinkd-mqtls-")
        self.ports = {}
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.logfile = os.path.join(self.dir, "mosquitto.log")
        out = ["per_listener_settings false", "allow_anonymous true",
               "user root", "log_dest stderr", "log_type all",
               "persistence false"]
        for name, lines in listeners:
            self.ports[name] = free_port()
            out.append("listener %d 127.0.0.1" % self.ports[name])
            out.extend(lines)
        with open(self.conf, "w") as f:
            f.write("\n".join(out) + "\n")
        self.proc = None
        self.start()

    def start(self, timeout=10):
        log = open(self.logfile, "a")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", self.conf],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _procs.append(self.proc)
        deadline = time.time() + timeout
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    t.bail("mosquitto -c %s exited:\n%s"
                           % (self.conf, self.log()))
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        t.bail("mosquitto -c %s did not listen" % self.conf)
                    time.sleep(0.02)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()


class Sub:
    """A minimal MQTT 3.1.1 subscriber (QoS 1) on a plain port: the
    constructor returns once the broker sent SUBACK (ready says if it
    did); messages() gives "topic payload" strings."""

    def __init__(self, port, topic, timeout=10):
        self.buf = b""
        self.ready = False
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.settimeout(timeout)
        cid = ("t62-sub-" + uuid.uuid4().hex[:8]).encode()
        self._send(0x10, self._str(b"MQTT") + bytes([4, 0x02, 0, 60]) +
                   self._str(cid))
        if self._packet(timeout)[0] != 0x20:
            return
        self._send(0x82, b"\x00\x01" + self._str(topic.encode()) + b"\x01")
        kind, body, _ = self._packet(timeout)
        self.ready = kind == 0x90 and body[2:3] in (b"\x00", b"\x01")

    @staticmethod
    def _str(b):
        return len(b).to_bytes(2, "big") + b

    def _send(self, head, body):
        n, length = len(body), b""
        while True:
            n, digit = n >> 7, n & 0x7f
            length += bytes([digit | (0x80 if n else 0)])
            if not n:
                break
        self.sock.sendall(bytes([head]) + length + body)

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no MQTT packet in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _packet(self, timeout):
        """(first byte & 0xf0, body) of the next packet, or (None, b"")."""
        deadline = time.monotonic() + timeout
        try:
            head = self._read(1, deadline)[0]
            length, shift = 0, 0
            while True:
                digit = self._read(1, deadline)[0]
                length |= (digit & 0x7f) << shift
                shift += 7
                if not digit & 0x80:
                    break
            return head & 0xf0, self._read(length, deadline), head
        except (OSError, ConnectionError):
            return None, b"", 0

    def messages(self, count=1, timeout=15):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            kind, body, head = self._packet(left)
            if kind is None:
                break
            if kind != 0x30:
                continue
            n = int.from_bytes(body[:2], "big")
            topic, rest = body[2:2 + n].decode(errors="replace"), body[2 + n:]
            if head & 0x06:
                self._send(0x40, rest[:2])      # PUBACK
                rest = rest[2:]
            out.append("%s %s" % (topic, rest.decode(errors="replace")))
        self.sock.close()
        return out


def multipart(data, files, fields=None):
    """A multipart/form-data body: a "data" JSON part (if data is not
    None), plain fields, and file parts {name: (filename, bytes)}."""
    boundary = "uplinkd-t-" + uuid.uuid4().hex
    out = b""
    if data is not None:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"data\"\r\n"
                "Content-Type: application/json\r\n\r\n" % boundary).encode()
        out += json.dumps(data).encode() + b"\r\n"
    for k, v in (fields or {}).items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                % (boundary, k)).encode() + str(v).encode() + b"\r\n"
    for k, (fname, blob) in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                "filename=\"%s\"\r\nContent-Type: application/x-pem-file"
                "\r\n\r\n" % (boundary, k, fname)).encode() + blob + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return out, "multipart/form-data; boundary=" + boundary


def client_doc(server, port, **kw):
    doc = {"enable": True, "server": server, "port": port,
           "clientID": "t62-%s" % uuid.uuid4().hex[:12],
           "keepAliveSec": 10, "retryInterval": 10, "handshakeTimeout": 10}
    doc.update(kw)
    return doc


def create(d, doc=None, files=None, fields=None):
    """POST /mqtt; (id of the new client or None, response)."""
    if files or fields:
        body, ct = multipart(doc, files or {}, fields)
        r = d.post("/mqtt", body, content_type=ct)
    else:
        r = d.post("/mqtt", doc)
    try:
        ids = [c["id"] for c in r.json["data"]]
        return (max(ids) if r.status == 200 and ids else None), r
    except (TypeError, KeyError, ValueError):
        return None, r


def client(d, cid):
    """The client's view in GET /mqtt, or None."""
    r = d.get("/mqtt")
    if r.status != 200 or r.json is None:
        return None
    for c in r.json.get("data", []):
        if c.get("id") == cid:
            return c
    return None


def status(d, cid):
    c = client(d, cid)
    return c.get("status") if c else None


def wait_status(d, cid, want, timeout):
    wants = (want,) if isinstance(want, str) else want
    return wait_for(lambda: status(d, cid) in wants, timeout, 0.1)


def link_lines(d, cid, what):
    """Log lines of link mqtt-<cid> containing what."""
    tag = "link mqtt-%s: " % cid
    return [ln for ln in d.log().splitlines() if tag in ln and what in ln]


def reasons(d, cid):
    out = []
    for ln in link_lines(d, cid, "connect failed reason="):
        m = re.search(r'reason="(.*)" failures=', ln)
        if m:
            out.append(m.group(1))
    return out


def stamp(line):
    """The time of a log line (2024-01-02T03:04:05.678Z ...), seconds."""
    s = line.split(" ", 1)[0]
    dt = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.replace(tzinfo=timezone.utc).timestamp()


deleted = []


def delete(d, cid):
    """DELETE /mqtt/<cid>; what it answered is kept for a check."""
    r = d.delete("/mqtt/%s" % cid)
    deleted.append((cid, r.status))
    return r.status == 200


def api_latency(d, n, pause=0.02):
    """n timed GET /health and GET /mqtt; (max seconds, statuses)."""
    worst, codes = 0.0, []
    for _ in range(n):
        for path in ("/health", "/mqtt"):
            a = time.monotonic()
            try:
                codes.append(d.get(path, timeout=10).status)
            except OSError as e:
                codes.append(str(e))
            worst = max(worst, time.monotonic() - a)
        time.sleep(pause)
    return worst, codes


# --- certificates ------------------------------------------------------------

cd = tmpdir("uplinkd-certs-")
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_ca(name, cn):
    sh(["openssl", "req", "-x509"] + EC +
       ["-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
        "-subj", "/CN=" + cn,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], cd)


def make_cert(name, ca, cn, ext):
    sh(["openssl", "req", "-new"] + EC +
       ["-keyout", name + ".key", "-out", name + ".csr", "-subj",
        "/CN=" + cn], cd)
    with open(os.path.join(cd, name + ".ext"), "w") as f:
        f.write(ext)
    sh(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
        "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
        "-out", name + ".pem", "-extfile", name + ".ext"], cd)


make_ca("ca", "uplinkd test CA")
make_ca("otherca", "some other CA")
make_cert("srv", "ca", "uplinkd test server",
          "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
          "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
make_cert("dnsonly", "ca", "uplinkd test server (DNS only)",
          "subjectAltName=DNS:localhost\n"
          "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
make_cert("cli", "ca", "uplinkd test client",
          "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")


def pem(name):
    with open(os.path.join(cd, name), "rb") as f:
        return f.read()


v = sh(["openssl", "verify", "-CAfile", "ca.pem", "srv.pem", "cli.pem"], cd)
t.ok("srv.pem: OK" in v.stdout and "cli.pem: OK" in v.stdout,
     "openssl made a CA, a server and a client certificate that verify",
     v.stdout)


def tls_lines(cert, extra=()):
    return ["cafile " + os.path.join(cd, "ca.pem"),
            "certfile " + os.path.join(cd, cert + ".pem"),
            "keyfile " + os.path.join(cd, cert + ".key")] + list(extra)


tlsb = TLSBroker([("tls", tls_lines("srv")), ("plain", [])])
dnsb = TLSBroker([("tls", tls_lines("dnsonly"))])
mtlsb = TLSBroker([("tls", tls_lines("srv", ["require_certificate true"])),
                   ("plain", [])])

# --- broker down: the first attempts fail -----------------------------------

d = Daemon(args=["-v"])
down = Broker(start=False)
bo_id, r = create(d, client_doc("127.0.0.1", down.port))
t.ok(bo_id is not None, "POST /mqtt creates a client for a port where "
     "nothing listens", r)
st0 = [c["status"] for c in r.json["data"] if c["id"] == bo_id][0] \
    if bo_id is not None else None
t.diag("status in the POST answer: %s" % st0)
t.ok(st0 in ("connecting", "connectFailure"),
     "the POST answer shows it connecting (or already failed)", st0)
t_created = time.time()
t.ok(wait_status(d, bo_id, "connectFailure", 10),
     "status becomes connectFailure", status(d, bo_id))
t.ok(wait_for(lambda: link_lines(d, bo_id, "connect failed reason="), 5),
     "the log says connect failed reason=...", d.log()[-2000:])
rs = reasons(d, bo_id)
t.diag("reason: %s" % (rs[0] if rs else None))
t.ok(rs and "127.0.0.1:%d" % down.port in rs[0],
     "the reason names the broker's address and port", rs)

# The backoff client keeps failing while the TLS checks run.

# A TLS handshake with a server that accepts and never answers: the loop
# goes on, and handshakeTimeout ends the attempt.
silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
silent.bind(("127.0.0.1", 0))
silent.listen(16)
hs_id, r = create(d, client_doc("localhost", silent.getsockname()[1],
                                certificateOverTLS=True, keepAliveSec=60),
                  {"rootCaCertFile": ("ca.pem", pem("ca.pem"))})
t_hs = time.time()
worst, codes = api_latency(d, 25)
t.ok(all(c == 200 for c in codes) and worst < 0.5,
     "a TLS handshake that gets no answer does not hold up the API "
     "(max %.1f ms)" % (worst * 1000), codes)
t.ok(status(d, hs_id) == "connecting", "meanwhile the status is connecting",
     status(d, hs_id))

# --- TLS ---------------------------------------------------------------------

ca_file = {"rootCaCertFile": ("ca.pem", pem("ca.pem"))}
other_ca = {"rootCaCertFile": ("otherca.pem", pem("otherca.pem"))}

tls_id, r = create(d, client_doc("localhost", tlsb.ports["tls"],
                                 certificateOverTLS=True), ca_file)
t.ok(tls_id is not None, "TLS client created with rootCaCertFile "
     "uploaded as a multipart file part", r)
c = client(d, tls_id) or {}
t.eq((c.get("certificate") or {}).get("rootCaCertFile"), "ca.pem",
     "the client names the uploaded CA file")
t.ok(os.path.exists(os.path.join(d.datadir, "certs", "mqtt-%s" % tls_id,
                                 "rootCaCertFile.pem")) if tls_id else False,
     "the CA is kept in datadir/certs/mqtt-<id>")
t.ok(wait_status(d, tls_id, "connected", 15),
     "TLS to server \"localhost\" verified by the uploaded CA: connected",
     "status %s; reasons %s" % (status(d, tls_id), reasons(d, tls_id)))

# A message of a group goes over TLS to a plain subscriber on the broker.
g = {"enable": True, "outputTopic": "t62/tls", "samplingMode": "allValues",
     "tags": {"t62": {"tls": ["v"]}},
     "sendOutThreshold": {"mode": "immediately"}}
r = d.post("/mqtt/%s/messages" % tls_id, g)
t.ok(r.status == 200, "a message group is added to the TLS client", r)
sub = Sub(tlsb.ports["plain"], "t62/tls")
t.ok(sub.ready, "a plain subscriber is in place", sub.buf)
r = d.post("/tags/publish", {"prvdName": "t62", "srcName": "tls",
                             "tagName": "v", "dataType": "string",
                             "dataValue": "over-tls-4711"})
out = sub.messages()
t.ok(len(out) == 1 and out[0].startswith("t62/tls ") and
     "over-tls-4711" in out[0],
     "the group's message arrives at a plain subscriber", (out, r))
delete(d, tls_id)

# The same certificate names IP:127.0.0.1 too.
ip_id, r = create(d, client_doc("127.0.0.1", tlsb.ports["tls"],
                                certificateOverTLS=True), ca_file)
t.ok(wait_status(d, ip_id, "connected", 15),
     "TLS to server \"127.0.0.1\" (in the certificate's IP SANs): "
     "connected", "status %s; reasons %s" % (status(d, ip_id),
                                             reasons(d, ip_id)))
delete(d, ip_id)

# A CA that did not sign the server's certificate.
bad_id, r = create(d, client_doc("localhost", tlsb.ports["tls"],
                                 certificateOverTLS=True), other_ca)
t.ok(wait_status(d, bad_id, "connectFailure", 15),
     "a wrong CA: connectFailure", status(d, bad_id))
t.ok(wait_for(lambda: reasons(d, bad_id), 5), "a wrong CA: the failure is "
     "logged with a reason")
rs = reasons(d, bad_id)
t.diag("wrong CA reason: %s" % (rs[0] if rs else None))
t.ok(rs and re.search(r"certificate verify", rs[0], re.I),
     "a wrong CA: the reason mentions certificate verify", rs)
time.sleep(1.5)
t.ok(status(d, bad_id) == "connectFailure",
     "a wrong CA: still not connected after a retry", status(d, bad_id))
delete(d, bad_id)

ins_id, r = create(d, client_doc("localhost", tlsb.ports["tls"],
                                 certificateOverTLS=True,
                                 insecureSkipVerify=True), other_ca)
t.ok(wait_status(d, ins_id, "connected", 15),
     "a wrong CA with insecureSkipVerify: connected",
     "status %s; reasons %s" % (status(d, ins_id), reasons(d, ins_id)))
delete(d, ins_id)

# A server certificate that names DNS:localhost only.
mm_id, r = create(d, client_doc("127.0.0.1", dnsb.ports["tls"],
                                certificateOverTLS=True), ca_file)
t.ok(wait_status(d, mm_id, "connectFailure", 15),
     "server \"127.0.0.1\", certificate for DNS:localhost only: "
     "connectFailure", status(d, mm_id))
rs = reasons(d, mm_id) if wait_for(lambda: reasons(d, mm_id), 5) else []
t.diag("host name mismatch reason: %s" % (rs[0] if rs else None))
time.sleep(1.5)
t.ok(status(d, mm_id) == "connectFailure",
     "host name mismatch: still not connected after a retry",
     status(d, mm_id))
delete(d, mm_id)

ok_id, r = create(d, client_doc("localhost", dnsb.ports["tls"],
                                certificateOverTLS=True), ca_file)
t.ok(wait_status(d, ok_id, "connected", 15),
     "the same broker as server \"localhost\": connected",
     "status %s; reasons %s" % (status(d, ok_id), reasons(d, ok_id)))
delete(d, ok_id)

mmi_id, r = create(d, client_doc("127.0.0.1", dnsb.ports["tls"],
                                 certificateOverTLS=True,
                                 insecureSkipVerify=True), ca_file)
t.ok(wait_status(d, mmi_id, "connected", 15),
     "host name mismatch with insecureSkipVerify: connected",
     "status %s; reasons %s" % (status(d, mmi_id), reasons(d, mmi_id)))
delete(d, mmi_id)

# SNI: a TLS server here records the name the daemon's client asks for.
sni_names = []
sni_stop = threading.Event()
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(os.path.join(cd, "srv.pem"), os.path.join(cd, "srv.key"))
sctx.sni_callback = lambda so, name, c: sni_names.append(name) and None
sni_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sni_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sni_sock.bind(("127.0.0.1", 0))
sni_sock.listen(8)
sni_sock.settimeout(0.2)


def sni_server():
    while not sni_stop.is_set():
        try:
            conn, _ = sni_sock.accept()
        except OSError:
            continue
        conn.settimeout(3)
        try:
            s = sctx.wrap_socket(conn, server_side=True)
            s.close()
        except (OSError, ssl.SSLError):
            conn.close()


sni_thread = threading.Thread(target=sni_server, daemon=True)
sni_thread.start()
sni_id, r = create(d, client_doc("localhost", sni_sock.getsockname()[1],
                                 certificateOverTLS=True), ca_file)
t.ok(wait_for(lambda: sni_names, 10), "the TLS client sends SNI")
t.eq(sni_names[:1], ["localhost"], "SNI is the configured host name "
     "(not the resolved address)")
delete(d, sni_id)
sni_stop.set()
sni_thread.join(5)
sni_sock.close()

# --- mTLS --------------------------------------------------------------------

no_id, r = create(d, client_doc("localhost", mtlsb.ports["tls"],
                                certificateOverTLS=True), ca_file)
t.ok(wait_status(d, no_id, "connectFailure", 15),
     "mTLS broker, no client certificate: connectFailure", status(d, no_id))
rs = reasons(d, no_id) if wait_for(lambda: reasons(d, no_id), 5) else []
t.diag("no client certificate reason: %s" % (rs[0] if rs else None))
time.sleep(1.5)
t.ok(status(d, no_id) == "connectFailure",
     "no client certificate: still not connected after a retry",
     status(d, no_id))
delete(d, no_id)

# This one as plain form fields instead of a "data" JSON part.
m_files = dict(ca_file)
m_files["caCertFile"] = ("cli.pem", pem("cli.pem"))
m_files["caPkFile"] = ("cli.key", pem("cli.key"))
m_id, r = create(d, None, m_files, fields={
    "enable": "true", "server": "localhost", "port": mtlsb.ports["tls"],
    "clientID": "t62-mtls", "certificateOverTLS": "true",
    "retryInterval": "10", "keepAliveSec": "10"})
t.ok(m_id is not None, "mTLS client created from form fields with "
     "rootCaCertFile, caCertFile and caPkFile", r)
c = client(d, m_id) or {}
t.eq(c.get("certificate"), {"rootCaCertFile": "ca.pem",
                            "caCertFile": "cli.pem", "caPkFile": "cli.key"},
     "the client names its three certificate files")
kp = os.path.join(d.datadir, "certs", "mqtt-%s" % m_id, "caPkFile.pem")
t.ok(os.path.exists(kp) and (os.stat(kp).st_mode & 0o777) == 0o600,
     "the private key is stored with mode 0600")
t.ok(b"BEGIN" not in (d.get("/mqtt").body or b""),
     "GET /mqtt shows no certificate or key contents")
t.ok(wait_status(d, m_id, "connected", 15),
     "mTLS with the uploaded client certificate and key: connected",
     "status %s; reasons %s" % (status(d, m_id), reasons(d, m_id)))
sub = Sub(mtlsb.ports["plain"], "t62/mtls")
r = d.post("/mqtt/%s/messages" % m_id, {
    "enable": True, "outputTopic": "t62/mtls", "samplingMode": "allValues",
    "tags": {"t62": {"mtls": ["v"]}},
    "sendOutThreshold": {"mode": "immediately"}})
d.post("/tags/publish", {"prvdName": "t62", "srcName": "mtls",
                         "tagName": "v", "dataType": "int32",
                         "dataValue": 8128})
out = sub.messages()
t.ok(sub.ready and len(out) == 1 and out[0].startswith("t62/mtls ") and
     "8128" in out[0], "a message goes over mTLS to the broker", out)
delete(d, m_id)

# --- the handshake timeout --------------------------------------------------

t.ok(wait_status(d, hs_id, "connectFailure", max(1, t_hs + 16 - time.time())),
     "no answer to the TLS handshake: connectFailure", status(d, hs_id))
rs = reasons(d, hs_id)
t.diag("silent server reason: %s" % (rs[0] if rs else None))
t.ok(rs and "within 10 s" in rs[0], "the reason says no answer within "
     "handshakeTimeout (10 s)", rs)
cl = [ln for ln in d.log().splitlines()
      if "mqtt: client %s created" % hs_id in ln]
fl = link_lines(d, hs_id, "connect failed reason=")
if cl and fl:
    took = stamp(fl[0]) - stamp(cl[0])
    t.ok(9.8 <= took <= 11.5, "the attempt ended %.2f s after it began "
         "(handshakeTimeout 10)" % took)
else:
    t.ok(False, "the attempt's start and end are logged", (cl, fl))
delete(d, hs_id)
silent.close()

# --- back to the broker that was down ----------------------------------------


def failure_lines():
    return link_lines(d, bo_id, "connect failed reason=")


# Six failures show 1, 2, 4, 8 s and the cap (10 s) between attempts.
wait_for(lambda: len(failure_lines()) >= 6, max(1, t_created + 40 -
                                                time.time()), 0.1)
fl = failure_lines()
t.ok(len(fl) >= 6, "six attempts failed within 40 s (all logged with -v)",
     "%d lines" % len(fl))
times = [stamp(x) for x in fl[:6]]
gaps = [b - a for a, b in zip(times, times[1:])]
t.diag("gaps between attempts: %s" % ", ".join("%.2f" % x for x in gaps))
bad = []
for k, gap in enumerate(gaps):
    nominal = min(2 ** k, 10)
    if not (nominal * 0.8 - 0.1 <= gap <= nominal * 1.2 + 0.5):
        bad.append("gap %d: %.2f s, want %.1f s +-20%%" % (k + 1, gap,
                                                          nominal))
t.ok(len(gaps) == 5 and not bad, "the retries wait 1, 2, 4, 8, then 10 s "
     "(retryInterval), each +-20%", bad)
t.ok(gaps and all(b >= a * 0.6 for a, b in zip(gaps, gaps[1:])),
     "the waits do not shrink (allowing for jitter)", gaps)
t.ok(gaps and max(gaps) <= 10 * 1.2 + 0.5,
     "no wait is longer than retryInterval + 20%", gaps)
fnums = [int(re.search(r"failures=(\d+)", x).group(1)) for x in fl[:6]]
t.eq(fnums, [1, 2, 3, 4, 5, 6], "the failures are counted in the log")
t.eq(status(d, bo_id), "connectFailure", "still connectFailure")

down.start()
t_up = time.time()
t.ok(wait_status(d, bo_id, "connected", 20),
     "the broker comes up: connected within the backoff",
     "status %s" % status(d, bo_id))
t.diag("connected %.1f s after the broker started" % (time.time() - t_up))
t.ok(wait_for(lambda: link_lines(d, bo_id, "connected to 127.0.0.1:%d"
                                 % down.port), 5),
     "the log says connected to 127.0.0.1:<port>")

down.stop()
t.ok(wait_for(lambda: status(d, bo_id) != "connected", 10, 0.05),
     "the broker stops: status is no longer connected", status(d, bo_id))
t.ok(wait_for(lambda: link_lines(d, bo_id, "disconnected from"), 5),
     "the log says disconnected", d.log()[-1500:])
t.ok(wait_status(d, bo_id, "connectFailure", 10),
     "the next attempt fails: connectFailure", status(d, bo_id))
n_before = len(failure_lines())
down.start()
t.ok(wait_status(d, bo_id, "connected", 20),
     "the broker is back: connected again", status(d, bo_id))
t.ok(len(failure_lines()) >= n_before, "and the link stayed one link")
t.ok(d.alive(), "the daemon is alive")
t.diag("%.1f s so far" % (time.monotonic() - T0))

# --- will message after kill -9 ----------------------------------------------

wb = Broker()
dw = Daemon()
w_id, r = create(dw, client_doc("127.0.0.1", wb.port, willMessage={
    "enable": True, "topic": "t/will", "message": "dead", "qos": 1,
    "retain": False}))
t.ok(w_id is not None, "a client with a will message is created", r)
t.ok(wait_status(dw, w_id, "connected", 15), "and connects",
     status(dw, w_id))
wsub = Sub(wb.port, "t/will")
t.ok(wsub.ready, "a subscriber to t/will is in place", wsub.buf)
dw.kill9()
t_kill = time.monotonic()
out = wsub.messages(1, 20)
took = time.monotonic() - t_kill
t.eq(out, ["t/will dead"], "kill -9 of the daemon: the broker "
     "delivers the will \"dead\" on t/will")
t.ok(took <= 15 + 1, "within keepAliveSec * 1.5 (%.2f s)" % took)

# --- a name server that never answers ----------------------------------------

dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("127.0.0.1", 0))
dns.settimeout(0.2)
dns_port = dns.getsockname()[1]
dns_names = []
dns_stop = threading.Event()


def dead_dns():
    while not dns_stop.is_set():
        try:
            pkt, _ = dns.recvfrom(4096)
        except OSError:
            continue
        labels, i = [], 12
        while i < len(pkt) and pkt[i] != 0:
            n = pkt[i]
            labels.append(pkt[i + 1:i + 1 + n].decode(errors="replace"))
            i += n + 1
        dns_names.append(".".join(labels))


dns_thread = threading.Thread(target=dead_dns, daemon=True)
dns_thread.start()

dd = Daemon(conf={"dns_servers": "127.0.0.1:%d" % dns_port})
DEAD = "broker.invalid.example"
pb = Broker()
x_id, r = create(dd, client_doc(DEAD, pb.port))
t.ok(x_id is not None, "dead DNS: a client for %s is created" % DEAD, r)
st0 = [c["status"] for c in r.json["data"] if c["id"] == x_id][0] \
    if x_id is not None else None
t.eq(st0, "connecting", "dead DNS: the POST answer says connecting")


def timed(path):
    a = time.monotonic()
    try:
        resp = dd.get(path, timeout=10)
        code = resp.status
    except OSError as e:
        code = str(e)
    return time.monotonic() - a, code


def hammer(n, pause):
    lat, codes, seen = [], [], set()
    for _ in range(n):
        for path in ("/health", "/mqtt"):
            dt, code = timed(path)
            lat.append(dt)
            codes.append(code)
        s = status(dd, x_id)
        seen.add(s)
        time.sleep(pause)
    return lat, codes, seen


lat, codes, seen = hammer(50, 0.08)
t.diag("dead DNS: %d requests, max %.1f ms, mean %.1f ms, statuses %s"
       % (len(lat), max(lat) * 1000, sum(lat) / len(lat) * 1000,
          sorted(x for x in seen if x)))
t.ok(all(c == 200 for c in codes), "dead DNS: every GET /health and GET "
     "/mqtt answers 200", [c for c in codes if c != 200][:5])
t.ok(max(lat) < 0.5, "dead DNS: the slowest answer took %.1f ms (< 500)"
     % (max(lat) * 1000))
t.ok(seen <= {"connecting", "connectFailure"},
     "dead DNS: status is connecting or connectFailure", seen)
t.ok(wait_for(lambda: link_lines(dd, x_id, "cannot resolve " + DEAD), 20),
     "dead DNS: the log says cannot resolve %s" % DEAD, dd.log()[-1500:])
rs = reasons(dd, x_id)
t.diag("dead DNS reason: %s" % (rs[0] if rs else None))
t.eq(status(dd, x_id), "connectFailure", "dead DNS: then connectFailure")
t.ok(DEAD in dns_names, "dead DNS: the query went to the configured "
     "dns_servers", dns_names[:5])
lat, codes, seen = hammer(10, 0.02)
t.ok(all(c == 200 for c in codes) and max(lat) < 0.5,
     "dead DNS: the API still answers at once while the link retries "
     "(max %.1f ms)" % (max(lat) * 1000), codes)

# A client deleted while its name is being looked up.
y_id, r = create(dd, client_doc(DEAD, pb.port))
t.eq(status(dd, y_id), "connecting", "dead DNS: a second client is resolving")
t.ok(delete(dd, y_id), "dead DNS: it can be deleted while resolving")
t.ok(client(dd, y_id) is None and dd.alive(),
     "dead DNS: it is gone and the daemon is alive")

# "localhost" with only the dead server: /etc/hosts is read whatever
# dns_servers says (uplinkd.conf(5)), so the name never reaches the dead
# server and the client connects.
n0 = len(dns_names)
l_id, r = create(dd, client_doc("localhost", pb.port))
t.ok(l_id is not None, "dead DNS: a client for localhost is created", r)
lat = []
for _ in range(20):
    lat.append(timed("/health")[0])
    time.sleep(0.05)
t.ok(wait_for(lambda: status(dd, l_id) in ("connected", "connectFailure"),
              20, 0.1), "dead DNS, localhost: the attempt ends",
     status(dd, l_id))
sl = status(dd, l_id)
rs = reasons(dd, l_id)
t.diag("dead DNS, localhost: status %s, reason %s, queries %s"
       % (sl, rs[0] if rs else None, dns_names[n0:n0 + 4]))
t.eq(sl, "connected", "dead DNS, localhost: resolved from /etc/hosts "
     "even when dns_servers is set: connected")
t.ok(not rs or "cannot resolve" not in rs[0],
     "dead DNS, localhost: no resolution failure is logged", rs)
t.ok(max(lat) < 0.5, "dead DNS, localhost: the API answered at once "
     "meanwhile (max %.1f ms)" % (max(lat) * 1000))
t.ok("localhost" not in dns_names[n0:], "dead DNS, localhost: the name "
     "was not asked of the dead server", dns_names[n0:n0 + 4])

# The failing client changed to a numeric address: it reconnects at once.
r = dd.put("/mqtt/%s" % x_id, {"server": "127.0.0.1"})
t.ok(r.status == 200 and (r.json or {}).get("data", {}).get("server") ==
     "127.0.0.1", "dead DNS: PUT /mqtt/{id} {server:127.0.0.1} answers the "
     "changed client", r)
t.ok(wait_status(dd, x_id, "connected", 10),
     "dead DNS: and the changed client connects", status(dd, x_id))
t.ok(dd.alive(), "dead DNS: the daemon is alive")
bad = [x for x in deleted if x[1] != 200]
t.ok(deleted and not bad, "DELETE /mqtt/{id} answered 200 for all %d "
     "clients deleted" % len(deleted), bad)
dns_stop.set()
dns_thread.join(5)
dns.close()

t.diag("%.1f s in all" % (time.monotonic() - T0))
signal.alarm(0)
t.done()

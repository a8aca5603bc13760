#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# The HTTPS listener with the self-signed certificate of the first start
# and with a configured one; TLS versions; certificate/key mismatches
# refused by -n and at start; the unix socket listener.

import hashlib
import os
import socket
import ssl
import stat
import subprocess
import sys
import traceback
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()



def is_nested_error(r, status):
    j = r.json
    return (r.status == status and isinstance(j, dict) and list(j) == ["error"]
            and isinstance(j["error"], dict)
            and sorted(j["error"]) == ["code", "message"]
            and j["error"]["code"] == status
            and isinstance(j["error"]["message"], str))


def fingerprint_pem(pem):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def served_pem(port):
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=5)


def openssl(args, inp=None):
    p = subprocess.run(["openssl"] + args, input=inp, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def tls_handshake(port, minv=None, maxv=None, ciphers=None, cafile=None,
                  hostname="localhost"):
    """(negotiated version, None) or (None, the error)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        with ctx.wrap_socket(raw, server_hostname=hostname) as s:
            return s.version(), None
    except (ssl.SSLError, OSError) as e:
        return None, e
    finally:
        raw.close()


# --- The self-signed certificate ------------------------------------------

d = Daemon()
tls = os.path.join(d.datadir, "tls")
crt = os.path.join(tls, "uplinkd.crt")
key = os.path.join(tls, "uplinkd.key")
t.ok(os.path.isfile(crt) and os.path.isfile(key), "first start made tls/uplinkd.crt and tls/uplinkd.key")
mode = stat.S_IMODE(os.stat(key).st_mode) if os.path.exists(key) else None
t.eq(mode, 0o600, "the key file is mode 0600")

pem = served_pem(d.https_port)
with open(crt) as f:
    file_pem = f.read()
t.eq(fingerprint_pem(pem), fingerprint_pem(file_pem), "the HTTPS listener serves tls/uplinkd.crt")
rc, text, err = openssl(["x509", "-noout", "-text"], pem)
t.eq(rc, 0, "openssl x509 reads the served certificate")
t.ok("DNS:localhost" in text, "subjectAltName has DNS:localhost", text)
t.ok("IP Address:127.0.0.1" in text, "subjectAltName has IP Address:127.0.0.1", text)
t.ok("prime256v1" in text or "P-256" in text, "the key is EC P-256", text)
rc, _, _ = openssl(["x509", "-noout", "-checkend", str(9 * 365 * 86400)], pem)
t.eq(rc, 0, "the certificate is valid for years (not expiring within 9 years)")

ver, e = tls_handshake(d.https_port, cafile=crt, hostname="localhost")
t.ok(ver is not None, "a client trusting the certificate verifies it for localhost", e)

r = d.get("/health", kind="https", token=None)
t.ok(r.status == 200 and r.json["data"]["status"] == "ok", "GET /health over HTTPS", r)
r = d.get("/users", kind="https")
t.ok(r.status == 200 and r.json.get("count") == 1, "authenticated GET /users over HTTPS", r)
r = d.get("/users", kind="https", token=None)
t.ok(is_nested_error(r, 401) and r.header("WWW-Authenticate") is not None,
     "GET /users over HTTPS without a token: 401", r)
r = d.request("POST", "/auth", {"name": "admin", "password": d.admin_password},
              token=None, kind="https")
jwt = r.json["data"]["token"] if r.status == 200 else "x"
t.eq(r.status, 200, "login over HTTPS")
r = d.get("/auth", kind="https", token=jwt, header_style="mx")
t.eq((r.status, r.json), (200, {"data": "ok"}), "the JWT works over HTTPS as mx-api-token")

# An answer on a connection that closes after it arrives whole.
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = b""
try:
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.https_port), timeout=5),
                         server_hostname="localhost") as s:
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
except (OSError, ssl.SSLError):
    pass
t.ok(out.startswith(b"HTTP/1.1 200"), "HTTPS with Connection: close: answered 200 before the close",
     out[:200])

# --- TLS versions ---------------------------------------------------------

for v in ("TLSv1_2", "TLSv1_3"):
    tv = getattr(ssl.TLSVersion, v)
    ver, e = tls_handshake(d.https_port, minv=tv, maxv=tv)
    t.eq(ver, v.replace("_", "."), "%s is accepted" % v.replace("_", "."))

skip = None
warnings.simplefilter("ignore", DeprecationWarning)
try:
    tv = ssl.TLSVersion.TLSv1_1
    ver, e = tls_handshake(d.https_port, minv=tv, maxv=tv, ciphers="DEFAULT:@SECLEVEL=0")
except (ValueError, ssl.SSLError) as ex:
    skip, ver, e = "this Python cannot offer TLS 1.1 (%s)" % ex, None, None
if skip is None and e is not None:
    why = str(e).upper()
    if "NO_PROTOCOLS_AVAILABLE" in why or "NO PROTOCOLS AVAILABLE" in why or \
            "NO_CIPHERS_AVAILABLE" in why:
        skip = "the local OpenSSL cannot offer TLS 1.1 (%s)" % e
if skip is not None:
    t.ok(True, "TLS 1.1 is refused # skip %s" % skip)
else:
    t.ok(ver is None, "TLS 1.1 is refused by the server", "negotiated %r, error %r" % (ver, e))
    t.diag("TLS 1.1 attempt: %s" % e)

out = raw_exchange(d.https_port, b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
                   timeout=5)
t.ok(b" 200 " not in out.split(b"\r\n")[0], "plain HTTP on the HTTPS port is not served", out[:200])
r = d.get("/health", kind="https", token=None)
t.eq(r.status, 200, "the HTTPS listener still works after a plain-HTTP client")

# --- The unix socket ------------------------------------------------------

mode = stat.S_IMODE(os.stat(d.sock).st_mode) if os.path.exists(d.sock) else None
t.eq(mode, 0o660, "the unix socket has mode 0660 (unix_socket_mode default)")
r = d.get("/health", kind="unix", token=None)
t.ok(r.status == 200 and r.json["data"]["status"] == "ok", "GET /health on the unix socket", r)
for path in ("/users", "/auth", "/metrics", "/users/1", "/nope"):
    r = d.get(path, kind="unix", token=None)
    t.ok(is_nested_error(r, 401) and r.header("WWW-Authenticate") is not None,
         "GET %s on the unix socket without a token: 401" % path, r)
r = d.get("/users", kind="unix")
t.ok(r.status == 200 and r.json.get("count") == 1, "GET /users on the unix socket with the API token", r)
r = d.get("/auth", kind="unix", token=jwt)
t.eq((r.status, r.json), (200, {"data": "ok"}), "GET /auth on the unix socket with a JWT")
r = d.get("/users", kind="unix", token="a.b.c")
t.eq(r.status, 401, "a bad token on the unix socket: 401")

# --- A configured certificate ---------------------------------------------

work = tmpdir()
c1, k1, k2 = (os.path.join(work, n) for n in ("c1.pem", "k1.pem", "k2.pem"))
rc, _, err = openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", k1, "-out", c1, "-days", "2",
                      "-subj", "/CN=uplinkd-test.example",
                      "-addext", "subjectAltName=DNS:uplinkd-test.example"])
t.eq(rc, 0, "openssl req made a test certificate")
rc, _, err = openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", k2])
t.eq(rc, 0, "openssl genpkey made a second key")

d2 = Daemon(conf={"tls_cert": c1, "tls_key": k1})
with open(c1) as f:
    c1_pem = f.read()
pem = served_pem(d2.https_port)
t.eq(fingerprint_pem(pem), fingerprint_pem(c1_pem), "the configured certificate is served")
t.ok(not os.path.exists(os.path.join(d2.datadir, "tls", "uplinkd.crt")),
     "no self-signed certificate is made when one is configured")
ver, e = tls_handshake(d2.https_port, cafile=c1, hostname="uplinkd-test.example")
t.ok(ver is not None, "a client trusting the configured certificate verifies it", e)
r = d2.get("/users", kind="https")
t.eq(r.status, 200, "authenticated GET over HTTPS with the configured certificate")
rc, out, err = run(["-n", "-f", d2.conffile])
t.ok(rc == 0 and "configuration OK" in out, "-n accepts the matching pair", out + err)

bad = Daemon(conf={"tls_cert": c1, "tls_key": k2}, start=False)
rc, out, err = run(["-n", "-f", bad.conffile])
t.ok(rc == 1 and "tls_key" in err, "-n with a key that does not match: exit 1 naming tls_key",
     "rc=%r out=%r err=%r" % (rc, out, err))
t.ok("configuration OK" not in out, "-n with a mismatched pair does not say OK", out)
try:
    rc, out, err = run(["-d", "-f", bad.conffile], timeout=10)
    t.ok(rc == 1 and "tls_key" in err, "starting with a mismatched pair: exit 1 naming tls_key",
         "rc=%r err=%r" % (rc, err[-500:]))
except subprocess.TimeoutExpired:
    t.ok(False, "starting with a mismatched pair: exit 1 naming tls_key", "it kept running")

half = Daemon(conf={"tls_cert": c1}, start=False)
rc, out, err = run(["-n", "-f", half.conffile])
t.ok(rc == 1 and "tls_key" in err, "-n with tls_cert but no tls_key: exit 1 naming tls_key",
     "rc=%r err=%r" % (rc, err))
missing = Daemon(conf={"tls_cert": c1, "tls_key": os.path.join(work, "nope.pem")}, start=False)
rc, out, err = run(["-n", "-f", missing.conffile])
t.ok(rc == 1 and "tls_key" in err, "-n with a missing key file: exit 1 naming tls_key",
     "rc=%r err=%r" % (rc, err))
swapped = Daemon(conf={"tls_cert": k1, "tls_key": c1}, start=False)
rc, out, err = run(["-n", "-f", swapped.conffile])
t.ok(rc == 1 and "tls_cert" in err, "-n with the key as tls_cert: exit 1 naming tls_cert",
     "rc=%r err=%r" % (rc, err))

for x in (d, d2):
    t.ok(x.alive(), "daemon on port %d still running" % x.http_port)
t.done()

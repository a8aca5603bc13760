#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# The /mqtt REST API (research notes §2, §3.1, §4.1, §4.3-4.5): generic
# MQTT clients with every default, range, enum and type rule of
# MQTTConfiguration; the envelopes ({"data":...}, bare arrays for the
# message-group list, create and delete, flat {"error":"..."} for cloud
# errors, the nested shape for 401); the password kept secret and kept
# when the masked value comes back (proved against a mosquitto that wants
# it); a configuration that survives a restart; multipart uploads of
# certificates made by openssl here; message groups in the 2.2.0 and the
# 2.4.0 form; and PUT /mqtt/{id}/messages/test over published tags and
# tags that have no value yet.
#
# The whole file runs under a 55 s alarm: a hang is a failed test point.

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()


t.time_limit(55)

if not have_mosquitto():
    print("1..0 # SKIP mosquitto is not installed")
    sys.exit(0)
if not shutil.which("openssl") or not shutil.which("mosquitto_passwd"):
    print("1..0 # SKIP openssl or mosquitto_passwd is not installed")
    sys.exit(0)

MASK = "********"


# --- helpers ---------------------------------------------------------------

def data(r):
    """The "data" member of a {"data":...} answer with exactly that key,
    or None."""
    j = r.json
    if isinstance(j, dict) and list(j) == ["data"]:
        return j["data"]
    return None


def cloud_err(r, status, field):
    """A flat cloud error: status, {"error":"<field>: ..."} and nothing
    else.  field names the path the message must start with."""
    j = r.json
    return (r.status == status and isinstance(j, dict) and list(j) == ["error"]
            and isinstance(j["error"], str)
            and (field is None or j["error"].startswith(field + ":")))


def by_id(lst, i):
    for c in lst or []:
        if isinstance(c, dict) and c.get("id") == i:
            return c
    return None


def clients():
    return data(d.get("/mqtt")) or []


def client(i):
    return by_id(clients(), i)


def status_of(i):
    c = client(i)
    return c.get("status") if c else None


def wait_status(i, want, timeout=8):
    return wait_for(lambda: status_of(i) == want, timeout=timeout)


def multipart(fields, files, boundary=None):
    """A multipart/form-data body: fields [(name, text)], files
    [(name, filename, bytes)]; (body, content type)."""
    b = boundary or "uplinkd-test-" + os.urandom(8).hex()
    out = []
    for name, value in fields:
        out.append(b"--" + b.encode())
        out.append(b'Content-Disposition: form-data; name="' + name.encode() + b'"')
        out.append(b"")
        out.append(value.encode() if isinstance(value, str) else value)
    for name, filename, content in files:
        out.append(b"--" + b.encode())
        out.append(b'Content-Disposition: form-data; name="' + name.encode()
                   + b'"; filename="' + filename.encode() + b'"')
        out.append(b"Content-Type: application/octet-stream")
        out.append(b"")
        out.append(content)
    out.append(b"--" + b.encode() + b"--")
    out.append(b"")
    return b"\r\n".join(out), "multipart/form-data; boundary=" + b


def post_form(path, fields, files, method="POST"):
    body, ct = multipart(fields, files)
    return d.request(method, path, body, content_type=ct)


def broker_connects(b, needle):
    """Lines of the broker's log that record a client connecting and
    contain needle."""
    try:
        with open(b.brokerlog, errors="replace") as f:
            return [ln for ln in f if "New client connected" in ln and needle in ln]
    except OSError:
        return []


def broker_refusals(b):
    """Lines of the broker's log that record a refused login."""
    try:
        with open(b.brokerlog, errors="replace") as f:
            return [ln for ln in f if "not authorised" in ln]
    except OSError:
        return []


class AuthBroker(Broker):
    """A mosquitto that refuses anonymous clients: user uplink, password
    s3cret, made with mosquitto_passwd in this test."""

    USER = "uplink"
    PASSWORD = "s3cret-Pw"

    filelog = True

    def config(self):
        pw = os.path.join(self.dir, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, self.USER, self.PASSWORD],
                       check=True, timeout=10, capture_output=True)
        os.chmod(pw, 0o644)
        return ["allow_anonymous false", "password_file %s" % pw]



# Certificates made here: a self-signed certificate (serves as the CA)
# and its key.
CERTDIR = tmpdir("uplinkd-t60-")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=uplinkd-t60", "-keyout", os.path.join(CERTDIR, "key.pem"),
                "-out", os.path.join(CERTDIR, "cert.pem")],
               check=True, capture_output=True, timeout=20)
with open(os.path.join(CERTDIR, "cert.pem"), "rb") as f:
    CERT = f.read()
with open(os.path.join(CERTDIR, "key.pem"), "rb") as f:
    KEY = f.read()

d = Daemon()
DEAD_PORT = free_port()   # nothing listens here
BASE = {"server": "127.0.0.1", "port": DEAD_PORT}

# --- GET /mqtt, POST /mqtt with every default -----------------------------

r = d.get("/mqtt")
t.eq((r.status, r.json), (200, {"data": []}), "GET /mqtt with no clients: {\"data\":[]}")

r = d.post("/mqtt", dict(BASE))
lst = data(r)
t.ok(r.status == 200 and isinstance(lst, list) and len(lst) == 1,
     "POST /mqtt {server,port}: 200 {\"data\":[the one client]}", r)
c1 = lst[0] if isinstance(lst, list) and lst else {}
ID1 = c1.get("id")
t.ok(isinstance(ID1, int) and not isinstance(ID1, bool) and ID1 > 0,
     "the new client has a positive integer id", c1)
DEFAULTS = {
    "server": "127.0.0.1", "port": DEAD_PORT, "enable": False,
    "protocolVersion": "3.1.1", "keepAliveSec": 60, "handshakeTimeout": 10,
    "retryInterval": 60, "clearSession": True, "certificateOverTLS": False,
    "tlsVersion": "1.2", "insecureSkipVerify": False, "qos": 1, "retain": False,
}
for k, v in DEFAULTS.items():
    t.ok(k in c1 and c1[k] == v and type(c1[k]) is type(v),
         "default %s = %s" % (k, json.dumps(v)), "got: %r" % (c1.get(k, "<absent>"),))
t.ok(isinstance(c1.get("willMessage"), dict) and c1["willMessage"].get("enable") is False,
     "default willMessage.enable = false", c1.get("willMessage"))
t.ok(isinstance(c1.get("remoteAPI"), dict) and c1["remoteAPI"].get("enable") is False
     and c1["remoteAPI"].get("qos") == 1 and c1["remoteAPI"].get("retain") is False,
     "default remoteAPI {enable false, qos 1, retain false}", c1.get("remoteAPI"))
t.eq(c1.get("certificate"), {"rootCaCertFile": "", "caCertFile": "", "caPkFile": ""},
     "default certificate names are empty")
t.eq(c1.get("status"), "disconnect", "a disabled client's status is \"disconnect\"")
t.ok(not any(k.startswith("_") for k in c1), "no internal fields in the answer", c1)

r = d.get("/mqtt")
t.eq((r.status, r.json), (200, {"data": [c1]}), "GET /mqtt lists the client as POST answered it")

r = d.post("/mqtt", dict(BASE, protocolVersion=3.1))
lst = data(r)
c31 = lst[-1] if isinstance(lst, list) and lst else {}
t.ok(r.status == 200 and isinstance(lst, list) and len(lst) == 2
     and c31.get("protocolVersion") == "3.1",
     "protocolVersion as the number 3.1: accepted, answered as \"3.1\"", r)
ID31 = c31.get("id")
t.ok(isinstance(ID31, int) and ID31 != ID1, "the second client has its own id", lst)

# --- validation ------------------------------------------------------------

BAD = [
    ("port 0", {"port": 0}, "port"),
    ("port 65536", {"port": 65536}, "port"),
    ("keepAliveSec 9", {"keepAliveSec": 9}, "keepAliveSec"),
    ("keepAliveSec 65537", {"keepAliveSec": 65537}, "keepAliveSec"),
    ("handshakeTimeout 9", {"handshakeTimeout": 9}, "handshakeTimeout"),
    ("handshakeTimeout 601", {"handshakeTimeout": 601}, "handshakeTimeout"),
    ("retryInterval 9", {"retryInterval": 9}, "retryInterval"),
    ("retryInterval 3601", {"retryInterval": 3601}, "retryInterval"),
    ("qos 3", {"qos": 3}, "qos"),
    ("qos -1", {"qos": -1}, "qos"),
    ("tlsVersion \"2.0\"", {"tlsVersion": "2.0"}, "tlsVersion"),
    ("protocolVersion \"5\"", {"protocolVersion": "5"}, "protocolVersion"),
    ("protocolVersion 5 (a number)", {"protocolVersion": 5}, "protocolVersion"),
    ("port as a string", {"port": "1883"}, "port"),
    ("port 1883.5", {"port": 1883.5}, "port"),
    ("enable as a string", {"enable": "yes"}, "enable"),
    ("server empty", {"server": ""}, "server"),
    ("clientID of 24 characters with MQTT 3.1",
     {"protocolVersion": "3.1", "clientID": "c" * 24}, "clientID"),
    ("willMessage.enable true without a topic", {"willMessage": {"enable": True}},
     "willMessage.topic"),
    ("willMessage.qos 3", {"willMessage": {"enable": False, "qos": 3}}, "willMessage.qos"),
    ("willMessage not an object", {"willMessage": True}, "willMessage"),
    ("remoteAPI.enable true without topics", {"remoteAPI": {"enable": True}}, "remoteAPI"),
    ("remoteAPI.enable true with only requestSubTopic",
     {"remoteAPI": {"enable": True, "requestSubTopic": "req"}}, "remoteAPI"),
    ("password without userName", {"password": "pw"}, "password"),
    ("userName of 256 characters", {"userName": "u" * 256}, "userName"),
    ("certificate.rootCaCertFile named but never uploaded",
     {"certificate": {"rootCaCertFile": "ca.pem"}}, "certificate.rootCaCertFile"),
    ("certificate.caPkFile named but never uploaded",
     {"certificate": {"caPkFile": "k.pem"}}, "certificate.caPkFile"),
]
for what, extra, field in BAD:
    r = d.post("/mqtt", dict(BASE, **extra))
    t.ok(cloud_err(r, 400, field), "POST %s: 400 {\"error\":\"%s: ...\"}" % (what, field), r)

r = d.post("/mqtt", {"port": 1883})
t.ok(cloud_err(r, 400, "server"), "POST without server: 400 naming server", r)
r = d.post("/mqtt", {"server": "127.0.0.1"})
t.ok(cloud_err(r, 400, "port"), "POST without port: 400 naming port", r)
r = d.post("/mqtt", [BASE])
t.ok(cloud_err(r, 400, None), "POST an array, not an object: 400", r)
t.eq(len(clients()), 2, "no refused POST created a client")

# The boundaries themselves are accepted (on PUT, which answers the client).
GOOD = [
    {"port": 1}, {"port": 65535}, {"keepAliveSec": 10}, {"keepAliveSec": 65536},
    {"handshakeTimeout": 10}, {"handshakeTimeout": 600},
    {"retryInterval": 10}, {"retryInterval": 3600},
    {"qos": 0}, {"qos": 2}, {"tlsVersion": "1.0"}, {"tlsVersion": "1.3"},
    {"protocolVersion": "3.1", "clientID": "c" * 23},
    {"protocolVersion": "3.1.1", "clientID": "c" * 24},
    {"willMessage": {"enable": True, "topic": "w/t", "message": "gone"}},
    {"remoteAPI": {"enable": True, "requestSubTopic": "rq", "responsePubTopic": "rs"}},
]
for extra in GOOD:
    r = d.put("/mqtt/%s" % ID31, extra)
    got = data(r)
    ok = r.status == 200 and isinstance(got, dict) and got.get("id") == ID31
    for k, v in extra.items():
        if isinstance(v, dict):
            ok = ok and all((got or {}).get(k, {}).get(kk) == vv for kk, vv in v.items())
        else:
            ok = ok and (got or {}).get(k) == v
    t.ok(ok, "PUT %s: accepted and answered" % json.dumps(extra), r)

# A refused PUT changes nothing.
before = client(ID31)
r = d.put("/mqtt/%s" % ID31, {"keepAliveSec": 5, "server": "elsewhere"})
t.ok(cloud_err(r, 400, "keepAliveSec"), "PUT keepAliveSec 5: 400 naming keepAliveSec", r)
t.eq(client(ID31), before, "a refused PUT leaves the stored client as it was")

# Read-only and unknown members.
r = d.post("/mqtt", dict(BASE, id=777, status="connected", bogus={"x": 1}))
lst = data(r)
new = [c for c in (lst or []) if c.get("id") not in (ID1, ID31)]
t.ok(r.status == 200 and len(new) == 1 and new[0].get("id") != 777
     and new[0].get("status") == "disconnect" and "bogus" not in new[0],
     "POST with id, status and an unknown member: accepted, all three ignored", r)
ID3 = new[0].get("id") if new else None
r = d.put("/mqtt/%s" % ID3, {"id": 999, "status": "connected", "whatever": 1,
                             "keepAliveSec": 61})
got = data(r)
t.ok(r.status == 200 and isinstance(got, dict) and got.get("id") == ID3
     and got.get("status") == "disconnect" and "whatever" not in got
     and got.get("keepAliveSec") == 61,
     "PUT with id, status and an unknown member: id and status kept, unknown ignored", r)
t.ok(client(999) is None and client(ID3) is not None, "no client 999 appeared")

# Transport-level refusals.
r = d.post("/mqtt", '{"server": "127.0.0.1", "port": ', content_type="application/json")
t.ok(cloud_err(r, 400, "body"), "malformed JSON: 400", r)
r = d.post("/mqtt", "server=127.0.0.1", content_type="text/plain")
t.ok(r.status == 415 and isinstance(r.json, dict) and "error" in r.json,
     "a text/plain body: 415", r)
r = d.put("/mqtt/%s" % ID1, "x", content_type="text/plain")
t.eq(r.status, 415, "PUT with text/plain: 415")
# 401 comes from the authentication layer, before any cloud resource is
# reached: the platform's nested shape (notes §2.2, DESIGN §1).
not_nested = []
for method, path in (("GET", "/mqtt"), ("POST", "/mqtt"), ("PUT", "/mqtt/%s" % ID1),
                     ("DELETE", "/mqtt/%s" % ID1), ("GET", "/mqtt/%s/messages" % ID1),
                     ("PUT", "/mqtt/%s/messages/test" % ID1),
                     ("DELETE", "/mqtt/%s/certificates" % ID1)):
    r = d.request(method, path, BASE if method in ("POST", "PUT") else None, token=None)
    www = r.header("WWW-Authenticate") or ""
    t.ok(r.status == 401 and www.lower().startswith("bearer"),
         "%s %s without a token: 401 with WWW-Authenticate" % (method, path), r)
    j = r.json
    if not (isinstance(j, dict) and list(j) == ["error"] and isinstance(j["error"], dict)
            and j["error"].get("code") == 401 and isinstance(j["error"].get("message"), str)):
        not_nested.append("%s %s -> %r" % (method, path, r))
t.ok(not not_nested,
     "every 401 above is {\"error\":{\"code\":401,\"message\":...}}", "\n".join(not_nested))
t.ok(client(ID1) is not None, "the client DELETE tried without a token is still there")
r = d.get("/mqtt/%s" % ID1)
allow = (r.header("Allow") or "").replace(" ", "").split(",")
t.ok(r.status == 405 and "PUT" in allow and "DELETE" in allow,
     "GET /mqtt/{id} (not in the API): 405 with Allow: PUT, DELETE", "%r %r" % (r, allow))
for method, path in (("PUT", "/mqtt/4242"), ("DELETE", "/mqtt/4242"),
                     ("GET", "/mqtt/4242/messages"), ("POST", "/mqtt/4242/messages"),
                     ("DELETE", "/mqtt/4242/certificates"),
                     ("GET", "/mqtt/4242/messages/1"), ("PUT", "/mqtt/4242/messages/test")):
    body = None
    if method == "PUT" and path.endswith("test"):
        body = {"tags": []}
    elif method in ("POST", "PUT"):
        body = {"enable": True, "tags": {}} if "messages" in path else {"keepAliveSec": 60}
    r = d.request(method, path, body)
    t.ok(cloud_err(r, 404, None), "%s %s (no such client): 404" % (method, path), r)
for method, path in (("PUT", "/mqtt/abc"), ("DELETE", "/mqtt/abc"),
                     ("GET", "/mqtt/abc/messages"), ("PUT", "/mqtt/0")):
    r = d.request(method, path, {"keepAliveSec": 60} if method == "PUT" else None)
    t.ok(cloud_err(r, 400, "id"), "%s %s: 400 naming id" % (method, path), r)

# --- PUT merges, DELETE answers the rest -----------------------------------

r = d.put("/mqtt/%s" % ID1, {"keepAliveSec": 120, "clientID": "dev-1"})
got = data(r)
want = dict(c1, keepAliveSec=120, clientID="dev-1")
t.eq((r.status, got), (200, want),
     "PUT /mqtt/{id} partial: {\"data\":client} with the two fields changed, the rest kept")
r = d.put("/mqtt/%s" % ID1, {"willMessage": {"enable": True, "topic": "dead/1"}})
got = data(r) or {}
t.ok(r.status == 200 and got.get("willMessage", {}).get("topic") == "dead/1"
     and got.get("keepAliveSec") == 120,
     "a second partial PUT keeps the first one's change", r)
r = d.put("/mqtt/%s" % ID1, {"willMessage": {"enable": False}})
t.eq(r.status, 200, "will message switched off again")

r = d.delete("/mqtt/%s" % ID3)
lst = data(r)
t.ok(r.status == 200 and isinstance(lst, list)
     and sorted(c.get("id") for c in lst) == sorted([ID1, ID31]),
     "DELETE /mqtt/{id}: {\"data\":[the remaining clients]}", r)
r = d.delete("/mqtt/%s" % ID3)
t.ok(cloud_err(r, 404, None), "DELETE it again: 404", r)
r = d.delete("/mqtt/%s" % ID31)
t.ok(r.status == 200 and [c.get("id") for c in data(r) or []] == [ID1],
     "DELETE the 3.1 client: one client left", r)

# --- the password: masked, kept, used ---------------------------------------

ab = AuthBroker()
r = d.post("/mqtt", {"server": "127.0.0.1", "port": ab.port, "enable": True,
                     "userName": AuthBroker.USER, "password": AuthBroker.PASSWORD,
                     "clientID": "t60-auth", "retryInterval": 10})
lst = data(r)
ca = by_id(lst, max([c.get("id", 0) for c in lst or [{}]])) or {}
IDA = ca.get("id")
t.ok(r.status == 200 and ca.get("password") == MASK
     and AuthBroker.PASSWORD.encode() not in r.body,
     "POST with a password: the answer shows \"********\", never the password", r)
t.ok(wait_status(IDA, "connected"),
     "the client connects to a broker that needs the password (status \"connected\")",
     "status %r\n%s" % (status_of(IDA), d.log()[-2000:]))
r = d.get("/mqtt")
t.ok(AuthBroker.PASSWORD.encode() not in r.body
     and (by_id(data(r), IDA) or {}).get("password") == MASK,
     "GET /mqtt shows \"********\", never the password", r)
n_before = len(broker_connects(ab, "t60-auth"))
r = d.put("/mqtt/%s" % IDA, {"password": MASK, "keepAliveSec": 31})
t.ok(r.status == 200 and (data(r) or {}).get("password") == MASK
     and (data(r) or {}).get("keepAliveSec") == 31,
     "PUT with the masked password: 200, still masked", r)
t.ok(wait_for(lambda: status_of(IDA) == "connected"
              and len(broker_connects(ab, "k31, u'%s'" % AuthBroker.USER)) >= 1, timeout=8),
     "it reconnects with the stored password (a new session with keepalive 31)",
     "status %r, broker log:\n%s" % (status_of(IDA), "".join(broker_connects(ab, ""))))
t.ok(len(broker_connects(ab, "t60-auth")) > n_before, "the broker saw a new connection")

# --- a restart keeps everything --------------------------------------------

gbody = {"enable": False, "outputTopic": "keep/me", "tags": {"p": {"s": ["a", "b"]}},
         "pollingInterval": 5}
r = d.post("/mqtt/%s/messages" % ID1, gbody)
t.eq(r.status, 200, "a group to outlive the restart")
before = {c["id"]: c for c in clients()}
groups_before = d.get("/mqtt/%s/messages" % ID1).json
code = d.stop()
t.eq(code, 0, "SIGTERM: the daemon exits 0")
d.start()
after = {c["id"]: c for c in clients()}
t.eq(sorted(after), sorted(before), "after a restart: the same client ids")
strip = lambda c: {k: v for k, v in c.items() if k != "status"}  # noqa: E731
t.ok(all(strip(after.get(i, {})) == strip(before[i]) for i in before),
     "after a restart: every client as it was (status aside)",
     "before: %r\nafter:  %r" % (before, after))
t.eq(d.get("/mqtt/%s/messages" % ID1).json, groups_before,
     "after a restart: the message groups as they were")
t.ok(wait_status(IDA, "connected"),
     "after a restart: the stored password still logs in (status \"connected\")",
     status_of(IDA))
t.eq(status_of(ID1), "disconnect", "after a restart: the disabled client stays \"disconnect\"")

refusals = lambda: len(broker_refusals(ab))  # noqa: E731
n_ref = refusals()
r = d.put("/mqtt/%s" % IDA, {"password": "not-the-password"})
t.ok(r.status == 200 and (data(r) or {}).get("password") == MASK,
     "PUT a wrong password: 200, masked", r)
t.ok(wait_for(lambda: status_of(IDA) == "connectFailure" and refusals() > n_ref, timeout=8),
     "with the wrong password the broker refuses it and the status becomes \"connectFailure\"",
     "status %r, refusals %d -> %d" % (status_of(IDA), n_ref, refusals()))
n_ref = refusals()
r = d.put("/mqtt/%s" % IDA, {"password": MASK})
t.eq(r.status, 200, "PUT the masked value again")
t.ok(wait_for(lambda: refusals() > n_ref, timeout=8) and status_of(IDA) != "connected",
     "the masked value now keeps the wrong password: the next attempt is refused too",
     "status %r, refusals %d -> %d" % (status_of(IDA), n_ref, refusals()))
r = d.put("/mqtt/%s" % IDA, {"password": AuthBroker.PASSWORD})
t.ok(r.status == 200 and wait_status(IDA, "connected"),
     "PUT the right password: connected again", status_of(IDA))
r = d.put("/mqtt/%s" % IDA, {"userName": ""})
t.ok(cloud_err(r, 400, "password"),
     "removing userName while a password is stored: 400 naming password", r)
r = d.put("/mqtt/%s" % IDA, {"enable": False})
t.ok(r.status == 200 and wait_status(IDA, "disconnect"),
     "enable false: status \"disconnect\"", status_of(IDA))

# --- multipart: certificates ------------------------------------------------

certroot = os.path.join(d.datadir, "certs")


def cert_files(cid):
    """{file name: (bytes, mode)} under datadir/certs/mqtt-<id>."""
    p = os.path.join(certroot, "mqtt-%s" % cid)
    out = {}
    if os.path.isdir(p):
        for n in os.listdir(p):
            fp = os.path.join(p, n)
            with open(fp, "rb") as f:
                out[n] = (f.read(), stat.S_IMODE(os.stat(fp).st_mode))
    return out


n_clients = len(clients())
r = post_form("/mqtt", [("server", "127.0.0.1"), ("port", str(DEAD_PORT)),
                        ("enable", "false"), ("certificateOverTLS", "true"),
                        ("keepAliveSec", "45")],
              [("rootCaCertFile", "C:\\Users\\op\\certs\\ca.crt", CERT),
               ("caCertFile", "../../etc/client.crt", CERT),
               ("caPkFile", "/home/op/client.key", KEY)])
lst = data(r)
cm = by_id(lst, max([c.get("id", 0) for c in lst or [{}]])) or {}
IDM = cm.get("id")
t.ok(r.status == 200 and isinstance(lst, list) and len(lst) == n_clients + 1,
     "POST /mqtt multipart with three PEM parts: 200 {\"data\":[all clients]}", r)
t.ok(cm.get("server") == "127.0.0.1" and cm.get("port") == DEAD_PORT
     and cm.get("enable") is False and cm.get("certificateOverTLS") is True
     and cm.get("keepAliveSec") == 45,
     "form fields are typed: port and keepAliveSec numbers, enable and certificateOverTLS booleans",
     cm)
t.eq(cm.get("certificate"), {"rootCaCertFile": "ca.crt", "caCertFile": "client.crt",
                             "caPkFile": "client.key"},
     "certificate.* are the uploaded file names without their paths")
files = cert_files(IDM)
t.ok(len(files) == 3 and sorted(v[0] for v in files.values()) == sorted([CERT, CERT, KEY]),
     "three files under datadir/certs/mqtt-<id>/ holding what was uploaded",
     sorted(files))
t.ok(files and all(v[1] == 0o600 for v in files.values()),
     "each is mode 0600", {k: oct(v[1]) for k, v in files.items()})
t.ok(KEY not in r.body and b"BEGIN" not in d.get("/mqtt").body,
     "no answer carries certificate or key contents")

r = d.put("/mqtt/%s" % IDM, {"keepAliveSec": 46})
t.ok(r.status == 200 and (data(r) or {}).get("certificate", {}).get("rootCaCertFile") == "ca.crt",
     "a JSON PUT on that client keeps the uploaded names (the files are there)", r)

r = post_form("/mqtt/%s" % IDM, [("tlsVersion", "1.3")],
              [("rootCaCertFile", "new-ca.pem", CERT + b"\n")], method="PUT")
got = data(r) or {}
t.ok(r.status == 200 and got.get("tlsVersion") == "1.3"
     and got.get("certificate", {}).get("rootCaCertFile") == "new-ca.pem"
     and got.get("certificate", {}).get("caPkFile") == "client.key",
     "PUT multipart: the new root CA takes its name, the other names stay", r)
t.ok(CERT + b"\n" in [v[0] for v in cert_files(IDM).values()],
     "... and its content replaces the old file", sorted(cert_files(IDM)))

n_clients = len(clients())
r = post_form("/mqtt", [("server", "127.0.0.1"), ("port", "1883")],
              [("rootCaCertFile", "ca.pem", CERT),
               ("caCertFile", "client.crt", b"this is not a certificate\n"),
               ("caPkFile", "client.key", KEY)])
t.ok(cloud_err(r, 400, "caCertFile"), "a non-PEM file part: 400 naming the part", r)
t.eq(len(clients()), n_clients, "... and no client was created")
t.eq(sorted(os.listdir(certroot)) if os.path.isdir(certroot) else [], ["mqtt-%s" % IDM],
     "... and no certificate directory was left behind")
before = client(IDM)
r = post_form("/mqtt/%s" % IDM, [("keepAliveSec", "50")],
              [("caCertFile", "other.crt", b"garbage")], method="PUT")
t.ok(cloud_err(r, 400, "caCertFile"), "PUT multipart with a non-PEM part: 400 naming the part", r)
t.eq(client(IDM), before, "... and the client is as it was")
t.ok(CERT in [v[0] for v in cert_files(IDM).values()]
     and b"garbage" not in [v[0] for v in cert_files(IDM).values()],
     "... and its stored files too", sorted(cert_files(IDM)))
r = post_form("/mqtt", [("data", '{"server": "127.0.0.1", "port": ')], [])
t.ok(cloud_err(r, 400, "data"), "a \"data\" part that is not JSON: 400 naming data", r)
r = post_form("/mqtt", [("data", "[1, 2]")], [])
t.ok(cloud_err(r, 400, "data"), "a \"data\" part that is not an object: 400 naming data", r)
r = post_form("/mqtt", [], [])
t.ok(cloud_err(r, 400, "server"), "an empty form: 400 naming server", r)
r = d.post("/mqtt", b"--xyz\r\nContent-Disposition: form-da",
           content_type="multipart/form-data; boundary=xyz")
t.ok(cloud_err(r, 400, None), "a truncated multipart body: 400", r)
r = post_form("/mqtt", [("server", "127.0.0.1"), ("port", "70000")], [])
t.ok(cloud_err(r, 400, "port"), "a form with port 70000: 400 naming port", r)
r = post_form("/mqtt", [("server", "127.0.0.1"), ("port", "1883"), ("enable", "maybe")], [])
t.ok(cloud_err(r, 400, "enable"), "a form with enable \"maybe\": 400 naming enable", r)

r = post_form("/mqtt", [("data", json.dumps({"server": "127.0.0.1", "port": DEAD_PORT,
                                            "certificateOverTLS": True,
                                            "willMessage": {"enable": True, "topic": "w"}}))],
              [("rootCaCertFile", "root.pem", CERT)])
lst = data(r)
cj = by_id(lst, max([c.get("id", 0) for c in lst or [{}]])) or {}
IDJ = cj.get("id")
t.ok(r.status == 200 and cj.get("certificateOverTLS") is True and cj.get("port") == DEAD_PORT
     and cj.get("willMessage", {}).get("topic") == "w"
     and cj.get("certificate", {}).get("rootCaCertFile") == "root.pem"
     and cj.get("certificate", {}).get("caCertFile") == "" and cj.get("keepAliveSec") == 60,
     "multipart with a \"data\" JSON part and a file part: 200, settings and name taken", r)
t.eq([v[0] for v in cert_files(IDJ).values()], [CERT], "... and the one file is stored")

r = d.delete("/mqtt/%s/certificates" % IDM)
got = data(r) or {}
t.ok(r.status == 200 and got.get("id") == IDM
     and got.get("certificate") == {"rootCaCertFile": "", "caCertFile": "", "caPkFile": ""},
     "DELETE /mqtt/{id}/certificates: {\"data\":client} with the names cleared", r)
t.eq(cert_files(IDM), {}, "... and the files are gone")
t.eq((client(IDM) or {}).get("certificate", {}).get("rootCaCertFile"), "",
     "GET /mqtt shows the names cleared")
t.eq([v[0] for v in cert_files(IDJ).values()], [CERT],
     "another client's certificate is untouched")
r = d.delete("/mqtt/%s" % IDJ)
t.ok(r.status == 200 and cert_files(IDJ) == {},
     "DELETE /mqtt/{id} removes that client's certificate files", r)

# --- message groups ---------------------------------------------------------

V24_ONLY = {"samplingMode", "customSamplingRate", "minPublishInterval", "description",
            "onChange"}
G = "/mqtt/%s/messages" % ID1
r = d.get("/mqtt/%s/messages" % IDM)
t.eq((r.status, r.json), (200, []), "GET /mqtt/{id}/messages with no groups: bare []")

v20 = {"enable": True, "outputTopic": "plant/v20", "tags": {"modbus": {"dev1": ["t1", "t2"]}}}
r = d.post(G, v20)
lst = r.json
t.ok(r.status == 200 and isinstance(lst, list) and len(lst) == 2,
     "POST a 2.2.0 group: 200, a bare array of all the client's groups", r)
g20 = lst[-1] if isinstance(lst, list) and lst else {}
GID20 = g20.get("id")
t.ok(isinstance(GID20, int) and GID20 > 0 and GID20 not in [g.get("id") for g in lst[:-1]],
     "the new group has its own id", lst)
t.ok(g20.get("pollingInterval") == 0 and g20.get("sendOutThreshold") == {"size": 4096, "time": 60}
     and g20.get("format") == "" and g20.get("properties") == []
     and g20.get("outputTopic") == "plant/v20" and g20.get("enable") is True
     and g20.get("tags") == v20["tags"],
     "2.2.0 defaults: pollingInterval 0, sendOutThreshold {4096, 60}, format \"\", properties []",
     g20)
t.ok(not (V24_ONLY & set(g20)) and "mode" not in g20.get("sendOutThreshold", {}),
     "the 2.2.0 answer carries no 2.4.0 field", g20)
t.ok(not any(k.startswith("_") for k in g20), "no internal field (\"_form\") in the answer", g20)
r = d.post(G, {"enable": False, "tags": {"p": {"s": ["x"]}}})
t.eq((r.json[-1] if isinstance(r.json, list) else {}).get("outputTopic"), "sample",
     "outputTopic defaults to \"sample\"")
GID_EXTRA = (r.json[-1] if isinstance(r.json, list) else {}).get("id")

v24 = {"enable": True, "outputTopic": "plant/v24", "description": "new form",
       "tags": {"modbus": {"dev1": ["t1"]}}}
r = d.post(G, v24)
g24 = (r.json[-1] if isinstance(r.json, list) and r.json else {})
GID24 = g24.get("id")
t.ok(r.status == 200 and isinstance(r.json, list) and g24.get("description") == "new form",
     "POST a 2.4.0 group: 200, a bare array", r)
t.ok(g24.get("samplingMode") == "allChangedValues" and g24.get("onChange") is True
     and g24.get("customSamplingRate") is False and g24.get("minPublishInterval") == 0
     and isinstance(g24.get("sendOutThreshold"), dict)
     and g24["sendOutThreshold"].get("mode") == "byTime"
     and g24["sendOutThreshold"].get("time") == 60,
     "2.4.0 defaults: samplingMode allChangedValues, onChange true, mode byTime, time 60", g24)
t.ok(not any(k.startswith("_") for k in g24), "no internal field in the 2.4.0 answer", g24)
for mode, change in (("allValues", False), ("latestValues", False),
                     ("latestChangedValues", True), ("allChangedValues", True)):
    body = dict(v24, samplingMode=mode, onChange=not change)
    r = d.put("%s/%s" % (G, GID24), body)
    got = data(r) or {}
    t.ok(r.status == 200 and got.get("samplingMode") == mode and got.get("onChange") is change,
         "samplingMode %s: onChange %s (the onChange sent is ignored)"
         % (mode, json.dumps(change)), r)

r = d.put("%s/%s" % (G, GID24), dict(v24, sendOutThreshold={"mode": "bySize", "size": 2048}))
got = data(r) or {}
t.ok(r.status == 200 and got.get("sendOutThreshold", {}).get("size") == 2048
     and got.get("sendOutThreshold", {}).get("sizeIdleTimer") == {"enable": True, "time": 60},
     "bySize: sizeIdleTimer defaults to {enable true, time 60}", r)
r = d.post(G, dict(v20, id=555, outputTopic="ro/id"))
mine = [g for g in (r.json if isinstance(r.json, list) else []) if g.get("outputTopic") == "ro/id"]
t.ok(r.status == 200 and len(mine) == 1 and mine[0].get("id") != 555,
     "POST a group with an id: accepted, the id ignored", r)
if mine:
    d.delete("%s/%s" % (G, mine[0].get("id")))

r = d.get("%s/%s" % (G, GID20))
t.eq((r.status, r.json), (200, {"data": g20}), "GET /mqtt/{id}/messages/{gid}: {\"data\":group}")
r = d.get("%s/%s" % (G, 9999))
t.ok(cloud_err(r, 404, None), "GET an unknown group: 404", r)
put20 = dict(v20, pollingInterval=30, sendOutThreshold={"size": 1000, "time": 5},
             format="{(.tagName): .dataValue}")
r = d.put("%s/%s" % (G, GID20), put20)
got = data(r)
t.ok(r.status == 200 and isinstance(got, dict) and got.get("id") == GID20
     and got.get("pollingInterval") == 30
     and got.get("sendOutThreshold") == {"size": 1000, "time": 5}
     and got.get("format") == put20["format"] and not (V24_ONLY & set(got)),
     "PUT /mqtt/{id}/messages/{gid}: {\"data\":group}, still the 2.2.0 form", r)
t.eq(d.get("%s/%s" % (G, GID20)).json, {"data": got}, "GET shows the PUT")
r = d.put("%s/%s" % (G, 9999), v20)
t.ok(cloud_err(r, 404, None), "PUT an unknown group: 404", r)
r = d.get("/mqtt/%s/messages" % IDM)
t.eq(r.json, [], "another client's groups are its own (still [])")

GBAD = [
    ("pollingInterval 86401", {"pollingInterval": 86401}, "pollingInterval"),
    ("pollingInterval -1", {"pollingInterval": -1}, "pollingInterval"),
    ("sendOutThreshold.size 262145", {"sendOutThreshold": {"size": 262145, "time": 60}},
     "sendOutThreshold.size"),
    ("sendOutThreshold.time 86401", {"sendOutThreshold": {"size": 4096, "time": 86401}},
     "sendOutThreshold.time"),
    ("samplingMode \"x\"", {"samplingMode": "x"}, "samplingMode"),
    ("sendOutThreshold.mode \"sometimes\"", {"sendOutThreshold": {"mode": "sometimes"}},
     "sendOutThreshold.mode"),
    ("minPublishInterval 61", {"minPublishInterval": 61}, "minPublishInterval"),
    ("tags an array", {"tags": [{"srcName": "s", "tagNames": ["a"]}]}, "tags"),
    ("tags a string", {"tags": "modbus"}, "tags"),
    ("a tag name a number", {"tags": {"modbus": {"dev1": ["t1", 7]}}}, "tags.modbus.dev1[1]"),
    ("a source not an array", {"tags": {"modbus": {"dev1": "t1"}}}, "tags.modbus.dev1"),
    ("outputTopic with #", {"outputTopic": "plant/#"}, "outputTopic"),
    ("outputTopic with +", {"outputTopic": "plant/+/x"}, "outputTopic"),
    ("outputTopic empty", {"outputTopic": ""}, "outputTopic"),
    ("enable missing", {"enable": None}, "enable"),
    ("properties[0].key empty", {"properties": [{"key": "", "value": "v"}]}, "properties[0].key"),
]
n_groups = len(d.get(G).json)
for what, extra, field in GBAD:
    body = dict(v20)
    body.update(extra)
    body = {k: v for k, v in body.items() if v is not None}
    r = d.post(G, body)
    t.ok(cloud_err(r, 400, field), "POST a group with %s: 400 naming %s" % (what, field), r)
r = d.post(G, dict(v20, format="{(.tagName): }"))
t.ok(cloud_err(r, 400, "format") and "syntax error" in r.json["error"],
     "a format that does not compile: 400 naming format, with jq's message", r)
t.ok(isinstance(r.json, dict) and isinstance(r.json.get("error"), str)
     and not r.json["error"].startswith("format: format:"),
     "... and the message names the field once (not \"format: format: ...\")", r)
r = d.post(G, [v20])
t.ok(cloud_err(r, 400, None), "a group body that is an array: 400", r)
t.eq(len(d.get(G).json), n_groups, "no refused POST created a group")
r = d.put("%s/%s" % (G, GID20), dict(v20, pollingInterval=86401))
t.ok(cloud_err(r, 400, "pollingInterval"), "PUT with pollingInterval 86401: 400", r)
t.eq(d.get("%s/%s" % (G, GID20)).json, {"data": got}, "a refused PUT leaves the group as it was")

# The upper boundaries are accepted.
for extra in ({"pollingInterval": 86400}, {"sendOutThreshold": {"size": 262144, "time": 86400}},
              {"minPublishInterval": 60}, {"customSamplingRate": True, "pollingInterval": 1}):
    r = d.put("%s/%s" % (G, GID24), dict(v24, **extra))
    t.eq(r.status, 200, "PUT a group with %s: accepted" % json.dumps(extra))

r = d.get("%s/test" % G)
t.ok(r.status in (400, 404) and isinstance(r.json, dict) and "error" in r.json,
     "GET /mqtt/{id}/messages/test is a group lookup: 400 or 404", r)
t.ok(d.alive() and d.get("/health", token=None).status == 200, "... and the daemon is alive")
r = d.delete("%s/test" % G)
t.ok(r.status in (400, 404), "DELETE /mqtt/{id}/messages/test: 400 or 404", r)

r = d.delete("%s/%s" % (G, GID_EXTRA))
lst = r.json
t.ok(r.status == 200 and isinstance(lst, list)
     and GID_EXTRA not in [g.get("id") for g in lst]
     and GID20 in [g.get("id") for g in lst] and GID24 in [g.get("id") for g in lst],
     "DELETE /mqtt/{id}/messages/{gid}: bare array of the rest", r)
r = d.delete("%s/%s" % (G, GID_EXTRA))
t.ok(cloud_err(r, 404, None), "DELETE it again: 404", r)
r = d.get("%s/%s" % (G, GID_EXTRA))
t.ok(cloud_err(r, 404, None), "GET it: 404", r)

# --- PUT /mqtt/{id}/messages/test ---------------------------------------------

TS = 1581659603000000     # 2020-02-14T05:53:23Z, in microseconds
recs = [
    {"prvdName": "modbus", "srcName": "dev1", "tagName": "t1", "dataType": "int32",
     "dataValue": 42, "ts": TS},
    {"prvdName": "modbus", "srcName": "dev1", "tagName": "t2", "dataType": "string",
     "dataValue": "hi", "ts": TS + 1000000},
]
r = d.post("/tags/publish", recs)
t.eq(r.status, 200, "POST /tags/publish two tags")
T = "/mqtt/%s/messages/test" % ID1

r = d.put(T, {"format": "", "tags": [{"srcName": "dev1", "tagName": "t1", "dataType": "int32"}]})
t.eq((r.status, r.json),
     (200, {"data": {"tags": {"modbus": {"dev1": {"t1": {"values": [
         {"updateTimeStamp": "2020-02-14T05:53:23Z", "value": 42}]}}}}}}),
     "test with the default format: the default shape with the tag's value and time")
r = d.put(T, {"tags": [{"srcName": "dev1", "tagName": "t1"},
                       {"srcName": "dev1", "tagName": "t2"}]})
t.eq((r.status, r.json),
     (200, {"data": {"tags": {"modbus": {"dev1": {
         "t1": {"values": [{"updateTimeStamp": "2020-02-14T05:53:23Z", "value": 42}]},
         "t2": {"values": [{"updateTimeStamp": "2020-02-14T05:53:24Z", "value": "hi"}]}}}}}}),
     "test without a format (the default) over two tags: merged into one document")
r = d.put(T, {"format": "{(.tagName): .dataValue}",
              "tags": [{"srcName": "dev1", "tagName": "t1"},
                       {"srcName": "dev1", "tagName": "t2"}]})
t.eq((r.status, r.json), (200, {"data": {"t1": 42, "t2": "hi"}}),
     "test with {(.tagName): .dataValue} over two tags: the results merged")
r = d.put(T, {"format": "{all: [.dataValue], last: .dataValue}",
              "tags": [{"srcName": "dev1", "tagName": "t1"},
                       {"srcName": "dev1", "tagName": "t2"}]})
t.eq((r.status, r.json), (200, {"data": {"all": [42, "hi"], "last": "hi"}}),
     "merge rule: arrays append, later scalars override")
r = d.put(T, {"format": "{(.tagName): .dataValue}",
              "tags": [{"srcName": "nowhere", "tagName": "i", "dataType": "int32"},
                       {"srcName": "nowhere", "tagName": "f", "dataType": "float64"},
                       {"srcName": "nowhere", "tagName": "s", "dataType": "string"},
                       {"srcName": "nowhere", "tagName": "b", "dataType": "boolean"}]})
t.eq((r.status, r.json), (200, {"data": {"i": 0, "f": 0, "s": "", "b": False}}),
     "tags with no value get typed sample values: 0, 0, \"\", false")
r = d.put(T, {"tags": [{"srcName": "nowhere", "tagName": "i", "dataType": "int32"}]})
# Which provider stands in for a tag named without one is the daemon's
# choice: take the only one there is.
provs = (data(r) or {}).get("tags") or {}
prov = list(provs.values())[0] if isinstance(provs, dict) and len(provs) == 1 else {}
vals = (((prov or {}).get("nowhere") or {}).get("i") or {}).get("values")
ts_ok = isinstance(vals, list) and len(vals) == 1 and vals[0].get("value") == 0 and \
    re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", str(vals[0].get("updateTimeStamp")))
t.ok(r.status == 200 and ts_ok,
     "the default format over a tag with no value: value 0 and a date", r)
r = d.put(T, {"format": ".dataValue | keys",
              "tags": [{"srcName": "dev1", "tagName": "t1"}]})
t.ok(cloud_err(r, 400, "format") and "jq" in r.json["error"],
     "a filter that fails at run time: 400 naming format, with jq's message", r)
r = d.put(T, {"format": "error(\"boom\")", "tags": [{"srcName": "dev1", "tagName": "t1"}]})
t.ok(cloud_err(r, 400, "format") and "boom" in r.json["error"],
     "error(\"boom\"): 400 with jq's message \"boom\"", r)
t.ok(isinstance(r.json, dict) and isinstance(r.json.get("error"), str)
     and not r.json["error"].startswith("format: format:"),
     "... and the message names the field once (not \"format: format: ...\")", r)
r = d.put("/mqtt/abc/messages/test", {"tags": []})
t.ok(cloud_err(r, 400, "id"), "PUT /mqtt/abc/messages/test: 400 naming id", r)
r = d.put(T, {"format": "{(.tagName): }", "tags": [{"srcName": "dev1", "tagName": "t1"}]})
t.ok(cloud_err(r, 400, "format") and "syntax error" in r.json["error"],
     "a filter that does not compile: 400 with jq's message", r)
r = d.put(T, {"format": "", "tags": [{"srcName": "nowhere", "tagName": "x",
                                      "dataType": "complex128"}]})
t.ok(cloud_err(r, 400, "tags[0].dataType"), "an unknown dataType: 400 naming tags[0].dataType", r)
r = d.put(T, {"format": "", "tags": "dev1"})
t.ok(cloud_err(r, 400, "tags"), "tags not an array: 400 naming tags", r)
r = d.put(T, {"format": "", "tags": [{"tagName": "t1"}]})
t.ok(cloud_err(r, 400, "tags[0]"), "a tag without srcName: 400 naming tags[0]", r)
t.ok(d.alive(), "the daemon is still running")

signal.alarm(0)
t.done()

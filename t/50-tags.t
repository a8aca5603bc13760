#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# The tag hub API (taghub 2.0.0 and uplinkd(8)): POST /tags/publish over
# TCP and over the unix socket, every dataType with its boundary values
# round-tripping exactly through /tags/monitor and /tags/access, the ways a
# record or a batch is refused (and that a refused batch applies nothing),
# GET /tags/list (filters, paging, ordering), GET /tags/monitor and
# GET /tags/access, and virtual tags (define, change, delete, write, read,
# kept across a restart).
#
# Numbers are compared as the text the daemon sent, never through Python
# floats: JSON is read with every number kept as its literal text.

import base64
import json
import os
import re
import socket
import struct
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()




class Num(str):
    """A JSON number, kept as the text it was sent as."""


def exact(body):
    """JSON text to Python with every number a Num (its literal text)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return json.loads(body, parse_int=Num, parse_float=Num)


def is_num(v, text):
    return isinstance(v, Num) and v == text


MAX_RECORDS = 100
MAX_BODY = 65536
d = Daemon(conf={"publish_max_records": str(MAX_RECORDS),
                 "max_body_size": str(MAX_BODY)})


def rec(p, s, n, typ, value, **kw):
    r = {"prvdName": p, "srcName": s, "tagName": n, "dataType": typ,
         "dataValue": value}
    r.update(kw)
    return r


def publish(body, kind="http", raw=False):
    """POST /tags/publish; body a record, a list, or (raw) JSON text."""
    if raw:
        return d.post("/tags/publish", body, content_type="application/json",
                      kind=kind)
    return d.post("/tags/publish", body, kind=kind)


def errmsg(r):
    """The message of a {"error":{"code":N,"message":...}} answer, or None."""
    try:
        e = json.loads(r.body)["error"]
        if e.get("code") != r.status:
            return None
        return e.get("message")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def refused(r, status, words, name):
    """r is status with the tag error envelope; its message holds every
    one of words (case-insensitively; a tuple means any one of them)."""
    msg = errmsg(r)
    ok = r.status == status and msg is not None
    if ok:
        for w in words:
            alts = w if isinstance(w, tuple) else (w,)
            if not any(a.lower() in msg.lower() for a in alts):
                ok = False
    return t.ok(ok, name, "want %d naming %r\ngot: %r" % (status, words, r))


def access(p, s, n):
    """GET /tags/access/p/s/n: (status, data as exact JSON or None, r)."""
    path = "/tags/access/%s/%s/%s" % tuple(x.replace("/", "%2F")
                                           for x in (p, s, n))
    r = d.get(path)
    data = None
    if r.status == 200:
        try:
            data = exact(r.body)["data"]
        except (ValueError, KeyError, TypeError):
            data = None
    return r.status, data, r


def value_of(p, s, n):
    """The dataValue of a tag as GET /tags/access shows it (Num for
    numbers), or the HTTP status if the read failed."""
    st, data, _ = access(p, s, n)
    if st != 200 or not isinstance(data, dict):
        return ("status", st)
    return data.get("dataValue")


def monitor(p, s, query=""):
    """GET /tags/monitor/p/s?query: (status, {tagName: record}, list, r)."""
    r = d.get("/tags/monitor/%s/%s%s" % (p, s, ("?" + query) if query else ""))
    recs = None
    if r.status == 200:
        try:
            recs = exact(r.body)["data"]
        except (ValueError, KeyError, TypeError):
            recs = None
    byname = {}
    if isinstance(recs, list):
        for x in recs:
            if isinstance(x, dict):
                byname[x.get("tagName")] = x
    return r.status, byname, recs, r


def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(labels)),
                  text, re.M)
    return int(m.group(1)) if m else None


def records_total():
    r = d.get("/metrics")
    text = r.body.decode(errors="replace")
    return (metric(text, "uplinkd_tag_records_total", 'origin="rest"'),
            metric(text, "uplinkd_tag_records_total", 'origin="unix"'))


# --- POST /tags/publish: one record, an array, TCP and unix --------------

rest0, unix0 = records_total()
t.ok(rest0 is not None and unix0 is not None,
     "/metrics has uplinkd_tag_records_total for origin rest and unix",
     (rest0, unix0))

r = publish(rec("pp", "tcp", "one", "int32", 7))
t.ok(r.status == 200 and r.json == {"data": {"published": 1}},
     "one record over TCP: 200 {\"data\":{\"published\":1}}", r)
r = publish([rec("pp", "tcp", "a%d" % i, "uint16", i) for i in range(3)])
t.ok(r.status == 200 and r.json == {"data": {"published": 3}},
     "an array of 3 records over TCP: 200, published 3", r)
r = publish(rec("pp", "unix", "one", "string", "via unix"), kind="unix")
t.ok(r.status == 200 and r.json == {"data": {"published": 1}},
     "one record over the unix socket: 200, published 1", r)
r = publish([rec("pp", "unix", "b%d" % i, "int8", -i) for i in range(4)],
            kind="unix")
t.ok(r.status == 200 and r.json == {"data": {"published": 4}},
     "an array of 4 records over the unix socket: 200, published 4", r)

t.ok(is_num(value_of("pp", "tcp", "one"), "7") and
     is_num(value_of("pp", "tcp", "a2"), "2") and
     value_of("pp", "unix", "one") == "via unix" and
     is_num(value_of("pp", "unix", "b3"), "-3"),
     "values published over TCP and over the unix socket read back",
     [value_of("pp", "tcp", "one"), value_of("pp", "tcp", "a2"),
      value_of("pp", "unix", "one"), value_of("pp", "unix", "b3")])

rest1, unix1 = records_total()
t.ok(rest0 is not None and rest1 == rest0 + 4,
     "uplinkd_tag_records_total{origin=\"rest\"} counts the 4 TCP records",
     (rest0, rest1))
t.ok(unix0 is not None and unix1 == unix0 + 5,
     "uplinkd_tag_records_total{origin=\"unix\"} counts the 5 unix records",
     (unix0, unix1))

# --- every dataType, boundary values, exact round trip --------------------

RAW = bytes(range(256))
STR = "h\u00e9llo \"quoted\" back\\slash\nnew line \u20ac \U0001F600 tab\t."
F32_MAX = struct.unpack("<f", struct.pack("<I", 0x7f7fffff))[0]
F32_TINY = struct.unpack("<f", struct.pack("<I", 0x00000001))[0]

# (tagName, dataType, value literal as sent, value literal expected back)
# The expected text of integers is exact; floats are compared by value.
BOUNDS = [
    ("u8max", "uint8", "255", "255"),
    ("u8min", "uint8", "0", "0"),
    ("u16max", "uint16", "65535", "65535"),
    ("u32max", "uint32", "4294967295", "4294967295"),
    ("u64max", "uint64", "18446744073709551615", "18446744073709551615"),
    ("u64p53", "uint64", "9007199254740993", "9007199254740993"),
    ("i8min", "int8", "-128", "-128"),
    ("i8max", "int8", "127", "127"),
    ("i16min", "int16", "-32768", "-32768"),
    ("i16max", "int16", "32767", "32767"),
    ("i32min", "int32", "-2147483648", "-2147483648"),
    ("i32max", "int32", "2147483647", "2147483647"),
    ("i64min", "int64", "-9223372036854775808", "-9223372036854775808"),
    ("i64max", "int64", "9223372036854775807", "9223372036854775807"),
    ("i64p53", "int64", "9007199254740993", "9007199254740993"),
    ("i64m53", "int64", "-9007199254740993", "-9007199254740993"),
]
FLOATS = [
    # (tagName, dataType, literal sent, the value it must read back as)
    ("f32half", "float", "1.5", 1.5),
    ("f32max", "float", repr(F32_MAX), F32_MAX),
    ("f32neg", "float", "-" + repr(F32_MAX), -F32_MAX),
    ("f32tiny", "float", repr(F32_TINY), F32_TINY),
    ("f32tenth", "float", "0.1", struct.unpack("<f", struct.pack("<f", 0.1))[0]),
    ("f64max", "double", "1.7976931348623157e+308", 1.7976931348623157e+308),
    ("f64tiny", "double", "5e-324", 5e-324),
    ("f64tenth", "double", "-0.1", -0.1),
    ("f64p53", "double", "9007199254740992", 9007199254740992.0),
]

parts = []
for name, typ, lit, _ in BOUNDS:
    parts.append('{"prvdName":"bnd","srcName":"all","tagName":"%s",'
                 '"dataType":"%s","dataValue":%s}' % (name, typ, lit))
for name, typ, lit, _ in FLOATS:
    parts.append('{"prvdName":"bnd","srcName":"all","tagName":"%s",'
                 '"dataType":"%s","dataValue":%s}' % (name, typ, lit))
OTHERS = [
    rec("bnd", "all", "str", "string", STR),
    rec("bnd", "all", "strempty", "string", ""),
    rec("bnd", "all", "booltrue", "boolean", True),
    rec("bnd", "all", "boolfalse", "boolean", False),
    rec("bnd", "all", "raw", "raw", base64.b64encode(RAW).decode()),
    rec("bnd", "all", "rawempty", "raw", ""),
]
for o in OTHERS:
    parts.append(json.dumps(o))
body = "[" + ",".join(parts) + "]"
r = publish(body, raw=True)
nall = len(BOUNDS) + len(FLOATS) + len(OTHERS)
t.ok(r.status == 200 and r.json == {"data": {"published": nall}},
     "a batch of every dataType with boundary values is accepted", r)

st, mon, _, mr = monitor("bnd", "all")
t.ok(st == 200 and len(mon) == nall,
     "GET /tags/monitor/bnd/all lists all %d tags" % nall, mr)
acc = {}
for name in [b[0] for b in BOUNDS] + [f[0] for f in FLOATS] + \
        [o["tagName"] for o in OTHERS]:
    acc[name] = access("bnd", "all", name)[1]


def both(name):
    """(monitor record, access record) of a boundary tag."""
    return mon.get(name) or {}, acc.get(name) or {}


for name, typ, lit, want in BOUNDS:
    m, a = both(name)
    t.ok(is_num(m.get("dataValue"), want) and m.get("dataType") == typ and
         is_num(a.get("dataValue"), want) and a.get("dataType") == typ,
         "%s %s round-trips exactly through monitor and access" % (typ, lit),
         "monitor: %r\naccess:  %r" % (m, a))


def f32(text):
    return struct.unpack("<f", struct.pack("<f", float(text)))[0]


for name, typ, lit, want in FLOATS:
    m, a = both(name)
    mv, av = m.get("dataValue"), a.get("dataValue")
    conv = f32 if typ == "float" else float
    ok = isinstance(mv, Num) and isinstance(av, Num) and \
        conv(mv) == want and conv(av) == want and \
        m.get("dataType") == typ and a.get("dataType") == typ
    t.ok(ok, "%s %s reads back as the same %s value" % (typ, lit, typ),
         "want %r\nmonitor: %r\naccess:  %r" % (want, m, a))

m, a = both("str")
t.ok(m.get("dataValue") == STR and a.get("dataValue") == STR and
     m.get("dataType") == "string",
     "a string with quotes, backslash, newline, tab and non-ASCII round-trips",
     "monitor: %r\naccess:  %r" % (m, a))
m, a = both("strempty")
t.ok(m.get("dataValue") == "" and a.get("dataValue") == "",
     "the empty string round-trips", (m, a))
m, a = both("booltrue")
m2, a2 = both("boolfalse")
t.ok(m.get("dataValue") is True and a.get("dataValue") is True and
     m2.get("dataValue") is False and a2.get("dataValue") is False and
     m.get("dataType") == "boolean",
     "boolean true and false round-trip as JSON booleans", (m, a, m2, a2))


def b64(v):
    try:
        return base64.b64decode(v, validate=True)
    except (TypeError, ValueError):
        return None


m, a = both("raw")
t.ok(b64(m.get("dataValue")) == RAW and b64(a.get("dataValue")) == RAW and
     m.get("dataType") == "raw",
     "raw: all 256 byte values round-trip as base64", (m, a))
m, a = both("rawempty")
t.ok(m.get("dataValue") == "" and a.get("dataValue") == "",
     "raw: zero bytes round-trip as \"\"", (m, a))

# The daemon prints the largest float as 3.4028235e+38 (the shortest text
# that reads back as it); that text, whose nearest single-precision value
# is the largest float, must be taken back.
printed = (mon.get("f32max") or {}).get("dataValue") or "3.4028235e+38"
r = publish('{"prvdName":"bnd","srcName":"all","tagName":"f32max",'
            '"dataType":"float","dataValue":%s}' % printed, raw=True)
back = value_of("bnd", "all", "f32max")
t.ok(r.status == 200 and isinstance(back, Num) and f32(back) == F32_MAX,
     "float: the largest float as the daemon prints it (%s) is accepted back"
     % printed, r)

# --- out of range, wrong type, missing fields ----------------------------

OUT = [
    ("uint8", "256"), ("int8", "-129"), ("int8", "128"), ("uint16", "65536"),
    ("int16", "32768"), ("int16", "-32769"), ("uint32", "4294967296"),
    ("int32", "2147483648"), ("int32", "-2147483649"), ("uint64", "-1"),
    ("uint64", "18446744073709551616"), ("int64", "9223372036854775808"),
    ("int64", "-9223372036854775809"), ("int32", "1.5"), ("uint8", "2e2"),
    ("float", "1e39"), ("float", "-1e39"), ("double", "1e309"),
]
for i, (typ, lit) in enumerate(OUT):
    name = "oor%d" % i
    r = publish('{"prvdName":"bad","srcName":"range","tagName":"%s",'
                '"dataType":"%s","dataValue":%s}' % (name, typ, lit), raw=True)
    refused(r, 400, ["bad/range/" + name, ("out of range", typ)],
            "%s %s: 400 naming the tag and the range or type" % (typ, lit))
    t.ok(access("bad", "range", name)[0] == 404,
         "%s %s: the refused record registered no tag" % (typ, lit))

r = publish(rec("bnd", "all", "u8max", "int8", 1))
refused(r, 400, ["bnd/all/u8max", "dataType"],
        "a record with another dataType than the existing tag's: 400")
t.ok(is_num(value_of("bnd", "all", "u8max"), "255"),
     "the existing tag keeps its value after the wrong dataType",
     value_of("bnd", "all", "u8max"))

full = rec("bad", "miss", "t", "int32", 1, dataUnit="V")
for field in ("prvdName", "srcName", "tagName", "dataType", "dataValue"):
    x = dict(full)
    del x[field]
    r = publish(x)
    refused(r, 400, [field], "a record without %s: 400 naming %s"
            % (field, field))
t.ok(access("bad", "miss", "t")[0] == 404,
     "records with a field missing registered nothing")

WRONG = [
    ("int32", '"12"', "a string for int32"),
    ("int32", "true", "a boolean for int32"),
    ("int32", "null", "null for int32"),
    ("int32", '{"v":1}', "an object for int32"),
    ("int32", "[1]", "an array for int32"),
    ("string", "12", "a number for string"),
    ("double", '"1.5"', "a string for double"),
    ("boolean", '"true"', "a string for boolean"),
    ("raw", "12", "a number for raw"),
    ("raw", '"not base64!"', "a non-base64 string for raw"),
]
for i, (typ, lit, what) in enumerate(WRONG):
    name = "wt%d" % i
    r = publish('{"prvdName":"bad","srcName":"type","tagName":"%s",'
                '"dataType":"%s","dataValue":%s}' % (name, typ, lit), raw=True)
    refused(r, 400, ["dataValue"], "%s: 400 naming dataValue" % what)
r = publish('{"prvdName":"bad","srcName":"type","tagName":"x",'
            '"dataType":"int33","dataValue":1}', raw=True)
refused(r, 400, ["dataType", "int33"], "an unknown dataType: 400 naming it")
r = publish('{"prvdName":7,"srcName":"type","tagName":"x",'
            '"dataType":"int32","dataValue":1}', raw=True)
refused(r, 400, ["prvdName"], "a number for prvdName: 400 naming prvdName")
r = publish(rec("bad", "type", "x", "int32", 1, ts=-1))
refused(r, 400, ["ts"], "a negative ts: 400 naming ts")
r = publish(rec("bad", "type", "x", "int32", 1, ts="now"))
refused(r, 400, ["ts"], "a string ts: 400 naming ts")
t.ok(d.get("/tags/list?provider=bad").json.get("total") == 0,
     "none of the refused records registered a tag",
     d.get("/tags/list?provider=bad"))

for text, what in [("{", "an unfinished object"),
                   ('{"prvdName":"a",}', "a trailing comma"),
                   ("not json", "not JSON at all"),
                   ('{"prvdName":"bad"} {"x":1}', "two documents"),
                   ("[{]", "a broken array"),
                   ("5", "a bare number"),
                   ("[5]", "an array of numbers")]:
    r = publish(text, raw=True)
    t.ok(r.status == 400 and errmsg(r) is not None,
         "malformed body (%s): 400 with the error envelope" % what, r)

for ct in ("text/plain", "application/x-www-form-urlencoded",
           "application/jsonx", None):
    r = d.post("/tags/publish", json.dumps(rec("bad", "ct", "x", "int8", 1)),
               content_type=ct)
    refused(r, 415, ["Content-Type"], "Content-Type %s: 415" % ct)
t.ok(access("bad", "ct", "x")[0] == 404, "a 415 body registered nothing")
r = d.post("/tags/publish", json.dumps(rec("pp", "ct", "x", "int8", 1)),
           content_type="application/json; charset=utf-8")
t.ok(r.status == 200, "application/json; charset=utf-8 is accepted", r)

# --- batches: all or nothing, limits --------------------------------------

r = publish([rec("batch", "s", "a", "int32", 1), rec("batch", "s", "b", "int32", 2),
             rec("batch", "s", "c", "int32", 3)])
t.ok(r.status == 200, "batch: three good values", r)


def abc():
    return [value_of("batch", "s", n) for n in ("a", "b", "c")]


r = publish([rec("batch", "s", "a", "int32", 10),
             rec("batch", "s", "new", "int32", 5),
             rec("batch", "s", "b", "int32", 4294967296),
             rec("batch", "s", "c", "int32", 30)])
refused(r, 400, ["batch/s/b"], "batch with an out-of-range value in the "
        "middle: 400 naming that tag")
t.ok(abc() == ["1", "2", "3"] and access("batch", "s", "new")[0] == 404,
     "... and nothing of it was applied (values unchanged, no new tag)",
     (abc(), access("batch", "s", "new")[0]))

r = publish([rec("batch", "s", "a", "int32", 10),
             rec("batch", "s", "new", "int32", 5),
             rec("batch", "s", "b", "string", "x"),
             rec("batch", "s", "c", "int32", 30)])
refused(r, 400, ["batch/s/b", "dataType"], "batch with a wrong dataType "
        "in the middle: 400 naming that tag")
t.ok(abc() == ["1", "2", "3"] and access("batch", "s", "new")[0] == 404,
     "... and nothing of it was applied", (abc(), access("batch", "s", "new")[0]))

r = publish([rec("batch", "s", "a", "int32", 10),
             {"prvdName": "batch", "srcName": "s", "tagName": "b",
              "dataType": "int32"},
             rec("batch", "s", "c", "int32", 30)])
refused(r, 400, ["dataValue"], "batch with a record missing dataValue in "
        "the middle: 400 naming dataValue")
t.ok(abc() == ["1", "2", "3"], "... and nothing of it was applied", abc())

# One new tag twice in a batch, with two types: the second record does not
# fit the tag the first registers.
r = publish([rec("batch", "s2", "twice", "int8", 5),
             rec("batch", "s2", "twice", "string", "hello")])
refused(r, 400, ["batch/s2/twice", "dataType"], "batch registering one new "
        "tag with two dataTypes: 400 naming the tag")
t.ok(access("batch", "s2", "twice")[0] == 404,
     "... and nothing of it was applied", access("batch", "s2", "twice")[2])

r = publish([rec("lim", "s", "t%d" % i, "uint8", 1) for i in range(MAX_RECORDS)])
t.ok(r.status == 200 and r.json == {"data": {"published": MAX_RECORDS}},
     "a batch of publish_max_records (%d) records: 200" % MAX_RECORDS, r)
r = publish([rec("lim", "s", "t%d" % i, "uint8", 2) for i in range(MAX_RECORDS)] +
            [rec("lim", "s", "extra", "uint8", 2)])
refused(r, 413, [str(MAX_RECORDS)], "a batch of %d records: 413 naming the "
        "limit" % (MAX_RECORDS + 1))
t.ok(is_num(value_of("lim", "s", "t0"), "1") and
     is_num(value_of("lim", "s", "t%d" % (MAX_RECORDS - 1)), "1") and
     access("lim", "s", "extra")[0] == 404,
     "... and nothing of it was applied",
     (value_of("lim", "s", "t0"), access("lim", "s", "extra")[0]))



def post_raw(path, body, timeout=10):
    """POST body on a raw socket, not minding that the server may close
    before it has read it all; the status line's code, or None."""
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=timeout)
    buf = b""
    try:
        head = ("POST /api/v1%s HTTP/1.1\r\nHost: localhost\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json"
                "\r\nContent-Length: %d\r\n\r\n"
                % (path, d.api_token, len(body))).encode()
        try:
            s.sendall(head + body)
        except OSError:
            pass
        deadline = time.time() + timeout
        while b"\r\n" not in buf and time.time() < deadline:
            try:
                c = s.recv(65536)
            except OSError:
                break
            if not c:
                break
            buf += c
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", buf)
    return int(m.group(1)) if m else None


big = json.dumps(rec("lim", "s", "huge", "string", "x" * (MAX_BODY + 100)))
t.eq(post_raw("/tags/publish", big.encode()), 413,
     "a body over max_body_size (%d bytes): 413" % MAX_BODY)
t.ok(access("lim", "s", "huge")[0] == 404,
     "... and the oversized record was not applied")
r = publish(json.dumps(rec("lim", "s", "large", "string", "y" * (MAX_BODY - 200))),
            raw=True)
t.ok(r.status == 200 and value_of("lim", "s", "large") == "y" * (MAX_BODY - 200),
     "a body just under max_body_size is taken whole", r)

# --- ts --------------------------------------------------------------------

TS = 1234567890123456
r = publish(rec("ts", "s", "given", "int16", 1, ts=TS))
st, a, _ = access("ts", "s", "given")
st2, mon_ts, _, _ = monitor("ts", "s", "tags=given")
t.ok(r.status == 200 and a is not None and is_num(a.get("ts"), str(TS)) and
     is_num((mon_ts.get("given") or {}).get("ts"), str(TS)),
     "a given ts (microseconds) is kept exactly", (r, a, mon_ts))
t.ok(a is not None and a.get("timestamp") == str(TS // 1000),
     "GET /tags/access gives timestamp in milliseconds as a string", a)
before = time.time()
r = publish(rec("ts", "s", "now", "int16", 1))
after = time.time()
st, a, _ = access("ts", "s", "now")
tsv = int((a or {}).get("ts") or 0)
t.ok(r.status == 200 and before * 1e6 - 3e6 <= tsv <= after * 1e6 + 3e6,
     "without ts the value is stamped now (in microseconds)",
     "ts %r, now %r" % (tsv, before * 1e6))

# --- GET /tags/list --------------------------------------------------------

LT = [("zlistA", "src2", "nm1"), ("zlistB", "src1", "nm3"),
      ("zlistC", "src3", "nm2"), ("zlistB", "src3", "nm4x")]
r = publish([rec(p, s, n, "int32", i, dataUnit="u%d" % i)
             for i, (p, s, n) in enumerate(LT)])
t.ok(r.status == 200, "list: four tags published", r)
T1, T2, T3, T4 = LT


def listq(q):
    r = d.get("/tags/list?" + q)
    j = r.json if r.status == 200 and isinstance(r.json, dict) else {}
    names = [(x.get("prvdName"), x.get("srcName"), x.get("tagName"))
             for x in j.get("data") or []]
    return r, j, names


r, j, names = listq("provider=zlist")
t.ok(r.status == 200 and names == [T1, T2, T4, T3] and j.get("total") == 4 and
     j.get("count") == 4 and j.get("limit") == 0 and j.get("offset") == 0,
     "list: default order is provider ascending; count, limit 0, offset 0, "
     "total", r)
ent = [x for x in j.get("data") or [] if x.get("tagName") == "nm4x"]
t.ok(ent == [{"prvdName": "zlistB", "srcName": "src3", "tagName": "nm4x",
              "dataType": "int32", "dataUnit": "u3", "access": "r"}],
     "list: an entry is the tag's definition", ent)
for q, want, what in [
        ("provider=zlist&order=provider&sort=asc", [T1, T2, T4, T3],
         "order=provider sort=asc"),
        ("provider=zlist&order=provider&sort=desc", [T3, T4, T2, T1],
         "order=provider sort=desc"),
        ("provider=zlist&order=source", [T2, T1, T3, T4], "order=source"),
        ("provider=zlist&order=source&sort=desc", [T4, T3, T1, T2],
         "order=source sort=desc"),
        ("provider=zlist&order=name", [T1, T3, T2, T4], "order=name"),
        ("provider=zlist&order=name&sort=desc", [T4, T2, T3, T1],
         "order=name sort=desc"),
        ("provider=zlistA,zlistC", [T1, T3], "two provider keywords"),
        ("provider=zlist&source=src3", [T4, T3], "provider and source"),
        ("source=src1,src2&provider=zlist", [T1, T2], "two source keywords"),
        ("provider=zlist&name=m4", [T4], "name substring"),
        ("provider=zlist&name=nm1,nm2", [T1, T3], "two name keywords"),
        ("provider=zlist&name=nomatch", [], "no match"),
        ("provider=listB", [T2, T4], "provider substring in the middle")]:
    r, j, names = listq(q)
    t.ok(r.status == 200 and names == want and j.get("total") == len(want) and
         j.get("count") == len(want), "list: %s" % what,
         "got %r\nwant %r\n%r" % (names, want, r))
for q, want, total in [("limit=2", [T1, T2], 4),
                       ("limit=2&offset=2", [T4, T3], 4),
                       ("limit=2&offset=3", [T3], 4),
                       ("offset=1", [T2, T4, T3], 4),
                       ("offset=10&limit=2", [], 4),
                       ("limit=1&order=name&sort=desc", [T4], 4)]:
    r, j, names = listq("provider=zlist&" + q)
    lim = int(re.search(r"limit=(\d+)", q).group(1)) if "limit" in q else 0
    off = int(re.search(r"offset=(\d+)", q).group(1)) if "offset" in q else 0
    t.ok(r.status == 200 and names == want and j.get("count") == len(want) and
         j.get("total") == total and j.get("limit") == lim and
         j.get("offset") == off, "list paging: %s" % q,
         "got %r\nwant %r\n%r" % (names, want, r))
for q, field in [("order=date", "order"), ("order=", "order"),
                 ("sort=up", "sort"), ("limit=abc", "limit"),
                 ("limit=-1", "limit"), ("limit=1.5", "limit"),
                 ("offset=x", "offset"), ("offset=-2", "offset")]:
    refused(d.get("/tags/list?" + q), 400, [field],
            "list: %s: 400 naming %s" % (q, field))

# --- GET /tags/monitor and /tags/access ------------------------------------

st, byname, recs, r = monitor("batch", "s")
t.ok(st == 200 and sorted(byname) == ["a", "b", "c"] and
     all(set(x) >= {"prvdName", "srcName", "tagName", "dataType", "dataValue",
                    "dataUnit", "ts"} for x in recs),
     "monitor: every tag of the source, as full records", r)
st, byname, recs, r = monitor("batch", "s", "tags=c,a")
t.ok(st == 200 and [x.get("tagName") for x in recs] == ["c", "a"] and
     is_num(byname["c"].get("dataValue"), "3"),
     "monitor ?tags=c,a: just those, in that order", r)
st, _, _, r = monitor("batch", "s", "tags=a,nosuch")
refused(r, 404, ["nosuch"], "monitor ?tags= with an unknown tag: 404 naming it")
st, _, _, r = monitor("batch", "nosuch")
refused(r, 404, ["batch/nosuch"], "monitor of an unknown source: 404")
st, _, _, r = monitor("nosuch", "s")
t.eq(st, 404, "monitor of an unknown provider: 404")

st, a, r = access("batch", "s", "b")
t.ok(st == 200 and a.get("prvdName") == "batch" and a.get("srcName") == "s" and
     a.get("tagName") == "b" and a.get("dataType") == "int32" and
     is_num(a.get("dataValue"), "2"), "access: read a tag", r)
refused(access("batch", "s", "nosuch")[2], 404, ["batch/s/nosuch"],
        "access: an unknown tag is 404 naming it")
t.eq(access("nosuch", "s", "b")[0], 404, "access: an unknown provider is 404")

r = publish(rec("sl", "dev/1", "a/b", "uint8", 42))
t.eq(r.status, 200, "a tag whose source and name hold '/' is published")
r = d.get("/tags/access/sl/dev%2F1/a%2Fb")
t.ok(r.status == 200 and (r.json or {}).get("data", {}).get("tagName") == "a/b"
     and (r.json or {}).get("data", {}).get("srcName") == "dev/1" and
     r.json["data"].get("dataValue") == 42,
     "access: /tags/access/sl/dev%2F1/a%2Fb reads tag a/b of source dev/1", r)
r = d.get("/tags/monitor/sl/dev%2F1?tags=a%2Fb")
t.ok(r.status == 200 and [x.get("tagName") for x in
                          (r.json or {}).get("data", [])] == ["a/b"],
     "monitor: source and tag names with '/' escaped as %2F", r)

# --- virtual tags -----------------------------------------------------------

V = {"prvdName": "virt", "srcName": "user"}


def vdef(name, typ, acc_, **kw):
    x = dict(V, tagName=name, dataType=typ, access=acc_)
    x.update(kw)
    return x


r = d.post("/tags/virtual", vdef("rw1", "int64", "rw"))
t.ok(r.status == 200 and (r.json or {}).get("data") ==
     dict(vdef("rw1", "int64", "rw"), dataUnit="", dataSize=0),
     "virtual: POST answers the definition with dataUnit \"\" and dataSize 0",
     r)
r = d.post("/tags/virtual", vdef("ro1", "string", "r", dataUnit="V",
                                 dataSize=20))
t.ok(r.status == 200 and (r.json or {}).get("data", {}).get("dataUnit") == "V"
     and r.json["data"].get("dataSize") == 20,
     "virtual: dataUnit and dataSize are kept", r)
r = d.post("/tags/virtual", vdef("wo1", "uint64", "w"))
t.eq(r.status, 200, "virtual: a w-only tag is defined")
r = d.post("/tags/virtual", vdef("keep", "double", "rw", dataUnit="m"))
t.eq(r.status, 200, "virtual: a fourth tag is defined")

x = vdef("noacc", "int32", "r")
del x["access"]
refused(d.post("/tags/virtual", x), 400, ["access"],
        "virtual: without access: 400 naming access")
refused(d.post("/tags/virtual", vdef("badt", "int128", "r")), 400,
        ["dataType"], "virtual: a bad dataType: 400 naming dataType")
refused(d.post("/tags/virtual", vdef("bada", "int32", "x")), 400,
        ["access"], "virtual: a bad access: 400 naming access")
x = vdef("nonm", "int32", "r")
del x["tagName"]
refused(d.post("/tags/virtual", x), 400, ["tagName"],
        "virtual: without tagName: 400 naming tagName")
refused(d.post("/tags/virtual", vdef("rw1", "int64", "rw")), 400,
        ["virt/user/rw1"], "virtual: a duplicate: 400")
refused(d.post("/tags/virtual", dict(prvdName="batch", srcName="s",
                                     tagName="a", dataType="int32",
                                     access="rw")),
        400, ["batch/s/a"], "virtual: the name of a published tag: 400")
t.ok(is_num(value_of("batch", "s", "a"), "1"),
     "... and the published tag is untouched", value_of("batch", "s", "a"))
r = d.post("/tags/virtual", "not json", content_type="application/json")
t.eq(r.status, 400, "virtual: malformed JSON: 400")
t.ok(access("virt", "user", "noacc")[0] == 404 and
     access("virt", "user", "badt")[0] == 404,
     "virtual: refused definitions made no tag")

r, j, names = listq("provider=virt&order=name")
acc_by = {x.get("tagName"): x.get("access") for x in j.get("data") or []}
t.ok(r.status == 200 and acc_by == {"keep": "rw", "ro1": "r", "rw1": "rw",
                                    "wo1": "w"},
     "virtual: the tags are in /tags/list with their access", r)

r = d.put("/tags/access/virt/user/rw1", {"dataValue": -9223372036854775808})
t.ok(r.status == 200, "virtual: PUT /tags/access on an rw tag: 200", r)
t.ok(is_num(value_of("virt", "user", "rw1"), "-9223372036854775808"),
     "virtual: the written value reads back exactly",
     value_of("virt", "user", "rw1"))
r = d.put("/tags/access/virt/user/rw1", {"dataType": "int64",
                                         "dataValue": 9223372036854775807})
t.ok(r.status == 200 and is_num(value_of("virt", "user", "rw1"),
                                "9223372036854775807"),
     "virtual: a write with the matching dataType is taken", r)
refused(d.put("/tags/access/virt/user/rw1", {"dataValue": "12"}), 400,
        ["dataValue"], "virtual: a string for an int64 tag: 400")
refused(d.put("/tags/access/virt/user/rw1", {"dataValue": 9223372036854775808}),
        400, ["dataValue"], "virtual: an int64 out of range: 400")
refused(d.put("/tags/access/virt/user/rw1", {"dataType": "int32",
                                             "dataValue": 1}),
        400, ["dataType"], "virtual: a write with another dataType: 400")
refused(d.put("/tags/access/virt/user/rw1", {"value": 1}), 400,
        ["dataValue"], "virtual: a write without dataValue: 400")
t.ok(is_num(value_of("virt", "user", "rw1"), "9223372036854775807"),
     "virtual: refused writes left the value alone",
     value_of("virt", "user", "rw1"))
refused(d.put("/tags/access/virt/user/ro1", {"dataValue": "x"}), 400,
        ["not writable"], "virtual: a write to an r-only tag: 400 not writable")
refused(d.put("/tags/access/batch/s/a", {"dataValue": 5}), 400,
        ["not writable"], "a write to a published (r) tag: 400 not writable")
refused(d.put("/tags/access/virt/user/nosuch", {"dataValue": 5}), 404,
        ["virt/user/nosuch"], "a write to an unknown tag: 404")
r = d.put("/tags/access/virt/user/wo1", {"dataValue": 18446744073709551615})
t.eq(r.status, 200, "virtual: a write to a w-only tag: 200")
refused(d.get("/tags/access/virt/user/wo1"), 400, ["not readable"],
        "virtual: GET /tags/access on a w-only tag: 400 not readable")
r = d.put("/tags/access/virt/user/keep", {"dataValue": 2.5})
t.ok(r.status == 200 and value_of("virt", "user", "keep") == "2.5",
     "virtual: a double written and read", r)

r = d.put("/tags/virtual", vdef("rw1", "string", "rw", dataSize=8))
t.ok(r.status == 200 and (r.json or {}).get("data", {}).get("dataType") ==
     "string", "virtual: PUT changes the dataType", r)
r, j, names = listq("provider=virt&name=rw1")
t.ok([x.get("dataType") for x in j.get("data") or []] == ["string"],
     "virtual: /tags/list shows the new dataType", r)
r = d.put("/tags/access/virt/user/rw1", {"dataValue": "now text"})
t.ok(r.status == 200 and value_of("virt", "user", "rw1") == "now text",
     "virtual: the changed tag takes a value of its new type", r)
refused(d.put("/tags/access/virt/user/rw1", {"dataValue": 5}), 400,
        ["dataValue"], "virtual: ... and refuses one of the old type")
refused(d.put("/tags/virtual", vdef("nosuch", "int8", "r")), 404,
        ["virt/user/nosuch"], "virtual: PUT of an unknown tag: 404")
refused(d.put("/tags/virtual", vdef("rw1", "int8", "rwx")), 400,
        ["access"], "virtual: PUT with a bad access: 400 naming access")

r = d.delete("/tags/virtual", body=dict(V, tagName="ro1"))
j = r.json if isinstance(r.json, dict) else {}
left = sorted(x.get("tagName") for x in j.get("data") or [])
t.ok(r.status == 200 and left == ["keep", "rw1", "wo1"] and
     j.get("count") == 3 and j.get("total") == 3 and "limit" in j and
     "offset" in j,
     "virtual: DELETE with a JSON body answers the remaining list", r)
t.eq(access("virt", "user", "ro1")[0], 404, "virtual: the deleted tag is gone")
refused(d.delete("/tags/virtual", body=dict(V, tagName="ro1")), 404,
        ["virt/user/ro1"], "virtual: DELETE of an unknown tag: 404")
refused(d.delete("/tags/virtual", body=dict(V)), 400, ["tagName"],
        "virtual: DELETE without tagName: 400 naming it")

code = d.stop()
t.eq(code, 0, "the daemon stops cleanly (exit 0)")
d.start()
r, j, names = listq("provider=virt&order=name")
got = {x.get("tagName"): (x.get("dataType"), x.get("access"), x.get("dataUnit"))
       for x in j.get("data") or []}
t.ok(got == {"keep": ("double", "rw", "m"), "rw1": ("string", "rw", ""),
             "wo1": ("uint64", "w", "")},
     "virtual: the definitions survive a restart (deleted one stays gone)", r)
st, a, r = access("virt", "user", "keep")
t.ok(st == 200 and a.get("dataValue") is None,
     "virtual: values do not survive a restart (dataValue null)", r)
r = d.put("/tags/access/virt/user/keep", {"dataValue": -1.25})
t.ok(r.status == 200 and value_of("virt", "user", "keep") == "-1.25",
     "virtual: a restored tag is writable and readable again", r)

log = d.log()
t.ok("AddressSanitizer" not in log and "runtime error" not in log,
     "no sanitizer report in the log", log[-3000:])
t.done()

# SPDX-License-Identifier: ISC
# Local MQTT ingest: records from a real mosquitto, malformed payloads
# counted and survived, writes published to the command topic, a broker
# that goes away and comes back; and the system provider's tags.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from uptest import *

t = TAP()
if not have_mosquitto():
    print("1..0 # SKIP mosquitto is not installed")
    sys.exit(0)

b = Broker()
d = Daemon(conf={
    "mqtt_ingest": "127.0.0.1:%d" % b.port,
    "mqtt_ingest_topic": "plant/tags/#",
    "mqtt_ingest_write_topic": "plant/cmd/{provider}/{source}/{tag}",
})


def metric(name):
    r = d.get("/metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), r.body.decode(), re.M)
    return float(m.group(1)) if m else None


def value(p, s, n):
    r = d.get("/tags/access/%s/%s/%s" % (p, s, n))
    return r.json["data"]["dataValue"] if r.status == 200 else None


t.ok(wait_for(lambda: metric("uplinkd_mqtt_ingest_connected") == 1),
     "the ingest client connects to the broker")

b.pub("plant/tags/a", '{"prvdName":"plc","srcName":"line1","tagName":"speed",'
      '"dataType":"int32","dataValue":1500,"dataUnit":"rpm"}')
t.ok(wait_for(lambda: value("plc", "line1", "speed") == 1500),
     "a single record arrives as a tag value")
r = d.get("/tags/list?provider=plc")
t.eq([x["tagName"] for x in r.json["data"]], ["speed"], "the tag is registered")
t.eq(r.json["data"][0]["access"], "rw",
     "with a write topic configured, MQTT tags are writable")

b.pub("plant/tags/b", '[{"prvdName":"plc","srcName":"line1","tagName":"count",'
      '"dataType":"uint64","dataValue":18446744073709551615},'
      '{"prvdName":"plc","srcName":"line1","tagName":"speed",'
      '"dataType":"int32","dataValue":1501}]')
t.ok(wait_for(lambda: value("plc", "line1", "speed") == 1501),
     "an array of records arrives")
r = d.get("/tags/access/plc/line1/count")
t.ok(b'"dataValue":18446744073709551615' in r.body,
     "a uint64 maximum arrives exactly")

before = metric("uplinkd_mqtt_ingest_malformed_total") or 0
b.pub("plant/tags/bad", "this is not json")
b.pub("plant/tags/bad", '{"prvdName":"plc","srcName":"line1","tagName":"speed",'
      '"dataType":"string","dataValue":"x"}')
t.ok(wait_for(lambda: metric("uplinkd_mqtt_ingest_malformed_total") == before + 2),
     "malformed payloads are counted")
t.ok(wait_for(lambda: "malformed" in d.log()), "and logged")
t.eq(value("plc", "line1", "speed"), 1501, "a refused payload changes nothing")
b.pub("plant/tags/c", '{"prvdName":"plc","srcName":"line1","tagName":"speed",'
      '"dataValue":1502}')
t.ok(wait_for(lambda: value("plc", "line1", "speed") == 1502),
     "ingest goes on after bad payloads; a known tag needs no dataType")
t.ok(d.alive(), "the daemon is alive")

s = b.sub("plant/cmd/#", 1, 10)
time.sleep(0.3)
r = d.put("/tags/access/plc/line1/speed", {"dataValue": 42})
t.eq(r.status, 200, "a write to an MQTT tag is accepted")
out, _ = s.communicate(timeout=15)
t.ok(out.startswith("plant/cmd/plc/line1/speed {"),
     "the write is published on the command topic", out)
t.ok('"dataValue":42' in out and '"dataType":"int32"' in out,
     "with the value and its type", out)
r = d.put("/tags/access/plc/line1/speed", {"dataValue": "fast"})
t.eq(r.status, 400, "a write of the wrong type is refused")

b.stop()
t.ok(wait_for(lambda: metric("uplinkd_mqtt_ingest_connected") == 0, 15),
     "the client notices the broker going away")
r = d.put("/tags/access/plc/line1/speed", {"dataValue": 43})
t.ok(r.status == 400 and "not connected" in r.json["error"]["message"],
     "a write while disconnected is refused with the reason", r)
t.eq(d.get("/health").status, 200, "the REST API answers while the broker is down")
b.start()
t.ok(wait_for(lambda: metric("uplinkd_mqtt_ingest_connected") == 1, 40),
     "the client reconnects when the broker is back")
b.pub("plant/tags/d", '{"prvdName":"plc","srcName":"line1","tagName":"speed",'
      '"dataType":"int32","dataValue":1600}')
t.ok(wait_for(lambda: value("plc", "line1", "speed") == 1600),
     "ingest resumes after the reconnect")

# The system provider.
r = d.get("/tags/monitor/system/status")
names = {x["tagName"]: x for x in r.json["data"]} if r.status == 200 else {}
for n in ("cpuUsage", "memoryUsage", "memoryUsed", "memoryTotal", "diskUsage",
          "uptime", "uplinkdRss"):
    t.ok(n in names and names[n]["dataValue"] is not None,
         "system tag %s has a value" % n)
t.ok(0 <= names.get("memoryUsage", {}).get("dataValue", -1) <= 100,
     "memoryUsage is a percentage")
t.ok(names.get("uplinkdRss", {}).get("dataValue", 0) > 1 << 20,
     "uplinkdRss is the daemon's resident size")
r = d.post("/tags/publish", {"prvdName": "system", "srcName": "status",
                             "tagName": "cpuUsage", "dataType": "double",
                             "dataValue": 1.0})
t.ok(r.status == 400 and "system provider" in r.json["error"]["message"],
     "system tags cannot be published to")

t.eq(d.stop(), 0, "the daemon stops cleanly")
t.done()

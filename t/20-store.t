# SPDX-License-Identifier: ISC
#
# The configuration store: what the API changed survives a clean stop and
# a kill -9 (every change answered 200 is on disk), ids are never reused,
# and a damaged config.tch stops the start with a message naming it.

import http.client
import os
import random
import shutil
import subprocess
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()
d = Daemon(https=False)
seq = [0]


def create(name=None, timeout=10):
    """POST /users; (status, id or None, name)."""
    seq[0] += 1
    name = name or "user%d" % seq[0]
    r = d.post("/users", {"name": name, "password": "pass-%s" % name},
               timeout=timeout)
    uid = None
    if r.status == 200 and isinstance(r.json, dict):
        uid = (r.json.get("data") or {}).get("id")
    return r.status, uid, name


def users():
    """{name: id} of GET /users, or None if it failed."""
    r = d.get("/users")
    if r.status != 200 or not isinstance(r.json, dict):
        return None
    return {u.get("name"): u.get("id") for u in r.json.get("data", [])}


def missing(expected, got):
    """Entries of expected {name: id} not in got, as text lines."""
    if got is None:
        return ["GET /users failed"]
    return ["%s: want id %r, got %r" % (n, i, got.get(n))
            for n, i in sorted(expected.items()) if got.get(n) != i]


def deleted(uid):
    """DELETE /users/{id} answered 200 or 204."""
    return d.delete("/users/%s" % uid).status in (200, 204)


def restart_after_kill9():
    d.kill9()
    try:
        d.start()
        return True
    except RuntimeError as e:
        t.diag(str(e))
        return False


# --- a clean stop ---------------------------------------------------------

made = {}
for i in range(5):
    st, uid, name = create()
    if st == 200:
        made[name] = uid
t.eq(len(made), 5, "five users created")
ids = sorted(made.values())
t.ok(all(isinstance(i, int) for i in ids) and len(set(ids)) == 5,
     "each has its own integer id", ids)
before = users()
r = d.get("/users/%s" % made.get("user3"))
t.eq(r.status, 200, "GET /users/{id} finds a new user")
created_at = (r.json or {}).get("data", {}).get("createdAt")
t.eq(d.stop(), 0, "SIGTERM: exit 0")
d.start()
after = users()
t.eq(after, before, "after a restart the users are there with the same ids")
r = d.get("/users/%s" % made.get("user3"))
t.eq((r.json or {}).get("data", {}).get("createdAt"), created_at,
     "a user's createdAt survives the restart")
r = d.post("/auth", {"name": "user3", "password": "pass-user3"}, token=None)
t.eq(r.status, 200, "a created user logs in with its password after restart")
st, uid, _ = create()
t.ok(st == 200 and uid is not None and uid > max(ids),
     "the next id after a restart is higher than every earlier one",
     (st, uid, ids))
if uid is not None:
    ids.append(uid)

# --- kill -9 right after the 200 ------------------------------------------

answered = dict(after or {})
for rnd in range(1, 4):
    ok_n = 0
    for i in range(20):
        st, uid, name = create()
        if st == 200:
            answered[name] = uid
            ok_n += 1
    t.eq(ok_n, 20, "round %d: 20 creates answered 200" % rnd)
    if not restart_after_kill9():
        t.ok(False, "round %d: restart after kill -9" % rnd)
        break
    t.eq(missing(answered, users()), [],
         "round %d: after kill -9 every answered user is there, same id"
         % rnd)

# --- kill -9 at a random moment, from another thread ----------------------

for rnd in range(1, 4):
    stop_at = time.time() + random.uniform(0.05, 0.4)
    pid_proc = d.proc

    def killer(p=pid_proc, when=stop_at):
        time.sleep(max(0, when - time.time()))
        try:
            p.send_signal(signal.SIGKILL)
        except OSError:
            pass

    th = threading.Thread(target=killer)
    th.start()
    n_ok = 0
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            st, uid, name = create(timeout=3)
        except (OSError, http.client.HTTPException):
            break
        if st != 200:
            break
        answered[name] = uid
        n_ok += 1
    th.join()
    d.proc.wait()
    try:
        d.start()
    except RuntimeError as e:
        t.diag(str(e))
        t.ok(False, "random kill %d: restart" % rnd)
        break
    t.eq(missing(answered, users()), [],
         "random kill %d (after %d answers): every answered user is there"
         % (rnd, n_ok))

allids = [i for i in answered.values() if i is not None]
t.eq(len(allids), len(set(allids)), "no id was given twice across kills")

# Changes other than creation survive kill -9 too.
uid = answered.get("user2")
r = d.put("/users/%s" % uid, {"email": "two@example.com"})
t.eq(r.status, 200, "PUT /users/{id} email: 200")
victim = answered.get("user4")
r = d.delete("/users/%s" % victim)
t.ok(r.status in (200, 204), "DELETE /users/{id}: 200 or 204", r)
restart_after_kill9()
r = d.get("/users/%s" % uid)
t.eq((r.json or {}).get("data", {}).get("email"), "two@example.com",
     "an answered PUT survives kill -9")
t.eq(d.get("/users/%s" % victim).status, 404,
     "an answered DELETE survives kill -9")
answered.pop("user4", None)

# --- ids are never reused ---------------------------------------------------

st, top, name = create()
t.eq(st, 200, "create a user to delete")
t.ok(deleted(top), "delete the highest id")
st, nxt, _ = create()
t.ok(st == 200 and nxt is not None and top is not None and nxt > top,
     "the next id is higher than the deleted one", (top, nxt))
t.ok(deleted(nxt), "delete the highest id again")
t.eq(d.stop(), 0, "SIGTERM after the delete")
d.start()
st, after_stop, _ = create()
t.ok(st == 200 and after_stop is not None and nxt is not None and
     after_stop > nxt,
     "after a restart the deleted id is not given again", (nxt, after_stop))
t.ok(deleted(after_stop), "delete it as well")
restart_after_kill9()
st, after_kill, _ = create()
t.ok(st == 200 and after_kill is not None and after_stop is not None and
     after_kill > after_stop,
     "after kill -9 the deleted id is not given again",
     (after_stop, after_kill))
t.eq(d.get("/users/%s" % after_stop).status, 404,
     "the deleted id stays deleted")

# --- a damaged config.tch ---------------------------------------------------

t.eq(d.stop(), 0, "stop before damaging copies of the store")
base_pw = d.admin_password


def damaged_start(what, damage):
    """Start on a copy of the datadir damaged by damage(path of config.tch)."""
    c = Daemon(start=False, https=False, unix=False)
    shutil.copytree(d.datadir, c.datadir)
    damage(os.path.join(c.datadir, "config.tch"))
    try:
        rc, out, err = run(["-d", "-f", c.conffile], timeout=15)
    except subprocess.TimeoutExpired:
        t.ok(False, "%s: the daemon did not exit (still running?)" % what)
        return
    if rc == 0:
        t.ok(False, "%s: start fails" % what, "it started:\n" + err)
        return
    t.ok(rc == 1, "%s: start fails with exit 1 (no crash)" % what,
         "exit status %r (negative: killed by signal %s)\n%s"
         % (rc, -rc if rc < 0 else "-", err))
    t.ok("config.tch" in err, "%s: the message names config.tch" % what,
         err)
    with open(os.path.join(c.datadir, "admin-password")) as f:
        t.eq(f.read().strip(), base_pw,
             "%s: the admin-password file is left alone" % what)


def garbage(path):
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(os.urandom(max(size, 4096)))


def garbage_records(path):
    # Keep the 256-byte header, ruin the bucket array and the records.
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(600)
        f.write(b"\xff" * max(size - 600, 4096))


def truncate(path):
    os.truncate(path, 300)


def not_a_file(path):
    os.unlink(path)
    os.mkdir(path)


damaged_start("random bytes", garbage)
damaged_start("header intact, records garbage", garbage_records)
damaged_start("truncated to 300 bytes", truncate)
damaged_start("config.tch is a directory", not_a_file)
if os.geteuid() != 0:
    damaged_start("config.tch unreadable", lambda p: os.chmod(p, 0))

# The original still works.
d.start()
t.eq(missing(answered, users()), [],
     "the undamaged store still has every answered user")

t.done()

# SPDX-License-Identifier: ISC
#
# The command line and the configuration file against their manual pages:
# usage() equals the SYNOPSIS of uplinkd(8), every getopt letter is
# documented, -V prints the configure.ac version, -n checks a file (and
# names file:line and the rule on errors), -n -v prints every key of
# uplinkd.conf(5) with its documented default, and the sample
# configuration file lists every key with the same default.

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

t = TAP()


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def section(text, name):
    """The lines of mdoc section name (between .Sh name and the next .Sh)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith(".Sh "):
            if inside:
                break
            inside = line[4:].strip() == name
            continue
        if inside:
            out.append(line)
    return out


def mdoc_synopsis(lines):
    """Render .Nm / .Op Fl / .Op Fl x Ar y lines as a usage line; (text,
    list of lines it could not render)."""
    words, bad = [], []
    for line in lines:
        tok = line.split()
        if not tok or line.startswith(".\\\""):
            continue
        if tok[0] == ".Nm" and len(tok) == 2 and not words:
            words.append(tok[1])
        elif tok[0] == ".Op" and len(tok) >= 3 and tok[1] == "Fl":
            inner = ["-" + tok[2]]
            rest = tok[3:]
            while rest:
                if rest[0] == "Ar" and len(rest) >= 2:
                    inner.append(rest[1])
                    rest = rest[2:]
                elif rest[0] == "Fl" and len(rest) >= 2:
                    inner.append("-" + rest[1])
                    rest = rest[2:]
                else:
                    bad.append(line)
                    break
            words.append("[" + " ".join(inner) + "]")
        else:
            bad.append(line)
    return "usage: " + " ".join(words), bad


def conf_keys_doc(text):
    """{key: rendered default} from '.It Ic key No = default' lines."""
    keys = {}
    for line in text.splitlines():
        m = re.match(r"^\.It Ic (\S+) No = (.*)$", line)
        if not m:
            continue
        tok = m.group(2).split()
        if tok == ["Qq"]:
            val = ""
        else:
            # Drop mdoc macros (Pa, Cm, Li, ...); keep the words.
            val = " ".join(w for w in tok
                           if not re.match(r"^[A-Z][a-z]$", w))
        keys[m.group(1)] = val
    return keys


def parse_dump(text):
    """{key: value} from 'key = value' lines, quotes removed."""
    vals, order = {}, []
    for line in text.splitlines():
        m = re.match(r'^([a-z_0-9]+) = (.*)$', line)
        if not m:
            continue
        v = m.group(2)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        vals[m.group(1)] = v
        order.append(m.group(1))
    return vals, order


man8_in = os.path.join(SRCDIR, "man", "uplinkd.8.in")
man5_in = os.path.join(SRCDIR, "man", "uplinkd.conf.5.in")
man5 = os.path.join(BUILDDIR, "man", "uplinkd.conf.5")
sample = os.path.join(BUILDDIR, "etc", "uplinkd.conf")
man8_text = read(man8_in)

# --- usage ---------------------------------------------------------------

want_usage, unrendered = mdoc_synopsis(section(man8_text, "SYNOPSIS"))
t.eq(unrendered, [], "the SYNOPSIS has only .Nm and .Op Fl [Ar] lines")
t.ok(want_usage.startswith("usage: uplinkd ["),
     "the SYNOPSIS renders to a usage line", want_usage)

for args, what in ((["-h"], "an unknown flag -h"),
                   (["extra"], "an operand"),
                   (["-f"], "-f without its argument")):
    rc, out, err = run(args)
    t.eq(rc, 1, "%s: exit 1" % what)
    t.eq(out, "", "%s: nothing on stdout" % what)
    lines = err.splitlines()
    t.eq(lines[-1] if lines else "", want_usage,
         "%s: stderr ends with the usage equal to the SYNOPSIS" % what)

# Every getopt letter is documented, and the SYNOPSIS has exactly them.
src = read(os.path.join(SRCDIR, "src", "uplinkd.c"))
m = re.search(r'getopt\(\s*argc\s*,\s*argv\s*,\s*"([^"]*)"\s*\)', src)
t.ok(m is not None, "src/uplinkd.c has a getopt optstring")
optstring = m.group(1) if m else ""
letters = {}
i = 0
while i < len(optstring):
    c = optstring[i]
    takes = i + 1 < len(optstring) and optstring[i + 1] == ":"
    letters[c] = takes
    i += 2 if takes else 1
t.ok(len(letters) >= 6, "the optstring has the documented flags",
     optstring)
options = section(man8_text, "DESCRIPTION")
documented = {}
for line in options:
    mm = re.match(r"^\.It Fl (\S)(?: Ar (\S+))?\s*$", line)
    if mm:
        documented[mm.group(1)] = mm.group(2) is not None
for c, takes in sorted(letters.items()):
    t.ok(c in documented, "-%s is documented with .It Fl %s" % (c, c))
    if c in documented:
        t.eq(documented[c], takes,
             "-%s: the page and getopt agree on an argument" % c)
t.eq(sorted(set(documented) - set(letters)), [],
     "the page documents no flag that getopt lacks")
syn_flags = {}
for mm in re.finditer(r"\[-([^\s\]]+)( [^\]]+)?\]", want_usage):
    if mm.group(2) is None:
        for c in mm.group(1):
            syn_flags[c] = False
    else:
        syn_flags[mm.group(1)] = True
t.eq(sorted(syn_flags.items()), sorted(letters.items()),
     "the SYNOPSIS lists every getopt letter, with its argument")

# --- -V -----------------------------------------------------------------

ac = read(os.path.join(SRCDIR, "configure.ac"))
m = re.search(r"AC_INIT\(\[?[^],]*\]?\s*,\s*\[?([^],\]]+)\]?", ac)
version = m.group(1).strip() if m else None
t.ok(version is not None, "configure.ac has an AC_INIT version")
rc, out, err = run(["-V"])
t.eq((rc, out, err), (0, "uplinkd %s\n" % version, ""),
     "-V prints 'uplinkd <version>' and exits 0")

# --- -n ------------------------------------------------------------------

d = tmpdir()


def conf(name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


good = conf("good.conf", """# a comment
datadir = /tmp/uplinkd-t-nonexistent/data   # trailing comment
pidfile = "/tmp/uplinkd-t-nonexistent/u.pid"
log_level = debug

http_listen = 127.0.0.1:1
https_listen = [::1]:8443
unix_socket = off
unix_socket_mode = 0600
max_connections = 7
max_connections = 9
""")
rc, out, err = run(["-n", "-f", good])
t.eq((rc, out), (0, "configuration OK\n"),
     "-n on a good file prints 'configuration OK', exit 0")
t.eq(err, "", "-n on a good file: nothing on stderr")
t.ok(not os.path.exists("/tmp/uplinkd-t-nonexistent"),
     "-n creates nothing")
rc, out, err = run(["-n", "-v", "-f", good])
vals, order = parse_dump(out)
t.eq(rc, 0, "-n -v on a good file exits 0")
t.ok(out.endswith("configuration OK\n"),
     "-n -v prints the configuration, then 'configuration OK'")
t.eq((vals.get("max_connections"), vals.get("log_level"),
      vals.get("https_listen"), vals.get("unix_socket_mode"),
      vals.get("datadir"), vals.get("unix_socket")),
     ("9", "debug", "[::1]:8443", "0600",
      "/tmp/uplinkd-t-nonexistent/data", "off"),
     "-n -v prints the values of the file (the last of a key given twice)")
dump = conf("dump.conf", out.replace("configuration OK\n", ""))
rc2, out2, err2 = run(["-n", "-v", "-f", dump])
t.eq((rc2, out2), (0, out), "the printed configuration reads back the same")

# Quotes keep '#' and blanks; a comment may follow the closing quote.
p = conf("quoted.conf", 'datadir = "/tmp/a b#c"   # comment\n'
         '  # indented comment\n\tlog_level=warning\n')
rc, out, err = run(["-n", "-v", "-f", p])
vals, _ = parse_dump(out)
t.eq((rc, vals.get("datadir"), vals.get("log_level")),
     (0, "/tmp/a b#c", "warning"),
     "a quoted value keeps '#' and blanks; 'key=value' needs no blanks")

# Relative paths are taken from the directory the daemon started in.
rel = conf("rel.conf", "datadir = rel/data\npidfile = u.pid\n")
rc, out, err = run(["-n", "-v", "-f", rel], cwd=d)
vals, _ = parse_dump(out)
t.eq((vals.get("datadir"), vals.get("pidfile")),
     (os.path.join(os.path.realpath(d), "rel", "data"),
      os.path.join(os.path.realpath(d), "u.pid")),
     "relative paths are made absolute from the working directory")

bad_cases = [
    ("unknown key", "log_level = info\n\nno_such_key = 1\n", 3,
     ["no_such_key", "unknown key"]),
    ("bad number", "max_connections = 0\n", 1,
     ["max_connections", "1 to 65536"]),
    ("number with junk", "idle_timeout = 10s\n", 1,
     ["idle_timeout", "integer"]),
    ("negative number", "request_timeout = -5\n", 1,
     ["request_timeout", "integer"]),
    ("number too large", "max_body_size = 268435457\n", 1,
     ["max_body_size", "1024 to 268435456"]),
    ("bad level", "# x\nlog_level = loud\n", 2,
     ["log_level", "warning, info, debug"]),
    ("bad mode", "unix_socket_mode = 0999\n", 1,
     ["unix_socket_mode", "octal"]),
    ("mode out of range", "unix_socket_mode = 01777\n", 1,
     ["unix_socket_mode", "0777"]),
    ("host name in listen", "http_listen = localhost:59000\n", 1,
     ["http_listen", "numeric"]),
    ("port 0 in listen", "https_listen = 0.0.0.0:0\n", 1,
     ["https_listen", "1 to 65535"]),
    ("port too large in listen", "http_listen = 127.0.0.1:65536\n", 1,
     ["http_listen", "1 to 65535"]),
    ("listen without port", "http_listen = 127.0.0.1\n", 1,
     ["http_listen", "address:port"]),
    ("unterminated quote", 'datadir = "/var/lib/x\n', 1,
     ["unterminated"]),
    ("text after a quoted value", 'datadir = "/x" y\n', 1,
     ["after the quoted value"]),
    ("no equals sign", "log_level info\n", 1, ["key = value"]),
    ("empty datadir", 'datadir = ""\n', 1, ["datadir", "empty"]),
]
for name, text, line, words in bad_cases:
    p = conf("bad-%s.conf" % re.sub(r"\W+", "-", name), text)
    rc, out, err = run(["-n", "-f", p])
    t.eq(rc, 1, "-n, %s: exit 1" % name)
    ok = ("%s:%d:" % (p, line)) in err and all(w in err for w in words)
    t.ok(ok and "configuration OK" not in out,
         "-n, %s: names %s:%d and the rule" % (name, os.path.basename(p),
                                               line),
         "stdout: %r\nstderr: %r" % (out, err))

missing = os.path.join(d, "missing.conf")
rc, out, err = run(["-n", "-f", missing])
t.eq(rc, 1, "-n with a missing file given by -f: exit 1")
t.ok(missing in err and "No such file" in err,
     "... naming the file and the cause", err)

# -n also checks the certificate and key the file names.
p = conf("tls-half.conf", "tls_cert = %s\n" % os.path.join(d, "c.pem"))
rc, out, err = run(["-n", "-f", p])
t.ok(rc == 1 and "tls_key" in err and "configuration OK" not in out,
     "-n: tls_cert without tls_key: exit 1 naming tls_key", err)
nocert = os.path.join(d, "nonexistent-cert.pem")
p = conf("tls-missing.conf", "tls_cert = %s\ntls_key = %s\n"
         % (nocert, os.path.join(d, "nonexistent-key.pem")))
rc, out, err = run(["-n", "-f", p])
t.ok(rc == 1 and "nonexistent-" in err and "configuration OK" not in out,
     "-n: a missing certificate file: exit 1 naming it", err)

# A bad file stops a real start too (not only -n).
p = conf("bad-start.conf", "datadir = %s\nlog_level = loud\n"
         % os.path.join(d, "never"))
rc, out, err = run(["-d", "-f", p], timeout=15)
t.ok(rc == 1 and ("%s:2:" % p) in err and
     not os.path.exists(os.path.join(d, "never")),
     "a start with a bad file exits 1 naming file:line, creating nothing",
     err)

# --- -n -v: every key and default against uplinkd.conf(5) ----------------

doc_in = conf_keys_doc(read(man5_in))
t.ok(len(doc_in) >= 10, "uplinkd.conf.5.in documents the keys", doc_in)
doc_built = conf_keys_doc(read(man5)) if os.path.exists(man5) else {}
t.eq(sorted(doc_built), sorted(doc_in),
     "the built uplinkd.conf.5 has the same keys as its source")
for k, v in doc_built.items():
    if "@" in v:
        t.ok(False, "built page still has a placeholder for %s: %s" % (k, v))

rc, out, err = run(["-n", "-v", "-f", "/dev/null"])
t.eq(rc, 0, "-n -v -f /dev/null exits 0")
defaults, order = parse_dump(out)
t.eq(len(order), len(set(order)), "-n -v prints each key once")
t.eq(sorted(set(defaults) - set(doc_in)), [],
     "every key -n -v prints is documented in uplinkd.conf(5)")
t.eq(sorted(set(doc_in) - set(defaults)), [],
     "every documented key is printed by -n -v")
for k in order:
    if k in doc_built:
        t.eq(defaults[k], doc_built[k],
             "default of %s equals the manual page" % k)

# --- the sample configuration file ---------------------------------------

t.ok(os.path.exists(sample), "the built sample etc/uplinkd.conf exists")
rc, out, err = run(["-n", "-f", sample])
t.eq((rc, out), (0, "configuration OK\n"), "the sample passes -n", )
stext = read(sample) if os.path.exists(sample) else ""
commented = {}
for line in stext.splitlines():
    m = re.match(r"^#\s*([a-z_0-9]+)\s*=\s*(.*?)\s*$", line)
    if m:
        v = m.group(2)
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        commented[m.group(1)] = v
t.eq(sorted(set(doc_in) - set(commented)), [],
     "the sample lists every documented key as '#key = default'")
t.eq(sorted(set(commented) - set(doc_in)), [],
     "the sample lists no undocumented key")
diff = ["%s: sample %r, manual %r" % (k, commented[k], doc_built.get(k))
        for k in sorted(commented) if commented[k] != doc_built.get(k)]
t.eq(diff, [], "the sample's defaults equal the manual page's")

# Uncommented, the sample is a valid file that changes nothing.
uncommented = conf("sample-on.conf", "".join(
    re.sub(r"^#\s*([a-z_0-9]+\s*=)", r"\1", line) + "\n"
    for line in stext.splitlines()))
rc, out2, err2 = run(["-n", "-v", "-f", uncommented])
t.eq(rc, 0, "the sample with every key uncommented passes -n", )
t.eq(parse_dump(out2)[0], defaults,
     "... and gives the same configuration as no file", )

t.done()

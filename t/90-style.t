# SPDX-License-Identifier: ISC
#
# House style over the C sources git tracks: tabs for indentation, no
# trailing blanks, a final newline, at most 80 columns (tabs at 8), the
# SPDX line first in every .c file, and none of sprintf, strcpy, strcat,
# gets.  Each offender is reported as file:line.

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "lib"))
from uptest import *  # noqa: E402,F401,F403

SPDX = "/* SPDX-License-Identifier: ISC */"
BANNED = re.compile(r"\b(sprintf|strcpy|strcat|gets)\s*\(")


def git(*args):
    return subprocess.run(["git", "-C", SRCDIR] + list(args),
                          capture_output=True, text=True, timeout=30)


def skip_all(why):
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


try:
    top = git("rev-parse", "--show-toplevel")
except (OSError, subprocess.TimeoutExpired):
    skip_all("not a git checkout")
# A tarball unpacked inside some other checkout is not a checkout itself.
if top.returncode != 0 or \
        os.path.realpath(top.stdout.strip()) != os.path.realpath(SRCDIR):
    skip_all("not a git checkout")
ls = git("ls-files", "-z", "--", "*.c", "*.h")
files = sorted(f for f in ls.stdout.split("\0") if f)

t = TAP()
t.ok(ls.returncode == 0 and len(files) > 0, "git lists the C sources",
     ls.stderr)


def strip_comments_and_strings(text):
    """The C text with comments, string and character literals blanked
    (newlines kept, so line numbers stay)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def columns(line):
    col = 0
    for ch in line:
        col = (col // 8 + 1) * 8 if ch == "\t" else col + 1
    return col


offenders = {k: [] for k in ("spaces", "trailing", "newline", "long",
                              "spdx", "banned", "unreadable")}
for f in files:
    path = os.path.join(SRCDIR, f)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        offenders["unreadable"].append("%s: %s" % (f, e))
        continue
    text = raw.decode("utf-8", errors="replace")
    if raw and not raw.endswith(b"\n"):
        offenders["newline"].append("%s:%d" % (f, text.count("\n") + 1))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for no, line in enumerate(lines, 1):
        if line.startswith(" " * 8):
            offenders["spaces"].append("%s:%d" % (f, no))
        if line != line.rstrip(" \t\r\f\v"):
            offenders["trailing"].append("%s:%d" % (f, no))
        if columns(line) > 80:
            offenders["long"].append("%s:%d (%d columns)"
                                     % (f, no, columns(line)))
    if f.endswith(".c") and (not lines or lines[0] != SPDX):
        offenders["spdx"].append("%s:1" % f)
    code = strip_comments_and_strings(text)
    for no, line in enumerate(code.split("\n"), 1):
        m = BANNED.search(line)
        if m:
            offenders["banned"].append("%s:%d %s(" % (f, no, m.group(1)))

checks = [
    ("spaces", "indentation is tabs (no line starts with 8 spaces)"),
    ("trailing", "no trailing whitespace"),
    ("newline", "every file ends with a newline"),
    ("long", "no line is longer than 80 columns (tabs at 8)"),
    ("spdx", "every .c file starts with '%s'" % SPDX),
    ("banned", "no sprintf(, strcpy(, strcat( or gets( calls"),
    ("unreadable", "every tracked C file can be read"),
]
for key, name in checks:
    t.ok(not offenders[key], name, "\n".join(offenders[key]))

t.done()

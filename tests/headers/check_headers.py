#!/usr/bin/env python3
"""Every header compiles on its own, twice in one file (include guard), with the
flags of the code next to it: the compile command meson wrote into
compile_commands.json for a source in the header's folder (the folder's most
common command, i.e. its library's), so the project's warnings and -Werror
apply. Public headers (include/) take the flags of the library, model/lib/.

The headers are found by listing include/, model/, server/ and cli/ (with their
subfolders) when the test runs, so a new header is checked without being
named anywhere.

The umbrella header include/charrnn/charrnn.h includes every public header of
include/charrnn/: one that is missing there (or an include of a header that
does not exist) fails the test.

usage: check_headers.py SOURCE_ROOT BUILD_ROOT
"""
import collections
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

FOLDERS = ("include", "model", "server", "cli")
# Folders without sources of their own compile like this one.
FLAGS_OF = {"include": os.path.join("model", "lib")}


def headers(src):
    for top in FOLDERS:
        for d, _, files in os.walk(os.path.join(src, top)):
            for f in sorted(files):
                if f.endswith(".h"):
                    yield os.path.join(d, f)


def commands(src, build):
    """Folder -> (directory, argv): the most common command among its sources."""
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    by_dir = collections.defaultdict(collections.Counter)
    cwd = {}
    for e in entries:
        path = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if not path.startswith(src + os.sep) or path.startswith(build + os.sep):
            continue  # generated sources
        argv = shlex.split(e["command"]) if "command" in e else e["arguments"]
        flags = []
        skip = False
        for a in argv:
            if skip:
                skip = False
            elif a in ("-o", "-c", "-MQ", "-MF", "-MT"):
                skip = True
            elif a in ("-MD", "-MMD") or a == e["file"]:
                continue
            else:
                flags.append(a)
        key = tuple(flags)
        by_dir[os.path.dirname(path)][key] += 1
        cwd[key] = e["directory"]
    return {d: (cwd[c.most_common(1)[0][0]], list(c.most_common(1)[0][0]))
            for d, c in by_dir.items()}


def flags_for(header, src, cmds):
    d = os.path.dirname(header)
    rel = os.path.relpath(d, src)
    top = rel.split(os.sep)[0]
    if top in FLAGS_OF:
        d = os.path.join(src, FLAGS_OF[top])
    while d.startswith(src):
        if d in cmds:
            return cmds[d]
        d = os.path.dirname(d)
    return None


def check(header, src, cmds, tmp):
    rel = os.path.relpath(header, src)
    cmd = flags_for(header, src, cmds)
    if cmd is None:
        return rel, "no compile command for a source near this header"
    cwd, argv = cmd
    tu = os.path.join(tmp, rel.replace(os.sep, "_") + ".c")
    with open(tu, "w") as f:
        f.write('#include "%s"\n#include "%s"\n' % (header, header))
    p = subprocess.run(argv + ["-fdiagnostics-color=never", "-fsyntax-only", "-x", "c", tu], cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return rel, (p.stdout or "exit status %d" % p.returncode) if p.returncode else None


UMBRELLA = os.path.join("include", "charrnn", "charrnn.h")
INCLUDE = re.compile(r'^\s*#\s*include\s+"charrnn/([^"]+)"', re.M)


def umbrella_problems(src):
    """What charrnn.h misses of include/charrnn/, and what it names that is not there."""
    folder = os.path.join(src, "include", "charrnn")
    public = {f for f in os.listdir(folder) if f.endswith(".h")} - {"charrnn.h"}
    try:
        with open(os.path.join(src, UMBRELLA)) as f:
            named = set(INCLUDE.findall(f.read()))
    except OSError as e:
        return ["%s: %s" % (UMBRELLA, e)]
    return (["%s does not include \"charrnn/%s\": the umbrella header includes every public "
             "header" % (UMBRELLA, h) for h in sorted(public - named)] +
            ["%s includes \"charrnn/%s\", which is not a header of include/charrnn/"
             % (UMBRELLA, h) for h in sorted(named - public)])


def main():
    src, build = (os.path.realpath(a) for a in sys.argv[1:3])
    cmds = commands(src, build)
    found = list(headers(src))
    umbrella = umbrella_problems(src)
    for problem in umbrella:
        print("FAIL " + problem)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda h: check(h, src, cmds, tmp), found))
    failed = [(rel, out) for rel, out in results if out]
    for rel, out in failed:
        print("FAIL %s:\n%s" % (rel, out))
    print("%d headers, %d compile on their own" % (len(found), len(found) - len(failed)))
    return 1 if failed or umbrella or not found else 0


if __name__ == "__main__":
    sys.exit(main())

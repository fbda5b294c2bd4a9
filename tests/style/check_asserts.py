#!/usr/bin/python3
"""No assert statement in the Python tests: `python3 -O` removes them, and a
test whose checks vanish passes. Tests call check() (tests/lib/checks.py) or
their own counting helper instead. Benchmarks (tests/bench) report figures
and may keep theirs.

    check_asserts.py SOURCE_ROOT

Prints each assert statement found (file:line); exit status 1 if any."""
import ast
import os
import sys

root = sys.argv[1]
tests = os.path.join(root, "tests")
found = []
for d, dirs, files in os.walk(tests):
    dirs[:] = sorted(x for x in dirs if x not in ("bench", "node_modules", "__pycache__"))
    for f in sorted(files):
        if not f.endswith(".py"):
            continue
        path = os.path.join(d, f)
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        found += ["%s:%d" % (os.path.relpath(path, root), n.lineno)
                  for n in ast.walk(tree) if isinstance(n, ast.Assert)]
for f in found:
    print("assert statement (python3 -O removes it; use check()): " + f)
print("%d assert statements in tests/" % len(found))
sys.exit(1 if found else 0)

#!/usr/bin/python3
"""/inspect against /score on the same text, from a running charrnn-serve
(started with --max-score-chars at least CHARS): both read the text once
through the same forward pass, /inspect handing 8 units' states to its
recorder (or, with "find", summing every unit against five features).
Reports the median wall time of each over REPS requests, one at a time,
and the ratios (docs/benchmarks.md).

usage: bench_inspect.py PORT TEXT_FILE [CHARS=10000] [REPS=7]"""
import json
import statistics
import sys
import time
import urllib.request

PORT, PATH = sys.argv[1], sys.argv[2]
CHARS = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
REPS = int(sys.argv[4]) if len(sys.argv) > 4 else 7
text = open(PATH, encoding="utf-8").read()[-CHARS:]


def post(path, body):
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (PORT, path), json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        data = r.read()
    return time.perf_counter() - t0, len(data)


cases = [("/score", {"text": text}),
         ("/inspect 8 units", {"text": text, "layer": 2, "units": list(range(8))}),
         ("/inspect find", {"text": text, "find": ["line_position", "word_position", "quote",
                                                   "bracket_depth", "indent"]})]
res = {}
for _ in range(REPS):
    for name, body in cases:
        t, n = post(name.split()[0], body)
        res.setdefault(name, []).append((t, n))
base = statistics.median(t for t, _ in res["/score"])
for name, _ in cases:
    med = statistics.median(t for t, _ in res[name])
    print("%-18s %8.1f ms  %9d bytes  %.2fx /score" % (name, med * 1e3, res[name][0][1], med / base))

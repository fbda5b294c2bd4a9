#!/usr/bin/python3
"""GET /models against the number of models: milliseconds per answer and
microseconds per model, for N models in one run (a linear answer keeps the
per-model figure flat; it grew with N while the default model was looked up
once per entry).

usage: tests/bench/models_list_bench.py CHARRNN_SERVE [N...]   (default 250 1000 4000)
The models are 1-byte files: listed, unavailable, cheap to load.
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def measure(serve, n):
    d = tempfile.mkdtemp(prefix="models-bench-")
    try:
        for i in range(n):
            with open(os.path.join(d, "m%05d.safetensors" % i), "w") as f:
                f.write("x")
        p = subprocess.Popen([serve, "--models", d, "--listen", "127.0.0.1:0",
                              "--poll-interval", "0", "--access-log", "off"],
                             stderr=subprocess.PIPE)
        port = None
        while port is None:
            m = re.search(r'"addr":"127\.0\.0\.1:(\d+)"', p.stderr.readline().decode())
            port = int(m.group(1)) if m else None
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            c.request("GET", "/models")
            body = c.getresponse().read()
            ts.append(time.perf_counter() - t0)
        assert len(json.loads(body)["models"]) == n
        p.terminate()
        p.wait()
        return sorted(ts)[2]
    finally:
        shutil.rmtree(d)


def main():
    serve = sys.argv[1]
    sizes = [int(a) for a in sys.argv[2:]] or [250, 1000, 4000]
    print("%8s %12s %14s" % ("models", "median ms", "us per model"))
    for n in sizes:
        t = measure(serve, n)
        print("%8d %12.1f %14.1f" % (n, 1e3 * t, 1e6 * t / n), flush=True)


if __name__ == "__main__":
    main()

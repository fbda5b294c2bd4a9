#!/usr/bin/python3
"""Does a wrong API key's answer take the same time whatever is wrong in it?

Starts charrnn-serve with a key file of --keys keys and times 401 answers
(GET /models, one keep-alive connection) for keys of the right length that
are wrong in their first byte, wrong in their last byte, and wrong in every
byte, interleaved in rounds; prints each median and its ratio to the first.
A leak would show as the last-byte case taking longer (a comparison that
stops at the first difference runs further into a key that is almost right).
The valid key's 200 is timed too, for scale. Nothing is asserted.

The one command (from the source root, after `meson compile -C build`):

    tests/bench/bench_auth.py --build build

usage: bench_auth.py [--build build] [--models deploy/models] [--rounds 20000] [--keys 100]"""
import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--models", default=os.path.join(HERE, "..", "..", "deploy", "models"))
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--keys", type=int, default=100)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-auth-")
    keyfile = os.path.join(work, "keys")
    keys = ["sk-%040x" % (0x1234567 * (i + 1)) for i in range(a.keys)]
    with open(keyfile, "w") as f:
        f.write("".join("k%d:%s\n" % (i, k) for i, k in enumerate(keys)))
    proc = subprocess.Popen([os.path.join(a.build, "server", "charrnn-serve"), "--models",
                             a.models, "--listen", "127.0.0.1:0", "--access-log", "off",
                             "--api-key-file", keyfile], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        o = json.loads(line)
        if o.get("msg") == "listening":
            port = int(o["addr"].rsplit(":", 1)[1])
            break
    try:
        target = keys[a.keys // 2]
        cases = {"first byte wrong": "X" + target[1:], "last byte wrong": target[:-1] + "X",
                 "every byte wrong": "Y" * len(target), "valid (200)": target}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        times = {k: [] for k in cases}
        names = list(cases)
        rng = random.Random(1)
        for rnd in range(a.rounds):
            # a new order every round: a request's time depends on the one
            # before it (after the 200's large body the next 401 was ~40 us
            # faster whatever its key), which a fixed or rotated order turns
            # into a difference between the cases
            rng.shuffle(names)
            for name in names:
                key = cases[name]
                t0 = time.perf_counter()
                c.request("GET", "/models",
                          headers={"Authorization": "Bearer " + key})
                r = c.getresponse()
                r.read()
                times[name].append(time.perf_counter() - t0)
                want = 200 if name.startswith("valid") else 401
                if r.status != want:
                    raise SystemExit("%s: HTTP %d" % (name, r.status))
        first = statistics.median(times["first byte wrong"])
        print("%d keys in the file, %d rounds, median per request:" % (a.keys, a.rounds))
        for name, ts in times.items():
            m = statistics.median(ts)
            print("  %-18s %8.1f us   %.3fx of first byte wrong" % (name, m * 1e6, m / first))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())

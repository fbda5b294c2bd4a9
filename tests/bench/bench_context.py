#!/usr/bin/python3
"""Context at interactive latency: charrnn-serve with its prefix-state cache
against the same daemon with --state-cache-mb 0, measured in the same run.

1. Time to the first character against prime length (100 .. 10,000
   characters of TEXT): POST /sample with length 1, one request at a time,
   wall clock at the client, the median of --repeat requests. Per length:
   --baseline-serve if given (a daemon from before the prefill and the cache,
   stepping every prime character), the daemon without cache (every request
   reads its prime, layer by layer), the cached daemon cold (a prime it has not
   seen; each repeat a different prime) and warm (the same prime again).
   1b. POST /score of 10,000 characters on the daemons without cache.
2. A writing session: a writer types --keystrokes characters of TEXT one at a
   time and after each one asks for a 20-character suggestion of the text so
   far (temperature 0), as an autocomplete client does; 1 and 16 writers at
   once, each at its own place in TEXT. Mean and p99 latency per keystroke.
   Without the cache every keystroke rereads the whole text, so that daemon
   is measured on every --ref-every'th keystroke only (the same prime lengths,
   spread over the session).
3. A cold 10,000-character prime, stepped against prefilled, in the library
   alone (tests/bench/prefill_bench: each on one thread and with the rows
   split over two, as the daemon runs a lone stream; medians of 3 interleaved
   rounds and the sums of each 64-character piece's fastest round, same state
   bytes checked), for the checkpoint's dtype.

Every figure is printed next to its reference and their ratio. Nothing is
asserted: the machine may be shared and noisy.

The one command (from the source root, after `meson compile -C build`):

    tests/bench/bench_context.py --build build TEXT

usage: bench_context.py [--build build] [--model deploy/models/shakespeare.safetensors]
                        [--keystrokes 2000] [--ref-every 20] [--repeat 3]
                        [--writers 1,16] [--baseline-serve BIN] TEXT"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LENGTHS = (100, 1000, 5000, 10000)


class Daemon:
    def __init__(self, build, models, *flags, serve=None):
        args = [serve or os.path.join(build, "server", "charrnn-serve"), "--models", models,
                "--listen", "127.0.0.1:0", "--access-log", "off", "--max-prime", "20000",
                "--max-body", "1048576", "--default-model", "m"] + list(flags)
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            o = json.loads(line)
            if o.get("msg") == "listening":
                self.port = int(o["addr"].rsplit(":", 1)[1])
                break
        else:
            raise SystemExit("the daemon did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class Client:
    """One keep-alive connection."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def sample(self, prime, length, **kw):
        body = json.dumps(dict(prime=prime, length=length, temperature=0, seed=1, **kw))
        t0 = time.perf_counter()
        self.c.request("POST", "/sample", body=body, headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            raise SystemExit("HTTP %d: %s" % (r.status, data[:200]))
        return dt, json.loads(data)


def ms(x):
    return "%8.1f" % (x * 1e3)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


def prime_table(text, daemons, repeat):
    """daemons: [(name, daemon)]; the last one has the cache (cold, then warm)."""
    print("\n1. time to the first character (length 1, one request at a time), ms")
    names = [n for n, _ in daemons[:-1]] + ["cold", "warm"]
    print("%8s" % "prime" + "".join("%12s" % n for n in names) +
          "".join("%14s" % ("%s/%s" % (names[0], n)) for n in names[1:]))
    rows = []
    for n in LENGTHS:
        t = {k: [] for k in names}
        for r in range(repeat):
            p = text[7919 * (r + 1) + n:][:n]  # another prime per repeat: cold stays cold
            for name, d in daemons[:-1]:
                t[name].append(Client(d.port).sample(p, 1)[0])
            c = Client(daemons[-1][1].port)
            t["cold"].append(c.sample(p, 1)[0])
            dt, body = c.sample(p, 1)
            t["warm"].append(dt)
            if body["usage"]["cached_chars"] != n:
                raise SystemExit("warm request did not resume: %s" % body["usage"])
        med = {k: statistics.median(v) for k, v in t.items()}
        rows.append(dict({"prime": n}, **{k + "_ms": v * 1e3 for k, v in med.items()}))
        print("%8d" % n + "".join("%12.1f" % (med[k] * 1e3) for k in names) +
              "".join("%13.1fx" % (med[names[0]] / med[k]) for k in names[1:]))
    return rows


def score_table(text, daemons, repeat):
    print("\n1b. POST /score of 10,000 characters (cold: a new text each time), ms")
    row = {}
    for name, d in daemons:
        ts = []
        for r in range(repeat):
            t = text[104729 * (r + 1):][:10000]
            t0 = time.perf_counter()
            c = Client(d.port)
            c.c.request("POST", "/score", body=json.dumps({"text": t}),
                        headers={"Content-Type": "application/json"})
            resp = c.c.getresponse()
            resp.read()
            ts.append(time.perf_counter() - t0)
            if resp.status != 200:
                raise SystemExit("/score: HTTP %d" % resp.status)
        row[name + "_ms"] = statistics.median(ts) * 1e3
    first = daemons[0][0] + "_ms"
    print("".join("%14s %8.1f" % (k, v) for k, v in row.items()) +
          "".join("   %s/%s %.2fx" % (daemons[0][0], k[:-3], row[first] / v)
                  for k, v in row.items() if k != first))
    return row


def writer(port, text, start, keystrokes, every, lat, errs):
    c = Client(port)
    try:
        for k in range(1, keystrokes + 1):
            if k % every:
                continue
            dt, _ = c.sample(text[start:start + k], 20)
            lat.append(dt)
    except Exception as e:  # noqa: BLE001 - reported with the figures
        errs.append(repr(e))


def session(port, text, writers, keystrokes, every):
    lat, errs, th = [], [], []
    for w in range(writers):
        start = (w * 48271) % (len(text) - keystrokes - 1)
        th.append(threading.Thread(target=writer,
                                   args=(port, text, start, keystrokes, every, lat, errs)))
    t0 = time.perf_counter()
    for t in th:
        t.start()
    for t in th:
        t.join()
    return lat, errs, time.perf_counter() - t0


def session_table(text, plain, cached, writer_counts, keystrokes, every):
    print("\n2. writing session: %d keystrokes per writer, a 20-character suggestion after "
          "each, ms" % keystrokes)
    print("%8s %12s %10s %10s %12s %10s %10s" % ("writers", "", "mean", "p99", "requests",
                                                 "errors", "seconds"))
    rows = []
    for n in writer_counts:
        ref, rerr, rsec = session(plain.port, text, n, keystrokes, every)
        got, gerr, gsec = session(cached.port, text, n, keystrokes, 1)
        for name, lat, err, sec in (("no cache", ref, rerr, rsec), ("cache", got, gerr, gsec)):
            print("%8d %12s %s   %s %12d %10d %10.1f" % (n, name, ms(statistics.mean(lat)),
                                                        ms(p99(lat)), len(lat), len(err), sec))
        ratio_mean = statistics.mean(ref) / statistics.mean(got)
        ratio_p99 = p99(ref) / p99(got)
        print("%8d %12s %9.1fx  %9.1fx" % (n, "no/cache", ratio_mean, ratio_p99))
        rows.append({"writers": n, "no_cache_mean_ms": statistics.mean(ref) * 1e3,
                     "no_cache_p99_ms": p99(ref) * 1e3, "cache_mean_ms": statistics.mean(got) * 1e3,
                     "cache_p99_ms": p99(got) * 1e3, "errors": len(rerr) + len(gerr)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("text")
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "deploy", "models",
                                                    "shakespeare.safetensors"))
    ap.add_argument("--keystrokes", type=int, default=2000)
    ap.add_argument("--ref-every", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--writers", default="1,16")
    ap.add_argument("--baseline-serve", help="a charrnn-serve from before the prefill and the "
                    "cache (e.g. built from f3725bd): measured in the same run as a reference")
    a = ap.parse_args()
    with open(a.text, encoding="utf-8") as f:
        text = f.read()
    if len(text) < 200000:
        raise SystemExit("TEXT needs at least 200,000 characters")
    work = tempfile.mkdtemp(prefix="bench-context-")
    try:
        models = os.path.join(work, "models")
        os.mkdir(models)
        shutil.copyfile(a.model, os.path.join(models, "m.safetensors"))
        pb = subprocess.run([os.path.join(a.build, "tests", "bench", "prefill_bench"), a.model,
                             a.text, "10000", "1", "3"], stdout=subprocess.PIPE, text=True)
        base = Daemon(a.build, models, serve=a.baseline_serve) if a.baseline_serve else None
        plain = Daemon(a.build, models, "--state-cache-mb", "0")
        cached = Daemon(a.build, models)
        daemons = ([("baseline", base)] if base else []) + [("no cache", plain), ("cache", cached)]
        try:
            for _, d in daemons:  # page the weights in, start the workers
                Client(d.port).sample(text[-3000:], 50)
            result = {"model": os.path.basename(a.model),
                      "prime": prime_table(text, daemons, a.repeat),
                      "score": score_table(text, daemons[:-1], a.repeat),
                      "session": session_table(text, plain, cached,
                                               [int(x) for x in a.writers.split(",")],
                                               a.keystrokes, a.ref_every)}
        finally:
            for _, d in daemons:
                d.stop()
        print("\n3. library, 1 and 2 threads: " + pb.stdout.strip())
        result["prefill"] = json.loads(pb.stdout) if pb.returncode == 0 else pb.stdout
        print("\n" + json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

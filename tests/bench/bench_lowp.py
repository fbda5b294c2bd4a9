#!/usr/bin/python3
"""Reduced precision and one stream on every core, side by side in one run:

* the machine's read bandwidth (tests/bench/read_bw: a STREAM-style read of
  an array the size of what one step reads, 1 core and all cores);
* LSTM 3x512 (V = 65), one stream, f32 / bf16 / int8: the step alone
  (tests/bench/stream_bench, the stepping thread alone and with the rows
  split across every core) and served (charrnn-serve, 1 client), each as
  chars/s, x PyTorch, and weight bytes x chars/s against the bandwidth;
* PyTorch's single-stream loop on the same f32 checkpoint
  (tests/bench/torch_sample.py), the best of 1..nproc threads;
* the default model (deploy/models/shakespeare.safetensors, 2x512) served
  to 64 clients (`load_client PORT 64 10 200`) in f32, bf16 and int8;
* resident memory each loaded model takes, by dtype.

The 3x512 checkpoint is trained for 2 iterations (speed does not depend on
the weights) and converted with charrnn-convert. Timing only: nothing is
asserted. The machine may be shared: say so with the figures.

With --baseline-build DIR (a build of the code before this work, e.g. of
`git archive main`), that charrnn-serve is measured too, in the same run: the
3x512 f32 single stream and the default model at 64 clients.

The machine's own limit is printed with the figures: a single stream can go
no faster than the all-core read bandwidth divided by the bytes one step
reads, whatever the code does.

Every measurement is repeated (--repeat rounds, each running everything once,
every other round in reverse order, so a neighbour's burst on a shared
machine hits all of them alike) and the median is reported.

usage: tests/bench/bench_lowp.py [--build build] [--seconds 5] [--serve-seconds 10]
                                 [--repeat 3] [--baseline-build DIR]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bench_serve  # noqa: E402  (Daemon, train, machine)

DTYPES = ("f32", "bf16", "int8")


def run_json(args):
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def convert(build, src, dt, dst):
    subprocess.run([os.path.join(build, "cli", "charrnn-convert"), "--dtype", dt, src, dst],
                   check=True, stdout=subprocess.DEVNULL)


def served(build, ckpt, clients, seconds, length, extra=(), daemon_build=None):
    """chars/s of charrnn-serve (default flags + extra; from daemon_build if given) over the one
    model in ckpt's directory, driven by build's load_client."""
    d = bench_serve.Daemon(daemon_build or build, os.path.dirname(ckpt), list(extra))
    try:
        with open("/proc/%d/status" % d.proc.pid) as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
        r = run_json([os.path.join(build, "tests", "bench", "load_client"), str(d.port),
                      str(clients), str(seconds), str(length)])
    finally:
        d.stop()
    r["daemon_rss"] = rss
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=5.0, help="per step-alone and PyTorch run")
    ap.add_argument("--serve-seconds", type=float, default=10.0, help="per served run")
    ap.add_argument("--repeat", type=int, default=3, help="served runs per figure (median)")
    ap.add_argument("--baseline-build", help="another build whose charrnn-serve is measured too")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    bench = os.path.join(build, "tests", "bench")
    ncpu = os.cpu_count()
    print("machine:", bench_serve.machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-lowp-") as work:
        ck = {}
        f32 = bench_serve.train(build, work, "3x512", 3, 512)
        for dt in DTYPES:
            os.makedirs(os.path.join(work, "m-" + dt), exist_ok=True)
            ck[dt] = os.path.join(work, "m-" + dt, "m.safetensors")
            convert(build, f32, dt, ck[dt])
            ck["default-" + dt] = os.path.join(work, "d-" + dt, "shakespeare.safetensors")
            os.makedirs(os.path.dirname(ck["default-" + dt]), exist_ok=True)
            convert(build, os.path.join(ROOT, "deploy", "models", "shakespeare.safetensors"), dt,
                    ck["default-" + dt])

        # Every measurement, run --repeat times in interleaved rounds (odd rounds
        # in reverse order); each figure is the median of its runs.
        configs = []
        for t in range(1, ncpu + 1):
            configs.append((("torch", t), run_json,
                            (["/usr/bin/python3", os.path.join(HERE, "torch_sample.py"), f32,
                              "--seconds", str(a.seconds), "--threads", str(t)],), {}))
        for dt in DTYPES:
            for h in (0, ncpu - 1):
                configs.append((("alone", dt, h), run_json,
                                ([os.path.join(bench, "stream_bench"), ck[dt], str(a.seconds),
                                  str(h)],), {}))
        for dt in DTYPES:
            configs.append((("one", dt), served, (build, ck[dt], 1, a.serve_seconds, 100), {}))
            configs.append((("one_off", dt), served, (build, ck[dt], 1, a.serve_seconds, 100,
                                                      ["--row-split", "off"]), {}))
        for dt in DTYPES:
            configs.append((("many", dt), served,
                            (build, ck["default-" + dt], 64, a.serve_seconds, 200), {}))
        if a.baseline_build:
            bb = os.path.abspath(a.baseline_build)
            configs.append((("base", "one"), served, (build, ck["f32"], 1, a.serve_seconds, 100),
                            {"daemon_build": bb}))
            configs.append((("base", "many"), served,
                            (build, ck["default-f32"], 64, a.serve_seconds, 200),
                            {"daemon_build": bb}))
        runs = {key: [] for key, _, _, _ in configs}
        sizes = {}
        for rnd in range(a.repeat):
            for key, fn, args, kw in (configs if rnd % 2 == 0 else configs[::-1]):
                r = fn(*args, **kw)
                runs[key].append(r)
                print("round %d, %s: %s" % (rnd + 1, "/".join(map(str, key)), json.dumps(r)),
                      flush=True)
                if key[0] == "alone" and key[1] not in sizes:
                    sizes[key[1]] = r["step_bytes"]
            for dt in DTYPES:  # the bandwidth of an array the size of one step's reads
                for t in sorted({1, ncpu}):
                    r = run_json([os.path.join(bench, "read_bw"), str(sizes[dt]), str(t), "2"])
                    runs.setdefault(("bw", dt, t), []).append(r)
                    print("round %d, read bandwidth, %d bytes, %d thread(s): %.1f GB/s" % (
                        rnd + 1, sizes[dt], t, r["gb_per_s"]), flush=True)

        def median(key, field="chars_per_s"):
            rs = sorted(runs[key], key=lambda r: r[field])
            m = dict(rs[len(rs) // 2])
            m[field] = statistics.median(r[field] for r in rs)
            m["all"] = [round(r[field]) for r in runs[key]]
            return m

        ref = max((median(("torch", t)) for t in range(1, ncpu + 1)),
                  key=lambda r: r["chars_per_s"])
        alone = {(dt, h): median(("alone", dt, h)) for dt in DTYPES for h in (0, ncpu - 1)}
        bw = {(dt, t): median(("bw", dt, t), "gb_per_s") for dt in DTYPES
              for t in sorted({1, ncpu})}
        one = {dt: median(("one", dt)) for dt in DTYPES}
        one_off = {dt: median(("one_off", dt)) for dt in DTYPES}
        many = {dt: median(("many", dt)) for dt in DTYPES}
        base = {k: median(("base", k)) for k in ("one", "many")} if a.baseline_build else {}
        rss = {dt: run_json([os.path.join(bench, "stream_bench"), ck["default-" + dt], "0.1",
                             "0"])["rss_model_bytes"] for dt in DTYPES}

    pt = ref["chars_per_s"]
    print("\nPyTorch single stream, 3x512: %.0f chars/s (%d thread%s, best of 1..%d; runs %s)" % (
        pt, ref["threads"], "s" if ref["threads"] > 1 else "", ncpu, ref["all"]))
    print("\nevery figure is the median of %d runs" % a.repeat)
    print("\n| model | dtype | clients | how | chars/s | x PyTorch | step bytes x chars/s |"
          " % of 1-core read | % of all-core read |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for dt in DTYPES:
        b1, ball = bw[dt, 1]["gb_per_s"], bw[dt, ncpu]["gb_per_s"]
        rows = [("step alone, 1 thread", alone[dt, 0]["chars_per_s"]),
                ("step alone, rows on %d threads" % ncpu, alone[dt, ncpu - 1]["chars_per_s"]),
                ("charrnn-serve --row-split off", one_off[dt]["chars_per_s"]),
                ("charrnn-serve (rows on %d workers)" % ncpu, one[dt]["chars_per_s"])]
        for how, cps in rows:
            gbs = cps * alone[dt, 0]["step_bytes"] / 1e9
            print("| 3x512 | %s | 1 | %s | %.0f | %.1fx | %.1f GB/s | %.0f%% | %.0f%% |" % (
                dt, how, cps, cps / pt, gbs, 100 * gbs / b1, 100 * gbs / ball))
    if base:
        cps = base["one"]["chars_per_s"]
        gbs = cps * alone["f32", 0]["step_bytes"] / 1e9
        print("| 3x512 | f32 | 1 | baseline charrnn-serve | %.0f | %.1fx | %.1f GB/s | %.0f%% | "
              "%.0f%% |" % (cps, cps / pt, gbs, 100 * gbs / bw["f32", 1]["gb_per_s"],
                            100 * gbs / bw["f32", ncpu]["gb_per_s"]))
        print("| 2x512 default | f32 | 64 | baseline charrnn-serve | %.0f (runs %s) | | | | |" % (
            base["many"]["chars_per_s"], base["many"]["all"]))
    for dt in DTYPES:
        r = many[dt]
        print("| 2x512 default | %s | 64 | charrnn-serve | %.0f (runs %s) | | | | |" % (
            dt, r["chars_per_s"], r["all"]))
    print("\nread bandwidth (GB/s), array = one step's bytes: " + ", ".join(
        "%s %.1f MB: %.1f (1 core), %.1f (%d cores)" % (
            dt, alone[dt, 0]["step_bytes"] / 1e6, bw[dt, 1]["gb_per_s"], bw[dt, ncpu]["gb_per_s"],
            ncpu) for dt in DTYPES))
    print("the machine's limit for one 3x512 stream (all-core read bandwidth / step bytes): " +
          ", ".join("%s %.0f chars/s = %.1fx PyTorch" % (
              dt, bw[dt, ncpu]["gb_per_s"] * 1e9 / alone[dt, 0]["step_bytes"],
              bw[dt, ncpu]["gb_per_s"] * 1e9 / alone[dt, 0]["step_bytes"] / pt) for dt in DTYPES))
    if base:
        print("64 clients, default model: f32 now / baseline = %.2fx" % (
            many["f32"]["chars_per_s"] / base["many"]["chars_per_s"]))
    print("64 clients, default model: int8 / f32 = %.2fx, bf16 / f32 = %.2fx; errors %s" % (
        many["int8"]["chars_per_s"] / many["f32"]["chars_per_s"],
        many["bf16"]["chars_per_s"] / many["f32"]["chars_per_s"],
        {dt: many[dt]["errors"] for dt in DTYPES}))
    print("resident memory of the loaded default model: " + ", ".join(
        "%s %.1f MB (%.2f of f32)" % (dt, rss[dt] / 1e6, rss[dt] / rss["f32"]) for dt in DTYPES))
    print("charrnn-serve VmRSS with the default model loaded: " + ", ".join(
        "%s %.1f MB" % (dt, many[dt]["daemon_rss"] / 1e6) for dt in DTYPES))
    print("load average at the end: %s" % " ".join("%.1f" % x for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

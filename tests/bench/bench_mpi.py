#!/usr/bin/python3
"""Data-parallel training over MPI against one process, in one invocation, on
the same text: 2 ranks x 1 thread (mpirun -np 2) against 1 process x 2 threads,
the same 2 shards of the batch, so both compute the same bits (checked at the
end of every pair of runs). The runs alternate (one process, two ranks, one
process, ...) so that a change of load on a shared machine hits both sides.

Prints per configuration: chars/s of each layout (the median of --repeat runs),
their ratio, and the gradient bytes each rank sends per step.

usage: tests/bench/bench_mpi.py --data FILE [--build build] [--scale 1.0] [--repeat 3]
(timing excludes the first --warmup iterations; --scale multiplies iteration counts)"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CONFIGS = [  # name, layers, hidden, iterations
    ("LSTM 2x128", 2, 128, 40),
    ("LSTM 3x512", 3, 512, 10),
]
B = T = 50


def train(a, tmp, L, H, n, launcher, threads):
    """Trains n iterations; returns (chars/s after the warm-up, latest checkpoint, parameters)."""
    ck = os.path.join(tmp, "ck")
    log = os.path.join(tmp, "log.jsonl")
    cmd = launcher + [os.path.join(a.build, "cli", "charrnn-train"), "--data", a.data,
                      "--checkpoint-dir", ck, "--num-layers", str(L), "--rnn-size", str(H),
                      "--max-iters", str(n), "--eval-every", str(10 ** 9), "--train-frac", "1",
                      "--val-frac", "0", "--print-every", "1", "--quiet", "--log", log,
                      "--threads", str(threads)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])}... failed: {p.stderr.strip()[-800:]}")
    events = [json.loads(line) for line in open(log)]
    it = {e["iter"]: e for e in events if e.get("event") == "iter"}
    params = next(e for e in events if e.get("event") == "start")["info"]
    t0, t1 = it[a.warmup]["elapsed_sec"], it[n]["elapsed_sec"]
    with open(os.path.join(ck, "latest.safetensors"), "rb") as f:
        blob = f.read()
    return (n - a.warmup) * B * T / (t1 - t0), blob, params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--build", default="build")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", default=None, help="run only configurations whose name contains this")
    a = ap.parse_args()
    mpirun = ["mpirun", "--oversubscribe", "-np", "2"]
    if os.geteuid() == 0:
        mpirun.insert(1, "--allow-run-as-root")
    print(f"{'config':<12} {'1 proc x 2 thr':>15} {'2 ranks x 1 thr':>16} {'ratio':>6}  "
          f"{'grad MB/step':>12}  same bits")
    for name, L, H, n in CONFIGS:
        if a.only and a.only not in name:
            continue
        n = max(a.warmup + 2, int(n * a.scale))
        one, two, same = [], [], True
        params = ""
        for _ in range(a.repeat):
            with tempfile.TemporaryDirectory() as t1, tempfile.TemporaryDirectory() as t2:
                c1, b1, params = train(a, t1, L, H, n, [], 2)
                c2, b2, _ = train(a, t2, L, H, n, mpirun, 1)
                one.append(c1), two.append(c2)
                same = same and b1 == b2
        nparams = int(params.split(" parameters")[0].split()[-1])
        m1, m2 = statistics.median(one), statistics.median(two)
        print(f"{name:<12} {m1:>10.0f} c/s {m2:>11.0f} c/s {m2 / m1:>6.2f}  "
              f"{4 * nparams / 1e6:>12.1f}  {'yes' if same else 'NO'}", flush=True)
        print(f"{'':<12} runs: {' '.join(f'{x:.0f}' for x in one)} | "
              f"{' '.join(f'{x:.0f}' for x in two)}", flush=True)


if __name__ == "__main__":
    main()

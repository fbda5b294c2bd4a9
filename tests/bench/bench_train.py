#!/usr/bin/python3
"""Training speed benchmark: charrnn-train against the equivalent PyTorch loop
(tests/bench/torch_train.py: same model, batch, seq, Adam, clipping; PyTorch at
the faster of 1 and 2 threads), in one invocation, on the same text.

Prints per configuration: chars/s of each and their ratio, charrnn's achieved
GFLOP/s (forward + backward GEMM FLOPs), that as a fraction of its own GEMM's
peak on all cores measured in the same run, and peak RSS against the planned
memory. charrnn runs as shipped (one batch shard per core, each GEMM charrnn's
own, single-threaded: model/core/gemm.h). Then, per configuration, each GEMM
shape of a shard's window on one core (tests/bench/gemm_peak) against that
kernel's own peak on one core. OpenBLAS's sgemm peak is printed for reference:
PyTorch runs on it, charrnn no longer does.

With --precisions f32,bf16, charrnn also trains with --precision bf16 in the
same run: its chars/s, its speed-up over f32, and each layer GEMM in bf16
against the bf16 kernel's own one-core peak (the decoder stays f32).

usage: tests/bench/bench_train.py --data FILE [--build build] [--scale 1.0] [--only NAME]
       [--precisions f32,bf16]
(timing excludes the first --warmup iterations; --scale multiplies iteration counts)"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [  # name, cell, layers, hidden, iterations
    ("LSTM 1x128", "lstm", 1, 128, 60),
    ("LSTM 2x128", "lstm", 2, 128, 40),
    ("LSTM 2x256", "lstm", 2, 256, 24),
    ("LSTM 3x512", "lstm", 3, 512, 8),
    ("GRU 2x128", "gru", 2, 128, 40),
]
B = T = 50


def run(cmd):
    """Runs cmd and returns its stdout."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {err.strip()[-500:]}")
    return out


def rss_run(cmd):
    """Runs cmd quietly; returns its own peak RSS in MiB (wait4 rusage of that child)."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"{cmd[0]} exited with status {status}")
    return ru.ru_maxrss / 1024.0


def charrnn_cps(a, train, cell, L, H, n, threading):
    """Trains n iterations; returns (chars/s after the warm-up, peak RSS MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "log.jsonl")
        rss = rss_run([train, "--data", a.data, "--checkpoint-dir", tmp, "--cell", cell,
                       "--num-layers", str(L), "--rnn-size", str(H), "--max-iters", str(n),
                       "--eval-every", str(10 ** 9), "--train-frac", "1", "--val-frac", "0",
                       "--print-every", "1", "--quiet", "--log", log] + threading)
        ev = {e["iter"]: e for e in map(json.loads, open(log)) if e.get("event") == "iter"}
        t0, t1 = ev[a.warmup]["elapsed_sec"], ev[n]["elapsed_sec"]
        return (n - a.warmup) * B * T / (t1 - t0), rss


def gemm_flops_per_char(cell, L, H, V):
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    fwd = sum(2 * G * H * H * (2 if l > 0 else 1) for l in range(L)) + 2 * H * V
    return 3 * fwd  # backward: two GEMMs per forward GEMM


PEAK_SHAPE = ("1200", "512", "256", "nn")  # cache-resident: the kernel at its best


def own_peak(tool, procs, extra=()):
    """charrnn's GEMM on PEAK_SHAPE, one process per core at once: (sum GFLOP/s, kernel)."""
    ps = [subprocess.Popen([tool] + list(PEAK_SHAPE) + list(extra), stdout=subprocess.PIPE,
                           text=True)
          for _ in range(procs)]
    res = [json.loads(p.communicate()[0]) for p in ps]
    return sum(r["gflops"] for r in res), res[0]["kernel"]


def window_shapes(cell, L, H, V, shards):
    """The distinct GEMMs of one shard's window: (what, M, N, K, gemm_peak layout)."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    b = B // shards
    N = b * T
    # The last field: the layout of the bf16 product (None: f32 in both).
    out = [("recurrent, per step", b, G * H, H, "ntp", "ntp"),
           ("recurrent backward, per step", b, H, G * H, "nnp", "nnp"),
           ("W_hh gradient", G * H, H, N, "tn", "tn")]
    if L > 1:
        out += [("input side (layers > 0)", N, G * H, H, "ntp", "ntp"),
                ("input gradient (layers > 0)", N, H, G * H, "nn", "nnp")]
    out += [("decoder", N, V, H, "nt", None), ("decoder weight gradient", V, H, N, "tn", None),
            ("decoder input gradient", N, H, V, "nn", None)]
    return out


def planned_bytes(cell, L, H, V, chars):
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    D = [V] + [H] * (L - 1)
    P = sum(G * H * (d + H) + 2 * G * H for d in D) + V * H + V
    N = B * T
    acts = 0
    for l in range(L):
        acts += 2 * N * G * H + (N + B) * H + N * H  # gates, dg, h, dh
        acts += (N + B) * H if cell == "lstm" else 0
        acts += (N * H + N * G * H) if cell == "gru" else 0
        acts += 2 * V * G * H if l == 0 else 0
    acts += N * H + N * V
    return 4 * (4 * P + acts) + 2 * chars


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--build", default="build")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--only", default=None)
    ap.add_argument("--precisions", default="f32", help="f32 or f32,bf16")
    a = ap.parse_args()
    bf16 = "bf16" in a.precisions.split(",")
    train = os.path.join(a.build, "cli", "charrnn-train")
    peak_tool = os.path.join(a.build, "tests", "bench", "sgemm_peak")
    text = open(a.data, encoding="utf-8").read()
    V, chars = len(set(text)), len(text)
    gemm_tool = os.path.join(a.build, "tests", "bench", "gemm_peak")
    big = json.loads(run([peak_tool, "2048", "2048", "2048", "2"]))
    step = json.loads(run([peak_tool, "50", "2048", "512", "2"]))["gflops"]
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset: detected")
    own1, kernel = own_peak(gemm_tool, 1)
    peak, _ = own_peak(gemm_tool, os.cpu_count())
    print(f"machine: {os.cpu_count()} cores; charrnn's GEMM: the {kernel} kernel, peak "
          f"{own1:.1f} GFLOP/s on one core, {peak:.1f} on all {os.cpu_count()} "
          f"({' '.join(PEAK_SHAPE)}, one process per core)")
    if bf16:
        bf1, _ = own_peak(gemm_tool, 1, ["bf16"])
        bfpeak, _ = own_peak(gemm_tool, os.cpu_count(), ["bf16"])
        print(f"bf16 products: peak {bf1:.1f} GFLOP/s on one core, {bfpeak:.1f} on all "
              f"{os.cpu_count()} (the same shape)")
    print(f"OpenBLAS (PyTorch's): {big['core']} kernels (OPENBLAS_CORETYPE {coretype}); sgemm "
          f"{big['gflops']:.1f} GFLOP/s (2048^3, 2 threads), {step:.1f} GFLOP/s on 50x2048x512")
    print(f"data: {a.data} ({chars} chars, V={V}); B={B} T={T}; timing excludes "
          f"{a.warmup} warm-up iterations\n")
    hdr = ("config", "charrnn c/s", "torch c/s", "ratio", "GFLOP/s", "of peak", "RSS MiB",
           "RSS/plan", "torch thr") + (("bf16 c/s", "bf16/f32", "bf16/torch") if bf16 else ())
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    shapes_run = []
    for name, cell, L, H, iters in CONFIGS:
        if a.only and a.only not in name:
            continue
        n = max(a.warmup + 2, int(iters * a.scale))
        ours, rss = charrnn_cps(a, train, cell, L, H, n, [])  # as shipped: all cores
        best, best_thr = 0.0, 0
        for thr in (1, 2):
            out = run(["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), "--data", a.data,
                       "--cell", cell, "--num-layers", str(L), "--rnn-size", str(H),
                       "--max-iters", str(n), "--warmup", str(a.warmup), "--threads", str(thr),
                       "--train-frac", "1", "--val-frac", "0"])
            cps = json.loads(out)["chars_per_sec"]
            if cps > best:
                best, best_thr = cps, thr
        gf = ours * gemm_flops_per_char(cell, L, H, V) / 1e9
        plan = planned_bytes(cell, L, H, V, chars) / 2 ** 20
        extra = ""
        if bf16:
            low, _ = charrnn_cps(a, train, cell, L, H, n, ["--precision", "bf16"])
            extra = f" {low:,.0f} | {low / ours:.2f}x | {low / best:.2f}x |"
        print(f"| {name} | {ours:,.0f} | {best:,.0f} | {ours / best:.2f}x | {gf:.1f} | "
              f"{gf / peak:.0%} | {rss:.0f} | {rss / plan:.2f} | {best_thr} |{extra}", flush=True)
        shapes_run.append((name, cell, L, H))
    print(f"\nEach GEMM of a shard's window (B = {B} streams over {os.cpu_count()} shards, "
          f"T = {T}) on one core, against the kernel's one-core peak {own1:.1f} GFLOP/s:\n")
    more = f" bf16 GFLOP/s | of bf16 peak {bf1:.1f} |" if bf16 else ""
    print("| config | product | M x N x K | layout | GFLOP/s | of peak |" + more)
    print("|---|---|---|---|---|---|" + ("---|---|" if bf16 else ""))
    for name, cell, L, H in shapes_run:
        for what, m, n_, k, lay, blay in window_shapes(cell, L, H, V, os.cpu_count()):
            g = json.loads(run([gemm_tool, str(m), str(n_), str(k), lay]))["gflops"]
            extra = ""
            if bf16 and blay:
                gb = json.loads(run([gemm_tool, str(m), str(n_), str(k), blay, "bf16"]))["gflops"]
                extra = f" {gb:.1f} | {gb / bf1:.0%} |"
            elif bf16:
                extra = " (f32) | |"
            print(f"| {name} | {what} | {m}x{n_}x{k} | {lay} | {g:.1f} | {g / own1:.0%} |{extra}",
                  flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The scaling model of data-parallel training over MPI (docs/benchmarks.md,
"Training on several machines (MPI)"): predicted efficiency for R machines on a network link.

    time per step = compute / (R x T) + reduction(bytes, bandwidth, latency)

Weak scaling: every machine keeps the batch one machine trains alone (its
T threads x B/T streams), so compute / (R x T) is one machine's step time t1
and the total batch grows R-fold. The reduction is what model/core/comm.c
does: a left-fold chain through the R ranks, pipelined in chunks, then the
total round from the last rank through the others, a second pipelined chain:

    reduction = 2 x (K + R - 2) x (chunk / bandwidth + latency)

with chunk = clamp(n / 2R, 64 KiB, 1 MiB) bytes of the n-byte gradient and
K = n / chunk messages; per step also two latency-bound exchanges of a few
bytes (losses, the stop flag) through rank 0 and back. The trainer sums each
layer's block while the backward pass of the layers below runs; the model
gives no credit for that overlap, so its efficiencies are lower bounds.

usage: tests/bench/scaling_model.py [--latency-us 30] [--link-efficiency 0.9]
       [--t1 2x128=0.0217 --t1 3x512=0.508]  (seconds per step of one machine)"""
import argparse
import math


def lstm_params(L, H, V):
    """PyTorch's nn.LSTM (two biases) plus the decoder."""
    return sum(4 * H * ((V if l == 0 else H) + H) + 8 * H for l in range(L)) + V * H + V


# One machine's step (B = T = 50, 2 threads) and gradient bytes: the 2-core
# machine of the training-speed table in docs/benchmarks.md (115,159 and 4,920 chars/s
# under the Haswell pin), tinyshakespeare's vocabulary (V = 65).
MODELS = {"2x128": (2500 / 115159, 4 * lstm_params(2, 128, 65)),
          "3x512": (2500 / 4920, 4 * lstm_params(3, 512, 65))}


def chunk_bytes(n, R):
    floats = n // 4
    c = floats // (2 * R)
    return 4 * min(max(c, 1 << 14), 1 << 18)


def reduction(n, R, bw, lat):
    if R == 1:
        return 0.0
    c = min(chunk_bytes(n, R), n)
    K = math.ceil(n / c)
    chain = (K + R - 2) * (c / bw + lat)
    small = 2 * 2 * (R - 1) * lat  # loss allgather + stop flag: gather to rank 0 and back
    return 2 * chain + small


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-us", type=float, default=30.0)
    ap.add_argument("--link-efficiency", type=float, default=0.9)
    ap.add_argument("--t1", action="append", default=[], help="MODEL=SECONDS per step of one machine")
    a = ap.parse_args()
    models = dict(MODELS)
    for kv in a.t1:
        k, v = kv.split("=")
        models[k] = (float(v), models[k][1])
    lat = a.latency_us * 1e-6
    Rs = [2, 8, 32, 128]
    print(f"latency {a.latency_us:g} us per message, {a.link_efficiency:.0%} of the line rate")
    print("| model | gradient | one machine's step | link | " + " | ".join(f"R = {R}" for R in Rs) + " |")
    print("|---|---|---|---|" + "---|" * len(Rs))
    for name, (t1, n) in models.items():
        for gbit in (10, 25, 100):
            bw = gbit * 1e9 / 8 * a.link_efficiency
            cells = []
            for R in Rs:
                red = reduction(n, R, bw, lat)
                cells.append(f"{t1 / (t1 + red):.0%} ({red * 1e3:.1f} ms)")
            print(f"| {name} | {n / 1e6:.1f} MB | {t1 * 1e3:.0f} ms | {gbit} Gb/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

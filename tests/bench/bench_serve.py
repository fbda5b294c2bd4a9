#!/usr/bin/python3
"""Serving benchmark: charrnn-serve under 1, 4, 16 and 64 concurrent
keep-alive clients (tests/bench/load_client.c, loopback only), against the
single-stream PyTorch sampling loop (tests/bench/torch_sample.py: batch 1,
char by char, nn.LSTM + Linear, no_grad; the faster of 1 and 2 threads)
measured in the same run, for a 2x128 and a 3x512 LSTM.

The one command (from the source root, after `ninja -C build`):

    tests/bench/bench_serve.py --build build

Trains both checkpoints first with charrnn-train (2 iterations on a small
generated text: speed does not depend on the weights' quality), or takes
them from --models DIR (2x128.safetensors and 3x512.safetensors). Each model
gets its own daemon on a free loopback port. Runs take --seconds each (new
requests stop then; requests in flight finish and count). Everything is
measured --rounds times, interleaved, and the best round of each row (and of
the PyTorch reference) is reported: the machine may be shared and noisy. Prints per model:
clients, req/s, generated chars/s, p50, p99, errors; the single stream
(1 client) against PyTorch, and the 16-client aggregate against the single
stream. Timing only: nothing is asserted (the machine may be shared).

usage: bench_serve.py [--build build] [--models DIR] [--seconds 10]
                      [--clients 1,4,16,64] [--torch-seconds 6] [--rounds 2]
                      [--only 2x128|3x512]
                      [--serve-args "--workers 2 ..."]"""
import argparse
import ctypes
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = [  # name, layers, hidden, request length (chars)
    ("2x128", 2, 128, 500),
    ("3x512", 3, 512, 100),
]


def make_text(n_words=4000):
    """A deterministic text over 65 distinct characters (tinyshakespeare's count)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'-&$"
    alphabet = alphabet[:63]  # + space + newline = 65
    x, out = 12345, []
    for _ in range(n_words):
        x = (x * 1103515245 + 12345) % (1 << 31)
        k = 1 + x % 7
        out.append("".join(alphabet[(x >> (3 + 2 * i)) % len(alphabet)] for i in range(k)))
        if x % 13 == 0:
            out.append("\n")
    return alphabet + " " + " ".join(out) + "\n"


def train(build, workdir, name, layers, hidden):
    data = os.path.join(workdir, "data.txt")
    if not os.path.exists(data):
        with open(data, "w") as f:
            f.write(make_text())
    out = os.path.join(workdir, name, name + ".safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run([os.path.join(build, "cli", "charrnn-train"), "--data", data,
                    "--checkpoint-dir", os.path.join(workdir, "ck-" + name),
                    "--num-layers", str(layers), "--rnn-size", str(hidden),
                    "--seq-length", "16", "--batch-size", "4", "--max-iters", "2",
                    "--eval-every", "2", "--threads", "1", "--publish", out, "--quiet"],
                   check=True)
    return out


class Daemon:
    """charrnn-serve on 127.0.0.1:0 over a directory holding one model."""

    def __init__(self, build, model_dir, extra):
        args = [os.path.join(build, "server", "charrnn-serve"), "--models", model_dir,
                "--listen", "127.0.0.1:0", "--access-log", "off", "--poll-interval", "0"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARRNN_")}
        # load_client's clients all come from 127.0.0.1, which the daemon
        # counts as one client: no per-client share (on a daemon that has one)
        # so that they measure the engine, not the share
        if "--max-client-share" in subprocess.run(args[:1] + ["--help"], stdout=subprocess.PIPE,
                                                  text=True).stdout:
            args += ["--max-client-share", "0"]
        self.proc = subprocess.Popen(args + extra, stderr=subprocess.PIPE, env=env, text=True)
        self.port = None
        deadline = time.time() + 30
        for line in self.proc.stderr:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("msg") == "listening":
                self.port = int(ev["addr"].rsplit(":", 1)[1])
                break
            if time.time() > deadline:
                break
        if self.port is None:
            self.proc.kill()
            sys.exit("charrnn-serve did not start")
        # keep draining stderr so the daemon never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def torch_ref(ckpt, seconds):
    """The faster of 1 and 2 threads."""
    best = None
    for threads in (1, 2):
        out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_sample.py"), ckpt,
                              "--seconds", str(seconds), "--threads", str(threads)],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print("  pytorch %d thread(s): %.0f chars/s" % (threads, r["chars_per_s"]), flush=True)
        if best is None or r["chars_per_s"] > best["chars_per_s"]:
            best = r
    return best


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    core = "?"
    for lib in ("libopenblas.so.0", "libopenblas.so"):
        try:
            fn = ctypes.CDLL(lib).openblas_get_corename
            fn.restype = ctypes.c_char_p
            core = fn().decode()
            break
        except (OSError, AttributeError):
            continue
    return "nproc %d, %s, OpenBLAS core %s, load average %s" % (
        os.cpu_count(), model, core, " ".join("%.1f" % x for x in os.getloadavg()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--models", help="directory with 2x128.safetensors and 3x512.safetensors")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--torch-seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=2,
                    help="measure everything this many times, report the best of each")
    ap.add_argument("--only", choices=[m[0] for m in MODELS])
    ap.add_argument("--serve-args", default="", help="extra charrnn-serve flags")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    client = os.path.join(build, "tests", "bench", "load_client")
    clients = [int(c) for c in a.clients.split(",")]
    print("machine:", machine(), flush=True)
    summary = []
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-serve-") as work:
        for name, layers, hidden, length in MODELS:
            if a.only and name != a.only:
                continue
            mdir = os.path.join(work, name)
            os.makedirs(mdir, exist_ok=True)
            if a.models:
                src = os.path.join(os.path.abspath(a.models), name + ".safetensors")
                ckpt = os.path.join(mdir, name + ".safetensors")
                shutil.copyfile(src, ckpt)  # the store follows no symlink out of its directory
            else:
                ckpt = train(build, work, name, layers, hidden)
            print("\n== LSTM %s (requests of %d chars, %g s per run, %d rounds)" % (
                name, length, a.seconds, a.rounds), flush=True)
            d = Daemon(build, mdir, shlex.split(a.serve_args))
            best, refs, errs = {}, [], {n: 0 for n in clients}
            try:
                # Rounds interleave both sides, so a burst of load from elsewhere
                # on a shared machine hits one round, not one side.
                for rnd in range(a.rounds):
                    refs.append(torch_ref(ckpt, a.torch_seconds))
                    for n in clients:
                        out = subprocess.run([client, str(d.port), str(n), str(a.seconds),
                                              str(length)], check=True, stdout=subprocess.PIPE,
                                             text=True).stdout
                        r = json.loads(out.strip().splitlines()[-1])
                        errs[n] += r["errors"]
                        print("  round %d, %3d clients: %s" % (rnd + 1, n, out.strip()),
                              flush=True)
                        if n not in best or r["chars_per_s"] > best[n]["chars_per_s"]:
                            best[n] = r
            finally:
                rc = d.stop()
            rows = [best[n] for n in clients]
            ref = max(refs, key=lambda r: r["chars_per_s"])
            print("\nbest of %d rounds (the PyTorch reference too); errors: all rounds" % a.rounds)
            print("\n| clients | req/s | chars/s | p50 ms | p99 ms | errors |")
            print("|---:|---:|---:|---:|---:|---:|")
            for r in rows:
                print("| %d | %.1f | %.0f | %.0f | %.0f | %d |" % (
                    r["clients"], r["req_per_s"], r["chars_per_s"], r["p50_ms"], r["p99_ms"],
                    errs[r["clients"]]))
            by = {r["clients"]: r for r in rows}
            line = {"model": name, "pytorch_chars_per_s": ref["chars_per_s"],
                    "pytorch_threads": ref["threads"], "daemon_exit": rc}
            print("\nPyTorch single stream (%d thread%s): %.0f chars/s" % (
                ref["threads"], "s" if ref["threads"] > 1 else "", ref["chars_per_s"]))
            if 1 in by:
                single = by[1]["chars_per_s"]
                line["single_vs_pytorch"] = round(single / ref["chars_per_s"], 2)
                print("single stream: %.0f chars/s = %.1fx PyTorch" % (
                    single, single / ref["chars_per_s"]))
                if 16 in by:
                    line["agg16_vs_single"] = round(by[16]["chars_per_s"] / single, 2)
                    print("16 clients aggregate: %.0f chars/s = %.1fx the single stream" % (
                        by[16]["chars_per_s"], by[16]["chars_per_s"] / single))
            line["errors"] = sum(errs.values())
            summary.append(line)
    print("\nsummary:", json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

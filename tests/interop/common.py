"""What the interop tests share: the text their small models learn, one
such model trained into a temporary folder and its bf16 / int8 copies, a
test tool's float32 output read back, and the check() that counts failures
and goes on, so that one run shows every mismatch (the exit status says
whether any failed)."""
import os
import subprocess
import sys

import torch

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom,\n"
        "it was the age of foolishness, it was the epoch of belief, it was the epoch of\n"
        "incredulity, it was the season of Light, it was the season of Darkness. ") * 40
failures = 0


def check(cond, msg):
    """Prints ok: / FAIL: msg and counts a failure; finish() turns the count
    into the exit status."""
    global failures
    failures += not cond
    print("ok:" if cond else "FAIL:", msg, flush=True)


def finish():
    sys.exit(1 if failures else 0)


def train(train_exe, tmp, cell, rnn_size, iters, extra=()):
    """Trains a 2-layer model of TEXT with charrnn-train (one thread, so the
    same every run) into tmp/cell; returns its best.safetensors."""
    data = os.path.join(tmp, "data.txt")
    if not os.path.exists(data):
        with open(data, "w") as f:
            f.write(TEXT)
    ck = os.path.join(tmp, cell)
    subprocess.run([train_exe, "--data", data, "--checkpoint-dir", ck, "--cell", cell,
                    "--rnn-size", str(rnn_size), "--num-layers", "2", "--seq-length", "16",
                    "--batch-size", "8", "--max-iters", str(iters), "--eval-every", str(iters),
                    "--learning-rate", "1e-2", *extra, "--threads", "1", "--quiet"], check=True)
    return os.path.join(ck, "best.safetensors")


def convert(bin_dir, path, dtype):
    """path's dtype copy by charrnn-convert (found in bin_dir), beside it."""
    low = os.path.join(os.path.dirname(path), dtype + ".safetensors")
    subprocess.run([os.path.join(bin_dir, "charrnn-convert"), "--dtype", dtype, path, low],
                   check=True, capture_output=True)
    return low


def floats(argv, *shape):
    """A test tool's stdout, raw little-endian float32, as a tensor of shape."""
    raw = subprocess.run(argv, check=True, capture_output=True).stdout
    return torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(*shape)

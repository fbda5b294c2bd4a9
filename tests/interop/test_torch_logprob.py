#!/usr/bin/python3
"""Log-probabilities equal PyTorch's: a text scored by charrnn's streams
(score_prime, the path of charrnn-serve's /score and /v1 echo) gives, for
every character after the first, the log-probability of that character and
of every alternative equal to torch.log_softmax of the decoder output of
torch.nn.LSTM / GRU / RNN loaded with the same checkpoint, within 1e-4
(absolute, in nats). Prints bits per character from both. The same for the
file's int8 copy against the int8 serving definition written out in PyTorch
(torch_ref.Int8Served: every product's input quantized too).

usage: test_torch_logprob.py CHARRNN_TRAIN SCORE_TEXT"""
import math
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import Int8Served, torch_model  # noqa: E402

TRAIN, SCORE = sys.argv[1:3]
CONVERT = os.path.join(os.path.dirname(os.path.abspath(TRAIN)), "charrnn-convert")
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom,\n"
        "it was the age of foolishness, it was the epoch of belief, it was the epoch of\n"
        "incredulity, it was the season of Light, it was the season of Darkness. ") * 40
PROBE = "it was the season of Light, it was the epoch of incredulity,\nit was"
TOL = 1e-4
failures = 0


def check(cond, msg):
    global failures
    failures += not cond
    print("ok:" if cond else "FAIL:", msg)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data.txt")
    with open(data, "w") as f:
        f.write(TEXT)
    for cell in ["lstm", "gru", "rnn"]:
        ck = os.path.join(tmp, cell)
        subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck, "--cell", cell,
                        "--rnn-size", "32", "--num-layers", "2", "--seq-length", "16",
                        "--batch-size", "8", "--max-iters", "300", "--eval-every", "300",
                        "--learning-rate", "1e-2", "--threads", "1", "--quiet"], check=True)
        path = os.path.join(ck, "best.safetensors")
        rnn, dec, vocab = torch_model(path)
        V = len(vocab)
        idx = torch.tensor([vocab.index(c) for c in PROBE])
        x = torch.nn.functional.one_hot(idx, V).float().unsqueeze(1)
        with torch.no_grad():
            out, _ = rnn(x)
            want_all = torch.log_softmax(dec(out[:-1, 0]), dim=-1)  # (n-1, V)
        want = want_all.gather(1, idx[1:].unsqueeze(1)).squeeze(1)
        raw = subprocess.run([SCORE, path, PROBE], check=True, capture_output=True).stdout
        got = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(len(PROBE) - 1, V + 1)
        err_tok = (got[:, 0] - want).abs().max().item()
        err_all = (got[:, 1:] - want_all).abs().max().item()
        check(err_tok <= TOL, f"{cell}: per-character log-probabilities match torch.log_softmax "
                              f"(max |diff| {err_tok:.2e} nats)")
        check(err_all <= TOL, f"{cell}: every alternative's log-probability matches "
                              f"(max |diff| {err_all:.2e} nats)")
        n = len(PROBE) - 1
        bpc_c = -got[:, 0].double().sum().item() / n / math.log(2)
        bpc_t = -want.double().sum().item() / n / math.log(2)
        print(f"   {cell}: bits/char charrnn {bpc_c:.6f}, PyTorch {bpc_t:.6f} over {n} chars")
        q8 = os.path.join(ck, "int8.safetensors")
        subprocess.run([CONVERT, "--dtype", "int8", path, q8], check=True, capture_output=True)
        want_q = Int8Served(q8).log_softmax(PROBE)
        raw = subprocess.run([SCORE, q8, PROBE], check=True, capture_output=True).stdout
        got_q = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(len(PROBE) - 1, V + 1)
        err_q = (got_q[:, 1:].double() - want_q).abs().max().item()
        check(err_q <= TOL, f"{cell} int8: every log-probability matches the int8 serving "
                            f"definition in PyTorch (max |diff| {err_q:.2e} nats; the f32 model "
                            f"is {(got_q[:, 1:] - want_all).abs().max().item():.2e} away)")
sys.exit(1 if failures else 0)

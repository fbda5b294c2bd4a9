#!/usr/bin/python3
"""Interop: a checkpoint written by charrnn-train loads unchanged into
torch.nn.LSTM / GRU / RNN (strict load_state_dict of the rnn.* and decoder.*
tensors) and gives the same probabilities as charrnn's forward pass, and
charrnn-sample's greedy text equals PyTorch's greedy decoding. The same for
its charrnn-convert copies: bf16 (BF16 tensors loaded strictly as they are)
and int8 (dequantized as docs/checkpoint-format.md says: q * scale per row), whose greedy
text is checked against the int8 serving definition written out in PyTorch
(torch_ref.Int8Served: each product's input quantized to int8 too).

usage: test_torch_interop.py CHARRNN_TRAIN CHARRNN_SAMPLE DUMP_PROBS"""
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import Int8Served, st, torch_model  # noqa: E402

TRAIN, SAMPLE, DUMP = sys.argv[1:4]
CONVERT = os.path.join(os.path.dirname(os.path.abspath(SAMPLE)), "charrnn-convert")
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom,\n"
        "it was the age of foolishness, it was the epoch of belief, it was the epoch of\n"
        "incredulity, it was the season of Light, it was the season of Darkness. ") * 40
PROBE = "it was the season of Light, it was"
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def torch_probs(rnn, dec, vocab, text):
    idx = torch.tensor([vocab.index(c) for c in text])
    x = torch.nn.functional.one_hot(idx, len(vocab)).float().unsqueeze(1)
    with torch.no_grad():
        out, _ = rnn(x)
        return torch.softmax(dec(out[:, 0]), dim=-1)


def torch_greedy(rnn, dec, vocab, prime, n):
    state, text = None, prime
    with torch.no_grad():
        x = torch.nn.functional.one_hot(torch.tensor([vocab.index(c) for c in prime]),
                                        len(vocab)).float().unsqueeze(1)
        out, state = rnn(x, state)
        for _ in range(n):
            k = int(torch.argmax(dec(out[-1, 0])))
            text += vocab[k]
            x = torch.nn.functional.one_hot(torch.tensor([k]), len(vocab)).float().unsqueeze(1)
            out, state = rnn(x, state)
    return text


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data.txt")
    with open(data, "w") as f:
        f.write(TEXT)
    for cell in ["lstm", "gru", "rnn"]:
        ck = os.path.join(tmp, cell)
        subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck, "--cell", cell,
                        "--rnn-size", "24", "--num-layers", "2", "--seq-length", "16",
                        "--batch-size", "8", "--max-iters", "400", "--eval-every", "400",
                        "--learning-rate", "1e-2",
                        "--threads", "1", "--quiet"], check=True)
        path = os.path.join(ck, "best.safetensors")
        rnn, dec, vocab = torch_model(path)
        want = torch_probs(rnn, dec, vocab, PROBE)
        raw = subprocess.run([DUMP, path, PROBE], check=True, capture_output=True).stdout
        got = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(want.shape)
        err = ((got - want).abs() / (want.abs() * 1e-4 + 1e-6)).max().item()
        check(err <= 1.0, f"{cell}: probabilities match PyTorch within 1e-4 relative "
                          f"(worst ratio to tolerance {err:.3f})")
        greedy = torch_greedy(rnn, dec, vocab, "it was", 80)
        out = subprocess.run([SAMPLE, "--checkpoint", path, "--prime", "it was", "--length", "80",
                              "--temperature", "0"], check=True, capture_output=True).stdout
        check(out.decode() == greedy, f"{cell}: charrnn-sample greedy text equals PyTorch's "
                                      f"({out.decode()[:40]!r} vs {greedy[:40]!r})")
        for dt in ("bf16", "int8"):
            low = os.path.join(ck, dt + ".safetensors")
            subprocess.run([CONVERT, "--dtype", dt, path, low], check=True,
                           capture_output=True)
            tensors, meta = st.load(low)
            check(meta["dtype"] == dt and tensors["rnn.weight_hh_l1"].dtype ==
                  {"bf16": torch.bfloat16, "int8": torch.int8}[dt],
                  f"{cell} {dt}: metadata and tensor dtype say {dt}")
            rnn, dec, vocab = torch_model(low)
            want = torch_probs(rnn, dec, vocab, PROBE)
            raw = subprocess.run([DUMP, low, PROBE], check=True, capture_output=True).stdout
            got = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(want.shape)
            err = ((got - want).abs() / (want.abs() * 1e-4 + 1e-6)).max().item()
            check(err <= 1.0, f"{cell} {dt}: probabilities match PyTorch's on the file's "
                              f"values within 1e-4 relative (worst ratio {err:.3f})")
            # Sampling runs the inference kernel: bf16 exactly as its values; int8
            # with its inputs quantized too (Int8Served writes that out).
            if dt == "int8":
                greedy = Int8Served(low).greedy("it was", 80)
            else:
                greedy = torch_greedy(rnn, dec, vocab, "it was", 80)
            out = subprocess.run([SAMPLE, "--checkpoint", low, "--prime", "it was", "--length",
                                  "80", "--temperature", "0"], check=True,
                                 capture_output=True).stdout
            check(out.decode() == greedy, f"{cell} {dt}: charrnn-sample greedy text equals "
                                          f"PyTorch's ({out.decode()[:40]!r} vs {greedy[:40]!r})")
sys.exit(1 if failures else 0)

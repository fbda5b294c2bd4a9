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
from common import check, convert, finish, floats, train  # noqa: E402
from torch_ref import Int8Served, one_hot, outputs, st, torch_model  # noqa: E402

TRAIN, SAMPLE, DUMP = sys.argv[1:4]
BIN = os.path.dirname(os.path.abspath(SAMPLE))
PROBE = "it was the season of Light, it was"


def torch_probs(rnn, dec, vocab, text):
    with torch.no_grad():
        return torch.softmax(dec(outputs(rnn, vocab, text)), dim=-1)


def torch_greedy(rnn, dec, vocab, prime, n):
    state, text = None, prime
    with torch.no_grad():
        out, state = rnn(one_hot(vocab, prime), state)
        for _ in range(n):
            k = int(torch.argmax(dec(out[-1, 0])))
            text += vocab[k]
            out, state = rnn(one_hot(vocab, vocab[k]), state)
    return text


def probs_error(path, rnn, dec, vocab):
    """The worst ratio of |dump_probs - PyTorch| over PROBE to the tolerance,
    1e-4 relative (1e-6 absolute near zero)."""
    want = torch_probs(rnn, dec, vocab, PROBE)
    got = floats([DUMP, path, PROBE], want.shape)
    return ((got - want).abs() / (want.abs() * 1e-4 + 1e-6)).max().item()


def sample_greedy(path):
    return subprocess.run([SAMPLE, "--checkpoint", path, "--prime", "it was", "--length", "80",
                           "--temperature", "0"], check=True, capture_output=True).stdout.decode()


with tempfile.TemporaryDirectory() as tmp:
    for cell in ["lstm", "gru", "rnn"]:
        path = train(TRAIN, tmp, cell, 24, 400)
        rnn, dec, vocab = torch_model(path)
        err = probs_error(path, rnn, dec, vocab)
        check(err <= 1.0, f"{cell}: probabilities match PyTorch within 1e-4 relative "
                          f"(worst ratio to tolerance {err:.3f})")
        greedy = torch_greedy(rnn, dec, vocab, "it was", 80)
        out = sample_greedy(path)
        check(out == greedy, f"{cell}: charrnn-sample greedy text equals PyTorch's "
                             f"({out[:40]!r} vs {greedy[:40]!r})")
        for dt in ("bf16", "int8"):
            low = convert(BIN, path, dt)
            tensors, meta = st.load(low)
            check(meta["dtype"] == dt and tensors["rnn.weight_hh_l1"].dtype ==
                  {"bf16": torch.bfloat16, "int8": torch.int8}[dt],
                  f"{cell} {dt}: metadata and tensor dtype say {dt}")
            rnn, dec, vocab = torch_model(low)
            err = probs_error(low, rnn, dec, vocab)
            check(err <= 1.0, f"{cell} {dt}: probabilities match PyTorch's on the file's "
                              f"values within 1e-4 relative (worst ratio {err:.3f})")
            # Sampling runs the inference kernel: bf16 exactly as its values; int8
            # with its inputs quantized too (Int8Served writes that out).
            if dt == "int8":
                greedy = Int8Served(low).greedy("it was", 80)
            else:
                greedy = torch_greedy(rnn, dec, vocab, "it was", 80)
            out = sample_greedy(low)
            check(out == greedy, f"{cell} {dt}: charrnn-sample greedy text equals "
                                 f"PyTorch's ({out[:40]!r} vs {greedy[:40]!r})")
finish()

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
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import check, convert, finish, floats, train  # noqa: E402
from torch_ref import Int8Served, outputs, torch_model  # noqa: E402

TRAIN, SCORE = sys.argv[1:3]
BIN = os.path.dirname(os.path.abspath(TRAIN))
PROBE = "it was the season of Light, it was the epoch of incredulity,\nit was"
TOL = 1e-4

with tempfile.TemporaryDirectory() as tmp:
    for cell in ["lstm", "gru", "rnn"]:
        path = train(TRAIN, tmp, cell, 32, 300)
        rnn, dec, vocab = torch_model(path)
        V = len(vocab)
        idx = torch.tensor([vocab.index(c) for c in PROBE])
        with torch.no_grad():
            want_all = torch.log_softmax(dec(outputs(rnn, vocab, PROBE)[:-1]), dim=-1)  # (n-1, V)
        want = want_all.gather(1, idx[1:].unsqueeze(1)).squeeze(1)
        got = floats([SCORE, path, PROBE], len(PROBE) - 1, V + 1)
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
        q8 = convert(BIN, path, "int8")
        want_q = Int8Served(q8).log_softmax(PROBE)
        got_q = floats([SCORE, q8, PROBE], len(PROBE) - 1, V + 1)
        err_q = (got_q[:, 1:].double() - want_q).abs().max().item()
        check(err_q <= TOL, f"{cell} int8: every log-probability matches the int8 serving "
                            f"definition in PyTorch (max |diff| {err_q:.2e} nats; the f32 model "
                            f"is {(got_q[:, 1:] - want_all).abs().max().item():.2e} away)")
finish()

#!/usr/bin/python3
"""Interop: the states the library hands to an inspect recorder (what /inspect
serves, there rounded to its 'decimals') equal PyTorch's. For every layer and
state (cell c_t and hidden h_t for LSTM, hidden for GRU), after every
character of a text longer than two prefill blocks (64 positions each, the
last character read by the step), the values of dump_states equal those of
torch.nn.LSTM / GRU stepped one character at a time from a zero state, within
1e-5 x (1 + |value|): absolute for h (in (-1, 1)), relative for the
large cell states (|c| reaches tens; float32 keeps 7 digits). The bf16 copy is held to the same bound against torch on its
own (bf16) weights, and the int8 copy against torch_ref.Int8Served, the int8
serving definition written out in PyTorch.

usage: test_torch_states.py CHARRNN_TRAIN DUMP_STATES"""
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import TEXT, check, convert, finish, floats, train  # noqa: E402
from torch_ref import Int8Served, one_hot, torch_model  # noqa: E402

TRAIN, DUMP = sys.argv[1:3]
BIN = os.path.dirname(os.path.abspath(TRAIN))
PROBE = TEXT[:150]
TOL = 1e-5


GATES = ("input_gate", "forget_gate", "cell_gate", "output_gate")  # PyTorch's i, f, g, o


def lstm_gates(rnn, l, x, h_prev):
    """nn.LSTM's documented gates of layer l for input x and state h_prev (double):
    i, f, o = sigmoid, g = tanh of W_ih x + b_ih + W_hh h + b_hh, rows i, f, g, o."""
    w = {k: getattr(rnn, "%s_l%d" % (k, l)).double() for k in ("weight_ih", "bias_ih",
                                                                 "weight_hh", "bias_hh")}
    a = w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ h_prev + w["bias_hh"]
    i, f, g, o = a.chunk(4)
    return {"input_gate": torch.sigmoid(i), "forget_gate": torch.sigmoid(f),
            "cell_gate": torch.tanh(g), "output_gate": torch.sigmoid(o)}


def torch_states(rnn, vocab, text):
    """{(layer, state): (H, n)} from nn.LSTM / GRU stepped per character; for an
    LSTM also its four gates, from its weights and the states before."""
    L, H = rnn.num_layers, rnn.hidden_size
    state, out = None, {}
    with torch.no_grad():
        for ch in text:
            x = one_hot(vocab, ch)
            prev = state[0][:, 0].double() if state is not None else None
            _, state = rnn(x, state)
            h, c = state if isinstance(state, tuple) else (state, None)
            for l in range(L):
                out.setdefault((l + 1, "hidden"), []).append(h[l, 0].clone())
                if c is None:
                    continue
                out.setdefault((l + 1, "cell"), []).append(c[l, 0].clone())
                below = x[0, 0].double() if l == 0 else h[l - 1, 0].double()
                h_prev = prev[l] if prev is not None else torch.zeros(H, dtype=torch.float64)
                for k, v in lstm_gates(rnn, l, below, h_prev).items():
                    out.setdefault((l + 1, k), []).append(v)
    return {k: torch.stack(v, dim=1).double() for k, v in out.items()}


def int8_states(path, text):
    ref = Int8Served(path)
    z = torch.zeros(ref.H, dtype=torch.float64)
    state, out = [(z, z) for _ in range(ref.L)], {}
    for ch in text:
        _, state = ref.step(ref.vocab.index(ch), state)
        for l, (h, c) in enumerate(state):
            out.setdefault((l + 1, "hidden"), []).append(h)
            out.setdefault((l + 1, "cell"), []).append(c)
    return {k: torch.stack(v, dim=1) for k, v in out.items()}


def dumped(path, layer, state, H):
    return floats([DUMP, path, PROBE, str(layer), state], H, len(PROBE)).double()


def compare(name, path, want, tol):
    H = next(iter(want.values())).shape[0]
    for (layer, state), w in sorted(want.items()):
        got = dumped(path, layer, state, H)
        err = ((got - w).abs() / (1 + w.abs())).max().item()
        check(err <= tol, f"{name}: layer {layer} {state} equals PyTorch's after each of "
                          f"{len(PROBE)} characters within {tol:g} x (1 + |value|) "
                          f"(worst {err:.2e}; |value| up to {w.abs().max().item():.1f})")


with tempfile.TemporaryDirectory() as tmp:
    for cell in ["lstm", "gru"]:
        path = train(TRAIN, tmp, cell, 24, 300)
        rnn, _, vocab = torch_model(path)
        compare(cell + " f32", path, torch_states(rnn, vocab, PROBE), TOL)
        if cell != "lstm":
            continue
        bf16 = convert(BIN, path, "bf16")
        rnn, _, vocab = torch_model(bf16)
        compare("lstm bf16", bf16, torch_states(rnn, vocab, PROBE), TOL)
        int8 = convert(BIN, path, "int8")
        compare("lstm int8", int8, int8_states(int8, PROBE), TOL)
finish()

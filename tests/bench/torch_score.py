#!/usr/bin/python3
"""Scores checkpoints of either trainer with one piece of PyTorch code, so the
quality benchmark compares models, not evaluators.

A checkpoint (charrnn's, or torch_train.py --save's in the same layout) is
loaded unchanged into nn.LSTM/GRU/RNN + nn.Linear; the text is encoded with the
checkpoint's own vocabulary and split contiguously like charrnn-train
(--train-frac, --val-frac). Two losses of the validation split, in nats/char:
  batched: B streams of windows of T, state carried, the mean over windows
           (charrnn-train's and torch_train.py's own validation);
  stream:  one continuous stream from the first character of the split, the
           first --stream-chars characters, the way a served model is used.
Prints one JSON line per checkpoint: {"checkpoint", "val_loss", "stream_loss"}.

usage: torch_score.py --data FILE CHECKPOINT... [--train-frac 0.95] [--val-frac 0.05]
       [--batch-size 50] [--seq-length 50] [--stream-chars 10000] [--threads 1]"""
import argparse
import json
import struct

import numpy as np
import torch


def load(path):
    """(cell, L, H, vocab list, {name: tensor}) of a charrnn-layout safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop("__metadata__")
    tensors = {}
    for name, t in header.items():
        if name.startswith(("rnn.", "decoder.")):
            lo, hi = t["data_offsets"]
            arr = np.frombuffer(raw, dtype="<f4", count=(hi - lo) // 4, offset=8 + hlen + lo)
            tensors[name] = torch.from_numpy(arr.copy()).reshape(t["shape"])
    return (meta["cell"], int(meta["num_layers"]), int(meta["hidden_size"]),
            json.loads(meta["vocab"]), tensors)


def score(path, text, a):
    cell, L, H, vocab, tensors = load(path)
    V = len(vocab)
    lut = {c: i for i, c in enumerate(vocab)}
    data = torch.tensor([lut[c] for c in text], dtype=torch.long)
    n = len(data)
    ntrain, nval = int(a.train_frac * n), int(a.val_frac * n)
    nval = min(nval, n - ntrain)
    val = data[ntrain:ntrain + nval]
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](V, H, L)
    dec = torch.nn.Linear(H, V)
    rnn.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rnn.")})
    dec.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
    B, T = a.batch_size, a.seq_length
    out = {"checkpoint": path}
    with torch.no_grad():
        nb = (len(val) - 1) // (B * T)
        if nb > 0:
            Ls = nb * T
            xs = torch.stack([val[b * Ls:(b + 1) * Ls] for b in range(B)], 1)
            ys = torch.stack([val[b * Ls + 1:(b + 1) * Ls + 1] for b in range(B)], 1)
            state, tot = None, 0.0
            for j in range(nb):
                h, state = rnn(torch.nn.functional.one_hot(xs[j * T:(j + 1) * T], V).float(), state)
                tot += torch.nn.functional.cross_entropy(
                    dec(h).reshape(-1, V), ys[j * T:(j + 1) * T].reshape(-1)).item()
            out["val_loss"] = tot / nb
        m = min(a.stream_chars, len(val) - 1)
        if m > 0:
            x = torch.nn.functional.one_hot(val[:m], V).float().unsqueeze(1)  # (m, 1, V)
            h, _ = rnn(x)
            out["stream_loss"] = torch.nn.functional.cross_entropy(
                dec(h[:, 0]), val[1:m + 1]).item()
            out["stream_chars"] = m
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--train-frac", type=float, default=0.95)
    ap.add_argument("--val-frac", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--seq-length", type=int, default=50)
    ap.add_argument("--stream-chars", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    text = open(a.data, encoding="utf-8").read()
    if text.startswith("\ufeff"):
        text = text[1:]
    for path in a.checkpoints:
        print(json.dumps(score(path, text, a)), flush=True)


if __name__ == "__main__":
    main()

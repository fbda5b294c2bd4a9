#!/usr/bin/python3
"""The PyTorch reference sampler for the serving benchmark: a charrnn LSTM
checkpoint loaded unchanged into nn.LSTM + nn.Linear, sampled char by char
(batch 1, torch.no_grad, temperature 1, torch.multinomial), as char-rnn's
sample.lua does. Prints one JSON line: {"threads", "chars", "seconds",
"chars_per_s"} for the timed part (after --warmup characters).

usage: torch_sample.py CHECKPOINT [--seconds 5] [--threads 1] [--warmup 50]"""
import argparse
import json
import struct
import time

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("--seconds", type=float, default=5.0)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--warmup", type=int, default=50)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)

with open(a.checkpoint, "rb") as f:
    raw = f.read()
(hlen,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + hlen])
meta = header.pop("__metadata__")
base = 8 + hlen
tensors = {}
for name, t in header.items():
    lo, hi = t["data_offsets"]
    arr = np.frombuffer(raw, dtype="<f4", count=(hi - lo) // 4, offset=base + lo)
    tensors[name] = torch.from_numpy(arr.copy()).reshape(t["shape"])
assert meta["cell"] == "lstm", "the reference loop is an LSTM"
L, H = int(meta["num_layers"]), int(meta["hidden_size"])
V = tensors["decoder.bias"].shape[0]

rnn = torch.nn.LSTM(V, H, L)
dec = torch.nn.Linear(H, V)
rnn.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rnn.")})
dec.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
rnn.eval()

with torch.no_grad():
    state = None
    x = torch.zeros(1, 1, V)
    tok, n, t0 = 0, 0, None
    while True:
        x.zero_()
        x[0, 0, tok] = 1.0
        out, state = rnn(x, state)
        probs = torch.softmax(dec(out[0, 0]), 0)
        tok = int(torch.multinomial(probs, 1))
        n += 1
        if n == a.warmup:
            t0 = time.perf_counter()
        elif t0 is not None and (n - a.warmup) % 16 == 0:
            dt = time.perf_counter() - t0
            if dt >= a.seconds:
                break
print(json.dumps({"threads": a.threads, "chars": n - a.warmup, "seconds": round(dt, 3),
                  "chars_per_s": round((n - a.warmup) / dt, 1)}))

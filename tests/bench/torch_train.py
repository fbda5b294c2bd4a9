#!/usr/bin/python3
"""The PyTorch reference trainer: the same model, data pipeline and
optimisation as charrnn-train (char-rnn's), for loss and speed comparisons.

Same vocabulary (sorted code points), same contiguous train/val/test split,
same batching (B parallel streams, windows of T, hidden state carried and
detached between windows, reset at each pass), the same initialisations
(--init-range R: uniform +-R, 0 = PyTorch's own 1/sqrt(H); --forget-bias F|none:
LSTM bias_ih forget block), Adam with value clipping and char-rnn's decay
schedule. Prints one JSON line: chars/s over the timed iterations, train and
val loss, iterations run. --max-seconds stops after that much wall clock
(checked between iterations); --save writes the weights as a charrnn-style
safetensors file (tests/bench/torch_score.py scores it like a charrnn checkpoint).

usage: torch_train.py --data FILE [--cell lstm] [--rnn-size 128] [--num-layers 2]
       [--seq-length 50] [--batch-size 50] [--max-iters 2000] [--threads 1]
       [--train-frac 0.9] [--val-frac 0.05] [--eval] [--warmup 3]
       [--init-range 0.08] [--forget-bias 0] [--max-seconds S] [--save FILE]"""
import argparse
import json
import math
import struct
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--cell", default="lstm")
p.add_argument("--rnn-size", type=int, default=128)
p.add_argument("--num-layers", type=int, default=2)
p.add_argument("--seq-length", type=int, default=50)
p.add_argument("--batch-size", type=int, default=50)
p.add_argument("--max-iters", type=int, default=2000)
p.add_argument("--learning-rate", type=float, default=2e-3)
p.add_argument("--lr-decay", type=float, default=0.97)
p.add_argument("--lr-decay-after", type=float, default=10)
p.add_argument("--grad-clip", type=float, default=5.0)
p.add_argument("--train-frac", type=float, default=0.95)
p.add_argument("--val-frac", type=float, default=0.05)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=123)
p.add_argument("--eval", action="store_true")
p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
p.add_argument("--init-range", type=float, default=0.08, help="0 = 1/sqrt(H), PyTorch's default")
p.add_argument("--forget-bias", default="0", help="a number, or none (left as drawn)")
p.add_argument("--max-seconds", type=float, default=0.0, help="0 = no time limit")
p.add_argument("--save", default=None)
a = p.parse_args()
start_time = time.perf_counter()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

text = open(a.data, encoding="utf-8").read()
if text.startswith("\ufeff"):
    text = text[1:]
vocab = sorted(set(text))
V, B, T, H = len(vocab), a.batch_size, a.seq_length, a.rnn_size
lut = {c: i for i, c in enumerate(vocab)}
data = torch.tensor([lut[c] for c in text], dtype=torch.long)
n = len(data)
ntrain, nval = int(a.train_frac * n), int(a.val_frac * n)
if ntrain + nval > n:
    nval = n - ntrain
splits = [data[:ntrain], data[ntrain:ntrain + nval], data[ntrain + nval:]]


def batches(split):
    nb = (len(split) - 1) // (B * T)
    L = nb * T
    xs = torch.stack([split[b * L:(b + 1) * L] for b in range(B)], 1)           # (L, B)
    ys = torch.stack([split[b * L + 1:(b + 1) * L + 1] for b in range(B)], 1)
    return nb, xs, ys


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[a.cell]
        self.rnn = cls(V, H, a.num_layers)
        self.decoder = torch.nn.Linear(H, V)
        r = a.init_range if a.init_range > 0 else 1.0 / math.sqrt(H)
        with torch.no_grad():
            for q in self.parameters():
                q.uniform_(-r, r)
            if a.cell == "lstm" and a.forget_bias != "none":
                for k in range(a.num_layers):
                    getattr(self.rnn, f"bias_ih_l{k}")[H:2 * H] = float(a.forget_bias)

    def forward(self, x, state):
        # one-hot input as a row gather of W_ih^T: embedding of the transposed weight
        out, state = self.rnn(torch.nn.functional.one_hot(x, V).float(), state)
        return self.decoder(out), state


def detach(s):
    return None if s is None else tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()


net = Net()
opt = torch.optim.Adam(net.parameters(), lr=a.learning_rate)
nb, xs, ys = batches(splits[0])
state, t0, loss, done = None, None, float("nan"), 0
for i in range(1, a.max_iters + 1):
    if a.max_seconds > 0 and time.perf_counter() - start_time >= a.max_seconds:
        break
    if i == a.warmup + 1:
        t0 = time.perf_counter()
    j = (i - 1) % nb
    if j == 0:
        state = None
    epochs_done = (i - 1) // nb
    first = 1 if a.lr_decay_after <= 1 else math.ceil(a.lr_decay_after)
    k = epochs_done - first + 1 if epochs_done >= first else 0
    for g in opt.param_groups:
        g["lr"] = a.learning_rate * a.lr_decay ** k
    x, y = xs[j * T:(j + 1) * T], ys[j * T:(j + 1) * T]
    opt.zero_grad()
    logits, state = net(x, detach(state))
    l = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    l.backward()
    torch.nn.utils.clip_grad_value_(net.parameters(), a.grad_clip)
    opt.step()
    loss = l.item()
    done = i
elapsed = time.perf_counter() - t0 if t0 else float("nan")
out = {"iters": done, "threads": a.threads, "train_loss": loss,
       "chars_per_sec": (done - a.warmup) * B * T / elapsed if t0 and done > a.warmup else None}
if a.eval:
    with torch.no_grad():
        vb, vx, vy = batches(splits[1])
        state, tot = None, 0.0
        for j in range(vb):
            logits, state = net(vx[j * T:(j + 1) * T], state)
            tot += torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                     vy[j * T:(j + 1) * T].reshape(-1)).item()
        out["val_loss"] = tot / vb
if a.save:
    # charrnn's checkpoint layout (same tensor names, float32, the vocabulary
    # and shape in the metadata), so one scorer reads both trainers' models.
    tensors = {"rnn." + k: v for k, v in net.rnn.state_dict().items()}
    tensors.update({"decoder." + k: v for k, v in net.decoder.state_dict().items()})
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = v.detach().contiguous().float().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "charrnn", "cell": a.cell, "num_layers": str(a.num_layers),
                              "hidden_size": str(H), "vocab": json.dumps(vocab),
                              "train": json.dumps({"iteration": done, "trainer": "pytorch"})}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(a.save, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(json.dumps(out))

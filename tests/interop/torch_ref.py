"""A charrnn checkpoint as PyTorch modules: torch.nn.LSTM / GRU / RNN and the
decoder torch.nn.Linear, loaded with strict load_state_dict (the reference
the interop tests compare against). bf16 files load as they are; int8 files
are dequantized as docs/checkpoint-format.md says (q * scale per row)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import st  # noqa: E402


def dequantize(tensors):
    """int8 files: W[r][c] = q[r][c] * scale[r] (NAME.scale, F32), as floats."""
    out = {}
    for k, v in tensors.items():
        if k.endswith(".scale"):
            continue
        if v.dtype == torch.int8:
            v = v.float() * tensors[k + ".scale"].unsqueeze(1)
        out[k] = v
    return out


def torch_model(path):
    tensors, meta = st.load(path)
    if meta.get("dtype") == "int8":
        tensors = dequantize(tensors)
    cell, L, H = meta["cell"], int(meta["num_layers"]), int(meta["hidden_size"])
    vocab = json.loads(meta["vocab"])
    V = len(vocab)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    rnn, dec = cls(V, H, L), torch.nn.Linear(H, V)
    rnn.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rnn.")}, strict=True)
    dec.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")},
                        strict=True)
    return rnn, dec, vocab


def one_hot(vocab, text):
    """text as the network's input: (T, 1, V) one-hot rows, one per character."""
    idx = torch.tensor([vocab.index(c) for c in text])
    return torch.nn.functional.one_hot(idx, len(vocab)).float().unsqueeze(1)


def outputs(rnn, vocab, text):
    """The last layer's output after each character of text, from a zero
    state: (T, H), what the decoder reads."""
    with torch.no_grad():
        out, _ = rnn(one_hot(vocab, text))
    return out[:, 0]


class Int8Served:
    """An int8 file as charrnn serves it, written out in PyTorch (float64):
    every product W x quantizes its input vector x with one scale,
    m = max |x|, q = round-half-even(x * 127 / m), xs = m / 127, and takes
    y = b + scale_row * (xs * (W_int8 q)), the integer sum exact in float64.
    Layer 0's input weights stay float (a column per character)."""

    def __init__(self, path):
        t, meta = st.load(path)
        if meta.get("dtype") != "int8":  # not an assert: python3 -O would remove it
            raise ValueError("%s: dtype %r, not an int8 file" % (path, meta.get("dtype")))
        self.cell, self.L = meta["cell"], int(meta["num_layers"])
        self.H = int(meta["hidden_size"])
        self.vocab = json.loads(meta["vocab"])
        self.t = {k: v.double() for k, v in t.items()}

    def product(self, name, bias, x):
        w, sc = self.t[name], self.t[name + ".scale"]
        m = float(x.abs().max().float())  # hidden states are f32 in charrnn
        if m == 0.0:
            return self.t[bias].clone()
        inv = torch.tensor(127.0, dtype=torch.float32) / torch.tensor(m, dtype=torch.float32)
        q = torch.round(x.float() * inv).clamp(-127, 127).double()
        xs = float(torch.tensor(m, dtype=torch.float32) / 127.0)
        return self.t[bias] + sc * (xs * (w @ q))

    def step(self, tok, state):
        H, inp = self.H, None
        new = []
        for l in range(self.L):
            if l == 0:
                gi = self.t["rnn.weight_ih_l0"][:, tok] + self.t["rnn.bias_ih_l0"]
            else:
                gi = self.product("rnn.weight_ih_l%d" % l, "rnn.bias_ih_l%d" % l, inp)
            h = state[l][0]
            gh = self.product("rnn.weight_hh_l%d" % l, "rnn.bias_hh_l%d" % l, h)
            if self.cell == "lstm":
                g = gi + gh
                i, f, c_, o = (g[k * H:(k + 1) * H] for k in range(4))
                c = torch.sigmoid(f) * state[l][1] + torch.sigmoid(i) * torch.tanh(c_)
                h = torch.sigmoid(o) * torch.tanh(c)
                new.append((h, c))
            elif self.cell == "gru":
                r = torch.sigmoid(gi[:H] + gh[:H])
                z = torch.sigmoid(gi[H:2 * H] + gh[H:2 * H])
                n = torch.tanh(gi[2 * H:] + r * gh[2 * H:])
                h = (1 - z) * n + z * h
                new.append((h, None))
            else:
                h = torch.tanh(gi + gh)
                new.append((h, None))
            inp = h
        logits = self.product("decoder.weight", "decoder.bias", inp)
        return logits, new

    def log_softmax(self, text):
        """(len(text) - 1, V): the log-probabilities after each character but the last."""
        z = torch.zeros(self.H, dtype=torch.float64)
        state = [(z, z) for _ in range(self.L)]
        rows = []
        for ch in text[:-1]:
            logits, state = self.step(self.vocab.index(ch), state)
            rows.append(torch.log_softmax(logits, dim=0))
        return torch.stack(rows)

    def greedy(self, prime, n):
        z = torch.zeros(self.H, dtype=torch.float64)
        state = [(z, z) for _ in range(self.L)]
        text = prime
        logits = None
        for ch in prime:
            logits, state = self.step(self.vocab.index(ch), state)
        for _ in range(n):
            k = int(torch.argmax(logits))
            text += self.vocab[k]
            logits, state = self.step(k, state)
        return text

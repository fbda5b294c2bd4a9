#!/usr/bin/env python3
"""Reads safetensors with the standard library only, for the CLI tests.

  st_tool.py compare A B    exit 0 iff both files hold the same tensor names with
                            byte-identical data (parameters, optimizer moments,
                            carried state); prints the tensors that differ
  st_tool.py meta FILE KEY  prints a __metadata__ value
  st_tool.py gen-text N SEED  writes N lines of generated English-like text to stdout
  st_tool.py drift TEXT OUT writes a hand-built 1x1 LSTM checkpoint (vocabulary of TEXT)
                            that degrades with context: its cell state grows by 1/3000 a
                            character, so after a few thousand characters of one stream it
                            predicts the last vocabulary character almost surely, while the
                            short streams of batched validation stay near ln(V)
  st_tool.py tensor FILE NAME  prints a tensor's values as a JSON list
  st_tool.py hostile OUT    writes a 260-byte checkpoint whose metadata says 2 layers of 8192
                            (3.2 GB of parameters) over 3 characters, with one tensor
  st_tool.py tiny OUT VOCAB [DEC_W]  writes a 1x1 LSTM checkpoint over the characters of the
                            JSON array VOCAB, every weight 0 but decoder.weight, all DEC_W (0)
"""
import json
import math
import random
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    data = buf[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} has dtype {t['dtype']}")
        b, e = t["data_offsets"]
        count = 1
        for d in t["shape"]:
            count *= d
        if e - b != 4 * count:
            raise SystemExit(f"{path}: {name} size does not match its shape")
        tensors[name] = (tuple(t["shape"]), data[b:e])
    return meta, tensors


def compare(a, b):
    _, ta = read(a)
    _, tb = read(b)
    if set(ta) != set(tb):
        print("tensor names differ:", sorted(set(ta) ^ set(tb)))
        return 1
    bad = [n for n in sorted(ta) if ta[n] != tb[n]]
    for n in bad:
        fa = struct.unpack(f"<{len(ta[n][1]) // 4}f", ta[n][1])
        fb = struct.unpack(f"<{len(tb[n][1]) // 4}f", tb[n][1])
        diff = max(abs(x - y) for x, y in zip(fa, fb)) if fa and ta[n][0] == tb[n][0] else "shape"
        print(f"{n} differs (max abs difference {diff})")
    print(f"{len(ta) - len(bad)} of {len(ta)} tensors identical")
    return 1 if bad else 0


def gen_text(lines, seed):
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "she", "he", "the bird"]
    verbs = ["sees", "likes", "finds", "follows", "hears", "keeps", "wants"]
    objects = ["the ball", "a red hat", "the river", "some bread", "the small house", "a book"]
    ends = [".", ".", ".", "!", "?"]
    out = []
    for _ in range(lines):
        s = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(ends)}"
        out.append(s[0].upper() + s[1:])
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def write(path, meta, tensors):
    """A safetensors file of float32 tensors: {name: (shape, [values])}."""
    header, blobs, off = {}, [], 0
    for name, (shape, vals) in tensors.items():
        b = struct.pack(f"<{len(vals)}f", *vals)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def drift(text_path, out):
    vocab = sorted(set(open(text_path, encoding="utf-8").read()))
    V = len(vocab)
    # Gates i, f, g, o: input and forget wide open, output open, candidate a
    # constant 1/3000 (tanh of it), so c_t = t / 3000 and h_t = tanh(c_t).
    b_ih = [30.0, 30.0, math.atanh(1.0 / 3000), 30.0]
    dec_w = [0.0] * (V - 1) + [12.0]  # the last character's logit 12 h_t, the others 0
    write(out, {"format": "charrnn", "format_version": "1", "cell": "lstm", "num_layers": "1",
                "hidden_size": "1", "vocab": json.dumps(vocab), "train": "{}"},
          {"rnn.weight_ih_l0": ((4, V), [0.0] * (4 * V)), "rnn.weight_hh_l0": ((4, 1), [0.0] * 4),
           "rnn.bias_ih_l0": ((4,), b_ih), "rnn.bias_hh_l0": ((4,), [0.0] * 4),
           "decoder.weight": ((V, 1), dec_w), "decoder.bias": ((V,), [0.0] * V)})
    return 0


def hostile(out):
    write(out, {"format": "charrnn", "format_version": "1", "cell": "lstm", "num_layers": "2",
                "hidden_size": "8192", "vocab": json.dumps(["a", "b", "c"]), "train": "{}"},
          {"decoder.bias": ((3,), [0.0] * 3)})
    return 0


def tiny(out, vocab_json, dec_w=0.0):
    V = len(json.loads(vocab_json))
    write(out, {"format": "charrnn", "format_version": "1", "cell": "lstm", "num_layers": "1",
                "hidden_size": "1", "vocab": vocab_json, "train": "{}"},
          {"rnn.weight_ih_l0": ((4, V), [0.0] * (4 * V)), "rnn.weight_hh_l0": ((4, 1), [0.0] * 4),
           "rnn.bias_ih_l0": ((4,), [0.0] * 4), "rnn.bias_hh_l0": ((4,), [0.0] * 4),
           "decoder.weight": ((V, 1), [dec_w] * V), "decoder.bias": ((V,), [0.0] * V)})
    return 0


def main(argv):
    if len(argv) == 2 and argv[0] == "hostile":
        return hostile(argv[1])
    if len(argv) in (3, 4) and argv[0] == "tiny":
        return tiny(argv[1], argv[2], *(float(x) for x in argv[3:]))
    if len(argv) == 3 and argv[0] == "drift":
        return drift(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "tensor":
        _, t = read(argv[1])
        shape, raw = t[argv[2]]
        print(json.dumps(list(struct.unpack(f"<{len(raw) // 4}f", raw))))
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "meta":
        meta, _ = read(argv[1])
        print(meta[argv[2]])
        return 0
    if len(argv) == 3 and argv[0] == "gen-text":
        return gen_text(int(argv[1]), int(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

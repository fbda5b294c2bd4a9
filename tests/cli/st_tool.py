#!/usr/bin/env python3
"""Reads safetensors with the standard library only, for the CLI tests.

  st_tool.py compare A B    exit 0 iff both files hold the same tensor names with
                            byte-identical data (parameters, optimizer moments,
                            carried state); prints the tensors that differ
  st_tool.py meta FILE KEY  prints a __metadata__ value
  st_tool.py gen-text N SEED  writes N lines of generated English-like text to stdout
"""
import json
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


def main(argv):
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

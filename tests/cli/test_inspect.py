#!/usr/bin/python3
"""charrnn-inspect finds what exists: a small LSTM trained (one thread, fixed
seed) on a generated text of nested brackets and quoted strings has a unit
that counts the bracket depth and one that follows the quote parity, and
discovery reports them. Bounds set from what was measured (in the checks).
Also: the table's shape, the span match, and bad flags.

usage: test_inspect.py CHARRNN_TRAIN CHARRNN_INSPECT"""
import os
import random
import subprocess
import sys
import tempfile

TRAIN, INSPECT = sys.argv[1:3]
failures = 0


def check(cond, msg):
    global failures
    print(("ok: " if cond else "FAIL: ") + msg)
    failures += not cond


def generate(seed, n):
    """Statements with nested (), [], {} and quoted strings of 2..10 words."""
    rng = random.Random(seed)
    words = "alpha beta gamma delta x y z foo bar baz one two".split()

    def expr(d):
        k = rng.random()
        if d >= 4 or k < 0.3:
            return rng.choice(words)
        if k < 0.5:
            return '"' + " ".join(rng.choice(words) for _ in range(rng.randint(2, 10))) + '"'
        o, c = rng.choice(["()", "[]", "{}"])
        return o + ", ".join(expr(d + 1) for _ in range(rng.randint(1, 3))) + c

    out = []
    while sum(map(len, out)) < n:
        out.append("let " + rng.choice(words) + " = " + expr(0) + ";\n")
    return "".join(out)


with tempfile.TemporaryDirectory() as tmp:
    data, probe = os.path.join(tmp, "data.txt"), os.path.join(tmp, "probe.txt")
    with open(data, "w") as f:
        f.write(generate(7, 60000))
    with open(probe, "w") as f:
        f.write(generate(8, 3000))
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", os.path.join(tmp, "ck"),
                    "--num-layers", "1", "--rnn-size", "48", "--seq-length", "64",
                    "--batch-size", "16", "--max-iters", "1000", "--eval-every", "1000",
                    "--threads", "1", "--seed", "1", "--learning-rate", "5e-3", "--quiet"],
                   check=True)
    ck = os.path.join(tmp, "ck", "best.safetensors")
    out = subprocess.run([INSPECT, "--checkpoint", ck, "--text", probe], check=True,
                         capture_output=True, text=True).stdout
    print(out)
    rows = [line.split() for line in out.splitlines()[1:]]
    best = {}
    for feat, layer, state, unit, r in rows:
        best.setdefault(feat, []).append((int(layer), state, int(unit), float(r)))
    check(all(len(v) == 5 for v in best.values()) and set(best) ==
          {"line_position", "word_position", "quote", "bracket_depth", "indent"} - {"indent"},
          "5 units per feature that varies (no line is indented): %s" % sorted(best))
    check(all(abs(v[i][3]) >= abs(v[i + 1][3]) for v in best.values() for i in range(4)),
          "largest |r| first")
    # measured on this machine: bracket_depth |r| 0.8158, quote |r| 0.6147
    check(abs(best["bracket_depth"][0][3]) >= 0.75,
          "a bracket-depth unit: |r| %.4f >= 0.75" % abs(best["bracket_depth"][0][3]))
    check(abs(best["quote"][0][3]) >= 0.5,
          "a quote unit: |r| %.4f >= 0.5" % abs(best["quote"][0][3]))
    # the span match: the characters of the first quoted string
    text = open(probe).read()
    a = text.index('"') + 1
    b = text.index('"', a)
    m = subprocess.run([INSPECT, "--checkpoint", ck, "--text", probe, "--span", str(a),
                        "--span-end", str(b), "--layer", "1", "--state", "hidden",
                        "--threshold", "0.3"], check=True, capture_output=True, text=True).stdout
    print(m)
    check(m.startswith("units on over [%d, %d)" % (a, b)) and "other spans" in m,
          "span match output")
    m = subprocess.run([INSPECT, "--checkpoint", ck, "--text", probe, "--span", str(a),
                        "--span-end", str(b), "--layer", "1", "--state", "forget_gate",
                        "--threshold", "0.9"], check=True, capture_output=True, text=True).stdout
    check("(layer 1 forget_gate, threshold 0.9)" in m, "span match on a gate: %r" % m[:120])
    for args, what in [([], "no flags"), (["--checkpoint", ck], "no --text"),
                       (["--checkpoint", ck, "--text", probe, "--span", "3"], "--span alone"),
                       (["--checkpoint", ck, "--text", probe, "--state", "gates"], "bad --state"),
                       (["--checkpoint", ck, "--text", probe, "--top", "0"], "--top 0")]:
        p = subprocess.run([INSPECT] + args, capture_output=True, text=True)
        check(p.returncode == 2 and p.stderr.startswith("charrnn-inspect:"),
              "%s: exit 2 with a message (%d %r)" % (what, p.returncode, p.stderr[:80]))
    p = subprocess.run([INSPECT, "--checkpoint", ck, "--text", probe, "--span", "10",
                        "--span-end", "999999"], capture_output=True, text=True)
    check(p.returncode == 1 and "span" in p.stderr, "a span past the text: %r" % p.stderr)
sys.exit(1 if failures else 0)

#!/usr/bin/python3
"""The default model's interpretable units, from a running charrnn-serve:
POST /inspect with "find" over a text (e.g. the last 12,000 characters of
tinyshakespeare), then the best line_position unit's served values, checked
to give the reported r, drawn as the blog's figure: a passage's characters
each on a background from blue (-1) through white to red (+1), the unit's
value squashed by tanh. Writes an SVG and prints the table (docs/inspect.md).

usage: inspect_figure.py PORT TEXT_FILE TAIL_CHARS OUT.svg [PASSAGE_START PASSAGE_LEN]"""
import html
import json
import math
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pearson import pearson  # noqa: E402

PORT, PATH, TAIL, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
START = int(sys.argv[5]) if len(sys.argv) > 5 else 0
LEN = int(sys.argv[6]) if len(sys.argv) > 6 else 480
FEATURES = ["line_position", "word_position", "quote", "bracket_depth", "indent"]


def inspect(body):
    req = urllib.request.Request("http://127.0.0.1:%s/inspect" % PORT, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def line_position(text):
    out, k = [], 0
    for ch in text:
        k = 0 if ch == "\n" else k + 1
        out.append(k)
    return out


def color(v):
    t = math.tanh(v)
    a = int(255 * (1 - abs(t)))
    return "rgb(255,%d,%d)" % (a, a) if t > 0 else "rgb(%d,%d,255)" % (a, a)


def svg(text, values, title):
    cw, lh, x0, y0 = 8.4, 18, 10, 40
    rows, x, y = [], x0, y0
    for ch, v in zip(text, values):
        if ch == "\n":
            rows.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>' %
                        (x, y - 13, cw, lh, color(v)))
            x, y = x0, y + lh
            continue
        rows.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                    '<text x="%.1f" y="%d">%s</text>' %
                    (x, y - 13, cw, lh, color(v), x, y, html.escape(ch) if ch != " " else ""))
        x += cw
    w = max(600, int(max(len(line) for line in text.split("\n")) * cw + 2 * x0 + 10))
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'font-family="monospace" font-size="14">\n<rect width="100%%" height="100%%" '
            'fill="white"/>\n<text x="%d" y="20" font-weight="bold">%s</text>\n%s\n</svg>\n' %
            (w, y + lh, x0, html.escape(title), "\n".join(rows)))


text = open(PATH, encoding="utf-8").read()[-TAIL:]
found = inspect({"text": text, "find": FEATURES})["found"]
print("| feature | layer | state | unit | r |\n|---|---|---|---|---|")
for f in FEATURES:
    for x in [y for y in found if y["feature"] == f][:3]:
        print("| %s | %d | %s | %d | %.4f |" % (f, x["layer"], x["state"], x["unit"], x["r"]))
best = next(x for x in found if x["feature"] == "line_position")
v = inspect({"text": text, "layer": best["layer"], "state": best["state"],
             "units": [best["unit"]]})["units"][0]["values"]
r = pearson(v, line_position(text))
print("line_position: layer %d %s unit %d, found r %.6f, r of the served values %.6f" %
      (best["layer"], best["state"], best["unit"], best["r"], r))
with open(OUT, "w") as f:
    f.write(svg(text[START:START + LEN], v[START:START + LEN],
                "layer %d %s unit %d (r = %.2f with the position in the line)" %
                (best["layer"], best["state"], best["unit"], best["r"])))

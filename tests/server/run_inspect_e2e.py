#!/usr/bin/python3
"""End-to-end tests of POST /inspect (the real daemon, models from
charrnn-train): one layer's states per character, rounded to 'decimals';
the same values alone and batched with other jobs (the engine's step path,
not the prefill); discovery's r equal to Pearson's r of the values /inspect
serves for that unit; LSTMVis's span match against its definition on the
served values; the response bound (10,000 characters x 8 units); metrics;
and the bad-request case of every field (400 naming it, 413 over the limit).

usage: run_inspect_e2e.py CHARRNN_SERVE CHARRNN_TRAIN CHARRNN_SAMPLE [TEST_NAME_SUBSTRING...]"""
import json
import math
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_e2e as e2e  # noqa: E402
from run_e2e import Daemon, Env, check, expect_error, make_text, metric  # noqa: E402
from pearson import pearson  # noqa: E402 (tests/lib, on the path run_e2e set)

ONLY = sys.argv[4:]
J = {"Content-Type": "application/json"}
TESTS, test = e2e.registry()
TEXT = make_text()[:400]
ENV = Env()


def setup():
    e2e.setup()  # trains "tiny" (lstm 2x32) and "other" (gru 2x24)
    ENV.d = Daemon(e2e.ENV.models, "--default-model", "tiny", "--max-score-chars", "10000",
                   "--max-body", "65536")


def teardown():
    try:
        check(ENV.d.stop() == 0, "daemon exit status")
    finally:
        e2e.teardown()


def post(body, path="/inspect"):
    data = body if isinstance(body, str) else json.dumps(body)
    return ENV.d.json("POST", path, data, J)


def line_position(text):
    out, k = [], 1
    for ch in text:
        k = 0 if ch == "\n" else k + 1 if out else 1
        out.append(k)
    return out


@test
def values_shape_and_rounding():
    st, _, a = post({"text": TEXT, "layer": 2, "units": [0, 5, 31]})
    check(st == 200, a)
    check(a["model"] == "tiny" and a["layer"] == 2 and a["state"] == "cell" and
          a["chars"] == len(TEXT) and a["decimals"] == 4, {k: a[k] for k in a if k != "units"})
    check([u["unit"] for u in a["units"]] == [0, 5, 31], a["units"][0].keys())
    for u in a["units"]:
        check(len(u["values"]) == len(TEXT), len(u["values"]))
        check(all(round(v, 4) == v for v in u["values"]), "values rounded to 4 decimals")
    st, _, b = post({"text": TEXT, "layer": 2, "units": [0, 5, 31], "decimals": 8})
    check(st == 200 and b["decimals"] == 8, b.get("decimals"))
    for ua, ub in zip(a["units"], b["units"]):
        check(max(abs(x - y) for x, y in zip(ua["values"], ub["values"])) <= 5.0001e-5,
              "decimals 4 is decimals 8 rounded")
    st, _, h = post({"text": TEXT, "layer": 1, "units": [3], "state": "hidden"})
    check(st == 200 and h["state"] == "hidden" and
          all(-1 <= v <= 1 for v in h["units"][0]["values"]), "h in [-1, 1]")
    st, _, g = post({"model": "other", "text": "the", "layer": 1, "units": [0]})
    check(st == 200 and g["state"] == "hidden", "a GRU's default state is hidden: %r" % g)
    st, _, one = post({"text": "t", "layer": 1, "units": [0]})
    check(st == 200 and one["chars"] == 1 and len(one["units"][0]["values"]) == 1, one)


@test
def same_values_alone_and_batched():
    """Alone, a text is read by the prefill; with many jobs in a batch, by the
    step: both hand the recorder the same bits."""
    body = {"text": TEXT, "layer": 2, "units": list(range(32)), "decimals": 9}
    st, _, alone = post(body)
    check(st == 200, alone)
    results = [None] * 6

    def run(i):
        results[i] = post(body)

    def sampler():
        ENV.d.sample(length=400, seed=3)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    ts += [threading.Thread(target=sampler) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i, (st, _, b) in enumerate(results):
        check(st == 200 and b["units"] == alone["units"], "inspect %d differs under load" % i)


@test
def discovery_r_is_the_served_values_r():
    st, _, f = post({"text": TEXT, "find": ["line_position", "word_position", "quote"]})
    check(st == 200, f)
    found = f["found"]
    feats = {x["feature"] for x in found}
    check(feats == {"line_position", "word_position"},
          "no quote in the text: no r for it (%s)" % feats)
    check(sum(x["feature"] == "line_position" for x in found) == 5, "best 5 per feature")
    check(all(abs(found[i]["r"]) >= abs(found[i + 1]["r"]) for i in range(len(found) - 1)),
          "largest |r| first")
    feature = line_position(TEXT)
    for x in [y for y in found if y["feature"] == "line_position"][:3]:
        st, _, v = post({"text": TEXT, "layer": x["layer"], "state": x["state"],
                         "units": [x["unit"]]})
        r = pearson(v["units"][0]["values"], feature)
        check(abs(r - x["r"]) <= 1e-9, "found r %.12f, r of the served values %.12f" % (x["r"], r))
    print("     best line_position unit of tiny: %s" % found[0])


@test
def span_match():
    st, _, all_ = post({"text": TEXT, "layer": 1, "units": list(range(32))})
    vals = [u["values"] for u in all_["units"]]
    # a span where unit U switches on: a maximal run above its median TH of 3+ characters
    def switch_on(v, th):
        for t in range(1, len(TEXT) - 4):
            if v[t - 1] <= th and all(x > th for x in v[t:t + 3]):
                end = t + 3
                while end < len(TEXT) and v[end] > th:
                    end += 1
                if end < len(TEXT):
                    return t, end
        return None

    U = 0
    TH = sorted(vals[U])[len(TEXT) // 2]
    check(switch_on(vals[U], TH), "unit 0 switches on somewhere")
    start, end = switch_on(vals[U], TH)
    st, _, a = post({"text": TEXT, "layer": 1, "units": [U],
                     "match": {"start": start, "end": end, "threshold": TH}})
    check(st == 200 and a["units"][0]["values"] == vals[U], a)
    m = a["match"]

    def hit(k):
        v = vals[k]
        return all(v[t] > TH for t in range(start, end)) and v[start - 1] <= TH and v[end] <= TH

    check(U in m["units"], "the unit that switches on there matches: %s" % m["units"])
    check(m["units"] == [k for k in range(32) if hit(k)], "matched units %s" % m["units"])
    for s in m["spans"]:
        on = [all(vals[k][t] > TH for k in m["units"]) for t in range(s["start"], s["end"])]
        check(all(on), "span %s: all units on" % s)
        check(s["start"] == 0 or not all(vals[k][s["start"] - 1] > TH for k in m["units"]),
              "span %s is maximal" % s)
        check(s["end"] <= start or s["start"] >= end, "span %s is another span" % s)
    print("     match of [%d, %d) (unit %d on): units %s, %d other spans" % (
        start, end, U, m["units"], m["matched_spans"]))


GATES = ("input_gate", "forget_gate", "cell_gate", "output_gate")


@test
def gates_and_saturation():
    """The gates are the ones the cell used: c_t = f c_{t-1} + i g and
    h_t = o tanh(c_t) hold on the served values of every unit (a gate taken
    from the wrong rows breaks them); their ranges are the sigmoid's and
    tanh's; saturation is the fraction of characters with a sigmoid gate
    below 0.1 or above 0.9, per layer, gate and unit, of those values."""
    text = make_text()[:600]
    n, units = len(text), list(range(32))
    for layer in (1, 2):
        got = {}
        for state in ("cell", "hidden") + GATES:
            st, _, a = post({"text": text, "layer": layer, "units": units, "state": state,
                             "decimals": 9})
            check(st == 200 and a["state"] == state, a)
            got[state] = [u["values"] for u in a["units"]]
        worst = 0.0
        for j in units:
            c, h = got["cell"][j], got["hidden"][j]
            i, f, g, o = (got[k][j] for k in GATES)
            for t in range(n):
                c_prev = c[t - 1] if t else 0.0
                worst = max(worst, abs(f[t] * c_prev + i[t] * g[t] - c[t]) / (1 + abs(c[t])),
                            abs(o[t] * math.tanh(c[t]) - h[t]))
            check(all(0 <= v <= 1 for k in ("input_gate", "forget_gate", "output_gate")
                      for v in got[k][j]) and all(-1 <= v <= 1 for v in g),
                  "layer %d unit %d: gates out of range" % (layer, j))
        # float32 cell arithmetic, values rounded to 9 decimals
        check(worst < 1e-5, "layer %d: the cell equations on the served gates, worst %.2e"
              % (layer, worst))
        print("     layer %d: c = f c' + i g, h = o tanh(c) within %.1e" % (layer, worst))
        st, _, s = post({"text": text, "saturation": True, "decimals": 9})
        check(st == 200 and len(s["saturation"]) == 2 and "units" not in s, s)
        sat = s["saturation"][layer - 1]
        check(sat["layer"] == layer and set(sat) == {"layer", "input_gate", "forget_gate",
                                                      "output_gate"}, sorted(sat))
        for k in ("input_gate", "forget_gate", "output_gate"):
            want_l = [round(sum(v < 0.1 for v in got[k][j]) / n, 4) for j in units]
            want_r = [round(sum(v > 0.9 for v in got[k][j]) / n, 4) for j in units]
            check(sat[k]["left"] == want_l and sat[k]["right"] == want_r,
                  "layer %d %s saturation: %r %r != %r %r" % (layer, k, sat[k]["left"][:4],
                                                            sat[k]["right"][:4], want_l[:4],
                                                            want_r[:4]))
    # with find, both; a GRU has no LSTM gates
    st, _, a = post({"text": text, "find": ["line_position"], "saturation": True})
    check(st == 200 and a["found"] and len(a["saturation"]) == 2, sorted(a))
    for body, field in [({"state": "input_gate", "layer": 1, "units": [0]}, "state"),
                        ({"saturation": True}, "saturation")]:
        expect_error(post(dict(body, model="other", text="the fox")), 400, field, "LSTM gates")
    expect_error(post({"text": "the fox", "saturation": 1}), 400, "saturation")


@test
def response_bound_10000_chars_8_units():
    text = (make_text() * 3)[:10000]
    st, _, raw = ENV.d.request("POST", "/inspect", json.dumps(
        {"text": text, "layer": 2, "units": list(range(8))}), J)
    check(st == 200, raw[:200])
    check(len(raw) < 1.5e6, "response %d bytes" % len(raw))
    print("     10,000 chars x 8 units: %d bytes" % len(raw))


@test
def bad_requests():
    t = {"text": "the fox"}
    expect_error(post({"layer": 1, "units": [0]}), 400, "text", "required")
    expect_error(post(dict(t, layer=3, units=[0])), 400, "layer", "1\\.\\.2")
    expect_error(post(dict(t, layer=0, units=[0])), 400, "layer")
    expect_error(post(dict(t, units=[0])), 400, "layer", "required")
    expect_error(post(dict(t, layer=1, units=[32])), 400, "units", "0\\.\\.31")
    expect_error(post(dict(t, layer=1, units=[-1])), 400, "units")
    expect_error(post(dict(t, layer=1, units=list(range(65)))), 400, "units", "64")
    expect_error(post(dict(t, layer=1, units=[])), 400, "units")
    expect_error(post(dict(t, layer=1)), 400, "units")
    expect_error(post(dict(t, layer=1, units=[0], state="gates")), 400, "state")
    expect_error(post(dict(t, model="other", layer=1, units=[0], state="cell")), 400, "state",
                 "no cell state")
    expect_error(post(dict(t, find=["nope"])), 400, "find", "nope")
    expect_error(post(dict(t, find=[])), 400, "find")
    expect_error(post(dict(t, find=["quote"], units=[0], layer=1)), 400, "find")
    expect_error(post(dict(t, layer=1, units=[0], decimals=10)), 400, "decimals")
    expect_error(post(dict(t, layer=1, match={"start": 3, "end": 2, "threshold": 0})), 400,
                 "match")
    expect_error(post(dict(t, layer=1, match={"start": 3, "end": 99, "threshold": 0})), 400,
                 "match")
    expect_error(post({"text": "", "layer": 1, "units": [0]}), 400, "text")
    expect_error(post({"text": "Zebra€", "layer": 1, "units": [0]}), 400, "text")
    expect_error(post({"text": "a" * 10001, "layer": 1, "units": [0]}), 413, "text", "10000")
    expect_error(post(dict(t, layer=1, units=[0], model="nope")), 404, "model")
    expect_error(post(dict(t, layer=1, units=[0], unit=1)), 400, "unit", "unknown field")


@test
def counted_in_metrics():
    fams, _ = ENV.d.metrics()
    before = metric(fams, "charrnn_model_requests_total", model="other", route="/inspect") or 0
    post({"model": "other", "text": "the fox", "layer": 1, "units": [0]})
    fams, _ = ENV.d.metrics()
    check(metric(fams, "charrnn_model_requests_total", model="other", route="/inspect") ==
          before + 1, "model requests counted for /inspect")


def main():
    return e2e.run_tests(TESTS, ONLY, setup, teardown)


if __name__ == "__main__":
    sys.exit(main())

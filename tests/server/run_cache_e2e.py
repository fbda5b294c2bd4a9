#!/usr/bin/python3
"""End-to-end tests of charrnn-serve's prefix-state cache (--state-cache-mb):
the real daemon over real HTTP, models from charrnn-train.

Every answer of a daemon with the cache, cold and warm, is compared with the
same request to a daemon without it (--state-cache-mb 0) and with
charrnn-sample: the text, and every log-probability with its alternatives
(printed with 9 significant digits, so a float that differs in one ulp
differs in the JSON). And usage.cached_chars / cached_tokens say exactly how
much came from the cache: the longest cached prefix, given what the cache
keeps (a state every 256 characters along a prime, after the whole prime,
after prime + generated text but its last character).

usage: run_cache_e2e.py CHARRNN_SERVE CHARRNN_TRAIN CHARRNN_SAMPLE [TEST_NAME_SUBSTRING...]"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_e2e as e2e  # noqa: E402
from run_e2e import Env, check, Daemon, cli_sample, metric  # noqa: E402

ONLY = sys.argv[4:]
EVERY = 256  # ENGINE_PREFIX_EVERY (server/engine.h)
TESTS, test = e2e.registry()
ENV = Env()
FLAGS = ("--max-prime", "20000", "--max-score-chars", "20000", "--max-body", "262144",
         "--poll-interval", "0.2", "--default-model", "tiny")


def setup():
    ENV.dir = tempfile.mkdtemp(prefix="charrnn-cache-e2e-")
    data = os.path.join(ENV.dir, "data.txt")
    ENV.text = e2e.make_text()
    with open(data, "w", encoding="utf-8") as f:
        f.write(ENV.text)
    ENV.v1 = e2e.train(ENV.dir, data, "v1", seed=1)
    ENV.v2 = e2e.train(ENV.dir, data, "v2", seed=2, cell="gru", size=24)
    ENV.models = models_dir("models", tiny=ENV.v1)
    ENV.cached = Daemon(ENV.models, *FLAGS)
    ENV.plain = Daemon(ENV.models, *FLAGS, "--state-cache-mb", "0")


def teardown():
    for d in (getattr(ENV, "cached", None), getattr(ENV, "plain", None)):
        if d:
            check(d.stop() == 0, "daemon exit status not 0")
    shutil.rmtree(ENV.dir, ignore_errors=True)


def models_dir(name, **models):
    """A new folder name under the fixture's holding models {name: checkpoint}."""
    path = os.path.join(ENV.dir, name)
    os.mkdir(path)
    for model, ckpt in models.items():
        shutil.copyfile(ckpt, os.path.join(path, model + ".safetensors"))
    return path


def prime_at(start, n):
    """n characters of the training text from start (a known vocabulary),
    wrapping around its end."""
    t = ENV.text
    check(n <= len(t), "the text is shorter than %d" % n)
    start %= len(t)
    return (t + t)[start:start + n]


def sample(d, **fields):
    fields.setdefault("length", 40)
    fields.setdefault("temperature", 0.9)
    fields.setdefault("seed", 7)
    fields.setdefault("logprobs", 3)
    st, _, body = d.json("POST", "/sample", fields)
    check(st == 200, "status %d: %s" % (st, body))
    return body


def same(a, b, what):
    check(a["text"] == b["text"], "%s: text %r != %r" % (what, a["text"], b["text"]))
    check(json.dumps(a.get("logprobs")) == json.dumps(b.get("logprobs")),
          "%s: log-probabilities differ" % what)


def stats(d):
    fams, _ = d.metrics()
    return {k: metric(fams, "charrnn_state_cache_" + k) for k in
            ("hits_total", "misses_total", "resumed_chars_total", "inserts_total",
             "evictions_total", "retired_total", "entries", "bytes", "budget_bytes")}


@test
def warm_equals_cold_equals_uncached_equals_cli():
    p = prime_at(1000, 1500)
    ref = sample(ENV.plain, prime=p)
    check(ref["usage"]["cached_chars"] == 0, "a daemon without cache reported cached characters")
    cold = sample(ENV.cached, prime=p)
    warm = sample(ENV.cached, prime=p)
    same(cold, ref, "cold")
    same(warm, ref, "warm")
    check(cold["usage"]["cached_chars"] == 0, "cold: %s" % cold["usage"])
    check(warm["usage"]["cached_chars"] == 1500, "warm: %s" % warm["usage"])
    check(warm["text"] == cli_sample(ENV.v1, prime=p, length=40, temperature=0.9, seed=7),
          "the daemon's text is not charrnn-sample's")
    # temperature 0 and other seeds, from the same cached state
    for fields in ({"temperature": 0}, {"seed": 99, "top_k": 5}, {"seed": 3, "top_p": 0.8}):
        a = sample(ENV.cached, prime=p, **fields)
        check(a["usage"]["cached_chars"] == 1500, "warm %s: %s" % (fields, a["usage"]))
        same(a, sample(ENV.plain, prime=p, **fields), "warm %s" % fields)


@test
def the_text_so_far_plus_what_came_back():
    """A writer's session: each request is the previous prime + the text it
    returned + a typed character; it resumes where the last one stopped."""
    p = prime_at(5000, 600)
    for i in range(6):
        a = sample(ENV.cached, prime=p, length=20, seed=i)
        same(a, sample(ENV.plain, prime=p, length=20, seed=i), "keystroke %d" % i)
        if i > 0:
            # the last request kept prime + its text but the last character
            check(a["usage"]["cached_chars"] == want, "keystroke %d: %s, want %d cached" % (
                i, a["usage"], want))
        want = len(p) + len(a["text"]) - 1
        p = p + a["text"] + "e"


@test
def a_prime_that_differs_in_its_last_character():
    p = prime_at(9000, 1000)
    sample(ENV.cached, prime=p)
    q = p[:-1] + ("x" if p[-1] != "x" else "y")
    a = sample(ENV.cached, prime=q)
    same(a, sample(ENV.plain, prime=q), "last character changed")
    check(a["usage"]["cached_chars"] == (len(q) - 1) // EVERY * EVERY,
          "resumed from %s, want the checkpoint before the difference" % a["usage"])


@test
def checkpoints_along_a_long_prime():
    p = prime_at(13000, 1200)
    sample(ENV.cached, prime=p)
    for cut in (300, 700, 1100):
        q = p[:cut] + "quietly " + prime_at(20, 50)
        a = sample(ENV.cached, prime=q)
        same(a, sample(ENV.plain, prime=q), "shares %d characters" % cut)
        check(a["usage"]["cached_chars"] == cut // EVERY * EVERY,
              "shares %d: %s" % (cut, a["usage"]))


@test
def streaming_and_the_access_log():
    p = prime_at(17000, 700)
    sample(ENV.cached, prime=p, length=10)
    st, _, events = ENV.cached.stream({"prime": p, "length": 30, "seed": 5, "temperature": 0.9})
    check(st == 200, "stream status %d" % st)
    text = "".join(e.get("text", "") for e in events if "text" in e and "usage" not in e)
    last = events[-1]
    check(last["usage"]["cached_chars"] == 700, "last event: %s" % last)
    check(text == sample(ENV.plain, prime=p, length=30, seed=5)["text"], "streamed text differs")
    line = ENV.cached.wait_log(lambda o: o.get("msg") == "request" and o.get("stream") is True
                               and o.get("cached_chars") == 700, 5)
    check(line is not None, "no access-log line with cached_chars")


@test
def v1_completions_cached_tokens():
    p = prime_at(21000, 900)
    body = {"prompt": [p, p[:400]], "max_tokens": 25, "temperature": 0.9, "seed": 11,
            "logprobs": 2, "n": 2}
    ref = ENV.plain.json("POST", "/v1/completions", body)[2]
    first = ENV.cached.json("POST", "/v1/completions", body)[2]
    again = ENV.cached.json("POST", "/v1/completions", body)[2]
    for got, what in ((first, "cold"), (again, "warm")):
        check([c["text"] for c in got["choices"]] == [c["text"] for c in ref["choices"]],
              "%s choices differ" % what)
        check(json.dumps([c["logprobs"] for c in got["choices"]]) ==
              json.dumps([c["logprobs"] for c in ref["choices"]]), "%s logprobs differ" % what)
    check(ref["usage"]["prompt_tokens_details"]["cached_tokens"] == 0, "uncached: %s" %
          ref["usage"])
    check(again["usage"]["prompt_tokens_details"]["cached_tokens"] == 1300,
          "warm: %s" % again["usage"])
    # echo with logprobs scores the prompt: the states above carry no
    # records, so the first echo computes every prompt character and keeps
    # its records at the checkpoints (256, 512, 768); the second resumes there
    body = {"prompt": p, "max_tokens": 5, "echo": True, "logprobs": 1, "seed": 1}
    b = ENV.plain.json("POST", "/v1/completions", body)[2]
    for want in (0, 3 * EVERY):
        a = ENV.cached.json("POST", "/v1/completions", body)[2]
        check(json.dumps(a["choices"][0]["logprobs"]) == json.dumps(b["choices"][0]["logprobs"]),
              "echo logprobs differ (cached %d)" % want)
        check(a["choices"][0]["text"] == b["choices"][0]["text"], "echo text differs")
        check(a["usage"]["prompt_tokens_details"]["cached_tokens"] == want,
              "echo: %s, want %d cached" % (a["usage"], want))


def score_both(t, k, cached):
    """/score of t with k alternatives on both daemons: the same answer
    (all but timing and usage), and the cached one took `cached` characters
    from the cache."""
    sa = ENV.cached.json("POST", "/score", {"text": t, "top_logprobs": k})
    sb = ENV.plain.json("POST", "/score", {"text": t, "top_logprobs": k})
    check(sa[0] == 200 and sb[0] == 200, "/score: %d %d" % (sa[0], sb[0]))
    strip = lambda b: json.dumps({k: v for k, v in b.items() if k not in ("timing", "usage")},
                                 sort_keys=True)
    check(strip(sa[2]) == strip(sb[2]), "/score differs with the cache (%d cached)" % cached)
    check(sb[2]["usage"] == {"prime_chars": len(t), "cached_chars": 0}, "%s" % sb[2]["usage"])
    check(sa[2]["usage"] == {"prime_chars": len(t), "cached_chars": cached},
          "/score usage %s, want %d cached (top_logprobs %d)" % (sa[2]["usage"], cached, k))


@test
def score_resumes_from_scored_states():
    """A scored text keeps its records with the states at the checkpoints:
    scoring it again (or a longer text that starts with it) reads only what
    follows the last checkpoint before its last character, with as many
    alternatives or fewer; more alternatives than were kept read it all."""
    t = prime_at(23000, 800)
    score_both(t, 2, 0)
    score_both(t, 2, 3 * EVERY)
    score_both(t, 1, 3 * EVERY)  # alternatives kept: a prefix of the top 2
    score_both(t + prime_at(5000, 300), 0, 3 * EVERY)
    score_both(t + prime_at(5000, 300), 0, 4 * EVERY)  # the longer text's own checkpoint
    score_both(t, 3, 0)  # more than kept: from the start, and keeps 3 from now
    score_both(t, 3, 3 * EVERY)
    # states a generation left carry no records; scoring adds them to them
    p = prime_at(24000, 600)
    sample(ENV.cached, prime=p)
    score_both(p, 0, 0)
    score_both(p, 0, 2 * EVERY)
    # the whole text but one character cached: it is done at once
    score_both(p[:2 * EVERY + 1], 0, 2 * EVERY)


@test
def score_leaves_states_for_sampling():
    t = prime_at(25000, 800)
    score_both(t, 2, 0)
    a = sample(ENV.cached, prime=t)
    same(a, sample(ENV.plain, prime=t), "after /score")
    # scoring reads the text but its last character (which needs only the logits before it)
    check(a["usage"]["cached_chars"] == len(t) - 1, "after /score: %s" % a["usage"])


@test
def concurrent_requests_sharing_a_prefix():
    base = prime_at(29000, 1100)
    cases = [dict(prime=base + prime_at(100 * i, 30 + i), seed=i, length=30) for i in range(16)]
    want = [sample(ENV.plain, **c) for c in cases]
    for rnd in range(2):  # cold, then with the states the first round left
        got = [None] * len(cases)

        def run(i):
            got[i] = sample(ENV.cached, **cases[i])
        th = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        for i in range(len(cases)):
            same(got[i], want[i], "round %d request %d" % (rnd, i))
        if rnd == 1:
            check(all(g["usage"]["cached_chars"] >= 1024 for g in got),
                  "round 2 did not resume: %s" % [g["usage"] for g in got])


@test
def metrics_count_hits_misses_and_characters():
    s0 = stats(ENV.cached)
    p = prime_at(33000, 640)
    sample(ENV.cached, prime=p)
    sample(ENV.cached, prime=p)
    s1 = stats(ENV.cached)
    check(s1["misses_total"] - s0["misses_total"] == 1, "misses: %s -> %s" % (s0, s1))
    check(s1["hits_total"] - s0["hits_total"] == 1, "hits: %s -> %s" % (s0, s1))
    check(s1["resumed_chars_total"] - s0["resumed_chars_total"] == 640, "resumed: %s" % s1)
    # checkpoints at 256 and 512, the whole prime, the end of the generation
    check(s1["inserts_total"] - s0["inserts_total"] == 4, "inserts: %s -> %s" % (s0, s1))
    check(0 < s1["bytes"] <= s1["budget_bytes"] == 64 << 20, "bytes: %s" % s1)
    # scoring looks up scored states: a miss, then a hit of one checkpoint
    st, _, _ = ENV.cached.json("POST", "/score", {"text": prime_at(34000, 300)})
    s2 = stats(ENV.cached)
    check(st == 200 and s2["misses_total"] - s1["misses_total"] == 1 and
          s2["hits_total"] == s1["hits_total"], "/score's lookup: %s -> %s" % (s1, s2))
    check(s2["inserts_total"] - s1["inserts_total"] == 2, "/score kept %s states, want 2" % (
        s2["inserts_total"] - s1["inserts_total"]))
    st, _, _ = ENV.cached.json("POST", "/score", {"text": prime_at(34000, 300)})
    s3 = stats(ENV.cached)
    check(st == 200 and s3["hits_total"] - s2["hits_total"] == 1 and
          s3["resumed_chars_total"] - s2["resumed_chars_total"] == EVERY,
          "/score's second lookup: %s -> %s" % (s2, s3))
    p0 = stats(ENV.plain)
    check(p0["budget_bytes"] == 0 and p0["entries"] == 0 and p0["hits_total"] == 0,
          "the uncached daemon: %s" % p0)


@test
def a_full_cache_evicts_and_stays_exact():
    d = Daemon(ENV.models, *FLAGS, "--state-cache-mb", "1")
    try:
        for i in range(60):
            p = prime_at(37 * i, 1500)
            a = sample(d, prime=p, length=10, seed=i)
            same(a, sample(ENV.plain, prime=p, length=10, seed=i), "request %d" % i)
        s = stats(d)
        check(s["evictions_total"] > 0, "nothing evicted: %s" % s)
        check(s["bytes"] <= 1 << 20, "over budget: %s" % s)
        # the latest text is still there (least recently used go first)
        a = sample(d, prime=p, length=10, seed=59)
        check(a["usage"]["cached_chars"] == 1500, "the newest state was evicted: %s" % s)
    finally:
        check(d.stop() == 0, "daemon exit status not 0")


@test
def a_reload_retires_the_old_versions_states():
    models = models_dir("models-reload", tiny=ENV.v1)
    d = Daemon(models, *FLAGS)
    try:
        p = prime_at(41000, 700)
        a = sample(d, prime=p, logprobs=None)
        check(a["usage"]["cached_chars"] == 0, "cold: %s" % a["usage"])
        v = a["model_version"]
        e2e.replace_atomically(ENV.v2, os.path.join(models, "tiny.safetensors"))
        deadline = time.time() + 10
        while sample(d, prime="the ", logprobs=None)["model_version"] == v:
            check(time.time() < deadline, "the new file was not loaded")
            time.sleep(0.1)
        s = stats(d)
        check(s["retired_total"] > 0 and s["entries"] <= 2, "old states kept: %s" % s)
        b = sample(d, prime=p, logprobs=None)
        check(b["usage"]["cached_chars"] == 0, "a new version resumed an old state: %s" %
              b["usage"])
        check(b["text"] == cli_sample(ENV.v2, prime=p, length=40, temperature=0.9, seed=7),
              "after the reload the text is not the new file's")
        c = sample(d, prime=p, logprobs=None)
        check(c["usage"]["cached_chars"] == 700 and c["text"] == b["text"], "warm after reload")
    finally:
        check(d.stop() == 0, "daemon exit status not 0")


@test
def an_unchanged_reload_keeps_the_version_and_its_states():
    models = models_dir("models-same", tiny=ENV.v1, other=ENV.v2)
    d = Daemon(models, *FLAGS)
    try:
        p = prime_at(52000, 600)
        a = sample(d, prime=p, logprobs=None)
        check(a["model_version"] == 1, "a model's first version is not 1: %s" % a)
        st, _, o = d.json("POST", "/models/other/reload")
        check(st == 200 and o["version"] == 1, "the second model's first version: %s" % o)
        # the same bytes again: by the reload endpoint, then as a rewritten file
        st, _, r = d.json("POST", "/models/tiny/reload")
        check(st == 200 and r["version"] == 1, "an unchanged reload made a version: %s" % r)
        e2e.replace_atomically(ENV.v1, os.path.join(models, "tiny.safetensors"))
        time.sleep(0.6)  # three polls
        b = sample(d, prime=p, logprobs=None)
        check(b["model_version"] == 1 and b["usage"]["cached_chars"] == 600,
              "an unchanged reload lost the cached states: %s" % b)
        check(stats(d)["retired_total"] == 0, "states retired: %s" % stats(d))
        e2e.replace_atomically(ENV.v2, os.path.join(models, "tiny.safetensors"))
        st, _, r = d.json("POST", "/models/tiny/reload")
        check(st == 200 and r["version"] == 2, "new bytes are not version 2: %s" % r)
    finally:
        check(d.stop() == 0, "daemon exit status not 0")


@test
def the_flag_and_its_errors():
    for bad in ("-1", "x", "1048577"):
        r = e2e.subprocess.run([e2e.SERVE, "--models", ENV.models, "--state-cache-mb", bad],
                               stderr=e2e.subprocess.PIPE, timeout=10)
        check(r.returncode == 2 and b"state-cache-mb" in r.stderr,
              "--state-cache-mb %s: %d %r" % (bad, r.returncode, r.stderr))


def main():
    return e2e.run_tests(TESTS, ONLY, setup, teardown)


if __name__ == "__main__":
    sys.exit(main())

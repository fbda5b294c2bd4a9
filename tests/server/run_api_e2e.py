#!/usr/bin/python3
"""End-to-end tests of charrnn-serve's log-probability and OpenAI-compatible
endpoints (the real daemon over real HTTP, models from charrnn-train):
/sample's logprobs, POST /score (against torch.log_softmax on the same
checkpoint, alone and under load), POST /v1/completions and GET /v1/models
(choice 0 = /sample = charrnn-sample, the seed rule for n, echo scoring,
streaming chunks, logit_bias), X-Request-Id, the new metrics, and the
bad-request case of every new field.

usage: run_api_e2e.py CHARRNN_SERVE CHARRNN_TRAIN CHARRNN_SAMPLE [TEST_NAME_SUBSTRING...]"""
import http.client
import json
import math
import os
import re
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import run_e2e as e2e  # noqa: E402
from run_e2e import Daemon, Env, check, cli_sample, expect_error, metric, parse_sse  # noqa: E402

ONLY = sys.argv[4:]
J = {"Content-Type": "application/json"}
TESTS, test = e2e.registry()
ENV = Env()


def setup():
    e2e.setup()  # trains the models "tiny" (lstm 2x32) and "other" (gru 2x24), starts e2e's daemon
    ENV.v1, ENV.models = e2e.ENV.v1, e2e.ENV.models
    ENV.d = Daemon(ENV.models, "--default-model", "tiny", "--max-length", "5000",
                   "--max-prime", "100", "--max-score-chars", "300", "--max-body", "8192")


def teardown():
    try:
        check(ENV.d.stop() == 0, 'ENV.d.stop() == 0')
    finally:
        e2e.teardown()


def post(path, body, headers=None):
    h = dict(J, **(headers or {}))
    data = body if isinstance(body, str) else json.dumps(body)
    return ENV.d.json("POST", path, data, h)


def v1_error(resp, status, param="absent", msg_re=None):
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    st, hdrs, body = resp
    check(st == status, "status %d, expected %d: %r" % (st, status, body))
    err = body["error"]
    check(set(err) == {"message", "type", "param", "code"}, err)
    check(err["code"] is None or isinstance(err["code"], str), err)
    if param != "absent":
        check(err["param"] == param, "param %r, expected %r (%s)" % (err["param"], param, err))
    if msg_re:
        check(re.search(msg_re, err["message"]), err["message"])
    return err


def v1_stream(body, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", ENV.d.port, timeout=60)
    conn.request("POST", "/v1/completions", body=json.dumps(dict(body, stream=True)),
                 headers=dict(J, **(headers or {})))
    r = conn.getresponse()
    hdrs = dict((k.lower(), v) for k, v in r.getheaders())
    raw = r.read().decode()
    conn.close()
    check(r.status == 200, raw)
    blocks = [b for b in raw.split("\n\n") if b]
    check(blocks[-1] == "data: [DONE]", blocks[-1])
    return hdrs, [json.loads(b[6:]) for b in blocks[:-1]]


# ---------------------------------------------------------------- /sample logprobs

@test
def sample_logprobs():
    base = dict(prime="the ", length=60, seed=11, temperature=0.8)
    st, _, plain = ENV.d.sample(**base)
    st, _, body = ENV.d.sample(logprobs=3, **base)
    check(st == 200 and body["text"] == plain["text"], "logprobs changed the text")
    lps = body["logprobs"]
    check([x["char"] for x in lps] == list(body["text"]),
          '[x["char"] for x in lps] == list(body["text"])')
    for x in lps:
        check(x["logprob"] <= 0 and len(x["top"]) == 3, 'x["logprob"] <= 0 and len(x["top"]) == 3')
        tops = [t["logprob"] for t in x["top"]]
        check(tops == sorted(tops, reverse=True) and x["logprob"] <= tops[0] + 1e-9,
              'tops == sorted(tops, reverse=True) and x["logprob"] <= to...')
        if x["char"] in [t["char"] for t in x["top"]]:
            check(x["logprob"] == [t["logprob"] for t in x["top"] if t["char"] == x["char"]][0],
                  'x["logprob"] == [t["logprob"] for t in x["top"] if t["cha...')
    # unprimed: the first character is drawn uniformly, it has no log-probability
    st, _, u = ENV.d.sample(length=5, seed=3, logprobs=0)
    check(u["logprobs"][0]["logprob"] is None and "top" not in u["logprobs"][0],
          'u["logprobs"][0]["logprob"] is None and "top" not in u["l...')
    check(all(x["logprob"] is not None and "top" not in x for x in u["logprobs"][1:]),
          'all(x["logprob"] is not None and "top" not in x for x in ...')
    # streamed: the events' logprobs concatenated are the same
    st, _, ev = ENV.d.stream(dict(base, logprobs=3))
    got = [x for e in ev[:-1] for x in e["logprobs"]]
    check(got == lps, "streamed logprobs differ")
    check("".join(e["text"] for e in ev) == plain["text"],
          '"".join(e["text"] for e in ev) == plain["text"]')
    # the numbers are /score's for the same text
    st, _, sc = post("/score", {"text": "the " + body["text"], "top_logprobs": 3})
    check(st == 200, sc)
    check(sc["logprobs"][4:] == lps, "generation and scoring disagree")


@test
def sample_logprobs_errors():
    for v in (-1, "3", 1.5, 10 ** 6):
        expect_error(ENV.d.sample(logprobs=v, length=3), 400, "logprobs")
    st, _, m = ENV.d.json("GET", "/models/tiny")
    vocab = m["vocab_size"]
    st, _, ok = ENV.d.sample(logprobs=vocab, length=2, prime="a")
    check(st == 200 and len(ok["logprobs"][0]["top"]) == vocab,
          'st == 200 and len(ok["logprobs"][0]["top"]) == vocab')
    check(abs(sum(math.exp(t["logprob"]) for t in ok["logprobs"][0]["top"]) - 1) < 1e-5,
          'abs(sum(math.exp(t["logprob"]) for t in ok["logprobs"][0]...')
    expect_error(ENV.d.sample(logprobs=vocab + 1, length=2), 400, "logprobs")


# ---------------------------------------------------------------- /score

SCORE_TEXT = "the quick brown fox jumps over lazy dogs while seven wizards quietly hex café"


def torch_logprobs(path, text):
    import torch
    from torch_ref import torch_model
    rnn, dec, vocab = torch_model(path)
    idx = torch.tensor([vocab.index(c) for c in text])
    x = torch.nn.functional.one_hot(idx, len(vocab)).float().unsqueeze(1)
    with torch.no_grad():
        out, _ = rnn(x)
        lp = torch.log_softmax(dec(out[:-1, 0]), dim=-1)
    return lp.gather(1, idx[1:].unsqueeze(1)).squeeze(1).tolist()


@test
def score_matches_pytorch():
    st, hdrs, sc = post("/score", {"model": "tiny", "text": SCORE_TEXT})
    check(st == 200, sc)
    n = len(SCORE_TEXT)
    check(sc["chars"] == n and sc["scored_chars"] == n - 1,
          'sc["chars"] == n and sc["scored_chars"] == n - 1')
    check([x["char"] for x in sc["logprobs"]] == list(SCORE_TEXT),
          '[x["char"] for x in sc["logprobs"]] == list(SCORE_TEXT)')
    check(sc["logprobs"][0]["logprob"] is None, 'sc["logprobs"][0]["logprob"] is None')
    got = [x["logprob"] for x in sc["logprobs"][1:]]
    want = torch_logprobs(ENV.v1, SCORE_TEXT)
    worst = max(abs(a - b) for a, b in zip(got, want))
    check(worst <= 1e-4, "max |charrnn - torch| = %g nats" % worst)
    total = sum(got)  # of the printed floats (9 digits): within 1e-9 each of the exact ones
    check(abs(sc["total_logprob"] - total) < 1e-6, (sc["total_logprob"], total))
    check(abs(sc["nats_per_char"] - (-sc["total_logprob"] / (n - 1))) < 1e-12,
          'abs(sc["nats_per_char"] - (-sc["total_logprob"] / (n - 1)...')
    check(abs(sc["bits_per_char"] - sc["nats_per_char"] / math.log(2)) < 1e-9,
          'abs(sc["bits_per_char"] - sc["nats_per_char"] / math.log(...')
    check(abs(sc["perplexity"] - math.exp(sc["nats_per_char"])) < 1e-9,
          'abs(sc["perplexity"] - math.exp(sc["nats_per_char"])) < 1e-9')
    bpc_torch = -sum(want) / (n - 1) / math.log(2)
    print("     /score bits/char %.6f, PyTorch %.6f (%d chars, max diff %.2e nats)" %
          (sc["bits_per_char"], bpc_torch, n - 1, worst))


@test
def score_same_alone_and_under_load():
    st, _, alone = post("/score", {"text": SCORE_TEXT, "top_logprobs": 2})
    results = {}

    def scorer(i):
        results[i] = post("/score", {"text": SCORE_TEXT, "top_logprobs": 2})

    def sampler(i):
        ENV.d.sample(length=400, seed=i)

    ts = [threading.Thread(target=scorer, args=(i,)) for i in range(6)]
    ts += [threading.Thread(target=sampler, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(6):
        st, _, b = results[i]
        check(st == 200 and b["logprobs"] == alone["logprobs"], "score %d differs under load" % i)
        check(b["total_logprob"] == alone["total_logprob"],
              'b["total_logprob"] == alone["total_logprob"]')


@test
def score_errors():
    expect_error(post("/score", {}), 400, "text", "required")
    expect_error(post("/score", {"text": 5}), 400, "text")
    expect_error(post("/score", {"text": "a"}), 400, "text", "2\\.\\.300")
    expect_error(post("/score", {"text": "a" * 301}), 400, "text", "300")
    expect_error(post("/score", {"text": "Zebra€"}), 400, "text")
    expect_error(post("/score", '{"text": "a\\u0000b"}'), 400, "text", "U\\+0000")
    expect_error(post("/score", {"text": "ab", "top_logprobs": -1}), 400, "top_logprobs")
    expect_error(post("/score", {"text": "ab", "top_logprobs": 10 ** 6}), 400, "top_logprobs")
    expect_error(post("/score", {"text": "ab", "tex": 1}), 400, "tex", "unknown field")
    expect_error(post("/score", '{"text": "ab", "text": "ab"}'), 400, "text", "twice")
    expect_error(post("/score", {"text": "ab", "model": "nope"}), 404, "model")
    expect_error(ENV.d.json("GET", "/score"), 405)
    expect_error(ENV.d.json("POST", "/score", '{"text": "ab"}', {"Content-Type": "text/plain"}),
                 415)


@test
def logprob_budget():
    """A response's log-probabilities are bounded (--max-logprob-entries):
    characters x (1 + alternatives), over every choice, on /sample, /score and
    /v1 alike; at the bound it is served, one past it is a 400 naming the field."""
    d = Daemon(ENV.models, "--default-model", "tiny", "--max-logprob-entries", "60")
    try:
        def p(path, body):
            return d.json("POST", path, json.dumps(body), J)
        st, _, ok = d.sample(length=12, logprobs=4, seed=1)  # 12 x 5 = 60
        check(st == 200 and len(ok["logprobs"]) == 12, ok)
        expect_error(d.sample(length=13, logprobs=4, seed=1), 400, "logprobs", "60")
        text = "the cat sat on the mat and "[:30]
        st, _, ok = p("/score", {"text": text[:20], "top_logprobs": 2})  # 20 x 3 = 60
        check(st == 200, ok)
        expect_error(p("/score", {"text": text[:21], "top_logprobs": 2}), 400, "top_logprobs")
        st, _, ok = p("/v1/completions", {"prompt": "the", "max_tokens": 5, "n": 2, "logprobs": 5})
        check(st == 200, ok)  # 2 choices x 5 x 6 = 60
        v1_error(p("/v1/completions", {"prompt": "the", "max_tokens": 5, "n": 2, "logprobs": 5,
                                       "echo": True}), 400, "logprobs")
        st, _, ok = p("/v1/completions", {"prompt": "the", "max_tokens": 50, "n": 2})
        check(st == 200, ok)  # no log-probabilities asked: no bound
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


# ---------------------------------------------------------------- /v1

@test
def v1_models():
    st, _, body = ENV.d.json("GET", "/v1/models")
    check(st == 200 and body["object"] == "list", body)
    ids = sorted(m["id"] for m in body["data"])
    check(ids == ["other", "tiny"], ids)
    for m in body["data"]:
        check(set(m) == {"id", "object", "created", "owned_by"} and m["object"] == "model",
              'set(m) == {"id", "object", "created", "owned_by"} and m["...')
        check(isinstance(m["created"], int), 'isinstance(m["created"], int)')
    st, _, one = ENV.d.json("GET", "/v1/models/tiny")
    check(st == 200 and one["id"] == "tiny", 'st == 200 and one["id"] == "tiny"')
    err = v1_error(ENV.d.json("GET", "/v1/models/nope"), 404)
    check(err["code"] == "model_not_found", 'err["code"] == "model_not_found"')
    v1_error(ENV.d.json("POST", "/v1/models"), 405)
    v1_error(ENV.d.json("GET", "/v1/nope"), 404)


@test
def v1_choice0_equals_sample_and_cli():
    cases = [dict(prime="the quick ", length=120, seed=1, temperature=0.7),
             dict(prime="", length=50, seed=2),
             dict(prime="über ", length=80, seed=3, temperature=1.2, top_p=0.8),
             dict(prime="fox", length=60, seed=2 ** 64 - 1, temperature=0),
             dict(prime="the", length=400, seed=7, stop=["dogs", "."])]
    for c in cases:
        req = {"model": "tiny", "prompt": c["prime"], "max_tokens": c["length"],
               "seed": c["seed"], "n": 2}
        for k in ("temperature", "top_p", "stop"):
            if k in c:
                req[k] = c[k]
        st, hdrs, body = post("/v1/completions", req)
        check(st == 200, body)
        st, _, s0 = ENV.d.sample(**c)
        cli = cli_sample(ENV.v1, prime=c["prime"], length=c["length"], seed=c["seed"],
                         temperature=c.get("temperature"), top_p=c.get("top_p"),
                         stop=c.get("stop", ()))
        check(s0["text"] == cli, 's0["text"] == cli')
        ch = body["choices"]
        check([x["index"] for x in ch] == [0, 1], '[x["index"] for x in ch] == [0, 1]')
        want0 = s0["text"]
        if s0["finish_reason"] == "stop":  # OpenAI: the text excludes the stop string
            check(ch[0]["finish_reason"] == "stop", 'ch[0]["finish_reason"] == "stop"')
            stop = [s for s in c["stop"] if want0.endswith(s)][0]
            want0 = want0[:-len(stop)]
        check(ch[0]["text"] == want0, (ch[0]["text"], want0))
        # the seed rule: choice i samples with seed + i (mod 2^64)
        st, _, s1 = ENV.d.sample(**dict(c, seed=(c["seed"] + 1) % 2 ** 64))
        check(ch[1]["text"] == s1["text"][:len(ch[1]["text"])] and s1["text"].startswith(
            ch[1]["text"]),
              'ch[1]["text"] == s1["text"][:len(ch[1]["text"])] and s1["...')
        check(body["seed"] == c["seed"] and hdrs["x-seed"] == str(c["seed"]),
              'body["seed"] == c["seed"] and hdrs["x-seed"] == str(c["se...')
        check(body["usage"]["prompt_tokens"] == len(c["prime"]),
              'body["usage"]["prompt_tokens"] == len(c["prime"])')
        check(body["usage"]["completion_tokens"] == s0["usage"]["generated_chars"] +
              s1["usage"]["generated_chars"], "completion_tokens is not the choices' sum")
        check(body["object"] == "text_completion" and body["model"] == "tiny",
              'body["object"] == "text_completion" and body["model"] == ...')
        check(body["id"] == "cmpl-" + hdrs["x-request-id"],
              'body["id"] == "cmpl-" + hdrs["x-request-id"]')
        check(body["system_fingerprint"].startswith("fp_"),
              'body["system_fingerprint"].startswith("fp_")')
    # without a seed the response says which one was used, and it reproduces
    st, hdrs, a = post("/v1/completions", {"prompt": "the ", "max_tokens": 30})
    st, _, b = post("/v1/completions", {"prompt": "the ", "max_tokens": 30, "seed": a["seed"]})
    check(a["choices"][0]["text"] == b["choices"][0]["text"] and str(a["seed"]) == hdrs["x-seed"],
          'a["choices"][0]["text"] == b["choices"][0]["text"] and st...')


@test
def v1_logprobs_echo_and_prompts():
    st, _, body = post("/v1/completions", {"prompt": ["the ", "fox"], "max_tokens": 20,
                                           "seed": 5, "logprobs": 2, "n": 2})
    check(st == 200 and [c["index"] for c in body["choices"]] == [0, 1, 2, 3],
          'st == 200 and [c["index"] for c in body["choices"]] == [0...')
    for c in body["choices"]:
        prompt = "the " if c["index"] < 2 else "fox"
        lp = c["logprobs"]
        check("".join(lp["tokens"]) == c["text"] and len(lp["token_logprobs"]) == 20,
              '"".join(lp["tokens"]) == c["text"] and len(lp["token_logp...')
        check(lp["text_offset"] == list(range(len(prompt), len(prompt) + 20)),
              'lp["text_offset"] == list(range(len(prompt), len(prompt) ...')
        for tok, l, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
            check(2 <= len(top) <= 3 and top.get(tok) == l,
                  '2 <= len(top) <= 3 and top.get(tok) == l')
        # the same numbers as /sample's for the same seed
        st, _, s = ENV.d.sample(prime=prompt, length=20, seed=5 + c["index"], logprobs=2)
        check([x["logprob"] for x in s["logprobs"]] == lp["token_logprobs"],
              '[x["logprob"] for x in s["logprobs"]] == lp["token_logpro...')
    # echo + max_tokens 0 scores the prompt: /score's numbers, first one null
    st, _, e = post("/v1/completions", {"prompt": SCORE_TEXT[:60], "max_tokens": 0, "echo": True,
                                        "logprobs": 1})
    st, _, sc = post("/score", {"text": SCORE_TEXT[:60]})
    ch = e["choices"][0]
    check(ch["text"] == SCORE_TEXT[:60] and e["usage"]["completion_tokens"] == 0,
          'ch["text"] == SCORE_TEXT[:60] and e["usage"]["completion_...')
    check(ch["logprobs"]["token_logprobs"] == [x["logprob"] for x in sc["logprobs"]],
          'ch["logprobs"]["token_logprobs"] == [x["logprob"] for x i...')
    check(ch["logprobs"]["top_logprobs"][0] is None, 'ch["logprobs"]["top_logprobs"][0] is None')
    check(ch["logprobs"]["text_offset"] == list(range(60)),
          'ch["logprobs"]["text_offset"] == list(range(60))')
    # echo with generation: prompt then text, offsets continuous
    st, _, e = post("/v1/completions", {"prompt": "the ", "max_tokens": 10, "echo": True,
                                        "logprobs": 0, "seed": 9})
    st, _, s = ENV.d.sample(prime="the ", length=10, seed=9)
    ch = e["choices"][0]
    check(ch["text"] == "the " + s["text"] and len(ch["logprobs"]["tokens"]) == 14,
          'ch["text"] == "the " + s["text"] and len(ch["logprobs"]["...')
    check(all(len(t) == 1 for t in ch["logprobs"]["top_logprobs"][1:]),
          'all(len(t) == 1 for t in ch["logprobs"]["top_logprobs"][1:])')  # only the chosen one
    # echo without logprobs: the text only
    st, _, e = post("/v1/completions", {"prompt": "the ", "max_tokens": 0, "echo": True})
    check(e["choices"][0]["text"] == "the " and e["choices"][0]["logprobs"] is None,
          'e["choices"][0]["text"] == "the " and e["choices"][0]["lo...')


@test
def v1_streaming():
    req = {"prompt": ["the ", "a"], "max_tokens": 1000, "seed": 21, "n": 2, "logprobs": 1,
           "temperature": 0.9}
    st, _, whole = post("/v1/completions", req)
    hdrs, chunks = v1_stream(dict(req, stream_options={"include_usage": True}))
    check(hdrs["content-type"].startswith("text/event-stream"),
          'hdrs["content-type"].startswith("text/event-stream")')
    usage = chunks[-1]
    check(usage["choices"] == [] and usage["usage"] == whole["usage"], usage)
    texts, lps, finish = {}, {}, {}
    for ch in chunks[:-1]:
        check(ch["object"] == "text_completion" and ch["id"] == "cmpl-" + hdrs["x-request-id"],
              'ch["object"] == "text_completion" and ch["id"] == "cmpl-"...')
        check(ch["usage"] is None and len(ch["choices"]) == 1,
              'ch["usage"] is None and len(ch["choices"]) == 1')
        c = ch["choices"][0]
        check(c["index"] not in finish, "a chunk after the choice's finish")
        texts[c["index"]] = texts.get(c["index"], "") + c["text"]
        lps.setdefault(c["index"], []).extend(c["logprobs"]["token_logprobs"])
        if c["finish_reason"] is not None:
            finish[c["index"]] = c["finish_reason"]
    check(sorted(finish) == [0, 1, 2, 3], finish)  # every choice ends with its own chunk
    for c in whole["choices"]:
        check(texts[c["index"]] == c["text"] and finish[c["index"]] == c["finish_reason"],
              'texts[c["index"]] == c["text"] and finish[c["index"]] == ...')
        check(lps[c["index"]] == c["logprobs"]["token_logprobs"],
              'lps[c["index"]] == c["logprobs"]["token_logprobs"]')
    # without include_usage: no usage fields; stop strings are held back and removed
    hdrs, chunks = v1_stream({"prompt": "the", "max_tokens": 400, "seed": 7,
                              "stop": ["dogs", "."]})
    st, _, whole = post("/v1/completions", {"prompt": "the", "max_tokens": 400, "seed": 7,
                                            "stop": ["dogs", "."]})
    check(all("usage" not in ch for ch in chunks), 'all("usage" not in ch for ch in chunks)')
    check("".join(ch["choices"][0]["text"] for ch in chunks) == whole["choices"][0]["text"],
          '"".join(ch["choices"][0]["text"] for ch in chunks) == who...')
    check(chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"],
          'chunks[-1]["choices"][0]["finish_reason"] == whole["choic...')
    # streamed echo scoring
    hdrs, chunks = v1_stream({"prompt": SCORE_TEXT[:40], "max_tokens": 0, "echo": True,
                              "logprobs": 0})
    check("".join(ch["choices"][0]["text"] for ch in chunks) == SCORE_TEXT[:40],
          '"".join(ch["choices"][0]["text"] for ch in chunks) == SCO...')


@test
def v1_logit_bias():
    st, _, m = ENV.d.json("GET", "/models/tiny")
    # the vocabulary is sorted code points; find 'z' through /score's characters
    st, _, sc = ENV.d.sample(prime="a", length=1, logprobs=m["vocab_size"])
    chars = sorted(t["char"] for t in sc["logprobs"][0]["top"])
    z = chars.index("z")
    st, _, b = post("/v1/completions", {"prompt": "the ", "max_tokens": 30, "seed": 1,
                                        "logit_bias": {str(z): 100}, "logprobs": 0})
    check(st == 200 and b["choices"][0]["text"] == "z" * 30, b["choices"][0]["text"])
    # the reported numbers stay the model's own (not forced to ~0)
    check(min(b["choices"][0]["logprobs"]["token_logprobs"]) < -0.5,
          'min(b["choices"][0]["logprobs"]["token_logprobs"]) < -0.5')
    st, _, b = post("/v1/completions", {"prompt": "the ", "max_tokens": 200, "seed": 1,
                                        "temperature": 1.5,
                                        "logit_bias": {str(chars.index("e")): -100}})
    check("e" not in b["choices"][0]["text"], '"e" not in b["choices"][0]["text"]')


V1_CONTROL_CASES = [
    dict(prime="the quick ", length=150, seed=21, min_p=0.2),
    dict(prime="the ", length=100, seed=22, min_p=0.05, temperature=1.4, top_p=0.95),
    dict(prime="the quick ", length=150, seed=23, presence_penalty=1.2),
    dict(prime="the ", length=150, seed=24, frequency_penalty=0.8, temperature=0.7),
    dict(prime="a", length=150, seed=25, presence_penalty=-1, frequency_penalty=0.5,
         repetition_penalty=1.4, penalty_window=20),
    # below the smallest float: the best character alone, as on /sample
    dict(prime="the ", length=60, seed=26, top_p=1e-300),
]


@test
def v1_controls_equal_sample_and_cli():
    """The /v1 controls (min_p; OpenAI's penalties) give /sample's and
    charrnn-sample's text with the same values."""
    for c in V1_CONTROL_CASES:
        req = {"model": "tiny", "prompt": c["prime"], "max_tokens": c["length"],
               "seed": c["seed"]}
        req.update({k: v for k, v in c.items() if k not in ("prime", "length", "seed")})
        st, _, body = post("/v1/completions", req)
        check(st == 200, body)
        st, _, s0 = ENV.d.sample(**c)
        check(st == 200, s0)
        check(s0["text"] == cli_sample(ENV.v1, **c), "/sample != charrnn-sample: %r" % c)
        check(body["choices"][0]["text"] == s0["text"],
              "/v1 %r != /sample %r for %r" % (body["choices"][0]["text"], s0["text"], c))
    for field, value in [("min_p", -0.5), ("min_p", 2), ("min_p", "x"),
                         ("presence_penalty", 2.5), ("presence_penalty", "1"),
                         ("frequency_penalty", -3), ("repetition_penalty", 0),
                         ("penalty_window", 0)]:
        v1_error(post("/v1/completions", {"prompt": "a", field: value}), 400, field)


def mean_lp(choice):
    lps = [x for x in choice["logprobs"]["token_logprobs"] if x is not None]
    return sum(lps) / len(lps) if lps else -math.inf


@test
def v1_best_of():
    """best_of candidates are the choices n = best_of would give (same seeds);
    the n with the highest mean log-probability per character come back,
    best first."""
    for prompts, n, best_of, extra in [("the ", 2, 5, {}), (["the ", "a", ""], 1, 4, {}),
                                       ("fox", 3, 6, {"temperature": 1.6, "presence_penalty": 1}),
                                       ("the ", 1, 8, {"top_p": 0.9})]:
        base = dict({"prompt": prompts, "max_tokens": 30, "seed": 77}, **extra)
        st, _, all_ = post("/v1/completions", dict(base, n=best_of, logprobs=0))
        check(st == 200, all_)
        st, _, got = post("/v1/completions", dict(base, n=n, best_of=best_of, logprobs=0))
        check(st == 200, got)
        st, _, plain = post("/v1/completions", dict(base, n=n, best_of=best_of))
        check(st == 200 and all(c["logprobs"] is None for c in plain["choices"]), plain)
        np = len(prompts) if isinstance(prompts, list) else 1
        check(len(got["choices"]) == np * n, got)
        for p in range(np):
            cands = all_["choices"][p * best_of:(p + 1) * best_of]
            ranked = sorted(range(best_of), key=lambda j: (-mean_lp(cands[j]), j))[:n]
            for r in range(n):
                g, want = got["choices"][p * n + r], cands[ranked[r]]
                check(g["index"] == p * n + r, g["index"])
                check(g["text"] == want["text"] and g["logprobs"] == want["logprobs"],
                      "prompt %d rank %d: %r, expected candidate %d %r" % (
                          p, r, g["text"], ranked[r], want["text"]))
                check(plain["choices"][p * n + r]["text"] == want["text"], "without logprobs")
        # usage counts every candidate
        check(got["usage"]["completion_tokens"] == all_["usage"]["completion_tokens"], got)
        check(any(mean_lp(all_["choices"][j]) > mean_lp(all_["choices"][0])
                  for j in range(1, best_of)) or n > 1, "the ranking was never tested")
    for body, why in [({"n": 3, "best_of": 2}, "at least n"),
                      ({"best_of": 2, "stream": True}, "stream"),
                      ({"prompt": ["a"] * 5, "best_of": 13}, "candidates"),
                      ({"best_of": 17}, None), ({"best_of": 0}, None), ({"best_of": "2"}, None)]:
        v1_error(post("/v1/completions", dict({"prompt": "a", "max_tokens": 3}, **body)), 400,
                 "best_of", why)
    # best_of = n, streamed too: as without it
    st, _, a = post("/v1/completions", {"prompt": "a", "max_tokens": 9, "n": 2, "seed": 4})
    st, _, b = post("/v1/completions", {"prompt": "a", "max_tokens": 9, "n": 2, "seed": 4,
                                        "best_of": 2})
    check([c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]], (a, b))


@test
def model_vocab():
    """GET /models/{name}/vocab: every character with the id logit_bias takes."""
    st, _, m = ENV.d.json("GET", "/models/tiny")
    st, hdrs, voc = ENV.d.json("GET", "/models/tiny/vocab")
    check(st == 200 and hdrs["content-type"].startswith("application/json"), voc)
    check(voc["model"] == "tiny" and voc["version"] == m["version"], voc)
    check(voc["vocab_size"] == m["vocab_size"] == len(voc["chars"]), voc["vocab_size"])
    check([c["id"] for c in voc["chars"]] == list(range(voc["vocab_size"])), "ids 0..V-1")
    check(all(c["char"] == chr(c["codepoint"]) for c in voc["chars"]), "char = codepoint")
    chars = [c["char"] for c in voc["chars"]]
    check(len(set(chars)) == len(chars) and chars == sorted(chars), "distinct, code point order")
    # every id forces its own character through logit_bias
    for c in voc["chars"]:
        if c["char"] == "\n":
            continue  # (any character; a newline would end nothing, but keep the text flat)
        st, _, b = post("/v1/completions", {"prompt": "the ", "max_tokens": 4, "seed": 3,
                                            "logit_bias": {str(c["id"]): 100}})
        check(st == 200 and b["choices"][0]["text"] == c["char"] * 4,
              "id %d: %r, expected %r" % (c["id"], b["choices"][0]["text"], c["char"]))
    # and banning an id bans its character
    e = chars.index("e")
    st, _, b = post("/v1/completions", {"prompt": "the ", "max_tokens": 300, "seed": 3,
                                        "temperature": 1.5, "logit_bias": {str(e): -100}})
    check(st == 200 and "e" not in b["choices"][0]["text"], b)
    st, hdrs, _ = ENV.d.request("HEAD", "/models/tiny/vocab")
    check(st == 200, st)
    expect_error(ENV.d.json("GET", "/models/nope/vocab"), 404, "model")
    expect_error(ENV.d.json("GET", "/models/..%2Fetc/vocab"), 404)
    st, hdrs, _ = ENV.d.json("POST", "/models/tiny/vocab", "{}")
    check(st == 405 and "GET" in hdrs.get("allow", ""), (st, hdrs))


@test
def v1_bad_requests():
    ok = {"prompt": "the ", "max_tokens": 2}
    bad = [
        ("model", 3, 400), ("model", "nope", 404), ("prompt", 5, 400), ("prompt", [], 400),
        ("prompt", [1, 2], 400), ("prompt", ["a"] * 17, 400), ("prompt", "x" * 101, 400),
        ("prompt", "Zebra€", 400), ("max_tokens", -1, 400), ("max_tokens", 5001, 400),
        ("max_tokens", "3", 400), ("max_tokens", 0, 400), ("temperature", -1, 400),
        ("temperature", 10.5, 400), ("temperature", "hot", 400), ("top_p", 0, 400),
        ("top_p", 1.5, 400), ("n", 0, 400), ("n", 17, 400), ("stream", "yes", 400),
        ("stream_options", {"include_usage": True}, 400), ("logprobs", -1, 400),
        ("logprobs", 6, 400), ("logprobs", True, 400), ("echo", 1, 400), ("stop", 5, 400),
        ("stop", ["a", "b", "c", "d", "e"], 400), ("stop", [""], 400), ("stop", [3], 400),
        ("seed", -1, 400), ("seed", 2 ** 64, 400), ("user", 3, 400), ("user", "u" * 65, 400),
        ("logit_bias", [], 400), ("logit_bias", {"a": 1}, 400), ("logit_bias", {"-1": 1}, 400),
        ("logit_bias", {"0": 101}, 400), ("logit_bias", {"0": "x"}, 400),
        ("logit_bias", {"99999": 1}, 400), ("suffix", "x", 400), ("best_of", 17, 400),
        ("best_of", 0, 400), ("presence_penalty", 2.5, 400), ("frequency_penalty", -3, 400),
        ("top_k", 3, 400),
    ]
    for field, value, status in bad:
        body = dict(ok, **{field: value})
        err = v1_error(post("/v1/completions", body), status, field)
        if status == 404:
            check(err["code"] == "model_not_found", 'err["code"] == "model_not_found"')
    v1_error(post("/v1/completions", {"max_tokens": 2}), 400, "prompt")
    v1_error(post("/v1/completions", '{"prompt": "a", "prompt": "b"}'), 400, "prompt", "twice")
    v1_error(post("/v1/completions", '{"prompt": "a"'), 400, None)
    v1_error(post("/v1/completions", dict(ok, n=8, prompt=["a"] * 9)), 400, "n")
    v1_error(post("/v1/completions", '{"prompt": "a\\u0000b"}'), 400, "prompt")
    # neutral values are accepted
    neutral = dict(ok, suffix="", best_of=1, presence_penalty=0, frequency_penalty=0.0,
                   user="someone", stop="zz", stream=False, logprobs=None, seed=None)
    st, _, body = post("/v1/completions", neutral)
    check(st == 200, body)
    st, _, body = post("/v1/completions", dict(ok, n=2, best_of=2, max_tokens=0, echo=True))
    check(st == 200 and len(body["choices"]) == 2, 'st == 200 and len(body["choices"]) == 2')
    v1_error(ENV.d.json("GET", "/v1/completions"), 405)
    v1_error(ENV.d.json("POST", "/v1/completions", '{"prompt": "a"}',
                        {"Content-Type": "text/plain"}), 415)


# ---------------------------------------------------------------- request ids, metrics

@test
def request_ids():
    st, hdrs, _ = ENV.d.request("GET", "/healthz", headers={"X-Request-Id": "trace-42.a:b"})
    check(hdrs["x-request-id"] == "trace-42.a:b", 'hdrs["x-request-id"] == "trace-42.a:b"')
    for bad in ("x" * 129, "has space", "quote\"", "new\\nline", ""):
        st, hdrs, _ = ENV.d.request("GET", "/healthz", headers={"X-Request-Id": bad})
        check(re.fullmatch(r"[0-9a-f]{32}", hdrs["x-request-id"]), (bad, hdrs["x-request-id"]))
    st, hdrs, _ = ENV.d.request("GET", "/nope")
    check(st == 404 and re.fullmatch(r"[0-9a-f]{32}", hdrs["x-request-id"]),
          'st == 404 and re.fullmatch(r"[0-9a-f]{32}", hdrs["x-reque...')
    ids = set()
    for _ in range(5):
        ids.add(ENV.d.request("GET", "/healthz")[1]["x-request-id"])
    check(len(ids) == 5, "generated ids repeat")
    st, _, ev = ENV.d.stream({"length": 5})
    hdrs, _ = v1_stream({"prompt": "a", "max_tokens": 3}, {"X-Request-Id": "stream-1"})
    check(hdrs["x-request-id"] == "stream-1", 'hdrs["x-request-id"] == "stream-1"')
    st, hdrs, body = post("/v1/completions", {"prompt": "a", "max_tokens": 3, "user": "u-7"},
                          {"X-Request-Id": "req-77"})
    check(body["id"] == "cmpl-req-77" and hdrs["x-request-id"] == "req-77",
          'body["id"] == "cmpl-req-77" and hdrs["x-request-id"] == "...')
    line = ENV.d.wait_log(lambda o: o.get("msg") == "request" and
                          o.get("request_id") == "req-77", 5)
    check(line["user"] == "u-7" and line["route"] == "/v1/completions", line)


@test
def api_metrics():
    fams, _ = ENV.d.metrics()
    before = metric(fams, "charrnn_time_to_first_char_seconds_count") or 0
    inter = metric(fams, "charrnn_inter_char_seconds_count") or 0
    post("/v1/completions", {"model": "other", "prompt": "a", "max_tokens": 10, "n": 2})
    post("/score", {"model": "other", "text": "the fox"})
    ENV.d.sample(model="other", length=7)
    fams, _ = ENV.d.metrics()
    check(fams["charrnn_time_to_first_char_seconds"]["type"] == "histogram",
          'fams["charrnn_time_to_first_char_seconds"]["type"] == "hi...')
    check(metric(fams, "charrnn_time_to_first_char_seconds_count") == before + 3,
          'metric(fams, "charrnn_time_to_first_char_seconds_count") ...')
    check(metric(fams, "charrnn_inter_char_seconds_count") == inter + 9 + 9 + 6,
          'metric(fams, "charrnn_inter_char_seconds_count") == inter...')
    for route in ("/v1/completions", "/score", "/sample"):
        check(metric(fams, "charrnn_model_requests_total", model="other", route=route) == 1,
            route)
    check(metric(fams, "charrnn_request_scored_chars_total", model="other") == 6,
          'metric(fams, "charrnn_request_scored_chars_total", model=...')
    check(metric(fams, "charrnn_request_generated_chars_total", model="other") == 27,
          'metric(fams, "charrnn_request_generated_chars_total", mod...')


# ---------------------------------------------------------------- raw control bytes

@test
def raw_control_bytes_refused():
    """A raw byte < 0x20 inside a JSON string is refused with a 400 naming the
    field, in each API's error shape, on every route with a body: cJSON would
    keep it and cut the string at a NUL, so "tiny<NUL>-other" was served by
    "tiny" (a gateway allowing or denying by model name is bypassed) and a stop
    "e<NUL>zz" acted as "e". As whitespace between tokens it is still fine."""
    for path, body, param in [
        ("/sample", '{"model": "tiny\x00-other", "length": 3}', "model"),
        ("/sample", '{"prime": "th\x00zz", "length": 3}', "prime"),
        ("/sample", '{"prime": "a\nb", "length": 3}', "prime"),
        ("/sample", '{"length": 3, "stop": ["e\x00zz"]}', "stop"),
        ("/score", '{"model": "tiny\x00-other", "text": "the cat"}', "model"),
        ("/score", '{"text": "the\x01 cat"}', "text"),
        ("/score", '{"text": "the cat", "model\x00x": "tiny"}', "model"),
    ]:
        resp = post(path, body)
        check(not (resp[0] == 200 and resp[2].get("model") == "tiny"),
              "%s %r was served by 'tiny'" % (path, body))
        err = expect_error(resp, 400, param, "control character")
        check(err["type"] == "invalid_request_error", err)
    for body, param in [
        ('{"model": "tiny\x00-other", "prompt": "the ", "max_tokens": 2}', "model"),
        ('{"prompt": "the\x00zz", "max_tokens": 2}', "prompt"),
        ('{"prompt": ["the ", "a\x1fb"], "max_tokens": 2}', "prompt"),
        ('{"prompt": "the ", "max_tokens": 2, "stop": "e\x00zz"}', "stop"),
        ('{"prompt": "the ", "max_tokens": 2, "user": "u\tv"}', "user"),
    ]:
        resp = post("/v1/completions", body)
        check(not (resp[0] == 200 and resp[2].get("model") == "tiny"),
              "/v1/completions %r was served by 'tiny'" % body)
        v1_error(resp, 400, param, "control character")
    # as whitespace between tokens, and escaped inside strings, they are fine
    st, _, ok = post("/sample", '{\x01"prime":\x1f"the ",\n"length":\t3\x00}')
    check(st == 200 and len(ok["text"]) == 3, ok)
    st, _, ok = post("/v1/completions", '{"prompt": "the ", "max_tokens": 2, "user": "u\\tv"}')
    check(st == 200 and ok["model"] == "tiny", ok)


@test
def stop_matches_whole_characters():
    """Stops are valid UTF-8, so they match whole characters only: a stop "é"
    (C3 A9) never cuts "ï" (C3 AF), which shares its first byte, and text cut
    at a stop is whole characters, streamed or not."""
    st, _, voc = ENV.d.json("GET", "/models/tiny/vocab")
    ids = dict((c["char"], c["id"]) for c in voc["chars"])
    check(st == 200 and "\u00ef" in ids and "\u00e9" in ids, ids)
    base = {"prompt": "na", "max_tokens": 6, "seed": 3, "logit_bias": {str(ids["\u00ef"]): 100}}
    for stop, text, finish in (("\u00e9", "\u00ef" * 6, "length"), ("\u00ef", "", "stop"),
                               ("\u00ef\u00ef", "", "stop")):
        body = dict(base, stop=[stop])
        st, _, data = ENV.d.request("POST", "/v1/completions", json.dumps(body), J)
        got = json.loads(data.decode("utf-8"))["choices"][0]  # strict UTF-8
        check(st == 200 and (got["text"], got["finish_reason"]) == (text, finish), (stop, got))
        _, chunks = v1_stream(body)  # decoded strictly by v1_stream
        check("".join(c["choices"][0]["text"] for c in chunks) == text, (stop, chunks))


def main():
    return e2e.run_tests(TESTS, ONLY, setup, teardown)


if __name__ == "__main__":
    sys.exit(main())

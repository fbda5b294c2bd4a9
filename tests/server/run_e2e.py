#!/usr/bin/python3
"""End-to-end tests of charrnn-serve: the real daemon on a free loopback port,
over real HTTP, nothing mocked.

usage: run_e2e.py CHARRNN_SERVE CHARRNN_TRAIN CHARRNN_SAMPLE [TEST_NAME_SUBSTRING...]

Trains two tiny models with charrnn-train, starts daemons with --listen
127.0.0.1:0 (the bound port is read from the "listening" log line) and checks
every endpoint, every validation error, the metrics exposition, hot reload
under load, corrupt files, client disconnects, the bounded queue, timeouts,
SIGTERM draining, and byte-identical text against charrnn-sample.
Exit status: 0 when every test passed.
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from http_client import request as http_request  # noqa: E402
from stderr_log import StderrLog  # noqa: E402

SERVE, TRAIN, SAMPLE = (os.path.abspath(p) for p in sys.argv[1:4])
CONVERT = os.path.join(os.path.dirname(SAMPLE), "charrnn-convert")  # built next to it
ONLY = sys.argv[4:]
TOKEN = "s3cret-token"


# ---------------------------------------------------------------- helpers

def make_text():
    """A deterministic training text with some non-ASCII characters."""
    words = ("the quick brown fox jumps over lazy dogs while seven wizards "
             "quietly hex café naïve façade λόγος über straße ünïcödé").split()
    x = 12345
    out = []
    for _ in range(3000):
        x = (x * 1103515245 + 12345) % (1 << 31)
        out.append(words[x % len(words)])
        if x % 11 == 0:
            out.append(".\n")
    return " ".join(out)


def train(workdir, data, name, seed, cell="lstm", size=32):
    ck = os.path.join(workdir, "ck-" + name)
    out = os.path.join(workdir, name + ".safetensors")
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck, "--cell", cell,
                    "--rnn-size", str(size), "--num-layers", "2", "--seq-length", "25",
                    "--batch-size", "8", "--max-iters", "40", "--eval-every", "20",
                    "--seed", str(seed), "--publish", out, "--quiet"], check=True)
    return out


def cli_sample(ckpt, prime="", length=200, temperature=None, seed=0, top_k=None,
               top_p=None, stop=(), **controls):
    """controls: min_p=0.1 etc., passed as --min-p 0.1."""
    args = [SAMPLE, "--checkpoint", ckpt, "--length", str(length), "--seed", str(seed)]
    for k, v in controls.items():
        args += ["--" + k.replace("_", "-"), repr(v)]
    if prime:
        args += ["--prime", prime]
    if temperature is not None:
        args += ["--temperature", repr(temperature)]
    if top_k is not None:
        args += ["--top-k", str(top_k)]
    if top_p is not None:
        args += ["--top-p", repr(top_p)]
    for s in stop:
        args += ["--stop", s]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE).stdout
    pb = prime.encode()
    assert out.startswith(pb), "charrnn-sample did not print the prime first"
    return out[len(pb):].decode()


DAEMONS = []  # every daemon started, so none outlives the run


class Daemon(StderrLog):
    """A charrnn-serve process; its stderr lines are collected as they come."""

    def __init__(self, models, *flags, env=None, use_env_for_listen=False):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("CHARRNN_"):
                del e[k]
        e.update(env or {})
        args = [SERVE, "--models", models]
        if use_env_for_listen:
            e["CHARRNN_LISTEN"] = "127.0.0.1:0"
        else:
            args += ["--listen", "127.0.0.1:0"]
        args += list(flags)
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=e)
        DAEMONS.append(self)
        self._start_log()
        ev = self.wait_log(lambda o: o.get("msg") == "listening", 10)
        self.port = int(ev["addr"].rsplit(":", 1)[1])

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def request(self, method, path, body=None, headers=None, timeout=60):
        return http_request(self.port, method, path, body, headers, timeout)

    def json(self, method, path, body=None, headers=None, timeout=60):
        status, hdrs, data = self.request(method, path, body, headers, timeout)
        return status, hdrs, json.loads(data)

    def sample(self, **fields):
        return self.json("POST", "/sample", fields)

    def stream(self, fields, timeout=60):
        """POST a streaming request; returns (status, headers, events)."""
        fields = dict(fields, stream=True)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request("POST", "/sample", body=json.dumps(fields),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        hdrs = dict((k.lower(), v) for k, v in r.getheaders())
        raw = r.read().decode()
        conn.close()
        return r.status, hdrs, parse_sse(raw)

    def metrics(self):
        status, hdrs, data = self.request("GET", "/metrics")
        assert status == 200
        return parse_prometheus(data.decode()), hdrs


def parse_sse(raw):
    events = []
    assert raw.endswith("\n\n"), "event stream does not end with a blank line"
    for block in raw.split("\n\n")[:-1]:
        data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
        if not data:
            assert all(ln.startswith(":") for ln in block.split("\n")), block
            continue
        events.append(json.loads("\n".join(data)))
    return events


METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """Parses the text exposition format 0.0.4 strictly. Returns
    {name: {"type": t, "samples": [(sample_name, labels, value)]}}."""
    families = {}
    assert text.endswith("\n")
    for ln in text.split("\n")[:-1]:
        if ln.startswith("# HELP "):
            name = ln.split(" ")[2]
            assert METRIC_NAME.match(name), ln
            continue
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), ln
            assert name not in families, "TYPE twice: " + name
            families[name] = {"type": typ, "samples": []}
            continue
        assert not ln.startswith("#") and ln.strip(), "bad line: %r" % ln
        m = SAMPLE_LINE.match(ln)
        assert m, "bad sample line: %r" % ln
        sname, labels_s, value = m.group(1), m.group(3), m.group(4)
        labels = {}
        pos = 0
        while labels_s and pos < len(labels_s):
            lm = LABEL.match(labels_s, pos)
            assert lm, "bad labels: %r" % ln
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        v = float(value)  # accepts NaN, +Inf
        fam = sname
        for suffix in ("_bucket", "_sum", "_count"):
            if sname.endswith(suffix) and sname[:-len(suffix)] in families and \
                    families[sname[:-len(suffix)]]["type"] == "histogram":
                fam = sname[:-len(suffix)]
        assert fam in families, "sample before its TYPE: " + ln
        families[fam]["samples"].append((sname, labels, v))
    for name, fam in families.items():
        if fam["type"] == "counter":
            assert name.endswith("_total"), name
            assert all(v >= 0 for _, _, v in fam["samples"]), name
        if fam["type"] == "histogram":
            series = {}
            for sname, labels, v in fam["samples"]:
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(key, {"b": [], "count": None})
                if sname.endswith("_bucket"):
                    series[key]["b"].append((labels["le"], v))
                elif sname.endswith("_count"):
                    series[key]["count"] = v
            for key, s in series.items():
                vals = [v for _, v in s["b"]]
                assert vals == sorted(vals), "buckets not cumulative: %s" % (key,)
                assert s["b"][-1][0] == "+Inf" and s["b"][-1][1] == s["count"], key
    return families


def metric(fams, name, **labels):
    total = 0.0
    found = False
    fam = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name not in fams and name.endswith(suffix):
            fam = name[:-len(suffix)]
    for sname, lab, v in fams[fam]["samples"]:
        if sname == name and all(lab.get(k) == x for k, x in labels.items()):
            total += v
            found = True
    return total if found else None


def check(cond, msg):
    """A check that python -O keeps (it removes assert statements)."""
    if not cond:
        raise AssertionError(msg)


def expect_error(resp, status, param="absent", msg_re=None):
    st, hdrs, body = resp
    check(st == status, "status %d, expected %d: %r" % (st, status, body))
    check(hdrs.get("content-type", "").startswith("application/json"), hdrs)
    err = body["error"]
    check(set(err) == {"code", "type", "message", "param"}, err)
    check(err["code"] == status and isinstance(err["message"], str) and err["message"], err)
    check(isinstance(err["type"], str) and err["type"], err)
    if param != "absent":
        check(err["param"] == param, "param %r, expected %r" % (err["param"], param))
    if msg_re:
        check(re.search(msg_re, err["message"]), err["message"])
    return err


def raw_http(port, data, read_timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    s.sendall(data)
    chunks = []
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    except socket.timeout:
        pass
    s.close()
    return b"".join(chunks)


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def replace_atomically(src, dst):
    tmp = os.path.join(os.path.dirname(dst), ".incoming.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ---------------------------------------------------------------- fixture

class Env:
    pass


ENV = Env()


def setup():
    ENV.dir = tempfile.mkdtemp(prefix="charrnn-e2e-")
    data = os.path.join(ENV.dir, "data.txt")
    with open(data, "w", encoding="utf-8") as f:
        f.write(make_text())
    ENV.v1 = train(ENV.dir, data, "v1", seed=1)
    ENV.v2 = train(ENV.dir, data, "v2", seed=2, cell="gru", size=24)
    ENV.models = os.path.join(ENV.dir, "models")
    os.mkdir(ENV.models)
    shutil.copyfile(ENV.v1, os.path.join(ENV.models, "tiny.safetensors"))
    shutil.copyfile(ENV.v2, os.path.join(ENV.models, "other.safetensors"))
    ENV.d = Daemon(ENV.models, "--default-model", "tiny", "--admin-token", TOKEN,
                   "--poll-interval", "0.2", "--max-length", "5000", "--max-prime", "100",
                   "--max-body", "4096")


def teardown():
    if getattr(ENV, "d", None):
        rc = ENV.d.stop()
        assert rc == 0, "daemon exit status %d; last stderr lines:\n%s" % (
            rc, "".join(ENV.d.logs()[-60:]))
    shutil.rmtree(ENV.dir, ignore_errors=True)


# ---------------------------------------------------------------- tests

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def health_and_readiness():
    st, hdrs, body = ENV.d.json("GET", "/healthz")
    assert st == 200 and body == {"status": "ok"}, body
    st, _, body = ENV.d.json("GET", "/readyz")
    assert st == 200 and body["status"] == "ready" and body["models_loaded"] == 2, body
    st, _, data = ENV.d.request("HEAD", "/healthz")
    assert st == 200 and data == b""


@test
def playground_page():
    st, hdrs, data = ENV.d.request("GET", "/")
    assert st == 200, st
    assert hdrs["content-type"].startswith("text/html"), hdrs
    assert b"charrnn playground" in data and b'"/sample"' in data, data[:200]
    st, _, _ = ENV.d.request("POST", "/")
    assert st == 405, st


@test
def readyz_without_models():
    empty = os.path.join(ENV.dir, "empty")
    os.makedirs(empty, exist_ok=True)
    d = Daemon(empty)
    try:
        st, _, body = d.json("GET", "/readyz")
        assert st == 503 and body["status"] == "not_ready", body
        st, _, body = d.json("GET", "/healthz")
        assert st == 200
        expect_error(d.sample(prime="a"), 400, "model")
    finally:
        assert d.stop() == 0


@test
def models_list_and_get():
    st, _, body = ENV.d.json("GET", "/models")
    assert st == 200 and body["default_model"] == "tiny", body
    names = [m["name"] for m in body["models"]]
    assert names == ["other", "tiny"], names
    tiny = body["models"][1]
    for k in ("version", "cell", "num_layers", "hidden_size", "vocab_size", "num_params",
              "val_loss", "loaded_at", "sha256", "status", "loads", "load_failures"):
        assert k in tiny, k
    assert tiny["status"] == "ready" and tiny["cell"] == "lstm" and tiny["hidden_size"] == 32
    assert tiny["num_layers"] == 2 and tiny["default"] is True
    assert isinstance(tiny["val_loss"], float)
    assert body["models"][0]["cell"] == "gru"
    st, _, one = ENV.d.json("GET", "/models/tiny")
    assert st == 200 and one["name"] == "tiny" and one["sha256"] == tiny["sha256"]
    expect_error(ENV.d.json("GET", "/models/nope"), 404, "model")
    expect_error(ENV.d.json("GET", "/models/.hidden"), 404)


@test
def sample_basic_fields():
    st, hdrs, body = ENV.d.sample(prime="the ", length=50, seed=7, temperature=0.7)
    assert st == 200, body
    assert hdrs["content-type"].startswith("application/json")
    assert set(body) == {"model", "model_version", "text", "seed", "finish_reason", "usage",
                         "timing"}, body
    assert body["model"] == "tiny" and body["seed"] == 7 and body["finish_reason"] == "length"
    u = body["usage"]
    assert len(body["text"]) == 50 and set(u) == {"prime_chars", "cached_chars", "generated_chars"}
    # cached_chars: how many of the prime's came from the prefix-state cache
    assert u["prime_chars"] == 4 and u["generated_chars"] == 50 and 0 <= u["cached_chars"] <= 4
    for k in ("queue_ms", "generation_ms", "total_ms"):
        assert body["timing"][k] >= 0
    # the other model by name
    st, _, b2 = ENV.d.sample(model="other", length=10, seed=7)
    assert st == 200 and b2["model"] == "other" and len(b2["text"]) == 10


@test
def sample_defaults_and_random_seed():
    st, _, a = ENV.d.sample()
    assert st == 200 and len(a["text"]) == 200 and a["usage"]["prime_chars"] == 0
    assert isinstance(a["seed"], int) and 0 <= a["seed"] < 2 ** 64
    st, _, b = ENV.d.sample(seed=a["seed"])
    assert b["text"] == a["text"], "the echoed seed does not reproduce the text"
    # null means default
    st, _, c = ENV.d.sample(seed=a["seed"], prime=None, length=None, stop=None, top_k=None)
    assert st == 200 and c["text"] == a["text"]


@test
def seed_full_uint64_range():
    big = 2 ** 64 - 1
    st, _, body = ENV.d.request("POST", "/sample", '{"seed": %d, "length": 30}' % big,
                                {"Content-Type": "application/json"})
    body = json.loads(body)
    assert st == 200 and body["seed"] == big, body
    assert body["text"] == cli_sample(ENV.v1, length=30, seed=big)
    st, _, b2 = ENV.d.sample(seed=str(big), length=30)
    assert st == 200 and b2["text"] == body["text"], "seed as a decimal string"


CASES = [
    dict(prime="the quick ", length=120, seed=1),
    dict(prime="", length=80, seed=2, temperature=0.5),
    dict(prime="über ", length=100, seed=3, temperature=1.3),
    dict(prime="fox", length=60, seed=4, temperature=0),
    dict(prime="a", length=150, seed=5, top_k=3),
    dict(prime="λόγος ", length=150, seed=6, top_p=0.8, temperature=0.9),
    dict(prime="the", length=400, seed=7, stop=["dogs", "."]),
    dict(prime="naïve ", length=90, seed=2 ** 63 + 11, top_k=5, top_p=0.9, temperature=0.8),
]


def cli_for(case, ckpt=None):
    return cli_sample(ckpt or ENV.v1, prime=case.get("prime", ""), length=case["length"],
                      temperature=case.get("temperature"), seed=case["seed"],
                      top_k=case.get("top_k"), top_p=case.get("top_p"),
                      stop=case.get("stop", ()))


@test
def same_text_as_cli():
    for case in CASES:
        want = cli_for(case)
        st, _, body = ENV.d.sample(**case)
        assert st == 200, body
        assert body["text"] == want, "server %r != cli %r for %r" % (body["text"], want, case)
        if case.get("stop"):
            assert body["finish_reason"] == "stop" and any(
                body["text"].endswith(s) for s in case["stop"]), body


CONTROL_CASES = [
    dict(prime="the quick ", length=200, seed=11, min_p=0.1),
    dict(prime="the ", length=150, seed=12, min_p=0.3, temperature=1.5, top_k=8),
    dict(prime="a", length=120, seed=13, min_p=1.0),
    dict(prime="the quick ", length=200, seed=14, repetition_penalty=1.8),
    dict(prime="the ", length=200, seed=15, repetition_penalty=0.6, temperature=0.8),
    dict(prime="the ", length=200, seed=16, presence_penalty=1.5),
    dict(prime="the dog ", length=200, seed=17, frequency_penalty=0.7, penalty_window=16),
    dict(prime="", length=200, seed=18, frequency_penalty=-1.0, penalty_window=4096),
    dict(prime="fox", length=150, seed=19, temperature=0, presence_penalty=2, penalty_window=3),
    dict(prime="the ", length=200, seed=20, repetition_penalty=1.3, presence_penalty=-0.5,
         frequency_penalty=0.4, penalty_window=40, min_p=0.05, top_k=10),
]


@test
def controls_same_text_as_cli():
    """Each generation control gives charrnn-sample's text with the same flags,
    and changes the text (against the same request without it)."""
    d = ENV.d
    for case in CONTROL_CASES:
        base = {k: v for k, v in case.items() if k in ("prime", "length", "seed", "temperature",
                                                       "top_k", "top_p", "stop")}
        want = cli_sample(ENV.v1, **case)
        st, _, body = d.sample(**case)
        check(st == 200, body)
        check(body["text"] == want, "server %r != cli %r for %r" % (body["text"], want, case))
        plain = d.sample(**base)[2]["text"]
        check(plain != want, "the control changed nothing: %r" % case)


@test
def controls_validation():
    d = ENV.d
    J = {"Content-Type": "application/json"}
    bad = [("min_p", -0.01), ("min_p", 1.5), ("min_p", "0.1"), ("min_p", True),
           ("repetition_penalty", 0), ("repetition_penalty", -1), ("repetition_penalty", 10.01),
           ("repetition_penalty", "2"), ("presence_penalty", 2.01), ("presence_penalty", -2.5),
           ("presence_penalty", [1]), ("frequency_penalty", -2.01), ("frequency_penalty", 3),
           ("frequency_penalty", False), ("penalty_window", 0), ("penalty_window", 4097),
           ("penalty_window", 1.5), ("penalty_window", "64"), ("penalty_window", -1)]
    for k, v in bad:
        expect_error(d.json("POST", "/sample", '{"%s": %s}' % (k, json.dumps(v)), J), 400, k)
    for k, v in [("min_p", 0), ("min_p", 1), ("repetition_penalty", 10),
                 ("repetition_penalty", 1e-9), ("presence_penalty", -2), ("frequency_penalty", 2),
                 ("penalty_window", 1), ("penalty_window", 4096)]:
        st, _, body = d.json("POST", "/sample", '{"%s": %s, "length": 3}' % (k, json.dumps(v)), J)
        check(st == 200, (k, v, body))


@test
def same_text_as_cli_16_concurrent():
    cases = [dict(c, seed=c["seed"] + 1000 * i) for i in range(2) for c in CASES]
    want = [cli_for(c) for c in cases]
    for i, text in enumerate(concurrent_texts(ENV.d, cases)):
        assert text == want[i], "client %d: %r != %r" % (i, text, want[i])
    fams, _ = ENV.d.metrics()
    steps = metric(fams, "charrnn_inference_steps_total")
    streams = metric(fams, "charrnn_inference_stream_steps_total")
    assert streams > steps > 0, "no step advanced more than one stream"


def batch_invariance_cases():
    """32 requests of mixed primes, lengths, temperatures, top_k/top_p and
    seeds for the LSTM, 8 more for the GRU (a batch of its own)."""
    primes = ["", "the ", "über ", "λόγος ", "fox", "naïve café ", "q", "wizards hex "]
    cases = []
    for i in range(40):
        c = dict(prime=primes[i % len(primes)], length=600 + 200 * (i % 4) + 7 * i,
                 seed=7919 * i + 3, temperature=[1.0, 0.0, 0.6, 1.4, 0.9][i % 5])
        if i % 4 == 1:
            c["top_k"] = 2 + i % 7
        if i % 3 == 2:
            c["top_p"] = 0.85
        if i % 8 == 5:
            c["stop"] = ["zzz", "dogs."]
        if i >= 32:
            c["model"] = "other"
        cases.append(c)
    return cases


def concurrent_texts(d, cases):
    """Sends every case at once (half as streams); returns their texts."""
    results = [None] * len(cases)
    barrier = threading.Barrier(len(cases))

    def run(i):
        barrier.wait()
        if i % 2:
            st, _, ev = d.stream(cases[i])
            results[i] = (st, "".join(e.get("text", "") for e in ev))
        else:
            st, _, body = d.sample(**cases[i])
            results[i] = (st, body.get("text"))

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i, (st, _) in enumerate(results):
        assert st == 200, "client %d: status %d" % (i, st)
    return [text for _, text in results]


@test
def batch_invariance_32_concurrent():
    """A request's text does not depend on what it is batched with: 32
    concurrent requests to an LSTM (+8 to a GRU, batched apart) give the texts
    each gives alone and from charrnn-sample, on a daemon with the default
    workers (batches spread over them) and on one worker with --max-batch 32,
    where the batch crosses the library's tile of 16 (checked with the step
    counters). The LSTM is 2x192 so that generations overlap."""
    mdir = os.path.join(ENV.dir, "models-bi")
    if not os.path.isdir(mdir):
        os.mkdir(mdir)
        shutil.copyfile(wide_model(), os.path.join(mdir, "wide.safetensors"))
        shutil.copyfile(ENV.v2, os.path.join(mdir, "other.safetensors"))
    ckpt = {"wide": os.path.join(mdir, "wide.safetensors"), "other": ENV.v2}
    cases = batch_invariance_cases()
    want = [cli_for(c, ckpt[c.get("model", "wide")]) for c in cases]
    for workers in ("0", "1"):
        flags = ["--default-model", "wide", "--max-length", "5000", "--max-batch", "32"]
        if workers != "0":
            flags += ["--workers", workers]
        d = Daemon(mdir, *flags)
        try:
            if workers == "0":
                for i, c in enumerate(cases):
                    st, _, body = d.sample(**c)
                    assert st == 200 and body["text"] == want[i], "alone %d: %r != cli %r" % (
                        i, body.get("text"), want[i])
            fams, _ = d.metrics()
            steps0 = metric(fams, "charrnn_inference_steps_total") or 0
            streams0 = metric(fams, "charrnn_inference_stream_steps_total") or 0
            n = len(cases) if workers == "0" else 32  # one worker: the LSTM alone
            got = concurrent_texts(d, cases[:n])
            for i, text in enumerate(got):
                assert text == want[i], "workers %s, client %d: %r != %r" % (
                    workers, i, text, want[i])
            fams, _ = d.metrics()
            steps = metric(fams, "charrnn_inference_steps_total") - steps0
            streams = metric(fams, "charrnn_inference_stream_steps_total") - streams0
            print("     workers %s: mean batch %.1f" % (
                workers if workers != "0" else "default", streams / steps))
            if workers == "1":
                assert streams / steps > 16, "mean batch %.1f: no step crossed a tile of 16" % (
                    streams / steps)
        finally:
            assert d.stop() == 0


def wide_model():
    """The 2x192 LSTM of the batch-invariance tests (trained once)."""
    path = os.path.join(ENV.dir, "wide.safetensors")
    if not os.path.exists(path):
        train(ENV.dir, os.path.join(ENV.dir, "data.txt"), "wide", seed=3, size=192)
    return path


@test
def reduced_precision_models():
    """bf16 and int8 copies of the 2x192 LSTM (charrnn-convert): /models and
    /metrics say their dtype, and requests alone and 12 at once give
    charrnn-sample's text for the same file, on two workers (a request alone
    has its step's rows split across both)."""
    mdir = os.path.join(ENV.dir, "models-lowp")
    if not os.path.isdir(mdir):
        os.mkdir(mdir)
        for dt in ("bf16", "int8"):
            subprocess.run([CONVERT, "--dtype", dt, wide_model(),
                            os.path.join(mdir, "wide-%s.safetensors" % dt)],
                           check=True, stdout=subprocess.DEVNULL)
    cases = batch_invariance_cases()[:12]
    d = Daemon(mdir, "--default-model", "wide-bf16", "--max-length", "5000", "--workers", "2")
    try:
        st, _, body = d.json("GET", "/models")
        assert st == 200, body
        dtypes = {m["name"]: m["dtype"] for m in body["models"]}
        assert dtypes == {"wide-bf16": "bf16", "wide-int8": "int8"}, dtypes
        fams, _ = d.metrics()
        assert metric(fams, "charrnn_model_info", model="wide-int8", dtype="int8") == 1
        split0 = metric(fams, "charrnn_inference_split_steps_total")
        for dt in ("bf16", "int8"):
            name = "wide-" + dt
            want = [cli_for(c, os.path.join(mdir, name + ".safetensors")) for c in cases]
            for i, c in enumerate(cases[:4]):
                st, _, body = d.sample(model=name, **c)
                assert st == 200 and body["text"] == want[i], "%s alone %d: %r != cli %r" % (
                    name, i, body.get("text"), want[i])
            got = concurrent_texts(d, [dict(c, model=name) for c in cases])
            for i, text in enumerate(got):
                assert text == want[i], "%s client %d: %r != %r" % (name, i, text, want[i])
        fams, _ = d.metrics()
        split = metric(fams, "charrnn_inference_split_steps_total") - split0
        assert split > 0, "no step had its rows split across the two workers"
        print("     steps with split rows: %d" % split)
    finally:
        assert d.stop() == 0


@test
def streaming():
    case = dict(prime="the ", length=300, seed=99, temperature=0.9)
    st, hdrs, events = ENV.d.stream(case)
    assert st == 200 and hdrs["content-type"].startswith("text/event-stream"), hdrs
    assert len(events) >= 2
    for e in events[:-1]:
        assert set(e) == {"text"} and e["text"], e
    last = events[-1]
    assert last["finish_reason"] == "length" and last["usage"]["generated_chars"] == 300, last
    assert last["seed"] == 99 and last["model"] == "tiny" and "model_version" in last
    text = "".join(e["text"] for e in events)
    assert text == cli_for(case)
    # stop in a stream
    st, _, events = ENV.d.stream(dict(prime="the", length=400, seed=7, stop=["dogs", "."]))
    assert events[-1]["finish_reason"] == "stop"
    # validation errors are plain JSON errors before any event
    st, hdrs, body = ENV.d.json("POST", "/sample", {"stream": True, "temperature": -1})
    expect_error((st, hdrs, body), 400, "temperature")


@test
def validation_errors():
    d = ENV.d
    J = {"Content-Type": "application/json"}
    expect_error(d.json("POST", "/sample", "{\"length\": 5", J), 400, None, "not valid JSON")
    expect_error(d.json("POST", "/sample", "", J), 400, None)
    expect_error(d.json("POST", "/sample", "[1,2]", J), 400, None, "object")
    expect_error(d.json("POST", "/sample", '{"length": 5} x', J), 400, None)
    expect_error(d.json("POST", "/sample", '{"length": 5, "length": 6}', J), 400, "length",
                 "twice")
    expect_error(d.sample(lenght=5), 400, "lenght", "unknown field")
    wrong_types = {
        "model": 3, "prime": 5, "length": "10", "temperature": "hot", "seed": "abc",
        "top_k": 1.5, "top_p": "x", "stop": "dogs", "stream": "yes",
    }
    for k, v in wrong_types.items():
        expect_error(d.sample(**{k: v}), 400, k)
    expect_error(d.sample(stop=["ok", 3]), 400, "stop")
    expect_error(d.sample(stop=[""]), 400, "stop")
    expect_error(d.sample(stop=["x" * 257]), 400, "stop")
    expect_error(d.sample(stop=["s%d" % i for i in range(17)]), 400, "stop")
    out_of_range = [("length", 0), ("length", 5001), ("length", -3), ("temperature", -0.1),
                    ("temperature", 10.5), ("top_p", 0), ("top_p", 1.01), ("top_k", -1),
                    ("seed", -1), ("seed", 1.5), ("seed", 2 ** 64)]
    # a top_p below the smallest float means the best character alone: greedy
    greedy = d.sample(prime="the ", length=40, temperature=0)[2]["text"]
    for tiny in (1e-300, 5e-324, 1e-45):
        st, _, ok = d.json("POST", "/sample", '{"prime": "the ", "length": 40, "seed": 9, '
                           '"top_p": %r}' % tiny, J)
        assert st == 200 and ok["text"] == greedy, (tiny, ok)
    assert (cli_sample(ENV.v1, prime="the ", length=40, seed=9, top_p=1e-300) ==
            cli_sample(ENV.v1, prime="the ", length=40, temperature=0))
    for k, v in out_of_range:
        expect_error(d.json("POST", "/sample", '{"%s": %s}' % (k, json.dumps(v)), J), 400, k)
    expect_error(d.sample(model="nope"), 404, "model", "not found")
    expect_error(d.sample(model="../etc/passwd"), 400, "model")
    err = expect_error(d.sample(prime="Zebra€"), 400, "prime")
    assert "Z" in err["message"] or "€" in err["message"], err
    expect_error(d.sample(prime="x" * 101), 400, "prime", "limit")
    expect_error(d.json("POST", "/sample", '{"prime": "a\\u0000b"}', J), 400, "prime", "U\\+0000")
    expect_error(d.json("POST", "/sample", '{"stop": ["\\u0000"]}', J), 400, "stop")
    st, _, ok = d.json("POST", "/sample", '{"prime": "\\\\u0000", "length": 1}', J)
    assert st == 400 and ok["error"]["param"] == "prime" and "U+0000" not in ok["error"]["message"]
    # whitespace is what cJSON skips (every byte up to 0x20), so the scanner
    # that looks for \u0000 and reads the seed sees the same members
    for ws in ("\f", "\v", "\x01", "\x1f"):
        expect_error(d.json("POST", "/sample", '{%s"prime": "ab\\u0000cd"}' % ws, J), 400,
                     "prime", "U\\+0000")
        st, _, ok = d.json("POST", "/sample", '{%s"seed"%s:%s5%s, "length": 3}' % ((ws,) * 4), J)
        assert st == 200 and ok["seed"] == 5, (ws, ok)
    expect_error(d.json("POST", "/sample", '\ufeff{"prime": "a\\u0000b"}'.encode(), J), 400,
                 "prime", "U\\+0000")
    # body too large: by Content-Length and by chunked upload
    expect_error(d.json("POST", "/sample", json.dumps({"prime": "a" * 5000}), J), 413)
    raw = raw_http(d.port, b"POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
                   b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                   b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(5)) +
                   b"0\r\n\r\n", 5)
    assert raw.startswith(b"HTTP/1.1 413"), raw[:100]
    # wrong method, unknown path, content type
    for method, path, allow in [("GET", "/sample", "POST"), ("DELETE", "/models", "GET, HEAD"),
                                ("POST", "/models/tiny", "GET, HEAD"),
                                ("GET", "/models/tiny/reload", "POST")]:
        st, hdrs, body = d.json(method, path)
        expect_error((st, hdrs, body), 405)
        assert hdrs["allow"] == allow, (method, path, hdrs)
    expect_error(d.json("GET", "/nope"), 404)
    expect_error(d.json("GET", "/models/tiny/other"), 404)
    # {name} is one non-empty segment, and the path must end where the pattern does
    for path in ("/models/", "/models/tiny/", "/models/tiny/reload/", "/models//reload",
                 "/sample/", "//sample", "/models/" + "a" * 200):
        st, hdrs, body = d.json("GET", path)
        expect_error((st, hdrs, body), 404)
        assert "allow" not in hdrs, (path, hdrs)
    # a name that is one segment but not a model name reaches the handler
    expect_error(d.json("GET", "/models/" + "a" * 129), 404, "model")
    # every route's body limit, not only /sample's
    expect_error(d.json("POST", "/models/tiny/reload", "x" * 5000), 413)
    expect_error(d.json("POST", "/sample", '{"length": 5}', {"Content-Type": "text/plain"}), 415)
    expect_error(d.json("POST", "/sample", '{"length": 5}',
                        {"Content-Type": "multipart/form-data; boundary=x"}), 415)
    expect_error(d.json("POST", "/sample", b'{"length": 5}', {}), 415)
    # what `curl -d '{...}'` sends: the README's examples must work as typed
    st, _, ok = d.json("POST", "/sample", '{"length": 5}',
                       {"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200 and len(ok["text"]) == 5, ok
    st, _, ok = d.json("POST", "/sample", '{"length": 5}',
                       {"Content-Type": "application/json; charset=utf-8"})
    assert st == 200, ok


@test
def ambiguous_framing_refused():
    """Transfer-Encoding with Content-Length, a coding other than chunked, or
    two Content-Lengths: 400 and the connection closed, so a request hidden in
    the body (which a proxy may frame differently) is never served."""
    d = ENV.d
    hidden = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    body = b'{"length": 3}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = b"POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    cases = [
        b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(chunked) + chunked,
        b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
        b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked,
        b"Transfer-Encoding: identity\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
        b"Content-Length: %d\r\nContent-Length: 0\r\n\r\n" % len(body) + body,
    ]
    for i, c in enumerate(cases):
        raw = raw_http(d.port, head + c + hidden, 5)
        assert raw.startswith(b"HTTP/1.1 400"), (i, raw[:300])
        assert raw.count(b"HTTP/1.1 ") == 1, (i, raw)  # closed: the hidden request never ran
        assert b"Transfer-Encoding" in raw or b"Content-Length" in raw, (i, raw)
    # plain chunked and plain Content-Length keep working, pipelined too
    hidden = hidden.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    raw = raw_http(d.port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + hidden, 5)
    assert raw.startswith(b"HTTP/1.1 200") and raw.count(b"HTTP/1.1 200") == 2, raw[:300]
    raw = raw_http(d.port, head + b"Content-Length: %d\r\n\r\n" % len(body) + body + hidden, 5)
    assert raw.startswith(b"HTTP/1.1 200") and raw.count(b"HTTP/1.1 200") == 2, raw[:300]


@test
def cross_origin_and_host_checks():
    """Browser pages: an Origin that is neither the daemon's own nor allowed
    gets 403, so does a non-loopback Host on a loopback listener (DNS
    rebinding); form-encoded bodies from a browser are not JSON; --cors-origin
    (repeatable, or CHARRNN_CORS_ORIGIN) turns on CORS answers and preflight.
    Requests without Origin (curl -d) keep working."""
    d = ENV.d
    J = {"Content-Type": "application/json"}
    F = {"Content-Type": "application/x-www-form-urlencoded"}
    body = '{"length": 3}'
    own = "http://127.0.0.1:%d" % d.port
    for ct in (J, F):
        err = expect_error(d.json("POST", "/sample", body, dict(ct, Origin="http://evil.example")),
                           403)
        assert "evil.example" in err["message"] and "--cors-origin" in err["message"], err
    expect_error(d.json("GET", "/models", headers={"Origin": "null"}), 403)
    st, hdrs, ok = d.json("POST", "/sample", body, dict(J, Origin=own))  # the playground page
    assert st == 200 and "access-control-allow-origin" not in hdrs, (st, ok)
    expect_error(d.json("POST", "/sample", body, dict(F, Origin=own)), 415)
    st, _, ok = d.json("POST", "/sample", body, F)  # curl -d: no Origin
    assert st == 200, ok
    for host in ("evil.example", "evil.example:%d" % d.port, "127.0.0.1.evil.example"):
        err = expect_error(d.json("GET", "/healthz", headers={"Host": host}), 403)
        assert "loopback" in err["message"], err
    for host in ("localhost:%d" % d.port, "LOCALHOST", "app.localhost", "127.0.0.2",
                 "[::1]:%d" % d.port):
        st, _, _ = d.json("GET", "/healthz", headers={"Host": host})
        assert st == 200, host
    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    st, _, _ = d.request("OPTIONS", "/sample", headers=pre)
    assert st == 403, st

    app = "https://app.example"
    a = Daemon(ENV.models, "--default-model", "tiny", "--poll-interval", "0",
               "--cors-origin", app, "--cors-origin", "http://localhost:3000")
    b = Daemon(ENV.models, "--default-model", "tiny", "--poll-interval", "0",
               env={"CHARRNN_CORS_ORIGIN": "https://one.example, https://two.example"})
    try:
        st, hdrs, _ = a.request("OPTIONS", "/sample", headers=dict(pre, Origin=app))
        assert st == 204, st
        assert hdrs["access-control-allow-origin"] == app, hdrs
        assert hdrs["access-control-allow-methods"] == "POST", hdrs
        assert "content-type" in hdrs["access-control-allow-headers"].lower(), hdrs
        assert "origin" in hdrs["vary"].lower(), hdrs
        st, hdrs, ok = a.json("POST", "/sample", body, dict(J, Origin=app))
        assert st == 200 and hdrs["access-control-allow-origin"] == app, (st, hdrs, ok)
        st, hdrs, _ = a.json("GET", "/models", headers={"Origin": "http://localhost:3000"})
        assert st == 200 and hdrs["access-control-allow-origin"] == "http://localhost:3000"
        expect_error(a.json("POST", "/sample", body, dict(J, Origin="https://other.example")),
                     403)
        st, _, _ = a.request("OPTIONS", "/sample",
                             headers=dict(pre, Origin="https://other.example"))
        assert st == 403
        for o in ("https://one.example", "https://two.example"):
            st, hdrs, _ = b.json("POST", "/sample", body, dict(J, Origin=o))
            assert st == 200 and hdrs["access-control-allow-origin"] == o, (o, hdrs)
    finally:
        a.stop()
        b.stop()
    bad = subprocess.run([SERVE, "--cors-origin", "https://x.example/path"],
                         stderr=subprocess.PIPE, timeout=10)
    assert bad.returncode == 2 and b"not an origin" in bad.stderr, bad


@test
def metrics_exposition():
    ENV.d.sample(length=10, seed=1)
    ENV.d.sample(length=0)
    ENV.d.request("GET", "/sample")
    ENV.d.request("GET", "/models/tiny")
    ENV.d.request("GET", "/no/such/path")
    fams, hdrs = ENV.d.metrics()
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs
    for name, typ in [("charrnn_requests_total", "counter"),
                      ("charrnn_request_duration_seconds", "histogram"),
                      ("charrnn_generated_chars_total", "counter"),
                      ("charrnn_active_requests", "gauge"),
                      ("charrnn_queued_requests", "gauge"),
                      ("charrnn_model_loads_total", "counter"),
                      ("charrnn_model_load_failures_total", "counter"),
                      ("charrnn_model_info", "gauge")]:
        assert fams[name]["type"] == typ, name
    assert metric(fams, "charrnn_requests_total", route="/sample", status="200") >= 1
    assert metric(fams, "charrnn_requests_total", route="/sample", status="400") >= 1
    assert metric(fams, "charrnn_request_duration_seconds_count", route="/sample") >= 2
    # the route label is the table's pattern, also for a wrong method; "other" for no route
    assert metric(fams, "charrnn_requests_total", route="/sample", status="405") >= 1
    assert metric(fams, "charrnn_requests_total", route="/models/{name}", status="200") >= 1
    assert metric(fams, "charrnn_requests_total", route="other", status="404") >= 1
    routes = {lab["route"] for _, lab, _ in fams["charrnn_requests_total"]["samples"]}
    assert not any("tiny" in r or "no/such" in r for r in routes), routes
    assert metric(fams, "charrnn_generated_chars_total") >= 10
    assert metric(fams, "charrnn_active_requests") == 0
    assert metric(fams, "charrnn_model_info", model="tiny", cell="lstm") == 1
    assert metric(fams, "charrnn_model_loads_total", model="tiny") >= 1


@test
def reload_endpoint_and_token():
    d = ENV.d
    expect_error(d.json("POST", "/models/tiny/reload"), 401)
    expect_error(d.json("POST", "/models/tiny/reload", headers={"Authorization": "Bearer nope"}),
                 401)
    expect_error(d.json("POST", "/models/tiny/reload",
                        headers={"Authorization": "Bearer " + TOKEN + "x"}), 401)
    auth = {"Authorization": "Bearer " + TOKEN}
    _, _, before = d.json("GET", "/models/tiny")
    st, _, after = d.json("POST", "/models/tiny/reload", headers=auth)
    # the same bytes: loaded again, and still the same version (docs/serving.md)
    check(st == 200 and after["version"] == before["version"] and
          after["loads"] == before["loads"] + 1, "unchanged reload: %s -> %s" % (before, after))
    check(after["sha256"] == before["sha256"], "sha256 changed")
    expect_error(d.json("POST", "/models/ghost/reload", headers=auth), 404)
    st, _, body = d.sample(length=5, seed=1)
    assert body["model_version"] == after["version"]


@test
def reload_without_token_only_on_loopback():
    """Without --admin-token the reload endpoint answers on a loopback listener
    only; on any other address it is 403 and says to set a token."""
    local = Daemon(ENV.models, "--poll-interval", "0")
    wide = Daemon(ENV.models, "--poll-interval", "0", "--listen", "0.0.0.0:0")
    wide_tok = Daemon(ENV.models, "--poll-interval", "0", "--listen", "0.0.0.0:0",
                      "--admin-token", TOKEN)
    try:
        st, _, body = local.json("POST", "/models/tiny/reload")
        assert st == 200, body
        err = expect_error(wide.json("POST", "/models/tiny/reload"), 403)
        assert "--admin-token" in err["message"], err
        expect_error(wide_tok.json("POST", "/models/tiny/reload"), 401)
        st, _, body = wide_tok.json("POST", "/models/tiny/reload",
                                    headers={"Authorization": "Bearer " + TOKEN})
        assert st == 200, body
        st, _, _ = wide.json("GET", "/models/tiny")  # the rest stays open
        assert st == 200
    finally:
        for d in (local, wide, wide_tok):
            d.stop()


@test
def slow_reader_holds_no_model_version():
    """A response read slowly keeps its text, not its model version:
    the version and the stream are let go when the generation ends, so
    reloads during a slow read leave no extra version in memory."""
    d = Daemon(ENV.models, "--default-model", "tiny", "--max-length", "10000000",
               "--poll-interval", "0")
    s = socket.socket()
    # Small segments and window: the daemon's send buffer stays small too,
    # so the response cannot all sit in kernel buffers.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    try:
        s.connect(("127.0.0.1", d.port))
        body = json.dumps({"length": 300000, "stream": True, "seed": 1}).encode()
        s.sendall(b"POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        wait_metric(d, "charrnn_generated_chars_total", lambda v: v >= 300000, 60)
        wait_metric(d, "charrnn_active_requests", lambda v: v == 0)
        for _ in range(2):
            st, _, out = d.json("POST", "/models/tiny/reload")
            assert st == 200, out
        fams, _ = d.metrics()
        live = metric(fams, "charrnn_model_versions_live")
        loaded = metric(fams, "charrnn_models_loaded")
        assert live == loaded, (live, loaded)
        assert s.recv(1, socket.MSG_DONTWAIT)  # the response is still being sent
    finally:
        s.close()
        d.stop()


@test
def sighup_reloads():
    d = ENV.d
    _, _, before = d.json("GET", "/models/tiny")
    mark = len(d.logs())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "tiny" and
               o.get("unchanged") is True, 10, mark)
    _, _, after = d.json("GET", "/models/tiny")
    check(after["version"] == before["version"] and after["loads"] > before["loads"],
          "SIGHUP over unchanged files: %s -> %s" % (before, after))


@test
def hot_reload_under_load():
    d = ENV.d
    path = os.path.join(ENV.models, "tiny.safetensors")
    case = dict(prime="the ", length=200, seed=31337, temperature=0.8)
    want = {"v1": cli_for(case, ENV.v1), "v2": cli_for(case, ENV.v2)}
    _, _, m0 = d.json("GET", "/models/tiny")
    stop = threading.Event()
    results = []
    lock = threading.Lock()

    def client(i):
        n = 0
        while not stop.is_set() or n < 3:
            try:
                if i % 2:
                    st, _, ev = d.stream(case)
                    text = "".join(e.get("text", "") for e in ev)
                    ver = ev[-1].get("model_version") if ev else None
                else:
                    st, _, body = d.sample(**case)
                    text, ver = body.get("text"), body.get("model_version")
            except Exception as e:  # a failed request is a test failure
                st, text, ver = repr(e), None, None
            with lock:
                results.append((st, text, ver))
            n += 1

    ts = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    replace_atomically(ENV.v2, path)  # noticed by the poller
    time.sleep(0.6)
    st, _, r = d.json("POST", "/models/tiny/reload",
                      headers={"Authorization": "Bearer " + TOKEN})
    assert st == 200, r
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join()
    _, _, m1 = d.json("GET", "/models/tiny")
    assert m1["version"] > m0["version"] and m1["cell"] == "gru", m1
    versions = set()
    for st, text, ver in results:
        assert st == 200, "a request failed during reload: %r" % (st,)
        versions.add(ver)
        # each response is the exact text of the version it reports
        assert text in (want["v1"], want["v2"]), text
        if ver == m0["version"]:
            assert text == want["v1"]
        if ver >= m1["version"]:
            assert text == want["v2"]
    assert len(results) >= 24 and len(versions) >= 2, (len(results), versions)
    st, _, body = d.sample(**case)
    assert body["model_version"] == m1["version"] and body["text"] == want["v2"]
    replace_atomically(ENV.v1, path)
    d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "tiny" and
               o.get("version") > m1["version"], 10)


@test
def corrupt_files_leave_serving_undisturbed():
    d = ENV.d
    _, _, before = d.json("GET", "/models/tiny")
    case = dict(prime="the ", length=40, seed=5)
    want = cli_for(case)
    # a new corrupt file
    with open(os.path.join(ENV.models, "broken.safetensors"), "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    d.wait_log(lambda o: o.get("msg") == "model load failed" and o.get("model") == "broken", 10)
    st, _, b = d.json("GET", "/models/broken")
    assert st == 200 and b["status"] == "unavailable" and b["last_error"]["message"], b
    expect_error(d.sample(model="broken"), 404, "model")
    # a truncated replacement of a serving model: the old version keeps serving
    with open(ENV.v2, "rb") as f:
        half = f.read()[:5000]
    tmp = os.path.join(ENV.models, ".tmp")
    with open(tmp, "wb") as f:
        f.write(half)
    os.replace(tmp, os.path.join(ENV.models, "tiny.safetensors"))
    d.wait_log(lambda o: o.get("msg") == "model load failed" and o.get("model") == "tiny", 10)
    st, _, body = d.sample(**case)
    assert st == 200 and body["text"] == want and body["model_version"] == before["version"]
    _, _, t = d.json("GET", "/models/tiny")
    assert t["status"] == "ready" and t["version"] == before["version"] and t["last_error"], t
    fams, _ = d.metrics()
    assert metric(fams, "charrnn_model_load_failures_total", model="tiny") >= 1
    assert metric(fams, "charrnn_model_last_load_failed", model="tiny") == 1
    st, _, _ = d.json("GET", "/readyz")
    assert st == 200
    # repair
    os.unlink(os.path.join(ENV.models, "broken.safetensors"))
    replace_atomically(ENV.v1, os.path.join(ENV.models, "tiny.safetensors"))
    d.wait_log(lambda o: o.get("msg") == "model removed" and o.get("model") == "broken", 10)
    deadline = time.time() + 10
    while time.time() < deadline:
        _, _, t = d.json("GET", "/models/tiny")
        if t["last_error"] is None:
            break
        time.sleep(0.1)
    check(t["last_error"] is None and t["sha256"] == file_sha256(ENV.v1), "not repaired: %s" % t)
    # repaired with the bytes serving before: the same version; with others: a new one
    check((t["version"] == before["version"]) == (t["sha256"] == before["sha256"]) and
          t["version"] >= before["version"], "version after the repair: %s -> %s" % (before, t))


@test
def symlink_outside_refused():
    outside = os.path.join(ENV.dir, "outside.safetensors")
    shutil.copyfile(ENV.v1, outside)
    link = os.path.join(ENV.models, "sneaky.safetensors")
    os.symlink(outside, link)
    inside = os.path.join(ENV.models, "alias.safetensors")
    os.symlink("tiny.safetensors", inside)
    try:
        ENV.d.wait_log(lambda o: o.get("msg") == "model load failed" and
                       o.get("model") == "sneaky", 10)
        ENV.d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "alias", 10)
        expect_error(ENV.d.sample(model="sneaky"), 404, "model")
        _, _, s = ENV.d.json("GET", "/models/sneaky")
        assert "outside" in s["last_error"]["message"], s
        # anonymous clients see names relative to the models directory only:
        # not the symlink's target, not where the directory is
        assert ENV.dir not in json.dumps(s), s
        err = expect_error(ENV.d.sample(model="sneaky"), 404, "model")
        assert ENV.dir not in err["message"], err
        st, _, body = ENV.d.sample(model="alias", length=5)
        assert st == 200, body
    finally:
        os.unlink(link)
        os.unlink(inside)


@test
def special_files_never_block():
    """A FIFO (behind a symlink), a socket and a directory named *.safetensors:
    the daemon starts, lists them as failed loads naming them relative to the
    models directory, reloads on SIGHUP and stops on SIGTERM, never blocked."""
    models = tempfile.mkdtemp(prefix="special-", dir=ENV.dir)
    shutil.copyfile(ENV.v1, os.path.join(models, "real.safetensors"))
    os.mkfifo(os.path.join(models, "pipe"))
    os.symlink("pipe", os.path.join(models, "fifo.safetensors"))
    os.mkdir(os.path.join(models, "dir.safetensors"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(models, "sock.safetensors"))
    try:
        d = Daemon(models, "--poll-interval", "0.2")
        _, _, body = d.json("GET", "/models")
        assert models not in json.dumps(body), body
        got = {m["name"]: m for m in body["models"]}
        assert got["real"]["status"] == "ready", got
        assert "fifo" in got and got["fifo"]["status"] == "unavailable", got
        mark = len(d.logs())
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "real", 10, mark)
        st, _, _ = d.json("GET", "/healthz", timeout=5)
        assert st == 200
        t0 = time.time()
        assert d.stop(timeout=10) == 0
        assert time.time() - t0 < 5
    finally:
        sock.close()


@test
def getrandom_failure_is_500():
    """Without a seed the daemon draws one with getrandom; when that fails
    (ENOSYS under seccomp) the request is a 500 naming 'seed' and logged, not
    an endless retry. A request with a seed is served."""
    shim = os.environ.get("CHARRNN_TEST_GETRANDOM_ENOSYS")
    assert shim, "CHARRNN_TEST_GETRANDOM_ENOSYS is not set (meson test sets it)"
    asan = os.environ.get("ASAN_OPTIONS", "")
    d = Daemon(ENV.models, "--default-model", "tiny", "--poll-interval", "0",
               env={"LD_PRELOAD": shim, "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"})
    err = expect_error(d.json("POST", "/sample", {"length": 5}, timeout=10), 500, "seed")
    assert "random seed" in err["message"], err
    d.wait_log(lambda o: o.get("msg") == "getrandom failed: no random seed", 5)
    st, _, body = d.sample(length=5, seed=1)
    assert st == 200 and body["seed"] == 1, body
    # every request gets an X-Request-Id, random when it can be: not a spin either
    st, hdrs, _ = d.request("GET", "/healthz", timeout=10)
    assert st == 200 and hdrs.get("x-request-id"), hdrs
    st, _, body = d.json("POST", "/v1/completions", {"prompt": "a", "max_tokens": 3}, timeout=10)
    assert st == 500 and body["error"]["param"] == "seed", body
    st, _, body = d.json("POST", "/v1/completions", {"prompt": "a", "max_tokens": 3, "seed": 2},
                         timeout=10)
    assert st == 200, body
    assert d.stop() == 0


@test
def invalid_utf8_in_path_is_escaped():
    """A percent-decoded path may hold any bytes: the error body and the
    access log line stay valid UTF-8, with such bytes written as \\xNN."""
    d = ENV.d
    mark = len(d.logs())
    for path, want in [(b"/%FF%C3%28", "/\\xFF\\xC3("), (b"/models/a%80b", "a\\x80b")]:
        raw = raw_http(d.port, b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404"), raw
        msg = json.loads(body.decode("utf-8"))["error"]["message"]  # strict UTF-8
        assert want in msg, (msg, want)
    d.wait_log(lambda o: o.get("msg") == "request" and o.get("path") == "/models/a\\x80b", 5, mark)
    assert not any("\ufffd" in line for line in d.logs()[mark:]), d.logs()[mark:]


def thread_nice(pid):
    """{tid: (name, nice)} of a process's threads, from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            out[int(tid)] = (f.read().strip(), int(fields[16]))  # field 19: nice
    return out


@test
def workers_run_below_http_priority():
    """The generation workers run 10 nice levels below the rest of the daemon
    (HTTP and probes), so /healthz is answered at once under full load."""
    d = Daemon(ENV.models, "--workers", "3", "--poll-interval", "0")
    try:
        # Each worker names and renices itself as it starts, which a loaded
        # machine may schedule after the daemon already listens: wait for
        # both (a worker seen named may not be reniced yet).
        deadline = time.monotonic() + 10
        while True:
            threads = thread_nice(d.proc.pid)
            base = threads[d.proc.pid][1]
            done = [n for name, n in threads.values() if name == "charrnn-worker" and n != base]
            if len(done) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        workers = [n for name, n in threads.values() if name == "charrnn-worker"]
        assert len(workers) == 3, threads
        assert all(n == min(19, base + 10) for n in workers), threads
        others = [n for name, n in threads.values() if name != "charrnn-worker"]
        assert all(n == base for n in others), threads
    finally:
        d.stop()
    d = Daemon(ENV.models, "--workers", "2", "--poll-interval", "0", "--worker-nice", "0")
    try:
        threads = thread_nice(d.proc.pid)
        assert all(n == threads[d.proc.pid][1] for _, n in threads.values()), threads
    finally:
        d.stop()


def open_holders(port, n, source="127.0.0.1"):
    """n connections that send half a request head and then nothing."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        s.sendall(b"GET /models HTTP/1.1\r\nHost: localhost\r\n")
        out.append(s)
    time.sleep(0.3)  # accepted and counted
    return out


def read_until_closed(s, timeout):
    """What the server sends before it closes (None if it keeps it open)."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            c = s.recv(4096)
            if not c:
                return data
            data += c
    except (ConnectionResetError, BrokenPipeError):
        return data
    except socket.timeout:
        return None


@test
def connection_slots_reserve_and_deadline():
    """With every slot held by unfinished requests, /healthz, /readyz and
    /metrics still get a reserved connection (anything else there: 503); the
    per-client limit counts addresses; a request dribbled a byte at a time is
    cut when its deadline passes, idle timer or not."""
    d = Daemon(ENV.models, "--poll-interval", "0", "--max-connections", "4",
               "--max-connections-per-ip", "0")
    held = open_holders(d.port, 4)
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            st, _, _ = d.request("GET", path, timeout=5)
            assert st == 200, (path, st)
        err = expect_error(d.json("GET", "/models", timeout=5), 503)
        assert "/healthz" in err["message"], err
    finally:
        for s in held:
            s.close()
        d.stop()

    d = Daemon(ENV.models, "--poll-interval", "0", "--max-connections-per-ip", "2")
    held = open_holders(d.port, 2, "127.0.0.2")
    try:
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=5,
                                         source_address=("127.0.0.2", 0))
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_until_closed(extra, 5) == b""  # refused: closed without an answer
        extra.close()
        other = socket.create_connection(("127.0.0.1", d.port), timeout=5,
                                         source_address=("127.0.0.3", 0))
        other.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        other.settimeout(5)
        assert other.recv(4096).startswith(b"HTTP/1.1 200")
        other.close()
    finally:
        for s in held:
            s.close()
        d.stop()

    d = Daemon(ENV.models, "--poll-interval", "0", "--request-timeout", "1.5")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        t0 = time.time()
        head = b"POST /sample HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 1000
        cut = None
        for i, byte in enumerate(head):
            try:
                s.sendall(bytes([byte]))
            except (ConnectionResetError, BrokenPipeError):
                cut = time.time() - t0
                break
            s.settimeout(0.2)
            try:
                if s.recv(4096) == b"":
                    cut = time.time() - t0
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                cut = time.time() - t0
                break
            if time.time() - t0 > 8:
                break
        assert cut is not None and 1.4 < cut < 4, cut
        st, _, _ = d.request("GET", "/healthz", timeout=5)  # whole requests are served
        assert st == 200
    finally:
        s.close()
        d.stop()


@test
def signals_answered_during_a_long_scan():
    """Scans run off the main thread: SIGTERM during a SIGHUP reload of large
    files is acted on at once, not after every file is read and hashed."""
    models = tempfile.mkdtemp(prefix="bigscan-", dir=ENV.dir)
    shutil.copyfile(ENV.v1, os.path.join(models, "real.safetensors"))
    big = os.path.join(models, "big0.safetensors")
    with open(big, "wb") as f:
        f.truncate(32 << 20)  # sparse: no disk; read and hashed in 0.1-0.5 s
    for i in range(1, 3):
        os.link(big, os.path.join(models, "big%d.safetensors" % i))
    d = Daemon(models, "--poll-interval", "0")
    d.wait_log(lambda o: o.get("msg") == "model load failed" and o.get("model") == "big2", 30)
    mark = len(d.logs())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(lambda o: o.get("msg") == "model load failed" and o.get("model") == "big0", 30,
               mark)
    d.proc.send_signal(signal.SIGTERM)
    assert d.stop(timeout=30) == 0
    msgs = [json.loads(l).get("msg") for l in d.logs()[mark:] if l.startswith("{")]
    failed_after = msgs[msgs.index("shutting down"):].count("model load failed")
    assert failed_after >= 1, msgs  # the scan was still running when SIGTERM was handled


@test
def access_log_lines():
    mark = len(ENV.d.logs())
    ENV.d.sample(length=5, seed=77)
    ENV.d.json("GET", "/nope")
    o = ENV.d.wait_log(lambda o: o.get("msg") == "request" and o.get("path") == "/nope", 5, mark)
    assert o["status"] == 404 and o["method"] == "GET" and o["level"] == "info"
    o = ENV.d.wait_log(lambda o: o.get("msg") == "request" and o.get("seed") == 77, 5, mark)
    for k in ("ts", "status", "duration_ms", "model", "model_version", "generated_chars",
              "route", "remote"):
        assert k in o, k
    for line in ENV.d.logs():
        json.loads(line)  # every stderr line is one JSON object


def small_daemon(*flags):
    return Daemon(ENV.models, "--default-model", "tiny", "--max-length", "10000000",
                  "--poll-interval", "0", *flags)


def wait_metric(d, name, pred, timeout=10):
    deadline = time.time() + timeout
    while True:
        fams, _ = d.metrics()
        v = metric(fams, name)
        if pred(v):
            return v
        assert time.time() < deadline, "%s stuck at %s" % (name, v)
        time.sleep(0.05)


def start_raw_sample(port, fields):
    body = json.dumps(fields).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return s


@test
def disconnect_stops_generation():
    d = small_daemon("--max-concurrent", "4")
    try:
        for stream in (False, True):
            s = start_raw_sample(d.port, {"length": 10000000, "stream": stream})
            wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
            if stream:
                assert s.recv(100).startswith(b"HTTP/1.1 200")
            s.close()
            wait_metric(d, "charrnn_active_requests", lambda v: v == 0, 5)
            a = wait_metric(d, "charrnn_generated_chars_total", lambda v: True)
            time.sleep(0.3)
            b = wait_metric(d, "charrnn_generated_chars_total", lambda v: True)
            assert a == b, "generation continued after the client left"
            assert a < 10000000 * (2 if stream else 1)
        o = d.wait_log(lambda o: o.get("msg") == "request" and o.get("finish_reason") ==
                       "cancelled", 5)
        assert o["status"] in (200, 499), o
    finally:
        assert d.stop() == 0


@test
def queue_full_is_503_with_retry_after():
    d = small_daemon("--max-concurrent", "1", "--max-queue", "1", "--retry-after", "3")
    try:
        a = start_raw_sample(d.port, {"length": 10000000})
        wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
        b = start_raw_sample(d.port, {"length": 10000000})
        wait_metric(d, "charrnn_queued_requests", lambda v: v == 1)
        st, hdrs, body = d.json("POST", "/sample", {"length": 5})
        expect_error((st, hdrs, body), 503)
        assert hdrs["retry-after"] == "3", hdrs
        b.close()
        wait_metric(d, "charrnn_queued_requests", lambda v: v == 0)
        a.close()
        wait_metric(d, "charrnn_active_requests", lambda v: v == 0)
        st, _, body = d.sample(length=5)
        assert st == 200
    finally:
        assert d.stop() == 0


@test
def generation_timeout():
    d = small_daemon("--timeout", "0.5")
    try:
        t0 = time.time()
        st, _, body = d.sample(length=10000000)
        assert st == 200 and body["finish_reason"] == "timeout", body
        assert 0 < body["usage"]["generated_chars"] < 10000000
        assert len(body["text"]) == body["usage"]["generated_chars"]
        assert time.time() - t0 < 5
        st, _, ev = d.stream({"length": 10000000})
        assert st == 200 and ev[-1]["finish_reason"] == "timeout", ev[-1]
    finally:
        assert d.stop() == 0


@test
def sigterm_drains_a_stream():
    d = small_daemon("--drain-timeout", "300")
    case = dict(length=60000, seed=3)
    want = cli_for(case)
    got = {}

    def client():
        got["r"] = d.stream(case)

    t = threading.Thread(target=client)
    t.start()
    wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log(lambda o: o.get("msg") == "draining", 5)
    # no new connections once draining
    refused = False
    try:
        st, _, _ = d.request("GET", "/healthz", timeout=2)
    except OSError:
        refused = True
    assert refused or st == 503
    t.join(60)
    st, _, ev = got["r"]
    assert st == 200 and ev[-1]["finish_reason"] == "length", ev[-1]
    assert "".join(e["text"] for e in ev) == want
    assert d.stop(timeout=30) == 0


@test
def sigterm_drain_timeout_ends_streams():
    # two workers each busy with its own batch when the drain time runs out
    d = small_daemon("--drain-timeout", "0.3", "--workers", "2", "--max-batch", "1")
    got = {}

    def client(i):
        got[i] = d.stream({"length": 10000000, "seed": i})

    ts = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    wait_metric(d, "charrnn_active_requests", lambda v: v == 2)
    d.proc.send_signal(signal.SIGTERM)
    for t in ts:
        t.join(30)
    for i in range(2):
        st, _, ev = got[i]
        assert st == 200 and "error" in ev[-1], ev[-1]
    assert d.stop(timeout=30) == 0


@test
def environment_variables_and_help():
    out = subprocess.run([SERVE, "--help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    for flag in ("--listen", "--models", "--default-model", "--admin-token", "--max-body",
                 "--max-length", "--max-prime", "--max-concurrent", "--max-queue", "--timeout",
                 "CHARRNN_LISTEN", "CHARRNN_ADMIN_TOKEN"):
        assert flag in out, flag
    bad = subprocess.run([SERVE, "--max-length", "zero"], stderr=subprocess.PIPE)
    assert bad.returncode == 2 and b"max-length" in bad.stderr
    bad = subprocess.run([SERVE, "--models", ENV.models], stderr=subprocess.PIPE, timeout=30,
                         env=dict(os.environ, CHARRNN_KERNEL="avx9"))
    assert bad.returncode == 2 and b"unknown inference kernel 'avx9'" in bad.stderr, bad.stderr
    d = Daemon(ENV.models, env={"CHARRNN_DEFAULT_MODEL": "other", "CHARRNN_MAX_LENGTH": "7",
                                "CHARRNN_ADMIN_TOKEN": "envtok"}, use_env_for_listen=True)
    try:
        st, _, body = d.sample(length=5)
        assert st == 200 and body["model"] == "other", body
        expect_error(d.sample(length=8), 400, "length")
        st, _, _ = d.json("POST", "/models/other/reload",
                          headers={"Authorization": "Bearer envtok"})
        assert st == 200
    finally:
        assert d.stop() == 0


def run_tests(tests, only, setup, teardown):
    """Runs setup, each of tests whose name contains one of only (all when only
    is empty), then teardown; fails the run for a failed test, a daemon left
    running or a sanitizer report on any daemon's stderr. Returns the exit code."""
    setup()
    failed = []
    try:
        for fn in tests:
            if only and not any(s in fn.__name__ for s in only):
                continue
            t0 = time.time()
            try:
                fn()
                print("ok   %-45s %.2fs" % (fn.__name__, time.time() - t0), flush=True)
            except Exception:
                failed.append(fn.__name__)
                print("FAIL %s\n%s" % (fn.__name__, traceback.format_exc()), flush=True)
    finally:
        try:
            teardown()
        except Exception:
            failed.append("teardown")
            traceback.print_exc()
        for d in DAEMONS:
            if d.proc.poll() is None:
                failed.append("daemon-left-running")
                d.proc.kill()
                d.proc.wait()
            # sanitizer builds: a report on the daemon's stderr fails the run
            reports = [l for l in d.logs() if "runtime error:" in l or "Sanitizer" in l]
            if reports:
                failed.append("sanitizer-report")
                print("".join(d.logs()[-80:]), flush=True)
    print("%d failed: %s" % (len(failed), " ".join(failed)) if failed else "all passed")
    return 1 if failed else 0


def main():
    return run_tests(TESTS, ONLY, setup, teardown)


if __name__ == "__main__":
    sys.exit(main())

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

import base64
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
from checks import check  # noqa: E402,F401 (the other runners import it from here)
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
    check(out.startswith(pb), "charrnn-sample did not print the prime first")
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

    def request(self, method, path, body=None, headers=None, timeout=60, source=None):
        return http_request(self.port, method, path, body, headers, timeout, source)

    def json(self, method, path, body=None, headers=None, timeout=60, source=None):
        status, hdrs, data = self.request(method, path, body, headers, timeout, source)
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
        check(status == 200, 'status == 200')
        return parse_prometheus(data.decode()), hdrs


def parse_sse(raw):
    events = []
    check(raw.endswith("\n\n"), "event stream does not end with a blank line")
    for block in raw.split("\n\n")[:-1]:
        data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
        if not data:
            check(all(ln.startswith(":") for ln in block.split("\n")), block)
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
    check(text.endswith("\n"), 'text.endswith("\\n")')
    for ln in text.split("\n")[:-1]:
        if ln.startswith("# HELP "):
            name = ln.split(" ")[2]
            check(METRIC_NAME.match(name), ln)
            continue
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ")
            check(typ in ("counter", "gauge", "histogram", "summary", "untyped"), ln)
            check(name not in families, "TYPE twice: " + name)
            families[name] = {"type": typ, "samples": []}
            continue
        check(not ln.startswith("#") and ln.strip(), "bad line: %r" % ln)
        m = SAMPLE_LINE.match(ln)
        check(m, "bad sample line: %r" % ln)
        sname, labels_s, value = m.group(1), m.group(3), m.group(4)
        labels = {}
        pos = 0
        while labels_s and pos < len(labels_s):
            lm = LABEL.match(labels_s, pos)
            check(lm, "bad labels: %r" % ln)
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        v = float(value)  # accepts NaN, +Inf
        fam = sname
        for suffix in ("_bucket", "_sum", "_count"):
            if sname.endswith(suffix) and sname[:-len(suffix)] in families and \
                    families[sname[:-len(suffix)]]["type"] == "histogram":
                fam = sname[:-len(suffix)]
        check(fam in families, "sample before its TYPE: " + ln)
        families[fam]["samples"].append((sname, labels, v))
    for name, fam in families.items():
        if fam["type"] == "counter":
            check(name.endswith("_total"), name)
            check(all(v >= 0 for _, _, v in fam["samples"]), name)
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
                check(vals == sorted(vals), "buckets not cumulative: %s" % (key,))
                check(s["b"][-1][0] == "+Inf" and s["b"][-1][1] == s["count"], key)
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
        check(rc == 0, "daemon exit status %d; last stderr lines:\n%s" % (
            rc, "".join(ENV.d.logs()[-60:])))
    shutil.rmtree(ENV.dir, ignore_errors=True)


# ---------------------------------------------------------------- tests

def registry():
    """A runner's tests, in the order they are defined, and the decorator
    (@test) that adds one; run_tests runs them."""
    tests = []

    def test(fn):
        tests.append(fn)
        return fn

    return tests, test


TESTS, test = registry()


@test
def health_and_readiness():
    st, hdrs, body = ENV.d.json("GET", "/healthz")
    check(st == 200 and body == {"status": "ok"}, body)
    st, _, body = ENV.d.json("GET", "/readyz")
    check(st == 200 and body["status"] == "ready" and body["models_loaded"] == 2, body)
    st, _, data = ENV.d.request("HEAD", "/healthz")
    check(st == 200 and data == b"", 'st == 200 and data == b""')


@test
def playground_page():
    st, hdrs, data = ENV.d.request("GET", "/")
    check(st == 200, st)
    check(hdrs["content-type"].startswith("text/html"), hdrs)
    check(b"charrnn playground" in data and b'"/sample"' in data, data[:200])
    st, _, _ = ENV.d.request("POST", "/")
    check(st == 405, st)


@test
def readyz_without_models():
    empty = os.path.join(ENV.dir, "empty")
    os.makedirs(empty, exist_ok=True)
    d = Daemon(empty)
    try:
        st, _, body = d.json("GET", "/readyz")
        check(st == 503 and body["status"] == "not_ready", body)
        st, _, body = d.json("GET", "/healthz")
        check(st == 200, 'st == 200')
        expect_error(d.sample(prime="a"), 400, "model")
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


@test
def models_list_and_get():
    st, _, body = ENV.d.json("GET", "/models")
    check(st == 200 and body["default_model"] == "tiny", body)
    names = [m["name"] for m in body["models"]]
    check(names == ["other", "tiny"], names)
    tiny = body["models"][1]
    for k in ("version", "cell", "num_layers", "hidden_size", "vocab_size", "num_params",
              "val_loss", "loaded_at", "sha256", "status", "loads", "load_failures"):
        check(k in tiny, k)
    check(tiny["status"] == "ready" and tiny["cell"] == "lstm" and tiny["hidden_size"] == 32,
          'tiny["status"] == "ready" and tiny["cell"] == "lstm" and ...')
    check(tiny["num_layers"] == 2 and tiny["default"] is True,
          'tiny["num_layers"] == 2 and tiny["default"] is True')
    check(isinstance(tiny["val_loss"], float), 'isinstance(tiny["val_loss"], float)')
    check(body["models"][0]["cell"] == "gru", 'body["models"][0]["cell"] == "gru"')
    st, _, one = ENV.d.json("GET", "/models/tiny")
    check(st == 200 and one["name"] == "tiny" and one["sha256"] == tiny["sha256"],
          'st == 200 and one["name"] == "tiny" and one["sha256"] == ...')
    expect_error(ENV.d.json("GET", "/models/nope"), 404, "model")
    expect_error(ENV.d.json("GET", "/models/.hidden"), 404)


@test
def sample_basic_fields():
    st, hdrs, body = ENV.d.sample(prime="the ", length=50, seed=7, temperature=0.7)
    check(st == 200, body)
    check(hdrs["content-type"].startswith("application/json"),
          'hdrs["content-type"].startswith("application/json")')
    check(set(body) == {"model", "model_version", "text", "seed", "finish_reason", "usage",
                        "timing"}, body)
    check(body["model"] == "tiny" and body["seed"] == 7 and body["finish_reason"] == "length",
          'body["model"] == "tiny" and body["seed"] == 7 and body["f...')
    u = body["usage"]
    check(len(body["text"]) == 50 and set(u) == {"prime_chars", "cached_chars", "generated_chars"},
          'len(body["text"]) == 50 and set(u) == {"prime_chars", "ca...')
    # cached_chars: how many of the prime's came from the prefix-state cache
    check(u["prime_chars"] == 4 and u["generated_chars"] == 50 and 0 <= u["cached_chars"] <= 4,
          'u["prime_chars"] == 4 and u["generated_chars"] == 50 and ...')
    for k in ("queue_ms", "generation_ms", "total_ms"):
        check(body["timing"][k] >= 0, 'body["timing"][k] >= 0')
    # the other model by name
    st, _, b2 = ENV.d.sample(model="other", length=10, seed=7)
    check(st == 200 and b2["model"] == "other" and len(b2["text"]) == 10,
          'st == 200 and b2["model"] == "other" and len(b2["text"]) ...')


@test
def sample_defaults_and_random_seed():
    st, _, a = ENV.d.sample()
    check(st == 200 and len(a["text"]) == 200 and a["usage"]["prime_chars"] == 0,
          'st == 200 and len(a["text"]) == 200 and a["usage"]["prime...')
    check(isinstance(a["seed"], int) and 0 <= a["seed"] < 2 ** 64,
          'isinstance(a["seed"], int) and 0 <= a["seed"] < 2 ** 64')
    st, _, b = ENV.d.sample(seed=a["seed"])
    check(b["text"] == a["text"], "the echoed seed does not reproduce the text")
    # null means default
    st, _, c = ENV.d.sample(seed=a["seed"], prime=None, length=None, stop=None, top_k=None)
    check(st == 200 and c["text"] == a["text"], 'st == 200 and c["text"] == a["text"]')


@test
def seed_full_uint64_range():
    big = 2 ** 64 - 1
    st, _, body = ENV.d.request("POST", "/sample", '{"seed": %d, "length": 30}' % big,
                                {"Content-Type": "application/json"})
    body = json.loads(body)
    check(st == 200 and body["seed"] == big, body)
    check(body["text"] == cli_sample(ENV.v1, length=30, seed=big),
          'body["text"] == cli_sample(ENV.v1, length=30, seed=big)')
    st, _, b2 = ENV.d.sample(seed=str(big), length=30)
    check(st == 200 and b2["text"] == body["text"], "seed as a decimal string")


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
        check(st == 200, body)
        check(body["text"] == want, "server %r != cli %r for %r" % (body["text"], want, case))
        if case.get("stop"):
            check(body["finish_reason"] == "stop" and any(
                body["text"].endswith(s) for s in case["stop"]), body)


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
def sample_best_of():
    """best_of on /sample: candidate j is the text of seed + j; the response is
    the candidate with the highest mean log-probability per character (ties:
    the lower j), computed here from each candidate asked for alone."""
    d = ENV.d
    req = {"prime": "the ", "length": 60, "temperature": 1.5, "seed": 40}
    alone = []
    for j in range(5):
        st, _, b = d.sample(**dict(req, seed=40 + j, logprobs=0))
        check(st == 200, b)
        lps = [r["logprob"] for r in b["logprobs"] if r["logprob"] is not None]
        alone.append((sum(lps) / len(lps), b["text"]))
    best = max(range(5), key=lambda j: (alone[j][0], -j))
    check(best != 0, "candidate 0 wins for this seed: the test would not see ranking")
    st, hdr, b = d.sample(**dict(req, best_of=5))
    check(st == 200, b)
    check(b["text"] == alone[best][1], "best_of chose %r, want candidate %d %r"
          % (b["text"], best, alone[best][1]))
    check(b["best_of"]["chosen"] == best and b["best_of"]["candidates"] == 5, b["best_of"])
    check(b["best_of"]["seed"] == 40 + best and b["seed"] == 40, b)
    check(abs(b["best_of"]["mean_logprob"] - alone[best][0]) < 1e-6, (b["best_of"], alone[best]))
    check("logprobs" not in b, "records not asked for were returned")
    check(b["usage"]["candidate_chars"] == 5 * 60 and b["usage"]["generated_chars"] == 60,
          b["usage"])
    st, _, b1 = d.sample(**dict(req, best_of=1))
    check(st == 200 and b1["text"] == alone[0][1] and "best_of" not in b1, b1)
    st, _, b2 = d.sample(**dict(req, best_of=3, logprobs=2))
    check(st == 200 and len(b2["logprobs"]) == 60 and len(b2["logprobs"][0]["top"]) == 2, b2)
    J = {"Content-Type": "application/json"}
    for body in ['{"best_of": 0}', '{"best_of": 17}', '{"best_of": 2.5}', '{"best_of": "2"}',
                 '{"best_of": 2, "stream": true}']:
        expect_error(d.json("POST", "/sample", body, J), 400, "best_of")


@test
def regex_constraint():
    """regex: the text full-matches (a tight pattern gives exactly its shape and
    stops), charrnn-sample --regex gives the same text; a pattern that does not
    compile, is too large or cannot be satisfied is a 400 naming regex."""
    d = ENV.d
    J = {"Content-Type": "application/json"}
    shape = re.compile(r"(the|fox) [a-z]{3,5}\.\n")
    for seed in range(1, 9):
        case = dict(prime="the ", length=100, seed=seed, regex=r"(the|fox) [a-z]{3,5}\.\n")
        st, _, body = d.sample(**case)
        check(st == 200, body)
        check(shape.fullmatch(body["text"]) and body["finish_reason"] == "stop", body)
        out = subprocess.run([SAMPLE, "--checkpoint", ENV.v1, "--length", "100", "--seed",
                              str(seed), "--prime", "the ", "--regex", case["regex"]],
                             check=True, stdout=subprocess.PIPE).stdout.decode()
        check(out == "the " + body["text"], (out, body["text"]))
    # a long pattern that may go on: stopped by length, still a prefix of a match
    st, _, body = d.sample(prime="", length=40, seed=3, regex="[a-z ]*\\.")
    check(st == 200 and body["finish_reason"] == "length", body)
    check(re.fullmatch("[a-z ]{40}", body["text"]), body)
    for pattern, msg in [("(the", r"does not compile: at byte 0"), ("a{1001}", r"too large"),
                         ("([a-z]{100}){50}", r"more than 4096 automaton states"),
                         ("%+", r"cannot be satisfied"), ("", r"out of range 1\.\.1024"),
                         ("x" * 1025, r"out of range")]:
        expect_error(d.json("POST", "/sample", json.dumps({"regex": pattern}), J), 400, "regex",
                     msg)
    expect_error(d.json("POST", "/sample", '{"regex": 5}', J), 400, "regex")
    st, _, body = d.json("POST", "/v1/completions",
                         json.dumps({"prompt": "the", "regex": "(", "max_tokens": 5}), J)
    check(st == 400 and body["error"]["param"] == "regex" and
          "does not compile" in body["error"]["message"], body)
    st, _, body = d.json("POST", "/v1/completions",
                         json.dumps({"prompt": "the ", "guided_regex": "[a-z]{4}\\.",
                                     "max_tokens": 50, "seed": 2, "n": 2, "best_of": 3}), J)
    check(st == 200, body)
    for c in body["choices"]:
        check(re.fullmatch(r"[a-z]{4}\.", c["text"]) and c["finish_reason"] == "stop", c)


@test
def same_text_as_cli_16_concurrent():
    cases = [dict(c, seed=c["seed"] + 1000 * i) for i in range(2) for c in CASES]
    want = [cli_for(c) for c in cases]
    for i, text in enumerate(concurrent_texts(ENV.d, cases)):
        check(text == want[i], "client %d: %r != %r" % (i, text, want[i]))
    fams, _ = ENV.d.metrics()
    steps = metric(fams, "charrnn_inference_steps_total")
    streams = metric(fams, "charrnn_inference_stream_steps_total")
    check(streams > steps > 0, "no step advanced more than one stream")


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
        check(st == 200, "client %d: status %d" % (i, st))
    return [text for _, text in results]


@test
def batch_invariance_32_concurrent():
    """A request's text does not depend on what it is batched with: 32
    concurrent requests to an LSTM (+8 to a GRU, batched apart) give the texts
    each gives alone and from charrnn-sample, on a daemon with the default
    workers (batches spread over them) and on one worker with --max-batch 32,
    where 32 running requests are shown to step as one batch, across the
    library's tile of 16 (one_batch_of). The LSTM is 2x192 so that generations
    overlap."""
    mdir = os.path.join(ENV.dir, "models-bi")
    if not os.path.isdir(mdir):
        os.mkdir(mdir)
        shutil.copyfile(wide_model(), os.path.join(mdir, "wide.safetensors"))
        shutil.copyfile(ENV.v2, os.path.join(mdir, "other.safetensors"))
    ckpt = {"wide": os.path.join(mdir, "wide.safetensors"), "other": ENV.v2}
    cases = batch_invariance_cases()
    want = [cli_for(c, ckpt[c.get("model", "wide")]) for c in cases]
    for workers in ("0", "1"):
        # 40 clients on one address: no client share, so that all run at once
        flags = ["--default-model", "wide", "--max-length", "5000", "--max-batch", "32",
                 "--max-client-share", "0"]
        if workers != "0":
            flags += ["--workers", workers]
        d = Daemon(mdir, *flags)
        try:
            if workers == "0":
                for i, c in enumerate(cases):
                    st, _, body = d.sample(**c)
                    check(st == 200 and body["text"] == want[i], "alone %d: %r != cli %r" % (
                        i, body.get("text"), want[i]))
            fams, _ = d.metrics()
            steps0 = metric(fams, "charrnn_inference_steps_total") or 0
            streams0 = metric(fams, "charrnn_inference_stream_steps_total") or 0
            n = len(cases) if workers == "0" else 32  # one worker: the LSTM alone
            got = concurrent_texts(d, cases[:n])
            for i, text in enumerate(got):
                check(text == want[i], "workers %s, client %d: %r != %r" % (
                    workers, i, text, want[i]))
            fams, _ = d.metrics()
            steps = metric(fams, "charrnn_inference_steps_total") - steps0
            streams = metric(fams, "charrnn_inference_stream_steps_total") - streams0
            print("     workers %s: mean batch %.1f" % (
                workers if workers != "0" else "default", streams / steps))
            if workers == "1":
                one_batch_of(d, 32)
        finally:
            check(d.stop() == 0, 'd.stop() == 0')


def one_batch_of(d, n):
    """n long streams of one model on a one-worker daemon step as one batch: in
    a window where all n are active (the gauge, at both ends: none can come
    back), the counters advance by n streams a step, less one step of skew
    between the two counters of a scrape, so the batch crosses the library's
    tile of 16. Observed state, not a mean over a run that depends on timing."""
    socks = [start_raw_sample(d.port, {"length": 5000, "seed": i, "stream": True})
             for i in range(n)]
    try:
        wait_metric(d, "charrnn_active_requests", lambda v: v == n, 60)
        fams, _ = d.metrics()
        steps0 = metric(fams, "charrnn_inference_steps_total")
        streams0 = metric(fams, "charrnn_inference_stream_steps_total")
        wait_metric(d, "charrnn_inference_steps_total", lambda v: v >= steps0 + 20, 60)
        fams, _ = d.metrics()
        check(metric(fams, "charrnn_active_requests") == n,
              "a request ended within the window: make them longer")
        steps = metric(fams, "charrnn_inference_steps_total") - steps0
        streams = metric(fams, "charrnn_inference_stream_steps_total") - streams0
        check(streams > 16 * steps, "%d streams in %d steps: the %d requests did not step as "
              "one batch" % (streams, steps, n))
    finally:
        for s in socks:
            s.close()
    wait_metric(d, "charrnn_active_requests", lambda v: v == 0, 60)


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
        check(st == 200, body)
        dtypes = {m["name"]: m["dtype"] for m in body["models"]}
        check(dtypes == {"wide-bf16": "bf16", "wide-int8": "int8"}, dtypes)
        fams, _ = d.metrics()
        check(metric(fams, "charrnn_model_info", model="wide-int8", dtype="int8") == 1,
              'metric(fams, "charrnn_model_info", model="wide-int8", dty...')
        split0 = metric(fams, "charrnn_inference_split_steps_total")
        for dt in ("bf16", "int8"):
            name = "wide-" + dt
            want = [cli_for(c, os.path.join(mdir, name + ".safetensors")) for c in cases]
            for i, c in enumerate(cases[:4]):
                st, _, body = d.sample(model=name, **c)
                check(st == 200 and body["text"] == want[i], "%s alone %d: %r != cli %r" % (
                    name, i, body.get("text"), want[i]))
            got = concurrent_texts(d, [dict(c, model=name) for c in cases])
            for i, text in enumerate(got):
                check(text == want[i], "%s client %d: %r != %r" % (name, i, text, want[i]))
        fams, _ = d.metrics()
        split = metric(fams, "charrnn_inference_split_steps_total") - split0
        check(split > 0, "no step had its rows split across the two workers")
        print("     steps with split rows: %d" % split)
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


@test
def streaming():
    case = dict(prime="the ", length=300, seed=99, temperature=0.9)
    st, hdrs, events = ENV.d.stream(case)
    check(st == 200 and hdrs["content-type"].startswith("text/event-stream"), hdrs)
    check(len(events) >= 2, 'len(events) >= 2')
    for e in events[:-1]:
        check(set(e) == {"text"} and e["text"], e)
    last = events[-1]
    check(last["finish_reason"] == "length" and last["usage"]["generated_chars"] == 300, last)
    check(last["seed"] == 99 and last["model"] == "tiny" and "model_version" in last,
          'last["seed"] == 99 and last["model"] == "tiny" and "model...')
    text = "".join(e["text"] for e in events)
    check(text == cli_for(case), 'text == cli_for(case)')
    # stop in a stream
    st, _, events = ENV.d.stream(dict(prime="the", length=400, seed=7, stop=["dogs", "."]))
    check(events[-1]["finish_reason"] == "stop", 'events[-1]["finish_reason"] == "stop"')
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
        check(st == 200 and ok["text"] == greedy, (tiny, ok))
    check((cli_sample(ENV.v1, prime="the ", length=40, seed=9, top_p=1e-300) ==
           cli_sample(ENV.v1, prime="the ", length=40, temperature=0)),
          '(cli_sample(ENV.v1, prime="the ", length=40, seed=9, top_...')
    for k, v in out_of_range:
        expect_error(d.json("POST", "/sample", '{"%s": %s}' % (k, json.dumps(v)), J), 400, k)
    expect_error(d.sample(model="nope"), 404, "model", "not found")
    expect_error(d.sample(model="../etc/passwd"), 400, "model")
    err = expect_error(d.sample(prime="Zebra€"), 400, "prime")
    check("Z" in err["message"] or "€" in err["message"], err
 )
    expect_error(d.sample(prime="x" * 101), 400, "prime", "limit")
    expect_error(d.json("POST", "/sample", '{"prime": "a\\u0000b"}', J), 400, "prime", "U\\+0000")
    expect_error(d.json("POST", "/sample", '{"stop": ["\\u0000"]}', J), 400, "stop")
    st, _, ok = d.json("POST", "/sample", '{"prime": "\\\\u0000", "length": 1}', J)
    check(st == 400 and ok["error"]["param"] == "prime" and "U+0000" not in ok["error"]["message"],
          'st == 400 and ok["error"]["param"] == "prime" and "U+0000...')
    # whitespace is what cJSON skips (every byte up to 0x20), so the scanner
    # that looks for \u0000 and reads the seed sees the same members
    for ws in ("\f", "\v", "\x01", "\x1f"):
        expect_error(d.json("POST", "/sample", '{%s"prime": "ab\\u0000cd"}' % ws, J), 400,
                     "prime", "U\\+0000")
        st, _, ok = d.json("POST", "/sample", '{%s"seed"%s:%s5%s, "length": 3}' % ((ws,) * 4), J)
        check(st == 200 and ok["seed"] == 5, (ws, ok))
    expect_error(d.json("POST", "/sample", '\ufeff{"prime": "a\\u0000b"}'.encode(), J), 400,
                 "prime", "U\\+0000")
    # body too large: by Content-Length and by chunked upload
    expect_error(d.json("POST", "/sample", json.dumps({"prime": "a" * 5000}), J), 413)
    raw = raw_http(d.port, b"POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
                   b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                   b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(5)) +
                   b"0\r\n\r\n", 5)
    check(raw.startswith(b"HTTP/1.1 413"), raw[:100])
    # wrong method, unknown path, content type
    for method, path, allow in [("GET", "/sample", "POST"), ("DELETE", "/models", "GET, HEAD"),
                                ("POST", "/models/tiny", "GET, HEAD"),
                                ("GET", "/models/tiny/reload", "POST")]:
        st, hdrs, body = d.json(method, path)
        expect_error((st, hdrs, body), 405)
        check(hdrs["allow"] == allow, (method, path, hdrs))
    expect_error(d.json("GET", "/nope"), 404)
    expect_error(d.json("GET", "/models/tiny/other"), 404)
    # {name} is one non-empty segment, and the path must end where the pattern does
    for path in ("/models/", "/models/tiny/", "/models/tiny/reload/", "/models//reload",
                 "/sample/", "//sample", "/models/" + "a" * 200):
        st, hdrs, body = d.json("GET", path)
        expect_error((st, hdrs, body), 404)
        check("allow" not in hdrs, (path, hdrs))
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
    check(st == 200 and len(ok["text"]) == 5, ok)
    st, _, ok = d.json("POST", "/sample", '{"length": 5}',
                       {"Content-Type": "application/json; charset=utf-8"})
    check(st == 200, ok)


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
        check(raw.startswith(b"HTTP/1.1 400"), (i, raw[:300]))
        check(raw.count(b"HTTP/1.1 ") == 1, (i, raw))  # closed: the hidden request never ran
        check(b"Transfer-Encoding" in raw or b"Content-Length" in raw, (i, raw))
    # plain chunked and plain Content-Length keep working, pipelined too
    hidden = hidden.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    raw = raw_http(d.port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + hidden, 5)
    check(raw.startswith(b"HTTP/1.1 200") and raw.count(b"HTTP/1.1 200") == 2, raw[:300])
    raw = raw_http(d.port, head + b"Content-Length: %d\r\n\r\n" % len(body) + body + hidden, 5)
    check(raw.startswith(b"HTTP/1.1 200") and raw.count(b"HTTP/1.1 200") == 2, raw[:300])


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
        check("evil.example" in err["message"] and "--cors-origin" in err["message"], err)
    expect_error(d.json("GET", "/models", headers={"Origin": "null"}), 403)
    st, hdrs, ok = d.json("POST", "/sample", body, dict(J, Origin=own))  # the playground page
    check(st == 200 and "access-control-allow-origin" not in hdrs, (st, ok))
    expect_error(d.json("POST", "/sample", body, dict(F, Origin=own)), 415)
    st, _, ok = d.json("POST", "/sample", body, F)  # curl -d: no Origin
    check(st == 200, ok)
    for host in ("evil.example", "evil.example:%d" % d.port, "127.0.0.1.evil.example"):
        err = expect_error(d.json("GET", "/healthz", headers={"Host": host}), 403)
        check("loopback" in err["message"], err)
    for host in ("localhost:%d" % d.port, "LOCALHOST", "app.localhost", "127.0.0.2",
                 "[::1]:%d" % d.port):
        st, _, _ = d.json("GET", "/healthz", headers={"Host": host})
        check(st == 200, host)
    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    st, _, _ = d.request("OPTIONS", "/sample", headers=pre)
    check(st == 403, st)

    app = "https://app.example"
    a = Daemon(ENV.models, "--default-model", "tiny", "--poll-interval", "0",
               "--cors-origin", app, "--cors-origin", "http://localhost:3000")
    b = Daemon(ENV.models, "--default-model", "tiny", "--poll-interval", "0",
               env={"CHARRNN_CORS_ORIGIN": "https://one.example, https://two.example"})
    try:
        st, hdrs, _ = a.request("OPTIONS", "/sample", headers=dict(pre, Origin=app))
        check(st == 204, st)
        check(hdrs["access-control-allow-origin"] == app, hdrs)
        check(hdrs["access-control-allow-methods"] == "POST", hdrs)
        check("content-type" in hdrs["access-control-allow-headers"].lower(), hdrs)
        check("origin" in hdrs["vary"].lower(), hdrs)
        st, hdrs, ok = a.json("POST", "/sample", body, dict(J, Origin=app))
        check(st == 200 and hdrs["access-control-allow-origin"] == app, (st, hdrs, ok))
        st, hdrs, _ = a.json("GET", "/models", headers={"Origin": "http://localhost:3000"})
        check(st == 200 and hdrs["access-control-allow-origin"] == "http://localhost:3000",
              'st == 200 and hdrs["access-control-allow-origin"] == "htt...')
        expect_error(a.json("POST", "/sample", body, dict(J, Origin="https://other.example")),
                     403)
        st, _, _ = a.request("OPTIONS", "/sample",
                             headers=dict(pre, Origin="https://other.example"))
        check(st == 403, 'st == 403')
        for o in ("https://one.example", "https://two.example"):
            st, hdrs, _ = b.json("POST", "/sample", body, dict(J, Origin=o))
            check(st == 200 and hdrs["access-control-allow-origin"] == o, (o, hdrs))
    finally:
        a.stop()
        b.stop()
    bad = subprocess.run([SERVE, "--cors-origin", "https://x.example/path"],
                         stderr=subprocess.PIPE, timeout=10)
    check(bad.returncode == 2 and b"not an origin" in bad.stderr, bad)


@test
def metrics_exposition():
    ENV.d.sample(length=10, seed=1)
    ENV.d.sample(length=0)
    ENV.d.request("GET", "/sample")
    ENV.d.request("GET", "/models/tiny")
    ENV.d.request("GET", "/no/such/path")
    fams, hdrs = ENV.d.metrics()
    check(hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs)
    for name, typ in [("charrnn_requests_total", "counter"),
                      ("charrnn_request_duration_seconds", "histogram"),
                      ("charrnn_generated_chars_total", "counter"),
                      ("charrnn_active_requests", "gauge"),
                      ("charrnn_queued_requests", "gauge"),
                      ("charrnn_model_loads_total", "counter"),
                      ("charrnn_model_load_failures_total", "counter"),
                      ("charrnn_model_info", "gauge")]:
        check(fams[name]["type"] == typ, name)
    check(metric(fams, "charrnn_requests_total", route="/sample", status="200") >= 1,
          'metric(fams, "charrnn_requests_total", route="/sample", s...')
    check(metric(fams, "charrnn_requests_total", route="/sample", status="400") >= 1,
          'metric(fams, "charrnn_requests_total", route="/sample", s...')
    check(metric(fams, "charrnn_request_duration_seconds_count", route="/sample") >= 2,
          'metric(fams, "charrnn_request_duration_seconds_count", ro...')
    # the route label is the table's pattern, also for a wrong method; "other" for no route
    check(metric(fams, "charrnn_requests_total", route="/sample", status="405") >= 1,
          'metric(fams, "charrnn_requests_total", route="/sample", s...')
    check(metric(fams, "charrnn_requests_total", route="/models/{name}", status="200") >= 1,
          'metric(fams, "charrnn_requests_total", route="/models/{na...')
    check(metric(fams, "charrnn_requests_total", route="other", status="404") >= 1,
          'metric(fams, "charrnn_requests_total", route="other", sta...')
    routes = {lab["route"] for _, lab, _ in fams["charrnn_requests_total"]["samples"]}
    check(not any("tiny" in r or "no/such" in r for r in routes), routes)
    check(metric(fams, "charrnn_generated_chars_total") >= 10,
          'metric(fams, "charrnn_generated_chars_total") >= 10')
    check(metric(fams, "charrnn_active_requests") == 0,
          'metric(fams, "charrnn_active_requests") == 0')
    check(metric(fams, "charrnn_model_info", model="tiny", cell="lstm") == 1,
          'metric(fams, "charrnn_model_info", model="tiny", cell="ls...')
    check(metric(fams, "charrnn_model_loads_total", model="tiny") >= 1,
          'metric(fams, "charrnn_model_loads_total", model="tiny") >= 1')


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
    check(body["model_version"] == after["version"], 'body["model_version"] == after["version"]')


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
        check(st == 200, body)
        err = expect_error(wide.json("POST", "/models/tiny/reload"), 403)
        check("--admin-token" in err["message"], err)
        expect_error(wide_tok.json("POST", "/models/tiny/reload"), 401)
        st, _, body = wide_tok.json("POST", "/models/tiny/reload",
                                    headers={"Authorization": "Bearer " + TOKEN})
        check(st == 200, body)
        st, _, _ = wide.json("GET", "/models/tiny")  # the rest stays open
        check(st == 200, 'st == 200')
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
            check(st == 200, out)
        fams, _ = d.metrics()
        live = metric(fams, "charrnn_model_versions_live")
        loaded = metric(fams, "charrnn_models_loaded")
        check(live == loaded, (live, loaded))
        check(s.recv(1, socket.MSG_DONTWAIT),
              's.recv(1, socket.MSG_DONTWAIT)')  # the response is still being sent
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

    def answered():
        with lock:
            return len(results)

    ts = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    # each step waits for what it needs to have happened, not for a time
    wait_until(lambda: answered() >= 8, 60, "no answers before the reload")
    mark = len(d.logs())
    replace_atomically(ENV.v2, path)  # noticed by the poller
    d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "tiny" and
               o.get("version") > m0["version"], 30, mark)
    n = answered()
    st, _, r = d.json("POST", "/models/tiny/reload",
                      headers={"Authorization": "Bearer " + TOKEN})
    check(st == 200, r)
    # 16 more: at most 8 (one a client) started before the swap
    wait_until(lambda: answered() >= n + 16, 60, "no answers after the reload")
    stop.set()
    for t in ts:
        t.join()
    _, _, m1 = d.json("GET", "/models/tiny")
    check(m1["version"] > m0["version"] and m1["cell"] == "gru", m1)
    versions = set()
    for st, text, ver in results:
        check(st == 200, "a request failed during reload: %r" % (st,))
        versions.add(ver)
        # each response is the exact text of the version it reports
        check(text in (want["v1"], want["v2"]), text)
        if ver == m0["version"]:
            check(text == want["v1"], 'text == want["v1"]')
        if ver >= m1["version"]:
            check(text == want["v2"], 'text == want["v2"]')
    check(len(results) >= 24 and len(versions) >= 2, (len(results), versions))
    st, _, body = d.sample(**case)
    check(body["model_version"] == m1["version"] and body["text"] == want["v2"],
          'body["model_version"] == m1["version"] and body["text"] =...')
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
    check(st == 200 and b["status"] == "unavailable" and b["last_error"]["message"], b)
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
    check(st == 200 and body["text"] == want and body["model_version"] == before["version"],
          'st == 200 and body["text"] == want and body["model_versio...')
    _, _, t = d.json("GET", "/models/tiny")
    check(t["status"] == "ready" and t["version"] == before["version"] and t["last_error"], t)
    fams, _ = d.metrics()
    check(metric(fams, "charrnn_model_load_failures_total", model="tiny") >= 1,
          'metric(fams, "charrnn_model_load_failures_total", model="...')
    check(metric(fams, "charrnn_model_last_load_failed", model="tiny") == 1,
          'metric(fams, "charrnn_model_last_load_failed", model="tin...')
    st, _, _ = d.json("GET", "/readyz")
    check(st == 200, 'st == 200')
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
def hostile_checkpoints_refused():
    """Files whoever writes the models directory could craft (tests/cli/st_tool.py):
    metadata asking for 3.2 GB of parameters in a 268-byte file, finite decoder
    weights whose logits overflow (NaN log-probabilities), a NUL in the vocabulary.
    Each is a load failure naming what is wrong, and the first one does not grow
    the daemon's peak RSS (it allocated and zero-filled 3.2 GB before failing)."""
    d = ENV.d
    st_tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "st_tool.py")

    def peak_kb():
        with open("/proc/%d/status" % d.proc.pid) as f:
            return int(next(ln for ln in f if ln.startswith("VmHWM:")).split()[1])

    cases = [("hostile", ["hostile"], "tensor 'rnn.weight_ih_l0' is missing"),
             ("overflow", ["tiny", '["a", "b"]', "3e38"],
              "row 0 of tensor 'decoder.weight' and its bias can reach a logit of 3e+38"),
             ("nulvocab", ["tiny", '["\\u0000", "a"]'], "vocab entry 0 is U+0000 (NUL)")]
    before = peak_kb()
    for name, args, want in cases:
        tmp = os.path.join(ENV.dir, name + ".safetensors")
        subprocess.run([sys.executable, st_tool, args[0], tmp] + args[1:], check=True)
        mark = len(d.logs())
        os.replace(tmp, os.path.join(ENV.models, name + ".safetensors"))
        d.wait_log(lambda o: o.get("msg") == "model load failed" and o.get("model") == name, 10,
                   mark)
        st, _, b = d.json("GET", "/models/" + name)
        check(st == 200 and b["status"] == "unavailable", b)
        check(want in b["last_error"]["message"], (want, b["last_error"]))
        expect_error(d.sample(model=name), 404, "model")
        if name == "hostile":
            grew = peak_kb() - before
            check(grew < 64 * 1024, "loading the 268-byte file grew the peak RSS by %d kB" % grew)
    for name, _, _ in cases:
        mark = len(d.logs())
        os.unlink(os.path.join(ENV.models, name + ".safetensors"))
        d.wait_log(lambda o: o.get("msg") == "model removed" and o.get("model") == name, 10,
                   mark)


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
        check("outside" in s["last_error"]["message"], s)
        # anonymous clients see names relative to the models directory only:
        # not the symlink's target, not where the directory is
        check(ENV.dir not in json.dumps(s), s)
        err = expect_error(ENV.d.sample(model="sneaky"), 404, "model")
        check(ENV.dir not in err["message"], err)
        st, _, body = ENV.d.sample(model="alias", length=5)
        check(st == 200, body)
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
        check(models not in json.dumps(body), body)
        got = {m["name"]: m for m in body["models"]}
        check(got["real"]["status"] == "ready", got)
        check("fifo" in got and got["fifo"]["status"] == "unavailable", got)
        mark = len(d.logs())
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "real", 10, mark)
        st, _, _ = d.json("GET", "/healthz", timeout=5)
        check(st == 200, 'st == 200')
        t0 = time.time()
        check(d.stop(timeout=10) == 0, 'd.stop(timeout=10) == 0')
        check(time.time() - t0 < 5, 'time.time() - t0 < 5')
    finally:
        sock.close()


@test
def getrandom_failure_is_500():
    """Without a seed the daemon draws one with getrandom; when that fails
    (ENOSYS under seccomp) the request is a 500 naming 'seed' and logged, not
    an endless retry. A request with a seed is served."""
    shim = os.environ.get("CHARRNN_TEST_GETRANDOM_ENOSYS")
    check(shim, "CHARRNN_TEST_GETRANDOM_ENOSYS is not set (meson test sets it)")
    asan = os.environ.get("ASAN_OPTIONS", "")
    d = Daemon(ENV.models, "--default-model", "tiny", "--poll-interval", "0",
               env={"LD_PRELOAD": shim, "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"})
    err = expect_error(d.json("POST", "/sample", {"length": 5}, timeout=10), 500, "seed")
    check("random seed" in err["message"], err)
    d.wait_log(lambda o: o.get("msg") == "getrandom failed: no random seed", 5)
    st, _, body = d.sample(length=5, seed=1)
    check(st == 200 and body["seed"] == 1, body)
    # every request gets an X-Request-Id, random when it can be: not a spin either
    st, hdrs, _ = d.request("GET", "/healthz", timeout=10)
    check(st == 200 and hdrs.get("x-request-id"), hdrs)
    st, _, body = d.json("POST", "/v1/completions", {"prompt": "a", "max_tokens": 3}, timeout=10)
    check(st == 500 and body["error"]["param"] == "seed", body)
    st, _, body = d.json("POST", "/v1/completions", {"prompt": "a", "max_tokens": 3, "seed": 2},
                         timeout=10)
    check(st == 200, body)
    check(d.stop() == 0, 'd.stop() == 0')


@test
def invalid_utf8_in_path_is_escaped():
    """A percent-decoded path may hold any bytes: the error body and the
    access log line stay valid UTF-8, with such bytes written as \\xNN."""
    d = ENV.d
    mark = len(d.logs())
    for path, want in [(b"/%FF%C3%28", "/\\xFF\\xC3("), (b"/models/a%80b", "a\\x80b")]:
        raw = raw_http(d.port, b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 404"), raw)
        msg = json.loads(body.decode("utf-8"))["error"]["message"]  # strict UTF-8
        check(want in msg, (msg, want))
    d.wait_log(lambda o: o.get("msg") == "request" and o.get("path") == "/models/a\\x80b", 5, mark)
    check(not any("\ufffd" in line for line in d.logs()[mark:]), d.logs()[mark:])


EURO = "\u20ac".encode()  # 3 bytes


def strict_json(data, what):
    """data (bytes) as strict UTF-8 JSON: no invalid byte, no cut character."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AssertionError("%s is not UTF-8 JSON (%s): %r" % (what, e, data[:300]))


@test
def client_bytes_echo_as_utf8():
    """Invalid UTF-8 sent in field names, model, user and stop: each response
    body and each log line is strict UTF-8 JSON; client bytes are escaped as
    \\xNN and cut between characters; a stop that is not UTF-8 is a 400."""
    d = ENV.d
    mark = len(d.raw_logs())
    long_key = EURO * 20 + b"\xff"
    cases = [  # (path, body, status, param)
        ("/sample", b'{"length":3,"stop":["\xff"]}', 400, "stop"),
        ("/sample", b'{"length":3,"stop":["e\x94"]}', 400, "stop"),
        ("/v1/completions", b'{"prompt":"a","max_tokens":3,"stop":"\x94"}', 400, "stop"),
        ("/v1/completions", b'{"prompt":"a","max_tokens":3,"stop":["e","\xe2\x80"]}', 400,
         "stop"),
        ("/sample", b'{"\xff\xfeab":1}', 400, "\\xFF\\xFEab"),
        ("/v1/completions", b'{"' + long_key + b'":1}', 400, None),
        ("/sample", b'{"' + long_key + b'":1}', 400, None),
        ("/sample", b'{"model":"' + EURO * 100 + b'"}', 400, "model"),
        ("/v1/completions", b'{"prompt":"a","model":"' + EURO * 100 + b'"}', 404, "model"),
        ("/v1/completions", b'{"prompt":"a","model":"tiny\xff"}', 404, "model"),
        ("/v1/completions", b'{"prompt":"a","max_tokens":2,"user":"u\xffv' + EURO * 20 + b'"}',
         200, None),
    ]
    for path, body, status, param in cases:
        st, hdrs, data = d.request("POST", path, body, {"Content-Type": "application/json"})
        o = strict_json(data, "%s %r" % (path, body))
        check(st == status, "%s %r: status %d, expected %d: %r" % (path, body, st, status, o))
        if st == 200:
            continue
        err = o["error"]
        if param is not None:
            check(err["param"] == param, (body, err))
        # never a cut character (it would show as an escaped lead byte)
        check("\\xE2" not in err["message"] and "\\xE2" not in (err["param"] or ""), err)
    st, _, data = d.request("GET", "/models/" + "%E2%82%AC" * 100)
    strict_json(data, "GET /models/<100 x euro>")
    # a request's line is written once its response has gone: wait for all of them
    deadline = time.monotonic() + 10
    while len(d.raw_logs()[mark:]) < len(cases) + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = d.raw_logs()[mark:]
    check(len(lines) >= len(cases) + 1, lines)
    for line in lines:
        strict_json(line, "log line")


def inline_hashes(page, tag):
    """'sha256-<base64>' of each inline <tag> element's text, as a browser hashes it."""
    return ["'sha256-%s'" % base64.b64encode(hashlib.sha256(m).digest()).decode()
            for m in re.findall(b"<%s>(.*?)</%s>" % (tag, tag), page, re.S)]


@test
def security_headers():
    """nosniff and no-referrer on every response (200, 400, 404, 405, /metrics,
    a stream, the page); the page's CSP allows exactly its inline script and
    style by hash, and no framing."""
    d = ENV.d
    J = {"Content-Type": "application/json"}
    for method, path, body, status in [("GET", "/healthz", None, 200),
                                       ("POST", "/sample", b"{", 400),
                                       ("GET", "/nope", None, 404),
                                       ("DELETE", "/sample", None, 405),
                                       ("GET", "/metrics", None, 200),
                                       ("POST", "/sample", b'{"length":2,"stream":true}', 200),
                                       ("GET", "/", None, 200)]:
        st, hdrs, page = d.request(method, path, body, J if body else None)
        check(st == status, (method, path, st))
        check(hdrs.get("x-content-type-options") == "nosniff", (path, hdrs))
        check(hdrs.get("referrer-policy") == "no-referrer", (path, hdrs))
        check(("content-security-policy" in hdrs) == (path == "/"), (path, hdrs))
    csp = dict((p.strip().split(" ", 1) + [""])[:2] for p in
               hdrs["content-security-policy"].split(";"))
    check(csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'", csp)
    for tag, key in ((b"script", "script-src"), (b"style", "style-src")):
        want = inline_hashes(page, tag)
        check(want and csp[key].split() == want, (key, csp[key], want))
    check("unsafe" not in hdrs["content-security-policy"], csp)


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
        check(len(workers) == 3, threads)
        check(all(n == min(19, base + 10) for n in workers), threads)
        others = [n for name, n in threads.values() if name != "charrnn-worker"]
        check(all(n == base for n in others), threads)
    finally:
        d.stop()
    d = Daemon(ENV.models, "--workers", "2", "--poll-interval", "0", "--worker-nice", "0")
    try:
        threads = thread_nice(d.proc.pid)
        check(all(n == threads[d.proc.pid][1] for _, n in threads.values()), threads)
    finally:
        d.stop()


def open_holders(port, n, source="127.0.0.1"):
    """n connections that send half a request head and then nothing."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        s.sendall(b"GET /models HTTP/1.1\r\nHost: localhost\r\n")
        out.append(s)
    # No wait: libmicrohttpd's listening thread accepts connections in the
    # order they were made and counts each as it starts (server/conn_guard.c);
    # a test's next connection, made after these, finds them counted.
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
            check(st == 200, (path, st))
        err = expect_error(d.json("GET", "/models", timeout=5), 503)
        check("/healthz" in err["message"], err)
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
        check(read_until_closed(extra, 5) == b"",
              'read_until_closed(extra, 5) == b""')  # refused: closed without an answer
        extra.close()
        other = socket.create_connection(("127.0.0.1", d.port), timeout=5,
                                         source_address=("127.0.0.3", 0))
        other.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        other.settimeout(5)
        check(other.recv(4096).startswith(b"HTTP/1.1 200"),
              'other.recv(4096).startswith(b"HTTP/1.1 200")')
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
            if time.time() - t0 > 30:  # bounds a hang only: the cut comes at 1.5 s + a tick
                break
        # never before its 1.5 s (less the connect's own time); when after it
        # depends on the machine's load, so only the hang bound above limits it
        check(cut is not None and cut > 1.4, cut)
        st, _, _ = d.request("GET", "/healthz", timeout=5)  # whole requests are served
        check(st == 200, 'st == 200')
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
    check(d.stop(timeout=30) == 0, 'd.stop(timeout=30) == 0')
    msgs = [json.loads(l).get("msg") for l in d.logs()[mark:] if l.startswith("{")]
    failed_after = msgs[msgs.index("shutting down"):].count("model load failed")
    check(failed_after >= 1, msgs)  # the scan was still running when SIGTERM was handled


@test
def access_log_lines():
    mark = len(ENV.d.logs())
    ENV.d.sample(length=5, seed=77)
    ENV.d.json("GET", "/nope")
    o = ENV.d.wait_log(lambda o: o.get("msg") == "request" and o.get("path") == "/nope", 5, mark)
    check(o["status"] == 404 and o["method"] == "GET" and o["level"] == "info",
          'o["status"] == 404 and o["method"] == "GET" and o["level"...')
    o = ENV.d.wait_log(lambda o: o.get("msg") == "request" and o.get("seed") == 77, 5, mark)
    for k in ("ts", "status", "duration_ms", "model", "model_version", "generated_chars",
              "route", "remote"):
        check(k in o, k)
    for line in ENV.d.logs():
        json.loads(line)  # every stderr line is one JSON object


def small_daemon(*flags):
    return Daemon(ENV.models, "--default-model", "tiny", "--max-length", "10000000",
                  "--poll-interval", "0", *flags)


def wait_until(pred, timeout, what):
    """Polls pred until it is true; the deadline only bounds a hang."""
    deadline = time.monotonic() + timeout
    while not pred():
        check(time.monotonic() < deadline, what)
        time.sleep(0.02)


def wait_metric(d, name, pred, timeout=10):
    deadline = time.time() + timeout
    while True:
        fams, _ = d.metrics()
        v = metric(fams, name)
        if pred(v):
            return v
        check(time.time() < deadline, "%s stuck at %s" % (name, v))
        time.sleep(0.05)


def start_raw_sample(port, fields, path="/sample"):
    body = json.dumps(fields).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
    return s


@test
def disconnect_stops_generation():
    d = small_daemon("--max-concurrent", "4")
    try:
        for stream in (False, True):
            s = start_raw_sample(d.port, {"length": 10000000, "stream": stream})
            wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
            if stream:
                check(s.recv(100).startswith(b"HTTP/1.1 200"),
                      's.recv(100).startswith(b"HTTP/1.1 200")')
            s.close()
            wait_metric(d, "charrnn_active_requests", lambda v: v == 0, 5)
            a = wait_metric(d, "charrnn_generated_chars_total", lambda v: True)
            time.sleep(0.3)
            b = wait_metric(d, "charrnn_generated_chars_total", lambda v: True)
            check(a == b, "generation continued after the client left")
            check(a < 10000000 * (2 if stream else 1), 'a < 10000000 * (2 if stream else 1)')
        o = d.wait_log(lambda o: o.get("msg") == "request" and o.get("finish_reason") ==
                       "cancelled", 5)
        check(o["status"] in (200, 499), o)
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


@test
def queue_full_is_503_with_retry_after():
    # every request comes from 127.0.0.1: no client share, so the queue fills
    d = small_daemon("--max-concurrent", "1", "--max-queue", "1", "--retry-after", "3",
                     "--max-client-share", "0")
    try:
        a = start_raw_sample(d.port, {"length": 10000000})
        wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
        b = start_raw_sample(d.port, {"length": 10000000})
        wait_metric(d, "charrnn_queued_requests", lambda v: v == 1)
        st, hdrs, body = d.json("POST", "/sample", {"length": 5})
        expect_error((st, hdrs, body), 503)
        check(hdrs["retry-after"] == "3", hdrs)
        b.close()
        wait_metric(d, "charrnn_queued_requests", lambda v: v == 0)
        a.close()
        wait_metric(d, "charrnn_active_requests", lambda v: v == 0)
        st, _, body = d.sample(length=5)
        check(st == 200, 'st == 200')
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


def v1_error_of(resp, status):
    """The error object of a /v1 answer of the given status."""
    st, _, body = resp
    check(st == status, "status %d, expected %d: %r" % (st, status, body))
    return body["error"]


def share_refused(resp):
    """The 429 of a client over its share: OpenAI's rate-limit shape, Retry-After."""
    st, hdrs, body = resp
    check(st == 429, "status %d, expected 429: %r" % (st, body))
    err = body["error"]
    check(err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded", err)
    check("--max-client-share" in err["message"], err)
    check(hdrs.get("retry-after") == "1", hdrs)


def status_of(sock):
    """The status of the response arriving on a raw request's socket."""
    head = sock.recv(4096)
    check(head.startswith(b"HTTP/1.1 "), head[:80])
    return int(head.split(b" ", 2)[1])


@test
def flood_leaves_room_for_another_client():
    """Issue 26's flood, scaled down: --max-concurrent 8 --max-queue 32 gives a
    client a share of 4 generations and a request at most 2 choices. One client
    streams 2-choice /v1/completions on 5 connections: 2 are served, 3 get 429
    (before, all 10 choices got in: 8 running and 2 queued, and everyone else
    waited behind them). Another client's small requests still succeed while
    the flood runs."""
    bad = subprocess.run([SERVE, "--max-client-share", "2", "--max-choices-per-request", "3"],
                         stderr=subprocess.PIPE, timeout=30)
    check(bad.returncode == 2 and b"--max-choices-per-request (3) is more than "
          b"--max-client-share (2)" in bad.stderr, bad.stderr)
    d = small_daemon("--max-concurrent", "8", "--max-queue", "32")
    flood = []
    try:
        v1 = {"prompt": ["the "] * 2, "max_tokens": 10000000, "stream": True}
        err = v1_error_of(d.json("POST", "/v1/completions",
                                  dict(v1, prompt=["the "] * 3, stream=False, max_tokens=2)), 400)
        check(err["param"] == "n" and "the limit is 2 per request" in err["message"], err)
        err = v1_error_of(d.json("POST", "/v1/completions", {"prompt": "the ", "max_tokens": 2,
                                                             "n": 1, "best_of": 3}), 400)
        check(err["param"] == "best_of" and "the limit is 2 per request" in err["message"], err)
        statuses = []
        for _ in range(5):
            flood.append(start_raw_sample(d.port, v1, "/v1/completions"))
            statuses.append(status_of(flood[-1]))
        check(statuses == [200, 200, 429, 429, 429], statuses)
        share_refused(d.json("POST", "/v1/completions", {"prompt": "the ", "max_tokens": 2}))
        wait_metric(d, "charrnn_active_requests", lambda v: v == 4)
        for _ in range(3):  # the other client (another address)
            st, _, body = d.json("POST", "/v1/completions", {"prompt": "the ", "max_tokens": 5},
                                 source="127.0.0.2")
            check(st == 200 and len(body["choices"][0]["text"]) == 5, body)
        fams, _ = d.metrics()
        check(metric(fams, "charrnn_active_requests") == 4, "the flood was not held")
        check(metric(fams, "charrnn_client_share_rejected_total") == 4, fams)
        check(metric(fams, "charrnn_clients_with_work") == 1, fams)
    finally:
        for s in flood:
            s.close()
        check(d.stop() == 0, "daemon exit")


@test
def fair_queue_admits_a_quiet_client_first():
    """Two slots, client A (127.0.0.1) runs 2 endless requests and queues 2;
    client B (127.0.0.2) then queues a short one. When one of A's running
    requests ends, B's starts, ahead of A's older queued ones (under a FIFO
    queue A's next one would start and B would wait for the timeout)."""
    d = small_daemon("--max-concurrent", "2", "--max-queue", "8", "--max-client-share", "4")
    a = []
    try:
        for i in range(4):
            a.append(start_raw_sample(d.port, {"length": 10000000, "seed": i}))
            wait_metric(d, "charrnn_active_requests", lambda v: v == min(i + 1, 2))
            wait_metric(d, "charrnn_queued_requests", lambda v: v == max(i - 1, 0))
        share_refused(d.json("POST", "/sample", {"length": 5}))
        got = {}
        t = threading.Thread(target=lambda: got.update(
            r=d.json("POST", "/sample", {"length": 5}, source="127.0.0.2")))
        t.start()
        wait_metric(d, "charrnn_queued_requests", lambda v: v == 3)
        a[0].close()  # running: its slot frees
        t.join(30)
        check(not t.is_alive(), "B's request still waits behind A's queue")
        st, _, body = got["r"]
        check(st == 200 and len(body["text"]) == 5, body)
        wait_metric(d, "charrnn_queued_requests", lambda v: v == 1)  # A's fourth
    finally:
        for s in a:
            s.close()
        check(d.stop() == 0, "daemon exit")


@test
def generation_timeout():
    d = small_daemon("--timeout", "0.5")
    try:
        t0 = time.time()
        st, _, body = d.sample(length=10000000)
        check(st == 200 and body["finish_reason"] == "timeout", body)
        check(0 < body["usage"]["generated_chars"] < 10000000,
              '0 < body["usage"]["generated_chars"] < 10000000')
        check(len(body["text"]) == body["usage"]["generated_chars"],
              'len(body["text"]) == body["usage"]["generated_chars"]')
        check(time.time() - t0 < 5, 'time.time() - t0 < 5')
        st, _, ev = d.stream({"length": 10000000})
        check(st == 200 and ev[-1]["finish_reason"] == "timeout", ev[-1])
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


# A generation that takes about a second (30,000 characters of the 2x192 LSTM): the
# reload and SIGTERM tests check, through the active gauge, that it was still
# running when they acted, so they cannot pass because it finished first.
LONG = dict(length=30000, seed=5, temperature=0.9)


def long_stream_daemon(*flags):
    """A daemon of its own serving the 2x192 LSTM as "wide" (its file may be
    replaced by the test); returns (models directory, daemon)."""
    mdir = tempfile.mkdtemp(prefix="models-long-", dir=ENV.dir)
    shutil.copyfile(wide_model(), os.path.join(mdir, "wide.safetensors"))
    return mdir, Daemon(mdir, "--default-model", "wide", "--max-length", str(LONG["length"]),
                        "--poll-interval", "0", "--admin-token", TOKEN, *flags)


def start_stream(d, case):
    """A streaming request on a thread: returns (thread, dict whose "r" is
    d.stream's answer once the thread ends)."""
    got = {}
    t = threading.Thread(target=lambda: got.update(r=d.stream(case, timeout=300)))
    t.start()
    return t, got


def keepalive(d):
    """A connection with one request answered and kept open: once the daemon
    drains it accepts no new connection, but answers on this one."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    r.read()
    check(r.status == 200 and r.getheader("Connection") != "close", r.getheaders())
    return conn


def on(conn, method, path, body=None):
    """(status, headers, JSON body) of a request on an open connection."""
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    return r.status, hdrs, (json.loads(data) if path != "/metrics" else data.decode())


@test
def reload_leaves_a_running_stream_on_its_version():
    """In-flight requests finish on the old version: a stream still generating
    when its model's file is replaced and reloaded (the active gauge says so
    after the reload answered) reports the old version and gives exactly the
    old file's text; the next request gets the new version."""
    mdir, d = long_stream_daemon()
    try:
        want = cli_for(LONG, wide_model())
        _, _, m0 = d.json("GET", "/models/wide")
        t, got = start_stream(d, LONG)
        wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
        replace_atomically(ENV.v2, os.path.join(mdir, "wide.safetensors"))
        st, _, r = d.json("POST", "/models/wide/reload",
                          headers={"Authorization": "Bearer " + TOKEN})
        check(st == 200, r)
        _, _, m1 = d.json("GET", "/models/wide")
        check(m1["version"] > m0["version"] and m1["cell"] == "gru", (m0, m1))
        fams, _ = d.metrics()
        check(metric(fams, "charrnn_active_requests") == 1,
              "the stream ended before the reload: the test would prove nothing")
        t.join(300)
        st, _, ev = got["r"]
        check(st == 200 and ev[-1].get("finish_reason") == "length", ev[-1])
        check(ev[-1]["model_version"] == m0["version"],
              "stream reports version %s, the old one is %s" % (ev[-1]["model_version"],
                                                                m0["version"]))
        check("".join(e.get("text", "") for e in ev) == want,
              "the stream's text is not the old version's text")
        st, _, body = d.sample(length=5, seed=1)
        check(st == 200 and body["model_version"] == m1["version"], body)
    finally:
        check(d.stop() == 0, "daemon exit status")


@test
def sigterm_drains_a_stream():
    """SIGTERM drains: a stream still generating when the signal arrives (the
    active gauge, read on a connection opened before, says 1 after the
    "draining" line) finishes whole with the text charrnn-sample gives; no new
    connection is accepted, and /sample on an open connection is a 503."""
    _, d = long_stream_daemon("--drain-timeout", "300")
    want = cli_for(LONG, wide_model())
    t, got = start_stream(d, LONG)
    wait_metric(d, "charrnn_active_requests", lambda v: v == 1)
    probe, late = keepalive(d), keepalive(d)
    mark = len(d.logs())
    d.proc.send_signal(signal.SIGTERM)
    o = d.wait_log(lambda o: o.get("msg") == "draining", 5, mark)
    # inflight counts HTTP requests, and the last /metrics poll may not have
    # been counted out yet: the gauge below says whether the stream still ran
    check(o.get("inflight", 0) >= 1, o)
    st, hdrs, text = on(probe, "GET", "/metrics")
    check(st == 200 and hdrs.get("connection") == "close", (st, hdrs))
    check(metric(parse_prometheus(text), "charrnn_active_requests") == 1,
          "the stream was not generating any more when the drain began")
    expect_error(on(late, "POST", "/sample", {"length": 5}), 503,
                 msg_re="shutting down")
    # no new connections once draining
    refused = False
    try:
        st, _, _ = d.request("GET", "/healthz", timeout=2)
    except OSError:
        refused = True
    check(refused or st == 503, 'refused or st == 503')
    t.join(300)
    st, _, ev = got["r"]
    check(st == 200 and ev[-1]["finish_reason"] == "length", ev[-1])
    check("".join(e["text"] for e in ev) == want, "the drained stream's text is not whole")
    check(d.stop(timeout=30) == 0, 'd.stop(timeout=30) == 0')


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
        check(st == 200 and "error" in ev[-1], ev[-1])
    check(d.stop(timeout=30) == 0, 'd.stop(timeout=30) == 0')


@test
def environment_variables_and_help():
    out = subprocess.run([SERVE, "--help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    for flag in ("--listen", "--models", "--default-model", "--admin-token", "--max-body",
                 "--max-length", "--max-prime", "--max-concurrent", "--max-queue", "--timeout",
                 "CHARRNN_LISTEN", "CHARRNN_ADMIN_TOKEN"):
        check(flag in out, flag)
    bad = subprocess.run([SERVE, "--max-length", "zero"], stderr=subprocess.PIPE)
    check(bad.returncode == 2 and b"max-length" in bad.stderr,
          'bad.returncode == 2 and b"max-length" in bad.stderr')
    bad = subprocess.run([SERVE, "--models", ENV.models], stderr=subprocess.PIPE, timeout=30,
                         env=dict(os.environ, CHARRNN_KERNEL="avx9"))
    check(bad.returncode == 2 and b"unknown inference kernel 'avx9'" in bad.stderr, bad.stderr)
    d = Daemon(ENV.models, env={"CHARRNN_DEFAULT_MODEL": "other", "CHARRNN_MAX_LENGTH": "7",
                                "CHARRNN_ADMIN_TOKEN": "envtok"}, use_env_for_listen=True)
    try:
        st, _, body = d.sample(length=5)
        check(st == 200 and body["model"] == "other", body)
        expect_error(d.sample(length=8), 400, "length")
        st, _, _ = d.json("POST", "/models/other/reload",
                          headers={"Authorization": "Bearer envtok"})
        check(st == 200, 'st == 200')
    finally:
        check(d.stop() == 0, 'd.stop() == 0')


def run_tests(tests, only, setup, teardown):
    """Runs setup, each of tests whose name contains one of only (all when only
    is empty), then teardown; fails the run for a failed test, a daemon left
    running or a sanitizer report on any daemon's stderr. Returns the exit code.
    A name in only that matches no test is an error, not an empty "all passed"."""
    unmatched = [s for s in only if not any(s in fn.__name__ for fn in tests)]
    if unmatched:
        print("no test matches %s; the tests are: %s"
              % (", ".join(map(repr, unmatched)), " ".join(fn.__name__ for fn in tests)))
        return 1
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

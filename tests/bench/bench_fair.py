#!/usr/bin/python3
"""Fairness benchmark (issue 26, A2): how long a quiet client's small requests
take while another client floods the daemon, against the same requests on
the idle daemon, in the same run.

The flood is the issue's: one client (127.0.0.1) opens 5 connections, each
streaming /v1/completions with {"prompt": ["ROMEO:"] * 4, "n": 16,
"max_tokens": 10000}. With the default limits (--max-concurrent 64: a
request may ask for 16 choices, a client may hold 32 generations) those get
400, so the flood is then sent as the largest request allowed, n = 4 (16
choices each): 2 connections get in (32 generations) and 3 get 429. The
quiet client (127.0.0.2) sends --requests small requests one after another
({"prompt": "ROMEO:", "max_tokens": --small-tokens}), idle first, then with
the flood running. Prints the flood's statuses, the daemon's running and
queued counts, and the small requests' p50/p99 latency in both phases and
their ratio. Then, for comparison, the issue's flood as it was sent on a
daemon with both limits off (--max-client-share 0 --max-choices-per-request
64, what admission was before): the other client's statuses. Timing only:
nothing is asserted (the machine may be shared).

usage: bench_fair.py [--build build] [--model deploy/models/shakespeare.safetensors]
                     [--requests 40] [--small-tokens 20] [--serve-args "..."]"""
import argparse
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from http_client import request  # noqa: E402

FLOOD = {"prompt": ["ROMEO:"] * 4, "n": 16, "max_tokens": 10000, "stream": True}


def start(build, models, extra):
    args = [os.path.join(build, "server", "charrnn-serve"), "--models", models,
            "--listen", "127.0.0.1:0", "--access-log", "off", "--poll-interval", "0"] + extra
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARRNN_")}
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=env, text=True)
    for line in proc.stderr:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("msg") == "listening":
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(ev["addr"].rsplit(":", 1)[1])
    sys.exit("charrnn-serve did not start")


class Stream(threading.Thread):
    """One flood connection: a streaming /v1/completions read to its end (or
    until stop), its status kept."""

    def __init__(self, port, body):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.conn.request("POST", "/v1/completions", body=json.dumps(body),
                          headers={"Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.stop = False
        self.start()

    def run(self):
        try:
            while not self.stop and self.resp.read1(65536):
                pass
        except (OSError, AttributeError, http.client.HTTPException):
            pass  # closed by close()

    def close(self):
        self.stop = True
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()


def metric(port, name):
    _, _, data = request(port, "GET", "/metrics")
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def small_requests(port, n, tokens):
    """The latencies of the small requests answered 200 (sorted), and every status."""
    lat, statuses = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        st, _, body = request(port, "POST", "/v1/completions",
                              {"prompt": "ROMEO:", "max_tokens": tokens}, source="127.0.0.2")
        statuses.append(st)
        if st == 200:
            lat.append(time.perf_counter() - t0)
    return sorted(lat), statuses


def pct(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", default=os.path.join(ROOT, "deploy", "models",
                                                    "shakespeare.safetensors"))
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--small-tokens", type=int, default=20)
    ap.add_argument("--serve-args", default="", help="extra charrnn-serve flags")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-fair-")
    shutil.copy(a.model, os.path.join(work, "m.safetensors"))
    proc, port = start(a.build, work, shlex.split(a.serve_args))
    streams = []
    try:
        print("load average %s; cpus %d" % (" ".join("%.2f" % x for x in os.getloadavg()),
                                             os.cpu_count()))
        small_requests(port, 3, a.small_tokens)  # warm-up
        idle, _ = small_requests(port, a.requests, a.small_tokens)
        st, _, body = request(port, "POST", "/v1/completions", dict(FLOOD, stream=False))
        print("the issue's flood request (4 prompts x n 16): %d %s" % (
            st, json.loads(body)["error"]["message"] if st != 200 else ""))
        flood = dict(FLOOD, n=4)
        for _ in range(5):
            streams.append(Stream(port, flood))
        print("flood, 5 connections of 4 prompts x n 4: statuses %s" %
              [s.status for s in streams])
        time.sleep(1)
        active, queued = metric(port, "charrnn_active_requests"), metric(
            port, "charrnn_queued_requests")
        busy, statuses = small_requests(port, a.requests, a.small_tokens)
        if len(busy) < len(statuses):
            sys.exit("small requests during the flood: statuses %s" % statuses)
        active2 = metric(port, "charrnn_active_requests")
        print("during the flood: %d running, %d queued (%d running after the small requests)" %
              (active, queued, active2))
        print("\n| phase | small requests | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        for name, xs in (("idle daemon", idle), ("during the flood", busy)):
            print("| %s | %d x %d chars | %.1f | %.1f |" % (name, len(xs), a.small_tokens,
                                                          1e3 * pct(xs, 50), 1e3 * pct(xs, 99)))
        print("\nflood / idle: p50 %.1fx, p99 %.1fx" % (pct(busy, 50) / pct(idle, 50),
                                                       pct(busy, 99) / pct(idle, 99)))
        print("load average after: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    finally:
        for s in streams:
            s.close()
        proc.terminate()
        proc.wait(60)
    # Before issue 26: the same flood, as the issue sent it, with the limits off
    proc, port = start(a.build, work, shlex.split(a.serve_args) + [
        "--max-client-share", "0", "--max-choices-per-request", "64"])
    streams = []
    try:
        for _ in range(5):
            streams.append(Stream(port, FLOOD))
        time.sleep(1)
        _, statuses = small_requests(port, 10, a.small_tokens)
        print("\nlimits off (--max-client-share 0 --max-choices-per-request 64), the issue's "
              "flood: statuses %s, %d running, %d queued; the other client's small requests: %s" %
              ([s.status for s in streams], metric(port, "charrnn_active_requests"),
               metric(port, "charrnn_queued_requests"), statuses))
    finally:
        for s in streams:
            s.close()
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

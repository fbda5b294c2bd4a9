"""Helpers shared by the hardening scripts: a charrnn-serve process with its
stderr collected, HTTP calls, charrnn-sample, and safetensors metadata."""

import json
import os
import signal
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from checks import check  # noqa: E402,F401 (faults.py and soak.py import it from here)
from http_client import request as http_request  # noqa: E402
from stderr_log import StderrLog  # noqa: E402


def programs(build):
    """charrnn-train, charrnn-sample and charrnn-serve in the build directory."""
    return (os.path.join(build, "cli", "charrnn-train"),
            os.path.join(build, "cli", "charrnn-sample"),
            os.path.join(build, "server", "charrnn-serve"))


def st_metadata(path):
    """The __metadata__ of a safetensors file (raises on a malformed header)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def cli_sample(sample_bin, ckpt, prime="", length=50, seed=0, temperature=None, timeout=60):
    """charrnn-sample's continuation (without the prime); raises on failure."""
    args = [sample_bin, "--checkpoint", ckpt, "--length", str(length), "--seed", str(seed)]
    if prime:
        args += ["--prime", prime]
    if temperature is not None:
        args += ["--temperature", repr(temperature)]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout).stdout
    check(out.startswith(prime.encode()), "charrnn-sample did not print the prime first")
    return out[len(prime.encode()):].decode()


def make_text(n_words=4000, seed=12345):
    """A deterministic training text with some non-ASCII characters."""
    words = ("the quick brown fox jumps over lazy dogs while seven wizards "
             "quietly hex café naïve façade λόγος über straße").split()
    x, out = seed, []
    for _ in range(n_words):
        x = (x * 1103515245 + 12345) % (1 << 31)
        out.append(words[x % len(words)])
        if x % 11 == 0:
            out.append(".\n")
    return " ".join(out)


SANITIZER_MARKS = ("runtime error:", "Sanitizer", "LeakSanitizer", "==ERROR")


class Daemon(StderrLog):
    """A charrnn-serve on a free loopback port; its stderr lines are collected."""

    def __init__(self, serve_bin, models, *flags):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARRNN_")}
        self.proc = subprocess.Popen([serve_bin, "--models", models, "--listen", "127.0.0.1:0",
                                      *flags], stderr=subprocess.PIPE, env=env)
        self._start_log()
        ev = self.wait_log(lambda o: o.get("msg") == "listening", 20)
        self.port = int(ev["addr"].rsplit(":", 1)[1])

    def sanitizer_reports(self):
        return [l for l in self.logs() if any(m in l for m in SANITIZER_MARKS)]

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def request(self, method, path, body=None, headers=None, timeout=60):
        st, _, data = http_request(self.port, method, path, body, headers, timeout)
        return st, data

    def json(self, method, path, body=None, headers=None, timeout=60):
        st, data = self.request(method, path, body, headers, timeout)
        return st, json.loads(data)

    def sample(self, timeout=60, **fields):
        return self.json("POST", "/sample", fields, timeout=timeout)

    def pid_stats(self):
        """(RSS in KiB, open file descriptors, threads) of the daemon."""
        pid = self.proc.pid
        rss = threads = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir("/proc/%d/fd" % pid))
        return rss, fds, threads

"""Collects a child process's JSON-lines stderr as it comes, for the test
scripts that start charrnn-serve (tests/server/run_e2e.py, tests/hardening)."""
import json
import threading
import time


class StderrLog:
    """Mixin: call _start_log() once self.proc (a Popen with stderr=PIPE) exists."""

    def _start_log(self):
        self.lines = []
        self.raw_lines = []  # the bytes as written, for checks of the encoding
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.raw_lines.append(raw)
                self.lines.append(raw.decode("utf-8", "replace"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def logs(self):
        with self.cond:
            return list(self.lines)

    def raw_logs(self):
        with self.cond:
            return list(self.raw_lines)

    def wait_log(self, pred, timeout, start=0):
        """The first JSON line from index start on for which pred is true; raises
        AssertionError (with the last lines) on timeout or when the process ended."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    try:
                        o = json.loads(line)
                    except ValueError:
                        continue
                    if pred(o):
                        return o
                left = deadline - time.time()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError("log line not seen; last lines:\n" +
                                         "".join(self.lines[-20:]))
                self.cond.wait(min(left, 0.2))

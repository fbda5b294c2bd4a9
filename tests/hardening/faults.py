#!/usr/bin/python3
"""Fault injection against charrnn-train and charrnn-serve (bounded, ~2 min).

usage: faults.py BUILD_DIR [--kills N] [--only kill|resume|disk|serve]

1. kill: the trainer is SIGKILLed at random moments, N times (default 50),
   with a checkpoint every iteration so many kills land inside a write. After
   every kill, latest.safetensors and best.safetensors load (charrnn-sample
   works on them), latest's iteration never goes back, and the next run
   resumes from it (--init-from). At the end the chain is resumed to a fixed
   iteration and compared, tensor for tensor, with an uninterrupted run to the
   same iteration: resuming after kills loses nothing but the unsaved steps.
2. disk: a checkpoint write on a full disk (a small tmpfs, mounted for the
   test; not as root: in a user namespace of its own): the trainer fails with
   a clear error and a non-zero exit, the old latest.safetensors is
   byte-identical and still loads, no temporary file is left behind. Same for --publish onto a full disk.
3. serve: the served model file is replaced - by garbage, by a truncated copy,
   by a symlink to a checkpoint outside the models directory, by files of
   other formats (a zip, a foreign safetensors file), atomically and in place
   - while clients sample continuously: no request fails, every answer is the
   original model's exact text, the old version keeps serving, and each bad
   file is reported as a load failure.
Exit status 0 when everything held; figures on stdout.
"""

import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Daemon, check, cli_sample, make_text, programs, st_metadata  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
TRAIN, SAMPLE, SERVE = programs(BUILD)
KILLS = int(sys.argv[sys.argv.index("--kills") + 1]) if "--kills" in sys.argv else 50
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None

COMMON = ["--rnn-size", "96", "--num-layers", "2", "--seq-length", "16", "--batch-size", "8",
          "--threads", "1", "--seed", "7", "--quiet", "--print-every", "100000",
          "--train-frac", "0.9", "--val-frac", "0.05"]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tensors(path):
    """name -> raw bytes of every tensor (the header's JSON names them)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in hdr.items() if k != "__metadata__"}


def iteration(path):
    return int(json.loads(st_metadata(path)["train"])["iteration"])


def check_loads(path):
    text = cli_sample(SAMPLE, path, prime="the ", length=20, seed=1)
    check(len(text) == 20, text)


# ------------------------------------------------------------- 1. SIGKILL

def kill_loop(work, data):
    ck = os.path.join(work, "ck")
    rng = random.Random(20261125)
    last_iter, in_write, resumed, no_ckpt = -1, 0, 0, 0
    t0 = time.time()
    for k in range(KILLS):
        latest = os.path.join(ck, "latest.safetensors")
        args = [TRAIN, "--data", data, "--checkpoint-dir", ck, "--eval-every", "1",
                "--max-iters", "100000000", *COMMON]
        if os.path.exists(latest):
            args += ["--init-from", latest]
            resumed += 1
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.15, 1.2))
        # Is a checkpoint being written right now? (a *.tmp.* file is open)
        try:
            fds = [os.readlink("/proc/%d/fd/%s" % (p.pid, fd))
                   for fd in os.listdir("/proc/%d/fd" % p.pid)]
        except OSError:
            fds = []
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        check(p.returncode == -signal.SIGKILL,
            "the trainer ended by itself (%s): %s" % (p.returncode, err.decode()[-2000:]))
        leftovers = [f for f in os.listdir(ck) if ".tmp." in f] if os.path.isdir(ck) else []
        if leftovers or any(".tmp." in f for f in fds):
            in_write += 1
        for f in leftovers:  # the next run would not clean them: a killed writer cannot
            os.unlink(os.path.join(ck, f))
        if not os.path.exists(latest):
            no_ckpt += 1
            check(last_iter < 0, "latest.safetensors disappeared after kill %d" % k)
            continue
        for name in ("latest.safetensors", "best.safetensors"):
            check_loads(os.path.join(ck, name))
        it = iteration(latest)
        check(it >= last_iter, "latest went back from iteration %d to %d" % (last_iter, it))
        last_iter = it
        for f in os.listdir(ck):  # per-eval checkpoints: keep the disk use bounded
            if f.startswith("lm_"):
                os.unlink(os.path.join(ck, f))
    check(last_iter > 0, "no checkpoint was ever written")
    # Resume the chain to a fixed point and compare with an uninterrupted run.
    target = last_iter + 5
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck, "--eval-every", "1",
                    "--max-iters", str(target), "--init-from",
                    os.path.join(ck, "latest.safetensors"), *COMMON], check=True)
    straight = os.path.join(work, "straight")
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", straight, "--eval-every", "1",
                    "--max-iters", str(target), *COMMON], check=True, stderr=subprocess.DEVNULL)
    a, b = tensors(os.path.join(ck, "latest.safetensors")), \
        tensors(os.path.join(straight, "latest.safetensors"))
    check(iteration(os.path.join(ck, "latest.safetensors")) == target,
          'iteration(os.path.join(ck, "latest.safetensors")) == target')
    check(a.keys() == b.keys(), (sorted(a), sorted(b)))
    diff = [k for k in a if a[k] != b[k]]
    check(not diff, "after %d kills and resumes, tensors differ from a straight run: %s" % (
        KILLS, diff))
    print("kill: %d SIGKILLs in %.0f s: %d during a checkpoint write, %d before the first "
          "checkpoint, %d resumed runs; last good checkpoint always loaded; resumed chain to "
          "iteration %d is bit-identical to an uninterrupted run (%d tensors)"
          % (KILLS, time.time() - t0, in_write, no_ckpt, resumed, target, len(a)), flush=True)


def bad_resume_state(work, data):
    """A checkpoint whose resume iteration is not a count (an edited or corrupted
    latest.safetensors) is refused with a message; it once crashed the trainer
    (negative data position, SIGSEGV)."""
    ck = os.path.join(work, "ck-resume")
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck, "--eval-every", "2",
                    "--max-iters", "2", *COMMON], check=True, stderr=subprocess.DEVNULL)
    with open(os.path.join(ck, "latest.safetensors"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    for val in (1e999, -1e18, 2.5, -1):
        resume = json.loads(hdr["__metadata__"]["resume"])
        resume["iteration"] = val
        h = dict(hdr, __metadata__=dict(hdr["__metadata__"], resume=json.dumps(resume)))
        raw = json.dumps(h, separators=(",", ":")).encode()  # 1e999 is written as Infinity
        raw = raw.replace(b"Infinity", b"1e999")
        raw += b" " * (-len(raw) % 8)
        path = os.path.join(work, "bad-resume.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw + blob[8 + n:])
        r = subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck + "-2", "--eval-every",
                            "2", "--max-iters", "4", "--init-from", path, *COMMON],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(r.returncode == 1 and b"resume iteration" in r.stderr, (val, r.returncode,
                                                                       r.stderr[-300:]))
    print("resume: checkpoints with a resume iteration of inf, -1e18, 2.5, -1 refused with a "
          "message", flush=True)


# ------------------------------------------------------------- 2. full disk

def fill(mnt, leave):
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(mnt, "filler"), "wb") as f:
        f.write(b"\0" * max(0, free - leave))
        f.flush()
        os.fsync(f.fileno())


def disk_full(work, data):
    if os.geteuid() != 0:
        # Mounting the tmpfs needs root. Another user runs this stage in a user
        # and mount namespace of its own (unshare -rm), where it is root; where
        # the kernel forbids that, the stage fails: it is never skipped.
        r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable,
                            os.path.abspath(__file__), BUILD, "--only", "disk"], timeout=600)
        check(r.returncode == 0, "disk: failed in a user namespace (unshare -rm exit %d); run "
              "as root where unprivileged user namespaces are off" % r.returncode)
        return
    seed_ck = os.path.join(work, "ck-disk")
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", seed_ck, "--eval-every", "2",
                    "--max-iters", "2", *COMMON], check=True, stderr=subprocess.DEVNULL)
    size = os.path.getsize(os.path.join(seed_ck, "latest.safetensors"))
    mnt = os.path.join(work, "tmpfs")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % (4 * size + (1 << 20)), "tmpfs",
                    mnt], check=True)
    try:
        ck = os.path.join(mnt, "ck")
        os.mkdir(ck)
        latest = os.path.join(ck, "latest.safetensors")
        shutil.copyfile(os.path.join(seed_ck, "latest.safetensors"), latest)
        before = sha(latest)
        for leave in (4096, size // 2):  # no room at all; room for half a checkpoint
            fill(mnt, leave)
            r = subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", ck, "--eval-every",
                                "1", "--max-iters", "6", "--init-from", latest, *COMMON],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            err = r.stderr.decode()
            check(r.returncode != 0, "the trainer exited 0 on a full disk")
            check(r.returncode < 128, "the trainer crashed: %d\n%s" % (r.returncode, err))
            check("No space left on device" in err, "unclear error: %r" % err[-500:])
            check(sha(latest) == before, "latest.safetensors changed on a failed write")
            check_loads(latest)
            left = [f for f in os.listdir(ck) if ".tmp." in f]
            check(not left, "temporary files left behind: %s" % left)
            os.unlink(os.path.join(mnt, "filler"))
        msg = err.strip().splitlines()[-1]
        # --publish onto a full disk: the old published model stays.
        pub = os.path.join(mnt, "pub.safetensors")
        shutil.copyfile(os.path.join(seed_ck, "best.safetensors"), pub)
        pub_sha = sha(pub)
        fill(mnt, 4096)
        r = subprocess.run([TRAIN, "--data", data, "--checkpoint-dir",
                            os.path.join(work, "ck-pub"), "--eval-every", "2", "--max-iters",
                            "2", "--publish", pub, *COMMON],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        check(r.returncode != 0 and r.returncode < 128, r.returncode)
        check("No space left on device" in r.stderr.decode(), r.stderr.decode()[-500:])
        check(sha(pub) == pub_sha and not [f for f in os.listdir(mnt) if ".tmp." in f],
              'sha(pub) == pub_sha and not [f for f in os.listdir(mnt) i...')
        check_loads(pub)
        print("disk: full tmpfs (no room / half a checkpoint of room / --publish): exit %d, "
              "old checkpoint byte-identical and loadable, no temporary file left; message: %s"
              % (r.returncode, msg), flush=True)
    finally:
        subprocess.run(["umount", mnt], check=False)


# ------------------------------------------------------------- 3. served file replaced

def serve_replacements(work, data):
    models = os.path.join(work, "models")
    os.mkdir(models)
    good = os.path.join(work, "good.safetensors")
    other = os.path.join(work, "other.safetensors")  # outside the models directory
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", os.path.join(work, "ck-a"),
                    "--eval-every", "5", "--max-iters", "5", "--publish", good, *COMMON[4:]],
                   check=True, stderr=subprocess.DEVNULL)
    subprocess.run([TRAIN, "--data", data, "--checkpoint-dir", os.path.join(work, "ck-b"),
                    "--eval-every", "5", "--max-iters", "5", "--publish", other, "--seed", "99",
                    *COMMON[4:10]], check=True, stderr=subprocess.DEVNULL)
    served = os.path.join(models, "m.safetensors")
    shutil.copyfile(good, served)
    case = dict(prime="the ", length=60, seed=424242, temperature=0.9)
    want = cli_sample(SAMPLE, good, prime=case["prime"], length=case["length"],
                      seed=case["seed"], temperature=case["temperature"])
    check(want != cli_sample(SAMPLE, other, prime=case["prime"], length=case["length"],
                             seed=case["seed"], temperature=case["temperature"]),
          'want != cli_sample(SAMPLE, other, prime=case["prime"], le...')

    with open(good, "rb") as f:
        good_bytes = f.read()
    foreign = os.path.join(work, "foreign.safetensors")  # valid safetensors, not a charrnn file
    hdr = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "__metadata__": {"format": "pt"}}).encode()
    with open(foreign, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 8)
    rnd = random.Random(5)
    bad = [
        ("garbage", bytes(rnd.getrandbits(8) for _ in range(5000))),
        ("truncated", good_bytes[:len(good_bytes) // 3]),
        ("header-only", good_bytes[:8 + struct.unpack("<Q", good_bytes[:8])[0]]),
        ("empty", b""),
        ("zip (a PyTorch .pt)", b"PK\x03\x04" + bytes(rnd.getrandbits(8) for _ in range(3000))),
        ("GGUF", b"GGUF\x03\x00\x00\x00" + bytes(64)),
        ("foreign safetensors", open(foreign, "rb").read()),
        ("one flipped header byte", good_bytes[:40] + bytes([good_bytes[40] ^ 0x20]) +
         good_bytes[41:]),
        ("NaN in a weight", good_bytes[:-4] + struct.pack("<f", float("nan"))),
    ]
    # Crafted by tests/cli/st_tool.py: 268 bytes whose metadata asks for 3.2 GB, decoder
    # weights whose logits overflow, a NUL in the vocabulary.
    st_tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "st_tool.py")
    for name, args in (("metadata of 3.2 GB in 268 bytes", ["hostile"]),
                       ("decoder weights of 3e38", ["tiny", '["a", "b"]', "3e38"]),
                       ("NUL in the vocabulary", ["tiny", '["\\u0000", "a"]'])):
        made = os.path.join(work, "crafted.safetensors")
        subprocess.run([sys.executable, st_tool, args[0], made] + args[1:], check=True)
        with open(made, "rb") as f:
            bad.append((name, f.read()))

    d = Daemon(SERVE, models, "--default-model", "m", "--poll-interval", "0.1",
               "--max-concurrent", "8")
    try:
        _, m0 = d.json("GET", "/models/m")
        stop = threading.Event()
        results, lock = [], threading.Lock()

        def client():
            while not stop.is_set():
                try:
                    st, body = d.sample(**case)
                    r = (st, body.get("text"), body.get("model_version"))
                except Exception as e:  # a failed request is a failure
                    r = (repr(e), None, None)
                with lock:
                    results.append(r)

        ts = [threading.Thread(target=client) for _ in range(4)]
        for t in ts:
            t.start()
        failures_seen = 0
        cases = [(name, blob, how) for name, blob in bad for how in ("atomic", "in place")]
        cases += [("symlink outside the models directory", None, "symlink")]
        for name, blob, how in cases:
            mark = len(d.logs())
            if how == "atomic":
                tmp = os.path.join(models, ".incoming")
                with open(tmp, "wb") as f:
                    f.write(blob)
                os.replace(tmp, served)
            elif how == "in place":  # cp over the file: truncate, then write in pieces
                with open(served, "r+b") as f:
                    f.truncate(0)
                    for i in range(0, len(blob), 1000):
                        f.write(blob[i:i + 1000])
                        f.flush()
                        time.sleep(0.002)
                    f.truncate(len(blob))
            else:
                os.unlink(served)
                os.symlink(other, served)
            ev = d.wait_log(lambda o: o.get("msg") == "model load failed" and
                            o.get("model") == "m", 15, mark)
            check(ev.get("serving_version") == m0["version"], ev)
            failures_seen += 1
            st, info = d.json("GET", "/models/m")
            check(st == 200 and info["status"] == "ready" and info["version"] == m0["version"],
                (name, info))
            st, _ = d.json("GET", "/readyz")
            check(st == 200, name)
            time.sleep(0.2)
            # put the good file back for the next case (loads as a new version)
            mark = len(d.logs())
            if os.path.islink(served):
                os.unlink(served)
            tmp = os.path.join(models, ".incoming")
            shutil.copyfile(good, tmp)
            os.replace(tmp, served)
            d.wait_log(lambda o: o.get("msg") == "model loaded" and o.get("model") == "m", 15,
                       mark)
            _, m0 = d.json("GET", "/models/m")
        stop.set()
        for t in ts:
            t.join()
        bad_results = [r for r in results if r[0] != 200 or r[1] != want]
        check(not bad_results, "%d of %d requests failed or differed: %r" % (
            len(bad_results), len(results), bad_results[:5]))
        check(len(results) >= 50, len(results))
        rc = d.stop()
        check(rc == 0, "daemon exit status %d" % rc)
        reports = d.sanitizer_reports()
        check(not reports, "".join(reports[:20]))
        print("serve: %d bad replacements (%s; atomic and in place; symlink outside) while 4 "
              "clients sampled: %d requests, all 200 with the original text; every bad file a "
              "load failure with the old version serving"
              % (len(cases), ", ".join(n for n, _ in bad), len(results)), flush=True)
    finally:
        d.kill()


def main():
    work = tempfile.mkdtemp(prefix="charrnn-faults-")
    try:
        data = os.path.join(work, "data.txt")
        with open(data, "w", encoding="utf-8") as f:
            f.write(make_text(3000))
        t0 = time.time()
        if ONLY in (None, "resume"):
            bad_resume_state(work, data)
        if ONLY in (None, "disk"):
            disk_full(work, data)
        if ONLY in (None, "serve"):
            serve_replacements(work, data)
        if ONLY in (None, "kill"):
            kill_loop(work, data)
        print("faults: all passed in %.0f s" % (time.time() - t0))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Quality benchmark: what charrnn-train learns, against the PyTorch reference
(tests/bench/torch_train.py: same model, data pipeline, Adam, clipping and
schedule), the companion of bench_train.py (speed).

Every model, charrnn's or PyTorch's, is scored by the same code
(tests/bench/torch_score.py reads both checkpoints): the batched validation
loss (B=50 streams of T=50, as both trainers validate) and the loss of one
continuous stream over the first --stream-chars characters of the validation
split (as a served model is used). Several seeds per cell; the table gives the
mean, the sample standard deviation and the range over seeds.

Two comparisons:
  equal iterations (--configs NAME:ITERS): each initialisation of charrnn
      (--inits) and PyTorch (its own default initialisation, `torch` below)
      train ITERS iterations, one thread each. Iteration counts do not depend
      on the machine, so this is reproducible on a loaded machine.
  equal wall clock (--wall SECONDS): charrnn (its default initialisation, or
      --wall-init) and PyTorch train side by side for the same SECONDS (from
      process start; PyTorch's import is not counted), one thread each, and
      are scored where they stopped. Started together so both see the same
      load; still only as fair as the machine is quiet.

Initialisations (charrnn-train flags; PyTorch gets the same):
  lua    --init-range 0.08 --forget-bias 1   (the Lua char-rnn's)
  zero   --init-range 0.08 --forget-bias 0
  torch  --init-range 0    --forget-bias none (PyTorch's default U(+-1/sqrt(H)))

--precisions: charrnn-train's --precision for the equal-iteration runs, each
its own row ("charrnn" is f32, "charrnn-bf16" bf16); default f32.

Runs are recorded in OUT/results.jsonl and skipped when already there, so an
interrupted benchmark continues where it stopped.

usage: tests/bench/bench_quality.py --data FILE [--build build] [--out DIR]
       [--configs 2x128:1000,2x256:400,3x512:150] [--seeds 1,2,3]
       [--inits lua,zero,torch] [--precisions f32,bf16] [--torch] [--wall SECONDS]
       [--wall-init INIT] [--jobs 2]
       [--stream-chars 10000] [--table-only]"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INITS = {
    "lua": ("0.08", "1"),
    "zero": ("0.08", "0"),
    "torch": ("0", "none"),
}


def parse_config(s):
    name, _, iters = s.partition(":")
    L, _, H = name.partition("x")
    return name, int(L), int(H), int(iters or 0)


def checked(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:2])} failed: {p.stderr.strip()[-800:]}")
    return p.stdout


def score(a, path):
    out = checked(["/usr/bin/python3", os.path.join(HERE, "torch_score.py"), "--data", a.data,
                   "--stream-chars", str(a.stream_chars), path])
    return json.loads(out.strip().splitlines()[-1])


def charrnn_cmd(a, d, L, H, init, seed, iters, precision="f32"):
    r, fb = INITS[init]
    extra = [] if precision == "f32" else ["--precision", precision]
    return [os.path.join(a.build, "cli", "charrnn-train"), "--data", a.data, "--checkpoint-dir",
            d, "--num-layers", str(L), "--rnn-size", str(H), "--max-iters", str(iters),
            "--eval-every", str(10 ** 12), "--seed", str(seed), "--threads", "1",
            "--init-range", r, "--forget-bias", fb, "--quiet", "--log",
            os.path.join(d, "log.jsonl")] + extra


def torch_cmd(a, d, L, H, init, seed, iters, seconds=0.0):
    r, fb = INITS[init]
    return ["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), "--data", a.data,
            "--num-layers", str(L), "--rnn-size", str(H), "--max-iters", str(iters),
            "--seed", str(seed), "--threads", "1", "--init-range", r, "--forget-bias", fb,
            "--max-seconds", str(seconds), "--save", os.path.join(d, "model.safetensors")]


def charrnn_iters(d):
    ev = [json.loads(x) for x in open(os.path.join(d, "log.jsonl"))]
    return max(e["iter"] for e in ev if e.get("event") in ("iter", "done"))


def equal_iters(a, key, L, H, iters, trainer, init, seed):
    d = os.path.join(a.out, "runs", key.replace(" ", "_").replace("/", "-"))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    t0 = time.time()
    if trainer.startswith("charrnn"):  # "charrnn" (f32) or "charrnn-PRECISION"
        checked(charrnn_cmd(a, d, L, H, init, seed, iters, trainer.partition("-")[2] or "f32"))
        model = os.path.join(d, "latest.safetensors")
    else:
        checked(torch_cmd(a, d, L, H, init, seed, iters))
        model = os.path.join(d, "model.safetensors")
    wall = time.time() - t0
    s = score(a, model)
    shutil.rmtree(d, ignore_errors=True)  # models are large; the scores are kept
    return {"iters": iters, "wall_sec": wall, "val_loss": s.get("val_loss"),
            "stream_loss": s.get("stream_loss")}


def equal_wall(a, key, L, H, seconds, seed):
    """charrnn (--wall-init, else its default initialisation) and PyTorch side by side."""
    d = os.path.join(a.out, "runs", key.replace(" ", "_").replace("/", "-"))
    shutil.rmtree(d, ignore_errors=True)
    dc, dt = os.path.join(d, "charrnn"), os.path.join(d, "torch")
    os.makedirs(dc), os.makedirs(dt)
    cc = charrnn_cmd(a, dc, L, H, a.wall_init or "lua", seed, 10 ** 9)
    if not a.wall_init:  # as shipped: no initialisation flags
        cc = cc[:cc.index("--init-range")] + cc[cc.index("--forget-bias") + 2:]
    pc = subprocess.Popen(cc, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pt = subprocess.Popen(torch_cmd(a, dt, L, H, "torch", seed, 10 ** 9, seconds),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    pc.send_signal(signal.SIGTERM)  # finishes its step, checkpoints, exits 0
    _, errc = pc.communicate()
    outt, errt = pt.communicate()
    if pc.returncode != 0 or pt.returncode != 0:
        sys.exit(f"equal wall clock run failed: {errc.strip()[-400:]} {errt.strip()[-400:]}")
    rows = []
    for trainer, model, iters in (
            ("charrnn", os.path.join(dc, "latest.safetensors"), charrnn_iters(dc)),
            ("pytorch", os.path.join(dt, "model.safetensors"), json.loads(outt)["iters"])):
        s = score(a, model)
        rows.append({"trainer": trainer, "iters": iters, "wall_sec": seconds,
                     "val_loss": s.get("val_loss"), "stream_loss": s.get("stream_loss")})
    shutil.rmtree(d, ignore_errors=True)
    return rows


def fmt(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return (f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f} "
            f"({min(xs):.3f}-{max(xs):.3f})")


def table(a, results):
    text = os.path.basename(a.data)
    print(f"\n{text}: validation loss (nats/char) scored by tests/bench/torch_score.py; "
          f"mean ± sample sd (min-max) over seeds; stream = first {a.stream_chars} chars "
          "of the validation split as one stream\n")
    hdr = ("comparison", "model", "trainer / init", "seeds", "iterations", "batched val",
           "stream val")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    groups = {}
    for r in results:
        if r["text"] != text:
            continue
        k = (r["mode"], r["model"], r["who"])
        groups.setdefault(k, []).append(r)
    order = {"lua": 0, "zero": 1, "torch": 2}
    for k in sorted(groups, key=lambda k: (k[0], int(k[1].split("x")[1]), int(k[1].split("x")[0]),
                                           k[2].startswith("pytorch"),
                                           order.get(k[2].split()[-1], 9))):
        rs = groups[k]
        its = [r["iters"] for r in rs]
        it = str(its[0]) if min(its) == max(its) else f"{statistics.mean(its):.0f} ({min(its)}-{max(its)})"
        print(f"| {k[0]} | {k[1]} | {k[2]} | {len(rs)} | {it} | "
              f"{fmt([r['val_loss'] for r in rs])} | {fmt([r['stream_loss'] for r in rs])} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="bench-quality")
    ap.add_argument("--configs", default="2x128:1000,2x256:400,3x512:150")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--inits", default="lua,zero,torch")
    ap.add_argument("--precisions", default="f32", help="charrnn's --precision values")
    ap.add_argument("--torch", action="store_true", help="PyTorch at equal iterations too")
    ap.add_argument("--wall", type=float, default=0.0, help="equal wall clock seconds per run")
    ap.add_argument("--wall-init", default=None, help="charrnn's initialisation there "
                    "(default: charrnn-train's own)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--stream-chars", type=int, default=10000)
    ap.add_argument("--table-only", action="store_true")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    os.makedirs(a.out, exist_ok=True)
    log = os.path.join(a.out, "results.jsonl")
    results = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
    done = {r["key"] for r in results}
    text = os.path.basename(a.data)
    seeds = [int(s) for s in a.seeds.split(",")]
    inits = [i for i in a.inits.split(",") if i]
    for i in inits:
        if i not in INITS:
            sys.exit(f"unknown init '{i}' (lua, zero, torch)")
    jobs = []
    for c in a.configs.split(","):
        name, L, H, iters = parse_config(c)
        for seed in seeds:
            if iters > 0:
                mine = ["charrnn" + ("" if p == "f32" else "-" + p) for p in a.precisions.split(",")]
                for who in ([(c, i) for c in mine for i in inits] +
                            ([("pytorch", "torch")] if a.torch else [])):
                    key = f"{text} iters {name} {who[0]} {who[1]} {iters} {seed}"
                    if key not in done:
                        jobs.append(("iters", key, name, L, H, iters, who, seed))
            if a.wall > 0:
                key = f"{text} wall {name} {a.wall:g} {a.wall_init or 'default'} {seed}"
                if key not in done:
                    jobs.append(("wall", key, name, L, H, a.wall, None, seed))
    if not a.table_only:
        print(f"{len(jobs)} runs to do, {a.jobs} at a time; results in {log}", flush=True)

        def work(j):
            mode, key, name, L, H, n, who, seed = j
            base = {"key": key, "text": text, "model": name, "seed": seed}
            if mode == "iters":
                r = equal_iters(a, key, L, H, n, who[0], who[1], seed)
                return [dict(base, mode="equal iterations", who=f"{who[0]} {who[1]}", **r)]
            mine = f"charrnn {a.wall_init or '(default)'}"  # each pair is its own comparison
            label = {"charrnn": mine, "pytorch": f"pytorch torch (beside {mine})"}
            return [dict(base, mode=f"equal wall clock {n:g} s", who=label[r.pop("trainer")], **r)
                    for r in equal_wall(a, key, L, H, n, seed)]

        # Wall-clock pairs already use two threads: they run alone.
        it_jobs = [j for j in jobs if j[0] == "iters"]
        wall_jobs = [j for j in jobs if j[0] == "wall"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            for fut in concurrent.futures.as_completed([ex.submit(work, j) for j in it_jobs]):
                rows = fut.result()
                with open(log, "a") as f:
                    for r in rows:
                        f.write(json.dumps(r) + "\n")
                        print(json.dumps(r), flush=True)
                results += rows
        for j in wall_jobs:
            rows = work(j)
            with open(log, "a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
                    print(json.dumps(r), flush=True)
            results += rows
    table(a, results)


if __name__ == "__main__":
    main()

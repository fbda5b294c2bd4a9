#!/usr/bin/python3
"""Static checks of the deployment recipes: the Kubernetes manifests, the
compose file and the Dockerfile agree with each other and with the daemon.

    check_deploy.py SOURCE_ROOT

Each check prints one line; the exit status is the number of failures
(1 when PyYAML is missing: a skip would pass quietly).
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("FAIL: python3-yaml is missing (deploy/install-deps.sh --test installs it)")
    sys.exit(1)

SRC = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()
K8S = os.path.join(SRC, "deploy", "k8s")
UID = 10001
failures = 0
passes = 0


def check(cond, what):
    global failures, passes
    if cond:
        passes += 1
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---- Kubernetes -------------------------------------------------------------
docs = {}  # (kind, name) -> doc
files = {}  # file -> [docs]
for fn in sorted(os.listdir(K8S)):
    if fn.endswith((".yaml", ".yml")):
        files[fn] = load_all(os.path.join(K8S, fn))
        for d in files[fn]:
            check(all(k in d for k in ("apiVersion", "kind")), f"{fn}: {d.get('kind')} has apiVersion and kind")
            if d["kind"] != "Kustomization":
                check(bool(d.get("metadata", {}).get("name")), f"{fn}: {d['kind']} has metadata.name")
                docs[(d["kind"], d["metadata"]["name"])] = d


def one(kind):
    found = [d for (k, _), d in docs.items() if k == kind]
    check(len(found) >= 1, f"a {kind} exists")
    return found


kust = files.get("kustomization.yaml", [{}])[0]
listed = set(kust.get("resources", []))
for fn in files:
    if fn in ("kustomization.yaml", "train-job.yaml", "train-mpijob.yaml"):
        continue
    check(fn in listed, f"kustomization.yaml lists {fn}")
for fn in listed:
    check(fn in files, f"kustomization resource {fn} exists")

# API keys from a Secret: the serving Deployment points CHARRNN_API_KEY_FILE
# at a file inside a read-only mount of the Secret charrnn-api-keys.
for dep in one("Deployment"):
    pod = dep["spec"]["template"]["spec"]
    main = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in main.get("env", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in main.get("volumeMounts", [])}
    keyfile = env.get("CHARRNN_API_KEY_FILE") or ""
    mount = [p for p in mounts if keyfile.startswith(p.rstrip("/") + "/")]
    check(len(mount) == 1, "CHARRNN_API_KEY_FILE is inside a mounted volume")
    if mount:
        m = mounts[mount[0]]
        check(m.get("readOnly") is True, "the API key mount is read-only")
        check(vols.get(m["name"], {}).get("secret", {}).get("secretName") == "charrnn-api-keys",
              "the API keys come from the Secret charrnn-api-keys")

pvcs = {d["metadata"]["name"]: d for d in one("PersistentVolumeClaim")}
check("charrnn-models" in pvcs, "the models PersistentVolumeClaim charrnn-models exists")
models_pvc = pvcs.get("charrnn-models", {"spec": {}})
check("ReadWriteMany" in models_pvc["spec"].get("accessModes", []),
      "charrnn-models is ReadWriteMany (replicas on several nodes, a Job publishing)")


def check_pod(pod, what, want_models_rw, image="charrnn"):
    """Security context, resources, and the models volume of a pod template spec
    (want_models_rw None: a pod without the models volume)."""
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{what}: pod runAsNonRoot")
    check(psc.get("runAsUser") == UID and psc.get("fsGroup") == UID, f"{what}: runs as uid {UID}, fsGroup {UID}")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: seccomp RuntimeDefault")
    check(pod.get("automountServiceAccountToken") is False, f"{what}: no service account token")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    models_vol = [n for n, v in volumes.items()
                  if v.get("persistentVolumeClaim", {}).get("claimName") == "charrnn-models"]
    if want_models_rw is None:
        check(not models_vol, f"{what}: does not mount the charrnn-models claim")
    else:
        check(len(models_vol) == 1, f"{what}: mounts the charrnn-models claim")
    for v in volumes.values():
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim:
            check(claim in pvcs, f"{what}: claim {claim} is defined")
    containers = pod.get("initContainers", []) + pod.get("containers", [])
    for c in containers:
        cw = f"{what}/{c['name']}"
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cw}: drops all capabilities")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            check(all(r in res.get(kind, {}) for r in ("cpu", "memory")), f"{cw}: {kind} for cpu and memory")
        check(c.get("image", "").split(":")[0].split("/")[-1] == image, f"{cw}: runs the {image} image")
        for m in c.get("volumeMounts", []):
            check(m["name"] in volumes, f"{cw}: volume {m['name']} is defined")
    main = pod["containers"][0]
    mounts = {m["name"]: m for m in main.get("volumeMounts", [])}
    if models_vol:
        m = mounts.get(models_vol[0], {})
        check(m.get("mountPath") == "/models", f"{what}: models volume at /models")
        check(bool(m.get("readOnly")) != want_models_rw,
              f"{what}: models volume {'writable' if want_models_rw else 'read-only'}")
    check(any(m.get("mountPath") == "/tmp" for m in mounts.values()), f"{what}: writable /tmp")
    return main


deps = one("Deployment")
dep = deps[0] if deps else {"spec": {"template": {"metadata": {}, "spec": {"containers": [{}]}}}}
dep_name = dep.get("metadata", {}).get("name")
pod = dep["spec"]["template"]["spec"]
pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
check(dep["spec"].get("selector", {}).get("matchLabels", {}).items() <= pod_labels.items(),
      "Deployment selector matches its pod labels")
serve = check_pod(pod, "Deployment", want_models_rw=False)
ports = {p.get("name"): p.get("containerPort") for p in serve.get("ports", [])}
check(ports.get("http") == 8080, "daemon container exposes http 8080")
env = {e["name"]: e for e in serve.get("env", [])}
check(env.get("CHARRNN_LISTEN", {}).get("value", "0.0.0.0:8080").endswith(":8080")
      and not env.get("CHARRNN_LISTEN", {}).get("value", "0.0.0.0").startswith("127."),
      "CHARRNN_LISTEN is 0.0.0.0:8080 (reachable by probes and the Service)")
check(env.get("CHARRNN_MODELS", {}).get("value", "/models") == "/models", "CHARRNN_MODELS is /models")
check(not serve.get("command"), "daemon container keeps the image's entrypoint")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = serve.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path, f"{probe} is GET {path}")
    check(get.get("port") in ("http", 8080), f"{probe} uses the http port")
tgps = pod.get("terminationGracePeriodSeconds", 30)
check(tgps >= 30, "terminationGracePeriodSeconds leaves time to drain")
rolling = dep["spec"].get("strategy", {}).get("rollingUpdate", {})
check(rolling.get("maxUnavailable") == 0, "rolling updates never drop below the replica count")

for svc in one("Service"):
    sel = svc["spec"].get("selector", {})
    check(bool(sel) and sel.items() <= pod_labels.items(), f"Service {svc['metadata']['name']} selects the daemon pods")
    check(all(p.get("targetPort") in ("http", 8080) for p in svc["spec"].get("ports", [])),
          "Service targets the http port")

for hpa in one("HorizontalPodAutoscaler"):
    check(hpa["apiVersion"] == "autoscaling/v2", "HPA is autoscaling/v2")
    ref = hpa["spec"].get("scaleTargetRef", {})
    check(ref.get("kind") == "Deployment" and ref.get("name") == dep_name, "HPA scales the Deployment")
    check(hpa["spec"].get("minReplicas", 1) >= 2, "HPA keeps at least 2 replicas")
    check(any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"].get("metrics", [])), "HPA on CPU")
    serve_cpu = serve.get("resources", {}).get("requests", {}).get("cpu")
    check(serve_cpu is not None, "daemon has a CPU request (the HPA's denominator)")

for pdb in docs.values():
    if pdb["kind"] == "PodDisruptionBudget":
        sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
        check(bool(sel) and sel.items() <= pod_labels.items(), "PodDisruptionBudget selects the daemon pods")

for job in one("Job"):
    jpod = job["spec"]["template"]["spec"]
    check(jpod.get("restartPolicy") in ("Never", "OnFailure"), "Job restartPolicy Never/OnFailure")
    main = check_pod(jpod, "Job", want_models_rw=True)
    argv = (main.get("command") or []) + (main.get("args") or [])
    check(argv[:1] == ["charrnn-train"], "Job runs charrnn-train")
    pub = argv[argv.index("--publish") + 1] if "--publish" in argv else ""
    check(re.fullmatch(r"/models/[A-Za-z0-9._-]+\.safetensors", pub) is not None,
          "Job publishes NAME.safetensors into /models")
    for flag in ("--data", "--checkpoint-dir"):
        check(flag in argv, f"Job passes {flag}")

# MPIJob (Kubeflow MPI Operator v2): a launcher running charrnn-mpirun and
# workers running sshd, on the training image; the workers (rank 0 among them)
# share the training volume and publish into the models volume.
mpijobs = [d for (k, _), d in docs.items() if k == "MPIJob"]
check(len(mpijobs) == 1, "an MPIJob exists (train-mpijob.yaml)")
for mj in mpijobs:
    spec = mj.get("spec", {})
    check(mj.get("apiVersion") == "kubeflow.org/v2beta1", "MPIJob is kubeflow.org/v2beta1")
    check(spec.get("mpiImplementation", "OpenMPI") == "OpenMPI", "MPIJob runs Open MPI")
    reps = spec.get("mpiReplicaSpecs", {})
    check(set(reps) == {"Launcher", "Worker"}, "MPIJob has a Launcher and Workers")
    launcher, worker = reps.get("Launcher", {}), reps.get("Worker", {})
    check(launcher.get("replicas") == 1, "MPIJob: one launcher")
    nworkers = worker.get("replicas", 0)
    check(nworkers >= 2, "MPIJob: at least two workers")
    lpod = launcher.get("template", {}).get("spec", {"containers": [{}]})
    wpod = worker.get("template", {}).get("spec", {"containers": [{}]})
    lmain = check_pod(lpod, "MPIJob launcher", want_models_rw=None, image="charrnn-train")
    wmain = check_pod(wpod, "MPIJob worker", want_models_rw=True, image="charrnn-train")
    home = "/home/charrnn"
    check(spec.get("sshAuthMountPath") == home + "/.ssh", f"MPIJob: ssh keys in {home}/.ssh (the image's user)")
    wcmd = (wmain.get("command") or []) + (wmain.get("args") or [])
    check(wcmd[:1] == ["/usr/sbin/sshd"] and "/etc/charrnn/sshd_config" in wcmd,
          "MPIJob worker runs sshd with the image's unprivileged config")
    argv = (lmain.get("command") or []) + (lmain.get("args") or [])
    check(argv[:1] == ["charrnn-mpirun"], "MPIJob launcher runs charrnn-mpirun (SIGTERM stops cleanly)")
    np_ = argv[argv.index("-np") + 1] if "-np" in argv else None
    check(np_ == str(nworkers * spec.get("slotsPerWorker", 1)), "MPIJob: -np = workers x slotsPerWorker")
    train = argv[argv.index("charrnn-train"):] if "charrnn-train" in argv else []
    check(bool(train), "MPIJob launcher starts charrnn-train")
    for flag in ("--data", "--checkpoint-dir", "--threads", "--publish"):
        check(flag in train, f"MPIJob passes {flag}")

    def value(flag):
        return train[train.index(flag) + 1] if flag in train else ""
    check(re.fullmatch(r"/models/[A-Za-z0-9._-]+\.safetensors", value("--publish")) is not None,
          "MPIJob publishes NAME.safetensors into /models")
    threads = int(value("--threads") or 0)
    check(int(value("--batch-size") or 50) >= int(np_ or 0) * threads, "MPIJob: batch size >= ranks x threads")
    cpu = str(wmain.get("resources", {}).get("limits", {}).get("cpu", ""))
    check(cpu.isdigit() and int(cpu) >= threads, "MPIJob worker: CPU limit covers --threads")
    wvols = {v["name"]: v for v in wpod.get("volumes", [])}
    lvols = {v["name"]: v for v in lpod.get("volumes", [])}

    def claim(vols, path, mounts):
        names = [m["name"] for m in mounts if m.get("mountPath") == path]
        return vols.get(names[0], {}).get("persistentVolumeClaim", {}).get("claimName") if names else None
    shared = claim(wvols, "/train", wmain.get("volumeMounts", []))
    check(shared is not None and shared == claim(lvols, "/train", lmain.get("volumeMounts", [])),
          "MPIJob: launcher and workers share the /train claim")
    check(value("--data").startswith("/train/") and value("--checkpoint-dir").startswith("/train/"),
          "MPIJob: data and checkpoints on the shared /train volume")
    check("ReadWriteMany" in pvcs.get(shared, {}).get("spec", {}).get("accessModes", []),
          "MPIJob: the shared training claim is ReadWriteMany (every rank reads the data)")

# ---- Slurm ---------------------------------------------------------------------
with open(os.path.join(SRC, "deploy", "slurm", "charrnn-train.sbatch"), encoding="utf-8") as f:
    sbatch = f.read()
directives = dict(re.findall(r"^#SBATCH --([a-z-]+)=(\S+)", sbatch, re.M))
check(sbatch.startswith("#!/bin/bash"), "Slurm script: a bash script")
check(directives.get("ntasks-per-node") == "1" and "cpus-per-task" in directives,
      "Slurm script: one rank per node, its cores as --cpus-per-task")
check(re.search(r"USR1@\d+", directives.get("signal", "")) is not None,
      "Slurm script: SIGUSR1 before the time limit (a clean stop with a checkpoint)")
check(re.search(r"^srun .*--mpi=pmix.* charrnn-train", sbatch, re.M) is not None,
      "Slurm script: srun --mpi=pmix starts charrnn-train")
check('--threads "${SLURM_CPUS_PER_TASK' in sbatch, "Slurm script: --threads from --cpus-per-task")

# ---- compose --------------------------------------------------------------------
compose = load_all(os.path.join(SRC, "deploy", "docker-compose.yml"))[0]
services = compose.get("services", {})
check({"serve", "train"} <= set(services), "compose has serve and train")
sv, tr = services.get("serve", {}), services.get("train", {})
check(any(str(p).endswith(":8080") for p in sv.get("ports", [])), "compose publishes 8080")
check(any(str(v).startswith("models:/models") for v in sv.get("volumes", [])), "compose serve mounts models")
check(any(str(v) == "models:/models" for v in tr.get("volumes", [])), "compose train mounts models writable")
cmd = tr.get("command", [])
check(cmd[:1] == ["charrnn-train"] and "--publish" in cmd
      and str(cmd[cmd.index("--publish") + 1]).startswith("/models/"), "compose train publishes into /models")
check("train" in tr.get("profiles", []), "compose trainer does not start on `up`")
check("models" in (compose.get("volumes") or {}), "compose declares the models volume")

# ---- Dockerfile -------------------------------------------------------------------
with open(os.path.join(SRC, "Dockerfile"), encoding="utf-8") as f:
    lines = []
    for line in f.read().replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line.strip())
instr = [(ln.split()[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]
froms = [a for i, a in instr if i == "FROM"]
check(len(froms) == 3 and all(a.split()[0] == "debian:bookworm-slim" for a in froms),
      "Dockerfile: three stages (build, train, the serving runtime), all debian:bookworm-slim")
starts = [k for k, (i, _) in enumerate(instr) if i == "FROM"]
stages = {a.split()[-1] if " AS " in a.upper() else "": instr[b:e]
          for a, b, e in zip(froms, starts, starts[1:] + [len(instr)])}
train_stage = stages.get("train", [])
check(bool(train_stage), "Dockerfile: a stage named train (docker build --target train)")
train_runs = " ".join(a for i, a in train_stage if i == "RUN")
check("libopenmpi3" in train_runs and "openmpi-bin" in train_runs and "openssh-server" in train_runs,
      "Dockerfile train: Open MPI runtime, mpirun and sshd")
check(not any(p in train_runs for p in ("-dev", "gcc", "meson")), "Dockerfile train: no -dev packages or compilers")
tuser = ([a for i, a in train_stage if i == "USER"] or ["root"])[-1]
check(tuser.split(":")[0] == str(UID), f"Dockerfile train: numeric non-root USER {UID}")
check(any("charrnn-mpirun" in a for i, a in train_stage if i == "COPY"), "Dockerfile train: charrnn-mpirun")
check("/home/charrnn" in train_runs, "Dockerfile train: the user's home holds ~/.ssh for the MPI Operator")
runtime = instr[[k for k, (i, _) in enumerate(instr) if i == "FROM"][-1]:]
rt = {}
for i, a in runtime:
    rt.setdefault(i, []).append(a)
check(not any("-dev" in a or "gcc" in a or "meson" in a for a in rt.get("RUN", [])),
      "Dockerfile: runtime stage installs no -dev packages or compilers")
check(not any("mpi" in a for a in rt.get("RUN", [])), "Dockerfile: the serving image has no MPI runtime")
user = (rt.get("USER") or ["root"])[-1]
check(re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user) is not None and user.split(":")[0] == str(UID),
      f"Dockerfile: numeric non-root USER {UID}")
check(any("8080" in a for a in rt.get("EXPOSE", [])), "Dockerfile: EXPOSE 8080")
check(any("/models" in a for a in rt.get("VOLUME", [])), "Dockerfile: VOLUME /models")
check(bool(rt.get("HEALTHCHECK")), "Dockerfile: HEALTHCHECK")
envs = " ".join(rt.get("ENV", []))
check("CHARRNN_LISTEN=0.0.0.0:8080" in envs and "CHARRNN_MODELS=/models" in envs,
      "Dockerfile: CHARRNN_LISTEN=0.0.0.0:8080, CHARRNN_MODELS=/models")
model_copies = [a for a in rt.get("COPY", []) if "deploy/models" in a]
check(len(model_copies) == 1 and "deploy/models/shakespeare.safetensors /models/" in model_copies[0],
      "Dockerfile: only the default model, deploy/models/shakespeare.safetensors, baked into /models")
build = " ".join(a for i, a in instr[:len(instr) - len(runtime)] if i == "RUN")
check("-Dtests=false" in build and "-Dnative=false" in build and "release" in build,
      "Dockerfile: release build, -Dtests=false -Dnative=false")
check("-Dmpi=disabled" in build and "-Dmpi=enabled" in build,
      "Dockerfile: serving binaries without MPI, the training image's charrnn-train with it")
with open(os.path.join(SRC, ".dockerignore"), encoding="utf-8") as f:
    ignored = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
check(".git" in ignored and any(p.startswith("build") for p in ignored), ".dockerignore excludes .git and build dirs")


def dockerignore_regex(pattern):
    """A .dockerignore pattern as a regex over context-relative paths, with
    Docker's rules for what this file uses: '*' and '?' stay within one path
    element, '**' spans any number of them."""
    out, i, p = "", 0, pattern.strip().lstrip("/").rstrip("/")
    while i < len(p):
        if p.startswith("**", i):
            out, i = out + ".*", i + 2
        elif p[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif p[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(p[i]), i + 1
    return re.compile(out + r"\Z")


def in_build_context(path):
    """Whether path reaches the build: the last pattern that matches it or
    one of its parent directories decides ('!' patterns re-include)."""
    with open(os.path.join(SRC, ".dockerignore"), encoding="utf-8") as f:
        pats = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    kept = True
    for pat in pats:
        neg = pat.startswith("!")
        rx = dockerignore_regex(pat[1:] if neg else pat)
        if any(rx.match(p) for p in prefixes):
            kept = neg
    return kept


for path, want in (("deploy/models/shakespeare.safetensors", True),
                   ("deploy/models/mine.safetensors", False),
                   ("deploy/models/sub/other.safetensors", False),
                   ("deploy/docker/healthcheck.sh", True), ("deploy/mpi/sshd_config", True),
                   ("server/store.c", True), ("tests/server/run_e2e.py", False),
                   (".git/HEAD", False), ("build/cli/charrnn-train", False)):
    check(in_build_context(path) == want,
          f".dockerignore: {path} {'reaches' if want else 'stays out of'} the build context")

print(f"{passes} passed, {failures} failed")
sys.exit(min(failures, 76))

#!/usr/bin/python3
"""Static checks of the deployment recipes: the Kubernetes manifests, the
compose file and the Dockerfile agree with each other and with the daemon.

    check_deploy.py SOURCE_ROOT

Each check prints one line; the exit status is the number of failures
(77, meson's "skipped", when PyYAML is missing).
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed")
    sys.exit(77)

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
    if fn in ("kustomization.yaml", "train-job.yaml"):
        continue
    check(fn in listed, f"kustomization.yaml lists {fn}")
for fn in listed:
    check(fn in files, f"kustomization resource {fn} exists")

pvcs = {d["metadata"]["name"]: d for d in one("PersistentVolumeClaim")}
check("charrnn-models" in pvcs, "the models PersistentVolumeClaim charrnn-models exists")
models_pvc = pvcs.get("charrnn-models", {"spec": {}})
check("ReadWriteMany" in models_pvc["spec"].get("accessModes", []),
      "charrnn-models is ReadWriteMany (replicas on several nodes, a Job publishing)")


def check_pod(pod, what, want_models_rw):
    """Security context, resources, and the models volume of a pod template spec."""
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{what}: pod runAsNonRoot")
    check(psc.get("runAsUser") == UID and psc.get("fsGroup") == UID, f"{what}: runs as uid {UID}, fsGroup {UID}")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: seccomp RuntimeDefault")
    check(pod.get("automountServiceAccountToken") is False, f"{what}: no service account token")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    models_vol = [n for n, v in volumes.items()
                  if v.get("persistentVolumeClaim", {}).get("claimName") == "charrnn-models"]
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
        check(c.get("image", "").split(":")[0].split("/")[-1] == "charrnn", f"{cw}: runs the charrnn image")
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
check(len(froms) == 2 and all(a.split()[0] == "debian:bookworm-slim" for a in froms),
      "Dockerfile: two stages, both debian:bookworm-slim")
runtime = instr[[k for k, (i, _) in enumerate(instr) if i == "FROM"][-1]:]
rt = {}
for i, a in runtime:
    rt.setdefault(i, []).append(a)
check(not any("-dev" in a or "gcc" in a or "meson" in a for a in rt.get("RUN", [])),
      "Dockerfile: runtime stage installs no -dev packages or compilers")
user = (rt.get("USER") or ["root"])[-1]
check(re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user) is not None and user.split(":")[0] == str(UID),
      f"Dockerfile: numeric non-root USER {UID}")
check(any("8080" in a for a in rt.get("EXPOSE", [])), "Dockerfile: EXPOSE 8080")
check(any("/models" in a for a in rt.get("VOLUME", [])), "Dockerfile: VOLUME /models")
check(bool(rt.get("HEALTHCHECK")), "Dockerfile: HEALTHCHECK")
envs = " ".join(rt.get("ENV", []))
check("CHARRNN_LISTEN=0.0.0.0:8080" in envs and "CHARRNN_MODELS=/models" in envs,
      "Dockerfile: CHARRNN_LISTEN=0.0.0.0:8080, CHARRNN_MODELS=/models")
check(any("deploy/models" in a and "/models" in a for a in rt.get("COPY", [])),
      "Dockerfile: default model baked into /models")
build = " ".join(a for i, a in instr[:len(instr) - len(runtime)] if i == "RUN")
check("-Dtests=false" in build and "-Dnative=false" in build and "release" in build,
      "Dockerfile: release build, -Dtests=false -Dnative=false")
with open(os.path.join(SRC, ".dockerignore"), encoding="utf-8") as f:
    ignored = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
check(".git" in ignored and any(p.startswith("build") for p in ignored), ".dockerignore excludes .git and build dirs")

print(f"{passes} passed, {failures} failed")
sys.exit(min(failures, 76))

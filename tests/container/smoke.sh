#!/bin/bash
# Container smoke test, run by CI (too slow for `meson test`).
#
# Builds the image the way a user would, with no registry: the base image
# debian:bookworm-slim is made offline with debootstrap from the Debian mirror
# apt already uses, then `podman build` builds the Dockerfile. Running a
# container needs a cgroup setup this kernel lacks, so the image is mounted
# (podman image mount) and the daemon is started inside it with chroot as the
# image's own non-root user, with the image's own environment and entrypoint;
# then /healthz, /readyz, POST /sample and the image's HEALTHCHECK are checked
# (also with --listen on the command line),
# and a charrnn-train run inside the image publishes a model into the models
# volume that the running daemon must pick up.
#
# Usage: tests/container/smoke.sh [--keep-image] [--rebuild-base]
# Env:   CHARRNN_IMAGE (default localhost/charrnn:smoke), CHARRNN_DEBIAN_MIRROR,
#        CHARRNN_SMOKE_PORT (default 18080), CHARRNN_BUILD_DIR (a build tree whose
#        charrnn-train makes a stand-in model when deploy/models has none).
# Needs root, podman, debootstrap, curl, python3 (deploy/install-deps.sh --test).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
image=${CHARRNN_IMAGE:-localhost/charrnn:smoke}
base=docker.io/library/debian:bookworm-slim
port=${CHARRNN_SMOKE_PORT:-18080}
keep_image=0
rebuild_base=0
for arg in "$@"; do
  case $arg in
    --keep-image) keep_image=1 ;;
    --rebuild-base) rebuild_base=1 ;;
    *) echo "usage: $0 [--keep-image] [--rebuild-base]" >&2; exit 2 ;;
  esac
done

t0=$SECONDS
step() { printf '== %s (+%ds)\n' "$*" $((SECONDS - t0)); }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (podman image mount, chroot)"
for tool in podman debootstrap curl python3 unshare chroot; do
  command -v "$tool" >/dev/null || fail "$tool not found: run deploy/install-deps.sh --test"
done

work=$(mktemp -d /tmp/charrnn-smoke.XXXXXX)
daemon_pid=
mnt=
cleanup() {
  set +e
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  [ -n "$mnt" ] && podman image unmount --force "$image" >/dev/null 2>&1
  if [ $keep_image = 0 ] && [ -n "${built:-}" ]; then
    podman rmi -f "$image" >/dev/null 2>&1
  fi
  # Untagged build-stage images (about 450 MB each) would pile up run after run.
  [ -n "${built:-}" ] && podman image prune -f --filter label=org.charrnn.stage=build >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. base image: debootstrap minbase, imported as debian:bookworm-slim ----
# The mirror is the one apt already uses (deb822 .sources or one-line lists).
apt_uri() { # $1 = suite; prints the first URI serving it
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v suite="$1" '
      /^[[:space:]]*$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = ""; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (ok && uri != "") print uri }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v suite="$1" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
                        if ($(i + 1) == suite) print $i }' || true
}
mirror=${CHARRNN_DEBIAN_MIRROR:-$(apt_uri bookworm | sed -n 1p)}
security=$(apt_uri bookworm-security | sed -n 1p)
[ -n "$mirror" ] || fail "no Debian mirror for bookworm in /etc/apt (set CHARRNN_DEBIAN_MIRROR)"

if [ $rebuild_base = 1 ] || ! podman image exists "$base"; then
  step "debootstrap --variant=minbase bookworm from $mirror"
  rootfs=$work/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  # Like the official image: apt sources in deb822 form with updates and
  # security, no package cache, no recommends.
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$mirror"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$security" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$security"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/99norecommends"
  # The slim variant's settings: no documentation, manuals or translations,
  # and apt keeps no downloaded packages.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/lintian/*
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  step "podman import -> $base"
  tar --numeric-owner -C "$rootfs" -c . |
    podman import --quiet --change 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
else
  step "base image $base cached"
fi

# --- 2. build context: the tree, with a default model -------------------------
# The image bakes deploy/models/*.safetensors in. A fresh tree without the
# committed default model gets a tiny one trained here (from README-like text),
# in a copy of the context so the work tree is left alone.
context=$src
if ! ls "$src"/deploy/models/*.safetensors >/dev/null 2>&1; then
  step "no deploy/models/*.safetensors: training a tiny stand-in model"
  trainer=
  for b in "${CHARRNN_BUILD_DIR:-$src/build}"/cli/charrnn-train "$src"/builddir/cli/charrnn-train; do
    [ -x "$b" ] && trainer=$b && break
  done
  [ -n "$trainer" ] || fail "no deploy/models/*.safetensors and no built charrnn-train to make one"
  context=$work/context
  mkdir -p "$context"
  tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./builddir --exclude=node_modules -c . |
    tar -C "$context" -x
  mkdir -p "$context/deploy/models"
  data=$src/README.md
  [ -s "$data" ] || data=$src/deploy/README.md
  "$trainer" --data "$data" --checkpoint-dir "$work/ckpt" --rnn-size 32 --num-layers 1 \
    --seq-length 20 --batch-size 4 --max-iters 50 \
    --publish "$context/deploy/models/shakespeare.safetensors" >"$work/train.log" 2>&1 ||
    { tail -n 20 "$work/train.log" >&2; fail "training the stand-in model"; }
fi

# --- 3. podman build ------------------------------------------------------------
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
step "podman build -t $image"
built=1
podman build --pull=never --isolation chroot --format docker -t "$image" -f "$src/Dockerfile" "$context" \
  >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "podman build"; }
step "image built: $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MiB", $1/1048576}')"

# --- 4. what the image says about itself ----------------------------------------
inspect() { podman image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
healthcheck=$(inspect '{{json .Config.Healthcheck}}')
ports=$(inspect '{{json .Config.ExposedPorts}}')
volumes=$(inspect '{{json .Config.Volumes}}')
echo "user=$user entrypoint=$entrypoint ports=$ports volumes=$volumes"
echo "healthcheck=$healthcheck"
case $user in ''|0|0:*|root|root:*) fail "image runs as root (User=$user)" ;; esac
case $user in *[!0-9:]*) fail "image user must be numeric uid:gid for runAsNonRoot (User=$user)" ;; esac
uid=${user%%:*}
gid=${user#*:}; [ "$gid" = "$user" ] && gid=$uid
[[ $ports == *'"8080/tcp"'* ]] || fail "8080/tcp not exposed"
[[ $volumes == *'"/models"'* ]] || fail "/models is not a volume"
[[ $healthcheck == *charrnn-healthcheck* ]] || fail "no HEALTHCHECK"
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
printf '%s\n' "${image_env[@]}" | grep -qx 'CHARRNN_LISTEN=0.0.0.0:8080' || fail "CHARRNN_LISTEN default"
printf '%s\n' "${image_env[@]}" | grep -qx 'CHARRNN_MODELS=/models' || fail "CHARRNN_MODELS default"
mapfile -t entry < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t cmd < <(inspect '{{range .Config.Cmd}}{{println .}}{{end}}' | sed '/^$/d')

mnt=$(podman image mount "$image")
step "image mounted at $mnt"
for b in charrnn-serve charrnn-train charrnn-sample charrnn-convert charrnn-healthcheck; do
  [ -x "$mnt/usr/local/bin/$b" ] || fail "/usr/local/bin/$b missing from the image"
done
[ "$(ls "$mnt"/models)" = shakespeare.safetensors ] ||
  fail "/models must hold the default model only: $(ls "$mnt"/models | tr '\n' ' ')"
# Runtime stage carries no compiler and no -dev packages.
[ ! -e "$mnt/usr/bin/gcc" ] && [ ! -e "$mnt/usr/include/cjson" ] || fail "build tools leaked into the runtime image"

# in_image [NAME=VALUE...] ARG...: `podman run IMAGE ARG...` without a container
# runtime, by deploy/docker/run-without-cgroups.sh (the documented fallback): the
# image's entrypoint as the image's user, with the image's environment, a
# writable /tmp and a writable /models volume seeded from the image (as Docker
# does for a new named volume). The image's root stays read-only.
volume=$work/models
mkdir -p "$volume" "$work/tmp"
cp -a "$mnt"/models/. "$volume"/
chown -R "$uid:$gid" "$volume"
chmod 1777 "$work/tmp"
in_image_argv() { # sets argv to the command line running "$@" in the image
  local envs=()
  while [ $# -gt 0 ] && [[ $1 == [A-Z]*=* ]]; do envs+=(--env "$1"); shift; done
  argv=("$src/deploy/docker/run-without-cgroups.sh" --models "$volume" --tmp "$work/tmp"
    --env "CHARRNN_LISTEN=127.0.0.1:$port" ${envs[@]+"${envs[@]}"} "$image" "$@")
}
in_image() { in_image_argv "$@"; "${argv[@]}"; }

step "charrnn-sample and charrnn-train run inside the image"
in_image charrnn-train --help >"$work/train-help.txt" 2>&1 || { cat "$work/train-help.txt" >&2; fail "charrnn-train --help"; }
in_image charrnn-sample --help >"$work/sample-help.txt" 2>&1 || { cat "$work/sample-help.txt" >&2; fail "charrnn-sample --help"; }

# --- 5. the daemon, started by the image's own entrypoint --------------------------
step "starting the daemon: ${entry[*]} ${cmd[*]}"
in_image_argv # no arguments: the entrypoint with the image's CMD
# Every link (the script, unshare, sh, chroot, env, entrypoint) execs the next: $! is the daemon.
"${argv[@]}" >"$work/serve.log" 2>&1 &
daemon_pid=$!
url=http://127.0.0.1:$port
ready=0
for _ in $(seq 1 100); do
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "daemon exited"; }
  if curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ $ready = 1 ] || { cat "$work/serve.log" >&2; fail "/readyz not ready after 20 s"; }
step "daemon ready"
curl -fsS "$url/healthz" >/dev/null || fail "/healthz"
in_image charrnn-healthcheck || fail "the image's HEALTHCHECK command failed against a healthy daemon"

# The README's one-liner exactly (curl -d's default content type), then as JSON.
body='{"prime":"ROMEO:","length":300,"temperature":0.8,"seed":1}'
curl -fsS -X POST "$url/sample" -d "$body" >"$work/sample1.json" ||
  { cat "$work/serve.log" >&2; fail "POST /sample (the README's command)"; }
curl -fsS -X POST -H 'Content-Type: application/json' -d "$body" "$url/sample" >"$work/sample2.json" ||
  fail "second POST /sample"
curl -fsS -o "$work/index.html" "$url/" && grep -qi '<html' "$work/index.html" || fail "GET / (the playground page)"
python3 - "$work/sample1.json" "$work/sample2.json" <<'PY' || fail "/sample response"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["seed"] == 1, a
assert len(a["text"]) == 300, len(a["text"])
assert a["text"] == b["text"], "same seed, different text"
print("sample:", repr(a["text"][:80]))
PY
# The image is a portable build (-Dnative=false); the host's build tree is native. The
# same request must give the same text from both (sampling is a pure function of the
# model bytes and the request, whatever the build or the CPU features it uses).
host_sample=
for b in "${CHARRNN_BUILD_DIR:-$src/build}"/cli/charrnn-sample "$src"/builddir/cli/charrnn-sample; do
  [ -x "$b" ] && host_sample=$b && break
done
if [ -n "$host_sample" ]; then
  "$host_sample" --checkpoint "$context/deploy/models/shakespeare.safetensors" --prime ROMEO: \
    --length 300 --temperature 0.8 --seed 1 >"$work/host.txt" || fail "host charrnn-sample"
  python3 - "$work/sample1.json" "$work/host.txt" <<'PY' || fail "the image and the host build disagree"
import json, sys
a = json.load(open(sys.argv[1]))
host = open(sys.argv[2], encoding="utf-8").read()
assert host == "ROMEO:" + a["text"], (host[:80], a["text"][:80])
print("image text == host build's charrnn-sample text")
PY
else
  step "no host build tree: skipping the image-vs-host text comparison"
fi
# Every kernel build inside the image gives the daemon's text too (plain C included).
for k in avx512 avx2 portable; do
  in_image CHARRNN_KERNEL=$k charrnn-sample --checkpoint /models/shakespeare.safetensors \
    --prime ROMEO: --length 300 --temperature 0.8 --seed 1 >"$work/image-$k.txt" 2>"$work/image-$k.err" ||
    { grep -q "needs instructions this CPU lacks" "$work/image-$k.err" && continue
      cat "$work/image-$k.err" >&2; fail "charrnn-sample in the image, CHARRNN_KERNEL=$k"; }
  python3 - "$work/sample1.json" "$work/image-$k.txt" "$k" <<'PY' || fail "kernel $k in the image disagrees"
import json, sys
a = json.load(open(sys.argv[1]))
assert open(sys.argv[2], encoding="utf-8").read() == "ROMEO:" + a["text"]
print("image, kernel %s: same text as the daemon" % sys.argv[3])
PY
done

# --- 6. a training job inside the image publishes into the shared volume ---------
step "charrnn-train inside the image publishes /models/smoke.safetensors"
printf 'To be, or not to be, that is the question:\nWhether tis nobler in the mind to suffer\n%.0s' \
  $(seq 1 40) >"$work/tmp/input.txt"
in_image charrnn-train --data /tmp/input.txt --checkpoint-dir /tmp/ckpt --rnn-size 32 --num-layers 1 \
  --seq-length 20 --batch-size 4 --max-iters 30 --publish /models/smoke.safetensors \
  >"$work/train.log" 2>&1 || { tail -n 20 "$work/train.log" >&2; fail "charrnn-train in the image"; }
[ -s "$volume/smoke.safetensors" ] || fail "charrnn-train published nothing"
found=0
for i in $(seq 1 100); do
  [ "$i" = 50 ] && kill -HUP "$daemon_pid" 2>/dev/null  # in case the store only polls slowly
  if curl -fsS "$url/models/smoke" >/dev/null 2>&1; then found=1; break; fi
  sleep 0.2
done
[ $found = 1 ] || { tail -n 20 "$work/serve.log" >&2; fail "the daemon did not pick up the published model"; }
curl -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"model":"smoke","prime":"To be","length":50,"seed":7}' "$url/sample" >/dev/null ||
  fail "POST /sample on the freshly published model"

# --- 7. SIGTERM drains and exits 0 ---------------------------------------------------
step "SIGTERM"
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ $rc = 0 ] || { tail -n 20 "$work/serve.log" >&2; fail "daemon exited $rc on SIGTERM"; }

# --- 8. --listen on the command line: the HEALTHCHECK follows it ---------------------
# (the daemon writes the address it bound to CHARRNN_ADDRESS_FILE, which the check reads;
# in_image's CHARRNN_LISTEN still names the first port, where nothing listens now)
port2=$((port + 1))
step "the daemon with --listen 127.0.0.1:$port2: the HEALTHCHECK is healthy"
in_image_argv --listen "127.0.0.1:$port2"
"${argv[@]}" >"$work/serve2.log" 2>&1 &
daemon_pid=$!
healthy=0
for _ in $(seq 1 100); do
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/serve2.log" >&2; fail "daemon (--listen) exited"; }
  if in_image charrnn-healthcheck; then healthy=1; break; fi
  sleep 0.2
done
[ $healthy = 1 ] || { cat "$work/serve2.log" >&2; fail "HEALTHCHECK unhealthy with --listen 127.0.0.1:$port2"; }
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ $rc = 0 ] || fail "daemon (--listen) exited $rc on SIGTERM"

step "container smoke test passed"
echo "1 passed, 0 failed"

#!/bin/bash
# Boots systemd on a debootstrapped Debian 12 root, installs the units of
# deploy/systemd the way deploy/README.md says, and checks them for real:
# charrnn-serve starts under its sandbox (DynamicUser, ProtectSystem=strict,
# the system-call filter, MemoryDenyWriteExecute...), answers /readyz and
# POST /sample, reloads on `systemctl reload`, picks up a model that
# charrnn-train@NAME publishes, and stops cleanly (exit 0) on `systemctl stop`.
#
# No container runtime: systemd runs as PID 1 of a new PID and mount
# namespace (unshare), chrooted into the root, sharing the host's network;
# the daemon listens on 127.0.0.1:CHARRNN_SYSTEMD_PORT (default 18090).
# Sandbox options this kernel cannot provide (probed with systemd-run, e.g.
# PrivateDevices/PrivateUsers where device nodes or user namespaces are not
# allowed) are switched off by a drop-in, and the script says which.
#
# Usage: tests/container/systemd.sh BUILD_DIR     (run by CI as root)
# The root is cached in /var/tmp/charrnn-systemd-root (--rebuild to remake it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:?usage: $0 BUILD_DIR [--rebuild]}
build=$(cd "$build" && pwd)
port=${CHARRNN_SYSTEMD_PORT:-18090}
cache=/var/tmp/charrnn-systemd-root
t0=$SECONDS
step() { printf '== %s (+%ds)\n' "$*" $((SECONDS - t0)); }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root"
for b in server/charrnn-serve cli/charrnn-train cli/charrnn-sample; do
  [ -x "$build/$b" ] || fail "$build/$b not built"
done
for tool in debootstrap unshare nsenter curl python3; do
  command -v "$tool" >/dev/null || fail "$tool not found: run deploy/install-deps.sh --test"
done

# --- the root: cached, then a fresh overlay-free copy per run --------------------
if [ "${2:-}" = --rebuild ] || [ ! -x "$cache/lib/systemd/systemd" ]; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | sed -n 1p)
  mirror=${CHARRNN_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
  step "debootstrap bookworm with systemd from $mirror"
  rm -rf "$cache.tmp"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,libmicrohttpd12,libcjson1 \
    bookworm "$cache.tmp" "$mirror" >/tmp/charrnn-systemd-debootstrap.log 2>&1 ||
    { tail -n 20 /tmp/charrnn-systemd-debootstrap.log >&2; fail debootstrap; }
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
root=$(mktemp -d /var/tmp/charrnn-systemd.XXXXXX)
pid=
cleanup() {
  set +e
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    nsenter -t "$pid" -m -p -r -w systemctl poweroff >/dev/null 2>&1
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -rf "$root"
}
trap cleanup EXIT
step "copying the root"
cp -a "$cache/." "$root/"

# --- install as deploy/README.md does ------------------------------------------------
install -m 0755 "$build/server/charrnn-serve" "$build/cli/charrnn-train" "$build/cli/charrnn-sample" \
  "$root/usr/local/bin/"
install -m 0644 "$src/deploy/systemd/charrnn.sysusers" "$root/usr/lib/sysusers.d/charrnn.conf"
install -m 0644 "$src/deploy/systemd/charrnn.tmpfiles" "$root/usr/lib/tmpfiles.d/charrnn.conf"
install -m 0644 "$src/deploy/systemd/charrnn-serve.service" "$src/deploy/systemd/charrnn-train@.service" \
  "$root/etc/systemd/system/"
ln -sf /etc/systemd/system/charrnn-serve.service "$root/etc/systemd/system/multi-user.target.wants/"
mkdir -p "$root/etc/charrnn" "$root/etc/systemd/system/charrnn-serve.service.d"
printf 'CHARRNN_LISTEN=127.0.0.1:%s\n' "$port" >"$root/etc/charrnn/serve.env"
printf 'CHARRNN_TRAIN_ARGS=--rnn-size 32 --num-layers 1 --seq-length 20 --batch-size 4 --max-iters 30 --eval-every 10\n' \
  >"$root/etc/charrnn/train-tiny.env"
# Services this test does not need, and that need more than the namespace has.
for u in systemd-timesyncd systemd-networkd systemd-resolved getty@tty1 console-getty; do
  ln -sf /dev/null "$root/etc/systemd/system/$u.service"
done

# --- boot ---------------------------------------------------------------------------
step "booting systemd in a PID + mount namespace"
unshare --pid --fork --mount --uts --ipc --propagation private /bin/sh -ec '
  r=$1
  mount --bind "$r" "$r"
  mount -t proc proc "$r/proc"
  mount --rbind /sys "$r/sys"
  mount -t tmpfs -o mode=755 tmpfs "$r/dev"
  for d in null zero full random urandom tty; do touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
  mkdir -p "$r/dev/pts" "$r/dev/shm"; mount -t tmpfs tmpfs "$r/dev/shm"
  mount -t tmpfs tmpfs "$r/run"
  mount -t tmpfs tmpfs "$r/tmp"
  exec chroot "$r" /usr/bin/env container=charrnn-test /lib/systemd/systemd --system --log-target=journal
' sh "$root" >/dev/null 2>&1 &
unshare_pid=$!
for _ in $(seq 1 50); do
  pid=$(pgrep -P "$unshare_pid" -x systemd || true)
  [ -n "$pid" ] && break
  sleep 0.2
done
[ -n "$pid" ] || fail "systemd did not start"
ns() { nsenter -t "$pid" -m -p -u -i -r -w "$@"; }
state=
for _ in $(seq 1 150); do
  state=$(ns systemctl is-system-running 2>/dev/null || true)
  case $state in running | degraded) break ;; esac
  sleep 0.2
done
step "systemd is $state"

# Sandbox options this kernel refuses even to /bin/true go into a drop-in.
off=
for opt in PrivateDevices PrivateUsers PrivateNetwork PrivateIPC ProtectKernelTunables ProtectKernelModules \
  ProtectKernelLogs ProtectControlGroups ProtectClock ProtectHostname ProtectProc=invisible DynamicUser \
  MemoryDenyWriteExecute RestrictNamespaces; do
  case $opt in *=*) prop=$opt ;; *) prop=$opt=yes ;; esac
  if ! ns systemd-run --quiet --wait --collect -p "$prop" /bin/true >/dev/null 2>&1; then
    off="$off ${opt%%=*}"
  fi
done
if [ -n "$off" ]; then
  echo "note: this kernel refuses$off to any unit; switched off for this test only"
  for unit in charrnn-serve.service charrnn-train@.service; do
    mkdir -p "$root/etc/systemd/system/$unit.d"
    {
      echo '[Service]'
      for o in $off; do
        case $o in ProtectProc) echo "$o=default" ;; *) echo "$o=no" ;; esac
      done
    } >"$root/etc/systemd/system/$unit.d/test-kernel.conf"
  done
fi

# A stand-in default model, owned as deploy/README.md installs it.
# (/tmp of the booted system is its own tmpfs: files go through /root.)
"$build/cli/charrnn-train" --data "$src/deploy/README.md" --checkpoint-dir "$root/root/ckpt" --rnn-size 32 \
  --num-layers 1 --seq-length 20 --batch-size 4 --max-iters 30 --quiet \
  --publish "$root/root/shakespeare.safetensors" >/dev/null
ns systemctl daemon-reload
ns systemd-sysusers
ns systemd-tmpfiles --create charrnn.conf
ns install -m 0644 -o charrnn -g charrnn /root/shakespeare.safetensors /var/lib/charrnn/models/
ns systemctl restart charrnn-serve

url=http://127.0.0.1:$port
ready=0
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ $ready = 1 ] || { ns systemctl status charrnn-serve --no-pager >&2; ns journalctl -u charrnn-serve --no-pager | tail >&2; fail "charrnn-serve not ready"; }
step "charrnn-serve ready under its sandbox"
user=$(ns systemctl show -p User --value charrnn-serve)
mainpid=$(ns systemctl show -p MainPID --value charrnn-serve)
uid=$(ns awk '/^Uid:/ { print $2 }' "/proc/$mainpid/status")
[ "$uid" != 0 ] || fail "charrnn-serve runs as root"
echo "charrnn-serve: DynamicUser ${user:-?}, uid $uid"
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"prime":"T","length":50,"seed":1}' "$url/sample" |
  python3 -c 'import json, sys; r = json.load(sys.stdin); assert len(r["text"]) == 50, r' || fail "POST /sample"
ns systemctl reload charrnn-serve || fail "systemctl reload"

step "charrnn-train@tiny publishes /var/lib/charrnn/models/tiny.safetensors"
ns install -d -o charrnn -g charrnn /var/lib/charrnn/train/tiny
cp "$src/deploy/README.md" "$root/var/lib/charrnn/train/tiny/input.txt"
ns chown charrnn:charrnn /var/lib/charrnn/train/tiny/input.txt
ns systemctl start --wait charrnn-train@tiny ||
  { ns journalctl -u charrnn-train@tiny --no-pager | tail >&2; fail "charrnn-train@tiny"; }
found=0
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null "$url/models/tiny" 2>/dev/null; then found=1; break; fi
  sleep 0.2
done
[ $found = 1 ] || fail "charrnn-serve did not pick up tiny.safetensors"

step "systemctl stop"
ns systemctl stop charrnn-serve
status=$(ns systemctl show -p ExecMainStatus --value charrnn-serve)
result=$(ns systemctl show -p Result --value charrnn-serve)
[ "$status" = 0 ] && [ "$result" = success ] || fail "charrnn-serve stopped with status $status ($result)"
score=$(ns systemd-analyze security charrnn-serve.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
step "systemd test passed (exposure of the unit as loaded: ${score:-?})"
echo "1 passed, 0 failed"

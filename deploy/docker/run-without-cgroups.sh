#!/bin/bash
# Runs the charrnn image where `podman run` / `docker run` cannot: on a kernel
# or in a sandbox without the cgroup setup a container runtime needs (crun:
# "setrlimit RLIMIT_NOFILE: Operation not permitted", "cgroups: ... not
# supported"). tests/container/smoke.sh runs the image this way.
#
#   run-without-cgroups.sh [--models DIR] [--tmp DIR] [--env NAME=VALUE]... IMAGE [ARG...]
#
# Like `podman run IMAGE ARG...`: the image's entrypoint with ARG... (or its
# CMD when there are none), as the image's user, with the image's environment
# (plus each --env). The image is mounted (podman image mount) and the command
# runs in it under chroot, in a private mount namespace that adds /dev, /proc,
# /sys, a writable /tmp (--tmp, default a new directory) and the /models
# volume (--models DIR; default a new directory seeded with the image's
# /models, as a new named volume is). The root file system is not copied.
# Unlike a container it shares the host's network (the daemon's --listen /
# CHARRNN_LISTEN address is on the host), PIDs and limits. Each link execs
# the next, so the process started is the command itself (signals reach it).
# Afterwards: `podman image unmount IMAGE`.
#
# Needs root, podman, unshare and chroot (deploy/install-deps.sh --test).
set -euo pipefail

usage() {
  sed -n '7p' "$0" | sed 's/^# *//; s/^/usage: /' >&2
  exit 2
}
models='' tmp='' extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --models) [ $# -ge 2 ] || usage; models=$2; shift 2 ;;
    --tmp) [ $# -ge 2 ] || usage; tmp=$2; shift 2 ;;
    --env) [ $# -ge 2 ] && [[ $2 == ?*=* ]] || usage; extra+=("$2"); shift 2 ;;
    -h | --help) usage ;;
    -*) echo "run-without-cgroups.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
image=$1
shift
[ "$(id -u)" = 0 ] || { echo "run-without-cgroups.sh: needs root (podman image mount, chroot)" >&2; exit 1; }

inspect() { podman image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
spec=${user:-0}
[[ $spec == *:* ]] || spec=$spec:$spec
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t entry < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
if [ $# -eq 0 ]; then
  mapfile -t args < <(inspect '{{range .Config.Cmd}}{{println .}}{{end}}' | sed '/^$/d')
else
  args=("$@")
fi
mnt=$(podman image mount "$image")

if [ -z "$tmp" ]; then
  tmp=$(mktemp -d /tmp/charrnn-tmp.XXXXXX)
  chmod 1777 "$tmp"
fi
if [ -z "$models" ]; then
  models=$(mktemp -d /tmp/charrnn-models.XXXXXX)
  cp -a "$mnt"/models/. "$models"/
  chown -R "$spec" "$models"
  echo "run-without-cgroups.sh: the /models volume is $models" >&2
fi

exec unshare --mount --propagation private -- /bin/sh -ec '
  mnt=$1 vol=$2 tmp=$3 spec=$4; shift 4
  mount --rbind /dev "$mnt/dev"
  mount --rbind /proc "$mnt/proc"
  mount --rbind /sys "$mnt/sys"
  mount --bind "$tmp" "$mnt/tmp"
  mount --bind "$vol" "$mnt/models"
  exec chroot --userspec="$spec" "$mnt" "$@"' sh "$mnt" "$models" "$tmp" "$spec" \
  /usr/bin/env -i "${image_env[@]}" "${extra[@]}" "${entry[@]}" "${args[@]}"

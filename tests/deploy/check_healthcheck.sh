#!/bin/bash
# The image's health check (deploy/docker/healthcheck.sh) follows the address
# the daemon actually bound, not only CHARRNN_LISTEN: a daemon started with
# --listen on another port (here port 0, a free one) and the image's
# CHARRNN_ADDRESS_FILE is healthy; once it stops, the check fails.
#
#   check_healthcheck.sh SOURCE_ROOT CHARRNN_SERVE
set -u
src=$1 serve=$2
check=$src/deploy/docker/healthcheck.sh
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# As in the image: CHARRNN_LISTEN names one port (here port 1, where nothing
# listens), the command line another.
export CHARRNN_LISTEN=127.0.0.1:1 CHARRNN_ADDRESS_FILE=$work/address
"$serve" --models "$src/deploy/models" --listen 127.0.0.1:0 >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/address" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; fail "the daemon exited"; }
  sleep 0.1
done
[ -s "$work/address" ] || fail "the daemon wrote no address file"
addr=$(cat "$work/address")
[[ $addr == 127.0.0.1:[1-9]* ]] && [ "$addr" != 127.0.0.1:1 ] || fail "address file: '$addr'"
bash "$check" || fail "health check of a daemon on $addr (--listen) failed"
echo "ok   the health check follows --listen ($addr)"

kill "$pid" && wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "daemon exit status $rc"
[ ! -e "$work/address" ] || fail "the address file outlived the daemon"
if bash "$check"; then fail "the health check passed with no daemon"; fi
echo "ok   no daemon: the health check fails, and the address file is gone"

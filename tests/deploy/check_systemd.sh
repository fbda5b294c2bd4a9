#!/bin/sh
# systemd-analyze verify of the units in deploy/systemd, and their sandbox's
# exposure score (systemd-analyze security --offline). Works without systemd
# running as PID 1. The units name /usr/local/bin/charrnn-*, which verify
# insists exist: copies of the units point at the build tree's binaries
# instead (or /bin/true when one is not built).
#
#   check_systemd.sh SOURCE_ROOT BUILD_ROOT [MAX_EXPOSURE]
# Fails without systemd-analyze (a skip would pass quietly).
set -eu
src=$1
build=$2
max=${3:-2}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze is missing (deploy/install-deps.sh --test)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin() { for d in server cli; do [ -x "$build/$d/$1" ] && { echo "$build/$d/$1"; return; }; done; echo /bin/true; }
subst="s#/usr/local/bin/charrnn-serve#$(bin charrnn-serve)#g; s#/usr/local/bin/charrnn-train#$(bin charrnn-train)#g"
sed "$subst" "$src/deploy/systemd/charrnn-serve.service" >"$tmp/charrnn-serve.service"
# A template is verified through an instance.
sed "$subst" "$src/deploy/systemd/charrnn-train@.service" >"$tmp/charrnn-train@.service"
cp "$tmp/charrnn-train@.service" "$tmp/charrnn-train@smoke.service"

pass=0 fail=0
for unit in charrnn-serve.service charrnn-train@smoke.service; do
  # Warnings about the unit (unknown keys, bad values) do not change the exit
  # status: any output naming it fails too.
  if out=$(systemd-analyze verify "$tmp/$unit" 2>&1) && ! printf '%s' "$out" | grep -q charrnn; then
    echo "ok   systemd-analyze verify $unit"; pass=$((pass + 1))
  else
    printf 'FAIL systemd-analyze verify %s\n%s\n' "$unit" "$out"; fail=$((fail + 1))
  fi
  score=$(systemd-analyze security --offline=true "$tmp/$unit" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -n "$score" ] && awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    echo "ok   $unit exposure $score <= $max"; pass=$((pass + 1))
  else
    echo "FAIL $unit exposure ${score:-?} > $max (systemd-analyze security --offline=true)"; fail=$((fail + 1))
  fi
done
# The unit's own settings.
for key in DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
  MemoryDenyWriteExecute=yes SystemCallFilter=@system-service RestrictAddressFamilies= \
  Environment=CHARRNN_MODELS=; do
  if grep -q "^$key" "$src/deploy/systemd/charrnn-serve.service"; then
    pass=$((pass + 1))
  else
    echo "FAIL charrnn-serve.service lacks $key"; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

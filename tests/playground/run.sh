#!/bin/bash
# Browser test of the playground page (GET /): trains a tiny model, starts the
# real daemon on a free loopback port, and drives the page in Debian's
# headless chromium with playwright-core (installed from npm into the build
# tree on first use): playground.test.js (Generate, Score),
# autocomplete.test.js (Autocomplete) and inside.test.js (Inside, POST /inspect).
# The screenshots are kept as test artifacts.
# usage: run.sh CHARRNN_SERVE CHARRNN_TRAIN OUTDIR
set -euo pipefail
serve=$1 train=$2 outdir=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$outdir"
command -v node >/dev/null || { echo "node is missing (deploy/install-deps.sh --test)"; exit 1; }
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is missing (deploy/install-deps.sh --test)"; exit 1; }
if [ ! -d "$outdir/node_modules/playwright-core" ]; then
  cp "$here/package.json" "$outdir/"
  (cd "$outdir" && npm install --no-audit --no-fund --silent >/dev/null)
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for i in $(seq 200); do echo "the quick brown fox jumps over the lazy dog $i times;"; done > "$work/data.txt"
mkdir "$work/models"
# 2x512: one stream makes some 5k characters/s, so the page's 10000 take about 2 s
# and arrive in many pieces (a 2x128 model finished in 0.1 s, sometimes in one read).
"$train" --data "$work/data.txt" --checkpoint-dir "$work/ck" --rnn-size 512 --num-layers 2 \
  --seq-length 20 --batch-size 8 --max-iters 20 --eval-every 20 --threads 1 --quiet \
  --publish "$work/models/tiny.safetensors"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# --worker-nice 0: this checks the page, not scheduling; on a CI host shared
# with other busy jobs (one cgroup for all), niced workers would yield to them
# and a 10000-character run could miss the page's 30 s wait.
"$serve" --listen "127.0.0.1:$port" --models "$work/models" --default-model tiny \
  --worker-nice 0 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
# The files run against the same daemon; any failing fails the test.
status=0
NODE_PATH="$outdir/node_modules" node "$here/playground.test.js" "http://127.0.0.1:$port" \
  "$outdir/playground.png" || status=1
NODE_PATH="$outdir/node_modules" node "$here/autocomplete.test.js" "http://127.0.0.1:$port" \
  "$outdir/playground-autocomplete.png" || status=1
NODE_PATH="$outdir/node_modules" node "$here/inside.test.js" "http://127.0.0.1:$port" \
  "$outdir/playground-inside.png" || status=1
# A second daemon that requires an API key: the page asks for it.
key=sk-playground-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
echo "browser:$key" > "$work/keys"
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$serve" --listen "127.0.0.1:$kport" --models "$work/models" --default-model tiny \
  --worker-nice 0 --api-key-file "$work/keys" 2>"$work/serve-keys.log" &
kpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$kport/readyz" >/dev/null && break; sleep 0.1; done
NODE_PATH="$outdir/node_modules" node "$here/keys.test.js" "http://127.0.0.1:$kport" "$key" ||
  status=1
kill "$kpid" 2>/dev/null || true
exit $status

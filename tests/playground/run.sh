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
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is missing (deploy/install-deps.sh --test)"; exit 1; }
. "$here/../lib/node_suite.sh"
npm_install playwright-core
# 2x512: one stream makes some 5k characters/s, so the page's 10000 take about 2 s
# and arrive in many pieces (a 2x128 model finished in 0.1 s, sometimes in one read).
"$train" --data "$work/data.txt" --checkpoint-dir "$work/ck" --rnn-size 512 --num-layers 2 \
  --seq-length 20 --batch-size 8 --max-iters 20 --eval-every 20 --threads 1 --quiet \
  --publish "$work/models/tiny.safetensors"
port=$(free_port)
# --worker-nice 0: this checks the page, not scheduling; on a CI host shared
# with other busy jobs (one cgroup for all), niced workers would yield to them
# and a 10000-character run could miss the page's 30 s wait.
"$serve" --listen "127.0.0.1:$port" --models "$work/models" --default-model tiny \
  --worker-nice 0 2>"$work/serve.log" &
pid=$!
wait_ready "$port"
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
kport=$(free_port)
"$serve" --listen "127.0.0.1:$kport" --models "$work/models" --default-model tiny \
  --worker-nice 0 --api-key-file "$work/keys" 2>"$work/serve-keys.log" &
kpid=$!
wait_ready "$kport"
NODE_PATH="$outdir/node_modules" node "$here/keys.test.js" "http://127.0.0.1:$kport" "$key" ||
  status=1
kill "$kpid" 2>/dev/null || true
exit $status

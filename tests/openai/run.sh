#!/bin/bash
# The official `openai` npm package (the version pinned in package.json,
# installed from npm into the build tree on first use, never committed)
# drives charrnn-serve's OpenAI-compatible API: trains a tiny model, starts
# the real daemon on a free loopback port and runs openai.test.js.
# usage: run.sh CHARRNN_SERVE CHARRNN_TRAIN OUTDIR
set -euo pipefail
serve=$1 train=$2 outdir=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$outdir"
command -v node >/dev/null || { echo "node is missing (deploy/install-deps.sh --test)"; exit 1; }
if ! cmp -s "$here/package.json" "$outdir/package.json" || [ ! -d "$outdir/node_modules/openai" ]; then
  cp "$here/package.json" "$outdir/"
  (cd "$outdir" && npm install --no-audit --no-fund --silent >/dev/null)
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for i in $(seq 200); do echo "the quick brown fox jumps over the lazy dog $i times;"; done > "$work/data.txt"
mkdir "$work/models"
"$train" --data "$work/data.txt" --checkpoint-dir "$work/ck" --rnn-size 64 --num-layers 2 \
  --seq-length 20 --batch-size 8 --max-iters 60 --eval-every 60 --threads 1 --quiet \
  --publish "$work/models/tiny.safetensors"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# with an API key: the client authenticates with apiKey (Authorization: Bearer)
key=sk-test-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
echo "openai-test:$key" > "$work/keys"
"$serve" --listen "127.0.0.1:$port" --models "$work/models" --api-key-file "$work/keys" \
  2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
CHARRNN_TEST_KEY="$key" NODE_PATH="$outdir/node_modules" node "$here/openai.test.js" \
  "http://127.0.0.1:$port"

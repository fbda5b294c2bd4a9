#!/bin/bash
# The official `openai` npm package (the version pinned in package.json,
# installed from npm into the build tree on first use, never committed)
# drives charrnn-serve's OpenAI-compatible API: trains a tiny model, starts
# the real daemon on a free loopback port and runs openai.test.js.
# usage: run.sh CHARRNN_SERVE CHARRNN_TRAIN OUTDIR
set -euo pipefail
serve=$1 train=$2 outdir=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/node_suite.sh"
npm_install openai
"$train" --data "$work/data.txt" --checkpoint-dir "$work/ck" --rnn-size 64 --num-layers 2 \
  --seq-length 20 --batch-size 8 --max-iters 60 --eval-every 60 --threads 1 --quiet \
  --publish "$work/models/tiny.safetensors"
port=$(free_port)
# with an API key: the client authenticates with apiKey (Authorization: Bearer)
key=sk-test-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
echo "openai-test:$key" > "$work/keys"
"$serve" --listen "127.0.0.1:$port" --models "$work/models" --api-key-file "$work/keys" \
  2>"$work/serve.log" &
pid=$!
wait_ready "$port"
CHARRNN_TEST_KEY="$key" NODE_PATH="$outdir/node_modules" node "$here/openai.test.js" \
  "http://127.0.0.1:$port"

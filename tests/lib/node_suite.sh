# Sourced by the suites that drive the daemon from node (tests/openai/run.sh,
# tests/playground/run.sh): the pinned npm packages, a scratch directory
# removed on exit (with the daemon started in it), the training text, free
# ports and the wait for readiness. Expects `set -euo pipefail`, $here (the
# suite's folder, holding package.json) and $outdir (the build folder).

# npm_install MODULE: installs $here/package.json's pins into $outdir, again
# whenever the pins change, never into the source tree.
npm_install() {
  command -v node >/dev/null || { echo "node is missing (deploy/install-deps.sh --test)"; exit 1; }
  mkdir -p "$outdir"
  if ! cmp -s "$here/package.json" "$outdir/package.json" || [ ! -d "$outdir/node_modules/$1" ]; then
    cp "$here/package.json" "$outdir/"
    (cd "$outdir" && npm install --no-audit --no-fund --silent >/dev/null)
  fi
}

# $work: a scratch folder with data.txt (a small text the test models learn)
# and an empty models/; removed on exit, with the daemon whose pid is in $pid.
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for i in $(seq 200); do echo "the quick brown fox jumps over the lazy dog $i times;"; done > "$work/data.txt"
mkdir "$work/models"

# free_port: a loopback port nothing listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready PORT: until the daemon on PORT answers /readyz (10 s at most).
wait_ready() {
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.1; done
}

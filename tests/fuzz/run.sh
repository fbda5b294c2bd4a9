#!/bin/bash
# Builds the libFuzzer harnesses, replays every committed input (the seed
# corpora and the regressions - inputs that once crashed a harness), then
# fuzzes each target for a bounded time, two at a time. Any crash, hang,
# sanitizer report or leak fails the run; the offending input is kept under
# OUTDIR/artifacts/<target>/ - fix the bug, then commit the input to
# tests/fuzz/regressions/<target>/.
# usage: tests/fuzz/run.sh OUTDIR [SECONDS_PER_TARGET]    (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
secs=${2:-60}
targets=(request completion vocab checkpoint http regex)
"$here/build.sh" "$out"

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
dict() { case $1 in vocab) echo "$here/dict/request.dict" ;; *) echo "$here/dict/$1.dict" ;; esac; }
# http: connection threads outlive an input, so per-input leak accounting is
# noise there; the daemon's leaks are checked at exit by the ASan test suite.
extra() { case $1 in http) echo "-detect_leaks=0 -close_fd_mask=2" ;; *) echo "" ;; esac; }

status=0
for t in "${targets[@]}"; do
  files=()
  for f in "$here/corpus/$t"/* "$here/regressions/$t"/*; do [ -f "$f" ] && files+=("$f"); done
  # shellcheck disable=SC2046
  if ! "$out/fuzz_$t" $(extra "$t") -timeout=20 "${files[@]}" >"$out/replay-$t.log" 2>&1; then
    echo "fuzz: $t: a committed input fails:"; tail -40 "$out/replay-$t.log"; status=1
  else
    echo "fuzz: $t: replayed ${#files[@]} committed inputs"
  fi
done
[ "$status" = 0 ] || exit 1

run() { # TARGET
  local t=$1 work="$out/work/$t" art="$out/artifacts/$t/"
  rm -rf "$work" && mkdir -p "$work" "$art"
  # shellcheck disable=SC2046
  "$out/fuzz_$t" $(extra "$t") -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
    -dict="$(dict "$t")" -artifact_prefix="$art" -print_final_stats=1 \
    "$work" "$here/corpus/$t" >"$out/fuzz-$t.log" 2>&1
}
pids=() names=()
for t in "${targets[@]}"; do
  run "$t" & pids+=($!) names+=("$t")
  if [ ${#pids[@]} -ge "${FUZZ_JOBS:-2}" ]; then
    for i in "${!pids[@]}"; do
      if ! wait "${pids[$i]}"; then echo "fuzz: ${names[$i]} FAILED:"; tail -60 "$out/fuzz-${names[$i]}.log"; status=1; fi
    done
    pids=() names=()
  fi
done
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then echo "fuzz: ${names[$i]} FAILED:"; tail -60 "$out/fuzz-${names[$i]}.log"; status=1; fi
done
for t in "${targets[@]}"; do
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz-$t.log")
  cov=$(grep -o 'cov: [0-9]*' "$out/fuzz-$t.log" | tail -1)
  echo "fuzz: $t: ${runs:-?} executions in ${secs} s, $cov, artifacts: $(ls "$out/artifacts/$t" | wc -l)"
done
exit $status

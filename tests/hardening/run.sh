#!/bin/bash
# Hardening checks, run by CI after `meson test -C build` (from the source
# root, as root, after deploy/install-deps.sh --test):
#
#   1. asan:   the whole meson test suite built with -fsanitize=address,undefined
#              (build-asan)
#   2. tsan:   the concurrency tests (server-e2e, engine, store) built with
#              -fsanitize=thread (build-tsan)
#   3. fuzz:   libFuzzer harnesses (tests/fuzz): committed inputs replayed, then
#              FUZZ_SECONDS (60) of fuzzing per target (build-fuzz, clang)
#   4. faults: SIGKILLed trainer, full disk, bad files under a serving daemon
#              (tests/hardening/faults.py, on the ASan build)
#   5. soak:   load and abuse against the daemon for SOAK_SECONDS (120)
#              (tests/hardening/soak.py, on the release build: build/, or
#              RELEASE_BUILD)
#
# Any sanitizer report fails the run: reports go to files (log_path) from every
# process, whatever the test that started it made of its exit status, and the
# run fails if any file appears.
# usage: tests/hardening/run.sh [STAGE...]     (default: all five, in order)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(asan tsan fuzz faults soak)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
SOAK_SECONDS=${SOAK_SECONDS:-120}
reports=$root/build-hardening-reports
summary=()

stage_start() { echo "=== hardening: $1"; t0=$(date +%s); }
stage_end() {
  summary+=("$(printf '%-7s %4d s' "$1" $(($(date +%s) - t0)))")
  echo "=== hardening: $1 passed in $(($(date +%s) - t0)) s"
}

# Fails (and prints them) if any sanitizer report file appeared in $1.
check_reports() {
  local n
  n=$(find "$1" -type f | wc -l)
  if [ "$n" -gt 0 ]; then
    echo "hardening: $n sanitizer report(s):"
    for f in "$1"/*; do echo "--- $f"; head -80 "$f"; done
    exit 1
  fi
}

setup() { # DIR SANITIZE
  if [ ! -f "$1/build.ninja" ]; then
    meson setup "$1" -Db_sanitize="$2" -Db_lundef=false >/dev/null
  fi
  ninja -C "$1" >/dev/null
}

asan_env() {
  rm -rf "$reports/$1" && mkdir -p "$reports/$1"
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/$1/asan"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$reports/$1/ubsan"
}

for stage in "${stages[@]}"; do
  case $stage in
    asan)
      stage_start asan
      setup build-asan address,undefined
      asan_env asan
      meson test -C build-asan --print-errorlogs --num-processes 2
      check_reports "$reports/asan"
      stage_end asan ;;
    tsan)
      stage_start tsan
      setup build-tsan thread
      rm -rf "$reports/tsan" && mkdir -p "$reports/tsan"
      # OpenBLAS's own thread pool synchronizes with spin-waits TSan cannot
      # see (false reports inside sgemm); our threads are what is under test,
      # so BLAS runs single-threaded here.
      export OPENBLAS_NUM_THREADS=1
      export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 log_path=$reports/tsan/tsan"
      # server-batch-invariance is left out: it is server-e2e's batch
      # invariance test run alone (server-e2e runs it too).
      meson test -C build-tsan --print-errorlogs --timeout-multiplier 3 server-e2e server-api-e2e \
        engine store
      unset OPENBLAS_NUM_THREADS TSAN_OPTIONS
      check_reports "$reports/tsan"
      stage_end tsan ;;
    fuzz)
      stage_start fuzz
      tests/fuzz/run.sh build-fuzz "$FUZZ_SECONDS"
      stage_end fuzz ;;
    faults)
      stage_start faults
      setup build-asan address,undefined
      asan_env faults
      python3 tests/hardening/faults.py build-asan
      check_reports "$reports/faults"
      unset ASAN_OPTIONS UBSAN_OPTIONS
      stage_end faults ;;
    soak)
      stage_start soak
      rel=${RELEASE_BUILD:-build}
      [ -f "$rel/build.ninja" ] || meson setup "$rel" >/dev/null
      ninja -C "$rel" >/dev/null
      python3 tests/hardening/soak.py "$rel" --seconds "$SOAK_SECONDS"
      stage_end soak ;;
    *) echo "usage: $0 [asan|tsan|fuzz|faults|soak]..." >&2; exit 2 ;;
  esac
done
echo "=== hardening: all passed"
printf '  %s\n' "${summary[@]}"

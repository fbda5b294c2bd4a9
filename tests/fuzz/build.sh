#!/bin/bash
# Builds the libFuzzer harnesses of tests/fuzz with clang: a meson build of
# this tree (OUTDIR/meson) with -Dfuzz=true, ASan and UBSan (UBSan reports are
# fatal). Our sources get coverage instrumentation; system libraries (cJSON,
# libmicrohttpd, OpenBLAS) are linked as they are. The harnesses are linked
# into OUTDIR/fuzz_<target>.
# usage: tests/fuzz/build.sh OUTDIR      (prints nothing but errors)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
b=$out/meson
targets=(request completion checkpoint vocab http regex)
opts=(--buildtype=debug -Dtests=false -Dfuzz=true -Dnative=false -Dwerror=false
  -Db_sanitize=address,undefined -Db_lundef=false
  "-Dc_args=-O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link")
log=$out/build.log
if [ -f "$b/build.ninja" ]; then
  meson configure "$b" "${opts[@]}" >"$log" 2>&1 || { cat "$log"; exit 1; }
else
  CC=${CC:-clang} meson setup "$b" "$src" "${opts[@]}" >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$b" -j "${JOBS:-2}" "${targets[@]/#/tests/fuzz/fuzz_}" >>"$log" 2>&1 || {
  tail -60 "$log"
  exit 1
}
for t in "${targets[@]}"; do ln -sf "meson/tests/fuzz/fuzz_$t" "$out/fuzz_$t"; done

#!/bin/bash
# Builds the libFuzzer harnesses of tests/fuzz with clang:
#   -fsanitize=fuzzer,address,undefined, UBSan reports are fatal.
# Our sources (model/ and the server/ files a harness needs) are compiled with
# coverage instrumentation; system libraries (cJSON, libmicrohttpd, OpenBLAS)
# are linked as they are.
# usage: tests/fuzz/build.sh OUTDIR      (prints nothing but errors)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out/obj"
CC=${CC:-clang}
pc() { pkg-config --cflags "$@"; }
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-std=gnu11 -g -O1 -fno-omit-frame-pointer $san -I$src/include -I$src/server
  $(pc openblas libcjson libmicrohttpd) -DCHARRNN_VERSION=\"fuzz\""
libs="$(pkg-config --libs openblas libcjson libmicrohttpd) -lpthread -lm"

# The playground page is embedded by a generated C file (as meson does).
$CC -O1 -o "$out/embed_file" "$src/server/embed_file.c"
"$out/embed_file" "$src/server/playground.html" "$out/obj/playground_html.c" charrnn_playground_html

# The source lists come from the meson files (model/ and model/math/), so a new
# source file cannot be missed here.
sources_of() { grep -o "'[a-z_0-9]*\.c'" "$1" | tr -d "'" | sed 's/\.c$//'; }
mapfile -t model < <(sources_of "$src/model/meson.build"; sources_of "$src/model/math/meson.build" | sed 's|^|math/|')
mapfile -t server < <(sources_of "$src/server/meson.build" | grep -vxE 'embed_file|main|playground_html')
objs=()
pids=()
compile() { # SRC OBJ [EXTRA_FLAGS]
  # shellcheck disable=SC2086
  $CC $cflags ${3:-} -fsanitize=fuzzer-no-link -c "$1" -o "$2" &
  pids+=($!)
  if [ ${#pids[@]} -ge "${JOBS:-2}" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
}
for f in "${model[@]}"; do
  # rowdot.c is the inference kernel, built per instruction set by meson; the
  # harnesses take only its plain C build (the dispatcher then offers only it).
  extra=""
  [ "$f" = math/rowdot ] && extra="-DRD_ISA=0 -DRD_NAME=charrnn_rd_rows_portable"
  compile "$src/model/$f.c" "$out/obj/m_${f//\//_}.o" "$extra"
  objs+=("$out/obj/m_${f//\//_}.o")
done
for f in "${server[@]}"; do compile "$src/server/$f.c" "$out/obj/s_$f.o"; done
compile "$out/obj/playground_html.c" "$out/obj/s_playground_html.o"
for p in "${pids[@]}"; do wait "$p"; done
rm -f "$out/obj/libcharrnn.a" "$out/obj/libserve.a"
ar rcs "$out/obj/libcharrnn.a" "${objs[@]}"
ar rcs "$out/obj/libserve.a" "$out"/obj/s_*.o

for t in request checkpoint vocab http; do
  # shellcheck disable=SC2086
  $CC $cflags -fsanitize=fuzzer -o "$out/fuzz_$t" "$src/tests/fuzz/fuzz_$t.c" \
    "$out/obj/libserve.a" "$out/obj/libcharrnn.a" $libs &
  pids=($!)
  wait "${pids[0]}"
done

#!/bin/sh
# Every C source and header of the tree is formatted by the checked-in
# .clang-format (clang-format 14, Debian 12). Prints the files that are not and
# the command that fixes them; exit status 1 then.
set -eu
top=${1:?usage: check_format.sh SRCROOT [CLANG_FORMAT]}
cf=${2:-clang-format}
cd "$top"
files=$(find include model cli server tests -name '*.c' -o -name '*.h' | sort)
# One call for the common case; file by file only to name the culprits.
# shellcheck disable=SC2086 # the file list is split on purpose (no spaces in our paths)
"$cf" --style=file --dry-run --Werror $files >/dev/null 2>&1 && exit 0
bad=
for f in $files; do
  if ! "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad="$bad $f"
  fi
done
if [ -n "$bad" ]; then
  echo "not formatted by .clang-format:$bad" >&2
  echo "fix: clang-format -i$bad" >&2
  exit 1
fi

#!/bin/sh
# The wrapper of every test (tests/meson.build's default test setup): runs the
# test and turns its exit 77, meson's "skipped", into a failure. A test that
# cannot run (a tool missing, a build without MPI) must not pass quietly:
# meson counts a skip as a success, and CI would stay green (docs/testing.md).
"$@"
rc=$?
if [ "$rc" -eq 77 ]; then
    echo "no_skip.sh: the test exited 77 (skipped); every test must run (docs/testing.md)" >&2
    exit 1
fi
exit "$rc"

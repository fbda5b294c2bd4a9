#!/bin/sh
# The test defined in place of one whose tool meson did not find: it fails,
# naming the tool, instead of the test disappearing from `meson test`.
#   missing_tool.sh TOOL
echo "$1 is missing: deploy/install-deps.sh --test installs it, then reconfigure (meson setup --reconfigure build)" >&2
exit 1

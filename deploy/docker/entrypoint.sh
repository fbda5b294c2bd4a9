#!/bin/sh
# Container entrypoint: `IMAGE` or `IMAGE --flag ...` runs the daemon with those
# flags; `IMAGE charrnn-train ...` (or any other command) runs that command.
# exec, so the daemon is PID 1 and receives SIGTERM directly.
set -e
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- charrnn-serve "$@"
fi
exec "$@"

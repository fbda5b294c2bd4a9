#!/bin/bash
# HEALTHCHECK for the image: GET /healthz on the daemon's port, with bash's
# /dev/tcp so the runtime image needs no curl. Exit 0 when healthy.
# The address is the one the daemon actually bound, from the file it writes
# (--address-file / CHARRNN_ADDRESS_FILE, set in the image), so --listen on
# the command line and port 0 are followed; without that file it is
# CHARRNN_LISTEN's.
set -u
listen=
file=${CHARRNN_ADDRESS_FILE:-}
if [ -n "$file" ] && [ -r "$file" ]; then
  IFS= read -r listen <"$file" || listen=
fi
[ -n "$listen" ] || listen=${CHARRNN_LISTEN:-0.0.0.0:8080}
port=${listen##*:}
host=${listen%:*}
case $host in
  '' | 0.0.0.0 | '[::]' | '*') host=127.0.0.1 ;;
  \[*\]) host=${host#\[}; host=${host%\]} ;;
esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
IFS=' ' read -r -t 4 _ status _ <&3 || exit 1
[ "$status" = 200 ]

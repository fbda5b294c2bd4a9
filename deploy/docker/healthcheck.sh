#!/bin/bash
# HEALTHCHECK for the image: GET /healthz on the port of CHARRNN_LISTEN, with
# bash's /dev/tcp so the runtime image needs no curl. Exit 0 when healthy.
# It reads the address from CHARRNN_LISTEN: set the address by that variable,
# not by --listen, or the check knocks on the wrong port.
set -u
listen=${CHARRNN_LISTEN:-0.0.0.0:8080}
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

#!/bin/sh
# Installs what charrnn needs on Debian 12 (bookworm). Run as root.
#
#   deploy/install-deps.sh           build dependencies (meson, gcc,
#                                    libmicrohttpd, cJSON, Check, Open MPI;
#                                    OpenBLAS for the tests' references)
#   deploy/install-deps.sh --test    also what the test suites and CI need:
#                                    PyTorch reference fixtures, yamllint and
#                                    PyYAML for deploy/, curl, and podman +
#                                    debootstrap for tests/container/smoke.sh
#   deploy/install-deps.sh --runtime only the shared libraries the binaries
#                                    load (what the Docker runtime stage has)
#
# Idempotent and non-interactive: apt-get skips what is installed already.
set -eu

mode=build
for arg in "$@"; do
  case $arg in
    --test) mode=test ;;
    --runtime) mode=runtime ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--test | --runtime]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "$0: must run as root" >&2
  exit 1
fi

runtime_pkgs="libmicrohttpd12 libcjson1"
# libopenmpi-dev + openmpi-bin: multi-machine training (charrnn-train under mpirun;
# the build finds Open MPI when it is there and trains on one machine without it).
build_pkgs="meson ninja-build pkg-config gcc libc6-dev libopenblas-dev libmicrohttpd-dev libcjson-dev check libopenmpi-dev openmpi-bin"
# python3-torch and python3-numpy: the reference fixtures (tests/, /usr/bin/python3).
# yamllint, python3-yaml, systemd: tests/deploy (systemd-analyze verify).
# curl: end-to-end scripts. podman, debootstrap, procps (pgrep): tests/container/.
# clang-format: the style suite (tests/style).
# libpcre2-dev: the oracle of the regex engine's unit test and fuzz target.
# chromium: the playground browser test (tests/playground, driven by playwright-core from npm).
test_pkgs="python3 clang-format python3-torch python3-numpy python3-yaml yamllint curl procps systemd podman debootstrap debian-archive-keyring chromium clang libclang-rt-14-dev libpcre2-dev"

case $mode in
  runtime) pkgs=$runtime_pkgs ;;
  build) pkgs="$build_pkgs $runtime_pkgs" ;;
  test) pkgs="$build_pkgs $runtime_pkgs $test_pkgs" ;;
esac

# Node.js and npm: this machine kind ships them; a bare Debian 12 gets Debian's.
if [ "$mode" = test ] && ! command -v npm >/dev/null 2>&1; then
  pkgs="$pkgs nodejs npm"
fi

export DEBIAN_FRONTEND=noninteractive
# Skip the network entirely when everything is there already.
missing=
for p in $pkgs; do
  if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  echo "install-deps: all $mode dependencies are installed"
  exit 0
fi
echo "install-deps: installing$missing"
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing

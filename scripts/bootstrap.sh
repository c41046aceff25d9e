#!/bin/sh
# Install what pyoci needs on a fresh Debian/Ubuntu machine (as root) into ./.venv.
# usage: scripts/bootstrap.sh [--test]   (--test adds the test tools, runc, podman, containerd)
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bootstrap: run as root (containers need it)" >&2; exit 1; }

pkgs="busybox-static util-linux iproute2 ca-certificates"
# --test: runc (the reference), and the engines the engine tests drive (tests/engines/):
# podman with conmon, containerd with ctr and its shim, procps for `ps` (runc ps, ctr task ps).
[ "${1:-}" = "--test" ] && pkgs="$pkgs runc podman conmon containerd procps"
python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    pkgs="$pkgs python3 python3-venv"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $pkgs >/dev/null
python=$(command -v python3)
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "pyoci needs Python >= 3.11"'

[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# A regular (not editable) install: compiled .pyc files, as users get it.
.venv/bin/python -m pip install -q --disable-pip-version-check ".$extra"

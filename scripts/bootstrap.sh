#!/bin/sh
# Install what pyoci needs on a fresh Debian/Ubuntu machine (as root) into ./.venv.
# usage: scripts/bootstrap.sh [--test]   (--test adds the test tools, runc and the engines)
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bootstrap: run as root (containers need it)" >&2; exit 1; }

pkgs="busybox-static util-linux iproute2 ca-certificates"
# --test: runc (the reference), and the engines the engine tests drive (tests/engines/):
# podman with conmon, containerd with ctr and its shim, procps for `ps` (runc ps, ctr task ps),
# Docker (docker.io: dockerd, the docker CLI, docker-init), buildah, uidmap
# (newuidmap/newgidmap) and containernetworking-plugins (CNI, for the CRI tests).
[ "${1:-}" = "--test" ] && pkgs="$pkgs runc podman conmon containerd procps docker.io buildah uidmap containernetworking-plugins"
# The distribution's python3 first: Debian and Ubuntu build it with libpython linked in
# statically (and PGO/LTO), so it starts ~1.5 ms sooner than a --enable-shared build such
# as pyenv's -- a third of runc's whole `state`, paid on every pyoci call
# (docs/performance.md). Any other python3 >= 3.11 on PATH is the fallback.
usable() { [ -x "$1" ] && "$1" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; }
python=""
for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
    if [ -n "$candidate" ] && usable "$candidate"; then python=$candidate; break; fi
done
[ -n "$python" ] || pkgs="$pkgs python3 python3-venv"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Installing docker.io or containerd must not start the host's own daemons (on a systemd
# host docker.service would add docker0 and firewall rules): the tests start their own.
# policy-rc.d answering 101 ("action forbidden") is Debian's switch for that; an existing
# one is left as it is.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
    trap 'rm -f "$guard"' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq $pkgs >/dev/null
[ -z "$guard" ] || { rm -f "$guard"; trap - EXIT; }
if [ -z "$python" ]; then
    python=/usr/bin/python3
    usable "$python" || python=$(command -v python3)
fi
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "pyoci needs Python >= 3.11"'

[ -x .venv/bin/python ] || "$python" -m venv .venv
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# A regular (not editable) install: compiled .pyc files, as users get it.
.venv/bin/python -m pip install -q --disable-pip-version-check ".$extra"

#!/bin/sh
# Set up pyoci and run the demo container from examples/busybox (run as root).
set -eu
cd "$(dirname "$0")/.."
sh scripts/bootstrap.sh
bundle=examples/busybox
rm -rf "$bundle/rootfs"
sh examples/mkrootfs.sh "$bundle/rootfs"
.venv/bin/pyoci validate --bundle "$bundle"
echo "outside: hostname $(hostname), my pid $$, $(ls /proc | grep -c '^[0-9]') processes visible, $(wc -l < /proc/self/mounts) mounts"
.venv/bin/pyoci run --bundle "$bundle" "pyoci-demo-$$"
# The same container once more, only created (its init waits for `start` with every
# namespace, mount, capability and limit in place), explained by `pyoci inspect`: read
# from /proc and cgroupfs, beside the host's values (docs/inspect.md).
id="pyoci-demo-inspect-$$"
trap '.venv/bin/pyoci delete --force "$id" 2>/dev/null || true' EXIT
.venv/bin/pyoci create --bundle "$bundle" "$id" </dev/null >/dev/null 2>&1
echo "pyoci inspect --compare-host $id:"
.venv/bin/pyoci inspect --compare-host "$id"

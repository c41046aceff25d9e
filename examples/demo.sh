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

#!/bin/sh
# Assemble a minimal rootfs from Debian's busybox-static: one static binary plus
# a symlink per applet. Nothing binary is committed; this runs at set-up time.
# usage: mkrootfs.sh DIR
set -eu
dest=${1:?usage: mkrootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "mkrootfs: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home var/run
chmod 1777 tmp
cp "$busybox" bin/busybox
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group
: > etc/hostname

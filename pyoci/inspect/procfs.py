"""Parsers for the /proc/PID files `pyoci inspect` reads (pure functions on their text).

Everything here reads what the kernel publishes about a process to a privileged reader
in another namespace; nothing joins a namespace or follows a path the container controls
(/proc/PID/root is only readlink'ed, never walked: an absolute symlink inside the
container would be resolved against the reader's root). The files and their formats:
proc(5) (status, limits, mountinfo, net/dev, net/if_inet6, net/route, net/fib_trie),
user_namespaces(7) (uid_map: the second field is relative to the *reader's* user
namespace, so a host reader gets host ids), namespaces(7) (the ns/ links' inodes).
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

from pyoci.cgroups.detect import _unescape
from pyoci.executors.capabilities import CAP_NAMES

#: Namespace links under /proc/PID/ns, in namespaces(7)'s order; the *_for_children ones
#: are what the process's next children get (pid and time namespaces change only there).
NS_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts")

#: /proc/PID/limits row names (fs/proc/base.c lnames) -> setrlimit(2) resource names,
#: the names config.json's process.rlimits uses.
RLIMIT_NAMES = {
    "Max cpu time": "RLIMIT_CPU", "Max file size": "RLIMIT_FSIZE",
    "Max data size": "RLIMIT_DATA", "Max stack size": "RLIMIT_STACK",
    "Max core file size": "RLIMIT_CORE", "Max resident set": "RLIMIT_RSS",
    "Max processes": "RLIMIT_NPROC", "Max open files": "RLIMIT_NOFILE",
    "Max locked memory": "RLIMIT_MEMLOCK", "Max address space": "RLIMIT_AS",
    "Max file locks": "RLIMIT_LOCKS", "Max pending signals": "RLIMIT_SIGPENDING",
    "Max msgqueue size": "RLIMIT_MSGQUEUE", "Max nice priority": "RLIMIT_NICE",
    "Max realtime priority": "RLIMIT_RTPRIO", "Max realtime timeout": "RLIMIT_RTTIME",
}

SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}
CAP_SETS = (("effective", "CapEff"), ("permitted", "CapPrm"), ("inheritable", "CapInh"),
            ("bounding", "CapBnd"), ("ambient", "CapAmb"))


def parse_status(text: str) -> dict[str, str]:
    """/proc/PID/status as key -> raw value (tabs kept between multiple values)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def cap_name(bit: int) -> str:
    return CAP_NAMES[bit] if bit < len(CAP_NAMES) else f"CAP_{bit}"


def decode_caps(hex_mask: str, last_cap: int) -> dict[str, Any]:
    """One capability set: its mask, the names in it, and the names a full root set
    (every capability up to /proc/sys/kernel/cap_last_cap) has that it lacks."""
    value = int(hex_mask, 16)
    names = [cap_name(b) for b in range(max(last_cap, value.bit_length() - 1) + 1)
             if value >> b & 1]
    missing = [cap_name(b) for b in range(last_cap + 1) if not value >> b & 1]
    return {"hex": hex_mask, "names": names, "missing": missing}


def parse_id_map(text: str) -> list[list[int]]:
    """uid_map / gid_map lines: [inside start, outside start (reader's ns), count]."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append([int(p) for p in parts])
    return out


def map_to_inside(host_id: int, id_map: list[list[int]]) -> int | None:
    """The id a process in the namespace sees for ``host_id``; None when unmapped (it
    sees the overflow id, 65534)."""
    for inside, outside, count in id_map:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return None


def parse_limits(text: str) -> list[dict[str, Any]]:
    """/proc/PID/limits: fixed columns (name 26, soft 21, hard 21, units); "unlimited"
    becomes None (config.json writes it as 2^64-1)."""
    out = []
    for line in text.splitlines()[1:]:
        label = line[:26].strip()
        fields = line[26:].split()
        if label not in RLIMIT_NAMES or len(fields) < 2:
            continue

        def num(v: str) -> int | None:
            return None if v == "unlimited" else int(v)

        out.append({"name": RLIMIT_NAMES[label], "soft": num(fields[0]),
                    "hard": num(fields[1]), "unit": fields[2] if len(fields) > 2 else ""})
    return out


# --- mounts ------------------------------------------------------------------------------


def parse_mountinfo_full(text: str) -> list[dict[str, Any]]:
    """Every field of /proc/PID/mountinfo. Mount points are shown relative to that
    process's root (proc(5)), i.e. as the container sees them."""
    out = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or not rf:
            continue
        optional = lf[6:]
        prop = [o for o in optional if o.split(":")[0] in
                ("shared", "master", "propagate_from", "unbindable")]
        options = lf[5].split(",")
        out.append({
            "id": int(lf[0]), "parent": int(lf[1]), "device": lf[2],
            "root": _unescape(lf[3]), "mountPoint": _unescape(lf[4]),
            "options": options, "propagation": propagation(prop), "optional": optional,
            "fstype": rf[0], "source": _unescape(rf[1]) if len(rf) > 1 else "",
            "superOptions": rf[2].split(",") if len(rf) > 2 else [],
            "readonly": "ro" in options,
        })
    return out


def propagation(tags: list[str]) -> str:
    """mountinfo's optional fields as mount(8) words: shared:N -> shared, master:N ->
    slave, both -> shared+slave, unbindable, none -> private."""
    kinds = {t.split(":")[0] for t in tags}
    words = []
    if "shared" in kinds:
        words.append("shared")
    if "master" in kinds:
        words.append("slave")
    if "unbindable" in kinds:
        words.append("unbindable")
    return "+".join(words) or "private"


def is_masked(m: dict[str, Any]) -> bool:
    """config-linux.md "Masked Paths" as runc and pyoci apply them: a file gets a bind of
    the null device (a file mount whose root is a "null" node of a devtmpfs or tmpfs),
    a directory a read-only tmpfs inside /proc or /sys. Read from mountinfo alone: the
    masked file itself is never opened (it is inside the container's tree)."""
    mp = m["mountPoint"]
    if mp == "/dev/null":
        return False
    if m["root"].rsplit("/", 1)[-1] == "null" and m["fstype"] in ("devtmpfs", "tmpfs"):
        return True
    return (m["fstype"] == "tmpfs" and m["readonly"]
            and (mp.startswith("/proc/") or mp.startswith("/sys/")))


def host_path_of(root_mount: dict[str, Any], reader_mounts: list[dict[str, Any]]) -> str | None:
    """Where the container's root is in the reader's tree: a reader mount of the same
    device whose root is a prefix of the container root mount's root (longest wins).
    None when the reader's namespace does not mount that filesystem at all (an engine's
    overlay mounted only in its own mount namespace)."""
    want = root_mount["root"]
    best: tuple[int, str] | None = None
    for m in reader_mounts:
        if m["device"] != root_mount["device"]:
            continue
        base = m["root"].rstrip("/")
        if want == m["root"] or want.startswith(base + "/") or base == "":
            rest = want[len(base):] if base else want
            path = m["mountPoint"].rstrip("/") + rest if rest not in ("", "/") \
                else m["mountPoint"]
            if best is None or len(base) > best[0]:
                best = (len(base), path or "/")
    return best[1] if best else None


# --- network -----------------------------------------------------------------------------


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/PID/net/dev (the process's network namespace): byte and packet counters."""
    out = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if sep and len(fields) >= 10:
            out[name.strip()] = {"rxBytes": int(fields[0]), "rxPackets": int(fields[1]),
                                 "txBytes": int(fields[8]), "txPackets": int(fields[9])}
    return out


def parse_if_inet6(text: str) -> list[tuple[str, str, int]]:
    """(interface, address, prefix length) from /proc/PID/net/if_inet6."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 6 and len(parts[0]) == 32:
            addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(parts[0]))
            out.append((parts[5], addr, int(parts[2], 16)))
    return out


def _le_ip(hex_text: str) -> int:
    """net/route's addresses: the kernel's __be32 printed as a host-order %08X."""
    return struct.unpack(">I", struct.pack("<I", int(hex_text, 16)))[0]


def _dotted(value: int) -> str:
    return socket.inet_ntoa(struct.pack(">I", value))


def parse_route(text: str) -> list[dict[str, Any]]:
    """/proc/PID/net/route (the main IPv4 table): interface, destination/prefix, gateway."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        mask = _le_ip(f[7])
        out.append({"interface": f[0], "destination": _dotted(_le_ip(f[1])),
                    "prefix": bin(mask).count("1"), "gateway": _dotted(_le_ip(f[2]))})
    return out


def parse_fib_trie(text: str) -> tuple[list[str], list[tuple[str, int]]]:
    """(local IPv4 addresses, local host ranges such as 127.0.0.0/8) from
    /proc/PID/net/fib_trie: a leaf "|-- A.B.C.D" followed by "/32 host LOCAL" is an
    address of this namespace; "/N host LOCAL" with N < 32 a range routed to lo."""
    addrs: list[str] = []
    ranges: list[tuple[str, int]] = []
    leaf = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|-- "):
            leaf = s[4:]
        elif leaf and s.startswith("/") and s.endswith("host LOCAL"):
            plen = int(s[1:].split()[0])
            if plen == 32 and leaf not in addrs:
                addrs.append(leaf)
            elif plen < 32 and (leaf, plen) not in ranges:
                ranges.append((leaf, plen))
    return addrs, ranges


def _in_net(addr: str, net: str, plen: int) -> bool:
    a = struct.unpack(">I", socket.inet_aton(addr))[0]
    n = struct.unpack(">I", socket.inet_aton(net))[0]
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
    return a & mask == n & mask


def assign_ipv4(addrs: list[str], routes: list[dict[str, Any]],
                ranges: list[tuple[str, int]]) -> list[tuple[str | None, str, int]]:
    """Each local address with the interface and prefix of the longest connected route
    (gateway 0.0.0.0, not the default route) that holds it; a loopback range gives lo."""
    out = []
    for addr in addrs:
        best = None
        for r in routes:
            if r["gateway"] == "0.0.0.0" and r["prefix"] > 0 \
                    and _in_net(addr, r["destination"], r["prefix"]) \
                    and (best is None or r["prefix"] > best["prefix"]):
                best = r
        if best is not None:
            out.append((best["interface"], addr, best["prefix"]))
            continue
        lo = next(((n, p) for n, p in ranges if _in_net(addr, n, p)), None)
        out.append(("lo", addr, lo[1]) if lo else (None, addr, 32))
    return out


def read_text(path: str, limit: int = 4 << 20) -> str:
    """A /proc or cgroupfs file (bounded: a mountinfo of thousands of mounts is fine)."""
    chunks, size = [], 0
    with open(path, "rb", buffering=0) as f:
        # Small reads: sysctl files refuse a multi-megabyte count (ENOMEM).
        while size < limit and (chunk := f.read(65536)):
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def readlink(path: str) -> str:
    return os.readlink(path)

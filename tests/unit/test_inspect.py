"""The parsers of `pyoci inspect` on fixed /proc texts, the report of this very process
against schemas/inspect.schema.json, and the hot path staying clear of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from pyoci.inspect import InspectError, inspect_pid, procfs, render_table
from tests.helpers import REPO

SCHEMA = json.loads((REPO / "schemas" / "inspect.schema.json").read_text())

LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            512                  1024                 files
Max core file size        0                    unlimited            bytes
Max realtime timeout      unlimited            unlimited            us
"""

FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.88.0.0/16 2 0 2
        |-- 10.88.0.0
           /16 link UNICAST
        |-- 10.88.0.7
           /32 host LOCAL
Local:
  +-- 127.0.0.0/8 2 0 2
     |-- 127.0.0.0
        /8 host LOCAL
     |-- 127.0.0.1
        /32 host LOCAL
  |-- 10.88.0.7
     /32 host LOCAL
"""

ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100580A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_limits_by_setrlimit_name() -> None:
    rl = {r["name"]: (r["soft"], r["hard"]) for r in procfs.parse_limits(LIMITS)}
    assert rl == {"RLIMIT_CPU": (None, None), "RLIMIT_NOFILE": (512, 1024),
                  "RLIMIT_CORE": (0, None), "RLIMIT_RTTIME": (None, None)}


def test_ipv4_addresses_get_their_interface() -> None:
    addrs, ranges = procfs.parse_fib_trie(FIB_TRIE)
    assert addrs == ["10.88.0.7", "127.0.0.1"] and ranges == [("127.0.0.0", 8)]
    routes = procfs.parse_route(ROUTE)
    assert routes[0] == {"interface": "eth0", "destination": "0.0.0.0", "prefix": 0,
                         "gateway": "10.88.0.1"}
    assert procfs.assign_ipv4(addrs, routes, ranges) == [("eth0", "10.88.0.7", 16),
                                                         ("lo", "127.0.0.1", 8)]


def test_if_inet6() -> None:
    text = "00000000000000000000000000000001 01 80 10 80       lo\n" \
           "fe800000000000000000000000000001 02 40 20 80     eth0\n"
    assert procfs.parse_if_inet6(text) == [("lo", "::1", 128), ("eth0", "fe80::1", 64)]


MOUNTINFO = """\
129 158 254:0 /tmp/b/rootfs / rw,relatime master:1 - ext4 /dev/vda rw
130 129 0:66 / /proc rw,relatime - proc proc rw
135 131 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw
150 130 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw
128 130 0:55 / /proc/acpi ro,relatime - tmpfs tmpfs ro
141 130 0:66 /sys /proc/sys ro,relatime shared:5 master:3 - proc proc rw
142 129 0:70 / /with\\040space rw - tmpfs tmpfs rw
"""


def test_mountinfo_masks_readonly_propagation() -> None:
    table = procfs.parse_mountinfo_full(MOUNTINFO)
    assert [m["mountPoint"] for m in table if procfs.is_masked(m)] == ["/proc/keys",
                                                                        "/proc/acpi"]
    assert [m["propagation"] for m in table] == ["slave", "private", "private", "private",
                                                 "private", "shared+slave", "private"]
    assert table[-1]["mountPoint"] == "/with space"
    assert table[5]["readonly"] and not table[1]["readonly"]


def test_root_on_the_host_through_the_readers_mounts() -> None:
    root = procfs.parse_mountinfo_full(MOUNTINFO)[0]
    reader = procfs.parse_mountinfo_full(
        "1 0 254:0 / / rw - ext4 /dev/vda rw\n"
        "2 1 254:0 /tmp /tmp rw - ext4 /dev/vda rw\n"
        "3 1 0:44 / /tmp rw - tmpfs tmpfs rw\n")
    assert procfs.host_path_of(root, reader) == "/tmp/b/rootfs"
    assert procfs.host_path_of(root, reader[2:]) is None


def test_caps_and_id_maps() -> None:
    caps = procfs.decode_caps("00000000a80425fb", 40)
    assert "CAP_SYS_ADMIN" in caps["missing"] and "CAP_CHOWN" in caps["names"]
    assert len(caps["names"]) + len(caps["missing"]) == 41
    assert procfs.decode_caps("000001ffffffffff", 40)["missing"] == []
    id_map = procfs.parse_id_map("         0     100000      65536\n")
    assert procfs.map_to_inside(101000, id_map) == 1000
    assert procfs.map_to_inside(0, id_map) is None


def test_own_process_report_matches_schema_and_renders() -> None:
    report = inspect_pid(os.getpid(), compare_host=True)
    Draft202012Validator(SCHEMA).validate(json.loads(json.dumps(report)))
    proc = report["processes"][0]
    assert all(ns["sharedWithRuntime"] for ns in proc["namespaces"])
    assert {r["mark"] for r in report["comparison"]
            if r["section"] == "namespaces"} <= {"shared", ""}
    text = render_table(report)
    assert text.startswith(f"process {os.getpid()} ") and " NAMESPACES" in text


def test_control_characters_are_escaped_in_the_table() -> None:
    """A container names its own interfaces, mounts and commands: an escape sequence in
    one must not reach the terminal."""
    report = inspect_pid(os.getpid())
    report["processes"][0]["command"] = ["evil\x1b]0;title\x07"]
    assert "\x1b" not in render_table(report)


@pytest.mark.parametrize("pid", [0, -1])
def test_not_a_pid(pid: int) -> None:
    with pytest.raises(InspectError, match="not a process id"):
        inspect_pid(pid)


def test_pid_1_is_refused_with_what_it_is() -> None:
    with pytest.raises(InspectError, match="pid 1 is the host's init"):
        inspect_pid(1)


def test_inspect_is_not_on_the_hot_path() -> None:
    """`state` must not import the inspect package (and with it capabilities/detect)."""
    code = ("import sys; from pyoci.__main__ import run_argv\n"
            "try: run_argv(['--root', '/nonexistent-pyoci', 'state', 'x'])\n"
            "except SystemExit: pass\n"
            "print('pyoci.inspect' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr

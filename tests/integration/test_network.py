"""The network executor on the real kernel (issue 6).

Nothing here touches the machine's own network: every test gets a network namespace of
its own, held by an ``unshare --net sleep`` it started, and runs pyoci (and every `ip`
command that makes veths or checks links) inside it through ``nsenter --net``. For pyoci
that namespace is "the host"; bridges, veths and traffic stay inside it and vanish with
the holder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Bundle, Runtime, assert_nothing_left

pytestmark = pytest.mark.integration

BRIDGE = "pyocibr0"


class NetNS:
    """A network namespace of the test's own, held by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "600"],
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        mine = os.readlink("/proc/self/ns/net")
        while time.monotonic() < deadline:
            try:
                ns = os.readlink(f"/proc/{self.holder.pid}/ns/net")
            except OSError:
                ns = mine
            if ns != mine:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("unshare --net did not come up")
        self.path = f"/proc/{self.holder.pid}/ns/net"
        self.prefix = ["nsenter", f"--net={self.path}"]

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.prefix, "sh", "-c", script], capture_output=True,
                              text=True, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script}: {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc

    def links(self) -> dict[str, dict[str, Any]]:
        return {d["ifname"]: d for d in json.loads(self.sh("ip -j link").stdout)}

    def addresses(self, dev: str) -> list[str]:
        doc = json.loads(self.sh(f"ip -j addr show dev {dev}").stdout)
        return [f"{a['local']}/{a['prefixlen']}" for d in doc for a in d["addr_info"]
                if a.get("scope") == "global"]

    def close(self) -> None:
        self.holder.kill()  # by pid: the namespace, and all in it, goes with it
        self.holder.wait(timeout=10)


class NetRuntime(Runtime):
    """`python -m pyoci` run inside the test's network namespace."""

    def __init__(self, root: Path, ns: NetNS) -> None:
        super().__init__(root)
        self.cmd = [*ns.prefix, sys.executable, "-m", "pyoci"]


@pytest.fixture
def netns() -> Iterator[NetNS]:
    ns = NetNS()
    try:
        yield ns
    finally:
        ns.close()


@pytest.fixture
def rt(tmp_path: Path, netns: NetNS) -> Iterator[NetRuntime]:
    runtime = NetRuntime(tmp_path / "state", netns)
    yield runtime
    for cid in runtime.ids() if runtime.root.exists() else []:
        runtime("delete", "--force", cid)


def _sh(bundle: Bundle, script: str, **extra: Any) -> Bundle:
    bundle.config["process"]["args"] = ["sh", "-c", script]
    for key, value in extra.items():
        bundle.config[key] = value
    return bundle.write()


def _veth(ns: NetNS, a: str, b: str) -> None:
    ns.sh(f"ip link add {a} type veth peer name {b}")


# --- loopback ---------------------------------------------------------------------------

def test_new_netns_has_loopback_up(rt: NetRuntime, bundle: Bundle) -> None:
    _sh(bundle, "cat /sys/class/net/lo/flags; ip -o addr show dev lo")
    res = rt("run", "--bundle", str(bundle.path), "lo1", check=True)
    flags, addrs = res.stdout.split("\n", 1)
    assert int(flags, 16) & 0x1, res.stdout  # IFF_UP
    assert "127.0.0.1/8" in addrs


_PROBE = """
import json, sys
from pyoci.__main__ import run_argv
try:
    code = run_argv(sys.argv[1:])[0]
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "pyroute2": "pyroute2" in sys.modules}))
"""


def _probe_create(rt: NetRuntime, bundle: Bundle, cid: str) -> dict[str, Any]:
    cmd = [*rt.cmd[:-2], "-c", _PROBE, "--root", str(rt.root), "create", "--bundle",
           str(bundle.path), cid]
    out = rt.root.parent / f"{cid}.probe"
    with open(out, "w") as f:  # a file, not a pipe: the created init keeps stdio open
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=60,
                       stdin=subprocess.DEVNULL)
    text = out.read_text()
    return json.loads(text.strip().splitlines()[-1]) | {"output": text}


def test_pyroute2_only_for_containers_that_need_it(rt: NetRuntime, netns: NetNS,
                                                   bundle: Bundle) -> None:
    _sh(bundle, "true")
    plain = _probe_create(rt, bundle, "plain")
    assert plain["code"] in (0, None) and plain["pyroute2"] is False, plain
    rt("delete", "--force", "plain", check=True)
    _veth(netns, "xpa", "xpb")
    bundle.config["linux"]["netDevices"] = {"xpb": {}}
    bundle.write()
    moved = _probe_create(rt, bundle, "moved")
    assert moved["code"] in (0, None) and moved["pyroute2"] is True, moved


# --- linux.netDevices -------------------------------------------------------------------

def test_net_device_moved_renamed_keeps_addresses_and_is_up(
        rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    _veth(netns, "va", "vb")
    netns.sh("ip addr add 10.5.0.2/24 dev vb && ip addr add fd00:5::2/64 dev vb && "
             # not carried over: link scope, and a dynamic (non-permanent) address
             "ip addr add 10.6.0.2/24 scope link dev vb && "
             "ip addr add 10.7.0.2/24 valid_lft 300 preferred_lft 300 dev vb")
    bundle.config["linux"]["netDevices"] = {"vb": {"name": "ct%d"}}
    _sh(bundle, "ip -o link show; echo ===; ip -o addr show; echo ===; "
        "cat /sys/class/net/ct0/flags")
    res = rt("run", "--bundle", str(bundle.path), "nd1", check=True)
    links, addrs, flags = res.stdout.split("===\n")
    assert ": ct0@" in links and "vb" not in links, links
    assert int(flags, 16) & 0x1, flags
    ct0 = [line for line in addrs.splitlines() if " ct0 " in line]
    assert any("10.5.0.2/24" in line and "scope global" in line for line in ct0), addrs
    assert any("fd00:5::2/64" in line for line in ct0), addrs
    assert not any("10.6.0.2" in line or "10.7.0.2" in line for line in ct0), addrs
    assert "vb" not in netns.links()  # moved, and a veth dies with the namespace


def test_net_device_keeps_host_name_when_no_name(rt: NetRuntime, netns: NetNS,
                                                 bundle: Bundle) -> None:
    _veth(netns, "xka", "xkb")
    bundle.config["linux"]["netDevices"] = {"xkb": {}}
    _sh(bundle, "cat /sys/class/net/xkb/operstate /sys/class/net/xkb/flags")
    res = rt("run", "--bundle", str(bundle.path), "nd2", check=True)
    assert int(res.stdout.split()[-1], 16) & 0x1, res.stdout


def test_missing_device_fails_and_moves_nothing(rt: NetRuntime, netns: NetNS,
                                                bundle: Bundle) -> None:
    _veth(netns, "xma", "xmb")
    netns.sh("ip addr add 10.8.0.2/24 dev xmb && ip link set xmb up")
    # xmb moves first, then "nosuch" fails: xmb must come back as it was.
    bundle.config["linux"]["netDevices"] = {"xmb": {"name": "inside0"}, "nosuch": {}}
    _sh(bundle, "true")
    res = rt("create", "--bundle", str(bundle.path), "nd3")
    assert res.returncode == 1
    assert "nosuch" in res.stderr and "does not exist" in res.stderr, res.stderr
    links = netns.links()
    assert "xmb" in links and "UP" in links["xmb"]["flags"], links
    assert netns.addresses("xmb") == ["10.8.0.2/24"]
    assert_nothing_left(rt, "nd3", bundle)


def test_name_taken_inside_is_an_error(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    _veth(netns, "xta", "xtb")
    _veth(netns, "xtc", "xtd")
    netns.sh("ip addr add 10.9.0.2/24 dev xtb")
    # Both would be "same" inside: config check. "lo" exists in every new netns: runtime.
    bundle.config["linux"]["netDevices"] = {"xtb": {"name": "lo"}}
    _sh(bundle, "true")
    res = rt("create", "--bundle", str(bundle.path), "nd4")
    assert res.returncode == 1
    assert "'lo' already exists" in res.stderr, res.stderr
    assert "xtb" in netns.links() and netns.addresses("xtb") == ["10.9.0.2/24"]
    assert_nothing_left(rt, "nd4", bundle)
    bundle.config["linux"]["netDevices"] = {"xtb": {"name": "same"}, "xtd": {"name": "same"}}
    bundle.write()
    res = rt("create", "--bundle", str(bundle.path), "nd5")
    assert res.returncode == 1 and "'same'" in res.stderr, res.stderr
    assert {"xtb", "xtd"} <= set(netns.links())
    assert_nothing_left(rt, "nd5", bundle)


def test_net_devices_need_a_network_namespace(rt: NetRuntime, netns: NetNS,
                                              bundle: Bundle) -> None:
    _veth(netns, "xna", "xnb")
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "network"]
    bundle.config["linux"]["netDevices"] = {"xnb": {}}
    _sh(bundle, "true")
    res = rt("create", "--bundle", str(bundle.path), "nd6")
    assert res.returncode == 1 and "network namespace" in res.stderr, res.stderr
    assert "xnb" in netns.links()
    assert_nothing_left(rt, "nd6", bundle)


def test_failure_after_the_move_moves_devices_back(rt: NetRuntime, netns: NetNS,
                                                   bundle: Bundle) -> None:
    _veth(netns, "xfa", "xfb")
    netns.sh("ip addr add 10.10.0.2/24 dev xfb")
    bundle.config["linux"]["netDevices"] = {"xfb": {"name": "eth0"}}
    bundle.config["mounts"].append({"destination": "/x", "type": "nosuchfs",
                                    "source": "none"})
    _sh(bundle, "true")
    res = rt("create", "--bundle", str(bundle.path), "nd7")
    assert res.returncode == 1 and "/x" in res.stderr, res.stderr
    assert "xfb" in netns.links() and netns.addresses("xfb") == ["10.10.0.2/24"]
    assert_nothing_left(rt, "nd7", bundle)


def test_delete_does_not_move_devices_back(rt: NetRuntime, netns: NetNS, bundle: Bundle,
                                           tmp_path: Path) -> None:
    """config-linux.md: the runtime MUST NOT move the interface out before deletion. With
    a joined namespace that outlives the container, the device stays there."""
    target = NetNS()
    try:
        _veth(netns, "xja", "xjb")
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = target.path
        bundle.config["linux"]["netDevices"] = {"xjb": {"name": "kept0"}}
        _sh(bundle, "sleep 60")
        rt("create", "--bundle", str(bundle.path), "nd8", check=True)
        assert "kept0" in target.links()
        rt("delete", "--force", "nd8", check=True)
        assert "kept0" in target.links() and "xjb" not in netns.links()
    finally:
        target.close()


# --- opt-in bridge ----------------------------------------------------------------------

def _bridged(bundle: Bundle, script: str, subnet: str | None = None,
             bridge: str = BRIDGE) -> Bundle:
    notes = {"org.pyoci.network": bridge}
    if subnet:
        notes["org.pyoci.network.subnet"] = subnet
    return _sh(bundle, script, annotations=notes)


def _address(rt: NetRuntime, cid: str) -> str:
    return rt.state(cid)["annotations"]["org.pyoci.network.address"]


def _alloc_dir(rt: NetRuntime) -> Path:
    return rt.root / "@network"


def _no_allocations(rt: NetRuntime) -> bool:
    """No allocation file is left (the per-bridge .lock file stays on purpose: unlinking a
    lock others may wait on would let two creates hold it at once)."""
    d = _alloc_dir(rt)
    return not d.exists() or not list(d.glob("*.json"))


def test_two_containers_talk_tcp_over_the_bridge(rt: NetRuntime, netns: NetNS,
                                                 bundle: Bundle, host_dir: Path) -> None:
    bundle.config["mounts"].append({"destination": "/out", "type": "bind",
                                    "source": str(host_dir), "options": ["rbind", "rw"]})
    _bridged(bundle, "nc -l -p 5000 > /out/got", subnet="10.123.0.0/24")
    rt("create", "--bundle", str(bundle.path), "srv", check=True)
    rt("start", "srv", check=True)
    server = _address(rt, "srv")
    assert server == "10.123.0.2/24"
    ip = server.split("/")[0]
    _bridged(bundle, "ip route; for i in $(seq 50); do echo hello-over-tcp | "
             f"nc -w 2 {ip} 5000 && exit 0; sleep 0.1; done; exit 1",
             subnet="10.123.0.0/24")
    res = rt("run", "--bundle", str(bundle.path), "cli", check=True)
    assert "default via 10.123.0.1" in res.stdout, res.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (host_dir / "got").read_text():
        time.sleep(0.05)
    assert (host_dir / "got").read_text() == "hello-over-tcp\n"
    assert netns.addresses(BRIDGE) == ["10.123.0.1/24"]
    rt("delete", "--force", "srv", check=True)
    assert set(netns.links()) == {"lo"}, netns.links()  # no veth, no empty bridge
    assert _no_allocations(rt)


def test_concurrent_creates_get_distinct_addresses(rt: NetRuntime, netns: NetNS,
                                                   bundle: Bundle) -> None:
    _bridged(bundle, "sleep 60")
    ids = [f"cc{i}" for i in range(6)]
    logs = [rt.root.parent / f"{cid}.err" for cid in ids]
    procs = []
    for cid, log in zip(ids, logs, strict=True):
        with open(log, "w") as err:  # files: the created inits keep their stdio open
            procs.append(subprocess.Popen(
                [*rt.cmd, "--root", str(rt.root), "create", "--bundle", str(bundle.path),
                 cid], stdin=subprocess.DEVNULL, stdout=err, stderr=err))
    codes = [p.wait(timeout=60) for p in procs]
    assert codes == [0] * len(ids), [log.read_text() for log in logs]
    addrs = [_address(rt, cid) for cid in ids]
    assert len(set(addrs)) == len(ids), addrs
    assert all(a.startswith("10.88.") and a.endswith("/16") for a in addrs), addrs
    alloc = json.loads((_alloc_dir(rt) / f"{BRIDGE}.json").read_text())
    assert sorted(f"{v['address']}/16" for v in alloc["containers"].values()) == sorted(addrs)
    veths = {n for n in netns.links() if n.startswith("pyv")}
    assert len(veths) == len(ids)
    for cid in ids:
        rt("delete", "--force", cid, check=True)
    assert set(netns.links()) == {"lo"}, netns.links()
    assert _no_allocations(rt)
    for cid in ids:
        assert_nothing_left(rt, cid, bundle)


def test_bridge_stays_while_a_container_uses_it(rt: NetRuntime, netns: NetNS,
                                                bundle: Bundle) -> None:
    _bridged(bundle, "sleep 60")
    rt("create", "--bundle", str(bundle.path), "b1", check=True)
    rt("create", "--bundle", str(bundle.path), "b2", check=True)
    rt("delete", "--force", "b1", check=True)
    left = json.loads((_alloc_dir(rt) / f"{BRIDGE}.json").read_text())
    assert list(left["containers"]) == ["b2"]
    assert BRIDGE in netns.links()
    # The freed address is given out again.
    rt("create", "--bundle", str(bundle.path), "b3", check=True)
    assert _address(rt, "b3") == "10.88.0.2/16"
    rt("delete", "--force", "b2", check=True)
    rt("delete", "--force", "b3", check=True)
    assert set(netns.links()) == {"lo"}


@pytest.mark.parametrize(("subnet", "words"), [
    ("10.88.0.0/33", "not an IPv4 subnet"),
    ("10.88.0.1/16", "not an IPv4 subnet"),   # host bits set
    ("nonsense", "not an IPv4 subnet"),
    ("10.88.0.0", "no prefix length"),
    ("10.88.0.0/31", "too small"),
])
def test_malformed_subnet(rt: NetRuntime, netns: NetNS, bundle: Bundle, subnet: str,
                          words: str) -> None:
    _bridged(bundle, "true", subnet=subnet)
    res = rt("create", "--bundle", str(bundle.path), "bad")
    assert res.returncode == 1 and words in res.stderr, res.stderr
    assert "org.pyoci.network.subnet" in res.stderr
    assert set(netns.links()) == {"lo"}
    assert _no_allocations(rt)
    assert_nothing_left(rt, "bad", bundle)


def test_exhausted_subnet(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    _bridged(bundle, "sleep 60", subnet="10.99.0.0/30")  # bridge .1, one container .2
    rt("create", "--bundle", str(bundle.path), "only", check=True)
    before = set(netns.links())
    alloc = (_alloc_dir(rt) / f"{BRIDGE}.json").read_text()
    res = rt("create", "--bundle", str(bundle.path), "more")
    assert res.returncode == 1 and "no free address" in res.stderr, res.stderr
    assert set(netns.links()) == before  # no veth of "more"
    assert (_alloc_dir(rt) / f"{BRIDGE}.json").read_text() == alloc
    assert_nothing_left(rt, "more", bundle)
    rt("delete", "--force", "only", check=True)
    assert set(netns.links()) == {"lo"}


def test_existing_non_bridge_name(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    _veth(netns, "notbr", "notbr-peer")
    _bridged(bundle, "true", bridge="notbr")
    res = rt("create", "--bundle", str(bundle.path), "xnb")
    assert res.returncode == 1 and "is not a bridge" in res.stderr, res.stderr
    assert set(netns.links()) == {"lo", "notbr", "notbr-peer"}
    assert not (_alloc_dir(rt) / "notbr.json").exists()
    assert_nothing_left(rt, "xnb", bundle)


def test_existing_bridge_is_used_and_kept(rt: NetRuntime, netns: NetNS,
                                          bundle: Bundle) -> None:
    netns.sh("ip link add mybr type bridge && ip addr add 10.44.0.1/24 dev mybr && "
             "ip link set mybr up")
    _bridged(bundle, "sleep 60", subnet="10.44.0.0/24", bridge="mybr")
    rt("create", "--bundle", str(bundle.path), "eb", check=True)
    assert _address(rt, "eb") == "10.44.0.2/24"
    rt("delete", "--force", "eb", check=True)
    assert set(netns.links()) == {"lo", "mybr"}  # not ours: it stays


def test_container_killed_then_deleted(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    _bridged(bundle, "sleep 60")
    rt("create", "--bundle", str(bundle.path), "kd", check=True)
    rt("start", "kd", check=True)
    os.kill(rt.state("kd")["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rt.state("kd")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    rt("delete", "kd", check=True)
    assert set(netns.links()) == {"lo"}
    assert _no_allocations(rt)

"""The network executor on the real kernel (issue 6).

Nothing here touches the machine's own network: every test gets a network namespace of
its own, held by an ``unshare --net sleep`` it started, and runs pyoci (and every `ip`
command that makes veths or checks links) inside it through ``nsenter --net``. For pyoci
that namespace is "the host"; bridges, veths and traffic stay inside it and vanish with
the holder.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import uuid
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
print(json.dumps({"code": code, "pyroute2": "pyroute2" in sys.modules,
                  "modules": sorted(sys.modules)}))
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
    if all((CNI_DIR / p).is_file() for p in ("bridge", "host-local")):
        # The CNI network: the plugins do the netlink work, pyoci imports no pyroute2.
        bundle.config["annotations"] = {"org.pyoci.network": BRIDGE}
        bundle.write()
        bridged = _probe_create(rt, bundle, "bridged")
        assert bridged["code"] in (0, None) and bridged["pyroute2"] is False, bridged
        # Nor the slow standard modules create does without (plugins are run with
        # posix_spawn, not subprocess; results parsed by pyoci.jsonio).
        more = set(bridged["modules"]) - set(plain["modules"])
        slow = {"re", "enum", "typing", "json", "subprocess", "shutil", "signal",
                "selectors", "threading"}
        assert not {m.split(".")[0] for m in more} & slow, sorted(more)
        rt("delete", "--force", "bridged", check=True)
        del bundle.config["annotations"]
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


# --- opt-in bridge: CNI plugins ---------------------------------------------------------

CNI_DIR = Path("/usr/lib/cni")
needs_cni = pytest.mark.skipif(
    not all((CNI_DIR / p).is_file() for p in ("bridge", "host-local")),
    reason="the CNI plugins (containernetworking-plugins: bridge, host-local) are not in "
           "/usr/lib/cni")

# A CNI plugin of the tests' own (CNI spec 1.0): passes prevResult on at ADD, or fails
# when its config says so; logs every call (command, env, config) to the config's "log".
FAKE_PLUGIN = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
with open(conf["log"], "a") as f:
    f.write(json.dumps({"command": os.environ["CNI_COMMAND"], "conf": conf,
                        "env": {k: v for k, v in os.environ.items()
                                if k.startswith("CNI_")}}) + "\\n")
if os.environ["CNI_COMMAND"] == "ADD":
    if conf.get("fail"):
        print(json.dumps({"cniVersion": "1.0.0", "code": 999, "msg": "fake says no",
                          "details": "as asked"}))
        sys.exit(1)
    print(json.dumps(conf["prevResult"]))
"""


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _bridged(bundle: Bundle, script: str, subnet: str | None = None,
             bridge: str = BRIDGE) -> Bundle:
    notes = {"org.pyoci.network": bridge}
    if subnet:
        notes["org.pyoci.network.subnet"] = subnet
    return _sh(bundle, script, annotations=notes)


def _address(rt: NetRuntime, cid: str) -> str:
    return rt.state(cid)["annotations"]["org.pyoci.network.address"]


def _allocations(data_dir: Path) -> dict[str, str]:
    """host-local's leases under its data dir: {address: container id}. (Its lock and
    last_reserved_ip files stay, as with every engine using it.)"""
    out = {}
    for f in data_dir.glob("*/*") if data_dir.exists() else []:
        try:
            ipaddress.ip_address(f.name)
        except ValueError:
            continue
        out[f.name] = f.read_text().split()[0]
    return out


def _leases(rt: NetRuntime) -> dict[str, str]:
    return _allocations(rt.root / "@network" / "host-local")


def _veths(ns: NetNS) -> set[str]:
    doc = json.loads(ns.sh("ip -j -d link show type veth").stdout)
    return {d["ifname"] for d in doc}


def _links_settle(ns: NetNS, want: set[str], timeout: float = 5) -> set[str]:
    """The links once a dead namespace's veth is gone: the kernel destroys a namespace
    (and the veth in it) asynchronously after its last process exits."""
    deadline = time.monotonic() + timeout
    while set(ns.links()) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    return set(ns.links())


@needs_cni
def test_two_containers_talk_tcp_over_the_bridge(rt: NetRuntime, netns: NetNS,
                                                 bundle: Bundle, host_dir: Path) -> None:
    srv, cli = f"srv-{_uid()}", f"cli-{_uid()}"
    bundle.config["mounts"].append({"destination": "/out", "type": "bind",
                                    "source": str(host_dir), "options": ["rbind", "rw"]})
    # The server's stdin never ends: busybox nc half-closes as soon as its stdin is at EOF,
    # and a client whose `echo` has not written yet then sees that EOF and quits having
    # sent nothing (the flake the test had with </dev/null).
    _bridged(bundle, "sleep 30 | nc -l -p 5000 > /out/got", subnet="10.123.0.0/24")
    rt("create", "--bundle", str(bundle.path), srv, check=True)
    rt("start", srv, check=True)
    server = _address(rt, srv)
    assert server == "10.123.0.2/24"
    assert _leases(rt) == {"10.123.0.2": srv}
    ip = server.split("/")[0]
    _bridged(bundle, "ip route; for i in $(seq 50); do echo hello-over-tcp | "
             f"nc -w 2 {ip} 5000 && exit 0; sleep 0.1; done; exit 1",
             subnet="10.123.0.0/24")
    res = rt("run", "--bundle", str(bundle.path), cli, check=True)
    assert "default via 10.123.0.1" in res.stdout, res.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (host_dir / "got").read_text():
        time.sleep(0.05)
    assert (host_dir / "got").read_text() == "hello-over-tcp\n"
    assert netns.addresses(BRIDGE) == ["10.123.0.1/24"]
    rt("delete", "--force", srv, check=True)
    # No veth, no lease. The bridge stays, as CNI's bridge plugin leaves it for engines.
    assert set(netns.links()) == {"lo", BRIDGE}, netns.links()
    assert _leases(rt) == {}


@needs_cni
def test_concurrent_creates_get_distinct_addresses(rt: NetRuntime, netns: NetNS,
                                                   bundle: Bundle) -> None:
    _bridged(bundle, "sleep 60")
    ids = [f"cc{i}-{_uid()}" for i in range(6)]
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
    leases = _leases(rt)
    assert sorted(f"{a}/16" for a in leases) == sorted(addrs)
    assert sorted(leases.values()) == sorted(ids)
    assert len(_veths(netns)) == len(ids)
    for cid in ids:
        rt("delete", "--force", cid, check=True)
    assert set(netns.links()) == {"lo", BRIDGE}, netns.links()
    assert _leases(rt) == {}
    for cid in ids:
        assert_nothing_left(rt, cid, bundle)


@needs_cni
def test_delete_releases_only_its_own_address(rt: NetRuntime, netns: NetNS,
                                              bundle: Bundle) -> None:
    b1, b2, b3 = (f"b{i}-{_uid()}" for i in (1, 2, 3))
    _bridged(bundle, "sleep 60")
    rt("create", "--bundle", str(bundle.path), b1, check=True)
    rt("create", "--bundle", str(bundle.path), b2, check=True)
    a2 = _address(rt, b2)
    rt("delete", "--force", b1, check=True)
    assert list(_leases(rt).values()) == [b2]
    assert len(_veths(netns)) == 1
    rt("create", "--bundle", str(bundle.path), b3, check=True)
    assert _address(rt, b3) != a2
    rt("delete", "--force", b2, check=True)
    rt("delete", "--force", b3, check=True)
    assert set(netns.links()) == {"lo", BRIDGE} and _leases(rt) == {}


@needs_cni
@pytest.mark.parametrize(("subnet", "words"), [
    ("10.88.0.0/33", "not an IPv4 subnet"),
    ("10.88.0.1/16", "not an IPv4 subnet"),   # host bits set
    ("nonsense", "not an IPv4 subnet"),
    ("10.88.0.0", "no prefix length"),
    ("10.88.0.0/31", "too small"),
])
def test_malformed_subnet(rt: NetRuntime, netns: NetNS, bundle: Bundle, subnet: str,
                          words: str) -> None:
    cid = f"bad-{_uid()}"
    _bridged(bundle, "true", subnet=subnet)
    res = rt("create", "--bundle", str(bundle.path), cid)
    assert res.returncode == 1 and words in res.stderr, res.stderr
    assert "org.pyoci.network.subnet" in res.stderr
    assert "Traceback" not in res.stderr
    assert set(netns.links()) == {"lo"}
    assert not (rt.root / "@network").exists()
    assert_nothing_left(rt, cid, bundle)


@needs_cni
def test_exhausted_subnet(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    only, more = f"only-{_uid()}", f"more-{_uid()}"
    _bridged(bundle, "sleep 60", subnet="10.99.0.0/30")  # bridge .1, one container .2
    rt("create", "--bundle", str(bundle.path), only, check=True)
    before = set(netns.links())
    res = rt("create", "--bundle", str(bundle.path), more)
    assert res.returncode == 1 and "no IP addresses available" in res.stderr, res.stderr
    assert "annotations.org.pyoci.network: CNI plugin 'bridge'" in res.stderr
    assert set(netns.links()) == before  # the veth the bridge plugin made for it is gone
    assert _leases(rt) == {"10.99.0.2": only}
    assert_nothing_left(rt, more, bundle)
    rt("delete", "--force", only, check=True)
    assert set(netns.links()) == {"lo", BRIDGE} and _leases(rt) == {}


@needs_cni
def test_existing_non_bridge_name(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    cid = f"xnb-{_uid()}"
    _veth(netns, "notbr", "notbr-peer")
    _bridged(bundle, "true", bridge="notbr")
    res = rt("create", "--bundle", str(bundle.path), cid)
    assert res.returncode == 1 and "is not a bridge" in res.stderr, res.stderr
    assert set(netns.links()) == {"lo", "notbr", "notbr-peer"}
    assert _leases(rt) == {}
    assert_nothing_left(rt, cid, bundle)


@needs_cni
def test_existing_bridge_is_used_and_kept(rt: NetRuntime, netns: NetNS,
                                          bundle: Bundle) -> None:
    cid = f"eb-{_uid()}"
    netns.sh("ip link add mybr type bridge && ip addr add 10.44.0.1/24 dev mybr && "
             "ip link set mybr up")
    _bridged(bundle, "sleep 60", subnet="10.44.0.0/24", bridge="mybr")
    rt("create", "--bundle", str(bundle.path), cid, check=True)
    assert _address(rt, cid) == "10.44.0.2/24"
    rt("delete", "--force", cid, check=True)
    assert set(netns.links()) == {"lo", "mybr"}
    assert netns.addresses("mybr") == ["10.44.0.1/24"]


@needs_cni
def test_container_killed_then_deleted(rt: NetRuntime, netns: NetNS, bundle: Bundle) -> None:
    cid = f"kd-{_uid()}"
    _bridged(bundle, "sleep 60")
    rt("create", "--bundle", str(bundle.path), cid, check=True)
    rt("start", cid, check=True)
    os.kill(rt.state(cid)["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rt.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    rt("delete", cid, check=True)
    assert _leases(rt) == {}  # released with an empty CNI_NETNS: the namespace is gone
    assert _links_settle(netns, {"lo", BRIDGE}) == {"lo", BRIDGE}


def _fake_plugins(tmp_path: Path) -> tuple[Path, Path]:
    plugins = tmp_path / "cni-bin"
    plugins.mkdir()
    fake = plugins / "pyoci-fake"
    fake.write_text(FAKE_PLUGIN)
    fake.chmod(0o755)
    return plugins, tmp_path / "fake.log"


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@needs_cni
def test_conflist_by_path_add_and_del_protocol(rt: NetRuntime, netns: NetNS, bundle: Bundle,
                                               tmp_path: Path) -> None:
    """A conflist named by path, run as CNI 1.0 says: ADD in order with prevResult, DEL
    in reverse with the ADD's result, the same container id, CNI_IFNAME eth0. The id has
    a '+', which pyoci allows and CNI does not: a derived id is given to the plugins."""
    plugins, log = _fake_plugins(tmp_path)
    data = tmp_path / "ipam"
    conf = tmp_path / "mine.conflist"
    conf.write_text(json.dumps({"cniVersion": "1.0.0", "name": "mine", "plugins": [
        {"type": "bridge", "bridge": "cnibr1", "isGateway": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]],
                  "dataDir": str(data)}},
        {"type": "pyoci-fake", "log": str(log)}]}))
    cid = f"p+{_uid()}"
    _sh(bundle, "ip -o addr show dev eth0; sleep 60",
        annotations={"org.pyoci.network": str(conf)})
    env = os.environ | {"CNI_PATH": f"{plugins}:{CNI_DIR}"}
    rt("create", "--bundle", str(bundle.path), cid, check=True, env=env)
    assert _address(rt, cid) == "10.77.0.2/24"
    (add,) = _calls(log)
    assert add["command"] == "ADD" and add["env"]["CNI_IFNAME"] == "eth0"
    assert add["conf"]["name"] == "mine" and add["conf"]["cniVersion"] == "1.0.0"
    assert add["conf"]["prevResult"]["ips"][0]["address"] == "10.77.0.2/24"
    assert add["env"]["CNI_NETNS"].startswith("/proc/")
    ctid = add["env"]["CNI_CONTAINERID"]
    assert "+" not in ctid and _allocations(data) == {"10.77.0.2": ctid}
    rt("delete", "--force", cid, check=True, env=env)
    add_again, delete = _calls(log)
    assert delete["command"] == "DEL"
    assert delete["env"]["CNI_CONTAINERID"] == ctid and delete["env"]["CNI_IFNAME"] == "eth0"
    assert delete["conf"]["prevResult"] == add["conf"]["prevResult"]
    assert _allocations(data) == {}
    assert set(netns.links()) == {"lo", "cnibr1"}
    assert_nothing_left(rt, cid, bundle)


@needs_cni
def test_conflist_by_name_from_netconfpath(rt: NetRuntime, netns: NetNS, bundle: Bundle,
                                           tmp_path: Path) -> None:
    confdir = tmp_path / "net.d"
    confdir.mkdir()
    (confdir / "00-broken.conf").write_text("{not json")  # other files are not ours
    (confdir / "10-named.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "named", "plugins": [
            {"type": "bridge", "bridge": "namedbr", "isGateway": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.66.0.0/24"}]],
                      "dataDir": str(tmp_path / "ipam")}}]}))
    env = os.environ | {"NETCONFPATH": str(confdir)}
    cid = f"nm-{_uid()}"
    _sh(bundle, "sleep 60", annotations={"org.pyoci.network": "named"})
    rt("create", "--bundle", str(bundle.path), cid, check=True, env=env)
    assert _address(rt, cid) == "10.66.0.2/24"
    assert "namedbr" in netns.links()
    rt("delete", "--force", cid, check=True, env=env)
    assert _allocations(tmp_path / "ipam") == {}
    # A subnet only configures pyoci's built-in network: an error, nothing made.
    bad = f"nms-{_uid()}"
    _sh(bundle, "true", annotations={"org.pyoci.network": "named",
                                     "org.pyoci.network.subnet": "10.1.0.0/16"})
    res = rt("create", "--bundle", str(bundle.path), bad, env=env)
    assert res.returncode == 1 and "only applies to pyoci's built-in" in res.stderr, \
        res.stderr
    assert_nothing_left(rt, bad, bundle)


@needs_cni
def test_failing_plugin_is_undone(rt: NetRuntime, netns: NetNS, bundle: Bundle,
                                  tmp_path: Path) -> None:
    """The second plugin fails its ADD: create fails with its message and DELs the whole
    list, so the first plugin's veth and lease are gone and nothing else is left."""
    plugins, log = _fake_plugins(tmp_path)
    data = tmp_path / "ipam"
    conf = tmp_path / "failing.conflist"
    conf.write_text(json.dumps({"cniVersion": "1.0.0", "name": "failing", "plugins": [
        {"type": "bridge", "bridge": "failbr", "isGateway": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.55.0.0/24"}]],
                  "dataDir": str(data)}},
        {"type": "pyoci-fake", "log": str(log), "fail": True}]}))
    cid = f"fp-{_uid()}"
    _sh(bundle, "true", annotations={"org.pyoci.network": str(conf)})
    env = os.environ | {"CNI_PATH": f"{plugins}:{CNI_DIR}"}
    res = rt("create", "--bundle", str(bundle.path), cid, env=env)
    assert res.returncode == 1, res.stderr
    assert "'pyoci-fake'" in res.stderr and "fake says no (as asked)" in res.stderr
    assert "Traceback" not in res.stderr
    assert [c["command"] for c in _calls(log)] == ["ADD", "DEL"]
    assert _veths(netns) == set() and _allocations(data) == {}
    assert_nothing_left(rt, cid, bundle)


@needs_cni
def test_missing_plugin_is_a_config_error(rt: NetRuntime, netns: NetNS, bundle: Bundle,
                                          tmp_path: Path) -> None:
    cid = f"mp-{_uid()}"
    _bridged(bundle, "true")
    env = os.environ | {"CNI_PATH": str(tmp_path / "nowhere")}
    res = rt("create", "--bundle", str(bundle.path), cid, env=env)
    assert res.returncode == 1 and "'bridge'" in res.stderr and "not found" in res.stderr, \
        res.stderr
    assert set(netns.links()) == {"lo"}
    assert not (rt.root / "@network").exists()
    assert_nothing_left(rt, cid, bundle)


@needs_cni
def test_failure_after_the_network_is_set_up_releases_it(rt: NetRuntime, netns: NetNS,
                                                         bundle: Bundle) -> None:
    """A mount fails after the ADD: create DELs through the namespace it still holds
    before the init is killed, so no veth and no lease are left."""
    cid = f"fm-{_uid()}"
    _bridged(bundle, "true")
    bundle.config["mounts"].append({"destination": "/x", "type": "nosuchfs",
                                    "source": "none"})
    bundle.write()
    res = rt("create", "--bundle", str(bundle.path), cid)
    assert res.returncode == 1 and "/x" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert _veths(netns) == set() and _leases(rt) == {}
    assert_nothing_left(rt, cid, bundle)

"""config-linux.md "Network Devices" (``linux.netDevices``, runtime-spec 1.2+).

The machine's own network is never touched: each case starts a network namespace of its
own (``ns_holder("--net")``) and runs the runtime inside it with ``nsenter --net``, so for
the runtime that namespace is "the host". The devices moved are veth ends made there
(a veth needs no kernel module and dies with its namespace).

runc 1.1.5 predates netDevices: it ignores the field, so every case that checks a move is
``runc_differs``.
"""

from __future__ import annotations

import json
import subprocess

import pytest

NO_NETDEVICES = "runc 1.1 ignores linux.netDevices (added in runtime-spec 1.2 / runc 1.3)"


class HostNet:
    """The case's stand-in for the host network namespace."""

    def __init__(self, pid: int) -> None:
        self.prefix = ["nsenter", f"--net=/proc/{pid}/ns/net"]
        self.path = f"/proc/{pid}/ns/net"

    def sh(self, script: str) -> str:
        proc = subprocess.run([*self.prefix, "sh", "-c", script], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{script}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    def veth(self, a: str, b: str) -> None:
        self.sh(f"ip link add {a} type veth peer name {b}")

    def links(self) -> list[str]:
        return [d["ifname"] for d in json.loads(self.sh("ip -j link"))]


@pytest.fixture
def hostnet(ns_holder, runtime):
    """A private "host" network namespace; the runtime under test runs inside it.
    Cases list ``hostnet`` first: the holder then starts before, and is torn down after,
    the runtime fixture, whose cleanup still needs the namespace."""
    net = HostNet(ns_holder("--net"))
    runtime.argv = [*net.prefix, *runtime.argv]
    return net


def _run(runtime, bundle, script: str):
    bundle.sh(script)
    return runtime.run(bundle)


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_device_moved_into_container(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "netDevices (object, OPTIONAL) - A set of network
    devices that MUST be made available in the container." The device is in the
    container's namespace, and no longer in the host's."""
    hostnet.veth("cfa0", "cfb0")
    bundle.linux["netDevices"] = {"cfb0": {}}
    res = _run(runtime, bundle, "cat /sys/class/net/cfb0/ifindex")
    assert res.ok, str(res)
    assert "cfb0" not in hostnet.links()


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_device_renamed(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "name (string, OPTIONAL) - the name of the
    network device inside the container namespace. If not specified, the host name is
    used." """
    hostnet.veth("cfa1", "cfb1")
    bundle.linux["netDevices"] = {"cfb1": {"name": "inner1"}}
    res = _run(runtime, bundle, "ls /sys/class/net")
    assert res.ok, str(res)
    names = res.out.split()
    assert "inner1" in names and "cfb1" not in names, res.out


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_permanent_global_addresses_preserved(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "The runtime MUST preserve existing network
    interface attributes, including all permanent IP addresses (IFA_F_PERMANENT flag) of
    any family with global scope (RT_SCOPE_UNIVERSE value)"."""
    hostnet.veth("cfa2", "cfb2")
    hostnet.sh("ip addr add 192.0.2.10/24 dev cfb2 && ip addr add 2001:db8::10/64 dev cfb2")
    bundle.linux["netDevices"] = {"cfb2": {}}
    res = _run(runtime, bundle, "ip -o addr show dev cfb2")
    assert res.ok, str(res)
    assert "192.0.2.10/24" in res.out and "2001:db8::10/64" in res.out, res.out


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_device_set_up(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "The runtime MUST set the network device state
    to "up" after moving it to the network namespace". The device is down on the host."""
    hostnet.veth("cfa3", "cfb3")
    bundle.linux["netDevices"] = {"cfb3": {"name": "up3"}}
    res = _run(runtime, bundle, "cat /sys/class/net/up3/flags")
    assert res.ok, str(res)
    assert int(res.out.strip(), 16) & 0x1, res.out  # IFF_UP


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_name_taken_in_container_is_an_error(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "If a network device with the specified name
    already exists in the container namespace, the runtime MUST generate an error".
    Every new network namespace has ``lo``."""
    hostnet.veth("cfa4", "cfb4")
    bundle.linux["netDevices"] = {"cfb4": {"name": "lo"}}
    res = runtime.create(bundle, check=False)
    assert not res.ok, str(res)


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_template_name_lets_the_kernel_choose(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "unless the user has provided a template by
    appending %d to the new name. In that case, the runtime MUST allow the move, and the
    kernel will generate a unique name". Two devices asking for ``net%d``."""
    hostnet.veth("cfa5", "cfb5")
    hostnet.veth("cfa6", "cfb6")
    bundle.linux["netDevices"] = {"cfb5": {"name": "net%d"}, "cfb6": {"name": "net%d"}}
    res = _run(runtime, bundle, "ls /sys/class/net")
    assert res.ok, str(res)
    assert {"net0", "net1"} <= set(res.out.split()), res.out


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_missing_device_is_an_error(hostnet, runtime, bundle):
    """config-linux.md "Network Devices": "The runtime MUST check if moving the network
    interface to the container namespace is possible" (runtime.md "Errors": create
    fails)."""
    bundle.linux["netDevices"] = {"cfnosuch": {}}
    res = runtime.create(bundle, check=False)
    assert not res.ok, str(res)


@pytest.mark.runc_differs(NO_NETDEVICES)
def test_device_not_moved_back_on_delete(hostnet, ns_holder, runtime, bundle):
    """config-linux.md "Network Devices": "The runtime MUST NOT attempt to move the
    interface out of the namespace before deletion." With a joined network namespace
    that outlives the container, the device is still there after delete."""
    target = HostNet(ns_holder("--net"))
    hostnet.veth("cfa7", "cfb7")
    bundle.namespace("network")["path"] = target.path
    bundle.linux["netDevices"] = {"cfb7": {"name": "kept7"}}
    bundle.sh("sleep 30")
    runtime.create(bundle)
    assert "kept7" in target.links()
    runtime.delete(bundle.cid, force=True)
    assert "kept7" in target.links()
    assert "cfb7" not in hostnet.links()

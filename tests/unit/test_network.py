"""Network executor logic that needs no kernel: validation, address choice, the filter
on kept addresses, and that plain containers never import pyroute2."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from typing import Any

import pytest

from pyoci.config.loader import load_spec
from pyoci.errors import PyociError
from pyoci.executors import network


def _spec(netdevs: dict | None = None, annotations: dict | None = None,
          namespaces: list | None = None) -> Any:
    doc: dict[str, Any] = {"ociVersion": "1.3.0", "linux": {
        "namespaces": namespaces if namespaces is not None else [{"type": "network"}]}}
    if netdevs is not None:
        doc["linux"]["netDevices"] = netdevs
    if annotations is not None:
        doc["annotations"] = annotations
    return load_spec(doc)


def test_loader_types_net_devices() -> None:
    spec = _spec({"eth0": {"name": "c%d"}, "veth1": {}, "veth2": {"name": ""}})
    assert [(d.host_name, d.name, d.target) for d in spec.linux.net_devices] == [
        ("eth0", "c%d", "c%d"), ("veth1", None, "veth1"), ("veth2", None, "veth2")]


@pytest.mark.parametrize(("name", "bad"), [
    ("eth0", False), ("a" * 15, False), ("c%d", False),
    ("", True), ("a" * 16, True), (".", True), ("..", True), ("a/b", True),
    ("a:b", True), ("a b", True), ("a\tb", True),
])
def test_ifname_rules(name: str, bad: bool) -> None:
    assert (network.ifname_problem(name) is not None) is bad


@pytest.mark.parametrize(("netdevs", "namespaces", "words"), [
    ({"eth0": {}}, [], "no network namespace"),
    ({"eth0": {"name": "a/b"}}, None, "linux.netDevices.eth0.name"),
    ({"bad name": {}}, None, "host interface name"),
    ({"eth0": {"name": "x%dy%d"}}, None, "only one '%d'"),
    ({"eth0": {"name": "%dx"}}, None, "only one '%d'"),
    ({"a": {"name": "same"}, "b": {"name": "same"}}, None, "also the name of"),
    ({"a": {}, "b": {"name": "a"}}, None, "also the name of"),
])
def test_check_rejects(netdevs: dict, namespaces: list | None, words: str) -> None:
    with pytest.raises(PyociError, match=words):
        network.check(_spec(netdevs, namespaces=namespaces))


def test_check_accepts_templates_and_joined_netns() -> None:
    spec = _spec({"a": {"name": "c%d"}, "b": {"name": "c%d"}},
                 namespaces=[{"type": "network", "path": "/proc/1/ns/net"}])
    assert network.check(spec) is None
    assert network.wanted(spec)
    assert not network.wanted(_spec())


@pytest.mark.parametrize(("notes", "namespaces", "words"), [
    ({"org.pyoci.network": "br/0"}, None, "bridge name"),
    ({"org.pyoci.network": "br0"}, [], "new network namespace"),
    ({"org.pyoci.network": "br0"}, [{"type": "network", "path": "/x"}],
     "new network namespace"),
    ({"org.pyoci.network": "br0", "org.pyoci.network.subnet": "10.0.0.0/8x"}, None,
     "not an IPv4 subnet"),
    ({"org.pyoci.network": "br0", "org.pyoci.network.subnet": "fd00::/64"}, None,
     "not an IPv4 subnet"),
    ({"org.pyoci.network": "br0", "org.pyoci.network.subnet": "10.1.2.3/8"}, None,
     "not an IPv4 subnet"),
    ({"org.pyoci.network": "br0", "org.pyoci.network.subnet": "10.0.0.0"}, None,
     "no prefix length"),
    ({"org.pyoci.network": "br0", "org.pyoci.network.subnet": "10.0.0.0/31"}, None,
     "too small"),
])
def test_bridge_annotation_errors(notes: dict, namespaces: list | None, words: str) -> None:
    with pytest.raises(PyociError, match=words):
        network.check(_spec(annotations=notes, namespaces=namespaces))


def test_bridge_and_net_device_cannot_both_be_eth0() -> None:
    with pytest.raises(PyociError, match="already uses that name"):
        network.check(_spec({"veth9": {"name": "eth0"}},
                            annotations={"org.pyoci.network": "br0"}))


def test_bridge_request_defaults() -> None:
    req = network.check(_spec(annotations={"org.pyoci.network": "br0"}))
    assert req is not None and (req.bridge, req.subnet) == ("br0", "10.88.0.0/16")


def test_next_free_skips_bridge_and_taken_and_ends() -> None:
    net = ipaddress.IPv4Network("10.0.0.0/29")  # hosts .1-.6, bridge .1
    assert str(network.next_free(net, set())) == "10.0.0.2"
    assert str(network.next_free(net, {"10.0.0.2", "10.0.0.3"})) == "10.0.0.4"
    assert str(network.next_free(net, {"10.0.0.2", "10.0.0.4"})) == "10.0.0.3"
    full = {f"10.0.0.{i}" for i in range(2, 7)}
    assert network.next_free(net, full) is None
    assert network.next_free(ipaddress.IPv4Network("10.0.0.0/30"), {"10.0.0.2"}) is None


def test_host_veth_names() -> None:
    a = network.host_veth_name("/run/pyoci", "c1")
    assert a == network.host_veth_name("/run/pyoci", "c1")
    assert a != network.host_veth_name("/run/pyoci", "c2")
    assert a != network.host_veth_name("/run/other", "c1")
    assert network.ifname_problem(a) is None and len(a) == 14


class _Msg(dict):
    def __init__(self, attrs: dict[str, Any], **hdr: Any) -> None:
        super().__init__(hdr)
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


class _FakeIPR:
    def __init__(self, msgs: list[_Msg]) -> None:
        self.msgs = msgs

    def get_addr(self, index: int) -> list[_Msg]:
        return self.msgs


def test_kept_addresses_are_permanent_and_global() -> None:
    msgs = [
        _Msg({"IFA_ADDRESS": "10.0.0.2", "IFA_LOCAL": "10.0.0.2",
              "IFA_BROADCAST": "10.0.0.255", "IFA_FLAGS": 0x80},
             family=2, prefixlen=24, scope=0, flags=0x80),
        _Msg({"IFA_ADDRESS": "fd00::2", "IFA_FLAGS": 0x80 | 0x40},  # permanent, tentative
             family=10, prefixlen=64, scope=0, flags=0xC0),
        _Msg({"IFA_ADDRESS": "10.1.0.2", "IFA_FLAGS": 0x80},       # link scope
             family=2, prefixlen=24, scope=253, flags=0x80),
        _Msg({"IFA_ADDRESS": "10.2.0.2", "IFA_FLAGS": 0},          # dynamic
             family=2, prefixlen=24, scope=0, flags=0),
        _Msg({"IFA_ADDRESS": "10.3.0.2", "IFA_FLAGS": 0x100},     # flags only in IFA_FLAGS
             family=2, prefixlen=24, scope=0, flags=0x80),
        _Msg({"IFA_ADDRESS": "10.4.0.1", "IFA_LOCAL": "10.4.0.2"},  # p2p, header flags
             family=2, prefixlen=32, scope=0, flags=0x80),
    ]
    kept = network.kept_addresses(_FakeIPR(msgs), 3)
    assert kept == [
        {"family": 2, "prefixlen": 24, "address": "10.0.0.2", "broadcast": "10.0.0.255"},
        {"family": 10, "prefixlen": 64, "address": "fd00::2"},
        {"family": 2, "prefixlen": 32, "address": "10.4.0.1", "local": "10.4.0.2"},
    ]


_PROBE = """
import json, sys
from pyoci.config.loader import load_spec
from pyoci.executors import network
import pyoci.operations.create, pyoci.operations.delete, pyoci.operations.query
spec = load_spec(json.loads(sys.argv[1]))
wanted = network.wanted(spec)
if wanted:
    network.check(spec)
print(json.dumps({"wanted": wanted, "pyroute2": "pyroute2" in sys.modules}))
"""


@pytest.mark.parametrize(("doc", "wanted"), [
    ({"ociVersion": "1.3.0", "linux": {"namespaces": [{"type": "network"}]}}, False),
    ({"ociVersion": "1.3.0", "linux": {"namespaces": [{"type": "network"}],
                                       "netDevices": {"eth0": {}}}}, True),
    ({"ociVersion": "1.3.0", "annotations": {"org.pyoci.network": "br0"},
      "linux": {"namespaces": [{"type": "network"}]}}, True),
])
def test_create_path_imports_no_pyroute2_before_netlink(doc: dict, wanted: bool) -> None:
    """Loading create/delete/query and validating a config never imports pyroute2: only
    the netlink work itself does (for a container that asked for it)."""
    res = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(doc)], capture_output=True,
                         text=True, timeout=60)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"wanted": wanted, "pyroute2": False}, res.stderr

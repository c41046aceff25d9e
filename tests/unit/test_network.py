"""Network executor logic that needs no kernel: validation, the CNI client against fake
plugins, the filter on kept addresses, and that plain containers never import pyroute2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pyoci.config.loader import load_spec
from pyoci.errors import PyociError
from pyoci.executors import cni, network


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


@pytest.fixture(autouse=True)
def cni_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plugins and conf dir of the test's own: the host's /etc/cni/net.d and /usr/lib/cni
    play no part. The fake plugins are executables that log their calls (CNI 1.0)."""
    bindir = tmp_path / "cni-bin"
    bindir.mkdir()
    for name in ("bridge", "host-local", "fake"):
        plugin = bindir / name
        plugin.write_text(FAKE_PLUGIN)
        plugin.chmod(0o755)
    confdir = tmp_path / "net.d"
    confdir.mkdir()
    monkeypatch.setenv("CNI_PATH", str(bindir))
    monkeypatch.setenv("NETCONFPATH", str(confdir))
    return tmp_path


FAKE_PLUGIN = f"""#!{sys.executable}
import json, os, sys
conf = json.load(sys.stdin)
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
with open(conf["log"], "a") as f:
    f.write(json.dumps({{"plugin": os.path.basename(sys.argv[0]), "env": env,
                        "conf": conf}}) + "\\n")
if conf.get("fail"):
    print(json.dumps({{"code": 7, "msg": "told to fail", "details": env["CNI_COMMAND"]}}))
    sys.exit(1)
if env["CNI_COMMAND"] == "ADD":
    prev = conf.get("prevResult") or {{"cniVersion": "1.0.0", "interfaces": [
        {{"name": "br"}}, {{"name": "eth0", "sandbox": env["CNI_NETNS"]}}],
        "ips": [{{"address": "10.9.0.9/24", "interface": 1}}]}}
    prev.setdefault("seen", []).append(conf["tag"])
    print(json.dumps(prev))
"""


def test_bridge_request_defaults_to_the_builtin_network() -> None:
    """No conflist of that name: pyoci's built-in one, the bridge named by the value,
    host-local over the default subnet (what the annotation has always meant)."""
    req = network.check(_spec(annotations={"org.pyoci.network": "br0"}))
    assert req is not None and req.builtin
    (plugin,) = req.conflist["plugins"]
    assert req.conflist["name"] == "br0" and plugin["type"] == "bridge"
    assert plugin["bridge"] == "br0" and plugin["isGateway"] is True
    assert plugin["ipam"]["type"] == "host-local"
    assert plugin["ipam"]["ranges"] == [[{"subnet": "10.88.0.0/16"}]]
    req = network.check(_spec(annotations={"org.pyoci.network": "br0",
                                           "org.pyoci.network.subnet": "10.5.0.0/24"}))
    assert req is not None and req.conflist["plugins"][0]["ipam"]["ranges"] == [
        [{"subnet": "10.5.0.0/24"}]]


def test_conflist_found_by_name_in_netconfpath(cni_env: Path) -> None:
    confdir = cni_env / "net.d"
    (confdir / "00-junk.conflist").write_text("{")
    (confdir / "10-other.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "fake"}]}))
    # A single-plugin .conf is wrapped into a list, as libcni does.
    (confdir / "20-mine.conf").write_text(json.dumps(
        {"cniVersion": "0.4.0", "name": "mine", "type": "fake", "tag": "x"}))
    req = network.check(_spec(annotations={"org.pyoci.network": "mine"}))
    assert req is not None and not req.builtin
    assert req.conflist == {"cniVersion": "0.4.0", "name": "mine",
                            "plugins": [{"type": "fake", "tag": "x"}]}
    with pytest.raises(PyociError, match="only applies to pyoci's built-in network"):
        network.check(_spec(annotations={"org.pyoci.network": "mine",
                                         "org.pyoci.network.subnet": "10.0.0.0/8"}))


@pytest.mark.parametrize(("content", "words"), [
    (None, "cannot read CNI configuration"),
    ("{", "is not JSON"),
    ("[]", "not a JSON object"),
    ('{"cniVersion": "1.0.0", "plugins": [{"type": "fake"}]}', "'name' is missing"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": []}', "'plugins' is missing or empty"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../x"}]}', "no valid 'type'"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "nosuch"}]}',
     "CNI plugin 'nosuch' of network 'n' not found in CNI_PATH"),
])
def test_conflist_path_errors(cni_env: Path, content: str | None, words: str) -> None:
    path = cni_env / "x.conflist"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PyociError, match=words) as err:
        network.check(_spec(annotations={"org.pyoci.network": str(path)}))
    assert str(err.value).startswith("annotations.org.pyoci.network: ")


def test_missing_plugins_are_a_config_error(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("CNI_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(PyociError, match="'bridge' of network 'br0' not found in CNI_PATH"):
        network.check(_spec(annotations={"org.pyoci.network": "br0"}))


@pytest.mark.parametrize(("cid", "same"), [
    ("abc", True), ("a.b-c_d", True), ("A1", True),
    ("a+b", False), ("_a", False), ("-a", False), (".a", False),
])
def test_cni_container_id(cid: str, same: bool) -> None:
    got = cni.container_id(cid)
    assert (got == cid) is same
    assert got == cni.container_id(cid)
    assert got[0].isalnum() and set(got) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def test_result_addresses() -> None:
    result = {"interfaces": [{"name": "br"}, {"name": "veth1"},
                             {"name": "eth0", "sandbox": "/proc/1/ns/net"}],
              "ips": [{"address": "10.1.0.1/24", "interface": 0},
                      {"address": "10.88.0.2/16", "interface": 2},
                      {"address": "fd00::2/64", "interface": 2}]}
    assert cni.addresses(result, "eth0") == ["10.88.0.2/16", "fd00::2/64"]
    assert cni.addresses({"ips": [{"address": "10.0.0.2/8"}]}, "eth0") == ["10.0.0.2/8"]
    assert cni.addresses({"ip4": {"ip": "10.0.0.3/8"}}, "eth0") == ["10.0.0.3/8"]  # 0.2.0
    assert cni.addresses({}, "eth0") == []


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_add_and_del_follow_the_cni_protocol(cni_env: Path) -> None:
    """CNI 1.0: ADD in list order, each plugin's result the next one's prevResult, the
    list's name and cniVersion injected; DEL in reverse with the ADD's result; the
    CNI_* variables set (and the caller's own CNI_* not passed through)."""
    log = cni_env / "calls.log"
    conflist = {"cniVersion": "1.0.0", "name": "net1", "plugins": [
        {"type": "fake", "tag": "one", "log": str(log)},
        {"type": "fake", "tag": "two", "log": str(log)}]}
    att = cni.Attachment(conflist, "c+1", "eth0", os.environ["CNI_PATH"])
    os.environ["CNI_ARGS"] = "IgnoreUnknown=1"  # the caller's: not passed on
    try:
        result = att.add("/proc/self/ns/net", "where")
    finally:
        del os.environ["CNI_ARGS"]
    assert result["seen"] == ["one", "two"]
    calls = _log(log)
    assert [c["conf"]["tag"] for c in calls] == ["one", "two"]
    assert "prevResult" not in calls[0]["conf"]
    assert calls[1]["conf"]["prevResult"]["seen"] == ["one"]
    assert all(c["conf"]["name"] == "net1" and c["conf"]["cniVersion"] == "1.0.0"
               for c in calls)
    env = calls[0]["env"]
    assert env == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": cni.container_id("c+1"),
                   "CNI_NETNS": "/proc/self/ns/net", "CNI_IFNAME": "eth0",
                   "CNI_PATH": os.environ["CNI_PATH"]}
    # DEL from the record kept in state.json.
    again = cni.Attachment.from_record(json.loads(json.dumps(att.record())))
    log.unlink()
    again.delete("", "where")
    calls = _log(log)
    assert [c["conf"]["tag"] for c in calls] == ["two", "one"]
    assert all(c["env"]["CNI_COMMAND"] == "DEL" and c["env"]["CNI_NETNS"] == ""
               and c["conf"]["prevResult"] == result for c in calls)


def test_plugin_error_is_reported_and_del_tries_every_plugin(cni_env: Path) -> None:
    log = cni_env / "calls.log"
    conflist = {"cniVersion": "1.0.0", "name": "net2", "plugins": [
        {"type": "fake", "tag": "one", "log": str(log)},
        {"type": "fake", "tag": "two", "log": str(log), "fail": True}]}
    att = cni.Attachment(conflist, "c2", "eth0", os.environ["CNI_PATH"])
    with pytest.raises(PyociError, match=r"^here: CNI plugin 'fake' of network 'net2' "
                       r"failed \(ADD\): told to fail \(ADD\)$"):
        att.add("/proc/self/ns/net", "here")
    log.unlink()
    with pytest.raises(PyociError, match=r"failed \(DEL\): told to fail \(DEL\)"):
        att.delete("", "here")
    assert [c["conf"]["tag"] for c in _log(log)] == ["two", "one"]


def test_plugin_stderr_and_status_when_no_error_object(tmp_path: Path) -> None:
    script = tmp_path / "crash"
    script.write_text("#!/bin/sh\ncat >/dev/null\necho 'panic: boom' >&2\nexit 3\n")
    script.chmod(0o755)
    code, out, err = cni.run_plugin(str(script), {}, b"{}")
    assert (code, out, err) == (3, b"", b"panic: boom\n")
    assert cni._error_text(out, err, code) == "panic: boom"
    assert cni._error_text(b"", b"", 3) == "exit status 3"


def test_hung_plugin_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "hang"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    with pytest.raises(TimeoutError):
        cni.run_plugin(str(script), {}, b"{}", timeout=0.3)


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
                         text=True, timeout=60, env=os.environ.copy())
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"wanted": wanted, "pyroute2": False}, res.stderr

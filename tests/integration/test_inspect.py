"""`pyoci inspect` (issue 17): what it reports about real containers equals what the config
asked for and what the kernel shows, field by field; a runc container by --pid; bad input
is one clear line, exit 1, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pyoci.executors.capabilities import CAP_NAMES
from tests.helpers import REPO, Bundle, Runtime, assert_nothing_left, base_config, cgroup_dir

pytestmark = pytest.mark.integration

SCHEMA = json.loads((REPO / "schemas" / "inspect.schema.json").read_text())
ALL_NS = ("pid", "network", "ipc", "uts", "mount", "cgroup")
#: config.json namespace type -> /proc/PID/ns link name.
LINK = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
        "cgroup": "cgroup", "user": "user"}


def _cid(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _inspect(runtime: Runtime, *args: str) -> dict[str, Any]:
    res = runtime("inspect", "--format", "json", *args)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    Draft202012Validator(SCHEMA).validate(doc)
    return doc


def _start(runtime: Runtime, bundle: Bundle, cid: str, config: dict[str, Any]) -> int:
    bundle.write(config)
    res = runtime("run", "-d", "-b", str(bundle.path), cid)
    assert res.returncode == 0, res.stderr
    return runtime.state(cid)["pid"]


def _ns(proc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["type"]: n for n in proc["namespaces"]}


@pytest.mark.parametrize("missing", [None, *(t for t in ALL_NS if t != "mount")])
def test_namespaces_as_configured(runtime: Runtime, bundle: Bundle, missing: str | None) -> None:
    """Each namespace the config asks for is the container's own; each it leaves out is
    the runtime's (and the inode is the kernel's). Not without a mount namespace: pyoci
    refuses that config (its safety check before any mount)."""
    cfg = base_config(args=["sleep", "1000"])
    types = [t for t in ALL_NS if t != missing]
    cfg["linux"]["namespaces"] = [{"type": t} for t in types]
    if missing == "uts":
        cfg.pop("hostname")
    cid = _cid("ns")
    pid = _start(runtime, bundle, cid, cfg)
    proc = _inspect(runtime, cid)["processes"][0]
    ns = _ns(proc)
    for t in (*ALL_NS, "user"):
        link = os.readlink(f"/proc/{pid}/ns/{LINK[t]}")
        assert f"{LINK[t]}:[{ns[LINK[t]]['inode']}]" == link
        assert ns[LINK[t]]["sharedWithRuntime"] is (t not in types), t
    runtime("delete", "--force", cid, check=True)
    assert_nothing_left(runtime, cid, bundle)


def test_user_namespace_identity(runtime: Runtime, open_bundle: Bundle) -> None:
    cfg = base_config(args=["sleep", "1000"], user={"uid": 1000, "gid": 1000,
                                                      "additionalGids": [5]})
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cid = _cid("userns")
    _start(runtime, open_bundle, cid, cfg)
    proc = _inspect(runtime, cid)["processes"][0]
    ident = proc["identity"]
    for key in ("real", "effective", "saved", "filesystem"):
        assert ident["uid"][key] == {"host": 201000, "inside": 1000}
        assert ident["gid"][key] == {"host": 201000, "inside": 1000}
    assert ident["groups"] == [{"host": 200005, "inside": 5}]
    assert ident["uidMap"] == [[0, 200000, 65536]] == ident["gidMap"]
    assert _ns(proc)["user"]["sharedWithRuntime"] is False
    runtime("delete", "--force", cid, check=True)
    assert_nothing_left(runtime, cid, open_bundle)


def _secure_config() -> dict[str, Any]:
    cfg = base_config(args=["sleep", "1000"], noNewPrivileges=True,
                      rlimits=[{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512},
                               {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}])
    keep = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    cfg["process"]["capabilities"] = {"bounding": keep, "effective": keep[:2],
                                      "permitted": keep[:2], "inheritable": []}
    cfg["hostname"] = "inspected"
    cfg["domainname"] = "example.test"
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    cfg["linux"]["maskedPaths"] = ["/proc/keys", "/proc/timer_list", "/proc/acpi"]
    cfg["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/bus"]
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 42},
                                 "cpu": {"quota": 50000, "period": 100000}}
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["unshare", "setns"], "action": "SCMP_ACT_ERRNO"}]}
    return cfg


def test_security_and_limits_field_by_field(runtime: Runtime, bundle: Bundle) -> None:
    cfg = _secure_config()
    cid = _cid("sec")
    cfg["linux"]["cgroupsPath"] = cid
    pid = _start(runtime, bundle, cid, cfg)
    doc = _inspect(runtime, cid)
    assert doc["container"] == {"id": cid, "status": "running", "bundle": str(bundle.path),
                                "pid": pid}
    proc = doc["processes"][0]
    caps = proc["capabilities"]["sets"]
    assert caps["bounding"]["names"] == sorted(cfg["process"]["capabilities"]["bounding"],
                                               key=CAP_NAMES.index)
    assert caps["effective"]["names"] == caps["permitted"]["names"] == ["CAP_CHOWN", "CAP_KILL"]
    assert caps["inheritable"]["names"] == caps["ambient"]["names"] == []
    assert "CAP_SYS_ADMIN" in caps["bounding"]["missing"]
    # The kernel's own masks, decoded independently.
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert caps["bounding"]["hex"] == status["CapBnd"]
    sec = proc["security"]
    assert sec["seccomp"]["mode"] == "filter" and sec["noNewPrivs"] is True
    assert sec["seccomp"]["filters"] == int(status.get("Seccomp_filters", "1")) >= 1
    rl = {r["name"]: r for r in proc["rlimits"]}
    assert (rl["RLIMIT_NOFILE"]["soft"], rl["RLIMIT_NOFILE"]["hard"]) == (512, 1024)
    assert (rl["RLIMIT_CORE"]["soft"], rl["RLIMIT_CORE"]["hard"]) == (0, 0)
    assert proc["uts"] == {"hostname": "inspected", "domainname": "example.test",
                           "source": "config"}
    lim = proc["cgroup"]["limits"]
    assert lim["memory"]["limit"] == lim["memory"]["effectiveLimit"] == 64 << 20
    assert lim["pids"]["limit"] == lim["pids"]["effectiveLimit"] == 42
    assert lim["pids"]["current"] == 1
    assert lim["cpu"]["cpus"] == 0.5
    assert lim["memory"]["directory"] == str(cgroup_dir(cid, "memory"))
    assert int((cgroup_dir(cid, "pids") / "pids.max").read_text()) == 42
    paths = {h["path"] for h in proc["cgroup"]["hierarchies"]}
    assert all(p.endswith("/" + cid) for p in paths), paths
    mounts = proc["mounts"]
    present = [p for p in cfg["linux"]["maskedPaths"] if os.path.exists(p)]
    assert sorted(mounts["maskedPaths"]) == sorted(present)
    assert "/proc/sys" in mounts["readonlyPaths"]
    assert mounts["root"]["hostPath"] == str(bundle.rootfs)
    assert {m["mountPoint"] for m in mounts["table"]} >= {"/", "/proc", "/dev", "/sys"}
    net = {i["name"]: i for i in proc["network"]["interfaces"]}
    assert list(net) == ["lo"] and net["lo"]["ipv4"] == ["127.0.0.1/8"]
    # The table and the comparison with the host.
    table = runtime("inspect", "--compare-host", cid)
    assert table.returncode == 0, table.stderr
    assert "isolated" in table.stdout and "CAPABILITIES" in table.stdout
    rows = {(r["section"], r["field"]): r["mark"]
            for r in _inspect(runtime, "--compare-host", cid)["comparison"]}
    assert rows[("namespaces", "net")] == rows[("network", "lo")] == "isolated"
    assert rows[("namespaces", "user")] == rows[("identity", "uid")] == "shared"
    assert rows[("security", "no_new_privs")] == rows[("capabilities", "bounding")] == "isolated"
    runtime("delete", "--force", cid, check=True)
    assert_nothing_left(runtime, cid, bundle)


def test_all_processes(runtime: Runtime, bundle: Bundle) -> None:
    cid = _cid("all")
    pid = _start(runtime, bundle, cid,
                 base_config(args=["sh", "-c", "sleep 1000 & exec sleep 1001"]))
    procs = _inspect(runtime, "--all", cid)["processes"]
    assert procs[0]["pid"] == pid and len(procs) == 2
    assert sorted(p["pidInNamespaces"][-1] for p in procs) == [1, 2]
    assert procs[0]["namespaces"] == procs[1]["namespaces"]
    assert runtime("pause", cid).returncode == 0
    assert _inspect(runtime, cid)["container"]["status"] == "paused"
    assert runtime("resume", cid).returncode == 0
    by_pid = _inspect(runtime, "--all", "--pid", str(pid))["processes"]
    assert sorted(p["pid"] for p in by_pid) == sorted(p["pid"] for p in procs)
    runtime("delete", "--force", cid, check=True)


RUNC = shutil.which("runc")


@pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc)")
def test_runc_container_by_pid(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A container pyoci knows nothing of: only --pid and /proc."""
    cfg = _secure_config()
    del cfg["linux"]["resources"]
    bundle.write(cfg)
    root = tmp_path / "runc-root"
    cid = _cid("runc")
    try:
        # Files, not pipes: the detached init inherits stdio and would hold a pipe open.
        with open(tmp_path / "runc.err", "w+") as err:
            res = subprocess.run([RUNC, "--root", str(root), "run", "-d", "-b",
                                  str(bundle.path), cid], stdout=err, stderr=err,
                                 stdin=subprocess.DEVNULL, timeout=60)
            err.seek(0)
            assert res.returncode == 0, err.read()
        state = json.loads(subprocess.run([RUNC, "--root", str(root), "state", cid],
                                          capture_output=True, text=True, check=True).stdout)
        doc = _inspect(runtime, "--pid", str(state["pid"]))
        assert doc["container"] is None
        proc = doc["processes"][0]
        assert proc["pidInNamespaces"][-1] == 1
        assert proc["capabilities"]["sets"]["effective"]["names"] == ["CAP_CHOWN", "CAP_KILL"]
        assert proc["security"]["noNewPrivs"] is True
        assert proc["security"]["seccomp"]["mode"] == "filter"
        assert proc["uts"]["source"] == "unavailable"   # nothing read inside its namespace
        assert proc["mounts"]["root"]["hostPath"] == str(bundle.rootfs)
        for t in ALL_NS:
            assert _ns(proc)[LINK[t]]["sharedWithRuntime"] is False, t
    finally:
        subprocess.run([RUNC, "--root", str(root), "delete", "--force", cid],
                       capture_output=True, timeout=60)


def _fails(runtime: Runtime, *args: str, expect: str) -> None:
    res = runtime("inspect", *args)
    assert res.returncode == 1, res.stdout
    assert res.stdout == ""
    assert expect in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_input(runtime: Runtime, bundle: Bundle) -> None:
    _fails(runtime, "no-such-" + uuid.uuid4().hex[:6], expect="does not exist")
    _fails(runtime, "--pid", "1", expect="pid 1 is the host's init")
    _fails(runtime, expect="give a container id or --pid PID")
    _fails(runtime, "x", "--pid", "5", expect="give a container id or --pid PID")
    _fails(runtime, "--pid", "0", expect="not a process id")
    _fails(runtime, "--pid", "-3", expect="not a process id")
    gone = subprocess.Popen(["true"])
    gone.wait()
    _fails(runtime, "--pid", str(gone.pid), expect=f"process {gone.pid} does not exist")
    cid = _cid("stopped")
    bundle.write(base_config(args=["true"]))
    assert runtime("run", "-d", "-b", str(bundle.path), cid).returncode == 0
    for _ in range(100):
        if runtime.state(cid)["status"] == "stopped":
            break
        subprocess.run(["sleep", "0.05"])
    _fails(runtime, cid, expect=f'container "{cid}" is stopped')
    runtime("delete", cid, check=True)
    assert_nothing_left(runtime, cid, bundle)
    assert not any(p.name.startswith("no-such-") for p in runtime.root.glob("*")) \
        if runtime.root.exists() else True

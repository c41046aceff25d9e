"""The cgroup manager on the real kernel, in all three layouts.

The host is hybrid. A pure v2 layout is made in a child with a private mount namespace
that mounts cgroup2 over /sys/fs/cgroup (the same unified hierarchy the host has at
/sys/fs/cgroup/unified); a pure v1 layout in one that mounts a tmpfs there and mounts the
host's v1 hierarchies again beneath it (same controllers, so the same hierarchies, no
unified). The child runs EXERCISE and prints what it observed; the tests assert on that.
Every cgroup is created beneath this process's own cgroup (a relative cgroupsPath) and
removed at the end; only processes started here are signalled.
"""

from __future__ import annotations

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

from pyoci.cgroups import CgroupError, controllers, manager_from_state, open_manager
from pyoci.cgroups.detect import detect
from pyoci.cgroups.manager import Manager
from pyoci.config.loader import load_resources

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# Runs in the layout under test: detection, create, add, pids, freeze/thaw (a busy
# counter that stops, its scheduler state), kill through the cgroup, destroy.
EXERCISE = r'''
import json, os, signal, subprocess, sys, time
args = json.loads(sys.argv[1])
if args["setup"] == "v2":
    subprocess.run(["mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup"], check=True)
elif args["setup"] == "v1":
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "cgroup", "/sys/fs/cgroup"],
                   check=True)
    for name, opts in args["hierarchies"]:
        os.mkdir("/sys/fs/cgroup/" + name)
        subprocess.run(["mount", "-t", "cgroup", "-o", opts, "cgroup", "/sys/fs/cgroup/" + name],
                       check=True)

from pyoci.cgroups import manager_from_state, open_manager
from pyoci.cgroups.detect import detect

# Appends forever: the file's size is a counter that reads cleanly at any moment.
COUNTER = 'i=0; while :; do i=$((i+1)); echo $i >> "$1"; done'


def states(pid, n=20):
    seen = set()
    for _ in range(n):
        with open(f"/proc/{pid}/stat") as f:
            seen.add(f.read().rsplit(")", 1)[1].split()[0])
        time.sleep(0.005)
    return sorted(seen)


def counter(path):
    return os.path.getsize(path)


layout = detect()
out = {"mode": layout.mode, "v1": sorted(layout.v1), "unified": layout.unified_mount}
m = open_manager(args["path"], "unused")
out["dirs"] = m.directories()
m.create()
out["created"] = [os.path.isdir(d) for d in m.directories()]
busy = subprocess.Popen(["sh", "-c", COUNTER, "sh", args["counter"]])
sleeper = None
try:
    m.add(busy.pid)
    time.sleep(0.1)
    out["busy"] = busy.pid
    out["pids"] = m.pids()
    out["running_states"] = states(busy.pid)
    m.freeze()
    out["frozen"] = m.frozen()
    out["frozen_states"] = states(busy.pid)
    c1 = counter(args["counter"]); time.sleep(0.3); c2 = counter(args["counter"])
    out["counter_frozen"] = [c1, c2]
    m.thaw()
    out["frozen_after_thaw"] = m.frozen()
    c3 = counter(args["counter"]); time.sleep(0.3); c4 = counter(args["counter"])
    out["counter_thawed"] = [c3, c4]
    out["thawed_states"] = states(busy.pid)
    m.kill(signal.SIGKILL)
    out["busy_rc"] = busy.wait(timeout=10)
    out["pids_after_kill"] = m.pids()
    # A paused container: SIGTERM leaves it paused; the thaw lets the signal act.
    sleeper = subprocess.Popen(["sleep", "300"])
    m.add(sleeper.pid)
    out["pids_sleeper"] = m.pids() == [sleeper.pid]
    m.freeze()
    m.kill(signal.SIGTERM)
    time.sleep(0.2)
    out["term_while_paused"] = [sleeper.poll(), m.frozen()]
    m.thaw()
    out["term_rc"] = sleeper.wait(timeout=10)
    # SIGKILL kills a paused container (v1 freezer: only once thawed, which kill() does).
    sleeper = subprocess.Popen(["sleep", "300"])
    m.add(sleeper.pid)
    m.freeze()
    m.kill(signal.SIGKILL)
    out["kill_paused_rc"] = sleeper.wait(timeout=10)
    out["frozen_after_kill"] = m.frozen()
finally:
    for p in (busy, sleeper):
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
    m.destroy()
out["exists_after_destroy"] = m.exists()
out["left"] = [d for d in m.directories() if os.path.exists(d)]
print(json.dumps(out))
'''


def _name() -> str:
    return f"pyoci-mgr-{uuid.uuid4().hex[:10]}"


def _host_cleanup(name: str) -> None:
    """After a crashed child: kill what is left in our cgroup on the host, remove it."""
    # A manager that owns the directories (open_manager's owns nothing until create).
    m = manager_from_state({**open_manager(name, "unused").to_state(), "created": True})
    for d in m.directories():
        if not os.path.isdir(d):
            continue
        if d == m.v1.get("freezer"):
            Path(d, "freezer.state").write_text("THAWED")
        for dirpath, _dirs, _files in os.walk(d):
            for pid in Path(dirpath, "cgroup.procs").read_text().split():
                if int(pid) <= 0:
                    continue   # another pid namespace's process: kill(0) is our own group
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    time.sleep(0.2)
    m.destroy()


@pytest.fixture
def host() -> Manager:
    layout = detect()
    if layout.mode != "hybrid":
        pytest.skip(f"these tests expect the hybrid host described in the notes, "
                    f"found {layout.mode}")
    return open_manager(None, "probe", layout=layout)


@pytest.fixture
def name() -> Iterator[str]:
    n = _name()
    yield n
    _host_cleanup(n)


def _run(setup: str, name: str, counter: Path, **extra: Any) -> dict[str, Any]:
    args = json.dumps({"setup": setup, "path": name, "counter": str(counter), **extra})
    cmd = [sys.executable, "-c", EXERCISE, args]
    if setup != "host":
        cmd = ["unshare", "-m", "--propagation", "private", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def _check_lifecycle(out: dict[str, Any]) -> None:
    assert all(out["created"])
    assert out["pids"] == [out["busy"]]
    assert "R" in out["running_states"]
    assert out["frozen"] is True
    assert "R" not in out["frozen_states"], out["frozen_states"]
    c1, c2 = out["counter_frozen"]
    assert c1 > 0 and c1 == c2, "the counter moved while frozen"
    assert out["frozen_after_thaw"] is False
    c3, c4 = out["counter_thawed"]
    assert c4 > c3 >= c2, "the counter did not resume"
    assert "R" in out["thawed_states"]
    assert out["busy_rc"] == -signal.SIGKILL
    assert out["pids_after_kill"] == []
    assert out["pids_sleeper"] is True
    # The v1 freezer holds every task until the thaw; the v2 freezer lets a fatal signal
    # through (cgroup-v2.rst "Core Interface Files", cgroup.freeze).
    rc_paused, still_frozen = out["term_while_paused"]
    assert still_frozen is True
    if out["mode"] in ("v1", "hybrid"):
        assert rc_paused is None
    assert out["term_rc"] == -signal.SIGTERM
    assert out["kill_paused_rc"] == -signal.SIGKILL
    assert out["frozen_after_kill"] is False
    assert out["exists_after_destroy"] is False and out["left"] == []


def test_hybrid_host(host: Manager, name: str, tmp_path: Path) -> None:
    out = _run("host", name, tmp_path / "counter")
    assert out["mode"] == "hybrid"
    assert out["unified"] == "/sys/fs/cgroup/unified"
    assert set(out["v1"]) == set(host.v1)
    expected = open_manager(name, "unused").directories()
    assert out["dirs"] == expected
    assert expected[-1] == f"/sys/fs/cgroup/unified/{name}"
    _check_lifecycle(out)


def test_pure_v2_in_a_private_mount_namespace(host: Manager, name: str,
                                              tmp_path: Path) -> None:
    out = _run("v2", name, tmp_path / "counter")
    assert out["mode"] == "v2"
    assert out["v1"] == [] and out["unified"] == "/sys/fs/cgroup"
    # The runtime sits in the root of the unified hierarchy, so "parent of own" is the root.
    assert out["dirs"] == [f"/sys/fs/cgroup/{name}"]
    _check_lifecycle(out)
    assert not os.path.exists(f"/sys/fs/cgroup/unified/{name}")   # same hierarchy, gone


def test_pure_v1_in_a_private_mount_namespace(host: Manager, name: str,
                                              tmp_path: Path) -> None:
    layout = detect()
    hierarchies = []
    for h in layout.hierarchies():
        opts = ",".join(c if not c.startswith("name=") else f"none,{c}"
                        for c in h.controllers)
        hierarchies.append((os.path.basename(h.mount_point), opts))
    out = _run("v1", name, tmp_path / "counter", hierarchies=hierarchies)
    assert out["mode"] == "v1"
    assert out["unified"] is None
    assert set(out["v1"]) == set(layout.v1)
    # Same paths as on the host (same mount points), i.e. beneath the own cgroups.
    host_dirs = open_manager(name, "unused").directories()
    assert out["dirs"] == host_dirs[:-1]
    _check_lifecycle(out)


def test_hybrid_in_process_details(host: Manager, name: str) -> None:
    """Beneath the own cgroup everywhere, cpuset filled, the unified hierarchy joined,
    SIGTERM through freeze/signal/thaw, a manager rebuilt from its state."""
    layout = detect()
    m = open_manager(name, "unused", layout=layout)
    for ctrl, d in m.v1.items():
        own = layout.v1[ctrl].own_dir
        assert own is not None and d == os.path.join(own, name), ctrl
    assert m.unified == os.path.join(layout.unified_own_dir or "", name)
    m.create()
    try:
        cpuset = m.v1["cpuset"]
        assert Path(cpuset, "cpuset.cpus").read_text().strip()
        assert Path(cpuset, "cpuset.mems").read_text().strip()
        child = subprocess.Popen(["sleep", "300"])
        try:
            m.add(child.pid)
            rebuilt = manager_from_state(json.loads(json.dumps(m.to_state())))
            assert rebuilt.pids() == m.pids() == [child.pid]
            for d in m.directories():
                assert Path(d, "cgroup.procs").read_text().split() == [str(child.pid)], d
            rebuilt.kill(signal.SIGTERM)
            assert child.wait(timeout=10) == -signal.SIGTERM
            assert Path(m.v1["freezer"], "freezer.state").read_text().strip() == "THAWED"
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    finally:
        m.destroy()
    assert not m.exists()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_create_refuses_a_cgroup_another_container_uses(
        host: Manager, name: str, sleeper: subprocess.Popen[bytes]) -> None:
    """Two containers with one cgroupsPath: the second create is refused, and cleaning up
    after it (as the create operation does, from the record it stored first) neither
    signals the first one's process nor removes its directories."""
    first = open_manager(f"{name}/inner", "first")
    first.create()
    first.add(sleeper.pid)
    # The same path, and a path above it (whose subtree holds the first container).
    for path, where in ((f"{name}/inner", f"{name}/inner"), (name, f"{name}/inner")):
        second = open_manager(path, "second")
        record = second.to_state()
        with pytest.raises(CgroupError, match=rf"the container's cgroup .*/{path} is not "
                                              rf"empty: 1 process\(es\) found in .*/{where};"):
            second.create()
        leftover = manager_from_state(json.loads(json.dumps(record)))
        leftover.kill(signal.SIGKILL)
        leftover.destroy()
        time.sleep(0.2)
        assert sleeper.poll() is None
        assert all(os.path.isdir(d) for d in first.directories())
        assert first.pids() == [sleeper.pid]

    # Empty but frozen (v1 freezer here): joining it would freeze the init.
    first.kill(signal.SIGKILL)
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    first.freeze()
    try:
        with pytest.raises(CgroupError, match=r"unexpectedly frozen \(.*freezer.state is "
                                              r"FROZEN\)"):
            open_manager(f"{name}/inner", "third").create()
    finally:
        first.thaw()
    first.destroy()
    assert not first.exists()
    # ... and with it the level above, which the first create made.
    assert not any(os.path.exists(os.path.dirname(d)) for d in first.directories())


def test_paths_at_or_above_our_own_cgroup_are_refused(host: Manager) -> None:
    """Resolved only, nothing is created: /process_api (say) holds this host's jobs."""
    layout = detect()
    own = layout.v1["memory"].own_path if "memory" in layout.v1 else "/"
    if own == "/":
        pytest.skip("our memory cgroup is the root here")
    for path in (own, os.path.dirname(own)):
        with pytest.raises(CgroupError, match=r"the runtime's own cgroup in the memory "):
            open_manager(path, "x", layout=layout)


READER = r"""
import json, signal, sys, time
from pyoci.cgroups import manager_from_state
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append("SIGTERM"))
m = manager_from_state(json.loads(sys.argv[1]))
raw = open(m.unified + "/cgroup.procs").read().split()
pids = m.pids()
m.kill(signal.SIGTERM)
time.sleep(0.2)
print(json.dumps({"raw": raw, "pids": pids, "got": got, "frozen": m.frozen()}))
"""


def test_a_process_of_another_pid_namespace_is_never_pid_zero(
        host: Manager, name: str, sleeper: subprocess.Popen[bytes]) -> None:
    """Seen from a child pid namespace, our sleeper is "0" in the unified cgroup.procs.
    kill(0, SIGTERM) would hit the reader's own process group (its own session here, so
    nothing else), which the reader's handler would record."""
    m = open_manager(name, "unused")
    m.create()
    m.add(sleeper.pid)
    res = subprocess.run(["unshare", "-p", "-f", sys.executable, "-c", READER,
                          json.dumps(m.to_state())], capture_output=True, text=True,
                         timeout=60, cwd=REPO, start_new_session=True)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["raw"] == ["0"], "the kernel did not show the process as 0"
    assert out["pids"] == [] and out["got"] == [] and out["frozen"] is False
    assert sleeper.poll() is None
    assert m.pids() == [sleeper.pid]
    m.kill(signal.SIGKILL)
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    m.destroy()


def test_controllers_are_never_enabled_in_the_unified_root(host: Manager, name: str) -> None:
    """This host's unified root is above (it is) our own unified cgroup: hugetlb missing
    there is an error, and the root's cgroup.subtree_control stays as it was."""
    sizes = controllers.hugepage_sizes()
    if not sizes:
        pytest.skip("this kernel has no huge pages")
    root_ctl = Path(host.unified_mount or "", "cgroup.subtree_control")
    before = root_ctl.read_text()
    m = open_manager(f"{name}/c1", "unused")
    m.create()
    res = load_resources({"hugepageLimits": [{"pageSize": sizes[0], "limit": 0}]})
    try:
        if "hugetlb" in before.split():
            m.set(res, None)   # delegated by the host: enabled below the root only
            assert "hugetlb" in Path(m.unified or "", "..", "cgroup.subtree_control") \
                .read_text().split()
        else:
            with pytest.raises(CgroupError) as exc:
                m.set(res, None)
            assert str(exc.value).startswith(
                "linux.resources.hugepageLimits: the hugetlb controller is not delegated to "
                f"this cgroup: {root_ctl} does not enable it")
            assert str(exc.value).endswith(f"(enable it in {root_ctl})")
    finally:
        m.destroy()
        after = root_ctl.read_text()
        assert after == before, (f"pyoci changed the host's {root_ctl} from {before!r} to "
                                 f"{after!r}: revert it by hand")


def test_destroy_removes_the_levels_create_made(host: Manager, name: str) -> None:
    layout = detect()
    pids_own = layout.v1["pids"].own_dir
    assert pids_own is not None
    kept = os.path.join(pids_own, name)
    os.mkdir(kept)                     # exists before create: not create's to remove
    m = open_manager(f"{name}/mid/c1", "unused", layout=layout)
    record = m.to_state()
    m.create()
    try:
        made = set(record["parents"])
        tops = {os.path.dirname(os.path.dirname(d)) for d in m.directories()}
        mids = {os.path.dirname(d) for d in m.directories()}
        assert made == (tops - {kept}) | mids
        manager_from_state(json.loads(json.dumps(record))).destroy()
        assert [d for d in m.directories() if os.path.exists(d)] == []
        assert [d for d in made if os.path.exists(d)] == []
        assert os.path.isdir(kept)
    finally:
        m.destroy()

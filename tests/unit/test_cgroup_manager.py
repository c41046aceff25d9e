"""The cgroup manager on fake trees: layout detection, cgroupsPath resolution, placement
of controllers, and the file protocol of freeze/kill/destroy (temp dirs stand in for
/proc and /sys; the resource writers are replaced by recorders)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import pyoci.cgroups
from pyoci.cgroups import CgroupError, manager_from_state
from pyoci.cgroups import manager as mgr
from pyoci.cgroups.detect import cgroup_dir, detect, parse_mountinfo, visible_mounts
from pyoci.cgroups.manager import Manager, expand_slice, open_manager, systemd_path
from pyoci.config.model import DeviceRule, Resources
from pyoci.errors import PyociError

MEM_OWN = "/process_api/9f7c"

# --- fake host layouts --------------------------------------------------------------------

V1_MOUNTS = """\
23 1 0:21 / / rw,relatime - overlay overlay rw
25 23 0:22 / /sys rw,nosuid - sysfs sysfs rw
31 25 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
"""
V1_CGROUP = f"""\
12:rdma:/
9:name=systemd:/
8:pids:/
6:freezer:/
5:devices:/
4:memory:{MEM_OWN}
3:cpuset:/
2:cpu,cpuacct:/
0::/
"""
UNIFIED_MOUNT = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
V2_MOUNTS = """\
23 1 0:21 / / rw,relatime - overlay overlay rw
25 23 0:22 / /sys rw,nosuid - sysfs sysfs rw
31 25 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
"""
V2_CGROUP = "0::/user.slice/session-1.scope\n"


def make_host(tmp_path: Path, mountinfo: str, proc_cgroup: str,
              unified_controllers: str | None = None) -> tuple[str, str]:
    """A fake /proc and /sys: the mount points of ``mountinfo`` exist under sys/."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    (proc / "self" / "cgroup").write_text(proc_cgroup)
    sys_root = tmp_path / "sys"
    for entry in parse_mountinfo(mountinfo):
        if entry.mount_point.startswith("/sys/"):
            point = sys_root / entry.mount_point[len("/sys/"):]
            point.mkdir(parents=True, exist_ok=True)
            if entry.fstype == "cgroup2":
                (point / "cgroup.controllers").write_text(unified_controllers or "")
                (point / "cgroup.subtree_control").write_text("")
    # The runtime's own cgroups exist (it is in them).
    layout = detect(str(proc), str(sys_root))
    for own in [h.own_dir for h in layout.hierarchies()] + [layout.unified_own_dir]:
        if own is not None:
            os.makedirs(own, exist_ok=True)
    return str(proc), str(sys_root)


def fs(sys_root: str, rel: str) -> str:
    return os.path.join(sys_root, "fs/cgroup", rel)


@pytest.fixture
def v1_host(tmp_path: Path) -> tuple[str, str]:
    return make_host(tmp_path, V1_MOUNTS, V1_CGROUP)


@pytest.fixture
def hybrid_host(tmp_path: Path) -> tuple[str, str]:
    return make_host(tmp_path, V1_MOUNTS + UNIFIED_MOUNT, V1_CGROUP, "hugetlb\n")


@pytest.fixture
def v2_host(tmp_path: Path) -> tuple[str, str]:
    return make_host(tmp_path, V2_MOUNTS, V2_CGROUP, "cpuset cpu io memory pids hugetlb\n")


# --- detection ----------------------------------------------------------------------------

def test_detect_v1_with_comounted_cpu_cpuacct(v1_host: tuple[str, str]) -> None:
    proc, sys_root = v1_host
    layout = detect(proc, sys_root)
    assert layout.mode == "v1"
    assert layout.unified_mount is None
    # rdma is listed in /proc/self/cgroup but mounted nowhere: not a usable hierarchy.
    assert set(layout.v1) == {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                              "pids", "name=systemd"}
    assert layout.v1["cpu"] is layout.v1["cpuacct"]
    assert layout.v1["cpu"].mount_point == fs(sys_root, "cpu,cpuacct")
    assert len(layout.hierarchies()) == 7
    assert layout.v1["memory"].own_dir == fs(sys_root, "memory") + MEM_OWN
    assert layout.v1["name=systemd"].controllers == ("name=systemd",)


def test_detect_hybrid(hybrid_host: tuple[str, str]) -> None:
    proc, sys_root = hybrid_host
    layout = detect(proc, sys_root)
    assert layout.mode == "hybrid"
    assert layout.unified_mount == fs(sys_root, "unified")
    assert layout.unified_controllers == {"hugetlb"}
    assert layout.unified_own_dir == fs(sys_root, "unified")
    assert "memory" in layout.v1 and "hugetlb" not in layout.v1


def test_detect_v2(v2_host: tuple[str, str]) -> None:
    proc, sys_root = v2_host
    layout = detect(proc, sys_root)
    assert layout.mode == "v2"
    assert layout.v1 == {}
    assert layout.unified_mount == fs(sys_root, "")[:-1]
    assert "memory" in layout.unified_controllers
    assert layout.unified_own_dir == fs(sys_root, "user.slice/session-1.scope")


def test_detect_only_named_v1_beside_cgroup2_is_hybrid(tmp_path: Path) -> None:
    mounts = "\n".join(line for line in V1_MOUNTS.splitlines()
                       if "cgroup cgroup" not in line or "name=systemd" in line)
    proc, sys_root = make_host(tmp_path, mounts + "\n" + UNIFIED_MOUNT, V1_CGROUP,
                               "cpu memory pids")
    layout = detect(proc, sys_root)
    assert layout.mode == "hybrid"
    assert set(layout.v1) == {"name=systemd"}


def test_detect_ignores_mounts_hidden_by_a_later_mount(tmp_path: Path) -> None:
    """A private mount namespace that put cgroup2 over /sys/fs/cgroup (as the integration
    test does): the old v1 mounts and the old unified one are unreachable -> v2."""
    over = "50 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n"
    proc, sys_root = make_host(tmp_path, V1_MOUNTS + UNIFIED_MOUNT + over, V1_CGROUP,
                               "hugetlb")
    layout = detect(proc, sys_root)
    assert layout.mode == "v2"
    assert layout.unified_mount == os.path.join(sys_root, "fs/cgroup")

    entries = parse_mountinfo(V1_MOUNTS + UNIFIED_MOUNT + over)
    visible = {e.mount_id for e in visible_mounts(entries)}
    assert visible == {23, 25, 50}


def test_detect_tmpfs_over_cgroup_with_rebound_v1_is_v1(tmp_path: Path) -> None:
    """tmpfs over /sys/fs/cgroup, v1 hierarchies mounted again below it, no cgroup2."""
    again = ("60 31 0:90 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
             "61 60 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
             "62 60 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n")
    proc, sys_root = make_host(tmp_path, V1_MOUNTS + UNIFIED_MOUNT + again, V1_CGROUP,
                               "hugetlb")
    layout = detect(proc, sys_root)
    assert layout.mode == "v1"
    assert set(layout.v1) == {"memory", "freezer"}


def test_detect_mount_root_and_escaped_mount_point(tmp_path: Path) -> None:
    """A hierarchy mounted showing a sub-cgroup (as inside a container): the own cgroup
    is found relative to the mount root; mountinfo escapes spaces as \\040."""
    mounts = ("25 1 0:22 / /sys rw - sysfs sysfs rw\n"
              "35 25 0:32 /outer /sys/fs/cgroup/mem\\040x rw - cgroup cgroup rw,memory\n")
    proc, sys_root = make_host(tmp_path, mounts, "4:memory:/outer/inner\n")
    layout = detect(proc, sys_root)
    h = layout.v1["memory"]
    assert h.mount_point == fs(sys_root, "mem x")
    assert h.own_dir == fs(sys_root, "mem x/inner")
    assert cgroup_dir("/m", "/outer", "/elsewhere") is None


# --- path resolution ----------------------------------------------------------------------

def test_relative_path_is_under_own_cgroup_per_hierarchy(hybrid_host: tuple[str, str]) -> None:
    layout = detect(*hybrid_host)
    _, sys_root = hybrid_host
    m = open_manager("grp/c1", "id", layout=layout)
    assert m.v1["memory"] == fs(sys_root, "memory") + MEM_OWN + "/grp/c1"
    assert m.v1["pids"] == fs(sys_root, "pids/grp/c1")
    assert m.v1["cpu"] == m.v1["cpuacct"] == fs(sys_root, "cpu,cpuacct/grp/c1")
    assert m.v1["name=systemd"] == fs(sys_root, "systemd/grp/c1")
    assert m.unified == fs(sys_root, "unified/grp/c1")
    assert m.mode == "hybrid"


def test_absolute_path_is_under_each_mount_point(hybrid_host: tuple[str, str]) -> None:
    layout = detect(*hybrid_host)
    _, sys_root = hybrid_host
    m = open_manager("/a/b/", "id", layout=layout)
    assert m.v1["memory"] == fs(sys_root, "memory/a/b")
    assert m.unified == fs(sys_root, "unified/a/b")


def test_absent_path_is_relative_id(v1_host: tuple[str, str]) -> None:
    _, sys_root = v1_host
    m = open_manager(None, "ctr-7", layout=detect(*v1_host))
    assert m.v1["memory"] == fs(sys_root, "memory") + MEM_OWN + "/ctr-7"
    assert m.v1["freezer"] == fs(sys_root, "freezer/ctr-7")
    assert m.unified is None


def test_v2_relative_path_is_under_the_parent_of_own(v2_host: tuple[str, str]) -> None:
    """runc (fs2/defaultpath.go): the runtime's own cgroup has processes, so a child of it
    could never get controllers; the sibling position is used."""
    _, sys_root = v2_host
    m = open_manager("c1", "id", layout=detect(*v2_host))
    assert m.unified == fs(sys_root, "user.slice/c1")
    assert m.v1 == {}


def test_dots_that_stay_inside_are_folded(v1_host: tuple[str, str]) -> None:
    _, sys_root = v1_host
    m = open_manager("a/./x/../b", "id", layout=detect(*v1_host))
    assert m.v1["pids"] == fs(sys_root, "pids/a/b")


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/../x", "/a/../../etc"])
def test_escaping_paths_are_refused(v1_host: tuple[str, str], path: str) -> None:
    with pytest.raises(CgroupError, match=r"linux\.cgroupsPath: .*escapes"):
        open_manager(path, "id", layout=detect(*v1_host))


@pytest.mark.parametrize("path", ["/", ".", "a/.."])
def test_path_naming_no_own_cgroup_is_refused(v1_host: tuple[str, str], path: str) -> None:
    with pytest.raises(CgroupError, match="linux.cgroupsPath"):
        open_manager(path, "id", layout=detect(*v1_host))


@pytest.mark.parametrize(("cgpath", "expected"), [
    ("a-b.slice:pfx:name", "/a.slice/a-b.slice/pfx-name.scope"),
    ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
    (":pfx:name", "/system.slice/pfx-name.scope"),
    ("machine.slice::name", "/machine.slice/name.scope"),
    ("-.slice:p:n", "/p-n.scope"),
    ("a.slice:p:sub.slice", "/a.slice/sub.slice"),
    (None, "/system.slice/runc-cid.scope"),
])
def test_systemd_paths(cgpath: str | None, expected: str) -> None:
    assert systemd_path(cgpath, "cid") == expected


def test_systemd_form_through_open_manager(hybrid_host: tuple[str, str]) -> None:
    _, sys_root = hybrid_host
    m = open_manager("x-y-z.slice:runc:c9", "c9", systemd=True, layout=detect(*hybrid_host))
    want = "x.slice/x-y.slice/x-y-z.slice/runc-c9.scope"
    assert m.v1["memory"] == fs(sys_root, "memory/" + want)   # absolute: not under own
    assert m.unified == fs(sys_root, "unified/" + want)


@pytest.mark.parametrize("cgpath", ["just-a-path", "a.slice:b", "a:b:c:d", "nope:p:n",
                                    "a--b.slice:p:n", "-a.slice:p:n", "a.slice:p:",
                                    "a.slice:p:../x", ".slice:p:n"])
def test_systemd_malformed(cgpath: str) -> None:
    with pytest.raises(CgroupError, match="linux.cgroupsPath"):
        systemd_path(cgpath, "cid")


def test_expand_slice() -> None:
    assert expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert expand_slice("user.slice") == "/user.slice"
    with pytest.raises(CgroupError):
        expand_slice("a/b.slice")


def test_no_hierarchy_at_all(tmp_path: Path) -> None:
    proc, sys_root = make_host(tmp_path, "25 1 0:22 / /sys rw - sysfs sysfs rw\n", "0::/\n")
    with pytest.raises(CgroupError, match="no cgroup hierarchy"):
        open_manager(None, "id", layout=detect(proc, sys_root))


def test_cgroup_error_is_a_pyoci_error() -> None:
    assert issubclass(CgroupError, PyociError)


# --- create / add / destroy on a fake tree --------------------------------------------------

def test_create_makes_every_directory_and_fills_empty_cpuset(
        hybrid_host: tuple[str, str]) -> None:
    _, sys_root = hybrid_host
    m = open_manager("/grp/c1", "id", layout=detect(*hybrid_host))
    cpuset_root = Path(fs(sys_root, "cpuset"))
    (cpuset_root / "cpuset.cpus").write_text("0-3\n")
    (cpuset_root / "cpuset.mems").write_text("0\n")
    # The kernel would create these files empty with each directory; pre-make the levels.
    for level in (cpuset_root / "grp", cpuset_root / "grp/c1"):
        level.mkdir()
        (level / "cpuset.cpus").write_text("")
        (level / "cpuset.mems").write_text("" if level.name == "c1" else "1\n")
    m.create()
    for d in m.directories():
        assert os.path.isdir(d), d
    assert len(m.directories()) == 8   # 7 v1 hierarchies (cpu,cpuacct shared) + unified
    assert (cpuset_root / "grp/c1/cpuset.cpus").read_text() == "0-3"
    # mems came from the direct parent, which already had its own value.
    assert (cpuset_root / "grp/c1/cpuset.mems").read_text() == "1"
    assert m.exists()


def test_create_rolls_back_on_failure(v1_host: tuple[str, str]) -> None:
    _, sys_root = v1_host
    m = open_manager("/grp/c1", "id", layout=detect(*v1_host))
    # Make the freezer hierarchy unusable: a file where a directory must go.
    Path(fs(sys_root, "freezer/grp")).write_text("")
    with pytest.raises(CgroupError, match=r"creating the cgroup .*freezer/grp/c1"):
        m.create()
    assert not os.path.exists(fs(sys_root, "memory/grp"))
    assert not os.path.exists(fs(sys_root, "pids/grp"))


def _kernelize(m: Manager) -> None:
    """Give each fake directory the interface files the kernel would show."""
    for d in m.directories():
        for name in ("cgroup.procs", "freezer.state", "cgroup.freeze", "cgroup.events"):
            Path(d, name).write_text("")


def test_add_writes_cgroup_procs_everywhere(hybrid_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    m.create()
    _kernelize(m)
    m.add(4242)
    for d in m.directories():
        assert Path(d, "cgroup.procs").read_text() == "4242", d


def test_add_failure_names_directory(v1_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v1_host))
    m.create()   # no cgroup.procs in a fake dir: ENOENT like a vanished cgroup
    with pytest.raises(CgroupError, match=r"adding pid 7 to .*c1.*no such file"):
        m.add(7)


def test_destroy_removes_children_first_and_tolerates_absence(
        hybrid_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    m.create()
    os.makedirs(os.path.join(m.v1["memory"], "sub/subsub"))
    os.rmdir(m.v1["pids"])   # already gone in one hierarchy
    m.destroy()
    assert not m.exists()
    m.destroy()   # a second delete is fine


def test_destroy_retries_ebusy(monkeypatch: pytest.MonkeyPatch,
                               v1_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v1_host))
    m.create()
    real_rmdir = os.rmdir
    busy = {"left": 2}

    def flaky(path: str) -> None:
        if path == m.v1["memory"] and busy["left"]:
            busy["left"] -= 1
            raise OSError(errno.EBUSY, "busy")
        real_rmdir(path)

    monkeypatch.setattr(mgr.os, "rmdir", flaky)
    m.destroy()
    assert busy["left"] == 0 and not m.exists()


def test_destroy_gives_up_on_lasting_ebusy(monkeypatch: pytest.MonkeyPatch,
                                          v1_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v1_host))
    m.create()
    real_rmdir = os.rmdir

    def busy(path: str) -> None:
        if path == m.v1["freezer"]:
            raise OSError(errno.EBUSY, "busy")
        real_rmdir(path)

    monkeypatch.setattr(mgr.os, "rmdir", busy)
    monkeypatch.setattr(mgr, "RMDIR_TIMEOUT", 0.05)
    with pytest.raises(CgroupError, match=r"freezer/c1: device or resource busy"):
        m.destroy()
    assert not os.path.exists(m.v1["memory"])   # the others were still removed


# --- a directory that is not the container's ---------------------------------------------

@pytest.mark.parametrize("path", ["/process_api", MEM_OWN, MEM_OWN + "/"])
def test_path_naming_own_cgroup_or_an_ancestor_is_refused(v1_host: tuple[str, str],
                                                          path: str) -> None:
    """An absolute path at or above the runtime's memory cgroup (the host's job cgroup
    here): delete would kill the runtime and its neighbours."""
    _, sys_root = v1_host
    with pytest.raises(CgroupError) as exc:
        open_manager(path, "id", layout=detect(*v1_host))
    d = os.path.normpath(fs(sys_root, "memory") + path)
    how = "is" if d.endswith("9f7c") else "is an ancestor of"
    assert str(exc.value).startswith(
        f"linux.cgroupsPath: {path!r} resolves to {d}, which {how} the runtime's own cgroup "
        f"in the memory hierarchy ({fs(sys_root, 'memory')}{MEM_OWN}); ")
    open_manager(MEM_OWN + "/c1", "id", layout=detect(*v1_host))   # below it: fine


def test_v2_relative_path_naming_own_cgroup_is_refused(v2_host: tuple[str, str]) -> None:
    """On v2 a relative path is placed beside the runtime's cgroup; its own name is it."""
    with pytest.raises(CgroupError, match=r"which is the runtime's own cgroup in the unified"):
        open_manager("session-1.scope", "id", layout=detect(*v2_host))


def test_systemd_path_above_own_cgroup_is_refused(tmp_path: Path) -> None:
    own = "4:memory:/system.slice/job.service\n8:pids:/\n0::/system.slice/job.service\n"
    proc, sys_root = make_host(tmp_path, V1_MOUNTS + UNIFIED_MOUNT, own, "hugetlb\n")
    layout = detect(proc, sys_root)
    with pytest.raises(CgroupError, match=r"^linux\.cgroupsPath: '-\.slice::system\.slice' "
                                          r"resolves to .*memory/system\.slice, which is an "
                                          r"ancestor of the runtime's own cgroup"):
        open_manager("-.slice::system.slice", "id", systemd=True, layout=layout)
    # Without a cgroupsPath the systemd driver's default is checked too.
    inside = make_host(tmp_path / "h2", V1_MOUNTS, "4:memory:/system.slice/runc-id.scope/x\n")
    with pytest.raises(CgroupError, match=r"^linux\.cgroupsPath: the systemd default resolves "
                                          r"to .*/memory/system\.slice/runc-id\.scope, which"):
        open_manager(None, "id", systemd=True, layout=detect(*inside))
    m = open_manager("system.slice:p:c1", "c1", systemd=True, layout=layout)
    assert m.unified == fs(sys_root, "unified/system.slice/p-c1.scope")


def _foreign(m: Manager, hierarchy: str, files: dict[str, str]) -> str:
    """Pre-make the container's directory in one hierarchy, as something else's."""
    d = m.unified if hierarchy == "unified" else m.v1[hierarchy]
    assert d is not None
    for rel, text in files.items():
        path = Path(d, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return d


@pytest.mark.parametrize(("hierarchy", "files", "where"), [
    ("memory", {"cgroup.procs": "123\n"}, ""),
    ("pids", {"cgroup.procs": "", "inner/deeper/cgroup.procs": "77\n"}, "/inner/deeper"),
    # Processes of another pid namespace show as 0: still processes.
    ("unified", {"cgroup.procs": "0\n0\n"}, ""),
    ("unified", {"cgroup.procs": "", "cgroup.events": "populated 1\nfrozen 0\n"}, ""),
])
def test_create_refuses_a_cgroup_in_use(hybrid_host: tuple[str, str], hierarchy: str,
                                        files: dict[str, str], where: str) -> None:
    m = open_manager("/grp/c1", "id", layout=detect(*hybrid_host))
    d = _foreign(m, hierarchy, files)
    record = m.to_state()          # stored before create, as the create operation does
    with pytest.raises(CgroupError) as exc:
        m.create()
    assert re.fullmatch(
        rf"linux\.cgroupsPath: the container's cgroup {re.escape(d)} is not empty: \d+ "
        rf"process\(es\) found in {re.escape(d + where)}; it is not this container's "
        r"\(delete and kill --all would act on those processes\)", str(exc.value))
    # What create made is gone again; the foreign cgroup is as it was.
    assert [x for x in m.directories() if os.path.exists(x)] == [d]
    for rel, text in files.items():
        assert Path(d, rel).read_text() == text
    assert record["created"] is False and not m.created


def test_refused_create_cleans_up_nothing_foreign(monkeypatch: pytest.MonkeyPatch,
                                                  hybrid_host: tuple[str, str]) -> None:
    """The create operation records the cgroup before create() and, after a failure,
    removes the cgroup from that record: it must neither signal nor remove the other
    container's processes and directories."""
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    d = _foreign(m, "freezer", {"cgroup.procs": "4242\n", "freezer.state": "THAWED\n",
                                "sub/cgroup.procs": ""})
    kill_file = _foreign(m, "unified", {"cgroup.procs": "0\n", "cgroup.kill": ""})
    record = m.to_state()
    with pytest.raises(CgroupError, match="is not empty"):
        m.create()
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(mgr.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    again = manager_from_state(json.loads(json.dumps(record)))
    assert not again.exists() and again.pids() == [] and not again.frozen()
    again.kill(signal.SIGKILL)
    again.kill(signal.SIGTERM)
    again.destroy()
    assert sent == []
    assert Path(kill_file, "cgroup.kill").read_text() == ""
    assert Path(d, "freezer.state").read_text() == "THAWED\n"
    assert os.path.isdir(os.path.join(d, "sub")) and os.path.isdir(kill_file)


@pytest.mark.parametrize(("file", "value", "reason"), [
    ("freezer.state", "FROZEN\n", "freezer.state is FROZEN"),
    ("freezer.state", "FREEZING\n", "freezer.state is FREEZING"),
    ("cgroup.freeze", "1\n", "cgroup.freeze is 1"),
    ("cgroup.events", "populated 0\nfrozen 1\n",
     "cgroup.events says frozen 1 (an ancestor cgroup is frozen)"),
])
def test_create_refuses_a_frozen_cgroup(hybrid_host: tuple[str, str], file: str, value: str,
                                        reason: str) -> None:
    """Joining a frozen cgroup freezes the init: create would wait forever."""
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    d = _foreign(m, "freezer" if file == "freezer.state" else "unified",
                 {"cgroup.procs": "", file: value})
    with pytest.raises(CgroupError) as exc:
        m.create()
    assert str(exc.value) == (f"linux.cgroupsPath: the container's cgroup {d} is "
                              f"unexpectedly frozen ({d}/{reason})")
    assert [x for x in m.directories() if os.path.exists(x)] == [d]


def test_create_takes_over_an_empty_cgroup(hybrid_host: tuple[str, str]) -> None:
    """A leftover empty, thawed directory (e.g. of a crashed create) is reused, as runc."""
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    d = _foreign(m, "freezer", {"cgroup.procs": "", "freezer.state": "THAWED\n"})
    m.create()
    assert m.created and m.exists() and m.to_state()["parents"] == []
    os.remove(os.path.join(d, "cgroup.procs"))
    os.remove(os.path.join(d, "freezer.state"))
    m.destroy()
    assert not any(os.path.exists(x) for x in m.directories())


# --- pids that are not pids ----------------------------------------------------------------

@pytest.mark.parametrize("host", ["v1_host", "v2_host"])
def test_pid_zero_is_never_listed_nor_signalled(monkeypatch: pytest.MonkeyPatch,
                                                request: pytest.FixtureRequest,
                                                host: str) -> None:
    """cgroup2 prints 0 for a process outside the reader's pid namespace; kill(0, sig)
    would signal the caller's own process group."""
    m = open_manager("c1", "id", layout=detect(*request.getfixturevalue(host)))
    m.create()
    _kernelize(m)
    top = m.unified if m.unified is not None else m.v1["freezer"]
    Path(top, "cgroup.procs").write_text("0\n42\n0\n")
    os.makedirs(os.path.join(top, "sub"))
    Path(top, "sub", "cgroup.procs").write_text("0\n")
    assert m.pids() == [42]
    assert mgr._read_pids(os.path.join(top, "sub", "cgroup.procs")) == []
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(mgr.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    m.kill(signal.SIGTERM)
    m.kill(signal.SIGKILL)      # no cgroup.kill file here: per pid
    assert sent == [(42, signal.SIGTERM), (42, signal.SIGKILL)]


# --- ancestors made by create ----------------------------------------------------------------

def test_create_records_and_destroy_removes_the_levels_it_made(
        hybrid_host: tuple[str, str]) -> None:
    _, sys_root = hybrid_host
    m = open_manager("a/b/c1", "id", layout=detect(*hybrid_host))
    os.makedirs(fs(sys_root, "pids/a"))              # exists before: not create's
    record = m.to_state()
    m.create()
    parents = record["parents"]                       # the stored record followed create
    assert record["created"] is True and parents == m.parents
    mem = fs(sys_root, "memory") + MEM_OWN
    assert mem + "/a" in parents and mem + "/a/b" in parents
    assert fs(sys_root, "pids/a/b") in parents and fs(sys_root, "pids/a") not in parents
    assert not set(parents) & set(m.directories())
    assert len(parents) == 2 * len(m.directories()) - 1
    # A sibling of the container in one hierarchy keeps its parents there.
    os.mkdir(fs(sys_root, "freezer/a/b/other"))
    again = manager_from_state(json.loads(json.dumps(record)))
    again.destroy()
    assert not any(os.path.exists(x) for x in m.directories())
    assert os.path.isdir(fs(sys_root, "freezer/a/b/other"))
    assert os.path.isdir(fs(sys_root, "pids/a")) and not os.path.exists(fs(sys_root, "pids/a/b"))
    assert not os.path.exists(mem + "/a") and not os.path.exists(fs(sys_root, "unified/a"))
    os.rmdir(fs(sys_root, "freezer/a/b/other"))
    again.destroy()                                   # the rest goes; gone ones are fine
    assert not os.path.exists(fs(sys_root, "freezer/a"))


def test_destroy_reports_a_parent_it_cannot_remove(monkeypatch: pytest.MonkeyPatch,
                                                   v1_host: tuple[str, str]) -> None:
    m = open_manager("a/c1", "id", layout=detect(*v1_host))
    m.create()
    stuck = m.v1["pids"].rsplit("/", 1)[0]
    real_rmdir = os.rmdir

    def rmdir(path: str) -> None:
        if path == stuck:
            raise OSError(errno.EACCES, "denied")
        real_rmdir(path)

    monkeypatch.setattr(mgr.os, "rmdir", rmdir)
    with pytest.raises(CgroupError, match=rf"{re.escape(stuck)}: permission denied"):
        m.destroy()


def test_old_state_without_new_keys(v1_host: tuple[str, str]) -> None:
    """state.json written before created/parents/unified_base: the directories are the
    container's, and no ancestor is removed."""
    m = open_manager("a/c1", "id", layout=detect(*v1_host))
    m.create()
    old = {k: v for k, v in m.to_state().items()
           if k in ("mode", "v1", "unified", "unified_mount")}
    again = manager_from_state(old)
    assert again.created and again.parents == [] and again.exists()
    again.destroy()
    assert not again.exists()
    assert os.path.isdir(os.path.dirname(m.v1["pids"]))


# --- state round trip ---------------------------------------------------------------------

def test_state_round_trip(hybrid_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    doc = json.loads(json.dumps(m.to_state()))
    again = manager_from_state(doc)
    assert again.mode == "hybrid"
    assert again.v1 == m.v1 and again.unified == m.unified
    assert again.directories() == m.directories()


@pytest.mark.parametrize("doc", [{}, {"mode": "v3"}, {"mode": "v1", "v1": 5},
                                 {"mode": "v1", "created": "yes"},
                                 {"mode": "v2", "unified_base": 7}])
def test_malformed_state(doc: dict[str, Any]) -> None:
    with pytest.raises(CgroupError, match="state.json"):
        manager_from_state(doc)


def test_manager_from_state_stays_light(tmp_path: Path) -> None:
    """The hot path (state/kill/delete/pause) must not pull attrs, jsonschema or the
    resource writers just to look at a cgroup."""
    d = tmp_path / "cg"
    d.mkdir()
    (d / "cgroup.procs").write_text("1\n")
    (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    probe = f"""
import sys, json
from pyoci.cgroups import manager_from_state
m = manager_from_state({{"mode": "v2", "v1": {{}}, "unified": {str(d)!r},
                        "unified_mount": {str(tmp_path)!r}}})
out = [m.exists(), m.frozen(), m.pids()]
heavy = sorted(n for n in sys.modules if n.split('.')[0] in ("attr", "attrs", "jsonschema")
               or n in ("pyoci.cgroups.controllers", "pyoci.cgroups.stats",
                        "pyoci.cgroups.bpf_devices", "pyoci.config.model"))
print(json.dumps({{"out": out, "heavy": heavy}}))
"""
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True)
    data = json.loads(res.stdout)
    assert data["out"] == [True, False, [1]]
    assert data["heavy"] == []


# --- set(): where each controller goes ------------------------------------------------------

class Recorder:
    """Stands in for controllers.py / devices_v1.py / bpf_devices.py / stats.py."""

    def __init__(self, v1: dict[str, str] | None = None,
                 v2: dict[str, str] | None = None) -> None:
        self.v1_needed = v1 or {}
        self.v2_needed = v2 or {}
        self.calls: list[tuple[Any, ...]] = []

    def needed_v1(self, res: Resources) -> dict[str, str]:
        return dict(self.v1_needed)

    def needed_v2(self, res: Resources) -> dict[str, str]:
        return dict(self.v2_needed)

    def apply_v1(self, controller: str, directory: str, res: Resources, *,
                 update: bool = False) -> None:
        self.calls.append(("v1", controller, directory, update))

    def apply_v2(self, directory: str, res: Resources, controllers: Any, *,
                 update: bool = False) -> None:
        self.calls.append(("v2", directory, tuple(sorted(controllers)), update))

    def write_rules(self, directory: str, rules: Any) -> None:
        self.calls.append(("devices_v1", directory, tuple(rules)))

    def install(self, directory: str, rules: Any) -> None:
        self.calls.append(("bpf", directory, tuple(rules)))


def _plug(monkeypatch: pytest.MonkeyPatch, name: str, rec: Any) -> None:
    mod = types.ModuleType(f"pyoci.cgroups.{name}")
    for attr in ("needed_v1", "needed_v2", "apply_v1", "apply_v2", "write_rules", "install",
                 "stats_v1", "stats_v2", "oom_kill_count_v1", "oom_kill_count_v2"):
        if hasattr(rec, attr):
            setattr(mod, attr, getattr(rec, attr))
    monkeypatch.setitem(sys.modules, f"pyoci.cgroups.{name}", mod)
    monkeypatch.setattr(pyoci.cgroups, name, mod, raising=False)


def test_set_v1_writes_each_mounted_controller(monkeypatch: pytest.MonkeyPatch,
                                               v1_host: tuple[str, str]) -> None:
    rec = Recorder(v1={"memory": "linux.resources.memory.limit",
                       "cpu": "linux.resources.cpu.shares"})
    _plug(monkeypatch, "controllers", rec)
    m = open_manager("c1", "id", layout=detect(*v1_host))
    m.set(Resources(), None, update=True)
    assert sorted(rec.calls) == [("v1", "cpu", m.v1["cpu"], True),
                                 ("v1", "memory", m.v1["memory"], True)]


def test_set_v1_missing_controller_names_field(monkeypatch: pytest.MonkeyPatch,
                                               v1_host: tuple[str, str]) -> None:
    rec = Recorder(v1={"memory": "linux.resources.memory.limit",
                       "net_cls": "linux.resources.network.classID"})
    _plug(monkeypatch, "controllers", rec)
    m = open_manager("c1", "id", layout=detect(*v1_host))
    with pytest.raises(CgroupError) as exc:
        m.set(Resources(), None)
    assert str(exc.value) == ("linux.resources.network.classID needs the net_cls "
                              "controller, which this host does not mount")
    assert rec.calls == []   # checked before anything is written


def test_set_v1_refuses_unified(monkeypatch: pytest.MonkeyPatch,
                                v1_host: tuple[str, str]) -> None:
    _plug(monkeypatch, "controllers", Recorder())
    m = open_manager("c1", "id", layout=detect(*v1_host))
    with pytest.raises(CgroupError, match=r"unified\.pids\.max needs cgroup v2"):
        m.set(Resources(unified={"pids.max": "5"}), None)


def test_set_hybrid_puts_hugetlb_on_unified(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    proc, sys_root = make_host(tmp_path, V1_MOUNTS + UNIFIED_MOUNT, V1_CGROUP, "hugetlb\n")
    rec = Recorder(v1={"memory": "linux.resources.memory.limit",
                       "hugetlb": "linux.resources.hugepageLimits"})
    _plug(monkeypatch, "controllers", rec)
    m = open_manager("grp/c1", "id", layout=detect(proc, sys_root))
    m.create()
    root_ctl = Path(fs(sys_root, "unified/cgroup.subtree_control"))
    root_ctl.write_text("hugetlb\n")          # delegated by the host
    grp = Path(fs(sys_root, "unified/grp"))
    (grp / "cgroup.subtree_control").write_text("")
    (grp / "cgroup.type").write_text("domain\n")
    m.set(Resources(), None)
    assert ("v1", "memory", m.v1["memory"], False) in rec.calls
    assert ("v2", m.unified, ("hugetlb",), False) in rec.calls
    assert len(rec.calls) == 2
    # Enabled in grp, the container's parent, below the runtime's own cgroup (the root
    # here); the root already had it and is left alone; not in c1 itself.
    assert root_ctl.read_text() == "hugetlb\n"
    assert (grp / "cgroup.subtree_control").read_text() == "+hugetlb"
    assert not Path(m.unified, "cgroup.subtree_control").exists()


def test_set_hybrid_never_enables_in_the_root(monkeypatch: pytest.MonkeyPatch,
                                              hybrid_host: tuple[str, str]) -> None:
    """The runtime sits in the root of the unified hierarchy (this host kind): enabling
    hugetlb there would change the whole host. Refused, with the file to change."""
    _, sys_root = hybrid_host
    rec = Recorder(v1={"hugetlb": "linux.resources.hugepageLimits"})
    _plug(monkeypatch, "controllers", rec)
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    assert m.unified_base == fs(sys_root, "unified")
    m.create()
    root_ctl = Path(fs(sys_root, "unified/cgroup.subtree_control"))
    with pytest.raises(CgroupError) as exc:
        m.set(Resources(), None)
    assert str(exc.value) == (
        f"linux.resources.hugepageLimits: the hugetlb controller is not delegated to this "
        f"cgroup: {root_ctl} does not enable it, and pyoci changes cgroup.subtree_control "
        f"only below the hierarchy's root, at or below its own cgroup "
        f"({fs(sys_root, 'unified')}) (enable it in {root_ctl})")
    assert root_ctl.read_text() == ""
    assert rec.calls == []


def test_set_hybrid_unified_key_for_a_v1_controller(monkeypatch: pytest.MonkeyPatch,
                                                    hybrid_host: tuple[str, str]) -> None:
    _plug(monkeypatch, "controllers", Recorder())
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    with pytest.raises(CgroupError, match=r"unified\.memory\.high needs the memory controller "
                                          r"on the unified hierarchy.*cgroup v1"):
        m.set(Resources(unified={"memory.high": "1G"}), None)


def test_set_hybrid_controller_nowhere(monkeypatch: pytest.MonkeyPatch,
                                       hybrid_host: tuple[str, str]) -> None:
    _plug(monkeypatch, "controllers", Recorder(v1={"rdma": "linux.resources.rdma"}))
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    with pytest.raises(CgroupError, match="linux.resources.rdma needs the rdma controller"):
        m.set(Resources(), None)


def test_set_v2_needs_controllers_enabled_above_own(monkeypatch: pytest.MonkeyPatch,
                                                    v2_host: tuple[str, str]) -> None:
    """On v2 the container is a sibling of the runtime's cgroup: its parent is above the
    runtime's own cgroup, so what is missing there is refused, not enabled."""
    _, sys_root = v2_host
    rec = Recorder(v2={"memory": "linux.resources.memory.limit",
                       "pids": "linux.resources.pids.limit",
                       "cgroup": "linux.resources.unified.cgroup.max.depth"})
    _plug(monkeypatch, "controllers", rec)
    m = open_manager("c1", "id", layout=detect(*v2_host))
    m.create()
    slice_ctl = Path(fs(sys_root, "user.slice/cgroup.subtree_control"))
    slice_ctl.write_text("pids\n")
    Path(fs(sys_root, "user.slice/cgroup.type")).write_text("domain\n")
    root_ctl = Path(fs(sys_root, "cgroup.subtree_control"))
    root_ctl.write_text("memory pids\n")
    with pytest.raises(CgroupError, match=r"^linux\.resources\.memory\.limit: the memory "
                                          r"controller is not delegated to this cgroup: "
                                          + re.escape(str(slice_ctl))):
        m.set(Resources(), None)
    assert slice_ctl.read_text() == "pids\n" and rec.calls == []
    slice_ctl.write_text("memory pids\n")     # delegated: nothing to write
    m.set(Resources(), None)
    assert rec.calls == [("v2", m.unified, ("memory", "pids"), False)]
    assert slice_ctl.read_text() == "memory pids\n"
    assert root_ctl.read_text() == "memory pids\n"


@pytest.mark.parametrize("namespace_root", [True, False])
def test_set_v2_enables_at_own_cgroup_unless_real_root(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path,
                                                       namespace_root: bool) -> None:
    """In a cgroup namespace the runtime's cgroup is the mount point, a delegated non-root
    cgroup (it has cgroup.type): enabling there is fine. The real root (no cgroup.type)
    never gets a write."""
    proc, sys_root = make_host(tmp_path, V2_MOUNTS, "0::/\n", "memory pids\n")
    rec = Recorder(v2={"memory": "linux.resources.memory.limit"})
    _plug(monkeypatch, "controllers", rec)
    if namespace_root:
        Path(fs(sys_root, "cgroup.type")).write_text("domain\n")
    m = open_manager("c1", "id", layout=detect(proc, sys_root))
    assert m.unified == fs(sys_root, "c1")
    m.create()
    root_ctl = Path(fs(sys_root, "cgroup.subtree_control"))
    if namespace_root:
        m.set(Resources(), None)
        assert root_ctl.read_text() == "+memory"
        assert rec.calls == [("v2", m.unified, ("memory",), False)]
    else:
        with pytest.raises(CgroupError, match="not delegated to this cgroup"):
            m.set(Resources(), None)
        assert root_ctl.read_text() == "" and rec.calls == []


def test_set_v2_without_a_known_own_cgroup_enables_nothing(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """A record from before unified_base existed: nothing is known to be delegated."""
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.type").write_text("domain\n")
    (tmp_path / "c1").mkdir()
    _plug(monkeypatch, "controllers", Recorder(v2={"pids": "linux.resources.pids.limit"}))
    (tmp_path / "cgroup.controllers").write_text("pids\n")
    m = manager_from_state({"mode": "v2", "v1": {}, "unified": str(tmp_path / "c1"),
                            "unified_mount": str(tmp_path)})
    with pytest.raises(CgroupError, match=r"not delegated .*own cgroup \(unknown\)"):
        m.set(Resources(), None)
    assert (tmp_path / "cgroup.subtree_control").read_text() == ""


def test_set_v2_unavailable_controller(monkeypatch: pytest.MonkeyPatch,
                                       v2_host: tuple[str, str]) -> None:
    _plug(monkeypatch, "controllers", Recorder(v2={"rdma": "linux.resources.rdma"}))
    m = open_manager("c1", "id", layout=detect(*v2_host))
    with pytest.raises(CgroupError, match=r"linux\.resources\.rdma needs the rdma controller, "
                                          r"which this host's cgroup v2 hierarchy does not "
                                          r"offer \(cgroup.controllers: cpu cpuset hugetlb"):
        m.set(Resources(), None)


@pytest.mark.parametrize("host", ["v1_host", "hybrid_host", "v2_host"])
def test_device_rules_go_to_the_right_mechanism(monkeypatch: pytest.MonkeyPatch,
                                                request: pytest.FixtureRequest,
                                                host: str) -> None:
    rec = Recorder()
    _plug(monkeypatch, "devices_v1", rec)
    _plug(monkeypatch, "bpf_devices", rec)
    m = open_manager("c1", "id", layout=detect(*request.getfixturevalue(host)))
    rules = (DeviceRule(allow=False), DeviceRule(allow=True, type="c", major=1, minor=3))
    m.set(None, rules)
    if host == "v2_host":
        assert rec.calls == [("bpf", m.unified, rules)]
    else:
        assert rec.calls == [("devices_v1", m.v1["devices"], rules)]


def test_stats_hybrid_merges_unified(monkeypatch: pytest.MonkeyPatch,
                                     hybrid_host: tuple[str, str]) -> None:
    seen: dict[str, Any] = {}

    class Stats:
        def stats_v1(self, dirs: dict[str, str]) -> dict[str, Any]:
            seen["v1"] = dict(dirs)
            return {"memory": {"usage": 1}}

        def stats_v2(self, directory: str) -> dict[str, Any]:
            seen["v2"] = directory
            return {"memory": {"usage": 99}, "hugetlb": {"2MB": {}}}

        def oom_kill_count_v1(self, directory: str) -> int:
            return 3 if directory == m.v1["memory"] else -1

    _plug(monkeypatch, "stats", Stats())
    m = open_manager("c1", "id", layout=detect(*hybrid_host))
    m.create()
    assert m.stats() == {"memory": {"usage": 1}, "hugetlb": {"2MB": {}}}
    assert "name=systemd" not in seen["v1"] and seen["v1"]["memory"] == m.v1["memory"]
    assert seen["v2"] == m.unified
    assert m.oom_kill_count() == 3


# --- freezer, pids and kill on fake files ---------------------------------------------------

def test_v1_freeze_thaw_files(v1_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v1_host))
    m.create()
    _kernelize(m)
    state = Path(m.v1["freezer"], "freezer.state")
    assert not m.frozen()
    m.freeze()
    assert state.read_text() == "FROZEN" and m.frozen()
    m.thaw()
    assert state.read_text() == "THAWED" and not m.frozen()


def test_v2_freeze_that_never_completes(monkeypatch: pytest.MonkeyPatch,
                                        v2_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v2_host))
    m.create()
    _kernelize(m)
    Path(m.unified, "cgroup.events").write_text("populated 1\nfrozen 0\n")
    monkeypatch.setattr(mgr, "FREEZE_TIMEOUT", 0.05)
    with pytest.raises(CgroupError, match="not every process froze"):
        m.freeze()
    assert Path(m.unified, "cgroup.freeze").read_text() == "0"   # undone
    Path(m.unified, "cgroup.events").write_text("populated 1\nfrozen 1\n")
    m.freeze()
    assert m.frozen()


def test_pids_include_sub_cgroups(v2_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v2_host))
    m.create()
    Path(m.unified, "cgroup.procs").write_text("30\n10\n")
    os.makedirs(os.path.join(m.unified, "a/b"))
    Path(m.unified, "a/b/cgroup.procs").write_text("20\n10\n")
    assert m.pids() == [10, 20, 30]
    gone = mgr.manager_for("v2", {}, str(Path(m.unified, "gone")), m.unified_mount)
    assert gone.pids() == []


def test_kill_with_cgroup_kill(monkeypatch: pytest.MonkeyPatch,
                               v2_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v2_host))
    m.create()
    _kernelize(m)
    Path(m.unified, "cgroup.kill").write_text("")
    Path(m.unified, "cgroup.procs").write_text("77\n")
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(mgr.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    m.kill(signal.SIGKILL)
    assert Path(m.unified, "cgroup.kill").read_text() == "1"
    assert sent == []
    m.kill(signal.SIGTERM)   # cgroup.kill only knows SIGKILL
    assert sent == [(77, signal.SIGTERM)]
    assert Path(m.unified, "cgroup.freeze").read_text() == "0"   # frozen, then thawed


def test_sigkill_thaws_a_paused_container_whatever_events_says_meanwhile(
        v2_host: tuple[str, str]) -> None:
    """While cgroup.kill's victims exit, cgroup.events shows "frozen 0" for a moment; the
    emptied cgroup, still asked to freeze, is "frozen 1" again: a killed container would
    stay paused. The thaw follows cgroup.freeze, read before the kill."""
    m = open_manager("c1", "id", layout=detect(*v2_host))
    m.create()
    _kernelize(m)
    Path(m.unified, "cgroup.kill").write_text("")
    Path(m.unified, "cgroup.freeze").write_text("1\n")
    Path(m.unified, "cgroup.events").write_text("populated 1\nfrozen 0\n")
    m.kill(signal.SIGKILL)
    assert Path(m.unified, "cgroup.kill").read_text() == "1"
    # (O_WRONLY without O_TRUNC on a regular file: "0" overwrote the "1" of "1\n".)
    assert Path(m.unified, "cgroup.freeze").read_text() == "0\n"


def test_kill_v1_freezes_signals_thaws(monkeypatch: pytest.MonkeyPatch,
                                       v1_host: tuple[str, str]) -> None:
    m = open_manager("c1", "id", layout=detect(*v1_host))
    m.create()
    _kernelize(m)
    Path(m.v1["freezer"], "cgroup.procs").write_text("5\n6\n")
    state = Path(m.v1["freezer"], "freezer.state")
    sent: list[tuple[int, int, str]] = []

    def fake_kill(pid: int, sig: int) -> None:
        sent.append((pid, sig, state.read_text()))
        if pid == 6:
            raise ProcessLookupError   # exited meanwhile: fine

    monkeypatch.setattr(mgr.os, "kill", fake_kill)
    m.kill(signal.SIGKILL)   # no cgroup.kill on v1
    assert sent == [(5, signal.SIGKILL, "FROZEN"), (6, signal.SIGKILL, "FROZEN")]
    assert state.read_text() == "THAWED"

    # A paused container stays paused after a non-fatal signal.
    sent.clear()
    m.freeze()
    m.kill(signal.SIGUSR1)
    assert [s[:2] for s in sent] == [(5, signal.SIGUSR1), (6, signal.SIGUSR1)]
    assert m.frozen()


@pytest.mark.parametrize(("v1", "content", "expected"), [
    (True, "FROZEN\n", True), (True, "THAWED\n", False), (True, "FREEZING\n", False),
    (False, "populated 1\nfrozen 1\n", True), (False, "populated 1\nfrozen 0\n", False),
    (True, None, False), (False, None, False),
])
def test_recorded_frozen_agrees_with_the_manager(tmp_path: Path, v1: bool,
                                                 content: str | None, expected: bool) -> None:
    """`state`/`start` read "paused" from the state record without importing the manager
    (pyoci.state.CgroupRecord.frozen); both must say the same for every kernel
    answer."""
    d = tmp_path / "c1"
    d.mkdir()
    if content is not None:
        (d / ("freezer.state" if v1 else "cgroup.events")).write_text(content)
    doc = ({"mode": "v1", "v1": {"freezer": str(d), "pids": str(d)}} if v1 else
           {"mode": "v2", "v1": {}, "unified": str(d), "unified_mount": str(tmp_path)})
    assert manager_from_state(doc).frozen() is expected
    assert pyoci.cgroups.CgroupRecord.from_json(doc).frozen() is expected
    assert pyoci.cgroups.CgroupRecord.from_json(doc | {"created": False}).frozen() is False

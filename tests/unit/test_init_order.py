"""The container init's whole order of effects, against the recording fake of the syscall
layer (tests/unit/fake_syscalls.py): no root, nothing changed on the machine.

Each rule checked here is one the kernel or runc imposes; getting it wrong either fails
at run time only as root or, worse, silently weakens the container:

- the rootfs is set up (mounts, devices) before pivot_root, the old root detached after,
  masked and read-only paths applied after (they name paths of the new root);
- the capability bounding set is reduced while CAP_SETPCAP is still held (before the
  uid change), keep-caps carries the permitted set across setresuid, and the exact sets
  and ambient capabilities are set after it (capabilities(7));
- groups, then gid, then uid: after setresuid the others are forbidden;
- with noNewPrivileges the seccomp filter is loaded last before exec (after
  no_new_privs, so the profile need not allow pyoci's own setup); without it, while
  CAP_SYS_ADMIN is still held (before the capabilities are dropped), as runc does;
- the exec trampoline is made first (an rlimit or the filter could forbid it later) and
  executed last;
- a failure names the step that failed and stops everything after it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from pyoci import init
from pyoci import syscalls as sc
from pyoci.config.loader import load_spec
from pyoci.operations.spec import default_spec
from tests.unit.fake_syscalls import FakeExit, FakeSyscalls


class FakeChannel:
    """The init's end of the sync channel: messages go into the fake's call list, so the
    order of "ready" against the effects is checked too."""

    def __init__(self, fake: FakeSyscalls) -> None:
        self.fake = fake
        self.errors: list[dict[str, Any]] = []

    def send(self, kind: str, **fields: Any) -> None:
        self.fake.calls.append(("chan.send", kind))
        if kind == "error":
            self.errors.append(fields)

    def send_fd(self, kind: str, fd: int, **fields: Any) -> None:
        self.fake.calls.append(("chan.send", kind))

    def expect(self, kind: str) -> dict[str, Any]:
        self.fake.calls.append(("chan.expect", kind))
        if kind == "hooks-done":
            return {"type": kind, "state": {"ociVersion": "1.2.0", "id": "order",
                                            "status": "creating", "bundle": "/b"}}
        return {"type": kind}

    def close(self) -> None:
        self.fake.calls.append(("chan.close",))

    def fileno(self) -> int:
        return 99


SECCOMP = object()  # a compiled filter as far as the init is concerned: it is only loaded


def _spec(**process: Any) -> dict[str, Any]:
    """`runc spec`'s config, run as uid 1000 with an ambient capability, a sysctl and no
    terminal (a pty needs the container's devpts)."""
    doc = default_spec()
    proc = doc["process"]
    proc["terminal"] = False
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    caps = proc["capabilities"]
    caps["inheritable"] = ["CAP_NET_BIND_SERVICE"]
    caps["ambient"] = ["CAP_NET_BIND_SERVICE"]
    proc.update(process)
    doc["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    return doc


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeSyscalls:
    return FakeSyscalls(sandbox=str(tmp_path)).install(monkeypatch)


def _run_init(fake: FakeSyscalls, tmp_path: Path, doc: dict[str, Any],
              seccomp: object = SECCOMP) -> FakeChannel:
    """_setup_and_exec up to its (faked) exec, with a reader on the exec FIFO already
    there (as `start` would be), so that opening it does not block."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    chan = FakeChannel(fake)
    ctx = init.InitContext(spec=load_spec(doc), rootfs=str(rootfs), bundle=str(tmp_path),
                           parent_mnt_ns="mnt:[not this one]", fifo_fd=fifo_fd, joined=[],
                           chan=chan, seccomp=seccomp)  # type: ignore[arg-type]
    try:
        with pytest.raises((FakeExit, init._Failed)):
            init._setup_and_exec(ctx)
    finally:
        os.close(reader)
        for fd in (fifo_fd,):
            try:
                os.close(fd)
            except OSError:
                pass  # the init closed it (as it must) after opening the FIFO
    return chan


def _mount_to(target: str) -> Any:
    return lambda c: c[2] == target


def _before(fake: FakeSyscalls, *positions: int) -> None:
    assert list(positions) == sorted(positions) and len(set(positions)) == len(positions), \
        f"out of order: {positions}\n{fake.calls}"


def _prctl(option: int, arg2: int | None = None) -> Any:
    return lambda c: c[1] == option and (arg2 is None or c[2] == arg2)


def test_rootfs_then_pivot_then_masks_then_process(fake: FakeSyscalls,
                                                   tmp_path: Path) -> None:
    _run_init(fake, tmp_path, _spec())
    rootfs = str(tmp_path / "rootfs")
    f = fake.index
    # Nothing mounted before the process is in its own session and keyring, with umask 0.
    _before(fake, f("close_fds_except"), f("new_session"), f("join_session_keyring"),
            f("umask"), f("mount"))
    # rslave on '/' first, then the rootfs bound onto itself, then the config's mounts in
    # the config's order.
    first = fake.calls[f("mount")]
    assert first[2] == "/" and first[4] == sc.MS_SLAVE | sc.MS_REC
    self_bind = f("mount", lambda c: c[1] == rootfs and c[2] == rootfs)
    order = [f("mount", _mount_to(rootfs + d)) for d in
             ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
              "/sys/fs/cgroup")]
    _before(fake, self_bind, *order)
    # Default devices after /dev is mounted; then loopback, the createContainer hooks'
    # turn, pivot_root, the old root made a slave and detached.
    dev_null = f("mknod", lambda c: c[1] == rootfs + "/dev/null")
    pivot = f("pivot_root")
    _before(fake, order[1], dev_null, f("set_link_up"), f("chan.send", lambda c: c[1] == "hooks"),
            pivot, f("mount", lambda c: c[2] == "." and c[4] == sc.MS_SLAVE | sc.MS_REC),
            f("umount2", lambda c: c[1:] == (".", sc.MNT_DETACH)), f("chdir", _is("/")))
    assert fake.calls[f("fchdir")][1] == rootfs  # pivot_root(".", ".") from inside
    assert all(c[2].startswith(rootfs) for c in fake.calls[:pivot] if c[0] == "mount"
               and c[2] != "/"), "a mount before pivot_root outside the rootfs"
    # After the pivot: sysctls (before /proc/sys turns read-only), masks, read-only paths,
    # hostname, read-only root.
    sysctl = f("write", lambda c: c[1] == "/proc/sys/net/ipv4/ip_forward")
    assert fake.calls[sysctl][2] == b"1"
    masked = [i for i, c in enumerate(fake.calls) if c[0] == "mount" and i > pivot
              and c[2] in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi",
                           "/proc/sched_debug", "/proc/scsi", "/sys/firmware")]
    readonly = [i for i, c in enumerate(fake.calls) if c[0] == "mount" and i > pivot
                and c[2] in ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq",
                             "/proc/sysrq-trigger")]
    assert masked and readonly
    # A masked file is a bind of the container's own verified /dev/null (CVE-2025-31133),
    # made read-only by a second remount; a masked directory a read-only tmpfs.
    for i in masked:
        src, target, fstype, flags = fake.calls[i][1:5]
        ro_remount = sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY
        assert (src, fstype, flags) in (("/dev/null", None, sc.MS_BIND),
                                        ("tmpfs", "tmpfs", sc.MS_RDONLY)) \
            or (src is None and flags & ro_remount == ro_remount), fake.calls[i]
    ro_root = f("mount", lambda c: c[2] == "/" and c[4] & sc.MS_REMOUNT
                and c[4] & sc.MS_RDONLY)
    _before(fake, pivot, sysctl, min(masked), max(masked), min(readonly), max(readonly),
            f("sethostname"), ro_root, f("sealed_memfd"))
    assert fake.calls[f("sethostname")][1] == "pyoci"


def _is(value: Any) -> Any:
    return lambda c: c[1] == value


def test_capabilities_across_the_uid_change(fake: FakeSyscalls, tmp_path: Path) -> None:
    _run_init(fake, tmp_path, _spec())
    f = fake.index
    net_bind = 10  # CAP_NET_BIND_SERVICE
    drops = [c[1] for c in fake.calls if c[0] == "capbset_drop"]
    assert drops and net_bind not in drops and 21 in drops  # CAP_SYS_ADMIN is not kept
    _before(fake, f("sealed_memfd"), f("prlimit"), f("capbset_drop"),
            f("capbset_drop", last=True), f("set_keepcaps", _is(True)), f("setgroups"),
            f("setresgid"), f("setresuid"), f("set_keepcaps", _is(False)), f("capset"),
            f("ambient_clear"), f("ambient_raise"), f("umask", _is(0o022)),
            f("chdir", _is("/"), last=True),
            f("set_no_new_privs"), f("load_seccomp"), f("chan.send", _is("ready")),
            f("open_file"), f("fexecve"))
    assert len(fake.of("load_seccomp")) == 1
    assert fake.calls[f("setgroups")][1:] == ([5],)
    assert fake.calls[f("setresgid")][1:] == (1000, 1000, 1000)
    assert fake.calls[f("setresuid")][1:] == (1000, 1000, 1000)
    effective, permitted, inheritable = fake.calls[f("capset")][1:]
    assert inheritable == 1 << net_bind and permitted & (1 << net_bind)
    assert not permitted & (1 << 21)
    assert fake.calls[f("ambient_raise")][1:] == (net_bind,)
    assert fake.calls[f("prlimit")][1:] == (7, (1024, 1024))  # RLIMIT_NOFILE


def test_exec_trampoline_is_the_last_effect(fake: FakeSyscalls, tmp_path: Path) -> None:
    _run_init(fake, tmp_path, _spec())
    execve = fake.index("fexecve")
    assert fake.calls[execve][1] == "memfd:pyoci-exec"  # the trampoline, not the program
    assert fake.calls[execve][2][0].endswith("/sh") and fake.calls[execve][2][1:] == ["sh"]
    # The only thing after it is what a failed exec would do: the (faked) exit.
    assert fake.names()[execve + 1:] == ["exit_now"]
    assert fake.index("open_file") == execve - 1  # the exec FIFO: `start` came


def test_seccomp_without_no_new_privs_is_loaded_before_the_caps_go(
        fake: FakeSyscalls, tmp_path: Path) -> None:
    _run_init(fake, tmp_path, _spec(noNewPrivileges=False))
    f = fake.index
    assert "set_no_new_privs" not in fake.names()
    assert len(fake.of("load_seccomp")) == 1
    _before(fake, f("prlimit"), f("load_seccomp"), f("capbset_drop"), f("setresuid"),
            f("capset"), f("fexecve"))


def test_no_seccomp_no_load(fake: FakeSyscalls, tmp_path: Path) -> None:
    _run_init(fake, tmp_path, _spec(), seccomp=None)
    assert "load_seccomp" not in fake.names()
    assert "set_no_new_privs" in fake.names()


def test_hooks_run_at_their_places(fake: FakeSyscalls, tmp_path: Path) -> None:
    doc = _spec()
    doc["hooks"] = {"createContainer": [{"path": "/usr/local/bin/cc-hook"}],
                    "startContainer": [{"path": "/usr/local/bin/sc-hook", "args": ["sc", "1"]}]}
    _run_init(fake, tmp_path, doc)
    f = fake.index
    cc = f("spawn", _is("/usr/local/bin/cc-hook"))
    sc_hook = f("spawn", _is("/usr/local/bin/sc-hook"))
    # createContainer: in the container's namespaces, before pivot_root (runtime.md);
    # startContainer: after `start` opened the FIFO, right before the program.
    _before(fake, f("chan.expect", _is("hooks-done")), cc, f("pivot_root"), f("open_file"),
            sc_hook, f("fexecve"))
    assert fake.calls[sc_hook][2:] == (["sc", "1"], "/")


def test_a_refused_step_is_named_and_nothing_after_it_runs(fake: FakeSyscalls,
                                                             tmp_path: Path) -> None:
    fake.fail("setresuid", errno.EPERM)
    chan = _run_init(fake, tmp_path, _spec())
    assert [e["step"] for e in chan.errors] == ["set user"]
    assert "not permitted" in chan.errors[0]["reason"].lower()
    assert fake.names()[-2:] == ["setresuid", "chan.send"]  # the error, then nothing
    for later in ("capset", "set_no_new_privs", "load_seccomp", "fexecve"):
        assert later not in fake.names()


def test_a_refused_mount_stops_before_pivot(fake: FakeSyscalls, tmp_path: Path) -> None:
    rootfs = str(tmp_path / "rootfs")
    fake.fail("mount", errno.EACCES, when=lambda src, target, *a: os.readlink(target)
              == rootfs + "/dev/shm" if target.startswith("/proc/self/fd/") else False)
    chan = _run_init(fake, tmp_path, _spec())
    assert [e["step"] for e in chan.errors] == ["mount /dev/shm (tmpfs) onto rootfs"]
    assert "permission denied" in chan.errors[0]["reason"].lower()
    assert "pivot_root" not in fake.names() and "mknod" not in fake.names()


def test_intermediate_joins_then_unshares_then_forks(fake: FakeSyscalls, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The first child: non-dumpable before anything, the cgroup join awaited, joined
    namespaces entered in the given order, a new user namespace made and mapped (by the
    parent) before the others, then the init forked."""
    monkeypatch.setattr(init, "seal_imports", lambda: None)  # would seal pytest too
    doc = _spec()
    doc["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}, {"type": "user"},
                                  {"type": "uts"},
                                  {"type": "network", "path": "/proc/1/ns/net"},
                                  {"type": "ipc", "path": "/proc/1/ns/ipc"}]
    joined = [("ipc", os.open("/dev/null", os.O_RDONLY)),
              ("network", os.open("/dev/null", os.O_RDONLY))]
    chan = FakeChannel(fake)
    ctx = init.InitContext(spec=load_spec(doc), rootfs=str(tmp_path), bundle=str(tmp_path),
                           parent_mnt_ns="", fifo_fd=-1, joined=joined,
                           chan=chan)  # type: ignore[arg-type]
    with pytest.raises(FakeExit) as exit_:
        init.intermediate(ctx)
    assert exit_.value.code == 0 and not chan.errors
    f = fake.index
    _before(fake, f("set_non_dumpable"), f("close_fds_except"), f("chan.expect", _is("cgroup")),
            f("setns", _is(sc.CLONE_NEWIPC)), f("setns", _is(sc.CLONE_NEWNET)),
            f("unshare", _is(sc.CLONE_NEWUSER)), f("chan.send", _is("userns")),
            f("chan.expect", _is("userns-done")), f("setresgid"), f("setresuid"),
            f("unshare", _is(sc.CLONE_NEWPID | sc.CLONE_NEWNS | sc.CLONE_NEWUTS)),
            f("fork"), f("chan.send", _is("pid")), f("exit_now"))
    assert fake.calls[f("setresuid")][1:] == (0, 0, 0)  # root of the new namespace

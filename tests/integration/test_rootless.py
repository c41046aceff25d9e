"""Rootless containers (issue 15): pyoci run by an ordinary user, as runc runs them.

The tests make a user of their own (``useradd``, with a 65536-id range in /etc/subuid and
/etc/subgid) and a second one without any range, and remove both at the end, even after a
failure. pyoci runs as that user from a copy of the source in a temp dir every user can
read (``/work`` may not be traversable by others), with ``XDG_RUNTIME_DIR`` pointing to a
directory the user owns: the default state roots are then ``$XDG_RUNTIME_DIR/pyoci`` and
(runc's) ``$XDG_RUNTIME_DIR/runc``. runc runs the same cases as the same user where the
spec leaves room (docs/rootless.md lists where they differ).

Cgroups: without delegation every hierarchy is skipped with a debug line (runc's rule);
with delegation, a cgroup below the test's own in every hierarchy is chowned to the user
and the runtime process is started inside it (as systemd's user@.service would), so the
container's cgroup is made below it and the limits apply.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, clone_rootfs, own_cgroups

pytestmark = pytest.mark.integration

PYTHON = sys.executable
RUNC = shutil.which("runc") or "/usr/sbin/runc"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
#: The source the user runs (the "before" check of the report points it at an old tree).
SOURCE = Path(os.environ.get("PYOCI_ROOTLESS_SOURCE", str(REPO)))


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create a test user"
    for tool in ("useradd", "userdel", "setpriv", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install passwd util-linux uidmap)"
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return "user namespaces are disabled (user.max_user_namespaces = 0)"
    except OSError:
        pass
    clone = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if clone.exists() and clone.read_text().strip() == "0":
        return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone)"
    return None


class User:
    """An ordinary user made for these tests, removed at the end."""

    def __init__(self, name: str, subids: bool) -> None:
        self.name = name
        args = ["useradd", "--no-create-home", "--shell", "/bin/sh", "--user-group"]
        if not subids:
            args += ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]
        subprocess.run([*args, name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.subuid = self._range("/etc/subuid")
        self.subgid = self._range("/etc/subgid")
        if subids and (self.subuid is None or self.subgid is None):
            # useradd adds ranges only where login.defs says so: add them ourselves.
            start = 300000 + (self.uid % 1000) * 65536
            subprocess.run(["usermod", "--add-subuids", f"{start}-{start + 65535}",
                            "--add-subgids", f"{start}-{start + 65535}", name],
                           check=True, capture_output=True)
            self.subuid = self.subgid = (start, 65536)

    def _range(self, path: str) -> tuple[int, int] | None:
        try:
            for line in Path(path).read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 3 and parts[0] in (self.name, str(self.uid)):
                    return int(parts[1]), int(parts[2])
        except FileNotFoundError:
            pass
        return None

    def processes(self) -> list[int]:
        """Live (not zombie) processes of this user."""
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid != self.uid:
                        continue
                    stat = Path(f"/proc/{name}/stat").read_text()
                except OSError:
                    continue
                if stat[stat.rindex(")") + 2] not in "ZX":
                    out.append(int(name))
        return out

    def remove(self) -> None:
        # Every process of this brand-new user is one the tests started.
        for pid in self.processes():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(["userdel", self.name], capture_output=True)
        for path in ("/etc/subuid", "/etc/subgid"):
            # userdel removes the ranges; make sure, through the tool, if it did not.
            if self._range(path) is not None:
                flag = "--del-subuids" if path == "/etc/subuid" else "--del-subgids"
                rng = self._range(path)
                assert rng is not None
                subprocess.run(["usermod", flag, f"{rng[0]}-{rng[0] + rng[1] - 1}",
                                self.name], capture_output=True)


class Result:
    def __init__(self, rc: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = rc, stdout, stderr

    def __repr__(self) -> str:
        return f"rc={self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Env:
    """Where the user's runtimes run: the source copy, XDG_RUNTIME_DIR, bundles."""

    def __init__(self, top: Path, user: User, template: Path) -> None:
        self.top, self.user, self.template = top, user, template
        self.src = top / "src"
        self.xdg = top / f"xdg-{user.name}"
        self.xdg.mkdir(mode=0o700)
        os.chown(self.xdg, user.uid, user.gid)
        self.home = top / f"home-{user.name}"
        self.home.mkdir(mode=0o700)
        os.chown(self.home, user.uid, user.gid)

    def environ(self, path: str = "/usr/sbin:/usr/bin:/sbin:/bin") -> dict[str, str]:
        return {"PATH": path, "PYTHONPATH": str(self.src), "XDG_RUNTIME_DIR": str(self.xdg),
                "HOME": str(self.home), "USER": self.user.name, "LANG": "C.UTF-8"}

    def bundle(self, config: dict[str, Any] | None = None) -> Path:
        path = Path(tempfile.mkdtemp(prefix="bundle-", dir=self.top))
        os.chmod(path, 0o755)
        clone_rootfs(self.template, path / "rootfs")  # root's, read-only to the user
        if config is not None:
            (path / "config.json").write_text(json.dumps(config))
        os.chown(path, self.user.uid, self.user.gid)
        if config is not None:
            os.chown(path / "config.json", self.user.uid, self.user.gid)
        return path

    def run(self, argv: list[str], *, cwd: Path | None = None, timeout: float = 60,
            path: str | None = None, cgroup_procs: list[Path] | None = None) -> Result:
        """``argv`` as the user; with ``cgroup_procs``, started in those cgroups (root puts
        the process there, then drops to the user, as a delegating service manager)."""
        env = self.environ(path) if path else self.environ()
        drop = [SETPRIV, f"--reuid={self.user.uid}", f"--regid={self.user.gid}",
                "--clear-groups", "--"]
        script = 'for p in $PYOCI_TEST_PROCS; do echo $$ > "$p" || exit 99; done; ' \
                 'exec "$@"'
        env_root = {**env, "PYOCI_TEST_PROCS": " ".join(str(p) for p in cgroup_procs or [])}
        full = ["/bin/sh", "-c", script, "sh", *drop, *argv]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  cwd=str(cwd or self.top), env=env_root, timeout=timeout)
            out.seek(0)
            err.seek(0)
            return Result(proc.returncode, out.read(), err.read())

    def pyoci(self, *args: str, **kw: Any) -> Result:
        return self.run([PYTHON, "-m", "pyoci", *args], **kw)

    def runc(self, *args: str, **kw: Any) -> Result:
        return self.run([RUNC, *args], **kw)

    @property
    def pyoci_root(self) -> Path:
        return self.xdg / "pyoci"

    @property
    def runc_root(self) -> Path:
        return self.xdg / "runc"

    def cleanup(self) -> None:
        for runtime, root in (("pyoci", self.pyoci_root), ("runc", self.runc_root)):
            if not root.is_dir():
                continue
            for entry in os.listdir(root):
                call = self.pyoci if runtime == "pyoci" else self.runc
                call("delete", "--force", entry)


@pytest.fixture(scope="module")
def rootless_setup(rootfs_template: Path) -> Iterator[tuple[Env, Env]]:
    why = _missing()
    if why:
        pytest.skip(why)
    top = Path(tempfile.mkdtemp(prefix="pyoci-rootless-"))
    os.chmod(top, 0o755)
    users: list[User] = []
    try:
        src = top / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(SOURCE / "pyoci", src / "pyoci", ignore=ignore)
        shutil.copytree(SOURCE / "schemas", src / "schemas", ignore=ignore)
        subprocess.run(["chmod", "-R", "a+rX", str(src)], check=True)
        template = top / "rootfs"
        clone_rootfs(rootfs_template, template)
        subprocess.run(["chmod", "-R", "a+rX", str(template)], check=True)
        tag = uuid.uuid4().hex[:6]
        users.append(User(f"pyrl{tag}", subids=True))
        users.append(User(f"pyrn{tag}", subids=False))
        envs = (Env(top, users[0], template), Env(top, users[1], template))
        probe = envs[0].run([PYTHON, "-c", "import pyoci.cli, jsonschema"])
        if probe.returncode != 0:
            pytest.skip(f"the test user cannot run {PYTHON} with pyoci's dependencies "
                        f"(is the venv readable by others?): {probe.stderr.strip()}")
        yield envs
    finally:
        for env in locals().get("envs", ()):
            env.cleanup()
        for user in users:
            user.remove()
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def env(rootless_setup: tuple[Env, Env]) -> Iterator[Env]:
    yield rootless_setup[0]
    rootless_setup[0].cleanup()


@pytest.fixture
def other(rootless_setup: tuple[Env, Env]) -> Iterator[Env]:
    yield rootless_setup[1]
    rootless_setup[1].cleanup()


def _rootless_spec(env: Env, runtime: str, args: list[str]) -> dict[str, Any]:
    """`RUNTIME spec --rootless` as the user, made non-interactive."""
    bundle = env.bundle()
    res = (env.pyoci if runtime == "pyoci" else env.runc)("spec", "--rootless", cwd=bundle)
    assert res.returncode == 0, res
    cfg = json.loads((bundle / "config.json").read_text())
    shutil.rmtree(bundle)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    return cfg


def _uid_maps(user: User, full: bool) -> dict[str, Any]:
    """Multi-range maps: the whole subordinate range at container id 0 (``full``), or the
    caller's own id at 0 and the range from 1 (podman's rootless layout)."""
    assert user.subuid and user.subgid
    if full:
        return {"uidMappings": [{"containerID": 0, "hostID": user.subuid[0], "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": user.subgid[0], "size": 65536}]}
    return {"uidMappings": [{"containerID": 0, "hostID": user.uid, "size": 1},
                            {"containerID": 1, "hostID": user.subuid[0], "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": user.gid, "size": 1},
                            {"containerID": 1, "hostID": user.subgid[0], "size": 65536}]}


def _assert_nothing_left(env: Env, cid: str, bundle: Path) -> None:
    assert not (env.pyoci_root / cid).exists(), f"state dir of {cid} left behind"
    deadline = time.monotonic() + 2  # a killed process may still be exiting
    while (left := env.user.processes()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert left == [], f"processes of the test user left behind: {left}"
    with open("/proc/self/mountinfo") as f:
        assert str(bundle) not in f.read(), "mounts left behind"


# --- detection, default root ---------------------------------------------------------------

def test_auto_detection_is_off_for_root_on_the_host() -> None:
    """`--rootless auto` must never turn on for root on the host (its cgroups would be
    skipped silently): euid 0 and the initial user namespace's full uid_map."""
    from pyoci import rootless

    if os.geteuid() != 0 or rootless.in_user_namespace():
        pytest.skip("needs root on the host")
    rootless.set_mode("auto")
    assert rootless.active() is False
    assert rootless.default_root() == "/run/pyoci"
    rootless.set_mode("true")
    assert rootless.active() is True
    rootless.set_mode(None)
    assert rootless.active() is False


def test_bad_rootless_value_is_an_error(rootless_setup: tuple[Env, Env]) -> None:
    env = rootless_setup[0]
    for cmd in (["state", "x"], ["list"]):
        res = env.pyoci("--rootless", "maybe", *cmd)
        assert res.returncode == 1, res
        assert "--rootless: expected true, false or auto, found 'maybe'" in res.stderr
        assert "Traceback" not in res.stderr


def test_default_root_is_xdg_runtime_dir(env: Env) -> None:
    """Not root: $XDG_RUNTIME_DIR/pyoci, made 0700 by and for the user (runc: .../runc);
    without XDG_RUNTIME_DIR the error says what to do."""
    cfg = _rootless_spec(env, "pyoci", ["sleep", "30"])
    bundle = env.bundle(cfg)
    cid = f"xdg-{uuid.uuid4().hex[:6]}"
    res = env.pyoci("create", cid, cwd=bundle)
    assert res.returncode == 0, res
    try:
        for path in (env.pyoci_root, env.pyoci_root / cid):
            st = os.stat(path)
            assert (st.st_uid, st.st_mode & 0o777) == (env.user.uid, 0o700), path
        listed = env.pyoci("list", "-q")
        assert listed.stdout.split() == [cid]
    finally:
        env.pyoci("delete", "--force", cid)
    _assert_nothing_left(env, cid, bundle)
    noxdg = env.run(["/usr/bin/env", "-u", "XDG_RUNTIME_DIR", PYTHON, "-m", "pyoci",
                     "create", cid], cwd=bundle)
    assert noxdg.returncode == 1, noxdg
    assert "/run/pyoci" in noxdg.stderr and "XDG_RUNTIME_DIR" in noxdg.stderr, noxdg
    assert "Traceback" not in noxdg.stderr


# --- spec --rootless and run -------------------------------------------------------------

def test_spec_rootless_is_runcs(env: Env) -> None:
    """`spec --rootless` has runc's shape (what its users' scripts expect): the same
    namespaces (user, no network, no cgroup), maps, mounts and no resources."""
    ours = _rootless_spec(env, "pyoci", ["true"])
    theirs = _rootless_spec(env, "runc", ["true"])
    for key in ("namespaces", "uidMappings", "gidMappings", "maskedPaths", "readonlyPaths"):
        assert ours["linux"].get(key) == theirs["linux"].get(key), key
    assert "resources" not in ours["linux"]
    assert ours["mounts"] == theirs["mounts"]


@pytest.mark.parametrize("runtime", ["pyoci", "runc"])
def test_run_rootless_spec(env: Env, runtime: str) -> None:
    """spec --rootless + run as the user: container root is the user, no cgroup is made
    (nothing delegated), the state lands under XDG_RUNTIME_DIR."""
    cfg = _rootless_spec(env, runtime, ["sh", "-c", "id -u; cat /proc/self/uid_map; "
                                                    "cat /proc/self/cgroup"])
    bundle = env.bundle(cfg)
    cid = f"run-{uuid.uuid4().hex[:6]}"
    call = env.pyoci if runtime == "pyoci" else env.runc
    res = call("--debug", "run", cid, cwd=bundle) if runtime == "pyoci" \
        else call("run", cid, cwd=bundle)
    assert res.returncode == 0, res
    lines = res.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(env.user.uid), "1"]
    assert cid not in res.stdout, "a cgroup was made without delegation"
    if runtime == "pyoci":
        assert "rootless: no cgroup in the" in res.stderr, res  # runc's debug line
        assert "device allow-list is not written" in res.stderr
        _assert_nothing_left(env, cid, bundle)


def test_lifecycle_and_exec(env: Env, other: Env) -> None:
    """create/start/state/exec/kill/delete on the user's own container; another user
    reaching for it through --root is refused and changes nothing."""
    cfg = _rootless_spec(env, "pyoci", ["sleep", "300"])
    bundle = env.bundle(cfg)
    cid = f"life-{uuid.uuid4().hex[:6]}"
    assert env.pyoci("create", cid, cwd=bundle).returncode == 0
    try:
        state = json.loads(env.pyoci("state", cid).stdout)
        assert state["status"] == "created" and state["owner"] == env.user.name
        assert env.pyoci("start", cid).returncode == 0
        assert json.loads(env.pyoci("state", cid).stdout)["status"] == "running"
        res = env.pyoci("exec", cid, "sh", "-c", "id -u; cat /proc/1/cmdline")
        assert res.returncode == 0, res
        assert res.stdout.split("\n")[0] == "0" and "sleep" in res.stdout
        root = str(env.pyoci_root)
        for cmd in (["state", cid], ["kill", cid, "KILL"], ["delete", "--force", cid]):
            refused = other.pyoci("--root", root, *cmd)
            assert refused.returncode == 1, (cmd, refused)
            assert "Traceback" not in refused.stderr
        assert json.loads(env.pyoci("state", cid).stdout)["status"] == "running"
        assert env.pyoci("kill", cid, "KILL").returncode == 0
        deadline = time.monotonic() + 10
        while json.loads(env.pyoci("state", cid).stdout)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert env.pyoci("delete", cid).returncode == 0
    finally:
        env.pyoci("delete", "--force", cid)
    _assert_nothing_left(env, cid, bundle)


# --- id maps -------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["full", "own-then-range"])
def test_multi_range_map(env: Env, layout: str) -> None:
    """Maps beyond the user's own id go through newuidmap/newgidmap and /etc/sub*id."""
    cfg = _rootless_spec(env, "pyoci", ["sh", "-c", "id -u; cat /proc/self/uid_map "
                                                    "/proc/self/gid_map"])
    cfg["linux"].update(_uid_maps(env.user, layout == "full"))
    bundle = env.bundle(cfg)
    cid = f"map-{uuid.uuid4().hex[:6]}"
    res = env.pyoci("run", cid, cwd=bundle)
    assert res.returncode == 0, res
    rows = [line.split() for line in res.stdout.strip().split("\n")[1:]]
    want = [[str(m["containerID"]), str(m["hostID"]), str(m["size"])]
            for m in cfg["linux"]["uidMappings"] + cfg["linux"]["gidMappings"]]
    assert rows == want
    assert res.stdout.split("\n")[0] == "0"
    _assert_nothing_left(env, cid, bundle)
    if layout == "own-then-range":
        theirs = env.runc("run", f"r{cid}", cwd=bundle)
        assert (theirs.returncode, theirs.stdout) == (0, res.stdout), theirs


def test_map_without_subuid_range_is_refused(other: Env) -> None:
    """A user without /etc/subuid range: a clear error naming the field and the file,
    exit 1, nothing left (runc refuses too, through newuidmap's message)."""
    cfg = _rootless_spec(other, "pyoci", ["true"])
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": other.user.uid, "size": 1},
                                   {"containerID": 1, "hostID": 400000, "size": 65536}]
    bundle = other.bundle(cfg)
    cid = f"nosub-{uuid.uuid4().hex[:6]}"
    res = other.pyoci("run", cid, cwd=bundle)
    assert res.returncode == 1, res
    assert "linux.uidMappings[1]" in res.stderr and "/etc/subuid" in res.stderr, res
    assert "Traceback" not in res.stderr
    _assert_nothing_left(other, cid, bundle)
    assert other.runc("run", f"r{cid}", cwd=bundle).returncode != 0


def test_missing_newuidmap_is_named(env: Env) -> None:
    cfg = _rootless_spec(env, "pyoci", ["true"])
    cfg["linux"].update(_uid_maps(env.user, full=True))
    bundle = env.bundle(cfg)
    cid = f"nohelper-{uuid.uuid4().hex[:6]}"
    res = env.pyoci("run", cid, cwd=bundle, path="/nonexistent")
    assert res.returncode == 1, res
    assert "newuidmap not found" in res.stderr and "uidmap package" in res.stderr, res
    assert "Traceback" not in res.stderr
    _assert_nothing_left(env, cid, bundle)


# --- mounts written for root ---------------------------------------------------------------

def test_root_style_sysfs_and_devpts_gid(env: Env) -> None:
    """A config written for root (sysfs mounted, devpts gid=5) in a user namespace without
    its own network namespace: /sys is bound from the host (read-only as asked) and the
    unmapped gid=5 is left out. (runc 1.1 refuses both: docs/rootless.md.)"""
    cfg = _rootless_spec(env, "pyoci", ["sh", "-c", "grep -E ' /sys | /dev/pts ' "
                                                    "/proc/self/mounts; ls /sys/kernel "
                                                    ">/dev/null && echo sys-ok; "
                                                    "touch /sys/x 2>/dev/null || echo ro"])
    for m in cfg["mounts"]:
        if m["destination"] == "/sys":
            m.update({"type": "sysfs", "source": "sysfs",
                      "options": ["nosuid", "noexec", "nodev", "ro"]})
        if m["destination"] == "/dev/pts":
            m["options"].append("gid=5")
    bundle = env.bundle(cfg)
    cid = f"mnt-{uuid.uuid4().hex[:6]}"
    res = env.pyoci("run", cid, cwd=bundle)
    assert res.returncode == 0, res
    assert "sys-ok" in res.stdout and "ro\n" in res.stdout
    sys_line = next(line for line in res.stdout.splitlines() if " /sys " in line)
    assert " ro," in sys_line or " ro " in sys_line
    pts_line = next(line for line in res.stdout.splitlines() if " /dev/pts " in line)
    assert "gid=5" not in pts_line
    _assert_nothing_left(env, cid, bundle)


# --- cgroups -------------------------------------------------------------------------------

def test_limit_without_delegation_is_an_error(env: Env) -> None:
    """A limit with no delegated cgroup: an error naming the field (runc: "cannot set
    memory limit: container could not join or create cgroup"); a cgroupsPath without
    permission: an error too (runc: "unable to apply cgroup configuration")."""
    for extra, phrase in (({"resources": {"memory": {"limit": 64 << 20}}},
                           "linux.resources.memory.limit: cannot set the memory limit"),
                          ({"cgroupsPath": f"pyoci-rl-{uuid.uuid4().hex[:6]}"},
                           "permission denied")):
        cfg = _rootless_spec(env, "pyoci", ["true"])
        cfg["linux"].update(extra)
        bundle = env.bundle(cfg)
        cid = f"cg-{uuid.uuid4().hex[:6]}"
        res = env.pyoci("run", cid, cwd=bundle)
        assert res.returncode == 1, res
        assert phrase in res.stderr, res
        assert "Traceback" not in res.stderr
        _assert_nothing_left(env, cid, bundle)
        assert env.runc("run", f"r{cid}", cwd=bundle).returncode == 1


@pytest.fixture
def delegated(env: Env) -> Iterator[list[Path]]:
    """A cgroup below the test's own in every hierarchy, owned by the user (directory
    and files, as systemd delegates); removed at the end."""
    made: list[Path] = []
    name = f"pyoci-rl-{uuid.uuid4().hex[:8]}"
    try:
        for mp, own in own_cgroups():
            d = Path(mp + own.rstrip("/") + "/" + name)
            d.mkdir()
            made.append(d)
            for fname in ("cpuset.cpus", "cpuset.mems"):
                if (d / fname).exists():
                    (d / fname).write_text((d.parent / fname).read_text())
            os.chown(d, env.user.uid, env.user.gid)
            for f in d.iterdir():
                if f.is_file():
                    os.chown(f, env.user.uid, env.user.gid)
        yield made
    finally:
        env.cleanup()
        for d in reversed(made):
            for sub in sorted(d.glob("*/"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
            deadline = time.monotonic() + 5
            while True:
                try:
                    d.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


@pytest.mark.parametrize("runtime", ["pyoci", "runc"])
def test_limits_apply_in_a_delegated_cgroup(env: Env, delegated: list[Path],
                                            runtime: str) -> None:
    """Delegated: the container's cgroup is made below the user's, the memory and pids
    limits are in its files, the devices controller is left as inherited (never
    written), and delete removes the cgroup."""
    cfg = _rootless_spec(env, runtime, ["sleep", "300"])
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 42}}
    bundle = env.bundle(cfg)
    cid = f"dlg-{uuid.uuid4().hex[:6]}"
    procs = [d / "cgroup.procs" for d in delegated]
    call = env.pyoci if runtime == "pyoci" else env.runc
    res = call("run", "-d", cid, cwd=bundle, cgroup_procs=procs)
    assert res.returncode == 0, res
    try:
        by_name = {d.parts[4] if len(d.parts) > 4 else "": d for d in delegated}
        memory = next(d for name, d in by_name.items() if "memory" in name.split(","))
        pids = next(d for name, d in by_name.items() if "pids" in name.split(","))
        assert (memory / cid / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (pids / cid / "pids.max").read_text().strip() == "42"
        devices = [d for name, d in by_name.items() if "devices" in name.split(",")]
        for d in devices:
            assert (d / cid / "devices.list").read_text() == (d / "devices.list").read_text()
    finally:
        res = call("delete", "--force", cid, cgroup_procs=procs)
    assert res.returncode == 0, res
    for d in delegated:
        assert not (d / cid).exists(), f"cgroup {d / cid} left behind"
    if runtime == "pyoci":
        _assert_nothing_left(env, cid, bundle)


def test_new_network_namespace_has_loopback_only(env: Env) -> None:
    """With a network namespace of its own (the user namespace owns it), the container
    gets loopback, up, and nothing else; sysfs can then be mounted for real."""
    cfg = _rootless_spec(env, "pyoci", ["sh", "-c", "ip -o link; grep ' /sys ' "
                                                    "/proc/self/mounts"])
    cfg["linux"]["namespaces"].append({"type": "network"})
    bundle = env.bundle(cfg)
    cid = f"net-{uuid.uuid4().hex[:6]}"
    res = env.pyoci("run", cid, cwd=bundle)
    assert res.returncode == 0, res
    links = [line for line in res.stdout.splitlines() if ": <" in line]
    assert len(links) == 1 and links[0].startswith("1: lo: <LOOPBACK,UP"), res
    _assert_nothing_left(env, cid, bundle)

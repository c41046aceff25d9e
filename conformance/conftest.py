"""pytest wiring for the conformance suite.

    python -m pytest conformance --runtime runc
    python -m pytest conformance --runtime pyoci          # the default
    python -m pytest conformance --runtime "python -m pyoci"

See README.md in this directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .harness import (
    TRACKER,
    Bundle,
    Runtime,
    become_subreaper,
    make_bundle,
    resolve_runtime,
    short_tmpdir,
    wait_until,
)

MKROOTFS = Path(__file__).resolve().parent.parent / "examples" / "mkrootfs.sh"


def pytest_addoption(parser):
    group = parser.getgroup("conformance", "OCI runtime conformance suite")
    group.addoption(
        "--runtime",
        action="store",
        default=os.environ.get("CONFORMANCE_RUNTIME", "pyoci"),
        help="runtime to test: a path, a name on PATH, or a command line "
        "such as 'python -m pyoci' (default: pyoci, or $CONFORMANCE_RUNTIME)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "runc_differs(reason): runc behaves differently from the runtime-spec "
        "here; the case checks the spec and is xfail (strict) against runc",
    )


def _runtime_value(config) -> str:
    try:
        return config.getoption("--runtime")
    except ValueError:  # option not registered (conftest loaded late)
        return os.environ.get("CONFORMANCE_RUNTIME", "pyoci")


def _is_runc(argv: list[str]) -> bool:
    if Path(argv[0]).name == "runc":
        return True
    try:
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.stdout.lower().startswith("runc version")


def pytest_collection_modifyitems(config, items):
    value = _runtime_value(config)
    argv = resolve_runtime(value)
    here = Path(__file__).resolve().parent
    ours = [it for it in items if here in Path(str(it.fspath)).resolve().parents]
    if argv is None:
        skip = pytest.mark.skip(reason=f"runtime {value!r} not found (use --runtime)")
        for item in ours:
            item.add_marker(skip)
        return
    is_runc = _is_runc(argv)
    config._conformance_runtime = (argv, is_runc)
    if not is_runc:
        return
    for item in ours:
        marker = item.get_closest_marker("runc_differs")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.xfail(reason=f"runc differs from the spec: {reason}",
                                              strict=True))


def pytest_report_header(config):
    value = _runtime_value(config)
    argv = resolve_runtime(value)
    return f"conformance runtime: {value!r} -> {argv}"


@pytest.fixture(scope="session", autouse=True)
def _session_checks():
    if os.geteuid() != 0:
        pytest.skip("the conformance suite must run as root")
    become_subreaper()
    yield
    leaked = TRACKER.kill_strays()
    assert not leaked, f"processes left behind by the runtime (killed): {leaked}"


@pytest.fixture(scope="session")
def runtime_argv(pytestconfig) -> tuple[list[str], bool]:
    found = getattr(pytestconfig, "_conformance_runtime", None)
    if found is None:
        argv = resolve_runtime(_runtime_value(pytestconfig))
        if argv is None:
            pytest.skip("runtime not found")
        found = (argv, _is_runc(argv))
    return found


@pytest.fixture(scope="session")
def rootfs_src(tmp_path_factory) -> Path:
    """The busybox rootfs, built once per session by examples/mkrootfs.sh."""
    dest = tmp_path_factory.mktemp("rootfs-src") / "rootfs"
    if not MKROOTFS.is_file():
        pytest.fail(f"{MKROOTFS} is missing")
    proc = subprocess.run(["sh", str(MKROOTFS), str(dest)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        if not Path("/bin/busybox").exists():
            pytest.skip("busybox-static is not installed (/bin/busybox)")
        pytest.fail(f"mkrootfs.sh failed:\n{proc.stdout}{proc.stderr}")
    return dest


@pytest.fixture
def runtime(runtime_argv, tmp_path) -> Runtime:
    """The runtime under test, with a private --root; every container the
    case created is force-deleted afterwards and leaked processes (orphans
    re-parented to pytest) are killed by pid and reported."""
    argv, is_runc = runtime_argv
    root = short_tmpdir("oci-root-")
    work = tmp_path / "calls"
    work.mkdir()
    rt = Runtime(argv=argv, root=root, workdir=work, is_runc=is_runc)
    yield rt
    try:
        problems = rt.cleanup()
    finally:
        leaked = TRACKER.kill_strays()
        cgroups = rt.remove_cgroups()
        shutil.rmtree(root, ignore_errors=True)
    assert not problems, "\n".join(problems)
    assert not leaked, f"processes left behind after force-delete (killed): {leaked}"
    assert not cgroups, f"cgroups left behind after force-delete (removed): {cgroups}"


@pytest.fixture
def bundle(rootfs_src, tmp_path) -> Bundle:
    """A fresh bundle; edit ``bundle.config`` (a dict) before create/run."""
    return make_bundle(tmp_path, rootfs_src)


@pytest.fixture
def make_extra_bundle(rootfs_src, tmp_path):
    """Factory for additional bundles in the same case."""
    counter = iter(range(1, 1000))

    def make() -> Bundle:
        base = tmp_path / f"extra{next(counter)}"
        base.mkdir()
        return make_bundle(base, rootfs_src)

    return make


@pytest.fixture
def ns_holder():
    """Factory: start ``unshare --<flags> sleep`` and return the host pid of
    the process that sits in the new namespaces (killed by pid afterwards)."""
    started: list[subprocess.Popen] = []
    targets: list[int] = []

    def start(*flags: str) -> int:
        fork = "--pid" in flags
        argv = ["unshare", *flags, *(["--fork", "--kill-child"] if fork else []), "sleep", "300"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        TRACKER.own.add(proc.pid)
        started.append(proc)
        target = proc.pid

        def ready():
            nonlocal target
            if proc.poll() is not None:
                pytest.fail(f"{argv} exited with {proc.returncode}")
            if fork:
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                if not kids:
                    return False
                target = int(kids[0])
            # unshare has exec'd sleep once its comm is "sleep"
            return Path(f"/proc/{target}/comm").read_text().strip() == "sleep"

        assert wait_until(ready, timeout=10), f"{argv} did not come up"
        targets.append(target)
        return target

    yield start
    for pid in targets:  # the forked namespace init, if any: kill it by pid
        if pid not in (p.pid for p in started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
    for proc in started:
        if proc.poll() is None:
            proc.kill()  # by pid: Popen.kill signals proc.pid only
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        TRACKER.own.discard(proc.pid)

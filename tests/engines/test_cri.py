"""The Kubernetes node path: containerd 1.6's CRI plugin driven over gRPC `runtime.v1` as
kubelet drives it, with a runtime handler per runtime under test (runtime_type
io.containerd.runc.v2, options BinaryName and Root). Each scenario runs with handler
"runc" and handler "pyoci"; the pod's sandbox (pause) container and its containers all run
through the handler, and what the CRI reports (states, exit codes, reasons, ExecSync
output, logs, cgroup values) must be equal. After each pod: no shim, mount, netns, cgroup
or runtime state is left (docs/testing.md)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines import cri_engine
from tests.engines.cri_client import CriError, CriUnavailable
from tests.engines.cri_engine import PAUSE, CriContainerd, write_oci_archive
from tests.engines.support import (
    CgroupArea,
    HostResidue,
    Observation,
    OciRuntime,
    Reference,
    memory_limit,
    runtime_by_name,
    wait_for,
)
from tests.helpers import cgroup_dir

pytestmark = [pytest.mark.integration, pytest.mark.engines]

# Long enough for a reported exit (~0.1 s with runc); a runtime whose exits are never
# reported fails the scenario after this instead of hanging it.
EXIT_WAIT = 10.0
# pid 1 of the container: SIGTERM (trapped) ends it with status 7.
SERVE = 'trap "exit 7" TERM; echo started; sleep 100000 & wait'
MIB = 1 << 20


# --- fixtures ------------------------------------------------------------------------------

def _propagation() -> dict[str, str]:
    """mount point -> its optional fields (shared:N, master:N): what containerd must not
    change on mounts that are not its own."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if "/pyoci-engines-" in fields[4]:
                continue  # the engine sessions' own mounts (dockerd's data root, ...)
            out[fields[4]] = " ".join(fields[6:sep])
    return out


@pytest.fixture(scope="session")
def cri_session(engines_base: Path, cgroup_area: CgroupArea,
                request: pytest.FixtureRequest) -> Iterator[CriContainerd]:
    reason = cri_engine.missing()
    if reason:
        pytest.skip(reason)
    runtimes = [rt for rt in (runtime_by_name("runc"), runtime_by_name("pyoci")) if rt]
    residue = HostResidue(cri_engine.CRI_HOST_PATHS)
    before = _propagation()
    archive = engines_base / "cri-image.tar"
    write_oci_archive(request.getfixturevalue("image_tar"), archive, cri_engine.IMAGE, PAUSE)
    cri = CriContainerd(engines_base / "cri", cgroup_area.sub("cri"), runtimes)
    try:
        cri.start()
    except CriUnavailable as exc:
        pytest.skip(str(exc))
    try:
        cri.import_image(archive)
        yield cri
    finally:
        forced = cri.teardown()
        residue.clean()
    after = _propagation()
    changed = {mp: (before[mp], after[mp]) for mp in before.keys() & after.keys()
               if before[mp] != after[mp]}
    netns = [mp for mp in after.keys() - before.keys()
             if mp.startswith(("/run/netns/", "/var/run/netns/"))]
    assert not forced, "containerd (CRI) session left:\n" + "\n".join(forced)
    assert not changed, f"mount propagation changed: {changed}"
    assert not netns, f"network namespaces mounted outside the test dir: {netns}"


@pytest.fixture
def cri(cri_session: CriContainerd, oci_runtime: OciRuntime) -> Iterator[CriContainerd]:
    """After each test: every pod removed through the CRI, then nothing the test made may
    be left (else the test errors, naming it, and it is removed by force, so that the
    next test is not judged by this one's leftovers)."""
    cri_session.baseline = cri_session.leftovers()
    yield cri_session
    errors = cri_session.remove_all(deadline=10)
    left = left_by_test(cri_session)
    if any(left.values()) or errors:
        cri_session.force_clean()
    assert not (any(left.values()) or errors), (
        f"{oci_runtime.name} under CRI left: { {k: v for k, v in left.items() if v} }\n"
        f"errors: {errors}\ncontainerd log:\n{cri_session.log_tail()}")


def left_by_test(cri: CriContainerd) -> dict[str, list[str]]:
    """What the running test made and is still there (waiting a little: the shim and
    the CRI finish a removal asynchronously)."""
    wait_for(lambda: not any(cri.new_leftovers(cri.baseline).values()), 5, 0.2)
    return cri.new_leftovers(cri.baseline)


# --- observing -----------------------------------------------------------------------------

def attempt(fn: Callable[[], Any]) -> Any:
    """A CRI call's result, or its failure as "error: CODE" (the message is the
    runtime's own wording, compared only through the code)."""
    try:
        return fn()
    except CriError as exc:
        return f"error: {exc.code}"


def ok(fn: Callable[[], Any]) -> str:
    """"ok" for a call that succeeded (its reply carries nothing to compare)."""
    return attempt(lambda: (fn(), "ok")[1])


def container_report(cri: CriContainerd, cid: str) -> dict[str, Any]:
    """What kubelet reads from ContainerStatus: state, exit code, reason."""
    st = cri.status(cid)
    return {"state": cri.client.enum_name("ContainerState", st.state),  # type: ignore[union-attr]
            "exit code": st.exit_code, "reason": st.reason}


def log_lines(cri: CriContainerd, pod: str, name: str, attempt_no: int = 0) -> list[str]:
    """The container's stdout/stderr as the CRI logged it ("TIME STREAM TAG text")."""
    path = cri.logs / pod / f"{name}_{attempt_no}.log"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [" ".join(ln.split(" ", 3)[1:]) for ln in lines]


def left(cri: CriContainerd) -> dict[str, object]:
    """What is left once the scenario removed its pod (before the fixture's cleanup)."""
    return {f"left {k}": v for k, v in left_by_test(cri).items()}


NOTHING_LEFT = {f"left {k}": [] for k in
                ("pods", "containers", "shims", "mounts", "cgroups", "runtime state")}


def remove(cri: CriContainerd, pod: str) -> dict[str, object]:
    """StopPodSandbox then RemovePodSandbox, as kubelet does when a pod is deleted."""
    return {"stop pod": ok(lambda: cri.cri("StopPodSandbox", pod_sandbox_id=pod, deadline=15)),
            "remove pod": ok(lambda: cri.cri("RemovePodSandbox", pod_sandbox_id=pod,
                                             deadline=15))}


# --- scenarios -----------------------------------------------------------------------------

def pod_lifecycle(cri: CriContainerd, rt: OciRuntime) -> Observation:
    """RunPodSandbox … RemovePodSandbox with every call kubelet makes on the way."""
    obs: Observation = {}
    pod, config = cri.run_pod("lifecycle", rt)
    status = cri.cri("PodSandboxStatus", pod_sandbox_id=pod).status
    obs["pod state"] = cri.client.enum_name("PodSandboxState", status.state)  # type: ignore
    obs["pod ip"] = status.network.ip
    cid = cri.create(pod, config, "app", ["sh", "-c", SERVE])
    obs["created"] = container_report(cri, cid)
    obs["start"] = ok(lambda: cri.cri("StartContainer", container_id=cid))
    obs["running"] = cri.wait_state(cid, "CONTAINER_RUNNING", 5)
    obs["status running"] = container_report(cri, cid)

    ex = cri.cri("ExecSync", container_id=cid, deadline=20,
                 cmd=["sh", "-c", "echo out; echo err >&2; hostname; id -u; "
                      "tr '\\0' ' ' </proc/1/cmdline; echo; exit 3"])
    obs["exec"] = (ex.exit_code, ex.stdout.decode(), ex.stderr.decode())
    missing = attempt(lambda: cri.cri("ExecSync", container_id=cid, cmd=["/nonexistent"],
                                      deadline=20))
    obs["exec missing program fails"] = isinstance(missing, str) or missing.exit_code != 0
    obs["exec eth0"] = "192.0.2.2/24" in cri.cri(
        "ExecSync", container_id=cid, cmd=["ip", "addr", "show", "eth0"]).stdout.decode()

    stats = cri.cri("ContainerStats", container_id=cid).stats
    obs["stats id"] = stats.attributes.id == cid
    obs["stats cpu used"] = stats.cpu.usage_core_nano_seconds.value > 0
    obs["stats memory used"] = stats.memory.working_set_bytes.value > 0

    cgroup = cri.container_cgroup(cid)
    obs["update"] = ok(lambda: cri.cri(
        "UpdateContainerResources", container_id=cid,
        linux={"memory_limit_in_bytes": str(64 * MIB), "cpu_shares": "512"}))
    obs["memory limit after update"] = memory_limit(cgroup)
    obs["cpu shares after update"] = _cgroup_file(cgroup, "cpu", "cpu.shares")

    obs["stop"] = ok(lambda: cri.cri("StopContainer", container_id=cid, timeout=5,
                                          deadline=30))
    obs["status stopped"] = container_report(cri, cid)
    obs["log"] = log_lines(cri, "lifecycle", "app")
    obs["remove container"] = ok(lambda: cri.cri("RemoveContainer", container_id=cid))
    obs["containers after remove"] = len(cri.containers())
    obs["stop pod"] = ok(lambda: cri.cri("StopPodSandbox", pod_sandbox_id=pod))
    obs["pod state stopped"] = attempt(lambda: cri.client.enum_name(  # type: ignore
        "PodSandboxState", cri.cri("PodSandboxStatus", pod_sandbox_id=pod).status.state))
    obs["remove pod"] = ok(lambda: cri.cri("RemovePodSandbox", pod_sandbox_id=pod))
    obs.update(left(cri))
    obs["_log"] = cri.log_tail()
    return obs


def _cgroup_file(path: str, controller: str, name: str) -> str:
    try:
        return (cgroup_dir(path, controller) / name).read_text().strip()
    except (LookupError, OSError) as exc:
        return f"unreadable: {exc}"


def exits_on_its_own(cri: CriContainerd, rt: OciRuntime) -> Observation:
    """A container whose process ends: EXITED with its code (kubelet's restart policy and
    Job completion read exactly this)."""
    pod, config = cri.run_pod("exits", rt)
    # The pause keeps the exit after StartContainer's return, when the CRI stamps
    # started_at (else finished_at < started_at, with runc too).
    cid = cri.create(pod, config, "once", ["sh", "-c", "echo bye; sleep 0.3; exit 3"])
    obs: Observation = {"start": ok(lambda: cri.cri("StartContainer", container_id=cid))}
    obs["exited"] = cri.wait_state(cid, "CONTAINER_EXITED", EXIT_WAIT)
    obs["status"] = container_report(cri, cid)
    st = cri.status(cid)
    obs["finished after started"] = st.finished_at >= st.started_at > 0
    obs["log"] = log_lines(cri, "exits", "once")
    obs.update(remove(cri, pod))
    obs.update(left(cri))
    obs["_log"] = cri.log_tail()
    return obs


OOM_LIMIT = 32 * MIB


def oom_killed(cri: CriContainerd, rt: OciRuntime) -> Observation:
    """Over its memory limit: the kernel OOM-kills it; the shim's OOM event makes the CRI
    report reason OOMKilled (exit 137)."""
    pod, config = cri.run_pod("oom", rt)
    # busybox tail of an endless line keeps it all in memory; the pause lets the test
    # read the limit first (the cgroup is made at StartContainer, gone with the exit).
    cid = cri.create(pod, config, "hog", ["sh", "-c", "sleep 1; exec tail /dev/zero"],
                     memory=OOM_LIMIT)
    obs: Observation = {"start": ok(lambda: cri.cri("StartContainer", container_id=cid))}
    obs["limit"] = memory_limit(cri.container_cgroup(cid))
    obs["exited"] = cri.wait_state(cid, "CONTAINER_EXITED", EXIT_WAIT + 10)
    obs["status"] = container_report(cri, cid)
    obs.update(remove(cri, pod))
    obs.update(left(cri))
    obs["_log"] = cri.log_tail()
    return obs


PS_ALL = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done"


def shared_pid_namespace(cri: CriContainerd, rt: OciRuntime) -> Observation:
    """shareProcessNamespace: every container joins the pod's pid namespace, whose pid 1
    is the sandbox's pause process; one container sees the other's processes."""
    pod, config = cri.run_pod("sharedpid", rt, pid="POD")
    first = cri.create(pod, config, "first", ["sleep", "123457"])
    second = cri.create(pod, config, "second", ["sleep", "123458"])
    obs: Observation = {}
    for cid in (first, second):
        obs[f"start {'first' if cid == first else 'second'}"] = ok(
            lambda c=cid: cri.cri("StartContainer", container_id=c))
    obs["running"] = (cri.wait_state(first, "CONTAINER_RUNNING", 5)
                      and cri.wait_state(second, "CONTAINER_RUNNING", 5))
    ex = cri.cri("ExecSync", container_id=second, cmd=["sh", "-c", PS_ALL], deadline=20)
    procs = ex.stdout.decode().splitlines()
    obs["exec rc"] = ex.exit_code
    obs["pid 1 is the pause process"] = (
        (ex2 := cri.cri("ExecSync", container_id=second,
                        cmd=["sh", "-c", "tr '\\0' ' ' </proc/1/cmdline"])).stdout.decode()
        .strip() == " ".join(PAUSE))
    obs["_pid 1"] = ex2.stdout.decode()
    obs["sees the other container"] = any("sleep 123457" in p for p in procs)
    obs["sees itself"] = any("sleep 123458" in p for p in procs)
    obs["_procs"] = procs
    obs.update(remove(cri, pod))
    obs.update(left(cri))
    obs["_log"] = cri.log_tail()
    return obs


def restart_in_pod(cri: CriContainerd, rt: OciRuntime) -> Observation:
    """kubelet's restart: after the container exits, a new one of the same name with
    attempt 1 in the same pod; the old one is kept (EXITED) until garbage-collected."""
    pod, config = cri.run_pod("restart", rt)
    old = cri.create(pod, config, "app", ["sh", "-c", "echo first; exit 2"])
    obs: Observation = {"start 0": ok(lambda: cri.cri("StartContainer", container_id=old))}
    obs["exited 0"] = cri.wait_state(old, "CONTAINER_EXITED", EXIT_WAIT)
    obs["status 0"] = container_report(cri, old)
    new = attempt(lambda: cri.create(pod, config, "app", ["sh", "-c", "echo second; "
                                                          "sleep 100000"], attempt=1))
    obs["create 1"] = "ok" if new and not new.startswith("error") else new
    if obs["create 1"] == "ok":
        obs["start 1"] = ok(lambda: cri.cri("StartContainer", container_id=new))
        obs["running 1"] = cri.wait_state(new, "CONTAINER_RUNNING", 5)
        listed = cri.cri("ListContainers", filter={"pod_sandbox_id": pod}).containers
        obs["listed"] = sorted((c.metadata.name, c.metadata.attempt,
                                cri.client.enum_name("ContainerState", c.state))  # type: ignore
                               for c in listed)
        # The shim copies stdout to the CRI log asynchronously: wait for the line.
        wait_for(lambda: log_lines(cri, "restart", "app", 1), 5)
        obs["log 1"] = log_lines(cri, "restart", "app", 1)
    obs["log 0"] = log_lines(cri, "restart", "app", 0)
    obs["remove old"] = ok(lambda: cri.cri("RemoveContainer", container_id=old))
    obs.update(remove(cri, pod))
    obs.update(left(cri))
    obs["_log"] = cri.log_tail()
    return obs


def _check_left(obs: Observation) -> None:
    got = {k: obs[k] for k in NOTHING_LEFT}
    assert got == NOTHING_LEFT, f"left after the pod was removed: {got}"


# --- tests ---------------------------------------------------------------------------------

def test_pod_lifecycle(cri: CriContainerd, oci_runtime: OciRuntime,
                       reference: Reference) -> None:
    obs = pod_lifecycle(cri, oci_runtime)
    detail = f"{obs}\n{obs['_log']}"
    assert (obs["pod state"], obs["pod ip"]) == ("SANDBOX_READY", "192.0.2.2"), detail
    assert obs["created"]["state"] == "CONTAINER_CREATED", detail
    assert (obs["start"], obs["running"]) == ("ok", True), detail
    assert obs["exec"] == (3, "out\nlifecycle\n0\nsh -c " + SERVE + " \n", "err\n"), detail
    assert obs["exec missing program fails"] and obs["exec eth0"], detail
    assert obs["stats id"] and obs["stats cpu used"] and obs["stats memory used"], detail
    assert obs["update"] == "ok", detail
    assert (obs["memory limit after update"], obs["cpu shares after update"]) == (
        str(64 * MIB), "512"), detail
    assert obs["stop"] == "ok", detail
    assert obs["status stopped"] == {"state": "CONTAINER_EXITED", "exit code": 7,
                                     "reason": "Error"}, detail
    assert obs["log"] == ["stdout F started"], detail
    assert (obs["remove container"], obs["containers after remove"]) == ("ok", 0), detail
    assert (obs["stop pod"], obs["pod state stopped"], obs["remove pod"]) == (
        "ok", "SANDBOX_NOTREADY", "ok"), detail
    _check_left(obs)
    reference.compare("cri pod lifecycle", oci_runtime, obs, lambda rt: pod_lifecycle(cri, rt))


def test_container_exits_on_its_own(cri: CriContainerd, oci_runtime: OciRuntime,
                                    reference: Reference) -> None:
    obs = exits_on_its_own(cri, oci_runtime)
    detail = f"{obs}\n{obs['_log']}"
    assert (obs["start"], obs["exited"]) == ("ok", True), detail
    assert obs["status"] == {"state": "CONTAINER_EXITED", "exit code": 3,
                             "reason": "Error"}, detail
    assert obs["finished after started"] and obs["log"] == ["stdout F bye"], detail
    assert (obs["stop pod"], obs["remove pod"]) == ("ok", "ok"), detail
    _check_left(obs)
    reference.compare("cri exit", oci_runtime, obs, lambda rt: exits_on_its_own(cri, rt))


def test_oom_killed(cri: CriContainerd, oci_runtime: OciRuntime,
                    reference: Reference) -> None:
    obs = oom_killed(cri, oci_runtime)
    detail = f"{obs}\n{obs['_log']}"
    assert (obs["limit"], obs["start"], obs["exited"]) == (str(OOM_LIMIT), "ok", True), detail
    assert obs["status"] == {"state": "CONTAINER_EXITED", "exit code": 137,
                             "reason": "OOMKilled"}, detail
    assert (obs["stop pod"], obs["remove pod"]) == ("ok", "ok"), detail
    _check_left(obs)
    reference.compare("cri oom", oci_runtime, obs, lambda rt: oom_killed(cri, rt))


def test_shared_pid_namespace(cri: CriContainerd, oci_runtime: OciRuntime,
                              reference: Reference) -> None:
    obs = shared_pid_namespace(cri, oci_runtime)
    detail = f"{obs}\n{obs['_log']}"
    assert (obs["start first"], obs["start second"], obs["running"]) == ("ok", "ok", True), detail
    assert obs["exec rc"] == 0 and obs["pid 1 is the pause process"], detail
    assert obs["sees the other container"] and obs["sees itself"], detail
    assert (obs["stop pod"], obs["remove pod"]) == ("ok", "ok"), detail
    _check_left(obs)
    reference.compare("cri shared pid", oci_runtime, obs,
                      lambda rt: shared_pid_namespace(cri, rt))


def test_restart_in_pod(cri: CriContainerd, oci_runtime: OciRuntime,
                        reference: Reference) -> None:
    obs = restart_in_pod(cri, oci_runtime)
    detail = f"{obs}\n{obs['_log']}"
    assert (obs["start 0"], obs["exited 0"]) == ("ok", True), detail
    assert obs["status 0"] == {"state": "CONTAINER_EXITED", "exit code": 2,
                               "reason": "Error"}, detail
    assert (obs["create 1"], obs.get("start 1"), obs.get("running 1")) == ("ok", "ok", True), (
        detail)
    assert obs["listed"] == [("app", 0, "CONTAINER_EXITED"), ("app", 1, "CONTAINER_RUNNING")], (
        detail)
    assert (obs["log 0"], obs["log 1"]) == (["stdout F first"], ["stdout F second"]), detail
    assert (obs["remove old"], obs["stop pod"], obs["remove pod"]) == ("ok", "ok", "ok"), detail
    _check_left(obs)
    reference.compare("cri restart", oci_runtime, obs, lambda rt: restart_in_pod(cri, rt))


def test_nothing_left_on_the_host(cri: CriContainerd, oci_runtime: OciRuntime) -> None:
    """Two pods at once, then removed: every shim, rootfs/shm/netns mount, cgroup and
    runtime state dir goes, and the handler's runtime root ends empty."""
    pods = [cri.run_pod(f"many{i}", oci_runtime) for i in range(2)]
    for pod, config in pods:
        cid = cri.create(pod, config, "app", ["sleep", "100000"])
        cri.cri("StartContainer", container_id=cid)
    during = cri.leftovers()
    assert len(during["shims"]) >= 2 and len(cri.netns()) == 2, during  # type: ignore
    assert len(cri.runtime_states().get(oci_runtime.name, [])) == 4, cri.runtime_states()
    errors = [e for pod, _ in pods for e in cri.remove_pod(pod, deadline=15)]
    assert not errors, errors
    got = left(cri)
    assert got == NOTHING_LEFT, got
    assert not cri.netns()
    assert not os.listdir(cri.runtime_state(oci_runtime)), cri.runtime_states()


def test_client_from_embedded_descriptor(tmp_path: Path) -> None:
    """The client comes from the runtime.v1 descriptor inside /usr/bin/containerd: every
    call the scenarios make exists, and requests are typed (a misspelt field is an
    error, not an empty request that containerd would answer with its defaults)."""
    reason = cri_engine.missing()
    if reason:
        pytest.skip(reason)
    from tests.engines.cri_client import CriClient

    client = CriClient(tmp_path / "absent.sock")
    try:
        for method in ("RunPodSandbox", "PodSandboxStatus", "CreateContainer", "StartContainer",
                       "ContainerStatus", "ExecSync", "ContainerStats",
                       "UpdateContainerResources", "StopContainer", "RemoveContainer",
                       "StopPodSandbox", "RemovePodSandbox", "ListContainers", "ImageStatus"):
            assert method in client._methods, method
        cfg = client.new("PodSandboxConfig", metadata={"name": "n", "attempt": 2},
                         linux={"security_context": {"namespace_options": {"pid": "POD"}}})
        again = client.message_class("PodSandboxConfig").FromString(cfg.SerializeToString())
        assert (again.metadata.name, again.metadata.attempt) == ("n", 2)
        assert client.enum_name("NamespaceMode", 1) == "CONTAINER"
        with pytest.raises(Exception, match="no_such_field"):
            client.new("PodSandboxConfig", no_such_field=1)
        with pytest.raises(CriError) as err:
            client.call("Version", deadline=2)
        assert err.value.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    finally:
        client.close()

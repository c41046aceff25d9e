"""config.md "Linux Process" (``scheduler``, ``ioPriority``, ``execCPUAffinity``) and
config-linux.md "Personality", with runtime.md "Lifecycle" step 2: "If the runtime is
unable to create the environment specified in the config.json, it MUST generate an
error." Debian's runc 1.1.5 predates all four (they came with runc 1.2)."""

from __future__ import annotations

import json
import os

import pytest

RUNC_12 = "runc 1.1 predates this field (runc 1.2 applies it) and ignores it"


def _stat(text: str) -> list[str]:
    """/proc/self/stat fields from field 3 on (index 0 = field 3)."""
    return text[text.rindex(")") + 2:].split()


def _run(runtime, bundle, *args: str) -> str:
    bundle.config["process"]["args"] = list(args)
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    return res.out


@pytest.mark.runc_differs(RUNC_12)
def test_process_scheduler(runtime, bundle):
    """config.md "Linux Process": "scheduler (object, OPTIONAL) is an object describing
    the scheduler properties for the process." with "policy" and "nice" as for
    sched_setattr(2): SCHED_BATCH (3) at nice 7 in /proc/self/stat (fields 19, 41)."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    fields = _stat(_run(runtime, bundle, "cat", "/proc/self/stat"))
    assert (fields[19 - 3], fields[41 - 3]) == ("7", "3")


@pytest.mark.runc_differs(RUNC_12)
def test_process_scheduler_the_kernel_refuses_fails(runtime, bundle):
    """runtime.md "Lifecycle" step 2: a policy the kernel does not have (SCHED_ISO was
    never merged into Linux) is an environment the runtime cannot create: an error."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_ISO"}
    res = runtime.run(bundle)
    assert res.rc != 0, str(res)


@pytest.mark.runc_differs(RUNC_12)
def test_process_io_priority(runtime, bundle):
    """config.md "Linux Process": "ioPriority (object, OPTIONAL) configures the I/O
    priority settings for the container's processes" (ioprio_set(2) class and
    priority); busybox's ionice reads it back."""
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    assert _run(runtime, bundle, "ionice").strip() == "best-effort: prio 6"


@pytest.mark.runc_differs(RUNC_12)
def test_personality_linux32(runtime, bundle):
    """config-linux.md "Personality": "domain ... LINUX and LINUX32": under LINUX32 an
    x86_64 kernel reports i686 (personality(2) PER_LINUX32)."""
    if os.uname().machine != "x86_64":
        pytest.skip("i686 under LINUX32 is an x86_64 behaviour")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    assert _run(runtime, bundle, "uname", "-m").strip() == "i686"


@pytest.mark.runc_differs(RUNC_12)
def test_exec_cpu_affinity_final(runtime, bundle, tmp_path):
    """config.md "Linux Process": "execCPUAffinity ... final (string, OPTIONAL) is a list
    of CPUs the process will be run on after the transition to container's cgroup" --
    for a process started by exec; "This setting is not applicable to the container's
    init process"."""
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    bundle.config["process"]["args"] = ["sleep", "60"]
    res = runtime.run(bundle, detach=True)
    assert res.rc == 0, str(res)
    proc = dict(bundle.config["process"], args=["grep", "Cpus_allowed_list", "/proc/self/status"],
                execCPUAffinity={"initial": "0", "final": "1"})
    spec = tmp_path / "process.json"
    spec.write_text(json.dumps(proc))
    res = runtime("exec", "--process", str(spec), bundle.cid)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["Cpus_allowed_list:", "1"]
    pid = runtime.state(bundle.cid)["pid"]
    assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)

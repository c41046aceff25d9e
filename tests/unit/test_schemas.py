"""Tests of pyoci's own JSON Schemas (schemas/*.schema.json).

The schemas are written from the prose of runtime-spec v1.3 (config.md, config-linux.md,
runtime.md, features.md, features-linux.md). These tests check that

* each schema is a valid draft 2020-12 schema;
* the real config.json / process.json files written by runc, podman and containerd validate
  (skipped where ../shared is absent);
* a minimal config and a config using every v1.3 Linux field validate;
* invalid documents are rejected, with the error at the expected JSON path;
* unknown properties are accepted at every level (the spec says runtimes MUST ignore them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
REFERENCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference" / "configs"
SCHEMA_NAMES = ("config", "state", "features")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


@pytest.fixture(scope="module")
def config_schema() -> dict[str, Any]:
    return load_schema("config")


@pytest.fixture(scope="module")
def config_validator(config_schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(config_schema)


def subschema_validator(schema: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator for one ``$defs`` entry of *schema* (e.g. a process.json)."""
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{name}"})


@pytest.fixture(scope="module")
def process_validator(config_schema: dict[str, Any]) -> Draft202012Validator:
    return subschema_validator(config_schema, "Process")


@pytest.fixture(scope="module")
def state_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("state"))


@pytest.fixture(scope="module")
def features_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("features"))


def all_errors(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The errors and, recursively, the errors of their anyOf/oneOf branches."""
    for error in errors:
        yield error
        yield from all_errors(error.context)


def assert_valid(validator: Draft202012Validator, instance: Any) -> None:
    errors = [(list(e.absolute_path), e.message) for e in validator.iter_errors(instance)]
    assert errors == []


def assert_rejected(
    validator: Draft202012Validator,
    instance: Any,
    path: tuple[str | int, ...],
    keyword: str,
) -> None:
    """*instance* is invalid, the most relevant error is at *path*, and some error at
    *path* comes from the *keyword* validator."""
    errors = list(validator.iter_errors(instance))
    assert errors, "the instance was unexpectedly valid"
    found = [(tuple(e.absolute_path), e.validator, e.message) for e in all_errors(errors)]
    assert any(p == path and k == keyword for p, k, _ in found), found
    assert tuple(best_match(errors).absolute_path) == path, found


# --------------------------------------------------------------------------- documents

MINIMAL_CONFIG: dict[str, Any] = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}}

MINIMAL_PROCESS: dict[str, Any] = {
    "cwd": "/",
    "args": ["sh"],
    "user": {"uid": 0, "gid": 0},
}

FULL_PROCESS: dict[str, Any] = {
    "terminal": True,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1, "gid": 1, "umask": 63, "additionalGids": [5, 6]},
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/root",
    "args": ["sh", "-c", "true"],
    "apparmorProfile": "acme_secure_profile",
    "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
    "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4},
    "noNewPrivileges": True,
    "oomScoreAdj": -999,
    "scheduler": {
        "policy": "SCHED_DEADLINE",
        "nice": -5,
        "priority": 0,
        "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM"],
        "runtime": 10_000_000,
        "deadline": 20_000_000,
        "period": 30_000_000,
    },
    "capabilities": {
        "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    },
    "rlimits": [
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
        {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 0},
    ],
    "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
}

FULL_CONFIG: dict[str, Any] = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "slartibartfast",
    "domainname": "foobarbaz.test",
    "process": FULL_PROCESS,
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/data",
            "type": "none",
            "source": "/volumes/testing",
            "options": ["rbind", "rw", "ridmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 65536}],
        },
        {"destination": "relative/is/deprecated/but/allowed", "source": "/x", "options": ["bind"]},
    ],
    "hooks": {
        "prestart": [
            {"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"], "env": ["k=v"]}
        ],
        "createRuntime": [{"path": "/usr/bin/setup-network"}],
        "createContainer": [{"path": "/usr/bin/mount-hook", "args": ["-mount"]}],
        "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    },
    "annotations": {"com.example.gpu-cores": "2", "com.example.empty": ""},
    "linux": {
        "namespaces": [
            {"type": "pid", "path": "/proc/1234/ns/pid"},
            {"type": "network", "path": "/var/run/netns/neta"},
            {"type": "mount"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "user"},
            {"type": "cgroup"},
            {"type": "time"},
        ],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "timeOffsets": {
            "monotonic": {"secs": -86400, "nanosecs": 0},
            "boottime": {"secs": 3600, "nanosecs": 500},
        },
        "devices": [
            {
                "path": "/dev/fuse",
                "type": "c",
                "major": 10,
                "minor": 229,
                "fileMode": 438,
                "uid": 0,
                "gid": 0,
            },
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432},
            {"path": "/dev/unbuffered", "type": "u", "major": 4, "minor": 64},
            {"path": "/dev/myfifo", "type": "p"},
        ],
        "netDevices": {"eth0": {"name": "container_eth0"}, "dummy0": {}},
        "cgroupsPath": "/myRuntime/myContainer",
        "resources": {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
                {"allow": True, "type": "a"},
            ],
            "memory": {
                "limit": 536870912,
                "reservation": 536870912,
                "swap": -1,
                "kernel": -1,
                "kernelTCP": -1,
                "swappiness": 0,
                "disableOOMKiller": False,
                "useHierarchy": True,
                "checkBeforeUpdate": True,
            },
            "cpu": {
                "shares": 1024,
                "quota": 1000000,
                "burst": 1000000,
                "period": 500000,
                "realtimeRuntime": 950000,
                "realtimePeriod": 1000000,
                "cpus": "2-3",
                "mems": "0-7",
                "idle": 0,
            },
            "pids": {"limit": 32771},
            "blockIO": {
                "weight": 10,
                "leafWeight": 10,
                "weightDevice": [
                    {"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                    {"major": 8, "minor": 16, "weight": 500},
                    {"major": 8, "minor": 32, "leafWeight": 200},
                ],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
            },
            "hugepageLimits": [
                {"pageSize": "2MB", "limit": 209715200},
                {"pageSize": "64KB", "limit": 1000000},
            ],
            "network": {
                "classID": 1048577,
                "priorities": [
                    {"name": "eth0", "priority": 500},
                    {"name": "eth1", "priority": 1000},
                ],
            },
            "rdma": {
                "mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000},
                "mlx4_0": {"hcaObjects": 1000},
                "rxe3": {"hcaHandles": 10},
            },
            "unified": {
                "io.max": "259:0 rbps=2097152 wiops=120\n253:0 rbps=2097152 wiops=120",
                "hugetlb.1GB.max": "1073741824",
            },
        },
        "intelRdt": {
            "closID": "guaranteed_group",
            "l3CacheSchema": "L3:0=7f0;1=1f",
            "memBwSchema": "MB:0=20;1=70",
            "schemata": ["L3:0=7f0;1=1f", "L2:0=f;1=f;2=f;3=f", "MB:0=20;1=70"],
            "enableMonitoring": True,
        },
        "memoryPolicy": {
            "mode": "MPOL_INTERLEAVE",
            "nodes": "2-3",
            "flags": ["MPOL_F_STATIC_NODES"],
        },
        "personality": {"domain": "LINUX32", "flags": []},
        "sysctl": {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath": "/run/seccomp-agent.sock",
            "listenerMetadata": "MKNOD=/dev/null",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}],
                },
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_NOTIFY",
                    "args": [
                        {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
                    ],
                },
                {"names": ["mknod"], "action": "SCMP_ACT_TRACE"},
                {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
                {"names": ["acct"], "action": "SCMP_ACT_TRAP"},
                {"names": ["syslog"], "action": "SCMP_ACT_LOG"},
            ],
        },
        "rootfsPropagation": "slave",
        "maskedPaths": ["/proc/kcore", "/sys/firmware"],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
    },
    "solaris": {"milestone": "svc:/milestone/container:default"},
    "vm": {"hypervisor": {"path": "/path/to/vmm"}},
    "zos": {"namespaces": [{"type": "pid"}]},
    "freebsd": {"jail": {"host": "new"}},
}


def config(**fields: Any) -> dict[str, Any]:
    """The minimal config with top-level *fields* added or replaced."""
    out = copy.deepcopy(MINIMAL_CONFIG)
    out.update(copy.deepcopy(fields))
    return out


def with_process(**fields: Any) -> dict[str, Any]:
    return config(process={**MINIMAL_PROCESS, **fields})


def with_linux(**fields: Any) -> dict[str, Any]:
    return config(linux=fields)


def with_resources(**fields: Any) -> dict[str, Any]:
    return with_linux(resources=fields)


def with_seccomp(**fields: Any) -> dict[str, Any]:
    return with_linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", **fields})


def without(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    out = copy.deepcopy(document)
    for key in keys:
        out.pop(key)
    return out


# --------------------------------------------------------------------------- the schemas


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == DRAFT_2020_12
    assert schema["$id"] == f"urn:pyoci:schema:{name}"
    Draft202012Validator.check_schema(schema)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_never_forbids_unknown_properties(name: str) -> None:
    for node in walk(load_schema(name)):
        assert node.get("additionalProperties") is not False
        assert node.get("unevaluatedProperties") is not False


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_def_is_documented(name: str) -> None:
    for key, sub in load_schema(name)["$defs"].items():
        assert "title" in sub or "description" in sub, key


def test_config_schema_is_self_contained(config_schema: dict[str, Any]) -> None:
    for node in walk(config_schema):
        if "$ref" in node:
            assert node["$ref"].startswith("#/$defs/"), node["$ref"]
            assert node["$ref"].removeprefix("#/$defs/") in config_schema["$defs"]


@pytest.mark.parametrize(
    "name",
    [
        "Process",
        "Mount",
        "Hook",
        "Hooks",
        "Namespace",
        "LinuxResources",
        "Linux",
        "Root",
        "User",
        "IDMapping",
        "LinuxDevice",
        "NetDevice",
        "Seccomp",
        "Syscall",
        "LinuxMemoryPolicy",
        "LinuxIntelRdt",
        "WindowsProcess",
    ],
)
def test_config_exposes_def(config_schema: dict[str, Any], name: str) -> None:
    assert name in config_schema["$defs"]


# --------------------------------------------------------------------------- reference files


def reference_files(process: bool) -> list[Any]:
    """The reference documents whose name does (or does not) contain "process"."""
    if not REFERENCE_DIR.is_dir():
        return [pytest.param(None, id="reference-configs-absent")]
    files = sorted(p for p in REFERENCE_DIR.glob("*.json") if ("process" in p.name) == process)
    return [pytest.param(p, id=p.name) for p in files] or [
        pytest.param(None, id="no-reference-files")
    ]


@pytest.mark.parametrize("path", reference_files(process=False))
def test_reference_config_validates(
    config_validator: Draft202012Validator, path: Path | None
) -> None:
    if path is None:
        pytest.skip(f"no reference configs in {REFERENCE_DIR}")
    assert_valid(config_validator, json.loads(path.read_text()))


@pytest.mark.parametrize("path", reference_files(process=True))
def test_reference_process_validates(
    process_validator: Draft202012Validator, path: Path | None
) -> None:
    if path is None:
        pytest.skip(f"no reference process files in {REFERENCE_DIR}")
    assert_valid(process_validator, json.loads(path.read_text()))


# --------------------------------------------------------------------------- valid configs


def test_minimal_config_validates(config_validator: Draft202012Validator) -> None:
    assert_valid(config_validator, {"ociVersion": "1.3.0", "root": {"path": "rootfs"}})


def test_full_v1_3_config_validates(config_validator: Draft202012Validator) -> None:
    assert_valid(config_validator, FULL_CONFIG)


def test_full_config_uses_every_linux_field(config_schema: dict[str, Any]) -> None:
    """Guards the test above: FULL_CONFIG must exercise every property of the schema."""
    defs = config_schema["$defs"]
    assert set(FULL_CONFIG["linux"]) == set(defs["Linux"]["properties"])
    assert set(FULL_CONFIG["linux"]["resources"]) == set(defs["LinuxResources"]["properties"])
    linux = FULL_CONFIG["linux"]
    sections = {
        "LinuxMemory": linux["resources"]["memory"],
        "LinuxCPU": linux["resources"]["cpu"],
        "LinuxBlockIO": linux["resources"]["blockIO"],
        "LinuxIntelRdt": linux["intelRdt"],
        "LinuxMemoryPolicy": linux["memoryPolicy"],
        "Seccomp": linux["seccomp"],
        "Mount": FULL_CONFIG["mounts"][2],
        "User": FULL_PROCESS["user"] | {"username": "unused-on-linux"},
    }
    for key, section in sections.items():
        assert set(section) == set(defs[key]["properties"]), key
    # commandLine is the Windows-only member of the process object.
    assert set(FULL_PROCESS) | {"commandLine"} == set(defs["Process"]["properties"])
    assert set(FULL_CONFIG["hooks"]) == set(defs["Hooks"]["properties"])


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(config(ociVersion="1.0.2-dev"), id="prerelease-version"),
        pytest.param(config(ociVersion="1.2.0+dev"), id="build-metadata-version"),
        pytest.param(config(root={"path": "/abs/rootfs"}), id="absolute-root"),
        pytest.param(with_process(args=["/bin/true"], cwd="/tmp"), id="process-minimal"),
        pytest.param(with_process(user={"uid": 2**32 - 1, "gid": 0}), id="uid-max-uint32"),
        pytest.param(with_linux(devices=[{"type": "p", "path": "/dev/fifo"}]), id="fifo"),
        pytest.param(with_resources(pids={}), id="pids-limit-optional"),
        pytest.param(with_resources(pids={"limit": -1}), id="pids-unlimited"),
        pytest.param(with_resources(pids={"limit": 0}), id="pids-zero"),
        pytest.param(with_linux(netDevices={}), id="empty-netdevices"),
        pytest.param(with_process(execCPUAffinity={"final": ""}), id="empty-affinity"),
        pytest.param(config(annotations={}), id="empty-annotations"),
        pytest.param(
            without(
                config(
                    windows={"layerFolders": ["C:\\layers\\1"]},
                    process={
                        "cwd": "c:\\foo",
                        "commandLine": "someapp.exe",
                        "user": {"username": "containeradministrator"},
                    },
                ),
                "root",
            ),
            id="windows-hyperv-no-root-commandline",
        ),
    ],
)
def test_valid_config_variants(
    config_validator: Draft202012Validator, document: dict[str, Any]
) -> None:
    assert_valid(config_validator, document)


# --------------------------------------------------------------------------- invalid configs

INVALID_CONFIGS = [
    # top level
    ("no-ociVersion", without(MINIMAL_CONFIG, "ociVersion"), (), "required"),
    ("ociVersion-not-semver", config(ociVersion="1.3"), ("ociVersion",), "pattern"),
    ("ociVersion-not-string", config(ociVersion=1), ("ociVersion",), "type"),
    ("no-root-on-linux", without(MINIMAL_CONFIG, "root"), (), "required"),
    ("root-without-path", config(root={"readonly": True}), ("root",), "required"),
    (
        "root-readonly-not-bool",
        config(root={"path": "r", "readonly": "yes"}),
        ("root", "readonly"),
        "type",
    ),
    ("hostname-not-string", config(hostname=7), ("hostname",), "type"),
    ("annotation-value-not-string", config(annotations={"a": 1}), ("annotations", "a"), "type"),
    ("annotation-empty-key", config(annotations={"": "x"}), ("annotations",), "minLength"),
    ("vm-not-object", config(vm="x"), ("vm",), "type"),
    ("process-not-object", config(process=["sh"]), ("process",), "type"),
    ("linux-not-object", config(linux=[]), ("linux",), "type"),
    # mounts
    ("mounts-not-array", config(mounts={"destination": "/x"}), ("mounts",), "type"),
    (
        "mount-without-destination",
        config(mounts=[{"source": "x", "type": "tmpfs"}]),
        ("mounts", 0),
        "required",
    ),
    (
        "mount-options-not-array",
        config(mounts=[{"destination": "/x", "options": "ro"}]),
        ("mounts", 0, "options"),
        "type",
    ),
    (
        "mount-uidmappings-alone",
        config(
            mounts=[
                {"destination": "/x", "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}
            ]
        ),
        ("mounts", 0),
        "dependentRequired",
    ),
    (
        "mount-mapping-without-size",
        config(
            mounts=[
                {
                    "destination": "/x",
                    "uidMappings": [{"containerID": 0, "hostID": 1}],
                    "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                }
            ]
        ),
        ("mounts", 0, "uidMappings", 0),
        "required",
    ),
    # process
    ("process-args-not-array", with_process(args="sh"), ("process", "args"), "type"),
    ("process-args-empty", with_process(args=[]), ("process", "args"), "minItems"),
    ("process-args-item-not-string", with_process(args=["sh", 1]), ("process", "args", 1), "type"),
    (
        "process-without-args",
        config(process=without(MINIMAL_PROCESS, "args")),
        ("process",),
        "required",
    ),
    (
        "process-without-cwd",
        config(process=without(MINIMAL_PROCESS, "cwd")),
        ("process",),
        "required",
    ),
    ("process-cwd-relative", with_process(cwd="root"), ("process", "cwd"), "pattern"),
    ("process-env-not-array", with_process(env="A=b"), ("process", "env"), "type"),
    ("process-terminal-not-bool", with_process(terminal="yes"), ("process", "terminal"), "type"),
    (
        "consolesize-without-width",
        with_process(consoleSize={"height": 1}),
        ("process", "consoleSize"),
        "required",
    ),
    (
        "uid-negative",
        with_process(user={"uid": -1, "gid": 0}),
        ("process", "user", "uid"),
        "minimum",
    ),
    (
        "uid-above-uint32",
        with_process(user={"uid": 2**32, "gid": 0}),
        ("process", "user", "uid"),
        "maximum",
    ),
    (
        "uid-not-integer",
        with_process(user={"uid": "0", "gid": 0}),
        ("process", "user", "uid"),
        "type",
    ),
    ("user-without-gid", with_process(user={"uid": 0}), ("process", "user"), "required"),
    (
        "additional-gid-negative",
        with_process(user={"uid": 0, "gid": 0, "additionalGids": [-5]}),
        ("process", "user", "additionalGids", 0),
        "minimum",
    ),
    (
        "capabilities-set-not-array",
        with_process(capabilities={"bounding": "CAP_KILL"}),
        ("process", "capabilities", "bounding"),
        "type",
    ),
    (
        "rlimit-without-hard",
        with_process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1}]),
        ("process", "rlimits", 0),
        "required",
    ),
    (
        "rlimit-soft-negative",
        with_process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}]),
        ("process", "rlimits", 0, "soft"),
        "minimum",
    ),
    ("oomscoreadj-not-integer", with_process(oomScoreAdj=1.5), ("process", "oomScoreAdj"), "type"),
    (
        "scheduler-without-policy",
        with_process(scheduler={"nice": 1}),
        ("process", "scheduler"),
        "required",
    ),
    (
        "scheduler-bad-policy",
        with_process(scheduler={"policy": "SCHED_FAST"}),
        ("process", "scheduler", "policy"),
        "enum",
    ),
    (
        "iopriority-out-of-range",
        with_process(ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 8}),
        ("process", "ioPriority", "priority"),
        "maximum",
    ),
    (
        "iopriority-bad-class",
        with_process(ioPriority={"class": "BE", "priority": 1}),
        ("process", "ioPriority", "class"),
        "enum",
    ),
    (
        "exec-cpu-affinity-malformed",
        with_process(execCPUAffinity={"initial": "a-b"}),
        ("process", "execCPUAffinity", "initial"),
        "pattern",
    ),
    # hooks
    (
        "hook-timeout-zero",
        config(hooks={"poststart": [{"path": "/bin/x", "timeout": 0}]}),
        ("hooks", "poststart", 0, "timeout"),
        "exclusiveMinimum",
    ),
    (
        "hook-timeout-negative",
        config(hooks={"prestart": [{"path": "/bin/x", "timeout": -3}]}),
        ("hooks", "prestart", 0, "timeout"),
        "exclusiveMinimum",
    ),
    (
        "hook-timeout-not-integer",
        config(hooks={"createRuntime": [{"path": "/bin/x", "timeout": "5"}]}),
        ("hooks", "createRuntime", 0, "timeout"),
        "type",
    ),
    (
        "hook-without-path",
        config(hooks={"createContainer": [{"args": ["x"]}]}),
        ("hooks", "createContainer", 0),
        "required",
    ),
    (
        "hook-path-relative",
        config(hooks={"startContainer": [{"path": "bin/x"}]}),
        ("hooks", "startContainer", 0, "path"),
        "pattern",
    ),
    (
        "hooks-list-not-array",
        config(hooks={"poststop": {"path": "/bin/x"}}),
        ("hooks", "poststop"),
        "type",
    ),
    # linux: namespaces, mappings, devices
    (
        "namespace-type-bogus",
        with_linux(namespaces=[{"type": "bogus"}]),
        ("linux", "namespaces", 0, "type"),
        "enum",
    ),
    (
        "namespace-without-type",
        with_linux(namespaces=[{"path": "/proc/1/ns/pid"}]),
        ("linux", "namespaces", 0),
        "required",
    ),
    (
        "namespace-path-relative",
        with_linux(namespaces=[{"type": "pid", "path": "proc/1"}]),
        ("linux", "namespaces", 0, "path"),
        "pattern",
    ),
    (
        "uidmapping-hostid-negative",
        with_linux(uidMappings=[{"containerID": 0, "hostID": -1, "size": 1}]),
        ("linux", "uidMappings", 0, "hostID"),
        "minimum",
    ),
    (
        "timeoffset-nanosecs-negative",
        with_linux(timeOffsets={"boottime": {"nanosecs": -1}}),
        ("linux", "timeOffsets", "boottime", "nanosecs"),
        "minimum",
    ),
    (
        "device-type-bogus",
        with_linux(devices=[{"type": "x", "path": "/dev/x"}]),
        ("linux", "devices", 0, "type"),
        "enum",
    ),
    (
        "device-without-path",
        with_linux(devices=[{"type": "p"}]),
        ("linux", "devices", 0),
        "required",
    ),
    (
        "char-device-without-major",
        with_linux(devices=[{"type": "c", "path": "/dev/x", "minor": 1}]),
        ("linux", "devices", 0),
        "required",
    ),
    (
        "device-filemode-negative",
        with_linux(devices=[{"type": "p", "path": "/dev/x", "fileMode": -1}]),
        ("linux", "devices", 0, "fileMode"),
        "minimum",
    ),
    (
        "netdevice-name-not-string",
        with_linux(netDevices={"eth0": {"name": 5}}),
        ("linux", "netDevices", "eth0", "name"),
        "type",
    ),
    (
        "netdevice-entry-not-object",
        with_linux(netDevices={"eth0": "eth1"}),
        ("linux", "netDevices", "eth0"),
        "type",
    ),
    ("netdevices-not-object", with_linux(netDevices=["eth0"]), ("linux", "netDevices"), "type"),
    (
        "rootfs-propagation-weird",
        with_linux(rootfsPropagation="weird"),
        ("linux", "rootfsPropagation"),
        "enum",
    ),
    (
        "masked-path-relative",
        with_linux(maskedPaths=["proc/kcore"]),
        ("linux", "maskedPaths", 0),
        "pattern",
    ),
    (
        "readonly-paths-not-array",
        with_linux(readonlyPaths="/proc/sys"),
        ("linux", "readonlyPaths"),
        "type",
    ),
    (
        "sysctl-value-not-string",
        with_linux(sysctl={"net.ipv4.ip_forward": 1}),
        ("linux", "sysctl", "net.ipv4.ip_forward"),
        "type",
    ),
    (
        "personality-bad-domain",
        with_linux(personality={"domain": "LINUX64"}),
        ("linux", "personality", "domain"),
        "enum",
    ),
    (
        "memory-policy-without-mode",
        with_linux(memoryPolicy={"nodes": "0"}),
        ("linux", "memoryPolicy"),
        "required",
    ),
    (
        "memory-policy-bad-mode",
        with_linux(memoryPolicy={"mode": "MPOL_FAST"}),
        ("linux", "memoryPolicy", "mode"),
        "enum",
    ),
    (
        "memory-policy-bad-flag",
        with_linux(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_X"]}),
        ("linux", "memoryPolicy", "flags", 0),
        "enum",
    ),
    (
        "intelrdt-schemata-string-as-in-1.2",
        with_linux(intelRdt={"schemata": "L3:0=7f0\nMB:0=20"}),
        ("linux", "intelRdt", "schemata"),
        "type",
    ),
    (
        "intelrdt-schemata-line-with-newline",
        with_linux(intelRdt={"schemata": ["L3:0\nMB:0"]}),
        ("linux", "intelRdt", "schemata", 0),
        "pattern",
    ),
    (
        "intelrdt-membw-not-mb",
        with_linux(intelRdt={"memBwSchema": "L3:0=7f0"}),
        ("linux", "intelRdt", "memBwSchema"),
        "pattern",
    ),
    (
        "intelrdt-monitoring-not-bool",
        with_linux(intelRdt={"enableMonitoring": "yes"}),
        ("linux", "intelRdt", "enableMonitoring"),
        "type",
    ),
    # linux.resources
    (
        "cgroup-device-without-allow",
        with_resources(devices=[{"access": "rwm"}]),
        ("linux", "resources", "devices", 0),
        "required",
    ),
    (
        "cgroup-device-bad-access",
        with_resources(devices=[{"allow": True, "access": "rwx"}]),
        ("linux", "resources", "devices", 0, "access"),
        "pattern",
    ),
    (
        "cgroup-device-bad-type",
        with_resources(devices=[{"allow": True, "type": "u"}]),
        ("linux", "resources", "devices", 0, "type"),
        "enum",
    ),
    (
        "memory-limit-below-minus-one",
        with_resources(memory={"limit": -2}),
        ("linux", "resources", "memory", "limit"),
        "minimum",
    ),
    (
        "memory-limit-above-int64",
        with_resources(memory={"limit": 2**63}),
        ("linux", "resources", "memory", "limit"),
        "maximum",
    ),
    (
        "swappiness-above-100",
        with_resources(memory={"swappiness": 101}),
        ("linux", "resources", "memory", "swappiness"),
        "maximum",
    ),
    (
        "cpu-shares-negative",
        with_resources(cpu={"shares": -1}),
        ("linux", "resources", "cpu", "shares"),
        "minimum",
    ),
    (
        "cpu-cpus-malformed",
        with_resources(cpu={"cpus": "0-3;7"}),
        ("linux", "resources", "cpu", "cpus"),
        "pattern",
    ),
    (
        "pids-limit-not-integer",
        with_resources(pids={"limit": "max"}),
        ("linux", "resources", "pids", "limit"),
        "type",
    ),
    (
        "blkio-weight-above-uint16",
        with_resources(blockIO={"weight": 65536}),
        ("linux", "resources", "blockIO", "weight"),
        "maximum",
    ),
    (
        "blkio-weight-device-without-weights",
        with_resources(blockIO={"weightDevice": [{"major": 8, "minor": 0}]}),
        ("linux", "resources", "blockIO", "weightDevice", 0),
        "anyOf",
    ),
    (
        "blkio-throttle-without-rate",
        with_resources(blockIO={"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}),
        ("linux", "resources", "blockIO", "throttleReadBpsDevice", 0),
        "required",
    ),
    (
        "hugepage-bad-size",
        with_resources(hugepageLimits=[{"pageSize": "2M", "limit": 1}]),
        ("linux", "resources", "hugepageLimits", 0, "pageSize"),
        "pattern",
    ),
    (
        "network-priority-without-name",
        with_resources(network={"priorities": [{"priority": 1}]}),
        ("linux", "resources", "network", "priorities", 0),
        "required",
    ),
    (
        "rdma-entry-empty",
        with_resources(rdma={"mlx5_1": {}}),
        ("linux", "resources", "rdma", "mlx5_1"),
        "anyOf",
    ),
    (
        "unified-value-not-string",
        with_resources(unified={"memory.max": 1}),
        ("linux", "resources", "unified", "memory.max"),
        "type",
    ),
    # linux.seccomp
    (
        "seccomp-without-default-action",
        with_linux(seccomp={"architectures": []}),
        ("linux", "seccomp"),
        "required",
    ),
    (
        "seccomp-bad-default-action",
        with_seccomp(defaultAction="SCMP_ACT_PANIC"),
        ("linux", "seccomp", "defaultAction"),
        "enum",
    ),
    (
        "seccomp-bad-arch",
        with_seccomp(architectures=["SCMP_ARCH_Z80"]),
        ("linux", "seccomp", "architectures", 0),
        "enum",
    ),
    (
        "seccomp-bad-flag",
        with_seccomp(flags=["SECCOMP_FILTER_FLAG_NOPE"]),
        ("linux", "seccomp", "flags", 0),
        "enum",
    ),
    (
        "seccomp-metadata-without-listener",
        with_seccomp(listenerMetadata="x"),
        ("linux", "seccomp"),
        "dependentRequired",
    ),
    (
        "seccomp-default-errno-negative",
        with_seccomp(defaultErrnoRet=-1),
        ("linux", "seccomp", "defaultErrnoRet"),
        "minimum",
    ),
    (
        "syscall-names-empty",
        with_seccomp(syscalls=[{"names": [], "action": "SCMP_ACT_ALLOW"}]),
        ("linux", "seccomp", "syscalls", 0, "names"),
        "minItems",
    ),
    (
        "syscall-without-action",
        with_seccomp(syscalls=[{"names": ["read"]}]),
        ("linux", "seccomp", "syscalls", 0),
        "required",
    ),
    (
        "syscall-bad-action",
        with_seccomp(syscalls=[{"names": ["read"], "action": "ALLOW"}]),
        ("linux", "seccomp", "syscalls", 0, "action"),
        "enum",
    ),
    (
        "syscall-arg-bad-op",
        with_seccomp(
            syscalls=[
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}],
                }
            ]
        ),
        ("linux", "seccomp", "syscalls", 0, "args", 0, "op"),
        "enum",
    ),
    (
        "syscall-arg-without-value",
        with_seccomp(
            syscalls=[
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "op": "SCMP_CMP_EQ"}],
                }
            ]
        ),
        ("linux", "seccomp", "syscalls", 0, "args", 0),
        "required",
    ),
    (
        "syscall-arg-value-above-uint64",
        with_seccomp(
            syscalls=[
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}],
                }
            ]
        ),
        ("linux", "seccomp", "syscalls", 0, "args", 0, "value"),
        "maximum",
    ),
    # windows
    (
        "windows-process-without-args-or-commandline",
        config(windows={}, process={"cwd": "c:\\"}),
        ("process",),
        "anyOf",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "keyword"),
    [pytest.param(doc, path, kw, id=name) for name, doc, path, kw in INVALID_CONFIGS],
)
def test_invalid_config_rejected_at_path(
    config_validator: Draft202012Validator,
    document: dict[str, Any],
    path: tuple[str | int, ...],
    keyword: str,
) -> None:
    assert_rejected(config_validator, document, path, keyword)


def test_invalid_case_names_are_unique() -> None:
    names = [name for name, *_ in INVALID_CONFIGS]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------- unknown properties


def test_unknown_properties_accepted_everywhere(config_validator: Draft202012Validator) -> None:
    doc = copy.deepcopy(FULL_CONFIG)
    doc["x-unknown-top"] = {"any": ["thing"]}
    doc["root"]["x-unknown"] = 1
    doc["mounts"][0]["x-unknown"] = None
    doc["process"]["futureField"] = [1, 2, 3]
    doc["process"]["user"]["x-unknown"] = "u"
    doc["process"]["capabilities"]["futureSet"] = 5
    doc["process"]["rlimits"][0]["x-unknown"] = True
    doc["hooks"]["futureHook"] = "not even a list"
    doc["hooks"]["poststart"][0]["x-unknown"] = {}
    linux = doc["linux"]
    linux["futureLinuxField"] = 42
    linux["namespaces"][0]["x-unknown"] = "n"
    linux["devices"][0]["x-unknown"] = "d"
    linux["netDevices"]["eth0"]["x-unknown"] = "nd"
    linux["resources"]["futureController"] = {"knob": 1}
    linux["resources"]["memory"]["futureKnob"] = "m"
    linux["resources"]["cpu"]["futureKnob"] = "c"
    linux["intelRdt"]["enableCMT"] = True  # removed in v1.3: now just unknown
    linux["seccomp"]["futureField"] = 1
    linux["seccomp"]["syscalls"][0]["comment"] = "allow I/O"
    linux["seccomp"]["syscalls"][2]["args"][0]["x-unknown"] = 0
    linux["memoryPolicy"]["x-unknown"] = "p"
    assert_valid(config_validator, doc)


def test_unknown_properties_accepted_in_process_file(
    process_validator: Draft202012Validator,
) -> None:
    assert_valid(process_validator, {**MINIMAL_PROCESS, "x-exec-only": True})


# --------------------------------------------------------------------------- subschemas


def test_process_subschema_validates_a_process_file(
    process_validator: Draft202012Validator,
) -> None:
    assert_valid(process_validator, FULL_PROCESS)
    assert_valid(process_validator, MINIMAL_PROCESS)


@pytest.mark.parametrize(
    ("document", "path", "keyword"),
    [
        pytest.param(without(MINIMAL_PROCESS, "cwd"), (), "required", id="no-cwd"),
        pytest.param(without(MINIMAL_PROCESS, "args"), (), "required", id="no-args"),
        pytest.param({**MINIMAL_PROCESS, "args": "sh"}, ("args",), "type", id="args-string"),
        pytest.param(
            {**MINIMAL_PROCESS, "user": {"uid": -1, "gid": 0}},
            ("user", "uid"),
            "minimum",
            id="uid-negative",
        ),
        pytest.param([], (), "type", id="not-an-object"),
    ],
)
def test_invalid_process_file_rejected(
    process_validator: Draft202012Validator,
    document: Any,
    path: tuple[str | int, ...],
    keyword: str,
) -> None:
    assert_rejected(process_validator, document, path, keyword)


def test_process_subschema_reachable_by_id(config_schema: dict[str, Any]) -> None:
    registry = Registry().with_resource(config_schema["$id"], Resource.from_contents(config_schema))
    validator = Draft202012Validator(
        {"$ref": "urn:pyoci:schema:config#/$defs/Process"}, registry=registry
    )
    assert_valid(validator, MINIMAL_PROCESS)
    assert_rejected(validator, {**MINIMAL_PROCESS, "cwd": 3}, ("cwd",), "type")


def test_linux_resources_subschema_validates_an_update_file(
    config_schema: dict[str, Any],
) -> None:
    validator = subschema_validator(config_schema, "LinuxResources")
    assert_valid(validator, FULL_CONFIG["linux"]["resources"])
    assert_valid(validator, {"memory": {"limit": 67108864}, "pids": {"limit": 50}})
    assert_rejected(validator, {"cpu": {"period": -1}}, ("cpu", "period"), "minimum")


# --------------------------------------------------------------------------- state

VALID_STATE: dict[str, Any] = {
    "ociVersion": "1.3.0",
    "id": "oci-container1",
    "status": "running",
    "pid": 4422,
    "bundle": "/containers/redis",
    "annotations": {"myKey": "myValue"},
}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(VALID_STATE, id="running"),
        pytest.param({**VALID_STATE, "status": "created"}, id="created"),
        pytest.param(without({**VALID_STATE, "status": "creating"}, "pid"), id="creating"),
        pytest.param(without({**VALID_STATE, "status": "stopped"}, "pid"), id="stopped-no-pid"),
        pytest.param({**VALID_STATE, "status": "stopped", "pid": 0}, id="stopped-pid-0"),
        pytest.param({**VALID_STATE, "status": "paused"}, id="runtime-defined-status"),
        pytest.param(without(VALID_STATE, "annotations"), id="no-annotations"),
        pytest.param({**VALID_STATE, "x-unknown": {"a": 1}}, id="unknown-property"),
    ],
)
def test_valid_state(state_validator: Draft202012Validator, document: dict[str, Any]) -> None:
    assert_valid(state_validator, document)


@pytest.mark.parametrize(
    ("document", "path", "keyword"),
    [
        pytest.param(without(VALID_STATE, "id"), (), "required", id="no-id"),
        pytest.param(without(VALID_STATE, "status"), (), "required", id="no-status"),
        pytest.param(without(VALID_STATE, "bundle"), (), "required", id="no-bundle"),
        pytest.param(without(VALID_STATE, "ociVersion"), (), "required", id="no-ociVersion"),
        pytest.param(without(VALID_STATE, "pid"), (), "required", id="running-without-pid"),
        pytest.param(
            without({**VALID_STATE, "status": "created"}, "pid"),
            (),
            "required",
            id="created-without-pid",
        ),
        pytest.param({**VALID_STATE, "pid": -1}, ("pid",), "minimum", id="pid-negative"),
        pytest.param({**VALID_STATE, "pid": "4422"}, ("pid",), "type", id="pid-string"),
        pytest.param({**VALID_STATE, "status": 1}, ("status",), "type", id="status-int"),
        pytest.param({**VALID_STATE, "status": ""}, ("status",), "minLength", id="status-empty"),
        pytest.param({**VALID_STATE, "id": ""}, ("id",), "minLength", id="id-empty"),
        pytest.param(
            {**VALID_STATE, "ociVersion": "v1"}, ("ociVersion",), "pattern", id="bad-version"
        ),
        pytest.param(
            {**VALID_STATE, "annotations": {"k": 1}},
            ("annotations", "k"),
            "type",
            id="annotation-not-string",
        ),
        pytest.param([], (), "type", id="not-an-object"),
    ],
)
def test_invalid_state(
    state_validator: Draft202012Validator,
    document: Any,
    path: tuple[str | int, ...],
    keyword: str,
) -> None:
    assert_rejected(state_validator, document, path, keyword)


# --------------------------------------------------------------------------- features

FULL_FEATURES: dict[str, Any] = {
    "ociVersionMin": "1.0.0",
    "ociVersionMax": "1.3.0",
    "hooks": [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ],
    "mountOptions": ["async", "bind", "idmap", "ridmap", "ro", "rprivate", "tmpcopyup"],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
        "capabilities": ["CAP_CHOWN", "CAP_KILL", "CAP_CHECKPOINT_RESTORE"],
        "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
        "seccomp": {
            "enabled": True,
            "actions": [
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_LOG",
                "SCMP_ACT_NOTIFY",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_TRAP",
            ],
            "operators": [
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_LE",
                "SCMP_CMP_LT",
                "SCMP_CMP_MASKED_EQ",
                "SCMP_CMP_NE",
            ],
            "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "knownFlags": [
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            ],
            "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"],
        },
        "apparmor": {"enabled": False},
        "selinux": {"enabled": False},
        "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
        "mountExtensions": {"idmap": {"enabled": True}},
        "netDevices": {"enabled": True},
        "memoryPolicy": {
            "modes": [
                "MPOL_DEFAULT",
                "MPOL_BIND",
                "MPOL_INTERLEAVE",
                "MPOL_WEIGHTED_INTERLEAVE",
                "MPOL_PREFERRED",
                "MPOL_PREFERRED_MANY",
                "MPOL_LOCAL",
            ],
            "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"],
        },
    },
    "annotations": {"org.opencontainers.runc.version": "1.1.0+dev"},
    "potentiallyUnsafeConfigAnnotations": ["com.example.foo.bar", "org.systemd.property."],
}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(FULL_FEATURES, id="full"),
        pytest.param({"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"}, id="minimal"),
        pytest.param(
            {
                "ociVersionMin": "1.0.0",
                "ociVersionMax": "1.3.0",
                "hooks": None,
                "mountOptions": None,
                "linux": None,
                "annotations": None,
                "potentiallyUnsafeConfigAnnotations": None,
            },
            id="null-properties",
        ),
        pytest.param(
            {
                "ociVersionMin": "1.0.0",
                "ociVersionMax": "1.3.0",
                "linux": {
                    "namespaces": None,
                    "cgroup": {"v1": None},
                    "seccomp": None,
                    "mountExtensions": {"idmap": None},
                },
            },
            id="nested-null-properties",
        ),
        pytest.param({**FULL_FEATURES, "x-unknown": 1}, id="unknown-property"),
    ],
)
def test_valid_features(features_validator: Draft202012Validator, document: dict[str, Any]) -> None:
    assert_valid(features_validator, document)


def features_with_linux(**linux: Any) -> dict[str, Any]:
    return {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": linux}


@pytest.mark.parametrize(
    ("document", "path", "keyword"),
    [
        pytest.param({"ociVersionMin": "1.0.0"}, (), "required", id="no-max"),
        pytest.param({"ociVersionMax": "1.3.0"}, (), "required", id="no-min"),
        pytest.param(
            {"ociVersionMin": None, "ociVersionMax": "1.3.0"},
            ("ociVersionMin",),
            "type",
            id="null-min",
        ),
        pytest.param(
            {"ociVersionMin": "1.0", "ociVersionMax": "1.3.0"},
            ("ociVersionMin",),
            "pattern",
            id="min-not-semver",
        ),
        pytest.param(
            {**FULL_FEATURES, "hooks": ["preStart"]}, ("hooks", 0), "enum", id="bad-hook-name"
        ),
        pytest.param(
            {**FULL_FEATURES, "mountOptions": "ro"},
            ("mountOptions",),
            "type",
            id="mount-options-string",
        ),
        pytest.param(
            features_with_linux(namespaces=["bogus"]),
            ("linux", "namespaces", 0),
            "enum",
            id="bad-namespace",
        ),
        pytest.param(
            features_with_linux(cgroup={"v1": "yes"}),
            ("linux", "cgroup", "v1"),
            "type",
            id="cgroup-v1-string",
        ),
        pytest.param(
            features_with_linux(seccomp={"actions": ["SCMP_ACT_PANIC"]}),
            ("linux", "seccomp", "actions", 0),
            "enum",
            id="bad-seccomp-action",
        ),
        pytest.param(
            features_with_linux(seccomp={"archs": ["x86_64"]}),
            ("linux", "seccomp", "archs", 0),
            "enum",
            id="bad-seccomp-arch",
        ),
        pytest.param(
            features_with_linux(memoryPolicy={"modes": ["MPOL_FAST"]}),
            ("linux", "memoryPolicy", "modes", 0),
            "enum",
            id="bad-mpol-mode",
        ),
        pytest.param(
            features_with_linux(intelRdt={"monitoring": 1}),
            ("linux", "intelRdt", "monitoring"),
            "type",
            id="rdt-monitoring-int",
        ),
        pytest.param(
            features_with_linux(mountExtensions={"idmap": {"enabled": "true"}}),
            ("linux", "mountExtensions", "idmap", "enabled"),
            "type",
            id="idmap-enabled-string",
        ),
        pytest.param(
            features_with_linux(netDevices={"enabled": 1}),
            ("linux", "netDevices", "enabled"),
            "type",
            id="netdevices-enabled-int",
        ),
        pytest.param(
            {**FULL_FEATURES, "annotations": {"k": 1}},
            ("annotations", "k"),
            "type",
            id="annotation-not-string",
        ),
        pytest.param(
            {**FULL_FEATURES, "potentiallyUnsafeConfigAnnotations": [1]},
            ("potentiallyUnsafeConfigAnnotations", 0),
            "type",
            id="unsafe-annotation-not-string",
        ),
    ],
)
def test_invalid_features(
    features_validator: Draft202012Validator,
    document: Any,
    path: tuple[str | int, ...],
    keyword: str,
) -> None:
    assert_rejected(features_validator, document, path, keyword)

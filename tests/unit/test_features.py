"""The features document (pyoci/operations/features.py; runtime-spec features.md and
features-linux.md): its shape, and that each list tells the truth about what pyoci and
this host do. The reference values are read from the host (/proc) or from the code that
acts on a config (the mount parser, the config loader, the seccomp compiler), never
copied from the document itself."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import pyoci
from pyoci import libseccomp as lib
from pyoci.cgroups.detect import Hierarchy, Layout
from pyoci.config.bundle import validate_document
from pyoci.config.loader import load_hooks, load_seccomp
from pyoci.errors import PyociError
from pyoci.executors import capabilities as caps
from pyoci.executors import lsm, mounts
from pyoci.executors import seccomp as sec
from pyoci.operations import features
from pyoci.record import fields
from tests.helpers import base_config

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "features.schema.json"

#: config-linux.md "Namespaces": spec type -> the /proc/<pid>/ns file of that namespace
#: (namespaces(7)).
PROC_NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}

#: Candidate option strings: runc's list from features.md's example plus options that
#: only a filesystem understands (mount(2) data). Used to check the list is complete.
CANDIDATE_OPTIONS = (
    "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
    "idmap", "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev",
    "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
    "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev",
    "rdiratime", "relatime", "remount", "rexec", "ridmap", "rnoatime", "rnodev",
    "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow",
    "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime",
    "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
    "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
    "mode=755", "size=65536k", "newinstance", "ptmxmode=0666", "uid=0", "lowerdir=/a",
)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return features.features_document()


def _semver(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("-")[0].split("+")[0].split("."))


# --- shape ------------------------------------------------------------------------------

def test_document_validates_against_the_schema(doc: dict[str, Any]) -> None:
    validator = Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []


def test_versions(doc: dict[str, Any]) -> None:
    assert doc["ociVersionMax"] == pyoci.OCI_VERSION
    assert doc["ociVersionMin"] == "1.0.0"
    # features.md: ociVersionMax MUST NOT be less than ociVersionMin.
    assert _semver(doc["ociVersionMin"]) <= _semver(doc["ociVersionMax"])


def test_oci_versions_are_accepted_as_config_oci_version(doc: dict[str, Any]) -> None:
    """features.md: the runtime MUST accept both as config.json's ociVersion."""
    for version in (doc["ociVersionMin"], doc["ociVersionMax"]):
        cfg = base_config()
        cfg["ociVersion"] = version
        validate_document(cfg, None)


def test_json_is_the_document_indented_like_runc(doc: dict[str, Any]) -> None:
    text = features.features_json()
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert lines[1] == '    "ociVersionMin": "1.0.0",'
    indents = {len(line) - len(line.lstrip(" ")) for line in lines}
    assert all(n % 4 == 0 for n in indents) and 4 in indents
    assert not text.endswith("\n")


def test_lists_have_no_duplicates(doc: dict[str, Any]) -> None:
    linux = doc["linux"]
    lists = [doc["hooks"], doc["mountOptions"], linux["namespaces"], linux["capabilities"],
             *(v for v in linux["seccomp"].values() if isinstance(v, list))]
    for items in lists:
        assert len(items) == len(set(items)), items


def test_module_does_not_import_jsonschema() -> None:
    code = ("import sys; from pyoci.operations.features import features_json; "
            "features_json(); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('jsonschema', 'referencing', 'typer')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


# --- hooks ------------------------------------------------------------------------------

def test_every_listed_hook_is_loaded(doc: dict[str, Any]) -> None:
    for name in doc["hooks"]:
        hooks = load_hooks({name: [{"path": "/bin/true"}]})
        loaded = [f for f in fields(hooks) if getattr(hooks, f)]
        assert len(loaded) == 1, f"{name} is not loaded into the model"


def test_every_hook_kind_of_the_model_is_listed(doc: dict[str, Any]) -> None:
    from pyoci.config.model import Hooks

    assert len(doc["hooks"]) == len(fields(Hooks))


# --- mount options ----------------------------------------------------------------------

def test_every_listed_mount_option_is_handled_by_the_parser(doc: dict[str, Any]) -> None:
    """Recognized means acted on by pyoci itself, not passed to mount(2) as fs data."""
    for opt in doc["mountOptions"]:
        parsed = mounts.ParsedOptions((opt,))
        assert parsed.data is None, f"{opt} falls through to mount(2) data"


def test_refused_mount_options_are_not_listed(doc: dict[str, Any]) -> None:
    for opt in mounts.UNSUPPORTED_OPTIONS:
        with pytest.raises(ValueError):
            mounts.ParsedOptions((opt,))
        assert opt not in doc["mountOptions"]


def test_mount_option_list_is_complete(doc: dict[str, Any]) -> None:
    """Every candidate the parser handles itself is listed; the others are not."""
    for opt in CANDIDATE_OPTIONS:
        try:
            handled = mounts.ParsedOptions((opt,)).data is None
        except ValueError:
            handled = False
        assert (opt in doc["mountOptions"]) == handled, opt


def test_mount_options_are_accepted_in_a_config(doc: dict[str, Any]) -> None:
    cfg = base_config()
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": list(doc["mountOptions"])})
    validate_document(cfg, None)


def test_tmpcopyup_is_the_parser_s_extension() -> None:
    assert mounts.ParsedOptions((features.TMPCOPYUP,)).tmpcopyup is True


# --- namespaces -------------------------------------------------------------------------

def test_namespaces_are_those_of_this_kernel(doc: dict[str, Any]) -> None:
    present = set(os.listdir("/proc/self/ns"))
    expected = sorted(t for t, f in PROC_NS.items() if f in present)
    assert doc["linux"]["namespaces"] == expected


def test_namespaces_missing_from_the_kernel_are_left_out(tmp_path: Path) -> None:
    for name in ("mnt", "pid", "pid_for_children", "net"):
        (tmp_path / name).touch()
    assert features.namespaces(str(tmp_path)) == ["mount", "network", "pid"]
    assert features.namespaces(str(tmp_path / "absent")) == []


def test_listed_namespaces_are_accepted_in_a_config(doc: dict[str, Any]) -> None:
    cfg = base_config()
    cfg["linux"]["namespaces"] = [{"type": t} for t in doc["linux"]["namespaces"]]
    if "user" in doc["linux"]["namespaces"]:
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    validate_document(cfg, None)


# --- capabilities -----------------------------------------------------------------------

def test_capabilities_are_those_the_kernel_knows(doc: dict[str, Any]) -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    listed = doc["linux"]["capabilities"]
    assert len(listed) == min(last + 1, len(caps.CAP_NAMES))
    assert [caps.CAP_NUMBERS[n] for n in listed] == list(range(len(listed)))
    _bits, unknown = caps.mask(tuple(listed), last)
    assert unknown == []


def test_capabilities_follow_the_kernel_s_last_cap() -> None:
    assert features.capabilities(5) == list(caps.CAP_NAMES[:6])
    # A kernel newer than pyoci's table: only names pyoci has are offered.
    assert features.capabilities(len(caps.CAP_NAMES) + 10) == list(caps.CAP_NAMES)


def test_listed_capabilities_are_accepted_in_a_config(doc: dict[str, Any]) -> None:
    names = doc["linux"]["capabilities"]
    cfg = base_config(capabilities={k: list(names) for k in
                                    ("bounding", "effective", "permitted", "inheritable",
                                     "ambient")})
    validate_document(cfg, None)


# --- cgroup -----------------------------------------------------------------------------

def _hierarchy(*controllers: str) -> Hierarchy:
    return Hierarchy(controllers=controllers, mount_point="/x", mount_root="/", own_path="/")


@pytest.mark.parametrize(("layout", "rdma"), [
    pytest.param(Layout(mode="v2", unified_mount="/u",
                        unified_controllers=frozenset({"memory", "rdma"})), True, id="v2-rdma"),
    pytest.param(Layout(mode="v2", unified_mount="/u",
                        unified_controllers=frozenset({"memory"})), False, id="v2-none"),
    pytest.param(Layout(mode="v1", v1={"rdma": _hierarchy("rdma")}), True, id="v1-rdma"),
    pytest.param(Layout(mode="hybrid", v1={"memory": _hierarchy("memory")},
                        unified_mount="/u", unified_controllers=frozenset({"rdma"})),
                 True, id="hybrid-unified-rdma"),
    pytest.param(Layout(mode="hybrid", v1={"memory": _hierarchy("memory")},
                        unified_mount="/u", unified_controllers=frozenset({"hugetlb"})),
                 False, id="hybrid-none"),
    pytest.param(None, False, id="no-cgroups"),
])
def test_cgroup_features(layout: Layout | None, rdma: bool) -> None:
    assert features.cgroup_features(layout) == {
        "v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": rdma}


# --- seccomp ----------------------------------------------------------------------------

needs_libseccomp = pytest.mark.skipif(not lib.available(), reason="libseccomp is not installed")


@needs_libseccomp
def test_seccomp_lists_are_the_executor_s(doc: dict[str, Any]) -> None:
    s = doc["linux"]["seccomp"]
    assert s["enabled"] is True
    assert set(s["actions"]) == set(sec.supported_actions())
    assert set(s["operators"]) == set(sec.supported_operators())
    assert set(s["archs"]) == set(sec.supported_archs())
    assert s["knownFlags"] == list(sec.FLAGS)
    assert set(s["supportedFlags"]) == set(sec.supported_flags())
    assert set(s["supportedFlags"]) <= set(s["knownFlags"])
    assert doc["annotations"][features.ANNOTATION_LIBSECCOMP] == lib.version_string()


def _profile(**kw: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", **kw}


@needs_libseccomp
def test_every_listed_seccomp_feature_compiles(doc: dict[str, Any]) -> None:
    """What the document lists, the compiler takes: no ConfigError, no PyociError."""
    s = doc["linux"]["seccomp"]
    profiles = [_profile(architectures=s["archs"], flags=s["supportedFlags"])]
    for action in s["actions"]:
        extra = {"listenerPath": "/run/agent.sock"} if action == "SCMP_ACT_NOTIFY" else {}
        profiles.append(_profile(defaultAction="SCMP_ACT_ERRNO" if action == "SCMP_ACT_ALLOW"
                                 else "SCMP_ACT_ALLOW",
                                 syscalls=[{"names": ["getpid"], "action": action}], **extra))
    for op in s["operators"]:
        profiles.append(_profile(syscalls=[{"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                                            "args": [{"index": 0, "value": 1, "valueTwo": 1,
                                                      "op": op}]}]))
    for p in profiles:
        profile = load_seccomp(p)
        assert profile is not None
        sec.compile_filter(profile).release()


@needs_libseccomp
def test_unsupported_flags_are_refused_by_the_compiler(doc: dict[str, Any]) -> None:
    s = doc["linux"]["seccomp"]
    for flag in set(s["knownFlags"]) - set(s["supportedFlags"]):
        profile = load_seccomp(_profile(flags=[flag]))
        assert profile is not None
        with pytest.raises(PyociError):
            sec.compile_filter(profile)


@needs_libseccomp
def test_seccomp_lists_shrink_with_an_older_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """API level 2 (a 3.17..4.13 kernel): no LOG/KILL_PROCESS/NOTIFY, only the TSYNC flag."""
    monkeypatch.setattr(lib, "api_level", lambda: 2)
    s = features.features_document()["linux"]["seccomp"]
    assert not {"SCMP_ACT_LOG", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_NOTIFY"} & set(s["actions"])
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"} <= set(s["actions"])
    assert s["supportedFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC"]
    assert s["knownFlags"] == list(sec.FLAGS)


def test_without_libseccomp_seccomp_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sec, "libseccomp_version", lambda: None)
    d = features.features_document()
    assert d["linux"]["seccomp"] == {"enabled": False}
    assert features.ANNOTATION_LIBSECCOMP not in d["annotations"]
    assert d["annotations"][features.ANNOTATION_VERSION] == pyoci.__version__


# --- LSMs and refused features ----------------------------------------------------------

@pytest.mark.parametrize("enabled", [True, False])
def test_lsm_flags_follow_the_host(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: enabled)
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: not enabled)
    linux = features.features_document()["linux"]
    assert linux["apparmor"] == {"enabled": enabled}
    assert linux["selinux"] == {"enabled": not enabled}


def test_lsm_flags_match_what_create_accepts(doc: dict[str, Any]) -> None:
    """An LSM reported off is one whose labels lsm.check refuses, and the reverse."""
    from pyoci.config.loader import load_spec

    cases = (("apparmor", {"apparmorProfile": "pyoci-test"}, {}),
             ("selinux", {"selinuxLabel": "system_u:system_r:container_t:s0"}, {}),
             ("selinux", {}, {"mountLabel": "system_u:object_r:container_file_t:s0"}))
    for lsm_name, process, linux in cases:
        cfg = base_config(**process)
        cfg["linux"].update(linux)
        spec = load_spec(copy.deepcopy(cfg))
        if doc["linux"][lsm_name]["enabled"]:
            lsm.check(spec)
        else:
            with pytest.raises(PyociError):
                lsm.check(spec)


def test_net_devices_reported_on(doc: dict[str, Any]) -> None:
    """create moves linux.netDevices (tests/integration/test_network.py)."""
    assert doc["linux"]["netDevices"] == {"enabled": True}


def test_refused_features_are_reported_off(doc: dict[str, Any]) -> None:
    linux = doc["linux"]
    assert linux["intelRdt"] == {"enabled": False}
    assert linux["memoryPolicy"] == {"modes": [], "flags": []}
    # idmap mounts are off exactly because the mount parser refuses the option.
    assert linux["mountExtensions"]["idmap"]["enabled"] is False
    assert "idmap" in mounts.UNSUPPORTED_OPTIONS


def test_annotations(doc: dict[str, Any]) -> None:
    assert doc["annotations"][features.ANNOTATION_VERSION] == pyoci.__version__
    assert list(doc["annotations"]) == sorted(doc["annotations"])
    assert doc["potentiallyUnsafeConfigAnnotations"] == []

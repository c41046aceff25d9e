"""`features`: the features document (runtime-spec features.md, features-linux.md), as
`runc features` prints it.

The spec describes the runtime's *implemented* features and says to fix them when the
runtime is compiled. pyoci is not compiled, and it does several things only where the
host can: it refuses an AppArmor profile when AppArmor is off, a seccomp action that
libseccomp or the kernel lacks, an rdma limit without an rdma controller, a namespace
the kernel was built without. Those refusals are deliberate (a silent downgrade would
weaken what the config asked for), so listing such features as available would be
false. The rule used here:

* an entry is listed, or a flag is true, when a config.json that uses it would be
  carried out by this pyoci on this host. Every list is a subset of what pyoci
  recognizes, so the spec's MUST ("the runtime MUST recognize the elements in this
  array") holds; only its SHOULD about compile time is bent, and only where the host
  decides.
* ``cgroup.v1``/``cgroup.v2`` say which cgroup layouts pyoci manages (features-linux.md:
  "irrelevant to the cgroup version of the host"): a config cannot choose the version,
  and pyoci's manager drives v1, v2 and hybrid hosts alike (pyoci/cgroups/manager.py).
* What pyoci refuses everywhere is reported as not supported (``false``, empty list):
  Intel RDT, id-mapped mounts, systemd cgroup managers (pyoci's
  ``--systemd-cgroup`` only maps ``slice:prefix:name`` onto cgroupfs paths, it does not
  ask systemd for a unit), memory policies (not applied).

The document is built fresh on every call (it is a rare command); nothing here validates
it against schemas/features.schema.json: that is the tests' job, so jsonschema is never
imported.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from pyoci import OCI_VERSION, __version__

if TYPE_CHECKING:
    from pyoci.cgroups.detect import Layout

#: features.md: the oldest config.json version pyoci accepts (the 1.0 field set is a
#: subset of every later one; pyoci's schema accepts any 1.x ociVersion).
OCI_VERSION_MIN = "1.0.0"

#: config.md "POSIX-platform Hooks": every kind pyoci runs (create/start/delete).
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")

#: runc's extension option handled by mounts.ParsedOptions itself (not a mount(2) flag).
TMPCOPYUP = "tmpcopyup"

#: features.md "Annotations": same key rules as config.json annotations (reverse domain).
ANNOTATION_VERSION = "io.github.pyoci.version"
#: The key runc uses for the libseccomp it runs with; callers already read this one.
ANNOTATION_LIBSECCOMP = "io.github.seccomp.libseccomp.version"

#: Memory policies: linux.memoryPolicy is not applied by this build, so none is listed.
_MEMORY_POLICY_MODES: tuple[str, ...] = ()
_MEMORY_POLICY_FLAGS: tuple[str, ...] = ()


def mount_options() -> list[str]:
    """Every option string pyoci's mount code acts on itself (mount(2) flags, propagation,
    tmpcopyup), sorted as runc prints them.

    features.md: the list SHOULD NOT hold filesystem-specific options, which pyoci passes
    to mount(2) as data (``mode=755``, ``size=64k``): those are not listed. The options
    pyoci refuses (mounts.UNSUPPORTED_OPTIONS: idmap, recursive mount attributes) are not
    listed either."""
    from pyoci.executors import mounts

    known = set(mounts._FLAG_OPTIONS) | set(mounts._PROPAGATION_OPTIONS) | {TMPCOPYUP}
    return sorted(known - set(mounts.UNSUPPORTED_OPTIONS))


def namespaces(ns_dir: str = "/proc/self/ns") -> list[str]:
    """The namespace types pyoci creates and joins that this kernel has: a kernel built
    without one (CONFIG_TIME_NS, CONFIG_CGROUPS...) has no ``/proc/self/ns`` file for it,
    and unshare(2) would fail with EINVAL."""
    from pyoci.executors.namespaces import NS_FLAGS, NS_PROC_NAMES

    return sorted(t for t in NS_FLAGS
                  if os.path.exists(os.path.join(ns_dir, NS_PROC_NAMES[t])))


def capabilities(last: int | None = None) -> list[str]:
    """The capability names the running kernel knows (numbers up to
    /proc/sys/kernel/cap_last_cap), in number order. Other names pyoci knows are accepted
    in a config but skipped with a warning, as runc does, so they are not offered here; a
    kernel newer than pyoci's table adds nothing (pyoci has no name for those numbers)."""
    from pyoci.executors.capabilities import CAP_NAMES, last_cap

    if last is None:
        last = last_cap()
    return list(CAP_NAMES[:max(0, min(last, len(CAP_NAMES) - 1) + 1)])


def rdma_available(layout: Layout) -> bool:
    """Whether pyoci's manager can write linux.resources.rdma here: the rdma controller is
    bound to a v1 hierarchy (v1, hybrid) or offered by the unified one (hybrid, v2).
    Elsewhere the manager refuses the field (pyoci/cgroups/manager.py ``set``)."""
    return "rdma" in layout.v1 or "rdma" in layout.unified_controllers


def cgroup_features(layout: Layout | None) -> dict[str, bool]:
    """features-linux.md "Cgroup". ``layout`` None: no cgroup file system could be read,
    so no rdma either."""
    return {
        "v1": True,
        "v2": True,
        "systemd": False,
        "systemdUser": False,
        "rdma": layout is not None and rdma_available(layout),
    }


def _host_layout() -> Layout | None:
    from pyoci.cgroups.detect import detect

    try:
        return detect()
    except (OSError, ValueError):
        return None


def seccomp_features(libseccomp_version: str | None) -> dict[str, Any]:
    """features-linux.md "Seccomp". pyoci filters through libseccomp; without it a config
    with linux.seccomp is refused, so ``enabled`` is false and nothing is listed.

    actions, operators and archs are what this libseccomp and kernel can put in a filter
    (the executor's probes); knownFlags every flag pyoci recognizes, supportedFlags those
    this libseccomp and kernel can apply (the spec's own split)."""
    if libseccomp_version is None:
        return {"enabled": False}
    from pyoci.executors import seccomp

    return {
        "enabled": True,
        "actions": sorted(seccomp.supported_actions()),
        "operators": sorted(seccomp.supported_operators()),
        "archs": sorted(seccomp.supported_archs()),
        "knownFlags": list(seccomp.FLAGS),
        "supportedFlags": seccomp.supported_flags(),
    }


def features_document() -> dict[str, Any]:
    """The features document for this pyoci on this host (see the module docstring).

    Keys come in the order runc prints them (the runtime-spec's Go struct order)."""
    from pyoci.executors import lsm, seccomp

    libseccomp_version = seccomp.libseccomp_version()
    annotations = {ANNOTATION_VERSION: __version__}
    if libseccomp_version is not None:
        annotations[ANNOTATION_LIBSECCOMP] = libseccomp_version
    linux: dict[str, Any] = {
        "namespaces": namespaces(),
        "capabilities": capabilities(),
        "cgroup": cgroup_features(_host_layout()),
        "seccomp": seccomp_features(libseccomp_version),
        # lsm.check refuses a label for an LSM the host does not run.
        "apparmor": {"enabled": lsm.apparmor_enabled()},
        "selinux": {"enabled": lsm.selinux_enabled()},
        "memoryPolicy": {"modes": list(_MEMORY_POLICY_MODES),
                         "flags": list(_MEMORY_POLICY_FLAGS)},
        # create refuses linux.intelRdt (no resctrl support).
        "intelRdt": {"enabled": False},
        # mounts refuses the idmap/ridmap options: no id-mapped mounts.
        "mountExtensions": {"idmap": {"enabled": False}},
        # create moves linux.netDevices into the container (executors/network.py).
        "netDevices": {"enabled": True},
    }
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": mount_options(),
        "linux": linux,
        "annotations": dict(sorted(annotations.items())),
        # pyoci reads no config.json annotation: none of them changes what it does.
        "potentiallyUnsafeConfigAnnotations": [],
    }


def features_json() -> str:
    """The document as `runc features` prints it: JSON indented by four spaces, no
    trailing newline (the caller prints one line end, as Go's json.Encoder does)."""
    return json.dumps(features_document(), indent=4, ensure_ascii=False)

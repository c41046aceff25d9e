"""Checks the JSON Schema cannot express, each citing the rule it enforces.

They run after the schema passed, on the raw document (so paths are JSON paths), and
return every problem at once, in the same (path, reason) form as schema errors.
"""

from __future__ import annotations

import os

from pyoci.config.procattrs import personality_problems, process_problems
from pyoci.linux_names import RLIMITS

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

#: sysctl prefixes and the namespace that makes them per-container (runc's rule: only
#: namespaced sysctls may be set, and only with that namespace new or joined).
_SYSCTL_NAMESPACES = (("kernel.msgmax", "ipc"), ("kernel.msgmnb", "ipc"), ("kernel.msgmni", "ipc"),
                      ("kernel.sem", "ipc"), ("kernel.shmall", "ipc"), ("kernel.shmmax", "ipc"),
                      ("kernel.shmmni", "ipc"), ("kernel.shm_rmid_forced", "ipc"),
                      ("fs.mqueue.", "ipc"), ("net.", "network"), ("kernel.domainname", "uts"),
                      ("kernel.hostname", "uts"))



#: /proc/<pid>/ns/<name> for each namespace type a sysctl can belong to.
_NS_FILES = {"network": "net", "ipc": "ipc", "uts": "uts"}


def host_namespace(nstype: str, path: Any) -> str | None:
    """Why joining ``path`` means sharing the host's ``nstype`` namespace, or None.

    runc (libcontainer/configs/validate) refuses net.* sysctls when the joined network
    namespace is the runtime's own (same device and inode as /proc/self/ns/net): the
    sysctl would be written into the host's namespace. The same holds for the ipc and uts
    sysctls, and for the namespace of the host's init (/proc/1/ns/...), which is the
    host's even when the runtime itself runs in another one. A path that cannot be
    stat'ed is left to create, which fails to join it."""
    if not isinstance(path, str) or not path:
        return None
    try:
        target = os.stat(path)
    except OSError:
        return None
    name = _NS_FILES[nstype]
    for owner, ref in (("the runtime's own", "/proc/self/ns/"),
                       ("the host init's", "/proc/1/ns/")):
        try:
            st = os.stat(ref + name)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return f"{path} is {owner} {nstype} namespace ({ref}{name})"
    return None


def _abs(problems: list[tuple[str, str]], path: str, value: Any, what: str) -> None:
    if isinstance(value, str) and not value.startswith("/"):
        problems.append((path, f"{what} must be an absolute path, found {value!r}"))


_NO_MNTNS = ("there is no mount namespace (config-linux.md: it is then the runtime's own), so "
             "{what} would land in the runtime's mount namespace, outside the container, and "
             "outlive it; add {{\"type\": \"mount\"}} to linux.namespaces or drop this field")


# What leaves a chroot, or reaches the runtime's mount namespace from inside one.
_ESCAPE_CAPS = {
    "CAP_SYS_CHROOT": "chroot(2) again lets a process climb out of a chroot",
    "CAP_SYS_ADMIN": "it can mount in the runtime's (the host's) mount namespace",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at(2) opens any file of a filesystem by handle",
    "CAP_MKNOD": "it can make a device node of a host disk and read it",
    "CAP_SYS_PTRACE": "it can reach processes outside the chroot through /proc",
}


def no_mount_namespace_problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """A config without a mount namespace is supported (config-linux.md "Namespaces": a
    type not listed is inherited from the runtime): the init only chroots into the rootfs
    and makes no mount. What needs a mount is refused here, with the reason, rather than
    made in the caller's namespace as runc 1.1 does (its mounts, device nodes and
    "rslave /" stay on the host after delete): mounts, masked and read-only paths, a
    read-only root (a remount of the mount holding the rootfs), rootfsPropagation (of the
    runtime's own /), devices (mknod or bind in the caller's /dev tree) and sysctls
    (written through the container's /proc, which needs a proc mount)."""
    out: list[tuple[str, str]] = []
    linux = doc.get("linux") or {}
    if doc.get("mounts"):
        out.append(("mounts", _NO_MNTNS.format(what="these mounts")))
    for key, what in (("maskedPaths", "masking them (a mount over each)"),
                      ("readonlyPaths", "making them read-only (a bind remount of each)")):
        if linux.get(key):
            out.append((f"linux.{key}", _NO_MNTNS.format(what=what)))
    if (doc.get("root") or {}).get("readonly"):
        out.append(("root.readonly", _NO_MNTNS.format(
            what="remounting the root read-only (the runtime's mount holding the rootfs)")))
    if linux.get("rootfsPropagation"):
        out.append(("linux.rootfsPropagation", _NO_MNTNS.format(
            what="the propagation change (of the runtime's own /)")))
    if linux.get("devices"):
        out.append(("linux.devices", _NO_MNTNS.format(
            what="the device nodes (made or bind-mounted in the rootfs's /dev)")))
    caps = (doc.get("process") or {}).get("capabilities") or {}
    for name in sorted({c for kind in ("bounding", "permitted", "effective")
                        for c in caps.get(kind) or () if c in _ESCAPE_CAPS}):
        out.append(("process.capabilities", f"{name}: {_ESCAPE_CAPS[name]}; without a mount "
                    "namespace the rootfs is only a chroot, so this capability gets the "
                    "process out of it: drop it, or add a mount namespace"))
    if linux.get("sysctl"):
        out.append(("linux.sysctl", "there is no mount namespace, so the container has no "
                    "/proc of its own to write sysctls through (pyoci writes them through "
                    "the container's proc mount); add a mount namespace with a /proc mount"))
    return out


def process_doc_problems(process: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """The rules on one process document: config.json's ``process`` (``where`` is
    "process") or exec's --process file (``where`` is "": paths from its root)."""
    def at(key: str) -> str:
        return f"{where}.{key}" if where else key

    problems: list[tuple[str, str]] = []
    if not process.get("args"):
        problems.append((at("args"), "must name at least the program to run"))
    _abs(problems, at("cwd"), process.get("cwd"), "cwd")
    # An unknown capability name is not a problem here: config.md "Process" says the
    # runtime MUST log a warning and SHOULD NOT fail (create warns and skips it;
    # `pyoci validate` lists it as a warning, see config.check).
    seen_rlimits: set[str] = set()
    for i, rl in enumerate(process.get("rlimits") or []):
        kind = rl.get("type")
        if kind not in RLIMITS:
            problems.append((at(f"rlimits[{i}].type"), f"unknown rlimit {kind!r}"))
        elif kind in seen_rlimits:
            problems.append((at(f"rlimits[{i}].type"),
                             f"{kind} is set twice (config.md: types MUST be unique)"))
        seen_rlimits.add(kind)
        if isinstance(rl.get("soft"), int) and isinstance(rl.get("hard"), int) \
                and rl["soft"] > rl["hard"]:
            problems.append((at(f"rlimits[{i}]"),
                             f"soft limit {rl['soft']} exceeds hard limit {rl['hard']}"))
    problems += [(path if where else path.removeprefix("process."), why)
                 for path, why in process_problems(process)]
    return problems


def semantic_problems(doc: dict[str, Any], bundle: str | None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    linux = doc.get("linux") or {}
    namespaces = linux.get("namespaces") or []
    ns_types = [n.get("type") for n in namespaces]

    # config.md "Root": on Linux root is REQUIRED and its path must exist.
    root = doc.get("root")
    if root is None:
        problems.append(("root", "is required on Linux (config.md \"Root\")"))
    elif bundle is not None:
        path = root.get("path", "")
        full = path if os.path.isabs(path) else os.path.join(bundle, path)
        if not os.path.isdir(full):
            problems.append(("root.path", f"rootfs {full!r} does not exist or is not a directory"))

    # runtime.md: `process` may be absent at create; start then fails.
    process = doc.get("process")
    if process is not None:
        problems.extend(process_doc_problems(process, "process"))

    for kind, hooks in (doc.get("hooks") or {}).items():
        for i, hook in enumerate(hooks or []):
            _abs(problems, f"hooks.{kind}[{i}].path", hook.get("path"), "hook path")

    # config-linux.md "Namespaces": a type listed twice is an error.
    for i, t in enumerate(ns_types):
        if t in ns_types[:i]:
            problems.append((f"linux.namespaces[{i}].type",
                             f"namespace {t!r} is listed more than once"))
    for i, ns in enumerate(namespaces):
        if ns.get("path") and not os.path.isabs(ns["path"]):
            problems.append((f"linux.namespaces[{i}].path",
                             f"must be an absolute path, found {ns['path']!r}"))
    if "mount" not in ns_types:
        problems.extend(no_mount_namespace_problems(doc))

    user_ns = next((n for n in namespaces if n.get("type") == "user"), None)
    has_maps = bool(linux.get("uidMappings") or linux.get("gidMappings"))
    if has_maps and user_ns is None:
        problems.append(("linux.uidMappings", "mappings are given but there is no user namespace"
                         " (config-linux.md \"User namespace mappings\")"))
    if user_ns is not None and not user_ns.get("path"):
        for key in ("uidMappings", "gidMappings"):
            if not linux.get(key):
                problems.append((f"linux.{key}", "a new user namespace needs mappings"))

    if doc.get("hostname") is not None and "uts" not in ns_types:
        problems.append(("hostname", "setting the hostname needs a uts namespace "
                         "(config.md \"Hostname\")"))
    if doc.get("domainname") is not None and "uts" not in ns_types:
        problems.append(("domainname", "setting the domainname needs a uts namespace"))
    if linux.get("timeOffsets") and "time" not in ns_types:
        problems.append(("linux.timeOffsets", "time offsets need a time namespace"))
    for clock in linux.get("timeOffsets") or {}:
        if clock not in ("monotonic", "boottime"):
            problems.append((f"linux.timeOffsets.{clock}",
                             "only the monotonic and boottime clocks can be offset"))

    for key in linux.get("sysctl") or {}:
        needed = next((ns for prefix, ns in _SYSCTL_NAMESPACES if key.startswith(prefix)), None)
        if needed is None:
            problems.append((f"linux.sysctl.{key}",
                             "is not a namespaced sysctl: it would change the host"))
        elif needed not in ns_types:
            problems.append((f"linux.sysctl.{key}",
                             f"not allowed without a {needed} namespace of the container's "
                             f"own: it would change the host's {needed} settings"))
        else:
            entry = next(n for n in namespaces if n.get("type") == needed)
            why = host_namespace(needed, entry.get("path"))
            if why:
                problems.append((f"linux.sysctl.{key}",
                                 f"not allowed in the host's {needed} namespace: {why}; "
                                 "setting it would change the host"))

    problems.extend(personality_problems(linux.get("personality")))
    for i, dev in enumerate(linux.get("devices") or []):
        _abs(problems, f"linux.devices[{i}].path", dev.get("path"), "device path")
    for key in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(linux.get(key) or []):
            _abs(problems, f"linux.{key}[{i}]", p, "path")
    return problems

"""`pyoci inspect`: a live process's isolation, read from /proc and cgroupfs only.

The Python API (docs/inspect.md)::

    from pyoci.inspect import inspect_container, inspect_pid, render_table
    report = inspect_container("/run/pyoci", "c1", all_processes=False, compare_host=True)
    report = inspect_pid(12345)            # any process: runc's, an engine's, or none
    print(render_table(report))

Both return plain data (dicts, lists, str, int, bool, None) in the shape of
schemas/inspect.schema.json.

Read-only and safe by construction: it opens files under /proc/PID (kernel-generated, not
the container's) and under the reader's own cgroup mounts; it never calls setns, never
forks into the container, never walks /proc/PID/root (only readlink: an absolute symlink in
the container would be resolved against the reader's root). A container that races it
can at worst make its report stale: the init's start time is checked before and after, so
a pid reused meanwhile is reported as gone, not inspected.

"Host" is pid 1 of the reader's pid namespace, or the reader itself when the kernel hides
pid 1's namespaces from it (reference_pid); "runtime" is the reader itself (the namespaces
pyoci and its callers run in).
"""

from __future__ import annotations

import os
from typing import Any

from pyoci.errors import PyociError
from pyoci.inspect import cgroupfs, procfs
from pyoci.inspect.render import comparison, render_table

__all__ = ["InspectError", "comparison", "inspect_container", "inspect_pid",
           "inspect_process", "render_table"]

#: The report format's version (schemas/inspect.schema.json).
REPORT_VERSION = 1


class InspectError(PyociError):
    """A process that cannot be inspected (gone, not a container's, stopped)."""


class _Gone(Exception):
    pass


def _start_time(pid: int) -> int | None:
    from pyoci.state import proc_stat

    st = proc_stat(pid)
    return None if st is None or st[0] in ("Z", "X") else st[1]


def _read(pid: int, name: str) -> str:
    try:
        return procfs.read_text(f"/proc/{pid}/{name}")
    except (FileNotFoundError, ProcessLookupError):
        raise _Gone from None


def _optional(pid: int, name: str) -> str | None:
    """A file this kernel may lack (attr/apparmor, Seccomp_filters' era): None then; a
    vanished process is still an error."""
    try:
        return procfs.read_text(f"/proc/{pid}/{name}")
    except (FileNotFoundError, ProcessLookupError):
        if not os.path.isdir(f"/proc/{pid}"):
            raise _Gone from None
        return None
    except OSError:
        return None


def reference_pid() -> int:
    """The host reference: pid 1 of the reader's pid namespace, or, when the kernel
    refuses its namespace links to the reader (pid 1 non-dumpable or holding capabilities
    the reader lacks: ptrace access mode, proc(5) "/proc/pid/ns"), the reader itself."""
    try:
        for ns in ("mnt", "net", "pid", "user", "uts"):
            os.readlink(f"/proc/1/ns/{ns}")
    except OSError:
        return os.getpid()
    return 1


def _namespaces(pid: int, ref: int) -> list[dict[str, Any]]:
    out = []
    for ns in procfs.NS_TYPES:
        try:
            link = os.readlink(f"/proc/{pid}/ns/{ns}")
        except FileNotFoundError:
            if not os.path.isdir(f"/proc/{pid}"):
                raise _Gone from None
            continue  # this kernel has no such namespace type
        except PermissionError:
            continue
        inode = int(link[link.index("[") + 1:-1])

        def same(other: str, ns: str = ns, link: str = link) -> bool | None:
            try:
                return os.readlink(f"/proc/{other}/ns/{ns}") == link
            except OSError:
                return None

        out.append({"type": ns, "inode": inode, "sharedWithHost": same(str(ref)),
                    "sharedWithRuntime": same("self")})
    return out


def _identity(pid: int, status: dict[str, str]) -> dict[str, Any]:
    uid_map = procfs.parse_id_map(_optional(pid, "uid_map") or "")
    gid_map = procfs.parse_id_map(_optional(pid, "gid_map") or "")

    def ids(key: str, id_map: list[list[int]]) -> dict[str, Any]:
        host = [int(v) for v in status.get(key, "").split()]
        names = ("real", "effective", "saved", "filesystem")
        return {n: {"host": h, "inside": procfs.map_to_inside(h, id_map)}
                for n, h in zip(names, host, strict=False)}

    groups = [int(g) for g in status.get("Groups", "").split()]
    setgroups = (_optional(pid, "setgroups") or "").strip() or None
    return {"uid": ids("Uid", uid_map), "gid": ids("Gid", gid_map),
            "groups": [{"host": g, "inside": procfs.map_to_inside(g, gid_map)}
                       for g in groups],
            "uidMap": uid_map, "gidMap": gid_map, "setgroups": setgroups}


def _capabilities(status: dict[str, str]) -> dict[str, Any]:
    from pyoci.executors.capabilities import last_cap

    last = last_cap()
    return {"lastCap": last,
            "sets": {name: procfs.decode_caps(status.get(key, "0"), last)
                     for name, key in procfs.CAP_SETS}}


def _security(pid: int, status: dict[str, str]) -> dict[str, Any]:
    mode = int(status.get("Seccomp", "0"))
    filters = status.get("Seccomp_filters")
    try:
        with open("/sys/kernel/security/lsm") as f:
            active = [x for x in f.read().strip().split(",") if x]
    except OSError:
        active = []
    label = None
    # The label of the major LSM (AppArmor or SELinux); EINVAL when none is active.
    for attr in ("attr/apparmor/current", "attr/current"):
        text = _optional(pid, attr)
        if text is not None:
            label = text.rstrip("\x00\n") or None
            break
    return {"seccomp": {"mode": procfs.SECCOMP_MODES.get(mode, str(mode)),
                        "filters": int(filters) if filters is not None else None},
            "noNewPrivs": status.get("NoNewPrivs", "0") == "1",
            "lsm": {"active": active, "label": label}}


def _mounts(pid: int) -> dict[str, Any]:
    table = procfs.parse_mountinfo_full(_read(pid, "mountinfo"))
    reader = procfs.parse_mountinfo_full(procfs.read_text("/proc/self/mountinfo"))
    roots = [m for m in table if m["mountPoint"] == "/"]
    root_mount = roots[-1] if roots else None
    try:
        link = os.readlink(f"/proc/{pid}/root")
    except FileNotFoundError:
        raise _Gone from None
    except OSError:
        link = None
    root: dict[str, Any] = {"readlink": link, "hostPath": None}
    if root_mount is not None:
        root.update({"hostPath": procfs.host_path_of(root_mount, reader),
                     "fstype": root_mount["fstype"], "source": root_mount["source"],
                     "fsRoot": root_mount["root"], "readonly": root_mount["readonly"],
                     "propagation": root_mount["propagation"]})
    for m in table:
        m["masked"] = procfs.is_masked(m)
    masked = [m["mountPoint"] for m in table if m["masked"]]
    readonly = [m["mountPoint"] for m in table
                if m["readonly"] and not m["masked"] and m["mountPoint"] != "/"]
    return {"root": root, "maskedPaths": masked, "readonlyPaths": readonly,
            "count": len(table), "table": table}


def _uts(pid: int, hint: dict[str, str | None] | None) -> dict[str, Any]:
    """The kernel shows a UTS namespace's names only to its own members
    (/proc/sys/kernel/{hostname,domainname} answer for the *reader's* namespace, even
    through another process's /proc). Without joining it, the names are exact only when
    the process shares the reader's UTS namespace; otherwise the container's config is
    the best read-only source (a process with CAP_SYS_ADMIN there may have changed them)."""
    try:
        same = os.readlink(f"/proc/{pid}/ns/uts") == os.readlink("/proc/self/ns/uts")
    except FileNotFoundError:
        raise _Gone from None
    if same:
        return {"hostname": procfs.read_text("/proc/sys/kernel/hostname").strip(),
                "domainname": procfs.read_text("/proc/sys/kernel/domainname").strip(),
                "source": "kernel"}
    if hint is not None:
        return {"hostname": hint.get("hostname"), "domainname": hint.get("domainname"),
                "source": "config"}
    return {"hostname": None, "domainname": None, "source": "unavailable"}


def _network(pid: int) -> dict[str, Any]:
    """Interfaces and addresses of the process's network namespace: /proc/PID/net is that
    namespace's view (proc(5), since Linux 2.6.25), not the reader's."""
    dev = procfs.parse_net_dev(_read(pid, "net/dev"))
    v6 = procfs.parse_if_inet6(_optional(pid, "net/if_inet6") or "")
    routes = procfs.parse_route(_optional(pid, "net/route") or "")
    addrs, ranges = procfs.parse_fib_trie(_optional(pid, "net/fib_trie") or "")
    v4 = procfs.assign_ipv4(addrs, routes, ranges)
    interfaces = []
    for name, counters in dev.items():
        interfaces.append({
            "name": name,
            "ipv4": [f"{a}/{p}" for i, a, p in v4 if i == name],
            "ipv6": [f"{a}/{p}" for i, a, p in v6 if i == name],
            **counters})
    unassigned = [f"{a}/{p}" for i, a, p in v4 if i is None]
    return {"interfaces": interfaces, "routes": routes, "unassignedIpv4": unassigned}


def inspect_process(pid: int, uts_hint: dict[str, str | None] | None = None,
                    ref: int | None = None) -> dict[str, Any]:
    """Everything about one process; ``ref``: the host reference (reference_pid()).
    Raises InspectError when it does not exist or exits (or its pid is reused) while
    being read."""
    ref = reference_pid() if ref is None else ref
    if pid <= 0:
        raise InspectError(f"inspect: pid {pid}: not a process id (must be > 0)")
    before = _start_time(pid)
    if before is None:
        raise InspectError(f"inspect: process {pid} does not exist (or is a zombie: it has "
                           "exited and has no namespaces or mounts left to read)")
    try:
        status = procfs.parse_status(_read(pid, "status"))
        cmdline = _read(pid, "cmdline").split("\x00")
        nspid = [int(x) for x in status.get("NSpid", str(pid)).split()]
        cgroup_text = _read(pid, "cgroup")
        layout = cgroupfs.read_layout()
        oom_adj = _read(pid, "oom_score_adj").strip()
        oom_score = _read(pid, "oom_score").strip()
        report = {
            "pid": pid,
            "pidInNamespaces": nspid,
            "name": status.get("Name", ""),
            "command": cmdline[:-1] if cmdline and cmdline[-1] == "" else cmdline,
            "state": status.get("State", ""),
            "ppid": int(status.get("PPid", "0")),
            "namespaces": _namespaces(pid, ref),
            "identity": _identity(pid, status),
            "capabilities": _capabilities(status),
            "security": _security(pid, status),
            "cgroup": {"layout": layout.mode,
                       "hierarchies": cgroupfs.hierarchies(cgroup_text, layout),
                       "limits": cgroupfs.limits(cgroup_text, layout)},
            "mounts": _mounts(pid),
            "rlimits": procfs.parse_limits(_read(pid, "limits")),
            "uts": _uts(pid, uts_hint),
            "oom": {"scoreAdj": int(oom_adj), "score": int(oom_score)},
            "network": _network(pid),
        }
    except _Gone:
        report = None
    if report is None or _start_time(pid) != before:
        raise InspectError(f"inspect: process {pid} exited while it was being inspected")
    return report


def _host(pid: int) -> None:
    """Refuse pid 1 of the reader's pid namespace: it is the host's init, the reference
    every other process is compared with, not a container (docs/inspect.md)."""
    if pid == 1:  # /proc is the reader's pid namespace's: its 1 is that namespace's init
        try:
            name = procfs.read_text("/proc/1/comm").strip()
        except OSError:
            name = "?"
        raise InspectError(
            f"inspect: pid 1 is the host's init ({name}), not a container's process: it is "
            "what --compare-host compares with. Give a container's pid (`pyoci state ID` "
            "or the engine's inspect shows it), or a container id")


def _same_pidns(pid: int) -> list[int]:
    from pyoci.operations.common import processes_in_pidns

    return sorted(processes_in_pidns(pid))


def _same_cgroup(pid: int) -> list[int]:
    try:
        want = procfs.read_text(f"/proc/{pid}/cgroup")
    except OSError:
        return [pid]
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if procfs.read_text(f"/proc/{name}/cgroup") == want:
                    out.append(int(name))
            except OSError:
                continue
    return sorted(out)


def _collect(pids: list[int], main: int, uts_hint: dict[str, str | None] | None,
             container: dict[str, Any] | None, compare_host: bool) -> dict[str, Any]:
    ref = reference_pid()
    processes = [inspect_process(main, uts_hint, ref)]
    for p in pids:
        if p == main:
            continue
        try:
            processes.append(inspect_process(p, uts_hint, ref))
        except InspectError:
            continue  # another process of the container exited meanwhile: not an error
    report: dict[str, Any] = {"version": REPORT_VERSION, "container": container,
                              "hostReference": ref, "processes": processes, "host": None,
                              "comparison": None}
    if compare_host:
        host = inspect_process(ref, None, ref)
        report["host"] = host
        report["comparison"] = [row for p in processes for row in comparison(p, host)]
    return report


def inspect_pid(pid: int, *, all_processes: bool = False,
                compare_host: bool = False) -> dict[str, Any]:
    """Inspect any live process (a container's started by runc, an engine, or none).
    ``all_processes``: every process of its pid namespace when it has its own, else of its
    cgroup (the same /proc/PID/cgroup lines)."""
    _host(pid)
    pids = [pid]
    if all_processes:
        try:
            own_ns = os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/1/ns/pid")
        except OSError:
            own_ns = False
        pids = _same_pidns(pid) if own_ns else _same_cgroup(pid)
    return _collect(pids, pid, None, None, compare_host)


def inspect_container(root: str, cid: str, *, all_processes: bool = False,
                      compare_host: bool = False) -> dict[str, Any]:
    """Inspect a pyoci container by id (any status with a live init: created, running,
    paused). ``all_processes``: every process of its cgroup (as `ps`), else of its pid
    namespace."""
    from pyoci.operations.common import container_cgroup, own_pid_namespace
    from pyoci.state import Container

    c = Container(root, cid).load()
    status = c.status()
    if status in ("stopped", "creating"):
        why = ("its process has exited" if status == "stopped"
               else "it is still being created")
        raise InspectError(f'inspect: container "{cid}" is {status}: {why}, so there is no '
                           "process to read (inspect reads a live process's /proc)")
    pid = c.pid
    hint = _config_uts(c.record.bundle)
    pids = [pid]
    if all_processes:
        mgr = container_cgroup(c)
        if mgr is not None and mgr.exists():
            pids = sorted(mgr.pids())
        elif own_pid_namespace(c):
            pids = _same_pidns(pid)
    container = {"id": cid, "status": status, "bundle": c.record.bundle, "pid": pid}
    return _collect(pids, pid, hint, container, compare_host)


def _config_uts(bundle: str) -> dict[str, str | None] | None:
    """hostname/domainname from the bundle's config.json (the UTS names pyoci set)."""
    import json

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            cfg = json.loads(f.read(16 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    return {"hostname": cfg.get("hostname") if isinstance(cfg.get("hostname"), str) else None,
            "domainname": cfg.get("domainname")
            if isinstance(cfg.get("domainname"), str) else None}

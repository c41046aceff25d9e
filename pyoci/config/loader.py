"""Turn a schema-valid config document into the frozen model of :mod:`.model`.

The document has already passed the JSON Schema, so types are trusted here; this module
only renames camelCase keys and fills defaults.
"""

from __future__ import annotations

from pyoci.config.model import (
    BlockIO,
    Capabilities,
    Cpu,
    CPUAffinity,
    Device,
    DeviceRule,
    Hook,
    Hooks,
    HugepageLimit,
    IDMapping,
    InterfacePriority,
    IOPriority,
    Linux,
    Memory,
    Mount,
    Namespace,
    NetDevice,
    Network,
    Personality,
    Process,
    Rdma,
    Resources,
    Rlimit,
    Root,
    Scheduler,
    Seccomp,
    Spec,
    SyscallArg,
    SyscallRule,
    ThrottleDevice,
    TimeOffset,
    User,
    WeightDevice,
    _freeze,
)

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


def _opt_strs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def load_hook(doc: dict[str, Any]) -> Hook:
    return Hook(path=doc["path"], args=_strs(doc.get("args")), env=_strs(doc.get("env")),
                timeout=doc.get("timeout"))


def load_hooks(doc: dict[str, Any] | None) -> Hooks:
    doc = doc or {}

    def kind(name: str) -> tuple[Hook, ...]:
        return tuple(load_hook(h) for h in doc.get(name) or ())

    return Hooks(prestart=kind("prestart"), create_runtime=kind("createRuntime"),
                 create_container=kind("createContainer"),
                 start_container=kind("startContainer"), poststart=kind("poststart"),
                 poststop=kind("poststop"))


def load_process(doc: dict[str, Any]) -> Process:
    user = doc.get("user") or {}
    caps = doc.get("capabilities")
    sched, ioprio, aff = (doc.get(k) for k in ("scheduler", "ioPriority", "execCPUAffinity"))
    return Process(
        args=_strs(doc.get("args")),
        cwd=doc.get("cwd", "/"),
        env=_strs(doc.get("env")),
        terminal=bool(doc.get("terminal", False)),
        console_size=None if not doc.get("consoleSize") else (
            doc["consoleSize"]["height"], doc["consoleSize"]["width"]),
        user=User(uid=user.get("uid", 0), gid=user.get("gid", 0), umask=user.get("umask"),
                  additional_gids=tuple(user.get("additionalGids") or ())),
        rlimits=tuple(Rlimit(r["type"], r["soft"], r["hard"]) for r in doc.get("rlimits") or ()),
        no_new_privileges=bool(doc.get("noNewPrivileges", False)),
        oom_score_adj=doc.get("oomScoreAdj"),
        capabilities=None if caps is None else Capabilities(
            bounding=_opt_strs(caps.get("bounding")), effective=_opt_strs(caps.get("effective")),
            permitted=_opt_strs(caps.get("permitted")),
            inheritable=_opt_strs(caps.get("inheritable")),
            ambient=_opt_strs(caps.get("ambient"))),
        apparmor_profile=doc.get("apparmorProfile"),
        selinux_label=doc.get("selinuxLabel"),
        scheduler=None if sched is None else Scheduler(
            policy=sched["policy"], nice=sched.get("nice", 0),
            priority=sched.get("priority", 0), flags=_strs(sched.get("flags")),
            runtime=sched.get("runtime", 0), deadline=sched.get("deadline", 0),
            period=sched.get("period", 0)),
        io_priority=None if ioprio is None else IOPriority(ioprio["class"], ioprio["priority"]),
        # An empty list means "not set", as in runc (its parser skips "").
        exec_cpu_affinity=None if not aff or not (aff.get("initial") or aff.get("final"))
        else CPUAffinity(aff.get("initial") or None, aff.get("final") or None),
    )


def _mappings(docs: Any) -> tuple[IDMapping, ...]:
    return tuple(IDMapping(m["containerID"], m["hostID"], m["size"]) for m in docs or ())


def load_resources(doc: dict[str, Any] | None) -> Resources | None:
    """linux.resources, or the LinuxResources document `update --resources` reads."""
    if doc is None:
        return None
    mem, cpu, bio, net = (doc.get(k) for k in ("memory", "cpu", "blockIO", "network"))
    pids = doc.get("pids") or {}

    def throttles(key: str) -> tuple[ThrottleDevice, ...]:
        return tuple(ThrottleDevice(t["major"], t["minor"], t["rate"])
                     for t in (bio or {}).get(key) or ())

    return Resources(
        devices=tuple(DeviceRule(allow=d["allow"], type=d.get("type") or "a",
                                 major=d.get("major"), minor=d.get("minor"),
                                 access=d.get("access") or "rwm")
                      for d in doc.get("devices") or ()),
        memory=None if mem is None else Memory(
            limit=mem.get("limit"), reservation=mem.get("reservation"), swap=mem.get("swap"),
            kernel=mem.get("kernel"), kernel_tcp=mem.get("kernelTCP"),
            swappiness=mem.get("swappiness"), disable_oom_killer=mem.get("disableOOMKiller"),
            use_hierarchy=mem.get("useHierarchy"),
            check_before_update=mem.get("checkBeforeUpdate")),
        cpu=None if cpu is None else Cpu(
            shares=cpu.get("shares"), quota=cpu.get("quota"), burst=cpu.get("burst"),
            period=cpu.get("period"), realtime_runtime=cpu.get("realtimeRuntime"),
            realtime_period=cpu.get("realtimePeriod"), cpus=cpu.get("cpus") or None,
            mems=cpu.get("mems") or None, idle=cpu.get("idle")),
        pids_limit=pids.get("limit"),
        block_io=None if bio is None else BlockIO(
            weight=bio.get("weight"), leaf_weight=bio.get("leafWeight"),
            weight_device=tuple(WeightDevice(w["major"], w["minor"], w.get("weight"),
                                             w.get("leafWeight"))
                                for w in bio.get("weightDevice") or ()),
            throttle_read_bps_device=throttles("throttleReadBpsDevice"),
            throttle_write_bps_device=throttles("throttleWriteBpsDevice"),
            throttle_read_iops_device=throttles("throttleReadIOPSDevice"),
            throttle_write_iops_device=throttles("throttleWriteIOPSDevice")),
        hugepage_limits=tuple(HugepageLimit(h["pageSize"], h["limit"])
                              for h in doc.get("hugepageLimits") or ()),
        network=None if net is None else Network(
            class_id=net.get("classID"),
            priorities=tuple(InterfacePriority(p["name"], p["priority"])
                             for p in net.get("priorities") or ())),
        rdma=_freeze({name: Rdma(r.get("hcaHandles"), r.get("hcaObjects"))
                      for name, r in (doc.get("rdma") or {}).items()}),
        unified=_freeze(dict(doc.get("unified") or {})),
    )


def load_seccomp(doc: dict[str, Any] | None) -> Seccomp | None:
    if doc is None:
        return None
    return Seccomp(
        default_action=doc["defaultAction"],
        default_errno_ret=doc.get("defaultErrnoRet"),
        architectures=_strs(doc.get("architectures")),
        flags=_strs(doc.get("flags")),
        listener_path=doc.get("listenerPath") or None,
        listener_metadata=doc.get("listenerMetadata"),
        syscalls=tuple(SyscallRule(
            names=_strs(r.get("names")), action=r["action"], errno_ret=r.get("errnoRet"),
            args=tuple(SyscallArg(a["index"], a["value"], a["op"], a.get("valueTwo", 0))
                       for a in r.get("args") or ()))
            for r in doc.get("syscalls") or ()),
    )


def load_linux(doc: dict[str, Any] | None) -> Linux:
    doc = doc or {}
    return Linux(
        namespaces=tuple(Namespace(n["type"], n.get("path") or None)
                         for n in doc.get("namespaces") or ()),
        uid_mappings=_mappings(doc.get("uidMappings")),
        gid_mappings=_mappings(doc.get("gidMappings")),
        time_offsets=tuple(TimeOffset(clock, o.get("secs", 0), o.get("nanosecs", 0))
                           for clock, o in (doc.get("timeOffsets") or {}).items()),
        devices=tuple(Device(path=d["path"], type=d["type"], major=d.get("major", 0),
                             minor=d.get("minor", 0), file_mode=d.get("fileMode"),
                             uid=d.get("uid"), gid=d.get("gid"))
                      for d in doc.get("devices") or ()),
        sysctl=_freeze(dict(doc.get("sysctl") or {})),
        rootfs_propagation=doc.get("rootfsPropagation") or None,
        masked_paths=_strs(doc.get("maskedPaths")),
        readonly_paths=_strs(doc.get("readonlyPaths")),
        cgroups_path=doc.get("cgroupsPath") or None,
        mount_label=doc.get("mountLabel") or None,
        resources=load_resources(doc.get("resources")),
        seccomp=load_seccomp(doc.get("seccomp")),
        net_devices=tuple(NetDevice(host, (d or {}).get("name") or None)
                          for host, d in (doc.get("netDevices") or {}).items()),
        personality=None if doc.get("personality") is None else Personality(
            doc["personality"]["domain"], _strs(doc["personality"].get("flags"))),
        intel_rdt=_freeze(doc.get("intelRdt")),
        memory_policy=_freeze(doc.get("memoryPolicy")),
    )


def load_spec(doc: dict[str, Any]) -> Spec:
    root = doc.get("root")
    return Spec(
        oci_version=doc.get("ociVersion", ""),
        root=None if root is None else Root(root["path"], bool(root.get("readonly", False))),
        process=None if doc.get("process") is None else load_process(doc["process"]),
        mounts=tuple(Mount(destination=m["destination"], type=m.get("type") or None,
                           source=m.get("source"), options=_strs(m.get("options")))
                     for m in doc.get("mounts") or ()),
        hostname=doc.get("hostname"),
        domainname=doc.get("domainname"),
        hooks=load_hooks(doc.get("hooks")),
        annotations=_freeze(dict(doc.get("annotations") or {})),
        linux=load_linux(doc.get("linux")),
    )

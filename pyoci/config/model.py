"""Frozen records for a validated runtime-spec config.

Executors receive these, never the raw JSON: a field the executors use has a typed
attribute here. Sections pyoci refuses (``intelRdt``, ``memoryPolicy``) are kept as
read-only mappings so they can still be reported and round-tripped.

The classes are :func:`pyoci.record.frozen` records rather than attrs or dataclasses, and
this module imports neither typing nor collections.abc at run time: ``create`` imports it
on every call, and those imports alone cost more than a tenth of runc's whole ``create``
(issue 5).
"""

from __future__ import annotations

from pyoci.record import frozen

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# types.MappingProxyType without importing `types`: a class's __dict__ is a mappingproxy.
_MappingProxy = type(type.__dict__)

_EMPTY: Mapping[str, Any] = _MappingProxy({})


def _freeze(value: Any) -> Any:
    """Deep read-only copy of a JSON value (dict -> mappingproxy, list -> tuple)."""
    if isinstance(value, dict):
        return _MappingProxy({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@frozen
class Root:
    path: str
    readonly: bool = False


@frozen
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()


@frozen
class Rlimit:
    type: str
    soft: int
    hard: int


@frozen
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()


@frozen
class Capabilities:
    bounding: tuple[str, ...] | None = None
    effective: tuple[str, ...] | None = None
    permitted: tuple[str, ...] | None = None
    inheritable: tuple[str, ...] | None = None
    ambient: tuple[str, ...] | None = None


@frozen
class Scheduler:
    """process.scheduler (config.md): sched_setattr(2)'s sched_attr, by name."""
    policy: str
    nice: int = 0
    priority: int = 0
    flags: tuple[str, ...] = ()
    runtime: int = 0
    deadline: int = 0
    period: int = 0


@frozen
class IOPriority:
    """process.ioPriority (config.md): ioprio_set(2) class and level (0 highest)."""
    klass: str  # "class" in JSON
    priority: int


@frozen
class CPUAffinity:
    """process.execCPUAffinity (config.md): cpuset lists for an `exec`'d process, before
    (``initial``) and after (``final``) it joins the container's cgroup."""
    initial: str | None = None
    final: str | None = None


@frozen
class Personality:
    """linux.personality (config-linux.md): the execution domain; flags are refused."""
    domain: str
    flags: tuple[str, ...] = ()


@frozen
class Process:
    args: tuple[str, ...]
    cwd: str
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    user: User = User()
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    capabilities: Capabilities | None = None
    apparmor_profile: str | None = None
    selinux_label: str | None = None
    scheduler: Scheduler | None = None
    io_priority: IOPriority | None = None
    exec_cpu_affinity: CPUAffinity | None = None


@frozen
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@frozen
class Hooks:
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


@frozen
class Namespace:
    type: str
    path: str | None = None


@frozen
class IDMapping:
    container_id: int
    host_id: int
    size: int


@frozen
class Device:
    path: str
    type: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@frozen
class TimeOffset:
    clock: str
    secs: int = 0
    nanosecs: int = 0


# --- linux.resources (config-linux.md "Control groups"); also `update --resources` ---

@frozen
class DeviceRule:
    """One entry of linux.resources.devices; ``None`` major/minor means any (``*``)."""
    allow: bool
    type: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"


@frozen
class Memory:
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


@frozen
class Cpu:
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


@frozen
class WeightDevice:
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@frozen
class ThrottleDevice:
    major: int
    minor: int
    rate: int


@frozen
class BlockIO:
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


@frozen
class HugepageLimit:
    page_size: str
    limit: int


@frozen
class InterfacePriority:
    name: str
    priority: int


@frozen
class Network:
    class_id: int | None = None
    priorities: tuple[InterfacePriority, ...] = ()


@frozen
class Rdma:
    hca_handles: int | None = None
    hca_objects: int | None = None


@frozen
class Resources:
    """Every field is optional: ``None`` (or empty) means "leave the kernel's value"."""
    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids_limit: int | None = None
    block_io: BlockIO | None = None
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None
    rdma: Mapping[str, Rdma] = _EMPTY
    unified: Mapping[str, str] = _EMPTY


# --- linux.seccomp (config-linux.md "Seccomp") ---

@frozen
class SyscallArg:
    index: int
    value: int
    op: str
    value_two: int = 0


@frozen
class SyscallRule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()


@frozen
class Seccomp:
    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[SyscallRule, ...] = ()


@frozen
class NetDevice:
    """One ``linux.netDevices`` entry (config-linux.md "Network Devices"): the host
    interface ``host_name`` moves into the container's network namespace as ``name``
    (unset or "": keeps its host name; may end in a ``%d`` template)."""
    host_name: str
    name: str | None = None

    @property
    def target(self) -> str:
        return self.name or self.host_name


@frozen
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    time_offsets: tuple[TimeOffset, ...] = ()
    devices: tuple[Device, ...] = ()
    sysctl: Mapping[str, str] = _EMPTY
    rootfs_propagation: str | None = None
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    cgroups_path: str | None = None
    mount_label: str | None = None
    resources: Resources | None = None
    seccomp: Seccomp | None = None
    net_devices: tuple[NetDevice, ...] = ()
    personality: Personality | None = None
    intel_rdt: Mapping[str, Any] | None = None
    memory_policy: Mapping[str, Any] | None = None

    def namespace(self, nstype: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == nstype:
                return ns
        return None


@frozen
class Spec:
    oci_version: str
    root: Root | None = None
    process: Process | None = None
    mounts: tuple[Mount, ...] = ()
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks = Hooks()
    annotations: Mapping[str, str] = _EMPTY
    linux: Linux = Linux()

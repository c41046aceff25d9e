"""What pyoci does with every property of schemas/config.schema.json (issue 13).

runtime.md, Lifecycle step 2: the runtime MUST generate an error if it cannot create the
configured environment. A field that the schema accepts and nothing applies breaks that
silently (process.scheduler, ioPriority, execCPUAffinity and linux.personality once did).
This table is the one list of answers: every leaf property of the schema, reached through
``$ref``, ``if``/``then``/``else`` and ``anyOf`` (arrays as ``[]``, maps as ``*``), is

* ``applied``: done, with the test that observes the effect;
* ``refused``: create fails with an error naming the field (the text, and the test that
  sees it);
* ``ignored``: not applied, with a warning on the log (the text, and why ignoring is the
  right answer: runc's and the kernel's reasons);
* ``informational``: nothing to apply by nature (with the reason).

tests/unit/test_every_field.py walks the schema and fails on a property missing here, an
entry the schema does not have, a test id that does not exist or a message that is not in
the evidence test; and it checks that docs/status.md holds :func:`render_markdown`'s table. Not
imported at run time.
"""

from __future__ import annotations

APPLIED = "applied"
REFUSED = "refused"
IGNORED = "ignored"
INFORMATIONAL = "informational"

# Evidence: "path/to/test_file.py::test_name".
_CONF = "conformance/"
_IT = "tests/integration/"
_UNIT = "tests/unit/"
_PA = _IT + "test_process_attributes.py::"

#: path -> (status, evidence test id or "", message fragment (refused, ignored: the
#: evidence test asserts it) or reason (informational))
FIELDS: dict[str, tuple[str, str, str]] = {}


def _add(status: str, evidence: str, text: str, *paths: str) -> None:
    for path in paths:
        assert path not in FIELDS, path
        FIELDS[path] = (status, evidence, text)


def _hooks() -> None:
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer",
                 "poststart", "poststop"):
        _add(APPLIED, _IT + "test_hooks.py::test_all_hooks_in_order_with_state", "",
             f"hooks.{kind}[].path")
        _add(APPLIED, _CONF + "test_hooks.py::test_hook_args_and_env", "",
             f"hooks.{kind}[].args", f"hooks.{kind}[].env")
        _add(APPLIED, _CONF + "test_hooks.py::test_hook_timeout", "", f"hooks.{kind}[].timeout")


_OTHER_OS = ("a section for another platform (config.md \"Platform-specific configuration\"); "
             "a Linux runtime has nothing to apply, runc ignores it too")
_LSM = "is not enabled"  # lsm.check: "AppArmor is not enabled" / "SELinux is not enabled"

_add(INFORMATIONAL, "", "the version the bundle follows; checked as SemVer by the schema",
     "ociVersion")
_add(APPLIED, _CONF + "test_config.py::test_annotations_in_state", "", "annotations")
_add(INFORMATIONAL, "", _OTHER_OS, "solaris", "windows", "vm", "zos", "freebsd")
_add(INFORMATIONAL, "", "Windows only ($defs/WindowsProcess, used when `windows` is set)",
     "process.commandLine", "process.user.username")
_add(APPLIED, _CONF + "test_config.py::test_root_path_relative_to_bundle", "", "root.path")
_add(APPLIED, _CONF + "test_config.py::test_root_readonly", "", "root.readonly")
_add(APPLIED, _CONF + "test_config.py::test_mounts_in_listed_order", "",
     "mounts[].destination", "mounts[].source", "mounts[].type")
_add(APPLIED, _CONF + "test_config.py::test_mount_flag_options", "", "mounts[].options")
_add(REFUSED, _PA + "test_id_mapped_mounts_are_refused",
     "id-mapped mounts (uidMappings/gidMappings) are not supported",
     *(f"mounts[].{m}[].{k}" for m in ("uidMappings", "gidMappings")
       for k in ("containerID", "hostID", "size")))
_add(APPLIED, _CONF + "test_config.py::test_hostname", "", "hostname")
_add(APPLIED, _CONF + "test_config.py::test_domainname", "", "domainname")
_hooks()

# --- process ---
_add(APPLIED, _CONF + "test_config.py::test_process_args_use_path_lookup", "", "process.args")
_add(APPLIED, _CONF + "test_config.py::test_process_env", "", "process.env")
_add(APPLIED, _CONF + "test_config.py::test_process_cwd", "", "process.cwd")
_add(APPLIED, _IT + "test_config.py::test_process_user", "",
     "process.user.uid", "process.user.gid", "process.user.additionalGids")
_add(APPLIED, _CONF + "test_config.py::test_process_umask", "", "process.user.umask")
_add(APPLIED, _CONF + "test_config.py::test_process_rlimits", "",
     "process.rlimits[].type", "process.rlimits[].soft", "process.rlimits[].hard")
_add(APPLIED, _CONF + "test_config.py::test_process_capabilities", "",
     *(f"process.capabilities.{s}" for s in ("bounding", "effective", "permitted",
                                             "inheritable", "ambient")))
_add(APPLIED, _CONF + "test_config.py::test_process_no_new_privileges", "",
     "process.noNewPrivileges")
_add(APPLIED, _CONF + "test_config.py::test_process_oom_score_adj", "", "process.oomScoreAdj")
_add(APPLIED, _IT + "test_exec_terminal.py::test_create_sends_the_pty_to_the_console_socket",
     "", "process.terminal", "process.consoleSize.height", "process.consoleSize.width")
_add(REFUSED, _IT + "test_security.py::test_lsm_or_rdt_the_host_lacks_is_an_error", _LSM,
     "process.apparmorProfile", "process.selinuxLabel", "linux.mountLabel")
_add(APPLIED, _PA + "test_scheduler_policy_and_nice", "",
     "process.scheduler.policy", "process.scheduler.nice")
_add(APPLIED, _PA + "test_scheduler_flags_reach_the_kernel", "", "process.scheduler.flags")
_add(APPLIED, _PA + "test_scheduler_real_time_priority", "", "process.scheduler.priority")
_add(APPLIED, _PA + "test_scheduler_deadline", "", "process.scheduler.runtime",
     "process.scheduler.deadline", "process.scheduler.period")
_add(APPLIED, _PA + "test_io_priority", "", "process.ioPriority.class",
     "process.ioPriority.priority")
_add(APPLIED, _PA + "test_exec_cpu_affinity", "", "process.execCPUAffinity.initial",
     "process.execCPUAffinity.final")

# --- linux ---
_add(APPLIED, _CONF + "test_config_linux.py::test_new_namespace", "",
     "linux.namespaces[].type")
_add(APPLIED, _CONF + "test_config_linux.py::test_join_namespace_by_path", "",
     "linux.namespaces[].path")
_add(APPLIED, _CONF + "test_config_linux.py::test_user_namespace_mappings", "",
     *(f"linux.{m}[].{k}" for m in ("uidMappings", "gidMappings")
       for k in ("containerID", "hostID", "size")))
_add(APPLIED, _CONF + "test_config_linux.py::test_time_namespace_offsets", "",
     "linux.timeOffsets.*.secs", "linux.timeOffsets.*.nanosecs")
_add(APPLIED, _CONF + "test_config_linux.py::test_devices_created", "",
     *(f"linux.devices[].{k}" for k in ("path", "type", "major", "minor", "fileMode", "uid",
                                        "gid")))
_add(APPLIED, _CONF + "test_config_linux.py::test_sysctl", "", "linux.sysctl")
_add(APPLIED, _CONF + "test_config_linux.py::test_rootfs_propagation_shared", "",
     "linux.rootfsPropagation")
_add(APPLIED, _CONF + "test_config_linux.py::test_masked_paths", "", "linux.maskedPaths")
_add(APPLIED, _CONF + "test_config_linux.py::test_readonly_paths", "", "linux.readonlyPaths")
_add(APPLIED, _CONF + "test_cgroups.py::test_cgroups_path_relative", "", "linux.cgroupsPath")
_add(APPLIED, _CONF + "test_network.py::test_device_renamed", "", "linux.netDevices.*.name")
_add(APPLIED, _PA + "test_personality_run", "", "linux.personality.domain")
_add(REFUSED, _PA + "test_personality_flags_are_refused",
     "no personality flags are defined by the runtime-spec", "linux.personality.flags")
_add(REFUSED, _IT + "test_security.py::test_lsm_or_rdt_the_host_lacks_is_an_error",
     "linux.intelRdt", *(f"linux.intelRdt.{k}" for k in (
         "closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring")))
_add(REFUSED, _IT + "test_errors.py::test_semantic_errors",
     "linux.memoryPolicy: NUMA memory policies are not applied",
     "linux.memoryPolicy.mode", "linux.memoryPolicy.nodes", "linux.memoryPolicy.flags")

# seccomp
_SEC = _CONF + "test_security.py::"
_add(APPLIED, _SEC + "test_seccomp_default_action_and_default_errno", "",
     "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet")
_add(APPLIED, _IT + "test_features.py::test_every_listed_action_and_arch_loads_on_this_kernel",
     "", "linux.seccomp.architectures")
_add(APPLIED, _IT + "test_seccomp_filter.py::test_supported_flags_load", "",
     "linux.seccomp.flags")
_add(APPLIED, _SEC + "test_seccomp_notify_listener", "", "linux.seccomp.listenerPath",
     "linux.seccomp.listenerMetadata")
_add(APPLIED, _SEC + "test_seccomp_errno_rule", "", "linux.seccomp.syscalls[].names",
     "linux.seccomp.syscalls[].action", "linux.seccomp.syscalls[].errnoRet")
_add(APPLIED, _SEC + "test_seccomp_args_rule", "", "linux.seccomp.syscalls[].args[].index",
     "linux.seccomp.syscalls[].args[].value", "linux.seccomp.syscalls[].args[].op")
_add(APPLIED, _IT + "test_seccomp_filter.py::test_argument_conditions", "",
     "linux.seccomp.syscalls[].args[].valueTwo")

# resources
_R = "linux.resources."
_CR = _IT + "test_cgroup_resources.py::"
_UCR = _UNIT + "test_cgroup_resources.py::"
_add(APPLIED, _CR + "test_devices_v1_are_enforced", "",
     *(f"{_R}devices[].{k}" for k in ("allow", "type", "major", "minor", "access")))
_add(APPLIED, _CR + "test_memory_v1_values_and_swap_order", "",
     *(f"{_R}memory.{k}" for k in ("limit", "reservation", "swap", "swappiness",
                                   "disableOOMKiller")))
_add(APPLIED, _UCR + "test_v1_check_before_update", "", _R + "memory.checkBeforeUpdate")
_add(IGNORED, _UCR + "test_v1_kernel_memory_is_ignored_with_a_warning",
     "kernel memory limits are deprecated and ignored", _R + "memory.kernel")
_add(APPLIED, _PA + "test_kernel_tcp_is_applied_on_v1", "", _R + "memory.kernelTCP")
_add(APPLIED, _PA + "test_use_hierarchy_on_v1", "", _R + "memory.useHierarchy")
_add(APPLIED, _CR + "test_cpu_v1_values", "",
     *(f"{_R}cpu.{k}" for k in ("shares", "quota", "burst", "period", "realtimeRuntime",
                                "realtimePeriod", "idle")))
_add(APPLIED, _CR + "test_cpuset_and_pids_v1", "", _R + "cpu.cpus", _R + "cpu.mems")
_add(APPLIED, _IT + "test_cgroups.py::test_pids_limit_stops_a_fork_loop", "", _R + "pids.limit")
_add(APPLIED, _CR + "test_blkio_v1", "", _R + "blockIO.weight",
     *(f"{_R}blockIO.weightDevice[].{k}" for k in ("major", "minor", "weight")))
_add(APPLIED, _UCR + "test_v1_blkio_missing_leaf_weight_file", "", _R + "blockIO.leafWeight",
     _R + "blockIO.weightDevice[].leafWeight")
_add(APPLIED, _CR + "test_blkio_v1_throttles", "",
     *(f"{_R}blockIO.{t}[].{k}" for t in ("throttleReadBpsDevice", "throttleWriteBpsDevice",
                                          "throttleReadIOPSDevice", "throttleWriteIOPSDevice")
       for k in ("major", "minor", "rate")))
_add(APPLIED, _CR + "test_hugetlb_on_the_unified_hierarchy", "",
     _R + "hugepageLimits[].pageSize", _R + "hugepageLimits[].limit")
_add(APPLIED, _UCR + "test_network_and_rdma", "", _R + "network.classID",
     _R + "network.priorities[].name", _R + "network.priorities[].priority",
     _R + "rdma.*.hcaHandles", _R + "rdma.*.hcaObjects")
_add(APPLIED, _UCR + "test_v2_unified", "", _R + "unified")


def render_markdown() -> str:
    """The docs/status.md table: one row per status and evidence, paths grouped."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for path, entry in FIELDS.items():
        groups.setdefault(entry, []).append(path)
    order = {APPLIED: 0, REFUSED: 1, IGNORED: 2, INFORMATIONAL: 3}
    lines = ["| fields | status | evidence |", "| --- | --- | --- |"]
    for (status, evidence, text), paths in sorted(
            groups.items(), key=lambda g: (order[g[0][0]], sorted(g[1])[0])):
        shown = ", ".join(f"`{p}`" for p in sorted(paths))
        proof = f"`{evidence}`" if evidence else ""
        if text:
            proof = f"{proof} ({text!r})" if proof else text
        lines.append(f"| {shown} | {status} | {proof} |")
    return "\n".join(lines) + "\n"

"""Linux security modules: process.apparmorProfile, process.selinuxLabel, linux.mountLabel.

config.md asks the runtime to apply these; a host without the module cannot, and running
the container unconfined instead would silently weaken what the config asked for. So
:func:`check` refuses the config at create (exit 1, nothing made) when the LSM it names is
not active, and the init applies the labels right before execve when it is:

- AppArmor: ``exec <profile>`` written to /proc/self/attr/apparmor/exec (the per-LSM file
  of kernels >= 5.8; /proc/self/attr/exec before that) changes the profile at execve.
- SELinux: the process label goes to /proc/self/attr/exec the same way; mountLabel is
  passed as the ``context=`` option of the filesystems the runtime mounts (see
  :func:`pyoci.executors.mounts.mount_entry`).
"""

from __future__ import annotations

import os

from pyoci import syscalls as sc
from pyoci.config.model import Process, Spec
from pyoci.errors import PyociError
from pyoci.executors.procfs import open_proc_file

_APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
_SELINUX_FS = "/sys/fs/selinux"


def apparmor_enabled() -> bool:
    try:
        with open(_APPARMOR_ENABLED) as f:
            return f.read().strip() == "Y" and os.path.isdir("/sys/kernel/security/apparmor")
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists(os.path.join(_SELINUX_FS, "enforce"))


def check(spec: Spec) -> None:
    """Refuse labels for an LSM this host does not run (see the module docstring)."""
    proc = spec.process
    if proc is not None and proc.apparmor_profile and not apparmor_enabled():
        raise PyociError(f"process.apparmorProfile: AppArmor is not enabled on this host, so "
                         f"profile {proc.apparmor_profile!r} cannot be applied; remove the "
                         "field or enable AppArmor")
    for where, label in (("process.selinuxLabel", proc.selinux_label if proc else None),
                         ("linux.mountLabel", spec.linux.mount_label)):
        if label and not selinux_enabled():
            raise PyociError(f"{where}: SELinux is not enabled on this host ({_SELINUX_FS} "
                             f"is not mounted), so label {label!r} cannot be applied; "
                             "remove the field or enable SELinux")


def _write_exec_attr(lsm: str, value: str) -> None:
    """Labels written to attr/exec take effect at the next execve, not now: the init can
    still finish its own setup under the runtime's label. After `exec` joins the container
    /proc is the container's: the file is reached through a verified procfs handle
    (executors/procfs.py; runc 1.2.8, CVE-2025-52881). The process is single-threaded, so
    /proc/PID/attr is its thread's (no thread-self link to follow)."""
    pid = os.getpid()
    try:
        fd = open_proc_file(f"{pid}/attr/{lsm}/exec", os.O_WRONLY)
    except FileNotFoundError:  # kernels before 5.8 have only the shared attr/exec
        fd = open_proc_file(f"{pid}/attr/exec", os.O_WRONLY)
    try:
        sc.write(fd, value.encode())
    finally:
        os.close(fd)


def apply_exec_labels(proc: Process) -> None:
    if proc.apparmor_profile:
        _write_exec_attr("apparmor", f"exec {proc.apparmor_profile}")
    if proc.selinux_label:
        _write_exec_attr("selinux", proc.selinux_label)


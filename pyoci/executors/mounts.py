"""Mount executor (config.md "Mounts", config-linux.md "Rootfs Mount Propagation",
"Masked Paths", "Readonly Paths", and runtime.md's pivot into the rootfs).

Runs in the container's init, in its own mount namespace: `init` checks that the
namespace is not the runtime's before the first call into this module.
"""

from __future__ import annotations

import os
import stat

from pyoci import syscalls as sc
from pyoci.config.model import Mount
from pyoci.executors.paths import ensure_dir, ensure_file

# option -> (flags to set, flags to clear); mount(8)'s names, as runc accepts them.
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0), "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0), "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0), "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0), "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0),
    "remount": (sc.MS_REMOUNT, 0),
    "mand": (sc.MS_MANDLOCK, 0), "nomand": (0, sc.MS_MANDLOCK),
    "noatime": (sc.MS_NOATIME, 0), "atime": (0, sc.MS_NOATIME),
    "nodiratime": (sc.MS_NODIRATIME, 0), "diratime": (0, sc.MS_NODIRATIME),
    "relatime": (sc.MS_RELATIME, 0), "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0), "nostrictatime": (0, sc.MS_STRICTATIME),
    "lazytime": (sc.MS_LAZYTIME, 0), "nolazytime": (0, sc.MS_LAZYTIME),
    "iversion": (sc.MS_I_VERSION, 0), "noiversion": (0, sc.MS_I_VERSION),
    "silent": (sc.MS_SILENT, 0), "loud": (0, sc.MS_SILENT),
    "nosymfollow": (sc.MS_NOSYMFOLLOW, 0),
    "bind": (sc.MS_BIND, 0), "rbind": (sc.MS_BIND | sc.MS_REC, 0),
}
_PROPAGATION_OPTIONS = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
#: Options the kernel cannot take through mount(2) alone; refused rather than ignored.
UNSUPPORTED_OPTIONS = ("idmap", "ridmap", "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev",
                       "rnoexec", "rexec", "rnodiratime", "rdiratime", "rrelatime",
                       "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime",
                       "rnosymfollow", "rsymfollow")

# statvfs f_flag bits -> mount flags: a bind remount must keep them (locked in a userns).
_ST_TO_MS = ((os.ST_RDONLY, sc.MS_RDONLY), (os.ST_NOSUID, sc.MS_NOSUID),
             (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC),
             (os.ST_NOATIME, sc.MS_NOATIME), (os.ST_NODIRATIME, sc.MS_NODIRATIME),
             (os.ST_RELATIME, sc.MS_RELATIME))


class ParsedOptions:
    __slots__ = ("flags", "propagation", "data", "tmpcopyup")

    def __init__(self, options: tuple[str, ...]) -> None:
        self.flags = 0
        self.tmpcopyup = False
        self.propagation: list[int] = []
        data = []
        for opt in options:
            if opt in _FLAG_OPTIONS:
                set_, clear = _FLAG_OPTIONS[opt]
                self.flags = (self.flags | set_) & ~clear
            elif opt in _PROPAGATION_OPTIONS:
                self.propagation.append(_PROPAGATION_OPTIONS[opt])
            elif opt == "tmpcopyup":
                self.tmpcopyup = True
            elif opt in UNSUPPORTED_OPTIONS:
                raise ValueError(f"mount option {opt!r} is not supported by pyoci yet")
            else:
                data.append(opt)
        self.data = ",".join(data) or None


def existing_flags(path: str) -> int:
    """Mount flags currently on ``path`` that a remount must repeat."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS if f_flag & st)


def is_bind(m: Mount) -> bool:
    return m.type == "bind" or any(o in ("bind", "rbind") for o in m.options)


def prepare_root(rootfs: str, propagation: str | None) -> None:
    """Set '/' to the configured propagation (rslave by default, so nothing the container
    mounts reaches the host) and make the rootfs a mount point, as pivot_root needs.

    'unbindable' is applied after pivot_root instead (see :func:`finish_root`): an
    unbindable '/' would refuse the bind of the rootfs onto itself."""
    before = {"unbindable": "private", "runbindable": "rprivate"}.get(
        propagation or "", propagation or "rslave")
    sc.mount(None, "/", None, _PROPAGATION_OPTIONS[before])
    # pivot_root(2) refuses a new root whose parent mount is shared, and a bind under a
    # shared parent would propagate back out; a slave parent is left alone so the rootfs
    # stays a slave of the host ('slave' propagation).
    # The mount holding the rootfs (the rootfs itself when it is a mount point, as with
    # an engine's overlay) is what the self-bind below joins: if it is shared, the bind
    # and every mount made under it would propagate into the runtime's namespace.
    holder, tags = _mount_point_of(rootfs)
    if any(t.startswith("shared:") for t in tags):
        sc.mount(None, holder, None, sc.MS_PRIVATE)
    sc.mount(rootfs, rootfs, "bind", sc.MS_BIND | sc.MS_REC)


def finish_root(propagation: str | None) -> None:
    """After pivot_root: apply the configured propagation to the new '/' itself
    (config-linux.md "Rootfs Mount Propagation"; 'shared' gets a new peer group)."""
    if propagation:
        sc.mount(None, "/", None, _PROPAGATION_OPTIONS[propagation])


def _mount_point_of(path: str) -> tuple[str, list[str]]:
    """The mount point holding ``path`` and its optional fields ("shared:N", ...)."""
    path = os.path.realpath(path)
    best, best_tags = "/", []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" - ")[0].split()
            mp = fields[4].replace("\\040", " ")
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, best_tags = mp, fields[6:]
    return best, best_tags


def _source_path(m: Mount, bundle: str) -> str:
    src = m.source or ""
    return src if os.path.isabs(src) else os.path.join(bundle, src)


def mount_entry(rootfs: str, bundle: str, m: Mount, mount_label: str | None = None,
                cgroup_ns: bool = False) -> None:
    """Mount one entry of config.json's `mounts` at its place inside the rootfs.

    ``mount_label`` (linux.mountLabel) becomes the SELinux ``context=`` of filesystems made
    here; bind mounts, proc, sysfs and cgroup keep the kernel's own labels, as with runc."""
    opts = ParsedOptions(m.options)
    if mount_label and m.type not in ("proc", "sysfs", "cgroup", "cgroup2") and not is_bind(m):
        opts.data = f'{opts.data},context="{mount_label}"' if opts.data \
            else f'context="{mount_label}"'

    if m.type == "cgroup":
        _mount_cgroup(rootfs, m.destination, opts, cgroup_ns)
        return
    if is_bind(m):
        src = _source_path(m, bundle)
        st = os.stat(src)
        dest = (ensure_dir(rootfs, m.destination) if stat.S_ISDIR(st.st_mode)
                else ensure_file(rootfs, m.destination))
        bind_flags = sc.MS_BIND | (opts.flags & sc.MS_REC)
        sc.mount(src, dest, "bind", bind_flags)
        extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        if extra:
            # The bind ignores the other flags; a remount applies them (and must keep the
            # ones already locked on the source mount).
            sc.mount(src, dest, "bind", sc.MS_BIND | sc.MS_REMOUNT | extra
                     | (existing_flags(dest) & ~sc.MS_RDONLY) | (opts.flags & sc.MS_REC))
    else:
        dest = ensure_dir(rootfs, m.destination)
        if opts.tmpcopyup and m.type == "tmpfs":
            _mount_tmpfs_copyup(dest, m.source or "tmpfs", opts)
        else:
            sc.mount(m.source or m.type or "none", dest, m.type, opts.flags, opts.data)
    for prop in opts.propagation:
        sc.mount(None, dest, None, prop)


def _mount_tmpfs_copyup(dest: str, source: str, opts: ParsedOptions) -> None:
    """runc's `tmpcopyup` extension: the tmpfs starts with a copy of what the image had
    at that path. An fd opened before the mount still reaches the covered directory."""
    import shutil

    covered = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sc.mount(source, dest, "tmpfs", opts.flags & ~sc.MS_RDONLY, opts.data)
        src = f"/proc/self/fd/{covered}"

        def copy(s: str, d: str) -> None:
            shutil.copy2(s, d, follow_symlinks=False)
            st = os.lstat(s)
            os.lchown(d, st.st_uid, st.st_gid)

        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True, copy_function=copy)
        if opts.flags & sc.MS_RDONLY:
            sc.mount(source, dest, "tmpfs", sc.MS_REMOUNT | opts.flags, opts.data)
    finally:
        os.close(covered)


def _host_cgroup_mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of the host's cgroup hierarchies."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _src, superopts = post.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((pre.split()[4], fstype, superopts))
    return out


def _own_cgroups() -> dict[str, str]:
    """/proc/self/cgroup as {controller list ("memory", "name=systemd", "" for v2): path}."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            out[controllers] = path
    return out


def _mount_hierarchy(sub: str, fstype: str, data: str | None, flags: int,
                     host_dir: str, fresh: bool) -> None:
    """In a cgroup namespace a fresh cgroup mount is rooted at the container's cgroup. Without
    one it would show the host's whole tree, so the container gets a bind of its own cgroup
    directory instead, as runc does; the same when the kernel refuses the fresh mount (a
    user namespace without a cgroup namespace)."""
    if fresh:
        try:
            sc.mount(fstype, sub, fstype, flags, data)
            return
        except PermissionError:
            pass
    sc.mount(host_dir, sub, "bind", sc.MS_BIND | sc.MS_REC)
    if flags:
        sc.mount(host_dir, sub, "bind", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_REC | flags
                 | existing_flags(sub))


def _mount_cgroup(rootfs: str, destination: str, opts: ParsedOptions,
                  cgroup_ns: bool) -> None:
    """A `cgroup` mount: cgroup2 where the host is unified; on a v1 or hybrid host, a
    tmpfs holding one mount per host hierarchy (controllers named as on the host). Each
    shows only the container's own cgroup (see :func:`_mount_hierarchy`)."""
    dest = ensure_dir(rootfs, destination)
    hierarchies = _host_cgroup_mounts()
    own = _own_cgroups()
    if any(mp == "/sys/fs/cgroup" and t == "cgroup2" for mp, t, _ in hierarchies):
        _mount_hierarchy(dest, "cgroup2", None, opts.flags,
                         "/sys/fs/cgroup" + own.get("", "/"), cgroup_ns)
        return
    sc.mount("tmpfs", dest, "tmpfs", opts.flags & ~sc.MS_RDONLY, "mode=755")
    for mp, fstype, superopts in hierarchies:
        if not mp.startswith("/sys/fs/cgroup/"):
            continue
        sub = os.path.join(dest, os.path.basename(mp))
        os.makedirs(sub, exist_ok=True)
        if fstype == "cgroup2":
            _mount_hierarchy(sub, "cgroup2", None, opts.flags, mp + own.get("", "/"),
                             cgroup_ns)
            continue
        controllers = [o for o in superopts.split(",")
                       if o not in ("rw", "ro") and not o.startswith("release_")
                       and o not in ("noprefix", "clone_children", "xattr", "cpuset_v2_mode")
                       ] or superopts.split(",")
        key = next((k for k in own if set(k.split(",")) == set(controllers)), None)
        _mount_hierarchy(sub, "cgroup", ",".join(controllers), opts.flags,
                         mp + (own.get(key, "/") if key is not None else "/"), cgroup_ns)
    if opts.flags & sc.MS_RDONLY:
        sc.mount("tmpfs", dest, "tmpfs", sc.MS_REMOUNT | opts.flags, "mode=755")


def pivot_into(rootfs: str) -> None:
    """pivot_root(2) with new and old root the same directory, then detach the old root,
    after making it a slave so the detach cannot propagate to the host."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sc.pivot_root(".", ".")
        os.fchdir(old)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


def move_into(rootfs: str) -> None:
    """--no-pivot: move the rootfs onto '/' and chroot (for ramfs roots, where pivot_root
    is impossible; weaker, since the old root stays reachable to a privileged process)."""
    os.chdir(rootfs)
    sc.mount(rootfs, "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def mask_path(path: str) -> None:
    """config-linux.md "Masked Paths": make the path unreadable inside the container."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
    else:
        sc.mount("/dev/null", path, None, sc.MS_BIND)


def readonly_path(path: str) -> None:
    """config-linux.md "Readonly Paths": bind the path onto itself and remount it ro."""
    if not os.path.lexists(path):
        return
    sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
    sc.mount(path, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC
             | existing_flags(path))


def readonly_root() -> None:
    sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | existing_flags("/"))


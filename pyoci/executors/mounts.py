"""Mount executor (config.md "Mounts", config-linux.md "Rootfs Mount Propagation",
"Masked Paths", "Readonly Paths", and runtime.md's pivot into the rootfs).

Runs in the container's init, in its own mount namespace: `init` checks that the
namespace is not the runtime's before the first call into this module.

Every target is resolved inside the root to an O_PATH fd (:mod:`pyoci.executors.paths`)
and mounted onto ``/proc/self/fd/N``, never onto a path string the kernel would resolve
again (CVE-2021-30465). A later operation on the same mount (the remount that applies a
bind's flags, propagation, tmpcopyup) resolves the destination again and refuses, as runc
does ("possibly malicious path detected"), when it no longer leads to the same place.

Nothing here imports lazily: this module runs after the init's first mount, when the
directories on ``sys.path`` may be covered or swapped (docs/architecture.md).
"""

from __future__ import annotations

import errno
import os
import stat

from pyoci import rootless
from pyoci import syscalls as sc
from pyoci.cgroups.detect import MountEntry, parse_mountinfo
from pyoci.config.model import Mount
from pyoci.errors import PyociError
from pyoci.executors.paths import Root, UnsafePath, fd_path, resolve

TYPE_CHECKING = False  # annotations only: the init imports nothing it does not run
if TYPE_CHECKING:
    from collections.abc import Callable

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


class MountError(PyociError):
    """A mount refused for what the rootfs holds (its message is the whole reason)."""


def existing_flags(path: str | int) -> int:
    """Mount flags currently on ``path`` (or O_PATH fd) that a remount must repeat."""
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
    for entry in _mountinfo():
        mp = entry.mount_point
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, best_tags = mp, list(entry.optional)
    return best, best_tags


def _mountinfo() -> list[MountEntry]:
    """This process's /proc/self/mountinfo, through the one parser pyoci has
    (:func:`pyoci.cgroups.detect.parse_mountinfo`; imported at module level, see the top)."""
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def _source_path(m: Mount, bundle: str) -> str:
    src = m.source or ""
    return src if os.path.isabs(src) else os.path.join(bundle, src)


def _mount(source: str | None, target: int, fstype: str | None, flags: int,
           data: str | None = None, what: str = "") -> None:
    """mount(2) onto the file ``target`` (an fd) itself, through its /proc/self/fd link."""
    try:
        sc.mount(source, fd_path(target), fstype, flags, data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, what or exc.filename) from None


def _reopen(root: Root, destination: str, where: str) -> int:
    """An fd of what ``destination`` leads to now (the mount just made there), which must
    be the place the first resolution found: runc's check against a path swapped between
    two operations (CVE-2021-30465, "possibly malicious path detected")."""
    fd = resolve(root, destination)
    try:
        now = root.host_path(fd)
    except BaseException:
        os.close(fd)
        raise
    if now != where:
        os.close(fd)
        raise UnsafePath(f"possibly malicious path detected: {destination} led to {where} "
                         f"and now leads to {now}; refusing to operate on it")
    return fd


#: Filesystems runc mounts only on an ordinary directory, and the destinations that must
#: be one whatever is mounted there: a symlink /proc would put procfs elsewhere and leave
#: the masked and read-only paths under /proc unapplied (issue 11 item 6).
_ORDINARY_TYPES = ("proc", "sysfs")
_ORDINARY_DESTINATIONS = ("/proc", "/sys")


def _needs_ordinary_dir(m: Mount) -> bool:
    return m.type in _ORDINARY_TYPES or \
        os.path.normpath("/" + m.destination) in _ORDINARY_DESTINATIONS


def _open_target(root: Root, m: Mount, create: str) -> int:
    """The destination's fd, created inside the rootfs if missing. For procfs/sysfs (and
    /proc, /sys) no symlink may be on the way and the end must be a directory, as runc
    requires: 'filesystem "proc" must be mounted on ordinary directory'."""
    if not _needs_ordinary_dir(m):
        return resolve(root, m.destination, create=create)
    fstype = m.type or "bind"
    try:
        fd = resolve(root, m.destination, create="dir", symlinks=False)
    except UnsafePath as exc:
        raise MountError(f'filesystem "{fstype}" must be mounted on ordinary directory: '
                         f"{exc}") from None
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise MountError(f'filesystem "{fstype}" must be mounted on ordinary directory: '
                         f"{m.destination} is not a directory")
    return fd


# runc's validProcMounts: files lxcfs and similar tools bind over procfs's own.
_PROC_MOUNT_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid"))


def _check_proc_mount(root: Root, fd: int, m: Mount) -> None:
    """runc's checkProcMount (CVE-2019-19921, CVE-2023-27561, CVE-2025-52881): by where
    the destination *resolves* (an image's `/data -> /proc/sys/net/ipv4` reaches there
    too), nothing but procfs may be mounted at /proc and nothing at all inside it but
    runc's list of files -- a mount there would redirect what the runtime writes into
    /proc afterwards (sysctls, LSM labels) to a host file or another procfs file."""
    where = root.container_path(fd)
    if where == "/proc":
        if m.type != "proc":
            raise MountError(f"{m.destination} resolves to /proc: cannot be mounted there "
                             f"because it is not of type proc")
    elif where.startswith("/proc/") and where not in _PROC_MOUNT_ALLOWED:
        raise MountError(f"{m.destination} resolves to {where}: cannot be mounted because it "
                         "is inside /proc")


def mount_entry(rootfs: str, bundle: str, m: Mount, mount_label: str | None = None,
                cgroup_ns: bool = False) -> None:
    """Mount one entry of config.json's `mounts` at its place inside the rootfs.

    ``mount_label`` (linux.mountLabel) becomes the SELinux ``context=`` of filesystems made
    here; bind mounts, proc, sysfs and cgroup keep the kernel's own labels, as with runc."""
    opts = ParsedOptions(m.options)
    if mount_label and m.type not in ("proc", "sysfs", "cgroup", "cgroup2") and not is_bind(m):
        opts.data = f'{opts.data},context="{mount_label}"' if opts.data \
            else f'context="{mount_label}"'
    with Root(rootfs) as root:
        if m.type == "cgroup":
            _mount_cgroup(root, m.destination, opts, cgroup_ns)
            return
        if is_bind(m):
            src = _source_path(m, bundle)
            st = os.stat(src)
            fd = _open_target(root, m, "dir" if stat.S_ISDIR(st.st_mode) else "file")
            try:
                where = root.host_path(fd)
                _check_proc_mount(root, fd, m)
                _mount(src, fd, "bind", sc.MS_BIND | (opts.flags & sc.MS_REC), None,
                       m.destination)
            finally:
                os.close(fd)
            extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                # The bind ignores the other flags; a remount applies them (and must keep
                # the ones already locked on the source mount).
                fd = _reopen(root, m.destination, where)
                try:
                    _mount(src, fd, "bind", sc.MS_BIND | sc.MS_REMOUNT | extra
                           | (existing_flags(fd) & ~sc.MS_RDONLY) | (opts.flags & sc.MS_REC),
                           None, m.destination)
                finally:
                    os.close(fd)
        else:
            fd = _open_target(root, m, "dir")
            try:
                where = root.host_path(fd)
                _check_proc_mount(root, fd, m)
                if opts.tmpcopyup and m.type == "tmpfs":
                    _mount_tmpfs_copyup(root, fd, m.destination, where, m.source or "tmpfs",
                                        opts)
                elif m.type == "sysfs":
                    _mount_sysfs(root, fd, m, opts, where)
                elif m.type == "devpts" and opts.data:
                    _mount(m.source or "devpts", fd, "devpts", opts.flags,
                           devpts_data(opts.data), m.destination)
                else:
                    _mount(m.source or m.type or "none", fd, m.type, opts.flags, opts.data,
                           m.destination)
            finally:
                os.close(fd)
        for prop in opts.propagation:
            fd = _reopen(root, m.destination, where)
            try:
                _mount(None, fd, None, prop, None, m.destination)
            finally:
                os.close(fd)


def _mount_sysfs(root: Root, fd: int, m: Mount, opts: ParsedOptions, where: str) -> None:
    """sysfs, or (rootless) a recursive bind of the host's /sys with the entry's flags.

    The kernel lets only a process with CAP_SYS_ADMIN over the network namespace's owner
    mount sysfs (sysfs_get_tree: net_current_may_mount), so in a new user namespace
    without a new network namespace (runc's and pyoci's `spec --rootless`) it fails with
    EPERM; runc then binds /sys instead, and so does pyoci. Only in a user namespace:
    anywhere else EPERM stays an error."""
    try:
        _mount(m.source or "sysfs", fd, "sysfs", opts.flags, opts.data, m.destination)
        return
    except OSError as exc:
        if exc.errno != errno.EPERM or not rootless.in_user_namespace():
            raise
    _mount("/sys", fd, "bind", sc.MS_BIND | sc.MS_REC, None, m.destination)
    extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    if extra:
        again = _reopen(root, m.destination, where)
        try:
            _mount("/sys", again, "bind", sc.MS_BIND | sc.MS_REMOUNT | extra
                   | (existing_flags(again) & ~sc.MS_RDONLY), None, m.destination)
        finally:
            os.close(again)


def devpts_data(data: str) -> str | None:
    """devpts options without a ``gid=N`` the container's user namespace does not map.

    The kernel refuses an unmapped gid (devpts parse_param: EINVAL), and runc's
    `spec --rootless` drops ``gid=5`` for that reason; configs written for root (engines,
    `runc spec`) still carry it. New ptys then belong to the opener's gid, as runc's
    rootless spec gives them. A mapped gid is kept."""
    if not rootless.in_user_namespace():
        return data
    kept = []
    for opt in data.split(","):
        if opt.startswith("gid="):
            try:
                gid = int(opt[4:])
            except ValueError:
                kept.append(opt)
                continue
            if not _gid_mapped(gid):
                continue
        kept.append(opt)
    return ",".join(kept) or None


def _gid_mapped(gid: int) -> bool:
    try:
        with open("/proc/self/gid_map") as f:
            lines = f.read().splitlines()
    except OSError:
        return True  # cannot tell: leave the option to the kernel
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and int(parts[0]) <= gid < int(parts[0]) + int(parts[2]):
            return True
    return False


def _mount_tmpfs_copyup(root: Root, target: int, destination: str, where: str, source: str,
                        opts: ParsedOptions) -> None:
    """runc's `tmpcopyup` extension: the tmpfs starts with a copy of what the image had
    at that path. An fd opened before the mount still reaches the covered directory; the
    copy goes fd to fd (no path is resolved twice, no module imported: see the top)."""
    covered = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)
    try:
        _mount(source, target, "tmpfs", opts.flags & ~sc.MS_RDONLY, opts.data, destination)
        top_path = _reopen(root, destination, where)
        try:
            top = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=top_path)
        finally:
            os.close(top_path)
        try:
            _copy_tree(covered, top)
            st = os.fstat(covered)
            sc.fchmod(top, stat.S_IMODE(st.st_mode))
            sc.utime(top, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(top)
        if opts.flags & sc.MS_RDONLY:
            fd = _reopen(root, destination, where)
            try:
                _mount(source, fd, "tmpfs", sc.MS_REMOUNT | opts.flags, opts.data, destination)
            finally:
                os.close(fd)
    finally:
        os.close(covered)


_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_tree(src: int, dst: int) -> None:
    """Copy directory ``src``'s entries into ``dst`` (both fds) with their type, mode,
    owner and times; symlinks copied as links, devices and fifos re-made."""
    with os.scandir(src) as entries:
        names = [e.name for e in entries]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            try:
                sc.mkdir(name, 0o700, dir_fd=dst)
            except FileExistsError:
                pass
            s = os.open(name, _DIR_OPEN, dir_fd=src)
            try:
                d = os.open(name, _DIR_OPEN, dir_fd=dst)
                try:
                    _copy_tree(s, d)
                    _copy_meta(d, st)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif kind == stat.S_IFREG:
            s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            try:
                d = sc.open_file(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=dst)
                try:
                    while sc.sendfile(d, s, 1 << 20) > 0:
                        pass
                    _copy_meta(d, st)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        else:
            if kind == stat.S_IFLNK:
                sc.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            else:
                sc.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            sc.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            sc.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst,
                     follow_symlinks=False)


def _copy_meta(fd: int, st: os.stat_result) -> None:
    sc.fchown(fd, st.st_uid, st.st_gid)  # before the mode: chown clears set-id bits
    sc.fchmod(fd, stat.S_IMODE(st.st_mode))
    sc.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _host_cgroup_mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of the host's cgroup hierarchies."""
    return [(e.mount_point, e.fstype, ",".join(e.super_options)) for e in _mountinfo()
            if e.fstype in ("cgroup", "cgroup2")]


def _own_cgroups() -> dict[str, str]:
    """/proc/self/cgroup as {controller list ("memory", "name=systemd", "" for v2): path}."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            out[controllers] = path
    return out


def _mount_hierarchy(reopen: Callable[[], int], fstype: str, data: str | None, flags: int,
                     host_dir: str, fresh: bool, what: str) -> None:
    """In a cgroup namespace a fresh cgroup mount is rooted at the container's cgroup. Without
    one it would show the host's whole tree, so the container gets a bind of its own cgroup
    directory instead, as runc does; the same when the kernel refuses the fresh mount (a
    user namespace without a cgroup namespace). ``reopen`` gives a new fd of the mount
    point each time (the second one reaches the bind just made)."""
    fd = reopen()
    try:
        if fresh:
            try:
                _mount(fstype, fd, fstype, flags, data, what)
                return
            except PermissionError:
                pass
        _mount(host_dir, fd, "bind", sc.MS_BIND | sc.MS_REC, None, what)
    finally:
        os.close(fd)
    if flags:
        fd = reopen()
        try:
            _mount(host_dir, fd, "bind", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_REC | flags
                   | existing_flags(fd), None, what)
        finally:
            os.close(fd)


def _mount_cgroup(root: Root, destination: str, opts: ParsedOptions,
                  cgroup_ns: bool) -> None:
    """A `cgroup` mount: cgroup2 where the host is unified; on a v1 or hybrid host, a
    tmpfs holding one mount per host hierarchy (controllers named as on the host). Each
    shows only the container's own cgroup (see :func:`_mount_hierarchy`)."""
    fd = resolve(root, destination, create="dir")
    try:
        where = root.host_path(fd)
        _check_proc_mount(root, fd, Mount(destination=destination, type="cgroup"))
    finally:
        os.close(fd)

    def again() -> int:
        return _reopen(root, destination, where)

    hierarchies = _host_cgroup_mounts()
    own = _own_cgroups()
    if any(mp == "/sys/fs/cgroup" and t == "cgroup2" for mp, t, _ in hierarchies):
        _mount_hierarchy(again, "cgroup2", None, opts.flags,
                         "/sys/fs/cgroup" + own.get("", "/"), cgroup_ns, destination)
        return
    fd = again()
    try:
        _mount("tmpfs", fd, "tmpfs", opts.flags & ~sc.MS_RDONLY, "mode=755", destination)
    finally:
        os.close(fd)
    top = again()  # the tmpfs just made: ours alone, its names cannot be swapped
    try:
        for mp, fstype, superopts in hierarchies:
            if not mp.startswith("/sys/fs/cgroup/"):
                continue
            name = os.path.basename(mp)
            try:
                sc.mkdir(name, 0o755, dir_fd=top)
            except FileExistsError:
                pass

            def sub(name: str = name) -> int:
                return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY
                               | os.O_CLOEXEC, dir_fd=top)

            what = f"{destination.rstrip('/')}/{name}"
            if fstype == "cgroup2":
                _mount_hierarchy(sub, "cgroup2", None, opts.flags, mp + own.get("", "/"),
                                 cgroup_ns, what)
                continue
            controllers = [o for o in superopts.split(",")
                           if o not in ("rw", "ro") and not o.startswith("release_")
                           and o not in ("noprefix", "clone_children", "xattr",
                                         "cpuset_v2_mode")
                           ] or superopts.split(",")
            key = next((k for k in own if set(k.split(",")) == set(controllers)), None)
            _mount_hierarchy(sub, "cgroup", ",".join(controllers), opts.flags,
                             mp + (own.get(key, "/") if key is not None else "/"), cgroup_ns,
                             what)
    finally:
        os.close(top)
    if opts.flags & sc.MS_RDONLY:
        fd = again()
        try:
            _mount("tmpfs", fd, "tmpfs", sc.MS_REMOUNT | opts.flags, "mode=755", destination)
        finally:
            os.close(fd)


def pivot_into(rootfs: str) -> None:
    """pivot_root(2) with new and old root the same directory, then detach the old root,
    after making it a slave so the detach cannot propagate to the host."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.fchdir(new)
        sc.pivot_root(".", ".")
        sc.fchdir(old)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    sc.chdir("/")


def move_into(rootfs: str) -> None:
    """--no-pivot: move the rootfs onto '/' and chroot (for ramfs roots, where pivot_root
    is impossible; weaker, since the old root stays reachable to a privileged process)."""
    sc.chdir(rootfs)
    sc.mount(rootfs, "/", None, sc.MS_MOVE)
    sc.chroot(".")
    sc.chdir("/")


def chroot_into(rootfs: str) -> None:
    """No mount namespace in the config (config-linux.md: the runtime's is inherited):
    chroot only, as runc does then. No mount is made or moved: pivot_root and MS_MOVE
    would act on the runtime's own mount namespace."""
    sc.chdir(rootfs)
    sc.chroot(".")
    sc.chdir("/")


def _procfs_usable() -> bool:
    """After pivot_root, /proc/self/fd is the container's: usable to name fds only when a
    real procfs is mounted there (the config's proc mount), not the image's directory."""
    try:
        fd = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return sc.fstatfs_type(fd) == sc.PROC_SUPER_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def _is_dev_null(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def _dev_null(root: Root) -> int:
    """O_PATH|O_NOFOLLOW fd of the container's /dev/null, verified to be the character
    device 1:3. CVE-2025-31133 (GHSA-9493-h29p-rfm2, fixed in runc 1.2.8/1.3.3): masks
    bound from an unverified /dev/null that was a symlink to /proc/sys/kernel/core_pattern
    became writable binds of it. runc and crun (PR #2253) refuse such a /dev/null; so does
    pyoci (it replaces a fake one itself when it owns /dev, see devices.py)."""
    try:
        dev = resolve(root, "/dev", symlinks=False)
    except (OSError, UnsafePath):  # no /dev, or not a directory: no /dev/null either
        dev = -1
    try:
        fd = os.open("null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev) \
            if dev >= 0 else -1
    except OSError:
        fd = -1
    finally:
        if dev >= 0:
            os.close(dev)
    if fd >= 0 and _is_dev_null(os.fstat(fd)):
        return fd
    if fd >= 0:
        os.close(fd)
    raise MountError("/dev/null in the container is not the null device (character device "
                     "1:3; a symlink, file or other device is there); refusing to bind it "
                     "over a masked path (CVE-2025-31133)")


def _need_procfs(path: str) -> None:
    if not _procfs_usable():
        raise MountError(f"{path}: no procfs at /proc in the container to name the mount's "
                         "target by its fd; masked and read-only paths need the proc mount "
                         "at /proc (as does the exec FIFO, as with runc)")


def mask_path(path: str) -> None:
    """config-linux.md "Masked Paths": make the path unreadable inside the container.

    Directories get a read-only tmpfs, files a read-only bind of the verified /dev/null,
    as runc does. Runs after pivot_root: the target is resolved from '/' to an fd (a
    genuinely absent path is skipped); /proc itself could not have been a symlink (see
    :func:`_open_target`), so the paths under it are procfs's own."""
    with Root("/") as root:
        fd = _existing_target(root, path)
        if fd is None:
            return
        try:
            where = root.host_path(fd)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                _mount("tmpfs", fd, "tmpfs", sc.MS_RDONLY, None, path)
                return
            null = _dev_null(root)
            try:
                _mount(fd_path(null), fd, None, sc.MS_BIND, None, path)
            finally:
                os.close(null)
        finally:
            os.close(fd)
        _remount_readonly(root, path, where, 0)


def _existing_target(root: Root, path: str) -> int | None:
    """The fd of a masked or read-only path after pivot_root, or None when it genuinely
    does not exist (skipped, as runc does); naming it by fd needs the procfs at /proc."""
    try:
        fd = resolve(root, path)
    except FileNotFoundError:
        return None
    try:
        _need_procfs(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remount_readonly(root: Root, path: str, where: str, extra: int) -> None:
    """The second step of a mask or read-only path: the bind just made, found again (and
    refused if it no longer leads to ``where``), remounted read-only with the flags
    already locked on it kept."""
    fd = _reopen(root, path, where)
    try:
        _mount(None, fd, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | extra
               | existing_flags(fd), None, path)
    finally:
        os.close(fd)


def readonly_path(path: str) -> None:
    """config-linux.md "Readonly Paths": bind the path onto itself and remount it ro,
    through fds (a genuinely absent path is skipped)."""
    with Root("/") as root:
        fd = _existing_target(root, path)
        if fd is None:
            return
        try:
            where = root.host_path(fd)
            _mount(fd_path(fd), fd, None, sc.MS_BIND | sc.MS_REC, None, path)
        finally:
            os.close(fd)
        _remount_readonly(root, path, where, sc.MS_REC)


def readonly_root() -> None:
    sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | existing_flags("/"))


"""Rootless containers: pyoci run by an unprivileged user, as runc runs them.

Three things differ from a container made by root, each decided here:

* **Detection** (``--rootless true|false|auto``, runc's global flag). ``auto`` (the
  default) is rootless when the effective uid is not 0 or when pyoci runs inside a user
  namespace (runc's ``shouldUseRootlessCgroupManager``: euid != 0 or
  ``userns.RunningInUserNS``). Root on the host is never rootless under ``auto``: the
  initial user namespace's /proc/self/uid_map is exactly ``0 0 4294967295``.
  What it turns on is runc's "rootless cgroups" (cgroups/manager.py: permission errors
  skipped where runc skips them, the devices controller never written).
* **The default state root**: ``$XDG_RUNTIME_DIR/pyoci`` for a caller that is not root
  (runc: ``$XDG_RUNTIME_DIR/runc``, main.go shouldHonorXDGRuntimeDir), else
  ``/run/pyoci``. Root inside a user namespace takes XDG_RUNTIME_DIR only when it is its
  own directory, as runc does.
* **Id maps** (user_namespaces(7) "Defining user and group ID mappings"): an
  unprivileged process may write only one line mapping its own id (and, for gid_map, only
  after "deny" in setgroups). Anything more goes through the setuid helpers
  ``newuidmap``/``newgidmap`` (package ``uidmap``), which grant the ranges of
  /etc/subuid and /etc/subgid; runc's nsexec does the same (``try_mapping_tool``).
  pyoci checks the ranges first so the error names the missing range, not the helper's
  terse refusal.

This module is imported by the hot commands (pyoci/cli.py): it imports nothing but ``os``;
:func:`run_helper` uses ``os.posix_spawn`` rather than :mod:`subprocess`.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyoci.config.model import IDMapping

SYSTEM_ROOT = "/run/pyoci"
_FULL_MAP = ("0", "0", "4294967295")

_mode = "auto"


def set_mode(value: str | None) -> None:
    """``--rootless``: true, false or auto (runc's values); anything else is an error."""
    global _mode
    if value is None or value == "":
        _mode = "auto"
        return
    if value not in ("true", "false", "auto"):
        raise PyociError(f"--rootless: expected true, false or auto, found {value!r}")
    _mode = value


def in_user_namespace() -> bool:
    """True inside a user namespace other than the initial one (runc's RunningInUserNS):
    only the initial namespace maps all 2^32 - 1 ids at 0."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            text = f.read().decode()
    except OSError:
        return False
    lines = text.strip().splitlines()
    return not (len(lines) == 1 and tuple(lines[0].split()) == _FULL_MAP)


def active() -> bool:
    """Rootless cgroups in force (``--rootless`` explicit, or auto-detected)."""
    if _mode == "true":
        return True
    if _mode == "false":
        return False
    return os.geteuid() != 0 or in_user_namespace()


def default_root() -> str:
    """The state root when ``--root`` is not given (runc's main.go rule)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        if os.geteuid() != 0:
            return os.path.join(xdg, "pyoci")
        if in_user_namespace():
            try:
                if os.stat(xdg).st_uid == os.geteuid():
                    return os.path.join(xdg, "pyoci")
            except OSError:
                pass
    return SYSTEM_ROOT


def root_hint(root: str) -> str:
    """Appended to a permission error on the state root: what an unprivileged user can do."""
    if os.geteuid() == 0:
        return ""
    return (" (pyoci runs as an unprivileged user: give a --root it can write, or set "
            "XDG_RUNTIME_DIR; the default is $XDG_RUNTIME_DIR/pyoci)")


# --- id maps ------------------------------------------------------------------------------

def needs_helper(mappings: Sequence[IDMapping], own_id: int) -> bool:
    """Whether an unprivileged caller must use newuidmap/newgidmap: the kernel lets it write
    only a single line mapping its own effective id with size 1."""
    if os.geteuid() == 0 or not mappings:
        # root (also root of a user namespace, e.g. under rootless podman) writes any map
        # of ids it holds itself.
        return False
    return not (len(mappings) == 1 and mappings[0].host_id == own_id
                and mappings[0].size == 1)


def _user_names(uid: int) -> list[str]:
    """The login name(s) of ``uid`` in /etc/passwd (no pwd module import on this path)."""
    names = [str(uid)]
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                parts = line.split(":")
                if len(parts) > 2 and parts[2] == str(uid):
                    names.insert(0, parts[0])
    except OSError:
        pass
    return names


def user_name(uid: int) -> str:
    """The login name of ``uid``, else the number (runc's list shows the name)."""
    return _user_names(uid)[0]


def subid_ranges(path: str, uid: int) -> list[tuple[int, int]]:
    """(first, count) of every range ``path`` (/etc/subuid or /etc/subgid, subuid(5))
    grants the user ``uid``, by name or by number."""
    names = _user_names(uid)
    out = []
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PyociError(f"reading {path}: {exc.strerror}") from None
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in names:
            continue
        try:
            out.append((int(parts[1]), int(parts[2])))
        except ValueError:
            continue
    return out


def check_ranges(kind: str, mappings: Sequence[IDMapping], own_id: int, uid: int) -> None:
    """Every mapped host range must be the caller's own id or lie inside one of its
    /etc/sub{u,g}id ranges (what newuidmap(1) enforces); else a clear error naming the
    JSON field, the range and the file."""
    path = "/etc/subuid" if kind == "uid" else "/etc/subgid"
    ranges = subid_ranges(path, uid)
    field = "linux.uidMappings" if kind == "uid" else "linux.gidMappings"
    who = _user_names(uid)[0]
    for i, m in enumerate(mappings):
        first, last = m.host_id, m.host_id + m.size - 1
        if m.size == 1 and m.host_id == own_id:
            continue
        if any(start <= first and last < start + count for start, count in ranges):
            continue
        have = ", ".join(f"{s}-{s + c - 1}" for s, c in ranges) or "none"
        raise PyociError(
            f"{field}[{i}]: host {kind}s {first}-{last} are not granted to user {who} in "
            f"{path} (its ranges: {have}); an unprivileged user can map only its own {kind} "
            f"({own_id}) and its {path} ranges")


def find_helper(name: str) -> str:
    """The path of newuidmap/newgidmap on $PATH (runc: exec.LookPath), or an error naming
    the missing helper."""
    for d in (os.environ.get("PATH") or os.defpath).split(":"):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise PyociError(f"{name} not found in $PATH: an unprivileged user needs it to map "
                     "more than its own id into the container's user namespace (install "
                     "the uidmap package)")


def run_helper(path: str, pid: int, mappings: Sequence[IDMapping]) -> None:
    """``newuidmap PID ID LOWER COUNT ...``; its stderr becomes the error's reason."""
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    r, w = os.pipe()
    try:
        child = os.posix_spawn(path, argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                               file_actions=[(os.POSIX_SPAWN_DUP2, w, 2),
                                             (os.POSIX_SPAWN_OPEN, 1, "/dev/null",
                                              os.O_WRONLY, 0),
                                             (os.POSIX_SPAWN_OPEN, 0, "/dev/null",
                                              os.O_RDONLY, 0)])
    except OSError as exc:
        os.close(r)
        os.close(w)
        raise PyociError(f"running {path}: {exc.strerror}") from None
    os.close(w)
    chunks: list[bytes] = []
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        if sum(len(c) for c in chunks) < 4096:
            chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        why = b"".join(chunks).decode(errors="replace").strip() or \
            f"exit status {os.waitstatus_to_exitcode(status)}"
        raise PyociError(f"{os.path.basename(path)} {' '.join(argv[1:])}: {why}")


def write_maps(pid: int, uid_maps: Sequence[IDMapping], gid_maps: Sequence[IDMapping]) -> None:
    """Map the new user namespace of ``pid`` for an unprivileged caller.

    A single map of the caller's own id is written directly, gid_map after "deny" in
    /proc/<pid>/setgroups (the kernel requires it, user_namespaces(7)); anything else goes
    through newuidmap/newgidmap after checking the ranges. Errors name the field, the
    helper or the /etc/sub*id range at fault."""
    euid, egid = os.geteuid(), os.getegid()
    uid_helper = needs_helper(uid_maps, euid)
    gid_helper = needs_helper(gid_maps, egid)
    if uid_helper:
        check_ranges("uid", uid_maps, euid, euid)
    if gid_helper:
        check_ranges("gid", gid_maps, egid, euid)
    helpers = {}
    if uid_helper:
        helpers["uid"] = find_helper("newuidmap")
    if gid_helper:
        helpers["gid"] = find_helper("newgidmap")
    if uid_maps:
        if uid_helper:
            run_helper(helpers["uid"], pid, uid_maps)
        else:
            _write_file(f"/proc/{pid}/uid_map", _map_text(uid_maps), "linux.uidMappings")
    if gid_maps:
        if gid_helper:
            run_helper(helpers["gid"], pid, gid_maps)
        else:
            _write_file(f"/proc/{pid}/setgroups", "deny", "linux.gidMappings")
            _write_file(f"/proc/{pid}/gid_map", _map_text(gid_maps), "linux.gidMappings")


def _map_text(mappings: Sequence[IDMapping]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def _write_file(path: str, text: str, field: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        raise PyociError(f"{field}: writing {text.strip()!r} to {path}: "
                         f"{(exc.strerror or str(exc)).lower()}") from None

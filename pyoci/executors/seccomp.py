"""Seccomp executor (config-linux.md "Seccomp").

Two halves, on the two sides of fork:

* :func:`compile_filter` runs in ``create`` before anything exists. It checks the profile
  against the spec's rules and against what this libseccomp and kernel can do, and builds
  the libseccomp filter, so every problem is an error naming its JSON path with nothing
  to undo.
* :meth:`SeccompFilter.load` runs in the container's init (which inherits the built
  filter across fork) and installs it; with ``SCMP_ACT_NOTIFY`` rules it returns the
  listener fd, which the runtime hands to ``listenerPath`` with :func:`send_to_listener`.

Choices, with the rule behind each:

* ``errnoRet``/``defaultErrnoRet`` default to EPERM and are refused on actions other than
  ERRNO and TRACE (the spec: "When the action doesn't support an errno, the runtime MUST
  print an error and fail"). For TRACE the value is the tracer's message.
* ``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD`` (seccomp.h keeps it as the old name).
* A rule whose action is the default action is skipped: libseccomp refuses it (EACCES)
  and it changes nothing (runc and crun skip it too).
* Conditions on different arguments are AND'ed in one rule; when one argument is
  compared more than once libseccomp cannot AND them, so, as runc and crun do, each
  condition becomes a rule of its own (OR).
* The native architecture is always in the filter (libseccomp adds it), whatever
  ``architectures`` says: the runtime itself runs native code until execve.
* A name libseccomp knows is accepted even where an added architecture lacks that call
  (libseccomp leaves it out there). A name libseccomp does not know at all is skipped,
  as runc (libcontainer/seccomp: "unknown seccomp syscall %q ignored") and crun do, with
  one warning line on the log naming every such call; it is listed in
  :attr:`SeccompFilter.skipped_names`. Engines' current default profiles name calls newer
  than this machine's libseccomp (Docker's and podman's name ``mseal``, libseccomp 2.5.4
  does not know it): refusing them would refuse every default container. A filter that
  leaves a call the kernel may have out falls to the default action for it, as under runc.
  ``strict_names=True`` makes such names errors instead (tests, tooling).
* no_new_privs is left to ``process.noNewPrivileges``: libseccomp would set it on load
  by default, which would silently break set-uid programs in containers that did not
  ask for it.
"""

from __future__ import annotations

import os

from pyoci import OCI_VERSION, jsonio, log
from pyoci import libseccomp as lib
from pyoci.errors import ConfigError, PyociError
from pyoci.sync import send_fds, unix_stream_socket

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyoci.config.model import Seccomp, SyscallArg, SyscallRule

EPERM = 1
#: The kernel's MAX_ERRNO; libseccomp accepts SCMP_ACT_ERRNO(x) only for x below it.
MAX_ERRNO = 4095
#: BPF_MAXINSNS: the kernel refuses a longer seccomp program (EINVAL).
BPF_MAXINSNS = 4096
BPF_INSN_SIZE = 8  # struct sock_filter

#: Spec action name -> libseccomp action (ERRNO and TRACE get their data added).
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": lib.ACT_KILL,
    "SCMP_ACT_KILL_PROCESS": lib.ACT_KILL_PROCESS,
    "SCMP_ACT_KILL_THREAD": lib.ACT_KILL_THREAD,
    "SCMP_ACT_TRAP": lib.ACT_TRAP,
    "SCMP_ACT_ERRNO": lib.ACT_ERRNO_BASE,
    "SCMP_ACT_TRACE": lib.ACT_TRACE_BASE,
    "SCMP_ACT_ALLOW": lib.ACT_ALLOW,
    "SCMP_ACT_LOG": lib.ACT_LOG,
    "SCMP_ACT_NOTIFY": lib.ACT_NOTIFY,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

#: Actions that need more than the base API level, with the level and the first
#: libseccomp release and kernel that have them (libseccomp's _seccomp_api_update).
_ACTION_NEEDS: dict[str, tuple[int, tuple[int, int, int], str]] = {
    "SCMP_ACT_LOG": (3, (2, 4, 0), "4.14"),
    "SCMP_ACT_KILL_PROCESS": (3, (2, 4, 0), "4.14"),
    "SCMP_ACT_NOTIFY": (5, (2, 5, 0), "5.0"),
}

OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": lib.CMP_NE,
    "SCMP_CMP_LT": lib.CMP_LT,
    "SCMP_CMP_LE": lib.CMP_LE,
    "SCMP_CMP_EQ": lib.CMP_EQ,
    "SCMP_CMP_GE": lib.CMP_GE,
    "SCMP_CMP_GT": lib.CMP_GT,
    "SCMP_CMP_MASKED_EQ": lib.CMP_MASKED_EQ,
}

#: The architectures the spec (and pyoci's schema) name. libseccomp's own name is the
#: part after SCMP_ARCH_, lower-cased; whether it knows it depends on its version.
ARCHES: tuple[str, ...] = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
)
_ARCH_PREFIX = "SCMP_ARCH_"

#: Spec flag -> (libseccomp attribute, API level, first libseccomp release, first kernel).
FLAGS: dict[str, tuple[int, int, tuple[int, int, int], str]] = {
    "SECCOMP_FILTER_FLAG_TSYNC": (lib.ATTR_CTL_TSYNC, 2, (2, 2, 0), "3.17"),
    "SECCOMP_FILTER_FLAG_LOG": (lib.ATTR_CTL_LOG, 3, (2, 4, 0), "4.14"),
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (lib.ATTR_CTL_SSB, 4, (2, 5, 0), "4.17"),
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": (lib.ATTR_CTL_WAITKILL, 7, (2, 6, 0), "5.19"),
}

#: Syscalls the init makes between loading a filter with a listener and the runtime
#: receiving the listener fd (sync.Channel.send_fd: sendmsg, then sendto for a rest).
#: SCMP_ACT_NOTIFY on them would block the init before any agent can answer, so create
#: would hang: refused, as runc refuses it for the write(2) its init uses there.
NOTIFY_HANDOFF_SYSCALLS: tuple[str, ...] = ("sendmsg", "sendto")

#: Above this many rules libseccomp is asked for a binary-tree filter (fewer comparisons
#: per syscall than its default linear chain); small filters gain nothing from it.
_BINARY_TREE_MIN_RULES = 32

_ROOT = "linux.seccomp"


class SeccompFilter:
    """A filter built by :func:`compile_filter`, to be loaded in the container's init."""

    def __init__(self, flt: lib.Filter, *, default_action: int, has_notify: bool,
                 skipped_names: tuple[tuple[str, str], ...], instructions: int) -> None:
        self._filter = flt
        self.default_action = default_action
        #: Whether load() creates a listener (some rule has SCMP_ACT_NOTIFY).
        self.has_notify = has_notify
        #: (JSON path, name) of syscall names libseccomp does not know, skipped because
        #: compile_filter ran with strict_names=False.
        self.skipped_names = skipped_names
        #: Length of the BPF program (all its architectures together).
        self.instructions = instructions

    def load(self) -> int | None:
        """Install the filter on the calling process; return the listener fd, if any.

        The filter is inherited by every child and survives execve. Without
        no_new_privs the kernel requires CAP_SYS_ADMIN (in the process's user namespace)
        for this. The listener fd is O_CLOEXEC (the kernel opens it so), so the user's
        program never inherits it.
        """
        try:
            self._filter.load()
        except lib.LibseccompError as exc:
            raise PyociError(_explain_load_error(exc)) from None
        if not self.has_notify:
            return None
        try:
            return self._filter.notify_fd()
        except lib.LibseccompError as exc:
            raise PyociError(f"the seccomp filter was loaded but its listener fd is "
                             f"missing: {exc}") from None

    def bpf(self) -> bytes:
        """The BPF program that load() installs (for debugging and tests)."""
        return self._filter.export_bpf()

    def release(self) -> None:
        """Free this process's copy of the filter (a forked init keeps its own)."""
        self._filter.release()


def _explain_load_error(exc: lib.LibseccompError) -> str:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    if exc.errno == 13:  # EACCES: seccomp(2) without no_new_privs and CAP_SYS_ADMIN
        return (f"the kernel refused the seccomp filter: {reason} (without no_new_privs "
                "only a process with CAP_SYS_ADMIN may install one)")
    return f"the kernel refused the seccomp filter: {reason}"


# --- what this system can do -----------------------------------------------------------------

def libseccomp_version() -> str | None:
    """"2.5.4", or None when libseccomp is not installed."""
    if not lib.available():
        return None
    return lib.version_string()


def _missing_reason(level: int, min_lib: tuple[int, int, int], min_kernel: str) -> str:
    """Why a feature needing API ``level`` is not available: the library or the kernel."""
    have = lib.version()
    if have < min_lib:
        need = ".".join(map(str, min_lib))
        return f"needs libseccomp >= {need}, this is {lib.version_string()}"
    return (f"needs Linux >= {min_kernel} (libseccomp API level {level}); this kernel "
            f"({os.uname().release}) with libseccomp {lib.version_string()} offers level "
            f"{lib.api_level()}")


def _action_problem(name: str) -> str | None:
    need = _ACTION_NEEDS.get(name)
    if need is None or lib.api_level() >= need[0]:
        return None
    return _missing_reason(*need)


def _flag_problem(name: str) -> str | None:
    attr, level, min_lib, min_kernel = FLAGS[name]
    if lib.api_level() and lib.api_level() < level:
        return _missing_reason(level, min_lib, min_kernel)
    # libseccomp checks the kernel itself when the attribute is set (EOPNOTSUPP), and an
    # older libseccomp does not know the attribute at all (EINVAL).
    with lib.Filter(lib.ACT_ALLOW) as probe:
        try:
            probe.attr_set(attr, 1)
        except lib.LibseccompError:
            return _missing_reason(level, min_lib, min_kernel)
    return None


def supported_actions() -> list[str]:
    """The spec's actions this libseccomp and kernel can apply."""
    return [name for name in ACTIONS if _action_problem(name) is None]


def supported_operators() -> list[str]:
    """The comparison operators libseccomp accepts in a rule (probed on a scratch filter)."""
    lib.api_level()  # raises LibseccompMissing first
    nr = lib.syscall_resolve("getpid")
    out = []
    with lib.Filter(lib.ACT_ALLOW) as probe:
        for name, op in OPERATORS.items():
            try:
                probe.rule_add(lib.act_errno(EPERM), nr if nr is not None else 0,
                               [(0, op, 1, 1)])
            except lib.LibseccompError:
                continue
            out.append(name)
    return out


def supported_archs() -> list[str]:
    """The spec's architectures a filter can hold here: libseccomp knows them and they
    share the native byte order (libseccomp refuses to mix the two in one filter)."""
    out = []
    with lib.Filter(lib.ACT_ALLOW) as probe:
        for name in ARCHES:
            token = lib.arch_resolve(name[len(_ARCH_PREFIX):].lower())
            if token is None:
                continue
            try:
                probe.arch_add(token)
            except lib.LibseccompError:
                continue
            out.append(name)
    return out


def supported_flags() -> list[str]:
    """The spec's filter flags this libseccomp and kernel can apply."""
    return [name for name in FLAGS if _flag_problem(name) is None]


# --- compile ---------------------------------------------------------------------------------

class _Findings:
    """Problems found while compiling: config errors and things this system cannot do."""

    def __init__(self) -> None:
        self.invalid: list[tuple[str, str]] = []
        self.unsupported: list[tuple[str, str]] = []

    def raise_any(self) -> None:
        if self.invalid:
            raise ConfigError(self.invalid)
        if self.unsupported:
            lines = [f"{path}: {msg}" for path, msg in self.unsupported]
            raise PyociError("linux.seccomp cannot be applied on this system:"
                             + ("\n  " + "\n  ".join(lines) if len(lines) > 1
                                else " " + lines[0]))


def _action(name: str, errno_ret: int | None, path: str, errno_path: str,
            found: _Findings) -> int | None:
    base = ACTIONS.get(name)
    if base is None:
        found.invalid.append((path, f"{name!r} is not a seccomp action (one of "
                                    f"{', '.join(ACTIONS)})"))
        return None
    problem = _action_problem(name)
    if problem:
        found.unsupported.append((path, f"{name} {problem}"))
    if name not in _WITH_ERRNO:
        if errno_ret is not None:
            found.invalid.append((errno_path, f"{name} does not return an errno; errnoRet "
                                              "applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE"))
        return base
    value = EPERM if errno_ret is None else errno_ret
    limit = MAX_ERRNO - 1 if name == "SCMP_ACT_ERRNO" else lib.ACT_DATA_MASK
    if not 0 <= value <= limit:
        what = "an errno" if name == "SCMP_ACT_ERRNO" else "the tracer's 16-bit message"
        found.invalid.append((errno_path, f"{value} is out of range for {what} "
                                          f"(0 to {limit})"))
        return None
    return base | value


def _default_flags() -> list[str]:
    """runc and crun set SPEC_ALLOW when ``flags`` is absent (an empty list sets none):
    the speculative-store-bypass mitigation that seccomp would otherwise force on every
    containerised process costs performance and is not what the profile asked for. Only
    where supported, silently, as they do. (pyoci's loader gives () for an absent list
    today; this applies once it keeps None.)"""
    flag = "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
    return [flag] if _flag_problem(flag) is None else []


def _conditions(args: Sequence[SyscallArg], path: str,
                found: _Findings) -> list[tuple[int, int, int, int]]:
    out = []
    for k, arg in enumerate(args):
        apath = f"{path}.args[{k}]"
        op = OPERATORS.get(arg.op)
        if op is None:
            found.invalid.append((f"{apath}.op", f"{arg.op!r} is not a seccomp operator "
                                                 f"(one of {', '.join(OPERATORS)})"))
        if not 0 <= arg.index < lib.MAX_ARGS:
            found.invalid.append((f"{apath}.index", f"{arg.index} is not a syscall argument "
                                                    f"index (0 to {lib.MAX_ARGS - 1})"))
        for field, value in (("value", arg.value), ("valueTwo", arg.value_two)):
            if not 0 <= value < 1 << 64:
                found.invalid.append((f"{apath}.{field}", f"{value} does not fit in 64 bits"))
        if op is not None:
            out.append((arg.index, op, arg.value, arg.value_two))
    return out


def _rule_sets(conds: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """The libseccomp rules for one syscall: one AND'ed rule, or one per condition when
    an argument is compared twice (libseccomp cannot AND two tests of one argument)."""
    indexes = [c[0] for c in conds]
    if len(set(indexes)) == len(indexes):
        return [conds]
    return [[c] for c in conds]


class _Rule:
    def __init__(self, path: str, action: int, names: list[tuple[int, str, int]],
                 conds: list[tuple[int, int, int, int]], notify: bool) -> None:
        self.path = path
        self.action = action
        self.names = names  # (index in names, name, number)
        self.conds = conds
        self.notify = notify


def _check_rule(i: int, rule: SyscallRule, s: Seccomp, strict_names: bool,
                found: _Findings, skipped: list[tuple[str, str]]) -> _Rule | None:
    path = f"{_ROOT}.syscalls[{i}]"
    action = _action(rule.action, rule.errno_ret, f"{path}.action", f"{path}.errnoRet", found)
    notify = rule.action == "SCMP_ACT_NOTIFY"
    if notify and not s.listener_path:
        found.invalid.append((f"{path}.action", "SCMP_ACT_NOTIFY needs linux.seccomp."
                                                "listenerPath: without a listener nobody "
                                                "can answer the notifications"))
    if not rule.names:
        found.invalid.append((f"{path}.names", "must name at least one system call"))
    conds = _conditions(rule.args, path, found)
    names = []
    for j, name in enumerate(rule.names):
        npath = f"{path}.names[{j}]"
        if notify and name in NOTIFY_HANDOFF_SYSCALLS:
            found.invalid.append((npath, f"SCMP_ACT_NOTIFY cannot be used for {name}: pyoci's "
                                         "init needs it to hand the listener fd to the "
                                         "runtime, and would wait for an agent that cannot "
                                         "have the fd yet"))
        nr = lib.syscall_resolve(name) if name else None
        if nr is None:
            if strict_names:
                found.invalid.append((npath, f"{jsonio.encode_string(name)} is not a system call "
                                             f"libseccomp {lib.version_string()} knows"))
            else:
                skipped.append((npath, name))
            continue
        names.append((j, name, nr))
    if action is None:
        return None
    return _Rule(path, action, names, conds, notify)


_Arch = tuple[str, str, int]  # (JSON path, spec name, libseccomp token)


def _check_profile(s: Seccomp, strict_names: bool
                   ) -> tuple[int, list[_Arch], list[str], list[_Rule], list[tuple[str, str]]]:
    found = _Findings()
    default = _action(s.default_action, s.default_errno_ret, f"{_ROOT}.defaultAction",
                      f"{_ROOT}.defaultErrnoRet", found)
    if s.default_action == "SCMP_ACT_NOTIFY":
        found.invalid.append((f"{_ROOT}.defaultAction", "SCMP_ACT_NOTIFY cannot be the "
                                                        "default action: the init would wait "
                                                        "on an agent for every system call, "
                                                        "including those that reach the agent"))
    arches = []
    for i, arch in enumerate(s.architectures):
        path = f"{_ROOT}.architectures[{i}]"
        if not arch.startswith(_ARCH_PREFIX) or arch == _ARCH_PREFIX:
            found.invalid.append((path, f"{arch!r} is not a seccomp architecture "
                                        f"({_ARCH_PREFIX}...)"))
            continue
        token = lib.arch_resolve(arch[len(_ARCH_PREFIX):].lower())
        if token is None:
            found.unsupported.append((path, f"{arch} is not an architecture libseccomp "
                                            f"{lib.version_string()} knows"))
        else:
            arches.append((path, arch, token))
    flags = []
    if s.flags is None:  # absent, not []: see _default_flags
        flags = _default_flags()
    for i, flag in enumerate(s.flags or ()):
        path = f"{_ROOT}.flags[{i}]"
        if flag not in FLAGS:
            found.invalid.append((path, f"{flag!r} is not a seccomp filter flag (one of "
                                        f"{', '.join(FLAGS)})"))
            continue
        problem = _flag_problem(flag)
        if problem:
            found.unsupported.append((path, f"{flag} {problem}"))
        flags.append(flag)
    skipped: list[tuple[str, str]] = []
    rules = [r for i, rule in enumerate(s.syscalls)
             if (r := _check_rule(i, rule, s, strict_names, found, skipped)) is not None]
    found.raise_any()
    assert default is not None
    return default, arches, flags, rules, skipped


def skipped_warning(skipped: Sequence[tuple[str, str]]) -> str:
    """The one warning line for the system call names the filter left out."""
    listed = ", ".join(f"{name} ({path})" for path, name in skipped)
    return (f"{_ROOT}: ignoring system calls libseccomp {lib.version_string()} does not know: "
            f"{listed}")


def compile_filter(s: Seccomp, *, strict_names: bool = False,
                   warn: bool = True) -> SeccompFilter:
    """Check ``linux.seccomp`` and build its filter; raise before anything is loaded.

    Raises :class:`ConfigError` for what the profile gets wrong (each problem with its
    JSON path) and :class:`PyociError` for what this libseccomp or kernel cannot do
    (naming the version needed), including when libseccomp is not installed. Unknown
    system call names are skipped with a warning on the log (``warn=False``: only listed
    in ``skipped_names``, for `pyoci validate`).
    """
    try:
        lib.api_level()
    except lib.LibseccompMissing as exc:
        raise PyociError(f"{_ROOT}: {exc}") from None
    default, arches, flags, rules, skipped = _check_profile(s, strict_names)
    has_notify = any(r.notify and r.names for r in rules)
    flt = lib.Filter(default)
    try:
        _configure(flt, arches, flags, has_notify, len(rules))
        for rule in rules:
            _add_rule(flt, rule, default)
        instructions = len(flt.export_bpf()) // BPF_INSN_SIZE
    except BaseException:
        flt.release()
        raise
    if instructions > BPF_MAXINSNS:
        flt.release()
        raise PyociError(f"{_ROOT}: the profile compiles to {instructions} BPF instructions; "
                         f"the kernel accepts at most {BPF_MAXINSNS}")
    if skipped and warn:
        log.warn(skipped_warning(skipped))
    return SeccompFilter(flt, default_action=default, has_notify=has_notify,
                         skipped_names=tuple(skipped), instructions=instructions)


def _configure(flt: lib.Filter, arches: list[_Arch], flags: list[str], has_notify: bool,
               rule_count: int) -> None:
    # process.noNewPrivileges decides no_new_privs, not libseccomp (which sets it by default).
    flt.attr_set(lib.ATTR_CTL_NNP, 0)
    try:
        # The kernel's own errno from seccomp_load (libseccomp >= 2.5 maps it otherwise).
        flt.attr_set(lib.ATTR_API_SYSRAWRC, 1)
    except lib.LibseccompError:
        pass
    for path, name, token in arches:
        try:
            flt.arch_add(token)  # False for the native one, which seccomp_init added
        except lib.LibseccompError as exc:
            if exc.errno != 33:  # EDOM
                raise
            raise PyociError(f"linux.seccomp cannot be applied on this system: {path}: {name} "
                             "cannot share a filter with the native architecture: their byte "
                             "orders differ") from None
    for flag in flags:
        if (flag == "SECCOMP_FILTER_FLAG_TSYNC" and has_notify and lib.api_level() < 6):
            # The kernel refuses TSYNC with a new listener unless it also has TSYNC_ESRCH
            # (5.7). The init is a forked, single-threaded process: there is no other
            # thread to synchronise, so leaving the flag out changes nothing.
            continue
        flt.attr_set(FLAGS[flag][0], 1)
    if rule_count > _BINARY_TREE_MIN_RULES:
        try:
            flt.attr_set(lib.ATTR_CTL_OPTIMIZE, 2)
        except lib.LibseccompError:
            pass  # libseccomp < 2.5: the default layout is only slower


def _add_rule(flt: lib.Filter, rule: _Rule, default: int) -> None:
    if rule.action == default:
        return  # libseccomp refuses it (EACCES) and it would change nothing
    for j, name, nr in rule.names:
        for conds in _rule_sets(rule.conds):
            try:
                flt.rule_add(rule.action, nr, conds)
            except lib.LibseccompError as exc:
                reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
                raise PyociError(f"{rule.path}.names[{j}]: libseccomp refused the rule for "
                                 f"{name!r}: {reason}") from None


# --- the listener ------------------------------------------------------------------------------

def container_process_state(pid: int, state: dict, metadata: str | None) -> dict:
    """config-linux.md "The Container Process State", naming the one fd sent with it."""
    msg: dict = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid}
    if metadata:
        msg["metadata"] = metadata
    msg["state"] = state
    return msg


def send_to_listener(listener_path: str, notify_fd: int, pid: int, state: dict,
                     metadata: str | None, *, timeout: float = 10.0) -> None:
    """Send the container process state and the listener fd to ``listenerPath``.

    The spec: an AF_UNIX SOCK_STREAM socket, exactly one state per connection, the fd by
    SCM_RIGHTS in the first sendmsg(2) only, then the connection is closed. Failures are
    OSError (the caller MUST turn them into an error); ``timeout`` bounds a listener that
    accepts nothing, so create cannot hang on it.
    """
    data = jsonio.dumps(container_process_state(pid, state, metadata)).encode()
    sock = unix_stream_socket()
    try:
        sock.settimeout(timeout)
        sock.connect(listener_path)
        sent = send_fds(sock, data, [notify_fd])
        if sent < len(data):
            sock.sendall(data[sent:])
    finally:
        sock.close()

"""The one config checker: `validate`, `create`, `exec --process` and `update --resources`
all go through here, so they give the same verdict on the same document (issue 14).

runtime.md "Lifecycle" step 2: the runtime MUST generate an error if it cannot create the
configured environment, before anything is made. runc keeps one validator over its
internal config (libcontainer/configs/validate); pyoci keeps one entry, :func:`check`,
in three stages, each adding to one list of (JSON path, reason) problems so that the user
sees every problem at once (:class:`ConfigError`):

1. the document: the JSON Schema (fastcheck decides, jsonschema explains), the semantic
   rules the schema cannot express (:mod:`.semantic`), and what this build does not
   implement (intelRdt, memoryPolicy, id-mapped mounts: refused rather than silently
   dropped). A document the schema already found malformed stops here: the model below
   needs a well-formed one.
2. the model (``host=True``): what depends on this machine -- the LSM a label names is
   enabled, resctrl, the network request (:func:`pyoci.executors.network.check`), and the
   seccomp profile compiling with this libseccomp and kernel.
3. warnings, apart from errors: what create skips with a log line rather than refuses
   (config.md "Process": an unknown capability MUST be logged as a warning and SHOULD NOT
   fail; runc skips unknown system call names; a relative mount destination is taken
   relative to /, as runc does).

What depends on the command line (``--console-socket`` against process.terminal) is not
in the document: :func:`check_console` holds that rule, and create calls it right after.
"""

from __future__ import annotations

import os

from pyoci import log
from pyoci.config.loader import load_spec
from pyoci.config.schema import schema_problems
from pyoci.config.semantic import process_doc_problems, semantic_problems
from pyoci.errors import ConfigError, PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    from pyoci.config.model import Process, Spec
    from pyoci.executors.seccomp import SeccompFilter

class Checked:
    """What :func:`check` found valid: the frozen model, the warnings (one
    ``"path: reason"`` line each, as `validate` prints them), and what create needs and
    the check already built (the compiled seccomp filter, the network request)."""

    __slots__ = ("spec", "doc", "warnings", "seccomp", "net", "_log")

    def __init__(self, spec: Spec, doc: dict[str, Any]) -> None:
        self.spec = spec
        self.doc = doc
        self.warnings: list[str] = []
        self.seccomp: SeccompFilter | None = None
        self.net: Any = None  # network.check's request, for create's network setup
        #: (level, line) for create's log: the same findings, worded as runc logs them.
        self._log: list[tuple[str, str]] = []

    def log(self) -> None:
        """Write the warnings to the runtime's log (create, run)."""
        for level, line in self._log:
            log.emit(level, line)

    def release(self) -> None:
        """Free the compiled filter (validate does not load it)."""
        if self.seccomp is not None:
            self.seccomp.release()
            self.seccomp = None


def document_problems(doc: dict[str, Any], bundle: str | None) -> list[tuple[str, str]]:
    """The schema's problems, then the semantic rules' (those are skipped where the
    schema already found the document malformed, and at a path the schema named)."""
    return _document(doc, bundle)[0]


def _document(doc: dict[str, Any], bundle: str | None, host: bool = False
              ) -> tuple[list[tuple[str, str]], bool]:
    """(problems, whether the schema found the document malformed); ``host``: with
    :func:`unsupported_problems` worded for this machine."""
    problems = schema_problems(doc, "config")
    malformed = bool(problems)
    try:
        extra = semantic_problems(doc, bundle) + unsupported_problems(doc, host=host)
    except (TypeError, AttributeError, KeyError, ValueError):
        extra = []  # a shape the schema already reported
    seen = {path for path, _ in problems}
    return problems + [p for p in extra if p[0] not in seen], malformed


def unsupported_problems(doc: dict[str, Any], *, host: bool = True) -> list[tuple[str, str]]:
    """Fields the schema accepts that this build cannot apply: refused, never skipped
    (runtime.md "Lifecycle" step 2), each naming the field."""
    out: list[tuple[str, str]] = []
    linux = doc.get("linux") or {}
    if linux.get("intelRdt"):
        # runc refuses too: running without the cache/bandwidth split the config asked
        # for would be a silent downgrade.
        why = ("this host has no resctrl filesystem at /sys/fs/resctrl"
               if host and not os.path.isdir("/sys/fs/resctrl/info")
               else "pyoci does not apply Intel RDT settings")
        out.append(("linux.intelRdt", f"{why}; remove the field to run without it"))
    if linux.get("memoryPolicy"):
        out.append(("linux.memoryPolicy", "NUMA memory policies are not applied by this "
                    "build of pyoci; remove the field to run without one"))
    for i, m in enumerate(doc.get("mounts") or ()):
        if isinstance(m, dict) and (m.get("uidMappings") or m.get("gidMappings")):
            out.append((f"mounts[{i}]", "id-mapped mounts (uidMappings/gidMappings) are "
                        "not supported by this build of pyoci"))
    return out


def _as_problem(exc: PyociError, fallback: str) -> list[tuple[str, str]]:
    """A host check's refusal (``"path: reason"`` text) as problems of the one list."""
    if isinstance(exc, ConfigError):
        return list(exc.problems)
    path, sep, reason = str(exc).partition(": ")
    if sep and path and " " not in path:
        return [(path, reason)]
    return [(fallback, str(exc))]


def _host_problems(checked: Checked) -> list[tuple[str, str]]:
    """What this machine must provide: the LSM a label names, the network request's
    prerequisites, a seccomp profile this libseccomp and kernel can compile."""
    spec = checked.spec
    out: list[tuple[str, str]] = []
    proc = spec.process
    if spec.linux.mount_label or (proc is not None and (proc.apparmor_profile
                                                        or proc.selinux_label)):
        from pyoci.executors import lsm

        try:
            lsm.check(spec)
        except PyociError as exc:
            out += _as_problem(exc, "process")
    from pyoci.executors import network

    if network.wanted(spec):
        try:
            checked.net = network.check(spec)
        except PyociError as exc:
            out += _as_problem(exc, "linux.netDevices")
    if spec.linux.seccomp is not None:
        from pyoci.executors.seccomp import compile_filter

        try:
            checked.seccomp = compile_filter(spec.linux.seccomp, warn=False)
        except PyociError as exc:
            out += _as_problem(exc, "linux.seccomp")
    return out


def _warn(checked: Checked, host: bool) -> None:
    """Findings create skips rather than refuses, for validate's lines and create's log
    (``host``: with those that depend on this kernel and libseccomp)."""
    spec = checked.spec
    caps = spec.process.capabilities if spec.process is not None else None
    if caps is not None and host:
        from pyoci.linux_names import CAP_NUMBERS, last_cap

        last = last_cap()
        unknown: list[str] = []
        for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            for i, name in enumerate(getattr(caps, kind) or ()):
                num = CAP_NUMBERS.get(name)
                if num is None or num > last:
                    who = "pyoci" if num is None else "this kernel"
                    checked.warnings.append(f"process.capabilities.{kind}[{i}]: {name} is not "
                                            f"a capability {who} knows; create skips it")
                    if name not in unknown:
                        unknown.append(name)
        if unknown:
            # runc's words: "ignoring unknown or unavailable capabilities".
            checked._log.append(("warning", "process.capabilities: ignoring unknown or "
                                 f"unavailable capabilities {', '.join(unknown)} (not known "
                                 "to pyoci or to this kernel)"))
        allowed = set(caps.permitted or ()) & set(caps.inheritable or ())
        for name in caps.ambient or ():
            if name not in allowed and name not in unknown:
                # runc ignores that EINVAL silently, and `runc spec`, Docker and buildah
                # configs all ask for such ambient sets: only a debug line.
                checked._log.append(("debug", f"process.capabilities.ambient: {name} is not "
                                     "both permitted and inheritable, so the kernel cannot "
                                     "raise it; skipped"))
    for i, m in enumerate(spec.mounts):
        if not m.destination.startswith("/"):
            # config.md says SHOULD be absolute; runc takes it relative to / and warns.
            checked.warnings.append(f"mounts[{i}].destination: {m.destination!r} is not "
                                    f"absolute; create uses /{m.destination}")
            checked._log.append(("warning", f"mount destination {m.destination!r} is not "
                                 f"absolute; using /{m.destination}"))
    flt = checked.seccomp
    if flt is not None and flt.skipped_names:
        from pyoci.executors.seccomp import skipped_warning
        from pyoci.libseccomp import version_string

        checked.warnings += [f"{path}: {name} is not a system call libseccomp "
                             f"{version_string()} knows; create skips it"
                             for path, name in flt.skipped_names]
        checked._log.append(("warning", skipped_warning(flt.skipped_names)))


def check(doc: dict[str, Any], bundle: str | None, *, host: bool = True) -> Checked:
    """The verdict on a config document: :class:`Checked`, or :class:`ConfigError`
    listing every problem. ``host=False`` leaves out what depends on this machine (the
    stage 2 rules and the warnings about this kernel's capabilities and this
    libseccomp's system calls), for a config checked away from where it runs."""
    problems, malformed = _document(doc, bundle, host)
    if malformed:
        raise ConfigError(problems)
    checked = Checked(load_spec(doc), doc)
    if host:
        problems += _host_problems(checked)
    if problems:
        checked.release()
        raise ConfigError(problems)
    _warn(checked, host)
    return checked


def check_console(terminal: bool, console_socket: str | None, has_sink: bool) -> None:
    """The rule that depends on the command line rather than the document (runc's): a
    detached terminal's pty master must go somewhere once the runtime has exited, and a
    --console-socket without a terminal has nothing to receive."""
    if terminal and not console_socket and not has_sink:
        raise PyociError("process.terminal is true: a detached container needs "
                         "--console-socket to receive its terminal")
    if console_socket and not terminal:
        raise PyociError("--console-socket is given but process.terminal is false: "
                         "there is no terminal to send")


def check_process(flag: str, source: str) -> Process:
    """A process.json given to `exec --process`: the config schema's Process definition,
    then the same semantic rules as config.json's ``process`` (paths relative to the
    document, as the schema's are), so exec refuses what create would."""
    from pyoci.config.loader import load_process
    from pyoci.config.schema import read_checked

    doc = read_checked(flag, source, "Process")
    problems = process_doc_problems(doc, "")
    if problems:
        raise ConfigError(problems, source=f"{flag} {source}")
    return load_process(doc)


def check_resources(flag: str, source: str) -> dict[str, Any]:
    """A LinuxResources document given to `update --resources`: the config schema's
    LinuxResources definition, the rules create's ``linux.resources`` goes through."""
    from pyoci.config.schema import read_checked

    return read_checked(flag, source, "LinuxResources")

"""config.md "Linux Process" capabilities; config-linux.md "Seccomp" and "The
Container Process State" (SCMP_ACT_NOTIFY); config-linux.md "User namespace
mappings" (maps, ids seen by the host, file ownership, rootfs untouched)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import select
import shutil
import socket
import stat
import struct
import threading
import time
from pathlib import Path

import pytest

from .harness import assert_gone, make_bundle, short_tmpdir, wait_until

CAP_BITS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6,
    "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21,
    "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
}


def mask(*names: str) -> int:
    bits = 0
    for name in names:
        bits |= 1 << CAP_BITS[name]
    return bits


def cap_status(out: str) -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb lines of /proc/PID/status."""
    return {ln.split(":")[0]: int(ln.split()[1], 16)
            for ln in out.splitlines() if ln.startswith("Cap")}


def run_ok(runtime, bundle, script: str) -> str:
    bundle.sh(script)
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    return res.out


# ---------------------------------------------------------------- capabilities


@pytest.mark.parametrize("uid", [1000, 0], ids=["non-root", "root"])
def test_capability_sets(runtime, bundle, uid):
    """config.md "Linux Process": "effective ... bounding ... inheritable ...
    permitted ... ambient (array of strings, OPTIONAL) the ambient field is
    an array of ambient capabilities that are kept for the process." Five
    different sets.  The program shows them after execve(2), which keeps the
    bounding, inheritable and ambient sets and recomputes the others
    (capabilities(7), "Transformation of capabilities during execve()"): for
    a non-root user and a file without file capabilities permitted =
    effective = ambient; for uid 0 permitted = effective = bounding |
    inheritable | ambient, cut down to the old permitted set because
    noNewPrivileges is set -- i.e. the configured permitted set."""
    sets = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID",
                     "CAP_AUDIT_WRITE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    bundle.config["process"]["capabilities"] = sets
    bundle.config["process"]["user"] = {"uid": uid, "gid": uid}
    bundle.config["process"]["noNewPrivileges"] = True
    got = cap_status(run_ok(runtime, bundle, "grep ^Cap /proc/self/status"))
    bnd, inh, amb, prm = (mask(*sets[k])
                          for k in ("bounding", "inheritable", "ambient", "permitted"))
    after_exec = amb if uid else (bnd | inh | amb) & prm
    want = {"CapBnd": bnd, "CapInh": inh, "CapAmb": amb, "CapPrm": after_exec,
            "CapEff": after_exec}
    assert {k: hex(v) for k, v in got.items()} == {k: hex(v) for k, v in want.items()}


@pytest.mark.parametrize("with_chown", [True, False], ids=["with-CAP_CHOWN", "without"])
def test_capabilities_limit_root(runtime, bundle, with_chown):
    """config.md "Linux Process": "bounding ... the bounding field is an array
    of bounding capabilities that are kept for the process." Even uid 0 can
    chown a file to another owner only if CAP_CHOWN is kept."""
    caps = ["CAP_KILL", *(["CAP_CHOWN"] if with_chown else [])]
    bundle.config["process"]["capabilities"] = {
        k: caps for k in ("bounding", "effective", "permitted")
    }
    out = run_ok(runtime, bundle,
                 "touch /tmp/f; if chown 1234:1234 /tmp/f 2>/dev/null; then echo chowned; "
                 "else echo denied; fi; stat -c %u /tmp/f")
    assert out.split() == (["chowned", "1234"] if with_chown else ["denied", "0"])


@pytest.mark.parametrize("ambient", [True, False], ids=["ambient", "not-ambient"])
def test_ambient_capability_survives_exec_for_non_root(runtime, bundle, ambient):
    """config.md "Linux Process": "ambient (array of strings, OPTIONAL) the
    ambient field is an array of ambient capabilities that are kept for the
    process." For uid 1000, CAP_CHOWN in every set lets the program (after
    execve) chown a file to root only if it is also ambient."""
    caps = ["CAP_CHOWN", "CAP_KILL"]
    sets = {k: caps for k in ("bounding", "effective", "permitted", "inheritable")}
    if ambient:
        sets["ambient"] = ["CAP_CHOWN"]
    bundle.config["process"]["capabilities"] = sets
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = run_ok(runtime, bundle,
                 "touch /tmp/f; if chown 0:0 /tmp/f 2>/dev/null; then echo chowned; "
                 "else echo denied; fi; stat -c %u /tmp/f")
    assert out.split() == (["chowned", "0"] if ambient else ["denied", "1000"])


def test_unknown_capability_is_a_warning(runtime, bundle):
    """config.md "Linux Process": "Any value which cannot be mapped to a
    relevant kernel interface, or cannot be granted otherwise MUST be logged
    as a warning by the runtime. Runtimes SHOULD NOT fail if the container
    configuration requests capabilities that cannot be granted" -- a made-up
    name: the name MUST be reported (stderr or --log). Not failing is only a
    SHOULD NOT: a runtime that refuses a name nobody knows passes if it names
    it; one that runs (runc, pyoci) must drop only that name."""
    bogus = "CAP_CONFORMANCE_BOGUS"
    caps = ["CAP_KILL", bogus]
    bundle.config["process"]["capabilities"] = {
        k: caps for k in ("bounding", "effective", "permitted")
    }
    bundle.sh("grep ^CapBnd /proc/self/status")
    res = runtime.run(bundle)
    assert bogus in res.err + res.log, f"no warning or error naming {bogus}\n{res}"
    if res.rc == 0:
        assert cap_status(res.out)["CapBnd"] == mask("CAP_KILL"), res.out


# ---------------------------------------------------------------- seccomp

MKDIR = ["mkdir", "mkdirat"]  # whichever the libc uses


def seccomp(default: str = "SCMP_ACT_ALLOW", *rules: dict, **extra) -> dict:
    return {"defaultAction": default, "syscalls": list(rules), **extra}


@pytest.mark.parametrize("errno_ret", [errno.EXDEV, None], ids=["errnoRet", "default-EPERM"])
def test_seccomp_errno_rule(runtime, bundle, errno_ret):
    """config-linux.md "Seccomp": syscalls[].errnoRet "the errno return code
    to use. Some actions like SCMP_ACT_ERRNO and SCMP_ACT_TRACE allow to
    specify the errno code to return. ... If not specified its default value
    is EPERM." -- mkdir fails with that errno, other syscalls still work."""
    rule = {"names": MKDIR, "action": "SCMP_ACT_ERRNO"}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    bundle.linux["seccomp"] = seccomp("SCMP_ACT_ALLOW", rule)
    bundle.sh("mkdir /conf-dir; echo rc=$?; touch /conf-file && echo touched")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["rc=1", "touched"], str(res)
    want = os.strerror(errno_ret if errno_ret is not None else errno.EPERM)
    assert want in res.err, str(res)
    assert not (bundle.rootfs / "conf-dir").exists()


def seccomp_resolver():
    """(native arch token, function num -> name) from libseccomp, or None."""
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    resolve = lib.seccomp_syscall_resolve_num_arch
    resolve.argtypes = [ctypes.c_uint32, ctypes.c_int]
    resolve.restype = ctypes.c_void_p  # a malloc'ed string (leaked: a few KiB once)
    arch = lib.seccomp_arch_native
    arch.restype = ctypes.c_uint32

    def lookup(num: int) -> str | None:
        ptr = resolve(arch(), num)
        return None if not ptr else ctypes.string_at(ptr).decode()

    return lookup


def test_seccomp_default_action_and_default_errno(runtime, bundle):
    """config-linux.md "Seccomp": "defaultAction (string, REQUIRED) - the
    default action for seccomp." and "defaultErrnoRet (uint, OPTIONAL) - the
    errno return code to use." -- default SCMP_ACT_ERRNO with EXDEV; every
    syscall libseccomp knows is allowed except mkdir/mkdirat, which fall to
    the default."""
    lookup = seccomp_resolver()
    if lookup is None:
        pytest.skip("libseccomp not found (needed to list the syscall names)")
    names = sorted({n for n in map(lookup, range(1024)) if n and n not in MKDIR})
    assert len(names) > 200, names
    bundle.linux["seccomp"] = seccomp(
        "SCMP_ACT_ERRNO", {"names": names, "action": "SCMP_ACT_ALLOW"},
        defaultErrnoRet=errno.EXDEV)
    bundle.sh("mkdir /conf-dir; echo rc=$?; touch /conf-file && echo touched")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    assert res.out.split() == ["rc=1", "touched"], str(res)
    assert os.strerror(errno.EXDEV) in res.err, str(res)


def test_seccomp_args_rule(runtime, bundle):
    """config-linux.md "Seccomp": "args (array of objects, OPTIONAL) - the
    specific syscall in seccomp" with index, value and op -- kill(2) is
    refused only when argument 1 (the signal) equals SIGUSR2 (SCMP_CMP_EQ);
    SIGUSR1 still goes through."""
    bundle.linux["seccomp"] = seccomp("SCMP_ACT_ALLOW", {
        "names": ["kill"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}],
    })
    out = run_ok(runtime, bundle,
                 "trap '' USR1 USR2; "
                 "if kill -USR1 $$; then echo usr1-sent; else echo usr1-refused; fi; "
                 "if kill -USR2 $$ 2>/dev/null; then echo usr2-sent; else echo usr2-refused; fi")
    assert out.split() == ["usr1-sent", "usr2-refused"]


def test_seccomp_kill_process(runtime, bundle):
    """config-linux.md "Seccomp": action "SCMP_ACT_KILL_PROCESS" -- a process
    calling mkdir is killed by SIGSYS (its parent shell sees status 128+31)."""
    bundle.linux["seccomp"] = seccomp("SCMP_ACT_ALLOW",
                                      {"names": MKDIR, "action": "SCMP_ACT_KILL_PROCESS"})
    out = run_ok(runtime, bundle, "sh -c 'mkdir /conf-dir'; echo status=$?")
    assert out.split() == ["status=159"], out
    assert not (bundle.rootfs / "conf-dir").exists()


@pytest.mark.parametrize("what", ["unknown-action", "unknown-op"])
def test_seccomp_invalid_values_fail(runtime, bundle, what):
    """config-linux.md "Seccomp": "The actions, architectures, and operators
    are strings that match the definitions in seccomp.h from libseccomp and
    are translated to corresponding values." A value that cannot be
    translated cannot give the filter config.json asks for, and runtime.md
    "Create": "If the runtime cannot create the container as specified in
    config.json, it MUST generate an error and a new container MUST NOT be
    created." (Syscall names are not in that sentence: see the next case.)"""
    rule = {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
    if what == "unknown-action":
        rule["action"] = "SCMP_ACT_CONFORMANCE_BOGUS"
    else:
        rule["args"] = [{"index": 0, "value": 1, "op": "SCMP_CMP_CONFORMANCE_BOGUS"}]
    bundle.linux["seccomp"] = seccomp("SCMP_ACT_ALLOW", rule)
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"{what} accepted\n{res}"
    assert_gone(runtime, bundle.cid)


def test_seccomp_unknown_syscall_fails_or_is_skipped(runtime, bundle):
    """config-linux.md "Seccomp": syscalls[].names "the names of the
    syscalls" -- the spec does not say what a name the runtime's libseccomp
    does not know means. runc and crun skip such names (engines' default
    profiles name calls newer than many hosts' libseccomp: Docker's and
    podman's name mseal), the strict reading refuses the config (runtime.md
    "Create"). Either is accepted; a runtime that skips the name must still
    apply the rest of the rule: mkdir, named beside it, is refused."""
    rule = {"names": ["conformance_no_such_syscall", *MKDIR], "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EXDEV}
    bundle.linux["seccomp"] = seccomp("SCMP_ACT_ALLOW", rule)
    bundle.sh("mkdir /conf-dir; echo rc=$?; touch /conf-file && echo touched")
    res = runtime.run(bundle)
    if res.rc != 0 and "rc=" not in res.out:
        assert "conformance_no_such_syscall" in res.err + res.log, str(res)
        assert_gone(runtime, bundle.cid)
        return
    assert res.out.split() == ["rc=1", "touched"], str(res)
    assert os.strerror(errno.EXDEV) in res.err, str(res)


@pytest.mark.runc_differs("runc 1.1 accepts errnoRet/defaultErrnoRet on actions that "
                          "take no errno")
@pytest.mark.parametrize("where", ["rule", "default"])
def test_seccomp_errno_for_action_without_errno_fails(runtime, bundle, where):
    """config-linux.md "Seccomp": errnoRet / defaultErrnoRet: "When the
    action doesn't support an errno, the runtime MUST print and error and
    fail." -- an errno on SCMP_ACT_KILL_PROCESS (rule) or on a default
    SCMP_ACT_ALLOW. (runc 1.1 accepts both without a word; the spec supports
    the error.)"""
    if where == "rule":
        bundle.linux["seccomp"] = seccomp("SCMP_ACT_ALLOW", {
            "names": MKDIR, "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": errno.EXDEV})
    else:
        bundle.linux["seccomp"] = seccomp(
            "SCMP_ACT_ALLOW", {"names": MKDIR, "action": "SCMP_ACT_ERRNO"},
            defaultErrnoRet=errno.EXDEV)
    res = runtime.create(bundle, check=False)
    assert not res.ok, f"errno on an action without one accepted\n{res}"
    assert res.err.strip() or res.log.strip(), f"no error printed\n{res}"
    assert_gone(runtime, bundle.cid)


# SECCOMP_IOCTL_NOTIF_RECV / _SEND: _IOWR('!', 0, struct seccomp_notif (80 bytes)) and
# _IOWR('!', 1, struct seccomp_notif_resp (24 bytes)), from <linux/seccomp.h>.
NOTIF_RECV = 0xC0502100
NOTIF_SEND = 0xC0182101
NOTIF_SIZE = 80


class SeccompAgent:
    """A seccomp agent on a unix socket: takes one connection, reads the
    container process state (JSON payload, fds via SCM_RIGHTS) until the
    runtime closes it, then answers every notification on the received
    seccomp fd with ``error`` until stopped."""

    def __init__(self, path: Path, error: int) -> None:
        self.path = path
        self.error = error
        self.message: bytes = b""
        self.fds: list[int] = []
        self.closed_by_runtime = False
        self.handled = 0
        self.failure: str | None = None
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn = None
            while conn is None and not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    conn, _ = self.sock.accept()
            if conn is None:
                return
            with conn:
                conn.settimeout(10)
                while True:
                    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 8)
                    self.fds += fds
                    if not data:
                        self.closed_by_runtime = True
                        break
                    self.message += data
            if self.fds:
                self._serve(self.fds[0])
        except Exception as exc:  # reported by the case
            self.failure = repr(exc)

    def _serve(self, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not self.stop.is_set():
            events = poller.poll(100)
            if not events:
                continue
            if events[0][1] & (select.POLLHUP | select.POLLERR):
                return  # the filtered processes are gone
            buf = bytearray(NOTIF_SIZE)
            try:
                fcntl.ioctl(fd, NOTIF_RECV, buf, True)
            except OSError:
                continue
            (notif_id,) = struct.unpack_from("=Q", buf, 0)
            resp = bytearray(struct.pack("=QqiI", notif_id, 0, -self.error, 0))
            with contextlib.suppress(OSError):  # the caller may have died
                fcntl.ioctl(fd, NOTIF_SEND, resp, True)
                self.handled += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def agent_dir():
    path = short_tmpdir("oci-agent-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_seccomp_notify_listener(runtime, bundle, agent_dir):
    """config-linux.md "Seccomp": listenerPath "specifies the path of UNIX
    domain socket over which the runtime will send the container process
    state data structure when the SCMP_ACT_NOTIFY action is used." ... "The
    runtime MUST send exactly one container process state per connection.
    The connection MUST NOT be reused and it MUST be closed after sending a
    seccomp state." ... "seccompFd (string, REQUIRED) is the seccomp file
    descriptor returned by the seccomp syscall." listenerMetadata "will be
    sent as the metadata field". "The Container Process State": ociVersion,
    fds, pid ("the container process ID, as seen by the runtime"), metadata,
    state. The received fd works: the agent answers mkdir with EXDEV."""
    agent = SeccompAgent(agent_dir / "agent.sock", errno.EXDEV)
    try:
        bundle.linux["seccomp"] = seccomp(
            "SCMP_ACT_ALLOW", {"names": MKDIR, "action": "SCMP_ACT_NOTIFY"},
            listenerPath=str(agent.path), listenerMetadata="conformance-metadata")
        bundle.mount_out().sh(
            "mkdir /conf-dir 2>/out/err; echo rc=$? > /out/rc; "
            "[ -d /conf-dir ] && echo made >> /out/rc; true")
        runtime.create(bundle)
        pid = runtime.state(bundle.cid)["pid"]
        runtime.start(bundle.cid)
        assert runtime.wait_status(bundle.cid, "stopped") == "stopped"
        assert wait_until(lambda: agent.closed_by_runtime), "connection not closed"
    finally:
        agent.close()
    assert agent.failure is None, agent.failure
    msg = json.loads(agent.message)
    assert isinstance(msg.get("ociVersion"), str), msg
    assert msg.get("fds") == ["seccompFd"], msg
    assert len(agent.fds) == 1, agent.fds
    assert msg.get("pid") == pid, (msg, pid)
    assert msg.get("metadata") == "conformance-metadata", msg
    state = msg.get("state")
    assert isinstance(state, dict), msg
    assert state.get("id") == bundle.cid, state
    assert os.path.realpath(state.get("bundle", "")) == os.path.realpath(bundle.path), state
    assert state.get("pid") == pid, state
    assert state.get("status") in ("creating", "created", "running"), state
    assert (bundle.out / "rc").read_text().split() == ["rc=1"]
    assert os.strerror(errno.EXDEV) in (bundle.out / "err").read_text()
    assert agent.handled >= 1


def test_seccomp_notify_listener_unreachable_fails(runtime, bundle, agent_dir):
    """config-linux.md "Seccomp": listenerPath: "If sending to this socket
    fails, the runtime MUST generate an error." -- nobody listens there:
    create or start fails and the program never runs."""
    bundle.linux["seccomp"] = seccomp(
        "SCMP_ACT_ALLOW", {"names": MKDIR, "action": "SCMP_ACT_NOTIFY"},
        listenerPath=str(agent_dir / "nobody.sock"))
    bundle.mount_out().sh("echo ran > /out/ran")
    res = runtime.create(bundle, check=False)
    if res.ok:
        res = runtime.start(bundle.cid, check=False)
    assert not res.ok, f"create and start succeeded without a listener\n{res}"
    time.sleep(0.2)
    assert not (bundle.out / "ran").exists(), "the program ran"


# ---------------------------------------------------------------- user namespaces


@pytest.fixture
def userns_bundle(rootfs_src):
    """A bundle under a world-traversable directory (processes of a user
    namespace cannot traverse pytest's 0700 temp directories), with a user
    namespace, and /out (mode 0777) bind-mounted."""
    base = short_tmpdir("oci-userns-")
    os.chmod(base, 0o755)
    bundle = make_bundle(base, rootfs_src)
    os.chmod(bundle.path, 0o755)
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.out.mkdir()
    os.chmod(bundle.out, 0o777)
    (bundle.rootfs / "out").mkdir()  # the mapped root cannot create it in a host-owned dir
    bundle.add_mount("/out", str(bundle.out), "bind", ["rbind", "rw"])
    yield bundle
    shutil.rmtree(base, ignore_errors=True)


UID_MAPS = [{"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 1000, "hostID": 201000, "size": 10}]
GID_MAPS = [{"containerID": 0, "hostID": 300000, "size": 2000}]


def host_ids(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(status.split("Uid:")[1].split()[0])
    gid = int(status.split("Gid:")[1].split()[0])
    return uid, gid


def triples(text: str) -> list[list[int]]:
    return [[int(x) for x in ln.split()] for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize("user,host", [((0, 0), (100000, 300000)),
                                       ((1003, 7), (201003, 300007))],
                         ids=["root", "second-range"])
def test_user_namespace_maps_as_configured(runtime, userns_bundle, user, host):
    """config-linux.md "User namespace mappings": "uidMappings ... describes
    the user namespace uid mappings from the host to the container";
    containerID "is the starting uid/gid in the container", hostID "is the
    starting uid/gid on the host to be mapped to containerID", size "is the
    number of ids to be mapped". Two uid ranges and a different gid range
    show in /proc/self/uid_map and gid_map; the process runs as
    process.user inside and as the mapped ids on the host."""
    bundle = userns_bundle
    bundle.linux["uidMappings"] = UID_MAPS
    bundle.linux["gidMappings"] = GID_MAPS
    bundle.config["process"]["user"] = {"uid": user[0], "gid": user[1]}
    bundle.sh("cat /proc/self/uid_map > /out/uid_map; cat /proc/self/gid_map > /out/gid_map; "
              "echo $(id -u) $(id -g) > /out/ids; "
              "while [ ! -e /out/go ]; do sleep 0.05; done")
    runtime.create(bundle)
    runtime.start(bundle.cid)
    assert wait_until(lambda: (bundle.out / "ids").exists()
                      and (bundle.out / "ids").read_text().strip())
    seen_by_host = host_ids(runtime.state(bundle.cid)["pid"])
    (bundle.out / "go").touch()
    assert triples((bundle.out / "uid_map").read_text()) == [
        [m["containerID"], m["hostID"], m["size"]] for m in UID_MAPS]
    assert triples((bundle.out / "gid_map").read_text()) == [
        [m["containerID"], m["hostID"], m["size"]] for m in GID_MAPS]
    assert (bundle.out / "ids").read_text().split() == [str(user[0]), str(user[1])]
    assert seen_by_host == host


def test_user_namespace_file_ownership_on_host(runtime, userns_bundle):
    """config-linux.md "User namespace mappings": hostID "is the starting
    uid/gid on the host to be mapped to containerID" -- files the mapped
    root creates in a bind mount belong to the mapped host ids, and chown
    to container ids 5:6 gives host ids hostID+5, hostID+6."""
    bundle = userns_bundle
    bundle.linux["uidMappings"] = UID_MAPS
    bundle.linux["gidMappings"] = GID_MAPS
    caps = ["CAP_CHOWN", "CAP_KILL"]
    bundle.config["process"]["capabilities"] = {
        k: caps for k in ("bounding", "effective", "permitted")
    }
    bundle.sh("touch /out/f && mkdir /out/d && touch /out/g && chown 5:6 /out/g")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    owners = {n: (os.stat(bundle.out / n).st_uid, os.stat(bundle.out / n).st_gid)
              for n in ("f", "d", "g")}
    assert owners == {"f": (100000, 300000), "d": (100000, 300000), "g": (100005, 300006)}


def test_user_namespace_rootfs_ownership_unchanged(runtime, userns_bundle):
    """config-linux.md "User namespace mappings": "The runtime SHOULD NOT
    modify the ownership of referenced filesystems to realize the mapping."
    -- the rootfs (owned by host root) keeps its owners after a run."""
    bundle = userns_bundle
    bundle.linux["uidMappings"] = UID_MAPS
    bundle.linux["gidMappings"] = GID_MAPS
    paths = [bundle.rootfs, bundle.rootfs / "bin" / "busybox", bundle.rootfs / "etc",
             bundle.rootfs / "etc" / "passwd", bundle.rootfs / "tmp"]
    before = {p: (p.lstat().st_uid, p.lstat().st_gid, stat.S_IMODE(p.lstat().st_mode))
              for p in paths}
    bundle.sh("ls -ln / > /out/ls")
    res = runtime.run(bundle)
    assert res.rc == 0, str(res)
    after = {p: (p.lstat().st_uid, p.lstat().st_gid, stat.S_IMODE(p.lstat().st_mode))
             for p in paths}
    assert after == before
    # inside, host root is unmapped: shown as the overflow id, not as root
    etc = next(ln for ln in (bundle.out / "ls").read_text().splitlines() if ln.endswith(" etc"))
    assert etc.split()[2] != "0", etc

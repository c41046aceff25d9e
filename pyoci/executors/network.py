"""Networking beyond loopback: ``linux.netDevices`` and pyoci's opt-in CNI network.

Loopback of a new network namespace is brought up by the init itself with one ioctl
(pyoci/init.py). ``linux.netDevices`` needs netlink and so pyroute2, which costs ~250 ms
to import: it is imported only inside the functions that talk netlink, for a container
that has netDevices. The opt-in network (the ``org.pyoci.network`` annotation) is the
field's CNI plugins' work (pyoci/executors/cni.py: bridge, host-local...), as engines do
it; pyoci neither plumbs bridges nor hands out addresses itself, and imports no pyroute2
for it.

Where and when: the *runtime* (the `pyoci create` parent, still in the caller's network
namespace) does the work, once the init exists (its network namespace is
``/proc/<init>/ns/net``) and before it is told to "go". So every device is in place before
the init's own setup, before the prestart/createRuntime hooks (which may expect the
network, runtime.md "Lifecycle" step 7) and long before the user's process; runc 1.2+ also
moves netDevices from the runtime side during the init's start-up, before the user's
program can run. For netDevices the parent opens one rtnetlink socket in each namespace
(:class:`Session`: a netlink socket stays bound to the namespace it was created in, so a
brief setns() of the single-threaded parent is enough); for the CNI network it runs the
plugins, which enter the container's namespace themselves (CNI_NETNS).

Kernel rule that shapes :func:`move_devices`: a RTM_SETLINK carrying both a target
namespace and IFLA_IFNAME first moves the device (keeping its name unless that name is
taken there) and only then renames it. A rename that fails (EEXIST) leaves the device
moved under its old name. So names are checked in the container beforehand (the spec's
"MUST generate an error", except for ``%d`` templates, which the kernel resolves), and a
failure after the move is detected by comparing the container's link list before and
after, then rolled back. Moving a device drops its addresses: the permanent, global-scope
ones (IFA_F_PERMANENT, RT_SCOPE_UNIVERSE, spec "MUST preserve") are read before the move
and added again inside, then the link is set up ("MUST set ... up").

At delete nothing is moved back (config-linux.md: the runtime "MUST NOT attempt to move
the interface out of the namespace before deletion"; the kernel returns physical devices
to the initial namespace and destroys virtual ones when the namespace goes). Only a
*failed create* moves its devices back, before the init is killed: no container exists
then, and the user keeps the interface they lent (a veth would otherwise be destroyed).
"""

from __future__ import annotations

import fcntl
import os

from pyoci.errors import PyociError

# Every create imports this module (loopback, netDevices): heavier modules -- ipaddress,
# pyroute2, the CNI client -- are imported where the network or netlink needs them.
TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

    from pyoci.config.model import NetDevice, Spec

BRIDGE_ANNOTATION = "org.pyoci.network"
SUBNET_ANNOTATION = "org.pyoci.network.subnet"
#: Added to the container's state annotations (`pyoci state`, hooks' stdin): its address.
ADDRESS_ANNOTATION = "org.pyoci.network.address"
DEFAULT_SUBNET = "10.88.0.0/16"
#: Below --root; '@' is not allowed in container ids, so `list`/`delete` never take it
#: for a container.
NETWORK_DIR = "@network"
CONTAINER_IFNAME = "eth0"

_CLONE_NEWNET = 0x40000000
_RT_SCOPE_UNIVERSE = 0
_IFA_F_PERMANENT = 0x80
_IFF_UP = 0x1
_IFNAMSIZ = 16


# --- validation (before anything exists; no netlink) -----------------------------------

def wanted(spec: Spec) -> bool:
    """Does this container need netlink (and so pyroute2) at all?"""
    return bool(spec.linux.net_devices) or BRIDGE_ANNOTATION in spec.annotations


def ifname_problem(name: str) -> str | None:
    """Why the kernel would refuse ``name`` as an interface name (dev_valid_name()):
    1-15 bytes, not "." or "..", no '/', ':' or whitespace."""
    raw = name.encode()
    if not raw:
        return "is empty"
    if len(raw) >= _IFNAMSIZ:
        return f"is longer than {_IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return "cannot be '.' or '..'"
    if any(ch in name for ch in "/:") or any(ch.isspace() for ch in name):
        return "contains '/', ':' or whitespace"
    return None


class NetworkRequest:
    """What the ``org.pyoci.network*`` annotations ask for, resolved and validated: the
    conflist to run, and whether it is pyoci's built-in one (whose host-local data dir is
    filled in at setup, under --root)."""
    __slots__ = ("conflist", "builtin", "search")

    def __init__(self, conflist: dict[str, Any], builtin: bool, search: str) -> None:
        self.conflist = conflist
        self.builtin = builtin
        self.search = search


#: The former name (config/check.py refers to it).
BridgeRequest = NetworkRequest


def check(spec: Spec) -> NetworkRequest | None:
    """Config errors, raised before create makes anything: netDevices without a network
    namespace of the container's own, bad or clashing names, a bad bridge annotation."""
    linux = spec.linux
    netns = linux.namespace("network")
    if linux.net_devices:
        if netns is None:
            # Moving into the runtime's own namespace would be a no-op at best.
            raise PyociError("linux.netDevices: the container has no network namespace of "
                             "its own (add a \"network\" entry to linux.namespaces)")
        seen: dict[str, str] = {}
        for dev in linux.net_devices:
            where = f"linux.netDevices.{dev.host_name}"
            why = ifname_problem(dev.host_name)
            if why:
                raise PyociError(f"{where}: the host interface name {dev.host_name!r} {why}")
            why = ifname_problem(dev.target)
            if why:
                raise PyociError(f"{where}.name: {dev.target!r} {why}")
            if dev.target.count("%") > (1 if dev.target.endswith("%d") else 0):
                raise PyociError(f"{where}.name: {dev.target!r}: only one '%d' template, "
                                 "at the end, is allowed")
            if "%d" not in dev.target and dev.target in seen:
                raise PyociError(f"{where}.name: {dev.target!r} is also the name of "
                                 f"linux.netDevices.{seen[dev.target]} in the container")
            seen[dev.target] = dev.host_name
    if BRIDGE_ANNOTATION not in spec.annotations:
        return None
    where = f"annotations.{BRIDGE_ANNOTATION}"
    if netns is None or netns.path:
        raise PyociError(f"{where}: bridge networking needs a new network namespace (a "
                         "\"network\" entry without a path in linux.namespaces)")
    if any(d.target == CONTAINER_IFNAME for d in linux.net_devices):
        raise PyociError(f"{where}: the network's interface is {CONTAINER_IFNAME} in the "
                         "container, and linux.netDevices already uses that name")
    return resolve(spec.annotations[BRIDGE_ANNOTATION],
                   spec.annotations.get(SUBNET_ANNOTATION))


def resolve(value: str, subnet: str | None) -> NetworkRequest:
    """The annotation's value names the network, as an engine's ``--network`` does:

    - an absolute path: that conflist (or single-plugin .conf) file;
    - else a network name, looked up as libcni does in the conf dir (``$NETCONFPATH``,
      default /etc/cni/net.d);
    - else, when no such network exists, pyoci's built-in one (:func:`cni.builtin`): a
      bridge of that name, host-local addresses from ``org.pyoci.network.subnet``
      (default 10.88.0.0/16) -- what the annotation always meant, so configs written
      for pyoci's former bridge code work unchanged.

    The plugins must all be in ``$CNI_PATH`` (default /usr/lib/cni:/opt/cni/bin)."""
    from pyoci.executors import cni

    where = f"annotations.{BRIDGE_ANNOTATION}"
    search = cni.plugin_path()
    conflist = None
    if value.startswith("/"):
        conflist = cni.read(value, where)
    elif value:
        conflist = cni.find(value, cni.conf_dir())
    if conflist is not None:
        if subnet is not None:
            raise PyociError(f"annotations.{SUBNET_ANNOTATION}: only applies to pyoci's "
                             f"built-in network; network {conflist['name']!r} "
                             f"({value}) sets its own addresses")
        cni.check_plugins(conflist, search, where)
        return NetworkRequest(conflist, False, search)
    why = ifname_problem(value)
    if why:
        raise PyociError(f"{where}: bridge name {value!r} {why} (and no CNI network of "
                         f"that name is configured in {cni.conf_dir()})")
    net = parse_subnet(subnet if subnet is not None else DEFAULT_SUBNET)
    conflist = cni.builtin(value, value, str(net), "")
    cni.check_plugins(conflist, search, where)
    return NetworkRequest(conflist, True, search)


def parse_subnet(text: str) -> Any:
    """An IPv4 network with room for the bridge and at least one container (/30 or
    wider), given without host bits (``10.88.0.0/16``, not ``10.88.0.1/16``)."""
    import ipaddress

    where = f"annotations.{SUBNET_ANNOTATION}"
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise PyociError(f"{where}: {text!r} is not an IPv4 subnet such as 10.88.0.0/16 "
                         f"({exc})") from None
    if "/" not in text:
        raise PyociError(f"{where}: {text!r} has no prefix length (e.g. 10.88.0.0/16)")
    if net.prefixlen > 30:
        raise PyociError(f"{where}: {text} is too small: it needs room for the bridge's "
                         "address and at least one container (/30 or wider)")
    return net


# --- netlink session --------------------------------------------------------------------

def _reason(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code).lower()
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class Session:
    """One rtnetlink socket in the runtime's namespace (``host``) and one in the
    container's (``ct``), plus an fd of each namespace for moves."""

    def __init__(self, init_pid: int) -> None:
        from pyroute2 import IPRoute

        from pyoci import syscalls

        self.host_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.ct_fd = -1
        self.host: Any = None
        self.ct: Any = None
        try:
            self.ct_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            here, there = os.fstat(self.host_fd), os.fstat(self.ct_fd)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                # Moving "into" our own namespace would only rename (and then lose track
                # of) the runtime's own interfaces.
                raise PyociError("linux.netDevices: the container's network namespace is the "
                                 "runtime's own; devices can only be moved into another one")
            self.host = IPRoute()
            syscalls.setns(self.ct_fd, _CLONE_NEWNET)
            try:
                self.ct = IPRoute()
            finally:
                # Back at once: everything else the parent does belongs to the host side.
                syscalls.setns(self.host_fd, _CLONE_NEWNET)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for sock in (self.host, self.ct):
            if sock is not None:
                sock.close()
        self.host = self.ct = None
        for fd in (self.host_fd, self.ct_fd):
            if fd >= 0:
                os.close(fd)
        self.host_fd = self.ct_fd = -1


def _links(ipr: Any) -> dict[int, str]:
    return {msg["index"]: msg.get_attr("IFLA_IFNAME") for msg in ipr.get_links()}


def _link(ipr: Any, name: str) -> Any | None:
    found = ipr.link_lookup(ifname=name)
    return ipr.get_links(found[0])[0] if found else None


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def kept_addresses(ipr: Any, index: int) -> list[dict[str, Any]]:
    """The addresses the spec says survive the move: IFA_F_PERMANENT, RT_SCOPE_UNIVERSE,
    any family. The 32-bit IFA_FLAGS attribute, when present, supersedes the 8-bit
    ifa_flags of the header."""
    out = []
    for msg in ipr.get_addr(index=index):
        flags = msg.get_attr("IFA_FLAGS")
        flags = msg["flags"] if flags is None else flags
        if msg["scope"] != _RT_SCOPE_UNIVERSE or not flags & _IFA_F_PERMANENT:
            continue
        addr: dict[str, Any] = {"family": msg["family"], "prefixlen": msg["prefixlen"],
                                "address": msg.get_attr("IFA_ADDRESS")}
        local = msg.get_attr("IFA_LOCAL")
        if local and local != addr["address"]:  # point-to-point: ADDRESS is the peer
            addr["local"] = local
        broadcast = msg.get_attr("IFA_BROADCAST")
        if broadcast:
            addr["broadcast"] = broadcast
        out.append(addr)
    return out


def _add_addresses(ipr: Any, index: int, addrs: list[dict[str, Any]]) -> None:
    for a in addrs:
        ipr.addr("add", index=index, **a)


class Moved:
    """A device this create moved in, with what it takes to put it back."""
    __slots__ = ("host_name", "index", "name", "addresses", "was_up")

    def __init__(self, host_name: str, index: int, name: str,
                 addresses: list[dict[str, Any]], was_up: bool) -> None:
        self.host_name = host_name
        self.index = index  # in the container's namespace
        self.name = name
        self.addresses = addresses
        self.was_up = was_up


def _move_one(sess: Session, dev: NetDevice) -> Moved:
    where = f"linux.netDevices.{dev.host_name}"
    link = _link(sess.host, dev.host_name)
    if link is None:
        raise PyociError(f"{where}: network device {dev.host_name!r} does not exist in the "
                         "runtime's network namespace")
    before = _links(sess.ct)
    if "%d" not in dev.target and dev.target in before.values():
        raise PyociError(f"{where}: a network device named {dev.target!r} already exists in "
                         "the container's network namespace")
    addresses = kept_addresses(sess.host, link["index"])
    was_up = bool(link["flags"] & _IFF_UP)
    try:
        sess.host.link("set", index=link["index"], net_ns_fd=sess.ct_fd, ifname=dev.target)
        failure: BaseException | None = None
    except Exception as exc:  # noqa: BLE001 - pyroute2 raises NetlinkError and others
        failure = exc
    arrived = {i: n for i, n in _links(sess.ct).items() if i not in before}
    if len(arrived) != 1:
        raise PyociError(f"{where}: cannot move network device {dev.host_name!r} into the "
                         f"container: {_reason(failure) if failure else 'it did not arrive'}")
    index, name = next(iter(arrived.items()))
    moved = Moved(dev.host_name, index, name, addresses, was_up)
    if failure is not None:
        # Moved, but not renamed: undo this one here, the caller undoes the others.
        _move_back(sess, moved)
        raise PyociError(f"{where}: cannot rename network device {dev.host_name!r} to "
                         f"{dev.target!r} in the container: {_reason(failure)}")
    try:
        _add_addresses(sess.ct, index, addresses)
        sess.ct.link("set", index=index, state="up")
    except Exception as exc:  # noqa: BLE001
        _move_back(sess, moved)
        raise PyociError(f"{where}: cannot configure network device {name!r} in the "
                         f"container: {_reason(exc)}") from None
    return moved


def move_devices(sess: Session, devices: tuple[NetDevice, ...]) -> list[Moved]:
    """config-linux.md "Network Devices": move, rename, keep addresses, set up. All or
    nothing: on a failure every device already moved goes back before the error."""
    moved: list[Moved] = []
    try:
        for dev in devices:
            moved.append(_move_one(sess, dev))
    except BaseException:
        move_back(sess, moved)
        raise
    return moved


def _move_back(sess: Session, m: Moved) -> None:
    sess.ct.link("set", index=m.index, net_ns_fd=sess.host_fd, ifname=m.host_name)
    link = _link(sess.host, m.host_name)
    if link is None:
        return
    try:
        _add_addresses(sess.host, link["index"], m.addresses)
    except Exception:  # noqa: BLE001,S110 - an address that came back by itself
        pass
    if m.was_up:
        sess.host.link("set", index=link["index"], state="up")


def move_back(sess: Session, moved: list[Moved]) -> None:
    """Best effort, newest first; what cannot go back is named in a warning."""
    from pyoci import log

    for m in reversed(moved):
        try:
            _move_back(sess, m)
        except Exception as exc:  # noqa: BLE001
            log.warn(f"linux.netDevices.{m.host_name}: could not move {m.name!r} back out "
                     f"of the container: {_reason(exc)}")


# --- opt-in bridge: CNI plugins ----------------------------------------------------------

class _network_lock:  # noqa: N801 - used as a context manager, like a function
    """flock on ``<root>/@network/cni.lock`` around every ADD and DEL of this root. The
    plugins lock their own data (host-local) and tolerate a bridge made concurrently, but
    a chain of plugins is not atomic: one at a time per root is cheap and keeps a DEL
    from interleaving with an ADD of the same network. The file stays (unlinking a lock
    others may wait on lets a newcomer lock a fresh file at the same time)."""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, NETWORK_DIR)
        self.fd = -1

    def __enter__(self) -> None:
        os.makedirs(self.dir, 0o700, exist_ok=True)
        self.fd = os.open(os.path.join(self.dir, "cni.lock"),
                          os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def host_local_dir(root: str) -> str:
    """host-local's data dir for pyoci's built-in network: one directory per network name
    (the plugin's own layout) beneath ``<root>/@network``, which no container id can take
    ('@' is not allowed in ids)."""
    return os.path.join(os.path.abspath(root), NETWORK_DIR, "host-local")


def _fd_path(fd: int) -> str:
    """A path to the namespace behind our own fd, for a plugin to open: unlike
    /proc/<init>/ns/net it cannot name another process's namespace if the init died and
    its pid was reused, and it keeps the namespace (and the veth in it) alive until the
    plugin has deleted the interface."""
    return f"/proc/{os.getpid()}/fd/{fd}"


def attach_network(root: str, cid: str, req: NetworkRequest, netns_fd: int,
                   record: Any) -> dict[str, Any]:
    """CNI ADD of the container's network namespace (held open as ``netns_fd``) to the
    requested network; returns the record kept in state.json (conflist, CNI container id,
    result). The record is saved before the first plugin runs, so that `delete --force`
    can DEL a create that died half-way; a failed ADD is DELeted here at once (the spec:
    the runtime should DEL after a failed ADD) and the error raised."""
    from pyoci import log
    from pyoci.executors import cni

    conflist = req.conflist
    if req.builtin:
        plugin = dict(conflist["plugins"][0])
        plugin["ipam"] = dict(plugin["ipam"], dataDir=host_local_dir(root))
        conflist = dict(conflist, plugins=[plugin])
    att = cni.Attachment(conflist, cid, CONTAINER_IFNAME, req.search)
    where = f"annotations.{BRIDGE_ANNOTATION}"
    record(att.record())
    with _network_lock(root):
        try:
            result = att.add(_fd_path(netns_fd), where)
        except BaseException:
            try:
                att.delete(_fd_path(netns_fd), where)
            except Exception as exc:  # noqa: BLE001 - the ADD's error comes first
                log.warn(f"could not undo the failed network setup: {exc}")
            else:
                record(None)
            raise
    if not cni.addresses(result, CONTAINER_IFNAME):
        # Delete and fail: a network without an address is not what the user asked for.
        with _network_lock(root):
            att.delete(_fd_path(netns_fd), where)
        record(None)
        raise PyociError(f"{where}: network {conflist['name']!r} gave the container no "
                         "address")
    rec = att.record()
    record(rec)
    return rec


def address_of(rec: dict[str, Any]) -> str:
    """For the ``org.pyoci.network.address`` annotation: the container's addresses in
    the result (CIDR; more than one, e.g. IPv4 and IPv6, separated by commas)."""
    from pyoci.executors import cni

    return ",".join(cni.addresses(rec.get("result") or {}, rec.get("ifname", CONTAINER_IFNAME)))


def open_netns(pid: int) -> int:
    """An fd of ``pid``'s network namespace, or -1 when it is gone."""
    try:
        return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def release(root: str, cid: str, rec: dict[str, Any], netns_fd: int = -1) -> None:
    """CNI DEL (delete, a failed create): the same conflist, container id and interface
    as the ADD, its result as prevResult. With ``netns_fd`` (the namespace still held)
    the plugins remove the container's interface -- and with it the veth -- at once;
    without, CNI_NETNS is empty (the spec allows it for DEL) and they release what they
    hold on the host side (host-local's address), the veth going with the namespace.
    Idempotent, as the spec requires of DEL. Raises what failed."""
    from pyoci.executors import cni

    if "cni" not in rec:
        from pyoci import log

        # Made by pyoci's former bridge code: its veth went with the namespace.
        log.warn(f"container {cid!r}: its network record predates CNI networking; "
                 "nothing to release")
        return
    att = cni.Attachment.from_record(rec)
    with _network_lock(root):
        att.delete(_fd_path(netns_fd) if netns_fd >= 0 else "",
                   f"annotations.{BRIDGE_ANNOTATION}")


# --- what create calls ------------------------------------------------------------------

class Attached:
    """What :func:`setup` did for one create, so a later failure of that create can undo
    it while the init (and so its namespace) still exists."""

    def __init__(self, root: str, cid: str) -> None:
        self.root = root
        self.cid = cid
        self.moved: list[Moved] = []
        self.bridge: dict[str, Any] | None = None
        self.init_pid = 0
        self.record: Any = None
        # Kept open while devices are lent: its fd of the container's network namespace
        # keeps that namespace (and the devices in it) alive even when the init exits on
        # its own after reporting a failed step -- otherwise a veth moved in is destroyed
        # with the namespace before it can be moved back.
        self.session: Session | None = None
        # The same for the CNI network: DEL is run through this fd, never through a
        # /proc/<pid> path that might name someone else's namespace by then.
        self.netns_fd = -1

    def undo(self) -> None:
        """DEL the CNI network and move the devices back out. When the DEL succeeds the
        record in state.json is cleared; else create's undo (or `delete --force`) tries
        again from it."""
        from pyoci import log

        if self.bridge is not None:
            rec, self.bridge = self.bridge, None
            try:
                release(self.root, self.cid, rec, self.netns_fd)
            except Exception as exc:  # noqa: BLE001 - the create's own error comes first
                log.warn(f"could not release the network of {self.cid!r}: {exc}")
            else:
                self.record(None)
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1
        sess, self.session = self.session, None
        if not self.moved:
            if sess is not None:
                sess.close()
            return
        try:
            if sess is None:
                sess = Session(self.init_pid)
        except Exception as exc:  # noqa: BLE001 - the namespace is gone already
            log.warn(f"linux.netDevices: could not move devices back: {_reason(exc)}")
            return
        try:
            move_back(sess, self.moved)
        finally:
            self.moved = []
            sess.close()

    def close(self) -> None:
        """Create succeeded: the devices stay in the container; let go of the namespace."""
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1


def setup(root: str, cid: str, spec: Spec, init_pid: int, req: NetworkRequest | None,
          record: Any) -> Attached:
    """Move the netDevices in (netlink, pyroute2), then attach the CNI network (plugins;
    no pyroute2). ``record(dict | None)`` keeps the network record in state.json."""
    done = Attached(root, cid)
    done.init_pid = init_pid
    done.record = record
    sess = Session(init_pid) if spec.linux.net_devices else None
    try:
        if sess is not None:
            done.moved = move_devices(sess, spec.linux.net_devices)
        if req is not None:
            done.netns_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            done.bridge = attach_network(root, cid, req, done.netns_fd, record)
    except BaseException:
        if done.netns_fd >= 0:
            os.close(done.netns_fd)
            done.netns_fd = -1
        if sess is not None:
            try:
                move_back(sess, done.moved)
            finally:
                done.moved = []
                sess.close()
        raise
    if done.moved:
        done.session = sess  # until create has succeeded or undone it (Attached.undo)
    elif sess is not None:
        sess.close()
    return done

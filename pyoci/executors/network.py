"""Networking beyond loopback: ``linux.netDevices`` and pyoci's opt-in bridge.

Loopback of a new network namespace is brought up by the init itself with one ioctl
(pyoci/init.py); everything here needs netlink and so pyroute2, which costs ~250 ms to
import. This module therefore imports pyroute2 only inside the functions that talk
netlink, and `create` imports it only for a container that has ``linux.netDevices`` or
the ``org.pyoci.network`` annotation (:func:`wanted`).

Where and when: the *runtime* (the `pyoci create` parent, still in the caller's network
namespace) does the work, once the init exists (its network namespace is
``/proc/<init>/ns/net``) and before it is told to "go". So every device is in place before
the init's own setup, before the prestart/createRuntime hooks (which may expect the
network, runtime.md "Lifecycle" step 7) and long before the user's process; runc 1.2+ also
moves netDevices from the runtime side during the init's start-up, before the user's
program can run. The parent opens one rtnetlink socket in each namespace
(:class:`Session`: a netlink socket stays bound to the namespace it was created in, so a
brief setns() of the single-threaded parent is enough) and never forks a helper.

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

from pyoci import jsonio
from pyoci.errors import PyociError

# Every create imports this module (loopback, netDevices): heavier modules -- hashlib,
# ipaddress, pyroute2 -- are imported where the bridge or netlink needs them (issue 5).
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


class BridgeRequest:
    """What the ``org.pyoci.network*`` annotations ask for, validated."""
    __slots__ = ("bridge", "subnet")

    def __init__(self, bridge: str, subnet: str) -> None:
        self.bridge = bridge
        self.subnet = subnet


def check(spec: Spec) -> BridgeRequest | None:
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
    bridge = spec.annotations[BRIDGE_ANNOTATION]
    why = ifname_problem(bridge)
    if why:
        raise PyociError(f"annotations.{BRIDGE_ANNOTATION}: bridge name {bridge!r} {why}")
    if netns is None or netns.path:
        raise PyociError(f"annotations.{BRIDGE_ANNOTATION}: bridge networking needs a new "
                         "network namespace (a \"network\" entry without a path in "
                         "linux.namespaces)")
    if any(d.target == CONTAINER_IFNAME for d in linux.net_devices):
        raise PyociError(f"annotations.{BRIDGE_ANNOTATION}: the bridge's interface is "
                         f"{CONTAINER_IFNAME} in the container, and linux.netDevices "
                         "already uses that name")
    subnet = spec.annotations.get(SUBNET_ANNOTATION, DEFAULT_SUBNET)
    parse_subnet(subnet)
    return BridgeRequest(bridge, subnet)


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


# --- opt-in bridge ----------------------------------------------------------------------

def _net_dir(root: str) -> str:
    return os.path.join(root, NETWORK_DIR)


class _bridge_lock:  # noqa: N801 - used as a context manager, like a function
    """flock on ``<root>/@network/<bridge>.lock``: allocations and the bridge's creation
    and removal happen under it, so concurrent creates and deletes never race. Gives the
    path of the allocation file."""

    def __init__(self, root: str, bridge: str) -> None:
        self.dir = _net_dir(root)
        self.bridge = bridge
        self.fd = -1

    def __enter__(self) -> str:
        os.makedirs(self.dir, 0o700, exist_ok=True)
        self.fd = os.open(os.path.join(self.dir, f"{self.bridge}.lock"),
                          os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return os.path.join(self.dir, f"{self.bridge}.json")

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _load_allocations(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return jsonio.loads(f.read())
    except FileNotFoundError:
        return {}


def _save_allocations(path: str, doc: dict[str, Any]) -> None:
    from pyoci.state import write_json_atomic

    write_json_atomic(path, doc)


def host_veth_name(root: str, cid: str) -> str:
    """A host-side name unique per (root, id) within 15 bytes."""
    import hashlib

    digest = hashlib.sha256(f"{os.path.abspath(root)}\0{cid}".encode()).hexdigest()
    return "pyv" + digest[:11]


def next_free(subnet: Any, taken: set[str]) -> Any:
    """The lowest host address of ``subnet`` after the bridge's (the first one) that no
    container holds; None when the subnet is exhausted."""
    hosts = subnet.hosts()
    next(hosts)  # the bridge's
    for addr in hosts:
        if str(addr) not in taken:
            return addr
    return None


def attach_bridge(sess: Session, root: str, cid: str, req: BridgeRequest) -> dict[str, Any]:
    """Bridge (made if missing, first address of the subnet), veth pair, container end as
    eth0 with the next free address and a default route via the bridge. Returns the
    record kept in state.json. On failure everything made here is removed again."""
    subnet = parse_subnet(req.subnet)
    where = f"annotations.{BRIDGE_ANNOTATION}"
    veth = host_veth_name(root, cid)
    with _bridge_lock(root, req.bridge) as alloc_path:
        doc = _load_allocations(alloc_path)
        if doc and doc.get("subnet") != str(subnet):
            raise PyociError(f"{where}: bridge {req.bridge!r} already serves subnet "
                             f"{doc.get('subnet')}, not {subnet}")
        containers: dict[str, Any] = doc.get("containers", {})
        created_bridge = bool(doc.get("createdBridge"))
        gateway = next(subnet.hosts())
        made_bridge = False
        try:
            link = _link(sess.host, req.bridge)
            if link is not None and _kind(link) != "bridge":
                raise PyociError(f"{where}: {req.bridge!r} exists and is not a bridge "
                                 f"(it is a {_kind(link) or 'device'} link)")
            if link is None:
                sess.host.link("add", ifname=req.bridge, kind="bridge")
                made_bridge = created_bridge = True
                link = _link(sess.host, req.bridge)
                sess.host.addr("add", index=link["index"], address=str(gateway),
                               prefixlen=subnet.prefixlen)
                sess.host.link("set", index=link["index"], state="up")
            addr = next_free(subnet, {c["address"] for c in containers.values()})
            if addr is None:
                raise PyociError(f"{where}: no free address left in {subnet} on bridge "
                                 f"{req.bridge!r} ({len(containers)} containers hold them)")
            peer = "pyp" + veth[3:]
            if _link(sess.host, veth) is not None:
                raise PyociError(f"{where}: interface {veth!r} already exists; is an "
                                 f"older container {cid!r} still attached?")
            try:
                sess.host.link("add", ifname=veth, kind="veth", peer={"ifname": peer})
                host_end = _link(sess.host, veth)
                sess.host.link("set", index=host_end["index"], master=link["index"])
                sess.host.link("set", index=host_end["index"], state="up")
                peer_link = _link(sess.host, peer)
                sess.host.link("set", index=peer_link["index"], net_ns_fd=sess.ct_fd,
                               ifname=CONTAINER_IFNAME)
                inside = sess.ct.link_lookup(ifname=CONTAINER_IFNAME)[0]
                sess.ct.addr("add", index=inside, address=str(addr),
                             prefixlen=subnet.prefixlen)
                sess.ct.link("set", index=inside, state="up")
                sess.ct.route("add", dst="0.0.0.0/0", gateway=str(gateway))
            except PyociError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise PyociError(f"{where}: cannot connect the container to bridge "
                                 f"{req.bridge!r}: {_reason(exc)}") from None
        except BaseException:
            _delete_link(sess.host, veth)
            _delete_link(sess.host, "pyp" + veth[3:])
            if made_bridge and not containers:
                _delete_link(sess.host, req.bridge)
            raise
        containers[cid] = {"address": str(addr), "veth": veth}
        _save_allocations(alloc_path, {"subnet": str(subnet), "gateway": str(gateway),
                                       "createdBridge": created_bridge,
                                       "containers": containers})
    return {"bridge": req.bridge, "veth": veth, "address": f"{addr}/{subnet.prefixlen}",
            "gateway": str(gateway), "netns": _own_netns()}


def _own_netns() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def _delete_link(ipr: Any, name: str) -> None:
    link = _link(ipr, name)
    if link is not None:
        try:
            ipr.link("del", index=link["index"])
        except Exception as exc:  # noqa: BLE001 - gone meanwhile (its netns died)
            if getattr(exc, "code", None) != 19:  # ENODEV
                raise


def release_bridge(root: str, cid: str, record: dict[str, Any]) -> None:
    """Undo :func:`attach_bridge` (delete, failed create): the host end of the veth (its
    peer dies with it, or died with the namespace), the allocation, and the bridge when
    pyoci made it and this was its last container. Idempotent.

    Links are only touched from the network namespace the create attached in: a delete
    run from elsewhere (another netns sharing this --root) must not remove a same-named
    bridge or veth that belongs to someone else; it only gives the address back."""
    from pyroute2 import IPRoute

    from pyoci import log

    bridge = record["bridge"]
    same_netns = record.get("netns", _own_netns()) == _own_netns()
    if not same_netns:
        log.warn(f"container {cid!r} was attached to bridge {bridge!r} from another network "
                 "namespace; its veth and the bridge are left there")
    with _bridge_lock(root, bridge) as alloc_path, IPRoute() as ipr:
        if same_netns:
            _delete_link(ipr, record.get("veth") or host_veth_name(root, cid))
        doc = _load_allocations(alloc_path)
        containers = doc.get("containers", {})
        containers.pop(cid, None)
        if containers:
            _save_allocations(alloc_path, doc | {"containers": containers})
            return
        if doc.get("createdBridge") and same_netns:
            link = _link(ipr, bridge)
            if link is not None and _kind(link) == "bridge":
                _delete_link(ipr, bridge)
        try:
            os.unlink(alloc_path)
        except FileNotFoundError:
            pass
        # The .lock file stays: unlinking it while others wait on it would let a newcomer
        # lock a fresh file at the same time as they do (two creates, one address).


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
        # Kept open while devices are lent: its fd of the container's network namespace
        # keeps that namespace (and the devices in it) alive even when the init exits on
        # its own after reporting a failed step -- otherwise a veth moved in is destroyed
        # with the namespace before it can be moved back.
        self.session: Session | None = None

    def undo(self) -> None:
        """Move the devices back out (the bridge is released by the caller from the
        record in state.json, which also covers a create that died half-way)."""
        from pyoci import log

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


def setup(root: str, cid: str, spec: Spec, init_pid: int, req: BridgeRequest | None,
          record: Any) -> Attached:
    """Move the netDevices in, then attach the bridge. ``record(dict)`` is called with
    the bridge record before the first netlink change of the bridge, so that state.json
    names what `delete --force` must release even if this create dies half-way."""
    done = Attached(root, cid)
    done.init_pid = init_pid
    sess = Session(init_pid)
    try:
        if spec.linux.net_devices:
            done.moved = move_devices(sess, spec.linux.net_devices)
        if req is not None:
            record({"bridge": req.bridge, "veth": host_veth_name(root, cid),
                    "netns": _own_netns()})
            done.bridge = attach_bridge(sess, root, cid, req)
            record(done.bridge)
    except BaseException:
        try:
            move_back(sess, done.moved)
        finally:
            done.moved = []
            sess.close()
        raise
    if done.moved:
        done.session = sess  # until create has succeeded or undone it (Attached.undo)
    else:
        sess.close()
    return done

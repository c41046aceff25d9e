"""A CNI client: pyoci's opt-in bridge networking runs the field's CNI plugins.

Engines (containerd's CRI, podman's CNI backend, cri-o) do not plumb bridges and hand out
addresses themselves: they run the plugins of containernetworking/plugins (Debian's
``containernetworking-plugins``, in /usr/lib/cni) through the CNI protocol, and so does
pyoci for the ``org.pyoci.network`` annotation (docs/network.md). This module is that
protocol, CNI spec 1.0 ("SPEC.md", containernetworking/cni):

- a *network configuration list* (conflist): ``cniVersion``, ``name`` and ``plugins``, run
  in order for ADD and in reverse order for DEL ("Section 4: Plugin Delegation");
- each plugin is an executable named by its ``type``, found in the directories of
  ``CNI_PATH``, run with ``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``,
  ``CNI_IFNAME`` and ``CNI_PATH`` in its environment and its configuration (the plugin's
  object with the list's ``name`` and ``cniVersion`` and, after the first, the previous
  plugin's result as ``prevResult``) on stdin;
- exit status 0 and a result on stdout, or non-zero and an error object
  (``code``, ``msg``, ``details``) there ("Section 5: Result Types");
- DEL gets the same configuration as ADD with the cached result of the ADD as
  ``prevResult`` ("a runtime MUST ... provide prevResult"), so the record kept in
  state.json holds the conflist, the container id given to the plugins and that result.
  DEL must tolerate what is already gone, so it is run after a failed ADD too.

Plugins are started with :func:`os.posix_spawn`, not :mod:`subprocess` (create is a hot
command: subprocess and json are kept out of it, tests/unit/test_hot_path.py), with an
empty signal mask (create may block signals while it forwards them) and SIGPIPE back at
its default. Nothing here imports pyroute2: the plugins do the netlink work.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci.errors import PyociError

TYPE_CHECKING = False  # typing costs ~3 ms to import; only checkers need it here
if TYPE_CHECKING:
    from typing import Any

#: cnitool's variables, with libcni's and Debian's defaults: where conflists are looked up
#: by name, and where plugins are found.
CONF_DIR_ENV = "NETCONFPATH"
DEFAULT_CONF_DIR = "/etc/cni/net.d"
PATH_ENV = "CNI_PATH"
DEFAULT_PATH = "/usr/lib/cni:/opt/cni/bin"
CNI_VERSION = "1.0.0"
#: A plugin that takes longer than this is killed and the step fails (containerd and
#: podman bound a network setup by their own timeouts the same way).
PLUGIN_TIMEOUT = 60.0
_CONF_EXTENSIONS = (".conflist", ".conf", ".json")  # libcni's, .conflist first
# libcni's ValidateContainerID: ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ (the plugins' skel refuses
# others with "invalid characters in containerID").
_ID_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ID_REST = _ID_FIRST | frozenset("_.-")


class CniError(PyociError):
    """A plugin failed, or a conflist is unusable."""


def conf_dir() -> str:
    return os.environ.get(CONF_DIR_ENV) or DEFAULT_CONF_DIR


def plugin_path() -> str:
    return os.environ.get(PATH_ENV) or DEFAULT_PATH


def container_id(cid: str) -> str:
    """pyoci's id when CNI accepts it; else (a '+', or a leading '_', '-', '.') a stable
    name derived from it, unique in practice: the plugins refuse such ids."""
    if cid and cid[0] in _ID_FIRST and _ID_REST.issuperset(cid):
        return cid
    import hashlib

    return "pyoci-" + hashlib.sha256(cid.encode()).hexdigest()[:32]


# --- configuration ------------------------------------------------------------------------

def normalize(doc: Any, where: str) -> dict[str, Any]:
    """A conflist as libcni accepts it: a list (``plugins``), or a single plugin's
    configuration (``type`` at the top), which libcni's ConfListFromConf wraps into a
    one-plugin list. Checked before anything is made, so a bad file is a config error."""
    if not isinstance(doc, dict):
        raise CniError(f"{where}: not a JSON object")
    if "plugins" not in doc and "type" in doc:
        doc = {"cniVersion": doc.get("cniVersion"), "name": doc.get("name"), "plugins": [
            {k: v for k, v in doc.items() if k not in ("cniVersion", "name")}]}
    for key in ("cniVersion", "name"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise CniError(f"{where}: {key!r} is missing or not a string")
    plugins = doc.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise CniError(f"{where}: 'plugins' is missing or empty")
    for i, plugin in enumerate(plugins):
        kind = plugin.get("type") if isinstance(plugin, dict) else None
        if not isinstance(kind, str) or not kind or "/" in kind or kind in (".", ".."):
            raise CniError(f"{where}: plugins[{i}] has no valid 'type' (a plugin's file "
                           "name)")
    return doc


def read(path: str, where: str) -> dict[str, Any]:
    """The conflist in the file ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CniError(f"{where}: cannot read CNI configuration {path}: "
                       f"{(exc.strerror or str(exc)).lower()}") from None
    try:
        data = jsonio.read_bounded(fd)
    except (OSError, ValueError) as exc:
        raise CniError(f"{where}: cannot read CNI configuration {path}: {exc}") from None
    finally:
        os.close(fd)
    try:
        doc = jsonio.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CniError(f"{where}: {path} is not JSON: {exc}") from None
    return normalize(doc, f"{where}: {path}")


def find(name: str, directory: str) -> dict[str, Any] | None:
    """libcni's LoadConfList: the first file of ``directory`` (sorted by name, .conflist
    files before .conf and .json) whose network ``name`` is ``name``. Files that are not a
    usable configuration are passed over, as the other networks' business."""
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise CniError(f"cannot list CNI configurations in {directory}: "
                       f"{(exc.strerror or str(exc)).lower()}") from None
    for ext in _CONF_EXTENSIONS:
        for entry in names:
            if not entry.endswith(ext):
                continue
            try:
                doc = read(os.path.join(directory, entry), "")
            except CniError:
                continue
            if doc["name"] == name:
                return doc
    return None


def find_plugin(kind: str, search: str) -> str | None:
    for directory in search.split(":"):
        if directory:
            path = os.path.join(directory, kind)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return None


def check_plugins(conflist: dict[str, Any], search: str, where: str) -> None:
    """Every plugin is there before anything is made: a missing one is a config error,
    not a half-made network."""
    for plugin in conflist["plugins"]:
        if find_plugin(plugin["type"], search) is None:
            raise CniError(f"{where}: CNI plugin {plugin['type']!r} of network "
                           f"{conflist['name']!r} not found in {PATH_ENV} ({search}); is "
                           "containernetworking-plugins installed?")


def builtin(name: str, bridge: str, subnet: str, data_dir: str) -> dict[str, Any]:
    """pyoci's own network, what the annotation gives when no conflist of that name
    exists: the ``bridge`` plugin (the bridge made if missing, the subnet's first address
    on it as the containers' gateway and default route) with ``host-local`` addresses
    kept under --root, as podman's default ``podman`` network does with cni0/10.88.0.0/16.
    No NAT and no port mapping: nothing is changed outside the bridge."""
    return {"cniVersion": CNI_VERSION, "name": name, "plugins": [{
        "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
        "hairpinMode": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }]}


# --- running plugins ----------------------------------------------------------------------

def _read_all(fds: list[int], pid: int, deadline: float) -> dict[int, bytes]:
    import select
    import time
    from _signal import SIGKILL

    out: dict[int, list[bytes]] = {fd: [] for fd in fds}
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    open_fds = set(fds)
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, SIGKILL)  # our own child, by pid
            raise TimeoutError
        for fd, _ in poller.poll(left * 1000):
            chunk = os.read(fd, 65536)
            if chunk:
                out[fd].append(chunk)
            else:
                poller.unregister(fd)
                open_fds.discard(fd)
    return {fd: b"".join(parts) for fd, parts in out.items()}


def run_plugin(path: str, env: dict[str, str], stdin: bytes,
               timeout: float = PLUGIN_TIMEOUT) -> tuple[int, bytes, bytes]:
    """Run one plugin: configuration on stdin, (status, stdout, stderr) back."""
    import time
    from _signal import SIGPIPE, SIGXFSZ  # not signal: it imports enum (hot path)

    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(
            path, [path], env,
            file_actions=[(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                          (os.POSIX_SPAWN_DUP2, err_w, 2)],
            setsigmask=(), setsigdef=(SIGPIPE, SIGXFSZ))
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    try:
        try:
            # Plugins read all of stdin before they write: no deadlock with full pipes.
            view = memoryview(stdin)
            while view:
                view = view[os.write(in_w, view):]
        except BrokenPipeError:
            pass  # it did not read it all; its status and output say why
        finally:
            os.close(in_w)
        try:
            got = _read_all([out_r, err_r], pid, time.monotonic() + timeout)
        finally:
            os.close(out_r)
            os.close(err_r)
    finally:
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), got[out_r], got[err_r]


def _error_text(out: bytes, err: bytes, code: int) -> str:
    """The plugin's error object (``msg``, ``details``), else its stderr, else its status."""
    try:
        doc = jsonio.loads(out)
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict) and doc.get("msg"):
        text = str(doc["msg"])
        if doc.get("details"):
            text += f" ({doc['details']})"
        return text
    text = (err or out).decode(errors="replace").strip()
    return text.splitlines()[-1] if text else f"exit status {code}"


class Attachment:
    """What the plugins are told about one container's attachment, and kept for DEL."""

    def __init__(self, conflist: dict[str, Any], cid: str, ifname: str, search: str) -> None:
        self.conflist = conflist
        self.container_id = container_id(cid)
        self.ifname = ifname
        self.search = search
        self.result: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        rec = {"cni": self.conflist, "containerId": self.container_id,
               "ifname": self.ifname, "cniPath": self.search}
        if self.result is not None:
            rec["result"] = self.result
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Attachment:
        att = cls(rec["cni"], "x", rec["ifname"], rec["cniPath"])
        att.container_id = rec["containerId"]
        att.result = rec.get("result")
        return att

    def _invoke(self, command: str, plugin: dict[str, Any], netns: str,
                prev: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
        kind = plugin["type"]
        path = find_plugin(kind, self.search)
        if path is None:
            raise CniError(f"{where}: CNI plugin {kind!r} not found in {PATH_ENV} "
                           f"({self.search})")
        conf = dict(plugin)
        conf["cniVersion"] = self.conflist["cniVersion"]
        conf["name"] = self.conflist["name"]
        if prev is not None:
            conf["prevResult"] = prev
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.update(CNI_COMMAND=command, CNI_CONTAINERID=self.container_id,
                   CNI_NETNS=netns, CNI_IFNAME=self.ifname, CNI_PATH=self.search)
        try:
            code, out, err = run_plugin(path, env, jsonio.dumps(conf).encode())
        except TimeoutError:
            raise CniError(f"{where}: CNI plugin {kind!r} ({command}) did not finish "
                           f"within {PLUGIN_TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise CniError(f"{where}: cannot run CNI plugin {path}: "
                           f"{(exc.strerror or str(exc)).lower()}") from None
        if code != 0:
            raise CniError(f"{where}: CNI plugin {kind!r} of network "
                           f"{self.conflist['name']!r} failed ({command}): "
                           f"{_error_text(out, err, code)}")
        if command != "ADD":
            return None
        try:
            result = jsonio.loads(out)
        except (ValueError, RecursionError):
            result = None
        if not isinstance(result, dict):
            raise CniError(f"{where}: CNI plugin {kind!r} ({command}) gave no result")
        return result

    def add(self, netns: str, where: str) -> dict[str, Any]:
        """ADD through the whole list, each plugin given the previous one's result."""
        prev: dict[str, Any] | None = None
        for plugin in self.conflist["plugins"]:
            prev = self._invoke("ADD", plugin, netns, prev, where)
        assert prev is not None
        self.result = prev
        return prev

    def delete(self, netns: str, where: str) -> None:
        """DEL through the list in reverse, every plugin tried even when one fails (as
        libcni does not, but a delete should release what it can); the first failure is
        raised at the end. ``netns`` may be "" once the namespace is gone (the spec makes
        CNI_NETNS optional for DEL: the plugins then release only their host side)."""
        first: CniError | None = None
        for plugin in reversed(self.conflist["plugins"]):
            try:
                self._invoke("DEL", plugin, netns, self.result, where)
            except CniError as exc:
                first = first or exc
        if first is not None:
            raise first


def addresses(result: dict[str, Any], ifname: str) -> list[str]:
    """The container's addresses (CIDR) in a result: 1.0/0.4/0.3 ``ips`` (those of the
    interface in the sandbox named ``ifname`` when the result says), or 0.2 ``ip4``/``ip6``."""
    ips = result.get("ips")
    if isinstance(ips, list):
        ifaces = result.get("interfaces") or []
        inside = {i for i, iface in enumerate(ifaces) if isinstance(iface, dict)
                  and iface.get("sandbox") and iface.get("name") == ifname}
        out = [ip["address"] for ip in ips if isinstance(ip, dict)
               and isinstance(ip.get("address"), str)
               and (not inside or ip.get("interface") in inside)]
        return out
    return [entry["ip"] for entry in (result.get("ip4"), result.get("ip6"))
            if isinstance(entry, dict) and isinstance(entry.get("ip"), str)]

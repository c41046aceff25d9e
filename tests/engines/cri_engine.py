"""containerd 1.6 with its CRI plugin (the Kubernetes node path), started by the test
session and driven over gRPC `runtime.v1` as kubelet drives it (tests/engines/cri_client.py).

Everything it touches is the test's own: root, state, sockets and config in a temp dir;
network namespaces under the state dir (`netns_mounts_under_state_dir`); a CNI config
dir and plugin dir of ours whose only network plugin (`pyoci-pod-net`, a shell script)
adds a veth pair with BOTH ends inside the pod's new netns, so the host's network is never
touched (the packaged bridge/ptp/macvlan plugins all add or use host interfaces, and a
loopback-only config is refused: CRI 1.6 requires an `eth0` with an address in the CNI
result); pods' cgroups below the tests' cgroup area (CgroupParent); one runtime handler
per runtime under test, each with its own `Root`. The sandbox ("pause") image is the
busybox rootfs as an OCI archive whose command sleeps forever, imported with
`ctr -n k8s.io images import` (no registry is reachable here).

Not redirectable in containerd 1.6: libcni's result cache (/var/lib/cni), the shims'
sockets (/run/containerd/s), and the CRI streaming server, which listens on an ephemeral
127.0.0.1 port while containerd runs (no route, interface or firewall change)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.engines.cri_client import CriClient, CriError, CriUnavailable
from tests.engines.support import TIMEOUT, OciRuntime, Result, run, wait_for
from tests.helpers import cgroup_dirs, mounts_under, processes_rooted_in

NAMESPACE = "k8s.io"  # the containerd namespace of the CRI plugin
IMAGE = "localhost/pyoci-cri-busybox:test"
CNI_BIN = Path("/usr/lib/cni")
# The pause process: pid 1 of a shared pid namespace must reap orphans; ash's `wait`
# reaps any child (waitpid(-1)), and SIGKILL from StopPodSandbox ends it.
PAUSE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"]

# Host paths containerd's CRI plugin writes and no 1.6 setting moves (deepest first).
CRI_HOST_PATHS = (Path("/var/lib/cni/results"), Path("/var/lib/cni"),
                  Path("/run/containerd/s"), Path("/run/containerd"))

DISABLED = ("io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing")

# A CNI plugin confined to the pod's netns: a veth pair whose two ends both live there
# gives CRI the `eth0` with an address it insists on; DEL has nothing to undo (the netns
# goes with the pod). Only `ip` and `nsenter` (iproute2, util-linux) are needed.
POD_NET_PLUGIN = r"""#!/bin/sh
# pyoci tests: eth0 inside the pod's own netns, nothing on the host.
cat >/dev/null
case "$CNI_COMMAND" in
VERSION)
    echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}'; exit 0;;
ADD)
    nsenter --net="$CNI_NETNS" sh -c "ip link add $CNI_IFNAME type veth peer name pyoci-peer &&
        ip addr add 192.0.2.2/24 dev $CNI_IFNAME && ip link set pyoci-peer up &&
        ip link set $CNI_IFNAME up" >&2 || {
        echo '{"cniVersion":"0.4.0","code":11,"msg":"pyoci-pod-net: cannot add eth0"}'
        exit 1; }
    printf '{"cniVersion":"0.4.0","interfaces":[{"name":"%s","sandbox":"%s"}],' \
        "$CNI_IFNAME" "$CNI_NETNS"
    printf '"ips":[{"version":"4","address":"192.0.2.2/24","interface":0}],"dns":{}}\n'
    exit 0;;
*) exit 0;;
esac
"""


def missing() -> str | None:
    """Why the CRI tests cannot run here, or None."""
    for tool, pkg in (("containerd", "containerd"), ("ctr", "containerd"),
                      ("containerd-shim-runc-v2", "containerd"), ("nsenter", "util-linux"),
                      ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {pkg})"
    if not (CNI_BIN / "loopback").is_file():
        return f"{CNI_BIN}/loopback missing (apt-get install containernetworking-plugins)"
    try:
        import google.protobuf  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as exc:
        return f"grpcio/protobuf not installed ({exc}): pip install 'pyoci[test]'"
    return None


# --- the image -------------------------------------------------------------------------------

def _blob(layout: tarfile.TarFile, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest[7:]}")
    info.size = len(data)
    layout.addfile(info, io.BytesIO(data))
    return digest, len(data)


def write_oci_archive(rootfs_tar: Path, dest: Path, name: str, cmd: list[str]) -> None:
    """An OCI image layout archive (one uncompressed layer: ``rootfs_tar``) that
    `ctr images import` names ``name`` through the io.containerd.image.name annotation."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    layer = rootfs_tar.read_bytes()
    with tarfile.open(dest, "w") as layout:
        layer_digest, layer_size = _blob(layout, layer)
        config = json.dumps({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": cmd, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }).encode()
        config_digest, config_size = _blob(layout, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": layer_size}],
        }).encode()
        manifest_digest, manifest_size = _blob(layout, manifest)
        for fname, doc in (("oci-layout", {"imageLayoutVersion": "1.0.0"}),
                           ("index.json", {"schemaVersion": 2, "manifests": [{
                               "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": manifest_digest, "size": manifest_size,
                               "platform": {"architecture": arch, "os": "linux"},
                               "annotations": {"io.containerd.image.name": name,
                                               "org.opencontainers.image.ref.name": "test"},
                           }]})):
            data = json.dumps(doc).encode()
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            layout.addfile(info, io.BytesIO(data))


# --- containerd with CRI ------------------------------------------------------------------

class CriContainerd:
    """Our containerd with the CRI plugin and a runtime handler per runtime under test
    (named after it: "runc", "pyoci")."""

    def __init__(self, base: Path, cgroup_parent: str, runtimes: list[OciRuntime]) -> None:
        self.base = base
        self.cgroup_parent = cgroup_parent
        self.runtimes = {rt.name: rt for rt in runtimes}
        self.address = base / "containerd.sock"
        self.state_dir = base / "state"
        self.roots = base / "runtime-roots"
        self.logs = base / "pod-logs"
        cni_conf, cni_bin = base / "cni" / "net.d", base / "cni" / "bin"
        for d in (self.roots, self.logs, cni_conf, cni_bin):
            d.mkdir(parents=True, exist_ok=True)
        plugin = cni_bin / "pyoci-pod-net"
        plugin.write_text(POD_NET_PLUGIN)
        plugin.chmod(0o755)
        os.symlink(CNI_BIN / "loopback", cni_bin / "loopback")
        (cni_conf / "10-pyoci.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "pyoci-pods",
            "plugins": [{"type": "loopback"}, {"type": "pyoci-pod-net"}]}))
        cri = '[plugins."io.containerd.grpc.v1.cri"'
        handlers = ""
        for rt in runtimes:
            handlers += (f'{cri}.containerd.runtimes.{rt.name}]\n'
                         '  runtime_type = "io.containerd.runc.v2"\n'
                         f'{cri}.containerd.runtimes.{rt.name}.options]\n'
                         f'  BinaryName = "{rt.path}"\n'
                         f'  Root = "{self.runtime_root(rt)}"\n')
        self.config = base / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{base / "root"}"\n'
            f'state = "{self.state_dir}"\n'
            f"disabled_plugins = {json.dumps(list(DISABLED))}\n"
            f'[grpc]\n  address = "{self.address}"\n'
            f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
            f'{cri}]\n'
            f'  sandbox_image = "{IMAGE}"\n'
            # root lacks CAP_SYS_RESOURCE here: no oom_score_adj below containerd's own.
            "  restrict_oom_score_adj = true\n"
            "  netns_mounts_under_state_dir = true\n"
            "  disable_apparmor = true\n"
            "  disable_hugetlb_controller = true\n"
            "  enable_unprivileged_ports = false\n"
            "  enable_unprivileged_icmp = false\n"
            f'{cri}.containerd]\n'
            '  snapshotter = "overlayfs"\n'
            f'  default_runtime_name = "{runtimes[0].name}"\n'
            f"{handlers}"
            f'{cri}.cni]\n'
            f'  bin_dir = "{cni_bin}"\n'
            f'  conf_dir = "{cni_conf}"\n'
            "  max_conf_num = 1\n")
        self.log = base / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: CriClient | None = None
        # What existed when the current test started (tests/engines/test_cri.py).
        self.baseline: dict[str, list[str]] = {}

    # --- daemon ---

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(self.config), "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/")
        try:
            self.client = CriClient(self.address)
        except CriUnavailable:
            self.stop()
            raise

        def up() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                return True
            try:
                self.cri("Version", deadline=2)
            except CriError:
                return False
            return True

        if not wait_for(up, timeout, 0.1) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"containerd (CRI) did not come up:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the daemon we started, and wait (SIGKILL if it hangs)."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def log_tail(self, lines: int = 12) -> str:
        """containerd's last warnings and errors (the shims log at info level too)."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join([ln for ln in text if "level=info" not in ln][-lines:])

    def ctr(self, *args: str, timeout: float = TIMEOUT) -> Result:
        return run(["ctr", "--address", str(self.address), "--namespace", NAMESPACE, *args],
                   timeout=timeout)

    def import_image(self, archive: Path) -> None:
        res = self.ctr("images", "import", str(archive), timeout=120)
        assert res.rc == 0, res.describe() + "\n" + self.log_tail()
        # The CRI plugin learns of images through containerd's events.
        assert wait_for(lambda: self._image_known(), 10), (
            f"CRI does not list {IMAGE} after import\n{self.log_tail()}")

    def _image_known(self) -> bool:
        try:
            reply = self.cri("ImageStatus", image={"image": IMAGE})
        except CriError:
            return False
        return bool(reply.image.id)

    # --- CRI calls ---

    def cri(self, method: str, request: Any = None, deadline: float = 30,
            **fields: Any) -> Any:
        """One CRI call; ``deadline`` bounds it (``timeout`` is a field of some requests,
        e.g. StopContainer's grace period in seconds)."""
        assert self.client is not None, "containerd is not running"
        return self.client.call(method, request, deadline=deadline, **fields)

    def new(self, name: str, **fields: Any) -> Any:
        assert self.client is not None
        return self.client.new(name, **fields)

    def runtime_root(self, rt: OciRuntime) -> Path:
        return self.roots / rt.name

    def runtime_state(self, rt: OciRuntime) -> Path:
        """The runtime's --root as the shim passes it: Root/<namespace>."""
        return self.runtime_root(rt) / NAMESPACE

    def pod_config(self, name: str, *, attempt: int = 0, pid: str = "CONTAINER") -> Any:
        """A pod as kubelet describes one: own netns (CNI), ipc and uts; pid namespace
        per container unless ``pid`` is "POD" (shareProcessNamespace); cgroup parent
        below ours (cgroupfs driver: the pod's and each container's cgroup is
        PARENT/<id>); no host namespace of any kind."""
        logs = self.logs / name
        shutil.rmtree(logs, ignore_errors=True)  # the CRI appends to an existing log
        logs.mkdir()
        return self.new(
            "PodSandboxConfig",
            metadata={"name": name, "uid": f"uid-{name}", "namespace": "pyoci",
                      "attempt": attempt},
            hostname=name, log_directory=str(logs),
            labels={"pyoci-test": name},
            linux={"cgroup_parent": self.cgroup_parent,
                   "security_context": {"namespace_options": {
                       "network": "POD", "pid": pid, "ipc": "POD"}}})

    def run_pod(self, name: str, rt: OciRuntime, **kw: Any) -> tuple[str, Any]:
        config = self.pod_config(name, **kw)
        reply = self.cri("RunPodSandbox", config=config, runtime_handler=rt.name, deadline=60)
        return reply.pod_sandbox_id, config

    def create(self, pod_id: str, pod_config: Any, name: str, command: list[str], *,
               attempt: int = 0, memory: int = 0) -> str:
        """A container of the pod, in the pod's pid namespace mode (as kubelet does)."""
        assert self.client is not None
        pid = self.client.enum_name(
            "NamespaceMode", pod_config.linux.security_context.namespace_options.pid)
        linux: dict[str, Any] = {"security_context": {"namespace_options": {"pid": pid}}}
        if memory:
            linux["resources"] = {"memory_limit_in_bytes": str(memory)}
        config = self.new("ContainerConfig",
                          metadata={"name": name, "attempt": attempt},
                          image={"image": IMAGE}, command=command,
                          log_path=f"{name}_{attempt}.log", linux=linux)
        reply = self.cri("CreateContainer", pod_sandbox_id=pod_id, config=config,
                         sandbox_config=pod_config, deadline=60)
        return reply.container_id

    def status(self, cid: str) -> Any:
        return self.cri("ContainerStatus", container_id=cid).status

    def state(self, cid: str) -> str:
        assert self.client is not None
        return self.client.enum_name("ContainerState", self.status(cid).state)

    def wait_state(self, cid: str, want: str, timeout: float = 15) -> bool:
        return wait_for(lambda: self.state(cid) == want, timeout, 0.1)

    def container_cgroup(self, cid: str) -> str:
        return f"{self.cgroup_parent}/{cid}"

    def pods(self) -> list[str]:
        return [p.id for p in self.cri("ListPodSandbox").items]

    def containers(self) -> list[str]:
        return [c.id for c in self.cri("ListContainers").containers]

    def remove_pod(self, pod_id: str, deadline: float = 30) -> list[str]:
        """StopPodSandbox + RemovePodSandbox (which stop and remove its containers, as
        kubelet relies on); returns the errors."""
        errors = []
        for method in ("StopPodSandbox", "RemovePodSandbox"):
            try:
                self.cri(method, pod_sandbox_id=pod_id, deadline=deadline)
            except CriError as exc:
                errors.append(str(exc))
        return errors

    def remove_all(self, deadline: float = 30) -> list[str]:
        errors = []
        for pod in self.pods():
            errors += self.remove_pod(pod, deadline)
        for cid in self.containers():  # containers of pods that failed to go
            try:
                self.cri("RemoveContainer", container_id=cid, deadline=deadline)
            except CriError as exc:
                errors.append(str(exc))
        return errors

    # --- what must be gone ---

    def shims(self) -> list[int]:
        """Shims run with their cwd in a bundle below the state dir (and containers'
        roots are there too)."""
        return processes_rooted_in(self.state_dir)

    def netns(self) -> list[str]:
        """Pod network namespaces containerd bind-mounted (netns_mounts_under_state_dir)."""
        return [m for m in mounts_under(self.state_dir) if "/netns/" in m]

    def cgroups(self) -> list[str]:
        found = []
        for top in cgroup_dirs(self.cgroup_parent):
            if top.is_dir():
                found += [str(c) for c in top.iterdir() if c.is_dir()]
        return found

    def runtime_states(self) -> dict[str, list[str]]:
        out = {}
        for rt in self.runtimes.values():
            root = self.runtime_state(rt)
            if root.is_dir() and os.listdir(root):
                out[rt.name] = sorted(os.listdir(root))
        return out

    def leftovers(self) -> dict[str, list[str]]:
        """Everything of any pod that exists now (all lists of strings, for diffs)."""
        return {"pods": self.pods(), "containers": self.containers(),
                "shims": [str(p) for p in self.shims()], "mounts": mounts_under(self.base),
                "cgroups": self.cgroups(),
                "runtime state": [f"{rt}/{cid}" for rt, ids in self.runtime_states().items()
                                  for cid in ids]}

    def new_leftovers(self, before: dict[str, list[str]]) -> dict[str, list[str]]:
        """What exists now and did not in ``before``: a test's own leftovers, whatever an
        earlier failed test could not have removed."""
        return {k: [v for v in now if v not in before.get(k, [])]
                for k, now in self.leftovers().items()}

    def force_clean(self) -> list[str]:
        """After a failed scenario, remove what the CRI could not, so that the next test
        starts clean (the failed test reports what was left first): delete --force each
        container through the runtime that made it; SIGKILL what is still in our cgroups
        and the shims (by pid: all were started by our containerd; a shim whose task
        exit was never handled never exits); restart containerd, whose CRI plugin then
        loads every container without a task as exited (its exit-event retries would
        otherwise take minutes); remove every pod through the CRI; unmount what is still
        mounted below the state dir and rmdir the cgroups. Returns the CRI errors."""
        for rt in self.runtimes.values():
            root = self.runtime_state(rt)
            if root.is_dir():
                for cid in os.listdir(root):
                    run([str(rt.path), "--root", str(root), "delete", "--force", cid],
                        timeout=30)
        self.stop()
        self._kill_ours()
        self.start()
        errors = self.remove_all(deadline=10)
        for mp in sorted(mounts_under(self.state_dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], check=False, capture_output=True)
        for top in cgroup_dirs(self.cgroup_parent):
            if top.is_dir():
                for sub, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                    if sub != str(top):
                        try:
                            os.rmdir(sub)
                        except OSError:
                            pass
        return errors

    def _kill_ours(self) -> list[int]:
        """SIGKILL the processes in our cgroups and our shims; wait until they are gone."""
        killed = _cgroup_pids(self.cgroup_parent) + _shim_pids(self.state_dir)
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not (_shim_pids(self.state_dir) or _cgroup_pids(self.cgroup_parent)),
                 10)
        return killed

    def teardown(self) -> list[str]:
        """Remove every pod, stop the daemon (SIGTERM to our pid, waited for); what had
        to be forced on the way (a pod the CRI could not remove, a shim or container
        process still running afterwards, a mount still there) is returned, so the
        session fails on it after removing it."""
        forced = []
        if self.client is not None:
            errors = self.remove_all(deadline=10)
            left = {k: v for k, v in self.leftovers().items() if v}
            if left or errors:
                forced.append(f"left: {left} {errors}")
                forced += self.force_clean()
        self.stop()
        forced += [f"process {pid} still running: killed" for pid in self._kill_ours()]
        for mp in sorted(mounts_under(self.base), key=len, reverse=True):
            forced.append(f"{mp} still mounted: unmounted")
            subprocess.run(["umount", "-l", mp], check=False, capture_output=True)
        return forced


def _cgroup_pids(parent: str) -> list[int]:
    """Every process in a cgroup below ``parent`` (any hierarchy that has cgroup.procs)."""
    pids: set[int] = set()
    for top in cgroup_dirs(parent):
        if not top.is_dir():
            continue
        for sub, _, files in os.walk(top):
            if sub != str(top) and "cgroup.procs" in files:
                try:
                    pids.update(int(p) for p in Path(sub, "cgroup.procs").read_text().split())
                except OSError:
                    pass
    return sorted(pids)


def _shim_pids(state: Path) -> list[int]:
    """containerd-shim-runc-v2 processes whose cwd is a bundle of ours."""
    pids = []
    for pid in processes_rooted_in(state):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("containerd-shim"):
            pids.append(pid)
    return pids


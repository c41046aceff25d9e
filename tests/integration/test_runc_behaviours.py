"""runc behaviours that entrypoints and tools rely on (issue 13), each observed from
inside the container or by the hook itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import Bundle, Runtime

pytestmark = pytest.mark.integration


def test_stdio_belongs_to_the_process_user(runtime: Runtime, bundle: Bundle,
                                           tmp_path: Path) -> None:
    """runc's fixStdioPermissions: a uid-1000 process reopening its own stdout
    (`echo hello > /dev/stdout`) must not get "Permission denied"."""
    out = tmp_path / "out"
    bundle.config["process"]["args"] = ["/bin/sh", "-c", "echo hello > /dev/stdout"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.write()
    with open(out, "w") as f:
        os.chmod(out, 0o600)  # root's, like a log file an engine opened
        proc = subprocess.run([*runtime.cmd, "--root", str(runtime.root), "run", "--bundle",
                               str(bundle.path), "stdio"], stdout=f, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "hello\n"
    assert os.stat(out).st_uid == 1000  # as runc: only the uid changes
    assert os.stat(out).st_gid == 0


def _hook_config(bundle: Bundle, probe: Path, kind: str, env: list[str] | None) -> None:
    hook: dict[str, object] = {"path": "/bin/sh", "args": [
        "sh", "-c", f'pwd > {probe}; echo "[$HOOK_MARK]" >> {probe}']}
    if env is not None:
        hook["env"] = env
    bundle.config["hooks"] = {kind: [hook]}
    bundle.write()


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "poststart", "poststop"])
def test_runtime_namespace_hooks_get_the_bundle_and_runtime_env(
        runtime: Runtime, bundle: Bundle, tmp_path: Path, kind: str) -> None:
    """runc runs hooks with the runtime's environment when they have no `env` (Go's
    exec.Cmd with a nil Env) and, in the runtime's namespaces, in the bundle directory
    (runc chdirs there); crun does the same."""
    probe = tmp_path / "probe"
    _hook_config(bundle, probe, kind, None)
    env = dict(os.environ, HOOK_MARK="from-runtime")
    proc = runtime("run", "--bundle", str(bundle.path), "hk", env=env)
    assert proc.returncode == 0, proc.stderr
    assert probe.read_text().split() == [str(bundle.path), "[from-runtime]"]


def test_hook_env_when_given_is_all_it_gets(runtime: Runtime, bundle: Bundle,
                                            tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    _hook_config(bundle, probe, "prestart", ["HOOK_MARK=own"])
    proc = runtime("run", "--bundle", str(bundle.path), "hk2",
                   env=dict(os.environ, HOOK_MARK="from-runtime"))
    assert proc.returncode == 0, proc.stderr
    assert probe.read_text().split()[1] == "[own]"

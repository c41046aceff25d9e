"""buildah 1.28 `bud` with runc and with pyoci: every RUN step of a Containerfile is a
container the runtime creates, starts and deletes, its output being the build's output.
With a fixed timestamp the same RUN effects give the same image id, so pyoci's build must
print what runc's prints (nothing of the runtime's own) and produce the very same image."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.buildah_engine import IMAGE, Buildah
from tests.engines.support import Observation, OciRuntime, Reference

pytestmark = [pytest.mark.integration, pytest.mark.engines]

CONTAINERFILE = f"""FROM {IMAGE}
ENV FOO=bar
WORKDIR /work
RUN echo step1 && mkdir -p /out && echo one > /out/one && pwd
RUN id; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \\
    hostname | grep -q . && echo has-hostname
RUN echo "env $FOO" > /out/env && ls /out && echo to-stderr >&2
RUN echo 'builder:x:1234:1234::/:/bin/sh' >> /etc/passwd && grep builder /etc/passwd
USER 1234
RUN id -u > /tmp/uid && cat /tmp/uid && ulimit -n
USER root
RUN cp /tmp/uid /out/uid && chmod 600 /out/uid && chown 1234:1234 /out/uid && ln -s one /out/link
"""

FAILING = f"""FROM {IMAGE}
RUN echo before
RUN echo failing; exit 3
RUN echo never
"""


def _context(buildah: Buildah, name: str, text: str) -> Path:
    ctx = buildah.base / "contexts" / name
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Containerfile").write_text(text)
    return ctx


def bud(buildah: Buildah, rt: OciRuntime) -> Observation:
    tag = "localhost/pyoci-bud:test"  # the tag is printed: the same for both
    res = buildah.bud(rt, _context(buildah, "ok", CONTAINERFILE), tag)
    try:
        return {"bud rc": res.rc, "stdout": res.stdout, "stderr": res.stderr, "_bud": res,
                "image id": buildah.image_id(tag),
                "files": buildah.files(tag, "/out") if res.rc == 0 else {}}
    finally:
        buildah.rmi(tag)


def bud_failing(buildah: Buildah, rt: OciRuntime) -> Observation:
    tag = "localhost/pyoci-bud-fail:test"
    res = buildah.bud(rt, _context(buildah, "failing", FAILING), tag)
    buildah.rmi(tag)
    return {"bud": res, "names the step": 'RUN echo failing; exit 3' in res.stderr,
            "exit status": "exit status 3" in res.stderr}


def test_bud(buildah: Buildah, oci_runtime: OciRuntime, reference: Reference) -> None:
    obs = bud(buildah, oci_runtime)
    res = obs["_bud"]
    assert obs["bud rc"] == 0, res.describe(40)
    out = res.stdout.splitlines()
    assert "step1" in out and "/work" in out and "has-hostname" in out, res.describe(40)
    assert "uid=0(root) gid=0(root) groups=0(root)" in out and "Seccomp:\t2" in out
    assert "env" in out and "one" in out and "1234" in out, res.describe(40)
    # everything on stderr is buildah's own (image copy progress) or the RUN's echo
    unexpected = [ln for ln in res.stderr.splitlines() if ln != "to-stderr" and not ln.startswith(
        ("Getting image source signatures", "Copying ", "Writing manifest", "Storing signatures"))]
    assert unexpected == [], res.describe(40)
    assert obs["files"] == {"/out/env": "100644 0:0 env bar\n",
                            "/out/link": "120777 0:0 -> one",
                            "/out/one": "100644 0:0 one\n",
                            "/out/uid": "100600 1234:1234 1234\n"}, obs["files"]
    reference.compare("buildah bud", oci_runtime, obs, lambda rt: bud(buildah, rt))


def test_bud_failing_step(buildah: Buildah, oci_runtime: OciRuntime,
                          reference: Reference) -> None:
    obs = bud_failing(buildah, oci_runtime)
    res = obs["bud"]
    assert res.rc != 0 and "failing" in res.stdout and "never" not in res.stdout, res.describe()
    assert obs["names the step"] and obs["exit status"], res.describe()
    reference.compare("buildah bud failing", oci_runtime, obs,
                      lambda rt: bud_failing(buildah, rt))

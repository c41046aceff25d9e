"""The measured operations. Each prepares its container with the same runtime outside the
timed region, times exactly one runtime command, then deletes what it made (--force).

| op | prepared beforehand | timed |
| --- | --- | --- |
| run | nothing | `run --bundle B ID` of /bin/true (create+start+wait+delete) |
| create | nothing | `create --bundle B ID` (/bin/true, left waiting for start) |
| start | `create` of /bin/true | `start ID` |
| state | a running `sleep` container | `state ID` |
| kill | a running `sleep` container | `kill ID KILL` |
| delete | a /bin/true container that has exited (status stopped) | `delete ID` |
| exec | a running `sleep` container | `exec ID /bin/true` |
| list | a running `sleep` container | `list` (the table) |
| version | nothing | `--version` |
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from bench.bundle import Bundles
from bench.proc import BenchError, Finished, Sample, run
from bench.runtimes import Runtime

OPS = ("run", "create", "start", "state", "kill", "delete", "exec", "list", "version")


class Operations:
    """One runtime's operations on its own bundles and state root; remembers every
    container it made until it is deleted."""

    def __init__(self, rt: Runtime, bundles: Bundles) -> None:
        self.rt = rt
        self.bundles = bundles
        self.live: set[str] = set()
        self.problems: list[str] = []  # cleanup failures, reported at the end

    # --- helpers (never timed) -----------------------------------------------------------

    def _call(self, *args: str) -> Finished:
        return run(self.rt.cmd(*args), env=self.rt.env)

    def _create(self, cid: str, bundle: str) -> None:
        self.live.add(cid)
        self._call("create", "--bundle", bundle, cid).check()

    def _running(self, cid: str) -> None:
        self._create(cid, str(self.bundles.sleep))
        self._call("start", cid).check()

    def status(self, cid: str) -> str:
        res = self._call("state", cid).check()
        return str(json.loads(res.stdout)["status"])

    def _wait_stopped(self, cid: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.status(cid) != "stopped":
            if time.monotonic() > deadline:
                raise BenchError(f"{self.rt.name}: {cid} did not stop within {timeout:.0f} s")
            time.sleep(0.01)

    def remove(self, cid: str) -> None:
        """delete --force by the runtime that made it; an error is reported, not hidden."""
        if cid not in self.live:
            return
        res = self._call("delete", "--force", cid)
        if res.rc != 0 and "not exist" not in res.stderr and "not found" not in res.stderr:
            raise BenchError(f"{self.rt.name}: cleanup failed\n{res.describe()}")
        self.live.discard(cid)

    def remove_all(self) -> None:
        """Delete whatever is still recorded; failures are kept in ``problems``."""
        for cid in sorted(self.live):
            try:
                self.remove(cid)
            except BenchError as exc:
                self.problems.append(str(exc))

    # --- the operations ------------------------------------------------------------------

    def _timed(self, *args: str) -> Sample:
        return self._call(*args).check().sample

    def op_run(self, cid: str) -> Sample:
        self.live.add(cid)  # removed again by run itself; remove() tolerates "not exist"
        sample = self._timed("run", "--bundle", str(self.bundles.true), cid)
        self.live.discard(cid)
        return sample

    def op_create(self, cid: str) -> Sample:
        self.live.add(cid)
        return self._timed("create", "--bundle", str(self.bundles.true), cid)

    def op_start(self, cid: str) -> Sample:
        self._create(cid, str(self.bundles.true))
        return self._timed("start", cid)

    def op_state(self, cid: str) -> Sample:
        self._running(cid)
        return self._timed("state", cid)

    def op_kill(self, cid: str) -> Sample:
        self._running(cid)
        return self._timed("kill", cid, "KILL")

    def op_delete(self, cid: str) -> Sample:
        self._create(cid, str(self.bundles.true))
        self._call("start", cid).check()
        self._wait_stopped(cid)
        sample = self._timed("delete", cid)
        self.live.discard(cid)
        return sample

    def op_exec(self, cid: str) -> Sample:
        self._running(cid)
        return self._timed("exec", cid, "/bin/true")

    def op_list(self, cid: str) -> Sample:
        self._running(cid)
        return self._timed("list")

    def op_version(self, cid: str) -> Sample:
        return self._timed("--version")

    def measure(self, op: str, cid: str) -> Sample:
        """Prepare, time, clean up (cleanup also after a failure)."""
        fn: Callable[[str], Sample] = getattr(self, f"op_{op}")
        try:
            sample = fn(cid)
        except BaseException:
            try:
                self.remove(cid)
            except BenchError:
                pass  # the first error is the one to report; remove_all() retries later
            raise
        self.remove(cid)
        return sample

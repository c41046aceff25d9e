"""Many containers at once: N `create`s launched together (all started, then all reaped),
then N `start`s, then N `delete --force`, each batch timed from the first launch to the
last reap. The containers sleep, so `delete --force` has to kill and wait for each.
This is the shape of an engine bringing up a pod or a CI job fanning out."""

from __future__ import annotations

from dataclasses import dataclass

from bench.ops import Operations
from bench.proc import BenchError, Finished, run_many

PHASES = ("create", "start", "delete")


@dataclass(frozen=True)
class ScaleResult:
    create: float
    start: float
    delete: float
    cpu: float  # user+sys summed over every command of the three batches
    max_rss_kib: int

    @property
    def total(self) -> float:
        return self.create + self.start + self.delete


def _checked(results: list[Finished], what: str) -> None:
    failed = [r for r in results if r.rc != 0]
    if failed:
        raise BenchError(f"{len(failed)}/{len(results)} {what} failed; first:\n"
                         + failed[0].describe())


def scale(ops: Operations, ids: list[str]) -> ScaleResult:
    rt = ops.rt
    bundle = str(ops.bundles.sleep)
    ops.live.update(ids)
    try:
        t_create, created = run_many([rt.cmd("create", "--bundle", bundle, i) for i in ids],
                                     env=rt.env)
        _checked(created, "create")
        t_start, started = run_many([rt.cmd("start", i) for i in ids], env=rt.env)
        _checked(started, "start")
        t_delete, deleted = run_many([rt.cmd("delete", "--force", i) for i in ids], env=rt.env)
        _checked(deleted, "delete --force")
        ops.live.difference_update(ids)
    finally:
        ops.remove_all()
    every = created + started + deleted
    return ScaleResult(t_create, t_start, t_delete, sum(r.sample.cpu for r in every),
                       max(r.sample.maxrss_kib for r in every))

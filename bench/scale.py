"""Many containers at once: N `create`s launched together (all started, then all reaped),
then N `start`s, then N `delete --force`, each batch timed from the first launch to the
last reap. The containers sleep, so `delete --force` has to kill and wait for each.
This is the shape of an engine bringing up a pod or a CI job fanning out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.ops import Operations
from bench.proc import Finished, check_all, run_many

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


def create_start(ops: Operations, ids: Sequence[str]) -> tuple[float, float, list[Finished]]:
    """Every ``create`` of the sleeping bundle launched at once and reaped, then every
    ``start``: each batch's wall time and all the results. ``ids`` go into ``live``
    before the first launch, so the harness's cleanup finds them after any failure."""
    rt = ops.rt
    bundle = str(ops.bundles.sleep)
    ops.live.update(ids)
    t_create, created = run_many([rt.cmd("create", "--bundle", bundle, i) for i in ids],
                                 env=rt.env)
    check_all(created, "create")
    t_start, started = run_many([rt.cmd("start", i) for i in ids], env=rt.env)
    check_all(started, "start")
    return t_create, t_start, created + started


def scale(ops: Operations, ids: list[str]) -> ScaleResult:
    rt = ops.rt
    try:
        t_create, t_start, launched = create_start(ops, ids)
        t_delete, deleted = run_many([rt.cmd("delete", "--force", i) for i in ids], env=rt.env)
        check_all(deleted, "delete --force")
        ops.live.difference_update(ids)
    finally:
        ops.remove_all()
    every = launched + deleted
    return ScaleResult(t_create, t_start, t_delete, sum(r.sample.cpu for r in every),
                       max(r.sample.maxrss_kib for r in every))

"""`python -m bench`: pyoci against runc on the same busybox bundle (issue 5).

Every measurement is a pair: the same step with runc, then with pyoci, back to back, after
a warm-up; rounds repeat the pairs (A B A B ...). Output: a table on stdout and, with
--json, the whole document (machine, runtimes, settings, every sample, summaries,
targets). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import buildah, cri, curves, docker, hostcheck, machine, plot, podman, report
from bench.bundle import Bundles, build_rootfs
from bench.ops import OPS, Operations
from bench.phase import phase_command, round_tag
from bench.proc import Sample
from bench.runtimes import (
    DROPPED_ENV,
    RUNC_PATH,
    Runtime,
    describe_pyoci,
    describe_runc,
    find_pyoci,
    plain_install,
    runtime_env,
)
from bench.scale import PHASES, ScaleResult, scale

REPO = Path(__file__).resolve().parent.parent
ORDER = ("runc", "pyoci")  # A B: runc first in every pair


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=20, help="measured pairs per operation")
    p.add_argument("--warmup", type=int, default=2, help="unrecorded rounds first")
    p.add_argument("--json", metavar="FILE", help="write the full results here")
    p.add_argument("--only", metavar="OP,OP", help=f"operations among {','.join(OPS)}")
    p.add_argument("--no-podman", action="store_true", help="skip podman run --rm")
    p.add_argument("--no-scale", action="store_true", help="skip the concurrent batch")
    p.add_argument("--no-docker", action="store_true",
                   help="skip docker run --rm / docker exec (a dockerd of the harness's own)")
    p.add_argument("--docker-rounds", type=int, default=8, help="pairs of docker runs/execs")
    p.add_argument("--no-buildah", action="store_true", help="skip buildah bud")
    p.add_argument("--no-cri", action="store_true",
                   help="skip the CRI pod lifecycle (a containerd of the harness's own)")
    p.add_argument("--engine-rounds", type=int, default=6,
                   help="pairs of buildah builds and of CRI pod lifecycles")
    p.add_argument("--podman-rounds", type=int, help="pairs of podman runs (default: --rounds)")
    p.add_argument("--scale-n", type=int, default=50, help="containers in the batch")
    p.add_argument("--scale-rounds", type=int, default=3, help="pairs of batches")
    p.add_argument("--curves", metavar="N,N", default=",".join(map(str, curves.DEFAULT_POINTS)),
                   help="scale curves: containers running at each point (default 10,100,500)")
    p.add_argument("--curve-rounds", type=int, default=5, help="pairs per point of the curves")
    p.add_argument("--no-curves", action="store_true",
                   help="skip the scale curves (--no-scale skips them too)")
    p.add_argument("--plot", metavar="PNG", help="draw the scale curves into this PNG "
                   "(needs matplotlib: bench/requirements-plot.txt)")
    p.add_argument("--pyoci", metavar="PATH", help="pyoci executable (default: next to "
                   "this interpreter, else PATH)")
    p.add_argument("--runc", metavar="PATH", default=str(RUNC_PATH))
    p.add_argument("--plain-install", metavar="DIR",
                   help="measure a plain install: a venv DIR made by /usr/bin/python3 with "
                        "its own pip, not upgraded, and `pip install` of this checkout "
                        "(made if DIR has no pyoci yet)")
    args = p.parse_args(argv)
    ops = args.only.split(",") if args.only else list(OPS)
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        p.error(f"unknown operation(s) {unknown}; choose from {','.join(OPS)}")
    args.ops = ops
    if args.rounds < 1 or args.warmup < 0 or args.scale_n < 1 or args.scale_rounds < 1:
        p.error("--rounds, --scale-n and --scale-rounds must be >= 1, --warmup >= 0")
    try:
        args.curve_points = sorted({int(x) for x in args.curves.split(",") if x})
    except ValueError:
        p.error(f"--curves takes numbers separated by commas, not {args.curves!r}")
    if not args.curve_points or args.curve_points[0] < 1 or args.curve_rounds < 1:
        p.error("--curves needs points >= 1 and --curve-rounds >= 1")
    if args.podman_rounds is None:
        args.podman_rounds = args.rounds
    return args


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _summarised(by_rt: dict[str, list[Any]]) -> dict[str, Any]:
    """A phase's samples by runtime and their pairwise summary: Sample fields (wall, CPU,
    peak RSS) where the engine's CLI waits for the runtime, plain wall seconds (CRI,
    whose runtimes are the shims' children) otherwise."""
    if by_rt and by_rt[ORDER[0]] and isinstance(by_rt[ORDER[0]][0], float):
        return {"samples": by_rt,
                "summary": {"wall": report.pair_summary(by_rt["pyoci"], by_rt["runc"])}}
    s = {n: [Sample(**x) for x in by_rt[n]] for n in ORDER}
    return {"samples": by_rt, "summary": report.op_summary(s["pyoci"], s["runc"])}


class Bench:
    def __init__(self, args: argparse.Namespace, base: Path) -> None:
        self.args = args
        self.base = base
        self.prefix = f"pyoci-bench-{os.getpid()}-"
        env = runtime_env()
        pyoci = (plain_install(Path(args.plain_install).resolve(), REPO)
                 if args.plain_install else find_pyoci(args.pyoci))
        paths = {"runc": Path(args.runc), "pyoci": pyoci}
        template = base / "rootfs"
        build_rootfs(REPO, template)
        self.template = template
        self.ops: dict[str, Operations] = {}
        for name in ORDER:
            rt = Runtime(name, paths[name], base / name / "state", env)
            rt.root.mkdir(parents=True)
            self.ops[name] = Operations(rt, Bundles(template, base / name / "bundles"))
        self.problems: list[str] = []

    def cid(self, rt: str, what: str, tag: str) -> str:
        return f"{self.prefix}{rt}-{what}-{tag}"

    # --- per-operation ---------------------------------------------------------------------

    def run_ops(self) -> dict[str, Any]:
        """Rounds outermost, so each round visits every operation once (a slow minute of
        the machine spreads over all operations rather than sinking one)."""
        a = self.args
        samples: dict[str, dict[str, list[Sample]]] = {op: {n: [] for n in ORDER}
                                                       for op in a.ops}
        for i in range(a.warmup + a.rounds):
            tag = round_tag(i, a.warmup)
            for op in a.ops:
                for name in ORDER:
                    s = self.ops[name].measure(op, self.cid(name, op, tag))
                    if i >= a.warmup:
                        samples[op][name].append(s)
            _log(f"  round {tag} done")
        return {op: {"samples": {n: report.samples_json(s[n]) for n in ORDER},
                     "summary": report.op_summary(s["pyoci"], s["runc"])}
                for op, s in samples.items()}

    # --- engines: podman, docker, buildah, CRI --------------------------------------------

    def run_phase(self, mod: Any, label: str, rounds: int, per_round: float,
                  host_paths: Sequence[Path]) -> dict[str, Any]:
        """``mod``'s phase (bench/podman.py, docker.py, buildah.py, cri.py) in a child in a
        private mount namespace (bench/phase.py), below a cgroup parent of ours, allowed
        600 s plus ``per_round`` s a round; its raw result, or why it was skipped. The
        cgroup parent and what the engine left of ``host_paths`` are removed afterwards."""
        reason = mod.missing() or (None if shutil.which("unshare") else "no unshare(1)")
        if reason:
            return {"skipped": reason}
        residue = hostcheck.HostResidue(host_paths)
        try:
            parent = hostcheck.CgroupParent(f"{self.prefix}{label}")
        except LookupError as exc:
            return {"skipped": str(exc)}
        out = self.base / f"{label}.json"
        cmd = phase_command(f"bench.{label}", self.base / label, parent.path, self.template,
                            {n: self.ops[n].rt.path for n in ORDER}, rounds, 1, out)
        try:
            try:
                res = subprocess.run(cmd, stdin=subprocess.DEVNULL, cwd=REPO,
                                     timeout=600 + per_round * rounds)
            except subprocess.TimeoutExpired:
                return {"skipped": f"the {label} phase timed out"}
            if res.returncode != 0 or not out.exists():
                return {"skipped": f"the {label} phase failed (exit {res.returncode})"}
            result: dict[str, Any] = json.loads(out.read_text())
        finally:
            self.problems += [f"cgroup left: {x}" for x in parent.remove()]
            residue.clean()
        self.problems += result.pop("problems", [])
        return result

    def run_podman(self) -> dict[str, Any]:
        """podman run --rm, then podman exec (bench/podman.py)."""
        result = self.run_phase(podman, "podman", self.args.podman_rounds, 120,
                                hostcheck.HOST_PATHS)
        if "skipped" in result:
            return result
        out = _summarised(result["samples"])
        if "exec_samples" in result:
            out["exec"] = _summarised(result["exec_samples"])
        return out

    def run_docker(self) -> dict[str, Any]:
        """A dockerd of the harness's own (bench/docker.py); both scenarios, runc and
        pyoci in pairs."""
        result = self.run_phase(docker, "docker", self.args.docker_rounds, 60,
                                docker.docker_engine.HOST_PATHS)
        if "skipped" in result:
            return result
        return {scenario: _summarised(by_rt) for scenario, by_rt in result["samples"].items()}

    def run_engine(self, mod: Any, label: str, host_paths: Sequence[Path]) -> dict[str, Any]:
        """buildah bud (bench/buildah.py) or the CRI pod lifecycle (bench/cri.py); wall
        (and CPU where the engine's CLI waits for the runtime) per pair."""
        result = self.run_phase(mod, label, self.args.engine_rounds, 60, host_paths)
        if "skipped" in result:
            return result
        return _summarised(result["samples"])

    # --- scale -------------------------------------------------------------------------------

    def run_scale(self) -> dict[str, Any]:
        n = self.args.scale_n
        results: dict[str, list[ScaleResult]] = {name: [] for name in ORDER}
        for r in range(self.args.scale_rounds):
            for name in ORDER:
                ids = [self.cid(name, "scale", f"{r}-{k}") for k in range(n)]
                results[name].append(scale(self.ops[name], ids))
            _log(f"  scale round {r} done")
        summary = {}
        for phase in (*PHASES, "total"):
            summary[phase] = report.pair_summary(
                [getattr(x, phase) for x in results["pyoci"]],
                [getattr(x, phase) for x in results["runc"]])
        return {"n": n, "rounds": self.args.scale_rounds, "summary": summary,
                "samples": {name: [{"create": x.create, "start": x.start, "delete": x.delete,
                                    "total": x.total, "cpu": x.cpu,
                                    "max_rss_kib": x.max_rss_kib} for x in results[name]]
                            for name in ORDER}}

    def run_curves(self) -> dict[str, Any]:
        return curves.curves(self.ops, ORDER, self.prefix, self.args.curve_points,
                             self.args.curve_rounds, _log)

    # --- the end -------------------------------------------------------------------------------

    def cleanup(self) -> None:
        for o in self.ops.values():
            o.remove_all()
            self.problems += o.problems
        left = hostcheck.cgroups_named(self.prefix)
        if left:
            self.problems.append(f"cgroups left: {left}")
            for d in left:
                hostcheck.rmdir_tree(Path(d))


def describe(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    pyoci = describe_pyoci(bench.ops["pyoci"].rt.path)
    pyoci["install"] = ("editable" if pyoci.get("editable") else "regular") \
        if "editable" in pyoci else "unknown"
    return {
        "pid": os.getpid(),  # container ids and cgroups are named pyoci-bench-<pid>-...
        "workdir": str(bench.base),  # removed at the end
        "command": shlex.join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]]),
        "machine": machine.describe(REPO),
        "runtimes": {"pyoci": pyoci, "runc": describe_runc(bench.ops["runc"].rt.path)},
        "settings": {"rounds": args.rounds, "warmup": args.warmup, "ops": args.ops,
                     "podman_rounds": None if args.no_podman else args.podman_rounds,
                     "docker_rounds": None if args.no_docker else args.docker_rounds,
                     "engine_rounds": args.engine_rounds,
                     "scale_n": None if args.no_scale else args.scale_n,
                     "scale_rounds": None if args.no_scale else args.scale_rounds,
                     "curves": None if args.no_scale or args.no_curves else args.curve_points,
                     "curve_rounds": args.curve_rounds,
                     "order": list(ORDER),
                     "env_dropped_for_runtimes": [k for k in DROPPED_ENV if k in os.environ]},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        _log("bench: runs real containers and needs root")
        return 2
    base = Path(tempfile.mkdtemp(prefix="pyoci-bench-"))
    os.chmod(base, 0o755)
    bench = None
    rc = 0
    try:
        bench = Bench(args, base)
        doc = describe(args, bench)
        p = doc["runtimes"]["pyoci"]
        _log(f"bench: pyoci = {p['script']} ({p['install']} install, "
             f"module {p.get('module')}); runc = {bench.ops['runc'].rt.path}")
        if doc["settings"]["env_dropped_for_runtimes"]:
            _log(f"bench: runtimes run without {doc['settings']['env_dropped_for_runtimes']}")
        before = machine.CpuTimes.now()
        doc["loadavg"] = {"start": os.getloadavg()}
        _log(f"bench: operations {','.join(args.ops)}")
        doc["ops"] = bench.run_ops()
        if args.no_podman:
            doc["podman"] = {"skipped": "--no-podman"}
        else:
            _log("bench: podman run --rm")
            doc["podman"] = bench.run_podman()
        if args.no_docker:
            doc["docker"] = {"skipped": "--no-docker"}
        else:
            _log("bench: docker run --rm, docker exec")
            doc["docker"] = bench.run_docker()
        doc["engines"] = {}
        for mod, label, flag, paths in (
                (buildah, "buildah", args.no_buildah, hostcheck.HOST_PATHS),
                (cri, "cri", args.no_cri, cri.CRI_HOST_PATHS)):
            if flag:
                doc["engines"][mod.SCENARIO] = {"skipped": f"--no-{label}"}
            else:
                _log(f"bench: {mod.SCENARIO}")
                doc["engines"][mod.SCENARIO] = bench.run_engine(mod, label, paths)
        if args.no_scale:
            doc["scale"] = {"skipped": "--no-scale"}
        else:
            _log(f"bench: {args.scale_n} concurrent containers")
            doc["scale"] = bench.run_scale()
        if args.no_scale or args.no_curves:
            doc["curves"] = {"skipped": "--no-scale" if args.no_scale else "--no-curves"}
        else:
            _log(f"bench: scale curves at {args.curves} running containers")
            doc["curves"] = bench.run_curves()
        doc["steal"] = machine.CpuTimes.now().steal_since(before)
        doc["loadavg"]["end"] = os.getloadavg()
    except (RuntimeError, OSError) as exc:  # BenchError (a command failed), setup errors
        _log(f"bench: {exc}")
        rc = 1
        doc = None
    finally:
        if bench is not None:
            bench.cleanup()
        left = hostcheck.mounts_under(base)
        if left:
            _log(f"bench: mounts left under {base}, not removed: {left}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    problems = (bench.problems if bench else []) + ([f"mounts left: {left}"] if left else [])
    if doc is None:
        for p in problems:
            _log(f"bench: {p}")
        return rc
    doc["problems"] = problems
    doc["targets"] = [t.__dict__ for t in report.targets(doc)]
    if args.plot and "points" in doc["curves"]:
        why = plot.write_png(doc["curves"], Path(args.plot), doc["command"])
        doc["curves"]["plot"] = why or str(args.plot)
        _log(f"bench: {why or 'plot written to ' + args.plot}")
    print(report.table(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if problems else 0

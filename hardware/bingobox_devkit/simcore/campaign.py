"""``bingobox simulate``: many runs of the deterministic simulation (``run.run_seed``), optionally in several
processes, summed up as JSON: ``runs``, ``plays``, ``crash_points``, ``violations`` (each with the ``seed`` and
``crash_at`` that replay it: ``bingobox simulate --seed S --runs 1 [--crash-at K]``), ``unbilled_for_review`` and the
time it took. Exits 1 on any violation."""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from . import run


def _one(args: tuple[int, int, bool, int | None, bool, bool, float]) -> dict:
    seed, shoppers, crashes, crash_at, groups, batches, settle = args
    logging.disable(logging.CRITICAL)  # the core logs every alarm; thousands of runs would drown the summary
    if crash_at is not None:
        plan = replace(run.Plan.draw(seed, shoppers, groups, batches), exit_settle_s=settle)
        workdir = run.workdir()
        try:
            p = run.play(plan, crash_at, workdir)
        finally:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        return {"seed": seed, "shoppers": len(plan.shoppers), "commits": p.commits, "crash_points": 1,
                "violations": [{**v, "seed": seed, "crash_at": crash_at} for v in p.violations],
                "excused": p.stats["excused"], "seconds": 0.0}
    return run.run_seed(seed, shoppers, every_k=crashes, groups=groups, batches=batches, exit_settle_s=settle)


def review_rates(runs: list[dict]) -> dict:
    """The review rate over the runs' uncrashed plays (visits that entered the queue / visits that ended), by cause
    and by the fault kinds a run had ("none": runs without any)."""
    def rate(rs: list[dict]) -> dict:
        visits, reviews = sum(r["visits"] for r in rs), sum(r["reviews"] for r in rs)
        return {"runs": len(rs), "visits": visits, "reviews": reviews,
                "review_rate": round(reviews / visits, 4) if visits else 0.0}

    causes: collections.Counter = collections.Counter()
    for r in runs:
        causes.update(r["by_cause"])
    kinds = sorted({k for r in runs for k in r["faults"]})
    return {**rate(runs), "by_cause": dict(sorted(causes.items())),
            "by_fault": {"none": rate([r for r in runs if not r["faults"]]),
                         **{k: rate([r for r in runs if k in r["faults"]]) for k in kinds}}}


def campaign(runs: int, seed: int, shoppers: int = 6, crashes: bool = True, jobs: int = 1,
             crash_at: int | None = None, progress=None, groups: bool = False, batches: bool = True,
             exit_settle_s: float = 0.0) -> dict:
    t0 = time.perf_counter()
    tasks = [(seed + i, shoppers, crashes, crash_at, groups, batches, exit_settle_s) for i in range(runs)]
    results = []
    if jobs > 1:
        # spawned, not forked: a caller with threads of its own (a test run) must not fork their locks; a few
        # runs are spread one at a time, thousands four at a time
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for r in pool.map(_one, tasks, chunksize=max(1, min(4, runs // (4 * jobs)))):
                results.append(r)
                if progress:
                    progress(r, len(results), runs)
    else:
        for task in tasks:
            results.append(_one(task))
            if progress:
                progress(results[-1], len(results), runs)
    violations = [v for r in results for v in r["violations"]]
    review = review_rates([r["review"] for r in results if "review" in r])
    excused = [e for r in results for e in r.get("excused", [])]
    return {"runs": len(results), "first_seed": seed, "plays": sum(1 + r["crash_points"] for r in results),
            "crash_points": sum(r["crash_points"] for r in results),
            "commits": sum(r["commits"] for r in results), "shoppers": sum(r["shoppers"] for r in results),
            "violations": violations,
            "violations_by_kind": dict(collections.Counter(v["kind"] for v in violations)),
            "unbilled_for_review": len(excused), "review_rate": review["review_rate"], "review": review,
            "groups": groups, "batches": batches, "exit_settle_s": exit_settle_s,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(args) -> int:
    def progress(r: dict, done: int, total: int) -> None:
        if not args.json and (done % max(1, total // 20) == 0 or r["violations"]):
            print(f"run {done}/{total} (seed {r['seed']}): {r['shoppers']} shoppers, {r['crash_points']} crash "
                  f"points, {len(r['violations'])} violations", file=sys.stderr, flush=True)

    settle = getattr(args, "exit_settle_s", 0.0)
    try:
        run.store_config(settle)  # (the store's own bounds on it, checked once, not in every run)
    except ValueError as e:
        print(f"--exit-settle-s {settle}: not a store setting: {e}", file=sys.stderr)
        return 2
    out = campaign(args.runs, args.seed, args.shoppers, not args.no_crashes, args.jobs,
                   getattr(args, "crash_at", None), progress, groups=getattr(args, "groups", False),
                   batches=not getattr(args, "plain_goods", False),
                   exit_settle_s=settle)
    if args.json:
        print(json.dumps(out), flush=True)
    else:
        shown = {**out, "violations": out["violations"][:20]}
        print(json.dumps(shown, indent=2), flush=True)
        if len(out["violations"]) > 20:
            print(f"… and {len(out['violations']) - 20} more violations (--json lists them all)", file=sys.stderr)
    return 1 if out["violations"] else 0

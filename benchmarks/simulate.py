"""Simulation benchmark: N synthetic workers × 12 months, one baseline and one reform, beside plain pandas.

    python benchmarks/simulate.py [--workers 10000000] [--months 12] [--threads 2] [--keep DIR]

1. The population: `simulations.population.synthetic(N, months, seed)` in a child process,
   saved as Parquet in DIR and reused when it is there (building 10M workers takes minutes
   and is not what is measured; its time and RSS are printed once).
2. In a fresh child process: load the population, then
   - the simulation: `simulations.engine.run` (two forked engine processes; `--processes 1`
     for threads in process) over the baseline (vn-pilot) and one reform
     (poor tier 50 % and ride si 1.2 %, both from the first month, so every row is priced
     twice over), then `simulations.results.compute` (every results table). Wall time of
     each, worker-months/s, peak RSS of the process (population included);
3. The baseline, in the same run, in its own child process over the same Parquet frame:
   plain pandas — the worker's three shares (si, oa, ui: what the subsidy is computed
   from) of every row by column arithmetic with each arm's rates, then
   `groupby(["month", "worker"]).sum()`, once per arm. No subsidy, no budget, no
   tables: what one writes by hand. (All six shares as pandas columns would need ~9 GB
   at 10M workers.) The two agree on every worker-share total and on the number of
   worker-months (checked here, asserted by the smoke test).

Writes the figures as JSON under benchmarks/results/ and prints a summary. Target
(../shared/TARGETS.md): 10M workers × 12 months, one scenario, < 10 s and < 8 GB.
`run()` is what tests/test_benchmarks_smoke.py calls with a tiny N.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.ingest import RESULTS, machine

SEED = 42
START = "2026-01"
REFORM = {"tiers.poor": 500_000, "rates.ride.si.worker": 12_000}
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 8 * 1024


def scenario(workers: int, months: int):
    from simulations.scenario import parse_scenario

    return parse_scenario({"name": "benchmark", "baseline": "vn-pilot", "start": START, "horizon_months": months,
                           "seed": SEED, "population": {"synthetic": {"workers": workers}},
                           "reforms": {"reform": {"description": "poor 50 %, ride si 1.2 %", "changes": REFORM}}})


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the forked engine processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------

def child_generate(workers: int, months: int, directory: Path) -> dict:
    from simulations import population as populations

    started = time.perf_counter()
    population = populations.synthetic(workers, scenario(workers, months).months, SEED)
    built = time.perf_counter() - started
    populations.save(population, directory)
    return {"seconds": built, "save_seconds": time.perf_counter() - started - built,
            "activity_rows": len(population.activity), "peak_rss_mb": _peak_rss_mb()}


WORKER_COLUMNS = ("si_worker", "oa_worker", "ui_worker")


def child_pandas(directory: Path, months: int) -> dict:
    """Plain pandas over the same frame: worker shares by column arithmetic, group-by (month, worker), per arm."""
    import numpy as np
    import pandas as pd

    from rules import PPM, rate_matrix_ppm
    from simulations import engine
    from simulations import population as populations
    from simulations.population import SHARE_COLUMNS

    population = populations.load(directory)
    activity = population.activity
    versions = [pack.version_on(engine.first_day(population.months[0]))
                for pack in scenario(len(population.workers), months).arms().values()]
    rss_loaded = _peak_rss_mb()
    started = time.perf_counter()
    totals = []
    groups = 0
    for version in versions:
        rates = rate_matrix_ppm(version)
        frame = pd.DataFrame({"month": activity["month"], "worker": activity["worker"],
                              "gross_vnd": activity["gross_vnd"]})
        kind = activity["kind"].to_numpy()
        for column in WORKER_COLUMNS:
            rate = pd.Series(rates[:, SHARE_COLUMNS.index(column)][kind], index=frame.index)
            frame[column] = (2 * frame["gross_vnd"] * rate + PPM) // (2 * PPM)
        grouped = frame.groupby(["month", "worker"], sort=True)[["gross_vnd", *WORKER_COLUMNS]].sum()
        groups = len(grouped)
        totals.append({column: int(grouped[column].to_numpy(dtype=np.int64).sum()) for column in WORKER_COLUMNS})
        del frame, grouped
    return {"seconds": time.perf_counter() - started, "groups": groups, "share_totals": totals,
            "peak_rss_mb_loaded": rss_loaded, "peak_rss_mb": _peak_rss_mb()}


def child_measure(directory: Path, months: int, threads: int, chunk_workers: int | None, processes: int) -> dict:
    from simulations import engine
    from simulations import population as populations
    from simulations.population import SHARE_COLUMNS
    from simulations.results import compute
    from simulations.run import results_hash

    started = time.perf_counter()
    population = populations.load(directory)
    loaded = time.perf_counter() - started
    rss_loaded = _peak_rss_mb()
    parsed = scenario(len(population.workers), months)
    arms = parsed.arms()
    options = {"threads": threads, "processes": processes}
    if chunk_workers:
        options["chunk_workers"] = chunk_workers

    cpu = _cpu_seconds()
    started = time.perf_counter()
    engine._warm_up()  # numba: compiles the kernels, or loads them from its on-disk cache (counted in the engine)
    compile_seconds = time.perf_counter() - started
    results = engine.run(population, arms, parsed.budget, **options)
    engine_seconds = time.perf_counter() - started
    engine_cpu = _cpu_seconds() - cpu
    cpu = _cpu_seconds()
    started = time.perf_counter()
    tables = compute(population, results)
    results_seconds = time.perf_counter() - started
    results_cpu = _cpu_seconds() - cpu
    rss_simulated = _peak_rss_mb()
    rss_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # forked engine processes
    engine_totals = [{column: int(arm.worker_totals[column].sum()) for column in SHARE_COLUMNS}
                     for arm in results.values()]
    worker_totals = [{column: totals[column] for column in WORKER_COLUMNS} for totals in engine_totals]
    worker_months = int(sum(arm.by_month_tier.drop_duplicates(["month", "tier"])["workers_active"].sum()
                            for arm in list(results.values())[:1]))
    digest = results_hash(tables.tables)
    del results, tables
    return {
        "workers": len(population.workers), "months": len(population.months), "arms": len(arms),
        "activity_rows": len(population.activity), "worker_months": worker_months,
        "threads": threads, "processes": processes, "chunk_workers": chunk_workers or engine.CHUNK_WORKERS,
        "peak_rss_mb_engine_processes": rss_workers,
        "load_seconds": loaded, "peak_rss_mb_loaded": rss_loaded,
        "engine_seconds": engine_seconds, "engine_compile_seconds": compile_seconds,
        "results_seconds": results_seconds, "engine_cpu_seconds": engine_cpu, "results_cpu_seconds": results_cpu,
        "load_average": os.getloadavg(),
        "seconds": engine_seconds + results_seconds, "peak_rss_mb": rss_simulated,
        "results_sha256": digest, "engine_share_totals": engine_totals, "engine_worker_share_totals": worker_totals,
    }


def _child(arguments: list[str], folder: Path, name: str) -> tuple[dict, float]:
    """Run this script in a child process; its JSON answer and its peak RSS (from wait4)."""
    answer = folder / f"{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), *arguments, "--answer", str(answer)]
    with (folder / f"{name}.err").open("wb") as err:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _pid, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{name} failed: {(folder / f'{name}.err').read_text()[-3000:]}")
    return json.loads(answer.read_text()), usage.ru_maxrss / 1024


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------

def run(workers: int, *, folder: Path, months: int = 12, threads: int | None = None,
        chunk_workers: int | None = None, processes: int = 2, pandas: bool = True) -> dict:
    """Build (or reuse) the population, measure the simulation and the pandas baseline; the figures."""
    from simulations.engine import THREADS

    threads = threads or THREADS
    folder.mkdir(parents=True, exist_ok=True)
    directory = folder / f"population-{workers}x{months}-seed{SEED}"
    results: dict = {"machine": machine()}
    if not (directory / "population.json").exists():
        print(f"building {workers:,} workers × {months} months …", flush=True)
        generated, generate_rss = _child(["--generate", "--workers", str(workers), "--months", str(months),
                                          "--population", str(directory)], folder, "generate")
        results["population_build"] = {**generated, "child_peak_rss_mb": generate_rss}
    arguments = ["--measure", "--months", str(months), "--population", str(directory), "--threads", str(threads),
                 "--processes", str(processes)]
    if chunk_workers:
        arguments += ["--chunk-workers", str(chunk_workers)]
    figures, child_rss = _child(arguments, folder, "measure")
    figures["child_peak_rss_mb"] = child_rss
    if pandas:
        plain, plain_rss = _child(["--pandas", "--months", str(months), "--population", str(directory)], folder,
                                  "pandas")
        figures["pandas_groupby"] = {**plain, "child_peak_rss_mb": plain_rss}
        figures["agrees_with_pandas"] = figures["engine_worker_share_totals"] == plain["share_totals"] \
            and figures["worker_months"] == plain["groups"]
    figures["worker_months_per_s"] = figures["workers"] * figures["months"] / figures["seconds"]
    figures["rows_per_s"] = figures["activity_rows"] * figures["arms"] / figures["engine_seconds"]
    figures["target_seconds"] = TARGET_SECONDS
    figures["target_rss_mb"] = TARGET_RSS_MB
    results["simulation"] = figures
    results["machine"]["load_average_after"] = os.getloadavg()
    _print(figures)
    return results


def _print(figures: dict) -> None:
    plain = figures.get("pandas_groupby")
    print(f"simulate: {figures['workers']:,} workers × {figures['months']} months, {figures['arms']} arms "
          f"({figures['activity_rows']:,} activity rows, {figures['worker_months']:,} worker-months): "
          f"{figures['seconds']:.1f} s (engine {figures['engine_seconds']:.1f} s, of which "
          f"{figures['engine_compile_seconds']:.1f} s JIT compile / cache load, + results tables "
          f"{figures['results_seconds']:.1f} s; {figures['worker_months_per_s']:,.0f} worker-months/s, "
          f"{figures['processes']} engine processes), peak RSS {figures['peak_rss_mb']:,.0f} MB "
          f"(population loaded: {figures['peak_rss_mb_loaded']:,.0f} MB; each forked engine process "
          f"{figures['peak_rss_mb_engine_processes']:,.0f} MB, mostly the population's pages it shares)"
          + (f" | plain pandas group-by of the worker shares, same frame, {figures['arms']} arms: "
             f"{plain['seconds']:.1f} s, peak RSS {plain['peak_rss_mb']:,.0f} MB"
             f" | {'agree' if figures['agrees_with_pandas'] else 'DISAGREE'} on every worker-share total"
             if plain else " | pandas group-by not run (--no-pandas)")
          + f" | target < {figures['target_seconds']:.0f} s, < {figures['target_rss_mb'] // 1024} GB", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: 2, the machine's cores)")
    parser.add_argument("--chunk-workers", type=int, default=None)
    parser.add_argument("--processes", type=int, default=2,
                        help="forked engine processes (1: in process, on threads)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the plain pandas group-by beside it")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the population here")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pandas", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--population", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        args.answer.write_text(json.dumps(child_generate(args.workers, args.months, args.population)))
        return 0
    if args.pandas:
        args.answer.write_text(json.dumps(child_pandas(args.population, args.months)))
        return 0
    if args.measure:
        args.answer.write_text(json.dumps(child_measure(args.population, args.months, args.threads,
                                                        args.chunk_workers, args.processes)))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-bench-"))
    results = run(args.workers, folder=folder, months=args.months, threads=args.threads,
                  chunk_workers=args.chunk_workers, processes=args.processes, pandas=not args.no_pandas)
    results["command"] = " ".join(["python", "benchmarks/simulate.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"simulate-{args.workers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

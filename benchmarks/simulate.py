"""Simulation benchmark: N synthetic workers × 12 months, one baseline and one reform, beside plain pandas.

    python benchmarks/simulate.py [--workers 10000000] [--months 12] [--threads 2] [--keep DIR]
                                  [--behaviour 0.1]

1. The population: `simulations.population.synthetic(N, months, seed)` (calibrated to the
   national totals: weights) in a child process, kept in DIR's population cache
   (`population.cached`: every column an uncompressed .npy file) and reused when it is
   there; its build time and RSS are printed when it is built.
2. In a fresh child process: map the population from the cache (the hash verified), then
   - the behavioural response: `simulations.behaviour.plan` with participation elasticity
     `--behaviour` (default 0.1, the cited default; 0 for a static run);
   - the simulation: `simulations.engine.run` (two forked engine processes; `--processes 1`
     for threads in process) over the baseline (vn-pilot) and one reform
     (poor tier 50 % and ride si 1.2 %, both from the first month, so every row is priced
     twice over, and riders opt out of the reform), then `simulations.results.compute`
     (every results table). Wall time of each, worker-months/s, peak RSS of the process
     (population included), and what a user waits for: population mapped + behaviour +
     engine + tables (the report's HTML and charts are not included);
3. The baseline, in the same run, in its own child process over the same Parquet frame:
   plain pandas — the worker's three shares (si, oa, ui: what the subsidy is computed
   from) of every row by column arithmetic with each arm's rates, then
   `groupby(["month", "worker"]).sum()`, once per arm (the opted-out worker-months of the
   reform's arm zeroed by the same draws). No subsidy, no budget, no tables: what one
   writes by hand. (All six shares as pandas columns would need ~9 GB
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
TARGET_USER_SECONDS = 60.0  # the whole command at 10M × 12 (issue 18)
DEFAULT_BEHAVIOUR = 0.1


def scenario(workers: int, months: int, behaviour: float = 0.0):
    from simulations.scenario import parse_scenario

    document = {"name": "benchmark", "baseline": "vn-pilot", "start": START, "horizon_months": months,
                "seed": SEED, "population": {"synthetic": {"workers": workers}},
                "reforms": {"reform": {"description": "poor 50 %, ride si 1.2 %", "changes": REFORM}}}
    if behaviour:
        document["behaviour"] = {"participation_elasticity": behaviour}
    return parse_scenario(document)


def participation_of(population, parsed):
    from simulations import behaviour

    return behaviour.plan(population.workers, population.months, list(parsed.arms().values()), parsed.behaviour,
                          parsed.seed)


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the forked engine processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------

def child_generate(workers: int, months: int, cache: Path) -> dict:
    """Build the population (or find it) in the cache; the folder it is in, and the build's figures."""
    from simulations import population as populations

    parsed = scenario(workers, months)
    key = populations.cache_key(benchmark=True, workers=workers, months=list(parsed.months), seed=SEED)
    started = time.perf_counter()
    timings = {}

    def build():
        population = populations.synthetic(workers, parsed.months, SEED)
        timings["build_seconds"] = time.perf_counter() - started
        return population

    population, hit = populations.cached(cache, key, build)
    return {"directory": str(Path(cache) / key[:32]), "origin": "mapped" if hit else "built",
            "seconds": timings.get("build_seconds", 0.0),
            "save_seconds": time.perf_counter() - started - timings.get("build_seconds", 0.0) if not hit else 0.0,
            "activity_rows": len(population.activity), "peak_rss_mb": _peak_rss_mb()}


WORKER_COLUMNS = ("si_worker", "oa_worker", "ui_worker")


def child_pandas(directory: Path, months: int, behaviour_elasticity: float) -> dict:
    """Plain pandas over the same frame: worker shares by column arithmetic, group-by (month, worker), per arm."""
    import numpy as np
    import pandas as pd

    from rules import PPM, rate_matrix_ppm
    from simulations import engine
    from simulations import population as populations
    from simulations.population import SHARE_COLUMNS

    population = populations.load_mapped(directory)
    activity = population.activity
    parsed = scenario(len(population.workers), months, behaviour_elasticity)
    versions = [pack.version_on(engine.first_day(population.months[0])) for pack in parsed.arms().values()]
    participation = participation_of(population, parsed)
    rss_loaded = _peak_rss_mb()
    started = time.perf_counter()
    totals = []
    groups = 0
    for arm, version in enumerate(versions):
        rates = rate_matrix_ppm(version)
        frame = pd.DataFrame({"month": activity["month"], "worker": activity["worker"],
                              "gross_vnd": activity["gross_vnd"]})
        kind = activity["kind"].to_numpy()
        if participation is not None and participation.keep_ppb[arm][0] is not None:  # the same keep every month
            keep = participation.keeps(participation.keep_ppb[arm][0], activity["worker"].to_numpy())
            frame["gross_vnd"] = frame["gross_vnd"].where(keep, 0)  # an opted-out row deducts nothing
        for column in WORKER_COLUMNS:
            rate = pd.Series(rates[:, SHARE_COLUMNS.index(column)][kind], index=frame.index)
            frame[column] = (2 * frame["gross_vnd"] * rate + PPM) // (2 * PPM)
        grouped = frame.groupby(["month", "worker"], sort=True)[["gross_vnd", *WORKER_COLUMNS]].sum()
        groups = len(grouped)
        totals.append({column: int(grouped[column].to_numpy(dtype=np.int64).sum()) for column in WORKER_COLUMNS})
        del frame, grouped
    return {"seconds": time.perf_counter() - started, "groups": groups, "share_totals": totals,
            "peak_rss_mb_loaded": rss_loaded, "peak_rss_mb": _peak_rss_mb()}


def child_measure(directory: Path, months: int, threads: int, chunk_workers: int | None, processes: int,
                  behaviour_elasticity: float) -> dict:
    from simulations import engine
    from simulations import population as populations
    from simulations.population import SHARE_COLUMNS
    from simulations.results import compute
    from simulations.run import results_hash

    started = time.perf_counter()
    population = populations.load_mapped(directory)
    loaded = time.perf_counter() - started
    rss_loaded = _peak_rss_mb()
    parsed = scenario(len(population.workers), months, behaviour_elasticity)
    arms = parsed.arms()
    started = time.perf_counter()
    participation = participation_of(population, parsed)
    behaviour_seconds = time.perf_counter() - started
    options = {"threads": threads, "processes": processes, "participation": participation}
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
        "load_seconds": loaded, "peak_rss_mb_loaded": rss_loaded, "behaviour_seconds": behaviour_seconds,
        "participation_elasticity": behaviour_elasticity,
        "user_seconds": loaded + behaviour_seconds + engine_seconds + results_seconds,
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
        chunk_workers: int | None = None, processes: int = 2, pandas: bool = True,
        behaviour: float = DEFAULT_BEHAVIOUR) -> dict:
    """Build (or reuse) the population, measure the simulation and the pandas baseline; the figures."""
    from simulations.engine import THREADS

    threads = threads or THREADS
    folder.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine()}
    print(f"population: {workers:,} workers × {months} months (built once, then mapped from {folder}) …", flush=True)
    generated, generate_rss = _child(["--generate", "--workers", str(workers), "--months", str(months),
                                      "--population", str(folder / "populations")], folder, "generate")
    directory = Path(generated["directory"])
    results["population_build"] = {**generated, "child_peak_rss_mb": generate_rss}
    if generated["origin"] == "built":
        print(f"population built in {generated['seconds']:.1f} s, stored in {generated['save_seconds']:.1f} s "
              f"(peak RSS {generate_rss:,.0f} MB)", flush=True)
    arguments = ["--measure", "--months", str(months), "--population", str(directory), "--threads", str(threads),
                 "--processes", str(processes), "--behaviour", str(behaviour)]
    if chunk_workers:
        arguments += ["--chunk-workers", str(chunk_workers)]
    figures, child_rss = _child(arguments, folder, "measure")
    figures["child_peak_rss_mb"] = child_rss
    if pandas:
        plain, plain_rss = _child(["--pandas", "--months", str(months), "--population", str(directory),
                                   "--behaviour", str(behaviour)], folder, "pandas")
        figures["pandas_groupby"] = {**plain, "child_peak_rss_mb": plain_rss}
        figures["agrees_with_pandas"] = figures["engine_worker_share_totals"] == plain["share_totals"] \
            and figures["worker_months"] == plain["groups"]
    figures["worker_months_per_s"] = figures["workers"] * figures["months"] / figures["seconds"]
    figures["rows_per_s"] = figures["activity_rows"] * figures["arms"] / figures["engine_seconds"]
    figures["target_seconds"] = TARGET_SECONDS
    figures["target_user_seconds"] = TARGET_USER_SECONDS
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
    print(f"what a user waits for: {figures['user_seconds']:.1f} s = population mapped and verified "
          f"{figures['load_seconds']:.1f} s + behaviour (elasticity {figures['participation_elasticity']:g}) "
          f"{figures['behaviour_seconds']:.1f} s + engine {figures['engine_seconds']:.1f} s + tables "
          f"{figures['results_seconds']:.1f} s (report not included) | target < "
          f"{figures['target_user_seconds']:.0f} s at 10M × 12", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: 2, the machine's cores)")
    parser.add_argument("--chunk-workers", type=int, default=None)
    parser.add_argument("--processes", type=int, default=2,
                        help="forked engine processes (1: in process, on threads)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the plain pandas group-by beside it")
    parser.add_argument("--behaviour", type=float, default=DEFAULT_BEHAVIOUR,
                        help="participation elasticity of the reform's opt-outs (0: static)")
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
        args.answer.write_text(json.dumps(child_pandas(args.population, args.months, args.behaviour)))
        return 0
    if args.measure:
        args.answer.write_text(json.dumps(child_measure(args.population, args.months, args.threads,
                                                        args.chunk_workers, args.processes, args.behaviour)))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-bench-"))
    results = run(args.workers, folder=folder, months=args.months, threads=args.threads,
                  chunk_workers=args.chunk_workers, processes=args.processes, pandas=not args.no_pandas,
                  behaviour=args.behaviour)
    results["command"] = " ".join(["python", "benchmarks/simulate.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"simulate-{args.workers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

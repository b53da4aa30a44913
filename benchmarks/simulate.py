"""Simulation benchmark: N workers × M months, a baseline and a reform; engine only beside the whole command.

    python benchmarks/simulate.py [--workers 10000000] [--months 12] [--repeat 2] [--keep DIR] [--behaviour 0.1]
                                  [--no-whole] [--no-cold] [--no-report] [--no-pandas] [--static]
    python benchmarks/simulate.py --workers 1000000 --months 120 --no-whole --static   # the 10-year window

The scenario (DIR/scenario.yaml): vn-pilot and one reform (poor tier 50 % and ride si 1.2 %,
both from the first month, so every row is priced twice over), a synthetic population of N
workers (calibrated to the national totals: weights), the cited behavioural response
(participation elasticity `--behaviour`, default 0.1: riders opt out of the reform).

1. The whole command, cold: `ansinh simulate DIR/scenario.yaml --out … --population-cache
   DIR/populations` under `/usr/bin/time -v` with the population not in the cache (it is
   drawn and stored: every column an uncompressed .npy file): wall, CPU seconds and peak RSS
   of everything a user waits for — interpreter start and imports, population, behaviour,
   engine (forked processes), tables, report (HTML, PDF, charts, Excel, Parquet, CSV).
2. The population, as `ansinh simulate` keeps it (the same cache entry), built if step 1 was
   skipped.
3. `--repeat` rounds of, interleaved:
   - a floor, in a fresh process: one numpy sum over each activity column the engine reads,
     mapped from the same files;
   - engine only, in a fresh process: the population mapped (its hash verified), the
     behavioural response (`behaviour.plan`), `simulations.engine.run` (two forked engine
     processes; `--processes 1` for threads in process; the kernels loaded from numba's cache
     or compiled, counted), then `simulations.results.compute` (every results table): wall,
     CPU seconds (the forked processes included), peak RSS; the floor again in that process.
     `--static`: the same again without weights and behaviour (TARGETS.md's baseline);
   - the whole command, warm: as in 1, the population mapped from the cache.
   Every figure is printed with the load average (the machine is shared).
4. The baseline, in its own child process over the same frame: plain pandas — the worker's
   three shares (si, oa, ui) of every row by column arithmetic with each arm's rates, then
   `groupby(["month", "worker"]).sum()`, once per arm (the opted-out worker-months of the
   reform's arm zeroed by the same draws). No subsidy, no budget, no tables: what one writes
   by hand (~2 min and 19 GB at 10M: `--no-pandas` skips it). The two agree on every
   worker-share total and on the number of worker-months; the whole command's results hash
   is the engine-only one (checked here, asserted by the smoke test).

Writes the figures as JSON under benchmarks/results/ and prints a summary. Targets
(../shared/TARGETS.md, issue 18): 10M workers × 12 months, engine and tables < 10 s and < 8 GB,
the whole command < 60 s and < 8 GB; 1M workers × 120 months (weights + behaviour) < 30 s.
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
TARGET_WINDOW_SECONDS = 30.0  # 1M workers × a 10-year window, weights + behaviour (TARGETS.md)
DEFAULT_BEHAVIOUR = 0.1


def scenario_document(workers: int, months: int, behaviour: float = 0.0) -> dict:
    """The benchmark's scenario: vn-pilot and one reform over `months` from 2026-01, a synthetic population."""
    document = {"name": "benchmark", "baseline": "vn-pilot", "start": START, "horizon_months": months,
                "seed": SEED, "population": {"synthetic": {"workers": workers}},
                "reforms": {"reform": {"description": "poor 50 %, ride si 1.2 %", "changes": REFORM}}}
    if behaviour:
        document["behaviour"] = {"participation_elasticity": behaviour}
    return document


def scenario(workers: int, months: int, behaviour: float = 0.0):
    from simulations.scenario import parse_scenario

    return parse_scenario(scenario_document(workers, months, behaviour))


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

def child_generate(workers: int, months: int, cache: Path, behaviour_elasticity: float) -> dict:
    """Build the scenario's population (or map it) in the cache, as `ansinh simulate` does: the folder it
    is in, and the build's figures."""
    from simulations import population as populations
    from simulations.run import _synthetic_arguments, synthetic_cache_folder

    parsed = scenario(workers, months, behaviour_elasticity)
    arguments, key = _synthetic_arguments(parsed)
    started = time.perf_counter()
    timings = {}

    def build():
        population = populations.synthetic(workers, parsed.months, SEED, **arguments)
        timings["build_seconds"] = time.perf_counter() - started
        return population

    population, hit = populations.cached(cache, key, build)
    return {"directory": str(synthetic_cache_folder(parsed, cache)), "origin": "mapped" if hit else "built",
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


ENGINE_COLUMNS = ("worker", "month", "kind", "platform", "tier", "gross_vnd")


def _floor_seconds(activity) -> float:
    """A floor: one numpy pass (a sum) over each activity column the engine reads, from the same mapped pages."""
    import numpy as np

    started = time.perf_counter()
    for column in ENGINE_COLUMNS:
        np.add.reduce(activity[column].to_numpy(), dtype=np.int64)
    return time.perf_counter() - started


def _engine_and_tables(population, parsed, threads: int, processes: int, chunk_workers: int | None) -> dict:
    """Behaviour, engine (kernels loaded or compiled first, counted) and the results tables: times and CPU."""
    from simulations import engine
    from simulations.results import compute
    from simulations.run import results_hash

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
    tables = compute(population, results, options=parsed.result_options())
    results_seconds = time.perf_counter() - started
    results_cpu = _cpu_seconds() - cpu
    return {"behaviour_seconds": behaviour_seconds, "engine_seconds": engine_seconds,
            "engine_compile_seconds": compile_seconds, "engine_cpu_seconds": engine_cpu,
            "results_seconds": results_seconds, "results_cpu_seconds": results_cpu,
            "results_sha256": results_hash(tables.tables), "results": results, "load_average": os.getloadavg()}


def child_measure(directory: Path, months: int, threads: int, chunk_workers: int | None, processes: int,
                  behaviour_elasticity: float, static: bool = False) -> dict:
    from simulations import engine
    from simulations import population as populations
    from simulations.population import SHARE_COLUMNS

    started = time.perf_counter()
    population = populations.load_mapped(directory)
    loaded = time.perf_counter() - started
    rss_loaded = _peak_rss_mb()
    floors = [_floor_seconds(population.activity) for _ in range(2)]  # the first pass after the hash's
    parsed = scenario(len(population.workers), months, behaviour_elasticity)
    measured = _engine_and_tables(population, parsed, threads, processes, chunk_workers)
    results = measured.pop("results")
    rss_simulated = _peak_rss_mb()
    rss_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # forked engine processes
    engine_totals = [{column: int(arm.worker_totals[column].sum()) for column in SHARE_COLUMNS}
                     for arm in results.values()]
    worker_totals = [{column: totals[column] for column in WORKER_COLUMNS} for totals in engine_totals]
    worker_months = int(sum(arm.by_month_tier.drop_duplicates(["month", "tier"])["workers_active"].sum()
                            for arm in list(results.values())[:1]))
    del results
    figures = {
        "workers": len(population.workers), "months": len(population.months), "arms": len(parsed.arms()),
        "activity_rows": len(population.activity), "worker_months": worker_months,
        "threads": threads, "processes": processes, "chunk_workers": chunk_workers or engine.CHUNK_WORKERS,
        "peak_rss_mb_engine_processes": rss_workers,
        "load_seconds": loaded, "peak_rss_mb_loaded": rss_loaded, "floor_seconds": min(floors),
        "participation_elasticity": behaviour_elasticity, **measured,
        "user_seconds": loaded + measured["behaviour_seconds"] + measured["engine_seconds"]
        + measured["results_seconds"],
        "seconds": measured["engine_seconds"] + measured["results_seconds"], "peak_rss_mb": rss_simulated,
        "engine_share_totals": engine_totals, "engine_worker_share_totals": worker_totals,
    }
    if static:  # TARGETS.md's baseline for the 10-year window: the same without weights and behaviour
        population.workers["weight"] = 1.0
        plain = _engine_and_tables(population, scenario(len(population.workers), months, 0.0), threads,
                                   processes, chunk_workers)
        del plain["results"]
        figures["static_unweighted"] = plain
    return figures


def child_floor(directory: Path) -> dict:
    """The floor in a process of its own: map the population (no hash check) and sum the engine's columns."""
    from simulations import population as populations

    population = populations.load_mapped(directory, verify=False)
    floors = [_floor_seconds(population.activity) for _ in range(2)]
    return {"floor_seconds": floors, "load_average": os.getloadavg()}


def _time_v(text: str) -> dict:
    """Wall, CPU and peak RSS from `/usr/bin/time -v`'s report."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.strip().rpartition(": ")
        fields[name] = value
    wall = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "0:0")
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    return {"wall_seconds": seconds, "user_cpu_seconds": float(fields.get("User time (seconds)", 0)),
            "system_cpu_seconds": float(fields.get("System time (seconds)", 0)),
            "peak_rss_mb": int(fields.get("Maximum resident set size (kbytes)", 0)) / 1024}


def whole_command(folder: Path, cache: Path, name: str, report: bool = True) -> dict:
    """`ansinh simulate scenario.yaml --out … --population-cache …` under `/usr/bin/time -v`, as a user runs it:
    interpreter start, imports, population built or mapped, behaviour, engine, tables, report written."""
    out = folder / f"out-{name}"
    command = [sys.executable, "-m", "api.cli", "simulate", str(folder / "scenario.yaml"),
               "--population-cache", str(cache)]
    if report:
        command += ["--out", str(out)]
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    load_before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(timer + command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    wall = time.perf_counter() - started
    (folder / f"{name}.out").write_text(done.stdout)
    (folder / f"{name}.err").write_text(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{name}: `{' '.join(command)}` failed: {done.stderr[-3000:]}")
    figures = {"command": " ".join(["ansinh", *command[3:]]), **(_time_v(done.stderr) if timer else {}),
               "load_average_before": load_before, "load_average_after": os.getloadavg()}
    figures["wall_seconds"] = wall  # this process's clock, beside /usr/bin/time's
    for line in done.stdout.splitlines():
        if line.startswith("population:") and " in " in line:
            figures["population_line"] = line.strip()
            figures["population_seconds"] = float(line.split(" in ")[1].split(" s")[0])
        if line.startswith("benchmark: ") and line.rstrip().endswith(" s"):  # the table's title: scenario read → report
            figures["command_seconds"] = float(line.rstrip()[:-2].rsplit(", ", 1)[1])
        if line.startswith("population ") and "results " in line:
            figures["results_sha256_prefix"] = line.split("results ")[1].split()[0]
    if report:
        import json as _json
        record = _json.loads((out / "run.json").read_text())
        figures["results_sha256"] = record["results_sha256"]
    return figures


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

def targets_for(workers: int, months: int) -> dict:
    """TARGETS.md and issue 18: 10M × 12 engine + tables < 10 s and < 8 GB, the whole command < 60 s and < 8 GB;
    1M × a 10-year window (weights + behaviour) < 30 s."""
    if months >= 120:
        return {"target_seconds": TARGET_WINDOW_SECONDS, "target_user_seconds": None, "target_rss_mb": TARGET_RSS_MB}
    return {"target_seconds": TARGET_SECONDS, "target_user_seconds": TARGET_USER_SECONDS,
            "target_rss_mb": TARGET_RSS_MB}


def run(workers: int, *, folder: Path, months: int = 12, threads: int | None = None,
        chunk_workers: int | None = None, processes: int = 2, pandas: bool = True,
        behaviour: float = DEFAULT_BEHAVIOUR, whole: bool = True, cold: bool = True, repeat: int = 1,
        static: bool = False, report: bool = True) -> dict:
    """The population built (or reused), the engine-only figure, the whole command cold and warm, the floor and
    the pandas baseline; the figures. Runs are interleaved (engine, whole command warm, engine, …) `repeat` times."""
    import shutil

    from simulations.engine import THREADS

    threads = threads or THREADS
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "populations"
    (folder / "scenario.yaml").write_text(json.dumps(scenario_document(workers, months, behaviour), indent=1) + "\n")
    results: dict = {"machine": machine(), "targets": targets_for(workers, months)}
    commands = []
    if whole and cold:  # cold: an empty population cache, so the command draws the population and stores it
        entry = _cache_folder(workers, months, behaviour, cache)
        cold_cache = cache if not entry.exists() else folder / "cold-populations"
        print(f"whole command, cold ({workers:,} workers × {months} months: the population built) …", flush=True)
        commands.append({"kind": "cold", **whole_command(folder, cold_cache, "whole-cold", report)})
        if cold_cache != cache:
            shutil.rmtree(cold_cache, ignore_errors=True)
        _print_command(commands[-1])
    print(f"population: {workers:,} workers × {months} months (built once, then mapped from {cache}) …", flush=True)
    generated, generate_rss = _child(["--generate", "--workers", str(workers), "--months", str(months),
                                      "--population", str(cache), "--behaviour", str(behaviour)], folder, "generate")
    directory = Path(generated["directory"])
    results["population_build"] = {**generated, "child_peak_rss_mb": generate_rss}
    if generated["origin"] == "built":
        print(f"population built in {generated['seconds']:.1f} s, stored in {generated['save_seconds']:.1f} s "
              f"(peak RSS {generate_rss:,.0f} MB)", flush=True)
    arguments = ["--measure", "--months", str(months), "--population", str(directory), "--threads", str(threads),
                 "--processes", str(processes), "--behaviour", str(behaviour)]
    if chunk_workers:
        arguments += ["--chunk-workers", str(chunk_workers)]
    if static:
        arguments += ["--static"]
    rounds = []
    for round_ in range(repeat):
        floor, _ = _child(["--floor", "--population", str(directory)], folder, "floor")
        figures, child_rss = _child(arguments, folder, "measure")
        figures["child_peak_rss_mb"] = child_rss
        figures["floor_process_seconds"] = min(floor["floor_seconds"])
        figures.update(targets_for(workers, months))
        figures["worker_months_per_s"] = figures["workers"] * figures["months"] / figures["seconds"]
        figures["rows_per_s"] = figures["activity_rows"] * figures["arms"] / figures["engine_seconds"]
        rounds.append(figures)
        _print(figures)
        if whole:
            commands.append({"kind": "warm", **whole_command(folder, cache, "whole-warm", report)})
            _print_command(commands[-1])
    figures = rounds[-1]
    figures["rounds"] = [{key: value for key, value in r.items() if not isinstance(value, list)} for r in rounds]
    if pandas:
        plain, plain_rss = _child(["--pandas", "--months", str(months), "--population", str(directory),
                                   "--behaviour", str(behaviour)], folder, "pandas")
        figures["pandas_groupby"] = {**plain, "child_peak_rss_mb": plain_rss}
        figures["agrees_with_pandas"] = figures["engine_worker_share_totals"] == plain["share_totals"] \
            and figures["worker_months"] == plain["groups"]
        print(f"plain pandas group-by of the worker shares, same frame, {figures['arms']} arms: "
              f"{plain['seconds']:.1f} s, peak RSS {plain['peak_rss_mb']:,.0f} MB | "
              f"{'agree' if figures['agrees_with_pandas'] else 'DISAGREE'} on every worker-share total", flush=True)
    results["simulation"] = figures
    results["whole_command"] = commands
    if commands:  # the command prints the hash's first 16 digits (run.json holds it whole)
        figures["whole_command_agrees"] = all(figures["results_sha256"].startswith(c["results_sha256_prefix"])
                                              for c in commands)
    results["machine"]["load_average_after"] = os.getloadavg()
    _summary(figures, commands)
    return results


def _cache_folder(workers: int, months: int, behaviour: float, cache: Path) -> Path:
    from simulations.run import synthetic_cache_folder

    return synthetic_cache_folder(scenario(workers, months, behaviour), cache)


def _print(figures: dict) -> None:
    target = f"target < {figures['target_seconds']:.0f} s, < {figures['target_rss_mb'] // 1024} GB"
    print(f"engine only: {figures['workers']:,} workers × {figures['months']} months, {figures['arms']} arms "
          f"({figures['activity_rows']:,} activity rows, {figures['worker_months']:,} worker-months, weights, "
          f"behaviour {figures['participation_elasticity']:g}): {figures['seconds']:.1f} s = engine "
          f"{figures['engine_seconds']:.1f} s ({figures['engine_cpu_seconds']:.1f} CPU-s, of which "
          f"{figures['engine_compile_seconds']:.1f} s JIT compile / cache load; {figures['processes']} engine "
          f"processes) + results tables {figures['results_seconds']:.1f} s ({figures['results_cpu_seconds']:.1f} "
          f"CPU-s); {figures['worker_months_per_s']:,.0f} worker-months/s; peak RSS {figures['peak_rss_mb']:,.0f} MB "
          f"(population mapped: {figures['peak_rss_mb_loaded']:,.0f} MB; each engine process "
          f"{figures['peak_rss_mb_engine_processes']:,.0f} MB, mostly shared pages) | floor: a numpy sum over the "
          f"{len(ENGINE_COLUMNS)} columns the engine reads {figures['floor_seconds']:.2f} s in process, "
          f"{figures['floor_process_seconds']:.2f} s in a fresh process "
          f"(×{figures['seconds'] / figures['floor_seconds']:.0f}) | "
          f"load {_load(figures['load_average'])} | {target}", flush=True)
    print(f"  + population mapped and its hash verified {figures['load_seconds']:.1f} s, behaviour "
          f"{figures['behaviour_seconds']:.1f} s: {figures['user_seconds']:.1f} s in process", flush=True)
    plain = figures.get("static_unweighted")
    if plain:
        both = plain["engine_seconds"] + plain["results_seconds"]
        print(f"  baseline, the same without weights and behaviour: engine {plain['engine_seconds']:.1f} s "
              f"({plain['engine_cpu_seconds']:.1f} CPU-s) + tables {plain['results_seconds']:.1f} s "
              f"({plain['results_cpu_seconds']:.1f} CPU-s) = {both:.1f} s (×{figures['seconds'] / both:.2f} with them)",
              flush=True)


def _load(average) -> str:
    return "/".join(f"{value:.1f}" for value in average)


def _print_command(command: dict) -> None:
    cpu = command.get("user_cpu_seconds", 0) + command.get("system_cpu_seconds", 0)
    print(f"whole command ({command['kind']}): {command['wall_seconds']:.1f} s wall, {cpu:.1f} CPU-s, peak RSS "
          f"{command.get('peak_rss_mb', 0):,.0f} MB; of it {command.get('command_seconds', 0):.1f} s from reading the "
          f"scenario to the report written (the rest: interpreter, imports); "
          f"{command.get('population_line', '')} | load "
          f"{_load(command['load_average_before'])} → {_load(command['load_average_after'])}", flush=True)


def _summary(figures: dict, commands: list[dict]) -> None:
    seconds = [r["seconds"] for r in figures["rounds"]]
    line = (f"summary: engine only (engine + tables) {min(seconds):.1f}–{max(seconds):.1f} s, peak RSS "
            f"{max(r['peak_rss_mb'] for r in figures['rounds']):,.0f} MB (target < {figures['target_seconds']:.0f} s)")
    for kind in ("cold", "warm"):
        walls = [c["wall_seconds"] for c in commands if c["kind"] == kind]
        if walls:
            rss = max(c.get("peak_rss_mb", 0) for c in commands if c["kind"] == kind)
            line += f" | whole command {kind} {min(walls):.1f}–{max(walls):.1f} s, peak RSS {rss:,.0f} MB"
    if figures.get("target_user_seconds") and commands:
        line += f" (target < {figures['target_user_seconds']:.0f} s)"
    if "whole_command_agrees" in figures:
        line += " | results hash " + ("the same" if figures["whole_command_agrees"] else "DIFFERS") + \
            f" in every run ({figures['results_sha256'][:8]}…)"
    print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=12, help="120 for the 10-year window")
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: 2, the machine's cores)")
    parser.add_argument("--chunk-workers", type=int, default=None)
    parser.add_argument("--processes", type=int, default=2,
                        help="forked engine processes (1: in process, on threads)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the plain pandas group-by beside it")
    parser.add_argument("--no-whole", action="store_true", help="skip the whole command (`ansinh simulate`)")
    parser.add_argument("--no-cold", action="store_true", help="skip the whole command's cold run")
    parser.add_argument("--no-report", action="store_true", help="the whole command without --out")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of engine-only and whole command (warm)")
    parser.add_argument("--static", action="store_true",
                        help="also the engine and tables without weights and behaviour (TARGETS.md's baseline)")
    parser.add_argument("--behaviour", type=float, default=DEFAULT_BEHAVIOUR,
                        help="participation elasticity of the reform's opt-outs (0: static)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the population here")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pandas", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--population", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        args.answer.write_text(json.dumps(child_generate(args.workers, args.months, args.population, args.behaviour)))
        return 0
    if args.pandas:
        args.answer.write_text(json.dumps(child_pandas(args.population, args.months, args.behaviour)))
        return 0
    if args.floor:
        args.answer.write_text(json.dumps(child_floor(args.population)))
        return 0
    if args.measure:
        args.answer.write_text(json.dumps(child_measure(args.population, args.months, args.threads,
                                                        args.chunk_workers, args.processes, args.behaviour,
                                                        args.static)))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-bench-"))
    results = run(args.workers, folder=folder, months=args.months, threads=args.threads,
                  chunk_workers=args.chunk_workers, processes=args.processes, pandas=not args.no_pandas,
                  behaviour=args.behaviour, whole=not args.no_whole, cold=not args.no_cold, repeat=args.repeat,
                  static=args.static, report=not args.no_report)
    results["command"] = " ".join(["python", "benchmarks/simulate.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"simulate-{args.workers}x{args.months}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`ansinh simulate SCENARIO.yaml`: a thin shell over `simulations.run` and `simulations.report`.

Registered in `api/cli.py` as `app.command("simulate")(simulate_command)`. Exit codes:
0 the run finished; 1 the scenario, population or database cannot be used (every
problem is printed, each naming its key).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table


_console = Console(stderr=True)
CACHE_MIN_WORKERS = 100_000  # smaller populations are drawn in about a second: caching them only fills the disk
_out = Console(highlight=False, soft_wrap=True)
MILLION = 1_000_000


def simulate_command(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML (see docs/simulations.md)")],
    out: Annotated[Path | None, typer.Option("--out", help="write tables, charts, report.html and run.json here")] = None,
    from_db: Annotated[str | None, typer.Option("--from-db", help="replay a ledger's worker-months (SQLAlchemy URL) "
                                                                     "instead of the scenario's population")] = None,
    save_population: Annotated[Path | None, typer.Option("--save-population",
                                                            help="also save the population (Parquet + hash) here")] = None,
    dask: Annotated[str | None, typer.Option("--dask", metavar="SCHEDULER",
                                             help="run the chunks on dask.distributed: a scheduler address "
                                                  "(tcp://host:8786) or 'local' to start a LocalCluster; "
                                                  "same results to the bit")] = None,
    population_cache: Annotated[Path | None, typer.Option(
        "--population-cache", help="keep synthetic populations of 100,000 workers or more here and map them "
                                   "from disk next time [default: $ANSINH_POPULATION_CACHE or "
                                   "~/.cache/ansinh/populations]")] = None,
    no_population_cache: Annotated[bool, typer.Option("--no-population-cache",
                                                      help="always draw the population again")] = False,
    lang: Annotated[str, typer.Option("--lang", help="language of report.html and report.pdf: vi or en")] = "vi",
) -> None:
    """Run a policy what-if: budget cost, revenue, coverage, winners and losers, reform vs baseline."""
    # Imported here, not at the top: numpy/pandas/matplotlib/dask cost seconds, which every other
    # `ansinh` command (and `ansinh serve`'s start) would otherwise pay.
    from simulations import engine, report
    from simulations.population import PopulationError
    from simulations.run import build_population, run_scenario
    from simulations.scenario import ScenarioError, load_scenario

    started = time.perf_counter()
    if lang not in ("vi", "en"):
        _console.print(f"[red]error:[/red] --lang: vi or en, not {lang!r}")
        raise typer.Exit(1)
    try:
        parsed = load_scenario(scenario)
    except ScenarioError as error:
        _console.print(f"[red]error:[/red] {error.source} is not a valid scenario:")
        for issue in error.issues:
            _console.print(f"  [bold]{issue.key}[/bold]: {issue.reason}")
        raise typer.Exit(1)
    cache = None
    if not no_population_cache and parsed.population.source == "synthetic" and not from_db \
            and parsed.population.workers >= CACHE_MIN_WORKERS:
        cache = population_cache or Path(os.environ.get("ANSINH_POPULATION_CACHE")
                                         or Path.home() / ".cache" / "ansinh" / "populations")
    building = time.perf_counter()
    try:
        with _console.status("building the population"):
            population = build_population(parsed, from_db, cache=cache)
    except (PopulationError, OSError, ValueError) as error:
        _console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    _population_lines(population, time.perf_counter() - building, cache, parsed.behaviour)
    if save_population is not None:
        from simulations.population import save
        save(population, save_population)
    arms = 1 + len(parsed.reforms)
    steps = arms * len(population.months) * (2 if parsed.budget.strategy == "scale" else 1)
    with Progress(TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[where]}"), TimeElapsedColumn(), console=_console,
                  disable=not _console.is_terminal, auto_refresh=False) as progress:
        # auto_refresh=False: no drawing thread, so the engine forks a process with one thread only
        task = progress.add_task("simulate", total=steps, where="")

        def advance(arm: str, month: int) -> None:
            progress.update(task, advance=1, where=f"{arm} {month}")
            progress.refresh()

        if dask is None:  # the chunks in forked processes, one a core (the progress bar draws without a thread)
            run = run_scenario(parsed, population=population, progress=advance, processes=engine.THREADS)
        else:
            from simulations.distributed import SchedulerError, dask_client
            try:
                with dask_client(dask) as client:
                    run = run_scenario(parsed, population=population, progress=advance, client=client)
            except SchedulerError as error:
                progress.stop()
                _console.print(f"[red]error:[/red] {error}")
                raise typer.Exit(1)
    if out is not None:
        # A replay of books is validated against their closed months (report.html, "Validation").
        ledger_url = from_db or (parsed.population.url if parsed.population.source == "from_db" else None)
        report.write(run, out, lang=lang, ledger_url=ledger_url)
    elapsed = time.perf_counter() - started
    summary = run.results.tables["summary"]
    if run.participation is not None and not parsed.behaviour.static:
        for row in run.participation.itertuples(index=False):
            if row.participants_lost:
                _out.print(f"{row.arm}: {row.participants_lost:,} of {row.workers_active:,} workers opt out at least "
                           f"one month ({row.worker_months_opted_out:,} worker-months; nationally "
                           f"~{row.participants_lost_national:,} workers)")
    table = Table(title=f"{parsed.name}: {len(population.workers):,} workers × {len(population.months)} months, "
                        f"{elapsed:.1f} s")
    for column in ("arm", "subsidy (M VND)", "Δ subsidy", "worker (M VND)", "platform (M VND)",
                   "contributors", "crediting", "credited months", "Δ credited months", "workers credited",
                   "leakage ‰"):
        if column == "arm":  # arm names stay whole however narrow the terminal; numbers fold
            table.add_column(column, no_wrap=True, min_width=max(len(str(a)) for a in summary["arm"]))
        else:
            table.add_column(column, justify="right")
    for row in summary.itertuples(index=False):
        table.add_row(row.arm, f"{row.subsidy_vnd / MILLION:,.1f}", f"{row.subsidy_delta_vnd / MILLION:+,.1f}",
                      f"{row.worker_vnd / MILLION:,.1f}", f"{row.platform_vnd / MILLION:,.1f}",
                      f"{row.workers_contributing:,}", row.crediting, f"{row.pension_months:,}",
                      f"{row.pension_months_delta:+,}", f"{row.workers_credited:,}", f"{row.leakage_per_mille}")
    _out.print(table)
    ranges = run.results.tables["headline_ranges"].set_index(["arm", "figure"])
    window = run.scenario.window_years
    gains = Table(title=f"who gains (take-home pay = gross − worker deductions; credited months, RULES.md §11) and "
                        f"the state's {window}-year cost; [95 % range, {run.scenario.replicates} resamples of workers]")
    for column in ("arm", "take-home ↑", "take-home ↓", "credited months ↑", "credited months ↓",
                   f"Δ subsidy {window} y nominal (M VND)", f"Δ subsidy {window} y real (M VND)"):
        gains.add_column(column, no_wrap=column == "arm", justify="left" if column == "arm" else "right")

    def ranged(arm: str, figure: str, scale: int = 1) -> str:
        value, low, high = (int(ranges.loc[(arm, figure), key]) for key in ("value", "low", "high"))
        return f"{value / scale:+,.1f} [{low / scale:+,.1f}, {high / scale:+,.1f}]" if scale > 1 else \
            f"{value:,} [{low:,}, {high:,}]"

    for arm in summary["arm"].tolist()[1:]:
        gains.add_row(arm, ranged(arm, "take_home_winners"), ranged(arm, "take_home_losers"),
                      ranged(arm, "credited_months_winners"), ranged(arm, "credited_months_losers"),
                      ranged(arm, "window_subsidy_nominal_delta_vnd", MILLION),
                      ranged(arm, "window_subsidy_real_delta_vnd", MILLION))
    if len(summary) > 1:
        _out.print(gains)
    _out.print(f"population {run.record['population']['sha256'][:16]}  results {run.record['results_sha256'][:16]}"
               + (f"  written to {out}" if out is not None else ""))


def _population_lines(population, seconds: float, cache, behaviour) -> None:
    """What the population is: where it came from and how long it took, its calibration to the national
    totals (each figure, its target and the error), and the behavioural assumption."""
    source = population.source
    origin = {"mapped": "mapped from the cache", "loaded": "loaded"}.get(population.origin, "built")
    _out.print(f"population: {len(population.workers):,} workers, {len(population.activity):,} activity rows, "
               f"{origin} in {seconds:.1f} s" + (f" (cache {cache})" if cache is not None else ""))
    calibrated = source.get("calibration")
    if calibrated:
        from simulations.calibration import CalibrationReport, format_report
        report = CalibrationReport(calibrated["rows"], calibrated["sweeps"], calibrated["converged"],
                                   calibrated["total_basis"], calibrated["unreachable"], calibrated["weights"])
        _out.print(f"calibrated to {calibrated['targets']['name']} ({calibrated['targets']['path']}):", markup=False)
        for line in format_report(report, calibrated["national_workers"]):
            _out.print("  " + line, markup=False)  # "[proxy]" is text, not a style
    if "workforce" in source:
        workforce = source["workforce"]
        _out.print(f"workforce present: {workforce[0]:,} in the first month, {workforce[-1]:,} in the last "
                   f"(churn {source.get('churn')})", markup=False)
    _out.print("behaviour: static (nobody opts out; add behaviour: {} for the cited participation elasticity)"
               if behaviour.static else
               f"behaviour: participation elasticity {behaviour.participation_elasticity:g} "
               "(workers opt out when a reform raises their deduction rate; docs/simulations.md §9)")

"""One scenario run, start to end: population -> engine -> results -> run record.

The CLI (`ansinh simulate`) and the policy route both call `run_scenario`; writing
files is `simulations.report`'s job. A run record binds everything a reviewer needs
to reproduce the numbers bit for bit: the scenario document, every pack version
used (stored whole), the population hash, the seed, the code version and a hash of
every result table.
"""
from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simulations import behaviour, engine
from simulations import population as populations
from simulations.population import Population
from simulations.results import Results, compute
from simulations.scenario import Scenario

CODE_DIRS = ("rules", "simulations")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    scenario: Scenario
    population: Population
    arms: dict[str, engine.ArmResult]
    results: Results
    record: dict[str, Any]
    participation: pd.DataFrame | None = None  # per arm: participants lost to opting out (behaviour.summary)


def build_population(scenario: Scenario, from_db: str | None = None, cache: str | Path | None = None) -> Population:
    """`--from-db` wins over the scenario's own population; a synthetic one is built from the seed.

    `cache`: a directory to keep built synthetic populations in (`population.cached`): the
    same scenario population is then mapped from disk instead of drawn again."""
    if from_db:
        return populations.from_db(from_db)
    spec = scenario.population
    if spec.source == "synthetic":
        return _synthetic(scenario, cache)
    if spec.source == "parquet":
        return populations.load(spec.path)
    return populations.from_db(spec.url)


def _synthetic_arguments(scenario: Scenario):
    """What `populations.synthetic` is called with for the scenario, and the population cache's key of it."""
    from simulations.calibration import load_targets

    spec = scenario.population
    profile = None
    if spec.fare_profile is not None:
        from simulations.fares import chicago_taxi
        profile = chicago_taxi(spec.fare_profile)
    # The ethnic-minority tier exists in the population when a pack of the scenario prices it.
    tiers = sorted({tier for pack in scenario.arms().values() for version in pack.versions
                    for tier in version.tier_rate_ppm})
    targets = None if spec.targets is False else load_targets(None if spec.targets is True else spec.targets)
    base = spec.base or populations.ContributionBase()
    arguments = {"churn": spec.churn, "fare_profile": profile, "targets": targets, "base": base, "tiers": tiers}
    key = populations.cache_key(workers=spec.workers, months=list(scenario.months), seed=scenario.seed,
                                churn=spec.churn.as_document() if spec.churn else None, base=base.as_document(),
                                ethnic_tier=populations.ETHNIC_TIER in tiers,
                                targets=targets.sha256 if targets else None,
                                fare_profile=profile.summary() if profile else None)
    return arguments, key


def synthetic_cache_folder(scenario: Scenario, cache: str | Path) -> Path:
    """Where `build_population(scenario, cache=cache)` keeps (or finds) the scenario's synthetic population."""
    return Path(cache) / _synthetic_arguments(scenario)[1][:32]


def _synthetic(scenario: Scenario, cache: str | Path | None) -> Population:
    spec = scenario.population
    arguments, key = _synthetic_arguments(scenario)

    def build() -> Population:
        return populations.synthetic(spec.workers, scenario.months, scenario.seed, **arguments)

    if cache is None:
        return build()
    return populations.cached(cache, key, build)[0]


def run_scenario(scenario: Scenario, *, from_db: str | None = None, population: Population | None = None,
                 keep_worker_months: bool = False,
                 progress: Callable[[str, int], None] | None = None,
                 client=None, chunk_workers: int = engine.CHUNK_WORKERS, processes: int = 1) -> Run:
    """`client`: a `distributed.Client` to run the engine's chunks on (same results, to the bit).
    `processes` > 1: the chunks in that many forked processes (`engine.run`; the CLI, never the service)."""
    chosen = population if population is not None else build_population(scenario, from_db)
    arms_packs = scenario.arms()
    participation = behaviour.plan(chosen.workers, chosen.months, list(arms_packs.values()), scenario.behaviour,
                                   scenario.seed)
    opted_out = behaviour.summary(participation, chosen.activity, chosen.months, list(arms_packs), chosen.weights)

    arms = engine.run(chosen, arms_packs, scenario.budget, participation=participation,
                      keep_worker_months=keep_worker_months,
                      progress=progress, client=client, chunk_workers=chunk_workers, processes=processes)
    results = compute(chosen, arms, options=scenario.result_options())
    record = {
        "scenario": {"name": scenario.name, "document": _jsonable(dict(scenario.document))},
        "seed": scenario.seed,
        "behaviour": {**scenario.behaviour.as_document(), "participation": opted_out.to_dict("records")},
        "population": {"sha256": chosen.content_hash(), "source": _jsonable(dict(chosen.source)),
                       "workers": len(chosen.workers), "activity_rows": len(chosen.activity),
                       "months": list(chosen.months), **_peak_rate(chosen)},
        "packs": {name: [_version_record(v) for v in pack.versions
                         if v.version_id in arms[name].versions_used]
                  for name, pack in arms_packs.items()},
        "code": code_version(),
        "results_sha256": results_hash(results.tables),
        "tables_sha256": {name: table_hash(table) for name, table in sorted(results.tables.items())},
    }
    return Run(scenario, chosen, arms, results, record, opted_out)


def _peak_rate(population: Population) -> dict[str, float]:
    """With a real-trip fare profile: the busiest hour's events/s of this population (ingest sizing)."""
    profile = population.source.get("fare_profile")
    if not profile:
        return {}
    from simulations.fares import peak_events_per_second
    events = population.activity.groupby("month")["events"].sum()
    return {"peak_events_per_second": round(peak_events_per_second(
        {int(m): int(e) for m, e in events.items()}, profile["trips_by_hour"]), 3)}


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 of a table's CSV text (fixed column order, no index, '\\n' line ends)."""
    return hashlib.sha256(table.to_csv(index=False, lineterminator="\n").encode("utf-8")).hexdigest()


def results_hash(tables: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name, table in sorted(tables.items()):
        digest.update(f"{name}\x1f{table_hash(table)}\x1e".encode())
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """The package version, the git commit (and whether the tree is dirty), and a hash of the source
    of `rules/` and `simulations/` — the code that makes the numbers — so a record stays checkable
    even from an uncommitted tree."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        package = version("ansinh")
    except PackageNotFoundError:
        package = "unknown"
    digest = hashlib.sha256()
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*")):
            if path.suffix in (".py", ".yaml") and path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    commit, dirty = None, None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False,
                                timeout=10).stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--", *CODE_DIRS], cwd=ROOT,
                                capture_output=True, text=True, check=False, timeout=10).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {"package": package, "git_commit": commit, "git_dirty": dirty, "source_sha256": digest.hexdigest()}


def _version_record(version) -> dict[str, Any]:
    return version.as_document()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # dates

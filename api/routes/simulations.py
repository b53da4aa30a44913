"""Policy what-ifs over HTTP: run a small scenario inline and return its tables.

Thin: validates the size, calls `simulations.run.run_scenario` (the same function as
`ansinh simulate`) in a worker thread, and returns the tables and the run record.
Only synthetic populations: a replay of the live books is the CLI's `--from-db`. The
service reads no file a caller names: the baseline is a registered pack's name, and fare
profiles, saved populations and database URLs are the CLI's.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import role
from api.problems import Problem
from api.schemas import SCENARIO_EXAMPLE, SimulationRun
from api.tokens import Principal
from simulations.brief import national, validation_targets
from simulations.run import run_scenario
from simulations.scenario import ScenarioError, parse_scenario

router = APIRouter(prefix="/simulations", tags=["policy"])
INLINE_WORKERS_MAX = 20_000  # an inline run must answer within a request's time
INLINE_WORKER_MONTHS_MAX = 240_000
RETURNED_TABLES = ("summary", "headline_ranges", "budget_by_year_scheme", "budget_window", "budget_periods", "coverage",
                   "coverage_by_year", "deciles_take_home", "deciles_credited_months", "inequality",
                   "revenue_by_scheme_party_kind", "pension_projection")


def checked_scenario(document: dict[str, Any]):
    try:
        scenario = parse_scenario(document, source="request body", registered_packs_only=True)
    except ScenarioError as error:
        raise Problem(422, "invalid-scenario", str(error),
                      errors=[{"key": issue.key, "reason": issue.reason} for issue in error.issues]) from None
    spec = scenario.population
    if spec.source != "synthetic":
        raise Problem(422, "invalid-scenario", "population: only synthetic populations run inline "
                                               "(replay the books with `ansinh simulate --from-db`)",
                      errors=[{"key": "population", "reason": "only synthetic populations run inline"}])
    if spec.fare_profile is not None:  # a file path: the server reads no file a caller names
        raise Problem(422, "invalid-scenario", "population.synthetic.fare_profile: a fare profile file is read "
                                               "by `ansinh simulate` only, never by the service",
                      errors=[{"key": "population.synthetic.fare_profile", "reason": "not allowed inline"}])
    if spec.workers > INLINE_WORKERS_MAX or spec.workers * scenario.horizon_months > INLINE_WORKER_MONTHS_MAX:
        raise Problem(422, "scenario-too-large",
                      f"population.synthetic.workers: an inline run takes at most {INLINE_WORKERS_MAX:,} workers "
                      f"and {INLINE_WORKER_MONTHS_MAX:,} worker-months; use `ansinh simulate` for more",
                      errors=[{"key": "population.synthetic.workers", "reason": "too large for an inline run"}])
    return scenario


def run_inline(document: dict[str, Any]) -> dict[str, Any]:
    run = run_scenario(checked_scenario(document))
    tables = {name: run.results.tables[name].to_dict(orient="records") for name in RETURNED_TABLES}
    # `national`: the brief's national figures (simulations/brief.py) for the policy page; the JSON
    # route's response model leaves it out (the tables and the record are the contract).
    return {"scenario": run.scenario.name, "tables": tables, "record": run.record, "national": national(run),
            "validation_targets": validation_targets(run).to_dict(orient="records")}


@router.post("", response_model=SimulationRun,
             summary="Run a small policy scenario inline; returns its tables and run record",
             responses=problems("invalid-request", "invalid-scenario", "scenario-too-large"))
async def simulate(document: Annotated[dict[str, Any], Body(description="a scenario, as in docs/simulations.md "
                                                                        "(only synthetic populations, at most "
                                                                        f"{INLINE_WORKERS_MAX:,} workers and "
                                                                        f"{INLINE_WORKER_MONTHS_MAX:,} "
                                                                        "worker-months)",
                                                            examples=[SCENARIO_EXAMPLE])],
                   _: Annotated[Principal, Depends(role("policy"))]) -> dict[str, Any]:
    checked_scenario(document)  # a bad scenario answers 422 before a thread is taken
    return await run_in_threadpool(run_inline, document)

"""Policy what-ifs over HTTP: run a small scenario inline, or a larger one as a background job.

Thin: validates the size, calls `simulations.run.run_scenario` (the same function as
`ansinh simulate`) in a worker thread, and returns the tables and the run record. A job
(`/v1/simulations/jobs`) is queued on `simulations.jobs.JobQueue` (one runs at a time)
and answered at once with its id; its progress and result are read back by id.
Only synthetic populations: a replay of the live books is the CLI's `--from-db`. The
service reads no file a caller names: the baseline is a registered pack's name, and fare
profiles, saved populations and database URLs are the CLI's.
"""
from __future__ import annotations

import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import role
from api.problems import Problem
from api.schemas import SCENARIO_EXAMPLE, SimulationJob, SimulationRun
from api.tokens import Principal
from simulations.brief import national, validation_targets
from simulations.jobs import LATER, JobError, JobQueue, Progress
from simulations.national import national_tables
from simulations.run import build_population, run_scenario
from simulations.scenario import ScenarioError, parse_scenario

router = APIRouter(prefix="/simulations", tags=["policy"])
INLINE_WORKERS_MAX = 20_000  # an inline run must answer within a request's time
INLINE_WORKER_MONTHS_MAX = 240_000
JOB_WORKERS_MAX = 200_000  # a job runs in the background: ten times an inline run, one at a time
JOB_WORKER_MONTHS_MAX = 4_800_000  # 200,000 workers × 24 months: about a minute on two cores
JOBS_WAITING_MAX = 20  # more queued jobs than this: 429, try later
RETURNED_TABLES = ("summary", "headline_ranges", "budget_by_year_scheme", "budget_window", "budget_periods", "coverage",
                   "coverage_by_year", "deciles_take_home", "deciles_credited_months", "inequality",
                   "revenue_by_scheme_party_kind", "pension_projection")


def checked_scenario(document: dict[str, Any], workers_max: int = INLINE_WORKERS_MAX,
                     worker_months_max: int = INLINE_WORKER_MONTHS_MAX, what: str = "an inline run"):
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
    if spec.workers > workers_max or spec.workers * scenario.horizon_months > worker_months_max:
        raise Problem(422, "scenario-too-large",
                      f"population.synthetic.workers: {what} takes at most {workers_max:,} workers "
                      f"and {worker_months_max:,} worker-months; use `ansinh simulate` for more",
                      errors=[{"key": "population.synthetic.workers", "reason": f"too large for {what}"}])
    return scenario


def checked_job(document: dict[str, Any]):
    return checked_scenario(document, JOB_WORKERS_MAX, JOB_WORKER_MONTHS_MAX, "a job")


def result_of(run, weighted: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a run answers: the tables and record (the contract), and for the policy page the brief's
    national figures and the tables weighted to national scale (simulations/national.py)."""
    weighted = weighted if weighted is not None else national_tables(run)
    tables = {name: run.results.tables[name].to_dict(orient="records") for name in RETURNED_TABLES}
    # `national`, `national_tables`, `validation_targets`: for the policy page; the JSON routes' response
    # model leaves them out (the tables and the record are the contract).
    return {"scenario": run.scenario.name, "tables": tables, "record": run.record, "national": national(run),
            "national_tables": {name: table.to_dict(orient="records")
                                for name, table in weighted.items()},
            "sample_workers": len(run.population.workers),
            "validation_targets": validation_targets(run).to_dict(orient="records")}


def run_inline(document: dict[str, Any]) -> dict[str, Any]:
    return result_of(run_scenario(checked_scenario(document)))


def run_job(payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """A job's work (simulations.jobs): the population, the engine month by month, then the results —
    and, for a job started on the policy page, the downloadable report in the page's language."""
    try:
        scenario = checked_job(payload["scenario"])
    except Problem as problem:
        raise JobError("; ".join(f"{e['key']}: {e['reason']}" for e in problem.extra.get("errors", []))
                       or problem.detail) from None
    progress.stage("population")
    from simulations.population import PopulationError
    try:
        population = build_population(scenario)
    except (PopulationError, ValueError) as error:
        raise JobError(f"population: {error}") from None
    progress.stage("engine")
    steps = (1 + len(scenario.reforms)) * len(population.months) * (2 if scenario.budget.strategy == "scale" else 1)
    done = itertools.count(1)
    run = run_scenario(scenario, population=population,
                       progress=lambda arm, month: progress.step(next(done), steps))
    progress.stage("report")
    weighted = national_tables(run)
    result = result_of(run, weighted)
    if payload.get("report_lang"):  # made once the result is shown (simulations/jobs.py, LATER)
        result[LATER] = lambda: {"report.html": report_html(run, weighted, payload["report_lang"])}
    return result


def report_html(run, weighted, lang: str) -> bytes:
    from simulations.report import render_charts, render_html
    return render_html(run, render_charts(run, lang, weighted), lang=lang, national=weighted).encode()


def jobs(request: Request) -> JobQueue:
    return request.app.state.jobs


def submit_job(queue: JobQueue, document: dict[str, Any], owner: str, report_lang: str | None = None):
    """Check the scenario (a Problem for a bad or too large one), then queue it; 429 past JOBS_WAITING_MAX."""
    scenario = checked_job(document)
    if sum(job.status == "queued" for job in queue.list()) >= JOBS_WAITING_MAX:
        raise Problem(429, "too-many-jobs", f"{JOBS_WAITING_MAX} jobs are waiting already; start this one when "
                                            "some have run")
    summary = {"scenario": scenario.name, "workers": scenario.population.workers,
               "horizon_months": scenario.horizon_months, "start": str(document.get("start", "")),
               "reforms": [reform.name for reform in scenario.reforms]}
    return queue.submit({"scenario": document, "report_lang": report_lang}, summary, owner)


def found_job(queue: JobQueue, job_id: str):
    job = queue.get(job_id)
    if job is None:
        raise Problem(404, "no-such-job", f"no simulation job {job_id}")
    return job


def _scenario_body(workers_max: int, worker_months_max: int):
    """The request body of a scenario route, with the route's size limits in its description."""
    return Body(description=f"a scenario, as in docs/simulations.md (only synthetic populations, at most "
                            f"{workers_max:,} workers and {worker_months_max:,} worker-months)",
                examples=[SCENARIO_EXAMPLE])


@router.post("", response_model=SimulationRun,
             summary="Run a small policy scenario inline; returns its tables and run record",
             responses=problems("invalid-request", "invalid-scenario", "scenario-too-large"))
async def simulate(document: Annotated[dict[str, Any], _scenario_body(INLINE_WORKERS_MAX, INLINE_WORKER_MONTHS_MAX)],
                   _: Annotated[Principal, Depends(role("policy"))]) -> dict[str, Any]:
    checked_scenario(document)  # a bad scenario answers 422 before a thread is taken
    return await run_in_threadpool(run_inline, document)


JobId = Annotated[str, Path(pattern="^[0-9a-f]{16}$", description="the job's id, as POST answered it",
                            examples=["3f2a9c0e5d7b1a44"])]


@router.post("/jobs", response_model=SimulationJob, status_code=202,
             summary="Start a policy scenario as a background job; answers at once with its id and place in "
                     "the queue",
             responses=problems("invalid-request", "invalid-scenario", "scenario-too-large", "too-many-jobs"))
async def start_job(document: Annotated[dict[str, Any], _scenario_body(JOB_WORKERS_MAX, JOB_WORKER_MONTHS_MAX)],
                    queue: Annotated[JobQueue, Depends(jobs)],
                    principal: Annotated[Principal, Depends(role("policy"))]) -> dict[str, Any]:
    return queue.view(submit_job(queue, document, principal.subject))


@router.get("/jobs", response_model=list[SimulationJob], summary="Every simulation job kept, newest first")
async def list_jobs(queue: Annotated[JobQueue, Depends(jobs)],
                    _: Annotated[Principal, Depends(role("policy"))]) -> list[dict[str, Any]]:
    return [queue.view(job) for job in queue.list()]


@router.get("/jobs/{job_id}", response_model=SimulationJob,
            summary="A job's status, stage and percent, its place in the queue, its error",
            responses=problems("invalid-request", "no-such-job"))
async def get_job(job_id: JobId, queue: Annotated[JobQueue, Depends(jobs)],
                  _: Annotated[Principal, Depends(role("policy"))]) -> dict[str, Any]:
    return queue.view(found_job(queue, job_id))


@router.get("/jobs/{job_id}/result", response_model=SimulationRun,
            summary="A finished job's tables and run record (as POST /v1/simulations answers)",
            responses=problems("invalid-request", "no-such-job", "job-not-done"))
async def job_result(job_id: JobId, queue: Annotated[JobQueue, Depends(jobs)],
                     _: Annotated[Principal, Depends(role("policy"))]) -> dict[str, Any]:
    job = found_job(queue, job_id)
    result = await run_in_threadpool(queue.result, job)
    if result is None:
        raise Problem(409, "job-not-done", f"job {job.id} is {job.status}" + (f": {job.error}" if job.error else ""))
    return result


@router.delete("/jobs/{job_id}", response_model=SimulationJob,
               summary="Cancel a queued or running job (a running one stops at its next engine month)",
               responses=problems("invalid-request", "no-such-job", "job-finished"))
async def cancel_job(job_id: JobId, queue: Annotated[JobQueue, Depends(jobs)],
                     _: Annotated[Principal, Depends(role("policy"))]) -> dict[str, Any]:
    job = found_job(queue, job_id)
    if not queue.cancel(job):
        raise Problem(409, "job-finished", f"job {job.id} has finished ({job.status}); nothing to cancel")
    return queue.view(job)

"""Background simulation jobs: a queue of one runner, progress by stage, state kept as JSON files.

A what-if of 200,000 workers takes longer than a web request may: the policy page and
`POST /v1/simulations/jobs` submit the scenario here and answer at once with the job's
id; the page then polls the job's progress and shows its result when it is done.

- **One at a time.** The machine the service runs on has few cores and the engine uses
  them all (`engine.THREADS`), so one runner thread takes the jobs in the order they
  came; the others wait, each with its place in the queue (1: next).
- **Progress** is a stage and a whole percent that never goes down: `population` (0–10,
  drawing or mapping the synthetic workers), `engine` (10–90, one step per arm and
  month, the engine's own `progress(arm, month)` calls), `report` (90–99, the results
  tables and the brief), then `done` (100). `failed` keeps the error's text; `cancelled`
  is a job stopped while queued, or by its runner at the next engine month.
- **Stored, not only remembered.** Each job is a folder `<jobs dir>/<id>/` with `job.json`
  (its state, rewritten whole and atomically at each change of stage or percent) and,
  once done, `result.json`. A page reload reads them back; a service that restarts finds
  them too, and marks a job it was running or had queued as `failed` ("the service
  restarted"), since the runner that held it is gone.

The work a job does is a function given to the queue (`work(document, progress)`):
the API layer passes the same run as the inline route, so a job's result is the same
to the bit as `POST /v1/simulations` and `ansinh simulate` for the same scenario. What
only a download needs (the page's HTML report: matplotlib's charts take seconds) comes
after: a result may carry `LATER`, a function returning files by name, which the runner
calls once the job is `done` and its result shown, before it takes the next job.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("ansinh.jobs")

STAGES = ("queued", "population", "engine", "report", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
STAGE_SPAN = {"population": (0, 10), "engine": (10, 90), "report": (90, 99)}  # percent at start and end
JOB_ID = re.compile(r"[0-9a-f]{16}")
LATER = "_later"  # a result's key: files to make after the job is done (not stored in result.json)
FILE_NAME = re.compile(r"[a-z][a-z0-9_-]*\.(html|json|csv)")
JOBS_KEPT_MAX = 200  # the oldest finished jobs past this are deleted, with their results
RESTARTED = "the service restarted before the job finished; start it again"


class JobCancelled(Exception):
    """Raised inside a running job (from its progress callback) when someone cancelled it."""


class JobError(Exception):
    """A failure whose text is meant for the person who started the job (an invalid scenario, a population
    that cannot be drawn): shown as it is. Any other exception is logged and shown as a generic failure."""


@dataclass
class Job:
    id: str
    created: float
    summary: dict[str, Any]  # what the list shows: the scenario's name, workers, months, reforms
    owner: str = ""
    status: str = "queued"  # one of STAGES
    percent: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def finished_ok(self) -> bool:
        return self.status == "done"

    def public(self, position: int | None) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "percent": self.percent, "position": position,
                "created": self.created, "started": self.started, "finished": self.finished, "error": self.error,
                **self.summary}


class Progress:
    """The callback a job's work reports to: `stage(name)` and `step(done, total)` within the stage.
    Percent is monotone: a report that would lower it is ignored."""

    def __init__(self, jobs: "JobQueue", job: Job) -> None:
        self._jobs, self._job = jobs, job

    def stage(self, name: str) -> None:
        self._jobs._advance(self._job, name, STAGE_SPAN[name][0])

    def step(self, done: int, total: int) -> None:
        low, high = STAGE_SPAN.get(self._job.status, (0, 99))
        self._jobs._advance(self._job, self._job.status, low + (high - low) * min(done, total) // max(total, 1))


Work = Callable[[dict[str, Any], Progress], dict[str, Any]]


class JobQueue:
    """Jobs in `directory`; one runner thread (started with the first job) runs `work` on them in order."""

    def __init__(self, directory: str | Path, work: Work, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._work, self._clock = work, clock
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._cancelled: set[str] = set()
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._runner: threading.Thread | None = None
        self._load()

    # -- what callers do ---------------------------------------------------------------------

    def submit(self, document: dict[str, Any], summary: dict[str, Any], owner: str = "") -> Job:
        job = Job(id=secrets.token_hex(8), created=self._clock(), summary=summary, owner=owner, document=document)
        with self._lock:
            self._jobs[job.id] = job
            self._save(job)
            if self._runner is None:  # the first job, or the first since a shutdown: a runner of its own queue
                self._pending = queue.Queue()
                self._runner = threading.Thread(target=self._run, args=(self._pending,), name="ansinh-jobs",
                                                daemon=True)
                self._runner.start()
            self._pending.put(job.id)
        self._trim()
        return job

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.fullmatch(job_id or ""):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 after it …; None for a job that is not waiting."""
        if job.status != "queued":
            return None
        with self._lock:
            waiting = sorted((j for j in self._jobs.values() if j.status == "queued"), key=lambda j: j.created)
        return next((index for index, j in enumerate(waiting, start=1) if j.id == job.id), None)

    def view(self, job: Job) -> dict[str, Any]:
        return job.public(self.position(job))

    def list(self) -> list[Job]:
        """Every job kept, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (-j.created, j.id))

    def result(self, job: Job) -> dict[str, Any] | None:
        path = self.directory / job.id / "result.json"
        if job.status != "done" or not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def file(self, job: Job, name: str) -> Path | None:
        """A file the job made after it was done (`LATER`), if it is there yet."""
        path = self.directory / job.id / name
        return path if FILE_NAME.fullmatch(name) and path.is_file() else None

    def cancel(self, job: Job) -> bool:
        """Stop a queued job now, a running one at its next engine month; False if it had finished."""
        with self._lock:
            if job.status in FINISHED:
                return False
            self._cancelled.add(job.id)
            if job.status == "queued":
                self._finish(job, "cancelled")
        return True

    def wait(self, job_id: str, timeout: float) -> Job | None:
        """Until the job finishes or `timeout` seconds pass (tests and the CLI; pages poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job is None or job.status in FINISHED:
                return job
            time.sleep(0.05)
        return self.get(job_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel what is queued or running and stop the runner (the service's shutdown). A job submitted
        afterwards starts a new runner."""
        with self._lock:
            for job in self._jobs.values():
                if job.status not in FINISHED:
                    self._cancelled.add(job.id)
                    if job.status == "queued":
                        self._finish(job, "cancelled")
            runner, pending = self._runner, self._pending
            self._runner = None
        pending.put(None)
        if runner is not None:
            runner.join(timeout)

    # -- the runner --------------------------------------------------------------------------

    def _run(self, pending: queue.Queue) -> None:
        while True:
            job_id = pending.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.status != "queued":
                    continue
                job.status, job.started = "population", self._clock()
                self._save(job)
            try:
                result = self._work(job.document, Progress(self, job))
            except JobCancelled:
                with self._lock:
                    self._finish(job, "cancelled")
                continue
            except JobError as error:
                with self._lock:
                    self._finish(job, "failed", str(error))
                continue
            except Exception:  # noqa: BLE001 - the runner outlives any one job
                log.exception("simulation job %s failed", job.id)
                with self._lock:
                    self._finish(job, "failed", f"the simulation failed (job {job.id}); the service's log has "
                                                "the details")
                continue
            folder = self.directory / job.id
            later = result.pop(LATER, None)
            _write_json(folder / "result.json", result)
            with self._lock:
                self._finish(job, "done")
            if later is not None:
                self._make_files(job, folder, later)

    def _make_files(self, job: Job, folder: Path, later: Callable[[], dict[str, bytes]]) -> None:
        try:
            for name, data in later().items():
                if not FILE_NAME.fullmatch(name):
                    raise ValueError(f"not a job file name: {name!r}")
                partial = folder / (name + ".partial")
                partial.write_bytes(data)
                os.replace(partial, folder / name)
        except Exception:  # noqa: BLE001 - the result stands; only the download is missing
            log.exception("simulation job %s: its files after the result failed", job.id)

    def _advance(self, job: Job, stage: str, percent: int) -> None:
        with self._lock:
            if job.id in self._cancelled:
                raise JobCancelled(job.id)
            changed = stage != job.status or percent > job.percent
            if STAGES.index(stage) < STAGES.index(job.status):
                return  # never back to an earlier stage
            job.status, job.percent = stage, max(job.percent, min(percent, 99))
            if changed:
                self._save(job)

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        """(Under the lock.)"""
        job.status, job.error, job.finished = status, error, self._clock()
        if status == "done":
            job.percent = 100
        self._cancelled.discard(job.id)
        self._save(job)

    # -- storage -----------------------------------------------------------------------------

    def _save(self, job: Job) -> None:
        _write_json(self.directory / job.id / "job.json", asdict(job))

    def _load(self) -> None:
        for path in sorted(self.directory.glob("*/job.json")):
            if not JOB_ID.fullmatch(path.parent.name):
                continue
            try:
                job = Job(**json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as error:
                log.warning("job file %s cannot be read (%s); skipped", path, error)
                continue
            if job.status not in FINISHED:  # its runner was in a process that is gone
                job.status, job.error, job.finished = "failed", RESTARTED, self._clock()
                self._save(job)
            self._jobs[job.id] = job

    def _trim(self) -> None:
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.status in FINISHED), key=lambda j: j.created)
            dropped = finished[:max(0, len(self._jobs) - JOBS_KEPT_MAX)]
            for job in dropped:
                del self._jobs[job.id]
        for job in dropped:
            folder = self.directory / job.id
            for path in folder.glob("*"):
                path.unlink(missing_ok=True)
            folder.rmdir()


def _write_json(path: Path, value: Any) -> None:
    """Whole or not at all: written beside, then renamed over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain), encoding="utf-8")
    os.replace(partial, path)


def _plain(value: Any) -> Any:
    """numpy integers and floats as Python's, pandas' missing values as null (the results tables' rows)."""
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)

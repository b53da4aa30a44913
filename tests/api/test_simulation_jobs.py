"""Simulation jobs over HTTP and on the policy page: started at once, progress by stage, the result when done,
kept across a reload and a restart; a failing job shows its error, a waiting one its place in the queue."""
from __future__ import annotations

import re
import secrets
import threading
import time
import warnings
from datetime import timedelta

import pytest

from api.app import build_services, create_app
from api.settings import Settings
from api.tokens import mint_demo_token
from simulations.jobs import JobQueue, RESTARTED
from tests.conftest import FixedClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
SCENARIO = {"name": "job", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 3, "seed": 9,
            "population": {"synthetic": {"workers": 1_500}},
            "reforms": {"poor-50": {"changes": {"tiers.poor": 500_000}}}}
FORM = {"baseline": "vn-pilot", "start": "2026-01", "horizon_months": "3", "workers": "1500", "seed": "7",
        "tiers.poor": "50"}
JOB_SECONDS_MAX = 240  # a 1,500-worker job takes seconds; a busy shared machine, more


class Service:
    def __init__(self, folder, jobs_dir) -> None:
        settings = Settings(database_url=f"sqlite:///{folder}/books.db", secret=SECRET, pack="vn-pilot",
                            mode="demo", jobs_dir=str(jobs_dir))
        self.services = build_services(settings, clock=FixedClock())
        self.app = create_app(services=self.services)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        token = mint_demo_token(SECRET, "policy", "analyst-1", self.services.ledger.clock(), timedelta(minutes=15))
        self.auth = {"Authorization": f"Bearer {token}"}

    def __enter__(self) -> "Service":
        self.client.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.client.__exit__(*exc)

    def get(self, url: str):
        return self.client.get(url, headers=self.auth)

    def poll(self, url: str) -> list[dict]:
        """Each answer of GET `url` until the job has finished."""
        seen, deadline = [], time.monotonic() + JOB_SECONDS_MAX
        while time.monotonic() < deadline:
            answer = self.get(url)
            assert answer.status_code == 200, answer.text
            seen.append(answer.json())
            if seen[-1]["status"] in ("done", "failed", "cancelled"):
                return seen
            time.sleep(0.02)
        raise AssertionError(f"the job did not finish in {JOB_SECONDS_MAX} s: {seen[-1]}")


@pytest.fixture
def service(tmp_path):
    with Service(tmp_path, tmp_path / "jobs") as running:
        yield running


def test_a_job_answers_at_once_then_reports_a_monotone_percent_that_ends_at_100_and_its_result(service):
    started = service.client.post("/v1/simulations/jobs", json=SCENARIO, headers=service.auth)

    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] in ("queued", "population") and job["workers"] == 1_500 and job["reforms"] == ["poor-50"]
    seen = service.poll(f"/v1/simulations/jobs/{job['id']}")
    percents = [answer["percent"] for answer in seen]
    assert percents == sorted(percents) and percents[-1] == 100 and seen[-1]["status"] == "done"
    stages = [answer["status"] for answer in seen]
    order = ["queued", "population", "engine", "report", "done"]
    assert [order.index(stage) for stage in stages] == sorted(order.index(stage) for stage in stages)
    result = service.get(f"/v1/simulations/jobs/{job['id']}/result")
    assert result.status_code == 200
    inline = service.client.post("/v1/simulations", json=SCENARIO, headers=service.auth).json()
    assert result.json()["record"]["results_sha256"] == inline["record"]["results_sha256"]  # the same run, to the bit
    assert [row["id"] for row in service.get("/v1/simulations/jobs").json()] == [job["id"]]

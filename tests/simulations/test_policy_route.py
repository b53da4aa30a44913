"""POST /v1/simulations on a bare app (the real app wires the same router): policy role only."""
from __future__ import annotations

import warnings

import pytest
from fastapi import FastAPI

from api import problems
from api.deps import bearer
from api.routes import simulations
from api.tokens import Principal

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SCENARIO = {"name": "inline", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2, "seed": 9,
            "population": {"synthetic": {"workers": 400}},
            "reforms": {"poor-50": {"changes": {"tiers.poor": 500000}}}}


def client_as(role_name: str) -> TestClient:
    app = FastAPI()
    problems.install(app)
    app.include_router(simulations.router, prefix="/v1")
    app.dependency_overrides[bearer] = lambda: Principal(role=role_name, subject="tester")
    return TestClient(app)


def test_a_policy_caller_gets_the_summary_of_every_arm_and_the_run_record():
    response = client_as("policy").post("/v1/simulations", json=SCENARIO)

    assert response.status_code == 200, response.text
    body = response.json()
    assert [row["arm"] for row in body["tables"]["summary"]] == ["baseline", "poor-50"]
    assert body["record"]["seed"] == 9 and len(body["record"]["results_sha256"]) == 64


@pytest.mark.parametrize("role_name", ["insurer", "admin", "worker"])
def test_other_roles_are_refused_with_403(role_name):
    assert client_as(role_name).post("/v1/simulations", json=SCENARIO).status_code == 403


def test_an_invalid_or_too_large_scenario_is_a_422_naming_the_key():
    client = client_as("policy")
    bad = client.post("/v1/simulations", json={**SCENARIO, "horizon_months": 0})
    big = client.post("/v1/simulations", json={**SCENARIO, "population": {"synthetic": {"workers": 1_000_000}}})

    assert bad.status_code == 422 and [e["key"] for e in bad.json()["errors"]] == ["horizon_months"]
    assert big.status_code == 422 and big.json()["errors"][0]["key"] == "population.synthetic.workers"


def test_an_inline_scenario_naming_a_fare_file_is_refused_and_no_file_is_read(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("fare\n12.50\n", encoding="utf-8")
    population = {"synthetic": {"workers": 200, "fare_profile": str(secret)}}
    response = client_as("policy").post("/v1/simulations", json={**SCENARIO, "population": population})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"key": "population.synthetic.fare_profile", "reason": "not allowed inline"}]
    assert "12.50" not in response.text


def test_the_policy_route_returns_the_pension_projection_table():
    body = client_as("policy").post("/v1/simulations", json=SCENARIO).json()
    assert {row["arm"] for row in body["tables"]["pension_projection"]} == {"baseline", "poor-50"}

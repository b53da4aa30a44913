"""`ansinh simulate`: exit codes, the summary table and what --out writes."""
from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from api.cli import app


def test_an_invalid_scenario_exits_1_and_names_every_bad_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 0,
                                    "seed": 1, "population": {"synthetic": {"workers": 10}},
                                    "budget": {"strategy": "cap"}}))
    result = CliRunner().invoke(app, ["simulate", str(path)])

    assert result.exit_code == 1
    assert "horizon_months" in result.output and "budget.limit_vnd" in result.output


def test_simulate_prints_one_summary_row_per_arm_and_writes_the_run_record(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({"name": "ok", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2,
                                    "seed": 3, "population": {"synthetic": {"workers": 500}},
                                    "reforms": {"poor-50": {"changes": {"tiers.poor": 500000}}}}))
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "out")])

    assert result.exit_code == 0, result.output
    assert "baseline" in result.output and "poor-50" in result.output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["population"]["workers"] == 500 and len(record["results_sha256"]) == 64

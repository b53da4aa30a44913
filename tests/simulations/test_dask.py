"""The engine's chunks on a real dask.distributed cluster give the same bits as the in-process run."""
from __future__ import annotations

import pandas as pd
import yaml
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from api.cli import app
from simulations import distributed as distributed_module
from simulations.population import synthetic
from simulations.run import run_scenario
from simulations.scenario import parse_scenario

SCENARIO = {"name": "dask", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 3, "seed": 9,
            # A yearly cap that runs out, and a reform limiting subsidised months: both make chunks wait
            # for the coordinator every month, the hardest case for a scheduler.
            "population": {"synthetic": {"workers": 1_200}},
            "budget": {"strategy": "cap", "limit_vnd": 3_000_000, "period": "horizon"},
            "reforms": {"poor-50-two-months": {"changes": {"tiers.poor": 500_000, "max_subsidised_months": 2}}}}


def test_a_capped_scenario_on_a_dask_local_cluster_equals_the_in_process_run_to_the_bit():
    scenario = parse_scenario(SCENARIO)
    population = synthetic(1_200, scenario.months, scenario.seed)
    local = run_scenario(scenario, population=population)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        remote = run_scenario(scenario, population=population, client=client, chunk_workers=500)  # three actors

    assert remote.record["results_sha256"] == local.record["results_sha256"]
    for arm in local.arms:
        pd.testing.assert_frame_equal(remote.arms[arm].worker_totals, local.arms[arm].worker_totals)
    paid = local.results.tables["summary"].set_index("arm")["subsidy_vnd"]
    assert paid["baseline"] <= 3_000_000 and paid["baseline"] > 2_990_000  # the cap binds: the same dong on both


def test_simulate_with_dask_at_an_unreachable_address_exits_1_and_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed_module, "CONNECT_TIMEOUT_S", 2)  # nothing listens on port 9: fail fast
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "population": {"synthetic": {"workers": 50}}}))
    result = CliRunner().invoke(app, ["simulate", str(path), "--dask", "tcp://127.0.0.1:9"])

    assert result.exit_code == 1
    assert "tcp://127.0.0.1:9" in result.output


def test_simulate_with_dask_local_prints_the_same_results_hash_as_without(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "population": {"synthetic": {"workers": 300}}}))
    alone = CliRunner().invoke(app, ["simulate", str(path)])
    on_dask = CliRunner().invoke(app, ["simulate", str(path), "--dask", "local"])

    assert alone.exit_code == 0 and on_dask.exit_code == 0, on_dask.output
    digest = alone.output.split("results ")[1].split()[0]
    assert len(digest) == 16 and on_dask.output.split("results ")[1].split()[0] == digest

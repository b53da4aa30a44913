"""Results tables, the written report, and reproducing a run from its record."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simulations import report
from simulations.results import BANDS, bands, gini
from simulations.run import run_scenario
from simulations.scenario import parse_scenario

SCENARIO = {"name": "small", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 3, "seed": 42,
            "population": {"synthetic": {"workers": 3_000}},
            "reforms": {"poor-50": {"changes": {"tiers.poor": 500_000}},
                        "ride-1.2pct": {"changes": {"rates.ride.si.worker": {"2026-02-01": 12_000}}}}}


@pytest.fixture(scope="module")
def small_run():
    return run_scenario(parse_scenario(SCENARIO))


def test_the_five_bands_of_every_decile_add_up_to_the_whole_population(small_run):
    for name in ("deciles_take_home", "deciles_credited_months"):
        for arm, frame in small_run.results.tables[name].groupby("arm"):
            assert frame["workers"].sum() == 3_000
            assert (frame[list(BANDS)].sum(axis=1) == frame["workers"]).all()
            assert frame["decile"].tolist() == list(range(1, 11))


def test_bands_split_at_minus_5_minus_0_1_plus_0_1_and_plus_5_percent_exactly():
    baseline = np.array([1000] * 9 + [0, 0])
    reform = np.array([949, 950, 998, 999, 1000, 1001, 1002, 1050, 1051, 0, 5])

    assert bands(baseline, reform).tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 4, 2, 4]


def test_gini_is_zero_for_equal_values_and_approaches_one_when_one_holds_everything():
    assert gini(np.array([5, 5, 5, 5])) == 0.0
    assert gini(np.array([0, 0, 0, 100])) == pytest.approx(0.75)


def test_a_rate_rise_on_rides_raises_si_revenue_from_rides_only_from_its_month(small_run):
    revenue = small_run.results.tables["revenue_by_scheme_party_kind"].set_index(
        ["arm", "scheme", "party", "kind"]).sort_index()
    base = revenue.loc[("baseline", "si", "worker")]["amount_vnd"]
    reform = revenue.loc[("ride-1.2pct", "si", "worker")]["amount_vnd"]

    assert reform["ride"] > base["ride"] and reform["order"] == base["order"] and reform["delivery"] == base["delivery"]
    budget = small_run.results.tables["summary"].set_index("arm")
    assert budget.loc["poor-50", "worker_vnd"] == budget.loc["baseline", "worker_vnd"]
    assert budget.loc["poor-50", "subsidy_delta_vnd"] > 0


def test_a_run_written_to_disk_has_every_table_chart_report_and_a_record_that_reproduces_it(small_run, tmp_path):
    written = report.write(small_run, tmp_path)
    record = json.loads((tmp_path / "run.json").read_text())

    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 5
    assert {"chart:budget_over_time", "chart:coverage_by_tier", "chart:lorenz", "chart:deciles_poor-50",
            "table:summary", "table:deciles_take_home", "table:deciles_credited_months", "table:coverage",
            "table:coverage_by_year", "table:budget_window", "table:headline_ranges"} <= set(written)
    assert record["seed"] == 42 and record["population"]["workers"] == 3_000
    assert [v["version_id"] for v in record["packs"]["ride-1.2pct"]] == [
        "vn-pilot+ride-1.2pct@2026-01-01", "vn-pilot+ride-1.2pct@2026-02-01"]
    again = run_scenario(parse_scenario(record["scenario"]["document"]))
    assert again.record["population"]["sha256"] == record["population"]["sha256"]
    assert again.record["results_sha256"] == record["results_sha256"]

"""The charts and tables below the brief at national scale: every count and money total weighted, adding up
to the brief's national totals; with weights 1 they are the sample's own tables, figure for figure."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

from simulations import brief, report
from simulations.national import apportion, national_tables, spread, weighted_deciles
from simulations.results import income_deciles
from simulations.run import run_scenario
from simulations.scenario import parse_scenario

SCENARIO = {"name": "national", "baseline": "vn-pilot", "start": "2026-10", "horizon_months": 4, "seed": 5,
            "population": {"synthetic": {"workers": 1_500}},
            "reforms": {"poor-50": {"changes": {"tiers.poor": 500_000}},
                        "ride-1.2pct": {"changes": {"rates.ride.si.worker": {"2026-11-01": 12_000}}}}}
SAMPLE_TABLES = ("summary", "budget_by_year_scheme", "budget_window", "revenue_by_scheme_party_kind", "coverage",
                 "coverage_by_year", "deciles_take_home", "deciles_credited_months", "headline_ranges")


@pytest.fixture(scope="module")
def weighted_run():
    return run_scenario(parse_scenario(SCENARIO))


@pytest.fixture(scope="module")
def unweighted_run():
    document = copy.deepcopy(SCENARIO)
    document["population"]["synthetic"]["targets"] = False  # no calibration: weight 1 each
    return run_scenario(parse_scenario(document))


def test_every_weighted_table_adds_up_to_the_brief_s_national_totals(weighted_run):
    tables, figures = national_tables(weighted_run), brief.national(weighted_run)
    assert weighted_run.population.weights.min() > 1  # calibrated: each worker stands for thousands

    for arm, mine in figures["per_arm"].items():
        def of(table: str) -> pd.DataFrame:
            return tables[table][tables[table]["arm"] == arm]

        summary = of("summary").iloc[0]
        by_tier = of("coverage")[of("coverage")["by"] == "tier"]
        assert mine["subsidy_vnd"] == summary["subsidy_vnd"] == of("budget_by_year_scheme")["subsidy_vnd"].sum() \
            == of("budget_by_month")["subsidy_vnd"].sum() == by_tier["subsidy_vnd"].sum()
        assert mine["credited_months"] == summary["pension_months"] == by_tier["pension_months"].sum()
        assert mine["workers_credited"] == summary["workers_credited"] == by_tier["workers_with_a_pension_month"].sum()
        assert mine["leakage_per_mille"] == summary["leakage_per_mille"]
        if arm != "baseline":
            deciles = of("deciles_take_home")
            assert mine["take_home_winners"] == summary["take_home_winners"] == deciles["winners"].sum()
            assert mine["take_home_losers"] == summary["take_home_losers"] == deciles["losers"].sum()
            assert mine["credited_months_winners"] == of("deciles_credited_months")["winners"].sum()
    assert tables["summary"].loc[0, "subsidy_vnd"] > 1_000 * weighted_run.results.tables["summary"].loc[0,
                                                                                                       "subsidy_vnd"]


def test_with_every_weight_1_the_weighted_tables_are_the_sample_s_own(unweighted_run):
    assert (unweighted_run.population.weights == 1).all()
    tables = national_tables(unweighted_run)

    for name in SAMPLE_TABLES + ("inequality",):
        sample = unweighted_run.results.tables[name]
        shared = [column for column in tables[name].columns if column in sample.columns]
        pd.testing.assert_frame_equal(tables[name][shared].reset_index(drop=True), sample[shared].reset_index(drop=True),
                                      check_dtype=False, obj=name, atol=2e-6)  # a Gini: the same to its 6th digit
    deciles = tables["deciles_take_home"]
    assert (deciles["mean_delta_vnd"] == (deciles["delta_vnd"] / deciles["workers"]).round()).all()


def test_with_every_weight_2_every_count_and_money_figure_is_twice_the_sample_s(unweighted_run):
    doubled = copy.copy(unweighted_run)
    doubled.population = dataclasses.replace(unweighted_run.population,
                                             workers=unweighted_run.population.workers.assign(weight=2.0))
    tables, sample = national_tables(doubled), unweighted_run.results.tables

    for name, columns in (("summary", ["subsidy_vnd", "worker_vnd", "pension_months", "workers_credited",
                                       "take_home_losers", "window_subsidy_real_vnd"]),
                          ("budget_by_year_scheme", ["subsidy_vnd", "subsidy_demand_vnd"]),
                          ("coverage", ["workers", "pension_months", "balance_vnd"]),
                          ("deciles_take_home", ["workers", "delta_vnd", "losers"])):
        assert (tables[name][columns].to_numpy() == 2 * sample[name][columns].to_numpy()).all(), name
    assert (tables["summary"]["leakage_per_mille"] == sample["summary"]["leakage_per_mille"]).all()  # a share
    assert (tables["deciles_take_home"]["mean_delta_vnd"].to_numpy() ==
            (sample["deciles_take_home"]["delta_vnd"] / sample["deciles_take_home"]["workers"]).round().to_numpy()).all()


def test_rows_shared_out_add_up_to_the_whole_and_integer_rows_come_back_unchanged():
    assert apportion(10, [3.4, 3.3, 3.3]).tolist() == [4, 3, 3]
    assert apportion(-7, [-3.5, -3.5]).tolist() == [-3, -4]
    assert apportion(12, [5, 0, 7]).tolist() == [5, 0, 7]
    assert spread(100, [1, 1, 2]).tolist() == [25, 25, 50]
    assert spread(7, [0, 0]).sum() == 7


def test_a_worker_of_weight_2_counts_as_two_workers_in_the_gini_and_the_lorenz_curve():
    from simulations.national import weighted_inequality
    from simulations.results import _inequality

    doubled, points = weighted_inequality(np.array([0, 10, 30]), np.array([1.0, 2.0, 1.0]))
    gini, sample_points = _inequality(np.array([0, 10, 10, 30]))
    assert doubled == pytest.approx(gini, abs=1e-6) and gini == pytest.approx(0.45)  # Σ (2i − n − 1)·x_i ÷ (n·Σx) = 90 ÷ 200
    assert np.allclose(points[1][[0, 25, 50, 75, 100]], sample_points[1][[0, 25, 50, 75, 100]])


def test_weighted_deciles_with_weights_1_are_the_sample_s_deciles_ties_in_worker_order():
    values = np.random.default_rng(3).integers(0, 40, size=1_003)  # many ties
    assert (weighted_deciles(values, np.ones(len(values))) == income_deciles(values)).all()
    heavy = weighted_deciles(np.arange(4), np.array([1.0, 1.0, 1.0, 7.0]))  # the last worker is 70 % of everyone
    assert heavy.tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("lang, label", [("vi", "ước tính cả nước, có trọng số"), ("en", "national estimate, weighted")])
def test_the_report_labels_its_tables_and_charts_national_and_states_the_sample_s_size(weighted_run, lang, label):
    page = report.render_html(weighted_run, {}, lang=lang)
    summary = national_tables(weighted_run)["summary"]

    assert page.count(label) >= 8
    assert brief.formats(lang).count(1_500) in page  # the sample's size, beside the national figures
    assert brief.formats(lang).money(int(summary.loc[0, "subsidy_vnd"])) in page

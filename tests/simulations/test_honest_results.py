"""Honest results: who gains on take-home pay and on credited months (never on balances), coverage as workers
credited in the year, the state's cost over a 10-year window in nominal and real terms, ranges on the headline."""
from __future__ import annotations

import numpy as np
import pytest

from rules import PPM, load_pack, round_half_up
from simulations import engine
from simulations.options import INFLATION_PPM_DEFAULT, Options
from simulations.population import PLATFORM_NAMES
from simulations.results import BANDS, budget_window, compute, coverage_by_year
from simulations.run import run_scenario
from simulations.scenario import Budget, ScenarioError, parse_scenario
from tests.simulations.test_engine import tiny

WORKER_RATES_UP = {f"rates.{kind}.si.worker": rate for kind, rate in (("ride", 15_000), ("delivery", 15_000),
                                                                      ("order", 9_000))}
SCENARIO = {"name": "honest", "baseline": "vn-pilot", "start": "2026-07", "horizon_months": 9, "seed": 18,
            "population": {"synthetic": {"workers": 2_500}},
            "reforms": {"si-up": {"description": "every si worker rate up by half", "changes": WORKER_RATES_UP},
                        "no-change": {"description": "tiers.poor at the baseline's own 30 %",
                                      "changes": {"tiers.poor": 300_000}}}}
GRAB = PLATFORM_NAMES.index("grab")


@pytest.fixture(scope="module")
def honest():
    return run_scenario(parse_scenario(SCENARIO))


def test_raising_the_worker_rate_lowers_every_participants_take_home_pay_and_is_never_reported_as_a_win(honest):
    base, reform = (honest.arms[arm].worker_totals for arm in ("baseline", "si-up"))
    participants = base["active_months"].to_numpy() > 0
    change = reform["take_home_vnd"].to_numpy() - base["take_home_vnd"].to_numpy()
    tables = honest.results.tables

    assert participants.sum() > 2_000 and (change[participants] < 0).all() and (change[~participants] == 0).all()
    deciles = tables["deciles_take_home"].query("arm == 'si-up'")
    assert deciles["winners"].sum() == 0 and deciles[["gain_0.1_to_5pct", "gain_more_than_5pct"]].sum().sum() == 0
    assert deciles["losers"].sum() == participants.sum() and (deciles["delta_vnd"] < 0).all()
    summary = tables["summary"].set_index("arm")
    assert (summary.loc["si-up", "take_home_winners"], summary.loc["si-up", "take_home_losers"]) == \
        (0, participants.sum())
    ranges = tables["headline_ranges"].set_index(["arm", "figure"])
    assert ranges.loc[("si-up", "take_home_winners"), ["value", "low", "high"]].tolist() == [0, 0, 0]
    # What the old "balance up" count would have called winners: the same reform fills the accounts.
    balance_up = (reform["balance_vnd"].to_numpy() > base["balance_vnd"].to_numpy()).sum()
    assert balance_up > 2_000
    # Credited months are told apart: the extra si buys months, and nobody loses one.
    assert summary.loc["si-up", "credited_months_winners"] > 0 and summary.loc["si-up", "credited_months_losers"] == 0


def test_a_reform_that_changes_nothing_gives_zero_deltas_everywhere(honest):
    tables = honest.results.tables
    summary = tables["summary"].set_index("arm")
    deltas = [column for column in summary.columns if "delta" in column]
    winners = [f"{measure}_{side}" for measure in ("take_home", "credited_months") for side in ("winners", "losers")]

    assert len(deltas) >= 9 and (summary.loc["no-change", deltas + winners] == 0).all()
    for name, column in (("deciles_take_home", "delta_vnd"), ("deciles_credited_months", "delta_months")):
        frame = tables[name].query("arm == 'no-change'")
        assert (frame[[column, "winners", "losers"]] == 0).all().all()
        assert (frame["unchanged"] == frame["workers"]).all() and (frame["no_change"] == frame["workers"]).all()
    ranges = tables["headline_ranges"].query("arm == 'no-change' and "
                                             "(figure.str.contains('delta') or figure.str.contains('winners') or "
                                             "figure.str.contains('losers'))")
    assert len(ranges) >= 12 and (ranges[["value", "low", "high"]] == 0).all().all()
    for name in ("budget_window", "coverage_by_year"):
        frame = tables[name]
        same = frame[frame["arm"] == "no-change"].drop(columns="arm").reset_index(drop=True)
        assert same.equals(frame[frame["arm"] == "baseline"].drop(columns="arm").reset_index(drop=True))


def test_coverage_counts_the_workers_whom_the_years_closes_credited_a_month_whichever_month_it_pays():
    # Worker 0: 50M of rides in December 2026, si 500,000 + 33,000 top-up: December credited at its close.
    # Worker 1: 20M in December and in January, si 220,000 a month: December is credited at January's close.
    # Worker 2: a small January, never credited.
    population = tiny([(0, 202612, GRAB, 0, 2, 50_000_000), (1, 202612, GRAB, 0, 2, 20_000_000),
                       (1, 202701, GRAB, 0, 2, 20_000_000), (2, 202701, GRAB, 0, 2, 1_000_000)], 3, [2, 2, 2])
    arms = engine.run(population, {"baseline": load_pack("vn-pilot")}, Budget(), keep_worker_months=True)
    totals = arms["baseline"].worker_totals

    assert arms["baseline"].credits[["worker", "month", "close_month"]].values.tolist() == [
        [0, 202612, 202612], [1, 202612, 202701]]
    assert totals["active_years"].tolist() == [0b01, 0b11, 0b10] and totals["credited_years"].tolist() == [1, 2, 0]
    every = coverage_by_year(population, arms).query("by == 'all'")
    assert every[["year", "workers_active", "workers_credited", "coverage_ppm"]].values.tolist() == [
        [2026, 2, 1, 500_000], [2027, 2, 1, 500_000]]


def test_the_budget_window_is_ten_years_nominal_and_in_the_first_years_prices(honest):
    window = honest.results.tables["budget_window"].query("arm == 'baseline'").set_index("year")
    paid = honest.arms["baseline"].by_month_tier.groupby("month")["subsidy_vnd"].sum()
    first_year = int(paid[[m for m in paid.index if m < 202701]].sum())
    last_twelve = int(paid.sum())  # 9 simulated months: the mean of all of them stands for a month past them

    assert window.index.tolist() == list(range(2026, 2036))
    assert window.loc[2026, ["months_simulated", "months_extrapolated", "subsidy_nominal_vnd"]].tolist() == \
        [6, 0, first_year]
    assert window.loc[2027, ["months_simulated", "months_extrapolated"]].tolist() == [3, 9]
    assert window.loc[2028, "subsidy_nominal_vnd"] == round_half_up(last_twelve * 12, 9)
    growth = PPM + INFLATION_PPM_DEFAULT
    nominal = int(window.loc[2028, "subsidy_nominal_vnd"])
    assert window.loc[2028, "subsidy_real_vnd"] == round_half_up(nominal * PPM**2, growth**2)
    assert window.loc[2026, "deflator_ppm"] == PPM and window.loc[2035, "deflator_ppm"] == \
        round_half_up(PPM**10, growth**9) == 725_488  # 3.63 % a year for nine years
    flat = budget_window(honest.arms, Options(inflation_ppm=0, seed=18)).query("arm == 'baseline'")
    assert (flat["subsidy_real_vnd"] == flat["subsidy_nominal_vnd"]).all()
    summary = honest.results.tables["summary"].set_index("arm")
    assert summary.loc["baseline", "window_subsidy_real_vnd"] == window["subsidy_real_vnd"].sum()


def test_every_headline_figure_has_a_reproducible_95_percent_range_from_200_resamples_that_holds_its_value(honest):
    ranges = honest.results.tables["headline_ranges"]
    figures = set(ranges.query("arm == 'baseline'")["figure"])

    assert {"subsidy_vnd", "worker_vnd", "credited_months", "workers_credited", "workers_credited_2026",
            "workers_credited_2027", "window_subsidy_nominal_vnd", "window_subsidy_real_vnd"} <= figures
    assert (ranges["replicates"] == 200).all()
    assert ((ranges["low"] <= ranges["value"]) & (ranges["value"] <= ranges["high"])).all()
    base = ranges.set_index(["arm", "figure"])
    assert base.loc[("baseline", "subsidy_vnd"), "low"] < base.loc[("baseline", "subsidy_vnd"), "high"]
    again = compute(honest.population, honest.arms, options=honest.scenario.result_options())
    assert again.tables["headline_ranges"].equals(ranges)
    other = compute(honest.population, honest.arms, options=Options(seed=19)).tables["headline_ranges"]
    assert not other.equals(ranges) and other["value"].equals(ranges["value"])


@pytest.mark.parametrize(("extra", "key"), [({"ranges": {"replicates": 19}}, "ranges.replicates"),
                                           ({"window": {"years": 0}}, "window.years"),
                                           ({"window": {"inflation_ppm": -1}}, "window.inflation_ppm"),
                                           ({"window": {"horizon": 5}}, "window.horizon")])
def test_a_window_or_ranges_setting_out_of_bounds_is_refused_by_its_key(extra, key):
    with pytest.raises(ScenarioError) as refused:
        parse_scenario({**SCENARIO, **extra})

    assert [issue.key for issue in refused.value.issues] == [key]


def test_the_bands_of_both_decile_tables_add_up_to_the_workers_of_each_decile(honest):
    for name in ("deciles_take_home", "deciles_credited_months"):
        frame = honest.results.tables[name]
        assert (frame[list(BANDS)].sum(axis=1) == frame["workers"]).all()
        assert (frame["winners"] + frame["losers"] + frame["unchanged"] == frame["workers"]).all()
        assert frame.groupby("arm")["workers"].sum().tolist() == [2_500, 2_500]
        assert frame.groupby("arm")["decile"].apply(list).tolist() == [list(range(1, 11))] * 2
    take_home = honest.results.tables["deciles_take_home"].query("arm == 'si-up'")["take_home_vnd"].to_numpy()
    assert (np.diff(take_home) > 0).all()  # deciles of take-home pay: each richer than the last

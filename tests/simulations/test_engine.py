"""Hand-worked worker-months through the engine, with exact VND."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rules import load_pack
from simulations import engine
from simulations.population import DEFAULT_TIERS, PLATFORM_NAMES, Population, synthetic
from simulations.scenario import Budget, parse_scenario

POOR, NEAR_POOR, OTHER = range(3)
RIDE, DELIVERY, ORDER = range(3)
GRAB, SHOPEE = PLATFORM_NAMES.index("grab"), PLATFORM_NAMES.index("shopee")


def tiny(rows: list[tuple[int, int, int, int, int, int]], workers: int, tiers: list[int]) -> Population:
    """rows: (worker, month, platform, kind, tier, gross_vnd)."""
    activity = pd.DataFrame(rows, columns=["worker", "month", "platform", "kind", "tier", "gross_vnd"])
    activity["events"] = 1
    activity = activity.astype({"worker": np.int64, "month": np.int32, "platform": np.int16, "kind": np.int8,
                                "tier": np.int8, "gross_vnd": np.int64, "events": np.int32})
    activity = activity.sort_values(["month", "worker", "platform", "kind"], ignore_index=True)
    frame = pd.DataFrame({"worker": np.arange(workers), "sex": "male", "birth_year": 1990, "province": "079",
                          "region": "southeast", "worker_type": "ride",
                          "tier": pd.Categorical([DEFAULT_TIERS[t] for t in tiers], categories=list(DEFAULT_TIERS))})
    return Population(frame, activity)


def test_a_poor_rider_above_the_cap_gets_99000_si_and_15930_ui_of_subsidy():
    # 50,000,000 VND of rides: si.worker 500,000 (above the 330,000 cap), ui.worker 250,000 (cap 53,100).
    population = tiny([(0, 202601, GRAB, RIDE, POOR, 50_000_000)], 1, [POOR])
    result = engine.run(population, {"baseline": load_pack("vn-pilot")}, Budget())["baseline"]
    totals = result.worker_totals.iloc[0]

    assert (totals["si_worker"], totals["oa_platform"], totals["ui_worker"]) == (500_000, 250_000, 250_000)
    assert (totals["subsidy_si"], totals["subsidy_ui"]) == (99_000, 15_930)  # 30 % of 330,000 and of 53,100
    assert totals["pension_months"] == 1


def test_a_seller_below_the_floor_gets_10_percent_and_no_pension_month():
    # 2,057,500 VND of orders: si.worker round(12,345) = 12,345 → subsidy round(1,234.5) = 1,235 (RULES.md §8).
    population = tiny([(0, 202601, SHOPEE, ORDER, OTHER, 2_057_500)], 1, [OTHER])
    totals = engine.run(population, {"baseline": load_pack("vn-pilot")}, Budget())["baseline"].worker_totals.iloc[0]

    assert (totals["si_worker"], totals["subsidy_si"]) == (12_345, 1_235)
    assert totals["ui_worker"] == 4_115 and totals["subsidy_ui"] == 412  # round(411.5)
    assert totals["pension_months"] == 0 and totals["contributing_months"] == 1


def test_raising_the_poor_tier_to_50pct_raises_the_poor_tiers_subsidy_and_nobody_elses():
    population = synthetic(3_000, [202601, 202602, 202603], seed=11)
    scenario = parse_scenario({"name": "t", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 3,
                               "seed": 11, "population": {"synthetic": {"workers": 3000}},
                               "reforms": {"poor-50": {"changes": {"tiers.poor": 500_000}}}})
    results = engine.run(population, scenario.arms(), scenario.budget)
    base, reform = (results[a].worker_totals for a in ("baseline", "poor-50"))
    poor = (population.workers["tier"] == "poor").to_numpy()
    delta = reform["subsidy_vnd"].to_numpy() - base["subsidy_vnd"].to_numpy()

    assert (delta[~poor] == 0).all()
    assert (delta[poor] >= 0).all() and delta[poor].sum() > 0
    # Each poor worker's subsidy is exactly 5/3 of the baseline's, up to rounding of each scheme's top-up.
    assert np.abs(3 * reform["subsidy_vnd"].to_numpy()[poor] - 5 * base["subsidy_vnd"].to_numpy()[poor]).max() <= 8
    assert (reform["worker_vnd"] == base["worker_vnd"]).all()


@pytest.mark.parametrize("strategy", ["cap", "scale"])
def test_a_budget_limit_is_never_exceeded_and_is_nearly_spent_when_demand_is_higher(strategy):
    population = synthetic(2_000, [202601, 202602, 202603, 202604], seed=3)
    pack = load_pack("vn-pilot")
    demand = engine.run(population, {"baseline": pack}, Budget())["baseline"].worker_totals["subsidy_vnd"].sum()
    limit = int(demand) // 3
    result = engine.run(population, {"baseline": pack}, Budget(strategy, limit, "horizon"))["baseline"]
    paid = int(result.worker_totals["subsidy_vnd"].sum())

    assert paid <= limit
    assert limit - paid < 2 * len(population.workers) * 3  # at most one dong floored per worker-month-scheme
    months = result.by_month_tier.groupby("month")["subsidy_vnd"].sum()
    if strategy == "cap":  # first come, first served: the last month gets nothing
        assert months.iloc[-1] == 0 and months.iloc[0] > 0
    else:  # every month is cut by the same fraction
        assert months.iloc[-1] > 0


def test_a_yearly_cap_applies_to_each_calendar_year_separately():
    population = synthetic(1_000, [202611, 202612, 202701, 202702], seed=5)
    result = engine.run(population, {"baseline": load_pack("vn-pilot")}, Budget("cap", 1_000_000, "year"))["baseline"]

    assert result.budget["period"].tolist() == ["2026", "2027"]
    assert (result.budget["demand_vnd"] > 1_000_000).all()
    assert (result.budget["paid_vnd"] <= 1_000_000).all() and (result.budget["paid_vnd"] > 990_000).all()
    months = result.by_month_tier.groupby("month")["subsidy_vnd"].sum()
    assert months[202611] > 0 and months[202701] > 0  # the new year's budget pays January again


def test_pooling_never_credits_fewer_months_than_per_month_under_a_constant_floor_and_moves_no_money():
    # With a constant floor F and si ≥ 0, at any close pooling has either credited every month since the first
    # non-zero one or holds less than F after crediting c months, so c ≥ ⌊total / F⌋ ≥ the months whose own si ≥ F.
    months = [202601, 202602, 202603, 202604, 202605, 202606]
    population = synthetic(3_000, months, seed=5)
    scenario = parse_scenario({"name": "t", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 6,
                               "seed": 5, "population": {"synthetic": {"workers": 3000}},
                               "reforms": {"per-month": {"changes": {"crediting": "per_month"}}}})
    results = engine.run(population, scenario.arms(), scenario.budget)
    pooled, per_month = (results[a].worker_totals for a in ("baseline", "per-month"))

    assert (pooled["pension_months"] >= per_month["pension_months"]).all()
    assert per_month["pension_months"].sum() > 0 and pooled["pension_months"].sum() > per_month["pension_months"].sum()
    for column in ("si_worker", "si_platform", "subsidy_si", "balance_vnd", "take_home_vnd"):
        assert (pooled[column] == per_month[column]).all()
    assert results["per-month"].crediting == ("per_month",) and results["baseline"].crediting == ("pooled",)


def test_a_month_nobody_works_in_still_closes_and_the_pool_pays_it_as_the_ledger_would():
    # 100,000,000 VND of rides in January: si 1,000,000 own + 33,000 top-up. Nobody works in February; in March
    # only worker 1, a little. The ledger closes February too: the pool pays it then, not at the March close.
    from tests.credit_model import ModelWorker, flat_floor

    population = tiny([(0, 202601, GRAB, RIDE, OTHER, 100_000_000), (1, 202603, GRAB, RIDE, POOR, 1_000_000)],
                      2, [OTHER, POOR])
    result = engine.run(population, {"baseline": load_pack("vn-pilot")}, Budget(), keep_worker_months=True)["baseline"]
    model = ModelWorker(flat_floor(330_000))
    model.book(202601, 1_033_000)
    for month in (202601, 202602, 202603):
        model.close(month)

    credits = result.credits
    assert credits.loc[credits["worker"] == 0, ["month", "close_month"]].values.tolist() == \
        [list(pair) for pair in model.credited]
    assert int(result.worker_totals.loc[0, "pool_vnd"]) == model.figures(202603)[1] == 43_000
    by_month = result.by_month_tier.drop_duplicates(["month", "tier"]).groupby("month")["pension_months"].sum()
    assert by_month.to_dict() == {202601: 1, 202603: 2}  # February's credit is reported with the next simulated month

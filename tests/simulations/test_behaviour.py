"""Workers opting out when a reform raises their deduction rate (behaviour.participation_elasticity)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rules import load_pack
from simulations import behaviour, engine
from simulations.behaviour import DEFAULT_ELASTICITY, Participation
from simulations.population import DEFAULT_TIERS, PLATFORM_NAMES, SHARE_COLUMNS, Population, synthetic
from simulations.run import run_scenario
from simulations.scenario import Budget, ScenarioError, parse_scenario

GRAB = PLATFORM_NAMES.index("grab")


def scenario(behaviour_block=None, workers: int = 6_000, months: int = 6, **reforms):
    document = {"name": "b", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": months, "seed": 31,
                "population": {"synthetic": {"workers": workers}},
                "reforms": {name: {"changes": {"rates.ride.si.worker": rate}} for name, rate in reforms.items()}}
    if behaviour_block is not None:
        document["behaviour"] = behaviour_block
    return parse_scenario(document)


@pytest.fixture(scope="module")
def population():
    return synthetic(6_000, (202601, 202602, 202603, 202604, 202605, 202606), 31)


def lost(run) -> dict[str, int]:
    return dict(zip(run.participation["arm"], run.participation["participants_lost"]))


def test_keeping_on_is_the_rate_ratio_to_the_minus_elasticity_and_a_new_deduction_compares_with_0_1_percent():
    assert behaviour.keep_probability(25_000, 15_000, 0.1) == pytest.approx((25 / 15) ** -0.1)  # 0.9502
    assert behaviour.keep_probability(15_000, 25_000, 0.1) == 1.0  # a cut keeps everyone
    assert behaviour.keep_probability(2_000, 0, 0.5) == pytest.approx(2 ** -0.5)  # against the 1,000 ppm floor
    assert behaviour.keep_probability(25_000, 15_000, 0.0) == 1.0


def test_a_higher_deduction_rate_loses_more_participants_and_only_among_the_workers_it_raises(population):
    run = run_scenario(scenario({"participation_elasticity": 0.1}, **{"si-1.5pct": 15_000, "si-2pct": 20_000}),
                       population=population)
    participation = run.participation.set_index("arm")

    assert lost(run) == {"baseline": 0, "si-1.5pct": 73, "si-2pct": 120}  # ~3 % and ~5 % of the riders
    assert participation.loc["si-2pct", "participants_lost_national"] > 100_000  # weighted to 7.5 million
    contributing = {arm: int(result.by_month_tier.drop_duplicates(["month", "tier"])["workers_contributing"].sum())
                    for arm, result in run.arms.items()}
    assert contributing["baseline"] > contributing["si-1.5pct"] > contributing["si-2pct"]
    out = run.arms["si-2pct"].worker_totals["contributing_months"] < run.arms["baseline"].worker_totals[
        "contributing_months"]
    assert set(population.workers.loc[out.to_numpy(), "worker_type"].astype(str)) == {"ride"}


def test_with_zero_elasticity_nobody_is_lost_and_the_run_equals_the_static_one(population):
    static = run_scenario(scenario(**{"si-2pct": 20_000}), population=population)
    zero = run_scenario(scenario({"participation_elasticity": 0}, **{"si-2pct": 20_000}), population=population)

    assert lost(zero) == lost(static) == {"baseline": 0, "si-2pct": 0}
    assert zero.record["results_sha256"] == static.record["results_sha256"]


def test_the_reform_gains_credited_months_from_those_who_stay_and_loses_those_of_who_leave(population):
    run = run_scenario(scenario({"participation_elasticity": 0.3}, months=6, **{"si-2pct": 20_000}),
                       population=population)
    base, reform = (run.arms[arm].worker_totals for arm in ("baseline", "si-2pct"))
    left = (reform["contributing_months"] < base["contributing_months"]).to_numpy()
    change = (reform["pension_months"] - base["pension_months"]).to_numpy()

    assert int(left.sum()) == lost(run)["si-2pct"] == 356  # (25/15)^-0.3: 14 % of the riders
    assert change[~left].sum() > 0 and (change[~left] >= 0).all()  # stayers pool more si
    assert change[left].sum() < 0  # leavers stop pooling
    assert (reform["take_home_vnd"] >= base["take_home_vnd"])[left].all()  # nothing is deducted while out


def test_an_opted_out_worker_month_pays_and_receives_nothing_but_still_earns():
    # Two riders, 10,000,000 VND of rides each in each of two months; a reform doubles ride si.
    rows = [(w, month, GRAB, 0, 0, 10_000_000) for month in (202601, 202602) for w in (0, 1)]
    activity = pd.DataFrame(rows, columns=["worker", "month", "platform", "kind", "tier", "gross_vnd"]).assign(events=1)
    activity = activity.astype({"worker": np.int64, "month": np.int32, "platform": np.int16, "kind": np.int8,
                                "tier": np.int8, "gross_vnd": np.int64, "events": np.int32})
    frame = pd.DataFrame({"worker": np.arange(2), "worker_type": "ride",
                          "tier": pd.Categorical(["poor", "poor"], categories=list(DEFAULT_TIERS))})
    population = Population(frame, activity)
    baseline = load_pack("vn-pilot")
    arms = {"baseline": baseline, "si-2pct": scenario(**{"si-2pct": 20_000}).arms()["si-2pct"]}
    keep = (500_000_000, 1_000_000_000, 1_000_000_000)  # half the riders keep on
    participation = Participation((202601, 202602), np.array([100, 900_000_000]), np.array([0, 0], np.int8),
                                  ((None, None), (keep, keep)), 0.1)
    results = engine.run(population, arms, Budget(), participation=participation)
    stays, leaves = results["si-2pct"].worker_totals.iloc[0], results["si-2pct"].worker_totals.iloc[1]

    assert (stays["si_worker"], stays["ui_worker"], stays["oa_platform"]) == (400_000, 100_000, 100_000)
    assert (stays["subsidy_si"], stays["subsidy_ui"]) == (120_000, 30_000)  # 30 % of 200,000 and 50,000, × 2
    assert all(leaves[column] == 0 for column in (*SHARE_COLUMNS, "subsidy_vnd", "pension_months"))
    assert (leaves["gross_vnd"], leaves["take_home_vnd"], leaves["active_months"]) == (20_000_000, 20_000_000, 2)
    revenue = results["si-2pct"].revenue[list(SHARE_COLUMNS)].sum()
    assert revenue.to_dict() == results["si-2pct"].worker_totals[list(SHARE_COLUMNS)].sum().to_dict()


def test_a_replay_whose_worker_opts_out_drops_the_books_shares_of_that_worker_month_and_nothing_else():
    # Two riders as a ledger replay: each row carries the shares the books hold (vn-pilot: si 1 %, oa.platform
    # 0.5 %, ui 0.5 %), plus 3 VND of per-event rounding on si; the reform doubles ride si; rider 1 opts out.
    rows = [(w, 202601, GRAB, 0, 0, gross) for w, gross in ((0, 4_000_000), (1, 6_000_000))]
    activity = pd.DataFrame(rows, columns=["worker", "month", "platform", "kind", "tier", "gross_vnd"]).assign(events=2)
    for column in SHARE_COLUMNS:
        rate = {"si_worker": 10_000, "oa_platform": 5_000, "ui_worker": 5_000}.get(column, 0)
        activity[f"rec_{column}"] = activity["gross_vnd"] * rate // 1_000_000 + (3 if column == "si_worker" else 0)
    activity = activity.astype({"worker": np.int64, "month": np.int32, "platform": np.int16, "kind": np.int8,
                                "tier": np.int8, "events": np.int32})
    frame = pd.DataFrame({"worker": np.arange(2), "worker_type": "ride",
                          "tier": pd.Categorical(["other", "other"], categories=list(DEFAULT_TIERS))})
    population = Population(frame, activity)
    arms = {"baseline": load_pack("vn-pilot"), "si-2pct": scenario(**{"si-2pct": 20_000}).arms()["si-2pct"]}
    participation = Participation((202601,), np.array([10, 999_999_999]), np.array([0, 0], np.int8),
                                  ((None,), ((500_000_000, 10**9, 10**9),)), 0.1)
    result = engine.run(population, arms, Budget(), participation=participation)["si-2pct"]
    totals = result.worker_totals

    assert totals["si_worker"].tolist() == [80_003, 0]  # priced at 2 % + the books' 3 VND of rounding
    assert totals["oa_platform"].tolist() == [20_000, 0] and totals["ui_worker"].tolist() == [20_000, 0]
    assert result.revenue[list(SHARE_COLUMNS)].sum().to_dict() == totals[list(SHARE_COLUMNS)].sum().to_dict()


@pytest.mark.parametrize("chunk_workers", [1, 97])
def test_opt_outs_give_the_same_bits_on_threads_forked_processes_and_any_chunking(chunk_workers):
    population = synthetic(800, (202601, 202602, 202603), 31)
    parsed = scenario({"participation_elasticity": 0.5}, workers=800, months=3, **{"si-2pct": 20_000})
    packs = parsed.arms()
    participation = behaviour.plan(population.workers, population.months, list(packs.values()), parsed.behaviour,
                                   parsed.seed)
    budget = Budget("cap", 1_000_000, "horizon")
    reference = engine.run(population, packs, budget, participation=participation, chunk_workers=800, threads=1)
    chunked = engine.run(population, packs, budget, participation=participation, chunk_workers=chunk_workers,
                         threads=2)
    forked = engine.run(population, packs, budget, participation=participation, chunk_workers=chunk_workers,
                        processes=2)

    for arm in reference:
        for table in ("worker_totals", "by_month_tier", "revenue", "budget"):
            pd.testing.assert_frame_equal(getattr(chunked[arm], table), getattr(reference[arm], table))
            pd.testing.assert_frame_equal(getattr(forked[arm], table), getattr(reference[arm], table))
    assert int((~participation.keeps(participation.keep_ppb[1][0], np.arange(800))).sum()) == 71  # riders out
    revenue = reference["si-2pct"].revenue[list(SHARE_COLUMNS)].sum()  # rows of dropped worker-months taken out
    assert revenue.to_dict() == reference["si-2pct"].worker_totals[list(SHARE_COLUMNS)].sum().to_dict()


def test_behaviour_without_an_elasticity_takes_the_cited_default_and_a_bad_one_is_named():
    assert scenario({}).behaviour.participation_elasticity == DEFAULT_ELASTICITY == 0.1
    assert scenario().behaviour.static

    with pytest.raises(ScenarioError) as caught:
        scenario({"participation_elasticity": 6, "price": 1})

    assert [issue.key for issue in caught.value.issues] == ["behaviour.price", "behaviour.participation_elasticity"]

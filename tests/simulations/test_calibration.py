"""The synthetic population against published national totals: weights, tiers, workforce, contribution base."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulations import calibration
from simulations import population as populations
from simulations.population import Churn, ContributionBase, synthetic
from simulations.run import build_population, run_scenario, synthetic_cache_folder
from simulations.scenario import ScenarioError, month_range, parse_scenario

MONTHS = month_range(202601, 3)
DECREE_159_TIERS = ("poor", "near_poor", "ethnic_minority", "other")


@pytest.fixture(scope="module")
def calibrated():
    return synthetic(20_000, MONTHS, 21, tiers=DECREE_159_TIERS)


def weighted_share(frame: pd.DataFrame, column: str, value) -> float:
    weights = frame["weight"].to_numpy()
    values = frame[column].astype(str).to_numpy() if frame[column].dtype != bool else frame[column].to_numpy()
    return float(weights[values == value].sum() / weights.sum())


def test_the_weighted_population_is_within_each_targets_tolerance_of_the_shipped_targets_file(calibrated):
    targets = calibration.load_targets()
    workers = calibrated.workers
    report = calibrated.source["calibration"]

    assert report["converged"] and report["unreachable"] == []
    assert report["targets"]["sha256"] == targets.sha256
    for margin in targets.margins:  # recomputed from the frame, not read from the report
        for category, share in margin.shares.items():
            found = weighted_share(workers, margin.name, category == "yes" if margin.name == "ethnic_minority"
                                   else category)
            assert abs(found - share) <= share * margin.tolerance_ppm / 1_000_000, (margin.name, category)
    (mean,) = [m for m in targets.means if m.calibrate]
    group = calibration.group_mask({c: workers[c] for c in mean.where}, mean.where)
    earnings = np.average(workers["earnings_vnd"][group], weights=workers["weight"][group])
    assert abs(earnings - 7_000_000) <= 7_000_000 * mean.tolerance_ppm / 1_000_000
    assert all(abs(row["error_ppm"]) <= row["tolerance_ppm"] for row in report["rows"] if row["calibrated"])
    assert [row["category"] for row in report["rows"] if not row["calibrated"]] == ["earnings_all_workers"]


def test_the_people_at_work_in_the_first_month_weigh_7_5_million_workers(calibrated):
    first = np.unique(calibrated.activity.loc[calibrated.activity["month"] == 202601, "worker"].to_numpy())
    present = calibrated.source["workforce"][0]  # present (some of them do not work that month)

    assert len(first) < present
    weights = calibrated.workers["weight"].to_numpy()
    total = calibrated.source["calibration"]["rows"][0]
    assert (total["figure"], round(total["after"])) == ("workers", 7_500_000)
    assert 7_500_000 * 0.99 < weights.sum() * present / len(weights) < 7_500_000 * 1.01


def test_a_worker_in_the_bottom_earnings_decile_is_far_more_often_poor_than_one_in_the_top(calibrated):
    workers = calibrated.workers
    decile = pd.qcut(workers["earnings_vnd"].rank(method="first"), 10, labels=False)
    poor_or_near = workers["household"].isin(["poor", "near_poor"]).groupby(decile).mean()

    assert poor_or_near.iloc[0] == pytest.approx(0.2195) and poor_or_near.iloc[-1] == pytest.approx(0.004)
    assert poor_or_near.iloc[0] > 3 * poor_or_near.mean()  # 5.6 % of workers overall
    assert (poor_or_near.diff().dropna() < 0.005).all()  # falling with earnings, decile after decile


def test_ethnic_minority_workers_exist_and_are_their_own_tier_only_when_a_pack_prices_it(calibrated):
    plain = synthetic(20_000, MONTHS, 21)  # vn-pilot knows no ethnic-minority tier

    assert int(calibrated.workers["ethnic_minority"].sum()) == int(plain.workers["ethnic_minority"].sum()) == 2_938
    assert calibrated.tiers == DECREE_159_TIERS and plain.tiers == ("poor", "near_poor", "other")
    in_tier = calibrated.workers["tier"] == "ethnic_minority"
    assert in_tier.sum() == (calibrated.workers["ethnic_minority"] & (calibrated.workers["household"] == "other")).sum()
    assert calibrated.activity[["worker", "events", "gross_vnd"]].equals(plain.activity[["worker", "events",
                                                                                          "gross_vnd"]])


def test_the_decree_159_ethnic_minority_tier_costs_the_state_something():
    run = run_scenario(parse_scenario({
        "name": "d159", "baseline": "vn-decree-159", "start": "2026-01", "horizon_months": 2, "seed": 4,
        "population": {"synthetic": {"workers": 4_000}}}))
    by_tier = run.arms["baseline"].by_month_tier.groupby("tier")["subsidy_vnd"].sum()

    assert run.population.tiers == DECREE_159_TIERS
    assert by_tier["ethnic_minority"] > 0 and by_tier["ethnic_minority"] > by_tier["poor"]


def test_with_exits_replaced_the_workforce_present_never_falls_more_than_noise_over_three_years():
    population = synthetic(10_000, month_range(202601, 36), 5, targets=None)
    workforce = population.source["workforce"]

    assert workforce[0] == 8_440 and min(workforce) >= workforce[0] * 0.98
    assert abs(workforce[-1] - workforce[0]) <= 0.02 * workforce[0]
    assert population.source["churn"] == {"exit_ppm": 20_000, "growth_ppm": 0}


def test_a_workforce_growing_10_percent_a_year_is_10_percent_larger_after_twelve_months():
    population = synthetic(10_000, month_range(202601, 13), 5, targets=None, churn=Churn(growth_ppm=100_000))
    workforce = population.source["workforce"]

    assert workforce[12] / workforce[0] == pytest.approx(1.10, abs=0.01)
    assert "growth_shortfall_months" not in population.source


def test_sellers_pay_a_quarter_of_si_on_a_margin_base_and_half_of_it_on_the_order_value():
    months = (202601,)
    margin = synthetic(5_000, months, 9, targets=None)
    order_value = synthetic(5_000, months, 9, targets=None, base=ContributionBase(order=("amount", 1_000_000)))

    def seller_share(population) -> float:
        activity = population.activity
        si = activity["gross_vnd"] * np.where(activity["kind"] == 2, 6_000, 10_000)  # vn-pilot si.worker
        return float(si[activity["kind"] == 2].sum() / si.sum())

    assert round(seller_share(margin), 2) == 0.15 and round(seller_share(order_value), 2) == 0.47
    assert margin.activity["events"].equals(order_value.activity["events"])  # the same trips and orders
    assert margin.source["contribution_base"]["order"] == {"basis": "margin_share", "ppm": 200_000}


def test_the_same_seed_gives_the_same_hash_and_weights_and_another_seed_another():
    one, again, other = (synthetic(3_000, MONTHS, seed) for seed in (2, 2, 3))

    assert one.content_hash() == again.content_hash() != other.content_hash()
    assert np.array_equal(one.workers["weight"].to_numpy(), again.workers["weight"].to_numpy())


def test_a_cached_population_is_mapped_from_disk_with_the_same_frames_and_hash(tmp_path):
    scenario = parse_scenario({"name": "c", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2,
                               "seed": 6, "population": {"synthetic": {"workers": 2_000}}})
    built = build_population(scenario, cache=tmp_path)
    mapped = build_population(scenario, cache=tmp_path)

    assert (built.origin, mapped.origin) == ("built", "mapped")
    assert mapped.content_hash() == built.content_hash()
    pd.testing.assert_frame_equal(mapped.activity, built.activity)
    pd.testing.assert_frame_equal(mapped.workers, built.workers)
    assert isinstance(mapped.activity["gross_vnd"].to_numpy().base, np.memmap) or \
        not mapped.activity["gross_vnd"].to_numpy().flags.writeable  # a mapped, read-only column
    assert run_scenario(scenario, population=mapped).record["results_sha256"] == \
        run_scenario(scenario, population=built).record["results_sha256"] == \
        run_scenario(scenario, population=mapped, processes=2, chunk_workers=500).record["results_sha256"]
    # where the benchmark finds the command's population
    folder = synthetic_cache_folder(scenario, tmp_path)
    assert populations.load_mapped(folder).content_hash() == built.content_hash()


def test_a_cached_population_whose_file_was_edited_is_refused(tmp_path):
    population = synthetic(300, (202601,), 4)
    populations.save_mapped(population, tmp_path / "p")
    gross = np.load(tmp_path / "p" / "activity" / "gross_vnd.npy")
    gross[0] += 1_000
    np.save(tmp_path / "p" / "activity" / "gross_vnd.npy", gross)

    with pytest.raises(populations.PopulationError, match="does not match its recorded hash"):
        populations.load_mapped(tmp_path / "p")


def test_a_small_population_reports_the_categories_it_cannot_weight_instead_of_failing():
    population = synthetic(60, (202601,), 11)
    report = population.source["calibration"]

    assert report["unreachable"] == ["share region central_highlands", "share household poor"]
    poor = [row for row in report["rows"] if row["category"] == "poor"][0]
    assert poor["after"] == 0 and poor["error_ppm"] == -1_000_000


def test_scenario_keys_of_growth_base_and_targets_are_checked_and_named():
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"name": "g", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2, "seed": 1,
                        "population": {"synthetic": {
                            "workers": 10, "growth_ppm": 50_000, "churn": {"entry_ppm": 10_000},
                            "contribution_base": {"order": {"basis": "profit"}, "taxi": "amount"},
                            "targets": 7}}})

    assert [issue.key for issue in caught.value.issues] == [
        "population.synthetic.growth_ppm", "population.synthetic.contribution_base.order.basis",
        "population.synthetic.contribution_base.taxi", "population.synthetic.targets"]


def test_a_targets_file_without_sources_is_refused_naming_each_key(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text("workers: {value: 100, status: estimate}\n"
                    "shares: {worker_type: {values: {ride: 1}, status: rumour, source: x, tolerance_ppm: 10}}\n")

    with pytest.raises(calibration.TargetsError) as caught:
        calibration.load_targets(path)

    assert "workers.source: every figure names its source" in str(caught.value)
    assert "shares.worker_type.status: must be one of published, proxy, estimate, assumption" in str(caught.value)

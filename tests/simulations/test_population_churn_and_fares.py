"""Synthetic churn (seeded monthly exit and entry) and the real-trip fare profile."""
from __future__ import annotations

import numpy as np
import pytest

from simulations import fares
from simulations.population import Churn, synthetic
from simulations.run import build_population, run_scenario
from simulations.scenario import ScenarioError, month_range, parse_scenario

MONTHS = month_range(202601, 4)


def present_by_month(population) -> list[int]:
    activity = population.activity
    return [int(activity.loc[activity["month"] == month, "worker"].nunique()) for month in MONTHS]


def test_when_every_worker_leaves_after_a_month_only_the_first_month_has_activity():
    population = synthetic(400, MONTHS, 3, churn=Churn(start_ppm=1_000_000, exit_ppm=1_000_000, entry_ppm=0))

    assert population.months == (202601,)


def test_when_everyone_leaves_and_comes_back_every_month_workers_work_only_in_odd_months():
    population = synthetic(400, MONTHS, 3, churn=Churn(start_ppm=1_000_000, exit_ppm=1_000_000,
                                                       entry_ppm=1_000_000))

    assert population.months == (202601, 202603)
    assert present_by_month(population) == [319, 0, 323, 0]  # of 400 present: participation 0.75–0.95


def test_with_nobody_present_and_nobody_entering_there_is_no_activity():
    population = synthetic(50, MONTHS, 3, churn=Churn(start_ppm=0, exit_ppm=0, entry_ppm=0))

    assert len(population.activity) == 0


def test_churn_is_drawn_from_the_seed_and_recorded_with_the_population():
    churn = Churn(start_ppm=500_000, exit_ppm=100_000, entry_ppm=50_000)
    one, again = synthetic(2_000, MONTHS, 11, churn=churn), synthetic(2_000, MONTHS, 11, churn=churn)
    other = synthetic(2_000, MONTHS, 12, churn=churn)

    assert one.content_hash() == again.content_hash() != other.content_hash()
    assert one.source["churn"] == {"start_ppm": 500_000, "exit_ppm": 100_000, "entry_ppm": 50_000}
    assert present_by_month(one) == [807, 774, 749, 716]  # seed 11: ~50 % start, 10 % leave, 5 % enter


def test_a_churn_probability_above_one_million_ppm_is_named_by_its_key():
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"name": "c", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2, "seed": 1,
                        "population": {"synthetic": {"workers": 10, "churn": {"exit_ppm": 1_000_001, "x": 1}}}})

    assert [issue.key for issue in caught.value.issues] == ["population.synthetic.churn.x",
                                                           "population.synthetic.churn.exit_ppm"]


@pytest.fixture
def chicago(shared_dir):
    path = shared_dir / "data" / "real" / "chicago_taxi_trips_tfx.csv"
    if not path.exists():
        pytest.skip(f"SKIPPING: the real trips file {path} is absent")
    return path


def test_the_chicago_fares_at_8000_vnd_a_dollar_have_a_median_of_62800_and_peak_at_7_pm(chicago):
    profile = fares.chicago_taxi(chicago)

    assert (profile.trips, profile.zero_fares) == (14_975, 27)  # the 27 zero fares are left out
    assert profile.median_fare_vnd == 62_800  # USD 7.85 × 8,000
    assert (int(profile.fares_vnd[0]), int(profile.fares_vnd[-1])) == (80, 5_600_560)  # USD 0.01 and 700.07
    assert (profile.peak_hour, profile.trips_by_hour[profile.peak_hour]) == (19, 1_008)
    assert sum(profile.trips_by_hour) == 14_975


def test_a_population_with_the_chicago_profile_prices_car_rides_from_real_fares_and_nothing_else(chicago):
    document = {"name": "chicago", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2, "seed": 5,
                "population": {"synthetic": {"workers": 3_000, "fare_profile": str(chicago)}}}
    with_profile = build_population(parse_scenario(document))
    plain = synthetic(3_000, (202601, 202602), 5)
    car = (plain.workers["worker_type"] == "ride").to_numpy()  # rides: bike and car
    changed = with_profile.activity["gross_vnd"].to_numpy() != plain.activity["gross_vnd"].to_numpy()

    assert (with_profile.activity[["worker", "month", "platform", "kind", "events"]]
            .equals(plain.activity[["worker", "month", "platform", "kind", "events"]]))  # same people, same trips
    assert changed.any() and car[with_profile.activity["worker"].to_numpy()[changed]].all()
    per_trip = with_profile.activity["gross_vnd"].to_numpy()[changed].sum() / \
        with_profile.activity["events"].to_numpy()[changed].sum()
    assert 90_000 < per_trip < 99_000  # the real fares' mean, 94,315 VND
    record = run_scenario(parse_scenario(document), population=with_profile).record
    assert record["population"]["source"]["fare_profile"]["median_fare_vnd"] == 62_800
    assert record["population"]["peak_events_per_second"] == pytest.approx(
        max(with_profile.activity.groupby("month")["events"].sum() / np.array([31, 28])) * 1_008 / 14_975 / 3_600,
        abs=0.001)


def test_a_trips_file_with_a_bad_fare_is_refused_naming_its_line_but_not_its_content(tmp_path):
    path = tmp_path / "trips.csv"
    path.write_text("fare,trip_start_hour\n7.85,19\nsecret-value,3\n")

    with pytest.raises(fares.FareProfileError) as caught:
        fares.chicago_taxi(path)

    assert str(caught.value).endswith("trips.csv:3: fare or trip_start_hour is not a number")
    assert "secret" not in str(caught.value)

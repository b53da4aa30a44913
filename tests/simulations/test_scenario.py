"""Scenario files: validated in full before running, every error naming its key."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rules import load_pack
from simulations.scenario import (
    ScenarioError,
    apply_reform,
    load_scenario,
    parse_scenario,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "simulations" / "scenarios" / "poor-tier-50pct.yaml"


def valid(**overrides) -> dict:
    document = {"name": "t", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 12, "seed": 1,
                "population": {"synthetic": {"workers": 100}},
                "reforms": {"poor-50": {"changes": {"tiers.poor": {date(2026, 7, 1): 500_000}}}}}
    document.update(overrides)
    return document


def keys_of(document: dict) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(document)
    return [issue.key for issue in caught.value.issues]


def test_the_shipped_example_scenario_is_valid_and_has_two_reforms_against_vn_pilot():
    scenario = load_scenario(EXAMPLE)

    assert scenario.baseline == "vn-pilot" and [r.name for r in scenario.reforms] == ["poor-50", "poor-50-si-1.2pct"]
    assert scenario.months[0] == 202601 and scenario.months[-1] == 202712 and len(scenario.months) == 24


def test_every_problem_is_reported_at_once_each_naming_its_key():
    document = valid(horizon_months=0, seed=-1, budget={"strategy": "cap"}, colour="red",
                     reforms={"poor-50": {"changes": {"tiers.poor": {"2026-07-15": 500_000},
                                                      "rates.taxi.si.worker": 1,
                                                      "rates.ride.si.worker": {"2027-01-01": 2_000_000},
                                                      "caps.si": -1}}})

    assert sorted(keys_of(document)) == sorted([
        "colour", "horizon_months", "seed", "budget.limit_vnd",
        "reforms.poor-50.changes.tiers.poor.2026-07-15", "reforms.poor-50.changes.rates.taxi.si.worker",
        "reforms.poor-50.changes.rates.ride.si.worker.2027-01-01", "reforms.poor-50.changes.caps.si"])


def test_an_unknown_baseline_pack_and_a_start_before_it_are_errors_naming_the_key():
    assert keys_of(valid(baseline="vn-nowhere")) == ["baseline"]
    assert keys_of(valid(start="2025-12")) == ["start"]
    assert keys_of(valid(start="2026-13")) == ["start"]


def test_a_reform_that_subsidises_oa_without_a_cap_is_refused_naming_its_changes():
    document = valid(reforms={"oa-too": {"changes": {"subsidised_schemes": ["si", "ui", "oa"]}}})

    assert keys_of(document) == ["reforms.oa-too.changes"]


def test_a_population_needs_exactly_one_known_source():
    assert keys_of(valid(population={"synthetic": {"workers": 0}})) == ["population.synthetic.workers"]
    assert keys_of(valid(population={"census": "x"})) == ["population.census"]
    assert keys_of(valid(population={"from_db": "not a url"})) == ["population.from_db"]


def test_a_reform_is_a_new_pack_whose_versions_change_only_the_patched_parameter_from_its_date():
    baseline = load_pack("vn-pilot")
    scenario = parse_scenario(valid())
    pack = apply_reform(baseline, scenario.reforms[0])

    before, after = pack.versions
    assert [v.version_id for v in pack.versions] == ["vn-pilot+poor-50@2026-01-01", "vn-pilot+poor-50@2026-07-01"]
    assert before.tier_rate_ppm == baseline.versions[0].tier_rate_ppm
    assert dict(after.tier_rate_ppm) == {"poor": 500_000, "near_poor": 250_000, "other": 100_000}
    assert after.rates_ppm == baseline.versions[0].rates_ppm
    assert baseline.versions[0].tier_rate_ppm["poor"] == 300_000  # the shipped pack is untouched


def test_a_bare_value_applies_from_the_baselines_first_day_and_null_lifts_the_month_limit():
    scenario = parse_scenario(valid(baseline="vn-decree-159", start="2026-01",
                                    reforms={"no-limit": {"changes": {"max_subsidised_months": None,
                                                                      "caps.si": 440_000}}}))
    pack = scenario.arms()["no-limit"]

    assert [v.effective_from for v in pack.versions] == [date(2025, 7, 1)]
    assert pack.versions[0].max_subsidised_months is None
    assert pack.versions[0].subsidy_base_cap_vnd["si"] == 440_000


def test_crediting_is_a_dated_reform_key_taking_pooled_or_per_month_only():
    scenario = parse_scenario(valid(reforms={"per-month": {"changes": {"crediting": {"2026-07-01": "per_month"}}}}))
    pack = scenario.arms()["per-month"]

    assert [(v.effective_from, v.crediting) for v in pack.versions] == \
        [(date(2026, 1, 1), "pooled"), (date(2026, 7, 1), "per_month")]
    assert keys_of(valid(reforms={"r": {"changes": {"crediting": "yearly"}}})) == ["reforms.r.changes.crediting"]


def test_the_shipped_pooled_vs_per_month_scenario_changes_only_how_months_are_credited():
    scenario = load_scenario(EXAMPLE.with_name("pooled-vs-per-month.yaml"))
    arms = scenario.arms()

    assert list(arms) == ["baseline", "per-month", "pooled-floor-220k"]
    assert {v.crediting for v in arms["per-month"].versions} == {"per_month"}
    for pack in arms.values():
        assert [v.rates_ppm for v in pack.versions][0] == arms["baseline"].versions[0].rates_ppm
    assert arms["pooled-floor-220k"].version_on(date(2027, 1, 1)).pension_floor_contribution_vnd == 220_000

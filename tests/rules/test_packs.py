"""Rules packs as data (RULES.md §4, §8–§9): the shipped numbers, bad files refused, integer rounding."""
from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import yaml

from rules import (NoVersionInForce, PackError, event_shares_vnd, load_pack, refund_reversals_vnd,
                   round_half_up, share_vnd, shares_array_vnd, shipped_packs, subsidy_vnd)

PILOT_RATES = {  # RULES.md §8, ppm
    "ride": {"si": (10_000, 0), "oa": (0, 5_000), "ui": (5_000, 0)},
    "delivery": {"si": (10_000, 0), "oa": (0, 5_000), "ui": (5_000, 0)},
    "order": {"si": (6_000, 0), "oa": (0, 2_000), "ui": (2_000, 0)},
}
FLAT_RATES = {kind: {"si": (5_000, 0), "oa": (0, 2_500), "ui": (2_500, 0)} for kind in ("ride", "delivery", "order")}


def rates_of(version) -> dict:
    return {kind: {scheme: (version.rates_ppm.get((kind, scheme, "worker"), 0),
                            version.rates_ppm.get((kind, scheme, "platform"), 0))
                   for scheme in ("si", "oa", "ui")}
            for kind in ("ride", "delivery", "order")}


# -- the shipped packs ---------------------------------------------------------------------------

def test_the_three_packs_of_rules_sections_8_and_9_are_shipped():
    assert {"vn-pilot", "vn-decree-159", "vn-pilot-flat-1pct"} <= set(shipped_packs())


def test_vn_pilot_has_the_rates_tiers_and_caps_of_section_8():
    pack = load_pack("vn-pilot")
    version = pack.version_on(date(2026, 1, 1))
    assert pack.name == "vn-pilot"
    assert pack.first_effective_from == date(2026, 1, 1)
    assert version.source.strip()
    assert rates_of(version) == PILOT_RATES
    assert dict(version.tier_rate_ppm) == {"poor": 300_000, "near_poor": 250_000, "other": 100_000}
    assert set(version.subsidised_schemes) == {"si", "ui"}
    assert dict(version.subsidy_base_cap_vnd) == {"si": 330_000, "ui": 53_100}
    assert version.max_subsidised_months is None


def test_vn_pilot_totals_are_2_percent_for_rides_and_deliveries_and_1_percent_for_orders():
    version = load_pack("vn-pilot").version_on(date(2026, 6, 1))
    totals = {kind: sum(version.share_row_ppm(kind)) for kind in ("ride", "delivery", "order")}
    assert totals == {"ride": 20_000, "delivery": 20_000, "order": 10_000}


def test_vn_decree_159_has_the_decree_tiers_si_only_and_120_months():
    pack = load_pack("vn-decree-159")
    version = pack.version_on(date(2025, 7, 1))
    assert pack.first_effective_from == date(2025, 7, 1)
    assert rates_of(version) == PILOT_RATES  # "the same contribution rates"
    assert dict(version.tier_rate_ppm) == {"poor": 500_000, "near_poor": 400_000, "ethnic_minority": 300_000,
                                           "other": 200_000}
    assert tuple(version.subsidised_schemes) == ("si",)
    assert version.subsidy_base_cap_vnd["si"] == 330_000
    assert version.max_subsidised_months == 120


def test_vn_pilot_flat_1pct_charges_1_percent_on_every_kind_with_vn_pilot_tiers():
    version = load_pack("vn-pilot-flat-1pct").version_on(date(2026, 1, 1))
    assert rates_of(version) == FLAT_RATES
    assert {kind: sum(version.share_row_ppm(kind)) for kind in ("ride", "delivery", "order")} == {
        "ride": 10_000, "delivery": 10_000, "order": 10_000}
    pilot = load_pack("vn-pilot").version_on(date(2026, 1, 1))
    assert dict(version.tier_rate_ppm) == dict(pilot.tier_rate_ppm)
    assert set(version.subsidised_schemes) == set(pilot.subsidised_schemes)
    assert dict(version.subsidy_base_cap_vnd) == dict(pilot.subsidy_base_cap_vnd)


def test_the_rules_worked_example_shares_come_out_of_the_default_pack():
    version = load_pack("vn-pilot").version_on(date(2026, 2, 1))
    # SHARE_KEYS order: si.worker, si.platform, oa.worker, oa.platform, ui.worker, ui.platform
    # 87,500 ride: 875; 437.5 → 438; 437.5 → 438
    assert event_shares_vnd("ride", 87_500, version) == (875, 0, 0, 438, 438, 0)
    # 1,249,000 order: 7,494; 2,498; 2,498
    assert event_shares_vnd("order", 1_249_000, version) == (7_494, 0, 0, 2_498, 2_498, 0)
    # §8: poor with 400,000 withheld → 330,000 × 30 % = 99,000; other with 12,345 → 1,234.5 → 1,235
    assert subsidy_vnd(400_000, "si", "poor", version) == 99_000
    assert subsidy_vnd(12_345, "si", "other", version) == 1_235
    assert subsidy_vnd(-5_000, "si", "poor", version) == 0
    assert subsidy_vnd(1_000, "oa", "poor", version) == 0  # oa is not subsidised


def test_the_worked_example_refunds_reverse_2400_then_5094_of_si():
    # s = 7,494, o.amount = 1,249,000: C' = 400,000 → round(2,400.0…) = 2,400; C' = 1,249,000 → 7,494 − 2,400
    first = refund_reversals_vnd((7_494, 0, 0, 2_498, 2_498, 0), 1_249_000, 0, (0,) * 6, 400_000)
    assert first == (2_400, 0, 0, 800, 800, 0)
    second = refund_reversals_vnd((7_494, 0, 0, 2_498, 2_498, 0), 1_249_000, 400_000, first, 849_000)
    assert second == (5_094, 0, 0, 1_698, 1_698, 0)


# -- dates -----------------------------------------------------------------------------------------

def test_the_version_in_force_starts_on_its_effective_from_day():
    pack = load_pack("vn-pilot")
    assert pack.version_on(date(2026, 1, 1)).version_id == "vn-pilot@2026-01-01"
    assert pack.version_on(date(2099, 12, 31)).version_id == "vn-pilot@2026-01-01"


@pytest.mark.parametrize("name, day, first", [("vn-pilot", date(2025, 12, 31), "2026-01-01"),
                                              ("vn-decree-159", date(2025, 6, 30), "2025-07-01"),
                                              ("vn-pilot-flat-1pct", date(2020, 1, 1), "2026-01-01")])
def test_a_day_before_the_first_version_has_no_rules_and_says_so(name, day, first):
    with pytest.raises(NoVersionInForce) as caught:
        load_pack(name).version_on(day)
    message = str(caught.value)
    assert name in message and day.isoformat() in message and first in message


def test_a_later_version_takes_over_from_its_effective_from(tmp_path):
    second = {**valid_version(), "effective_from": "2026-07-01", "tier_rate_ppm": {"poor": 400_000, "other": 150_000}}
    pack = load_pack(write_pack(tmp_path, valid_version(), second))
    assert pack.version_on(date(2026, 6, 30)).tier_rate_ppm["other"] == 100_000
    assert pack.version_on(date(2026, 7, 1)).tier_rate_ppm["other"] == 150_000


# -- bad pack files --------------------------------------------------------------------------------

def valid_version() -> dict:
    return {
        "effective_from": "2026-01-01",
        "source": "made up for a test",
        "rates_ppm": {kind: {scheme: {"worker": worker, "platform": platform}
                             for scheme, (worker, platform) in by_scheme.items()}
                      for kind, by_scheme in PILOT_RATES.items()},
        "tier_rate_ppm": {"poor": 300_000, "near_poor": 250_000, "other": 100_000},
        "subsidised_schemes": ["si", "ui"],
        "subsidy_base_cap_vnd": {"si": 330_000, "ui": 53_100},
    }


def write_pack(tmp_path: Path, *versions: dict, name: str = "test-pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all([{"pack": "test-pack"}, *versions], sort_keys=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, *versions: dict) -> PackError:
    path = write_pack(tmp_path, *versions)
    with pytest.raises(PackError) as caught:
        load_pack(path)
    error = caught.value
    assert Path(error.file).name == path.name          # names the file…
    assert str(error).startswith(str(error.file))      # …first in the message
    assert error.field in str(error) and error.reason in str(error)
    return error


def test_a_valid_test_pack_loads(tmp_path):
    pack = load_pack(write_pack(tmp_path, valid_version()))
    assert pack.name == "test-pack"
    assert rates_of(pack.versions[0]) == PILOT_RATES


def test_an_unknown_kind_is_refused(tmp_path):
    version = valid_version()
    version["rates_ppm"]["taxi"] = version["rates_ppm"]["ride"]
    error = refused(tmp_path, version)
    assert error.field.endswith("rates_ppm.taxi")
    assert "unknown kind" in error.reason


def test_a_kind_without_rates_is_refused(tmp_path):
    version = valid_version()
    del version["rates_ppm"]["order"]
    error = refused(tmp_path, version)
    assert error.field.endswith("rates_ppm.order")
    assert "required" in error.reason


@pytest.mark.parametrize("rate, reason", [(10_000.0, "integer"), (10_000.5, "integer"), (True, "integer"),
                                          ("10000", "integer"), (-1, "between"), (1_000_001, "between")])
def test_a_rate_that_is_not_an_integer_ppm_in_range_is_refused(tmp_path, rate, reason):
    version = valid_version()
    version["rates_ppm"]["ride"]["si"]["worker"] = rate
    error = refused(tmp_path, version)
    assert error.field.endswith("rates_ppm.ride.si.worker")
    assert reason in error.reason


def test_a_rate_of_exactly_1000000_ppm_is_the_largest_allowed(tmp_path):
    version = valid_version()
    version["rates_ppm"]["ride"]["si"]["worker"] = 1_000_000
    pack = load_pack(write_pack(tmp_path, version))
    assert pack.versions[0].rates_ppm[("ride", "si", "worker")] == 1_000_000


@pytest.mark.parametrize("rate", [0.25, False, -100_000, 1_000_001])
def test_a_bad_tier_rate_is_refused(tmp_path, rate):
    version = valid_version()
    version["tier_rate_ppm"]["poor"] = rate
    error = refused(tmp_path, version)
    assert error.field.endswith("tier_rate_ppm.poor")


def test_a_pack_without_the_other_tier_is_refused(tmp_path):
    version = valid_version()
    del version["tier_rate_ppm"]["other"]
    error = refused(tmp_path, version)
    assert error.field.endswith("tier_rate_ppm.other")
    assert "required" in error.reason


def test_a_subsidised_scheme_without_a_cap_is_refused(tmp_path):
    version = valid_version()
    del version["subsidy_base_cap_vnd"]["ui"]
    error = refused(tmp_path, version)
    assert error.field.endswith("subsidy_base_cap_vnd.ui")
    assert "subsidised" in error.reason


def test_versions_out_of_order_are_refused(tmp_path):
    later = {**valid_version(), "effective_from": "2026-07-01"}
    error = refused(tmp_path, later, valid_version())
    assert error.field == "effective_from"
    assert "order" in error.reason


def test_two_versions_on_the_same_day_are_refused(tmp_path):
    error = refused(tmp_path, valid_version(), copy.deepcopy(valid_version()))
    assert error.field == "effective_from"


@pytest.mark.parametrize("field", ["source", "rates_ppm", "tier_rate_ppm", "subsidised_schemes",
                                   "subsidy_base_cap_vnd", "effective_from"])
def test_a_version_missing_a_required_field_is_refused(tmp_path, field):
    version = valid_version()
    del version[field]
    error = refused(tmp_path, version)
    assert error.field.endswith(field)
    assert "required" in error.reason


def test_an_unknown_version_field_is_refused_not_ignored(tmp_path):
    error = refused(tmp_path, {**valid_version(), "tier_rates": {"other": 1}})
    assert error.field.endswith("tier_rates")


def test_a_bad_effective_from_is_refused(tmp_path):
    error = refused(tmp_path, {**valid_version(), "effective_from": "2026-13-01"})
    assert error.field.endswith("effective_from")


def test_a_pack_that_is_not_yaml_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("pack: x\n---\nrates_ppm: {ride: [\n", encoding="utf-8")
    with pytest.raises(PackError) as caught:
        load_pack(path)
    assert "broken.yaml" in str(caught.value)


def test_an_unknown_pack_name_lists_the_shipped_ones():
    with pytest.raises(PackError) as caught:
        load_pack("vn-no-such-pack")
    assert "vn-pilot" in str(caught.value)


# -- integer rounding --------------------------------------------------------------------------------

@pytest.mark.parametrize("numerator, denominator, expected", [
    (0, 7, 0),            # zero stays zero
    (5, 10, 1),           # x.5 rounds up
    (15, 10, 2),
    (25, 10, 3),          # not banker's rounding
    (14, 10, 1),
    (149_999, 100_000, 1),
    (150_000, 100_000, 2),
    (218_750_000, 1_000_000, 219),  # 875 × 25 %
    (109_500_000, 1_000_000, 110),  # 438 × 25 %
])
def test_round_half_up(numerator, denominator, expected):
    assert round_half_up(numerator, denominator) == expected


def test_round_half_up_refuses_a_negative_numerator_or_a_zero_denominator():
    with pytest.raises(ValueError):
        round_half_up(-1, 10)
    with pytest.raises(ValueError):
        round_half_up(1, 0)


@pytest.mark.parametrize("amount, rate, expected", [
    (0, 10_000, 0),
    (1, 10_000, 0),                   # 0.01
    (49, 10_000, 0),                  # 0.49
    (50, 10_000, 1),                  # 0.5 rounds up
    (87_500, 5_000, 438),             # 437.5
    (87_500, 10_000, 875),
    (1_234_500, 10_000, 12_345),
    (12_345, 0, 0),                   # a zero rate posts nothing
    (10_000_000_000, 1_000_000, 10_000_000_000),  # the largest amount at the largest rate, exact
    (9_999_999_999, 999_999, 9_999_989_999),      # 9,999,989,999.000001 → exact integer arithmetic
])
def test_share_vnd_rounds_half_up_exactly(amount, rate, expected):
    assert share_vnd(amount, rate) == expected
    assert int(shares_array_vnd(np.array([amount]), np.array([rate]))[0]) == expected


def test_the_array_and_scalar_shares_agree_on_every_rounding_edge():
    amounts = [0, 1, 49, 50, 51, 99, 100, 149, 150, 87_500, 1_249_000, 10_000_000_000]
    rates = [0, 1, 2_000, 2_500, 5_000, 6_000, 10_000, 1_000_000]
    grid = shares_array_vnd(np.array(amounts)[:, None], np.array(rates)[None, :])
    assert grid.tolist() == [[share_vnd(a, r) for r in rates] for a in amounts]

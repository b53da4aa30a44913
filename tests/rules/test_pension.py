"""The pension projection (rules/pension.py): an estimate for one worker's own history, in integers."""
from __future__ import annotations

import pytest

from rules.pension import (ASSUMPTIONS, HORIZON_MONTHS, accrual_pace_vnd, income_base_vnd, pension_rate_ppm,
                           project)


def test_a_worker_with_nothing_credited_accruing_110000_a_month_at_the_330000_floor_gets_4_months_a_year():
    projection = project(credited_months=0, pool_vnd=0, pace_vnd=110_000, floor_vnd=330_000, month=202612)
    assert projection.credited_months_per_year == 4
    assert projection.months_to_go == 540  # 180 × 330,000 / 110,000: 45 years
    assert projection.reach_month == "2071-12"
    assert (projection.income_base_vnd, projection.pension_rate_ppm, projection.pension_vnd) == \
        (1_500_000, 450_000, 675_000)  # 45 % of 330,000 / 22 %
    assert projection.estimate is True and projection.assumptions == ASSUMPTIONS


def test_a_pace_of_zero_says_not_at_this_pace_rather_than_a_date():
    projection = project(credited_months=12, pool_vnd=50_000, pace_vnd=0, floor_vnd=330_000, month=202612)
    assert (projection.months_to_go, projection.reach_month, projection.beyond_horizon) == (None, None, False)
    assert projection.credited_months_per_year == 0
    assert projection.pension_vnd == 675_000  # what 180 months would pay, still shown


def test_the_pool_already_held_and_the_months_already_credited_shorten_the_way():
    # 170 credited, 10 to go: 3,300,000 needed, 300,000 in the pool, 3,000,000 at 500,000 a month: 6 months
    projection = project(credited_months=170, pool_vnd=300_000, pace_vnd=500_000, floor_vnd=330_000, month=202701)
    assert (projection.months_to_go, projection.reach_month) == (6, "2027-07")


def test_a_negative_pool_after_a_refund_lengthens_the_way():
    projection = project(credited_months=179, pool_vnd=-30_000, pace_vnd=120_000, floor_vnd=330_000, month=202701)
    assert projection.months_to_go == 3  # 360,000 at 120,000 a month


def test_a_big_earner_cannot_be_credited_faster_than_one_calendar_month_each():
    # 5,000,000 a month would pay 180 floors in 12 months, but §11 credits months from 2026-01 one each
    projection = project(credited_months=0, pool_vnd=0, pace_vnd=5_000_000, floor_vnd=330_000, month=202612,
                         next_month=202601)
    assert projection.credited_months_per_year == 12
    assert projection.reach_month == "2040-12"  # 2026-01 + 179 months


def test_a_worker_with_180_credited_months_has_reached_them():
    projection = project(credited_months=180, pool_vnd=0, pace_vnd=0, floor_vnd=330_000, month=204001)
    assert (projection.reached, projection.months_to_go, projection.reach_month) == (True, 0, None)


def test_a_way_longer_than_50_years_is_beyond_the_horizon_not_a_date():
    projection = project(credited_months=0, pool_vnd=1_094, pace_vnd=1_094, floor_vnd=330_000, month=202602)
    assert (projection.beyond_horizon, projection.months_to_go, projection.reach_month) == (True, None, None)
    assert HORIZON_MONTHS == 600


def test_the_2027_floor_of_484000_is_an_income_base_of_2200000_and_a_pension_of_990000():
    assert income_base_vnd(484_000) == 2_200_000
    assert project(0, 0, 484_000, 484_000, 202701).pension_vnd == 990_000


def test_the_income_base_rounds_half_up_to_the_dong():
    assert income_base_vnd(1) == 5  # 4.545… → 5
    assert income_base_vnd(11) == 50


def test_the_pension_rate_is_45_percent_at_15_years_plus_2_a_year_up_to_75():
    assert [pension_rate_ppm(m) for m in (179, 180, 191, 192, 360, 420)] == \
        [0, 450_000, 450_000, 470_000, 750_000, 750_000]


def test_the_pace_is_the_average_of_the_last_12_months_rounded_half_up_and_never_below_zero():
    assert accrual_pace_vnd([]) == 0
    assert accrual_pace_vnd([1, 2]) == 2  # 1.5 → 2
    assert accrual_pace_vnd([999_999] + [120_000] * 12) == 120_000  # the 13th month back is out
    assert accrual_pace_vnd([-50_000, 10_000]) == 0


def test_a_floor_of_zero_is_refused():
    with pytest.raises(ValueError, match="floor above 0"):
        project(0, 0, 100_000, 0, 202601)

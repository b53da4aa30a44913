"""Properties of the rules arithmetic (RULES.md §4–§6), for every version of every shipped pack.

Each property is stated in the spec's own words and checked with exact fractions
(`Fraction`), not with the integer formulas of `rules/`, so a wrong formula cannot
agree with itself.
"""
from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from math import floor

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rules import (KINDS, SCHEMES, SHARE_KEYS, event_shares_vnd, load_pack, refund_reversals_vnd,
                   shares_matrix_vnd, shipped_packs, subsidy_array_vnd, subsidy_vnd)

PPM = 1_000_000
AMOUNT_MAX_VND = 10_000_000_000
VERSIONS = [version for name in shipped_packs() for version in load_pack(name).versions]

versions = st.sampled_from(VERSIONS)
kinds = st.sampled_from(KINDS)
amounts = st.one_of(st.sampled_from((1, 50, 100, 250, 87_500, 1_249_000, AMOUNT_MAX_VND)),
                    st.integers(1, AMOUNT_MAX_VND))


def half_up(value: Fraction) -> int:
    """The nearest integer, halves going up: what "round_half_up" means for a non-negative value."""
    assert value >= 0
    return floor(value + Fraction(1, 2))


@st.composite
def parts_of(draw, total: int, most: int = 8) -> list[int]:
    """`total` split into 1..`most` positive parts, in random order."""
    count = draw(st.integers(1, min(most, total)))
    cuts = sorted(draw(st.sets(st.integers(1, total - 1), min_size=count - 1, max_size=count - 1))) \
        if count > 1 else []
    bounds = [0, *cuts, total]
    return [high - low for low, high in pairwise(bounds)]


def test_the_properties_cover_every_shipped_pack():
    assert {version.pack for version in VERSIONS} >= {"vn-pilot", "vn-decree-159", "vn-pilot-flat-1pct"}


@given(version=versions, kind=kinds, amount_vnd=amounts)
def test_every_share_is_the_amount_times_its_rate_rounded_half_up(version, kind, amount_vnd):
    shares = event_shares_vnd(kind, amount_vnd, version)
    rates = [version.rates_ppm.get((kind, scheme, party), 0) for scheme, party in SHARE_KEYS]
    assert list(shares) == [half_up(Fraction(amount_vnd * rate, PPM)) for rate in rates]
    assert list(shares) == [(2 * amount_vnd * rate + PPM) // (2 * PPM) for rate in rates]  # RULES.md §4 as written
    assert all(type(share) is int for share in shares)


@given(version=versions, events=st.lists(st.tuples(kinds, amounts), min_size=1, max_size=20))
def test_the_array_form_of_the_shares_gives_the_same_integers_as_the_scalar_form(version, events):
    kind_index = np.array([KINDS.index(kind) for kind, _amount in events])
    amounts_vnd = np.array([amount for _kind, amount in events], dtype=np.int64)
    matrix = shares_matrix_vnd(kind_index, amounts_vnd, version).tolist()
    assert matrix == [list(event_shares_vnd(kind, amount, version)) for kind, amount in events]


@given(version=versions, kind=kinds, amount_vnd=amounts, data=st.data())
def test_a_full_refund_in_k_random_parts_reverses_each_share_exactly(version, kind, amount_vnd, data):
    shares = event_shares_vnd(kind, amount_vnd, version)
    parts = data.draw(parts_of(amount_vnd))
    refunded_vnd, reversed_vnd = 0, [0] * len(shares)
    for part in parts:
        step = refund_reversals_vnd(shares, amount_vnd, refunded_vnd, reversed_vnd, part)
        refunded_vnd += part
        reversed_vnd = [done + now for done, now in zip(reversed_vnd, step)]
        assert all(now >= 0 for now in step)  # a refund never adds to a share
        # RULES.md §5: after each refund, each share's cumulative reversal is round_half_up(s × C′ / amount)
        assert reversed_vnd == [half_up(Fraction(share * refunded_vnd, amount_vnd)) for share in shares]
        assert all(done <= share for done, share in zip(reversed_vnd, shares))  # never more than was booked
    assert refunded_vnd == amount_vnd
    assert reversed_vnd == list(shares)


@given(version=versions, kind=kinds, amount_vnd=amounts, data=st.data())
def test_a_refund_past_the_original_amount_is_refused_by_the_arithmetic(version, kind, amount_vnd, data):
    shares = event_shares_vnd(kind, amount_vnd, version)
    before = data.draw(st.integers(0, amount_vnd))
    excess = data.draw(st.integers(amount_vnd - before + 1, amount_vnd - before + 1_000))
    try:
        refund_reversals_vnd(shares, amount_vnd, before, [0] * len(shares), excess)
    except ValueError:
        return
    raise AssertionError(f"a refund of {excess} after {before} of {amount_vnd} was not refused")


@given(version=versions, scheme=st.sampled_from(SCHEMES), data=st.data(),
       own_vnd=st.one_of(st.integers(-10**9, 10**9), st.sampled_from((0, 1, 875, 438, 53_100, 330_000, 330_001))))
def test_a_subsidy_is_never_more_than_the_cap_times_the_tier_rate(version, scheme, data, own_vnd):
    tier = data.draw(st.sampled_from(sorted(version.tier_rate_ppm)))
    rate_ppm = version.tier_rate_ppm[tier]
    subsidy = subsidy_vnd(own_vnd, scheme, tier, version)
    if scheme not in version.subsidised_schemes:
        assert subsidy == 0
        return
    cap_vnd = version.subsidy_base_cap_vnd[scheme]
    assert 0 <= subsidy <= half_up(Fraction(cap_vnd * rate_ppm, PPM))
    # RULES.md §6 in words: the rate applied to the own contribution, floored at 0 and capped.
    assert subsidy == half_up(Fraction(min(max(0, own_vnd), cap_vnd) * rate_ppm, PPM))
    assert subsidy_array_vnd(np.array([own_vnd]), scheme, np.array([rate_ppm]), version).tolist() == [subsidy]


def test_the_worked_example_subsidies_of_rules_section_10_hold():
    pilot = load_pack("vn-pilot").versions[0]
    assert subsidy_vnd(875, "si", "near_poor", pilot) == 219
    assert subsidy_vnd(438, "ui", "near_poor", pilot) == 110
    assert subsidy_vnd(400_000, "si", "poor", pilot) == 99_000
    assert subsidy_vnd(12_345, "si", "other", pilot) == 1_235

"""The engine's compiled passes run the rules' kernels (`rules.kernels.share`, `.subsidy`): `share_vnd` and
`subsidy_array_vnd` to the dong, and whatever kernel `rules.kernels` holds when a run starts."""
from __future__ import annotations

import numpy as np

from rules import PPM, SCHEMES, subsidy_array_vnd
from rules.arithmetic import share_vnd, shares_array_vnd
from simulations import engine
from tests.simulations.mutants import floor_share, uncapped_subsidy

EDGES = [0, 1, 2, 499_999, 500_000, 500_001, 999_999, 1_000_000, 1_000_001, 10**10, 3 * 10**9 + 7]
RATES = [0, 1, 7, 10_000, 12_000, 99_999, 300_000, 500_000, PPM]


def test_share_kernel_is_share_vnd_on_edges_and_random_values():
    rng = np.random.default_rng(7)
    amounts = np.array(EDGES + rng.integers(0, 10**10, 5000).tolist() + [-1, -499_999, -500_001, -10**9],
                       dtype=np.int64)
    for rate in RATES + rng.integers(0, PPM + 1, 20).tolist():
        rates = np.full(3, rate, dtype=np.int64)
        kind = np.zeros(len(amounts), dtype=np.int8)
        platform = np.zeros(len(amounts), dtype=np.int16)
        owner = np.arange(len(amounts), dtype=np.int64)
        sums, by_group = engine._price_sums(amounts, kind, platform, rates, owner, len(amounts), 3, 3)
        expected = shares_array_vnd(amounts, np.full(len(amounts), rate))
        assert (sums == expected).all()
        assert [int(v) for v in sums[:len(EDGES)]] == [share_vnd(a, rate) for a in EDGES]
        assert by_group.tolist() == [int(expected.sum()), 0, 0]


def test_subsidy_kernel_is_subsidy_array_vnd():
    from rules import BASE_TIER
    from simulations.scenario import parse_scenario

    version = parse_scenario({"name": "k", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 1,
                              "seed": 1, "population": {"synthetic": {"workers": 1}}}).arms()["baseline"] \
        .version_on(engine.first_day(202601))
    rng = np.random.default_rng(3)
    own = np.array(EDGES + [-5, -1_000_000] + rng.integers(-10**6, 10**7, 5000).tolist(), dtype=np.int64)
    tier_rates = np.array(sorted(set(version.tier_rate_ppm.values())) + [0, 1, PPM], dtype=np.int64)
    tier = rng.integers(0, len(tier_rates), len(own)).astype(np.intp)
    local = np.arange(len(own), dtype=np.int64)
    used = rng.integers(0, 5, len(own)).astype(np.int64)
    assert BASE_TIER in version.tier_rate_ppm
    for scheme in SCHEMES:
        cap = int(version.subsidy_base_cap_vnd.get(scheme, 0)) if scheme in version.subsidised_schemes else None
        if cap is None:
            continue
        expected = subsidy_array_vnd(own, scheme, tier_rates[tier], version)
        got = engine._tier_subsidies(own, tier, tier_rates, cap, engine._NO_USED, local, -1)
        assert (got == expected).all()
        limited = engine._tier_subsidies(own, tier, tier_rates, cap, used, local, 3)
        assert (limited == np.where(used < 3, expected, 0)).all()


def test_the_engine_prices_with_whatever_share_kernel_the_rules_hold_when_a_run_starts(monkeypatch):
    from rules import kernels

    amounts, zero = np.array([150, 87_500, 1_234_567], dtype=np.int64), np.zeros(3, dtype=np.int64)
    own = engine._arithmetic()

    def priced():
        return engine._arithmetic().price_sums(amounts, zero, zero, np.array([10_000]), np.arange(3), 3, 1, 1)[0]

    assert own.price_sums is engine._price_sums and priced().tolist() == [2, 875, 12_346]
    monkeypatch.setattr(kernels, "share", floor_share)
    assert priced().tolist() == [1, 875, 12_345]
    monkeypatch.undo()
    assert engine._arithmetic() is own and priced().tolist() == [2, 875, 12_346]


def test_the_engine_subsidises_with_whatever_subsidy_kernel_the_rules_hold(monkeypatch):
    from rules import kernels

    own_vnd = np.array([100_000, 330_000, 400_000], dtype=np.int64)
    tier, local, rates = np.zeros(3, dtype=np.int64), np.arange(3, dtype=np.int64), np.array([500_000])

    def subsidies():
        return engine._arithmetic().tier_subsidies(own_vnd, tier, rates, 330_000, engine._NO_USED, local, -1).tolist()

    assert subsidies() == [50_000, 165_000, 165_000]
    monkeypatch.setattr(kernels, "subsidy", uncapped_subsidy)
    assert subsidies() == [50_000, 165_000, 200_000]


def test_the_probe_tells_passes_on_the_rules_arithmetic_from_passes_on_any_other():
    from rules import kernels

    assert engine._agrees_with_rules(engine._arithmetic())
    assert not engine._agrees_with_rules(engine._recompiled(floor_share, kernels.subsidy))
    assert not engine._agrees_with_rules(engine._recompiled(kernels.share, uncapped_subsidy))


def test_group_kernels_are_exact_sums():
    rng = np.random.default_rng(11)
    worker = np.sort(rng.integers(0, 500, 3000)).astype(np.int64)
    starts, owner = engine._segments(worker)
    assert (starts == np.flatnonzero(np.concatenate(([True], worker[1:] != worker[:-1])))).all()
    values = rng.integers(-10**12, 10**12, len(worker)).astype(np.int64)
    expected = np.zeros(len(starts), dtype=np.int64)
    np.add.at(expected, owner, values)
    assert (engine._segment_sum(values, owner, len(starts)) == expected).all()
    tier = rng.integers(0, 3, len(worker)).astype(np.intp)
    assert engine._tier_sum(tier, values, 3).tolist() == [int(values[tier == t].sum()) for t in range(3)]
    total = np.zeros(len(starts), dtype=np.int64)
    paid_any = np.zeros(len(starts), dtype=bool)
    subsidy = np.maximum(rng.integers(-3, 10, len(starts)), 0).astype(np.int64)
    t3 = rng.integers(0, 3, len(starts)).astype(np.intp)
    sums, payees, paid = engine._pay(subsidy, t3, np.arange(len(starts), dtype=np.int64), total, paid_any, 3)
    assert (total == subsidy).all() and (paid_any == (subsidy > 0)).all() and int(paid) == int(subsidy.sum())
    assert sums.tolist() == [int(subsidy[t3 == t].sum()) for t in range(3)]
    assert payees.tolist() == [int((subsidy[t3 == t] > 0).sum()) for t in range(3)]


def test_derived_totals_and_order_kernels_match_numpy():
    from simulations import results

    rng = np.random.default_rng(11)
    n = 2000
    columns = [rng.integers(-10**9, 10**9, n) for _ in range(10)]
    gross, subsidy, worker, platform = columns[0], columns[1:4], columns[4:7], columns[7:10]
    s, w, p, balance, take_home = engine._derive(gross, tuple(subsidy), tuple(worker), tuple(platform))
    assert (s == subsidy[0] + subsidy[1] + subsidy[2]).all()
    assert (w == worker[0] + worker[1] + worker[2]).all()
    assert (p == platform[0] + platform[1] + platform[2]).all()
    assert (balance == w + p + s).all() and (take_home == gross - w).all()
    for values in (np.sort(columns[0]), columns[0], np.zeros(0, dtype=np.int64), np.array([3, 3, 2], dtype=np.int8)):
        assert engine._non_decreasing(values) == bool((np.diff(values) >= 0).all())
    for values in (columns[0], np.zeros(5, dtype=np.int64), np.zeros(0, dtype=np.int64)):
        positive = values[values > 0].astype(np.float64)
        positive.sort()
        expected = np.zeros(len(values))
        expected[len(values) - len(positive):] = positive
        ordered = results._sorted_non_negative(values)
        assert ordered.tobytes() == expected.tobytes()
        ranks = np.arange(1, len(ordered) + 1)
        assert results._gini_terms(ordered).tobytes() == ((2 * ranks - len(ordered) - 1) * ordered).tobytes()


def test_the_fused_pooled_crediting_kernel_leaves_the_state_and_counts_rules_crediting_leaves():
    """Random si histories (zeros, refunds below zero, pools that pay several months at once) under a dated
    floor schedule: after every close, the kernel's pools, last credited months, first non-zero months,
    credits, month totals, credited-by-tier counts and year bits equal `accrue` + `credit`'s."""
    from datetime import date
    from types import SimpleNamespace

    from rules.crediting import CreditState, FloorSchedule, accrue, credit

    schedule = FloorSchedule([SimpleNamespace(effective_from=date(2026, 1, 1), pension_floor_contribution_vnd=50_000,
                                              crediting="pooled"),
                              SimpleNamespace(effective_from=date(2026, 4, 15), pension_floor_contribution_vnd=80_000,
                                              crediting="pooled"),
                              SimpleNamespace(effective_from=date(2027, 1, 1), pension_floor_contribution_vnd=30_000,
                                              crediting="pooled")])
    rng = np.random.default_rng(11)
    workers, first = 4000, 2026 * 12
    tier = rng.integers(0, 3, workers).astype(np.intp)
    expected, fused = CreditState.empty(workers), CreditState.empty(workers)
    years, expected_years = np.zeros(workers, dtype=np.int64), np.zeros(workers, dtype=np.int64)
    for ordinal in range(first, first + 24):
        si = np.where(rng.random(workers) < 0.4, 0, rng.integers(-20_000, 200_000, workers)).astype(np.int64)
        si[rng.random(workers) < 0.02] = 500_000  # a pool that pays several months at once
        accrue(expected, si, ordinal)
        made = credit(expected, ordinal, schedule)
        by_tier = np.zeros(3, dtype=np.int64)
        bit = np.int64(1 << (ordinal // 12 - 2026))
        engine._accrue_and_credit_pooled(si, fused.pool, fused.last_credited, fused.first_nonzero, fused.credited,
                                         fused.month_si, ordinal, schedule.starts, schedule.floors, schedule.lowest,
                                         years, bit, tier, by_tier)
        for name in ("pool", "last_credited", "first_nonzero", "credited", "month_si"):
            assert (getattr(fused, name) == getattr(expected, name)).all(), (ordinal, name)
        assert by_tier.tolist() == np.bincount(tier[made.worker], minlength=3).tolist()
        expected_years[made.worker] |= bit
        assert (years == expected_years).all()
    assert expected.credited.sum() > 2 * workers and (expected.credited.max() >= 5)  # catch-ups happened

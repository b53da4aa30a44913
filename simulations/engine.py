"""The engine: contributions and state subsidy over a population's worker-months, vectorised.

For each month in order, every arm (the baseline pack, then each reform's pack) at once:

1. the version in force on the month's first day (reform dates are month starts);
2. the six shares of every activity row, priced with the ledger's own arithmetic
   (`rules.rate_matrix_ppm` for the rates, `rules.kernels.share` — the compiled kernel the
   ledger's ingest runs — for RULES.md §4's half-up rounding, called from the row pass).
   A share column is priced once per distinct rate vector over the kinds, whichever arms
   and shares use it (most reforms leave most columns alone, and
   `oa.platform` and `ui.worker` often share rates). For a ledger replay the row also
   carries the shares the ledger booked; an arm's share is `priced(arm) + recorded −
   priced(baseline)`, so the baseline reproduces the books to the dong and a reform
   differs from them only by what the reform changes;
3. own contributions per worker-month and scheme (the worker party, summed over
   platforms and kinds), then `rules.kernels.subsidy` — the kernel the ledger's close runs —
   by the tier in force (RULES.md §6), zero for a worker who has used `max_subsidised_months`;
4. the budget strategy: `cap` pays months in order until the period's limit is spent
   (the month that crosses it is paid pro rata, later months nothing); `scale` pays
   every month of the period the same fraction limit / demand. Scaling floors each
   subsidy, so the total paid never exceeds the limit;
5. months credited towards a pension (RULES.md §11) by `rules.crediting`, the code the
   ledger's close runs: one `CreditState` per arm and chunk; the month's `si` totals
   (worker + platform + the subsidy actually paid) enter the pool, then `credit` applies
   the arm pack's `crediting` (`pooled` or `per_month`) and dated floor. A calendar month
   with no activity at all still closes (the pool may pay a month in it). `pension_months`
   is the credited count, `pool_vnd` what is left, and `credited_years` marks the calendar
   years whose closes credited the worker a month (bit y: the y-th year from the first
   simulated month's; the coverage of a year is the count of workers with its bit,
   simulations/results.py);
6. totals accumulate per worker, per (month, tier, scheme) and per (month, platform,
   kind); `active_years` marks the years a worker worked in (bits as `credited_years`).

Opting out (`participation`, `simulations/behaviour.py`): in an arm and month where some
workers may opt out, every share key is wrapped as `("masked", key, keep per kind)`: the
key's worker-month sums with the opted-out worker-months set to zero, and its (platform,
kind) sums less those of their rows. Everything downstream (subsidy, credits, counts)
reads the masked sums, so an opted-out worker-month pays and receives nothing.

Chunks: the population is cut into ranges of `chunk_workers` workers. A chunk's rows
for a month are a contiguous slice (activity is sorted by month, then worker), so a
`ChunkJob` holds views, never copies, in process. The only thing chunks share is the
budget: each month every chunk reports its demand, the coordinator decides the month's
pro-rata factor per arm, every chunk applies it. With no budget a month is one call per
chunk. Chunks run on a thread pool (the kernels release the GIL), in forked processes or as dask actors
(`scheduler=`); sums of integers do not depend on the order they are added in, so any
chunking and any scheduler give the same bits.

Integers throughout: int64 arrays, and `scale_floor` switches to Python ints where a
product could pass 2^63. No clock, no randomness.
"""
from __future__ import annotations

import dataclasses
import mmap
import os
import types
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numba
import numpy as np
import pandas as pd

from rules import (
    BASE_TIER,
    KINDS,
    SCHEMES,
    RulesPack,
    RulesVersion,
    rate_matrix_ppm,
)
from rules import kernels
from rules.crediting import NONE, POOLED, CreditState, FloorSchedule, accrue, credit, month_ordinal, ordinal_month
from simulations.behaviour import Participation, keeps
from simulations.population import RECORDED_COLUMNS, SHARE_COLUMNS, Population
from simulations.scenario import Budget

WORKER_SHARE_INDEX = {scheme: 2 * index for index, scheme in enumerate(SCHEMES)}  # SHARE_KEYS order
WORKER_SHARES = tuple(WORKER_SHARE_INDEX[s] for s in SCHEMES)
SI_WORKER, SI_PLATFORM = WORKER_SHARE_INDEX["si"], WORKER_SHARE_INDEX["si"] + 1
SI = SCHEMES.index("si")
INT64_SAFE = 2**62
PPB = 1_000_000_000
CHUNK_WORKERS = 131_072  # workers per chunk: a chunk-month's arrays stay in the 1 MB L2 / 8 MB L3 caches
THREADS = max(1, min(2, os.cpu_count() or 1))  # the development machine has two cores
MONTH_TIER_COLUMNS = ("own_vnd", "subsidy_demand_vnd", "subsidy_vnd", "workers_subsidised")
YEARS_MAX = 62  # calendar years a run may touch: one bit each in the int64 year masks (600 months are 51)


@dataclass
class ArmResult:
    """One arm's outcome. Money columns are int64 VND."""

    name: str
    pack: RulesPack
    versions_used: list[str]
    worker_totals: pd.DataFrame  # one row per population worker
    by_month_tier: pd.DataFrame  # month, tier, scheme: own, subsidy demanded and paid, workers
    revenue: pd.DataFrame  # month, platform, kind: the six shares
    budget: pd.DataFrame  # period: demand, limit, paid
    worker_months: pd.DataFrame | None = None  # when asked for: one row per worker-month
    tier_fallbacks: int = 0  # worker-months whose tier the version does not know (priced as `other`)
    credits: pd.DataFrame | None = None  # when worker-months are kept: worker, month, close_month, floor_vnd
    crediting: tuple[str, ...] = ()  # the crediting modes of the simulated months, in order of first use
    first_year: int = 0  # the calendar year of bit 0 of `active_years` and `credited_years`


@dataclass
class _BudgetState:
    """One arm's budget, kept by the coordinator from the chunks' sums."""

    budget: Budget
    factors_ppb: Mapping[int, int] = field(default_factory=dict)  # period -> scale factor (scale strategy)
    remaining: dict[int, int] = field(default_factory=dict)
    demand: dict[int, int] = field(default_factory=dict)
    paid: dict[int, int] = field(default_factory=dict)

    def period(self, month: int) -> int:
        return 0 if self.budget.period == "horizon" else month // 100

    def scale_factor(self, month: int) -> int:
        return self.factors_ppb.get(self.period(month), PPB) if self.budget.strategy == "scale" else PPB

    def decide(self, month: int, demanded: int, scaled: int) -> int:
        """The pro-rata factor for a month whose subsidies (after `scale`) total `scaled`."""
        key = self.period(month)
        self.demand[key] = self.demand.get(key, 0) + demanded
        if self.budget.strategy == "none":
            return PPB
        left = self.remaining.setdefault(key, int(self.budget.limit_vnd))
        if scaled > left:  # cap (and a guard for scale): pro rata on what is left, then the period is spent
            self.remaining[key] = 0  # the dong floored away stays unspent: later months get nothing
            return left * PPB // scaled
        self.remaining[key] = left - scaled
        assert self.remaining[key] >= 0, "the budget must never be overspent"
        return PPB

    def record_paid(self, month: int, paid: int) -> None:
        key = self.period(month)
        self.paid[key] = self.paid.get(key, 0) + paid

    def frame(self) -> pd.DataFrame:
        keys = sorted(self.demand)
        return pd.DataFrame({
            "period": ["horizon" if self.budget.period == "horizon" else str(k) for k in keys],
            "strategy": self.budget.strategy,
            "limit_vnd": [self.budget.limit_vnd if self.budget.limit_vnd is not None else -1 for _ in keys],
            "demand_vnd": [self.demand[k] for k in keys],
            "paid_vnd": [self.paid[k] for k in keys],
        })


def scale_floor(values: np.ndarray, factor_ppb: int) -> np.ndarray:
    """floor(v × factor / 10^9) per element, exact; factor ≤ 10^9 so the result never exceeds v."""
    assert 0 <= factor_ppb <= PPB
    if factor_ppb == PPB:
        return values
    if values.size and int(values.max()) >= INT64_SAFE // PPB:
        return np.array([int(v) * factor_ppb // PPB for v in values.ravel().tolist()],
                        dtype=np.int64).reshape(values.shape)
    return values * factor_ppb // PPB


def first_day(month: int) -> date:
    return date(month // 100, month % 100, 1)


# ---------------------------------------------------------------------------
# The plan: what each arm needs each month, as plain data a chunk (or a dask worker) can hold
# ---------------------------------------------------------------------------
# A share key names one worker-month quantity every arm using it shares:
#   None                          zero (every kind's rate is 0)
#   ("price", rates)              the rows priced at `rates` (one ppm per kind, KINDS order)
#   ("recorded", j)               the ledger's own share j (a replay whose arm keeps the baseline's rates)
#   ("replay", rates, base, j)    priced(rates) + recorded j − priced(base)

@dataclass(frozen=True)
class _ArmMonth:
    version: RulesVersion
    share_keys: tuple  # six keys, SHARE_KEYS order
    rate_of_tier: np.ndarray  # int64 ppm per population tier (unknown tiers at the base tier's rate)
    known_tier: np.ndarray  # bool per population tier


@dataclass(frozen=True)
class _Plan:
    months: tuple[int, ...]
    tiers: tuple[str, ...]
    platforms: int
    recorded: bool
    arms: tuple[tuple[_ArmMonth, ...], ...]  # arm -> month -> plan
    share_signals: tuple[tuple, ...]  # distinct per-month key sequences of a share total
    arm_share_signal: tuple[tuple[int, ...], ...]  # arm -> six indexes into share_signals
    schedules: tuple[FloorSchedule, ...]  # arm -> its pack's dated floors and crediting modes (RULES.md §11)
    closes: tuple[tuple[int, ...], ...]  # month -> the month ordinals whose close it runs (gap months first)
    contributing_signals: tuple[tuple, ...]
    arm_contributing_signal: tuple[int, ...]
    track_used: tuple[bool, ...]  # arm counts subsidised months (some version limits them)
    keep_worker_months: bool
    credit: bool = True  # False for `scale`'s demand pass: nothing it computes beyond the demand is kept

    @property
    def first_year(self) -> int:
        """The calendar year of bit 0 of the year masks (`active_years`, `credited_years`)."""
        return self.months[0] // 100 if self.months else 0


def _share_key(version: RulesVersion, base: RulesVersion, j: int, recorded: bool):
    rates = tuple(int(r) for r in rate_matrix_ppm(version)[:, j])
    if not recorded:
        return ("price", rates) if any(rates) else None
    base_rates = tuple(int(r) for r in rate_matrix_ppm(base)[:, j])
    return ("recorded", j) if rates == base_rates else ("replay", rates, base_rates, j)


def _masked(keys: tuple, participation: Participation | None, arm: int, month: int) -> tuple:
    """The share keys of an arm's month with its opt-outs: ("masked", key, keep ppb per kind) where some
    worker of a kind may opt out (zero keys stay zero)."""
    if participation is None:
        return keys
    keep = participation.keep_ppb[arm][participation_month(participation, month)]
    return keys if keep is None else tuple(None if key is None else ("masked", key, keep) for key in keys)


def participation_month(participation: Participation, month: int) -> int:
    return participation.months.index(month)


def _index(signals: list, signal) -> int:
    if signal not in signals:
        signals.append(signal)
    return signals.index(signal)


def make_plan(population: Population, packs: Sequence[RulesPack], keep_worker_months: bool = False,
              participation: Participation | None = None) -> _Plan:
    months = population.months
    tiers = population.tiers
    recorded = population.recorded
    if months and months[-1] // 100 - months[0] // 100 >= YEARS_MAX:
        raise ValueError(f"a run spans at most {YEARS_MAX} calendar years (its year masks are int64)")
    baseline = packs[0]
    arms = []
    for pack in packs:
        per_month = []
        for month in months:
            version = pack.version_on(first_day(month))
            base = baseline.version_on(first_day(month))
            keys = tuple(_share_key(version, base, j, recorded) for j in range(len(SHARE_COLUMNS)))
            keys = _masked(keys, participation, len(arms), month)
            rates = version.tier_rate_ppm
            per_month.append(_ArmMonth(
                version, keys,
                np.array([rates.get(t, rates[BASE_TIER]) for t in tiers], dtype=np.int64),
                np.array([t in rates for t in tiers], dtype=bool)))
        arms.append(tuple(per_month))
    share_signals: list = []
    contributing_signals: list = []
    arm_share, arm_contributing = [], []
    for arm in arms:
        arm_share.append(tuple(_index(share_signals, tuple(m.share_keys[j] for m in arm))
                               for j in range(len(SHARE_COLUMNS))))
        arm_contributing.append(_index(contributing_signals, tuple(
            tuple(m.share_keys[j] for j in WORKER_SHARES) for m in arm)))
    ordinals = [int(month_ordinal(month)) for month in months]
    # Every calendar month closes, as in the books: a month with no activity at all credits from the pool too.
    closes = tuple(tuple(range(ordinals[m - 1] + 1 if m else ordinals[0], ordinals[m] + 1))
                   for m in range(len(ordinals)))
    return _Plan(months, tiers, len(population.platforms), recorded, tuple(arms), tuple(share_signals),
                 tuple(arm_share), tuple(FloorSchedule.of(pack) for pack in packs), closes,
                 tuple(contributing_signals), tuple(arm_contributing),
                 tuple(any(m.version.max_subsidised_months is not None for m in arm) for arm in arms),
                 keep_worker_months)


# ---------------------------------------------------------------------------
# Compiled kernels: one pass each over a chunk-month's rows or worker-months (numpy's
# `ufunc.at`, `take` and temporaries cost ~20 passes). The arithmetic is not here: the row
# passes call `kernels.share` and the subsidy pass `kernels.subsidy` — `rules.kernels`, the
# compiled kernels the ledger's ingest and close run — so there is one implementation of each
# formula (see `_arithmetic` for how a replaced rules kernel reaches these passes).
# Integer sums: the order of addition does not change a bit.
# ---------------------------------------------------------------------------

_WAYS = 8  # histogram accumulators: few bins, so one would make each add wait for the last


@numba.njit(cache=True, nogil=True)
def _segments(worker):  # pragma: no cover - compiled
    """(first row of each worker-month, the worker-month of each row) of rows sorted by worker."""
    n = len(worker)
    owner = np.empty(n, dtype=np.int64)
    count = 0
    for i in range(n):
        if i == 0 or worker[i] != worker[i - 1]:
            count += 1
        owner[i] = count - 1
    starts = np.empty(count, dtype=np.int64)
    c = 0
    for i in range(n):
        if i == 0 or worker[i] != worker[i - 1]:
            starts[c] = i
            c += 1
    return starts, owner


@numba.njit(cache=True, nogil=True)
def _rows_pass(worker, gross, kind, platform, rates, kinds, groups):  # pragma: no cover - compiled
    """One pass over a chunk-month's rows (sorted by worker): the worker-months (first rows), gross per
    worker-month, rows per (platform, kind), and each rate vector's shares (row p of `rates`, one ppm per
    kind) summed per worker-month and per (platform, kind)."""
    n = len(worker)
    prices = rates.shape[0]
    starts = np.empty(n, dtype=np.int64)
    gross_sums = np.zeros(n, dtype=np.int64)
    sums = np.zeros((prices, n), dtype=np.int64)
    counts = np.zeros((_WAYS, groups), dtype=np.int64)
    by_group = np.zeros((prices, _WAYS, groups), dtype=np.int64)
    c = -1
    for i in range(n):
        if i == 0 or worker[i] != worker[i - 1]:
            c += 1
            starts[c] = i
        amount = gross[i]
        k = kind[i]
        group = platform[i] * kinds + k
        way = i & (_WAYS - 1)
        gross_sums[c] += amount
        counts[way, group] += 1
        for p in range(prices):
            value = kernels.share(amount, rates[p, k])
            sums[p, c] += value
            by_group[p, way, group] += value
    count = c + 1
    return starts[:count], gross_sums[:count], sums[:, :count], counts.sum(axis=0), by_group.sum(axis=1)


@numba.njit(cache=True, nogil=True)
def _price_sums(gross, kind, platform, rates, owner, count, kinds, groups):  # pragma: no cover - compiled
    """Each row's share at its kind's rate, summed per worker-month and per (platform, kind)."""
    sums = np.zeros(count, dtype=np.int64)
    by_group = np.zeros((_WAYS, groups), dtype=np.int64)
    for i in range(len(gross)):
        value = kernels.share(gross[i], rates[kind[i]])
        sums[owner[i]] += value
        by_group[i & (_WAYS - 1), platform[i] * kinds + kind[i]] += value
    return sums, by_group.sum(axis=0)


@numba.njit(cache=True, nogil=True)
def _value_sums(values, kind, platform, owner, count, kinds, groups):  # pragma: no cover - compiled
    """A row array summed per worker-month and per (platform, kind)."""
    sums = np.zeros(count, dtype=np.int64)
    by_group = np.zeros((_WAYS, groups), dtype=np.int64)
    for i in range(len(values)):
        value = np.int64(values[i])
        sums[owner[i]] += value
        by_group[i & (_WAYS - 1), platform[i] * kinds + kind[i]] += value
    return sums, by_group.sum(axis=0)


@numba.njit(cache=True, nogil=True)
def _segment_sum(values, owner, count):  # pragma: no cover - compiled
    sums = np.zeros(count, dtype=np.int64)
    for i in range(len(values)):
        sums[owner[i]] += values[i]
    return sums


@numba.njit(cache=True, nogil=True)
def _add_at(target, index, values):  # pragma: no cover - compiled
    for i in range(len(index)):
        target[index[i]] += values[i]


@numba.njit(cache=True, nogil=True)
def _or_at(target, index, bit):  # pragma: no cover - compiled
    for i in range(len(index)):
        target[index[i]] |= bit


@numba.njit(cache=True, nogil=True)
def _accrue_and_credit_pooled(si, pool, last_credited, first_nonzero, credited, month_si, month, starts, floors,
                              lowest, years, bit, tier, by_tier):  # pragma: no cover - compiled
    """`rules.crediting.accrue` then `credit` in `pooled` mode for one close, fused into one pass over the
    chunk's workers, in place: the same pools, last credited months, first non-zero months, credits and
    month totals (a worker's rounds are independent of the others', so taking each worker's rounds in
    turn credits what the round-by-round arrays do); the credited months counted by tier and the year's
    bit set in `years` for each worker credited. The credits' order is not kept (the caller uses this
    only when the credits themselves are not kept)."""
    positions = len(starts)
    for i in range(len(si)):
        value = si[i]
        pool[i] += value
        month_si[i] = value
        if first_nonzero[i] == NONE and value != 0:
            first_nonzero[i] = month
        if pool[i] < lowest:  # no pool below the lowest floor pays any month
            continue
        last = last_credited[i]
        candidate = last + 1 if last != NONE else first_nonzero[i]
        if candidate == NONE:
            continue
        while candidate <= month:
            position = 0
            while position + 1 < positions and starts[position + 1] <= candidate:
                position += 1
            floor = floors[position]
            if pool[i] < floor:
                break
            pool[i] -= floor
            last_credited[i] = candidate
            credited[i] += 1
            years[i] |= bit
            by_tier[tier[i]] += 1
            candidate += 1


@numba.njit(cache=True, nogil=True)
def _add_one_at(target, index):  # pragma: no cover - compiled
    for i in range(len(index)):
        target[index[i]] += 1


@numba.njit(cache=True, nogil=True)
def _add_one_where(target, index, mask):  # pragma: no cover - compiled
    for i in range(len(index)):
        target[index[i]] += np.int64(mask[i])  # no branch: the masks are unpredictable


@numba.njit(cache=True, nogil=True)
def _tier_sum(tier, values, tiers):  # pragma: no cover - compiled
    out = np.zeros((_WAYS, tiers), dtype=np.int64)
    for i in range(len(tier)):
        out[i & (_WAYS - 1), tier[i]] += np.int64(values[i])
    return out.sum(axis=0)


@numba.njit(cache=True, nogil=True)
def _tier_subsidies(own, tier, rate_of_tier, cap, used, local, limit):  # pragma: no cover - compiled
    """`kernels.subsidy` (RULES.md §6, §9) of each worker-month: its own contribution, its tier's rate and its
    worker's subsidised months so far (`used` is read only when `limit` ≥ 0: a version with a limit)."""
    out = np.empty(len(own), dtype=np.int64)
    for i in range(len(own)):
        months = used[local[i]] if limit >= 0 else np.int64(0)
        out[i] = kernels.subsidy(own[i], cap, rate_of_tier[tier[i]], months, limit)
    return out


@numba.njit(cache=True, nogil=True)
def _pay(subsidy, tier, local, total, paid_any, tiers):  # pragma: no cover - compiled
    """Add a scheme's subsidies into the per-worker totals; (per-tier sums, per-tier payees, total paid)."""
    sums = np.zeros((_WAYS, tiers), dtype=np.int64)
    payees = np.zeros((_WAYS, tiers), dtype=np.int64)
    for i in range(len(subsidy)):
        value = subsidy[i]
        total[local[i]] += value
        sums[i & (_WAYS - 1), tier[i]] += value
        positive = value > 0
        payees[i & (_WAYS - 1), tier[i]] += np.int64(positive)
        paid_any[i] |= positive
    by_tier = sums.sum(axis=0)
    return by_tier, payees.sum(axis=0), by_tier.sum()


@numba.njit(cache=True, nogil=True)
def _non_decreasing(values):  # pragma: no cover - compiled
    """`(np.diff(values) >= 0).all()` in one pass, no temporaries."""
    for i in range(1, len(values)):
        if values[i] < values[i - 1]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _derive(gross, subsidy, worker, platform):  # pragma: no cover - compiled
    """A worker's derived totals in one pass: subsidy, worker and platform over the three schemes,
    balance (their sum) and take-home (gross − worker)."""
    n = len(gross)
    subsidy_vnd = np.empty(n, dtype=np.int64)
    worker_vnd = np.empty(n, dtype=np.int64)
    platform_vnd = np.empty(n, dtype=np.int64)
    balance_vnd = np.empty(n, dtype=np.int64)
    take_home_vnd = np.empty(n, dtype=np.int64)
    for i in range(n):
        s = subsidy[0][i] + subsidy[1][i] + subsidy[2][i]
        w = worker[0][i] + worker[1][i] + worker[2][i]
        p = platform[0][i] + platform[1][i] + platform[2][i]
        subsidy_vnd[i] = s
        worker_vnd[i] = w
        platform_vnd[i] = p
        balance_vnd[i] = w + p + s
        take_home_vnd[i] = gross[i] - w
    return subsidy_vnd, worker_vnd, platform_vnd, balance_vnd, take_home_vnd


_NO_USED = np.zeros(0, dtype=np.int64)


class _Arithmetic(NamedTuple):
    """The passes that call the rules' kernels, compiled against one (share, subsidy) pair."""

    rows_pass: Callable
    price_sums: Callable
    tier_subsidies: Callable


_ARITHMETIC_PASSES = ("_rows_pass", "_price_sums", "_tier_subsidies")  # _Arithmetic's order
_COMPILED: dict[tuple, _Arithmetic] = {}  # (share, subsidy) -> the passes compiled against them
_OWN_KERNELS = (kernels.share, kernels.subsidy)  # what the module's passes were written against
_PROBE_AMOUNTS = np.array([0, 1, 49, 50, 149, 150, 499_999, 500_000, 500_001, 87_500, 12_345, 10**10, -1, -50,
                           -150, -500_000, -87_500], dtype=np.int64)
_PROBE_RATES = np.array([0, 1, 5_000, 6_000, 10_000, 200_000, 250_000, 300_000, 500_000, 1_000_000], dtype=np.int64)


def _arithmetic() -> _Arithmetic:
    """The row and subsidy passes compiled against `rules.kernels.share` and `.subsidy` as they stand now.

    Normally the module's own passes (compiled once, cached on disk by numba). numba freezes a called
    function into its caller when the caller compiles, and its disk cache is keyed on this file alone,
    so two things could leave these passes on other arithmetic than the rules': a rules kernel replaced
    at run time (the mutation tests replace one on purpose) and a cache compiled before `rules/kernels.py`
    last changed. The first is seen by identity; the second by running both on probe values once per
    process. Either way the passes are compiled again from their source against the kernels in force
    (not cached; seconds), so the simulator never runs arithmetic the rules do not.
    """
    in_force = (kernels.share, kernels.subsidy)
    found = _COMPILED.get(in_force)
    if found is None:
        own = _Arithmetic(*(globals()[name] for name in _ARITHMETIC_PASSES))
        fresh = in_force == _OWN_KERNELS and _agrees_with_rules(own)
        found = _COMPILED[in_force] = own if fresh else _recompiled(*in_force)
    return found


def _agrees_with_rules(passes: _Arithmetic) -> bool:
    """The passes give what `rules.kernels`' array forms give on the probe values: every (amount, rate) pair
    priced by both row passes, and subsidies below, at and above the cap, before and at a months limit."""
    rates = len(_PROBE_RATES)
    amounts = np.repeat(_PROBE_AMOUNTS, rates)
    kind = np.tile(np.arange(rates, dtype=np.int64), len(_PROBE_AMOUNTS))  # one "kind" per probe rate
    row = np.arange(len(amounts), dtype=np.int64)  # every row its own worker-month
    platform = np.zeros(len(amounts), dtype=np.int64)
    shares = kernels.shares_elementwise(amounts, _PROBE_RATES[kind])
    priced, _ = passes.price_sums(amounts, kind, platform, _PROBE_RATES, row, len(amounts), rates, rates)
    _, _, summed, _, _ = passes.rows_pass(row, amounts, kind, platform, _PROBE_RATES[None, :].copy(), rates, rates)
    used, cap, limit = row % 4, np.int64(330_000), np.int64(2)
    subsidies = passes.tier_subsidies(amounts, kind, _PROBE_RATES, cap, used, row, limit)
    return bool((priced == shares).all() and (summed[0] == shares).all()
                and (subsidies == kernels.subsidies(amounts, cap, _PROBE_RATES[kind], used, limit)).all())


def _recompiled(share, subsidy) -> _Arithmetic:
    """The passes compiled again from their source, `kernels` standing for a copy of `rules.kernels` whose
    `share` and `subsidy` are the given functions. A function of `rules.kernels` itself is compiled again in
    the copy too (its `subsidy` calls whichever `share` the copy has); any other (a mutant) in its own module."""
    module = types.ModuleType(kernels.__name__)
    module.__dict__.update(vars(kernels))
    for name, function in (("share", share), ("subsidy", subsidy)):
        source = getattr(function, "py_func", function)
        scope = module.__dict__ if source.__globals__ is vars(kernels) else source.__globals__
        setattr(module, name, numba.njit(types.FunctionType(source.__code__, scope, source.__name__)))
    namespace = {**globals(), "kernels": module}
    return _Arithmetic(*(numba.njit(nogil=True)(types.FunctionType(globals()[name].py_func.__code__, namespace, name))
                         for name in _ARITHMETIC_PASSES))


def _warm_up() -> None:
    """Compile every kernel for the population's dtypes before forking (each child would compile again)."""
    i64, i32, i16, i8 = (np.zeros(1, dtype=d) for d in (np.int64, np.int32, np.int16, np.int8))
    arithmetic = _arithmetic()
    starts, owner = _segments(i64)
    for kind, platform in ((i8, i16), (i64, i64)):
        arithmetic.rows_pass(i64, i64, kind, platform, np.zeros((1, 3), dtype=np.int64), 3, 3)
    for kind, platform in ((i8, i16), (i64, i64)):
        arithmetic.price_sums(i64, kind, platform, i64, owner, 1, 3, 3)
        _value_sums(i64, kind, platform, owner, 1, 3, 3)
    _segment_sum(i64, owner, 1)
    _add_at(i64.copy(), i64, i64)
    _add_one_at(i64.copy(), i64)
    _or_at(i64.copy(), i64, np.int64(1))
    _add_one_where(i64.copy(), i64, np.zeros(1, dtype=bool))
    _tier_sum(i64, i64, 1)
    _tier_sum(i64, np.zeros(1, dtype=bool), 1)
    arithmetic.tier_subsidies(i64, i64, i64, 0, i64, i64, -1)
    _pay(i64, i64, i64, i64.copy(), np.zeros(1, dtype=bool), 1)
    for values in (i64, i32, i16, i8):
        _non_decreasing(values)
    _derive(i64, (i64, i64, i64), (i64, i64, i64), (i64, i64, i64))


# ---------------------------------------------------------------------------
# One chunk of workers
# ---------------------------------------------------------------------------

class _Piece:
    """One chunk's rows of one month, reduced to worker-months; every quantity computed once, on demand."""

    def __init__(self, rows: dict[str, np.ndarray], first_worker: int, tiers: int, platforms: int,
                 prices: Sequence = ()) -> None:
        worker = rows["worker"]
        self.rows = rows
        self.memo: dict = {}
        self.revenue_memo: dict = {}
        # One compiled pass: worker-months, gross, rows per group and every rate vector in `prices` priced.
        prices = list(dict.fromkeys(prices))
        rates = np.array([key[1] for key in prices], dtype=np.int64).reshape(len(prices), len(KINDS))
        self.starts, self.gross_sums, sums, self.rows_per_group, by_group = _arithmetic().rows_pass(
            worker, rows["gross"], rows["kind"], rows["platform"], rates, len(KINDS), platforms * len(KINDS))
        for p, key in enumerate(prices):
            self.memo[key] = sums[p]
            self.revenue_memo[key] = by_group[p]
        self._owner: np.ndarray | None = None
        self.local = worker[self.starts] - first_worker  # index into the chunk's per-worker arrays
        assert len(self.local) == 0 or (np.diff(self.local) > 0).all(), \
            "activity must be sorted by worker within a month"
        self.tier = rows["tier"][self.starts].astype(np.intp)
        self.tier_counts = np.bincount(self.tier, minlength=tiers).astype(np.int64)
        self.kind = rows["kind"]
        self.tiers = tiers
        self.platforms = platforms
        self.participation: tuple[np.ndarray, np.ndarray] | None = None  # the chunk's (draws, kinds), by local

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def owner(self) -> np.ndarray:
        """The worker-month of each row (for a replay's recorded shares)."""
        if self._owner is None:
            self._owner = _segments(self.rows["worker"])[1]
        return self._owner

    def segment_sum(self, values: np.ndarray) -> np.ndarray:
        """Per worker-month sums of a row array (int64)."""
        return _segment_sum(values, self.owner, self.count)

    def group_rows(self) -> np.ndarray:
        """Rows per (platform, kind)."""
        return self.rows_per_group

    def _leaf(self, key) -> None:
        """A share's worker-month and (platform, kind) sums, priced (`share_vnd` per row) or recorded."""
        groups = self.platforms * len(KINDS)
        if key[0] == "price":
            sums, by_group = _arithmetic().price_sums(self.rows["gross"], self.kind, self.rows["platform"],
                                         np.array(key[1], dtype=np.int64), self.owner, self.count, len(KINDS),
                                         groups)
        else:
            sums, by_group = _value_sums(self.rows["recorded"][:, key[1]], self.kind, self.rows["platform"],
                                         self.owner, self.count, len(KINDS), groups)
        self.memo[key] = sums
        self.revenue_memo[key] = by_group

    def value(self, key) -> np.ndarray | None:
        """The worker-month sums of a share key (None for a zero key)."""
        if key is None:
            return None
        if key not in self.memo:
            if key[0] == "masked":
                self._masked(key)
            elif key[0] == "replay":
                _, rates, base, j = key
                parts = [("price", rates) if any(rates) else None, ("recorded", j), ("price", base) if any(base)
                         else None]
                for part in parts:
                    if part is not None:
                        self.value(part)
                self.memo[key] = _combine([self.memo.get(p) for p in parts], self.count)
                self.revenue_memo[key] = _combine([self.revenue_memo.get(p) for p in parts],
                                                  self.platforms * len(KINDS))
            else:
                self._leaf(key)
        return self.memo[key]

    def _masked(self, key) -> None:
        """A key with the arm's opt-outs: its sums with the opted-out worker-months at zero (a worker-month
        is kept or dropped whole), its (platform, kind) sums less those of the dropped rows."""
        _, inner, keep_ppb = key
        keep = self.memo.get(("keeps", keep_ppb))
        if keep is None:
            draws, kinds = self.participation
            keep = self.memo[("keeps", keep_ppb)] = keeps(draws[self.local], kinds[self.local], keep_ppb)
        values = self.value(inner)
        revenue = self.revenue_memo[inner]
        if keep.all():
            self.memo[key], self.revenue_memo[key] = values, revenue
            return
        self.memo[key] = np.where(keep, values, 0)
        dropped = self.memo.get(("dropped", keep_ppb))
        if dropped is None:  # the rows of the dropped worker-months, and their worker-month (few: no pass over all)
            months = np.flatnonzero(~keep)
            ends = np.append(self.starts[1:], len(self.rows["worker"]))[months]
            lengths = ends - self.starts[months]
            offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            rows = np.repeat(self.starts[months], lengths) + offsets
            dropped = self.memo[("dropped", keep_ppb)] = {
                "rows": rows, "owner": np.repeat(months, lengths), "kind": self.kind[rows],
                "platform": self.rows["platform"][rows], "gross": self.rows["gross"][rows]}
        self.revenue_memo[key] = revenue - self._rows_revenue(inner, dropped)

    def _rows_revenue(self, key, rows: dict[str, np.ndarray]) -> np.ndarray:
        """A key's (platform, kind) sums over some rows only (`rows`: their indexes, worker-months and columns)."""
        groups = self.platforms * len(KINDS)
        if key[0] == "price":
            return _arithmetic().price_sums(rows["gross"], rows["kind"], rows["platform"],
                                            np.array(key[1], dtype=np.int64), rows["owner"], self.count, len(KINDS),
                                            groups)[1]
        if key[0] == "recorded":
            return _value_sums(self.rows["recorded"][rows["rows"], key[1]], rows["kind"], rows["platform"],
                               rows["owner"], self.count, len(KINDS), groups)[1]
        _, rates, base, j = key  # replay: priced(rates) + recorded − priced(base)
        parts = [("price", rates) if any(rates) else None, ("recorded", j), ("price", base) if any(base) else None]
        return _combine([None if part is None else self._rows_revenue(part, rows) for part in parts], groups)

    def value_or_zero(self, key) -> np.ndarray:
        value = self.value(key)
        return value if value is not None else np.zeros(self.count, dtype=np.int64)

    def revenue(self, key) -> np.ndarray | None:
        self.value(key)
        return None if key is None else self.revenue_memo[key]

    def derived(self, name: str, key, compute: Callable[[], np.ndarray]) -> np.ndarray:
        memo_key = (name, key)
        if memo_key not in self.memo:
            self.memo[memo_key] = compute()
        return self.memo[memo_key]

    def tier_sum(self, values: np.ndarray | None) -> np.ndarray:
        """Per-tier sums of a worker-month array (int64, or bool for counts)."""
        if values is None or not len(values):
            return np.zeros(self.tiers, dtype=np.int64)
        return _tier_sum(self.tier, values, self.tiers)

    def tier_count(self, mask: np.ndarray | None = None) -> np.ndarray:
        return self.tier_counts.copy() if mask is None else self.tier_sum(mask)


def _combine(parts: list, size: int) -> np.ndarray:
    """priced(arm) + recorded − priced(baseline); a missing part is zero."""
    arm, recorded, base = parts
    result = recorded.copy() if recorded is not None else np.zeros(size, dtype=np.int64)
    if arm is not None:
        result += arm
    if base is not None:
        result -= base
    return result


@dataclass
class MonthOutput:
    """A chunk's figures for one month (summed over chunks by the coordinator)."""

    month_tier: list[np.ndarray]  # arm -> (tiers, 3 schemes, len(MONTH_TIER_COLUMNS)) int64
    month_tier_common: list[np.ndarray]  # arm -> (tiers, 3): workers_active, workers_contributing, pension_months
    #   (pension_months: the months this month's close credited, by the tier of each worker's last active month)
    fallbacks: list[int]  # arm -> worker-months whose tier the version does not know
    paid: list[int]  # arm -> subsidy paid
    revenue: dict  # share key -> (platforms × kinds) int64
    revenue_rows: np.ndarray  # rows per (platform, kind): which groups exist this month
    worker_months: list | None = None  # arm -> DataFrame, when kept
    credits: list | None = None  # arm -> (worker, month, close month, floor) int64 arrays, when worker-months are kept


class _Store:
    """Per-worker int64 totals, one array per name, handed out as slices: in process every chunk
    adds into the population-wide arrays directly (no per-chunk copies to join at the end)."""

    def __init__(self, workers: int, first_worker: int = 0, shared: bool = False) -> None:
        self.workers = workers
        self.first_worker = first_worker
        self.shared = shared  # in memory that forked processes write and this one reads
        self.arrays: dict[str, np.ndarray] = {}

    def view(self, name: str, offset: int, count: int) -> np.ndarray:
        if name not in self.arrays:
            if self.shared and self.workers:
                # An anonymous shared mapping (zero-filled) survives fork: children add, the parent reads.
                self.arrays[name] = np.frombuffer(mmap.mmap(-1, self.workers * 8), dtype=np.int64)
            else:
                self.arrays[name] = np.zeros(self.workers, dtype=np.int64)
        return self.arrays[name][offset:offset + count]


class ChunkJob:
    """The workers [first_worker, first_worker + workers) over every month and every arm.

    `rows[m]` is the chunk's activity of month m (arrays `worker`, `kind`, `platform`,
    `tier`, `gross` and, for a replay, `recorded` (n, 6)). Methods are called month by
    month, in order: `step(m)` with no budget, else `demand(m, scale_factors)` then
    `apply(m, cap_factors)`; `totals()` at the end.
    """

    def __init__(self, plan: _Plan, rows: list[dict[str, np.ndarray] | None], first_worker: int,
                 workers: int, store: _Store | None = None,
                 participation: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.plan = plan
        self.rows = rows
        self.first_worker = first_worker
        self.workers = workers
        self.participation = participation  # the chunk's opt-out draws and main kinds (behaviour.Participation)
        arms = len(plan.arms)
        store = store if store is not None else _Store(workers, first_worker)
        view = lambda name: store.view(name, first_worker - store.first_worker, workers)  # noqa: E731
        self.gross = view("gross_vnd")
        self.active = view("active_months")
        self.shares = [view(f"share {s}") for s in range(len(plan.share_signals))]
        # RULES.md §11 per arm: the pool and the credited count live in the store (they are outputs; made here,
        # before any fork, so forked processes write the shared arrays); the rest of the state is the chunk's own.
        self.pool = [view(f"pool {a}") for a in range(arms)]
        self.credited = [view(f"credited {a}") for a in range(arms)]
        self.credited_years = [view(f"credited years {a}") for a in range(arms)]  # bit masks (YEARS_MAX)
        self.active_years = view("active years")
        self._credit_states: list[CreditState] | None = None
        self._last_tier: np.ndarray | None = None  # per worker: the tier of the last month they were active in
        self._si: np.ndarray | None = None
        self.contributing = [view(f"contributing {s}") for s in range(len(plan.contributing_signals))]
        self.subsidy = [[view(f"subsidy {a} {scheme}") for scheme in SCHEMES] for a in range(arms)]
        self.subsidised = [view(f"subsidised {a}") for a in range(arms)]
        self.used = [view(f"used {a}") if track else None for a, track in enumerate(plan.track_used)]
        self._pending: tuple[int, _Piece | None, list] | None = None

    # -- the budget protocol -------------------------------------------------

    def demand(self, m: int, scale_factors: Sequence[int]) -> list[tuple[int, int]]:
        """Per arm: (subsidy demanded, the same after the `scale` factor) of month index m."""
        rows = self.rows[m]
        piece = _Piece(rows, self.first_worker, len(self.plan.tiers), self.plan.platforms, self._prices(m)) \
            if rows is not None and len(rows["worker"]) else None
        if piece is not None:
            piece.participation = self.participation
        demands, sums = [], []
        for a, arm in enumerate(self.plan.arms):
            if piece is None:
                demands.append(None)
                sums.append((0, 0))
                continue
            plan = arm[m]
            version = plan.version
            limited = version.max_subsidised_months is not None
            used = self.used[a] if limited else _NO_USED
            limit = int(version.max_subsidised_months) if limited else -1
            per_scheme = []
            for scheme in SCHEMES:
                own = piece.value(plan.share_keys[WORKER_SHARE_INDEX[scheme]])
                if scheme not in version.subsidised_schemes or own is None:
                    per_scheme.append(None)
                    continue
                # subsidy_array_vnd(own, scheme, tier rates, version), zero past the limit, in one pass
                per_scheme.append(_arithmetic().tier_subsidies(own, piece.tier, plan.rate_of_tier,
                                           int(version.subsidy_base_cap_vnd[scheme]), used, piece.local, limit))
            demanded = sum(int(v.sum()) for v in per_scheme if v is not None)
            factor = scale_factors[a]
            scaled = demanded if factor == PPB else \
                sum(int(scale_floor(v, factor).sum()) for v in per_scheme if v is not None)
            demands.append(per_scheme)
            sums.append((demanded, scaled))
        self._pending = (m, piece, demands)
        return sums

    def apply(self, m: int, scale_factors: Sequence[int], cap_factors: Sequence[int]) -> MonthOutput:
        assert self._pending is not None and self._pending[0] == m, "apply follows demand for the same month"
        _, piece, demands = self._pending
        self._pending = None
        plan = self.plan
        arms = len(plan.arms)
        tiers = len(plan.tiers)
        if piece is None:
            common = []
            credits = [] if plan.keep_worker_months else None
            for a in range(arms):
                by_tier, done = self._credit(m, a, None, None)
                table = np.zeros((tiers, 3), np.int64)
                table[:, 2] = by_tier
                common.append(table)
                if credits is not None:
                    credits.append(done)
            return MonthOutput([np.zeros((tiers, len(SCHEMES), len(MONTH_TIER_COLUMNS)), np.int64)] * arms,
                               common, [0] * arms, [0] * arms, {},
                               np.zeros(plan.platforms * len(KINDS), np.int64),
                               [] if plan.keep_worker_months else None, credits)
        local = piece.local
        self._tiers()[local] = piece.tier
        _add_at(self.gross, local, piece.gross_sums)
        _add_one_at(self.active, local)
        _or_at(self.active_years, local, np.int64(1 << (plan.months[m] // 100 - plan.first_year)))
        for s, signal in enumerate(plan.share_signals):
            value = piece.value(signal[m])
            if value is not None:
                _add_at(self.shares[s], local, value)
        for s, signal in enumerate(plan.contributing_signals):
            _add_one_where(self.contributing[s], local, self._contributing(piece, signal[m]))

        active_by_tier = piece.tier_count()
        month_tier, common, fallbacks, paid_total, details = [], [], [], [], []
        credits = [] if plan.keep_worker_months else None
        for a, arm in enumerate(plan.arms):
            month_plan = arm[m]
            keys = month_plan.share_keys
            table = np.zeros((tiers, len(SCHEMES), len(MONTH_TIER_COLUMNS)), dtype=np.int64)
            paid_any = np.zeros(piece.count, dtype=bool)
            paid = 0
            subsidies = []
            for k, scheme in enumerate(SCHEMES):
                key = keys[WORKER_SHARE_INDEX[scheme]]
                table[:, k, 0] = piece.derived("own_by_tier", key, lambda key=key: piece.tier_sum(piece.value(key)))
                demand = demands[a][k]
                if demand is None:
                    subsidies.append(None)
                    continue
                subsidy = scale_floor(scale_floor(demand, scale_factors[a]), cap_factors[a])
                subsidies.append(subsidy)
                sums, payees, paid_scheme = _pay(subsidy, piece.tier, local, self.subsidy[a][k], paid_any, tiers)
                paid += int(paid_scheme)
                table[:, k, 1] = sums if subsidy is demand else piece.tier_sum(demand)
                table[:, k, 2] = sums
                table[:, k, 3] = payees
            _add_one_where(self.subsidised[a], local, paid_any)
            if self.used[a] is not None:
                _add_one_where(self.used[a], local, paid_any)
            worker_keys = tuple(keys[j] for j in WORKER_SHARES)
            credited_by_tier, done = self._credit(m, a, piece, subsidies[SI])
            if credits is not None:
                credits.append(done)
            common.append(np.stack([
                active_by_tier,
                piece.derived("contributing_by_tier", worker_keys,
                              lambda: piece.tier_count(self._contributing(piece, worker_keys))),
                credited_by_tier], axis=1))
            month_tier.append(table)
            fallbacks.append(int(active_by_tier[~month_plan.known_tier].sum()))
            paid_total.append(paid)
            if plan.keep_worker_months:
                details.append(self._detail(piece, m, keys, subsidies))
        revenue = {}
        for arm in plan.arms:
            for key in arm[m].share_keys:
                if key is not None and key not in revenue:
                    revenue[key] = piece.revenue(key)
        rows_per_group = piece.group_rows()
        return MonthOutput(month_tier, common, fallbacks, paid_total, revenue, rows_per_group,
                           details if plan.keep_worker_months else None, credits)

    def step(self, m: int) -> MonthOutput:
        """demand + apply with no budget: one call per chunk and month."""
        unscaled = [PPB] * len(self.plan.arms)
        self.demand(m, unscaled)
        return self.apply(m, unscaled, unscaled)

    # -- helpers -------------------------------------------------------------

    def _prices(self, m: int) -> list:
        """The ("price", rates) keys some arm needs in month m (a replay key prices two)."""
        keys = []
        for arm in self.plan.arms:
            for key in arm[m].share_keys:
                if key is not None and key[0] == "masked":
                    key = key[1]  # the opt-outs drop priced sums: the row pass prices the key itself
                if key is None or key[0] == "recorded":
                    continue
                if key[0] == "price":
                    keys.append(key)
                else:
                    _, rates, base, _j = key
                    keys.extend(("price", r) for r in (rates, base) if any(r))
        return keys

    def _tiers(self) -> np.ndarray:
        if self._last_tier is None:
            self._last_tier = np.zeros(self.workers, dtype=np.intp)
        return self._last_tier

    def _credit(self, m: int, a: int, piece: _Piece | None, subsidy_si: np.ndarray | None):
        """RULES.md §11 for arm a at the close of month index m (and of any calendar month before it that has no
        activity at all), by `rules.crediting`, the ledger's own code: the month's si totals (worker + platform +
        subsidy paid) enter the pool, then the arm pack's rule (`pooled` or `per_month`, the version in force on
        the month's first day) credits. Returns the months credited by tier (each worker's last active tier) and,
        when worker-months are kept, the credits as (worker, month, close month, floor) arrays."""
        plan = self.plan
        if not plan.credit:
            return np.zeros(len(plan.tiers), dtype=np.int64), None
        if self._credit_states is None:
            self._credit_states = [
                CreditState(pool, np.full(self.workers, NONE, dtype=np.int64),
                            np.full(self.workers, NONE, dtype=np.int64), credited,
                            np.zeros(self.workers, dtype=np.int64))
                for pool, credited in zip(self.pool, self.credited)]
        state = self._credit_states[a]
        schedule = plan.schedules[a]
        closes = plan.closes[m]
        if self._si is None:
            self._si = np.zeros(self.workers, dtype=np.int64)  # reused: `accrue` keeps a copy
        si = self._si
        si.fill(0)
        if piece is not None:
            keys = plan.arms[a][m].share_keys
            total = piece.derived("si_total", (keys[SI_WORKER], keys[SI_PLATFORM]), lambda: _combine(
                [piece.value(keys[SI_WORKER]), piece.value(keys[SI_PLATFORM]), None], piece.count))
            si[piece.local] = total
            if subsidy_si is not None:
                _add_at(si, piece.local, subsidy_si)
        if not plan.keep_worker_months and all(schedule.mode(ordinal) == POOLED for ordinal in closes):
            # The fused kernel: the same state and counts as `accrue` + `credit` below (the credits' order
            # aside, which only the kept worker-months use); tests/simulations/test_engine_kernels.py.
            by_tier = np.zeros(len(plan.tiers), dtype=np.int64)
            for ordinal in closes:
                _accrue_and_credit_pooled(si if ordinal == closes[-1] else np.zeros(self.workers, dtype=np.int64),
                                          state.pool, state.last_credited, state.first_nonzero, state.credited,
                                          state.month_si, ordinal, schedule.starts, schedule.floors,
                                          schedule.lowest, self.credited_years[a],
                                          np.int64(1 << (ordinal // 12 - plan.first_year)), self._tiers(), by_tier)
                state.month = ordinal
            return by_tier, None
        done = []
        for ordinal in closes:
            if ordinal != closes[-1]:  # a calendar month with no activity at all: nothing accrues
                accrue(state, np.zeros(self.workers, dtype=np.int64), ordinal)
            else:
                accrue(state, si, ordinal)
            made = credit(state, ordinal, schedule)
            if len(made.worker):
                done.append((made, ordinal))
                _or_at(self.credited_years[a], made.worker, np.int64(1 << (ordinal // 12 - plan.first_year)))
        if not done:
            by_tier = np.zeros(len(plan.tiers), dtype=np.int64)
        else:
            workers = np.concatenate([made.worker for made, _ in done])
            by_tier = np.bincount(self._tiers()[workers], minlength=len(plan.tiers)).astype(np.int64)
        if not plan.keep_worker_months:
            return by_tier, None
        if not done:
            empty = np.zeros(0, dtype=np.int64)
            return by_tier, (empty, empty, empty, empty)
        return by_tier, (np.concatenate([made.worker + self.first_worker for made, _ in done]),
                         np.concatenate([made.month for made, _ in done]),
                         np.concatenate([np.full(len(made.worker), ordinal, dtype=np.int64) for made, ordinal in done]),
                         np.concatenate([made.floor_vnd for made, _ in done]))

    @staticmethod
    def _contributing(piece: _Piece, keys: tuple) -> np.ndarray:
        def compute() -> np.ndarray:
            total = np.zeros(piece.count, dtype=np.int64)
            for key in keys:
                value = piece.value(key)
                if value is not None:
                    total += value
            return total > 0
        return piece.derived("contributing", keys, compute)

    def _detail(self, piece: _Piece, m: int, keys: tuple, subsidies: list) -> pd.DataFrame:
        detail = pd.DataFrame({column: piece.value_or_zero(key) for column, key in zip(SHARE_COLUMNS, keys)})
        detail.insert(0, "worker", piece.local + self.first_worker)
        detail.insert(1, "month", self.plan.months[m])
        detail.insert(2, "tier", np.array(self.plan.tiers, dtype=object)[piece.tier])
        detail["gross_vnd"] = piece.gross_sums
        for k, scheme in enumerate(SCHEMES):
            detail[f"subsidy_{scheme}"] = subsidies[k] if subsidies[k] is not None else \
                np.zeros(piece.count, dtype=np.int64)
        return detail

    def totals(self) -> list[dict[str, np.ndarray]]:
        """Per arm, per-worker totals of the chunk (worker_totals columns before the derived ones)."""
        plan = self.plan
        result = []
        for a in range(len(plan.arms)):
            columns = {"gross_vnd": self.gross}
            for j, column in enumerate(SHARE_COLUMNS):
                columns[column] = self.shares[plan.arm_share_signal[a][j]]
            for k, scheme in enumerate(SCHEMES):
                columns[f"subsidy_{scheme}"] = self.subsidy[a][k]
            columns["pension_months"] = self.credited[a]  # months credited (RULES.md §11, the arm pack's mode)
            columns["pool_vnd"] = self.pool[a]  # si not yet spent on a credited month, after the last close
            columns["contributing_months"] = self.contributing[plan.arm_contributing_signal[a]]
            columns["subsidised_months"] = self.subsidised[a]
            columns["active_months"] = self.active
            columns["active_years"] = self.active_years  # bit y: worked in year first_year + y
            columns["credited_years"] = self.credited_years[a]  # bit y: that year's closes credited a month (§11)
            result.append(columns)
        return result


# ---------------------------------------------------------------------------
# Schedulers: the chunks in this process (threads) or on dask.distributed (actors)
# ---------------------------------------------------------------------------

def chunk_rows(population: Population, chunk_workers: int) -> list[tuple[int, int, list]]:
    """(first worker, workers, rows per month) per chunk; rows are views of the population's arrays."""
    activity = population.activity
    month_col = activity["month"].to_numpy()
    assert _non_decreasing(month_col), "activity must be sorted by month"
    columns = {"worker": activity["worker"].to_numpy(), "kind": activity["kind"].to_numpy(),
               "platform": activity["platform"].to_numpy(), "tier": activity["tier"].to_numpy(),
               "gross": activity["gross_vnd"].to_numpy()}
    if columns["gross"].dtype != np.int64:
        columns["gross"] = columns["gross"].astype(np.int64)
    if population.recorded:
        columns["recorded"] = activity[list(RECORDED_COLUMNS)].to_numpy(dtype=np.int64)
    months = np.array(population.months, dtype=month_col.dtype)
    month_bounds = np.searchsorted(month_col, months, side="left").tolist() + [len(month_col)]
    count = len(population.workers)
    edges = list(range(0, count, chunk_workers)) + [count]
    per_month_edges = []
    for m in range(len(months)):
        start, end = month_bounds[m], month_bounds[m + 1]
        per_month_edges.append((start + np.searchsorted(columns["worker"][start:end], edges)).tolist())
    chunks = []
    for c in range(len(edges) - 1):
        rows = []
        for m in range(len(months)):
            low, high = per_month_edges[m][c], per_month_edges[m][c + 1]
            rows.append({name: values[low:high] for name, values in columns.items()} if high > low else None)
        chunks.append((edges[c], edges[c + 1] - edges[c], rows))
    return chunks


class _Threads:
    """ChunkJobs in this process, a month's chunks spread over a thread pool."""

    def __init__(self, plan: _Plan, chunks: list, threads: int, workers: int, participation=None) -> None:
        self.plan = plan
        self.store = _Store(workers)
        self.jobs = [ChunkJob(plan, rows, first, count, self.store, _slice(participation, first, count))
                     for first, count, rows in chunks]
        self.pool = ThreadPoolExecutor(threads) if threads > 1 and len(self.jobs) > 1 else None

    def totals(self) -> list[dict[str, np.ndarray]]:
        """Per arm, the population-wide arrays the chunks added into (shared between arms where equal)."""
        whole = ChunkJob(self.plan, [], 0, self.store.workers, self.store)
        return whole.totals()

    def call(self, method: str, *args) -> list:
        if self.pool is None:
            return [getattr(job, method)(*args) for job in self.jobs]
        return list(self.pool.map(lambda job: getattr(job, method)(*args), self.jobs))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


class _Processes:
    """ChunkJobs in forked worker processes (every chunk c in process c mod n): they read the
    population copy-on-write, add into shared-memory totals, and answer each month's call over a pipe.
    For the CLI and the benchmark on one machine: the compiled kernels release the GIL but the Python
    between them does not, so threads overlap less (10M × 12, 2 arms: 14.0 s on threads, 11.0 s here). Not for a process that runs other threads
    (the HTTP service): it forks."""

    def __init__(self, plan: _Plan, chunks: list, processes: int, workers: int, participation=None) -> None:
        import multiprocessing

        _warm_up()  # compile (or load from the cache) once, before the children fork
        self.plan = plan
        self.store = _Store(workers, shared=True)
        self.jobs = [ChunkJob(plan, rows, first, count, self.store, _slice(participation, first, count))
                     for first, count, rows in chunks]
        context = multiprocessing.get_context("fork")
        self.children = []
        for index in range(min(processes, len(self.jobs))):
            ours, theirs = context.Pipe()
            child = context.Process(target=_serve, args=(self.jobs[index::processes], theirs), daemon=True)
            child.start()
            theirs.close()
            self.children.append((child, ours))

    def call(self, method: str, *args) -> list:
        for _, pipe in self.children:
            pipe.send((method, args))
        answers = [pipe.recv() for _, pipe in self.children]
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        count = len(self.children)
        return [answers[c % count][c // count] for c in range(len(self.jobs))]

    def totals(self) -> list[dict[str, np.ndarray]]:
        return ChunkJob(self.plan, [], 0, self.store.workers, self.store).totals()

    def close(self) -> None:
        for child, pipe in self.children:
            try:
                pipe.send(None)
            except OSError:
                pass
            child.join(timeout=30)
            pipe.close()
        self.children = []


def _serve(jobs: list[ChunkJob], pipe) -> None:
    """A forked worker: run each call on its chunks, answer with the results (or the exception)."""
    while True:
        message = pipe.recv()
        if message is None:
            return
        method, args = message
        try:
            pipe.send([getattr(job, method)(*args) for job in jobs])
        except Exception as error:  # noqa: BLE001 - handed to the coordinator, which raises it
            pipe.send(error)


class _DaskActors:
    """ChunkJobs as dask.distributed actors: each holds its chunk's rows and per-worker totals on one worker."""

    def __init__(self, plan: _Plan, chunks: list, client, participation=None) -> None:
        self.client = client
        # Rows go to the workers as data (scatter), not inside the task graph.
        futures = [client.submit(ChunkJob, plan, client.scatter([rows], hash=False)[0], first, workers, None,
                                 _slice(participation, first, workers), actor=True, pure=False)
                   for first, workers, rows in chunks]
        self.jobs = [future.result() for future in futures]

    def totals(self) -> list[dict[str, np.ndarray]]:
        """Per arm, each actor's per-worker arrays joined in chunk (worker) order."""
        per_chunk = self.call("totals")
        if not per_chunk:
            return []
        return [{column: np.concatenate([chunk[a][column] for chunk in per_chunk]) for column in per_chunk[0][a]}
                for a in range(len(per_chunk[0]))]

    def call(self, method: str, *args) -> list:
        pending = [getattr(job, method)(*args) for job in self.jobs]
        return [future.result() for future in pending]

    def close(self) -> None:
        self.jobs = []


def _scheduler(plan: _Plan, population: Population, chunk_workers: int, client, threads: int,
               processes: int = 1, participation: Participation | None = None):
    chunks = chunk_rows(population, chunk_workers)
    if client is not None:
        return _DaskActors(plan, chunks, client, participation)
    if processes > 1 and len(chunks) > 1:
        return _Processes(plan, chunks, processes, len(population.workers), participation)
    return _Threads(plan, chunks, threads, len(population.workers), participation)


def _slice(participation: Participation | None, first: int, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A chunk's opt-out draws and main kinds (views), or None when nobody can opt out."""
    if participation is None or not participation.any:
        return None
    return participation.draws[first:first + count], participation.kind[first:first + count]


# ---------------------------------------------------------------------------
# The coordinator
# ---------------------------------------------------------------------------

def run(population: Population, arms: Mapping[str, RulesPack], budget: Budget, *,
        keep_worker_months: bool = False,
        progress: Callable[[str, int], None] | None = None,
        chunk_workers: int = CHUNK_WORKERS, threads: int = THREADS, client=None,
        processes: int = 1, participation: Participation | None = None) -> dict[str, ArmResult]:
    """Every arm over the population; the first arm is the baseline the others are compared to.

    `participation` (`behaviour.plan`, for the same arms in the same order): who opts out of
    each arm in each month; None: nobody does.

    `progress(arm, month)` is called after each month of each arm (twice per month with
    `scale`: the demand pass, then the paying pass). `client`: a `distributed.Client` to
    run the chunks on; `processes` > 1: forked worker processes (the CLI and the benchmark; never in
    a process with other threads). The result is the same to the bit either way.
    """
    if not arms:
        raise ValueError("run needs at least one arm (the baseline)")
    if chunk_workers < 1:
        raise ValueError(f"chunk_workers must be ≥ 1, got {chunk_workers}")
    names = list(arms)
    packs = [arms[name] for name in names]
    plan = make_plan(population, packs, keep_worker_months, participation)
    factors: list[dict[int, int]] = [{} for _ in names]
    if budget.strategy == "scale":
        # Demand first (no budget), then the same run paying limit/demand of every subsidy.
        dry = _pass(population, dataclasses.replace(plan, credit=False), [_BudgetState(Budget("none", None, budget.period)) for _ in names],
                    names, chunk_workers, threads, client, progress, collect=False, processes=processes,
                    participation=participation)
        for a, state in enumerate(dry):
            for key, demand in state.demand.items():
                factors[a][key] = PPB if demand <= budget.limit_vnd else budget.limit_vnd * PPB // demand
    states = [_BudgetState(budget, factors[a]) for a in range(len(names))]
    return _pass(population, plan, states, names, chunk_workers, threads, client, progress, collect=True,
                 packs=packs, processes=processes, participation=participation)


def _pass(population: Population, plan: _Plan, states: list[_BudgetState], names: list[str], chunk_workers: int,
          threads: int, client, progress, *, collect: bool, packs: list[RulesPack] | None = None,
          processes: int = 1, participation: Participation | None = None):
    arms = len(names)
    jobs = _scheduler(plan, population, chunk_workers, client, threads, processes, participation)
    month_tier_rows: list[list[dict]] = [[] for _ in range(arms)]
    revenue_blocks: list[list[pd.DataFrame]] = [[] for _ in range(arms)]
    detail_blocks: list[list[pd.DataFrame]] = [[] for _ in range(arms)]
    credit_blocks: list[list[tuple]] = [[] for _ in range(arms)]
    fallbacks = [0] * arms
    try:
        for m, month in enumerate(plan.months):
            scale = [state.scale_factor(month) for state in states]
            if all(state.budget.strategy == "none" for state in states):
                outputs = jobs.call("step", m)
                for a, state in enumerate(states):
                    paid = sum(output.paid[a] for output in outputs)
                    state.decide(month, paid, paid)
                    state.record_paid(month, paid)
            else:
                sums = jobs.call("demand", m, scale)
                cap = [state.decide(month, sum(s[a][0] for s in sums), sum(s[a][1] for s in sums))
                       for a, state in enumerate(states)]
                outputs = jobs.call("apply", m, scale, cap)
                for a, state in enumerate(states):
                    state.record_paid(month, sum(output.paid[a] for output in outputs))
            if collect:
                _collect_month(plan, m, month, outputs, month_tier_rows, revenue_blocks, detail_blocks, fallbacks,
                               credit_blocks)
            if progress is not None:
                for name in names:
                    progress(name, month)
        if not collect:
            return states
        arm_totals = jobs.totals()
    finally:
        jobs.close()

    def derive(totals: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        arrays = [[np.ascontiguousarray(totals[name], dtype=np.int64) for name in names]
                  for names in ([f"subsidy_{s}" for s in SCHEMES], [f"{s}_worker" for s in SCHEMES],
                                [f"{s}_platform" for s in SCHEMES])]
        return _derive(np.ascontiguousarray(totals["gross_vnd"], dtype=np.int64), *(tuple(a) for a in arrays))

    if arms > 1 and threads > 1:  # the kernel releases the GIL: one arm per thread
        with ThreadPoolExecutor(min(threads, arms)) as pool:
            derived = list(pool.map(derive, arm_totals))
    else:
        derived = [derive(totals) for totals in arm_totals]
    results = {}
    for a, name in enumerate(names):
        columns: dict[str, np.ndarray] = {"worker": population.workers["worker"].to_numpy()}
        columns.update(arm_totals[a])
        for column, values in zip(("subsidy_vnd", "worker_vnd", "platform_vnd", "balance_vnd", "take_home_vnd"),
                                  derived[a]):
            columns[column] = values
        worker_totals = pd.DataFrame(columns, copy=False)  # arrays equal between arms are shared, not copied
        revenue = pd.concat(revenue_blocks[a], ignore_index=True) if revenue_blocks[a] else \
            pd.DataFrame(columns=["month", "platform", "kind", *SHARE_COLUMNS])
        revenue["platform"] = [population.platforms[p] for p in revenue["platform"].tolist()]
        revenue["kind"] = [KINDS[k] for k in revenue["kind"].tolist()]
        versions_used: list[str] = []
        crediting: list[str] = []
        for m, month_plan in enumerate(plan.arms[a]):
            if month_plan.version.version_id not in versions_used:
                versions_used.append(month_plan.version.version_id)
            for ordinal in plan.closes[m]:
                if plan.schedules[a].mode(ordinal) not in crediting:
                    crediting.append(plan.schedules[a].mode(ordinal))
        results[name] = ArmResult(
            name=name, pack=packs[a], versions_used=versions_used, worker_totals=worker_totals,
            by_month_tier=pd.DataFrame(month_tier_rows[a]), revenue=revenue, budget=states[a].frame(),
            worker_months=pd.concat(detail_blocks[a], ignore_index=True) if detail_blocks[a] else None,
            tier_fallbacks=fallbacks[a], credits=_credits_frame(credit_blocks[a]) if plan.keep_worker_months else None,
            crediting=tuple(crediting), first_year=plan.first_year)
    return results


def _credits_frame(blocks: list[tuple]) -> pd.DataFrame:
    """One row per credited month: worker, month and close_month (YYYYMM), floor_vnd; by close, worker, month."""
    parts = [np.concatenate([block[i] for block in blocks]) if blocks else np.zeros(0, dtype=np.int64)
             for i in range(4)]
    frame = pd.DataFrame({"worker": parts[0], "month": ordinal_month(parts[1]),
                          "close_month": ordinal_month(parts[2]), "floor_vnd": parts[3]})
    return frame.sort_values(["close_month", "worker", "month"], ignore_index=True)


def _collect_month(plan: _Plan, m: int, month: int, outputs: list[MonthOutput],
                   month_tier_rows, revenue_blocks, detail_blocks, fallbacks, credit_blocks) -> None:
    rows_per_group = sum(output.revenue_rows for output in outputs)
    groups = np.flatnonzero(rows_per_group)
    for a, arm in enumerate(plan.arms):
        table = sum(output.month_tier[a] for output in outputs)
        common = sum(output.month_tier_common[a] for output in outputs)
        fallbacks[a] += sum(output.fallbacks[a] for output in outputs)
        for t, tier_name in enumerate(plan.tiers):
            if common[t, 0] == 0 and common[t, 2] == 0:
                continue
            for k, scheme in enumerate(SCHEMES):
                month_tier_rows[a].append({
                    "month": month, "tier": tier_name, "scheme": scheme,
                    "own_vnd": int(table[t, k, 0]), "subsidy_demand_vnd": int(table[t, k, 1]),
                    "subsidy_vnd": int(table[t, k, 2]), "workers_subsidised": int(table[t, k, 3]),
                    "workers_active": int(common[t, 0]), "workers_contributing": int(common[t, 1]),
                    "pension_months": int(common[t, 2]),
                })
        block = pd.DataFrame({"month": np.full(len(groups), month, dtype=np.int64),
                              "platform": groups // len(KINDS), "kind": groups % len(KINDS)})
        for column, key in zip(SHARE_COLUMNS, arm[m].share_keys):
            values = np.zeros(len(groups), dtype=np.int64)
            for output in outputs:
                if key is not None and key in output.revenue:
                    values += output.revenue[key][groups]
            block[column] = values
        revenue_blocks[a].append(block)
        if plan.keep_worker_months:
            detail_blocks[a].extend(output.worker_months[a] for output in outputs if output.worker_months)
            credit_blocks[a].extend(output.credits[a] for output in outputs if output.credits)

"""The engine: contributions and state subsidy over a population's worker-months, vectorised.

For each arm (the baseline pack, then each reform's pack) and each month in order:

1. the version in force on the month's first day (reform dates are month starts);
2. the six shares of every activity row: `rules.shares_matrix_vnd(kind, gross, version)`
   — the ledger's own array arithmetic (RULES.md §4). For a ledger replay the row also
   carries the shares the ledger booked; the engine adds the replay's rounding
   correction `recorded − priced(baseline)`, so the baseline reproduces the books to
   the dong and a reform differs from it only by what the reform changes;
3. own contributions per worker-month and scheme (the worker party, summed over
   platforms and kinds), then `rules.subsidy_array_vnd` by the tier in force
   (RULES.md §6), zero for a worker who has used `max_subsidised_months`;
4. the budget strategy: `cap` pays months in order until the period's limit is spent
   (the month that crosses it is paid pro rata, later months nothing); `scale` pays
   every month of the period the same fraction limit / demand. Scaling floors each
   subsidy, so the total paid never exceeds the limit;
5. totals accumulate per worker, per (month, tier, scheme) and per (month, platform,
   kind): memory is one month of rows plus a few arrays per worker.

Integers throughout: int64 arrays, and `scale_floor` switches to Python ints where a
product could pass 2^63. No clock, no randomness.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from rules import (
    BASE_TIER,
    SCHEMES,
    RulesPack,
    shares_matrix_vnd,
    subsidy_array_vnd,
)
from simulations.population import RECORDED_COLUMNS, SHARE_COLUMNS, Population
from simulations.scenario import Budget

WORKER_SHARE_INDEX = {scheme: 2 * index for index, scheme in enumerate(SCHEMES)}  # SHARE_KEYS order
INT64_SAFE = 2**62
PPB = 1_000_000_000


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


@dataclass
class _BudgetState:
    budget: Budget
    factors_ppb: Mapping[int, int] = field(default_factory=dict)  # period -> scale factor (scale strategy)
    remaining: dict[int, int] = field(default_factory=dict)
    demand: dict[int, int] = field(default_factory=dict)
    paid: dict[int, int] = field(default_factory=dict)

    def period(self, month: int) -> int:
        return 0 if self.budget.period == "horizon" else month // 100

    def apply(self, month: int, subsidy: np.ndarray) -> np.ndarray:
        key = self.period(month)
        demanded = int(subsidy.sum())
        self.demand[key] = self.demand.get(key, 0) + demanded
        if self.budget.strategy != "none":
            if self.budget.strategy == "scale":
                subsidy = scale_floor(subsidy, self.factors_ppb.get(key, PPB))
            left = self.remaining.setdefault(key, int(self.budget.limit_vnd))
            total = int(subsidy.sum())
            if total > left:  # cap (and a guard for scale): pro rata on what is left, then the period is spent
                subsidy = scale_floor(subsidy, left * PPB // total)
                self.remaining[key] = 0  # the dong floored away stays unspent: later months get nothing
            else:
                self.remaining[key] = left - total
            assert self.remaining[key] >= 0, "the budget must never be overspent"
        self.paid[key] = self.paid.get(key, 0) + int(subsidy.sum())
        return subsidy

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


def run(population: Population, arms: Mapping[str, RulesPack], budget: Budget, *,
        keep_worker_months: bool = False,
        progress: Callable[[str, int], None] | None = None) -> dict[str, ArmResult]:
    """Every arm over the population; the first arm is the baseline the others are compared to.

    `progress(arm, month)` is called after each month of each arm.
    """
    if not arms:
        raise ValueError("run needs at least one arm (the baseline)")
    baseline = next(iter(arms.values()))
    results = {}
    for name, pack in arms.items():
        factors: dict[int, int] = {}
        if budget.strategy == "scale":
            # Demand first (no budget), then the same run paying limit/demand of every subsidy.
            dry = _run_arm(name, population, pack, baseline, Budget("none", None, budget.period), False, None)
            for _, row in dry.budget.iterrows():
                key = 0 if budget.period == "horizon" else int(row["period"])
                demand = int(row["demand_vnd"])
                factors[key] = PPB if demand <= budget.limit_vnd else budget.limit_vnd * PPB // demand
        results[name] = _run_arm(name, population, pack, baseline, budget, keep_worker_months, progress, factors)
    return results


def _run_arm(name: str, population: Population, pack: RulesPack, baseline: RulesPack, budget: Budget,
             keep_worker_months: bool, progress, factors: Mapping[int, int] | None = None) -> ArmResult:
    activity = population.activity
    worker = activity["worker"].to_numpy()
    month_col = activity["month"].to_numpy()
    kind = activity["kind"].to_numpy().astype(np.int64)
    platform = activity["platform"].to_numpy()
    tier = activity["tier"].to_numpy()
    gross = activity["gross_vnd"].to_numpy().astype(np.int64)
    recorded = activity[list(RECORDED_COLUMNS)].to_numpy(dtype=np.int64) if population.recorded else None
    assert (np.diff(month_col) >= 0).all(), "activity must be sorted by month"
    months = np.unique(month_col)
    bounds = np.searchsorted(month_col, months, side="left").tolist() + [len(month_col)]

    count = len(population.workers)
    state = _BudgetState(budget, dict(factors or {}))
    used_months = np.zeros(count, dtype=np.int64)
    totals = {column: np.zeros(count, dtype=np.int64) for column in
              ("gross_vnd", *SHARE_COLUMNS, *(f"subsidy_{s}" for s in SCHEMES), "pension_months",
               "contributing_months", "subsidised_months", "active_months")}
    month_tier_rows: list[dict] = []
    revenue_blocks: list[pd.DataFrame] = []
    detail_blocks: list[pd.DataFrame] = []
    versions_used: list[str] = []
    fallbacks = 0
    tiers = population.tiers

    for index, month in enumerate(months.tolist()):
        start, end = bounds[index], bounds[index + 1]
        version = pack.version_on(first_day(month))
        if version.version_id not in versions_used:
            versions_used.append(version.version_id)
        shares = shares_matrix_vnd(kind[start:end], gross[start:end], version)
        if recorded is not None:
            base_version = baseline.version_on(first_day(month))
            shares = shares + (recorded[start:end] - shares_matrix_vnd(kind[start:end], gross[start:end], base_version))

        rows_worker = worker[start:end]
        starts = np.flatnonzero(np.r_[True, rows_worker[1:] != rows_worker[:-1]])
        wm_worker = rows_worker[starts]
        assert (np.diff(wm_worker) > 0).all(), "activity must be sorted by worker within a month"
        wm_shares = np.add.reduceat(shares, starts, axis=0) if len(starts) else np.zeros((0, 6), np.int64)
        wm_gross = np.add.reduceat(gross[start:end], starts) if len(starts) else np.zeros(0, np.int64)
        wm_tier = tier[start:end][starts]

        known = np.array([t in version.tier_rate_ppm for t in tiers])
        fallbacks += int((~known[wm_tier]).sum())
        rate_of_tier = np.array([version.tier_rate_ppm.get(t, version.tier_rate_ppm[BASE_TIER]) for t in tiers],
                                dtype=np.int64)
        rate = rate_of_tier[wm_tier]
        eligible = np.ones(len(wm_worker), dtype=bool) if version.max_subsidised_months is None else \
            used_months[wm_worker] < version.max_subsidised_months
        demand = np.zeros((len(wm_worker), len(SCHEMES)), dtype=np.int64)
        for k, scheme in enumerate(SCHEMES):
            own = wm_shares[:, WORKER_SHARE_INDEX[scheme]]
            demand[:, k] = np.where(eligible, subsidy_array_vnd(own, scheme, rate, version), 0)
        subsidy = state.apply(month, demand)
        paid_any = subsidy.sum(axis=1) > 0
        used_months[wm_worker] += paid_any

        own_si = wm_shares[:, WORKER_SHARE_INDEX["si"]]
        counts = own_si >= version.pension_floor_contribution_vnd
        contributing = (wm_shares[:, [0, 2, 4]].sum(axis=1) > 0)
        totals["gross_vnd"][wm_worker] += wm_gross
        for j, column in enumerate(SHARE_COLUMNS):
            totals[column][wm_worker] += wm_shares[:, j]
        for k, scheme in enumerate(SCHEMES):
            totals[f"subsidy_{scheme}"][wm_worker] += subsidy[:, k]
        totals["pension_months"][wm_worker] += counts
        totals["contributing_months"][wm_worker] += contributing
        totals["subsidised_months"][wm_worker] += paid_any
        totals["active_months"][wm_worker] += 1

        for t, tier_name in enumerate(tiers):
            mask = wm_tier == t
            if not mask.any():
                continue
            for k, scheme in enumerate(SCHEMES):
                month_tier_rows.append({
                    "month": month, "tier": tier_name, "scheme": scheme,
                    "own_vnd": int(wm_shares[mask, WORKER_SHARE_INDEX[scheme]].sum()),
                    "subsidy_demand_vnd": int(demand[mask, k].sum()),
                    "subsidy_vnd": int(subsidy[mask, k].sum()),
                    "workers_subsidised": int((subsidy[mask, k] > 0).sum()),
                    "workers_active": int(mask.sum()),
                    "workers_contributing": int(contributing[mask].sum()),
                    "pension_months": int(counts[mask].sum()),
                })
        block = pd.DataFrame(shares, columns=list(SHARE_COLUMNS))
        block["platform"] = platform[start:end]
        block["kind"] = kind[start:end]
        summed = block.groupby(["platform", "kind"], sort=True).sum().reset_index()
        summed.insert(0, "month", month)
        revenue_blocks.append(summed)
        if keep_worker_months:
            detail = pd.DataFrame(wm_shares, columns=list(SHARE_COLUMNS))
            detail.insert(0, "worker", wm_worker)
            detail.insert(1, "month", month)
            detail.insert(2, "tier", np.array(tiers, dtype=object)[wm_tier])
            detail["gross_vnd"] = wm_gross
            for k, scheme in enumerate(SCHEMES):
                detail[f"subsidy_{scheme}"] = subsidy[:, k]
            detail_blocks.append(detail)
        if progress is not None:
            progress(name, month)

    worker_totals = population.workers[["worker"]].copy()
    for column, values in totals.items():
        worker_totals[column] = values
    worker_totals["subsidy_vnd"] = sum(totals[f"subsidy_{s}"] for s in SCHEMES)
    worker_totals["worker_vnd"] = sum(totals[f"{s}_worker"] for s in SCHEMES)
    worker_totals["platform_vnd"] = sum(totals[f"{s}_platform"] for s in SCHEMES)
    worker_totals["balance_vnd"] = (worker_totals["worker_vnd"] + worker_totals["platform_vnd"]
                                    + worker_totals["subsidy_vnd"])
    worker_totals["take_home_vnd"] = worker_totals["gross_vnd"] - worker_totals["worker_vnd"]
    revenue = pd.concat(revenue_blocks, ignore_index=True) if revenue_blocks else \
        pd.DataFrame(columns=["month", "platform", "kind", *SHARE_COLUMNS])
    revenue["platform"] = [population.platforms[p] for p in revenue["platform"].tolist()]
    revenue["kind"] = [("ride", "delivery", "order")[k] for k in revenue["kind"].tolist()]
    return ArmResult(
        name=name, pack=pack, versions_used=versions_used, worker_totals=worker_totals,
        by_month_tier=pd.DataFrame(month_tier_rows), revenue=revenue, budget=state.frame(),
        worker_months=pd.concat(detail_blocks, ignore_index=True) if detail_blocks else None,
        tier_fallbacks=fallbacks)

"""The answers a ministry asks, as tables: cost, revenue, coverage, who gains and loses.

Every table has an `arm` column (the baseline first, then each reform) so reforms sit
side by side; `*_delta_vnd` columns compare a reform with the baseline. Money stays
int64 VND; only shares and Gini coefficients (statistics, not money) are floats.

Winner/loser bands compare a worker's value under a reform with the baseline, in
integer arithmetic (no float threshold can misplace a worker):

| band | rule on d = reform − baseline, b = baseline |
|---|---|
| `lose_more_than_5pct` | 20·d < −b |
| `lose_0.1_to_5pct` | −b ≤ 20·d and 1000·d < −b |
| `no_change` | |1000·d| ≤ b (and d = 0 when b = 0) |
| `gain_0.1_to_5pct` | b < 1000·d and 20·d ≤ b |
| `gain_more_than_5pct` | 20·d > b (any gain from nothing) |
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rules import SCHEMES
from simulations.engine import ArmResult
from simulations.population import SHARE_COLUMNS, Population

BANDS = ("lose_more_than_5pct", "lose_0.1_to_5pct", "no_change", "gain_0.1_to_5pct", "gain_more_than_5pct")
DECILES = 10
TOP_DECILES_FOR_LEAKAGE = 3  # subsidy reaching the richest 30 % by gross income counts as leakage
COVERAGE_GROUPS = ("tier", "region", "sex")


@dataclass
class Results:
    tables: dict[str, pd.DataFrame]
    lorenz: dict[str, dict[str, np.ndarray]]  # arm -> measure -> (population share, value share) points


def bands(baseline: np.ndarray, reform: np.ndarray) -> np.ndarray:
    """Band index 0..4 (BANDS order) per worker; integer comparisons only."""
    b = np.asarray(baseline, dtype=np.int64)
    d = np.asarray(reform, dtype=np.int64) - b
    assert (np.abs(d) < 2**53).all() and (np.abs(b) < 2**53).all(), "values too large for exact banding"
    base = np.abs(b)
    result = np.full(len(b), 2, dtype=np.int8)
    result[1000 * d < -base] = 1
    result[20 * d < -base] = 0
    result[1000 * d > base] = 3
    result[20 * d > base] = 4
    return result


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, 1 = one holds all); 0 for an all-zero vector."""
    x = np.sort(np.maximum(np.asarray(values, dtype=np.float64), 0))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * x).sum() / (n * x.sum()))


def lorenz(values: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(np.maximum(np.asarray(values, dtype=np.float64), 0))
    cumulative = np.concatenate([[0.0], np.cumsum(x)])
    share_population = np.linspace(0, 1, points)
    index = np.rint(share_population * len(x)).astype(np.int64)
    total = cumulative[-1] or 1.0
    return share_population, cumulative[index] / total


def income_deciles(gross_vnd: np.ndarray) -> np.ndarray:
    """Decile 1..10 by gross income over the horizon; ties broken by worker order (deterministic)."""
    n = len(gross_vnd)
    order = np.argsort(np.asarray(gross_vnd), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank * DECILES // max(n, 1) + 1


def compute(population: Population, arms: Mapping[str, ArmResult]) -> Results:
    names = list(arms)
    baseline = arms[names[0]]
    workers = population.workers
    decile = income_deciles(baseline.worker_totals["gross_vnd"].to_numpy())
    tables: dict[str, pd.DataFrame] = {}

    budget = []
    for name, arm in arms.items():
        frame = arm.by_month_tier.copy()
        frame.insert(0, "arm", name)
        frame.insert(2, "year", frame["month"] // 100)
        budget.append(frame)
    tables["budget_by_month_tier_scheme"] = pd.concat(budget, ignore_index=True)
    by_year = tables["budget_by_month_tier_scheme"].groupby(["arm", "year", "scheme"], sort=False)[
        ["subsidy_demand_vnd", "subsidy_vnd"]].sum().reset_index()
    tables["budget_by_year_scheme"] = by_year
    tables["budget_periods"] = pd.concat([arm.budget.assign(arm=name) for name, arm in arms.items()],
                                         ignore_index=True)

    revenue = []
    for name, arm in arms.items():
        long = arm.revenue.melt(id_vars=["month", "platform", "kind"], value_vars=list(SHARE_COLUMNS),
                                var_name="share", value_name="amount_vnd")
        long[["scheme", "party"]] = long["share"].str.split("_", n=1, expand=True)
        long.insert(0, "arm", name)
        revenue.append(long.drop(columns="share"))
    revenue_frame = pd.concat(revenue, ignore_index=True)
    revenue_frame["amount_vnd"] = revenue_frame["amount_vnd"].astype(np.int64)
    tables["revenue_by_scheme_party_kind"] = revenue_frame.groupby(
        ["arm", "scheme", "party", "kind"], sort=False)["amount_vnd"].sum().reset_index()
    tables["revenue_by_platform_scheme"] = revenue_frame.groupby(
        ["arm", "platform", "scheme"], sort=False)["amount_vnd"].sum().reset_index()

    coverage = []
    for name, arm in arms.items():
        totals = arm.worker_totals
        for group in COVERAGE_GROUPS:
            frame = pd.DataFrame({
                "group": workers[group].astype(str).to_numpy(),
                "workers": 1,
                "workers_active": (totals["active_months"] > 0).to_numpy(),
                "workers_contributing": (totals["contributing_months"] > 0).to_numpy(),
                "workers_with_a_pension_month": (totals["pension_months"] > 0).to_numpy(),
                "pension_months": totals["pension_months"].to_numpy(),
                "workers_subsidised": (totals["subsidy_vnd"] > 0).to_numpy(),
                "subsidy_vnd": totals["subsidy_vnd"].to_numpy(),
                "balance_vnd": totals["balance_vnd"].to_numpy(),
            })
            summed = frame.groupby("group", sort=True).sum(numeric_only=True).reset_index()
            summed.insert(0, "by", group)
            summed.insert(0, "arm", name)
            coverage.append(summed)
    tables["coverage"] = pd.concat(coverage, ignore_index=True)

    decile_rows = []
    lorenz_points: dict[str, dict[str, np.ndarray]] = {}
    inequality = []
    base_totals = baseline.worker_totals
    for name, arm in arms.items():
        totals = arm.worker_totals
        lorenz_points[name] = {}
        for measure in ("subsidy_vnd", "balance_vnd"):
            values = totals[measure].to_numpy()
            inequality.append({"arm": name, "measure": measure, "gini": round(gini(values), 6)})
            lorenz_points[name][measure] = np.vstack(lorenz(values))
        if name == names[0]:
            continue
        for measure in ("balance_vnd", "take_home_vnd"):
            band = bands(base_totals[measure].to_numpy(), totals[measure].to_numpy())
            delta = totals[measure].to_numpy() - base_totals[measure].to_numpy()
            for d in range(1, DECILES + 1):
                mask = decile == d
                row = {"arm": name, "measure": measure, "decile": d, "workers": int(mask.sum()),
                       "gross_vnd": int(base_totals["gross_vnd"].to_numpy()[mask].sum()),
                       "delta_vnd": int(delta[mask].sum())}
                counts = np.bincount(band[mask], minlength=len(BANDS))
                row.update({b: int(c) for b, c in zip(BANDS, counts)})
                decile_rows.append(row)
    tables["deciles"] = pd.DataFrame(decile_rows, columns=["arm", "measure", "decile", "workers", "gross_vnd",
                                                           "delta_vnd", *BANDS])
    tables["inequality"] = pd.DataFrame(inequality)

    summary = []
    tiers = workers["tier"].astype(str).to_numpy()
    targeted = np.isin(tiers, ["poor", "near_poor"])
    for name, arm in arms.items():
        totals = arm.worker_totals
        active = totals["active_months"].to_numpy() > 0
        subsidy = totals["subsidy_vnd"].to_numpy()
        row = {
            "arm": name,
            "subsidy_vnd": int(subsidy.sum()),
            **{f"subsidy_{s}_vnd": int(totals[f"subsidy_{s}"].sum()) for s in SCHEMES},
            "worker_vnd": int(totals["worker_vnd"].sum()),
            "platform_vnd": int(totals["platform_vnd"].sum()),
            "workers_active": int(active.sum()),
            "workers_contributing": int((totals["contributing_months"] > 0).sum()),
            "pension_months": int(totals["pension_months"].sum()),
            "workers_subsidised": int((subsidy > 0).sum()),
            # Undercoverage: active poor / near-poor workers the subsidy never reached.
            "undercoverage_workers": int((targeted & active & (subsidy == 0)).sum()),
            # Leakage: subsidy paid to the richest deciles by gross income (per mille of the total).
            "leakage_per_mille": int(subsidy[decile > DECILES - TOP_DECILES_FOR_LEAKAGE].sum() * 1000
                                     // max(int(subsidy.sum()), 1)),
            "versions": " ".join(arm.versions_used),
        }
        summary.append(row)
    summary_frame = pd.DataFrame(summary)
    for column in ("subsidy_vnd", "worker_vnd", "platform_vnd", "workers_contributing", "pension_months",
                   "workers_subsidised"):
        summary_frame[f"{column.removesuffix('_vnd')}_delta" + ("_vnd" if column.endswith("_vnd") else "")] = \
            summary_frame[column] - summary_frame.loc[0, column]
    tables["summary"] = summary_frame
    return Results(tables, lorenz_points)

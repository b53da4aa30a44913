"""The results tables at national scale: every count and money total weighted, as the brief's figures are.

The engine and `results.py` count the simulated sample (one row per synthetic worker;
their hash is the run record's). What a reader sees below the brief — the report's
charts and tables, the policy page's — comes from here: the same tables with each
worker counted `Population.weights` times (the calibration's national workers each
person stands for; 1 each without a calibration, which gives back the sample's figures
exactly).

How each figure is weighted:

- **per worker** (exact): a table built from the engine's per-worker totals — the summary,
  coverage by group and by year, revenue by scheme and party, the deciles, leakage — sums
  weight × the worker's figure. A count is the sum of the weights of the workers counted.
- **per month** (spread): the engine adds subsidies by month, tier and scheme, not by
  worker, so a month's national subsidy is the arm's national total of the scheme
  (exact, per worker) spread over the months in proportion to the sample's months. The
  same for revenue by kind of work (within scheme and party) and the 10-year window.
- **rounded once, adding up**: each total is rounded once (`brief._weighted`, the
  brief's own rule) and shared out over the rows of a table by largest remainders
  (`apportion`), so a table's rows add up to the national total the brief states — to
  the dong and to the worker.
- **per-worker figures** (deciles, means): deciles cut the workers, ranked by baseline
  take-home pay (ties in worker order), at tenths of the weighted population — with
  weights 1 exactly `results.income_deciles`'s rule r·10 // n + 1 — and a mean is
  Σ weight × figure / Σ weight.

Inequality (Gini, Lorenz curves) is of the weighted population too. Left as the
sample's, and labelled so: the budget limits of a scenario (a limit is set for the
simulated population), the pension projection (six sample workers) and the bootstrap's
resample count.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rules import PPM, SCHEMES, round_half_up
from simulations.results import (BANDS, DECILE_MEASURES, DECILES, INEQUALITY_MEASURES, TOP_DECILES_FOR_LEAKAGE,
                                  bands)

WEIGHTED = "national estimate, weighted"  # the label a table's caption carries (brief.WORDS has it in words)


def _sum(weights: np.ndarray, values: np.ndarray) -> float:
    """Σ weight × value in float64 (numpy's pairwise sum: no BLAS call, whose threads spin on a busy machine)."""
    return float(np.multiply(weights, values, dtype=np.float64).sum())


def _group_sums(codes: np.ndarray, groups: int, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ weight × value per group code 0..groups-1, in one pass."""
    return np.bincount(codes, weights=np.multiply(weights, values, dtype=np.float64), minlength=groups)


def _codes(labels: pd.Series | None, count: int, groups: list[str]) -> np.ndarray:
    """Each worker's index in `groups` by its label as text (`results._group_codes`' "nan" for a missing one);
    a label not among them: len(groups), summed apart. None: every worker is group 0 ("all")."""
    if labels is None:
        return np.zeros(count, dtype=np.intp)
    index = {group: k for k, group in enumerate(groups)}
    inverse, uniques = pd.factorize(labels, use_na_sentinel=True)
    lookup = np.array([index.get(str(u), len(groups)) for u in uniques] + [index.get("nan", len(groups))],
                      dtype=np.intp)
    return lookup[inverse]  # the sentinel -1 reads the last entry: "nan"


def total(weights: np.ndarray, values: np.ndarray) -> int:
    """Σ weight × value, rounded once (the brief's rule)."""
    return int(round(_sum(weights, values)))


def apportion(whole: int, parts) -> np.ndarray:
    """Integers, one per part, adding up to `whole` exactly: each part's floor, and the difference shared one
    by one by largest remainder (ties to the earlier part). `parts` are the rows' own weighted sums (adding
    up to about `whole`); integer parts that add up to `whole` come back unchanged."""
    exact = np.asarray(parts, dtype=np.float64)
    if len(exact) == 0:
        return np.zeros(0, dtype=np.int64)
    floors = np.floor(exact)
    out = floors.astype(np.int64)
    more, extra = divmod(int(whole) - int(out.sum()), len(out))
    out += more
    out[np.argsort(-(exact - floors), kind="stable")[:extra]] += 1
    return out


def spread(whole: int, shape) -> np.ndarray:
    """`whole` shared over rows in proportion to `shape` (the sample's figures of those rows), adding up."""
    shape = np.asarray(shape, dtype=np.float64)
    share = float(shape.sum())
    if share == 0:
        return apportion(whole, np.full(len(shape), whole / max(len(shape), 1)))
    return apportion(whole, shape if share == whole else shape * (whole / share))


def weighted_deciles(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Decile 1..10 of each worker: ranked by value (ties in worker order), the worker whose preceding
    workers weigh c of W in all is in decile 10·c // W + 1 (with weights 1: r·10 // n + 1)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = np.asarray(weights, dtype=np.float64)[order]
    before = np.concatenate(([0.0], np.cumsum(ordered)[:-1]))
    whole = float(ordered.sum())
    decile = np.ones(len(values), dtype=np.int64)
    if whole > 0:
        decile[order] = np.minimum(np.floor(before * DECILES / whole).astype(np.int64) + 1, DECILES)
    return decile


def weighted_inequality(values: np.ndarray, weights: np.ndarray, points: int = 101) -> tuple[float, np.ndarray]:
    """(Gini, Lorenz points) of max(value, 0) over the weighted population: the Lorenz curve through
    (Σ weights so far ÷ W, Σ weight × value so far ÷ total), the Gini one minus twice the area under it
    (trapezoids: with weights 1, the sample's Σ (2i − n − 1)·x_i ÷ (n·Σx)); the curve read at `points`
    shares of the population."""
    x = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
    order = np.argsort(x, kind="stable")
    w, x = np.asarray(weights, dtype=np.float64)[order], x[order]
    people = np.concatenate(([0.0], np.cumsum(w)))
    money = np.concatenate(([0.0], np.cumsum(w * x)))
    grid = np.linspace(0, 1, points)
    if people[-1] <= 0 or money[-1] <= 0:
        return 0.0, np.vstack((grid, grid * 0))
    share, held = people / people[-1], money / money[-1]
    gini = 1.0 - float(np.sum((share[1:] - share[:-1]) * (held[1:] + held[:-1])))
    return round(gini, 6), np.vstack((grid, np.interp(grid, share, held)))


def leakage_per_mille(weights: np.ndarray, gross: np.ndarray, subsidy: np.ndarray) -> int:
    """The weighted share (‰) of the subsidy paid to the richest 30 % of workers by gross income."""
    decile = weighted_deciles(gross, weights)
    top = decile > DECILES - TOP_DECILES_FOR_LEAKAGE
    paid = _sum(weights, subsidy)
    return int(_sum(weights[top], subsidy[top]) * 1000 // paid) if paid > 0 else 0


def national_tables(run) -> dict[str, pd.DataFrame]:
    """The tables a reader sees, weighted to national scale (module docstring). Same names and columns as
    `run.results.tables` where the table exists there; `budget_by_month` is the monthly subsidy per arm."""
    weights = np.asarray(run.population.weights, dtype=np.float64)
    arms = run.arms
    names = list(arms)
    sample = run.results.tables
    tables: dict[str, pd.DataFrame] = {}
    scheme_totals = {name: apportion(total(weights, arms[name].worker_totals["subsidy_vnd"].to_numpy()),
                                     [_sum(weights, arms[name].worker_totals[f"subsidy_{s}"].to_numpy())
                                      for s in SCHEMES])
                     for name in names}

    # -- budget by month and scheme (spread), by year, by month ------------------------------
    by_month = sample["budget_by_month_tier_scheme"].groupby(["arm", "month", "year", "scheme"], sort=False)[
        ["subsidy_demand_vnd", "subsidy_vnd"]].sum().reset_index()
    pieces = []
    for name in names:
        for index, scheme in enumerate(SCHEMES):
            rows = by_month[(by_month["arm"] == name) & (by_month["scheme"] == scheme)].copy()
            if rows.empty:
                continue
            paid = rows["subsidy_vnd"].to_numpy()
            national = int(scheme_totals[name][index])
            ratio = national / paid.sum() if paid.sum() else 0.0
            rows["subsidy_vnd"] = spread(national, paid)
            demand = rows["subsidy_demand_vnd"].to_numpy()
            rows["subsidy_demand_vnd"] = spread(int(round(demand.sum() * ratio)) if ratio else 0, demand)
            pieces.append(rows)
    months = pd.concat(pieces).sort_index() if pieces else by_month.iloc[0:0]  # the sample's row order
    tables["budget_by_year_scheme"] = months.groupby(["arm", "year", "scheme"], sort=False)[
        ["subsidy_demand_vnd", "subsidy_vnd"]].sum().reset_index()
    tables["budget_by_month"] = months.groupby(["arm", "month"], sort=False)["subsidy_vnd"].sum().reset_index()

    # -- the 10-year window (spread, as its months are) ---------------------------------------
    window = sample["budget_window"].copy()
    for name in names:
        mine = window["arm"] == name
        paid = int(arms[name].worker_totals["subsidy_vnd"].sum())
        ratio = int(scheme_totals[name].sum()) / paid if paid else 0.0
        for column in ("subsidy_nominal_vnd", "subsidy_real_vnd"):
            values = window.loc[mine, column].to_numpy()
            window.loc[mine, column] = spread(int(round(values.sum() * ratio)), values)
    tables["budget_window"] = window

    # -- revenue: scheme and party per worker (exact), kinds of work spread --------------------
    revenue = sample["revenue_by_scheme_party_kind"].copy()
    for name in names:
        totals = arms[name].worker_totals
        for (scheme, party), rows in revenue[revenue["arm"] == name].groupby(["scheme", "party"], sort=False):
            national = total(weights, totals[f"{scheme}_{party}"].to_numpy())
            revenue.loc[rows.index, "amount_vnd"] = spread(national, rows["amount_vnd"].to_numpy())
    tables["revenue_by_scheme_party_kind"] = revenue

    # -- deciles of baseline take-home pay (weighted), who gains ------------------------------
    base = arms[names[0]].worker_totals
    take_home = base["take_home_vnd"].to_numpy()
    decile = weighted_deciles(take_home, weights) - 1

    def by_decile(values: np.ndarray) -> np.ndarray:
        return apportion(total(weights, values), _group_sums(decile, DECILES, weights, values))

    ones = np.ones(len(weights))
    workers = by_decile(ones)
    participants = by_decile(base["active_months"].to_numpy() > 0)
    take_home_sums = by_decile(take_home)
    weight_sums = _group_sums(decile, DECILES, weights, ones)
    for measure, (column, delta_column) in DECILE_MEASURES.items():
        rows = []
        before = base[column].to_numpy().astype(np.int64)
        for name in names[1:]:
            after = arms[name].worker_totals[column].to_numpy().astype(np.int64)
            change = after - before
            band = bands(before, after)
            deltas, winners, losers = by_decile(change), by_decile(change > 0), by_decile(change < 0)
            banded = [by_decile(band == b) for b in range(len(BANDS))]
            change_sums = _group_sums(decile, DECILES, weights, change)
            for d in range(DECILES):
                mean = change_sums[d] / weight_sums[d] if weight_sums[d] else 0.0
                rows.append({"arm": name, "decile": d + 1, "workers": int(workers[d]),
                             "participants": int(participants[d]), "take_home_vnd": int(take_home_sums[d]),
                             delta_column: int(deltas[d]),
                             f"mean_{delta_column}": int(round(mean)) if delta_column.endswith("_vnd")
                             else round(mean, 4),
                             "winners": int(winners[d]), "losers": int(losers[d]),
                             "unchanged": int(workers[d]) - int(winners[d]) - int(losers[d]),
                             **{b: int(banded[k][d]) for k, b in enumerate(BANDS)}})
        tables[f"deciles_{measure}"] = pd.DataFrame(rows, columns=[
            "arm", "decile", "workers", "participants", "take_home_vnd", delta_column, f"mean_{delta_column}",
            "winners", "losers", "unchanged", *BANDS])

    # -- coverage by group (per worker, exact) -----------------------------------------------
    coverage = sample["coverage"]
    frame_rows = []
    population = run.population.workers
    for name in names:
        totals = arms[name].worker_totals
        subsidy = totals["subsidy_vnd"].to_numpy()
        columns = {"workers": ones, "workers_active": totals["active_months"].to_numpy() > 0,
                   "workers_contributing": totals["contributing_months"].to_numpy() > 0,
                   "workers_with_a_pension_month": totals["pension_months"].to_numpy() > 0,
                   "pension_months": totals["pension_months"].to_numpy(), "workers_subsidised": subsidy > 0,
                   "subsidy_vnd": subsidy, "balance_vnd": totals["balance_vnd"].to_numpy()}
        for by, shown in coverage[coverage["arm"] == name].groupby("by", sort=False):
            groups = shown["group"].astype(str).tolist()
            codes = _codes(population[by], len(weights), groups)
            figures = {column: apportion(total(weights, values) if column != "subsidy_vnd"
                                         else int(scheme_totals[name].sum()),
                                         _group_sums(codes, len(groups) + 1, weights, values)[:len(groups)])
                       for column, values in columns.items()}
            for k, group in enumerate(shown["group"].tolist()):
                frame_rows.append({"arm": name, "by": by, "group": group,
                                   **{column: int(values[k]) for column, values in figures.items()}})
    tables["coverage"] = pd.DataFrame(frame_rows, columns=list(coverage.columns))

    # -- coverage by year (per worker, exact: the engine's bit masks of active and credited years) --
    tables["coverage_by_year"] = _coverage_by_year(run, weights)

    # -- the summary -----------------------------------------------------------------------------
    summary = sample["summary"].copy()
    gains = {(table_arm, f"{measure}_{side}"): int(value)
             for measure in DECILE_MEASURES
             for (table_arm, side), value in tables[f"deciles_{measure}"].groupby("arm")[["winners", "losers"]]
             .sum().stack().items()}
    gross_decile = weighted_deciles(base["gross_vnd"].to_numpy(), weights)
    targeted = population["tier"].isin(["poor", "near_poor"]).to_numpy()
    for index, name in enumerate(summary["arm"].tolist()):
        totals = arms[name].worker_totals
        subsidy = totals["subsidy_vnd"].to_numpy()
        active = totals["active_months"].to_numpy() > 0
        figures: dict[str, Any] = {
            "subsidy_vnd": int(scheme_totals[name].sum()),
            **{f"subsidy_{s}_vnd": int(scheme_totals[name][k]) for k, s in enumerate(SCHEMES)},
            "worker_vnd": total(weights, totals["worker_vnd"].to_numpy()),
            "platform_vnd": total(weights, totals["platform_vnd"].to_numpy()),
            "workers_active": total(weights, active),
            "workers_contributing": total(weights, totals["contributing_months"].to_numpy() > 0),
            "pension_months": total(weights, totals["pension_months"].to_numpy()),
            "workers_credited": total(weights, totals["pension_months"].to_numpy() > 0),
            **{f"{measure}_{side}": gains.get((name, f"{measure}_{side}"), 0)
               for measure in DECILE_MEASURES for side in ("winners", "losers")},
            "workers_subsidised": total(weights, subsidy > 0),
            "undercoverage_workers": total(weights, targeted & active & (subsidy == 0)),
            "leakage_per_mille": _leakage(weights, gross_decile, subsidy),
        }
        mine = window[window["arm"] == name]
        figures["window_subsidy_nominal_vnd"] = int(mine["subsidy_nominal_vnd"].sum())
        figures["window_subsidy_real_vnd"] = int(mine["subsidy_real_vnd"].sum())
        for column, value in figures.items():
            summary.loc[index, column] = value
    for column in [c for c in summary.columns if c.endswith("_delta") or c.endswith("_delta_vnd")]:
        source = column.replace("_delta", "")
        source = source if source in summary.columns else source.removesuffix("_vnd")
        if source in summary.columns:
            summary[column] = summary[source] - summary.loc[0, source]
    tables["summary"] = summary

    inequality, curves = [], []
    for name in names:
        for measure in INEQUALITY_MEASURES:
            gini, points = weighted_inequality(arms[name].worker_totals[measure].to_numpy(), weights)
            inequality.append({"arm": name, "measure": measure, "gini": gini})
            curves.extend({"arm": name, "measure": measure, "share_workers": float(p), "share_total": float(v)}
                          for p, v in zip(points[0], points[1]))
    tables["inequality"] = pd.DataFrame(inequality, columns=["arm", "measure", "gini"])
    tables["lorenz"] = pd.DataFrame(curves, columns=["arm", "measure", "share_workers", "share_total"])

    tables["headline_ranges"] = _ranges(sample["headline_ranges"], sample["summary"], summary,
                                        sample["coverage_by_year"], tables["coverage_by_year"])
    return tables


def _leakage(weights: np.ndarray, decile: np.ndarray, subsidy: np.ndarray) -> int:
    top = decile > DECILES - TOP_DECILES_FOR_LEAKAGE
    paid = _sum(weights, subsidy)
    return int(_sum(weights[top], subsidy[top]) * 1000 // paid) if paid > 0 else 0


def _coverage_by_year(run, weights: np.ndarray) -> pd.DataFrame:
    sample = run.results.tables["coverage_by_year"]
    population = run.population.workers
    rows = []
    codes_of: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    for (name, year), shown in sample.groupby(["arm", "year"], sort=False):
        arm = run.arms[name]
        bit = int(year) - arm.first_year
        active = (arm.worker_totals["active_years"].to_numpy().astype(np.int64) >> bit) & 1 == 1
        credited = (arm.worker_totals["credited_years"].to_numpy().astype(np.int64) >> bit) & 1 == 1
        for by, groups in shown.groupby("by", sort=False):
            names = tuple(str(group) for group in groups["group"].tolist())
            if (by, names) not in codes_of:
                codes_of[(by, names)] = _codes(None if by == "all" else population[by], len(weights), list(names))
            codes = codes_of[(by, names)]
            figures = {key: apportion(total(weights, values),
                                      _group_sums(codes, len(names) + 1, weights, values)[:len(names)])
                       for key, values in (("workers_active", active), ("workers_credited", credited),
                                           ("both", active & credited))}
            for k, group in enumerate(groups["group"].tolist()):
                covered, present = int(figures["both"][k]), int(figures["workers_active"][k])
                rows.append({"arm": name, "year": int(year), "by": by, "group": group, "workers_active": present,
                             "workers_credited": int(figures["workers_credited"][k]),
                             "coverage_ppm": round_half_up(covered * PPM, present) if present else 0})
    return pd.DataFrame(rows, columns=list(sample.columns))


def _ranges(ranges: pd.DataFrame, sample: pd.DataFrame, national: pd.DataFrame, sample_years: pd.DataFrame,
            national_years: pd.DataFrame) -> pd.DataFrame:
    """Each headline figure's national value, its 95 % range scaled by the same national ÷ sample ratio (as
    the brief's ranges are): the sampling noise of the sample, told at national scale."""
    figure_column = {"subsidy_vnd": "subsidy_vnd", "worker_vnd": "worker_vnd", "credited_months": "pension_months",
                     "workers_credited": "workers_credited",
                     "window_subsidy_nominal_vnd": "window_subsidy_nominal_vnd",
                     "window_subsidy_real_vnd": "window_subsidy_real_vnd",
                     **{f"{m}_{s}": f"{m}_{s}" for m in DECILE_MEASURES for s in ("winners", "losers")}}

    def values(frame: pd.DataFrame, years: pd.DataFrame) -> dict[tuple[str, str], int]:
        found = {(str(row["arm"]), figure): int(row[column]) for row in frame.to_dict("records")
                 for figure, column in figure_column.items()}
        everyone = years[years["by"] == "all"]
        found.update({(str(arm), f"workers_credited_{int(year)}"): int(count) for arm, year, count in
                      zip(everyone["arm"], everyone["year"], everyone["workers_credited"])})
        return found

    mine_of, theirs_of = values(sample, sample_years), values(national, national_years)
    base = str(sample["arm"].iloc[0])
    shown, lows, highs = [], [], []
    for row in ranges.to_dict("records"):
        figure, arm = str(row["figure"]), str(row["arm"])
        plain = figure.replace("_delta", "")
        mine, theirs = mine_of.get((arm, plain)), theirs_of.get((arm, plain))
        if mine is None or theirs is None:
            shown.append(row["value"]), lows.append(row["low"]), highs.append(row["high"])
            continue
        scale = theirs / mine if mine else 0.0
        shown.append(theirs - theirs_of.get((base, plain), 0) if "_delta" in figure else theirs)
        lows.append(int(round(float(row["low"]) * scale)))
        highs.append(int(round(float(row["high"]) * scale)))
    return ranges.assign(value=shown, low=lows, high=highs)

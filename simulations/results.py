"""The answers a ministry asks, as tables: cost, revenue, coverage, who gains and loses.

Every table has an `arm` column (the baseline first, then each reform) so reforms sit
side by side; `*_delta_vnd` columns compare a reform with the baseline. Money stays
int64 VND; only shares and Gini coefficients (statistics, not money) are floats.

Who gains and who loses is told on two things a worker can feel, separately, never on
the "balance" (worker + platform + state money in the accounts, which rises when a
reform takes more from the worker):

- **take-home pay** = gross platform income − the worker's deductions (`take_home_vnd`);
  a reform that raises a worker rate lowers it for every participant;
- **credited months** = months credited towards a pension (RULES.md §11, `pension_months`).

A worker is a winner on a measure when it rose (d > 0), a loser when it fell (d < 0);
`deciles_take_home` and `deciles_credited_months` rank workers by their baseline
take-home pay (net income, as PolicyEngine's charts do) and count winners, losers and
the five bands below in each decile. A participant is a worker active in some month.

Coverage (`coverage_by_year`): the workers to whom the closes of calendar year Y credited
at least one month towards a pension (RULES.md §11; pooled crediting pays the oldest
unpaid month first, so the month paid may be of an earlier year), beside the workers
active in Y; `coverage_ppm` is the share of Y's active workers who are covered in Y.

Budget window (`budget_window`): the state's subsidy over `window_years` calendar years
from the first simulated month's, nominal and in the first year's prices (real =
nominal × 10^6^k / (10^6 + inflation_ppm)^k in year k from 0, half up). Months past the
horizon repeat the mean of its last twelve months (or all, if fewer) in nominal VND:
the packs' caps and floors are nominal and the simulated incomes are not indexed either.
Simulate `horizon_months: 120` to have no extrapolated year. Default inflation: 3.63 %
a year, Vietnam's average CPI rise in 2024 (General Statistics Office, 6 January 2025).

Ranges (`headline_ranges`): a 95 % interval on each headline figure from a bootstrap
over workers: the workers are dealt (seeded by the scenario's seed) into RANGE_GROUPS
equal blocks — each run of RANGE_GROUPS consecutive workers in a random order of its own —,
each figure summed per block, and `replicates` (≥ 20) resamples of the
blocks with replacement give the interval (the 2.5th and 97.5th percentiles; deltas and
winner counts resample baseline and reform together). They show the sampling noise of a
population of this size — not the uncertainty of the model's assumptions. Cost: the deal
(one random number per worker), one compiled pass per arm (and per reform for its winners)
over the workers, then replicates × RANGE_GROUPS per figure: ~0.1 s at 1M workers. The window's range scales the point value by each resample's
ratio of the horizon's subsidy to its point value (the window is built from the same
monthly totals); the budget strategies' pro-rata factors are kept as they were paid.

Winner/loser bands compare a worker's value under a reform with the baseline, in
integer arithmetic (no float threshold can misplace a worker):

| band | rule on d = reform − baseline, b = baseline |
|---|---|
| `lose_more_than_5pct` | 20·d < −b |
| `lose_0.1_to_5pct` | −b ≤ 20·d and 1000·d < −b |
| `no_change` | |1000·d| ≤ b (and d = 0 when b = 0) |
| `gain_0.1_to_5pct` | b < 1000·d and 20·d ≤ b |
| `gain_more_than_5pct` | 20·d > b (any gain from nothing) |

Pension projection (`pension_projection`, per arm, for sample workers at the 10th, 25th,
50th, 75th, 90th and 99th percentile of gross income among active workers, chosen on the
baseline so every arm shows the same people). Assumptions, kept simple on purpose:

- the counted months are the months credited towards a pension over the horizon
  (the engine's `pension_months`: RULES.md §11 by `rules.crediting`, under the arm pack's
  `crediting` — `pooled`, or `per_month` where a month counts only when its own `si`
  total reaches `pension_floor_contribution_vnd`); 180 credited months (15 years) are
  needed;
- the worker keeps the pace of the simulated horizon of H months: with c counted months,
  `months_to_pension = ceil((180 − c) · H / c)` (0 once c ≥ 180; none when c = 0: at this
  pace the worker never qualifies);
- the pension at 180 months is 45 % of the average insured income (Law on Social
  Insurance 2024: 45 % after 15 years), and the insured income is what the `si` account
  received (worker + platform + state top-up) over 22 %, the voluntary SI contribution
  rate; the replacement rate compares it with the worker's average gross platform income
  over the same months: `replacement_ppm = round_half_up(450,000 · si_balance · 10^6,
  220,000 · gross)` (none when the worker never qualifies). No wage indexation, no
  +2 % per year past 15, no interest.
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from rules import PPM, SCHEMES, round_half_up
from simulations.engine import ArmResult, _tier_sum as _group_sum
from simulations.options import Options
from simulations.population import SHARE_COLUMNS, Population

BANDS = ("lose_more_than_5pct", "lose_0.1_to_5pct", "no_change", "gain_0.1_to_5pct", "gain_more_than_5pct")
DECILES = 10
TOP_DECILES_FOR_LEAKAGE = 3  # subsidy reaching the richest 30 % by gross income counts as leakage
COVERAGE_GROUPS = ("tier", "region", "sex")
PENSION_MONTHS_NEEDED = 180  # 15 years of contributions
PENSION_RATE_PPM = 450_000  # 45 % of the average insured income after 15 years
SI_CONTRIBUTION_RATE_PPM = 220_000  # voluntary SI: 22 % of the chosen (insured) income
SAMPLE_PERCENTILES = (10, 25, 50, 75, 90, 99)
DECILE_MEASURES = {"take_home": ("take_home_vnd", "delta_vnd"),  # measure: (worker_totals column, delta column)
                   "credited_months": ("pension_months", "delta_months")}
COVERAGE_YEAR_GROUPS = ("all", "tier", "region")
RANGE_GROUPS = 1_000  # blocks of workers the bootstrap resamples (fewer workers: one block each)
RANGE_TAIL_PER_MILLE = 25  # each side of a 95 % interval
EXTRAPOLATION_MONTHS = 12  # months past the horizon repeat the mean of its last twelve


def project_pension(pension_months: int, si_balance_vnd: int, gross_vnd: int,
                    horizon_months: int) -> tuple[int | None, int | None]:
    """(months to a pension at this pace, replacement rate in ppm); None, None for a worker who never
    qualifies at this pace. See the module docstring for the assumptions."""
    if pension_months <= 0 or gross_vnd <= 0:
        return None, None
    remaining = max(0, PENSION_MONTHS_NEEDED - pension_months)
    months = -(-remaining * horizon_months // pension_months)  # ceiling, in integers
    replacement = round_half_up(PENSION_RATE_PPM * max(0, si_balance_vnd) * PPM,
                                SI_CONTRIBUTION_RATE_PPM * gross_vnd)
    return months, replacement


def sample_workers(gross_vnd: np.ndarray, active: np.ndarray) -> list[tuple[int, int]]:
    """(percentile, worker) for each sample percentile of gross income among active workers; ties by worker."""
    candidates = np.flatnonzero(active)
    if len(candidates) == 0:
        return []
    values = np.asarray(gross_vnd)[candidates]
    ranks = [round_half_up(p * (len(values) - 1), 100) for p in SAMPLE_PERCENTILES]
    parted = np.partition(values, sorted(set(ranks)))  # O(n): no full sort for six ranks
    samples = []
    for p, rank in zip(SAMPLE_PERCENTILES, ranks):
        v = parted[rank]
        equal = np.flatnonzero(values == v)  # in worker order: the stable tie-break
        less = int((values < v).sum())
        samples.append((p, int(candidates[equal[rank - less]])))
    return samples


def _baseline_samples(arms: Mapping[str, ArmResult]) -> list[tuple[int, int]]:
    base = arms[next(iter(arms))].worker_totals
    return sample_workers(base["gross_vnd"].to_numpy(), base["active_months"].to_numpy() > 0)


def _pension_table(population: Population, arms: Mapping[str, ArmResult],
                   samples: list[tuple[int, int]] | None = None) -> pd.DataFrame:
    horizon = len(population.months)
    samples = _baseline_samples(arms) if samples is None else samples
    tiers = [str(t) for t in population.workers["tier"].iloc[[w for _, w in samples]]] if samples else []
    rows = []
    for name, arm in arms.items():
        totals = arm.worker_totals
        for (percentile, worker), tier in zip(samples, tiers):
            row = totals.iloc[worker]
            si_balance = int(row["si_worker"] + row["si_platform"] + row["subsidy_si"])
            months, replacement = project_pension(int(row["pension_months"]), si_balance, int(row["gross_vnd"]),
                                                  horizon)
            rows.append({"arm": name, "percentile": percentile, "worker": worker, "tier": tier,
                         "gross_vnd": int(row["gross_vnd"]), "active_months": int(row["active_months"]),
                         "pension_months": int(row["pension_months"]), "si_balance_vnd": si_balance,
                         "months_to_pension": months, "replacement_ppm": replacement})
    frame = pd.DataFrame(rows, columns=["arm", "percentile", "worker", "tier", "gross_vnd", "active_months",
                                        "pension_months", "si_balance_vnd", "months_to_pension",
                                        "replacement_ppm"])
    for column in ("months_to_pension", "replacement_ppm"):
        frame[column] = frame[column].astype("Int64")  # none: never qualifies at this pace
    return frame


def _group_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes 0..k-1 of a worker column and the text label of each (as `astype(str)` gives it)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    codes = column.cat.codes.to_numpy().astype(np.intp)
    labels = [str(c) for c in column.cat.categories]
    if (codes < 0).any():  # missing values group as "nan", as astype(str) writes them
        codes = np.where(codes < 0, len(labels), codes)
        labels.append("nan")
    return codes, labels


COVERAGE_CELL_COLUMNS = ("workers", "workers_active", "workers_contributing", "workers_with_a_pension_month",
                         "pension_months", "workers_subsidised", "subsidy_vnd", "balance_vnd")


@numba.njit(cache=True, nogil=True)
def _coverage_cells(cell, cells, active, contributing, pension, subsidy, balance):  # pragma: no cover - compiled
    """Per cell, in one pass, the COVERAGE_CELL_COLUMNS sums (counts of workers with a positive value)."""
    out = np.zeros((cells, len(COVERAGE_CELL_COLUMNS)), dtype=np.int64)
    for i in range(len(cell)):
        c = cell[i]
        out[c, 0] += 1
        out[c, 1] += np.int64(active[i] > 0)
        out[c, 2] += np.int64(contributing[i] > 0)
        out[c, 3] += np.int64(pension[i] > 0)
        out[c, 4] += pension[i]
        out[c, 5] += np.int64(subsidy[i] > 0)
        out[c, 6] += subsidy[i]
        out[c, 7] += balance[i]
    return out


def _sum_by(codes: np.ndarray, values: np.ndarray | None, size: int) -> np.ndarray:
    """Exact int64 sums (or counts, with no values) per code."""
    if values is None:
        return np.bincount(codes, minlength=size).astype(np.int64)
    return _group_sum(codes, values, size)  # compiled, one pass (bool values count)


@dataclass
class Results:
    tables: dict[str, pd.DataFrame]
    lorenz: dict[str, dict[str, np.ndarray]]  # arm -> measure -> (population share, value share) points


def bands(baseline: np.ndarray, reform: np.ndarray) -> np.ndarray:
    """Band index 0..4 (BANDS order) per worker; integer comparisons only."""
    b = np.ascontiguousarray(baseline, dtype=np.int64)
    r = np.ascontiguousarray(reform, dtype=np.int64)
    result, exact = _bands(b, r)
    assert exact, "values too large for exact banding"
    return result


@numba.njit(inline="always", cache=True)
def _band(baseline, reform):  # pragma: no cover - compiled
    """The band (BANDS index) of one worker by the rules in the module docstring (d = reform − baseline,
    b = |baseline|), and whether the comparison was exact."""
    d = reform - baseline
    base = abs(baseline)
    band = 2
    if 1000 * d < -base:
        band = 1
    if 20 * d < -base:
        band = 0
    if 1000 * d > base:
        band = 3
    if 20 * d > base:
        band = 4
    return band, abs(d) < 2**53 and base < 2**53


@numba.njit(cache=True, nogil=True)
def _bands(baseline, reform):  # pragma: no cover - compiled
    """`_band` of every worker, in one pass."""
    result = np.empty(len(baseline), dtype=np.int8)
    exact = True
    for i in range(len(baseline)):
        band, fits = _band(baseline[i], reform[i])
        result[i] = band
        exact = exact and fits
    return result, exact


@numba.njit(cache=True, nogil=True)
def _decile_changes(decile_index, baseline, reform):  # pragma: no cover - compiled
    """Per decile, in one pass: the sum of the changes d = reform − baseline, winners (d > 0), losers (d < 0) and
    the count in each band; and whether every band comparison was exact."""
    out = np.zeros((DECILES, 3 + len(BANDS)), dtype=np.int64)
    exact = True
    for i in range(len(baseline)):
        d = reform[i] - baseline[i]
        row = decile_index[i]
        out[row, 0] += d
        out[row, 1] += np.int64(d > 0)
        out[row, 2] += np.int64(d < 0)
        band, fits = _band(baseline[i], reform[i])
        out[row, 3 + band] += 1
        exact = exact and fits
    return out, exact


@numba.njit(cache=True, nogil=True)
def _year_cells(cell, cells, active_years, credited_years, years):  # pragma: no cover - compiled
    """Per year (bit y of the masks) and cell, in one pass: workers active, credited, and both."""
    out = np.zeros((years, cells, 3), dtype=np.int64)
    for i in range(len(cell)):
        active, credited = active_years[i], credited_years[i]
        if active == 0 and credited == 0:
            continue
        for y in range(years):
            a, c = (active >> y) & 1, (credited >> y) & 1
            out[y, cell[i], 0] += a
            out[y, cell[i], 1] += c
            out[y, cell[i], 2] += a & c
    return out


@numba.njit(cache=True, nogil=True)
def _arm_blocks(block, blocks, subsidy, worker, months, credited_years, years):  # pragma: no cover - compiled
    """Per bootstrap block, in one pass: subsidy, worker deductions, credited months, workers credited, and per
    year (bit y of `credited_years`) the workers its closes credited."""
    out = np.zeros((4 + years, blocks), dtype=np.int64)
    for i in range(len(block)):
        b = block[i]
        out[0, b] += subsidy[i]
        out[1, b] += worker[i]
        out[2, b] += months[i]
        out[3, b] += np.int64(months[i] > 0)
        for y in range(years):
            out[4 + y, b] += (credited_years[i] >> y) & 1
    return out


@numba.njit(cache=True, nogil=True)
def _change_blocks(block, blocks, take_home, take_home_reform, months, months_reform):  # pragma: no cover
    """Per bootstrap block, in one pass: winners and losers on take-home pay, then on credited months."""
    out = np.zeros((4, blocks), dtype=np.int64)
    for i in range(len(block)):
        b = block[i]
        out[0, b] += np.int64(take_home_reform[i] > take_home[i])
        out[1, b] += np.int64(take_home_reform[i] < take_home[i])
        out[2, b] += np.int64(months_reform[i] > months[i])
        out[3, b] += np.int64(months_reform[i] < months[i])
    return out


def _sorted_non_negative(values: np.ndarray) -> np.ndarray:
    """max(v, 0) as floats, sorted: the zeros first, then only the positive values sorted (many are zero)."""
    values = np.asarray(values)
    result, zeros = _positive_last(values)
    result[zeros:].sort()  # in place: the same values, so the same sorted bits
    return result


@numba.njit(cache=True, nogil=True)
def _positive_last(values):  # pragma: no cover - compiled
    """(zeros then the positive values as floats, in their order; the count of zeros) in two passes."""
    n = len(values)
    positive = 0
    for i in range(n):
        if values[i] > 0:
            positive += 1
    zeros = n - positive
    result = np.empty(n, dtype=np.float64)
    result[:zeros] = 0.0
    j = zeros
    for i in range(n):
        if values[i] > 0:
            result[j] = np.float64(values[i])
            j += 1
    return result, zeros


@numba.njit(cache=True, nogil=True)
def _gini_terms(x):  # pragma: no cover - compiled
    """(2·rank − n − 1) · x per element (rank from 1), as numpy computes it: the int64 weight as a float."""
    n = len(x)
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = np.float64(2 * (i + 1) - n - 1) * x[i]
    return out


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, 1 = one holds all); 0 for an all-zero vector."""
    return _gini_sorted(_sorted_non_negative(values))


def _gini_sorted(x: np.ndarray) -> float:
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    return float(_gini_terms(x).sum() / (n * x.sum()))  # numpy's pairwise sum, as before


def lorenz(values: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    return _lorenz_sorted(_sorted_non_negative(values), points)


def _lorenz_sorted(x: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    cumulative = np.concatenate([[0.0], np.cumsum(x)])
    share_population = np.linspace(0, 1, points)
    index = np.rint(share_population * len(x)).astype(np.int64)
    total = cumulative[-1] or 1.0
    return share_population, cumulative[index] / total


def income_deciles(gross_vnd: np.ndarray) -> np.ndarray:
    """Decile 1..10 by gross income over the horizon; ties broken by worker order (deterministic).

    The worker of rank r (stable order) is in decile r·10 // n + 1. Rather than sort all n
    values, each of the nine boundaries is found with one `np.partition` (O(n)): decile
    d+1 starts at rank b = ceil(d·n/10), value v; a worker is past it if its value is above
    v, or equal to v and its place among the equal values (in worker order) reaches b.
    """
    values = np.asarray(gross_vnd)
    n = len(values)
    decile = np.ones(n, dtype=np.int64)
    if n == 0:
        return decile
    boundaries = [-(-d * n // DECILES) for d in range(1, DECILES)]
    kth = sorted({b for b in boundaries if b < n})
    parted = np.partition(values, kth) if kth else values
    inside = [b for b in boundaries if b < n]
    return _deciles(values, np.array([parted[b] for b in inside], dtype=values.dtype),
                    np.array(inside, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _deciles(values, bound_values, bound_ranks):  # pragma: no cover - compiled
    """Decile per value (see `income_deciles`) in two passes: the values below each boundary's, then each
    value past a boundary if above it, or equal and its place among the equal ones reaches the rank."""
    n = len(values)
    bounds = len(bound_values)
    less = np.zeros(bounds, dtype=np.int64)
    for i in range(n):
        for j in range(bounds):
            if values[i] < bound_values[j]:
                less[j] += 1
    seen = np.zeros(bounds, dtype=np.int64)
    decile = np.ones(n, dtype=np.int64)
    for i in range(n):
        d = 1
        for j in range(bounds):
            if values[i] > bound_values[j]:
                d += 1
            elif values[i] == bound_values[j]:
                if less[j] + seen[j] >= bound_ranks[j]:
                    d += 1
                seen[j] += 1
        decile[i] = d
    return decile


def _inequality(values: np.ndarray) -> tuple[float, np.ndarray]:
    """(Gini, Lorenz points) of one measure: one sort for both."""
    ordered = _sorted_non_negative(values)
    return round(_gini_sorted(ordered), 6), np.vstack(_lorenz_sorted(ordered))


INEQUALITY_MEASURES = ("subsidy_vnd", "balance_vnd")
THREADS = 2  # the sorts and kernels release the GIL: the inequality measures run beside the other tables


def compute(population: Population, arms: Mapping[str, ArmResult], threads: int = THREADS,
            options: Options = Options()) -> Results:
    if threads > 1 and len(population.workers) >= 100_000:
        with ThreadPoolExecutor(threads - 1) as pool:
            pending = {(name, measure): pool.submit(_inequality, arm.worker_totals[measure].to_numpy())
                       for name, arm in arms.items() for measure in INEQUALITY_MEASURES}
            samples = pool.submit(_baseline_samples, arms)
            return _compute(population, arms, lambda name, measure: pending[(name, measure)].result(),
                            samples.result, options)
    return _compute(population, arms,
                    lambda name, measure: _inequality(arms[name].worker_totals[measure].to_numpy()),
                    lambda: _baseline_samples(arms), options)


def _compute(population: Population, arms: Mapping[str, ArmResult], inequality_of, samples_of,
             options: Options = Options()) -> Results:
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
    groups = {group: _group_codes(workers[group]) for group in COVERAGE_GROUPS}
    # One pass per column over a cell code combining every group, then each group's sums from the cells.
    cell = np.zeros(len(workers), dtype=np.intp)
    for codes, labels in groups.values():
        cell = cell * len(labels) + codes
    cells = int(np.prod([len(labels) for _, labels in groups.values()]))
    cell_group = {}
    stride = cells
    for group, (codes, labels) in groups.items():
        stride //= len(labels)
        cell_group[group] = (np.arange(cells) // stride) % len(labels)
    for name, arm in arms.items():
        totals = arm.worker_totals
        summed_cells = _coverage_cells(cell, cells, *(np.ascontiguousarray(totals[column].to_numpy(), dtype=np.int64)
                                                      for column in ("active_months", "contributing_months",
                                                                     "pension_months", "subsidy_vnd", "balance_vnd")))
        by_cell = {column: summed_cells[:, c].copy() for c, column in enumerate(COVERAGE_CELL_COLUMNS)}
        for group, (codes, labels) in groups.items():
            summed = pd.DataFrame({"arm": name, "by": group, "group": labels})
            for column, values in by_cell.items():
                summed[column] = _sum_by(cell_group[group], values, len(labels))
            order = np.argsort(np.array(labels, dtype=object), kind="stable")  # groupby(sort=True) order
            coverage.append(summed.iloc[order][summed["workers"].to_numpy()[order] > 0])
    tables["coverage"] = pd.concat(coverage, ignore_index=True)

    lorenz_points: dict[str, dict[str, np.ndarray]] = {}
    inequality = []
    tables.update(distribution_tables(arms))
    gains: dict[tuple[str, str], int] = {}  # (reform, take_home_winners …): the deciles' totals
    for measure in DECILE_MEASURES:
        for (arm, side), total in tables[f"deciles_{measure}"].groupby("arm")[["winners", "losers"]].sum() \
                .stack().items():
            gains[(arm, f"{measure}_{side}")] = int(total)
    tables["inequality"] = None  # filled last (the measures run beside the rest); keeps the tables' order

    summary = []
    targeted = workers["tier"].isin(["poor", "near_poor"]).to_numpy()
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
            "pension_months": int(totals["pension_months"].sum()),  # months credited (RULES.md §11)
            "workers_credited": int((totals["pension_months"] > 0).sum()),
            # Who gains, on what a worker feels (0 for the baseline): take-home pay and credited months, apart.
            **{f"{measure}_{side}": gains.get((name, f"{measure}_{side}"), 0)
               for measure in DECILE_MEASURES for side in ("winners", "losers")},
            "crediting": " ".join(arm.crediting),
            "workers_subsidised": int((subsidy > 0).sum()),
            # Undercoverage: active poor / near-poor workers the subsidy never reached.
            "undercoverage_workers": int((targeted & active & (subsidy == 0)).sum()),
            # Leakage: subsidy paid to the richest deciles by gross income (per mille of the total).
            "leakage_per_mille": int(subsidy[decile > DECILES - TOP_DECILES_FOR_LEAKAGE].sum() * 1000
                                     // max(int(subsidy.sum()), 1)),
            "versions": " ".join(arm.versions_used),
        }
        summary.append(row)
    window = budget_window(arms, options)
    tables["budget_window"] = window
    for row in summary:
        mine = window[window["arm"] == row["arm"]]
        row["window_subsidy_nominal_vnd"] = int(mine["subsidy_nominal_vnd"].sum())
        row["window_subsidy_real_vnd"] = int(mine["subsidy_real_vnd"].sum())
    summary_frame = pd.DataFrame(summary)
    for column in ("subsidy_vnd", "worker_vnd", "platform_vnd", "workers_contributing", "pension_months",
                   "workers_credited", "workers_subsidised", "window_subsidy_nominal_vnd", "window_subsidy_real_vnd"):
        summary_frame[f"{column.removesuffix('_vnd')}_delta" + ("_vnd" if column.endswith("_vnd") else "")] = \
            summary_frame[column] - summary_frame.loc[0, column]
    tables["summary"] = summary_frame
    tables["coverage_by_year"] = coverage_by_year(population, arms)
    tables["headline_ranges"] = headline_ranges(arms, window, options)
    tables["pension_projection"] = _pension_table(population, arms, samples_of())
    for name in names:
        lorenz_points[name] = {}
        for measure in INEQUALITY_MEASURES:
            coefficient, points = inequality_of(name, measure)
            inequality.append({"arm": name, "measure": measure, "gini": coefficient})
            lorenz_points[name][measure] = points
    tables["inequality"] = pd.DataFrame(inequality)
    return Results(tables, lorenz_points)


# ---------------------------------------------------------------------------
# Who gains: take-home pay and credited months, by decile of take-home pay
# ---------------------------------------------------------------------------

def _column(arm: ArmResult, column: str) -> np.ndarray:
    return np.ascontiguousarray(arm.worker_totals[column].to_numpy(), dtype=np.int64)


def distribution_tables(arms: Mapping[str, ArmResult]) -> dict[str, pd.DataFrame]:
    """`deciles_take_home` and `deciles_credited_months`: per reform and decile of baseline take-home pay, the
    workers, participants, the decile's baseline take-home pay, the sum of the changes, winners (d > 0),
    losers (d < 0), unchanged, and the five bands. One compiled pass per reform and measure."""
    names = list(arms)
    base = arms[names[0]]
    take_home = _column(base, "take_home_vnd")
    decile_index = income_deciles(take_home) - 1
    workers = np.bincount(decile_index, minlength=DECILES)
    participants = _sum_by(decile_index, base.worker_totals["active_months"].to_numpy() > 0, DECILES)
    take_home_sums = _sum_by(decile_index, take_home, DECILES)
    tables = {}
    for measure, (column, delta_column) in DECILE_MEASURES.items():
        rows = []
        for name in names[1:]:
            changes, exact = _decile_changes(decile_index, _column(base, column), _column(arms[name], column))
            assert exact, "values too large for exact banding"
            for d in range(DECILES):
                delta, winners, losers = (int(v) for v in changes[d, :3])
                rows.append({"arm": name, "decile": d + 1, "workers": int(workers[d]),
                             "participants": int(participants[d]), "take_home_vnd": int(take_home_sums[d]),
                             delta_column: delta, "winners": winners, "losers": losers,
                             "unchanged": int(workers[d]) - winners - losers,
                             **{b: int(c) for b, c in zip(BANDS, changes[d, 3:])}})
        tables[f"deciles_{measure}"] = pd.DataFrame(rows, columns=[
            "arm", "decile", "workers", "participants", "take_home_vnd", delta_column, "winners", "losers",
            "unchanged", *BANDS])
    return tables


# ---------------------------------------------------------------------------
# Coverage by year, the budget window, ranges
# ---------------------------------------------------------------------------

def _simulated_years(arm: ArmResult) -> list[int]:
    return sorted({int(month) // 100 for month in arm.by_month_tier["month"]}) if len(arm.by_month_tier) else []


def coverage_by_year(population: Population, arms: Mapping[str, ArmResult]) -> pd.DataFrame:
    """Per arm, simulated calendar year and group (all, tier, region): workers active in the year, workers whom
    the year's closes credited ≥ 1 month (the coverage), and `coverage_ppm`, the share of the year's active
    workers who are covered. One compiled pass per arm over a cell code combining tier and region."""
    workers = population.workers
    groups = {group: _group_codes(workers[group]) for group in COVERAGE_YEAR_GROUPS if group != "all"}
    cell = np.zeros(len(workers), dtype=np.intp)
    for codes, labels in groups.values():
        cell = cell * len(labels) + codes
    cells = int(np.prod([len(labels) for _, labels in groups.values()]))
    cell_group = {"all": (np.zeros(cells, dtype=np.intp), ["all"])}
    stride = cells
    for group, (_codes, labels) in groups.items():
        stride //= len(labels)
        cell_group[group] = ((np.arange(cells) // stride) % len(labels), labels)
    rows = []
    for name, arm in arms.items():
        years = _simulated_years(arm)
        if not years:
            continue
        span = years[-1] - arm.first_year + 1
        counts = _year_cells(cell, cells, _column(arm, "active_years"), _column(arm, "credited_years"), span)
        for year in years:
            by_cell = counts[year - arm.first_year]
            for by in COVERAGE_YEAR_GROUPS:
                codes, labels = cell_group[by]
                summed = [_sum_by(codes, by_cell[:, k].copy(), len(labels)) for k in range(3)]
                for g in np.argsort(np.array(labels, dtype=object), kind="stable").tolist():
                    active, credited, both = (int(values[g]) for values in summed)
                    if active or credited:
                        rows.append({"arm": name, "year": year, "by": by, "group": labels[g],
                                     "workers_active": active, "workers_credited": credited,
                                     "coverage_ppm": round_half_up(both * PPM, active) if active else 0})
    return pd.DataFrame(rows, columns=["arm", "year", "by", "group", "workers_active", "workers_credited",
                                       "coverage_ppm"])


def budget_window(arms: Mapping[str, ArmResult], options: Options) -> pd.DataFrame:
    """Per arm and calendar year of the window: months simulated and extrapolated, the subsidy in nominal VND,
    the deflator to the first year's prices (ppm) and the subsidy in those prices (module docstring)."""
    rows = []
    for name, arm in arms.items():
        if not len(arm.by_month_tier):
            continue
        paid = arm.by_month_tier.groupby("month")["subsidy_vnd"].sum()
        monthly = {int(month): int(total) for month, total in paid.items()}
        first, last = min(monthly), max(monthly)
        tail = _calendar_months(first, last)[-EXTRAPOLATION_MONTHS:]
        tail_vnd = sum(monthly.get(m, 0) for m in tail)
        for k in range(options.window_years):
            year = first // 100 + k
            in_year = [year * 100 + month for month in range(1, 13) if year * 100 + month >= first]
            simulated = [m for m in in_year if m <= last]
            extrapolated = len(in_year) - len(simulated)
            nominal = sum(monthly.get(m, 0) for m in simulated) + \
                (round_half_up(tail_vnd * extrapolated, len(tail)) if extrapolated else 0)
            growth = (PPM + options.inflation_ppm) ** k
            rows.append({"arm": name, "year": year, "months_simulated": len(simulated),
                         "months_extrapolated": extrapolated, "subsidy_nominal_vnd": nominal,
                         "deflator_ppm": round_half_up(PPM ** (k + 1), growth),
                         "subsidy_real_vnd": round_half_up(nominal * PPM ** k, growth)})
    return pd.DataFrame(rows, columns=["arm", "year", "months_simulated", "months_extrapolated",
                                       "subsidy_nominal_vnd", "deflator_ppm", "subsidy_real_vnd"])


def _calendar_months(first: int, last: int) -> list[int]:
    """Every YYYYMM from first to last inclusive."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = month + 1 if month % 100 < 12 else (month // 100 + 1) * 100 + 1
    return months


def _blocks(count: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(block of each worker, blocks): each run of `blocks` consecutive workers is dealt to the blocks in a random
    order of its own, so the blocks are equal in size (±1) and each spans the whole population."""
    blocks = max(1, min(RANGE_GROUPS, count))
    runs = -(-count // blocks)
    dealt = rng.permuted(np.tile(np.arange(blocks, dtype=np.int16), (runs, 1)), axis=1)
    return np.ascontiguousarray(dealt.ravel()[:count], dtype=np.intp), blocks


def headline_ranges(arms: Mapping[str, ArmResult], window: pd.DataFrame, options: Options) -> pd.DataFrame:
    """Per arm and headline figure: the value and a 95 % bootstrap interval over workers (module docstring).
    One compiled pass per arm (and one per reform for its winners and losers) sums the figures per block."""
    names = list(arms)
    rng = np.random.default_rng([options.seed, 18])  # a stream of its own: the population's draws are untouched
    block, blocks = _blocks(len(arms[names[0]].worker_totals), rng)
    draws = rng.integers(0, blocks, size=(options.replicates, blocks))
    weights = np.zeros((options.replicates, blocks), dtype=np.int64)
    np.add.at(weights, (np.repeat(np.arange(options.replicates), blocks), draws.ravel()), 1)
    tail = options.replicates * RANGE_TAIL_PER_MILLE // 1000
    rows = []

    def add(arm: str, figure: str, value: int, replicates: np.ndarray) -> None:
        ordered = np.sort(replicates)
        rows.append({"arm": arm, "figure": figure, "value": int(value), "low": int(ordered[tail]),
                     "high": int(ordered[-1 - tail]), "replicates": options.replicates})

    figures: dict[str, dict[str, tuple[int, np.ndarray]]] = {}
    for name, arm in arms.items():
        years = _simulated_years(arm)
        span = years[-1] - arm.first_year + 1 if years else 0
        sums = _arm_blocks(block, blocks, _column(arm, "subsidy_vnd"), _column(arm, "worker_vnd"),
                           _column(arm, "pension_months"), _column(arm, "credited_years"), span)
        labels = ["subsidy_vnd", "worker_vnd", "credited_months", "workers_credited",
                  *(f"workers_credited_{arm.first_year + y}" for y in range(span))]
        figures[name] = {label: (int(sums[k].sum()), weights @ sums[k]) for k, label in enumerate(labels)
                         if k < 4 or arm.first_year + k - 4 in years}
        subsidy, subsidy_replicates = figures[name]["subsidy_vnd"]
        mine = window[window["arm"] == name]
        for figure in ("subsidy_nominal_vnd", "subsidy_real_vnd"):
            value = int(mine[figure].sum())
            scaled = [value * int(r) // subsidy if subsidy else 0 for r in subsidy_replicates.tolist()]
            figures[name][f"window_{figure}"] = (value, np.array(scaled, dtype=np.int64))
    base = names[0]
    for name in names:
        for figure, (value, replicates) in figures[name].items():
            add(name, figure, value, replicates)
        if name == base:
            continue
        for figure, (value, replicates) in figures[name].items():
            if figure in figures[base]:
                base_value, base_replicates = figures[base][figure]
                unit = "_vnd" if figure.endswith("_vnd") else ""
                add(name, f"{figure.removesuffix('_vnd')}_delta{unit}", value - base_value,
                    replicates - base_replicates)
        pairs = [_column(arms[arm], column) for column in ("take_home_vnd", "pension_months") for arm in (base, name)]
        sums = _change_blocks(block, blocks, *pairs)
        for k, figure in enumerate(("take_home_winners", "take_home_losers", "credited_months_winners",
                                    "credited_months_losers")):
            add(name, figure, int(sums[k].sum()), weights @ sums[k])
    return pd.DataFrame(rows, columns=["arm", "figure", "value", "low", "high", "replicates"])

"""Weights that make a synthetic population add up to published national totals (raking).

A targets file (`simulations/data/targets-vn.yaml`, data with sources) gives the number
of platform workers, the shares of workers by category on a few margins (kind, region,
household status, ethnic minority) and means of continuous quantities in a group
(earnings of full-time motorbike drivers). `calibrate` finds one weight per person:

- start from equal weights that make the people present in the first simulated month
  add up to the national total;
- iterative proportional fitting (raking): each margin in turn, multiply every weight in
  a category by target / weighted total of the category; a mean target tilts the weights
  of its group exponentially, w·e^{θx} scaled back to the group's total, with θ solved by
  Newton so the weighted mean hits the target (the exponential form of calibration of
  Deville & Särndal 1992, of which raking is the categorical case); repeat the sweep until
  every calibrated figure is within 10⁻⁹ of its target or `MAX_SWEEPS` is reached;
- scale every weight so the people present in the first month add up to the total
  (a uniform scale: shares and means stay as fitted).

Why weights and not a re-drawn sample: the draw (`population.synthetic`) already follows
the model's own distributions; weights correct what the model gets wrong against the
published figures without touching the seeded draw, and the engine's per-worker totals
times the weights are national figures. The engine itself is unweighted (each synthetic
worker is one worker), so nothing in the arithmetic changes; `Population.workers.weight`
is what national totals multiply by.

The report (`CalibrationReport.rows`) has every target beside the weighted figure before
and after calibration and the relative error in ppm; `calibrate: false` rows are checks,
printed, never fitted. It goes into the population's `source` (so into every run record)
and is printed by `ansinh simulate`.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

DEFAULT_TARGETS = Path(__file__).resolve().parent / "data" / "targets-vn.yaml"
MARGIN_COLUMNS = ("worker_type", "region", "household", "ethnic_minority")
MEAN_COLUMNS = ("earnings_vnd",)
WHERE_COLUMNS = ("worker_type", "vehicle", "full_time", "region", "household", "ethnic_minority", "sex")
STATUSES = ("published", "proxy", "estimate", "assumption")
MAX_SWEEPS = 500
CONVERGED = 1e-9  # relative error of every calibrated figure at which the sweeps stop
TILT_STEPS = 50
MEAN_SCALE = 1e6  # means are fitted in millions (exponents stay small)


class TargetsError(ValueError):
    """A targets file that cannot be used, or a population it cannot calibrate (names the key)."""


@dataclass(frozen=True)
class Margin:
    name: str  # the population column (one of MARGIN_COLUMNS)
    shares: Mapping[str, float]  # category -> share, adding up to 1
    status: str
    source: str
    tolerance_ppm: int
    calibrate: bool = True


@dataclass(frozen=True)
class Mean:
    name: str
    of: str  # the population column averaged (one of MEAN_COLUMNS)
    where: Mapping[str, Any]  # column -> value: the group the mean is over ({}: everyone)
    value: float
    status: str
    source: str
    tolerance_ppm: int
    calibrate: bool = True


@dataclass(frozen=True)
class Targets:
    name: str
    path: str
    sha256: str
    total: int  # platform workers at work at one time
    total_status: str
    total_source: str
    total_tolerance_ppm: int
    margins: tuple[Margin, ...]
    means: tuple[Mean, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256}


@dataclass
class CalibrationReport:
    rows: list[dict[str, Any]]  # one per figure: target, before, after, error, tolerance, status
    sweeps: int
    converged: bool
    total_basis: str  # whom the national total counts
    unreachable: list[str]  # figures no weighting can reach (no synthetic worker in the category)
    weights: dict[str, float]  # min, max, mean; design_effect = n·Σw² / (Σw)² (Kish)

    def as_document(self) -> dict[str, Any]:
        return {"rows": self.rows, "sweeps": self.sweeps, "converged": self.converged,
                "total_basis": self.total_basis, "unreachable": self.unreachable, "weights": self.weights}

    @property
    def max_error_ppm(self) -> int:
        return max((abs(row["error_ppm"]) for row in self.rows if row["calibrated"]), default=0)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def load_targets(path: str | Path | None = None) -> Targets:
    """The targets file (the shipped `targets-vn.yaml` by default), validated; every problem names its key."""
    path = Path(path) if path is not None else DEFAULT_TARGETS
    try:
        text = path.read_bytes()
    except OSError as error:
        raise TargetsError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TargetsError(f"{path}: is not valid YAML ({' '.join(str(error).split())})") from None
    problems: list[str] = []
    if not isinstance(document, dict):
        raise TargetsError(f"{path}: must be a mapping with workers, shares and means")
    workers = document.get("workers")
    total = status = source = None
    tolerance = 0
    if not isinstance(workers, dict) or not _positive_int(workers.get("value")):
        problems.append("workers.value: a whole number of workers > 0 is required")
    else:
        total = int(workers["value"])
        status, source, tolerance = _provenance(workers, "workers", problems)
    margins = []
    shares = document.get("shares", {})
    if not isinstance(shares, dict):
        problems.append("shares: must map a population column to its values")
        shares = {}
    for name, body in shares.items():
        key = f"shares.{name}"
        if name not in MARGIN_COLUMNS:
            problems.append(f"{key}: unknown column (known: {', '.join(MARGIN_COLUMNS)})")
            continue
        if not isinstance(body, dict) or not isinstance(body.get("values"), dict) or not body["values"]:
            problems.append(f"{key}.values: must map each category to a count or weight")
            continue
        values = {str(k): v for k, v in body["values"].items()}
        if any(not _number(v) or v < 0 for v in values.values()) or not sum(values.values()) > 0:
            problems.append(f"{key}.values: every value must be a number ≥ 0, and their sum > 0")
            continue
        whole = float(sum(values.values()))
        m_status, m_source, m_tolerance = _provenance(body, key, problems)
        margins.append(Margin(name, {k: float(v) / whole for k, v in values.items()}, m_status, m_source,
                              m_tolerance, bool(body.get("calibrate", True))))
    means = []
    for name, body in (document.get("means") or {}).items():
        key = f"means.{name}"
        if not isinstance(body, dict):
            problems.append(f"{key}: must be a mapping (of, where, value)")
            continue
        if body.get("of") not in MEAN_COLUMNS:
            problems.append(f"{key}.of: must be one of {', '.join(MEAN_COLUMNS)}")
            continue
        where = body.get("where") or {}
        if not isinstance(where, dict) or any(column not in WHERE_COLUMNS for column in where):
            problems.append(f"{key}.where: must map columns ({', '.join(WHERE_COLUMNS)}) to values")
            continue
        if not _number(body.get("value")) or body["value"] <= 0:
            problems.append(f"{key}.value: must be a number > 0")
            continue
        m_status, m_source, m_tolerance = _provenance(body, key, problems)
        means.append(Mean(name, body["of"], dict(where), float(body["value"]), m_status, m_source, m_tolerance,
                          bool(body.get("calibrate", True))))
    if problems:
        raise TargetsError(f"{path}: " + "; ".join(problems))
    return Targets(str(document.get("name", path.stem)), str(path), hashlib.sha256(text).hexdigest(), total,
                   status, source, tolerance, tuple(margins), tuple(means))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _provenance(body: Mapping, key: str, problems: list[str]) -> tuple[str, str, int]:
    status = body.get("status")
    if status not in STATUSES:
        problems.append(f"{key}.status: must be one of {', '.join(STATUSES)}")
    source = body.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{key}.source: every figure names its source")
    tolerance = body.get("tolerance_ppm", 0 if body.get("calibrate", True) is False else None)
    if not (isinstance(tolerance, int) and not isinstance(tolerance, bool) and 0 <= tolerance <= 1_000_000):
        problems.append(f"{key}.tolerance_ppm: an integer from 0 to 1,000,000 is required for a calibrated figure")
        tolerance = 0
    return str(status), " ".join(str(source or "").split()), int(tolerance)


# ---------------------------------------------------------------------------
# Raking
# ---------------------------------------------------------------------------

def category_codes(values, names: list[str], key: str) -> np.ndarray:
    """Each value's index in `names` (booleans are "yes" / "no"); a value outside them is an error.
    A pandas Categorical is mapped through its codes (no string comparisons over the population)."""
    import pandas as pd

    if isinstance(values, (pd.Categorical, pd.Series)) and isinstance(values.dtype, pd.CategoricalDtype):
        categorical = pd.Categorical(values)
        lookup = np.array([names.index(c) if c in names else -1 for c in categorical.categories.tolist()] + [-1],
                          dtype=np.int64)
        codes = lookup[categorical.codes]  # code −1 (missing) picks the last entry, −1
        if (codes < 0).any():
            stray = sorted({str(v) for v in np.asarray(categorical)[codes < 0][:1000].tolist()})[:5]
            raise TargetsError(f"shares.{key}: the population has categories the targets do not give: {stray}")
        return codes
    values = np.asarray(values)
    if values.dtype == bool:
        values = np.where(values, "yes", "no")
    codes = np.full(len(values), -1, dtype=np.int64)
    for index, name in enumerate(names):
        codes[values == name] = index
    if (codes < 0).any():
        stray = sorted(set(values[codes < 0].tolist()))[:5]
        raise TargetsError(f"shares.{key}: the population has categories the targets do not give: {stray}")
    return codes


def group_mask(columns: Mapping[str, np.ndarray], where: Mapping[str, Any]) -> np.ndarray:
    """The people a `where` selects (equality on each column; booleans as True/False or "yes"/"no")."""
    import pandas as pd

    count = len(next(iter(columns.values())))
    mask = np.ones(count, dtype=bool)
    for column, wanted in where.items():
        values = columns[column]
        if isinstance(values, (pd.Categorical, pd.Series)) and isinstance(values.dtype, pd.CategoricalDtype):
            categorical = pd.Categorical(values)
            known = categorical.categories.tolist()
            mask &= categorical.codes == (known.index(wanted) if wanted in known else -2)
            continue
        values = np.asarray(values)
        if values.dtype == bool and isinstance(wanted, str):
            wanted = wanted == "yes"
        mask &= values == wanted
    return mask


def calibrate(columns: Mapping[str, np.ndarray], targets: Targets,
              present: np.ndarray) -> tuple[np.ndarray, CalibrationReport]:
    """Weights (float64, one per person) and the report. `columns`: the population's arrays by name
    (MARGIN_COLUMNS, MEAN_COLUMNS and any column a `where` uses); `present`: the people the national total
    counts (those at work in the first simulated month)."""
    count = len(present)
    if count == 0:
        raise TargetsError("workers: an empty population cannot be weighted")
    basis = "present in the first month"
    if not present.any():  # nobody at work in month one: the total counts the whole frame
        present, basis = np.ones(count, dtype=bool), "the whole frame (nobody is present in the first month)"
    base = targets.total / float(present.sum())
    weights = np.full(count, base)
    # A category with a target but no synthetic worker (a small population) cannot be fitted: it is left
    # out (the margin's other categories share its target in proportion) and reported as unreachable;
    # so is a mean outside its group's range.
    unreachable: list[str] = []
    fitted_margins = []
    for margin in targets.margins:
        names = list(margin.shares)
        codes = category_codes(columns[margin.name], names, margin.name)
        counts = np.bincount(codes, minlength=len(names))
        shares = np.array(list(margin.shares.values()))
        empty = (shares > 0) & (counts == 0)
        if margin.calibrate and empty.any():
            unreachable.extend(f"share {margin.name} {name}" for name, out in zip(names, empty) if out)
            shares = np.where(empty, 0.0, shares)
            shares = shares / shares.sum() if shares.sum() > 0 else shares
        fitted_margins.append((margin, codes, shares))
    fitted_means = []
    for mean in targets.means:
        group = group_mask(columns, mean.where)
        everyone = np.asarray(columns[mean.of], dtype=np.float64) / MEAN_SCALE
        values = everyone[group]
        reachable = bool(len(values)) and values.min() < mean.value / MEAN_SCALE < values.max()
        if mean.calibrate and not reachable:
            unreachable.append(f"mean {mean.of} {mean.name}")
        # For the figures: the group as 0/1 and the values outside it at 0 (two dot products, no gather).
        inside = group.astype(np.float64)
        fitted_means.append((mean, np.flatnonzero(group), values, mean.calibrate and reachable,
                             inside, everyone * inside))

    def figures(w: np.ndarray) -> list[float]:
        whole = w.sum()
        found = []
        for margin, codes, _ in fitted_margins:
            found.extend((np.bincount(codes, weights=w, minlength=len(margin.shares)) / whole).tolist())
        for _, index, _, _, inside, masked in fitted_means:
            found.append(_dot(w, masked) / _dot(w, inside) * MEAN_SCALE if len(index) else float("nan"))
        return found

    before = figures(weights)
    sweeps, converged = 0, False
    calibrated = [m for m, _, _ in fitted_margins if m.calibrate] + [m for m, _, _, fit, _, _ in fitted_means if fit]
    if calibrated:
        for sweeps in range(1, MAX_SWEEPS + 1):
            whole = weights.sum()
            for margin, codes, shares in fitted_margins:
                if not margin.calibrate:
                    continue
                totals = np.bincount(codes, weights=weights, minlength=len(shares))
                factor = np.divide(shares * whole, totals, out=np.zeros(len(shares)), where=totals > 0)
                weights *= factor[codes]
            for mean, index, values, fit, _, _ in fitted_means:
                if fit:
                    weights[index] = _tilted(weights[index], values, mean.value / MEAN_SCALE)
            if _worst(figures(weights), fitted_margins, fitted_means) <= CONVERGED:
                converged = True
                break
    weights *= targets.total / weights[present].sum()
    after = figures(weights)
    rows = [_row("workers", "total", targets.total_status, targets.total_source, targets.total_tolerance_ppm, True,
                 targets.total, base * float(present.sum()), float(weights[present].sum()))]
    at = 0
    for margin, _, _ in fitted_margins:
        for name, share in margin.shares.items():
            rows.append(_row(f"share {margin.name}", name, margin.status, margin.source, margin.tolerance_ppm,
                             margin.calibrate, share, before[at], after[at]))
            at += 1
    for mean, _, _, _, _, _ in fitted_means:
        rows.append(_row(f"mean {mean.of}", mean.name, mean.status, mean.source, mean.tolerance_ppm, mean.calibrate,
                         mean.value, before[at], after[at]))
        at += 1
    total = weights.sum()
    report = CalibrationReport(rows, sweeps, converged or not calibrated, basis, unreachable, {
        "min": float(weights.min()), "max": float(weights.max()), "mean": float(total / count),
        "design_effect": float(count * _dot(weights, weights) / (total * total))})
    return weights, report


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a·b without BLAS (`@` is a threaded BLAS call, 10 × slower on a busy two-core machine)."""
    return float(np.einsum("i,i->", a, b))


def _tilted(weights: np.ndarray, values: np.ndarray, target: float) -> np.ndarray:
    """weights·e^{θ(x−t)}, scaled back to the group's total, with θ such that the weighted mean of x is t."""
    centred = values - target
    squared = centred * centred
    theta = 0.0
    for _ in range(TILT_STEPS):  # Newton on the weighted mean of x − t (increasing in θ)
        w = weights * np.exp(np.clip(theta * centred, -50.0, 50.0))
        step = float(np.clip(_dot(w, centred) / _dot(w, squared), -1.0, 1.0))
        theta -= step
        if abs(step) < 1e-12:
            break
    tilted = weights * np.exp(np.clip(theta * centred, -50.0, 50.0))
    return tilted * (weights.sum() / tilted.sum())


def _worst(found: list[float], margins, means) -> float:
    worst = 0.0
    at = 0
    for margin, _, shares in margins:
        for share in shares.tolist():
            if margin.calibrate and share > 0:
                worst = max(worst, abs(found[at] - share) / share)
            at += 1
    for mean, _, _, fit, _, _ in means:
        if fit:
            worst = max(worst, abs(found[at] - mean.value) / mean.value)
        at += 1
    return worst


def _row(figure: str, category: str, status: str, source: str, tolerance_ppm: int, calibrated: bool,
         target: float, before: float, after: float) -> dict[str, Any]:
    def ppm(value: float) -> int:
        return int(round((value - target) / target * 1_000_000)) if target else 0

    return {"figure": figure, "category": category, "status": status, "calibrated": calibrated,
            "target": target, "before": before, "after": after, "error_before_ppm": ppm(before),
            "error_ppm": ppm(after), "tolerance_ppm": tolerance_ppm, "source": source}


def format_report(report: CalibrationReport, total: int) -> list[str]:
    """Plain lines for a terminal: each figure with its target, the calibrated value and the error."""
    lines = []
    for row in report.rows:
        if row["figure"].startswith("share"):
            show = lambda v: f"{v * 100:6.2f} % ({v * total:>12,.0f})"  # noqa: E731
        else:
            show = lambda v: f"{v:>24,.0f}"  # noqa: E731
        mark = "" if row["calibrated"] else "  (check, not fitted)"
        lines.append(f"{row['figure']:<22} {row['category']:<28} target {show(row['target'])}  "
                     f"weighted {show(row['after'])}  error {row['error_ppm'] / 10_000:+.2f} %  [{row['status']}]{mark}")
    weights = report.weights
    if report.unreachable:
        lines.append(f"UNREACHABLE (no synthetic worker to weight; a larger population is needed): "
                     f"{', '.join(report.unreachable)}")
    lines.append(f"weights: {report.sweeps} sweeps, {'converged' if report.converged else 'NOT converged'}; "
                 f"min {weights['min']:,.1f}, max {weights['max']:,.1f}, design effect {weights['design_effect']:.3f}")
    return lines

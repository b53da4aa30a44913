"""Behavioural response: workers opting out when a reform raises what is deducted from their pay.

Scenario key `behaviour: {participation_elasticity: E}`. Without the key a run is static
(every worker who works contributes in every arm: PolicyEngine's and EUROMOD's default);
with it, a reform that raises a worker's deduction rate loses some participants:

    keep = (r_reform / r_baseline) ^ (−E)      when r_reform > r_baseline, else 1

where r is the sum of the worker-party rates (si + oa + ui) of the worker's main kind in
the version in force that month, each at least `RATE_FLOOR_PPM` (a new deduction where
there was none compares with 0.1 %, not with zero). The elasticity is of participation
with respect to the deduction rate: at E = 0.1, doubling the rate keeps 2^−0.1 = 93.3 %.

Who opts out: every worker has one seeded draw u ∈ [0, 10⁹) (stream `[seed, 183]`, apart
from the population's), and keeps contributing in an arm and month while u < keep × 10⁹.
One draw for all arms and months (common random numbers), so a worker who leaves at
1.2 % also leaves at 1.5 %, comes back if a later version lowers the rate again, and the
difference between two reforms is not noise. An opted-out worker still works and earns
(gross and take-home count); nothing is deducted or paid for them that month — no worker
or platform share, no subsidy, no pooled `si` (RULES.md §11 may still credit a month from
what they pooled before). The engine applies it (`engine.run(participation=…)`): an
arm's share keys become `("masked", key, keep per kind)`, zero for the opted-out
worker-months.

Default elasticity (`DEFAULT_ELASTICITY` = 0.1, when `behaviour: {}` names none): a stated
choice between two bodies of evidence, cited in docs/simulations.md §9 — under the UK's
automatic enrolment (deduction by default, the mechanism here) raising the employee's
minimum contribution from 0.8 % to 4 % of qualifying earnings in 2018–19 barely moved
participation (opt-out 9–12 %, and 88 % of employers saw no fall in membership after the
April 2018 rise: DWP automatic enrolment evaluation 2019; House of Commons Work and
Pensions Committee 2014; ACA pension trends survey 2018), i.e. E of order 0.01–0.02;
informal workers choosing for themselves are far more price-sensitive (Thornton et al.
2010, Health Economics 19:181–206: costs drove enrolment in Nicaragua's voluntary
scheme, 20 % took it up and under 10 % stayed once the subsidy ended). 0.1 is an order of
magnitude above the auto-enrolment evidence; run 0 and 0.3 for a range.
"""
from __future__ import annotations

import math
from datetime import date
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rules import KINDS, SCHEMES, RulesPack, RulesVersion

DEFAULT_ELASTICITY = 0.1
ELASTICITY_MAX = 5.0
RATE_FLOOR_PPM = 1_000
PPB = 1_000_000_000
STREAM = 183  # the draws' stream: [seed, STREAM]
KIND_OF_TYPE = {"ride": 0, "delivery": 1, "seller": 2}


@dataclass(frozen=True)
class Behaviour:
    participation_elasticity: float = 0.0  # 0: static, nobody opts out

    def __post_init__(self) -> None:
        value = self.participation_elasticity
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0 <= value <= ELASTICITY_MAX:
            raise ValueError(f"behaviour.participation_elasticity must be a number from 0 to {ELASTICITY_MAX}, "
                             f"got {value!r}")

    @property
    def static(self) -> bool:
        return self.participation_elasticity == 0

    def as_document(self) -> dict[str, Any]:
        return {"participation_elasticity": self.participation_elasticity}


@dataclass(frozen=True)
class Participation:
    """What the engine needs: per worker a draw and a main kind, per arm and month the keep
    probability of each kind in ppb (None when nobody in the arm can opt out that month)."""

    months: tuple[int, ...]  # yyyymm, the order of keep_ppb's months
    draws: np.ndarray  # int64 per worker, [0, PPB)
    kind: np.ndarray  # int8 per worker: KINDS index of the main kind, −1 for none (never opts out)
    keep_ppb: tuple[tuple[tuple[int, ...] | None, ...], ...]  # arm -> month -> keep ppb per kind, or None
    elasticity: float

    @property
    def any(self) -> bool:
        return any(keep is not None for arm in self.keep_ppb for keep in arm)

    def keeps(self, keep_ppb: Sequence[int], workers: np.ndarray) -> np.ndarray:
        """Whether each of `workers` keeps contributing under `keep_ppb` (population-wide worker indexes)."""
        return keeps(self.draws[workers], self.kind[workers], keep_ppb)


def keeps(draws: np.ndarray, kind: np.ndarray, keep_ppb: Sequence[int]) -> np.ndarray:
    """draw < keep[kind] (a worker of no kind always keeps)."""
    table = np.array(list(keep_ppb) + [PPB], dtype=np.int64)  # index −1: the last entry, PPB
    return draws < table[kind]


def worker_rate_ppm(version: RulesVersion, kind: str) -> int:
    """What is deducted from the worker per VND of a kind's transactions: si + oa + ui worker rates."""
    return sum(int(version.rates_ppm.get((kind, scheme, "worker"), 0)) for scheme in SCHEMES)


def keep_probability(reform_ppm: int, baseline_ppm: int, elasticity: float) -> float:
    if reform_ppm <= baseline_ppm or elasticity == 0:
        return 1.0
    return (max(reform_ppm, RATE_FLOOR_PPM) / max(baseline_ppm, RATE_FLOOR_PPM)) ** (-elasticity)


def plan(workers: pd.DataFrame, months: Sequence[int], packs: Sequence[RulesPack], behaviour: Behaviour,
         seed: int) -> Participation | None:
    """The participation of every arm (packs[0] is the baseline) over `months`; None when static."""
    if behaviour.static:
        return None
    baseline = packs[0]
    keep_ppb = []
    for pack in packs:
        per_month = []
        for month in months:
            day = date(month // 100, month % 100, 1)  # the month's rules (engine.first_day; no import back up)
            version, base = pack.version_on(day), baseline.version_on(day)
            keep = tuple(int(keep_probability(worker_rate_ppm(version, kind), worker_rate_ppm(base, kind),
                                              behaviour.participation_elasticity) * PPB) for kind in KINDS)
            per_month.append(None if all(k >= PPB for k in keep) else keep)
        keep_ppb.append(tuple(per_month))
    kinds = np.full(len(workers), -1, dtype=np.int8)
    if "worker_type" in workers:  # through the categories, not a string per worker
        types = pd.Categorical(workers["worker_type"])
        lookup = np.array([KIND_OF_TYPE.get(str(name), -1) for name in types.categories] + [-1], dtype=np.int8)
        kinds = lookup[types.codes]
    draws = np.random.default_rng([seed, STREAM]).integers(0, PPB, size=len(workers), dtype=np.int64)
    return Participation(tuple(int(m) for m in months), draws, kinds, tuple(keep_ppb),
                         behaviour.participation_elasticity)


def summary(participation: Participation | None, activity: pd.DataFrame, months: Sequence[int],
            arms: Sequence[str], weights: np.ndarray | None = None) -> pd.DataFrame:
    """Per arm: workers active in the run, those who opted out in at least one month they worked
    (`participants_lost`), the worker-months opted out, and the same weighted to national figures.
    `months`: the population's (its activity is sorted by month, then worker)."""
    worker = activity["worker"].to_numpy()
    month = activity["month"].to_numpy()
    bounds = np.searchsorted(month, np.asarray(months, dtype=month.dtype), side="left").tolist() + [len(month)]
    weights = weights if weights is not None else np.ones(int(worker.max()) + 1 if len(worker) else 0)
    # One month at a time (its rows are sorted by worker): who is active, and who of them opts out per arm.
    # "Active in the run" is a mask over the workers, not a sort of every worker-month (np.unique).
    seen = np.zeros(len(weights), dtype=bool)
    lost = [np.zeros(len(weights), dtype=bool) for _ in arms]
    months_out = [0] * len(arms)
    weighted_months = [0.0] * len(arms)
    for m in range(len(months)):
        rows = worker[bounds[m]:bounds[m + 1]]
        if not len(rows):
            continue
        first = np.ones(len(rows), dtype=bool)
        np.not_equal(rows[1:], rows[:-1], out=first[1:])
        active = rows[first]
        seen[active] = True
        if participation is None:
            continue
        for a in range(len(arms)):
            keep = participation.keep_ppb[a][participation.months.index(months[m])]
            if keep is None:
                continue
            out = active[~participation.keeps(keep, active)]
            lost[a][out] = True
            months_out[a] += len(out)
            weighted_months[a] += float(weights[out].sum())
    workers_active = int(seen.sum())
    result = []
    for a, name in enumerate(arms):
        result.append({"arm": name, "workers_active": workers_active,
                       "participants_lost": int(lost[a].sum()), "worker_months_opted_out": int(months_out[a]),
                       "participants_lost_national": int(round(float(weights[lost[a]].sum()))),
                       "worker_months_opted_out_national": int(round(weighted_months[a])),
                       "participation_elasticity": participation.elasticity if participation is not None else 0.0})
    return pd.DataFrame(result)


"""Months credited towards a pension (RULES.md §11): the one implementation, over arrays of workers.

The ledger (at each month close, for statements, in `verify`) and the simulator call the same
three functions on a `CreditState` (one slot per worker):

- `accrue(state, si_vnd, month)`: a month's `si` totals (worker + platform + subsidy, refunds
  included) enter the pool; the first month with a non-zero total becomes the first candidate;
- `credit(state, month, schedule)`: the close of `month` credits candidates while the pool pays
  their floor (`pooled`), or `month` alone when its own total reaches its floor (`per_month`),
  never a month after `month`, at most once per calendar month;
- `next_credit_needs(state, month, schedule)`: max(0, floor(candidate) − pool).

Months are ordinals (`year × 12 + month − 1`: `month_ordinal(202602)`), so "the next calendar
month" is + 1 on an array. Money is int64 VND. A `FloorSchedule` is the pack's dated
`pension_floor_contribution_vnd` and `crediting`: `floor(m)` is the value of the version in
force on month m's first day. Nothing here reads a clock, a file or a database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable, NamedTuple

import numpy as np

from rules.model import RulesVersion

NONE = -1  # "no month": no credited month yet, no non-zero si yet
POOLED, PER_MONTH = "pooled", "per_month"
PENSION_MONTHS_NEEDED = 180  # credited months for a voluntary-SI pension (RULES.md §11)


def month_ordinal(yyyymm):
    """202602 -> 2026 × 12 + 1 (scalars or int arrays)."""
    return (yyyymm // 100) * 12 + yyyymm % 100 - 1


def ordinal_month(ordinal):
    """The inverse of `month_ordinal`: ordinal -> YYYYMM (scalars or int arrays)."""
    return (ordinal // 12) * 100 + ordinal % 12 + 1


class FloorSchedule:
    """`floor(m)` and the crediting mode of each month, from a pack's dated versions.

    A version applies from the first month whose first day it is in force on (one taking
    effect on the 15th applies from the next month). Months before the first version take
    the first version's values (no booking can be there: its events are refused).
    """

    def __init__(self, versions: Iterable[RulesVersion]) -> None:
        ordered = sorted(versions, key=lambda version: version.effective_from)
        if not ordered:
            raise ValueError("a floor schedule needs at least one rules version")
        starts, floors, modes = [], [], []
        for version in ordered:
            day = version.effective_from
            start = day.year * 12 + day.month - 1 + (0 if day.day == 1 else 1)
            if starts and starts[-1] == start:  # two versions in one month: the later one is in force on the 1st
                floors[-1], modes[-1] = version.pension_floor_contribution_vnd, version.crediting
                continue
            starts.append(start)
            floors.append(version.pension_floor_contribution_vnd)
            modes.append(version.crediting)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.floors = np.asarray(floors, dtype=np.int64)
        self.modes = tuple(modes)
        self.lowest = int(self.floors.min())  # no pool below it pays any month

    @classmethod
    def of(cls, pack) -> "FloorSchedule":
        """The schedule of a `RulesPack` (anything with `.versions`)."""
        return cls(pack.versions)

    def _position(self, ordinals):
        return np.maximum(np.searchsorted(self.starts, ordinals, side="right") - 1, 0)

    def floor(self, ordinals) -> np.ndarray:
        """floor(m) for an array of month ordinals (int64 VND)."""
        ordinals = np.asarray(ordinals, dtype=np.int64)
        if len(self.floors) == 1:
            return np.full(ordinals.shape, self.floors[0], dtype=np.int64)
        return self.floors[self._position(ordinals)]

    def floor_of(self, ordinal: int) -> int:
        return int(self.floors[int(self._position(np.int64(ordinal)))])

    def mode(self, ordinal: int) -> str:
        """`pooled` or `per_month`: the mode of the version in force on the month's first day."""
        return self.modes[int(self._position(np.int64(ordinal)))]

    def floor_on(self, day: date) -> int:
        return self.floor_of(day.year * 12 + day.month - 1)


@dataclass
class CreditState:
    """Per worker (one slot each, same order as the caller's worker ids)."""

    pool: np.ndarray            # §11 step 1: si totals accrued − floors of the months credited (may be < 0)
    last_credited: np.ndarray   # ordinal of the last credited month, NONE if none
    first_nonzero: np.ndarray   # ordinal of the first month with a non-zero si total, NONE if none
    credited: np.ndarray        # months credited so far
    month_si: np.ndarray        # the si total of the last month accrued (what `per_month` compares)
    month: int = NONE           # ordinal of the last month accrued

    @classmethod
    def empty(cls, workers: int) -> "CreditState":
        zero = np.zeros(workers, dtype=np.int64)
        return cls(zero.copy(), np.full(workers, NONE, dtype=np.int64), np.full(workers, NONE, dtype=np.int64),
                   zero.copy(), zero.copy())

    def copy(self) -> "CreditState":
        return CreditState(self.pool.copy(), self.last_credited.copy(), self.first_nonzero.copy(),
                           self.credited.copy(), self.month_si.copy(), self.month)

    def candidate(self) -> np.ndarray:
        """§11 step 2: the month after the last credited one; else the first month with non-zero si
        (NONE for a worker with neither)."""
        return np.where(self.last_credited != NONE, self.last_credited + 1, self.first_nonzero)


class Credits(NamedTuple):
    """The months one `credit` call credited: parallel arrays, in (round, worker) order."""

    worker: np.ndarray   # index into the state's slots
    month: np.ndarray    # ordinal of the credited month
    floor_vnd: np.ndarray

    @classmethod
    def none(cls) -> "Credits":
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty.copy(), empty.copy())


def accrue(state: CreditState, si_vnd: np.ndarray, month: int, first_nonzero: np.ndarray | None = None) -> None:
    """Month `month`'s si totals enter the pool (in place). `first_nonzero` (optional): when the
    totals stand for several months at once, the first of them with a non-zero total per worker."""
    si_vnd = np.asarray(si_vnd, dtype=np.int64)
    state.pool += si_vnd
    if first_nonzero is None:  # in place: only workers with no non-zero month yet and a non-zero total now
        state.first_nonzero[(state.first_nonzero == NONE) & (si_vnd != 0)] = month
    else:
        state.first_nonzero = np.where(state.first_nonzero == NONE, np.asarray(first_nonzero, np.int64),
                                       state.first_nonzero)
    state.month_si = si_vnd.copy()
    state.month = month


def credit(state: CreditState, month: int, schedule: FloorSchedule, mode: str | None = None) -> Credits:
    """The crediting of the close of `month` (§11 step 3), in place; returns what it credited.

    `mode` defaults to the schedule's mode for `month` (the version in force on its first day).
    """
    mode = mode or schedule.mode(month)
    if mode == PER_MONTH:
        floor = schedule.floor_of(month)
        chosen = np.flatnonzero((state.month_si >= floor) & (state.last_credited < month)
                                & (state.month == month))
        floors = np.full(len(chosen), floor, dtype=np.int64)
        _apply(state, chosen, np.full(len(chosen), month, dtype=np.int64), floors)
        return Credits(chosen.astype(np.int64), np.full(len(chosen), month, dtype=np.int64), floors)
    workers: list[np.ndarray] = []
    months: list[np.ndarray] = []
    paid: list[np.ndarray] = []
    # Only a pool of at least the lowest floor can pay a month: the steps run on those workers alone
    # (most workers, most months, have less), in worker order as over the whole array.
    chosen = np.flatnonzero(state.pool >= schedule.lowest)
    last = state.last_credited[chosen]
    candidate = np.where(last != NONE, last + 1, state.first_nonzero[chosen])
    due = (candidate != NONE) & (candidate <= month)
    chosen, candidate = chosen[due], candidate[due]
    while len(chosen):
        floors = schedule.floor(candidate)
        pays = state.pool[chosen] >= floors
        chosen, candidate, floors = chosen[pays], candidate[pays], floors[pays]
        if not len(chosen):
            break
        _apply(state, chosen, candidate, floors)
        workers.append(chosen)
        months.append(candidate)
        paid.append(floors)
        candidate = candidate + 1
        due = candidate <= month
        chosen, candidate = chosen[due], candidate[due]
    if not workers:
        return Credits.none()
    return Credits(np.concatenate(workers).astype(np.int64), np.concatenate(months), np.concatenate(paid))


def _apply(state: CreditState, chosen: np.ndarray, months: np.ndarray, floors: np.ndarray) -> None:
    state.pool[chosen] -= floors
    state.last_credited[chosen] = months
    state.credited[chosen] += 1


def next_credit_needs(state: CreditState, month: int, schedule: FloorSchedule,
                      mode: str | None = None) -> np.ndarray:
    """max(0, floor(candidate) − pool) after the crediting of `month` (RULES.md §11).

    A worker with no si at all has no candidate: the floor of `month` itself stands in (the
    least a first month could need). `per_month`: what `month`'s own total lacks of its floor,
    or the next month's floor once `month` is credited.
    """
    mode = mode or schedule.mode(month)
    if mode == PER_MONTH:
        done = state.last_credited >= month
        lacking = schedule.floor(np.full(len(state.pool), month, dtype=np.int64)) - np.where(
            state.month == month, state.month_si, 0)
        return np.where(done, schedule.floor(np.full(len(state.pool), month + 1, dtype=np.int64)),
                        np.maximum(0, lacking))
    candidate = state.candidate()
    candidate = np.where(candidate == NONE, month, candidate)
    return np.maximum(0, schedule.floor(candidate) - state.pool)


def replay(si_by_month: dict[int, np.ndarray], closes: Iterable[int], schedule: FloorSchedule,
           workers: int) -> tuple[CreditState, list[tuple[int, Credits]]]:
    """Every close from scratch: `si_by_month` maps a month ordinal to the workers' si totals booked
    in it; each month in `closes` (ascending) is credited after its own and every earlier month has
    accrued. Months after the last close accrue too (so the state ends with all that is booked).
    Returns the final state and, per close, what it credited (what `verify` compares)."""
    state = CreditState.empty(workers)
    closes = sorted(closes)
    history: list[tuple[int, Credits]] = []
    months = sorted(set(si_by_month) | set(closes))
    for month in months:
        accrue(state, si_by_month.get(month, np.zeros(workers, dtype=np.int64)), month)
        if month in closes:
            history.append((month, credit(state, month, schedule)))
    return state, history

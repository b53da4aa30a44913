"""A small independent model of RULES.md §11 (pooled crediting), for the tests to compare against.

Written from the rule's text, one worker at a time, with plain Python ints and YYYYMM months;
it shares no code with `rules.crediting` (which works on arrays of month ordinals).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


def following(month: int) -> int:
    return month + 89 if month % 100 == 12 else month + 1


@dataclass
class ModelWorker:
    floor: Callable[[int], int]
    booked: dict[int, int] = field(default_factory=dict)  # month -> si total (worker + platform + subsidy)
    credited: list[tuple[int, int]] = field(default_factory=list)  # (credited month, close month)

    def book(self, month: int, si_vnd: int) -> None:
        self.booked[month] = self.booked.get(month, 0) + si_vnd

    def pool(self, up_to: int, credited: list[tuple[int, int]]) -> int:
        return sum(v for m, v in self.booked.items() if m <= up_to) - sum(self.floor(m) for m, _c in credited)

    def candidate(self, up_to: int, credited: list[tuple[int, int]]) -> int | None:
        if credited:
            return following(max(m for m, _c in credited))
        nonzero = sorted(m for m, v in self.booked.items() if m <= up_to and v != 0)
        return nonzero[0] if nonzero else None

    def close(self, month: int) -> list[int]:
        """§11 steps 1–3 at the close of `month`; returns the months credited."""
        pool = self.pool(month, self.credited)
        candidate = self.candidate(month, self.credited)
        done = []
        while candidate is not None and candidate <= month and pool >= self.floor(candidate):
            pool -= self.floor(candidate)
            self.credited.append((candidate, month))
            done.append(candidate)
            candidate = following(candidate)
        return done

    def figures(self, month: int) -> tuple[int, int, int]:
        """(credited_months_to_date, pool_vnd, next_credit_needs_vnd) of a closed month's statement."""
        credited = [(m, c) for m, c in self.credited if c <= month]
        pool = self.pool(month, credited)
        candidate = self.candidate(month, credited)
        return len(credited), pool, max(0, self.floor(candidate if candidate is not None else month) - pool)


def flat_floor(value: int = 330_000) -> Callable[[int], int]:
    return lambda _month: value

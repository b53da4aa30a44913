"""What a balance means: the pension projection for one worker's own history (an estimate).

Pure integer arithmetic, no clock, no database: the ledger's statement calls `project` with a
worker's figures (RULES.md §11), and the simulator can call it with a simulated worker's.

The estimate (DOMAIN.md's facts, Law on Social Insurance 2024):

- `pace_vnd`: the worker's pooled `si` accrual per calendar month (worker + platform + state
  top-up), averaged over the last up to 12 months up to the statement's month, from the first
  month with any `si` (`accrual_pace_vnd`);
- at that pace, a year pays `credited_months_per_year = min(12, pace × 12 // floor)` floors;
- the months still needed, `180 − credited`, need `(180 − credited) × floor − pool` more VND, so
  the 180th month is credited `ceil(that / pace)` months after the statement's month — and never
  before the next month to credit plus the months still needed, minus one (§11 credits each
  calendar month at most once, never a month after the close); none at a pace of 0, and none
  (`beyond_horizon`) when that is more than 50 years (`HORIZON_MONTHS`) away;
- the voluntary SI contribution is 22 % of the chosen income, so a month credited at the floor
  has an income base of `round_half_up(floor × 10^6 / 220,000)` (330,000 → 1,500,000), and the
  pension after 180 credited months (15 years) is 45 % of it: `round_half_up(base × 450,000 / 10^6)`
  (1,500,000 → 675,000 VND a month); +2 % per further full year, up to 75 % (`pension_rate_ppm`).

Assumptions (listed in every projection, `ASSUMPTIONS`): the pace continues; every credited month
is at today's floor; today's law; no indexation of incomes or pensions, no interest.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from rules.arithmetic import PPM, round_half_up
from rules.crediting import PENSION_MONTHS_NEEDED, month_ordinal, ordinal_month

PENSION_RATE_PPM = 450_000  # 45 % of the average income base after 15 years (180 months)
PENSION_RATE_STEP_PPM = 20_000  # + 2 % for each further full year of contributions
PENSION_RATE_MAX_PPM = 750_000  # up to 75 %
SI_CONTRIBUTION_RATE_PPM = 220_000  # voluntary SI: 22 % of the chosen income
PACE_WINDOW_MONTHS = 12  # the pace is the average over the last up to 12 months
HORIZON_MONTHS = 600  # an estimate further than 50 years out says "not within 50 years", not a date
#: The assumptions of every projection, as keys (the texts are in api/i18n.py, `assumption_<key>`).
ASSUMPTIONS = ("pace_continues", "todays_floor", "todays_law", "no_indexation")


def pension_rate_ppm(credited_months: int) -> int:
    """The pension as a share of the income base: 0 below 180 credited months, 45 % at 180,
    + 2 % per further full year (12 months), at most 75 %."""
    if credited_months < PENSION_MONTHS_NEEDED:
        return 0
    years_beyond = (credited_months - PENSION_MONTHS_NEEDED) // 12
    return min(PENSION_RATE_MAX_PPM, PENSION_RATE_PPM + PENSION_RATE_STEP_PPM * years_beyond)


def income_base_vnd(floor_vnd: int) -> int:
    """The income a contribution of `floor_vnd` is 22 % of: round_half_up(floor × 10^6 / 220,000)."""
    return round_half_up(floor_vnd * PPM, SI_CONTRIBUTION_RATE_PPM)


def accrual_pace_vnd(monthly_si_vnd: Iterable[int]) -> int:
    """The average of up to the last 12 monthly `si` totals given (oldest first, one per calendar
    month, months without any `si` as 0), rounded half up; 0 for none, and never below 0 (refunds)."""
    window = list(monthly_si_vnd)[-PACE_WINDOW_MONTHS:]
    if not window:
        return 0
    return round_half_up(max(0, sum(window)), len(window))


@dataclass(frozen=True)
class Projection:
    """One worker's pension projection: an estimate, never a promise (see `ASSUMPTIONS`)."""

    estimate: bool
    pace_vnd: int  # si accrued per month, on average (`accrual_pace_vnd`)
    pace_months: int  # how many months that average is over
    floor_vnd: int  # today's floor (the pack's `pension_floor_contribution_vnd`)
    credited_months: int
    months_needed: int
    credited_months_per_year: int  # whole floors a year of accrual at this pace pays (≤ 12)
    reached: bool  # 180 months are credited already
    months_to_go: int | None  # calendar months from the statement's month; None: not at this pace (or beyond)
    beyond_horizon: bool  # the pace is above 0 but 180 months would take more than HORIZON_MONTHS
    reach_month: str | None  # YYYY-MM when the 180th month would be credited; None: reached or not at this pace
    income_base_vnd: int  # floor / 22 %
    pension_rate_ppm: int  # 45 % at 180 months
    pension_vnd: int  # a month's pension at 180 credited months
    assumptions: tuple[str, ...]

    def as_dict(self) -> dict:
        out = asdict(self)
        out["assumptions"] = list(self.assumptions)
        return out


def project(credited_months: int, pool_vnd: int, pace_vnd: int, floor_vnd: int, month: int,
            next_month: int | None = None, pace_months: int = PACE_WINDOW_MONTHS) -> Projection:
    """The projection at the statement's `month` (YYYYMM) for a worker with `credited_months`, a
    pooled balance `pool_vnd` (may be negative after a refund), accruing `pace_vnd` a month, under
    today's floor `floor_vnd` (> 0); `next_month` (YYYYMM) is the next month to credit, if any;
    `pace_months` is how many months the pace was averaged over (reported, not used)."""
    if floor_vnd <= 0:
        raise ValueError(f"a pension projection needs a floor above 0, got {floor_vnd}")
    pace = max(0, pace_vnd)
    remaining = max(0, PENSION_MONTHS_NEEDED - credited_months)
    base = income_base_vnd(floor_vnd)
    rate = pension_rate_ppm(PENSION_MONTHS_NEEDED)
    months_to_go: int | None
    reach: int | None
    if remaining == 0:
        months_to_go, reach = 0, None
    elif pace == 0:
        months_to_go, reach = None, None
    else:
        needs = max(0, remaining * floor_vnd - pool_vnd)
        months_to_go = -(-needs // pace)  # ceiling, in integers
        start = month_ordinal(month)
        earliest = start if next_month is None else month_ordinal(next_month) + remaining - 1
        reach_ordinal = max(start + months_to_go, earliest)
        months_to_go = reach_ordinal - start
        reach = ordinal_month(reach_ordinal)
    beyond = months_to_go is not None and months_to_go > HORIZON_MONTHS
    if beyond:
        months_to_go, reach = None, None
    return Projection(
        estimate=True, pace_vnd=pace, pace_months=pace_months, floor_vnd=floor_vnd,
        credited_months=credited_months, months_needed=PENSION_MONTHS_NEEDED,
        credited_months_per_year=min(12, pace * 12 // floor_vnd), reached=remaining == 0,
        months_to_go=months_to_go, beyond_horizon=beyond,
        reach_month=None if reach is None else f"{reach // 100:04d}-{reach % 100:02d}",
        income_base_vnd=base, pension_rate_ppm=rate, pension_vnd=round_half_up(base * rate, PPM),
        assumptions=ASSUMPTIONS)

"""Integer rounding for money: the only rounding the books ever do (RULES.md §4–§6).

`round_half_up(n, d)` is n/d rounded to the nearest integer, halves away from zero,
for n ≥ 0 and d > 0, computed as `(2n + d) // 2d` — no floats, no Decimal.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in the array forms: `import rules` alone (e.g. `ansinh packs list`) loads no NumPy
    import numpy as np

PPM = 1_000_000


def round_half_up(numerator: int, denominator: int) -> int:
    """n/d rounded half up, exactly. Refuses negative inputs: money shares are never negative."""
    if numerator < 0 or denominator <= 0:
        raise ValueError(f"round_half_up needs n ≥ 0 and d > 0, got {numerator}/{denominator}")
    return (2 * numerator + denominator) // (2 * denominator)


def share_vnd(amount_vnd: int, rate_ppm: int) -> int:
    """One share of RULES.md §4: round_half_up(amount × r / 1,000,000)."""
    return (2 * amount_vnd * rate_ppm + PPM) // (2 * PPM)


def shares_array_vnd(amounts_vnd: np.ndarray, rates_ppm: np.ndarray) -> np.ndarray:
    """`share_vnd` over arrays (broadcasting), in int64, by the compiled kernel `rules.kernels.share`.

    Safe because amount ≤ 10^10 and rate ≤ 10^6, so 2·amount·rate ≤ 2·10^16 < 2^63.
    """
    import numpy as np

    from rules import kernels  # numba: imported when an array is first priced

    amounts, rates = np.broadcast_arrays(np.asarray(amounts_vnd, dtype=np.int64), np.asarray(rates_ppm, dtype=np.int64))
    flat = kernels.shares_elementwise(np.ascontiguousarray(amounts).ravel(), np.ascontiguousarray(rates).ravel())
    return flat.reshape(amounts.shape)


def refund_target_vnd(share_vnd_: int, refunded_total_vnd: int, original_amount_vnd: int) -> int:
    """RULES.md §5: round_half_up(s × C' / o.amount), the cumulative reversal after C'."""
    return (2 * share_vnd_ * refunded_total_vnd + original_amount_vnd) // (2 * original_amount_vnd)


def late_interest_vnd(overdue_day_vnd: int, rate_ppm_per_month: int, days_in_month: int) -> int:
    """Simple late-payment interest for one month (docs/payments.md).

    `overdue_day_vnd` is the sum, over the month's overdue days, of the amount still
    unpaid on each day; the monthly rate is spread evenly over the month's calendar days:
    round_half_up(Σ unpaid × rate / (1,000,000 × days in the month)).
    """
    return round_half_up(overdue_day_vnd * rate_ppm_per_month, PPM * days_in_month)

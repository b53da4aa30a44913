"""Share, refund and subsidy arithmetic: pure functions of (numbers, rules version).

Where shares are computed (RULES.md §4), refunds reversed (§5) and subsidies worked
out (§6). Array forms serve bulk ingest and month close; scalar forms serve refunds
and the reference model in the tests. Both give the same integers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rules.arithmetic import PPM, refund_target_vnd, round_half_up, share_vnd, shares_array_vnd
from rules.model import KINDS, SHARE_KEYS, RulesVersion

if TYPE_CHECKING:  # imported in the array forms: `import rules` alone (e.g. `ansinh packs list`) loads no NumPy
    import numpy as np


def event_shares_vnd(kind: str, amount_vnd: int, version: RulesVersion) -> tuple[int, ...]:
    """The six shares (SHARE_KEYS order) of a completed event of `kind` and `amount_vnd`."""
    return tuple(share_vnd(amount_vnd, rate) for rate in version.share_row_ppm(kind))


def rate_matrix_ppm(version: RulesVersion) -> np.ndarray:
    """(len(KINDS), 6) int64: row k is the rates of KINDS[k]."""
    import numpy as np

    return np.array([version.share_row_ppm(kind) for kind in KINDS], dtype=np.int64)


def shares_matrix_vnd(kind_index: np.ndarray, amounts_vnd: np.ndarray, version: RulesVersion) -> np.ndarray:
    """(n, 6) int64 shares for n completed events given as kind indexes (into KINDS) and amounts."""
    import numpy as np

    rates = rate_matrix_ppm(version)[np.asarray(kind_index, dtype=np.int64)]
    return shares_array_vnd(np.asarray(amounts_vnd, dtype=np.int64)[:, None], rates)


def refund_reversals_vnd(original_shares_vnd: Sequence[int], original_amount_vnd: int,
                         refunded_before_vnd: int, reversed_before_vnd: Sequence[int],
                         refund_amount_vnd: int) -> tuple[int, ...]:
    """Per share, what this refund reverses (RULES.md §5).

    `refunded_before_vnd` is C, `reversed_before_vnd` the R of each share. The caller
    has checked C + a ≤ original amount (rejection 12 otherwise).
    """
    refunded_after = refunded_before_vnd + refund_amount_vnd
    if refund_amount_vnd <= 0 or refunded_after > original_amount_vnd:
        raise ValueError(f"refund of {refund_amount_vnd} after {refunded_before_vnd} exceeds "
                         f"the original {original_amount_vnd}")
    return tuple(refund_target_vnd(share, refunded_after, original_amount_vnd) - done
                 for share, done in zip(original_shares_vnd, reversed_before_vnd))


def subsidy_vnd(own_vnd: int, scheme: str, tier: str, version: RulesVersion) -> int:
    """RULES.md §6 for one worker and scheme: own is the net worker-party shares of the month."""
    if scheme not in version.subsidised_schemes:
        return 0
    base = min(max(0, own_vnd), version.subsidy_base_cap_vnd[scheme])
    return round_half_up(base * version.tier_rate_ppm[tier], PPM)


def subsidy_array_vnd(own_vnd: np.ndarray, scheme: str, tier_rate_ppm: np.ndarray,
                      version: RulesVersion) -> np.ndarray:
    """`subsidy_vnd` over arrays of own contributions and their workers' tier rates."""
    import numpy as np

    own = np.asarray(own_vnd, dtype=np.int64)
    if scheme not in version.subsidised_schemes:
        return np.zeros_like(own)
    base = np.minimum(np.maximum(own, 0), version.subsidy_base_cap_vnd[scheme])
    return shares_array_vnd(base, np.asarray(tier_rate_ppm, dtype=np.int64))


__all__ = ["SHARE_KEYS", "event_shares_vnd", "rate_matrix_ppm", "shares_matrix_vnd",
           "refund_reversals_vnd", "subsidy_vnd", "subsidy_array_vnd"]

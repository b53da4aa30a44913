"""Share, refund and subsidy arithmetic: pure functions of (numbers, rules version).

Where shares are computed (RULES.md §4), refunds reversed (§5) and subsidies worked
out (§6). The shares and subsidies of the books are `rules.kernels`' compiled `share` and
`subsidy`, the kernels the simulator runs too: array forms for bulk ingest and month close,
the one-event form for a refund's original. `subsidy_vnd` states §6 in Python ints for the
reference model in the tests; a property test pins it to the kernel.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rules.arithmetic import PPM, refund_target_vnd, round_half_up
from rules.model import KINDS, SHARE_KEYS, RulesVersion

if TYPE_CHECKING:  # imported in the array forms: `import rules` alone (e.g. `ansinh packs list`) loads no NumPy
    import numpy as np


def event_shares_vnd(kind: str, amount_vnd: int, version: RulesVersion) -> tuple[int, ...]:
    """The six shares (SHARE_KEYS order) of a completed event of `kind` and `amount_vnd` (the kernel's)."""
    import numpy as np

    from rules import kernels

    rates = np.array([version.share_row_ppm(kind)], dtype=np.int64)
    row = kernels.shares_matrix(np.zeros(1, dtype=np.int64), np.array([amount_vnd], dtype=np.int64), rates)
    return tuple(int(share) for share in row[0])


def rate_matrix_ppm(version: RulesVersion) -> np.ndarray:
    """(len(KINDS), 6) int64: row k is the rates of KINDS[k]."""
    import numpy as np

    return np.array([version.share_row_ppm(kind) for kind in KINDS], dtype=np.int64)


def shares_matrix_vnd(kind_index: np.ndarray, amounts_vnd: np.ndarray, version: RulesVersion) -> np.ndarray:
    """(n, 6) int64 shares for n completed events given as kind indexes (into KINDS) and amounts."""
    import numpy as np

    from rules import kernels

    return kernels.shares_matrix(np.ascontiguousarray(kind_index, dtype=np.int64),
                                 np.ascontiguousarray(amounts_vnd, dtype=np.int64), rate_matrix_ppm(version))


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


def subsidy_array_vnd(own_vnd: np.ndarray, scheme: str, tier_rate_ppm: np.ndarray, version: RulesVersion,
                      used_months: np.ndarray | None = None) -> np.ndarray:
    """`subsidy_vnd` over arrays of own contributions and their workers' tier rates, by the compiled kernel
    `rules.kernels.subsidy`. `used_months`: each worker's subsidised months before this one; a worker who has
    used the version's `max_subsidised_months` gets zero (RULES.md §9)."""
    import numpy as np

    from rules import kernels

    own = np.ascontiguousarray(own_vnd, dtype=np.int64)
    if scheme not in version.subsidised_schemes:
        return np.zeros_like(own)
    rates = np.ascontiguousarray(np.broadcast_to(np.asarray(tier_rate_ppm, dtype=np.int64), own.shape))
    limit = -1 if version.max_subsidised_months is None or used_months is None else int(version.max_subsidised_months)
    used = np.zeros_like(own) if used_months is None else np.ascontiguousarray(used_months, dtype=np.int64)
    return kernels.subsidies(own, np.int64(version.subsidy_base_cap_vnd[scheme]), rates, used, np.int64(limit))


__all__ = ["SHARE_KEYS", "event_shares_vnd", "rate_matrix_ppm", "shares_matrix_vnd",
           "refund_reversals_vnd", "subsidy_vnd", "subsidy_array_vnd"]

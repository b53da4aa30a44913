"""The money arithmetic compiled: the one implementation the ledger and the simulator run.

Two scalar kernels hold the arithmetic of RULES.md:

- `share(amount, rate)`: §4's round_half_up(amount × rate / 1,000,000);
- `subsidy(own, cap, rate, used, limit)`: §6's round_half_up(min(max(0, own), cap) × rate /
  1,000,000), and §9's `max_subsidised_months`: zero for a worker whose `used` subsidised months
  reached `limit` (limit < 0: no limit).

The array forms loop over them: `shares_matrix` (the ledger's bulk ingest, through
`rules.shares_matrix_vnd`), `shares_elementwise` (`rules.shares_array_vnd`) and `subsidies` (the
month close, through `rules.subsidy_array_vnd`). The simulator's fused passes
(simulations/engine.py) call `share` and `subsidy` per row and per worker-month: there is no
other copy of the formulas to drift (tests/simulations/test_engine_agrees_with_ledger.py
swaps a kernel here for a mutant and watches the agreement with the books fail).

`share` divides a non-negative numerator unsigned: the same quotient as the floor division of
`rules.arithmetic.share_vnd` (its statement in Python ints, the reference the tests compare
with) and about twice as fast compiled; anything else (a replay's net negative row) takes
`share_vnd` itself, compiled. int64 throughout: amount ≤ 10^10 per event and rate ≤ 10^6, so
2·amount·rate + 10^6 < 2^63 (a row summing events stays far below it too).

Compiled by numba on first call (cached on disk beside this file); `rules` imports this
module only when an array is priced, so `import rules` stays light.
"""
from __future__ import annotations

import numba
import numpy as np

from rules.arithmetic import PPM, share_vnd

_share_vnd = numba.njit(inline="always", cache=True)(share_vnd)
_HALF = np.uint64(PPM)
_WHOLE = np.uint64(2 * PPM)


@numba.njit(inline="always", cache=True)
def share(amount, rate):  # pragma: no cover - compiled
    """RULES.md §4: round_half_up(amount × rate / 10^6) as int64."""
    if amount >= 0 and rate >= 0:
        return np.int64((np.uint64(2) * np.uint64(amount) * np.uint64(rate) + _HALF) // _WHOLE)
    return np.int64(_share_vnd(amount, rate))


@numba.njit(inline="always", cache=True)
def subsidy(own, cap, rate, used, limit):  # pragma: no cover - compiled
    """RULES.md §6 for one worker, month and scheme; zero once `used` ≥ `limit` ≥ 0 (§9)."""
    if limit >= 0 and used >= limit:
        return np.int64(0)
    return share(min(max(np.int64(0), own), cap), rate)


@numba.njit(cache=True, nogil=True)
def shares_matrix(kind, amounts, rates):  # pragma: no cover - compiled
    """(n, columns) int64: row i is `share(amounts[i], rates[kind[i], j])` for every column j."""
    n = len(amounts)
    columns = rates.shape[1]
    out = np.empty((n, columns), dtype=np.int64)
    for i in range(n):
        k = kind[i]
        for j in range(columns):
            out[i, j] = share(amounts[i], rates[k, j])
    return out


@numba.njit(cache=True, nogil=True)
def shares_elementwise(amounts, rates):  # pragma: no cover - compiled
    """`share` of equal-length 1-d arrays, element by element."""
    out = np.empty(len(amounts), dtype=np.int64)
    for i in range(len(amounts)):
        out[i] = share(amounts[i], rates[i])
    return out


@numba.njit(cache=True, nogil=True)
def subsidies(own, cap, rates, used, limit):  # pragma: no cover - compiled
    """`subsidy` of each worker: own contributions, their tier rates and subsidised months so far."""
    out = np.empty(len(own), dtype=np.int64)
    for i in range(len(own)):
        out[i] = subsidy(own[i], cap, rates[i], used[i], limit)
    return out

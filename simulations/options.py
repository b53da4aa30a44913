"""What the results need beyond the engine's output: the budget window, its inflation and the ranges.

Kept apart (no numpy, no numba) so that reading a scenario stays light; `simulations.results`
documents what each setting does.
"""
from __future__ import annotations

from dataclasses import dataclass

# Vietnam's average CPI rise in 2024: 3.63 % over 2023 (General Statistics Office, press conference of
# 6 January 2025; https://en.sggp.org.vn/average-cpi-of-2024-surges-363-percent-post114996.html).
INFLATION_PPM_DEFAULT = 36_300
INFLATION_PPM_MAX = 1_000_000
WINDOW_YEARS_DEFAULT = 10
WINDOW_YEARS_MAX = 50
REPLICATES_DEFAULT = 200
REPLICATES_MIN = 20  # a range from fewer resamples is not worth printing
REPLICATES_MAX = 10_000


@dataclass(frozen=True)
class Options:
    """A scenario's `window` and `ranges`, and its seed (which also seeds the ranges' resampling)."""

    window_years: int = WINDOW_YEARS_DEFAULT
    inflation_ppm: int = INFLATION_PPM_DEFAULT
    replicates: int = REPLICATES_DEFAULT
    seed: int = 0

    def __post_init__(self) -> None:
        assert 1 <= self.window_years <= WINDOW_YEARS_MAX, self
        assert 0 <= self.inflation_ppm <= INFLATION_PPM_MAX, self
        assert REPLICATES_MIN <= self.replicates <= REPLICATES_MAX and self.seed >= 0, self

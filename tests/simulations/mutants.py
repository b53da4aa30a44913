"""Mutants of the rules' kernels (`rules.kernels.share`, `.subsidy`) for the mutation checks: each breaks one
rule of RULES.md on purpose, so a test can show that the agreement it relies on would notice."""
from __future__ import annotations


def floor_share(amount, rate):
    """RULES.md §4 with the rounding changed: floor instead of half up."""
    return (amount * rate) // 1_000_000


def uncapped_subsidy(own, cap, rate, used, limit):
    """RULES.md §6 with the base cap dropped (the months limit of §9 kept)."""
    if limit >= 0 and used >= limit:
        return 0
    return (2 * max(0, own) * rate + 1_000_000) // 2_000_000


MUTANTS = {"dropped cap": ("subsidy", uncapped_subsidy), "floor rounding": ("share", floor_share)}

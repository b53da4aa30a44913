"""Rules packs as dated data, and the pure arithmetic of shares, refunds and subsidy.

`load_pack("vn-pilot").version_on(day)` gives the `RulesVersion` in force on a day;
`rules.shares` turns (event, version) into VND. No I/O beyond reading pack files,
no clock, no database. See `rules/docs.md`.
"""
from rules.arithmetic import (PPM, late_interest_vnd, refund_target_vnd, round_half_up, share_vnd,
                              shares_array_vnd)
from rules.loader import DEFAULT_PACK, PackError, load_pack, pack_from_environment, shipped_packs
from rules.model import (BASE_TIER, KINDS, PARTIES, SCHEMES, SHARE_KEYS, NoVersionInForce, RulesPack,
                         RulesVersion)
from rules.shares import (event_shares_vnd, rate_matrix_ppm, refund_reversals_vnd, shares_matrix_vnd,
                          subsidy_array_vnd, subsidy_vnd)

__all__ = [
    "PPM", "late_interest_vnd", "round_half_up", "share_vnd", "shares_array_vnd", "refund_target_vnd",
    "DEFAULT_PACK", "PackError", "load_pack", "pack_from_environment", "shipped_packs",
    "BASE_TIER", "KINDS", "PARTIES", "SCHEMES", "SHARE_KEYS", "NoVersionInForce", "RulesPack", "RulesVersion",
    "event_shares_vnd", "rate_matrix_ppm", "refund_reversals_vnd", "shares_matrix_vnd",
    "subsidy_array_vnd", "subsidy_vnd",
]

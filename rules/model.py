"""The rules as immutable data: a pack is a named list of dated versions.

A `RulesVersion` says, from its `effective_from` day (Vietnam time) until the next
version's, what rate each (kind, scheme, party) pays, how the state tops up each
household tier, which schemes are subsidised and up to what base. Nothing here
reads a clock, a file or a database.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Mapping

KINDS: tuple[str, ...] = ("ride", "delivery", "order")
SCHEMES: tuple[str, ...] = ("si", "oa", "ui")
PARTIES: tuple[str, ...] = ("worker", "platform")
#: The six shares of an event, in the order every array and tuple of shares uses.
SHARE_KEYS: tuple[tuple[str, str], ...] = tuple((scheme, party) for scheme in SCHEMES for party in PARTIES)
#: The tier of a worker with no household status on record (RULES.md §6).
BASE_TIER = "other"
#: How months are credited towards a pension (RULES.md §11): `pooled` (the default, every shipped
#: pack) or `per_month` (a month counts only on its own `si` total; kept for what-ifs).
CREDITING_MODES: tuple[str, ...] = ("pooled", "per_month")


class NoVersionInForce(LookupError):
    """A day before the first version of a pack (or an unknown version id)."""


@dataclass(frozen=True)
class RulesVersion:
    pack: str
    effective_from: date
    source: str
    description: str
    rates_ppm: Mapping[tuple[str, str, str], int]          # (kind, scheme, party) -> ppm
    tier_rate_ppm: Mapping[str, int]                        # tier -> ppm of own contribution
    subsidised_schemes: tuple[str, ...]
    subsidy_base_cap_vnd: Mapping[str, int]                 # scheme -> VND per month
    max_subsidised_months: int | None = None
    pension_floor_contribution_vnd: int = 330_000
    crediting: str = "pooled"
    payment_due_day: int = 15
    #: simple interest on a platform's overdue dues, per month, charged pro rata per day (docs/payments.md)
    late_interest_ppm_per_month: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rates_ppm", MappingProxyType(dict(self.rates_ppm)))
        object.__setattr__(self, "tier_rate_ppm", MappingProxyType(dict(self.tier_rate_ppm)))
        object.__setattr__(self, "subsidy_base_cap_vnd", MappingProxyType(dict(self.subsidy_base_cap_vnd)))
        object.__setattr__(self, "subsidised_schemes", tuple(self.subsidised_schemes))

    def __hash__(self) -> int:
        return hash(self.version_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RulesVersion) and self.version_id == other.version_id and \
            dict(self.rates_ppm) == dict(other.rates_ppm) and dict(self.tier_rate_ppm) == dict(other.tier_rate_ppm)

    @property
    def version_id(self) -> str:
        """`pack@YYYY-MM-DD`, the name recorded in the books beside every number it made."""
        return f"{self.pack}@{self.effective_from.isoformat()}"

    def share_row_ppm(self, kind: str) -> tuple[int, ...]:
        """The six rates of `kind`, in SHARE_KEYS order."""
        return tuple(self.rates_ppm.get((kind, scheme, party), 0) for scheme, party in SHARE_KEYS)

    def tiers(self) -> tuple[str, ...]:
        return tuple(self.tier_rate_ppm)

    def as_document(self) -> dict:
        """The version as plain data: stored beside the entries it priced, shown by the API and run records."""
        return {
            "version_id": self.version_id,
            "effective_from": self.effective_from.isoformat(),
            "source": self.source,
            "rates_ppm": {".".join(key): value for key, value in sorted(self.rates_ppm.items())},
            "tier_rate_ppm": dict(sorted(self.tier_rate_ppm.items())),
            "subsidised_schemes": list(self.subsidised_schemes),
            "subsidy_base_cap_vnd": dict(sorted(self.subsidy_base_cap_vnd.items())),
            "max_subsidised_months": self.max_subsidised_months,
            "pension_floor_contribution_vnd": self.pension_floor_contribution_vnd,
            "crediting": self.crediting,
            "payment_due_day": self.payment_due_day,
            "late_interest_ppm_per_month": self.late_interest_ppm_per_month,
        }

    @classmethod
    def from_document(cls, pack: str, effective_from: date, document: Mapping) -> "RulesVersion":
        """The inverse of `as_document` (the books re-read the versions they stored)."""
        return cls(pack=pack, effective_from=effective_from, source=document["source"], description="",
                   rates_ppm={tuple(key.split(".")): value for key, value in document["rates_ppm"].items()},
                   tier_rate_ppm=document["tier_rate_ppm"], subsidised_schemes=tuple(document["subsidised_schemes"]),
                   subsidy_base_cap_vnd=document["subsidy_base_cap_vnd"],
                   max_subsidised_months=document["max_subsidised_months"],
                   pension_floor_contribution_vnd=document["pension_floor_contribution_vnd"],
                   crediting=document.get("crediting", "pooled"),
                   payment_due_day=document.get("payment_due_day", 15),
                   late_interest_ppm_per_month=document.get("late_interest_ppm_per_month", 0))


@dataclass(frozen=True)
class RulesPack:
    name: str
    description: str
    versions: tuple[RulesVersion, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.versions, key=lambda version: version.effective_from))
        if not ordered:
            raise ValueError(f"pack {self.name!r} has no versions")
        days = [version.effective_from for version in ordered]
        if len(set(days)) != len(days):
            raise ValueError(f"pack {self.name!r} has two versions with the same effective_from")
        object.__setattr__(self, "versions", ordered)

    @property
    def first_effective_from(self) -> date:
        return self.versions[0].effective_from

    def version_on(self, day: date) -> RulesVersion:
        """The version in force on `day` (a Vietnam-local date): the latest with effective_from ≤ day."""
        chosen = None
        for version in self.versions:
            if version.effective_from <= day:
                chosen = version
            else:
                break
        if chosen is None:
            raise NoVersionInForce(
                f"no version of rules pack {self.name!r} is in force on {day.isoformat()} "
                f"(the first takes effect on {self.first_effective_from.isoformat()})")
        return chosen

    def version_by_id(self, version_id: str) -> RulesVersion:
        for version in self.versions:
            if version.version_id == version_id:
                return version
        raise NoVersionInForce(f"rules pack {self.name!r} has no version {version_id!r}")

    def tiers(self) -> tuple[str, ...]:
        """Every tier any version of the pack knows, first-seen order."""
        seen: dict[str, None] = {}
        for version in self.versions:
            seen.update(dict.fromkeys(version.tier_rate_ppm))
        return tuple(seen)

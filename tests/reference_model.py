"""An independent, deliberately plain reference model of RULES.md §1–§7.

It exists to be obviously right, not fast: dicts, plain ints, one event at a time,
every number written out from the spec text. It imports nothing from `ledger/`, and
from `rules/` only the pack loader, to read the rates; the rounding, shares, refund
reversals and subsidies are computed here from the formulas of RULES.md so that the
stateful test (`tests/ledger/test_model_stateful.py`) is a genuine second opinion.

Where RULES.md is silent the model follows the project's documented choices
(`ledger/docs.md`): every month up to the last closed one counts as closed; among tier
records with the same `valid_from`, the one imported last wins. A platform id that is
not a string is not specified anywhere, so the model refuses to guess (it raises);
nor is a null `action` or `currency` (the stateful test sends neither).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

PPM = 1_000_000
KINDS = ("ride", "delivery", "order")
SCHEMES = ("si", "oa", "ui")
PARTIES = ("worker", "platform")
AMOUNT_MAX_VND = 10_000_000_000
REQUIRED_FIELDS = ("event_id", "platform", "kind", "worker_id", "amount", "occurred_at")
# RULES.md §1, in the order they are checked.
REJECTION_CODES = ("malformed", "missing_field", "invalid_event_id", "unknown_kind", "invalid_currency",
                   "invalid_amount", "invalid_timestamp", "invalid_worker_id", "invalid_action",
                   "duplicate_conflict", "unknown_original", "refund_mismatch", "refund_exceeds_original")
PROVINCE_CODES = frozenset("""
    001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034
    035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068
    070 072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095 096""".split())
EVENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
TWELVE_ASCII_DIGITS = re.compile(r"[0-9]{12}")
RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})",
                     re.ASCII)
VIETNAM_OFFSET = timedelta(hours=7)
MONTH = re.compile(r"(\d{4})-(\d{2})", re.ASCII)


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves up (n ≥ 0, d > 0)."""
    assert numerator >= 0 and denominator > 0
    quotient, remainder = divmod(numerator, denominator)
    return quotient + 1 if 2 * remainder >= denominator else quotient


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_after(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + 1:04d}-01" if mon == 12 else f"{year:04d}-{mon + 1:02d}"


def vietnam_date(text: object) -> date | None:
    """The Vietnam-local calendar date of an RFC 3339 timestamp with an offset, else None."""
    if not isinstance(text, str):
        return None
    match = RFC3339.fullmatch(text)
    if match is None:
        return None
    year, mon, day, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
    zone = match.group(8)
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = sign * timedelta(hours=hours, minutes=minutes)
    try:
        local = datetime(year, mon, day, hour, minute, second)
    except ValueError:  # 30 February, 25 o'clock, ...
        return None
    return (local - offset + VIETNAM_OFFSET).date()


def canonical(item: dict) -> str:
    """RULES.md §1 "identical": parsed JSON, key order ignored, defaults written in."""
    filled = dict(item)
    filled.setdefault("action", "complete")
    filled.setdefault("currency", "VND")
    return json.dumps(filled, sort_keys=True, ensure_ascii=True)


@dataclass(frozen=True)
class Version:
    effective_from: date
    rates_ppm: dict          # (kind, scheme, party) -> ppm
    tier_rate_ppm: dict      # tier -> ppm
    subsidised_schemes: tuple
    subsidy_base_cap_vnd: dict
    max_subsidised_months: int | None = None


def versions_of_pack(name: str = "vn-pilot") -> list[Version]:
    """Read a shipped pack's numbers (only the numbers: no arithmetic from `rules/`)."""
    from rules import load_pack

    return [Version(v.effective_from, dict(v.rates_ppm), dict(v.tier_rate_ppm), tuple(v.subsidised_schemes),
                    dict(v.subsidy_base_cap_vnd), v.max_subsidised_months)
            for v in load_pack(name).versions]


@dataclass
class Original:
    """An accepted `complete` event, as far as refunds need it (RULES.md §5)."""
    platform: str
    worker: str
    kind: str
    amount: int
    shares: dict                                   # (scheme, party) -> VND
    refunded: int = 0                              # C
    reversed: dict = field(default_factory=dict)   # (scheme, party) -> R


class CloseRefused(Exception):
    pass


class TierFileRefused(Exception):
    pass


class ReferenceModel:
    def __init__(self, versions: list[Version] | None = None) -> None:
        self.versions = sorted(versions or versions_of_pack(), key=lambda v: v.effective_from)
        self.accepted: dict[tuple[str, str], str] = {}        # (platform, event_id) -> canonical payload
        self.originals: dict[tuple[str, str], Original] = {}  # accepted completes only
        # (worker, booking month, scheme) -> {"worker", "platform", "subsidy"}
        self.worker_lines: dict[tuple[str, str, str], dict[str, int]] = {}
        # (worker, booking month, platform, scheme) -> {"worker", "platform"}
        self.by_platform: dict[tuple[str, str, str, str], dict[str, int]] = {}
        self.platform_due: dict[tuple[str, str, str], int] = {}  # (platform, month, scheme) -> VND
        self.platform_posted: set[tuple[str, str]] = set()       # (platform, month) with any posting
        self.state_due: dict[tuple[str, str], int] = {}          # (month, scheme) -> VND
        self.subsidised_months: dict[str, set[str]] = {}         # worker -> months paid a subsidy > 0
        self.tiers: list[tuple[str, str, str]] = []              # (national id, tier, valid_from), import order
        self.last_closed: str | None = None
        self.booked_months: set[str] = set()

    # -- rules ---------------------------------------------------------------
    def version_on(self, day: date) -> Version | None:
        chosen = None
        for version in self.versions:
            if version.effective_from <= day:
                chosen = version
        return chosen

    def is_closed(self, month: str) -> bool:
        return self.last_closed is not None and month <= self.last_closed

    def booking_month(self, occurred: date) -> str:
        month = month_of(occurred)
        return month_after(self.last_closed) if self.is_closed(month) else month

    # -- §1: one event -------------------------------------------------------
    def check(self, item: object) -> str | tuple:
        """The first failing stateless check 0–8, or the parsed facts of a valid event."""
        if not isinstance(item, dict):
            return "malformed"
        for name in REQUIRED_FIELDS:
            if item.get(name) is None:
                return "missing_field"
        action = item.get("action", "complete")
        if action == "refund" and item.get("original_event_id") is None:
            return "missing_field"
        if not isinstance(item["platform"], str):
            raise NotImplementedError("RULES.md does not say which code a non-string platform gets")
        if not isinstance(item["event_id"], str) or not EVENT_ID.fullmatch(item["event_id"]):
            return "invalid_event_id"
        if not isinstance(item["kind"], str) or item["kind"] not in KINDS:
            return "unknown_kind"
        if "currency" in item and item["currency"] != "VND":
            return "invalid_currency"
        amount = item["amount"]
        if type(amount) is not int or not 1 <= amount <= AMOUNT_MAX_VND:
            return "invalid_amount"
        occurred = vietnam_date(item["occurred_at"])
        if occurred is None or self.version_on(occurred) is None:
            return "invalid_timestamp"
        worker = item["worker_id"]
        if not isinstance(worker, str) or not TWELVE_ASCII_DIGITS.fullmatch(worker) \
                or worker[:3] not in PROVINCE_CODES:
            return "invalid_worker_id"
        born = 1900 + 100 * (int(worker[3]) // 2) + int(worker[4:6])
        if born > occurred.year:
            return "invalid_worker_id"
        if action not in ("complete", "refund"):
            return "invalid_action"
        return (item["platform"], item["event_id"], item["kind"], action, worker, amount, occurred)

    def ingest(self, item: object) -> str:
        checked = self.check(item)
        if isinstance(checked, str):
            return checked
        platform, event_id, kind, action, worker, amount, occurred = checked
        payload = canonical(item)
        if (platform, event_id) in self.accepted:
            return "duplicate" if self.accepted[(platform, event_id)] == payload else "duplicate_conflict"
        month = self.booking_month(occurred)
        if action == "complete":
            rates = self.version_on(occurred).rates_ppm
            shares = {(scheme, party): round_half_up(amount * rates.get((kind, scheme, party), 0), PPM)
                      for scheme in SCHEMES for party in PARTIES}
            self.originals[(platform, event_id)] = Original(platform, worker, kind, amount, shares,
                                                            reversed={key: 0 for key in shares})
            self.post(worker, platform, month, shares, sign=+1)
        else:
            original_id = item["original_event_id"]
            original = self.originals.get((platform, original_id)) if isinstance(original_id, str) else None
            if original is None:
                return "unknown_original"
            if original.worker != worker or original.kind != kind:
                return "refund_mismatch"
            if original.refunded + amount > original.amount:
                return "refund_exceeds_original"
            original.refunded += amount
            reversals = {}
            for key, share in original.shares.items():
                target = round_half_up(share * original.refunded, original.amount)
                reversals[key] = target - original.reversed[key]
                original.reversed[key] = target
            self.post(worker, platform, month, reversals, sign=-1)
        self.accepted[(platform, event_id)] = payload
        return "accepted"

    def post(self, worker: str, platform: str, month: str, amounts: dict, sign: int) -> None:
        for (scheme, party), amount in amounts.items():
            if amount == 0:
                continue  # shares of zero are not posted (§4)
            self.booked_months.add(month)
            line = self.worker_lines.setdefault((worker, month, scheme), {"worker": 0, "platform": 0, "subsidy": 0})
            line[party] += sign * amount
            split = self.by_platform.setdefault((worker, month, platform, scheme), {"worker": 0, "platform": 0})
            split[party] += sign * amount
            self.platform_due[(platform, month, scheme)] = \
                self.platform_due.get((platform, month, scheme), 0) + sign * amount
            self.platform_posted.add((platform, month))

    # -- household tiers -----------------------------------------------------
    def import_tiers(self, rows: list[tuple[str, str, str]]) -> None:
        """All rows or none: a bad row refuses the whole file."""
        known = set()
        for version in self.versions:
            known |= set(version.tier_rate_ppm)
        for national_id, tier, valid_from in rows:
            if not TWELVE_ASCII_DIGITS.fullmatch(national_id) or national_id[:3] not in PROVINCE_CODES \
                    or tier not in known or not MONTH.fullmatch(valid_from) or not 1 <= int(valid_from[5:]) <= 12:
                raise TierFileRefused(f"bad row {(national_id, tier, valid_from)}")
        self.tiers.extend(rows)

    def tier(self, national_id: str, month: str) -> str:
        best: tuple[str, int] | None = None
        chosen = "other"
        for order, (worker, tier, valid_from) in enumerate(self.tiers):
            if worker == national_id and valid_from <= month and (best is None or (valid_from, order) > best):
                best, chosen = (valid_from, order), tier
        return chosen

    # -- §6: month close -----------------------------------------------------
    def close(self, month: str) -> None:
        if self.last_closed is not None and month <= self.last_closed:
            raise CloseRefused(f"{month} is already closed")
        if self.last_closed is not None and month != month_after(self.last_closed):
            raise CloseRefused(f"close {month_after(self.last_closed)} before {month}")
        version = self.version_on(date(int(month[:4]), int(month[5:]), 1))
        if version is None:
            raise CloseRefused(f"no rules in force on the first day of {month}")
        workers = sorted({worker for worker, line_month, _s in self.worker_lines if line_month == month})
        for worker in workers:
            paid = self.subsidised_months.setdefault(worker, set())
            if version.max_subsidised_months is not None and len(paid) >= version.max_subsidised_months:
                continue
            rate = version.tier_rate_ppm[self.tier(worker, month)]
            for scheme in version.subsidised_schemes:
                line = self.worker_lines.get((worker, month, scheme))
                own = max(0, line["worker"]) if line else 0
                base = min(own, version.subsidy_base_cap_vnd[scheme])
                subsidy = round_half_up(base * rate, PPM)
                if subsidy:
                    line["subsidy"] += subsidy
                    self.state_due[(month, scheme)] = self.state_due.get((month, scheme), 0) + subsidy
                    paid.add(month)
        self.last_closed = month

    # -- §7: what the books must say -----------------------------------------
    def statement(self, national_id: str, month: str) -> dict:
        schemes = {}
        to_date = {scheme: 0 for scheme in SCHEMES}
        for scheme in SCHEMES:
            line = self.worker_lines.get((national_id, month, scheme), {"worker": 0, "platform": 0, "subsidy": 0})
            schemes[scheme] = {**line, "total": line["worker"] + line["platform"] + line["subsidy"]}
        for (worker, line_month, scheme), line in self.worker_lines.items():
            if worker == national_id and line_month <= month:
                to_date[scheme] += line["worker"] + line["platform"] + line["subsidy"]
        return {"national_id": national_id, "month": month, "closed": self.is_closed(month),
                "schemes": schemes, "to_date": to_date}

    def platform_split(self, national_id: str, month: str) -> dict:
        """Non-zero (platform, scheme, party) amounts of one worker's month."""
        return {(platform, scheme, party): amount
                for (worker, line_month, platform, scheme), split in self.by_platform.items()
                if worker == national_id and line_month == month
                for party, amount in split.items() if amount}

    def settlement(self, month: str) -> dict:
        platforms = {platform: {scheme: self.platform_due.get((platform, month, scheme), 0) for scheme in SCHEMES}
                     for platform, posted_month in sorted(self.platform_posted) if posted_month == month}
        return {"month": month, "closed": self.is_closed(month), "platforms": platforms,
                "subsidy": {scheme: self.state_due.get((month, scheme), 0) for scheme in SCHEMES}}

    def workers_booked_in(self, month: str) -> set[str]:
        """Workers with any posting or subsidy booked in `month` (INTERFACES.md `ansinh statements`)."""
        return {worker for worker, line_month, _scheme in self.worker_lines if line_month == month}

    def months_of_interest(self) -> list[str]:
        months = set(self.booked_months)
        if self.last_closed is not None:
            months.add(self.last_closed)
            months.add(month_after(self.last_closed))
        return sorted(months)


assert round_half_up(875 * 250_000, PPM) == 219 and round_half_up(438 * 250_000, PPM) == 110
assert vietnam_date("2026-01-31T20:00:00Z") == date(2026, 2, 1)

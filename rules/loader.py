"""Reading rules packs from YAML, validating every field.

A pack is one file `packs/<name>.yaml` holding several YAML documents: the first
names the pack, each following one is a version (RULES.md §8–9). A bad pack is
refused with the file, the field and the reason — never half-loaded.
"""
from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from rules.model import BASE_TIER, CREDITING_MODES, KINDS, PARTIES, SCHEMES, RulesPack, RulesVersion

PACKS_DIR = Path(__file__).with_name("packs")
DEFAULT_PACK = "vn-pilot"
MAX_RATE_PPM = 1_000_000
VERSION_FIELDS = {"effective_from", "source", "description", "rates_ppm", "tier_rate_ppm",
                  "subsidised_schemes", "subsidy_base_cap_vnd", "max_subsidised_months",
                  "pension_floor_contribution_vnd", "crediting", "payment_due_day", "late_interest_ppm_per_month"}
REQUIRED_FIELDS = {"effective_from", "source", "rates_ppm", "tier_rate_ppm",
                   "subsidised_schemes", "subsidy_base_cap_vnd"}


class PackError(ValueError):
    """A rules pack that cannot be used: names the file, the field and the reason."""

    def __init__(self, file: str | Path, field: str, reason: str) -> None:
        self.file, self.field, self.reason = str(file), field, reason
        super().__init__(f"{file}: {field}: {reason}")


class TextDatesLoader(yaml.SafeLoader):
    """YAML's safe loader, with dates left as text for the reader to check and name.

    PyYAML builds `2026-02-30` into a date and raises a bare ValueError (no file, no field);
    as text, the field's own check reports "version 1.effective_from: must be a date".
    """


TextDatesLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                lambda loader, node: loader.construct_scalar(node))


def decode_text(data: bytes, source: str | Path) -> str:
    """UTF-8 without its byte-order mark; PackError names the first line that is not UTF-8.

    (`ledger.files` does the same for the ledger's files; `rules` imports nothing from `ledger`.)
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise PackError(source, f"line {line}", f"is not UTF-8 (byte 0x{data[error.start]:02x}); "
                                                "save the file as UTF-8") from None


def shipped_packs() -> list[str]:
    return sorted(path.stem for path in PACKS_DIR.glob("*.yaml"))


def pack_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    path = PACKS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise PackError(path, "pack", f"no rules pack named {str(name_or_path)!r}; shipped: {', '.join(shipped_packs())}")
    return path


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> RulesPack:
    try:
        documents = [document for document in yaml.load_all(decode_text(path.read_bytes(), path), TextDatesLoader)
                     if document is not None]
    except OSError as error:
        raise PackError(path, "file", f"cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise PackError(path, "file", f"is not valid YAML ({' '.join(str(error).split())})") from None
    if not documents or not isinstance(documents[0], dict):
        raise PackError(path, "pack", "the first YAML document must name the pack (pack: NAME)")
    header = documents[0]
    name = header.get("pack")
    if not isinstance(name, str) or not name:
        raise PackError(path, "pack", "must be a non-empty string")
    unknown = set(header) - {"pack", "description"}
    if unknown:
        raise PackError(path, sorted(unknown)[0], "unknown field in the pack header")
    versions = [_version(path, name, index, document) for index, document in enumerate(documents[1:], start=1)]
    if not versions:
        raise PackError(path, "versions", "a pack needs at least one version document after its header")
    days = [version.effective_from for version in versions]
    if days != sorted(days) or len(set(days)) != len(days):
        raise PackError(path, "effective_from", "versions must appear in strictly increasing effective_from order")
    return RulesPack(name=name, description=str(header.get("description", "")).strip(), versions=tuple(versions))


def load_pack(name_or_path: str | Path) -> RulesPack:
    """A shipped pack by name (`vn-pilot`) or a pack file by path, validated."""
    path = pack_path(name_or_path).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as error:
        raise PackError(path, "file", f"cannot be read ({error.strerror})") from None
    return _load(path, mtime)


def pack_from_environment(explicit: str | None = None) -> RulesPack:
    """`--pack` if given, else `ANSINH_PACK`, else the default `vn-pilot`."""
    return load_pack(explicit or os.environ.get("ANSINH_PACK") or DEFAULT_PACK)


def _version(path: Path, pack: str, index: int, document: Any) -> RulesVersion:
    where = f"version {index}"
    if not isinstance(document, dict):
        raise PackError(path, where, "must be a mapping of fields")
    unknown = set(document) - VERSION_FIELDS
    if unknown:
        raise PackError(path, f"{where}.{sorted(unknown)[0]}", "unknown field")
    missing = REQUIRED_FIELDS - set(document)
    if missing:
        raise PackError(path, f"{where}.{sorted(missing)[0]}", "is required")
    day = document["effective_from"]
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            day = None
    if not isinstance(day, date):
        raise PackError(path, f"{where}.effective_from", "must be a date YYYY-MM-DD")
    where = f"version {day.isoformat()}"
    source = document["source"]
    if not isinstance(source, str) or not source.strip():
        raise PackError(path, f"{where}.source", "must say where the numbers come from (non-empty text)")

    rates: dict[tuple[str, str, str], int] = {}
    table = _mapping(path, f"{where}.rates_ppm", document["rates_ppm"])
    for kind in KINDS:
        if kind not in table:
            raise PackError(path, f"{where}.rates_ppm.{kind}", "is required (every kind needs its rates)")
    for kind, schemes in table.items():
        if kind not in KINDS:
            raise PackError(path, f"{where}.rates_ppm.{kind}", f"unknown kind (known: {', '.join(KINDS)})")
        for scheme, parties in _mapping(path, f"{where}.rates_ppm.{kind}", schemes).items():
            if scheme not in SCHEMES:
                raise PackError(path, f"{where}.rates_ppm.{kind}.{scheme}", f"unknown scheme (known: {', '.join(SCHEMES)})")
            for party, rate in _mapping(path, f"{where}.rates_ppm.{kind}.{scheme}", parties).items():
                field = f"{where}.rates_ppm.{kind}.{scheme}.{party}"
                if party not in PARTIES:
                    raise PackError(path, field, f"unknown party (known: {', '.join(PARTIES)})")
                rates[(kind, scheme, party)] = _integer(path, field, rate, 0, MAX_RATE_PPM)

    tiers = {str(tier): _integer(path, f"{where}.tier_rate_ppm.{tier}", rate, 0, MAX_RATE_PPM)
             for tier, rate in _mapping(path, f"{where}.tier_rate_ppm", document["tier_rate_ppm"]).items()}
    if BASE_TIER not in tiers:
        raise PackError(path, f"{where}.tier_rate_ppm.{BASE_TIER}", "is required: every worker without a status is 'other'")

    subsidised = document["subsidised_schemes"]
    if not isinstance(subsidised, list) or any(scheme not in SCHEMES for scheme in subsidised) \
            or len(set(subsidised)) != len(subsidised):
        raise PackError(path, f"{where}.subsidised_schemes", f"must be a list of distinct schemes from {', '.join(SCHEMES)}")
    caps = {}
    for scheme, cap in _mapping(path, f"{where}.subsidy_base_cap_vnd", document["subsidy_base_cap_vnd"]).items():
        if scheme not in SCHEMES:
            raise PackError(path, f"{where}.subsidy_base_cap_vnd.{scheme}", "unknown scheme")
        caps[scheme] = _integer(path, f"{where}.subsidy_base_cap_vnd.{scheme}", cap, 0, 10**12)
    for scheme in subsidised:
        if scheme not in caps:
            raise PackError(path, f"{where}.subsidy_base_cap_vnd.{scheme}", "is required for a subsidised scheme")

    max_months = document.get("max_subsidised_months")
    if max_months is not None:
        max_months = _integer(path, f"{where}.max_subsidised_months", max_months, 1, 10_000)
    floor = _integer(path, f"{where}.pension_floor_contribution_vnd",
                     document.get("pension_floor_contribution_vnd", 330_000), 0, 10**12)
    crediting = document.get("crediting", "pooled")
    if crediting not in CREDITING_MODES:
        raise PackError(path, f"{where}.crediting", f"must be one of {', '.join(CREDITING_MODES)}, got {crediting!r}")
    due_day = _integer(path, f"{where}.payment_due_day", document.get("payment_due_day", 15), 1, 28)
    interest = _integer(path, f"{where}.late_interest_ppm_per_month",
                        document.get("late_interest_ppm_per_month", 0), 0, MAX_RATE_PPM)
    return RulesVersion(pack=pack, effective_from=day, source=source.strip(),
                        description=str(document.get("description", "")).strip(), rates_ppm=rates,
                        tier_rate_ppm=tiers, subsidised_schemes=tuple(subsidised), subsidy_base_cap_vnd=caps,
                        max_subsidised_months=max_months, pension_floor_contribution_vnd=floor, crediting=crediting,
                        payment_due_day=due_day, late_interest_ppm_per_month=interest)


def _mapping(path: Path, field: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise PackError(path, field, "must be a mapping")
    return value


def _integer(path: Path, field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PackError(path, field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise PackError(path, field, f"must be between {low:,} and {high:,}, got {value:,}")
    return value

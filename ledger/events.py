"""Where an event is validated: the ordered rejection codes of RULES.md §1.

`check_event` runs the stateless checks 0–8 (shape, fields, id, kind, currency,
amount, timestamp, worker id, action) on one parsed item and returns either a
`ValidEvent` or the first failing `Rejection`. The stateful checks 9–12
(duplicates, originals, refund limits) need the books and live in `ledger.ingest`.
User errors are values, never exceptions (STYLE.md habit 4).
"""
from __future__ import annotations

import enum
import hashlib
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

import orjson
from json.encoder import encode_basestring_ascii as _encode_string

from ledger.identity import is_valid_national_id
from rules.model import KINDS

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh: UTC+7 with no DST since 1975
AMOUNT_VND_MAX = 10_000_000_000
EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._:\-]{1,128}", re.ASCII)
REQUIRED_FIELDS = ("event_id", "platform", "kind", "worker_id", "amount", "occurred_at")
KIND_INDEX = {kind: index for index, kind in enumerate(KINDS)}
# Objects and arrays nested inside one event, the event object itself counting as 1. orjson parses
# 1,024 levels but writes only 254; past that the payload hash is written by `canonical_json`
# (`json.dumps` recursed and raised RecursionError near 1,000, losing the whole batch). The limit
# bounds that work: deeper is `malformed`, like a line nested past the parser's own limit
# (docs/reliability.md, "Bad input").
NESTING_DEPTH_MAX = 512


class Rejection(enum.IntEnum):
    """RULES.md §1 rejection codes, in the order they are checked."""

    malformed = 0
    missing_field = 1
    invalid_event_id = 2
    unknown_kind = 3
    invalid_currency = 4
    invalid_amount = 5
    invalid_timestamp = 6
    invalid_worker_id = 7
    invalid_action = 8
    duplicate_conflict = 9
    unknown_original = 10
    refund_mismatch = 11
    refund_exceeds_original = 12


ACCEPTED = "accepted"
DUPLICATE = "duplicate"


class ValidEvent(NamedTuple):
    """An event that passed checks 0–8. `payload_hash` identifies its parsed content."""

    platform: str
    event_id: str
    kind: str
    is_refund: bool
    national_id: str
    amount_vnd: int
    occurred_at: datetime
    occurred_day: date  # Vietnam-local calendar day
    occurred_month: int  # yyyymm in Vietnam time
    original_event_id: str | None
    payload_hash: bytes


def month_number(day: date) -> int:
    return day.year * 100 + day.month


def month_text(month: int) -> str:
    return f"{month // 100:04d}-{month % 100:02d}"


def parse_month(text: str) -> int:
    """'2026-02' -> 202602; raises ValueError with the offending text."""
    if not isinstance(text, str) or not re.fullmatch(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])", text):
        raise ValueError(f"not a month (YYYY-MM, 1900–2099): {text!r}")
    return int(text[:4]) * 100 + int(text[5:])


def next_month(month: int) -> int:
    year, mon = divmod(month, 100)
    return (year + 1) * 100 + 1 if mon == 12 else month + 1


def payload_hash(item: dict[str, Any]) -> bytes | None:
    """Hash of the parsed object with defaults written out (RULES.md §1 "identical").

    None when the object cannot be written as JSON: nested deeper than `NESTING_DEPTH_MAX`,
    or (from a Python caller) holding keys or values JSON has no form for. Its event is `malformed`.
    """
    canonical = item
    if item.get("action") is None or item.get("currency") is None:
        canonical = dict(item)
        if canonical.get("action") is None:
            canonical["action"] = "complete"
        if canonical.get("currency") is None:
            canonical["currency"] = "VND"
    try:
        text = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, or nesting past orjson's 254 levels
        if nested_deeper_than(canonical, NESTING_DEPTH_MAX):
            return None
        try:
            text = canonical_json(canonical).encode()
        except TypeError:  # a key JSON has no form for, or keys that do not sort (Python callers only)
            return None
    return hashlib.blake2b(text, digest_size=16).digest()


class _Token(str):
    """Punctuation or an already written key, as opposed to a string value still to be encoded."""


_COMMA, _COLON = _Token(","), _Token(":")


def canonical_json(value: object) -> str:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)`, character for character,
    without recursion: the payload hash of an event orjson cannot write (an integer past 64 bits,
    nesting past 254) must not depend on how deep the caller's stack already is.

    Follows CPython's C encoder: None/True/False, then str, int, float, list/tuple, dict (items sorted,
    keys str, float, bool, None or int), anything else through `repr`. The caller bounds the depth.
    """
    parts: list[str] = []
    stack: list[object] = [value]
    while stack:
        node = stack.pop()
        if type(node) is _Token:
            parts.append(node)
        elif node is None:
            parts.append("null")
        elif node is True:
            parts.append("true")
        elif node is False:
            parts.append("false")
        elif isinstance(node, str):
            parts.append(_encode_string(node))
        elif isinstance(node, int):
            parts.append(int.__repr__(node))
        elif isinstance(node, float):
            parts.append(_float_text(node))
        elif isinstance(node, (list, tuple)):
            later: list[object] = [_Token("]")]
            for index in range(len(node) - 1, -1, -1):
                later.append(node[index])
                if index:
                    later.append(_COMMA)
            later.append(_Token("["))
            stack.extend(later)
        elif isinstance(node, dict):
            later = [_Token("}")]
            items = sorted(node.items())
            for index in range(len(items) - 1, -1, -1):
                key, item = items[index]
                later.extend((item, _COLON, _Token(_encode_string(_key_text(key)))))
                if index:
                    later.append(_COMMA)
            later.append(_Token("{"))
            stack.extend(later)
        else:
            stack.append(repr(node))
    return "".join(parts)


def _float_text(number: float) -> str:
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    return float.__repr__(number)


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float_text(key)
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def nested_deeper_than(value: object, depth_max: int) -> bool:
    """True when objects and arrays nest more than `depth_max` levels in `value` (itself level 1).

    Iterative, so any depth is measured without recursion; stops at the first level too deep.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > depth_max:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return False


def parse_timestamp(value: object) -> datetime | None:
    """RFC 3339 / ISO 8601 with a UTC offset, else None."""
    if type(value) is not str or len(value) < 16 or len(value) > 64:
        return None
    text = value
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


_PLATFORMS_SEEN: set[str] = set()  # platform ids that passed EVENT_ID_PATTERN (a handful)


def check_event(item: object, first_day: date) -> ValidEvent | Rejection:
    """Checks 0–8 of RULES.md §1, in order. `first_day`: first day any rules version is in force."""
    if type(item) is not dict:
        return Rejection.malformed
    digest = payload_hash(item)
    if digest is None:  # nested past NESTING_DEPTH_MAX: as malformed as a line the parser refuses
        return Rejection.malformed
    get = item.get
    event_id, platform, kind = get("event_id"), get("platform"), get("kind")
    national_id, amount, occurred_text = get("worker_id"), get("amount"), get("occurred_at")
    action = get("action")
    if (event_id is None or platform is None or kind is None or national_id is None or amount is None
            or occurred_text is None or (action == "refund" and get("original_event_id") is None)):
        return Rejection.missing_field
    if type(event_id) is not str or not EVENT_ID_PATTERN.fullmatch(event_id):
        return Rejection.invalid_event_id
    # A platform id follows the event id's alphabet; a bad one makes the identity invalid.
    if type(platform) is not str or (platform not in _PLATFORMS_SEEN and not _good_platform(platform)):
        return Rejection.invalid_event_id
    if type(kind) is not str or kind not in KIND_INDEX:
        return Rejection.unknown_kind
    currency = get("currency")
    if currency is not None and currency != "VND":
        return Rejection.invalid_currency
    if type(amount) is not int or not 1 <= amount <= AMOUNT_VND_MAX:
        return Rejection.invalid_amount
    occurred_at = parse_timestamp(occurred_text)
    if occurred_at is None:
        return Rejection.invalid_timestamp
    try:
        local_day = occurred_at.astimezone(VIETNAM_TZ).date()
    except (OverflowError, ValueError):
        return Rejection.invalid_timestamp
    if local_day < first_day:
        return Rejection.invalid_timestamp
    if not is_valid_national_id(national_id, local_day.year):
        return Rejection.invalid_worker_id
    if action is not None and action != "complete" and action != "refund":
        return Rejection.invalid_action
    is_refund = action == "refund"
    return ValidEvent(
        platform,
        event_id,
        kind,
        is_refund,
        national_id,
        amount,
        occurred_at,
        local_day,
        local_day.year * 100 + local_day.month,
        item["original_event_id"] if is_refund else None,
        digest,
    )


def _good_platform(platform: str) -> bool:
    if not EVENT_ID_PATTERN.fullmatch(platform):
        return False
    if len(_PLATFORMS_SEEN) < 10_000:
        _PLATFORMS_SEEN.add(platform)
    return True

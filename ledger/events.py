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
from itertools import repeat
from functools import partial
from operator import is_, itemgetter, methodcaller
from typing import Any, NamedTuple, Sequence

import numpy as np
import orjson
from json.encoder import encode_basestring_ascii as _encode_string

from ledger.identity import PROVINCE_CODES, is_valid_national_id
from rules.model import KINDS

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)  # Asia/Ho_Chi_Minh: UTC+7 with no DST since 1975
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
    occurred_us: int  # `occurred_at` as microseconds since 1970 UTC (the journal keeps this, not the text)


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
        (occurred_at - _EPOCH) // _ONE_US,
    )


def _good_platform(platform: str) -> bool:
    if not EVENT_ID_PATTERN.fullmatch(platform):
        return False
    if len(_PLATFORMS_SEEN) < 10_000:
        _PLATFORMS_SEEN.add(platform)
    return True


# -- a batch, as columns -------------------------------------------------------------------
#
# `check_events` gives exactly `[check_event(item, first_day) for item in items]`, faster. It never
# decides a rejection itself: the columns *certify* the rows that pass every check 0–8 in the
# common shapes (string fields, an integer amount, an RFC 3339 timestamp `YYYY-MM-DDTHH:MM:SS`
# with 1–6 digits of fraction and `Z` or `±HH:MM`), and every row not certified — a rejection,
# an odd type, an unusual timestamp shape, a non-object — goes through `check_event` alone.
# So the order of the codes is `check_event`'s by construction, and the columns only have to be
# right about the rows they pass.

_TIMESTAMP_WIDTH = 32  # the longest common shape: 19 + 7 (fraction) + 6 (offset)
_ID_LENGTH_MAX = 128
_SORT_KEYS = orjson.OPT_SORT_KEYS
_ID_CHARS = np.zeros(256, dtype=bool)
_ID_CHARS[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")] = True
_PROVINCE_TABLE = np.zeros(1000, dtype=bool)
_PROVINCE_TABLE[[int(code) for code in PROVINCE_CODES]] = True
_MINUTES_PER_DAY = 1440
_VIETNAM_OFFSET_MINUTES = 7 * 60
_KINDS = frozenset(KIND_INDEX)
_CURRENCIES = frozenset({None, "VND"})
_ACTIONS = frozenset({None, "complete", "refund"})
_FIELDS = ("event_id", "platform", "kind", "worker_id", "amount", "occurred_at", "action", "currency")
_PLAIN_FIELDS = frozenset(_FIELDS)  # an item with no other key: its canonical JSON is written from the columns
_PLAIN_JSON = ('{"action":"complete","amount":%d,"currency":"VND","event_id":"%s","kind":"%s","occurred_at":"%s",'
               '"platform":"%s","worker_id":"%s"}')


def _patched(values: list, rows: list[int], stand_in: object) -> list:
    """A copy of the column with `rows` replaced by `stand_in` (the rows already known bad)."""
    if not rows:
        return values
    values = list(values)
    for row in rows:
        values[row] = stand_in
    return values


def _strings(values: list) -> list[str]:
    """The column with every value that is not a string replaced by "" (which no shape admits)."""
    if set(map(type, values)) == {str}:
        return values
    not_str = np.flatnonzero(~np.fromiter(map(is_, map(type, values), repeat(str)), dtype=bool,
                                          count=len(values))).tolist()
    return _patched(values, not_str, "")


def _not_ids(values: list) -> list[int]:
    """Rows whose value is not 1–128 characters of `A-Z a-z 0-9 . _ : -` (EVENT_ID_PATTERN)."""
    count = len(values)
    if not count:
        return []
    values = _strings(values)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=count)
    bad = (lengths < 1) | (lengths > _ID_LENGTH_MAX)
    joined = "".join(values)
    if joined.isascii():
        characters = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:  # one code point per character (a lone surrogate too), so positions still map to rows
        characters = np.minimum(np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32), 255)
    wrong = np.flatnonzero(~_ID_CHARS[characters])
    if len(wrong):
        bad[np.searchsorted(np.cumsum(lengths), wrong, side="right")] = True
    return np.flatnonzero(bad).tolist()


def _not_platforms(values: list) -> list[int]:
    """`_not_ids` for a column of a few distinct values: each distinct value is checked once."""
    if set(map(type, values)) != {str}:
        return _not_ids(values)
    wrong = {value for value in set(values) if not EVENT_ID_PATTERN.fullmatch(value)}
    return [row for row, value in enumerate(values) if value in wrong] if wrong else []


_NOT_ALLOWED = "\x00 not allowed"  # a stand-in no allowed set holds


def _not_in(values: list, allowed: frozenset) -> list[int]:
    """Rows whose value is not a string (or None, when `allowed` holds None) in `allowed`."""
    if not set(map(type, values)) <= {str, type(None)}:
        kinds = np.fromiter(map(type, values), dtype=object, count=len(values))
        values = _patched(values, np.flatnonzero((kinds != str) & (kinds != type(None))).tolist(), _NOT_ALLOWED)
    wrong = set(values) - allowed
    if not wrong:
        return []
    return np.flatnonzero(np.fromiter(map(wrong.__contains__, values), dtype=bool, count=len(values))).tolist()


def _not_amounts(values: list) -> list[int]:
    """Rows whose value is not an integer in 1..AMOUNT_VND_MAX (booleans are not integers)."""
    if set(map(type, values)) != {int}:
        not_int = np.flatnonzero(~np.fromiter(map(is_, map(type, values), repeat(int)), dtype=bool,
                                              count=len(values))).tolist()
        values = _patched(values, not_int, 0)
    if min(values) >= 1 and max(values) <= AMOUNT_VND_MAX:
        return []
    try:
        amounts = np.array(values, dtype=np.int64)
    except OverflowError:  # an integer past 64 bits (rare): one pass in Python
        return [row for row, value in enumerate(values) if not 1 <= value <= AMOUNT_VND_MAX]
    return np.flatnonzero((amounts < 1) | (amounts > AMOUNT_VND_MAX)).tolist()


def _pick(column: list, rows: list[int] | None) -> list:
    if rows is None:
        return column
    return list(itemgetter(*rows)(column)) if len(rows) > 1 else [column[row] for row in rows]


def check_events(items: Sequence[object], first_day: date) -> list[ValidEvent | Rejection]:
    """Checks 0–8 for a batch, as columns: exactly `[check_event(item, first_day) for item in items]`."""
    results: list = [None] * len(items)
    rows = [row for row, item in enumerate(items) if type(item) is dict]
    dicts = [items[row] for row in rows] if len(rows) < len(items) else list(items)
    if not dicts:
        return [check_event(item, first_day) for item in items]
    get = dict.get
    event_ids, platforms, kinds, national_ids, amounts, occurred, actions, currencies = (
        list(map(get, dicts, repeat(name))) for name in _FIELDS)
    refunds = [row for row, action in enumerate(actions) if action == "refund" and type(action) is str]
    local, local_year, local_month, in_range, utc_us = _local_days(occurred, national_ids, first_day)
    bad = {*_not_ids(event_ids), *_not_platforms(platforms), *_not_in(kinds, _KINDS),
           *_not_in(currencies, _CURRENCIES), *_not_amounts(amounts), *_not_in(actions, _ACTIONS),
           *(row for row in refunds if dicts[row].get("original_event_id") is None),  # else `missing_field`
           *np.flatnonzero(~in_range).tolist()}
    chosen = None
    if bad:
        passing = np.ones(len(dicts), dtype=bool)
        passing[list(bad)] = False
        chosen = np.flatnonzero(passing).tolist()
    kept = slice(None) if chosen is None else np.array(chosen, dtype=np.int64)
    local_days = local[kept].astype("datetime64[D]").tolist()
    micros = utc_us[kept].tolist()
    local_months = (local_year[kept] * 100 + local_month[kept] % 12 + 1).tolist()
    take, chosen_actions = _pick(dicts, chosen), _pick(actions, chosen)
    platforms, event_ids, kinds = _pick(platforms, chosen), _pick(event_ids, chosen), _pick(kinds, chosen)
    national_ids, amounts, occurred = _pick(national_ids, chosen), _pick(amounts, chosen), _pick(occurred, chosen)
    is_refund = [action == "refund" for action in chosen_actions] if refunds else repeat(False)
    originals = [item["original_event_id"] if refund else None for item, refund in zip(take, is_refund)] \
        if refunds else repeat(None)
    digests = _digests(take, chosen_actions, _pick(currencies, chosen), (amounts, event_ids, kinds, occurred,
                                                                         platforms, national_ids))
    events = list(map(tuple.__new__, repeat(ValidEvent), zip(
        platforms, event_ids, kinds, is_refund if refunds else repeat(False), national_ids, amounts,
        _timestamps(occurred), local_days, local_months, originals, digests, micros)))
    if chosen is None and len(rows) == len(items):
        results = events
    else:
        for row, event in zip(range(len(dicts)) if chosen is None else chosen, events):
            results[rows[row]] = event
    for index, result in enumerate(results):
        if result is None or result[6] is None or result[10] is None:  # refused by fromisoformat or orjson
            results[index] = check_event(items[index], first_day)
    return results


def _local_days(occurred: list, national_ids: list, first_day: date) -> tuple[np.ndarray, ...]:
    """Vietnam-local day (days since 1970), year and month (months since 1970) of each timestamp in the
    common shape (`YYYY-MM-DDTHH:MM:SS`, 1–6 digits of fraction, `Z` or `±HH:MM`), read from its
    fixed-position digits, and which rows are in range: the shape, month 13, second 60, a day
    before `first_day`, a worker id that is not 12 ASCII digits of a known province born by the
    event's year are all out, and `check_event` judges them. Last, each instant in microseconds
    since 1970 UTC (`ValidEvent.occurred_us`)."""
    count = len(occurred)
    if not count:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=bool), empty
    texts = _strings(occurred)
    length = np.fromiter(map(len, texts), dtype=np.int64, count=count)
    in_range = (length >= 20) & (length <= _TIMESTAMP_WIDTH)
    chars = np.array(texts, dtype=f"U{_TIMESTAMP_WIDTH}").view(np.uint32).reshape(count, _TIMESTAMP_WIDTH)
    digit = chars.astype(np.int32) - 48  # int32: the arithmetic below stays far from its range
    is_digit = chars - 48 <= 9  # unsigned: anything below "0" wraps far above 9
    end = np.clip(length, 20, _TIMESTAMP_WIDTH)
    at = np.arange(count)
    utc = chars[at, end - 1] == ord("Z")
    zone = np.where(utc, end - 1, end - 6)  # where `Z` or the offset begins
    sign = np.where(utc, 0, zone)  # the offset's characters (a `Z` row reads harmless columns 0–5)
    in_range &= is_digit[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]].all(axis=1)
    in_range &= (chars[:, 4] == 45) & (chars[:, 7] == 45) & (chars[:, 10] == 84) & (chars[:, 13] == 58) \
        & (chars[:, 16] == 58)
    in_range &= utc | (((chars[at, sign] == 43) | (chars[at, sign] == 45)) & is_digit[at, sign + 1]
                       & is_digit[at, sign + 2] & (chars[at, sign + 3] == 58) & is_digit[at, sign + 4]
                       & is_digit[at, sign + 5])
    fraction = zone - 19  # characters between the seconds and the zone: none, or "." and 1–6 digits
    columns = np.arange(_TIMESTAMP_WIDTH)
    in_fraction = (columns >= 20) & (columns < zone[:, None])
    in_range &= (fraction == 0) | ((fraction >= 2) & (fraction <= 7) & (chars[:, 19] == 46)
                                   & (is_digit | ~in_fraction).all(axis=1))
    year = digit[:, 0] * 1000 + digit[:, 1] * 100 + digit[:, 2] * 10 + digit[:, 3]
    month, day = digit[:, 5] * 10 + digit[:, 6], digit[:, 8] * 10 + digit[:, 9]
    hour, minute = digit[:, 11] * 10 + digit[:, 12], digit[:, 14] * 10 + digit[:, 15]
    second = digit[:, 17] * 10 + digit[:, 18]
    offset_hour, offset_minute = digit[at, sign + 1] * 10 + digit[at, sign + 2], \
        digit[at, sign + 4] * 10 + digit[at, sign + 5]
    offset = np.where(utc, 0, offset_hour * 60 + offset_minute)
    offset = np.where(~utc & (chars[at, sign] == 45), -offset, offset)
    in_range &= ((year >= 1000) & (year <= 9998) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23)
                 & (minute <= 59) & (second <= 59) & (utc | ((offset_hour <= 23) & (offset_minute <= 59))))
    month_start = ((np.where(in_range, year, 2000) - 1970) * 12 + np.where(in_range, month, 1) - 1).astype(
        "datetime64[M]")
    first = month_start.astype("datetime64[D]").astype(np.int64)
    in_range &= day <= (month_start + 1).astype("datetime64[D]").astype(np.int64) - first
    minutes = (first + day - 1).astype(np.int64) * _MINUTES_PER_DAY + hour * 60 + minute - offset + _VIETNAM_OFFSET_MINUTES
    local = np.floor_divide(minutes, _MINUTES_PER_DAY)
    # The instant in microseconds since 1970 UTC: the UTC minute, the seconds, the fraction's 1–6 digits.
    fraction_us = (np.where(in_fraction[:, 20:26], digit[:, 20:26], 0) * _FRACTION_WEIGHTS).sum(axis=1)
    utc_us = ((minutes - _VIETNAM_OFFSET_MINUTES) * 60 + second) * 1_000_000 + fraction_us
    in_range &= local >= np.datetime64(first_day, "D").astype(np.int64)
    local = np.where(in_range, local, 0)
    local_month = local.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    local_year = local_month // 12 + 1970
    in_range &= _good_national_ids(national_ids, local_year)
    return local, local_year, local_month, in_range, utc_us


_FRACTION_WEIGHTS = 10 ** np.arange(5, -1, -1, dtype=np.int64)  # the fraction's digits 1–6, in microseconds


def _good_national_ids(values: list, event_year: np.ndarray) -> np.ndarray:
    """RULES.md §2 as columns: 12 ASCII digits, a known province, born no later than `event_year`."""
    count = len(values)
    values = _strings(values)
    good = np.fromiter(map(len, values), dtype=np.int64, count=count) == 12
    if not good.all():
        values = [value if fits else "000000000000" for value, fits in zip(values, good.tolist())]
    joined = "".join(values)
    if not joined.isascii():
        ascii_only = np.fromiter(map(str.isascii, values), dtype=bool, count=count)
        good &= ascii_only
        joined = "".join(value if fits else "000000000000" for value, fits in zip(values, ascii_only.tolist()))
    digits = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(count, 12).astype(np.int64) - 48
    good &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    digits = np.where(good[:, None], digits, 0)
    province = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    born = 1900 + 100 * (digits[:, 3] // 2) + digits[:, 4] * 10 + digits[:, 5]
    return good & _PROVINCE_TABLE[province] & (born <= event_year)


def _timestamps(texts: list[str]) -> list[datetime | None]:
    """`parse_timestamp` of texts already in the common shape (None where `fromisoformat` refuses).

    `fromisoformat` reads a final `Z` as `timezone.utc`, the very object `parse_timestamp` gets
    from "+00:00".
    """
    try:
        return list(map(datetime.fromisoformat, texts))
    except ValueError:
        return [parse_timestamp(text) for text in texts]


def _digests(dicts: list[dict], actions: list, currencies: list, columns: tuple) -> list[bytes | None]:
    """`payload_hash` of each item; None where orjson cannot write it (`check_event` then decides).

    An item holding only the fields of `_FIELDS`, not a refund, already passed checks 0–8: every
    value is an integer or a string that JSON writes as it is, so its canonical JSON (sorted keys,
    defaults written) is formatted straight from the columns — the bytes orjson would write.
    """
    texts = map(_PLAIN_JSON.__mod__, zip(*columns))
    digests: list = list(map(_DIGEST, map(partial(hashlib.blake2b, digest_size=16), map(str.encode, texts))))
    plain = np.fromiter(map(_PLAIN_FIELDS.issuperset, dicts), dtype=bool, count=len(dicts))
    for row in np.flatnonzero(~plain).tolist() + [row for row, action in enumerate(actions) if action == "refund"]:
        item, action, currency = dicts[row], actions[row], currencies[row]
        digests[row] = _digest_or_none(item if action is not None and currency is not None else
                                       {**item, "action": "complete" if action is None else action,
                                        "currency": "VND" if currency is None else currency})
    return digests


_DIGEST = methodcaller("digest")


def _digest_or_none(value: dict) -> bytes | None:
    try:
        return hashlib.blake2b(orjson.dumps(value, option=_SORT_KEYS), digest_size=16).digest()
    except orjson.JSONEncodeError:
        return None

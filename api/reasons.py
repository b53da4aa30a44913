"""Why an event got its outcome: one sentence per outcome code, in Vietnamese and English.

The ledger returns codes (`ledger.ingest.Outcome`); every channel that shows outcomes to
a platform engineer — `POST /v1/events` (language from `Accept-Language`), the stream's
outcome messages (`StreamSettings.outcome_lang`) and `ansinh ingest --outcomes` (`--lang`)
— adds the sentence here, so the three say the same words. Vietnamese is the default
everywhere, as for every other text of the project; `en` is chosen explicitly.

A month in a sentence reads as people read it — `tháng 2/2026`, `February 2026` — written by
the formatting layer (`api.formats.month`, as on the pages); the outcome's `booked_month` and
`occurred_month` fields stay `YYYY-MM` codes. This module imports nothing of the ledger when it
is loaded (the CLI and the API both load it cheaply); `api.formats` is imported on the first
sentence that names a month.
docs/events.md lists the same codes with an example each; a test checks that every code
has a sentence in every language.
"""
from __future__ import annotations

from itertools import repeat
from typing import Any, Sequence

import orjson

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"

# Every outcome code of RULES.md §1 (and the stream's own `platform_mismatch`), in order.
CODES = ("accepted", "duplicate", "malformed", "missing_field", "invalid_event_id", "unknown_kind",
         "invalid_currency", "invalid_amount", "invalid_timestamp", "invalid_worker_id", "invalid_action",
         "duplicate_conflict", "unknown_original", "refund_mismatch", "refund_exceeds_original",
         "platform_mismatch")

REASONS: dict[str, dict[str, str]] = {
    "vi": {
        "accepted": "Đã ghi sổ vào {booked}.",
        "accepted_late": "Đã ghi sổ vào {booked} vì {occurred} của sự kiện đã chốt sổ.",
        "accepted_no_month": "Đã ghi sổ.",
        "duplicate": "Sự kiện này đã được ghi sổ trước đó với đúng nội dung này; không ghi thêm gì.",
        "malformed": "Mục này không phải một đối tượng JSON hợp lệ.",
        "missing_field": "Thiếu một trường bắt buộc (hoặc trường đó là null).",
        "invalid_event_id": "event_id hoặc platform không hợp lệ: 1–128 ký tự A-Z a-z 0-9 . _ : -.",
        "unknown_kind": "kind phải là ride, delivery hoặc order.",
        "invalid_currency": "currency, nếu có, phải là VND.",
        "invalid_amount": "amount phải là số nguyên VND từ 1 đến 10.000.000.000.",
        "invalid_timestamp": "occurred_at phải là thời điểm RFC 3339 có múi giờ, không sớm hơn quy định đầu tiên "
                             "có hiệu lực.",
        "invalid_worker_id": "worker_id không phải số CCCD hợp lệ (12 chữ số, mã tỉnh và năm sinh hợp lệ).",
        "invalid_action": "action phải là complete hoặc refund.",
        "duplicate_conflict": "event_id này đã được ghi sổ với nội dung khác; không ghi gì.",
        "unknown_original": "Hoàn tiền không tìm thấy sự kiện gốc đã hoàn thành của cùng nền tảng.",
        "refund_mismatch": "Hoàn tiền có worker_id hoặc kind khác với sự kiện gốc.",
        "refund_exceeds_original": "Tổng các lần hoàn tiền sẽ vượt số tiền của sự kiện gốc.",
        "platform_mismatch": "platform của sự kiện khác với nền tảng của subject trên luồng.",
    },
    "en": {
        "accepted": "Booked in {booked}.",
        "accepted_late": "Booked in {booked} because its month, {occurred}, is already closed.",
        "accepted_no_month": "Booked.",
        "duplicate": "This event was already booked with this same payload; nothing more was booked.",
        "malformed": "The item is not a valid JSON object.",
        "missing_field": "A required field is missing or null.",
        "invalid_event_id": "The event_id or platform is invalid: 1–128 characters of A-Z a-z 0-9 . _ : -.",
        "unknown_kind": "The kind must be ride, delivery or order.",
        "invalid_currency": "The currency, when present, must be VND.",
        "invalid_amount": "The amount must be an integer number of VND from 1 to 10,000,000,000.",
        "invalid_timestamp": "occurred_at must be an RFC 3339 timestamp with a UTC offset, not before the first "
                             "rules version in force.",
        "invalid_worker_id": "The worker_id is not a valid citizen ID (12 digits, a valid province code and "
                             "birth year).",
        "invalid_action": "The action must be complete or refund.",
        "duplicate_conflict": "This event_id was already booked with a different payload; nothing was booked.",
        "unknown_original": "The refund names no accepted completed event of the same platform.",
        "refund_mismatch": "The refund's worker_id or kind differs from its original's.",
        "refund_exceeds_original": "The refunds of the original would add up to more than its amount.",
        "platform_mismatch": "The event's platform is not the platform of its stream subject.",
    },
}


def month_words(month: str | None, lang: str = DEFAULT_LANG) -> str | None:
    """`2026-02` as a sentence names it: `tháng 2/2026` (vi), `February 2026` (en); not a month: as it is."""
    if month is None:
        return None
    from api.formats import month as month_text  # loads the ledger's time zone: only when a month is named

    try:
        return month_text(month, lang if lang in LANGS else DEFAULT_LANG)
    except ValueError:
        return month


def reason(code: str, lang: str = DEFAULT_LANG, booked_month: str | None = None,
           occurred_month: str | None = None) -> str:
    """The sentence for one outcome; an unknown code (a newer server's) is named as it is."""
    text = REASONS.get(lang) or REASONS[DEFAULT_LANG]
    if code == "accepted":  # no month: a stream replay of an outcome stored by an earlier release
        chosen = "accepted_no_month" if booked_month is None else "accepted_late" if occurred_month else "accepted"
        return text[chosen].format(booked=month_words(booked_month, lang), occurred=month_words(occurred_month, lang))
    return text.get(code) or code


def with_reasons(outcomes: list[dict[str, Any]], lang: str = DEFAULT_LANG) -> list[dict[str, Any]]:
    """Outcome dicts (`Outcome.as_json()`) with their `reason` added, in place; returns them.

    The sentence of a code is looked up once per code, not per outcome; only accepted events
    (whose sentence names a month) are formatted one by one, by month.
    """
    fixed: dict[str, str] = {}
    by_months: dict[tuple, str] = {}
    for outcome in outcomes:
        code = outcome["outcome"]
        if code == "accepted":
            months = (outcome.get("booked_month"), outcome.get("occurred_month"))
            said = by_months.get(months)
            if said is None:
                said = by_months[months] = reason(code, lang, *months)
        else:
            said = fixed.get(code)
            if said is None:
                said = fixed[code] = reason(code, lang)
        outcome["reason"] = said
    return outcomes


# Outcomes whose platform and event id passed checks 0–8 (the ID alphabet): JSON writes them as they are.
_CHECKED_IDENTITY = frozenset({"accepted", "duplicate", "duplicate_conflict", "unknown_original", "refund_mismatch",
                               "refund_exceeds_original"})
_LINE_FIELDS = ("line", "platform", "event_id", "outcome", "booked_month", "occurred_month")


def outcome_lines(outcomes: Sequence[Sequence[Any]], lang: str = DEFAULT_LANG) -> bytes:
    """NDJSON of outcomes (`ledger.ingest.Outcome`s) with their reasons: the bytes of `orjson.dumps` of
    each `with_reasons` dict and a newline, written as columns (`ansinh ingest --outcomes`).

    One tail per (code, booked month, occurred month) holds the fixed fields and the reason,
    already JSON; a line is its number, platform and event id between fixed pieces, all joined
    once (no formatting call per line). Items refused by checks 0–8 (whose platform and event id
    may be any JSON value) are written by `orjson`.
    """
    if not outcomes:
        return b""
    lines, platforms, event_ids, codes, booked, occurred = zip(*outcomes)
    keys = list(zip(codes, booked, occurred))
    tails: dict[tuple, str] = {}
    for key in set(keys):
        code, booked_month, occurred_month = key
        said = reason(code, lang, booked_month, occurred_month) if code == "accepted" else reason(code, lang)
        tails[key] = ('","outcome":' + _json(code) + ',"booked_month":' + _json(booked_month)
                      + ',"occurred_month":' + _json(occurred_month) + ',"reason":' + _json(said) + "}\n")
    count = len(lines)
    pieces: list = [_LINE_OPEN] * (_PIECES * count)  # per line: open, number, platform's key, platform, …
    pieces[1::_PIECES] = map(str, lines)
    pieces[2::_PIECES] = repeat(_PLATFORM_KEY, count)
    pieces[3::_PIECES] = platforms
    pieces[4::_PIECES] = repeat(_EVENT_ID_KEY, count)
    pieces[5::_PIECES] = event_ids
    pieces[6::_PIECES] = map(tails.__getitem__, keys)
    for at in [at for at, code in enumerate(codes) if code not in _CHECKED_IDENTITY]:
        fields = dict(zip(_LINE_FIELDS, outcomes[at]))
        fields["reason"] = reason(fields["outcome"], lang)
        pieces[_PIECES * at:_PIECES * (at + 1)] = [orjson.dumps(fields).decode() + "\n", *[""] * (_PIECES - 1)]
    return "".join(pieces).encode()


_PIECES = 7
_LINE_OPEN, _PLATFORM_KEY, _EVENT_ID_KEY = '{"line":', ',"platform":"', '","event_id":"'


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def reasoned(outcome: dict[str, Any], lang: str = DEFAULT_LANG) -> dict[str, Any]:
    """One outcome dict with its `reason` added (in place); returns it."""
    outcome["reason"] = reason(outcome["outcome"], lang, outcome.get("booked_month"), outcome.get("occurred_month"))
    return outcome


def negotiate(accept_language: str | None) -> str:
    """The language of an `Accept-Language` header: the first of vi/en by q-value; vi when neither."""
    if not accept_language:
        return DEFAULT_LANG
    best, best_q = DEFAULT_LANG, -1.0
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q and q > 0:
            best, best_q = primary, q
    return best

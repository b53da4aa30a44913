"""Hypothesis strategies for events: valid, near-valid and hostile, and the model's expected outcome.

Hostile means what a platform's buggy or malicious client could put in JSON: numbers far
past 64 bits, floats, booleans where strings belong, unicode look-alikes (full-width
digits, non-breaking spaces, accents), empty and 129-character ids, nested arrays and
objects in any field, unknown fields of any shape. Every value here is a JSON value
(the entry points all parse JSON, CSV or Parquet), so NaN and lone surrogates, which
JSON cannot carry, are left out; raw bytes are fuzzed separately at the HTTP layer.
"""
from __future__ import annotations

import re

from hypothesis import strategies as st

from ledger.events import NESTING_DEPTH_MAX
from tests.reference_model import ReferenceModel

OUTCOMES = frozenset({"accepted", "duplicate", "malformed", "missing_field", "invalid_event_id", "unknown_kind",
                      "invalid_currency", "invalid_amount", "invalid_timestamp", "invalid_worker_id",
                      "invalid_action", "duplicate_conflict", "unknown_original", "refund_mismatch",
                      "refund_exceeds_original"})
assert len(OUTCOMES) == 15
EVENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}", re.ASCII)
# Made-up, rule-valid ids (and one born in 2026); they identify no one.
WORKERS = ("079203001234", "001085004321", "048190005555", "036326001111")
IDS = ("e-1", "e-2", "e-3", "r-1", "r-2", "x" * 128)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-10, 10**10 + 10),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def _or_hostile(*regular, weight: int = 4):
    """Mostly the regular values, sometimes anything at all."""
    return st.one_of(*([st.one_of(*regular)] * weight), json_values)


def _mutated_worker(national_id: str):
    return st.sampled_from((national_id[:11], national_id + "0", national_id[:11] + "X", " " + national_id,
                            national_id.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
                            "000" + national_id[3:], national_id[:3] + "9" + national_id[4:], int(national_id)))


TIMESTAMPS = st.one_of(
    st.sampled_from(("2026-02-10T09:00:00+07:00", "2026-01-31T17:00:00Z", "2026-02-28T16:59:59.999999Z",
                     "2025-12-31T16:59:59Z", "2026-02-10T09:00:00", "2026-02-30T10:00:00Z", "9999-12-31T23:59:59-23:59",
                     "0001-01-01T00:00:00+23:59", "2026-02-10T09:00:00+07:00\u00a0", "２０２６-02-10T09:00:00Z")),
    st.builds(lambda moment, zone: moment.isoformat() + zone, st.datetimes(), st.sampled_from(("Z", "+07:00", "-12:00",
                                                                                               "+14:00", ""))))

FIELDS = {
    "event_id": _or_hostile(st.sampled_from(IDS), st.text(alphabet="abcXYZ019._:-é /\u00a0", max_size=130)),
    "platform": _or_hostile(st.sampled_from(("grab", "be")), weight=12),
    "kind": _or_hostile(st.sampled_from(("ride", "delivery", "order", "Ride", "taxi", ""))),
    "worker_id": _or_hostile(st.sampled_from(WORKERS), st.sampled_from(WORKERS).flatmap(_mutated_worker)),
    "amount": _or_hostile(st.integers(-5, 3_000_000), st.sampled_from((1, 10**10, 10**10 + 1, 0, 2**63, 2**64 + 1)),
                          st.sampled_from((100_000.0, 1.5, True, "100000", 1e300))),
    "occurred_at": _or_hostile(TIMESTAMPS),
    "currency": _or_hostile(st.sampled_from(("VND", "vnd", "USD", "VNĐ", ""))),
    "action": _or_hostile(st.sampled_from(("complete", "refund", "refund", "cancel", "Refund", ""))),
    "original_event_id": _or_hostile(st.sampled_from(IDS)),
}
OPTIONAL = ("currency", "action", "original_event_id")


@st.composite
def events(draw, platform: str | None = None):
    item = {}
    for name, values in FIELDS.items():
        present = draw(st.integers(0, 19)) >= (12 if name in OPTIONAL else 1)
        if present:
            item[name] = draw(values)
    if platform is not None and "platform" in item:
        item["platform"] = platform
    for key, value in draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3)).items():
        item.setdefault(key, value)
    return item


def items(platform: str | None = None):
    """One batch item: an event-like object mostly, anything else (malformed) sometimes."""
    return st.one_of(*([events(platform)] * 6), json_values.filter(lambda value: not isinstance(value, dict)))


def expected(model: ReferenceModel, item: object) -> str:
    """The outcome RULES.md gives `item`, from the reference model, with the project's documented choices:
    a null optional field counts as absent, and a platform id follows the event id's alphabet
    (a bad one is `invalid_event_id`, the model itself not deciding on platforms), and an event nested
    deeper than `NESTING_DEPTH_MAX` is `malformed`."""
    if not isinstance(item, dict):
        return model.ingest(item)
    if _depth(item) > NESTING_DEPTH_MAX:  # the project's limit (ledger/events.py); RULES.md sets none
        return "malformed"
    item = {key: value for key, value in item.items() if not (key in ("action", "currency") and value is None)}
    platform = item.get("platform")
    if platform is not None and not (isinstance(platform, str) and EVENT_ID.fullmatch(platform)):
        try:
            first = model.check(item)
        except NotImplementedError:
            first = None
        return first if first in ("malformed", "missing_field") else "invalid_event_id"
    return model.ingest(item)


def _depth(value: object) -> int:
    """Levels of objects and arrays in `value`, itself level 1, breadth first (written apart from the ledger's
    own check, so the two can disagree)."""
    if not isinstance(value, (dict, list)):
        return 0
    level, frontier = 1, [value]
    while True:
        frontier = [child for node in frontier for child in (node.values() if isinstance(node, dict) else node)
                    if isinstance(child, (dict, list))]
        if not frontier:
            return level
        level += 1

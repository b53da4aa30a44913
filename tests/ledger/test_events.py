"""Checks 0–8 of RULES.md §1, one code at a time, and Vietnam-time months."""
from __future__ import annotations

from datetime import date

import pytest

from ledger.events import Rejection, ValidEvent, check_event, payload_hash
from tests.ledger.factories import event, refund

FIRST_DAY = date(2026, 1, 1)


def outcome(item: object) -> str:
    result = check_event(item, FIRST_DAY)
    return "valid" if isinstance(result, ValidEvent) else result.name


@pytest.mark.parametrize("item, code", [
    ([1, 2], "malformed"),
    ("text", "malformed"),
    (17, "malformed"),
    (None, "malformed"),
    (event(amount=None), "missing_field"),
    (event(kind=...), "missing_field"),
    (event(occurred_at=...), "missing_field"),
    ({**refund("r-1", "e-1", 10), "original_event_id": None}, "missing_field"),
    (event(event_id=""), "invalid_event_id"),
    (event(event_id="é-1"), "invalid_event_id"),
    (event(event_id="x" * 129), "invalid_event_id"),
    (event(event_id=42), "invalid_event_id"),
    (event(platform="grab food"), "invalid_event_id"),
    (event(kind="taxi"), "unknown_kind"),
    (event(kind=["ride"]), "unknown_kind"),
    (event(currency="USD"), "invalid_currency"),
    (event(currency=""), "invalid_currency"),
    (event(amount=0), "invalid_amount"),
    (event(amount=-5), "invalid_amount"),
    (event(amount=1.5), "invalid_amount"),
    (event(amount=100000.0), "invalid_amount"),
    (event(amount=True), "invalid_amount"),
    (event(amount="100000"), "invalid_amount"),
    (event(amount=10_000_000_001), "invalid_amount"),
    (event(occurred_at="2026-02-10T09:00:00"), "invalid_timestamp"),
    (event(occurred_at="yesterday"), "invalid_timestamp"),
    (event(occurred_at=1767225600), "invalid_timestamp"),
    (event(occurred_at="2025-12-31T16:59:59Z"), "invalid_timestamp"),
    (event(worker_id="07920300123x"), "invalid_worker_id"),
    (event(worker_id="12345"), "invalid_worker_id"),
    (event(worker_id="000192577539"), "invalid_worker_id"),
    (event(worker_id="003300656115"), "invalid_worker_id"),
    (event(worker_id=79203001234), "invalid_worker_id"),
    (event(worker_id="０７９２０３００１２３４"), "invalid_worker_id"),
    (event(action="cancel"), "invalid_action"),
])
def test_each_stateless_rejection_code_is_reached(item, code):
    assert outcome(item) == code


def test_the_first_failing_check_in_rules_order_wins():
    item = event(event_id="", kind="taxi", amount=-1, worker_id="1")
    assert outcome(item) == "invalid_event_id"
    assert outcome(event(kind="taxi", amount=-1)) == "unknown_kind"
    assert outcome(event(currency="USD", amount=-1)) == "invalid_currency"


def test_a_refund_without_original_is_missing_a_field_but_a_bad_action_without_one_is_invalid_action():
    assert outcome(event(action="refund")) == "missing_field"
    assert outcome(event(action="cancel")) == "invalid_action"


def test_the_last_second_of_2025_in_vietnam_is_too_early_and_the_next_is_january():
    assert outcome(event(occurred_at="2025-12-31T16:59:59Z")) == "invalid_timestamp"
    result = check_event(event(occurred_at="2025-12-31T17:00:00Z"), FIRST_DAY)
    assert result.occurred_month == 202601


def test_an_evening_in_utc_on_31_january_is_february_in_vietnam():
    result = check_event(event(occurred_at="2026-01-31T20:00:00Z"), FIRST_DAY)
    assert result.occurred_month == 202602
    assert check_event(event(occurred_at="2026-01-31T16:59:59Z"), FIRST_DAY).occurred_month == 202601


def test_a_worker_born_after_the_event_year_is_invalid():
    # digit 4 = 2 (born 2000s), yy = 27 -> born 2027, after a 2026 event
    assert outcome(event(worker_id="079227001234")) == "invalid_worker_id"
    assert outcome(event(worker_id="079226001234")) == "valid"


def test_identical_payloads_hash_alike_whatever_the_key_order_and_written_defaults():
    plain = event()
    written = {**dict(reversed(list(plain.items()))), "action": "complete", "currency": "VND"}
    assert payload_hash(plain) == payload_hash(written)
    assert payload_hash(plain) != payload_hash({**plain, "meta": {"city": "HN"}})
    assert payload_hash(plain) != payload_hash({**plain, "amount": 100_001})

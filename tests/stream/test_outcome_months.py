"""A redelivered message gets its first outcome republished with the months it was booked in
(docs/events.md): the outcome block keeps them; blocks of the previous release hold codes only."""
from __future__ import annotations

import orjson
import pytest

from api.reasons import reasoned
from api.stream import Delivered, StreamSettings, StreamSetupError, book_batch, prepare_tables
from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.store import query
from tests.ledger.factories import event, numbered


def delivered(seq: int, item: dict) -> Delivered:
    return Delivered(seq, "events.grab", orjson.dumps(item), 1)


def test_a_replayed_late_booking_keeps_its_booked_and_occurred_months(ledger):
    settings = StreamSettings()
    prepare_tables(ledger, "k")
    ingest_batch(ledger, numbered([event("jan", occurred_at="2026-01-20T10:00:00+07:00")]))
    close_month(ledger, "2026-01")
    messages = [delivered(1, event("late", occurred_at="2026-01-25T10:00:00+07:00")), delivered(2, event("x", amount=0))]
    first = book_batch(ledger, settings, "k", messages)
    again = book_batch(ledger, settings, "k", messages)  # at or below the position: replays
    months = [(a.outcome.outcome, a.outcome.booked_month, a.outcome.occurred_month) for a in first.booked]
    assert months == [("accepted", "2026-02", "2026-01"), ("invalid_amount", None, None)]
    assert [(a.outcome.outcome, a.outcome.booked_month, a.outcome.occurred_month) for a in again.replays] == months


def test_an_outcome_block_of_the_previous_release_replays_its_codes_without_months(ledger):
    settings = StreamSettings()
    prepare_tables(ledger, "k")
    message = delivered(1, event("a"))
    book_batch(ledger, settings, "k", [message])
    with ledger.engine.begin() as conn:  # as the previous release stored it: [seq, code]
        query(conn, "UPDATE stream_outcome_block SET outcomes = ? WHERE stream_key = ?", ('[[1, "accepted"]]', "k"))
    replayed = book_batch(ledger, settings, "k", [message]).replays
    assert [(a.outcome.outcome, a.outcome.booked_month) for a in replayed] == [("accepted", None)]
    assert reasoned(replayed[0].outcome.as_json(), "en")["reason"] == "Booked."


def test_an_outcome_language_other_than_vi_or_en_is_refused():
    with pytest.raises(StreamSetupError, match="outcome language"):
        StreamSettings(outcome_lang="fr")

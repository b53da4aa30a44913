"""A batch booked as columns gives what booking its events one at a time in input order gives.

Plain events (completed, their key neither in the books nor named twice in the batch) are
accepted as columns; refunds, duplicates and keys named twice go through checks 9–12 one
by one (`ledger.ingest._book`). These pin the orders in between, and the NDJSON reader that
parses a block of lines at once.
"""
from __future__ import annotations

import io

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import readers
from ledger.ingest import MALFORMED, ingest_batch
from ledger.readers import read_ndjson
from ledger.store import query
from ledger.verify import verify
from tests.ledger.factories import WORKER_B, event, numbered, refund


def journal(ledger) -> list[tuple]:
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT id, entry_type, event_id, original_entry_id, receivable_vnd FROM journal ORDER BY id")
        conn.rollback()
    return [tuple(row) for row in rows]


def outcomes(ledger, items: list) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, numbered(items))]


def test_a_refund_before_its_original_in_one_batch_is_an_unknown_original_and_after_it_is_booked_against_it(ledger):
    assert outcomes(ledger, [refund("r-1", "a", 10_000), event("x"), event("a"), refund("r-2", "a", 10_000),
                             refund("r-3", "a", 95_000)]) == [
        "unknown_original", "accepted", "accepted", "accepted", "refund_exceeds_original"]
    rows = journal(ledger)
    assert [(entry_id, event_id, original) for entry_id, _type, event_id, original, _r in rows] == [
        (1, "x", None), (2, "a", None), (3, "r-2", 2)]  # ids follow input order, the refund names its original
    assert rows[2][4] < 0 < rows[1][4] and abs(rows[2][4] * 10 + rows[1][4]) <= 60  # a tenth reversed (rounded per share)
    assert all(check.problem is None for check in verify(ledger))


def test_an_event_id_named_twice_in_one_batch_is_booked_once_then_duplicate_or_conflict(ledger):
    assert outcomes(ledger, [event("a"), event("b"), event("a"), event("a", amount=5), refund("b", "a", 1),
                             event("c")]) == [
        "accepted", "accepted", "duplicate", "duplicate_conflict", "duplicate_conflict", "accepted"]
    assert [row[2] for row in journal(ledger)] == ["a", "b", "c"]


def test_a_refund_taking_an_id_first_makes_the_later_event_with_that_id_a_conflict(ledger):
    outcomes(ledger, [event("o")])
    assert outcomes(ledger, [refund("k", "o", 1_000), event("k"), refund("k2", "k", 1_000), event("n")]) == [
        "accepted", "duplicate_conflict", "unknown_original", "accepted"]  # a refund is no original
    assert [(row[1], row[2], row[3]) for row in journal(ledger)] == [(1, "o", None), (2, "k", 1), (1, "n", None)]


def test_refunds_of_one_original_across_batches_and_in_one_batch_reverse_it_once_in_all(ledger):
    outcomes(ledger, [event("a", worker_id=WORKER_B), event("b")])
    assert outcomes(ledger, [refund("r-1", "a", 40_000, worker_id=WORKER_B), refund("r-2", "a", 60_000,
                                                                                    worker_id=WORKER_B),
                             refund("r-3", "a", 1, worker_id=WORKER_B), refund("r-4", "b", 1, kind="order"),
                             event("b"), event("c", amount=7)]) == [
        "accepted", "accepted", "refund_exceeds_original", "refund_mismatch", "duplicate", "accepted"]
    rows = journal(ledger)
    assert rows[0][4] + rows[2][4] + rows[3][4] == 0  # the whole of event "a" reversed by its two refunds
    assert all(check.problem is None for check in verify(ledger))


def test_a_batch_of_rejected_items_only_writes_an_empty_block_and_no_entry(ledger):
    assert outcomes(ledger, [event("a", kind="taxi"), MALFORMED, [1]]) == [
        "unknown_kind", "malformed", "malformed"]
    with ledger.engine.connect() as conn:
        assert query(conn, "SELECT count(*), sum(entry_count) FROM block")[0] == (1, 0)
        conn.rollback()
    assert journal(ledger) == []


def line_by_line(data: bytes) -> list[tuple[int, object]]:
    """What `read_ndjson` gave before it parsed blocks: each line alone."""
    parsed = []
    for number, raw in enumerate(io.BytesIO(data), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            parsed.append((number, orjson.loads(raw)))
        except orjson.JSONDecodeError:
            parsed.append((number, MALFORMED))
    return parsed


LINES = st.one_of(st.builds(lambda n: orjson.dumps({"event_id": f"e-{n}", "amount": n}), st.integers(0, 10 ** 6)),
                  st.sampled_from([b"", b"   ", b"\t", b"{", b"not json", b"[1, 2]", b"\"text\"", b"\xff\xfe",
                                   b"{\"a\": 1} trailing"]),
                  st.binary(max_size=12))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINES, max_size=120), st.booleans(), st.booleans(), st.integers(1, 400))
def test_ndjson_read_a_block_at_a_time_gives_the_items_reading_line_by_line_gives(monkeypatch, lines, bom, final_newline,
                                                                                   block_bytes):
    monkeypatch.setattr(readers, "NDJSON_BLOCK_BYTES", block_bytes)  # blocks of a few lines: every halving runs
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(line.replace(b"\n", b" ") for line in lines) \
        + (b"\n" if final_newline else b"")
    assert list(read_ndjson(io.BytesIO(data))) == line_by_line(data)

"""The ledger owns the transaction: a caller's unit of work, the batch limit, the file pipeline."""
from __future__ import annotations

import threading

import pytest

from ledger.ingest import BATCH_SIZE_MAX, BatchTooLarge, ingest_batch, ingest_stream
from ledger.store import query
from tests.ledger.factories import WORKER_B, event, numbered, refund


def entries(ledger) -> int:
    with ledger.engine.connect() as conn:
        count = query(conn, "SELECT count(*) FROM journal")[0][0]
        conn.rollback()
    return count


def test_a_batch_over_the_limit_is_refused_whole_before_anything_is_booked(ledger):
    with pytest.raises(BatchTooLarge) as refused:
        ingest_batch(ledger, numbered([event(f"e-{n}") for n in range(BATCH_SIZE_MAX + 1)]))
    assert (refused.value.count, refused.value.limit) == (BATCH_SIZE_MAX + 1, BATCH_SIZE_MAX)
    with pytest.raises(BatchTooLarge):
        ingest_batch(ledger, numbered([event("a"), event("b"), event("c")]), batch_size_max=2)
    assert entries(ledger) == 0


def test_a_batch_booked_in_the_callers_unit_of_work_commits_with_the_callers_own_rows(ledger):
    with ledger.unit_of_work() as work:
        first = ingest_batch(ledger, numbered([event("a")]), work=work)
        second = ingest_batch(ledger, numbered([refund("r", "a", 40_000), event("b", worker_id=WORKER_B)]),
                              work=work)
        assert ledger._worker_ids == {}  # nothing cached before the commit
    assert [o.outcome for o in first + second] == ["accepted"] * 3
    assert entries(ledger) == 3
    assert len(ledger._worker_ids) == 2 and set(ledger._platform_ids) == {"grab"}


def test_a_unit_of_work_that_fails_books_nothing_and_caches_no_ids(ledger):
    with pytest.raises(RuntimeError, match="the caller failed"):
        with ledger.unit_of_work() as work:
            assert [o.outcome for o in ingest_batch(ledger, numbered([event("a")]), work=work)] == ["accepted"]
            raise RuntimeError("the caller failed after booking")
    assert entries(ledger) == 0
    assert (ledger._worker_ids, ledger._platform_ids) == ({}, {})
    assert [o.outcome for o in ingest_batch(ledger, numbered([event("a")]))] == ["accepted"]  # ids made afresh


def test_a_file_is_booked_in_chunks_with_every_outcome_in_input_order(ledger):
    items = [(n, event(f"e-{n}", amount=1_000 + n) if n % 7 else {"kind": "ride"}) for n in range(1, 251)]
    chunks = list(ingest_stream(ledger, items, chunk_size=40))
    assert [len(chunk) for chunk in chunks] == [40] * 6 + [10]
    outcomes = [outcome for chunk in chunks for outcome in chunk]
    assert [o.line for o in outcomes] == list(range(1, 251))
    assert [o.outcome for o in outcomes] == ["accepted" if n % 7 else "missing_field" for n in range(1, 251)]
    assert entries(ledger) == 250 - 250 // 7


def test_a_reading_error_mid_file_keeps_the_chunks_before_it_and_books_nothing_after(ledger):
    def items():
        for n in range(1, 96):
            yield n, event(f"e-{n}")
        raise OSError("the disk went away at line 96")

    booked = []
    with pytest.raises(OSError, match="line 96"):
        for chunk in ingest_stream(ledger, items(), chunk_size=30):
            booked += chunk
    assert len(booked) == 90 and entries(ledger) == 90  # three whole chunks; the fourth never began
    assert not [thread for thread in threading.enumerate() if thread.name == "ansinh-ingest-check"]


def test_a_caller_that_stops_early_stops_the_reading_thread(ledger):
    read = []

    def items():
        for n in range(1, 10_001):
            read.append(n)
            yield n, event(f"e-{n}")

    stream = ingest_stream(ledger, items(), chunk_size=50)
    assert len(next(stream)) == 50
    stream.close()
    assert not [thread for thread in threading.enumerate() if thread.name == "ansinh-ingest-check"]
    assert entries(ledger) == 50 and len(read) <= 50 * 3 + 1  # read at most the chunks queued behind the first


def test_a_binary_copy_writes_the_rows_a_text_copy_writes(ledger):
    from ledger.store import insert_rows, is_sqlite

    rows = [(1, 7, "grab-r-000001", bytes(range(16)), None, -9_000_000_000), (2, -1, "é:x", b"", 5, 0)]
    with ledger.unit_of_work() as work:
        conn = work.connection
        if is_sqlite(conn):
            pytest.skip("binary COPY is PostgreSQL's")
        for table in ("copied_text", "copied_binary"):
            query(conn, f"CREATE TABLE {table} (id bigint, kind smallint, event_id text, digest bytea, "
                        "original_id integer, amount_vnd bigint)")
        insert_rows(conn, "copied_text", ("id", "kind", "event_id", "digest", "original_id", "amount_vnd"), rows)
        insert_rows(conn, "copied_binary", ("id", "kind", "event_id", "digest", "original_id", "amount_vnd"), rows,
                    binary=True)
        read = [[tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)
                 for row in query(conn, f"SELECT * FROM {table} ORDER BY id")]
                for table in ("copied_text", "copied_binary")]
    assert read[0] == read[1] == rows


def test_a_list_sent_as_one_postgresql_text_reads_back_as_the_list_and_odd_values_go_as_they_are(ledger):
    from ledger.store import is_sqlite, pg_array

    with ledger.unit_of_work() as work:
        conn = work.connection
        if is_sqlite(conn):
            pytest.skip("PostgreSQL arrays")
        for values, joined in ((["grab-r-1", "é:x", "a" * 128], True), ([1, -2, 9_000_000_000], True),
                               (["two\nlines", "b"], False), (["", "b"], False), ([b"\x00", b""], False),
                               ([1, None], False)):
            sql, value = pg_array(values, "bytea" if isinstance(values[0], bytes) else
                                  "bigint" if isinstance(values[0], int) else "text")
            assert isinstance(value, str) is joined, values
            got = [bytes(row[0]) if isinstance(row[0], memoryview) else row[0]
                   for row in query(conn, f"SELECT unnest({sql.replace('%s', '?')})", (value,))]
            assert got == values

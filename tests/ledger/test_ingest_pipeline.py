"""A file booked with its reading and checks in a forked process writes the books the caller's thread writes.

`ingest_stream` prepares chunk n+1 (`check_batch`) while chunk n is booked: in a forked child
(`ahead="process"`, and `"auto"` past the first chunk), a thread, or inline (`ledger.pipeline`).
These pin that the books (every row of every table, block hashes included: `books_digest`) and
the outcomes are the same in every mode and the same as booking each chunk with `ingest_batch`
(the HTTP and stream path); that an error while reading reaches the caller as itself, after the
chunks before it; and that no child outlives the ingest.
"""
from __future__ import annotations

import os
import pickle
import uuid
from itertools import repeat

import numpy as np
import orjson
import pytest

from ledger import pipeline
from ledger.books import Ledger
from ledger.files import FileFormatError
from ledger.ingest import CheckedBatch, check_batch, ingest_batch, ingest_stream
from ledger.pipeline import chunks, prepared_chunks
from ledger.readers import read_events
from ledger.store import query
from simulations.synthetic_events import generate_events, write_ndjson
from tests.conftest import FixedClock, _drop_schema, _fresh_postgres_url, postgres_available
from tests.ledger.books_digest import books_digest, deterministic_identities  # noqa: F401 - a fixture
from tests.ledger.factories import event, numbered, refund

CHUNK = 400
EXTRA_LINES = [b"", b"{not json", b"[1, 2]", b"   ", b'"a string"', b"{\"event_id\": \"x\"}"]


@pytest.fixture
def events_file(tmp_path):
    """~3,000 generated items (every rejection code, refunds, re-sent duplicates across chunks) and odd lines."""
    path = tmp_path / "events.ndjson"
    write_ndjson(path, generate_events(seed=11, month="2026-01", workers=150, events=3_000))
    lines = path.read_bytes().splitlines()
    for at, extra in zip(range(150, len(lines), 500), EXTRA_LINES):
        lines.insert(at, extra)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def fresh_books(request, tmp_path):
    """A maker of fresh books on the store of `database_url`'s parameter, each in its own database."""
    store = request.node.callspec.params["database_url"]
    made: list[tuple[Ledger, str | None]] = []

    def make() -> Ledger:
        schema = None
        if store == "sqlite":
            url = f"sqlite:///{tmp_path / f'books-{uuid.uuid4().hex[:8]}.db'}"
        else:
            if postgres_available():
                pytest.skip("PostgreSQL is not reachable")
            url, schema = _fresh_postgres_url()
        books = Ledger.open(url, pack="vn-pilot", clock=FixedClock())
        made.append((books, schema))
        return books

    yield make
    for books, schema in made:
        books.close()
        if schema:
            _drop_schema(schema)


def _forks(monkeypatch) -> list[int]:
    """Every child forked from here on (their pids), to check none is left unreaped."""
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(pipeline.os, "fork", fork)
    return forked


def _all_reaped(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return True


def _stream(books: Ledger, path, ahead: str, chunk_size: int = CHUNK) -> list[tuple]:
    return [tuple(outcome) for chunk in ingest_stream(books, read_events(str(path)), chunk_size=chunk_size,
                                                     ahead=ahead) for outcome in chunk]


def test_the_books_and_outcomes_of_a_file_are_the_same_whichever_process_reads_and_checks_it(
        database_url, fresh_books, events_file, deterministic_identities, monkeypatch):
    forked = _forks(monkeypatch)
    books = {ahead: fresh_books() for ahead in ("none", "process", "auto", "thread")}
    outcomes = {ahead: _stream(ledger, events_file, ahead) for ahead, ledger in books.items()}
    by_batch = fresh_books()  # the HTTP and stream path: ingest_batch, one chunk at a time
    outcomes["batch"] = [tuple(outcome) for chunk in chunks(read_events(str(events_file)), CHUNK)
                         for outcome in ingest_batch(by_batch, chunk, batch_size_max=CHUNK)]
    books["batch"] = by_batch
    reference = outcomes["none"]
    assert len(reference) == 3_000 + 4  # every item but the two blank lines has its outcome
    codes = {outcome[3] for outcome in reference}
    assert {"accepted", "duplicate", "malformed", "missing_field", "invalid_worker_id", "duplicate_conflict",
            "unknown_original", "refund_mismatch", "refund_exceeds_original"} <= codes
    assert [outcome[0] for outcome in reference] == sorted(outcome[0] for outcome in reference)
    for ahead in ("process", "auto", "thread", "batch"):
        assert outcomes[ahead] == reference, ahead
    digests = {ahead: books_digest(ledger) for ahead, ledger in books.items()}
    assert len(set(digests.values())) == 1, digests
    assert len(forked) == 2 and _all_reaped(forked)  # "process" and "auto" forked once each; both reaped


def test_an_input_of_one_chunk_is_checked_in_the_callers_process(ledger, monkeypatch):
    def no_fork() -> int:
        raise AssertionError("forked for one chunk")

    monkeypatch.setattr(pipeline.os, "fork", no_fork)
    items = numbered([event(f"e-{n}") for n in range(50)])
    assert [len(chunk) for chunk in ingest_stream(ledger, items, chunk_size=50)] == [50]


def test_a_reading_error_in_the_child_reaches_the_caller_as_itself_after_the_chunks_before_it(
        ledger, tmp_path, monkeypatch):
    forked = _forks(monkeypatch)
    path = tmp_path / "events.csv"
    rows = [f"e-{n},grab,ride,079203001234,{1_000 + n},2026-02-10T09:00:00+07:00".encode() for n in range(1, 101)]
    rows[69] = b"e-70,grab,ride,079203001234,\xff\xfe,2026-02-10T09:00:00+07:00"  # not UTF-8: the file is unreadable
    path.write_bytes(b"event_id,platform,kind,worker_id,amount,occurred_at\n" + b"\n".join(rows) + b"\n")
    booked = []
    with pytest.raises(FileFormatError) as raised:
        for chunk in ingest_stream(ledger, read_events(str(path)), chunk_size=20, ahead="process"):
            booked += chunk
    assert str(raised.value).startswith(f"{path}: line 71: ") and raised.value.line == 71
    assert len(booked) == 60  # three whole chunks; the fourth holds the bad line and is never booked
    with ledger.engine.connect() as conn:
        assert query(conn, "SELECT count(*) FROM journal")[0][0] == 60
        conn.rollback()
    assert len(forked) == 1 and _all_reaped(forked)


def test_an_error_that_does_not_pickle_arrives_as_the_same_kind_with_the_same_text():
    class Odd(OSError):
        def __init__(self, first: str, second: str) -> None:
            super().__init__(f"{first} and {second}")

    def items():
        yield 1, event("a")
        raise Odd("the disk", "the cable")

    with pytest.raises(OSError, match="Odd: the disk and the cable"):
        list(prepared_chunks(items(), 5, len, "process"))


def test_a_caller_that_stops_early_ends_the_child_which_is_reaped(ledger, monkeypatch):
    forked = _forks(monkeypatch)
    items = numbered([event(f"e-{n}") for n in range(1, 2_001)])
    stream = ingest_stream(ledger, iter(items), chunk_size=100, ahead="auto")
    assert len(next(stream)) == 100 and len(next(stream)) == 100
    stream.close()
    assert len(forked) == 1 and _all_reaped(forked)
    with ledger.engine.connect() as conn:
        assert query(conn, "SELECT count(*) FROM journal")[0][0] == 200
        conn.rollback()


def test_a_child_that_dies_is_an_error_not_the_end_of_the_input(monkeypatch):
    def items():
        yield 1, event("a")
        yield 2, event("b")
        os._exit(3)  # in the child: killed mid-read

    with pytest.raises(pipeline.ReaderEnded):
        list(prepared_chunks(items(), 1, len, "process"))


def test_a_checked_batch_crosses_the_pipe_unchanged(ledger):
    items = numbered([event("a"), refund("r", "a", 100), {"kind": "ride"}, event("a"), event("b", platform="be"),
                      "MALFORMED", refund("q", {"not": "a string"}, 5), event("c", occurred_at="2026-03-01T00:00:00Z")])
    batch = check_batch(items, ledger.pack, ledger.keys)
    copy = pickle.loads(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    assert isinstance(copy, CheckedBatch)
    for name in CheckedBatch.__slots__:
        mine, theirs = getattr(batch, name), getattr(copy, name)
        if isinstance(mine, np.ndarray):
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), name
        else:
            assert mine == theirs and type(mine) is type(theirs), name
    assert (batch.rejected_at, batch.rejected_codes) == ([2, 5], ["missing_field", "malformed"])
    # among the valid events: the refunds, the last position of each one's original, the key named twice
    assert (batch.refund_at, batch.original_at, batch.repeated_at) == ([1, 4], [2, None], [0, 2])
    assert orjson.dumps(batch.original_ids) == b'["a",{"not":"a string"}]'


def test_a_parquet_file_is_read_on_in_the_forked_child_after_its_first_batches_were_read_here(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ledger.readers import read_parquet

    items = [event(f"e-{n}", amount=1_000 + n) for n in range(40)]
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(items), path, row_group_size=8)
    expected = list(read_parquet(path, batch_rows=4))
    read = [item for chunk in prepared_chunks(read_parquet(path, batch_rows=4), 6, list, "auto") for item in chunk]
    assert read == expected and len(read) == 40 and read[39] == (40, items[39])


def test_an_input_that_fails_just_past_its_first_chunk_books_that_chunk_then_raises(ledger, monkeypatch):
    forked = _forks(monkeypatch)

    def items():
        yield from numbered([event(f"e-{n}") for n in range(1, 11)])
        raise OSError("the disk went away at line 11")

    booked = []
    with pytest.raises(OSError, match="line 11"):
        for chunk in ingest_stream(ledger, items(), chunk_size=10):
            booked += chunk
    assert len(booked) == 10 and forked == []  # no child was worth forking


def _writer_used(monkeypatch, min_rows: int, part_rows: int) -> list[int]:
    """Lower the block writer's thresholds; the number of inserts each `BlockWriter` ran, one per writer."""
    from ledger import postings

    made: list[int] = []

    class Counting(postings.BlockWriter):
        def __init__(self) -> None:
            super().__init__()
            made.append(0)
            self.number = len(made) - 1

        def submit(self, function, *args) -> None:
            made[self.number] += 1
            super().submit(function, *args)

    monkeypatch.setattr(postings, "BlockWriter", Counting)
    monkeypatch.setattr(postings, "OVERLAP_MIN_ROWS", min_rows)
    monkeypatch.setattr(postings, "WRITE_PART_ROWS", part_rows)
    return made


def test_the_books_and_outcomes_are_the_same_when_a_writer_thread_inserts_each_block(
        database_url, fresh_books, events_file, deterministic_identities, monkeypatch):
    inline = fresh_books()
    made = _writer_used(monkeypatch, 10**9, 37)
    reference = _stream(inline, events_file, "none")
    assert made == []  # no block was big enough for a writer
    threaded = {ahead: fresh_books() for ahead in ("none", "process")}
    made = _writer_used(monkeypatch, 50, 37)
    outcomes = {ahead: _stream(ledger, events_file, ahead) for ahead, ledger in threaded.items()}
    # 8 chunks a mode (the last of 204 items); each block: its partitions, its journal rows in parts of at
    # most 37 (6 to 11 of them), its last inserts; the same blocks in both modes
    assert len(made) == 16 and made[:8] == made[8:] and min(made) >= 8 and max(made) == 13, made
    for ahead in threaded:
        assert outcomes[ahead] == reference, ahead
    digests = {books_digest(ledger) for ledger in (inline, *threaded.values())}
    assert len(digests) == 1


def test_an_insert_that_fails_on_the_writer_thread_reaches_the_caller_and_its_chunk_rolls_back_whole(
        ledger, monkeypatch):
    from ledger import postings, store

    _writer_used(monkeypatch, 50, 40)
    real_insert = store.insert_columns
    journal_parts = []

    def failing_insert(conn, table, columns, values, count, binary=False):
        if table == "journal":
            journal_parts.append(count)
            if len(journal_parts) == 5 + 3:  # the third part of the second chunk's block
                raise OSError("the disk is full")
        return real_insert(conn, table, columns, values, count, binary)

    monkeypatch.setattr(postings, "insert_columns", failing_insert)
    with ledger.engine.connect() as conn:
        blocks = query(conn, "SELECT block_count FROM ledger_state")[0][0]
        conn.rollback()
    items = numbered([event(f"e-{n}") for n in range(1, 601)])
    booked = []
    with pytest.raises(OSError, match="the disk is full"):
        for chunk in ingest_stream(ledger, iter(items), chunk_size=200, ahead="none"):
            booked += chunk
    assert len(booked) == 200 and journal_parts == [40] * 8
    with ledger.engine.connect() as conn:  # the first chunk only; nothing of the second
        assert query(conn, "SELECT count(*), max(id) FROM journal")[0] == (200, 200)
        assert query(conn, "SELECT block_count FROM ledger_state")[0][0] == blocks + 1
        conn.rollback()
    again = [outcome.outcome for chunk in ingest_stream(ledger, iter(items), chunk_size=200, ahead="none")
             for outcome in chunk]
    assert again == ["duplicate"] * 200 + ["accepted"] * 400  # re-sent: the first chunk comes back duplicate


def test_rows_given_as_columns_are_inserted_as_the_same_rows_given_one_by_one(ledger):
    from ledger.store import Same, insert_columns, insert_rows

    count = 1_234  # over two SQLite statements of 500 rows, and a shorter last one
    values = [list(range(1, count + 1)), Same(7), Same(None), [f"e-{n}" for n in range(count)],
              [None if n % 3 else n * 10 for n in range(count)]]
    rows = list(zip(range(1, count + 1), repeat(7), repeat(None), values[3], values[4]))
    with ledger.engine.begin() as conn:
        for table in ("by_rows", "by_columns"):
            query(conn, f"CREATE TABLE {table} (id bigint, block bigint, absent bigint, name text, share bigint)")
        insert_rows(conn, "by_rows", ("id", "block", "absent", "name", "share"), rows)
        insert_columns(conn, "by_columns", ("id", "block", "absent", "name", "share"), values, count)
        written = [query(conn, f"SELECT * FROM {table} ORDER BY id") for table in ("by_rows", "by_columns")]
        for table in ("by_rows", "by_columns"):
            query(conn, f"DROP TABLE {table}")
    assert [tuple(row) for row in written[0]] == [tuple(row) for row in written[1]] == rows


def test_a_writer_abandoned_by_a_failing_caller_runs_nothing_more_and_stops_before_it_returns():
    import threading

    from ledger.postings import BlockWriter

    writer = BlockWriter()
    started, release, ran = threading.Event(), threading.Event(), []
    writer.submit(lambda: (started.set(), release.wait(), ran.append("first")))
    writer.submit(lambda: ran.append("second"))
    assert started.wait(10)
    threading.Timer(0.05, release.set).start()  # the running insert finishes after the caller gave up
    writer.abandon()
    assert ran == ["first"] and writer._thread is None  # the second was skipped; the thread has ended

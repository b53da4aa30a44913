"""Books of the release before revision 0011 (bytes per event) upgrade in place, every figure intact.

The fixtures (tests/upgrade/lean_books.py says how they were made) are books written by the
release at revision 0010: on SQLite with the indexes `journal_booking_month` and
`journal_worker_month (worker_id, booking_month)`, on PostgreSQL with `event_key` holding the
event ids as text and January archived to Parquet. Opening them runs revision 0011; every
statement, settlement, bill, statement of account, credit, per-trip list and `verify` result
must be what that release read, and every event ever booked — archived month included — must
still come back `duplicate` (or `duplicate_conflict`) when it is sent again.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ledger.archive import archived_months, restore_month
from ledger.books import Ledger
from ledger.ingest import MALFORMED, ingest_batch
from ledger.store import query
from ledger.verify import verify
from simulations.synthetic_events import generate_events
from tests.upgrade.books import FIGURES_MOMENT, SECRET, _Clock
from tests.upgrade.fixture_books import restored_books
from tests.upgrade.lean_books import BIG_EARNER, SMALL_EARNER, _extra, figures

HERE = Path(__file__).parent
#: Where lean_books.py archived January when the PostgreSQL fixture was made.
ARCHIVED_FROM = "/tmp/fx/archive/journal_202601.parquet"


def expected(store: str) -> dict:
    name = "release-0010.figures.json.gz" if store == "sqlite" else "release-0010.pg-figures.json.gz"
    return json.loads(gzip.decompress((HERE / name).read_bytes()))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_books(request, tmp_path):
    """(store, URL) of books at revision 0010 as that release left them (PostgreSQL: January archived)."""
    archived = tmp_path / "archive" / "journal_202601.parquet"
    archived.parent.mkdir()
    archived.write_bytes(gzip.decompress((HERE / "release-0010.journal_202601.parquet.gz").read_bytes()))
    for url in restored_books(request.param, tmp_path, "release-0010", "ansinh_fixture_0010a",
                              replace={ARCHIVED_FROM: str(archived)}):
        yield request.param, url


def opened(url: str) -> Ledger:
    return Ledger.open(url, clock=_Clock(FIGURES_MOMENT), secret=SECRET)


def rows(ledger: Ledger, sql: str, params=()) -> list[tuple]:
    with ledger.engine.connect() as conn:
        found = query(conn, sql, params)
        conn.rollback()
    return found


def march_of(ledger: Ledger, national_id: str) -> dict:
    from ledger.trips import all_worker_events, events_totals

    return events_totals(all_worker_events(ledger, national_id, "2026-03"))


def outcomes(ledger: Ledger, items: list) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, list(enumerate(items, 1)))]


def test_books_of_release_0010_upgrade_with_every_figure_unchanged(old_books):
    store, url = old_books
    ledger = opened(url)
    try:
        assert rows(ledger, "SELECT version_num FROM alembic_version") == [("0011",)]
        if store == "postgresql":  # January was archived by the old release: verify reads it from its file
            with ledger.engine.connect() as conn:
                assert list(archived_months(conn)) == [202601]
                conn.rollback()
            found = verify(ledger)
            assert [(check.name, check.problem) for check in found if check.problem] == []
            assert found[-1].name == "archived_months"
            restore_month(ledger, "2026-01")
        assert figures(ledger) == expected(store)
        if store == "sqlite":
            indexes = {name: [column for *_, column in rows(ledger, f"PRAGMA index_info({name})")]
                       for (name,) in rows(ledger, "SELECT name FROM sqlite_master WHERE type = 'index' "
                                                   "AND tbl_name = 'journal'")}
            assert indexes == {"sqlite_autoindex_journal_1": ["platform_id", "event_id"],
                               "journal_original": ["original_entry_id"],
                               "journal_worker_month": ["booking_month", "worker_id"]}
        else:
            # every booked event's key is the digest of its own (platform, event id), pointing at it
            events = rows(ledger, "SELECT count(*) FROM journal WHERE event_id IS NOT NULL")[0][0]
            assert rows(ledger, "SELECT count(*) FROM event_key")[0][0] == events == 913
            assert rows(ledger, "SELECT count(*) FROM journal j JOIN event_key e ON e.key = "
                                "ansinh_event_key(j.platform_id, j.event_id) AND e.entry_id = j.id "
                                "AND e.booking_month = j.booking_month")[0][0] == events
            assert rows(ledger, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                                "'event_key'::regclass AND attnum > 0 ORDER BY attnum") == \
                [("uuid",), ("bigint",), ("integer",)]
            # months that hold rows keep the order they were written in; April, created ahead by the
            # close of February and still empty, was made again widest column first
            first = {table: rows(ledger, "SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass "
                                         "AND attnum = 3", (table,))[0][0]
                     for table in ("journal_202601", "journal_202602", "journal_202603", "journal_202604")}
            assert first == {"journal_202601": "entry_type", "journal_202602": "entry_type",
                             "journal_202603": "entry_type", "journal_202604": "amount_vnd"}
    finally:
        ledger.close()


def test_every_event_of_the_old_books_sent_again_is_a_duplicate_archived_january_included(old_books):
    store, url = old_books
    ledger = opened(url)
    try:
        entries = rows(ledger, "SELECT count(*) FROM journal")[0][0]
        if store == "postgresql":
            with ledger.engine.connect() as conn:
                assert list(archived_months(conn)) == [202601]  # found through event_key and the file
                conn.rollback()
        for seed, month in ((11, "2026-01"), (12, "2026-02"), (13, "2026-03")):
            again = [MALFORMED if type(item) is str else item
                     for item in generate_events(seed=seed, month=month, workers=60, events=700)]
            assert "accepted" not in outcomes(ledger, again), month
            extra = _extra(month)
            assert outcomes(ledger, extra) == ["duplicate", "duplicate", "duplicate", "duplicate",
                                               "duplicate_conflict", "duplicate"] + ["duplicate"] * (len(extra) - 6)
            changed = [{**item, "amount": item["amount"] + 1} for item in extra[:2]]
            assert outcomes(ledger, changed) == ["duplicate_conflict"] * 2, month
        assert rows(ledger, "SELECT count(*) FROM journal")[0][0] == entries  # nothing booked twice
    finally:
        ledger.close()


def test_upgraded_books_book_new_events_and_refunds_of_old_ones_and_still_verify(old_books):
    store, url = old_books
    ledger = opened(url)
    try:
        before = march_of(ledger, SMALL_EARNER)
        march = {"platform": "grab", "kind": "ride", "worker_id": SMALL_EARNER,
                 "occurred_at": "2026-03-20T09:00:00+07:00"}
        april = {**march, "event_id": "after-0011-april", "occurred_at": "2026-04-02T09:00:00+07:00",
                 "amount": 77_000}
        assert outcomes(ledger, [
            {**march, "event_id": "after-0011-1", "amount": 200_000}, april,
            {**march, "event_id": "after-0011-r", "action": "refund", "original_event_id": "Chuyen:di.202603_1-A",
             "amount": 30_000},  # a refund of a row written with zeros for its shares with no leg
            {**march, "event_id": "after-0011-big", "worker_id": BIG_EARNER, "amount": 1_000_000},
        ]) == ["accepted"] * 4
        assert outcomes(ledger, [april, {**april, "amount": 77_001}]) == ["duplicate", "duplicate_conflict"]
        shares = "si_worker_vnd, si_platform_vnd, oa_worker_vnd, oa_platform_vnd, ui_worker_vnd, ui_platform_vnd"
        new = rows(ledger, f"SELECT {shares} FROM journal WHERE event_id IN ('after-0011-1', 'after-0011-r', "
                           "'after-0011-big')")
        old = rows(ledger, f"SELECT {shares} FROM journal WHERE event_id = 'Chuyen:di.202603_1-A'")
        assert all(0 not in row and None in row for row in new) and 0 in old[0] and None not in old[0]
        assert [(check.name, check.problem) for check in verify(ledger) if check.problem] == []
        after = march_of(ledger, SMALL_EARNER)
        assert (after["count"], after["amount_vnd"]) == (before["count"] + 2, before["amount_vnd"] + 200_000 - 30_000)
        # the refund reverses a quarter of each share of its original (30,000 of 120,000)
        refunded = rows(ledger, f"SELECT {shares} FROM journal WHERE event_id = 'after-0011-r'")[0]
        assert [share or 0 for share in refunded] == [-share // 4 for share in old[0]], (refunded, old[0])
    finally:
        ledger.close()


def test_a_month_of_the_upgraded_books_is_listed_by_one_seek(old_books):
    store, url = old_books
    ledger = opened(url)
    try:
        sql = ("SELECT id FROM journal WHERE worker_id = 1 AND booking_month = 202603 AND id > 3 "
               "AND entry_type IN (1, 2) ORDER BY id LIMIT 51")
        if store == "sqlite":
            plan = " | ".join(row[-1] for row in rows(ledger, "EXPLAIN QUERY PLAN " + sql))
            assert plan == "SEARCH journal USING INDEX journal_worker_month (booking_month=? AND worker_id=? AND rowid>?)"
        else:
            with ledger.engine.connect() as conn:
                query(conn, "SET enable_seqscan = off")
                plan = " | ".join(row[0] for row in query(conn, "EXPLAIN " + sql))
                conn.rollback()
            assert "Index Scan using journal_202603_worker_id_booking_month_id_idx" in plan and "Sort" not in plan
    finally:
        ledger.close()


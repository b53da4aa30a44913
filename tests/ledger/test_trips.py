"""The per-trip record (ledger/trips.py): a worker's booked events of a month, page by page, on both stores."""
from __future__ import annotations

import base64

import pytest

from ledger.archive import archive_month
from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.reports import statement
from ledger.store import query
from ledger.trips import (
    EVENTS_PAGE_MAX,
    BadCursor,
    EventsArchived,
    all_worker_events,
    encode_cursor,
    events_totals,
    worker_events,
)
from tests.ledger.factories import WORKER_A, WORKER_B, event, numbered, refund

POSTGRES_ONLY = pytest.mark.parametrize("database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                        indirect=True)


def book(ledger, *items) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, numbered(list(items)))]


def a_month_of_work(ledger) -> None:
    """Worker A in February 2026: rides and deliveries on two platforms, orders, a partial refund;
    worker B beside them (never listed for A)."""
    items = []
    for day in range(1, 13):
        items.append(event(f"g-{day}", occurred_at=f"2026-02-{day:02d}T08:15:00+07:00", amount=40_000 + 1_337 * day))
        items.append(event(f"b-{day}", platform="be", kind="delivery", amount=25_500 + day,
                           occurred_at=f"2026-02-{day:02d}T19:40:00+07:00"))
        items.append(event(f"other-{day}", worker_id=WORKER_B, occurred_at=f"2026-02-{day:02d}T10:00:00+07:00"))
    items.append(event("s-1", platform="shopee", kind="order", amount=1_234_567,
                       occurred_at="2026-02-14T12:00:00+07:00"))
    assert set(book(ledger, *items)) == {"accepted"}
    assert book(ledger, refund("g-3r", "g-3", 12_345, occurred_at="2026-02-15T09:00:00+07:00")) == ["accepted"]


def test_the_listed_events_of_a_month_sum_to_the_statements_worker_and_platform_figures_of_each_scheme(ledger):
    a_month_of_work(ledger)
    items = list(all_worker_events(ledger, WORKER_A, "2026-02"))
    assert len(items) == 12 + 12 + 1 + 1
    assert not any(item["event_id"].startswith("other-") for item in items)
    report = statement(ledger, WORKER_A, "2026-02")
    totals = events_totals(items)
    for scheme, line in report["schemes"].items():
        assert totals["shares"][scheme] == {"worker": line["worker"], "platform": line["platform"]}, scheme
    # ... and per platform, as the statement breaks them down
    for platform, by_scheme in report["platforms"].items():
        mine = events_totals(item for item in items if item["platform"] == platform)
        assert mine["shares"] == by_scheme, platform
    assert totals["total_vnd"] == sum(line["worker"] + line["platform"] for line in report["schemes"].values())
    ride = next(item for item in items if item["event_id"] == "g-1")
    # 41,337 ₫ at the default ride rates: si worker 1 %, oa platform 0.5 %, ui worker 0.5 % (RULES.md §4)
    assert (ride["platform"], ride["type"], ride["kind"], ride["amount_vnd"]) == ("grab", "event", "ride", 41_337)
    assert ride["shares"] == {"si": {"worker": 413, "platform": 0}, "oa": {"worker": 0, "platform": 207},
                              "ui": {"worker": 207, "platform": 0}}
    assert ride["total_vnd"] == 827 and ride["original"] is None and ride["late"] is False
    assert totals["amount_vnd"] == sum(40_000 + 1_337 * d + 25_500 + d for d in range(1, 13)) + 1_234_567 - 12_345


def test_events_are_listed_in_the_order_they_were_booked_with_vietnam_local_time(ledger):
    # 20:00 UTC on 31 January is 03:00 on 1 February in Vietnam (RULES.md §3): booked in February.
    assert book(ledger, event("late-night", occurred_at="2026-01-31T20:00:00Z"),
                event("morning", occurred_at="2026-02-01T01:30:00.250Z")) == ["accepted", "accepted"]
    items = list(all_worker_events(ledger, WORKER_A, "2026-02"))
    assert [(item["event_id"], item["occurred_at"], item["local_time"], item["month"], item["occurred_month"])
            for item in items] == [
        ("late-night", "2026-01-31T20:00:00.000000Z", "2026-02-01 03:00:00", "2026-02", "2026-02"),
        ("morning", "2026-02-01T01:30:00.250000Z", "2026-02-01 08:30:00", "2026-02", "2026-02")]
    assert list(all_worker_events(ledger, WORKER_A, "2026-01")) == []


def test_a_refund_names_its_original_and_the_month_the_original_was_booked_in(ledger):
    assert book(ledger, event("ride-1", amount=200_000, occurred_at="2026-02-20T09:00:00+07:00")) == ["accepted"]
    close_month(ledger, "2026-02")
    assert book(ledger, refund("ride-1r", "ride-1", 50_000, occurred_at="2026-03-02T09:00:00+07:00")) == ["accepted"]
    (item,) = all_worker_events(ledger, WORKER_A, "2026-03")
    assert (item["event_id"], item["type"], item["kind"]) == ("ride-1r", "refund", "ride")
    assert item["original"] == {"event_id": "ride-1", "month": "2026-02"}
    # a quarter of each share of 200,000 ₫ comes back: the refund's figures are negative
    assert item["amount_vnd"] == -50_000
    assert item["shares"] == {"si": {"worker": -500, "platform": 0}, "oa": {"worker": 0, "platform": -250},
                              "ui": {"worker": -250, "platform": 0}}
    march = statement(ledger, WORKER_A, "2026-03")["schemes"]
    assert {scheme: line["worker"] for scheme, line in march.items()} == {"si": -500, "oa": 0, "ui": -250}


def test_an_event_booked_after_its_month_closed_carries_the_month_it_occurred_in(ledger):
    assert book(ledger, event("on-time", occurred_at="2026-02-10T09:00:00+07:00")) == ["accepted"]
    close_month(ledger, "2026-02")
    # 27 February 20:00 UTC is 28 February 03:00 in Vietnam: February, closed, so booked in March.
    assert book(ledger, event("late", occurred_at="2026-02-27T20:00:00Z"),
                event("march", occurred_at="2026-03-05T09:00:00+07:00")) == ["accepted", "accepted"]
    items = {item["event_id"]: item for item in all_worker_events(ledger, WORKER_A, "2026-03")}
    late = items["late"]
    assert (late["late"], late["occurred_month"], late["month"]) == (True, "2026-02", "2026-03")
    assert items["late"]["local_time"] == "2026-02-28 03:00:00"
    assert (items["march"]["late"], items["march"]["occurred_month"]) == (False, "2026-03")
    assert [item["event_id"] for item in all_worker_events(ledger, WORKER_A, "2026-02")] == ["on-time"]


def test_pages_chained_by_their_cursors_return_every_event_once_in_order_and_back(ledger):
    a_month_of_work(ledger)
    everything = [item["event_id"] for item in all_worker_events(ledger, WORKER_A, "2026-02")]
    pages, cursor = [], None
    while True:
        page = worker_events(ledger, WORKER_A, "2026-02", cursor=cursor, limit=7)
        pages.append(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [len(page.items) for page in pages] == [7, 7, 7, 5]
    assert [item["event_id"] for page in pages for item in page.items] == everything
    assert pages[0].prev_cursor is None and all(page.prev_cursor for page in pages[1:])
    # backwards from the last page, by prev_cursor: the same events, each once
    back, page = [], pages[-1]
    while page.prev_cursor is not None:
        page = worker_events(ledger, WORKER_A, "2026-02", cursor=page.prev_cursor, limit=7)
        back = [item["event_id"] for item in page.items] + back
        assert page.next_cursor is not None
    assert back + [item["event_id"] for item in pages[-1].items] == everything


def test_an_event_booked_while_a_worker_pages_shifts_no_page_and_comes_last(ledger):
    a_month_of_work(ledger)
    first = worker_events(ledger, WORKER_A, "2026-02", limit=10)
    assert book(ledger, event("booked-meanwhile", occurred_at="2026-02-01T06:00:00+07:00")) == ["accepted"]
    seen, cursor = [item["event_id"] for item in first.items], first.next_cursor
    while cursor is not None:
        page = worker_events(ledger, WORKER_A, "2026-02", cursor=cursor, limit=10)
        seen += [item["event_id"] for item in page.items]
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 27 and seen[-1] == "booked-meanwhile"


def test_a_cursor_that_is_not_one_of_this_list_is_refused(ledger):
    a_month_of_work(ledger)
    good = worker_events(ledger, WORKER_A, "2026-02", limit=5).next_cursor
    decoded = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)).decode()
    forged_month = base64.urlsafe_b64encode(decoded.replace("202602", "202603").encode()).decode().rstrip("=")
    for bad in ("garbage", "", good + "=", good[:-1], "é" * 8, "A" * 65, forged_month,
                base64.urlsafe_b64encode(b"e1.a.202602.-5").decode(), encode_cursor(202603, 5)):
        with pytest.raises(BadCursor, match="not one this list gave for this month"):
            worker_events(ledger, WORKER_A, "2026-02", cursor=bad)
    assert worker_events(ledger, WORKER_A, "2026-02", cursor=good, limit=5).items


def test_a_worker_the_books_do_not_know_has_no_events_and_a_page_is_at_most_the_maximum(ledger):
    many = [event(f"e-{n}", occurred_at="2026-02-10T09:00:00+07:00") for n in range(EVENTS_PAGE_MAX + 3)]
    assert book(ledger, *many) == ["accepted"] * (EVENTS_PAGE_MAX + 3)
    page = worker_events(ledger, WORKER_A, "2026-02", limit=10_000)
    assert len(page.items) == EVENTS_PAGE_MAX and page.next_cursor is not None
    unknown = worker_events(ledger, WORKER_B, "2026-02")
    assert (unknown.items, unknown.next_cursor, unknown.prev_cursor) == ([], None, None)
    with pytest.raises(ValueError, match="not a month"):
        worker_events(ledger, WORKER_A, "2026-13")


def test_a_page_is_read_by_a_seek_of_the_worker_month_index(ledger):
    """What keeps a page fast at 10M events (benchmarks/trips.py): no scan of the month, no sort."""
    a_month_of_work(ledger)
    sql = ("SELECT id FROM journal WHERE worker_id = 1 AND booking_month = 202602 AND id > 3 "
           "AND entry_type IN (1, 2) ORDER BY id LIMIT 51")
    with ledger.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " | ".join(row[-1] for row in query(conn, "EXPLAIN QUERY PLAN " + sql))
            # revision 0011: (booking_month, worker_id, rowid), the books' one month index
            assert "USING INDEX journal_worker_month (booking_month=? AND worker_id=? AND rowid>?)" in plan, plan
            assert "TEMP B-TREE" not in plan
        else:
            query(conn, "SET enable_seqscan = off")  # the plan with the index must exist; no stats here
            plan = " | ".join(row[0] for row in query(conn, "EXPLAIN " + sql))
            assert "Index Scan using journal_202602_worker_id_booking_month_id_idx" in plan, plan
            assert "Sort" not in plan
        conn.rollback()


def test_a_month_is_read_in_id_order_from_its_own_rows_and_sqlite_keeps_one_month_index(ledger):
    """The settlement's legs digest reads a month in id order: on SQLite the rowid range between
    the month's first and last entry (both found in journal_worker_month), with no sort; on
    PostgreSQL the month's partition only. SQLite books keep one index on the month (revision 0011)."""
    from ledger.store import month_rows

    a_month_of_work(ledger)
    # a March entry between two of February's: inside February's id range, not one of its rows
    assert book(ledger, event("mar-1", occurred_at="2026-03-02T08:00:00+07:00"),
                event("feb-late", occurred_at="2026-02-27T08:00:00+07:00")) == ["accepted", "accepted"]
    with ledger.engine.connect() as conn:
        rows_of_month, params = month_rows(conn, 202602)
        sql = f"SELECT id FROM {rows_of_month} ORDER BY id"
        listed = [row[0] for row in query(conn, sql, params)]
        assert listed == [row[0] for row in query(conn, "SELECT id FROM journal WHERE booking_month = 202602 "
                                                        "ORDER BY id")] and len(listed) == 12 * 3 + 1 + 1 + 1
        march = query(conn, "SELECT id FROM journal WHERE booking_month = 202603")[0][0]
        assert listed[0] < march < listed[-1]
        assert query(conn, sql, month_rows(conn, 202607)[1]) == []  # a month with no entries
        if conn.dialect.name == "sqlite":
            plan = " | ".join(row[-1] for row in query(conn, "EXPLAIN QUERY PLAN " + sql, params))
            assert plan == "SEARCH journal USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", plan
            bounds = " | ".join(row[-1] for row in query(
                conn, "EXPLAIN QUERY PLAN SELECT min(id), max(id) FROM journal WHERE booking_month = ?", (202602,)))
            assert bounds == "SEARCH journal USING COVERING INDEX journal_worker_month (booking_month=?)", bounds
            indexes = [name for (name,) in query(conn, "SELECT name FROM sqlite_master WHERE type = 'index' "
                                                       "AND tbl_name = 'journal' ORDER BY name")]
            assert indexes == ["journal_original", "journal_worker_month", "sqlite_autoindex_journal_1"]
        else:
            plan = " | ".join(row[0] for row in query(conn, "EXPLAIN " + sql, params))
            assert "journal_202602" in plan and "journal_202603" not in plan, plan
        conn.rollback()


@POSTGRES_ONLY
def test_an_archived_month_is_refused_rather_than_listed_empty_and_a_later_refund_still_names_its_original(
        ledger, tmp_path):
    assert book(ledger, event("feb-1", amount=100_000, occurred_at="2026-02-04T09:00:00+07:00")) == ["accepted"]
    close_month(ledger, "2026-02")
    archive_month(ledger, "2026-02", tmp_path)
    with pytest.raises(EventsArchived, match="2026-02 is archived .*ansinh archive 2026-02 --restore"):
        worker_events(ledger, WORKER_A, "2026-02")
    with pytest.raises(EventsArchived):
        list(all_worker_events(ledger, WORKER_A, "2026-02"))
    assert book(ledger, refund("feb-1r", "feb-1", 40_000, occurred_at="2026-03-04T09:00:00+07:00")) == ["accepted"]
    (item,) = worker_events(ledger, WORKER_A, "2026-03").items
    assert item["original"] == {"event_id": "feb-1", "month": "2026-02"}

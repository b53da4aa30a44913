"""The per-trip record: a worker's booked events of one month, page by page (issue 16, item 3).

Every event and refund booked for the worker in the month, oldest entry first: platform,
event id, kind, the moment it happened (UTC and Vietnam-local, RULES.md §3), its amount
and each of its six shares as the worker's statement counts them (a refund's are
negative), the original a refund reverses (its event id and booking month), and the
month it occurred in when that is not the month it was booked in (a late booking).

Pages are keyset pages on `(booking_month, id)`: a cursor names the month, an entry id and a
direction — the page after the last entry of the page before (`next_cursor`), or the page
before the first entry of the page after (`prev_cursor`) — and the page is `id > that`
(`id < that`, read backwards) within the month: one index seek (`journal_worker_month`,
revision 0010), never an OFFSET, so a deep page costs what the first does and an event booked
meanwhile never shifts a page. Cursors are opaque text to callers (`encode_cursor`); one of
another month, or that is not one, is `BadCursor`.

Summed over a month, the items' shares are the statement's `worker` and `platform` figures
of each scheme (the statement reads the aggregates; `ansinh verify` proves both equal the
rows). The state's subsidy is not an event and is not listed.

A month archived to Parquet (PostgreSQL, `ledger.archive`) is refused with
`EventsArchived`, never listed as empty; a refund whose original was archived still names it
(read back from the archive file).
"""
from __future__ import annotations

import base64
import binascii
import re
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from sqlalchemy import Connection, Engine

from ledger.accounts import EntryType
from ledger.books import Ledger
from ledger.events import VIETNAM_TZ, month_text, parse_month
from ledger.postings import occurred_text
from ledger.layout import SHARE_COLUMNS
from ledger.store import fetch_in, query
from rules import KINDS, PARTIES, SCHEMES

EVENTS_PAGE_DEFAULT = 50
EVENTS_PAGE_MAX = 200  # a larger limit is cut to this
_CURSOR_TEXT = re.compile(r"e1\.([ab])\.([0-9]{6})\.([0-9]{1,19})", re.ASCII)
_CURSOR_LENGTH_MAX = 64
_ID_MAX = 2 ** 63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TYPES = f"{int(EntryType.event)}, {int(EntryType.refund)}"
_COLUMNS = ("id", "booking_month", "entry_type", "platform_id", "event_id", "kind", "amount_vnd", "occurred_us",
            "occurred_at", "occurred_month", "original_entry_id", *SHARE_COLUMNS)
_SHARE_PLACES = tuple((scheme, party) for scheme in SCHEMES for party in PARTIES)  # SHARE_COLUMNS order


class BadCursor(ValueError):
    """The cursor is not one this list gave for this month."""


class EventsArchived(ValueError):
    """The month's entries are archived to Parquet: restore the month to list them."""

    def __init__(self, month: int, file: str) -> None:
        super().__init__(f"{month_text(month)} is archived ({file}): restore it with "
                         f"`ansinh archive {month_text(month)} --restore` to list its events")
        self.month = month_text(month)


@dataclass(frozen=True)
class EventsPage:
    month: str
    items: list[dict[str, Any]]
    next_cursor: str | None  # None on the last page
    prev_cursor: str | None  # None on the first page


_AFTER, _BEFORE = "a", "b"


def encode_cursor(month: int, entry_id: int, direction: str = _AFTER) -> str:
    """The opaque cursor of the page after (`a`) or before (`b`) entry `entry_id` of `month`
    (URL-safe base64, no padding)."""
    return base64.urlsafe_b64encode(f"e1.{direction}.{month}.{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, month: int) -> tuple[str, int]:
    """(direction, entry id) of a cursor of `month`; `BadCursor` for anything else."""
    refusal = BadCursor("the cursor is not one this list gave for this month: start again without a cursor")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _CURSOR_LENGTH_MAX or not cursor.isascii():
        raise refusal
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise refusal from None
    found = _CURSOR_TEXT.fullmatch(text)
    if found is None or int(found[2]) != month or int(found[3]) > _ID_MAX \
            or encode_cursor(month, int(found[3]), found[1]) != cursor:
        raise refusal
    return found[1], int(found[3])


def worker_events(ledger: Ledger, national_id: str, month_label: str, *, cursor: str | None = None,
                  limit: int = EVENTS_PAGE_DEFAULT) -> EventsPage:
    """One page of the worker's booked events of the month, in entry order; empty for a worker
    the books do not know. `limit` is cut to 1…EVENTS_PAGE_MAX. A page's `next_cursor` and
    `prev_cursor` give the pages after and before it (None when there is none)."""
    month = parse_month(month_label)
    direction, boundary = decode_cursor(cursor, month) if cursor is not None else (_AFTER, 0)
    limit = max(1, min(int(limit), EVENTS_PAGE_MAX))
    with ledger.engine.connect() as conn:
        try:
            worker_id = ledger.worker_id(conn, national_id)
            _refuse_archived(conn, month)
            if worker_id is None:
                return EventsPage(month_text(month), [], None, None)
            # A cursor's entry is a listed row of this month, and the journal is append-only: a
            # page reached by a cursor always has a page the other way (no query needed to say so).
            if direction == _AFTER:
                rows = _page_rows(conn, worker_id, month, boundary, limit + 1)
                more_after = len(rows) > limit
                rows = rows[:limit]
                more_before = bool(rows) and boundary > 0
            else:
                rows = _page_rows(conn, worker_id, month, boundary, limit + 1, backward=True)
                more_before = len(rows) > limit
                rows = rows[:limit][::-1]
                more_after = bool(rows)
            items = _items(conn, rows)
        finally:
            conn.rollback()
    return EventsPage(month_text(month), items,
                      encode_cursor(month, rows[-1][0], _AFTER) if more_after else None,
                      encode_cursor(month, rows[0][0], _BEFORE) if more_before else None)


def all_worker_events(ledger: Ledger, national_id: str, month_label: str,
                      page: int = EVENTS_PAGE_MAX) -> Iterator[dict[str, Any]]:
    """Every booked event of the worker's month (the CLI and the CSV download), page by page
    inside one read transaction: one state of the books however long the month."""
    from ledger.store import consistent_snapshot

    month = parse_month(month_label)
    with consistent_snapshot(ledger) as conn:
        worker_id = ledger.worker_id(conn, national_id)
        _refuse_archived(conn, month)
        if worker_id is None:
            return
        after = 0
        while rows := _page_rows(conn, worker_id, month, after, page):
            yield from _items(conn, rows)
            after = rows[-1][0]


def _refuse_archived(conn: Connection, month: int) -> None:
    from ledger.archive import archived_months

    archived = archived_months(conn)
    if month in archived:
        raise EventsArchived(month, archived[month][0])


def _page_rows(conn: Connection, worker_id: int, month: int, boundary: int, count: int,
               backward: bool = False) -> list[tuple]:
    """`count` rows after `boundary` in id order (before it, latest first, when `backward`).

    One seek of journal_worker_month (worker, month, id) on both stores, pruned to the month's
    partition on PostgreSQL. The entry types are checked on the rows read (a worker's subsidy
    entries, one a month at most, are the only others in the range)."""
    where = "id < ?" if backward else "id > ?"
    order = "id DESC" if backward else "id"
    return query(conn, f"SELECT {', '.join(_COLUMNS)} FROM journal WHERE worker_id = ? AND booking_month = ? "
                       f"AND {where} AND entry_type IN ({_TYPES}) ORDER BY {order} LIMIT {int(count)}",
                 (worker_id, month, boundary))



def _items(conn: Connection, rows: list[tuple]) -> list[dict[str, Any]]:
    if not rows:
        return []
    platforms = _platform_names(conn, {row[3] for row in rows})
    originals = _originals(conn, {row[10] for row in rows if row[10] is not None})
    return [_item(row, platforms, originals) for row in rows]


def _platform_names(conn: Connection, platform_ids: set[int]) -> dict[int, str]:
    """Platform names by row id, kept per engine: platform rows are append-only (sealed, revision
    0006), so a name once read never changes; only ids not seen yet are read."""
    known = _PLATFORM_NAMES.setdefault(conn.engine, {})
    missing = platform_ids - known.keys()
    if missing:
        known.update(fetch_in(conn, "SELECT id, name FROM platform WHERE id IN ({marks})", missing))
    return known


_PLATFORM_NAMES: "weakref.WeakKeyDictionary[Engine, dict[int, str]]" = weakref.WeakKeyDictionary()


def _originals(conn: Connection, entry_ids: set[int]) -> dict[int, tuple[str, int]]:
    """entry id → (event id, booking month) of the originals the page's refunds reverse."""
    if not entry_ids:
        return {}
    found = {entry_id: (event_id, booking_month) for entry_id, event_id, booking_month in
             fetch_in(conn, "SELECT id, event_id, booking_month FROM journal WHERE id IN ({marks})", entry_ids)}
    missing = entry_ids - found.keys()
    if missing:  # an original of a month archived to Parquet (partitioned books only)
        from ledger.archive import archived_rows

        found.update({entry_id: (event_id, booking_month) for entry_id, event_id, booking_month in
                      archived_rows(conn, "id", missing, ["id", "event_id", "booking_month"])})
    return found


def _item(row: tuple, platforms: dict[int, str], originals: dict[int, tuple[str, int]]) -> dict[str, Any]:
    (_entry_id, booking_month, entry_type, platform_id, event_id, kind, amount_vnd, micros, occurred_at,
     occurred_month, original_entry_id, *columns) = row
    # Rows written before revision 0007 keep their occurred_at text; later ones the microseconds.
    utc_text = occurred_text(micros) if micros is not None else occurred_at
    moment = _EPOCH + timedelta(microseconds=micros) if micros is not None else \
        datetime.fromisoformat(occurred_at[:-1]).replace(tzinfo=timezone.utc)
    local = moment.astimezone(VIETNAM_TZ).replace(microsecond=0, tzinfo=None)
    refund = entry_type == EntryType.refund
    shares = {scheme: {party: 0 for party in PARTIES} for scheme in SCHEMES}
    for (scheme, party), column in zip(_SHARE_PLACES, columns):
        shares[scheme][party] = -int(column or 0)  # a credit to the worker's account is a contribution
    original = None
    if refund:
        original_event_id, original_month = originals.get(original_entry_id, (None, None))
        original = {"event_id": original_event_id,
                    "month": month_text(original_month) if original_month is not None else None}
    return {
        "platform": platforms.get(platform_id),
        "event_id": event_id,
        "type": "refund" if refund else "event",
        "kind": KINDS[kind],
        "occurred_at": utc_text,
        "local_time": local.isoformat(sep=" "),
        "month": month_text(booking_month),
        "occurred_month": month_text(occurred_month),
        "late": occurred_month != booking_month,
        "amount_vnd": -int(amount_vnd) if refund else int(amount_vnd),
        "shares": shares,
        "total_vnd": sum(part for by_party in shares.values() for part in by_party.values()),
        "original": original,
    }


def events_totals(items) -> dict[str, Any]:
    """The sums of a list of items: amount and each scheme's worker / platform shares."""
    totals = {"amount_vnd": 0, "shares": {scheme: {party: 0 for party in PARTIES} for scheme in SCHEMES},
              "total_vnd": 0, "count": 0}
    for item in items:
        totals["count"] += 1
        totals["amount_vnd"] += item["amount_vnd"]
        totals["total_vnd"] += item["total_vnd"]
        for scheme, by_party in item["shares"].items():
            for party, amount in by_party.items():
                totals["shares"][scheme][party] += amount
    return totals

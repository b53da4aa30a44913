"""One ingest function for every entry point: a batch of items in, one outcome per item out.

`ingest_batch(ledger, items)` is what the HTTP route and the stream consumer call, and
`ingest_stream` (files, the CLI) books chunk after chunk through the same path. Items are
`(line, parsed_json_or_MALFORMED)` pairs, applied in order:

1. checks 0–8 (`ledger.events.check_events`, the batch as columns), pure, before any lock;
2. under the writer's lock, checks 9–12 against the books and against the items of
   the batch already accepted (so a refund may follow its original in one batch). Plain
   events (completed, key neither in the books nor twice in the batch) are accepted as
   columns; only refunds, duplicates and repeated keys are checked one by one, in input order;
3. shares from the rules (`rules.shares_matrix_vnd`, array form, one call per rules
   version) and refund reversals (`rules.refund_reversals_vnd`), as one (n, 6) matrix;
4. one block written by `ledger.postings.write_compact_block` from those columns (entry
   ids follow input order after the journal's last id, read once under the lock), then commit.

The ledger owns the transaction: `ingest_batch` opens and commits its own, or books inside
the caller's `UnitOfWork` (`ledger.unit_of_work()`, which commits and only then caches the new
ids), so the stream consumer books events, its position and the outcomes atomically. A batch
larger than `BATCH_SIZE_MAX` is refused whole (`BatchTooLarge`) before anything is checked.

A batch is never all-or-nothing for the caller: each item has its own outcome. It is
all-or-nothing for the database: a crash leaves either the whole block or none of
it, and re-sending the batch then gives `duplicate` for what was booked.
"""
from __future__ import annotations

import queue
import threading
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from itertools import islice, repeat
from operator import itemgetter
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ledger.accounts import EntryType
from ledger.books import Ledger, UnitOfWork, iso_utc
from ledger.events import (ACCEPTED, DUPLICATE, KIND_INDEX, Rejection, ValidEvent, check_events, month_text,
                           next_month)
from ledger.postings import CompactEntries, collector_paused, next_entry_id, write_compact_block
from ledger.layout import SHARE_COLUMNS, SHARES_READ
from ledger.archive import fetch_events
from ledger.store import fetch_in, lock_chain_head, query
from rules import event_shares_vnd, refund_reversals_vnd, shares_matrix_vnd

BATCH_SIZE_MAX = 10_000  # events per batch handed to ingest_batch: an HTTP request, a stream batch (INTERFACES.md)
CHUNK_SIZE = 20_000  # events per database transaction when streaming a file
CHUNKS_AHEAD = 1  # chunks checked ahead of the one being written (memory: at most three chunks at once)


class BatchTooLarge(ValueError):
    """A batch over the limit, refused whole before anything is checked or booked.

    The HTTP route answers it with 413; the stream never builds one (it books at most
    `BATCH_SIZE_MAX` messages at a time).
    """

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"at most {limit:,} events per batch, got {count:,}")
        self.count, self.limit = count, limit


class _Malformed:
    """Placeholder for an input line that is not JSON at all."""

    def __repr__(self) -> str:
        return "MALFORMED"


MALFORMED = _Malformed()
_NO_ENTRIES = CompactEntries([], [], [], [], [], [], [], np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=np.int64),
                             [], [], np.zeros((0, len(SHARE_COLUMNS)), dtype=np.int64))


class Outcome(NamedTuple):
    """One item's outcome. An accepted event says where it was booked: `booked_month` (YYYY-MM),
    and `occurred_month` only when that differs (a late booking, RULES.md §3); both are None
    for every other outcome. Codes only: the sentences are the API's (`api.reasons`)."""

    line: int
    platform: str | None
    event_id: str | None
    outcome: str
    booked_month: str | None = None
    occurred_month: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "platform": self.platform, "event_id": self.event_id, "outcome": self.outcome,
                "booked_month": self.booked_month, "occurred_month": self.occurred_month}


@dataclass(slots=True)
class _Booked:
    """What the stateful checks need to know of an accepted event (from the books or this batch)."""

    entry_id: int | None  # None for an event of this batch until the batch's entry ids are known
    entry_type: int
    payload_hash: bytes
    worker_id: int
    kind: int
    amount_vnd: int
    batch_index: int | None = None  # position among this batch's valid events
    shares_vnd: tuple[int, ...] | None = None  # known for originals that are refunded
    refunded_vnd: int = 0
    reversed_vnd: list[int] | None = None


def _identity(item: object) -> tuple[str | None, str | None]:
    if type(item) is not dict:
        return None, None
    platform, event_id = item.get("platform"), item.get("event_id")
    return (platform if type(platform) is str else None, event_id if type(event_id) is str else None)


def ingest_batch(ledger: Ledger, items: Sequence[tuple[int, object]], *, work: UnitOfWork | None = None,
                 batch_size_max: int = BATCH_SIZE_MAX) -> list[Outcome]:
    """Book one batch and return one outcome per item, in order.

    Without `work` the batch is its own transaction, committed here. With the caller's
    `work` (`ledger.unit_of_work()`) it is booked inside that transaction and nothing is
    committed: the caller's block commits, then the ledger caches the new ids.
    `batch_size_max` (≤ `BATCH_SIZE_MAX`) lowers the limit for a caller configured so.
    """
    assert 1 <= batch_size_max <= BATCH_SIZE_MAX, f"batch limit {batch_size_max} is not 1 to {BATCH_SIZE_MAX:,}"
    if len(items) > batch_size_max:
        raise BatchTooLarge(len(items), batch_size_max)
    with collector_paused():
        checked = check_events([item for _line, item in items], ledger.pack.first_effective_from)
        return _book_checked(ledger, items, checked, work)


def _book_checked(ledger: Ledger, items, checked, work: UnitOfWork | None) -> list[Outcome]:
    if work is not None:
        return _book(ledger, work.connection, items, checked, work.pending)
    with ledger.unit_of_work() as work:
        return _book(ledger, work.connection, items, checked, work.pending)


def ingest_stream(ledger: Ledger, items: Iterable[tuple[int, object]],
                  chunk_size: int = CHUNK_SIZE, check_ahead: bool = True) -> Iterator[list[Outcome]]:
    """Book an iterable of items chunk by chunk, one transaction each; yields each chunk's outcomes.

    Reading (the items are usually parsed lazily from a file) and checks 0–8 of chunk n+1
    run in a worker thread while chunk n is written: SQLite and psycopg release the GIL
    while the database works. At most `CHUNKS_AHEAD` checked chunks wait, so memory stays
    bounded; an exception on either side ends both, and the chunk being written rolls back.
    The cyclic collector stays paused until the generator finishes or is closed.
    `check_ahead=False` reads and checks in the caller's thread (the same outcomes).
    """
    assert chunk_size >= 1, "a chunk holds at least one item"
    first_day = ledger.pack.first_effective_from
    checked_chunks = _checked_ahead(items, chunk_size, first_day) if check_ahead else \
        ((chunk, check_events([item for _line, item in chunk], first_day)) for chunk in _chunks(items, chunk_size))
    with collector_paused(), closing(checked_chunks) as chunks:
        for chunk, checked in chunks:
            yield _book_checked(ledger, chunk, checked, None)


_END = object()


def _chunks(items: Iterable[tuple[int, object]], chunk_size: int) -> Iterator[list[tuple[int, object]]]:
    items = iter(items)
    while chunk := list(islice(items, chunk_size)):
        yield chunk


def _checked_ahead(items: Iterable[tuple[int, object]], chunk_size: int,
                   first_day: date) -> Iterator[tuple[list, list]]:
    """(chunk, its checks 0–8) in input order, read and checked by a worker thread one chunk ahead."""
    ready: queue.Queue = queue.Queue(maxsize=CHUNKS_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            reading = iter(items)
            while not stop.is_set():  # checked before each chunk is read: a stopped caller reads no more
                chunk = list(islice(reading, chunk_size))
                if not chunk:
                    ready.put(_END)
                    return
                ready.put((chunk, check_events([item for _line, item in chunk], first_day)))
        except BaseException as error:  # handed to the booking side, which raises it
            ready.put(error)

    worker = threading.Thread(target=produce, name="ansinh-ingest-check", daemon=True)
    worker.start()
    try:
        while True:
            got = ready.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked put finish, then the worker sees `stop`
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def _book(ledger: Ledger, conn, items, checked, pending) -> list[Outcome]:
    """Checks 9–12 and the block, for a batch whose checks 0–8 are done (`checked`, one per item).

    Most events are *plain*: a completed event whose (platform, event id) is neither in the
    books nor named twice in the batch. Nothing about them depends on the order of the batch,
    so they are accepted as columns. The others — refunds, keys in the books (duplicates),
    keys named more than once — go through checks 9–12 one by one in input order, exactly as
    if every event were: a refund finds its original among the books, the special events
    accepted before it, and the plain events before it. Entry ids follow input order.
    """
    head = lock_chain_head(conn)
    last_closed = query(conn, "SELECT max(month) FROM month_close")[0][0]
    count = len(items)
    valid_at = [at for at, event in enumerate(checked) if type(event) is ValidEvent]
    valid = [checked[at] for at in valid_at] if len(valid_at) < count else checked
    codes: list[str] = [ACCEPTED] * count
    out_platforms: list = [None] * count
    out_event_ids: list = [None] * count
    if len(valid_at) < count:
        for at in sorted(set(range(count)) - set(valid_at)):
            out_platforms[at], out_event_ids[at] = _identity(items[at][1])
            codes[at] = checked[at].name
    recorded_at = iso_utc(ledger.clock())
    first_id = next_entry_id(conn)
    if not valid:
        write_compact_block(conn, _NO_ENTRIES, recorded_at=recorded_at, head=head, first_entry_id=first_id)
        return _outcomes(items, out_platforms, out_event_ids, codes)
    (platforms, event_ids, kinds, is_refund, national_ids, amounts, _occurred_at, occurred_days, occurred_months,
     original_ids, payload_hashes, occurred_us) = (list(column) for column in zip(*valid))
    if len(valid_at) < count:
        for at, platform, event_id in zip(valid_at, platforms, event_ids):
            out_platforms[at], out_event_ids[at] = platform, event_id
    else:
        out_platforms, out_event_ids = platforms, event_ids
    platform_ids = ledger.platform_ids(conn, set(platforms), pending)
    worker_ids = ledger.worker_ids(conn, national_ids, pending)
    platform_col = list(map(platform_ids.__getitem__, platforms))
    worker_col = list(map(worker_ids.__getitem__, national_ids))
    kind_col = list(map(KIND_INDEX.__getitem__, kinds))
    keys = list(zip(platform_col, event_ids))
    booked = _load_booked(conn, platform_col, event_ids, is_refund, original_ids)
    total = len(valid)

    # Which events need checks 9–12 one by one (see the docstring).
    special = np.fromiter(is_refund, dtype=bool, count=total)
    if booked:
        special |= np.fromiter(map(booked.__contains__, keys), dtype=bool, count=total)
    batch_at = dict(zip(keys, range(total)))
    if len(batch_at) < total:
        repeated = {key for key, times in Counter(keys).items() if times > 1}
        special |= np.fromiter(map(repeated.__contains__, keys), dtype=bool, count=total)
    accepted = np.ones(total, dtype=bool)
    refunds: list[tuple[int, _Booked, tuple[int, ...]]] = []  # (position, original, reversals)
    conflict = Rejection.duplicate_conflict.name
    for at in np.flatnonzero(special).tolist():
        key = keys[at]
        prior = booked.get(key)
        if prior is not None:
            accepted[at] = False
            codes[valid_at[at]] = DUPLICATE if prior.payload_hash == payload_hashes[at] else conflict
            continue
        if not is_refund[at]:
            booked[key] = _Booked(None, EntryType.event, payload_hashes[at], worker_col[at], kind_col[at],
                                  amounts[at], at)
            continue
        original_id = original_ids[at]  # any JSON value: not a string, it names no event
        original = None
        if type(original_id) is str:
            original_key = (platform_col[at], original_id)
            original = booked.get(original_key)
            if original is None:  # a plain event earlier in this batch
                before = batch_at.get(original_key)
                if before is not None and before < at and not special[before]:
                    original = booked[original_key] = _Booked(None, EntryType.event, payload_hashes[before],
                                                              worker_col[before], kind_col[before],
                                                              amounts[before], before)
        code = _refund_rejection(original, worker_col[at], kind_col[at], amounts[at])
        if code is not None:
            accepted[at] = False
            codes[valid_at[at]] = code.name
            continue
        if original.shares_vnd is None:  # an original accepted earlier in this batch
            before = original.batch_index
            original.shares_vnd = event_shares_vnd(kinds[before], amounts[before],
                                                   ledger.version_on(occurred_days[before]))
        reversed_before = original.reversed_vnd or [0] * len(SHARE_COLUMNS)
        reversals = refund_reversals_vnd(original.shares_vnd, original.amount_vnd, original.refunded_vnd,
                                         reversed_before, amounts[at])
        original.refunded_vnd += amounts[at]
        original.reversed_vnd = [done + now for done, now in zip(reversed_before, reversals)]
        booked[key] = _Booked(None, EntryType.refund, payload_hashes[at], worker_col[at], kind_col[at], amounts[at],
                              at)
        refunds.append((at, original, reversals))

    entries = _entry_columns(ledger, conn, pending, accepted, first_id, refunds, last_closed, (
        platform_col, event_ids, payload_hashes, worker_col, kind_col, amounts, occurred_us, occurred_months,
        occurred_days, is_refund))
    write_compact_block(conn, entries, recorded_at=recorded_at, head=head, first_entry_id=first_id)
    booked_months, late_months = _month_columns(count, valid_at, accepted, occurred_months, entries.booking_month)
    return _outcomes(items, out_platforms, out_event_ids, codes, booked_months, late_months)


def _month_columns(count: int, valid_at: list[int], accepted: np.ndarray, occurred_months: list[int],
                   booking_months: np.ndarray) -> tuple[Iterable, Iterable]:
    """Per item: the booked month's text (None unless accepted), and the occurred month's where they differ.

    Columns, not per-event work: a batch spans a few months, so each month's text is made once,
    the common case (every item accepted) is one `map`, and only late bookings are visited one by one.
    """
    booked_ints: list[int] = booking_months.tolist()
    if not booked_ints:
        return repeat(None), repeat(None)
    chosen = None if len(booked_ints) == len(occurred_months) else np.flatnonzero(accepted).tolist()
    occurred_ints = occurred_months if chosen is None else _pick(occurred_months, chosen)
    texts = {month: month_text(month) for month in {*booked_ints, *occurred_ints}}
    if len(booked_ints) == count:  # every item valid and accepted
        positions = None
        booked: list = list(map(texts.__getitem__, booked_ints))
    else:
        positions = valid_at if chosen is None else _pick(valid_at, chosen)
        booked = [None] * count
        for at, month in zip(positions, booked_ints):
            booked[at] = texts[month]
    if booked_ints == occurred_ints:  # no late booking
        return booked, repeat(None)
    late: list = [None] * count
    for row, (booked_month, occurred_month) in enumerate(zip(booked_ints, occurred_ints)):
        if booked_month != occurred_month:
            late[row if positions is None else positions[row]] = texts[occurred_month]
    return booked, late


def _outcomes(items, platforms: list, event_ids: list, codes: list[str], booked_months: Iterable = repeat(None),
              late_months: Iterable = repeat(None)) -> list[Outcome]:
    return list(map(tuple.__new__, repeat(Outcome), zip(map(itemgetter(0), items), platforms, event_ids, codes,
                                                        booked_months, late_months)))


def _entry_columns(ledger: Ledger, conn, pending: dict, accepted: np.ndarray, first_id: int,
                   refunds: list[tuple[int, _Booked, tuple[int, ...]]], last_closed: int | None,
                   columns: tuple) -> CompactEntries:
    """The accepted events and refunds as the block's columns, in input order (entry ids follow it).

    Completed events' shares come from the rules as arrays (`rules.shares_matrix_vnd`), one call
    per rules version; a refund's legs are its reversals (`rules.refund_reversals_vnd`).
    """
    (platform_col, event_ids, payload_hashes, worker_col, kind_col, amounts, occurred_us, occurred_months,
     occurred_days, is_refund) = columns
    total = len(accepted)
    entry_ids = np.cumsum(accepted) + (first_id - 1)  # the entry id of each accepted position
    for _at, original, _reversals in refunds:
        if original.entry_id is None:  # an original of this batch
            original.entry_id = int(entry_ids[original.batch_index])
    refund = np.fromiter(is_refund, dtype=bool, count=total) if refunds else np.zeros(total, dtype=bool)
    completed = accepted & ~refund
    kind_array, amount_array = np.asarray(kind_col, dtype=np.int64), np.asarray(amounts, dtype=np.int64)
    legs = np.zeros((total, len(SHARE_COLUMNS)), dtype=np.int64)
    version_ids = np.zeros(total, dtype=np.int64)
    complete_at = np.flatnonzero(completed)
    if len(complete_at):
        days = occurred_days if len(complete_at) == total else _pick(occurred_days, complete_at.tolist())
        version_of_day = {day: ledger.version_on(day) for day in set(days)}
        versions = None if len(set(version_of_day.values())) == 1 else list(map(version_of_day.__getitem__, days))
        for version in set(version_of_day.values()):
            version_id = ledger.rules_version_id(conn, version, pending)
            rows = complete_at if versions is None else complete_at[
                np.fromiter((chosen is version for chosen in versions), dtype=bool, count=len(versions))]
            legs[rows] = -shares_matrix_vnd(kind_array[rows], amount_array[rows], version)
            version_ids[rows] = version_id
    for at, _original, reversals in refunds:
        legs[at] = reversals
    months = np.asarray(occurred_months, dtype=np.int64)
    booking_months = months if last_closed is None else np.where(months <= last_closed, next_month(last_closed), months)
    chosen = None if accepted.all() else np.flatnonzero(accepted)
    pick = (lambda column: column) if chosen is None else (lambda column: column[chosen])
    listed = (lambda column: column) if chosen is None else (lambda column: _pick(column, chosen.tolist()))
    rules_version_ids: list = pick(version_ids).tolist()
    original_entry_ids: list = [None] * len(rules_version_ids)
    if refunds:
        position = np.cumsum(accepted) - 1  # where an accepted position lands among the entries
        for at, original, _reversals in refunds:
            rules_version_ids[position[at]] = None
            original_entry_ids[position[at]] = original.entry_id
    return CompactEntries(
        entry_type=np.where(pick(refund), int(EntryType.refund), int(EntryType.event)).tolist(),
        platform_id=listed(platform_col), event_id=listed(event_ids), payload_hash=listed(payload_hashes),
        worker_id=listed(worker_col), kind=listed(kind_col), amount_vnd=listed(amounts),
        occurred_us=pick(np.asarray(occurred_us, dtype=np.int64)), occurred_month=listed(occurred_months),
        booking_month=pick(booking_months), rules_version_id=rules_version_ids, original_entry_id=original_entry_ids,
        legs=pick(legs))


def _pick(column: list, rows: list[int]) -> list:
    if not rows:
        return []
    return list(itemgetter(*rows)(column)) if len(rows) > 1 else [column[rows[0]]]


def _refund_rejection(original: _Booked | None, worker_id: int, kind: int, amount_vnd: int) -> Rejection | None:
    if original is None or original.entry_type != EntryType.event:
        return Rejection.unknown_original
    if original.worker_id != worker_id or original.kind != kind:
        return Rejection.refund_mismatch
    if original.refunded_vnd + amount_vnd > original.amount_vnd:
        return Rejection.refund_exceeds_original
    return None


def _load_booked(conn, platform_col: list[int], event_ids: list[str], is_refund: list[bool],
                 original_ids: list) -> dict[tuple[int, str], _Booked]:
    """Accepted events of the books that this batch names (as itself or as an original)."""
    platforms = set(platform_col)
    if len(platforms) == 1:
        wanted: dict[int, set[str]] = {platform_col[0]: set(event_ids)}
    else:
        by_platform: dict[int, list[str]] = {platform_id: [] for platform_id in platforms}
        for platform_id, event_id in zip(platform_col, event_ids):
            by_platform[platform_id].append(event_id)
        wanted = {platform_id: set(ids) for platform_id, ids in by_platform.items()}
    refunded: set[tuple[int, str]] = set()
    if any(is_refund):
        for platform_id, refund, original_id in zip(platform_col, is_refund, original_ids):
            if refund and type(original_id) is str:
                wanted[platform_id].add(original_id)
                refunded.add((platform_id, original_id))
    booked: dict[tuple[int, str], _Booked] = {}
    for platform_id, wanted_ids in wanted.items():
        rows = fetch_events(conn, platform_id, ("id", "entry_type", "payload_hash", "worker_id", "kind", "amount_vnd"),
                            wanted_ids)
        for event_id, entry_id, entry_type, digest, worker_id, kind, amount in rows:
            booked[(platform_id, event_id)] = _Booked(entry_id, entry_type, bytes(digest), worker_id, kind, amount)
    originals = {state.entry_id: state for key, state in booked.items()
                 if key in refunded and state.entry_type == EntryType.event}
    if not originals:
        return booked
    _load_refund_history(conn, originals)
    return booked


def _load_refund_history(conn, originals: dict[int, _Booked]) -> None:
    """Original shares, amount refunded so far and each share reversed so far (RULES.md §5 C and R).

    Two index lookups, no join: the refunds of the originals (journal by original id), each
    with its reversed shares, and the originals' shares (journal by id; the compact layout
    keeps an event's legs in its row).
    """
    for state in originals.values():
        state.reversed_vnd = [0] * 6
    for _refund_id, original_id, amount, *reversed_vnd in fetch_in(
            conn, f"SELECT id, original_entry_id, amount_vnd, {_SHARES_SELECTED} FROM journal "
                  "WHERE original_entry_id IN ({marks})", originals):
        state = originals[original_id]
        state.refunded_vnd += int(amount)
        state.reversed_vnd = [done + int(now) for done, now in zip(state.reversed_vnd, reversed_vnd)]
    for entry_id, *shares in fetch_in(conn, f"SELECT id, {_SHARES_SELECTED} FROM journal WHERE id IN ({{marks}})",
                                      originals):
        originals[entry_id].shares_vnd = tuple(-int(share) for share in shares)
    archived = [entry_id for entry_id, state in originals.items() if state.shares_vnd is None]
    if archived:  # originals in a month archived to Parquet (months archive in order: their refunds too)
        from ledger.archive import archived_rows

        for _refund_id, original_id, amount, *reversed_vnd in archived_rows(
                conn, "original_entry_id", archived, ("id", "original_entry_id", "amount_vnd", *SHARE_COLUMNS)):
            state = originals[original_id]
            state.refunded_vnd += int(amount)
            state.reversed_vnd = [done + int(now or 0) for done, now in zip(state.reversed_vnd, reversed_vnd)]
        for entry_id, *shares in archived_rows(conn, "id", archived, ("id", *SHARE_COLUMNS)):
            originals[entry_id].shares_vnd = tuple(-int(share or 0) for share in shares)  # NULL: no leg (0011)


_SHARES_SELECTED = ", ".join(SHARES_READ)  # a share with no leg is NULL since revision 0011

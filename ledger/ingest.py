"""One ingest function for every entry point: a batch of items in, one outcome per item out.

`ingest_batch(ledger, items)` is what the HTTP route and the stream consumer call, and
`ingest_stream` (files, the CLI) books chunk after chunk through the same path. Items are
`(line, parsed_json_or_MALFORMED)` pairs, applied in order:

1. checks 0–8 (`ledger.events.check_events`, the batch as columns), pure, before any lock;
2. under the writer's lock, checks 9–12 against the books and against the items of
   the batch already accepted (so a refund may follow its original in one batch);
3. shares from the rules (`rules.shares_matrix_vnd`, array form; the completed
   events' entries are built column by column) and refund reversals
   (`rules.refund_reversals_vnd`);
4. one block of entries written by `ledger.postings.write_block` (entry ids follow
   the journal's last id, read once under the lock), then commit.

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
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ledger.accounts import NO_PARTY, NO_SCHEME, PARTY_CODE, SCHEME_CODE, AccountKind, EntryType
from ledger.books import Ledger, UnitOfWork, iso_utc
from ledger.events import ACCEPTED, DUPLICATE, KIND_INDEX, Rejection, ValidEvent, check_events, next_month
from ledger.postings import collector_paused, next_entry_id, write_block
from ledger.schema import SHARE_COLUMNS
from ledger.archive import fetch_events
from ledger.store import fetch_in, lock_chain_head, query
from rules import SHARE_KEYS, event_shares_vnd, refund_reversals_vnd, shares_matrix_vnd

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
SHARE_ACCOUNTS = tuple((SCHEME_CODE[scheme], PARTY_CODE[party]) for scheme, party in SHARE_KEYS)


class Outcome(NamedTuple):
    line: int
    platform: str | None
    event_id: str | None
    outcome: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "platform": self.platform, "event_id": self.event_id, "outcome": self.outcome}


@dataclass(slots=True)
class _Booked:
    """What the stateful checks need to know of an accepted event (from the books or this batch)."""

    entry_id: int
    entry_type: int
    payload_hash: bytes
    worker_id: int
    kind: int
    amount_vnd: int
    batch_index: int | None = None  # position in this batch's completed events
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
    chunk: list[tuple[int, object]] = []
    for pair in items:
        chunk.append(pair)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _checked_ahead(items: Iterable[tuple[int, object]], chunk_size: int,
                   first_day: date) -> Iterator[tuple[list, list]]:
    """(chunk, its checks 0–8) in input order, read and checked by a worker thread one chunk ahead."""
    ready: queue.Queue = queue.Queue(maxsize=CHUNKS_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            chunk: list[tuple[int, object]] = []
            for pair in items:
                if stop.is_set():
                    return
                chunk.append(pair)
                if len(chunk) >= chunk_size:
                    ready.put((chunk, check_events([item for _line, item in chunk], first_day)))
                    chunk = []
            if chunk:
                ready.put((chunk, check_events([item for _line, item in chunk], first_day)))
            ready.put(_END)
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
    head = lock_chain_head(conn)
    last_closed = query(conn, "SELECT max(month) FROM month_close")[0][0]
    valid = [event for event in checked if type(event) is ValidEvent]
    platform_ids = ledger.platform_ids(conn, {event.platform for event in valid}, pending) if valid else {}
    worker_ids = ledger.worker_ids(conn, [event.national_id for event in valid], pending) if valid else {}
    booked = _load_booked(conn, valid, platform_ids)
    recorded_at = iso_utc(ledger.clock())
    first_id = next_entry_id(conn)

    outcomes: list[Outcome] = []
    add_outcome, new_outcome = outcomes.append, partial(tuple.__new__, Outcome)  # Outcome((…)) without its __new__
    # Entries in batch order; a completed event's entry is a placeholder until its
    # shares are computed (as arrays, below). Entry ids are first_id + position.
    entries: list = []
    completes: list[tuple[int, ValidEvent, int, int, int, int]] = []  # position, event, platform, worker, kind, month
    event_type, conflict = EntryType.event, Rejection.duplicate_conflict.name
    for (line, item), event in zip(items, checked):
        if type(event) is not ValidEvent:
            platform, event_id = _identity(item)
            add_outcome(new_outcome((line, platform, event_id, event.name)))
            continue
        platform_id = platform_ids[event.platform]
        key = (platform_id, event.event_id)
        prior = booked.get(key)
        if prior is not None:
            add_outcome(new_outcome((line, event.platform, event.event_id,
                                     DUPLICATE if prior.payload_hash == event.payload_hash else conflict)))
            continue
        worker_id = worker_ids[event.national_id]
        kind = KIND_INDEX[event.kind]
        booking_month = event.occurred_month
        if last_closed is not None and booking_month <= last_closed:
            booking_month = next_month(last_closed)
        if event.is_refund:
            original_id = event.original_event_id  # any JSON value: not a string, it names no event
            original = booked.get((platform_id, original_id)) if type(original_id) is str else None
            code = _refund_rejection(original, worker_id, kind, event.amount_vnd)
            if code is not None:
                add_outcome(new_outcome((line, event.platform, event.event_id, code.name)))
                continue
            if original.shares_vnd is None:  # an original accepted earlier in this batch
                original_event = completes[original.batch_index][1]
                original.shares_vnd = event_shares_vnd(original_event.kind, original_event.amount_vnd,
                                                       ledger.version_on(original_event.occurred_day))
            reversed_before = original.reversed_vnd or [0] * len(SHARE_ACCOUNTS)
            reversals = refund_reversals_vnd(original.shares_vnd, original.amount_vnd, original.refunded_vnd,
                                             reversed_before, event.amount_vnd)
            original.refunded_vnd += event.amount_vnd
            original.reversed_vnd = [done + now for done, now in zip(reversed_before, reversals)]
            booked[key] = _Booked(first_id + len(entries), EntryType.refund, event.payload_hash, worker_id, kind,
                                  event.amount_vnd)
            entries.append((EntryType.refund, platform_id, event.event_id, event.payload_hash, worker_id, kind,
                            event.amount_vnd, utc_text(event.occurred_at), event.occurred_month, booking_month,
                            None, original.entry_id, _legs(platform_id, worker_id, reversals, sign=+1)))
        else:
            booked[key] = _Booked(first_id + len(entries), event_type, event.payload_hash, worker_id, kind,
                                  event.amount_vnd, len(completes))
            completes.append((len(entries), event, platform_id, worker_id, kind, booking_month))
            entries.append(None)
        add_outcome(new_outcome((line, event.platform, event.event_id, ACCEPTED)))

    _complete_entries(ledger, conn, entries, completes, pending)
    write_block(conn, entries, recorded_at=recorded_at, head=head, first_entry_id=first_id)
    return outcomes


def utc_text(moment: datetime) -> str:
    """`ledger.books.iso_utc`, faster: 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (the journal's occurred_at)."""
    utc = moment.astimezone(timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (utc.year, utc.month, utc.day, utc.hour, utc.minute,
                                                   utc.second, utc.microsecond)


def _refund_rejection(original: _Booked | None, worker_id: int, kind: int, amount_vnd: int) -> Rejection | None:
    if original is None or original.entry_type != EntryType.event:
        return Rejection.unknown_original
    if original.worker_id != worker_id or original.kind != kind:
        return Rejection.refund_mismatch
    if original.refunded_vnd + amount_vnd > original.amount_vnd:
        return Rejection.refund_exceeds_original
    return None


_WORKER_ACCOUNT, _PLATFORM_ACCOUNT = int(AccountKind.worker), int(AccountKind.platform)


def _legs(platform_id: int, worker_id: int, shares: Sequence[int], sign: int) -> tuple[tuple[int, ...], ...]:
    """Credit (sign −1 → reversal +1) each non-zero share to the worker; the platform owes the sum.

    Legs are plain `(account_kind, owner_id, scheme, party, amount_vnd)` tuples (`Leg` order).
    """
    legs = [(_WORKER_ACCOUNT, worker_id, scheme, party, sign * share)
            for (scheme, party), share in zip(SHARE_ACCOUNTS, shares) if share]
    if not legs:
        return ()
    return ((_PLATFORM_ACCOUNT, platform_id, NO_SCHEME, NO_PARTY, -sign * sum(shares)), *legs)


def _complete_entries(ledger: Ledger, conn, entries: list, completes: list, pending: dict) -> None:
    """Fill in the completed events' entries, column-wise: shares as arrays, one rules call per version.

    Events whose shares are zero in the same places get their legs built together by
    `zip` over columns (the same tuples `_legs` makes one at a time).
    """
    if not completes:
        return
    positions, events, platform_ids, worker_ids, kinds, booking_months = (list(column) for column in zip(*completes))
    version_of_day = {day: ledger.version_on(day) for day in set(map(attrgetter("occurred_day"), events))}
    versions = [version_of_day[event.occurred_day] for event in events] if len(set(version_of_day.values())) > 1 \
        else None
    amounts = list(map(attrgetter("amount_vnd"), events))
    columns = (np.array(positions), np.array(platform_ids), np.array(worker_ids), np.array(kinds),
               np.array(amounts), np.array(booking_months), np.arange(len(events)))
    for version in set(version_of_day.values()):
        version_id = ledger.rules_version_id(conn, version, pending)
        chosen = np.arange(len(events)) if versions is None else \
            np.flatnonzero(np.fromiter((v is version for v in versions), dtype=bool, count=len(versions)))
        if not len(chosen):
            continue
        position, platform, worker, kind, amount, month, index = (column[chosen] for column in columns)
        shares = shares_matrix_vnd(kind, amount, version)
        pattern = (shares != 0) @ (1 << np.arange(len(SHARE_ACCOUNTS)))
        for code in np.unique(pattern).tolist():
            rows = np.flatnonzero(pattern == code)
            group = [events[i] for i in index[rows].tolist()]
            platform_list, worker_list = platform[rows].tolist(), worker[rows].tolist()
            if code:
                legs = [zip(repeat(_PLATFORM_ACCOUNT), platform_list, repeat(NO_SCHEME), repeat(NO_PARTY),
                            shares[rows].sum(axis=1).tolist())]
                for column, (scheme, party) in enumerate(SHARE_ACCOUNTS):
                    if code >> column & 1:
                        legs.append(zip(repeat(_WORKER_ACCOUNT), worker_list, repeat(scheme), repeat(party),
                                        (-shares[rows, column]).tolist()))
                leg_tuples = zip(*legs)
            else:
                leg_tuples = repeat(())
            built = zip(repeat(EntryType.event), platform_list, map(attrgetter("event_id"), group),
                        map(attrgetter("payload_hash"), group), worker_list, kind[rows].tolist(),
                        amount[rows].tolist(), map(utc_text, map(attrgetter("occurred_at"), group)),
                        map(attrgetter("occurred_month"), group), month[rows].tolist(), repeat(version_id),
                        repeat(None), leg_tuples)
            for at, entry in zip(position[rows].tolist(), built):
                entries[at] = entry


def _load_booked(conn, valid: list[ValidEvent], platform_ids: dict[str, int]) -> dict[tuple[int, str], _Booked]:
    """Accepted events of the books that this batch names (as itself or as an original)."""
    wanted: dict[int, set[str]] = {}
    for event in valid:
        platform_id = platform_ids[event.platform]
        wanted.setdefault(platform_id, set()).add(event.event_id)
        if event.is_refund and type(event.original_event_id) is str:
            wanted[platform_id].add(event.original_event_id)
    booked: dict[tuple[int, str], _Booked] = {}
    for platform_id, event_ids in wanted.items():
        rows = fetch_events(conn, platform_id, ("id", "entry_type", "payload_hash", "worker_id", "kind", "amount_vnd"),
                            event_ids)
        for event_id, entry_id, entry_type, digest, worker_id, kind, amount in rows:
            booked[(platform_id, event_id)] = _Booked(entry_id, entry_type, bytes(digest), worker_id, kind, amount)
    refunded = {(platform_ids[event.platform], event.original_event_id) for event in valid
                if event.is_refund and type(event.original_event_id) is str}
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
            state.reversed_vnd = [done + int(now) for done, now in zip(state.reversed_vnd, reversed_vnd)]
        for entry_id, *shares in archived_rows(conn, "id", archived, ("id", *SHARE_COLUMNS)):
            originals[entry_id].shares_vnd = tuple(-int(share) for share in shares)


_SHARES_SELECTED = ", ".join(SHARE_COLUMNS)

"""One ingest function for every entry point: a batch of items in, one outcome per item out.

`ingest_batch(ledger, items)` is what the HTTP route and the stream consumer call, and
`ingest_stream` (files, the CLI) books chunk after chunk through the same path. Items are
`(line, parsed_json_or_MALFORMED)` pairs, applied in order:

1. checks 0–8 (`ledger.events.check_events`, the batch as columns), pure, before any lock,
   and everything else that needs no books (`check_batch`: the batch's columns, keys named
   twice, the rules version of each event's day and the shares under it) — for a file, in a
   forked process one chunk ahead of the booking (`ingest_stream`, `ledger.pipeline`);
2. under the writer's lock, checks 9–12 against the books and against the items of
   the batch already accepted (so a refund may follow its original in one batch). Plain
   events (completed, key neither in the books nor twice in the batch) are accepted as
   columns; only refunds, duplicates and repeated keys are checked one by one, in input order;
3. the legs: the batch's shares (`rules.shares_matrix_vnd`, array form, one call per rules
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

from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ledger.accounts import EntryType
from ledger.books import Ledger, UnitOfWork, iso_utc
from ledger.identity import IdentityKeys
from ledger.events import (ACCEPTED, DUPLICATE, KIND_INDEX, Rejection, ValidEvent, check_events, month_text,
                           next_month)
from ledger.postings import CompactEntries, block_writer, collector_paused, next_entry_id, write_compact_block
from ledger.layout import SHARE_COLUMNS, SHARES_READ
from ledger.archive import fetch_events
from ledger.pipeline import Ahead, can_fork, prepared_chunks
from ledger.store import fetch_in, lock_chain_head, query
from rules import RulesPack, refund_reversals_vnd, shares_matrix_vnd

BATCH_SIZE_MAX = 10_000  # events per batch handed to ingest_batch: an HTTP request, a stream batch (INTERFACES.md)
CHUNK_SIZE = 20_000  # events per database transaction when streaming a file


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
        return _book_checked(ledger, check_batch(items, ledger.pack, ledger.keys), work)


def _book_checked(ledger: Ledger, batch: CheckedBatch, work: UnitOfWork | None) -> list[Outcome]:
    if work is not None:
        return _book(ledger, work.connection, batch, work.pending)
    with ledger.unit_of_work() as work:
        return _book(ledger, work.connection, batch, work.pending)


def ingest_stream(ledger: Ledger, items: Iterable[tuple[int, object]], chunk_size: int = CHUNK_SIZE,
                  ahead: Ahead = "auto") -> Iterator[list[Outcome]]:
    """Book an iterable of items chunk by chunk, one transaction each; yields each chunk's outcomes.

    Reading (the items are usually parsed lazily from a file), checks 0–8 and the rest of
    `check_batch` for chunk n+1 run ahead of the booking of chunk n (`ledger.pipeline`):
    `"auto"` forks a child process that reads from the second chunk on when the input holds
    more than one chunk (the parent checks the first meanwhile), `"process"` always forks,
    `"thread"` uses a worker thread, `"none"` the caller's thread; the outcomes and the books
    are the same in every mode. At most one checked chunk waits, so memory stays bounded; an
    exception on either side ends both, and the chunk being written rolls back. The cyclic
    collector stays paused until the generator finishes or is closed.
    """
    if ahead in ("auto", "process") and can_fork():
        # Load the compiled shares kernel (numba: ~1 s of CPU in a fresh process) before the reading
        # process is forked, which then inherits it instead of loading it again.
        shares_matrix_vnd(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), ledger.pack.versions[0])
    checked_chunks = prepared_chunks(items, chunk_size, partial(check_batch, pack=ledger.pack, keys=ledger.keys),
                                     ahead)
    with collector_paused(), closing(checked_chunks) as batches:
        for batch in batches:
            yield _book_checked(ledger, batch, None)


class CheckedBatch:
    """A batch after checks 0–8, as columns: all that `_book` needs of it (the items are not kept).

    Per item, in input order: `lines`. The items refused by checks 0–8: their positions
    (`rejected_at`), code names and identities (platform and event id where they are strings).
    The valid events, in input order (`valid_at`: their positions among the items, None when
    every item is valid): platform and worker as distinct names (`platform_names`;
    `worker_names`, raw national ids, with their `worker_pseudonyms`) and an index into them
    per event, event ids, kind indexes (into `rules.KINDS`), amounts, occurred instants (µs
    since 1970 UTC) and Vietnam-time months, payload hashes; the refunds' positions
    (`refund_at`), their `original_event_id` values (any JSON value) and the position of each
    one's original when that key is in the batch (`original_at`, as a dict of the batch's keys
    would give it); the positions of keys named more than once (`repeated_at`); the rules
    version in force on each event's day (`version_index`, into the pack's `versions`) and each
    completed event's shares under it (`shares`, (n, 6) in `SHARE_COLUMNS` order; zero for refunds).

    Pickled compactly (`__reduce__`): it is what crosses from the process that reads and
    checks to the one that books (`ledger.pipeline`). Nothing in it needs the books.
    """

    __slots__ = ("lines", "rejected_at", "rejected_codes", "rejected_platforms", "rejected_event_ids", "valid_at",
                 "platform_names", "platform_index", "worker_names", "worker_pseudonyms", "worker_index", "event_ids",
                 "kinds", "amounts", "occurred_us", "occurred_months", "payload_hashes", "refund_at", "original_ids",
                 "original_at", "repeated_at", "version_index", "shares")

    def __init__(self, *values) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)

    @property
    def valid_count(self) -> int:
        return len(self.event_ids)

    def __reduce__(self):
        values = [getattr(self, name) for name in self.__slots__]
        for name in _JOINED:  # texts of the ID alphabet or of digits: no newline in any
            at = self.__slots__.index(name)
            values[at] = "\n".join(values[at])
        at = self.__slots__.index("lines")
        values[at] = np.asarray(values[at], dtype=np.int64)
        at = self.__slots__.index("payload_hashes")
        values[at] = b"".join(values[at])
        return _unpacked_batch, tuple(values)


_JOINED = ("platform_names", "worker_names", "worker_pseudonyms", "event_ids")
_HASH_BYTES = 16  # `events.payload_hash` is a 16-byte BLAKE2b digest


def _unpacked_batch(*values) -> CheckedBatch:
    batch = CheckedBatch(*values)
    for name in _JOINED:
        text = getattr(batch, name)
        setattr(batch, name, text.split("\n") if text else [])
    batch.lines = batch.lines.tolist()
    blob = batch.payload_hashes
    batch.payload_hashes = [blob[start:start + _HASH_BYTES] for start in range(0, len(blob), _HASH_BYTES)]
    return batch


def check_batch(items: Sequence[tuple[int, object]], pack: RulesPack, keys: IdentityKeys) -> CheckedBatch:
    """Checks 0–8 of a batch (`check_events`) and everything else about it that needs no books
    (`pack`: the rules, for each event's version and shares; `keys`: the books' identity keys,
    for the workers' pseudonyms)."""
    values = [item for _line, item in items]
    checked = check_events(values, pack.first_effective_from)
    count = len(items)
    lines = list(map(itemgetter(0), items))
    valid_at = [at for at, event in enumerate(checked) if type(event) is ValidEvent]
    rejected_at: list[int] = []
    rejected_codes: list[str] = []
    rejected_platforms: list = []
    rejected_event_ids: list = []
    if len(valid_at) < count:
        valid = [checked[at] for at in valid_at]
        rejected_at = sorted(set(range(count)) - set(valid_at))
        rejected_codes = [checked[at].name for at in rejected_at]
        identities = [_identity(values[at]) for at in rejected_at]
        rejected_platforms = [platform for platform, _event_id in identities]
        rejected_event_ids = [event_id for _platform, event_id in identities]
    else:
        valid, valid_at = checked, None
    total = len(valid)
    if not total:
        return CheckedBatch(lines, rejected_at, rejected_codes, rejected_platforms, rejected_event_ids, [], [],
                            np.zeros(0, dtype=np.int64), [], [], np.zeros(0, dtype=np.int64), [],
                            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                            np.zeros(0, dtype=np.int64), [], [], [], [], [], np.zeros(0, dtype=np.int64),
                            np.zeros((0, len(SHARE_COLUMNS)), dtype=np.int64))
    (platforms, event_ids, kinds, is_refund, national_ids, amounts, _occurred_at, occurred_days, occurred_months,
     original_ids, payload_hashes, occurred_us) = zip(*valid)
    platform_names, platform_index = _categories(platforms)
    worker_names, worker_index = _categories(national_ids)
    kind_index = np.fromiter(map(KIND_INDEX.__getitem__, kinds), dtype=np.int64, count=total)
    amount_array = np.fromiter(amounts, dtype=np.int64, count=total)
    named = list(zip(platforms, event_ids))
    batch_at = dict(zip(named, range(total)))
    repeated_at: list[int] = []
    if len(batch_at) < total:
        repeated = {key for key, times in Counter(named).items() if times > 1}
        repeated_at = [at for at, key in enumerate(named) if key in repeated]
    refund_at = [at for at, refund in enumerate(is_refund) if refund] if any(is_refund) else []
    refund_originals = [original_ids[at] for at in refund_at]
    original_at = [batch_at.get((platforms[at], original)) if type(original) is str else None
                   for at, original in zip(refund_at, refund_originals)]
    position = {id(version): index for index, version in enumerate(pack.versions)}
    version_of_day = {day: position[id(pack.version_on(day))] for day in set(occurred_days)}
    version_index = np.fromiter(map(version_of_day.__getitem__, occurred_days), dtype=np.int64, count=total)
    shares = np.zeros((total, len(SHARE_COLUMNS)), dtype=np.int64)
    completed = np.ones(total, dtype=bool)
    completed[refund_at] = False
    for index in sorted(set(version_of_day.values())):
        rows = np.flatnonzero(completed & (version_index == index)) if len(version_of_day) > 1 or refund_at \
            else slice(None)
        shares[rows] = shares_matrix_vnd(kind_index[rows], amount_array[rows], pack.versions[index])
    return CheckedBatch(lines, rejected_at, rejected_codes, rejected_platforms, rejected_event_ids, valid_at,
                        platform_names, platform_index, worker_names, list(map(keys.pseudonym, worker_names)),
                        worker_index, list(event_ids), kind_index,
                        amount_array, np.fromiter(occurred_us, dtype=np.int64, count=total),
                        np.fromiter(occurred_months, dtype=np.int64, count=total), list(payload_hashes), refund_at,
                        refund_originals, original_at, repeated_at, version_index, shares)


def _categories(values: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct values in order of first appearance, and each value's index among them."""
    names = list(dict.fromkeys(values))
    index = {name: at for at, name in enumerate(names)}
    return names, np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))


def _book(ledger: Ledger, conn, batch: CheckedBatch, pending) -> list[Outcome]:
    """Checks 9–12 and the block, for a batch whose checks 0–8 are done (`check_batch`).

    Most events are *plain*: a completed event whose (platform, event id) is neither in the
    books nor named twice in the batch. Nothing about them depends on the order of the batch,
    so they are accepted as columns. The others — refunds, keys in the books (duplicates),
    keys named more than once — go through checks 9–12 one by one in input order, exactly as
    if every event were: a refund finds its original among the books, the special events
    accepted before it, and the plain events before it. Entry ids follow input order.
    """
    head = lock_chain_head(conn)
    last_closed = query(conn, "SELECT max(month) FROM month_close")[0][0]
    count = len(batch.lines)
    total = batch.valid_count
    valid_at = batch.valid_at
    codes: list[str] = [ACCEPTED] * count
    for at, code in zip(batch.rejected_at, batch.rejected_codes):
        codes[at] = code
    recorded_at = iso_utc(ledger.clock())
    first_id = next_entry_id(conn)
    event_ids = batch.event_ids
    platform_of_name = ledger.platform_ids(conn, batch.platform_names, pending)
    platforms = np.array([platform_of_name[name] for name in batch.platform_names] or [0],
                         dtype=np.int64)[batch.platform_index]
    if valid_at is None:
        out_platforms: list = np.array(batch.platform_names, dtype=object)[batch.platform_index].tolist()
        out_event_ids: list = event_ids
    else:
        out_platforms, out_event_ids = [None] * count, [None] * count
        for at, platform, event_id in zip(batch.rejected_at, batch.rejected_platforms, batch.rejected_event_ids):
            out_platforms[at], out_event_ids[at] = platform, event_id
        names = batch.platform_names
        for at, platform, event_id in zip(valid_at, batch.platform_index.tolist(), event_ids):
            out_platforms[at], out_event_ids[at] = names[platform], event_id
    if not total:
        write_compact_block(conn, _NO_ENTRIES, recorded_at=recorded_at, head=head, first_entry_id=first_id)
        return _outcomes(batch.lines, out_platforms, out_event_ids, codes)
    worker_of_name = ledger.worker_ids(conn, batch.worker_names, pending, pseudonyms=batch.worker_pseudonyms)
    workers = np.array([worker_of_name[name] for name in batch.worker_names], dtype=np.int64)[batch.worker_index]
    platform_col: list[int] = platforms.tolist()
    refund_at = batch.refund_at
    booked = _load_booked(conn, platforms, platform_col, event_ids, refund_at, batch.original_ids)

    # Which events need checks 9–12 one by one (see the docstring).
    special = np.zeros(total, dtype=bool)
    special[refund_at] = True
    special[batch.repeated_at] = True
    if booked:
        special |= np.fromiter(map(booked.__contains__, zip(platform_col, event_ids)), dtype=bool, count=total)
    accepted = np.ones(total, dtype=bool)
    refunds: list[tuple[int, _Booked, tuple[int, ...]]] = []  # (position, original, reversals)
    special_at = np.flatnonzero(special).tolist()
    if special_at:
        _check_one_by_one(batch, special_at, special, accepted, codes, refunds, booked, platform_col,
                          workers.tolist() if len(special_at) > 64 else workers)
    entries = _entry_columns(ledger, conn, pending, batch, accepted, first_id, refunds, last_closed, platform_col,
                             workers)
    # With a writer thread (`postings.block_writer`, off by default) the inserts run while the outcomes are built.
    writer = block_writer(len(entries.event_id))
    try:
        write_compact_block(conn, entries, recorded_at=recorded_at, head=head, first_entry_id=first_id,
                            writer=writer)
        booked_months, late_months = _month_columns(count, valid_at, accepted, batch.occurred_months,
                                                    entries.booking_month)
        outcomes = _outcomes(batch.lines, out_platforms, out_event_ids, codes, booked_months, late_months)
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if writer is not None:
        writer.wait()
    return outcomes


def _check_one_by_one(batch: CheckedBatch, special_at: list[int], special: np.ndarray,
                      accepted: np.ndarray, codes: list[str], refunds: list, booked: dict, platform_col: list[int],
                      workers) -> None:
    """Checks 9–12 for the special events (refunds, keys in the books, keys named twice), in input order."""
    valid_at = batch.valid_at
    event_ids, payload_hashes = batch.event_ids, batch.payload_hashes
    kinds, amounts = batch.kinds, batch.amounts
    refund_of = {at: order for order, at in enumerate(batch.refund_at)}
    conflict = Rejection.duplicate_conflict.name
    for at in special_at:
        key = (platform_col[at], event_ids[at])
        prior = booked.get(key)
        item_at = at if valid_at is None else valid_at[at]
        if prior is not None:
            accepted[at] = False
            codes[item_at] = DUPLICATE if prior.payload_hash == payload_hashes[at] else conflict
            continue
        order = refund_of.get(at)
        if order is None:
            booked[key] = _Booked(None, EntryType.event, payload_hashes[at], int(workers[at]), int(kinds[at]),
                                  int(amounts[at]), at)
            continue
        original_id = batch.original_ids[order]  # any JSON value: not a string, it names no event
        original = None
        if type(original_id) is str:
            original_key = (platform_col[at], original_id)
            original = booked.get(original_key)
            if original is None:  # a plain event earlier in this batch
                before = batch.original_at[order]
                if before is not None and before < at and not special[before]:
                    original = booked[original_key] = _Booked(None, EntryType.event, payload_hashes[before],
                                                              int(workers[before]), int(kinds[before]),
                                                              int(amounts[before]), before)
        amount = int(amounts[at])
        code = _refund_rejection(original, int(workers[at]), int(kinds[at]), amount)
        if code is not None:
            accepted[at] = False
            codes[item_at] = code.name
            continue
        if original.shares_vnd is None:  # an original accepted earlier in this batch: its shares as
            # `check_batch` priced them (the kernel of `rules.event_shares_vnd`), which are its legs in the block
            original.shares_vnd = tuple(batch.shares[original.batch_index].tolist())
        reversed_before = original.reversed_vnd or [0] * len(SHARE_COLUMNS)
        reversals = refund_reversals_vnd(original.shares_vnd, original.amount_vnd, original.refunded_vnd,
                                         reversed_before, amount)
        original.refunded_vnd += amount
        original.reversed_vnd = [done + now for done, now in zip(reversed_before, reversals)]
        booked[key] = _Booked(None, EntryType.refund, payload_hashes[at], int(workers[at]), int(kinds[at]), amount,
                              at)
        refunds.append((at, original, reversals))


def _month_columns(count: int, valid_at: list[int] | None, accepted: np.ndarray, occurred_months: np.ndarray,
                   booking_months: np.ndarray) -> tuple[Iterable, Iterable]:
    """Per item: the booked month's text (None unless accepted), and the occurred month's where they differ.

    Columns, not per-event work: a batch spans a few months, so each month's text is made once,
    the common case (every item accepted) is one `map`, and only late bookings are visited one by one.
    """
    booked_ints: list[int] = booking_months.tolist()
    if not booked_ints:
        return repeat(None), repeat(None)
    chosen = None if len(booked_ints) == len(occurred_months) else np.flatnonzero(accepted)
    occurred_ints: list[int] = (occurred_months if chosen is None else occurred_months[chosen]).tolist()
    texts = {month: month_text(month) for month in {*booked_ints, *occurred_ints}}
    if len(booked_ints) == count:  # every item valid and accepted
        positions = None
        booked: list = list(map(texts.__getitem__, booked_ints))
    else:
        positions = (list(range(len(accepted))) if valid_at is None else valid_at) if chosen is None else \
            (chosen.tolist() if valid_at is None else _pick(valid_at, chosen.tolist()))
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


def _outcomes(lines: list[int], platforms: list, event_ids: list, codes: list[str],
              booked_months: Iterable = repeat(None), late_months: Iterable = repeat(None)) -> list[Outcome]:
    return list(map(tuple.__new__, repeat(Outcome), zip(lines, platforms, event_ids, codes, booked_months,
                                                        late_months)))


def _entry_columns(ledger: Ledger, conn, pending: dict, batch: CheckedBatch, accepted: np.ndarray, first_id: int,
                   refunds: list[tuple[int, _Booked, tuple[int, ...]]], last_closed: int | None,
                   platform_col: list[int], workers: np.ndarray) -> CompactEntries:
    """The accepted events and refunds as the block's columns, in input order (entry ids follow it).

    Completed events' shares are the batch's (`check_batch`: `rules.shares_matrix_vnd`, one call
    per rules version); a refund's legs are its reversals (`rules.refund_reversals_vnd`).
    """
    total = len(accepted)
    entry_ids = np.cumsum(accepted) + (first_id - 1)  # the entry id of each accepted position
    for _at, original, _reversals in refunds:
        if original.entry_id is None:  # an original of this batch
            original.entry_id = int(entry_ids[original.batch_index])
    refund = np.zeros(total, dtype=bool)
    refund[batch.refund_at] = True
    completed = accepted & ~refund
    legs = np.zeros((total, len(SHARE_COLUMNS)), dtype=np.int64)
    version_ids = np.zeros(total, dtype=np.int64)
    if completed.any():
        legs[completed] = -batch.shares[completed]
        used = np.flatnonzero(np.bincount(batch.version_index[completed])).tolist()
        id_of_version = np.zeros(len(ledger.pack.versions), dtype=np.int64)
        for index in used:
            id_of_version[index] = ledger.rules_version_id(conn, ledger.pack.versions[index], pending)
        version_ids[completed] = id_of_version[batch.version_index[completed]]
    for at, _original, reversals in refunds:
        legs[at] = reversals
    months = batch.occurred_months
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
        platform_id=listed(platform_col), event_id=listed(batch.event_ids), payload_hash=listed(batch.payload_hashes),
        worker_id=pick(workers).tolist(), kind=pick(batch.kinds).tolist(), amount_vnd=pick(batch.amounts).tolist(),
        occurred_us=pick(batch.occurred_us), occurred_month=pick(months).tolist(),
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


def _load_booked(conn, platforms: np.ndarray, platform_col: list[int], event_ids: list[str],
                 refund_at: list[int], original_ids: list) -> dict[tuple[int, str], _Booked]:
    """Accepted events of the books that this batch names (as itself or as an original).

    `platforms`: each event's platform id, as an array (grouped by it) and as the list `platform_col`.
    """
    distinct = np.flatnonzero(np.bincount(platforms)).tolist()
    if len(distinct) == 1:
        wanted: dict[int, set[str]] = {distinct[0]: set(event_ids)}
    else:
        wanted = {platform_id: set(_pick(event_ids, np.flatnonzero(platforms == platform_id).tolist()))
                  for platform_id in distinct}
    refunded: set[tuple[int, str]] = set()
    for at, original_id in zip(refund_at, original_ids):
        if type(original_id) is str:
            platform_id = platform_col[at]
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

"""One ingest function for every entry point: a batch of items in, one outcome per item out.

`ingest_batch(ledger, items)` is what the CLI, the HTTP route and the stream consumer
call. Items are `(line, parsed_json_or_MALFORMED)` pairs, applied in order:

1. checks 0–8 (`ledger.events.check_event`), pure, before any lock;
2. under the writer's lock, checks 9–12 against the books and against the items of
   the batch already accepted (so a refund may follow its original in one batch);
3. shares from the rules (`rules.shares_matrix_vnd`, array form) and refund
   reversals (`rules.refund_reversals_vnd`);
4. one block of entries written by `ledger.postings.write_block`, then commit.

A batch is never all-or-nothing for the caller: each item has its own outcome. It is
all-or-nothing for the database: a crash leaves either the whole block or none of
it, and re-sending the batch then gives `duplicate` for what was booked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ledger.accounts import NO_PARTY, NO_SCHEME, PARTY_CODE, SCHEME_CODE, AccountKind, EntryType
from ledger.books import Ledger, iso_utc
from ledger.events import ACCEPTED, DUPLICATE, KIND_INDEX, Rejection, ValidEvent, check_event, next_month
from ledger.postings import Leg, NewEntry, write_block
from ledger.store import fetch_in, lock_chain_head, query
from rules import SHARE_KEYS, event_shares_vnd, refund_reversals_vnd, shares_matrix_vnd

BATCH_SIZE_MAX = 10_000  # events per HTTP request (INTERFACES.md)
CHUNK_SIZE = 20_000  # events per database transaction when streaming a file


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


@dataclass
class _Booked:
    """What the stateful checks need to know of an accepted event (from the books or this batch)."""

    entry_id: int | None
    entry_type: int
    payload_hash: bytes
    worker_id: int
    kind: int
    amount_vnd: int
    shares_vnd: tuple[int, ...] | None = None  # known for originals that are refunded
    refunded_vnd: int = 0
    reversed_vnd: list[int] = field(default_factory=lambda: [0] * 6)
    batch_index: int | None = None  # position in this batch's accepted events


def _identity(item: object) -> tuple[str | None, str | None]:
    if type(item) is not dict:
        return None, None
    platform, event_id = item.get("platform"), item.get("event_id")
    return (platform if type(platform) is str else None, event_id if type(event_id) is str else None)


def ingest_batch(ledger: Ledger, items: Sequence[tuple[int, object]]) -> list[Outcome]:
    """Book one batch in one transaction and return one outcome per item, in order."""
    first_day = ledger.pack.first_effective_from
    checked = [check_event(item, first_day) for _line, item in items]
    pending: dict = {}
    with ledger.engine.begin() as conn:
        outcomes = _book(ledger, conn, items, checked, pending)
    ledger.committed(pending)
    return outcomes


def ingest_stream(ledger: Ledger, items: Iterable[tuple[int, object]],
                  chunk_size: int = CHUNK_SIZE) -> Iterator[list[Outcome]]:
    """Book an iterable of items chunk by chunk (bounded memory); yields each chunk's outcomes."""
    chunk: list[tuple[int, object]] = []
    for pair in items:
        chunk.append(pair)
        if len(chunk) >= chunk_size:
            yield ingest_batch(ledger, chunk)
            chunk = []
    if chunk:
        yield ingest_batch(ledger, chunk)


def _book(ledger: Ledger, conn, items, checked, pending) -> list[Outcome]:
    head = lock_chain_head(conn)
    last_closed = query(conn, "SELECT max(month) FROM month_close")[0][0]
    valid = [event for event in checked if type(event) is ValidEvent]
    platform_ids = ledger.platform_ids(conn, {event.platform for event in valid}, pending) if valid else {}
    worker_ids = ledger.worker_ids(conn, [event.national_id for event in valid], pending) if valid else {}
    booked = _load_booked(conn, valid, platform_ids)
    recorded_at = iso_utc(ledger.clock())

    outcomes: list[Outcome] = []
    completes: list[tuple[ValidEvent, int, int, int]] = []  # event, platform id, worker id, booking month
    refund_entries: list[tuple[int, NewEntry]] = []  # (position among entries, entry)
    order: list[tuple[str, int]] = []  # ("c", index into completes) / ("r", index into refund_entries)
    for (line, item), event in zip(items, checked):
        if type(event) is not ValidEvent:
            platform, event_id = _identity(item)
            outcomes.append(Outcome(line, platform, event_id, event.name))
            continue
        platform_id = platform_ids[event.platform]
        key = (platform_id, event.event_id)
        prior = booked.get(key)
        if prior is not None:
            result = DUPLICATE if prior.payload_hash == event.payload_hash else Rejection.duplicate_conflict.name
            outcomes.append(Outcome(line, event.platform, event.event_id, result))
            continue
        worker_id = worker_ids[event.national_id]
        kind = KIND_INDEX[event.kind]
        booking_month = event.occurred_month
        if last_closed is not None and booking_month <= last_closed:
            booking_month = next_month(last_closed)
        if event.is_refund:
            original = booked.get((platform_id, event.original_event_id))
            code = _refund_rejection(original, worker_id, kind, event.amount_vnd)
            if code is not None:
                outcomes.append(Outcome(line, event.platform, event.event_id, code.name))
                continue
            if original.shares_vnd is None:  # an original accepted earlier in this batch
                original_event = completes[original.batch_index][0]
                original.shares_vnd = event_shares_vnd(original_event.kind, original_event.amount_vnd,
                                                       ledger.version_on(original_event.occurred_day))
            reversals = refund_reversals_vnd(original.shares_vnd, original.amount_vnd, original.refunded_vnd,
                                             original.reversed_vnd, event.amount_vnd)
            original.refunded_vnd += event.amount_vnd
            original.reversed_vnd = [done + now for done, now in zip(original.reversed_vnd, reversals)]
            legs = _legs(platform_id, worker_id, reversals, sign=+1)
            entry = NewEntry(EntryType.refund, platform_id, event.event_id, event.payload_hash, worker_id, kind,
                             event.amount_vnd, iso_utc(event.occurred_at), event.occurred_month, booking_month,
                             None, original.entry_id, legs)
            # original.entry_id is None when the original is in this batch: fixed after ids are known
            refund_entries.append((original.batch_index, entry))
            order.append(("r", len(refund_entries) - 1))
            booked[key] = _Booked(None, EntryType.refund, event.payload_hash, worker_id, kind, event.amount_vnd)
        else:
            booked[key] = _Booked(None, EntryType.event, event.payload_hash, worker_id, kind, event.amount_vnd,
                                  batch_index=len(completes))
            completes.append((event, platform_id, worker_id, booking_month))
            order.append(("c", len(completes) - 1))
        outcomes.append(Outcome(line, event.platform, event.event_id, ACCEPTED))

    entries = _entries_in_order(ledger, conn, completes, refund_entries, order, pending, head)
    write_block(conn, entries, recorded_at=recorded_at, head=head)
    return outcomes


def _refund_rejection(original: _Booked | None, worker_id: int, kind: int, amount_vnd: int) -> Rejection | None:
    if original is None or original.entry_type != EntryType.event:
        return Rejection.unknown_original
    if original.worker_id != worker_id or original.kind != kind:
        return Rejection.refund_mismatch
    if original.refunded_vnd + amount_vnd > original.amount_vnd:
        return Rejection.refund_exceeds_original
    return None


def _legs(platform_id: int, worker_id: int, shares: Sequence[int], sign: int) -> tuple[Leg, ...]:
    """Credit (sign −1 → reversal +1) each non-zero share to the worker; the platform owes the sum."""
    legs = [Leg(AccountKind.worker, worker_id, scheme, party, sign * share)
            for (scheme, party), share in zip(SHARE_ACCOUNTS, shares) if share]
    total = sum(shares)
    if not legs:
        return ()
    return (Leg(AccountKind.platform, platform_id, NO_SCHEME, NO_PARTY, -sign * total), *legs)


def _entries_in_order(ledger, conn, completes, refund_entries, order, pending, head) -> list[NewEntry]:
    """Entries in batch order; completes' shares computed as arrays, one rules call per version."""
    share_rows: list[tuple[int, ...]] = [()] * len(completes)
    version_ids: list[int] = [0] * len(completes)
    by_version: dict = {}
    for index, (event, _platform_id, _worker_id, _month) in enumerate(completes):
        by_version.setdefault(ledger.version_on(event.occurred_day), []).append(index)
    for version, indexes in by_version.items():
        kinds = np.fromiter((KIND_INDEX[completes[i][0].kind] for i in indexes), dtype=np.int64, count=len(indexes))
        amounts = np.fromiter((completes[i][0].amount_vnd for i in indexes), dtype=np.int64, count=len(indexes))
        matrix = shares_matrix_vnd(kinds, amounts, version).tolist()
        version_id = ledger.rules_version_id(conn, version, pending)
        for i, row in zip(indexes, matrix):
            share_rows[i] = tuple(row)
            version_ids[i] = version_id

    next_id = (query(conn, "SELECT coalesce(max(id), 0) FROM journal")[0][0] or 0) + 1
    complete_entry_ids: list[int] = [0] * len(completes)
    entries: list[NewEntry] = []
    for tag, index in order:
        entry_id = next_id + len(entries)
        if tag == "c":
            event, platform_id, worker_id, booking_month = completes[index]
            complete_entry_ids[index] = entry_id
            entries.append(NewEntry(
                EntryType.event, platform_id, event.event_id, event.payload_hash, worker_id,
                KIND_INDEX[event.kind], event.amount_vnd, iso_utc(event.occurred_at), event.occurred_month,
                booking_month, version_ids[index], None, _legs(platform_id, worker_id, share_rows[index], sign=-1)))
        else:
            original_batch_index, entry = refund_entries[index]
            if entry.original_entry_id is None:
                entry = entry._replace(original_entry_id=complete_entry_ids[original_batch_index])
            entries.append(entry)
    return entries


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
        rows = fetch_in(conn, "SELECT event_id, id, entry_type, payload_hash, worker_id, kind, amount_vnd "
                              f"FROM journal WHERE platform_id = {int(platform_id)} AND event_id IN ({{marks}})",
                        event_ids)
        for event_id, entry_id, entry_type, digest, worker_id, kind, amount in rows:
            booked[(platform_id, event_id)] = _Booked(entry_id, entry_type, bytes(digest), worker_id, kind, amount)
    refunded = {(platform_ids[event.platform], event.original_event_id) for event in valid if event.is_refund}
    originals = {state.entry_id: state for key, state in booked.items()
                 if key in refunded and state.entry_type == EntryType.event}
    if not originals:
        return booked
    _load_refund_history(conn, originals)
    return booked


def _load_refund_history(conn, originals: dict[int, _Booked]) -> None:
    """Original shares, amount refunded so far and each share reversed so far (RULES.md §5 C and R)."""
    index_of = {account: position for position, account in enumerate(SHARE_ACCOUNTS)}
    for state in originals.values():
        state.shares_vnd = (0,) * 6
    worker = int(AccountKind.worker)
    rows = fetch_in(conn, f"SELECT entry_id, scheme, party, amount_vnd FROM posting WHERE account_kind = {worker} "
                          "AND entry_id IN ({marks})", originals)
    shares = {entry_id: [0] * 6 for entry_id in originals}
    for entry_id, scheme, party, amount in rows:
        shares[entry_id][index_of[(scheme, party)]] = -amount
    for entry_id, values in shares.items():
        originals[entry_id].shares_vnd = tuple(values)
    for original_id, total in fetch_in(conn, "SELECT original_entry_id, sum(amount_vnd) FROM journal "
                                             "WHERE original_entry_id IN ({marks}) GROUP BY original_entry_id",
                                       originals):
        originals[original_id].refunded_vnd = int(total)
    rows = fetch_in(conn, "SELECT j.original_entry_id, p.scheme, p.party, sum(p.amount_vnd) FROM journal j "
                          f"JOIN posting p ON p.entry_id = j.id AND p.account_kind = {worker} "
                          "WHERE j.original_entry_id IN ({marks}) GROUP BY j.original_entry_id, p.scheme, p.party",
                    originals)
    for original_id, scheme, party, amount in rows:
        originals[original_id].reversed_vnd[index_of[(scheme, party)]] = int(amount)

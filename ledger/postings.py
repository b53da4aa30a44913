"""Where postings are written: one function turns new entries into rows, in one block.

Every entry point (ingest, month close) hands `write_block` a list of `NewEntry` (or
plain tuples of the same fields, as the ingest and the close build them). It assigns
entry ids, checks each entry balances (in Python, before the database checks it
again), hashes each entry and chains the block to the previous one, then appends
postings, journal rows, the block and the aggregate deltas in the caller's
transaction. Nothing here updates or deletes a journal or posting row.
"""
from __future__ import annotations

import gc
import hashlib
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator, NamedTuple, Sequence

import orjson
from sqlalchemy import Connection

from ledger.accounts import PARTY_CODE, AccountKind, EntryType
from ledger.schema import COMPACT_COLUMNS
from ledger.store import add_to_rows, execute_many, insert_rows, query

#: What `write_block` writes of an entry. `recorded_at` is the block's; an event's or a refund's
#: `occurred_at` is stored as `occurred_us` (the hash covers the text, rebuilt by `occurred_text`):
#: 35 bytes less per event. Other entries keep their `occurred_at` text (a payment's is a date).
JOURNAL_COLUMNS = (
    "id", "block_id", "entry_type", "platform_id", "event_id", "payload_hash", "worker_id", "kind",
    "amount_vnd", "occurred_at", "occurred_us", "occurred_month", "booking_month", "rules_version_id",
    "original_entry_id", "entry_hash", *COMPACT_COLUMNS,
)
#: Bytes of an entry's hash kept in its row. The block hash chains the entries' full 32-byte
#: hashes, recomputed from the rows; the 8 bytes kept per entry only let `verify` name which
#: entry of a bad block changed (a forger who rewrites them must still match the block hash).
#: Rows written before revision 0007 keep all 32 bytes; `verify` compares as many as are kept.
ENTRY_HASH_KEPT = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)


def occurred_us(text: str | None) -> int | None:
    """'YYYY-MM-DDTHH:MM:SS.ffffffZ' (the journal's occurred_at) as microseconds since 1970 UTC."""
    if text is None:
        return None
    return (datetime.fromisoformat(text[:-1]) - _NAIVE_EPOCH) // _ONE_US


def occurred_text(micros: int | None) -> str | None:
    """The text `occurred_us` came from (what the entry hash covers)."""
    if micros is None:
        return None
    moment = _EPOCH + timedelta(microseconds=micros)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (moment.year, moment.month, moment.day, moment.hour,
                                                   moment.minute, moment.second, moment.microsecond)
POSTING_COLUMNS = ("entry_id", "leg", "account_kind", "owner_id", "scheme", "party", "amount_vnd")
_WORKER, _PLATFORM_PARTY, _STATE_PARTY = PARTY_CODE["worker"], PARTY_CODE["platform"], PARTY_CODE["state"]
#: Entry types kept in the compact layout: their legs live in the journal row (docs/accounts.md).
COMPACT_TYPES = frozenset((int(EntryType.event), int(EntryType.refund)))
_NO_SHARES = (None,) * len(COMPACT_COLUMNS)


def compact_legs(platform_id: int, worker_id: int, receivable_vnd: int, shares: Sequence[int]) -> tuple:
    """The legs of a compact row, in the order they were written and hashed: the platform
    receivable, then each non-zero share on the worker's (scheme, party) account."""
    if receivable_vnd == 0 and not any(shares):
        return ()
    legs = [(_PLATFORM_KIND, platform_id, 0, 0, receivable_vnd)]
    for (scheme, party), amount in zip(_SHARE_ACCOUNTS, shares):
        if amount:
            legs.append((_WORKER_KIND, worker_id, scheme, party, amount))
    return tuple(legs)


_PLATFORM_KIND, _WORKER_KIND = int(AccountKind.platform), int(AccountKind.worker)
_SHARE_ACCOUNTS = tuple((scheme, party) for scheme in (1, 2, 3) for party in (1, 2))  # SHARE_COLUMNS order
_SHARE_INDEX = {account: index for index, account in enumerate(_SHARE_ACCOUNTS)}


class Leg(NamedTuple):
    account_kind: int
    owner_id: int
    scheme: int
    party: int
    amount_vnd: int  # + debit, − credit


class NewEntry(NamedTuple):
    entry_type: int
    platform_id: int | None
    event_id: str | None
    payload_hash: bytes | None
    worker_id: int | None
    kind: int | None
    amount_vnd: int | None
    occurred_at: str | None
    occurred_month: int | None
    booking_month: int
    rules_version_id: int | None
    original_entry_id: int | None
    legs: tuple[Leg, ...]


class UnbalancedEntry(Exception):
    """A bug: an entry whose legs do not sum to zero reached the writer."""


def _plain_array(value: object) -> tuple:
    """orjson's fallback: a leg given as a NamedTuple is hashed as the plain array it is."""
    if isinstance(value, tuple):
        return tuple(value)
    raise TypeError(f"{type(value).__name__} is not part of an entry")


def _seal(material: list) -> bytes:
    return hashlib.blake2b(orjson.dumps(material, default=_plain_array), digest_size=32).digest()


def entry_hash(entry_id: int, block_id: int, recorded_at: str, entry: NewEntry | Sequence) -> bytes:
    """The hash that seals one entry: every journal column and every leg."""
    fields = list(entry[:12])
    if fields[3] is not None:
        fields[3] = bytes(fields[3]).hex()
    return _seal([entry_id, block_id, recorded_at, fields, entry[12]])


def block_hash(prev_hash: bytes, block_id: int, entry_hashes: Sequence[bytes]) -> bytes:
    digest = hashlib.sha256(prev_hash)
    digest.update(block_id.to_bytes(8, "big"))
    for item in entry_hashes:
        digest.update(item)
    return digest.digest()


class BlockWritten(NamedTuple):
    block_id: int
    first_entry_id: int | None
    last_entry_id: int | None
    block_hash: bytes


def write_block(conn: Connection, entries: Sequence[NewEntry | tuple], *, recorded_at: str,
                head: tuple[bytes, int], first_entry_id: int | None = None) -> BlockWritten:
    """Append `entries` as one block. The caller holds the writer's lock (`lock_chain_head`).

    An entry is a `NewEntry` or a plain tuple of the same fields; legs likewise (`Leg`
    or plain tuples). Ids run from `first_entry_id` (read from the journal when None).
    """
    prev_hash, block_count = head
    block_id = block_count + 1
    if first_entry_id is None:
        first_entry_id = next_entry_id(conn)
    next_id = first_entry_id
    journal_rows: list[tuple] = []
    posting_rows: list[tuple] = []
    hashes: list[bytes] = []
    worker_delta: dict[tuple[int, int, int, int], list[int]] = {}  # (worker, month, scheme, platform or 0)
    add_posting, add_journal, add_hash = posting_rows.append, journal_rows.append, hashes.append
    worker_kind, worker_party, platform_party = int(AccountKind.worker), _WORKER, _PLATFORM_PARTY
    compact_types, share_index, no_shares, to_us = COMPACT_TYPES, _SHARE_INDEX, _NO_SHARES, occurred_us
    for entry in entries:
        (entry_type, platform_id, event_id, digest, worker_id, kind, amount_vnd, occurred_at, occurred_month,
         month, rules_version_id, original_entry_id, legs) = entry
        entry_id = next_id
        next_id += 1
        total = 0
        if entry_type in compact_types:  # its legs go into its own row, not into `posting`
            occurred = (None, None if occurred_at is None else to_us(occurred_at))
            compact = [0] * 7
            for account_kind, owner_id, scheme, party, amount in legs:
                total += amount
                if account_kind == worker_kind:
                    compact[1 + share_index[(scheme, party)]] = amount
                    key = (owner_id, month, scheme, platform_id or 0)
                    slot = worker_delta.get(key)
                    if slot is None:
                        slot = worker_delta[key] = [0, 0, 0]
                    slot[0 if party == worker_party else 1] -= amount
                else:
                    compact[0] = amount
        else:
            occurred, compact = (occurred_at, None), no_shares
            leg_number = 0
            for leg in legs:
                account_kind, owner_id, scheme, party, amount = leg
                total += amount
                add_posting((entry_id, leg_number, account_kind, owner_id, scheme, party, amount))
                leg_number += 1
                if account_kind == worker_kind:
                    credit = -amount
                    key = (owner_id, month, scheme, platform_id or 0)
                    slot = worker_delta.get(key)
                    if slot is None:
                        slot = worker_delta[key] = [0, 0, 0]
                    if party == worker_party:
                        slot[0] += credit
                    elif party == platform_party:
                        slot[1] += credit
                    else:
                        slot[2] += credit
        if total != 0:
            raise UnbalancedEntry(f"entry {entry_id} ({event_id}) legs sum to {total}")
        sealed = _seal([entry_id, block_id, recorded_at,
                        [entry_type, platform_id, event_id, None if digest is None else bytes(digest).hex(), worker_id,
                         kind, amount_vnd, occurred_at, occurred_month, month, rules_version_id, original_entry_id],
                        legs])
        add_hash(sealed)
        add_journal((entry_id, block_id, entry_type, platform_id, event_id, digest, worker_id, kind, amount_vnd,
                     *occurred, occurred_month, month, rules_version_id,
                     original_entry_id, sealed[:ENTRY_HASH_KEPT], *compact))
    sealed_block = block_hash(prev_hash, block_id, hashes)
    # What each platform owes: the worker- and platform-party credits of its events (platform id 0 = none).
    platform_delta: dict[tuple[int, int, int], list[int]] = {}
    for (_worker_id, month, scheme, platform_id), (worker_vnd, platform_vnd, _subsidy) in worker_delta.items():
        if platform_id:
            by_platform = platform_delta.get((platform_id, month, scheme))
            if by_platform is None:
                platform_delta[(platform_id, month, scheme)] = [worker_vnd, platform_vnd]
            else:
                by_platform[0] += worker_vnd
                by_platform[1] += platform_vnd
    last_id = next_id - 1 if entries else None
    # Postings first: the journal's guard checks they balance when the entry row lands.
    insert_rows(conn, "posting", POSTING_COLUMNS, posting_rows)
    insert_rows(conn, "journal", JOURNAL_COLUMNS, journal_rows)
    insert_rows(conn, "block", ("id", "prev_hash", "block_hash", "entry_count", "first_entry_id",
                                "last_entry_id", "recorded_at"),
                [(block_id, prev_hash, sealed_block, len(entries), first_entry_id if entries else None, last_id,
                  recorded_at)])
    execute_many(conn, "UPDATE ledger_state SET chain_head_hash = ?, block_count = ? WHERE id = 1",
                 [(sealed_block, block_id)])
    add_to_rows(conn, "worker_month", ("worker_id", "month", "scheme", "platform_id"),
                ("worker_vnd", "platform_vnd", "subsidy_vnd"), [(*key, *values) for key, values in worker_delta.items()])
    add_to_rows(conn, "platform_month", ("platform_id", "month", "scheme"), ("worker_vnd", "platform_vnd"),
                [(*key, *values) for key, values in platform_delta.items()])
    return BlockWritten(block_id, first_entry_id if entries else None, last_id, sealed_block)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch of entries is built and written.

    Ingest and close allocate about ten tuples and dicts per entry, none of them in a
    cycle; the collector's passes over them cost a quarter of the ingest's CPU time
    (docs/performance.md). Reference counting still frees everything as usual; the
    collector resumes (if it ran before) when the block ends, however it ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def next_entry_id(conn: Connection) -> int:
    """The id the next journal entry gets (the caller holds the writer's lock)."""
    return (query(conn, "SELECT coalesce(max(id), 0) FROM journal")[0][0] or 0) + 1

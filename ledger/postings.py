"""Where postings are written: one function turns new entries into rows, in one block.

Every entry point (ingest, month close) hands `write_block` a list of `NewEntry` (or
plain tuples of the same fields, as the ingest and the close build them). It assigns
entry ids, checks each entry balances (in Python, before the database checks it
again), hashes each entry and chains the block to the previous one, then appends
postings, journal rows, the block and the aggregate deltas in the caller's
transaction. Nothing here updates or deletes a journal or posting row.

Who owns the money is sealed too (seal version 1, revision 0006): each worker, platform,
rules-version and identity-change row carries `row_seal` of its columns, and each
block's hash covers the seals of the rows created since the block before it (the
`last_*_id` marks of the block). An entry names its worker, platform and rules version
by id, and its hash covers those ids; the rows behind the ids are in the chain at or
before the entry's block. A block of seal version 0 (written before 0006) covers its
entries only; revision 0006 sealed the rows that existed then in one empty block.
"""
from __future__ import annotations

import gc
import hashlib
import os
import queue
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from itertools import islice, repeat
from operator import itemgetter, methodcaller
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import orjson
from sqlalchemy import Connection

from ledger.accounts import PARTY_CODE, AccountKind, EntryType
from ledger.layout import COMPACT_COLUMNS
from ledger.store import (Same, add_to_rows, ensure_month_partitions, execute_many, insert_columns, insert_rows,
                          query)

#: What `write_block` writes of an entry. `recorded_at` is the block's; an event's or a refund's
#: `occurred_at` is stored as `occurred_us` (the hash covers the text, rebuilt by `occurred_text`):
#: 35 bytes less per event. Other entries keep their `occurred_at` text (a payment's is a date).
JOURNAL_COLUMNS = (
    "id", "block_id", "entry_type", "platform_id", "event_id", "payload_hash", "worker_id", "kind",
    "amount_vnd", "occurred_at", "occurred_us", "occurred_month", "booking_month", "rules_version_id",
    "original_entry_id", "entry_hash", *COMPACT_COLUMNS,
)
_booking_month_of = itemgetter(JOURNAL_COLUMNS.index("booking_month"))
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
WORKER_MONTH_COLUMNS = ("worker_id", "month", "scheme", "platform_id", "worker_vnd", "platform_vnd", "subsidy_vnd")
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
_CLEARING_KIND = int(AccountKind.clearing)
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


#: The rows whose columns are sealed, in the order a block's identity digest covers them:
#: table -> (mark column of `block`, the columns sealed, id first). Never reorder or change a
#: tuple (it would change every seal); a new sealed table is a new seal version.
SEALED_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "worker": ("last_worker_id",
               ("id", "pseudonym", "national_id_encrypted", "province", "birth_year", "sex")),
    "platform": ("last_platform_id", ("id", "name")),
    "rules_version": ("last_rules_version_id", ("id", "version_id", "pack", "effective_from", "document_json")),
    "worker_identity_change": ("last_identity_change_id",
                               ("id", "kind", "worker_id", "pseudonym", "national_id_encrypted", "merged_worker_id",
                                "reason", "recorded_at")),
    # seal version 2 (revision 0009): the months credited towards a pension (RULES.md §11)
    "credited_month": ("last_credit_id", ("id", "worker_id", "month", "close_month", "floor_vnd")),
}
SEAL_VERSION = 2  # what write_block writes (0: before revision 0006; 1: revisions 0006–0008)
#: How many of SEALED_TABLES (in order) a block of each seal version covers.
TABLES_SEALED_BY_VERSION = {0: 0, 1: 4, 2: 5}
NO_MARKS = (0, 0, 0, 0, 0)


def row_seal(table: str, row: Sequence) -> bytes:
    """The hash of one identity row: its table and every sealed column (`SEALED_TABLES`), id first."""
    return _seal([table, *[bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else value
                           for value in row]])


def identity_digest(rows_by_table: Sequence[Sequence[tuple[int, bytes]]]) -> bytes:
    """What a block covers of the identity rows it seals: per table (in `SEALED_TABLES` order) the
    `(id, seal)` of each row, in id order."""
    whole = hashlib.sha256()
    for rows in rows_by_table:
        part = hashlib.sha256()
        for row_id, seal in rows:
            part.update(int(row_id).to_bytes(8, "big"))
            part.update(bytes(seal) if seal is not None else b"")
        whole.update(part.digest())
    return whole.digest()


def identity_digests_by_block(blocks: Sequence[tuple[int, int, Sequence[int]]],
                              seals: dict[str, Sequence[tuple[int, bytes]]]) -> dict[int, bytes]:
    """Each seal-version-1 block's `identity_digest`, from `(block id, seal version, marks)` in block
    order and each sealed table's `(id, seal)` rows in id order: what an outside tool recomputes
    from an export (which carries the seals, not the encrypted ids they cover)."""
    sealing = [(block_id, version, marks) for block_id, version, marks in blocks if version >= 1]
    digests: dict[int, bytes] = {}
    before = NO_MARKS
    for block_id, version, marks in sealing:
        marks = tuple(marks) + (0,) * (len(SEALED_TABLES) - len(marks))
        covered = TABLES_SEALED_BY_VERSION[version]
        digests[block_id] = identity_digest([
            [(row_id, seal) for row_id, seal in seals.get(table, ()) if low < row_id <= high]
            for table, low, high in list(zip(SEALED_TABLES, before, marks))[:covered]])
        before = tuple(marks[:covered]) + tuple(before[covered:])
    return digests


def block_hash(prev_hash: bytes, block_id: int, entry_hashes: Sequence[bytes], *, seal_version: int = 0,
               marks: Sequence[int] = NO_MARKS, identity: bytes = b"") -> bytes:
    """A block's hash. Version 0 (before revision 0006): the previous hash, the id and the entry
    hashes. Version 1 also covers the identity marks and `identity_digest` of the rows it seals;
    version 2 the same with the credited months as a fifth sealed table (revision 0009)."""
    digest = block_hasher(prev_hash, block_id, seal_version=seal_version, marks=marks, identity=identity)
    digest.update(b"".join(entry_hashes))  # the same bytes as one update per entry hash, in one call
    return digest.digest()


def block_hasher(prev_hash: bytes, block_id: int, *, seal_version: int = 0, marks: Sequence[int] = NO_MARKS,
                 identity: bytes = b""):
    """`block_hash` before its entry hashes: a sha256 to be updated with the block's full entry
    hashes in id order, in as many calls as suit (`verify` feeds it chunk by chunk)."""
    digest = hashlib.sha256(prev_hash)
    digest.update(block_id.to_bytes(8, "big"))
    if seal_version:
        digest.update(b"ansinh/block/v1" if seal_version == 1 else b"ansinh/block/v%d" % seal_version)
        for mark in tuple(marks)[:TABLES_SEALED_BY_VERSION[seal_version]]:
            digest.update(int(mark).to_bytes(8, "big"))
        digest.update(identity)
    return digest


def _identity_to_seal(conn: Connection, block_count: int,
                      seal_version: int = SEAL_VERSION) -> tuple[tuple[int, ...], bytes]:
    """The marks and identity digest of the next block: the rows created since the previous block.

    One read of the previous block's marks and one of the new rows' seals (an index range each).
    """
    tables = list(SEALED_TABLES.items())[:TABLES_SEALED_BY_VERSION[seal_version]]
    previous = query(conn, "SELECT " + ", ".join(f"coalesce({mark}, 0)" for _t, (mark, _c) in tables)
                     + " FROM block WHERE id = ?", (block_count,))
    since = tuple(int(value) for value in previous[0]) if previous else NO_MARKS[:len(tables)]
    parts = " UNION ALL ".join(f"SELECT {number}, id, seal FROM {table} WHERE id > ?"
                               for number, (table, _m) in enumerate(tables))
    rows: list[list[tuple[int, bytes]]] = [[] for _ in tables]
    for number, row_id, seal in query(conn, parts + " ORDER BY 1, 2", since):
        rows[number].append((row_id, seal))
    marks = tuple(rows[n][-1][0] if rows[n] else since[n] for n in range(len(tables)))
    return marks, identity_digest(rows)


class BlockWritten(NamedTuple):
    block_id: int
    first_entry_id: int | None
    last_entry_id: int | None
    block_hash: bytes


def write_block(conn: Connection, entries: Sequence[NewEntry | tuple], *, recorded_at: str,
                head: tuple[bytes, int], first_entry_id: int | None = None,
                seal_version: int = SEAL_VERSION, worker_keys_present: set | None = None) -> BlockWritten:
    """Append `entries` as one block. The caller holds the writer's lock (`lock_chain_head`).

    An entry is a `NewEntry` or a plain tuple of the same fields; legs likewise (`Leg`
    or plain tuples). Ids run from `first_entry_id` (read from the journal when None).
    `seal_version`: only an older migration writes an older version (0006 writes 1).
    `worker_keys_present`: when the caller knows which `worker_month` keys of the block exist
    already (`(worker, month, scheme, platform or 0)`; the close reads them with the month's
    totals), the others are appended as new rows (COPY) rather than added to (upsert); a key
    wrongly left out fails the block on the table's primary key, it is never counted twice.
    """
    prev_hash, block_count = head
    block_id = block_count + 1
    if first_entry_id is None:
        first_entry_id = next_entry_id(conn)
    journal_rows, posting_rows, hashes, worker_delta = _entry_rows(entries, first_entry_id, block_id, recorded_at)
    last_id = first_entry_id + len(entries) - 1 if entries else None
    return _finish_block(conn, block_id, head, hashes, len(entries), first_entry_id if entries else None, last_id,
                         recorded_at, posting_rows, journal_rows, set(map(_booking_month_of, journal_rows)),
                         [(*key, *values) for key, values in worker_delta.items()], seal_version=seal_version,
                         worker_keys_present=worker_keys_present)


def _entry_rows(entries: Sequence[NewEntry | tuple], first_entry_id: int, block_id: int,
                recorded_at: str) -> tuple[list[tuple], list[tuple], list[bytes], dict]:
    """`write_block`'s rows of `entries` (ids from `first_entry_id`): journal rows, postings, entry
    hashes, and the worker aggregates' deltas by `(worker, month, scheme, platform or 0)`."""
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
            compact = [0, None, None, None, None, None, None]  # a share with no leg is NULL (revision 0011)
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
    return journal_rows, posting_rows, hashes, worker_delta


def write_subsidy_block(conn: Connection, leading: Sequence[tuple], worker_ids: np.ndarray, amounts: np.ndarray,
                        scheme_codes: Sequence[int], month: int, rules_version_id: int, *, recorded_at: str,
                        head: tuple[bytes, int], worker_keys_present: set | None = None) -> BlockWritten:
    """`write_block` of `leading` entries (the close's claim) then one subsidy entry per worker, built
    as columns: the same rows, hashes and aggregates as `write_block` of the close's tuples.

    `amounts[i, j]` is worker `worker_ids[i]`'s subsidy in scheme `scheme_codes[j]` (0: none; each
    worker has one at least), the schemes in the order an entry's legs name them: the clearing
    account debited per scheme, then the worker's accounts credited (party state) per scheme.
    """
    prev_hash, block_count = head
    block_id = block_count + 1
    first_entry_id = next_entry_id(conn)
    journal_rows, posting_rows, hashes, worker_delta = _entry_rows(leading, first_entry_id, block_id, recorded_at)
    worker_rows = [(*key, *values) for key, values in worker_delta.items()]
    count = len(worker_ids)
    if count:
        workers = np.asarray(worker_ids, dtype=np.int64)
        amounts = np.asarray(amounts, dtype=np.int64).reshape(count, len(scheme_codes))
        codes = np.asarray(scheme_codes, dtype=np.int64)
        paid = amounts != 0
        if not paid.any(axis=1).all():
            raise UnbalancedEntry("a subsidy entry with no leg reached the writer")
        start = first_entry_id + len(leading)
        ids = np.arange(start, start + count, dtype=np.int64)
        totals = amounts.sum(axis=1)
        pattern = paid @ (1 << np.arange(len(scheme_codes)))
        legs: list = [None] * count
        postings = []
        for code in np.unique(pattern).tolist():
            rows = np.flatnonzero(pattern == code)
            columns = [column for column in range(len(scheme_codes)) if code >> column & 1]
            width = len(columns)
            block = np.empty((len(rows), 2 * width, 5), dtype=np.int64)
            for leg, column in enumerate(columns):
                block[:, leg, 0], block[:, leg, 1], block[:, leg, 2], block[:, leg, 3] = (
                    _CLEARING_KIND, month, codes[column], 0)
                block[:, leg, 4] = amounts[rows, column]
                block[:, width + leg, 0], block[:, width + leg, 1] = _WORKER_KIND, workers[rows]
                block[:, width + leg, 2], block[:, width + leg, 3] = codes[column], _STATE_PARTY
                block[:, width + leg, 4] = -amounts[rows, column]
            for at, entry_legs in zip(rows.tolist(), block):
                legs[at] = entry_legs
            numbered = np.empty((len(rows), 2 * width, 7), dtype=np.int64)
            numbered[:, :, 0] = ids[rows, None]
            numbered[:, :, 1] = np.arange(2 * width)
            numbered[:, :, 2:] = block
            postings.append(numbered.reshape(-1, 7))
        postings_array = np.concatenate(postings)
        postings_array = postings_array[np.lexsort((postings_array[:, 1], postings_array[:, 0]))]
        posting_rows = [*posting_rows, *postings_array.tolist()]  # lists: COPY and INSERT take them as tuples
        id_list, worker_list, total_list = ids.tolist(), workers.tolist(), totals.tolist()
        entry_type = int(EntryType.subsidy)
        fields = ((entry_type, None, None, None, worker_id, None, total, None, month, month, rules_version_id, None)
                  for worker_id, total in zip(worker_list, total_list))
        sealed = zip(id_list, repeat(block_id), repeat(recorded_at), fields, legs)
        new_hashes = list(map(_DIGEST, map(_BLAKE2B_32, map(_DUMPS_NUMPY, sealed))))
        hashes = [*hashes, *new_hashes]
        journal_rows = [*journal_rows, *zip(
            id_list, repeat(block_id), repeat(entry_type), repeat(None), repeat(None), repeat(None), worker_list,
            repeat(None), total_list, repeat(None), repeat(None), repeat(month), repeat(month),
            repeat(rules_version_id), repeat(None), map(_KEPT, new_hashes), *[repeat(None)] * len(COMPACT_COLUMNS))]
        nonzero = paid.ravel()  # worker by worker, scheme by scheme: as the legs name the keys
        worker_rows += list(zip(np.repeat(workers, len(scheme_codes))[nonzero].tolist(), repeat(month),
                                np.tile(codes, count)[nonzero].tolist(), repeat(0), repeat(0), repeat(0),
                                amounts.ravel()[nonzero].tolist()))
    entries = len(leading) + count
    return _finish_block(conn, block_id, head, hashes, entries, first_entry_id if entries else None,
                         first_entry_id + entries - 1 if entries else None, recorded_at, posting_rows, journal_rows,
                         set(map(_booking_month_of, journal_rows)), worker_rows,
                         worker_keys_present=worker_keys_present)


def _finish_block(conn: Connection, block_id: int, head: tuple[bytes, int], hashes: Sequence[bytes], count: int,
                  first_id: int | None, last_id: int | None, recorded_at: str, posting_rows: Sequence[tuple],
                  journal_rows: Sequence[tuple], months: set[int], worker_rows: list[tuple], *,
                  seal_version: int = SEAL_VERSION, platform_rows: list[tuple] | None = None,
                  worker_keys_present: set | None = None) -> BlockWritten:
    """The block's hash, then its postings, journal rows, block row, chain head and aggregates.

    `worker_rows` are `(worker, month, scheme, platform or 0, worker_vnd, platform_vnd, subsidy_vnd)`
    deltas, one per key, in the order the legs first named them. `platform_rows`, when the caller
    summed them already (`write_compact_block`), are the `(platform, month, scheme, worker_vnd,
    platform_vnd)` this function would add up from `worker_rows`, in the same order.
    """
    prev_hash, block_count = head
    marks, identity = _identity_to_seal(conn, block_count, seal_version)
    sealed_block = block_hash(prev_hash, block_id, hashes, seal_version=seal_version, marks=marks, identity=identity)
    if platform_rows is None:
        # What each platform owes: the worker- and platform-party credits of its events (platform id 0 = none).
        platform_delta: dict[tuple[int, int, int], list[int]] = {}
        for _worker_id, month, scheme, platform_id, worker_vnd, platform_vnd, _subsidy in worker_rows:
            if platform_id:
                by_platform = platform_delta.get((platform_id, month, scheme))
                if by_platform is None:
                    platform_delta[(platform_id, month, scheme)] = [worker_vnd, platform_vnd]
                else:
                    by_platform[0] += worker_vnd
                    by_platform[1] += platform_vnd
        platform_rows = [(*key, *values) for key, values in platform_delta.items()]
    # Postings first: the journal's guard checks they balance when the entry row lands.
    insert_rows(conn, "posting", POSTING_COLUMNS, posting_rows, binary=True)
    # Partitioned books (PostgreSQL, docs/scale.md): every row lands in its month's partition.
    ensure_month_partitions(conn, months)
    # PostgreSQL: binary COPY (half the client's CPU for these rows; every value is its column's type)
    insert_rows(conn, "journal", JOURNAL_COLUMNS, journal_rows, binary=True)
    _append_block(conn, block_id, prev_hash, sealed_block, count, first_id, last_id, recorded_at, seal_version, marks,
                  worker_rows, platform_rows, worker_keys_present)
    return BlockWritten(block_id, first_id, last_id, sealed_block)


def _append_block(conn: Connection, block_id: int, prev_hash: bytes, sealed_block: bytes, count: int,
                  first_id: int | None, last_id: int | None, recorded_at: str, seal_version: int,
                  marks: Sequence[int], worker_rows: list[tuple], platform_rows: list[tuple],
                  worker_keys_present: set | None = None) -> None:
    """After a block's journal rows: the block row, the chain head and the aggregate deltas
    (`worker_keys_present`: as in `write_block`)."""
    insert_rows(conn, "block", ("id", "prev_hash", "block_hash", "entry_count", "first_entry_id",
                                "last_entry_id", "recorded_at", "seal_version",
                                *[mark for mark, _columns in SEALED_TABLES.values()][:len(marks)]),
                [(block_id, prev_hash, sealed_block, count, first_id, last_id, recorded_at, seal_version, *marks)])
    execute_many(conn, "UPDATE ledger_state SET chain_head_hash = ?, block_count = ? WHERE id = 1",
                 [(sealed_block, block_id)])
    if worker_keys_present is not None:
        present = worker_keys_present
        insert_rows(conn, "worker_month", WORKER_MONTH_COLUMNS,
                    [row for row in worker_rows if row[:4] not in present], binary=True)
        worker_rows = [row for row in worker_rows if row[:4] in present]
    add_to_rows(conn, "worker_month", WORKER_MONTH_COLUMNS[:4], WORKER_MONTH_COLUMNS[4:], worker_rows)
    add_to_rows(conn, "platform_month", ("platform_id", "month", "scheme"), ("worker_vnd", "platform_vnd"),
                platform_rows)


#: Journal rows per statement batch handed to a `BlockWriter` (a multiple of the SQLite rows per INSERT).
WRITE_PART_ROWS = 2_500
#: Blocks of at least this many compact entries are written by a `BlockWriter` thread; 0, the
#: default, never: on the shared 2-core machine it gained nothing measurable (docs/performance.md,
#: "Issue 15, items 1 and 4"). `ANSINH_BLOCK_WRITER_MIN_ROWS=5000` turns it on, e.g. to measure it
#: where a core is free.
OVERLAP_MIN_ROWS = int(os.environ.get("ANSINH_BLOCK_WRITER_MIN_ROWS", "0") or 0)


def block_writer(count: int) -> "BlockWriter | None":
    """A `BlockWriter` for a block of `count` compact entries, or None when it is too small for one."""
    return BlockWriter() if OVERLAP_MIN_ROWS and count >= OVERLAP_MIN_ROWS else None


class BlockWriter:
    """A thread that runs one block's inserts in order while the caller builds the next rows.

    `sqlite3` and psycopg release the GIL while the database works, so the journal rows of part
    k are inserted while the caller hashes part k + 1 (`write_compact_block`), and the block's
    last inserts while the caller builds the batch's outcomes (`ledger.ingest`). The same
    connection and transaction as the caller's: between the first `submit` and `wait` (or
    `abandon`) the caller must not use the connection, and must call one of them before it
    commits or rolls back. The statements run in the order submitted; after one fails the rest
    are skipped and `wait` raises its error (the caller's transaction then rolls back whole).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread: threading.Thread | None = threading.Thread(target=self._run, name="ansinh-block-writer",
                                                                 daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._abandoned:
                function, args = job
                try:
                    function(*args)
                except BaseException as error:  # noqa: BLE001 - the caller's to raise, in its thread
                    self._error = error

    def submit(self, function, *args) -> None:
        """Run `function(*args)` after everything submitted before it."""
        if self._error is not None:  # stop building what will not be written
            self.wait()
        self._jobs.put((function, args))

    def wait(self) -> None:
        """Until everything submitted ran; raises the first error of it, if any."""
        if self._thread is not None:
            self._jobs.put(None)
            try:
                self._thread.join()
            except BaseException:  # Ctrl-C while waiting: the connection is the thread's until it stops,
                self._abandoned = True  # so nothing may roll back beneath it; it skips what is left
                self._thread.join()
                raise
            finally:
                if not self._thread.is_alive():
                    self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def abandon(self) -> None:
        """`wait` on a path that is already failing: what is not yet run is skipped, and the
        thread's own error, if any, is dropped."""
        self._abandoned = True
        try:
            self.wait()
        except BaseException:  # noqa: BLE001 - the caller is raising its own error
            pass


class CompactEntries(NamedTuple):
    """Events and refunds of one block as columns, in entry-id order: what `write_compact_block` writes.

    `legs` is the (n, 6) int64 matrix of each entry's six share legs, signed as postings
    (− credit), in `SHARE_COLUMNS` order; the platform receivable is minus their sum.
    `occurred_us` and `booking_month` are int64 arrays; the other columns are lists.
    """
    entry_type: list[int]
    platform_id: list[int]
    event_id: list[str]
    payload_hash: list[bytes]
    worker_id: list[int]
    kind: list[int]
    amount_vnd: list[int]
    occurred_us: np.ndarray
    occurred_month: list[int]
    booking_month: np.ndarray
    rules_version_id: list[int | None]
    original_entry_id: list[int | None]
    legs: np.ndarray


def write_compact_block(conn: Connection, entries: CompactEntries, *, recorded_at: str, head: tuple[bytes, int],
                        first_entry_id: int, writer: BlockWriter | None = None) -> BlockWritten:
    """`write_block` for a block of compact entries given as columns (the ingest's): the same rows,
    hashes and aggregates, built by column operations instead of a Python loop per entry.

    Each entry's hash is `entry_hash` of the same fields and legs (`compact_legs` order), so
    `verify` recomputes it from the row as for any compact entry.

    The journal rows are built and inserted `WRITE_PART_ROWS` at a time, the inserts on a
    `BlockWriter` thread while the next part is hashed (blocks of `OVERLAP_MIN_ROWS` or more; the
    same statements in the same order, in the caller's transaction). With the caller's `writer`
    the block's inserts are only submitted to it: the caller `wait`s for them before it uses the
    connection again (the ingest builds the outcomes meanwhile). Without, they are done on return.
    """
    count = len(entries.event_id)
    if not count:
        if writer is not None:
            writer.wait()
        return write_block(conn, [], recorded_at=recorded_at, head=head, first_entry_id=first_entry_id)
    own = writer is None
    if own:
        writer = block_writer(count)
    try:
        written = _write_compact(conn, entries, recorded_at, head, first_entry_id, count, writer)
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if own and writer is not None:
        writer.wait()
    return written


def _write_compact(conn: Connection, entries: CompactEntries, recorded_at: str, head: tuple[bytes, int],
                   first_entry_id: int, count: int, writer: BlockWriter | None) -> BlockWritten:
    prev_hash, block_count = head
    block_id = block_count + 1
    run = _now if writer is None else writer.submit
    # Read before any insert is handed over: the writer thread then owns the connection.
    marks, identity = _identity_to_seal(conn, block_count)
    ids = range(first_entry_id, first_entry_id + count)
    legs = np.asarray(entries.legs, dtype=np.int64).reshape(count, len(_SHARE_ACCOUNTS))
    receivable = -legs.sum(axis=1)
    months = entries.booking_month.tolist()
    fields = zip(entries.entry_type, entries.platform_id, entries.event_id, map(bytes.hex, entries.payload_hash),
                 entries.worker_id, entries.kind, entries.amount_vnd, utc_texts(entries.occurred_us),
                 entries.occurred_month, months, entries.rules_version_id, entries.original_entry_id)
    sealed = zip(ids, repeat(block_id), repeat(recorded_at), fields,
                 _hashed_legs(entries.platform_id, entries.worker_id, receivable, legs))
    hashed = map(_DIGEST, map(_BLAKE2B_32, map(_DUMPS_NUMPY, sealed)))
    hashes: list[bytes] = []
    # The journal's columns in JOURNAL_COLUMNS order: lists of plain values, or `Same` for a constant.
    columns = [list(ids), Same(block_id), entries.entry_type, entries.platform_id, entries.event_id,
               entries.payload_hash, entries.worker_id, entries.kind, entries.amount_vnd, Same(None),
               entries.occurred_us.tolist(), entries.occurred_month, months, entries.rules_version_id,
               entries.original_entry_id, Same(None), receivable.tolist(),  # entry_hash: per part, below
               *(_nulls_for_zeros(legs[:, column]) for column in range(legs.shape[1]))]
    kept_at = JOURNAL_COLUMNS.index("entry_hash")
    # Partitioned books (PostgreSQL, docs/scale.md): every row lands in its month's partition.
    run(ensure_month_partitions, conn, set(months))
    part = count if writer is None else WRITE_PART_ROWS
    for start in range(0, count, part):
        rows = min(part, count - start)
        part_hashes = list(islice(hashed, rows))
        hashes += part_hashes
        values = [column if type(column) is Same else column[start:start + rows] for column in columns]
        values[kept_at] = list(map(_KEPT, part_hashes))
        # PostgreSQL: binary COPY (half the client's CPU for these rows; every value is its column's type)
        run(insert_columns, conn, "journal", JOURNAL_COLUMNS, values, rows, True)
    worker_rows, platform_rows = _worker_deltas(entries.worker_id, entries.booking_month, entries.platform_id, legs)
    sealed_block = block_hash(prev_hash, block_id, hashes, seal_version=SEAL_VERSION, marks=marks, identity=identity)
    last_id = first_entry_id + count - 1
    run(_append_block, conn, block_id, prev_hash, sealed_block, count, first_entry_id, last_id, recorded_at,
        SEAL_VERSION, marks, worker_rows, platform_rows)
    return BlockWritten(block_id, first_entry_id, last_id, sealed_block)


def _now(function, *args) -> None:
    function(*args)


def _nulls_for_zeros(column: np.ndarray) -> list | Same:
    """A share column as written: NULL where the entry has no leg on that account (revision 0011:
    PostgreSQL stores no bytes for a NULL, eight for a zero)."""
    if not column.any():
        return Same(None)
    values = column.tolist()
    return values if column.all() else [value or None for value in values]


_DIGEST = methodcaller("digest")
_BLAKE2B_32 = partial(hashlib.blake2b, digest_size=32)
_KEPT = itemgetter(slice(None, ENTRY_HASH_KEPT))
_DUMPS_NUMPY = partial(orjson.dumps, option=orjson.OPT_SERIALIZE_NUMPY)
_PATTERN_BITS = 1 << np.arange(len(_SHARE_ACCOUNTS))


def _hashed_legs(platform_ids: list[int], worker_ids: list[int], receivable: np.ndarray,
                 legs: np.ndarray) -> list:
    """Each entry's `compact_legs` (the platform receivable, then every non-zero share) as a (legs, 5)
    int64 array, built together for the entries whose shares are non-zero in the same places
    (`orjson` with `OPT_SERIALIZE_NUMPY` writes it as the same nested arrays as the tuples);
    `()` for an entry with no legs."""
    count = len(platform_ids)
    pattern = (legs != 0) @ _PATTERN_BITS
    codes = np.flatnonzero(np.bincount(pattern)).tolist()
    if codes == [0]:
        return [()] * count
    platforms, workers = np.asarray(platform_ids, dtype=np.int64), np.asarray(worker_ids, dtype=np.int64)
    built: list = [()] * count
    for code in codes:
        if not code:
            continue
        rows = np.flatnonzero(pattern == code) if len(codes) > 1 else slice(None)
        shares = [column for column in range(len(_SHARE_ACCOUNTS)) if code >> column & 1]
        chosen_workers = workers[rows]
        block = np.empty((len(chosen_workers), 1 + len(shares), 5), dtype=np.int64)
        block[:, 0, 0], block[:, 0, 1], block[:, 0, 2:4], block[:, 0, 4] = _PLATFORM_KIND, platforms[rows], 0, \
            receivable[rows]
        for leg, column in enumerate(shares, start=1):
            scheme, party = _SHARE_ACCOUNTS[column]
            block[:, leg, 0], block[:, leg, 1], block[:, leg, 2], block[:, leg, 3] = _WORKER_KIND, chosen_workers, \
                scheme, party
            block[:, leg, 4] = legs[rows, column]
        if len(codes) == 1:
            return list(block)
        for at, entry_legs in zip(rows.tolist(), block):
            built[at] = entry_legs
    return built


def _worker_deltas(worker_ids: list[int], booking_months: np.ndarray, platform_ids: list[int],
                   legs: np.ndarray) -> tuple[list[tuple], list[tuple]]:
    """`write_block`'s aggregate deltas of compact entries, as columns.

    Worker rows: one per (worker, month, scheme, platform) that a non-zero share names, its
    credits summed, in the order the legs first name the keys (entry by entry, scheme by
    scheme). Platform rows: one per (platform, month, scheme) of those, summed, in the order
    the worker rows first name them — what `_finish_block` would add up from the worker rows.
    """
    count = len(worker_ids)
    schemes = len(_SHARE_ACCOUNTS) // 2
    worker_credit, platform_credit = -legs[:, 0::2], -legs[:, 1::2]  # (n, schemes): credit = − leg
    named = ((worker_credit != 0) | (platform_credit != 0)).ravel()  # entry-major, as the legs come
    if not named.any():
        return [], []
    keys = [np.repeat(np.asarray(worker_ids, dtype=np.int64), schemes)[named],
            np.repeat(np.asarray(booking_months, dtype=np.int64), schemes)[named],
            np.tile(np.arange(1, schemes + 1, dtype=np.int64), count)[named],
            np.repeat(np.asarray(platform_ids, dtype=np.int64), schemes)[named]]
    credits = np.stack((worker_credit.ravel()[named], platform_credit.ravel()[named]), axis=1)
    worker_keys, worker_sums = _summed_by_key(keys, credits)
    worker_rows = list(zip(*(key.tolist() for key in worker_keys), worker_sums[:, 0].tolist(),
                           worker_sums[:, 1].tolist(), repeat(0)))
    owed = worker_keys[3] != 0  # platform id 0: no platform
    platform_keys, platform_sums = _summed_by_key([worker_keys[3][owed], worker_keys[1][owed], worker_keys[2][owed]],
                                                  worker_sums[owed])
    platform_rows = list(zip(*(key.tolist() for key in platform_keys), platform_sums[:, 0].tolist(),
                             platform_sums[:, 1].tolist()))
    return worker_rows, platform_rows


def _summed_by_key(keys: list[np.ndarray], values: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of the key columns, in the order they first appear, and the values summed per key."""
    if not len(values):
        return [key[:0] for key in keys], values
    order = np.lexsort(keys[::-1])  # stable: each key's first row comes first among its equals
    ordered = [key[order] for key in keys]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = np.logical_or.reduce([key[1:] != key[:-1] for key in ordered])
    starts = np.flatnonzero(starts)
    sums = np.add.reduceat(values[order], starts, axis=0)
    by_first = np.argsort(order[starts], kind="stable")  # keys in the order they first appear
    picked = starts[by_first]
    return [key[picked] for key in ordered], sums[by_first]


_YEAR_1000_US = (datetime(1000, 1, 1) - _NAIVE_EPOCH) // _ONE_US
_YEAR_10000_US = (datetime(9999, 12, 31, 23, 59, 59, 999999) - _NAIVE_EPOCH) // _ONE_US + 1
_TEXT_WIDTH = 27  # 'YYYY-MM-DDTHH:MM:SS.ffffffZ'
_TEXT_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 26: "Z"}


def utc_texts(micros: np.ndarray) -> list[str]:
    """`occurred_text` of each value, as columns (a value outside years 1000–9999 one at a time)."""
    micros = np.asarray(micros, dtype=np.int64)
    count = len(micros)
    if not count:
        return []
    if micros.min() < _YEAR_1000_US or micros.max() >= _YEAR_10000_US:
        return [occurred_text(value) for value in micros.tolist()]
    moment = micros.astype("datetime64[us]")
    day = moment.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    months = month.astype(np.int64)
    of_day = (moment - day).astype(np.int64)
    chars = np.empty((count, _TEXT_WIDTH), dtype=np.uint32)
    for at, width, value in ((0, 4, months // 12 + 1970), (5, 2, months % 12 + 1),
                             (8, 2, (day - month.astype("datetime64[D]")).astype(np.int64) + 1),
                             (11, 2, of_day // 3_600_000_000), (14, 2, of_day // 60_000_000 % 60),
                             (17, 2, of_day // 1_000_000 % 60), (20, 6, of_day % 1_000_000)):
        for place in range(width):
            chars[:, at + place] = value // 10 ** (width - 1 - place) % 10 + 48
    for at, separator in _TEXT_SEPARATORS.items():
        chars[:, at] = ord(separator)
    return chars.view(f"<U{_TEXT_WIDTH}").ravel().tolist()


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
    """The id the next journal entry gets (the caller holds the writer's lock): after the last id of
    the journal and of every block (an archived month's entries are no longer in the journal)."""
    return (query(conn, "SELECT coalesce(max(last), 0) FROM (SELECT max(id) AS last FROM journal "
                        "UNION ALL SELECT max(last_entry_id) FROM block) AS ids")[0][0] or 0) + 1

"""Where postings are written: one function turns new entries into rows, in one block.

Every entry point (ingest, month close) hands `write_block` a list of `NewEntry`.
It assigns entry ids, checks each entry balances (in Python, before the database
checks it again), hashes each entry and chains the block to the previous one, then
appends postings, journal rows, the block and the aggregate deltas in the caller's
transaction. Nothing here updates or deletes a journal or posting row.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import NamedTuple, Sequence

import orjson
from sqlalchemy import Connection

from ledger.accounts import PARTY_CODE, AccountKind
from ledger.store import execute_many, insert_rows, query

JOURNAL_COLUMNS = (
    "id", "block_id", "entry_type", "platform_id", "event_id", "payload_hash", "worker_id", "kind",
    "amount_vnd", "occurred_at", "occurred_month", "booking_month", "recorded_at", "rules_version_id",
    "original_entry_id", "entry_hash",
)
POSTING_COLUMNS = ("entry_id", "leg", "account_kind", "owner_id", "scheme", "party", "amount_vnd")
_WORKER, _PLATFORM_PARTY, _STATE_PARTY = PARTY_CODE["worker"], PARTY_CODE["platform"], PARTY_CODE["state"]


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


def entry_hash(entry_id: int, block_id: int, recorded_at: str, entry: NewEntry | Sequence) -> bytes:
    """The hash that seals one entry: every journal column and every leg."""
    fields = list(entry[:12])
    if fields[3] is not None:
        fields[3] = bytes(fields[3]).hex()
    legs = [list(leg) for leg in entry[12]]
    material = orjson.dumps([entry_id, block_id, recorded_at, fields, legs])
    return hashlib.blake2b(material, digest_size=32).digest()


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


def write_block(conn: Connection, entries: Sequence[NewEntry], *, recorded_at: str,
                head: tuple[bytes, int]) -> BlockWritten:
    """Append `entries` as one block. The caller holds the writer's lock (`lock_chain_head`)."""
    prev_hash, block_count = head
    block_id = block_count + 1
    next_id = (query(conn, "SELECT coalesce(max(id), 0) FROM journal")[0][0] or 0) + 1
    first_id = next_id if entries else None
    journal_rows: list[tuple] = []
    posting_rows: list[tuple] = []
    hashes: list[bytes] = []
    worker_delta: dict[tuple[int, int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    platform_delta: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0, 0])
    worker_kind = AccountKind.worker
    for entry in entries:
        entry_id = next_id
        next_id += 1
        total = 0
        month = entry.booking_month
        platform_id = entry.platform_id
        for leg_number, leg in enumerate(entry.legs):
            amount = leg.amount_vnd
            total += amount
            posting_rows.append((entry_id, leg_number, int(leg.account_kind), leg.owner_id, int(leg.scheme),
                                 int(leg.party), amount))
            if leg.account_kind == worker_kind:
                credit = -amount
                slot = worker_delta[(leg.owner_id, month, leg.scheme, platform_id or 0)]
                if leg.party == _WORKER:
                    slot[0] += credit
                    if platform_id is not None:
                        platform_delta[(platform_id, month, leg.scheme)][0] += credit
                elif leg.party == _PLATFORM_PARTY:
                    slot[1] += credit
                    if platform_id is not None:
                        platform_delta[(platform_id, month, leg.scheme)][1] += credit
                else:
                    slot[2] += credit
        if total != 0:
            raise UnbalancedEntry(f"entry {entry_id} ({entry.event_id}) legs sum to {total}")
        sealed = entry_hash(entry_id, block_id, recorded_at, entry)
        hashes.append(sealed)
        journal_rows.append((entry_id, block_id, int(entry.entry_type), *entry[1:10], recorded_at, *entry[10:12], sealed))
    sealed_block = block_hash(prev_hash, block_id, hashes)
    # Postings first: the journal's guard checks they balance when the entry row lands.
    insert_rows(conn, "posting", POSTING_COLUMNS, posting_rows)
    insert_rows(conn, "journal", JOURNAL_COLUMNS, journal_rows)
    insert_rows(conn, "block", ("id", "prev_hash", "block_hash", "entry_count", "first_entry_id",
                                "last_entry_id", "recorded_at"),
                [(block_id, prev_hash, sealed_block, len(entries), first_id,
                  next_id - 1 if entries else None, recorded_at)])
    execute_many(conn, "UPDATE ledger_state SET chain_head_hash = ?, block_count = ? WHERE id = 1",
                 [(sealed_block, block_id)])
    execute_many(
        conn,
        "INSERT INTO worker_month (worker_id, month, scheme, platform_id, worker_vnd, platform_vnd, subsidy_vnd) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (worker_id, month, scheme, platform_id) DO UPDATE SET "
        "worker_vnd = worker_month.worker_vnd + excluded.worker_vnd, "
        "platform_vnd = worker_month.platform_vnd + excluded.platform_vnd, "
        "subsidy_vnd = worker_month.subsidy_vnd + excluded.subsidy_vnd",
        [(*key, *values) for key, values in worker_delta.items()],
    )
    execute_many(
        conn,
        "INSERT INTO platform_month (platform_id, month, scheme, worker_vnd, platform_vnd) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform_id, month, scheme) DO UPDATE SET "
        "worker_vnd = platform_month.worker_vnd + excluded.worker_vnd, "
        "platform_vnd = platform_month.platform_vnd + excluded.platform_vnd",
        [(*key, *values) for key, values in platform_delta.items()],
    )
    return BlockWritten(block_id, first_id, next_id - 1 if entries else None, sealed_block)

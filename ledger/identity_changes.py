"""Changes of a worker's identity data, as new audited records, never an UPDATE of the worker row.

A platform that sent a mistyped national id (CCCD) booked a person's contributions under a
number that is not theirs. The worker row, and every entry naming it, stay as written (the
chain seals them); `correct_national_id` records a `worker_identity_change` of kind
`corrected_id`: the right number (pseudonym, and encrypted for the exports) now resolves to
the same worker, so the person's later events join their history. The record is sealed
into the chain at once by an empty block, like any identity row (docs/invariants.md).
"""
from __future__ import annotations

from ledger.books import Ledger, iso_utc
from ledger.identity import is_valid_national_id, masked
from ledger.postings import SEALED_TABLES, row_seal, write_block
from ledger.store import insert_rows, lock_chain_head, query


class IdentityChangeError(Exception):
    """A change that cannot be recorded (the message names no raw national id)."""


def _resolve(conn, pseudonym: str) -> int | None:
    rows = query(conn, "SELECT id FROM worker WHERE pseudonym = ?", (pseudonym,)) or query(
        conn, "SELECT worker_id FROM worker_identity_change WHERE pseudonym = ?", (pseudonym,))
    return int(rows[0][0]) if rows else None


def correct_national_id(ledger: Ledger, wrong_id: str, right_id: str, reason: str) -> int:
    """Record that the worker booked under `wrong_id` is the person `right_id`; return the worker id."""
    if not reason.strip():
        raise IdentityChangeError("say why the national id is corrected (--reason): the record is audited")
    if not is_valid_national_id(right_id, 9999):
        raise IdentityChangeError(f"the corrected national id {masked(right_id)} is not a valid CCCD")
    recorded_at = iso_utc(ledger.clock())
    with ledger.engine.begin() as conn:
        head = lock_chain_head(conn)
        worker_id = _resolve(conn, ledger.keys.pseudonym(wrong_id))
        if worker_id is None:
            raise IdentityChangeError(f"no worker is booked under national id {masked(wrong_id)}")
        right = ledger.keys.pseudonym(right_id)
        already = _resolve(conn, right)
        if already is not None:
            raise IdentityChangeError(f"national id {masked(right_id)} already belongs to worker {already}: "
                                      "two workers of one person are merged, not corrected")
        change_id = (query(conn, "SELECT coalesce(max(id), 0) FROM worker_identity_change")[0][0] or 0) + 1
        columns = SEALED_TABLES["worker_identity_change"][1]
        row = (change_id, "corrected_id", worker_id, right, ledger.keys.encrypt(right_id), None, reason.strip(),
               recorded_at)
        insert_rows(conn, "worker_identity_change", (*columns, "seal"), [(*row, row_seal("worker_identity_change", row))])
        write_block(conn, [], recorded_at=recorded_at, head=head)  # seals the record into the chain now
    return worker_id

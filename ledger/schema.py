"""The tables of the books, and the database rules that guard them.

Tables are SQLModel classes (typed rows other layers can read); the ledger writes
them in bulk through `ledger.store`. The invariants the database enforces itself,
whatever code talks to it:

- `append_only`: journal, posting, block, month_close, household_tier and
  rules_version refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL); so do worker,
  platform, worker_identity_change and key_check since revision 0006, and
  credited_month since revision 0009.
- `entries_balance`: a journal row is accepted only when its postings, written just
  before it in the same transaction, sum to zero; postings of a recorded entry
  cannot be added to afterwards.
- `closed_months_frozen`: no journal row may be booked into a closed month.

Aggregates (`worker_month`, `platform_month`) are the only rows that change; they
are derivable from the postings, and `ansinh verify` rebuilds and compares them.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# The names below are defined in ledger/layout.py (plain SQL, no SQLModel: the read and write paths
# import them without building these classes) and re-exported here for the migrations.
from ledger.layout import (  # noqa: F401
    ACCESS_TABLES, AGGREGATE_FILLFACTOR, APPEND_ONLY_TABLES, ARCHIVED_MONTH_TABLE,
    COMPACT_BALANCE_CHECK, COMPACT_COLUMNS, COMPACT_SUM, CREDIT_TABLES, EVENT_KEY_FUNCTION,
    EVENT_KEY_TABLE, IDENTITY_TABLES, LEGS_VIEW, MONEY_TABLES, NULLABLE_COMPACT_BALANCE_CHECK,
    PARTITION_TRIGGERS, POSTGRES_COMPACT_CHECK, POSTGRES_COMPACT_PARTITION_FUNCTION,
    POSTGRES_DIGEST_JOURNAL_GUARD, POSTGRES_GUARDS, POSTGRES_JOURNAL_GUARD,
    POSTGRES_NULLABLE_COMPACT_CHECK, POSTGRES_PARTITIONED_JOURNAL_GUARD, POSTGRES_PARTITION_FUNCTION,
    POSTGRES_RECREATE_EMPTY_PARTITIONS, SEALED_BY_0006, SHARES_READ, SHARE_COLUMNS, SQLITE_GUARDS,
    SQLITE_JOURNAL_GUARDS, SQLITE_MONTH_WORKER_INDEX, SQLITE_NULLABLE_COMPACT_GUARD,
    STREAM_TABLE_STATEMENTS, WORKER_MONTH_INDEX, append_only_statements, compact_guard_statements,
    digest_event_key_statements, guard_statements, partitioned_journal_statements)


class Platform(SQLModel, table=True):
    __tablename__ = "platform"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(sa_type=Text, unique=True)
    #: `ledger.postings.row_seal` of the row (revision 0006); sealed into the chain by a block
    seal: Optional[bytes] = Field(default=None, sa_type=LargeBinary)


class Worker(SQLModel, table=True):
    """One person, whichever platforms they work for; keyed by a pseudonym, never the raw id."""

    __tablename__ = "worker"
    id: Optional[int] = Field(default=None, primary_key=True)
    pseudonym: str = Field(sa_type=Text, unique=True)
    national_id_encrypted: bytes = Field(sa_type=LargeBinary)
    province: str = Field(sa_type=Text)
    birth_year: int
    sex: str = Field(sa_type=Text)
    seal: Optional[bytes] = Field(default=None, sa_type=LargeBinary)  # row_seal (revision 0006)


class RulesVersionRow(SQLModel, table=True):
    """Each rules version that produced a number in the books, stored whole."""

    __tablename__ = "rules_version"
    id: Optional[int] = Field(default=None, primary_key=True)
    version_id: str = Field(sa_type=Text, unique=True)
    pack: str = Field(sa_type=Text)
    effective_from: str = Field(sa_type=Text)
    document_json: str = Field(sa_type=Text)
    seal: Optional[bytes] = Field(default=None, sa_type=LargeBinary)  # row_seal (revision 0006)


class JournalEntry(SQLModel, table=True):
    """One entry per accepted event, refund or subsidy; immutable."""

    __tablename__ = "journal"
    __table_args__ = (
        UniqueConstraint("platform_id", "event_id", name="journal_event_key"),
        # One index for a month's entries and a worker's entries of a month, in id order (the
        # per-trip record, ledger/trips.py): the rowid (the id) ends every SQLite index entry.
        # Revision 0011 made it serve both (it replaced `journal_booking_month`); PostgreSQL's is
        # per month partition and names the id (`WORKER_MONTH_INDEX`).
        Index("journal_worker_month", "booking_month", "worker_id"),
        Index("journal_original", "original_entry_id", postgresql_where=text("original_entry_id IS NOT NULL"),
              sqlite_where=text("original_entry_id IS NOT NULL")),
    )
    # On SQLite the id is the rowid itself (INTEGER PRIMARY KEY): no second copy, no separate key index.
    id: int = Field(sa_type=BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                    sa_column_kwargs={"autoincrement": False})
    block_id: int = Field(sa_type=BigInteger)
    entry_type: int = Field(sa_type=SmallInteger)
    platform_id: Optional[int] = None
    event_id: Optional[str] = Field(default=None, sa_type=Text)
    payload_hash: Optional[bytes] = Field(default=None, sa_type=LargeBinary)
    worker_id: Optional[int] = None
    kind: Optional[int] = Field(default=None, sa_type=SmallInteger)
    amount_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    occurred_at: Optional[str] = Field(default=None, sa_type=Text)
    occurred_month: Optional[int] = None
    booking_month: int
    # Rows written since revision 0007 leave `recorded_at` to their block (the same for every entry
    # of a block) and keep `occurred_at` as microseconds since 1970 UTC (`occurred_us`); the hash
    # covers the same text as before (`ledger.postings.occurred_text`). Older rows keep their text.
    recorded_at: Optional[str] = Field(default=None, sa_type=Text)
    occurred_us: Optional[int] = Field(default=None, sa_type=BigInteger)
    rules_version_id: Optional[int] = None
    original_entry_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    entry_hash: bytes = Field(sa_type=LargeBinary)
    # The compact layout (revision 0007, docs/accounts.md): an event or refund carries its legs in
    # its own row — the platform receivable and the six worker shares, + debit / − credit — and has
    # no `posting` rows. NULL for the multi-leg entries (subsidy, claims, payments, interest). A
    # share with no leg is 0 in rows written before revision 0011 and NULL since (no bytes on
    # PostgreSQL); readers take either as 0 (`SHARES_READ`, `COMPACT_SUM`).
    receivable_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    si_worker_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    si_platform_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    oa_worker_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    oa_platform_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    ui_worker_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)
    ui_platform_vnd: Optional[int] = Field(default=None, sa_type=BigInteger)


class Posting(SQLModel, table=True):
    """One leg of a multi-leg entry: + debit, − credit, in VND. Account = (account_kind, owner_id, scheme).

    Events and refunds keep their legs in their journal row (the compact layout); every leg
    of the books, both kinds, is the view `legs` (`LEGS_VIEW`).
    """

    __tablename__ = "posting"
    __table_args__ = {"sqlite_with_rowid": False}
    entry_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    leg: int = Field(sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    account_kind: int = Field(sa_type=SmallInteger)
    owner_id: int = Field(sa_type=BigInteger)
    scheme: int = Field(sa_type=SmallInteger)
    party: int = Field(sa_type=SmallInteger)
    amount_vnd: int = Field(sa_type=BigInteger)


class Block(SQLModel, table=True):
    """A committed batch of entries; each block's hash chains to the one before."""

    __tablename__ = "block"
    id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    prev_hash: bytes = Field(sa_type=LargeBinary)
    block_hash: bytes = Field(sa_type=LargeBinary)
    entry_count: int
    first_entry_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    last_entry_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    recorded_at: str = Field(sa_type=Text)
    #: 0: the hash of revisions 0001–0005 (entries only); 1: it also covers the identity rows
    #: sealed by this block, those with ids up to the `last_*_id` below (docs/invariants.md)
    seal_version: int = Field(default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": "0"})
    last_worker_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    last_platform_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    last_rules_version_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    last_identity_change_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    #: seal version 2 (revision 0009): the last `credited_month` row sealed by this block
    last_credit_id: Optional[int] = Field(default=None, sa_type=BigInteger)


class WorkerMonth(SQLModel, table=True):
    """Aggregate per (worker, booking month, scheme, platform); rebuilt and compared by verify.

    platform_id 0 holds the state's subsidy. A statement reads one worker's rows only.
    """

    __tablename__ = "worker_month"
    __table_args__ = {"sqlite_with_rowid": False}
    worker_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    scheme: int = Field(sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    platform_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    worker_vnd: int = Field(default=0, sa_type=BigInteger)
    platform_vnd: int = Field(default=0, sa_type=BigInteger)
    subsidy_vnd: int = Field(default=0, sa_type=BigInteger)


class PlatformMonth(SQLModel, table=True):
    """Aggregate per (platform, booking month, scheme): what the platform owes."""

    __tablename__ = "platform_month"
    __table_args__ = {"sqlite_with_rowid": False}
    platform_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    scheme: int = Field(sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    worker_vnd: int = Field(default=0, sa_type=BigInteger)
    platform_vnd: int = Field(default=0, sa_type=BigInteger)


class HouseholdTier(SQLModel, table=True):
    """Household status history; never overwritten, the latest valid_from wins."""

    __tablename__ = "household_tier"
    __table_args__ = (Index("household_tier_worker", "worker_id", "valid_from_month"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    worker_id: int
    tier: str = Field(sa_type=Text)
    valid_from_month: int
    import_id: str = Field(sa_type=Text)
    recorded_at: str = Field(sa_type=Text)


class MonthClose(SQLModel, table=True):
    __tablename__ = "month_close"
    month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    closed_at: str = Field(sa_type=Text)
    rules_version_id: int
    subsidy_entries: int
    subsidy_total_vnd: int = Field(sa_type=BigInteger)
    last_entry_id: int = Field(sa_type=BigInteger)
    anchor_hash: bytes = Field(sa_type=LargeBinary)
    #: household statuses with a larger id were recorded after the close and do not apply to it
    last_tier_id: int = Field(default=0, sa_type=BigInteger)


class CreditedMonth(SQLModel, table=True):
    """A month credited to a worker towards a pension (RULES.md §11), by the close of `close_month`.

    Append-only, sealed into the hash chain (seal version 2); `verify` re-runs every close's
    crediting over the aggregates and compares (`credits_match_rules`).
    """

    __tablename__ = "credited_month"
    __table_args__ = (UniqueConstraint("worker_id", "month", name="credited_month_once"),
                      Index("credited_month_close", "close_month"))
    id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    worker_id: int = Field(sa_type=BigInteger)
    month: int  # the month credited (YYYYMM)
    close_month: int  # the close that credited it (YYYYMM, ≥ month)
    floor_vnd: int = Field(sa_type=BigInteger)  # floor(month) the pool paid for it
    seal: Optional[bytes] = Field(default=None, sa_type=LargeBinary)  # row_seal


class LedgerState(SQLModel, table=True):
    """One row: the chain head. Locked by every writer, so blocks chain in commit order."""

    __tablename__ = "ledger_state"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    chain_head_hash: bytes = Field(sa_type=LargeBinary)
    block_count: int = Field(sa_type=BigInteger)


class PlatformKey(SQLModel, table=True):
    """A platform's API signing key. The secret itself is never stored (see api/keys.py)."""

    __tablename__ = "platform_key"
    key_id: str = Field(sa_type=Text, primary_key=True)
    platform: str = Field(sa_type=Text, index=True)
    created_at: str = Field(sa_type=Text)
    retires_at: Optional[str] = Field(default=None, sa_type=Text)
    revoked_at: Optional[str] = Field(default=None, sa_type=Text)
    secret_sha256: str = Field(sa_type=Text)


class SeenSignature(SQLModel, table=True):
    """Signatures accepted within the replay window; a second use is refused."""

    __tablename__ = "seen_signature"
    signature: str = Field(sa_type=Text, primary_key=True)
    seen_at: int = Field(sa_type=BigInteger, index=True)


class MoneyRecord(SQLModel, table=True):
    """The money side of settlement (ledger/money.py), one append-only row per document or payment.

    `kind` is `bill` (a platform's dues for a closed month), `claim` (the state's subsidy
    for a closed month, one row per scheme), `interest` (late-payment interest charged at a
    close) or `payment` (money received). `payer_id` is the platform's row id, 0 for the
    state budget. Rows are replayed in id order to allocate payments (docs/payments.md).
    """

    __tablename__ = "money_record"
    __table_args__ = (Index("money_record_payer", "payer_id", "id"),)
    id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(sa_type=Text)
    payer_id: int
    month: Optional[int] = None
    scheme: int = Field(default=0, sa_type=SmallInteger)
    amount_vnd: int = Field(sa_type=BigInteger)
    issued_on: str = Field(sa_type=Text)  # bills, claims, interest: the day of the close; payments: value date
    due_on: Optional[str] = Field(default=None, sa_type=Text)
    reference: Optional[str] = Field(default=None, sa_type=Text)  # bill/claim reference, or a payment's memo
    bank_ref: Optional[str] = Field(default=None, sa_type=Text, unique=True)
    bill_id: Optional[int] = Field(default=None, sa_type=BigInteger)  # interest: the bill it is charged on
    days: Optional[int] = None  # interest: overdue days in the month
    entry_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    recorded_at: str = Field(sa_type=Text)


class MoneyClose(SQLModel, table=True):
    """What the money side of a month close saw: the last money record it replayed."""

    __tablename__ = "money_close"
    month: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_record_id: int = Field(sa_type=BigInteger)
    bills_vnd: int = Field(sa_type=BigInteger)
    claims_vnd: int = Field(sa_type=BigInteger)
    interest_vnd: int = Field(sa_type=BigInteger)


class WorkerIdentityChange(SQLModel, table=True):
    """A change of a worker's identity data, recorded, never an UPDATE of the worker row.

    `corrected_id`: the worker's national id was wrong; `pseudonym` and
    `national_id_encrypted` are those of the right one, which from now on resolves to
    `worker_id` (and is the id exported for the worker). `merged`: worker
    `merged_worker_id` is the same person as `worker_id`; the pseudonym of its id now
    resolves to `worker_id` (its past entries stay where they were booked).
    """

    __tablename__ = "worker_identity_change"
    id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(sa_type=Text)
    worker_id: int = Field(sa_type=BigInteger, index=True)
    pseudonym: str = Field(sa_type=Text, unique=True)
    national_id_encrypted: Optional[bytes] = Field(default=None, sa_type=LargeBinary)
    merged_worker_id: Optional[int] = Field(default=None, sa_type=BigInteger)
    reason: str = Field(sa_type=Text)
    recorded_at: str = Field(sa_type=Text)
    seal: Optional[bytes] = Field(default=None, sa_type=LargeBinary)


class KeyCheck(SQLModel, table=True):
    """A key check value per key the books were written with (`ledger.identity.key_check_value`).

    Generic: one row per key id (`pseudonym/v1`, `encryption/v1`, later `tokens/v2`, …).
    Opening the books with a secret whose key gives another value is refused.
    """

    __tablename__ = "key_check"
    key_id: str = Field(sa_type=Text, primary_key=True)
    check_value: str = Field(sa_type=Text)
    recorded_at: str = Field(sa_type=Text)

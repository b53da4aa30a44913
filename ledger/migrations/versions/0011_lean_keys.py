"""Fewer bytes per booked event: one month index on SQLite, a digest idempotency key on PostgreSQL.

SQLite: `journal_booking_month` (booking_month) and `journal_worker_month` (worker_id,
booking_month) become one index, `journal_worker_month` on (booking_month, worker_id): the
rowid ends each entry, so one seek still reads a worker's month in id order (the per-trip
record), and a month's rows are found by the same index (−13 bytes an event). A month read
in id order scans the rowid range between the month's first and last entry
(`ledger.store.month_rows`) rather than sorting.

PostgreSQL: `event_key` holds a 16-byte digest of (platform_id, event_id) as a `uuid`
(`ansinh_event_key`, in the database) instead of the text, with the entry and its month as
before (−33 bytes an event); the journal guard writes the digests. The rows of every month,
archived ones included, are carried over from the old table (its text is what they are
computed from), so a redelivered event of any month is still a duplicate. `worker_month` and
`platform_month` get a fill factor that leaves room for in-page (HOT) updates.

Both: a share with no leg is written NULL from now on instead of 0 (PostgreSQL stores no
bytes for a NULL: −24 bytes for a ride with three shares); the balance guard (SQLite's
trigger, PostgreSQL's CHECK) and every reader take NULL as 0. Rows written before keep
their zeros.

Nothing a hash covers changes: no journal row is touched, `verify` runs as before.

Revision ID: 0011
Revises: 0010
"""
from alembic import op

from ledger.schema import SQLITE_MONTH_WORKER_INDEX, SQLITE_NULLABLE_COMPACT_GUARD, digest_event_key_statements

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # every PostgreSQL book has `event_key` since revision 0008
        for statement in digest_event_key_statements():
            op.execute(statement)
        return
    op.execute("DROP INDEX IF EXISTS journal_booking_month")
    columns = [row[2] for row in bind.exec_driver_sql("PRAGMA index_info(journal_worker_month)")]
    if columns != ["booking_month", "worker_id"]:  # books of 0010 (fresh books have it from 0001)
        op.execute("DROP INDEX IF EXISTS journal_worker_month")
        op.execute(SQLITE_MONTH_WORKER_INDEX)
    for statement in SQLITE_NULLABLE_COMPACT_GUARD:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the books are append-only: the idempotency keys are not written back as text")

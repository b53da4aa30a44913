"""The per-trip record's index: a worker's journal entries of a month, in id order.

`journal_worker_month` on (worker_id, booking_month[, id]): `ledger.trips.worker_events` reads
one page of a worker's month with one index seek, and the next page seeks again after the last
id (keyset pages, never OFFSET), so the first and the deepest page cost the same at any size
of the books (benchmarks/trips.py). SQLite's index entries end in the rowid, which is the id;
PostgreSQL's name it, on the partitioned parent, so every partition — present, created ahead
by a close, or attached again from an archive — has its own.

Books created by revision 0001 since this revision already have it (`ledger.schema` declares
it on the journal); the statement is `IF NOT EXISTS`. Nothing stored changes: no hash, no row.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

from ledger.schema import WORKER_MONTH_INDEX

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(WORKER_MONTH_INDEX[op.get_bind().dialect.name])


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS journal_worker_month")

"""The journal partitioned by booking month (PostgreSQL); the idempotency key in `event_key`.

PostgreSQL: `journal` becomes `PARTITION BY RANGE (booking_month)`, one partition per month
present (`journal_YYYYMM`) plus `journal_default`, primary key (id, booking_month); the
(platform_id, event_id) key, which a partitioned table cannot keep unique without the month,
moves to the unpartitioned table `event_key`, written by the journal guard (docs/scale.md).
Rows move unchanged (same ids, same hashes), so `verify` after the upgrade proves them intact.
The guards, the CHECK `compact_entries_balance` and the view `legs` are recreated.

SQLite: nothing changes (one file, one journal).

Revision ID: 0008
Revises: 0007
"""
from alembic import op

from ledger.schema import partitioned_journal_statements

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in partitioned_journal_statements():
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the books are append-only: the partitioned journal is not undone")

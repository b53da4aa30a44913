"""PostgreSQL: the journal guard checks each new entry's balance by an index probe, not a join.

The first form joined the new rows with a GROUP BY over `posting`, which the planner ran
as a merge join over the whole posting key: each batch's check grew with the book
(docs/performance.md). Same rule, same messages; SQLite's per-row trigger is unchanged.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

from ledger.schema import POSTGRES_JOURNAL_GUARD

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_JOURNAL_GUARD)


def downgrade() -> None:
    raise RuntimeError("the guard is only ever made stricter or faster, never removed")

"""The money side of settlement: bills, state claims, late interest, payments received.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

from ledger.schema import MONEY_TABLES, SQLModel, append_only_statements

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    SQLModel.metadata.create_all(bind, tables=[SQLModel.metadata.tables[name] for name in MONEY_TABLES])
    for statement in append_only_statements(bind.dialect.name, MONEY_TABLES):
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the books are append-only: money records are never dropped")

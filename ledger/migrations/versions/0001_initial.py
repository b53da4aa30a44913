"""The first schema: books, aggregates, tiers, closes, the chain, and the database guards.

Revision ID: 0001
Revises:
"""
from alembic import op

from ledger.schema import ACCESS_TABLES, CREDIT_TABLES, IDENTITY_TABLES, MONEY_TABLES, SQLModel, guard_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    SQLModel.metadata.create_all(bind, tables=[table for name, table in SQLModel.metadata.tables.items()
                                               if name not in ACCESS_TABLES + MONEY_TABLES + IDENTITY_TABLES + CREDIT_TABLES])
    for statement in guard_statements(bind.dialect.name):
        op.execute(statement)
    op.execute("INSERT INTO ledger_state (id, chain_head_hash, block_count) VALUES (1, X'00', 0)"
               if bind.dialect.name == "sqlite" else
               "INSERT INTO ledger_state (id, chain_head_hash, block_count) VALUES (1, '\\x00'::bytea, 0)")


def downgrade() -> None:
    raise RuntimeError("the books are append-only: there is no downgrade of the first schema")

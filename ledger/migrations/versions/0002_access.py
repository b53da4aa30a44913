"""Access records of the HTTP service: platform signing keys, seen signatures.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from ledger.schema import ACCESS_TABLES, SQLModel

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    SQLModel.metadata.create_all(op.get_bind(), tables=[SQLModel.metadata.tables[name] for name in ACCESS_TABLES])


def downgrade() -> None:
    for name in reversed(ACCESS_TABLES):
        op.drop_table(name)

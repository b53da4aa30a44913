"""The stream consumer's position and outcome blocks, created with the books (they were created by
the consumer on its first start, outside any revision).

Revision ID: 0005
Revises: 0004
"""
from alembic import op

from ledger.schema import STREAM_TABLE_STATEMENTS

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in STREAM_TABLE_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS stream_outcome_block")
    op.execute("DROP TABLE IF EXISTS stream_position")

"""Months credited towards a pension (RULES.md §11): the append-only `credited_month` table.

- `credited_month` (worker, credited month, the close that credited it, the floor paid, seal),
  append-only like the journal; `block` gains `last_credit_id`, the mark of the credited rows a
  block of seal version 2 seals (`ledger.postings.SEALED_TABLES`).
- Books written by an earlier release that already hold closed months get their credits now:
  every close is re-run in month order over the aggregates (`ledger.credits.replay_credits`,
  the same rule a close applies), the rows appended, and sealed into the chain by one more
  empty block of seal version 2 — as revision 0006 sealed the identity rows. Old blocks keep
  their hashes; `verify` after the upgrade re-runs the rule and proves the rows match.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
from sqlalchemy import BigInteger, Column, inspect

from ledger.schema import CREDIT_TABLES, SQLModel, append_only_statements

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from ledger.books import iso_utc, utc_now
    from ledger.credits import books_pack, record_credits, replay_credits
    from ledger.postings import write_block
    from ledger.store import lock_chain_head, query

    bind = op.get_bind()
    if "last_credit_id" not in {column["name"] for column in inspect(bind).get_columns("block")}:
        op.add_column("block", Column("last_credit_id", BigInteger(), nullable=True))
    SQLModel.metadata.create_all(bind, tables=[SQLModel.metadata.tables[name] for name in CREDIT_TABLES])
    for statement in append_only_statements(bind.dialect.name, CREDIT_TABLES):
        op.execute(statement)
    if not query(bind, "SELECT 1 FROM month_close LIMIT 1"):
        return
    head = lock_chain_head(bind)
    ids, history = replay_credits(bind, books_pack(bind))
    written = sum(record_credits(bind, ids, credited, close) for close, credited in history)
    if written:  # the credits of the closes made before this release, into the chain
        write_block(bind, [], recorded_at=iso_utc(utc_now()), head=head)


def downgrade() -> None:
    raise RuntimeError("the books are append-only: credited months are never dropped")

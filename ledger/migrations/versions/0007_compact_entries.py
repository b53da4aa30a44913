"""The compact entry layout: an event or a refund carries its legs in its own journal row.

Before: one journal row and up to seven `posting` rows per event (four for a default-pack
ride). After: one journal row with the platform receivable and the six worker shares
(`receivable_vnd`, `si_worker_vnd` … `ui_platform_vnd`), balanced by a CHECK; multi-leg
entries (subsidy, claims, payments, interest) keep their `posting` rows; the view `legs`
shows every leg of the books numbered as before (docs/accounts.md).

Upgrade in place: each event's and refund's postings are summed into its row, then deleted.
Entry hashes do not change: `write_block` and `verify` rebuild the legs of a compact row in
the order they were hashed (receivable first, then the non-zero shares in SHARE_KEYS order),
so `verify` after the upgrade proves every row moved intact (tests/ledger/test_compact_upgrade.py).

Revision ID: 0007
Revises: 0005
"""
from alembic import op
from sqlalchemy import inspect

from ledger.schema import COMPACT_COLUMNS, SHARE_COLUMNS, compact_guard_statements

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

_COMPACT_TYPES = "1, 2"  # EntryType.event, EntryType.refund


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    present = {column["name"] for column in inspect(bind).get_columns("journal")}
    for column in COMPACT_COLUMNS:
        if column not in present:
            op.execute(f"ALTER TABLE journal ADD COLUMN {column} BIGINT")
    _move_legs_into_rows(dialect)
    for statement in compact_guard_statements(dialect):
        op.execute(statement)


def _move_legs_into_rows(dialect: str) -> None:
    """Sum each event's and refund's postings into its row (append-only guards lifted meanwhile)."""
    sums = ", ".join(
        [f"sum(CASE WHEN p.account_kind = 2 THEN p.amount_vnd ELSE 0 END) AS receivable_vnd"]
        + [f"sum(CASE WHEN p.account_kind = 1 AND p.scheme = {index // 2 + 1} AND p.party = {index % 2 + 1} "
           f"THEN p.amount_vnd ELSE 0 END) AS {column}" for index, column in enumerate(SHARE_COLUMNS)])
    assign = ", ".join(f"{column} = moved.{column}" for column in COMPACT_COLUMNS)
    zero = ", ".join(f"{column} = 0" for column in COMPACT_COLUMNS)
    if dialect == "postgresql":
        lift = ["ALTER TABLE journal DISABLE TRIGGER journal_append_only",
                "ALTER TABLE posting DISABLE TRIGGER posting_append_only"]
        restore = ["ALTER TABLE journal ENABLE TRIGGER journal_append_only",
                   "ALTER TABLE posting ENABLE TRIGGER posting_append_only"]
    else:
        lift = ["DROP TRIGGER IF EXISTS journal_append_only_update",
                "DROP TRIGGER IF EXISTS posting_append_only_delete"]
        restore = ["""CREATE TRIGGER journal_append_only_update BEFORE UPDATE ON journal
            BEGIN SELECT RAISE(ABORT, 'append_only: UPDATE of journal refused'); END""",
                   """CREATE TRIGGER posting_append_only_delete BEFORE DELETE ON posting
            BEGIN SELECT RAISE(ABORT, 'append_only: DELETE from posting refused'); END"""]
    for statement in lift:
        op.execute(statement)
    op.execute("CREATE TEMPORARY TABLE moved_legs AS SELECT p.entry_id, " + sums + " FROM posting p "
               f"JOIN journal j ON j.id = p.entry_id WHERE j.entry_type IN ({_COMPACT_TYPES}) GROUP BY p.entry_id")
    op.execute(f"UPDATE journal SET {assign} FROM moved_legs AS moved WHERE moved.entry_id = journal.id")
    # An event whose every share rounds to zero had no legs at all.
    op.execute(f"UPDATE journal SET {zero} WHERE entry_type IN ({_COMPACT_TYPES}) AND receivable_vnd IS NULL")
    op.execute("DELETE FROM posting WHERE entry_id IN (SELECT entry_id FROM moved_legs)")
    op.execute("DROP TABLE moved_legs")
    for statement in restore:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the books are append-only: the compact layout is not undone")

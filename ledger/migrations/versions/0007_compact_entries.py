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
Revises: 0006
"""
from alembic import op
from sqlalchemy import inspect

from ledger.schema import COMPACT_COLUMNS, SHARE_COLUMNS, SQLITE_GUARDS, JournalEntry, compact_guard_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None



def _sqlite_guard(name: str) -> str:
    """The statement of revision 0001 that creates the SQLite trigger `name` (put back as it was)."""
    return next(statement for statement in SQLITE_GUARDS if f"CREATE TRIGGER {name} " in statement)


_COMPACT_TYPES = "1, 2"  # EntryType.event, EntryType.refund


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    columns = {column["name"]: column for column in inspect(bind).get_columns("journal")}
    for column in (*COMPACT_COLUMNS, "occurred_us"):
        if column not in columns:
            op.execute(f"ALTER TABLE journal ADD COLUMN {column} BIGINT")
    if dialect == "postgresql":
        op.execute("ALTER TABLE journal ALTER COLUMN recorded_at DROP NOT NULL")
    elif str(columns["id"]["type"]).upper() != "INTEGER":
        _rebuild_sqlite_journal(bind)
    _move_legs_into_rows(dialect)
    for statement in compact_guard_statements(dialect):
        op.execute(statement)


def _rebuild_sqlite_journal(bind) -> None:
    """SQLite: the journal again, its id now the rowid (INTEGER PRIMARY KEY) and `recorded_at`
    nullable — a table cannot change its key in place. Rows are copied unchanged."""
    triggers = [name for (name,) in bind.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND (tbl_name = 'journal' OR name = 'posting_guard')")]
    for name in triggers:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP INDEX IF EXISTS journal_booking_month")
    op.execute("DROP INDEX IF EXISTS journal_original")
    op.execute("ALTER TABLE journal RENAME TO journal_before_0007")
    JournalEntry.__table__.create(bind)
    names = ", ".join(column.name for column in JournalEntry.__table__.columns)
    op.execute(f"INSERT INTO journal ({names}) SELECT {names} FROM journal_before_0007 ORDER BY id")
    op.execute("DROP TABLE journal_before_0007")
    for name in ("journal_append_only_update", "journal_append_only_delete", "posting_guard"):
        op.execute(_sqlite_guard(name))


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
        lifted = ("journal_append_only_update", "posting_append_only_delete")
        lift = [f"DROP TRIGGER IF EXISTS {name}" for name in lifted]
        restore = [_sqlite_guard(name) for name in lifted]
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

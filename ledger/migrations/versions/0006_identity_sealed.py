"""Who owns the money under the hash chain; key check values; identity changes as records.

- worker, platform and rules_version rows gain `seal` (`ledger.postings.row_seal`), filled
  here for the rows that exist; worker and platform become append-only like the rest.
- block gains `seal_version` (0 for every block written before) and the marks of the
  identity rows each block seals (`last_worker_id`, …).
- Books that hold blocks get one more, empty block of seal version 1 that seals every
  identity row existing now: from here on the chain covers who owns each entry
  (docs/invariants.md, "identity_rows_sealed"). Old blocks keep their old hashes.
- New append-only tables: worker_identity_change (a corrected national id, a merged
  duplicate person) and key_check (key check values, written on the next open).

Revision ID: 0006
Revises: 0005
"""
from alembic import op
from sqlalchemy import BigInteger, Column, LargeBinary, SmallInteger, inspect, text

from ledger.schema import IDENTITY_TABLES, SEALED_BY_0006, SQLModel, append_only_statements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NEW_COLUMNS = {
    "worker": [("seal", LargeBinary)],
    "platform": [("seal", LargeBinary)],
    "rules_version": [("seal", LargeBinary)],
    "block": [("seal_version", SmallInteger), ("last_worker_id", BigInteger), ("last_platform_id", BigInteger),
              ("last_rules_version_id", BigInteger), ("last_identity_change_id", BigInteger)],
}


def upgrade() -> None:
    from ledger.books import iso_utc, utc_now
    from ledger.postings import SEALED_TABLES, row_seal, write_block
    from ledger.store import execute_many, lock_chain_head, query

    bind = op.get_bind()
    dialect = bind.dialect.name
    # Fresh books got these columns from the models in 0001; books of 0001–0005 get them here.
    for table, columns in _NEW_COLUMNS.items():
        present = {column["name"] for column in inspect(bind).get_columns(table)}
        for name, kind in columns:
            if name not in present:
                op.add_column(table, Column(name, kind(), nullable=name != "seal_version",
                                            server_default=text("0") if name == "seal_version" else None))
    SQLModel.metadata.create_all(bind, tables=[SQLModel.metadata.tables[name] for name in IDENTITY_TABLES])
    # rules_version has been append-only since 0001: its guard is lifted for this one fill only.
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS rules_version_append_only ON rules_version")
    else:
        op.execute("DROP TRIGGER IF EXISTS rules_version_append_only_update")
        op.execute("DROP TRIGGER IF EXISTS rules_version_append_only_delete")
    for table in ("worker", "platform", "rules_version"):
        columns = SEALED_TABLES[table][1]
        rows = query(bind, f"SELECT {', '.join(columns)} FROM {table} WHERE seal IS NULL ORDER BY id")
        execute_many(bind, f"UPDATE {table} SET seal = ? WHERE id = ?",
                     [(row_seal(table, row), row[0]) for row in rows])
    for statement in append_only_statements(dialect, ("rules_version", *SEALED_BY_0006, *IDENTITY_TABLES)):
        op.execute(statement)
    head = lock_chain_head(bind)
    if head[1] > 0:  # the identity-seal block: every row that exists now, into the chain
        write_block(bind, [], recorded_at=iso_utc(utc_now()), head=head, seal_version=1)  # as 0006 wrote it


def downgrade() -> None:
    raise RuntimeError("the books are append-only: identity seals are never removed")

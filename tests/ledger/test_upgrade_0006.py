"""Books written by the release before revision 0006 keep every figure, and verify, after the upgrade.

The old books are made the way that release made them: the same entries and postings (entry
hashes did not change), blocks hashed with seal version 0, no seal columns, no identity
tables, worker and platform without guards, the schema at 0005. Their anchors are the old
block hashes. Opening them upgrades them: one empty block of seal version 1 seals every
worker, platform and rules version that exists; nothing else changes.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from ledger.books import Ledger
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.postings import SEALED_TABLES, block_hash
from ledger.reports import settlement, statements
from ledger.store import query
from ledger.verify import Anchor, verify
from tests.conftest import FixedClock
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event

MARKS = [mark for mark, _columns in SEALED_TABLES.values()]


def _as_the_previous_release_wrote_them(ledger) -> dict[str, str]:
    """Turn the books into the 0005 layout; return the anchors (v0 block hashes) of each close."""
    sqlite = ledger.engine.dialect.name == "sqlite"
    with ledger.engine.begin() as conn:
        if sqlite:
            for (name,) in query(conn, "SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            for name, table in query(conn, "SELECT tgname, relname FROM pg_trigger t JOIN pg_class c ON "
                                           "c.oid = t.tgrelid WHERE NOT tgisinternal AND c.relnamespace = "
                                           "current_schema()::regnamespace"):
                conn.execute(text(f"DROP TRIGGER {name} ON {table}"))
        hashes: dict[int, list[bytes]] = {}
        for block_id, digest in query(conn, "SELECT block_id, entry_hash FROM journal ORDER BY id"):
            hashes.setdefault(block_id, []).append(bytes(digest))
        previous, renamed = b"\x00", {}
        for block_id, old in query(conn, "SELECT id, block_hash FROM block ORDER BY id"):
            new = block_hash(previous, block_id, hashes.get(block_id, []))  # seal version 0
            renamed[bytes(old)] = new
            conn.execute(text("UPDATE block SET prev_hash = :p, block_hash = :h WHERE id = :b"),
                         {"p": previous, "h": new, "b": block_id})
            previous = new
        conn.execute(text("UPDATE ledger_state SET chain_head_hash = :h"), {"h": previous})
        anchors = {}
        for month, old in query(conn, "SELECT month, anchor_hash FROM month_close"):
            conn.execute(text("UPDATE month_close SET anchor_hash = :h WHERE month = :m"),
                         {"h": renamed[bytes(old)], "m": month})
            anchors[f"{month // 100}-{month % 100:02d}"] = renamed[bytes(old)].hex()
        for table in ("worker", "platform", "rules_version"):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN seal"))
        for column in ("seal_version", *MARKS):
            conn.execute(text(f"ALTER TABLE block DROP COLUMN {column}"))
        conn.execute(text("DROP TABLE worker_identity_change"))
        conn.execute(text("DROP TABLE key_check"))
        from ledger.schema import append_only_statements, guard_statements

        for statement in guard_statements(conn.dialect.name):  # the guards as 0001–0005 left them
            conn.execute(text(statement))
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    return anchors


def _figures(ledger) -> dict:
    return {"statements": {month: list(statements(ledger, month)) for month in ("2026-02", "2026-03")},
            "settlements": {month: settlement(ledger, month) for month in ("2026-02", "2026-03")}}


def test_books_of_the_previous_release_upgrade_with_every_statement_settlement_and_verify_result_unchanged(
        database_url, tmp_path):
    ledger = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    tiers = tmp_path / "tiers.csv"
    tiers.write_text(f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n")
    import_tiers(ledger, tiers)
    for month, count in (("2026-02", 12), ("2026-03", 9)):
        items = [event(f"{month}-{n}", platform=("grab", "be")[n % 2], worker_id=(WORKER_A, WORKER_B, WORKER_C)[n % 3],
                       amount=20_000 + 1_000 * n, occurred_at=f"{month}-{1 + n:02d}T09:00:00+07:00")
                 for n in range(count)]
        ingest_batch(ledger, list(enumerate(items, start=1)))
        if month == "2026-02":
            close_month(ledger, month)
    ledger.close()
    old = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    anchors = _as_the_previous_release_wrote_them(old)
    before = _figures(old)
    with old.engine.connect() as conn:
        blocks_before = query(conn, "SELECT count(*) FROM block")[0][0]
        conn.rollback()
    old.close()

    upgraded = Ledger.open(database_url, clock=FixedClock())  # migrates 0005 -> 0006
    try:
        assert _figures(upgraded) == before
        checks = verify(upgraded, stop_at_first=False, anchors=[Anchor.parse(f"{m}={h}") for m, h in anchors.items()])
        assert [(check.name, check.problem) for check in checks if check.problem] == []
        assert {check.name for check in checks} >= {"identity_rows_sealed", "identity_decrypts", "hash_chain_intact",
                                                      "anchor 2026-02"}
        with upgraded.engine.connect() as conn:
            seal_block = query(conn, f"SELECT id, entry_count, seal_version, {', '.join(MARKS)} FROM block "
                                     "ORDER BY id DESC LIMIT 1")[0]
            versions = query(conn, "SELECT seal_version, count(*) FROM block GROUP BY seal_version ORDER BY 1")
            unsealed = query(conn, "SELECT (SELECT count(*) FROM worker WHERE seal IS NULL) + "
                                   "(SELECT count(*) FROM platform WHERE seal IS NULL)")[0][0]
            keys = query(conn, "SELECT key_id FROM key_check ORDER BY key_id")
            conn.rollback()
        # one empty block of seal version 1 seals the 3 workers, 2 platforms and 1 rules version there were
        assert tuple(seal_block) == (blocks_before + 1, 0, 1, 3, 2, 1, 0)
        assert [tuple(row) for row in versions] == [(0, blocks_before), (1, 1)] and unsealed == 0
        assert [row[0] for row in keys] == ["encryption/v1", "pseudonym/v1"]  # recorded on the first open
        # and the upgraded books go on: a new block of seal version 1 chains after the seal block
        ingest_batch(upgraded, [(1, event("after", worker_id=WORKER_B, occurred_at="2026-03-20T09:00:00+07:00"))])
        assert [check.problem for check in verify(upgraded, stop_at_first=False) if check.problem] == []
    finally:
        upgraded.close()

"""Opening the books: alembic only when there is something to create, upgrade or refuse (issue 17).

Books at `ledger.store.HEAD_REVISION` are opened from one read of `alembic_version`, without
importing alembic or building the SQLModel table classes (~0.5 s of every CLI command's start,
docs/performance.md). The constant must therefore be alembic's real head: pinned here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from ledger.books import Ledger
from ledger.store import HEAD_REVISION, MIGRATIONS_DIR, StoreError, make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]


def test_the_head_revision_constant_is_the_newest_revision_alembic_knows():
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    assert scripts.get_heads() == [HEAD_REVISION]  # one head, and it is the constant


def modules_after_opening(url: str) -> list[str]:
    """Which of alembic / sqlmodel a fresh interpreter holds after `Ledger.open(url)`."""
    code = ("import json, sys\nfrom ledger.books import Ledger\n"
            f"Ledger.open({url!r}, 'vn-pilot').close()\n"
            "print(json.dumps(sorted(m for m in ('alembic', 'sqlmodel') if m in sys.modules)))")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ANSINH_SECRET": os.environ["ANSINH_SECRET"]}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_new_books_are_created_by_alembic_and_current_books_open_without_it(database_url):
    assert modules_after_opening(database_url) == ["alembic", "sqlmodel"]  # created: revisions 0001…head ran
    assert modules_after_opening(database_url) == []  # at the head: nothing to upgrade, nothing loaded


def test_books_one_revision_behind_are_upgraded_to_the_head(database_url):
    from alembic import command

    from ledger.store import _alembic_config

    previous = ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(HEAD_REVISION).down_revision
    engine = make_engine(database_url)
    with engine.begin() as conn:  # books exactly as the previous release left them
        command.upgrade(_alembic_config(conn), previous)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
        index = ("SELECT count(*) FROM sqlite_master WHERE name = 'journal_worker_month'"
                 if database_url.startswith("sqlite") else
                 "SELECT count(*) FROM pg_class WHERE oid = to_regclass('journal_worker_month')")
        assert conn.execute(text(index)).scalar() == 1  # the per-trip index survives the upgrade
    engine.dispose()
    assert modules_after_opening(database_url) == []


def test_books_at_a_revision_this_version_does_not_know_are_refused(database_url):
    Ledger.open(database_url, "vn-pilot").close()
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(StoreError, match="schema revision '0099', unknown to this version of ansinh"):
        migrate(engine)
    with engine.connect() as conn:  # refused, not touched
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099"
    engine.dispose()


def test_a_database_holding_other_tables_is_refused_as_not_a_ledger(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    with pytest.raises(StoreError, match=r"holds other tables \(invoices…\) and is not an ansinh ledger"):
        migrate(engine)
    engine.dispose()

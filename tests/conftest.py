"""Fixtures shared by the suite: a fresh database per test, on SQLite and on PostgreSQL.

`database_url` is parametrised over both stores. PostgreSQL tests use the real server
on 127.0.0.1:5432 (database `test`, trust auth), each in a schema of its own that is
dropped afterwards. If the server is down the fixture tries to start it; if that
fails the test is skipped with a loud reason — except under CI=true, where a missing
PostgreSQL is a failure, because CI must exercise both stores.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

os.environ.setdefault("ANSINH_SECRET", "test-secret-not-for-production")

PG_ADMIN_URL = os.environ.get("ANSINH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[2] / "shared"
_pg_state: dict[str, object] = {}


def _pg_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


def postgres_available() -> str | None:
    """None when PostgreSQL answers; else the reason it does not."""
    if "reason" in _pg_state:
        return _pg_state["reason"]  # type: ignore[return-value]
    reason = None
    try:
        _pg_connect().close()
    except Exception as first:  # noqa: BLE001 - any failure means "not reachable"
        try:
            versions = sorted(os.listdir("/etc/postgresql"))
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                           check=False, capture_output=True, timeout=60)
            _pg_connect().close()
        except Exception as second:  # noqa: BLE001
            reason = f"PostgreSQL on 127.0.0.1:5432 is not reachable ({first}; start attempt: {second})"
    _pg_state["reason"] = reason
    return reason


def _fresh_postgres_url() -> tuple[str, str]:
    schema = "t_" + uuid.uuid4().hex[:12]
    with _pg_connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    base = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}?options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    with _pg_connect() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A URL of a fresh, empty database (created and migrated on first open)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    reason = postgres_available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL suite: {reason}")
        pytest.skip(f"SKIPPING POSTGRESQL: {reason}")
    url, schema = _fresh_postgres_url()
    yield url
    _drop_schema(schema)


class FixedClock:
    """A clock that only moves when told to (rules and books never read the wall clock in tests)."""

    def __init__(self, moment: datetime | None = None) -> None:
        self.moment = moment or datetime(2026, 6, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def ledger(database_url):
    from ledger.books import Ledger

    books = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    yield books
    books.close()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"SKIPPING: the shared folder {SHARED} is not beside the project")
    return SHARED

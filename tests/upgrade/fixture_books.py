"""Books written by a previous release, put back where a test can open them (SQLite file or a
PostgreSQL schema of its own), for the upgrade tests."""
from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import PG_ADMIN_URL, _drop_schema, _fresh_postgres_url, postgres_available

HERE = Path(__file__).parent


def restored_books(store: str, tmp_path: Path, stem: str, dumped_schema: str,
                   replace: dict[str, str] | None = None) -> Iterator[str]:
    """Yield a URL of the books `stem`.db.gz (SQLite) or `stem`.pg.sql.gz (PostgreSQL, dumped from
    schema `dumped_schema`), exactly as that release left them; the schema is dropped afterwards.
    `replace`: more text to replace in the dump (e.g. the folder an archived month's file was in)."""
    if store == "sqlite":
        path = tmp_path / "old.db"
        with gzip.open(HERE / f"{stem}.db.gz") as source, path.open("wb") as target:
            shutil.copyfileobj(source, target)
        yield f"sqlite:///{path}"
        return
    reason = postgres_available()
    if reason:
        pytest.skip(f"SKIPPING POSTGRESQL: {reason}")
    if shutil.which("psql") is None:
        pytest.skip("SKIPPING POSTGRESQL UPGRADE: psql is not installed (needed to load the dump)")
    url, schema = _fresh_postgres_url()
    dump = gzip.decompress((HERE / f"{stem}.pg.sql.gz").read_bytes()).decode()
    dump = "\n".join(line for line in dump.splitlines() if not line.startswith("CREATE SCHEMA"))
    dump = dump.replace(dumped_schema, schema)
    for before, after in (replace or {}).items():
        dump = dump.replace(before, after)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", PG_ADMIN_URL], input=dump, text=True, check=True,
                   capture_output=True)
    yield url
    _drop_schema(schema)

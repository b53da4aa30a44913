"""Backup and restore of the whole books, consistent at one instant, checked on the way in.

- SQLite: the online backup API (`sqlite3.Connection.backup`) copies the database page
  by page from one read snapshot while writers go on; the copy is checked with
  `PRAGMA integrity_check` before it is renamed into place.
- PostgreSQL: `pg_dump --format=custom` of the books' schema, taken in a snapshot
  exported by a REPEATABLE READ transaction (`pg_export_snapshot`), so the chain head
  recorded beside the dump is exactly the dump's. `pg_restore --single-transaction`
  brings it back onto an empty database; a schema that already exists there (`public`)
  is not created again.

A restore refuses a non-empty target, runs every `verify` invariant on the result and
reports the chain head, which must equal the one printed by the backup. Neither the
backup nor the restore holds the secret that keys pseudonyms and encrypts national ids:
restored books need the same ANSINH_SECRET, kept apart from the backups.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ledger.files import write_private
from ledger.store import database_url, is_sqlite, make_engine, query

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
BACKUP_PAGES_PER_STEP = 4096  # pages copied per step of the SQLite online backup (writers are let in between)


class BackupError(Exception):
    """A backup or restore that cannot be done (the reason is safe to show)."""


@dataclass(frozen=True)
class BooksState:
    """What identifies a state of the books: the chain head and how much it covers."""

    chain_head: str
    blocks: int
    entries: int
    months_closed: int

    def text(self) -> str:
        return (f"chain head {self.chain_head} ({self.blocks:,} blocks, {self.entries:,} entries, "
                f"{self.months_closed} months closed)")


def _state(conn_or_cursor_query) -> BooksState:
    head, blocks = conn_or_cursor_query("SELECT chain_head_hash, block_count FROM ledger_state WHERE id = 1")[0]
    entries = conn_or_cursor_query("SELECT count(*) FROM journal")[0][0]
    closed = conn_or_cursor_query("SELECT count(*) FROM month_close")[0][0]
    return BooksState(bytes(head).hex(), int(blocks), int(entries), int(closed))


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string for pg_dump / pg_restore / psql."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database or ""
    if database in ("", ":memory:"):
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(database)


def _run(command: list[str], what: str) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL client tools are needed to {what})")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed to {what}: {done.stderr.strip()[-800:]}")
    return done


# -- backup ------------------------------------------------------------------------------------------

def backup(url: str | None, target: str | Path) -> BooksState:
    """Write a consistent copy of the books at `url` to `target` (which must not exist); return its state."""
    url = database_url(url)
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} already exists; a backup never overwrites a file")
    if not target.parent.is_dir():
        raise BackupError(f"no such folder: {target.parent}")
    if make_url(url).get_backend_name() == "sqlite":
        return _backup_sqlite(_sqlite_path(url), target)
    return _backup_postgres(url, target)


def _backup_sqlite(source_path: Path, target: Path) -> BooksState:
    if not source_path.is_file():
        raise BackupError(f"no books at {source_path}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    write_private(partial, b"")  # owner-only (0600) before any page is copied: a backup holds personal data
    try:
        with closing(sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)) as source, \
                closing(sqlite3.connect(partial)) as copy:
            source.backup(copy, pages=BACKUP_PAGES_PER_STEP)
        with closing(sqlite3.connect(partial)) as copy:
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            checked = copy.execute("PRAGMA integrity_check").fetchone()[0]
            if checked != "ok":
                raise BackupError(f"the copy failed SQLite's integrity check: {checked}")
            state = _state(lambda sql: copy.execute(sql).fetchall())
        os.replace(partial, target)
        return state
    except sqlite3.Error as error:
        raise BackupError(f"the backup of {source_path} failed: {error}") from None
    finally:
        partial.unlink(missing_ok=True)


def _backup_postgres(url: str, target: Path) -> BooksState:
    import psycopg

    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    write_private(partial, b"")  # owner-only (0600): pg_dump truncates it and keeps its mode
    dsn = libpq_url(url)
    try:
        with psycopg.connect(dsn) as conn:
            # Set before the first statement: psycopg opens the transaction itself, with these.
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "repeatable read"
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            state = _state(lambda sql: conn.execute(sql).fetchall())
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                  f"--schema={schema}", f"--file={partial}", dsn], "dump the books")
            conn.rollback()
        os.replace(partial, target)
        return state
    except psycopg.Error as error:
        raise BackupError(f"the backup failed: {error}") from None
    finally:
        partial.unlink(missing_ok=True)


# -- restore -----------------------------------------------------------------------------------------

def backup_kind(path: str | Path) -> str:
    """`sqlite` or `postgresql`, from the file's first bytes."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no such backup file: {path}")
    with path.open("rb") as stream:
        head = stream.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither an SQLite backup nor a pg_dump custom-format archive")


def restore(source: str | Path, url: str | None) -> BooksState:
    """Bring a backup back onto empty books at `url`; return the restored state (verify it next)."""
    url = database_url(url)
    kind = backup_kind(source)
    store = make_url(url).get_backend_name()
    if kind != store:
        raise BackupError(f"{source} is a {kind} backup; it restores onto {kind}, not {store} "
                          "(to move books between stores, export them)")
    if kind == "sqlite":
        return _restore_sqlite(Path(source), _sqlite_path(url))
    return _restore_postgres(Path(source), url)


def _restore_sqlite(source: Path, target: Path) -> BooksState:
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"{target} already holds a database; restore onto a new file")
    for suffix in ("-wal", "-shm"):
        if Path(f"{target}{suffix}").exists():
            raise BackupError(f"{target}{suffix} exists beside the target; restore onto a new file")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_file:
            checked = backup_file.execute("PRAGMA integrity_check").fetchone()[0]
            if checked != "ok":
                raise BackupError(f"the backup fails SQLite's integrity check: {checked}")
            tables = {row[0] for row in backup_file.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"journal", "posting", "block", "ledger_state", "alembic_version"} <= tables:
                raise BackupError(f"{source} is an SQLite file but not ansinh books")
            with closing(sqlite3.connect(partial)) as copy:
                backup_file.backup(copy, pages=BACKUP_PAGES_PER_STEP)
        with closing(sqlite3.connect(partial)) as copy:
            state = _state(lambda sql: copy.execute(sql).fetchall())
        os.replace(partial, target)
        return state
    except sqlite3.Error as error:
        raise BackupError(f"the restore from {source} failed: {error}") from None
    finally:
        partial.unlink(missing_ok=True)


# "TABLE DATA" rows and (partitioned journal, revision 0008) "TABLE ATTACH" rows name no schema first.
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA |ATTACH )(\S+) \S+ ")


def _restore_postgres(source: Path, url: str) -> BooksState:
    import psycopg

    dsn = libpq_url(url)
    listing = _run(["pg_restore", "--list", str(source)], "read the backup").stdout
    schemas = {match.group(1) for line in listing.splitlines() if (match := _TOC_TABLE.match(line))}
    if "ledger_state" not in listing or len(schemas) != 1:
        raise BackupError(f"{source} is a pg_dump archive but not of one set of ansinh books")
    schema = schemas.pop()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            path = [name.strip().strip('"') for name in conn.execute("SHOW search_path").fetchone()[0].split(",")]
            wanted = next((name for name in path if name and name != "$user"), "public")
            if wanted != schema:
                raise BackupError(f"the backup holds schema {schema!r}, the target's search_path starts with "
                                  f"{wanted!r}: restore onto a database whose search_path is {schema!r}")
            exists = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()[0]
            if exists and conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                                       (schema,)).fetchone()[0]:
                raise BackupError(f"schema {schema!r} of the target already holds tables; restore onto empty books")
    except psycopg.Error as error:
        raise BackupError(f"cannot reach the target database: {error}") from None
    with tempfile.TemporaryDirectory() as folder:
        chosen = Path(folder) / "toc.list"
        skip = re.compile(rf"^\d+; \d+ \d+ (SCHEMA - {re.escape(schema)} |COMMENT - SCHEMA {re.escape(schema)} )")
        chosen.write_text("\n".join(line for line in listing.splitlines()
                                    if not (exists and skip.match(line))) + "\n")
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              f"--use-list={chosen}", f"--dbname={dsn}", str(source)], "restore the books")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert not is_sqlite(conn)
            state = _state(lambda sql: query(conn, sql))
            conn.rollback()
        return state
    finally:
        engine.dispose()


def state_of(url: str | None) -> BooksState:
    """The chain head and counts of the books at `url`, read in one transaction."""
    engine = make_engine(database_url(url))
    try:
        with engine.connect() as conn:
            state = _state(lambda sql: query(conn, sql))
            conn.rollback()
        return state
    finally:
        engine.dispose()

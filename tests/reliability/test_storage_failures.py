"""A full disk or a read-only database: a clear error, and nothing half-written.

There is no tiny tmpfs here, so a full disk is simulated two ways: SQLite's
`PRAGMA max_page_count` (SQLITE_FULL, in-process) and RLIMIT_FSIZE on an `ansinh`
subprocess (writes past the limit fail with EFBIG, as on a full volume). A read-only
file is a 0444 file in a 0555 folder, opened by the CLI run as root without the
CAP_DAC_OVERRIDE capability (the tests run as root, which otherwise ignores file modes); a read-only PostgreSQL is a session with
`default_transaction_read_only` on, as on a hot standby.
"""
from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path

import orjson
import pytest
import sqlalchemy
from sqlalchemy import event

from ledger.ingest import MALFORMED, ingest_batch
from tests.reliability.crash import open_books
from tests.reliability.oracle import ANSINH, ROOT, cli_env, differences, model_of, ok_cli, table_counts, \
    verify_problems, write_workload


def new_books(folder: Path, name: str) -> str:
    """The URL of new, migrated, empty books."""
    url = f"sqlite:///{folder / name}"
    open_books(url).close()
    return url


def whole_chunks_only(ledger, items, chunk_size: int) -> int:
    """How many whole chunks of `items` the books hold; fails unless they equal the model after exactly those."""
    from ledger.store import query

    with ledger.engine.connect() as conn:
        booked = query(conn, "SELECT count(*) FROM journal WHERE entry_type IN (1, 2)")[0][0]
        conn.rollback()
    for chunks in range(0, len(items) // chunk_size + 2):
        model, _ = model_of(items[:chunks * chunk_size])
        if len(model.accepted) == booked:
            assert differences(ledger, model) == []
            return chunks
    raise AssertionError(f"{booked} events booked is no whole number of chunks: a chunk was half-written")


def test_a_full_disk_during_ingest_refuses_the_batch_whole_and_the_retry_books_it(tmp_path):
    _events, _tiers, items = write_workload(tmp_path, seed=21, workers=100, events=3_000)
    url = f"sqlite:///{tmp_path / 'full.db'}"
    ledger = open_books(url)
    try:
        first = ingest_batch(ledger, items[:200])
        before = table_counts(ledger)

        @event.listens_for(ledger.engine, "connect")
        def _little_room(dbapi_connection, _record):
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

        ledger.engine.dispose()
        # The store writes through the raw driver, so the driver's own error type reaches the caller.
        with pytest.raises((sqlalchemy.exc.OperationalError, sqlite3.OperationalError),
                           match="database or disk is full"):
            ingest_batch(ledger, items[200:])
        assert table_counts(ledger) == before  # not one entry, posting, block or worker of the refused batch
        assert verify_problems(ledger) == []
        event.remove(ledger.engine, "connect", _little_room)
        ledger.engine.dispose()
        second = ingest_batch(ledger, items[200:])
        model, outcomes = model_of(items)
        assert [o.outcome for o in first + second] == outcomes
        assert differences(ledger, model) == []
        assert verify_problems(ledger) == []
    finally:
        ledger.close()


def _run_limited(url: str, args: list[str], limit_bytes: int) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([*ANSINH, *args], env=cli_env(url), cwd=ROOT, capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)


def test_a_full_disk_under_the_cli_leaves_whole_chunks_only_and_the_resend_completes_the_books(tmp_path):
    events_file, _tiers, items = write_workload(tmp_path, seed=22, workers=200, events=6_000)
    url = new_books(tmp_path, "full.db")
    size = (tmp_path / "full.db").stat().st_size
    done = _run_limited(url, ["ingest", str(events_file), "--chunk-size", "250"], size + 256 * 1024)
    assert done.returncode != 0
    ledger = open_books(url)
    try:
        chunks = whole_chunks_only(ledger, items, 250)
        assert 0 <= chunks < len(items) // 250  # the disk filled before the end
        assert verify_problems(ledger) == []
    finally:
        ledger.close()
    ok_cli(url, "ingest", events_file)
    ledger = open_books(url)
    try:
        assert differences(ledger, model_of(items)[0]) == []
        assert verify_problems(ledger) == []
    finally:
        ledger.close()


def test_a_full_disk_under_the_cli_is_one_clear_error_line(tmp_path):
    events_file, _tiers, _items = write_workload(tmp_path, seed=23, workers=100, events=3_000)
    url = new_books(tmp_path, "full.db")
    size = (tmp_path / "full.db").stat().st_size
    done = _run_limited(url, ["ingest", str(events_file), "--chunk-size", "250"], size + 64 * 1024)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr and ("disk" in done.stderr or "full" in done.stderr)


def _without_override(url: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI as root without CAP_DAC_OVERRIDE: file modes apply to it as to any user."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop the capability that lets root ignore file modes")
    return subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *ANSINH, *args],
                          env=cli_env(url), cwd=ROOT, capture_output=True, text=True, timeout=300)


def _read_only_books(tmp_path: Path) -> tuple[str, Path, tuple[int, ...]]:
    events_file, _tiers, items = write_workload(tmp_path, seed=24, workers=50, events=500)
    folder = tmp_path / "books"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ro.db'}"
    ledger = open_books(url)
    ingest_batch(ledger, items)
    counts = table_counts(ledger)
    ledger.close()
    assert not (folder / "ro.db-wal").exists()
    os.chmod(folder / "ro.db", 0o444)  # a read-only file in a folder where no -wal or -shm file can be made
    os.chmod(folder, 0o555)
    return url, events_file, counts


def test_books_the_user_cannot_write_are_left_exactly_as_they_were(tmp_path):
    url, events_file, counts = _read_only_books(tmp_path)
    probe = _without_override(url, ["--help"])  # the CLI runs at all without the capability
    assert probe.returncode == 0, probe.stderr[-1000:]
    done = _without_override(url, ["ingest", str(events_file)])
    assert done.returncode != 0
    ledger = open_books(url)
    try:
        assert table_counts(ledger) == counts
        assert verify_problems(ledger) == []
    finally:
        ledger.close()


def test_books_the_user_cannot_write_give_one_clear_error_line(tmp_path):
    url, events_file, _counts = _read_only_books(tmp_path)
    done = _without_override(url, ["ingest", str(events_file)])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr and "read" in done.stderr


@pytest.mark.postgres
def test_a_read_only_postgresql_gives_one_clear_error_line_per_command_and_books_nothing(tmp_path):
    """The store writes through the raw psycopg connection, so the refusal arrives as a bare
    `psycopg.errors.ReadOnlySqlTransaction`; ingest, tiers import and close each say so in one line."""
    from tests.conftest import _drop_schema, _fresh_postgres_url, postgres_available

    if postgres_available():
        pytest.skip(postgres_available())
    events_file, tiers_file, _items = write_workload(tmp_path, seed=25, workers=50, events=500)
    url, schema = _fresh_postgres_url()
    try:
        empty = tmp_path / "empty.ndjson"
        empty.write_bytes(b"")
        ok_cli(url, "ingest", empty)  # migrated, empty
        ledger = open_books(url)
        try:
            before = table_counts(ledger)
        finally:
            ledger.close()
        read_only = url + "%20-cdefault_transaction_read_only%3Don"
        runs = {name: subprocess.run([*ANSINH, *args], env=cli_env(read_only), cwd=ROOT, capture_output=True,
                                     text=True, timeout=300)
                for name, args in (("ingest", ["ingest", str(events_file)]),
                                   ("tiers", ["tiers", "import", str(tiers_file)]),
                                   ("close", ["close", "2026-03"]))}
        ledger = open_books(url)
        try:
            assert table_counts(ledger) == before == (0, 0, 0, 0, 0, 0, 0)
            assert verify_problems(ledger) == []
        finally:
            ledger.close()
        for name, done in runs.items():
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert (name, done.returncode) == (name, 1)
            assert "Traceback" not in done.stderr, (name, done.stderr[-2000:])
            assert len(errors) == 1 and "read-only transaction" in errors[0], (name, done.stderr[-2000:])
    finally:
        _drop_schema(schema)


# -- PostgreSQL on a full volume ----------------------------------------------------------------------
# The real disk is never filled: the books live in a tablespace of their own on a small tmpfs mounted
# for the test (root only), every table and index created there through `default_tablespace`. WAL and
# every other database stay on the real disk. The tmpfs is grown afterwards to make room again.

TABLESPACE_MB = 4


@contextlib.contextmanager
def _small_tablespace(size_mb: int):
    """(tablespace name, mount point) of a `size_mb` tmpfs; skips when it cannot be made here."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL, postgres_available

    if postgres_available():
        pytest.skip(postgres_available())
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("SKIPPING: a tmpfs tablespace needs root to mount it")
    name = "ansinh_full_" + uuid.uuid4().hex[:10]
    mount_point = Path(tempfile.mkdtemp(prefix=name + "-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"SKIPPING: cannot mount a tmpfs here ({mounted.stderr.strip()})")
    created = False
    try:
        shutil.chown(mount_point, "postgres", "postgres")
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            try:
                conn.execute(f"CREATE TABLESPACE {name} LOCATION '{mount_point}'")
            except psycopg.Error as error:  # e.g. a server in another mount namespace or on another host
                pytest.skip(f"SKIPPING: the PostgreSQL server cannot use {mount_point}: {error}")
            created = True
        yield name, mount_point
    finally:
        if created:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", str(mount_point)], check=True, capture_output=True)
        mount_point.rmdir()


@pytest.mark.postgres
def test_a_full_postgresql_volume_refuses_the_batch_whole_says_so_in_one_line_and_the_retry_books_it(tmp_path):
    import psycopg

    from tests.conftest import _drop_schema, _fresh_postgres_url

    # 15,000 events: about 300 bytes each on PostgreSQL in the compact layout, more than the 4 MB hold
    events_file, _tiers, items = write_workload(tmp_path, seed=26, workers=300, events=15_000)
    with _small_tablespace(TABLESPACE_MB) as (tablespace, mount_point):
        url, schema = _fresh_postgres_url()
        on_tmpfs = url + f"%20-cdefault_tablespace%3D{tablespace}"
        try:
            ledger = open_books(on_tmpfs)  # migrated: every table and index on the tmpfs
            booked, refused_at, error = [], None, None
            try:
                for start in range(0, len(items), 200):
                    before = table_counts(ledger)
                    try:
                        booked += ingest_batch(ledger, items[start:start + 200])
                    except (sqlalchemy.exc.OperationalError, psycopg.errors.DiskFull) as raised:
                        refused_at, error = start, raised
                        break
                assert refused_at is not None, f"{TABLESPACE_MB} MB held all {len(items)} items"
                assert "No space left on device" in str(error)
                assert table_counts(ledger) == before  # not one row of the refused batch
                assert verify_problems(ledger) == []
            finally:
                ledger.close()
            rest = tmp_path / "rest.ndjson"
            rest.write_bytes(b"".join(orjson.dumps(item) + b"\n" for _line, item in items[refused_at:]
                                      if item is not MALFORMED))
            done = subprocess.run([*ANSINH, "ingest", str(rest), "--chunk-size", "5000"], env=cli_env(on_tmpfs),
                                  cwd=ROOT, capture_output=True, text=True, timeout=300)
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert done.returncode == 1 and "Traceback" not in done.stderr
            assert len(errors) == 1 and "No space left on device" in errors[0], done.stderr[-1000:]
            ledger = open_books(url)
            try:
                assert table_counts(ledger) == before
                subprocess.run(["mount", "-o", "remount,size=256m", str(mount_point)], check=True)  # room again
                booked += ingest_batch(ledger, items[refused_at:])
                model, outcomes = model_of(items)
                assert [o.outcome for o in booked] == outcomes
                assert differences(ledger, model) == []
                assert verify_problems(ledger) == []
            finally:
                ledger.close()
        finally:
            _drop_schema(schema)

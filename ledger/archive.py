"""A closed month's journal partition to Parquet and back (PostgreSQL, partitioned books).

`archive_month` writes the partition `journal_YYYYMM` of a closed month to
`journal_YYYYMM.parquet` (rows in id order, every column as stored, so every entry
hash still recomputes), reads the file back and compares its rows' count and hashes
with the partition, records the file and its sha256 in `archived_month` (append-only),
then detaches and drops the partition — in one transaction under the writer's lock.
`restore_month` checks the file against that record, loads it into a new table and
attaches it again. `mounted_archives` lets `verify` see archived months: inside its own
snapshot (rolled back) each archived month is loaded from its file and attached, so every
check and the hash chain run over the whole books (docs/scale.md).

The idempotency keys of an archived month stay in `event_key`: a redelivered event is
still a duplicate. SQLite books are not partitioned and have nothing to archive.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Connection

from ledger.books import Ledger, iso_utc
from ledger.close import last_closed_month
from ledger.events import month_text, parse_month
from ledger.schema import PARTITION_TRIGGERS
from ledger.store import (fetch_unique, insert_rows, is_partitioned_journal, lock_chain_head, pg_array, query,
                          stream_rows)

_ARROW_TYPES = {"bigint": "int64", "integer": "int32", "smallint": "int16", "text": "string", "bytea": "binary"}


def fetch_events(conn: Connection, platform_id: int, columns: Sequence[str], event_ids: Iterable[str]) -> list[tuple]:
    """`(event_id, *columns)` of the journal rows of one platform with these event ids.

    On partitioned books the key is found in `event_key` (one index probe) and the row by
    (id, booking_month), pruned to its month's partition at run time; elsewhere the journal's
    own unique key is probed (`fetch_unique`).
    """
    if not is_partitioned_journal(conn):
        return fetch_unique(conn, "journal", columns, f"platform_id = {int(platform_id)}", "event_id", event_ids)
    event_ids = list(event_ids)
    if not event_ids:
        return []
    names = ", ".join(f"j.{column}" for column in columns)
    array, value = pg_array(event_ids, "text")
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute(f"SELECT k.key, e.entry_id, j.id IS NULL, {names} FROM unnest({array}) AS k(key) "
                       f"JOIN event_key e ON e.platform_id = %s AND e.event_id = k.key "
                       f"LEFT JOIN journal j ON j.id = e.entry_id AND j.booking_month = e.booking_month",
                       [value, int(platform_id)])
        found = cursor.fetchall()
    if not any(row[2] for row in found):
        return [(key, *values) for key, _entry_id, _archived, *values in found]
    # An entry of a month archived to Parquet: read back from its file.
    wanted = list(dict.fromkeys(("id", *columns)))
    picks = [wanted.index(column) for column in columns]
    archived = {row[0]: tuple(row[pick] for pick in picks)
                for row in archived_rows(conn, "id", [row[1] for row in found if row[2]], wanted)}
    return [(key, *(archived[entry_id] if gone else values)) for key, entry_id, gone, *values in found]


class ArchiveError(Exception):
    """The month cannot be archived or restored (the reason is the message)."""


class MonthArchived(ValueError):
    """A report that reads a month's entries was asked for an archived month."""


def refuse_archived(conn: Connection, month: int, what: str) -> None:
    """Raise `MonthArchived` when `month`'s entries are archived: a report read from the live
    journal would silently miss them (its figures and its legs' digest)."""
    archived = archived_months(conn)
    if month in archived:
        raise MonthArchived(f"{month_text(month)} is archived ({archived[month][0]}): restore it with "
                            f"`ansinh archive {month_text(month)} --restore` to read its {what}")


def _columns(conn: Connection) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind in query(
        conn, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'journal' "
              "AND table_schema = current_schema() ORDER BY ordinal_position")]


def archived_months(conn: Connection) -> dict[int, tuple[str, str, int, str]]:
    """Months archived now: month → (file, file sha256, entry count, hashes digest)."""
    if not is_partitioned_journal(conn):
        return {}
    latest: dict[int, tuple] = {}
    for month, action, path, sha256, count, digest in query(
            conn, "SELECT month, action, file, file_sha256, entry_count, hashes_sha256 FROM archived_month ORDER BY id"):
        latest[month] = (action, path, sha256, count, digest)
    return {month: row[1:] for month, row in latest.items() if row[0] == "archived"}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hashes_digest(hashes) -> str:
    digest = hashlib.sha256()
    for value in hashes:
        digest.update(bytes(value))
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _partitioned(conn: Connection) -> None:
    if not is_partitioned_journal(conn):
        raise ArchiveError("only PostgreSQL books with a journal partitioned by month (revision 0008) archive months")


def archive_month(ledger: Ledger, month_label: str, folder: str | Path) -> dict:
    """Archive a closed month; returns {"month", "file", "sha256", "entries"}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    month = parse_month(month_label)
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"journal_{month}.parquet"
    with ledger.engine.begin() as conn:
        _partitioned(conn)
        lock_chain_head(conn)
        last = last_closed_month(conn)
        if last is None or month > last:
            raise ArchiveError(f"{month_label} is not closed: only a closed month is archived")
        if month in archived_months(conn):
            raise ArchiveError(f"{month_label} is archived already")
        attached = _attached_months(conn)
        if month not in attached:
            raise ArchiveError(f"{month_label} has no partition of its own (its rows are in journal_default)")
        if attached[0] != month:
            # In calendar order: a refund is then never attached while its original is archived.
            raise ArchiveError(f"months archive in calendar order: archive {month_text(attached[0])} "
                               f"before {month_label}")
        # A refund booked into this month of an original booked later would leave the live books
        # unable to count it when the original is refunded again (ingest reads an original's
        # refunds from the archive files only when the original itself is archived).
        crossing = query(conn, f"SELECT r.id, o.id FROM journal_{month} r JOIN journal o ON o.id = r.original_entry_id "
                               "WHERE o.booking_month > ? LIMIT 1", (month,))
        if crossing:
            raise ArchiveError(f"{month_label} holds refund entry {crossing[0][0]} of entry {crossing[0][1]}, which is "
                               f"booked in a later month: {month_label} cannot be archived before it")
        if path.exists():
            raise ArchiveError(f"{path} exists: an archive file is never overwritten (another month or other "
                               "books wrote it); archive to another folder with --to")
        columns = _columns(conn)
        schema = pa.schema([(name, getattr(pa, _ARROW_TYPES[kind])()) for name, kind in columns])
        names = ", ".join(name for name, _kind in columns)
        partial = path.with_suffix(".parquet.partial")
        count, hashes = 0, hashlib.sha256()
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for rows in stream_rows(conn, f"SELECT {names} FROM journal_{month} ORDER BY id"):
                batch = pa.Table.from_pylist([dict(zip(schema.names, row)) for row in rows], schema=schema)
                writer.write_table(batch)
                count += len(rows)
                for row in rows:
                    hashes.update(bytes(row[schema.names.index("entry_hash")]))
        stored = pq.read_table(partial, columns=["entry_hash"]).column("entry_hash").to_pylist()
        if len(stored) != count or _hashes_digest(stored) != hashes.hexdigest():
            partial.unlink(missing_ok=True)
            raise ArchiveError(f"the Parquet file of {month_label} does not read back as written")
        _fsync(partial)
        os.replace(partial, path)
        _fsync(folder)  # the file is on disk before the partition is dropped (it is then the only copy)
        sha256 = _file_sha256(path)
        next_id = query(conn, "SELECT coalesce(max(id), 0) + 1 FROM archived_month")[0][0]
        insert_rows(conn, "archived_month", ("id", "month", "action", "file", "file_sha256", "entry_count",
                                             "hashes_sha256", "recorded_at"),
                    [(next_id, month, "archived", str(path), sha256, count, hashes.hexdigest(),
                      iso_utc(ledger.clock()))])
        query(conn, f"ALTER TABLE journal DETACH PARTITION journal_{month}")
        query(conn, f"DROP TABLE journal_{month}")
    return {"month": month_label, "file": str(path), "sha256": sha256, "entries": count}


def _attach_from_file(conn: Connection, month: int, path: str, sha256: str, count: int, digest: str) -> None:
    """Load an archived month's file into `journal_YYYYMM` and attach it (checks the file first)."""
    import pyarrow.parquet as pq

    label = month_text(month)
    file = Path(path)
    if not file.exists():
        raise ArchiveError(f"{label} is archived in {path}, which is missing")
    if _file_sha256(file) != sha256:
        raise ArchiveError(f"{label}: {path} is not the file archived (its sha256 differs)")
    table = pq.read_table(file)
    names = table.column_names
    hashes = table.column("entry_hash").to_pylist()
    if len(hashes) != count or _hashes_digest(hashes) != digest:
        raise ArchiveError(f"{label}: {path} does not hold the entries archived")
    query(conn, f"CREATE TABLE journal_{month} (LIKE journal INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    rows = list(zip(*(table.column(name).to_pylist() for name in names)))
    insert_rows(conn, f"journal_{month}", names, rows)
    query(conn, f"ALTER TABLE journal ATTACH PARTITION journal_{month} FOR VALUES FROM ({month}) TO ({month + 1})")
    for statement in PARTITION_TRIGGERS:
        query(conn, statement.format(name=f"journal_{month}"))


def archived_rows(conn: Connection, column: str, values, columns) -> list[tuple]:
    """`columns` of the archived entries whose `column` is in `values`, read from every archived
    month's file (ingest's rare path: a redelivered or refunded event of an archived month)."""
    import pyarrow.parquet as pq

    values = sorted({int(value) for value in values})
    found: list[tuple] = []
    for month, (path, sha256, _count, _digest) in sorted(archived_months(conn).items()):
        if not Path(path).exists():
            raise ArchiveError(f"{month_text(month)} is archived in {path}, which is missing")
        table = pq.read_table(path, columns=list(columns), filters=[(column, "in", values)])
        found.extend(zip(*(table.column(name).to_pylist() for name in columns)))
    return found


def _attached_months(conn: Connection) -> list[int]:
    return sorted(int(name.removeprefix("journal_")) for (name,) in query(
        conn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
              "WHERE i.inhparent = 'journal'::regclass AND c.relname <> 'journal_default'"))


def restore_month(ledger: Ledger, month_label: str) -> dict:
    """Bring an archived month back from its file; returns {"month", "file", "entries"}."""
    month = parse_month(month_label)
    with ledger.engine.begin() as conn:
        _partitioned(conn)
        lock_chain_head(conn)
        archived = archived_months(conn)
        if month not in archived:
            raise ArchiveError(f"{month_label} is not archived")
        if month != max(archived):
            raise ArchiveError(f"months are restored latest first: restore {month_text(max(archived))} "
                               f"before {month_label}")
        path, sha256, count, digest = archived[month]
        _attach_from_file(conn, month, path, sha256, count, digest)
        next_id = query(conn, "SELECT coalesce(max(id), 0) + 1 FROM archived_month")[0][0]
        insert_rows(conn, "archived_month", ("id", "month", "action", "file", "file_sha256", "entry_count",
                                             "hashes_sha256", "recorded_at"),
                    [(next_id, month, "restored", path, sha256, count, digest, iso_utc(ledger.clock()))])
    return {"month": month_label, "file": path, "entries": count}


def mounted_archives(conn: Connection) -> Iterator[str]:
    """Attach every archived month from its file inside the caller's transaction (which must
    be rolled back); yields one line per month for `verify`'s report. A missing or altered
    file raises ArchiveError."""
    for month, (path, sha256, count, digest) in sorted(archived_months(conn).items()):
        _attach_from_file(conn, month, path, sha256, count, digest)
        yield f"{month_text(month)} archived in {path} ({count} entries, read back for this check)"

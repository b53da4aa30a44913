"""Exports of the whole book for people and tools outside the system.

- `export_parquet(ledger, folder)`: every table of the books (journal, postings, blocks,
  closes, household statuses, rules versions, platforms, workers by pseudonym, the
  aggregates and the chain head) as one Parquet file each, plus `manifest.json` with
  row counts, each file's SHA-256 and the chain head, all read from one snapshot. The
  encrypted national ids stay behind: an export identifies workers by pseudonym only.
  Rows stream in batches (memory flat in the size of the books).
- `export_beancount(ledger, path)`: the journal as a Beancount ledger, one transaction
  per entry, dated the first day of its booking month, so an established double-entry
  tool (`bean-check`, `bean-query`, Fava) can recompute every balance independently.
  Accounts: `Liabilities:Workers:W<id>:<SCHEME>:<Party>` (credit balances: what the funds
  owe each worker, split by who paid), `Assets:Receivable:Platforms:P<id>-<name>`,
  `Assets:Receivable:State:<SCHEME>`, `Liabilities:SubsidyClearing:M<yyyymm>:<SCHEME>`,
  `Assets:Bank` (payments received), `Income:LateInterest:P<id>-<name>`.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import IO, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import BigInteger, Integer, LargeBinary, SmallInteger
from sqlmodel import SQLModel

from ledger import schema as _tables  # noqa: F401 - registers the tables in SQLModel.metadata
from ledger.accounts import PARTY_NAME, SCHEME_NAME, AccountKind, EntryType
from ledger.books import Ledger
from ledger.files import private_open, write_private
from ledger.store import consistent_snapshot

ROWS_PER_BATCH = 100_000
# (table, ORDER BY, columns left out and why)
PARQUET_TABLES = (
    ("platform", "id", ()),
    ("worker", "id", ("national_id_encrypted",)),  # personal data: an export names workers by pseudonym
    ("rules_version", "id", ()),
    ("journal", "id", ()),
    ("posting", "entry_id, leg", ()),
    ("legs", "entry_id, leg", ()),  # the view: every leg, the compact rows' ones included (docs/accounts.md)
    ("block", "id", ()),
    ("month_close", "month", ()),
    ("household_tier", "id", ()),
    ("worker_month", "worker_id, month, scheme, platform_id", ()),
    ("platform_month", "platform_id, month, scheme", ()),
    ("ledger_state", "id", ()),
    ("money_record", "id", ()),
    ("money_close", "month", ()),
    ("worker_identity_change", "id", ("national_id_encrypted",)),  # as worker: the seal stands for the id
    ("key_check", "key_id", ()),
    ("credited_month", "id", ()),  # months credited towards a pension (RULES.md §11), sealed like identity rows
)


class ExportError(Exception):
    """An export that cannot be written (the reason is safe to show)."""


def _arrow_type(column) -> pa.DataType:
    if isinstance(column.type, LargeBinary):
        return pa.binary()
    if isinstance(column.type, (BigInteger, Integer, SmallInteger)):
        return pa.int64()
    return pa.string()


def _stream(conn, sql: str) -> Iterator[list[tuple]]:
    """Rows of `sql` in batches: a server-side cursor on PostgreSQL, a plain cursor on SQLite."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        cursor = raw.execute(sql)
    else:
        cursor = raw.cursor(name=f"export_{abs(hash(sql)) % 10**8}")
        cursor.itersize = ROWS_PER_BATCH
        cursor.execute(sql)
    try:
        while True:
            rows = cursor.fetchmany(ROWS_PER_BATCH)
            if not rows:
                return
            yield rows
    finally:
        cursor.close()


def export_parquet(ledger: Ledger, folder: str | Path) -> dict:
    """Write every table of the books under `folder` (created; must be empty); return the manifest."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ExportError(f"{folder} is not empty; an export never mixes with other files")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    manifest: dict = {"format": "ansinh-parquet-1", "tables": {}}
    with consistent_snapshot(ledger) as conn:
        for table, order, left_out in PARQUET_TABLES:
            source = SQLModel.metadata.tables["posting" if table == "legs" else table]
            columns = [column for column in source.columns if column.name not in left_out]
            schema = pa.schema([pa.field(column.name, _arrow_type(column)) for column in columns])
            names = ", ".join(column.name for column in columns)
            path = folder / f"{table}.parquet"
            count = 0
            write_private(path, b"")  # 0600 first: Arrow truncates the file and keeps its mode
            with pq.ParquetWriter(path, schema, compression="zstd") as writer:
                for rows in _stream(conn, f"SELECT {names} FROM {table} ORDER BY {order}"):
                    values = list(zip(*rows))
                    arrays = [pa.array([bytes(v) if v is not None and field.type == pa.binary() else v
                                        for v in column_values], type=field.type)
                              for field, column_values in zip(schema, values)]
                    writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                    count += len(rows)
            manifest["tables"][table] = {"rows": count, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                         "left_out": list(left_out)}
        state = next(_stream(conn, "SELECT chain_head_hash, block_count FROM ledger_state WHERE id = 1"))[0]
    manifest["chain_head"] = bytes(state[0]).hex()
    manifest["blocks"] = int(state[1])
    write_private(folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


# -- Beancount ----------------------------------------------------------------------------------------

_NOT_IN_ACCOUNT = re.compile(r"[^A-Za-z0-9-]")
_PARTY = {name: name.title() for name in PARTY_NAME.values()}


def beancount_account(kind: int, owner: int, scheme: int, party: int, platform_names: dict[int, str]) -> str:
    """The Beancount account of one posting (see the module docstring)."""
    if kind == AccountKind.worker:
        return f"Liabilities:Workers:W{owner}:{SCHEME_NAME[scheme].upper()}:{_PARTY[PARTY_NAME[party]]}"
    if kind == AccountKind.platform:
        return f"Assets:Receivable:Platforms:P{owner}-{_NOT_IN_ACCOUNT.sub('-', platform_names[owner])}"
    if kind == AccountKind.state:
        return f"Assets:Receivable:State:{SCHEME_NAME.get(scheme, 'Unallocated').upper()}"
    if kind == AccountKind.clearing:
        return f"Liabilities:SubsidyClearing:M{owner}:{SCHEME_NAME[scheme].upper()}"
    if kind == AccountKind.bank:
        return "Assets:Bank"
    if kind == AccountKind.late_interest:
        return f"Income:LateInterest:P{owner}-{_NOT_IN_ACCOUNT.sub('-', platform_names[owner])}"
    raise ExportError(f"posting of an unknown account kind {kind}")


def _day(month: int) -> str:
    return f"{month // 100:04d}-{month % 100:02d}-01"


def _narration(entry_type: int, platform: str | None, event_id: str | None, month: int) -> tuple[str, str]:
    kind = EntryType(entry_type).name
    if entry_type in (EntryType.event, EntryType.refund):
        return kind, f"{platform}/{event_id}"
    return kind.replace("_", " "), f"{_day(month)[:7]}"


def export_beancount(ledger: Ledger, path: str | Path) -> int:
    """Write the journal as a Beancount file; return the number of transactions written."""
    path = Path(path)
    if path.exists():
        raise ExportError(f"{path} already exists; an export never overwrites a file")
    with consistent_snapshot(ledger) as conn, private_open(path, "w", exclusive=True, encoding="utf-8") as out:
        return _write_beancount(conn, out)


def _write_beancount(conn, out: IO[str]) -> int:
    platform_names = {row_id: name for rows in _stream(conn, "SELECT id, name FROM platform") for row_id, name in rows}
    first = [row for rows in _stream(conn, "SELECT min(booking_month) FROM journal") for row in rows][0][0]
    out.write('option "title" "ansinh books"\noption "operating_currency" "VND"\n\n')
    out.write("1970-01-01 commodity VND\n\n")
    if first is None:
        return 0
    for rows in _stream(conn, "SELECT DISTINCT account_kind, owner_id, scheme, party FROM legs "
                              "ORDER BY account_kind, owner_id, scheme, party"):
        for kind, owner, scheme, party in rows:
            out.write(f"{_day(first)} open {beancount_account(kind, owner, scheme, party, platform_names)} VND\n")
    out.write("\n")
    legs = (leg for rows in _stream(conn, "SELECT entry_id, account_kind, owner_id, scheme, party, amount_vnd "
                                          "FROM legs ORDER BY entry_id, leg") for leg in rows)
    pending = next(legs, None)
    written = 0
    for rows in _stream(conn, "SELECT id, entry_type, platform_id, event_id, booking_month, occurred_month, "
                              "entry_hash FROM journal ORDER BY id"):
        for entry_id, entry_type, platform_id, event_id, month, occurred_month, digest in rows:
            lines = []
            while pending is not None and pending[0] == entry_id:
                _entry, kind, owner, scheme, party, amount = pending
                lines.append(f"  {beancount_account(kind, owner, scheme, party, platform_names)}  {amount} VND\n")
                pending = next(legs, None)
            if not lines:
                out.write(f"; entry {entry_id}: no postings (every share rounds to zero)\n")
                continue
            payee, narration = _narration(entry_type, platform_names.get(platform_id), event_id, month)
            out.write(f'{_day(month)} * "{payee}" "{narration}"\n  entry: "{entry_id}"\n'
                      f'  hash: "{bytes(digest).hex()}"\n')
            if occurred_month is not None and occurred_month != month:
                out.write(f'  occurred: "{_day(occurred_month)[:7]}"\n')
            out.writelines(lines)
            out.write("\n")
            written += 1
    return written

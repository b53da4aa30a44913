"""Bytes on disk per booked event, per table and per index, on SQLite and PostgreSQL.

    python benchmarks/bytes.py [--events 100000] [--postgres] [--no-sqlite] [--keep DIR]

Generates N events (benchmarks/ingest.py's month of synthetic traffic: refunds,
duplicates and bad events of every code), books them in process through
`ledger.ingest.ingest_stream` into fresh books, then measures every relation:

- SQLite: `dbstat` pages of each table and index (`pgsize`), and the file size after a
  WAL checkpoint (what the targets count);
- PostgreSQL: `pg_relation_size` of each table (heap, TOAST) and index, partitions by
  name, and `pg_total_relation_size` of all of them, after `CHECKPOINT` (no VACUUM: the
  free-space and visibility maps of a fresh table are what a live ledger has too).

Per booked event = bytes over journal rows (events, refunds, subsidies). Targets
(issue 15): ≤ 150 bytes on SQLite, ≤ 250 on PostgreSQL. Writes the figures as JSON
under benchmarks/results/ and prints the breakdown. `measure_sqlite` / `measure_postgres`
are what tests call on small books.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
SECRET = secrets.token_hex(32)
TARGETS = {"sqlite": 150, "postgresql": 250}


def measure_sqlite(path: Path) -> dict:
    """Bytes of each table and index of an SQLite file (dbstat), its size and its journal rows."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'index')"))
        relations = {name: {"kind": kinds.get(name, "table"), "bytes": int(size), "pages": int(pages)}
                     for name, size, pages in conn.execute(
                         "SELECT name, sum(pgsize), count(*) FROM dbstat GROUP BY name ORDER BY 2 DESC")}
        entries = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count, free = (conn.execute("PRAGMA page_count").fetchone()[0],
                            conn.execute("PRAGMA freelist_count").fetchone()[0])
    finally:
        conn.close()
    return {"entries": entries, "file_bytes": path.stat().st_size, "page_size": page_size,
            "pages": page_count, "free_pages": free, "relations": relations}


def measure_postgres(url: str) -> dict:
    """Bytes of each table (heap + TOAST) and index of the books' schema, and its journal rows."""
    from sqlalchemy import create_engine

    from ledger.store import database_url

    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.commit()
            raw.autocommit = True
            raw.execute("CHECKPOINT")
            rows = raw.execute(
                "SELECT c.relname, c.relkind, pg_relation_size(c.oid), pg_table_size(c.oid), "
                "pg_total_relation_size(c.oid) FROM pg_class c "
                "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
                "AND c.relkind IN ('r', 'i', 'p', 'I') ORDER BY 5 DESC").fetchall()
            entries = raw.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        engine.dispose()
    relations = {}
    total = 0
    for name, kind, main, table, whole in rows:
        kind = {"r": "table", "p": "table", "i": "index", "I": "index"}[kind]
        relations[name] = {"kind": kind, "main_bytes": int(main),
                           "bytes": int(table if kind == "table" else whole)}  # heap + TOAST + maps, or the index
        total += relations[name]["bytes"]
    return {"entries": entries, "total_bytes": total, "relations": relations}


def per_event(figures: dict) -> dict:
    """Bytes per journal row: the whole, and each relation of at least 0.5 bytes/event."""
    entries = max(figures["entries"], 1)
    whole = figures.get("file_bytes", figures.get("total_bytes"))
    return {"bytes_per_event": whole / entries,
            "by_relation": {name: round(value["bytes"] / entries, 2) for name, value in figures["relations"].items()
                            if value["bytes"] / entries >= 0.5}}


def book(url: str, events_file: Path) -> dict:
    """Book the file into fresh books at `url` (in process): wall seconds, this process's CPU
    seconds, and on PostgreSQL the CPU seconds of the server backends it used (read from
    /proc: the server runs on this machine), so the write path's cost on each side is seen
    apart from the load of other processes."""
    from sqlalchemy import event

    from ledger.books import Ledger
    from ledger.ingest import ingest_stream
    from ledger.readers import read_events

    ledger = Ledger.open(url, secret=SECRET)
    backends: set[int] = set()
    if ledger.engine.dialect.name == "postgresql":
        event.listen(ledger.engine, "checkout", lambda dbapi, _record, _proxy: backends.add(dbapi.info.backend_pid))
        with ledger.engine.connect() as conn:  # the pool's connection the ingest will take again
            conn.rollback()
    try:
        server_before = {pid: _cpu_seconds(pid) for pid in backends}
        started, cpu_started = time.perf_counter(), time.process_time()
        for _chunk in ingest_stream(ledger, read_events(str(events_file))):
            pass
        figures = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started}
        if backends:
            figures["server_cpu_seconds"] = sum(_cpu_seconds(pid) - server_before.get(pid, 0.0) for pid in backends)
        return figures
    finally:
        ledger.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (0 when it is gone or not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(events: int, *, folder: Path, seed: int = 7, sqlite: bool = True, postgres: bool = False,
        keep_schema: bool = False) -> dict:
    from benchmarks.ingest import _pg_drop, _pg_schema, generate, pg_url

    folder.mkdir(parents=True, exist_ok=True)
    events_file = folder / f"events-{events}-seed{seed}.ndjson"
    if not events_file.exists():
        generate(events_file, events, seed)
    results: dict = {"events": events, "load_average": os.getloadavg()}
    if sqlite:
        path = folder / "bytes.db"
        for stale in folder.glob("bytes.db*"):
            stale.unlink()
        timing = book(f"sqlite:///{path}", events_file)
        figures = measure_sqlite(path)
        results["sqlite"] = {**figures, **per_event(figures), **timing, "target": TARGETS["sqlite"]}
    if postgres:
        schema = _pg_schema()
        try:
            timing = book(pg_url(schema), events_file)
            figures = measure_postgres(pg_url(schema))
            results["postgresql"] = {**figures, **per_event(figures), **timing,
                                     "target": TARGETS["postgresql"], "schema": schema if keep_schema else None}
        finally:
            if not keep_schema:
                _pg_drop(schema)
    return results


def _print(store: str, figures: dict) -> None:
    server = f", server {figures['server_cpu_seconds']:.1f} s" if "server_cpu_seconds" in figures else ""
    print(f"{store}: {figures['bytes_per_event']:.1f} bytes per booked event over {figures['entries']:,} journal "
          f"rows (target ≤ {figures['target']}); booked in {figures['seconds']:.1f} s, CPU {figures['cpu_seconds']:.1f} s"
          f"{server}")
    for name, value in figures["by_relation"].items():
        kind = figures["relations"][name]["kind"]
        print(f"  {name:<36} {kind:<6} {value:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the generated file, the SQLite file and the schema")
    args = parser.parse_args()
    os.environ.setdefault("ANSINH_SECRET", SECRET)
    with tempfile.TemporaryDirectory(prefix="ansinh-bytes-") as scratch:
        folder = args.keep or Path(scratch)
        results = run(args.events, folder=folder, seed=args.seed, sqlite=not args.no_sqlite,
                      postgres=args.postgres, keep_schema=args.keep is not None)
    for store in ("sqlite", "postgresql"):
        if store in results:
            _print(store, results[store])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bytes-{args.events}e-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

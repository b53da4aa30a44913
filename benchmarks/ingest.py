"""Ingest benchmark: N generated events from NDJSON into a fresh ledger, beside plain baselines.

    python benchmarks/ingest.py [--events 1000000] [--postgres] [--no-sqlite] [--keep DIR]

Measures `ansinh ingest FILE --outcomes OUT` (validated, idempotent, double-entry,
per-item outcomes written) in a child process: events/s over the command's wall time
and its peak RSS. Beside it, in the same run, two baselines with no validation:

- event rows: one row per input event (the eight event fields) — `sqlite3.executemany`
  into a bare table, or `COPY` on PostgreSQL;
- ledger rows: the journal and posting rows the ingest wrote (one entry and its legs per
  event), read back and written again into a fresh ledger of the same schema (indexes and
  guard triggers included) by plain `executemany` / `COPY`: the storage floor.

Writes the figures as JSON under benchmarks/results/ and prints a summary per store.
Targets (../shared/TARGETS.md): ≥ 100,000 events/s on SQLite, ≥ 50,000 on PostgreSQL,
RSS < 500 MB. `run()` is what tests/test_benchmarks_smoke.py calls on a tiny file.
"""
from __future__ import annotations

import secrets
import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PG_URL = os.environ.get("ANSINH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
COLUMNS = ("event_id", "platform", "kind", "action", "worker_id", "amount", "occurred_at", "original_event_id")
CHUNK = 20_000  # rows per transaction in the baselines, entries per transaction in the CLI's default
# The rows the ingest itself writes (the compact layout: one journal row an event, postings for
# multi-leg entries only), so the floor is always the same rows as the measured ingest.
from ledger.postings import JOURNAL_COLUMNS, POSTING_COLUMNS  # noqa: E402


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "python": sys.version.split()[0], "cpu": cpu,
            "cores": os.cpu_count(), "sqlite": sqlite3.sqlite_version, "load_average": os.getloadavg()}


def generate(path: Path, events: int, seed: int) -> int:
    """A month of synthetic traffic (refunds, duplicates, bad events of every code) as NDJSON."""
    from simulations.synthetic_events import generate_events, write_ndjson

    workers = max(2_000, events // 150)
    return write_ndjson(path, generate_events(seed=seed, month="2026-01", workers=workers, events=events))


def event_rows(path: Path) -> Iterator[tuple]:
    """The eight event fields of each JSON object of the file, as they are (no checks)."""
    with path.open("rb") as stream:
        for line in stream:
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(item) is dict:
                yield tuple(item.get(column) if type(item.get(column)) in (str, int) else None
                            for column in COLUMNS)


def _chunks(rows, size: int = CHUNK) -> Iterator[list]:
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def baseline_sqlite_events(path: Path, folder: Path) -> dict:
    database = folder / "baseline-events.db"
    for stale in folder.glob("baseline-events.db*"):
        stale.unlink()
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"CREATE TABLE event ({', '.join(COLUMNS)})")
    statement = f"INSERT INTO event VALUES ({', '.join('?' * len(COLUMNS))})"
    count = 0
    started = time.perf_counter()
    for batch in _chunks(event_rows(path)):
        conn.execute("BEGIN")
        conn.executemany(statement, batch)
        conn.execute("COMMIT")
        count += len(batch)
    elapsed = time.perf_counter() - started
    conn.close()
    return {"rows": count, "seconds": elapsed, "rows_per_s": count / elapsed}


def _ledger_row_chunks(ledger_db: Path) -> Iterator[tuple[list, list]]:
    """(posting rows, journal rows) of the SQLite ledger at `ledger_db`, CHUNK entries at a time."""
    source = sqlite3.connect(f"file:{ledger_db}?mode=ro", uri=True)
    last = source.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()[0]
    for start in range(1, last + 1, CHUNK):
        end = start + CHUNK - 1
        postings = source.execute(f"SELECT {', '.join(POSTING_COLUMNS)} FROM posting "
                                  "WHERE entry_id BETWEEN ? AND ? ORDER BY entry_id, leg", (start, end)).fetchall()
        journal = source.execute(f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM journal "
                                 "WHERE id BETWEEN ? AND ? ORDER BY id", (start, end)).fetchall()
        yield postings, journal
    source.close()


def baseline_sqlite_ledger_rows(ledger_db: Path, folder: Path) -> dict:
    """The ingest's own journal and posting rows, `executemany` into a fresh ledger (same schema)."""
    from ledger.books import Ledger

    database = folder / "baseline-ledger.db"
    for stale in folder.glob("baseline-ledger.db*"):
        stale.unlink()
    os.environ.setdefault("ANSINH_SECRET", SECRET)
    Ledger.open(f"sqlite:///{database}", secret=SECRET).close()  # migrated: the same tables, indexes and guards
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    posting_sql = f"INSERT INTO posting VALUES ({', '.join('?' * len(POSTING_COLUMNS))})"
    journal_sql = f"INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) VALUES ({', '.join('?' * len(JOURNAL_COLUMNS))})"
    entries = postings = 0
    elapsed = 0.0
    for posting_rows, journal_rows in _ledger_row_chunks(ledger_db):
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(posting_sql, posting_rows)
        conn.executemany(journal_sql, journal_rows)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - started
        entries += len(journal_rows)
        postings += len(posting_rows)
    conn.close()
    return {"entries": entries, "postings": postings, "seconds": elapsed,
            "entries_per_s": entries / elapsed if elapsed else 0.0}


def _pg_schema() -> str:
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def _pg_drop(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_url(schema: str) -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}"


def baseline_copy_events(path: Path) -> dict:
    import psycopg

    schema = _pg_schema()
    try:
        with psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema}") as conn:
            conn.execute("CREATE TABLE event (event_id text, platform text, kind text, action text, worker_id text, "
                         "amount bigint, occurred_at text, original_event_id text)")
            count = 0
            started = time.perf_counter()
            for batch in _chunks(event_rows(path)):
                with conn.transaction():
                    with conn.cursor().copy(f"COPY event ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
                count += len(batch)
            elapsed = time.perf_counter() - started
    finally:
        _pg_drop(schema)
    return {"rows": count, "seconds": elapsed, "rows_per_s": count / elapsed}


def baseline_copy_ledger_rows(ledger_db: Path) -> dict:
    """The ingest's own journal and posting rows, `COPY` into a fresh PostgreSQL ledger (same schema)."""
    import psycopg

    from ledger.books import Ledger

    schema = _pg_schema()
    try:
        os.environ.setdefault("ANSINH_SECRET", SECRET)
        Ledger.open(pg_url(schema), secret=SECRET).close()
        entries = postings = 0
        elapsed = 0.0
        with psycopg.connect(PG_URL, options=f"-csearch_path={schema}") as conn:
            for posting_rows, journal_rows in _ledger_row_chunks(ledger_db):
                started = time.perf_counter()
                with conn.cursor() as cursor:
                    with cursor.copy(f"COPY posting ({', '.join(POSTING_COLUMNS)}) FROM STDIN") as copy:
                        for row in posting_rows:
                            copy.write_row(row)
                    with cursor.copy(f"COPY journal ({', '.join(JOURNAL_COLUMNS)}) FROM STDIN") as copy:
                        for row in journal_rows:
                            copy.write_row(row)
                conn.commit()
                elapsed += time.perf_counter() - started
                entries += len(journal_rows)
                postings += len(posting_rows)
    finally:
        _pg_drop(schema)
    return {"entries": entries, "postings": postings, "seconds": elapsed,
            "entries_per_s": entries / elapsed if elapsed else 0.0}


# `ansinh ingest` run as `python -m api.cli`, writing the booking process's own CPU seconds (all its
# threads, not the reading child it forks, which leaves by os._exit) to the file named last.
_CLI_WITH_OWN_CPU = (
    "import atexit, resource, runpy, sys\n"
    "cpu_file = sys.argv.pop()\n"
    "def _own_cpu():\n"
    "    used = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    open(cpu_file, 'w').write(repr(used.ru_utime + used.ru_stime))\n"
    "atexit.register(_own_cpu)\n"
    "sys.argv[0] = 'ansinh'\n"
    "runpy.run_module('api.cli', run_name='__main__', alter_sys=True)\n")


def run_ingest(path: Path, url: str, folder: Path, ahead: str | None = None, code: Path = ROOT) -> dict:
    """`ansinh ingest` in a child process: wall time, peak RSS, and the outcomes it wrote.

    The command's CPU time and peak RSS come from `wait4`: they include the process it forks
    to read and check ahead (`--ahead`, `ledger.pipeline`), its RSS the larger of the two.
    The booking process's own CPU time is written by the command at exit; the reading
    child's is the difference. `code`: the tree whose `ansinh` runs (another commit's export).
    """
    env = dict(os.environ, ANSINH_DATABASE_URL=url, ANSINH_SECRET=SECRET, PYTHONPATH=str(code))
    outcomes_file = folder / "outcomes.ndjson"
    cpu_file = folder / "booking-cpu.txt"
    cpu_file.unlink(missing_ok=True)
    command = [sys.executable, "-c", _CLI_WITH_OWN_CPU, "ingest", str(path), "--outcomes", str(outcomes_file),
               *(["--ahead", ahead] if ahead else []), str(cpu_file)]
    with (folder / "ingest.out").open("wb") as out, (folder / "ingest.err").open("wb") as err:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=code, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    summary = (folder / "ingest.out").read_text()
    if status != 0:
        raise SystemExit(f"ansinh ingest failed: {(folder / 'ingest.err').read_text()[-2000:]}")
    outcomes: Counter = Counter()
    with outcomes_file.open("rb") as stream:
        for line in stream:
            outcomes[orjson.loads(line)["outcome"]] += 1
    inner = re.search(r"in ([0-9.]+) s", summary)
    cpu = usage.ru_utime + usage.ru_stime
    booking_cpu = float(cpu_file.read_text()) if cpu_file.exists() else None
    return {"seconds": elapsed, "ingest_seconds": float(inner.group(1)) if inner else None,
            "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": cpu, "booking_cpu_seconds": booking_cpu,
            "reading_cpu_seconds": None if booking_cpu is None else cpu - booking_cpu,
            "load_average_before": load, "load_average_after": os.getloadavg()[0], "outcomes": dict(outcomes)}


def ledger_counts(url: str) -> dict:
    """Entries and postings in the books, and whether they balance."""
    from ledger.books import Ledger
    from ledger.store import query

    os.environ.setdefault("ANSINH_SECRET", SECRET)
    ledger = Ledger.open(url, secret=SECRET)  # the secret the ingest ran with (the books check their keys)
    try:
        with ledger.engine.connect() as conn:
            entries, postings, total = query(conn, "SELECT (SELECT count(*) FROM journal), "
                                                   "(SELECT count(*) FROM posting), "
                                                   "(SELECT coalesce(sum(amount_vnd), 0) FROM posting)")[0]
            conn.rollback()
    finally:
        ledger.close()
    return {"entries": int(entries), "postings": int(postings), "postings_sum_vnd": int(total)}


def _figures(count: int, ours: dict) -> dict:
    return {"events_per_s": count / ours["seconds"],
            "events_per_s_inside_command": count / ours["ingest_seconds"] if ours["ingest_seconds"] else None,
            "seconds": ours["seconds"], "cpu_seconds": ours["cpu_seconds"],
            "events_per_cpu_s": count / ours["cpu_seconds"], "peak_rss_mb": ours["peak_rss_mb"],
            "booking_us_per_event": _per_event_us(ours["booking_cpu_seconds"], count),
            "reading_us_per_event": _per_event_us(ours["reading_cpu_seconds"], count),
            "load_average": [ours["load_average_before"], ours["load_average_after"]],
            "outcomes": ours["outcomes"]}


def _per_event_us(seconds: float | None, count: int) -> float | None:
    return None if seconds is None else seconds / count * 1e6


def run(events: int, *, folder: Path, seed: int = 7, sqlite: bool = True, postgres: bool = False,
        baselines: bool = True, keep_schema: bool = False, ahead: str | None = None,
        codes: tuple[Path, ...] = (ROOT,), rounds: int = 1, ledger_floor: bool = True) -> dict:
    """Generate (or reuse) the file, ingest it into each store, measure the baselines; the figures.

    Per store, `rounds` rounds of: the event-rows floor, then the ingest by each tree of `codes`
    (their order alternating round by round), each ingest's ratio to its round's floor. The
    ledger-rows floor once, after the rounds (the rows of the last SQLite ingest)."""
    folder.mkdir(parents=True, exist_ok=True)
    events_file = folder / f"events-{events}-seed{seed}.ndjson"
    if not events_file.exists():
        print(f"generating {events:,} events …", flush=True)
        generate(events_file, events, seed)
    count = sum(1 for _ in events_file.open("rb"))
    results: dict = {"events": count, "file_mb": events_file.stat().st_size / 2**20, "machine": machine(),
                     "ahead": ahead or "auto", "commit": _commit(), "codes": [str(code) for code in codes],
                     "rounds": []}
    ledger_db = folder / "ledger.db"
    stores = [store for store, wanted in (("sqlite", sqlite), ("postgresql", postgres)) if wanted]
    for number in range(rounds):
        order = list(codes) if number % 2 == 0 else list(codes)[::-1]
        for store in stores:
            floor = None
            if baselines:
                floor = baseline_sqlite_events(events_file, folder) if store == "sqlite" else \
                    baseline_copy_events(events_file)
            for code in order:
                figures = _ingest_once(store, events_file, folder, ledger_db, ahead, code, keep_schema, count)
                figures.update(round=number + 1, code=str(code), floor_event_rows=floor,
                               ratio_to_floor=figures["events_per_s"] / floor["rows_per_s"] if floor else None)
                if floor:
                    figures["baseline_executemany_event_rows" if store == "sqlite" else
                            "baseline_copy_event_rows"] = floor
                results["rounds"].append(figures)
                _print(store, count, figures, "executemany" if store == "sqlite" else "COPY")
                results[store] = figures
    if baselines and ledger_floor and ledger_db.exists() and "sqlite" in stores:
        results["sqlite"]["baseline_executemany_ledger_rows"] = floor = baseline_sqlite_ledger_rows(ledger_db, folder)
        print(f"sqlite: plain executemany of the ledger rows: {floor['entries_per_s']:,.0f} events/s", flush=True)
    if baselines and ledger_floor and postgres and ledger_db.exists():
        results["postgresql"]["baseline_copy_ledger_rows"] = floor = baseline_copy_ledger_rows(ledger_db)
        print(f"postgresql: plain COPY of the ledger rows: {floor['entries_per_s']:,.0f} events/s", flush=True)
    results["machine"]["load_average_after"] = os.getloadavg()
    return results


def _ingest_once(store: str, events_file: Path, folder: Path, ledger_db: Path, ahead: str | None, code: Path,
                 keep_schema: bool, count: int) -> dict:
    if store == "sqlite":
        for stale in folder.glob("ledger.db*"):
            stale.unlink()
        ours = run_ingest(events_file, f"sqlite:///{ledger_db}", folder, ahead, code)
        return {"store": store, **_figures(count, ours), "books": ledger_counts(f"sqlite:///{ledger_db}"),
                "target_events_per_s": 100_000}
    schema = _pg_schema()
    try:
        ours = run_ingest(events_file, pg_url(schema), folder, ahead, code)
        return {"store": store, **_figures(count, ours), "books": ledger_counts(pg_url(schema)),
                "target_events_per_s": 50_000}
    finally:
        if not keep_schema:
            _pg_drop(schema)


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _print(store: str, count: int, figures: dict, plain: str) -> None:
    floor = figures.get("floor_event_rows")
    line = (f"{store} [{Path(figures['code']).name}]: ansinh ingest {figures['events_per_s']:,.0f} events/s over "
            f"{count:,} events ({figures['seconds']:.1f} s; {figures['events_per_cpu_s']:,.0f} per CPU-second")
    if figures.get("booking_us_per_event") is not None:
        line += (f"; CPU µs/event: booking {figures['booking_us_per_event']:.1f}, "
                 f"reading {figures['reading_us_per_event']:.1f}")
    line += f"; peak RSS {figures['peak_rss_mb']:.0f} MB)"
    if floor:
        line += (f" | plain {plain} of the event rows {floor['rows_per_s']:,.0f}/s, "
                 f"ratio {figures['ratio_to_floor']:.3f}")
    line += (f" | load {figures['load_average'][0]:.1f}→{figures['load_average'][1]:.1f}"
             f" | target {figures['target_events_per_s']:,}")
    print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", action="store_true", help="also measure PostgreSQL beside COPY")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite ingest (PostgreSQL only)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the generated file and databases here")
    parser.add_argument("--ahead", choices=("auto", "process", "thread", "none"),
                        help="ansinh ingest --ahead (default: the command's own, auto)")
    parser.add_argument("--code", type=Path, action="append",
                        help="run the ingest of this tree (an exported commit); repeat to compare trees "
                             "(default: this tree)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of floor + each tree's ingest, interleaved")
    parser.add_argument("--no-ledger-floor", action="store_true", help="skip the ledger-rows floor (after the rounds)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-bench-"))
    results = run(args.events, folder=folder, seed=args.seed, sqlite=not args.no_sqlite, postgres=args.postgres,
                  baselines=not args.no_baselines, ahead=args.ahead,
                  codes=tuple(code.resolve() for code in args.code or [ROOT]), rounds=args.rounds,
                  ledger_floor=not args.no_ledger_floor)
    results["command"] = " ".join(["python", "benchmarks/ingest.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ingest-{args.events}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

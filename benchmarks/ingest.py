"""Ingest benchmark: N generated events from NDJSON into a fresh ledger, beside a plain baseline.

    python benchmarks/ingest.py [--events 1000000] [--postgres] [--keep DIR]

Prints events/s and peak RSS of `ansinh ingest` (validated, idempotent, double-entry,
per-item outcomes written) beside, in the same run, a plain `sqlite3.executemany` of
the same rows with no validation (and, with --postgres, a plain `COPY`). Writes the
figures as JSON under benchmarks/results/. Targets (../shared/TARGETS.md): ≥ 100,000
events/s on SQLite, ≥ 50,000 on PostgreSQL, RSS < 500 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PG_URL = os.environ.get("ANSINH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
COLUMNS = ("event_id", "platform", "kind", "action", "worker_id", "amount", "occurred_at", "original_event_id")


def generate(path: Path, events: int, seed: int) -> int:
    sys.path.insert(0, str(ROOT))
    from simulations.synthetic_events import generate_events, write_ndjson

    workers = max(2_000, events // 150)
    return write_ndjson(path, generate_events(seed=seed, month="2026-01", workers=workers, events=events))


def rows_of(path: Path):
    with path.open("rb") as stream:
        for line in stream:
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(item) is dict:
                yield tuple(str(item.get(column)) if column != "amount" else None for column in COLUMNS)


def baseline_sqlite(path: Path, folder: Path) -> float:
    database = folder / "baseline.db"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"CREATE TABLE event ({', '.join(COLUMNS)})")
    started = time.perf_counter()
    batch: list[tuple] = []
    count = 0
    for row in rows_of(path):
        batch.append(row)
        if len(batch) == 20_000:
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO event VALUES ({', '.join('?' * len(COLUMNS))})", batch)
            conn.execute("COMMIT")
            count += len(batch)
            batch = []
    if batch:
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO event VALUES ({', '.join('?' * len(COLUMNS))})", batch)
        conn.execute("COMMIT")
        count += len(batch)
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def baseline_copy(path: Path) -> float:
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.event ({', '.join(c + ' text' for c in COLUMNS)})")
        started = time.perf_counter()
        count = 0
        with conn.transaction():
            with conn.cursor().copy(f"COPY {schema}.event FROM STDIN") as copy:
                for row in rows_of(path):
                    copy.write_row(row)
                    count += 1
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return count / elapsed


def run_ingest(path: Path, url: str, folder: Path) -> dict:
    """`ansinh ingest` in a child process; its own wall time and peak RSS."""
    env = dict(os.environ, ANSINH_DATABASE_URL=url, ANSINH_SECRET="benchmark-secret")
    command = [sys.executable, "-m", "api.cli", "ingest", str(path), "--outcomes", str(folder / "outcomes.ndjson")]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    output = child.stdout.read().decode()
    if status != 0:
        raise SystemExit(f"ansinh ingest failed: {child.stderr.read().decode()[-2000:]}")
    return {"seconds": elapsed, "peak_rss_mb": usage.ru_maxrss / 1024, "summary": output}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", action="store_true", help="also measure PostgreSQL beside COPY")
    parser.add_argument("--keep", type=Path, help="keep the generated file and databases here")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    events_file = folder / f"events-{args.events}.ndjson"
    if not events_file.exists():
        print(f"generating {args.events:,} events …", flush=True)
        generate(events_file, args.events, args.seed)
    count = sum(1 for _ in events_file.open("rb"))
    results: dict = {"events": count, "machine": platform.platform(), "python": sys.version.split()[0]}

    baseline = baseline_sqlite(events_file, folder)
    database = folder / "ledger.db"
    for stale in folder.glob("ledger.db*"):
        stale.unlink()
    ours = run_ingest(events_file, f"sqlite:///{database}", folder)
    results["sqlite"] = {"ansinh_events_per_s": count / ours["seconds"], "peak_rss_mb": ours["peak_rss_mb"],
                         "baseline_executemany_events_per_s": baseline, "target_events_per_s": 100_000}
    print(f"sqlite: ansinh ingest {count / ours['seconds']:,.0f} events/s (peak RSS {ours['peak_rss_mb']:.0f} MB) "
          f"| plain executemany {baseline:,.0f} rows/s | target 100,000")

    if args.postgres:
        copy_rate = baseline_copy(events_file)
        schema = "bench_" + uuid.uuid4().hex[:8]
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = PG_URL.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{schema}"
        ours = run_ingest(events_file, url, folder)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        results["postgresql"] = {"ansinh_events_per_s": count / ours["seconds"], "peak_rss_mb": ours["peak_rss_mb"],
                                 "baseline_copy_events_per_s": copy_rate, "target_events_per_s": 50_000}
        print(f"postgresql: ansinh ingest {count / ours['seconds']:,.0f} events/s (peak RSS "
              f"{ours['peak_rss_mb']:.0f} MB) | plain COPY {copy_rate:,.0f} rows/s | target 50,000")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

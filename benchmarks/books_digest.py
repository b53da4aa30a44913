"""Book a file into fresh books and print a digest of every table and of the outcomes: two versions
of the code book the same file into the same books only if their digests agree.

    ANSINH_SECRET=… PYTHONPATH=TREE python benchmarks/books_digest.py sqlite|postgres FILE [--ahead MODE]
                                                                      [--tiers CSV] [--close YYYY-MM …]

`TREE` is the code under test (this tree, or an exported older commit); the digest itself is
`tests/ledger/books_digest.py` of this tree, loaded by path. The clock is fixed, the secret is
the same for both runs (`ANSINH_SECRET`; generated and printed when unset: none is committed), and the nonce of each national id's encryption is derived from the id, so worker rows,
their seals and the block hashes are comparable too. docs/performance.md quotes its use
(issue 15: the books of 100,000 generated events, `main` against the forked reading).
`--tiers` imports a household tiers file after the ingest and `--close` closes those months in
order, so the close's writer is compared too (issue 15, item 7: subsidy entries as columns).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import secrets
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("ANSINH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _digest_module():
    spec = importlib.util.spec_from_file_location("books_digest", HERE / "tests" / "ledger" / "books_digest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", choices=("sqlite", "postgres"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--ahead", help="ingest_stream's ahead= (code that has it)")
    parser.add_argument("--tiers", type=Path, help="a national_id,tier,valid_from file imported after the ingest")
    parser.add_argument("--close", nargs="*", default=[], help="months closed after the ingest, in order")
    args = parser.parse_args()
    if not os.environ.get("ANSINH_SECRET"):  # both runs of a comparison need the same one (no secret is committed)
        os.environ["ANSINH_SECRET"] = secrets.token_hex(32)
        print(f"ANSINH_SECRET={os.environ['ANSINH_SECRET']}  # pass the same to the run it is compared with",
              file=sys.stderr)
    import ledger.ingest as ingest
    from ledger.books import Ledger
    from ledger.identity import IdentityKeys
    from ledger.readers import read_events

    digest = _digest_module()
    IdentityKeys.encrypt = digest._deterministic_encrypt
    schema = None
    if args.store == "postgres":
        import psycopg

        schema = "digest_" + uuid.uuid4().hex[:8]
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='ansinh-digest-')}/books.db"
    books = Ledger.open(url, pack="vn-pilot", clock=lambda: datetime(2026, 6, 1, tzinfo=timezone.utc))
    try:
        outcomes = hashlib.sha256()
        count = 0
        started = time.perf_counter()
        options = {"ahead": args.ahead} if args.ahead else {}
        for chunk in ingest.ingest_stream(books, read_events(str(args.file)), **options):
            for outcome in chunk:
                outcomes.update(orjson.dumps(tuple(outcome)))
                count += 1
        print(f"code {Path(ingest.__file__).resolve().parents[1]}, {args.store}, {count:,} items in "
              f"{time.perf_counter() - started:.1f} s")
        print("outcomes", outcomes.hexdigest()[:16])
        if args.tiers:
            from ledger.close import import_tiers

            print("tiers", import_tiers(books, args.tiers, import_id=args.tiers.name))
        for month in args.close:
            from ledger.close import close_month

            started = time.perf_counter()
            result = close_month(books, month)
            print(f"close {month}: {result.workers_subsidised:,} workers in {time.perf_counter() - started:.1f} s, "
                  f"anchor {result.anchor_hash[:16]}")
        tables = digest.table_rows(books)
        for table, rows in tables.items():
            if rows:
                print(table, len(rows), hashlib.sha256(orjson.dumps(rows)).hexdigest()[:16])
        print("all", hashlib.sha256(orjson.dumps(tables, option=orjson.OPT_SORT_KEYS)).hexdigest())
    finally:
        books.close()
        if schema:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()

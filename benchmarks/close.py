"""Month-close benchmark: load books for many workers, close the month, read statements.

    python benchmarks/close.py [--workers 100000] [--events 500000] [--postgres] [--no-sqlite]
                               [--samples 2000] [--keep DIR]

For each store, in one process on a fresh ledger:

1. load: `events` completed events of January 2026 for `workers` workers (every worker
   has at least one; platforms, kinds and fares drawn with a fixed seed), booked through
   the real ingest (`ledger.ingest.ingest_stream`), so every aggregate is the real one;
2. household tiers for 4 % poor and 3.5 % near-poor workers (`ledger.close.import_tiers`);
3. `close_month(ledger, "2026-01")`: wall time, and the time of each of its steps;
4. `statements(ledger, "2026-01")` over every worker: statements/s;
5. `statement(ledger, national_id, "2026-01")` for `samples` random workers, one at a
   time: latency p50 / p99 / max.

Checks as it goes that the figures agree (statements = workers, subsidies in the
statements = the close's total, accepted = events). Writes JSON under
benchmarks/results/ and prints one line per store. Targets (../shared/TARGETS.md):
close < 60 s for 1M workers / 30M events; statement p99 < 10 ms with 10M events stored.
`run()` is what tests/test_benchmarks_smoke.py calls on a tiny ledger.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.ingest import RESULTS, SECRET, _pg_drop, _pg_schema, machine, pg_url

MONTH = "2026-01"
MONTH_START = np.datetime64("2026-01-01T00:00:00")  # Vietnam local time; written with +07:00
PLATFORM_KINDS = (("grab", "ride"), ("grab", "delivery"), ("be", "ride"), ("xanhsm", "ride"),
                  ("shopeefood", "delivery"), ("shopee", "order"), ("lazada", "order"))
CHUNK = 20_000


def national_ids(workers: int, seed: int) -> list[str]:
    from simulations.synthetic_events import make_national_ids

    return make_national_ids(np.random.default_rng([seed, 1]), workers)


def events(ids: list[str], count: int, seed: int) -> Iterator[tuple[int, dict]]:
    """`(line, item)` pairs: `count` completed events of January 2026, each worker at least once."""
    rng = np.random.default_rng([seed, 2])
    workers = len(ids)
    home = rng.integers(0, len(PLATFORM_KINDS), size=workers)  # each worker's main platform and kind
    line = 0
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        first_round = np.arange(start, min(start + size, workers))  # worker i's first event is event i
        who = np.concatenate([first_round, rng.integers(0, workers, size - len(first_round))])
        where = np.where(rng.random(size) < 0.8, home[who], rng.integers(0, len(PLATFORM_KINDS), size))
        fare = np.where(np.isin(where, (5, 6)), rng.integers(20, 1_000, size) * 1_000,
                        rng.integers(26, 240, size) * 500)
        seconds = rng.integers(0, 31 * 86_400, size)
        stamps = np.datetime_as_string(MONTH_START + seconds.astype("timedelta64[s]"), unit="s").tolist()
        for offset, (worker, place, amount, stamp) in enumerate(zip(who.tolist(), where.tolist(), fare.tolist(),
                                                                       stamps)):
            platform, kind = PLATFORM_KINDS[place]
            line += 1
            yield line, {"event_id": f"{platform}-{kind[0]}-{start + offset:09d}", "platform": platform,
                         "kind": kind, "worker_id": ids[worker], "amount": amount,
                         "occurred_at": stamp + "+07:00"}


def tiers_file(ids: list[str], folder: Path, seed: int) -> Path:
    rng = np.random.default_rng([seed, 3])
    order = rng.permutation(len(ids))
    poor, near_poor = round(len(ids) * 0.04), round(len(ids) * 0.035)
    path = folder / "tiers.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("national_id,tier,valid_from\n")
        for rank, index in enumerate(order[:poor + near_poor].tolist()):
            out.write(f"{ids[index]},{'poor' if rank < poor else 'near_poor'},{MONTH}\n")
    return path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, *, workers: int, events_count: int, samples: int, seed: int, folder: Path,
            verify_books: bool = False, per_check: bool = False) -> dict:
    """Load, close and read one ledger at `url`; every figure of one store."""
    from ledger.books import Ledger
    from ledger.close import close_month, import_tiers
    from ledger.ingest import ingest_stream
    from ledger.reports import settlement, statement, statements

    os.environ.setdefault("ANSINH_SECRET", SECRET)
    ids = national_ids(workers, seed)
    ledger = Ledger.open(url)
    figures: dict = {"workers": workers, "events": events_count}
    try:
        outcomes: Counter = Counter()
        started, cpu = time.perf_counter(), time.process_time()
        for chunk in ingest_stream(ledger, events(ids, events_count, seed)):
            outcomes.update(outcome.outcome for outcome in chunk)
        load = time.perf_counter() - started
        figures["load"] = {"seconds": load, "cpu_seconds": time.process_time() - cpu,
                           "events_per_s": events_count / load, "outcomes": dict(outcomes),
                           "peak_rss_mb_after": _rss_mb()}

        started = time.perf_counter()
        figures["tiers"] = {"rows": import_tiers(ledger, tiers_file(ids, folder, seed)),
                            "seconds": time.perf_counter() - started}

        steps: dict[str, float] = {}
        started, cpu = time.perf_counter(), time.process_time()
        result = close_month(ledger, MONTH, on_step=lambda name: steps.setdefault(name, time.perf_counter() - started))
        close_seconds = time.perf_counter() - started
        figures["close"] = {"seconds": close_seconds, "cpu_seconds": time.process_time() - cpu, "steps_at_seconds": steps,
                            "workers_subsidised": result.workers_subsidised, "subsidy_vnd": result.subsidy_vnd,
                            "peak_rss_mb_after": _rss_mb()}

        count = 0
        subsidy = Counter()
        started, cpu = time.perf_counter(), time.process_time()
        for report in statements(ledger, MONTH):
            count += 1
            for scheme, line in report["schemes"].items():
                subsidy[scheme] += line["subsidy"]
        seconds = time.perf_counter() - started
        figures["statements"] = {"count": count, "seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                                 "per_s": count / seconds if seconds else 0.0,
                                 "subsidy_vnd": dict(subsidy), "peak_rss_mb_after": _rss_mb()}

        rng = np.random.default_rng([seed, 4])
        chosen = [ids[i] for i in rng.integers(0, workers, size=samples + 20).tolist()]
        for national_id in chosen[:20]:  # warm the pool and the caches
            statement(ledger, national_id, MONTH)
        latencies = []
        for national_id in chosen[20:]:
            started = time.perf_counter()
            statement(ledger, national_id, MONTH)
            latencies.append(time.perf_counter() - started)
        ms = np.array(latencies) * 1000
        figures["statement_latency_ms"] = {"samples": samples, "p50": float(np.percentile(ms, 50)),
                                           "p99": float(np.percentile(ms, 99)), "max": float(ms.max()),
                                           "mean": float(ms.mean())}
        figures["settlement_subsidy_vnd"] = settlement(ledger, MONTH)["subsidy"]

        if verify_books:
            from ledger.verify import verify

            started, cpu = time.perf_counter(), time.process_time()
            checks = verify(ledger, stop_at_first=False)
            figures["verify"] = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                                 "checks": len(checks), "problems": [c.name for c in checks if c.problem],
                                 "load_average_after": os.getloadavg()}
            if per_check:
                figures["verify"]["per_check_seconds"] = time_checks(ledger)
    finally:
        ledger.close()
    figures["peak_rss_mb"] = _rss_mb()
    figures["consistent"] = (outcomes.get("accepted") == events_count and count == workers
                             and dict(subsidy) == {s: v for s, v in result.subsidy_vnd.items()}
                             == figures["settlement_subsidy_vnd"]
                             and not figures.get("verify", {}).get("problems"))
    return figures


def time_checks(ledger) -> dict[str, float]:
    """Each invariant of `verify` timed on its own, in one consistent snapshot, in the order verify runs them
    (printed as they finish, with the load average)."""
    from ledger.store import consistent_snapshot
    from ledger.verify import INVARIANTS

    seconds: dict[str, float] = {}
    with consistent_snapshot(ledger) as conn:
        for name, check in INVARIANTS:
            started, cpu = time.perf_counter(), time.process_time()
            problem = check(conn, ledger)
            seconds[name] = time.perf_counter() - started
            print(f"  {name:<36} {seconds[name]:8.2f} s (CPU here {time.process_time() - cpu:6.2f} s)  "
                  f"load {os.getloadavg()[0]:.1f}" + (f"  PROBLEM: {problem}" if problem else ""), flush=True)
    print(f"  {'all checks':<36} {sum(seconds.values()):8.2f} s", flush=True)
    return seconds


def run(workers: int, events_count: int, *, folder: Path, samples: int = 2000, seed: int = 11,
        sqlite: bool = True, postgres: bool = False, verify_books: bool = False, per_check: bool = False,
        keep_postgres: bool = False) -> dict:
    if events_count < workers:
        raise ValueError("need at least one event per worker (--events >= --workers)")
    folder.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine()}
    if sqlite:
        database = folder / "close.db"
        for stale in folder.glob("close.db*"):
            stale.unlink()
        results["sqlite"] = measure(f"sqlite:///{database}", workers=workers, events_count=events_count,
                                    samples=samples, seed=seed, folder=folder, verify_books=verify_books,
                                    per_check=per_check)
        _print("sqlite", results["sqlite"])
    if postgres:
        schema = _pg_schema()
        try:
            results["postgresql"] = measure(pg_url(schema), workers=workers, events_count=events_count,
                                            samples=samples, seed=seed, folder=folder, verify_books=verify_books,
                                            per_check=per_check)
        finally:
            if keep_postgres:
                print(f"kept the PostgreSQL books: {pg_url(schema)}", flush=True)
            else:
                _pg_drop(schema)
        _print("postgresql", results["postgresql"])
    results["machine"]["load_average_after"] = os.getloadavg()
    return results


def _verify_text(figures: dict) -> str:
    if "verify" not in figures:
        return ""
    checks = figures["verify"]
    return f" | verify {checks['seconds']:.1f} s ({checks['checks']} checks, problems: {checks['problems'] or 'none'})"


def _print(store: str, figures: dict) -> None:
    latency = figures["statement_latency_ms"]
    print(f"{store}: {figures['workers']:,} workers, {figures['events']:,} events "
          f"(loaded at {figures['load']['events_per_s']:,.0f}/s) | close {figures['close']['seconds']:.1f} s "
          f"(CPU {figures['close'].get('cpu_seconds', 0):.1f} s here) "
          f"| statements {figures['statements']['per_s']:,.0f}/s | statement p50 {latency['p50']:.2f} ms, "
          f"p99 {latency['p99']:.2f} ms{_verify_text(figures)} | consistent {figures['consistent']} | targets: close < 60 s at 1M workers, "
          f"p99 < 10 ms and verify < 60 s at 10M events", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--samples", type=int, default=2_000, help="single statements timed")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--verify", action="store_true", help="also time `verify` of the closed books (target < 60 s at 10M events)")
    parser.add_argument("--per-check", action="store_true",
                        help="with --verify: also time each invariant on its own and print the seconds of each")
    parser.add_argument("--keep", type=Path, help="keep the SQLite ledger and the tiers file here")
    parser.add_argument("--keep-postgres", action="store_true", help="keep the PostgreSQL schema (its URL is printed)")
    parser.add_argument("--checks-only", metavar="URL",
                        help="build nothing: time each invariant of verify on the books at URL and exit")
    args = parser.parse_args()
    if args.checks_only:
        from ledger.books import Ledger

        ledger = Ledger.open(args.checks_only)
        try:
            print(f"{args.checks_only.split('?')[0]}: load {os.getloadavg()}", flush=True)
            time_checks(ledger)
        finally:
            ledger.close()
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-close-"))
    results = run(args.workers, args.events, folder=folder, samples=args.samples, seed=args.seed,
                  sqlite=not args.no_sqlite, postgres=args.postgres, verify_books=args.verify or args.per_check,
                  per_check=args.per_check, keep_postgres=args.keep_postgres)
    results["command"] = " ".join(["python", "benchmarks/close.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"close-{args.workers}w-{args.events}e-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

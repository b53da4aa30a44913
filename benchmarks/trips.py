"""Per-trip record benchmark: a worker's events of a month, first page and a deep page, in big books.

    python benchmarks/trips.py [--events 10000000] [--workers 100000] [--months 6] [--samples 2000]
                               [--postgres] [--no-sqlite] [--keep DIR]

For each store, in one process on a fresh ledger:

1. load: `events` events over `months` months from January 2026, booked through the real
   ingest (`ledger.ingest.ingest_stream`): rides, deliveries and orders on seven platforms,
   workers of very unequal activity (a few hundred trips a month for the busiest, a handful
   for most), 2 % refunds of an earlier event of the same worker; January is closed after its
   events, so 0.5 % of January's events arrive late and are booked in February;
2. first page: `ledger.trips.worker_events(…, limit=50)` for `samples` random (worker,
   month) pairs, one at a time: latency p50 / p99 / max;
3. deep page: for `samples` random busy (worker, month) pairs with at least four pages,
   the pages are walked to the last one (not timed) and the last page is then read with its
   cursor: latency p50 / p99 / max (keyset pages: it should cost what the first does);
4. beside them, in the same run: `ledger.reports.statement` for the same workers (the target
   of TARGETS.md: p99 < 10 ms with 10M events stored), and the first page read without the
   index (the month scanned for the worker: `+worker_id` on SQLite, `worker_id + 0` on
   PostgreSQL) for a few samples — what the page would cost without revision 0011;
5. bytes: the books per event, and the index `journal_worker_month` per event.

`--index-cost EVENTS` measures only what the index costs the write path: EVENTS ingested
into fresh SQLite books with and without it, twice, interleaved.

Checks as it goes that the figures agree (every accepted event listed once across the
sampled pages' chains; the pages of a sampled month sum to its statement). Writes JSON
under benchmarks/results/ and prints one line per store. `run()` is what
tests/test_benchmarks_smoke.py calls on tiny books.
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
from benchmarks.close import PLATFORM_KINDS, national_ids  # noqa: E402
from benchmarks.ingest import RESULTS, SECRET, _pg_drop, _pg_schema, machine, pg_url  # noqa: E402

FIRST_MONTH = (2026, 1)
PAGE = 50
CHUNK = 20_000
REFUND_SHARE = 0.02
LATE_SHARE = 0.005
NO_INDEX_SAMPLES = 20


def _month_label(index: int) -> str:
    year, month = FIRST_MONTH
    total = year * 12 + month - 1 + index
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def _month_start(index: int) -> np.datetime64:
    return np.datetime64(_month_label(index) + "-01T00:00:00")


def activity(workers: int, seed: int) -> np.ndarray:
    """Each worker's share of the events: lognormal, so the busiest do hundreds a month."""
    weights = np.random.default_rng([seed, 5]).lognormal(mean=0.0, sigma=1.3, size=workers)
    return weights / weights.sum()


def month_events(ids: list[str], weights: np.ndarray, count: int, month_index: int, seed: int,
                 first_line: int) -> Iterator[tuple[int, dict]]:
    """`(line, item)`: `count` items of one month (events, and refunds of earlier events of the chunk)."""
    rng = np.random.default_rng([seed, 6, month_index])
    home = np.random.default_rng([seed, 7]).integers(0, len(PLATFORM_KINDS), size=len(ids))
    start_ts = _month_start(month_index)
    days = int((_month_start(month_index + 1) - start_ts) / np.timedelta64(1, "D"))
    line = first_line
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        refunds = int(size * REFUND_SHARE)
        size -= refunds
        who = rng.choice(len(ids), size=size, p=weights)
        where = np.where(rng.random(size) < 0.8, home[who], rng.integers(0, len(PLATFORM_KINDS), size))
        fare = np.where(np.isin(where, (5, 6)), rng.integers(20, 1_000, size) * 1_000,
                        rng.integers(26, 240, size) * 500)
        seconds = np.sort(rng.integers(0, days * 86_400 - 7_200, size))
        stamps = np.datetime_as_string(start_ts + seconds.astype("timedelta64[s]"), unit="s").tolist()
        names = []
        for offset, (worker, place, amount, stamp) in enumerate(zip(who.tolist(), where.tolist(), fare.tolist(),
                                                                       stamps)):
            platform, kind = PLATFORM_KINDS[place]
            name = f"{platform}-{kind[0]}-{month_index:02d}-{start + offset:09d}"
            names.append(name)
            line += 1
            yield line, {"event_id": name, "platform": platform, "kind": kind, "worker_id": ids[worker],
                         "amount": amount, "occurred_at": stamp + "+07:00"}
        for pick in rng.choice(size, size=refunds, replace=False).tolist():
            platform, kind = PLATFORM_KINDS[where[pick]]
            refund_at = np.datetime_as_string(start_ts + np.timedelta64(int(seconds[pick]) + 3_600, "s"), unit="s")
            line += 1
            yield line, {"event_id": names[pick] + "r", "platform": platform, "kind": kind, "action": "refund",
                         "original_event_id": names[pick], "worker_id": ids[int(who[pick])],
                         "amount": int(fare[pick]) // 2, "occurred_at": str(refund_at) + "+07:00"}


def late_events(ids: list[str], weights: np.ndarray, count: int, seed: int, first_line: int
                ) -> Iterator[tuple[int, dict]]:
    """Events of January sent after January closed: booked in February (RULES.md §3)."""
    rng = np.random.default_rng([seed, 8])
    who = rng.choice(len(ids), size=count, p=weights)
    seconds = rng.integers(0, 31 * 86_400, count)
    stamps = np.datetime_as_string(_month_start(0) + seconds.astype("timedelta64[s]"), unit="s").tolist()
    for offset, (worker, stamp) in enumerate(zip(who.tolist(), stamps)):
        yield first_line + offset + 1, {"event_id": f"late-{offset:08d}", "platform": "grab", "kind": "ride",
                                        "worker_id": ids[worker], "amount": 45_000, "occurred_at": stamp + "+07:00"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _latency(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    if not len(ms):
        return {"samples": 0}
    return {"samples": int(len(ms)), "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()), "mean": float(ms.mean())}


def load(ledger, ids: list[str], weights: np.ndarray, events_count: int, months: int, seed: int) -> dict:
    from ledger.close import close_month
    from ledger.ingest import ingest_stream

    outcomes: Counter = Counter()
    per_month = events_count // months
    late = int(per_month * LATE_SHARE)
    started, cpu = time.perf_counter(), time.process_time()
    line = 0
    close_seconds = 0.0
    for index in range(months):
        count = events_count - per_month * (months - 1) - (late if index == 1 else 0) if index == months - 1 \
            else per_month - (late if index == 1 else 0)
        for chunk in ingest_stream(ledger, month_events(ids, weights, count, index, seed, line)):
            outcomes.update(outcome.outcome for outcome in chunk)
        line += count
        if index == 0 and months > 1:
            began = time.perf_counter()
            close_month(ledger, _month_label(0))
            close_seconds = time.perf_counter() - began
            for chunk in ingest_stream(ledger, late_events(ids, weights, late, seed, line)):
                outcomes.update(outcome.outcome for outcome in chunk)
            line += late
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "events_per_s": line / seconds,
            "items": line, "outcomes": dict(outcomes), "close_january_seconds": close_seconds,
            "peak_rss_mb_after": _rss_mb()}


def _busy_pairs(conn, pages: int, page_size: int) -> list[tuple[int, int, int]]:
    """(worker row id, month, events) of worker-months with at least `pages` pages."""
    from ledger.store import query

    found = query(conn, "SELECT worker_id, booking_month, count(*) FROM journal WHERE entry_type IN (1, 2) "
                        "GROUP BY worker_id, booking_month HAVING count(*) >= ?", (pages * page_size,))
    return [(int(w), int(m), int(n)) for w, m, n in found]


def measure(url: str, *, events_count: int, workers: int, months: int, samples: int, seed: int,
            page_size: int = PAGE) -> dict:
    from ledger.books import Ledger
    from ledger.reports import statement
    from ledger.store import query
    from ledger.trips import all_worker_events, events_totals, worker_events

    os.environ.setdefault("ANSINH_SECRET", SECRET)
    ids = national_ids(workers, seed)
    weights = activity(workers, seed)
    ledger = Ledger.open(url)
    figures: dict = {"events": events_count, "workers": workers, "months": months, "page": page_size}
    try:
        figures["load"] = load(ledger, ids, weights, events_count, months, seed)
        with ledger.engine.connect() as conn:
            busy = _busy_pairs(conn, 4, page_size)
            conn.rollback()
        rng = np.random.default_rng([seed, 9])
        labels = [_month_label(i) for i in range(months)]
        by_pseudonym = {ledger.keys.pseudonym(national_id): national_id for national_id in ids}
        with ledger.engine.connect() as conn:
            row_of = {int(row_id): by_pseudonym[p] for row_id, p in query(conn, "SELECT id, pseudonym FROM worker")}
            conn.rollback()

        # warm the pool and the caches
        for national_id in [ids[i] for i in rng.integers(0, workers, 20).tolist()]:
            worker_events(ledger, national_id, labels[-1], limit=page_size)
            statement(ledger, national_id, labels[-1])

        first, states, listed = [], [], 0
        pairs = [(ids[w], labels[m]) for w, m in zip(rng.integers(0, workers, samples).tolist(),
                                                     rng.integers(0, months, samples).tolist())]
        for national_id, month in pairs:
            began = time.perf_counter()
            page = worker_events(ledger, national_id, month, limit=page_size)
            first.append(time.perf_counter() - began)
            listed += len(page.items)
            began = time.perf_counter()
            statement(ledger, national_id, month)
            states.append(time.perf_counter() - began)
        figures["first_page_latency_ms"] = _latency(first)
        figures["first_page_events_mean"] = listed / max(1, len(pairs))
        figures["statement_latency_ms"] = _latency(states)

        deep, depth = [], []
        chosen = [busy[i] for i in rng.integers(0, len(busy), min(samples, len(busy) * 4)).tolist()] if busy else []
        for worker_id, month, _count in chosen[:samples]:
            national_id, label = row_of[worker_id], f"{month // 100:04d}-{month % 100:02d}"
            cursor, pages_walked = None, 0
            while True:
                page = worker_events(ledger, national_id, label, cursor=cursor, limit=page_size)
                pages_walked += 1
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            began = time.perf_counter()
            worker_events(ledger, national_id, label, cursor=cursor, limit=page_size)
            deep.append(time.perf_counter() - began)
            depth.append(pages_walked)
        figures["deep_page_latency_ms"] = _latency(deep)
        figures["deep_page_depth"] = {"mean": float(np.mean(depth)) if depth else 0, "max": max(depth, default=0)}
        figures["busy_worker_months"] = len(busy)

        # the same first page without the index: the month read for the worker
        slow = []
        with ledger.engine.connect() as conn:
            dodge = "+worker_id = ?" if conn.dialect.name == "sqlite" else "worker_id + 0 = ?"
            for national_id, month in pairs[:NO_INDEX_SAMPLES]:
                worker_id = ledger.worker_id(conn, national_id)
                booked = int(month[:4]) * 100 + int(month[5:])
                began = time.perf_counter()
                query(conn, f"SELECT id, amount_vnd FROM journal WHERE {dodge} AND booking_month = ? AND id > 0 "
                            f"AND entry_type IN (1, 2) ORDER BY id LIMIT {page_size + 1}", (worker_id, booked))
                slow.append(time.perf_counter() - began)
            conn.rollback()
        figures["first_page_without_index_latency_ms"] = _latency(slow)

        # agreement: a sampled worker-month's pages sum to its statement, and chain without loss
        agree = True
        for national_id, month in pairs[:50]:
            items = list(all_worker_events(ledger, national_id, month))
            report = statement(ledger, national_id, month)
            totals = events_totals(items)
            agree &= all(totals["shares"][s] == {"worker": line["worker"], "platform": line["platform"]}
                         for s, line in report["schemes"].items())
            chained, cursor = [], None
            while True:
                page = worker_events(ledger, national_id, month, cursor=cursor, limit=7)
                chained += page.items
                if (cursor := page.next_cursor) is None:
                    break
            agree &= chained == items
        with ledger.engine.connect() as conn:
            listed_all = query(conn, "SELECT count(*) FROM journal WHERE entry_type IN (1, 2)")[0][0]
            figures["bytes"] = _bytes(conn, url, int(listed_all))
            conn.rollback()
        figures["entries_listed"] = int(listed_all)
        figures["consistent"] = bool(agree) and listed_all == figures["load"]["outcomes"].get("accepted")
    finally:
        ledger.close()
    figures["peak_rss_mb"] = _rss_mb()
    return figures


def _bytes(conn, url: str, events: int) -> dict:
    from ledger.store import query

    if conn.dialect.name == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        total = path.stat().st_size + (Path(f"{path}-wal").stat().st_size if Path(f"{path}-wal").exists() else 0)
        try:
            index = query(conn, "SELECT sum(pgsize) FROM dbstat WHERE name = 'journal_worker_month'")[0][0]
        except Exception:  # noqa: BLE001 - SQLite built without dbstat
            index = None
    else:
        total = query(conn, "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                            "AND c.relkind IN ('r', 'm')")[0][0]
        index = query(conn, "SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = current_schema() AND c.relname ~ '^journal.*worker'")[0][0]
    return {"books_per_event": int(total) / events if events else 0,
            "worker_month_index_per_event": int(index) / events if index and events else None}


def index_cost(events_count: int, *, workers: int, folder: Path, rounds: int = 2, seed: int = 13) -> dict:
    """What the index costs the write path: the same events ingested into fresh SQLite books with
    and without `journal_worker_month` (dropped after the books are created), interleaved."""
    from ledger.books import Ledger
    from ledger.ingest import ingest_stream

    os.environ.setdefault("ANSINH_SECRET", SECRET)
    ids = national_ids(workers, seed)
    weights = activity(workers, seed)
    runs: dict[str, list[dict]] = {"with_index": [], "without_index": []}
    for _round in range(rounds):
        for label in runs:
            for stale in folder.glob("cost.db*"):
                stale.unlink()
            ledger = Ledger.open(f"sqlite:///{folder / 'cost.db'}")
            try:
                if label == "without_index":
                    with ledger.engine.begin() as conn:
                        conn.exec_driver_sql("DROP INDEX journal_worker_month")
                started, cpu = time.perf_counter(), time.process_time()
                for _chunk in ingest_stream(ledger, month_events(ids, weights, events_count, 0, seed, 0)):
                    pass
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            finally:
                ledger.close()
            size = sum(path.stat().st_size for path in folder.glob("cost.db*"))
            runs[label].append({"events_per_s": events_count / seconds, "events_per_cpu_s": events_count / cpu,
                                "bytes_per_event": size / events_count, "load_average": os.getloadavg()[0]})
    return runs


def run(events_count: int, *, workers: int, months: int, folder: Path, samples: int = 2000, seed: int = 13,
        sqlite: bool = True, postgres: bool = False, page_size: int = PAGE) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine()}
    if sqlite:
        for stale in folder.glob("trips.db*"):
            stale.unlink()
        results["sqlite"] = measure(f"sqlite:///{folder / 'trips.db'}", events_count=events_count, workers=workers,
                                    months=months, samples=samples, seed=seed, page_size=page_size)
        _print("sqlite", results["sqlite"])
    if postgres:
        schema = _pg_schema()
        try:
            results["postgresql"] = measure(pg_url(schema), events_count=events_count, workers=workers,
                                            months=months, samples=samples, seed=seed, page_size=page_size)
        finally:
            _pg_drop(schema)
        _print("postgresql", results["postgresql"])
    results["machine"]["load_average_after"] = os.getloadavg()
    return results


def _print(store: str, figures: dict) -> None:
    first, deep, state = (figures["first_page_latency_ms"], figures["deep_page_latency_ms"],
                          figures["statement_latency_ms"])
    slow = figures["first_page_without_index_latency_ms"]
    index = figures["bytes"]["worker_month_index_per_event"]
    print(f"{store}: {figures['entries_listed']:,} events booked "
          f"(loaded at {figures['load']['events_per_s']:,.0f}/s) | "
          f"first page p50 {first['p50']:.2f} ms, p99 {first['p99']:.2f} ms | deep page (mean page "
          f"{figures['deep_page_depth']['mean']:.1f}) p50 {deep.get('p50', 0):.2f} ms, p99 {deep.get('p99', 0):.2f} ms "
          f"| statement p50 {state['p50']:.2f} ms, p99 {state['p99']:.2f} ms | without the index p50 "
          f"{slow['p50']:.1f} ms | {figures['bytes']['books_per_event']:.0f} B/event, index "
          f"{index if index is None else round(index, 1)} B/event | consistent {figures['consistent']} | "
          f"target: p99 < 10 ms at 10M events", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the SQLite ledger here")
    parser.add_argument("--index-cost", type=int, metavar="EVENTS",
                        help="only: ingest EVENTS into fresh SQLite books with and without the index, twice")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ansinh-trips-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.index_cost:
        runs = index_cost(args.index_cost, workers=args.workers, folder=folder)
        for label, figures in runs.items():
            print(label, " | ".join(f"{f['events_per_s']:,.0f}/s ({f['events_per_cpu_s']:,.0f}/CPU-s), "
                                    f"{f['bytes_per_event']:.0f} B/event, load {f['load_average']:.1f}"
                                    for f in figures))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"trips-index-cost-{args.index_cost}e-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
            json.dumps({"machine": machine(), "runs": runs}, indent=2))
        return 0
    results = run(args.events, workers=args.workers, months=args.months, folder=folder, samples=args.samples,
                  seed=args.seed, sqlite=not args.no_sqlite, postgres=args.postgres)
    results["command"] = " ".join(["python", "benchmarks/trips.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"trips-{args.events}e-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

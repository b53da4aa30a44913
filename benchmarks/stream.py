"""Stream ingest benchmark: events through NATS JetStream into the books, on SQLite and PostgreSQL.

    python benchmarks/stream.py [--events 200000] [--batch 5000] [--stores sqlite,postgresql]

(the issue asks for 1M events: `--events 1000000`, about 15 minutes on the 2-core machine)

For each store, on a fresh ledger and a fresh stream:

1. **live** — a publisher process (`ansinh publish`'s code path, one message per event
   on `events.<platform>`) and the consumer (`StreamConsumer`, in this process) run at
   the same time; end to end = events / (first publish → last event booked and
   acknowledged). The consumer's lag (messages in the stream not yet delivered to it)
   is sampled every 0.25 s.
2. **drain** — a second durable reads the same, now full, stream into another fresh
   ledger: the consumer's own rate, without the publisher beside it.
3. **baseline** in the same run: the same events, in the same batches, straight into
   `ledger.ingest.ingest_batch` on another fresh ledger (no NATS) — what the consumer
   could reach if messaging cost nothing. The latest HTTP figure of
   `benchmarks/http_ingest.py` (benchmarks/results/) is printed beside them.

Target (../shared/TARGETS.md): ≥ 20,000 events/s, exactly once. The generated month
(simulations.synthetic_events) carries refunds, duplicates and bad events like real
traffic. Results JSON under benchmarks/results/.
"""
from __future__ import annotations

import secrets
import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PG_URL = os.environ.get("ANSINH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("ANSINH_BENCH_NATS", "nats://127.0.0.1:4222")
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
os.environ.setdefault("ANSINH_SECRET", SECRET)


def write_messages(path: Path, events: int, seed: int, prefix: str) -> int:
    """The generated month as `subject<TAB>payload` lines, in send order."""
    from simulations.synthetic_events import generate_events

    count = 0
    with path.open("wb") as out:
        for item in generate_events(seed=seed, month="2026-01", workers=max(2_000, events // 150), events=events):
            if isinstance(item, dict):
                name = item.get("platform")
                payload = orjson.dumps(item)
            else:
                name, payload = None, item.encode() if isinstance(item, str) else bytes(item)
            subject_platform = name if isinstance(name, str) and name.replace("-", "_").isidentifier() else "unknown"
            out.write(f"{prefix}.{subject_platform}".encode() + b"\t" + payload.replace(b"\n", b" ") + b"\n")
            count += 1
    return count


def read_messages(path: Path):
    with path.open("rb") as lines:
        for line in lines:
            subject, _, payload = line.rstrip(b"\n").partition(b"\t")
            yield subject.decode(), payload


def publisher(path: str, nats_url: str) -> None:
    """Child process: publish every message of `path` in order, print the result as JSON."""
    from api.stream import publish_messages

    started = time.perf_counter()
    result = asyncio.run(publish_messages(nats_url, read_messages(Path(path)), in_flight_max=8_000))
    elapsed = time.perf_counter() - started
    print(json.dumps({"published": result.published, "errors": len(result.errors), "seconds": round(elapsed, 2),
                      "events_per_s": round(result.published / elapsed)}))


def fresh_url(folder: Path, store: str, label: str) -> tuple[str, str | None]:
    """A fresh ledger URL (and its PG schema): the same helper as the HTTP benchmark."""
    from benchmarks.http_ingest import fresh_url as fresh

    return fresh(folder, store != "sqlite", label)


from benchmarks.http_ingest import drop_schema  # noqa: E402  (shared with the HTTP benchmark)


async def live(url: str, drain_url: str, messages: Path, count: int, batch: int, tag: str, prefix: str) -> dict:
    """Publisher process and consumer together; events/s end to end and the lag over time."""
    import nats

    from api.stream import StreamConsumer, StreamSettings, ensure_stream
    from ledger.books import Ledger

    settings = StreamSettings(nats_url=NATS_URL, stream=f"BENCH_{tag}", subject=f"{prefix}.>",
                              durable="ledger", batch_size_max=batch, fetch_timeout_seconds=0.5,
                              outcome_prefix=f"benchout{tag}", dead_letter_subject=f"benchdl{tag}",
                              max_age_seconds=3_600)
    nc = await nats.connect(NATS_URL)
    await ensure_stream(nc.jetstream(), settings)
    ledger = Ledger.open(url, secret=SECRET)
    consumer = StreamConsumer(ledger, settings)
    await consumer.connect()
    lags: list[tuple[float, int]] = []
    started = time.perf_counter()
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--publisher", str(messages),
                                                 stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            try:
                info = await nc.jetstream().consumer_info(settings.stream, settings.durable)
                lags.append((round(time.perf_counter() - started, 2), int(info.num_pending or 0)
                             + int(info.num_ack_pending or 0)))
            except Exception:  # noqa: BLE001 - a missed sample is not a result
                pass
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())

    async def until_all_booked() -> None:
        while consumer.counts.position < count:
            if child.returncode not in (None, 0):
                stop.set()  # the publisher failed: no point waiting for the rest
                return
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.create_task(until_all_booked())
    stats = await consumer.run(stop)
    elapsed = time.perf_counter() - started
    output = (await child.communicate())[0]
    if child.returncode != 0:
        raise SystemExit(f"the publisher failed (exit {child.returncode}); nothing to measure")
    published = json.loads(output)
    await watcher
    await sampler
    await consumer.close()
    from ledger.verify import verify

    problems = [check.problem for check in verify(ledger) if check.problem]
    ledger.close()

    # Drain: a second durable reads the same (now full) stream into another fresh ledger —
    # the consumer alone, without the publisher and the server's writes beside it.
    drain_ledger = Ledger.open(drain_url, secret=SECRET)
    drainer = StreamConsumer(drain_ledger, StreamSettings(**{**settings.__dict__, "durable": "drain"}))
    await drainer.connect()
    drain_started = time.perf_counter()
    drain_stats = await drainer.run(until_idle=True)
    drain_seconds = time.perf_counter() - drain_started - settings.fetch_timeout_seconds  # the idle fetch
    await drainer.close()
    drain_ledger.close()
    await nc.jetstream().delete_stream(settings.stream)
    await nc.close()
    return {"events": count, "seconds": round(elapsed, 2), "events_per_s": round(count / elapsed),
            "publisher": published, "lag_max": max((lag for _t, lag in lags), default=0),
            "lag_samples": lags[:: max(1, len(lags) // 20)], "batches": stats["batches"],
            "held": stats["held"], "borrowed": stats["borrowed"], "verify_problems": problems,
            "drain": {"events": drain_stats["booked"], "seconds": round(drain_seconds, 2),
                      "events_per_s": round(drain_stats["booked"] / drain_seconds)},
            "outcomes": {k.removeprefix("outcome_"): v for k, v in stats.items() if k.startswith("outcome_")}}


def direct(url: str, messages: Path, batch: int) -> dict:
    from ledger.books import Ledger
    from ledger.ingest import MALFORMED, ingest_batch

    ledger = Ledger.open(url, secret=SECRET)
    counts: Counter = Counter()
    chunk: list = []
    started = time.perf_counter()
    for seq, (_subject, payload) in enumerate(read_messages(messages), start=1):
        try:
            chunk.append((seq, orjson.loads(payload)))
        except orjson.JSONDecodeError:
            chunk.append((seq, MALFORMED))
        if len(chunk) == batch:
            counts.update(outcome.outcome for outcome in ingest_batch(ledger, chunk))
            chunk = []
    if chunk:
        counts.update(outcome.outcome for outcome in ingest_batch(ledger, chunk))
    elapsed = time.perf_counter() - started
    ledger.close()
    total = sum(counts.values())
    return {"events": total, "seconds": round(elapsed, 2), "events_per_s": round(total / elapsed),
            "outcomes": dict(counts)}


def latest_http() -> dict | None:
    found = sorted(RESULTS.glob("http_ingest-*.json"), key=lambda path: path.stat().st_mtime)
    if not found:
        return None
    document = json.loads(found[-1].read_text())
    return {"file": found[-1].name, "store": document.get("store"), "events_per_s": document["http"]["events_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000, help="messages per fetch and per transaction")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--publisher", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publisher(args.publisher, NATS_URL)
        return

    folder = Path(tempfile.mkdtemp(prefix="ansinh-stream-bench-"))
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the messages file and SQLite books: ~1 GB at 1M events


def run(args: argparse.Namespace, folder: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    messages = folder / "messages.tsv"
    count = write_messages(messages, args.events, args.seed, f"bench{tag}")
    results = {"events": count, "batch": args.batch, "stores": {}, "http_latest": latest_http(),
               "machine": platform.platform(), "cpus": os.cpu_count()}
    for store in args.stores.split(","):
        url, schema = fresh_url(folder, store, "stream")
        drain_url, drain_schema = fresh_url(folder, store, "drain")
        base_url, base_schema = fresh_url(folder, store, "direct")
        try:
            streamed = asyncio.run(live(url, drain_url, messages, count, args.batch, f"{tag}{store[:2]}",
                                        f"bench{tag}"))
            baseline = direct(base_url, messages, args.batch)
        finally:
            for name in (schema, drain_schema, base_schema):
                drop_schema(name)
        assert streamed["outcomes"] == baseline["outcomes"], (streamed["outcomes"], baseline["outcomes"])
        results["stores"][store] = {"stream": streamed, "direct_ingest_batch": baseline}
        print(f"{store:10} stream {streamed['events_per_s']:>7,} events/s end to end "
              f"({streamed['seconds']} s, publisher {streamed['publisher']['events_per_s']:,}/s, "
              f"max lag {streamed['lag_max']:,} messages) | drain of the full stream "
              f"{streamed['drain']['events_per_s']:>7,}/s | direct ingest_batch {baseline['events_per_s']:>7,}/s "
              f"| verify {'ok' if not streamed['verify_problems'] else streamed['verify_problems']}", flush=True)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    http = results["http_latest"]
    if http:
        print(f"HTTP (latest {http['file']}): {http['events_per_s']:,} events/s on {http['store']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"stream-{count}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()

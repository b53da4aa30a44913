"""HTTP ingest benchmark: signed batches of 1,000 posted to `ansinh serve` on localhost.

    python benchmarks/http_ingest.py [--events 200000] [--batch 1000] [--clients 4]
                                     [--workers 1] [--postgres]

Starts the real server (uvicorn, `--workers` processes) on a free port against a fresh
ledger, posts the generated month as signed batches from `--clients` concurrent async
httpx clients, and prints events/s and batch latency p50/p99. In the same run the same
batches go straight into `ledger.ingest.ingest_batch` on another fresh ledger, so the
HTTP overhead is visible. Target (../shared/TARGETS.md): ≥ 30,000 events/s, p99 per
batch < 200 ms. Results JSON under benchmarks/results/.
"""
from __future__ import annotations

import secrets
import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PG_URL = os.environ.get("ANSINH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)


def batches_by_platform(events: int, batch: int, seed: int) -> dict[str, list[bytes]]:
    from simulations.synthetic_events import generate_events

    grouped: dict[str, list] = defaultdict(list)
    for item in generate_events(seed=seed, month="2026-01", workers=max(2_000, events // 150), events=events):
        name = item.get("platform") if isinstance(item, dict) else None
        if isinstance(name, str) and name.isidentifier():
            grouped[name].append(item)
    return {name: [orjson.dumps(items[i:i + batch]) for i in range(0, len(items), batch)]
            for name, items in grouped.items()}


def fresh_url(folder: Path, postgres: bool, label: str) -> tuple[str, str | None]:
    if not postgres:
        return f"sqlite:///{folder / (label + '.db')}", None
    import psycopg

    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str | None) -> None:
    if schema:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def direct(url: str, batches: dict[str, list[bytes]]) -> dict:
    from ledger.books import Ledger
    from ledger.ingest import ingest_batch

    ledger = Ledger.open(url, secret=SECRET)
    latencies, count = [], 0
    started = time.perf_counter()
    for bodies in batches.values():
        for body in bodies:
            one = time.perf_counter()
            items = list(enumerate(orjson.loads(body), start=1))
            count += len(ingest_batch(ledger, items))
            latencies.append(time.perf_counter() - one)
    elapsed = time.perf_counter() - started
    ledger.close()
    return summary(count, elapsed, latencies)


async def over_http(base: str, keys: dict[str, dict], batches: dict[str, list[bytes]], clients: int) -> dict:
    import httpx

    from api.signing import signed_headers

    queue: asyncio.Queue = asyncio.Queue()
    for name, bodies in batches.items():
        for body in bodies:
            queue.put_nowait((name, body))
    latencies: list[float] = []
    counts = {"events": 0}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as session:
            while not queue.empty():
                name, body = queue.get_nowait()
                headers = signed_headers(keys[name]["key_id"], keys[name]["secret"], "POST", "/v1/events", body,
                                         time.time())
                one = time.perf_counter()
                response = await session.post("/v1/events", content=body,
                                              headers={**headers, "Content-Type": "application/json"})
                latencies.append(time.perf_counter() - one)
                response.raise_for_status()
                counts["events"] += len(response.json()["outcomes"])

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return summary(counts["events"], time.perf_counter() - started, latencies)


def summary(count: int, elapsed: float, latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"events": count, "seconds": round(elapsed, 2), "events_per_s": round(count / elapsed),
            "batch_ms_p50": pick(0.50), "batch_ms_p99": pick(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.workers > 1 and not args.postgres:
        parser.error("several uvicorn workers need PostgreSQL (SQLite has one writer)")

    batches = batches_by_platform(args.events, args.batch, args.seed)
    folder = Path(tempfile.mkdtemp(prefix="ansinh-http-bench-"))
    url, schema = fresh_url(folder, args.postgres, "http")
    direct_url, direct_schema = fresh_url(folder, args.postgres, "direct")
    env = {**os.environ, "ANSINH_SECRET": SECRET, "ANSINH_DATABASE_URL": url, "ANSINH_DEMO": "1",
           "ANSINH_DEMO_ON_SERVER_DATABASE": "1"}  # demo asked for, on a throwaway database
    cli = [sys.executable, "-m", "api.cli"]
    keys = {name: json.loads(subprocess.run([*cli, "platforms", "add", name], env=env, check=True,
                                            capture_output=True, text=True, cwd=ROOT).stdout) for name in batches}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--workers", str(args.workers)], env=env, cwd=ROOT,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(200):
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        http = asyncio.run(over_http(base, keys, batches, args.clients))
    finally:
        server.terminate()
        server.wait(timeout=30)
    straight = direct(direct_url, batches)
    drop_schema(schema)
    drop_schema(direct_schema)
    results = {"store": "postgresql" if args.postgres else "sqlite", "events": args.events, "batch": args.batch,
               "clients": args.clients, "uvicorn_workers": args.workers, "http": http, "direct": straight,
               "machine": platform.platform(), "cpus": os.cpu_count()}
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"http_ingest-{results['store']}-{int(time.time())}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

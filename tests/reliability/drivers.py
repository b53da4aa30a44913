"""Child processes for the crash and concurrency trials: `python -m tests.reliability.drivers MODE …`.

Each mode opens the books like the CLI does (ANSINH_SECRET, ANSINH_PACK from the
environment) and does one job, printing what it has done on stdout, line by line and
flushed, so the parent knows where it is when it sends SIGKILL.

- `close URL MONTH STEP PAUSE_S`: close the month; after printing the step named STEP
  (one of `close_month`'s steps) it pauses PAUSE_S inside the open transaction.
- `batches URL BATCHES_JSON OUTCOMES_NDJSON`: ingest each batch of a JSON list of batches,
  writing one line of outcomes per batch; retries a batch whose transaction failed.
- `closer URL MONTH MIN_BLOCKS`: wait until the chain has MIN_BLOCKS blocks, then close.
- `verifier URL SECONDS`: run `verify` again and again for SECONDS; print each problem.
"""
from __future__ import annotations

import sys
import time

import orjson


def _open(url: str):
    from ledger.books import Ledger

    return Ledger.open(url)


def close(url: str, month: str, step: str, pause_s: str) -> None:
    from ledger.close import close_month

    ledger = _open(url)

    def on_step(name: str) -> None:
        print(name, flush=True)
        if name == step:
            time.sleep(float(pause_s))

    print("ready", flush=True)
    result = close_month(ledger, month, on_step=on_step)
    print(f"closed {result.month} {result.anchor_hash}", flush=True)


def batches(url: str, batches_file: str, outcomes_file: str) -> None:
    from sqlalchemy.exc import OperationalError

    from ledger.ingest import ingest_batch

    ledger = _open(url)
    work = orjson.loads(open(batches_file, "rb").read())
    with open(outcomes_file, "wb") as sink:
        for number, batch in enumerate(work):
            items = [(line, item) for line, item in batch]
            for attempt in range(5):
                try:
                    outcomes = ingest_batch(ledger, items)
                    break
                except OperationalError as error:  # e.g. a serialisation failure: the batch is retried whole
                    print(f"batch {number} attempt {attempt} failed: {type(error.orig).__name__}", flush=True)
                    time.sleep(0.05 * (attempt + 1))
            else:
                raise RuntimeError(f"batch {number} failed five times")
            sink.write(orjson.dumps({"batch": number, "outcomes": [o.as_json() for o in outcomes]}) + b"\n")
            sink.flush()
    print("done", flush=True)


def closer(url: str, month: str, min_blocks: str) -> None:
    from ledger.close import close_month
    from ledger.store import query

    ledger = _open(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with ledger.engine.connect() as conn:
            count = query(conn, "SELECT block_count FROM ledger_state WHERE id = 1")[0][0]
            conn.rollback()
        if count >= int(min_blocks):
            break
        time.sleep(0.01)
    result = close_month(ledger, month)
    print(f"closed {result.month} {result.anchor_hash}", flush=True)


def verifier(url: str, seconds: str) -> None:
    from ledger.verify import verify

    ledger = _open(url)
    runs = 0
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        for check in verify(ledger, stop_at_first=False):
            if check.problem:
                print(f"PROBLEM {check.name}: {check.problem}", flush=True)
        runs += 1
    print(f"runs {runs}", flush=True)


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    {"close": close, "batches": batches, "closer": closer, "verifier": verifier}[mode](*arguments)

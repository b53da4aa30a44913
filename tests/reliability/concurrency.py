"""Concurrent writers on one PostgreSQL ledger: overlapping batches, duplicates, refunds, a close, a verifier.

`build(seed, …)` makes *units* (a completed event and up to two refunds that never
exceed it, always sent together and in order) and deals them into batches for each
writer so that every unit is sent by two or three writers and some items are repeated
inside a batch. Because a unit is never split, no outcome depends on which writer
wins: each (platform, event_id) must be `accepted` exactly once and `duplicate`
everywhere else. What does depend on the interleaving is the booking month of a
January event committed after January closed; so the oracle replays the books'
own commit order (journal ids, assigned under the writer's lock) through the
reference model, with the close where `month_close.last_entry_id` puts it, and
every figure must then equal the model's.

Writers are forked from the test process (no interpreter start-up per writer; each
opens its own engine after the fork).
"""
from __future__ import annotations

import multiprocessing
import random
import time
from dataclasses import dataclass, field

import numpy as np

from ledger.ingest import ingest_batch
from ledger.store import query
from simulations.synthetic_events import make_national_ids
from tests.reference_model import ReferenceModel
from tests.reliability.crash import open_books
from tests.reliability.oracle import differences, verify_problems

PLATFORMS = ("grab", "be", "shopee", "xanhsm", "gojek", "lazada")
KINDS = {"grab": "ride", "be": "ride", "shopee": "order", "xanhsm": "ride", "gojek": "delivery", "lazada": "order"}
CLOSED_MONTH = "2026-01"


@dataclass
class Workload:
    preload: list[dict]                 # January events booked before the writers start
    batches: list[list[list[dict]]]     # writer -> batches -> items
    items_by_key: dict[tuple[str, str], dict] = field(default_factory=dict)


def _timestamp(rng: random.Random, month: int) -> str:
    day, hour, minute = rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+07:00"


def build(seed: int, *, writers: int = 8, units: int = 600, batches_per_writer: int = 4,
          workers: int = 120) -> Workload:
    rng = random.Random(seed)
    people = make_national_ids(np.random.default_rng(seed), workers)
    all_units: list[list[dict]] = []
    for number in range(units):
        platform = rng.choice(PLATFORMS)
        amount = rng.choice((15_000, 87_500, 100_001, 249_999, 1_249_000, rng.randint(1, 5_000_000)))
        original = {"event_id": f"{platform}-{seed}-{number}", "platform": platform, "kind": KINDS[platform],
                    "worker_id": rng.choice(people), "amount": amount,
                    "occurred_at": _timestamp(rng, rng.choice((1, 1, 2)))}
        unit = [original]
        left = amount
        for part in range(rng.choice((0, 0, 0, 1, 2))):
            if left < 1:
                break
            piece = left if rng.random() < 0.3 else rng.randint(1, left)
            left -= piece
            unit.append({**original, "event_id": f"{original['event_id']}-r{part}", "action": "refund",
                         "original_event_id": original["event_id"], "amount": piece,
                         "occurred_at": _timestamp(rng, rng.choice((1, 2)))})
        all_units.append(unit)
    preload = [unit[0] for unit in all_units[: units // 10]]  # their originals are sent again later: duplicates
    dealt: list[list[list[dict]]] = [[] for _ in range(writers)]
    for unit in all_units:
        for writer in rng.sample(range(writers), rng.choice((2, 2, 3))):
            dealt[writer].append(unit)
    batches: list[list[list[dict]]] = []
    for units_of_writer in dealt:
        rng.shuffle(units_of_writer)
        size = max(1, -(-len(units_of_writer) // batches_per_writer))
        writer_batches = []
        for start in range(0, len(units_of_writer), size):
            items = [item for unit in units_of_writer[start:start + size] for item in unit]
            for _ in range(len(items) // 20):  # an exact re-send inside the batch, later than the item
                at = rng.randrange(len(items))
                items.insert(rng.randint(at + 1, len(items)), dict(reversed(list(items[at].items()))))
            writer_batches.append(items)
        batches.append(writer_batches)
    workload = Workload(preload, batches)
    for unit in all_units:
        for item in unit:
            workload.items_by_key[(item["platform"], item["event_id"])] = item
    return workload


def _writer(url: str, batches: list[list[dict]], results) -> None:
    ledger = open_books(url)
    outcomes, seconds = [], []
    try:
        for batch in batches:
            started = time.perf_counter()
            got = ingest_batch(ledger, list(enumerate(batch, start=1)))
            seconds.append(time.perf_counter() - started)
            outcomes.append([(o.platform, o.event_id, o.outcome) for o in got])
        results.put(("writer", outcomes, seconds, None))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the test with it
        results.put(("writer", outcomes, seconds, f"{type(error).__name__}: {error}"))
    finally:
        ledger.close()


def _closer(url: str, month: str, min_blocks: int, results) -> None:
    from ledger.close import close_month

    ledger = open_books(url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with ledger.engine.connect() as conn:
                count = query(conn, "SELECT block_count FROM ledger_state WHERE id = 1")[0][0]
                conn.rollback()
            if count >= min_blocks:
                break
            time.sleep(0.005)
        started = time.perf_counter()
        close_month(ledger, month)
        results.put(("closer", count, [time.perf_counter() - started], None))
    except Exception as error:  # noqa: BLE001
        results.put(("closer", None, [], f"{type(error).__name__}: {error}"))
    finally:
        ledger.close()


def _verifier(url: str, stop, results) -> None:
    ledger = open_books(url)
    runs, problems = 0, []
    try:
        while not stop.is_set():
            problems += verify_problems(ledger)
            runs += 1
        results.put(("verifier", runs, problems, None))
    except Exception as error:  # noqa: BLE001
        results.put(("verifier", runs, problems, f"{type(error).__name__}: {error}"))
    finally:
        ledger.close()


@dataclass
class RunResult:
    seconds: float
    outcomes: list[tuple[str, str, str]]
    batch_seconds: list[float]
    closed_after_blocks: int | None
    verifier_runs: int
    verifier_problems: list
    errors: list[str]


def run(url: str, workload: Workload, *, close_after_blocks: int, timeout_s: float = 300) -> RunResult:
    """Preload, then every writer, the closer and a verifier at once; waits for all (a hang fails)."""
    ledger = open_books(url)
    try:
        preload = ingest_batch(ledger, list(enumerate(workload.preload, start=1)))
        assert {o.outcome for o in preload} == {"accepted"}
    finally:
        ledger.close()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    stop = context.Event()
    writers = [context.Process(target=_writer, args=(url, batches, results)) for batches in workload.batches]
    closer = context.Process(target=_closer, args=(url, CLOSED_MONTH, close_after_blocks, results))
    verifier = context.Process(target=_verifier, args=(url, stop, results))
    started = time.perf_counter()
    for process in (verifier, *writers, closer):
        process.start()
    collected = []
    deadline = time.monotonic() + timeout_s
    while len(collected) < len(writers) + 1 and time.monotonic() < deadline:
        try:
            collected.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        except Exception:  # noqa: BLE001 - queue.Empty: the deadline passed
            break
    seconds = time.perf_counter() - started
    stop.set()
    try:
        collected.append(results.get(timeout=60))
    except Exception:  # noqa: BLE001
        pass
    for process in (verifier, *writers, closer):
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    errors = [f"{role}: {error}" for role, *_rest, error in collected if error]
    if len([c for c in collected if c[0] == "writer"]) < len(writers):
        errors.append(f"only {len([c for c in collected if c[0] == 'writer'])} of {len(writers)} writers "
                      f"finished within {timeout_s} s (a deadlock or a hang)")
    outcomes = [o for role, batches, *_ in collected if role == "writer" for batch in batches for o in batch]
    batch_seconds = [s for role, _o, secs, _e in collected if role == "writer" for s in secs]
    closer_rows = [c for c in collected if c[0] == "closer"]
    verifier_rows = [c for c in collected if c[0] == "verifier"]
    return RunResult(seconds, outcomes, batch_seconds, closer_rows[0][1] if closer_rows else None,
                     verifier_rows[0][1] if verifier_rows else 0, verifier_rows[0][2] if verifier_rows else [],
                     errors)


def outcome_problems(workload: Workload, result: RunResult) -> list[str]:
    """Each key accepted exactly once (preload included), `duplicate` everywhere else, none lost."""
    accepted: dict[tuple[str, str], int] = {(i["platform"], i["event_id"]): 1 for i in workload.preload}
    problems = []
    for platform, event_id, outcome in result.outcomes:
        if outcome == "accepted":
            accepted[(platform, event_id)] = accepted.get((platform, event_id), 0) + 1
        elif outcome != "duplicate":
            problems.append(f"{platform}/{event_id}: {outcome}")
    problems += [f"{key} accepted {count} times" for key, count in accepted.items() if count != 1]
    problems += [f"{key} never accepted (lost)" for key in workload.items_by_key if key not in accepted]
    return problems[:20]


def replayed_model(url: str, workload: Workload) -> tuple[ReferenceModel, list[str]]:
    """The reference model fed the books' own commit order, with the close where it happened."""
    ledger = open_books(url)
    try:
        with ledger.engine.connect() as conn:
            order = query(conn, "SELECT j.id, p.name, j.event_id FROM journal j JOIN platform p "
                                "ON p.id = j.platform_id WHERE j.entry_type IN (1, 2) ORDER BY j.id")
            close = query(conn, "SELECT month, last_entry_id FROM month_close")
            conn.rollback()
    finally:
        ledger.close()
    model = ReferenceModel()
    refused = []
    closed_at = close[0][1] if close else None
    for entry_id, platform, event_id in order:
        if closed_at is not None and entry_id > closed_at and model.last_closed is None:
            model.close(CLOSED_MONTH)
        outcome = model.ingest(workload.items_by_key[(platform, event_id)])
        if outcome != "accepted":
            refused.append(f"entry {entry_id} ({platform}/{event_id}): the model says {outcome}")
    if closed_at is not None and model.last_closed is None:
        model.close(CLOSED_MONTH)
    return model, refused


def check(url: str, workload: Workload, result: RunResult) -> list[str]:
    """Everything that must hold after a concurrent run; empty when it all does."""
    problems = list(result.errors) + outcome_problems(workload, result)
    model, refused = replayed_model(url, workload)
    problems += refused
    if model.last_closed != CLOSED_MONTH:
        problems.append("January was never closed")
    ledger = open_books(url)
    try:
        problems += differences(ledger, model)
        problems += [f"verify: {name}: {problem}" for name, problem in verify_problems(ledger)]
    finally:
        ledger.close()
    problems += [f"verify while writing: {name}: {problem}" for name, problem in result.verifier_problems]
    return problems

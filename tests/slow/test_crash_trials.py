"""At least fifty seeded SIGKILL trials each of `ansinh ingest`, of a month close and of `ansinh serve`, per store,
and fifty of one worker of `ansinh serve --workers 2` on PostgreSQL.

Each trial is one of `tests/reliability/crash.py`; the figures (trials, where the kills
landed, time) are printed and written to benchmarks/results/reliability-crash-*.json for
docs/reliability.md. Seeds are the trial numbers, so a failing trial is re-run alone with
`ANSINH_CRASH_SEEDS=17 pytest -m slow tests/slow/test_crash_trials.py`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

import pytest

from tests.reliability.crash import Books, TrialResult, close_trial, copy_sqlite, ingest_trial, prepare_close_books, summary, \
    timed_run
from tests.reliability.oracle import ROOT, model_of, tier_rows, write_workload

pytestmark = pytest.mark.slow
MONTH = "2026-03"
TRIALS = 50
SEEDS = [int(seed) for seed in os.environ.get("ANSINH_CRASH_SEEDS", "").split(",") if seed] or list(range(1, TRIALS + 1))
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def record(name: str, results) -> None:
    text = summary(results)
    print("\n" + text)
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"reliability-{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"summary": text, "trials": [{**asdict(r), "landed": r.landed} for r in results]},
                               indent=1))


def guarded(kind: str, store: str, seed: int, trial) -> TrialResult:
    """Run one trial; an exception is recorded as that trial's failure and the other trials go on."""
    try:
        return trial()
    except Exception as error:  # noqa: BLE001 - reported with the seed in the figures and the assertion
        return TrialResult(kind, seed, store, 0.0, False, 0, 0,
                           outcome_errors=[f"the trial raised {type(error).__name__}: {str(error)[-1500:]}"])


def failures(results) -> list[str]:
    return [f"seed {r.seed} ({r.landed}, {r.note}): {r.outcome_errors[:2]} {r.differences[:2]} {r.problems[:2]}"
            for r in results if not r.holds]


@pytest.mark.parametrize("store", STORES)
def test_fifty_ingests_killed_at_random_moments_each_book_every_event_exactly_once(tmp_path, store):
    events_file, _tiers, items = write_workload(tmp_path, seed=101, month=MONTH, workers=1_000, events=30_000)
    model, outcomes = model_of(items)
    books = Books(store, tmp_path)
    results = []
    try:
        empty = tmp_path / "empty.ndjson"
        empty.write_bytes(b"")
        startup = timed_run(books.fresh(), "ingest", empty)
        whole = timed_run(books.fresh(), "ingest", events_file, "--chunk-size", "250")
        books.remove()
        for seed in SEEDS:
            results.append(guarded("ingest", store, seed, lambda: ingest_trial(
                books.fresh(), events_file, model, outcomes, seed=seed, window=(0.8 * startup, whole), store=store)))
            books.remove()
    finally:
        books.remove()
        record(f"ingest-{store}", results)
    assert failures(results) == []
    landed = {r.landed for r in results}
    if len(SEEDS) >= TRIALS:
        assert "between or inside commits" in landed, f"no kill landed mid-ingest: {landed}"


@pytest.mark.parametrize("store", STORES)
def test_fifty_closes_killed_mid_way_each_leave_the_month_whole_or_open(tmp_path, store):
    events_file, tiers_file, items = write_workload(tmp_path, seed=202, month=MONTH, workers=3_000, events=20_000)
    model, _ = model_of(items, tiers=tier_rows(tiers_file), close=MONTH)
    books = Books(store, tmp_path)
    results = []
    template = books.fresh() if store == "sqlite" else None

    def prepared() -> tuple[str, tuple[int, ...]]:
        url = books.fresh()
        if template is None:
            return url, prepare_close_books(url, events_file, tiers_file)
        copy_sqlite(template, url)
        return url, before

    try:
        before = prepare_close_books(template, events_file, tiers_file) if template else ()
        probe, _counts = prepared()
        whole = timed_run(probe, "close", MONTH)
        books.remove()
        for seed in SEEDS:
            for mode in ("cli", "step"):
                def trial():
                    url, counts = prepared()
                    return close_trial(url, MONTH, model, counts, seed=seed, mode=mode, window=(0.5, whole),
                                       store=store)

                results.append(guarded(f"close-{mode}", store, seed, trial))
                books.remove()
    finally:
        books.remove()
        record(f"close-{store}", results)
    assert failures(results) == []
    assert all(r.landed == "before the commit" for r in results if r.kind == "close-step")


@pytest.mark.parametrize("store", STORES)
def test_fifty_servers_killed_while_a_platform_posts_each_book_every_event_exactly_once(tmp_path, store):
    from tests.reliability.served_crash import served_trial

    _events, _tiers, items = write_workload(tmp_path, seed=303, month=MONTH, workers=500, events=6_000)
    books = Books(store, tmp_path)
    results = []
    try:
        for seed in SEEDS:
            results.append(guarded("serve", store, seed, lambda: served_trial(books.fresh(), items, seed=seed,
                                                                             store=store)))
            books.remove()
    finally:
        books.remove()
        record(f"serve-{store}", results)
    assert failures(results) == []


@pytest.mark.postgres
def test_fifty_times_one_of_two_server_workers_killed_while_platforms_post_each_book_every_event_once(tmp_path):
    """`ansinh serve --workers 2` on PostgreSQL; per trial a fresh server and books, one worker SIGKILLed."""
    from tests.reliability.multiworker_crash import multiworker_trial

    _events, _tiers, items = write_workload(tmp_path, seed=404, month=MONTH, workers=500, events=6_000)
    books = Books("postgresql", tmp_path)
    results = []
    try:
        for seed in SEEDS:
            results.append(guarded("serve-2-workers", "postgresql", seed,
                                   lambda: multiworker_trial(books.fresh(), items, seed=seed, store="postgresql")))
            books.remove()
    finally:
        books.remove()
        record("serve-2-workers-postgresql", results)
    assert failures(results) == []

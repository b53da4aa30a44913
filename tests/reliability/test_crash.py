"""Kill -9 during ingest and during a month close, a few seeded trials per store (the slow suite runs 50+).

After each kill the books hold whole transactions only; after restart and re-send they
equal the reference model to the dong and `verify` passes (TARGETS.md "Crash").
"""
from __future__ import annotations

import pytest

from tests.reliability.crash import Books, close_trial, copy_sqlite, ingest_trial, prepare_close_books, timed_run
from tests.reliability.oracle import model_of, tier_rows, write_workload

MONTH = "2026-03"


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash")
    events_file, tiers_file, items = write_workload(folder, seed=11, month=MONTH, workers=300, events=6_000)
    model, outcomes = model_of(items)
    closed_model, _ = model_of(items, tiers=tier_rows(tiers_file), close=MONTH)
    return folder, events_file, tiers_file, model, outcomes, closed_model


@pytest.mark.parametrize("store, seeds", [("sqlite", (1,)), pytest.param("sqlite", (2,), marks=pytest.mark.slow),
                                          pytest.param("postgresql", (3,), marks=pytest.mark.postgres)])
def test_an_ingest_killed_at_a_random_moment_then_resent_books_every_event_exactly_once(workload, tmp_path,
                                                                                        store, seeds):
    folder, events_file, _tiers, model, outcomes, _closed = workload
    books = Books(store, tmp_path)
    try:
        empty = tmp_path / "empty.ndjson"
        empty.write_bytes(b"")
        startup = timed_run(books.fresh(), "ingest", empty)
        whole = timed_run(books.fresh(), "ingest", events_file, "--chunk-size", "250")
        for seed in seeds:
            result = ingest_trial(books.fresh(), events_file, model, outcomes, seed=seed,
                                  window=(0.8 * startup, whole), store=store)
            assert result.outcome_errors == []
            assert result.differences == []
            assert result.problems == []
    finally:
        books.remove()


@pytest.mark.parametrize("store, trials", [
    ("sqlite", (("cli", 1), ("step", 2))),
    pytest.param("postgresql", (("step", 3),), marks=pytest.mark.postgres),
])
def test_a_close_killed_mid_way_leaves_the_month_whole_or_open_and_the_retry_gives_the_model_figures(
        workload, tmp_path, store, trials):
    _folder, events_file, tiers_file, _model, _outcomes, closed_model = workload
    books = Books(store, tmp_path)
    try:
        template = books.fresh()
        before = prepare_close_books(template, events_file, tiers_file)
        for mode, seed in trials:
            if store == "sqlite":
                url = books.fresh()
                copy_sqlite(template, url)
            else:
                url = books.fresh()
                prepare_close_books(url, events_file, tiers_file)
            result = close_trial(url, MONTH, closed_model, before, seed=seed, mode=mode, window=(0.8, 2.0),
                                 store=store)
            assert result.outcome_errors == [], result.note
            assert result.differences == [], result.note
            assert result.problems == [], result.note
            if mode == "step":  # killed inside the open transaction: nothing of the close survived the kill
                assert result.landed == "before the commit", result.note
    finally:
        books.remove()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_server_killed_while_a_platform_posts_then_resent_books_every_event_exactly_once(database_url, tmp_path):
    from tests.reliability.served_crash import served_trial

    _events, _tiers, items = write_workload(tmp_path, seed=12, month=MONTH, workers=200, events=3_000)
    result = served_trial(database_url, items, seed=4, store="sqlite")
    assert result.outcome_errors == [], result.note
    assert result.differences == [], result.note
    assert result.problems == [], result.note


@pytest.mark.postgres
@pytest.mark.parametrize("seeds", [(1,), pytest.param((2, 3), marks=pytest.mark.slow)])
def test_one_of_two_server_workers_killed_while_platforms_post_then_everything_resent_books_the_model(tmp_path, seeds):
    """`ansinh serve --workers 2` on PostgreSQL, six platforms posting at once; one seeded kill of one worker
    in the default suite, two more in the slow one."""
    from tests.reliability.multiworker_crash import multiworker_trial

    _events, _tiers, items = write_workload(tmp_path, seed=13, month=MONTH, workers=200, events=3_000)
    books = Books("postgresql", tmp_path)
    try:
        for seed in seeds:
            result = multiworker_trial(books.fresh(), items, seed=seed, store="postgresql")
            assert result.outcome_errors == [], (seed, result.note, result.outcome_errors[:5])
            assert result.differences == [], (seed, result.note, result.differences[:5])
            assert result.problems == [], (seed, result.note, result.problems[:5])
            books.remove()
    finally:
        books.remove()

"""The benchmarks at CI size: benchmarks/ingest.py, close.py and bytes.py on ~2,000 events.

These check that the benchmark scripts run and that their outputs agree with each other
(every item has one outcome, the books hold one entry per accepted item and balance,
the close's subsidies equal the statements'), never how fast anything was: timings
live in docs/performance.md, measured by the scripts themselves.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from benchmarks import bytes as bytes_benchmark
from benchmarks import close as close_benchmark
from benchmarks import ingest as ingest_benchmark
from ledger.books import iso_utc
from ledger.postings import utc_texts
from tests.conftest import postgres_available

EVENTS = 2_000


def test_the_ingest_benchmark_books_every_event_once_and_its_baselines_see_the_same_rows(tmp_path):
    results = ingest_benchmark.run(EVENTS, folder=tmp_path, seed=3)
    assert results["events"] == EVENTS
    figures = results["sqlite"]
    outcomes = figures["outcomes"]
    assert sum(outcomes.values()) == EVENTS
    assert outcomes["accepted"] == figures["books"]["entries"] > 0.9 * EVENTS
    assert set(outcomes) - {"accepted", "duplicate"}, "the generated file holds bad events too"
    assert figures["books"]["postings_sum_vnd"] == 0
    assert figures["baseline_executemany_event_rows"]["rows"] == EVENTS - outcomes.get("malformed", 0)
    floor = figures["baseline_executemany_ledger_rows"]
    assert (floor["entries"], floor["postings"]) == (figures["books"]["entries"], figures["books"]["postings"])
    assert figures["peak_rss_mb"] > 0 and figures["events_per_s"] > 0


@pytest.mark.skipif(postgres_available() is not None, reason="PostgreSQL is not reachable")
def test_the_ingest_benchmark_gives_the_same_outcomes_on_postgresql(tmp_path):
    results = ingest_benchmark.run(EVENTS, folder=tmp_path, seed=3, sqlite=True, postgres=True)
    assert results["postgresql"]["outcomes"] == results["sqlite"]["outcomes"]
    assert results["postgresql"]["books"] == results["sqlite"]["books"]
    assert results["postgresql"]["baseline_copy_ledger_rows"]["entries"] == results["sqlite"]["books"]["entries"]


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_the_close_benchmark_closes_every_worker_and_its_figures_agree(tmp_path, postgres):
    if postgres and postgres_available() is not None:
        pytest.skip("PostgreSQL is not reachable")
    results = close_benchmark.run(300, EVENTS, folder=tmp_path, samples=50, sqlite=not postgres, postgres=postgres,
                                    verify_books=True)
    figures = results["postgresql" if postgres else "sqlite"]
    assert figures["consistent"]
    assert figures["verify"]["problems"] == [] and figures["verify"]["checks"] >= 18
    assert figures["load"]["outcomes"] == {"accepted": EVENTS}
    assert figures["statements"]["count"] == 300
    assert 0 < figures["close"]["workers_subsidised"] <= 300
    assert set(figures["close"]["steps_at_seconds"]) >= {"subsidies computed", "close recorded"}
    assert figures["statement_latency_ms"]["samples"] == 50


def test_the_journal_texts_written_from_microseconds_as_columns_equal_iso_utc():
    base = datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=7)))
    moments = [base, base.replace(microsecond=0), base.astimezone(timezone(timedelta(hours=-9, minutes=-30))),
               datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 0, tzinfo=timezone.utc),
               datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=timezone.utc), datetime(2028, 2, 29, 12, tzinfo=timezone.utc),
               datetime(999, 1, 1, tzinfo=timezone.utc)]  # before year 1000: written one at a time
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    micros = [(moment - epoch) // timedelta(microseconds=1) for moment in moments]
    assert utc_texts(np.array(micros)) == [iso_utc(moment) for moment in moments]
    assert utc_texts(np.array(micros[:-1])) == [iso_utc(moment) for moment in moments[:-1]]


def test_the_simulation_benchmark_agrees_with_its_pandas_group_by_on_every_worker_share_total(tmp_path):
    from benchmarks import simulate as simulate_benchmark

    results = simulate_benchmark.run(300, folder=tmp_path, months=3, cold=False, report=False)
    figures = results["simulation"]
    (command,) = results["whole_command"]  # `ansinh simulate` as a user runs it: the same results
    assert figures["whole_command_agrees"] and command["kind"] == "warm" and command["wall_seconds"] > 0
    assert (figures["workers"], figures["months"], figures["arms"]) == (300, 3, 2)
    assert figures["agrees_with_pandas"]
    assert figures["worker_months"] == figures["pandas_groupby"]["groups"] > 300
    base, reform = figures["engine_worker_share_totals"]
    assert reform["si_worker"] > base["si_worker"]  # ride si 1.2 %
    assert reform["ui_worker"] < base["ui_worker"]  # riders who opt out of the reform pay no ui either
    assert figures["participation_elasticity"] == 0.1 and figures["user_seconds"] >= figures["engine_seconds"]
    assert results["population_build"]["activity_rows"] == figures["activity_rows"]
    assert len(figures["results_sha256"]) == 64 and figures["peak_rss_mb"] > 0


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_the_bytes_benchmark_counts_every_page_of_the_books_once_by_relation(tmp_path, postgres):
    if postgres and postgres_available() is not None:
        pytest.skip("PostgreSQL is not reachable")
    results = bytes_benchmark.run(EVENTS, folder=tmp_path, seed=3, sqlite=not postgres, postgres=postgres)
    figures = results["postgresql" if postgres else "sqlite"]
    relations = figures["relations"]
    total = sum(relation["bytes"] for relation in relations.values())
    if postgres:  # one month's partition holds the journal; the parent and `journal_default` are empty
        assert total == figures["total_bytes"]
        assert {"journal_202601", "event_key", "event_key_pkey", "journal_202601_pkey"} <= set(relations)
        assert relations["journal"]["main_bytes"] == relations["journal_default"]["main_bytes"] == 0
    else:  # dbstat's pages are the file's pages, less the free list
        assert total == figures["file_bytes"] - figures["free_pages"] * figures["page_size"]
        assert relations["journal_worker_month"]["kind"] == "index" and "journal_booking_month" not in relations
    assert figures["entries"] > 0.9 * EVENTS
    assert figures["bytes_per_event"] * figures["entries"] == (figures["total_bytes"] if postgres
                                                               else figures["file_bytes"])

"""benchmarks/trips.py at CI size (3,000 events): the script runs and its figures agree.

Like tests/test_benchmarks_smoke.py, nothing here checks how fast anything was (the timings
are the script's own, in docs/performance.md): every booked event is listed, sampled months'
pages chain without loss and sum to their statements, deep pages were reached.
"""
from __future__ import annotations

import pytest

from benchmarks import trips as trips_benchmark
from tests.conftest import postgres_available


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_the_trips_benchmark_lists_every_booked_event_and_reaches_deep_pages(tmp_path, postgres):
    if postgres and postgres_available() is not None:
        pytest.skip("PostgreSQL is not reachable")
    results = trips_benchmark.run(3_000, workers=40, months=3, folder=tmp_path, samples=30, page_size=5,
                                  sqlite=not postgres, postgres=postgres)
    figures = results["postgresql" if postgres else "sqlite"]
    assert figures["consistent"]
    # 2 % refunds and 0.5 % late January events are among the 3,000, all accepted
    assert figures["load"]["outcomes"] == {"accepted": 3_000} == {"accepted": figures["entries_listed"]}
    assert figures["first_page_latency_ms"]["samples"] == figures["statement_latency_ms"]["samples"] == 30
    assert figures["busy_worker_months"] > 0 and figures["deep_page_depth"]["max"] >= 4
    assert figures["deep_page_latency_ms"]["samples"] == 30
    assert figures["bytes"]["books_per_event"] > 0 and figures["bytes"]["worker_month_index_per_event"] > 0

"""Ten rounds of eight writers, a close and a verifier on one PostgreSQL ledger (`pytest -m slow`).

Each round is `tests/reliability/concurrency.py` with its own seed and a bigger
workload than the default suite's; the figures (rounds, items, time, batch latency)
are printed and written to benchmarks/results/reliability-concurrency-*.json.
"""
from __future__ import annotations

import json
import statistics
import time

import pytest

from tests.conftest import _drop_schema, _fresh_postgres_url, postgres_available
from tests.reliability import concurrency
from tests.reliability.oracle import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROUNDS = 10


def test_ten_rounds_of_eight_writers_and_a_close_on_postgresql_each_lose_nothing_and_double_nothing():
    if postgres_available():
        pytest.skip(postgres_available())
    figures, failures = [], []
    for seed in range(1, ROUNDS + 1):
        url, schema = _fresh_postgres_url()
        try:
            workload = concurrency.build(seed=seed, writers=8, units=3_000, batches_per_writer=8, workers=1_000)
            result = concurrency.run(url, workload, close_after_blocks=20 + 3 * seed)
            problems = concurrency.check(url, workload, result)
            sent = sum(len(batch) for writer in workload.batches for batch in writer)
            figures.append({"seed": seed, "items": sent, "seconds": round(result.seconds, 2),
                            "batch_p50_s": round(statistics.median(result.batch_seconds), 3),
                            "batch_max_s": round(max(result.batch_seconds), 3),
                            "closed_after_blocks": result.closed_after_blocks,
                            "verifier_runs": result.verifier_runs, "problems": problems[:5]})
            if problems:
                failures.append(f"seed {seed}: {problems[:5]}")
        finally:
            _drop_schema(schema)
    text = "\n".join(json.dumps(row) for row in figures)
    print("\n" + text)
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"reliability-concurrency-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(figures, indent=1))
    assert failures == []

"""Eight writers, one PostgreSQL ledger, overlapping batches with duplicates and refunds, a close in the middle.

No deadlock, no lost or doubled event, the totals equal the reference model replayed
in the books' commit order, and a `verify` running throughout never sees a
half-state (TARGETS.md "Concurrency"; docs/reliability.md says which locks make it so).
"""
from __future__ import annotations

import pytest

from tests.reliability import concurrency


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_eight_writers_and_a_close_on_postgresql_lose_nothing_and_count_nothing_twice(database_url):
    workload = concurrency.build(seed=1, writers=8, units=500, batches_per_writer=4)
    result = concurrency.run(database_url, workload, close_after_blocks=8)
    assert concurrency.check(database_url, workload, result) == []
    assert result.closed_after_blocks is not None and result.closed_after_blocks >= 8
    assert result.verifier_runs >= 1
    sent = sum(len(batch) for writer in workload.batches for batch in writer)
    assert len(result.outcomes) == sent  # one outcome per item sent


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_eight_writers_and_a_close_on_one_sqlite_file_lose_nothing_and_count_nothing_twice(database_url):
    workload = concurrency.build(seed=2, writers=8, units=300, batches_per_writer=3)
    result = concurrency.run(database_url, workload, close_after_blocks=6)
    assert concurrency.check(database_url, workload, result) == []

"""Saved populations load back exactly; the engine gives the same bits whatever its chunking."""
from __future__ import annotations

import pandas as pd
import pytest

from simulations import engine
from simulations import population as populations
from simulations.scenario import Budget, parse_scenario


def test_a_saved_population_loads_back_with_the_same_frames_dtypes_and_hash(tmp_path):
    population = populations.synthetic(700, (202601, 202602), 4)
    digest = populations.save(population, tmp_path / "pop")
    loaded = populations.load(tmp_path / "pop")

    pd.testing.assert_frame_equal(loaded.activity, population.activity, check_dtype=True)
    pd.testing.assert_frame_equal(loaded.workers, population.workers, check_dtype=True)
    assert loaded.content_hash() == digest == population.content_hash()
    assert loaded.months == (202601, 202602)


def test_a_saved_population_whose_activity_was_edited_is_refused(tmp_path):
    population = populations.synthetic(200, (202601,), 4)
    populations.save(population, tmp_path / "pop")
    edited = population.activity.copy()
    edited.loc[0, "gross_vnd"] += 1_000
    edited.to_parquet(tmp_path / "pop" / "activity.parquet", index=False)

    with pytest.raises(populations.PopulationError, match="does not match its recorded hash"):
        populations.load(tmp_path / "pop")


@pytest.mark.parametrize("chunk_workers", [1, 97, 1_000_000])
def test_any_chunking_on_threads_or_forked_processes_gives_the_same_totals_tables_and_budget(chunk_workers):
    population = populations.synthetic(600, (202601, 202602, 202603), 8)
    scenario = parse_scenario({"name": "c", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 3,
                               "seed": 8, "population": {"synthetic": {"workers": 600}},
                               "reforms": {"limited": {"changes": {"max_subsidised_months": 1,
                                                                  "rates.order.si.worker": 8_000}}}})
    budget = Budget("scale", 1_500_000, "horizon")
    reference = engine.run(population, scenario.arms(), budget, chunk_workers=600, threads=1)
    chunked = engine.run(population, scenario.arms(), budget, chunk_workers=chunk_workers, threads=2)
    forked = engine.run(population, scenario.arms(), budget, chunk_workers=chunk_workers, processes=2)

    for arm in reference:
        for table in ("worker_totals", "by_month_tier", "revenue", "budget"):
            pd.testing.assert_frame_equal(getattr(chunked[arm], table), getattr(reference[arm], table))
            pd.testing.assert_frame_equal(getattr(forked[arm], table), getattr(reference[arm], table))
    # demand 8,426,688 VND, scaled to 1,500,000: each subsidy floored, so a little stays unspent
    assert reference["baseline"].budget[["demand_vnd", "paid_vnd"]].values.tolist() == [[8_426_688, 1_498_723]]
    assert int(reference["limited"].worker_totals["subsidised_months"].max()) == 1
    assert int(reference["baseline"].worker_totals["pension_months"].sum()) > 0  # credits are chunked too

"""Months to a pension and replacement rates of sample workers, worked by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd

from rules import load_pack
from simulations import engine
from simulations.population import DEFAULT_TIERS, PLATFORM_NAMES, Population
from simulations.results import compute, project_pension, sample_workers
from simulations.scenario import Budget

OTHER, RIDE, GRAB = DEFAULT_TIERS.index("other"), 0, PLATFORM_NAMES.index("grab")
MONTHS = (202601, 202602, 202603)


def three_riders() -> Population:
    """Worker 0 earns 40M VND of rides a month (own si 400,000 ≥ the 330,000 floor: every month counts);
    worker 1 earns 40M in January and 10M after (one month counts); worker 2 earns 10M (none counts)."""
    gross = {0: (40_000_000,) * 3, 1: (40_000_000, 10_000_000, 10_000_000), 2: (10_000_000,) * 3}
    rows = [(worker, month, GRAB, RIDE, OTHER, amounts[m]) for m, month in enumerate(MONTHS)
            for worker, amounts in gross.items()]
    activity = pd.DataFrame(rows, columns=["worker", "month", "platform", "kind", "tier", "gross_vnd"])
    activity["events"] = 100
    activity = activity.astype({"worker": np.int64, "month": np.int32, "platform": np.int16, "kind": np.int8,
                                "tier": np.int8, "gross_vnd": np.int64, "events": np.int32})
    workers = pd.DataFrame({"worker": np.arange(3), "sex": "male", "birth_year": 1990, "province": "079",
                            "region": "southeast", "worker_type": "ride",
                            "tier": pd.Categorical(["other"] * 3, categories=list(DEFAULT_TIERS))})
    return Population(workers, activity.sort_values(["month", "worker"], ignore_index=True))


def test_three_counted_months_in_three_need_177_more_and_replace_22142_ppm_of_income():
    # si account: 3 × (400,000 own + 33,000 top-up: 10 % of the 330,000 cap) = 1,299,000 VND over
    # 120,000,000 of gross; 45 % × (1,299,000 / 22 %) / 120,000,000 = 2.2142 %.
    assert project_pension(3, 1_299_000, 120_000_000, 3) == (177, 22_142)


def test_one_counted_month_in_three_needs_537_months_and_none_counted_never_qualifies():
    assert project_pension(1, 653_000, 60_000_000, 3) == (537, 22_261)  # ceil(179 × 3 / 1); 45/22 × 653k/60M
    assert project_pension(0, 300_000, 30_000_000, 3) == (None, None)
    assert project_pension(180, 1, 1, 3)[0] == 0 and project_pension(200, 1, 1, 3)[0] == 0


def test_the_percentile_samples_of_three_workers_are_the_poorest_the_middle_and_the_richest():
    gross = np.array([120, 60, 30, 999])
    active = np.array([True, True, True, False])  # the inactive richest is never a sample

    assert sample_workers(gross, active) == [(10, 2), (25, 1), (50, 1), (75, 0), (90, 0), (99, 0)]


def test_the_engine_and_results_give_the_hand_worked_projection_for_each_sample_worker():
    population = three_riders()
    arms = engine.run(population, {"baseline": load_pack("vn-pilot")}, Budget())
    table = compute(population, arms).tables["pension_projection"].set_index("percentile")

    assert table.loc[99, ["worker", "pension_months", "si_balance_vnd", "months_to_pension",
                          "replacement_ppm"]].tolist() == [0, 3, 1_299_000, 177, 22_142]
    assert table.loc[50, ["worker", "pension_months", "si_balance_vnd", "months_to_pension",
                          "replacement_ppm"]].tolist() == [1, 1, 653_000, 537, 22_261]
    assert table.loc[10, "worker"] == 2 and table.loc[10, "pension_months"] == 0
    assert table.loc[10, "months_to_pension"] is pd.NA and table.loc[10, "replacement_ppm"] is pd.NA

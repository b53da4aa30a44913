"""Months to a pension and replacement rates of sample workers, worked by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rules import load_pack
from simulations import engine
from simulations.population import DEFAULT_TIERS, PLATFORM_NAMES, Population
from simulations.results import compute, project_pension, sample_workers
from simulations.scenario import Budget, Change, Reform, apply_reform
from tests.credit_model import ModelWorker, flat_floor

OTHER, RIDE, GRAB = DEFAULT_TIERS.index("other"), 0, PLATFORM_NAMES.index("grab")
MONTHS = (202601, 202602, 202603)
# si per month, by hand: 40M of rides → 400,000 own + 33,000 top-up (10 % of the 330,000 cap);
# 10M → 100,000 + 10,000. vn-pilot has no platform si.
SI_TOTALS = {0: (433_000,) * 3, 1: (433_000, 110_000, 110_000), 2: (110_000,) * 3}


def credited_by_model(worker: int, crediting: str) -> int:
    """RULES.md §11 from tests/credit_model.py (pooled), or the per-month rule written out here."""
    if crediting == "per_month":
        return sum(total >= 330_000 for total in SI_TOTALS[worker])
    model = ModelWorker(flat_floor(330_000))
    for month, total in zip(MONTHS, SI_TOTALS[worker]):
        model.book(month, total)
        model.close(month)
    return len(model.credited)


def three_riders() -> Population:
    """Worker 0 earns 40M VND of rides a month, worker 1 40M in January and 10M after, worker 2 10M a month
    (SI_TOTALS: their si totals, own 1 % plus the `other` tier's 10 % top-up)."""
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


def test_pooling_credits_the_small_earner_one_month_from_three_months_of_110000_and_per_month_none():
    assert [credited_by_model(w, "pooled") for w in range(3)] == [3, 1, 1]
    assert [credited_by_model(w, "per_month") for w in range(3)] == [3, 1, 0]


@pytest.mark.parametrize("crediting", ["pooled", "per_month"])
def test_the_engine_credits_the_model_s_months_and_results_project_them_for_each_sample_worker(crediting):
    pack = load_pack("vn-pilot")
    if crediting != "pooled":
        pack = apply_reform(pack, Reform("per-month", "", (Change("crediting", None, crediting),)))
    arms = engine.run(three_riders(), {"baseline": pack}, Budget())
    table = compute(three_riders(), arms).tables["pension_projection"].set_index("percentile")

    gross = {0: 120_000_000, 1: 60_000_000, 2: 30_000_000}
    for percentile, worker in ((99, 0), (50, 1), (10, 2)):
        row = table.loc[percentile]
        credited, balance = credited_by_model(worker, crediting), sum(SI_TOTALS[worker])
        assert (int(row["worker"]), int(row["pension_months"]), int(row["si_balance_vnd"])) == \
            (worker, credited, balance)
        projected = (row["months_to_pension"], row["replacement_ppm"])
        assert tuple(None if value is pd.NA else int(value) for value in projected) == \
            project_pension(credited, balance, gross[worker], 3)
    assert arms["baseline"].crediting == (crediting,)


def test_under_pooling_the_10m_rider_is_credited_january_at_the_march_close_and_needs_177_more_at_this_pace():
    # 3 × 110,000 = 330,000 pays January's floor when March closes: 1 month in 3, ceil(179 × 3) = 537 more
    # months; 45 % × (330,000 / 22 %) / 30,000,000 = 2.25 % of income.
    arms = engine.run(three_riders(), {"baseline": load_pack("vn-pilot")}, Budget(), keep_worker_months=True)
    credits = arms["baseline"].credits

    assert credits[credits["worker"] == 2][["month", "close_month", "floor_vnd"]].values.tolist() == \
        [[202601, 202603, 330_000]]
    assert int(arms["baseline"].worker_totals.loc[2, "pool_vnd"]) == 0
    assert project_pension(1, 330_000, 30_000_000, 3) == (537, 22_500)

"""rules.crediting (RULES.md §11) on arrays, against the worked example and the independent model."""
from __future__ import annotations

import copy
from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import load_pack
from rules.crediting import (CreditState, FloorSchedule, accrue, credit, month_ordinal, next_credit_needs,
                             ordinal_month)
from rules.model import RulesVersion
from tests.credit_model import ModelWorker

PILOT = load_pack("vn-pilot")
WORKED = [(202601, 100_000), (202602, 150_000), (202603, 200_000), (202604, 0), (202605, 500_000)]


def version(day: date, floor: int, crediting: str = "pooled") -> RulesVersion:
    base = PILOT.versions[0]
    return RulesVersion(pack="t", effective_from=day, source="test", description="", rates_ppm=base.rates_ppm,
                        tier_rate_ppm=base.tier_rate_ppm, subsidised_schemes=base.subsidised_schemes,
                        subsidy_base_cap_vnd=base.subsidy_base_cap_vnd, pension_floor_contribution_vnd=floor,
                        crediting=crediting)


def run(schedule: FloorSchedule, plan=WORKED, mode=None) -> list[tuple[int, int, int, list[int]]]:
    state = CreditState.empty(1)
    seen = []
    for month, si in plan:
        accrue(state, np.array([si]), month_ordinal(month))
        done = credit(state, month_ordinal(month), schedule, mode=mode)
        seen.append((int(state.credited[0]), int(state.pool[0]),
                     int(next_credit_needs(state, month_ordinal(month), schedule, mode=mode)[0]),
                     [int(ordinal_month(m)) for m in done.month]))
    return seen


def test_the_worked_example_credits_two_months_from_950000_vnd():
    assert run(FloorSchedule.of(PILOT)) == [(0, 100_000, 230_000, []), (0, 250_000, 80_000, []),
                                            (1, 120_000, 210_000, [202601]), (1, 120_000, 210_000, []),
                                            (2, 290_000, 40_000, [202602])]


def test_under_per_month_only_may_counts():
    assert [row[3] for row in run(FloorSchedule.of(PILOT), mode="per_month")] == [[], [], [], [], [202605]]


def test_the_pack_decides_the_mode_and_every_shipped_pack_pools():
    assert {name: {v.crediting for v in load_pack(name).versions}
            for name in ("vn-pilot", "vn-decree-159", "vn-pilot-flat-1pct")} == {
        "vn-pilot": {"pooled"}, "vn-decree-159": {"pooled"}, "vn-pilot-flat-1pct": {"pooled"}}
    per_month = FloorSchedule([version(date(2026, 1, 1), 330_000, "per_month")])
    assert [row[3] for row in run(per_month)][-1] == [202605]


def test_a_version_taking_effect_mid_month_sets_the_floor_from_the_next_month():
    schedule = FloorSchedule([version(date(2026, 1, 1), 330_000), version(date(2027, 1, 15), 484_000)])
    assert schedule.floor_of(month_ordinal(202701)) == 330_000
    assert schedule.floor_of(month_ordinal(202702)) == 484_000
    assert schedule.floor_of(month_ordinal(202501)) == 330_000  # before the first version: the first's


def test_a_floor_change_between_versions_charges_each_month_its_own_floor():
    schedule = FloorSchedule([version(date(2026, 1, 1), 330_000), version(date(2027, 1, 1), 484_000)])
    assert run(schedule, [(202612, 800_000), (202701, 14_000)]) == [(1, 470_000, 14_000, [202612]),
                                                                   (2, 0, 484_000, [202701])]


def test_a_worker_with_no_si_needs_the_floor_of_the_month_and_has_no_candidate():
    state = CreditState.empty(2)
    accrue(state, np.array([0, 5]), month_ordinal(202603))
    credit(state, month_ordinal(202603), FloorSchedule.of(PILOT))
    assert state.candidate().tolist() == [-1, month_ordinal(202603)]
    assert next_credit_needs(state, month_ordinal(202603), FloorSchedule.of(PILOT)).tolist() == [330_000, 329_995]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(plan=st.lists(st.lists(st.integers(-400_000, 900_000), min_size=3, max_size=3), min_size=1, max_size=14),
       floors=st.tuples(st.integers(1, 500_000), st.integers(1, 500_000)))
def test_arrays_of_workers_give_what_the_independent_model_gives_one_worker_at_a_time(plan, floors):
    schedule = FloorSchedule([version(date(2026, 1, 1), floors[0]), version(date(2026, 7, 1), floors[1])])
    models = [ModelWorker(lambda m: floors[0] if m < 202607 else floors[1]) for _ in range(3)]
    state = CreditState.empty(3)
    month = 202601
    for amounts in plan:
        accrue(state, np.array(amounts), month_ordinal(month))
        credit(state, month_ordinal(month), schedule)
        for model, amount in zip(models, amounts):
            model.book(month, amount)
            model.close(month)
        needs = next_credit_needs(state, month_ordinal(month), schedule)
        assert [(int(state.credited[i]), int(state.pool[i]), int(needs[i])) for i in range(3)] == \
            [model.figures(month) for model in models]
        month = month + 89 if month % 100 == 12 else month + 1
    assert [[int(ordinal_month(state.last_credited[i]))] if state.last_credited[i] >= 0 else []
            for i in range(3)] == [[max(m for m, _c in model.credited)] if model.credited else []
                                   for model in models]
    assert copy.deepcopy(state).credited.tolist() == [len(model.credited) for model in models]

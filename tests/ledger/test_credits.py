"""Months credited towards a pension (RULES.md §11), in the books, on both stores.

The pack of these tests is `vn-pilot` with `si` left out of the subsidy (and, where said, a later
version or `per_month`), so a worker's si total is exactly 1 % of their rides: the figures are
RULES.md's own. tests/credit_model.py is the small independent model the property test compares with.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ledger.books import Ledger
from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.reports import credits, statement, statements
from ledger.verify import verify
from rules.loader import PACKS_DIR
from tests.conftest import FixedClock, _drop_schema, _fresh_postgres_url, postgres_available
from tests.credit_model import ModelWorker, flat_floor
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event, numbered, refund

FIELDS = ("credited_months_to_date", "pool_vnd", "next_credit_needs_vnd")
LATER_VERSION = """---
effective_from: 2027-01-01
source: test — the floor rises to 22 % × 2,200,000 = 484,000 in 2027
rates_ppm:
  ride:     {si: {worker: 10000, platform: 0}, oa: {worker: 0, platform: 5000}, ui: {worker: 5000, platform: 0}}
  delivery: {si: {worker: 10000, platform: 0}, oa: {worker: 0, platform: 5000}, ui: {worker: 5000, platform: 0}}
  order:    {si: {worker: 6000,  platform: 0}, oa: {worker: 0, platform: 2000}, ui: {worker: 2000, platform: 0}}
tier_rate_ppm: {poor: 300000, near_poor: 250000, other: 100000}
subsidised_schemes: [ui]
subsidy_base_cap_vnd: {si: 330000, ui: 53100}
pension_floor_contribution_vnd: 484000
"""


def pack_file(folder: Path, *, crediting: str = "pooled", later: bool = False) -> str:
    """vn-pilot with si unsubsidised (si total = 1 % of rides), optionally per_month or with a 2027 version."""
    source = (PACKS_DIR / "vn-pilot.yaml").read_text(encoding="utf-8")
    source = source.replace("pack: vn-pilot", "pack: test-credits").replace("subsidised_schemes: [si, ui]",
                                                                            "subsidised_schemes: [ui]")
    source = source.replace("crediting: pooled", f"crediting: {crediting}")
    path = folder / f"test-credits-{crediting}{'-2027' if later else ''}.yaml"
    path.write_text(source + (LATER_VERSION if later else ""), encoding="utf-8")
    return str(path)


@pytest.fixture
def books(database_url, tmp_path):
    ledger = Ledger.open(database_url, pack=pack_file(tmp_path), clock=FixedClock())
    yield ledger
    ledger.close()


def ride(event_id: str, si_vnd: int, month: str, worker: str = WORKER_A, day: int = 10) -> dict:
    """A ride whose si share is exactly `si_vnd` (1 % of its amount)."""
    return event(event_id, worker_id=worker, amount=si_vnd * 100, occurred_at=f"{month}-{day:02d}T09:00:00+07:00")


def book(ledger, *items) -> None:
    outcomes = [outcome.outcome for outcome in ingest_batch(ledger, numbered(list(items)))]
    assert set(outcomes) == {"accepted"}, outcomes


def fields(ledger, month: str, worker: str = WORKER_A) -> tuple[int, int, int]:
    report = statement(ledger, worker, month)
    return tuple(report[name] for name in FIELDS)


def credited(ledger, worker: str = WORKER_A) -> list[tuple[str, str]]:
    return [(row["month"], row["credited_by_close_of"]) for row in credits(ledger, worker)["months"]]


def holds(ledger) -> None:
    assert [(check.name, check.problem) for check in verify(ledger) if check.problem] == []


# -- RULES.md §11's worked example -------------------------------------------------------------

WORKED = {"2026-01": 100_000, "2026-02": 150_000, "2026-03": 200_000, "2026-04": 0, "2026-05": 500_000}


def book_the_worked_example(ledger) -> None:
    for month, si in WORKED.items():
        if si:
            book(ledger, ride(f"w-{month}", si, month))


def test_the_worked_example_credits_january_at_the_march_close_and_february_at_the_may_close(books):
    book_the_worked_example(books)
    seen = {}
    for month in WORKED:
        close_month(books, month)
        seen[month] = fields(books, month)
    assert seen == {"2026-01": (0, 100_000, 230_000), "2026-02": (0, 250_000, 80_000),
                    "2026-03": (1, 120_000, 210_000), "2026-04": (1, 120_000, 210_000),
                    "2026-05": (2, 290_000, 40_000)}
    assert credited(books) == [("2026-01", "2026-03"), ("2026-02", "2026-05")]
    pension = statement(books, WORKER_A, "2026-05")["pension"]
    assert (pension["months_counted"], pension["pool_vnd"], pension["shortfall_vnd"], pension["next_month"],
            pension["credited_this_month"]) == (2, 290_000, 40_000, "2026-03", ["2026-02"])
    holds(books)


def test_two_months_from_950000_vnd_pooled_but_only_may_under_per_month(database_url, tmp_path):
    ledger = Ledger.open(database_url, pack=pack_file(tmp_path, crediting="per_month"), clock=FixedClock())
    try:
        book_the_worked_example(ledger)
        for month in WORKED:
            close_month(ledger, month)
        assert credited(ledger) == [("2026-05", "2026-05")]
        assert fields(ledger, "2026-05")[0] == 1
        holds(ledger)
    finally:
        ledger.close()


def test_an_open_month_shows_provisional_credits_and_writes_none(books):
    book_the_worked_example(books)
    close_month(books, "2026-01")
    close_month(books, "2026-02")
    # March is open: its 200,000 would credit January; the statement says so, the books do not yet
    assert fields(books, "2026-03") == (1, 120_000, 210_000)
    report = statement(books, WORKER_A, "2026-03")
    assert report["closed"] is False and report["pension"]["provisional"] is True
    assert report["pension"]["credited_this_month"] == ["2026-01"]
    assert credited(books) == []
    # May (two open months ahead) runs March, April and May in turn: February is credited too
    assert fields(books, "2026-05") == (2, 290_000, 40_000)
    assert [s for s in statements(books, "2026-03") if s["national_id"] == WORKER_A][0]["pool_vnd"] == 120_000


# -- refunds, floors, no si -------------------------------------------------------------------

def test_a_refund_after_a_credit_lowers_the_pool_below_zero_and_withdraws_nothing(books):
    book(books, ride("big", 400_000, "2026-01"))
    close_month(books, "2026-01")
    assert fields(books, "2026-01") == (1, 70_000, 260_000)
    book(books, refund("big-r", "big", 40_000_000, occurred_at="2026-02-03T09:00:00+07:00"))
    close_month(books, "2026-02")
    # the pool is 0 − 330,000: January stays credited; February needs its floor plus the debt
    assert fields(books, "2026-02") == (1, -330_000, 660_000)
    assert credited(books) == [("2026-01", "2026-01")]
    book(books, ride("again", 660_000, "2026-03"))
    close_month(books, "2026-03")
    assert fields(books, "2026-03") == (2, 0, 330_000)
    assert credited(books) == [("2026-01", "2026-01"), ("2026-02", "2026-03")]
    holds(books)


def test_a_floor_change_between_versions_charges_each_month_its_own_floor(database_url, tmp_path):
    ledger = Ledger.open(database_url, pack=pack_file(tmp_path, later=True), clock=FixedClock())
    try:
        book(ledger, ride("dec", 800_000, "2026-12"))
        close_month(ledger, "2026-12")
        # December at 330,000; January 2027 is not credited before its close, and needs 484,000
        assert fields(ledger, "2026-12") == (1, 470_000, 14_000)
        book(ledger, ride("jan", 14_000, "2027-01"))
        close_month(ledger, "2027-01")
        assert fields(ledger, "2027-01") == (2, 0, 484_000)
        assert [(row["month"], row["floor_vnd"]) for row in credits(ledger, WORKER_A)["months"]] == [
            ("2026-12", 330_000), ("2027-01", 484_000)]
        holds(ledger)
    finally:
        ledger.close()


def test_a_worker_with_no_si_at_all_has_nothing_credited_no_pool_and_needs_the_months_floor(books):
    # a worker the books do not know, and one whose only ride was refunded within the month
    assert fields(books, "2026-02", WORKER_C) == (0, 0, 330_000)
    book(books, ride("gone", 50_000, "2026-02", worker=WORKER_B),
         refund("gone-r", "gone", 5_000_000, worker_id=WORKER_B, occurred_at="2026-02-11T09:00:00+07:00"))
    close_month(books, "2026-02")
    assert fields(books, "2026-02", WORKER_B) == (0, 0, 330_000)
    assert statement(books, WORKER_B, "2026-02")["pension"]["next_month"] is None
    assert credits(books, WORKER_B) == {"national_id": WORKER_B, "credited_months": 0, "months_needed": 180,
                                        "months": []}


def test_a_big_earner_is_credited_at_most_one_month_per_calendar_month_and_never_ahead(books):
    book(books, ride("huge", 2_000_000, "2026-01"))
    close_month(books, "2026-01")
    assert fields(books, "2026-01") == (1, 1_670_000, 0)  # February is paid for, but not yet credited
    close_month(books, "2026-02")
    close_month(books, "2026-03")
    assert credited(books) == [("2026-01", "2026-01"), ("2026-02", "2026-02"), ("2026-03", "2026-03")]
    holds(books)


def test_the_120_month_limit_of_decree_159_and_crediting_both_apply(database_url):
    """vn-decree-159 subsidises si (50 % for the poor); the subsidy enters the pool like any si."""
    ledger = Ledger.open(database_url, pack="vn-decree-159", clock=FixedClock())
    try:
        book(ledger, ride("d", 300_000, "2026-01"))
        close_month(ledger, "2026-01")
        # own 300,000 + subsidy 20 % (other) 60,000 = 360,000 → January credited, 30,000 left
        assert fields(ledger, "2026-01") == (1, 30_000, 300_000)
        holds(ledger)
    finally:
        ledger.close()


# -- verify ---------------------------------------------------------------------------------------

def _unguard(ledger) -> None:
    with ledger.engine.begin() as conn:
        if ledger.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER credited_month_append_only_update"))
            conn.execute(text("DROP TRIGGER credited_month_append_only_delete"))
        else:
            conn.execute(text("DROP TRIGGER credited_month_append_only ON credited_month"))


def test_credited_months_refuse_update_and_delete_in_the_database(books):
    book_the_worked_example(books)
    for month in ("2026-01", "2026-02", "2026-03"):
        close_month(books, month)
    for statement_text in ("UPDATE credited_month SET floor_vnd = 1", "DELETE FROM credited_month"):
        with pytest.raises(Exception, match="append_only"):
            with books.engine.begin() as conn:
                conn.execute(text(statement_text))


@pytest.mark.parametrize("tamper, named", [
    ("UPDATE credited_month SET month = 202602", "month 2026-0"),
    ("UPDATE credited_month SET floor_vnd = 1", "month 2026-01"),
    ("DELETE FROM credited_month", "month 2026-01: the books record nothing"),
])
def test_verify_names_a_credited_month_that_was_edited_or_deleted(books, tamper, named):
    book_the_worked_example(books)
    for month in ("2026-01", "2026-02", "2026-03"):
        close_month(books, month)
    holds(books)
    _unguard(books)
    with books.engine.begin() as conn:
        conn.execute(text(tamper))
    problems = {check.name: check.problem for check in verify(books, stop_at_first=False) if check.problem}
    assert named in problems["credits_match_rules"]
    # the seal of the row (or its absence) breaks the chain too
    assert "hash_chain_intact" in problems


# -- the property: random months against the independent model, on both stores -----------------

month_plan = st.lists(  # per month: per worker a list of rides (si in hundreds of VND) and maybe a refund
    st.tuples(st.lists(st.integers(0, 2_500), max_size=3), st.lists(st.integers(0, 2_500), max_size=3),
              st.one_of(st.none(), st.tuples(st.sampled_from([0, 1]), st.integers(1, 100)))),
    min_size=2, max_size=6)


def _fresh_url(store: str, folder: Path) -> tuple[str, str | None]:
    if store == "sqlite":
        return f"sqlite:///{folder / 'books.db'}", None
    return _fresh_postgres_url()


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_random_months_of_accruals_and_refunds_match_the_independent_model(store, tmp_path_factory):
    if store == "postgresql" and postgres_available():
        pytest.skip(postgres_available())

    @settings(max_examples=12 if store == "sqlite" else 6, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(plan=month_plan)
    def run(plan):
        folder = tmp_path_factory.mktemp("credits")
        url, schema = _fresh_url(store, folder)
        ledger = Ledger.open(url, pack=pack_file(folder), clock=FixedClock())
        try:
            workers = (WORKER_A, WORKER_B)
            model = {worker: ModelWorker(flat_floor()) for worker in workers}
            rides: dict[str, list[tuple[str, int]]] = {worker: [] for worker in workers}  # (event id, si) refundable
            months = [f"2026-{n:02d}" for n in range(1, len(plan) + 1)]
            for index, (month, (rides_a, rides_b, refund_of)) in enumerate(zip(months, plan)):
                yyyymm = int(month.replace("-", ""))
                items = []
                for worker, hundreds in zip(workers, (rides_a, rides_b)):
                    for n, amount in enumerate(hundreds):
                        si = amount * 100
                        if si:
                            items.append(ride(f"{month}-{worker[-3:]}-{n}", si, month, worker=worker))
                            rides[worker].append((items[-1]["event_id"], si))
                            model[worker].book(yyyymm, si)
                if refund_of is not None:
                    worker = workers[refund_of[0]]
                    open_rides = [r for r in rides[worker] if r[1]]
                    if open_rides:
                        event_id, si = open_rides[0]
                        back = min(si, max(100, si * refund_of[1] // 100 // 100 * 100))  # whole hundreds of si
                        items.append(refund(f"{event_id}-r{month}", event_id, back * 100, worker_id=worker,
                                            occurred_at=f"{month}-20T09:00:00+07:00"))
                        rides[worker][rides[worker].index((event_id, si))] = (event_id, si - back)
                        model[worker].book(yyyymm, -back)
                if items:
                    book(ledger, *items)
                if index == len(plan) - 1:  # the last month stays open: provisional figures
                    for worker in workers:
                        virtual = copy.deepcopy(model[worker])
                        virtual.close(yyyymm)
                        assert fields(ledger, month, worker) == virtual.figures(yyyymm)
                    continue
                close_month(ledger, month)
                for worker in workers:
                    model[worker].close(yyyymm)
                    assert fields(ledger, month, worker) == model[worker].figures(yyyymm), (worker, month)
            for worker in workers:
                assert credited(ledger, worker) == [(f"{m // 100}-{m % 100:02d}", f"{c // 100}-{c % 100:02d}")
                                                    for m, c in model[worker].credited]
            holds(ledger)
        finally:
            ledger.close()
            if schema:
                _drop_schema(schema)

    run()


# -- exports ---------------------------------------------------------------------------------------

def test_the_contributions_file_and_the_report_by_province_carry_the_credited_months(books, tmp_path):
    import csv

    from ledger.authority import CONTRIBUTIONS_LAYOUT, credits_by_province, write_contributions

    book(books, ride("a", 700_000, "2026-01"), ride("b", 100_000, "2026-01", worker=WORKER_B))
    close_month(books, "2026-01")
    close_month(books, "2026-02")  # A's pool (370,000) pays February without a booking in it
    january = list(csv.DictReader((tmp_path / "c1.csv").read_text().splitlines())) if write_contributions(
        books, "2026-01", tmp_path / "c1.csv") else []
    si = {row["national_id"]: (row["credited_months"], row["credited_months_to_date"])
          for row in january if row["scheme"] == "si"}
    assert CONTRIBUTIONS_LAYOUT == "ansinh-contributions/2"
    assert si == {WORKER_A: ("2026-01", "1"), WORKER_B: ("", "0")}
    assert {row["credited_months"] for row in january if row["scheme"] != "si"} == {""}
    write_contributions(books, "2026-02", tmp_path / "c2.csv")
    february = list(csv.DictReader((tmp_path / "c2.csv").read_text().splitlines()))
    assert [(row["national_id"], row["scheme"], row["total_vnd"], row["credited_months"]) for row in february] == [
        (WORKER_A, "si", "0", "2026-02")]
    # WORKER_A's province is 079, WORKER_B's 001
    assert credits_by_province(books, "2026-02") == [
        {"month": "2026-02", "province": "079", "workers_credited": 1, "months_credited": 1,
         "workers_with_credits": 1, "credited_months_to_date": 2}]
    assert credits_by_province(books, "2026-02", min_cell_workers=2) == []


# -- what the balance means (rules/pension.py) ------------------------------------------------

def test_the_statement_projects_the_worked_example_workers_own_pace_to_180_months_as_an_estimate(books):
    book_the_worked_example(books)
    for month in WORKED:
        close_month(books, month)
    meaning = statement(books, WORKER_A, "2026-05")["meaning"]
    assert meaning["schemes"] == {"si": {"sentence": "meaning_si"}, "oa": {"sentence": "meaning_oa"},
                                  "ui": {"sentence": "meaning_ui"}}
    assert (meaning["credited_months"], meaning["months_needed"], meaning["estimate"]) == (2, 180, True)
    projection = meaning["projection"]
    # pace (100,000 + 150,000 + 200,000 + 0 + 500,000) / 5 = 190,000 a month; 6 floors of 330,000 a year;
    # 178 × 330,000 − 290,000 pooled = 58,450,000 more: 308 months after May 2026
    assert (projection["pace_vnd"], projection["pace_months"], projection["credited_months_per_year"]) == \
        (190_000, 5, 6)
    assert (projection["months_to_go"], projection["reach_month"]) == (308, "2052-01")
    assert (projection["income_base_vnd"], projection["pension_vnd"]) == (1_500_000, 675_000)
    assert projection["estimate"] is True
    assert projection["assumptions"] == ["pace_continues", "todays_floor", "todays_law", "no_indexation"]


def test_months_without_si_after_the_first_count_as_zero_in_the_pace(books):
    book_the_worked_example(books)
    # July, two months after the last ride: 950,000 over the 7 months from January
    assert statement(books, WORKER_A, "2026-07")["meaning"]["projection"]["pace_vnd"] == 135_714
    # and a year later only the last 12 months count: none of them has si
    projection = statement(books, WORKER_A, "2027-06")["meaning"]["projection"]
    assert (projection["pace_vnd"], projection["pace_months"], projection["months_to_go"]) == (0, 12, None)


def test_a_worker_with_no_si_has_a_projection_of_pace_zero_and_no_date(books):
    projection = statement(books, WORKER_C, "2026-02")["meaning"]["projection"]
    assert (projection["pace_vnd"], projection["pace_months"], projection["months_to_go"],
            projection["reach_month"]) == (0, 0, None, None)

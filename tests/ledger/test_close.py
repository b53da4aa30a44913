"""Month close, household tiers and the state subsidy, on both stores (RULES.md §3, §5–§7, §9–§10).

Every expected figure is worked out by hand from RULES.md in the comment beside it:
shares are round_half_up(amount × r / 1,000,000) (§4), the subsidy is
round_half_up(min(max(0, own), cap) × tier_rate / 1,000,000) (§6).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ledger.books import Ledger
from ledger.close import CloseError, TierImportError, close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.reports import settlement, statement
from ledger.store import query
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event, numbered, refund


# -- helpers ------------------------------------------------------------------------------------------

def book(ledger, *items) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, numbered(list(items)))]


def holds(ledger) -> None:
    problems = [(check.name, check.problem) for check in verify(ledger) if check.problem]
    assert problems == []


def schemes(ledger, national_id, month):
    return statement(ledger, national_id, month)["schemes"]


def subsidy(ledger, national_id, month) -> dict[str, int]:
    return {name: line["subsidy"] for name, line in schemes(ledger, national_id, month).items()}


def tiers_file(tmp_path: Path, *rows: str, name: str = "tiers.csv") -> Path:
    path = tmp_path / name
    path.write_text("national_id,tier,valid_from\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def counts(ledger) -> tuple[int, ...]:
    with ledger.engine.connect() as conn:
        row = query(conn, "SELECT (SELECT count(*) FROM journal), (SELECT count(*) FROM posting), "
                          "(SELECT count(*) FROM block), (SELECT count(*) FROM month_close), "
                          "(SELECT count(*) FROM household_tier), "
                          "(SELECT coalesce(sum(subsidy_vnd), 0) FROM worker_month)")[0]
        conn.rollback()
    return tuple(int(value) for value in row)


def journal_months(ledger, event_id: str) -> tuple[int, int]:
    """(occurred_month, booking_month) of the entry booked for `event_id`."""
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT occurred_month, booking_month FROM journal WHERE event_id = ?", (event_id,))
        conn.rollback()
    assert len(rows) == 1
    return int(rows[0][0]), int(rows[0][1])


def month_label(start_year: int, start_month: int, offset: int) -> str:
    index = start_year * 12 + (start_month - 1) + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# -- the subsidy: cap, below the cap, rounding ---------------------------------------------------------

def test_a_poor_worker_withholding_400000_si_gets_99000_the_cap_not_120000(ledger, tmp_path):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01"))
    # ride 40,000,000: si.worker = 40,000,000 × 10,000 / 10^6 = 400,000; ui.worker = × 5,000 = 200,000
    assert book(ledger, event(amount=40_000_000)) == ["accepted"]
    close_month(ledger, "2026-02")
    # si: min(400,000, 330,000) × 30 % = 99,000;  ui: min(200,000, 53,100) × 30 % = 15,930
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 99_000, "oa": 0, "ui": 15_930}
    line = schemes(ledger, WORKER_A, "2026-02")["si"]
    assert (line["worker"], line["subsidy"], line["total"]) == (400_000, 99_000, 499_000)
    assert settlement(ledger, "2026-02")["subsidy"] == {"si": 99_000, "oa": 0, "ui": 15_930}
    holds(ledger)


def test_a_worker_in_no_household_with_12345_withheld_gets_1235(ledger):
    # ride 1,234,500: si.worker = 12,345; ui.worker = 6,172.5 → 6,173; oa.platform 6,172.5 → 6,173
    assert book(ledger, event(amount=1_234_500)) == ["accepted"]
    close_month(ledger, "2026-02")
    # 'other' 10 %: si 12,345 × 10 % = 1,234.5 → 1,235;  ui 6,173 × 10 % = 617.3 → 617
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 1_235, "oa": 0, "ui": 617}
    assert schemes(ledger, WORKER_A, "2026-02")["si"]["worker"] == 12_345
    holds(ledger)


def test_own_contributions_exactly_at_and_one_dong_over_the_cap_get_the_same_subsidy(ledger):
    # ride 33,000,000 → si.worker exactly 330,000; ride 33,000,100 → si.worker 330,001
    book(ledger, event("at"), event("over", worker_id=WORKER_B))
    book(ledger, event("at-2", amount=32_900_000), event("over-2", worker_id=WORKER_B, amount=32_900_100))
    # A: 1,000 + 329,000 = 330,000;  B: 1,000 + 329,001 = 330,001  → both base 330,000, 'other' 10 % = 33,000
    assert schemes(ledger, WORKER_A, "2026-02")["si"]["worker"] == 330_000
    assert schemes(ledger, WORKER_B, "2026-02")["si"]["worker"] == 330_001
    close_month(ledger, "2026-02")
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 33_000
    assert subsidy(ledger, WORKER_B, "2026-02")["si"] == 33_000
    holds(ledger)


def test_the_subsidy_is_zero_until_the_month_closes(ledger):
    book(ledger, event())
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 0, "oa": 0, "ui": 0}
    assert statement(ledger, WORKER_A, "2026-02")["closed"] is False
    assert settlement(ledger, "2026-02")["subsidy"] == {"si": 0, "oa": 0, "ui": 0}
    close_month(ledger, "2026-02")
    # ride 100,000: si 1,000 × 10 % = 100; ui 500 × 10 % = 50
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 100, "oa": 0, "ui": 50}
    assert statement(ledger, WORKER_A, "2026-02")["closed"] is True


# -- RULES.md §10, end to end ------------------------------------------------------------------------

def test_the_rules_worked_example_gives_the_statement_and_settlement_of_section_10(ledger, tmp_path):
    assert WORKER_A == "079203001234"
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},near_poor,2026-01"))
    outcomes = book(
        ledger,
        # 2026-01-31T18:30Z = 01:30 on 1 Feb in Vietnam → February
        event("g-1", amount=87_500, occurred_at="2026-01-31T18:30:00Z"),
        event("s-1", platform="shopee", kind="order", amount=1_249_000, occurred_at="2026-02-03T10:00:00+07:00"),
        refund("s-1r", "s-1", 400_000, platform="shopee", kind="order", occurred_at="2026-02-05T10:00:00+07:00"),
        refund("s-1r2", "s-1", 849_000, platform="shopee", kind="order", occurred_at="2026-02-06T10:00:00+07:00"),
    )
    assert outcomes == ["accepted"] * 4
    assert journal_months(ledger, "g-1") == (202602, 202602)
    assert schemes(ledger, WORKER_A, "2026-01")["si"]["total"] == 0
    close_month(ledger, "2026-02")

    report = statement(ledger, WORKER_A, "2026-02")
    # si: 875 (g-1) + 7,494 − 2,400 − 5,094 (s-1 undone) = 875; subsidy 875 × 25 % = 218.75 → 219
    # oa: 437.5 → 438 (g-1) + 2,498 − 800 − 1,698 = 438, all platform-paid, not subsidised
    # ui: 437.5 → 438 (g-1) + 2,498 − 800 − 1,698 = 438; subsidy 438 × 25 % = 109.5 → 110
    assert report["closed"] is True
    assert report["schemes"] == {
        "si": {"worker": 875, "platform": 0, "subsidy": 219, "total": 1_094},
        "oa": {"worker": 0, "platform": 438, "subsidy": 0, "total": 438},
        "ui": {"worker": 438, "platform": 0, "subsidy": 110, "total": 548},
    }
    assert report["to_date"] == {"si": 1_094, "oa": 438, "ui": 548}

    report = settlement(ledger, "2026-02")
    assert report["closed"] is True
    # grab owes g-1's shares; shopee's postings net to zero and it is still listed; the state owes 219 / 110
    assert report["platforms"] == {"grab": {"si": 875, "oa": 438, "ui": 438},
                                   "shopee": {"si": 0, "oa": 0, "ui": 0}}
    assert report["subsidy"] == {"si": 219, "oa": 0, "ui": 110}
    holds(ledger)


# -- negative months, tiers over time --------------------------------------------------------------

def test_a_month_whose_refunds_exceed_its_contributions_gets_no_subsidy(ledger):
    book(ledger, event("jan", amount=1_000_000, occurred_at="2026-01-20T10:00:00+07:00"))
    close_month(ledger, "2026-01")
    # January: si 10,000 × 10 % = 1,000; ui 5,000 × 10 % = 500
    assert subsidy(ledger, WORKER_A, "2026-01") == {"si": 1_000, "oa": 0, "ui": 500}
    # February: a ride of 100,000 (si +1,000, ui +500) and a full refund of January's ride (si −10,000, ui −5,000)
    book(ledger, event("feb", amount=100_000),
         refund("jan-r", "jan", 1_000_000, occurred_at="2026-02-11T10:00:00+07:00"))
    line = schemes(ledger, WORKER_A, "2026-02")
    assert (line["si"]["worker"], line["ui"]["worker"]) == (-9_000, -4_500)
    close_month(ledger, "2026-02")
    # own = max(0, −9,000) = 0 → subsidy 0; nothing is clawed back from January
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 0, "oa": 0, "ui": 0}
    assert subsidy(ledger, WORKER_A, "2026-01") == {"si": 1_000, "oa": 0, "ui": 500}
    assert settlement(ledger, "2026-02")["subsidy"] == {"si": 0, "oa": 0, "ui": 0}
    assert settlement(ledger, "2026-02")["platforms"]["grab"] == {"si": -9_000, "oa": -4_500, "ui": -4_500}
    holds(ledger)


def test_a_tier_change_mid_year_applies_from_its_valid_from_and_keeps_the_history(ledger, tmp_path):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01", name="first.csv"))
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},near_poor,2026-03", name="second.csv"))
    for day in ("2026-01-10", "2026-02-10", "2026-03-10", "2026-04-10"):
        book(ledger, event(f"e-{day}", occurred_at=f"{day}T09:00:00+07:00"))
    for month in ("2026-01", "2026-02", "2026-03", "2026-04"):
        close_month(ledger, month)
    # si 1,000 per month: poor 30 % = 300 (Jan, Feb), near_poor 25 % = 250 (Mar, Apr)
    # ui 500 per month: poor 150, near_poor 125
    assert [subsidy(ledger, WORKER_A, m)["si"] for m in ("2026-01", "2026-02", "2026-03", "2026-04")] == [
        300, 300, 250, 250]
    assert [subsidy(ledger, WORKER_A, m)["ui"] for m in ("2026-01", "2026-02", "2026-03", "2026-04")] == [
        150, 150, 125, 125]
    assert counts(ledger)[4] == 2  # both statuses are kept, neither overwritten
    holds(ledger)


def test_the_latest_valid_from_wins_even_when_an_earlier_status_is_imported_after_it(ledger, tmp_path):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},near_poor,2026-03", name="first.csv"))
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01", name="second.csv"))
    book(ledger, event("feb"), event("mar", occurred_at="2026-03-10T09:00:00+07:00"))
    close_month(ledger, "2026-02")
    close_month(ledger, "2026-03")
    # February: only 'poor' (from 2026-01) is in force → 300; March: near_poor (2026-03) is the latest → 250
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 300
    assert subsidy(ledger, WORKER_A, "2026-03")["si"] == 250
    holds(ledger)


def test_a_status_valid_from_a_later_month_does_not_reach_back(ledger, tmp_path):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-03"))
    book(ledger, event())
    close_month(ledger, "2026-02")
    # February is before 2026-03: the worker is 'other' → 1,000 × 10 % = 100
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 100


def test_a_status_imported_after_a_close_does_not_change_the_closed_month_and_verify_still_holds(ledger, tmp_path):
    book(ledger, event())
    close_month(ledger, "2026-02")
    # February closed as 'other': 1,000 × 10 % = 100
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 100
    # a retroactive status arrives later: February is frozen, March uses it
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-02"))
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 100
    holds(ledger)  # the books are right: verify must not re-judge a closed month by statuses recorded after it
    book(ledger, event("mar", occurred_at="2026-03-10T09:00:00+07:00"))
    close_month(ledger, "2026-03")
    assert subsidy(ledger, WORKER_A, "2026-03")["si"] == 300  # poor: 1,000 × 30 %


def test_each_close_uses_the_rules_version_in_force_on_the_first_day_of_its_month(database_url, tmp_path):
    import yaml

    from tests.rules.test_packs import valid_version

    second = {**valid_version(), "effective_from": "2026-03-15",
              "tier_rate_ppm": {"poor": 300_000, "near_poor": 250_000, "other": 200_000}}
    second["rates_ppm"]["ride"]["si"]["worker"] = 20_000
    path = tmp_path / "two-versions.yaml"
    path.write_text(yaml.safe_dump_all([{"pack": "two-versions"}, valid_version(), second]), encoding="utf-8")
    books = Ledger.open(database_url, pack=str(path), clock=FixedClock())
    try:
        book(books, event("early", occurred_at="2026-03-14T23:59:00+07:00"),   # version 1: si 1 %  → 1,000
             event("late", occurred_at="2026-03-14T17:00:00Z"),                  # 00:00 on 15 Mar VN: si 2 % → 2,000
             event("apr", occurred_at="2026-04-02T09:00:00+07:00"))              # version 2 → 2,000
        assert schemes(books, WORKER_A, "2026-03")["si"]["worker"] == 3_000
        close_month(books, "2026-03")
        close_month(books, "2026-04")
        # March closes under the version in force on 1 March ('other' 10 %): 3,000 → 300
        # April under the one in force on 1 April ('other' 20 %): 2,000 → 400
        assert subsidy(books, WORKER_A, "2026-03")["si"] == 300
        assert subsidy(books, WORKER_A, "2026-04")["si"] == 400
        holds(books)
    finally:
        books.close()


# -- late bookings after a close ---------------------------------------------------------------------

def test_a_late_event_is_booked_in_the_first_open_month_and_keeps_its_occurred_month(ledger):
    book(ledger, event("jan", occurred_at="2026-01-20T10:00:00+07:00"))
    close_month(ledger, "2026-01")
    close_month(ledger, "2026-02")
    assert book(ledger, event("late", occurred_at="2026-01-25T10:00:00+07:00")) == ["accepted"]
    # occurred in January, booked in March: the first month after the last closed one (February)
    assert journal_months(ledger, "late") == (202601, 202603)
    assert schemes(ledger, WORKER_A, "2026-01")["si"] == {"worker": 1_000, "platform": 0, "subsidy": 100,
                                                         "total": 1_100}
    assert schemes(ledger, WORKER_A, "2026-02")["si"]["total"] == 0
    assert schemes(ledger, WORKER_A, "2026-03")["si"]["worker"] == 1_000
    assert settlement(ledger, "2026-01")["platforms"]["grab"] == {"si": 1_000, "oa": 500, "ui": 500}
    assert settlement(ledger, "2026-03")["platforms"]["grab"] == {"si": 1_000, "oa": 500, "ui": 500}
    close_month(ledger, "2026-03")
    # the late ride earns March's subsidy: 1,000 × 10 % = 100
    assert subsidy(ledger, WORKER_A, "2026-03")["si"] == 100
    assert statement(ledger, WORKER_A, "2026-03")["to_date"]["si"] == 2 * 1_100
    holds(ledger)


def test_a_refund_of_a_closed_months_event_is_booked_in_the_open_month_and_the_closed_month_stays(ledger):
    book(ledger, event("s-1", platform="shopee", kind="order", amount=1_249_000,
                       occurred_at="2026-01-03T10:00:00+07:00"))
    close_month(ledger, "2026-01")
    before = settlement(ledger, "2026-01")
    assert book(ledger, refund("s-1r", "s-1", 400_000, platform="shopee", kind="order",
                               occurred_at="2026-01-20T10:00:00+07:00")) == ["accepted"]
    assert journal_months(ledger, "s-1r") == (202601, 202602)
    # reversal: si round(7,494 × 400,000 / 1,249,000) = round(2,400.0…) = 2,400; oa/ui round(2,498 × …) = 800
    assert settlement(ledger, "2026-02")["platforms"]["shopee"] == {"si": -2_400, "oa": -800, "ui": -800}
    assert settlement(ledger, "2026-01") == before
    assert schemes(ledger, WORKER_A, "2026-01")["si"]["worker"] == 7_494
    assert schemes(ledger, WORKER_A, "2026-02")["si"]["worker"] == -2_400
    holds(ledger)


# -- one person, many platforms -------------------------------------------------------------------------

def test_a_worker_on_three_platforms_has_one_capped_subsidy(ledger, tmp_path):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01"))
    # 20,000,000 each: si.worker 200,000 and ui.worker 100,000 per platform (order: 6,000 / 2,000 ppm)
    book(ledger, event("g", amount=20_000_000), event("b", platform="be", kind="delivery", amount=20_000_000),
         event("s", platform="shopee", kind="order", amount=20_000_000))
    line = schemes(ledger, WORKER_A, "2026-02")
    # si: 200,000 + 200,000 + 120,000 = 520,000; ui: 100,000 + 100,000 + 40,000 = 240,000
    assert (line["si"]["worker"], line["ui"]["worker"]) == (520_000, 240_000)
    close_month(ledger, "2026-02")
    # one cap for the person, not one per platform: si 330,000 × 30 % = 99,000; ui 53,100 × 30 % = 15,930
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 99_000, "oa": 0, "ui": 15_930}
    report = settlement(ledger, "2026-02")
    assert report["subsidy"] == {"si": 99_000, "oa": 0, "ui": 15_930}
    assert sorted(report["platforms"]) == ["be", "grab", "shopee"]
    with ledger.engine.connect() as conn:
        assert query(conn, "SELECT count(*) FROM worker")[0][0] == 1
        conn.rollback()
    holds(ledger)


def test_workers_are_subsidised_independently(ledger, tmp_path):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_B},poor,2026-01", f"{WORKER_C},near_poor,2026-02"))
    book(ledger, event("a"), event("b", worker_id=WORKER_B), event("c", worker_id=WORKER_C))
    result = close_month(ledger, "2026-02")
    # si 1,000 each: other 100, poor 300, near_poor 250; ui 500 each: 50, 150, 125
    assert [subsidy(ledger, w, "2026-02")["si"] for w in (WORKER_A, WORKER_B, WORKER_C)] == [100, 300, 250]
    assert [subsidy(ledger, w, "2026-02")["ui"] for w in (WORKER_A, WORKER_B, WORKER_C)] == [50, 150, 125]
    assert result.workers_subsidised == 3
    assert result.subsidy_vnd == {"si": 650, "oa": 0, "ui": 325}
    assert settlement(ledger, "2026-02")["subsidy"] == {"si": 650, "oa": 0, "ui": 325}
    holds(ledger)


# -- vn-decree-159: at most 120 subsidised months --------------------------------------------------------

def test_the_decree_159_pack_stops_subsidising_after_120_paid_months(database_url):
    books = Ledger.open(database_url, pack="vn-decree-159", clock=FixedClock())
    try:
        start = (2025, 7)  # the decree is in force from 2025-07-01
        # one ride of 100,000 a month (si 1,000 → 'other' 20 % = 200), except:
        #   month 5: no event (no subsidy, does not count)
        #   month 6: a ride of 100 (si round(1.0) = 1 → round(0.2) = 0: no subsidy paid, does not count)
        # months 0–4 and 7–121 are the 120 paid months; month 122 would be the 121st and gets nothing.
        items = []
        for offset in range(123):
            if offset == 5:
                continue
            label = month_label(*start, offset)
            items.append(event(f"m-{offset}", amount=100 if offset == 6 else 100_000,
                               occurred_at=f"{label}-15T09:00:00+07:00"))
        assert set(book(books, *items)) == {"accepted"}
        for offset in range(123):  # how long closes take is measured in benchmarks/close.py, not here
            close_month(books, month_label(*start, offset))

        first = subsidy(books, WORKER_A, month_label(*start, 0))
        assert first == {"si": 200, "oa": 0, "ui": 0}  # si only: ui is not subsidised under the decree
        assert subsidy(books, WORKER_A, month_label(*start, 5))["si"] == 0
        assert subsidy(books, WORKER_A, month_label(*start, 6))["si"] == 0
        assert subsidy(books, WORKER_A, month_label(*start, 121))["si"] == 200   # the 120th paid month
        last = statement(books, WORKER_A, month_label(*start, 122))
        assert last["schemes"]["si"] == {"worker": 1_000, "platform": 0, "subsidy": 0, "total": 1_000}
        # to date: 120 × 1,000 + 1 (month 6) + 1,000 (month 122) withheld, 120 × 200 subsidy
        assert last["to_date"]["si"] == 121 * 1_000 + 1 + 120 * 200
        with books.engine.connect() as conn:
            paid = query(conn, "SELECT count(DISTINCT month) FROM worker_month WHERE platform_id = 0 "
                               "AND subsidy_vnd > 0")[0][0]
            conn.rollback()
        assert paid == 120
        holds(books)
    finally:
        books.close()


# -- close order ------------------------------------------------------------------------------------

def test_closing_a_month_twice_is_refused_and_changes_nothing(ledger):
    book(ledger, event())
    close_month(ledger, "2026-02")
    before = counts(ledger)
    with pytest.raises(CloseError, match="already closed"):
        close_month(ledger, "2026-02")
    assert counts(ledger) == before
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 100
    holds(ledger)


def test_closes_out_of_calendar_order_are_refused(ledger):
    book(ledger, event("jan", occurred_at="2026-01-10T09:00:00+07:00"), event("feb"))
    close_month(ledger, "2026-01")  # the first close may be of any month
    before = counts(ledger)
    with pytest.raises(CloseError, match="2026-02"):  # skipping February names the month to close first
        close_month(ledger, "2026-03")
    with pytest.raises(CloseError):
        close_month(ledger, "2025-12")  # before the last closed month
    assert counts(ledger) == before
    close_month(ledger, "2026-02")
    close_month(ledger, "2026-03")  # an empty month closes fine, in order
    with pytest.raises(CloseError):
        close_month(ledger, "2026-05")
    holds(ledger)


def test_the_first_close_may_be_of_any_month_but_not_before_the_rules(ledger):
    with pytest.raises(CloseError, match="2026-01-01"):
        close_month(ledger, "2025-12")  # vn-pilot is in force from 2026-01-01
    assert counts(ledger)[3] == 0
    close_month(ledger, "2026-05")
    with pytest.raises(CloseError):
        close_month(ledger, "2026-04")


def test_nothing_is_ever_booked_in_a_closed_month_again(ledger):
    book(ledger, event())
    close_month(ledger, "2026-02")
    frozen = statement(ledger, WORKER_A, "2026-02")
    book(ledger, event("late"), refund("r", "e-1", 100_000, occurred_at="2026-02-11T09:00:00+07:00"))
    assert statement(ledger, WORKER_A, "2026-02")["schemes"] == frozen["schemes"]
    # both landed in March: +1,000 − 1,000 si
    assert schemes(ledger, WORKER_A, "2026-03")["si"]["worker"] == 0
    assert journal_months(ledger, "late") == (202602, 202603)
    holds(ledger)


# -- tiers import ---------------------------------------------------------------------------------

def test_a_tiers_file_with_a_bad_row_applies_nothing_and_names_every_bad_line(ledger, tmp_path):
    path = tiers_file(tmp_path,
                      f"{WORKER_A},poor,2026-01",          # line 2: fine
                      f"{WORKER_B},millionaire,2026-01",   # line 3: unknown tier
                      f"{WORKER_C},near_poor,2026-13",     # line 4: bad month
                      f"{WORKER_C},near_poor,2026-02")     # line 5: fine
    with pytest.raises(TierImportError) as caught:
        import_tiers(ledger, path)
    errors = caught.value.errors
    assert len(errors) == 2
    assert errors[0].startswith("line 3") and "millionaire" in errors[0]
    assert errors[1].startswith("line 4")
    assert counts(ledger)[4] == 0
    book(ledger, event())
    close_month(ledger, "2026-02")
    assert subsidy(ledger, WORKER_A, "2026-02")["si"] == 100  # still 'other': line 2 was not applied


def test_a_tier_of_another_pack_is_unknown_to_vn_pilot(ledger, tmp_path):
    # ethnic_minority exists in vn-decree-159, not in vn-pilot
    with pytest.raises(TierImportError) as caught:
        import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},ethnic_minority,2026-01"))
    assert caught.value.errors[0].startswith("line 2")
    assert "ethnic_minority" in caught.value.errors[0]
    assert counts(ledger)[4] == 0


@pytest.mark.parametrize("bad_id", ["999203001234",   # no such province
                                    "07920300123",    # 11 digits
                                    "0792030012345",  # 13 digits
                                    "07920300123x"])  # not all digits
def test_a_bad_national_id_is_refused_without_echoing_it(ledger, tmp_path, bad_id):
    with pytest.raises(TierImportError) as caught:
        import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01", f"{bad_id},poor,2026-01"))
    message = str(caught.value)
    assert caught.value.errors[0].startswith("line 3")
    assert "national_id" in message
    assert bad_id not in message and bad_id[:11] not in message
    assert counts(ledger)[4] == 0


def test_a_tiers_file_with_the_wrong_header_is_refused_at_line_1(ledger, tmp_path):
    path = tmp_path / "tiers.csv"
    path.write_text(f"id,status,from\n{WORKER_A},poor,2026-01\n", encoding="utf-8")
    with pytest.raises(TierImportError) as caught:
        import_tiers(ledger, path)
    assert caught.value.errors[0].startswith("line 1")
    assert counts(ledger)[4] == 0


def test_two_different_tiers_for_one_worker_and_month_in_one_file_are_refused(ledger, tmp_path):
    with pytest.raises(TierImportError) as caught:
        import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01", f"{WORKER_A},near_poor,2026-01"))
    assert caught.value.errors[0].startswith("line 3")
    assert counts(ledger)[4] == 0


# -- a crash during close ---------------------------------------------------------------------------

CLOSE_STEPS = ["subsidies computed", "entries built", "half the workers written",
               "bills, claim and late interest recorded", "months credited", "close recorded"]


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("crash_at", CLOSE_STEPS)
def test_a_crash_during_close_leaves_the_month_open_and_the_retry_gives_the_exact_figures(ledger, tmp_path,
                                                                                            crash_at):
    import_tiers(ledger, tiers_file(tmp_path, f"{WORKER_A},poor,2026-01", f"{WORKER_B},near_poor,2026-01"))
    book(ledger, event("a", amount=40_000_000), event("b", worker_id=WORKER_B),
         event("c", worker_id=WORKER_C, amount=1_234_500))
    before = counts(ledger)
    checks_before = verify(ledger)
    seen: list[str] = []

    def crash(step: str) -> None:
        seen.append(step)
        if step == crash_at:
            raise Crash(step)

    with pytest.raises(Crash):
        close_month(ledger, "2026-02", on_step=crash)
    assert seen[-1] == crash_at
    assert counts(ledger) == before              # no entry, posting, block, close row or subsidy left behind
    assert verify(ledger) == checks_before
    assert statement(ledger, WORKER_A, "2026-02")["closed"] is False
    assert settlement(ledger, "2026-02")["subsidy"] == {"si": 0, "oa": 0, "ui": 0}

    steps: list[str] = []
    result = close_month(ledger, "2026-02", on_step=steps.append)
    assert steps == CLOSE_STEPS
    # A poor, si 400,000 → 99,000, ui 200,000 → 53,100 × 30 % = 15,930
    # B near_poor, si 1,000 → 250, ui 500 → 125
    # C other, si 12,345 → 1,235, ui 6,173 → 617
    assert subsidy(ledger, WORKER_A, "2026-02") == {"si": 99_000, "oa": 0, "ui": 15_930}
    assert subsidy(ledger, WORKER_B, "2026-02") == {"si": 250, "oa": 0, "ui": 125}
    assert subsidy(ledger, WORKER_C, "2026-02") == {"si": 1_235, "oa": 0, "ui": 617}
    assert result.subsidy_vnd == {"si": 99_000 + 250 + 1_235, "oa": 0, "ui": 15_930 + 125 + 617}
    assert settlement(ledger, "2026-02")["subsidy"] == result.subsidy_vnd
    assert statement(ledger, WORKER_A, "2026-02")["closed"] is True
    holds(ledger)


# -- the close's writer (issue 15: subsidy entries as columns) -------------------------------------------

def test_subsidy_entries_written_as_columns_are_the_rows_hashes_and_aggregates_write_block_writes(ledger):
    """`write_subsidy_block` (what the close calls) against `write_block` of the same entries as tuples,
    in two transactions rolled back: one worker paid in si only, one in ui only, one in both (legs
    by scheme name), after a claim entry; every journal, posting, block and worker_month row equal."""
    import numpy as np

    from ledger.accounts import NO_PARTY, PARTY_CODE, AccountKind, EntryType
    from ledger.postings import write_block, write_subsidy_block
    from ledger.store import lock_chain_head

    book(ledger, event("e-1", worker_id=WORKER_A, amount=1_000_000, occurred_at="2026-01-05T09:00:00+07:00"))
    month, version_id, clearing, worker, state = 202601, 1, int(AccountKind.clearing), int(AccountKind.worker), \
        PARTY_CODE["state"]
    workers, codes = [11, 12, 13], [1, 3]  # si, ui: the order of their names
    amounts = [[1_000, 0], [0, 20], [300, 4]]
    claim = (EntryType.subsidy_claim, None, None, None, None, None, 1_324, None, month, month, version_id, None,
             ((int(AccountKind.state), 0, 1, state, 1_300), (clearing, month, 1, NO_PARTY, -1_300),
              (int(AccountKind.state), 0, 3, state, 24), (clearing, month, 3, NO_PARTY, -24)))
    entries = [claim]
    for worker_id, paid in zip(workers, amounts):
        legs = [(code, amount) for code, amount in zip(codes, paid) if amount]
        entries.append((EntryType.subsidy, None, None, None, worker_id, None, sum(paid), None, month, month,
                        version_id, None, (*[(clearing, month, code, NO_PARTY, amount) for code, amount in legs],
                                           *[(worker, worker_id, code, state, -amount) for code, amount in legs])))
    tables = ("journal", "posting", "block", "worker_month", "ledger_state")

    def written(write) -> dict:
        with ledger.engine.connect() as conn:
            transaction = conn.begin()
            head = lock_chain_head(conn)
            block = write(conn, head)
            rows = {table: sorted(map(tuple, query(conn, f"SELECT * FROM {table}")), key=repr) for table in tables}
            transaction.rollback()
        return {"written": block, **rows}

    by_tuples = written(lambda conn, head: write_block(conn, entries, recorded_at="2026-02-01T00:00:00.000000Z",
                                                        head=head))
    by_columns = written(lambda conn, head: write_subsidy_block(
        conn, [claim], np.array(workers), np.array(amounts), codes, month, version_id,
        recorded_at="2026-02-01T00:00:00.000000Z", head=head, worker_keys_present=set()))
    assert by_columns == by_tuples
    assert len(by_tuples["posting"]) == 4 + 2 + 2 + 4 and by_tuples["written"].last_entry_id - \
        by_tuples["written"].first_entry_id == 3


def test_a_close_adds_the_subsidy_to_the_row_of_a_workers_topup_and_appends_a_row_for_the_others(ledger):
    """The close appends a worker_month row per subsidy (COPY) unless the month's totals show that
    (worker, month, scheme, platform 0) has one already (a top-up), which it adds to instead."""
    from datetime import date

    from ledger.money import PaymentIn, record_payments

    ledger.clock = FixedClock()
    book(ledger, event("t-1", worker_id=WORKER_A, amount=10_000_000, occurred_at="2026-01-10T09:00:00+07:00"),
         event("t-2", worker_id=WORKER_B, amount=10_000_000, occurred_at="2026-01-10T09:00:00+07:00"))
    reference = statement(ledger, WORKER_A, "2026-01")["topup_reference"]
    record_payments(ledger, [PaymentIn(date(2026, 1, 20), 50_000, "worker", f"nop BHXH {reference}", "VCB-1")])
    close_month(ledger, "2026-01")
    with ledger.engine.connect() as conn:
        a, b = ledger.worker_id(conn, WORKER_A), ledger.worker_id(conn, WORKER_B)
        rows = query(conn, "SELECT m.worker_id, m.month, m.scheme, m.worker_vnd, m.subsidy_vnd FROM worker_month m "
                           "WHERE m.month = 202601 AND m.platform_id = 0 ORDER BY m.worker_id, m.scheme")
        conn.rollback()
    # A: own si 100,000 withheld + 50,000 topped up, × 10 % = 15,000 on the top-up's row; B: 10,000
    # on a new row; ui (0.5 % withheld = 50,000 each, under the 53,100 cap) × 10 % = 5,000 each on new rows
    assert [(row[0], row[2], int(row[3]), int(row[4])) for row in rows] == sorted([
        (a, 1, 50_000, 15_000), (a, 3, 0, 5_000), (b, 1, 0, 10_000), (b, 3, 0, 5_000)])
    holds(ledger)

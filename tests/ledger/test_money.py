"""The money side of settlement, worked by hand (docs/payments.md), on both stores.

The books used below: worker A's rides on grab. A 10,000,000 VND ride owes, under
vn-pilot@2026-01-01, si 1 % = 100,000 + oa 0.5 % = 50,000 + ui 0.5 % = 50,000 =
200,000 VND — the bill. Bills of January are due on 2026-02-15 (payment_due_day 15).
Late interest: 9,000 ppm a month, spread over the month's calendar days:
round_half_up(Σ unpaid-per-overdue-day × 9,000 / (1,000,000 × days in the month)).
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.money import (PaymentError, PaymentIn, account_statement, bill_reference, bills_of_month,
                          claim_reference, read_payments_csv, record_payments, reference_in)
from ledger.reports import settlement
from ledger.store import query
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.ledger.factories import WORKER_A, WORKER_B, event, numbered

BILL_VND = 200_000
FEBRUARY = bill_reference(202602, 1)  # grab's bill of February


def holds(ledger) -> None:
    assert [(check.name, check.problem) for check in verify(ledger) if check.problem] == []


def ride(event_id: str, month: str, amount: int = 10_000_000, **fields) -> dict:
    return event(event_id, amount=amount, occurred_at=f"{month}-10T09:00:00+07:00", **fields)


def on(ledger, day: date) -> None:
    """Move the books' clock to noon of `day`, Vietnam time."""
    ledger.clock.moment = datetime(day.year, day.month, day.day, 5, tzinfo=timezone.utc)


def close(ledger, month: str, day: date) -> None:
    on(ledger, day)
    close_month(ledger, month)


def pay(ledger, day: date, amount: int, bank_ref: str, reference: str = "", payer: str = "grab"):
    on(ledger, max(day, ledger.clock().date()))
    return record_payments(ledger, [PaymentIn(day, amount, payer, reference, bank_ref)])[0]


@pytest.fixture
def books(ledger):
    """January billed: one grab bill of 200,000 VND, due 2026-02-15; the clock on 2026-02-03."""
    ledger.clock = FixedClock()
    assert [o.outcome for o in ingest_batch(ledger, numbered([ride("j-1", "2026-01")]))] == ["accepted"]
    close(ledger, "2026-01", date(2026, 2, 3))
    return ledger


def grab_bill(ledger, month: str = "2026-01") -> dict:
    return next(bill for bill in bills_of_month(ledger, month) if bill["payer"] == "grab")


def interest_lines(ledger, payer: str = "grab") -> list[tuple[str, int]]:
    return [(line["month"], line["debit_vnd"]) for line in account_statement(ledger, payer)["lines"]
            if line["kind"] == "late interest"]


# -- bills and references --------------------------------------------------------------------------

def test_a_close_bills_each_platform_its_settlement_total_due_on_the_fifteenth_of_the_next_month(books):
    bill = grab_bill(books)
    dues = settlement(books, "2026-01")["platforms"]["grab"]
    assert bill["amount_vnd"] == sum(dues.values()) == BILL_VND
    assert (bill["due_on"], bill["issued_on"], bill["outstanding_vnd"]) == ("2026-02-15", "2026-02-03", BILL_VND)
    assert bill["reference"] == bill_reference(202601, 1) == "AS202601P000105"
    holds(books)


def test_a_reference_with_a_mistyped_digit_is_not_taken_for_a_bill():
    assert reference_in("thanh toan as-202601-p0001-05") == "AS202601P000105"
    assert reference_in("thanh toan AS202601P000106") is None
    assert reference_in("AS202601P000205") is None
    assert claim_reference(202601) == "AS202601NS02"


# -- the worked examples of the issue ----------------------------------------------------------------

def test_paid_in_full_on_time_leaves_nothing_owed_and_no_interest(books):
    outcome = pay(books, date(2026, 2, 15), BILL_VND, "VCB-1", f"CK {grab_bill(books)['reference']}")
    assert (outcome.status, outcome.matched_reference, outcome.settled, outcome.credit_vnd) == \
        ("booked", "AS202601P000105", {"AS202601P000105": BILL_VND}, 0)
    close(books, "2026-02", date(2026, 3, 2))
    account = account_statement(books, "grab")
    assert (account["balance_vnd"], account["arrears_vnd"], account["interest_vnd"]) == (0, 0, 0)
    assert interest_lines(books) == []
    holds(books)


def test_paid_late_by_ten_days_is_charged_exact_interest_at_the_next_close(books):
    pay(books, date(2026, 2, 25), BILL_VND, "VCB-1", grab_bill(books)["reference"])
    close(books, "2026-02", date(2026, 3, 2))
    # Unpaid on 16…25 February (10 days): 10 × 200,000 × 9,000 / (1,000,000 × 28) = 642.86 → 643.
    assert interest_lines(books) == [("2026-02", 643)]
    account = account_statement(books, "grab")
    assert (account["bills_vnd"], account["interest_vnd"], account["payments_vnd"], account["balance_vnd"]) == \
        (BILL_VND, 643, BILL_VND, 643)
    with books.engine.connect() as conn:
        legs = query(conn, "SELECT p.account_kind, p.owner_id, p.amount_vnd FROM posting p JOIN journal j "
                           "ON j.id = p.entry_id WHERE j.entry_type = 6 ORDER BY p.leg")
    assert [tuple(leg) for leg in legs] == [(2, 1, 643), (6, 1, -643)]  # receivable of grab, interest income
    holds(books)


def test_unpaid_dues_accrue_interest_every_month_on_what_is_unpaid_and_never_on_interest(books):
    close(books, "2026-02", date(2026, 3, 2))
    close(books, "2026-03", date(2026, 4, 2))
    # February 16–28: 13 × 200,000 × 9,000 / 28,000,000 = 835.71 → 836; March (31 days): 200,000 × 9,000 /
    # 1,000,000 = 1,800 (the whole monthly rate), not on the 836 of interest.
    assert interest_lines(books) == [("2026-02", 836), ("2026-03", 1_800)]
    account = account_statement(books, "grab")
    assert account["balance_vnd"] == BILL_VND + 836 + 1_800
    assert account["arrears_vnd"] == BILL_VND + 836  # March's interest was charged today: not yet overdue
    holds(books)


def test_paid_twice_with_the_same_bank_reference_is_booked_once(books):
    first = pay(books, date(2026, 2, 10), BILL_VND, "VCB-1")
    again = pay(books, date(2026, 2, 10), BILL_VND, "VCB-1")
    assert (first.status, again.status) == ("booked", "duplicate")
    account = account_statement(books, "grab")
    assert (account["payments_vnd"], account["balance_vnd"], account["credit_vnd"]) == (BILL_VND, 0, 0)
    with books.engine.connect() as conn:
        assert query(conn, "SELECT count(*), sum(amount_vnd) FROM journal WHERE entry_type = 5")[0] == (1, BILL_VND)
    holds(books)


def test_the_same_bank_reference_with_another_amount_is_refused_and_books_nothing(books):
    pay(books, date(2026, 2, 10), BILL_VND, "VCB-1")
    with pytest.raises(PaymentError, match="VCB-1 was booked before with another payer, amount or date"):
        record_payments(books, [PaymentIn(date(2026, 2, 11), 5_000, "grab", "", "VCB-2"),
                                PaymentIn(date(2026, 2, 10), 1_000, "grab", "", "VCB-1")])
    assert account_statement(books, "grab")["payments_vnd"] == BILL_VND  # VCB-2 was not booked either
    holds(books)


def test_a_dry_run_returns_the_outcomes_booking_gives_and_writes_nothing(books):
    """The insurer's import page previews with `dry_run`: the same checks and outcomes, no entry."""
    on(books, date(2026, 2, 20))
    batch = [PaymentIn(date(2026, 2, 10), 150_000, "grab", f"CK {bill_reference(202601, 1)}", "VCB-1"),
             PaymentIn(date(2026, 2, 11), 80_000, "grab", "no memo", "VCB-2")]
    with books.engine.connect() as conn:
        before = query(conn, "SELECT count(*) FROM journal")[0][0]
    preview = record_payments(books, batch, dry_run=True)
    with books.engine.connect() as conn:
        assert query(conn, "SELECT count(*) FROM journal")[0][0] == before
    assert account_statement(books, "grab")["payments_vnd"] == 0
    booked = record_payments(books, batch)
    assert [o.as_dict() for o in preview] == [o.as_dict() for o in booked]
    assert [(o.settled, o.credit_vnd) for o in booked] == [({bill_reference(202601, 1): 150_000}, 0),
                                                           ({bill_reference(202601, 1): 50_000}, 30_000)]
    with pytest.raises(PaymentError, match="VCB-1 was booked before"):
        record_payments(books, [PaymentIn(date(2026, 2, 12), 1, "grab", "", "VCB-1")], dry_run=True)
    holds(books)


def test_paid_in_three_parts_interest_runs_on_what_each_day_left_unpaid(books):
    reference = grab_bill(books)["reference"]
    pay(books, date(2026, 2, 10), 50_000, "VCB-1", reference)
    pay(books, date(2026, 2, 20), 50_000, "VCB-2", reference)
    close(books, "2026-02", date(2026, 3, 2))
    pay(books, date(2026, 3, 5), 100_000, "VCB-3", reference)
    close(books, "2026-03", date(2026, 4, 2))
    # February: 150,000 unpaid on 16–20 (5 days) and 100,000 on 21–28 (8 days): 1,550,000 × 9,000 / 28,000,000
    # = 498.2 → 498. March: 100,000 on 1–5: 500,000 × 9,000 / 31,000,000 = 145.2 → 145.
    assert interest_lines(books) == [("2026-02", 498), ("2026-03", 145)]
    account = account_statement(books, "grab")
    assert [item["outstanding_vnd"] for item in account["open_items"]] == [498, 145]
    assert account["balance_vnd"] == 498 + 145
    holds(books)


def test_a_payment_with_an_unknown_reference_settles_the_oldest_bill_and_is_listed_as_unmatched(books):
    ingest_batch(books, numbered([ride("f-1", "2026-02", amount=5_000_000)]))
    close(books, "2026-02", date(2026, 3, 2))  # February's bill: 100,000, due 2026-03-15
    outcome = pay(books, date(2026, 3, 3), 250_000, "VCB-9", "tien bao hiem thang 2")
    assert outcome.matched_reference is None
    # Oldest first: January's bill (due 15 Feb), February's interest on it (836, charged on 2 March),
    # then February's bill (due 15 March).
    assert outcome.settled == {"AS202601P000105": 200_000, "AS202601P000105/interest-2026-02": 836,
                               FEBRUARY: 49_164}
    account = account_statement(books, "grab")
    assert account["unmatched_payments"] == ["VCB-9"]
    assert [(item["reference"], item["outstanding_vnd"]) for item in account["open_items"]] == [(FEBRUARY, 50_836)]
    holds(books)


def test_a_payment_naming_a_later_bill_settles_that_bill_first(books):
    ingest_batch(books, numbered([ride("f-1", "2026-02", amount=5_000_000)]))
    close(books, "2026-02", date(2026, 3, 2))
    outcome = pay(books, date(2026, 3, 3), 120_000, "VCB-9", f"BHXH {FEBRUARY}")
    assert outcome.settled == {FEBRUARY: 100_000, "AS202601P000105": 20_000}
    holds(books)


def test_a_platform_that_overpays_is_credited_on_next_months_bill(books):
    outcome = pay(books, date(2026, 2, 14), 250_000, "VCB-1", grab_bill(books)["reference"])
    assert (outcome.settled, outcome.credit_vnd) == ({"AS202601P000105": BILL_VND}, 50_000)
    assert account_statement(books, "grab")["balance_vnd"] == -50_000  # in credit, not absorbed
    ingest_batch(books, numbered([ride("f-1", "2026-02")]))
    close(books, "2026-02", date(2026, 3, 2))
    february = grab_bill(books, "2026-02")
    assert (february["amount_vnd"], february["outstanding_vnd"]) == (BILL_VND, 150_000)
    account = account_statement(books, "grab")
    assert (account["credit_vnd"], account["balance_vnd"]) == (0, 150_000)
    holds(books)


def test_refunds_larger_than_a_months_dues_make_a_credit_note_that_settles_the_next_bill(books):
    pay(books, date(2026, 2, 14), BILL_VND, "VCB-1")
    ingest_batch(books, numbered([event("r-1", action="refund", original_event_id="j-1", amount=4_000_000,
                                        occurred_at="2026-02-05T09:00:00+07:00")]))
    close(books, "2026-02", date(2026, 3, 2))
    assert grab_bill(books, "2026-02")["amount_vnd"] == -80_000  # 40 % of January's shares reversed
    assert account_statement(books, "grab")["credit_vnd"] == 80_000
    ingest_batch(books, numbered([ride("m-1", "2026-03")]))
    close(books, "2026-03", date(2026, 4, 2))
    assert grab_bill(books, "2026-03")["outstanding_vnd"] == BILL_VND - 80_000
    holds(books)


def test_the_state_pays_its_claim_scheme_by_scheme(books):
    claim = [bill for bill in bills_of_month(books, "2026-01") if bill["payer"] == "state"]
    # Worker A's own si 100,000 and ui 50,000 (no status: other, 10 %) → 10,000 and 5,000.
    assert [(line["kind"], line["amount_vnd"]) for line in claim] == [("claim si", 10_000), ("claim ui", 5_000)]
    outcome = pay(books, date(2026, 2, 20), 12_000, "KBNN-1", claim[0]["reference"], payer="state")
    assert outcome.settled == {"AS202601NS02": 12_000}
    with books.engine.connect() as conn:
        legs = query(conn, "SELECT p.account_kind, p.scheme, p.amount_vnd FROM posting p JOIN journal j "
                           "ON j.id = p.entry_id WHERE j.entry_type = 5 ORDER BY p.leg")
    assert [tuple(leg) for leg in legs] == [(5, 0, 12_000), (3, 1, -10_000), (3, 3, -2_000)]
    account = account_statement(books, "state")
    assert (account["balance_vnd"], [i["outstanding_vnd"] for i in account["open_items"]]) == (3_000, [3_000])
    close(books, "2026-02", date(2026, 3, 2))
    assert interest_lines(books, "state") == []  # the state budget is not charged interest
    holds(books)


def test_a_payment_dated_in_a_closed_month_is_booked_in_the_first_open_month(books):
    close(books, "2026-02", date(2026, 3, 2))
    pay(books, date(2026, 2, 14), BILL_VND, "VCB-1")
    with books.engine.connect() as conn:
        assert query(conn, "SELECT occurred_month, booking_month FROM journal WHERE entry_type = 5")[0] == \
            (202602, 202603)
    # The interest of February was charged at its close and stays; the payment settles the bill.
    assert interest_lines(books) == [("2026-02", 836)]
    assert account_statement(books, "grab")["balance_vnd"] == 836
    holds(books)


@pytest.mark.parametrize("payment, message", [
    (PaymentIn(date(2026, 2, 1), 1_000, "uber", "", "B-1"), "payer 'uber' is neither a known platform nor 'state'"),
    (PaymentIn(date(2026, 3, 1), 1_000, "grab", "", "B-1"), "dated 2026-03-01, after today 2026-02-03"),
])
def test_a_payment_from_an_unknown_payer_or_from_the_future_is_refused(books, payment, message):
    with pytest.raises(PaymentError, match=message):
        record_payments(books, [payment])
    assert account_statement(books, "grab")["payments_vnd"] == 0


def test_a_bank_statement_names_every_bad_line_and_nothing_of_it_is_read(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("date,amount_vnd,payer,reference,bank_ref\n2026-02-31,100,grab,,A\n2026-02-01,1.5,grab,,B\n"
                    "2026-02-01,100,grab,,has space\n2026-02-01,100,grab,,C\n", encoding="utf-8")
    with pytest.raises(PaymentError) as error:
        read_payments_csv(path)
    assert error.value.errors == [
        "line 2: date must be YYYY-MM-DD, got '2026-02-31'",
        "line 3: amount_vnd must be a whole number of VND between 1 and 1,000,000,000,000,000, got '1.5'",
        "line 4: bank_ref must be 1–64 printable characters without spaces (the bank's transaction id)"]


def test_the_money_tables_refuse_updates_and_deletes(books):
    for statement in ("UPDATE money_record SET amount_vnd = 1", "DELETE FROM money_record",
                      "DELETE FROM money_close"):
        with pytest.raises(Exception, match="append_only"):
            with books.engine.begin() as conn:
                conn.exec_driver_sql(statement)


def test_a_forged_bill_is_named_by_verify(ledger, tmp_path):
    if not ledger.engine.url.get_backend_name() == "sqlite":
        pytest.skip("the forgery drops a SQLite trigger; the PostgreSQL guards are proven by the refusal test")
    ledger.clock = FixedClock()
    ingest_batch(ledger, numbered([ride("j-1", "2026-01"), ride("j-2", "2026-01", worker_id=WORKER_B)]))
    close(ledger, "2026-01", date(2026, 2, 3))
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER money_record_append_only_update")
        conn.exec_driver_sql("UPDATE money_record SET amount_vnd = amount_vnd - 1 WHERE kind = 'bill'")
    problems = {check.name: check.problem for check in verify(ledger, stop_at_first=False) if check.problem}
    assert problems["bills_and_claims_match_settlement"] == \
        "2026-01: platform 1 is billed 399999, its dues are 400000"
    assert WORKER_A not in str(problems)


def test_beancount_reads_payments_and_late_interest_with_the_same_balances(books, tmp_path):
    from beancount import loader
    from beancount.core import realization

    from ledger.export import export_beancount

    pay(books, date(2026, 2, 25), 150_000, "VCB-1", grab_bill(books)["reference"])
    pay(books, date(2026, 2, 26), 10_000, "KBNN-1", claim_reference(202601), payer="state")
    close(books, "2026-02", date(2026, 3, 2))
    journal = tmp_path / "books.beancount"
    export_beancount(books, journal)
    entries, errors, _options = loader.load_file(str(journal))
    assert errors == []
    balances = {account.account: int(account.balance.get_currency_units("VND").number)
                for account in realization.iter_children(realization.realize(entries))
                if account.balance.get_currency_units("VND").number}
    grab, state = account_statement(books, "grab"), account_statement(books, "state")
    # Unpaid 200,000 on 16–25 Feb (paid on the 25th) and 50,000 on 26–28 Feb:
    # (2,000,000 + 150,000) × 9,000 / 28,000,000 = 691.07 → 691.
    assert (grab["interest_vnd"], grab["balance_vnd"], state["balance_vnd"]) == (691, 50_691, 5_000)
    assert balances["Assets:Bank"] == 160_000
    assert balances["Income:LateInterest:P1-grab"] == -691
    assert balances["Assets:Receivable:Platforms:P1-grab"] == grab["balance_vnd"] + grab["unbilled_vnd"]
    assert (balances.get("Assets:Receivable:State:SI", 0), balances["Assets:Receivable:State:UI"]) == (0, 5_000)


def test_credit_settles_a_bill_issued_after_its_due_date_as_paid_on_the_day_the_money_came(books):
    pay(books, date(2026, 2, 10), 2 * BILL_VND, "VCB-1")  # January's bill and 200,000 of credit
    ingest_batch(books, numbered([ride("f-1", "2026-02")]))
    close(books, "2026-02", date(2026, 4, 2))  # closed late: February's bill (due 15 March) issued on 2 April
    close(books, "2026-03", date(2026, 4, 3))
    assert grab_bill(books, "2026-02")["outstanding_vnd"] == 0
    assert interest_lines(books) == []  # the money was there on 10 February: nothing was late
    holds(books)

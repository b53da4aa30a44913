"""Worker top-ups (RULES.md §11, docs/payments.md), on both stores.

Worker A rides on grab under vn-pilot: a 10,000,000 VND ride withholds si 1 % = 100,000 VND
from the worker (plus the platform's shares). The pension floor is 330,000 VND a month, the
si subsidy base is capped at 330,000 and A's household tier is the base one, subsidised at
10 % (100,000 ppm). The clock starts on 2026-06-01.
"""
from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.money import (PaymentError, PaymentIn, account_statement, amount_to_complete, month_to_complete,
                          parse_payment, read_payments_csv, record_payments, topup_reference, topup_reference_in,
                          topup_worker_id)
from ledger.reports import settlement, statement, statements
from ledger.store import query
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.ledger.factories import WORKER_A, WORKER_B, event, numbered

FLOOR_VND = 330_000
RIDE_SI_VND = 100_000  # 1 % of a 10,000,000 VND ride


def holds(ledger) -> None:
    assert [(check.name, check.problem) for check in verify(ledger) if check.problem] == []


def ride(event_id: str, month: str, worker: str = WORKER_A) -> dict:
    return event(event_id, amount=10_000_000, worker_id=worker, occurred_at=f"{month}-10T09:00:00+07:00")


def on(ledger, day: date) -> None:
    ledger.clock.moment = datetime(day.year, day.month, day.day, 5, tzinfo=timezone.utc)


def reference_of(ledger, national_id: str = WORKER_A) -> str:
    return statement(ledger, national_id, "2026-01")["topup_reference"]


def top_up(ledger, day: date, amount: int, bank_ref: str, national_id: str = WORKER_A, memo: str = "nop BHXH {}"):
    return record_payments(ledger, [PaymentIn(day, amount, "worker", memo.format(reference_of(ledger, national_id)),
                                              bank_ref)])[0]


@pytest.fixture
def books(ledger):
    """A's February ride booked (si 100,000 own); grab's January ride billed at the close of January."""
    ledger.clock = FixedClock()
    for item in (ride("j-1", "2026-01", WORKER_B), ride("f-1", "2026-02")):  # B is worker 1, A worker 2
        assert [o.outcome for o in ingest_batch(ledger, numbered([item]))] == ["accepted"]
    on(ledger, date(2026, 2, 3))
    close_month(ledger, "2026-01")
    on(ledger, date(2026, 6, 1))
    return ledger


# -- the reference -----------------------------------------------------------------------------------

def test_a_topup_reference_names_the_worker_with_check_digits_and_never_holds_the_citizen_id(books):
    reference = reference_of(books)
    assert len(reference) == 18 and reference.startswith("ASW") and reference[3:].isdigit()
    assert WORKER_A not in reference and WORKER_A[-6:] not in reference
    with books.engine.connect() as conn:
        worker_id = books.worker_id(conn, WORKER_A)
    assert topup_worker_id(books.keys, reference) == worker_id
    assert reference != reference_of(books, WORKER_B)
    # Spaces, dashes and case do not matter in a memo; a mistyped digit or two swapped neighbours do.
    spaced = f"ck {reference[:7].lower()} {reference[7:12]}-{reference[12:]}"
    assert topup_reference_in(spaced) == reference
    for position in range(3, len(reference)):
        for digit in "0123456789":
            if digit != reference[position]:
                assert topup_reference_in(reference[:position] + digit + reference[position + 1:]) is None
        if position + 1 < len(reference) and reference[position] != reference[position + 1]:
            swapped = reference[:position] + reference[position + 1] + reference[position] + reference[position + 2:]
            assert topup_reference_in(swapped) is None


def test_the_same_row_id_gets_another_reference_under_another_secret(tmp_path):
    from ledger.books import Ledger

    first = Ledger.open(f"sqlite:///{tmp_path / 'a.db'}", pack="vn-pilot", secret=secrets.token_hex(32))
    second = Ledger.open(f"sqlite:///{tmp_path / 'b.db'}", pack="vn-pilot", secret=secrets.token_hex(32))
    try:
        assert topup_reference(first.keys, 1) != topup_reference(second.keys, 1)
        assert topup_worker_id(second.keys, topup_reference(first.keys, 1)) != 1
    finally:
        first.close()
        second.close()


# -- booking -------------------------------------------------------------------------------------------

def test_a_topup_that_completes_a_month_is_the_workers_own_si_in_its_booked_month(books):
    before = statement(books, WORKER_A, "2026-02")
    assert (month_to_complete(before), amount_to_complete(before)) == ("2026-02", FLOOR_VND - RIDE_SI_VND)
    outcome = top_up(books, date(2026, 2, 20), 230_000, "VCB-T1")
    assert (outcome.status, outcome.payer, outcome.matched_reference, outcome.booked_month, outcome.settled) == \
        ("booked", "worker", reference_of(books), "2026-02", {})
    after = statement(books, WORKER_A, "2026-02")
    assert after["schemes"]["si"]["worker"] == FLOOR_VND
    assert after["topups_vnd"] == 230_000
    # Pooled crediting (provisional while February is open): the pool reaches the floor, February is
    # credited, and the next month to complete is March, which needs a whole floor.
    assert (after["credited_months_to_date"], after["pension"]["credited_this_month"]) == (1, ["2026-02"])
    assert (month_to_complete(after), amount_to_complete(after)) == ("2026-03", FLOOR_VND)
    assert "worker" not in after["platforms"] and after["platforms"]["grab"]["si"]["worker"] == RIDE_SI_VND
    # Money from the worker, not from a platform: grab's dues and the bank's entry say so.
    assert settlement(books, "2026-02")["platforms"]["grab"]["si"] == RIDE_SI_VND  # the withheld si, not the top-up
    with books.engine.connect() as conn:
        legs = query(conn, "SELECT p.account_kind, p.scheme, p.party, p.amount_vnd FROM posting p JOIN journal j "
                           "ON j.id = p.entry_id WHERE j.entry_type = 7 ORDER BY p.leg")
    assert [tuple(leg) for leg in legs] == [(5, 0, 0, 230_000), (1, 1, 1, -230_000)]  # bank / A's si, party worker
    holds(books)


def test_a_topup_sent_twice_with_the_same_bank_reference_is_booked_once(books):
    first = top_up(books, date(2026, 2, 20), 50_000, "VCB-T1")
    again = top_up(books, date(2026, 2, 20), 50_000, "VCB-T1")
    assert (first.status, again.status) == ("booked", "duplicate")
    assert statement(books, WORKER_A, "2026-02")["topups_vnd"] == 50_000
    with pytest.raises(PaymentError, match="VCB-T1 was booked before with another payer, amount or date"):
        top_up(books, date(2026, 2, 20), 60_000, "VCB-T1")
    holds(books)


def test_one_bank_reference_for_two_workers_in_one_statement_is_refused_not_booked_to_either(books):
    lines = [PaymentIn(date(2026, 2, 20), 50_000, "worker", reference_of(books, national_id), "VCB-T1")
             for national_id in (WORKER_A, WORKER_B)]
    with pytest.raises(PaymentError, match="payment 2 \\(VCB-T1\\): bank_ref VCB-T1 was booked before with another"):
        record_payments(books, lines)
    assert statement(books, WORKER_A, "2026-02")["topups_vnd"] == 0


def test_a_topup_dated_in_a_closed_month_is_booked_in_the_first_open_month(books):
    january = statement(books, WORKER_A, "2026-01")
    outcome = top_up(books, date(2026, 1, 25), 40_000, "VCB-T1")
    assert outcome.booked_month == "2026-02"
    assert statement(books, WORKER_A, "2026-01") == january
    assert statement(books, WORKER_A, "2026-02")["topups_vnd"] == 40_000
    with books.engine.connect() as conn:
        assert query(conn, "SELECT occurred_month, booking_month, occurred_at FROM journal WHERE entry_type = 7") == \
            [(202601, 202602, "2026-01-25")]
    holds(books)


def test_the_subsidy_counts_a_topup_as_own_si_capped_at_the_base(books):
    top_up(books, date(2026, 2, 20), 300_000, "VCB-T1")
    on(books, date(2026, 3, 2))
    close_month(books, "2026-02")
    february = statement(books, WORKER_A, "2026-02")
    # own si 100,000 + 300,000 = 400,000, capped at 330,000; × 10 % = 33,000 (10,000 without the top-up)
    assert (february["schemes"]["si"]["worker"], february["schemes"]["si"]["subsidy"]) == (400_000, 33_000)
    assert settlement(books, "2026-02")["subsidy"]["si"] == 33_000
    holds(books)


def test_a_topup_enters_the_pool_and_the_next_close_credits_the_month_it_completes(books):
    on(books, date(2026, 3, 2))
    close_month(books, "2026-02")
    february = statement(books, WORKER_A, "2026-02")
    # si 100,000 own + 10,000 subsidy = pool 110,000: February still needs 220,000
    assert (february["pool_vnd"], month_to_complete(february), amount_to_complete(february)) == \
        (110_000, "2026-02", 220_000)
    on(books, date(2026, 3, 5))
    top_up(books, date(2026, 3, 5), amount_to_complete(february), "VCB-T1")
    on(books, date(2026, 4, 2))
    close_month(books, "2026-03")
    march = statement(books, WORKER_A, "2026-03")
    # March: the top-up 220,000 own + its subsidy 22,000; the pool 352,000 pays February's floor
    assert (march["schemes"]["si"]["worker"], march["schemes"]["si"]["subsidy"]) == (220_000, 22_000)
    assert (march["credited_months_to_date"], march["pension"]["credited_this_month"], march["pool_vnd"]) == \
        (1, ["2026-02"], 22_000)
    holds(books)


def test_a_topup_settles_no_platform_bill_even_when_the_worker_and_the_platform_share_a_row_id(books):
    with books.engine.connect() as conn:
        grab_id = query(conn, "SELECT id FROM platform WHERE name = 'grab'")[0][0]
        assert books.worker_id(conn, WORKER_B) == grab_id == 1  # worker 1 rode in January, grab is platform 1
    before = account_statement(books, "grab")
    top_up(books, date(2026, 2, 20), 200_000, "VCB-T1", national_id=WORKER_B)
    after = account_statement(books, "grab")
    assert (after["payments_vnd"], after["balance_vnd"], after["lines"]) == \
        (before["payments_vnd"], before["balance_vnd"], before["lines"]) == (0, 200_000, before["lines"])
    holds(books)


def test_the_bulk_statements_carry_each_workers_reference_and_topups(books):
    top_up(books, date(2026, 2, 20), 70_000, "VCB-T1")
    by_id = {report["national_id"]: report for report in statements(books, "2026-02")}
    assert (by_id[WORKER_A]["topup_reference"], by_id[WORKER_A]["topups_vnd"]) == (reference_of(books), 70_000)


# -- refused -------------------------------------------------------------------------------------------

def test_a_bad_topup_reference_is_refused_with_its_line_number_and_nothing_is_booked(books, tmp_path):
    good = reference_of(books)
    mistyped = good[:-3] + str((int(good[-3]) + 1) % 10) + good[-2:]
    bank = tmp_path / "bank.csv"
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n"
                    f"2026-02-20,100000,worker,{good},VCB-1\n"
                    f"2026-02-20,100000,worker,CK {mistyped} cccd {WORKER_A},VCB-2\n")
    with pytest.raises(PaymentError) as refused:
        read_payments_csv(bank)
    assert len(refused.value.errors) == 1 and refused.value.errors[0].startswith("line 3: a worker top-up needs")
    assert WORKER_A not in str(refused.value)


def test_a_reference_that_names_no_worker_of_the_books_is_refused_with_its_line_number(books, tmp_path):
    nobody = topup_reference(books.keys, 999)  # right check digits, no worker 999 in these books
    bank = tmp_path / "bank.csv"
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n"
                    f"2026-02-20,100000,worker,{reference_of(books)},VCB-1\n"
                    f"2026-02-20,100000,worker,{nobody},VCB-2\n")
    numbered_lines = read_payments_csv(bank)
    with pytest.raises(PaymentError) as refused:
        record_payments(books, [p for _line, p in numbered_lines], lines=[line for line, _p in numbered_lines])
    assert refused.value.errors == ["line 3 (VCB-2): the top-up reference names no worker of these books "
                                    "(copy it from the worker's statement)"]
    assert statement(books, WORKER_A, "2026-02")["topups_vnd"] == 0  # line 2 was not booked either
    holds(books)


def test_a_worker_payment_without_a_reference_is_refused_before_the_books_are_opened():
    with pytest.raises(ValueError, match="a worker top-up needs the worker's payment reference"):
        parse_payment({"date": "2026-02-20", "amount_vnd": "100000", "payer": "worker", "reference": "nop tien",
                       "bank_ref": "VCB-1"})


def test_verify_names_a_topup_record_that_no_entry_books(books):
    top_up(books, date(2026, 2, 20), 50_000, "VCB-T1")
    with books.engine.begin() as conn:
        query(conn, "INSERT INTO money_record (id, kind, payer_id, month, scheme, amount_vnd, issued_on, reference, "
                    "bank_ref, entry_id, recorded_at) SELECT max(id) + 1, 'topup', 2, 202602, 1, 50000, '2026-02-21', "
                    "'forged', 'VCB-FORGED', 999999, '2026-06-01T00:00:00Z' FROM money_record")
    problems = {check.name: check.problem for check in verify(books, stop_at_first=False) if check.problem}
    assert "money_records_match_entries" in problems and "topups_credit_their_workers" in problems
    assert problems["topups_credit_their_workers"].endswith("which is no top-up entry")


def test_the_docs_example_line_books_a_topup(books, tmp_path):
    """docs/payments.md's bank statement line of a top-up, with this worker's own reference, is booked."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "payments.md").read_text()
    lines = re.findall(r"^\d{4}-\d{2}-\d{2},\d+,worker,[^,\n]*ASW\d{15},[^,\n]+$", docs, re.MULTILINE)
    assert len(lines) == 1
    bank = tmp_path / "bank.csv"
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n" + re.sub(r"ASW\d{15}", reference_of(books), lines[0]))
    outcomes = record_payments(books, [p for _line, p in read_payments_csv(bank)])
    assert [(o.status, o.amount_vnd, o.booked_month) for o in outcomes] == [("booked", 230_000, "2026-02")]
    assert statement(books, WORKER_A, "2026-02")["pension"]["month_counts"] is True

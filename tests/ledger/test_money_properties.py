"""Random bills and payments: a payer's balance is always bills + interest − payments, and no payment
is lost or doubled — in the pure replay, and in real books (SQLite) checked by `verify`."""
from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.books import Ledger
from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.money import (BILL, INTEREST, PAYMENT, PaymentIn, Record, account_statement, bill_reference, record_payments,
                          replay)
from ledger.store import query
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.ledger.factories import WORKER_A, WORKER_B, event, numbered

# -- the replay alone ------------------------------------------------------------------------------

items_and_payments = st.lists(st.tuples(
    st.sampled_from([BILL, BILL, INTEREST, PAYMENT, PAYMENT]),
    st.integers(min_value=-50_000, max_value=2_000_000),
    st.integers(min_value=0, max_value=60),  # day offset
    st.integers(min_value=0, max_value=5),  # which earlier bill a payment names (5 = none)
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(items_and_payments)
def test_the_replay_settles_every_dong_of_every_payment_exactly_once(rows):
    records: list[Record] = []
    bills: list[Record] = []
    for number, (kind, amount, offset, named) in enumerate(rows, start=1):
        day = date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + offset)
        if kind == PAYMENT:
            amount = max(1, abs(amount))
            memo = bills[named].reference if named < len(bills) else "no reference"
            records.append(Record(number, PAYMENT, 1, None, 0, amount, day, None, memo, f"B{number}", None, None, None))
            continue
        if kind == INTEREST:
            amount = abs(amount) % 5_000
        record = Record(number, kind, 1, 202601, 0, amount, day, day, bill_reference(202601 + number % 12, 1), None,
                        None, None, None)
        records.append(record)
        if kind == BILL:
            bills.append(record)
    book = replay(records).get(1)
    if book is None:
        return
    owed = sum(-r.amount_vnd if r.kind == PAYMENT else r.amount_vnd for r in records)
    assert book.owed_vnd == owed  # bills + interest − payments, whatever the order
    for payment in book.payments:
        assert sum(a.amount_vnd for a in book.allocations if a.source_id == payment.id) <= payment.amount_vnd
    for item_id, item in book.items.items():
        settled = sum(a.amount_vnd for a in book.allocated_to(item_id))
        assert 0 <= book.outstanding[item_id] == max(item.amount_vnd, 0) - settled
    assert book.credit_vnd >= 0
    assert book.credit_vnd == 0 or all(left == 0 for left in book.outstanding.values())  # credit never sits beside debt


# -- real books ------------------------------------------------------------------------------------

payment = st.tuples(
    st.sampled_from(["grab", "be", "state"]),
    st.integers(min_value=1, max_value=28),  # day of the month
    st.integers(min_value=1, max_value=400_000),
    st.sampled_from(["right", "wrong", "none"]),
    st.booleans(),  # sent twice
)
month_plan = st.tuples(
    st.lists(st.tuples(st.sampled_from(["grab", "be"]), st.integers(min_value=1_000, max_value=20_000_000)),
             max_size=4),
    st.lists(payment, max_size=4),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(month_plan, min_size=1, max_size=3))
def test_random_bills_and_payments_keep_every_balance_equal_to_bills_plus_interest_minus_payments(tmp_path_factory,
                                                                                                     plan):
    clock = FixedClock(datetime(2026, 1, 1, 5, tzinfo=timezone.utc))
    books = Ledger.open(f"sqlite:///{tmp_path_factory.mktemp('money')}/books.db", pack="vn-pilot", clock=clock)
    try:
        sent: dict[str, int] = {}
        number = 0
        for index, (events, payments) in enumerate(plan):
            month = 202601 + index
            items = [event(f"e{month}-{n}", platform=platform, kind="ride" if platform == "grab" else "delivery",
                           worker_id=WORKER_A if n % 2 else WORKER_B, amount=amount,
                           occurred_at=f"{month // 100}-{month % 100:02d}-05T09:00:00+07:00")
                     for n, (platform, amount) in enumerate(events)]
            clock.moment = datetime(month // 100, month % 100, 28, 12, tzinfo=timezone.utc)
            ingest_batch(books, numbered(items))
            batch = []
            for payer, day, amount, reference, twice in payments:
                number += 1
                memo = {"right": bill_reference(month - 1, 1), "wrong": "AS000000P000000", "none": ""}[reference]
                line = PaymentIn(date(month // 100, month % 100, day), amount, payer, memo, f"BANK-{number}")
                if payer != "state" and not query_platform(books, payer):
                    continue
                batch += [line, line] if twice else [line]
                sent[line.bank_ref] = amount
            if batch:
                outcomes = record_payments(books, batch)
                for outcome in outcomes:
                    if outcome.status == "booked":
                        assert sum(outcome.settled.values()) + outcome.credit_vnd == outcome.amount_vnd
            clock.moment = datetime(month // 100, month % 100, 28, 23, tzinfo=timezone.utc)  # 29th, Vietnam
            close_month(books, f"{month // 100}-{month % 100:02d}")
        with books.engine.connect() as conn:
            booked = query(conn, "SELECT count(*), coalesce(sum(amount_vnd), 0) FROM journal WHERE entry_type = 5")[0]
        assert tuple(booked) == (len(sent), sum(sent.values()))  # none lost, none doubled
        for payer in ("grab", "be", "state"):
            if payer != "state" and not query_platform(books, payer):
                continue
            account = account_statement(books, payer)
            assert account["balance_vnd"] == account["bills_vnd"] + account["interest_vnd"] - account["payments_vnd"]
        assert [(check.name, check.problem) for check in verify(books) if check.problem] == []
    finally:
        books.close()


def query_platform(books, name: str) -> bool:
    with books.engine.connect() as conn:
        return bool(query(conn, "SELECT 1 FROM platform WHERE name = ?", (name,)))

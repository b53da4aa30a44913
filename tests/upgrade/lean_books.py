"""Books written by the release before revision 0011 (bytes per event), and every figure they give.

`build(url)` writes the scenario of `tests/upgrade/books.py` (two closed months of synthetic
traffic with refunds, duplicates and bad events, household tiers, a payment, a third month
open) plus what revision 0011 touches: event ids of every allowed character and of the
longest allowed length (their digests are computed from the stored text), refunds of them,
redeliveries, and a big earner whose months are credited towards a pension. `figures(ledger)` reads every statement, settlement, bill, statement of
account, each worker's credits and per-trip lists, and the `verify` result.

The fixtures `release-0010.*` were made with the release at revision 0010 (commit fe80025),
this file copied beside it:

    PYTHONPATH=<that checkout> python -m tests.upgrade.lean_books sqlite:///release-0010.db release-0010.figures.json
    PYTHONPATH=<that checkout> python -m tests.upgrade.lean_books postgresql+psycopg://…ansinh_fixture_0010 -
    PYTHONPATH=<that checkout> python -m tests.upgrade.lean_books postgresql+psycopg://…ansinh_fixture_0010a - \\
        --archive DIR     # the same books, January then archived to DIR/journal_202601.parquet
"""
from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone

from tests.upgrade.books import FIGURES_MOMENT, MONTHS, SECRET, _Clock
from tests.upgrade.books import figures as book_figures

#: Generated, rule-valid ids (provinces 079/048); they identify no one.
BIG_EARNER = "048190005555"
SMALL_EARNER = "079203001234"


def _extra(month: str) -> list[dict]:
    """The items revision 0011 is about, for one month: ids of every allowed character and of the
    longest allowed length, refunds of them, a redelivery and a conflicting one, a big earner's ride."""
    day = f"{month}-05T09:00:00+07:00"
    base = {"platform": "grab", "kind": "ride", "worker_id": SMALL_EARNER, "occurred_at": day}
    tag = month.replace("-", "")
    longest = f"L{tag}." + "x_:-." * 24  # 128 characters
    assert len(longest) == 128
    items = [
        {**base, "event_id": f"Chuyen:di.{tag}_1-A", "amount": 120_000},
        {**base, "event_id": longest, "platform": "be", "kind": "delivery", "amount": 45_500},
        {**base, "event_id": f"{tag}-r", "action": "refund", "original_event_id": f"Chuyen:di.{tag}_1-A",
         "amount": 20_000},
        {**base, "event_id": f"Chuyen:di.{tag}_1-A", "amount": 120_000},  # redelivered: duplicate
        {**base, "event_id": longest, "platform": "be", "kind": "delivery", "amount": 45_501},  # conflict
        {**base, "event_id": f"big-{tag}", "worker_id": BIG_EARNER, "amount": 150_000_000},
    ]
    if month == "2026-02":  # a refund in February of a January ride
        items.append({**base, "event_id": "202602-r-of-jan", "action": "refund",
                      "original_event_id": "Chuyen:di.202601_1-A", "amount": 50_000})
    return items


def build(url: str):
    from ledger.books import Ledger
    from ledger.close import close_month, import_tier_records
    from ledger.ingest import MALFORMED, ingest_batch
    from ledger.money import PaymentIn, bills_of_month, record_payments
    from simulations.synthetic_events import generate_events

    clock = _Clock()
    ledger = Ledger.open(url, pack="vn-pilot", clock=clock, secret=SECRET)
    for seed, month in ((11, "2026-01"), (12, "2026-02"), (13, "2026-03")):
        items = [(line, MALFORMED if type(item) is str else item)
                 for line, item in enumerate(generate_events(seed=seed, month=month, workers=60, events=700), 1)]
        if month == "2026-01":
            workers = sorted({item["worker_id"] for _, item in items if type(item) is dict
                              and type(item.get("worker_id")) is str and len(item["worker_id"]) == 12})
            import_tier_records(ledger, [(n, [national_id, tier, "2026-01"]) for n, (national_id, tier) in
                                         enumerate(zip(workers[:20], ["poor", "near_poor"] * 10), 1)],
                                import_id="fixture")
        items += [(len(items) + n, item) for n, item in enumerate(_extra(month), 1)]
        for start in range(0, len(items), 250):
            ingest_batch(ledger, items[start:start + 250])
        if month != "2026-03":
            clock.moment = datetime(int(month[:4]), int(month[5:]) + 1, 2, tzinfo=timezone.utc)
            close_month(ledger, month)
    bills = bills_of_month(ledger, "2026-01")
    record_payments(ledger, [PaymentIn(date(2026, 2, 10), bills[0]["amount_vnd"], bills[0]["payer"],
                                       bills[0]["reference"], "FIXTURE-1")])
    clock.moment = FIGURES_MOMENT
    return ledger


def figures(ledger) -> dict:
    """books.figures, and each worker's credits and per-trip lists (count and totals per month)."""
    from ledger.reports import credits
    from ledger.trips import all_worker_events, events_totals

    out = book_figures(ledger)
    workers = sorted({s["national_id"] for listed in out["statements"].values() for s in listed})
    out["credits"] = {worker: credits(ledger, worker) for worker in workers}
    out["trips"] = {month: {worker: events_totals(all_worker_events(ledger, worker, month)) for worker in workers}
                    for month in MONTHS}
    return json.loads(json.dumps(out, sort_keys=True, default=str))


if __name__ == "__main__":
    archive = sys.argv[sys.argv.index("--archive") + 1] if "--archive" in sys.argv else None
    books = build(sys.argv[1])
    found = figures(books)
    if sys.argv[2] != "-":
        with open(sys.argv[2], "w", encoding="utf-8") as file:
            json.dump(found, file, sort_keys=True, indent=1)
    if archive:
        from ledger.archive import archive_month

        print(archive_month(books, "2026-01", archive))
    books.close()

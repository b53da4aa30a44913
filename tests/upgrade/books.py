"""Books written by an earlier release, and every figure they give, for the upgrade tests.

`build(url)` makes a small but complete set of books with public functions that every
release since 0005 has: two months of synthetic traffic (refunds, duplicates, bad events),
household tiers, a close, a payment, a third month left open. `figures(ledger)` reads every
statement, settlement, bill, statement of account and the `verify` result.

The fixtures in tests/upgrade/ (SQLite file, PostgreSQL dump, figures JSON) were made by
running this file with the release before the compact layout (commit 92d0618):

    python -m tests.upgrade.books sqlite:///tests/upgrade/release-0005.db tests/upgrade/release-0005.figures.json
"""
from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone

SECRET = "upgrade-fixture-secret-not-for-production-0123456789abcdef"
MONTHS = ("2026-01", "2026-02", "2026-03")


#: Where `build` leaves the clock (the day after the last close): the figures are read at it.
FIGURES_MOMENT = datetime(2026, 3, 2, tzinfo=timezone.utc)


class _Clock:
    def __init__(self, moment: datetime = datetime(2026, 1, 31, tzinfo=timezone.utc)) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def build(url: str):
    from ledger.books import Ledger
    from ledger.close import close_month, import_tier_records
    from ledger.ingest import MALFORMED, ingest_batch
    from ledger.money import PaymentIn, bills_of_month, record_payments
    from simulations.synthetic_events import generate_events

    clock = _Clock()
    ledger = Ledger.open(url, pack="vn-pilot", clock=clock, secret=SECRET)
    workers: list[str] = []
    for seed, month in ((11, "2026-01"), (12, "2026-02"), (13, "2026-03")):
        items = [(line, MALFORMED if type(item) is str else item)
                 for line, item in enumerate(generate_events(seed=seed, month=month, workers=60, events=700), 1)]
        if month == "2026-01":
            workers = sorted({item["worker_id"] for _, item in items if type(item) is dict
                              and type(item.get("worker_id")) is str and len(item["worker_id"]) == 12})
            tiers = [(n, [national_id, tier, "2026-01"]) for n, (national_id, tier) in
                     enumerate(zip(workers[:20], ["poor", "near_poor"] * 10), 1)]
            import_tier_records(ledger, tiers, import_id="fixture")
        for start in range(0, len(items), 250):
            ingest_batch(ledger, items[start:start + 250])
        if month != "2026-03":
            clock.moment = datetime(int(month[:4]), int(month[5:]) + 1, 2, tzinfo=timezone.utc)
            close_month(ledger, month)
    bills = bills_of_month(ledger, "2026-01")
    record_payments(ledger, [PaymentIn(date(2026, 2, 10), bills[0]["amount_vnd"], bills[0]["payer"],
                                       bills[0]["reference"], "FIXTURE-1")])
    return ledger


def figures(ledger) -> dict:
    from ledger.money import account_statement, bills_of_month
    from ledger.reports import settlement, statements
    from ledger.verify import verify

    out: dict = {"statements": {}, "settlements": {}, "bills": {}, "accounts": {}}
    for month in MONTHS:
        out["statements"][month] = sorted(statements(ledger, month), key=lambda s: json.dumps(s, sort_keys=True))
        out["settlements"][month] = settlement(ledger, month)
    for month in MONTHS[:2]:
        out["bills"][month] = bills_of_month(ledger, month)
    payers = sorted({bill["payer"] for bills in out["bills"].values() for bill in bills})
    for payer in [*payers, "state"]:
        out["accounts"][payer] = account_statement(ledger, payer)
    out["verify"] = [(check.name, check.problem) for check in verify(ledger)]
    return json.loads(json.dumps(out, sort_keys=True, default=str))


if __name__ == "__main__":
    books = build(sys.argv[1])
    with open(sys.argv[2], "w", encoding="utf-8") as file:
        json.dump(figures(books), file, sort_keys=True, indent=1)
    books.close()

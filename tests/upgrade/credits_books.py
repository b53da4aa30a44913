"""Books with closed months whose workers earn enough to be credited, written by the release before
revision 0009 (pooled crediting), for `test_upgrade_credits.py`.

`build(url)` uses only functions every release since 0005 has. Three workers' si totals follow
RULES.md §11's worked example and two variants (a refund after a would-be credit, a big earner);
January, February and March are closed, April is left open. The fixture was made by running
this file with the release before 0009 (commit d08ef08):

    PYTHONPATH=<that checkout> python -m tests.upgrade.credits_books sqlite:///tests/upgrade/release-0008-credits.db
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

SECRET = "upgrade-credits-fixture-secret-not-for-production-9876543210"
#: Generated, rule-valid ids (provinces 079/001/048); they identify no one.
WORKERS = ("079203001234", "001085004321", "048190005555")
#: si (worker share, 1 % of a ride) wanted per worker and month; a negative value is a refund of that much si.
SI_PLAN = {
    "079203001234": {"2026-01": 100_000, "2026-02": 150_000, "2026-03": 200_000, "2026-04": 0},  # §11's example
    "001085004321": {"2026-01": 400_000, "2026-02": -120_000, "2026-03": 90_000, "2026-04": 350_000},
    "048190005555": {"2026-01": 1_500_000, "2026-02": 0, "2026-03": 10_000, "2026-04": 20_000},
}
CLOSED = ("2026-01", "2026-02", "2026-03")


class _Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def build(url: str):
    from ledger.books import Ledger
    from ledger.close import close_month
    from ledger.ingest import ingest_batch

    clock = _Clock(datetime(2026, 1, 31, tzinfo=timezone.utc))
    ledger = Ledger.open(url, pack="vn-pilot", clock=clock, secret=SECRET)
    for number, month in enumerate(("2026-01", "2026-02", "2026-03", "2026-04"), 1):
        items = []
        for worker in WORKERS:
            si = SI_PLAN[worker][month]
            if si > 0:
                items.append({"event_id": f"{worker[-4:]}-{month}", "platform": "grab", "kind": "ride",
                              "worker_id": worker, "amount": si * 100, "occurred_at": f"{month}-10T09:00:00+07:00"})
            elif si < 0:  # refund part of the previous month's ride (booked in this month)
                previous = f"{month[:5]}{int(month[5:]) - 1:02d}"
                items.append({"event_id": f"{worker[-4:]}-{month}-r", "platform": "grab", "kind": "ride",
                              "worker_id": worker, "amount": -si * 100, "action": "refund",
                              "original_event_id": f"{worker[-4:]}-{previous}",
                              "occurred_at": f"{month}-11T09:00:00+07:00"})
        ingest_batch(ledger, list(enumerate(items, 1)))
        if month in CLOSED:
            clock.moment = datetime(2026, number + 1, 2, tzinfo=timezone.utc)
            close_month(ledger, month)
    return ledger


if __name__ == "__main__":
    build(sys.argv[1]).close()

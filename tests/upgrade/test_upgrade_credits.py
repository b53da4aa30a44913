"""Books of the release before pooled crediting, with closed months that owe credits, upgrade in place.

The fixtures (tests/upgrade/credits_books.py says how they were made) hold three closed months
and an open one, written by the release at revision 0008. Opening them runs revision 0009, which
re-runs every close's crediting (RULES.md §11) and seals the rows into the chain; every figure
must equal a small independent model of §11 on the old books' si totals, and `verify` (with the
anchors the old closes printed) must still hold.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from ledger.books import Ledger
from ledger.close import close_month
from ledger.reports import credits, statement
from ledger.verify import Anchor, verify
from tests.upgrade.fixture_books import restored_books
from tests.credit_model import ModelWorker, flat_floor
from tests.upgrade.credits_books import CLOSED, SECRET, WORKERS, _Clock

MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_books(request, tmp_path):
    """A URL of books at revision 0008 with three closed months, as that release left them."""
    yield from restored_books(request.param, tmp_path, "release-0008-credits", "ansinh_fixture_0008c")


def _si_totals(ledger: Ledger) -> dict[str, dict[int, int]]:
    """Each worker's si total per month, from the statements (figures the old release gave too)."""
    return {worker: {int(month.replace("-", "")): statement(ledger, worker, month)["schemes"]["si"]["total"]
                     for month in MONTHS} for worker in WORKERS}


def test_the_upgrade_credits_the_closed_months_of_old_books_as_the_rule_would_have(old_books):
    ledger = Ledger.open(old_books, clock=_Clock(datetime(2026, 4, 20, tzinfo=timezone.utc)), secret=SECRET)
    try:
        model = {worker: ModelWorker(flat_floor()) for worker in WORKERS}
        for worker, by_month in _si_totals(ledger).items():
            for month, total in by_month.items():
                model[worker].book(month, total)
        for close in (202601, 202602, 202603):
            for worker in model.values():
                worker.close(close)
        for worker in WORKERS:
            listed = credits(ledger, worker)["months"]
            assert [(row["month"], row["credited_by_close_of"]) for row in listed] == [
                (f"{m // 100}-{m % 100:02d}", f"{c // 100}-{c % 100:02d}") for m, c in model[worker].credited]
            for month in CLOSED:
                got = statement(ledger, worker, month)
                assert (got["credited_months_to_date"], got["pool_vnd"], got["next_credit_needs_vnd"]) == \
                    model[worker].figures(int(month.replace("-", ""))), (worker, month)
        # §11's worked example worker (with its subsidy): Jan 110,000, Feb 165,000, Mar 220,000 → Jan credited
        # by the close of March; the big earner's 1,533,000 in January paid four months, one per close
        assert [row["month"] for row in credits(ledger, WORKERS[0])["months"]] == ["2026-01"]
        assert [(row["month"], row["credited_by_close_of"]) for row in credits(ledger, WORKERS[2])["months"]] == [
            ("2026-01", "2026-01"), ("2026-02", "2026-02"), ("2026-03", "2026-03")]
        with ledger.engine.connect() as conn:
            versions = conn.execute(text("SELECT seal_version, count(*) FROM block GROUP BY 1 ORDER BY 1")).all()
            anchors = [Anchor(month, bytes(digest)) for month, digest in
                       conn.execute(text("SELECT month, anchor_hash FROM month_close ORDER BY month"))]
        assert [tuple(row) for row in versions][-1] == (2, 1)  # one empty block sealing the computed credits
        checks = verify(ledger, stop_at_first=False, anchors=anchors)
        assert [(check.name, check.problem) for check in checks if check.problem] == []
        # and the next close, by this release, goes on from the upgraded credits
        close_month(ledger, "2026-04")
        for worker, by_month in _si_totals(ledger).items():
            model[worker].booked[202604] = by_month[202604]  # April's subsidy is posted now
            model[worker].close(202604)
        for worker in WORKERS:
            got = statement(ledger, worker, "2026-04")
            assert (got["credited_months_to_date"], got["pool_vnd"], got["next_credit_needs_vnd"]) == \
                model[worker].figures(202604)
        assert [check.name for check in verify(ledger) if check.problem] == []
    finally:
        ledger.close()

"""Books written by the release before the compact layout upgrade in place, every figure intact.

The fixtures were written by that release (tests/upgrade/books.py says how): an SQLite file
and a PostgreSQL dump of the same scenario, and the figures that release read from them.
Opening them with this release runs the migrations; every statement, settlement, bill,
statement of account and `verify` result must be what the old release said.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.books import Ledger
from ledger.money import PaymentIn, record_payments, topup_worker_id
from ledger.ingest import ingest_batch
from ledger.verify import Anchor, verify
from tests.upgrade.fixture_books import restored_books
from tests.ledger.factories import event, numbered
from tests.credit_model import ModelWorker, flat_floor
from tests.upgrade.books import FIGURES_MOMENT, SECRET, _Clock, figures

CREDIT_FIELDS = ("credited_months_to_date", "pool_vnd", "next_credit_needs_vnd")

HERE = Path(__file__).parent
EXPECTED = json.loads((HERE / "release-0005.figures.json").read_text(encoding="utf-8"))
#: Statement fields of worker top-ups (added since that release), checked on their own below.
STATEMENT_FIELDS_ADDED = ("topup_reference", "topups_vnd")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_books(request, tmp_path):
    """A URL of books at revision 0005, exactly as the previous release left them."""
    yield from restored_books(request.param, tmp_path, "release-0005", "ansinh_fixture_0005")


def test_books_of_the_previous_release_upgrade_with_every_figure_unchanged(old_books):
    ledger = Ledger.open(old_books, clock=_Clock(FIGURES_MOMENT), secret=SECRET)
    try:
        after = figures(ledger)
        checks = dict(after.pop("verify"))
        expected = dict(EXPECTED)
        # revision 0009: statements gained the pooled-crediting fields and their `pension` block now
        # shows pooled figures (RULES.md §11); every other figure is the old release's, to the dong
        credit_fields = {month: {s["national_id"]: [s.pop(k) for k in CREDIT_FIELDS] + [s.pop("pension")]
                                 for s in listed} for month, listed in after["statements"].items()}
        # what a balance means (issue 16): a block of its own, whose count is the pooled count above
        for month, listed in after["statements"].items():
            for s in listed:
                meaning = s.pop("meaning")
                assert meaning["credited_months"] == credit_fields[month][s["national_id"]][0], (month, meaning)
        # worker top-ups: none in books of that release; each worker's reference names their own row
        topups = {month: {s["national_id"]: [s.pop(k) for k in STATEMENT_FIELDS_ADDED] for s in listed}
                  for month, listed in after["statements"].items()}
        with ledger.engine.connect() as conn:
            for by_worker in topups.values():
                for national_id, (reference, topups_vnd) in by_worker.items():
                    assert topups_vnd == 0
                    assert topup_worker_id(ledger.keys, reference) == ledger.worker_id(conn, national_id)
        # the figures sort statements by their JSON text, which the fields added since change: sort again
        after["statements"] = {month: sorted(listed, key=lambda s: json.dumps(s, sort_keys=True))
                               for month, listed in after["statements"].items()}
        old_statements = {month: [{k: v for k, v in s.items() if k != "pension"} for s in listed]
                          for month, listed in expected["statements"].items()}
        assert after == {**{key: value for key, value in expected.items() if key != "verify"},
                         "statements": old_statements}
        # every check the old release ran still holds, and so do the checks added since
        assert set(dict(expected["verify"])) <= set(checks) and all(problem is None for problem in checks.values())
        with ledger.engine.connect() as conn:
            compact = conn.execute(text("SELECT count(*) FROM journal WHERE receivable_vnd IS NOT NULL")).scalar()
            events = conn.execute(text("SELECT count(*) FROM journal WHERE entry_type IN (1, 2)")).scalar()
            orphan_legs = conn.execute(text("SELECT count(*) FROM posting p JOIN journal j ON j.id = p.entry_id "
                                            "WHERE j.entry_type IN (1, 2)")).scalar()
        assert compact == events == 900 and orphan_legs == 0
        # revision 0006: every identity row sealed, one empty block of seal version 1 sealing them,
        # the key check values recorded on the first open, and the anchors printed by the old
        # release's closes still reached by the chain recomputed from the rows
        with ledger.engine.connect() as conn:
            versions = conn.execute(text("SELECT seal_version, count(*), sum(entry_count) FROM block "
                                         "GROUP BY seal_version ORDER BY 1")).all()
            unsealed = conn.execute(text("SELECT (SELECT count(*) FROM worker WHERE seal IS NULL) + "
                                         "(SELECT count(*) FROM platform WHERE seal IS NULL) + "
                                         "(SELECT count(*) FROM rules_version WHERE seal IS NULL)")).scalar()
            keys = [row[0] for row in conn.execute(text("SELECT key_id FROM key_check ORDER BY key_id"))]
            anchors = [Anchor(month, bytes(digest)) for month, digest in
                       conn.execute(text("SELECT month, anchor_hash FROM month_close ORDER BY month"))]
            credit_rows = conn.execute(text("SELECT count(*) FROM credited_month")).scalar()
        # revision 0009 adds one empty block of seal version 2 only when it computed credits (this
        # fixture's small earners have none; tests/upgrade/test_upgrade_credits.py has some)
        assert [tuple(row)[:2] for row in versions][1:] == [(1, 1)] + ([(2, 1)] if credit_rows else [])
        assert versions[1][2] == 0 and unsealed == 0
        assert {"encryption/v1", "pseudonym/v1"} <= set(keys) and len(anchors) == 2
        checks = verify(ledger, stop_at_first=False, anchors=anchors)
        assert [(check.name, check.problem) for check in checks if check.problem] == []
        assert {"anchor 2026-01", "anchor 2026-02"} <= {check.name for check in checks}
        assert "credits_match_rules" in {check.name for check in checks}
    finally:
        ledger.close()
    # The credits the upgrade computed for the two closes the old release made are those of a small
    # independent model of §11 run on the old release's own statements (si totals per month).
    model: dict[str, ModelWorker] = {}
    for month in ("2026-01", "2026-02", "2026-03"):
        for old in EXPECTED["statements"][month]:
            model.setdefault(old["national_id"], ModelWorker(flat_floor())).book(
                int(month.replace("-", "")), old["schemes"]["si"]["total"])
    for close in (202601, 202602):
        for worker in model.values():
            worker.close(close)
        for national_id, (count, pool, needs, pension) in credit_fields[f"{close // 100}-{close % 100:02d}"].items():
            assert (count, pool, needs) == model[national_id].figures(close), national_id
            assert (pension["months_counted"], pension["pool_vnd"], pension["shortfall_vnd"]) == (count, pool, needs)
    assert sum(len(worker.credited) for worker in model.values()) == credit_rows

def test_upgraded_books_take_new_events_beside_the_old_and_still_verify(old_books):
    ledger = Ledger.open(old_books, clock=_Clock(FIGURES_MOMENT), secret=SECRET)
    try:
        outcomes = ingest_batch(ledger, numbered([event("after-upgrade-1", occurred_at="2026-03-20T09:00:00+07:00"),
                                                  event("after-upgrade-2", amount=333_333,
                                                        occurred_at="2026-03-21T09:00:00+07:00")]))
        assert [outcome.outcome for outcome in outcomes] == ["accepted", "accepted"]
        assert [check.name for check in verify(ledger) if check.problem] == []
        march = next(s for s in figures(ledger)["settlements"].values() if s["month"] == "2026-03")
        before = EXPECTED["settlements"]["2026-03"]
        assert march["control_total_vnd"] > before["control_total_vnd"]
    finally:
        ledger.close()


def test_the_events_of_upgraded_books_are_listed_and_sum_to_the_statements_the_old_release_printed(old_books):
    """Rows written before the compact layout keep their occurred_at text: the per-trip record
    reads both kinds (revision 0010 adds its index to books of any earlier revision)."""
    from ledger.trips import all_worker_events, events_totals

    ledger = Ledger.open(old_books, clock=_Clock(FIGURES_MOMENT), secret=SECRET)
    try:
        listed = 0
        for month, reports in EXPECTED["statements"].items():
            for report in reports:
                items = list(all_worker_events(ledger, report["national_id"], month))
                listed += len(items)
                totals = events_totals(items)
                assert {scheme: totals["shares"][scheme] for scheme in report["schemes"]} == \
                    {scheme: {"worker": line["worker"], "platform": line["platform"]}
                     for scheme, line in report["schemes"].items()}, (month, report["month"])
                assert all(item["local_time"] and item["occurred_at"].endswith("Z") for item in items)
        assert listed == 900
        with ledger.engine.connect() as conn:
            indexes = conn.execute(text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'journal_worker_month'" if conn.dialect.name == "sqlite"
                else "SELECT count(*) FROM pg_indexes WHERE indexname = 'journal_worker_month' "
                     "AND schemaname = current_schema()")).scalar()
        assert indexes == 1
    finally:
        ledger.close()


def test_upgraded_books_take_a_workers_topup_and_still_verify(old_books):
    ledger = Ledger.open(old_books, clock=_Clock(FIGURES_MOMENT), secret=SECRET)
    try:
        report = figures(ledger)["statements"]["2026-03"][0]
        outcome = record_payments(ledger, [PaymentIn(FIGURES_MOMENT.date(), 50_000, "worker",
                                                     report["topup_reference"], "UPGRADE-TOPUP-1")])[0]
        assert (outcome.status, outcome.booked_month) == ("booked", "2026-03")
        assert [check.name for check in verify(ledger) if check.problem] == []
        march = next(s for s in figures(ledger)["statements"]["2026-03"] if s["national_id"] == report["national_id"])
        assert (march["topups_vnd"], march["schemes"]["si"]["worker"]) == \
            (50_000, report["schemes"]["si"]["worker"] + 50_000)
    finally:
        ledger.close()

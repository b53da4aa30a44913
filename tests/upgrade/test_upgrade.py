"""Books written by the release before the compact layout upgrade in place, every figure intact.

The fixtures were written by that release (tests/upgrade/books.py says how): an SQLite file
and a PostgreSQL dump of the same scenario, and the figures that release read from them.
Opening them with this release runs the migrations; every statement, settlement, bill,
statement of account and `verify` result must be what the old release said.
"""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.books import Ledger
from ledger.money import PaymentIn, record_payments, topup_worker_id
from ledger.ingest import ingest_batch
from ledger.verify import Anchor, verify
from tests.conftest import PG_ADMIN_URL, _drop_schema, _fresh_postgres_url, postgres_available
from tests.ledger.factories import event, numbered
from tests.upgrade.books import FIGURES_MOMENT, SECRET, _Clock, figures

HERE = Path(__file__).parent
EXPECTED = json.loads((HERE / "release-0005.figures.json").read_text(encoding="utf-8"))
#: Statement fields added since that release: absent from its figures, checked on their own below.
STATEMENT_FIELDS_ADDED = ("topup_reference", "topups_vnd")


def _as_that_release_said(figures_now: dict) -> dict:
    """The figures without the statement fields added since, statements sorted as that release sorted them."""
    statements = {month: sorted(({k: v for k, v in report.items() if k not in STATEMENT_FIELDS_ADDED}
                                 for report in reports), key=lambda s: json.dumps(s, sort_keys=True))
                  for month, reports in figures_now["statements"].items()}
    return {**figures_now, "statements": statements}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_books(request, tmp_path):
    """A URL of books at revision 0005, exactly as the previous release left them."""
    if request.param == "sqlite":
        path = tmp_path / "old.db"
        with gzip.open(HERE / "release-0005.db.gz") as source, path.open("wb") as target:
            shutil.copyfileobj(source, target)
        yield f"sqlite:///{path}"
        return
    reason = postgres_available()
    if reason:
        pytest.skip(f"SKIPPING POSTGRESQL: {reason}")
    if shutil.which("psql") is None:
        pytest.skip("SKIPPING POSTGRESQL UPGRADE: psql is not installed (needed to load the dump)")
    url, schema = _fresh_postgres_url()
    dump = gzip.decompress((HERE / "release-0005.pg.sql.gz").read_bytes()).decode()
    dump = "\n".join(line for line in dump.splitlines() if not line.startswith("CREATE SCHEMA"))
    dump = dump.replace("ansinh_fixture_0005", schema)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", PG_ADMIN_URL], input=dump, text=True, check=True,
                   capture_output=True)
    yield url
    _drop_schema(schema)


def test_books_of_the_previous_release_upgrade_with_every_figure_unchanged(old_books):
    ledger = Ledger.open(old_books, clock=_Clock(FIGURES_MOMENT), secret=SECRET)
    try:
        after = figures(ledger)
        checks = dict(after.pop("verify"))
        expected = dict(EXPECTED)
        assert _as_that_release_said(after) == {key: value for key, value in expected.items() if key != "verify"}
        # no top-up in books of that release; every worker has a reference naming their own row
        reports = [report for reports in after["statements"].values() for report in reports]
        assert {report["topups_vnd"] for report in reports} == {0}
        with ledger.engine.connect() as conn:
            for report in reports:
                assert topup_worker_id(ledger.keys, report["topup_reference"]) == \
                    ledger.worker_id(conn, report["national_id"])
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
        assert [tuple(row)[:2] for row in versions][1:] == [(1, 1)] and versions[1][2] == 0 and unsealed == 0
        assert {"encryption/v1", "pseudonym/v1"} <= set(keys) and len(anchors) == 2
        checks = verify(ledger, stop_at_first=False, anchors=anchors)
        assert [(check.name, check.problem) for check in checks if check.problem] == []
        assert {"anchor 2026-01", "anchor 2026-02"} <= {check.name for check in checks}
    finally:
        ledger.close()


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

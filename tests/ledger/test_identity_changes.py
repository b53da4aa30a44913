"""A corrected national id is a new, sealed record: the worker row never changes, the right id joins the history."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.cli import app
from ledger.identity_changes import IdentityChangeError, correct_national_id
from ledger.ingest import ingest_batch
from ledger.reports import statement
from ledger.store import query
from ledger.verify import verify
from tests.ledger.factories import WORKER_A, WORKER_B, event

RIGHT_ID = "079203001235"  # WORKER_A's right number (the platform mistyped the last digit)


def test_a_corrected_national_id_resolves_to_the_same_worker_and_the_worker_row_is_unchanged(ledger):
    ingest_batch(ledger, [(1, event("e1", worker_id=WORKER_A, amount=100_000))])
    with ledger.engine.connect() as conn:
        row_before = query(conn, "SELECT id, pseudonym, seal FROM worker ORDER BY id")
        conn.rollback()
    assert correct_national_id(ledger, WORKER_A, RIGHT_ID, "ticket 42: platform mistyped the CCCD") == 1
    outcome = ingest_batch(ledger, [(1, event("e2", worker_id=RIGHT_ID, amount=50_000))])
    assert [o.outcome for o in outcome] == ["accepted"]
    with ledger.engine.connect() as conn:
        assert query(conn, "SELECT id, pseudonym, seal FROM worker ORDER BY id") == row_before  # still one worker
        change = query(conn, "SELECT worker_id, kind, block_sealed FROM (SELECT c.worker_id, c.kind, "
                             "(SELECT min(id) FROM block WHERE last_identity_change_id >= c.id) AS block_sealed "
                             "FROM worker_identity_change c) x")
        conn.rollback()
    assert change[0][:2] == (1, "corrected_id") and change[0][2] is not None  # sealed into the chain at once
    by_right, by_wrong = statement(ledger, RIGHT_ID, "2026-02"), statement(ledger, WORKER_A, "2026-02")
    by_right.pop("national_id"), by_wrong.pop("national_id")
    assert by_right == by_wrong and by_right["schemes"]  # one history, whichever number is asked
    assert [c.problem for c in verify(ledger, stop_at_first=False) if c.problem] == []


def test_a_correction_to_an_id_that_already_has_a_worker_is_refused_as_a_merge(ledger):
    ingest_batch(ledger, [(1, event("e1", worker_id=WORKER_A)), (2, event("e2", worker_id=WORKER_B))])
    with ledger.engine.connect() as conn:  # row ids follow the pseudonyms, which follow the (per-run) secret
        other = ledger.worker_id(conn, WORKER_B)
    with pytest.raises(IdentityChangeError,
                       match=f"already belongs to worker {other}: two workers of one person are merged"):
        correct_national_id(ledger, WORKER_A, WORKER_B, "duplicate")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_correct_id_on_the_command_line_records_the_change_in_one_line(database_url, ledger):
    ingest_batch(ledger, [(1, event("e1", worker_id=WORKER_A))])
    result = CliRunner().invoke(app, ["correct-id", WORKER_A, RIGHT_ID, "--reason", "ticket 7", "--db", database_url])
    assert result.exit_code == 0 and "worker 1's national id is corrected" in result.stdout
    again = CliRunner().invoke(app, ["correct-id", WORKER_A, RIGHT_ID, "--reason", "x", "--db", database_url])
    assert again.exit_code == 1 and "already belongs to worker 1" in again.output and RIGHT_ID not in again.output

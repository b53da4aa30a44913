"""The money side over HTTP and the command line: the same functions, the same figures (docs/payments.md).

Books: one grab ride of 10,000,000 VND in January (dues 200,000), January closed; the
service's clock is 2026-06-01, so January's bill (due 2026-02-15) is overdue.
"""
from __future__ import annotations

import csv
import io

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app
from ledger.money import bill_reference
from tests.ledger.factories import WORKER_A, event

GRAB_JANUARY = bill_reference(202601, 1)


@pytest.fixture
def insurer(caller):
    assert caller.post_events([event("j-1", amount=10_000_000, occurred_at="2026-01-10T09:00:00+07:00")]).status_code == 200
    assert caller.client.post("/v1/months/2026-01/close", headers=caller.bearer("insurer")).status_code == 200
    return caller


def post_payments(caller, *payments, role: str = "insurer"):
    return caller.client.post("/v1/payments", json={"payments": list(payments)}, headers=caller.bearer(role))


def payment(bank_ref: str, amount: int = 200_000, **fields) -> dict:
    return {"date": "2026-02-14", "amount_vnd": amount, "payer": "grab", "reference": f"CK {GRAB_JANUARY}",
            "bank_ref": bank_ref, **fields}


def test_an_insurer_books_a_payment_once_and_a_resend_is_a_duplicate(insurer):
    first = post_payments(insurer, payment("VCB-1"))
    assert first.status_code == 200
    assert first.json()["outcomes"] == [{"bank_ref": "VCB-1", "status": "booked", "payer": "grab",
                                         "amount_vnd": 200_000, "matched_reference": GRAB_JANUARY,
                                         "settled": {GRAB_JANUARY: 200_000}, "credit_vnd": 0,
                                         "booked_month": "2026-02"}]
    again = post_payments(insurer, payment("VCB-1"))
    assert [o["status"] for o in again.json()["outcomes"]] == ["duplicate"]
    account = insurer.client.get("/v1/payers/grab/account", headers=insurer.bearer("insurer")).json()
    assert (account["bills_vnd"], account["payments_vnd"], account["balance_vnd"]) == (200_000, 200_000, 0)


def test_a_batch_with_an_unknown_payer_is_a_422_problem_and_books_nothing(insurer):
    response = post_payments(insurer, payment("VCB-1"), payment("VCB-2", payer="uber"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == ["payment 2 (VCB-2): payer 'uber' is neither a known platform nor 'state' "
                                               "nor 'worker'"]
    assert response.json()["problems"] == [{"code": "unknown_payer", "item": 2, "field": "payer",
                                            "ref": {"shown": "VCB-2"}, "params": {"value": {"shown": "'uber'"}}}]
    account = insurer.client.get("/v1/payers/grab/account", headers=insurer.bearer("insurer")).json()
    assert account["payments_vnd"] == 0


@pytest.mark.parametrize("bad", [{"amount_vnd": 0}, {"amount_vnd": -5}, {"bank_ref": "has space"},
                                 {"date": "14/02/2026"}])
def test_a_malformed_payment_is_a_422_not_a_500(insurer, bad):
    assert post_payments(insurer, {**payment("VCB-1"), **bad}).status_code == 422


def test_the_bills_claim_and_authority_report_of_a_closed_month_agree_with_its_settlement(insurer):
    staff = insurer.bearer("policy")
    settlement = insurer.client.get("/v1/months/2026-01/settlement", headers=staff).json()
    bills = insurer.client.get("/v1/months/2026-01/bills", headers=staff).json()
    assert [(b["payer"], b["kind"], b["amount_vnd"]) for b in bills] == [
        ("grab", "bill", 200_000), ("state", "claim si", 10_000), ("state", "claim ui", 5_000)]
    claim = insurer.client.get("/v1/months/2026-01/claim", headers=staff).json()
    assert claim["schemes"] == settlement["subsidy"] == {"si": 10_000, "oa": 0, "ui": 5_000}
    assert claim["by_province"] == {WORKER_A[:3]: {"si": 10_000, "oa": 0, "ui": 5_000}}
    report = insurer.client.get("/v1/months/2026-01/reports/authority?format=csv", headers=insurer.bearer("insurer"))
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert sum(int(row["total_vnd"]) for row in rows) == settlement["control_total_vnd"] == 215_000
    # One worker in all: the policy role's view (no cell under ANSINH_MIN_CELL_WORKERS = 10) shows nothing.
    assert insurer.client.get("/v1/months/2026-01/reports/authority", headers=staff).json() == []


def test_an_unknown_payer_account_is_a_404(insurer):
    response = insurer.client.get("/v1/payers/uber/account", headers=insurer.bearer("insurer"))
    assert (response.status_code, response.json()["title"]) == (404, "Not Found")


# -- the command line -----------------------------------------------------------------------------

runner = CliRunner()


def test_the_command_line_books_a_bank_statement_and_prints_the_statement_of_account(tmp_path):
    db = f"sqlite:///{tmp_path / 'books.db'}"
    events = tmp_path / "events.ndjson"
    events.write_bytes(orjson.dumps(event("j-1", amount=10_000_000, occurred_at="2026-01-10T09:00:00+07:00")) + b"\n")
    for args in (["ingest", events], ["close", "2026-01"]):
        assert runner.invoke(app, [*map(str, args), "--db", db]).exit_code == 0
    bank = tmp_path / "bank.csv"
    bank.write_text(f"date,amount_vnd,payer,reference,bank_ref\n2026-02-10,150000,grab,{GRAB_JANUARY},VCB-1\n"
                    f"2026-02-10,150000,grab,{GRAB_JANUARY},VCB-1\n", encoding="utf-8")
    booked = runner.invoke(app, ["payments", "import", str(bank), "--json", "--db", db])
    assert booked.exit_code == 0, booked.stderr
    assert [(o["status"], o["credit_vnd"]) for o in orjson.loads(booked.stdout)] == [("booked", 0), ("duplicate", 0)]
    account = runner.invoke(app, ["account", "grab", "--format", "json", "--db", db])
    figures = orjson.loads(account.stdout)
    assert (figures["balance_vnd"], figures["open_items"][0]["outstanding_vnd"]) == (50_000, 50_000)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,amount,payer\n", encoding="utf-8")
    refused = runner.invoke(app, ["payments", "import", str(bad), "--db", db])
    assert refused.exit_code == 1
    assert "the header: date,amount_vnd,payer,reference,bank_ref" in refused.stderr.replace("\n", "")
    contributions = tmp_path / "contributions.csv"
    written = runner.invoke(app, ["report", "contributions", "2026-01", "--output", str(contributions), "--db", db])
    assert written.exit_code == 0
    assert sum(int(row["total_vnd"]) for row in csv.DictReader(contributions.open())) == 215_000
    again = runner.invoke(app, ["report", "contributions", "2026-01", "--output", str(contributions), "--db", db])
    assert again.exit_code == 1  # never overwrites


# -- worker top-ups (RULES.md §11) ------------------------------------------------------------------

def test_an_insurer_books_a_workers_topup_over_http_and_the_worker_sees_it_on_their_statement(insurer):
    assert insurer.post_events([event("f-1", amount=10_000_000, occurred_at="2026-02-10T09:00:00+07:00")]
                               ).status_code == 200
    me = {"Authorization": f"Bearer {insurer.worker_token(WORKER_A)}"}
    before = insurer.client.get("/v1/workers/me/statement?month=2026-02", headers=me).json()
    reference = before["topup_reference"]
    assert reference.startswith("ASW") and WORKER_A not in reference and before["topups_vnd"] == 0
    topup = {"date": "2026-02-20", "amount_vnd": 230_000, "payer": "worker", "reference": f"BHXH {reference}",
             "bank_ref": "VCB-T1"}
    booked = post_payments(insurer, topup, topup)
    assert booked.status_code == 200
    assert [(o["status"], o["payer"], o["matched_reference"], o["booked_month"]) for o in booked.json()["outcomes"]] \
        == [("booked", "worker", reference, "2026-02"), ("duplicate", "worker", None, None)]
    after = insurer.client.get("/v1/workers/me/statement?month=2026-02", headers=me).json()
    assert (after["schemes"]["si"]["worker"], after["topups_vnd"], after["pension"]["month_counts"]) == \
        (330_000, 230_000, True)
    account = insurer.client.get("/v1/payers/grab/account", headers=insurer.bearer("insurer")).json()
    assert account["payments_vnd"] == 0  # a worker's money settles no bill of grab's


def test_a_topup_without_the_workers_reference_is_a_422_naming_the_payment_not_the_memo(insurer):
    response = post_payments(insurer, payment("VCB-1"), {"date": "2026-02-20", "amount_vnd": 1000, "payer": "worker",
                                                          "reference": f"cccd {WORKER_A}", "bank_ref": "VCB-2"})
    assert response.status_code == 422
    assert response.json()["errors"][0].startswith("payment 2: a worker top-up needs the worker's payment reference")
    assert WORKER_A not in response.text


def test_the_command_line_names_the_line_of_a_topup_that_names_no_worker(tmp_path):
    from ledger.books import Ledger
    from ledger.money import topup_reference

    db = f"sqlite:///{tmp_path / 'books.db'}"
    events = tmp_path / "events.ndjson"
    events.write_bytes(orjson.dumps(event("f-1", amount=10_000_000, occurred_at="2026-02-10T09:00:00+07:00")) + b"\n")
    assert runner.invoke(app, ["ingest", str(events), "--db", db]).exit_code == 0
    shown = orjson.loads(runner.invoke(app, ["statement", WORKER_A, "2026-02", "--json", "--db", db]).stdout)
    books = Ledger.open(db)
    nobody = topup_reference(books.keys, 77)  # right check digits, no worker 77
    books.close()
    bank = tmp_path / "bank.csv"
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n"
                    f"2026-02-20,230000,worker,{shown['topup_reference']},VCB-T1\n"
                    f"2026-02-21,1000,worker,{nobody},VCB-T2\n", encoding="utf-8")
    refused = runner.invoke(app, ["payments", "import", str(bank), "--db", db])
    assert refused.exit_code == 1
    assert "line 3 (VCB-T2): the top-up reference names no worker of these books" in refused.stderr.replace("\n", " ")
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n"
                    f"2026-02-20,230000,worker,{shown['topup_reference']},VCB-T1\n", encoding="utf-8")
    booked = runner.invoke(app, ["payments", "import", str(bank), "--db", db])
    assert booked.exit_code == 0 and "top-up" in booked.stdout
    text = runner.invoke(app, ["statement", WORKER_A, "2026-02", "--lang", "en", "--db", db]).stdout
    assert "Your top-ups" in text and "230.000 ₫" not in text and "230,000 VND" in text
    assert shown["topup_reference"] in text

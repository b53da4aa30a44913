"""The insurer's bank-statement import page and the worker's "who paid" table, through TestClient.

The browser test (tests/web/test_screens.py) books the vectors' statement and compares it with
the CLI; here the guards of the import: the roles of `POST /v1/payments`, the same-origin check of
every form, the previewed bytes only, the size bound, every bad line named and nothing booked.
And the worker's table of who paid, in a month with two platforms, a top-up and the state's
top-up: its rows add up to the month's line, which is the sum of the scheme lines.
"""
from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import date

import pytest

from api.i18n import format_statement
from api.web.pages import BANK_CSV_BYTES_MAX
from ledger.close import close_month
from ledger.money import PaymentIn, account_statement, bill_reference, record_payments
from ledger.reports import statement
from tests.api.conftest import caller  # noqa: F401 - the HTTP client fixture, with tokens for every role
from tests.ledger.factories import WORKER_A, event

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

GRAB_JANUARY = bill_reference(202601, 1)
HEADER = "date,amount_vnd,payer,reference,bank_ref\n"


@pytest.fixture
def books(caller):  # noqa: F811
    """January closed: grab's bill of 200,000 (a 10,000,000 ride); the clock at 1 June 2026."""
    assert caller.post_events([event("j-1", amount=10_000_000,
                                     occurred_at="2026-01-10T09:00:00+07:00")]).status_code == 200
    assert caller.client.post("/v1/months/2026-01/close", headers=caller.bearer("insurer")).status_code == 200
    return caller


def preview(books, text: str, role: str = "insurer", **headers: str):
    return books.client.post("/insurer/payments/preview", files={"file": ("bank.csv", text.encode(), "text/csv")},
                             headers={**books.bearer(role), **headers})


def hidden(html: str, name: str) -> str:
    return re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', html).group(1)


def grab_payments(books) -> int:
    return account_statement(books.services.ledger, "grab")["payments_vnd"]


def test_a_preview_books_nothing_and_its_confirmation_books_the_statement_once(books):
    answer = preview(books, HEADER + f"2026-02-10,150000,grab,CK {GRAB_JANUARY},VCB-1\n")
    assert answer.status_code == 200
    assert 'data-lines="1" data-booked="1" data-booked-vnd="150000"' in answer.text
    assert grab_payments(books) == 0

    form = {"data": hidden(answer.text, "data"), "sha256": hidden(answer.text, "sha256")}
    booked = books.client.post("/insurer/payments", data=form, headers=books.bearer("admin"))
    assert booked.status_code == 200 and 'data-booked="1" data-booked-vnd="150000"' in booked.text
    assert grab_payments(books) == 150_000
    again = books.client.post("/insurer/payments", data=form, headers=books.bearer("insurer"))
    assert 'data-booked="0"' in again.text and grab_payments(books) == 150_000  # a duplicate, as in the CLI


def test_only_insurers_and_admins_import_and_only_from_this_site(books):
    text = HEADER + "2026-02-10,150000,grab,x,VCB-1\n"
    assert books.client.get("/insurer/payments", headers=books.bearer("admin")).status_code == 200
    for role in ("policy", "worker"):
        assert books.client.get("/insurer/payments", headers=books.bearer(role)).status_code == 403
        assert preview(books, text, role).status_code == 403
    assert preview(books, text, origin="https://elsewhere.example").status_code == 403
    digest = hashlib.sha256(text.encode()).hexdigest()
    refused = books.client.post("/insurer/payments", headers={**books.bearer("insurer"), "origin": "https://x.example"},
                                data={"data": base64.b64encode(text.encode()).decode(), "sha256": digest})
    assert refused.status_code == 403 and grab_payments(books) == 0
    signed_out = books.client.post("/insurer/payments/preview", files={"file": ("bank.csv", text.encode())},
                                   follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/signin")


def test_a_confirmation_of_other_bytes_than_those_previewed_books_nothing(books):
    text = HEADER + "2026-02-10,150000,grab,x,VCB-1\n"
    changed = text.replace("150000", "950000")
    for data, digest in ((base64.b64encode(changed.encode()).decode(), hashlib.sha256(text.encode()).hexdigest()),
                         ("not base64!", hashlib.sha256(b"").hexdigest()), ("", "")):
        answer = books.client.post("/insurer/payments?lang=en", data={"data": data, "sha256": digest},
                                   headers=books.bearer("insurer"))
        assert answer.status_code == 422
        assert "What came back is not the file previewed; nothing was booked." in answer.text
    assert grab_payments(books) == 0


def bank_errors(page: str) -> list[str]:
    return [html.unescape(error) for error in re.findall(
        r"<li>([^<]*)</li>", re.search(r'id="bank-errors">(.*?)</div>', page, re.S).group(1))]


def test_every_bad_line_is_named_by_its_line_and_nothing_of_the_file_is_booked(books):
    answer = preview(books, HEADER + "2026-02-10,12a,grab,x,VCB-1\n"
                                     "2026-02-11,1000,grab,x,VCB-2\n"
                                     "2026-02-12,1000,grab,x,\n")
    assert answer.status_code == 422
    assert [error.split(":")[0] for error in bank_errors(answer.text)] == ["dòng 2", "dòng 4"]
    assert "Không khoản nào được ghi: 2 lỗi" in answer.text

    unknown = preview(books, HEADER + "2026-02-11,1000,grab,x,VCB-2\n2026-02-12,1000,uber,x,VCB-3\n")
    assert unknown.status_code == 422
    assert bank_errors(unknown.text) == ["dòng 3 (VCB-3): payer 'uber' không phải nền tảng đã biết, cũng không phải "
                                         "'state' hay 'worker'"]
    assert grab_payments(books) == 0  # line 2 was good, and is not booked either


BAD_BANK = HEADER + f"2026-02-10,1.5,grab,x,VCB-1\n2026-02-11,1000,grab,x,VCB-2\n{WORKER_A},1000,grab,x,VCB-3\n"
BANK_SAID = {  # line 2: an amount that is no whole number; line 4: a date column holding a citizen id
    "vi": ["dòng 2: amount_vnd phải là số nguyên VND từ 1 đến 1.000.000.000.000.000, nhận được '1.5'",
           "dòng 4: date phải là ngày dạng YYYY-MM-DD, nhận được một số có 12 chữ số (không hiển thị)"],
    "en": ["line 2: amount_vnd must be a whole number of VND between 1 and 1,000,000,000,000,000, got '1.5'",
           "line 4: date must be YYYY-MM-DD, got a 12-digit number (not shown)"]}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_bad_bank_statement_is_refused_in_the_pages_language_by_line_without_the_id(books, lang):
    for step in ("/insurer/payments/preview", "/insurer/payments"):
        form = {"files": {"file": ("bank.csv", BAD_BANK.encode(), "text/csv")}} if step.endswith("preview") else \
            {"data": {"data": base64.b64encode(BAD_BANK.encode()).decode(),
                      "sha256": hashlib.sha256(BAD_BANK.encode()).hexdigest()}}
        answer = books.client.post(f"{step}?lang={lang}", headers=books.bearer("insurer"), **form)
        assert answer.status_code == 422, step
        assert bank_errors(answer.text) == BANK_SAID[lang], step
        assert WORKER_A not in answer.text and WORKER_A[:9] not in answer.text
    assert grab_payments(books) == 0


BAD_TIERS = (f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n{WORKER_A},rich,2026-01\n"
             f"{WORKER_A},poor,{WORKER_A}\n")
TIERS_SAID = {
    "vi": ["dòng 3: hạng 'rich' không có trong vn-pilot@2026-01-01 (các hạng có: near_poor, other, poor)",
           "dòng 4: valid_from phải có dạng YYYY-MM, nhận được một số có 12 chữ số (không hiển thị)"],
    "en": ["line 3: tier 'rich' is unknown to vn-pilot@2026-01-01 (known: near_poor, other, poor)",
           "line 4: valid_from must be YYYY-MM, got a 12-digit number (not shown)"]}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_bad_tiers_file_is_refused_on_the_admin_page_in_its_language_by_line_without_the_id(books, lang):
    answer = books.client.post(f"/admin/households?lang={lang}", headers=books.bearer("admin"),
                               files={"file": ("tiers.csv", BAD_TIERS.encode(), "text/csv")})
    assert answer.status_code == 422
    shown = re.search(r'id="import-errors"><p>([^<]*)</p>\s*<ul>(.*?)</ul>', answer.text, re.S)
    assert shown.group(1) == {"vi": "Không dòng nào được nhập. Lỗi:", "en": "Nothing was imported. Errors:"}[lang]
    assert [html.unescape(error) for error in re.findall(r"<li>([^<]*)</li>", shown.group(2))] == TIERS_SAID[lang]
    assert WORKER_A not in answer.text and WORKER_A[:9] not in answer.text
    headerless = books.client.post(f"/admin/households?lang={lang}", headers=books.bearer("admin"),
                                   data={"csv_text": f"{WORKER_A},poor,2026-01\n"})
    assert headerless.status_code == 422 and WORKER_A not in headerless.text
    assert {"vi": "dòng 1: tiêu đề: thiếu các cột national_id, tier, valid_from; các cột không rõ một số có 12 chữ số",
            "en": "line 1: header: missing columns national_id, tier, valid_from; unknown columns a 12-digit number"
            }[lang] in html.unescape(headerless.text)


def test_a_file_over_1_mib_is_refused_and_an_empty_form_is_told_so(books):
    big = HEADER + "2026-02-10,1000,grab,x,VCB-1\n" * (BANK_CSV_BYTES_MAX // 28 + 1)
    assert preview(books, big).status_code == 413
    empty = books.client.post("/insurer/payments/preview?lang=en", data={"csv_text": ""},
                              headers=books.bearer("insurer"))
    assert empty.status_code == 422 and "No file was chosen and nothing was pasted." in empty.text


def test_a_pasted_statement_is_previewed_like_an_uploaded_one(books):
    answer = books.client.post("/insurer/payments/preview", data={"csv_text": HEADER + "2026-02-10,5000,grab,x,VCB-9\n"},
                               headers=books.bearer("insurer"))
    assert answer.status_code == 200 and 'data-booked-vnd="5000"' in answer.text


def vnd(html: str, selector: str) -> list[int]:
    """data-vnd of the cells with data-col=`selector` inside the table #paid-by, by row."""
    table = re.search(r'<table class="stack" id="paid-by".*?</table>', html, re.S).group(0)
    return [int(value) for value in re.findall(rf'data-col="{selector}" data-vnd="(-?\d+)"', table)]


def test_the_workers_who_paid_table_adds_up_to_the_three_schemes_with_a_top_up_and_the_state(books):
    ledger = books.services.ledger
    reference = statement(ledger, WORKER_A, "2026-02")["topup_reference"]
    assert books.post_events([event("f-1", amount=2_000_000, occurred_at="2026-02-10T09:00:00+07:00")]).status_code == 200
    assert books.post_events([event("f-2", platform="be", amount=500_000, occurred_at="2026-02-11T09:00:00+07:00")],
                             key=books.be).status_code == 200
    record_payments(ledger, [PaymentIn(date(2026, 2, 20), 60_000, "worker", f"NOP {reference}", "VCB-T1")])
    close_month(ledger, "2026-02")
    report = statement(ledger, WORKER_A, "2026-02")
    html = books.client.get("/?month=2026-02", headers={"Authorization": f"Bearer {books.worker_token(WORKER_A)}"}).text

    worker, platform, total = (vnd(html, col) for col in ("worker", "platform", "total"))
    # rows: be, grab, the top-up, then the month's line; totals also have the state's line before it
    assert len(worker) == len(platform) == 4 and len(total) == 5
    assert worker[2] == report["topups_vnd"] == 60_000 and platform[2] == 0
    assert sum(worker[:-1]) == worker[-1] == sum(line["worker"] for line in report["schemes"].values())
    assert sum(platform[:-1]) == platform[-1] == sum(line["platform"] for line in report["schemes"].values())
    subsidy = sum(line["subsidy"] for line in report["schemes"].values())
    assert subsidy > 0 and total[3] == subsidy
    assert sum(total[:-1]) == total[-1] == sum(line["total"] for line in report["schemes"].values())
    printed = books.client.get("/me/statement/print?month=2026-02",
                               headers={"Authorization": f"Bearer {books.worker_token(WORKER_A)}"}).text
    assert vnd(printed, "total") == total  # the printable statement shows the same reconciled table
    # `ansinh statement`'s text: the lines under "By platform" add up to its last line, the month's total.
    text = format_statement(report, "en").split("By platform:\n")[1].split("\n\n")[0].splitlines()
    figures = [int(re.sub(r"\D", "", line.rsplit("  ", 1)[-1])) for line in text]
    assert [line.split()[0] for line in text] == ["Be", "Grab", "Your", "State", "The"]
    assert sum(figures[:-1]) == figures[-1] == total[-1]


def test_a_tiers_file_over_8_mib_is_refused_in_the_pages_language(books):
    from api.web.pages import HOUSEHOLD_CSV_BYTES_MAX

    big = b"national_id,tier,valid_from\n" + b"x" * HOUSEHOLD_CSV_BYTES_MAX
    said = {}
    for lang in ("vi", "en"):
        answer = books.client.post(f"/admin/households?lang={lang}", headers=books.bearer("admin"),
                                   files={"file": ("tiers.csv", big, "text/csv")})
        assert answer.status_code == 413
        said[lang] = re.search(r'id="import-errors">.*?<li>([^<]*)</li>', answer.text, re.S).group(1)
    assert said == {"vi": "Tệp lớn hơn 8 MB: hãy dùng lệnh ansinh tiers import.",
                    "en": "The file is larger than 8 MB: use the ansinh tiers import command."}

"""The money side of settlement on the insurer's pages: bills of a closed month, statements of account.

Server-rendered HTML read through TestClient (no browser needed). The worked case: one grab
ride of 10,000,000 VND in January 2026 (platform dues 200,000 VND; the state claims si 10,000
and ui 5,000), January closed, 150,000 VND received on 2026-02-10 with the bill's reference in
the memo. The clock stands at 1 June 2026, so the bill (due 15 February 2026) is 106 days overdue.
Every figure on a page is compared with the number written out here and with the JSON route
that calls the same ledger function.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from html import unescape

import pytest

from ledger.money import PaymentIn, bill_reference, claim_reference, record_payments
from tests.api.conftest import caller  # noqa: F401 - the HTTP client fixture, with tokens for every role
from tests.ledger.factories import event

# The pages call the same functions as the JSON routes, whose tests run on both stores.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

GRAB_JANUARY = bill_reference(202601, 1)
STATE_JANUARY = claim_reference(202601)
PAGE_BYTES_MAX = 16 * 1024


@pytest.fixture
def books(caller):  # noqa: F811
    """January closed with grab's 200,000 bill; 150,000 of it paid."""
    assert caller.post_events([event("j-1", amount=10_000_000,
                                     occurred_at="2026-01-10T09:00:00+07:00")]).status_code == 200
    assert caller.client.post("/v1/months/2026-01/close", headers=caller.bearer("insurer")).status_code == 200
    outcomes = record_payments(caller.services.ledger, [
        PaymentIn(date(2026, 2, 10), 150_000, "grab", f"CK {GRAB_JANUARY}", "VCB-1")])
    assert [o.status for o in outcomes] == ["booked"]
    return caller


def page(books, path: str, role: str = "insurer"):
    response = books.client.get(path, headers=books.bearer(role))
    assert response.status_code == 200, response.text[:500]
    assert len(response.content) < PAGE_BYTES_MAX
    return response.text


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no #{element_id}"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def vnd_of(html: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}"[^>]*data-vnd="(-?\d+)"', html)
    assert found, f"no #{element_id} with data-vnd"
    return int(found.group(1))


def row_of(html: str, table_id: str, selector: str) -> list[str]:
    """The cell texts of the first row of table #table_id whose <tr> carries `selector` (an attribute text)."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    row = re.search(rf"<tr [^>]*{re.escape(selector)}[^>]*>(.*?)</tr>", table, re.S)
    assert row, f"no row {selector} in #{table_id}"
    return [unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


def balances_of(html: str) -> list[int]:
    table = re.search(r'<table id="account-lines">(.*?)</table>', html, re.S).group(1)
    return [int(amount) for amount in re.findall(r'data-vnd="(-?\d+)"', table)]


def test_grab_s_statement_of_account_shows_a_balance_of_50_000_after_150_000_paid_on_a_200_000_bill(books):
    html = page(books, "/insurer/accounts/grab?lang=vi")

    assert text_of(html, "balance") == "50.000 ₫"
    assert {key: vnd_of(html, key) for key in ("total-bills", "total-interest", "total-payments", "balance",
                                                "credit", "arrears", "unbilled")} == {
        "total-bills": 200_000, "total-interest": 0, "total-payments": 150_000, "balance": 50_000,
        "credit": 0, "arrears": 50_000, "unbilled": 0}
    assert "<h1>Sao kê công nợ: Grab</h1>" in html  # the registry's name (ledger/platforms.yaml)
    assert text_of(html, "as-of") == "Tính đến ngày 01/06/2026."
    assert balances_of(html) == [200_000, 50_000]  # the running balance: the bill, then the payment
    assert row_of(html, "open-items", f'data-reference="{GRAB_JANUARY}"') == [
        GRAB_JANUARY, "Hóa đơn", "Tháng 1/2026", "15/02/2026", "200.000 ₫", "50.000 ₫", "106"]
    assert 'id="unmatched"' not in html  # the memo named the bill


def test_the_statement_of_account_in_english_shows_the_same_50_000_balance(books):
    html = page(books, "/insurer/accounts/grab?lang=en")

    assert '<html lang="en">' in html
    assert "<h1>Statement of account: Grab</h1>" in html
    assert text_of(html, "balance") == "50,000 VND"
    assert text_of(html, "total-bills") == "200,000 VND"
    assert text_of(html, "total-payments") == "150,000 VND"
    assert row_of(html, "open-items", f'data-reference="{GRAB_JANUARY}"')[1:] == [
        "Bill", "January 2026", "15 Feb 2026", "200,000 VND", "50,000 VND", "106"]
    assert row_of(html, "account-lines", 'data-kind="payment"') == [
        "10 Feb 2026", "Payment", "February 2026", "VCB-1", "", "150,000 VND", "50,000 VND"]


def test_the_page_shows_the_figures_of_get_v1_payers_grab_account(books):
    api = books.client.get("/v1/payers/grab/account", headers=books.bearer("insurer")).json()
    html = page(books, "/insurer/accounts/grab")

    assert (vnd_of(html, "balance"), vnd_of(html, "arrears")) == (api["balance_vnd"], api["arrears_vnd"]) \
        == (50_000, 50_000)
    assert balances_of(html) == [line["balance_vnd"] for line in api["lines"]]


def test_the_csv_download_is_the_same_bytes_as_the_api_s_statement_of_account(books):
    api = books.client.get("/v1/payers/grab/account?format=csv", headers=books.bearer("insurer"))
    download = books.client.get("/insurer/accounts/grab.csv", headers=books.bearer("admin"))

    assert download.status_code == 200
    assert download.content == api.content
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == 'attachment; filename="account-grab.csv"'
    assert download.text.splitlines()[-1].split(",")[-1] == "50000"  # the last running balance
    assert 'href="/insurer/accounts/grab.csv"' in page(books, "/insurer/accounts/grab")


def test_an_unpaid_payment_memo_without_a_reference_is_listed_as_unmatched(books):
    record_payments(books.services.ledger, [PaymentIn(date(2026, 3, 2), 30_000, "grab", "thanh toan", "VCB-2")])
    html = page(books, "/insurer/accounts/grab")

    assert vnd_of(html, "balance") == 20_000  # 200,000 − 150,000 − 30,000, applied to the oldest bill
    assert re.search(r'<ul id="unmatched"><li><code>VCB-2</code></li></ul>', html)


def test_the_state_s_account_shows_its_15_000_claim_under_both_of_its_names(books):
    for payer in ("state", "state_budget"):
        html = page(books, f"/insurer/accounts/{payer}?lang=en")
        assert "<h1>Statement of account: State budget</h1>" in html
        assert (vnd_of(html, "total-bills"), vnd_of(html, "balance"), vnd_of(html, "unbilled")) == (15_000, 15_000, 0)
        assert row_of(html, "open-items", 'data-kind="claim si"')[1:5] == [
            "State claim – Voluntary social insurance (pension)", "January 2026", "15 Feb 2026", "10,000 VND"]


def test_the_january_settlement_lists_grab_s_200_000_bill_with_50_000_outstanding_linked_to_its_account(books):
    html = page(books, "/insurer/months/2026-01?lang=vi")

    assert row_of(html, "bills", 'data-payer="grab"') == [
        "Grab", "Hóa đơn", GRAB_JANUARY, "15/02/2026", "200.000 ₫", "50.000 ₫"]
    assert '<a href="/insurer/accounts/grab">Grab</a>' in html
    assert row_of(html, "bills", 'data-kind="claim ui"') == [
        "Ngân sách nhà nước", "Đề nghị cấp hỗ trợ – Bảo hiểm thất nghiệp", STATE_JANUARY, "15/02/2026", "5.000 ₫",
        "5.000 ₫"]
    assert '<a href="/insurer/accounts/state">' in html
    assert (vnd_of(html, "bills-amount"), vnd_of(html, "bills-outstanding")) == (215_000, 65_000)


def test_the_settlement_s_bills_in_english_total_215_000(books):
    html = page(books, "/insurer/months/2026-01?lang=en")

    assert text_of(html, "bills-heading") == "Bills and payments"
    assert text_of(html, "bills-amount") == "215,000 VND"
    assert row_of(html, "bills", 'data-payer="grab"')[1:] == ["Bill", GRAB_JANUARY, "15 Feb 2026", "200,000 VND",
                                                             "50,000 VND"]


def test_an_open_month_shows_a_note_instead_of_bills(books):
    assert books.post_events([event("f-1", amount=1_000_000)]).status_code == 200
    html = page(books, "/insurer/months/2026-02?lang=en")

    assert text_of(html, "bills-note") == "Bills are issued when a month is closed; this month is still open."
    assert 'id="bills"' not in html
    # What February will bill (1,000,000 × 2 %) shows on grab's account as not yet billed.
    assert vnd_of(page(books, "/insurer/accounts/grab"), "unbilled") == 20_000


def test_a_policy_analyst_sees_the_bills_without_links_and_may_not_open_an_account(books):
    html = page(books, "/insurer/months/2026-01", role="policy")

    assert row_of(html, "bills", 'data-payer="grab"')[4:] == ["200.000 ₫", "50.000 ₫"]
    assert "/insurer/accounts/" not in html
    for path in ("/insurer/accounts/grab", "/insurer/accounts/grab.csv"):
        assert books.client.get(path, headers=books.bearer("policy")).status_code == 403


@pytest.mark.parametrize("lang, heading, message", [("vi", "Lỗi", "Không có bên trả “uber” trong sổ."),
                                                    ("en", "Error", "No payer “uber” in these books.")])
def test_an_unknown_payer_is_the_site_s_404_page_in_the_reader_s_language(books, lang, heading, message):
    for path in (f"/insurer/accounts/uber?lang={lang}", f"/insurer/accounts/uber.csv?lang={lang}"):
        response = books.client.get(path, headers=books.bearer("insurer"))
        assert response.status_code == 404
        assert f"<h1>{heading}</h1>" in response.text
        assert message in unescape(response.text)
    malformed = books.client.get("/insurer/accounts/a%20b", headers=books.bearer("insurer"))
    assert malformed.status_code == 404


def test_a_platform_17_months_in_arrears_gets_a_page_under_16_kb_with_its_latest_24_lines(caller):  # noqa: F811
    caller.services.ledger.clock.moment = datetime(2027, 6, 1, tzinfo=timezone.utc)
    months = [f"{2026 + number // 12}-{number % 12 + 1:02d}" for number in range(17)]  # 2026-01 … 2027-05
    for month in months:
        assert caller.post_events([event(f"e-{month}", amount=10_000_000,
                                         occurred_at=f"{month}-10T09:00:00+07:00")]).status_code == 200
        assert caller.client.post(f"/v1/months/{month}/close", headers=caller.bearer("insurer")).status_code == 200
    api = caller.client.get("/v1/payers/grab/account", headers=caller.bearer("insurer")).json()
    html = page(caller, "/insurer/accounts/grab?lang=en")  # asserts < 16 KB

    assert (len(api["lines"]), len(api["open_items"])) == (153, 153)  # 17 bills and 136 interest charges
    assert vnd_of(html, "balance") == api["balance_vnd"] == 17 * 200_000 + api["interest_vnd"] == 3_630_533
    assert text_of(html, "lines-shown") == "Showing the latest 24 of 153 lines; the CSV has them all."
    assert text_of(html, "items-shown") == "Showing the oldest 12 of 153 open items."
    assert balances_of(html) == [line["balance_vnd"] for line in api["lines"][-24:]]
    csv_download = caller.client.get("/insurer/accounts/grab.csv", headers=caller.bearer("insurer"))
    assert len(csv_download.text.splitlines()) == 1 + 153

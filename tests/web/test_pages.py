"""The pages in a real browser: Debian's Chromium against `ansinh serve` over the public vectors.

Every figure a test reads off a page is compared with the vectors' expected files or
with the CLI run on the same books; screenshots at phone (360 px) and desktop
(1280 px) widths go to tests/web/artifacts/.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from playwright.sync_api import expect

from api.web.texts import money
from rules.names import scheme_name
from tests.web.conftest import VECTORS

WORKER = "001204167142"  # in every month of the vectors, tier "other" from 2026-01
OTHER_WORKER = "064071665699"
MONTH = "2026-02"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"  # axe-core, vendored (MPL-2.0)
OPEN_MONTH = "2026-04"  # booked by batch4, not closed by steps.txt
WIDTHS = {"phone": (360, 780), "desktop": (1280, 900)}
TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")


def expected_statement(national_id: str, month: str) -> dict:
    for line in (VECTORS / "statements.ndjson").read_text().splitlines():
        record = json.loads(line)
        if record["national_id"] == national_id and record["month"] == month:
            return record
    raise AssertionError(f"no expected statement for {national_id} {month}")


def expected_settlement(month: str) -> dict:
    for line in (VECTORS / "settlements.ndjson").read_text().splitlines():
        record = json.loads(line)
        if record["month"] == month:
            return record
    raise AssertionError(f"no expected settlement for {month}")


def sign_in_worker(page, base: str, national_id: str) -> None:
    page.goto(base + "/signin")
    page.fill("#national_id", national_id)
    page.click("#signin-worker button[type=submit]")
    page.wait_for_url(base + "/")


def sign_in_staff(page, base: str, role: str) -> None:
    page.goto(base + "/signin")
    page.select_option("#role", role)
    page.click("#signin-staff button[type=submit]")
    page.wait_for_load_state()


def shoot(page, artifacts: Path, name: str) -> None:
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=True)


def test_a_worker_signs_in_and_sees_the_exact_figures_of_the_public_vectors(served_readonly, browser_context, artifacts):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.select_option("#month", MONTH)
    page.click(".month-pick button")
    page.wait_for_url(re.compile(r"month=2026-02"))

    expected = expected_statement(WORKER, MONTH)
    shown = {(scheme, part): page.text_content(f"[data-testid={scheme}-{part}]")
             for scheme in ("si", "oa", "ui") for part in ("worker", "platform", "subsidy", "total")}
    assert shown == {(scheme, part): money(expected["schemes"][scheme][part])
                     for scheme in ("si", "oa", "ui") for part in ("worker", "platform", "subsidy", "total")}
    assert {scheme: page.text_content(f"[data-testid={scheme}-to-date]") for scheme in ("si", "oa", "ui")} == \
        {scheme: money(amount) for scheme, amount in expected["to_date"].items()}
    assert shown[("si", "worker")] == "23.793 ₫"  # the vectors' figure, written out once
    assert page.text_content("#month-status") == "đã chốt sổ"
    assert page.text_content("#masked-id") == "001******142"
    assert page.get_attribute("html", "lang") == "vi"
    assert page.locator("#history-chart rect").count() >= 3 * 4  # three parts a month, four months
    assert page.get_attribute("#pension-bar", "max") == "180"
    assert not TWELVE_DIGITS.search(page.url)

    with page.expect_download() as download_info:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8-sig"))))
    assert {row["Quỹ"]: int(row["Cộng (₫)"]) for row in rows} == \
        {scheme_name(scheme): line["total"] for scheme, line in expected["schemes"].items()}
    shoot(page, artifacts, "worker")
    page.set_viewport_size({"width": 360, "height": 780})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "worker-phone-fold.png"))  # the first screen, for README
    page.click("#print-link")
    expect(page.locator("h1")).to_have_text("Sao kê đóng góp tháng 2/2026")
    shoot(page, artifacts, "worker-print")


def test_english_is_one_switch_away_and_the_choice_is_remembered(served_readonly, browser_context):
    page = browser_context().new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.click("text=English")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(served_readonly.base + f"/?month={MONTH}")  # no lang parameter: the cookie keeps English

    assert page.get_attribute("html", "lang") == "en"
    assert page.text_content("#month-status") == "closed"
    assert page.text_content("[data-testid=si-worker]") == "23,793 VND"


def test_another_workers_data_is_unreachable(served_readonly, browser_context):
    mine = expected_statement(WORKER, MONTH)
    theirs = expected_statement(OTHER_WORKER, MONTH)
    assert mine["schemes"]["si"]["worker"] != theirs["schemes"]["si"]["worker"]
    context = browser_context()
    page = context.new_page()
    sign_in_worker(page, served_readonly.base, WORKER)

    # No page takes a national id: an attempt to name another worker is ignored.
    page.goto(served_readonly.base + f"/?month={MONTH}&national_id={OTHER_WORKER}&worker_id={OTHER_WORKER}")
    assert page.text_content("[data-testid=si-worker]") == money(mine["schemes"]["si"]["worker"])
    assert page.text_content("#masked-id") == "001******142"
    assert "064******699" not in page.content()
    # The JSON API takes only the Authorization header, never the page cookie.
    assert context.request.get(served_readonly.base + "/v1/workers/me/history").status == 401
    # Staff pages and downloads refuse a worker's session.
    for path in ("/insurer", f"/insurer/months/{MONTH}", f"/insurer/months/{MONTH}/settlement.csv", "/policy",
                 "/admin"):
        assert context.request.get(served_readonly.base + path, max_redirects=0).status == 403, path

    other = browser_context().new_page()
    sign_in_worker(other, served_readonly.base, OTHER_WORKER)
    other.goto(served_readonly.base + f"/?month={MONTH}")
    assert other.text_content("[data-testid=si-worker]") == money(theirs["schemes"]["si"]["worker"])


def test_without_a_session_every_page_sends_the_browser_to_sign_in(served_readonly, browser_context):
    request = browser_context().request
    for path in ("/", "/insurer", "/policy", "/admin", "/me/statement.csv"):
        response = request.get(served_readonly.base + path, max_redirects=0)
        assert response.status == 303 and response.headers["location"].startswith("/signin"), path


def test_an_insurer_closes_a_month_and_downloads_the_settlement_the_cli_prints(served, browser_context, artifacts):
    page = browser_context().new_page()
    sign_in_staff(page, served.base, "insurer")
    assert page.url == served.base + "/insurer"
    assert page.text_content(f"tr[data-month='{OPEN_MONTH}'] .badge") == "đang mở"
    page.click(f"a[data-close='{OPEN_MONTH}']")
    expect(page.locator("ol.steps li")).to_have_count(3)  # what closing will do, before it is done
    shoot(page, artifacts, "insurer-close-confirm")
    page.click("#confirm-close")
    page.wait_for_selector("#closed-notice")

    cli_report = json.loads(served.cli("settlement", OPEN_MONTH, "--json"))
    assert cli_report["status"] == "final"
    assert page.text_content("#settlement-status") == "chính thức"
    assert int(page.get_attribute("#control-total", "data-vnd")) == cli_report["control_total_vnd"]
    assert page.text_content("#postings-hash") == cli_report["postings_sha256"]
    # Platform dues are the vectors' own (a close adds the state's part only).
    assert cli_report["platforms"] == expected_settlement(OPEN_MONTH)["platforms"]
    with page.expect_download() as download_info:
        page.click("#download-settlement-csv")
    lines = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    by_payer = {(line["name"], line["scheme"]): int(line["amount_vnd"]) for line in lines if line["payer"] != "control_total"}
    control = [line for line in lines if line["payer"] == "control_total"]
    assert by_payer == {**{(name, scheme): amount for name, dues in cli_report["platforms"].items()
                           for scheme, amount in dues.items()},
                        **{("state_budget", scheme): amount for scheme, amount in cli_report["subsidy"].items()}}
    assert [(int(line["amount_vnd"]), line["name"]) for line in control] == \
        [(cli_report["control_total_vnd"], cli_report["postings_sha256"])]
    with page.expect_download() as parquet_info:
        page.click("#download-settlement-parquet")
    assert Path(parquet_info.value.path()).read_bytes()[:4] == b"PAR1"
    shoot(page, artifacts, "insurer-settlement")
    page.goto(served.base + "/insurer")
    assert page.text_content(f"tr[data-month='{OPEN_MONTH}'] .badge") == "đã chốt"
    shoot(page, artifacts, "insurer")


POLICY_JOB_MS_MAX = 180_000  # a 1,500-worker year runs in seconds; a busy shared machine takes longer


def test_a_policy_analyst_runs_a_reform_and_sees_the_chart(served_readonly, browser_context, artifacts):
    page = browser_context().new_page()
    sign_in_staff(page, served_readonly.base, "policy")
    assert page.url == served_readonly.base + "/policy"
    page.fill("#workers", "1500")
    page.fill("#horizon_months", "12")
    page.fill("[id='tiers.poor']", "50")
    page.fill("[id='tiers.near_poor']", "40")
    page.click("#run")
    # A background job (simulations/jobs.py): its page shows the progress, polls, and shows the result.
    page.wait_for_url(re.compile(r".*/policy/jobs/[0-9a-f]{16}$"))
    job_url = page.url
    page.wait_for_selector("#chart-budget", timeout=POLICY_JOB_MS_MAX)

    assert page.locator("#chart-budget rect").count() == 2  # one year, two arms
    assert page.locator("#chart-deciles rect").count() == 10
    subsidy = page.locator("#summary tr[data-key=subsidy_vnd] td")
    baseline, reform = (int(re.sub(r"\D", "", subsidy.nth(i).text_content())) for i in (0, 1))
    assert reform > baseline > 0  # higher top-ups for poor and near-poor households cost more
    assert page.locator("#summary tr[data-key=worker_vnd] td").nth(2).text_content() == "0 ₫"  # rates unchanged
    assert len(page.text_content("#results-sha")) == 64
    # The brief leads: national figures weighted to the calibrated totals, in words, without codes.
    lines = page.locator("#brief li").all_text_contents()
    assert lines[0].startswith("Chi ngân sách nhà nước") and "₫ [" in lines[0] and "mỗi năm" in lines[0]
    assert not any(re.search(r"\b[a-z]+_[a-z_]+\b", line) for line in lines)
    assert page.locator("#validation-targets tbody tr").count() == 17  # every figure of targets-vn.yaml
    assert "national estimate, weighted" in page.text_content("#summary caption") or \
        "ước tính cả nước, có trọng số" in page.text_content("#summary caption")
    shoot(page, artifacts, "policy")
    page.reload()  # the finished job is kept: a reload shows the same result
    assert page.url == job_url and len(page.text_content("#results-sha")) == 64
    page.goto(served_readonly.base + "/policy")
    assert page.locator(f"#jobs-table tr[data-job='{job_url.rsplit('/', 1)[1]}'][data-status=done]").count() == 1
    page.goto(job_url)
    page.wait_for_selector("#download-report", timeout=POLICY_JOB_MS_MAX)  # made after the result: the page polls
    with page.expect_download() as report_info:
        page.click("#download-report")
    assert "<img" in Path(report_info.value.path()).read_text()  # the simulator's report with its PNG charts


def test_an_administrator_gets_line_numbered_errors_and_issues_and_revokes_a_key(served, browser_context,
                                                                                   artifacts):
    page = browser_context().new_page()
    sign_in_staff(page, served.base, "admin")
    page.fill("#csv_text", f"national_id,tier,valid_from\n{WORKER},poor,2026-05\n{WORKER},rich,2026-05\n12,poor,2026-5\n")
    page.click("#import")
    expect(page.locator("#import-errors li")).to_have_count(2)
    errors = page.locator("#import-errors li").all_text_contents()
    assert [error.split(":")[0] for error in errors] == ["dòng 3", "dòng 4"]  # the page's language (issue 17)
    assert errors[0].startswith("dòng 3: hạng 'rich' không có trong")
    assert not any(TWELVE_DIGITS.search(error) for error in errors)
    page.fill("#csv_text", f"national_id,tier,valid_from\n{WORKER},poor,2026-05\n")
    page.click("#import")
    expect(page.locator("#import-ok")).to_have_text("Đã nhập 1 dòng hạng hộ.")

    page.select_option("#platform", "grab")
    page.click("#add-key")
    key_id = re.search(r"pk2?_[0-9a-f]+", page.text_content("#issued")).group(0)
    assert len(page.text_content("#issued-secret")) >= 32
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"tr[data-key='{key_id}'] button")
    expect(page.locator("#revoked")).to_have_text(f"Đã thu hồi khóa {key_id}.")
    listed = json.loads(served.cli("platforms", "list").splitlines()[0])
    assert listed["key_id"] == key_id and listed["revoked_at"] is not None
    shoot(page, artifacts, "admin")


def test_an_insurer_follows_a_bill_of_a_closed_month_to_the_platforms_statement_of_account(served_readonly,
                                                                                          browser_context, artifacts):
    context = browser_context()
    page = context.new_page()
    sign_in_staff(page, served_readonly.base, "insurer")
    page.goto(served_readonly.base + f"/insurer/months/{MONTH}")

    # One bill per platform, for the platform's dues of the month as the vectors settle them.
    dues = {name: sum(by_scheme.values()) for name, by_scheme in expected_settlement(MONTH)["platforms"].items()}
    shown = {row.get_attribute("data-payer"): int(row.locator("[data-col=amount]").get_attribute("data-vnd"))
             for row in page.locator("#bills tbody tr[data-kind=bill]").all()}
    assert shown == dues
    assert len(dues) == 6
    claims = page.locator("#bills tbody tr[data-payer=state] [data-col=amount]")
    assert sum(int(cell.get_attribute("data-vnd")) for cell in claims.all()) == \
        sum(expected_settlement(MONTH)["subsidy"].values()) == 25_231 + 9_021
    page.click("#bills tr[data-payer=grab][data-kind=bill] th a")
    page.wait_for_url(served_readonly.base + "/insurer/accounts/grab")

    token = served_readonly.cli("token", "staff", "--role", "insurer").strip()
    bearer = {"Authorization": f"Bearer {token}"}
    account = context.request.get(served_readonly.base + "/v1/payers/grab/account", headers=bearer).json()
    assert page.text_content("h1") == "Sao kê công nợ: Grab"  # the registry's name, not the id
    assert int(page.get_attribute("#balance", "data-vnd")) == account["balance_vnd"]
    assert page.text_content("#balance") == money(account["balance_vnd"])
    assert int(page.get_attribute("#total-bills", "data-vnd")) == account["bills_vnd"] >= dues["grab"]
    assert page.locator("#open-items tbody tr").count() == min(12, len(account["open_items"]))
    with page.expect_download() as download_info:
        page.click("#download-account-csv")
    api_csv = context.request.get(served_readonly.base + "/v1/payers/grab/account?format=csv", headers=bearer)
    assert Path(download_info.value.path()).read_bytes() == api_csv.body()
    shoot(page, artifacts, "insurer-account")
    page.click("text=English")
    expect(page.locator("h1")).to_have_text("Statement of account: Grab")
    assert page.text_content("#balance") == money(account["balance_vnd"], "en")


# Every page of every role at 360 and 1366 px (overflow, axe, weight, template leaks): test_screens.py.


def test_the_pages_stay_out_of_the_openapi_document(served_readonly, browser_context):
    schema = browser_context().request.get(served_readonly.base + "/openapi.json").json()
    assert sorted(path for path in schema["paths"] if not path.startswith("/v1/")) == ["/health", "/metrics"]

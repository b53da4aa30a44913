"""The worker's top-up block in a real browser (Chromium at 360 px): "pay X ₫ to complete month M",
their payment reference and the VietQR code (RULES.md §11, docs/payments.md)."""
from __future__ import annotations

import json

from api.vietqr import crc16_ccitt
from api import formats
from api.web.texts import money
from ledger.money import amount_to_complete, month_to_complete
from tests.web.test_pages import WORKER, sign_in_worker


def test_a_worker_sees_the_amount_to_complete_the_month_their_reference_and_a_qr_code(served_readonly,
                                                                                      browser_context, artifacts):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    month = page.get_attribute("#statement", "data-month")
    shown = json.loads(served_readonly.cli("statement", WORKER, month, "--json"))
    amount = amount_to_complete(shown)
    assert amount > 0  # the vectors' worker withholds far less than the 330,000 ₫ floor

    assert page.text_content("#topup-reference") == shown["topup_reference"]
    assert page.text_content("#topup-complete") == f"Nộp {money(amount)} để đủ {formats.month(month_to_complete(shown))}."
    qr = page.locator("#topup-qr svg")
    assert qr.is_visible() and qr.get_attribute("role") == "img"
    box = qr.bounding_box()
    assert 150 <= box["width"] <= 360 and box["width"] == box["height"]
    payload = page.get_attribute("#topup-qr", "data-payload")
    assert f"54{len(str(amount)):02d}{amount}" in payload and f"0818{shown['topup_reference']}" in payload
    assert payload.endswith(crc16_ccitt(payload[:-4]))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    page.locator("#topup").screenshot(path=str(artifacts / "worker-topup-phone.png"))


def test_a_booked_topup_shows_on_its_own_line_and_lowers_the_amount_to_complete(served, browser_context, tmp_path):
    month = "2026-04"  # open in the vectors' books
    shown = json.loads(served.cli("statement", WORKER, month, "--json"))
    bank = tmp_path / "bank.csv"
    bank.write_text(f"date,amount_vnd,payer,reference,bank_ref\n{month}-20,100000,worker,"
                    f"NOP BHXH {shown['topup_reference']},VCB-WEB-1\n", encoding="utf-8")
    served.cli("payments", "import", str(bank))
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served.base, WORKER)
    page.goto(served.base + f"/?month={month}")
    assert page.text_content("#topups-line th") == "Bạn tự đóng thêm"
    assert page.text_content("#topups-line td") == money(100_000)
    assert page.get_attribute("#topup", "data-amount") == str(amount_to_complete(shown) - 100_000)

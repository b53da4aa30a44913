"""What a balance means, on the worker's page in a real browser (Chromium at 360 px): per scheme one
sentence, the credited months against 180, and the pension estimate with its assumptions
(rules/pension.py) — in Vietnamese without English, and in English one switch away."""
from __future__ import annotations

import json
import re

from api.i18n import TEXT
from api.web.texts import money
from tests.web.test_pages import MONTH, WORKER, sign_in_worker

ENGLISH_WORDS = re.compile(r"\b(estimate|months?|pension|credited|assumptions?|pays?|pace|accident|unemployment)\b",
                           re.IGNORECASE)


def test_a_worker_sees_what_each_scheme_pays_for_the_credited_months_and_the_estimate(served_readonly,
                                                                                     browser_context, artifacts):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.goto(served_readonly.base + f"/?month={MONTH}")
    shown = json.loads(served_readonly.cli("statement", WORKER, MONTH, "--json"))
    counted, projection = shown["meaning"]["credited_months"], shown["meaning"]["projection"]

    vi = TEXT["vi"]
    assert {scheme: page.text_content(f"[data-testid={scheme}-meaning]") for scheme in ("si", "oa", "ui")} == \
        {"si": vi["meaning_si"], "oa": vi["meaning_oa"], "ui": vi["meaning_ui"]}
    assert page.text_content("label[for=pension-bar]") == f"Số tháng đã được tính: {counted}/180"
    assert page.get_attribute("#pension-bar", "value") == str(counted)
    assert page.text_content("#estimate-heading") == "Ước tính lương hưu"
    lines = page.locator("#estimate p.estimate").all_text_contents()
    assert all("ước tính" in line.lower() for line in lines)
    assert lines[-1] == (f"Lương hưu ước tính khi đủ 180 tháng: {money(projection['pension_vnd'])}/tháng "
                         f"(45% của thu nhập làm căn cứ đóng {money(projection['income_base_vnd'])}).")
    assert projection["pension_vnd"] == 675_000 and projection["estimate"] is True
    page.click("#estimate-assumptions summary")
    assumptions = page.locator("#estimate-assumptions li").all_text_contents()
    assert len(assumptions) == 4 and assumptions[1] == "Mỗi tháng được tính ở mức đóng tối thiểu hiện nay (330.000 ₫)."
    assert page.is_visible("#estimate-assumptions li")

    parts = " ".join(page.locator(selector).inner_text() for selector in ("#pension", ".scheme .meaning >> nth=0",
                                                                          ".scheme .meaning >> nth=1",
                                                                          ".scheme .meaning >> nth=2"))
    assert not ENGLISH_WORDS.findall(parts), ENGLISH_WORDS.findall(parts)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    page.locator("#pension").screenshot(path=str(artifacts / "worker-meaning-phone.png"))

    page.click("#print-link")
    printed = page.inner_text("main")
    assert vi["meaning_si"] in printed and vi["meaning_oa"] in printed and vi["meaning_ui"] in printed
    assert "Ước tính lương hưu" in printed and "Giả định của ước tính" in printed


def test_the_english_page_says_the_same_in_english(served_readonly, browser_context):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.click("text=English")
    page.goto(served_readonly.base + f"/?month={MONTH}")
    en = TEXT["en"]
    assert page.text_content("[data-testid=oa-meaning]") == en["meaning_oa"]
    assert re.fullmatch(r"Credited months: \d+/180", page.text_content("label[for=pension-bar]"))
    assert page.text_content("#estimate-heading") == "Pension estimate"
    assert page.locator("#estimate p.estimate").first.text_content().startswith("Estimate: ")

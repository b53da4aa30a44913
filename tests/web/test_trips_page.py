"""The per-trip list on the worker page, in Chromium at 360 px: paged with the keyboard alone.

The books are the public vectors (tests/web/conftest.py); the worker's March 2026 holds nine
booked events, a refund of a March order and a February delivery booked late. Three a page
(`?limit=3`) makes three pages.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from api.i18n import EVENTS_CSV_HEADER
from tests.web.test_pages import AXE, WORKER, shoot, sign_in_worker

MONTH = "2026-03"
TAB_PRESSES_MAX = 80


def tab_to(page, element_id: str) -> None:
    """Press Tab until the element has the focus (links are reached in document order)."""
    for _ in range(TAB_PRESSES_MAX):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with {TAB_PRESSES_MAX} presses of Tab")


def listed(page) -> list[str]:
    return page.eval_on_selector_all("#events-list li", "items => items.map(item => item.dataset.eventId)")


def test_the_worker_pages_through_the_months_events_with_the_keyboard(served_readonly, browser_context, artifacts):
    expected = [json.loads(line) for line in
                served_readonly.cli("statement", WORKER, MONTH, "--events", "--json").splitlines()]
    assert len(expected) == 9
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.goto(f"{served_readonly.base}/?month={MONTH}&limit=3")
    assert page.text_content("#events-heading") == "Các giao dịch được ghi sổ tháng 3/2026"
    pages = [listed(page)]
    assert page.locator("#events-prev").count() == 0
    while page.locator("#events-next").count():
        tab_to(page, "events-next")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        pages.append(listed(page))
        # the page opens at the list (#events) and stays within a phone's width
        assert page.url.endswith("#events")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert pages == [[item["event_id"] for item in expected[start:start + 3]] for start in (0, 3, 6)]

    refund = page.locator("#events-list li[data-event-id='rf-3-265']")
    assert refund.locator(".trip-note").text_content() == "hoàn tiền cho la-3-248 (tháng 3/2026)"
    late = page.locator("#events-list li[data-event-id='be-3-277']")
    assert late.locator(".trip-note").text_content() == "phát sinh tháng 2/2026, ghi sổ muộn"
    assert late.locator("time").text_content() == "01/02/2026 12:19"
    assert late.locator(".trip-head strong").text_content() == "Be"  # the registry's name, not the id "be"
    assert late.locator("[data-testid=amount]").text_content() == "54.000 ₫"
    shoot(page, artifacts, "worker-events")

    tab_to(page, "events-prev")  # back, with the keyboard too
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert listed(page) == pages[1] and page.locator("#events-prev").count() == 1

    with page.expect_download() as download_info:
        tab_to(page, "download-events")
        page.keyboard.press("Enter")
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8-sig"))))
    assert tuple(rows[0]) == EVENTS_CSV_HEADER
    assert [row[2] for row in rows[1:]] == [item["event_id"] for item in expected]
    assert sum(int(row[5]) for row in rows[1:]) == sum(item["shares"]["si"]["worker"] for item in expected)


def test_the_paged_list_has_no_serious_accessibility_violations(served_readonly, browser_context):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.goto(f"{served_readonly.base}/?month={MONTH}&limit=3")
    page.click("#events-next")
    page.wait_for_url(re.compile(r"cursor="))
    assert page.locator("#events-prev").count() == page.locator("#events-next").count() == 1
    page.add_script_tag(content=AXE.read_text())
    violations = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}}))
        .violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))""")
    assert violations == []

"""Every role's pages on a 360 px phone and a 1366 px desktop, the printable statement on A4, the
charts at phone size, and the insurer's bank-statement import (issue 17, item 4).

Debian's Chromium against a real `ansinh serve` over the public vectors (tests/web/conftest.py).
A page "fits" when the document is no wider than the window and nothing outside a deliberate
scroll area (`.scroll`, which says so above itself while it overflows) reaches past the right
edge; axe finds no serious or critical violation; no template machinery shows; screenshots of
each page at both widths go to the test's own folder (tmp_path).
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from typer.testing import CliRunner

from api.cli import app as ansinh
from tests.web.conftest import environment
from tests.web.test_pages import AXE, MONTH, OPEN_MONTH, WORKER, expected_statement, sign_in_staff, sign_in_worker

WIDTHS = (360, 1366)
PAGE_BYTES_MAX = 100 * 1024
A4_WIDTH_PX = 794  # 210 mm at 96 px an inch
A4_PRINTABLE_PX = 703  # less the stylesheet's 12 mm margins (@page in app.css)
CHART_TEXT_PX_MIN = 10
POLICY_RUN_MS_MAX = 180_000
# In what a person reads; and in the HTML, whose attributes may hold JSON (the policy page's
# scenario ends in "}}"), the marks no JSON makes.
LEAKS = re.compile(r"<built-in|object at 0x|\{\{|\{%|%\}|\}\}|Undefined|\bNone\b|Traceback")
HTML_LEAKS = re.compile(r"<built-in|object at 0x|\{\{|\{%|%\}|Undefined|Traceback")

PAGES = [  # (name, who: a national id, a staff role or None, path, what to do before the checks)
    ("signin", None, "/signin", None),
    ("worker", WORKER, f"/?month={MONTH}", None),
    ("worker-print", WORKER, f"/me/statement/print?month={MONTH}", None),
    ("insurer", "insurer", "/insurer", None),
    ("settlement", "insurer", f"/insurer/months/{MONTH}", None),
    ("account", "insurer", "/insurer/accounts/grab", None),
    ("close-confirm", "insurer", f"/insurer/months/{OPEN_MONTH}/close", None),
    ("bank-import", "insurer", "/insurer/payments", None),
    ("bank-preview", "insurer", "/insurer/payments", "preview"),
    ("policy-results", "policy", "/policy", "run"),
    ("admin", "admin", "/admin", None),
]

# Anything reaching past the window's right edge, outside a deliberate scroll area (and the
# skip link, which waits off-screen until focused); and every overflowing scroll area without
# its cue above it.
OVERFLOW = """() => {
  const width = window.innerWidth, found = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  if (document.scrollingElement.scrollWidth > width) found.push('document ' + document.scrollingElement.scrollWidth);
  for (const el of document.body.querySelectorAll('*')) {
    if ((el.parentElement && el.parentElement.closest('.scroll')) || el.closest('.skip, .sr-only')) continue;
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) found.push(name(el) + ' ends at ' + Math.round(box.right));
  }
  for (const area of document.querySelectorAll('.scroll')) {
    if (area.scrollWidth <= area.clientWidth + 1) continue;
    const cue = area.previousElementSibling;
    if (!cue || !cue.classList.contains('scroll-cue') || !cue.offsetParent) found.push(name(area) + ' scrolls without a cue');
  }
  return found;
}"""
AXE_RUN = """async () => (await axe.run(document, {runOnly: {type: 'tag',
    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}}))
    .violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))"""
# Each chart text's size on the screen: its font size times the SVG's scale.
CHART_TEXT = """(id) => [...document.querySelectorAll('#' + id + ' text')].map(text => ({
  cls: text.getAttribute('class'), text: text.textContent,
  px: parseFloat(getComputedStyle(text).fontSize) * text.getScreenCTM().a}))"""


def cli(env: dict, *args: str) -> str:
    """An `ansinh` command run in this process (typer's runner: the same command function as the
    shell, without the interpreter's start-up for each of the dozens of reads below)."""
    result = CliRunner().invoke(ansinh, list(args), env={key: env[key] for key in (
        "ANSINH_SECRET", "ANSINH_DATABASE_URL", "ANSINH_DEMO", "ANSINH_PACK")})
    assert result.exit_code == 0, f"ansinh {' '.join(args)}: {result.output}"
    return result.stdout


def bank_csv(served) -> tuple[bytes, dict]:
    """Four lines: grab's February bill paid by its reference, lazada paying with no reference, the
    state's February claim for si, and a top-up by the vectors' worker (their reference)."""
    bills = json.loads(cli(served.env, "bills", MONTH, "--format", "json"))
    grab = next(b for b in bills if b["payer"] == "grab" and b["kind"] == "bill")
    claim = next(b for b in bills if b["payer"] == "state" and b["kind"] == "claim si")
    topup = json.loads(cli(served.env, "statement", WORKER, MONTH, "--json"))["topup_reference"]
    rows = [("2026-03-20", grab["amount_vnd"], "grab", f"CK {grab['reference']}", "VCB-G1"),
            ("2026-03-21", 300_000, "lazada", "chuyen khoan", "VCB-L1"),
            ("2026-03-22", claim["amount_vnd"], "state", f"NSNN {claim['reference']}", "KBNN-1"),
            ("2026-03-25", 50_000, "worker", f"NOP BHXH {topup}", "VCB-W1")]
    text = "date,amount_vnd,payer,reference,bank_ref\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    return text.encode(), {"grab": grab, "claim": claim, "total": sum(row[1] for row in rows)}


def upload(page, data: bytes) -> None:
    page.set_input_files("#file", files=[{"name": "bank.csv", "mimeType": "text/csv", "buffer": data}])
    page.click("#preview-button")


def run_policy(page) -> None:
    """A small what-if (400 workers): the simulator answers in seconds, more on a busy machine."""
    page.fill("#workers", "400")
    page.fill("[id='tiers.poor']", "45")
    page.click("#run", no_wait_after=True)
    expect(page.locator("#chart-deciles")).to_be_visible(timeout=POLICY_RUN_MS_MAX)


def open_page(page, base: str, who: str | None, path: str, action: str | None, served=None) -> None:
    if who == WORKER:
        sign_in_worker(page, base, who)
    elif who:
        sign_in_staff(page, base, who)
    page.goto(base + path)
    if action == "run":
        run_policy(page)
    elif action == "preview":
        upload(page, bank_csv(served)[0])
        expect(page.locator("#preview")).to_be_visible()


def test_every_roles_pages_fit_a_phone_and_a_desktop_pass_axe_and_leak_no_template(served_readonly, browser_context,
                                                                                   tmp_path):
    axe = AXE.read_text()
    failures: dict[str, list[str]] = {}
    for name, who, path, action in PAGES:
        page = browser_context(WIDTHS[0], 780).new_page()
        open_page(page, served_readonly.base, who, path, action, served_readonly)
        weight = page.evaluate("""() => [performance.getEntriesByType('navigation')[0],
                                          ...performance.getEntriesByType('resource')]
                                         .reduce((sum, entry) => sum + entry.decodedBodySize, 0)""")
        assert 0 < weight < PAGE_BYTES_MAX, f"{name} weighs {weight:,} bytes"
        assert page.evaluate("() => performance.getEntriesByType('resource')"
                             ".every(entry => entry.name.startsWith(location.origin))"), f"{name}: no CDN"
        leaks = HTML_LEAKS.findall(page.content()) + LEAKS.findall(page.inner_text("body"))
        if leaks:
            failures[f"{name}: template leaks"] = leaks
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 780 if width < 1000 else 900})
            page.evaluate("window.dispatchEvent(new Event('resize'))")  # app.js re-reads the scroll areas
            shot = tmp_path / f"{name}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000
            overflow = page.evaluate(OVERFLOW)
            if overflow:
                failures[f"{name} at {width}px overflows"] = overflow[:5]
            page.add_script_tag(content=axe)
            violations = page.evaluate(AXE_RUN)
            if violations:
                failures[f"{name} at {width}px axe"] = violations
        page.close()
    assert failures == {}
    assert len(list(tmp_path.glob("*.png"))) == len(PAGES) * len(WIDTHS)


def test_the_workers_history_and_paid_by_tables_are_cards_at_360_px_and_reconcile(served_readonly, browser_context):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.goto(served_readonly.base + f"/?month={MONTH}")
    expected = expected_statement(WORKER, MONTH)

    # Every figure of the history is on the screen with its label beside it: no column off-screen.
    cells = page.locator("#history-table tbody td")
    expect(cells.first).to_be_visible()
    boxes = page.evaluate("""() => [...document.querySelectorAll('#history-table tbody td')].map(td => {
        const box = td.getBoundingClientRect();
        return [box.left, box.right, getComputedStyle(td, '::before').content]; })""")
    assert boxes and all(0 <= left and right <= 360 for left, right, _ in boxes)
    # Each figure's label is drawn beside it (CSS generated content, its alt text empty: the cell's
    # column header is what a screen reader reads).
    assert {label for _, _, label in boxes} == {f'"{label}" / ""' for label in
                                                ("Bạn đóng", "Nền tảng đóng", "Nhà nước hỗ trợ", "Cộng")}
    february = page.locator(f"#history-table tr[data-month='{MONTH}'] td").all_inner_texts()
    total = sum(line["total"] for line in expected["schemes"].values())
    assert february[-1].endswith("43.823 ₫") and total == 43_823

    # Who paid: platform rows, the state's top-up and the month's line reconcile with the scheme cards.
    def vnd(selector: str) -> list[int]:
        return [int(value) for value in page.locator(selector).evaluate_all("cells => cells.map(c => c.dataset.vnd)")]

    rows = "#paid-by tbody tr:not(#subsidy-line)"
    month_line = {col: vnd(f"#paid-total [data-col={col}]")[0] for col in ("worker", "platform", "total")}
    assert sum(vnd(f"{rows} [data-col=worker]")) == month_line["worker"] == \
        sum(line["worker"] for line in expected["schemes"].values()) == 32_198
    assert sum(vnd(f"{rows} [data-col=platform]")) == month_line["platform"] == 8_405
    assert sum(vnd(f"{rows} [data-col=total]")) + vnd("#subsidy-line [data-col=total]")[0] == month_line["total"] \
        == total
    assert month_line["total"] == sum(int(re.sub(r"\D", "", page.text_content(f"[data-testid={scheme}-total]")))
                                      for scheme in ("si", "oa", "ui"))
    assert vnd("#subsidy-line [data-col=total]") == [sum(line["subsidy"] for line in expected["schemes"].values())]


def test_chart_text_is_at_least_10_px_on_a_phone_and_the_y_axis_carries_values(served_readonly, browser_context):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.goto(served_readonly.base + f"/?month={MONTH}")
    texts = page.evaluate(CHART_TEXT, "history-chart")
    assert texts and min(text["px"] for text in texts) >= CHART_TEXT_PX_MIN, texts
    by_class = lambda cls: [t["text"] for t in texts if cls in t["cls"].split()]  # noqa: E731
    # The vectors' worker: months of 20,467 to 43,823 ₫, on an axis in thousands of ₫.
    assert by_class("y-title") == ["nghìn ₫"] and by_class("y-tick") == ["0", "20", "40", "60"]
    assert by_class("x-tick") == ["1/2026", "2/2026", "3/2026", "4/2026"] and by_class("x-title") == ["Tháng"]
    assert "43.823 ₫" in by_class("bar-value")

    sign_in_staff(page, served_readonly.base, "policy")
    run_policy(page)
    for chart in ("chart-budget", "chart-coverage", "chart-deciles"):
        texts = page.evaluate(CHART_TEXT, chart)
        assert min(text["px"] for text in texts) >= CHART_TEXT_PX_MIN, (chart, texts)
        ticks = [t["text"] for t in texts if "y-tick" in t["cls"]]
        assert len(ticks) >= 2 and "0" in ticks, (chart, ticks)
        assert [t for t in texts if "y-title" in t["cls"]] and [t for t in texts if "x-title" in t["cls"]], chart


def test_the_printable_statement_fits_an_a4_page_and_a_phone(served_readonly, browser_context, tmp_path):
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    page.goto(served_readonly.base + f"/me/statement/print?month={MONTH}")
    expect(page.locator("h1")).to_have_text("Sao kê đóng góp tháng 2/2026")
    assert page.evaluate(OVERFLOW) == []  # the phone: one card per scheme
    page.screenshot(path=str(tmp_path / "print-phone.png"), full_page=True)

    page.emulate_media(media="print")
    for width in (A4_WIDTH_PX, A4_PRINTABLE_PX):
        page.set_viewport_size({"width": width, "height": 1123})
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= width
        tables = page.evaluate("() => [...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().right)")
        assert tables and max(tables) <= width
        # On paper the statement is a table again, every column shown.
        assert page.locator("#statement-table thead").evaluate("el => getComputedStyle(el).display") == \
            "table-header-group"
    assert page.locator(".top").evaluate("el => getComputedStyle(el).display") == "none"  # no site header on paper
    page.screenshot(path=str(tmp_path / "print-a4.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page\b", pdf)) <= 2  # the month on at most two pages


def figures(env: dict) -> dict:
    """What a payment changes, read by the CLI: February's bills and each payer's account, the worker's April."""
    accounts = {payer: {key: value for key, value in json.loads(cli(env, "account", payer, "--format", "json")).items()
                        if key.endswith("_vnd")} for payer in ("grab", "lazada", "state")}
    bills = [(b["payer"], b["kind"], b["amount_vnd"], b["outstanding_vnd"])
             for b in json.loads(cli(env, "bills", MONTH, "--format", "json"))]
    worker = json.loads(cli(env, "statement", WORKER, OPEN_MONTH, "--json"))
    return {"accounts": accounts, "bills": bills, "worker": (worker["schemes"]["si"], worker["topups_vnd"])}


def test_an_insurer_previews_a_bank_statement_then_books_exactly_what_the_cli_books(served, vectors_database,
                                                                                     browser_context, tmp_path):
    data, refs = bank_csv(served)
    before = figures(served.env)
    page = browser_context(360, 780).new_page()
    sign_in_staff(page, served.base, "insurer")
    page.click("nav >> text=Sao kê ngân hàng")
    expect(page.locator("h1")).to_have_text("Nhập sao kê ngân hàng")

    # A bad file is refused whole, naming its line; nothing of it is booked.
    bad = data.replace(b"2026-03-21,300000,", b"2026-03-21,300.000,")
    upload(page, bad)
    expect(page.locator("#bank-errors li")).to_have_count(1)
    assert page.locator("#bank-errors li").inner_text().startswith("dòng 3: amount_vnd phải là số nguyên VND")
    assert page.locator("#preview").count() == 0 and figures(served.env) == before

    # The preview lists every line and the totals, and books nothing.
    upload(page, data)
    expect(page.locator("#preview")).to_be_visible()
    lines = page.locator("#preview-lines tbody tr")
    expect(lines).to_have_count(4)
    assert lines.evaluate_all("rows => rows.map(r => [r.dataset.line, r.dataset.bankRef, r.dataset.status])") == \
        [["2", "VCB-G1", "booked"], ["3", "VCB-L1", "booked"], ["4", "KBNN-1", "booked"], ["5", "VCB-W1", "booked"]]
    assert int(page.locator("#preview-totals tfoot [data-col=amount]").get_attribute("data-vnd")) == refs["total"]
    assert page.locator("#preview-totals tbody tr").evaluate_all("rows => rows.map(r => r.dataset.payer)") == \
        ["grab", "lazada", "state", "worker"]
    settles = page.locator("#preview-lines tr[data-bank-ref=VCB-G1]").inner_text()
    assert refs["grab"]["reference"] in settles
    assert figures(served.env) == before
    page.screenshot(path=str(tmp_path / "bank-preview-phone.png"), full_page=True)

    page.click("#confirm-book")
    expect(page.locator("#booked-summary")).to_contain_text("Đã ghi 4 khoản")
    booked_page = page.locator("#booked-lines tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.bankRef, r.dataset.payer, r.dataset.status])")

    # The same file through `ansinh payments import`, on another copy of the same books.
    other = tmp_path / "cli"
    other.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{vectors_database}{suffix}").exists():
            shutil.copy(f"{vectors_database}{suffix}", other / f"ansinh.db{suffix}")
    (other / "bank.csv").write_bytes(data)
    env = environment(other / "ansinh.db")
    outcomes = json.loads(cli(env, "payments", "import", str(other / "bank.csv"), "--json"))
    assert booked_page == [[o["bank_ref"], o["payer"], o["status"]] for o in outcomes]
    after = figures(served.env)
    assert after == figures(env)
    assert after != before and after["accounts"]["grab"]["payments_vnd"] == \
        before["accounts"]["grab"]["payments_vnd"] + refs["grab"]["amount_vnd"]
    assert after["worker"][1] == 50_000

    # The same file again: every line is a duplicate, nothing more to book.
    page.click("text=Nhập sao kê khác")
    upload(page, data)
    expect(page.locator("#preview")).to_have_attribute("data-booked", "0")
    expect(page.locator("#confirm-book")).to_be_disabled()
    assert figures(served.env) == after


def test_the_workers_downloaded_history_agrees_with_the_cards(served_readonly, browser_context):
    """The cards are the table restyled: the CSV download still has one row per month and scheme."""
    page = browser_context(360, 780).new_page()
    sign_in_worker(page, served_readonly.base, WORKER)
    with page.expect_download() as download_info:
        page.click("text=Tải lịch sử (CSV)")
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8-sig"))))
    february = sum(int(row["Cộng (₫)"]) for row in rows if row["Tháng"] == MONTH)
    card = page.locator(f"#history-table tr[data-month='{MONTH}'] td").last.inner_text()
    assert card.endswith("43.823 ₫") and february == 43_823

"""What a person reads on a page is words and formatted figures, never the books' codes (issue 17, item 3).

Insurers met columns headed `si/oa/ui`, raw platform ids (`xanhsm`), ISO dates and
microsecond timestamps. Every page of every role is rendered here in both languages over
books with two platforms, a closed month with bills, issued keys and a policy run, and
its visible text (outside `<code>`, which holds references, key ids and hashes people
copy) is searched for each of those. Attributes (`data-scheme="si"`, `<time datetime=…>`)
are for machines and stay codes.
"""
from __future__ import annotations

import html
import re

import pytest

from api.formats import formats
from ledger.close import close_month
from ledger.money import bills_of_month
from ledger.platforms import platform_registry
from tests.api.test_page_leaks import headers
from tests.ledger.factories import WORKER_B, event, refund

CLOSED, OPEN = "2026-05", "2026-06"  # the test clock reads 07:00 on 1 June 2026, Vietnam time
PAGES = {  # role -> the GET pages that role reads
    "worker": ["/", f"/?month={CLOSED}", f"/?month={OPEN}", f"/me/statement/print?month={CLOSED}",
               f"/me/statement/print?month={OPEN}"],
    "insurer": ["/insurer", f"/insurer/months/{CLOSED}", f"/insurer/months/{OPEN}", f"/insurer/months/{OPEN}/close",
                "/insurer/accounts/grab", "/insurer/accounts/xanhsm", "/insurer/accounts/state", "/insurer/payments"],
    "policy": ["/policy"],
    "admin": ["/admin"],
}

RAW_SCHEME = re.compile(r"\b(si|oa|ui)\b")
# Lower-case ids a registered platform shows by name; "be" is an English word, so it is looked for
# only as a whole text node (a cell, a heading) below, not inside prose.
RAW_PLATFORM = re.compile(r"\b(grab|xanhsm|shopeefood|shopee|lazada)\b")
ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
ISO_MONTH = re.compile(r"\b\d{4}-\d{2}\b")
SECONDS_OR_FRACTION = re.compile(r"\d{2}:\d{2}:\d{2}|\d{2}:\d{2}\.\d")


def text_nodes(page: str) -> list[str]:
    """The text a person sees (and an SVG <title> tooltip), outside scripts, styles and <code>."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<code\b[^>]*>.*?</code>", " ", page, flags=re.S)
    return [node for node in (html.unescape(raw).strip() for raw in re.findall(r">([^<]*)<", page)) if node]


def codes_shown(page: str) -> list[str]:
    nodes = text_nodes(page)
    text = " | ".join(nodes)
    found = [f"node {node!r}" for node in nodes if node in {"si", "oa", "ui", *platform_registry()}]
    for pattern in (RAW_SCHEME, RAW_PLATFORM, ISO_DAY, ISO_MONTH, SECONDS_OR_FRACTION):
        found += [text[max(0, hit.start() - 40):hit.end() + 40] for hit in pattern.finditer(text)]
    return found


@pytest.fixture
def rich_books(caller):
    """May closed (bills for three platforms and the state's claim), a refund, June open with a late event."""
    xanhsm = caller.services.keys.add("xanhsm")

    def booked(answer) -> None:
        assert answer.status_code == 200 and {item["outcome"] for item in answer.json()["outcomes"]} == {"accepted"}

    booked(caller.post_events([event("a-1", amount=87_500, occurred_at=f"{CLOSED}-10T09:00:00+07:00"),
                               event("a-2", amount=240_000, occurred_at=f"{CLOSED}-11T09:00:00+07:00"),
                               refund("a-2r", "a-2", 40_000, occurred_at=f"{CLOSED}-12T09:00:00+07:00")]))
    booked(caller.post_events([event("b-1", worker_id=WORKER_B, platform="be", kind="delivery",
                                     occurred_at=f"{CLOSED}-11T09:00:00+07:00")], key=caller.be))
    booked(caller.post_events([event("x-1", platform="xanhsm", occurred_at=f"{CLOSED}-13T20:15:00+07:00")], key=xanhsm))
    close_month(caller.services.ledger, CLOSED)
    booked(caller.post_events([event("a-3", amount=120_000, occurred_at=f"{OPEN}-01T06:00:00+07:00"),
                               event("a-4", amount=50_000, occurred_at=f"{CLOSED}-31T23:00:00+07:00")]))  # late
    return caller


def test_the_search_catches_what_insurers_once_read():
    assert codes_shown('<th><abbr title="BHXH">si</abbr></th>') == ["node 'si'", "si"]
    assert codes_shown("<td>xanhsm</td>") and codes_shown("<td>be</td>")
    assert codes_shown("<td>2026-02-15</td>") and codes_shown("<p>Month 2026-02</p>")
    assert codes_shown("<td>2026-06-01T07:00:00.123456Z</td>") and codes_shown("<td>01/06/2026 07:00:12</td>")
    assert codes_shown("<p>pooled si balance</p>") == ["pooled si balance"]
    assert not codes_shown('<td data-scheme="si">1.000 ₫</td><code>AS202605GRAB</code><p>to be paid</p>')


def rendered_pages(caller, lang: str) -> dict[str, str]:
    pages = {}
    for role, paths in PAGES.items():
        for path in paths:
            url = f"{path}{'&' if '?' in path else '?'}lang={lang}"
            answer = caller.client.get(url, headers=headers(caller, role))
            pages[f"{role} {url}"] = answer.text
    pages["admin POST /admin/keys"] = caller.client.post(f"/admin/keys?lang={lang}", data={"platform": "xanhsm"},
                                                         headers=headers(caller, "admin")).text
    form = {"baseline": "vn-pilot", "start": "2026-01", "horizon_months": "2", "workers": "60", "seed": "7",
            "rates.ride.si.worker": "1.5"}
    started = caller.client.post(f"/policy?lang={lang}", data=form, headers=headers(caller, "policy"),
                                 follow_redirects=False)
    assert started.status_code == 303, started.text[-2000:]
    job_url = started.headers["location"]
    pages["policy a job's page, running"] = caller.client.get(f"{job_url}?lang={lang}",
                                                              headers=headers(caller, "policy")).text
    assert caller.client.app.state.jobs.wait(job_url.rsplit("/", 1)[1], 240).status == "done"
    ran = caller.client.get(f"{job_url}?lang={lang}", headers=headers(caller, "policy"))
    assert ran.status_code == 200 and 'id="results"' in ran.text, ran.text[-2000:]
    pages["policy a job's page, done"] = ran.text
    pages["policy /policy with a job"] = caller.client.get(f"/policy?lang={lang}", headers=headers(caller, "policy")).text
    # A bank statement's preview and booking: payers by name, dates and months in words.
    reference = bills_of_month(caller.services.ledger, CLOSED)[-1]["reference"]
    bank = (f"date,amount_vnd,payer,reference,bank_ref\n{CLOSED}-20,1000,xanhsm,CK {reference},VCB-X{lang}\n"
            f"{CLOSED}-21,2000,be,no memo,VCB-B{lang}\n").encode()
    previewed = caller.client.post(f"/insurer/payments/preview?lang={lang}", files={"file": ("bank.csv", bank)},
                                   headers=headers(caller, "insurer"))
    assert previewed.status_code == 200 and 'id="preview"' in previewed.text, previewed.text[-2000:]
    pages["insurer POST /insurer/payments/preview"] = previewed.text
    form = {name: re.search(rf'name="{name}" value="([^"]*)"', previewed.text).group(1) for name in ("data", "sha256")}
    booked = caller.client.post(f"/insurer/payments?lang={lang}", data=form, headers=headers(caller, "insurer"))
    assert booked.status_code == 200 and 'id="booked"' in booked.text, booked.text[-2000:]
    pages["insurer POST /insurer/payments"] = booked.text
    return pages


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_no_page_shows_a_scheme_code_a_platform_id_an_iso_date_or_a_timestamp_with_seconds(rich_books, lang):
    found = {page: codes_shown(text) for page, text in rendered_pages(rich_books, lang).items()}
    assert {page: hits for page, hits in found.items() if hits} == {}


def test_the_pages_show_the_registrys_names_and_the_schemes_names_where_the_codes_were(rich_books):
    worker = rich_books.client.get(f"/?month={OPEN}&lang=en", headers=headers(rich_books, "worker")).text
    assert '<tr data-platform="grab"><th scope="row">Grab</th>' in worker
    assert "<strong>Xanh SM</strong>" in rich_books.client.get(f"/?month={CLOSED}&lang=en",
                                                               headers=headers(rich_books, "worker")).text
    assert "<h3>Voluntary social insurance (pension)</h3>" in worker
    settlement = rich_books.client.get(f"/insurer/months/{CLOSED}?lang=vi", headers=headers(rich_books, "insurer")).text
    assert '<abbr title="Tai nạn lao động">TNLĐ</abbr>' in settlement
    assert '<tr data-payer="be"><th scope="row">Be</th>' in settlement
    assert '<a href="/insurer/accounts/xanhsm">Xanh SM</a>' in settlement  # the bill's payer
    assert '<time datetime="2026-06-15">15/06/2026</time>' in settlement  # its due date
    admin = rich_books.client.get("/admin?lang=en", headers=headers(rich_books, "admin")).text
    assert '<td data-platform="xanhsm">Xanh SM</td>' in admin
    assert '<option value="xanhsm">Xanh SM</option>' in admin  # the key form offers the registry, not free text


def test_an_english_page_formats_money_counts_months_and_times_the_english_way(rich_books):
    shown = formats("en")
    worker = rich_books.client.get(f"/?month={OPEN}&lang=en", headers=headers(rich_books, "worker")).text
    assert f"Events booked in {shown.month(OPEN)}" in worker and "June 2026" in worker
    assert re.search(r">\d{1,3}(,\d{3})* VND<", worker) and " ₫<" not in worker
    assert ">1 Jun 2026 06:00</time>" in worker  # the event's time, Vietnam time, to the minute
    assert "occurred in May 2026, booked late" in worker
    insurer = rich_books.client.get("/insurer?lang=en", headers=headers(rich_books, "insurer")).text
    assert '<th scope="row">May 2026</th>' in insurer and ">1 Jun 2026 07:00</time>" in insurer


def test_the_admin_page_refuses_a_platform_that_is_not_in_the_registry(rich_books):
    refused = rich_books.client.post("/admin/keys?lang=en", data={"platform": "xanh"}, headers=headers(rich_books, "admin"))
    assert refused.status_code == 422 and "Choose a platform from the registered list." in refused.text
    assert all(record.platform != "xanh" for record in rich_books.services.keys.list())


def test_the_admin_pages_key_errors_are_said_in_the_pages_language_not_in_the_key_stores_english(rich_books):
    admin = headers(rich_books, "admin")
    rotated = rich_books.client.post("/admin/keys?lang=vi", data={"platform": "lazada", "action": "rotate"},
                                     headers=admin)  # registered, and no key yet to rotate
    assert rotated.status_code == 404
    assert "Nền tảng này chưa có khóa nào để xoay vòng: hãy cấp khóa mới trước." in rotated.text
    assert "has no keys" not in rotated.text
    revoked = rich_books.client.post("/admin/keys/pk_0000000000000000/revoke?lang=en", headers=admin)
    assert revoked.status_code == 404 and "There is no such key." in revoked.text


def test_the_workers_csv_files_are_for_people_in_the_readers_language_with_names_not_codes(rich_books):
    worker = headers(rich_books, "worker")
    vi = rich_books.client.get(f"/me/statement.csv?month={OPEN}", headers=worker).content.decode("utf-8-sig")
    assert vi.splitlines()[0] == "Tháng,Trạng thái,Quỹ,Bạn đóng (₫),Nền tảng đóng (₫),Nhà nước hỗ trợ (₫),Cộng (₫),Lũy kế (₫)"
    assert vi.splitlines()[1].startswith(f"{OPEN},tạm tính (tháng chưa chốt),BHXH tự nguyện (hưu trí),")
    en = rich_books.client.get(f"/me/history.csv?lang=en", headers=worker).content.decode("utf-8-sig")
    assert en.splitlines()[0] == "Month,Status,Scheme,You paid (VND),Platform paid (VND),State top-up (VND),Total (VND)"
    assert ",Occupational accident," in en and ",oa," not in en
    events = rich_books.client.get(f"/me/events.csv?month={OPEN}&lang=en", headers=worker)
    assert events.headers["content-disposition"] == f'attachment; filename="events-{OPEN}.csv"'
    rows = events.content.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("Date and time,Platform,Event id,Kind,Amount (VND),Pension – worker (VND),")
    assert any(row.startswith(f"{OPEN}-01 06:00:00,Grab,a-3,Ride,120000,") for row in rows)


def test_the_settlement_csv_stays_for_machines_with_codes_whatever_the_page_language(rich_books):
    insurer = headers(rich_books, "insurer")
    page_file = rich_books.client.get(f"/insurer/months/{OPEN}/settlement.csv?lang=vi", headers=insurer).content
    api_file = rich_books.client.get(f"/v1/months/{OPEN}/settlement?format=csv", headers=insurer).content
    assert page_file == api_file
    assert b"grab" in page_file and b"Grab" not in page_file


def test_no_page_text_key_is_written_twice_in_a_language():
    # A dict literal keeps the last of two equal keys silently: a jobs list's "open" link ("Xem")
    # once replaced the insurer's "open" month badge ("đang mở").
    import ast
    from pathlib import Path

    import api.web.texts

    tree = ast.parse(Path(api.web.texts.__file__).read_text(encoding="utf-8"))
    repeated = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [key.value for key in node.keys if isinstance(key, ast.Constant)]
            repeated += sorted({key for key in keys if keys.count(key) > 1})
    assert repeated == []

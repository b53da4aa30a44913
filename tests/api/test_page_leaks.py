"""Every page of every role, in both languages, renders words, never template machinery (issue 17).

The admin page once headed its platform keys `<built-in method keys of dict …>`: `{{ t.keys }}`
on a dict of texts finds the dict's method before the key. This renders each page over books
with a closed month, a booked worker and a platform key, and looks for any such leak.
"""
from __future__ import annotations

import re

import pytest

from ledger.close import close_month
from tests.ledger.factories import WORKER_A, WORKER_B, event

CLOSED, OPEN = "2026-04", "2026-05"  # the test clock reads 1 June 2026
LEAKS = re.compile(r"<built-in|object at 0x|\{\{|\{%|%\}|\}\}|Undefined|>\s*None\s*<|\bNone\b(?=[^<]*</t[dh]>)")
PAGES = {  # role -> the GET pages that role reads
    "worker": ["/", f"/?month={CLOSED}", f"/?month={OPEN}", f"/me/statement/print?month={CLOSED}",
               "/?month=2026-13"],  # the error page
    "insurer": ["/insurer", f"/insurer/months/{CLOSED}", f"/insurer/months/{OPEN}", f"/insurer/months/{OPEN}/close",
                "/insurer/accounts/grab", "/insurer/accounts/state", "/insurer/payments"],
    "policy": ["/policy"],
    "admin": ["/admin"],
}


@pytest.fixture
def books(caller):
    """A closed month with two workers on two platforms, an open month after it, and an issued key."""
    items = [event("a-1", amount=87_500, occurred_at=f"{CLOSED}-10T09:00:00+07:00"),
             event("b-1", worker_id=WORKER_B, platform="be", kind="delivery", occurred_at=f"{CLOSED}-11T09:00:00+07:00"),
             event("a-2", amount=120_000, occurred_at=f"{OPEN}-03T09:00:00+07:00")]
    caller.post_events(items[:2])
    caller.post_events(items[2:], key=caller.grab)
    close_month(caller.services.ledger, CLOSED)
    return caller


def headers(caller, role: str) -> dict[str, str]:
    if role == "worker":
        return {"Authorization": f"Bearer {caller.worker_token(WORKER_A)}"}
    return caller.bearer(role)


def leaks(html: str) -> list[str]:
    return [html[max(0, found.start() - 60):found.end() + 60] for found in LEAKS.finditer(html)]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_no_page_of_any_role_shows_a_python_object_a_template_tag_or_none(books, lang):
    rendered = {}
    for role, paths in PAGES.items():
        for path in paths:
            url = f"{path}{'&' if '?' in path else '?'}lang={lang}"
            answer = books.client.get(url, headers=headers(books, role))
            assert answer.headers["content-type"].startswith("text/html"), (role, url, answer.status_code)
            rendered[(role, url)] = answer
    rendered[("anyone", f"/signin?lang={lang}")] = books.client.get(f"/signin?lang={lang}")
    rendered[("admin", "POST /admin/keys")] = books.client.post(f"/admin/keys?lang={lang}", data={"platform": "xanh"},
                                                                 headers=headers(books, "admin"))
    rendered[("policy", "POST /policy")] = books.client.post(f"/policy?lang={lang}", data={},
                                                             headers=headers(books, "policy"))
    form = {"baseline": "vn-pilot", "start": "2026-01", "horizon_months": "2", "workers": "60", "seed": "7",
            "tiers.poor": "45"}
    job_url = books.client.post(f"/policy?lang={lang}", data=form, headers=headers(books, "policy"),
                                follow_redirects=False).headers["location"]
    rendered[("policy", "a job's page, running")] = books.client.get(f"{job_url}?lang={lang}",
                                                                     headers=headers(books, "policy"))
    books.client.app.state.jobs.wait(job_url.rsplit("/", 1)[1], 240)
    rendered[("policy", "a job's page, done")] = books.client.get(f"{job_url}?lang={lang}",
                                                                  headers=headers(books, "policy"))
    rendered[("policy", "/policy with a job")] = books.client.get(f"/policy?lang={lang}",
                                                                  headers=headers(books, "policy"))
    rendered[("policy", "no such job")] = books.client.get(f"/policy/jobs/0123456789abcdef?lang={lang}",
                                                           headers=headers(books, "policy"))
    bank = f"date,amount_vnd,payer,reference,bank_ref\n{CLOSED}-20,1000,grab,x,VCB-{lang}\n".encode()
    rendered[("insurer", "POST /insurer/payments/preview")] = books.client.post(
        f"/insurer/payments/preview?lang={lang}", files={"file": ("bank.csv", bank)}, headers=headers(books, "insurer"))
    rendered[("insurer", "POST /insurer/payments/preview, a bad file")] = books.client.post(
        f"/insurer/payments/preview?lang={lang}", files={"file": ("bank.csv", bank.replace(b"1000", b"x"))},
        headers=headers(books, "insurer"))
    assert rendered[("worker", f"/?month=2026-13&lang={lang}")].status_code == 400  # the error page
    assert all(answer.status_code < 500 for answer in rendered.values())
    found = {page: leaks(answer.text) for page, answer in rendered.items() if leaks(answer.text)}
    assert found == {}


def test_the_admin_page_heads_the_platform_keys_in_words(books):
    page = books.client.get("/admin?lang=en", headers=headers(books, "admin")).text
    assert '<h2 id="keys-heading">Platform API keys</h2>' in page
    page = books.client.get("/admin?lang=vi", headers=headers(books, "admin")).text
    assert '<h2 id="keys-heading">Khóa API của nền tảng</h2>' in page


def test_the_leak_pattern_catches_what_the_admin_page_once_showed():
    assert leaks("<h2>{}</h2>".format({}.keys))
    assert leaks("<td>None</td>") and leaks("<p>{{ t.x }}</p>") and leaks("<p><object object at 0x7f00></p>")
    assert not leaks("<td>Nonexistent</td><p>None of the months</p>")

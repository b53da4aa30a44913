"""Server-rendered pages for workers, insurers, policy analysts and administrators.

Thin like the JSON routes: each page calls the same ledger (or simulator) function as
its API route, with the same roles (`docs/http.md`), and renders the result with
Jinja2. No business rule lives here. Vietnamese first; `?lang=en` switches to English
and a cookie remembers it. Browsers sign in through `/signin` (`api/web/auth.py`).

`install(app)` mounts the router and `/static`, and turns "sign in first" and "not
your role" into a redirect and a page (the JSON API keeps answering problem+json).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import time
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from hmac import compare_digest as hmac_equal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.deps import Services, services
from api.exports import FORMATS, events_csv_bytes, history_csv_bytes, lines_bytes, settlement_bytes, statement_csv_bytes
from api.formats import formats, mask_national_id
from api.i18n import assumption_lines, event_kind_text, event_note, projection_lines
from api.keys import UnknownKey
from api.observability import mask_ids
from api.problems import Problem
from api.routes.months import MONTH
from api.routes.simulations import JOB_WORKERS_MAX, checked_scenario, found_job, submit_job
from api.tokens import Principal, TokenError
from api.vietqr import qr_svg, vietqr_payload
from api.web import charts
from api.web.assets import Assets
from api.web.auth import (
    LANG_COOKIE,
    LANG_COOKIE_MAX_AGE_SECONDS,
    PageForbidden,
    SignInRequired,
    clear_session,
    mint_session,
    page_principal,
    page_role,
    same_origin,
    set_session,
)
from api.web.texts import LANGS, texts
from ledger.close import CloseError, TierImportError, close_month, import_tier_records, read_tier_records
from ledger.events import month_text
from ledger.money import (STATE_NAMES, PaymentError, account_statement, amount_to_complete,
                          bills_of_month, month_to_complete, read_payments, record_payments)
from ledger.platforms import platform_name, platform_registry, registered
from ledger.reports import PENSION_MONTHS_NEEDED, history, months_overview, settlement, statement
from ledger.trips import BadCursor, EventsArchived, all_worker_events, worker_events
from rules import KINDS, PARTIES, SCHEMES, NoVersionInForce, load_pack, shipped_packs
from simulations import brief

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

MONTH_PATTERN = re.compile(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$")
NATIONAL_ID_PATTERN = re.compile(r"^\d{12}$")
PLATFORM_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PAYER_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # a platform id (GET /v1/payers/{payer}: ≤ 64) or "state"
ACCOUNT_ROLES = ("insurer", "admin")  # the roles of GET /v1/payers/{payer}/account
# The page stays under 16 KB however long the account: the latest lines (the CSV has every line)
# and the oldest open items (the totals count them all).
ACCOUNT_LINES_SHOWN_MAX = 24
ACCOUNT_ITEMS_SHOWN_MAX = 12
EVENTS_PAGE_SHOWN = 20  # booked events a page of the worker's list (`?limit=` up to the max)
EVENTS_PAGE_SHOWN_MAX = 100
HOME_BY_ROLE = {"worker": "/", "insurer": "/insurer", "policy": "/policy", "admin": "/admin"}
NEXT_ALLOWED = ("/", "/insurer", "/policy", "/admin")
HOUSEHOLD_CSV_BYTES_MAX = 8 * 1024 * 1024
POLICY_HORIZON_MONTHS_MAX = 36  # a page run answers in seconds; longer runs: `ansinh simulate`
POLICY_WORKERS_DEFAULT = 3000
IMPORT_ERRORS_SHOWN_MAX = 200
# A bank statement imported from the browser travels back with the confirmation (base64 in the
# form, checked against its SHA-256): 1 MiB is ~12,000 lines; larger files: `ansinh payments import`.
BANK_CSV_BYTES_MAX = 1024 * 1024
PAYMENT_LINES_SHOWN_MAX = 200  # lines listed on the preview and result pages; the totals count them all
PAYMENT_ROLES = ("insurer", "admin")  # the roles of POST /v1/payments
# No inline script or style; inline SVG uses presentation attributes, which CSP does not govern.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
}


class PageError(Exception):
    """A user error shown as a page in the caller's language (`key` names a text)."""

    def __init__(self, status: int, key: str, **values: Any) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


# -- language and rendering ---------------------------------------------------

def page_lang(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else "vi"


def render(request: Request, template: str, principal: Principal | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    lang = page_lang(request)
    words = texts(lang)
    other = words["lang_other"]
    shown = formats(lang)  # every figure, month, date and name on a page goes through api.formats
    response = templates.TemplateResponse(request, template, {
        "t": words, "lang": lang, "principal": principal, "fmt": shown,
        "money": lambda amount: shown.money(int(amount)), "count": lambda number: shown.count(int(number)),
        "asset": request.app.state.assets.url,
        "lang_url": _relative(request.url.include_query_params(lang=other)),
        "nav": _nav(principal), "nav_current": _nav_current(request.url.path, _nav(principal)),
        "demo_mode": request.app.state.services.settings.mode == "demo", **context}, status_code=status)
    _remember_lang(request, response)
    response.headers.update(PAGE_HEADERS)
    return response


def _relative(url) -> str:
    return url.path + (f"?{url.query}" if url.query else "")


def _remember_lang(request: Request, response: Response) -> None:
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, request.query_params["lang"], max_age=LANG_COOKIE_MAX_AGE_SECONDS,
                            httponly=True, samesite="strict", path="/")


def _nav(principal: Principal | None) -> list[tuple[str, str]]:
    """Links to the pages the caller's role may open (the same table as docs/http.md)."""
    if principal is None:
        return []
    allowed = {"worker": ["/"], "insurer": ["/insurer", "/insurer/payments"], "policy": ["/insurer", "/policy"],
               "admin": ["/insurer", "/insurer/payments", "/admin"]}[principal.role]
    names = {"/": "nav_worker", "/insurer": "nav_insurer", "/insurer/payments": "nav_payments",
             "/policy": "nav_policy", "/admin": "nav_admin"}
    return [(path, names[path]) for path in allowed]


def _nav_current(path: str, nav: list[tuple[str, str]]) -> str | None:
    """The nav link the page is under: the longest that is the path or a folder of it."""
    under = [href for href, _ in nav if path == href or (href != "/" and path.startswith(href + "/"))]
    return max(under, key=len, default=None)


def _download(data: bytes, media_type: str, filename: str, **headers: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", **headers})


def _month_or_error(month: str | None) -> str:
    if month is None or not MONTH_PATTERN.fullmatch(month):
        raise PageError(400, "bad_month")
    return month


async def _form(request: Request) -> Any:
    if not same_origin(request):
        raise PageError(403, "bad_origin")
    return await request.form()


# -- sign in and out ----------------------------------------------------------

@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, svc: Services = Depends(services)) -> HTMLResponse:
    return _signin(request, svc)


def _signin(request: Request, svc: Services, error: str | None = None, status: int = 200) -> HTMLResponse:
    wanted = request.query_params.get("next", "/")
    return render(request, "signin.html", None, status=status, error=error,
                  next=wanted if wanted in NEXT_ALLOWED else "/", demo=svc.settings.mode == "demo",
                  minutes=svc.settings.token_ttl_seconds // 60)


@router.post("/signin")
async def signin(request: Request, svc: Services = Depends(services)) -> Response:
    form = await _form(request)
    words = texts(page_lang(request))
    how = str(form.get("how", ""))
    target = str(form.get("next", "/"))
    if how in ("worker", "staff") and svc.settings.mode != "demo":
        return _signin(request, svc, words["demo_only"], 403)
    if how == "worker":
        national_id = str(form.get("national_id", "")).strip()
        if not NATIONAL_ID_PATTERN.fullmatch(national_id):
            return _signin(request, svc, words["bad_national_id"], 422)
        # The token's subject is the keyed pseudonym, as `ansinh token worker` makes it.
        token = mint_session(svc, "worker", svc.ledger.keys.pseudonym(national_id))
        role_name = "worker"
    elif how == "staff":
        role_name = str(form.get("role", ""))
        if role_name not in ("insurer", "policy", "admin"):
            return _signin(request, svc, words["bad_token"].format(reason=role_name or "?"), 422)
        token = mint_session(svc, role_name, f"web-demo-{role_name}")
    else:
        token = str(form.get("token", "")).strip()
        try:
            role_name = svc.tokens.principal(token, svc.ledger.clock()).role
        except TokenError as error:
            return _signin(request, svc, words["bad_token"].format(reason=str(error)), 401)
    home = HOME_BY_ROLE[role_name]
    response = RedirectResponse(target if target in NEXT_ALLOWED and target != "/" else home, status_code=303)
    set_session(response, request, svc, token)
    return response


@router.post("/signout")
async def signout(request: Request, svc: Services = Depends(services)) -> Response:
    await _form(request)
    response = RedirectResponse("/signin", status_code=303)
    clear_session(response, request, svc)
    return response


# -- worker ---------------------------------------------------------------------

def _worker_view(svc: Services, principal: Principal, month: str | None) -> dict[str, Any]:
    """The statement and history of the signed-in worker: GET /v1/workers/me/* read the same functions."""
    national_id = svc.ledger.national_id_for_pseudonym(principal.subject)
    if national_id is None:
        return {"national_id": None}
    past = history(svc.ledger, national_id)
    months = [line["month"] for line in past["months"]]
    chosen = month or (months[-1] if months else month_text(int(svc.ledger.clock().strftime("%Y%m"))))
    report = statement(svc.ledger, national_id, chosen)
    return {"national_id": national_id, "masked_id": mask_national_id(national_id), "months": months,
            "month": chosen, "report": report, "history": past}


@router.get("/", response_class=HTMLResponse)
async def worker_page(request: Request, principal: Principal = Depends(page_principal),
                      svc: Services = Depends(services)) -> Response:
    if principal.role != "worker":
        return RedirectResponse(HOME_BY_ROLE[principal.role], status_code=303)
    month = request.query_params.get("month")
    view = await run_in_threadpool(_worker_view, svc, principal, _month_or_error(month) if month else None)
    if view["national_id"] is None:
        return render(request, "worker.html", principal, view=None)
    events = await run_in_threadpool(_events_view, svc, view, request.query_params.get("cursor"),
                                     request.query_params.get("limit"))
    lang = page_lang(request)
    words = texts(lang)
    return render(request, "worker.html", principal, view=view, schemes=SCHEMES, events=events,
                  kind_text=lambda item: event_kind_text(item, lang), note_text=lambda item: event_note(item, lang),
                  needed=PENSION_MONTHS_NEEDED, chart=_history_chart(view["history"], words, lang),
                  legend=charts.legend(_history_series(view["history"], words)),
                  topup=_topup(svc, view["report"], words, lang), meaning=_meaning(view["report"], words, lang),
                  paid=paid_by(view["report"]))


def paid_by(report: dict[str, Any]) -> dict[str, Any]:
    """The month's money by who paid it, in figures that add up to the statement's scheme lines.

    Each platform's rows (what you and it paid through it), your own top-ups, then the state's
    top-up, which no platform paid; `totals` are the sums of the scheme lines, so a reader adding
    the rows gets the "total" of the three schemes (tests/web/test_screens.py pins it).
    """
    rows = [{"key": name, "worker": sum(part["worker"] for part in by_scheme.values()),
             "platform": sum(part["platform"] for part in by_scheme.values())}
            for name, by_scheme in report["platforms"].items()]
    if report.get("topups_vnd"):
        rows.append({"key": "topups", "worker": report["topups_vnd"], "platform": 0})
    for row in rows:
        row["total"] = row["worker"] + row["platform"]
    lines = report["schemes"].values()
    totals = {part: sum(line[part] for line in lines) for part in ("worker", "platform", "subsidy", "total")}
    return {"rows": rows, "subsidy": totals["subsidy"], "totals": totals}


def _meaning(report: dict[str, Any], words: dict[str, str], lang: str) -> dict[str, Any] | None:
    """The statement's `meaning` as the page shows it: the estimate's lines and its assumptions
    (the same words as `ansinh statement`, api/i18n.py); None without a projection."""
    projection = (report.get("meaning") or {}).get("projection")
    if not projection:
        return None
    shown = formats(lang)
    return {"lines": projection_lines(projection, words, shown), "assumptions": assumption_lines(projection, words, shown)}


def _topup(svc: Services, report: dict[str, Any], words: dict[str, str], lang: str) -> dict[str, Any] | None:
    """"Pay X ₫ to complete month M" with the worker's reference and, when the fund's account is
    known, a VietQR code (api/vietqr.py) that fills the transfer in; None when nothing is owed."""
    amount, reference = amount_to_complete(report), report.get("topup_reference")
    if amount <= 0 or not reference:
        return None
    account = svc.settings.fund_account_for_topups()
    shown = {"amount_vnd": amount, "month": month_to_complete(report), "reference": reference, "account": account,
             "qr": None, "payload": None}
    if account is not None:
        shown["payload"] = vietqr_payload(account[0], account[1], amount, reference)
        shown["qr"] = qr_svg(shown["payload"], words["topup_qr"].format(amount=formats(lang).money(amount),
                                                                        reference=reference))
    return shown


def _events_view(svc: Services, view: dict[str, Any], cursor: str | None, limit: str | None) -> dict[str, Any]:
    """One page of the month's booked events (GET /v1/workers/me/events reads the same function),
    with the links to the pages before and after it (keyset cursors, ledger/trips.py)."""
    size = int(limit) if limit and limit.isascii() and limit.isdigit() and 0 < len(limit) <= 3 else None
    size = min(size or EVENTS_PAGE_SHOWN, EVENTS_PAGE_SHOWN_MAX)
    try:
        page = worker_events(svc.ledger, view["national_id"], view["month"], cursor=cursor or None, limit=size)
    except BadCursor:
        raise PageError(400, "bad_cursor") from None
    except EventsArchived:
        return {"archived": True, "rows": [], "next": None, "prev": None}

    def link(to: str | None) -> str | None:
        if to is None:
            return None
        query = {"month": view["month"], "cursor": to, **({"limit": str(size)} if size != EVENTS_PAGE_SHOWN else {})}
        return "/?" + urlencode(query) + "#events"

    return {"archived": False, "rows": page.items, "next": link(page.next_cursor), "prev": link(page.prev_cursor)}


def _history_series(past: dict[str, Any], words: dict[str, str]) -> list[tuple[str, str, list[int]]]:
    def part(name: str) -> list[int]:
        return [sum(line["schemes"][scheme][name] for scheme in SCHEMES) for line in past["months"]]
    return [(words["worker"], "s0", part("worker")), (words["platform"], "s1", part("platform")),
            (words["subsidy"], "s2", part("subsidy"))]


def _money_axis(words: dict[str, str], lang: str) -> dict[str, Any]:
    """A chart's y axis in money: round numbers of ₫, thousand, million or billion ₫ (api/web/charts.py)."""
    return {"value_text": formats(lang).money, "tick_text": formats(lang).count,
            "units": [(10 ** power, words[f"unit_{10 ** power}"]) for power in (0, 3, 6, 9)]}


def _history_chart(past: dict[str, Any], words: dict[str, str], lang: str):
    labels = [formats(lang).month_short(line["month"]) for line in past["months"]][-36:]
    series = [(name, css, values[-36:]) for name, css, values in _history_series(past, words)]
    return charts.bar_chart("history-chart", words["history_chart"], labels, series, stacked=True,
                            x_title=words["month"], **_money_axis(words, lang))


@router.get("/me/statement.csv")
async def worker_statement_csv(request: Request, principal: Principal = Depends(page_role("worker")),
                               svc: Services = Depends(services)) -> Response:
    view = await run_in_threadpool(_worker_view, svc, principal,
                                   _month_or_error(request.query_params.get("month"))
                                   if request.query_params.get("month") else None)
    if view["national_id"] is None:
        raise PageError(404, "no_accounts")
    report = view["report"]  # a file for people: the reader's language, scheme names (docs/web.md, "Files")
    return _download(statement_csv_bytes(report, page_lang(request)), "text/csv; charset=utf-8",
                     f"statement-{report['month']}.csv")


@router.get("/me/events.csv")
async def worker_events_csv(request: Request, principal: Principal = Depends(page_role("worker")),
                            svc: Services = Depends(services)) -> Response:
    """Every booked event of the month, headers in the reader's language (`ansinh statement … --events
    --format csv --lang …`)."""
    month = _month_or_error(request.query_params.get("month"))
    national_id = await run_in_threadpool(svc.ledger.national_id_for_pseudonym, principal.subject)
    if national_id is None:
        raise PageError(404, "no_accounts")
    try:
        items = await run_in_threadpool(lambda: list(all_worker_events(svc.ledger, national_id, month)))
    except EventsArchived:
        raise PageError(409, "events_archived", month=month) from None
    lang = page_lang(request)
    return _download(events_csv_bytes(items, lang), "text/csv; charset=utf-8",
                     f"{'giao-dich' if lang == 'vi' else 'events'}-{month}.csv")


@router.get("/me/history.csv")
async def worker_history_csv(request: Request, principal: Principal = Depends(page_role("worker")),
                             svc: Services = Depends(services)) -> Response:
    view = await run_in_threadpool(_worker_view, svc, principal, None)
    if view["national_id"] is None:
        raise PageError(404, "no_accounts")
    return _download(history_csv_bytes(view["history"], page_lang(request)), "text/csv; charset=utf-8",
                     "history.csv")


@router.get("/me/statement/print", response_class=HTMLResponse)
async def worker_statement_print(request: Request, principal: Principal = Depends(page_role("worker")),
                                 svc: Services = Depends(services)) -> HTMLResponse:
    month = request.query_params.get("month")
    view = await run_in_threadpool(_worker_view, svc, principal, _month_or_error(month) if month else None)
    if view["national_id"] is None:
        raise PageError(404, "no_accounts")
    return render(request, "print.html", principal, view=view, schemes=SCHEMES, needed=PENSION_MONTHS_NEEDED,
                  meaning=_meaning(view["report"], texts(page_lang(request)), page_lang(request)),
                  paid=paid_by(view["report"]))


# -- insurer --------------------------------------------------------------------

@router.get("/insurer", response_class=HTMLResponse)
async def insurer_page(request: Request, principal: Principal = Depends(page_role("insurer", "policy", "admin")),
                       svc: Services = Depends(services)) -> HTMLResponse:
    months = await run_in_threadpool(months_overview, svc.ledger)
    return render(request, "insurer.html", principal, months=months,
                  may_close=principal.role in ("insurer", "admin"))


def _settlement_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"name": name, "kind": "platform", **by_scheme, "total": sum(by_scheme.values())}
            for name, by_scheme in report["platforms"].items()]
    rows.append({"name": None, "kind": "state", **report["subsidy"], "total": sum(report["subsidy"].values())})
    return rows


def _settlement_view(svc: Services, month: str) -> dict[str, Any]:
    """The settlement (GET /v1/months/{m}/settlement) and, once closed, its bills (GET /v1/months/{m}/bills)."""
    report = settlement(svc.ledger, month)
    return {"report": report, "rows": _settlement_rows(report),
            "bills": bills_of_month(svc.ledger, month) if report["closed"] else []}


def _money_words(request: Request, principal: Principal) -> dict[str, Any]:
    """What the bills and account templates need: kinds and payers in the page's language."""
    words = texts(page_lang(request))

    shown = formats(page_lang(request))

    def kind_text(kind: str) -> str:  # ledger.money's labels: bill, claim si, late interest, payment
        if kind.startswith("claim"):
            scheme = kind.partition(" ")[2]
            return words["kind_claim"].format(scheme=shown.scheme(scheme) if scheme in SCHEMES else scheme)
        return words.get({"bill": "kind_bill", "late interest": "kind_interest", "payment": "kind_payment"}
                         .get(kind, ""), kind)

    return {"kind_text": kind_text,
            "payer_name": lambda payer: words["account_state"] if payer in STATE_NAMES else platform_name(payer),
            "may_open_accounts": principal.role in ACCOUNT_ROLES}


@router.get("/insurer/months/{month}", response_class=HTMLResponse)
async def settlement_page(request: Request, month: str = MONTH,
                          principal: Principal = Depends(page_role("insurer", "policy", "admin")),
                          svc: Services = Depends(services)) -> HTMLResponse:
    view = await run_in_threadpool(_settlement_view, svc, month)
    return render(request, "settlement.html", principal, **view, **_money_words(request, principal),
                  schemes=SCHEMES, done=None)


@router.get("/insurer/months/{month}/settlement.{file_format}")
async def settlement_download(month: str = MONTH, file_format: str = "csv",
                              _: Principal = Depends(page_role("insurer", "policy", "admin")),
                              svc: Services = Depends(services)) -> Response:
    if file_format not in ("csv", "parquet"):
        raise PageError(404, "not_found")
    report = await run_in_threadpool(settlement, svc.ledger, month)
    # The same bytes and headers as GET /v1/months/{month}/settlement?format=…
    return _download(settlement_bytes(report, file_format), FORMATS[file_format],
                     f"settlement-{month}.{file_format}", **{
                         "X-Control-Total-VND": str(report["control_total_vnd"]),
                         "X-Postings-SHA256": report["postings_sha256"]})


@router.get("/insurer/months/{month}/close", response_class=HTMLResponse)
async def close_confirm_page(request: Request, month: str = MONTH,
                             principal: Principal = Depends(page_role("insurer", "admin")),
                             svc: Services = Depends(services)) -> HTMLResponse:
    report = await run_in_threadpool(settlement, svc.ledger, month)
    return render(request, "close.html", principal, report=report, rows=_settlement_rows(report), schemes=SCHEMES,
                  error=None)


@router.post("/insurer/months/{month}/close", response_class=HTMLResponse)
async def close_page(request: Request, month: str = MONTH,
                     principal: Principal = Depends(page_role("insurer", "admin")),
                     svc: Services = Depends(services)) -> HTMLResponse:
    await _form(request)
    started = time.perf_counter()
    try:
        result = await run_in_threadpool(close_month, svc.ledger, month)
    except CloseError as error:
        report = await run_in_threadpool(settlement, svc.ledger, month)
        return render(request, "close.html", principal, status=409, report=report, rows=_settlement_rows(report),
                      schemes=SCHEMES, error=str(error))
    svc.metrics.close_seconds.observe(time.perf_counter() - started)
    view = await run_in_threadpool(_settlement_view, svc, month)
    return render(request, "settlement.html", principal, **view, **_money_words(request, principal),
                  schemes=SCHEMES, done=result)


def _account(svc: Services, payer: str) -> dict[str, Any]:
    """The statement of account GET /v1/payers/{payer}/account returns; an unknown payer is a 404 page."""
    if not PAYER_PATTERN.fullmatch(payer):
        raise PageError(404, "not_found")
    try:
        return account_statement(svc.ledger, payer)
    except LookupError:
        raise PageError(404, "no_such_payer", payer=payer) from None


# Declared before /insurer/accounts/{payer}, which would otherwise take "grab.csv" for a payer.
@router.get("/insurer/accounts/{payer}.csv")
async def account_download(payer: str, _: Principal = Depends(page_role(*ACCOUNT_ROLES)),
                           svc: Services = Depends(services)) -> Response:
    report = await run_in_threadpool(_account, svc, payer)
    # The same bytes as GET /v1/payers/{payer}/account?format=csv
    return _download(lines_bytes(report["lines"], "csv", {"balance_vnd": str(report["balance_vnd"])}),
                     FORMATS["csv"], f"account-{report['payer']}.csv")


@router.get("/insurer/accounts/{payer}", response_class=HTMLResponse)
async def account_page(request: Request, payer: str, principal: Principal = Depends(page_role(*ACCOUNT_ROLES)),
                       svc: Services = Depends(services)) -> HTMLResponse:
    report = await run_in_threadpool(_account, svc, payer)
    return render(request, "account.html", principal, report=report, **_money_words(request, principal),
                  lines=report["lines"][-ACCOUNT_LINES_SHOWN_MAX:],
                  open_items=report["open_items"][:ACCOUNT_ITEMS_SHOWN_MAX])


# -- insurer: bank statements ---------------------------------------------------

def _payments_page(request: Request, principal: Principal, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, "payments.html", principal, status=status, max_kib=BANK_CSV_BYTES_MAX // 1024,
                  **{"errors": [], "error_count": 0, "preview": None, "booked": None, **context},
                  **_money_words(request, principal))


@router.get("/insurer/payments", response_class=HTMLResponse)
async def payments_page(request: Request, principal: Principal = Depends(page_role(*PAYMENT_ROLES))) -> HTMLResponse:
    return _payments_page(request, principal)


def _check_statement(svc: Services, data: bytes, *, dry_run: bool) -> dict[str, Any]:
    """`ansinh payments import`'s checks and booking: every line read (`read_payments`, line-numbered
    errors), then all booked or none (`record_payments`); with `dry_run`, checked and nothing written."""
    numbered = read_payments(io.BytesIO(data), "bank statement")
    outcomes = record_payments(svc.ledger, [payment for _, payment in numbered],
                               lines=[line for line, _ in numbered], dry_run=dry_run)
    rows = [{"line": line, "paid_on": payment.paid_on, **outcome.as_dict()}
            for (line, payment), outcome in zip(numbered, outcomes)]
    booked = [row for row in rows if row["status"] == "booked"]
    by_payer: dict[str, dict[str, int]] = {}
    for row in booked:
        payer = by_payer.setdefault(row["payer"], {"count": 0, "amount_vnd": 0})
        payer["count"] += 1
        payer["amount_vnd"] += row["amount_vnd"]
    return {"rows": rows[:PAYMENT_LINES_SHOWN_MAX], "lines": len(rows), "booked": len(booked),
            "booked_vnd": sum(row["amount_vnd"] for row in booked), "duplicates": len(rows) - len(booked),
            "credit_vnd": sum(row["credit_vnd"] for row in booked), "by_payer": dict(sorted(by_payer.items()))}


def _refused(request: Request, principal: Principal, error: PaymentError) -> HTMLResponse:
    # The page's language from the problems' codes (ledger/file_errors.py), which never quote a cell
    # that could be a citizen id; mask_ids stays as a second guard.
    errors = [mask_ids(problem.text(page_lang(request))) for problem in error.problems[:IMPORT_ERRORS_SHOWN_MAX]]
    return _payments_page(request, principal, 422, errors=errors, error_count=len(error.problems))


@router.post("/insurer/payments/preview", response_class=HTMLResponse)
async def payments_preview(request: Request, principal: Principal = Depends(page_role(*PAYMENT_ROLES)),
                           svc: Services = Depends(services)) -> HTMLResponse:
    """Check an uploaded (or pasted) bank statement as the CLI would and show what booking it does;
    nothing is written. The file goes back with the confirmation, with its SHA-256."""
    form = await _form(request)
    words = texts(page_lang(request))
    upload = form.get("file")
    raw = await upload.read(BANK_CSV_BYTES_MAX + 1) if hasattr(upload, "read") else b""
    data = raw if raw else str(form.get("csv_text", "")).encode("utf-8")
    if len(data) > BANK_CSV_BYTES_MAX:
        return _payments_page(request, principal, 413, errors=[words["bank_too_large"].format(
            size=formats(page_lang(request)).count(BANK_CSV_BYTES_MAX // 1024))], error_count=1)
    if not data.strip():
        return _payments_page(request, principal, 422, errors=[words["bank_empty"]], error_count=1)
    try:
        preview = await run_in_threadpool(lambda: _check_statement(svc, data, dry_run=True))
    except PaymentError as error:
        return _refused(request, principal, error)
    return _payments_page(request, principal, preview=preview, data=base64.b64encode(data).decode("ascii"),
                          digest=hashlib.sha256(data).hexdigest())


@router.post("/insurer/payments", response_class=HTMLResponse)
async def payments_book(request: Request, principal: Principal = Depends(page_role(*PAYMENT_ROLES)),
                        svc: Services = Depends(services)) -> HTMLResponse:
    """Book the previewed statement: the same bytes (their SHA-256 as previewed), checked again."""
    form = await _form(request)
    try:
        data = base64.b64decode(str(form.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data or len(data) > BANK_CSV_BYTES_MAX or \
            not hmac_equal(hashlib.sha256(data).hexdigest(), str(form.get("sha256", ""))):
        return _payments_page(request, principal, 422, errors=[texts(page_lang(request))["bank_changed"]],
                              error_count=1)
    try:
        booked = await run_in_threadpool(lambda: _check_statement(svc, data, dry_run=False))
    except PaymentError as error:
        return _refused(request, principal, error)
    return _payments_page(request, principal, booked=booked)


# -- policy ---------------------------------------------------------------------

def _version_at(pack_name: str, start: str):
    pack = load_pack(pack_name)
    try:
        return pack.version_on(date.fromisoformat(f"{start}-01"))
    except NoVersionInForce:  # a start before the pack's first version: offer its first version
        return pack.versions[0]


def _policy_fields(version) -> dict[str, list[dict[str, Any]]]:
    """The parameters the form offers: rates that are not zero for every kind, tiers, caps."""
    pairs = [(scheme, party) for scheme in SCHEMES for party in PARTIES
             if any(version.rates_ppm.get((kind, scheme, party), 0) for kind in KINDS)]
    rates = [{"name": f"rates.{kind}.{scheme}.{party}", "kind": kind, "scheme": scheme, "party": party,
              "value": _percent(version.rates_ppm.get((kind, scheme, party), 0))}
             for kind in KINDS for scheme, party in pairs]
    tiers = [{"name": f"tiers.{tier}", "tier": tier, "value": _percent(ppm)}
             for tier, ppm in sorted(version.tier_rate_ppm.items())]
    caps = [{"name": f"caps.{scheme}", "scheme": scheme, "value": str(amount)}
            for scheme, amount in sorted(version.subsidy_base_cap_vnd.items())]
    return {"rates": rates, "tiers": tiers, "caps": caps}


def _percent(ppm: int) -> str:
    """10000 ppm -> '1'; 12500 -> '1.25' (exact: Decimal, no float)."""
    text = format(Decimal(ppm) / Decimal(10_000), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ppm(text: str) -> int | None:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        return None
    ppm = value * 10_000
    return int(ppm) if ppm == ppm.to_integral_value() and 0 <= ppm <= 1_000_000 else None


def _policy_document(form: Any) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The scenario a filled form describes: the baseline, and one reform of every changed field."""
    errors: list[str] = []
    baseline = str(form.get("baseline", "vn-pilot"))
    if baseline not in shipped_packs():
        errors.append(f"baseline: unknown pack {baseline!r}")
        baseline = "vn-pilot"
    start = str(form.get("start", "2026-01"))
    if not MONTH_PATTERN.fullmatch(start):
        errors.append("start: must be YYYY-MM")
        start = "2026-01"
    numbers = {}
    for name, low, high in (("horizon_months", 1, POLICY_HORIZON_MONTHS_MAX), ("workers", 1, JOB_WORKERS_MAX),
                            ("seed", 0, 2**31 - 1)):
        raw = str(form.get(name, "")).strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            errors.append(f"{name}: must be a whole number from {low:,} to {high:,}")
        else:
            numbers[name] = int(raw)
    version = _version_at(baseline, start)
    fields = _policy_fields(version)
    changes: dict[str, Any] = {}
    for group in ("rates", "tiers"):
        for field in fields[group]:
            raw = str(form.get(field["name"], field["value"]))
            ppm = _ppm(raw)
            if ppm is None:
                errors.append(f"{field['name']}: a percentage from 0 to 100, e.g. 1.2")
                continue
            field["value"] = raw
            if ppm != _ppm(_percent(_baseline_value(version, field["name"]))):
                changes[field["name"]] = {f"{start}-01": ppm}
    for field in fields["caps"]:
        raw = str(form.get(field["name"], field["value"])).strip().replace(".", "").replace(",", "")
        if not raw.isdigit():
            errors.append(f"{field['name']}: a whole number of dong")
            continue
        field["value"] = raw
        if int(raw) != version.subsidy_base_cap_vnd[field["scheme"]]:
            changes[field["name"]] = {f"{start}-01": int(raw)}
    document = {"name": "web-what-if", "description": "edited on the policy page", "baseline": baseline,
                "start": start, "horizon_months": numbers.get("horizon_months", 12), "seed": numbers.get("seed", 1),
                "population": {"synthetic": {"workers": numbers.get("workers", POLICY_WORKERS_DEFAULT)}},
                "budget": {"strategy": "none"},
                "reforms": {"reform": {"description": "edited on the policy page", "changes": changes}}}
    shown = {"baseline": baseline, "start": start, "horizon_months": form.get("horizon_months", ""),
             "workers": form.get("workers", ""), "seed": form.get("seed", ""), "fields": fields}
    return document, shown, errors


def _baseline_value(version, name: str) -> int:
    parts = name.split(".")
    if parts[0] == "rates":
        return version.rates_ppm.get((parts[1], parts[2], parts[3]), 0)
    return version.tier_rate_ppm[parts[1]]


def _policy_defaults(baseline: str = "vn-pilot", start: str = "2026-01") -> dict[str, Any]:
    return {"baseline": baseline, "start": start, "horizon_months": 12, "workers": POLICY_WORKERS_DEFAULT,
            "seed": 20260101, "fields": _policy_fields(_version_at(baseline, start))}


def _policy_page(request: Request, principal: Principal, form: dict[str, Any], status: int = 200,
                 errors: list[str] | None = None) -> HTMLResponse:
    queue = request.app.state.jobs
    return render(request, "policy.html", principal, status=status, form=form, packs=shipped_packs(),
                  errors=errors or [], max_workers=JOB_WORKERS_MAX, max_horizon=POLICY_HORIZON_MONTHS_MAX,
                  jobs=[_job_line(queue.view(job), page_lang(request)) for job in queue.list()])


@router.get("/policy", response_class=HTMLResponse)
async def policy_page(request: Request, principal: Principal = Depends(page_role("policy")),
                      ) -> HTMLResponse:
    baseline = request.query_params.get("baseline", "vn-pilot")
    return _policy_page(request, principal, _policy_defaults(baseline if baseline in shipped_packs() else "vn-pilot"))


@router.post("/policy", response_class=HTMLResponse)
async def policy_run(request: Request, principal: Principal = Depends(page_role("policy"))) -> Response:
    """Start the what-if as a background job (simulations/jobs.py) and go to its page, which shows its progress
    and then its result; a form with errors comes back with them (422)."""
    form = await _form(request)
    document, shown, errors = _policy_document(form)
    if not errors and not document["reforms"]["reform"]["changes"]:
        errors.append(texts(page_lang(request))["no_changes"])
    if not errors:
        try:
            job = submit_job(request.app.state.jobs, document, principal.subject, report_lang=page_lang(request))
        except Problem as problem:
            errors = [f"{issue['key']}: {issue['reason']}" for issue in problem.extra.get("errors", [])] \
                or [problem.detail]
        else:
            return RedirectResponse(f"/policy/jobs/{job.id}", status_code=303)
    return _policy_page(request, principal, shown, status=422, errors=errors)


def _job_line(view: dict[str, Any], lang: str) -> dict[str, Any]:
    """A job as the pages show it: its stage in words, its times as moments."""
    words, shown = texts(lang), formats(lang)
    status = view["status"]
    text = words["job_status_queued"].format(position=shown.count(view["position"] or 1)) \
        if status == "queued" else words[f"stage_{status}"]
    moment = datetime.fromtimestamp(view["created"], tz=timezone.utc)
    return {**view, "status_text": text, "created_text": shown.moment(moment),
            "size_text": words["job_size_text"].format(workers=shown.count(view["workers"]),
                                                       months=shown.count(view["horizon_months"])),
            "finished_run": status in ("done", "failed", "cancelled")}


def _job_or_404(request: Request, job_id: str):
    try:
        return found_job(request.app.state.jobs, job_id)
    except Problem:
        raise PageError(404, "no_job") from None


@router.get("/policy/jobs/{job_id}", response_class=HTMLResponse)
async def policy_job(request: Request, job_id: str, principal: Principal = Depends(page_role("policy"))
                     ) -> HTMLResponse:
    """A job's page: its progress while it waits or runs (the page polls `…/status`), then its result — the
    brief, and the charts and tables at national scale — or its error. A reload reads the job back."""
    queue = request.app.state.jobs
    job = _job_or_404(request, job_id)
    lang = page_lang(request)
    result = await run_in_threadpool(queue.result, job)
    payload = job.document
    has_report = queue.file(job, "report.html") is not None
    return render(request, "policy_job.html", principal, job=_job_line(queue.view(job), lang),
                  result=_policy_result(result, payload["scenario"], texts(lang), lang) if result else None,
                  has_report=has_report, report_pending=bool(result and payload.get("report_lang")) and not has_report)


@router.get("/policy/jobs/{job_id}/status")
async def policy_job_status(request: Request, job_id: str, _: Principal = Depends(page_role("policy"))
                            ) -> Response:
    """What the job page polls: status, stage in words, percent, place in the queue, error (JSON)."""
    queue = request.app.state.jobs
    job = _job_or_404(request, job_id)
    view = _job_line(queue.view(job), page_lang(request))
    body = {key: view[key] for key in ("id", "status", "status_text", "percent", "position", "error",
                                       "finished_run")}
    body["report_ready"] = queue.file(job, "report.html") is not None
    return Response(json.dumps(body), media_type="application/json", headers=PAGE_HEADERS)


@router.post("/policy/jobs/{job_id}/cancel")
async def policy_job_cancel(request: Request, job_id: str, _: Principal = Depends(page_role("policy"))
                            ) -> Response:
    await _form(request)  # same origin only, as every form the pages post
    request.app.state.jobs.cancel(_job_or_404(request, job_id))
    return RedirectResponse(f"/policy/jobs/{job_id}", status_code=303)


@router.get("/policy/jobs/{job_id}/report")
async def policy_job_report(request: Request, job_id: str, _: Principal = Depends(page_role("policy"))
                            ) -> Response:
    """The simulator's full report of a finished job (report.html, in the language the job was started in)."""
    path = request.app.state.jobs.file(_job_or_404(request, job_id), "report.html")
    if path is None:
        raise PageError(404, "no_job")
    return _download(await run_in_threadpool(path.read_bytes), "text/html; charset=utf-8", "what-if-report.html")


def _policy_result(result: dict[str, Any], document: dict[str, Any], words: dict[str, str],
                   lang: str) -> dict[str, Any]:
    """The result as the page shows it: the brief, then the summary, charts and tables at national scale
    (`national_tables`, simulations/national.py: each simulated worker weighted); the sample's size beside."""
    tables = result.get("national_tables") or result["tables"]  # a result kept from before national tables
    weighted = "national_tables" in result
    summary = {row["arm"]: row for row in tables["summary"]}
    arms = list(summary)
    metrics = [("subsidy_vnd", True), ("worker_vnd", True), ("platform_vnd", True),
               ("workers_contributing", False), ("pension_months", False), ("leakage_per_mille", False)]
    rows = [{"key": key, "money": is_money, "values": [int(summary[arm][key]) for arm in arms],
             "delta": int(summary[arms[-1]][key]) - int(summary[arms[0]][key])} for key, is_money in metrics]
    money_axis = _money_axis(words, lang)
    years = sorted({int(row["year"]) for row in tables["budget_by_year_scheme"]})
    label = {arm: words["arm_baseline"] if arm == "baseline" else words["reform"] for arm in arms}
    budget = [(label[arm], f"s{number}", [sum(int(row["subsidy_vnd"]) for row in tables["budget_by_year_scheme"]
                                       if row["arm"] == arm and int(row["year"]) == year) for year in years])
              for number, arm in enumerate(arms)]
    tiers = sorted({row["group"] for row in tables["coverage"] if row["by"] == "tier"})
    coverage = [(label[arm], f"s{number}", [sum(int(row["pension_months"]) for row in tables["coverage"]
                                         if row["arm"] == arm and row["by"] == "tier" and row["group"] == tier)
                                     for tier in tiers]) for number, arm in enumerate(arms)]
    # Who gains is told on take-home pay and on credited months, apart — never on balances (a reform that
    # withholds more raises a worker's balance and lowers their pay). Per worker: the decile's (weighted)
    # mean change.
    decile_rows = sorted((row for row in tables["deciles_take_home"] if row["arm"] == arms[-1]),
                         key=lambda row: int(row["decile"]))
    deciles = [(words["difference"], "s1", [int(row["mean_delta_vnd"]) if "mean_delta_vnd" in row
                                            else int(row["delta_vnd"]) // max(int(row["workers"]), 1)
                                            for row in decile_rows])]
    reform = summary[arms[-1]]
    national = result.get("national")
    sample = result.get("sample_workers") or result["record"]["population"]["workers"]
    return {
        # The brief first: national figures (weighted to the calibrated totals) with their ranges.
        "brief": brief.sentences(national, lang, labels={"reform": words["reform"]}) if national else [],
        "validation": brief.display_rows(pd.DataFrame(result.get("validation_targets", [])), lang)
        if result.get("validation_targets") else None,
        "weighted": weighted,
        "sample_note": words["national_tables_note" if weighted else "sample_tables_note"].format(
            workers=formats(lang).count(int(sample))),
        "arms": arms, "rows": rows, "winners": int(reform["take_home_winners"]),
        "losers": int(reform["take_home_losers"]), "months_winners": int(reform["credited_months_winners"]),
        "months_losers": int(reform["credited_months_losers"]),
        "changes": document["reforms"]["reform"]["changes"],
        "change_lines": _change_lines(document["reforms"]["reform"]["changes"], words, lang),
        "scenario_json": json.dumps(document, sort_keys=True, separators=(",", ":")),
        "results_sha256": result["record"]["results_sha256"],
        "budget_chart": charts.bar_chart("chart-budget", words["chart_budget"], [str(y) for y in years], budget,
                                         stacked=False, x_title=words["axis_year"], **money_axis),
        "budget_legend": charts.legend(budget),
        "budget_table": {"labels": [str(y) for y in years], "series": budget},
        "coverage_chart": charts.bar_chart("chart-coverage", words["chart_coverage"],
                                           [words.get(f"tier_{t}", t) for t in tiers], coverage, stacked=False,
                                           value_text=formats(lang).count, tick_text=formats(lang).count,
                                           units=[(1, words["unit_months"])], x_title=words["axis_tier"]),
        "coverage_legend": charts.legend(coverage),
        "coverage_table": {"labels": [words.get(f"tier_{t}", t) for t in tiers], "series": coverage},
        "deciles_chart": charts.bar_chart("chart-deciles", words["chart_deciles"],
                                          [str(row["decile"]) for row in decile_rows], deciles, stacked=False,
                                          x_title=words["decile"], **money_axis),
        "deciles_table": {"labels": [str(row["decile"]) for row in decile_rows], "series": deciles},
    }


def _change_lines(changes: dict[str, dict[str, int]], words: dict[str, str], lang: str) -> list[dict[str, str]]:
    """Each changed parameter in words ("Chuyến xe · BHXH · người lao động → 1,2 % (01/01/2026)");
    the scenario's key (`rates.ride.si.worker`) stays in the downloadable scenario, and as `data-key`."""
    shown = formats(lang)
    lines = []
    for key, dated in changes.items():
        parts = key.split(".")
        if parts[0] == "rates":
            label = f"{words['kind_' + parts[1]]} · {shown.scheme_short(parts[2])} · {words['party_' + parts[3]]}"
        elif parts[0] == "tiers":
            label = f"{words['tiers']} · {words.get('tier_' + parts[1], parts[1])}"
        else:
            label = f"{words['caps']} · {shown.scheme_short(parts[1])}"
        for day, value in dated.items():
            if parts[0] == "caps":
                text = shown.money(value)
            else:
                percent = _percent(value)
                text = (percent.replace(".", ",") if lang == "vi" else percent) + " %"
            lines.append({"key": key, "label": label, "value": text, "day": shown.day(day)})
    return lines


@router.post("/policy/report")
async def policy_report(request: Request, _: Principal = Depends(page_role("policy"))) -> Response:
    form = await _form(request)
    try:
        document = json.loads(str(form.get("scenario", "")))
    except ValueError:
        raise PageError(422, "scenario_errors") from None
    scenario = checked_scenario(document)  # the route's checks: a Problem (422) for a bad or too large scenario

    def build() -> bytes:
        from simulations.report import render_charts, render_html
        from simulations.run import run_scenario

        run = run_scenario(scenario)
        lang = page_lang(request)
        return render_html(run, render_charts(run, lang), lang=lang).encode()

    return _download(await run_in_threadpool(build), "text/html; charset=utf-8", "what-if-report.html")


# -- admin ----------------------------------------------------------------------

def _admin(request: Request, principal: Principal, svc: Services, status: int = 200, **notice: Any) -> HTMLResponse:
    keys = [record.__dict__ for record in svc.keys.list()]
    return render(request, "admin.html", principal, status=status, keys=keys, platforms=platform_registry(),
                  **{"imported": None, "import_errors": [], "issued": None, "revoked": None,
                     "key_error": None, **notice})


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, principal: Principal = Depends(page_role("admin")),
                     svc: Services = Depends(services)) -> HTMLResponse:
    return await run_in_threadpool(_admin, request, principal, svc)


@router.post("/admin/households", response_class=HTMLResponse)
async def admin_households(request: Request, principal: Principal = Depends(page_role("admin")),
                           svc: Services = Depends(services)) -> HTMLResponse:
    form = await _form(request)
    upload = form.get("file")
    raw = await upload.read(HOUSEHOLD_CSV_BYTES_MAX + 1) if hasattr(upload, "read") else b""
    data = raw if raw else str(form.get("csv_text", "")).encode("utf-8")
    lang = page_lang(request)
    if len(data) > HOUSEHOLD_CSV_BYTES_MAX:
        return _admin(request, principal, svc, 413, import_errors=[texts(lang)["households_too_large"].format(
            size=formats(lang).count(HOUSEHOLD_CSV_BYTES_MAX // (1024 * 1024)))])
    try:
        records = read_tier_records(io.BytesIO(data), "the CSV")
        count = await run_in_threadpool(import_tier_records, svc.ledger, records,
                                        import_id=f"web-import:{principal.subject}")
    except TierImportError as error:  # said in the page's language (ledger/file_errors.py)
        errors = [mask_ids(problem.text(lang)) for problem in error.problems[:IMPORT_ERRORS_SHOWN_MAX]]
        return _admin(request, principal, svc, 422, import_errors=errors)
    return _admin(request, principal, svc, imported=count)


@router.post("/admin/keys", response_class=HTMLResponse)
async def admin_add_key(request: Request, principal: Principal = Depends(page_role("admin")),
                        svc: Services = Depends(services)) -> HTMLResponse:
    form = await _form(request)
    platform = str(form.get("platform", "")).strip()
    if not PLATFORM_PATTERN.fullmatch(platform) or not registered(platform):
        # Chosen from the registry (ledger/platforms.yaml): a typo would otherwise start a new platform.
        return _admin(request, principal, svc, 422, key_error="bad_platform")
    rotate = form.get("action") == "rotate"
    try:
        issued = await run_in_threadpool(svc.keys.rotate if rotate else svc.keys.add, platform)
    except UnknownKey:
        return _admin(request, principal, svc, 404, key_error="no_key_to_rotate")
    return _admin(request, principal, svc, 201, issued=issued.__dict__)


@router.post("/admin/keys/{key_id}/revoke", response_class=HTMLResponse)
async def admin_revoke_key(request: Request, key_id: str, principal: Principal = Depends(page_role("admin")),
                           svc: Services = Depends(services)) -> HTMLResponse:
    await _form(request)
    try:
        record = await run_in_threadpool(svc.keys.revoke, key_id[:64])
    except UnknownKey:
        return _admin(request, principal, svc, 404, key_error="unknown_key")
    return _admin(request, principal, svc, revoked=record.key_id)


# -- wiring ---------------------------------------------------------------------

def install(app: FastAPI) -> None:
    """Serve the pages and /static from `app`; called once by `api.app.create_app`."""
    app.state.assets = Assets(HERE / "static")  # read once; pages link them by content hash (api/web/assets.py)
    app.include_router(router)

    @app.api_route("/static/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static_file(request: Request, name: str) -> Response:
        return request.app.state.assets.response(request, name)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        wanted = request.url.path if request.url.path in NEXT_ALLOWED else "/"
        return RedirectResponse(f"/signin?next={wanted}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, error: PageForbidden) -> Response:
        words = texts(page_lang(request))
        return render(request, "error.html", None, status=403, message=words["forbidden"].format(role=error.role),
                      home=HOME_BY_ROLE.get(error.role, "/signin"))

    @app.exception_handler(PageError)
    async def _page_error(request: Request, error: PageError) -> Response:
        words = texts(page_lang(request))
        return render(request, "error.html", None, status=error.status,
                      message=words[error.key].format(**error.values), home="/")

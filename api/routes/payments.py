"""The money side for insurers: payments received, bills, statements of account, the state claim,
reports to the authorities. Thin: each route calls one function of `ledger.money` / `ledger.authority`."""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, role, services
from api.exports import FORMATS, lines_bytes
from api.problems import Problem
from api.schemas import Account, AuthorityLine, BillLine, Claim, CreditsByProvinceLine, PaymentsIn, PaymentsResult
from api.tokens import Principal
from ledger.authority import authority_aggregates, credits_by_province, state_claim
from ledger.money import (PaymentError, PaymentFieldError, account_statement, bills_of_month, parse_payment,
                          record_payments)

router = APIRouter(tags=["insurers"])
MONTH = Path(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")
FORMAT = Query(default=None, pattern="^(json|csv|parquet)$")
STAFF = ("insurer", "policy", "admin")


def _file(lines: list[dict], file_format: str, name: str, metadata: dict[str, str]) -> Response:
    return Response(lines_bytes(lines, file_format, metadata), media_type=FORMATS[file_format],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{file_format}"'})


def _book(svc: Services, body: PaymentsIn) -> list[dict]:
    payments, errors = [], []
    for number, item in enumerate(body.payments, start=1):
        try:
            payments.append(parse_payment(item.model_dump()))
        except PaymentFieldError as error:
            errors.append(error.problem.located(item=number))
    try:
        if errors:
            raise PaymentError(errors)
        return [outcome.as_dict() for outcome in record_payments(svc.ledger, payments)]
    except PaymentError as error:
        raise Problem(422, "bad-payments", "nothing was booked: " + "; ".join(error.errors[:20]),
                      errors=error.errors[:1000], problems=[problem.as_json() for problem in error.problems[:1000]]) \
            from None


@router.post("/payments", response_model=PaymentsResult,
             summary="Book money received (all or nothing; a bank_ref already booked is a duplicate)",
             responses=problems("invalid-request", "bad-payments"))
async def post_payments(body: PaymentsIn = Body(), _: Principal = Depends(role("insurer", "admin")),
                        svc: Services = Depends(services)) -> dict:
    return {"outcomes": await run_in_threadpool(_book, svc, body)}


@router.get("/months/{month}/bills", response_model=list[BillLine],
            summary="Bills and the state claim issued at a month's close, with what is unpaid")
async def month_bills(month: str = MONTH, _: Principal = Depends(role(*STAFF)),
                      svc: Services = Depends(services)) -> list[dict]:
    return await run_in_threadpool(bills_of_month, svc.ledger, month)


@router.get("/payers/{payer}/account", response_model=Account,
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}},
                       **problems("no-such-payer")},
            summary="A platform's (or the state's) statement of account: bills, interest, payments, balance")
async def payer_account(payer: str = Path(min_length=1, max_length=64), format: str | None = FORMAT,
                        _: Principal = Depends(role("insurer", "admin")), svc: Services = Depends(services)):
    try:
        report = await run_in_threadpool(account_statement, svc.ledger, payer)
    except LookupError as error:
        raise Problem(404, "no-such-payer", str(error.args[0])) from None
    if format in (None, "json"):
        return report
    return _file(report["lines"], format, f"account-{report['payer']}", {"balance_vnd": str(report["balance_vnd"])})


@router.get("/months/{month}/claim", response_model=Claim,
            summary="The claim to the state budget: subsidy by scheme, tier and province, paid and outstanding")
async def month_claim(month: str = MONTH, _: Principal = Depends(role(*STAFF)),
                      svc: Services = Depends(services)) -> dict:
    return await run_in_threadpool(state_claim, svc.ledger, month)


def _smallest_cell(principal: Principal, svc: Services) -> int | None:
    """The policy role sees no cell of fewer than k workers (docs/payments.md); the insurer sees every cell."""
    return svc.settings.min_cell_workers if principal.role == "policy" else None


@router.get("/months/{month}/reports/credits", response_model=list[CreditsByProvinceLine],
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
            summary="Per province: months credited towards a pension by the close, and to date")
async def month_credits_report(month: str = MONTH, format: str | None = FORMAT,
                               principal: Principal = Depends(role(*STAFF)), svc: Services = Depends(services)):
    lines = await run_in_threadpool(credits_by_province, svc.ledger, month, _smallest_cell(principal, svc))
    if format in (None, "json"):
        return lines
    return _file(lines, format, f"credits-{month}",
                 {"months_credited": str(sum(line["months_credited"] for line in lines))})


@router.get("/months/{month}/reports/authority", response_model=list[AuthorityLine],
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
            summary="Per province, platform, kind and tier: workers covered, contributions, subsidy")
async def month_authority_report(month: str = MONTH, format: str | None = FORMAT,
                                 principal: Principal = Depends(role(*STAFF)), svc: Services = Depends(services)):
    lines = await run_in_threadpool(authority_aggregates, svc.ledger, month, _smallest_cell(principal, svc))
    if format in (None, "json"):
        return lines
    return _file(lines, format, f"authority-{month}",
                 {"control_total_vnd": str(sum(line["total_vnd"] for line in lines))})

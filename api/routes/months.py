"""Months for insurers: status of each, close, settlement (JSON, CSV, Parquet)."""
from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, role, services
from api.exports import FORMATS, settlement_bytes
from api.problems import Problem
from api.schemas import CloseResult, MonthStatus, Settlement
from api.tokens import Principal
from ledger.close import CloseError, close_month
from ledger.reports import months_overview, settlement

router = APIRouter(prefix="/months", tags=["insurers"])
MONTH = Path(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")


@router.get("", response_model=list[MonthStatus], summary="Every month with bookings: open or closed")
async def list_months(_: Principal = Depends(role("insurer", "policy", "admin")),
                      svc: Services = Depends(services)) -> list[dict]:
    return await run_in_threadpool(months_overview, svc.ledger)


@router.post("/{month}/close", response_model=CloseResult, summary="Close a month: post the state subsidy, freeze it",
             responses=problems("cannot-close"))
async def close(month: str = MONTH, _: Principal = Depends(role("insurer", "admin")),
                svc: Services = Depends(services)) -> dict:
    started = time.perf_counter()
    try:
        result = await run_in_threadpool(close_month, svc.ledger, month)
    except CloseError as error:
        raise Problem(409, "cannot-close", str(error)) from None
    svc.metrics.close_seconds.observe(time.perf_counter() - started)
    return {"month": result.month, "workers_subsidised": result.workers_subsidised,
            "subsidy_vnd": result.subsidy_vnd, "anchor_hash": result.anchor_hash,
            "rules_version": result.rules_version}


@router.get("/{month}/settlement", response_model=Settlement,
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
            summary="Platform dues and state subsidy due; provisional while the month is open")
async def month_settlement(request: Request, month: str = MONTH,
                           format: str | None = Query(default=None, pattern="^(json|csv|parquet)$"),
                           _: Principal = Depends(role("insurer", "policy", "admin")),
                           svc: Services = Depends(services)):
    report = await run_in_threadpool(settlement, svc.ledger, month)
    chosen = format or ("csv" if "text/csv" in request.headers.get("accept", "") else
                        "parquet" if "parquet" in request.headers.get("accept", "") else "json")
    if chosen == "json":
        return report
    return Response(settlement_bytes(report, chosen), media_type=FORMATS[chosen], headers={
        "Content-Disposition": f'attachment; filename="settlement-{month}.{chosen}"',
        "X-Control-Total-VND": str(report["control_total_vnd"]), "X-Postings-SHA256": report["postings_sha256"]})

"""A worker's own statement and history (bearer token; the subject is their pseudonym)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Services, role, services
from api.problems import Problem
from api.schemas import Credits, History, Statement
from api.tokens import Principal
from ledger.reports import credits, history, statement

router = APIRouter(prefix="/workers/me", tags=["workers"])


def _national_id(svc: Services, principal: Principal) -> str:
    national_id = svc.ledger.national_id_for_pseudonym(principal.subject)
    if national_id is None:
        raise Problem(404, "no-accounts", "no contributions are recorded for you yet")
    return national_id


@router.get("/statement", response_model=Statement, summary="My contributions in a month")
async def my_statement(month: str = Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM"),
                       principal: Principal = Depends(role("worker")),
                       svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    return await run_in_threadpool(statement, svc.ledger, national_id, month)


@router.get("/history", response_model=History, summary="My contributions, month by month")
async def my_history(principal: Principal = Depends(role("worker")), svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    return await run_in_threadpool(history, svc.ledger, national_id)


@router.get("/credits", response_model=Credits, summary="My months credited towards a pension")
async def my_credits(principal: Principal = Depends(role("worker")), svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    return await run_in_threadpool(credits, svc.ledger, national_id)

"""A worker's own statement, history and booked events (bearer token; the subject is their pseudonym)."""
from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, role, services
from api.problems import Problem
from api.schemas import BookedEvents, Credits, History, Statement
from api.tokens import Principal
from ledger.reports import credits, history, statement
from ledger.trips import EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX, BadCursor, EventsArchived, worker_events

router = APIRouter(prefix="/workers/me", tags=["workers"])


def _national_id(svc: Services, principal: Principal) -> str:
    national_id = svc.ledger.national_id_for_pseudonym(principal.subject)
    if national_id is None:
        raise Problem(404, "no-accounts", "no contributions are recorded for you yet")
    return national_id


@router.get("/statement", response_model=Statement, summary="My contributions in a month",
            responses=problems("no-accounts"))
async def my_statement(month: str = Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM"),
                       principal: Principal = Depends(role("worker")),
                       svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    return await run_in_threadpool(statement, svc.ledger, national_id, month)


@router.get("/history", response_model=History, summary="My contributions, month by month",
            responses=problems("no-accounts"))
async def my_history(principal: Principal = Depends(role("worker")), svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    return await run_in_threadpool(history, svc.ledger, national_id)


@router.get("/credits", response_model=Credits, summary="My months credited towards a pension",
            responses=problems("no-accounts"))
async def my_credits(principal: Principal = Depends(role("worker")), svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    return await run_in_threadpool(credits, svc.ledger, national_id)


@router.get("/events", response_model=BookedEvents, summary="My booked events of a month, page by page",
            responses=problems("no-accounts", "invalid-request", "bad-cursor", "month-archived"))
async def my_events(month: str = Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM"),
                    cursor: Optional[str] = Query(None, max_length=64, description="`next_cursor` of the page before"),
                    limit: int = Query(EVENTS_PAGE_DEFAULT, ge=1,
                                       description=f"events a page; more than {EVENTS_PAGE_MAX} gives {EVENTS_PAGE_MAX}"),
                    principal: Principal = Depends(role("worker")),
                    svc: Services = Depends(services)) -> dict:
    national_id = await run_in_threadpool(_national_id, svc, principal)
    try:
        page = await run_in_threadpool(worker_events, svc.ledger, national_id, month, cursor=cursor,
                                       limit=min(limit, EVENTS_PAGE_MAX))
    except BadCursor as error:
        raise Problem(422, "bad-cursor", str(error)) from None
    except EventsArchived as error:
        raise Problem(409, "month-archived", f"the events of {error.month} are archived; the insurer can "
                                             "restore the month to list them") from None
    return {"month": page.month, "items": page.items, "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor}

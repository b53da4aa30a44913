"""Household status registry for administrators: one worker, or a CSV in bulk."""
from __future__ import annotations

import io

from fastapi import APIRouter, Body, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, role, services
from api.problems import Problem
from api.schemas import Household, ImportResult
from api.tokens import Principal
from ledger.close import TierImportError, import_tier_records, read_tier_records

router = APIRouter(prefix="/households", tags=["admin"])


def _apply(svc: Services, records: list, label: str) -> int:
    try:
        return import_tier_records(svc.ledger, records, import_id=label)
    except TierImportError as error:
        raise Problem(422, "bad-households", "nothing was applied: " + "; ".join(error.errors[:20]),
                      errors=error.errors[:1000], problems=[problem.as_json() for problem in error.problems[:1000]]) \
            from None


@router.put("/{national_id}", response_model=ImportResult, summary="Record a household status from a month on",
            responses=problems("invalid-request", "bad-households"))
async def put_household(national_id: str = Path(min_length=1, max_length=32), body: Household = Body(),
                        principal: Principal = Depends(role("admin")),
                        svc: Services = Depends(services)) -> dict:
    count = await run_in_threadpool(_apply, svc, [(1, (national_id, body.tier, body.valid_from))],
                                    f"http:{principal.subject}")
    return {"imported": count}


@router.post(":import", response_model=ImportResult, summary="Import a national_id,tier,valid_from CSV (all or nothing)",
             responses=problems("bad-households"),
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {
                 "schema": {"type": "string"}, "example": "national_id,tier,valid_from\n001203000042,poor,2026-01\n"}}}})
async def import_households(request: Request, principal: Principal = Depends(role("admin")),
                            svc: Services = Depends(services)) -> dict:
    try:
        records = read_tier_records(io.BytesIO(await request.body()), "the CSV")
    except TierImportError as error:
        raise Problem(422, "bad-households", "nothing was applied: " + "; ".join(error.errors),
                      errors=error.errors, problems=[problem.as_json() for problem in error.problems]) from None
    count = await run_in_threadpool(_apply, svc, records, f"http-import:{principal.subject}")
    return {"imported": count}

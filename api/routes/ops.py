"""Operations: liveness with a database check, Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, services
from api.problems import Problem
from api.schemas import Health

router = APIRouter(tags=["operations"])


def _database_ok(svc: Services) -> None:
    with svc.ledger.engine.connect() as conn:
        conn.execute(text("SELECT 1 FROM ledger_state"))
        conn.rollback()


@router.get("/health", response_model=Health, summary="Up, and the database answers",
            responses=problems("database-unavailable"))
async def health(svc: Services = Depends(services)) -> dict:
    try:
        await run_in_threadpool(_database_ok, svc)
    except Exception as error:  # noqa: BLE001 - any database failure means not healthy
        raise Problem(503, "database-unavailable", f"the database does not answer ({type(error).__name__})") from None
    return {"status": "ok", "pack": svc.ledger.pack.name}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"description": "Prometheus text exposition format",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(svc: Services = Depends(services)) -> Response:
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

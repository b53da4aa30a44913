"""POST /v1/events — a platform's signed batch, booked by the same function as the CLI."""
from __future__ import annotations

import io
import time
from collections import Counter

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, SignedBatch, platform_caller, services
from api.problems import Problem
from api.reasons import negotiate, with_reasons
from api.schemas import EVENT_EXAMPLE, IngestResult
from ledger.ingest import MALFORMED, BatchTooLarge, ingest_batch
from ledger.readers import read_ndjson

router = APIRouter(tags=["platforms"])


def parse_batch(body: bytes, content_type: str) -> list[tuple[int, object]]:
    """A JSON array (items numbered from 1) or NDJSON (numbered by line)."""
    if "ndjson" in content_type or "jsonl" in content_type:
        return list(read_ndjson(io.BytesIO(body)))
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "malformed-body", "the body is neither a JSON array nor NDJSON "
                                             "(send NDJSON with Content-Type: application/x-ndjson)") from None
    if not isinstance(parsed, list):
        raise Problem(400, "malformed-body", "the body must be a JSON array of events")
    return list(enumerate(parsed, start=1))


BATCH = {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "maxItems": 10_000,
         "description": "at most ANSINH_MAX_BATCH (10,000) events; an item that is not an event gets an outcome "
                        "(`malformed`, `missing_field`, …), never a refusal of the request"}
REFUND_EXAMPLE = {**EVENT_EXAMPLE, "event_id": "g-1002", "action": "refund", "original_event_id": "g-1001",
                  "amount": 20000}
REQUEST_BODY = {"required": True, "content": {
    "application/json": {"schema": BATCH, "example": [EVENT_EXAMPLE, REFUND_EXAMPLE]},
    "application/x-ndjson": {"schema": {"type": "string", "description": "one event per line, numbered from 1; "
                                                                          "blank lines are skipped"},
                             "example": "\n".join(orjson.dumps(item).decode() for item in (EVENT_EXAMPLE,
                                                                                          REFUND_EXAMPLE)) + "\n"}}}
ANSWER_HEADERS = {
    "Content-Language": {"description": "the language of every `reason`: vi unless Accept-Language asks for en",
                         "schema": {"type": "string", "enum": ["vi", "en"]}},
    "Vary": {"description": "Accept-Language", "schema": {"type": "string"}}}


@router.post("/events", response_model=IngestResult,
             summary="Book a batch of trip, delivery and order events (signed by the platform)",
             responses={200: {"headers": ANSWER_HEADERS}, **problems("malformed-body", "platform-mismatch",
                                                                     "batch-too-large")},
             openapi_extra={"requestBody": REQUEST_BODY})
async def post_events(request: Request, response: Response, batch: SignedBatch = Depends(platform_caller),
                      svc: Services = Depends(services)) -> IngestResult:
    """One outcome per item, in order: its code, a `reason` in the language of `Accept-Language`
    (vi or en; vi by default) and, when accepted, `booked_month` (and `occurred_month` for a late
    booking). docs/events.md lists the event fields and every outcome code with an example."""
    items = parse_batch(batch.body, request.headers.get("content-type", ""))
    foreign = [line for line, item in items
               if item is not MALFORMED and isinstance(item, dict) and item.get("platform") is not None
               and item.get("platform") != batch.platform]
    if foreign:
        raise Problem(403, "platform-mismatch", f"every event's platform must be {batch.platform!r} "
                                                f"(the key's platform); items {foreign[:10]} are not",
                      items=foreign[:100])
    started = time.perf_counter()
    try:  # the ledger enforces the batch limit (the settings may set it lower)
        outcomes = await run_in_threadpool(ingest_batch, svc.ledger, items, batch_size_max=svc.settings.max_batch)
    except BatchTooLarge as error:
        raise Problem(413, "batch-too-large", f"at most {error.limit:,} events per request, "
                                              f"got {error.count:,}") from None
    svc.metrics.batch_seconds.observe(time.perf_counter() - started)
    counts = Counter(outcome.outcome for outcome in outcomes)
    for name, count in counts.items():
        svc.metrics.events.labels(name).inc(count)
    lang = negotiate(request.headers.get("accept-language"))
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language"
    return IngestResult(outcomes=with_reasons([outcome.as_json() for outcome in outcomes], lang),
                        counts=dict(counts))

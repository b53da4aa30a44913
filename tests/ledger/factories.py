"""Generated test data: valid events and citizen ids made up for tests, never real people's."""
from __future__ import annotations

from typing import Any

# Made-up, rule-valid ids (province 079/001/048, born 2003/1985/1990); they identify no one.
WORKER_A = "079203001234"
WORKER_B = "001085004321"
WORKER_C = "048190005555"


def event(event_id: str = "e-1", **fields: Any) -> dict[str, Any]:
    item = {"event_id": event_id, "platform": "grab", "kind": "ride", "worker_id": WORKER_A,
            "amount": 100_000, "occurred_at": "2026-02-10T09:00:00+07:00"}
    item.update(fields)
    return {key: value for key, value in item.items() if value is not ...}


def refund(event_id: str, original: str, amount: int, **fields: Any) -> dict[str, Any]:
    return event(event_id, action="refund", original_event_id=original, amount=amount, **fields)


def numbered(items: list[object]) -> list[tuple[int, object]]:
    return list(enumerate(items, start=1))

"""GET /v1/workers/me/events on both stores: a worker's booked events of a month, by opaque cursor."""
from __future__ import annotations

from ledger.trips import all_worker_events
from tests.ledger.factories import WORKER_A, WORKER_B, event, refund


def bearer(caller, national_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {caller.worker_token(national_id)}"}


def month_of_rides(caller) -> None:
    items = [event(f"r-{n}", amount=30_000 + n, occurred_at=f"2026-02-{n % 28 + 1:02d}T09:00:00+07:00")
             for n in range(23)]
    items.append(event("theirs", worker_id=WORKER_B))
    assert caller.post_events(items).json()["counts"] == {"accepted": 24}
    assert caller.post_events([refund("r-5r", "r-5", 5_000)]).json()["counts"] == {"accepted": 1}


def test_a_worker_pages_through_their_events_by_cursor_and_sees_each_once_in_order(caller):
    month_of_rides(caller)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"month": "2026-02", "limit": 10, **({"cursor": cursor} if cursor else {})}
        response = caller.client.get("/v1/workers/me/events", params=params, headers=bearer(caller, WORKER_A))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["month"] == "2026-02" and (body["prev_cursor"] is None) == (pages == 0)
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 24
    assert seen == list(all_worker_events(caller.services.ledger, WORKER_A, "2026-02"))
    refund_item = next(item for item in seen if item["event_id"] == "r-5r")
    assert refund_item["original"] == {"event_id": "r-5", "month": "2026-02"} and refund_item["amount_vnd"] == -5_000
    assert "theirs" not in {item["event_id"] for item in seen}
    theirs = caller.client.get("/v1/workers/me/events?month=2026-02", headers=bearer(caller, WORKER_B)).json()
    assert [item["event_id"] for item in theirs["items"]] == ["theirs"] and theirs["next_cursor"] is None


def test_a_bad_cursor_or_month_is_a_422_problem_and_a_large_limit_is_cut(caller):
    month_of_rides(caller)
    headers = bearer(caller, WORKER_A)
    first = caller.client.get("/v1/workers/me/events?month=2026-02&limit=5", headers=headers).json()
    for params in ({"month": "2026-02", "cursor": "not-a-cursor"},
                   {"month": "2026-03", "cursor": first["next_cursor"]},  # a cursor of another month
                   {"month": "2026-02", "cursor": first["next_cursor"] + "x"}):
        response = caller.client.get("/v1/workers/me/events", params=params, headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "https://ansinh.example/problems/bad-cursor"
        assert "start again without a cursor" in response.json()["detail"]
    for params in ({"month": "2026-2"}, {"month": "2026-02", "limit": 0}, {"month": "2026-02", "cursor": "A" * 65}):
        response = caller.client.get("/v1/workers/me/events", params=params, headers=headers)
        assert (response.status_code, response.json()["type"]) == \
            (422, "https://ansinh.example/problems/invalid-request"), params
    everything = caller.client.get("/v1/workers/me/events?month=2026-02&limit=100000", headers=headers).json()
    assert len(everything["items"]) == 24 and everything["next_cursor"] is None


def test_a_worker_with_no_accounts_gets_a_404_problem(caller):
    response = caller.client.get("/v1/workers/me/events?month=2026-02", headers=bearer(caller, WORKER_A))
    assert (response.status_code, response.json()["type"]) == (404, "https://ansinh.example/problems/no-accounts")

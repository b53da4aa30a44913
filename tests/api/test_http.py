"""The HTTP service on both stores: roles, signatures, problem+json, the same numbers as the CLI."""
from __future__ import annotations

import logging
import secrets
import time

import orjson
import pytest

from api.settings import Settings, SettingsError
from tests.ledger.factories import WORKER_A, WORKER_B, event, refund

ROLES = ("anonymous", "platform", "worker", "insurer", "policy", "admin")

# (method, path, body, roles allowed). Allowed means "not 401/403"; refused means 401 (no or wrong
# credential type) or 403 (a valid token of another role).
ROUTES = [
    ("POST", "/v1/events", [], {"platform"}),
    ("GET", "/v1/workers/me/statement?month=2026-02", None, {"worker"}),
    ("GET", "/v1/workers/me/history", None, {"worker"}),
    ("GET", "/v1/workers/me/events?month=2026-02", None, {"worker"}),
    ("GET", "/v1/months", None, {"insurer", "policy", "admin"}),
    ("GET", "/v1/months/2026-02/settlement", None, {"insurer", "policy", "admin"}),
    ("POST", "/v1/months/2026-02/close", None, {"insurer", "admin"}),
    ("PUT", f"/v1/households/{WORKER_B}", {"tier": "poor", "valid_from": "2026-01"}, {"admin"}),
    ("POST", "/v1/households:import", "national_id,tier,valid_from\n", {"admin"}),
    ("GET", "/v1/platform-keys", None, {"admin"}),
    ("POST", "/v1/platforms/shopee/keys", None, {"admin"}),
    ("GET", "/v1/packs", None, {"insurer", "policy", "admin"}),
    ("POST", "/v1/simulations", {}, {"policy"}),
    ("POST", "/v1/simulations/jobs", {}, {"policy"}),
    ("GET", "/v1/simulations/jobs", None, {"policy"}),
    ("GET", "/v1/simulations/jobs/0123456789abcdef", None, {"policy"}),
    ("GET", "/v1/simulations/jobs/0123456789abcdef/result", None, {"policy"}),
    ("DELETE", "/v1/simulations/jobs/0123456789abcdef", None, {"policy"}),
    ("GET", "/health", None, set(ROLES)),
    ("GET", "/metrics", None, set(ROLES)),
]


def _request(caller, method, path, body, role):
    if role == "platform":
        payload = orjson.dumps(body) if not isinstance(body, (str, type(None))) else (body or "").encode()
        from api.signing import signed_headers
        headers = signed_headers(caller.grab.key_id, caller.grab.secret, method, path, payload, time.time())
        return caller.client.request(method, path, content=payload, headers=headers)
    headers = {}
    if role == "worker":
        headers["Authorization"] = f"Bearer {caller.worker_token(WORKER_A)}"
    elif role != "anonymous":
        headers = caller.bearer(role)
    if isinstance(body, str):
        return caller.client.request(method, path, content=body.encode(), headers={**headers, "Content-Type": "text/csv"})
    return caller.client.request(method, path, json=body, headers=headers)


def test_every_route_admits_exactly_the_roles_it_is_for(caller):
    caller.post_events([event()])  # so the worker has accounts
    table = {}
    for method, path, body, allowed in ROUTES:
        for role in ROLES:
            status = _request(caller, method, path, body, role).status_code
            table[(method, path, role)] = "allowed" if status not in (401, 403) else "refused"
    expected = {(method, path, role): "allowed" if role in allowed else "refused"
                for method, path, _body, allowed in ROUTES for role in ROLES}
    assert table == expected


def test_a_signed_batch_gets_the_same_outcomes_as_the_cli(caller):
    response = caller.post_events([event("a"), event("b", amount=0), "x", event("a")])
    assert response.status_code == 200
    body = response.json()
    assert [item["outcome"] for item in body["outcomes"]] == ["accepted", "invalid_amount", "malformed", "duplicate"]
    assert body["outcomes"][2] == {"line": 3, "platform": None, "event_id": None, "outcome": "malformed",
                                   "booked_month": None, "occurred_month": None,
                                   "reason": "Mục này không phải một đối tượng JSON hợp lệ."}
    assert body["counts"] == {"accepted": 1, "invalid_amount": 1, "malformed": 1, "duplicate": 1}


def test_ndjson_bodies_are_numbered_by_line(caller):
    body = b"\n".join([orjson.dumps(event("a")), b"{not json", b"", orjson.dumps(event("b"))])
    response = caller.post_events(None, body=body, content_type="application/x-ndjson")
    assert [(item["line"], item["outcome"]) for item in response.json()["outcomes"]] == [
        (1, "accepted"), (2, "malformed"), (4, "accepted")]


@pytest.mark.parametrize("tamper, status, slug", [
    ("wrong_key", 401, "bad-signature"),
    ("stale", 401, "stale-signature"),
    ("altered_body", 401, "bad-signature"),
    ("unsigned", 401, "unsigned"),
    ("revoked", 401, "bad-signature"),
])
def test_a_bad_signature_is_refused_and_books_nothing(caller, tamper, status, slug):
    from api.signing import signed_headers

    payload = orjson.dumps([event()])
    key = caller.grab
    now = time.time() - (301 if tamper == "stale" else 0)
    headers = signed_headers(key.key_id, key.secret, "POST", "/v1/events", payload, now)
    if tamper == "wrong_key":
        headers = signed_headers(key.key_id, caller.be.secret, "POST", "/v1/events", payload, now)
    if tamper == "altered_body":
        payload = orjson.dumps([event(amount=1)])
    if tamper == "unsigned":
        headers = {}
    if tamper == "revoked":
        caller.services.keys.revoke(key.key_id)
    response = caller.client.post("/v1/events", content=payload, headers=headers)
    assert (response.status_code, response.json()["type"].rsplit("/", 1)[1]) == (status, slug)
    assert response.headers["content-type"] == "application/problem+json"
    with caller.services.ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM journal").scalar() == 0


def test_a_replayed_signature_is_refused(caller):
    from api.signing import signed_headers

    payload = orjson.dumps([event()])
    headers = signed_headers(caller.grab.key_id, caller.grab.secret, "POST", "/v1/events", payload, time.time())
    first = caller.client.post("/v1/events", content=payload, headers=headers)
    again = caller.client.post("/v1/events", content=payload, headers=headers)
    assert (first.status_code, again.status_code) == (200, 409)
    assert again.json()["type"].endswith("/replayed-signature")


def test_a_platform_cannot_book_events_of_another_platform(caller):
    response = caller.post_events([event("a"), event("b", platform="be")])
    assert response.status_code == 403
    assert response.json()["items"] == [2]
    assert caller.post_events([event("a", platform="be")], key=caller.be).json()["counts"] == {"accepted": 1}


def test_a_rotated_key_keeps_the_old_one_working_for_the_grace_period(caller):
    new = caller.services.keys.rotate("grab")
    assert caller.post_events([event("a")]).status_code == 200
    assert caller.post_events([event("b")], key=new).status_code == 200
    caller.services.ledger.clock.moment += __import__("datetime").timedelta(hours=25)
    assert caller.post_events([event("c")]).status_code == 401


def test_a_batch_over_the_limit_is_refused_whole(caller):
    caller.services.settings.max_batch = 3
    response = caller.post_events([event(f"e{n}") for n in range(4)])
    assert (response.status_code, response.json()["type"].rsplit("/", 1)[1]) == (413, "batch-too-large")


def test_a_body_over_the_size_limit_is_refused_before_it_is_read(caller):
    big = b"[" + b" " * (caller.services.settings.max_body_bytes + 10) + b"]"
    response = caller.post_events(None, body=big)
    assert response.status_code == 413


def test_a_worker_sees_their_own_statement_and_no_one_elses(caller):
    caller.post_events([event("a"), event("b", worker_id=WORKER_B, amount=50_000)])
    mine = caller.client.get("/v1/workers/me/statement?month=2026-02",
                             headers={"Authorization": f"Bearer {caller.worker_token(WORKER_A)}"})
    assert mine.status_code == 200
    assert mine.json()["national_id"] == WORKER_A
    assert mine.json()["schemes"]["si"] == {"worker": 1_000, "platform": 0, "subsidy": 0, "total": 1_000}
    theirs = caller.client.get("/v1/workers/me/statement?month=2026-02",
                               headers={"Authorization": f"Bearer {caller.worker_token(WORKER_B)}"})
    assert theirs.json()["schemes"]["si"]["worker"] == 500


def test_an_expired_or_forged_token_is_refused(caller):
    from datetime import timedelta

    token = caller.worker_token(WORKER_A)
    caller.services.ledger.clock.moment += timedelta(minutes=20)
    expired = caller.client.get("/v1/workers/me/history", headers={"Authorization": f"Bearer {token}"})
    assert expired.json()["detail"] == "the bearer token has expired"
    forged = caller.client.get("/v1/workers/me/history", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert forged.status_code == 401


def test_the_monthly_cycle_over_http_gives_the_worked_example_figures(caller):
    """RULES.md §10 through the API: near-poor worker, February closed."""
    admin = caller.bearer("admin")
    assert caller.client.put(f"/v1/households/{WORKER_A}", json={"tier": "near_poor", "valid_from": "2026-01"},
                             headers=admin).json() == {"imported": 1}
    caller.post_events([event("g-1", amount=87_500, occurred_at="2026-01-31T18:30:00Z")])
    shopee = caller.services.keys.add("shopee")
    caller.post_events([event("s-1", platform="shopee", kind="order", amount=1_249_000,
                              occurred_at="2026-02-03T10:00:00+07:00"),
                        refund("s-1r", "s-1", 400_000, platform="shopee", kind="order",
                               occurred_at="2026-02-05T10:00:00+07:00"),
                        refund("s-1r2", "s-1", 849_000, platform="shopee", kind="order",
                               occurred_at="2026-02-06T10:00:00+07:00")], key=shopee)
    insurer = caller.bearer("insurer")
    closed = caller.client.post("/v1/months/2026-02/close", headers=insurer).json()
    assert closed["subsidy_vnd"] == {"si": 219, "oa": 0, "ui": 110}
    report = caller.client.get("/v1/months/2026-02/settlement", headers=insurer).json()
    assert report["platforms"] == {"grab": {"si": 875, "oa": 438, "ui": 438}, "shopee": {"si": 0, "oa": 0, "ui": 0}}
    assert report["subsidy"] == {"si": 219, "oa": 0, "ui": 110}
    assert report["status"] == "final"
    csv_text = caller.client.get("/v1/months/2026-02/settlement", headers={**insurer, "Accept": "text/csv"}).text
    assert f"control_total,{report['postings_sha256']},all,{report['control_total_vnd']}" in csv_text
    mine = caller.client.get("/v1/workers/me/statement?month=2026-02",
                             headers={"Authorization": f"Bearer {caller.worker_token(WORKER_A)}"}).json()
    assert {scheme: line["total"] for scheme, line in mine["schemes"].items()} == {"si": 1_094, "oa": 438, "ui": 548}
    again = caller.client.post("/v1/months/2026-02/close", headers=insurer)
    assert (again.status_code, again.json()["type"].rsplit("/", 1)[1]) == (409, "cannot-close")
    months = caller.client.get("/v1/months", headers=insurer).json()
    assert [(m["month"], m["status"]) for m in months] == [("2026-02", "closed")]


def test_a_household_import_with_one_bad_line_applies_nothing(caller):
    body = f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n{WORKER_B},rich,2026-01\n"
    response = caller.client.post("/v1/households:import", content=body.encode(),
                                  headers={**caller.bearer("admin"), "Content-Type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["errors"] == ["line 3: tier 'rich' is unknown to vn-pilot@2026-01-01 "
                                         "(known: near_poor, other, poor)"]
    assert response.json()["problems"] == [{"code": "unknown_tier", "line": 3, "field": "tier", "params": {
        "value": {"shown": "'rich'"}, "version": "vn-pilot@2026-01-01", "known": ["near_poor", "other", "poor"]}}]


@pytest.mark.parametrize("path", ["/v1/platforms/{}/keys", "/v1/platforms/{}/keys:rotate"])
def test_a_key_for_a_platform_missing_from_the_registry_is_refused_with_422_and_nothing_is_issued(caller, path):
    before = caller.client.get("/v1/platform-keys", headers=caller.bearer("admin")).json()
    for typo in ("xanh", WORKER_A):  # a typo of xanhsm; a path segment that is a citizen id
        refused = caller.client.post(path.format(typo), headers=caller.bearer("admin"))
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/unregistered-platform")
        assert WORKER_A not in refused.text and "xanh'" not in refused.text
    assert caller.client.get("/v1/platform-keys", headers=caller.bearer("admin")).json() == before
    issued = caller.client.post(path.format("xanhsm" if path.endswith("/keys") else "grab"),
                                headers=caller.bearer("admin"))
    assert issued.status_code == 201


def test_errors_are_problem_json_and_logs_never_carry_a_raw_national_id(caller, caplog):
    with caplog.at_level(logging.INFO, logger="ansinh"):
        response = caller.client.put(f"/v1/households/{WORKER_A}", json={"tier": "poor"}, headers=caller.bearer("admin"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 422
    from api.observability import JsonFormatter
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert lines and not any(WORKER_A in line for line in lines)
    assert any("079******234" in line for line in lines)


def test_health_checks_the_database_and_metrics_count_events_by_outcome(caller):
    caller.post_events([event("a"), event("b", amount=-1)])
    assert caller.client.get("/health").json()["status"] == "ok"
    metrics = caller.client.get("/metrics").text
    assert 'ansinh_events_total{outcome="accepted"} 1.0' in metrics
    assert 'ansinh_events_total{outcome="invalid_amount"} 1.0' in metrics
    assert "ansinh_ingest_batch_seconds_count 1.0" in metrics


STRONG_SECRET = secrets.token_hex(32)


@pytest.mark.parametrize("overrides, complaint", [
    ({"secret": None}, "ANSINH_SECRET"),
    ({"secret": "change-me"}, "ANSINH_SECRET"),
    ({"secret": STRONG_SECRET, "oidc_issuer": None}, "ANSINH_OIDC_ISSUER"),
    ({"secret": STRONG_SECRET, "database_url": "sqlite:///x.db"}, "PostgreSQL"),
])
def test_production_mode_refuses_to_start_with_unsafe_settings(overrides, complaint):
    values = {"mode": "production", "secret": STRONG_SECRET, "oidc_issuer": "https://id.example",
              "oidc_jwks_url": "https://id.example/jwks", "database_url": "postgresql+psycopg://db/ansinh"}
    values.update(overrides)
    with pytest.raises(SettingsError, match=complaint):
        Settings(**values).check()

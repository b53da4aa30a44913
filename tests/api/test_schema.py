"""schemathesis against /openapi.json: generated requests never get a 5xx, and every
response matches the documented schema (run with a token of the route's own role)."""
from __future__ import annotations

import os
import time
import warnings
from datetime import timedelta

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.checks import not_a_server_error

from api.app import build_services, create_app
from api.settings import Settings
from api.signing import signed_headers
from api.tokens import mint_demo_token
from tests.conftest import FixedClock

SECRET = "schema-test-secret-0123456789abcdef0123"


def _app(tmp_dir: str):
    services = build_services(Settings(database_url=f"sqlite:///{tmp_dir}/schema.db", secret=SECRET, mode="demo"),
                              clock=FixedClock())
    return create_app(services=services), services


_TMP = os.environ.get("PYTEST_SCHEMA_TMP") or __import__("tempfile").mkdtemp(prefix="ansinh-schema-")
APP, SERVICES = _app(_TMP)
KEY = SERVICES.keys.add("grab")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

ROLE_OF = {"/v1/workers": "worker", "/v1/months": "insurer", "/v1/households": "admin",
           "/v1/platform": "admin", "/v1/packs": "policy"}


def _signed_events(case) -> dict:
    """The generated body, serialised once and signed, so the events route is exercised past auth."""
    body = orjson.dumps(case.body) if isinstance(case.body, (list, dict, str, int, float)) else b"[]"
    headers = signed_headers(KEY.key_id, KEY.secret, "POST", "/v1/events", body, time.time())
    return {"headers": {**headers, "Content-Type": "application/json"}, "data": body}


def _auth(case) -> dict[str, str]:
    path = case.operation.path
    for prefix, role in ROLE_OF.items():
        if path.startswith(prefix):
            subject = SERVICES.ledger.keys.pseudonym("079203001234") if role == "worker" else "schemathesis"
            if path.startswith("/v1/months") and case.method == "POST":
                role = "admin"
            token = mint_demo_token(SECRET, role, subject, SERVICES.ledger.clock(), timedelta(minutes=15))
            return {"Authorization": f"Bearer {token}"}
    return {}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error_and_every_response_matches_the_schema(case):
    if case.operation.path == "/v1/events":
        response = case.call(**_signed_events(case))
    else:
        response = case.call(headers=_auth(case))
    assert response.status_code < 500, response.text
    if response.status_code < 400:
        case.validate_response(response, checks=[response_schema_conformance, not_a_server_error])

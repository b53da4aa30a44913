"""/openapi.json is the contract: schemathesis sends generated requests to every operation with every
role's credentials and fails on an answer the operation does not declare — a status (`status_code_conformance`),
a media type (`content_type_conformance`), a body shape (`response_schema_conformance`) — or on any 5xx.

The books are a real ledger on SQLite, seeded so the reads have something to answer (a worker with
accounts, a closed month with bills). Platforms sign every request with the HMAC scheme (`SignedRequest`,
a requests auth that signs the exact bytes sent); workers and staff carry demo bearer tokens; `anonymous`
sends none. The default run is short and derandomized (the schema's examples, the coverage phase and a few
generated cases per operation and role); `-m slow` runs many more. docs/http.md, "The contract".
"""
from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
import time
import warnings
from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from api.app import build_services, create_app
from api.contract import SLUGS
from api.settings import Settings
from api.signing import signed_headers
from api.tokens import mint_demo_token
from ledger.close import close_month
from ledger.ingest import ingest_batch
from tests.conftest import FixedClock
from tests.api.test_http import ROUTES
from tests.ledger.factories import WORKER_A, WORKER_B, event

SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
ROLES = ("anonymous", "platform", "worker", "insurer", "policy", "admin")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _books():
    folder = tempfile.mkdtemp(prefix="ansinh-contract-")
    atexit.register(shutil.rmtree, folder, True)
    services = build_services(Settings(database_url=f"sqlite:///{folder}/contract.db", secret=SECRET, mode="demo"),
                              clock=FixedClock())
    ingest_batch(services.ledger, list(enumerate([
        event("c-1", occurred_at="2026-01-12T09:00:00+07:00"), event("c-2", worker_id=WORKER_B),
        event("c-3", platform="be", amount=250_000)], start=1)))
    close_month(services.ledger, "2026-01")
    return services


SERVICES = _books()
APP = create_app(services=SERVICES)
KEY = SERVICES.keys.add("grab")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schemathesis.serializer.alias("application/x-ndjson", "text/plain")  # POST /v1/events takes NDJSON as text


class SignedRequest(requests.auth.AuthBase):
    """The platform's HMAC signature (docs/http.md) over the bytes and path actually sent."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        request.headers.update(signed_headers(KEY.key_id, KEY.secret, request.method, request.path_url, body,
                                              time.time()))
        return request


def credentials(role: str) -> dict:
    """What `case.call` takes to send a request as `role`."""
    if role == "platform":
        return {"auth": SignedRequest()}
    if role == "anonymous":
        return {}
    subject = SERVICES.ledger.keys.pseudonym(WORKER_A) if role == "worker" else "contract"
    token = mint_demo_token(SECRET, role, subject, SERVICES.ledger.clock(), timedelta(minutes=15))
    return {"headers": {"Authorization": f"Bearer {token}"}}


FOUND = os.environ.get("ANSINH_CONTRACT_FAILURES")  # a file to list every failure in (the before/after count)


def _answer_as_declared(case, role: str) -> None:
    try:
        case.call_and_validate(checks=CHECKS, **credentials(role))
    except BaseException as failure:  # schemathesis raises a FailureGroup (a BaseExceptionGroup)
        if FOUND:
            with open(FOUND, "a") as out:
                for item in getattr(failure, "exceptions", [failure]):
                    out.write(f"{role}\t{case.method} {case.operation.path}\t{type(item).__name__}\t"
                              f"{str(getattr(item, 'title', item)).splitlines()[0][:120]}\n")
        raise


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=3, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_one_its_operation_declares(case, role):
    _answer_as_declared(case, role)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=100, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_one_its_operation_declares_over_many_cases(case, role):
    _answer_as_declared(case, role)


# -- the document itself ------------------------------------------------------------------------------------

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CLIENT = TestClient(APP)
DOCUMENT = APP.openapi()
OPERATIONS = {(method.upper(), path): operation for path, operations in DOCUMENT["paths"].items()
              for method, operation in operations.items()}
EXTERNAL = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']?(?:https?:)?//|url:\s*['"](?:https?:)?//""", re.I)


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1") and len(OPERATIONS) == 29


def test_a_response_model_drops_nothing_the_ledger_answers():
    """/v1/packs and /health went through a model in this change: every key the ledger gives is still sent."""
    packs = CLIENT.get("/v1/packs", headers=credentials("policy")["headers"]).json()
    assert packs["versions"] == [version.as_document() for version in SERVICES.ledger.pack.versions]
    assert len(packs["versions"][0]) == 12
    assert CLIENT.get("/health").json() == {"status": "ok", "pack": "vn-pilot"}


def test_swagger_ui_and_redoc_load_every_asset_from_the_service_itself():
    for page in ("/docs", "/redoc"):
        html = CLIENT.get(page).text
        assert EXTERNAL.search(html) is None, page
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert len(assets) == (3 if page == "/docs" else 2) and all(a.startswith("/docs-assets/") for a in assets)
        for asset in assets:
            answer = CLIENT.get(asset)
            assert answer.status_code == 200 and len(answer.content) > 4_000, asset
    assert "cdn" not in (CLIENT.get("/docs").text + CLIENT.get("/redoc").text).lower()


def test_every_operation_says_who_may_call_it_and_answers_every_error_as_problem_json():
    schemes = {}
    for (method, path), operation in OPERATIONS.items():
        requirement = operation["security"]
        schemes[f"{method} {path}"] = "public" if requirement == [] else "+".join(sorted(requirement[0]))
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            content = answer["content"]
            assert list(content) == ["application/problem+json"], (method, path, status)
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
            for slug, example in content["application/problem+json"]["examples"].items():
                assert SLUGS[slug][0] == int(status) == example["value"]["status"], (method, path, slug)
                assert example["value"]["title"] == HTTPStatus(int(status)).phrase
        assert "500" in operation["responses"]
        assert ("401" in operation["responses"]) == (requirement != [])
    counts = {kind: list(schemes.values()).count(kind) for kind in set(schemes.values())}
    assert counts == {"bearerToken": 26, "platformKeyId+platformSignature+platformTimestamp": 1, "public": 2}


def test_the_roles_each_operation_declares_are_the_roles_it_admits():
    """tests/api/test_http.py pins who the service lets through; the document must say the same."""
    checked = 0
    for method, url, _body, allowed in ROUTES:
        path = url.split("?")[0]
        for (doc_method, template), operation in OPERATIONS.items():
            if doc_method == method and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
                staff_and_workers = allowed - {"platform", "anonymous"}
                assert set(operation.get("x-roles", ())) == (staff_and_workers if allowed != set(ROLES) else set())
                checked += 1
    assert checked == len(ROUTES) == 20


def test_the_documented_event_batch_books_as_documented(caller):
    """The request examples of POST /v1/events, signed and sent to fresh books: an event and its refund."""
    content = OPERATIONS[("POST", "/v1/events")]["requestBody"]["content"]
    answer = caller.post_events(content["application/json"]["example"])
    assert answer.status_code == 200, answer.text
    assert [(item["event_id"], item["outcome"]) for item in answer.json()["outcomes"]] == [
        ("g-1001", "accepted"), ("g-1002", "accepted")]
    answer = caller.post_events(None, body=content["application/x-ndjson"]["example"].encode(),
                                content_type="application/x-ndjson")
    assert [(item["line"], item["outcome"]) for item in answer.json()["outcomes"]] == [
        (1, "duplicate"), (2, "duplicate")]  # the same two events as NDJSON: already booked

"""The OpenAPI document as the contract: security schemes, the problem schema, every error a route answers.

A route declares only what is its own: `responses=problems("no-accounts", "bad-cursor")` (each slug
knows its status). What follows from how the route is built is added here, when /openapi.json is
made, so no route can forget it:

- who may call: FastAPI writes each operation's security from the dependencies in api/deps.py. An
  operation signed by a platform (`platform_caller`) gets the HMAC scheme — its three header keys
  merged into one requirement, as all three are needed together — and `unsigned`, `stale-signature`,
  `bad-signature` (401) and `replayed-signature` (409). One for bearer tokens (`role(...)`) carries
  its roles in the requirement (`{"bearerToken": ["insurer", "admin"]}`) and in `x-roles`, and gets
  `unauthenticated`, `bad-token` (401) and `forbidden` (403). Any other says `security: []`;
- `invalid-request` (422) where FastAPI validates a parameter or body (it declared its own 422;
  a route that declares a 422 of its own lists `invalid-request` itself when it validates), and
  `bad-request` (400) where it parses a JSON body (bytes that are not UTF-8);
- `too-large` (413) when the operation takes a body; `internal-error` (500) everywhere.

Every error answer is `application/problem+json` with the `ProblemDetails` schema and one example
per slug. `tests/api/test_contract.py` runs schemathesis against the document with every role's
credentials: an answer whose status, media type or shape is not declared fails it.
"""
from __future__ import annotations

import base64
import hashlib
import re
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from api.problems import PROBLEM_TYPE
from api.schemas import Event, ProblemDetails
from api.signing import KEY_HEADER, SCHEME, SIGNATURE_HEADER, TIMESTAMP_HEADER

PROBLEM_MEDIA_TYPE = "application/problem+json"
SIGNED = {"platformKeyId": [], "platformTimestamp": [], "platformSignature": []}  # one requirement: all three

SIGNING = (f"HMAC-SHA-256 under the platform key's secret of the five lines `{SCHEME}`, the method, the path "
           "with any query string, the timestamp and the hex SHA-256 of the exact body bytes, joined by `\\n` "
           "(no trailing newline); sent as hex. A signature is accepted once. docs/http.md has clients in Python "
           "and curl + openssl.")
SECURITY_SCHEMES = {
    "platformKeyId": {"type": "apiKey", "in": "header", "name": KEY_HEADER,
                      "description": "Platforms: the id of a key an administrator issued (`pk2_…`). Sent with "
                                     f"`{TIMESTAMP_HEADER}` and `{SIGNATURE_HEADER}`: the three together sign a "
                                     "request."},
    "platformTimestamp": {"type": "apiKey", "in": "header", "name": TIMESTAMP_HEADER,
                          "description": "Platforms: unix seconds, within 300 s of the server's clock."},
    "platformSignature": {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER,
                          "description": f"Platforms: {SIGNING}"},
    "bearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "Workers and staff: a token of the OIDC identity provider (in demo mode, "
                                   "`ansinh token worker ID` / `ansinh token staff --role ROLE`); its `role` claim "
                                   "is worker, insurer, policy or admin. A worker's subject is the keyed pseudonym "
                                   "of their national id, never the number."},
}

# slug -> (status, what it means, an example `detail`)
SLUGS: dict[str, tuple[int, str, str]] = {
    "bad-request": (400, "the body is not UTF-8 text that FastAPI can parse", "There was an error parsing the body"),
    "malformed-body": (400, "the body is neither a JSON array nor NDJSON",
                       "the body must be a JSON array of events"),
    "unsigned": (401, "a signature header is missing", f"sign the request: {KEY_HEADER}, {TIMESTAMP_HEADER} and "
                                                       f"{SIGNATURE_HEADER} headers are required"),
    "stale-signature": (401, "the timestamp is not unix seconds within the window of the server's clock",
                        "the timestamp must be unix seconds within 300 s of the server's clock"),
    "bad-signature": (401, "no usable key signs this request so",
                      "the signature does not match a usable key for this request"),
    "unauthenticated": (401, "no bearer token", "a bearer token is required"),
    "bad-token": (401, "the token does not verify, or has expired", "the token has expired"),
    "forbidden": (403, "the token's role may not call this route",
                  "this route is for insurer, admin; the token's role is worker"),
    "platform-mismatch": (403, "an event's platform is not the signing key's platform; nothing is booked",
                          "every event's platform must be 'grab' (the key's platform); items [2] are not"),
    "no-accounts": (404, "no contributions are recorded for the worker yet",
                    "no contributions are recorded for you yet"),
    "no-such-payer": (404, "no bill or payment names this payer", "no bill or payment for payer 'xanh'"),
    "unknown-platform": (404, "the platform has no key to rotate", "platform 'xanh' has no key"),
    "unknown-key": (404, "no such key id", "no key pk2_0000000000000000"),
    "no-such-job": (404, "no simulation job has this id (jobs past the newest 200 are deleted)",
                    "no simulation job 3f2a9c0e5d7b1a44"),
    "job-not-done": (409, "the job has not finished, or failed or was cancelled: it has no result",
                     "job 3f2a9c0e5d7b1a44 is engine"),
    "job-finished": (409, "the job has finished already: nothing to cancel",
                     "job 3f2a9c0e5d7b1a44 has finished (done); nothing to cancel"),
    "replayed-signature": (409, "this signature was already used", "this signature was already used; sign each "
                                                                    "request afresh"),
    "cannot-close": (409, "the month cannot be closed (already closed, not over yet, or an earlier month is "
                          "open)", "2026-03 is already closed"),
    "month-archived": (409, "the month is archived to Parquet; the insurer can restore it",
                       "the events of 2026-01 are archived; the insurer can restore the month to list them"),
    "too-large": (413, "the request body is over ANSINH_MAX_BODY_BYTES; refused before it is read",
                  "the request body is over 16,777,216 bytes"),
    "batch-too-large": (413, "more events than ANSINH_MAX_BATCH in one request",
                        "at most 10,000 events per request, got 10,001"),
    "invalid-request": (422, "a parameter or the body does not match this document; `errors` lists where",
                        "the request does not match the API"),
    "bad-cursor": (422, "the cursor is not one of this month's pages", "the cursor does not belong to 2026-02"),
    "bad-payments": (422, "a payment is invalid; nothing was booked (`errors` lists every one)",
                     "nothing was booked: payment 1: payer 'xanh' has no bill"),
    "unregistered-platform": (422, "the platform is not in the platform registry (ledger/platforms.yaml); no "
                                   "key is issued", "the platform is not in the platform registry "
                                                    "(ledger/platforms.yaml; registered: grab, be, xanhsm, "
                                                    "shopeefood, shopee, lazada); add it there first"),
    "bad-households": (422, "a record is invalid; nothing was applied (`errors` lists every one)",
                       "nothing was applied: line 2: tier 'rich' is not in the rules pack"),
    "invalid-scenario": (422, "the scenario is invalid (`errors` lists every key)",
                         "horizon_months: must be an integer from 1 to 600"),
    "scenario-too-large": (422, "more workers or worker-months than an inline run takes",
                           "population.synthetic.workers: an inline run takes at most 20,000 workers"),
    "too-many-jobs": (429, "too many simulation jobs are waiting; start this one when some have run",
                      "20 jobs are waiting already; start this one when some have run"),
    "internal-error": (500, "the service failed; the request id is in the logs",
                       "the service failed; the request id is in the logs"),
    "database-unavailable": (503, "the database does not answer", "the database does not answer (OperationalError)"),
}


def problem_example(slug: str, instance: str = "/v1/…") -> dict[str, Any]:
    status, _, detail = SLUGS[slug]
    return {"type": PROBLEM_TYPE + slug, "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "instance": instance}


def _add(responses: dict, slug: str) -> None:
    """Declare `slug` in `responses` (an OpenAPI operation's): its status as problem+json, one example more."""
    status, meaning, _ = SLUGS[slug]
    answer = responses.setdefault(str(status), {})
    if PROBLEM_MEDIA_TYPE not in answer.get("content", {}):  # FastAPI's own 422 (HTTPValidationError) is replaced
        answer["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"},
                                                  "examples": {}}}
        answer["description"] = HTTPStatus(status).phrase + ": the `type` ends in a slug below"
    examples = answer["content"][PROBLEM_MEDIA_TYPE]["examples"]
    if slug not in examples:
        examples[slug] = {"summary": meaning, "value": problem_example(slug)}
        answer["description"] += f"; `{slug}`: {meaning}"


def problems(*slugs: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that answers these problems besides the ones every route declares."""
    responses: dict[str, dict[str, Any]] = {}
    for slug in slugs:
        _add(responses, slug)
    return responses  # type: ignore[return-value]


def _declare(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    validated = "HTTPValidationError" in str(responses.get("422", {}))  # FastAPI's own: it validates here
    requirements = operation.get("security", [])
    if any(set(requirement) <= set(SIGNED) for requirement in requirements):
        operation["security"] = [SIGNED]
        for slug in ("unsigned", "stale-signature", "bad-signature", "replayed-signature"):
            _add(responses, slug)
    elif any("bearerToken" in requirement for requirement in requirements):
        operation["x-roles"] = next(requirement["bearerToken"] for requirement in requirements
                                    if "bearerToken" in requirement)
        for slug in ("unauthenticated", "bad-token", "forbidden"):
            _add(responses, slug)
    else:
        operation["security"] = []
    if validated:
        _add(responses, "invalid-request")
    if "invalid-request" in str(responses.get("422", {})) and "application/json" in operation.get(
            "requestBody", {}).get("content", {}):
        _add(responses, "bad-request")  # FastAPI parses the body before any check: bytes that are not UTF-8
    if "requestBody" in operation:
        _add(responses, "too-large")
    _add(responses, "internal-error")


def openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document: FastAPI's, with the declarations above (made once, then cached)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                               tags=app.openapi_tags)
        for operations in document["paths"].values():
            for operation in operations.values():
                _declare(operation)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)  # replaced by ProblemDetails everywhere
        schemas.pop("ValidationError", None)
        schemas["ProblemDetails"] = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas["Event"] = Event.model_json_schema(ref_template="#/components/schemas/{model}")
        components["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = document
    return app.openapi_schema


# Swagger UI (Apache-2.0) and Redoc (MIT) as the `fastapi-offline` package (MIT) ships them: served from
# here, so /docs and /redoc load nothing from another host (no CDN, no web fonts, no validator badge).
# Their pages carry a policy that lets the browser fetch from this host only: Redoc's sidebar shows
# the Redocly logo from its CDN, which the policy blocks (the image hides itself when it cannot load).
DOCS_ASSETS = "/docs-assets"
ASSETS_DIR = files("fastapi_offline") / "static"
DOCS_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'{};"
               " worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
               "form-action 'self'")


def _own_only(page: HTMLResponse) -> HTMLResponse:
    """`page` with the policy above; its inline scripts (Swagger UI's start-up) allowed by their hashes."""
    inline = re.findall(r"<script>(.*?)</script>", page.body.decode(), re.S)
    hashes = "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
                     for text in inline)
    page.headers["Content-Security-Policy"] = DOCS_POLICY.format(hashes)
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def install(app: FastAPI) -> None:
    """/openapi.json with the declarations above; /docs (Swagger UI) and /redoc from the package's assets.

    The app must be made with `docs_url=None, redoc_url=None` (FastAPI's own pages load a CDN)."""
    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _own_only(get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} — API",
                                             swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                             swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                             swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                                             swagger_ui_parameters={"validatorUrl": None}))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _own_only(get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} — API",
                                        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                                        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False))

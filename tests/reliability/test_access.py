"""Access: every route and page × every caller × own and other's data; token attacks; size limits; leaks.

Callers: anonymous, two platforms (signed requests), two workers with accounts and one
without, insurer, policy, admin. A worker reads only their own statement (the routes
are `/me`; nothing a worker sends can name someone else); a platform books only as
itself and can refund only its own events. Tokens that are expired, not yet valid,
for another audience or issuer, unsigned (`alg: none`), signed with another key,
altered, or demo tokens outside demo mode are all refused 401, in demo mode and
against a real JWKS (served on 127.0.0.1). Bodies over the size limit are refused 413
whether or not they declare their length.

Throughout, every response and every log line is captured: none may carry a stack
trace, none a raw national id — except a worker's own statement, which shows the
worker their own number.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.observability import JsonFormatter
from api.signing import signed_headers
from api.tokens import DEMO_ISSUER, TokenVerifier, demo_key
from tests.api.conftest import SECRET, Caller
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event, refund

KNOWN_IDS = (WORKER_A, WORKER_B, WORKER_C)
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
CALLERS = ("anonymous", "grab", "be", "worker A", "worker B", "worker C", "insurer", "policy", "admin")
STAFF = {"insurer", "policy", "admin"}
MONTH = "2026-02"
PAGES = ("/openapi.json", "/docs", "/redoc", "/docs-assets/swagger-ui.css")  # docs UIs served here (no CDN)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no store-specific code here


# -- capture every response and log line of every test here ------------------------------------------

class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("httpx"):
            return  # the test's own HTTP client (TestClient) logging its requests, not the service
        # The service's own loggers are written through JsonFormatter (as `ansinh serve` does);
        # any other library's record is written as it is, so it is checked raw.
        if record.name.startswith("ansinh"):
            self.lines.append(self.json.format(record))
        else:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self.lines.append(text)


@pytest.fixture(autouse=True)
def no_leaks(request):
    handler = Captured()
    root, service = logging.getLogger(), logging.getLogger("ansinh")
    old_level = root.level
    root.addHandler(handler)
    service.addHandler(handler)
    root.setLevel(logging.DEBUG)
    responses: list[tuple[str, int, str, str | None]] = []
    request.node.responses = responses
    yield responses
    root.removeHandler(handler)
    service.removeHandler(handler)
    root.setLevel(old_level)
    leaks = []
    for path, status, body, own in responses:
        if status >= 500:
            leaks.append(f"{path}: status {status}")
        if TRACEBACK.search(body):
            leaks.append(f"{path}: a stack trace in the response")
        for national_id in KNOWN_IDS:
            if national_id in body and national_id != own:
                leaks.append(f"{path}: a raw national id in the response ({national_id[:3]}…)")
    for line in handler.lines:
        if TRACEBACK.search(line):
            leaks.append(f"a stack trace in a log line: {line[:200]}")
        for national_id in KNOWN_IDS:
            if national_id in line:
                leaks.append(f"a raw national id in a log line: {line.replace(national_id, '<id>')[:200]}")
    assert leaks == []


def call(caller: Caller, who: str, method: str, path: str, body=None, *, token: str | None = None,
         headers: dict | None = None, content: bytes | None = None, follow_redirects: bool = True):
    """One request as `who`; recorded for the leak check (with whose own statement may show)."""
    own = None
    headers = dict(headers or {})
    payload = content if content is not None else (
        body.encode() if isinstance(body, str) else b"" if body is None else orjson.dumps(body))
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/csv")
    elif body is not None:
        headers.setdefault("Content-Type", "application/json")
    if who in ("grab", "be"):
        key = caller.grab if who == "grab" else caller.be
        headers.update(signed_headers(key.key_id, key.secret, method, path, payload, time.time()))
    elif who.startswith("worker"):
        own = {"worker A": WORKER_A, "worker B": WORKER_B, "worker C": WORKER_C}[who]
        headers["Authorization"] = f"Bearer {caller.worker_token(own)}"
    elif who in STAFF:
        headers["Authorization"] = f"Bearer {caller.token(who, f'{who}-1')}"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = caller.client.request(method, path, content=payload, headers=headers,
                                     follow_redirects=follow_redirects)
    caller.recorded.append((f"{method} {path} as {who}", response.status_code, response.text, own))
    return response


@pytest.fixture
def api(caller, request):
    """The client with accounts for workers A and B (grab and be), C has none, February open."""
    caller.recorded = request.node.responses
    assert caller.post_events([event("g-1"), event("g-2", worker_id=WORKER_B, amount=50_000)]).status_code == 200
    assert caller.post_events([event("b-1", platform="be", kind="delivery", worker_id=WORKER_B)],
                              key=caller.be).status_code == 200
    return caller


# (method, path, body, who may call it). "worker …" rows are checked for own data separately.
ROUTES = [
    ("POST", "/v1/events", [], {"grab", "be"}),
    ("GET", f"/v1/workers/me/statement?month={MONTH}", None, {"worker A", "worker B", "worker C"}),
    ("GET", "/v1/workers/me/history", None, {"worker A", "worker B", "worker C"}),
    ("GET", f"/v1/workers/me/events?month={MONTH}", None, {"worker A", "worker B", "worker C"}),
    ("GET", "/v1/workers/me/credits", None, {"worker A", "worker B", "worker C"}),
    ("GET", "/v1/months", None, STAFF),
    ("GET", f"/v1/months/{MONTH}/settlement", None, STAFF),
    ("POST", "/v1/months/2026-01/close", None, {"insurer", "admin"}),
    ("POST", "/v1/payments", {"payments": []}, {"insurer", "admin"}),  # 422 for staff: an empty batch
    ("GET", f"/v1/months/{MONTH}/bills", None, STAFF),
    ("GET", "/v1/payers/grab/account", None, {"insurer", "admin"}),
    ("GET", f"/v1/months/{MONTH}/claim", None, STAFF),
    ("GET", f"/v1/months/{MONTH}/reports/authority", None, STAFF),
    ("GET", f"/v1/months/{MONTH}/reports/credits", None, STAFF),
    ("PUT", f"/v1/households/{WORKER_C}", {"tier": "poor", "valid_from": "2026-01"}, {"admin"}),
    ("POST", "/v1/households:import", "national_id,tier,valid_from\n", {"admin"}),
    ("GET", "/v1/platform-keys", None, {"admin"}),
    ("POST", "/v1/platforms/shopee/keys", None, {"admin"}),
    ("POST", "/v1/platforms/grab/keys:rotate", None, {"admin"}),
    ("DELETE", "/v1/platform-keys/pk_0000000000000000", None, {"admin"}),
    ("GET", "/v1/packs", None, STAFF),
    ("POST", "/v1/simulations", {}, {"policy"}),
    ("POST", "/v1/simulations/jobs", {}, {"policy"}),
    ("GET", "/v1/simulations/jobs", None, {"policy"}),
    ("GET", "/v1/simulations/jobs/0123456789abcdef", None, {"policy"}),
    ("GET", "/v1/simulations/jobs/0123456789abcdef/result", None, {"policy"}),
    ("DELETE", "/v1/simulations/jobs/0123456789abcdef", None, {"policy"}),
    ("GET", "/health", None, set(CALLERS)),
    ("GET", "/metrics", None, set(CALLERS)),
    *[("GET", page, None, set(CALLERS)) for page in PAGES],
]


TOKEN_HOLDERS = {"worker A", "worker B", "worker C", *STAFF}
# The HTML pages (api/web): no token -> a redirect to /signin; a token of another role -> a 403 page.
WEB_PAGES = [
    ("GET", "/signin", None, set(CALLERS)),
    ("POST", "/signin", "how=staff&role=insurer", set(CALLERS)),  # demo mode: anyone may sign in
    ("POST", "/signout", "", set()),  # ends any session: everyone is sent back to /signin
    ("GET", "/static/app.css", None, set(CALLERS)),
    ("GET", "/", None, TOKEN_HOLDERS),  # a worker's page; staff are sent on to their own home page
    ("GET", f"/me/statement.csv?month={MONTH}", None, {"worker A", "worker B", "worker C"}),
    ("GET", "/me/history.csv", None, {"worker A", "worker B", "worker C"}),
    ("GET", f"/me/events.csv?month={MONTH}", None, {"worker A", "worker B", "worker C"}),
    ("GET", f"/me/statement/print?month={MONTH}", None, {"worker A", "worker B", "worker C"}),
    ("GET", "/insurer", None, STAFF),
    ("GET", f"/insurer/months/{MONTH}", None, STAFF),
    ("GET", f"/insurer/months/{MONTH}/settlement.csv", None, STAFF),
    ("GET", "/insurer/months/2026-01/close", None, {"insurer", "admin"}),
    ("POST", "/insurer/months/2026-01/close", "", {"insurer", "admin"}),
    ("GET", "/insurer/accounts/grab", None, {"insurer", "admin"}),  # as GET /v1/payers/{payer}/account
    ("GET", "/insurer/accounts/grab.csv", None, {"insurer", "admin"}),
    ("GET", "/insurer/payments", None, {"insurer", "admin"}),  # as POST /v1/payments
    ("POST", "/insurer/payments/preview", "", {"insurer", "admin"}),
    ("POST", "/insurer/payments", "", {"insurer", "admin"}),
    ("GET", "/policy", None, {"policy"}),
    ("POST", "/policy", "", {"policy"}),
    ("POST", "/policy/report", "", {"policy"}),
    ("GET", "/policy/jobs/0123456789abcdef", None, {"policy"}),  # no such job: a 404 page for the policy role
    ("GET", "/policy/jobs/0123456789abcdef/status", None, {"policy"}),
    ("POST", "/policy/jobs/0123456789abcdef/cancel", "", {"policy"}),
    ("GET", "/policy/jobs/0123456789abcdef/report", None, {"policy"}),
    ("GET", "/admin", None, {"admin"}),
    ("POST", "/admin/households", "", {"admin"}),
    ("POST", "/admin/keys", "", {"admin"}),
    ("POST", "/admin/keys/pk_0000000000000000/revoke", "", {"admin"}),
]
TEMPLATES = {"/v1/months/{month}/close": "/v1/months/2026-01/close",
             "/v1/months/{month}/settlement": f"/v1/months/{MONTH}/settlement",
             "/v1/months/{month}/bills": f"/v1/months/{MONTH}/bills",
             "/v1/months/{month}/claim": f"/v1/months/{MONTH}/claim",
             "/v1/months/{month}/reports/authority": f"/v1/months/{MONTH}/reports/authority",
             "/v1/months/{month}/reports/credits": f"/v1/months/{MONTH}/reports/credits",
             "/v1/payers/{payer}/account": "/v1/payers/grab/account",
             "/v1/households/{national_id}": f"/v1/households/{WORKER_C}",
             "/v1/platforms/{platform}/keys": "/v1/platforms/shopee/keys",
             "/v1/platforms/{platform}/keys:rotate": "/v1/platforms/grab/keys:rotate",
             "/v1/platform-keys/{key_id}": "/v1/platform-keys/pk_0000000000000000",
             "/insurer/months/{month}": f"/insurer/months/{MONTH}",
             "/insurer/months/{month}/settlement.{file_format}": f"/insurer/months/{MONTH}/settlement.csv",
             "/insurer/months/{month}/close": "/insurer/months/2026-01/close",
             "/insurer/accounts/{payer}": "/insurer/accounts/grab",
             "/insurer/accounts/{payer}.csv": "/insurer/accounts/grab.csv",
             "/admin/keys/{key_id}/revoke": "/admin/keys/pk_0000000000000000/revoke",
             "/v1/simulations/jobs/{job_id}": "/v1/simulations/jobs/0123456789abcdef",
             "/v1/simulations/jobs/{job_id}/result": "/v1/simulations/jobs/0123456789abcdef/result",
             "/policy/jobs/{job_id}": "/policy/jobs/0123456789abcdef",
             "/policy/jobs/{job_id}/status": "/policy/jobs/0123456789abcdef/status",
             "/policy/jobs/{job_id}/cancel": "/policy/jobs/0123456789abcdef/cancel",
             "/policy/jobs/{job_id}/report": "/policy/jobs/0123456789abcdef/report",
             "/static/{name:path}": "/static/app.css",  # api/web/assets.py: the files present at start-up
             "/docs-assets": "/docs-assets/swagger-ui.css"}


def served_routes(app) -> set[tuple[str, str]]:
    """Every (method, path template) the app answers, pages hidden from OpenAPI included."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        router = getattr(route, "original_router", None)
        if router is not None:  # an included router (FastAPI keeps its routes and the prefix apart)
            prefix = getattr(route.include_context, "prefix", "") or ""
            for inner in router.routes:
                for method in getattr(inner, "methods", None) or ():
                    found.add((method, prefix + inner.path))
        elif hasattr(route, "methods"):
            found |= {(method, route.path) for method in route.methods}
        else:  # a mount
            found.add(("GET", route.path))
    return {(method, path) for method, path in found if method != "HEAD"}


def test_the_access_table_lists_every_route_and_page_the_service_has(api):
    served = served_routes(api.client.app)
    assert {(method, path) for path, operations in api.client.app.openapi()["paths"].items()
            for method in map(str.upper, operations)} <= served
    listed = {(method, path.split("?")[0]) for method, path, _body, _who in ROUTES + WEB_PAGES}
    assert {(method, TEMPLATES.get(path, path)) for method, path in served} == listed


def page_verdict(response) -> str:
    if response.status_code in (401, 403):
        return "refused"
    if response.status_code in (302, 303, 307) and response.headers["location"].startswith("/signin"):
        return "refused"
    return "admitted"


@SQLITE_ONLY  # pages read the books through the same functions as the API, whose table runs on both stores
@pytest.mark.parametrize("method, path, body, allowed", WEB_PAGES, ids=[f"{m} {p}" for m, p, _b, _a in WEB_PAGES])
def test_every_web_page_admits_exactly_the_roles_its_api_route_admits(api, method, path, body, allowed):
    verdicts = {}
    for who in CALLERS:
        form = {"Content-Type": "application/x-www-form-urlencoded"} if isinstance(body, str) else None
        response = call(api, who, method, path, body, follow_redirects=False, headers=form)
        verdicts[who] = page_verdict(response)
    assert verdicts == {who: "admitted" if who in allowed else "refused" for who in CALLERS}


@pytest.mark.parametrize("method, path, body, allowed", ROUTES, ids=[f"{m} {p}" for m, p, _b, _a in ROUTES])
def test_every_route_and_page_admits_exactly_its_callers(api, method, path, body, allowed):
    verdicts = {}
    for who in CALLERS:
        status = call(api, who, method, path, body).status_code
        verdicts[who] = "refused" if status in (401, 403) else "admitted"
    assert verdicts == {who: "admitted" if who in allowed else "refused" for who in CALLERS}


def test_a_worker_reads_their_own_figures_and_nothing_else(api):
    mine = call(api, "worker A", "GET", f"/v1/workers/me/statement?month={MONTH}").json()
    theirs = call(api, "worker B", "GET", f"/v1/workers/me/statement?month={MONTH}").json()
    assert (mine["national_id"], mine["schemes"]["si"]["worker"]) == (WORKER_A, 1_000)
    assert (theirs["national_id"], theirs["schemes"]["si"]["worker"]) == (WORKER_B, 500 + 1_000)
    assert list(mine["platforms"]) == ["grab"] and sorted(theirs["platforms"]) == ["be", "grab"]
    # Nothing a worker adds to the request names someone else: the subject of the token decides.
    for attempt in (f"/v1/workers/me/statement?month={MONTH}&national_id={WORKER_B}",
                    f"/v1/workers/me/statement?month={MONTH}&worker_id={WORKER_B}&sub=x"):
        again = call(api, "worker A", "GET", attempt)
        assert again.json()["national_id"] == WORKER_A and again.json() == mine
    for path in (f"/v1/workers/{WORKER_B}/statement?month={MONTH}", f"/v1/workers/{WORKER_B}/history"):
        assert call(api, "worker A", "GET", path).status_code == 404
    nobody = call(api, "worker C", "GET", f"/v1/workers/me/statement?month={MONTH}")
    assert (nobody.status_code, nobody.json()["type"].rsplit("/", 1)[1]) == (404, "no-accounts")
    # the per-trip record too: only the token's subject's events, whatever the query names
    for attempt in (f"/v1/workers/me/events?month={MONTH}", f"/v1/workers/me/events?month={MONTH}&worker_id={WORKER_B}"):
        events = call(api, "worker A", "GET", attempt).json()["items"]
        assert sum(item["shares"]["si"]["worker"] for item in events) == mine["schemes"]["si"]["worker"]
        assert {item["platform"] for item in events} == {"grab"}


def test_a_platform_books_and_refunds_only_its_own_events(api):
    foreign = call(api, "grab", "POST", "/v1/events", [event("g-3"), event("b-9", platform="be")])
    assert (foreign.status_code, foreign.json()["items"]) == (403, [2])
    # be's event b-1 exists; a refund of it sent by grab names no event of grab's.
    stolen = call(api, "grab", "POST", "/v1/events",
                  [refund("g-r", "b-1", 100_000, kind="delivery", worker_id=WORKER_B)])
    assert [o["outcome"] for o in stolen.json()["outcomes"]] == ["unknown_original"]
    be_due = call(api, "insurer", "GET", f"/v1/months/{MONTH}/settlement").json()["platforms"]["be"]
    assert be_due == {"si": 1_000, "oa": 500, "ui": 500}
    # a platform's event id space is its own: be may use grab's ids without touching grab's events
    same_id = call(api, "be", "POST", "/v1/events", [event("g-1", platform="be", kind="delivery")])
    assert same_id.json()["counts"] == {"accepted": 1}
    assert call(api, "insurer", "GET", f"/v1/months/{MONTH}/settlement").json()["platforms"]["grab"] == {
        "si": 1_000 + 500, "oa": 500 + 250, "ui": 500 + 250}


@SQLITE_ONLY
@pytest.mark.parametrize("forgery", ["key of another platform", "signed for another path", "future timestamp",
                                     "timestamp not a number", "signature of another body", "no key id"])
def test_a_forged_platform_signature_is_refused_and_books_nothing(api, forgery):
    body = orjson.dumps([event("g-forged")])
    now = time.time()
    key_id, secret, path, stamp = api.grab.key_id, api.grab.secret, "/v1/events", now
    if forgery == "key of another platform":
        secret = api.be.secret
    elif forgery == "signed for another path":
        path = "/v1/events?dry=1"
    elif forgery == "future timestamp":
        stamp = now + 3_600
    headers = signed_headers(key_id, secret, "POST", path, body, stamp)
    if forgery == "timestamp not a number":
        headers["X-Ansinh-Timestamp"] = "1e9"
    elif forgery == "signature of another body":
        headers = signed_headers(key_id, secret, "POST", "/v1/events", orjson.dumps([event("g-other")]), now)
    elif forgery == "no key id":
        del headers["X-Ansinh-Key-Id"]
    response = call(api, "forger", "POST", "/v1/events", content=body,
                    headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert call(api, "insurer", "GET", f"/v1/months/{MONTH}/settlement").json()["platforms"]["grab"]["si"] == 1_500


# -- tokens --------------------------------------------------------------------------------------

def _claims(api, role: str = "worker", **changes) -> dict:
    now = int(api.services.ledger.clock().timestamp())
    subject = api.services.ledger.keys.pseudonym(WORKER_A) if role == "worker" else f"{role}-1"
    claims = {"iss": DEMO_ISSUER, "aud": "ansinh", "sub": subject, "role": role, "iat": now, "exp": now + 600}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not ...}


def _demo(api, role: str = "worker", **changes) -> str:
    return jwt.encode(_claims(api, role, **changes), demo_key(SECRET), algorithm="HS256")


def _altered(token: str, **changes) -> str:
    """The token's payload changed, its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims.update(changes)
    return ".".join((header, jwt.utils.base64url_encode(json.dumps(claims).encode()).decode(), signature))


def _now(api) -> int:
    return int(api.services.ledger.clock().timestamp())


TOKEN_ATTACKS = {
    "expired": lambda api, role: _demo(api, role, iat=_now(api) - 3_600, exp=_now(api) - 60),
    "not yet valid": lambda api, role: _demo(api, role, nbf=_now(api) + 3_600),
    "wrong audience": lambda api, role: _demo(api, role, aud="another-service"),
    "wrong issuer": lambda api, role: _demo(api, role, iss="https://evil.example"),
    "alg none": lambda api, role: jwt.encode(_claims(api, role), None, algorithm="none"),
    "signed with another key": lambda api, role: jwt.encode(_claims(api, role), b"k" * 32, algorithm="HS256"),
    "signed with the server secret itself": lambda api, role: jwt.encode(_claims(api, role), SECRET,
                                                                         algorithm="HS256"),
    "role raised, signature kept": lambda api, role: _altered(_demo(api, "worker"), role="admin"),
    "subject changed, signature kept": lambda api, role: _altered(
        _demo(api, role), sub=api.services.ledger.keys.pseudonym(WORKER_B)),
    "no expiry": lambda api, role: _demo(api, role, exp=...),
    "no subject": lambda api, role: _demo(api, role, sub=...),
    "unknown role": lambda api, role: _demo(api, "root"),
    "HS512 with the demo key": lambda api, role: jwt.encode(_claims(api, role), demo_key(SECRET), algorithm="HS512"),
    "not a JWT": lambda api, role: "hello.world",
    "empty": lambda api, role: " ",
}
TOKEN_TARGETS = (("/v1/workers/me/history", "worker"), ("/v1/months", "insurer"), ("/v1/platform-keys", "admin"))


@SQLITE_ONLY
@pytest.mark.parametrize("attack", list(TOKEN_ATTACKS))
def test_an_attacked_token_is_refused_401_on_worker_and_staff_routes(api, attack):
    for path, role in TOKEN_TARGETS:
        token = TOKEN_ATTACKS[attack](api, role)
        response = call(api, "attacker", "GET", path, token=token)
        assert response.status_code == 401, (attack, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert token.strip() == "" or token not in response.text


@SQLITE_ONLY
def test_the_genuine_tokens_the_attacks_are_made_from_are_admitted(api):
    for path, role in TOKEN_TARGETS:
        assert call(api, "x", "GET", path, token=_demo(api, role)).status_code == 200, path


class _Jwks:
    """A JSON Web Key Set served on 127.0.0.1, as an identity provider publishes it."""

    def __init__(self, document: dict) -> None:
        body = json.dumps(document).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def identity_provider(api):
    """Production-mode tokens: the service checks RS256 tokens against the provider's JWKS."""
    provider_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider_key.public_key()))
    server = _Jwks({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    api.services.tokens = TokenVerifier(server_secret=SECRET, audience="ansinh", issuer="https://id.example",
                                        jwks_url=server.url, allow_demo=False)
    yield api, provider_key
    server.close()


def _provider_token(api, key, algorithm: str = "RS256", kid: str | None = "k1", **changes) -> str:
    claims = {**_claims(api, iss="https://id.example"), **changes}
    claims = {name: value for name, value in claims.items() if value is not ...}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


@SQLITE_ONLY
def test_against_a_real_jwks_only_the_providers_own_valid_tokens_get_in(identity_provider):
    api, provider_key = identity_provider
    public_pem = provider_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    genuine = _provider_token(api, provider_key)
    assert call(api, "x", "GET", "/v1/workers/me/history", token=genuine).status_code == 200
    refused = {
        "a key the provider never published": _provider_token(api, other_key),
        "an unknown key id": _provider_token(api, provider_key, kid="k9"),
        "no key id": _provider_token(api, provider_key, kid=None),
        "alg none": jwt.encode(_claims(api, iss="https://id.example"), None, algorithm="none",
                               headers={"kid": "k1"}),
        "HS256 keyed with the provider's public key (algorithm confusion)": _hmac_signed(
            {"alg": "HS256", "typ": "JWT", "kid": "k1"}, _claims(api, iss="https://id.example"), public_pem),
        "a demo token outside demo mode": _demo(api),
        "expired": _provider_token(api, provider_key, exp=_now(api) - 60),
        "wrong issuer": _provider_token(api, provider_key, iss="https://evil.example"),
        "wrong audience": _provider_token(api, provider_key, aud="another-service"),
        "altered role": _altered(genuine, role="admin"),
    }
    for name, token in refused.items():
        response = call(api, "x", "GET", "/v1/workers/me/history", token=token)
        assert response.status_code == 401, (name, response.text)


def _hmac_signed(header: dict, claims: dict, key: bytes) -> str:
    """A JWT signed by hand (PyJWT itself refuses to use a PEM public key as an HMAC secret)."""
    def part(value: dict) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    signing_input = f"{part(header)}.{part(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(signature).decode()}"


# -- sizes ---------------------------------------------------------------------------------------

def test_bodies_over_the_limit_are_refused_413_declared_or_streamed_and_book_nothing(api):
    limit = 64 * 1024
    _body_limit(api).max_body_bytes = limit  # the middleware keeps the limit it was built with
    big = orjson.dumps([event(f"big-{n}") for n in range(limit // 100)])
    assert len(big) > limit
    declared = call(api, "grab", "POST", "/v1/events", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"

    def chunks():
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    headers = signed_headers(api.grab.key_id, api.grab.secret, "POST", "/v1/events", big, time.time())
    streamed = api.client.post("/v1/events", content=chunks(), headers={**headers,
                                                                         "Content-Type": "application/json"})
    api.recorded.append(("POST /v1/events streamed", streamed.status_code, streamed.text, None))
    assert streamed.status_code == 413
    csv_body = ("national_id,tier,valid_from\n" + f"{WORKER_A},poor,2026-01\n" * (limit // 20)).encode()
    households = call(api, "admin", "POST", "/v1/households:import", content=csv_body,
                      headers={"Content-Type": "text/csv"})
    assert households.status_code == 413
    settlement = call(api, "insurer", "GET", f"/v1/months/{MONTH}/settlement").json()
    assert settlement["platforms"]["grab"]["si"] == 1_500  # nothing of the refused bodies was booked


def _body_limit(api):
    """The RequestContext middleware of the running app (it enforces max_body_bytes)."""
    stack = api.client.app.middleware_stack
    while stack is not None:
        if hasattr(stack, "max_body_bytes"):
            return stack
        stack = getattr(stack, "app", None)
    raise AssertionError("no body-size middleware in the stack")


@SQLITE_ONLY
def test_a_batch_over_the_item_limit_is_refused_whole(api):
    api.services.settings.max_batch = 5
    response = call(api, "grab", "POST", "/v1/events", [event(f"n-{n}") for n in range(6)])
    assert (response.status_code, response.json()["type"].rsplit("/", 1)[1]) == (413, "batch-too-large")


@SQLITE_ONLY
@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/nowhere", 404), ("DELETE", "/v1/months", 405), ("GET", "/v1/months/2026-13/settlement", 422),
    ("PUT", f"/v1/households/{WORKER_A}", 422), ("GET", "/v1/workers/me/statement?month=February", 422),
])
def test_errors_are_problem_json_and_echo_no_national_id(api, method, path, status):
    who = "worker A" if "workers" in path else "admin"
    response = call(api, who, method, path, {"tier": "rich"} if method == "PUT" else None)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    if who == "admin":
        assert WORKER_A not in response.text


@SQLITE_ONLY
def test_a_household_csv_with_a_stray_carriage_return_is_a_422_not_a_500(api):
    body = f"national_id,tier,valid_from\n{WORKER_A},poor\r,2026-01\n".encode()
    response = call(api, "admin", "POST", "/v1/households:import", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422

"""FastAPI dependencies: the open books, and who is calling (platform, worker, staff).

Routes declare what they need (`Depends(platform_caller)`, `Depends(role("insurer",
"admin"))`) and stay thin; every check of identity or signature lives here.

Each check also depends on FastAPI's security classes (never raising: `auto_error=False`, their
values unused) so that /openapi.json says, per operation, which scheme it takes and, for bearer
tokens, which roles (the requirement's list, as OpenAPI allows for non-OAuth schemes); the
schemes' descriptions and the HMAC scheme's three-headers-together are api/contract.py's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from api.keys import PlatformKeys
from api.observability import Metrics
from api.problems import Problem
from api.settings import Settings
from api.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_matches
from api.tokens import Principal, TokenError, TokenVerifier
from ledger.books import Ledger

STAFF_ROLES = ("insurer", "policy", "admin")
# Only for the OpenAPI document (names are api/contract.py's SECURITY_SCHEMES); the checks read the headers.
SIGNED_KEY_ID = APIKeyHeader(name=KEY_HEADER, scheme_name="platformKeyId", auto_error=False)
SIGNED_TIMESTAMP = APIKeyHeader(name=TIMESTAMP_HEADER, scheme_name="platformTimestamp", auto_error=False)
SIGNED_SIGNATURE = APIKeyHeader(name=SIGNATURE_HEADER, scheme_name="platformSignature", auto_error=False)
BEARER_TOKEN = HTTPBearer(scheme_name="bearerToken", auto_error=False)


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    keys: PlatformKeys
    tokens: TokenVerifier
    metrics: Metrics
    wall_clock: Callable[[], float] = time.time


def services(request: Request) -> Services:
    return request.app.state.services


@dataclass(frozen=True)
class SignedBatch:
    platform: str
    key_id: str
    body: bytes


async def platform_caller(request: Request, svc: Services = Depends(services), _key_id=Security(SIGNED_KEY_ID),
                          _timestamp=Security(SIGNED_TIMESTAMP), _signature=Security(SIGNED_SIGNATURE)) -> SignedBatch:
    """A request signed with a platform key (docs/http.md): returns the platform and the body."""
    key_id = request.headers.get(KEY_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not (key_id and timestamp and signature):
        raise Problem(401, "unsigned", f"sign the request: {KEY_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} "
                                       "headers are required", headers={"WWW-Authenticate": "ANSINH-HMAC-SHA256"})
    if not timestamp.isdigit() or abs(svc.wall_clock() - int(timestamp)) > svc.settings.signature_window_seconds:
        raise Problem(401, "stale-signature", f"the timestamp must be unix seconds within "
                                              f"{svc.settings.signature_window_seconds} s of the server's clock")
    body = await request.body()
    found = svc.keys.secret_for(key_id)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if found is None or not signature_matches(found[1], request.method, path, timestamp, body, signature):
        raise Problem(401, "bad-signature", "the signature does not match a usable key for this request")
    if not svc.keys.first_use(signature.lower(), svc.settings.signature_window_seconds):
        raise Problem(409, "replayed-signature", "this signature was already used; sign each request afresh")
    return SignedBatch(platform=found[0], key_id=key_id, body=body)


def bearer(request: Request, svc: Services = Depends(services), _token=Security(BEARER_TOKEN)) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "unauthenticated", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        return svc.tokens.principal(token.strip(), svc.ledger.clock())
    except TokenError as error:
        raise Problem(401, "bad-token", str(error), headers={"WWW-Authenticate": "Bearer"}) from None


def role(*allowed: str) -> Callable[..., Principal]:
    """A dependency that admits bearer tokens whose role is one of `allowed`."""

    def check(principal: Principal = Security(bearer, scopes=list(allowed))) -> Principal:
        if principal.role not in allowed:
            raise Problem(403, "forbidden", f"this route is for {', '.join(allowed)}; the token's role is "
                                            f"{principal.role}")
        return principal

    return check

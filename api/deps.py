"""FastAPI dependencies: the open books, and who is calling (platform, worker, staff).

Routes declare what they need (`Depends(platform_caller)`, `Depends(role("insurer",
"admin"))`) and stay thin; every check of identity or signature lives here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from fastapi import Depends, Request

from api.keys import PlatformKeys
from api.observability import Metrics
from api.problems import Problem
from api.settings import Settings
from api.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_matches
from api.tokens import Principal, TokenError, TokenVerifier
from ledger.books import Ledger

STAFF_ROLES = ("insurer", "policy", "admin")


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


async def platform_caller(request: Request, svc: Services = Depends(services)) -> SignedBatch:
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


def bearer(request: Request, svc: Services = Depends(services)) -> Principal:
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

    def check(principal: Principal = Depends(bearer)) -> Principal:
        if principal.role not in allowed:
            raise Problem(403, "forbidden", f"this route is for {', '.join(allowed)}; the token's role is "
                                            f"{principal.role}")
        return principal

    return check

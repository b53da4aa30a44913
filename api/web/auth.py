"""Who is looking at a page: a bearer token from the Authorization header or the session cookie.

The JSON API reads only the Authorization header (`api.deps.bearer`). A browser cannot
set that header on a link or a form, so the pages also accept the same token kept in
an HttpOnly, SameSite=Strict cookie, set by the sign-in form. The token is checked by
the same `TokenVerifier` as the API; roles are the same strings. Nothing here decides
more than `api.deps` does: a page admits exactly the roles its API route admits.

Demo mode: the sign-in form mints the demo token on the server (a worker gives the
national id in a POST body, never in a URL). Production: the identity provider's
token (OIDC) is pasted or set by the proxy; demo minting is refused.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import Services, bearer, services
from api.problems import Problem
from api.tokens import Principal, TokenError, mint_demo_token

SESSION_COOKIE = "ansinh_session"
LANG_COOKIE = "ansinh_lang"
LANG_COOKIE_MAX_AGE_SECONDS = 365 * 24 * 3600


class SignInRequired(Exception):
    """No usable token: the page handler answers with a redirect to /signin."""


class PageForbidden(Exception):
    """A token whose role this page is not for (403, shown as a page)."""

    def __init__(self, role: str) -> None:
        super().__init__(role)
        self.role = role


def page_principal(request: Request, svc: Services = Depends(services)) -> Principal:
    """The caller: the Authorization header if present (exactly as the API), else the session cookie."""
    if request.headers.get("authorization"):
        try:
            return bearer(request, svc)
        except Problem:
            raise SignInRequired() from None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        return svc.tokens.principal(token, svc.ledger.clock())
    except TokenError:
        raise SignInRequired() from None


def page_role(*allowed: str) -> Callable[..., Principal]:
    """Like `api.deps.role`, for pages: no token -> sign in; another role -> a 403 page."""
    assert allowed and all(isinstance(name, str) for name in allowed)

    def check(principal: Principal = Depends(page_principal)) -> Principal:
        if principal.role not in allowed:
            raise PageForbidden(principal.role)
        return principal

    return check


def same_origin(request: Request) -> bool:
    """A form POST must come from our own pages (SameSite=Strict already keeps the cookie off
    cross-site requests; this refuses a cross-site POST that carries a header token)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def mint_session(svc: Services, role: str, subject: str) -> str:
    """A demo token for `role` and `subject` (a worker's subject is their pseudonym)."""
    if svc.settings.mode != "demo":
        raise PermissionError("demo tokens are minted only in demo mode")
    # The same derived key `ansinh token` uses (api.tokens.demo_key of the server secret).
    return mint_demo_token(svc.keys.server_secret, role, subject, svc.ledger.clock(),
                           timedelta(seconds=svc.settings.token_ttl_seconds), audience=svc.settings.oidc_audience,
                           key_id=svc.settings.token_key_id)


def set_session(response: Response, request: Request, svc: Services, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=svc.settings.token_ttl_seconds, httponly=True,
                        samesite="strict", secure=_secure(request, svc), path="/")


def clear_session(response: Response, request: Request, svc: Services) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request, svc))


def _secure(request: Request, svc: Services) -> bool:
    # Over HTTPS (the proxy in production) the cookie is Secure; plain http://127.0.0.1 in demo.
    return svc.settings.mode == "production" or request.url.scheme == "https"

"""Bearer tokens for workers and staff (JWT).

Production: tokens come from the OIDC identity provider (the national identity app
for workers); they are checked against its JWKS, issuer and audience. Demo mode:
`ansinh token worker NATIONAL_ID` / `ansinh token staff --role insurer` mint
short-lived HS256 tokens under a key derived from the server secret.

A worker token's subject is the keyed pseudonym of the national id, never the raw
number; its role claim is `worker`. Staff roles: `insurer`, `policy`, `admin`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from ledger.identity import derive_key

ROLES = ("worker", "insurer", "policy", "admin")
DEMO_ISSUER = "ansinh-demo"
LEEWAY_SECONDS = 5


class TokenError(Exception):
    """A bearer token that cannot be accepted (the reason is safe to show)."""


@dataclass(frozen=True)
class Principal:
    role: str
    subject: str


#: The token key in use (ledger.identity.KEY_LABELS); ANSINH_TOKEN_KEY_ID switches it. Tokens
#: live minutes (ANSINH_TOKEN_TTL_SECONDS), so a switch needs no grace: docs/security.md.
TOKEN_KEY_ID = "token/v1"


def demo_key(server_secret: str, key_id: str = TOKEN_KEY_ID) -> bytes:
    """The HS256 key of demo tokens, derived from the master secret (`token/v1` is the
    HMAC(secret, "ansinh demo token key") tokens have always been signed with)."""
    if not key_id.startswith("token/"):
        raise ValueError(f"{key_id!r} is not a token key id (token/v1, token/v2)")
    return derive_key(server_secret, key_id)


def mint_demo_token(server_secret: str, role: str, subject: str, now: datetime, ttl: timedelta,
                    audience: str = "ansinh", key_id: str = TOKEN_KEY_ID) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    claims = {"iss": DEMO_ISSUER, "aud": audience, "sub": subject, "role": role,
              "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, demo_key(server_secret, key_id), algorithm="HS256")


class TokenVerifier:
    """Checks a bearer token: the OIDC issuer's JWKS when configured, else the demo key."""

    def __init__(self, *, server_secret: str, audience: str, issuer: str | None = None,
                 jwks_url: str | None = None, role_claim: str = "role", allow_demo: bool = True,
                 token_key_id: str = TOKEN_KEY_ID) -> None:
        self.audience = audience
        self.issuer = issuer
        self.role_claim = role_claim
        self.allow_demo = allow_demo
        self._demo_key = demo_key(server_secret, token_key_id)
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None

    def principal(self, token: str, now: datetime) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the bearer token is not a JWT") from None
        # Expiry is checked below against `now` (the service's clock), not inside PyJWT.
        options = {"require": ["exp", "sub", "aud"], "verify_exp": False, "verify_iat": False, "verify_nbf": False}
        try:
            if header.get("alg") == "HS256":
                if not self.allow_demo:
                    raise TokenError("demo tokens are not accepted outside demo mode")
                claims = jwt.decode(token, self._demo_key, algorithms=["HS256"], audience=self.audience,
                                    issuer=DEMO_ISSUER, options=options, leeway=LEEWAY_SECONDS)
            elif self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(token, key, algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                                    audience=self.audience, issuer=self.issuer, options=options, leeway=LEEWAY_SECONDS)
            else:
                raise TokenError("no identity provider is configured for this token's algorithm")
        except jwt.PyJWTError as error:
            raise TokenError(f"the bearer token is not valid ({type(error).__name__})") from None
        moment = now.timestamp()
        if not isinstance(claims["exp"], (int, float)) or claims["exp"] + LEEWAY_SECONDS < moment:
            raise TokenError("the bearer token has expired")
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] - LEEWAY_SECONDS > moment:
            raise TokenError("the bearer token is not valid yet")
        role = claims.get(self.role_claim)
        if role not in ROLES:
            raise TokenError("the bearer token carries no known role")
        return Principal(role=role, subject=str(claims["sub"]))

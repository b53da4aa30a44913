"""Service settings from the environment (pydantic-settings), checked before start.

Outside demo mode the service refuses to start with a missing or well-known secret:
the secret keys worker pseudonyms, platform API keys and demo tokens.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Secrets that appear in docs, tests or examples: never acceptable in production.
WELL_KNOWN_SECRETS = {"", "change-me", "changeme", "secret", "test-secret-not-for-production",
                      "ansinh-demo-secret-in-memory"}
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """Settings the service must not start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANSINH_", extra="ignore")

    mode: Literal["demo", "production"] = "demo"
    database_url: Optional[str] = None
    pack: Optional[str] = None
    secret: Optional[str] = None
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch: int = Field(default=10_000, ge=1, le=10_000)
    signature_window_seconds: int = Field(default=300, ge=30, le=3600)
    token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    oidc_issuer: Optional[str] = None
    oidc_audience: str = "ansinh"
    oidc_jwks_url: Optional[str] = None
    role_claim: str = "role"
    min_cell_workers: int = Field(default=10, ge=1)  # k: fewest workers behind a cell the policy role sees

    def check(self) -> "Settings":
        """Raise SettingsError for settings that are unsafe in the chosen mode."""
        if self.mode == "production":
            if self.secret is None or self.secret in WELL_KNOWN_SECRETS or len(self.secret) < MIN_SECRET_LENGTH:
                raise SettingsError(f"ANSINH_SECRET must be set to a random value of at least {MIN_SECRET_LENGTH} "
                                    "characters outside demo mode (it keys pseudonyms and API keys)")
            if not (self.oidc_issuer and self.oidc_jwks_url):
                raise SettingsError("ANSINH_OIDC_ISSUER and ANSINH_OIDC_JWKS_URL must be set outside demo mode "
                                    "(workers and staff sign in through the identity provider)")
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise SettingsError("ANSINH_DATABASE_URL must name a PostgreSQL database outside demo mode")
        return self

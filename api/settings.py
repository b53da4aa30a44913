"""Service settings from the environment (pydantic-settings), checked before start.

Production is the default and fails closed: without a strong master secret
(`ledger.master_secret`), an identity provider and a PostgreSQL database the service
refuses to start, in one line naming everything missing. Demo mode — tokens minted by a
sign-in form that lets anyone be admin — runs only when asked (`ansinh serve --demo`,
ANSINH_DEMO=1, ANSINH_MODE=demo), and never on a server database unless that is asked
too (`--demo-on-server-database`, ANSINH_DEMO_ON_SERVER_DATABASE=1).
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.master_secret import PUBLIC_SECRETS, SecretError, secret_given, secret_problem
from ledger.store import database_url as resolved_database_url, is_server_database

#: Kept for callers of the previous release: the secrets refused whatever their length.
WELL_KNOWN_SECRETS = PUBLIC_SECRETS
TOKEN_KEY_IDS = ("token/v1", "token/v2")
#: Demo mode's fund account for top-ups: Vietcombank's BIN and a made-up account number.
DEMO_FUND_ACCOUNT = ("970436", "0011000000001")


class SettingsError(ValueError):
    """Settings the service must not start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANSINH_", extra="ignore")

    mode: Literal["demo", "production"] = "production"
    demo: bool = False  # ANSINH_DEMO=1: the same as mode=demo
    demo_on_server_database: bool = False
    database_url: Optional[str] = None
    pack: Optional[str] = None
    secret: Optional[str] = None
    secret_file: Optional[str] = None
    token_key_id: Literal["token/v1", "token/v2"] = "token/v1"
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch: int = Field(default=10_000, ge=1, le=10_000)
    signature_window_seconds: int = Field(default=300, ge=30, le=3600)
    token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    oidc_issuer: Optional[str] = None
    oidc_audience: str = "ansinh"
    oidc_jwks_url: Optional[str] = None
    role_claim: str = "role"
    # Where simulation jobs keep their state and results (simulations/jobs.py). Unset: a temporary folder
    # of the process, so jobs survive a page reload but not a restart of the service.
    jobs_dir: Optional[str] = None
    min_cell_workers: int = Field(default=10, ge=1)  # k: fewest workers behind a cell the policy role sees
    # The fund's bank account that workers' top-ups are paid into (the worker page's VietQR code):
    # the bank's NAPAS BIN and the account number. Unset in production: the page shows the reference
    # and the amount but no QR code; demo mode uses DEMO_FUND_ACCOUNT.
    fund_bank_bin: Optional[str] = Field(default=None, pattern=r"^[0-9]{6}$")
    fund_account: Optional[str] = Field(default=None, pattern=r"^[0-9A-Za-z]{1,19}$")

    @model_validator(mode="after")
    def _demo_flag(self) -> "Settings":
        if self.demo:
            self.mode = "demo"
        return self

    def fund_account_for_topups(self) -> tuple[str, str] | None:
        """(bank BIN, account number) of the fund for top-ups: as set, else the demo's in demo mode."""
        if self.fund_bank_bin and self.fund_account:
            return self.fund_bank_bin, self.fund_account
        return DEMO_FUND_ACCOUNT if self.mode == "demo" else None

    def master_secret(self) -> str | None:
        """The secret given (ANSINH_SECRET or the file ANSINH_SECRET_FILE names), None if none."""
        try:
            return secret_given(self.secret, self.secret_file)
        except SecretError as error:
            raise SettingsError(str(error)) from None

    def check(self) -> "Settings":
        """Raise SettingsError, one line naming every problem, for settings unsafe in the chosen mode."""
        if self.mode == "demo":
            url = resolved_database_url(self.database_url)
            if is_server_database(url) and not self.demo_on_server_database:
                raise SettingsError("demo mode is refused on a server database (its sign-in form lets anyone act "
                                    "as admin); use an embedded SQLite file, or add --demo-on-server-database "
                                    "(ANSINH_DEMO_ON_SERVER_DATABASE=1) for a throwaway database")
            if is_server_database(url):  # a server database is never keyed by a guessable secret
                problem = secret_problem(self.master_secret(), "ANSINH_SECRET (or ANSINH_SECRET_FILE)")
                if problem is not None:
                    raise SettingsError(problem)
            return self
        problems = []
        problem = secret_problem(self.master_secret(), "ANSINH_SECRET (or ANSINH_SECRET_FILE)")
        if problem is not None:
            problems.append(problem)
        if not (self.oidc_issuer and self.oidc_jwks_url):
            problems.append("ANSINH_OIDC_ISSUER and ANSINH_OIDC_JWKS_URL must be set (workers and staff sign in "
                            "through the identity provider)")
        if self.database_url is None or not is_server_database(self.database_url):
            problems.append("ANSINH_DATABASE_URL must name a PostgreSQL database")
        if problems:
            raise SettingsError("production mode (the default) cannot start: " + "; ".join(problems)
                                + " — for a local trial, `ansinh serve --demo`")
        return self

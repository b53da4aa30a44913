"""An HTTP client on a fresh ledger (SQLite and PostgreSQL), with keys and tokens for every role."""
from __future__ import annotations

import secrets
import time
import warnings
from datetime import timedelta

import orjson
import pytest

from api.app import build_services, create_app
from api.settings import Settings
from api.signing import signed_headers
from api.tokens import mint_demo_token
from tests.conftest import FixedClock

SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Caller:
    """A TestClient that knows how to sign as a platform and authenticate as a role."""

    def __init__(self, client: TestClient, services) -> None:
        self.client, self.services = client, services
        self.grab = services.keys.add("grab")
        self.be = services.keys.add("be")

    def token(self, role: str, subject: str = "staff-1") -> str:
        return mint_demo_token(SECRET, role, subject, self.services.ledger.clock(), timedelta(minutes=15))

    def worker_token(self, national_id: str) -> str:
        return self.token("worker", self.services.ledger.keys.pseudonym(national_id))

    def bearer(self, role: str, subject: str = "staff-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject)}"}

    def post_events(self, items, key=None, *, body: bytes | None = None, now: float | None = None,
                    content_type: str = "application/json", path: str = "/v1/events", headers: dict | None = None):
        key = key or self.grab
        payload = body if body is not None else orjson.dumps(items)
        signed = signed_headers(key.key_id, key.secret, "POST", path, payload, now or time.time())
        return self.client.post(path, content=payload,
                                headers={**signed, "Content-Type": content_type, **(headers or {})})


@pytest.fixture
def caller(database_url):
    settings = Settings(database_url=database_url, secret=SECRET, pack="vn-pilot", mode="demo",
                        demo_on_server_database=True)  # a throwaway test schema
    services = build_services(settings, clock=FixedClock())
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield Caller(client, services)

"""Platform API keys: created, rotated and revoked by an administrator.

A key's secret is *derived*, never stored. The key id says how (docs/security.md,
rotation): `pk2_…` keys (issued now) are HMAC-SHA-256 under the platform-key derivation
key `platform-key/v2` (`ledger.identity.derive_key` of the master secret); `pk_…` keys
(version 1, issued before) are base64url(HMAC-SHA-256(master secret, "ansinh platform
key\\0" + key id)) and keep working until rotated. The database keeps the key id, its
platform, its dates and a SHA-256 fingerprint of the secret — so a copy of the database
alone cannot sign a request. Rotation issues a new key and retires the old ones after a
grace period; revocation is immediate.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from ledger.books import Ledger, iso_utc
from ledger.identity import derive_key
from ledger.store import execute_many, query

PLATFORM_NAME = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ROTATION_GRACE = timedelta(hours=24)


class UnknownKey(LookupError):
    """An unknown key or platform."""


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    platform: str
    secret: str  # shown once, to the administrator who created it


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    platform: str
    created_at: str
    retires_at: str | None
    revoked_at: str | None

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.retires_at is None or datetime.fromisoformat(self.retires_at.replace("Z", "+00:00")) > now


#: Key id prefix -> the named derivation of its secret; new keys use CURRENT_KEY_PREFIX.
KEY_DERIVATIONS = {"pk2_": "platform-key/v2", "pk_": "platform-key/v1"}
CURRENT_KEY_PREFIX = "pk2_"
_V1_LABEL = b"ansinh platform key\0"


def derive_secret(server_secret: str, key_id: str) -> str:
    """The secret of platform key `key_id`, by the derivation its prefix names."""
    if key_id.startswith("pk2_"):
        digest = hmac.new(derive_key(server_secret, KEY_DERIVATIONS["pk2_"]), key_id.encode(), hashlib.sha256).digest()
    else:  # platform-key/v1: every key issued before v2, unchanged so that it keeps signing
        digest = hmac.new(server_secret.encode(), _V1_LABEL + key_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class PlatformKeys:
    def __init__(self, ledger: Ledger, server_secret: str) -> None:
        self.ledger = ledger
        self.server_secret = server_secret

    def add(self, platform: str) -> IssuedKey:
        if not PLATFORM_NAME.fullmatch(platform):
            raise ValueError("a platform id is 1–128 characters of A-Z a-z 0-9 . _ : -")
        key_id = CURRENT_KEY_PREFIX + secrets.token_hex(8)
        secret = derive_secret(self.server_secret, key_id)
        with self.ledger.engine.begin() as conn:
            execute_many(conn, "INSERT INTO platform_key (key_id, platform, created_at, secret_sha256) "
                               "VALUES (?, ?, ?, ?)",
                         [(key_id, platform, iso_utc(self.ledger.clock()), hashlib.sha256(secret.encode()).hexdigest())])
        return IssuedKey(key_id, platform, secret)

    def rotate(self, platform: str, grace: timedelta = ROTATION_GRACE) -> IssuedKey:
        """A new key; the platform's older keys stop working after `grace`."""
        if not self.list(platform):
            raise UnknownKey(f"platform {platform!r} has no keys to rotate; add one first")
        retires = iso_utc(self.ledger.clock() + grace)
        issued = self.add(platform)
        with self.ledger.engine.begin() as conn:
            execute_many(conn, "UPDATE platform_key SET retires_at = ? WHERE platform = ? AND key_id <> ? "
                               "AND revoked_at IS NULL AND (retires_at IS NULL OR retires_at > ?)",
                         [(retires, platform, issued.key_id, retires)])
        return issued

    def revoke(self, key_id: str) -> KeyRecord:
        record = self.get(key_id)
        if record is None:
            raise UnknownKey(f"no key {key_id!r}")
        if record.revoked_at is None:
            with self.ledger.engine.begin() as conn:
                execute_many(conn, "UPDATE platform_key SET revoked_at = ? WHERE key_id = ?",
                             [(iso_utc(self.ledger.clock()), key_id)])
        return self.get(key_id)  # type: ignore[return-value]

    def get(self, key_id: str) -> KeyRecord | None:
        with self.ledger.engine.connect() as conn:
            rows = query(conn, "SELECT key_id, platform, created_at, retires_at, revoked_at FROM platform_key "
                               "WHERE key_id = ?", (key_id,))
            conn.rollback()
        return KeyRecord(*rows[0]) if rows else None

    def list(self, platform: str | None = None) -> list[KeyRecord]:
        sql = "SELECT key_id, platform, created_at, retires_at, revoked_at FROM platform_key"
        with self.ledger.engine.connect() as conn:
            rows = query(conn, sql + (" WHERE platform = ?" if platform else "") + " ORDER BY platform, created_at",
                         (platform,) if platform else ())
            conn.rollback()
        return [KeyRecord(*row) for row in rows]

    def secret_for(self, key_id: str) -> tuple[str, str] | None:
        """(platform, secret) of a usable key, else None."""
        record = self.get(key_id)
        if record is None or not record.usable(self.ledger.clock()):
            return None
        return record.platform, derive_secret(self.server_secret, key_id)

    def first_use(self, signature: str, window_seconds: int) -> bool:
        """Record a signature; False when it was seen before (a replay)."""
        now = int(self.ledger.clock().timestamp())
        with self.ledger.engine.begin() as conn:
            if secrets.randbelow(200) == 0:
                execute_many(conn, "DELETE FROM seen_signature WHERE seen_at < ?", [(now - 2 * window_seconds,)])
            inserted = conn.execute(text("INSERT INTO seen_signature (signature, seen_at) VALUES (:signature, :now) "
                                         "ON CONFLICT (signature) DO NOTHING"), {"signature": signature, "now": now})
            return inserted.rowcount == 1


"""The request signature platforms put on `POST /v1/events` (pure functions, no I/O).

    string to sign = "ANSINH-HMAC-SHA256\n" + METHOD + "\n" + PATH (with query) + "\n"
                     + TIMESTAMP (unix seconds) + "\n" + hex(SHA-256(body))
    signature      = hex(HMAC-SHA-256(key secret, string to sign))

sent as headers `X-Ansinh-Key-Id`, `X-Ansinh-Timestamp`, `X-Ansinh-Signature`.
See docs/http.md for client examples in Python and curl + openssl.
"""
from __future__ import annotations

import hashlib
import hmac

SCHEME = "ANSINH-HMAC-SHA256"
KEY_HEADER = "X-Ansinh-Key-Id"
TIMESTAMP_HEADER = "X-Ansinh-Timestamp"
SIGNATURE_HEADER = "X-Ansinh-Signature"


def string_to_sign(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join((SCHEME, method.upper(), path, timestamp, hashlib.sha256(body).hexdigest())).encode()


def sign(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), string_to_sign(method, path, timestamp, body), hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes, now: float) -> dict[str, str]:
    """The three headers of a signed request (used by tests, benchmarks and the docs' client)."""
    timestamp = str(int(now))
    return {KEY_HEADER: key_id, TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, method, path, timestamp, body)}


def signature_matches(secret: str, method: str, path: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, method, path, timestamp, body), signature.lower())

"""Worker identity: the CCCD rules of RULES.md §2, the keyed pseudonym, encryption at rest.

The raw citizen identity number (CCCD) identifies one person across platforms, so it
is what joins a driver's Grab trips to her ShopeeFood deliveries. It is also personal
data. The ledger therefore keys every row by `pseudonym(national_id)` (HMAC-SHA-256
under a server secret) and keeps the raw number only encrypted (AES-GCM), for the
exports to the national insurer. Nothing here logs or formats a raw number into an
error message.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PROVINCE_CODES = frozenset(
    """001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031
    033 034 035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064
    066 067 068 070 072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095
    096""".split()
)
_TWELVE_DIGITS = re.compile(r"[0-9]{12}", re.ASCII)


def birth_year(national_id: str) -> int:
    """Year of birth encoded by digits 4–6: 1900 + 100·⌊d/2⌋ + yy (RULES.md §2)."""
    century_digit = ord(national_id[3]) - 48
    return 1900 + 100 * (century_digit // 2) + int(national_id[4:6])


def sex(national_id: str) -> str:
    """Even century digit = male, odd = female (the CCCD convention)."""
    return "female" if (ord(national_id[3]) - 48) % 2 else "male"


def province_code(national_id: str) -> str:
    return national_id[:3]


def is_valid_national_id(value: object, event_year: int) -> bool:
    """RULES.md §2: 12 ASCII digits, a known province, born no later than the event's year."""
    if type(value) is not str or not _TWELVE_DIGITS.fullmatch(value):
        return False
    if value[:3] not in PROVINCE_CODES:
        return False
    return birth_year(value) <= event_year


def masked(national_id: str) -> str:
    """What may appear in a message: province and the last two digits, never the rest."""
    return f"{national_id[:3]}*******{national_id[-2:]}" if len(national_id) == 12 else "***"


#: What each key derived from the master secret is for, and the label it is derived under.
#: A key id is "<purpose>/v<n>"; a new version of a key is a new label (rotation: docs/security.md).
#: The labels of version 1 are the ones the books have always used (changing one would change
#: every pseudonym, every platform key or every token already issued).
KEY_LABELS: dict[str, bytes] = {
    "pseudonym/v1": b"ansinh/pseudonym/v1",
    "encryption/v1": b"ansinh/encryption/v1",
    # The demo/staff token key: HMAC(master, "ansinh demo token key") is what api.tokens has
    # always used, so tokens already issued stay valid; "token/v2" is the key to switch to.
    "token/v1": b"ansinh demo token key",
    "token/v2": b"ansinh/token/v2",
    # Platform API keys: each key's secret is HMAC(this key, key id). Version 1 derived each
    # platform key from the master secret directly (api.keys.derive_secret, kept for its keys).
    "platform-key/v2": b"ansinh/platform-key/v2",
    # Worker top-up references (ledger/money.py `topup_reference`): the key of the permutation that
    # turns a worker's row id into the digits of their payment reference, and back.
    "topup-reference/v1": b"ansinh/topup-reference/v1",
}


def derive_key(master_secret: str, key_id: str) -> bytes:
    """The 32-byte key `key_id` (see KEY_LABELS): HMAC-SHA-256(master secret, label).

    This is HKDF-Expand (RFC 5869) with one output block and the label as `info`, keyed by
    the master secret directly; one master secret gives independent keys per purpose.
    """
    return hmac.new(master_secret.encode("utf-8"), KEY_LABELS[key_id], hashlib.sha256).digest()


def key_check_value(key: bytes) -> str:
    """A key check value: a keyed hash of a constant, never the key (16 hex digits).

    Stored with the books, so books opened with another secret are refused before anything
    is read or written with the wrong key.
    """
    return hmac.new(key, b"ansinh key check value", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class IdentityKeys:
    """The server secrets of personal data: one keys the pseudonym, one encrypts the raw number, one
    hides the row id inside a worker's top-up reference (`ledger.money.topup_reference`)."""

    pseudonym_key: bytes
    encryption_key: bytes
    #: Derived from the same master secret as the pseudonym key, whose check value (`key_check`)
    #: already refuses a wrong secret; no check value of its own.
    reference_key: bytes

    def pseudonym(self, national_id: str) -> str:
        digest = hmac.new(self.pseudonym_key, national_id.encode("ascii"), hashlib.sha256)
        return digest.hexdigest()

    def encrypt(self, national_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.encryption_key).encrypt(nonce, national_id.encode("ascii"), b"cccd")

    def decrypt(self, blob: bytes) -> str:
        return AESGCM(self.encryption_key).decrypt(blob[:12], blob[12:], b"cccd").decode("ascii")

    def check_values(self) -> dict[str, str]:
        """`key_check_value` of each key, by key id (stored with the books: `ledger.books.check_keys`)."""
        return {"pseudonym/v1": key_check_value(self.pseudonym_key),
                "encryption/v1": key_check_value(self.encryption_key)}

    @classmethod
    def from_secret(cls, secret: str) -> "IdentityKeys":
        """Derive the keys from the master secret (`derive_key`)."""
        return cls(pseudonym_key=derive_key(secret, "pseudonym/v1"),
                   encryption_key=derive_key(secret, "encryption/v1"),
                   reference_key=derive_key(secret, "topup-reference/v1"))

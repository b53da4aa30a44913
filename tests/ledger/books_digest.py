"""A digest of everything a set of books stores, to prove two ways of booking wrote the same books.

`books_digest(ledger)` hashes every row of every table (sorted, bytes as bytes), so two books
agree only if their journal rows, kept entry hashes, blocks and chain head, aggregates,
identity rows and keys are the same. Two things make the same input give the same bytes:
a fixed clock (the `ledger` fixture's) and `deterministic_identities`, which derives the
nonce of a national id's encryption from the id instead of drawing it at random (the
worker rows, their seals, and through them the block hashes, then match too).
"""
from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import inspect

from ledger.identity import IdentityKeys
from ledger.store import query

SKIPPED_TABLES = frozenset({"alembic_version"})


def _deterministic_encrypt(self: IdentityKeys, national_id: str) -> bytes:
    nonce = hmac.new(self.encryption_key, national_id.encode("ascii"), hashlib.sha256).digest()[:12]
    return nonce + AESGCM(self.encryption_key).encrypt(nonce, national_id.encode("ascii"), b"cccd")


@pytest.fixture
def deterministic_identities(monkeypatch):
    monkeypatch.setattr(IdentityKeys, "encrypt", _deterministic_encrypt)


def _plain(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes:" + bytes(value).hex()
    if isinstance(value, (int, str, float)) or value is None:
        return value
    return str(value)  # dates, decimals


def table_rows(ledger) -> dict[str, list[list]]:
    """Every table's rows, sorted, as plain values (PostgreSQL: the partitions read through their parent)."""
    tables: dict[str, list[list]] = {}
    with ledger.engine.connect() as conn:
        inspector = inspect(conn)
        names = sorted(set(inspector.get_table_names()) - SKIPPED_TABLES)
        partitions = set()
        if conn.dialect.name == "postgresql":
            partitions = {row[0] for row in query(conn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                                        "ON c.oid = i.inhrelid")}
        for name in names:
            if name in partitions:
                continue
            rows = [[_plain(value) for value in row] for row in query(conn, f"SELECT * FROM {name}")]
            tables[name] = sorted(rows, key=lambda row: orjson.dumps(row))
        conn.rollback()
    return tables


def books_digest(ledger) -> str:
    return hashlib.sha256(orjson.dumps(table_rows(ledger), option=orjson.OPT_SORT_KEYS)).hexdigest()

"""The master secret: where it is read from, and which secrets are refused.

Every key of the books is derived from one master secret (`ledger.identity.derive_key`):
the pseudonym key, the id-encryption key, the platform-key derivation key and the token
key. A guessable master secret therefore gives away all of them, so a production
service, and any command on a server database, refuses one that is

- short of `MIN_SECRET_BITS` bits by a conservative estimate (`estimated_bits`): the
  length times the smaller of the alphabet's size (from the character classes used) and
  the string's own per-character entropy, counted over one period of a repeated string
  (`a`×32 scores 0, `secrets.token_hex(32)` about 240, `secrets.token_urlsafe(32)` about
  200, `secrets.token_hex(16)` under 128: ask for 32 random bytes);
- or public: every secret ever written in this repository's tests, benchmarks and docs
  (`PUBLIC_SECRETS`; tests/api/test_fail_closed.py greps the repository and checks
  that every secret literal it finds is refused).

The secret comes from ANSINH_SECRET or from a file (ANSINH_SECRET_FILE, `ansinh
--secret-file`), so it need not sit in a process's environment (docs/security.md).
"""
from __future__ import annotations

import math
import os
import string
from collections import Counter
from pathlib import Path

MIN_SECRET_BITS = 128
SECRET_ENV = "ANSINH_SECRET"
SECRET_FILE_ENV = "ANSINH_SECRET_FILE"
MAX_SECRET_FILE_BYTES = 4096

#: Secrets that are public: written in this repository (tests, benchmarks, docs, old
#: defaults) or in examples everywhere. Refused whatever their estimated entropy.
PUBLIC_SECRETS = frozenset({
    "", "change-me", "changeme", "secret", "password", "ansinh", "test", "demo",
    "test-secret-not-for-production", "ansinh-demo-secret-in-memory",
    "test-server-secret-0123456789abcdef-not-production", "schema-test-secret-0123456789abcdef0123",
    "served-test-secret-0123456789abcdef0123", "reliability-test-secret-0123456789abcdef",
    "simulations-agree-test-secret-0123456789abcdef", "web-test-secret-0123456789abcdef0123456789",
    "benchmark-secret", "benchmark-secret-0123456789abcdef0123456789",
    "upgrade-fixture-secret-not-for-production-0123456789abcdef",  # tests/upgrade: books of an earlier release
    "upgrade-credits-fixture-secret-not-for-production-9876543210",  # tests/upgrade: books of release 0008
})

_CLASSES = ((frozenset(string.digits), 10), (frozenset(string.ascii_lowercase), 26),
            (frozenset(string.ascii_uppercase), 26))
_HEX_LOWER = frozenset("0123456789abcdef")
_HEX_UPPER = frozenset("0123456789ABCDEF")


class SecretError(ValueError):
    """A master secret that cannot be used (the message never quotes the secret)."""


def _period(text: str) -> str:
    """The shortest unit that `text` repeats (`abcabcab` -> `abc`), else `text`."""
    for size in range(1, len(text) // 2 + 1):
        if all(text[index] == text[index % size] for index in range(size, len(text))):
            return text[:size]
    return text


def estimated_bits(secret: str) -> float:
    """A conservative estimate of the secret's entropy in bits (see the module docstring)."""
    unit = _period(secret)
    if not unit:
        return 0.0
    present = set(unit)
    if present <= _HEX_LOWER or present <= _HEX_UPPER:
        alphabet = 16
    else:
        alphabet = sum(size for members, size in _CLASSES if present & members)
        if present - set(string.ascii_letters + string.digits):
            alphabet += 33 if not present.isdisjoint(set(string.punctuation + " ")) else 0
            alphabet += 1000 if any(ord(character) > 127 for character in present) else 0
    counts = Counter(unit)
    shannon = -sum(n / len(unit) * math.log2(n / len(unit)) for n in counts.values())
    return max(0.0, len(unit) * min(math.log2(max(alphabet, 1)), shannon))


def secret_problem(secret: str | None, source: str = SECRET_ENV) -> str | None:
    """Why `secret` must not key production books, or None when it may (never quotes it)."""
    if secret is None or not secret:
        return f"{source} is not set"
    if secret in PUBLIC_SECRETS or secret.strip().lower() in PUBLIC_SECRETS:
        return f"{source} is a secret published in the ansinh repository or its docs; generate a new one"
    bits = estimated_bits(secret)
    if bits < MIN_SECRET_BITS:
        return (f"{source} has about {bits:.0f} bits of estimated entropy, under {MIN_SECRET_BITS}; "
                "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`")
    return None


def check_secret(secret: str | None, source: str = SECRET_ENV) -> str:
    """`secret` if it may key production books, else SecretError with one line."""
    problem = secret_problem(secret, source)
    if problem is not None:
        raise SecretError(problem)
    return secret  # type: ignore[return-value]


def read_secret_file(path: str | Path) -> str:
    """The secret kept in a file (trailing newline and spaces dropped), or SecretError."""
    file = Path(path)
    try:
        data = file.read_bytes()[:MAX_SECRET_FILE_BYTES + 1]
    except OSError as error:
        raise SecretError(f"{SECRET_FILE_ENV}: cannot read {file} ({error.strerror})") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretError(f"{SECRET_FILE_ENV}: {file} is over {MAX_SECRET_FILE_BYTES} bytes; it must hold the "
                          "secret alone")
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretError(f"{SECRET_FILE_ENV}: {file} is not UTF-8 text") from None
    if not secret:
        raise SecretError(f"{SECRET_FILE_ENV}: {file} is empty")
    return secret


def secret_given(secret: str | None, secret_file: str | Path | None) -> str | None:
    """The secret itself, or read from `secret_file`; None when neither is given. Both at once
    is refused (which one wins would be a guess)."""
    if secret and secret_file:
        raise SecretError(f"both {SECRET_ENV} and {SECRET_FILE_ENV} are set; keep one")
    if secret_file:
        return read_secret_file(secret_file)
    return secret or None


def secret_from_environment(explicit: str | None = None, secret_file: str | Path | None = None) -> str | None:
    """The master secret given: `explicit` or `secret_file`, else ANSINH_SECRET or the file
    ANSINH_SECRET_FILE names; None when none is given."""
    if explicit or secret_file:
        return secret_given(explicit, secret_file)
    return secret_given(os.environ.get(SECRET_ENV), os.environ.get(SECRET_FILE_ENV))

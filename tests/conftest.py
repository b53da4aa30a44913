"""Fixtures shared by the suite: a fresh database per test, on SQLite and on PostgreSQL.

`database_url` is parametrised over both stores. PostgreSQL tests use the real server
on 127.0.0.1:5432 (database `test`, trust auth), each in a schema of its own that is
dropped afterwards. If the server is down the fixture tries to start it; if that
fails the test is skipped with a loud reason — except under CI=true, where a missing
PostgreSQL is a failure, because CI must exercise both stores.

`suite_logs` (autouse, one per session and per xdist worker) sees every log record
handled in the process during the whole suite — ansinh's, uvicorn's, every library's —
and fails the session if any carries a Python traceback or a raw national id that the
tests made up (`log_problems`, tested in tests/reliability/test_log_capture.py).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import subprocess
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pytest

# A fresh secret per test process: committed secrets are refused on a server database (docs/security.md).
os.environ.setdefault("ANSINH_SECRET", secrets.token_hex(32))

PG_ADMIN_URL = os.environ.get("ANSINH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[2] / "shared"
_pg_state: dict[str, object] = {}


def _pg_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


def postgres_available() -> str | None:
    """None when PostgreSQL answers; else the reason it does not."""
    if "reason" in _pg_state:
        return _pg_state["reason"]  # type: ignore[return-value]
    reason = None
    try:
        _pg_connect().close()
    except Exception as first:  # noqa: BLE001 - any failure means "not reachable"
        try:
            versions = sorted(os.listdir("/etc/postgresql"))
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                           check=False, capture_output=True, timeout=60)
            _pg_connect().close()
        except Exception as second:  # noqa: BLE001
            reason = f"PostgreSQL on 127.0.0.1:5432 is not reachable ({first}; start attempt: {second})"
    _pg_state["reason"] = reason
    return reason


def _fresh_postgres_url() -> tuple[str, str]:
    schema = "t_" + uuid.uuid4().hex[:12]
    with _pg_connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    base = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}?options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    with _pg_connect() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A URL of a fresh, empty database (created and migrated on first open)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    reason = postgres_available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL suite: {reason}")
        pytest.skip(f"SKIPPING POSTGRESQL: {reason}")
    url, schema = _fresh_postgres_url()
    yield url
    _drop_schema(schema)


class FixedClock:
    """A clock that only moves when told to (rules and books never read the wall clock in tests)."""

    def __init__(self, moment: datetime | None = None) -> None:
        self.moment = moment or datetime(2026, 6, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def ledger(database_url):
    from ledger.books import Ledger

    books = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    yield books
    books.close()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"SKIPPING: the shared folder {SHARED} is not beside the project")
    return SHARED


# -- suite-wide log capture ----------------------------------------------------------------------------

TRACEBACK_TEXT = "Traceback (most recent call last)"
DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")  # ASCII digits only: that is what an id is
ID_LITERAL = re.compile(r"[\"'](?P<id>[0-9]{12})[\"']")
TESTS = Path(__file__).resolve().parent
SUSPICIOUS_LINES_MAX = 10_000  # lines kept for the end-of-session check (a clean suite keeps a handful)
SERVICE_LOGGERS = ("ansinh", "uvicorn")  # every record of these counts, at any level
TEST_CLIENT_LOGGERS = ("httpx",)  # the tests' own HTTP client logging the URLs it calls; the service never uses it


def _of(record: logging.LogRecord, names: tuple[str, ...]) -> bool:
    return any(record.name == name or record.name.startswith(name + ".") for name in names)


def checked_line(record: logging.LogRecord) -> str | None:
    """What the end-of-session check reads of a record, or None when it is none of the check's business.

    The service's and uvicorn's records count whole, at any level. Another library's record counts
    whole from WARNING up; below that only its message counts (a library's own diagnostics may carry
    a traceback at INFO, e.g. dask's "Batched Comm Closed" at a cluster's shutdown, which is no error
    of ours, but a raw id in its message would still be a leak). The tests' HTTP client logging the
    URLs it calls (httpx: attack tests put ids in URLs on purpose) is not the service's log.
    """
    if _of(record, TEST_CLIENT_LOGGERS):
        return None
    if _of(record, SERVICE_LOGGERS) or record.levelno >= logging.WARNING:
        return log_line(record)
    return record.getMessage()


def log_line(record: logging.LogRecord) -> str:
    """The record as it would be written: ansinh's loggers through the service's own JSON formatter (the
    format `ansinh serve` writes, ids masked), every other logger raw, with its exception and stack."""
    from api.observability import JsonFormatter

    if record.name == "ansinh" or record.name.startswith("ansinh."):
        return JsonFormatter().format(record)
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


def redacted(national_id: str) -> str:
    """How a failure names an id it found: a digest, never the number."""
    return "id#" + hashlib.sha256(national_id.encode()).hexdigest()[:8]


def log_problems(lines: Iterable[str], test_ids: set[str] | frozenset[str]) -> list[str]:
    """Every traceback and every raw test national id in `lines`, each named without the id itself."""
    problems = []
    for line in lines:
        if TRACEBACK_TEXT in line:
            head = line.split(TRACEBACK_TEXT, 1)[0].strip()[-150:]
            problems.append(f"a Python traceback in a log line (after {head!r})")
        for run in DIGIT_RUN.findall(line):
            if run in test_ids:
                problems.append(f"a raw national id made up by the tests ({redacted(run)}) in a log line: "
                                f"{DIGIT_RUN.sub('<12 digits>', line)[:200]!r}")
    return problems


def national_id_literals(texts: Iterable[str]) -> set[str]:
    """Rule-valid national ids written as string literals (the factories' and the tests' own)."""
    from ledger.identity import is_valid_national_id

    return {match["id"] for text in texts for match in ID_LITERAL.finditer(text)
            if is_valid_national_id(match["id"], 2099)}


class SuiteLogs:
    """What every handled log record of this process looked like, kept only when it may be a problem.

    Installed by wrapping `logging.Logger.handle`, which every logger (root included) calls for every
    record it emits after its level and filters: handlers replaced by `configure_logging` or
    `propagate = False` (ansinh's and uvicorn's loggers) cannot hide a record from it.
    """

    def __init__(self) -> None:
        self.records = 0
        self.suspicious: list[str] = []
        self.dropped = 0
        self.generated_ids: set[str] = set()  # made up by simulations.synthetic_events during the session
        self._lock = threading.Lock()
        self._originals: list[tuple[object, str, object]] = []

    def observe(self, record: logging.LogRecord) -> None:
        line = checked_line(record)
        with self._lock:
            self.records += 1
            if line is not None and (TRACEBACK_TEXT in line or DIGIT_RUN.search(line)):
                if len(self.suspicious) < SUSPICIOUS_LINES_MAX:
                    self.suspicious.append(line)
                else:
                    self.dropped += 1

    def install(self) -> None:
        import simulations.synthetic_events as synthetic

        original_handle = logging.Logger.handle
        original_compose = synthetic._compose_national_ids
        capture = self

        def handle(logger: logging.Logger, record: logging.LogRecord) -> None:
            try:
                if not logger.disabled:  # what Logger.handle itself would drop is never written
                    capture.observe(record)
            except Exception as error:  # noqa: BLE001 - a record that cannot be formatted is itself a finding
                with capture._lock:
                    capture.suspicious.append(f"{TRACEBACK_TEXT}: the log record of {record.name!r} "
                                              f"cannot be formatted ({type(error).__name__})")
            original_handle(logger, record)

        def compose(*args, **kwargs):
            ids = original_compose(*args, **kwargs)
            capture.generated_ids.update(ids)
            return ids

        self._originals = [(logging.Logger, "handle", original_handle),
                           (synthetic, "_compose_national_ids", original_compose)]
        logging.Logger.handle = handle  # type: ignore[method-assign]
        synthetic._compose_national_ids = compose

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals = []

    def test_ids(self) -> set[str]:
        """Every national id the tests made up: literals in tests/, the shared vectors', the generated ones."""
        texts = [path.read_text(encoding="utf-8") for path in TESTS.rglob("*.py")]
        vectors = SHARED / "spec" / "vectors"
        if vectors.exists():
            texts += [path.read_text(encoding="utf-8") for path in vectors.glob("*.ndjson")]
        return national_id_literals(texts) | self.generated_ids

    def problems(self) -> list[str]:
        found = log_problems(self.suspicious, self.test_ids())
        if self.dropped:
            found.append(f"{self.dropped} more suspicious log lines were not kept (limit {SUSPICIOUS_LINES_MAX:,})")
        return found


@pytest.fixture(scope="session", autouse=True)
def suite_logs():
    """Every log record of the session; at the end, none may carry a traceback or a raw test national id.

    The service's and uvicorn's loggers are opened to DEBUG so their every record is made (and seen);
    `configure_logging` may set ansinh's back to INFO, as `ansinh serve` runs.
    """
    capture = SuiteLogs()
    levels = {name: logging.getLogger(name).level for name in ("ansinh", "uvicorn")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    capture.install()
    try:
        yield capture
    finally:
        capture.uninstall()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    problems = capture.problems()
    assert not problems, (f"{len(problems)} problems in the {capture.records:,} log records of this session:\n"
                          + "\n".join(problems[:50]))

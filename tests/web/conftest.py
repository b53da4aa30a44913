"""A real `ansinh serve` over the public vectors, and Debian's Chromium driven by Playwright.

The vectors' steps (`/work/shared/spec/vectors/steps.txt`: tiers import, ingest, close)
run once per test process through the CLI into a SQLite file; each test gets its own
copy of that file and its own server on a free localhost port, so tests run in any
order and in parallel. Chromium is launched by its path (`/usr/bin/chromium`, from
`apt-get install chromium`); nothing is downloaded at run time. Without it the tests
skip loudly — except under CI=true, where a missing browser is a failure.
"""
from __future__ import annotations

import secrets
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("ANSINH_TEST_CHROMIUM", "/usr/bin/chromium"))
VECTORS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "vectors"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ANSINH = [sys.executable, "-m", "api.cli"]
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
SERVER_START_SECONDS_MAX = 30
# Flags for a root, headless, offline machine: no sandbox (root), and no background calls
# to Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _missing_browser_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="session")
def chromium_browser():
    reason = _missing_browser_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}")
        pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def cli(env: dict, *args: str) -> str:
    done = subprocess.run([*ANSINH, *args], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"ansinh {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def environment(database: Path) -> dict[str, str]:
    return {**os.environ, "ANSINH_SECRET": SECRET, "ANSINH_DATABASE_URL": f"sqlite:///{database}",
            "ANSINH_DEMO": "1", "ANSINH_PACK": "vn-pilot"}


@pytest.fixture(scope="session")
def vectors_database(tmp_path_factory) -> Path:
    """The public vectors booked by the `ansinh` commands, step by step as steps.txt says.

    The commands run in this process (typer's runner: the same command functions as the
    shell, without paying the interpreter's start-up eight times).
    """
    from typer.testing import CliRunner

    from api.cli import app

    if not (VECTORS / "steps.txt").exists():
        pytest.skip(f"SKIPPING THE BROWSER TESTS: the public vectors {VECTORS} are not beside the project")
    database = tmp_path_factory.mktemp("vectors") / "ansinh.db"
    env = environment(database)
    runner = CliRunner()
    for line in (VECTORS / "steps.txt").read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "tiers":
            args = ["tiers", "import", str(VECTORS / words[2])]
        elif words[0] == "ingest":
            args = ["ingest", str(VECTORS / words[1])]
        elif words[0] == "close":
            args = ["close", words[1]]
        else:
            raise AssertionError(f"unknown step in steps.txt: {line!r}")
        result = runner.invoke(app, args, env={key: env[key] for key in ("ANSINH_SECRET", "ANSINH_DATABASE_URL",
                                                                          "ANSINH_DEMO", "ANSINH_PACK")})
        assert result.exit_code == 0, f"ansinh {' '.join(args)}: {result.output}"
    return database


def vector_national_ids() -> set[str]:
    return {json.loads(line)["national_id"] for line in (VECTORS / "statements.ndjson").read_text().splitlines()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    def __init__(self, base: str, database: Path, env: dict[str, str]) -> None:
        self.base, self.database, self.env = base, database, env

    def cli(self, *args: str) -> str:
        return cli(self.env, *args)


@contextmanager
def serve_copy(vectors_database: Path, folder: Path):
    """`ansinh serve` on a free port over a private copy of the vectors' books."""
    database = folder / "ansinh.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{vectors_database}{suffix}")
        if source.exists():
            shutil.copy(source, f"{database}{suffix}")
    env = environment(database)
    port = _free_port()
    server = subprocess.Popen([*ANSINH, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS_MAX
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()  # before reading its stderr: a live server never closes it
                raise AssertionError(f"ansinh serve did not start: {server.communicate()[1].decode()[-2000:]}")
            time.sleep(0.1)
        yield Served(base, database, env)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        logs = server.stderr.read().decode()
        server.stderr.close()
        # The server's log lines never carry a raw national id of the vectors (api/observability.py masks them).
        leaked = sorted(national_id for national_id in vector_national_ids() if national_id in logs)
        assert not leaked, f"raw national ids in the server's log: {[i[:3] + '…' for i in leaked]}"


@pytest.fixture
def served(vectors_database, tmp_path):
    """A server of the test's own: for tests that change the books (close a month, import, keys)."""
    with serve_copy(vectors_database, tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def served_readonly(vectors_database, tmp_path_factory):
    """One server shared by the tests that only read (each test process has its own)."""
    with serve_copy(vectors_database, tmp_path_factory.mktemp("readonly")) as server:
        yield server


@pytest.fixture
def browser_context(chromium_browser):
    """A fresh browser profile per test (own cookies); axe-core injection needs CSP bypassed."""
    contexts = []

    def make(width: int = 1280, height: int = 900, **options):
        context = chromium_browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True,
                                               accept_downloads=True, **options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

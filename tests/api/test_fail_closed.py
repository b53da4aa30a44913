"""Issue 14, "Fail closed": demo only when asked, strong and separate keys, no file a caller
names, request ids that cannot carry a citizen id. Each test names the finding it pins."""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from api.app import build_services, create_app
from api.keys import PlatformKeys, derive_secret
from api.settings import Settings, SettingsError
from api.tokens import TokenVerifier, demo_key, mint_demo_token
from ledger.identity import KEY_LABELS, derive_key
from ledger.master_secret import PUBLIC_SECRETS, estimated_bits, secret_problem
from ledger.store import StoreError, load_secret
from tests.conftest import FixedClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
ANSINH = [sys.executable, "-m", "api.cli"]
STRONG = secrets.token_hex(32)
PRODUCTION = {"oidc_issuer": "https://id.example", "oidc_jwks_url": "https://id.example/jwks"}
SERVER_URL = "postgresql+psycopg://127.0.0.1:5432/never-opened"
#: Settings a test must not inherit from the developer's shell or from another test.
SETTINGS_VARIABLES = ("ANSINH_MODE", "ANSINH_DEMO", "ANSINH_DEMO_ON_SERVER_DATABASE", "ANSINH_SECRET",
                      "ANSINH_SECRET_FILE", "ANSINH_DATABASE_URL", "ANSINH_OIDC_ISSUER", "ANSINH_OIDC_JWKS_URL")


def clean_environment(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    return {**env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200", **values}


def run_ansinh(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([*ANSINH, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`ansinh {' '.join(args)}` was still running after {timeout} s: it started instead of refusing")


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def settings_environment(monkeypatch):
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# Finding 2: demo mode was the default and failed open.

def test_finding_2_serve_with_no_mode_a_postgresql_url_and_a_real_secret_refuses_to_start_in_one_line():
    result = run_ansinh(clean_environment(ANSINH_DATABASE_URL=SERVER_URL, ANSINH_SECRET=STRONG),
                        "serve", "--port", "1")
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "production mode (the default) cannot start" in lines[0]
    assert "ANSINH_OIDC_ISSUER" in lines[0] and "ANSINH_SECRET" not in lines[0]


def test_finding_2_default_settings_are_production_and_demo_is_only_what_is_asked_for(settings_environment):
    assert Settings().mode == "production"
    settings_environment.setenv("ANSINH_DEMO", "1")
    assert Settings().mode == "demo"
    assert Settings(demo=False, mode="demo").mode == "demo"


def test_finding_2_demo_on_a_server_database_is_refused_unless_that_is_asked_for_too(settings_environment):
    with pytest.raises(SettingsError, match="demo mode is refused on a server database"):
        Settings(demo=True, database_url=SERVER_URL, secret=STRONG).check()
    assert Settings(demo=True, demo_on_server_database=True, database_url=SERVER_URL, secret=STRONG).check().mode == "demo"
    result = run_ansinh(clean_environment(ANSINH_DATABASE_URL=SERVER_URL, ANSINH_SECRET=STRONG),
                        "serve", "--demo", "--port", "1")
    assert result.returncode == 1 and len(error_lines(result)) == 1
    assert "--demo-on-server-database" in result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_finding_2_an_anonymous_sign_in_as_admin_mints_nothing_on_a_service_with_default_settings(
        database_url, settings_environment):
    services = build_services(Settings(database_url=database_url, secret=STRONG, **PRODUCTION), clock=FixedClock())
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        response = client.post("/signin", data={"how": "staff", "role": "admin"}, follow_redirects=False)
        assert response.status_code == 403
        assert "ansinh_session" not in response.cookies
        assert "x-ansinh-mode" not in response.headers and 'id="demo-banner"' not in response.text
        assert client.post("/v1/platforms/grab/keys").status_code == 401
    assert services.keys.list() == []


def test_a_demo_service_marks_every_response_with_a_header_and_every_page_with_a_banner(caller):
    for path in ("/health", "/signin", "/v1/workers/me/statement?month=2026-01", "/no-such-page"):
        assert caller.client.get(path).headers["x-ansinh-mode"] == "demo", path
    page = caller.client.get("/signin")
    assert 'id="demo-banner"' in page.text and "CHẾ ĐỘ THỬ NGHIỆM" in page.text


# Finding 3: POST /v1/simulations opened any server path given as `baseline`.

def test_finding_3_a_simulation_naming_a_server_file_as_baseline_is_refused_without_quoting_it(caller, tmp_path):
    server_file = tmp_path / "private.yaml"
    server_file.write_text("canary-line-7f3a: [not yaml at all\nsecond-canary-line: 1\n")
    scenario = {"name": "probe", "baseline": str(server_file), "start": "2026-01", "horizon_months": 1,
                "population": {"synthetic": {"workers": 10}}}
    response = caller.client.post("/v1/simulations", json=scenario, headers=caller.bearer("policy"))
    assert response.status_code == 422
    assert "canary" not in response.text
    problem = response.json()
    assert {"key": "baseline", "reason": problem["errors"][0]["reason"]} in problem["errors"]
    assert "registered rules pack" in problem["errors"][0]["reason"]


def test_finding_3_the_refusal_happens_before_any_file_is_opened(caller, monkeypatch):
    import rules.loader

    opened = []
    monkeypatch.setattr(rules.loader, "pack_path", lambda name: opened.append(name) or (_ for _ in ()).throw(
        AssertionError("the service opened a pack path")))
    scenario = {"name": "probe", "baseline": "/etc/ssl/openssl.cnf", "start": "2026-01", "horizon_months": 1,
                "population": {"synthetic": {"workers": 10}}}
    response = caller.client.post("/v1/simulations", json=scenario, headers=caller.bearer("policy"))
    assert response.status_code == 422 and opened == []


# Finding 5: weak and published secrets started production; one secret keyed everything.

@pytest.mark.parametrize("weak", ["a" * 32, "s" * 40, "0123456789abcdef" * 4, "c2156e43c69c523a978db360",
                                  *sorted(PUBLIC_SECRETS)])
def test_finding_5_production_refuses_a_weak_or_published_secret(weak, settings_environment):
    with pytest.raises(SettingsError, match="ANSINH_SECRET"):
        Settings(secret=weak, database_url=SERVER_URL, **PRODUCTION).check()


def test_finding_5_random_secrets_of_32_bytes_pass_the_entropy_estimate(settings_environment):
    for _ in range(200):
        for strong in (secrets.token_hex(32), secrets.token_urlsafe(32)):
            assert secret_problem(strong) is None, estimated_bits(strong)
            assert Settings(secret=strong, database_url=SERVER_URL, **PRODUCTION).check().mode == "production"
    assert estimated_bits("a" * 32) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_finding_5_cli_commands_on_postgresql_refuse_a_weak_secret_in_one_line(database_url):
    result = run_ansinh(clean_environment(ANSINH_DATABASE_URL=database_url, ANSINH_SECRET="a" * 32),
                        "platforms", "list")
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and "bits of estimated entropy" in lines[0], lines
    assert "a" * 32 not in result.stderr


SECRET_LITERALS = [
    re.compile(r"""(?i)secret\w*["']?\s*[=:,]\s*["']([^"'\n]{0,200})["']"""),  # SECRET = "…", "ANSINH_SECRET": "…"
    re.compile(r"""ANSINH_SECRET=([^\s"'`$)]+)"""),  # shell and docs: ANSINH_SECRET=…
]


def committed_secret_literals() -> dict[str, str]:
    """Every secret-looking literal in the repository's committed text files -> where it is."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found: dict[str, str] = {}
    for name in files:
        if not name.endswith((".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".txt", ".cfg", ".ini", ".html")) \
                and not name.startswith(".ci/"):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in SECRET_LITERALS:
            for match in pattern.finditer(text):
                value = match.group(1)
                if value in ("…", "...") or value.startswith(("{", "<")) or re.search(r"\s", value):
                    continue
                found.setdefault(value, name)
    return found


def test_finding_5_every_secret_literal_committed_in_the_repository_is_refused():
    literals = committed_secret_literals()
    assert len(literals) >= 3, "the scan found almost nothing: the patterns no longer match the repository"
    accepted = {value: where for value, where in literals.items() if secret_problem(value) is None}
    assert accepted == {}, "secrets committed to the repository would start production: add them to " \
                           "ledger.master_secret.PUBLIC_SECRETS"


def test_finding_5_each_purpose_has_its_own_key_and_keys_issued_before_keep_working(ledger):
    keys = {key_id: derive_key(STRONG, key_id) for key_id in KEY_LABELS}
    assert {"pseudonym/v1", "encryption/v1", "token/v1", "platform-key/v2"} <= set(keys)
    assert len(set(keys.values())) == len(keys)  # no two purposes share a key
    # Version 1 derivations are exactly those of the previous release: tokens and pk_ keys stay valid.
    assert demo_key(STRONG) == hmac.new(STRONG.encode(), b"ansinh demo token key", hashlib.sha256).digest()
    old_id = "pk_0123456789abcdef"
    assert derive_secret(STRONG, old_id) == base64.urlsafe_b64encode(hmac.new(
        STRONG.encode(), b"ansinh platform key\0" + old_id.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    issued = PlatformKeys(ledger, STRONG).add("grab")
    assert issued.key_id.startswith("pk2_")
    assert issued.secret == base64.urlsafe_b64encode(hmac.new(
        keys["platform-key/v2"], issued.key_id.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    # Switching the token key (token/v2) retires every token signed under token/v1.
    verifier = TokenVerifier(server_secret=STRONG, audience="ansinh", token_key_id="token/v2")
    from datetime import timedelta

    now = ledger.clock()
    assert verifier.principal(mint_demo_token(STRONG, "admin", "x", now, timedelta(minutes=5), key_id="token/v2"),
                              now).role == "admin"
    with pytest.raises(Exception, match="not valid"):
        verifier.principal(mint_demo_token(STRONG, "admin", "x", now, timedelta(minutes=5)), now)


def test_the_master_secret_is_read_from_a_file_and_setting_both_is_refused(tmp_path, settings_environment):
    secret_file = tmp_path / "master.secret"
    secret_file.write_text(STRONG + "\n")
    secret_file.chmod(0o600)
    settings_environment.setenv("ANSINH_SECRET_FILE", str(secret_file))
    assert load_secret(SERVER_URL) == STRONG
    assert Settings(database_url=SERVER_URL, **PRODUCTION).check().master_secret() == STRONG
    settings_environment.setenv("ANSINH_SECRET", STRONG)
    with pytest.raises(StoreError, match="keep one"):
        load_secret(SERVER_URL)
    settings_environment.delenv("ANSINH_SECRET")
    secret_file.write_text("a" * 32)
    with pytest.raises(StoreError, match="bits of estimated entropy"):
        load_secret(SERVER_URL)


def test_the_cli_reads_the_master_secret_from_secret_file(tmp_path):
    secret_file = tmp_path / "master.secret"
    secret_file.write_text(STRONG + "\n")
    database = f"sqlite:///{tmp_path / 'books.db'}"
    result = run_ansinh(clean_environment(), "--secret-file", str(secret_file), "token", "staff", "--role",
                        "insurer", "--db", database)
    assert result.returncode == 0, result.stderr
    verifier = TokenVerifier(server_secret=STRONG, audience="ansinh")
    from datetime import datetime, timezone

    assert verifier.principal(result.stdout.strip(), datetime.now(timezone.utc)).role == "insurer"


# Finding 8 (part): X-Request-ID: 079203001234 was logged unmasked.

def test_a_fresh_request_id_never_holds_a_twelve_digit_run_the_log_masker_would_star(monkeypatch):
    import uuid

    from api import observability

    drawn = iter([uuid.UUID("1fa65204-709f-4278-8898-2456d584d1f0"),   # 427888982456: 12 digits
                  uuid.UUID("2e52bf92-2d9a-4fd0-b6b8-69df1827a80e")])
    monkeypatch.setattr(observability.uuid, "uuid4", lambda: next(drawn))
    fresh = observability.accepted_request_id(None)
    assert fresh == "2e52bf922d9a4fd0b6b869df1827a80e"
    assert observability.mask_ids(fresh) == fresh

def test_finding_8_a_request_id_holding_a_citizen_id_is_neither_logged_nor_echoed(caller):
    from api.observability import JsonFormatter

    citizen_id = f"079{secrets.randbelow(10 ** 9):09d}"  # made up here, never committed
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ansinh")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        offered = {"X-Request-ID": citizen_id}
        echoed = caller.client.get("/health", headers=offered).headers["x-request-id"]
        kept = caller.client.get("/health", headers={"X-Request-ID": "trace-7.a_b"}).headers["x-request-id"]
        hostile = caller.client.get("/health", headers={"X-Request-ID": "x" * 65}).headers["x-request-id"]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert citizen_id not in echoed and re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert kept == "trace-7.a_b"
    assert re.fullmatch(r"[0-9a-f]{32}", hostile)
    assert citizen_id not in sink.getvalue() and citizen_id[3:9] not in sink.getvalue()
    assert echoed in sink.getvalue()

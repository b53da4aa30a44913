"""The real server: `ansinh serve` under uvicorn on a free localhost port, PostgreSQL behind it.

A generated month goes through HTTP (signed batches per platform, household import,
close, settlement, statements) and every figure equals what the CLI computes from the
same events on a fresh SQLite ledger.
"""
from __future__ import annotations

import secrets
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
import pytest

from api.signing import signed_headers
from simulations.synthetic_events import generate_events, household_tiers, workers_for_seed, write_ndjson, \
    write_tiers_csv

ANSINH = [sys.executable, "-m", "api.cli"]
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run([*ANSINH, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_month_served_over_http_on_postgresql_equals_the_cli_on_sqlite(database_url, tmp_path):
    items = list(generate_events(seed=7, month="2026-03", workers=150, events=2_500))
    by_platform: dict[str, list] = defaultdict(list)
    for item in items:
        name = item.get("platform") if isinstance(item, dict) else None
        if isinstance(name, str) and name.isidentifier():
            by_platform[name].append(item)
    kept = [item for batch in by_platform.values() for item in batch]
    events_file = tmp_path / "events.ndjson"
    write_ndjson(events_file, kept)
    tiers_file = tmp_path / "tiers.csv"
    write_tiers_csv(tiers_file, household_tiers(workers_for_seed(7, 150), np.random.default_rng(8), valid_from="2026-03"))

    env = {**os.environ, "ANSINH_SECRET": SECRET, "ANSINH_DATABASE_URL": database_url, "ANSINH_DEMO": "1",
           "ANSINH_DEMO_ON_SERVER_DATABASE": "1"}  # demo asked for, on a throwaway database
    keys = {name: json.loads(_cli(env, "platforms", "add", name)) for name in by_platform}
    admin = {"Authorization": "Bearer " + _cli(env, "token", "staff", "--role", "admin").strip()}
    insurer = {"Authorization": "Bearer " + _cli(env, "token", "staff", "--role", "insurer").strip()}
    port = _free_port()
    server = subprocess.Popen([*ANSINH, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded CI machine may take a while to import and start
        while True:
            try:
                if _call(base + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()  # before reading its stderr: a live server never closes it
                pytest.fail("the server did not come up: " + server.communicate()[1].decode()[-2000:])
            time.sleep(0.1)
        http_outcomes = []
        for name, batch in by_platform.items():
            for start in range(0, len(batch), 1_000):
                body = orjson.dumps(batch[start:start + 1_000])
                headers = signed_headers(keys[name]["key_id"], keys[name]["secret"], "POST", "/v1/events", body,
                                         time.time())
                status, answer = _call(base + "/v1/events", "POST", body,
                                       {**headers, "Content-Type": "application/json"})
                assert status == 200, answer
                http_outcomes += [item["outcome"] for item in orjson.loads(answer)["outcomes"]]
        status, answer = _call(base + "/v1/households:import", "POST", tiers_file.read_bytes(),
                               {**admin, "Content-Type": "text/csv"})
        assert status == 200, answer
        status, answer = _call(base + "/v1/months/2026-03/close", "POST", b"", insurer)
        assert status == 200, answer
        status, answer = _call(base + "/v1/months/2026-03/settlement", headers=insurer)
        served = orjson.loads(answer)
    finally:
        server.terminate()
        server.wait(timeout=30)

    local = {**os.environ, "ANSINH_SECRET": SECRET, "ANSINH_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    outcomes_file = tmp_path / "outcomes.ndjson"
    _cli(local, "ingest", str(events_file), "--outcomes", str(outcomes_file))
    _cli(local, "tiers", "import", str(tiers_file))
    _cli(local, "close", "2026-03")
    expected = json.loads(_cli(local, "settlement", "2026-03", "--json"))
    cli_outcomes = [json.loads(line)["outcome"] for line in outcomes_file.read_text().splitlines()]

    assert http_outcomes == cli_outcomes
    assert http_outcomes.count("accepted") > 2_000
    assert (served["platforms"], served["subsidy"], served["control_total_vnd"]) == (
        expected["platforms"], expected["subsidy"], expected["control_total_vnd"])
    assert served["status"] == "final"

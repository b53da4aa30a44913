"""Fixtures for the stream tests: the real NATS server, and a stream of one's own per test.

The tests talk to NATS with JetStream on 127.0.0.1:4222 (ANSINH_TEST_NATS to change
it). If it is down, the fixture tries to start it the way the machine does
(`nats-server -js`); if that fails the test is skipped with a loud reason — except
under CI=true, where a missing NATS is a failure. Every test gets uniquely named
subjects, stream and durable, and deletes its stream afterwards.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest

NATS_URL = os.environ.get("ANSINH_TEST_NATS", "nats://127.0.0.1:4222")
_state: dict[str, object] = {}


def _reachable(timeout: float = 1.0) -> bool:
    host, port = NATS_URL.rsplit("//", 1)[-1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
        return True
    except OSError:
        return False


def nats_unavailable() -> str | None:
    """None when NATS answers (starting it if need be); else why not."""
    if "reason" in _state:
        return _state["reason"]  # type: ignore[return-value]
    reason = None
    if not _reachable():
        binary = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server")
                                                 else None)
        if binary is None:
            reason = f"NATS is not reachable at {NATS_URL} and no nats-server binary was found to start"
        else:
            subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", binary, "--",
                            "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server",
                            "-l", "/var/log/nats-server.log"], check=False, capture_output=True, timeout=30)
            for _ in range(50):
                if _reachable():
                    break
                time.sleep(0.1)
            else:
                reason = f"NATS is not reachable at {NATS_URL}, and starting {binary} -js did not help"
    if reason is None:
        reason = asyncio.run(_jetstream_problem())
    _state["reason"] = reason
    return reason


async def _jetstream_problem() -> str | None:
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
    except Exception as error:  # noqa: BLE001 - any failure means "not usable"
        return f"cannot connect to NATS at {NATS_URL}: {error}"
    try:
        await nc.jetstream().account_info()
    except Exception as error:  # noqa: BLE001
        return f"NATS at {NATS_URL} has no JetStream (start it with -js): {error}"
    finally:
        await nc.close()
    return None


@pytest.fixture(scope="session")
def nats_url() -> str:
    reason = nats_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the stream suite against a real NATS: {reason}")
        pytest.skip(f"SKIPPING NATS STREAM TESTS: {reason}")
    return NATS_URL


@dataclass(frozen=True)
class Names:
    """Subjects, stream and durable of one test, unique so tests run in parallel."""

    tag: str

    @property
    def stream(self) -> str:
        return f"T_{self.tag}"

    @property
    def prefix(self) -> str:
        return f"ev{self.tag}"

    @property
    def subject(self) -> str:
        return f"{self.prefix}.>"

    @property
    def outcome_prefix(self) -> str:
        return f"out{self.tag}"

    @property
    def dead_letter_subject(self) -> str:
        return f"dl{self.tag}"

    def settings(self, nats_url: str, **overrides):
        from api.stream import StreamSettings

        values = dict(nats_url=nats_url, stream=self.stream, subject=self.subject, durable="ledger",
                      outcome_prefix=self.outcome_prefix, dead_letter_subject=self.dead_letter_subject,
                      batch_size_max=50, fetch_timeout_seconds=0.2, ack_wait_seconds=2.0, max_age_seconds=3600)
        values.update(overrides)
        return StreamSettings(**values)

    def cli_arguments(self, nats_url: str) -> list[str]:
        return ["--nats", nats_url, "--stream", self.stream, "--subject", self.subject, "--durable", "ledger",
                "--outcome-prefix", self.outcome_prefix, "--dead-letter-subject", self.dead_letter_subject]


@pytest.fixture
def names(nats_url):
    chosen = Names(uuid.uuid4().hex[:10])
    yield chosen
    asyncio.run(_delete_stream(nats_url, chosen.stream))


async def _delete_stream(nats_url: str, stream: str) -> None:
    import nats
    import nats.js.errors

    nc = await nats.connect(nats_url, connect_timeout=3)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()

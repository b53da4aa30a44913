"""Crash trials: `ansinh consume` killed with SIGKILL at seeded random points, restarted each time.

Each trial publishes a seeded stream (duplicates, refunds, rejections, malformed
messages), then starts the consumer as a real process several times and kills it —
either from outside after a random delay, or from inside at a named point of a
batch (`ANSINH_STREAM_FAULT`: after the fetch, inside the transaction before the
commit, after the commit, after the outcomes, halfway through the acks). A last
consumer drains the stream. The books must then equal direct ingest of the same
messages exactly, every message must have had its reference outcome published,
and `verify` must pass.

Three trials run by default; `pytest -m slow` runs fifty more.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import sys

import pytest

from api.stream_cli import FAULT_ENVIRONMENT
from ledger.books import Ledger
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.stream.streamdata import Listener, books, publish, reference, stream_messages

POINTS = ("after_fetch", "before_commit", "after_commit", "after_publish", "mid_ack")
KILLED = -signal.SIGKILL


async def _consumer(names, nats_url: str, database_url: str, batch: int, fault: str | None):
    environment = dict(os.environ)
    environment.pop(FAULT_ENVIRONMENT, None)
    if fault:
        environment[FAULT_ENVIRONMENT] = fault
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.stream_cli", "consume", *names.cli_arguments(nats_url), "--db", database_url,
        "--pack", "vn-pilot", "--batch", str(batch), "--ack-wait", "1", "--fetch-timeout", "0.2", "--until-idle",
        "--log-level", "WARNING", env=environment, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


async def _trial(seed: int, names, nats_url: str, database_url: str, kills: int) -> tuple[list[int], object]:
    rng = random.Random(seed)
    messages = stream_messages(seed=seed, count=rng.randint(150, 300))
    await publish(nats_url, names, messages)
    batch = rng.choice((3, 7, 16, 40))
    exits = []
    async with Listener(nats_url, names) as heard:
        for _ in range(kills):
            fault = f"{rng.choice(POINTS)}:{rng.randint(1, 5)}" if rng.random() < 0.6 else None
            delay = None if fault else rng.uniform(0.4, 2.0)  # the interpreter takes ~0.6 s to start
            process = await _consumer(names, nats_url, database_url, batch, fault)
            if delay is not None:
                try:
                    await asyncio.wait_for(process.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), timeout=60)
            exits.append(process.returncode)
        final = await _consumer(names, nats_url, database_url, batch, None)
        _out, errors = await asyncio.wait_for(final.communicate(), timeout=120)
        assert final.returncode == 0, errors.decode()[-2000:]
    return exits, (messages, heard)


def _run_trial(seed: int, names, nats_url: str, database_url: str, tmp_path, kills: int = 4) -> None:
    exits, (messages, heard) = asyncio.run(_trial(seed, names, nats_url, database_url, kills))
    expected_books, expected_outcomes = reference(messages, f"sqlite:///{tmp_path / 'reference.db'}")
    ledger = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    try:
        assert books(ledger) == expected_books
        assert [check.problem for check in verify(ledger) if check.problem] == []
    finally:
        ledger.close()
    assert KILLED in exits, f"no consumer of trial {seed} was killed: exits {exits}"
    assert heard.last() == expected_outcomes  # every message answered, with the outcome of direct ingest
    for seq, answers in heard.outcomes.items():  # a redelivery repeats the first answer, never another one
        assert {answer["outcome"] for answer in answers} == {expected_outcomes[seq]}


@pytest.mark.parametrize(("database_url", "seed"), [("sqlite", 1), ("postgresql", 2), ("sqlite", 3)],
                         indirect=["database_url"])
def test_a_consumer_killed_at_random_points_and_restarted_leaves_the_reference_books(database_url, seed, names,
                                                                                     nats_url, tmp_path):
    _run_trial(seed, names, nats_url, database_url, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("database_url", "seed"),
                         [("sqlite" if seed % 2 else "postgresql", seed) for seed in range(100, 150)],
                         indirect=["database_url"])
def test_fifty_more_crash_trials_leave_the_reference_books(database_url, seed, names, nats_url, tmp_path):
    _run_trial(seed, names, nats_url, database_url, tmp_path, kills=6)

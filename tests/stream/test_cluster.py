"""A replicated stream survives a lost server (issue 14, item 10).

Three `nats-server` processes in one cluster on loopback ports; the events stream
has three replicas. While a platform publishes and `ansinh consume` (a real process,
given all three servers) books, the server leading the stream is killed with
SIGKILL, restarted, and then its successor as leader is killed and restarted too.
The consumer must carry on by itself; the stream must hold every message once (the
publisher retries an unacknowledged publish under the same `Nats-Msg-Id`, which
JetStream deduplicates); the books must equal direct ingest of the same messages
(the reference of tests/stream), and `verify` must pass.

The default suite runs one trial on SQLite (about 25 s); `-m slow` adds PostgreSQL.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import orjson
import pytest

from ledger.books import Ledger
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.stream.cluster import NatsCluster, nats_server_binary, quiet
from tests.stream.conftest import Names
from tests.stream.streamdata import books, reference, stream_messages

MESSAGES = 300


@pytest.fixture
def cluster(tmp_path):
    if nats_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the cluster trial: no nats-server binary")
        pytest.skip("SKIPPING NATS CLUSTER TRIAL: no nats-server binary")
    nodes = NatsCluster(tmp_path / "cluster")
    nodes.start_all()
    try:
        asyncio.run(nodes.wait_ready())
        yield nodes
    finally:
        nodes.stop_all()


async def _publish_through_failures(url: str, names: Names, messages, log: list[str],
                                   killed: list[asyncio.Event], rounds_done: list[asyncio.Event]) -> int:
    """One message at a time, each retried until acknowledged: what a careful platform does.

    The messages go out in len(rounds_done) + 1 parts. Halfway through part k the
    publisher waits until the k-th server is killed, and part k + 1 waits for it to be
    back: every loss lands mid-ingest, with messages still to publish and to book."""
    import nats
    import nats.errors
    import nats.js.errors

    from api.stream import nats_servers

    nc = await nats.connect(nats_servers(url), connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                            error_cb=quiet)
    js = nc.jetstream()
    retries = 0
    try:
        part = len(messages) // (len(rounds_done) + 1)
        for number, message in enumerate(messages, start=1):
            index, offset = divmod(number - 1, part)
            if offset == part // 2 and index < len(killed):
                await killed[index].wait()
            if offset == 0 and 0 < index <= len(rounds_done):
                await rounds_done[index - 1].wait()
            deadline = time.monotonic() + 30
            while True:
                try:
                    await js.publish(f"{names.prefix}.{message.platform}", message.data, timeout=1.0,
                                     headers={"Nats-Msg-Id": f"{names.tag}-{number}"})
                    break
                except (nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError) as error:
                    retries += 1
                    log.append(f"publish {number}: {type(error).__name__}")
                    assert time.monotonic() < deadline, f"message {number} never acknowledged: {log[-5:]}"
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.02)  # a platform's pace: the kills land mid-ingest
    finally:
        await nc.close()
    return retries


async def _lose_two_leaders(cluster: NatsCluster, stream: str, database_url: str, log: list[str],
                            killed: list[asyncio.Event], rounds_done: list[asyncio.Event]) -> list[tuple]:
    """Kill the stream's leader; once the two left have elected its successor, restart it; then the same to
    the successor. Returns (killed, successor, messages booked when it was killed) for each round."""
    rounds = []
    leader = await cluster.stream_leader(stream)
    for part, (kill, done) in enumerate(zip(killed, rounds_done)):
        booked = await _booked_at_least(database_url, part * MESSAGES // 3 + 30)  # the consumer is busy
        cluster.kill(leader)
        kill.set()
        log.append(f"killed {leader} at position {booked}")
        successor = await cluster.stream_leader(stream, other_than=leader)
        log.append(f"{successor} leads")
        cluster.start(leader)
        await cluster.wait_ready()
        log.append(f"restarted {leader}")
        rounds.append((leader, successor, booked))
        done.set()
        leader = successor
    return rounds


async def _booked_at_least(url: str, count: int, within_seconds: float = 30.0) -> int:
    deadline = time.monotonic() + within_seconds
    while (booked := await _position(url)) < count:
        assert time.monotonic() < deadline, f"the consumer booked {booked} messages, not {count}"
        await asyncio.sleep(0.05)
    return booked


_engines: dict = {}


async def _position(url: str) -> int:
    """The consumer's position in the books (a plain read: opening the books each time is slow)."""
    from sqlalchemy import create_engine, text

    engine = _engines.get(url) or _engines.setdefault(url, create_engine(url))
    with engine.connect() as conn:
        try:
            return int(conn.execute(text("SELECT max(last_seq) FROM stream_position")).scalar() or 0)
        except Exception:  # noqa: BLE001 - the consumer has not created the books yet
            return 0


async def _trial(cluster: NatsCluster, names: Names, database_url: str, messages) -> dict:
    from api.stream import connect_nats, ensure_stream

    settings = names.settings(cluster.url, replicas=3)
    nc = await connect_nats(cluster.url, "test-setup")
    try:
        await ensure_stream(nc.jetstream(), settings)
    finally:
        await nc.close()
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.stream_cli", "consume", *names.cli_arguments(cluster.url), "--replicas", "3",
        "--db", database_url, "--pack", "vn-pilot", "--batch", "16", "--ack-wait", "1", "--fetch-timeout", "0.2",
        "--log-level", "WARNING", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    log: list[str] = []
    killings, rounds_done = [asyncio.Event(), asyncio.Event()], [asyncio.Event(), asyncio.Event()]
    try:
        retries, killed = await asyncio.gather(
            _publish_through_failures(cluster.url, names, messages, log, killings, rounds_done),
            _lose_two_leaders(cluster, names.stream, database_url, log, killings, rounds_done))
        deadline = time.monotonic() + 40
        while await _position(database_url) < len(messages):
            assert consumer.returncode is None, f"the consumer died: {(await consumer.stderr.read())[-2000:]}"
            assert time.monotonic() < deadline, (f"booked through {await _position(database_url)} of "
                                                 f"{len(messages)}; {log[-10:]}")
            await asyncio.sleep(0.2)
        assert consumer.returncode is None, "the consumer stopped by itself"
        consumer.send_signal(signal.SIGTERM)
        out, errors = await asyncio.wait_for(consumer.communicate(), timeout=30)
        assert consumer.returncode == 0, errors.decode()[-2000:]
        stats = orjson.loads(out.splitlines()[-1])
    finally:
        if consumer.returncode is None:
            consumer.kill()
            await consumer.wait()
    nc = await connect_nats(cluster.url, "test-check")
    try:
        state = (await nc.jetstream().stream_info(names.stream)).state
    finally:
        await nc.close()
    return {"killed": killed, "retries": retries, "consumer": stats, "warnings": errors.decode().count("WARNING"),
            "stream_messages": int(state.messages),
            "stream_last_seq": int(state.last_seq), "log": log}


def _run(cluster, names, database_url, tmp_path, seed: int) -> None:
    messages = stream_messages(seed=seed, count=MESSAGES)
    result = asyncio.run(_trial(cluster, names, database_url, messages))
    (first, successor, booked_first), (second, _third, booked_second) = result["killed"]
    assert second == successor != first, result  # the leader, then its successor as leader
    assert 0 < booked_first < MESSAGES // 3 < booked_second < 2 * MESSAGES // 3, result  # both lost mid-ingest
    assert (result["stream_messages"], result["stream_last_seq"]) == (MESSAGES, MESSAGES), result  # none doubled
    expected_books, _outcomes = reference(messages, f"sqlite:///{tmp_path / 'reference.db'}")
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    ledger = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    try:
        assert books(ledger) == expected_books  # nothing lost, nothing booked twice
        assert [check.problem for check in verify(ledger) if check.problem] == []
    finally:
        ledger.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_consumer_carries_on_when_the_stream_leader_and_then_its_successor_are_killed(
        cluster, database_url, tmp_path):
    _run(cluster, Names("c" + os.urandom(4).hex()), database_url, tmp_path, seed=41)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_consumer_carries_on_through_lost_leaders_on_postgresql(cluster, database_url, tmp_path):
    _run(cluster, Names("c" + os.urandom(4).hex()), database_url, tmp_path, seed=43)

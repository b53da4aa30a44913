"""The JetStream consumer against the real NATS server, in-process, on SQLite and PostgreSQL.

Each test publishes on subjects of its own, consumes with `StreamConsumer` into a
fresh database and compares with direct ingest of the same messages.
"""
from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.stream import StreamConsumer, StreamSetupError, ensure_consumer, ensure_stream, stream_lag, stream_position
from ledger.books import Ledger
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.ledger.factories import event, refund
from tests.stream.streamdata import Listener, Message, books, consume_until_idle, publish, stream_messages, write_ndjson

runner = CliRunner()


class Crash(Exception):
    """Raised by a fault hook: the consumer stops dead where it stands (no ack, no answer)."""


def crash_at(point: str, times: int = 1):
    remaining = [times]

    def fault(reached: str) -> None:
        if reached == point:
            remaining[0] -= 1
            if remaining[0] == 0:
                raise Crash(point)

    return fault


def open_ledger(url: str) -> Ledger:
    return Ledger.open(url, pack="vn-pilot", clock=FixedClock())


def test_a_stream_with_duplicates_and_refunds_books_exactly_what_the_cli_books(database_url, names, nats_url,
                                                                               tmp_path):
    messages = stream_messages(seed=11, count=400)
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)

    async def consume():
        async with Listener(nats_url, names) as heard:
            stats = await consume_until_idle(ledger, names.settings(nats_url))
        return stats, heard

    stats, heard = asyncio.run(consume())
    streamed = books(ledger)
    checks = verify(ledger)
    ledger.close()

    reference_db = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, ["ingest", str(write_ndjson(messages, tmp_path / "same.ndjson")),
                                 "--outcomes", str(tmp_path / "out.ndjson"), "--db", reference_db])
    assert result.exit_code == 0, result.output
    cli_outcomes = {o["line"]: o["outcome"] for o in map(orjson.loads, (tmp_path / "out.ndjson").read_bytes().splitlines())}
    reference_ledger = open_ledger(reference_db)
    direct = books(reference_ledger)
    reference_ledger.close()


    assert streamed == direct
    assert heard.last() == cli_outcomes
    counts = Counter(cli_outcomes.values())
    assert {"accepted", "duplicate", "duplicate_conflict", "refund_exceeds_original", "unknown_original",
            "refund_mismatch", "malformed", "invalid_amount"} <= counts.keys()
    assert stats["booked"] == 400 and stats["position"] == 400 and stats["lag_messages"] == 0
    assert stats["outcome_accepted"] == counts["accepted"]
    assert [check.name for check in checks if check.problem] == []


def test_malformed_messages_reach_the_dead_letter_subject_with_their_reason(database_url, names, nats_url):
    messages = [Message("grab", b"{not json"), Message("grab", b"[1, 2]"), Message("be", orjson.dumps(event("ok-1"))
                                                                                   .replace(b'"grab"', b'"be"')),
                Message("be", b"17")]
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)

    async def consume():
        async with Listener(nats_url, names) as heard:
            await consume_until_idle(ledger, names.settings(nats_url))
        return heard

    heard = asyncio.run(consume())
    ledger.close()
    letters = {int(headers["Ansinh-Stream-Seq"]): (headers, data) for headers, data in heard.dead_letters}
    assert sorted(letters) == [1, 2, 4]
    assert letters[1][0]["Ansinh-Reason"].startswith("not JSON")
    assert letters[1][1] == b"{not json"
    assert letters[2][0]["Ansinh-Reason"] == "not a JSON object (a JSON list)"
    assert letters[4][0]["Ansinh-Reason"] == "not a JSON object (a JSON int)"
    assert letters[4][0]["Ansinh-Subject"] == f"{names.prefix}.be"
    assert heard.last() == {1: "malformed", 2: "malformed", 3: "accepted", 4: "malformed"}


def test_rejected_events_reach_the_outcome_subject_of_their_platform(database_url, names, nats_url):
    messages = [Message("grab", orjson.dumps(event("g-1"))),
                Message("grab", orjson.dumps(event("g-2", amount=0))),
                Message("grab", orjson.dumps(refund("g-3", "g-404", 1_000))),
                Message("shopee", orjson.dumps(event("s-1", platform="shopee", kind="order", currency="USD"))),
                Message("grab", orjson.dumps(event("g-1")))]
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)

    async def consume():
        async with Listener(nats_url, names) as heard:
            await consume_until_idle(ledger, names.settings(nats_url))
        return heard

    heard = asyncio.run(consume())
    ledger.close()
    assert heard.last() == {1: "accepted", 2: "invalid_amount", 3: "unknown_original", 4: "invalid_currency",
                            5: "duplicate"}
    assert heard.outcome_subjects[4] == f"{names.outcome_prefix}.shopee"
    assert heard.outcome_subjects[2] == f"{names.outcome_prefix}.grab"
    assert heard.outcomes[3] == [{"line": 3, "platform": "grab", "event_id": "g-3", "outcome": "unknown_original",
                                  "booked_month": None, "occurred_month": None,
                                  "reason": "Hoàn tiền không tìm thấy sự kiện gốc đã hoàn thành của cùng nền tảng."}]
    assert heard.outcomes[1][0]["booked_month"] == "2026-02"  # stream events default to February (factories)
    assert heard.dead_letters == []


def test_an_event_whose_platform_is_not_its_subjects_is_refused_and_dead_lettered(database_url, names, nats_url):
    messages = [Message("grab", orjson.dumps(event("be-1", platform="be"))),
                Message("grab", orjson.dumps(event("g-1")))]
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)

    async def consume():
        async with Listener(nats_url, names) as heard:
            await consume_until_idle(ledger, names.settings(nats_url))
        return heard

    heard = asyncio.run(consume())
    settlement = books(ledger)["2026-02"]["settlement"]
    ledger.close()
    assert heard.last() == {1: "platform_mismatch", 2: "accepted"}
    assert list(settlement["platforms"]) == ["grab"]
    [(headers, data)] = heard.dead_letters
    assert headers["Ansinh-Outcome"] == "platform_mismatch"
    assert "'be'" in headers["Ansinh-Reason"] and "'grab'" in headers["Ansinh-Reason"]
    assert b'"be-1"' in data


def test_a_message_booked_before_a_crash_gets_its_first_outcome_again_when_redelivered(database_url, names,
                                                                                        nats_url):
    """The crash window: committed, never acknowledged. Redelivery republishes `accepted`, books nothing."""
    messages = [Message("grab", orjson.dumps(event(f"g-{n}"))) for n in range(5)]
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)
    settings = names.settings(nats_url, ack_wait_seconds=1.0)

    async def crash_then_restart():
        async with Listener(nats_url, names) as heard:
            with pytest.raises(Crash):
                await consume_until_idle(ledger, settings, fault=crash_at("after_commit"))
            stats = await consume_until_idle(ledger, settings)
        return stats, heard

    stats, heard = asyncio.run(crash_then_restart())
    booked = books(ledger)["2026-02"]["settlement"]["platforms"]["grab"]
    ledger.close()
    assert stats["replayed"] == 5 and stats["booked"] == 0
    assert heard.last() == {n: "accepted" for n in range(1, 6)}
    assert booked == {"si": 5 * 1_000, "oa": 5 * 500, "ui": 5 * 500}


def test_a_refund_rejected_before_its_original_arrived_stays_rejected_when_redelivered(database_url, names,
                                                                                       nats_url):
    """Re-booking the redelivered refund would accept it now that its original is booked; the position prevents it."""
    messages = [Message("grab", orjson.dumps(refund("g-1r", "g-1", 40_000))),
                Message("grab", orjson.dumps(event("g-1")))]
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)
    settings = names.settings(nats_url, batch_size_max=1, ack_wait_seconds=1.0)

    async def crash_then_restart():
        async with Listener(nats_url, names) as heard:
            with pytest.raises(Crash):
                await consume_until_idle(ledger, settings, fault=crash_at("after_commit"))
            await consume_until_idle(ledger, settings)
        return heard

    heard = asyncio.run(crash_then_restart())
    grab = books(ledger)["2026-02"]["settlement"]["platforms"]["grab"]
    ledger.close()
    assert heard.last() == {1: "unknown_original", 2: "accepted"}
    assert grab == {"si": 1_000, "oa": 500, "ui": 500}  # the whole ride; no refund reversed


def test_a_crash_before_the_commit_books_nothing_and_moves_no_position(database_url, names, nats_url):
    messages = [Message("grab", orjson.dumps(event(f"g-{n}"))) for n in range(3)]
    asyncio.run(publish(nats_url, names, messages))
    ledger = open_ledger(database_url)
    settings = names.settings(nats_url, ack_wait_seconds=1.0)

    async def crash():
        with pytest.raises(Crash):
            await consume_until_idle(ledger, settings, fault=crash_at("before_commit"))
        from api.stream import stream_key_of
        import nats

        nc = await nats.connect(nats_url)
        key = stream_key_of(await nc.jetstream().stream_info(names.stream))
        await nc.close()
        return key

    key = asyncio.run(crash())
    assert stream_position(ledger, key) == 0
    assert books(ledger)["2026-02"]["settlement"]["platforms"] == {}
    stats = asyncio.run(consume_until_idle(ledger, settings))
    assert stats["outcome_accepted"] == 3 and stream_position(ledger, key) == 3
    assert books(ledger)["2026-02"]["settlement"]["platforms"]["grab"] == {"si": 3_000, "oa": 1_500, "ui": 1_500}
    ledger.close()


def test_lag_counts_the_messages_not_yet_delivered_and_is_zero_once_consumed(names, nats_url, tmp_path):
    asyncio.run(publish(nats_url, names, [Message("grab", orjson.dumps(event(f"g-{n}"))) for n in range(30)]))
    settings = names.settings(nats_url)

    async def durable_only():
        import nats

        nc = await nats.connect(nats_url)
        await ensure_consumer(nc.jetstream(), settings)
        await nc.close()

    asyncio.run(durable_only())
    before = asyncio.run(stream_lag(nats_url, names.stream, "ledger"))
    ledger = open_ledger(f"sqlite:///{tmp_path / 'lag.db'}")
    consumer = StreamConsumer(ledger, settings)

    async def run():
        try:
            return await consumer.run(until_idle=True)
        finally:
            await consumer.close()

    stats = asyncio.run(run())
    after = asyncio.run(stream_lag(nats_url, names.stream, "ledger"))
    ledger.close()
    assert before["undelivered_messages"] == 30 and before["stream_last_seq"] == 30
    assert after == {**after, "undelivered_messages": 0, "ack_pending_messages": 0, "acked_through_seq": 30}
    assert (stats["lag_messages"], stats["position"], stats["booked"]) == (0, 30, 30)
    metric = consumer.metrics.registry.get_sample_value("ansinh_stream_messages_total", {"outcome": "accepted"})
    assert metric == 30.0
    assert consumer.metrics.registry.get_sample_value("ansinh_stream_position") == 30.0


def test_the_consumer_creates_the_stream_with_the_chosen_retention_and_max_age(names, nats_url):
    settings = names.settings(nats_url, retention="workqueue", max_age_seconds=600.0)

    async def create():
        import nats

        nc = await nats.connect(nats_url)
        try:
            await ensure_stream(nc.jetstream(), settings)
            return await nc.jetstream().stream_info(names.stream)
        finally:
            await nc.close()

    info = asyncio.run(create())
    assert info.config.subjects == [names.subject]
    assert info.config.retention == "workqueue"
    assert info.config.max_age == 600.0


def test_an_existing_stream_with_other_subjects_is_refused_with_a_clear_error(names, nats_url):
    async def clash():
        import nats

        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(name=names.stream, subjects=[names.subject, f"x{names.tag}.>"])
            with pytest.raises(StreamSetupError) as refused:
                await ensure_stream(nc.jetstream(), names.settings(nats_url))
            return str(refused.value)
        finally:
            await nc.close()

    message = asyncio.run(clash())
    assert f"it captures 'x{names.tag}.>', outside '{names.subject}'" in message
    assert f"stream '{names.stream}' exists" in message


def test_a_durable_reading_another_subject_is_refused_with_a_clear_error(names, nats_url):
    async def clash():
        import nats
        from nats.js.api import ConsumerConfig

        nc = await nats.connect(nats_url)
        try:
            await ensure_stream(nc.jetstream(), names.settings(nats_url))
            await nc.jetstream().add_consumer(names.stream, ConsumerConfig(durable_name="ledger",
                                                                           filter_subject=f"{names.prefix}.grab"))
            with pytest.raises(StreamSetupError) as refused:
                await ensure_consumer(nc.jetstream(), names.settings(nats_url))
            return str(refused.value)
        finally:
            await nc.close()

    message = asyncio.run(clash())
    assert f"it reads '{names.prefix}.grab', not '{names.subject}'" in message


def test_outcomes_inside_the_events_subject_are_refused_before_connecting():
    from api.stream import StreamSettings

    with pytest.raises(StreamSetupError, match="the consumer would read its own answers"):
        StreamSettings(subject="events.>", outcome_prefix="events.outcomes")

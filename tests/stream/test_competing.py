"""Two consumers on one durable consumer compete for batches; the books are those of one consumer.

They share the durable (so the server hands each batch to one of them) and the
database (so the stream position orders their commits): each books some batches,
neither books a message twice, and a batch that comes to one of them ahead of an
earlier batch still in the other's hands waits for it.
"""
from __future__ import annotations

import asyncio

from ledger.books import Ledger
from ledger.verify import verify
from tests.conftest import FixedClock
from tests.stream.streamdata import Listener, books, consume_until_idle, publish, reference, stream_messages


def test_two_consumers_on_the_same_durable_give_the_books_of_direct_ingest(database_url, names, nats_url, tmp_path):
    messages = stream_messages(seed=23, count=500)
    asyncio.run(publish(nats_url, names, messages))
    first = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    second = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())
    settings = names.settings(nats_url, batch_size_max=10, held_nak_delay_seconds=0.05)

    async def compete():
        async with Listener(nats_url, names) as heard:
            stats = await asyncio.gather(consume_until_idle(first, settings, name="first"),
                                         consume_until_idle(second, settings, name="second"))
        return stats, heard

    (one, two), heard = asyncio.run(compete())
    streamed = books(first)
    problems = [check.problem for check in verify(first) if check.problem]
    first.close()
    second.close()
    expected_books, expected_outcomes = reference(messages, f"sqlite:///{tmp_path / 'reference.db'}")
    assert streamed == expected_books
    assert problems == []
    assert one["booked"] > 0 and two["booked"] > 0, (one, two)
    assert one["booked"] + two["booked"] == 500
    assert heard.last() == expected_outcomes

"""A seeded stream of platform messages, and the helpers the stream tests share.

`stream_messages(seed, count)` makes a realistic mix in stream order: completed
rides, deliveries and orders of three platforms; partial, full and excessive
refunds; exact re-sends (duplicates) and conflicting re-sends; refunds of unknown
originals and of another worker's event; invalid events; messages that are not JSON
or not objects. Worker ids are made up (`synthetic_national_id`), never real.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ledger.mapping import synthetic_national_id

PLATFORM_KINDS = {"grab": "ride", "be": "delivery", "shopee": "order"}
MONTHS = ("2026-02", "2026-03")


@dataclass(frozen=True)
class Message:
    platform: str  # the subject's platform: events.<platform>
    data: bytes


def stream_messages(seed: int = 7, count: int = 300) -> list[Message]:
    rng = random.Random(seed)
    workers = [synthetic_national_id(str(i), "tests/stream", (1970, 2004)) for i in range(25)]
    messages: list[Message] = []
    sent: list[tuple[str, dict]] = []  # valid JSON objects sent so far (for re-sends)
    completes: list[list] = []  # [platform, event, refunded_vnd]

    def send(platform: str, event: dict) -> None:
        messages.append(Message(platform, orjson.dumps(event)))
        sent.append((platform, event))

    def moment() -> str:
        day, hour, minute = rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
        month = rng.choice((2, 3))
        if rng.random() < 0.5:
            return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+07:00"
        return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"

    for number in range(count):
        roll = rng.random()
        if roll < 0.55 or len(completes) < 3:
            platform = rng.choice(tuple(PLATFORM_KINDS))
            event = {"event_id": f"{platform[0]}-{number}", "platform": platform, "kind": PLATFORM_KINDS[platform],
                     "worker_id": rng.choice(workers), "amount": rng.randint(8, 2_000) * 500,
                     "occurred_at": moment()}
            send(platform, event)
            completes.append([platform, event, 0])
        elif roll < 0.70:
            original = rng.choice(completes)
            platform, event, refunded = original
            left = event["amount"] - refunded
            if rng.random() < 0.15 or left == 0:
                amount = left + rng.randint(1, 5_000)  # refund_exceeds_original
            elif rng.random() < 0.4:
                amount = left  # the rest: a full refund, possibly in several pieces
            else:
                amount = rng.randint(1, left)
            if amount <= left:
                original[2] += amount
            send(platform, {"event_id": f"{platform[0]}-{number}r", "platform": platform,
                            "kind": event["kind"], "action": "refund", "original_event_id": event["event_id"],
                            "worker_id": event["worker_id"], "amount": amount, "occurred_at": moment()})
        elif roll < 0.80:
            platform, event = rng.choice(sent)
            again = dict(reversed(list(event.items())))  # same object, other key order: a duplicate
            messages.append(Message(platform, orjson.dumps(again)))
        elif roll < 0.84:
            platform, event, _refunded = rng.choice(completes)
            send(platform, {**event, "amount": event["amount"] + 1})  # duplicate_conflict
        elif roll < 0.87:
            platform = rng.choice(tuple(PLATFORM_KINDS))
            send(platform, {"event_id": f"{platform[0]}-{number}u", "platform": platform,
                            "kind": PLATFORM_KINDS[platform], "action": "refund", "original_event_id": "nope",
                            "worker_id": rng.choice(workers), "amount": 1_000, "occurred_at": moment()})
        elif roll < 0.90:
            platform = rng.choice(tuple(PLATFORM_KINDS))
            messages.append(Message(platform, rng.choice((b"{not json", b"[1, 2, 3]", b"42", b'"text"', b"{"))))
        elif roll < 0.96:
            platform = rng.choice(tuple(PLATFORM_KINDS))
            event = {"event_id": f"{platform[0]}-{number}x", "platform": platform, "kind": PLATFORM_KINDS[platform],
                     "worker_id": rng.choice(workers), "amount": 10_000, "occurred_at": moment()}
            flaw = rng.choice(("amount", "worker", "kind", "missing", "time", "currency"))
            if flaw == "amount":
                event["amount"] = rng.choice((0, -5, 1.5, True, "100"))
            elif flaw == "worker":
                event["worker_id"] = "999203001234"
            elif flaw == "kind":
                event["kind"] = "taxi"
            elif flaw == "missing":
                del event["occurred_at"]
            elif flaw == "time":
                event["occurred_at"] = "2026-02-10T09:00:00"
            else:
                event["currency"] = "USD"
            send(platform, event)
        else:
            platform, event, _refunded = rng.choice(completes)
            other = next(w for w in workers if w != event["worker_id"])
            send(platform, {"event_id": f"{platform[0]}-{number}m", "platform": platform, "kind": event["kind"],
                            "action": "refund", "original_event_id": event["event_id"], "worker_id": other,
                            "amount": 100, "occurred_at": moment()})
    return messages


def write_ndjson(messages: list[Message], path: Path) -> Path:
    """The same messages as an NDJSON file: line n is stream sequence n."""
    path.write_bytes(b"".join(message.data + b"\n" for message in messages))
    return path


async def publish(nats_url: str, names, messages: list[Message], create: bool = True) -> None:
    """Publish in order on <prefix>.<platform> and wait for every PubAck."""
    import nats

    from api.stream import ensure_stream

    nc = await nats.connect(nats_url, connect_timeout=3)
    try:
        js = nc.jetstream()
        if create:
            await ensure_stream(js, names.settings(nats_url))
        futures = [await js.publish_async(f"{names.prefix}.{m.platform}", m.data) for m in messages]
        acks = await asyncio.gather(*futures)
        assert [ack.seq for ack in acks] == list(range(acks[0].seq, acks[0].seq + len(acks))) if acks else True
    finally:
        await nc.close()


@dataclass
class Heard:
    """What the consumer said on the outcome and dead-letter subjects."""

    outcomes: dict[int, list[dict]] = field(default_factory=dict)  # stream seq -> every outcome published for it
    outcome_subjects: dict[int, str] = field(default_factory=dict)
    dead_letters: list = field(default_factory=list)  # (headers, data)

    def last(self) -> dict[int, str]:
        return {seq: answers[-1]["outcome"] for seq, answers in sorted(self.outcomes.items())}


class Listener:
    """Subscribes to a test's outcome and dead-letter subjects (core NATS) while consumers run."""

    def __init__(self, nats_url: str, names) -> None:
        self.nats_url, self.names, self.heard, self._nc = nats_url, names, Heard(), None

    async def __aenter__(self) -> Heard:
        import nats

        self._nc = await nats.connect(self.nats_url, connect_timeout=3)

        async def on_outcomes(message) -> None:
            for line in message.data.splitlines():
                answer = orjson.loads(line)
                self.heard.outcomes.setdefault(answer["line"], []).append(answer)
                self.heard.outcome_subjects[answer["line"]] = message.subject

        async def on_dead_letter(message) -> None:
            self.heard.dead_letters.append((dict(message.headers or {}), message.data))

        await self._nc.subscribe(f"{self.names.outcome_prefix}.>", cb=on_outcomes)
        await self._nc.subscribe(self.names.dead_letter_subject, cb=on_dead_letter)
        await self._nc.flush()
        return self.heard

    async def __aexit__(self, *exc) -> None:
        await asyncio.sleep(0.2)  # let the last answers arrive
        await self._nc.close()


async def consume_until_idle(ledger, settings, **options) -> dict:
    from api.stream import StreamConsumer

    consumer = StreamConsumer(ledger, settings, **options)
    try:
        return await consumer.run(until_idle=True)
    finally:
        await consumer.close()


def books(ledger) -> dict:
    """Everything an insurer reads off the books for the test months, and every entry with its postings.

    Entries and postings are named by platform, event id and worker pseudonym instead
    of row ids: worker and platform row ids are handed out per transaction, so they
    (and the settlement's `postings_sha256`, which hashes them) depend on where batch
    boundaries fell, which the books' meaning does not. A statement's `topup_reference` is the
    worker's row id under a keyed permutation (ledger/money.py), so it is left out for the same
    reason. Entry ids do not: they follow the order of booking, so they are compared as they are.
    """
    from ledger.reports import settlement, statements

    report = {month: {"settlement": {key: value for key, value in settlement(ledger, month).items()
                                     if key != "postings_sha256"},
                      "statements": sorted(({key: value for key, value in report.items() if key != "topup_reference"}
                                            for report in statements(ledger, month)),
                                           key=lambda s: s["national_id"])}
              for month in MONTHS}
    report["entries"] = entries(ledger)
    return report


def entries(ledger) -> list[tuple]:
    from ledger.store import query

    with ledger.engine.connect() as conn:
        journal = query(conn, "SELECT j.id, p.name, j.event_id, j.entry_type, j.kind, j.amount_vnd, j.occurred_at, "
                              "j.occurred_us, j.occurred_month, j.booking_month, w.pseudonym, o.event_id FROM journal j "
                              "LEFT JOIN platform p ON p.id = j.platform_id LEFT JOIN worker w ON w.id = j.worker_id "
                              "LEFT JOIN journal o ON o.id = j.original_entry_id ORDER BY j.id")
        legs: dict[int, list] = {}
        for row in query(conn, "SELECT q.entry_id, q.leg, q.account_kind, coalesce(w.pseudonym, p.name, ''), "
                               "q.scheme, q.party, q.amount_vnd FROM legs q "
                               "LEFT JOIN worker w ON q.account_kind = 1 AND w.id = q.owner_id "
                               "LEFT JOIN platform p ON q.account_kind = 2 AND p.id = q.owner_id "
                               "ORDER BY q.entry_id, q.leg"):
            legs.setdefault(row[0], []).append(tuple(row[1:]))
        conn.rollback()
    return [(*row, tuple(legs.get(row[0], ()))) for row in journal]


def reference(messages: list[Message], url: str):
    """The books and outcomes of booking the same messages directly (ingest_batch, in order)."""
    from ledger.books import Ledger
    from ledger.ingest import MALFORMED, ingest_batch
    from tests.conftest import FixedClock

    items = []
    for seq, message in enumerate(messages, start=1):
        try:
            items.append((seq, orjson.loads(message.data)))
        except orjson.JSONDecodeError:
            items.append((seq, MALFORMED))
    ledger = Ledger.open(url, pack="vn-pilot", clock=FixedClock())
    try:
        outcomes = {outcome.line: outcome.outcome for outcome in ingest_batch(ledger, items)}
        return books(ledger), outcomes
    finally:
        ledger.close()

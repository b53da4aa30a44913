"""Streaming ingest: a NATS JetStream consumer that books events with exactly-once effect.

Platforms publish one event JSON object per message on `events.<platform>`
(docs/stream.md). `StreamConsumer` pulls batches from a durable pull consumer and
books each batch through `ledger.ingest.ingest_batch` — the function the CLI and
HTTP use — then publishes the per-item outcomes on `outcomes.<platform>` and only
then acknowledges the messages.

Acknowledging after the commit gives at-least-once delivery. The effect is
exactly once because the consumer keeps its own position in the books, **in the
same database transaction as the booking**:

- `stream_position` holds, per stream, the highest stream sequence booked. A
  message at or below it was booked (or refused) before; it is never booked again,
  whatever happened to its acknowledgement.
- `stream_outcome_block` keeps the outcome of every message booked in a batch, so a
  redelivered message gets the *same* outcome republished (`accepted` stays
  `accepted`; it does not turn into `duplicate`, and a refund rejected as
  `unknown_original` stays rejected even if its original has been booked since).
- Messages are booked strictly in stream order: a batch is booked only from the
  message right after the position. A message further on (because an earlier one is
  still held by another consumer, or by one that crashed and awaits redelivery) is
  handed back with a delayed NAK. Order matters in a ledger: a refund after its
  original, the first of two conflicting payloads, the booking month of a late
  event. The position is why a crash at any moment — before the commit, between the
  commit and the acknowledgements, halfway through them — changes nothing in the
  books (tests/stream/test_crash.py kills the consumer with SIGKILL to show it).

Malformed messages (not JSON, not an object) get the outcome `malformed` and a copy
on the dead-letter subject with the reason; a message whose `platform` is not the
platform of its subject is refused (`platform_mismatch`, like HTTP's 403) and
dead-lettered too. Neither ever blocks the stream.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from prometheus_client import CollectorRegistry, Counter as PromCounter, Gauge, Histogram
from sqlalchemy import Connection

from api.observability import mask_ids
from api.reasons import LANGS, reasoned
from ledger.books import Ledger, UnitOfWork
from ledger.events import NESTING_DEPTH_MAX, nested_deeper_than
from ledger.ingest import BATCH_SIZE_MAX, MALFORMED, Outcome, ingest_batch
from ledger.store import is_sqlite, query

log = logging.getLogger("ansinh.stream")

PLATFORM_MISMATCH = "platform_mismatch"  # a stream refusal, not a RULES.md §1 code: the subject is the credential
MALFORMED_CODE = "malformed"
GAP_READS_MAX = 2 * BATCH_SIZE_MAX  # missing sequences read one by one for one batch
RETENTIONS = ("limits", "interest", "workqueue")


class StreamSetupError(Exception):
    """The stream or the durable consumer exists with settings this consumer cannot work with."""


@dataclass(frozen=True)
class StreamSettings:
    """Where to read, where to answer, how much to hold. Units are in the names."""

    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = "EVENTS"
    subject: str = "events.>"  # must end in `.>`: the platform is what follows the prefix
    durable: str = "ansinh-ledger"
    batch_size_max: int = 1_000
    fetch_timeout_seconds: float = 1.0
    ack_wait_seconds: float = 30.0
    held_nak_delay_seconds: float = 0.2  # a message that must wait for an unreadable earlier one comes back after this
    outcome_prefix: str = "outcomes"
    dead_letter_subject: str = "deadletter.events"
    retention: str = "limits"
    max_age_seconds: float = 7 * 86_400.0  # 0 = keep for ever
    max_bytes: int = -1
    replicas: int = 1  # a new stream's copies on a cluster: 3 in production (docs/stream.md, topology)
    prune_interval_seconds: float = 30.0  # how often stored outcomes of acknowledged messages are dropped
    outcome_lang: str = "vi"  # language of each published outcome's `reason` (api.reasons: vi or en)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise StreamSetupError("; ".join(problems))

    def problems(self) -> list[str]:
        found = []
        if not self.subject.endswith(".>") or len(self.subject) < 3 or "*" in self.subject:
            found.append(f"subject {self.subject!r} must be a prefix ending in '.>' (e.g. 'events.>'), "
                         "so that the platform is the rest of each message's subject")
        if not 1 <= self.batch_size_max <= BATCH_SIZE_MAX:
            found.append(f"batch size must be 1 to {BATCH_SIZE_MAX:,}, got {self.batch_size_max}")
        if self.fetch_timeout_seconds <= 0 or self.ack_wait_seconds <= 0:
            found.append("fetch timeout and ack wait must be positive")
        if self.retention not in RETENTIONS:
            found.append(f"retention must be one of {', '.join(RETENTIONS)}, got {self.retention!r}")
        if self.max_age_seconds < 0:
            found.append("max age must be 0 (for ever) or positive")
        if self.outcome_lang not in LANGS:
            found.append(f"outcome language must be one of {', '.join(LANGS)}, got {self.outcome_lang!r}")
        if self.replicas not in (1, 3, 5):
            found.append(f"replicas must be 1, 3 or 5 (an odd number of copies for a majority), got {self.replicas}")
        for name, subject in (("outcomes", self.outcome_prefix + ".<platform>"),
                              ("dead-letter subject", self.dead_letter_subject)):
            if subject_covers(self.subject, subject):
                found.append(f"the {name} {subject!r} is inside the events subject {self.subject!r}: "
                             "the consumer would read its own answers")
        return found

    @property
    def subject_prefix(self) -> str:
        return self.subject[:-2]

    @property
    def max_ack_pending(self) -> int:
        return 2 * self.batch_size_max  # the batch being booked and the one fetched meanwhile


def subject_covers(pattern: str, subject: str) -> bool:
    """True when every subject matched by `subject` (may hold wildcards) is matched by `pattern`."""
    wanted, given = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(given) > index
        if index >= len(given):
            return False
        if given[index] == ">":
            return False
        if token != "*" and token != given[index]:
            return False
    return len(given) == len(wanted)


def stream_key_of(info) -> str:
    """The stream's identity in the books: its name and creation time.

    A stream deleted and created again under the same name restarts its sequences at 1;
    its creation time keeps the new sequences from being mistaken for booked ones.
    """
    created = info.created.isoformat() if info.created else "unknown"
    return f"{info.config.name}@{created}"


def platform_of(settings: StreamSettings, subject: str) -> str | None:
    prefix = settings.subject_prefix + "."
    return subject[len(prefix):] if subject.startswith(prefix) and len(subject) > len(prefix) else None


# -- the stream and the durable consumer --------------------------------------------------

async def ensure_stream(js, settings: StreamSettings):
    """The stream's info, creating the stream if absent; refuse one that does not fit.

    A stream fits when every subject it captures is inside the consumer's subject (else
    its sequence would have holes the consumer cannot tell from lost messages) and it
    captures neither the outcome nor the dead-letter subjects (else the consumer would
    read its own answers).
    """
    try:
        info = await js.stream_info(settings.stream)
    except nats.js.errors.NotFoundError:
        config = StreamConfig(name=settings.stream, subjects=[settings.subject],
                              retention=RetentionPolicy(settings.retention), storage=StorageType.FILE,
                              max_age=settings.max_age_seconds, max_bytes=settings.max_bytes,
                              num_replicas=settings.replicas,
                              description="ansinh platform events: one event JSON object per message")
        try:
            info = await js.add_stream(config)
            log.info("created stream %s on %s (retention %s, max age %.0f s, %d replicas)", settings.stream,
                     settings.subject, settings.retention, settings.max_age_seconds, settings.replicas)
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(settings.stream)  # another consumer created it meanwhile
        except nats.js.errors.APIError as error:
            raise StreamSetupError(f"cannot create stream {settings.stream!r} on {settings.subject!r}: "
                                   f"{error.description}") from None
    if (info.config.num_replicas or 1) < settings.replicas:
        log.warning("stream %s has %d replicas, fewer than the %d asked for: a lost server can stop it "
                    "(raise them with `nats stream edit --replicas`)", settings.stream, info.config.num_replicas or 1,
                    settings.replicas)
    problems = stream_problems(settings, list(info.config.subjects or []))
    if problems:
        raise StreamSetupError(f"stream {settings.stream!r} exists with subjects {info.config.subjects}, "
                               f"which this consumer cannot use: {'; '.join(problems)}. Use a stream of its own "
                               f"for '{settings.subject}', or another --stream name")
    return info


def stream_problems(settings: StreamSettings, subjects: list[str]) -> list[str]:
    found = []
    if not subjects:
        found.append("it captures no subjects (a mirror or a source-only stream)")
    for subject in subjects:
        if not subject_covers(settings.subject, subject):
            found.append(f"it captures {subject!r}, outside {settings.subject!r}")
        for name, answer in (("outcomes", settings.outcome_prefix + ".<platform>"),
                             ("dead letters", settings.dead_letter_subject)):
            if subject_covers(subject, answer):
                found.append(f"its subject {subject!r} would capture the {name} ({answer!r})")
    return found


async def ensure_consumer(js, settings: StreamSettings):
    """The durable pull consumer's info, creating it if absent; refuse one that reads something else."""
    try:
        info = await js.consumer_info(settings.stream, settings.durable)
    except nats.js.errors.NotFoundError:
        config = ConsumerConfig(name=settings.durable, durable_name=settings.durable,
                                deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT,
                                ack_wait=settings.ack_wait_seconds, max_deliver=-1,
                                filter_subject=settings.subject, max_ack_pending=settings.max_ack_pending,
                                description="ansinh ledger: books events, exactly-once effect")
        try:
            info = await js.add_consumer(settings.stream, config)
        except nats.js.errors.APIError as error:
            try:
                info = await js.consumer_info(settings.stream, settings.durable)  # created meanwhile
            except nats.js.errors.NotFoundError:
                raise StreamSetupError(f"cannot create durable consumer {settings.durable!r} on stream "
                                       f"{settings.stream!r}: {error.description}") from None
    config = info.config
    problems = []
    if config.deliver_subject:
        problems.append("it is a push consumer (this one pulls)")
    if (config.filter_subject or ">") != settings.subject and config.filter_subjects != [settings.subject]:
        problems.append(f"it reads {config.filter_subject or config.filter_subjects or 'every subject'!r}, "
                        f"not {settings.subject!r}")
    if config.ack_policy != AckPolicy.EXPLICIT:
        problems.append(f"its ack policy is {config.ack_policy!r}, not explicit (an ack-all could acknowledge a "
                        "message whose outcome was never published)")
    if config.max_deliver not in (None, -1, 0):
        problems.append(f"it gives up on a message after {config.max_deliver} deliveries (a lost event)")
    if problems:
        raise StreamSetupError(f"durable consumer {settings.durable!r} on stream {settings.stream!r} exists but "
                               f"{'; '.join(problems)}. Pick another --durable, or delete it")
    return info


async def stream_lag(nats_url: str, stream: str, durable: str) -> dict[str, int]:
    """The durable consumer's lag, as the server sees it (for operators and the benchmark)."""
    nc = await connect_nats(nats_url, "ansinh-lag")
    try:
        info = await nc.jetstream().consumer_info(stream, durable)
        stream_info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    return {"undelivered_messages": int(info.num_pending or 0), "ack_pending_messages": int(info.num_ack_pending or 0),
            "redelivered_messages": int(info.num_redelivered or 0),
            "acked_through_seq": int(info.ack_floor.stream_seq if info.ack_floor else 0),
            "stream_last_seq": int(stream_info.state.last_seq), "stream_messages": int(stream_info.state.messages)}


# What a client sees while a cluster loses a server or elects a leader: worth waiting out, not fatal.
FAILOVER_ERRORS = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionReconnectingError,
                   nats.errors.StaleConnectionError, nats.errors.FlushTimeoutError,
                   nats.js.errors.ServiceUnavailableError, asyncio.TimeoutError)
FAILOVER_WAIT_SECONDS = 60.0


async def through_failover(request: Callable[[], Any], what: str, within_seconds: float = FAILOVER_WAIT_SECONDS):
    """`await request()`, asked again while the cluster fails over; StreamSetupError after `within_seconds`."""
    deadline = time.monotonic() + within_seconds
    while True:
        try:
            return await request()
        except FAILOVER_ERRORS as error:
            if time.monotonic() > deadline:
                raise StreamSetupError(f"NATS did not answer about {what} within {within_seconds:.0f} s "
                                       f"({type(error).__name__}): is a majority of the cluster up?") from None
            log.warning("NATS did not answer about %s (%s): asking again", what, type(error).__name__)
            await asyncio.sleep(0.5)


def nats_servers(url: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` or `nats://a:4222,b:4222` -> one URL per server of a cluster.

    nats-py takes a list; with every server of the cluster in it, a client whose server
    is lost reconnects to another (docs/stream.md, production topology).
    """
    scheme = url.split("://", 1)[0] if "://" in url else "nats"
    return [part if "://" in part else f"{scheme}://{part}" for part in (p.strip() for p in url.split(",")) if part]


async def connect_nats(url: str, name: str, within_seconds: float = 10.0):
    """Connect, or raise StreamSetupError after `within_seconds`; once connected, reconnect for ever.

    `url` may list several servers, comma-separated (a cluster).

    nats-py retries the first connection as often as later ones; an unreachable server
    at start-up is a configuration error to report, not something to wait out.
    """
    async def report(error: Exception) -> None:  # nats-py's default prints a traceback per attempt
        log.warning("NATS %s: %s: %s", url, type(error).__name__, error)

    try:
        return await asyncio.wait_for(nats.connect(nats_servers(url), name=name, max_reconnect_attempts=-1,
                                                   connect_timeout=3, error_cb=report), timeout=within_seconds)
    except (asyncio.TimeoutError, OSError, nats.errors.NoServersError) as error:
        raise StreamSetupError(f"cannot reach NATS at {url} within {within_seconds:.0f} s "
                               f"({type(error).__name__}); is nats-server running with -js?") from None


# -- the consumer's own tables, in the books' database -------------------------------------

def prepare_tables(ledger: Ledger, stream_key: str) -> int:
    """Record the consumer's position row if it is new; returns the position.

    The tables (`stream_position`, `stream_outcome_block`) are created by schema revision
    0005 with the books. They sit beside the journal but are not part of it: the stream
    position is mutable (it only moves forward), and outcome blocks are dropped once
    acknowledged.
    """
    with ledger.engine.begin() as conn:
        query(conn, "INSERT INTO stream_position (stream_key, last_seq, updated_at) VALUES (?, 0, ?) "
                    "ON CONFLICT (stream_key) DO NOTHING", (stream_key, _now_text()))
        return int(query(conn, "SELECT last_seq FROM stream_position WHERE stream_key = ?", (stream_key,))[0][0])


def stream_position(ledger: Ledger, stream_key: str) -> int:
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT last_seq FROM stream_position WHERE stream_key = ?", (stream_key,))
        conn.rollback()
    return int(rows[0][0]) if rows else 0


def _now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- one batch, in the database ------------------------------------------------------------

class Delivered(NamedTuple):
    """A fetched message, as plain values (the database thread never touches NATS objects)."""

    seq: int
    subject: str
    data: bytes
    deliveries: int
    borrowed: bool = False  # read from the stream by sequence, not delivered to us: never ours to ack


class Answer(NamedTuple):
    """What to tell the world about one message: its outcome and, for a dead letter, why and what."""

    seq: int
    platform_subject: str | None  # the platform named by the message's subject
    outcome: Outcome
    dead_letter_reason: str | None = None
    dead_letter_data: bytes | None = None


@dataclass
class BatchPlan:
    """What a batch did in the database, and what to do with each message afterwards."""

    booked: list[Answer] = field(default_factory=list)  # booked by this batch, in stream order
    replays: list[Answer] = field(default_factory=list)  # booked before: the stored outcome, republished
    acked: list[int] = field(default_factory=list)  # stream sequences to acknowledge
    held: list[int] = field(default_factory=list)  # ours, after a sequence nobody here could book yet
    unknown_replays: int = 0  # booked before, but the outcome is no longer stored
    skipped: int = 0  # sequences passed over as deleted from the stream
    borrowed: int = 0  # messages read from the stream by sequence and booked here
    position: int = 0

    def then(self, later: BatchPlan) -> BatchPlan:
        """This plan followed by a second pass over its held messages."""
        return BatchPlan(self.booked + later.booked, self.replays + later.replays, self.acked + later.acked,
                         later.held, self.unknown_replays + later.unknown_replays, self.skipped + later.skipped,
                         self.borrowed + later.borrowed, max(self.position, later.position))


@dataclass(frozen=True)
class Skippable:
    """Stream sequences known to be gone (expired or deleted): below `below`, and those in `each`."""

    below: int = 0
    each: frozenset[int] = frozenset()

    def __contains__(self, seq: int) -> bool:
        return seq < self.below or seq in self.each


NOTHING_SKIPPED = Skippable()


def _decode(settings: StreamSettings, message: Delivered) -> tuple[object, str | None, str | None]:
    """(item for ingest_batch, refusal code or None, dead-letter reason or None)."""
    platform = platform_of(settings, message.subject)
    try:
        item = orjson.loads(message.data)
    except orjson.JSONDecodeError as error:
        return MALFORMED, None, mask_ids(f"not JSON: {error}")
    if type(item) is not dict:
        return item, None, f"not a JSON object (a JSON {type(item).__name__})"
    if len(message.data) > 2 * NESTING_DEPTH_MAX and nested_deeper_than(item, NESTING_DEPTH_MAX):
        return item, None, f"nested deeper than {NESTING_DEPTH_MAX} levels"  # ingest_batch calls it malformed
    claimed = item.get("platform")
    if claimed is not None and claimed != platform:
        shown = claimed if type(claimed) is str else type(claimed).__name__
        return item, PLATFORM_MISMATCH, mask_ids(f"the event's platform {shown!r} is not {platform!r}, "
                                                 f"the platform of its subject {message.subject!r}")
    return item, None, None


def _identity(item: object) -> tuple[str | None, str | None]:
    if type(item) is not dict:
        return None, None
    platform, event_id = item.get("platform"), item.get("event_id")
    return (platform if type(platform) is str else None, event_id if type(event_id) is str else None)


def book_batch(ledger: Ledger, settings: StreamSettings, stream_key: str, messages: Sequence[Delivered],
               skippable: Skippable = NOTHING_SKIPPED, fault: Callable[[str], None] | None = None) -> BatchPlan:
    """Book the messages that come next in the stream, in one transaction with the position.

    Messages at or below the stored position are replays: their stored outcomes are
    returned, nothing is booked. The rest are booked in stream order from position + 1
    (sequences in `skippable` are gone from the stream); a message after a sequence
    that is neither here nor skippable is held. Runs in a worker thread.
    """
    plan = BatchPlan()
    with ledger.unit_of_work() as work:  # the booking, the position and the outcomes commit together
        conn = work.connection
        lock = "" if is_sqlite(conn) else " FOR UPDATE"  # SQLite: BEGIN IMMEDIATE already holds the writer lock
        rows = query(conn, "SELECT last_seq FROM stream_position WHERE stream_key = ?" + lock, (stream_key,))
        if not rows:
            raise RuntimeError(f"no stream position for {stream_key!r}: prepare_tables was not run")
        position = int(rows[0][0])
        fresh: dict[int, Delivered] = {}
        replays: dict[int, Delivered] = {}
        for message in messages:
            (replays if message.seq <= position else fresh)[message.seq] = message
        expected, take = position + 1, []
        for seq in sorted(fresh):
            if expected < seq and expected < skippable.below:
                expected = min(seq, skippable.below)
            while expected < seq and expected in skippable:
                expected += 1
            if seq != expected or len(take) == BATCH_SIZE_MAX:  # the rest waits for the next batch
                break
            take.append(fresh[seq])
            expected += 1
        plan.held = sorted(seq for seq, message in fresh.items() if seq >= expected and not message.borrowed)
        plan.replays = _replayed(conn, settings, stream_key, {seq: message for seq, message in replays.items()
                                                              if not message.borrowed}, plan)
        plan.acked.extend(sorted(seq for seq, message in replays.items() if not message.borrowed))
        if take:
            plan.skipped = take[-1].seq - position - len(take)
            plan.booked = _book(ledger, work, settings, take)
            assert [answer.seq for answer in plan.booked] == [message.seq for message in take], "one answer each"
            assert take[0].seq > position and plan.skipped >= 0, "booked strictly after the position, in order"
            outcomes = [_stored(answer.outcome) for answer in plan.booked]
            query(conn, "INSERT INTO stream_outcome_block (stream_key, first_seq, last_seq, outcomes) "
                        "VALUES (?, ?, ?, ?)", (stream_key, take[0].seq, take[-1].seq, orjson.dumps(outcomes).decode()))
            query(conn, "UPDATE stream_position SET last_seq = ?, updated_at = ? WHERE stream_key = ?",
                  (take[-1].seq, _now_text(), stream_key))
            plan.acked.extend(message.seq for message in take if not message.borrowed)
            plan.borrowed = sum(message.borrowed for message in take)
            position = take[-1].seq
            if fault:
                fault("before_commit")
    plan.position = position
    return plan


def _book(ledger: Ledger, work: UnitOfWork, settings: StreamSettings, take: list[Delivered]) -> list[Answer]:
    decoded = [_decode(settings, message) for message in take]
    items = [(message.seq, item) for message, (item, refusal, _reason) in zip(take, decoded) if refusal is None]
    booked = iter(ingest_batch(ledger, items, work=work) if items else [])
    answers = []
    for message, (item, refusal, reason) in zip(take, decoded):
        if refusal is None:
            outcome = next(booked)
        else:
            outcome = Outcome(message.seq, *_identity(item), refusal)
        answers.append(_answer(settings, message, outcome, reason))
    return answers


def _stored(outcome: Outcome) -> list:
    """An outcome as kept in `stream_outcome_block`: [seq, code], and an accepted one's months after them."""
    if outcome.booked_month is None:
        return [outcome.line, outcome.outcome]
    return [outcome.line, outcome.outcome, outcome.booked_month, outcome.occurred_month]


def _answer(settings: StreamSettings, message: Delivered, outcome: Outcome, reason: str | None) -> Answer:
    if outcome.outcome in (MALFORMED_CODE, PLATFORM_MISMATCH):
        return Answer(message.seq, platform_of(settings, message.subject), outcome, reason, message.data)
    return Answer(message.seq, platform_of(settings, message.subject), outcome)


def _replayed(conn: Connection, settings: StreamSettings, stream_key: str, replays: dict[int, Delivered],
              plan: BatchPlan) -> list[Answer]:
    """The stored outcomes of messages booked before (a redelivery after a crash or a lost ack)."""
    if not replays:
        return []
    low, high = min(replays), max(replays)
    stored: dict[int, list] = {}
    for (blob,) in query(conn, "SELECT outcomes FROM stream_outcome_block WHERE stream_key = ? "
                               "AND first_seq <= ? AND last_seq >= ?", (stream_key, high, low)):
        # [seq, code] or [seq, code, booked_month, occurred_month]; blocks of earlier releases hold no months
        stored.update((int(seq), kept) for seq, *kept in orjson.loads(blob))
    answers = []
    for seq in sorted(replays):
        kept = stored.get(seq)
        if kept is None:
            plan.unknown_replays += 1
            continue
        message = replays[seq]
        item, _refusal, reason = _decode(settings, message)
        answers.append(_answer(settings, message, Outcome(seq, *_identity(item), *kept), reason))
    return answers


def prune_outcomes(ledger: Ledger, stream_key: str, acked_through_seq: int) -> int:
    """Drop stored outcomes of messages the server has recorded as acknowledged (never redelivered)."""
    with ledger.engine.begin() as conn:
        rows = query(conn, "SELECT count(*) FROM stream_outcome_block WHERE stream_key = ? AND last_seq <= ?",
                     (stream_key, acked_through_seq))
        query(conn, "DELETE FROM stream_outcome_block WHERE stream_key = ? AND last_seq <= ?",
              (stream_key, acked_through_seq))
    return int(rows[0][0])


# -- metrics ------------------------------------------------------------------------------

class StreamMetrics:
    """Prometheus metrics of one consumer (served by `ansinh consume --metrics-port`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = PromCounter("ansinh_stream_messages_total", "Messages booked, by outcome", ["outcome"],
                                    registry=r)
        self.replayed = PromCounter("ansinh_stream_replayed_total",
                                    "Redelivered messages booked before: stored outcome republished", registry=r)
        self.held = PromCounter("ansinh_stream_held_total", "Messages handed back to wait for an earlier one",
                                registry=r)
        self.dead_letters = PromCounter("ansinh_stream_dead_letters_total", "Messages sent to the dead-letter subject",
                                        registry=r)
        self.skipped = PromCounter("ansinh_stream_skipped_sequences_total",
                                   "Stream sequences deleted before they were booked (retention, purge)", registry=r)
        self.borrowed = PromCounter("ansinh_stream_borrowed_total",
                                    "Messages read from the stream by sequence to book in order", registry=r)
        self.batches = PromCounter("ansinh_stream_batches_total", "Batches committed", registry=r)
        self.batch_seconds = Histogram("ansinh_stream_batch_seconds", "Fetch-to-ack time of one batch",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.lag = Gauge("ansinh_stream_lag_messages", "Messages in the stream not yet delivered to the consumer",
                         registry=r)
        self.ack_pending = Gauge("ansinh_stream_ack_pending_messages", "Delivered, not yet acknowledged",
                                 registry=r)
        self.position = Gauge("ansinh_stream_position", "Last stream sequence booked", registry=r)
        self.last_batch = Gauge("ansinh_stream_last_batch_timestamp_seconds", "When the last batch committed",
                                registry=r)
        self.up = Gauge("ansinh_stream_up", "1 while connected to NATS and the books", registry=r)


# -- the consumer -------------------------------------------------------------------------

class PullFetcher:
    """Fetch batches from a durable pull consumer through one inbox, with little work per message.

    nats-py's `PullSubscription.fetch` waits for each message of a batch with its own
    `asyncio.wait_for` (a task per message): about half the consumer's time per message
    outside the booking. Here a subscription callback appends each message to a buffer,
    in delivery order, and a fetch waits on one event per batch. The protocol is
    JetStream's: a request `{"batch": n, "no_wait": true}` on
    `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>` is answered with up to n messages, then
    a 404/408 status; when nothing is waiting, a lingering request (`expires`) waits for
    the first message. Messages that arrive after a fetch returned (a lingering request
    still open at the server) are kept for the next fetch, so none is lost or reordered.
    """

    _ENDS = frozenset(("404", "408"))  # no (more) messages; request expired

    def __init__(self, nc, stream: str, durable: str) -> None:
        self._nc = nc
        self._request_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._buffer: collections.deque = collections.deque()
        self._arrived = asyncio.Event()
        self._ended = 0  # requests the server has finished (404/408)
        self._problem: str | None = None
        self._inbox = ""
        self._sub = None

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        # No client-side limits: what can arrive is bounded by the durable's max_ack_pending.
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message, pending_msgs_limit=0,
                                             pending_bytes_limit=0)

    async def stop(self) -> None:
        if self._sub is not None:
            with suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, message) -> None:
        headers = message.headers
        status = headers.get("Status") if headers else None
        if status is None:
            self._buffer.append(message)
        elif status in self._ENDS:
            self._ended += 1
        elif status != "100":  # 100 = idle heartbeat; 409 = consumer deleted, limits exceeded…
            self._problem = f"{status} {headers.get('Description', '')}".strip()
        self._arrived.set()

    def leftovers(self) -> list:
        """Messages delivered but not yet fetched (at shutdown: to hand back)."""
        return self._take(len(self._buffer))

    def _take(self, count: int) -> list:
        taken = []
        while self._buffer and len(taken) < count:
            taken.append(self._buffer.popleft())
        return taken

    async def _wait(self, seconds: float) -> bool:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout=seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def fetch(self, count: int, timeout_seconds: float) -> list:
        if self._buffer:
            return self._take(count)
        if self._problem is not None:
            problem, self._problem = self._problem, None
            log.warning("pull request answered %s", problem)
        deadline = time.monotonic() + timeout_seconds
        ended = self._ended
        await self._nc.publish(self._request_subject, orjson.dumps({"batch": count, "no_wait": True}),
                               reply=self._inbox)
        while len(self._buffer) < count and self._ended == ended and time.monotonic() < deadline:
            await self._wait(deadline - time.monotonic())
        if self._buffer:
            return self._take(count)
        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            return []
        ended = self._ended
        expires = int((remaining - 0.005) * 1e9)
        await self._nc.publish(self._request_subject, orjson.dumps({"batch": count, "expires": expires}),
                               reply=self._inbox)
        while not self._buffer and self._ended == ended and time.monotonic() < deadline:
            await self._wait(deadline - time.monotonic())
        await asyncio.sleep(0)  # let messages already read off the socket reach the buffer
        return self._take(count)


def ack_numbers(reply: str) -> tuple[int, int, int]:
    """(stream sequence, deliveries, messages still pending) from a JetStream reply subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
    with a domain and an account hash after `ACK` on newer servers. nats-py's
    `msg.metadata` parses the same and builds a datetime too: 4 µs a message, 20 % of
    the consumer's own time.
    """
    tokens = reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[4]), int(tokens[8])
    return int(tokens[7]), int(tokens[6]), int(tokens[10])


@dataclass
class StreamCounts:
    received: int = 0
    batches: int = 0
    replayed: int = 0
    unknown_replays: int = 0
    held: int = 0
    dead_letters: int = 0
    skipped: int = 0
    borrowed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    lag_messages: int = 0
    ack_pending_messages: int = 0
    failovers: int = 0  # NATS requests that failed while a server was lost or a leader elected
    position: int = 0
    started_at: float = field(default_factory=time.monotonic)


class StreamConsumer:
    """One consumer process's worth of work: connect, ensure stream and durable, book batches."""

    def __init__(self, ledger: Ledger, settings: StreamSettings, metrics: StreamMetrics | None = None,
                 fault: Callable[[str], None] | None = None, name: str = "consumer") -> None:
        self.ledger = ledger
        self.settings = settings
        self.metrics = metrics or StreamMetrics()
        self.fault = fault
        self.name = name
        self.counts = StreamCounts()
        self.stream_key = ""
        self._nc = self._js = self._sub = None
        self._last_prune = 0.0
        self._first_seq_seen = 0

    # numbers for operators, tests and the benchmark
    def stats(self) -> dict[str, float]:
        """Counts so far, lag and position: plain numbers (also exported as Prometheus metrics)."""
        c = self.counts
        elapsed = max(time.monotonic() - c.started_at, 1e-9)
        booked = sum(c.outcomes.values())
        return {"received": c.received, "booked": booked, "batches": c.batches, "replayed": c.replayed,
                "unknown_replays": c.unknown_replays, "held": c.held, "dead_letters": c.dead_letters,
                "skipped_sequences": c.skipped, "borrowed": c.borrowed, "lag_messages": c.lag_messages,
                "ack_pending_messages": c.ack_pending_messages, "position": c.position, "failovers": c.failovers,
                "events_per_second": booked / elapsed, **{f"outcome_{k}": v for k, v in sorted(c.outcomes.items())}}

    async def connect(self) -> None:
        s = self.settings
        self._nc = await connect_nats(s.nats_url, f"ansinh-{self.name}")
        self._js = self._nc.jetstream()
        info = await through_failover(lambda: ensure_stream(self._js, s), f"stream {s.stream}")
        self.stream_key = stream_key_of(info)
        await through_failover(lambda: ensure_consumer(self._js, s), f"durable consumer {s.durable}")
        self._sub = PullFetcher(self._nc, s.stream, s.durable)
        await self._sub.start()
        self.counts.position = await asyncio.to_thread(prepare_tables, self.ledger, self.stream_key)
        self.metrics.position.set(self.counts.position)
        self.metrics.up.set(1)
        log.info("consuming %s (%s) as durable %s from position %d", s.stream, s.subject, s.durable,
                 self.counts.position)

    async def close(self) -> None:
        self.metrics.up.set(0)
        if self._sub is not None:
            await self._sub.stop()
        if self._nc is not None and not self._nc.is_closed:
            with suppress(Exception):
                await self._nc.flush(timeout=5)  # acks and answers are out; nothing else is owed
            with suppress(Exception):
                await self._nc.close()
        self._nc = None

    async def run(self, stop: asyncio.Event | None = None, until_idle: bool = False) -> dict[str, float]:
        """Fetch, book, answer, acknowledge until `stop` is set (or, with `until_idle`, the stream is drained).

        One batch is booked at a time while the next is fetched (in flight: at most two
        batches, `max_ack_pending` on the durable). On stop the batch being booked is
        finished, answered and acknowledged; a batch fetched meanwhile is handed back.
        """
        stop = stop or asyncio.Event()
        if self._nc is None:
            await self.connect()
        fetching: asyncio.Task | None = asyncio.create_task(self._fetch())
        try:
            while True:
                waiting = asyncio.create_task(stop.wait())
                await asyncio.wait({fetching, waiting}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if not fetching.done():
                    break  # stop while waiting for messages
                try:
                    messages = fetching.result()
                except FAILOVER_ERRORS as error:
                    messages = await self._weather(error, "fetching")
                fetching = None if stop.is_set() else asyncio.create_task(self._fetch())
                try:
                    if messages:
                        await self._handle(messages)
                    elif until_idle and await self._drained():
                        break
                except FAILOVER_ERRORS as error:
                    # What was booked is in the books with the position; what was not acknowledged
                    # comes back after the ack wait and is replayed, so carrying on loses nothing.
                    await self._weather(error, "answering and acknowledging")
                if stop.is_set() or fetching is None:
                    break
        finally:
            if fetching is not None:
                await self._hand_back(fetching)
        return self.stats()

    async def _weather(self, error: Exception, doing: str) -> list:
        """A server lost or a leader being elected: note it, wait a moment, carry on (nothing to fetch now)."""
        self.counts.failovers += 1
        log.warning("NATS did not answer while %s (%s: %s): carrying on; the client reconnects to another server "
                    "of the cluster and unacknowledged messages come back", doing, type(error).__name__, error)
        await asyncio.sleep(self.settings.held_nak_delay_seconds)
        return []

    async def _fetch(self) -> list:
        return await self._sub.fetch(self.settings.batch_size_max, self.settings.fetch_timeout_seconds)

    async def _hand_back(self, fetching: asyncio.Task) -> None:
        """Messages fetched but not booked at shutdown go back at once (NAK, no delay)."""
        unbooked = []
        if not fetching.done():
            fetching.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await fetching
        elif fetching.exception() is None:
            unbooked = fetching.result()
        unbooked += self._sub.leftovers()
        with suppress(Exception):
            for message in unbooked:
                await message.nak()
            await self._nc.flush()

    async def _drained(self) -> bool:
        info = await self._js.consumer_info(self.settings.stream, self.settings.durable)
        self._observe(info)
        return info.num_pending == 0 and info.num_ack_pending == 0

    def _observe(self, info) -> None:
        self.counts.lag_messages = int(info.num_pending or 0)
        self.counts.ack_pending_messages = int(info.num_ack_pending or 0)
        self.metrics.lag.set(self.counts.lag_messages)
        self.metrics.ack_pending.set(self.counts.ack_pending_messages)

    async def _handle(self, messages: list) -> None:
        started = time.perf_counter()
        fault = self.fault
        if fault:
            fault("after_fetch")
        by_seq, delivered = {}, []
        for message in messages:
            seq, deliveries, pending = ack_numbers(message.reply)
            by_seq[seq] = message
            delivered.append(Delivered(seq, message.subject, message.data, deliveries))
        self.counts.received += len(messages)
        self.counts.lag_messages = pending
        self.metrics.lag.set(self.counts.lag_messages)
        plan = await asyncio.to_thread(book_batch, self.ledger, self.settings, self.stream_key, delivered,
                                       NOTHING_SKIPPED, fault)
        if plan.held:
            plan = plan.then(await self._book_held(delivered, plan))
        if fault:
            fault("after_commit")
        await self._answer(plan)
        if fault:
            fault("after_publish")
        await self._acknowledge([by_seq[seq] for seq in sorted(plan.acked)])
        for seq in plan.held:
            await by_seq[seq].nak(delay=self.settings.held_nak_delay_seconds)
        await self._nc.flush()
        self._count(plan, time.perf_counter() - started)
        if time.monotonic() - self._last_prune > self.settings.prune_interval_seconds:
            await self._prune()

    async def _acknowledge(self, messages: list) -> None:
        """Acknowledge booked and replayed messages, one by one, after their outcomes went out.

        One by one, not ack-all: an ack-all of a later message would also acknowledge an
        earlier one that a consumer booked and then died before publishing its outcome,
        and that outcome would never be sent. Acknowledged individually, it comes back
        (after the ack wait) and its stored outcome is republished.
        """
        for index, message in enumerate(messages):
            await message.ack()
            if self.fault and index == len(messages) // 2:
                await self._nc.flush()
                self.fault("mid_ack")

    async def _book_held(self, delivered: list[Delivered], plan: BatchPlan) -> BatchPlan:
        """Book held messages after reading the sequences before them straight from the stream.

        A message is held when an earlier one is not in this batch: it was delivered to a
        competing consumer (JetStream hands waiting pull requests messages in turn), or to
        one that died (it is redelivered only after the ack wait), or it was deleted. The
        consumer reads the missing ones by sequence and books them itself, in order; the
        consumer that holds them finds them booked (a replay) and acknowledges them. A
        sequence the stream no longer has is skipped; one that cannot be read now keeps
        the messages after it held (handed back with a delayed NAK).
        """
        held = set(plan.held)
        wanted = [seq for seq in range(plan.position + 1, max(held)) if seq not in held]
        skippable, borrowed = await self._read_missing(wanted)
        retry = [message for message in delivered if message.seq in held] + borrowed
        return await asyncio.to_thread(book_batch, self.ledger, self.settings, self.stream_key, retry, skippable,
                                       self.fault)

    async def _read_missing(self, wanted: list[int]) -> tuple[Skippable, list[Delivered]]:
        if not wanted:
            return NOTHING_SKIPPED, []
        below = 0
        if len(wanted) > GAP_READS_MAX or wanted[0] < self._first_seq_seen:
            info = await self._js.stream_info(self.settings.stream)  # expired or purged: nothing to wait for
            self._first_seq_seen = below = int(info.state.first_seq)
            wanted = [seq for seq in wanted if seq >= below]
        gone, borrowed = set(), []
        for seq in wanted[:GAP_READS_MAX]:
            try:
                found = await self._js.get_msg(self.settings.stream, seq)
            except nats.js.errors.NotFoundError:
                gone.add(seq)
                continue
            except (nats.errors.TimeoutError, nats.js.errors.APIError) as error:
                log.warning("stream %s: cannot read sequence %d now (%s); the messages after it wait",
                            self.settings.stream, seq, error)
                break
            if subject_covers(self.settings.subject, found.subject):
                borrowed.append(Delivered(seq, found.subject, found.data or b"", 0, borrowed=True))
            else:
                gone.add(seq)
        if below or gone:
            log.warning("stream %s: sequences %s were deleted from the stream before they were booked "
                        "(retention, purge or delete); they are skipped", self.settings.stream,
                        f"below {below}" if below and not gone else sorted(gone)[:20])
        return Skippable(below, frozenset(gone)), borrowed

    async def _answer(self, plan: BatchPlan) -> None:
        """Outcomes: one message per platform and batch, NDJSON in stream order; dead letters one by one."""
        s = self.settings
        lines: dict[str, list[bytes]] = {}
        for answer in sorted((*plan.replays, *plan.booked), key=lambda answer: answer.seq):
            platform = answer.platform_subject or "_unknown"
            lines.setdefault(platform, []).append(orjson.dumps(reasoned(answer.outcome.as_json(), s.outcome_lang)))
            if answer.dead_letter_reason is not None:
                await self._nc.publish(s.dead_letter_subject, answer.dead_letter_data or b"", headers={
                    "Ansinh-Reason": answer.dead_letter_reason, "Ansinh-Outcome": answer.outcome.outcome,
                    "Ansinh-Stream": s.stream, "Ansinh-Stream-Seq": str(answer.seq),
                    "Ansinh-Subject": s.subject_prefix + "." + platform})
                self.counts.dead_letters += 1
                self.metrics.dead_letters.inc()
        for platform, body in lines.items():
            await self._nc.publish(f"{s.outcome_prefix}.{platform}", b"\n".join(body) + b"\n",
                                   headers={"Ansinh-Count": str(len(body)), "Ansinh-Stream": s.stream})
        await self._nc.flush()

    def _count(self, plan: BatchPlan, seconds: float) -> None:
        for answer in plan.booked:
            self.counts.outcomes[answer.outcome.outcome] += 1
            self.metrics.messages.labels(answer.outcome.outcome).inc()
        self.counts.replayed += len(plan.replays)
        self.counts.unknown_replays += plan.unknown_replays
        self.counts.held += len(plan.held)
        self.counts.skipped += plan.skipped
        self.counts.borrowed += plan.borrowed
        self.metrics.replayed.inc(len(plan.replays))
        self.metrics.held.inc(len(plan.held))
        self.metrics.skipped.inc(plan.skipped)
        self.metrics.borrowed.inc(plan.borrowed)
        if plan.booked:
            self.counts.batches += 1
            self.metrics.batches.inc()
            self.metrics.last_batch.set(time.time())
            self.metrics.batch_seconds.observe(seconds)
        self.counts.position = max(self.counts.position, plan.position)
        self.metrics.position.set(self.counts.position)

    async def _prune(self) -> None:
        self._last_prune = time.monotonic()
        info = await self._js.consumer_info(self.settings.stream, self.settings.durable)
        self._observe(info)
        floor = int(info.ack_floor.stream_seq) if info.ack_floor else 0
        if floor:
            await asyncio.to_thread(prune_outcomes, self.ledger, self.stream_key, floor)


# -- the platform side: the reference publisher -------------------------------------------

@dataclass
class PublishResult:
    published: int = 0
    first_seq: int = 0
    last_seq: int = 0
    errors: list[str] = field(default_factory=list)


async def publish_payloads(nats_url: str, subject: str, payloads: Iterable[bytes], in_flight_max: int = 4_000,
                           ack_timeout_seconds: float = 30.0) -> PublishResult:
    """Publish each payload as one message on `subject`, in order, and wait for every PubAck."""
    return await publish_messages(nats_url, ((subject, payload) for payload in payloads), in_flight_max,
                                  ack_timeout_seconds)


async def publish_messages(nats_url: str, messages: Iterable[tuple[str, bytes]], in_flight_max: int = 4_000,
                           ack_timeout_seconds: float = 30.0) -> PublishResult:
    """Publish `(subject, payload)` pairs in order and wait for every PubAck.

    Up to `in_flight_max` messages await their acknowledgement at once (nats-py's
    asynchronous publish); order is kept because they go out on one connection. A
    message the stream refused is an error in the result, never silently dropped; a
    subject no stream captures is refused before anything is sent on it.
    """
    nc = await connect_nats(nats_url, "ansinh-publish")
    js = nc.jetstream(publish_async_max_pending=in_flight_max)
    result = PublishResult()
    checked: set[str] = set()

    def settled(future: asyncio.Future) -> None:
        if future.cancelled():
            result.errors.append("cancelled")
        elif future.exception() is not None:
            result.errors.append(str(future.exception()))
        else:
            ack = future.result()
            result.first_seq = result.first_seq or ack.seq
            result.last_seq = max(result.last_seq, ack.seq)

    try:
        for subject, payload in messages:
            if subject not in checked:
                try:
                    await js.find_stream_name_by_subject(subject)
                except nats.js.errors.NotFoundError:
                    raise StreamSetupError(f"no JetStream stream captures {subject!r}: start `ansinh consume` first "
                                           "(it creates the stream), or pass --stream NAME to create it") from None
                checked.add(subject)
            # No wait_stall: with it nats-py wraps every publish in a task, a loop turn and a socket
            # write per message (2,500 messages/s). Without it publishes pile up in the write buffer
            # and only the in-flight limit (a semaphore of PubAcks still owed) makes it wait.
            future = await js.publish_async(subject, payload)
            future.add_done_callback(settled)
            result.published += 1
        if result.published:
            await asyncio.wait_for(js.publish_async_completed(), timeout=ack_timeout_seconds)
    finally:
        await nc.close()
    return result

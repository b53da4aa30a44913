"""`ansinh consume` and `ansinh publish`: the stream consumer and the reference platform client.

Both are thin shells over `api.stream` (docs/stream.md). They are registered in
`api/cli.py` next to the other commands.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Iterator, Optional

import orjson
import typer
from rich.console import Console


if TYPE_CHECKING:  # imported where used: `ansinh --help` never loads NATS, SQLAlchemy, asyncio or the ledger
    import asyncio

    from api.stream import PublishResult, StreamConsumer

console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
FAULT_ENVIRONMENT = "ANSINH_STREAM_FAULT"  # test hook: "point:n" kills the consumer at the n-th `point`


def consume_command(
    nats_url: Annotated[str, typer.Option("--nats", help="NATS server URL; a cluster's servers comma-separated")]
    = "nats://127.0.0.1:4222",
    stream: Annotated[str, typer.Option("--stream", help="JetStream stream (created if absent)")] = "EVENTS",
    subject: Annotated[str, typer.Option("--subject", help="events subject, PREFIX.> (one platform per token)")]
    = "events.>",
    durable: Annotated[str, typer.Option("--durable", help="durable consumer name; consumers sharing it compete")]
    = "ansinh-ledger",
    batch: Annotated[int, typer.Option("--batch", help="messages per fetch and per database transaction")] = 1_000,
    db: Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL; default ANSINH_DATABASE_URL or ./ansinh.db")]
    = None,
    pack: Annotated[Optional[str], typer.Option("--pack", help="rules pack; default ANSINH_PACK or the books' own")]
    = None,
    ack_wait: Annotated[float, typer.Option("--ack-wait", help="seconds before an unacknowledged message is "
                                                               "redelivered (new durable only)")] = 30.0,
    fetch_timeout: Annotated[float, typer.Option("--fetch-timeout", help="seconds a fetch waits for messages")] = 1.0,
    retention: Annotated[str, typer.Option("--retention", help="new stream: limits, interest or workqueue")]
    = "limits",
    max_age: Annotated[float, typer.Option("--max-age", help="new stream: seconds a message is kept (0 = ever)")]
    = 7 * 86_400.0,
    replicas: Annotated[int, typer.Option("--replicas", help="new stream: copies on a cluster (1, 3 or 5)")] = 1,
    outcome_prefix: Annotated[str, typer.Option("--outcome-prefix", help="outcomes go to PREFIX.<platform>")]
    = "outcomes",
    dead_letter_subject: Annotated[str, typer.Option("--dead-letter-subject", help="subject of dead letters")]
    = "deadletter.events",
    outcome_lang: Annotated[str, typer.Option("--outcome-lang", help="language of each outcome's reason: "
                                                                     "vi (default) or en")] = "vi",
    metrics_port: Annotated[Optional[int], typer.Option("--metrics-port", help="serve Prometheus /metrics here")]
    = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="exit once every message is booked and "
                                                                  "acknowledged")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Book events from a NATS JetStream stream: exactly-once effect, outcomes on outcomes.<platform>."""
    from api.observability import configure_logging
    from api.stream import StreamConsumer, StreamMetrics, StreamSettings, StreamSetupError
    from ledger.books import Ledger
    from ledger.store import StoreError
    from rules import PackError

    configure_logging(log_level.upper())
    try:
        settings = StreamSettings(nats_url=nats_url, stream=stream, subject=subject, durable=durable,
                                  batch_size_max=batch, fetch_timeout_seconds=fetch_timeout,
                                  ack_wait_seconds=ack_wait, retention=retention, max_age_seconds=max_age,
                                  replicas=replicas, outcome_prefix=outcome_prefix,
                                  dead_letter_subject=dead_letter_subject, outcome_lang=outcome_lang)
        ledger = Ledger.open(db, pack)
    except (StreamSetupError, StoreError, PackError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    metrics = StreamMetrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    consumer = StreamConsumer(ledger, settings, metrics, fault=fault_from_environment(), name=durable)
    import asyncio

    try:
        stats = asyncio.run(_consume(consumer, until_idle))
    except StreamSetupError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    finally:
        ledger.close()
    out.print(orjson.dumps(stats).decode())


async def _consume(consumer: StreamConsumer, until_idle: bool) -> dict[str, float]:
    """Run until SIGTERM/SIGINT (the batch in hand is finished, answered and acknowledged first)."""
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    witnessing = asyncio.create_task(_witness_heads(consumer, stop)) if os.environ.get("ANSINH_WITNESS") else None
    try:
        return await consumer.run(stop, until_idle=until_idle)
    finally:
        await consumer.close()
        if witnessing is not None:
            stop.set()
            await witnessing


async def _witness_heads(consumer: StreamConsumer, stop: asyncio.Event) -> None:
    """While ANSINH_WITNESS is set: publish the chain head every ANSINH_WITNESS_SECONDS (default 60)
    and once more on the way out (docs/witness.md). A witness that cannot be reached is logged, not fatal:
    the books are fine, only the window a forger has grows until the next publish."""
    import asyncio

    from api.witness import WitnessError, WitnessTarget
    from api.witness_cli import publish_head

    log = logging.getLogger("ansinh.witness")
    try:
        target = WitnessTarget.parse(os.environ["ANSINH_WITNESS"])
        seconds = float(os.environ.get("ANSINH_WITNESS_SECONDS", "60"))
    except (WitnessError, ValueError) as error:
        log.error("ANSINH_WITNESS / ANSINH_WITNESS_SECONDS: %s; no chain heads are witnessed", error)
        return
    while True:
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        try:
            log.info(await asyncio.to_thread(publish_head, consumer.ledger, target))
        except WitnessError as error:
            log.warning("the chain head was not witnessed: %s", error)
        if stop.is_set():
            return


def fault_from_environment() -> Callable[[str], None] | None:
    """`ANSINH_STREAM_FAULT=after_commit:3`: SIGKILL this process the 3rd time it reaches `after_commit`.

    For the crash tests only (points: after_fetch, before_commit, after_commit,
    after_publish, mid_ack). A real kill, not an exception: nothing gets to clean up.
    """
    spec = os.environ.get(FAULT_ENVIRONMENT)
    if not spec:
        return None
    point, _, count = spec.partition(":")
    remaining = {point: int(count or 1)}

    def fault(reached: str) -> None:
        if reached in remaining:
            remaining[reached] -= 1
            if remaining[reached] <= 0:
                logging.getLogger("ansinh.stream").warning("fault injection: SIGKILL at %s", reached)
                os.kill(os.getpid(), signal.SIGKILL)

    return fault


def publish_command(
    file: Annotated[str, typer.Argument(help="NDJSON (- for stdin), .csv or .parquet of events")],
    subject: Annotated[str, typer.Option("--subject", help="events.<platform>")],
    nats_url: Annotated[str, typer.Option("--nats", help="NATS server URL")] = "nats://127.0.0.1:4222",
    stream: Annotated[Optional[str], typer.Option("--stream", help="create this stream on PREFIX.> if no stream "
                                                                   "captures the subject")] = None,
    mapping: Annotated[Optional[Path], typer.Option("--map", help="column mapping YAML applied to each row")] = None,
    in_flight: Annotated[int, typer.Option("--in-flight", help="messages awaiting the server's ack at once")]
    = 4_000,
) -> None:
    """Publish events, one JSON object per message, on a subject (the reference platform client)."""
    from api.stream import StreamSetupError

    if "." not in subject or any(c in subject for c in "*> "):
        console.print(f"[red]error:[/red] --subject must be a concrete subject such as events.grab, got {subject!r}")
        raise typer.Exit(1)
    if file != "-" and not Path(file).is_file():
        console.print(f"[red]error:[/red] no such file: {file}")
        raise typer.Exit(1)
    loaded = None
    if mapping is not None:
        from ledger.mapping import MappingError, load_mapping

        try:
            loaded = load_mapping(mapping)
        except MappingError as error:
            for problem in error.errors:
                console.print(f"[red]error:[/red] {mapping}: {problem}")
            raise typer.Exit(1)
    import asyncio

    started = time.perf_counter()
    try:
        result = asyncio.run(_publish(file, subject, nats_url, stream, loaded, in_flight))
    except StreamSetupError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    except (OSError, ValueError) as error:
        console.print(f"[red]error:[/red] {type(error).__name__}: {error}")
        raise typer.Exit(1)
    elapsed = time.perf_counter() - started
    out.print(orjson.dumps({"published": result.published, "first_seq": result.first_seq,
                            "last_seq": result.last_seq, "errors": len(result.errors),
                            "seconds": round(elapsed, 3)}).decode())
    for error in result.errors[:10]:
        console.print(f"[red]error:[/red] {error}")
    if result.errors:
        raise typer.Exit(1)


async def _publish(file: str, subject: str, nats_url: str, stream: str | None, mapping, in_flight: int
                   ) -> PublishResult:
    from api.stream import StreamSettings, connect_nats, ensure_stream, publish_payloads

    if stream is not None:
        prefix = subject.rsplit(".", 1)[0]
        nc = await connect_nats(nats_url, "ansinh-publish")
        try:
            await ensure_stream(nc.jetstream(), StreamSettings(nats_url=nats_url, stream=stream,
                                                               subject=prefix + ".>"))
        finally:
            await nc.close()
    return await publish_payloads(nats_url, subject, payloads(file, mapping), in_flight_max=in_flight)


def payloads(file: str, mapping=None) -> Iterator[bytes]:
    """Message bodies: NDJSON lines verbatim (even a broken one: the consumer must cope), else each row as JSON."""
    suffix = Path(file).suffix.lower() if file != "-" else ""
    if mapping is None and suffix not in (".csv", ".parquet", ".pq"):
        stream = sys.stdin.buffer if file == "-" else open(file, "rb", buffering=1 << 20)
        try:
            for raw in stream:
                line = raw.strip()
                if line:
                    yield line
        finally:
            if file != "-":
                stream.close()
        return
    from ledger.ingest import MALFORMED
    from ledger.readers import read_events

    for _line, item in read_events(file, mapping):
        if item is MALFORMED:
            continue  # a CSV row wider than its header, or a mapped NDJSON line that is not JSON: not sent
        yield orjson.dumps(item)


def main() -> None:
    """`python -m api.stream_cli consume …`: the same commands without loading the rest of the CLI."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)
    app.command("consume")(consume_command)
    app.command("publish")(publish_command)
    app()


if __name__ == "__main__":
    main()

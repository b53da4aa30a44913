"""The outside witness: publish chain heads and close anchors, and read them back (docs/witness.md).

A witness is named by one string (`--witness`, or ANSINH_WITNESS):

- `nats://HOST:PORT[,HOST:PORT…][/STREAM][?replicas=N]` — a NATS JetStream stream
  (default `ANSINH_WITNESS`) on subject `witness.<STREAM>`, created with `deny_delete`
  and `deny_purge` (the server then refuses to remove any record, and refuses to lift
  either flag), no age, count or size limit, and N replicas (default 1; 3 in production);
- `file:///PATH` or a plain path — a file of one JSON record a line, appended with
  fsync and mode 0600, which the operator ships elsewhere (a log collector, WORM storage).

Publishing refuses a stream that could lose records (either flag missing, or a limit
set): a witness that can be trimmed proves nothing. Reading reports a stream or file
whose records are not all there (sequence gaps, unreadable lines) as problems of the
`witness` check, never silently. The comparison itself is `ledger.witness`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import parse_qs

from ledger.witness import WitnessFormatError, WitnessRecord

DEFAULT_STREAM = "ANSINH_WITNESS"
WITNESS_ENVIRONMENT = "ANSINH_WITNESS"
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_READ_TIMEOUT_SECONDS = 10.0


class WitnessError(Exception):
    """The witness cannot be reached, created, written or read: one line naming why."""


@dataclass(frozen=True)
class WitnessTarget:
    """Where witness records go and come from."""

    kind: str  # "nats" or "file"
    servers: tuple[str, ...] = ()
    stream: str = DEFAULT_STREAM
    replicas: int = 1
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> "WitnessTarget":
        text = text.strip()
        if not text:
            raise WitnessError("the witness is empty: give nats://HOST:PORT[/STREAM] or a file path")
        scheme, separator, rest = text.partition("://")
        if not separator:
            return cls("file", path=Path(text))
        if scheme == "file":
            return cls("file", path=Path(rest))
        if scheme not in ("nats", "tls"):
            raise WitnessError(f"a witness is nats://HOST:PORT[/STREAM] or a file path, not {scheme}://…")
        rest, _question, options = rest.partition("?")
        hosts, _slash, stream = rest.partition("/")
        stream = stream.strip("/") or DEFAULT_STREAM
        if not _STREAM_NAME.fullmatch(stream):
            raise WitnessError(f"witness stream name {stream[:70]!r}: letters, digits, '-' and '_' only")
        if not hosts:
            raise WitnessError("the witness URL names no NATS server")
        replicas_text = parse_qs(options).get("replicas", ["1"])[-1]
        if replicas_text not in ("1", "3", "5"):
            raise WitnessError(f"witness replicas must be 1, 3 or 5, got {replicas_text!r}")
        servers = tuple(f"{scheme}://{host.strip()}" for host in hosts.split(",") if host.strip())
        return cls("nats", servers=servers, stream=stream, replicas=int(replicas_text))

    @property
    def subject(self) -> str:
        return f"witness.{self.stream}"

    def describe(self) -> str:
        """For messages: no credentials."""
        if self.kind == "file":
            return str(self.path)
        hosts = ",".join(server.rsplit("@", 1)[-1].split("://")[-1] for server in self.servers)
        return f"nats://{hosts}/{self.stream}"


# -- NATS ---------------------------------------------------------------------------------
# nats and asyncio are imported in the functions that talk to NATS: `close` and `verify` import
# this module, and a run without a NATS witness should not pay ~0.1 s to load them.

def stream_config_problems(config, subject: str) -> list[str]:
    """What makes a stream unfit to witness: anything that lets a record be removed."""
    from nats.js.api import RetentionPolicy

    found = []
    if not config.deny_delete:
        found.append("it allows deleting messages (deny_delete is off)")
    if not config.deny_purge:
        found.append("it allows purging (deny_purge is off)")
    for name, value in (("max_age", config.max_age), ("max_msgs", config.max_msgs), ("max_bytes", config.max_bytes),
                        ("max_msgs_per_subject", config.max_msgs_per_subject)):
        if value not in (None, 0, -1):
            found.append(f"it drops old records ({name} = {value})")
    if config.retention not in (None, RetentionPolicy.LIMITS):
        found.append(f"its retention is {config.retention}, not limits (records would go once read)")
    if list(config.subjects or []) != [subject]:
        found.append(f"it captures {config.subjects}, not just {subject!r}")
    return found


async def _connect(target: WitnessTarget):
    from api.stream import StreamSetupError, connect_nats

    try:
        return await connect_nats(",".join(target.servers), "ansinh-witness")
    except StreamSetupError as error:
        raise WitnessError(f"witness {target.describe()}: {error}") from None


async def ensure_witness_stream(js, target: WitnessTarget):
    """The witness stream's info, created if absent; WitnessError if it exists but could lose records."""
    import nats.js.errors
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    try:
        info = await js.stream_info(target.stream)
    except nats.js.errors.NotFoundError:
        config = StreamConfig(name=target.stream, subjects=[target.subject], retention=RetentionPolicy.LIMITS,
                              storage=StorageType.FILE, num_replicas=target.replicas, max_age=0, max_msgs=-1,
                              max_bytes=-1, discard=DiscardPolicy.NEW, deny_delete=True, deny_purge=True,
                              description="ansinh witness: chain heads and close anchors; never deleted or purged")
        try:
            info = await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(target.stream)  # created meanwhile by another publisher
        except nats.js.errors.APIError as error:
            raise WitnessError(f"cannot create the witness stream {target.describe()}: {error.description}") from None
    problems = stream_config_problems(info.config, target.subject)
    if problems:
        raise WitnessError(f"the witness stream {target.describe()} is unfit: {'; '.join(problems)}. "
                           "Use a new stream name (it is created with deny_delete and deny_purge)")
    return info


async def _publish_nats(target: WitnessTarget, records: Sequence[WitnessRecord]) -> int:
    import nats.errors
    import nats.js.errors

    nc = await _connect(target)
    try:
        js = nc.jetstream()
        await ensure_witness_stream(js, target)
        last = await _last_record(js, target)
        published = 0
        for record in records:
            if last is not None and last.to_json() == record.to_json():
                continue  # the same head again (a cron run with nothing new): not a new record
            message_id = f"{record.kind}-{record.block_id}-{record.block_hash.hex()[:32]}"
            try:
                await js.publish(target.subject, record.to_json(), timeout=10, stream=target.stream,
                                 headers={"Nats-Msg-Id": message_id})
            except (nats.errors.TimeoutError, nats.js.errors.APIError, nats.errors.NoRespondersError) as error:
                raise WitnessError(f"the witness {target.describe()} did not store {record.label()}: "
                                   f"{type(error).__name__} {getattr(error, 'description', '') or error}") from None
            published += 1
            last = record
        return published
    finally:
        await nc.close()


async def _last_record(js, target: WitnessTarget) -> WitnessRecord | None:
    import nats.js.errors

    try:
        message = await js.get_last_msg(target.stream, target.subject)
    except nats.js.errors.NotFoundError:
        return None
    try:
        return WitnessRecord.parse(message.data or b"", "the last record")
    except WitnessFormatError:
        return None


async def _read_nats(target: WitnessTarget) -> tuple[list[WitnessRecord], list[str]]:
    import nats.errors
    import nats.js.errors
    from nats.js.api import DeliverPolicy

    nc = await _connect(target)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(target.stream)
        except nats.js.errors.NotFoundError:
            raise WitnessError(f"there is no witness stream {target.describe()}: nothing to check the books "
                               "against (was it deleted?)") from None
        problems = [f"the witness stream {problem}" for problem in stream_config_problems(info.config, target.subject)]
        state = info.state
        first, last, count = int(state.first_seq), int(state.last_seq), int(state.messages)
        if count and (first != 1 or count != last - first + 1):
            problems.append(f"the witness stream holds {count} records of sequences {first}–{last}: "
                            f"{last - count} records were removed")
        records: list[WitnessRecord] = []
        if not count:
            return records, problems
        subscription = await js.subscribe(target.subject, stream=target.stream, ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.ALL)
        try:
            seq = 0
            while seq < last:
                try:
                    message = await subscription.next_msg(timeout=_READ_TIMEOUT_SECONDS)
                except nats.errors.TimeoutError:
                    problems.append(f"the witness stream stopped answering after sequence {seq} of {last}")
                    break
                seq = message.metadata.sequence.stream
                try:
                    records.append(WitnessRecord.parse(message.data, f"{target.stream} sequence {seq}"))
                except WitnessFormatError as error:
                    problems.append(str(error))
        finally:
            await subscription.unsubscribe()
        return records, problems
    finally:
        await nc.close()


# -- a file ------------------------------------------------------------------------------

def _publish_file(target: WitnessTarget, records: Sequence[WitnessRecord]) -> int:
    path = target.path
    last = _last_file_line(path)
    lines = []
    for record in records:
        line = record.to_json()
        if line != last:
            lines.append(line + b"\n")
            last = line
    if not lines:
        return 0
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as error:
        raise WitnessError(f"cannot open the witness file {path}: {error.strerror}") from None
    try:
        os.write(descriptor, b"".join(lines))
        os.fsync(descriptor)
    except OSError as error:
        raise WitnessError(f"cannot append to the witness file {path}: {error.strerror}") from None
    finally:
        os.close(descriptor)
    return len(lines)


def _last_file_line(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 4096))
            tail = file.read().rstrip(b"\n")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise WitnessError(f"cannot read the witness file {path}: {error.strerror}") from None
    return tail.rsplit(b"\n", 1)[-1] if tail else None


def _read_file(target: WitnessTarget) -> tuple[list[WitnessRecord], list[str]]:
    try:
        data = target.path.read_bytes()
    except FileNotFoundError:
        raise WitnessError(f"there is no witness file {target.path}: nothing to check the books against") from None
    except OSError as error:
        raise WitnessError(f"cannot read the witness file {target.path}: {error.strerror}") from None
    records, problems = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(WitnessRecord.parse(line, f"{target.path.name} line {number}"))
        except WitnessFormatError as error:
            problems.append(str(error))
    return records, problems


# -- the two operations ----------------------------------------------------------------------

def publish(target: WitnessTarget, records: Sequence[WitnessRecord]) -> int:
    """Append `records` to the witness; returns how many were new (an unchanged head is not repeated)."""
    if target.kind == "file":
        return _publish_file(target, records)
    import asyncio

    return asyncio.run(_publish_nats(target, records))


def read(target: WitnessTarget) -> tuple[list[WitnessRecord], list[str]]:
    """Every record of the witness, and what is wrong with the witness itself (gaps, bad records)."""
    if target.kind == "file":
        return _read_file(target)
    import asyncio

    return asyncio.run(_read_nats(target))

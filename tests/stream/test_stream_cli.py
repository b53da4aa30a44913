"""`ansinh publish` and `ansinh consume`, driven in-process against the real NATS server."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import orjson
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.ledger.factories import event, refund
from tests.stream.streamdata import stream_messages, write_ndjson

runner = CliRunner()


def test_publish_then_consume_books_a_file_and_prints_the_counts(names, nats_url, tmp_path):
    events = tmp_path / "grab.ndjson"
    events.write_bytes(orjson.dumps(event("g-1")) + b"\n\n" + b"{broken\n" + orjson.dumps(event("g-1")) + b"\n"
                       + orjson.dumps(refund("g-1r", "g-1", 100_000)) + b"\n")
    published = runner.invoke(app, ["publish", str(events), "--subject", f"{names.prefix}.grab", "--nats", nats_url,
                                    "--stream", names.stream])
    assert published.exit_code == 0, published.output
    assert orjson.loads(published.stdout)["published"] == 4  # the blank line is not a message; the broken one is
    db = f"sqlite:///{tmp_path / 'books.db'}"
    consumed = runner.invoke(app, ["consume", *names.cli_arguments(nats_url), "--db", db, "--until-idle",
                                   "--fetch-timeout", "0.2", "--log-level", "WARNING"])
    assert consumed.exit_code == 0, consumed.output
    stats = orjson.loads(consumed.stdout.strip().splitlines()[-1])
    assert (stats["outcome_accepted"], stats["outcome_duplicate"], stats["outcome_malformed"]) == (2, 1, 1)
    assert stats["dead_letters"] == 1 and stats["position"] == 4
    settlement = runner.invoke(app, ["settlement", "2026-02", "--json", "--db", db])
    assert orjson.loads(settlement.stdout)["platforms"]["grab"] == {"si": 0, "oa": 0, "ui": 0}  # fully refunded


def test_publish_refuses_a_subject_no_stream_captures(names, nats_url, tmp_path):
    events = tmp_path / "e.ndjson"
    events.write_bytes(orjson.dumps(event("g-1")) + b"\n")
    result = runner.invoke(app, ["publish", str(events), "--subject", f"{names.prefix}.grab", "--nats", nats_url])
    assert result.exit_code == 1
    assert f"no JetStream stream captures '{names.prefix}.grab'" in " ".join(result.output.split())


def test_publish_applies_a_mapping_to_each_csv_row(names, nats_url, tmp_path):
    (tmp_path / "export.csv").write_text("ref,cccd,fare,at\nB-1,079203001234,25.5,2026-02-10 09:00\n")
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({
        "mapping": 1, "columns": {"ref": "event_id", "cccd": "worker_id", "fare": "amount", "at": "occurred_at"},
        "constants": {"platform": "be", "kind": "delivery"}, "amount": {"multiplier": "1000"},
        "occurred_at": {"format": "%Y-%m-%d %H:%M", "time_zone": "Asia/Ho_Chi_Minh"}}))
    result = runner.invoke(app, ["publish", str(tmp_path / "export.csv"), "--subject", f"{names.prefix}.be",
                                 "--map", str(tmp_path / "map.yaml"), "--nats", nats_url, "--stream", names.stream])
    assert result.exit_code == 0, result.output

    async def first_message():
        import nats

        nc = await nats.connect(nats_url)
        try:
            return orjson.loads((await nc.jetstream().get_msg(names.stream, 1)).data)
        finally:
            await nc.close()

    assert asyncio.run(first_message()) == {"event_id": "B-1", "worker_id": "079203001234", "amount": 25_500,
                                            "occurred_at": "2026-02-10T09:00:00+07:00", "platform": "be",
                                            "kind": "delivery"}


def test_consume_refuses_a_stream_that_captures_other_subjects(names, nats_url, tmp_path):
    async def foreign_stream():
        import nats

        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(name=names.stream, subjects=[f"other{names.tag}.>"])
        finally:
            await nc.close()

    asyncio.run(foreign_stream())
    result = runner.invoke(app, ["consume", *names.cli_arguments(nats_url), "--db",
                                 f"sqlite:///{tmp_path / 'books.db'}", "--until-idle"])
    assert result.exit_code == 1
    assert f"it captures 'other{names.tag}.>', outside '{names.subject}'" in " ".join(result.output.split())


def test_sigterm_finishes_the_batch_in_hand_and_leaves_nothing_booked_unacknowledged(names, nats_url, tmp_path):
    """Graceful shutdown: exit 0, and every booked message is acknowledged (the server's ack floor = position)."""
    messages = stream_messages(seed=5, count=3_000)
    path = write_ndjson(messages, tmp_path / "many.ndjson")
    db = f"sqlite:///{tmp_path / 'books.db'}"
    published = runner.invoke(app, ["publish", str(path), "--subject", f"{names.prefix}.grab", "--nats", nats_url,
                                    "--stream", names.stream])
    assert published.exit_code == 0, published.output
    process = subprocess.Popen([sys.executable, "-m", "api.stream_cli", "consume", *names.cli_arguments(nats_url),
                                "--db", db, "--pack", "vn-pilot", "--batch", "20", "--log-level", "WARNING"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    deadline = time.monotonic() + 30
    position = 0
    while time.monotonic() < deadline and not 0 < position < 2_000:
        time.sleep(0.05)
        position = _position(db)
    process.send_signal(signal.SIGTERM)
    out, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors.decode()[-2000:]
    stats = orjson.loads(out.strip().splitlines()[-1])
    assert 0 < stats["position"] < 3_000

    async def acked_through():
        import nats

        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().consumer_info(names.stream, "ledger")
            return info.ack_floor.stream_seq
        finally:
            await nc.close()

    assert asyncio.run(acked_through()) == stats["position"] == _position(db)


def _position(url: str) -> int:
    import sqlite3

    try:
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=5) as conn:
            rows = conn.execute("SELECT max(last_seq) FROM stream_position").fetchall()
    except sqlite3.OperationalError:
        return 0  # not created yet
    return int(rows[0][0] or 0)

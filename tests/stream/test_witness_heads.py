"""`ansinh consume` with ANSINH_WITNESS set publishes the chain head it leaves behind (docs/witness.md)."""
from __future__ import annotations

from typer.testing import CliRunner

from api.cli import app
from api.witness import WitnessTarget, read
from ledger.books import Ledger
from ledger.store import consistent_snapshot
from ledger.witness import current_head
from tests.conftest import FixedClock
from tests.stream.streamdata import publish, stream_messages

runner = CliRunner()


def test_the_consumer_witnesses_the_chain_head_it_booked_when_asked_to(names, nats_url, tmp_path, monkeypatch):
    import asyncio

    asyncio.run(publish(nats_url, names, stream_messages(seed=3, count=40)))
    witness = tmp_path / "heads.ndjson"
    monkeypatch.setenv("ANSINH_WITNESS", str(witness))
    monkeypatch.setenv("ANSINH_WITNESS_SECONDS", "30")
    db = f"sqlite:///{tmp_path / 'books.db'}"
    consumed = runner.invoke(app, ["consume", *names.cli_arguments(nats_url), "--db", db, "--pack", "vn-pilot",
                                   "--until-idle", "--fetch-timeout", "0.2", "--log-level", "WARNING"])
    assert consumed.exit_code == 0, consumed.output
    records, problems = read(WitnessTarget.parse(str(witness)))
    ledger = Ledger.open(db, pack="vn-pilot", clock=FixedClock())
    try:
        with consistent_snapshot(ledger) as conn:
            head = current_head(conn)
    finally:
        ledger.close()
    assert problems == [] and [(r.kind, r.block_id, r.block_hash) for r in records] == [
        ("head", head.block_id, head.block_hash)]
    verified = runner.invoke(app, ["verify", "--db", db])  # ANSINH_WITNESS also makes verify check it
    assert verified.exit_code == 0 and "ok   witness" in verified.stdout, verified.output

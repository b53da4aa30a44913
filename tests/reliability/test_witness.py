"""The outside witness (issue 14, item 2): a rewrite of every hash after the last close passes
`verify` and `--from-anchor`, and is caught only by the chain heads a witness kept.

The books are those of test_tamper (February and March closed, April open, several
blocks a month), copied per test without guards. The witness is a NATS JetStream
stream of its own per test (real server on 127.0.0.1:4222, started if need be, skipped
loudly when absent — a failure under CI=true), or a file.
"""
from __future__ import annotations

import asyncio
import os
import uuid

import nats
import nats.js.errors
import pytest
from nats.js.api import StreamConfig
from typer.testing import CliRunner

from api.cli import app
from api.witness import WitnessError, WitnessTarget, ensure_witness_stream, publish, read
from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.store import consistent_snapshot, query
from ledger.verify import verify
from ledger.witness import WitnessRecord, check_witness, close_record, current_head
from tests.reliability.crash import open_books
from tests.reliability.test_tamper import (POSITIONS, _month_items, anchors_of, copy, entry_at,  # noqa: F401
                                           problems, rehash_entry, rewrite_every_block_hash, sql, template)
from tests.stream.conftest import NATS_URL, _delete_stream, nats_url  # noqa: F401 - nats_url: a real NATS or a skip

runner = CliRunner()


@pytest.fixture
def stream_witness(nats_url):
    """A witness stream of this test's own, deleted afterwards (deny-delete covers messages, not the stream)."""
    name = f"W_{uuid.uuid4().hex[:10]}"
    yield f"{nats_url}/{name}"
    asyncio.run(_delete_stream(NATS_URL, name))


@pytest.fixture(params=["nats", "file"])
def witness(request, tmp_path):
    if request.param == "file":
        return str(tmp_path / "witness.ndjson")
    return request.getfixturevalue("stream_witness")


def every_block_as_a_head(ledger) -> list[WitnessRecord]:
    """What a `witness publish` after every block would have kept."""
    with consistent_snapshot(ledger) as conn:
        return [WitnessRecord("head", int(block_id), bytes(digest), None, str(at))
                for block_id, digest, at in query(conn, "SELECT id, block_hash, recorded_at FROM block ORDER BY id")]


def closes(ledger, *months: int) -> list[WitnessRecord]:
    with consistent_snapshot(ledger) as conn:
        return [close_record(conn, month) for month in months]


def witness_check(ledger, witness: str):
    target = WitnessTarget.parse(witness)
    records, read_problems = read(target)
    return check_witness(ledger, records, target.describe(), read_problems)


def backdate_in_the_open_month_and_rewrite_every_hash(ledger) -> tuple[int, int]:
    """A forger's whole job after the last close: change a row, rehash it and every block after it."""
    target = entry_at(ledger, POSITIONS["an event in the open month"])
    sql(ledger, "UPDATE journal SET occurred_at = '2026-04-01T01:00:00.000000Z' WHERE id = :e", e=target)
    rehash_entry(ledger, target)
    rewrite_every_block_hash(ledger)
    block = sql(ledger, "SELECT block_id FROM journal WHERE id = :e", e=target)[0][0]
    return target, block


def test_a_rewrite_of_every_hash_after_the_last_close_passes_verify_and_the_anchors_but_not_the_witness(
        copy, witness):  # noqa: F811
    ledger, anchors = copy
    assert publish(WitnessTarget.parse(witness), [*closes(ledger, 202602, 202603), *every_block_as_a_head(ledger)])
    assert witness_check(ledger, witness).problem is None
    target, block = backdate_in_the_open_month_and_rewrite_every_hash(ledger)
    assert problems(ledger, anchors_of(anchors)) == []  # in-book checks and both anchors: all pass
    check = witness_check(ledger, witness)
    assert check.problem.startswith(f"block {block} differs from the witness (a chain head at block {block}")
    assert f"since block {block - 1}, the last witnessed block that still matches" in check.problem
    assert "rewritten together with their hashes" in check.problem
    last_block = sql(ledger, "SELECT max(id) FROM block")[0][0]
    assert check.problem.endswith(f"{last_block - block + 1} of {last_block + 2} witnessed records differ")
    first, last = sql(ledger, "SELECT first_entry_id, last_entry_id FROM block WHERE id = :b", b=block)[0]
    assert f"(entries {first}–{last})" in check.problem and first <= target <= last


def test_with_only_the_last_head_witnessed_the_change_is_placed_after_the_last_witnessed_close(
        copy, witness):  # noqa: F811
    ledger, _anchors = copy
    march = closes(ledger, 202603)[0]
    with consistent_snapshot(ledger) as conn:
        head = current_head(conn)
    publish(WitnessTarget.parse(witness), [march, head])
    _target, _block = backdate_in_the_open_month_and_rewrite_every_hash(ledger)
    check = witness_check(ledger, witness)
    assert check.problem.startswith(f"block {head.block_id} differs from the witness (a chain head")
    assert f"since block {march.block_id}, the last witnessed block that still matches: " \
           f"blocks {march.block_id + 1}–{head.block_id}" in check.problem


def test_books_shorter_than_the_witness_are_caught_as_removed_blocks(copy, tmp_path):  # noqa: F811
    ledger, _anchors = copy
    witness = str(tmp_path / "w.ndjson")
    head = every_block_as_a_head(ledger)[-1]
    publish(WitnessTarget.parse(witness), [head._replace(block_id=head.block_id + 1)])
    check = witness_check(ledger, witness)
    assert check.problem.startswith(f"block {head.block_id + 1} was witnessed")
    assert f"the books end at block {head.block_id}: blocks were removed" in check.problem


def test_a_changed_close_record_is_caught_by_its_witnessed_anchor(copy, tmp_path):  # noqa: F811
    ledger, _anchors = copy
    witness = str(tmp_path / "w.ndjson")
    publish(WitnessTarget.parse(witness), closes(ledger, 202602, 202603))
    sql(ledger, "UPDATE month_close SET anchor_hash = :h WHERE month = 202603", h=b"\x07" * 32)
    problem = witness_check(ledger, witness).problem
    assert problem.startswith("the close of 2026-03 at block")
    assert "the close record of 2026-03 holds anchor 0707" in problem


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_stream_witness_refuses_purge_and_delete_and_keeps_its_flags(database_url, stream_witness):
    ledger = open_books(database_url)
    ingest_batch(ledger, list(enumerate(_month_items("2026-02", 4, "w"), start=1)))
    with consistent_snapshot(ledger) as conn:
        head = current_head(conn)
    ledger.close()
    target = WitnessTarget.parse(stream_witness)
    assert publish(target, [head]) == 1
    assert publish(target, [head]) == 0  # an unchanged head is not a new record

    async def attack() -> list[str]:
        nc = await nats.connect(NATS_URL, connect_timeout=3)
        js = nc.jetstream()
        refused = []
        try:
            info = await js.stream_info(target.stream)
            assert (info.config.deny_delete, info.config.deny_purge, info.config.max_age) == (True, True, 0)
            for name, attempt in (("purge", js.purge_stream(target.stream)),
                                  ("delete", js.delete_msg(target.stream, 1)),
                                  ("lift", js.update_stream(StreamConfig(**{**info.config.as_dict(),
                                                                           "deny_delete": False,
                                                                           "deny_purge": False})))):
                try:
                    await attempt
                except nats.js.errors.APIError as error:
                    refused.append(f"{name}: {error.code}")
            assert (await js.stream_info(target.stream)).state.messages == 1
        finally:
            await nc.close()
        return refused

    refused = asyncio.run(attack())
    assert [line.split(":")[0] for line in refused] == ["purge", "delete", "lift"], refused
    records, read_problems = read(target)
    assert (records[0].block_id, records[0].block_hash, read_problems) == (head.block_id, head.block_hash, [])


def test_an_existing_stream_that_can_lose_records_is_refused_as_a_witness(stream_witness):
    target = WitnessTarget.parse(stream_witness)

    async def make_and_use() -> str:
        nc = await nats.connect(NATS_URL, connect_timeout=3)
        try:
            await nc.jetstream().add_stream(StreamConfig(name=target.stream, subjects=[target.subject], max_age=60))
            with pytest.raises(WitnessError) as refused:
                await ensure_witness_stream(nc.jetstream(), target)
            return str(refused.value)
        finally:
            await nc.close()

    message = asyncio.run(make_and_use())
    assert "deny_delete is off" in message and "deny_purge is off" in message and "max_age = 60" in message


def test_a_file_witness_with_a_damaged_line_or_no_records_fails_the_check(copy, tmp_path):  # noqa: F811
    ledger, _anchors = copy
    path = tmp_path / "w.ndjson"
    publish(WitnessTarget.parse(str(path)), every_block_as_a_head(ledger)[:3])
    assert os.stat(path).st_mode & 0o777 == 0o600  # a record names no person, but nobody else writes it
    lines = path.read_bytes().splitlines()
    path.write_bytes(lines[0] + b"\n" + lines[1][:-9] + b"\n" + lines[2] + b"\n")
    check = witness_check(ledger, str(path))
    assert check.problem.startswith("w.ndjson line 2: not a witness record")
    path.write_bytes(b"")
    assert witness_check(ledger, str(path)).problem == ("the witness holds no records: there is nothing to check "
                                                        "the books against")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_close_publish_and_verify_with_a_witness_on_the_command_line(database_url, tmp_path, monkeypatch):
    from tests.reliability.oracle import SECRET

    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    monkeypatch.delenv("ANSINH_WITNESS", raising=False)
    witness = str(tmp_path / "witness.ndjson")
    ledger = open_books(database_url)
    ingest_batch(ledger, list(enumerate(_month_items("2026-02", 6, "c"), start=1)))
    ledger.close()
    closed = runner.invoke(app, ["close", "2026-02", "--db", database_url, "--witness", witness])
    assert closed.exit_code == 0, closed.output
    assert "witnessed the anchor of 2026-02 (block 2)" in closed.stdout
    ledger = open_books(database_url)
    ingest_batch(ledger, list(enumerate(_month_items("2026-03", 3, "d"), start=1)))
    ledger.close()
    published = runner.invoke(app, ["witness", "publish", "--db", database_url, "--witness", witness])
    assert published.exit_code == 0 and "witnessed the chain head, block 3" in published.stdout
    good = runner.invoke(app, ["verify", "--db", database_url, "--witness", witness])
    assert good.exit_code == 0 and "ok   witness" in good.stdout, good.output
    shown = runner.invoke(app, ["witness", "show", "--witness", witness])
    assert shown.exit_code == 0 and "2 records at" in shown.stdout
    sql_ledger = open_books(database_url)
    with sql_ledger.engine.begin() as conn:  # a forger with the database: guards off, one row and every hash
        raw = conn.connection.driver_connection
        for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            raw.execute(f"DROP TRIGGER {name}")
    sql(sql_ledger, "UPDATE journal SET occurred_at = '2026-03-01T01:00:00.000000Z' WHERE block_id = 3")
    for (entry_id,) in sql(sql_ledger, "SELECT id FROM journal WHERE block_id = 3"):
        rehash_entry(sql_ledger, entry_id)
    rewrite_every_block_hash(sql_ledger)
    assert [check.problem for check in verify(sql_ledger) if check.problem] == []
    sql_ledger.close()
    caught = runner.invoke(app, ["verify", "--db", database_url, "--witness", witness])
    assert caught.exit_code == 1 and "FAIL witness: block 3 differs from the witness" in caught.stdout
    missing = runner.invoke(app, ["verify", "--db", database_url, "--witness", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "there is no witness file" in missing.stderr
    bad = runner.invoke(app, ["verify", "--db", database_url, "--witness", "http://example.org/x"])
    assert bad.exit_code == 2 and "--witness" in bad.stderr and "Traceback" not in bad.output

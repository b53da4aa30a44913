"""Backup, restore and export of the whole book; reconciliation with Beancount, an independent tool.

A restored copy must verify exactly as the original and give identical statements,
settlements and chain head; a backup taken while writers commit is a consistent
instant. The Parquet export must recompute to the same hash chain and balances, and
carry no national id. The Beancount journal must pass `bean-check`, and Beancount's
own balances — per worker, scheme and payer, per platform, per state scheme, per
month — must equal ours, also when written as `balance` assertions that bean-check
itself enforces.
"""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from api.cli import app
from ledger.backup import BackupError, backup, restore
from ledger.close import close_month, import_tiers
from ledger.export import beancount_account, export_beancount, export_parquet
from ledger.ingest import ingest_batch, ingest_stream
from ledger.postings import SEALED_TABLES, block_hash, entry_hash, identity_digests_by_block, occurred_text
from ledger.readers import read_events
from ledger.reports import months_overview, settlement, statements
from ledger.store import query
from ledger.verify import verify
from simulations.synthetic_events import generate_events
from tests.conftest import PG_ADMIN_URL
from tests.reliability.crash import open_books
from tests.reliability.oracle import SECRET, booked_months, write_workload

runner = CliRunner()
BEAN_CHECK = Path(sys.executable).with_name("bean-check")


@pytest.fixture
def books(database_url, tmp_path):
    """Books with March ingested, tiered and closed, and April open; the ledger and its events."""
    events_file, tiers_file, _items = write_workload(tmp_path, seed=31, month="2026-03", workers=200, events=3_000)
    ledger = open_books(database_url)
    for _chunk in ingest_stream(ledger, read_events(str(events_file)), chunk_size=1_000):
        pass
    import_tiers(ledger, tiers_file)
    close_month(ledger, "2026-03")
    april = [item for item in generate_events(seed=32, month="2026-04", workers=100, events=800)
             if isinstance(item, dict)]
    ingest_batch(ledger, list(enumerate(april, start=1)))
    yield ledger
    ledger.close()


def everything(ledger) -> dict:
    """Every figure a reader of the books can get, for comparing two copies."""
    months = booked_months(ledger)
    with ledger.engine.connect() as conn:
        head = query(conn, "SELECT chain_head_hash, block_count FROM ledger_state")[0]
        conn.rollback()
    return {"verify": [(c.name, c.problem, c.detail) for c in verify(ledger, stop_at_first=False)],
            "head": (bytes(head[0]).hex(), head[1]),
            "months": months_overview(ledger),
            "settlements": {month: settlement(ledger, month) for month in months},
            "statements": {month: list(statements(ledger, month)) for month in months}}


@pytest.fixture
def fresh_target(database_url, tmp_path, books):
    """Where to restore: a new SQLite file; on PostgreSQL the source's schema, emptied first.

    A pg_dump archive names its schema, so PostgreSQL books come back under the same schema
    name: here the test's own schema, dropped once the figures to compare are taken (a new
    database per restore would cost a cluster checkpoint each). Every other restore finds
    the schema already there and empty, as `public` is in a new database.
    """
    if database_url.startswith("sqlite"):
        yield lambda: f"sqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.db'}"
        return
    schema = database_url.rsplit("%3D", 1)[1]
    made = iter(range(10**6))

    def make() -> str:
        books.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            if next(made) % 2:
                conn.execute(f"CREATE SCHEMA {schema}")
        return database_url

    yield make


def test_a_backup_restored_onto_fresh_books_verifies_and_reads_exactly_as_the_original(books, fresh_target, tmp_path,
                                                                                      database_url, monkeypatch):
    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    original = everything(books)
    assert [problem for _name, problem, _detail in original["verify"] if problem] == []
    file = tmp_path / "books.backup"
    made = runner.invoke(app, ["backup", str(file), "--db", database_url])
    assert made.exit_code == 0, made.output
    assert original["head"][0] in made.stdout
    target = fresh_target()
    restored_run = runner.invoke(app, ["restore", str(file), "--db", target])
    assert restored_run.exit_code == 0, restored_run.output
    assert original["head"][0] in restored_run.stdout and "FAIL" not in restored_run.stdout
    restored = open_books(target)
    try:
        assert everything(restored) == original
        # and the restored books take new events like the original did
        assert [o.outcome for o in ingest_batch(restored, [(1, {"event_id": "after-restore", "platform": "grab",
                                                               "kind": "ride", "worker_id": "079203001234",
                                                               "amount": 50_000,
                                                               "occurred_at": "2026-04-20T10:00:00+07:00"})])] \
            == ["accepted"]
        assert [c.problem for c in verify(restored) if c.problem] == []
    finally:
        restored.close()


def test_a_backup_taken_while_a_writer_commits_is_one_consistent_instant(books, fresh_target, tmp_path,
                                                                        database_url):
    stop = threading.Event()

    def write():
        number = 0
        while not stop.is_set():
            number += 1
            ingest_batch(books, [(n, {"event_id": f"live-{number}-{n}", "platform": "be", "kind": "delivery",
                                      "worker_id": "001085004321", "amount": 30_000 + n,
                                      "occurred_at": "2026-04-21T10:00:00+07:00"}) for n in range(50)])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        states = [backup(database_url, tmp_path / f"live-{n}.backup") for n in range(3)]
    finally:
        stop.set()
        writer.join()
    for n, state in enumerate(states):
        target = fresh_target()
        assert restore(tmp_path / f"live-{n}.backup", target) == state
        restored = open_books(target)
        try:
            assert [(c.name, c.problem) for c in verify(restored, stop_at_first=False) if c.problem] == []
        finally:
            restored.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_backup_and_restore_refuse_what_would_lose_or_mix_books_with_one_clear_line(books, tmp_path, database_url,
                                                                                    monkeypatch):
    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    file = tmp_path / "b.backup"
    assert runner.invoke(app, ["backup", str(file), "--db", database_url]).exit_code == 0
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all")
    cases = {
        "overwrite a file": (["backup", str(file), "--db", database_url], "already exists"),
        "restore onto books that hold data": (["restore", str(file), "--db", database_url], "already holds"),
        "restore a file that is no backup": (["restore", str(junk), "--db", f"sqlite:///{tmp_path / 'n.db'}"],
                                             "neither"),
        "restore an SQLite backup onto PostgreSQL": (
            ["restore", str(file), "--db", "postgresql+psycopg://postgres@127.0.0.1:5432/test"], "restores onto"),
        "restore a file that does not exist": (["restore", str(tmp_path / "nope"), "--db", database_url],
                                               "no such backup"),
    }
    for name, (args, words) in cases.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 1, name
        assert words in result.stderr.replace("\n", " "), (name, result.stderr)
        assert "Traceback" not in result.output, name
    with pytest.raises(BackupError, match="not ansinh books"):
        other = tmp_path / "other.db"
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(other)) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.commit()
        restore(other, f"sqlite:///{tmp_path / 'n2.db'}")


# -- Parquet ---------------------------------------------------------------------------------------

def test_the_parquet_export_holds_the_whole_book_recomputes_its_chain_and_names_no_one(books, tmp_path):
    folder = tmp_path / "export"
    manifest = export_parquet(books, folder)
    tables = {name: pq.read_table(folder / f"{name}.parquet") for name in manifest["tables"]}
    with books.engine.connect() as conn:
        for name, table in tables.items():
            assert table.num_rows == query(conn, f"SELECT count(*) FROM {name}")[0][0] == manifest["tables"][name]["rows"]
        conn.rollback()
    assert "national_id_encrypted" not in tables["worker"].column_names
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    # The hash chain, recomputed from the exported rows alone, reaches the books' head.
    journal = tables["journal"].to_pylist()
    block_times = {block["id"]: block["recorded_at"] for block in tables["block"].to_pylist()}
    legs: dict[int, list[tuple]] = {}
    for leg in tables["legs"].to_pylist():
        legs.setdefault(leg["entry_id"], []).append(
            (leg["account_kind"], leg["owner_id"], leg["scheme"], leg["party"], leg["amount_vnd"]))
    by_block: dict[int, list[bytes]] = {}
    for row in journal:
        fields = [row[name] for name in ("entry_type", "platform_id", "event_id", "payload_hash", "worker_id", "kind",
                                         "amount_vnd", "occurred_at", "occurred_month", "booking_month",
                                         "rules_version_id", "original_entry_id")]
        if row["occurred_us"] is not None:
            fields[7] = occurred_text(row["occurred_us"])
        fields.append(tuple(legs.get(row["id"], ())))
        digest = entry_hash(row["id"], row["block_id"], row["recorded_at"] or block_times[row["block_id"]], fields)
        assert digest[:len(row["entry_hash"])] == row["entry_hash"], row["id"]
        by_block.setdefault(row["block_id"], []).append(digest)
    # who owns each entry: the blocks of seal version 1 cover the exported seals of the identity rows
    marks = [mark for mark, _columns in SEALED_TABLES.values()]
    blocks = [(block["id"], block["seal_version"], [block[mark] or 0 for mark in marks])
              for block in tables["block"].to_pylist()]
    identity = identity_digests_by_block(blocks, {name: [(row["id"], row["seal"]) for row in tables[name].to_pylist()]
                                                  for name in SEALED_TABLES})
    previous = b"\x00"
    for block_id, version, block_marks in blocks:
        previous = block_hash(previous, block_id, by_block.get(block_id, []), seal_version=version, marks=block_marks,
                              identity=identity.get(block_id, b""))
    assert previous == tables["block"].to_pylist()[-1]["block_hash"]
    assert previous.hex() == manifest["chain_head"]
    # Balances from the exported postings equal the statements.
    totals: dict[tuple[int, int], int] = {}
    for leg in tables["legs"].to_pylist():
        if leg["account_kind"] == 1:
            totals[(leg["owner_id"], leg["scheme"])] = totals.get((leg["owner_id"], leg["scheme"]), 0) - leg["amount_vnd"]
    assert sum(leg["amount_vnd"] for leg in tables["posting"].to_pylist()) == 0
    pseudonym_of = {row["pseudonym"]: row["id"] for row in tables["worker"].to_pylist()}
    for line in statements(books, "2026-04"):
        worker = pseudonym_of[books.keys.pseudonym(line["national_id"])]
        assert {s: totals.get((worker, code), 0) for code, s in ((1, "si"), (2, "oa"), (3, "ui"))} == line["to_date"]
    sample = [line["national_id"] for line in statements(books, "2026-03")][:50]
    for path in folder.iterdir():
        data = path.read_bytes()
        assert not any(national_id.encode() in data for national_id in sample), path.name


# -- across stores ----------------------------------------------------------------------------------
# `ansinh restore` restores a backup onto its own store only (an SQLite file onto SQLite, a pg_dump
# archive onto PostgreSQL; the refusal is pinned above). What moves books between stores is the
# Parquet export: loaded into the *other* store as plain tables, the same SQL over it gives every
# statement and settlement figure of the original, every entry balances, and the hash chain
# recomputed from the loaded rows reaches the original's head. The export leaves the encrypted
# national ids behind, so the loaded copy names workers by pseudonym only.

_ARROW_TO_SQL = {"int64": "BIGINT", "string": "TEXT", "binary": "BYTEA"}
WORKER_LINES_SQL = (  # worker accounts: credits are negative legs; party 1 worker, 2 platform, 3 state (subsidy)
    "SELECT w.pseudonym, j.booking_month, p.scheme, p.party, -SUM(p.amount_vnd) FROM legs p "
    "JOIN journal j ON j.id = p.entry_id JOIN worker w ON w.id = p.owner_id WHERE p.account_kind = 1 "
    "GROUP BY w.pseudonym, j.booking_month, p.scheme, p.party")
PLATFORM_DUES_SQL = (  # what each platform's events and refunds put on workers' accounts, by scheme
    "SELECT pl.name, j.booking_month, p.scheme, -SUM(p.amount_vnd) FROM legs p JOIN journal j ON j.id = p.entry_id "
    "JOIN platform pl ON pl.id = j.platform_id WHERE p.account_kind = 1 AND p.party IN (1, 2) "
    "GROUP BY pl.name, j.booking_month, p.scheme")
STATE_DUE_SQL = (  # the subsidy claims of each close on the state receivable
    "SELECT j.booking_month, p.scheme, SUM(p.amount_vnd) FROM legs p JOIN journal j ON j.id = p.entry_id "
    "WHERE p.account_kind = 3 AND j.entry_type = 3 GROUP BY j.booking_month, p.scheme")
UNBALANCED_SQL = "SELECT entry_id FROM legs GROUP BY entry_id HAVING SUM(amount_vnd) <> 0"
CODES = {"si": 1, "oa": 2, "ui": 3}


def _load_into_postgresql(tables: dict, schema: str) -> object:
    """The exported tables as plain PostgreSQL tables in `schema`; a query function over them."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for name, table in tables.items():
            columns = ", ".join(f"{field.name} {_ARROW_TO_SQL[str(field.type)]}" for field in table.schema)
            conn.execute(f"CREATE TABLE {schema}.{name} ({columns})")
            with conn.cursor().copy(f"COPY {schema}.{name} ({', '.join(table.column_names)}) FROM STDIN") as copy:
                for row in table.to_pylist():
                    copy.write_row(tuple(row.values()))

    def run(sql: str) -> list[tuple]:
        with psycopg.connect(PG_ADMIN_URL, options=f"-csearch_path={schema}") as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    return run


def _load_into_sqlite(tables: dict, path: Path) -> object:
    import sqlite3

    with sqlite3.connect(path) as conn:
        for name, table in tables.items():
            columns = ", ".join(f"{field.name} {_ARROW_TO_SQL[str(field.type)].replace('BYTEA', 'BLOB')}"
                                for field in table.schema)
            conn.execute(f"CREATE TABLE {name} ({columns})")
            marks = ", ".join("?" * table.num_columns)
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", [tuple(row.values()) for row in table.to_pylist()])

    def run(sql: str) -> list[tuple]:
        with sqlite3.connect(path) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    return run


def _figures_of_the_original(ledger) -> tuple[dict, dict, dict]:
    """(worker lines, platform dues, state due) from the original's statements and settlements, zeros left out."""
    lines, dues, state = {}, {}, {}
    for month in booked_months(ledger):
        number = int(month[:4]) * 100 + int(month[5:])
        for line in statements(ledger, month):
            pseudonym = ledger.keys.pseudonym(line["national_id"])
            for scheme, parts in line["schemes"].items():
                for party, code in (("worker", 1), ("platform", 2), ("subsidy", 3)):
                    if parts[party]:
                        lines[(pseudonym, number, CODES[scheme], code)] = parts[party]
        report = settlement(ledger, month)
        for name, by_scheme in report["platforms"].items():
            dues.update({(name, number, CODES[scheme]): amount for scheme, amount in by_scheme.items() if amount})
        state.update({(number, CODES[scheme]): amount for scheme, amount in report["subsidy"].items() if amount})
    return lines, dues, state


def test_a_parquet_export_loaded_into_the_other_store_gives_every_figure_and_the_chain_head(books, tmp_path,
                                                                                          database_url):
    from tests.conftest import _drop_schema, postgres_available

    folder = tmp_path / "export"
    manifest = export_parquet(books, folder)
    tables = {name: pq.read_table(folder / f"{name}.parquet") for name in manifest["tables"]}
    schema = None
    if database_url.startswith("sqlite"):
        if postgres_available():
            pytest.skip(f"SKIPPING POSTGRESQL (the other store): {postgres_available()}")
        schema = "x_" + uuid.uuid4().hex[:12]
        run = _load_into_postgresql(tables, schema)
    else:
        run = _load_into_sqlite(tables, tmp_path / "loaded.db")
    try:
        lines, dues, state = _figures_of_the_original(books)
        assert (len(lines), len(dues), len(state)) == (945, 18, 2)  # March closed (si, ui subsidies), April open
        assert {row[:4]: row[4] for row in run(WORKER_LINES_SQL) if row[4]} == lines
        assert {row[:3]: row[3] for row in run(PLATFORM_DUES_SQL) if row[3]} == dues
        assert {row[:2]: row[2] for row in run(STATE_DUE_SQL) if row[2]} == state
        assert run(UNBALANCED_SQL) == [] and run("SELECT SUM(amount_vnd) FROM legs") == [(0,)]
        # the chain, recomputed from the loaded rows in the other store, reaches the original's head
        legs: dict[int, list[tuple]] = {}
        for leg in run("SELECT entry_id, account_kind, owner_id, scheme, party, amount_vnd FROM legs "
                       "ORDER BY entry_id, leg"):
            legs.setdefault(leg[0], []).append(leg[1:])
        by_block: dict[int, list[bytes]] = {}
        for row in run("SELECT j.id, j.block_id, coalesce(j.recorded_at, b.recorded_at), entry_type, platform_id, "
                       "event_id, payload_hash, worker_id, kind, amount_vnd, occurred_at, occurred_month, "
                       "booking_month, rules_version_id, original_entry_id, occurred_us FROM journal j "
                       "JOIN block b ON b.id = j.block_id ORDER BY j.id"):
            fields = [bytes(value) if isinstance(value, memoryview) else value for value in row[3:15]]
            if row[15] is not None:
                fields[7] = occurred_text(row[15])
            by_block.setdefault(row[1], []).append(entry_hash(row[0], row[1], row[2], [*fields, tuple(legs.get(row[0], ()))]))
        marks = [mark for mark, _columns in SEALED_TABLES.values()]
        blocks = [(row[0], row[1], [value or 0 for value in row[2:]])
                  for row in run(f"SELECT id, seal_version, {', '.join(marks)} FROM block ORDER BY id")]
        identity = identity_digests_by_block(blocks, {
            name: [(row_id, bytes(seal)) for row_id, seal in run(f"SELECT id, seal FROM {name} ORDER BY id")]
            for name in SEALED_TABLES})
        head = b"\x00"
        for block_id, version, block_marks in blocks:
            head = block_hash(head, block_id, by_block.get(block_id, []), seal_version=version, marks=block_marks,
                              identity=identity.get(block_id, b""))
        assert head.hex() == manifest["chain_head"] == everything(books)["head"][0]
    finally:
        if schema:
            _drop_schema(schema)


# -- Beancount --------------------------------------------------------------------------------------

def _month_bounds(month: str) -> tuple[datetime.date, datetime.date]:
    year, mon = int(month[:4]), int(month[5:])
    start = datetime.date(year, mon, 1)
    return start, datetime.date(year + mon // 12, mon % 12 + 1, 1)


def our_balances(ledger) -> dict[tuple[str, str], int]:
    """(month or 'all', Beancount account) -> balance, from our statements and settlements only."""
    from ledger.store import query as read

    with ledger.engine.connect() as conn:
        platform_ids = dict(read(conn, "SELECT name, id FROM platform"))
        platform_names = {row_id: name for name, row_id in platform_ids.items()}
        conn.rollback()
    expected: dict[tuple[str, str], int] = {}

    def add(month: str, account: str, amount: int) -> None:
        for key in ((month, account), ("all", account)):
            expected[key] = expected.get(key, 0) + amount

    for month in booked_months(ledger):
        for line in statements(ledger, month):
            with ledger.engine.connect() as conn:
                worker = ledger.worker_id(conn, line["national_id"])
                conn.rollback()
            for code, scheme in ((1, "si"), (2, "oa"), (3, "ui")):
                for party_code, party in ((1, "worker"), (2, "platform"), (3, "subsidy")):
                    amount = line["schemes"][scheme][party]
                    if amount:
                        add(month, beancount_account(1, worker, code, party_code, platform_names), -amount)
        report = settlement(ledger, month)
        for name, by_scheme in report["platforms"].items():
            add(month, beancount_account(2, platform_ids[name], 0, 0, platform_names), sum(by_scheme.values()))
        for code, scheme in ((1, "si"), (2, "oa"), (3, "ui")):
            if report["subsidy"][scheme]:
                add(month, beancount_account(3, 0, code, 3, platform_names), report["subsidy"][scheme])
    return expected


def test_beancount_recomputes_every_balance_of_the_book_to_the_dong(books, tmp_path):
    from beancount import loader
    from beancount.core import data, realization

    journal = tmp_path / "books.beancount"
    written = export_beancount(books, journal)
    assert written > 3_000
    checked = subprocess.run([str(BEAN_CHECK), str(journal)], capture_output=True, text=True)
    assert (checked.returncode, checked.stderr) == (0, "")
    entries, errors, _options = loader.load_file(str(journal))
    assert errors == []
    expected = our_balances(books)

    def balances(selected) -> dict[str, int]:
        real = realization.realize(selected)
        found = {}
        for account in realization.iter_children(real):
            units = account.balance.get_currency_units("VND").number
            if units:
                found[account.account] = int(units)
        return found

    got = {("all", account): amount for account, amount in balances(entries).items()}
    for month in booked_months(books):
        start, end = _month_bounds(month)
        in_month = [entry for entry in entries if isinstance(entry, data.Transaction) and start <= entry.date < end]
        got.update({(month, account): amount for account, amount in balances(in_month).items()})
    expected = {key: amount for key, amount in expected.items() if amount}
    clearing = {key: amount for key, amount in got.items() if "SubsidyClearing" in key[1]}
    assert clearing == {}  # every month's clearing drains to zero
    assert got == expected


def test_bean_check_itself_enforces_our_balances_as_assertions(books, tmp_path):
    journal = tmp_path / "books.beancount"
    export_beancount(books, journal)
    last = max(booked_months(books))
    _start, after = _month_bounds(last)
    assertions = [f"{after.isoformat()} balance {account}  {amount} VND"
                  for (month, account), amount in sorted(our_balances(books).items()) if month == "all"]
    with journal.open("a") as out:
        out.write("\n" + "\n".join(assertions) + "\n")
    checked = subprocess.run([str(BEAN_CHECK), str(journal)], capture_output=True, text=True)
    assert (checked.returncode, checked.stderr) == (0, "")
    # and it does catch a difference of one dong
    account, amount = assertions[0].split(" balance ")[1].rsplit(None, 2)[:2]
    with journal.open("a") as out:
        out.write(f"{after.isoformat()} balance {account}  {int(amount) + 1} VND\n")
    off_by_one = subprocess.run([str(BEAN_CHECK), str(journal)], capture_output=True, text=True)
    assert off_by_one.returncode != 0 and "Balance failed" in off_by_one.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_export_on_the_command_line_writes_both_and_refuses_to_overwrite(books, tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    result = runner.invoke(app, ["export", "--parquet", str(tmp_path / "pq"), "--beancount",
                                 str(tmp_path / "b.beancount"), "--db", database_url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pq" / "manifest.json").exists() and (tmp_path / "b.beancount").exists()
    again = runner.invoke(app, ["export", "--beancount", str(tmp_path / "b.beancount"), "--db", database_url])
    assert again.exit_code == 1 and "already exists" in again.stderr
    nothing = runner.invoke(app, ["export", "--db", database_url])
    assert nothing.exit_code == 1 and "--parquet" in nothing.stderr
    assert shutil.which("pg_dump")  # the PostgreSQL backup path needs the client tools (installed here)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_restore_without_the_secret_says_so_and_makes_no_new_secret(books, tmp_path, database_url, monkeypatch):
    file = tmp_path / "b.backup"
    backup(database_url, file)
    monkeypatch.delenv("ANSINH_SECRET", raising=False)
    target = tmp_path / "restored.db"
    result = runner.invoke(app, ["restore", str(file), "--db", f"sqlite:///{target}"])
    assert result.exit_code == 0, result.output
    assert "ANSINH_SECRET is not set" in result.stdout and "FAIL" not in result.stdout
    assert not Path(f"{target}.secret").exists()  # a new secret would orphan every pseudonym and stored id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("new_secret", ["beside the file", "in ANSINH_SECRET"])
def test_finding_9_a_backup_restored_onto_new_books_with_their_own_secret_is_refused_in_one_line_naming_the_key(
        books, tmp_path, database_url, monkeypatch, new_secret):
    import secrets

    file = tmp_path / "b.backup"
    backup(database_url, file)
    target = tmp_path / "new.db"
    if new_secret == "beside the file":  # new embedded books generated their own secret
        monkeypatch.delenv("ANSINH_SECRET", raising=False)
        Path(f"{target}.secret").write_text(secrets.token_hex(32))
    else:
        monkeypatch.setenv("ANSINH_SECRET", secrets.token_hex(32))
    restored = runner.invoke(app, ["restore", str(file), "--db", f"sqlite:///{target}"])
    assert restored.exit_code == 1, restored.output
    assert "error: the secret does not match these books: key encryption/v1 gives check value" in " ".join(
        restored.output.split())
    assert "ok   identity_decrypts" not in restored.output and "Traceback" not in restored.output
    used = runner.invoke(app, ["statements", "2026-03", "--db", f"sqlite:///{target}"])
    assert used.exit_code == 1
    assert "the secret does not match these books: key encryption/v1" in " ".join(used.output.split())
    assert "InvalidTag" not in used.output and "Traceback" not in used.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_books_restored_without_a_secret_then_opened_with_a_generated_one_are_refused_naming_the_key(
        books, tmp_path, database_url, monkeypatch):
    file = tmp_path / "b.backup"
    backup(database_url, file)
    monkeypatch.delenv("ANSINH_SECRET", raising=False)
    target = tmp_path / "new.db"
    assert runner.invoke(app, ["restore", str(file), "--db", f"sqlite:///{target}"]).exit_code == 0
    used = runner.invoke(app, ["statements", "2026-03", "--db", f"sqlite:///{target}"])  # generates a secret
    assert used.exit_code == 1 and "key encryption/v1" in " ".join(used.output.split())
    assert "Traceback" not in used.output


def test_verify_decrypts_a_sample_of_ids_and_names_the_worker_a_wrong_key_cannot_read(books):
    from ledger.books import Ledger
    from ledger.identity import IdentityKeys

    checks = {check.name: check.problem for check in verify(books, stop_at_first=False)}
    assert checks["identity_decrypts"] is None
    stranger = Ledger(books.engine, books.pack, IdentityKeys.from_secret("another secret entirely, 0123456789"))
    checks = {check.name: check.problem for check in verify(stranger, stop_at_first=False)}
    assert checks["identity_decrypts"] == ("the national id of worker 1 does not decrypt with key encryption/v1 "
                                           "of this secret")

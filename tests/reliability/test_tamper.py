"""Tamper evidence: a changed, deleted or inserted row anywhere makes `verify` fail and name the entry.

The books: February booked and closed, March booked and closed, April open (events,
refunds, household tiers, subsidies). Each test gets its own copy with the database
guards removed (an attacker with database access), changes one thing at one place,
and runs `verify`. A forger who also rewrites every hash after the change passes the
in-book checks; only an anchor kept outside (`ansinh verify --from-anchor`) catches
that, which the last tests show.
"""
from __future__ import annotations

import sqlite3
import uuid

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import app
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.postings import block_hash, entry_hash, occurred_us
from ledger.schema import LEGS_VIEW, SHARE_COLUMNS
from ledger.store import query
from ledger.verify import _BLOCKS, Anchor, _identity_walk, entry_hashes, verify
from ledger.schema import SQLModel
from tests.conftest import _drop_schema, _fresh_postgres_url
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event, refund
from tests.reliability.crash import open_books

runner = CliRunner()
TABLES = ("alembic_version", *SQLModel.metadata.tables)  # every table of the books, whatever revision added it


def _month_items(month: str, count: int, prefix: str) -> list[dict]:
    workers = (WORKER_A, WORKER_B, WORKER_C)
    items = []
    for n in range(count):
        items.append(event(f"{prefix}-{n}", platform=("grab", "be", "shopee")[n % 3],
                           kind=("ride", "delivery", "order")[n % 3], worker_id=workers[n % 3],
                           amount=10_000 + 7_919 * n, occurred_at=f"{month}-{1 + n % 27:02d}T09:00:00+07:00"))
        if n % 4 == 3:
            items.append(refund(f"{prefix}-{n}-r", f"{prefix}-{n}", 5_000, platform=items[-1]["platform"],
                                kind=items[-1]["kind"], worker_id=items[-1]["worker_id"],
                                occurred_at=f"{month}-28T10:00:00+07:00"))
    return items


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Books of three months per store, made once; each test tampers with a copy."""
    folder = tmp_path_factory.mktemp("tamper")
    made = {}
    schemas = []

    def books(store: str):
        if store in made:
            return made[store]
        if store == "sqlite":
            url = f"sqlite:///{folder / 'template.db'}"
        else:
            from tests.conftest import postgres_available

            if postgres_available():
                pytest.skip(postgres_available())
            url, schema = _fresh_postgres_url()
            schemas.append(schema)
        ledger = open_books(url)
        tiers = folder / "tiers.csv"
        tiers.write_text(f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n{WORKER_B},near_poor,2026-02\n")
        import_tiers(ledger, tiers)
        anchors = {}
        for month, count in (("2026-02", 24), ("2026-03", 16), ("2026-04", 12)):
            items = _month_items(month, count, month)
            for start in range(0, len(items), 10):  # several blocks per month
                ingest_batch(ledger, list(enumerate(items[start:start + 10], start=1)))
            if month != "2026-04":
                anchors[month] = close_month(ledger, month).anchor_hash
        ledger.close()
        made[store] = (url, anchors)
        return made[store]

    yield books
    for schema in schemas:
        _drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def copy(request, template, tmp_path):
    """A copy of the template books without any database guard, and the anchors printed at close."""
    url, anchors = template(request.param)
    if request.param == "sqlite":
        target = tmp_path / "copy.db"
        with sqlite3.connect(url.removeprefix("sqlite:///")) as source, sqlite3.connect(target) as destination:
            source.backup(destination)
            for (name,) in destination.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                destination.execute(f"DROP TRIGGER {name}")
        ledger = open_books(f"sqlite:///{target}")
        yield ledger, anchors
        ledger.close()
        return
    source_schema = url.rsplit("%3D", 1)[1]
    schema = "t_" + uuid.uuid4().hex[:12]
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:  # tables and rows, no triggers: no guards
        conn.execute(f"CREATE SCHEMA {schema}")
        for table in TABLES:
            conn.execute(f"CREATE TABLE {schema}.{table} (LIKE {source_schema}.{table} INCLUDING ALL)")
            conn.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {source_schema}.{table}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(LEGS_VIEW)
        conn.execute("ALTER TABLE journal DROP CONSTRAINT IF EXISTS compact_entries_balance")  # a guard too
    ledger = open_books(url.rsplit("%3D", 1)[0] + "%3D" + schema)
    yield ledger, anchors
    ledger.close()
    _drop_schema(schema)


def sql(ledger, statement: str, **params) -> list[tuple]:
    with ledger.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else []


def entry_at(ledger, where: str) -> int:
    return sql(ledger, f"SELECT min(id) FROM journal WHERE {where}")[0][0] if where != "last" else \
        sql(ledger, "SELECT max(id) FROM journal")[0][0]


def problems(ledger, anchors=()) -> list[tuple[str, str]]:
    return [(c.name, c.problem) for c in verify(ledger, stop_at_first=False, anchors=list(anchors)) if c.problem]


def named(found: list[tuple[str, str]], entry_id: int) -> bool:
    """Whether the hash-chain check (or an anchor) names this entry, as a whole word."""
    import re

    return any(re.search(rf"\bentry {entry_id}\b", problem) for name, problem in found
               if name == "hash_chain_intact" or name.startswith("anchor"))


POSITIONS = {
    "the first entry": "id = 1",
    "a refund in a closed month": "entry_type = 2 AND booking_month = 202602",
    "a subsidy of a closed month": "entry_type = 4 AND booking_month = 202603",
    "an event in the open month": "entry_type = 1 AND booking_month = 202604",
    "the last entry": "last",
}


def change_a_journal_amount(ledger, entry_id):
    sql(ledger, "UPDATE journal SET amount_vnd = amount_vnd + 1 WHERE id = :e", e=entry_id)
    return entry_id


def is_compact(ledger, entry_id) -> bool:
    """An event or refund keeps its legs in its journal row (docs/accounts.md)."""
    return sql(ledger, "SELECT receivable_vnd FROM journal WHERE id = :e", e=entry_id)[0][0] is not None


def move_money_between_two_legs(ledger, entry_id):
    if is_compact(ledger, entry_id):
        sql(ledger, "UPDATE journal SET receivable_vnd = receivable_vnd - 7, si_worker_vnd = si_worker_vnd + 7 "
                    "WHERE id = :e", e=entry_id)
        return entry_id
    sql(ledger, "UPDATE posting SET amount_vnd = amount_vnd - 7 WHERE entry_id = :e AND leg = 0", e=entry_id)
    sql(ledger, "UPDATE posting SET amount_vnd = amount_vnd + 7 WHERE entry_id = :e AND leg = 1", e=entry_id)
    return entry_id


def change_the_booking_month(ledger, entry_id):
    sql(ledger, "UPDATE journal SET booking_month = booking_month + 1 WHERE id = :e", e=entry_id)
    return entry_id


def delete_the_entry_and_its_legs(ledger, entry_id):
    sql(ledger, "DELETE FROM posting WHERE entry_id = :e", e=entry_id)
    sql(ledger, "DELETE FROM journal WHERE id = :e", e=entry_id)
    return entry_id


def delete_one_leg(ledger, entry_id):
    if is_compact(ledger, entry_id):
        shares = sql(ledger, f"SELECT {', '.join(SHARE_COLUMNS)} FROM journal WHERE id = :e", e=entry_id)[0]
        last = max(index for index, share in enumerate(shares) if share)
        sql(ledger, f"UPDATE journal SET {SHARE_COLUMNS[last]} = 0 WHERE id = :e", e=entry_id)
        return entry_id
    sql(ledger, "DELETE FROM posting WHERE entry_id = :e AND leg = (SELECT max(leg) FROM posting "
                "WHERE entry_id = :e)", e=entry_id)
    return entry_id


def insert_a_balanced_pair_of_legs(ledger, entry_id):
    legs = sql(ledger, "SELECT max(leg), min(account_kind), min(owner_id) FROM legs WHERE entry_id = :e",
               e=entry_id)[0]
    for offset, amount in ((1, 5_000), (2, -5_000)):
        sql(ledger, "INSERT INTO posting (entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd) "
                    "VALUES (:e, :leg, :kind, :owner, 1, 1, :amount)",
            e=entry_id, leg=legs[0] + offset, kind=legs[1], owner=legs[2], amount=amount)
    return entry_id


def insert_a_forged_entry_into_its_block(ledger, entry_id):
    """A well-formed entry with a correct hash of its own, slipped into an old block."""
    new_id = sql(ledger, "SELECT max(id) + 1 FROM journal")[0][0]
    row = sql(ledger, "SELECT j.block_id, b.recorded_at, j.platform_id, j.worker_id, j.booking_month "
                      "FROM journal j JOIN block b ON b.id = j.block_id WHERE j.id = :e", e=entry_id)[0]
    block_id, recorded_at, platform_id, worker_id, month = row
    platform_id, worker_id = platform_id or 1, worker_id or 1
    legs = ((2, platform_id, 0, 0, 30_000), (1, worker_id, 1, 1, -30_000))
    fields = [1, platform_id, "forged-1", b"\x01" * 16, worker_id, 0, 3_000_000, "2026-02-02T02:00:00.000000Z",
              month, month, 1, None, legs]
    digest = entry_hash(new_id, block_id, recorded_at, fields)
    for leg, (kind, owner, scheme, party, amount) in enumerate(legs):
        sql(ledger, "INSERT INTO posting (entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd) "
                    "VALUES (:e, :leg, :k, :o, :s, :p, :a)", e=new_id, leg=leg, k=kind, o=owner, s=scheme, p=party,
            a=amount)
    sql(ledger, "INSERT INTO journal (id, block_id, entry_type, platform_id, event_id, payload_hash, worker_id, kind, "
                "amount_vnd, occurred_at, occurred_month, booking_month, recorded_at, rules_version_id, "
                "original_entry_id, entry_hash) VALUES (:id, :b, 1, :p, 'forged-1', :ph, :w, 0, 3000000, "
                "'2026-02-02T02:00:00.000000Z', :m, :m, :r, 1, NULL, :h)",
        id=new_id, b=block_id, p=platform_id, ph=b"\x01" * 16, w=worker_id, m=month, r=recorded_at, h=digest)
    return new_id


TAMPERS = [change_a_journal_amount, move_money_between_two_legs, change_the_booking_month,
           delete_the_entry_and_its_legs, delete_one_leg, insert_a_balanced_pair_of_legs,
           insert_a_forged_entry_into_its_block]


# The default suite tries each tamper at one place (a different place for each); the slow
# suite tries every tamper at every place.
EVERY_PLACE = [pytest.param(tamper, position, id=f"{tamper.__name__}-at-{position.replace(' ', '-')}",
                            marks=() if (number + at) % len(POSITIONS) == 0 else pytest.mark.slow)
               for number, tamper in enumerate(TAMPERS) for at, position in enumerate(POSITIONS)]


@pytest.mark.parametrize("tamper, position", EVERY_PLACE)
def test_a_tampered_row_anywhere_makes_verify_fail_naming_the_entry(copy, tamper, position):
    ledger, _anchors = copy
    assert problems(ledger) == []
    target = entry_at(ledger, POSITIONS[position])
    culprit = tamper(ledger, target)
    found = problems(ledger)
    assert found, "verify passed on tampered books"
    assert named(found, culprit), found


def rehash_entry(ledger, entry_id) -> None:
    """What a forger who knows the hash recipe does after changing a row: recompute its hash."""
    with ledger.engine.begin() as conn:
        digest = next(full for entry, _block, full, _kept in entry_hashes(conn) if entry == entry_id)
        conn.execute(text("UPDATE journal SET entry_hash = :h WHERE id = :e"), {"h": digest, "e": entry_id})


def rewrite_every_block_hash(ledger) -> None:
    """The rest of a full forgery: every block hash, the chain head and each close's anchor, recomputed."""
    with ledger.engine.begin() as conn:
        hashes: dict[int, list[bytes]] = {}
        for _entry, block_id, full, _kept in entry_hashes(conn):
            hashes.setdefault(block_id, []).append(full)
        blocks = query(conn, _BLOCKS)
        identity = _identity_walk(conn, blocks).digests  # re-sealed from the rows, as verify does
        previous = b"\x00"
        renamed = {}
        for block_id, _prev, old, _count, _first, _last, version, *marks in blocks:
            new = block_hash(previous, block_id, hashes.get(block_id, []), seal_version=version, marks=marks,
                             identity=identity.get(block_id, b""))
            renamed[bytes(old)] = new
            conn.execute(text("UPDATE block SET prev_hash = :p, block_hash = :h WHERE id = :b"),
                         {"p": previous, "h": new, "b": block_id})
            previous = new
        conn.execute(text("UPDATE ledger_state SET chain_head_hash = :h WHERE id = 1"), {"h": previous})
        for month, old in query(conn, "SELECT month, anchor_hash FROM month_close"):
            conn.execute(text("UPDATE month_close SET anchor_hash = :h WHERE month = :m"),
                         {"h": renamed[bytes(old)], "m": month})


def anchors_of(anchors: dict[str, str]) -> list[Anchor]:
    return [Anchor.parse(f"{month}={digest}") for month, digest in anchors.items()]


def test_a_row_changed_and_rehashed_is_caught_by_its_block_which_names_the_entries_it_holds(copy):
    ledger, _anchors = copy
    target = entry_at(ledger, POSITIONS["a refund in a closed month"])
    change_a_journal_amount(ledger, target)
    rehash_entry(ledger, target)
    block, first, last = sql(ledger, "SELECT b.id, b.first_entry_id, b.last_entry_id FROM block b JOIN journal j "
                                     "ON j.block_id = b.id WHERE j.id = :e", e=target)[0]
    found = dict(problems(ledger))
    assert found["hash_chain_intact"].startswith(f"block {block} (from entry {first}) does not match its hash")
    assert f"entries {first}–{last}" in found["hash_chain_intact"] and first <= target <= last


def test_a_full_forgery_passes_the_in_book_checks_but_not_the_anchor_kept_outside(copy):
    ledger, anchors = copy
    target = entry_at(ledger, POSITIONS["a refund in a closed month"])
    # Backdating an event by a day moves no money, so no total or subsidy betrays it.
    sql(ledger, "UPDATE journal SET occurred_us = :t WHERE id = :e", e=target,
        t=occurred_us("2026-02-01T01:00:00.000000Z"))
    rehash_entry(ledger, target)
    rewrite_every_block_hash(ledger)
    assert [name for name, _p in problems(ledger)] == []  # the chain is self-consistent again
    found = dict(problems(ledger, anchors_of(anchors)))
    assert set(found) == {"anchor 2026-02", "anchor 2026-03"}  # both closes came after the change
    assert "the books do not reach the anchor of 2026-02" in found["anchor 2026-02"]


def test_a_change_after_the_last_close_leaves_the_anchors_whole_and_verify_names_the_entry(copy):
    ledger, anchors = copy
    target = entry_at(ledger, POSITIONS["the last entry"])
    change_a_journal_amount(ledger, target)
    found = problems(ledger, anchors_of(anchors))
    assert [name for name, _p in found] == ["hash_chain_intact"]
    assert named(found, target)


def test_an_anchor_check_names_the_first_entry_that_no_longer_matches(copy):
    ledger, anchors = copy
    target = entry_at(ledger, POSITIONS["a refund in a closed month"])
    change_a_journal_amount(ledger, target)
    found = dict(problems(ledger, anchors_of(anchors)))
    assert f"entry {target} does not match its hash" in found["anchor 2026-02"]


def test_an_entry_slipped_into_a_closed_month_after_its_close_is_named_by_the_anchor(copy):
    ledger, anchors = copy
    culprit = insert_a_forged_entry_into_its_block(ledger, entry_at(ledger, "last"))
    sql(ledger, "UPDATE journal SET booking_month = 202602, occurred_month = 202602 WHERE id = :e", e=culprit)
    rehash_entry(ledger, culprit)
    rewrite_every_block_hash(ledger)
    sql(ledger, "UPDATE month_close SET last_entry_id = :e", e=culprit)  # hide it from closed_months_frozen
    found = dict(problems(ledger, anchors_of(anchors)))
    assert found["anchor 2026-02"].startswith(f"entry {culprit} is booked into a month up to 2026-02")


def test_a_changed_close_record_is_named_by_its_anchor(copy):
    ledger, anchors = copy
    sql(ledger, "UPDATE month_close SET anchor_hash = :h WHERE month = 202603", h=b"\x07" * 32)
    found = dict(problems(ledger, anchors_of(anchors)))
    assert "the close record of 2026-03 holds anchor 0707" in found["anchor 2026-03"]
    assert "anchor 2026-02" not in found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_verify_from_anchor_on_the_command_line(database_url, tmp_path, monkeypatch):
    from tests.reliability.oracle import SECRET

    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    ledger = open_books(database_url)
    ingest_batch(ledger, list(enumerate(_month_items("2026-02", 6, "c"), start=1)))
    anchor = close_month(ledger, "2026-02").anchor_hash
    ledger.close()
    good = runner.invoke(app, ["verify", "--from-anchor", f"2026-02={anchor}", "--db", database_url])
    assert good.exit_code == 0, good.stdout
    assert "ok   anchor 2026-02" in good.stdout
    wrong = runner.invoke(app, ["verify", "--from-anchor", f"2026-02={'0' * 64}", "--db", database_url])
    assert wrong.exit_code == 1 and "FAIL anchor 2026-02" in wrong.stdout
    open_month = runner.invoke(app, ["verify", "--from-anchor", f"2026-03={anchor}", "--db", database_url])
    assert open_month.exit_code == 1 and "2026-03 is not closed" in open_month.stdout
    for bad in ("2026-02", f"2026-02={anchor[:10]}", f"Feb={anchor}"):
        refused = runner.invoke(app, ["verify", "--from-anchor", bad, "--db", database_url])
        assert refused.exit_code == 2 and "--from-anchor" in refused.stderr
        assert "Traceback" not in refused.output


# -- who owns the money (issue 14, finding 1) -----------------------------------------------------------

def swap_two_workers(ledger) -> int:
    """Finding 1: two people's encrypted ids and pseudonyms swapped; every entry still names worker ids."""
    (a_pseudonym, a_blob), (b_pseudonym, b_blob) = sql(
        ledger, "SELECT pseudonym, national_id_encrypted FROM worker WHERE id IN (1, 2) ORDER BY id")
    sql(ledger, "UPDATE worker SET pseudonym = :p || '-moving' WHERE id = 1", p=a_pseudonym)
    sql(ledger, "UPDATE worker SET pseudonym = :p, national_id_encrypted = :b WHERE id = 2", p=a_pseudonym, b=a_blob)
    sql(ledger, "UPDATE worker SET pseudonym = :p, national_id_encrypted = :b WHERE id = 1", p=b_pseudonym, b=b_blob)
    return 1


def swap_two_platform_names(ledger) -> int:
    first, second = (row[0] for row in sql(ledger, "SELECT name FROM platform WHERE id IN (1, 2) ORDER BY id"))
    sql(ledger, "UPDATE platform SET name = 'moving' WHERE id = 1")
    sql(ledger, "UPDATE platform SET name = :n WHERE id = 2", n=first)
    sql(ledger, "UPDATE platform SET name = :n WHERE id = 1", n=second)
    return 1


def edit_a_rules_version(ledger) -> int:
    """A parameter of the stored rules version changed (the triggers were dropped first)."""
    sql(ledger, "UPDATE rules_version SET document_json = replace(document_json, '\"late', '\"x_late') WHERE id = 1")
    return 1


IDENTITY_TAMPERS = {swap_two_workers: "worker", swap_two_platform_names: "platform",
                    edit_a_rules_version: "rules version"}


@pytest.mark.parametrize("tamper", IDENTITY_TAMPERS, ids=lambda tamper: tamper.__name__)
def test_finding_1_an_identity_row_changed_in_the_database_makes_verify_name_the_row(copy, tamper):
    ledger, anchors = copy
    assert problems(ledger) == []
    row_id = tamper(ledger)
    found = dict(problems(ledger))
    assert found["identity_rows_sealed"] == (
        f"{IDENTITY_TAMPERS[tamper]} {row_id} does not match its seal: its "
        + {"worker": "pseudonym, encrypted national id or other identity columns were", "platform": "name was",
           "rules version": "document was"}[IDENTITY_TAMPERS[tamper]] + " changed")
    # the chain re-seals the rows from their columns: the identity-seal block of the books no longer matches
    assert "does not match its hash" in found["hash_chain_intact"]


@pytest.mark.parametrize("tamper", IDENTITY_TAMPERS, ids=lambda tamper: tamper.__name__)
def test_finding_1_an_identity_row_changed_is_caught_by_verify_from_anchor_naming_the_row(copy, tamper):
    ledger, anchors = copy
    row_id = tamper(ledger)
    found = dict(problems(ledger, anchors_of(anchors)))
    assert f"{IDENTITY_TAMPERS[tamper]} {row_id} does not match its seal" in found["anchor 2026-02"]


def reseal(ledger, table: str, row_id: int) -> None:
    """What a forger who knows the seal recipe does after changing an identity row: recompute its seal."""
    from ledger.postings import SEALED_TABLES, row_seal

    columns = SEALED_TABLES[table][1]
    with ledger.engine.begin() as conn:
        row = query(conn, f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?", (row_id,))[0]
        conn.execute(text(f"UPDATE {table} SET seal = :s WHERE id = :i"), {"s": row_seal(table, row), "i": row_id})


def test_a_worker_swap_with_its_seals_rewritten_is_caught_by_the_block_that_sealed_the_worker(copy):
    ledger, _anchors = copy
    swap_two_workers(ledger)
    reseal(ledger, "worker", 1)
    reseal(ledger, "worker", 2)
    found = dict(problems(ledger))
    assert "identity_rows_sealed" not in found  # the rows match their (rewritten) seals
    sealed_by = sql(ledger, "SELECT min(id) FROM block WHERE last_worker_id >= 2")[0][0]
    assert found["hash_chain_intact"].startswith(f"block {sealed_by} ")
    assert "workers 1–3" in found["hash_chain_intact"]


def test_identity_rows_refuse_update_and_delete_in_the_database(ledger):
    """The guard itself (the copies above have their triggers dropped): the identity rows are append-only."""
    ingest_batch(ledger, list(enumerate(_month_items("2026-02", 3, "g"), start=1)))
    for statement in ("UPDATE worker SET sex = 'x' WHERE id = 1", "DELETE FROM platform WHERE id = 1",
                      "UPDATE rules_version SET pack = 'x'", "DELETE FROM key_check"):
        with pytest.raises(Exception, match="append_only"):
            sql(ledger, statement)

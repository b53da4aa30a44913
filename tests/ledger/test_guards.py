"""The database guards the books itself, and verify catches what gets past it."""
from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import text

from ledger.ingest import ingest_batch
from ledger.verify import verify
from tests.ledger.factories import event, numbered


def first_problem(ledger) -> tuple[str, str] | None:
    for check in verify(ledger):
        if check.problem:
            return check.name, check.problem
    return None


def drop_guards(ledger) -> None:
    with ledger.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            names = [row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))]
            for name in names:
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            for table in ("journal", "posting", "block"):
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


@pytest.fixture
def booked(ledger):
    ingest_batch(ledger, numbered([event("a"), event("b", amount=250_000), event("c", amount=75_500)]))
    assert first_problem(ledger) is None
    return ledger


@pytest.mark.parametrize("statement", [
    "UPDATE journal SET si_worker_vnd = si_worker_vnd - 1, receivable_vnd = receivable_vnd + 1",
    "UPDATE journal SET amount_vnd = 1",
    "DELETE FROM journal",
    "DELETE FROM block",
])
def test_the_database_refuses_to_change_or_delete_history(booked, statement):
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="append_only"):
        with booked.engine.begin() as conn:
            conn.execute(text(statement))


@pytest.mark.parametrize("statement", ["UPDATE posting SET amount_vnd = amount_vnd + 1", "DELETE FROM posting"])
def test_the_database_refuses_to_change_or_delete_the_postings_of_a_subsidy(booked, statement):
    from ledger.close import close_month

    close_month(booked, "2026-02")
    with booked.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM posting")).scalar() > 0
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="append_only"):
        with booked.engine.begin() as conn:
            conn.execute(text(statement))


def test_the_database_refuses_a_compact_entry_that_does_not_balance(booked):
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="compact_entries_balance"):
        with booked.engine.begin() as conn:
            conn.execute(text("INSERT INTO journal (id, block_id, entry_type, booking_month, recorded_at, entry_hash, "
                              "receivable_vnd, si_worker_vnd, si_platform_vnd, oa_worker_vnd, oa_platform_vnd, "
                              "ui_worker_vnd, ui_platform_vnd) VALUES (999, 99, 1, 202602, 'x', :h, 10, -9, 0, 0, 0, 0, 0)"),
                         {"h": b"x"})


def test_an_event_keeps_its_legs_in_its_own_row_and_the_legs_view_numbers_them_as_hashed(booked):
    with booked.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM posting")).scalar() == 0
        legs = conn.execute(text("SELECT leg, account_kind, scheme, party, amount_vnd FROM legs "
                                 "WHERE entry_id = 2 ORDER BY leg")).all()
        row = conn.execute(text("SELECT receivable_vnd, si_worker_vnd, si_platform_vnd, oa_worker_vnd, "
                                "oa_platform_vnd, ui_worker_vnd, ui_platform_vnd FROM journal WHERE id = 2")).one()
    assert sum(share or 0 for share in row) == 0 and row[0] > 0
    # a share with no leg is stored as NULL, never 0 (revision 0011: no bytes on PostgreSQL)
    assert None in row[1:] and 0 not in row[1:]
    assert [leg[0] for leg in legs] == list(range(len(legs)))
    assert legs[0][1:4] == (2, 0, 0) and legs[0][4] == row[0]
    assert [leg[4] for leg in legs[1:]] == [share for share in row[1:] if share]


def test_the_database_refuses_an_entry_whose_postings_do_not_balance(booked):
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="entries_balance"):
        with booked.engine.begin() as conn:
            conn.execute(text("INSERT INTO posting (entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd) "
                              "VALUES (999, 0, 2, 1, 0, 0, 10)"))
            conn.execute(text("INSERT INTO journal (id, block_id, entry_type, booking_month, recorded_at, entry_hash) "
                              "VALUES (999, 99, 1, 202602, 'x', :h)"), {"h": b"x"})


def test_the_database_refuses_a_leg_added_to_a_recorded_entry(booked):
    with pytest.raises(sqlalchemy.exc.DatabaseError, match="entries_balance"):
        with booked.engine.begin() as conn:
            conn.execute(text("INSERT INTO posting (entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd) "
                              "VALUES (1, 9, 2, 1, 0, 0, 0)"))


def test_a_posting_changed_behind_the_guards_makes_verify_name_the_entry(booked):
    drop_guards(booked)
    with booked.engine.begin() as conn:
        conn.execute(text("UPDATE journal SET si_worker_vnd = si_worker_vnd - 7, receivable_vnd = receivable_vnd + 7 "
                          "WHERE id = 2"))
    name, problem = first_problem(booked)
    assert name == "balances_match_postings" or name == "hash_chain_intact"
    assert "2" in problem


def test_an_amount_changed_on_a_journal_row_makes_verify_name_the_entry(booked):
    drop_guards(booked)
    with booked.engine.begin() as conn:
        conn.execute(text("UPDATE journal SET amount_vnd = 1 WHERE id = 3"))
    assert first_problem(booked) == ("hash_chain_intact", "entry 3 does not match its hash: a row or a leg was changed")


def test_a_deleted_entry_makes_verify_fail(booked):
    drop_guards(booked)
    with booked.engine.begin() as conn:
        conn.execute(text("DELETE FROM posting WHERE entry_id = 2"))
        conn.execute(text("DELETE FROM journal WHERE id = 2"))
    name, problem = first_problem(booked)
    assert name in ("balances_match_postings", "hash_chain_intact")


def test_a_rehashed_forgery_still_breaks_the_block_chain(booked):
    """Changing a row and recomputing its own hash is caught by the block hash."""
    from ledger.postings import entry_hash, occurred_us

    drop_guards(booked)
    with booked.engine.begin() as conn:
        row = conn.execute(text("SELECT j.id, j.block_id, b.recorded_at, entry_type, platform_id, event_id, "
                                "payload_hash, worker_id, kind, amount_vnd, occurred_at, occurred_month, booking_month, "
                                "rules_version_id, original_entry_id FROM journal j JOIN block b ON b.id = j.block_id "
                                "WHERE j.id = 3")).one()
        legs = conn.execute(text("SELECT account_kind, owner_id, scheme, party, amount_vnd FROM legs "
                                 "WHERE entry_id = 3 ORDER BY leg")).all()
        fields = list(row[3:15])
        fields[7] = "2026-02-10T03:00:01.000000Z"  # occurred_at moved by a second
        forged = entry_hash(row[0], row[1], row[2], [*fields, tuple(tuple(leg) for leg in legs)])
        conn.execute(text("UPDATE journal SET occurred_us = :o, entry_hash = :h WHERE id = 3"),
                     {"o": occurred_us(fields[7]), "h": forged})
    name, problem = first_problem(booked)
    assert name == "hash_chain_intact"
    assert problem.startswith("block 1 (from entry 1) does not match its hash")

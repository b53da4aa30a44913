"""The journal partitioned by booking month on PostgreSQL (revision 0008, docs/scale.md).

Every row lands in the partition of its booking month; `close` creates the partitions of
the next two months; the (platform, event_id) idempotency key holds across partitions
(`event_key`); a partition named directly meets the same guards as `journal`.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.archive import ArchiveError, archive_month, restore_month
from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.reports import settlement, statement
from ledger.store import month_plus, query
from ledger.verify import verify
from tests.ledger.factories import WORKER_A, WORKER_B, event, numbered, refund

POSTGRES_ONLY = pytest.mark.parametrize("database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                        indirect=True)


def book(ledger, *items) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, numbered(list(items)))]


def rows(ledger, statement_text: str, params=()) -> list[tuple]:
    with ledger.engine.connect() as conn:
        found = query(conn, statement_text, params)
        conn.rollback()
    return found


def partition_of(ledger, event_id: str) -> str:
    return rows(ledger, "SELECT tableoid::regclass::text FROM journal WHERE event_id = ?", (event_id,))[0][0]


def partitions(ledger) -> list[str]:
    return [name for (name,) in rows(ledger, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                             "WHERE i.inhparent = 'journal'::regclass ORDER BY 1")]


def refused(ledger, statement_text: str) -> str:
    with pytest.raises(DBAPIError) as caught:
        with ledger.engine.begin() as conn:
            conn.execute(text(statement_text))
    return str(caught.value.orig)


def copy_of_entry(ledger, original: str, *, new_id: int, booking_month: int, into: str = "journal",
                  **changed: str) -> str:
    """An INSERT into `into` of the entry booked for `original` again, with another id and booking
    month, and each column of `changed` computed by its SQL expression."""
    columns = [name for (name,) in rows(ledger, "SELECT column_name FROM information_schema.columns WHERE "
                                                "table_name = 'journal' AND table_schema = current_schema() "
                                                "ORDER BY ordinal_position")]
    chosen = [str(new_id) if name == "id" else str(booking_month) if name == "booking_month" else
              changed.get(name, name) for name in columns]
    return (f"INSERT INTO {into} ({', '.join(columns)}) SELECT {', '.join(chosen)} FROM journal "
            f"WHERE event_id = '{original}'")


def holds(ledger) -> None:
    assert [(check.name, check.problem) for check in verify(ledger) if check.problem] == []


def test_the_months_after_december_count_into_the_next_year():
    assert (month_plus(202611, 1), month_plus(202611, 2), month_plus(202612, 1), month_plus(202601, 12)) == \
        (202612, 202701, 202701, 202701)


@POSTGRES_ONLY
def test_each_event_lands_in_the_partition_of_its_booking_month_and_none_in_the_default(ledger):
    assert book(ledger, event("feb-1"), event("mar-1", occurred_at="2026-03-02T09:00:00+07:00"),
                event("apr-1", worker_id=WORKER_B, occurred_at="2026-04-30T23:00:00+07:00")) == ["accepted"] * 3
    assert [partition_of(ledger, name) for name in ("feb-1", "mar-1", "apr-1")] == \
        ["journal_202602", "journal_202603", "journal_202604"]
    assert rows(ledger, "SELECT count(*) FROM journal_default")[0][0] == 0
    # The idempotency key of each, written by the database with the row: its digest (revision 0011).
    assert rows(ledger, "SELECT key::text, entry_id, booking_month FROM event_key ORDER BY entry_id") == \
        [(event_key_digest(platform_id, name), entry_id, month) for platform_id, name, entry_id, month in
         rows(ledger, "SELECT platform_id, event_id, id, booking_month FROM journal ORDER BY id")]
    holds(ledger)


def event_key_digest(platform_id: int, event_id: str) -> str:
    """What `ansinh_event_key` must give, computed apart: the first 16 bytes of SHA-256 over the
    platform id (4 bytes, big-endian) and the event id's UTF-8 bytes, as uuid text."""
    import hashlib
    import uuid

    return str(uuid.UUID(bytes=hashlib.sha256(platform_id.to_bytes(4, "big") + event_id.encode()).digest()[:16]))


@POSTGRES_ONLY
def test_the_event_key_digest_is_sha256_of_the_platform_and_the_event_id_bytes_in_sql_and_in_python(ledger):
    from uuid import UUID

    from ledger.archive import event_key_digests

    cases = [(1, "e-1"), (2, "e-1"), (7, "chuyến-đi/ổn-định-😀"), (2 ** 31 - 1, ""), (3, "x" * 300),
             (5, "A-Z.a_z:0-9." * 10)]
    for platform_id, event_id in cases:
        in_sql = rows(ledger, "SELECT ansinh_event_key(?, ?)::text", (platform_id, event_id))[0][0]
        assert in_sql == event_key_digest(platform_id, event_id), (platform_id, event_id)
        assert str(UUID(event_key_digests(platform_id, [event_id])[0])) == in_sql  # the lookup's keys
    assert event_key_digests(1, ["e-1", "e-2"])[0] == event_key_digest(1, "e-1").replace("-", "")
    # 16 bytes whatever the length of the id: the key's row and index entry have a fixed width
    assert rows(ledger, "SELECT pg_column_size(ansinh_event_key(3, repeat('x', 300)))")[0][0] == 16


@POSTGRES_ONLY
def test_an_event_whose_digest_names_another_events_entry_is_refused_never_called_its_duplicate(ledger):
    from ledger.archive import EventKeyCollision

    assert book(ledger, event("e-1")) == ["accepted"]
    entry_id, platform_id = rows(ledger, "SELECT id, platform_id FROM journal WHERE event_id = 'e-1'")[0]
    # Two ids with one digest, forged: the key of "victim" points at the entry of "e-1".
    with ledger.engine.begin() as conn:
        conn.execute(text("INSERT INTO event_key (key, entry_id, booking_month) "
                          "VALUES (ansinh_event_key(:p, 'victim'), :e, 202602)"), {"p": platform_id, "e": entry_id})
    with pytest.raises(EventKeyCollision, match="'victim' .* has the idempotency digest of entry"):
        book(ledger, event("victim"))
    assert rows(ledger, "SELECT count(*) FROM journal")[0][0] == 1  # nothing booked
    assert book(ledger, event("e-1"), event("e-2")) == ["duplicate", "accepted"]


def physical_order(ledger, table: str) -> list[str]:
    return [name for (name,) in rows(ledger, "SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass "
                                             "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table,))]


#: A month partition's columns since revision 0011: 8-byte, 4-byte, 2-byte, then variable-width ones.
COMPACT_ORDER = ["id", "block_id", "amount_vnd", "occurred_us", "original_entry_id", "receivable_vnd",
                 "si_worker_vnd", "si_platform_vnd", "oa_worker_vnd", "oa_platform_vnd", "ui_worker_vnd",
                 "ui_platform_vnd", "platform_id", "worker_id", "occurred_month", "booking_month", "rules_version_id",
                 "entry_type", "kind", "event_id", "payload_hash", "occurred_at", "recorded_at", "entry_hash"]


@POSTGRES_ONLY
def test_a_months_partition_lays_its_columns_out_widest_first_and_still_takes_the_journals_rows(ledger):
    assert book(ledger, event("feb-1"), refund("feb-1r", "feb-1", 30_000)) == ["accepted"] * 2
    assert physical_order(ledger, "journal_202602") == COMPACT_ORDER
    assert sorted(physical_order(ledger, "journal")) == sorted(COMPACT_ORDER)
    assert physical_order(ledger, "journal")[:3] == ["id", "block_id", "entry_type"]  # the parent's own order
    # Rows read through the journal are the rows written, column by column; the guards hold on it.
    assert rows(ledger, "SELECT event_id, amount_vnd, original_entry_id IS NOT NULL, receivable_vnd, si_worker_vnd "
                        "FROM journal ORDER BY id") == \
        [("feb-1", 100_000, False, 2_000, -1_000), ("feb-1r", 30_000, True, -600, 300)]
    assert "append_only: UPDATE" in refused(ledger, "UPDATE journal_202602 SET amount_vnd = 1")
    holds(ledger)


@POSTGRES_ONLY
def test_closing_february_creates_the_partitions_of_march_and_april(ledger):
    book(ledger, event("feb-1"))
    assert partitions(ledger) == ["journal_202602", "journal_default"]
    close_month(ledger, "2026-02")
    assert partitions(ledger) == ["journal_202602", "journal_202603", "journal_202604", "journal_default"]
    # The subsidy entries of the close are February's; a late February ride is booked into March.
    assert {month for (month,) in rows(ledger, "SELECT DISTINCT booking_month FROM journal_202602")} == {202602}
    assert book(ledger, event("late-feb", occurred_at="2026-02-27T09:00:00+07:00")) == ["accepted"]
    assert partition_of(ledger, "late-feb") == "journal_202603"
    holds(ledger)


@POSTGRES_ONLY
def test_an_event_redelivered_after_its_month_closed_is_a_duplicate_not_a_second_booking(ledger):
    assert book(ledger, event("e-1"), event("e-2")) == ["accepted", "accepted"]
    close_month(ledger, "2026-02")
    # Re-sent in March: found through event_key in February's partition.
    assert book(ledger, event("e-1"), event("e-2", amount=1)) == ["duplicate", "duplicate_conflict"]
    # A refund in March of a February ride finds its original there too.
    assert book(ledger, refund("e-1r", "e-1", 40_000, occurred_at="2026-03-03T09:00:00+07:00")) == ["accepted"]
    assert partition_of(ledger, "e-1r") == "journal_202603"
    assert rows(ledger, "SELECT count(*) FROM journal WHERE event_id IN ('e-1', 'e-2')")[0][0] == 2
    assert statement(ledger, WORKER_A, "2026-03")["schemes"]["si"]["worker"] == -400  # 40,000 × 1 %
    holds(ledger)


@POSTGRES_ONLY
def test_the_database_refuses_the_same_event_key_in_another_month_partition(ledger):
    book(ledger, event("e-1"))
    last = rows(ledger, "SELECT max(id) FROM journal")[0][0]
    # A unique index of the partitioned journal could not see across months; event_key does.
    assert "event_key_pkey" in refused(ledger, copy_of_entry(ledger, "e-1", new_id=last + 1, booking_month=202603))
    assert rows(ledger, "SELECT count(*) FROM journal")[0][0] == 1


@POSTGRES_ONLY
def test_a_partition_named_directly_refuses_update_delete_truncate_and_a_closed_month(ledger):
    book(ledger, event("e-1"))
    close_month(ledger, "2026-02")
    assert "append_only: UPDATE" in refused(ledger, "UPDATE journal_202602 SET amount_vnd = 1")
    assert "append_only: DELETE" in refused(ledger, "DELETE FROM journal_202602")
    assert "append_only: TRUNCATE" in refused(ledger, "TRUNCATE journal_202602")
    assert "append_only: UPDATE" in refused(ledger, "UPDATE event_key SET entry_id = 0")
    last = rows(ledger, "SELECT max(id) FROM journal")[0][0]
    forged = copy_of_entry(ledger, "e-1", new_id=last + 1, booking_month=202602, into="journal_202602")
    assert "closed_months_frozen" in refused(ledger, forged)
    holds(ledger)


@POSTGRES_ONLY
def test_a_partition_named_directly_refuses_an_unbalanced_compact_row(ledger):
    book(ledger, event("e-1"))
    last = rows(ledger, "SELECT max(id) FROM journal")[0][0]
    forged = copy_of_entry(ledger, "e-1", new_id=last + 1, booking_month=202602, into="journal_202602",
                           event_id="'e-1-forged'", si_worker_vnd="si_worker_vnd + 1")
    assert "compact_entries_balance" in refused(ledger, forged)


# -- archive and restore (ledger/archive.py) ----------------------------------------------------------

def figures(ledger) -> tuple:
    return (statement(ledger, WORKER_A, "2026-02"), statement(ledger, WORKER_A, "2026-03"),
            settlement(ledger, "2026-02"))


def checks(ledger) -> list[tuple[str, str | None]]:
    return [(check.name, check.problem) for check in verify(ledger)]


def closed_february_and_march(ledger) -> None:
    assert book(ledger, event("feb-1"), event("feb-2", worker_id=WORKER_B, amount=250_000),
                refund("feb-1r", "feb-1", 30_000)) == ["accepted"] * 3
    close_month(ledger, "2026-02")
    assert book(ledger, event("mar-1", occurred_at="2026-03-04T09:00:00+07:00")) == ["accepted"]


@POSTGRES_ONLY
def test_an_archived_month_leaves_the_database_and_comes_back_with_identical_statements_and_verify(
        ledger, tmp_path):
    closed_february_and_march(ledger)
    before, entries = figures(ledger), rows(ledger, "SELECT count(*) FROM journal")[0][0]
    holds(ledger)
    result = archive_month(ledger, "2026-02", tmp_path)
    assert result["entries"] == 3 + 2 + 1  # two rides, a refund, the subsidies of A and B, the state claim
    assert (tmp_path / "journal_202602.parquet").exists()
    assert "journal_202602" not in partitions(ledger)
    assert rows(ledger, "SELECT count(*) FROM journal")[0][0] == entries - 6
    # Statements read the aggregates, which stay; they name the archived month.
    archived_statement = statement(ledger, WORKER_A, "2026-03")
    assert archived_statement.pop("archived_months") == ["2026-02"]
    assert archived_statement == before[1]
    # verify reads the month back from its file: every check holds, and says so.
    found = verify(ledger)
    assert [(check.name, check.problem) for check in found if check.problem] == []
    assert found[-1].name == "archived_months" and "2026-02 archived in" in found[-1].detail
    # The keys stay: the archived month's events are still duplicates (and conflicts), read from the file.
    assert book(ledger, event("feb-1"), event("feb-2", worker_id=WORKER_B, amount=250_001)) == \
        ["duplicate", "duplicate_conflict"]
    restore_month(ledger, "2026-02")
    assert "journal_202602" in partitions(ledger)
    assert figures(ledger) == before
    assert checks(ledger)[-1][0] != "archived_months"
    holds(ledger)
    # Restored, the partition is guarded again.
    assert "append_only: DELETE" in refused(ledger, "DELETE FROM journal_202602")


@POSTGRES_ONLY
def test_an_open_month_is_not_archived_and_a_missing_file_fails_verify_by_name(ledger, tmp_path):
    closed_february_and_march(ledger)
    with pytest.raises(ArchiveError, match="2026-03 is not closed"):
        archive_month(ledger, "2026-03", tmp_path)
    archive_month(ledger, "2026-02", tmp_path)
    with pytest.raises(ArchiveError, match="archived already"):
        archive_month(ledger, "2026-02", tmp_path)
    (tmp_path / "journal_202602.parquet").unlink()
    assert checks(ledger) == [("archived_months", f"2026-02 is archived in {tmp_path / 'journal_202602.parquet'}, "
                                                   "which is missing: the month's entries cannot be checked")]


@POSTGRES_ONLY
def test_a_refund_of_a_ride_in_an_archived_month_is_checked_against_its_original_from_the_file(ledger, tmp_path):
    closed_february_and_march(ledger)  # feb-1: 100,000 refunded 30,000 already
    archive_month(ledger, "2026-02", tmp_path)
    late = dict(occurred_at="2026-03-10T09:00:00+07:00")
    # 70,000 left to refund: 80,000 exceeds the original, 70,000 is accepted and reverses the rest.
    assert book(ledger, refund("feb-1r2", "feb-1", 80_000, **late)) == ["refund_exceeds_original"]
    assert book(ledger, refund("feb-1r3", "feb-1", 70_000, **late), event("feb-2", worker_id=WORKER_B,
                                                                          amount=250_000)) == \
        ["accepted", "duplicate"]
    # si.worker of March: the ride of 4 March (1,000) less the refund's 700.
    assert statement(ledger, WORKER_A, "2026-03")["schemes"]["si"]["worker"] == 1_000 - 700
    holds(ledger)
    close_month(ledger, "2026-03")
    close_month(ledger, "2026-04")
    with pytest.raises(ArchiveError, match="archive 2026-03 before 2026-04"):
        archive_month(ledger, "2026-04", tmp_path)


@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_the_archive_command_archives_and_restores_on_postgresql_and_refuses_on_sqlite(ledger, database_url,
                                                                                       tmp_path):
    from typer.testing import CliRunner

    from api.cli import app

    closed_february_and_march(ledger)
    archived = CliRunner().invoke(app, ["archive", "2026-02", "--to", str(tmp_path), "--db", database_url,
                                        "--pack", "vn-pilot"])
    if database_url.startswith("sqlite"):
        assert archived.exit_code == 1 and "partitioned by month" in archived.output
        return
    assert archived.exit_code == 0, archived.output
    assert f"archived 2026-02: 6 entries, {tmp_path / 'journal_202602.parquet'}" in archived.output
    restored = CliRunner().invoke(app, ["archive", "2026-02", "--restore", "--db", database_url, "--pack", "vn-pilot"])
    assert restored.exit_code == 0 and "restored 2026-02: 6 entries" in restored.output
    holds(ledger)


# -- what a review of the archive found (each failed before its fix) ------------------------------------

@POSTGRES_ONLY
def test_archiving_the_last_closed_month_does_not_hand_its_entry_ids_out_again(ledger, tmp_path):
    assert book(ledger, event("feb-1"), event("feb-2", worker_id=WORKER_B)) == ["accepted"] * 2
    close_month(ledger, "2026-02")  # the close's entries hold the highest ids, all in February
    last_archived = rows(ledger, "SELECT max(id) FROM journal")[0][0]
    archive_month(ledger, "2026-02", tmp_path)
    assert book(ledger, event("mar-1", occurred_at="2026-03-04T09:00:00+07:00")) == ["accepted"]
    assert rows(ledger, "SELECT id FROM journal WHERE event_id = 'mar-1'")[0][0] == last_archived + 1
    holds(ledger)


@POSTGRES_ONLY
def test_a_month_holding_a_refund_of_a_later_booked_original_is_not_archived(ledger, tmp_path):
    # A ride of 4 March refunded by an event dated 20 February: the refund books into February.
    assert book(ledger, event("mar-1", occurred_at="2026-03-04T09:00:00+07:00"),
                refund("mar-1r", "mar-1", 60_000, occurred_at="2026-02-20T09:00:00+07:00")) == ["accepted"] * 2
    close_month(ledger, "2026-02")
    with pytest.raises(ArchiveError, match="booked in a later month: 2026-02 cannot be archived before it"):
        archive_month(ledger, "2026-02", tmp_path)


@POSTGRES_ONLY
def test_the_settlement_of_an_archived_month_is_refused_rather_than_read_without_its_entries(ledger, tmp_path):
    closed_february_and_march(ledger)
    archive_month(ledger, "2026-02", tmp_path)
    with pytest.raises(ValueError, match="2026-02 is archived .* --restore` to read its settlement"):
        settlement(ledger, "2026-02")


@POSTGRES_ONLY
def test_an_archive_file_is_never_overwritten(ledger, tmp_path):
    closed_february_and_march(ledger)
    (tmp_path / "journal_202602.parquet").write_bytes(b"another month's only copy")
    with pytest.raises(ArchiveError, match="exists: an archive file is never overwritten"):
        archive_month(ledger, "2026-02", tmp_path)
    assert (tmp_path / "journal_202602.parquet").read_bytes() == b"another month's only copy"
    assert "journal_202602" in partitions(ledger)

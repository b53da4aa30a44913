"""`verify` at scale (issue 15): the hash chain read in chunks of columns, the aggregates compared in SQL.

The chunked hash-chain check must name exactly what the per-entry walk (`hash_chain_walked`)
names, wherever in a chunk the change is; on whole books it must take the column path for
every chunk (a path that always fell back to the walk would be correct but as slow as before).
The aggregate comparison must name the first differing key, with the stored and the
recomputed values, as the comparison in Python did. Both stores.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from ledger import verify as verifying
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.store import consistent_snapshot
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event, numbered, refund

CHUNK = 16  # ids per chunk in these tests: the books below span many chunks
MIDDLE = 2 * CHUNK + CHUNK // 2  # an entry in the middle of the third chunk


def drop_guards(ledger) -> None:
    with ledger.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for (name,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).fetchall():
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            for table in ("journal", "posting", "block"):
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE journal DROP CONSTRAINT IF EXISTS compact_entries_balance"))


def sql(ledger, statement: str, **params) -> list[tuple]:
    with ledger.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return result.fetchall() if result.returns_rows else []


@pytest.fixture
def books(ledger, tmp_path, monkeypatch):
    """February booked in blocks of 10 and closed (subsidies: multi-leg entries), March booked: ~170
    entries; no guards."""
    monkeypatch.setattr(verifying, "CHAIN_CHUNK_IDS", CHUNK)
    tiers = tmp_path / "tiers.csv"
    tiers.write_text(f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n{WORKER_B},near_poor,2026-02\n")
    import_tiers(ledger, tiers)
    for month in ("2026-02", "2026-03"):
        items = []
        for n in range(70):
            items.append(event(f"{month}-{n}",
                               platform=("grab", "be", "shopee")[n % 3], kind=("ride", "delivery", "order")[n % 3],
                               worker_id=(WORKER_A, WORKER_B, WORKER_C)[n % 3], amount=10_000 + 7_919 * n,
                               occurred_at=f"{month}-{1 + n % 27:02d}T09:{n % 60:02d}:00+07:00"))
            if n % 5 == 4:
                items.append(refund(f"{month}-{n}-r", items[-1]["event_id"], 3_000, platform=items[-1]["platform"],
                                    kind=items[-1]["kind"], worker_id=items[-1]["worker_id"],
                                    occurred_at=f"{month}-28T10:00:00+07:00"))
        for start in range(0, len(items), 10):
            ingest_batch(ledger, numbered(items[start:start + 10]))
        if month == "2026-02":
            close_month(ledger, month)
    drop_guards(ledger)
    return ledger


def chain_problems(ledger) -> tuple[str | None, str | None, int]:
    """(the chunked check's problem, the per-entry walk's, how many chunks the chunked one walked)."""
    walked = []
    take_walk = verifying._Chain.take_walk

    def counting(self, conn, low, high):
        walked.append((low, high))
        return take_walk(self, conn, low, high)

    with consistent_snapshot(ledger) as conn:
        verifying._Chain.take_walk = counting
        try:
            chunked = verifying.hash_chain_intact(conn, ledger)
        finally:
            verifying._Chain.take_walk = take_walk
        return chunked, verifying.hash_chain_walked(conn, ledger), len(walked)


def test_whole_books_are_hashed_as_columns_in_every_chunk_and_pass(books):
    entries = sql(books, "SELECT count(*) FROM journal")[0][0]
    assert entries > 6 * CHUNK
    assert sql(books, "SELECT count(*) FROM posting")[0][0] > 0  # multi-leg entries too
    assert chain_problems(books) == (None, None, 0)
    assert [check.problem for check in verifying.verify(books, stop_at_first=False)] == [None] * len(verifying.INVARIANTS)


def test_an_amount_changed_in_the_middle_of_a_chunk_names_that_entry_and_walks_only_its_chunk(books):
    sql(books, "UPDATE journal SET amount_vnd = amount_vnd + 1 WHERE id = :e", e=MIDDLE)
    chunked, walked, chunks_walked = chain_problems(books)
    assert chunked == walked == f"entry {MIDDLE} does not match its hash: a row or a leg was changed"
    assert chunks_walked == 1


def change_a_share(ledger, entry_id):
    sql(ledger, "UPDATE journal SET receivable_vnd = receivable_vnd - 7, si_worker_vnd = si_worker_vnd + 7 "
                "WHERE id = :e", e=entry_id)


def zero_every_share(ledger, entry_id):
    """A compact row whose shares are all zero but whose receivable is not: its receivable leg still counts."""
    sql(ledger, "UPDATE journal SET si_worker_vnd = NULL, si_platform_vnd = NULL, oa_worker_vnd = NULL, "
                "oa_platform_vnd = NULL, ui_worker_vnd = NULL, ui_platform_vnd = NULL WHERE id = :e", e=entry_id)


def give_it_two_times(ledger, entry_id):
    sql(ledger, "UPDATE journal SET occurred_at = '2026-02-02T02:00:00.000000Z' WHERE id = :e", e=entry_id)


def delete_it(ledger, entry_id):
    sql(ledger, "DELETE FROM journal WHERE id = :e", e=entry_id)


def move_it_to_the_next_block(ledger, entry_id):
    sql(ledger, "UPDATE journal SET block_id = block_id + 1 WHERE id = :e", e=entry_id)


def add_postings_to_a_compact_row(ledger, entry_id):
    for leg, amount in ((0, 5_000), (1, -5_000)):
        sql(ledger, "INSERT INTO posting (entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd) "
                    "VALUES (:e, :leg, 1, 1, 1, 1, :a)", e=entry_id, leg=leg, a=amount)


def change_a_subsidy_leg(ledger, _entry_id):
    entry = sql(ledger, "SELECT min(entry_id) FROM posting")[0][0]
    sql(ledger, "UPDATE posting SET amount_vnd = amount_vnd + 1 WHERE entry_id = :e AND leg = 0", e=entry)


@pytest.mark.parametrize("tamper", [change_a_share, zero_every_share, give_it_two_times, delete_it,
                                    move_it_to_the_next_block, add_postings_to_a_compact_row, change_a_subsidy_leg],
                         ids=lambda tamper: tamper.__name__)
def test_a_change_anywhere_is_named_by_the_chunks_exactly_as_by_the_walk(books, tamper):
    tamper(books, MIDDLE)
    chunked, walked, _chunks = chain_problems(books)
    assert walked is not None
    assert chunked == walked


def test_a_row_changed_and_rehashed_is_named_by_its_block_as_by_the_walk(books):
    from tests.reliability.test_tamper import rehash_entry

    sql(books, "UPDATE journal SET amount_vnd = amount_vnd + 1 WHERE id = :e", e=MIDDLE)
    rehash_entry(books, MIDDLE)
    chunked, walked, chunks_walked = chain_problems(books)
    block = sql(books, "SELECT block_id FROM journal WHERE id = :e", e=MIDDLE)[0][0]
    assert chunked == walked and chunked.startswith(f"block {block} (from entry ")
    assert chunks_walked == 0  # every entry matches its kept hash: only the block hash is off


def test_entries_deleted_from_the_end_are_named_by_the_blocks_as_by_the_walk(books):
    last = sql(books, "SELECT max(id) FROM journal")[0][0]
    sql(books, "DELETE FROM journal WHERE id = :e", e=last)
    chunked, walked, _chunks = chain_problems(books)
    assert chunked == walked == (f"entry {last} is missing: the blocks recorded entries up to {last}, "
                                 f"the journal ends at entry {last - 1} (rows were deleted)")


def balances_problem(ledger) -> str | None:
    with consistent_snapshot(ledger) as conn:
        return verifying.balances_match_postings(conn, ledger)


def first_worker_key(ledger) -> tuple:
    return sql(ledger, "SELECT worker_id, month, scheme, platform_id, worker_vnd, platform_vnd, subsidy_vnd "
                       "FROM worker_month WHERE platform_id <> 0 ORDER BY worker_id, month, scheme, platform_id "
                       "LIMIT 1 OFFSET 3")[0]


def test_a_worker_aggregate_off_by_one_dong_names_its_key_and_both_values(books):
    worker, month, scheme, platform, worker_vnd, platform_vnd, subsidy_vnd = first_worker_key(books)
    sql(books, "UPDATE worker_month SET platform_vnd = platform_vnd + 1 WHERE worker_id = :w AND month = :m "
               "AND scheme = :s AND platform_id = :p", w=worker, m=month, s=scheme, p=platform)
    assert balances_problem(books) == (
        f"worker aggregate (worker, month, scheme, platform) ({worker}, {month}, {scheme}, {platform}): "
        f"stored ({worker_vnd}, {platform_vnd + 1}, {subsidy_vnd}) but the postings give "
        f"({worker_vnd}, {platform_vnd}, {subsidy_vnd})")


def test_a_deleted_worker_aggregate_is_named_as_stored_none(books):
    worker, month, scheme, platform, worker_vnd, platform_vnd, subsidy_vnd = first_worker_key(books)
    sql(books, "DELETE FROM worker_month WHERE worker_id = :w AND month = :m AND scheme = :s AND platform_id = :p",
        w=worker, m=month, s=scheme, p=platform)
    assert balances_problem(books) == (
        f"worker aggregate (worker, month, scheme, platform) ({worker}, {month}, {scheme}, {platform}): "
        f"stored None but the postings give ({worker_vnd}, {platform_vnd}, {subsidy_vnd})")


def test_a_worker_aggregate_no_leg_names_is_named_as_the_postings_give_none(books):
    sql(books, "INSERT INTO worker_month (worker_id, month, scheme, platform_id, worker_vnd, platform_vnd, subsidy_vnd) "
               "VALUES (1, 202512, 2, 1, 0, 0, 1)")
    assert balances_problem(books) == ("worker aggregate (worker, month, scheme, platform) (1, 202512, 2, 1): "
                                       "stored (0, 0, 1) but the postings give None")


def test_a_worker_aggregate_of_zeros_no_leg_names_is_no_difference(books):
    sql(books, "INSERT INTO worker_month (worker_id, month, scheme, platform_id, worker_vnd, platform_vnd, subsidy_vnd) "
               "VALUES (1, 202512, 2, 1, 0, 0, 0)")
    assert balances_problem(books) is None


def test_a_platform_aggregate_off_by_one_dong_names_its_key_and_both_values(books):
    platform, month, scheme, worker_vnd, platform_vnd = sql(
        books, "SELECT platform_id, month, scheme, worker_vnd, platform_vnd FROM platform_month "
               "ORDER BY platform_id DESC, month, scheme LIMIT 1")[0]
    sql(books, "UPDATE platform_month SET worker_vnd = worker_vnd - 1 WHERE platform_id = :p AND month = :m "
               "AND scheme = :s", p=platform, m=month, s=scheme)
    assert balances_problem(books) == (
        f"platform aggregate (platform, month, scheme) ({platform}, {month}, {scheme}): "
        f"stored ({worker_vnd - 1}, {platform_vnd}, 0) but the postings give ({worker_vnd}, {platform_vnd}, 0)")


def postings_problem(ledger) -> str | None:
    with consistent_snapshot(ledger) as conn:
        return verifying.postings_belong_to_entries(conn, ledger)


def test_postings_of_no_entry_are_named_before_a_compact_row_with_postings(books):
    assert postings_problem(books) is None
    add_postings_to_a_compact_row(books, MIDDLE)
    assert postings_problem(books) == f"entry {MIDDLE} is compact but has postings too"
    last = sql(books, "SELECT max(id) FROM journal")[0][0]
    add_postings_to_a_compact_row(books, last + 5)
    assert postings_problem(books) == f"postings of entry {last + 5} have no journal entry"

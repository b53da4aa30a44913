"""`ansinh verify`: re-derive everything from the postings and name the first thing that is off.

Each invariant is a named function returning None (holds) or a sentence naming the
first bad entry, account or month. `INVARIANTS` lists them in the order they run;
tests run them after every ledger operation.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from ledger.accounts import PARTY_CODE, SCHEME_NAME, AccountKind
from ledger.books import Ledger, version_from_document
from ledger.close import subsidies_for_month
from ledger.events import month_text
from ledger.postings import block_hash, entry_hash
from ledger.store import query

_WORKER = int(AccountKind.worker)


class Check(NamedTuple):
    name: str
    problem: str | None
    detail: str


def entries_balance(conn, ledger) -> str | None:
    rows = query(conn, "SELECT entry_id, sum(amount_vnd) FROM posting GROUP BY entry_id "
                       "HAVING sum(amount_vnd) <> 0 ORDER BY entry_id LIMIT 1")
    return f"entry {rows[0][0]} does not balance: its postings sum to {rows[0][1]}" if rows else None


def book_balances(conn, ledger) -> str | None:
    total = query(conn, "SELECT coalesce(sum(amount_vnd), 0) FROM posting")[0][0]
    return None if int(total) == 0 else f"the book does not balance: all postings sum to {total}"


def postings_belong_to_entries(conn, ledger) -> str | None:
    rows = query(conn, "SELECT p.entry_id FROM posting p LEFT JOIN journal j ON j.id = p.entry_id "
                       "WHERE j.id IS NULL ORDER BY p.entry_id LIMIT 1")
    return f"postings of entry {rows[0][0]} have no journal entry" if rows else None


def _compare(conn, stored_sql: str, rebuilt_sql: str, what: str) -> str | None:
    stored = {tuple(row[:-3]): tuple(int(v) for v in row[-3:]) for row in query(conn, stored_sql)}
    rebuilt = {tuple(row[:-3]): tuple(int(v) for v in row[-3:]) for row in query(conn, rebuilt_sql)}
    for key in sorted(stored.keys() | rebuilt.keys()):
        if stored.get(key, (0, 0, 0)) != rebuilt.get(key, (0, 0, 0)):
            return f"{what} {key}: stored {stored.get(key)} but the postings give {rebuilt.get(key)}"
    return None


def balances_match_postings(conn, ledger) -> str | None:
    worker, platform, state = PARTY_CODE["worker"], PARTY_CODE["platform"], PARTY_CODE["state"]
    problem = _compare(
        conn,
        "SELECT worker_id, month, scheme, platform_id, worker_vnd, platform_vnd, subsidy_vnd FROM worker_month",
        "SELECT p.owner_id, j.booking_month, p.scheme, coalesce(j.platform_id, 0), "
        f"-sum(CASE WHEN p.party = {worker} THEN p.amount_vnd ELSE 0 END), "
        f"-sum(CASE WHEN p.party = {platform} THEN p.amount_vnd ELSE 0 END), "
        f"-sum(CASE WHEN p.party = {state} THEN p.amount_vnd ELSE 0 END) "
        f"FROM posting p JOIN journal j ON j.id = p.entry_id WHERE p.account_kind = {_WORKER} "
        "GROUP BY p.owner_id, j.booking_month, p.scheme, coalesce(j.platform_id, 0)",
        "worker aggregate (worker, month, scheme, platform)",
    )
    if problem:
        return problem
    return _compare(
        conn,
        "SELECT platform_id, month, scheme, worker_vnd, platform_vnd, 0 FROM platform_month",
        f"SELECT j.platform_id, j.booking_month, p.scheme, "
        f"-sum(CASE WHEN p.party = {worker} THEN p.amount_vnd ELSE 0 END), "
        f"-sum(CASE WHEN p.party = {platform} THEN p.amount_vnd ELSE 0 END), 0 "
        f"FROM posting p JOIN journal j ON j.id = p.entry_id WHERE p.account_kind = {_WORKER} "
        "AND j.platform_id IS NOT NULL GROUP BY j.platform_id, j.booking_month, p.scheme",
        "platform aggregate (platform, month, scheme)",
    )


def platform_receivables_match_dues(conn, ledger) -> str | None:
    """Each platform's receivable equals the shares credited to workers from its events."""
    rows = query(conn, "SELECT j.platform_id, sum(p.amount_vnd) FROM posting p JOIN journal j ON j.id = p.entry_id "
                       f"WHERE j.platform_id IS NOT NULL AND p.account_kind IN ({_WORKER}, {int(AccountKind.platform)}) "
                       "GROUP BY j.platform_id HAVING sum(p.amount_vnd) <> 0 LIMIT 1")
    return f"platform {rows[0][0]}: receivable and worker credits differ by {rows[0][1]}" if rows else None


def clearing_accounts_drain(conn, ledger) -> str | None:
    rows = query(conn, "SELECT owner_id, scheme, sum(amount_vnd) FROM posting "
                       f"WHERE account_kind = {int(AccountKind.clearing)} GROUP BY owner_id, scheme "
                       "HAVING sum(amount_vnd) <> 0 LIMIT 1")
    return (f"subsidy clearing of {month_text(rows[0][0])} scheme {rows[0][1]} holds {rows[0][2]}, not zero"
            if rows else None)


def refunds_within_originals(conn, ledger) -> str | None:
    rows = query(conn, "SELECT o.id, o.amount_vnd, sum(r.amount_vnd) FROM journal r JOIN journal o "
                       "ON o.id = r.original_entry_id GROUP BY o.id, o.amount_vnd "
                       "HAVING sum(r.amount_vnd) > o.amount_vnd LIMIT 1")
    return f"entry {rows[0][0]} is refunded {rows[0][2]} of {rows[0][1]}" if rows else None


def closed_months_frozen(conn, ledger) -> str | None:
    closes = query(conn, "SELECT month, last_entry_id FROM month_close ORDER BY month")
    for month, last_entry_id in closes:
        rows = query(conn, "SELECT min(id) FROM journal WHERE booking_month <= ? AND id > ?", (month, last_entry_id))
        if rows and rows[0][0] is not None:
            return f"entry {rows[0][0]} was booked into {month_text(month)} after it closed"
    months = [month for month, _ in closes]
    for earlier, later in zip(months, months[1:]):
        if later != (earlier + 89 if earlier % 100 == 12 else earlier + 1):
            return f"closes are not consecutive: {month_text(earlier)} then {month_text(later)}"
    return None


def subsidy_matches_rules(conn, ledger) -> str | None:
    """Re-run the close arithmetic for each closed month, with the rules version stored beside it
    and the household statuses recorded before it; compare with the subsidy posted."""
    closes = query(conn, "SELECT c.month, c.last_tier_id, v.pack, v.effective_from, v.document_json "
                         "FROM month_close c JOIN rules_version v ON v.id = c.rules_version_id ORDER BY c.month")
    for month, last_tier_id, pack, effective_from, document in closes:
        version = version_from_document(pack, effective_from, document)
        expected = subsidies_for_month(conn, month, version, last_tier_id)
        posted = {(worker_id, SCHEME_NAME[scheme]): int(total) for worker_id, scheme, total in query(
            conn, "SELECT worker_id, scheme, sum(subsidy_vnd) FROM worker_month WHERE month = ? AND platform_id = 0 "
                  "GROUP BY worker_id, scheme HAVING sum(subsidy_vnd) <> 0", (month,))}
        if posted != expected:
            worker = sorted(set(posted.items()) ^ set(expected.items()))[0][0]
            return (f"{month_text(month)}: subsidy of worker {worker[0]} scheme {worker[1]} is "
                    f"{posted.get(worker, 0)}, the rules give {expected.get(worker, 0)}")
    return None


def hash_chain_intact(conn, ledger) -> str | None:
    """Recompute every entry hash from its row and legs, and every block hash in order."""
    raw = conn.connection.driver_connection
    postings = raw.execute("SELECT entry_id, account_kind, owner_id, scheme, party, amount_vnd FROM posting "
                           "ORDER BY entry_id, leg") if conn.dialect.name == "sqlite" else None
    cursor = None
    if postings is None:
        cursor = raw.cursor(name="verify_postings")
        cursor.itersize = 50_000
        cursor.execute("SELECT entry_id, account_kind, owner_id, scheme, party, amount_vnd FROM posting "
                       "ORDER BY entry_id, leg")
        postings = cursor
    postings_iter = iter(postings)
    pending_leg = next(postings_iter, None)
    entries = query(conn, "SELECT id, block_id, recorded_at, entry_type, platform_id, event_id, payload_hash, "
                          "worker_id, kind, amount_vnd, occurred_at, occurred_month, booking_month, "
                          "rules_version_id, original_entry_id, entry_hash FROM journal ORDER BY id")
    blocks = query(conn, "SELECT id, prev_hash, block_hash FROM block ORDER BY id")
    by_block: dict[int, list[bytes]] = {}
    for row in entries:
        entry_id, block_id, recorded_at = row[0], row[1], row[2]
        legs = []
        while pending_leg is not None and pending_leg[0] == entry_id:
            legs.append(tuple(pending_leg[1:]))
            pending_leg = next(postings_iter, None)
        fields = list(row[3:15])
        if fields[3] is not None:
            fields[3] = bytes(fields[3])
        fields.append(tuple(legs))
        computed = entry_hash(entry_id, block_id, recorded_at, fields)
        if computed != bytes(row[15]):
            return f"entry {entry_id} does not match its hash: a row or a leg was changed"
        by_block.setdefault(block_id, []).append(computed)
    if pending_leg is not None:
        return f"postings of entry {pending_leg[0]} have no journal entry"
    if cursor is not None:
        cursor.close()
    previous = b"\x00"
    for block_id, prev_hash, stored_hash in blocks:
        if bytes(prev_hash) != previous:
            return f"block {block_id} does not chain to the block before it"
        computed = block_hash(previous, block_id, by_block.pop(block_id, []))
        if computed != bytes(stored_hash):
            first = query(conn, "SELECT min(id) FROM journal WHERE block_id = ?", (block_id,))[0][0]
            return f"block {block_id} (from entry {first}) does not match its hash: an entry was inserted, changed or deleted"
        previous = computed
    if by_block:
        return f"entries of block {min(by_block)} belong to no recorded block"
    head = query(conn, "SELECT chain_head_hash FROM ledger_state WHERE id = 1")[0][0]
    if blocks and bytes(head) != previous:
        return "the chain head does not match the last block: blocks were removed"
    return None


INVARIANTS: list[tuple[str, Callable]] = [
    ("entries_balance", entries_balance),
    ("book_balances", book_balances),
    ("postings_belong_to_entries", postings_belong_to_entries),
    ("balances_match_postings", balances_match_postings),
    ("platform_receivables_match_dues", platform_receivables_match_dues),
    ("clearing_accounts_drain", clearing_accounts_drain),
    ("refunds_within_originals", refunds_within_originals),
    ("closed_months_frozen", closed_months_frozen),
    ("subsidy_matches_rules", subsidy_matches_rules),
    ("hash_chain_intact", hash_chain_intact),
]


def verify(ledger: Ledger, stop_at_first: bool = True) -> list[Check]:
    """Run every invariant; return each with None or the first problem found."""
    results: list[Check] = []
    with ledger.engine.connect() as conn:
        counts = query(conn, "SELECT (SELECT count(*) FROM journal), (SELECT count(*) FROM posting), "
                             "(SELECT count(*) FROM block)")[0]
        for name, check in INVARIANTS:
            problem = check(conn, ledger)
            results.append(Check(name, problem, f"{counts[0]} entries, {counts[1]} postings, {counts[2]} blocks"))
            if problem and stop_at_first:
                break
        conn.rollback()
    return results

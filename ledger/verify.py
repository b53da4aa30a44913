"""`ansinh verify`: re-derive everything from the postings and name the first thing that is off.

Each invariant is a named function returning None (holds) or a sentence naming the
first bad entry, account or month. `INVARIANTS` lists them in the order they run;
tests run them after every ledger operation.

Anchors make the hash chain evidence outside the books: `ansinh close` prints the
hash of the block that closed a month; an insurer who keeps it can later run
`ansinh verify --from-anchor 2026-02=HEX`, which recomputes the chain from the rows
alone and fails unless it reaches that hash (`anchor_problems`).
"""
from __future__ import annotations

import hashlib
from itertools import chain, groupby
from operator import itemgetter
from collections.abc import Sequence
from typing import Callable, NamedTuple
from weakref import WeakKeyDictionary

import numpy as np

from ledger import money
from ledger.accounts import PARTY_CODE, SCHEME_CODE, SCHEME_NAME, AccountKind, EntryType
from ledger.books import Ledger, version_from_document
from ledger.close import subsidies_for_month
from ledger.events import month_text, parse_month
from ledger.postings import (_BLAKE2B_32, _DIGEST, _DUMPS_NUMPY, ENTRY_HASH_KEPT, SEALED_TABLES, TABLES_SEALED_BY_VERSION,
                             _hashed_legs, block_hash, block_hasher, collector_paused, compact_legs, entry_hash,
                             occurred_text, utc_texts,
                             row_seal)
from ledger.layout import COMPACT_COLUMNS, COMPACT_SUM, SHARES_READ
from ledger.store import consistent_snapshot, query, stream_rows

_WORKER = int(AccountKind.worker)


class Check(NamedTuple):
    name: str
    problem: str | None
    detail: str


def entries_balance(conn, ledger) -> str | None:
    """Every entry's legs sum to zero: a multi-leg entry's postings, a compact row's receivable and shares."""
    rows = query(conn, "SELECT entry_id, sum(amount_vnd) FROM posting GROUP BY entry_id "
                       "HAVING sum(amount_vnd) <> 0 ORDER BY entry_id LIMIT 1")
    if rows:
        return f"entry {rows[0][0]} does not balance: its postings sum to {rows[0][1]}"
    rows = query(conn, f"SELECT id, {COMPACT_SUM} FROM journal WHERE receivable_vnd IS NOT NULL "
                       f"AND {COMPACT_SUM} <> 0 ORDER BY id LIMIT 1")
    return f"entry {rows[0][0]} does not balance: its receivable and shares sum to {rows[0][1]}" if rows else None


def book_balances(conn, ledger) -> str | None:
    total = int(query(conn, "SELECT coalesce(sum(amount_vnd), 0) FROM posting")[0][0]) + int(query(
        conn, f"SELECT coalesce(sum({COMPACT_SUM}), 0) FROM journal WHERE receivable_vnd IS NOT NULL")[0][0])
    return None if int(total) == 0 else f"the book does not balance: all postings sum to {total}"


def postings_belong_to_entries(conn, ledger) -> str | None:
    """Every posting's entry is a multi-leg journal row: the first entry id with postings but no
    journal row, else the first compact row with postings. One pass over the entries the
    postings name (each once), not one join per question."""
    orphan, compact = query(conn, "SELECT min(CASE WHEN j.id IS NULL THEN e.entry_id END), "
                                  "min(CASE WHEN j.receivable_vnd IS NOT NULL THEN e.entry_id END) "
                                  "FROM (SELECT DISTINCT entry_id FROM posting) e LEFT JOIN journal j ON j.id = e.entry_id")[0]
    if orphan is not None:
        return f"postings of entry {orphan} have no journal entry"
    return f"entry {compact} is compact but has postings too" if compact is not None else None


def _rebuilt_worker_months() -> str:
    """SQL (`WITH … legs AS …`) of the worker aggregate recomputed from the legs themselves: rows of
    (w, m, s, p) and credits (v1, v2, v3) = [worker, platform, state], a key's credits the sum of
    its rows: the compact rows' share columns (a scheme's key only where its worker or platform
    share sums to non-zero) and the multi-leg entries' postings on worker accounts (every key
    they name): the keys and sums `worker_credits` built in Python before."""
    worker, platform, state = PARTY_CODE["worker"], PARTY_CODE["platform"], PARTY_CODE["state"]
    sums = ", ".join(f"-sum({column}) AS c{number}" for number, column in enumerate(SHARES_READ))
    schemes = " UNION ALL ".join(
        f"SELECT w, m, {scheme} AS s, p, c{2 * scheme - 2} AS v1, c{2 * scheme - 1} AS v2, 0 AS v3 FROM shares "
        f"WHERE c{2 * scheme - 2} <> 0 OR c{2 * scheme - 1} <> 0" for scheme in (1, 2, 3))
    return (f"WITH shares AS (SELECT worker_id AS w, booking_month AS m, coalesce(platform_id, 0) AS p, {sums} "
            "FROM journal WHERE receivable_vnd IS NOT NULL GROUP BY worker_id, booking_month, coalesce(platform_id, 0)), "
            f"legs AS ({schemes} UNION ALL "
            "SELECT p.owner_id, j.booking_month, p.scheme, coalesce(j.platform_id, 0), "
            f"-sum(CASE WHEN p.party = {worker} THEN p.amount_vnd ELSE 0 END), "
            f"-sum(CASE WHEN p.party = {platform} THEN p.amount_vnd ELSE 0 END), "
            f"-sum(CASE WHEN p.party = {state} THEN p.amount_vnd ELSE 0 END) "
            f"FROM posting p JOIN journal j ON j.id = p.entry_id WHERE p.account_kind = {_WORKER} "
            "GROUP BY p.owner_id, j.booking_month, p.scheme, coalesce(j.platform_id, 0)) ")


def _first_difference(conn, keys: tuple[str, ...], stored: str, rebuilt: str, what: str, prefix: str = "") -> str | None:
    """The first key, in key order, where the `stored` rows and the `rebuilt` ones (each: the
    columns `keys` then three values) differ, a missing row counting as zeros; compared by the
    database in one aggregate over both (no join: SQLite would nest loops over the rebuilt rows),
    in the words the comparison of the two in Python used."""
    listed = ", ".join(keys)
    rows = query(conn, f"{prefix}SELECT {listed}, max(a), sum(a1), sum(a2), sum(a3), max(r), sum(r1), sum(r2), sum(r3) "
                       f"FROM (SELECT {listed}, 1 AS a, v1 AS a1, v2 AS a2, v3 AS a3, 0 AS r, 0 AS r1, 0 AS r2, 0 AS r3 "
                       f"FROM {stored} x UNION ALL SELECT {listed}, 0, 0, 0, 0, 1, v1, v2, v3 FROM {rebuilt} y) "
                       f"both_sides GROUP BY {listed} HAVING sum(a1) <> sum(r1) OR sum(a2) <> sum(r2) OR sum(a3) <> sum(r3) "
                       f"ORDER BY {listed} LIMIT 1")
    if not rows:
        return None
    row, width = rows[0], len(keys)
    key = tuple(int(value) for value in row[:width])
    stored_values, rebuilt_values = tuple(map(int, row[width + 1:width + 4])), tuple(map(int, row[width + 5:]))
    return (f"{what} {key}: stored {stored_values if row[width] else None} "
            f"but the postings give {rebuilt_values if row[width + 4] else None}")


_WORKER_KEYS, _PLATFORM_KEYS = ("w", "m", "s", "p"), ("p", "m", "s")
_WORKER_MONTH = ("(SELECT worker_id AS w, month AS m, scheme AS s, platform_id AS p, worker_vnd AS v1, "
                 "platform_vnd AS v2, subsidy_vnd AS v3 FROM worker_month)")
_PLATFORM_MONTH = ("(SELECT platform_id AS p, month AS m, scheme AS s, worker_vnd AS v1, platform_vnd AS v2, 0 AS v3 "
                   "FROM platform_month)")


def balances_match_postings(conn, ledger) -> str | None:
    """The aggregates equal what the legs give: `worker_month` per (worker, month, scheme, platform),
    then `platform_month` per (platform, month, scheme). The database recomputes and compares both
    (the first differing key in key order); nothing per key comes back to Python."""
    rebuilt = _rebuilt_worker_months()
    problem = _first_difference(conn, _WORKER_KEYS, _WORKER_MONTH, "legs",
                                "worker aggregate (worker, month, scheme, platform)", prefix=rebuilt)
    if problem:
        return problem
    # The worker aggregate now equals the legs, key by key (a missing key as zeros), so the platform
    # sums of `worker_month` are the legs' platform sums: compare with them, cheaply. Only when they
    # differ is the platform aggregate of the legs themselves recomputed, for the exact words.
    from_workers = ("(SELECT platform_id AS p, month AS m, scheme AS s, sum(worker_vnd) AS v1, sum(platform_vnd) AS v2, "
                    "0 AS v3 FROM worker_month WHERE platform_id <> 0 GROUP BY platform_id, month, scheme)")
    if _first_difference(conn, _PLATFORM_KEYS, _PLATFORM_MONTH, from_workers, "") is None:
        return None
    by_platform = "(SELECT p, m, s, sum(v1) AS v1, sum(v2) AS v2, 0 AS v3 FROM legs WHERE p <> 0 GROUP BY p, m, s)"
    return _first_difference(conn, _PLATFORM_KEYS, _PLATFORM_MONTH, by_platform,
                             "platform aggregate (platform, month, scheme)", prefix=rebuilt)


def platform_receivables_match_dues(conn, ledger) -> str | None:
    """Each platform's receivable equals the shares credited to workers from its events (a compact
    row's own balance is `entries_balance`; here the multi-leg entries that name a platform)."""
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


def credits_match_rules(conn, ledger) -> str | None:
    """Re-run RULES.md §11 at every close, in month order, over the aggregates (which
    balances_match_postings proves equal to the postings); the credited months recorded must be
    exactly those, each by the close that credited it and at its floor."""
    from ledger.credits import replay_credits
    from rules.crediting import ordinal_month

    ids, history = replay_credits(conn, ledger.pack)
    expected = {(int(ids[worker]), int(ordinal_month(int(month)))): (close, int(floor))
                for close, credited in history
                for worker, month, floor in zip(credited.worker.tolist(), credited.month.tolist(),
                                                credited.floor_vnd.tolist())}
    stored = {(int(worker), int(month)): (int(close), int(floor)) for worker, month, close, floor in query(
        conn, "SELECT worker_id, month, close_month, floor_vnd FROM credited_month")}
    if stored == expected:
        return None
    differing = sorted(set(stored.items()) ^ set(expected.items()), key=lambda item: (item[1][0], item[0]))
    (worker, month), _ = differing[0]
    books, rule = stored.get((worker, month)), expected.get((worker, month))

    def said(found) -> str:
        return "nothing" if found is None else f"credited by the close of {month_text(found[0])} at {found[1]:,} VND"

    return f"worker {worker}, month {month_text(month)}: the books record {said(books)}, the rule gives {said(rule)}"


def bills_and_claims_match_settlement(conn, ledger) -> str | None:
    """Each month's bills equal the platforms' dues, its claim lines the subsidy posted (docs/payments.md).

    The first close's bills also hold what was booked in the months before it."""
    previous = 0
    for month, in query(conn, "SELECT month FROM money_close ORDER BY month"):
        dues = {int(platform_id): int(total) for platform_id, total in query(
            conn, "SELECT platform_id, sum(worker_vnd + platform_vnd) FROM platform_month WHERE month > ? "
                  "AND month <= ? GROUP BY platform_id", (previous, month))}
        previous = month
        bills = {int(payer): int(amount) for payer, amount in query(
            conn, "SELECT payer_id, sum(amount_vnd) FROM money_record WHERE kind = 'bill' AND month = ? "
                  "GROUP BY payer_id", (month,))}
        if dues != bills:
            platform = sorted(set(dues.items()) ^ set(bills.items()))[0][0]
            return (f"{month_text(month)}: platform {platform} is billed {bills.get(platform, 0)}, "
                    f"its dues are {dues.get(platform, 0)}")
        subsidy = {int(scheme): int(total) for scheme, total in query(
            conn, "SELECT scheme, sum(subsidy_vnd) FROM worker_month WHERE month = ? AND platform_id = 0 "
                  "GROUP BY scheme HAVING sum(subsidy_vnd) <> 0", (month,))}
        claims = {int(scheme): int(amount) for scheme, amount in query(
            conn, "SELECT scheme, sum(amount_vnd) FROM money_record WHERE kind = 'claim' AND month = ? "
                  "GROUP BY scheme", (month,))}
        if subsidy != claims:
            return f"{month_text(month)}: the state is claimed {claims}, the subsidy posted is {subsidy} (by scheme code)"
    return None


def money_records_match_entries(conn, ledger) -> str | None:
    """Every payment, top-up and interest charge is booked by exactly one entry of its amount, and no such
    entry is unrecorded."""
    types = {"payment": int(EntryType.payment), "interest": int(EntryType.late_interest),
             money.TOPUP: int(EntryType.topup)}
    for kind, entry_type in types.items():
        recorded = {int(entry_id): int(amount) for entry_id, amount in query(
            conn, "SELECT entry_id, amount_vnd FROM money_record WHERE kind = ?", (kind,))}
        booked = {int(entry_id): int(amount) for entry_id, amount in query(
            conn, "SELECT id, amount_vnd FROM journal WHERE entry_type = ?", (entry_type,))}
        if recorded != booked:
            entry = sorted(set(recorded.items()) ^ set(booked.items()))[0][0]
            return (f"{kind} entry {entry}: recorded {recorded.get(entry)} but booked {booked.get(entry)}")
    return None


def topups_credit_their_workers(conn, ledger) -> str | None:
    """Each worker top-up (RULES.md §11) is one entry with exactly two legs — the fund's bank debited,
    the worker's `si` account credited with party `worker` — for the worker, month and amount of its
    record, and its memo's reference names that worker; and the bank holds exactly the money
    recorded as received (platforms', the state's, workers')."""
    expected = {int(record.entry_id or 0): record for record in money.load_records(conn, kinds=(money.TOPUP,))}
    legs: dict[int, list[tuple]] = {}
    rows = query(conn, "SELECT j.id, j.worker_id, j.booking_month, p.account_kind, p.owner_id, p.scheme, p.party, "
                       "p.amount_vnd FROM journal j LEFT JOIN posting p ON p.entry_id = j.id "
                       f"WHERE j.entry_type = {int(EntryType.topup)} ORDER BY j.id, p.leg")
    entries: dict[int, tuple[int, int]] = {}
    for entry_id, worker_id, month, *leg in rows:
        entries[int(entry_id)] = (worker_id, month)
        if leg[0] is not None:
            legs.setdefault(int(entry_id), []).append(tuple(int(value) for value in leg))
    for entry_id in sorted(entries.keys() | expected.keys()):
        record = expected.get(entry_id)
        if record is None or entry_id not in entries:
            return f"top-up entry {entry_id} has no top-up record" if record is None else \
                f"top-up record {record.id} names entry {entry_id}, which is no top-up entry"
        worker_id, month = entries[entry_id]
        wanted = [(int(AccountKind.bank), 0, 0, 0, record.amount_vnd),
                  (_WORKER, record.payer_id, SCHEME_CODE["si"], PARTY_CODE["worker"], -record.amount_vnd)]
        if (worker_id, month) != (record.payer_id, record.month) or legs.get(entry_id, []) != wanted:
            return (f"top-up entry {entry_id} does not credit worker {record.payer_id}'s si with "
                    f"{record.amount_vnd} in {month_text(record.month)} against the bank")
        if ledger.keys_checked:
            found = money.topup_reference_in(record.reference)
            if found is None or money.topup_worker_id(ledger.keys, found) != record.payer_id:
                return f"top-up record {record.id}: its reference does not name worker {record.payer_id}"
    received = int(query(conn, "SELECT coalesce(sum(amount_vnd), 0) FROM money_record WHERE kind IN (?, ?)",
                         (money.PAYMENT, money.TOPUP))[0][0])
    bank = int(query(conn, f"SELECT coalesce(sum(amount_vnd), 0) FROM posting "
                           f"WHERE account_kind = {int(AccountKind.bank)}")[0][0])
    if bank != received:
        return f"the bank account holds {bank}, the payments and top-ups recorded received {received}"
    return None


def late_interest_matches_rules(conn, ledger) -> str | None:
    """Re-run each close's interest on the money records it saw, with the rules version stored beside it."""
    closes = query(conn, "SELECT m.month, m.last_record_id, v.pack, v.effective_from, v.document_json "
                         "FROM money_close m JOIN month_close c ON c.month = m.month "
                         "JOIN rules_version v ON v.id = c.rules_version_id ORDER BY m.month")
    records = money.load_records(conn)
    for month, last_record_id, pack, effective_from, document in closes:
        version = version_from_document(pack, effective_from, document)
        seen = [r for r in records if r.id <= last_record_id and not (r.kind == money.INTEREST and r.month == month)]
        expected = {(bill.id, days, interest) for bill, days, interest in
                    money.interest_for_month(money.replay(seen), month, version.late_interest_ppm_per_month)}
        charged = {(r.bill_id, r.days, r.amount_vnd) for r in records if r.kind == money.INTEREST and r.month == month}
        if expected != charged:
            bill = sorted(expected ^ charged)[0][0]
            return f"{month_text(month)}: late interest on bill record {bill} differs from the rules"
    return None


def payer_balances_match_receivables(conn, ledger) -> str | None:
    """Bills + interest − payments = each platform's receivable (less dues not yet billed);
    claims − payments = the state's receivable; and the replay settles every dong of every payment."""
    last = query(conn, "SELECT max(month) FROM money_close")[0][0] or 0
    receivable: dict[int, int] = {}
    for owner, total in [*query(conn, "SELECT platform_id, sum(receivable_vnd) FROM journal "
                                      "WHERE receivable_vnd IS NOT NULL GROUP BY platform_id"),
                         *query(conn, f"SELECT owner_id, sum(amount_vnd) FROM posting "
                                      f"WHERE account_kind = {int(AccountKind.platform)} GROUP BY owner_id")]:
        receivable[int(owner)] = receivable.get(int(owner), 0) + int(total)
    unbilled = {int(platform): int(total) for platform, total in query(
        conn, "SELECT platform_id, sum(worker_vnd + platform_vnd) FROM platform_month WHERE month > ? "
              "GROUP BY platform_id", (last,))}
    state = int(query(conn, f"SELECT coalesce(sum(amount_vnd), 0) FROM posting "
                            f"WHERE account_kind = {int(AccountKind.state)}")[0][0])
    records = money.load_records(conn)
    books = money.replay(records)
    owed_by_payer: dict[int, int] = {}
    for record in records:
        owed_by_payer[record.payer_id] = owed_by_payer.get(record.payer_id, 0) + (
            -record.amount_vnd if record.kind == money.PAYMENT else record.amount_vnd)
    for payer in sorted(set(receivable) | set(books) | {money.STATE}):
        book = books.get(payer, money.PayerBook(payer))
        owed = owed_by_payer.get(payer, 0)
        if book.owed_vnd != owed:
            return f"payer {payer}: the payments replay leaves {book.owed_vnd} owed, the records say {owed}"
        books_say = state if payer == money.STATE else receivable.get(payer, 0) - unbilled.get(payer, 0)
        if books_say != owed:
            who = "the state" if payer == money.STATE else f"platform {payer}"
            return f"{who}: bills + interest − payments = {owed}, but its receivable (billed part) is {books_say}"
    return None


_ROW_NAME = {"worker": "worker", "platform": "platform", "rules_version": "rules version",
             "worker_identity_change": "identity change", "credited_month": "credited month"}
_BLOCKS = ("SELECT id, prev_hash, block_hash, entry_count, first_entry_id, last_entry_id, seal_version, "
           + ", ".join(f"coalesce({mark}, 0)" for mark, _columns in SEALED_TABLES.values()) + " FROM block ORDER BY id")


class _Identity(NamedTuple):
    """Identity rows re-sealed from their columns: each seal-version-1 block's identity digest,
    and the first row of each table whose stored seal no longer matches its columns."""

    digests: dict[int, bytes]
    first_bad: dict[str, int]


_IDENTITY_SEEN: "WeakKeyDictionary" = WeakKeyDictionary()


def _identity_of(conn, blocks: list[tuple]) -> _Identity:
    """`_identity_walk`, once per snapshot: `identity_rows_sealed` and `hash_chain_intact` both need it
    (the same connection and the same blocks give the same rows)."""
    seen = _IDENTITY_SEEN.get(conn)
    if seen is not None and seen[0] == blocks:
        return seen[1]
    identity = _identity_walk(conn, blocks)
    _IDENTITY_SEEN[conn] = (blocks, identity)
    return identity


def _identity_walk(conn, blocks: list[tuple]) -> _Identity:
    """Stream each sealed table in id order, re-seal every row from its columns (never trusting the
    stored seal for the chain), and hash the rows each block of seal version 1 covers."""
    sealing = [(row[0], row[7:]) for row in blocks if row[6] >= 1]  # (block id, marks)
    covers = [TABLES_SEALED_BY_VERSION[row[6]] for row in blocks if row[6] >= 1]
    parts: list[list[bytes]] = [[] for _ in sealing]
    first_bad: dict[str, int] = {}
    for number, (table, (_mark, columns)) in enumerate(SEALED_TABLES.items()):
        hashers = [hashlib.sha256() for _ in sealing]
        index = 0
        for chunk in stream_rows(conn, f"SELECT {', '.join(columns)}, seal FROM {table} ORDER BY id"):
            for row in chunk:
                row_id = row[0]
                computed = row_seal(table, row[:-1])
                if (row[-1] is None or computed != bytes(row[-1])) and table not in first_bad:
                    first_bad[table] = row_id
                while index < len(sealing) and row_id > sealing[index][1][number]:
                    index += 1
                if index < len(sealing):  # rows past the last block's mark are sealed by the next block
                    hashers[index].update(int(row_id).to_bytes(8, "big"))
                    hashers[index].update(computed)
        for position, hasher in enumerate(hashers):
            if number < covers[position]:  # a version-1 block covers the first four tables only
                parts[position].append(hasher.digest())
    digests = {block_id: hashlib.sha256(b"".join(parts[position])).digest()
               for position, (block_id, _marks) in enumerate(sealing)}
    return _Identity(digests, first_bad)


def _seal_problem(table: str, row_id: int) -> str:
    return (f"{_ROW_NAME[table]} {row_id} does not match its seal: its "
            + ("pseudonym, encrypted national id or other identity columns were"
               if table in ("worker", "worker_identity_change") else
               "worker, month, close or floor was" if table == "credited_month" else
               "name was" if table == "platform" else "document was") + " changed")


def identity_rows_sealed(conn, ledger) -> str | None:
    """Each worker, platform, rules-version and identity-change row still matches its seal
    (names the first changed row of each table; the chain covers the seals: hash_chain_intact)."""
    blocks = query(conn, _BLOCKS)
    bad = _identity_of(conn, blocks).first_bad
    return "; ".join(_seal_problem(table, row_id) for table, row_id in bad.items()) or None


def identity_decrypts(conn, ledger, sample: int = 64) -> str | None:
    """A sample of stored national ids (spread over the worker ids, and every corrected id) decrypts
    with this secret's key and gives back the row's pseudonym: the secret is the books' own.
    Not run on books opened without their secret (`Ledger.open(check_secret=False)`)."""
    if not getattr(ledger, "keys_checked", True):
        return None
    total = query(conn, "SELECT count(*), coalesce(max(id), 0) FROM worker")[0]
    step = max(1, int(total[1]) // sample)
    rows = query(conn, "SELECT id, pseudonym, national_id_encrypted FROM worker WHERE id - (id / ?) * ? = 0 OR id = 1 "
                       "ORDER BY id", (step, step))[: sample + 1]
    changes = query(conn, "SELECT id, pseudonym, national_id_encrypted FROM worker_identity_change "
                          "WHERE national_id_encrypted IS NOT NULL ORDER BY id")
    for what, checked in (("worker", rows), ("identity change", changes)):
        for row_id, pseudonym, blob in checked:
            try:
                national_id = ledger.keys.decrypt(bytes(blob))
            except Exception:  # noqa: BLE001 - InvalidTag or a damaged blob
                return f"the national id of {what} {row_id} does not decrypt with key encryption/v1 of this secret"
            if ledger.keys.pseudonym(national_id) != pseudonym:
                return f"the national id of {what} {row_id} does not give its pseudonym with key pseudonym/v1"
    return None


def _sealed_ranges(before: tuple, marks: tuple) -> str:
    spans = [f"{_ROW_NAME[table]}s {low + 1}–{high}" for table, low, high in zip(SEALED_TABLES, before, marks)
             if high > low]
    return ", ".join(spans) or "none"


_JOURNAL_SELECT = ("SELECT j.id, j.block_id, coalesce(j.recorded_at, b.recorded_at), j.entry_type, j.platform_id, "
                   "j.event_id, j.payload_hash, j.worker_id, j.kind, j.amount_vnd, j.occurred_at, j.occurred_month, "
                   "j.booking_month, j.rules_version_id, j.original_entry_id, j.entry_hash, "
                   + ", ".join(f"j.{column}" for column in COMPACT_COLUMNS) + ", j.occurred_us "
                   "FROM journal j LEFT JOIN block b ON b.id = j.block_id")
_LEGS_SELECT = "SELECT entry_id, account_kind, owner_id, scheme, party, amount_vnd FROM posting"
_JOURNAL_HASHED = _JOURNAL_SELECT + " ORDER BY j.id"
_LEGS_HASHED = _LEGS_SELECT + " ORDER BY entry_id, leg"
_JOURNAL_RANGE = _JOURNAL_SELECT + " WHERE j.id BETWEEN ? AND ? ORDER BY j.id"
_LEGS_RANGE = _LEGS_SELECT + " WHERE entry_id BETWEEN ? AND ? ORDER BY entry_id, leg"


class _Walk:
    """Every entry's hash recomputed from its journal row and its legs, in id order.

    Iterating yields `(entry_id, block_id, recomputed_hash, stored_hash)`; legs whose
    entry has no journal row are skipped and their entry ids kept in `orphans`.
    PostgreSQL streams the postings through a server-side cursor (bounded memory). `ids`
    (low, high) walks only the entries and legs of that range of entry ids.
    """

    def __init__(self, conn, ids: tuple[int, int] | None = None) -> None:
        self.conn = conn
        self.orphans: list[int] = []
        self.ids = ids

    def __iter__(self):
        raw = self.conn.connection.driver_connection
        cursor = None
        legs_sql, journal_sql, params = ((_LEGS_HASHED, _JOURNAL_HASHED, ()) if self.ids is None else
                                         (_LEGS_RANGE, _JOURNAL_RANGE, tuple(self.ids)))
        if self.conn.dialect.name == "sqlite":
            postings = raw.execute(legs_sql, params)
        else:
            cursor = postings = raw.cursor(name="verify_postings")
            cursor.itersize = 50_000
            cursor.execute(legs_sql.replace("?", "%s"), params)
        try:
            legs_iter = iter(postings)
            pending = next(legs_iter, None)
            for row in chain.from_iterable(stream_rows(self.conn, journal_sql, params)):  # flat memory
                entry_id = row[0]
                while pending is not None and pending[0] < entry_id:
                    if not self.orphans or self.orphans[-1] != pending[0]:
                        self.orphans.append(pending[0])
                    pending = next(legs_iter, None)
                legs = []
                while pending is not None and pending[0] == entry_id:
                    legs.append(tuple(pending[1:]))
                    pending = next(legs_iter, None)
                fields = list(row[3:15])
                if fields[3] is not None:
                    fields[3] = bytes(fields[3])
                if row[23] is not None:  # a row keeps its time as text or as microseconds, never both
                    fields[7] = occurred_text(row[23]) if fields[7] is None else ("two times", fields[7], row[23])
                if row[16] is not None:  # a compact row: its legs are in the row (any postings are orphans)
                    if legs:
                        self.orphans.append(entry_id)
                    legs = compact_legs(row[4], row[7], row[16], row[17:23])
                fields.append(tuple(legs))
                yield entry_id, row[1], entry_hash(entry_id, row[1], row[2], fields), bytes(row[15])
            while pending is not None:
                if not self.orphans or self.orphans[-1] != pending[0]:
                    self.orphans.append(pending[0])
                pending = next(legs_iter, None)
        finally:
            if cursor is not None:
                cursor.close()


def entry_hashes(conn):
    """`(entry_id, block_id, full hash recomputed from the rows, hash kept in the row)`, in id order."""
    return _Walk(conn)


def kept_hash_matches(computed: bytes, stored: bytes) -> bool:
    """An entry's recomputed hash against what its row keeps: 32 bytes (rows before revision 0007)
    or the first `ENTRY_HASH_KEPT` bytes."""
    return len(stored) >= ENTRY_HASH_KEPT and computed[:len(stored)] == stored


def _entry_range(first: int | None, last: int | None) -> str:
    return "no entries" if first is None else f"entries {first}–{last}"


#: Journal ids per chunk of `hash_chain_intact` (a chunk's rows, legs and hashes are in memory at once).
CHAIN_CHUNK_IDS = 100_000
_FAR = 1 << 62  # the first chunk has no lower bound and the last no upper one: every row is read


class _Irregular(Exception):
    """Rows the column path does not take as they are (two times, a NULL where a number goes, a
    fraction): the per-entry walk of their chunk decides what is wrong, as it always did."""


def _int64(values) -> np.ndarray:
    """The values as int64, exactly: a NULL, a fraction or a text (SQLite keeps whatever a tampered
    row holds) makes numpy infer another kind than signed integers."""
    array = np.array(values)
    if array.dtype.kind != "i" or array.ndim != 1:
        raise _Irregular
    return array.astype(np.int64, copy=False)


def _chunk_hashes(rows: list[tuple], legs_rows: list[tuple]) -> tuple[list[bytes], int | None]:
    """Each row's full entry hash, computed over the chunk's columns as `write_compact_block` computes
    them (`utc_texts`, `_hashed_legs`, `orjson` and blake2b mapped over the rows), the same bytes as
    `entry_hash` of the walk; and the first entry id with legs but no multi-leg journal row here."""
    legs_by_entry = {entry_id: tuple(leg[1:] for leg in group)
                     for entry_id, group in groupby(legs_rows, key=itemgetter(0))}
    if not rows:
        return [], min(legs_by_entry, default=None)
    (ids, block_ids, recorded, types, platforms, event_ids, payloads, workers, kinds, amounts, occurred_at,
     occurred_months, booking_months, rules, originals, _kept, receivable, *rest) = zip(*rows)
    shares, occurred_us = rest[:-1], rest[-1]
    texts = list(occurred_at)
    timed = [at for at, micros in enumerate(occurred_us) if micros is not None]
    if timed:
        if any(occurred_at[at] is not None for at in timed):
            raise _Irregular  # a row keeps its time as text or as microseconds, never both
        for at, text in zip(timed, utc_texts(_int64([occurred_us[at] for at in timed]))):
            texts[at] = text
    hexes = [None if value is None else bytes(value).hex() for value in payloads]
    legs: list = [()] * len(ids)
    orphans: list[int] = []
    compact = [at for at, value in enumerate(receivable) if value is not None]
    if compact:
        every = len(compact) == len(ids)
        pick = (lambda column: list(column)) if every else (lambda column: [column[at] for at in compact])
        owed = _int64(pick(receivable))
        matrix = np.stack([_int64([value or 0 for value in pick(column)]) for column in shares], axis=1)
        platform_ids, worker_ids = pick(platforms), pick(workers)
        _int64(platform_ids), _int64(worker_ids)
        built = _hashed_legs(platform_ids, worker_ids, owed, matrix)
        # `compact_legs` keeps the receivable leg of a row whose shares are all zero unless it is zero too
        for at in np.flatnonzero(~matrix.any(axis=1) & (owed != 0)).tolist():
            built[at] = compact_legs(platform_ids[at], worker_ids[at], int(owed[at]), [0] * len(shares))
        for at, entry_legs in zip(compact, built):
            legs[at] = entry_legs
            if ids[at] in legs_by_entry:
                orphans.append(ids[at])  # a compact row's legs are in the row: its postings are orphans
                del legs_by_entry[ids[at]]
    if len(compact) < len(ids):
        for at in sorted(set(range(len(ids))) - set(compact)):
            legs[at] = legs_by_entry.pop(ids[at], ())
    orphans.extend(legs_by_entry)
    fields = zip(types, platforms, event_ids, hexes, workers, kinds, amounts, texts, occurred_months, booking_months,
                 rules, originals)
    sealed = zip(ids, block_ids, recorded, fields, legs)
    return list(map(_DIGEST, map(_BLAKE2B_32, map(_DUMPS_NUMPY, sealed)))), min(orphans, default=None)


class _Chain:
    """The block hashes being recomputed while the entries stream by, and where the walk is."""

    def __init__(self, blocks: list[tuple], identity: "_Identity") -> None:
        self.recorded = {row[0]: (row[4], row[5], row[3]) for row in blocks}
        # A block's stored prev_hash starts its hasher: the block loop checks, before it uses the
        # digest, that it is the hash recomputed for the block before (so the chain is the same).
        self.hashers = {row[0]: block_hasher(b"" if row[1] is None else bytes(row[1]), row[0], seal_version=row[6],
                                             marks=row[7:], identity=identity.digests.get(row[0], b""))
                        for row in blocks}
        ordered = sorted(row[0] for row in blocks)
        self.block_ids = np.array(ordered, dtype=np.int64)
        self.firsts = np.array([1 if self.recorded[b][0] is None else self.recorded[b][0] for b in ordered] or [0],
                               dtype=np.int64)
        self.lasts = np.array([0 if self.recorded[b][1] is None else self.recorded[b][1] for b in ordered] or [-1],
                              dtype=np.int64)
        self.expected_id = 1
        self.first_orphan: int | None = None

    def orphan(self, entry_id: int | None) -> None:
        if entry_id is not None and self.first_orphan is None:
            self.first_orphan = entry_id

    def take_columns(self, rows: list[tuple], legs_rows: list[tuple]) -> bool:
        """Add a chunk through the columns; False (nothing added) when any entry of it needs the walk."""
        try:
            hashes, orphan = _chunk_hashes(rows, legs_rows)
            if not rows:
                self.orphan(orphan)
                return True
            ids = [row[0] for row in rows]
            if ids != list(range(self.expected_id, self.expected_id + len(ids))):
                return False
            if not all(map(kept_hash_matches, hashes, [bytes(row[15]) for row in rows])):
                return False
            blocks = _int64([row[1] for row in rows])
            at = np.minimum(np.searchsorted(self.block_ids, blocks), len(self.block_ids) - 1) if len(
                self.block_ids) else np.zeros(len(blocks), dtype=np.int64)
            numbers = np.arange(self.expected_id, self.expected_id + len(ids), dtype=np.int64)
            if not (len(self.block_ids) and (self.block_ids[at] == blocks).all()
                    and (self.firsts[at] <= numbers).all() and (numbers <= self.lasts[at]).all()):
                return False
        except (_Irregular, TypeError, ValueError, OverflowError):
            return False
        starts = [0, *(np.flatnonzero(blocks[1:] != blocks[:-1]) + 1).tolist()]
        for start, end in zip(starts, [*starts[1:], len(ids)]):
            self.hashers[int(blocks[start])].update(b"".join(hashes[start:end]))
        self.expected_id += len(ids)
        self.orphan(orphan)
        return True

    def take_walk(self, conn, low: int, high: int) -> str | None:
        """Add a chunk one entry at a time (`_Walk`): the first entry that is off, named as always."""
        walk = _Walk(conn, (low, high))
        for entry_id, block_id, computed, stored in walk:
            if not kept_hash_matches(computed, stored):
                return f"entry {entry_id} does not match its hash: a row or a leg was changed"
            expected_id = self.expected_id
            if entry_id != expected_id:
                return (f"entry {expected_id} is missing: the journal jumps from entry {expected_id - 1} to {entry_id} "
                        "(a row was deleted)" if expected_id > 1 else
                        f"entry 1 is missing: the journal starts at entry {entry_id} (rows were deleted)")
            self.expected_id = entry_id + 1
            first, last, _count = self.recorded.get(block_id, (None, None, 0))
            if first is None or not first <= entry_id <= last:
                return (f"entry {entry_id} is not one of the entries block {block_id} recorded "
                        f"({_entry_range(first, last)}): it was inserted or moved")
            self.hashers[block_id].update(computed)
        self.orphan(walk.orphans[0] if walk.orphans else None)
        return None



def hash_chain_intact(conn, ledger) -> str | None:
    """Recompute every entry hash from its row and legs, and every block hash in order.

    Names the entry wherever the rows allow it: a changed row or leg (its own hash no
    longer matches), a deleted entry (journal ids are consecutive from 1, assigned
    under the writer's lock), an entry inserted into a block that did not record it.
    An entry changed *and* re-hashed is caught by its block's hash: the block is named
    with its range of entries. A rewrite of every hash after it is caught only by an
    anchor kept outside the books (`anchor_problems`).

    The entries are read in chunks of `CHAIN_CHUNK_IDS` ids and hashed as columns, with the
    writer's own functions; a chunk where anything is off is walked again one entry at a time
    (`_Walk`), which names the first bad entry exactly as `hash_chain_walked` does.
    """
    blocks = query(conn, _BLOCKS)
    identity = _identity_of(conn, blocks)
    walked = _Chain(blocks, identity)
    top = int(query(conn, "SELECT coalesce(max(id), 0) FROM journal")[0][0])
    chunks = max(1, -(-top // CHAIN_CHUNK_IDS))
    for number in range(chunks):
        low = -_FAR if number == 0 else 1 + number * CHAIN_CHUNK_IDS
        high = _FAR if number == chunks - 1 else (number + 1) * CHAIN_CHUNK_IDS
        with collector_paused():  # ~25 objects a row, none in a cycle (the writer pauses it too)
            taken = walked.take_columns(query(conn, _JOURNAL_RANGE, (low, high)), query(conn, _LEGS_RANGE, (low, high)))
        if not taken:
            problem = walked.take_walk(conn, low, high)
            if problem:
                return problem
    if walked.first_orphan is not None:
        return f"postings of entry {walked.first_orphan} belong to no multi-leg journal entry"
    # computed from prev_hash when the chunk was read, which the chain check makes sure is `previous`
    return _blocks_problem(conn, blocks, walked.recorded, walked.expected_id,
                           lambda block_id, _previous, _version, _marks: walked.hashers[block_id].digest())


def hash_chain_walked(conn, ledger) -> str | None:
    """`hash_chain_intact` one entry at a time, as it was before it read chunks of columns: the
    reference the chunked check must agree with, problem for problem (the tests compare the two).

    Recompute every entry hash from its row and legs, and every block hash in order.

    Names the entry wherever the rows allow it: a changed row or leg (its own hash no
    longer matches), a deleted entry (journal ids are consecutive from 1, assigned
    under the writer's lock), an entry inserted into a block that did not record it.
    An entry changed *and* re-hashed is caught by its block's hash: the block is named
    with its range of entries. A rewrite of every hash after it is caught only by an
    anchor kept outside the books (`anchor_problems`).
    """
    blocks = query(conn, _BLOCKS)
    identity = _identity_walk(conn, blocks)
    recorded = {row[0]: (row[4], row[5], row[3]) for row in blocks}
    by_block: dict[int, list[bytes]] = {}
    expected_id = 1
    walk = _Walk(conn)
    for entry_id, block_id, computed, stored in walk:
        if not kept_hash_matches(computed, stored):
            return f"entry {entry_id} does not match its hash: a row or a leg was changed"
        if entry_id != expected_id:
            return (f"entry {expected_id} is missing: the journal jumps from entry {expected_id - 1} to {entry_id} "
                    "(a row was deleted)" if expected_id > 1 else
                    f"entry 1 is missing: the journal starts at entry {entry_id} (rows were deleted)")
        expected_id = entry_id + 1
        first, last, _count = recorded.get(block_id, (None, None, 0))
        if first is None or not first <= entry_id <= last:
            return (f"entry {entry_id} is not one of the entries block {block_id} recorded "
                    f"({_entry_range(first, last)}): it was inserted or moved")
        by_block.setdefault(block_id, []).append(computed)
    if walk.orphans:
        return f"postings of entry {walk.orphans[0]} belong to no multi-leg journal entry"
    return _blocks_problem(
        conn, blocks, recorded, expected_id,
        lambda block_id, previous, version, marks: block_hash(previous, block_id, by_block.pop(block_id, []),
                                                              seal_version=version, marks=marks,
                                                              identity=identity.digests.get(block_id, b"")),
        leftover=lambda: f"entries of block {min(by_block)} belong to no recorded block" if by_block else None)


def _blocks_problem(conn, blocks: Sequence, recorded: dict, expected_id: int,
                    digest_of: Callable[[int, bytes, int, Sequence[int]], bytes],
                    leftover: Callable[[], str | None] = lambda: None) -> str | None:
    """After the entries (both hash-chain checks): entries missing at the end, then each block in
    order — consecutive ids, chained to the one before, seal versions never going back, its hash
    `digest_of(block_id, previous, version, marks)` as stored — then `leftover()`, then the head."""
    recorded_last = max((last for _first, last, _count in recorded.values() if last is not None), default=0)
    if recorded_last >= expected_id:
        return (f"entry {expected_id} is missing: the blocks recorded entries up to {recorded_last}, "
                f"the journal ends at entry {expected_id - 1} (rows were deleted)")
    previous = b"\x00"
    expected_block = 1
    version_before, marks_before = 0, tuple(0 for _ in SEALED_TABLES)
    for block_id, prev_hash, stored_hash, _count, first, last, version, *marks in blocks:
        if block_id != expected_block:
            return f"block {expected_block} is missing: the blocks jump from {expected_block - 1} to {block_id}"
        expected_block += 1
        if bytes(prev_hash) != previous:
            return f"block {block_id} does not chain to the block before it"
        if version < version_before:
            return f"block {block_id} has seal version {version} after a block of version {version_before}"
        computed = digest_of(block_id, previous, version, marks)
        if computed != bytes(stored_hash):
            first_id = query(conn, "SELECT min(id) FROM journal WHERE block_id = ?", (block_id,))[0][0]
            sealed = (f", or an identity row it seals was ({_sealed_ranges(marks_before, tuple(marks))})"
                      if version else "")
            return (f"block {block_id} (from entry {first_id}) does not match its hash: an entry was inserted, "
                    f"changed or deleted ({_entry_range(first, last)}){sealed}")
        previous = computed
        version_before = version
        if version:
            marks_before = tuple(marks)
    problem = leftover()
    if problem:
        return problem
    head = query(conn, "SELECT chain_head_hash FROM ledger_state WHERE id = 1")[0][0]
    if blocks and bytes(head) != previous:
        return "the chain head does not match the last block: blocks were removed"
    return None


class Anchor(NamedTuple):
    """A month's close hash, as printed at close and kept by an insurer outside the books."""

    month: int
    block_hash: bytes

    @classmethod
    def parse(cls, text: str) -> "Anchor":
        """`YYYY-MM=HEX` (the 64 hex digits printed by `ansinh close`); ValueError naming what is wrong."""
        month_part, separator, hex_part = text.strip().partition("=")
        if not separator:
            raise ValueError(f"an anchor is MONTH=HEX (e.g. 2026-02=9f3c…), got {text[:80]!r}")
        month = parse_month(month_part.strip())
        digits = hex_part.strip().lower()
        if len(digits) != 64 or any(character not in "0123456789abcdef" for character in digits):
            raise ValueError(f"the anchor of {month_part.strip()} must be 64 hex digits, got {len(digits)} characters")
        return cls(month, bytes.fromhex(digits))

    def text(self) -> str:
        return f"{month_text(self.month)}={self.block_hash.hex()}"


class Recomputed(NamedTuple):
    block_hashes: dict[int, bytes]  # every block id from 1 to the last, in order: its hash from the rows
    first_mismatch: int | None  # the first entry whose kept hash no longer matches its row
    identity: "_Identity"


def recomputed_chain(conn) -> Recomputed:
    """The chain recomputed from the rows alone (entries, legs, identity rows), trusting no stored
    entry or block hash: what anchors and the witness (ledger/witness.py) are checked against."""
    hashes: dict[int, list[bytes]] = {}
    first_mismatch: int | None = None
    for entry_id, block_id, computed, stored in _Walk(conn):
        if first_mismatch is None and not kept_hash_matches(computed, stored):
            first_mismatch = entry_id
        hashes.setdefault(block_id, []).append(computed)
    blocks = query(conn, _BLOCKS)
    identity = _identity_walk(conn, blocks)
    sealing = {row[0]: (row[6], row[7:]) for row in blocks}
    last_block = max([*hashes, *sealing], default=0)
    recomputed: dict[int, bytes] = {}
    previous = b"\x00"
    for block_id in range(1, last_block + 1):
        version, marks = sealing.get(block_id, (0, ()))
        previous = block_hash(previous, block_id, hashes.get(block_id, []), seal_version=version, marks=marks,
                              identity=identity.digests.get(block_id, b""))
        recomputed[block_id] = previous
    return Recomputed(recomputed, first_mismatch, identity)


def anchor_problems(conn, anchors: list[Anchor]) -> list[str | None]:
    """For each anchor: None when the rows up to its month's close recompute to it, else what is wrong.

    The chain is recomputed from the journal and posting rows alone (the stored entry and
    block hashes are not trusted), so a rewrite of every hash inside the books still fails.
    """
    from_rows = recomputed_chain(conn)
    first_mismatch, identity = from_rows.first_mismatch, from_rows.identity
    position: dict[bytes, int] = {}
    for block_id, digest in from_rows.block_hashes.items():
        position.setdefault(digest, block_id)
    changed_row = next((_seal_problem(table, row_id) for table, row_id in identity.first_bad.items()), None)
    problems: list[str | None] = []
    for anchor in anchors:
        label = month_text(anchor.month)
        close = query(conn, "SELECT anchor_hash, last_entry_id FROM month_close WHERE month = ?", (anchor.month,))
        if not close:
            problems.append(f"{label} is not closed in these books: there is no close to check its anchor against")
            continue
        stored_anchor, last_entry_id = bytes(close[0][0]), close[0][1]
        block_id = position.get(anchor.block_hash)
        if block_id is None:
            where = (f"entry {first_mismatch} does not match its hash" if first_mismatch is not None else
                     changed_row if changed_row is not None else
                     f"the rows up to the close (entries 1–{last_entry_id}) were rewritten with their hashes")
            problems.append(f"the books do not reach the anchor of {label}: {where}; "
                            f"history up to the close of {label} was changed, inserted or deleted")
            continue
        late = query(conn, "SELECT min(id) FROM journal WHERE booking_month <= ? AND block_id > ?",
                     (anchor.month, block_id))[0][0]
        if late is not None:
            problems.append(f"entry {late} is booked into a month up to {label} but was written after its anchor "
                            f"(block {block_id}): it was inserted after the close")
        elif stored_anchor != anchor.block_hash:
            problems.append(f"the close record of {label} holds anchor {stored_anchor.hex()[:16]}…, not the "
                            f"{anchor.block_hash.hex()[:16]}… kept outside: the close record was changed")
        else:
            problems.append(None)
    return problems


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
    ("credits_match_rules", credits_match_rules),
    ("bills_and_claims_match_settlement", bills_and_claims_match_settlement),
    ("money_records_match_entries", money_records_match_entries),
    ("topups_credit_their_workers", topups_credit_their_workers),
    ("late_interest_matches_rules", late_interest_matches_rules),
    ("payer_balances_match_receivables", payer_balances_match_receivables),
    ("identity_rows_sealed", identity_rows_sealed),
    ("identity_decrypts", identity_decrypts),
    ("hash_chain_intact", hash_chain_intact),
]


def _run(check: Callable, conn, ledger) -> str | None:
    """A check's problem; a check that cannot even run on these rows is a problem too, never a crash."""
    try:
        return check(conn, ledger)
    except Exception as error:  # noqa: BLE001 - tampered rows can break any query; report, do not crash
        return f"the check could not run on these rows ({type(error).__name__}: {str(error)[:200]})"


def verify(ledger: Ledger, stop_at_first: bool = True, anchors: list[Anchor] | None = None) -> list[Check]:
    """Run every invariant; return each with None or the first problem found.

    `anchors` (months' close hashes kept outside the books) are checked after the
    invariants, one `Check` each, named `anchor YYYY-MM`.
    """
    results: list[Check] = []
    with consistent_snapshot(ledger) as conn:
        # Archived months (PostgreSQL, ledger/archive.py) are read back from their files and attached
        # inside this snapshot, which is rolled back: every check sees the whole books.
        from ledger.archive import ArchiveError, mounted_archives

        try:
            archived = list(mounted_archives(conn))
        except ArchiveError as error:
            return [Check("archived_months", f"{error}: the month's entries cannot be checked", "")]
        counts = query(conn, "SELECT (SELECT count(*) FROM journal), (SELECT count(*) FROM posting), "
                             "(SELECT count(*) FROM block)")[0]
        detail = f"{counts[0]} entries, {counts[1]} postings, {counts[2]} blocks"
        for name, check in INVARIANTS:
            problem = _run(check, conn, ledger)
            results.append(Check(name, problem, detail))
            if problem and stop_at_first:
                break
        if anchors and not (stop_at_first and any(check.problem for check in results)):
            try:
                problems = anchor_problems(conn, anchors)
            except Exception as error:  # noqa: BLE001 - as in _run
                problems = [f"the anchor could not be checked ({type(error).__name__}: {str(error)[:200]})"] * len(anchors)
            for anchor, problem in zip(anchors, problems):
                results.append(Check(f"anchor {month_text(anchor.month)}", problem,
                                     f"{detail}; anchor {anchor.block_hash.hex()}"))
        if archived:
            results.append(Check("archived_months", None, "; ".join(archived)))
    return results

"""Household tiers and month close: the state subsidy of RULES.md §6, posted once per month.

`import_tiers` applies a CSV of household statuses all-or-nothing, with line-numbered
errors (`TierImportError.problems`: codes and parameters, said in vi or en by
`ledger.file_errors`; a national id is never quoted). `close_month` books, in one transaction under the writer's lock:

1. a claim entry: the state owes the month's subsidy per scheme (state receivable
   debited, the month's clearing account credited);
2. one entry per subsidised worker moving it from clearing to their scheme accounts
   (party `state`), so the clearing account drains to zero;
3. the money side (`ledger.money.bill_month`): one bill per platform, the state's claim,
   and the month's late-payment interest on overdue bills;
4. the months credited towards a pension (RULES.md §11, `ledger.credits`), sealed by one
   more block when there are any;
5. the `month_close` row, after which the database refuses entries booked in the month.

A failure anywhere rolls all of it back: the month stays open and nothing is posted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Callable, Iterable, Sequence

import numpy as np

from ledger.accounts import NO_PARTY, PARTY_CODE, SCHEME_CODE, SCHEME_NAME, AccountKind, EntryType
from ledger.books import Ledger, iso_utc
from ledger.credits import credit_at_close
from ledger.events import month_text, next_month, parse_month
from ledger.file_errors import FileProblem, FileProblems, cell
from ledger.files import CsvFile, FileFormatError
from ledger.identity import _TWELVE_DIGITS, PROVINCE_CODES
from ledger.money import bill_month
from ledger.postings import collector_paused, write_block, write_subsidy_block
from ledger.store import ensure_month_partitions, insert_rows, is_sqlite, lock_chain_head, month_plus, query
from rules import BASE_TIER, NoVersionInForce, RulesVersion, subsidy_array_vnd

_STATE = PARTY_CODE["state"]
_STATE_ACCOUNT, _CLEARING_ACCOUNT = int(AccountKind.state), int(AccountKind.clearing)


TIER_COLUMNS = ("national_id", "tier", "valid_from")


class CloseError(Exception):
    """A close that must not happen (out of order, already closed, no rules in force)."""


class TierImportError(FileProblems):
    """A tiers file (or record) refused whole: `problems` by line, `errors` their English sentences."""


@dataclass(frozen=True)
class CloseResult:
    month: str
    workers_subsidised: int
    subsidy_vnd: dict[str, int]
    anchor_hash: str
    rules_version: str
    bills: int = 0
    bills_vnd: int = 0
    late_interest_vnd: int = 0
    credited_months: int = 0


def first_day(month: int) -> date:
    return date(month // 100, month % 100, 1)


def last_closed_month(conn) -> int | None:
    return query(conn, "SELECT max(month) FROM month_close")[0][0]


def import_tiers(ledger: Ledger, path: str | Path, *, import_id: str | None = None) -> int:
    """Apply a `national_id,tier,valid_from` CSV file; on any bad row apply nothing and list every error."""
    with Path(path).open("rb") as stream:
        records = read_tier_records(stream, Path(path).name)
    return import_tier_records(ledger, records, import_id=import_id or Path(path).name)


def read_tier_records(stream: IO[bytes], source: str) -> list[tuple[int, Sequence[str]]]:
    """Numbered rows of a `national_id,tier,valid_from` CSV (CLI file, HTTP body, web upload).

    A BOM from Excel is dropped and the columns may come in any order; a file without that
    header, a line that is not UTF-8 or a cell over 128 KiB is a TierImportError (ledger.files).
    """
    try:
        file = CsvFile(stream, source, TIER_COLUMNS)
        return [(line, row if len(row) != len(file.header) else file.aligned(row)) for line, row in file]
    except FileFormatError as error:
        raise TierImportError([error.problem]) from None


def import_tier_records(ledger: Ledger, records: Iterable[tuple[int, Sequence[str]]], *,
                        import_id: str) -> int:
    """Apply numbered `(national_id, tier, valid_from)` records, all or nothing (CLI file, HTTP, bulk)."""
    errors: list[FileProblem] = []
    rows: list[tuple[str, str, int]] = []
    seen: dict[tuple[str, int], tuple[str, int]] = {}
    for line, record in records:
        if not record or all(not str(value).strip() for value in record):
            continue
        if len(record) != 3:
            errors.append(FileProblem("column_count", line, None, {"expected": 3, "got": len(record)}))
            continue
        national_id, tier, valid_from = (str(value).strip() for value in record)
        if not _TWELVE_DIGITS.fullmatch(national_id) or national_id[:3] not in PROVINCE_CODES:
            errors.append(FileProblem("bad_national_id", line, "national_id"))  # never quoted
            continue
        try:
            month = parse_month(valid_from)
        except ValueError:
            errors.append(FileProblem("bad_valid_from", line, "valid_from", {"value": cell(valid_from)}))
            continue
        try:
            version = ledger.pack.version_on(first_day(month))
        except NoVersionInForce:
            version = ledger.pack.versions[0]
        if tier not in version.tier_rate_ppm:
            errors.append(FileProblem("unknown_tier", line, "tier", {
                "value": cell(tier), "version": version.version_id, "known": sorted(version.tier_rate_ppm)}))
            continue
        earlier = seen.get((national_id, month))
        if earlier is not None and earlier[0] != tier:
            errors.append(FileProblem("tier_conflict", line, "tier", {"earlier": earlier[1]}))
            continue
        seen[(national_id, month)] = (tier, line)
        rows.append((national_id, tier, month))
    if errors:
        raise TierImportError(errors)
    recorded_at = iso_utc(ledger.clock())
    label = f"{import_id}@{recorded_at}"
    pending: dict = {}
    with ledger.engine.begin() as conn:
        lock_chain_head(conn)
        ids = ledger.worker_ids(conn, [row[0] for row in rows], pending)
        next_id = (query(conn, "SELECT coalesce(max(id), 0) FROM household_tier")[0][0] or 0) + 1
        insert_rows(conn, "household_tier", ("id", "worker_id", "tier", "valid_from_month", "import_id", "recorded_at"),
                    [(next_id + n, ids[national_id], tier, month, label, recorded_at)
                     for n, (national_id, tier, month) in enumerate(rows)])
    ledger.committed(pending)
    return len(rows)


def tiers_in_force(conn, month: int, up_to_id: int | None = None) -> dict[int, str]:
    """worker id -> tier in force in `month`: the latest valid_from ≤ month, the newest record winning.

    `up_to_id`: only statuses recorded up to that row (what a past close saw).
    """
    limit = "" if up_to_id is None else f" AND id <= {int(up_to_id)}"
    rows = query(conn, f"SELECT worker_id, tier FROM household_tier WHERE valid_from_month <= ?{limit} "
                       "ORDER BY worker_id, valid_from_month, id", (month,))
    return {worker_id: tier for worker_id, tier in rows}


def subsidies_for_month(conn, month: int, version: RulesVersion, up_to_tier_id: int | None = None,
                        present: set | None = None) -> dict[tuple[int, str], int]:
    """(worker id, scheme) -> subsidy in VND for `month`, from the books as they stand (RULES.md §6).

    Own contribution = every worker-party credit booked in the month: withheld from the trips
    (rows of a platform) and paid in as top-ups (platform 0, RULES.md §11), capped as usual.
    Subsidy rows (platform 0 as well) carry no worker-party amount. `present`, when given, gets
    the `worker_month` key `(worker, month, scheme, 0)` of each subsidy whose row exists already
    (a top-up's), read by the same query: the close appends the other rows (`write_block`)."""
    tiers = tiers_in_force(conn, month, up_to_tier_id)
    schemes = [scheme for scheme in version.subsidised_schemes]
    result: dict[tuple[int, str], int] = {}
    if not schemes:
        return result
    codes = ", ".join(str(SCHEME_CODE[scheme]) for scheme in schemes)
    own = query(conn, f"SELECT worker_id, scheme, sum(worker_vnd), max(CASE WHEN platform_id = 0 THEN 1 ELSE 0 END) "
                      f"FROM worker_month WHERE month = ? AND scheme IN ({codes}) GROUP BY worker_id, scheme "
                      "HAVING sum(worker_vnd) <> 0", (month,))
    used: dict[int, int] = {}  # subsidised months before this one (RULES.md §9), when the version limits them
    if version.max_subsidised_months is not None:
        used = dict(query(conn, "SELECT worker_id, count(*) FROM (SELECT worker_id, month FROM worker_month "
                                "WHERE month < ? AND platform_id = 0 GROUP BY worker_id, month "
                                "HAVING sum(subsidy_vnd) > 0) AS paid GROUP BY worker_id", (month,)))
    for scheme in schemes:
        code = SCHEME_CODE[scheme]
        rows = [(worker_id, int(total)) for worker_id, scheme_code, total, _top_up in own if scheme_code == code]
        if not rows:
            continue
        own_vnd = np.fromiter((total for _w, total in rows), dtype=np.int64, count=len(rows))
        rate_ppm = np.fromiter((version.tier_rate_ppm[tiers.get(worker_id, BASE_TIER)] for worker_id, _t in rows),
                               dtype=np.int64, count=len(rows))
        used_months = np.fromiter((used.get(worker_id, 0) for worker_id, _t in rows), dtype=np.int64, count=len(rows))
        # The kernel gives zero to a worker who has used max_subsidised_months (rules.kernels.subsidy).
        for (worker_id, _total), subsidy in zip(rows, subsidy_array_vnd(own_vnd, scheme, rate_ppm, version,
                                                                        used_months).tolist()):
            if subsidy:
                result[(worker_id, scheme)] = subsidy
    if present is not None:
        present.update((worker_id, month, scheme_code, 0) for worker_id, scheme_code, _total, top_up in own if top_up)
    return result


CLOSE_BLOCK_WORKERS = 100_000  # subsidised workers per block written by a close
CLOSE_WORK_MEM = "256MB"  # PostgreSQL, the close's transaction only: the month's totals fit in memory
PARTITIONS_AHEAD = 2  # journal partitions a close creates for the months after it (PostgreSQL)


def close_month(ledger: Ledger, month_label: str, *,
                on_step: Callable[[str], None] | None = None) -> CloseResult:
    """Close `month_label` (YYYY-MM). Refuses out-of-order and repeated closes; atomic."""
    month = parse_month(month_label)
    step = on_step or (lambda _name: None)
    pending: dict = {}
    with collector_paused(), ledger.engine.begin() as conn:
        head = lock_chain_head(conn)
        if not is_sqlite(conn):  # the month's totals are grouped in memory, not sorted on disk (docs/performance.md)
            query(conn, f"SET LOCAL work_mem = '{CLOSE_WORK_MEM}'")
        last = last_closed_month(conn)
        if last is not None and month <= last:
            raise CloseError(f"{month_label} is already closed (months up to {month_text(last)} are closed)")
        if last is not None and month != next_month(last):
            raise CloseError(f"months close in calendar order: close {month_text(next_month(last))} "
                             f"before {month_label}")
        try:
            version = ledger.pack.version_on(first_day(month))
        except NoVersionInForce as error:
            raise CloseError(str(error)) from error
        version_id = ledger.rules_version_id(conn, version, pending)
        last_tier_id = query(conn, "SELECT coalesce(max(id), 0) FROM household_tier")[0][0]
        present: set[tuple[int, int, int, int]] = set()
        subsidies = subsidies_for_month(conn, month, version, last_tier_id, present)
        step("subsidies computed")
        totals = {scheme: 0 for scheme in SCHEME_CODE}
        for (_worker_id, scheme), amount in subsidies.items():
            totals[scheme] += amount
        claim_legs = [leg for scheme, total in totals.items() if total
                      for leg in ((_STATE_ACCOUNT, 0, SCHEME_CODE[scheme], _STATE, total),
                                  (_CLEARING_ACCOUNT, month, SCHEME_CODE[scheme], NO_PARTY, -total))]
        claim = [] if not claim_legs else [(EntryType.subsidy_claim, None, None, None, None, None,
                                             sum(totals.values()), None, month, month, version_id, None,
                                             tuple(claim_legs))]
        # Workers in id order, each one's schemes by name (the order of an entry's legs), as columns.
        schemes = sorted({scheme for _worker_id, scheme in subsidies})
        workers = np.asarray(sorted({worker_id for worker_id, _scheme in subsidies}), dtype=np.int64)
        amounts = np.zeros((len(workers), len(schemes)), dtype=np.int64)
        if len(workers):
            keys = np.fromiter((worker_id for worker_id, _scheme in subsidies), dtype=np.int64, count=len(subsidies))
            column = {scheme: at for at, scheme in enumerate(schemes)}
            amounts[np.searchsorted(workers, keys),
                    np.fromiter((column[scheme] for _worker_id, scheme in subsidies), dtype=np.int64,
                                count=len(subsidies))] = np.fromiter(subsidies.values(), dtype=np.int64,
                                                                     count=len(subsidies))
            step("entries built")
        codes = [SCHEME_CODE[scheme] for scheme in schemes]
        # Written in blocks of CLOSE_BLOCK_WORKERS: memory stays bounded at a national scale.
        written, head_now, half = None, head, len(workers) // 2
        for start in range(0, max(len(workers), 1), CLOSE_BLOCK_WORKERS):
            part = slice(start, start + CLOSE_BLOCK_WORKERS)
            written = write_subsidy_block(conn, claim if start == 0 else [], workers[part], amounts[part], codes,
                                          month, version_id, recorded_at=iso_utc(ledger.clock()), head=head_now,
                                          worker_keys_present=present)
            head_now = (written.block_hash, written.block_id)
            if start <= half < start + CLOSE_BLOCK_WORKERS or not len(workers):
                step("half the workers written")
        billed = bill_month(conn, ledger, month, version, version_id, totals, head_now)
        written = billed.written or written
        step("bills, claim and late interest recorded")
        # RULES.md §11, after the month's subsidy is posted: the months credited towards a pension,
        # sealed into the chain by one more block, whose hash is then the close's anchor.
        credited = credit_at_close(conn, ledger.pack, month, version)
        if credited:
            written = write_block(conn, [], recorded_at=iso_utc(ledger.clock()),
                                  head=(written.block_hash, written.block_id))
        step("months credited")
        last_entry_id = query(conn, "SELECT coalesce(max(id), 0) FROM journal")[0][0]
        insert_rows(conn, "month_close", ("month", "closed_at", "rules_version_id", "subsidy_entries",
                                          "subsidy_total_vnd", "anchor_hash", "last_entry_id", "last_tier_id"),
                    [(month, iso_utc(ledger.clock()), version_id, len(workers), sum(totals.values()),
                      written.block_hash, last_entry_id, last_tier_id)])
        # Partitioned books: the next months' partitions exist before their first entry (docs/scale.md).
        ensure_month_partitions(conn, [month_plus(month, ahead) for ahead in range(1, PARTITIONS_AHEAD + 1)])
        step("close recorded")
    ledger.committed(pending)
    return CloseResult(month_label, len(workers), {SCHEME_NAME[SCHEME_CODE[s]]: v for s, v in totals.items()},
                       written.block_hash.hex(), version.version_id, billed.bills, billed.bills_vnd,
                       billed.interest_vnd, credited)

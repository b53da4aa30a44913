"""Months credited towards a pension, in the books (RULES.md §11; the rule itself is `rules.crediting`).

- `credit_at_close`: called by `close_month` after the month's subsidy is posted, in the same
  transaction; appends one `credited_month` row per month credited (worker, credited month,
  the close that credited it, the floor it paid). The rows are sealed into the hash chain by
  the close's last block (seal version 2, `ledger.postings.SEALED_TABLES`).
- `credit_figures`: `credited_months_to_date`, `pool_vnd`, `next_credit_needs_vnd` of a set of
  workers for a month: from the stored credits for a closed month, provisional for an open one
  (the same steps on what is booked so far, one open month after another; nothing written).
- `replay_credits`: every close re-run from the aggregates (`verify`, the upgrade of books
  written before revision 0009).

The pool comes from `worker_month` (every row of scheme `si`, any platform id: events, refunds,
subsidy, worker top-ups), one aggregate query; `verify` proves those rows equal the postings.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ledger.accounts import SCHEME_CODE
from ledger.events import month_text
from ledger.postings import row_seal
from ledger.store import fetch_in, insert_rows, query, stream_rows
from rules import RulesPack, RulesVersion
from rules.crediting import (NONE, CreditState, Credits, FloorSchedule, accrue, credit, month_ordinal,
                             next_credit_needs, ordinal_month)

SI = SCHEME_CODE["si"]
CREDIT_COLUMNS = ("id", "worker_id", "month", "close_month", "floor_vnd")


def floor_schedule(conn, pack: RulesPack) -> FloorSchedule:
    """The floors and modes of the books' pack: each version as stored beside the numbers it made
    (`rules_version`), the pack file's for versions the books have not stored yet."""
    from ledger.books import version_from_document

    versions = {version.version_id: version for version in pack.versions}
    for version_id, effective_from, document in query(
            conn, "SELECT version_id, effective_from, document_json FROM rules_version WHERE pack = ?", (pack.name,)):
        versions[version_id] = version_from_document(pack.name, effective_from, document)
    return FloorSchedule(versions.values())


def books_pack(conn) -> RulesPack:
    """The pack the books are kept under, for a caller without a `Ledger` (the upgrade): the shipped
    pack of that name, or, when it is not shipped, the versions the books stored."""
    from ledger.books import version_from_document
    from rules import PackError, load_pack

    rows = query(conn, "SELECT pack, effective_from, document_json FROM rules_version ORDER BY effective_from")
    names = sorted({row[0] for row in rows})
    try:
        return load_pack(names[0] if names else "vn-pilot")
    except PackError:
        return RulesPack(name=names[0], description="as stored in the books",
                         versions=tuple(version_from_document(*row) for row in rows))


def _totals_sql(month: int, workers: bool) -> str:
    """Per worker: si booked before `month`, in `month`, and the first month with a non-zero total."""
    where = " AND worker_id IN ({marks})" if workers else ""
    return ("SELECT worker_id, "
            f"sum(CASE WHEN month < {int(month)} THEN t ELSE 0 END), "
            f"sum(CASE WHEN month = {int(month)} THEN t ELSE 0 END), "
            "min(CASE WHEN t <> 0 THEN month END) "
            "FROM (SELECT worker_id, month, sum(worker_vnd + platform_vnd + subsidy_vnd) AS t FROM worker_month "
            f"WHERE scheme = {SI} AND month <= {int(month)}{where} GROUP BY worker_id, month) AS by_month "
            "GROUP BY worker_id")


def _credits_sql(through_close: int, workers: bool) -> str:
    where = " AND worker_id IN ({marks})" if workers else ""
    return ("SELECT worker_id, count(*), sum(floor_vnd), max(month) FROM credited_month "
            f"WHERE close_month <= {int(through_close)}{where} GROUP BY worker_id")


def _read(conn, sql: str, worker_ids: Sequence[int] | None) -> list[tuple]:
    return query(conn, sql) if worker_ids is None else fetch_in(conn, sql, worker_ids)


def load_state(conn, month: int, credited_through: int | None,
               worker_ids: Sequence[int] | None = None) -> tuple[np.ndarray, CreditState]:
    """The state of each worker after `month` has accrued: si booked up to `month`, the months
    credited by closes up to `credited_through` (None: none). Workers in id order; `worker_ids`
    limits them (every worker given gets a slot, with or without si)."""
    totals = _read(conn, _totals_sql(month, worker_ids is not None), worker_ids)
    credits = [] if credited_through is None else _read(
        conn, _credits_sql(credited_through, worker_ids is not None), worker_ids)
    return _state(month, worker_ids, totals, credits)


def _state(month: int, worker_ids: Sequence[int] | None, totals: Sequence[tuple],
           credits: Sequence[tuple]) -> tuple[np.ndarray, CreditState]:
    """`load_state` from the rows of `_totals_sql` and `_credits_sql` (read or computed)."""
    ids = np.asarray(sorted(set(worker_ids) if worker_ids is not None else
                            {row[0] for row in totals} | {row[0] for row in credits}), dtype=np.int64)
    state = CreditState.empty(len(ids))
    if totals:
        at = np.searchsorted(ids, np.fromiter((row[0] for row in totals), dtype=np.int64, count=len(totals)))
        before = np.fromiter((int(row[1]) for row in totals), dtype=np.int64, count=len(totals))
        within = np.fromiter((int(row[2]) for row in totals), dtype=np.int64, count=len(totals))
        first = np.fromiter((NONE if row[3] is None else month_ordinal(int(row[3])) for row in totals),
                            dtype=np.int64, count=len(totals))
        state.pool[at] = before + within
        state.month_si[at] = within
        state.first_nonzero[at] = first
    if credits:
        at = np.searchsorted(ids, np.fromiter((row[0] for row in credits), dtype=np.int64, count=len(credits)))
        state.credited[at] = [int(row[1]) for row in credits]
        state.pool[at] -= np.fromiter((int(row[2]) for row in credits), dtype=np.int64, count=len(credits))
        state.last_credited[at] = [month_ordinal(int(row[3])) for row in credits]
    state.month = month_ordinal(month)
    return ids, state


def credit_at_close(conn, pack: RulesPack, month: int, version: RulesVersion) -> int:
    """§11 at the close of `month` (its subsidy already posted): append the months it credits."""
    ids, state = load_state(conn, month, credited_through=month - 1)
    credited = credit(state, month_ordinal(month), floor_schedule(conn, pack), mode=version.crediting)
    return record_credits(conn, ids, credited, month)


def record_credits(conn, ids: np.ndarray, credited: Credits, close_month: int) -> int:
    if not len(credited.worker):
        return 0
    next_id = int(query(conn, "SELECT coalesce(max(id), 0) FROM credited_month")[0][0] or 0) + 1
    order = np.lexsort((credited.month, ids[credited.worker]))  # by worker, then month
    rows = []
    for offset, index in enumerate(order.tolist()):
        row = (next_id + offset, int(ids[credited.worker[index]]), int(ordinal_month(int(credited.month[index]))),
               int(close_month), int(credited.floor_vnd[index]))
        rows.append((*row, row_seal("credited_month", row)))
    insert_rows(conn, "credited_month", (*CREDIT_COLUMNS, "seal"), rows)
    return len(rows)


class Figures(NamedTuple):
    credited_months_to_date: int
    pool_vnd: int
    next_credit_needs_vnd: int
    candidate_month: int | None  # YYYYMM of the next month to credit (None: no si yet)
    floor_vnd: int               # floor(candidate) (the statement month's floor without a candidate)
    credited_now: tuple[int, ...]  # months this month's close credited (or would, while open)


def credit_figures(conn, pack: RulesPack, month: int, last_closed: int | None,
                   worker_ids: Sequence[int]) -> dict[int, Figures]:
    """Per worker id: RULES.md §11's statement fields for `month` (provisional while it is open)."""
    if not worker_ids:
        return {}
    return _credit_figures(_BooksRows(conn, worker_ids), floor_schedule(conn, pack), month, last_closed, worker_ids)


def worker_credit_figures(schedule: FloorSchedule, month: int, last_closed: int | None, worker_id: int,
                          si_by_month: dict[int, int], credited: Sequence[tuple[int, int, int]]) -> Figures:
    """`credit_figures` of one worker from rows the caller read already (a statement's one query):
    `si_by_month` the worker's si total (worker + platform + subsidy) of each month up to `month`
    that has any si row, `credited` every `(month, close_month, floor_vnd)` of `credited_month`."""
    return _credit_figures(_WorkerRows(worker_id, si_by_month, credited), schedule, month, last_closed,
                           [worker_id])[worker_id]


class _BooksRows:
    """What `_credit_figures` reads, queried from the books for a set of workers."""

    def __init__(self, conn, worker_ids: Sequence[int]) -> None:
        self.conn, self.worker_ids = conn, worker_ids

    def state(self, month: int, credited_through: int | None) -> tuple[np.ndarray, CreditState]:
        return load_state(self.conn, month, credited_through, self.worker_ids)

    def first_si_months(self, month: int) -> list[int | None]:
        return [row[0] for row in fetch_in(
            self.conn, f"SELECT min(month) FROM worker_month WHERE scheme = {SI} AND month <= {int(month)} "
                       "AND worker_id IN ({marks})", self.worker_ids)]

    def si_between(self, after: int, month: int) -> list[tuple[int, int, int]]:
        return fetch_in(self.conn, "SELECT worker_id, month, sum(worker_vnd + platform_vnd + subsidy_vnd) "
                                   f"FROM worker_month WHERE scheme = {SI} AND month > {int(after)} "
                                   f"AND month <= {int(month)} AND worker_id IN ({{marks}}) GROUP BY worker_id, month",
                        self.worker_ids)

    def stored_now(self, month: int) -> dict[int, list[int]]:
        return _stored_now(self.conn, month, self.worker_ids)


class _WorkerRows:
    """The same answers as `_BooksRows` for one worker, computed from rows read already."""

    def __init__(self, worker_id: int, si_by_month: dict[int, int], credited: Sequence[tuple[int, int, int]]) -> None:
        self.worker_id, self.si_by_month, self.credited = worker_id, si_by_month, credited

    def state(self, month: int, credited_through: int | None) -> tuple[np.ndarray, CreditState]:
        months = {m: total for m, total in self.si_by_month.items() if m <= month}
        totals = [] if not months else [(
            self.worker_id, sum(total for m, total in months.items() if m < month), months.get(month, 0),
            min((m for m, total in months.items() if total != 0), default=None))]
        credits = []
        if credited_through is not None:
            mine = [row for row in self.credited if row[1] <= credited_through]
            if mine:
                credits = [(self.worker_id, len(mine), sum(row[2] for row in mine), max(row[0] for row in mine))]
        return _state(month, [self.worker_id], totals, credits)

    def first_si_months(self, month: int) -> list[int | None]:
        return [min((m for m in self.si_by_month if m <= month), default=None)]

    def si_between(self, after: int, month: int) -> list[tuple[int, int, int]]:
        return [(self.worker_id, m, total) for m, total in self.si_by_month.items() if after < m <= month]

    def stored_now(self, month: int) -> dict[int, list[int]]:
        now = sorted(row[0] for row in self.credited if row[1] == month)
        return {self.worker_id: now} if now else {}


def _credit_figures(rows: _BooksRows | _WorkerRows, schedule: FloorSchedule, month: int, last_closed: int | None,
                    worker_ids: Sequence[int]) -> dict[int, Figures]:
    target = month_ordinal(month)
    if last_closed is not None and month <= last_closed:
        ids, state = rows.state(month, credited_through=month)
        return _figures(ids, state, target, schedule, rows.stored_now(month))
    # Open: the stored credits, then each open month up to `month` credited in turn (nothing written).
    first_open = None if last_closed is None else month_ordinal(last_closed) + 1
    if first_open is None:
        lows = [low for low in rows.first_si_months(month) if low is not None]
        first_open = month_ordinal(min(lows)) if lows else target
    first_open = min(first_open, target)
    ids, state = rows.state(ordinal_month(first_open), credited_through=last_closed)
    later = {}
    if first_open < target:
        for worker_id, booked_month, total in rows.si_between(ordinal_month(first_open), month):
            later.setdefault(month_ordinal(int(booked_month)), []).append((worker_id, int(total)))
    now: dict[int, list[int]] = {}
    for ordinal in range(first_open, target + 1):
        if ordinal > first_open:
            si = np.zeros(len(ids), dtype=np.int64)
            for worker_id, total in later.get(ordinal, ()):
                si[np.searchsorted(ids, worker_id)] += total
            accrue(state, si, ordinal)
        done = credit(state, ordinal, schedule)
        if ordinal == target:
            for index, credited_month in zip(done.worker.tolist(), done.month.tolist()):
                now.setdefault(int(ids[index]), []).append(int(ordinal_month(credited_month)))
    return _figures(ids, state, target, schedule, now)


def _stored_now(conn, month: int, worker_ids: Sequence[int]) -> dict[int, list[int]]:
    now: dict[int, list[int]] = {}
    for worker_id, credited_month in fetch_in(
            conn, f"SELECT worker_id, month FROM credited_month WHERE close_month = {int(month)} "
                  "AND worker_id IN ({marks}) ORDER BY month", worker_ids):
        now.setdefault(worker_id, []).append(int(credited_month))
    return now


def _figures(ids: np.ndarray, state: CreditState, target: int, schedule: FloorSchedule,
             now: dict[int, list[int]]) -> dict[int, Figures]:
    needs = next_credit_needs(state, target, schedule)
    candidate = state.candidate()
    shown = np.where(candidate == NONE, target, candidate)
    if schedule.mode(target) == "per_month":
        shown = np.where(state.last_credited >= target, target + 1, target)
    floors = schedule.floor(shown)
    return {int(worker_id): Figures(int(state.credited[i]), int(state.pool[i]), int(needs[i]),
                                    None if candidate[i] == NONE else int(ordinal_month(int(shown[i]))),
                                    int(floors[i]), tuple(now.get(int(worker_id), ())))
            for i, worker_id in enumerate(ids.tolist())}


def worker_credits(conn, worker_id: int) -> list[dict]:
    """The months credited to one worker, oldest first, each with the close that credited it."""
    rows = query(conn, "SELECT c.month, c.close_month, c.floor_vnd, m.closed_at, m.anchor_hash FROM credited_month c "
                       "LEFT JOIN month_close m ON m.month = c.close_month WHERE c.worker_id = ? ORDER BY c.month",
                 (worker_id,))
    return [{"month": month_text(month), "credited_by_close_of": month_text(close), "floor_vnd": int(floor),
             "closed_at": closed_at, "close_anchor": None if anchor is None else bytes(anchor).hex()}
            for month, close, floor, closed_at, anchor in rows]


def replay_credits(conn, pack: RulesPack) -> tuple[np.ndarray, list[tuple[int, Credits]]]:
    """Every close of the books re-run from the aggregates in month order, from no credit at all:
    (worker ids, [(close month YYYYMM, what §11 credits at it)]). Streams `worker_month` by month."""
    closes = [int(row[0]) for row in query(conn, "SELECT month FROM month_close ORDER BY month")]
    if not closes:
        return np.zeros(0, dtype=np.int64), []
    last = closes[-1]
    ids = np.asarray([row[0] for row in query(
        conn, f"SELECT DISTINCT worker_id FROM worker_month WHERE scheme = {SI} AND month <= {last} "
              "ORDER BY worker_id")], dtype=np.int64)
    schedule = floor_schedule(conn, pack)
    state = CreditState.empty(len(ids))
    close_set = set(closes)
    history: list[tuple[int, Credits]] = []

    def finish(month: int, si: np.ndarray) -> None:
        accrue(state, si, month_ordinal(month))
        if month in close_set:
            history.append((month, credit(state, month_ordinal(month), schedule,
                                          mode=schedule.mode(month_ordinal(month)))))

    def finish_closes_before(month: int | None) -> None:  # closes with nothing booked in their month
        for close in closes:
            if close not in done and (month is None or close < month):
                finish(close, np.zeros(len(ids), dtype=np.int64))
                done.add(close)

    current, si = None, np.zeros(len(ids), dtype=np.int64)
    done: set[int] = set()
    for chunk in stream_rows(conn, "SELECT month, worker_id, sum(worker_vnd + platform_vnd + subsidy_vnd) "
                                   f"FROM worker_month WHERE scheme = {SI} AND month <= {last} "
                                   "GROUP BY month, worker_id ORDER BY month, worker_id"):
        for booked_month, worker_id, total in chunk:
            if booked_month != current:
                if current is not None:
                    finish(current, si)
                    done.add(current)
                finish_closes_before(booked_month)
                current, si = booked_month, np.zeros(len(ids), dtype=np.int64)
            si[np.searchsorted(ids, worker_id)] += int(total)
    if current is not None:
        finish(current, si)
        done.add(current)
    finish_closes_before(None)
    history.sort(key=lambda item: item[0])
    return ids, history

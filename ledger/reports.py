"""Worker statements and settlements (RULES.md §7, INTERFACES.md), read from the books.

Both read the aggregates kept in the same transaction as the postings
(`worker_month`, `platform_month`); `ansinh verify` proves those equal the postings.
A settlement also carries a hash of the postings it came from, recomputed from the
posting rows themselves, so an insurer can check the file against the books.
"""
from __future__ import annotations

import hashlib
import weakref
from itertools import chain
from typing import Any, Iterator

from ledger.accounts import SCHEME_NAME
from ledger.books import Ledger
from ledger.close import first_day, last_closed_month
from ledger.credits import SI, Figures, credit_figures, floor_schedule, worker_credit_figures, worker_credits
from ledger.events import month_text, parse_month
from ledger.money import topup_reference
from ledger.postings import compact_legs
from ledger.layout import COMPACT_COLUMNS
from ledger.store import consistent_snapshot, fetch_in, is_partitioned_journal, month_rows, query, stream_rows
from rules import NoVersionInForce, SCHEMES
from rules.crediting import FloorSchedule
from rules.crediting import PENSION_MONTHS_NEEDED as CREDITED_MONTHS_FOR_PENSION
from rules.crediting import month_ordinal, ordinal_month
from rules.pension import PACE_WINDOW_MONTHS, accrual_pace_vnd, project

PENSION_MONTHS_NEEDED = CREDITED_MONTHS_FOR_PENSION  # 180 credited months (RULES.md §11)


def _zero_schemes() -> dict[str, dict[str, int]]:
    return {scheme: {"worker": 0, "platform": 0, "subsidy": 0, "total": 0} for scheme in SCHEMES}


def _pension_floor_vnd(ledger: Ledger, month: int) -> int | None:
    try:
        return ledger.pack.version_on(first_day(month)).pension_floor_contribution_vnd
    except NoVersionInForce:
        return None


def statement(ledger: Ledger, national_id: str, month_label: str) -> dict[str, Any]:
    """One worker's month: INTERFACES.md's JSON plus platforms, pension progress (and
    `archived_months`, the months up to this one archived to Parquet, when there are any).

    Read in one query (`_STATEMENT_SQL`: one round trip and one snapshot on PostgreSQL, where
    it was nine); the pension figures are computed from its rows (`worker_credit_figures`)."""
    month = parse_month(month_label)
    pseudonym = ledger.keys.pseudonym(national_id)
    with ledger.engine.connect() as conn:
        partitioned = is_partitioned_journal(conn)
        read = query(conn, _statement_sql(partitioned), (pseudonym, pseudonym, month)
                     + ((month,) if partitioned else ()))
        schedule = _floor_schedule(conn, ledger, read[0][2])
        conn.rollback()
    last, worker_id = read[0][1], read[0][4]
    rows: list[tuple] = []
    credited: list[tuple[int, int, int]] = []
    archived: list[int] = []
    for tag, first, second, platform_id, worker_vnd, platform_vnd, subsidy_vnd, name in read[1:]:
        if tag == 1:
            rows.append((first, second, platform_id, name, int(worker_vnd), int(platform_vnd), int(subsidy_vnd)))
        elif tag == 2:
            credited.append((int(first), int(second), int(worker_vnd)))
        else:
            archived.append(first)
    figures = None
    if worker_id is not None:
        si_by_month: dict[int, int] = {}
        for row_month, scheme_code, _platform, _name, worker_vnd, platform_vnd, subsidy_vnd in rows:
            if scheme_code == SI:
                si_by_month[row_month] = si_by_month.get(row_month, 0) + worker_vnd + platform_vnd + subsidy_vnd
        figures = worker_credit_figures(schedule, month, last, worker_id, si_by_month, credited)
    report = _with_topups(ledger, _statement_from_rows(ledger, national_id, month, last, rows, figures), worker_id,
                          month, rows)
    if archived:
        # The figures come from the aggregates, which stay; the entries of these months are in
        # Parquet files (ledger/archive.py), and a statement says so rather than staying silent.
        report["archived_months"] = [month_text(m) for m in sorted(archived)]
    return report


def _statement_sql(partitioned: bool) -> str:
    """Everything a statement reads, as tagged rows `(tag, a, b, platform_id, v1, v2, v3, name)`:
    tag 0, one row: the last closed month, the newest `rules_version` id, the worker's id (by
    pseudonym, else by a corrected id's pseudonym, as `Ledger.worker_ids`; NULL when unknown);
    tag 1: the worker's `worker_month` rows up to the month (month, scheme, platform, its name,
    worker, platform and subsidy VND); tag 2: the worker's `credited_month` rows (month, close
    month, floor in v1); tag 3 (partitioned books only): the months up to this one archived now
    (the latest `archived_month` row of the month says `archived`, as `archived_months`).
    Parameters: pseudonym, pseudonym, month (and the month again when partitioned)."""
    archived = ("" if not partitioned else
                " UNION ALL SELECT 3, a.month, NULL, NULL, NULL, NULL, NULL, NULL FROM archived_month a "
                "WHERE a.month <= ? AND a.action = 'archived' "
                "AND a.id = (SELECT max(b.id) FROM archived_month b WHERE b.month = a.month)")
    return ("WITH w AS (SELECT coalesce((SELECT id FROM worker WHERE pseudonym = ?), "
            "(SELECT worker_id FROM worker_identity_change WHERE pseudonym = ?)) AS id) "
            "SELECT 0 AS tag, (SELECT max(month) FROM month_close), (SELECT max(id) FROM rules_version), NULL, "
            "w.id, NULL, NULL, NULL FROM w "
            "UNION ALL SELECT 1, m.month, m.scheme, m.platform_id, m.worker_vnd, m.platform_vnd, m.subsidy_vnd, p.name "
            "FROM w JOIN worker_month m ON m.worker_id = w.id LEFT JOIN platform p ON p.id = m.platform_id "
            "WHERE m.month <= ? "
            "UNION ALL SELECT 2, c.month, c.close_month, NULL, c.floor_vnd, NULL, NULL, NULL "
            "FROM w JOIN credited_month c ON c.worker_id = w.id" + archived + " ORDER BY 1")


#: Per engine: (newest rules_version id, pack name) -> the floor schedule built from those rows.
_SCHEDULES: "weakref.WeakKeyDictionary[Any, tuple[tuple[int, str], FloorSchedule]]" = weakref.WeakKeyDictionary()


def _floor_schedule(conn, ledger: Ledger, newest_version_id: int | None) -> FloorSchedule:
    """`floor_schedule` of the books, built again only when `rules_version` gained a row (the
    table is append-only, so its newest id names its rows)."""
    key = (newest_version_id or 0, ledger.pack.name)
    cached = _SCHEDULES.get(ledger.engine)
    if cached is not None and cached[0] == key:
        return cached[1]
    schedule = floor_schedule(conn, ledger.pack)
    _SCHEDULES[ledger.engine] = (key, schedule)
    return schedule


def _with_topups(ledger: Ledger, report: dict[str, Any], worker_id: int | None, month: int,
                 rows: list[tuple]) -> dict[str, Any]:
    """A statement's worker top-ups (RULES.md §11): the worker's own payment reference
    (`topup_reference`; None for a worker the books do not know yet) and `topups_vnd`, the
    top-ups booked in the month. A top-up is no platform: it is the worker-party `si` of the rows
    of platform 0 (whose other rows are the state's subsidy), already inside `schemes.si.worker`."""
    report["topup_reference"] = None if worker_id is None else topup_reference(ledger.keys, worker_id)
    report["topups_vnd"] = sum(int(row[4]) for row in rows if row[0] == month and row[2] == 0)
    return report


def _statement_from_rows(ledger: Ledger, national_id: str, month: int, last_closed: int | None,
                         rows: list[tuple], figures: Figures | None) -> dict[str, Any]:
    schemes = _zero_schemes()
    to_date = {scheme: 0 for scheme in SCHEMES}
    platforms: dict[str, dict[str, dict[str, int]]] = {}
    for row_month, scheme_code, _platform_id, platform_name, worker_vnd, platform_vnd, subsidy_vnd in rows:
        scheme = SCHEME_NAME[scheme_code]
        to_date[scheme] += worker_vnd + platform_vnd + subsidy_vnd
        if row_month != month:
            continue
        line = schemes[scheme]
        line["worker"] += worker_vnd
        line["platform"] += platform_vnd
        line["subsidy"] += subsidy_vnd
        line["total"] += worker_vnd + platform_vnd + subsidy_vnd
        if platform_name is not None:
            by_scheme = platforms.setdefault(platform_name, {s: {"worker": 0, "platform": 0} for s in SCHEMES})
            by_scheme[scheme]["worker"] += worker_vnd
            by_scheme[scheme]["platform"] += platform_vnd
    if figures is None:  # a worker the books do not know: nothing booked, nothing credited (RULES.md §11)
        floor = _pension_floor_vnd(ledger, month)
        figures = Figures(0, 0, floor or 0, None, floor or 0, ())
    closed = last_closed is not None and month <= last_closed
    return {
        "national_id": national_id,
        "month": month_text(month),
        "closed": closed,
        "schemes": schemes,
        "to_date": to_date,
        "credited_months_to_date": figures.credited_months_to_date,
        "pool_vnd": figures.pool_vnd,
        "next_credit_needs_vnd": figures.next_credit_needs_vnd,
        "platforms": dict(sorted(platforms.items())),
        # The same figures for the pages (RULES.md §11, pooled crediting): which months this month's
        # close credited (or would, while open), the next month to credit and what it still needs.
        "pension": {
            "provisional": not closed,
            "floor_contribution_vnd": figures.floor_vnd,
            "own_si_vnd": schemes["si"]["worker"],
            "pool_vnd": figures.pool_vnd,
            "month_counts": bool(figures.credited_now),
            "credited_this_month": [month_text(m) for m in figures.credited_now],
            "next_month": None if figures.candidate_month is None else month_text(figures.candidate_month),
            "shortfall_vnd": figures.next_credit_needs_vnd,
            "months_counted": figures.credited_months_to_date,
            "months_needed": PENSION_MONTHS_NEEDED,
        },
        "meaning": _meaning(ledger, month, rows, figures),
    }


#: Per scheme, the key of the one sentence saying what it pays for (texts: api/i18n.py).
MEANING_SENTENCES = {"si": "meaning_si", "oa": "meaning_oa", "ui": "meaning_ui"}


def _monthly_si_vnd(month: int, rows: list[tuple]) -> list[int]:
    """The worker's `si` total (worker + platform + subsidy) per calendar month, oldest first, over
    the last up to 12 months up to `month`, from the first month with any `si` (none: [])."""
    totals: dict[int, int] = {}
    for row_month, scheme_code, _platform_id, _name, worker_vnd, platform_vnd, subsidy_vnd in rows:
        if SCHEME_NAME[scheme_code] == "si":
            totals[row_month] = totals.get(row_month, 0) + worker_vnd + platform_vnd + subsidy_vnd
    booked = [m for m, total in totals.items() if total != 0]
    if not booked:
        return []
    end = month_ordinal(month)
    start = max(month_ordinal(min(booked)), end - PACE_WINDOW_MONTHS + 1)
    return [totals.get(int(ordinal_month(o)), 0) for o in range(start, end + 1)]


def _meaning(ledger: Ledger, month: int, rows: list[tuple], figures: Figures) -> dict[str, Any]:
    """What the balance means: per scheme the key of one sentence, the credited months against
    180, and the pension projection for this worker's own history (`rules.pension`, an estimate;
    None when no floor is in force for the month)."""
    floor = _pension_floor_vnd(ledger, month)
    monthly = _monthly_si_vnd(month, rows)
    projection = None
    if floor:
        projection = project(figures.credited_months_to_date, figures.pool_vnd, accrual_pace_vnd(monthly), floor,
                             month, figures.candidate_month, pace_months=len(monthly)).as_dict()
    return {
        "schemes": {scheme: {"sentence": key} for scheme, key in MEANING_SENTENCES.items()},
        "credited_months": figures.credited_months_to_date,
        "months_needed": PENSION_MONTHS_NEEDED,
        "estimate": True,
        "projection": projection,
    }


def credits(ledger: Ledger, national_id: str) -> dict[str, Any]:
    """The months credited to a worker towards a pension (RULES.md §11), oldest first, each with
    the close that credited it (its month, when and its anchor hash) and the floor it paid."""
    with ledger.engine.connect() as conn:
        worker_id = ledger.worker_id(conn, national_id)
        months = [] if worker_id is None else worker_credits(conn, worker_id)
        conn.rollback()
    return {"national_id": national_id, "credited_months": len(months), "months_needed": PENSION_MONTHS_NEEDED,
            "months": months}


def statements(ledger: Ledger, month_label: str) -> Iterator[dict[str, Any]]:
    """Every worker with any posting or subsidy booked in the month (the insurer's bulk view)."""
    month = parse_month(month_label)
    with consistent_snapshot(ledger) as conn:  # one state of the books, even while a close commits
        last = last_closed_month(conn)
        workers = [row[0] for row in query(conn, "SELECT DISTINCT worker_id FROM worker_month WHERE month = ? "
                                                 "ORDER BY worker_id", (month,))]
        for start in range(0, len(workers), 5000):
            part = workers[start:start + 5000]
            ids = dict(fetch_in(conn, "SELECT id, national_id_encrypted FROM worker WHERE id IN ({marks})", part))
            rows = fetch_in(conn, "SELECT w.worker_id, w.month, w.scheme, w.platform_id, p.name, w.worker_vnd, "
                                  "w.platform_vnd, w.subsidy_vnd FROM worker_month w "
                                  "LEFT JOIN platform p ON p.id = w.platform_id "
                                  f"WHERE w.month <= {int(month)} AND w.worker_id IN ({{marks}})", part)
            grouped: dict[int, list[tuple]] = {}
            for worker_id, *rest in rows:
                grouped.setdefault(worker_id, []).append(tuple(rest))
            figures = credit_figures(conn, ledger.pack, month, last, part)
            for worker_id in part:
                national_id = ledger.keys.decrypt(bytes(ids[worker_id]))
                own = grouped.get(worker_id, [])
                yield _with_topups(ledger, _statement_from_rows(ledger, national_id, month, last, own,
                                                                figures[worker_id]), worker_id, month, own)


def settlement(ledger: Ledger, month_label: str) -> dict[str, Any]:
    """Platform dues per scheme and the state's subsidy due; provisional while the month is open."""
    month = parse_month(month_label)
    with ledger.engine.connect() as conn:
        from ledger.archive import refuse_archived

        refuse_archived(conn, month, "settlement")
        last = last_closed_month(conn)
        dues = query(conn, "SELECT p.name, m.scheme, m.worker_vnd + m.platform_vnd FROM platform_month m "
                           "JOIN platform p ON p.id = m.platform_id WHERE m.month = ?", (month,))
        subsidy_rows = query(conn, "SELECT scheme, sum(subsidy_vnd) FROM worker_month WHERE month = ? "
                                   "AND platform_id = 0 GROUP BY scheme", (month,))
        digest, posting_count = postings_digest(conn, month)
        conn.rollback()
    platforms: dict[str, dict[str, int]] = {}
    for name, scheme_code, due in dues:
        platforms.setdefault(name, {scheme: 0 for scheme in SCHEMES})[SCHEME_NAME[scheme_code]] += int(due)
    subsidy = {scheme: 0 for scheme in SCHEMES}
    for scheme_code, total in subsidy_rows:
        subsidy[SCHEME_NAME[scheme_code]] += int(total)
    closed = last is not None and month <= last
    control = sum(sum(by_scheme.values()) for by_scheme in platforms.values()) + sum(subsidy.values())
    return {
        "month": month_text(month),
        "closed": closed,
        "status": "final" if closed else "provisional",
        "platforms": dict(sorted(platforms.items())),
        "subsidy": subsidy,
        "control_total_vnd": control,
        "postings": posting_count,
        "postings_sha256": digest,
    }


def postings_digest(conn, month: int) -> tuple[str, int]:
    """SHA-256 over the month's legs (entry id, leg, account, party, amount), in order: the rows of
    the `legs` view, built here from the compact rows and the postings without the view's sort."""
    digest = hashlib.sha256()
    count = 0
    for rows in _legs_of_month(conn, month):
        # One line per leg, its seven integers joined by commas (the same bytes as str() of each).
        digest.update("".join(["%d,%d,%d,%d,%d,%d,%d\n" % row for row in rows]).encode())
        count += len(rows)
    return digest.hexdigest(), count


def _legs_of_month(conn, month: int) -> Iterator[list[tuple]]:
    """The month's legs in (entry id, leg) order, in lists: each compact row's legs rebuilt as
    `write_block` numbered them, merged with the multi-leg entries' postings."""
    postings = chain.from_iterable(stream_rows(
        conn, "SELECT p.entry_id, p.leg, p.account_kind, p.owner_id, p.scheme, p.party, p.amount_vnd FROM posting p "
              "JOIN journal j ON j.id = p.entry_id WHERE j.booking_month = ? ORDER BY p.entry_id, p.leg", (month,)))
    pending = next(postings, None)
    rows_of_month, params = month_rows(conn, month)
    for rows in stream_rows(conn, f"SELECT id, platform_id, worker_id, {', '.join(COMPACT_COLUMNS)} "
                                  f"FROM {rows_of_month} ORDER BY id", params):
        out: list[tuple] = []
        for entry_id, platform_id, worker_id, receivable, *shares in rows:
            while pending is not None and pending[0] <= entry_id:
                out.append(pending)
                pending = next(postings, None)
            if receivable is not None:
                out.extend((entry_id, leg, *rest) for leg, rest in
                           enumerate(compact_legs(platform_id, worker_id, receivable, shares)))
        yield out
    rest = list(postings) if pending is None else [pending, *postings]
    if rest:
        yield rest


def settlement_lines(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The settlement as flat lines (CSV/Parquet): one per payer and scheme, then the control total."""
    lines = [{"month": report["month"], "status": report["status"], "payer": "platform", "name": name,
              "scheme": scheme, "amount_vnd": amount}
             for name, by_scheme in report["platforms"].items() for scheme, amount in by_scheme.items()]
    lines += [{"month": report["month"], "status": report["status"], "payer": "state", "name": "state_budget",
               "scheme": scheme, "amount_vnd": amount} for scheme, amount in report["subsidy"].items()]
    lines.append({"month": report["month"], "status": report["status"], "payer": "control_total",
                  "name": report["postings_sha256"], "scheme": "all", "amount_vnd": report["control_total_vnd"]})
    return lines


def history(ledger: Ledger, national_id: str) -> dict[str, Any]:
    """A worker's months, oldest first: per scheme worker/platform/subsidy/total, and totals to date."""
    to_date = {scheme: 0 for scheme in SCHEMES}
    by_month: dict[int, dict[str, dict[str, int]]] = {}
    with ledger.engine.connect() as conn:
        worker_id = ledger.worker_id(conn, national_id)
        last = last_closed_month(conn)
        rows = [] if worker_id is None else query(
            conn, "SELECT month, scheme, sum(worker_vnd), sum(platform_vnd), sum(subsidy_vnd) FROM worker_month "
                  "WHERE worker_id = ? GROUP BY month, scheme ORDER BY month", (worker_id,))
        conn.rollback()
    for month, scheme_code, worker_vnd, platform_vnd, subsidy_vnd in rows:
        line = by_month.setdefault(month, _zero_schemes())[SCHEME_NAME[scheme_code]]
        line["worker"] += int(worker_vnd)
        line["platform"] += int(platform_vnd)
        line["subsidy"] += int(subsidy_vnd)
        line["total"] += int(worker_vnd + platform_vnd + subsidy_vnd)
        to_date[SCHEME_NAME[scheme_code]] += int(worker_vnd + platform_vnd + subsidy_vnd)
    return {"months": [{"month": month_text(month), "closed": last is not None and month <= last,
                        "schemes": schemes} for month, schemes in sorted(by_month.items())],
            "to_date": to_date}


def months_overview(ledger: Ledger) -> list[dict[str, Any]]:
    """Every month with bookings or a close: open or closed, entries booked, the close's figures."""
    with ledger.engine.connect() as conn:
        booked = dict(query(conn, "SELECT booking_month, count(*) FROM journal GROUP BY booking_month"))
        closes = {row[0]: row[1:] for row in query(
            conn, "SELECT c.month, c.closed_at, c.subsidy_total_vnd, v.version_id FROM month_close c "
                  "LEFT JOIN rules_version v ON v.id = c.rules_version_id")}
        conn.rollback()
    result = []
    last = max(closes, default=None)
    for month in sorted(set(booked) | set(closes)):
        closed = closes.get(month)
        result.append({"month": month_text(month), "status": "closed" if last and month <= last else "open",
                       "entries": int(booked.get(month, 0)),
                       "closed_at": closed[0] if closed else None,
                       "subsidy_total_vnd": int(closed[1]) if closed else None,
                       "rules_version": closed[2] if closed else None})
    return result

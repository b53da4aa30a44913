"""What leaves the books for the state: the subsidy claim and the monthly reports to authorities.

- `state_claim`: the month's subsidy by scheme, household tier and province, with control
  totals and what the state has paid against it (the claim lines are `money_record` rows
  written at close, `ledger.money`).
- `authority_aggregates`: per (province, platform, kind, tier) — workers covered,
  contributions by party, subsidy — for provincial Departments of Home Affairs.
- `contribution_lines` / `write_contributions`: one line per worker and scheme in the
  versioned layout `ansinh-contributions/2` (2 adds the months credited towards a pension),
  meant for loading into the national insurer's records, with the file's SHA-256 beside it.
- `credits_by_province`: months credited towards a pension (RULES.md §11) by province.

Province = the worker's registration province, the first three digits of the CCCD;
tier = the household status in force at the month's close (the statuses the close saw).
Nothing is left out and nothing invented: each report's totals equal the settlement's
(`tests/ledger/test_authority.py` proves it on the public vectors).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

from ledger import money
from ledger.accounts import PARTY_CODE, SCHEME_NAME, AccountKind, EntryType
from ledger.books import Ledger
from ledger.close import tiers_in_force
from ledger.credits import credit_figures
from ledger.events import month_text, parse_month
from ledger.files import private_open
from ledger.store import fetch_in, query
from rules import BASE_TIER, KINDS, SCHEMES

#: Layout 2 (pooled crediting, RULES.md §11) adds, on each worker's `si` line, the months this month's
#: close credited (`credited_months`, YYYY-MM separated by spaces) and the count credited to date;
#: the other schemes' lines leave both empty. A worker credited without any booking in the month
#: (an earlier pool paid the month) gets an `si` line of zero amounts. Layout 1 was the first 8 columns.
CONTRIBUTIONS_LAYOUT = "ansinh-contributions/2"
CONTRIBUTION_COLUMNS = ("layout", "national_id", "month", "scheme", "worker_vnd", "platform_vnd", "subsidy_vnd",
                        "total_vnd", "credited_months", "credited_months_to_date")
CREDIT_COLUMNS = ("month", "province", "workers_credited", "months_credited", "workers_with_credits",
                  "credited_months_to_date")
AGGREGATE_COLUMNS = ("month", "province", "platform", "kind", "tier", "workers", "worker_vnd", "platform_vnd",
                     "subsidy_vnd", "total_vnd")
SUBSIDY_PLATFORM, SUBSIDY_KIND = "state_budget", "subsidy"
OTHER = "*"  # province, platform, kind or tier of a line that stands for cells folded together


def _tiers_seen(conn, month: int) -> dict[int, str]:
    """Household statuses the month's close saw (every status so far while the month is open)."""
    closed = query(conn, "SELECT last_tier_id FROM month_close WHERE month = ?", (month,))
    return tiers_in_force(conn, month, closed[0][0] if closed else None)


def _is_closed(conn, month: int) -> bool:
    last = query(conn, "SELECT max(month) FROM month_close")[0][0]
    return last is not None and month <= last


def _subsidy_rows(conn, month: int) -> list[tuple[int, str, int, int]]:
    """(worker id, province, scheme code, subsidy) of the month."""
    return [(int(w), p, int(s), int(v)) for w, p, s, v in query(
        conn, "SELECT m.worker_id, w.province, m.scheme, sum(m.subsidy_vnd) FROM worker_month m "
              "JOIN worker w ON w.id = m.worker_id WHERE m.month = ? AND m.platform_id = 0 "
              "GROUP BY m.worker_id, w.province, m.scheme HAVING sum(m.subsidy_vnd) <> 0", (month,))]


def state_claim(ledger: Ledger, month_label: str) -> dict[str, Any]:
    """The claim to the state budget for a month: by scheme, tier and province, with control totals."""
    month = parse_month(month_label)
    with ledger.engine.connect() as conn:
        closed = _is_closed(conn, month)
        tiers = _tiers_seen(conn, month)
        rows = _subsidy_rows(conn, month)
        records = money.load_records(conn, payer_id=money.STATE)
        conn.rollback()
    schemes = {scheme: 0 for scheme in SCHEMES}
    by_tier: dict[str, dict[str, int]] = {}
    by_province: dict[str, dict[str, int]] = {}
    for worker_id, province, scheme_code, amount in rows:
        scheme = SCHEME_NAME[scheme_code]
        schemes[scheme] += amount
        tier = tiers.get(worker_id, BASE_TIER)
        by_tier.setdefault(tier, {s: 0 for s in SCHEMES})[scheme] += amount
        by_province.setdefault(province, {s: 0 for s in SCHEMES})[scheme] += amount
    book = money.replay(records).get(money.STATE, money.PayerBook(money.STATE))
    lines = [r for r in records if r.kind == money.CLAIM and r.month == month]
    claimed = sum(r.amount_vnd for r in lines)
    outstanding = sum(book.outstanding.get(r.id, 0) for r in lines)
    return {
        "month": month_text(month),
        "status": "final" if closed else "provisional",
        "reference": lines[0].reference if lines else money.claim_reference(month),
        "due_on": lines[0].due_on.isoformat() if lines and lines[0].due_on else None,
        "schemes": schemes,
        "by_tier": dict(sorted(by_tier.items())),
        "by_province": dict(sorted(by_province.items())),
        "workers": len({row[0] for row in rows}),
        "control_total_vnd": sum(schemes.values()),
        "claimed_vnd": claimed,
        "paid_vnd": claimed - outstanding,
        "outstanding_vnd": outstanding,
    }


def authority_aggregates(ledger: Ledger, month_label: str, min_cell_workers: int | None = None
                         ) -> list[dict[str, Any]]:
    """Per (province, platform, kind, tier): workers covered, contributions and subsidy of the month.

    With `min_cell_workers` (k), no line describes fewer than k workers (`suppress_small_cells`):
    the view for the policy role. Without it, every cell: the insurer's full report.
    """
    month = parse_month(month_label)
    worker_party, platform_party = PARTY_CODE["worker"], PARTY_CODE["platform"]
    with ledger.engine.connect() as conn:
        from ledger.archive import refuse_archived

        refuse_archived(conn, month, "report to the authorities")
        tiers = _tiers_seen(conn, month)
        names = dict(query(conn, "SELECT id, name FROM platform"))
        contributions = query(
            conn, "SELECT w.province, j.platform_id, j.kind, p.owner_id, "
                  f"-sum(CASE WHEN p.party = {worker_party} THEN p.amount_vnd ELSE 0 END), "
                  f"-sum(CASE WHEN p.party = {platform_party} THEN p.amount_vnd ELSE 0 END) "
                  "FROM legs p JOIN journal j ON j.id = p.entry_id JOIN worker w ON w.id = p.owner_id "
                  f"WHERE j.booking_month = ? AND p.account_kind = {int(AccountKind.worker)} "
                  f"AND j.entry_type IN ({int(EntryType.event)}, {int(EntryType.refund)}) "
                  "GROUP BY w.province, j.platform_id, j.kind, p.owner_id", (month,))
        subsidies = _subsidy_rows(conn, month)
        conn.rollback()
    groups: dict[tuple[str, str, str, str], list] = {}  # key -> [workers set, worker, platform, subsidy]
    for province, platform_id, kind, worker_id, worker_vnd, platform_vnd in contributions:
        key = (province, names[platform_id], KINDS[kind], tiers.get(worker_id, BASE_TIER))
        slot = groups.setdefault(key, [set(), 0, 0, 0])
        if worker_vnd or platform_vnd:
            slot[0].add(worker_id)
        slot[1] += int(worker_vnd)
        slot[2] += int(platform_vnd)
    for worker_id, province, _scheme, amount in subsidies:
        slot = groups.setdefault((province, SUBSIDY_PLATFORM, SUBSIDY_KIND, tiers.get(worker_id, BASE_TIER)),
                                 [set(), 0, 0, 0])
        slot[0].add(worker_id)
        slot[3] += amount
    if min_cell_workers is not None:
        groups = suppress_small_cells(groups, min_cell_workers)
    return [dict(zip(AGGREGATE_COLUMNS, (month_text(month), *key, len(workers), worker_vnd, platform_vnd, subsidy_vnd,
                                          worker_vnd + platform_vnd + subsidy_vnd)))
            for key, (workers, worker_vnd, platform_vnd, subsidy_vnd) in sorted(groups.items())]


def suppress_small_cells(groups: dict[tuple[str, str, str, str], list], k: int
                         ) -> dict[tuple[str, str, str, str], list]:
    """Cells as the policy role sees them: every line covers at least `k` workers (docs/payments.md).

    A cell is `[set of worker ids, worker_vnd, platform_vnd, subsidy_vnd]`.

    1. Primary: in each province, every cell with fewer than k workers is folded into the
       province's "other" line (platform, kind and tier `*`).
    2. Secondary: if that "other" line holds fewer than k workers, the province's next-smallest
       cells are folded into it until it reaches k — so a small cell can never be recovered
       as a province total minus the cells still shown. A province whose lines together have
       fewer than k workers goes whole into the national "other" line (province `*` too),
       which takes the smallest remaining cells anywhere until it reaches k.
    3. A month with fewer than k workers in all shows nothing.

    Nothing is dropped: the lines still add up to the full report's control total (the
    settlement's platform dues plus subsidy), so a reader can check the books, and every
    figure shown sums at least k workers.
    """
    if k <= 1:
        return groups
    shown: dict[tuple[str, str, str, str], list] = {}
    national = _empty_cell()
    for province in sorted({key[0] for key in groups}):
        cells = {key: cell for key, cell in groups.items() if key[0] == province}
        other = _empty_cell()
        for key in [key for key, cell in cells.items() if len(cell[0]) < k]:
            _fold(other, cells.pop(key))
        _fill_to_k(other, cells, k)
        shown.update(cells)
        if len(other[0]) >= k:
            shown[(province, OTHER, OTHER, OTHER)] = other
        else:
            _fold(national, other)
    if _holds_anything(national):
        _fill_to_k(national, shown, k)
        if len(national[0]) < k:
            return {}
        shown[(OTHER, OTHER, OTHER, OTHER)] = national
    return shown


def _empty_cell() -> list:
    return [set(), 0, 0, 0]


def _holds_anything(cell: list) -> bool:
    return bool(cell[0]) or any(cell[1:])


def _fold(into: list, cell: list) -> None:
    into[0] |= cell[0]
    for index in (1, 2, 3):
        into[index] += cell[index]


def _fill_to_k(other: list, cells: dict, k: int) -> None:
    """Fold the smallest of `cells` into `other` until it covers k workers (if it holds anything)."""
    while _holds_anything(other) and len(other[0]) < k and cells:
        _fold(other, cells.pop(min(cells, key=lambda key: (len(cells[key][0]), key))))


def contribution_lines(ledger: Ledger, month_label: str) -> Iterator[dict[str, Any]]:
    """Every worker's contributions of the month per scheme (all platforms together), by national id,
    with the months credited towards a pension on the `si` line (provisional while the month is open)."""
    month = parse_month(month_label)
    si = SCHEMES.index("si") + 1
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT worker_id, scheme, sum(worker_vnd), sum(platform_vnd), sum(subsidy_vnd) "
                           "FROM worker_month WHERE month = ? GROUP BY worker_id, scheme", (month,))
        rows = [row for row in rows if row[2] or row[3] or row[4]]
        credited = {row[0] for row in query(conn, "SELECT DISTINCT worker_id FROM credited_month WHERE close_month = ?",
                                            (month,))}
        rows += [(worker_id, si, 0, 0, 0) for worker_id in credited - {row[0] for row in rows if row[1] == si}]
        workers = sorted({row[0] for row in rows})
        figures = credit_figures(conn, ledger.pack, month, query(conn, "SELECT max(month) FROM month_close")[0][0],
                                 workers)
        encrypted = dict(fetch_in(conn, "SELECT id, national_id_encrypted FROM worker WHERE id IN ({marks})", workers))
        conn.rollback()
    national = {worker_id: ledger.keys.decrypt(bytes(blob)) for worker_id, blob in encrypted.items()}
    for worker_id, scheme, worker_vnd, platform_vnd, subsidy_vnd in sorted(
            rows, key=lambda row: (national[row[0]], row[1])):
        figure = figures[worker_id]
        yield dict(zip(CONTRIBUTION_COLUMNS, (
            CONTRIBUTIONS_LAYOUT, national[worker_id], month_text(month), SCHEME_NAME[scheme], int(worker_vnd),
            int(platform_vnd), int(subsidy_vnd), int(worker_vnd + platform_vnd + subsidy_vnd),
            " ".join(month_text(m) for m in figure.credited_now) if scheme == si else "",
            figure.credited_months_to_date if scheme == si else "")))


def credits_by_province(ledger: Ledger, month_label: str, min_cell_workers: int | None = None
                        ) -> list[dict[str, Any]]:
    """Per province: the workers whose months the close of `month` credited towards a pension and how many
    months, and the workers with any credited month to date and their months (RULES.md §11; closed
    months only: an open month has credited nothing yet). With `min_cell_workers` (k), provinces with
    fewer than k workers with credits are folded into the line `*` (dropped if it has fewer than k)."""
    month = parse_month(month_label)
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT w.province, count(DISTINCT CASE WHEN c.close_month = ? THEN c.worker_id END), "
                           "sum(CASE WHEN c.close_month = ? THEN 1 ELSE 0 END), count(DISTINCT c.worker_id), count(*) "
                           "FROM credited_month c JOIN worker w ON w.id = c.worker_id WHERE c.close_month <= ? "
                           "GROUP BY w.province ORDER BY w.province", (month, month, month))
        conn.rollback()
    cells = {province: [int(v) for v in values] for province, *values in rows}
    if min_cell_workers is not None and min_cell_workers > 1:
        other = [0, 0, 0, 0]
        for province in [p for p, cell in cells.items() if cell[2] < min_cell_workers]:
            other = [a + b for a, b in zip(other, cells.pop(province))]
        if other[2] >= min_cell_workers:
            cells[OTHER] = other
    return [dict(zip(CREDIT_COLUMNS, (month_text(month), province, *cell))) for province, cell in sorted(cells.items())]


def write_contributions(ledger: Ledger, month_label: str, path: str | Path) -> dict[str, Any]:
    """Write the per-worker file (CSV, layout `ansinh-contributions/2`) and `<path>.sha256` beside it.

    The file holds raw national ids: it is meant for the national insurer only, is written
    with owner-only permissions, and never overwrites an existing file.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; a report never overwrites a file")
    digest = hashlib.sha256()
    totals = {"lines": 0, "worker_vnd": 0, "platform_vnd": 0, "subsidy_vnd": 0, "total_vnd": 0}
    with private_open(path, "w", exclusive=True, newline="", encoding="utf-8") as out:  # 0600 from the start
        header = ",".join(CONTRIBUTION_COLUMNS) + "\n"  # every value is digits, a month or a scheme: no quoting
        out.write(header)
        digest.update(header.encode())
        for line in contribution_lines(ledger, month_label):
            text = ",".join(str(line[column]) for column in CONTRIBUTION_COLUMNS) + "\n"
            out.write(text)
            digest.update(text.encode())
            totals["lines"] += 1
            for column in ("worker_vnd", "platform_vnd", "subsidy_vnd", "total_vnd"):
                totals[column] += line[column]
    sha = digest.hexdigest()
    Path(f"{path}.sha256").write_text(f"{sha}  {path.name}\n", encoding="utf-8")
    return {"path": str(path), "layout": CONTRIBUTIONS_LAYOUT, "sha256": sha, **totals}

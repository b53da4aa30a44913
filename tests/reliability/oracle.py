"""The reference model as an oracle for whole books: what a trial's books must say, to the dong.

`model_of(items)` feeds parsed `(line, item)` pairs to `tests/reference_model.py` once, in
order; `differences(ledger, model)` compares every month's settlement, every worker's
statement (month and to date) and the number of booked events and refunds, and
returns readable differences (empty when the books equal the model). Workers are
named by a short digest in messages, never by their number.
"""
from __future__ import annotations

import secrets
import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from ledger.events import month_text
from ledger.ingest import MALFORMED
from ledger.readers import read_ndjson
from ledger.reports import settlement, statements
from ledger.store import query
from ledger.verify import verify
from simulations.synthetic_events import generate_events, household_tiers, workers_for_seed, write_ndjson, \
    write_tiers_csv
from tests.reference_model import SCHEMES, ReferenceModel, month_after

ROOT = Path(__file__).resolve().parents[2]
ANSINH = [sys.executable, "-m", "api.cli"]
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)


def cli_env(url: str) -> dict[str, str]:
    """The environment of an `ansinh` subprocess on the books at `url` (no terminal, no colours)."""
    return {**os.environ, "ANSINH_SECRET": SECRET, "ANSINH_DATABASE_URL": url, "ANSINH_PACK": "vn-pilot",
            "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT)}


def run_cli(url: str, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*ANSINH, *map(str, args)], env=cli_env(url), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def ok_cli(url: str, *args: str, timeout: float = 300) -> str:
    done = run_cli(url, *args, timeout=timeout)
    assert done.returncode == 0, f"ansinh {shlex.join(map(str, args))} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def redacted(national_id: str) -> str:
    """How a test names a worker in a message: a digest, not the number."""
    return "worker#" + hashlib.sha256(national_id.encode()).hexdigest()[:8]


def write_workload(folder: Path, *, seed: int, month: str = "2026-03", workers: int = 300,
                   events: int = 6_000) -> tuple[Path, Path, list[tuple[int, object]]]:
    """A generated month (refunds, duplicates, bad events of every code) and its household tiers.

    Returns the NDJSON file, the tiers CSV and the items exactly as the CLI reads them.
    """
    events_file = folder / f"events-{seed}.ndjson"
    write_ndjson(events_file, generate_events(seed=seed, month=month, workers=workers, events=events,
                                              refund_rate=0.05, duplicate_rate=0.03, bad_rate=0.02))
    tiers_file = folder / f"tiers-{seed}.csv"
    write_tiers_csv(tiers_file, household_tiers(workers_for_seed(seed, workers), np.random.default_rng(seed + 1),
                                                valid_from=month))
    with events_file.open("rb") as stream:
        items = list(read_ndjson(stream))
    return events_file, tiers_file, items


def tier_rows(tiers_file: Path) -> list[tuple[str, str, str]]:
    lines = tiers_file.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.split(",")) for line in lines if line]  # type: ignore[misc]


def model_of(items: list[tuple[int, object]], *, tiers: list[tuple[str, str, str]] = (),
             close: str | None = None) -> tuple[ReferenceModel, list[str]]:
    """The model after `items` once in order (then tiers and a close); returns it and its outcomes."""
    model = ReferenceModel()
    outcomes = [model.ingest("<malformed>" if item is MALFORMED else item) for _line, item in items]
    if tiers:
        model.import_tiers(list(tiers))
    if close:
        model.close(close)
    return model, outcomes


def expected_statements(model: ReferenceModel, month: str) -> dict[str, dict]:
    """`statements(month)` as the model has it: closed flag, the month's lines and totals to date."""
    to_date: dict[str, dict[str, int]] = {}
    lines: dict[str, dict[str, dict[str, int]]] = {}
    for (worker, line_month, scheme), line in model.worker_lines.items():
        if line_month > month:
            continue
        total = line["worker"] + line["platform"] + line["subsidy"]
        to_date.setdefault(worker, {s: 0 for s in SCHEMES})[scheme] += total
        if line_month == month:
            lines.setdefault(worker, {s: {"worker": 0, "platform": 0, "subsidy": 0, "total": 0} for s in SCHEMES})
            lines[worker][scheme] = {**line, "total": total}
    closed = model.is_closed(month)
    return {worker: {"closed": closed, "schemes": schemes, "to_date": to_date[worker]}
            for worker, schemes in lines.items()}


def booked_months(ledger) -> list[str]:
    with ledger.engine.connect() as conn:
        months = [month_text(row[0]) for row in query(conn, "SELECT DISTINCT booking_month FROM journal")]
        conn.rollback()
    return months


def differences(ledger, model: ReferenceModel, limit: int = 10) -> list[str]:
    """Every way the books differ from the model (settlements, statements, event count), up to `limit`."""
    found: list[str] = []
    months = sorted(set(model.months_of_interest()) | set(booked_months(ledger)))
    for month in months:
        books = settlement(ledger, month)
        want = model.settlement(month)
        got = {name: books[name] for name in want}
        if got != want:
            found.append(f"settlement {month}: books {got}, model {want}")
        bulk = {line["national_id"]: {name: line[name] for name in ("closed", "schemes", "to_date")}
                for line in statements(ledger, month)}
        expected = expected_statements(model, month)
        for worker in sorted(bulk.keys() | expected.keys()):
            if bulk.get(worker) != expected.get(worker):
                found.append(f"statement {redacted(worker)} {month}: books {bulk.get(worker)}, "
                             f"model {expected.get(worker)}")
                if len(found) >= limit:
                    return found
    with ledger.engine.connect() as conn:
        booked = query(conn, "SELECT count(*) FROM journal WHERE entry_type IN (1, 2)")[0][0]
        conn.rollback()
    if booked != len(model.accepted):
        found.append(f"the books hold {booked} events and refunds, the model accepted {len(model.accepted)}")
    return found[:limit]


def verify_problems(ledger) -> list[tuple[str, str]]:
    return [(check.name, check.problem) for check in verify(ledger, stop_at_first=False) if check.problem]


def table_counts(ledger) -> tuple[int, ...]:
    """Rows of every append-only table and the chain head (what 'nothing half-written' compares)."""
    with ledger.engine.connect() as conn:
        row = query(conn, "SELECT (SELECT count(*) FROM journal), (SELECT count(*) FROM posting), "
                          "(SELECT count(*) FROM block), (SELECT count(*) FROM month_close), "
                          "(SELECT count(*) FROM worker), (SELECT count(*) FROM platform), "
                          "(SELECT block_count FROM ledger_state WHERE id = 1)")[0]
        conn.rollback()
    return tuple(int(value) for value in row)


__all__ = ["ANSINH", "ROOT", "SECRET", "booked_months", "cli_env", "differences", "expected_statements",
           "model_of", "month_after", "ok_cli", "redacted", "run_cli", "table_counts", "tier_rows",
           "verify_problems", "write_workload"]

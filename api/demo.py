"""`ansinh demo`: the whole monthly cycle on a fresh embedded ledger, in one command."""
from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_tables import ID, NUMBER, cli_table
from api.i18n import format_statement
from ledger.books import Ledger
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_stream
from ledger.money import bills_of_month
from ledger.readers import read_events
from ledger.reports import settlement, statements
from ledger.verify import verify

DEMO_MONTH = "2026-01"
SCENARIO = Path(__file__).resolve().parents[1] / "simulations" / "scenarios" / "poor-tier-50pct.yaml"


def run_demo(*, workers: int, events: int, seed: int, keep: Path | None, console: Console) -> int:
    from simulations.synthetic_events import generate_events, household_tiers, workers_for_seed, write_ndjson, \
        write_tiers_csv

    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ansinh-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "ansinh.db"
    for stale in folder.glob("ansinh.db*"):
        stale.unlink()
    console.print(f"[bold]ansinh demo[/bold] — a fresh embedded ledger in {folder}")

    events_file = folder / "events.ndjson"
    count = write_ndjson(events_file, generate_events(seed=seed, month=DEMO_MONTH, workers=workers, events=events))
    tiers_file = folder / "tiers.csv"
    write_tiers_csv(tiers_file, household_tiers(workers_for_seed(seed, workers),
                                                np.random.default_rng(seed + 1), valid_from=DEMO_MONTH))
    console.print(f"generated {count:,} platform events for {workers:,} workers in {DEMO_MONTH} (seed {seed})")

    ledger = Ledger.open(f"sqlite:///{database}")
    try:
        started = time.perf_counter()
        tally: dict[str, int] = {}
        with Progress(TextColumn("[bold]ingest"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("ingest", total=count, rate="")
            for chunk in ingest_stream(ledger, read_events(str(events_file)), chunk_size=5_000):
                for outcome in chunk:
                    tally[outcome.outcome] = tally.get(outcome.outcome, 0) + 1
                done = sum(tally.values())
                progress.update(task, completed=done,
                                rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f} events/s")
        table = Table(title="Ingest outcomes")
        table.add_column("outcome")
        table.add_column("count", justify="right")
        for name, value in sorted(tally.items(), key=lambda item: -item[1]):
            table.add_row(name, f"{value:,}")
        console.print(table)

        imported = import_tiers(ledger, tiers_file)
        console.print(f"imported {imported:,} household statuses (poor, near-poor; everyone else is 'other')")
        result = close_month(ledger, DEMO_MONTH)
        console.print(f"closed {DEMO_MONTH}: state subsidy for {result.workers_subsidised:,} workers, "
                      + ", ".join(f"{scheme} {amount:,} ₫" for scheme, amount in result.subsidy_vnd.items()))

        report = settlement(ledger, DEMO_MONTH)
        rows = [(name, *(f"{by_scheme[s]:,}" for s in ("si", "oa", "ui")), f"{sum(by_scheme.values()):,}")
                for name, by_scheme in report["platforms"].items()]
        rows.append(("state budget", *(f"{report['subsidy'][s]:,}" for s in ("si", "oa", "ui")),
                     f"{sum(report['subsidy'].values()):,}"))
        bill = cli_table(f"Settlement {DEMO_MONTH} ({report['status']}) — VND",
                         [("payer", ID), ("si", NUMBER), ("oa", NUMBER), ("ui", NUMBER), ("total", NUMBER)], rows)
        bill.caption = f"control total {report['control_total_vnd']:,} ₫"
        console.print(bill)
        bills = bills_of_month(ledger, DEMO_MONTH)
        if bills:
            console.print(f"billed at close: {result.bills} platforms, {result.bills_vnd:,} ₫ due "
                          f"{bills[0]['due_on']} (references {bills[0]['reference']}…); state claim "
                          f"{sum(b['amount_vnd'] for b in bills if b['payer'] == 'state'):,} ₫ "
                          "— `ansinh payments import` books what arrives (docs/payments.md)")

        best = max(statements(ledger, DEMO_MONTH), key=lambda s: s["schemes"]["si"]["subsidy"])
        console.print()
        console.print(format_statement(best, "vi"))
        console.print()

        checks = verify(ledger)
        for check in checks:
            console.print(("[green]ok[/green]   " if check.problem is None else "[red]FAIL[/red] ") + check.name
                          + (f": {check.problem}" if check.problem else ""))
        console.print(checks[-1].detail)
        failed = any(check.problem for check in checks)
    finally:
        ledger.close()
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    for line in try_next(database if keep else None, best["national_id"]):
        console.print(escape(line))
    return 1 if failed else 0


def try_next(database: Path | None, national_id: str) -> list[str]:
    """The block that ends the demo: commands to run next, on the kept ledger when there is one.

    The paths are absolute and shell-quoted, so each line can be pasted as printed. The worker
    is the demo's generated one (made-up ids, like every id of the demo month)."""
    if database is None:
        return ["", "try next:",
                "  ansinh demo --keep ansinh-demo    # keep the ledger, then explore it with the commands printed here",
                "  ansinh serve --demo               # the pages for every role, on ./ansinh.db"]
    books = "--db " + shlex.quote(f"sqlite:///{database.resolve()}")
    return ["", f"try next, on the kept ledger {database.resolve()}:",
            f"  ansinh statement {national_id} {DEMO_MONTH} {books}              # the worker above",
            f"  ansinh statement {national_id} {DEMO_MONTH} --events {books}     # their trips, one by one",
            f"  ansinh settlement {DEMO_MONTH} {books}",
            f"  ansinh bills {DEMO_MONTH} {books}",
            f"  ansinh verify {books}",
            f"  ANSINH_DATABASE_URL={shlex.quote(f'sqlite:///{database.resolve()}')} ansinh serve --demo"
            "    # pages for every role",
            f"  ansinh simulate {shlex.quote(str(SCENARIO))} --from-db {shlex.quote(f'sqlite:///{database.resolve()}')}"
            "    # a policy what-if on these books"]

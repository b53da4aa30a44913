"""The `ansinh` command line: a thin shell over the ledger (same functions as HTTP).

Each command opens the books (`--db` / ANSINH_DATABASE_URL, `--pack` / ANSINH_PACK),
calls one ledger function and prints its result. Exit codes follow INTERFACES.md:
rejected events are outcomes, not failures; a run that cannot do its job exits 1.
"""
from __future__ import annotations

import csv
import io
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.i18n import format_statement
from ledger.books import Ledger
from ledger.close import CloseError, TierImportError, close_month, import_tiers
from ledger.events import Rejection
from ledger.ingest import ingest_stream
from ledger.readers import read_events
from ledger.reports import settlement, settlement_lines, statement, statements
from ledger.store import StoreError
from ledger.verify import verify
from rules import NoVersionInForce, PackError

app = typer.Typer(help="ansinh: pay-as-you-work social insurance ledger for platform workers.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
tiers_app = typer.Typer(help="Household status registry (poor, near-poor, …).", no_args_is_help=True)
app.add_typer(tiers_app, name="tiers")
console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL; default ANSINH_DATABASE_URL or ./ansinh.db")]
PackOption = Annotated[Optional[str], typer.Option("--pack", help="rules pack name or YAML path; default ANSINH_PACK or vn-pilot")]
OUTCOME_ORDER = ["accepted", "duplicate", *[code.name for code in Rejection]]


def _open(db: str | None, pack: str | None) -> Ledger:
    try:
        return Ledger.open(db, pack)
    except (StoreError, PackError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


@app.command()
def ingest(
    file: Annotated[str, typer.Argument(help="NDJSON file (- for stdin), .csv or .parquet with the event fields")],
    outcomes: Annotated[Optional[Path], typer.Option("--outcomes", help="write one JSON line per input item")] = None,
    chunk_size: Annotated[int, typer.Option(help="events per database transaction")] = 20_000,
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Book platform events; every item gets an outcome (accepted, duplicate or a rejection code)."""
    if file != "-" and not Path(file).exists():
        console.print(f"[red]error:[/red] no such file: {file}")
        raise typer.Exit(1)
    ledger = _open(db, pack)
    counts = Counter()
    started = time.perf_counter()
    sink = outcomes.open("wb") if outcomes else None
    show_progress = console.is_terminal
    try:
        with Progress(TextColumn("[bold]ingest"), BarColumn(), TextColumn("{task.completed:,} events"),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                      disable=not show_progress) as progress:
            task = progress.add_task("ingest", total=None, rate="")
            for chunk in ingest_stream(ledger, read_events(file), chunk_size=chunk_size):
                counts.update(outcome.outcome for outcome in chunk)
                if sink:
                    sink.write(b"".join(orjson.dumps(o.as_json()) + b"\n" for o in chunk))
                done = sum(counts.values())
                rate = done / max(time.perf_counter() - started, 1e-9)
                progress.update(task, completed=done, rate=f"{rate:,.0f} events/s")
    finally:
        if sink:
            sink.close()
        ledger.close()
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    table = Table(title=f"{total:,} items in {elapsed:.2f} s ({total / max(elapsed, 1e-9):,.0f}/s)")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for name in OUTCOME_ORDER:
        if counts.get(name):
            table.add_row(name, f"{counts[name]:,}")
    out.print(table)


@tiers_app.command("import")
def tiers_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns national_id,tier,valid_from (YYYY-MM)")],
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Import household statuses, all or nothing; bad rows are listed with their line numbers."""
    if not file.exists():
        console.print(f"[red]error:[/red] no such file: {file}")
        raise typer.Exit(1)
    ledger = _open(db, pack)
    try:
        count = import_tiers(ledger, file)
    except TierImportError as error:
        for line in error.errors:
            console.print(f"[red]error:[/red] {file.name}: {line}")
        console.print("nothing was imported")
        raise typer.Exit(1)
    finally:
        ledger.close()
    out.print(f"imported {count} household statuses from {file.name}")


@app.command("close")
def close_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM, the month after the last closed one")],
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Close a month: post the state subsidy and freeze the month."""
    ledger = _open(db, pack)
    try:
        result = close_month(ledger, month)
    except (CloseError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    finally:
        ledger.close()
    out.print(f"closed {result.month} under {result.rules_version}: {result.workers_subsidised} workers subsidised, "
              + ", ".join(f"{scheme} {amount:,}" for scheme, amount in result.subsidy_vnd.items())
              + f" VND; anchor {result.anchor_hash}")


@app.command("statement")
def statement_command(
    national_id: Annotated[str, typer.Argument(help="the worker's 12-digit citizen identity number")],
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    as_json: Annotated[bool, typer.Option("--json", help="the JSON of INTERFACES.md")] = False,
    lang: Annotated[str, typer.Option("--lang", help="vi (default) or en")] = "vi",
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """One worker's statement for a month, with totals to date."""
    ledger = _open(db, pack)
    try:
        report = statement(ledger, national_id, month)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    finally:
        ledger.close()
    if as_json:
        _print_json(report)
    else:
        out.print(format_statement(report, lang))


@app.command("statements")
def statements_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """NDJSON: one statement per worker with anything booked in the month."""
    ledger = _open(db, pack)
    try:
        for report in statements(ledger, month):
            sys.stdout.write(orjson.dumps(report).decode() + "\n")
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    finally:
        ledger.close()


@app.command("settlement")
def settlement_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    file_format: Annotated[Optional[str], typer.Option("--format", help="csv, json or parquet (with --output)")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="file to write")] = None,
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Platform dues per scheme and the state subsidy due (provisional while the month is open)."""
    ledger = _open(db, pack)
    try:
        report = settlement(ledger, month)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    finally:
        ledger.close()
    if output is not None or file_format is not None:
        chosen = file_format or (output.suffix.lstrip(".") if output else "json")
        _write_settlement(report, chosen, output)
    elif as_json:
        _print_json(report)
    else:
        out.print(_settlement_table(report))


def _write_settlement(report: dict, file_format: str, output: Path | None) -> None:
    lines = settlement_lines(report)
    if file_format == "json":
        data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    elif file_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(lines[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        data = buffer.getvalue().encode()
    elif file_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if output is None:
            console.print("[red]error:[/red] --format parquet needs --output FILE")
            raise typer.Exit(1)
        table = pa.Table.from_pylist(lines).replace_schema_metadata({
            "control_total_vnd": str(report["control_total_vnd"]), "postings_sha256": report["postings_sha256"],
            "status": report["status"]})
        pq.write_table(table, output)
        out.print(f"wrote {output} ({len(lines)} lines, control total {report['control_total_vnd']:,} VND)")
        return
    else:
        console.print(f"[red]error:[/red] unknown format {file_format!r}: use csv, json or parquet")
        raise typer.Exit(1)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        out.print(f"wrote {output} ({len(lines)} lines, control total {report['control_total_vnd']:,} VND)")


def _settlement_table(report: dict) -> Table:
    table = Table(title=f"Settlement {report['month']} ({report['status']})")
    for column in ("payer", "si", "oa", "ui", "total"):
        table.add_column(column, justify="left" if column == "payer" else "right")
    for name, by_scheme in report["platforms"].items():
        table.add_row(name, *(f"{by_scheme[s]:,}" for s in ("si", "oa", "ui")), f"{sum(by_scheme.values()):,}")
    subsidy = report["subsidy"]
    table.add_row("state budget (subsidy)", *(f"{subsidy[s]:,}" for s in ("si", "oa", "ui")),
                  f"{sum(subsidy.values()):,}")
    table.caption = f"control total {report['control_total_vnd']:,} VND; postings sha256 {report['postings_sha256'][:16]}…"
    return table


@app.command("verify")
def verify_command(db: DbOption = None, pack: PackOption = None) -> None:
    """Re-derive every balance from the postings and check every invariant and the hash chain."""
    ledger = _open(db, pack)
    try:
        checks = verify(ledger)
    finally:
        ledger.close()
    for check in checks:
        mark = "[green]ok[/green]  " if check.problem is None else "[red]FAIL[/red]"
        out.print(f"{mark} {check.name}" + (f": {check.problem}" if check.problem else ""))
    if checks:
        out.print(checks[-1].detail)
    if any(check.problem for check in checks):
        raise typer.Exit(1)


@app.command()
def demo(
    workers: Annotated[int, typer.Option(help="workers in the generated month")] = 2000,
    events: Annotated[int, typer.Option(help="platform events in the generated month")] = 60_000,
    seed: Annotated[int, typer.Option(help="seed of the generated month")] = 2026,
    keep: Annotated[Optional[Path], typer.Option(help="keep the ledger in this folder instead of a temp dir")] = None,
) -> None:
    """The main job on the embedded default: generate a month, ingest, tiers, close, settle, verify."""
    from api.demo import run_demo

    raise typer.Exit(run_demo(workers=workers, events=events, seed=seed, keep=keep, console=out))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

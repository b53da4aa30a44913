"""`ansinh payments|bills|account|claim|report`: the money side of settlement (registered in api/cli.py).

Thin like every command: each opens the books, calls one function of `ledger.money` or
`ledger.authority` and prints a table, JSON, or writes a file. Failures are one
`error:` line and exit 1; a bad bank statement names every bad line and books nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from api.cli_tables import ID, NUMBER, TEXT, cli_table


if TYPE_CHECKING:  # the ledger is imported where used: `ansinh --help` never loads SQLAlchemy
    from ledger.books import Ledger

payments_app = typer.Typer(help="Money received: book a bank statement (CSV).", no_args_is_help=True)
report_app = typer.Typer(help="Monthly reports to the authorities.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL; default ANSINH_DATABASE_URL or ./ansinh.db")]
FormatOption = Annotated[Optional[str], typer.Option("--format", help="json, csv or parquet")]
OutputOption = Annotated[Optional[Path], typer.Option("--output", help="file to write (default: print)")]


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(1)


def _books(db: str | None) -> Ledger:
    from api.cli_books import open_books as _open

    return _open(db, None)


def _read(db: str | None, function, *args):
    """Open the books, call `function(ledger, *args)`, close them; a refused request is one error line."""
    ledger = _books(db)
    try:
        return function(ledger, *args)
    except (ValueError, LookupError, FileExistsError) as error:
        _fail(str(error.args[0]) if isinstance(error, LookupError) else str(error))
    finally:
        ledger.close()


def _emit(lines: list[dict], file_format: str | None, output: Path | None, metadata: dict[str, str],
          table: Table, as_json: object) -> None:
    """A table on the terminal, or the lines as json/csv/parquet to stdout or a file."""
    if file_format is None and output is None:
        out.print(table)
        return
    chosen = file_format or (output.suffix.lstrip(".") if output else "json")
    from api.exports import lines_bytes
    from ledger.files import write_private

    if chosen == "parquet" and output is None:
        _fail("--format parquet needs --output FILE")
    try:
        data = orjson.dumps(as_json, option=orjson.OPT_INDENT_2) if chosen == "json" else \
            lines_bytes(lines, chosen, metadata)
    except ValueError as error:
        _fail(str(error))
    if output is None:
        typer.echo(data.decode(), nl=False)
        return
    if output.exists():
        _fail(f"{output} already exists; a report never overwrites a file")
    try:
        write_private(output, data, exclusive=True)  # owner-only (0600): reports hold personal data
    except FileExistsError:
        _fail(f"{output} already exists; a report never overwrites a file")
    out.print(f"wrote {output} ({len(lines)} lines)")


@payments_app.command("import")
def payments_import(
    file: Annotated[Path, typer.Argument(help="CSV with header date,amount_vnd,payer,reference,bank_ref")],
    as_json: Annotated[bool, typer.Option("--json", help="print each payment's outcome as JSON")] = False,
    db: DbOption = None,
) -> None:
    """Book a bank statement: each line once (by bank_ref), matched by reference, else oldest bill first;
    payer `worker` books a worker's top-up (its reference: the worker's `topup_reference`)."""
    from ledger.money import PaymentError, read_payments_csv, record_payments

    if not file.is_file():
        _fail(f"no such file: {file}")
    try:
        numbered = read_payments_csv(file)
    except PaymentError as error:
        _fail(f"{file}: nothing booked\n" + "\n".join(error.errors))
    ledger = _books(db)
    try:
        outcomes = record_payments(ledger, [payment for _line, payment in numbered],
                                   lines=[line for line, _payment in numbered])
    except PaymentError as error:
        _fail(f"{file}: nothing booked\n" + "\n".join(error.errors))
    finally:
        ledger.close()
    if as_json:
        typer.echo(orjson.dumps([outcome.as_dict() for outcome in outcomes], option=orjson.OPT_INDENT_2).decode())
        return
    rows = []
    for outcome in outcomes:
        # `AS…/interest-2026-02` (the JSON's key) reads as words, so the reference stays one whole word.
        settled = ", ".join(f"{reference.replace('/interest-', ' interest ')} {amount:,}"
                            for reference, amount in outcome.settled.items())
        if outcome.status == "duplicate":
            settled = "duplicate: booked before"
        elif outcome.payer == "worker":
            settled = f"top-up {outcome.matched_reference}: si of {outcome.booked_month}"
        elif outcome.matched_reference is None:
            settled = f"(no reference matched) {settled}".strip()
        rows.append((outcome.bank_ref, outcome.payer, f"{outcome.amount_vnd:,}", settled, f"{outcome.credit_vnd:,}"))
    # Short headers (VND in the title), the status within `settled`: a bank reference alone can take
    # 31 of the 80 columns, and the table is laid out as records when its columns cannot fit.
    out.print(cli_table(f"Payments in {file.name} (VND)", [("bank_ref", ID), ("payer", ID), ("amount", NUMBER),
                                                           ("settled", TEXT), ("credit", NUMBER)], rows))
    booked = [outcome for outcome in outcomes if outcome.status == "booked"]
    out.print(f"{len(booked)} booked ({sum(o.amount_vnd for o in booked):,} VND), "
              f"{len(outcomes) - len(booked)} already booked before")


def bills_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM (a closed month)")],
    file_format: FormatOption = None,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """The bills and the state claim issued at a month's close, with what is still unpaid."""
    from ledger.money import bills_of_month

    lines = _read(db, bills_of_month, month)
    table = cli_table(f"Bills of {month}", [("payer", ID), ("kind", TEXT), ("reference", ID), ("due_on", ID),
                                             ("amount_vnd", NUMBER), ("outstanding_vnd", NUMBER)],
                      [(line["payer"], line["kind"], line["reference"], line["due_on"], f"{line['amount_vnd']:,}",
                        f"{line['outstanding_vnd']:,}") for line in lines],
                      caption=None if lines else "no bills: the month is not closed, or nothing was booked in it")
    _emit(lines, file_format, output, {"month": month}, table, lines)


def account_command(
    payer: Annotated[str, typer.Argument(help="platform id, or 'state' for the state budget")],
    file_format: FormatOption = None,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """A payer's statement of account: bills, interest, payments, running balance, open items."""
    from ledger.money import account_statement

    report = _read(db, account_statement, payer)
    table = cli_table(f"Statement of account: {report['payer']} (as of {report['as_of']})",
                      [("date", ID), ("kind", TEXT), ("month", ID), ("reference", ID), ("debit_vnd", NUMBER),
                       ("credit_vnd", NUMBER), ("balance_vnd", NUMBER)],
                      [(line["date"], line["kind"], line["month"] or "", line["bank_ref"] or line["reference"] or "",
                        f"{line['debit_vnd']:,}", f"{line['credit_vnd']:,}", f"{line['balance_vnd']:,}")
                       for line in report["lines"]])
    table.caption = (f"balance {report['balance_vnd']:,} VND · in arrears {report['arrears_vnd']:,} · "
                     f"credit {report['credit_vnd']:,} · not yet billed {report['unbilled_vnd']:,}")
    _emit(report["lines"], file_format, output, {"payer": report["payer"], "balance_vnd": str(report["balance_vnd"])},
          table, report)


def claim_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    file_format: FormatOption = None,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """The claim to the state budget for a month: subsidy by scheme, tier and province, control total."""
    from ledger.authority import state_claim

    claim = _read(db, state_claim, month)
    lines = [{"month": claim["month"], "group": group, "key": key, **amounts}
             for group in ("by_tier", "by_province") for key, amounts in claim[group].items()]
    table = cli_table(f"State subsidy claim {claim['month']} ({claim['status']}), reference {claim['reference']}",
                      [("group", TEXT), ("key", ID), ("si", NUMBER), ("oa", NUMBER), ("ui", NUMBER)],
                      [(line["group"], line["key"], *(f"{line[s]:,}" for s in ("si", "oa", "ui"))) for line in lines])
    table.caption = (f"control total {claim['control_total_vnd']:,} VND, {claim['workers']:,} workers · "
                     f"paid {claim['paid_vnd']:,} · outstanding {claim['outstanding_vnd']:,}")
    _emit(lines, file_format, output, {"control_total_vnd": str(claim["control_total_vnd"]),
                                       "reference": claim["reference"]}, table, claim)


@report_app.command("authority")
def report_authority(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    file_format: FormatOption = None,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """Per province, platform, kind and tier: workers covered, contributions, subsidy (CSV/Parquet)."""
    from ledger.authority import authority_aggregates

    lines = _read(db, authority_aggregates, month)
    table = cli_table(f"Report to the authorities, {month}",
                      [("province", ID), ("platform", ID), ("kind", TEXT), ("tier", TEXT), ("workers", NUMBER),
                       ("total_vnd", NUMBER)],
                      [(line["province"], line["platform"], line["kind"], line["tier"], f"{line['workers']:,}",
                        f"{line['total_vnd']:,}") for line in lines])
    total = sum(line["total_vnd"] for line in lines)
    table.caption = f"control total {total:,} VND (= the settlement's platform dues + subsidy)"
    _emit(lines, file_format, output, {"control_total_vnd": str(total)}, table, lines)


@report_app.command("credits")
def report_credits(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    file_format: FormatOption = None,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """Months credited towards a pension by province: by this month's close, and to date (RULES.md §11)."""
    from ledger.authority import credits_by_province

    lines = _read(db, credits_by_province, month)
    counted = ("workers_credited", "months_credited", "workers_with_credits", "credited_months_to_date")
    table = cli_table(f"Months credited towards a pension, {month}", [("province", ID)] + [(c, NUMBER) for c in counted],
                      [(line["province"], *(f"{line[c]:,}" for c in counted)) for line in lines])
    months = sum(line["months_credited"] for line in lines)
    table.caption = f"{months:,} months credited by the close of {month}"
    _emit(lines, file_format, output, {"months_credited": str(months)}, table, lines)


@report_app.command("contributions")
def report_contributions(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    output: Annotated[Path, typer.Option("--output", help="CSV file to write (its SHA-256 goes beside it)")],
    db: DbOption = None,
) -> None:
    """Per worker and scheme, layout ansinh-contributions/2 (with credited months), for the national insurer."""
    from ledger.authority import write_contributions

    written = _read(db, write_contributions, month, output)
    out.print(f"wrote {written['path']}: {written['lines']:,} lines, layout {written['layout']}, "
              f"total {written['total_vnd']:,} VND, sha256 {written['sha256']}")
    out.print("the file holds national ids: hand it to the national insurer only, by a secure channel")

"""The `ansinh` command line: a thin shell over the ledger (same functions as HTTP).

Each command opens the books (`--db` / ANSINH_DATABASE_URL, `--pack` / ANSINH_PACK),
calls one ledger function and prints its result. Exit codes follow INTERFACES.md:
rejected events are outcomes, not failures; a run that cannot do its job exits 1.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli_books import console, database_errors, database_refused, open_books, read_worker

# Every other import is inside the command that needs it: `ansinh --help` and `ansinh CMD --help`
# must not load SQLAlchemy, alembic, NumPy, pandas or FastAPI (start-up under 1 s; docs/performance.md,
# pinned by tests/api/test_cli_startup.py).

app = typer.Typer(help="ansinh: pay-as-you-work social insurance ledger for platform workers.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
tiers_app = typer.Typer(help="Household status registry (poor, near-poor, …).", no_args_is_help=True)
app.add_typer(tiers_app, name="tiers")


@app.callback()
def _options(secret_file: Annotated[Optional[Path], typer.Option(
        "--secret-file", help="read the master secret from this file (also ANSINH_SECRET_FILE); "
                              "docs/security.md")] = None) -> None:
    """ansinh: pay-as-you-work social insurance ledger for platform workers."""
    if secret_file is not None:
        os.environ["ANSINH_SECRET_FILE"] = str(secret_file)
out = Console(highlight=False, soft_wrap=True)

DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL; default ANSINH_DATABASE_URL or ./ansinh.db")]
_OUTCOME_CODE = itemgetter(3)  # `ledger.ingest.Outcome.outcome`
PackOption = Annotated[Optional[str], typer.Option("--pack", help="rules pack name or YAML path; default ANSINH_PACK or vn-pilot")]


def _secret(db: str | None) -> str:
    """The master secret for the books at `db`, or one error line (weak on a server database, missing, …)."""
    from ledger.store import StoreError, database_url, load_secret

    try:
        return load_secret(database_url(db))
    except StoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)


def _readable(path: Path) -> None:
    """Exit with a clear message unless `path` is a readable file."""
    if not path.exists():
        console.print(f"[red]error:[/red] no such file: {path}")
        raise typer.Exit(1)
    if not path.is_file():
        console.print(f"[red]error:[/red] {path} is not a file")
        raise typer.Exit(1)


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


@app.command()
def ingest(
    file: Annotated[str, typer.Argument(help="NDJSON file (- for stdin), .csv or .parquet with the event fields")],
    outcomes: Annotated[Optional[Path], typer.Option("--outcomes", help="write one JSON line per input item")] = None,
    chunk_size: Annotated[int, typer.Option(help="events per database transaction")] = 20_000,
    mapping: Annotated[Optional[Path], typer.Option("--map", help="YAML column mapping for a platform's own "
                                                                  "export (docs/stream.md)")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="language of each outcome's reason in --outcomes "
                                                               "(vi, the default, or en) and, when given, of a "
                                                               "file error")] = None,
    ahead: Annotated[str, typer.Option("--ahead", help="where the next chunk is read and checked while one is "
                                                       "booked: auto (a forked process once the file holds more "
                                                       "than one chunk), process, thread or none")] = "auto",
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Book platform events; every item gets an outcome (accepted, duplicate or a rejection code)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ledger.events import Rejection
    from ledger.files import FileFormatError, private_open
    from ledger.ingest import ingest_stream
    from ledger.pipeline import AHEAD_MODES
    from ledger.readers import read_events

    from api.reasons import DEFAULT_LANG, LANGS, outcome_lines

    if lang is not None and lang not in LANGS:
        console.print(f"[red]error:[/red] --lang must be one of {', '.join(LANGS)}, not {escape(lang)!r}")
        raise typer.Exit(1)
    reason_lang = lang or DEFAULT_LANG
    if ahead not in AHEAD_MODES:
        console.print(f"[red]error:[/red] --ahead must be one of {', '.join(AHEAD_MODES)}, not {escape(ahead)!r}")
        raise typer.Exit(1)
    if file != "-":
        _readable(Path(file))
    loaded = None
    if mapping is not None:
        from ledger.mapping import MappingError, load_mapping

        try:
            loaded = load_mapping(mapping)
        except MappingError as error:
            for problem in error.errors:
                console.print(f"[red]error:[/red] {mapping}: {problem}")
            console.print("nothing was ingested")
            raise typer.Exit(1)
    items = read_events(file, loaded)
    try:
        sink = private_open(outcomes, "wb") if outcomes else None
    except OSError as error:
        console.print(f"[red]error:[/red] cannot write the outcomes to {outcomes}: {error.strerror}")
        raise typer.Exit(1)
    ledger = open_books(db, pack)
    counts = Counter()
    started = time.perf_counter()
    show_progress = console.is_terminal
    try:
        with Progress(TextColumn("[bold]ingest"), BarColumn(), TextColumn("{task.completed:,} events"),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                      disable=not show_progress) as progress:
            task = progress.add_task("ingest", total=None, rate="")
            for chunk in ingest_stream(ledger, items, chunk_size=chunk_size, ahead=ahead):
                counts.update(map(_OUTCOME_CODE, chunk))
                if sink:
                    sink.write(outcome_lines(chunk, reason_lang))
                done = sum(counts.values())
                rate = done / max(time.perf_counter() - started, 1e-9)
                progress.update(task, completed=done, rate=f"{rate:,.0f} events/s")
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}; the chunk being written was rolled back")
        console.print(f"{sum(counts.values()):,} items before it were booked; re-running the file is safe")
        raise typer.Exit(1)
    except (OSError, ValueError) as error:
        # Unreadable input (not UTF-8, no header, a cell too long, not Parquet, I/O error). Chunks
        # before it are booked and replaying the whole file is safe: booked events come back `duplicate`.
        # A file error is said in --lang when it is given (ledger/file_errors.py), else as it always was.
        said = (error.text(lang) if lang else str(error)) if isinstance(error, FileFormatError) else \
            f"cannot read {file}: {type(error).__name__}: {error}"
        console.print("[red]error:[/red] " + escape(said))
        console.print(f"{sum(counts.values()):,} items before the error were processed; "
                      "fix the file and run again (already booked events come back as duplicates)")
        raise typer.Exit(1)
    finally:
        if sink:
            sink.close()
        ledger.close()
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    table = Table(title=f"{total:,} items in {elapsed:.2f} s ({total / max(elapsed, 1e-9):,.0f}/s)")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for name in ["accepted", "duplicate", *[code.name for code in Rejection]]:
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
    from ledger.close import TierImportError, import_tiers

    _readable(file)
    ledger = open_books(db, pack)
    try:
        count = import_tiers(ledger, file)
    except (OSError, UnicodeDecodeError) as error:
        console.print(f"[red]error:[/red] cannot read {file}: {error}")
        raise typer.Exit(1)
    except TierImportError as error:
        for line in error.errors:
            console.print(f"[red]error:[/red] {file.name}: {line}")
        console.print("nothing was imported")
        raise typer.Exit(1)
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}; nothing was imported")
        raise typer.Exit(1)
    finally:
        ledger.close()
    out.print(f"imported {count} household statuses from {file.name}")


@app.command("close")
def close_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM, the month after the last closed one")],
    db: DbOption = None,
    pack: PackOption = None,
    witness: Annotated[Optional[str], typer.Option(
        "--witness", envvar="ANSINH_WITNESS", metavar="nats://HOST:PORT[/STREAM]|FILE",
        help="publish the month's anchor to this witness (docs/witness.md)")] = None,
) -> None:
    """Close a month: post the state subsidy and freeze the month."""
    from api.witness import WitnessError
    from api.witness_cli import publish_close, target_of
    from ledger.close import CloseError, close_month

    if witness:
        target_of(witness)  # a malformed --witness is refused before anything is closed
    ledger = open_books(db, pack)
    witnessed = None
    try:
        result = close_month(ledger, month)
        if witness:
            try:
                witnessed = publish_close(ledger, result.month, witness)
            except (WitnessError, ValueError) as error:
                witnessed = error
    except (CloseError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}; the month was not closed")
        raise typer.Exit(1)
    finally:
        ledger.close()
    out.print(f"closed {result.month} under {result.rules_version}: {result.workers_subsidised} workers subsidised, "
              + ", ".join(f"{scheme} {amount:,}" for scheme, amount in result.subsidy_vnd.items())
              + f" VND; {result.bills} platform bills ({result.bills_vnd:,} VND), "
              f"late interest {result.late_interest_vnd:,} VND")
    out.print(f"anchor (keep it outside the books; `ansinh verify --from-anchor` checks it): "
              f"{result.month}={result.anchor_hash}")
    if isinstance(witnessed, Exception):
        console.print(f"[red]error:[/red] {result.month} is closed, but its anchor was not witnessed: "
                      f"{escape(str(witnessed))}; "
                      f"publish it with `ansinh witness publish --close {result.month} --witness …`")
        raise typer.Exit(1)
    if witnessed:
        out.print(witnessed)


@app.command("archive")
def archive_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM, a closed month")],
    restore: Annotated[bool, typer.Option("--restore", help="bring the archived month back from its file")] = False,
    to: Annotated[Path, typer.Option("--to", help="folder of the Parquet files")] = Path("archive"),
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Archive a closed month's journal partition to Parquet and detach it, or --restore it (PostgreSQL)."""
    from ledger.archive import ArchiveError, archive_month, restore_month

    ledger = open_books(db, pack)
    try:
        result = restore_month(ledger, month) if restore else archive_month(ledger, month, to)
    except (ArchiveError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    finally:
        ledger.close()
    verb = "restored" if restore else "archived"
    out.print(f"{verb} {result['month']}: {result['entries']} entries, {result['file']}")


@app.command("statement")
def statement_command(
    national_id: Annotated[str, typer.Argument(help="the worker's 12-digit citizen identity number")],
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    as_json: Annotated[bool, typer.Option("--json", help="the JSON of INTERFACES.md (with --events: NDJSON, "
                                                         "one event a line)")] = False,
    lang: Annotated[str, typer.Option("--lang", help="vi (default) or en")] = "vi",
    events: Annotated[bool, typer.Option("--events", help="list the month's booked events with their shares")] = False,
    file_format: Annotated[Optional[str], typer.Option(
        "--format", help="with --events: csv (Vietnamese headers), json or ndjson")] = None,
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """One worker's statement for a month, with totals to date (--events: the month's booked events)."""
    if events or file_format is not None:
        from api.trips_cli import print_events

        print_events(national_id, month, as_json=as_json, file_format=file_format, lang=lang, db=db, pack=pack)
        return
    from api.i18n import format_statement
    from ledger.reports import statement

    report = read_worker(db, pack, national_id, lambda ledger: statement(ledger, national_id, month), month)
    if as_json:
        _print_json(report)
    else:
        out.print(format_statement(report, lang))


@app.command("credits")
def credits_command(
    national_id: Annotated[str, typer.Argument(help="the worker's 12-digit citizen identity number")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lang: Annotated[str, typer.Option("--lang", help="vi (default) or en")] = "vi",
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """The months credited towards a pension (RULES.md §11), each with the close that credited it."""
    from api.i18n import format_credits
    from ledger.reports import credits

    report = read_worker(db, pack, national_id, lambda ledger: credits(ledger, national_id))
    if as_json:
        _print_json(report)
    else:
        out.print(format_credits(report, lang))


@app.command("statements")
def statements_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """NDJSON: one statement per worker with anything booked in the month."""
    from ledger.reports import statements

    ledger = open_books(db, pack)
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
    from ledger.reports import settlement

    ledger = open_books(db, pack)
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
    from api.exports import settlement_bytes
    from ledger.files import write_private
    from ledger.reports import settlement_lines

    if file_format == "parquet" and output is None:
        console.print("[red]error:[/red] --format parquet needs --output FILE")
        raise typer.Exit(1)
    try:
        data = settlement_bytes(report, file_format)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    if output is None:
        sys.stdout.buffer.write(data)
        return
    write_private(output, data)  # owner-only (0600): it names platforms and their dues
    out.print(f"wrote {output} ({len(settlement_lines(report))} lines, "
              f"control total {report['control_total_vnd']:,} VND)")


def _settlement_table(report: dict) -> Table:
    from api.cli_tables import ID, NUMBER, cli_table

    rows = [(name, *(f"{by_scheme[s]:,}" for s in ("si", "oa", "ui")), f"{sum(by_scheme.values()):,}")
            for name, by_scheme in report["platforms"].items()]
    subsidy = report["subsidy"]
    rows.append(("state budget (subsidy)", *(f"{subsidy[s]:,}" for s in ("si", "oa", "ui")), f"{sum(subsidy.values()):,}"))
    table = cli_table(f"Settlement {report['month']} ({report['status']})",
                      [("payer", ID), ("si", NUMBER), ("oa", NUMBER), ("ui", NUMBER), ("total", NUMBER)], rows)
    table.caption = f"control total {report['control_total_vnd']:,} VND; postings sha256 {report['postings_sha256'][:16]}…"
    return table


@app.command("verify")
def verify_command(
    from_anchor: Annotated[Optional[list[str]], typer.Option(
        "--from-anchor", metavar="MONTH=HEX",
        help="a month's anchor as printed by `ansinh close` (repeatable): the chain recomputed from the rows "
             "must reach it")] = None,
    db: DbOption = None,
    pack: PackOption = None,
    witness: Annotated[Optional[list[str]], typer.Option(
        "--witness", envvar="ANSINH_WITNESS", metavar="nats://HOST:PORT[/STREAM]|FILE",
        help="check the books against every chain head and anchor this witness holds (repeatable; "
             "docs/witness.md)")] = None,
) -> None:
    """Re-derive every balance from the postings and check every invariant and the hash chain.

    Every check runs, so each failure names what it can (the entry, the block, the month).
    With --from-anchor the hash chain is also checked against anchors kept outside the books,
    with --witness against every chain head and anchor a witness holds.
    """
    from ledger.verify import Anchor, verify

    try:
        anchors = [Anchor.parse(text) for text in from_anchor or []]
    except ValueError as error:
        console.print(f"[red]error:[/red] --from-anchor: {error}")
        raise typer.Exit(2)
    from api.witness_cli import read_witnesses, witness_checks

    witnessed = read_witnesses(witness or [])  # before the books: every record is of a committed block
    ledger = open_books(db, pack)
    try:
        checks = verify(ledger, stop_at_first=False, anchors=anchors)
        checks += witness_checks(ledger, witnessed)
    finally:
        ledger.close()
    for check in checks:
        mark = "[green]ok[/green]  " if check.problem is None else "[red]FAIL[/red]"
        shown = check.problem or (check.detail if check.name == "archived_months" else None)
        out.print(f"{mark} {check.name}" + (f": {shown}" if shown else ""))
    if checks:
        out.print(checks[0].detail)
    if any(check.problem for check in checks):
        raise typer.Exit(1)


platforms_app = typer.Typer(help="Platform API keys for signed ingest (admin).", no_args_is_help=True)
app.add_typer(platforms_app, name="platforms")
token_app = typer.Typer(help="Demo-mode bearer tokens (production tokens come from the identity provider).",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")
packs_app = typer.Typer(help="Rules packs: list them, show one with its sources.", no_args_is_help=True)
app.add_typer(packs_app, name="packs")


def _keys(db: str | None):
    from api.keys import PlatformKeys

    ledger = open_books(db, None)
    return ledger, PlatformKeys(ledger, _secret(db))


def _key_action(db: str | None, action) -> None:
    """Run `action(keys)` on the books' platform keys; print its record as JSON, or a clear error."""
    ledger, keys = _keys(db)
    try:
        record = action(keys)
    except (ValueError, LookupError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}")
        raise typer.Exit(1)
    finally:
        ledger.close()
    _print_json(record.__dict__)


def _warn_unregistered(platform: str) -> None:
    """One line on stderr when `platform` is not in ledger/platforms.yaml. The key is still
    issued (stdout stays the key's JSON): the books accept any well-formed id, as they did
    before the registry existed, but pages would show the bare id, and the HTTP admin route
    refuses it (`unregistered-platform`), so the administrator hears of it here too."""
    from ledger.platforms import PLATFORM_ID, platform_registry

    if PLATFORM_ID.fullmatch(platform) and platform not in platform_registry():
        known = ", ".join(platform_registry())
        console.print(f"[yellow]warning:[/yellow] {platform!r} is not in the platform registry "
                      f"(ledger/platforms.yaml: {known}); pages will show the id as it is")


@platforms_app.command("add")
def platforms_add(platform: Annotated[str, typer.Argument(help="platform id, as in its events")],
                  db: DbOption = None) -> None:
    """Issue an API key for a platform; the secret is printed once."""
    _warn_unregistered(platform)
    _key_action(db, lambda keys: keys.add(platform))


@platforms_app.command("rotate")
def platforms_rotate(platform: Annotated[str, typer.Argument(help="platform id")], db: DbOption = None) -> None:
    """Issue a new key; the platform's older keys keep working for 24 hours, then retire."""
    _warn_unregistered(platform)
    _key_action(db, lambda keys: keys.rotate(platform))


@platforms_app.command("revoke")
def platforms_revoke(key_id: Annotated[str, typer.Argument(help="key id (pk2_… or pk_…)")], db: DbOption = None) -> None:
    """Revoke a key at once."""
    _key_action(db, lambda keys: keys.revoke(key_id))


@platforms_app.command("list")
def platforms_list(db: DbOption = None) -> None:
    """Every key: platform, dates, status (never a secret)."""
    ledger, keys = _keys(db)
    try:
        for record in keys.list():
            _print_json(record.__dict__)
    finally:
        ledger.close()


@token_app.command("worker")
def token_worker(national_id: Annotated[str, typer.Argument(help="the worker's 12-digit CCCD")],
                 minutes: Annotated[int, typer.Option(help="lifetime")] = 15, db: DbOption = None) -> None:
    """Mint a short-lived demo token for a worker (subject: the keyed pseudonym)."""
    from datetime import datetime, timedelta, timezone

    from api.tokens import mint_demo_token
    from ledger.identity import IdentityKeys

    secret = _secret(db)
    subject = IdentityKeys.from_secret(secret).pseudonym(national_id)
    sys.stdout.write(mint_demo_token(secret, "worker", subject, datetime.now(timezone.utc),
                                     timedelta(minutes=minutes), key_id=_token_key_id()) + "\n")


@token_app.command("staff")
def token_staff(role: Annotated[str, typer.Option(help="insurer, policy or admin")],
                name: Annotated[str, typer.Option(help="who the token is for (logged)")] = "demo",
                minutes: Annotated[int, typer.Option(help="lifetime")] = 15, db: DbOption = None) -> None:
    """Mint a short-lived demo token for an insurer, policy analyst or administrator."""
    from datetime import datetime, timedelta, timezone

    from api.tokens import mint_demo_token

    if role not in ("insurer", "policy", "admin"):
        console.print("[red]error:[/red] --role must be insurer, policy or admin")
        raise typer.Exit(1)
    secret = _secret(db)
    sys.stdout.write(mint_demo_token(secret, role, name, datetime.now(timezone.utc),
                                     timedelta(minutes=minutes), key_id=_token_key_id()) + "\n")


def _token_key_id() -> str:
    """The token key the service verifies with (ANSINH_TOKEN_KEY_ID, default token/v1)."""
    from api.settings import TOKEN_KEY_IDS

    chosen = os.environ.get("ANSINH_TOKEN_KEY_ID") or TOKEN_KEY_IDS[0]
    if chosen not in TOKEN_KEY_IDS:
        console.print(f"[red]error:[/red] ANSINH_TOKEN_KEY_ID must be one of {', '.join(TOKEN_KEY_IDS)}")
        raise typer.Exit(1)
    return chosen


@packs_app.command("list")
def packs_list() -> None:
    """The shipped rules packs and their versions."""
    from rules import load_pack, shipped_packs

    for name in shipped_packs():
        pack = load_pack(name)
        out.print(f"{name:22} " + ", ".join(version.effective_from.isoformat() for version in pack.versions)
                  + f"  — {pack.description.splitlines()[0] if pack.description else ''}")


@packs_app.command("show")
def packs_show(pack: Annotated[str, typer.Argument(help="pack name or YAML path")]) -> None:
    """Validate a pack and print every version as JSON (rates, tiers, caps, sources)."""
    from ledger.books import version_document
    from rules import PackError, load_pack

    try:
        loaded = load_pack(pack)
    except PackError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    for version in loaded.versions:
        _print_json(version_document(version))


@app.command()
def serve(host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port")] = 8000,
          workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
          demo_mode: Annotated[bool, typer.Option("--demo", help="demo mode: a sign-in form that lets anyone be "
                                                                 "any role (also ANSINH_DEMO=1)")] = False,
          demo_on_server_database: Annotated[bool, typer.Option(
              "--demo-on-server-database", help="allow --demo on a PostgreSQL database (a throwaway one)")] = False,
          ) -> None:
    """The HTTP API under uvicorn; production unless --demo (settings: ANSINH_* variables, docs/http.md)."""
    import uvicorn

    from api.settings import Settings, SettingsError

    # The uvicorn factory (and every worker process) reads the settings from the environment.
    if demo_mode:
        os.environ["ANSINH_DEMO"] = "1"
    if demo_on_server_database:
        os.environ["ANSINH_DEMO_ON_SERVER_DATABASE"] = "1"
    try:
        settings = Settings().check()
    except (SettingsError, ValueError) as error:
        console.print(f"[red]error:[/red] {str(error).splitlines()[0]}")
        raise typer.Exit(1)
    if settings.mode == "demo":
        console.print("[yellow]DEMO MODE[/yellow]: anyone can sign in as any role; every response carries "
                      "X-Ansinh-Mode: demo")
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    # First, before uvicorn (and its workers) start: where to point a browser, a proxy or a test.
    sys.stdout.write(f"listening on {base} (API docs: {base}/docs; pages: {base}/signin)\n")
    sys.stdout.flush()
    uvicorn.run("api.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


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


from simulations.cli import simulate_command  # noqa: E402
app.command("simulate")(simulate_command)

from api.stream_cli import consume_command, publish_command  # noqa: E402
app.command("consume")(consume_command)
app.command("publish")(publish_command)


from api.money_cli import (account_command, bills_command, claim_command, payments_app,  # noqa: E402
                           report_app)
app.add_typer(payments_app, name="payments")
app.add_typer(report_app, name="report")
app.command("bills")(bills_command)
app.command("account")(account_command)
app.command("claim")(claim_command)

from api.witness_cli import witness_app  # noqa: E402
app.add_typer(witness_app, name="witness")

from api.ops_cli import backup_command, correct_id_command, export_command, restore_command  # noqa: E402
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("correct-id")(correct_id_command)
app.command("export")(export_command)


def main() -> None:
    try:
        app()
    except Exception as error:  # any command: one line, never a traceback (its transaction rolled back)
        # Not `except database_errors()`: that expression is evaluated for every exception, the
        # SystemExit ending each command included, and it imports SQLAlchemy (~0.2 s of `--help`).
        if not isinstance(error, database_errors()):
            raise
        console.print(f"[red]error:[/red] {database_refused(error)}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""`ansinh backup`, `ansinh restore`, `ansinh export`: the operator's commands (registered in api/cli.py).

Thin, like the other commands: each calls one function of `ledger.backup` or
`ledger.export` and prints what it did; failures are one `error:` line and exit 1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL; default ANSINH_DATABASE_URL or ./ansinh.db")]
PackOption = Annotated[Optional[str], typer.Option("--pack", help="rules pack name or YAML path; default the books' own")]


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(1)


def backup_command(
    file: Annotated[Path, typer.Argument(help="the backup file to write (must not exist)")],
    db: DbOption = None,
) -> None:
    """Copy the books, consistent at one instant: SQLite online backup, or pg_dump (custom format)."""
    from ledger.backup import BackupError, backup

    try:
        state = backup(db, file)
    except BackupError as error:
        _fail(str(error))
    out.print(f"backed up to {file}: {state.text()}")
    out.print("the backup does not hold the secret that keys pseudonyms and encrypts national ids "
              "(ANSINH_SECRET, or the .secret file beside embedded books): keep it apart; a restore needs the same one")


def restore_command(
    file: Annotated[Path, typer.Argument(help="a file written by `ansinh backup`")],
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Bring a backup back onto empty books, then verify them (exit 1 unless every check holds)."""
    from ledger.backup import BackupError, restore
    from ledger.books import Ledger
    from ledger.store import StoreError
    from ledger.verify import verify
    from rules import PackError

    try:
        state = restore(file, db)
    except BackupError as error:
        _fail(str(error))
    out.print(f"restored {file}: {state.text()}")
    secret = _secret_of_restored_books(db)
    if secret is None:
        out.print("ANSINH_SECRET is not set: before these books are used, give them the original's secret "
                  "(ANSINH_SECRET, or its .secret file beside the restored database); their keys are not checked")
    try:
        # with no secret at hand, verify runs on a stand-in and checks no key (never generating a new secret);
        # with one, opening refuses books written with another secret, in one line naming the key
        ledger = Ledger.open(db, pack, secret=secret or "verify-only, no identity keys", check_secret=secret is not None)
    except (StoreError, PackError) as error:
        _fail(f"{error} (the restored books stay at {db or 'the target'}; nothing else was changed)"
              if isinstance(error, StoreError) else str(error))
    try:
        checks = verify(ledger, stop_at_first=False)
    finally:
        ledger.close()
    for check in checks:
        mark = "[green]ok[/green]  " if check.problem is None else "[red]FAIL[/red]"
        out.print(f"{mark} {check.name}" + (f": {check.problem}" if check.problem else ""))
    if any(check.problem for check in checks):
        raise typer.Exit(1)


def _secret_of_restored_books(db: str | None) -> str | None:
    """The secret the restored books will be opened with: ANSINH_SECRET, else the .secret file beside
    embedded books if one is there. None when there is none (one is never generated here)."""
    import os

    from sqlalchemy.engine import make_url

    from ledger.store import database_url, load_secret

    if os.environ.get("ANSINH_SECRET"):
        return os.environ["ANSINH_SECRET"]
    url = database_url(db)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and Path(parsed.database + ".secret").is_file():
        return load_secret(url)
    return None


def export_command(
    parquet: Annotated[Optional[Path], typer.Option("--parquet", help="folder for one Parquet file per table")] = None,
    beancount: Annotated[Optional[Path], typer.Option("--beancount", help="Beancount journal file to write")] = None,
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Export the whole book: Parquet tables with a manifest, and/or a Beancount journal."""
    from api.cli_books import open_books as _open
    from ledger.export import ExportError, export_beancount, export_parquet

    if parquet is None and beancount is None:
        _fail("say what to export: --parquet DIR and/or --beancount FILE")
    ledger = _open(db, pack)
    try:
        if parquet is not None:
            manifest = export_parquet(ledger, parquet)
            rows = ", ".join(f"{name} {table['rows']:,}" for name, table in manifest["tables"].items())
            out.print(f"wrote {parquet}: {rows}; chain head {manifest['chain_head']}")
        if beancount is not None:
            count = export_beancount(ledger, beancount)
            out.print(f"wrote {beancount}: {count:,} transactions (check it with `bean-check {beancount}`)")
    except (ExportError, OSError) as error:
        _fail(str(error))
    finally:
        ledger.close()


def correct_id_command(
    wrong: Annotated[str, typer.Argument(help="the national id the worker was booked under (mistyped)")],
    right: Annotated[str, typer.Argument(help="the worker's right national id (CCCD)")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the audited record)")] = "",
    db: DbOption = None,
    pack: PackOption = None,
) -> None:
    """Record a corrected national id: the right one resolves to the same worker from now on (never an UPDATE)."""
    from api.cli_books import open_books as _open
    from ledger.identity_changes import IdentityChangeError, correct_national_id

    ledger = _open(db, pack)
    try:
        worker_id = correct_national_id(ledger, wrong, right, reason)
    except IdentityChangeError as error:
        _fail(str(error))
    finally:
        ledger.close()
    out.print(f"recorded: worker {worker_id}'s national id is corrected; the right one resolves to it from now on")

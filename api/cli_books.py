"""How every CLI command opens the books and reports a refusal: one error line, never a traceback.

Its own module so the command modules (`api/cli.py` and the `*_cli.py` beside it) all import it
and none has to import `api/cli.py` back.
"""
from __future__ import annotations

import sqlite3
import sys

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from ledger.books import Ledger
from ledger.store import StoreError
from rules import PackError

console = Console(stderr=True, soft_wrap=True)  # an error is one line, however narrow the terminal


def database_errors() -> tuple[type[BaseException], ...]:
    """What a refusing database raises: SQLAlchemy's errors, and the raw drivers' (the store writes
    through the driver connection, so a read-only PostgreSQL raises `psycopg.Error` unwrapped).
    Evaluated when an exception is matched, so psycopg is never imported just to be caught."""
    psycopg = sys.modules.get("psycopg")
    return (SQLAlchemyError, sqlite3.Error) + ((psycopg.Error,) if psycopg is not None else ())


def database_refused(error: Exception) -> str:
    """One line for a database that refuses (read-only, disk full, unreachable): never a traceback."""
    reason = getattr(error, "orig", None) or error
    return f"the database refused: {str(reason).splitlines()[0] if str(reason) else type(reason).__name__}"


def open_books(db: str | None, pack: str | None) -> Ledger:
    """The books at `db` (created and migrated if new), or one error line and exit 1."""
    try:
        return Ledger.open(db, pack)
    except (StoreError, PackError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}")
        raise typer.Exit(1)

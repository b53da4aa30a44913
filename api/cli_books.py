"""How every CLI command opens the books and reports a refusal: one error line, never a traceback.

Its own module so the command modules (`api/cli.py` and the `*_cli.py` beside it) all import it
and none has to import `api/cli.py` back.
"""
from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING, Callable, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported where used, so `ansinh --help` never loads SQLAlchemy (docs/performance.md)
    from ledger.books import Ledger

T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)  # an error is one line, however narrow the terminal


def database_errors() -> tuple[type[BaseException], ...]:
    """What a refusing database raises: SQLAlchemy's errors, and the raw drivers' (the store writes
    through the driver connection, so a read-only PostgreSQL raises `psycopg.Error` unwrapped).
    Evaluated when an exception is matched, so psycopg is never imported just to be caught."""
    from sqlalchemy.exc import SQLAlchemyError

    psycopg = sys.modules.get("psycopg")
    return (SQLAlchemyError, sqlite3.Error) + ((psycopg.Error,) if psycopg is not None else ())


def database_refused(error: Exception) -> str:
    """One line for a database that refuses (read-only, disk full, unreachable): never a traceback."""
    reason = getattr(error, "orig", None) or error
    return f"the database refused: {str(reason).splitlines()[0] if str(reason) else type(reason).__name__}"


def open_books(db: str | None, pack: str | None) -> Ledger:
    """The books at `db` (created and migrated if new), or one error line and exit 1."""
    from ledger.books import Ledger
    from ledger.store import StoreError
    from rules import PackError

    try:
        return Ledger.open(db, pack)
    except (StoreError, PackError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}")
        raise typer.Exit(1)


def require_known_worker(ledger: Ledger, national_id: str, month: str | None = None) -> None:
    """Exit 1 with one line unless `national_id` is a valid CCCD the books hold contributions for.
    A `month` is checked first (a ValueError naming YYYY-MM), so a bad month is reported as such.

    Without it a mistyped id printed a zero statement and exited 0, as if the worker had
    nothing booked. The line shows the id masked (`ledger.identity.masked`), never in full."""
    from datetime import date

    from ledger.events import parse_month
    from ledger.identity import is_valid_national_id, masked

    if month is not None:
        parse_month(month)
    if not is_valid_national_id(national_id, date.today().year):
        console.print(f"[red]error:[/red] {masked(national_id)} is not a valid national id "
                      "(CCCD: 12 digits, a province code, a birth year not in the future)")
        raise typer.Exit(1)
    with ledger.engine.connect() as conn:
        worker_id = ledger.worker_id(conn, national_id)
        conn.rollback()
    if worker_id is None:
        console.print(f"[red]error:[/red] no contributions booked for this worker ({masked(national_id)}): "
                      "check the national id")
        raise typer.Exit(1)


def read_worker(db: str | None, pack: str | None, national_id: str, read: Callable[["Ledger"], T],
                month: str | None = None) -> T:
    """Open the books, refuse an invalid or unknown worker (require_known_worker), return
    `read(ledger)`; a ValueError (a bad month, say) or a database refusal is one error line and exit 1."""
    ledger = open_books(db, pack)
    try:
        require_known_worker(ledger, national_id, month)
        return read(ledger)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1)
    except database_errors() as error:
        console.print(f"[red]error:[/red] {database_refused(error)}")
        raise typer.Exit(1)
    finally:
        ledger.close()

"""`ansinh statement NATIONAL_ID YYYY-MM --events`: the month's booked events with their shares.

Text (a table, Vietnamese by default, `--lang en`), `--json` (NDJSON: one event a line),
`--format json` (one object: the events and their totals), `--format csv` (a file for
people: headers and words in the `--lang` language, Vietnamese by default; formula-looking
text escaped: `api.exports.events_csv_bytes`). Every page of the
month is read inside one read transaction (`ledger.trips.all_worker_events`).
"""
from __future__ import annotations

import sys

import orjson
import typer

from api.cli_books import console, read_worker
from api.exports import events_csv_bytes
from api.i18n import format_events
from ledger.trips import all_worker_events, events_totals

EVENT_FORMATS = ("csv", "json", "ndjson")


def print_events(national_id: str, month: str, *, as_json: bool, file_format: str | None, lang: str,
                 db: str | None, pack: str | None) -> None:
    if file_format is not None and file_format not in EVENT_FORMATS:
        console.print(f"[red]error:[/red] unknown format {file_format!r}: use {', '.join(EVENT_FORMATS)}")
        raise typer.Exit(1)
    if as_json and file_format not in (None, "ndjson"):
        console.print("[red]error:[/red] --json prints NDJSON: give either --json or --format")
        raise typer.Exit(1)
    chosen = "ndjson" if as_json else file_format or "text"

    def read(ledger) -> list | None:
        items = all_worker_events(ledger, national_id, month)  # a bad or archived month: ValueError
        if chosen == "ndjson":
            for item in items:
                sys.stdout.write(orjson.dumps(item).decode() + "\n")
            return None
        return list(items)

    listed = read_worker(db, pack, national_id, read, month)
    if listed is None:
        return
    totals = events_totals(listed)
    if chosen == "csv":
        sys.stdout.buffer.write(events_csv_bytes(listed, lang))
    elif chosen == "json":
        sys.stdout.write(orjson.dumps({"national_id": national_id, "month": month, "events": listed,
                                       "totals": totals}).decode() + "\n")
    else:
        sys.stdout.write(format_events(month, national_id, listed, totals, lang) + "\n")

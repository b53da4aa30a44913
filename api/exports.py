"""Files out of the books: for machines, and for people.

For machines (stable codes, English snake_case headers, figures as integers; pinned by
docs/http.md and /work/shared/spec/INTERFACES.md): the settlement and statements of account
as JSON, CSV and Parquet, same lines, same control total — shared by `ansinh settlement
--format …`, `GET /v1/months/{month}/settlement` and the insurer pages' downloads.

For people (a worker opening a spreadsheet): the events, statement and history CSVs, with
headers and words in the reader's language (scheme and platform names, not codes), amounts
as integers of VND, months and times as ISO text a spreadsheet reads as dates. docs/web.md,
"Files", lists which is which.
"""
from __future__ import annotations

import io
from typing import Any

import orjson

from api.i18n import events_csv_header, events_csv_rows, statement_csv_header, statement_csv_rows
from ledger.files import SpreadsheetWriter
from ledger.reports import settlement_lines

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8",
           "parquet": "application/vnd.apache.parquet"}


def settlement_bytes(report: dict[str, Any], file_format: str) -> bytes:
    """The settlement in `file_format` (json, csv or parquet); ValueError for another format."""
    if file_format == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2)
    return lines_bytes(settlement_lines(report), file_format, {
        "control_total_vnd": str(report["control_total_vnd"]), "postings_sha256": report["postings_sha256"],
        "status": report["status"]})


def lines_bytes(lines: list[dict[str, Any]], file_format: str, metadata: dict[str, str] | None = None) -> bytes:
    """Flat lines (one dict per row, same keys) as json, csv or parquet; ValueError for another format.

    Parquet keeps `metadata` (control totals, hashes) in the file's schema metadata.
    """
    if file_format == "json":
        return orjson.dumps(lines, option=orjson.OPT_INDENT_2)
    if file_format == "csv":
        # CSV is what people open in a spreadsheet: text cells that would run as a formula (a bank
        # memo `=HYPERLINK(…)`) get a leading `'`; numbers, negative ones too, are left as numbers
        # (ledger.files.spreadsheet_cell). JSON and Parquet carry the text unchanged.
        buffer = io.StringIO()
        if lines:
            writer = SpreadsheetWriter(buffer)
            writer.writerow(lines[0])
            writer.writerows(line.values() for line in lines)
        return buffer.getvalue().encode()
    if file_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(lines).replace_schema_metadata(metadata or {})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    raise ValueError(f"unknown format {file_format!r}: use {', '.join(FORMATS)}")


def _people_csv(header, rows) -> bytes:
    """UTF-8 with a byte-order mark, so a spreadsheet shows Vietnamese headers as written; text
    cells that would run as a formula get a leading `'`, numbers stay numbers."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = SpreadsheetWriter(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def statement_csv_bytes(report: dict[str, Any], lang: str = "vi") -> bytes:
    """A worker's statement of a month (ledger.reports.statement) as a CSV for people."""
    return _people_csv(statement_csv_header(lang), statement_csv_rows([report], lang, report["to_date"]))


def history_csv_bytes(past: dict[str, Any], lang: str = "vi") -> bytes:
    """A worker's history by month (ledger.reports.history) as a CSV for people."""
    return _people_csv(statement_csv_header(lang, to_date=False), statement_csv_rows(past["months"], lang))


def events_csv_bytes(items, lang: str = "vi") -> bytes:
    """A worker's events (ledger.trips items) as CSV for people: headers and words in `lang`
    (api.i18n.events_csv_header; Vietnamese unless asked), amounts as integers of VND.

    UTF-8 with a byte-order mark, so a spreadsheet shows the Vietnamese headers as written; text
    cells that would run as a formula (an event id `-1+1`) get a leading `'`, numbers stay numbers.
    """
    return _people_csv(events_csv_header(lang), events_csv_rows(items, lang))

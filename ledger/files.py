"""The files people hand us and the files we hand back: one set of checks for both directions.

Reading (events CSV, household tiers, bank statements, mappings, scenarios): every
reader goes through `text_lines` and `CsvFile`, so each one

- strips a UTF-8 byte-order mark (spreadsheet programs write one; left in, it glues
  itself to the first column's name and every row loses that field);
- decodes strictly as UTF-8, line by line, so a bad byte is reported with its line;
- requires its header: a first row that is not the expected header (a file with no
  header, a renamed or missing column) is refused, naming the missing and unknown
  columns — it is never read as data, and data is never read as a header;
- caps a cell at `MAX_CELL_CHARS` (Python's csv limit, kept and named) and a physical
  line at `MAX_LINE_BYTES`, with an error instead of `_csv.Error`;
- reads amounts with `ascii_integer`: `int()` and `Decimal()` accept any Unicode digit
  (full-width `１０００`, Arabic-Indic `١٠٠٠`), so a bank file could book money from
  characters no one reads as a number.

Every problem with the file itself is a `FileFormatError`: one line naming the file, the
line and the field, and the same as a code with parameters (`error.problem`, a
`ledger.file_errors.FileProblem`) that a page says in Vietnamese or English; a cell that
could be a citizen id is never quoted. A problem with one event inside a good file is not a
file error: it keeps its rejection code (RULES.md §1).

Writing (`spreadsheet_cell`, `write_private`): CSV meant to be opened by people escapes
text that a spreadsheet would run as a formula; backups, exports and reports hold
personal data and are created owner-only (0600).
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from ledger.file_errors import FileProblem, header_problem

BOM = "\ufeff"
BOM_BYTES = BOM.encode("utf-8")
MAX_CELL_CHARS = 131_072  # csv.field_size_limit()'s default: 128 KiB, far beyond any real cell
MAX_LINE_BYTES = 4 * 1024 * 1024  # one physical line; a quoted cell may span several
_ASCII_INTEGER = re.compile(r"-?[0-9]{1,19}")
_ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")
# OWASP "CSV injection": a cell starting with one of these is run as a formula by spreadsheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class FileFormatError(ValueError):
    """A file that cannot be read as what it claims to be; `str()` is one line: file, line, field, reason.

    `problem` is the same as a code and parameters (`text(lang)` says it in vi or en); `reason`
    is its English sentence after the line ('cell: longer than 131,072 characters').
    """

    def __init__(self, source: str | Path, problem: FileProblem) -> None:
        self.source, self.problem = str(source), problem
        self.line, self.field, self.reason = problem.line, problem.field, problem.message("en")
        super().__init__(self.text("en"))

    def text(self, lang: str) -> str:
        """'tiers.csv: dòng 3: một ô dài hơn 131.072 ký tự' (vi), or as `str()` (en)."""
        return f"{self.source}: {self.problem.text(lang)}"

    def __reduce__(self):  # pickled whole: it crosses from the process that reads a file (ledger.pipeline)
        return type(self), (self.source, self.problem), self.__dict__


def ascii_integer(text: str) -> int | None:
    """`text` as an integer if it is ASCII digits (optionally `-`), else None (never `１０００`)."""
    return int(text) if _ASCII_INTEGER.fullmatch(text) else None


def is_ascii_decimal(text: str) -> bool:
    """A decimal number written with ASCII digits only (what `Decimal()` may then read)."""
    return _ASCII_DECIMAL.fullmatch(text) is not None


def read_text(path: str | Path) -> str:
    """A whole small text file (YAML mappings, scenarios): UTF-8, BOM stripped; FileFormatError names the line."""
    data = Path(path).read_bytes()
    return "".join(text_lines(iter(data.splitlines(keepends=True)), path))


def text_lines(raw_lines: Iterable[bytes], source: str | Path) -> Iterator[str]:
    """Decode lines strictly as UTF-8, the first without its BOM; a bad byte is named with its line."""
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1 and raw.startswith(BOM_BYTES):
            raw = raw[len(BOM_BYTES):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FileFormatError(source, FileProblem("not_utf8", number, "encoding", {
                "byte": raw[error.start], "column": error.start + 1})) from None


def binary_lines(stream: IO[bytes], source: str | Path) -> Iterator[bytes]:
    """Physical lines of a binary stream, each at most MAX_LINE_BYTES (memory stays bounded)."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise FileFormatError(source, FileProblem("line_too_long", number, "line", {"limit": MAX_LINE_BYTES}))
        yield raw


class CsvFile:
    """A CSV file read through its header: `columns` checked, then `(line, row)` with rows in `columns` order.

    `columns` are the expected names; `required` (default: all of them) must be present, and a
    column not in `columns` is refused unless `allow_unknown`. Rows come back as lists in the
    header's order (`header`) — `aligned` re-orders a row to `columns`.
    """

    def __init__(self, stream: IO[bytes], source: str | Path, columns: Sequence[str], *,
                 required: Sequence[str] | None = None, allow_unknown: bool = False) -> None:
        self.source = str(source)
        self._lines = 0
        self._reader = csv.reader(self._count(text_lines(binary_lines(stream, source), source)))
        first = self._next()
        self.header = check_header(self.source, first, columns, required=required, allow_unknown=allow_unknown)
        self.positions = [self.header.index(column) if column in self.header else None for column in columns]

    def _count(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            self._lines += 1
            yield line

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader, None)
        except csv.Error as error:
            reason = str(error)  # the csv module's own words: they quote no cell
            if "field larger than field limit" in reason:
                raise FileFormatError(self.source, FileProblem("cell_too_long", self._lines, "cell",
                                                               {"limit": MAX_CELL_CHARS})) from None
            code = "csv_newline" if "new-line character" in reason else "csv_syntax"
            raise FileFormatError(self.source, FileProblem(code, self._lines, "csv", {"detail": reason})) from None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """`(physical line where the row ends, cells)`; blank rows are skipped."""
        while (row := self._next()) is not None:
            if row and any(cell.strip() for cell in row):
                yield self._lines, row

    def aligned(self, row: list[str]) -> list[str | None]:
        """The row's cells in `columns` order (None for a column the header does not have)."""
        return [None if position is None or position >= len(row) else row[position] for position in self.positions]


def check_header(source: str, first: list[str] | None, columns: Sequence[str], *,
                 required: Sequence[str] | None = None, allow_unknown: bool = False) -> list[str]:
    """The header's names (stripped), or FileFormatError naming missing, unknown and repeated columns.

    An unknown name that could be a citizen id (a file without its header: the first row is data)
    is named by its kind only, never quoted (`ledger.file_errors.cell`).
    """
    if first is None:
        raise FileFormatError(source, FileProblem("header_empty", 1, "header", {"expected": ",".join(columns)}))
    names = [cell.strip() for cell in first]
    missing = [column for column in (columns if required is None else required) if column not in names]
    unknown = [name for name in names if name not in columns] if not allow_unknown else []
    repeated = sorted({name for name in names if names.count(name) > 1})
    if missing or unknown or repeated:
        raise FileFormatError(source, header_problem(columns, missing, unknown, repeated))
    return names


# -- writing ------------------------------------------------------------------------------------

def spreadsheet_cell(value: object) -> object:
    """A cell for CSV that people open: text starting with = + - @ tab or CR gets a leading `'`.

    Only text is escaped. Numbers (ints, the VND amounts, negative ones included) are written
    as they are, so a `-150000` stays a number for the spreadsheet and for every program
    that reads the file; a text cell such as a bank memo `=HYPERLINK(…)` or `-1+1` becomes
    `'=HYPERLINK(…)`, which a spreadsheet shows as text and never runs.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[object]) -> list[object]:
    return [spreadsheet_cell(value) for value in values]


class SpreadsheetWriter:
    """`csv.writer` (lines end in `\\n`) whose every row goes through `spreadsheet_cell`."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow(spreadsheet_row(row))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def private_open(path: str | Path, mode: str = "w", *, exclusive: bool = False, **options):
    """Open for writing with owner-only permissions (0600) from the first byte.

    The file is created 0600 (an existing file is switched to 0600 before anything is written):
    backups, exports and reports hold personal data, and the default umask makes them 0644.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        return os.fdopen(descriptor, mode, **options)
    except BaseException:
        os.close(descriptor)
        raise


def write_private(path: str | Path, data: bytes | str, *, exclusive: bool = False) -> None:
    """Write a whole file owner-only (0600)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with private_open(path, "wb", exclusive=exclusive) as out:
        out.write(data)

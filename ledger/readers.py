"""Input files to `(line, item)` pairs: NDJSON (or stdin), CSV and Parquet, same field names.

NDJSON lines that are not JSON become MALFORMED (code 0); blank lines are skipped but
keep their number, so `line` is always the line of the file. CSV and Parquet rows are
numbered from 1 (the header is not a row). In CSV every cell is text, so `amount`
is read as an integer when it is one in ASCII digits (`１０００` stays text and the
event is `invalid_amount`), and an empty cell means the field is absent.
Everything streams: memory stays flat in the size of the file.

A CSV or Parquet file must start with its header (`ledger.files`): without a mapping its
columns are event fields and include every required one (RULES.md §1); with a mapping,
the columns after renaming, the constants and the generated ids must give every required
field. A file that fails this, a line that is not UTF-8 or a cell over 128 KiB is a
`FileFormatError` (one line: file, line, field); a UTF-8 byte-order mark is dropped.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

import orjson

from ledger.events import REQUIRED_FIELDS
from ledger.file_errors import FileProblem
from ledger.files import BOM_BYTES, CsvFile, FileFormatError, ascii_integer, check_header
from ledger.ingest import MALFORMED
from ledger.mapping import EVENT_FIELDS, apply_mapping, header_problems

if TYPE_CHECKING:
    from ledger.mapping import Mapping

INTEGER_FIELDS = ("amount",)


NDJSON_BLOCK_BYTES = 1 << 20  # lines are read and parsed about this many bytes at a time


def read_ndjson(stream: IO[bytes]) -> Iterator[tuple[int, object]]:
    """`(line number, parsed JSON or MALFORMED)` per non-blank line.

    Lines are read a block at a time and parsed by one `map` of `orjson.loads`. A block holding
    a line that is not JSON (or a blank one) is halved until the halves parse, so only the few
    lines around a bad one are parsed one by one (the same items either way).
    """
    number = 1
    first = True
    while True:
        lines = stream.readlines(NDJSON_BLOCK_BYTES)
        if not lines:
            return
        if first:
            first = False
            if lines[0].startswith(BOM_BYTES):
                lines[0] = lines[0][len(BOM_BYTES):]
        yield from _parsed(lines, number)
        number += len(lines)


_LINE_BY_LINE = 16  # a failing run of lines this short is parsed one line at a time


def _parsed(lines: list[bytes], number: int) -> list[tuple[int, object]]:
    try:
        return list(zip(range(number, number + len(lines)), map(orjson.loads, lines)))
    except orjson.JSONDecodeError:
        if len(lines) > _LINE_BY_LINE:
            half = len(lines) // 2
            return _parsed(lines[:half], number) + _parsed(lines[half:], number + half)
    parsed: list[tuple[int, object]] = []
    for number, raw in enumerate(lines, start=number):
        if not raw.strip():
            continue
        try:
            parsed.append((number, orjson.loads(raw)))
        except orjson.JSONDecodeError:
            parsed.append((number, MALFORMED))
    return parsed


def read_csv(stream: IO[bytes], source: str = "events.csv", mapping: "Mapping | None" = None
             ) -> Iterator[tuple[int, object]]:
    """Rows of an events CSV (binary stream) as items; the header is checked before any row is read."""
    file = CsvFile(stream, source, EVENT_FIELDS, required=(), allow_unknown=True)
    _check_columns(source, file.header, mapping)
    header = file.header
    width = len(header)
    for number, (line, row) in enumerate(file, start=1):
        if len(row) > width:  # a row, not the file, is broken: that event is malformed (code 0)
            yield number, MALFORMED
            continue
        item: dict[str, object] = {}
        for key, value in zip(header, row):
            if value == "":
                continue
            if key in INTEGER_FIELDS and (integer := ascii_integer(value)) is not None:
                item[key] = integer
            else:
                item[key] = value
        yield number, item


def _check_columns(source: str, header: list[str], mapping: "Mapping | None") -> None:
    if mapping is None:
        check_header(source, header, EVENT_FIELDS, required=REQUIRED_FIELDS)
        return
    problems = header_problems(mapping, header, REQUIRED_FIELDS)
    if problems:
        raise FileFormatError(source, FileProblem("header_mapping", 1, "header", {"detail": "; ".join(problems)}))


def read_parquet(path: Path, batch_rows: int = 65_536, mapping: "Mapping | None" = None
                 ) -> Iterator[tuple[int, object]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        _check_columns(str(path), list(parquet.schema_arrow.names), mapping)
        number = 0
        for batch in parquet.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                number += 1
                yield number, {key: value for key, value in row.items() if value is not None}
    except (pa.ArrowException, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FileFormatError(path, FileProblem("parquet_unreadable", None, "parquet", {"detail": reason})) from None


def read_events(path: str, mapping: "Mapping | None" = None) -> Iterator[tuple[int, object]]:
    """Pick the reader by name: `-` is NDJSON on stdin; `.csv`, `.parquet`, else NDJSON.

    With `mapping` (a platform's own export, `ledger.mapping`), the header is checked against
    what the mapping makes of it and each row is mapped as it is read.
    """
    items = _read(path, mapping)
    return apply_mapping(mapping, items) if mapping is not None else items


def _read(path: str, mapping: "Mapping | None") -> Iterator[tuple[int, object]]:
    if path == "-":
        yield from read_ndjson(sys.stdin.buffer)
        return
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        with file.open("rb") as stream:
            yield from read_csv(stream, path, mapping)
    elif suffix in (".parquet", ".pq"):
        yield from read_parquet(file, mapping=mapping)
    else:
        with file.open("rb", buffering=1 << 20) as stream:
            yield from read_ndjson(stream)

"""Input files to `(line, item)` pairs: NDJSON (or stdin), CSV and Parquet, same field names.

NDJSON lines that are not JSON become MALFORMED (code 0); blank lines are skipped but
keep their number, so `line` is always the line of the file. CSV and Parquet rows are
numbered from 1 (the header is not a row). In CSV every cell is text, so `amount`
is read as an integer when it is one, and an empty cell means the field is absent.
Everything streams: memory stays flat in the size of the file.
"""
from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path
from typing import IO, Iterator

import orjson

from ledger.ingest import MALFORMED

_INTEGER = re.compile(r"-?[0-9]{1,19}")
INTEGER_FIELDS = ("amount",)


def read_ndjson(stream: IO[bytes]) -> Iterator[tuple[int, object]]:
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError:
            yield number, MALFORMED


def read_csv(stream: IO[str]) -> Iterator[tuple[int, object]]:
    for number, row in enumerate(csv.DictReader(stream), start=1):
        item: dict[str, object] = {}
        for key, value in row.items():
            if key is None or value is None or value == "":
                continue
            if key in INTEGER_FIELDS and _INTEGER.fullmatch(value):
                item[key] = int(value)
            else:
                item[key] = value
        yield number, item


def read_parquet(path: Path, batch_rows: int = 65_536) -> Iterator[tuple[int, object]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            number += 1
            yield number, {key: value for key, value in row.items() if value is not None}


def read_events(path: str) -> Iterator[tuple[int, object]]:
    """Pick the reader by name: `-` is NDJSON on stdin; `.csv`, `.parquet`, else NDJSON."""
    if path == "-":
        yield from read_ndjson(sys.stdin.buffer)
        return
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        with file.open(newline="", encoding="utf-8") as stream:
            yield from read_csv(stream)
    elif suffix in (".parquet", ".pq"):
        yield from read_parquet(file)
    else:
        with file.open("rb") as stream:
            yield from read_ndjson(io.BufferedReader(stream, buffer_size=1 << 20))

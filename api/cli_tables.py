"""The CLI's tables: fit 80 columns, and never cut an identifier.

Rich shrinks a table that is wider than the terminal by cutting cells with `…`, or by
folding them: a bill reference cut to `AS202601P0…` or split over two lines cannot be
pasted into a bank transfer or `ansinh account`, and a column squeezed to one character
prints its header one letter a line. So each column says what it holds:
- `ID`: a reference, bank reference, platform, date or month — kept on one line, whole;
- `NUMBER`: right-aligned, likewise (a number split over two lines misreads);
- `TEXT` (the default): wraps onto more lines when the table needs the room, between
  words only (a reference inside the text stays whole).

Every column has a floor it is never narrowed below: its longest value for `ID` and
`NUMBER`, its longest word for `TEXT`, and its header's longest word (a header wraps
between words, never inside one). The room left within 80 columns goes to the text
columns first, then to headers that would otherwise wrap. When the floors themselves
do not fit 80 columns (a 64-character bank reference beside a 32-character interest
label), the table is laid out as records instead: one `header  value` line per cell,
a rule between rows, identifiers whole. The table's width is fixed here, so a narrower
terminal wraps lines rather than letting Rich cut cells. Borders are light (a rule under
the header, no vertical lines) to leave the columns the room.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from rich import box
from rich.cells import cell_len
from rich.table import Table

ID, NUMBER, TEXT = "id", "number", "text"
WIDTH = 80  # what a table is laid out for; a wider terminal shows it as is
GAP = 2  # between two columns (no borders): a separator and one space of padding


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def column_widths(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]]) -> list[int] | None:
    """The width of each column within WIDTH, none below its floor; None when the floors do not fit."""
    natural, floors = [], []
    for index, (header, kind) in enumerate(columns):
        cells = [row[index] for row in rows]
        longest = max((cell_len(cell) for cell in cells), default=0)
        natural.append(max(cell_len(header), longest))
        words = max((_longest_word(cell) for cell in cells), default=0) if kind == TEXT else longest
        floors.append(max(1, words, _longest_word(header)))
    gaps = GAP * (len(columns) - 1)
    if sum(natural) + gaps <= WIDTH:
        return natural
    if sum(floors) + gaps > WIDTH:
        return None
    widths = list(floors)
    spare = WIDTH - sum(widths) - gaps
    # Text columns first, evenly (water filling: a column that needs little gives the rest back) …
    texts = [index for index, (_header, kind) in enumerate(columns) if kind == TEXT]
    while spare > 0:
        hungry = [index for index in texts if widths[index] < natural[index]]
        if not hungry:
            break
        share = max(1, spare // len(hungry))
        for index in hungry:
            grow = min(share, natural[index] - widths[index], spare)
            widths[index] += grow
            spare -= grow
    # … then headers of more than one word, so they take one line where there is room.
    for index in range(len(columns)):
        grow = min(spare, natural[index] - widths[index])
        widths[index] += grow
        spare -= grow
    return widths


def _records(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]],
             caption: str | None) -> Table:
    """The rows as records, `header  value` a line, when no column layout fits 80 columns."""
    label = max(cell_len(header) for header, _kind in columns)
    value = max(WIDTH - label - GAP, max((cell_len(cell) for row in rows for cell in row), default=1))
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True, show_header=False, width=label + value + GAP)
    table.add_column(width=label, no_wrap=True, style="bold")
    table.add_column(width=value, overflow="fold")
    for number, row in enumerate(rows):
        for position, ((header, _kind), cell) in enumerate(zip(columns, row)):
            table.add_row(header, cell, end_section=position == len(columns) - 1 and number < len(rows) - 1)
    return table


def cli_table(title: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]],
              caption: str | None = None) -> Table:
    """A table of `rows` under `columns` ((header, ID | NUMBER | TEXT) pairs); every cell is text."""
    rows = [list(row) for row in rows]
    assert all(len(row) == len(columns) for row in rows), "every row has one cell per column"
    assert all(kind in (ID, NUMBER, TEXT) for _header, kind in columns)
    widths = column_widths(columns, rows)
    if widths is None:
        return _records(title, columns, rows, caption)
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True, width=sum(widths) + GAP * (len(columns) - 1))
    for (header, kind), width in zip(columns, widths):
        table.add_column(header, justify="right" if kind == NUMBER else "left", overflow="fold", width=width)
    for row in rows:
        table.add_row(*row)
    return table

"""The CLI's tables: fit 80 columns, and never cut an identifier.

Rich shrinks a table that is wider than the terminal by cutting cells with `…`; a bill
reference cut to `AS202601P0…` cannot be pasted into a bank transfer or `ansinh account`.
So each column says what it holds:
- `ID`: a reference, bank reference, platform, date or month — kept on one line, whole;
- `NUMBER`: right-aligned, likewise (a number split over two lines misreads);
- `TEXT` (the default): wraps onto more lines when the table needs the room.
Headers wrap too. Borders are light (a rule under the header, no vertical lines) to leave
the columns the room.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from rich import box
from rich.cells import cell_len
from rich.table import Table

ID, NUMBER, TEXT = "id", "number", "text"
WIDTH = 80  # what a table is laid out for; a wider terminal shows it as is
GAP = 2  # between two columns (no borders)


def cli_table(title: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]],
              caption: str | None = None) -> Table:
    """A table of `rows` under `columns` ((header, ID | NUMBER | TEXT) pairs); every cell is text."""
    rows = [list(row) for row in rows]
    assert all(len(row) == len(columns) for row in rows), "every row has one cell per column"
    assert all(kind in (ID, NUMBER, TEXT) for _header, kind in columns)
    longest = [max((cell_len(row[index]) for row in rows), default=0) for index in range(len(columns))]
    natural = [max(cell_len(header), width) for (header, _kind), width in zip(columns, longest)]
    widths = list(natural)
    if sum(natural) + GAP * (len(columns) - 1) > WIDTH:
        # Ids and numbers keep their longest value (their headers wrap if longer); the text
        # columns share what is left, each at least 6 wide.
        fixed = [width if kind != TEXT else 0 for (_header, kind), width in zip(columns, longest)]
        texts = [index for index, (_header, kind) in enumerate(columns) if kind == TEXT]
        room = WIDTH - sum(fixed) - GAP * (len(columns) - 1)
        widths = [max(width, 1) if kind != TEXT else max(6, room // max(len(texts), 1))
                  for (_header, kind), width in zip(columns, longest)]
        spare = WIDTH - sum(widths) - GAP * (len(columns) - 1)
        for index, (_header, kind) in enumerate(columns):  # room left: give headers back their words
            grow = min(max(spare, 0), natural[index] - widths[index]) if kind != TEXT else 0
            widths[index] += grow
            spare -= grow
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for (header, kind), width in zip(columns, widths):
        table.add_column(header, justify="right" if kind == NUMBER else "left", overflow="fold", width=width)
    for row in rows:
        table.add_row(*row)
    return table

"""Tables that fit the terminal: one line per row, no word split across lines.

Each column says how much it matters (``priority``: 0 always shown, higher numbers
dropped first when the terminal is narrow) and whether it is the one free-text column
(``flex``) that takes the remaining width and ends in an ellipsis when it is cut.
Headers wrap at spaces only; cells never wrap. ``wide=True`` keeps every column at its
full width, however wide the line gets (like ``kubectl -o wide``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

Justify = Literal["left", "right", "center"]


@dataclass(frozen=True)
class Col:
    """One column of a fitted table."""

    header: str
    priority: int = 0
    flex: bool = False
    min_width: int = 12
    justify: Justify = "left"


def _overhead(columns: int) -> int:
    # The default box: an edge on each side, a rule between columns, one space of
    # padding on either side of every cell.
    return 3 * columns + 1


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def fit_columns(
    cols: Sequence[Col], rows: Sequence[Sequence[Text]], *, width: int, wide: bool = False
) -> tuple[list[int], list[int]]:
    """The indexes of the columns shown and their widths, for a terminal ``width``."""
    natural = [
        max([len(col.header), *(row[i].cell_len for row in rows)]) for i, col in enumerate(cols)
    ]
    if wide:
        return list(range(len(cols))), natural
    least = [
        max(_longest_word(col.header), min(col.min_width, natural[i]))
        if col.flex
        else max(_longest_word(col.header), *(row[i].cell_len for row in rows), 1)
        for i, col in enumerate(cols)
    ]
    keep = list(range(len(cols)))

    def needed(idx: list[int]) -> int:
        return sum(least[i] for i in idx) + _overhead(len(idx))

    while needed(keep) > width and any(cols[i].priority > 0 for i in keep):
        worst = max(keep, key=lambda i: (cols[i].priority, i))
        keep.remove(worst)
    widths = {i: least[i] for i in keep}
    spare = width - needed(keep)
    # The free text first (cut text hides more than a header on two lines), then the
    # fixed columns' headers on one line.
    for i in sorted(keep, key=lambda i: (not cols[i].flex, cols[i].priority, i)):
        if spare <= 0:
            break
        grow = min(spare, natural[i] - widths[i])
        if grow > 0:
            widths[i] += grow
            spare -= grow
    return keep, [widths[i] for i in keep]


def _cells(rows: Sequence[Sequence[str | Text]]) -> list[list[Text]]:
    return [[c if isinstance(c, Text) else Text.from_markup(c) for c in row] for row in rows]


def _build(
    cols: Sequence[Col],
    cells: Sequence[Sequence[Text]],
    keep: Sequence[int],
    widths: Sequence[int],
    *,
    title: str | None,
    title_justify: Justify = "center",
) -> Table:
    table = Table(title=title, title_justify=title_justify)
    for i, w in zip(keep, widths, strict=True):
        col = cols[i]
        table.add_column(col.header, width=w, justify=col.justify, overflow="fold")
    for row in cells:
        shown = []
        for i in keep:
            cell = row[i].copy()
            cell.no_wrap = True
            cell.overflow = "ellipsis"
            shown.append(cell)
        table.add_row(*shown)
    return table


def fitted_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[str | Text]],
    *,
    width: int,
    wide: bool = False,
    title: str | None = None,
) -> Table:
    """A rich Table of ``rows`` (markup strings or Text) that fits ``width`` columns."""
    cells = _cells(rows)
    keep, widths = fit_columns(cols, cells, width=width, wide=wide)
    return _build(cols, cells, keep, widths, title=title)


def _wide_console(console: Console, tables: Sequence[Table]) -> Console:
    options = console.options.update(width=10_000)
    needed = max(console.measure(t, options=options).maximum for t in tables)
    if needed <= console.width:
        return console
    # Wider than the terminal on purpose: let the terminal fold the lines.
    return Console(file=console.file, width=needed, color_system=console.color_system or None)


def print_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[str | Text]],
    *,
    wide: bool = False,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a fitted table on ``console`` (stdout by default)."""
    console = console or Console()
    table = fitted_table(cols, rows, width=console.width, wide=wide, title=title)
    if wide:
        console = _wide_console(console, [table])
    console.print(table)


def print_groups(
    cols: Sequence[Col],
    groups: Sequence[tuple[str, Sequence[Sequence[str | Text]]]],
    *,
    wide: bool = False,
    console: Console | None = None,
) -> None:
    """One table per group (its label as the title), all with the same columns and
    widths, fitted on every row together."""
    console = console or Console()
    parts = [(label, _cells(rows)) for label, rows in groups]
    everything = [row for _label, cells in parts for row in cells]
    keep, widths = fit_columns(cols, everything, width=console.width, wide=wide)
    tables = [
        _build(cols, cells, keep, widths, title=label, title_justify="left")
        for label, cells in parts
    ]
    if wide and tables:
        console = _wide_console(console, tables)
    for table in tables:
        console.print(table)

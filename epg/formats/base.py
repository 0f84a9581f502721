"""The schedule reader interface: one module per file format, all yielding ScheduleRows.

Readers only turn bytes into rows of cells keyed by canonical column; they do
not judge the values (validation does, so every problem is reported at once).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from epg.errors import ScheduleFormatError
from epg.schedule import COLUMNS, REQUIRED_COLUMNS, CellValue, ScheduleRow, ScheduleSource

_HEADER_LOOKUP = {
    alias.casefold(): column for column, aliases in COLUMNS.items() for alias in aliases
}


class ScheduleReader(ABC):
    """Reads one schedule file format. Subclasses set `format` and `suffixes`."""

    format: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def read(self, path: Path) -> ScheduleSource:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ScheduleFormatError(f"{path}: no such schedule file") from None
        except IsADirectoryError:
            raise ScheduleFormatError(f"{path}: is a directory, not a schedule file") from None
        rows = tuple(self.rows(data, path.name))
        return ScheduleSource(
            name=path.name,
            sha256=hashlib.sha256(data).hexdigest(),
            format=self.format,
            rows=rows,
        )

    @abstractmethod
    def rows(self, data: bytes, name: str) -> Iterable[ScheduleRow]:
        """Parse the file's bytes into rows; raise ScheduleFormatError if unreadable."""


def column_for(header: object) -> str | None:
    """The canonical column a header cell (or JSON key) names, or None if we ignore it."""
    text = "" if header is None else str(header).strip().lstrip("\ufeff")
    return _HEADER_LOOKUP.get(text.casefold())


def header_columns(headers: Sequence[object], name: str) -> list[str | None]:
    """Map header cells to canonical columns (None for columns we ignore)."""
    mapped: list[str | None] = []
    seen: set[str] = set()
    for cell in headers:
        column = column_for(cell)
        if column is not None:
            if column in seen:
                raise ScheduleFormatError(
                    f"{name}: header has column '{column}' twice: keep one of them"
                )
            seen.add(column)
        mapped.append(column)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        expected = ", ".join(f"{c} ({COLUMNS[c][1]})" for c in COLUMNS)
        raise ScheduleFormatError(
            f"{name}: header row lacks {', '.join(missing)}: the first row must name the "
            f"columns: {expected}"
        )
    return mapped


def table_rows(
    header: Sequence[object], body: Iterable[Sequence[CellValue]], name: str, first_row: int = 2
) -> Iterable[ScheduleRow]:
    """Rows of a header + body table; blank rows are skipped (numbering keeps counting)."""
    columns = header_columns(header, name)
    for number, values in enumerate(body, start=first_row):
        cells: dict[str, CellValue] = {}
        for column, value in zip(columns, values, strict=False):
            if column is None:
                continue
            if isinstance(value, str):
                value = value.strip() or None
            cells[column] = value
        if all(v is None for v in cells.values()):
            continue
        yield ScheduleRow(where=f"row {number}", row=number, cells=cells)

"""The schedule reader interface: one module per file format, all yielding ScheduleRows.

Readers only turn bytes into rows of cells keyed by canonical column; they do
not judge the values (validation does, so every problem is reported at once).
They do refuse what no schedule is: a file that is not a regular file, too many
bytes, rows or columns, a row cut short, a cell no spreadsheet would hold, an
empty week. Every limit is far above a real week and far below what would take
seconds or hundreds of MB to read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from epg.cells import shown
from epg.errors import ScheduleFormatError
from epg.schedule import COLUMNS, REQUIRED_COLUMNS, CellValue, ScheduleRow, ScheduleSource

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ROWS = 10_000  # 13 channels x 7 days x 100 events is 9 100
MAX_COLUMNS = 64
MAX_CELL_CHARS = 256  # an id, a time or a word: notes columns are ignored, not bounded

_HEADER_LOOKUP = {
    alias.casefold(): column for column, aliases in COLUMNS.items() for alias in aliases
}
# NUL breaks PostgreSQL text, a lone surrogate breaks UTF-8 (the database, the console);
# other C0 controls are never typed into a cell. Tab, CR and LF are tolerated (stripped).
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_KIND_OF_FILE = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES.

    Opened non-blocking, then checked with fstat: a FIFO must not hang the load
    waiting for a writer, nor be called missing.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ScheduleFormatError(f"{path}: no such schedule file: check the path") from None
    except IsADirectoryError:
        raise ScheduleFormatError(f"{path}: is a directory, not a schedule file") from None
    except PermissionError:
        raise ScheduleFormatError(
            f"{path}: permission denied: make the file readable for this user"
        ) from None
    except OSError as exc:
        raise ScheduleFormatError(f"{path}: cannot open it ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        for test, kind in _KIND_OF_FILE:
            if test(mode):
                raise ScheduleFormatError(
                    f"{path}: is {kind}, not a regular file: give the schedule file itself"
                )
        if not stat.S_ISREG(mode):
            raise ScheduleFormatError(f"{path}: not a regular file: give the schedule file")
        try:
            data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                raise ScheduleFormatError(f"{path}: is a directory, not a schedule file") from None
            raise ScheduleFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ScheduleFormatError(
            f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, far more than a week's "
            "schedule: split it into smaller files"
        )
    return data


class ScheduleReader(ABC):
    """Reads one schedule file format. Subclasses set `format` and `suffixes`."""

    format: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def read(self, path: Path) -> ScheduleSource:
        data = _read_regular(path)
        rows = tuple(self.rows(data, path.name))
        if not rows:
            raise ScheduleFormatError(
                f"{path.name}: no events: the file holds no schedule rows, and an empty week "
                "is never loaded; add the events (or check that the file is complete)"
            )
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


def cell_value(value: CellValue, name: str, where: str, column: str) -> CellValue:
    """A cell as validation gets it: text stripped (blank is None), refused if unusable."""
    if not isinstance(value, str):
        return value
    if len(value) > MAX_CELL_CHARS:
        raise ScheduleFormatError(
            f"{name}: {where}, column '{column}': {len(value)} characters, and no schedule "
            f"cell needs more than {MAX_CELL_CHARS}: check the row"
        )
    bad = _BAD_CHARS.search(value)
    if bad:
        raise ScheduleFormatError(
            f"{name}: {where}, column '{column}': holds the control or invalid character "
            f"U+{ord(bad[0]):04X} in {shown(value)}: retype the cell"
        )
    return value.strip() or None


def check_row_count(count: int, name: str, where: str) -> None:
    if count > MAX_ROWS:
        raise ScheduleFormatError(
            f"{name}: {where} is past the limit of {MAX_ROWS} rows, far more than a week's "
            "schedule: delete the rows below the schedule, or split it (e.g. one per channel)"
        )


def header_columns(headers: Sequence[object], name: str) -> list[str | None]:
    """Map header cells to canonical columns (None for columns we ignore)."""
    if len(headers) > MAX_COLUMNS:
        headers = headers[:MAX_COLUMNS]  # a schedule's columns come first; notes may follow
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
    """Rows of a header + body table; blank rows are skipped (numbering keeps counting).

    A row with cells that stops before the header's last known column is refused:
    that is how a file cut short (or a lost separator) looks.
    """
    columns = header_columns(header, name)
    width = max(i for i, c in enumerate(columns) if c is not None) + 1
    for number, values in enumerate(body, start=first_row):
        where = f"row {number}"
        check_row_count(number - first_row + 1, name, where)
        if 0 < len(values) < width and any(v not in (None, "") for v in values):
            raise ScheduleFormatError(
                f"{name}: {where} has {len(values)} cells where the header has {width}: the "
                "file looks cut short (or a separator is missing): save the whole file again"
            )
        cells: dict[str, CellValue] = {}
        for column, value in zip(columns, values, strict=False):
            if column is not None:
                cells[column] = cell_value(value, name, where, column)
        if all(v is None for v in cells.values()):
            continue
        yield ScheduleRow(where=where, row=number, cells=cells)

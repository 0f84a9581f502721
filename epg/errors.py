"""Every error the EPG package raises, under core's tree.

SkyclassError (core.errors)
└── EpgError
    ├── CellError            one cell's value cannot be used (validation turns it into a Problem)
    ├── ScheduleFormatError  the schedule file cannot be read at all: encoding, not a table,
    │                        too large, a damaged or unsafe workbook, an empty week
    ├── ScheduleRejected     the file was read but failed validation: carries every problem
    ├── NoScheduleError      nothing is loaded for a channel and day (compile, rollback)
    ├── PartnerError         partner name or key problems (`skyclass epg partners`)
    ├── RundownError         a rundown file is missing, malformed or from another format
    ├── StorageFullError     a disk is full (the database's, or an output file's): exit 1
    ├── XmltvError           XMLTV output failed its own validation (a bug of ours: exit 1)
    └── epg.si.SiError       the DVB SI encoder's own tree (epg/si/errors.py)

All but StorageFullError and XmltvError are also core.errors.BadInputError: the
CLI exits with code 2 and prints the message, which says where (file, row, column)
and what to do. A refusal never changes the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import BadInputError, SkyclassError

SHOWN_PROBLEMS = 20  # a refusal prints this many problems; `--json` lists them all


class EpgError(SkyclassError):
    """Root of the EPG package's errors."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One finding about one cell of a schedule file (an error or a warning)."""

    where: str  # "row 7" (CSV/XLSX, spreadsheet numbering) or "events[6]" (JSON)
    row: int  # spreadsheet row number, or the 0-based JSON event index
    column: str  # the canonical column name, e.g. "asset"
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        return f"{self.where}, column '{self.column}': {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "where": self.where,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


class CellError(EpgError, BadInputError):
    """A cell's value cannot be used; the message says what to write instead."""


class ScheduleFormatError(EpgError, BadInputError):
    """The file is not a readable schedule (wrong encoding, missing header, bad JSON)."""


class ScheduleRejected(EpgError, BadInputError):
    """Validation found errors: nothing was stored. Lists every problem.

    The message shows one line for a single error, else a summary line and the
    first SHOWN_PROBLEMS errors with a count of the rest; `as_json` has them all.
    """

    def __init__(
        self, source: str, errors: Sequence[Problem], warnings: Sequence[Problem] = ()
    ) -> None:
        self.source = source
        self.errors = tuple(errors)
        self.warnings = tuple(warnings)
        super().__init__(self._message())

    def _message(self) -> str:
        if len(self.errors) == 1:
            return (
                f"{self.source}: {self.errors[0]} (schedule refused; nothing was changed: "
                "fix it and load the file again)"
            )
        shown = self.errors[:SHOWN_PROBLEMS]
        lines = [
            f"{self.source}: schedule refused with {len(self.errors)} errors; nothing was "
            "changed. Fix them and load the file again:",
            *(f"  {self.source}: {p}" for p in shown),
        ]
        rest = len(self.errors) - len(shown)
        if rest:
            lines.append(f"  … and {rest} more error(s): `--json` lists every one")
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "ok": False,
            "errors": [p.as_json() for p in self.errors],
            "warnings": [p.as_json() for p in self.warnings],
        }


class NoScheduleError(EpgError, BadInputError):
    """No schedule version exists for the channel and day asked about."""


class PartnerError(EpgError, BadInputError):
    """A partner (省级台) name or API key problem."""


class RundownError(EpgError, BadInputError):
    """A rundown file cannot be used: missing, malformed or another format's."""


class StorageFullError(EpgError):
    """A disk is full: a database transaction was rolled back, or an output is incomplete."""


class XmltvError(EpgError):
    """Our XMLTV output broke the schema or the validator rules: a bug, not operator input."""

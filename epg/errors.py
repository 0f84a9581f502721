"""The EPG package's errors, under core's tree.

EpgError
├── ScheduleFormatError   the schedule file cannot be read at all (encoding, not a table)
├── ScheduleRejected      the file was read but failed validation: carries every problem
├── NoScheduleError       nothing is loaded for a channel and day (compile, rollback)
├── PartnerError          partner name or key problems (`skyclass epg partners`)
└── XmltvError            XMLTV output failed its own validation (a bug of ours: exit 1)

Every message says where (file, row, column) and what to do; the CLI maps the
BadInputError ones to exit code 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import BadInputError, SkyclassError


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


class ScheduleFormatError(EpgError, BadInputError):
    """The file is not a readable schedule (wrong encoding, missing header, bad JSON)."""


class ScheduleRejected(EpgError, BadInputError):
    """Validation found errors: nothing was stored. Lists every problem."""

    def __init__(
        self, source: str, errors: Sequence[Problem], warnings: Sequence[Problem] = ()
    ) -> None:
        self.source = source
        self.errors = tuple(errors)
        self.warnings = tuple(warnings)
        lines = "\n".join(f"  {source}: {p}" for p in self.errors)
        super().__init__(
            f"{source}: schedule refused with {len(self.errors)} error(s); nothing was "
            f"changed. Fix them and load the file again:\n{lines}"
        )

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


class XmltvError(EpgError):
    """Our XMLTV output broke the DTD or the validator rules: a bug, not operator input."""

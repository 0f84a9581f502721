"""Every exception grading raises, in one tree.

SkyclassError
└── GradingError
    └── GradingInputError           (BadInputError: exit 2)
        ├── UnknownGradeError       not one of 一年级 … 高三 / 1–12
        └── UnknownSubjectError     not a subject of that band
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class GradingError(SkyclassError):
    """Grading could not answer."""


class GradingInputError(GradingError, BadInputError):
    """A grade, band or subject the operator gave is wrong."""


class UnknownGradeError(GradingInputError):
    """Not a grade: use 1–12 or 一年级 … 高三."""


class UnknownSubjectError(GradingInputError):
    """Not a subject (of that band)."""

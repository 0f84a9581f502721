"""Every exception compliance raises, in one tree.

SkyclassError
└── ComplianceError            an audit, verification or export could not be done
    ├── AsRunTampered          (exit 1) the as-run fails verification: names the first bad record
    └── ComplianceInputError   (BadInputError: exit 2) unknown channel, inverted dates, bad file
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class ComplianceError(SkyclassError):
    """An audit, verification or export could not be done."""


class AsRunTampered(ComplianceError):
    """The as-run was changed after it was written (or its guard was removed)."""


class ComplianceInputError(ComplianceError, BadInputError):
    """What the compliance officer asked for is impossible: say what and how to fix it."""

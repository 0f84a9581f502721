"""Every exception compliance raises, in one tree.

SkyclassError
└── ComplianceError            an audit, verification or export could not be done
    └── ComplianceInputError   (BadInputError: exit 2) unknown channel, inverted dates, bad file
"""

from __future__ import annotations

from core.errors import BadInputError, SkyclassError


class ComplianceError(SkyclassError):
    """An audit, verification or export could not be done."""


class ComplianceInputError(ComplianceError, BadInputError):
    """What the compliance officer asked for is impossible: say what and how to fix it."""

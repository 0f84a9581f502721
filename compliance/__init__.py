"""Compliance (安全播出与稽核): proving what aired.

It sits on top of the data flow: it reads the published schedules and guides
(``epg``), the as-run that playout writes (``playout.asrun``), the asset library
(``ingest``) and the transport stream itself (``mpegts``), and nothing below it
imports compliance.
"""

from compliance.errors import ComplianceError, ComplianceInputError

__all__ = ["ComplianceError", "ComplianceInputError"]

"""Compliance (安全播出与稽核): proving what aired.

It sits on top of the data flow: it reads the published schedules and guides
(``epg``), the as-run that playout writes (``playout.asrun``), the asset library
(``ingest``) and the transport stream itself (``mpegts``), and nothing below it
imports compliance.

* ``verify``: the as-run's hash chains (journal and table) and exported heads;
* ``audit`` and ``auditors``: the as-run against the schedule, the ad rules, the
  asset library and the published guides, as ``findings``;
* ``cli``: ``skyclass compliance verify|heads|asrun|audit``.
"""

from compliance.errors import AsRunTampered, ComplianceError, ComplianceInputError
from compliance.findings import Finding, Severity

__all__ = ["AsRunTampered", "ComplianceError", "ComplianceInputError", "Finding", "Severity"]

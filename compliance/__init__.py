"""Compliance: the as-run ledger (what actually aired) and the TS monitor.

Playout imports only ``compliance.ledger`` (ARCHITECTURE.md: playout may import
compliance, ledger only).
"""

from compliance.ledger import AsRunLedger, AsRunOutcome, AsRunRecord, LedgerError

__all__ = ["AsRunLedger", "AsRunOutcome", "AsRunRecord", "LedgerError"]

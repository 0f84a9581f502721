"""Imports every package's ORM rows so Base.metadata is complete for Alembic."""

import compliance.ledger  # noqa: F401  (asrun)
import epg.store  # noqa: F401  (schedule_version, schedule_day, epg_partner)
import ingest.library  # noqa: F401  (asset, asset_review, asset_attachment)
from core.orm import Base

__all__ = ["Base"]

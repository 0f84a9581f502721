"""Imports every package's ORM rows so Base.metadata is complete for Alembic."""

import epg.store  # noqa: F401  (schedule_version, schedule_day, epg_partner)
import ingest.library  # noqa: F401  (asset, asset_review, asset_attachment)
import playout.asrun.store  # noqa: F401  (asrun)
from core.orm import Base

__all__ = ["Base"]

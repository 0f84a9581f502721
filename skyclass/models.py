"""Imports every package's ORM rows so Base.metadata is complete for Alembic."""

import epg.guidelog
import epg.store  # noqa: F401  (schedule_version, schedule_day, epg_partner)
import ingest.library  # noqa: F401  (asset, asset_review, asset_attachment)
import playout.asrun.store  # noqa: F401  (asrun)
import skyclass.web.audit  # (audit_log)
import skyclass.web.sessions  # noqa: F401  (console_user, console_session, console_login_failure)
from core.orm import Base

__all__ = ["Base"]

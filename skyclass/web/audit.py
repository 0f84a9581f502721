"""The audit log: who changed what, and when. Append-only; only this module touches rows.

audit_log   one row per change made through the console, the API or `skyclass users`:
            schedule publish and rollback, review decisions, partner keys, users, logins
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.orm import Base, UtcDateTime

logger = logging.getLogger(__name__)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(256))
    address: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str  # console user name, or "cli:<os user>"
    role: str  # the actor's role then ("" for the shell)
    action: str  # e.g. schedule.publish, asset.review, partner.create, user.add
    target: str  # what it acted on: version number, asset id, partner or user name
    address: str  # client address ("" for the shell)
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "detail": dict(self.detail),
        }


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        at: datetime,
        role: str = "",
        address: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        row = AuditRow(
            at=at,
            actor=actor[:128],
            role=role[:16],
            action=action[:64],
            target=target[:256],
            address=address[:64],
            detail=dict(detail or {}),
        )
        with self._sessions() as session, session.begin():
            session.add(row)
            session.flush()
            entry = _entry(row)
        logger.info("audit: %s %s %s", entry.actor, entry.action, entry.target)
        return entry

    def list(
        self,
        *,
        limit: int = 200,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first."""
        stmt = select(AuditRow)
        if action:
            stmt = stmt.where(AuditRow.action == action)
        if actor:
            stmt = stmt.where(AuditRow.actor == actor)
        with self._sessions() as session:
            rows = session.scalars(stmt.order_by(AuditRow.id.desc()).limit(max(1, limit)))
            return [_entry(r) for r in rows]


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        role=row.role,
        action=row.action,
        target=row.target,
        address=row.address,
        detail=dict(row.detail or {}),
    )

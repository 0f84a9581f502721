"""Login sessions and the failed-login throttle, stored in the database.

console_session         one row per logged-in browser: the SHA-256 of its cookie token
                        (a leaked table holds no working cookie), its CSRF token, expiry
console_login_failure   failed logins by name and address; old rows are pruned

Both live in the database, not in memory, so several server processes (or a
restart) agree on who is logged in and who is locked out.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.orm import Base, UtcDateTime
from skyclass.web.users import MAX_NAME, Role, User, UserRow, user_record

logger = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(hours=12)  # one shift, then log in again


class SessionRow(Base):
    __tablename__ = "console_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_user.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class LoginFailureRow(Base):
    __tablename__ = "console_login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(MAX_NAME), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


@dataclass(frozen=True, kw_only=True)
class ConsoleSession:
    """Who is logged in on this browser, and the token its forms must carry."""

    user: User
    csrf_token: str
    expires_at: datetime

    @property
    def role(self) -> Role:
        return self.user.role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(
        self, sessions: sessionmaker[Session], *, lifetime: timedelta = SESSION_LIFETIME
    ) -> None:
        self._sessions = sessions
        self.lifetime = lifetime

    def open(self, user: User, *, at: datetime, address: str) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie token (stored only hashed) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = at + self.lifetime
        with self._sessions() as session, session.begin():
            session.execute(delete(SessionRow).where(SessionRow.expires_at <= at))
            session.add(
                SessionRow(
                    token_sha256=_digest(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    address=address[:64],
                    created_at=at,
                    expires_at=expires,
                )
            )
        return token, ConsoleSession(user=user, csrf_token=csrf, expires_at=expires)

    def lookup(self, token: str, *, at: datetime) -> ConsoleSession | None:
        if not token or len(token) > 128:
            return None
        with self._sessions() as session:
            found = session.execute(
                select(SessionRow, UserRow)
                .join(UserRow, UserRow.id == SessionRow.user_id)
                .where(SessionRow.token_sha256 == _digest(token))
            ).first()
            if found is None:
                return None
            row, user_row = found
            if row.expires_at <= at:
                return None
            return ConsoleSession(
                user=user_record(user_row), csrf_token=row.csrf_token, expires_at=row.expires_at
            )

    def close(self, token: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(delete(SessionRow).where(SessionRow.token_sha256 == _digest(token)))

    def close_all(self, user: User) -> int:
        """Log a user out everywhere (after a password change)."""
        with self._sessions() as session, session.begin():
            result = session.execute(delete(SessionRow).where(SessionRow.user_id == user.id))
            return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, kw_only=True)
class ThrottlePolicy:
    per_user: int = 5  # failures of one name within the window
    per_address: int = 20  # failures from one address within the window, any names
    window: timedelta = timedelta(minutes=15)


class LoginThrottle:
    """Counts failed logins per name and per address over a sliding window."""

    def __init__(
        self, sessions: sessionmaker[Session], policy: ThrottlePolicy | None = None
    ) -> None:
        self._sessions = sessions
        self.policy = policy or ThrottlePolicy()

    def retry_after(self, username: str, address: str, *, at: datetime) -> timedelta | None:
        """How long this name or address must wait, or None if it may try now."""
        since = at - self.policy.window
        waits: list[timedelta] = []
        with self._sessions() as session:
            for column, value, limit in (
                (LoginFailureRow.username, username, self.policy.per_user),
                (LoginFailureRow.address, address, self.policy.per_address),
            ):
                times = session.scalars(
                    select(LoginFailureRow.at)
                    .where(column == value, LoginFailureRow.at > since)
                    .order_by(LoginFailureRow.at.desc())
                    .limit(limit)
                ).all()
                if len(times) >= limit:
                    # Free again once the oldest of the newest `limit` failures leaves the window.
                    waits.append(times[-1] + self.policy.window - at)
        return max(waits) if waits else None

    def failed(self, username: str, address: str, *, at: datetime) -> None:
        with self._sessions() as session, session.begin():
            session.execute(
                delete(LoginFailureRow).where(LoginFailureRow.at <= at - self.policy.window)
            )
            session.add(LoginFailureRow(username=username[:MAX_NAME], address=address[:64], at=at))
        logger.warning("failed console login for %r from %s", username[:MAX_NAME], address)

    def succeeded(self, username: str) -> None:
        """A good password clears the name's failures (not the address's)."""
        with self._sessions() as session, session.begin():
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.username == username))

    def failures(self, *, at: datetime) -> int:
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(LoginFailureRow)
                    .where(LoginFailureRow.at > at - self.policy.window)
                )
                or 0
            )

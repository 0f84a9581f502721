"""Console users: a name, one role and an argon2 password hash. Only this module touches rows.

console_user   one row per person; the password is stored only as an argon2id hash

Users are managed from the shell (`skyclass users add|passwd|list`), never from a
page: whoever holds the machine decides who may log in.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.orm import Base, UtcDateTime
from skyclass.web.errors import UserError

logger = logging.getLogger(__name__)

MIN_PASSWORD = 8
MAX_NAME = 64


class Role(StrEnum):
    OPERATOR = "operator"  # 播控员: watches the channels, loads schedules
    REVIEWER = "reviewer"  # 审核员: signs lessons off (政治性、科学性、规范性)
    COMPLIANCE = "compliance"  # 合规专员: audits what aired
    ADMIN = "admin"  # 管理员: partner keys, users, the audit log

    @property
    def name_zh(self) -> str:
        return {
            "operator": "播控员",
            "reviewer": "审核员",
            "compliance": "合规专员",
            "admin": "管理员",
        }[self.value]


@dataclass(frozen=True, kw_only=True)
class User:
    id: int
    name: str
    role: Role
    created_at: datetime
    password_changed_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "password_changed_at": self.password_changed_at.isoformat(),
        }


class UserRow(Base):
    __tablename__ = "console_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())


@cache
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, 64 MiB, t=3).
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so both cases take the same time."""
    return _hasher().hash("no such user: constant-time padding")


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {value!r}: use one of {known}") from None


def check_name(name: str) -> str:
    """A login name: 1–64 printable characters without spaces (Chinese names are fine)."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise UserError("a user needs a NAME, e.g. wangfang or 王芳")
    if len(name) > MAX_NAME:
        raise UserError(f"user name {name[:20]!r}… is longer than {MAX_NAME} characters")
    if any(c.isspace() or not c.isprintable() for c in name):
        raise UserError(f"user name {name!r} may not contain spaces or control characters")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise UserError("the password is longer than 1024 characters")
    return password


class UserStore:
    """Repository of console users; returns frozen User records."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, name: str, role: Role, password: str, *, at: datetime) -> User:
        name = check_name(name)
        digest = _hasher().hash(check_password(password))
        try:
            with self._sessions() as session, session.begin():
                if session.scalars(select(UserRow).where(UserRow.name == name)).first():
                    raise UserError(
                        f"user {name!r} already exists: `skyclass users passwd {name}` "
                        "changes the password"
                    )
                row = UserRow(
                    name=name,
                    role=role.value,
                    password_hash=digest,
                    created_at=at,
                    password_changed_at=at,
                )
                session.add(row)
                session.flush()
                user = user_record(row)
        except IntegrityError:
            raise UserError(
                f"user {name!r} was added concurrently: `skyclass users list`"
            ) from None
        logger.info("console user %s added (%s)", name, role.value)
        return user

    def set_password(self, name: str, password: str, *, at: datetime) -> User:
        digest = _hasher().hash(check_password(password))
        with self._sessions() as session, session.begin():
            row = self._row(session, name)
            row.password_hash = digest
            row.password_changed_at = at
            return user_record(row)

    def get(self, name: str) -> User | None:
        with self._sessions() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == name.strip())).first()
            return user_record(row) if row else None

    def by_id(self, user_id: int) -> User | None:
        with self._sessions() as session:
            row = session.get(UserRow, user_id)
            return user_record(row) if row else None

    def list(self) -> list[User]:
        with self._sessions() as session:
            return [user_record(r) for r in session.scalars(select(UserRow).order_by(UserRow.name))]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password matches, else None (same work for unknown names)."""
        with self._sessions() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == name.strip())).first()
            stored = row.password_hash if row else _dummy_hash()
            try:
                _hasher().verify(stored, password)
            except (VerificationError, InvalidHashError):
                return None
            if row is None:
                return None
            user = user_record(row)
            needs_rehash = _hasher().check_needs_rehash(stored)
        if needs_rehash:  # parameters were raised since: upgrade the stored hash now
            with self._sessions() as session, session.begin():
                fresh = session.get(UserRow, user.id)
                if fresh is not None:
                    fresh.password_hash = _hasher().hash(password)
        return user

    def _row(self, session: Session, name: str) -> UserRow:
        row = session.scalars(select(UserRow).where(UserRow.name == name.strip())).first()
        if row is None:
            raise UserError(f"no user {name!r}: `skyclass users list` shows them")
        return row


def user_record(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
    )

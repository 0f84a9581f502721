"""Partners (省级台): provincial broadcasters that pull XMLTV with an API key.

A key is a random token from `secrets`, shown once; only its SHA-256 is stored,
so a leaked database does not leak working keys. Each key sees only its channels.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

KEY_PREFIX = "skc_"


@dataclass(frozen=True, kw_only=True)
class Partner:
    name: str
    channels: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_see(self, channel_id: str) -> bool:
        return self.active and channel_id in self.channels

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "channels": list(self.channels),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def new_key() -> str:
    """A fresh API key: 32 random bytes, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """What the database stores for a key (hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()

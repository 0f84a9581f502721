"""Ad rules of a channel for minors (广告播出规则): categories, the per-channel policy, clock hours.

The same rules hold in three places (schedule validation, the playout engine, the
compliance audit of what aired), so they live here, below all three:

* ``AdCategory``: every ad (and optionally promo) asset gets one at ingest;
* ``MINORS_BANNED``: what may never air on a channel for minors (Advertising Law
  2015 §40: medical, drugs, medical devices, health food, cosmetics, alcohol,
  beauty; the 2021 "双减" notice: tutoring; TV shopping on education channels);
* ``AdPolicy``: a channel's limit of ad minutes in any clock hour (SARFT Order 61:
  at most 12) and its banned categories (the minors' list, plus any it adds);
* ``split_by_clock_hour``: frames of a span in each local clock hour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.timecode import FPS

#: SARFT Order 61 (广播电视广告播出管理办法): commercial ads in any clock hour.
LEGAL_AD_MINUTES_PER_HOUR = 12.0
_FRAME = timedelta(microseconds=1_000_000 // FPS)


class AdCategory(StrEnum):
    """What an ad sells (广告类别), set at ingest with ``--ad-category``."""

    MEDICAL = "medical"  # 医疗
    DRUGS = "drugs"  # 药品
    MEDICAL_DEVICES = "medical_devices"  # 医疗器械
    HEALTH_FOOD = "health_food"  # 保健食品
    COSMETICS = "cosmetics"  # 化妆品
    ALCOHOL = "alcohol"  # 酒类
    BEAUTY = "beauty"  # 美容
    TUTORING = "tutoring"  # 校外培训
    TV_SHOPPING = "tv_shopping"  # 电视购物
    PUBLIC_SERVICE = "public_service"  # 公益广告
    FOOD = "food"  # 食品饮料
    BOOKS = "books"  # 图书文具
    TOYS = "toys"  # 玩具
    SPORTS = "sports"  # 体育用品
    HOUSEHOLD = "household"  # 日用品
    OTHER = "other"  # 其他

    @property
    def name_zh(self) -> str:
        return _NAMES_ZH[self]

    @classmethod
    def parse(cls, value: str) -> AdCategory:
        """A category from its code or Chinese name; ValueError names the choices."""
        text = value.strip().lower()
        for category in cls:
            if text in (category.value, category.name_zh):
                return category
        raise ValueError(
            f"unknown ad category {value!r}: use one of "
            + ", ".join(f"{c.value} ({c.name_zh})" for c in cls)
        )


_NAMES_ZH = {
    AdCategory.MEDICAL: "医疗",
    AdCategory.DRUGS: "药品",
    AdCategory.MEDICAL_DEVICES: "医疗器械",
    AdCategory.HEALTH_FOOD: "保健食品",
    AdCategory.COSMETICS: "化妆品",
    AdCategory.ALCOHOL: "酒类",
    AdCategory.BEAUTY: "美容",
    AdCategory.TUTORING: "校外培训",
    AdCategory.TV_SHOPPING: "电视购物",
    AdCategory.PUBLIC_SERVICE: "公益广告",
    AdCategory.FOOD: "食品饮料",
    AdCategory.BOOKS: "图书文具",
    AdCategory.TOYS: "玩具",
    AdCategory.SPORTS: "体育用品",
    AdCategory.HOUSEHOLD: "日用品",
    AdCategory.OTHER: "其他",
}

#: Never on a channel for minors; a channel's policy can add to this, never remove.
MINORS_BANNED: frozenset[AdCategory] = frozenset(
    {
        AdCategory.MEDICAL,
        AdCategory.DRUGS,
        AdCategory.MEDICAL_DEVICES,
        AdCategory.HEALTH_FOOD,
        AdCategory.COSMETICS,
        AdCategory.ALCOHOL,
        AdCategory.BEAUTY,
        AdCategory.TUTORING,
        AdCategory.TV_SHOPPING,
    }
)


@dataclass(frozen=True, kw_only=True)
class AdPolicy:
    """A channel's ad rules (``[channel.ad_policy]`` in channels.toml)."""

    max_minutes_per_hour: float = LEGAL_AD_MINUTES_PER_HOUR
    banned: frozenset[AdCategory] = field(default=MINORS_BANNED)

    @property
    def max_frames_per_hour(self) -> int:
        return round(self.max_minutes_per_hour * 60 * FPS)

    def bans(self, category: AdCategory | str | None) -> bool:
        """Whether a category may not air (None, an unknown category, is not a ban)."""
        if category is None:
            return False
        try:
            return AdCategory(category) in self.banned
        except ValueError:
            return False

    def as_json(self) -> dict[str, object]:
        return {
            "max_minutes_per_hour": self.max_minutes_per_hour,
            "banned_categories": sorted(c.value for c in self.banned),
        }


DEFAULT_AD_POLICY = AdPolicy()


def clock_hour(instant: datetime, zone: ZoneInfo) -> datetime:
    """The local clock hour an instant falls in (aware, in ``zone``)."""
    return instant.astimezone(zone).replace(minute=0, second=0, microsecond=0)


def split_by_clock_hour(
    spans: Iterable[tuple[datetime, int]], zone: ZoneInfo
) -> dict[datetime, int]:
    """Frames of each (start, frames) span in each local clock hour (keys: local hour starts).

    Spans start on the 25 fps frame grid; a span across an hour's end counts in both hours.
    """
    out: dict[datetime, int] = {}
    for start, frames in spans:
        at, left = start.astimezone(UTC), frames
        while left > 0:
            hour = clock_hour(at, zone)
            boundary = (hour + timedelta(hours=1)).astimezone(UTC)
            room = -(-(boundary - at) // _FRAME)  # frames up to the hour's end (ceil)
            take = min(left, max(1, room))
            out[hour] = out.get(hour, 0) + take
            at += take * _FRAME
            left -= take
    return out

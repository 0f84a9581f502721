"""Per-channel ad policy ([channel.ad_policy]) and the clock-hour arithmetic the ad rules share."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels import (
    MINORS_BANNED,
    SAMPLE_CHANNELS_FILE,
    AdCategory,
    AdPolicy,
    ChannelRegistryError,
    load_registry,
    split_by_clock_hour,
)

ZONE = ZoneInfo("Asia/Shanghai")
CHANNEL = """
[[channel]]
id = "g03.skyclass.cn"
name_zh = "空中课堂 三年级"
name_en = "Sky Classroom Grade 3"
service_id = 103
transport_stream_id = 3
original_network_id = 8400
grades = ["g03"]
profile = "hd"
mux_rate = 10_000_000

[[channel.output]]
kind = "cable"
url = "udp://239.10.0.3:1234"
"""


def registry(tmp_path: Path, policy: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "channels.toml"
    path.write_text(CHANNEL + policy, encoding="utf-8")
    return load_registry(path)


def test_every_sample_channel_has_the_rules_for_minors() -> None:
    for channel in load_registry(SAMPLE_CHANNELS_FILE):
        policy = channel.ad_policy
        assert policy.max_minutes_per_hour == 12  # SARFT Order 61
        assert policy.max_frames_per_hour == 12 * 60 * 25
        assert policy.banned == MINORS_BANNED
    # Advertising Law §40, the 2021 双减 notice, and TV shopping on education channels.
    assert {c.name_zh for c in MINORS_BANNED} == {
        "医疗", "药品", "医疗器械", "保健食品", "化妆品", "酒类", "美容", "校外培训", "电视购物",
    }  # fmt: skip


def test_a_channel_may_be_stricter(tmp_path: Path) -> None:
    channel = registry(
        tmp_path, '\n[channel.ad_policy]\nmax_minutes_per_hour = 6\nbanned_categories = ["玩具"]\n'
    ).get("g03.skyclass.cn")
    assert channel.ad_policy.max_minutes_per_hour == 6
    assert channel.ad_policy.banned == MINORS_BANNED | {AdCategory.TOYS}
    assert channel.ad_policy.bans("toys") and channel.ad_policy.bans(AdCategory.ALCOHOL)
    assert not channel.ad_policy.bans("food") and not channel.ad_policy.bans(None)
    assert channel.as_json()["ad_policy"]["max_minutes_per_hour"] == 6


@pytest.mark.parametrize(
    ("policy", "field", "hint"),
    [
        ("max_minutes_per_hour = 13", "ad_policy.max_minutes_per_hour", "at most 12"),
        ("max_minutes_per_hour = -1", "ad_policy.max_minutes_per_hour", "from 0 to 12"),
        ('max_minutes_per_hour = "12"', "ad_policy.max_minutes_per_hour", "number of minutes"),
        ('banned_categories = ["lottery"]', "ad_policy.banned_categories", "unknown ad category"),
        ("banned_categories = 3", "ad_policy.banned_categories", "list of category names"),
        ("allowed_categories = []", "ad_policy.allowed_categories", "unknown setting"),
    ],
)
def test_a_bad_policy_names_the_channel_and_field(
    tmp_path: Path, policy: str, field: str, hint: str
) -> None:
    with pytest.raises(ChannelRegistryError) as info:
        registry(tmp_path, f"\n[channel.ad_policy]\n{policy}\n")
    message = str(info.value)
    assert "channel 'g03.skyclass.cn'" in message and f"field '{field}'" in message
    assert hint in message


def test_categories_parse_from_code_or_chinese_name() -> None:
    assert AdCategory.parse("TV_Shopping") is AdCategory.TV_SHOPPING
    assert AdCategory.parse(" 校外培训 ") is AdCategory.TUTORING
    with pytest.raises(ValueError, match="public_service \\(公益广告\\)"):
        AdCategory.parse("lottery")
    assert AdPolicy().bans("not-a-category") is False


def test_spans_split_at_local_clock_hours() -> None:
    start = datetime(2026, 3, 2, 9, 59, 50, tzinfo=ZONE)
    hours = split_by_clock_hour([(start, 30 * 25), (start.replace(hour=10, second=0), 25)], ZONE)
    assert hours == {
        datetime(2026, 3, 2, 9, tzinfo=ZONE): 250,  # 10 s before 10:00
        datetime(2026, 3, 2, 10, tzinfo=ZONE): 500 + 25,  # 20 s after, plus 1 s
    }
    across_midnight = datetime(2026, 3, 2, 23, 59, 59, tzinfo=ZONE)
    assert split_by_clock_hour([(across_midnight, 50)], ZONE) == {
        datetime(2026, 3, 2, 23, tzinfo=ZONE): 25,
        datetime(2026, 3, 3, 0, tzinfo=ZONE): 25,
    }

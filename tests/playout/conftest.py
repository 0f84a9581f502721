"""Playout fixtures: a session's worth of tiny SD house-format clips."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from playout_media import make_clip, media_ref

from epg.rundown import MediaRef


@dataclass(frozen=True)
class Media:
    lesson: MediaRef  # 8 s
    short: MediaRef  # 4 s
    ad: MediaRef  # 3 s
    filler: MediaRef  # 2 s


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    root = tmp_path_factory.mktemp("house")
    return Media(
        lesson=media_ref(make_clip(root / "lesson.ts", 8), "lesson8", 200),
        short=media_ref(make_clip(root / "short.ts", 4, "smptebars", 660), "short4", 100),
        ad=media_ref(make_clip(root / "ad.ts", 3, "rgbtestsrc", 880), "ad3", 75, "ad"),
        filler=media_ref(make_clip(root / "filler.ts", 2, "testsrc2", 330), "fill2", 50, "filler"),
    )

"""The ad rules at air time: a hand-edited rundown never airs an ad it must not.

Banned categories, an ad between two parts of one lesson and ad minutes over the
channel's limit in a clock hour are withheld: filler or slate airs in the slot, the
stream stays continuous (TR 101 290 via the project's monitor, ffprobe 6.0 for
timestamps), and the as-run says `substituted` with the rule.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from conftest import Media
from playout_media import (
    DAY_START,
    assert_clean,
    assert_continuous,
    build_rundown,
    check,
    ffprobe,
    render,
)

from channels import AdPolicy
from epg.rundown import EventType as T
from epg.rundown import MediaRef, Rundown
from playout.adrules import WITHHELD, AdRules, check_rundown
from playout.asrun.ledger import AsRunOutcome
from playout.engine import PlayoutEngine


def ad(media: Media, category: str | None, asset_id: str = "ad3") -> MediaRef:
    return dataclasses.replace(media.ad, asset_id=asset_id, ad_category=category)


def test_a_banned_category_is_withheld_and_the_as_run_says_why(
    media: Media, tmp_path: Path
) -> None:
    rundown = build_rundown(
        [
            ("L1", T.LESSON, media.short, 100),
            ("A1", T.AD, ad(media, "public_service"), 75),
            ("A2", T.AD, ad(media, "alcohol", "booze"), 75),
            ("L2", T.LESSON, media.short, 100),
        ],
        ad_break={"A1": "B1", "A2": "B1"},
        filler=[media.filler],
    )
    engine = PlayoutEngine(rundown)  # default policy: the rules for minors
    data = render(engine, 0, 350)
    assert_continuous(ffprobe(data, tmp_path))
    assert_clean(check(data))
    got = {r.event_id: r for r in engine.records}
    assert got["A1"].outcome is AsRunOutcome.AIRED and got["A1"].asset_id == "ad3"
    withheld = got["A2"]
    assert withheld.outcome is AsRunOutcome.SUBSTITUTED and withheld.asset_id is None
    assert withheld.reason.startswith(WITHHELD) and "alcohol (酒类)" in withheld.reason
    assert (withheld.actual_frame, withheld.duration_frames) == (175, 75)  # its slot kept
    assert got["L2"].outcome is AsRunOutcome.AIRED and got["L2"].actual_frame == 250


def test_a_channel_can_ban_more_never_less(media: Media) -> None:
    rundown = build_rundown(
        [("L1", T.LESSON, media.short, 100), ("A1", T.AD, ad(media, "food"), 75)]
    )
    assert check_rundown(rundown, AdPolicy()) == []
    stricter = AdPolicy(banned=AdPolicy().banned | {__import__("channels").AdCategory.FOOD})
    (withheld,) = check_rundown(rundown, stricter)
    assert withheld.event_id == "A1" and "food" in withheld.reason
    # An ad without a category is not withheld here: playout has no library to ask.
    bare = build_rundown([("L1", T.LESSON, media.short, 100), ("A1", T.AD, ad(media, None), 75)])
    assert check_rundown(bare, AdPolicy()) == []


def test_an_ad_between_two_parts_of_one_lesson_is_withheld(media: Media) -> None:
    rundown = build_rundown(
        [
            ("L1a", T.LESSON, media.short, 100),
            ("A1", T.AD, ad(media, "public_service"), 75),
            ("F1", T.FILLER, media.filler, 50),
            ("L1b", T.LESSON, media.short, 100),
            ("A2", T.AD, ad(media, "public_service"), 75),
            ("L2", T.LESSON, media.short, 100),
        ]
    )
    parts = {"L1a", "L1b"}  # a hand edit split one EPG event (one lesson) around an ad
    events = tuple(
        dataclasses.replace(e, eit_event_id=4242) if e.event_id in parts else e
        for e in rundown.events
    )
    split = dataclasses.replace(rundown, events=events)
    (withheld,) = check_rundown(split, AdPolicy())
    assert withheld.event_id == "A1" and "inside lesson L1a" in withheld.reason
    assert check_rundown(rundown, AdPolicy()) == []  # between two lessons: fine


def test_ad_minutes_over_the_clock_hour_limit_are_withheld(media: Media) -> None:
    """The limit holds in each clock hour; an ad across 09:00 counts in both hours."""
    start = 8 * 3600 * 25 + 59 * 60 * 25 + 55 * 25 - 3 * 75  # three ads up to 08:59:55
    specs = [(f"A{n}", T.AD, ad(media, "food"), 75) for n in range(3)]
    specs.append(("A3", T.AD, ad(media, "food"), 250))  # 08:59:55–09:00:05: 125 frames each side
    specs.append(("A4", T.AD, ad(media, "food"), 300))  # 09:00:05–09:00:17
    rundown = build_rundown(specs, start=start)
    clock = rundown.wall_clock(rundown.events[3].start_frame).astimezone(rundown.zone)
    assert clock.strftime("%H:%M:%S") == "08:59:55"
    # 0.1 min = 150 frames an hour: two ads fit; A2 and A3 would pass it in 08:00, A4 in 09:00.
    strict = check_rundown(rundown, AdPolicy(max_minutes_per_hour=0.1))
    assert [w.event_id for w in strict] == ["A2", "A3", "A4"]
    assert "08:00–09:00" in strict[0].reason and "0.1 per clock hour" in strict[0].reason
    # 0.25 min = 375 frames: 08:00 holds 225 + 125 = 350, but 09:00 would hold 125 + 300.
    (late,) = check_rundown(rundown, AdPolicy(max_minutes_per_hour=0.25))
    assert late.event_id == "A4" and "09:00–10:00" in late.reason


def test_a_reload_counts_the_ads_already_committed(media: Media) -> None:
    policy = AdPolicy(max_minutes_per_hour=0.1)
    current = build_rundown(
        [
            ("A0", T.AD, ad(media, "food"), 75),
            ("A1", T.AD, ad(media, "food"), 75),
            ("L1", T.LESSON, media.short, 100),
            ("F1", T.FILLER, media.filler, 75),
        ]
    )
    new = build_rundown(
        [
            ("X0", T.FILLER, media.filler, 150),
            ("L1", T.LESSON, media.short, 100),
            ("A2", T.AD, ad(media, "food"), 75),
        ]
    )
    alone = check_rundown(new, policy)
    assert alone == []  # by itself the new version is within the limit …
    rules = AdRules(policy)
    merged = rules.apply(new, current=current, on_air_frame=160)  # L1 on air, A0 A1 aired
    (a2,) = [e for e in merged.events if e.event_id == "A2"]
    assert a2.media is None  # … but not after the two ads that already aired this hour


def test_the_engine_applies_the_channel_policy_to_a_later_days_rundown(
    media: Media, tmp_path: Path
) -> None:
    """The next day's file (loaded by the engine itself) is checked too."""
    from epg.rundown import rundown_path

    today = build_rundown(
        [("L1", T.LESSON, media.short, 100)], start=24 * 3600 * 25 - 100, filler=[media.filler]
    )
    tomorrow = build_rundown(
        [("A1", T.AD, ad(media, "tutoring"), 75), ("L2", T.LESSON, media.short, 100)]
    )
    tomorrow = dataclasses.replace(
        tomorrow,
        broadcast_date=today.broadcast_date + timedelta(days=1),
        day_start=DAY_START + timedelta(days=1),
    )
    folder = tmp_path / "rundowns"
    tomorrow.save(rundown_path(folder, tomorrow.channel_id, tomorrow.broadcast_date))
    engine = PlayoutEngine(today, rundown_dir=folder, hot_reload=False)
    render(engine, today.events[0].start_frame, 200)
    got = {r.event_id: r for r in engine.records}
    assert got["A1"].outcome is AsRunOutcome.SUBSTITUTED
    assert "tutoring (校外培训)" in got["A1"].reason
    assert isinstance(engine.rundown, Rundown)

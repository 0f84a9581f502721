"""Assets as ingest stores them: Matroska (1/1000 time base), H.264 1080i25 or MPEG-2 576i25 + MP2.

Synthesized with ``ingest.synth`` in the house formats (what ingest stream-copies),
then played by the engine and looked at by ffprobe and the project's TS checker:
every picture lands on the 3600-tick frame grid, DTS rises, no PTS gap or overlap
at any join, zero priority-1/2 errors, and an HD channel holds 10 Mb/s CBR.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from playout_media import (
    SERVICE,
    assert_clean,
    assert_continuous,
    build_rundown,
    check,
    ffprobe,
    media_ref,
    render,
)

from epg.rundown import EventType as T
from epg.rundown import MediaRef
from ingest.synth import SynthFormat, synthesize
from playout.asrun.ledger import AsRunOutcome
from playout.engine import PlayoutEngine

HD_SERVICE = dataclasses.replace(SERVICE, profile="hd", mux_rate=10_000_000)


def _asset(root: Path, name: str, fmt: SynthFormat, seconds: float, seed: int) -> MediaRef:
    result = synthesize(root / f"{name}.mkv", seconds=seconds, fmt=fmt, seed=seed, title=name)
    return media_ref(result.path, name, result.duration_frames)


@pytest.fixture(scope="module")
def hd_assets(tmp_path_factory: pytest.TempPathFactory) -> list[MediaRef]:
    root = tmp_path_factory.mktemp("house-hd")
    return [
        _asset(root, "hd3", SynthFormat.HOUSE_HD, 3, 1),
        _asset(root, "hd4", SynthFormat.HOUSE_HD, 4, 2),
    ]


@pytest.fixture(scope="module")
def sd_assets(tmp_path_factory: pytest.TempPathFactory) -> list[MediaRef]:
    root = tmp_path_factory.mktemp("house-sd")
    return [
        _asset(root, "sd3", SynthFormat.HOUSE_SD, 3, 3),
        _asset(root, "sd2", SynthFormat.HOUSE_SD, 2, 4),
    ]


def _frames_on_grid(engine: PlayoutEngine, video: list[tuple[int, int, bool]]) -> None:
    origin = engine.wire_pts(0)
    assert all((pts - origin) % 3600 == 0 for pts, _dts, _key in video)
    assert all((dts - origin) % 3600 == 0 for _pts, dts, _key in video)


def test_sd_matroska_assets_play_exactly(sd_assets: list[MediaRef], tmp_path: Path) -> None:
    sd3, sd2 = sd_assets
    assert Path(sd3.path).suffix == ".mkv"
    rundown = build_rundown(
        [
            ("L1", T.LESSON, sd3, sd3.duration_frames),
            ("A1", T.AD, sd2, sd2.duration_frames),
            ("L2", T.LESSON, sd2, sd2.duration_frames),
            ("L3", T.LESSON, sd3, sd3.duration_frames),
        ],
        ad_break={"A1": "B1"},
    )
    engine = PlayoutEngine(rundown)
    total = rundown.end_frame
    data = render(engine, 0, total)
    probe = ffprobe(data, tmp_path)
    assert len(probe.video) == total
    assert_continuous(probe)
    _frames_on_grid(engine, probe.video)
    assert_clean(check(data))
    assert [(r.event_id, r.outcome, r.actual_frame, r.duration_frames) for r in engine.records] == [
        ("L1", AsRunOutcome.AIRED, 0, 75),
        ("A1", AsRunOutcome.AIRED, 75, 50),
        ("L2", AsRunOutcome.AIRED, 125, 50),
        ("L3", AsRunOutcome.AIRED, 175, 75),
    ]


def test_hd_channel_at_10_mbps_plays_matroska_assets(
    hd_assets: list[MediaRef], tmp_path: Path
) -> None:
    """About a minute of an HD channel: lessons, a break, filler cut by a hard start."""
    hd3, hd4 = hd_assets
    specs: list[tuple[str, T, MediaRef | None, int]] = []
    fixed: dict[str, bool] = {}
    breaks: dict[str, str] = {}
    for n in range(4):
        specs += [
            (f"L{n}", T.LESSON, hd4, hd4.duration_frames),
            (f"A{n}", T.AD, hd3, hd3.duration_frames),
            (f"F{n}", T.FILLER, hd4, 60),  # 100 frames of media, cut at an IDR for ...
            (f"M{n}", T.LESSON, hd3, hd3.duration_frames),  # ... this hard start
        ]
        fixed[f"M{n}"] = True
        breaks[f"A{n}"] = f"B{n}"
    rundown = dataclasses.replace(
        build_rundown(specs, fixed=fixed, ad_break=breaks), service=HD_SERVICE
    )
    engine = PlayoutEngine(rundown)
    total = rundown.end_frame
    data = render(engine, 0, total)  # how fast: bench/playout.py (fast mode), not here
    probe = ffprobe(data, tmp_path)
    assert len(probe.video) == total
    assert_continuous(probe)
    _frames_on_grid(engine, probe.video)
    report = check(data)
    assert_clean(report)
    seconds = total / 25
    assert abs(len(data) * 8 / seconds - 10_000_000) < 10_000_000 * 0.002  # CBR 10 Mb/s
    got = {r.event_id: r for r in engine.records}
    for n in range(4):
        assert got[f"L{n}"].outcome is AsRunOutcome.AIRED
        assert got[f"M{n}"].outcome is AsRunOutcome.AIRED
        assert got[f"M{n}"].actual_frame == got[f"M{n}"].scheduled_frame  # frame-exact
        assert got[f"F{n}"].outcome is AsRunOutcome.TRUNCATED  # cut at an IDR + slate pad

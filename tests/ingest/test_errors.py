"""Ingest's exception tree: one module, everything under core's root, bad input exits 2."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import ingest
from core.errors import BadInputError, SkyclassError
from ingest import errors
from ingest.errors import FfmpegNotFoundError, IngestError
from ingest.runner import run_ffmpeg

BAD_INPUT = {
    "IngestInputError", "ProbeError", "LoudnessInputError", "QcRejectedError", "PackageError",
    "UnknownAssetError", "DuplicateAssetError",
}  # fmt: skip


def _ingest_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(ingest.__path__, "ingest."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("ingest")
            ):
                found[name] = value
    return found


def test_every_ingest_exception_is_defined_in_errors_and_drawn_in_its_tree() -> None:
    found = _ingest_exceptions()
    assert set(found) == set(errors.__all__)
    for name, cls in found.items():
        assert cls.__module__ == "ingest.errors", name
        assert issubclass(cls, IngestError) and issubclass(cls, SkyclassError), name
        assert issubclass(cls, BadInputError) is (name in BAD_INPUT), name
        assert re.search(rf"[─ ]{name}\b", errors.__doc__ or ""), name  # drawn in the tree


def test_names_stay_importable_where_they_were() -> None:
    from ingest.library import DuplicateAssetError, UnknownAssetError
    from ingest.loudness import LoudnessInputError
    from ingest.normalize import NormalizeError
    from ingest.package import PackageError
    from ingest.pipeline import QcRejectedError
    from ingest.probe import ProbeError
    from ingest.runner import FfmpegError

    moved = (
        DuplicateAssetError, UnknownAssetError, LoudnessInputError, NormalizeError,
        PackageError, QcRejectedError, ProbeError, FfmpegError, FfmpegNotFoundError,
    )  # fmt: skip
    assert all(getattr(errors, cls.__name__) is cls for cls in moved)
    assert ingest.DuplicateAssetError is DuplicateAssetError


def test_a_wrong_ffmpeg_path_is_a_not_found_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFMPEG_PATH", "/nonexistent/ffmpeg")
    with pytest.raises(FfmpegNotFoundError, match="FFMPEG_PATH") as caught:
        run_ffmpeg(["-version"])
    assert isinstance(caught.value, FileNotFoundError)  # callers may catch the builtin too

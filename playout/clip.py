"""A house-format asset read as closed GOPs, without decoding.

The engine rebases whole GOPs onto the channel timeline, so a cut or an in-point
always falls on an IDR. A GOP whose packets are flagged corrupt, whose frame
count or timestamps are off, or that the demuxer fails inside is reported as
damaged, and the reader continues at the next IDR.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import av.error

from channels.profiles import HouseProfile
from core.timecode import FRAME_TICKS
from epg.rundown import MediaRef
from playout.stream import PlayoutError

logger = logging.getLogger(__name__)


def timestamp(value: int | None) -> int:
    """A timestamp the reader already checked is present."""
    if value is None:
        raise UnplayableMedia("a packet lost its timestamp")
    return value


class UnplayableMedia(PlayoutError):
    """The asset cannot be aired: missing, unreadable, wrong checksum or not house format."""


@dataclass(frozen=True, kw_only=True)
class Gop:
    """One closed GOP: video in decode order (IDR first), and the audio that goes with it."""

    index: int  # GOP number within the asset, from 0
    video: list[av.Packet[Any]]
    audio: list[av.Packet[Any]]
    damaged: str | None = None  # why it must not air

    @property
    def frames(self) -> int:
        return len(self.video)

    @property
    def first_pts(self) -> int:
        return min(timestamp(p.pts) for p in self.video)

    @property
    def end_pts(self) -> int:
        return max(timestamp(p.pts) for p in self.video) + FRAME_TICKS


@dataclass
class _Verified:
    known: dict[tuple[str, int, int], str] = field(default_factory=dict)


_VERIFIED = _Verified()


@dataclass
class _Probed:
    known: set[tuple[str, int, int, str]] = field(default_factory=set)


_PROBED = _Probed()  # files already found to be house format (an item reruns all day)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so reruns are not re-hashed."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    cached = _VERIFIED.known.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    _VERIFIED.known[key] = digest.hexdigest()
    return digest.hexdigest()


class Clip:
    """An opened, verified asset; iterate ``gops()`` to air it."""

    def __init__(self, media: MediaRef, profile: HouseProfile) -> None:
        self.media = media
        self.profile = profile
        self.path = Path(media.path)
        where = f"asset {media.asset_id} ({self.path})"
        if not self.path.is_file():
            raise UnplayableMedia(f"{where}: file is missing")
        try:
            actual = file_sha256(self.path)
        except OSError as exc:
            raise UnplayableMedia(f"{where}: unreadable ({exc.strerror})") from None
        if actual != media.sha256:
            raise UnplayableMedia(
                f"{where}: sha256 {actual[:12]}… does not match the rundown's "
                f"{media.sha256[:12]}…: the file changed after ingest"
            )
        stat = self.path.stat()
        key = (str(self.path), stat.st_size, stat.st_mtime_ns, profile.name)
        if key in _PROBED.known:
            return
        try:
            with av.open(os.fspath(self.path)) as container:
                video = container.streams.video
                audio = container.streams.audio
                if not video or not audio:
                    raise UnplayableMedia(f"{where}: needs one video and one audio stream")
                codec = video[0].codec_context.name
                if codec != profile.video_codec:
                    raise UnplayableMedia(
                        f"{where}: video is {codec}, the {profile.name} house format is "
                        f"{profile.video_codec}: re-ingest it"
                    )
                if audio[0].codec_context.name != profile.audio_codec:
                    raise UnplayableMedia(
                        f"{where}: audio is {audio[0].codec_context.name}, house format is "
                        f"{profile.audio_codec}: re-ingest it"
                    )
        except av.error.FFmpegError as exc:
            raise UnplayableMedia(f"{where}: not a readable media file ({exc})") from None
        _PROBED.known.add(key)

    def gops(self, first: int = 0) -> Iterator[Gop]:
        """GOPs from number ``first`` on; damaged ones are yielded flagged, never raised."""
        completed: deque[Gop] = deque()
        audio: list[av.Packet[Any]] = []
        video: list[av.Packet[Any]] = []
        damaged: str | None = None
        index = -1
        last_audio = -(1 << 62)
        try:
            container = av.open(os.fspath(self.path))
        except av.error.FFmpegError as exc:
            logger.error("asset %s: cannot reopen (%s)", self.media.asset_id, exc)
            return
        with container:
            packets = container.demux(container.streams.video[0], container.streams.audio[0])
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    damaged = f"demux error: {exc}"
                    logger.warning("asset %s: %s", self.media.asset_id, damaged)
                    break
                if packet.dts is None or packet.pts is None or packet.size == 0:
                    continue
                if packet.stream.type == "audio":
                    audio.append(packet)
                    last_audio = max(last_audio, timestamp(packet.pts))
                else:
                    if packet.is_keyframe:
                        if video:
                            completed.append(self._finish(index, video, damaged))
                        index, video, damaged = index + 1, [], None
                    if index < 0:
                        continue  # leading pictures before the first IDR cannot air
                    if packet.is_corrupt:
                        damaged = "packet flagged corrupt"
                    video.append(packet)
                # A GOP leaves once the audio has passed its end, taking the audio before it.
                while completed and last_audio >= completed[0].end_pts:
                    gop = completed.popleft()
                    audio = _take_audio(gop, audio)
                    if gop.index >= first:
                        yield gop
            if video:
                completed.append(self._finish(index, video, damaged))
            while completed:
                gop = completed.popleft()
                audio = _take_audio(gop, audio) if completed else _take_all(gop, audio)
                if gop.index >= first:
                    yield gop

    def _finish(self, index: int, video: list[av.Packet[Any]], damaged: str | None) -> Gop:
        """Check a GOP's shape: house GOPs are closed, of a fixed length, frame-contiguous."""
        problem = damaged
        if problem is None:
            pts = sorted(timestamp(p.pts) for p in video)
            if any(b - a != FRAME_TICKS for a, b in pairwise(pts)):
                problem = "frames missing or out of order"
            elif len(video) > self.profile.gop_frames:
                problem = f"{len(video)} frames in a {self.profile.gop_frames}-frame GOP"
            elif timestamp(video[0].pts) != pts[0]:
                problem = "open GOP (the IDR is not the first picture shown)"
        return Gop(index=index, video=video, audio=[], damaged=problem)


def _take_audio(gop: Gop, audio: list[av.Packet[Any]]) -> list[av.Packet[Any]]:
    end = gop.end_pts
    gop.audio.extend(a for a in audio if timestamp(a.pts) < end)
    return [a for a in audio if timestamp(a.pts) >= end]


def _take_all(gop: Gop, audio: list[av.Packet[Any]]) -> list[av.Packet[Any]]:
    gop.audio.extend(audio)
    return []

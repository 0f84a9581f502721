"""A house-format asset read as closed GOPs, without decoding.

The engine rebases whole GOPs onto the channel timeline, so a cut or an in-point
always falls on an IDR. Timestamps are read in whatever time base the container
uses (1/90000 in TS, 1/1000 in the Matroska that ingest stores) and turned into
frame indices and exact 90 kHz ticks here, never rounded milliseconds; decode
timestamps are rebuilt from decode order (Matroska has none for some pictures).
A GOP whose packets are flagged corrupt, whose frame count or timestamps are off,
or that the demuxer fails inside is reported as damaged, and the reader
continues at the next IDR.

Checksums: ingest hashes every file (content-addressed by SHA-256). Reading a
1 GB lesson again before its first byte airs would delay a mid-lesson start by
seconds, so a real-time channel opens a clip with ``verify=False``: a digest
already known for the file's (path, size, mtime) is checked at once; otherwise
the file is hashed on a background thread (``verify_later``, also used to hash
upcoming items well before they air) and ``Clip.mismatch()`` reports a changed
file, so the engine cuts it at the next GOP. ``--fast`` and the tests verify
before air (``verify=True``), which keeps their output a pure function of the
inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import av.error
from av.bitstream import BitStreamFilterContext

from channels.profiles import HouseProfile
from core.timecode import FRAME_TICKS
from epg.rundown import MediaRef
from playout.errors import UnplayableMedia

logger = logging.getLogger(__name__)


def timestamp(value: int | None) -> int:
    """A timestamp the reader already checked is present."""
    if value is None:
        raise UnplayableMedia("a packet lost its timestamp")
    return value


@dataclass(frozen=True, kw_only=True)
class Gop:
    """One closed GOP: video in decode order (IDR first), and the audio that goes with it.

    ``frame_pts`` is each video packet's picture number from the GOP's first
    picture (decode order), ``audio`` pairs each audio packet with its 90 kHz
    time from that picture; both are exact whatever the container's time base.
    """

    index: int  # GOP number within the asset, from 0
    video: list[av.Packet[Any]]
    frame_pts: list[int]
    first_frame: int  # frame index of the first picture in the asset's own timestamps
    audio: list[tuple[int, av.Packet[Any]]] = field(default_factory=list)
    damaged: str | None = None  # why it must not air

    @property
    def frames(self) -> int:
        return len(self.video)

    @property
    def end_ticks(self) -> int:
        """Asset time (90 kHz) just after the last picture."""
        return (self.first_frame + max(self.frame_pts, default=0) + 1) * FRAME_TICKS

    @property
    def decode_delay(self) -> int:
        """Frames the first DTS leads the first PTS so every DTS precedes its PTS."""
        return max((k - p for k, p in enumerate(self.frame_pts)), default=0)


def _scaled(value: int, time_base: Fraction, units: int) -> int:
    """``value`` in ``time_base`` as a whole number of 1/units seconds, rounded half up."""
    num = value * time_base.numerator * units
    den = time_base.denominator
    return (2 * num + den) // (2 * den)


@dataclass
class _Verified:
    known: dict[tuple[str, int, int], str] = field(default_factory=dict)


_VERIFIED = _Verified()


@dataclass
class _Probed:
    known: set[tuple[str, int, int, str]] = field(default_factory=set)


_PROBED = _Probed()  # files already found to be house format (an item reruns all day)
SEEK_MARGIN = 2  # GOPs read before a sought GOP, for the audio muxed ahead of its video


def _key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so reruns are not re-hashed."""
    key = _key(path)
    cached = _VERIFIED.known.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)  # releases the GIL: the pacing thread is not held up
    _VERIFIED.known[key] = digest.hexdigest()
    return digest.hexdigest()


def known_sha256(path: Path) -> str | None:
    """The digest of the file as it is now, if it was hashed already (never reads it)."""
    try:
        return _VERIFIED.known.get(_key(path))
    except OSError:
        return None


class _Hasher:
    """One background thread hashing files ahead of (or during) their air time."""

    def __init__(self) -> None:
        self._queue: deque[Path] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, path: Path) -> None:
        with self._cond:
            if path in self._queue:
                return
            self._queue.append(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        # Linux: a thread's nice value is its own, so the pacer keeps its priority.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                path = self._queue[0]
            try:
                if known_sha256(path) is None:
                    file_sha256(path)
            except OSError as exc:  # Clip reports the unreadable file when it opens it
                logger.warning("cannot hash %s: %s", path, exc)
            with self._cond:
                self._queue.popleft()


_HASHER = _Hasher()


def verify_later(media: MediaRef) -> None:
    """Hash ``media``'s file on the background thread unless its digest is known."""
    path = Path(media.path)
    if path.is_file() and known_sha256(path) is None:
        _HASHER.request(path)


class Clip:
    """An opened, verified asset; iterate ``gops()`` to air it."""

    def __init__(self, media: MediaRef, profile: HouseProfile, *, verify: bool = True) -> None:
        """``verify``: hash the file now if its digest is not known; else hash it in the
        background and report a mismatch through ``mismatch()`` (module docstring).
        """
        self.media = media
        self.profile = profile
        self.path = Path(media.path)
        self._where = where = f"asset {media.asset_id} ({self.path})"
        self._checked = True
        if not self.path.is_file():
            raise UnplayableMedia(f"{where}: file is missing")
        try:
            actual = file_sha256(self.path) if verify else known_sha256(self.path)
        except OSError as exc:
            raise UnplayableMedia(f"{where}: unreadable ({exc.strerror})") from None
        if actual is None:
            self._checked = False
            verify_later(media)
        elif actual != media.sha256:
            raise UnplayableMedia(self._mismatch(actual))
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

    def _mismatch(self, actual: str) -> str:
        return (
            f"{self._where}: sha256 {actual[:12]}… does not match the rundown's "
            f"{self.media.sha256[:12]}…: the file changed after ingest"
        )

    def mismatch(self) -> str | None:
        """Why the file must not air, once its background hash shows it changed."""
        if self._checked:
            return None
        actual = known_sha256(self.path)
        if actual is None:
            return None  # still hashing
        self._checked = True
        return None if actual == self.media.sha256 else self._mismatch(actual)

    def gops(self, first: int = 0) -> Iterator[Gop]:
        """GOPs from number ``first`` on; damaged ones are yielded flagged, never raised.

        A join deep into an asset seeks (a 20-minute offset read from the start
        took seconds before the first byte): to the IDR ``SEEK_MARGIN`` GOPs early,
        so the GOPs from ``first`` on, audio included, are exactly what a read from
        the start gives. GOP numbers then come from frame numbers (house GOPs have
        a fixed length); if the seek lands past ``first``, the asset is read from
        the start instead.
        """
        if first > SEEK_MARGIN:
            gops = self._gops(first, seek=True)
            head = next(gops, None)
            if head is not None and head.index == first:
                yield head
                yield from gops
                return
            gops.close()
            logger.warning(
                "asset %s: seeking to GOP %d landed at %s: reading from the start",
                self.media.asset_id,
                first,
                None if head is None else head.index,
            )
        yield from self._gops(first, seek=False)

    def _gops(self, first: int, *, seek: bool) -> Generator[Gop, None, None]:
        fps = self.profile.fps
        gop_frames = self.profile.gop_frames
        completed: deque[Gop] = deque()
        audio: list[tuple[int, av.Packet[Any]]] = []  # (asset time in 90 kHz, packet)
        video: list[av.Packet[Any]] = []
        frames: list[int] = []  # frame index of each video packet
        damaged: str | None = None
        index = -1
        last_audio = -(1 << 62)
        try:
            container = av.open(os.fspath(self.path))
        except av.error.FFmpegError as exc:
            logger.error("asset %s: cannot reopen (%s)", self.media.asset_id, exc)
            return
        with container:
            vstream = container.streams.video[0]
            astream = container.streams.audio[0]
            vtb = vstream.time_base or Fraction(1, 90_000)
            atb = astream.time_base or Fraction(1, 90_000)
            origin: int | None = None  # the asset's first frame number, when seeking
            if seek and vstream.start_time is not None:
                origin = _scaled(vstream.start_time, vtb, fps)
                target = (origin + (first - SEEK_MARGIN) * gop_frames) * vtb.denominator
                try:
                    container.seek(target // (fps * vtb.numerator), stream=vstream, backward=True)
                except av.error.FFmpegError as exc:
                    logger.warning("asset %s: cannot seek (%s)", self.media.asset_id, exc)
                    return
            elif seek:
                return
            packets = _annex_b(container.demux(vstream, astream), vstream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    damaged = f"demux error: {exc}"
                    logger.warning("asset %s: %s", self.media.asset_id, damaged)
                    break
                if packet.pts is None or packet.size == 0:
                    continue
                if packet.stream.type == "audio":
                    at = _scaled(packet.pts, atb, 90_000)
                    audio.append((at, packet))
                    last_audio = max(last_audio, at)
                else:
                    if packet.is_keyframe:
                        if video:
                            completed.append(self._finish(index, video, frames, damaged))
                        if index < 0 and origin is not None:  # sought: number from the frame
                            index = (_scaled(packet.pts, vtb, fps) - origin) // gop_frames - 1
                        index, video, frames, damaged = index + 1, [], [], None
                    if index < 0:
                        continue  # leading pictures before the first IDR cannot air
                    if packet.is_corrupt:
                        damaged = "packet flagged corrupt"
                    video.append(packet)
                    frames.append(_scaled(packet.pts, vtb, fps))
                # A GOP leaves once the audio has passed its end, taking the audio before it.
                while completed and last_audio >= completed[0].end_ticks:
                    gop = completed.popleft()
                    audio = _take_audio(gop, audio)
                    if gop.index >= first:
                        yield gop
            if video:
                completed.append(self._finish(index, video, frames, damaged))
            while completed:
                gop = completed.popleft()
                audio = _take_audio(gop, audio) if completed else _take_all(gop, audio)
                if gop.index >= first:
                    yield gop

    def _finish(
        self, index: int, video: list[av.Packet[Any]], frames: list[int], damaged: str | None
    ) -> Gop:
        """Check a GOP's shape: house GOPs are closed, of a fixed length, frame-contiguous."""
        problem = damaged
        ordered = sorted(frames)
        if problem is None:
            if any(b - a != 1 for a, b in pairwise(ordered)):
                problem = "frames missing or out of order"
            elif len(video) > self.profile.gop_frames:
                problem = f"{len(video)} frames in a {self.profile.gop_frames}-frame GOP"
            elif frames[0] != ordered[0]:
                problem = "open GOP (the IDR is not the first picture shown)"
        first = ordered[0]
        return Gop(
            index=index,
            video=video,
            frame_pts=[f - first for f in frames],
            first_frame=first,
            damaged=problem,
        )


def _annex_b(packets: Iterator[av.Packet[Any]], video: Any) -> Iterator[av.Packet[Any]]:
    """H.264 as MPEG-TS needs it: Matroska/MP4 store length-prefixed NAL units (avcC)."""
    extradata = video.codec_context.extradata or b""
    if video.codec_context.name != "h264" or not extradata or extradata[0] != 1:
        yield from packets
        return
    bsf = BitStreamFilterContext("h264_mp4toannexb", video)
    for packet in packets:
        if packet.stream.type != "video":
            yield packet
            continue
        for out in bsf.filter(packet):
            out.stream = video
            yield out


def _take_audio(
    gop: Gop, audio: list[tuple[int, av.Packet[Any]]]
) -> list[tuple[int, av.Packet[Any]]]:
    end = gop.end_ticks
    base = gop.first_frame * FRAME_TICKS
    gop.audio.extend((at - base, a) for at, a in audio if at < end)
    return [(at, a) for at, a in audio if at >= end]


def _take_all(
    gop: Gop, audio: list[tuple[int, av.Packet[Any]]]
) -> list[tuple[int, av.Packet[Any]]]:
    base = gop.first_frame * FRAME_TICKS
    gop.audio.extend((at - base, a) for at, a in audio)
    return []

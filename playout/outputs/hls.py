"""Rolling HLS output (5G broadcast / OTT): IDR-aligned segments of about 6 s.

Segments start on the engine's IDR chunks (``TsChunk.idr``) and are cut at the
first IDR at or after ``segment_seconds``; if no IDR arrives within
``max_segment_seconds`` (which is also EXT-X-TARGETDURATION) the segment is cut
anyway and a warning is logged, so the playlist never violates its target
duration. Durations and EXT-X-PROGRAM-DATE-TIME come from the channel timeline
(frame numbers from the broadcast day start), never from the host clock: two
machines playing the same rundown publish the same playlist.

The playlist is replaced atomically (write a temporary file, then ``os.replace``),
so an HTTP server never serves half a playlist. Segments that left the playlist
are kept for ``keep_expired`` more segments (RFC 8216 6.2.2: a client may still be
fetching them) and then deleted. A restarted output resumes the existing
playlist: media sequence numbers keep increasing and the first new segment
carries EXT-X-DISCONTINUITY.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playout.outputs.base import OutputError, OutputSink
from playout.stream import TsChunk

logger = logging.getLogger(__name__)

PLAYLIST = "index.m3u8"
SEGMENT_PREFIX = "seg"
_SEGMENT_NAME = re.compile(rf"^{SEGMENT_PREFIX}(\d+)\.ts$")


@dataclass(frozen=True, kw_only=True)
class HlsSegment:
    sequence: int
    uri: str
    duration: float  # seconds (EXTINF)
    program_date_time: datetime
    discontinuity: bool = False


@dataclass(frozen=True, kw_only=True)
class Playlist:
    target_duration: int
    media_sequence: int
    discontinuity_sequence: int
    segments: tuple[HlsSegment, ...]


def segment_name(sequence: int) -> str:
    return f"{SEGMENT_PREFIX}{sequence:09d}.ts"


def render_playlist(playlist: Playlist, *, zone: ZoneInfo) -> str:
    """The text of a live (sliding-window) media playlist."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{playlist.target_duration}",
        f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{playlist.discontinuity_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for seg in playlist.segments:
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        pdt = seg.program_date_time.astimezone(zone).isoformat(timespec="milliseconds")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{pdt}")
        lines.append(f"#EXTINF:{seg.duration:.3f},")
        lines.append(seg.uri)
    return "\n".join(lines) + "\n"


def parse_playlist(text: str) -> Playlist:
    """Parse a playlist this module wrote (to resume it); raises ValueError otherwise."""
    if not text.startswith("#EXTM3U"):
        raise ValueError("not an M3U playlist")
    target = media_seq = disc_seq = None
    segments: list[HlsSegment] = []
    duration: float | None = None
    pdt: datetime | None = None
    discontinuity = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            media_seq = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            disc_seq = int(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = datetime.fromisoformat(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line and not line.startswith("#"):
            if duration is None or pdt is None or media_seq is None:
                raise ValueError(f"segment {line!r} without EXTINF/PROGRAM-DATE-TIME")
            segments.append(
                HlsSegment(
                    sequence=media_seq + len(segments),
                    uri=line,
                    duration=duration,
                    program_date_time=pdt,
                    discontinuity=discontinuity,
                )
            )
            duration, pdt, discontinuity = None, None, False
    if target is None or media_seq is None:
        raise ValueError("no EXT-X-TARGETDURATION or EXT-X-MEDIA-SEQUENCE")
    return Playlist(
        target_duration=target,
        media_sequence=media_seq,
        discontinuity_sequence=disc_seq or 0,
        segments=tuple(segments),
    )


class HlsOutput(OutputSink):
    """Write IDR-aligned TS segments and a rolling playlist into one directory."""

    def __init__(
        self,
        directory: Path,
        *,
        epoch: datetime,
        mux_rate: int,
        zone: ZoneInfo,
        fps: int = 25,
        segment_seconds: float = 6.0,
        max_segment_seconds: int = 8,
        playlist_size: int = 6,
        keep_expired: int = 6,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"hls:{directory}")
        if epoch.tzinfo is None:
            raise ValueError("HLS epoch must be timezone-aware")
        if max_segment_seconds < segment_seconds:
            raise ValueError("max_segment_seconds must be at least segment_seconds")
        self.directory = directory
        self.epoch = epoch
        self.mux_rate = mux_rate
        self.fps = fps
        self.target_frames = math.ceil(segment_seconds * fps)
        self.max_frames = max_segment_seconds * fps
        self.target_duration = max_segment_seconds
        self.playlist_size = playlist_size
        self.keep_expired = keep_expired
        self.zone = zone
        self.playlist_path = directory / PLAYLIST
        self._segments: deque[HlsSegment] = deque()
        self._expired: deque[str] = deque()
        self._disc_seq = 0
        self._next_seq = 0
        self._pending_discontinuity = False
        self._file: _SegmentFile | None = None
        self.skipped_bytes = 0  # before the first IDR
        self.forced_cuts = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.name}: cannot create the directory: {exc}") from exc
        self._resume()

    # -- resume ------------------------------------------------------------------

    def _resume(self) -> None:
        """Continue an existing playlist so clients see increasing sequence numbers."""
        try:
            text = self.playlist_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            old = parse_playlist(text)
        except ValueError as exc:
            logger.warning("%s: ignoring unreadable playlist (%s), starting afresh", self.name, exc)
            return
        self._segments.extend(old.segments)
        self._disc_seq = old.discontinuity_sequence
        self._next_seq = old.media_sequence + len(old.segments)
        self._pending_discontinuity = True
        first_kept = old.media_sequence - self.keep_expired
        for path in self.directory.iterdir():
            match = _SEGMENT_NAME.match(path.name)
            if match and int(match.group(1)) < first_kept:
                path.unlink(missing_ok=True)
        logger.info("%s: resuming at media sequence %d", self.name, self._next_seq)

    # -- segments ----------------------------------------------------------------

    def _start(self, frame: int) -> None:
        name = segment_name(self._next_seq)
        try:
            self._file = _SegmentFile(self.directory / name, sequence=self._next_seq, frame=frame)
        except OSError as exc:
            raise OutputError(f"{self.name}: cannot open segment {name}: {exc}") from exc
        self._next_seq += 1

    def _finish(self, end_frame: int) -> None:
        seg_file = self._file
        assert seg_file is not None
        self._file = None
        seg_file.close()
        frames = end_frame - seg_file.frame
        if frames <= 0:
            seg_file.path.unlink(missing_ok=True)
            return
        self._segments.append(
            HlsSegment(
                sequence=seg_file.sequence,
                uri=seg_file.path.name,
                duration=frames / self.fps,
                program_date_time=self.epoch + timedelta(seconds=seg_file.frame / self.fps),
                discontinuity=self._pending_discontinuity,
            )
        )
        self._pending_discontinuity = False
        while len(self._segments) > self.playlist_size:
            gone = self._segments.popleft()
            if gone.discontinuity:
                self._disc_seq += 1
            self._expired.append(gone.uri)
        self._write_playlist()
        while len(self._expired) > self.keep_expired:
            (self.directory / self._expired.popleft()).unlink(missing_ok=True)

    def _write_playlist(self) -> None:
        playlist = Playlist(
            target_duration=self.target_duration,
            media_sequence=self._segments[0].sequence,
            discontinuity_sequence=self._disc_seq,
            segments=tuple(self._segments),
        )
        tmp = self.playlist_path.with_name(f".{PLAYLIST}.tmp")
        tmp.write_text(render_playlist(playlist, zone=self.zone), encoding="utf-8")
        os.replace(tmp, self.playlist_path)

    # -- sink --------------------------------------------------------------------

    def write(self, chunk: TsChunk) -> None:
        if self._file is None:
            if not chunk.idr:
                self.skipped_bytes += len(chunk.data)
                return
            self._start(chunk.frame)
        else:
            elapsed = chunk.frame - self._file.frame
            if chunk.idr and elapsed >= self.target_frames:
                self._finish(chunk.frame)
                self._start(chunk.frame)
            elif elapsed >= self.max_frames:
                self.forced_cuts += 1
                logger.warning(
                    "%s: no IDR for %.1f s: cutting a segment that does not start on an IDR",
                    self.name,
                    elapsed / self.fps,
                )
                self._finish(chunk.frame)
                self._start(chunk.frame)
        assert self._file is not None
        self._file.write(chunk.data)

    def close(self) -> None:
        """Publish the segment in progress; its length follows from its bytes (CBR)."""
        if self._file is None:
            return
        frames = round(self._file.bytes * 8 * self.fps / self.mux_rate)
        self._finish(self._file.frame + frames)

    @property
    def segments(self) -> tuple[HlsSegment, ...]:
        return tuple(self._segments)


class _SegmentFile:
    def __init__(self, path: Path, *, sequence: int, frame: int) -> None:
        self.path = path
        self.sequence = sequence
        self.frame = frame
        self.bytes = 0
        self._fh = path.open("wb")

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.bytes += len(data)

    def close(self) -> None:
        self._fh.close()

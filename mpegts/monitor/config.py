"""The monitor's limits: TR 101 290's defaults and the house format's."""

from __future__ import annotations

from dataclasses import dataclass

from core.timecode import FRAME_TICKS
from mpegts.errors import TsInputError
from mpegts.packet import PACKET_SIZE


@dataclass(frozen=True, kw_only=True)
class TsMonitorConfig:
    """Limits of the checks; the defaults are TR 101 290's and the house format's."""

    pat_interval_s: float = 0.5
    pmt_interval_s: float = 0.5
    pid_timeout_s: float = 5.0
    pcr_interval_ms: float = 40.0
    pcr_discontinuity_ms: float = 100.0
    pcr_accuracy_ns: float = 500.0
    pcr_accuracy_window_s: float = 10.0
    cbr: bool = True
    pts_interval_ms: float = 700.0
    frame_ticks: int = FRAME_TICKS  # 90 kHz ticks per video frame (3600 at 25 fps)
    video_tolerance_ticks: int = 180  # 2 ms either way before a frame step is an error
    bitrate_window_s: float = 1.0
    max_examples: int = 5
    batch_bytes: int = PACKET_SIZE * 2048  # bytes buffered before a numpy pass

    def __post_init__(self) -> None:
        if self.batch_bytes < 0 or self.max_examples < 0 or self.frame_ticks <= 0:
            raise TsInputError(
                "TsMonitorConfig: batch_bytes and max_examples must be >= 0 and frame_ticks "
                f"> 0 (got {self.batch_bytes}, {self.max_examples}, {self.frame_ticks})"
            )

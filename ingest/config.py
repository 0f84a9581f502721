"""Ingest settings (config section `[ingest]`, env SKYCLASS_INGEST__…): loudness, QC, encoder.

Defaults follow GY/T 282-2014 for loudness; the QC thresholds are the operator's call,
so every one of them is here rather than in the code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QcThresholds(BaseModel):
    """What the analysis pass reports, and when a finding rejects the file.

    `*_error_seconds` of 0 means that kind of finding is never an error, only a warning.
    """

    model_config = ConfigDict(frozen=True)

    black_min_seconds: float = Field(default=1.0, gt=0)
    black_pixel_threshold: float = Field(default=0.10, gt=0, lt=1)
    black_picture_ratio: float = Field(default=0.98, gt=0, le=1)
    black_error_seconds: float = Field(default=10.0, ge=0)
    # -50 dB: MPEG-2 coding noise between a GOP's frames of a still picture exceeds -60 dB.
    freeze_noise_db: float = Field(default=-50.0, lt=0)
    freeze_min_seconds: float = Field(default=2.0, gt=0)
    freeze_error_seconds: float = Field(default=0.0, ge=0)
    silence_threshold_dbfs: float = Field(default=-50.0, lt=0)
    silence_min_seconds: float = Field(default=2.0, gt=0)
    silence_error_seconds: float = Field(default=10.0, ge=0)
    clip_level: float = Field(default=0.999, gt=0, le=1)  # |sample| at or above: full scale
    clip_min_run: int = Field(default=3, ge=1)  # consecutive full-scale samples = one clip
    clip_warning_events: int = Field(default=1, ge=1)
    clip_error_events: int = Field(default=0, ge=0)  # 0: clipping never rejects
    # A source already in house format (a closed GOP every second) is analysed on its
    # keyframes only: one picture per second, enough for black/freeze of 2 s and more.
    keyframes_only_for_conforming: bool = True
    interlace_min_share: float = Field(default=0.5, gt=0, le=1)  # idet share to call it interlaced


class IngestConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    target_lufs: float = -24.0
    tolerance_lu: float = Field(default=0.5, gt=0)
    max_true_peak_dbtp: float = -2.0
    # Linear gain is used only if the predicted true peak stays this far below the
    # maximum: MP2 coding adds overshoot that the verify step would otherwise catch.
    codec_headroom_db: float = Field(default=1.0, ge=0)
    # The true-peak limiter's ceiling, measured on the 4x oversampled signal.
    limiter_ceiling_dbtp: float = -3.5
    x264_preset: str = "veryfast"
    max_other_seconds: int = Field(default=3600, gt=0)  # fillers, idents, ads, promos …
    qc: QcThresholds = Field(default_factory=QcThresholds)

"""ffmpeg options for a channel's house format, and the check that a file already has it.

Pure functions (no processes): ingest and synth build their ffmpeg-python commands
from here (encoder options as keyword dicts, the picture as a filter chain), the
benchmark takes the same options as argv, and tests check them without running
ffmpeg. The parameters come from `channels.profiles.HouseProfile`; this module only
says how FFmpeg spells them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from channels.profiles import HouseProfile
from ingest.probe import MediaProbe, VideoInfo
from ingest.runner import Stream

__all__ = [
    "Fit",
    "audio_encode_args",
    "audio_encode_options",
    "conformance_problems",
    "conforms",
    "fit_picture",
    "house_video_chain",
    "option_args",
    "scale_matrix",
    "video_encode_args",
    "video_encode_options",
]

# MPEG-2 Main Profile @ Main Level: the largest VBV buffer a decoder must have (bits).
MPEG2_MP_ML_VBV_BITS = 1_835_008
# H.264 level code FFmpeg reports for "4.0".
_H264_LEVELS = {"4.0": 40, "4.1": 41, "4.2": 42, "3.0": 30, "3.1": 31}


def _kbit(bits: int) -> str:
    return f"{bits // 1000}k"


def option_args(options: Mapping[str, str | None]) -> list[str]:
    """ffmpeg-python keyword options as argv, in order (`{"c:v": "copy"}` → `-c:v copy`)."""
    args: list[str] = []
    for name, value in options.items():
        args += [f"-{name}"] if value is None else [f"-{name}", value]
    return args


def video_encode_args(profile: HouseProfile, *, preset: str = "veryfast") -> list[str]:
    """`video_encode_options` as argv (for commands not built with ffmpeg-python)."""
    return option_args(video_encode_options(profile, preset=preset))


def video_encode_options(profile: HouseProfile, *, preset: str = "veryfast") -> dict[str, str]:
    """Encoder options for the house video: interlaced TFF, closed fixed GOP, CBR, tags.

    The picture handed to the encoder must already be the house size and 25 fps with
    its fields marked top-first (`house_video_chain` does that).
    """
    gop = profile.gop_frames
    rate = _kbit(profile.video_bitrate)
    tags = {
        "color_primaries": profile.color_primaries,
        "color_trc": profile.color_transfer,
        "colorspace": profile.color_matrix,
        "color_range": "tv",
        "aspect": f"{profile.display_aspect.numerator}:{profile.display_aspect.denominator}",
    }
    if profile.video_codec == "h264":
        # One second of CPB keeps the HRD inside level 4.0 (25 Mb/s for High) and
        # makes x264 stuff filler so the elementary rate is constant.
        params = ":".join(
            [
                "interlaced=1",
                "tff=1",
                f"keyint={gop}",
                f"min-keyint={gop}",
                "scenecut=0",
                "open-gop=0",
                "bframes=2",
                "b-pyramid=none",
                "nal-hrd=cbr",
                "force-cfr=1",
                "aud=1",
                "repeat-headers=1",
            ]
        )
        return {
            "c:v": "libx264",
            "preset": preset,
            "profile:v": profile.video_profile,
            "level:v": profile.video_level,
            "pix_fmt": profile.pix_fmt,
            "flags": "+ildct+ilme",
            "x264-params": params,
            "b:v": rate, "minrate": rate, "maxrate": rate,
            "bufsize": _kbit(profile.video_bitrate),
            "field_order": "tt",
            **tags,
        }  # fmt: skip
    if profile.video_codec == "mpeg2video":
        bufsize = min(MPEG2_MP_ML_VBV_BITS, profile.video_bitrate // 2)
        return {
            "c:v": "mpeg2video",
            "profile:v": "main",
            "level:v": "main",
            "pix_fmt": profile.pix_fmt,
            "g": str(gop),
            "bf": "2",
            "flags": "+ildct+ilme+cgop",
            "sc_threshold": "1000000000",
            "b:v": rate, "minrate": rate, "maxrate": rate,
            "bufsize": str(bufsize),
            "field_order": "tt",
            **tags,
        }  # fmt: skip
    raise ValueError(f"house profile {profile.name}: no encoder for {profile.video_codec}")


def audio_encode_args(profile: HouseProfile) -> list[str]:
    """`audio_encode_options` as argv."""
    return option_args(audio_encode_options(profile))


def audio_encode_options(profile: HouseProfile) -> dict[str, str]:
    return {
        "c:a": profile.audio_codec,
        "b:a": _kbit(profile.audio_bitrate),
        "ar": str(profile.audio_sample_rate),
        "ac": str(profile.audio_channels),
    }


@dataclass(frozen=True, kw_only=True)
class Fit:
    """Where the source picture lands inside the house raster (pixels, even sizes)."""

    width: int
    height: int
    pad_x: int
    pad_y: int

    @property
    def boxed(self) -> str:
        """none | pillarbox | letterbox: what the operator will see."""
        if self.pad_x > 0:
            return "pillarbox"
        if self.pad_y > 0:
            return "letterbox"
        return "none"


def _even(value: Fraction) -> int:
    return max(2, 2 * round(value / 2))


def fit_picture(source_dar: Fraction, profile: HouseProfile) -> Fit:
    """Scale the source to fit the house raster keeping its display aspect, then pad.

    Works in display units: the house raster shows `profile.display_aspect`, each
    pixel `profile.sample_aspect` wide, so a 9:16 phone video becomes a centred
    pillarbox and a 2.39:1 film a letterbox.
    """
    target_dar = profile.display_aspect
    sar = profile.sample_aspect
    if source_dar >= target_dar:
        width = profile.width
        height = min(profile.height, _even(Fraction(profile.width) * sar / source_dar))
    else:
        height = profile.height
        width = min(profile.width, _even(Fraction(profile.height) * source_dar / sar))
    return Fit(
        width=width,
        height=height,
        pad_x=(profile.width - width) // 2,
        pad_y=(profile.height - height) // 2,
    )


def scale_matrix(colorspace: str | None, height: int) -> str:
    """FFmpeg scale's matrix name for a stream's colour tag (untagged: guess by size)."""
    if colorspace in ("bt709",):
        return "bt709"
    if colorspace in ("bt470bg", "smpte170m", "bt601", "fcc"):
        return "bt601"
    if colorspace in ("bt2020nc", "bt2020c", "bt2020_ncl", "bt2020_cl"):
        return "bt2020"
    return "bt709" if height >= 720 else "bt601"


def _profile_matrix(profile: HouseProfile) -> str:
    return scale_matrix(profile.color_matrix, profile.height)


def house_video_chain(stream: Stream, video: VideoInfo, profile: HouseProfile) -> Stream:
    """The filter chain from any source picture to house size, 25 fps, TFF, house matrix.

    - interlaced sources are deinterlaced to 50 fields/s (bwdif), fitted, and
      re-interlaced top field first (tinterlace): motion keeps its field rate;
    - progressive sources (any rate, VFR too) are resampled to 25 fps and coded as
      interlaced frames with the top field first;
    - the colour matrix is converted in the same scale step (BT.601 <-> BT.709).
    """
    fit = fit_picture(video.display_aspect, profile)
    sar = profile.sample_aspect
    if video.interlaced:
        parity = "tff" if video.field_order == "tff" else "bff"
        stream = (
            stream.filter("setfield", parity)
            .filter("bwdif", mode="send_field", parity="auto")
            .filter("fps", 2 * profile.fps)
        )
    else:
        stream = stream.filter("fps", profile.fps)
    stream = (
        stream.filter(
            "scale", fit.width, fit.height, flags="bicubic",
            in_color_matrix=scale_matrix(video.color_matrix, video.height),
            out_color_matrix=_profile_matrix(profile),
            in_range="tv", out_range="tv",
        )
        .filter("pad", profile.width, profile.height, fit.pad_x, fit.pad_y, "black")
        .filter("setsar", f"{sar.numerator}/{sar.denominator}")
        .filter("format", profile.pix_fmt)
    )  # fmt: skip
    if video.interlaced:
        stream = stream.filter("tinterlace", mode="interleave_top")
    return stream.filter("setfield", "tff")


def conformance_problems(source: MediaProbe, profile: HouseProfile) -> list[str]:
    """Why the source's video may not be stream-copied into this profile (empty: it may)."""
    video = source.video
    if video is None:
        return ["no video stream"]
    problems: list[str] = []

    def expect(what: str, actual: object, wanted: object) -> None:
        if actual != wanted:
            problems.append(f"{what} is {actual}, house {profile.name} needs {wanted}")

    expect("codec", video.codec, profile.video_codec)
    expect("size", f"{video.width}x{video.height}", f"{profile.width}x{profile.height}")
    expect("display aspect", video.display_aspect, profile.display_aspect)
    expect("pixel format", video.pix_fmt, profile.pix_fmt)
    expect("field order", video.field_order, profile.field_order)
    expect("frame rate", video.frame_rate, Fraction(profile.fps))
    if video.variable_rate:
        problems.append("variable frame rate")
    expect("colour matrix", video.color_matrix, profile.color_matrix)
    if profile.video_codec == "h264":
        expect("H.264 profile", (video.profile or "").lower(), profile.video_profile)
        wanted_level = _H264_LEVELS.get(profile.video_level)
        if video.level is not None and wanted_level is not None and video.level > wanted_level:
            problems.append(f"H.264 level {video.level / 10} exceeds {profile.video_level}")
    gop = profile.gop_frames
    expected_keys = tuple(range(0, video.frames, gop))
    if not video.keyframes or video.keyframes[0] != 0:
        problems.append("the first frame is not a keyframe")
    elif video.keyframes != expected_keys:
        problems.append(f"keyframes are not exactly every {gop} frames")
    if video.closed_gops is not True:
        problems.append("GOPs are not all closed (IDR / closed_gop)")
    if video.bit_rate is not None and video.bit_rate > profile.video_bitrate * 1.1:
        problems.append(
            f"video bit rate {video.bit_rate / 1e6:.1f} Mb/s exceeds "
            f"{profile.video_bitrate / 1e6:g} Mb/s"
        )
    return problems


def conforms(source: MediaProbe, profile: HouseProfile) -> bool:
    """True when the video is already in house format and can be stream-copied."""
    return not conformance_problems(source, profile)

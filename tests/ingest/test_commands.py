"""The ffmpeg commands ingest builds with ffmpeg-python, checked as compiled argv.

Pure: nothing here runs ffmpeg. The graphs are read back from the argv (filter chains
resolved from each output's map to the input stream they start from), so a test says
which filters a stream goes through and which options its output gets, whatever the
order ffmpeg-python writes them in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

from channels.profiles import HD, SD
from ingest.analysis import analysis_command, measure_stream_command
from ingest.config import IngestConfig, QcThresholds
from ingest.house import (
    audio_encode_args,
    audio_encode_options,
    option_args,
    video_encode_args,
    video_encode_options,
)
from ingest.normalize import (
    AudioPlan,
    encode_command,
    reaudio_command,
    remux_command,
)
from ingest.probe import AudioInfo, MediaProbe, VideoInfo
from ingest.runner import separate_graphs
from ingest.synth import (
    SynthFormat,
    synth_spec,
    units_encode_command,
    units_mux_command,
    vfr_command,
)

FLAGS = {"-an", "-y"}  # options without a value in these commands


@dataclass
class Output:
    target: str
    maps: list[str] = field(default_factory=list)
    options: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Command:
    inputs: list[tuple[str, dict[str, str]]]  # (file, options before its -i)
    graph: dict[str, tuple[list[str], str]]  # output label -> (input labels, filter)
    graphs: list[str]  # each -filter_complex as written
    outputs: list[Output]
    flags: set[str]

    def chain(self, label: str) -> tuple[str, list[str]]:
        """The input stream an output label starts from, and the filters on the way."""
        filters: list[str] = []
        while label in self.graph:
            inputs, spec = self.graph[label]
            filters.insert(0, spec)
            label = inputs[0]
        return label, filters

    def output(self, target: str, index: int = 0) -> Output:
        return [o for o in self.outputs if o.target == target][index]


_CHAIN = re.compile(r"^((?:\[[^\]]+\])*)(.*?)((?:\[[^\]]+\])*)$")


def parse(argv: list[str]) -> Command:
    """Read an argv of the shape ffmpeg-python compiles (inputs, one graph, outputs)."""
    inputs: list[tuple[str, dict[str, str]]] = []
    graph: dict[str, tuple[list[str], str]] = {}
    outputs: list[Output] = []
    flags: set[str] = set()
    graphs: list[str] = []
    pending: dict[str, str | None] = {}
    maps: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in FLAGS:
            if token == "-y":
                flags.add(token)
            else:
                pending[token[1:]] = None
            i += 1
        elif token == "-i":
            inputs.append((argv[i + 1], {k: str(v) for k, v in pending.items()}))
            pending = {}
            i += 2
        elif token == "-filter_complex":
            graphs.append(argv[i + 1])
            for item in re.split(r"(?<!\\);", argv[i + 1]):
                match = _CHAIN.match(item)
                assert match is not None, item
                ins = re.findall(r"\[([^\]]+)\]", match.group(1))
                outs = re.findall(r"\[([^\]]+)\]", match.group(3))
                assert len(outs) <= 1 or match.group(2).startswith("split"), item
                for label in outs or [f"sink:{item}"]:
                    graph[label] = (ins, match.group(2))
            i += 2
        elif token == "-map":
            maps.append(argv[i + 1].strip("[]"))
            i += 2
        elif token.startswith("-") and token != "-":
            pending[token[1:]] = argv[i + 1]
            i += 2
        else:  # a file name ("-" included) closes an output
            outputs.append(Output(target=token, maps=maps, options=pending))
            pending, maps = {}, []
            i += 1
    return Command(inputs=inputs, graph=graph, graphs=graphs, outputs=outputs, flags=flags)


def _video(**changes: object) -> VideoInfo:
    values: dict[str, object] = dict(
        index=0, codec="h264", profile="High", level=40, width=1280, height=720,
        sample_aspect=Fraction(1), pix_fmt="yuv420p", field_order="progressive",
        color_matrix="bt709", color_primaries="bt709", color_transfer="bt709",
        frame_rate=Fraction(30), variable_rate=False, frames=300, keyframes=(0,),
        closed_gops=True, duration_seconds=10.0, bit_rate=None,
    )  # fmt: skip
    values.update(changes)
    return VideoInfo(**values)  # type: ignore[arg-type]


def _probe(video: VideoInfo, audio_index: int = 1) -> MediaProbe:
    audio = AudioInfo(
        index=audio_index, codec="aac", sample_rate=44_100, channels=1, layout="mono",
        duration_seconds=10.0, bit_rate=None,
    )  # fmt: skip
    return MediaProbe(
        path=Path("/media/in put.mp4"), format_name="mov,mp4", size_bytes=1,
        duration_seconds=10.0, video=video, audio=audio,
    )  # fmt: skip


HOUSE_MIX = [
    "aresample=48000:precision=20:resampler=soxr",
    "aformat=channel_layouts=stereo:sample_fmts=flt",
]


# -- analysis ---------------------------------------------------------------------------


@pytest.mark.parametrize("keyframes_only", [False, True])
def test_analysis_is_one_decode_with_every_detector(keyframes_only: bool) -> None:
    command = parse(
        analysis_command(_probe(_video(index=2), 4), QcThresholds(), keyframes_only=keyframes_only)
    )
    [(path, options)] = command.inputs  # one input: one decode
    assert path == "/media/in put.mp4"
    expected = {"skip_loop_filter": "all", "flags2": "fast"}
    if keyframes_only:  # non-key packets dropped before the decoder, skipped inside it too
        expected |= {"skip_frame": "nokey", "bsf:v": "noise=drop=not(key)"}
    assert options == expected

    null_outputs = [o for o in command.outputs if o.target == "-"]
    assert len(null_outputs) == 2 and all(o.options == {"f": "null"} for o in null_outputs)
    chains = [command.chain(o.maps[0]) for o in null_outputs]
    chains_by_last = {filters[-1].split("=")[0]: (src, filters) for src, filters in chains}
    assert chains_by_last["freezedetect"] == (
        "0:2",
        ["split=2", "blackdetect=d=1.0:pic_th=0.98:pix_th=0.1", "freezedetect=d=2.0:n=-50.0dB"],
    )
    # idet sees only the first 500 frames (the comma escaped for the graph parser).
    assert chains_by_last["idet"] == ("0:2", ["split=2", r"select=lt(n\,500)", "idet"])

    pcm = command.output("pipe:1")
    assert pcm.options == {"f": "f32le", "c:a": "pcm_f32le"}
    assert command.chain(pcm.maps[0]) == ("0:4", HOUSE_MIX)
    # Picture and sound are separate graphs (threads), as -filter_complex and -af were.
    assert [g.split("]")[0] for g in command.graphs] == ["[0:2", "[0:4"]


def test_analysis_thresholds_reach_the_filters() -> None:
    thresholds = QcThresholds(
        black_min_seconds=0.5, black_pixel_threshold=0.2, black_picture_ratio=0.9,
        freeze_noise_db=-60, freeze_min_seconds=3.0,
    )  # fmt: skip
    command = parse(analysis_command(_probe(_video()), thresholds))
    _, filters = command.chain(command.output("-").maps[0])
    assert filters[1:] == [
        "blackdetect=d=0.5:pic_th=0.9:pix_th=0.2",
        "freezedetect=d=3.0:n=-60.0dB",
    ]


def test_measure_stream_command_pipes_the_house_mix() -> None:
    first = parse(measure_stream_command(Path("/a.mkv")))
    assert first.inputs == [("/a.mkv", {})]
    assert first.chain(first.output("pipe:1").maps[0]) == ("0:a:0", HOUSE_MIX)
    chosen = parse(measure_stream_command(Path("/a.mkv"), 3))
    assert chosen.chain(chosen.output("pipe:1").maps[0]) == ("0:3", HOUSE_MIX)


# -- the encode ---------------------------------------------------------------------------

LINEAR = AudioPlan(gain_db=-4.0, limit=False, ceiling_dbtp=-3.5)
LIMITED = AudioPlan(gain_db=10.0, limit=True, ceiling_dbtp=-3.5)


def test_reencode_of_an_interlaced_4_3_source_to_hd() -> None:
    video = _video(
        width=720, height=576, sample_aspect=Fraction(16, 15), field_order="bff",
        color_matrix="bt470bg", frame_rate=Fraction(25), frames=250,
    )  # fmt: skip
    argv = encode_command(
        _probe(video), Path("/out/x.ts"), profile=HD, plan=LINEAR, copy_video=False,
        frames=250, config=IngestConfig(),
    )  # fmt: skip
    command = parse(argv)
    assert command.inputs == [("/media/in put.mp4", {})] and command.flags == {"-y"}
    [out] = command.outputs
    assert out.target == "/out/x.ts"
    source, filters = command.chain(out.maps[0])
    assert source == "0:0"
    assert filters == [
        "setfield=bff",
        "bwdif=mode=send_field:parity=auto",
        "fps=50",
        "scale=1440:1080:flags=bicubic:in_color_matrix=bt601:in_range=tv"
        ":out_color_matrix=bt709:out_range=tv",
        "pad=1920:1080:240:0:black",  # 4:3 pillarboxed in 16:9
        "setsar=1/1",
        "format=yuv420p",
        "tinterlace=mode=interleave_top",
        "setfield=tff",
    ]
    assert command.chain(out.maps[1]) == (
        "0:1",
        [*HOUSE_MIX, "volume=-4.000dB:precision=double", "apad",
         "atrim=end_sample=480000", "asetpts=N/SR/TB"],
    )  # fmt: skip
    assert len(command.graphs) == 2  # picture and sound: two graphs, as -vf and -af were
    wanted = video_encode_options(HD) | audio_encode_options(HD)
    assert {k: out.options[k] for k in wanted} == wanted
    assert out.options["f"] == "mpegts" and out.options["fps_mode"] == "cfr"
    assert out.options["frames:v"] == "250"
    assert out.options["map_metadata"] == "-1" and out.options["map_chapters"] == "-1"


def test_progressive_source_and_the_limiter() -> None:
    argv = encode_command(
        _probe(_video()), Path("/out/x.ts"), profile=SD, plan=LIMITED, copy_video=False,
        frames=100, config=IngestConfig(x264_preset="medium"),
    )  # fmt: skip
    command = parse(argv)
    [out] = command.outputs
    _, picture = command.chain(out.maps[0])
    assert picture[0] == "fps=25" and picture[-1] == "setfield=tff"
    assert (
        "scale=720:432:flags=bicubic:in_color_matrix=bt709:in_range=tv"
        ":out_color_matrix=bt601:out_range=tv" in picture
    )  # BT.709 -> BT.601 in the scale
    assert "pad=720:576:0:72:black" in picture  # 16:9 letterboxed in 4:3
    assert not any(f.startswith(("bwdif", "tinterlace")) for f in picture)
    _, sound = command.chain(out.maps[1])
    assert sound[2:] == [
        "volume=10.000dB:precision=double",
        "aresample=192000:resampler=soxr",  # 4x oversampled true-peak limiting
        "alimiter=attack=1:latency=true:level=false:limit=0.66834:release=60",
        "aresample=48000:resampler=soxr",
        "apad",
        "atrim=end_sample=192000",
        "asetpts=N/SR/TB",
    ]
    assert out.options["c:v"] == "mpeg2video" and "preset" not in out.options


def test_conforming_video_is_copied() -> None:
    argv = encode_command(
        _probe(_video()), Path("/out/x.mkv"), profile=HD, plan=LINEAR, copy_video=True,
        frames=300, config=IngestConfig(),
    )  # fmt: skip
    [out] = parse(argv).outputs
    assert out.maps[0] == "0:0"  # straight from the input: no filter, no encoder
    assert out.options["c:v"] == "copy" and out.options["f"] == "matroska"
    assert "fps_mode" not in out.options and "x264-params" not in out.options


def test_corrective_pass_and_remux() -> None:
    argv = reaudio_command(
        Path("/out/enc.mkv"), _probe(_video(), 3), Path("/out/fixed.mkv"), profile=HD,
        plan=LIMITED, frames=50,
    )  # fmt: skip
    command = parse(argv)
    assert [path for path, _ in command.inputs] == ["/out/enc.mkv", "/media/in put.mp4"]
    [out] = command.outputs
    assert out.maps[0] == "0:v:0" and out.options["c:v"] == "copy"  # the house video
    source, sound = command.chain(out.maps[1])
    assert source == "1:3" and sound[-2] == "atrim=end_sample=96000"  # the source's audio
    remux = parse(remux_command(Path("/out/a.ts"), Path("/out/a.mkv")))
    assert remux.inputs == [("/out/a.ts", {})]
    [out] = remux.outputs
    assert out.maps == ["0"] and out.options == {"f": "matroska", "c": "copy"}  # every stream


def test_option_dicts_and_argv_agree() -> None:
    assert video_encode_args(SD) == option_args(video_encode_options(SD))
    assert audio_encode_args(HD) == ["-c:a", "mp2", "-b:a", "192k", "-ar", "48000", "-ac", "2"]
    assert option_args({"an": None, "f": "null"}) == ["-an", "-f", "null"]


def test_graph_parts_are_separated() -> None:
    graph = r"[0:0]split=2[s0][s1];[s1]a=x\;y[s2];[0:1]b[s3];[s0]c=1\,2;[s3]d[s4]"
    assert separate_graphs(graph) == [
        r"[0:0]split=2[s0][s1];[s1]a=x\;y[s2];[s0]c=1\,2",  # escaped ; stays inside
        "[0:1]b[s3];[s3]d[s4]",
    ]
    assert separate_graphs("[0:0]a[s0];[0:0]b[s1]") == ["[0:0]a[s0]", "[0:0]b[s1]"]


# -- synth ----------------------------------------------------------------------------------


def test_synth_encodes_each_second_once_into_segments(tmp_path: Path) -> None:
    spec = synth_spec(SynthFormat.HOUSE_SD)
    argv = units_encode_command(
        spec, tmp_path / "stills.txt", seconds=3, remainder=10, segments=tmp_path / "s%04d.ts"
    )
    command = parse(argv)
    assert command.inputs == [(str(tmp_path / "stills.txt"), {"f": "concat", "safe": "0"})]
    [out] = command.outputs
    assert command.chain(out.maps[0]) == (
        "0:v",
        ["fps=25", "setsar=16/15", "format=yuv420p", "setfield=tff"],
    )
    assert out.options["f"] == "segment" and out.options["segment_format"] == "mpegts"
    assert out.options["segment_frames"] == "25,50,75"  # the partial last second too
    assert out.options["frames:v"] == "85" and "an" in out.options
    assert {k: out.options[k] for k in spec.video_options} == dict(spec.video_options)


def test_synth_mux_and_vfr_commands(tmp_path: Path) -> None:
    spec = synth_spec(SynthFormat.P720_30)
    mux = parse(
        units_mux_command(spec, tmp_path / "play.txt", tmp_path / "a.f32", tmp_path / "o.mp4",
                          frames=90)
    )  # fmt: skip
    assert mux.inputs[1] == (
        str(tmp_path / "a.f32"),
        {"f": "f32le", "ar": "48000", "ch_layout": "stereo"},
    )
    [out] = mux.outputs
    assert out.maps == ["0:v", "1:a"] and out.options["c:v"] == "copy"
    assert out.options["f"] == "mp4" and out.options["movflags"] == "+faststart"
    mkv = parse(
        units_mux_command(spec, tmp_path / "p.txt", tmp_path / "a.f32", tmp_path / "o.mkv",
                          frames=90)
    )  # fmt: skip
    assert mkv.outputs[0].options["f"] == "matroska" and "movflags" not in mkv.outputs[0].options

    vfr_spec = synth_spec(SynthFormat.VFR)
    vfr = parse(
        vfr_command(vfr_spec, tmp_path / "v.txt", tmp_path / "a.f32", tmp_path / "o.mp4",
                    frames=60)
    )  # fmt: skip
    [out] = vfr.outputs
    assert vfr.chain(out.maps[0]) == (
        "0:v",
        ["fps=30", "format=yuv420p", "settb=1/90000", r"setpts=(N+0.4*mod(N\,2))/30/TB"],
    )
    assert out.maps[1] == "1:a"
    assert out.options["fps_mode"] == "passthrough" and out.options["bf"] == "0"
    assert out.options["enc_time_base:v"] == "filter" and out.options["frames:v"] == "60"

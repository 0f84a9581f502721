"""Benchmark: skyclass ingest vs the naive multi-pass baseline on one HD lesson.

    .venv/bin/python bench/ingest.py [--minutes 16] [--keep DIR]

1. synthesizes a house-format HD lesson (1080i25 H.264 CBR, MP2; about -20 LUFS);
2. ingests it with skyclass (probe, one analysis decode, stream-copy video + audio
   encode, verify: re-probe and re-measure);
3. runs the naive baseline on the same file: a loudnorm measurement pass, separate
   blackdetect, freezedetect and silencedetect runs (each decoding again), then the
   encode pass (loudnorm second pass + x264 to the house format);
4. prints the wall-time ratio and real-time factors. Targets: skyclass <= 0.6x the
   baseline, and >= 30x real time for a conforming source.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.profiles import HD
from core.clock import SystemClock
from grading import Band, DurationRule, GradingPolicy
from ingest.asset import LessonMetadata
from ingest.config import IngestConfig
from ingest.house import audio_encode_args, video_encode_args
from ingest.library import AssetLibrary
from ingest.pipeline import Ingester, IngestRequest
from ingest.runner import ffmpeg_path, run_ffmpeg
from ingest.synth import SynthFormat, synthesize
from skyclass.database import make_engine, session_factory, upgrade


def baseline(source: Path, out: Path) -> dict[str, float]:
    """The naive way: one decode per measurement, then a full transcode."""
    times: dict[str, float] = {}

    def timed(name: str, args: list[str]) -> str:
        start = time.monotonic()
        result = run_ffmpeg(args)
        times[name] = time.monotonic() - start
        return result.stderr

    text = timed(
        "loudnorm measure",
        ["-i", str(source), "-map", "0:a", "-af",
         "loudnorm=I=-24:TP=-2:LRA=15:print_format=json", "-f", "null", "-"],
    )  # fmt: skip
    measured = json.loads(text[text.rindex("{") : text.rindex("}") + 1])
    timed("blackdetect", ["-i", str(source), "-map", "0:v", "-vf", "blackdetect=d=1",
                          "-f", "null", "-"])  # fmt: skip
    timed("freezedetect", ["-i", str(source), "-map", "0:v", "-vf", "freezedetect=d=2",
                           "-f", "null", "-"])  # fmt: skip
    timed("silencedetect", ["-i", str(source), "-map", "0:a", "-af",
                            "silencedetect=n=-50dB:d=2", "-f", "null", "-"])  # fmt: skip
    loudnorm = (
        "loudnorm=I=-24:TP=-2:LRA=15:linear=true"
        f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
        f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
        f":offset={measured['target_offset']},aresample=48000"
    )
    timed(
        "encode",
        ["-y", "-i", str(source), "-map", "0:v", "-map", "0:a",
         "-vf", "setfield=tff", *video_encode_args(HD), "-af", loudnorm,
         *audio_encode_args(HD), "-f", "matroska", str(out)],
    )  # fmt: skip
    return times


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", info)
        if found:
            cpu = found.group(1).strip()
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    version = run_ffmpeg(["-version"]).stdout.splitlines()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, load {load:.1f} at start; "
        f"Python {platform.python_version()}; {version}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=16.0)
    parser.add_argument("--keep", type=Path, help="keep the work files in this folder")
    parser.add_argument("--no-baseline", action="store_true", help="time skyclass only")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="skyclass-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    print(f"machine: {machine()}")
    print(f"ffmpeg: {ffmpeg_path()}")
    try:
        start = time.monotonic()
        lesson = synthesize(work / "lesson.mkv", grade="g03", seconds=seconds,
                            fmt=SynthFormat.HOUSE_HD)  # fmt: skip
        synth_s = time.monotonic() - start
        print(f"synth: {seconds / 60:g} min HD house-format lesson in {synth_s:.1f} s "
              f"({seconds / synth_s:.1f}x real time)")  # fmt: skip

        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        upgrade(engine)
        library = AssetLibrary(session_factory(engine), work / "media")
        policy = GradingPolicy(
            durations={b: DurationRule(min_seconds=1, max_seconds=7200) for b in Band}
        )
        ingester = Ingester(library, policy=policy, config=IngestConfig(), clock=SystemClock())
        start = time.monotonic()
        outcome = ingester.ingest(
            IngestRequest(
                source=lesson.path,
                metadata=LessonMetadata(title=lesson.title, grade="g03", subject="数学"),
                profile=HD,
            )
        )
        ours = time.monotonic() - start
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.timings.items())
        after = outcome.asset.loudness_after
        print(f"skyclass ingest: {ours:.1f} s ({seconds / ours:.1f}x real time); "
              f"stream copied: {outcome.stream_copied}; {stages}")  # fmt: skip
        print(f"  loudness after: {after['integrated_lufs']:.2f} LUFS, "
              f"TP {after['true_peak_dbtp']:.2f} dBTP")  # fmt: skip

        if args.no_baseline:
            print(f"conforming-source real-time factor: {seconds / ours:.1f}x (target >= 30x)")
            return 0
        start = time.monotonic()
        times = baseline(lesson.path, work / "baseline.mkv")
        theirs = time.monotonic() - start
        detail = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        print(f"naive baseline: {theirs:.1f} s ({seconds / theirs:.1f}x real time); {detail}")
        analysis_only = theirs - times["encode"]
        print(f"  baseline without its encode pass: {analysis_only:.1f} s")
        ratio = ours / theirs
        print(f"ratio skyclass/baseline: {ratio:.3f} (target <= 0.6) "
              f"{'MET' if ratio <= 0.6 else 'NOT MET'}")  # fmt: skip
        rtf = seconds / ours
        print(f"conforming-source real-time factor: {rtf:.1f}x (target >= 30x) "
              f"{'MET' if rtf >= 30 else 'NOT MET'}")  # fmt: skip
        engine.dispose()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

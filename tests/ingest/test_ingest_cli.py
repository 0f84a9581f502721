"""`skyclass ingest|loudness|assets`: rejections store nothing, review, packages, batch."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ingest.runner import ffmpeg_path
from ingest.synth import Defect, SynthFormat
from tests.ingest.conftest import Synth

Cli = Any


def _media_files(tmp_path: Path) -> list[Path]:
    media = tmp_path / "media"
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def _assets(cli: Cli, config: Path) -> list[dict[str, Any]]:
    result = cli("--config", str(config), "assets", "list", "--json")
    assert result.code == 0, result.stderr
    return list(json.loads(result.stdout))


def _lavfi(out: Path, *args: str) -> Path:
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", *args, str(out)], check=True)
    return out


def _ingest(cli: Cli, config: Path, path: Path, *extra: str) -> Any:
    return cli(
        "--config", str(config), "ingest", str(path),
        "--grade", "g03", "--subject", "数学", "--title", "两位数乘法", *extra,
    )  # fmt: skip


def test_ingest_json_then_show_and_review(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path
) -> None:
    source = synth(SynthFormat.HOUSE_SD, 3.0)
    result = _ingest(cli, short_config, source.path, "--channel-profile", "sd", "--json",
                     "--lesson-id", "L-g03-math-03")  # fmt: skip
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"asset_id", "path", "duration_frames", "loudness", "qc"}
    assert data["duration_frames"] == 75
    assert abs(data["loudness"]["integrated_lufs"] + 24) <= 0.5
    assert data["loudness"]["true_peak_dbtp"] <= -2
    assert Path(data["path"]).is_file() and Path(data["path"]).is_relative_to(tmp_path / "media")

    show = cli("--config", str(short_config), "assets", "show", "L-g03-math-03", "--json")
    assert show.code == 0
    shown = json.loads(show.stdout)
    assert shown["review_state"] == "pending" and shown["stream_copied"] is True

    bad = cli("--config", str(short_config), "assets", "review", data["asset_id"],
              "--approve", "--reviewer", "王老师", "--failed", "scientific")  # fmt: skip
    assert bad.code == 2 and "科学性" in bad.stderr
    ok = cli("--config", str(short_config), "assets", "review", data["asset_id"],
             "--approve", "--reviewer", "王老师", "--notes", "三审通过")  # fmt: skip
    assert ok.code == 0, ok.stderr
    reviewed = json.loads(
        cli("--config", str(short_config), "assets", "show", data["asset_id"], "--json").stdout
    )
    assert reviewed["review_state"] == "approved"
    assert reviewed["reviews"][0]["reviewer"] == "王老师"
    assert reviewed["reviews"][0]["checks"] == {
        "political": True, "scientific": True, "normative": True,
    }  # fmt: skip

    again = _ingest(cli, short_config, source.path, "--lesson-id", "L-g03-math-03")
    assert again.code == 2 and "already" in again.stderr


def _rejection_cases(tmp_path: Path, synth: Synth) -> dict[str, tuple[Path, tuple[str, ...]]]:
    good = synth(SynthFormat.HOUSE_SD, 3.0).path
    long = synth(SynthFormat.HOUSE_SD, 130.0).path  # the test config allows 2–120 s
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video at all" * 500)
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    corrupt = tmp_path / "corrupt.mkv"
    data = bytearray(good.read_bytes())
    for offset in range(len(data) // 4, len(data) * 3 // 4, 4096):
        data[offset : offset + 512] = bytes(range(256)) * 2
    corrupt.write_bytes(bytes(data))
    no_video = _lavfi(tmp_path / "no_video.mka", "-f", "lavfi", "-i", "sine=d=3", "-c:a", "mp2")
    no_audio = _lavfi(
        tmp_path / "no_audio.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc=d=3:s=320x240",
        "-c:v",
        "mpeg2video",
    )
    return {
        "duration": (long, ()),
        "unreadable": (garbage, ()),
        "truncated": (truncated, ()),
        "corrupt": (corrupt, ()),
        "no video": (no_video, ()),
        "no audio": (no_audio, ()),
        "unknown grade": (good, ("--grade", "g13")),
        "unknown subject": (good, ("--subject", "炼丹")),
    }


@pytest.mark.slow
def test_every_rejection_exits_2_and_stores_nothing(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path
) -> None:
    cases = _rejection_cases(tmp_path, synth)
    for case, (path, extra) in cases.items():
        result = _ingest(cli, short_config, path, "--channel-profile", "sd", *extra)
        assert result.code == 2, (case, result.stderr)
        assert path.name in result.stderr or extra, (case, result.stderr)
        assert _media_files(tmp_path) == [], case  # no partial files in the media root
    assert _assets(cli, short_config) == []


def test_default_duration_rule_rejects_a_short_lesson(
    cli: Cli, synth: Synth, tmp_path: Path
) -> None:
    result = cli("ingest", str(synth(SynthFormat.HOUSE_SD, 3.0).path),
                 "--grade", "g03", "--subject", "数学", "--title", "短")  # fmt: skip
    assert result.code == 2
    assert "15–20 min" in result.stderr and "小学" in result.stderr
    assert _media_files(tmp_path) == []


def test_qc_error_threshold_rejects(
    cli: Cli, synth: Synth, tmp_path: Path, short_config: Path
) -> None:
    config = tmp_path / "strict.toml"
    config.write_text(
        short_config.read_text() + "\n[ingest.qc]\nblack_error_seconds = 2.5\n", encoding="utf-8"
    )
    source = synth(SynthFormat.HOUSE_SD, 8.0, (Defect.BLACK,))
    result = _ingest(cli, config, source.path, "--channel-profile", "sd")
    assert result.code == 2 and "black picture" in result.stderr
    assert _media_files(tmp_path) == []


def _package(folder: Path) -> Path:
    folder.mkdir()
    (folder / "学习任务单.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    with zipfile.ZipFile(folder / "课后练习.docx", "w") as docx:
        docx.writestr("[Content_Types].xml", "<Types/>")
        docx.writestr("word/document.xml", "<w:document/>")
    (folder / "notes.txt").write_text("not an attachment")
    return folder


def test_package_attachments_are_stored_with_checksums(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path
) -> None:
    import hashlib

    package = _package(tmp_path / "pkg")
    result = _ingest(cli, short_config, synth(SynthFormat.HOUSE_SD, 3.0).path,
                     "--channel-profile", "sd", "--package", str(package), "--json")  # fmt: skip
    assert result.code == 0, result.stderr
    asset_id = json.loads(result.stdout)["asset_id"]
    shown = json.loads(
        cli("--config", str(short_config), "assets", "show", asset_id, "--json").stdout
    )
    kinds = {a["kind"]: a for a in shown["attachments"]}
    assert set(kinds) == {"task_sheet", "exercises"}
    for attachment in kinds.values():
        stored = Path(attachment["path"])
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == attachment["sha256"]
        original = package / attachment["filename"]
        assert original.read_bytes() == stored.read_bytes()


def test_misnamed_attachment_is_refused(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path
) -> None:
    package = _package(tmp_path / "pkg")
    (package / "课后练习2.pdf").write_text("this is not a pdf")
    result = _ingest(cli, short_config, synth(SynthFormat.HOUSE_SD, 3.0).path,
                     "--channel-profile", "sd", "--package", str(package))  # fmt: skip
    assert result.code == 2 and "not a PDF" in result.stderr
    assert _media_files(tmp_path) == []


@pytest.mark.slow
def test_batch_keeps_going_past_bad_files(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.mkv").write_bytes(synth(SynthFormat.HOUSE_SD, 3.0).path.read_bytes())
    (folder / "b.mkv").write_bytes(synth(SynthFormat.P720_30, 3.0).path.read_bytes())
    (folder / "bad.mkv").write_bytes(b"broken")
    (folder / "filler.mkv").write_bytes(synth(SynthFormat.MONO44K, 3.0).path.read_bytes())
    manifest = folder / "lessons.csv"
    manifest.write_text(
        "file,grade,subject,title,lesson_id,kind,profile\n"
        "a.mkv,g03,数学,乘法,L1,lesson,sd\n"
        "bad.mkv,g03,数学,坏文件,L2,lesson,sd\n"
        "b.mkv,g08,物理,力,L3,lesson,sd\n"
        "filler.mkv,,,垫片,F1,filler,sd\n",
        encoding="utf-8",
    )
    result = cli("--config", str(short_config), "ingest", str(folder),
                 "--manifest", str(manifest), "--jobs", "2", "--json")  # fmt: skip
    assert result.code == 2
    assert "bad.mkv" in result.stderr and "1 of 4" in result.stderr
    data = json.loads(result.stdout)
    assert sorted(i["asset_id"] is not None for i in data["ingested"]) == [True] * 3
    assets = _assets(cli, short_config)
    assert sorted(a["lesson_id"] for a in assets) == ["F1", "L1", "L3"]
    assert {a["lesson_id"]: a["kind"] for a in assets}["F1"] == "filler"


def test_loudness_command_json(cli: Cli, synth: Synth) -> None:
    result = cli("loudness", str(synth(SynthFormat.HOUSE_SD, 3.0).path), "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {
        "integrated_lufs", "lra", "true_peak_dbtp", "max_momentary_lufs", "max_short_term_lufs",
    }  # fmt: skip
    assert -21.5 < data["integrated_lufs"] < -18.5  # synth makes about -20 LUFS
    missing = cli("loudness", "/nonexistent.wav")
    assert missing.code == 2

"""Ad categories at ingest (`--ad-category`, required for ads) and `assets categorize`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels import AdCategory
from ingest import AssetKind, AssetLibrary, LessonMetadata, NewAsset
from ingest.synth import SynthFormat
from skyclass.database import make_engine, session_factory, upgrade
from tests.ingest.conftest import Synth

Cli = Any


def _ingest_ad(cli: Cli, config: Path, path: Path, *extra: str) -> Any:
    return cli("--config", str(config), "ingest", str(path), "--kind", "ad", "--title", "牛奶广告",
               "--channel-profile", "sd", *extra)  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ((), "an ad needs --ad-category"),
        (("--ad-category", "snake_oil"), "unknown ad category 'snake_oil'"),
    ],
)
def test_an_ad_without_a_known_category_is_refused(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path, extra: tuple[str, ...], needle: str
) -> None:
    source = synth(SynthFormat.HOUSE_SD, 2.0)
    result = _ingest_ad(cli, short_config, source.path, *extra)
    assert result.code == 2 and needle in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    listed = cli("--config", str(short_config), "assets", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_a_lesson_takes_no_ad_category(cli: Cli, short_config: Path, synth: Synth) -> None:
    source = synth(SynthFormat.HOUSE_SD, 2.0)
    result = cli("--config", str(short_config), "ingest", str(source.path), "--grade", "g03",
                 "--subject", "数学", "--ad-category", "food",
                 "--channel-profile", "sd")  # fmt: skip
    assert result.code == 2 and "for ads and promos, not a lesson" in result.stderr


def test_an_ad_is_stored_with_its_category(cli: Cli, short_config: Path, synth: Synth) -> None:
    source = synth(SynthFormat.HOUSE_SD, 2.0)
    result = _ingest_ad(cli, short_config, source.path, "--ad-category", "食品饮料", "--json",
                        "--lesson-id", "AD-MILK")  # fmt: skip
    assert result.code == 0, result.stderr
    shown = json.loads(cli("--config", str(short_config), "assets", "show", "AD-MILK",
                           "--json").stdout)  # fmt: skip
    assert (shown["kind"], shown["ad_category"]) == ("ad", "food")


def test_a_manifest_row_carries_the_category(
    cli: Cli, short_config: Path, synth: Synth, tmp_path: Path
) -> None:
    source = synth(SynthFormat.HOUSE_SD, 2.0)
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "ad.mkv").write_bytes(source.path.read_bytes())
    manifest = folder / "lessons.csv"
    manifest.write_text(
        "file,title,kind,ad_category,lesson_id,profile\n"
        "ad.mkv,公益广告,ad,public_service,AD-PS,sd\n",
        encoding="utf-8",
    )
    result = cli("--config", str(short_config), "ingest", str(folder), "--manifest", str(manifest),
                 "--jobs", "1")  # fmt: skip
    assert result.code == 0, result.stderr
    shown = json.loads(cli("--config", str(short_config), "assets", "show", "AD-PS",
                           "--json").stdout)  # fmt: skip
    assert shown["ad_category"] == "public_service"
    bad = manifest.with_name("bad.csv")
    bad.write_text("file,title,kind,ad_category\nad.mkv,公益广告,ad,lottery\n", encoding="utf-8")
    refused = cli("--config", str(short_config), "ingest", str(folder), "--manifest", str(bad))
    assert refused.code == 2 and "bad.csv row 2, column 'ad_category'" in refused.stderr


def test_categorize_an_ad_ingested_before_categories(cli: Cli, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade(engine)
    library = AssetLibrary(session_factory(engine), tmp_path / "media")
    for asset_id, kind in (("OLD-AD", AssetKind.AD), ("L1", AssetKind.LESSON)):
        library.register(
            NewAsset(
                asset_id=asset_id, lesson_id=None, kind=kind,
                metadata=LessonMetadata(title=asset_id, grade="g03", subject="数学"),
                profile="hd", path=tmp_path / f"{asset_id}.mkv", sha256=asset_id * 8,
                size_bytes=1, duration_frames=750, source_name=asset_id, source_sha256="x",
                stream_copied=True, loudness_before={}, loudness_after={}, qc={},
            ),
            at=datetime(2026, 1, 1, tzinfo=UTC),
        )  # fmt: skip
    assert library.get("OLD-AD").ad_category is None
    done = cli("assets", "categorize", "OLD-AD", "--ad-category", "alcohol")
    assert done.code == 0 and "alcohol (酒类)" in done.stdout
    assert library.get("OLD-AD").ad_category is AdCategory.ALCOHOL
    lesson = cli("assets", "categorize", "L1", "--ad-category", "food")
    assert lesson.code == 2 and "only ads and promos" in lesson.stderr
    unknown = cli("assets", "categorize", "NOPE", "--ad-category", "food")
    assert unknown.code == 2 and "unknown asset" in unknown.stderr

"""The 素材库 page's ingest jobs table and /metrics' queue gauge over a real farm.

On a throw-away PostgreSQL database, `skyclass ingest --queue` queues two files and a
real `skyclass worker --until-empty` (run in this process, so it costs no interpreter
start) runs them: one is stored, one is rejected by the real QC. Three more are
queued and two of them moved through the farm's own JobStore the way a worker
writes them (no worker runs them): one mid-encode on another host, one waiting for
its retry, one still queued. The console is the shell's own Runtime and create_app,
served by uvicorn on loopback, read as a logged-in operator.

Judges: lxml parses the served HTML into a DOM (as a browser would); the expected
values come from SQL on the asset library and from what the test itself wrote;
prometheus-client's text parser reads /metrics; chromium renders the page in the
last test (skipped, saying why, without chromium or playwright).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import html
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from web_world import PASSWORD, login, serve

from farm.jobs import JobStore
from ingest.runner import ffmpeg_path
from skyclass.cli import main
from skyclass.database import make_engine, upgrade
from skyclass.web import create_app
from skyclass.web.users import Role, UserStore

PG_URL_ENV = "SKYCLASS_TEST_DATABASE_URL"
CHROMIUM = Path("/usr/bin/chromium")
COLUMNS = ("id", "file", "state", "stage", "percent", "tries", "worker", "asset", "error")
FILLER_SD = ("--kind", "filler", "--channel-profile", "sd")
RETRY_ERROR = "attempt 1 of 2 failed: FfmpegError: ffmpeg failed (exit -9)"


def lavfi_source(path: Path, seconds: float, *, silent: tuple[float, float] | None = None) -> Path:
    """Test picture and tone, H.264 + AAC (not house format); ``silent`` mutes a span."""
    tone = "sine=frequency=440:sample_rate=48000,volume=0.3"
    if silent is not None:
        tone += f",volume=enable='between(t,{silent[0]},{silent[1]})':volume=0"
    subprocess.run(
        [ffmpeg_path(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=720x576:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"{tone},aformat=channel_layouts=stereo",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


@dataclass
class Station:
    base: str
    url: str
    job_ids: dict[str, int]  # file name → ingest job id
    asset_id: str  # the stored file's asset, from SQL


def _job_ids(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT label, id FROM farm.ingest_job"))
            return {str(label): int(job_id) for label, job_id in rows}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    admin_url = os.environ.get(PG_URL_ENV)
    if not admin_url:
        pytest.skip(f"{PG_URL_ENV} is not set: the ingest queue needs PostgreSQL (.ci/run sets it)")
    name = f"skyclass_webfarm_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {admin_url} is not usable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    root = tmp_path_factory.mktemp("web-farm")
    try:
        with pytest.MonkeyPatch.context() as env:
            env.delenv("SKYCLASS_CONFIG", raising=False)
            for key, value in {
                "SKYCLASS_DATABASE_URL": url,
                "SKYCLASS_MEDIA_ROOT": str(root / "media"),
                "SKYCLASS_VAR_DIR": str(root / "var"),
                "SKYCLASS_FARM__ENABLED": "true",
                "SKYCLASS_FARM__MAX_ATTEMPTS": "2",
                "SKYCLASS_FARM__POLL_SECONDS": "0.2",
                # Four seconds of silence is a QC error here (the default only warns).
                "SKYCLASS_INGEST__QC__SILENCE_ERROR_SECONDS": "3",
            }.items():
                env.setenv(key, value)
            yield from _station(url, root)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _station(url: str, root: Path) -> Iterator[Station]:
    from skyclass.runtime import Runtime
    from skyclass.settings import load_settings

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    good = lavfi_source(root / "good.mkv", 3.0)
    silent = lavfi_source(root / "silent.mkv", 6.0, silent=(1.0, 5.0))
    for source in (good, silent):
        assert main(["ingest", "--queue", str(source), *FILLER_SD]) == 0
    assert main(["worker", "--until-empty", "--name", "web-w1"]) == 0
    for label in ("encoding.mkv", "retrying.mkv", "queued.mkv"):
        shutil.copyfile(good, root / label)
        assert main(["ingest", "--queue", str(root / label), *FILLER_SD]) == 0
    job_ids = _job_ids(url)

    runtime = Runtime(load_settings())
    # What a worker on other hosts writes: a run half-way through its encode, and
    # a run that failed and waits for its retry.
    store = JobStore(runtime.sessions())
    now = runtime.clock.now()
    store.start(job_ids["encoding.mkv"], worker="host-b:4242", attempt=1, at=now)
    store.progress(job_ids["encoding.mkv"], stage="encode", fraction=0.5, at=now)
    store.start(job_ids["retrying.mkv"], worker="host-c:77", attempt=1, at=now)
    store.retrying(job_ids["retrying.mkv"], error=RETRY_ERROR, at=now)
    UserStore(runtime.sessions()).add("op", Role.OPERATOR, PASSWORD, at=now)
    check = create_engine(url)
    with check.connect() as connection:
        asset_id = connection.execute(
            text("SELECT asset_id FROM asset WHERE source_name = 'good.mkv'")
        ).scalar_one()
    check.dispose()
    try:
        with serve(create_app(runtime)) as base:
            yield Station(base=base, url=url, job_ids=job_ids, asset_id=str(asset_id))
    finally:
        runtime.engine.dispose()


def _jobs_table(page: str) -> dict[str, dict[str, Any]]:
    """The jobs table's rows by file: each cell's text, its data-state and asset link."""
    tree = html.fromstring(page)
    (table,) = tree.xpath('//table[@data-testid="ingest-jobs"]')
    rows: dict[str, dict[str, Any]] = {}
    for tr in table.xpath("./tbody/tr"):
        # A browser does not render <progress>'s fallback text: the percent cell's
        # own text is the number after the bar.
        cells = [
            " ".join((td.text_content() if n != 4 else "".join(td.xpath("text()"))).split())
            for n, td in enumerate(tr.xpath("./td"))
        ]
        row: dict[str, Any] = dict(zip(COLUMNS, cells, strict=True))
        row["data-state"] = tr.get("data-state")
        row["asset-href"] = next(iter(tr.xpath("./td[8]/a/@href")), None)
        row["progress"] = next(iter(tr.xpath("./td[5]/progress/@value")), None)
        rows[row["file"]] = row
    return rows


@pytest.mark.postgres
def test_the_assets_page_shows_every_job_as_the_farm_recorded_it(station: Station) -> None:
    with login(station.base, "op") as client:
        page = client.get("/console/assets")
        assert page.status_code == 200
        rows = _jobs_table(page.text)

    assert set(rows) == set(station.job_ids)
    for file, job_id in station.job_ids.items():
        assert rows[file]["id"] == str(job_id)

    good = rows["good.mkv"]
    assert good["data-state"] == "succeeded" and good["state"] == "完成 succeeded"
    assert (good["stage"], good["percent"], good["progress"]) == ("done", "100", "100.0")
    assert (good["tries"], good["worker"], good["error"]) == ("1/2", "web-w1", "")
    assert good["asset"] == station.asset_id
    assert good["asset-href"] == f"/console/assets/{station.asset_id}"

    rejected = rows["silent.mkv"]
    assert rejected["data-state"] == "failed" and rejected["state"] == "失败 failed"
    assert (rejected["worker"], rejected["tries"], rejected["asset"]) == ("web-w1", "1/2", "—")
    assert rejected["error"].startswith("silent.mkv: rejected by QC")
    assert "silence" in rejected["error"]

    encoding = rows["encoding.mkv"]
    assert encoding["data-state"] == "running" and encoding["state"] == "处理中 running"
    assert (encoding["stage"], encoding["percent"], encoding["progress"]) == (
        "encode",
        "50",
        "50.0",
    )
    assert (encoding["worker"], encoding["asset"], encoding["error"]) == ("host-b:4242", "—", "")

    retrying = rows["retrying.mkv"]
    assert retrying["data-state"] == "retrying" and retrying["state"] == "重试 retrying"
    assert (retrying["worker"], retrying["error"]) == ("host-c:77", RETRY_ERROR)

    queued = rows["queued.mkv"]
    assert queued["data-state"] == "queued" and queued["state"] == "排队 queued"
    assert (queued["stage"], queued["worker"], queued["tries"]) == ("—", "—", "0/2")


@pytest.mark.postgres
def test_metrics_count_the_queue_by_state(station: Station) -> None:
    with login(station.base, "op") as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    # Judge: prometheus-client's own text-format parser.
    gauge = {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "skyclass_ingest_queue_jobs"
    }
    # queued counts the jobs waiting for a worker: never run, or waiting for a retry.
    assert gauge == {"queued": 2.0, "running": 1.0, "failed": 1.0}
    with httpx.Client(base_url=station.base, timeout=30) as anonymous:
        assert anonymous.get("/metrics").status_code == 401  # the counts are not public


@pytest.mark.slow
@pytest.mark.postgres
def test_a_browser_shows_the_failed_jobs_reason(station: Station) -> None:
    """Judge: chromium's rendering (innerText is what an operator sees)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `apt-get install chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{station.base}/login")
            page.fill("input[name=name]", "op")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-testid=user]")
            page.goto(f"{station.base}/console/assets#jobs")
            failed = page.locator("[data-testid=ingest-jobs] tr[data-state=failed] td")
            assert failed.nth(1).inner_text() == "silent.mkv"
            assert failed.nth(8).inner_text().startswith("silent.mkv: rejected by QC")
            assert page.locator("#jobs").is_visible()
        finally:
            browser.close()

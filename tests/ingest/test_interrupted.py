"""An interrupted ingest leaves nothing behind (issue 11 item 6).

The real command runs as a subprocess and is killed while ffmpeg transcodes into
staging. Its ffmpeg child must die with it (the kernel's parent-death signal), and
the next ingest sweeps what the dead one wrote. A job that is still running (its
lock held by another process) is never swept.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHORT_LESSONS_TOML, Synth

from ingest.staging import LOCK_SUFFIX, StagingArea
from ingest.synth import SynthFormat


def _ffmpeg_writing(staging: Path) -> list[int]:
    """Pids of processes whose command line names a file in ``staging``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(staging).encode() in cmdline and b"ffmpeg" in cmdline:
            pids.append(int(proc.name))
    return pids


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_ingest_leaves_nothing_once_the_next_has_run(
    how: signal.Signals, synth: Synth, tmp_path: Path
) -> None:
    config = tmp_path / "short.toml"
    config.write_text(SHORT_LESSONS_TOML, encoding="utf-8")
    media = tmp_path / "media"
    staging = media / ".staging"
    env = {
        **os.environ,
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "SKYCLASS_MEDIA_ROOT": str(media),
        "SKYCLASS_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("SKYCLASS_CONFIG", None)
    source = synth(SynthFormat.P720_30, 60.0).path  # must be re-encoded: takes a while

    def ingest(path: Path, title: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", "from skyclass.cli import run; run()"]
        command += ["--config", str(config), "ingest", str(path)]
        command += ["--grade", "g03", "--subject", "数学", "--title", title]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    victim = ingest(source, "被中断的课")
    try:
        # Kill it once ffmpeg is writing the house-format file into staging.
        def encoding() -> bool:
            return any(p.suffix == ".mkv" and p.stat().st_size > 0 for p in staging.glob("*"))

        assert _wait(encoding, 120), victim.communicate(timeout=5)[0].decode()[-2000:]
        assert _ffmpeg_writing(staging)
        victim.send_signal(how)
        victim.wait(10)
    finally:
        victim.kill()
        victim.wait()
    # Its ffmpeg died with it: nothing keeps writing into staging.
    assert _wait(lambda: not _ffmpeg_writing(staging), 5), "ffmpeg outlived its parent"
    assert any(p.suffix == ".mkv" for p in staging.glob("*"))  # what the dead job left

    short = synth(SynthFormat.HOUSE_SD, 3.0).path
    follower = ingest(short, "下一节课")
    out, _ = follower.communicate(timeout=120)
    assert follower.returncode == 0, out.decode()[-2000:]
    assert sorted(staging.glob("*")) == []  # swept, and the follower cleaned up after itself


def test_sweep_keeps_a_running_job_and_removes_a_dead_one(tmp_path: Path) -> None:
    area = StagingArea(tmp_path)
    # A running job held by another process (the lock is what counts, not the pid).
    with area.job() as running:
        running.path(".mkv").write_bytes(b"in progress")
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import fcntl, os, sys, time\n"
                "fd = os.open(sys.argv[1], os.O_RDWR)\n"
                "fcntl.flock(fd, fcntl.LOCK_SH)\n"
                "print('held', flush=True)\n"
                "time.sleep(30)\n",
                str(running.path(LOCK_SUFFIX)),
            ],
            stdout=subprocess.PIPE,
        )
        # Our own exclusive lock blocks the holder's shared one: release ours first
        # by handing the job over (close only our descriptor, keep the files).
        os.close(running._lock_fd)
        running._lock_fd = os.open(os.devnull, os.O_RDONLY)
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        dead = area.directory / "job-00000000deadbeef.mkv"
        dead.write_bytes(b"left by a killed ingest")
        stray = area.directory / "something-else.tmp"
        stray.write_bytes(b"?")
        try:
            removed = area.sweep()
        finally:
            holder.kill()
            holder.wait()
        assert sorted(p.name for p in removed) == [dead.name, stray.name]
        assert running.path(".mkv").exists()  # still running: untouched
    assert sorted(area.directory.glob("*")) == []
    fd = os.open(tmp_path / "probe", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # flock works on this filesystem
    os.close(fd)


def test_a_full_disk_during_ingest_is_one_line_naming_where(
    cli: object, synth: Synth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A media store that fills up mid-encode: exit 1 with one line, nothing stored."""
    media = tmp_path / "media"
    media.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(media)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs (needs root): {mounted.stderr.decode().strip()}")
    try:
        monkeypatch.setenv("SKYCLASS_MEDIA_ROOT", str(media))
        config = tmp_path / "short.toml"
        config.write_text(SHORT_LESSONS_TOML, encoding="utf-8")
        source = synth(SynthFormat.P720_30, 4.0).path
        assert callable(cli)
        result = cli(
            "--config", str(config), "ingest", str(source),
            "--grade", "g03", "--subject", "数学", "--title", "磁盘满",
        )  # fmt: skip
        # The progress bar's last state is printed too; the error is one line.
        lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert result.code == 1
        assert len(lines) == 1, result.stderr
        assert "disk is full" in lines[0] and str(media) in lines[0]
        assert sorted((media / ".staging").glob("*")) == []  # nothing left behind
        listing = cli("--config", str(config), "assets", "list", "--json")
        assert listing.code == 0 and listing.stdout.strip() in ("[]", "")
    finally:
        subprocess.run(["umount", str(media)], check=False)

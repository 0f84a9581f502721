from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from skyclass import __version__


def test_version(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"skyclass {__version__}"


def test_unknown_command_is_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("no-such-command").code == 2


def test_bad_config_is_one_line_exit_2_and_debug_shows_traceback(
    cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('timezone = "Nowhere/Land"\n', encoding="utf-8")
    plain = cli("--config", str(config), "grades")
    assert plain.code == 2
    assert plain.stderr.count("\n") == 1 and "timezone" in plain.stderr
    debug = cli("--debug", "--config", str(config), "grades")
    assert debug.code == 2 and "Traceback" in debug.stderr


def test_demo_initializes_database_and_prints_lineup(tmp_path: Path) -> None:
    """The console script itself, as `make demo` runs it (a real subprocess)."""
    env = {
        **os.environ,
        "SKYCLASS_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SKYCLASS_MEDIA_ROOT": str(tmp_path / "media"),
        "SKYCLASS_VAR_DIR": str(tmp_path / "var"),
        "COLUMNS": "200",
    }
    script = Path(sys.executable).with_name("skyclass")
    done = subprocess.run(
        [str(script), "demo", "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [str(script), "demo", "--lineup-only", "--work-dir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "g03.skyclass.cn" in done.stdout and "zt.skyclass.cn" in done.stdout
    assert (tmp_path / "demo" / "skyclass.db").exists()  # the demo station's own database
    assert (tmp_path / "demo" / "channels.toml").exists()

"""The guides match the code: every `skyclass …` command in docs/guides runs.

Each command line in the guides' code blocks is resolved against the real CLI
(Typer's click tree): every subcommand must exist, and every option must be one the
command takes. A guide that names a command or flag the code does not have fails.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from skyclass.cli import app

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "guides"
FENCE = re.compile(r"```(?:sh|bash|shell)?\n(.*?)```", re.S)


def guide_commands() -> list[tuple[str, str]]:
    found = []
    for guide in sorted(GUIDES.glob("*.md")):
        for block in FENCE.findall(guide.read_text(encoding="utf-8")):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith(("skyclass ", "SKYCLASS_PASSWORD=")) and "skyclass " in line:
                    found.append((guide.name, line[line.index("skyclass ") :]))
    return found


def resolve(line: str) -> list[str]:
    """Problems with one command line (empty when it matches the CLI)."""
    words = shlex.split(line.split("|")[0].split("#")[0])[1:]
    command = typer.main.get_command(app)  # Typer's own (vendored) click objects
    problems: list[str] = []
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name = words.pop(0)
        sub = command.commands.get(name)  # type: ignore[attr-defined]
        if sub is None:
            return [f"no command {name!r}"]
        command = sub
    options = {o for param in command.params for o in (*param.opts, *param.secondary_opts)}
    root_options = {"--config", "--debug", "--version"}
    for word in words:
        if word.startswith("-") and word != "-":
            flag = word.split("=")[0]
            if flag not in options and flag not in root_options:
                problems.append(f"{command.name} has no option {flag}")
    return problems


def test_the_guides_exist_and_name_commands() -> None:
    names = {p.name for p in GUIDES.glob("*.md")}
    assert {"operator.md", "epg-partner.md", "compliance.md", "deployment.md"} <= names
    assert len(guide_commands()) >= 20


@pytest.mark.parametrize(("guide", "line"), guide_commands())
def test_every_command_in_the_guides_exists(guide: str, line: str) -> None:
    assert resolve(line) == [], f"{guide}: {line}"


def test_the_checker_catches_a_wrong_flag() -> None:
    assert resolve("skyclass playout run --no-such-flag") == ["run has no option --no-such-flag"]
    assert resolve("skyclass nonsense") == ["no command 'nonsense'"]

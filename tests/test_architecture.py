"""The package map: arrows point one way (docs/architecture.md).

Every import in every module, at the top, inside functions or under TYPE_CHECKING,
is parsed with ``ast``; an import of one of our packages that the map does not
allow fails the test and names the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Who may import whom. ``skyclass`` (the shell) composes everything; nothing imports it.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "mpegts": {"core"},
    "grading": {"core"},
    "channels": {"core", "grading"},
    "ingest": {"core", "grading", "channels"},
    "farm": {"core", "grading", "channels", "ingest"},
    "epg": {"core", "grading", "channels", "ingest", "mpegts"},
    "playout": {"core", "grading", "channels", "ingest", "epg", "mpegts"},
    "compliance": {"core", "grading", "channels", "ingest", "epg", "mpegts", "playout"},
    "skyclass": {
        "core",
        "grading",
        "channels",
        "ingest",
        "farm",
        "epg",
        "mpegts",
        "playout",
        "compliance",
    },
}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, target in imported_packages(path):
            if target in ALLOWED and target != package and target not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {package} imports {target}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file(), f"{package}/ is missing"
    assert violations(package) == []


def test_the_map_has_no_cycles() -> None:
    # A package may not be reachable from the packages it imports.
    def below(package: str, seen: frozenset[str] = frozenset()) -> set[str]:
        assert package not in seen, f"cycle through {package}"
        result = set(ALLOWED[package])
        for target in ALLOWED[package]:
            result |= below(target, seen | {package})
        return result

    for package in ALLOWED:
        assert package not in below(package)


def test_the_checker_catches_an_upward_arrow(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from compliance.audit import x\n")
    assert (2, "compliance") in imported_packages(module)
    assert "compliance" not in ALLOWED["playout"]

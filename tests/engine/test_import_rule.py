"""service/engine may import numpy and the standard library only."""

import ast
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "service" / "engine"
ALLOWED_THIRD_PARTY = {"numpy"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_engine_imports_only_numpy_and_the_standard_library():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 10, "the engine's sources were not found"
    offenders = {}
    for path in files:
        outside = {name for name in imported_modules(path)
                   if name not in sys.stdlib_module_names and name not in ALLOWED_THIRD_PARTY
                   and name != "__future__"}
        if outside:
            offenders[str(path.relative_to(ENGINE))] = sorted(outside)
    assert offenders == {}


def test_the_rule_catches_an_outside_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom sqlalchemy import select\nimport fastapi.routing\n")
    found = imported_modules(bad) - ALLOWED_THIRD_PARTY
    assert found == {"sqlalchemy", "fastapi"}


def test_relative_imports_stay_inside_the_engine():
    for path in ENGINE.rglob("*.py"):
        depth = len(path.relative_to(ENGINE).parts) - 1
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level <= depth + 1, f"{path} imports above the engine"

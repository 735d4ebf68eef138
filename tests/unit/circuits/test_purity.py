"""The engine stays pure: it imports the standard library and itself, nothing else (no Flask, no ORM, no IO)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import circuits

PACKAGE = Path(circuits.__file__).parent
IO_MODULES = {"os", "io", "socket", "subprocess", "pathlib", "shutil", "sqlite3", "urllib", "http", "logging", "time"}


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_circuits_imports_only_the_standard_library():
    for path in sorted(PACKAGE.glob("*.py")):
        for module in _imported_modules(path) - {"circuits", "__future__"}:
            assert module in sys.stdlib_module_names, f"{path.name} imports {module}"
            assert module not in IO_MODULES, f"{path.name} imports {module}, which does IO or reads the clock"

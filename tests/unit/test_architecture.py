"""The import direction of DESIGN.md §3: parapheur → circuits, signing; never back."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "circuits": {"flask", "sqlalchemy", "parapheur", "signing", "flask_login", "flask_wtf", "alembic"},
    "signing": {"flask", "sqlalchemy", "parapheur", "circuits", "flask_login", "flask_wtf", "alembic"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_pure_packages_do_not_import_the_app(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no source found in {package}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[package]) for path in files
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}


def test_the_guard_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import flask\nfrom sqlalchemy.orm import Session\nfrom parapheur.models import User\n")
    assert imported_modules(bad) >= {"flask", "sqlalchemy", "parapheur"}

"""Dependencies point one way: collectors, checks and reports import itaudit, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTER = {"collectors", "checks", "reports"}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


SPINE = sorted((ROOT / "itaudit").rglob("*.py"))


@pytest.mark.parametrize("path", SPINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_spine_never_imports_outer_packages(path: Path) -> None:
    bad = [(m, n) for m, n in _imports(path) if m.split(".")[0] in OUTER]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}; reach them through itaudit/plugins.py"


def test_model_is_a_leaf() -> None:
    mods = [m for m, _ in _imports(ROOT / "itaudit" / "model.py")]
    assert not [m for m in mods if m.split(".")[0] in OUTER | {"itaudit"}]


def _importers(lib: str) -> set[str]:
    out = set()
    for path in ROOT.glob("*/**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "tests", "bench", "build"}:
            continue
        if any(m.split(".")[0] == lib for m, _ in _imports(path)):
            out.add(str(rel))
    return out


def test_only_one_file_speaks_ssh() -> None:
    # The simulated fleet is a test peer (an SSH *server*), not collection code.
    users = {p for p in _importers("paramiko") if not p.startswith("itaudit/sim/")}
    assert users <= {"collectors/ssh.py"}, users


def test_only_one_file_speaks_snmp() -> None:
    users = {p for p in _importers("pysnmp") if not p.startswith("itaudit/sim/")}
    assert users <= {"collectors/snmp.py"}, users


def test_builtin_plugins_resolve() -> None:
    from itaudit import plugins

    tables = (plugins.BUILTIN_COLLECTORS, plugins.BUILTIN_REPORTS, plugins.BUILTIN_TOOLS)
    for dotted in [d for t in tables for d in t.values()] + list(plugins.BUILTIN_CHECK_MODULES):
        assert plugins._load(dotted) is not None, dotted
    assert plugins.load_checks(), "no checks registered"


@pytest.mark.parametrize("path", SPINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_is_loaded_by_name_outside_plugins(path: Path) -> None:
    """The layering test sees every import: only itaudit/plugins.py loads modules by name, from its
    tables of built-in names (``import_module``/``__import__``/``plugins._load`` anywhere else would
    reach an outer package behind its back)."""
    if path.name == "plugins.py":
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            node.attr == "import_module"
            or (node.attr == "_load" and isinstance(node.value, ast.Name) and node.value.id == "plugins")
        ):
            bad.append((node.attr, node.lineno))
        elif isinstance(node, ast.Name) and node.id in ("__import__", "import_module"):
            bad.append((node.id, node.lineno))
    assert not bad, f"{path.relative_to(ROOT)} loads by name: {bad}; add it to a table in itaudit/plugins.py"


def test_scan_and_discovery_do_not_import_each_other() -> None:
    """The inventory stage (itaudit/inventory.py) serves both: no import circle."""
    scan = {m for m, _ in _imports(ROOT / "itaudit" / "scan.py")}
    discover = {m for m, _ in _imports(ROOT / "itaudit" / "discover.py")}
    assert "itaudit.discover" not in scan and "itaudit.scan" not in discover

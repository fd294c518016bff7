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

    for dotted in list(plugins.BUILTIN_COLLECTORS.values()) + list(plugins.BUILTIN_REPORTS.values()):
        assert plugins._load(dotted) is not None, dotted
    assert plugins.load_checks(), "no checks registered"

"""The check catalogue: every check has pass/fail/unknown cases; docs/checks.md is current."""

from __future__ import annotations

from pathlib import Path

import test_checks_dataquality
import test_checks_directory
import test_checks_exposure
import test_checks_hardware
import test_checks_kev
import test_checks_lifecycle
import test_checks_patching

from itaudit.knowledge import framework_refs
from itaudit.knowledge_cli import render_checks_md
from itaudit.plugins import load_checks

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    test_checks_dataquality,
    test_checks_directory,
    test_checks_exposure,
    test_checks_hardware,
    test_checks_kev,
    test_checks_lifecycle,
    test_checks_patching,
)


def test_every_check_has_pass_fail_and_unknown_cases():
    covered = {(c[0], c[1]) for m in MODULES for c in m.CASES}
    missing = [
        (cid, st) for cid in load_checks() for st in ("pass", "fail", "unknown") if (cid, st) not in covered
    ]
    assert not missing, f"checks without a test case: {missing}"


def test_every_check_has_framework_entry_and_docstring():
    for cid, spec in load_checks().items():
        assert spec.doc, cid
        refs = framework_refs(cid)
        assert (spec.cpg, spec.cis) == (refs["cpg"], refs["cis"]), cid
        assert refs["cpg"] or refs["cis"], f"{cid} has no framework reference"


def test_docs_checks_md_is_current():
    committed = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    assert committed == render_checks_md(), (
        "docs/checks.md is stale: run `python -m itaudit.knowledge_cli` to regenerate it"
    )

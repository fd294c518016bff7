"""Issue 13: the wheel a user installs (pipx, a venv) is built without setuptools warnings,
installs into a fresh venv outside the source tree, and runs ``itaudit demo`` to the end
with the recordings it carries as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.peers]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if ".venv" not in p and "/venv" not in p)
    return env


def test_the_wheel_installs_outside_the_tree_and_runs_the_demo(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the tree as committed")
    # Build from a copy of the tree (a build writes build/ and *.egg-info next to the sources).
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True,
                    ignore=shutil.ignore_patterns(".venv", ".git", "demo-output", "build", "*.egg-info",
                                                  "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"))
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist),
                            str(src)], capture_output=True, text=True, timeout=300, env=_clean_env())
    assert build.returncode == 0, build.stdout + build.stderr
    # (pip's own notes about this machine's package mirrors are not the build's warnings)
    noise = [ln for ln in (build.stdout + build.stderr).splitlines()
             if "warn" in ln.lower() and "Location '" not in ln]
    assert not noise, "\n".join(noise)
    wheel = next(dist.glob("itaudit-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=600, env=_clean_env())
    assert install.returncode == 0, install.stdout + install.stderr

    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    demo = subprocess.run([str(venv / "bin" / "itaudit"), "demo", "--out", str(elsewhere / "out"),
                           "--as-of", "2026-11-23"], capture_output=True, text=True, timeout=300,
                          cwd=elsewhere, env={**_clean_env(), "COLUMNS": "120"})
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Traceback" not in demo.stdout + demo.stderr
    report = elsewhere / "out" / "lakeside-monthly-2026-11.html"
    assert report.is_file() and "City of Lakeside" in report.read_text()
    # The installed copy ran: its recordings came from the wheel, not from this source tree.
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import itaudit.demo as d; print(d.FIXTURES); print(len(d.ssh_cases()))"],
                           capture_output=True, text=True, timeout=60, cwd=elsewhere).stdout.split()
    assert where[0].startswith(str(venv)) and int(where[1]) >= 12

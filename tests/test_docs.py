"""Every CLI command is documented in docs/cli.md, and the README shows the two commands first."""

from __future__ import annotations

from pathlib import Path

import click

from itaudit.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full + " ")
        else:
            out.append(full)
    return out


def test_every_command_is_documented() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    missing = [c for c in _commands(cli) if f"itaudit {c}" not in doc]
    assert not missing, f"undocumented in docs/cli.md: {missing}"


def test_readme_shows_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_bench_readme_is_a_results_page() -> None:
    """Issue 13: bench/README.md had grown into a 240-line history. It is the method, the
    latest table and the machine; the history lives in bench/HISTORY.md."""
    text = (ROOT / "bench" / "README.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Method", "## Latest results", "## The machine"]
    assert "(HISTORY.md)" in text and (ROOT / "bench" / "HISTORY.md").exists()
    assert len(text.splitlines()) < 80
    latest = text.split("## Latest results", 1)[1].split("## ", 1)[0]
    for bench in ("1,000 SSH hosts", "1,000 SNMP devices", "Ansible", "5,000 devices"):
        assert bench in latest, bench


def test_the_systemd_install_path_is_documented() -> None:
    for doc in ("README.md", "docs/agent.md"):
        assert "contrib/install-systemd.sh" in (ROOT / doc).read_text(), doc
    assert (ROOT / "contrib" / "install-systemd.sh").stat().st_mode & 0o111

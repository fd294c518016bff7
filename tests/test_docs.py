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

"""Issue 8: the tool's own security.

ruff's S (bandit) rules stay on; no SSH client trusts unknown keys blindly; a full demo
run leaves its secrets in no log, database, report or config; what itaudit writes is for
its owner only; a config others can read that names secrets draws a warning.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from fleetkit import SSH_PASSWORD_ENV, database, itaudit_cmd, write_city_config
from rich.console import Console

from itaudit import config

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("itaudit", "collectors", "checks", "reports", "bench", "tests")


def test_ruff_security_rules_are_selected() -> None:
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in lint["select"]
    # Ignoring the rules that matter for an audit tool would defeat the point.
    for rule in ("S507", "S508", "S509", "S105", "S106", "S608", "S3"):
        assert not any(rule.startswith(i) or i == rule for i in lint.get("ignore", [])), rule


def test_no_ssh_client_accepts_unknown_host_keys_blindly() -> None:
    banned = ("Auto" + "AddPolicy", "Warning" + "Policy", "StrictHostKeyChecking" + "=no")
    offenders = []
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8", errors="replace")
            offenders += [f"{path.relative_to(ROOT)}: {b}" for b in banned if b in text]
    assert offenders == []


def _mode_problems(paths: list[Path]) -> list[str]:
    return [f"{p} is {oct(p.stat().st_mode & 0o777)}" for p in paths if p.stat().st_mode & 0o077]


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.slow
def test_demo_secrets_never_reach_logs_database_reports_or_config(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from itaudit import demo

    # Our own loopback ranges, so a demo someone runs on 127.0.10/11 does not collide.
    monkeypatch.setattr(demo, "SSH_NET", "127.0.9.")
    monkeypatch.setattr(demo, "SNMP_NET", "127.0.8.")
    monkeypatch.setattr(demo, "STRAYS", (("127.0.9.20", 9100), ("127.0.9.21", 3389)))
    for name in (demo.ENV_SSH_PASSWORD, demo.ENV_SNMP_AUTH, demo.ENV_SNMP_PRIV):
        monkeypatch.setenv(name, "placeholder")  # restored after the test; the demo sets its own
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("", "itaudit", "paramiko", "collectors", "reports")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    screen = io.StringIO()
    out = tmp_path / "demo"
    try:
        with _umask(0o022):  # not the CLI's 077: the writers themselves must make files private
            code = demo.run_demo(out, console=Console(file=screen, width=200))
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    assert code == 0, screen.getvalue()[-3000:]
    secrets = [os.environ[n] for n in (demo.ENV_SSH_PASSWORD, demo.ENV_SNMP_AUTH, demo.ENV_SNMP_PRIV)]
    assert all(len(s) >= 16 and s != "placeholder" for s in secrets)

    written = [p for p in out.rglob("*") if p.is_file() and ".sim" not in p.relative_to(out).parts]
    db = out / "data" / "lakeside" / "itaudit.db"
    assert db in written and (out / "config.toml") in written and any(p.suffix == ".html" for p in written)
    assert logs.getvalue().count("\n") > 20, "the capture saw no logging: it would prove nothing"
    blobs = {str(p): p.read_bytes() for p in written}
    blobs["logs"] = logs.getvalue().encode()
    blobs["screen"] = screen.getvalue().encode()
    for secret in secrets:
        leaks = [name for name, blob in blobs.items() if secret.encode() in blob]
        assert leaks == [], f"a demo secret leaked into {leaks}"
    # Owner-only, even though this process's umask would have allowed group/other reads.
    assert _mode_problems(written) == []


def test_cli_creates_database_and_reports_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SSH_PASSWORD_ENV, "not-used-here")
    cfg = write_city_config(tmp_path / "city.toml", ssh=[("127.0.8.241", 2299)], timeout=2)
    env = {**os.environ, "COLUMNS": "200"}
    scan = subprocess.run(itaudit_cmd("scan", "-c", str(cfg)), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: os.umask(0o022))
    assert scan.returncode == 3, scan.stderr
    report = subprocess.run(itaudit_cmd("report", "monthly", "-c", str(cfg), "--out", str(tmp_path / "reports"),
                                        "--format", "html,json,md"),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: os.umask(0o022))
    assert report.returncode == 0, report.stderr
    data = database(cfg).parent
    files = [p for p in [*data.rglob("*"), *(tmp_path / "reports").rglob("*")] if p.is_file()]
    assert database(cfg) in files and any(p.parent.name == "reports" for p in files)
    dirs = [data, tmp_path / "reports"]
    assert _mode_problems(files + dirs) == []


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o600, False)])
def test_config_readable_by_others_with_secret_references_draws_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int, warned: bool) -> None:
    monkeypatch.setenv(SSH_PASSWORD_ENV, "not-used-here")
    cfg = write_city_config(tmp_path / "city.toml", ssh=[("127.0.8.242", 2299)], timeout=1, mode=mode)
    loaded = config.load(cfg)
    assert any("readable by other users" in w for w in loaded.warnings) is warned
    # The CLI prints it (on stderr, so --json output stays clean).
    proc = subprocess.run(itaudit_cmd("devices", "-c", str(cfg), "--json"), cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert ("readable by other users" in proc.stderr) is warned, proc.stderr
    assert "not-used-here" not in proc.stderr + proc.stdout
    assert sys.executable

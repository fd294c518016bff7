"""Config keys of the agent: [smtp], [cities.<id>.schedule], [cities.<id>.delivery].
Every error names its key; secrets are refused in the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from agentkit import city_block, local_target, write_config

from itaudit.config import load
from itaudit.errors import ConfigError

SMTP = {"host": "127.0.6.1", "from": "itaudit@msp.example.com"}


def _load(tmp_path: Path, *, schedule: dict | None = None, delivery: dict | None = None,
          smtp: dict | None = None, timezone: str = "America/Chicago") -> object:
    city = city_block("springfield", targets=[local_target("host")], schedule=schedule, delivery=delivery,
                      timezone=timezone)
    return load(write_config(tmp_path / "c.toml", [city], smtp=smtp))


@pytest.mark.parametrize(("kw", "key"), [
    ({"schedule": {"scan": "monthly"}}, "cities.springfield.schedule.scan"),
    ({"schedule": {"scan_at": "2am"}}, "cities.springfield.schedule.scan_at"),
    ({"schedule": {"scan": "hourly", "scan_at": "02:00"}}, "cities.springfield.schedule.scan_at"),
    ({"schedule": {"report_day": 32}}, "cities.springfield.schedule.report_day"),
    ({"schedule": {"report_at": "24:00"}}, "cities.springfield.schedule.report_at"),
    ({"schedule": {"scan_weekday": "someday"}}, "cities.springfield.schedule.scan_weekday"),
    ({"schedule": {"cron": "0 2 * * *"}}, "cities.springfield.schedule.cron"),
    ({"timezone": "Mars/Olympus"}, "cities.springfield.timezone"),
    ({"delivery": {"recipients": ["not-an-address"]}}, "cities.springfield.delivery.recipients[0]"),
    ({"delivery": {"attach": ["docx"]}}, "cities.springfield.delivery.attach[0]"),
    ({"delivery": {"subject": "{town}"}}, "cities.springfield.delivery.subject"),
    ({"delivery": {"from": "IT <it@springfield.example.org>"}}, "cities.springfield.delivery.from"),
    ({"smtp": {**SMTP, "password": "hunter2", "username": "u"}}, "smtp.password"),
    ({"smtp": {**SMTP, "security": "ssl"}}, "smtp.security"),
    ({"smtp": {**SMTP, "security": "none", "username": "u", "password_env": "X"}}, "smtp.security"),
    ({"smtp": {**SMTP, "username": "u"}}, "smtp.username"),
    ({"smtp": {"host": "127.0.6.1"}}, "smtp.from"),
    ({"smtp": {**SMTP, "port": 0}}, "smtp.port"),
    ({"smtp": {**SMTP, "retry_attempts": 0}}, "smtp.retry_attempts"),
    ({"smtp": {**SMTP, "relay": "x"}}, "smtp.relay"),
])
def test_bad_agent_keys_are_named(tmp_path: Path, kw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, **kw)
    assert exc.value.key == key, str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_defaults_and_implicit_tls_port(tmp_path: Path) -> None:
    cfg = _load(tmp_path, smtp={**SMTP, "security": "tls"})
    city = cfg.cities["springfield"]  # type: ignore[attr-defined]
    assert (city.schedule.scan, city.schedule.scan_at, city.schedule.report_day) == ("daily", "02:00", 1)
    assert city.delivery.recipients == () and city.delivery.attach == ("pdf", "xlsx")
    assert cfg.smtp.port == 465  # type: ignore[attr-defined]


def test_recipients_without_smtp_is_a_warning(tmp_path: Path) -> None:
    cfg = _load(tmp_path, delivery={"recipients": ["manager@springfield.example.org"]})
    assert any("no [smtp] table" in w for w in cfg.warnings)  # type: ignore[attr-defined]


CONTRIB = Path(__file__).resolve().parents[1] / "contrib"


def _unit(name: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    section = ""
    for line in (CONTRIB / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out[section] = {}
        elif line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[section][k.strip()] = v.strip()
    return out


@pytest.mark.parametrize("name", ["itaudit-agent.service", "itaudit-scan.service"])
def test_systemd_units_are_hardened(name: str) -> None:
    svc = _unit(name)["Service"]
    assert svc["User"] == "itaudit" and svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["PrivateTmp"] == "yes" and svc["ProtectHome"] == "yes" and svc["CapabilityBoundingSet"] == ""
    assert svc["ReadWritePaths"] == "/var/lib/itaudit" and svc["UMask"] == "0077"
    assert " agent -c /etc/itaudit/config.toml" in svc["ExecStart"]


def test_systemd_units_verify() -> None:
    import shutil
    import subprocess

    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    assert _unit("itaudit-scan.timer")["Timer"]["OnCalendar"] == "*-*-* 02:00:00"
    for name in ("itaudit-agent.service", "itaudit-scan.service", "itaudit-scan.timer", "itaudit-central.service",
                 "itaudit-central.timer"):
        res = subprocess.run(["systemd-analyze", "verify", str(CONTRIB / name)], capture_output=True, text=True,
                             timeout=60)
        # The venv path does not exist on a build machine; anything else is a real error.
        problems = [line for line in (res.stdout + res.stderr).splitlines()
                    if line.strip() and "is not executable" not in line]
        assert not problems, problems


def test_a_city_may_have_its_own_from_address(tmp_path: Path) -> None:
    cfg = _load(tmp_path, smtp=SMTP, delivery={"from": "it@springfield.example.org"})
    assert cfg.cities["springfield"].delivery.sender == "it@springfield.example.org"  # type: ignore[attr-defined]
    assert cfg.smtp.sender == "itaudit@msp.example.com"  # type: ignore[attr-defined]

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

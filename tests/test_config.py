"""Config: typed, validated at load, every error names the file and the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from itaudit.config import load
from itaudit.credentials import SNMPCredential, SSHCredential
from itaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
[settings]
data_dir = "data"
concurrency = 8

[cities.springfield]
name = "City of Springfield"

[cities.springfield.credentials.linux]
type = "ssh"
username = "itaudit"
password_env = "SPRINGFIELD_SSH_PASSWORD"

[cities.springfield.credentials.net]
type = "snmp"
version = "v3"
username = "itaudit"
auth_protocol = "sha256"
auth_key_env = "SPRINGFIELD_SNMP_AUTH"
priv_protocol = "aes128"
priv_key_env = "SPRINGFIELD_SNMP_PRIV"

[[cities.springfield.targets]]
address = "10.1.0.10"
credential = "linux"
department = "Police"
kind = "server"
purchase_date = 2017-03-01
criticality = ["public-safety"]

[[cities.springfield.targets]]
address = "10.1.0.1"
protocol = "snmp"
credential = "net"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "itaudit.toml"
    p.write_text(text)
    p.chmod(0o600)
    return p


def test_good_config_loads_typed(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, GOOD), env={})
    city = cfg.city(None)
    assert city.name == "City of Springfield"
    assert cfg.settings.concurrency == 8
    assert cfg.settings.data_dir == (tmp_path / "data").resolve()
    assert city.database == (tmp_path / "data" / "springfield" / "itaudit.db").resolve()
    assert isinstance(city.credentials["linux"], SSHCredential)
    assert isinstance(city.credentials["net"], SNMPCredential)
    t = city.targets[0]
    assert (t.protocol, t.department, str(t.purchase_date), t.criticality) == (
        "ssh", "Police", "2017-03-01", ["public-safety"])
    assert city.targets[1].protocol == "snmp"
    assert not cfg.warnings


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("concurrency = 8", "concurency = 8"), "settings.concurency"),
        (("concurrency = 8", 'concurrency = "eight"'), "settings.concurrency"),
        (("concurrency = 8", "concurrency = true"), "settings.concurrency"),
        (('department = "Police"', "departmnt = 1"), "cities.springfield.targets[0].departmnt"),
        (('credential = "linux"', 'credential = "nope"'), "cities.springfield.targets[0].credential"),
        (('credential = "linux"', 'credential = "net"'), "cities.springfield.targets[0].credential"),
        (('kind = "server"', 'kind = "toaster"'), "cities.springfield.targets[0].kind"),
        (('address = "10.1.0.10"', 'address = "10.1.0.10; rm -rf /"'), "cities.springfield.targets[0].address"),
        (('version = "v3"', 'version = "v4"'), "cities.springfield.credentials.net.version"),
        (('password_env = "SPRINGFIELD_SSH_PASSWORD"', 'password = "hunter2"'),
         "cities.springfield.credentials.linux.password"),
        (('purchase_date = 2017-03-01', 'purchase_date = "March 2017"'),
         "cities.springfield.targets[0].purchase_date"),
        (("concurrency = 8", "timeout = nan"), "settings.timeout"),
        (("concurrency = 8", "timeout = inf"), "settings.timeout"),
        (("concurrency = 8", "max_output_bytes = 0"), "settings.max_output_bytes"),
        (('auth_key_env = "SPRINGFIELD_SNMP_AUTH"', 'auth_key_env = "correct horse battery"'),
         "cities.springfield.credentials.net.auth_key_env"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    path = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(ConfigError) as exc:
        load(path, env={})
    assert exc.value.key == key
    assert str(path) in str(exc.value) and key in str(exc.value)


def test_secret_value_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('password_env = "SPRINGFIELD_SSH_PASSWORD"', 'password = "hunter2"'))
    with pytest.raises(ConfigError) as exc:
        load(path, env={})
    assert "hunter2" not in str(exc.value)


def test_secret_pasted_as_env_name_is_refused_and_never_echoed(tmp_path: Path) -> None:
    """The secret typed where the variable's NAME belongs: refused at load, so it can never
    reach an error line ("environment variable S3cr3t! is not set") in the database or a report."""
    path = write(tmp_path, GOOD.replace('password_env = "SPRINGFIELD_SSH_PASSWORD"', 'password_env = "S3cr3t!x"'))
    with pytest.raises(ConfigError) as exc:
        load(path, env={})
    assert exc.value.key == "cities.springfield.credentials.linux.password_env"
    assert "S3cr3t" not in str(exc.value)


def test_timeout_from_environment_must_be_finite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, GOOD), env={"ITAUDIT_TIMEOUT": "nan"})
    assert exc.value.key == "settings.timeout"


def test_env_overrides_file_and_cli_overrides_env(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load(path, env={"ITAUDIT_CONCURRENCY": "3"}).settings.concurrency == 3
    assert load(path, env={"ITAUDIT_CONCURRENCY": "3"}, overrides={"concurrency": 5}).settings.concurrency == 5
    with pytest.raises(ConfigError) as exc:
        load(path, env={"ITAUDIT_CONCURRENCY": "lots"})
    assert exc.value.key == "settings.concurrency" and "ITAUDIT_CONCURRENCY" in str(exc.value)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[settings\n"), env={})


def test_world_readable_config_with_secret_refs_warns(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    path.chmod(0o644)
    assert any("readable by other users" in w for w in load(path, env={}).warnings)


def test_example_config_is_valid() -> None:
    cfg = load(ROOT / "config.example.toml", env={})
    assert cfg.cities


def test_cli_exit_code_2_names_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("concurrency = 8", "concurency = 8"))
    proc = subprocess.run([sys.executable, "-m", "itaudit.cli", "devices", "-c", str(path)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert "settings.concurency" in proc.stderr and str(path) in proc.stderr


def test_init_writes_a_private_valid_starter_config(tmp_path: Path) -> None:
    path = tmp_path / "itaudit.toml"
    proc = subprocess.run([sys.executable, "-m", "itaudit.cli", "init", str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert path.stat().st_mode & 0o077 == 0
    assert load(path, env={}).cities
    again = subprocess.run([sys.executable, "-m", "itaudit.cli", "init", str(path)], capture_output=True, text=True,
                           cwd=ROOT)
    assert again.returncode == 2 and "exists" in again.stderr

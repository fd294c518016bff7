"""[cities.<id>.directory]: validated at load, every error names its key; no secret in the file."""

from __future__ import annotations

import pytest

from itaudit.config import load
from itaudit.errors import ConfigError

BASE = """
[cities.t]
[cities.t.directory]
server = "dc1.t.local"
base_dn = "DC=t,DC=local"
bind_dn = "itaudit-read@t.local"
password_env = "AD_PW"
"""


def _load(tmp_path, extra: str = "", base: str = BASE):
    p = tmp_path / "c.toml"
    p.write_text(base + extra, encoding="utf-8")
    return load(p, env={})


def test_defaults(tmp_path):
    d = _load(tmp_path).cities["t"].directory
    assert (d.security, d.port, d.page_size, d.ca_file, d.tls_name) == ("ldaps", 636, 500, None, None)
    assert d.label == "ldaps://dc1.t.local:636"
    assert _load(tmp_path, 'security = "starttls"\nca_file = "ca.pem"').cities["t"].directory.port == 389
    assert _load(tmp_path, 'ca_file = "ca.pem"').cities["t"].directory.ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(("extra", "key"), [
    ('password = "hunter2"', "cities.t.directory.password"),
    ('security = "plain"', "cities.t.directory.security"),
    ("page_size = 5000", "cities.t.directory.page_size"),
    ("port = 0", "cities.t.directory.port"),
    ('filter = "objectClass=computer"', "cities.t.directory.filter"),
    ('colour = "blue"', "cities.t.directory.colour"),
    ('password_env = "s3cret value!"', "cities.t.directory.password_env"),
])
def test_bad_values_name_the_key(tmp_path, extra, key):
    base = BASE.replace('password_env = "AD_PW"\n', "") if extra.startswith("password_env") else BASE
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, extra, base)
    assert err.value.key == key
    assert "hunter2" not in str(err.value) and "s3cret" not in str(err.value)


def test_needs_a_password_reference_and_a_dn(tmp_path):
    with pytest.raises(ConfigError, match="password_env or password_keyring"):
        _load(tmp_path, base=BASE.replace('password_env = "AD_PW"\n', ""))
    with pytest.raises(ConfigError, match="not a distinguished name") as err:
        _load(tmp_path, base=BASE.replace('base_dn = "DC=t,DC=local"', 'base_dn = "t.local"'))
    assert err.value.key == "cities.t.directory.base_dn"


def test_bind_kinds_and_their_account_forms(tmp_path):
    assert _load(tmp_path).cities["t"].directory.bind == "simple"
    d = _load(tmp_path, 'bind = "ntlm"').cities["t"].directory
    assert d.bind == "ntlm" and d.bind_dn == "itaudit-read@t.local"
    ntlm = BASE.replace('bind_dn = "itaudit-read@t.local"', 'bind_dn = "T\\\\itaudit-read"')
    assert _load(tmp_path, 'bind = "ntlm"', ntlm).cities["t"].directory.bind_dn == "T\\itaudit-read"
    dn = BASE.replace('bind_dn = "itaudit-read@t.local"', 'bind_dn = "CN=itaudit-read,CN=Users,DC=t,DC=local"')
    for kind in ("ntlm", "kerberos"):
        with pytest.raises(ConfigError, match=f'bind = "{kind}" needs the account') as err:
            _load(tmp_path, f'bind = "{kind}"', dn)
        assert err.value.key == "cities.t.directory.bind_dn"
    with pytest.raises(ConfigError, match="must be one of") as err:
        _load(tmp_path, 'bind = "sicily"')
    assert err.value.key == "cities.t.directory.bind"


def test_kerberos_may_use_a_ticket_instead_of_a_password(tmp_path):
    pytest.importorskip("gssapi")
    no_pw = BASE.replace('password_env = "AD_PW"\n', "")
    assert _load(tmp_path, 'bind = "kerberos"', no_pw).cities["t"].directory.password_env is None
    with pytest.raises(ConfigError, match="password_env or password_keyring"):
        _load(tmp_path, 'bind = "ntlm"', no_pw)


def test_kerberos_without_gssapi_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gssapi" else real(name, *a))
    with pytest.raises(ConfigError, match=r"itaudit\[kerberos\]") as err:
        _load(tmp_path, 'bind = "kerberos"')
    assert err.value.key == "cities.t.directory.bind"


def test_directory_command_without_a_database_says_so(tmp_path):
    from click.testing import CliRunner

    from itaudit.cli import cli

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\n[cities.x]\n', encoding="utf-8")
    r = CliRunner().invoke(cli, ["directory", "-c", str(cfg)])
    assert r.exit_code != 0 and "run 'itaudit scan' first" in r.output
    assert "Traceback" not in r.output

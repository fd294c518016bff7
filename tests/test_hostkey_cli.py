"""``itaudit hostkey list`` / ``accept`` against the real test sshd."""

from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner
from peers_ssh import write_ed25519

from collectors.known_hosts import fingerprint, open_known_hosts
from itaudit.cli import cli

pytestmark = pytest.mark.peers


@pytest.fixture
def config(tmp_path, sshd):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[settings]
data_dir = "data"

[cities.hk]
name = "Hostkeyville"

[cities.hk.credentials.key]
type = "ssh"
username = "{sshd.username}"
key_file = "{sshd.client_key}"

[[cities.hk.targets]]
address = "{sshd.address}"
port = {sshd.port}
credential = "key"
name = "real-sshd"
""")
    cfg.chmod(0o600)
    return cfg


def test_accept_a_changed_key_after_confirmation(config, sshd, tmp_path) -> None:
    known = tmp_path / "data" / "hk" / "known_hosts"
    old_line = write_ed25519(tmp_path / "old_key")  # the key pinned before the "rebuild"
    old_type, old_b64 = old_line.split()[:2]
    open_known_hosts(known).pin(sshd.address, sshd.port, old_type, base64.b64decode(old_b64))
    real_type, real_b64 = sshd.host_key_pub.split()[:2]
    new_fp = fingerprint(real_type, base64.b64decode(real_b64))
    old_fp = fingerprint(old_type, base64.b64decode(old_b64))
    runner = CliRunner()

    listed = runner.invoke(cli, ["hostkey", "list", "-c", str(config)])
    assert listed.exit_code == 0 and old_fp in listed.output

    refused = runner.invoke(cli, ["hostkey", "accept", "real-sshd", "-c", str(config)], input="n\n")
    assert refused.exit_code == 1 and "not accepted" in refused.output
    assert old_fp in refused.output and new_fp in refused.output
    assert open_known_hosts(known).lookup(sshd.address, sshd.port) == [(old_type, base64.b64decode(old_b64))]

    done = runner.invoke(cli, ["hostkey", "accept", f"{sshd.address}:{sshd.port}", "-c", str(config), "--yes"])
    assert done.exit_code == 0, done.output
    assert open_known_hosts(known).lookup(sshd.address, sshd.port) == [(real_type, base64.b64decode(real_b64))]
    text = known.read_text()
    assert f"was {old_fp}; now {new_fp}" in text and "# accepted 20" in text
    again = runner.invoke(cli, ["hostkey", "list", "-c", str(config), "--json"])
    assert '"accepted": "20' in again.output and new_fp in again.output
    same = runner.invoke(cli, ["hostkey", "accept", "real-sshd", "-c", str(config), "--yes"])
    assert "nothing to accept" in same.output


def test_unknown_device_is_a_clear_error(config) -> None:
    out = CliRunner().invoke(cli, ["hostkey", "accept", "no-such-host", "-c", str(config), "--yes"])
    assert out.exit_code == 1 and "no SSH target 'no-such-host'" in out.output

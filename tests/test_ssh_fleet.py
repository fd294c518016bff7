"""SSHCollector end to end against the simulated fleet (in-process paramiko servers on 127.0.3.x)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from test_parsers_linux import compare

from collectors.base import CollectContext
from collectors.known_hosts import open_known_hosts
from collectors.ssh import SSHCollector
from itaudit.credentials import SSHCredential
from itaudit.errors import AuthError, CollectTimeout, ConnectError, HostKeyMismatch, ProtocolError
from itaudit.model import ResultStatus, Target

pytestmark = pytest.mark.peers

FLEET_CASES = ["debian-12", "rocky-8", "ubuntu-18.04", "win11-23h2", "winserver-2012r2"]


def ctx_for(fleet, tmp_path: Path, *, password_env: str | None = None, timeout: float = 10.0,
            max_output: int = 4 * 1024 * 1024) -> CollectContext:
    cred = SSHCredential("fleet", fleet.username, password_env=password_env or fleet.password_env)
    return CollectContext("test", credentials={"fleet": cred}, known_hosts=tmp_path / "known_hosts",
                          timeout=timeout, max_output=max_output)


def target(fleet, case: str) -> Target:
    return Target(fleet.address(case), "ssh", port=2222, credential="fleet")


@pytest.mark.parametrize("case", FLEET_CASES)
def test_collects_each_case_like_its_recording(ssh_fleet, tmp_path, case) -> None:
    result = SSHCollector().collect(target(ssh_fleet, case), ctx_for(ssh_fleet, tmp_path))
    assert result.status is ResultStatus.OK, result.error
    case_dir = ssh_fleet.hosts[case].case_dir
    expected = json.loads((case_dir / "expected.json").read_text(encoding="utf-8"))
    assert compare(result.facts, expected) == []
    assert result.facts.identity.address == ssh_fleet.address(case)
    assert result.facts.identity.ssh_host_key == ssh_fleet.fleet.fingerprint(ssh_fleet.address(case))
    assert "probe" not in result.facts.gaps


def test_first_contact_pins_the_host_key(ssh_fleet, tmp_path) -> None:
    ctx = ctx_for(ssh_fleet, tmp_path)
    address = ssh_fleet.address("debian-12")
    assert not (tmp_path / "known_hosts").exists()
    SSHCollector().collect(target(ssh_fleet, "debian-12"), ctx)
    pinned = open_known_hosts(tmp_path / "known_hosts").lookup(address, 2222)
    assert len(pinned) == 1 and pinned[0][0] == "ssh-ed25519"
    again = SSHCollector().collect(target(ssh_fleet, "debian-12"), ctx)  # same key: accepted
    assert again.status is ResultStatus.OK
    assert (tmp_path / "known_hosts").read_text().count(f"[{address}]:2222") == 1


def test_changed_host_key_sends_no_credentials(ssh_fleet, tmp_path) -> None:
    address = ssh_fleet.address("rocky-8")
    other = ssh_fleet.fleet._keys[ssh_fleet.address("debian-12")]  # a real key, but not this host's
    open_known_hosts(tmp_path / "known_hosts").pin(address, 2222, other.get_name(), other.asbytes())
    before = ssh_fleet.fleet.auth_attempts(address)
    ctx = ctx_for(ssh_fleet, tmp_path)
    with pytest.raises(HostKeyMismatch) as err:
        SSHCollector().collect(target(ssh_fleet, "rocky-8"), ctx)
    assert err.value.offered == ssh_fleet.fleet.fingerprint(address)
    assert ssh_fleet.fleet.auth_attempts(address) == before
    result = SSHCollector().safe_collect(target(ssh_fleet, "rocky-8"), ctx)
    assert result.status is ResultStatus.ERROR and result.error_kind == "hostkey"
    assert ssh_fleet.fleet.auth_attempts(address) == before


def test_wrong_password_is_an_auth_error(ssh_fleet, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ITAUDIT_TEST_WRONG_PW", "not-the-password")
    ctx = ctx_for(ssh_fleet, tmp_path, password_env="ITAUDIT_TEST_WRONG_PW")
    with pytest.raises(AuthError) as err:
        SSHCollector().collect(target(ssh_fleet, "debian-12"), ctx)
    assert "not-the-password" not in str(err.value)


def test_unknown_credential_name_is_an_auth_error(ssh_fleet, tmp_path) -> None:
    t = Target(ssh_fleet.address("debian-12"), "ssh", port=2222, credential="other-city")
    with pytest.raises(AuthError):
        SSHCollector().collect(t, ctx_for(ssh_fleet, tmp_path))


def test_refused_port_is_a_connect_error(ssh_fleet, tmp_path) -> None:
    t = Target(ssh_fleet.address("debian-12"), "ssh", port=2223, credential="fleet")
    with pytest.raises(ConnectError):
        SSHCollector().collect(t, ctx_for(ssh_fleet, tmp_path))


def test_tarpit_times_out_within_the_deadline(ssh_fleet, tmp_path) -> None:
    t0 = time.monotonic()
    with pytest.raises(CollectTimeout):
        SSHCollector().collect(target(ssh_fleet, "tarpit"), ctx_for(ssh_fleet, tmp_path, timeout=1.5))
    assert time.monotonic() - t0 < 1.5 + 1.0


def test_stalled_probe_keeps_what_it_got(ssh_fleet, tmp_path) -> None:
    t0 = time.monotonic()
    result = SSHCollector().collect(target(ssh_fleet, "stall"), ctx_for(ssh_fleet, tmp_path, timeout=1.5))
    assert time.monotonic() - t0 < 1.5 + 1.0
    assert result.status is ResultStatus.PARTIAL
    assert result.facts.software.product == "debian"  # early sections survived
    assert result.facts.posture.listening is None and "posture.listening" in result.facts.gaps
    assert "timed out" in result.facts.gaps["probe"]


def test_dropped_connection_keeps_what_it_got(ssh_fleet, tmp_path) -> None:
    result = SSHCollector().collect(target(ssh_fleet, "drop"), ctx_for(ssh_fleet, tmp_path))
    assert result.status is ResultStatus.PARTIAL
    assert result.facts.software.release == "12"
    assert result.facts.posture.firewall_active is None and "posture.firewall_active" in result.facts.gaps


def test_endless_output_is_cut_at_the_bound(ssh_fleet, tmp_path) -> None:
    result = SSHCollector().collect(target(ssh_fleet, "flood"), ctx_for(ssh_fleet, tmp_path, max_output=300_000))
    assert result.status is ResultStatus.PARTIAL
    assert "cut at 300000" in result.facts.gaps["probe"]
    assert all(len(v) <= 4096 for v in result.facts.evidence.values())


def test_collect_many_mixes_good_and_bad_hosts(ssh_fleet, tmp_path) -> None:
    ctx = ctx_for(ssh_fleet, tmp_path, timeout=2.0)
    targets = [target(ssh_fleet, c) for c in ("debian-12", "win11-23h2", "tarpit")]
    results = {r.target.address: r for r in SSHCollector().collect_many(targets, ctx)}
    assert results[ssh_fleet.address("debian-12")].status is ResultStatus.OK
    assert results[ssh_fleet.address("win11-23h2")].facts.software.product == "windows"
    assert results[ssh_fleet.address("tarpit")].error_kind == "timeout"
    assert os.environ[ssh_fleet.password_env] not in repr(results)


def test_pwsh_tag_runs_the_probe_with_powershell_7(ssh_fleet, tmp_path) -> None:
    t = Target(ssh_fleet.address("win11-23h2"), "ssh", port=2222, credential="fleet", tags=["pwsh"])
    result = SSHCollector().collect(t, ctx_for(ssh_fleet, tmp_path))
    assert result.status is ResultStatus.OK and result.facts.software.release == "11-23h2-e"


def test_wrong_platform_is_a_protocol_error_with_the_shells_words(ssh_fleet, tmp_path) -> None:
    t = Target(ssh_fleet.address("debian-12"), "ssh", port=2222, credential="fleet", tags=["windows"])
    with pytest.raises(ProtocolError, match="powershell: not found"):
        SSHCollector().collect(t, ctx_for(ssh_fleet, tmp_path))

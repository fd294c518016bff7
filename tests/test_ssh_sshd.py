"""SSHCollector end to end against a real OpenSSH sshd on 127.0.2.N:2222 (this very machine)."""

from __future__ import annotations

import base64
import os
import platform
import shutil
import socket
import subprocess
import time

import pytest

from collectors.base import CollectContext
from collectors.known_hosts import fingerprint, open_known_hosts
from collectors.ssh import SSHCollector
from itaudit.credentials import SSHCredential
from itaudit.errors import AuthError, ConnectError, HostKeyMismatch
from itaudit.model import ResultStatus, Target

pytestmark = pytest.mark.peers


def key_ctx(sshd, tmp_path, timeout: float = 120.0) -> CollectContext:
    cred = SSHCredential("local", sshd.username, key_file=str(sshd.client_key))
    return CollectContext("test", credentials={"local": cred}, known_hosts=tmp_path / "known_hosts",
                          timeout=timeout)


def local_target(sshd, port: int | None = None) -> Target:
    return Target(sshd.address, "ssh", port=port or sshd.port, credential="local", tags=["linux"])


def os_release() -> dict[str, str]:
    out = {}
    with open("/etc/os-release", encoding="utf-8") as fh:
        for line in fh:
            k, _, v = line.strip().partition("=")
            out[k] = v.strip('"')
    return out


@pytest.fixture(scope="module")
def local_result(sshd, tmp_path_factory):
    """One full collection of this machine through the real sshd (the probe takes a few seconds)."""
    tmp = tmp_path_factory.mktemp("local")
    return SSHCollector().collect(local_target(sshd), key_ctx(sshd, tmp)), tmp


def test_facts_of_this_machine(sshd, local_result) -> None:
    result, _ = local_result
    assert result.status is ResultStatus.OK, result.facts.gaps
    facts = result.facts
    osr = os_release()
    assert facts.software.os_family == "linux"
    assert facts.software.os_version.split(".")[0] == osr["VERSION_ID"].split(".")[0]
    assert facts.software.os_name == osr.get("PRETTY_NAME")
    assert facts.software.kernel == platform.release()
    assert facts.software.arch == platform.machine()
    assert facts.identity.hostname == socket.gethostname()
    assert facts.identity.uptime_seconds and facts.identity.uptime_seconds > 0
    assert facts.posture.uid0_accounts and "root" in facts.posture.uid0_accounts
    if shutil.which("dpkg-query"):
        out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}\n"], capture_output=True, text=True,
                             check=True).stdout
        assert facts.patching.installed_count == sum(1 for ln in out.splitlines() if ln[:2] in ("ii", "hi"))
        assert facts.patching.package_manager == "apt"
    listening = {(s.proto, s.port, s.address) for s in facts.posture.listening or []}
    assert ("tcp", sshd.port, sshd.address) in listening  # the test sshd itself


def test_first_contact_pinned_the_real_host_key(sshd, local_result) -> None:
    result, tmp = local_result
    key_type, b64 = sshd.host_key_pub.split()[:2]
    expected = fingerprint(key_type, base64.b64decode(b64))
    assert result.facts.identity.ssh_host_key == expected
    assert open_known_hosts(tmp / "known_hosts").lookup(sshd.address, sshd.port) == [
        (key_type, base64.b64decode(b64))]


def test_changed_host_key_is_refused_before_authentication(sshd, tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    impostor = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).split()
    open_known_hosts(tmp_path / "known_hosts").pin(sshd.address, sshd.port, impostor[0].decode(),
                                                   base64.b64decode(impostor[1]))
    mark = len(sshd.log_text())
    with pytest.raises(HostKeyMismatch):
        SSHCollector().collect(local_target(sshd), key_ctx(sshd, tmp_path))
    time.sleep(0.3)
    log = sshd.log_text()[mark:]
    assert "Connection" in log  # sshd saw us ...
    assert not any(w in log for w in ("Accepted", "Failed", "Postponed", "Invalid user"))  # ... but no auth


def test_wrong_password_is_an_auth_error(sshd, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ITAUDIT_TEST_SSHD_PW", "wrong-" + os.urandom(4).hex())
    cred = SSHCredential("local", sshd.username, password_env="ITAUDIT_TEST_SSHD_PW")
    ctx = CollectContext("test", credentials={"local": cred}, known_hosts=tmp_path / "kh", timeout=20)
    with pytest.raises(AuthError):
        SSHCollector().collect(local_target(sshd), ctx)


def test_refused_port_is_a_connect_error(sshd, tmp_path) -> None:
    with pytest.raises(ConnectError):
        SSHCollector().collect(local_target(sshd, port=2223), key_ctx(sshd, tmp_path))


def test_output_over_the_bound_is_cut_and_early_sections_kept(sshd, tmp_path) -> None:
    ctx = key_ctx(sshd, tmp_path)
    ctx.max_output = 3000  # enough for the first sections only
    result = SSHCollector().collect(local_target(sshd), ctx)
    assert result.status is ResultStatus.PARTIAL
    assert "cut at 3000 bytes" in result.facts.gaps["probe"]
    assert result.facts.software.kernel == platform.release()
    assert result.facts.posture.listening is None
    assert "posture.listening" in result.facts.gaps


def _auth_only_ctx(cred: SSHCredential, tmp_path) -> CollectContext:
    # A small output bound ends the probe early: these tests are about logging in.
    return CollectContext("test", credentials={"local": cred}, known_hosts=tmp_path / "kh", timeout=30,
                          max_output=600)


def test_login_through_ssh_agent(sshd, tmp_path, monkeypatch) -> None:
    if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
        pytest.skip("ssh-agent not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
        subprocess.run(["ssh-add", str(sshd.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        cred = SSHCredential("local", sshd.username, use_agent=True)
        result = SSHCollector().collect(local_target(sshd), _auth_only_ctx(cred, tmp_path))
        assert result.status is ResultStatus.PARTIAL and result.facts.software.os_family == "linux"
    finally:
        agent.terminate()
        agent.wait(timeout=5)


def test_login_with_an_encrypted_key_file(sshd, tmp_path, monkeypatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    passphrase = "pass-" + os.urandom(4).hex()
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "enc_key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.BestAvailableEncryption(passphrase.encode())))
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    with open(sshd.workdir / "authorized_keys", "a") as fh:  # sshd reads it at every login
        fh.write(pub.decode() + " encrypted-test-key\n")
    monkeypatch.setenv("ITAUDIT_TEST_KEY_PASSPHRASE", passphrase)
    cred = SSHCredential("local", sshd.username, key_file=str(path), password_env="ITAUDIT_TEST_KEY_PASSPHRASE")
    result = SSHCollector().collect(local_target(sshd), _auth_only_ctx(cred, tmp_path))
    assert result.status is ResultStatus.PARTIAL and "cut at 600" in result.facts.gaps["probe"]
    monkeypatch.setenv("ITAUDIT_TEST_KEY_PASSPHRASE", "wrong")
    with pytest.raises(AuthError, match="cannot decrypt"):
        SSHCollector().collect(local_target(sshd), _auth_only_ctx(cred, tmp_path))

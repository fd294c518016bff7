"""Issue 16's SSH matrix: real sshd processes in many configurations, each judged by what the
daemon that served our session does (its own ``-f`` file and ``-o`` options, its Match blocks,
its algorithm offer), never by /etc/ssh/sshd_config.

Every case runs the real SSHCollector against a real OpenSSH sshd started by the
``sshd_matrix`` fixture, then the real checks on the facts collected.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from checkhelp import ctx as check_ctx

from collectors.base import CollectContext
from collectors.ssh import SSHCollector
from itaudit.checking import run_checks
from itaudit.credentials import SSHCredential
from itaudit.errors import AuthError, ConnectError, ProtocolError
from itaudit.model import ResultStatus, Target
from itaudit.plugins import load_checks

pytestmark = pytest.mark.peers

SSH_CHECKS = ("SEC-002", "SEC-003", "SEC-020", "SEC-021", "SEC-022", "SEC-023", "SEC-024", "SEC-025")


def collect(inst, matrix, tmp_path, *, user: str | None = None, sudo: bool = False, legacy: bool = False,
            password_env: str | None = None, timeout: float = 60, key: bool = True):
    cred = SSHCredential("c", user or _me(), key_file=str(matrix.client_key) if key else None, sudo=sudo,
                         legacy_algorithms=legacy, password_env=password_env)
    ctx = CollectContext("test", credentials={"c": cred}, known_hosts=tmp_path / "kh", timeout=timeout)
    return SSHCollector().safe_collect(Target(inst.address, "ssh", port=inst.port, credential="c",
                                              tags=["linux"]), ctx)


def _me() -> str:
    import getpass

    return getpass.getuser()


def findings(facts) -> dict[str, str]:
    load_checks()
    return {f.check_id: f.status.value for f in run_checks(facts, check_ctx("server"))
            if f.check_id in SSH_CHECKS}


def test_weak_ciphers_and_macs_fail_weak_crypto(sshd_matrix, tmp_path) -> None:
    inst = sshd_matrix.start("weak", "Ciphers aes128-cbc,3des-cbc,aes128-ctr\nMACs hmac-sha1,hmac-sha2-256\n")
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert po.ssh_ciphers_offered == ["aes128-cbc", "3des-cbc", "aes128-ctr"]
    assert po.ssh_macs_offered == ["hmac-sha1", "hmac-sha2-256"]
    load_checks()
    got = run_checks(result.facts, check_ctx("server"))
    weak = next(f for f in got if f.check_id == "SEC-020")
    assert weak.status.value == "fail"
    for algo in ("aes128-cbc", "3des-cbc", "hmac-sha1"):
        assert algo in weak.detail
    assert "NIST SP 800-131A" in weak.detail and "BSI TR-02102-4" in weak.detail


def test_legacy_kex_only_needs_the_opt_in_and_names_both_sides(sshd_matrix, tmp_path) -> None:
    inst = sshd_matrix.start("legacy", "KexAlgorithms diffie-hellman-group14-sha1\nHostKeyAlgorithms ssh-rsa\n",
                             host_keys=(sshd_matrix.rsa_key,))
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.ERROR and result.error_kind == "protocol"
    assert "server offers diffie-hellman-group14-sha1" in result.error
    assert "itaudit offers" in result.error and "curve25519-sha256" in result.error
    assert "legacy_algorithms" in result.error
    # The offer seen before the failure still feeds the weak-crypto check (no login needed).
    assert result.facts.posture.ssh_kex_offered == ["diffie-hellman-group14-sha1"]
    assert findings(result.facts)["SEC-020"] == "fail"
    ok = collect(inst, sshd_matrix, tmp_path / "opt-in", legacy=True)
    assert ok.status is ResultStatus.OK, ok.error
    assert ok.facts.posture.ssh_host_keys_offered == ["ssh-rsa"]
    assert ok.facts.software.os_family == "linux"
    # The same opt-in for one target only: its tag.
    cred = SSHCredential("c", _me(), key_file=str(sshd_matrix.client_key))
    ctx = CollectContext("test", credentials={"c": cred}, known_hosts=tmp_path / "kh-tag", timeout=60)
    tagged = SSHCollector().safe_collect(Target(inst.address, "ssh", port=inst.port, credential="c",
                                                tags=["linux", "legacy-ssh"]), ctx)
    assert tagged.status is ResultStatus.OK, tagged.error


def test_modern_only_server_is_audited_out_of_the_box(sshd_matrix, tmp_path) -> None:
    inst = sshd_matrix.start(
        "modern",
        "KexAlgorithms curve25519-sha256,sntrup761x25519-sha512@openssh.com\n"
        "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512\n"
        "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com\nMACs hmac-sha2-512-etm@openssh.com\n",
    )
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    assert result.facts.posture.ssh_kex_offered == ["curve25519-sha256", "sntrup761x25519-sha512@openssh.com"]
    assert findings(result.facts)["SEC-020"] == "pass"


# ssh-audit's "Debian Bookworm (Debian 12)" server hardening guide, last modified April 18, 2025
# (https://www.ssh-audit.com/hardening_guides.html#debian_12, as mirrored in the public repository
# oam7575/ssh_hardening_guides, index.html at commit 62b626b77ce1cd64d43a318010b82e7a0a7ec250):
# the directives of its /etc/ssh/sshd_config.d/ssh-audit_hardening.conf, one per line, and its
# host keys (ED25519 and a 4096-bit RSA key). The gss-* names are Debian's GSSAPI key exchange.
SSH_AUDIT_DEBIAN12 = (
    "KexAlgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org,gss-curve25519-sha256-,diffie-hellman-group16-sha512,gss-group16-sha512-,"
    "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256\n"
    "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-gcm@openssh.com,"
    "aes128-ctr\n"
    "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com\n"
    "HostKeyAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,ssh-ed25519,"
    "rsa-sha2-512,rsa-sha2-256\n"
    "RequiredRSASize 3072\n"
    "CASignatureAlgorithms sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256\n"
    "GSSAPIKexAlgorithms gss-curve25519-sha256-,gss-group16-sha512-\n"
    "HostbasedAcceptedAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,"
    "sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-512,"
    "rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-256\n"
    "PubkeyAcceptedAlgorithms sk-ssh-ed25519-cert-v01@openssh.com,ssh-ed25519-cert-v01@openssh.com,"
    "sk-ssh-ed25519@openssh.com,ssh-ed25519,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-512,"
    "rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-256\n"
)


def test_ssh_audit_debian12_hardening_guide_is_audited_out_of_the_box(sshd_matrix, tmp_path) -> None:
    import subprocess

    rsa = Path(sshd_matrix.work) / "ssh_host_rsa4096_key"
    if not rsa.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "4096", "-N", "", "-f", str(rsa)],
                       check=True, capture_output=True)
    inst = sshd_matrix.start("ssh-audit-debian12", SSH_AUDIT_DEBIAN12, host_keys=(sshd_matrix.host_key, rsa))
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert po.ssh_kex_offered[:4] == ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
                                      "curve25519-sha256", "curve25519-sha256@libssh.org"]
    assert po.ssh_macs_offered == ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
                                   "umac-128-etm@openssh.com"]
    assert set(po.ssh_host_keys_offered) == {"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"}
    assert po.ssh_settings_source.startswith("sshd -T of ")
    assert findings(result.facts)["SEC-020"] == "pass"


def test_hybrid_only_key_exchange_names_both_sides_in_plain_words(sshd_matrix, tmp_path) -> None:
    # OpenSSH 9.2 has no ML-KEM; sntrup761 alone is a modern server paramiko cannot negotiate.
    inst = sshd_matrix.start("hybrid-only", "KexAlgorithms sntrup761x25519-sha512@openssh.com\n")
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.ERROR and result.error_kind == "protocol"
    err = result.error
    assert "no common key exchange algorithm: the server offers sntrup761x25519-sha512@openssh.com;" in err
    assert "itaudit offers mlkem768x25519-sha256, curve25519-sha256@libssh.org, curve25519-sha256" in err
    assert "post-quantum hybrid key exchange, which is not weak" in err and "add curve25519-sha256" in err
    assert "legacy_algorithms" not in err  # opting in to SHA-1 would not help here
    # The offer is still judged: the hybrid is not weak; OpenSSH 9.2's default MACs (hmac-sha1) are.
    assert result.facts.posture.ssh_kex_offered == ["sntrup761x25519-sha512@openssh.com"]
    load_checks()
    weak = next(f for f in run_checks(result.facts, check_ctx("server")) if f.check_id == "SEC-020")
    assert weak.status.value == "fail" and "hmac-sha1" in weak.detail and "sntrup" not in weak.detail


def test_root_login_yes_in_the_daemons_own_file_and_options(sshd_matrix, tmp_path) -> None:
    # The daemon's own -f file says yes (whatever /etc/ssh/sshd_config says) and -o raises MaxAuthTries.
    inst = sshd_matrix.start("root-pw", "PermitRootLogin yes\nPasswordAuthentication yes\n",
                             args=("-o", "MaxAuthTries=8"))
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert po.ssh_root_login == "yes" and po.ssh_password_auth is True and po.ssh_max_auth_tries == 8
    assert str(inst.conf) in po.ssh_settings_source and "sshd -T" in po.ssh_settings_source
    got = findings(result.facts)
    assert got["SEC-002"] == "fail" and got["SEC-003"] == "fail" and got["SEC-024"] == "fail"


def _spaced_options(matrix) -> tuple[str, ...]:
    banner = Path(matrix.work) / "issue net"
    banner.write_text("Authorised use only\n")
    banner.chmod(0o644)
    # "Keyword value" with a space (not "="), a value of several words, a quoted path with a space.
    return ("-o", "PermitRootLogin yes", "-o", "MaxAuthTries 9", f"-oAllowUsers=nobody {_me()} itaudit16n",
            "-o", f'Banner "{banner}"')


def test_options_with_spaces_on_the_daemons_command_line(sshd_matrix, tmp_path) -> None:
    # OpenSSH's listener retitles itself (its arguments joined by spaces): the probe splits the
    # title again by sshd's option grammar, so each -o value reaches sshd -T whole.
    inst = sshd_matrix.start("spaced name", "PermitRootLogin no\n", args=_spaced_options(sshd_matrix))
    assert "[listener]" in Path(f"/proc/{inst.proc.pid}/cmdline").read_text()
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert po.ssh_settings_source.startswith("sshd -T of "), po.ssh_settings_source
    assert f"(config {inst.conf})" in po.ssh_settings_source
    assert po.ssh_root_login == "yes" and po.ssh_max_auth_tries == 9
    assert f"-o 'AllowUsers=nobody {_me()} itaudit16n'" in result.facts.evidence["sshd"]
    assert findings(result.facts)["SEC-002"] == "fail"
    assert _largv(f"/proc/{inst.proc.pid}/cmdline") == [
        "B /usr/sbin/sshd", "- D", "- e", f"f {inst.conf}", "o PermitRootLogin yes", "o MaxAuthTries 9",
        f"o AllowUsers=nobody {_me()} itaudit16n", f'o Banner "{Path(sshd_matrix.work) / "issue net"}"']


def _largv(path: str) -> list[str]:
    """The probe's own reader of a listener's command line (``largv``), run on ``path``."""
    from collectors.ssh import probe_script

    lines = probe_script("linux").splitlines()
    i = lines.index("largv() {")
    fn = "\n".join(lines[i:lines.index("}", i) + 1])
    out = subprocess.run(["/bin/sh", "-c", f'{fn}\nlargv "$1"', "sh", path], capture_output=True, text=True,
                         check=True, timeout=30)
    return out.stdout.splitlines()


def test_a_command_line_kept_at_its_nuls_is_read_word_by_word() -> None:
    # A daemon that does not retitle itself keeps its arguments NUL-separated: a real process
    # here (sh reading its script from stdin, so its argv is exactly these words).
    argv = ["/usr/sbin/sshd", "-s", "--", "-D", "-f", "/etc/ssh/my  conf", "-o", "PermitRootLogin yes",
            "-oAllowUsers=a -b", "-p", "2200"]
    proc = subprocess.Popen(argv, executable="/bin/sh", stdin=subprocess.PIPE)
    try:
        time.sleep(0.2)
        got = _largv(f"/proc/{proc.pid}/cmdline")
    finally:
        proc.communicate(b"exit 0\n", timeout=10)
    assert got[0] == "B /usr/sbin/sshd"
    # Words that look like options inside a value, and double spaces, survive only this way.
    assert got[-4:] == ["f /etc/ssh/my  conf", "o PermitRootLogin yes", "o AllowUsers=a -b", "p 2200"]


def test_options_with_spaces_also_apply_when_only_the_files_can_be_read(sshd_matrix, sudo_users, tmp_path) -> None:
    # No root, no sudo: sshd -T cannot run, the file says "no", the command line says "yes".
    inst = sshd_matrix.start("spaced files", "PermitRootLogin no\n", args=_spaced_options(sshd_matrix))
    result = collect(inst, sshd_matrix, tmp_path, user="itaudit16n")
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert "configuration files" in po.ssh_settings_source and str(inst.conf) in po.ssh_settings_source
    assert po.ssh_root_login == "yes" and po.ssh_max_auth_tries == 9


def test_key_only_server(sshd_matrix, tmp_path, monkeypatch) -> None:
    inst = sshd_matrix.start("key-only", "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                             "PermitRootLogin prohibit-password\nMaxAuthTries 3\nLoginGraceTime 30\n"
                             "AllowAgentForwarding no\n")
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    got = findings(result.facts)
    assert (got["SEC-002"], got["SEC-003"], got["SEC-024"], got["SEC-025"], got["SEC-023"]) == ("pass",) * 5
    # The running daemon agrees: it does not even offer the password method.
    monkeypatch.setenv("ITAUDIT_T16_PW", "not-the-password")
    refused = collect(inst, sshd_matrix, tmp_path / "pw", password_env="ITAUDIT_T16_PW", key=False)
    assert refused.status is ResultStatus.ERROR and refused.error_kind == "auth"
    # Judged before the (failed) login, on the offer: OpenSSH 9.2's default still has hmac-sha1.
    assert refused.facts.posture.ssh_macs_offered and "hmac-sha1" in refused.facts.posture.ssh_macs_offered
    assert findings(refused.facts)["SEC-020"] == "fail"


def test_x11_forwarding_on(sshd_matrix, tmp_path) -> None:
    inst = sshd_matrix.start("x11", "X11Forwarding yes\n")
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    got = findings(result.facts)
    assert got["SEC-022"] == "fail" and got["SEC-025"] == "fail"  # OpenSSH's default 120 s grace


MATCH_CONF = ("PasswordAuthentication no\nKbdInteractiveAuthentication no\nX11Forwarding no\n"
              "Match Address 127.0.0.0/8\n  PasswordAuthentication yes\n  X11Forwarding yes\n"
              "Match User nobody\n  PermitEmptyPasswords yes\n")


def test_match_block_applies_to_our_connection(sshd_matrix, tmp_path) -> None:
    inst = sshd_matrix.start("match", MATCH_CONF)
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert po.ssh_password_auth is True and po.ssh_x11_forwarding is True and po.ssh_empty_passwords is False
    assert "-C user=" in result.facts.evidence["sshd"] or "conn=user=" in result.facts.evidence["sshd"]


def test_non_root_without_sudo_reads_the_daemons_files(sshd_matrix, sudo_users, tmp_path) -> None:
    # sshd -T cannot run as a plain user (host keys unreadable): the daemon's own file is read
    # and its Match blocks evaluated here; root-only facts are unknown with the reason.
    inst = sshd_matrix.start("nonroot-files", MATCH_CONF)
    result = collect(inst, sshd_matrix, tmp_path, user="itaudit16n")
    assert result.status is ResultStatus.OK, result.error
    facts = result.facts
    assert "configuration files" in facts.posture.ssh_settings_source
    assert str(inst.conf) in facts.posture.ssh_settings_source
    assert facts.posture.ssh_password_auth is True and facts.posture.ssh_x11_forwarding is True
    assert "not readable without root (sudo: not asked (credential.sudo is off))" in \
        facts.gaps["posture.empty_password_accounts"]
    assert facts.posture.local_admins is not None  # /etc/group is world-readable


def test_non_root_without_sudo_and_a_private_config_is_unknown(sshd_matrix, sudo_users, tmp_path) -> None:
    inst = sshd_matrix.start("nonroot-private", "PermitRootLogin yes\n", private=True)
    result = collect(inst, sshd_matrix, tmp_path, user="itaudit16n", sudo=True)
    assert result.status is ResultStatus.OK, result.error
    facts = result.facts
    why = facts.gaps["posture.ssh_root_login"]
    assert "not readable without root" in why and "sudo" in why
    assert facts.posture.ssh_root_login is None
    assert findings(facts)["SEC-002"] == "unknown"  # never a pass on facts we did not read


def test_non_root_with_sudo_runs_sshd_t_through_sudo(sshd_matrix, sudo_users, tmp_path) -> None:
    inst = sshd_matrix.start("nonroot-sudo", "PermitRootLogin yes\nX11Forwarding yes\n", private=True)
    result = collect(inst, sshd_matrix, tmp_path, user="itaudit16s", sudo=True)
    assert result.status is ResultStatus.OK, result.error
    facts = result.facts
    assert "sshd -T through sudo -n" in facts.posture.ssh_settings_source
    assert facts.posture.ssh_root_login == "yes" and facts.posture.ssh_x11_forwarding is True
    assert facts.posture.empty_password_accounts is not None  # /etc/shadow through sudo
    # Without credential.sudo the same login leaves them unknown, saying why.
    plain = collect(inst, sshd_matrix, tmp_path / "plain", user="itaudit16s", sudo=False)
    assert plain.facts.posture.ssh_root_login is None
    assert "credential.sudo is off" in plain.facts.gaps["posture.ssh_root_login"]


def test_sudo_that_asks_for_a_password_is_a_named_reason(sshd_matrix, sudo_users, tmp_path) -> None:
    inst = sshd_matrix.start("sudo-prompts", "PermitRootLogin yes\n", private=True)
    result = collect(inst, sshd_matrix, tmp_path, user="itaudit16p", sudo=True)
    assert result.status is ResultStatus.OK, result.error
    why = result.facts.gaps["posture.ssh_root_login"]
    assert "password is required" in why


def test_garbled_sshd_t_output_is_a_named_reason(sshd_matrix, tmp_path) -> None:
    # The daemon runs from a path that, once it listens, answers -T with garbage (-r: sshd does
    # not re-execute itself per connection, so the running daemon is unaffected).
    bindir = Path(sshd_matrix.work) / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "sshd"
    shutil.copy2("/usr/sbin/sshd", fake)
    inst = sshd_matrix.start("garbled", "PermitRootLogin yes\n", binary=str(fake), args=("-r",))
    fake.unlink()
    fake.write_text("#!/bin/sh\nprintf 'permitrootlogin\\n\\001\\002 garbage\\n'\n")
    fake.chmod(0o755)
    result = collect(inst, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.OK, result.error
    facts = result.facts
    # Garbage is not a setting: it falls back to the daemon's own file, saying sshd -T failed.
    assert facts.posture.ssh_root_login == "yes"
    assert "sshd -T could not run" in facts.posture.ssh_settings_source


def test_server_closing_during_key_exchange_is_a_named_error(tmp_path) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        conn.recv(64)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        cred = SSHCredential("c", "x", key_file="/nonexistent")
        ctx = CollectContext("test", credentials={"c": cred}, known_hosts=tmp_path / "kh", timeout=10)
        with pytest.raises((ConnectError, ProtocolError, AuthError)) as info:
            SSHCollector().collect(Target("127.0.0.1", "ssh", port=port, credential="c"), ctx)
        assert "key exchange" in str(info.value)
    finally:
        srv.close()
        t.join(timeout=5)


def test_real_sshd_closing_during_key_exchange_is_a_named_error_and_the_scan_goes_on(sshd_matrix, tmp_path) -> None:
    from itaudit.config import load
    from itaudit.scan import run_scan

    # Its only host key algorithm has no key: OpenSSH drops the connection during key exchange
    # ("No supported key exchange algorithms [preauth]").
    broken = sshd_matrix.start("kex-closes", "HostKeyAlgorithms rsa-sha2-512\n")
    good = sshd_matrix.start("kex-closes-neighbour", "")
    result = collect(broken, sshd_matrix, tmp_path)
    assert result.status is ResultStatus.ERROR and result.error_kind == "connect"
    assert "during key exchange: the server closed the connection" in result.error, result.error
    assert "No supported key exchange algorithms" in broken.log_text()
    cfg_path = tmp_path / "config.toml"
    targets = "".join(f"""
[[cities.m.targets]]
address = "{inst.address}"
port = {inst.port}
credential = "key"
name = "{inst.name}"
""" for inst in (broken, good))
    cfg_path.write_text(f"""
[settings]
data_dir = "data"
timeout = 20

[cities.m]
name = "Matrixville"

[cities.m.credentials.key]
type = "ssh"
username = "{_me()}"
key_file = "{sshd_matrix.client_key}"
{targets}""")
    cfg_path.chmod(0o600)
    cfg = load(str(cfg_path))
    summary = run_scan(cfg, cfg.city("m"))
    assert summary.failed == 1 and "the server closed the connection" in summary.errors[0][1]
    assert summary.ok == 1


def test_a_scan_stores_the_weak_crypto_finding_of_a_server_it_could_not_log_in_to(sshd_matrix, tmp_path) -> None:
    from itaudit.config import load
    from itaudit.scan import run_scan
    from itaudit.store import Store

    inst = sshd_matrix.start("legacy-scan", "KexAlgorithms diffie-hellman-group14-sha1\n"
                             "HostKeyAlgorithms ssh-rsa\n", host_keys=(sshd_matrix.rsa_key,))
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(f"""
[settings]
data_dir = "data"
timeout = 20

[cities.m]
name = "Matrixville"

[cities.m.credentials.key]
type = "ssh"
username = "{_me()}"
key_file = "{sshd_matrix.client_key}"

[[cities.m.targets]]
address = "{inst.address}"
port = {inst.port}
credential = "key"
name = "old-appliance"
""")
    cfg_path.chmod(0o600)
    cfg = load(str(cfg_path))
    city = cfg.city("m")
    summary = run_scan(cfg, city)
    assert summary.failed == 1 and "no common key exchange algorithm" in summary.errors[0][1]
    store = Store(city.database)
    try:
        rows = {r["check_id"]: r for r in store.open_findings()}
    finally:
        store.close()
    assert rows["SEC-020"]["status"] == "fail"
    assert "diffie-hellman-group14-sha1" in rows["SEC-020"]["evidence"]

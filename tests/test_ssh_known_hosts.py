"""itaudit's own known_hosts store: pinning, lookups, hashed names, import."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading

from collectors.known_hosts import fingerprint, host_label, import_known_hosts, open_known_hosts

BLOB_A = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"A" * 32
BLOB_B = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"B" * 32


def test_label_and_fingerprint() -> None:
    assert host_label("10.1.1.1", 22) == "10.1.1.1"
    assert host_label("10.1.1.1", 2222) == "[10.1.1.1]:2222"
    digest = base64.b64encode(hashlib.sha256(BLOB_A).digest()).decode().rstrip("=")
    assert fingerprint("ssh-ed25519", BLOB_A) == f"ssh-ed25519 SHA256:{digest}"


def test_pin_once_then_lookup(tmp_path) -> None:
    kh = open_known_hosts(tmp_path / "kh")
    assert kh.lookup("127.0.0.9", 2222) == []
    assert kh.pin("127.0.0.9", 2222, "ssh-ed25519", BLOB_A) is True
    assert kh.pin("127.0.0.9", 2222, "ssh-ed25519", BLOB_B) is False  # never overwrite a pin
    assert kh.lookup("127.0.0.9", 2222) == [("ssh-ed25519", BLOB_A)]
    assert kh.lookup("127.0.0.9", 22) == []
    line = (tmp_path / "kh").read_text().strip()
    assert line.startswith("[127.0.0.9]:2222 ssh-ed25519 ")
    assert (tmp_path / "kh").stat().st_mode & 0o777 == 0o600


def test_concurrent_pins_write_whole_lines(tmp_path) -> None:
    kh = open_known_hosts(tmp_path / "kh")
    threads = [threading.Thread(target=kh.pin, args=(f"127.0.5.{i}", 22, "ssh-ed25519", BLOB_A)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "kh").read_text().splitlines()
    assert len(lines) == 50 and all(len(ln.split()) == 3 for ln in lines)


def test_file_edited_outside_is_reloaded(tmp_path) -> None:
    path = tmp_path / "kh"
    kh = open_known_hosts(path)
    kh.pin("127.0.0.8", 22, "ssh-ed25519", BLOB_A)
    path.write_text("")  # an operator removed the pin after a legitimate re-install
    assert kh.lookup("127.0.0.8", 22) == []


def test_import_user_known_hosts_with_hashed_names(tmp_path) -> None:
    salt = b"0123456789abcdefghij"
    mac = hmac.new(salt, b"[127.0.0.7]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"
    b64a, b64b = base64.b64encode(BLOB_A).decode(), base64.b64encode(BLOB_B).decode()
    user = tmp_path / "user_known_hosts"
    user.write_text(f"# comment\n{hashed} ssh-ed25519 {b64b}\nhost1,127.0.0.6 ssh-ed25519 {b64a}\n"
                    f"@cert-authority *.city ssh-ed25519 {b64a}\ngarbage line\n")
    ours = tmp_path / "itaudit_known_hosts"
    assert import_known_hosts(user, ours) == 2
    assert import_known_hosts(user, ours) == 0  # idempotent
    kh = open_known_hosts(ours)
    assert kh.lookup("127.0.0.7", 2222) == [("ssh-ed25519", BLOB_B)]
    assert kh.lookup("127.0.0.6", 22) == [("ssh-ed25519", BLOB_A)]
    assert kh.lookup("host1", 22) == [("ssh-ed25519", BLOB_A)]

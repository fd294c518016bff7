"""Credentials as *references* to secrets, resolved only at the moment of use.

The config names an environment variable, a key file, the ssh-agent or an OS keyring
entry; these objects carry those names, never the secret, so they are safe to log, to
repr and to pass around. ``secret()`` reads the value when a collector connects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from itaudit.errors import AuthError


def read_secret(*, env: str | None = None, keyring_ref: str | None = None,
                file: str | None = None) -> str | None:
    """Resolve one secret reference: environment variable, keyring ``service/user``, or file."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise AuthError(f"environment variable {env} is not set")
        return value
    if keyring_ref:
        try:
            import keyring  # optional dependency
        except ImportError as exc:
            raise AuthError("keyring reference given but the 'keyring' package is not installed") from exc
        service, _, user = keyring_ref.partition("/")
        value = keyring.get_password(service, user)
        if value is None:
            raise AuthError(f"no keyring entry {keyring_ref}")
        return value
    if file:
        try:
            with open(os.path.expanduser(file), encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise AuthError(f"cannot read secret file {file}: {exc.strerror}") from exc
    return None


@dataclass(frozen=True)
class SSHCredential:
    name: str
    username: str
    key_file: str | None = None
    password_env: str | None = None
    password_keyring: str | None = None  # "service/user"
    use_agent: bool = False
    sudo: bool = False  # allow `sudo -n` for probes that need it
    # negotiate diffie-hellman-group14-sha1 and ssh-rsa (SHA-1) host keys: legacy devices only
    legacy_algorithms: bool = False

    def password(self) -> str | None:
        return read_secret(env=self.password_env, keyring_ref=self.password_keyring)


@dataclass(frozen=True)
class SNMPCredential:
    name: str
    version: str = "v3"  # "v1", "v2c", "v3"
    community_env: str | None = None
    community_file: str | None = None
    username: str | None = None
    auth_protocol: str | None = None  # "sha", "sha224", "sha256", "sha384", "sha512", "md5"
    auth_key_env: str | None = None
    priv_protocol: str | None = None  # "aes128", "aes192", "aes256", "des"
    priv_key_env: str | None = None

    def community(self) -> str | None:
        return read_secret(env=self.community_env, file=self.community_file)

    def auth_key(self) -> str | None:
        return read_secret(env=self.auth_key_env)

    def priv_key(self) -> str | None:
        return read_secret(env=self.priv_key_env)


@dataclass(frozen=True)
class WinRMCredential:
    """WinRM (PowerShell Remoting). HTTPS validates the certificate; HTTP only with message
    encryption; never Basic authentication."""

    name: str
    username: str  # "CITY\\itaudit-scan" or "itaudit-scan@city.local"
    password_env: str | None = None
    password_keyring: str | None = None  # "service/user"
    auth: str = "negotiate"  # "negotiate", "kerberos" or "ntlm"
    transport: str = "https"  # "https" (5986) or "http" (5985, message encryption)
    ca_file: str | None = None  # the CA of the hosts' WinRM certificates (default: system store)

    def password(self) -> str | None:
        return read_secret(env=self.password_env, keyring_ref=self.password_keyring)


Credential = SSHCredential | SNMPCredential | WinRMCredential

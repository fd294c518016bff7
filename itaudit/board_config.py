"""``[board]``: where and for whom the status board (``itaudit serve``, the agent) is served.

Loopback (127.0.0.0/8, ::1) is served without login. Anything else — a non-loopback
address, a loopback address the config declares reachable from other machines
(``exposed = true``: a port forward, a container), or a reverse proxy in front
(``trusted_proxies``) — needs users with password hashes, and TLS: a certificate the board
serves itself (``tls_cert``/``tls_key``) or the declared reverse proxy that terminates it.
A setting that would serve the city's weak spots in clear text, or to anyone, is a
``ConfigError`` naming the key to set.

Passwords are stored as Argon2id hashes (argon2-cffi, the reference implementation's
binding); ``hash_password`` makes one for ``itaudit serve --hash-password``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit.errors import ConfigError

_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12  # characters, for a new hash


@dataclass(frozen=True)
class BoardUser:
    """One person who may log in: an Argon2id hash (never the password), and the cities shown."""

    name: str
    password_hash: str
    cities: tuple[str, ...] = ()
    admin: bool = False  # sees every city

    def may_see(self, city_id: str) -> bool:
        return self.admin or city_id in self.cities

    def __repr__(self) -> str:  # the hash stays out of logs and tracebacks
        return f"BoardUser(name={self.name!r}, cities={self.cities!r}, admin={self.admin})"


@dataclass(frozen=True)
class BoardConfig:
    enabled: bool = False  # the agent starts the board beside its scans
    host: str = "127.0.0.1"
    port: int = 8765
    exposed: bool = False  # reachable from other machines although bound to loopback
    names: tuple[str, ...] = ()  # host names (and addresses) browsers use to reach it
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[str, ...] = ()  # reverse proxies whose X-Forwarded-* headers are believed
    users: dict[str, BoardUser] = field(default_factory=dict)
    secret_key_env: str | None = None
    secret_key_file: Path | None = None
    secret_key_keyring: str | None = None  # "service/user"
    session_hours: float = 8.0

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def login_required(self, host: str | None = None) -> bool:
        """Login is needed unless the board is reachable from this machine only."""
        return self.exposed or bool(self.trusted_proxies) or not loopback(host or self.host)


def loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def check_serving(board: BoardConfig, host: str, path: str) -> None:
    """Refuse to serve on ``host`` what must not be served there: a ``ConfigError`` naming the key."""
    if not board.login_required(host):
        return
    why = (f"the board on {host} is reachable from other machines" if not loopback(host)
           else "the board is declared reachable from other machines (board.exposed or board.trusted_proxies)")
    if not board.tls and not board.trusted_proxies:
        raise ConfigError(
            f"{why}, so it needs TLS: set board.tls_cert and board.tls_key (a certificate for the name "
            "people type), or board.trusted_proxies (the reverse proxy that terminates TLS in front of it). "
            "Or serve 127.0.0.1 and reach it through an SSH tunnel.", key="board.tls_cert", path=path)
    if not board.users:
        raise ConfigError(
            f"{why}, so it needs a login: add at least one user, e.g. [board.users.alice] with "
            "password_hash from `itaudit serve --hash-password` and cities = [...] or admin = true",
            key="board.users", path=path)


def parse(v: Any, doc: dict[str, Any], base: Path, cities: dict[str, Any]) -> BoardConfig | None:
    """``[board]`` from the config document (``v`` is config's validator)."""
    if "board" not in doc:
        return None
    from itaudit.config import _resolve

    t = v.table(doc, "board", "board")
    v.keys(t, "board", {"enabled", "host", "port", "exposed", "names", "tls_cert", "tls_key", "trusted_proxies",
                        "users", "secret_key_env", "secret_key_file", "secret_key_keyring", "session_hours"})
    port = v.opt(t, "port", int, "board", 8765)
    if not 1 <= port <= 65535:
        raise ConfigError("must be between 1 and 65535", key="board.port", path=v.path)
    hours = float(v.opt(t, "session_hours", (int, float), "board", 8))
    if not 0 < hours <= 24 * 7:
        raise ConfigError("must be more than 0 and at most 168 hours", key="board.session_hours", path=v.path)
    cert, key = v.opt(t, "tls_cert", str, "board", None), v.opt(t, "tls_key", str, "board", None)
    if bool(cert) != bool(key):
        raise ConfigError("tls_cert and tls_key go together (the certificate and its private key)",
                          key="board.tls_key" if cert else "board.tls_cert", path=v.path)
    proxies = tuple(v.str_list(t, "trusted_proxies", "board"))
    for p in proxies:
        try:
            ipaddress.ip_network(p, strict=False)
        except ValueError:
            raise ConfigError(f"not an IP address or network: {p!r} (name the proxy by its address)",
                              key="board.trusted_proxies", path=v.path) from None
    names = tuple(n.lower() for n in v.str_list(t, "names", "board"))
    for n in names:
        if not re.fullmatch(r"[a-z0-9.:-]{1,253}", n):
            raise ConfigError(f"not a host name or address: {n!r}", key="board.names", path=v.path)
    secret_file = v.opt(t, "secret_key_file", str, "board", None)
    board = BoardConfig(
        enabled=v.opt(t, "enabled", bool, "board", False),
        host=v.opt(t, "host", str, "board", "127.0.0.1"),
        port=port,
        exposed=v.opt(t, "exposed", bool, "board", False),
        names=names,
        tls_cert=_resolve(base, cert) if cert else None,
        tls_key=_resolve(base, key) if key else None,
        trusted_proxies=proxies,
        users=_users(v, t, cities),
        secret_key_env=v.opt(t, "secret_key_env", str, "board", None),
        secret_key_file=_resolve(base, secret_file) if secret_file else None,
        secret_key_keyring=v.opt(t, "secret_key_keyring", str, "board", None),
        session_hours=hours,
    )
    check_serving(board, board.host, v.path)
    return board


def _users(v: Any, t: dict[str, Any], cities: dict[str, Any]) -> dict[str, BoardUser]:
    users: dict[str, BoardUser] = {}
    for name, ut in v.table(t, "users", "board").items():
        k = f"board.users.{name}"
        if not _USER_RE.match(name):
            raise ConfigError("a user name is letters, digits, '.', '_', '@' or '-' (at most 64)", key=k, path=v.path)
        if not isinstance(ut, dict):
            raise ConfigError("must be a table", key=k, path=v.path)
        v.keys(ut, k, {"password_hash", "cities", "admin"})
        hashed = v.req(ut, "password_hash", str, k)
        if not hashed.startswith("$argon2id$"):
            raise ConfigError("must be an Argon2id hash ($argon2id$...): make one with `itaudit serve "
                              "--hash-password` (never the password itself)", key=f"{k}.password_hash", path=v.path)
        listed = tuple(v.str_list(ut, "cities", k))
        for cid in listed:
            if cid not in cities:
                raise ConfigError(f"no city '{cid}' (configured: {', '.join(sorted(cities))})",
                                  key=f"{k}.cities", path=v.path)
        admin = v.opt(ut, "admin", bool, k, False)
        if not admin and not listed:
            raise ConfigError("this user would see nothing: list the cities (cities = [\"...\"]) or set "
                              "admin = true (every city)", key=f"{k}.cities", path=v.path)
        users[name] = BoardUser(name=name, password_hash=hashed, cities=listed, admin=admin)
    return users


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (argon2-cffi's defaults, RFC 9106's second choice)."""
    from argon2 import PasswordHasher

    if len(password) < MIN_PASSWORD:
        raise ValueError(f"use at least {MIN_PASSWORD} characters")
    return PasswordHasher().hash(password)


def secret_key(board: BoardConfig) -> str | None:
    """The key that signs session cookies, from the configured environment variable, file or
    keyring entry; None when none is configured (the caller then makes a random one)."""
    from itaudit.credentials import read_secret
    from itaudit.errors import AuthError

    if not (board.secret_key_env or board.secret_key_file or board.secret_key_keyring):
        return None
    key = ("board.secret_key_env" if board.secret_key_env else
           "board.secret_key_keyring" if board.secret_key_keyring else "board.secret_key_file")
    try:
        value = read_secret(env=board.secret_key_env, keyring_ref=board.secret_key_keyring,
                            file=str(board.secret_key_file) if board.secret_key_file else None)
    except AuthError as exc:
        raise ConfigError(f"cannot read the session key: {exc}", key=key) from None
    if value is None or len(value) < 32:
        raise ConfigError("the session key must be at least 32 characters (e.g. `openssl rand -hex 32`)",
                          key=key)
    return value

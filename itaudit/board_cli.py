"""`itaudit serve`: the live status board in the browser (the app: reports/board.py and
reports/board_sites.py; the rules of where it may be served: itaudit/board_config.py).

Loopback is served without login. Anywhere else (or a loopback address the config declares
reachable from other machines, or behind a reverse proxy) it needs ``[board.users]`` and TLS
(``board.tls_cert``/``tls_key``, or ``board.trusted_proxies``); otherwise it refuses to start
with the config key to set. ``--hash-password`` makes a user's password hash.

``start_in_thread`` is how the agent runs the board beside its scans (``[board] enabled``).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import click

from itaudit.board_config import BoardConfig, check_serving, hash_password, loopback, secret_key
from itaudit.errors import ConfigError, ItauditError

__all__ = ["loopback", "serve_cmd", "start_in_thread"]


@dataclass
class Served:
    """A board ready to run: the app, where to listen, and uvicorn's settings."""

    app: Any
    host: str
    port: int
    board: BoardConfig
    label: str  # what is served: a city's name, or "3 cities"

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.board.tls else 'http'}://{shown}:{self.port}/"

    def listen(self) -> socket.socket:
        """The listening socket, bound here so that a port in use is one plain error of ours."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:  # address in use, permission denied, unknown host
            sock.close()
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                              key="board.port") from None
        return sock

    def server(self) -> Any:
        import uvicorn

        tls: dict[str, Any] = {}
        if self.board.tls:
            tls = {"ssl_certfile": str(self.board.tls_cert), "ssl_keyfile": str(self.board.tls_key)}
        # Proxy headers are handled by the app (reports/board_sites.py) for the configured
        # proxies only; uvicorn's own default would believe any local process.
        config = uvicorn.Config(self.app, log_level="warning", server_header=False, access_log=False,
                                proxy_headers=False, **tls)
        if self.board.tls:
            config.load()  # builds the TLS context, which is then given an explicit floor
            assert config.ssl is not None
            config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        return uvicorn.Server(config)


def prepare(cfg: Any, *, city_id: str | None = None, host: str | None = None, port: int | None = None) -> Served:
    """The board for ``cfg`` (one city with ``city_id`` or a one-city config, else every city),
    checked against the rules of where it may be served. Raises ``ItauditError``."""
    from itaudit import plugins
    from itaudit.store import Store

    board: BoardConfig = cfg.board or BoardConfig()
    host = host or board.host
    port = port or board.port
    check_serving(board, host, str(cfg.path))
    if board.tls:
        _check_certificate(board, str(cfg.path))
    cities = [cfg.city(city_id)] if city_id or len(cfg.cities) == 1 else list(cfg.cities.values())
    if len(cities) == 1:
        Store(cities[0].database, readonly=True).close()  # a clear error now, not on the first page
    key = secret_key(board) if board.login_required(host) else None
    app = plugins.tool("board_site")(cities, board, host=host, title="All cities", secret_key=key,
                                     data_dir=cfg.settings.data_dir)
    label = cities[0].name if len(cities) == 1 else f"{len(cities)} cities"
    return Served(app=app, host=host, port=port, board=board, label=label)


def _check_certificate(board: BoardConfig, path: str) -> None:
    """The certificate and key load and belong together (said now, not by the first browser)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(board.tls_cert), str(board.tls_key))
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {exc.filename}", key="board.tls_cert", path=path) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"the certificate and key do not load together: {getattr(exc, 'reason', None) or exc}",
                          key="board.tls_cert", path=path) from None


def start_in_thread(served: Served) -> tuple[Any, threading.Thread]:
    """Run ``served`` in a daemon thread (the agent's way); stop it with ``server.should_exit = True``."""
    sock = served.listen()
    server = served.server()  # outside the main thread uvicorn leaves signals alone: the agent owns them

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()

    thread = threading.Thread(target=run, name="itaudit-board", daemon=True)
    thread.start()
    return server, thread


@click.command("serve")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), envvar="ITAUDIT_CONFIG",
              help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None,
              help="Serve only this city (default: the config's one city, or every city, one section each).")
@click.option("--host", default=None,
              help="Address to listen on (default: board.host, else 127.0.0.1). Anything but loopback needs "
                   "[board.users] and TLS or a reverse proxy.")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: board.port, else 8765).")
@click.option("--hash-password", "hash_only", is_flag=True,
              help="Ask for a password (twice, not shown) and print its hash for [board.users.NAME]; exit.")
def serve_cmd(config_path: str | None, city_id: str | None, host: str | None, port: int | None,
              hash_only: bool) -> None:
    """Serve a read-only status board in the browser (status, devices, device pages; an MSP's cities)."""
    if hash_only:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            hashed = hash_password(password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f'password_hash = "{hashed}"')
        return
    if not config_path:
        raise click.UsageError("Missing option '-c' / '--config' (or ITAUDIT_CONFIG).")
    from itaudit import config as config_mod

    try:
        served = prepare(config_mod.load(config_path), city_id=city_id, host=host, port=port)
        sock = served.listen()
    except ItauditError as exc:
        raise click.ClickException(str(exc)) from None
    # Logins and refusals are logged (never a password, hash, cookie or key).
    logging.getLogger("itaudit.board").setLevel(logging.INFO)
    login = " (login required)" if served.board.login_required(served.host) else ""
    click.echo(f"itaudit status board for {served.label}: {served.url}{login} (Ctrl-C to stop)")
    served.server().run(sockets=[sock])

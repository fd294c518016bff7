"""`itaudit serve`: the live status board in the browser (the app is reports/board.py).

It binds 127.0.0.1 by default and refuses any address that is not loopback: the board has no
login and no TLS yet, and a city's weak spots must not be served to its network without them.
"""

from __future__ import annotations

import ipaddress
import socket

import click

from itaudit.errors import ItauditError


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


@click.command("serve")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: loopback only (login and TLS are not built yet).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
def serve_cmd(config_path: str, city_id: str | None, host: str, port: int) -> None:
    """Serve a read-only status board of one city in the browser (status, devices, device pages)."""
    from itaudit import config as config_mod
    from itaudit import plugins
    from itaudit.store import Store

    if not loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host}: the status board has no login and no TLS yet, so it serves "
            "loopback only (127.0.0.1 or ::1). To reach it from another machine, use an SSH tunnel "
            "(ssh -L 8765:127.0.0.1:8765 HOST).")
    try:
        city = config_mod.load(config_path).city(city_id)
        Store(city.database, readonly=True).close()  # a clear error now, not on the first page
    except ItauditError as exc:
        raise click.ClickException(str(exc)) from None
    import uvicorn

    names = {"127.0.0.1", "localhost", "::1", host}
    app = plugins.tool("board")(city, hosts=tuple(sorted(names)))
    # Bound here, so that a port in use is one plain line (and exit code) of ours.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:  # address in use, permission denied, unknown host
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"itaudit status board for {city.name}: http://{shown}:{port}/ (Ctrl-C to stop)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", server_header=False, access_log=False))
    server.run(sockets=[sock])

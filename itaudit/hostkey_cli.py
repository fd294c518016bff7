"""``itaudit hostkey list`` and ``itaudit hostkey accept DEVICE``: see and re-pin SSH host keys.

A changed host key stops every scan of the device (check SEC-001, no credential is sent).
When the owner confirms the device was rebuilt or replaced, ``accept`` fetches the key it
offers now (key exchange only, no login), shows the old and new fingerprints, asks for
confirmation (or takes ``--yes``) and pins the new key in the city's known_hosts, writing
a ``# accepted <UTC time> <host>: was ...; now ...`` line beside it. Deleting the line by
hand instead would make the next scan trust whatever key is offered.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from itaudit import plugins
from itaudit.config import CityConfig, load
from itaudit.errors import CollectError, ItauditError
from itaudit.model import Target


def _known(city: CityConfig) -> Any:
    return plugins.tool("known_hosts").open_known_hosts(city.known_hosts)


def list_hostkeys(city: CityConfig) -> list[dict[str, str]]:
    """Every pinned key of a city: host, key type, fingerprint, and when it was accepted."""
    kh_mod = plugins.tool("known_hosts")
    kh = _known(city)
    accepted: dict[str, str] = {}
    for note in kh.acceptances():  # "accepted <when> <label>: was ...; now ..."
        parts = note.split()
        if len(parts) >= 3:
            accepted[parts[2].rstrip(":")] = parts[1]
    return [{"host": host, "key_type": key_type, "fingerprint": kh_mod.fingerprint(key_type, blob),
             "accepted": accepted.get(host, "")} for host, key_type, blob in kh.entries()]


def find_target(city: CityConfig, device: str) -> Target:
    """The city's SSH target named ``device`` (address, ``address:port`` or its name)."""
    want_addr, _, want_port = device.rpartition(":") if device.count(":") == 1 else (device, "", "")
    for t in city.targets:
        if t.protocol != "ssh":
            continue
        if device in (t.address, t.name) or (want_port.isdigit() and t.address == want_addr
                                             and (t.port or 22) == int(want_port)):
            return t
    raise ItauditError(f"no SSH target {device!r} in city {city.id} (give its address, address:port or name)")


def pending_change(city: CityConfig, target: Target, timeout: float = 10.0) -> tuple[list[str], str, str, bytes]:
    """(pinned fingerprints, offered fingerprint, offered type, offered blob) for one target."""
    kh_mod = plugins.tool("known_hosts")
    ssh = plugins.tool("ssh")
    port = target.port or 22
    pinned = _known(city).lookup(target.address, port)
    cred = city.credentials.get(target.credential or "")
    legacy = bool(getattr(cred, "legacy_algorithms", False)) or "legacy-ssh" in {t.lower() for t in target.tags}
    key_type, blob = ssh.offered_host_key(target.address, port, timeout, legacy=legacy,
                                          key_types=[t for t, _ in pinned])
    return ([kh_mod.fingerprint(t, b) for t, b in pinned], kh_mod.fingerprint(key_type, blob), key_type, blob)


def accept_hostkey(city: CityConfig, target: Target, key_type: str, blob: bytes, now: str | None = None) -> str:
    """Pin ``key_type``/``blob`` for the target in place of its old keys; return the time recorded."""
    when = now or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _known(city).replace(target.address, target.port or 22, key_type, blob, when)
    return when


@click.group("hostkey")
def hostkey_group() -> None:
    """See and re-pin the SSH host keys itaudit trusts (see docs/cli.md#hostkey)."""


@hostkey_group.command("list")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(config_path: str, city_id: str | None, as_json: bool) -> None:
    """List the pinned SSH host keys of a city with their fingerprints."""
    try:
        city = load(config_path).city(city_id)
        rows = list_hostkeys(city)
    except ItauditError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no host keys pinned yet in {city.known_hosts}")
    for r in rows:
        when = f"  (accepted {r['accepted']})" if r["accepted"] else ""
        click.echo(f"{r['host']}  {r['fingerprint']}{when}")


@hostkey_group.command("accept")
@click.argument("device")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the device.")
def accept_cmd(device: str, config_path: str, city_id: str | None, yes: bool, timeout: float) -> None:
    """Trust the SSH host key DEVICE offers now, after checking it on the device's console."""
    try:
        city = load(config_path).city(city_id)
        target = find_target(city, device)
        old, new, key_type, blob = pending_change(city, target, timeout)
    except (ItauditError, CollectError) as exc:
        raise click.ClickException(str(exc)) from exc
    label = f"{target.address}:{target.port or 22}"
    if new in old:
        click.echo(f"{label} already offers its pinned key {new}: nothing to accept")
        return
    click.echo(f"device:   {label}" + (f" ({target.name})" if target.name else ""))
    click.echo(f"pinned:   {', '.join(old) or 'nothing pinned yet'}")
    click.echo(f"offered:  {new}")
    click.echo("Check the offered fingerprint on the device's console first "
               "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).")
    if not yes and not click.confirm("Trust the offered key from now on?", default=False):
        raise click.ClickException("not accepted: the pinned key stays")
    when = accept_hostkey(city, target, key_type, blob)
    click.echo(f"accepted {new} for {label} at {when}; the next scan logs in again")

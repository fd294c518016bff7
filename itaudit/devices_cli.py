"""`itaudit devices retire DEVICE`: take a decommissioned device out of the counts.

A retired device leaves the KPIs, the score (this month's and the trend's), the capital plan
and the worklist; its scans and findings stay in the database. If it answers a scan again it
comes back, with a note saying so (the monthly summary names it). ``--undo`` takes a
retirement back.

The listing ``itaudit devices`` stays as it is: ``attach`` turns the ``devices`` command into a
group whose bare invocation runs the listing, and adds ``retire`` beside it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import click

from itaudit.errors import ItauditError


@click.command("retire")
@click.argument("device")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
@click.option("--note", default=None, help="Why it was retired (kept with its history).")
@click.option("--undo", is_flag=True, help="Put a device retired by mistake back in the counts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a sentence.")
def retire_cmd(device: str, config_path: str, city_id: str | None, note: str | None, undo: bool,
               as_json: bool) -> None:
    """Retire DEVICE (id, name, host name, address or serial): out of KPIs, plan and worklist,
    history kept; it comes back, with a note, if it answers a scan again."""
    from itaudit import config as config_mod
    from itaudit.store import Store

    try:
        city = config_mod.load(config_path).city(city_id)
        store = Store(city.database)
    except ItauditError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        found = store.find_devices(device)
        if not found:
            raise click.ClickException(f"no device called {device!r} in {city.id} (try `itaudit devices`)")
        if len(found) > 1:
            ids = ", ".join(f"{r['id']} ({r['name'] or r['hostname'] or r['address']})" for r in found)
            raise click.ClickException(f"{device!r} matches several devices: {ids}; give its id")
        row = found[0]
        label = str(row["name"] or row["hostname"] or row["address"])
        if undo:
            store.unretire_device(int(row["id"]))
            words = f"{label} is back in the counts."
        elif row["retired_at"]:
            words = f"{label} was already retired on {row['retired_at'][:10]}."
        else:
            store.retire_device(int(row["id"]), note=note)
            words = (f"{label} is retired: it no longer counts in the KPIs, the score, the plan or the "
                     f"worklist. Its history is kept; if it answers a scan again it comes back.")
        out: dict[str, Any] = {"device_id": row["id"], "device": label, "retired": not undo,
                               "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        click.echo(json.dumps(out) if as_json else words)
    finally:
        store.close()


def attach(cli: click.Group) -> None:
    """Turn ``devices`` into a group: bare ``itaudit devices`` lists as before; ``retire`` joins it."""
    listing = cli.commands.get("devices")
    if listing is None:
        return
    if isinstance(listing, click.Group):
        listing.add_command(retire_cmd)
        return
    # The listing's options, not required at group level (``devices retire -c ...`` gives its own);
    # a bare listing still checks them.
    params = []
    for p in listing.params:
        q = copy.copy(p)
        q.required = False
        params.append(q)

    @click.pass_context
    def run(ctx: click.Context, **kwargs: Any) -> None:
        if ctx.invoked_subcommand:
            return
        for p in listing.params:
            if p.required and kwargs.get(p.name or "") is None:
                raise click.MissingParameter(ctx=ctx, param=p)
        ctx.invoke(listing, **kwargs)

    group = click.Group(
        "devices",
        params=params,
        callback=run,
        invoke_without_command=True,
        help=listing.help,
        short_help=listing.short_help,
    )
    group.add_command(retire_cmd)
    cli.add_command(group)

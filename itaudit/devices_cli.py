"""`itaudit devices retire DEVICE`: take a decommissioned device out of the counts.

A retired device leaves the KPIs, the score (this month's and the trend's), the capital plan
and the worklist; its scans and findings stay in the database. If it answers a scan again it
comes back, with a note saying so (the monthly summary names it). ``--undo`` takes a
retirement back.

``--replaced-by NEW --cost AMOUNT --date YYYY-MM-DD`` records what replaced it, what that
cost and when (the store's ``replacements``): the annual report shows recorded replacements
at their cost, and only infers the rest from devices no longer seen.

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
@click.option("--replaced-by", "replaced_by", default=None,
              help="The device that replaced it (id, name, host name, address or serial; "
                   "any text if it is not scanned yet).")
@click.option("--cost", "cost_text", default=None, help="What the replacement cost, e.g. 1249.99.")
@click.option("--date", "date_text", default=None, help="When it was replaced (YYYY-MM-DD; default today).")
@click.option("--undo", is_flag=True, help="Put a device retired by mistake back in the counts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a sentence.")
def retire_cmd(device: str, config_path: str, city_id: str | None, note: str | None, replaced_by: str | None,
               cost_text: str | None, date_text: str | None, undo: bool, as_json: bool) -> None:
    """Retire DEVICE (id, name, host name, address or serial): out of KPIs, plan and worklist,
    history kept; it comes back, with a note, if it answers a scan again. With --replaced-by,
    --cost and --date, record the replacement for the annual report."""
    from itaudit import config as config_mod
    from itaudit.store import Store

    recording = replaced_by is not None or cost_text is not None or date_text is not None
    if undo and recording:
        raise click.ClickException("--undo takes a retirement back; it cannot be combined with "
                                   "--replaced-by, --cost or --date")
    cost = parse_cost(cost_text) if cost_text is not None else None
    day = parse_date(date_text) if date_text is not None else dt.date.today()
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
            store.remove_replacement(int(row["id"]))
            words = f"{label} is back in the counts."
        elif recording:
            new_id, new_label = _replacement(store, replaced_by, int(row["id"]))
            store.record_replacement(int(row["id"]), cost=cost, replaced_on=day.isoformat(), replaced_by=new_label,
                                     replaced_by_id=new_id, note=note)
            words = (f"{label} is retired as replaced on {day.isoformat()}"
                     + (f" by {new_label}" if new_label else "")
                     + (f" for {cost:,.2f}" if cost is not None else " (cost not given)")
                     + ". The annual report counts it at that cost.")
        elif row["retired_at"]:
            words = f"{label} was already retired on {row['retired_at'][:10]}."
        else:
            store.retire_device(int(row["id"]), note=note)
            words = (f"{label} is retired: it no longer counts in the KPIs, the score, the plan or the "
                     f"worklist. Its history is kept; if it answers a scan again it comes back.")
        out: dict[str, Any] = {"device_id": row["id"], "device": label, "retired": not undo,
                               "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        if recording:
            out.update({"replaced_on": day.isoformat(), "cost": cost, "replaced_by": replaced_by})
        click.echo(json.dumps(out) if as_json else words)
    finally:
        store.close()


def parse_cost(text: str) -> float:
    """An amount of money as a person types it ("1249.99", "1,249.99", "$1,249.99"): not negative."""
    cleaned = text.strip().lstrip("$").replace(",", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an amount (e.g. 1249.99)", param_hint="--cost") from None
    if value < 0 or value != value or value in (float("inf"), float("-inf")):
        raise click.BadParameter(f"{text!r}: a cost cannot be negative or infinite", param_hint="--cost")
    return round(value, 2)


def parse_date(text: str) -> dt.date:
    """YYYY-MM-DD, not in the future."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
    if day > dt.date.today():
        raise click.BadParameter(f"{text} is in the future: record a replacement once it is done",
                                 param_hint="--date")
    return day


def _replacement(store: Any, text: str | None, old_id: int) -> tuple[int | None, str | None]:
    """The replacing device's id and label when ``text`` names exactly one other stored device;
    otherwise the text as given (it may not be scanned yet)."""
    if not text:
        return None, None
    found = [r for r in store.find_devices(text) if int(r["id"]) != old_id]
    if len(found) == 1:
        r = found[0]
        return int(r["id"]), str(r["name"] or r["hostname"] or r["address"])
    return None, text.strip()


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

"""``itaudit cohort``: keep peer cities' open-data files to compare with (see itaudit.cohort).

Registered on the main group by ``itaudit.cli._register_optional``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

_config_option = click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
                              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
_city_option = click.option("--city", "city_id", default=None,
                            help="City id (required when several are configured).")


def _city(config_path: str, city_id: str | None) -> Any:
    from itaudit.cli import _config  # the CLI's one config loader (prints its warnings once)

    return _config(config_path).city(city_id)


@click.group("cohort")
def cohort_group() -> None:
    """Compare the city with peer cities through their KPI-only open-data files."""


@cohort_group.command("add")
@_config_option
@_city_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD", help="Judge the file's age at this date.")
def add_cmd(config_path: str, city_id: str | None, file: Path, as_of: str | None) -> None:
    """Check a peer city's open-data FILE and keep it for the comparison."""
    from itaudit.cohort import add_peer_file

    day = _day(as_of)
    city = _city(config_path, city_id)
    peer, dest = add_peer_file(city, file, as_of=day)
    click.echo(f"{peer.city}: {peer.devices:,} devices ({peer.size_band}), latest month {peer.period}; "
               f"kept as {dest}")
    if peer.missing:
        click.echo(f"missing measures (left out of those comparisons): {', '.join(peer.missing)}")


@cohort_group.command("list")
@_config_option
@_city_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(config_path: str, city_id: str | None, as_json: bool) -> None:
    """List the peer files kept for the city, and any that cannot be used."""
    from itaudit.cohort import CohortError, cohort_dir, read_peer_file

    city = _city(config_path, city_id)
    folder = cohort_dir(city)
    rows = []
    for f in sorted(folder.glob("*.csv")) if folder is not None and folder.is_dir() else []:
        try:
            p = read_peer_file(f)
            rows.append({"file": f.name, "city": p.city, "period": p.period, "devices": p.devices,
                         "size_band": p.size_band, "missing": p.missing, "error": None})
        except CohortError as exc:
            rows.append({"file": f.name, "error": str(exc)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no peer files yet (add one with: itaudit cohort add FILE); folder {folder}")
    for r in rows:
        if r["error"]:
            click.echo(f"{r['file']}: cannot be used: {r['error']}")
        else:
            click.echo(f"{r['city']}: {r['devices']:,} devices ({r['size_band']}), latest month {r['period']}")


def _day(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None

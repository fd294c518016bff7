"""``itaudit directory``: what the last directory read found, and the reconciliation of the
directory, the scans and the asset register. Read-only over the city's store."""

from __future__ import annotations

import json
from typing import Any

import click

from itaudit.errors import ItauditError

_LISTS = (
    ("directory_only", "In the directory but never scanned (judged from the directory only)"),
    ("not_in_directory", "Scanned but not in the directory"),
    ("register_only", "In the asset register but in neither the directory nor a scan"),
)


def _label(row: dict[str, Any]) -> str:
    name = row.get("name") or row.get("hostname") or row.get("address") or row.get("key") or "?"
    extra = [x for x in (row.get("os_name"), row.get("department")) if x]
    return f"{name}" + (f" ({', '.join(extra)})" if extra else "")


@click.command("directory")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown per list (JSON: all).")
def directory_cmd(config_path: str, city_id: str | None, as_json: bool, limit: int) -> None:
    """Show the last directory read and what directory, scans and asset register disagree on."""
    import sqlite3

    from itaudit.config import load
    from itaudit.store import SCHEMA_VERSION, Store

    try:
        cfg = load(config_path)
        city = cfg.city(city_id)
        store = Store(city.database, readonly=True)
    except ItauditError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if store.schema_version() < SCHEMA_VERSION:
            raise click.ClickException(f"{city.database} predates the directory tables: run 'itaudit scan' once "
                                       "to upgrade it")
        reads = store.directory_reads(limit=1)
        rec = store.reconciliation()
        latest = store.latest_scan()
        sources = store.audit_sources(latest.id) if latest else {}
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot read {city.database}: {exc}") from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"city": city.id, "last_read": reads[0] if reads else None, "sources": sources,
                               **rec}, indent=2, default=str))
        return
    if city.directory is None:
        click.echo(f"{city.id}: no [cities.{city.id}.directory] configured.")
    if reads:
        r = reads[0]
        if r["status"] == "ok":
            click.echo(f"last read {r['read_at']} from {r['server']}: {r['n_computers']} computer objects"
                       f" (LAPS in schema: {r['laps_source'] or 'no'}; BitLocker recovery objects visible: "
                       f"{r['recovery_objects'] if r['recovery_objects'] is not None else 'unknown'})")
        else:
            click.echo(f"last read {r['read_at']} from {r['server']} FAILED: {r['error']}")
    else:
        click.echo("the directory has not been read yet (run 'itaudit scan').")
    if sources:
        click.echo(f"last scan: {sources.get('scan', 0) + sources.get('scan+directory', 0)} fully audited, "
                   f"{sources.get('directory', 0)} judged from the directory only, {sources.get('failed', 0)} failed")
    for key, title in _LISTS:
        rows = rec[key]
        click.echo(f"\n{title}: {len(rows)}")
        for row in rows[:limit]:
            click.echo(f"  {_label(row)}")
        if len(rows) > limit:
            click.echo(f"  ... and {len(rows) - limit} more (--limit, or --json for all)")

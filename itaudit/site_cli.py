"""``itaudit site …`` and ``itaudit central …``: an MSP's site collectors and their centre
(the library is ``itaudit.sitelink``; docs/sites.md)."""

from __future__ import annotations

import json

import click

from itaudit.config import load
from itaudit.terminal import Column, plain, print_table

config_option = click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
                             envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("site")
def site_group() -> None:
    """Site collector: push signed snapshots of this city's database to the MSP."""


@site_group.command("push")
@config_option
@click.option("--no-snapshot", is_flag=True, help="Only deliver what waits in the outbox.")
@click.option("--now", "force", is_flag=True, help="Try now, even while backing off after a failure.")
@json_option
def site_push(config_path: str, no_snapshot: bool, force: bool, as_json: bool) -> None:
    """Snapshot the city's database and deliver every waiting snapshot, oldest first."""
    from itaudit import sitelink

    cfg = load(config_path)
    made = None if no_snapshot else sitelink.make_snapshot(cfg)
    res = sitelink.push(cfg, force=force)
    if as_json:
        click.echo(json.dumps({"snapshot": made, "delivered": res.delivered, "pending": res.pending,
                               "error": res.error, "retry_at": res.skipped_until}, indent=2))
    else:
        if made:
            plain(f"snapshot {made} made")
        for stem in res.delivered:
            plain(f"delivered {stem}")
        if res.skipped_until:
            plain(f"backing off after a failure until {res.skipped_until}; {len(res.pending)} waiting "
                  "(--now tries now)")
        if res.error:
            plain(f"not delivered: {res.error}; {len(res.pending)} snapshot(s) kept for the next try", stderr=True)
    raise SystemExit(3 if res.error else 0)


@site_group.command("status")
@config_option
@json_option
def site_status_cmd(config_path: str, as_json: bool) -> None:
    """What waits in the outbox, the last delivery and the last error."""
    from itaudit import sitelink

    doc = sitelink.site_status(load(config_path))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for key in ("city", "site", "msp", "last_delivered", "last_delivered_at", "last_error", "retry_at"):
        plain(f"{key:>18}: {doc.get(key) or '-'}")
    plain(f"{'waiting':>18}: {len(doc['pending'])}")


@click.group("central")
def central_group() -> None:
    """The MSP's centre: ingest the snapshots the cities' sites push."""


@central_group.command("ingest")
@config_option
@json_option
def central_ingest(config_path: str, as_json: bool) -> None:
    """Verify and swap in every complete snapshot waiting in the cities' inboxes (exit 3 if any was refused)."""
    from itaudit import sitelink

    results = sitelink.ingest(load(config_path))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            plain(f"{r.city}: {r.stem} " + ("ingested" if r.ok else f"REFUSED: {r.reason}"))
        if not results:
            plain("nothing waiting")
    raise SystemExit(3 if any(not r.ok for r in results) else 0)


@central_group.command("status")
@config_option
@json_option
@click.option("--tsv", is_flag=True, help="Tab-separated lines, for scripts.")
def central_status(config_path: str, as_json: bool, tsv: bool) -> None:
    """Each city's site: last contact, how long ago, stale or not, the last refusal."""
    from itaudit import sitelink

    doc = sitelink.staleness(load(config_path))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    print_table((Column("city", keep=True), Column("site"), Column("last contact"), Column("hours ago"),
                 Column("state"), Column("last refusal", weight=1)),
                ([cid, d["site"] or "-", d["last_contact"] or "never", "" if d["age_hours"] is None else d["age_hours"],
                  "STALE" if d["stale"] else "ok",
                  f"{d['last_refused']}: {d['last_refused_reason']}" if d["last_refused"] else ""]
                 for cid, d in doc.items()), tsv=tsv,
                styles=["red" if d["stale"] else None for d in doc.values()])

"""CLI commands over the shipped knowledge: ``lifecycle``, ``data update``, and the
generated check catalogue (docs/checks.md). The lead registers them on the main group::

    from itaudit.knowledge_cli import data_group, lifecycle_cmd
    cli.add_command(lifecycle_cmd)
    cli.add_command(data_group)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from itaudit.errors import KnowledgeError
from itaudit.knowledge import load_preferred, user_data_dir

if TYPE_CHECKING:  # datatools (urllib, http, ssl) is imported by `data update` only: not at every CLI start
    from itaudit import datatools, vulnupdate

# Injectable for tests: no test may touch the network.
FETCH: datatools.Fetch | None = None
VULN_GET: vulnupdate.Get | None = None
ROOT = Path(__file__).resolve().parents[1]


def _date(ctx: Any, param: Any, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc


@click.command("lifecycle")
@click.argument("product")
@click.argument("version")
@click.option("--edition", help="Edition, e.g. Pro, Enterprise, Enterprise LTSC (Windows).")
@click.option("--as-of", "as_of", callback=_date, help="Judge at this date (YYYY-MM-DD); default today.")
@click.option(
    "--extended-bought", is_flag=True, help="The paid extended support (ESU, Ubuntu Pro...) is bought."
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Updated data folder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def lifecycle_cmd(
    product: str,
    version: str,
    edition: str | None,
    as_of: dt.date | None,
    extended_bought: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Is PRODUCT VERSION still supported? (e.g. `windows 10.0.19045 --edition Pro`, `ubuntu 22.04.4`)."""
    try:
        kn, warning = load_preferred(data_dir)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from exc
    if warning:
        click.echo(f"warning: {warning}", err=True)
    ans = kn.lifecycle(
        product, version, edition=edition, as_of=as_of or dt.date.today(), paid_extended=extended_bought
    )
    if as_json:
        click.echo(json.dumps(ans.to_dict(), indent=2))
        return

    def d(v: Any) -> str:
        return (
            v.isoformat()
            if isinstance(v, dt.date)
            else {True: "passed (date not published)", False: "none announced", None: "-"}[v]
        )

    rows = [
        ("status", ans.status),
        ("product", f"{ans.title or ans.product or product} ({ans.product or '?'})"),
        ("release", ans.cycle or "-"),
        ("released", d(ans.release_date)),
        ("active support ends", d(ans.eoas)),
        ("security support ends", d(ans.eol)),
        (
            "extended support ends",
            d(ans.eoes) + (f" ({ans.extended_kind}: {ans.extended_name})" if ans.extended_kind else ""),
        ),
        ("as of", ans.as_of.isoformat()),
        ("why", ans.reason),
        ("source", ans.source or "-"),
        ("data date", ans.data_date or "-"),
    ]
    for k, v in rows:
        click.echo(f"{k:>22}: {v}")


@click.group("data")
def data_group() -> None:
    """Shipped knowledge data (lifecycle, CISA KEV, CVE version ranges)."""


@data_group.command("update")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write (default $ITAUDIT_DATA_DIR or ~/.local/share/itaudit/data).",
)
def data_update_cmd(data_dir: Path | None) -> None:
    """Download fresh lifecycle (endoflife.date API v1), CISA KEV, and the CVE/OSV records of the KEV CVEs
    itaudit matches (conditional requests: only changes are downloaded); keep the old copy on failure."""
    from itaudit import datatools

    target = data_dir or user_data_dir()
    report = datatools.update_data(target, fetch=FETCH or datatools.urllib_fetch)
    for name, day in report.updated.items():
        click.echo(f"updated {target / name} (data date {day})")
    for name, why in report.failed.items():
        click.echo(f"NOT updated {name}: {why}; the previous copy stays in use", err=True)
    from itaudit import vulnupdate

    vr = vulnupdate.update_vulns(target, get=VULN_GET or vulnupdate.http_get)
    click.echo(f"CVE/OSV records: {vr.fetched} new or changed, {vr.unchanged} unchanged, {vr.missing} not "
               f"published; {vr.written} (data date {vr.snapshot})")
    for name, why in list(vr.refused.items())[:20]:
        click.echo(f"NOT updated {name}: {why}", err=True)
    if not report.ok or not vr.ok:
        raise SystemExit(3)  # like a scan that could not check every target: the rest went on


@data_group.command("recheck")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
def data_recheck_cmd(config_path: str, city_id: str | None) -> None:
    """Judge exploited vulnerabilities again on every device's stored facts and packages (after
    `itaudit data update`), without a rescan."""
    from itaudit.config import load
    from itaudit.recheck import recheck_vulns
    from itaudit.store import Store

    city = load(config_path).city(city_id)
    knowledge, warning = load_preferred()
    if warning:
        click.echo(warning, err=True)
    rep = recheck_vulns(Store(city.database), city, as_of=dt.date.today(), knowledge=knowledge)
    click.echo(f"{rep.devices} devices judged again ({rep.skipped} never scanned); {len(rep.changed)} verdicts "
               f"changed")
    for device_id, check_id, before, after in rep.changed[:50]:
        click.echo(f"  device {device_id} {check_id}: {before} -> {after}")


# --- the check catalogue -------------------------------------------------------------------


def render_checks_md() -> str:
    """docs/checks.md, generated from the check registry (docstrings are the pages)."""
    from itaudit.plugins import load_checks

    registry = load_checks()
    families = {
        "HW": "Hardware",
        "EOL": "Lifecycle",
        "PATCH": "Patching",
        "SEC": "Exposure",
        "NET": "Network device exposure",
        "VULN": "Known exploited vulnerabilities",
        "DATA": "Data quality",
        "SCAN": "Scan",
        "AD": "Directory (Active Directory computer objects)",
    }
    out = [
        "# Check catalogue",
        "",
        "Generated from the check registry by `itaudit.knowledge_cli.render_checks_md()`; do not edit.",
        "A test fails when this file is stale. IDs are stable and never reused.",
        "",
        "| ID | title | severity | applies to |",
        "|---|---|---|---|",
    ]
    specs = sorted(
        registry.values(),
        key=lambda s: (list(families).index(s.family) if s.family in families else 99, s.id),
    )
    for s in specs:
        out.append(
            f"| [{s.id}](#{s.id.lower()}) | {s.title} | {s.severity.value} | "
            f"{', '.join(s.applies_to) or 'all'} |"
        )
    fam = None
    for s in specs:
        if s.family != fam:
            fam = s.family
            out += ["", f"## {families.get(fam, fam)}"]
        out += [
            "",
            f"### {s.id}",
            "",
            f"**{s.title}** — default severity *{s.severity.value}*; "
            f"applies to {', '.join(s.applies_to) or 'all devices'}; module `{s.fn.__module__}`.",
            "",
        ]
        refs = ", ".join(s.references) or "none"
        out += [f"References: {refs}.", "", s.doc]
    return "\n".join(out) + "\n"


def write_checks_md(path: Path | None = None) -> Path:
    """Regenerate docs/checks.md (``python -m itaudit.knowledge_cli``)."""
    target = path or ROOT / "docs" / "checks.md"
    target.write_text(render_checks_md(), encoding="utf-8")
    return target


if __name__ == "__main__":  # pragma: no cover
    print(write_checks_md())

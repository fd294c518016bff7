"""The ``itaudit`` command line: a thin layer over the library.

It parses arguments, calls the library and formats. Library errors become clean
messages and exit codes in one place (``main``): 0 fine, 1 findings at or above
``--fail-on``, 2 usage or config error, 3 some targets failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from itaudit import __version__, plugins
from itaudit.config import Config, check_sweepable, load, verify_credentials
from itaudit.credentials import SSHCredential
from itaudit.errors import ConfigError, ItauditError, KnowledgeError, ScanLocked, StoreError
from itaudit.logs import setup_logging
from itaudit.model import CollectResult, ResultStatus, Severity
from itaudit.store import Store
from itaudit.terminal import Column, console, is_terminal, labelled, plain, print_table

EXIT_FINDINGS, EXIT_USAGE, EXIT_TARGETS, EXIT_INTERNAL = 1, 2, 3, 70


log = logging.getLogger("itaudit")


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("expected YYYY-MM-DD") from None


def _config(path: str, **overrides: Any) -> Config:
    """Load the config; print its warnings once (the agent's own ones only in the agent)."""
    cfg = load(path, overrides=overrides)
    for w in cfg.warnings:
        if w not in cfg.agent_warnings:
            labelled("warning", w, style="yellow")
    return cfg


config_option = click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
                             envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
city_option = click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
wide_option = click.option("--wide", is_flag=True, help="Let every column take its full width (no wrapping).")
tsv_option = click.option("--tsv", is_flag=True, help="Tab-separated lines with a header, for scripts.")
as_of_option = click.option("--as-of", callback=_date, default=None, metavar="YYYY-MM-DD",
                            help="Judge as of this date (default: today).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="itaudit")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None, envvar="ITAUDIT_LOG_FORMAT",
              help="Log lines as text or JSON (for journald and log shippers).")
@click.option("-v", "--verbose", count=True, help="More log output.")
def cli(log_format: str | None, verbose: int) -> None:
    """itaudit: age, patch level and security posture of a city's IT, in budget terms."""
    setup_logging(log_format or "text", logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)


# --- init --------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False), default="itaudit.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write a starter config (every key documented) to PATH, readable by you only."""
    from importlib.resources import files

    target = Path(path)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite")
    text = files("itaudit").joinpath("data/config.example.toml").read_text(encoding="utf-8")
    # The folder holds the config and the secrets' key files: owner and group only.
    missing = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o750)
        folder.chmod(0o750)  # (the umask would take the group's bits)
    fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    plain(f"wrote {target}: edit the city, its credentials and its targets (the example addresses "
          f"192.0.2.x are placeholders), then run 'itaudit scan -c {target}'")


# --- scan --------------------------------------------------------------------------


@cli.command()
@config_option
@city_option
@as_of_option
@click.option("--concurrency", type=int, default=None, help="Parallel SSH sessions (overrides settings.concurrency).")
@click.option("--timeout", type=float, default=None, help="Per-host deadline in seconds (overrides settings.timeout).")
@click.option("--fail-on", type=click.Choice([s.value for s in Severity]), default=None,
              help="Exit 1 when a finding at or above this severity is open.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write the month's summary after the scan (where the agent writes it) and print its path.")
@json_option
def scan(config_path: str, city_id: str | None, as_of: dt.date | None, concurrency: int | None,
         timeout: float | None, fail_on: str | None, report: bool, as_json: bool) -> None:
    """Collect, check and store every target of a city."""
    from itaudit.scan import install_signal_stop

    cfg = _config(config_path, concurrency=concurrency, timeout=timeout)
    cities = [cfg.city(city_id)] if city_id or len(cfg.cities) == 1 else list(cfg.cities.values())
    code = 0
    out = []
    stop = threading.Event()
    install_signal_stop(stop)
    for city in cities:
        summary = _scan_with_progress(cfg, city, as_of, stop, quiet=as_json)
        out.append(summary)
        code = max(code, summary.exit_code)
        if fail_on and any(Severity(s).rank >= Severity(fail_on).rank for s, n in summary.findings.items() if n):
            code = max(code, EXIT_FINDINGS) if code != EXIT_TARGETS else code
        if stop.is_set():
            break
    if as_json:
        click.echo(json.dumps([_summary_json(s) for s in out], indent=2))
    else:
        for s in out:
            by_id = {c.id: c for c in cities}
            score, path = _scan_report(cfg, by_id[s.city_id], s.as_of) if report and s.scan_id else (None, None)
            _print_summary(s, score, path)
    sys.exit(code)


def _scan_with_progress(cfg: Config, city: Any, as_of: dt.date | None, stop: threading.Event, *,
                        quiet: bool) -> Any:
    from itaudit.scan import run_scan

    if is_terminal(sys.stderr) and not quiet:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        failed = 0
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} could not be checked"), TimeRemainingColumn(),
                      console=console(stderr=True), transient=False) as bar:
            task = bar.add_task(f"[bold]{city.id}[/]", total=None, failed=0)  # (ids are [a-z0-9_-]: no markup)

            def progress(res: CollectResult, done: int, n: int) -> None:
                nonlocal failed
                failed += res.status == ResultStatus.ERROR
                bar.update(task, completed=done, total=n, failed=failed)

            return run_scan(cfg, city, as_of=as_of, progress=progress, stop=stop)

    def plain_progress(res: CollectResult, done: int, n: int) -> None:
        # Plain log lines when not on a terminal (cron, systemd, CI).
        status = res.status.value if res.status != ResultStatus.ERROR else f"error ({res.error})"
        log.info("[%d/%d] %s %s", done, n, res.target.label, status, extra={"city": city.id})

    return run_scan(cfg, city, as_of=as_of, progress=plain_progress, stop=stop)


def _summary_json(s: Any) -> dict[str, Any]:
    return {"city": s.city_id, "scan_id": s.scan_id, "as_of": s.as_of.isoformat(), "targets": s.total,
            "ok": s.ok, "partial": s.partial, "failed": s.failed, "interrupted": s.interrupted,
            "incomplete_reason": s.incomplete_reason,
            "open_findings_by_severity": s.findings,
            "directory_computers": s.directory_computers, "directory_only": s.directory_only,
            "errors": [{"target": t, "reason": r} for t, r in s.errors]}


def _print_summary(s: Any, score: str | None, report: Path | None) -> None:
    plain(f"{s.city_id}: scan {s.scan_id} of {s.as_of.isoformat()} — {s.total} devices: {s.ok} checked, "
          f"{s.partial} partly checked, {s.failed} could not be checked"
          + (" (interrupted: marked incomplete)" if s.interrupted else "")
          + (f" (marked incomplete: {s.incomplete_reason})"
             if s.incomplete_reason and not s.interrupted else ""))
    for target, reason in s.errors:
        labelled("  could not check", f"{target}: {reason}", stderr=False)
    if s.findings:
        order = sorted(s.findings, key=lambda k: -Severity(k).rank)
        plain("failing checks: " + ", ".join(f"{s.findings[k]} {k}" for k in order))
    if score:
        plain(f"city score: {score}")
    if report:
        plain(f"report: {report}")


def _scan_report(cfg: Config, city: Any, as_of: dt.date) -> tuple[str | None, Path | None]:
    """After a scan: the month's summary, written where the agent writes it, and its score."""
    out_dir = cfg.settings.data_dir / city.id / "reports" / as_of.strftime("%Y-%m")
    store = Store(city.database, readonly=True)
    try:
        paths = plugins.report_writer("monthly")(city, store, as_of=as_of, out_dir=out_dir, formats=("html",))
        rows = dict(plugins.terminal_summary()(city, store, as_of))
    finally:
        store.close()
    return rows.get("Score"), paths[0] if paths else None


# --- listings -----------------------------------------------------------------------


def _open_store(cfg: Config, city_id: str | None) -> tuple[Any, Store]:
    city = cfg.city(city_id)
    return city, Store(city.database, readonly=True)


@cli.command()
@config_option
@city_option
@json_option
@wide_option
@tsv_option
def devices(config_path: str, city_id: str | None, as_json: bool, wide: bool, tsv: bool) -> None:
    """List the devices of a city as last seen."""
    _, store = _open_store(_config(config_path), city_id)
    rows = store.devices()
    if as_json:
        keys = ("id", "address", "port", "protocol", "name", "hostname", "kind", "vendor", "model", "serial",
                "os_name", "os_version", "department", "first_seen", "last_seen", "last_status", "last_error",
                "retired_at", "retired_note")
        click.echo(json.dumps([{k: r.get(k) for k in keys} for r in rows], indent=2))
        return
    cols = (Column("name", keep=True), Column("address", keep=True), Column("kind"), Column("department"),
            Column("status"), Column("system", weight=3), Column("why not checked", weight=2))
    print_table(cols, ([r["name"] or r["hostname"] or "", r["address"], r["kind"] or "", r["department"] or "",
                        f"retired {r['retired_at'][:10]}" if r.get("retired_at") else r["last_status"] or "",
                        " · ".join(x for x in (" ".join(y for y in (r["vendor"], r["model"]) if y), r["os_name"])
                                   if x),
                        r["last_error"] if r["last_status"] == "error" else ""]
                       for r in rows), wide=wide, tsv=tsv,
                styles=["dim" if r.get("retired_at") else "red" if r["last_status"] == "error" else None
                        for r in rows])


@cli.command()
@config_option
@city_option
@json_option
@wide_option
@tsv_option
@click.option("--severity", type=click.Choice([s.value for s in Severity]), default=None,
              help="Only findings at or above this severity.")
def findings(config_path: str, city_id: str | None, as_json: bool, wide: bool, tsv: bool,
             severity: str | None) -> None:
    """List open findings, worst first."""
    _, store = _open_store(_config(config_path), city_id)
    rows = store.open_findings()
    if severity:
        rows = [r for r in rows if Severity(r["severity"]).rank >= Severity(severity).rank]
    if as_json:
        keys = ("check_id", "severity", "title", "summary", "detail", "evidence", "remediation", "cost_amount",
                "cost_kind", "budget_line", "cost_fiscal_year", "first_seen", "last_seen", "address", "device_name",
                "hostname", "department")
        click.echo(json.dumps([{**{k: r.get(k) for k in keys}, "references": json.loads(r["refs"] or "[]")}
                               for r in rows], indent=2))
        return
    cols = (Column("device", keep=True), Column("address", keep=True), Column("severity"), Column("check"),
            Column("finding", weight=1))
    print_table(cols, ([r["device_name"] or r["hostname"] or "", r["address"], r["severity"], r["check_id"],
                        r["summary"]] for r in rows), wide=wide, tsv=tsv,
                styles=[_SEVERITY_STYLE.get(r["severity"]) for r in rows])


_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}


@cli.command("checks")
@json_option
@wide_option
@tsv_option
def checks_cmd(as_json: bool, wide: bool, tsv: bool) -> None:
    """List the check catalogue."""
    specs = sorted(plugins.load_checks().values(), key=lambda s: s.id)
    if as_json:
        click.echo(json.dumps([{"id": s.id, "title": s.title, "severity": s.severity.value,
                                "references": s.references} for s in specs], indent=2))
        return
    print_table((Column("id", keep=True), Column("severity"), Column("title", weight=2),
                 Column("references", weight=1)),
                ([s.id, s.severity.value, s.title, ", ".join(s.references)] for s in specs), wide=wide, tsv=tsv)


# --- reports ------------------------------------------------------------------------


@cli.group()
def report() -> None:
    """Write reports (monthly summary, capital plan, worklist)."""


def _report_cmd(name: str, doc: str, default_formats: str, month: bool = False) -> None:
    @report.command(name, help=doc)
    @config_option
    @city_option
    @as_of_option
    @click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
    @click.option("--format", "formats", default=default_formats, show_default=True,
                  help="Comma-separated formats.")
    @click.option("--month", default=None, metavar="YYYY-MM", help="Report month (monthly only).", hidden=not month)
    def cmd(config_path: str, city_id: str | None, as_of: dt.date | None, out_dir: str, formats: str,
            month: str | None) -> None:
        cfg = _config(config_path)
        city, store = _open_store(cfg, city_id)
        writer = plugins.report_writer(name)
        kwargs: dict[str, Any] = {"as_of": as_of or dt.date.today(), "out_dir": Path(out_dir),
                                  "formats": tuple(f.strip() for f in formats.split(",") if f.strip())}
        if month:
            if name != "monthly":
                raise click.UsageError("--month is for the monthly summary; this report uses --as-of")
            if not month_ok(month):
                raise click.BadParameter("expected YYYY-MM", param_hint="--month")
            kwargs["month"] = month
        try:
            paths = writer(city, store, **kwargs)
        except ValueError as exc:
            if "format" not in str(exc):
                raise
            raise click.BadParameter(str(exc), param_hint="--format") from None
        for p in paths:
            plain(str(p))


def month_ok(month: str) -> bool:
    try:
        dt.date.fromisoformat(month + "-01")
        return len(month) == 7
    except ValueError:
        return False


_report_cmd("monthly", "The city manager's monthly summary (at most two printed pages).", "html", month=True)
_report_cmd("plan", "The 5-year capital refresh plan by fiscal year, budget line and department.", "html,csv,xlsx")
_report_cmd("worklist", "The technician worklist: every open finding, sorted by risk, with the fix.", "html,csv")
_report_cmd("request", "The one-page budget request for the coming fiscal year, for a council memo.", "html")
_report_cmd("annual", "The fiscal year's measures month by month; replacements and their cost against plan.", "html")
_report_cmd("evidence", "Evidence for the insurer, CISA CPG 2.0 and the NCSR, answered from the data.", "html,xlsx")
_report_cmd("opendata", "The KPIs as open data (CSV, datapackage.json, DCAT): no device details.", "csv")


# --- demo ---------------------------------------------------------------------------


@cli.command()
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo city's config, database and reports go.")
@click.option("--keep-running", is_flag=True, help="Keep the simulated city up and print its config.")
@as_of_option
def demo(out_dir: str, keep_running: bool, as_of: dt.date | None) -> None:
    """Start the built-in simulated city, scan it and write its monthly report."""
    from itaudit.demo import run_demo

    sys.exit(run_demo(Path(out_dir), keep_running=keep_running, as_of=as_of, console=console()))


# --- asset register -----------------------------------------------------------------


@cli.group()
def assets() -> None:
    """The city's asset register."""


@assets.command("import")
@config_option
@city_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def assets_import(config_path: str, city_id: str | None, csv_file: Path, as_json: bool) -> None:
    """Import an asset register CSV (address/serial/hostname, purchase_date, cost, department,
    budget_line, criticality); list rows that could not be matched or were skipped, and why."""
    from itaudit.assets import import_register

    city = _config(config_path).city(city_id)
    store = Store(city.database)
    try:
        result = import_register(store, csv_file, budget_lines=set(city.budget_lines))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    plain(f"{result.imported} rows imported, {result.matched} matched to known devices, "
          f"{len(result.unmatched)} not (yet) seen, {len(result.skipped)} skipped.")
    if result.ignored_columns:
        plain("ignored columns: " + ", ".join(result.ignored_columns))
    for number, why in result.skipped:
        plain(f"  row {number} skipped: {why}")
    for number, what in result.unmatched:
        plain(f"  row {number} ({what}) matches no device seen so far")


def _register_optional() -> None:
    """Commands that live in their own modules (registered here, the one CLI)."""
    from itaudit import evidence_cli, knowledge_cli, site_cli

    for name in ("lifecycle_cmd", "data_group"):
        cmd = getattr(knowledge_cli, name, None)
        if cmd is not None:
            cli.add_command(cmd)
    from itaudit.cohort_cli import cohort_group  # peer cities' open-data files

    cli.add_command(cohort_group)
    cli.add_command(site_cli.site_group)
    cli.add_command(site_cli.central_group)
    cli.add_command(evidence_cli.attest_cmd)
    from itaudit.hostkey_cli import hostkey_group

    cli.add_command(hostkey_group)
    from itaudit import devices_cli  # `itaudit devices retire DEVICE`

    devices_cli.attach(cli)
    from itaudit import directory_cli  # the Active Directory reconciliation

    cli.add_command(directory_cli.directory_cmd)
    from itaudit.board_cli import serve_cmd  # the status board

    cli.add_command(serve_cmd)


_register_optional()


# --- agent and MSP portfolio --------------------------------------------------------


@cli.command("agent")
@config_option
@click.option("--city", "city_ids", multiple=True, help="Only this city (repeatable; default: every city).")
@click.option("--status", "show_status", is_flag=True,
              help="Print whether an agent runs, the next run times and the last scan and email; exit.")
@click.option("--once", is_flag=True,
              help="Scan every city now, write and send the monthly report on its report day, then exit.")
@click.option("--report", "force_report", is_flag=True,
              help="With --once: write and send the monthly report now.")
@click.option("--dry-run", is_flag=True, help="Write the monthly email to a .eml file instead of sending it.")
@json_option
@click.pass_context
def agent_cmd(ctx: click.Context, config_path: str, city_ids: tuple[str, ...], show_status: bool, once: bool,
              force_report: bool, dry_run: bool, as_json: bool) -> None:
    """Run the scheduling agent: scans on each city's cadence, the monthly report by email."""
    from itaudit.agent import Agent, format_status, status

    if show_status:
        doc = status(config_path, city_ids=list(city_ids) or None)
        click.echo(json.dumps(doc, indent=2) if as_json else format_status(doc))
        return
    agent = Agent(config_path, dry_run=dry_run, echo=click.echo, city_ids=list(city_ids) or None)
    # A daemon logs what it does (INFO) in the configured format unless --log-format says otherwise.
    parent = ctx.parent.params if ctx.parent else {}
    level = logging.getLogger("itaudit").level
    setup_logging(parent.get("log_format") or agent.cfg.settings.log_format,
                  min(level, logging.INFO) if level else logging.INFO, stream=sys.stdout)
    agent.install_signals()
    sys.exit(agent.run_once(report=force_report) if once else agent.run())


@report.command("portfolio")
@config_option
@as_of_option
@click.option("--city", "city_ids", multiple=True,
              help="Only these cities (repeatable; default: every city).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--format", "formats", default="html,json", show_default=True,
              help="Comma-separated: html, json, csv, md, and peers (one anonymised comparison per city).")
def portfolio_cmd(config_path: str, as_of: dt.date | None, city_ids: tuple[str, ...], out_dir: str,
                  formats: str) -> None:
    """The MSP view across cities: scores, KPIs, capital needs, trends, peer comparison."""
    cfg = _config(config_path)
    for cid in city_ids:
        cfg.city(cid)
    try:
        writer = plugins.report_writer("portfolio")
    except KeyError:
        writer = plugins.report_writer("portfolio")
    paths = writer(cfg, as_of=as_of or dt.date.today(), out_dir=Path(out_dir),
                   formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                   cities=list(city_ids) or None)
    for p in paths:
        plain(str(p))

# --- end of the agent block ------------------------------------------------------------


# --- discover ------------------------------------------------------------------------


@cli.command("discover")
@config_option
@city_option
@click.option("--force", is_flag=True, help="Sweep overlapping or enormous ranges anyway (never outside the config).")
@json_option
@wide_option
@tsv_option
@click.argument("cidrs", nargs=-1, metavar="[CIDR ...]")
def discover_cmd(config_path: str, city_id: str | None, force: bool, as_json: bool, wide: bool, tsv: bool,
                 cidrs: tuple[str, ...]) -> None:
    """Sweep the city's configured ranges; list what answered, managed or not."""
    from itaudit.discover import plan_sweep, run_discovery

    cfg = _config(config_path)
    city = cfg.city(city_id)
    plan = plan_sweep(city, cidrs, force=force)
    check_sweepable(city, plan.ranges, str(cfg.path))
    # The SSH credentials discovery logs in with (keys only, unless verify_with_passwords).
    verify_credentials(city, [n for n, c in city.credentials.items() if isinstance(c, SSHCredential) and (
        city.discovery.verify_with_passwords or c.key_file or c.use_agent)], str(cfg.path))
    if not as_json:
        plain(f"{city.id}: sweeping {len(plan.addresses)} addresses in {', '.join(plan.ranges)} "
              f"at {city.discovery.rate:g} probes/s", stderr=True)
    if is_terminal(sys.stderr) and not as_json:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console(stderr=True)) as bar:
            task = bar.add_task(f"[bold]{city.id}[/] probes", total=None)
            result = run_discovery(cfg, city, plan,
                                   progress=lambda done, n: bar.update(task, completed=done, total=n))
    else:
        result = run_discovery(cfg, city, plan)
    keys = ("address", "open_ports", "snmp_sysobjectid", "ssh_banner", "managed", "protocol", "port",
            "credential", "device_id", "guess")
    if as_json:
        click.echo(json.dumps({
            "city": city.id, "discovery_id": result.discovery_id, "ranges": plan.ranges,
            "addresses": len(plan.addresses), "auto_add": city.discovery.auto_add,
            "sightings": [{k: s.get(k) for k in keys} for s in result.sightings],
            "register": result.register}, indent=2))
        return

    def what(s: dict[str, Any]) -> str:
        # Banners are device-supplied text: the table prints them as data, never as markup.
        return s["ssh_banner"] or (f"sysObjectID {s['snmp_sysobjectid']}" if s["snmp_sysobjectid"] else "") \
            or s["guess"] or ""

    print_table((Column("address", keep=True), Column("status"), Column("open ports"), Column("what it is", weight=1)),
                ([s["address"], f"managed ({s['protocol']})" if s["managed"] else "found, not managed",
                  ", ".join(map(str, s["open_ports"])), what(s)] for s in result.sightings),
                wide=wide, tsv=tsv, styles=[None if s["managed"] else "yellow" for s in result.sightings])
    if not tsv:
        plain(f"{len(result.sightings)} answered: {len(result.managed)} reachable with the city's "
              f"credentials, {len(result.unmanaged)} found, not managed"
              + (" (auto_add: managed ones join the next scan)" if city.discovery.auto_add else ""))

# --- end of the discover block -----------------------------------------------------------


def main() -> None:
    """Console entry point: library errors become one plain line and an exit code here, once."""
    import sqlite3

    os.umask(0o077)  # databases, logs and reports are for the owner only
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        labelled("aborted", "stopped by the user")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        labelled("config error", str(exc))
        sys.exit(EXIT_USAGE)
    except ScanLocked as exc:
        labelled("refused", str(exc))
        sys.exit(EXIT_USAGE)
    except (StoreError, KnowledgeError, ItauditError) as exc:
        labelled("error", str(exc))
        sys.exit(EXIT_USAGE)
    except sqlite3.DatabaseError as exc:
        labelled("error", f"the database cannot be read: {exc}")
        sys.exit(EXIT_USAGE)
    except SystemExit:
        raise
    except OSError as exc:
        where = getattr(exc, "filename", None)
        labelled("error", f"{exc.strerror or exc}" + (f": {where}" if where else ""))
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback with -vv
        log.debug("internal error", exc_info=True)
        labelled("internal error", f"{type(exc).__name__}: {exc} (a bug in itaudit: please report it; "
                 "run with -vv to see where it happened)")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()

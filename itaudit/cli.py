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
from itaudit.config import Config, load
from itaudit.errors import ConfigError, ItauditError, KnowledgeError, ScanLocked, StoreError
from itaudit.logs import setup_logging
from itaudit.model import CollectResult, ResultStatus, Severity
from itaudit.store import Store

EXIT_FINDINGS, EXIT_USAGE, EXIT_TARGETS = 1, 2, 3


class _LazyConsole:
    """rich's ``Console``, created on first use: ``scan --json`` and plain (cron, CI) runs never
    import rich, which is a sizeable part of the CLI's start-up."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False)
        return getattr(self._console, name)


console: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)
log = logging.getLogger("itaudit")


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("expected YYYY-MM-DD") from None


def _config(path: str, **overrides: Any) -> Config:
    cfg = load(path, overrides=overrides)
    for w in cfg.warnings:
        log.warning(w)
    return cfg


config_option = click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
                             envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
city_option = click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
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
    fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    console.print(f"wrote {target}: edit the city, credentials and targets, then run "
                  f"'itaudit scan -c {target}'")


# --- scan --------------------------------------------------------------------------


@cli.command()
@config_option
@city_option
@as_of_option
@click.option("--concurrency", type=int, default=None, help="Parallel SSH sessions (overrides settings.concurrency).")
@click.option("--timeout", type=float, default=None, help="Per-host deadline in seconds (overrides settings.timeout).")
@click.option("--fail-on", type=click.Choice([s.value for s in Severity]), default=None,
              help="Exit 1 when a finding at or above this severity is open.")
@json_option
def scan(config_path: str, city_id: str | None, as_of: dt.date | None, concurrency: int | None,
         timeout: float | None, fail_on: str | None, as_json: bool) -> None:
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
            _print_summary(s)
    sys.exit(code)


def _scan_with_progress(cfg: Config, city: Any, as_of: dt.date | None, stop: threading.Event, *,
                        quiet: bool) -> Any:
    from itaudit.scan import run_scan

    total = len(city.targets)
    if sys.stderr.isatty() and not quiet:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(f"[bold]{city.id}[/]"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(), console=err) as bar:
            task = bar.add_task("scan", total=total, failed=0)
            failed = 0

            def progress(res: CollectResult, done: int, n: int) -> None:
                nonlocal failed
                failed += res.status == ResultStatus.ERROR
                bar.update(task, completed=done, failed=failed)

            return run_scan(cfg, city, as_of=as_of, progress=progress, stop=stop)

    def plain(res: CollectResult, done: int, n: int) -> None:
        # Plain log lines when not on a terminal (cron, systemd, CI).
        status = res.status.value if res.status != ResultStatus.ERROR else f"error ({res.error})"
        log.info("[%d/%d] %s %s", done, n, res.target.label, status, extra={"city": city.id})

    return run_scan(cfg, city, as_of=as_of, progress=plain, stop=stop)


def _summary_json(s: Any) -> dict[str, Any]:
    return {"city": s.city_id, "scan_id": s.scan_id, "as_of": s.as_of.isoformat(), "targets": s.total,
            "ok": s.ok, "partial": s.partial, "failed": s.failed, "interrupted": s.interrupted,
            "open_findings_by_severity": s.findings,
            "directory_computers": s.directory_computers, "directory_only": s.directory_only,
            "errors": [{"target": t, "reason": r} for t, r in s.errors]}


def _print_summary(s: Any) -> None:
    console.print(f"[bold]{s.city_id}[/]: scan {s.scan_id} — {s.total} targets, {s.ok} ok, "
                  f"{s.partial} partial, {s.failed} could not be checked"
                  + (" [yellow](interrupted: marked incomplete)[/]" if s.interrupted else ""))
    if s.findings:
        order = sorted(s.findings, key=lambda k: -Severity(k).rank)
        console.print("failing checks: " + ", ".join(f"{s.findings[k]} {k}" for k in order))
    for target, reason in s.errors:
        console.print(f"  [red]could not check[/] {target}: {reason}", markup=True, highlight=False)


# --- listings -----------------------------------------------------------------------


def _open_store(cfg: Config, city_id: str | None) -> tuple[Any, Store]:
    city = cfg.city(city_id)
    return city, Store(city.database, readonly=True)


@cli.command()
@config_option
@city_option
@json_option
def devices(config_path: str, city_id: str | None, as_json: bool) -> None:
    """List the devices of a city as last seen."""
    _, store = _open_store(_config(config_path), city_id)
    rows = store.devices()
    if as_json:
        keys = ("id", "address", "port", "protocol", "name", "hostname", "kind", "vendor", "model", "serial",
                "os_name", "os_version", "department", "first_seen", "last_seen", "last_status", "last_error")
        click.echo(json.dumps([{k: r.get(k) for k in keys} for r in rows], indent=2))
        return
    from rich.table import Table

    table = Table("address", "name", "kind", "vendor / model", "OS", "department", "status")
    for r in rows:
        table.add_row(r["address"], r["name"] or r["hostname"] or "", r["kind"] or "",
                      " ".join(x for x in (r["vendor"], r["model"]) if x),
                      " ".join(x for x in (r["os_name"],) if x), r["department"] or "",
                      r["last_status"] if r["last_status"] != "error" else f"error: {r['last_error']}")
    console.print(table)


@cli.command()
@config_option
@city_option
@json_option
@click.option("--severity", type=click.Choice([s.value for s in Severity]), default=None,
              help="Only findings at or above this severity.")
def findings(config_path: str, city_id: str | None, as_json: bool, severity: str | None) -> None:
    """List open findings, worst first."""
    _, store = _open_store(_config(config_path), city_id)
    rows = store.open_findings()
    if severity:
        rows = [r for r in rows if Severity(r["severity"]).rank >= Severity(severity).rank]
    if as_json:
        keys = ("check_id", "severity", "title", "summary", "detail", "evidence", "remediation", "cost_amount",
                "cost_kind", "budget_line", "first_seen", "last_seen", "address", "device_name", "hostname",
                "department")
        click.echo(json.dumps([{**{k: r.get(k) for k in keys}, "references": json.loads(r["refs"] or "[]")}
                               for r in rows], indent=2))
        return
    from rich.table import Table

    table = Table("severity", "check", "device", "finding")
    for r in rows:
        table.add_row(r["severity"], r["check_id"], r["device_name"] or r["hostname"] or r["address"], r["summary"])
    console.print(table)


@cli.command("checks")
@json_option
def checks_cmd(as_json: bool) -> None:
    """List the check catalogue."""
    specs = sorted(plugins.load_checks().values(), key=lambda s: s.id)
    if as_json:
        click.echo(json.dumps([{"id": s.id, "title": s.title, "severity": s.severity.value, "needs": list(s.needs),
                                "references": s.references} for s in specs], indent=2))
        return
    from rich.table import Table

    table = Table("id", "severity", "title", "references")
    for s in specs:
        table.add_row(s.id, s.severity.value, s.title, ", ".join(s.references))
    console.print(table)


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
            if not month_ok(month):
                raise click.BadParameter("expected YYYY-MM", param_hint="--month")
            kwargs["month"] = month
        try:
            paths = writer(city, store, **kwargs)
        except ValueError as exc:
            if "report format" not in str(exc):
                raise
            raise click.BadParameter(str(exc), param_hint="--format") from None
        for p in paths:
            console.print(str(p))


def month_ok(month: str) -> bool:
    try:
        dt.date.fromisoformat(month + "-01")
        return len(month) == 7
    except ValueError:
        return False


_report_cmd("monthly", "The city manager's monthly summary (at most two printed pages).", "html", month=True)
_report_cmd("plan", "The 5-year capital refresh plan by fiscal year, budget line and department.", "html,csv,xlsx")
_report_cmd("worklist", "The technician worklist: every open finding, sorted by risk, with the fix.", "html,csv")


# --- demo ---------------------------------------------------------------------------


@cli.command()
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo city's config, database and reports go.")
@click.option("--keep-running", is_flag=True, help="Keep the simulated city up and print its config.")
@as_of_option
def demo(out_dir: str, keep_running: bool, as_of: dt.date | None) -> None:
    """Start the built-in simulated city, scan it and write its monthly report."""
    from itaudit.demo import run_demo

    sys.exit(run_demo(Path(out_dir), keep_running=keep_running, as_of=as_of, console=console))


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
    console.print(f"{result.imported} rows imported, {result.matched} matched to known devices, "
                  f"{len(result.unmatched)} not (yet) seen, {len(result.skipped)} skipped.")
    if result.ignored_columns:
        console.print("ignored columns: " + ", ".join(result.ignored_columns), markup=False)
    for number, why in result.skipped:
        console.print(f"  row {number} skipped: {why}", markup=False)
    for number, what in result.unmatched:
        console.print(f"  row {number} ({what}) matches no device seen so far", markup=False)


def _register_optional() -> None:
    """Commands that live in their own modules (registered here, the one CLI)."""
    from itaudit import knowledge_cli

    for name in ("lifecycle_cmd", "data_group"):
        cmd = getattr(knowledge_cli, name, None)
        if cmd is not None:
            cli.add_command(cmd)
    from itaudit import directory_cli  # issue 17

    cli.add_command(directory_cli.directory_cmd)


_register_optional()


# --- agent and MSP portfolio (issue 7; owned by the agent helper) --------------------


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
        writer = plugins._load("reports.portfolio:write_portfolio")
    paths = writer(cfg, as_of=as_of or dt.date.today(), out_dir=Path(out_dir),
                   formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
                   cities=list(city_ids) or None)
    for p in paths:
        console.print(str(p))

# --- end of the agent block ------------------------------------------------------------


# --- discover (issue 9; owned by the discovery helper) --------------------------------


@cli.command("discover")
@config_option
@city_option
@click.option("--force", is_flag=True, help="Sweep overlapping or enormous ranges anyway (never outside the config).")
@json_option
@click.argument("cidrs", nargs=-1, metavar="[CIDR ...]")
def discover_cmd(config_path: str, city_id: str | None, force: bool, as_json: bool, cidrs: tuple[str, ...]) -> None:
    """Sweep the city's configured ranges; list what answered, managed or not."""
    from rich.markup import escape

    from itaudit.discover import plan_sweep, run_discovery

    cfg = _config(config_path)
    city = cfg.city(city_id)
    plan = plan_sweep(city, cidrs, force=force)
    if not as_json:
        err.print(f"{city.id}: sweeping {len(plan.addresses)} addresses in {', '.join(plan.ranges)} "
                  f"at {city.discovery.rate:g} probes/s")
    if sys.stderr.isatty() and not as_json:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(f"[bold]{city.id}[/] probes"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err) as bar:
            task = bar.add_task("sweep", total=None)
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
    from rich.table import Table

    table = Table("address", "status", "open ports", "what it is")
    for s in result.sightings:
        status = f"managed ({s['protocol']})" if s["managed"] else "[yellow]found, not managed[/]"
        what = s["ssh_banner"] or (f"sysObjectID {s['snmp_sysobjectid']}" if s["snmp_sysobjectid"] else "")
        # Banners are device-supplied text: never let them act as rich markup.
        table.add_row(s["address"], status, ", ".join(map(str, s["open_ports"])), escape(what or s["guess"] or ""))
    console.print(table)
    console.print(f"{len(result.sightings)} answered: {len(result.managed)} reachable with the city's "
                  f"credentials, {len(result.unmanaged)} found, not managed"
                  + (" (auto_add: managed ones join the next scan)" if city.discovery.auto_add else ""))

# --- end of the discover block -----------------------------------------------------------


def main() -> None:
    """Console entry point: library errors become messages and exit codes here, once."""
    os.umask(0o077)  # databases, logs and reports are for the owner only
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        err.print(f"[red]config error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    except ScanLocked as exc:
        err.print(f"[red]refused:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    except (StoreError, KnowledgeError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    except ItauditError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    except SystemExit:
        raise
    except OSError as exc:
        err.print(f"[red]error:[/] {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}", highlight=False)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()

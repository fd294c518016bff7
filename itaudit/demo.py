"""The built-in simulated city: ``itaudit demo``.

Starts the simulated SSH fleet (one loopback address per host, each answering with the
recorded probe output of a real OS version) and snmpsim (one loopback address per network
device), writes a config for them, scans the city for real over SSH and SNMP, and writes the
monthly summary. Secrets are random per run and reach itaudit only through environment
variables, as they would in production.

The recordings live in the source tree under ``tests/fixtures/`` (the simulator and the
parsers read the same files) and ship in the wheel as ``itaudit/sim/recordings``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from itaudit import config as config_mod
from itaudit import plugins, rules
from itaudit.errors import ItauditError
from itaudit.scan import run_scan
from itaudit.store import Store
from itaudit.terminal import Column, print_table

# The recorded outputs: tests/fixtures in a source checkout (itaudit/sim/recordings links
# there), copied into the wheel as package data, so an installed itaudit runs the demo too.
FIXTURES = Path(__file__).resolve().parent / "sim" / "recordings"
SSH_NET = "127.0.10."  # one address per simulated SSH host
SNMP_NET = "127.0.11."  # one address per simulated network device
SSH_PORT = 2222
SNMP_PORT = 1161
CITY_ID = "lakeside"

# env var names the demo config points to; values are random per run
ENV_SSH_PASSWORD = "ITAUDIT_DEMO_SSH_PASSWORD"  # noqa: S105 - a variable name, not a secret
ENV_SNMP_AUTH = "ITAUDIT_DEMO_SNMP_AUTH"
ENV_SNMP_PRIV = "ITAUDIT_DEMO_SNMP_PRIV"
# Devices nobody listed: a printer (raw printing) and a Windows box with remote desktop open.
STRAYS = ((f"{SSH_NET}20", 9100), (f"{SSH_NET}21", 3389))


@dataclass(frozen=True)
class Role:
    """Who owns a simulated host in the city, and what the asset register says about it."""

    name: str
    department: str
    kind: str | None = None
    purchased: str | None = None  # ISO date, as an asset register would have it; None = unknown
    criticality: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # "core" switch, "rugged" laptop, "internet-facing"


# Recording case -> its role in the city of Lakeside (pop. 48,000). Unknown cases get a default.
ROSTER: dict[str, Role] = {
    "centos-7": Role("cad-gw01", "Police", "server", "2015-10-01", ("public-safety",)),
    "debian-10": Role("cityhall-fs01", "Information Technology", "server", "2017-05-10"),
    "debian-11": Role("gis-app01", "Public Works", "server"),  # a VM: no purchase of its own
    "debian-12": Role("web-city01", "Information Technology", "server", "2019-08-15"),
    "no-dmi-access": Role("court-app01", "Municipal Court", "server"),  # age unknown: DMI locked
    "rhel-9": Role("fin-db01", "Finance", "server", "2023-02-01", ("finance",)),
    "rocky-8": Role("wtp-hist01", "Water Utility", "server", "2020-03-01", ("water",)),
    "ubuntu-18.04": Role("pd-rms01", "Police", "server", "2016-06-01", ("public-safety",)),
    "ubuntu-20.04": Role("lib-kiosk-srv", "Library", "workstation", "2019-09-01"),
    "ubuntu-22.04": Role("ub-billing01", "Finance", "server", None, ("finance",)),  # a VM
    "ubuntu-24.04": Role("it-lt07", "Information Technology", "laptop", "2024-07-12"),
    "non-english-de": Role("kasse-01", "Finance", "workstation", "2016-11-01", ("finance",)),
    "ps51-single-object": Role("lib-kiosk2", "Library", "workstation", "2018-10-01"),
    "win10-22h2": Role("clerk-pc03", "City Clerk", "workstation", "2017-09-01"),
    "win11-23h2": Role("fin-pc07", "Finance", "workstation", "2020-11-01", ("finance",)),
    "win11-24h2": Role("pd-car12", "Police", "laptop", "2023-09-05", ("public-safety",), ("rugged",)),
    "winserver-2012r2": Role("payroll01", "Finance", "server", "2013-11-18", ("finance",)),
    "winserver-2016": Role("dc01", "Information Technology", "server", "2016-06-01"),
    "winserver-2019": Role("fire-rms01", "Fire", "server", None, ("public-safety",)),  # a VM
    "winserver-2022": Role("file01", "Information Technology", "server", "2022-05-20"),
}
NETWORK_ROSTER: dict[str, Role] = {
    "cisco_c3750x_ios122": Role("pd-core-3750", "Police", "switch", "2012-04-01", ("public-safety",), ("core",)),
    "cisco_c9300_iosxe": Role("ch-core-sw01", "Information Technology", "switch", "2021-05-01", (), ("core",)),
    "aruba_2930f": Role("lib-access-01", "Library", "switch", "2019-08-01"),
    "fortigate_60e_fortios6": Role("fgt60e-cityhall", "Information Technology", "firewall", "2018-01-15", (),
                                   ("internet-facing",)),
    "paloalto_pa220_panos": Role("pa220-fire-station-1", "Fire", "firewall", "2019-10-01", ("public-safety",),
                                 ("internet-facing",)),
    "hp_laserjet_m527": Role("finance-mfp", "Finance", "printer", "2016-09-01"),
    "apc_smt1500_ap9631": Role("wtp-ups-01", "Water Utility", "ups", "2014-06-01", ("water",)),
    "unifi_uap_ac_pro": Role("ap-library-lobby", "Library", "wireless", None),
    "synology_ds918_dsm": Role("nas01", "City Clerk", "storage", "2018-07-01"),
}


def ssh_cases() -> list[Path]:
    """Recorded SSH probe cases the simulated fleet can serve (one folder each)."""
    out = []
    for platform in ("linux", "windows"):
        for case in sorted((FIXTURES / platform).glob("*/")):
            if (case / "probe.txt").exists() and case.name in ROSTER:
                out.append(case)
    return out


def snmp_recordings(names: list[str] | None = None) -> list[Path]:
    files = sorted((FIXTURES / "snmp").glob("*.snmprec"))
    return [f for f in files if names is None or f.stem in names]


def _network_role(stem: str) -> Role:
    return NETWORK_ROSTER.get(stem) or Role(stem, "Information Technology")


def demo_snmp_names() -> list[str]:
    """The network devices of the demo city: recordings that have a role in it."""
    return [f.stem for f in snmp_recordings() if f.stem in NETWORK_ROSTER]


def write_config(path: Path, ssh_hosts: list[tuple[str, Path]], snmp_devices: list[tuple[str, str, int]],
                 unreachable: str) -> None:
    """The demo city's config: a real config file, as a city would write it."""
    lines = [
        "# Generated by `itaudit demo`: the simulated city of Lakeside.",
        "[settings]",
        'data_dir = "data"',
        "concurrency = 16",
        "timeout = 15",
        "",
        f"[cities.{CITY_ID}]",
        'name = "City of Lakeside"',
        "",
        # The city's chart of accounts: fund-department-object, as on its budget.
        f'[cities.{CITY_ID}.budget_lines."101-1410-5740"]',
        'name = "General Fund · IT · capital equipment"',
        'kind = "capital"',
        f'[cities.{CITY_ID}.budget_lines."101-1410-5310"]',
        'name = "General Fund · IT · operating services"',
        'kind = "operating"',
        f'[cities.{CITY_ID}.budget_lines."101-2110-5740"]',
        'name = "General Fund · Police · equipment"',
        'kind = "capital"',
        f'[cities.{CITY_ID}.budget_lines."101-2110-5310"]',
        'name = "General Fund · Police · operating supplies"',
        'kind = "operating"',
        f'[cities.{CITY_ID}.budget_lines."601-7110-5740"]',
        'name = "Water Fund · plant equipment"',
        'kind = "capital"',
        "",
        f"[cities.{CITY_ID}.policy]",
        "fiscal_year_start_month = 7",
        "labour_rate = 85",
        'capital_budget_line = "101-1410-5740"',
        'operating_budget_line = "101-1410-5310"',
        f'[cities.{CITY_ID}.policy.departments."Police"]',
        'budget_line = "101-2110-5740"',
        'operating_budget_line = "101-2110-5310"',
        # A rugged car laptop is below the $5,000 capitalization threshold: operating money.
        f'[cities.{CITY_ID}.policy.departments."Police".refresh.rugged-laptop]',
        "years = 4",
        "cost = 4500",
        'budget_line = "101-2110-5310"',
        f'[cities.{CITY_ID}.policy.departments."Water Utility"]',
        'budget_line = "601-7110-5740"',
        "",
        # The city hall server network, swept monthly for devices nobody listed (CPG 1.A).
        f"[cities.{CITY_ID}.discovery]",
        f'ranges = ["{SSH_NET}0/27"]',
        f"ports = [{SSH_PORT}, 3389, 5985, 9100]",
        "rate = 200",
        "timeout = 0.5",
        "",
        f"[cities.{CITY_ID}.credentials.servers]",
        'type = "ssh"',
        'username = "itaudit"',
        f'password_env = "{ENV_SSH_PASSWORD}"',
        "",
        f"[cities.{CITY_ID}.credentials.network]",
        'type = "snmp"',
        'version = "v3"',
        'username = "itaudit"',
        'auth_protocol = "sha"',
        f'auth_key_env = "{ENV_SNMP_AUTH}"',
        'priv_protocol = "aes128"',
        f'priv_key_env = "{ENV_SNMP_PRIV}"',
        "",
    ]

    def target(address: str, port: int, protocol: str, cred: str, role: Role) -> list[str]:
        out = ["", f"[[cities.{CITY_ID}.targets]]", f'address = "{address}"', f"port = {port}",
               f'protocol = "{protocol}"', f'credential = "{cred}"', f'name = "{role.name}"',
               f'department = "{role.department}"']
        if role.kind:
            out.append(f'kind = "{role.kind}"')
        if role.purchased:
            out.append(f"purchase_date = {role.purchased}")
        if role.criticality:
            out.append("criticality = [" + ", ".join(f'"{c}"' for c in role.criticality) + "]")
        if role.tags:
            out.append("tags = [" + ", ".join(f'"{c}"' for c in role.tags) + "]")
        return out

    for address, case in ssh_hosts:
        lines += target(address, SSH_PORT, "ssh", "servers", ROSTER[case.name])
    for address, stem, port in snmp_devices:
        lines += target(address, port, "snmp", "network", _network_role(stem))
    lines += target(unreachable, SSH_PORT, "ssh", "servers",
                    Role("animal-shelter-pc", "Animal Services", "workstation", "2016-02-01"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


class SimulatedCity:
    """The running fleets of the demo city; a context manager."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.password = secrets.token_urlsafe(18)
        self.auth_key = secrets.token_urlsafe(18)
        self.priv_key = secrets.token_urlsafe(18)
        self.ssh_hosts: list[tuple[str, Path]] = []
        self.snmp_devices: list[tuple[str, str, int]] = []
        self._fleets: list[Any] = []
        self._strays: list[socket.socket] = []

    def env(self) -> dict[str, str]:
        return {ENV_SSH_PASSWORD: self.password, ENV_SNMP_AUTH: self.auth_key, ENV_SNMP_PRIV: self.priv_key}

    def __enter__(self) -> SimulatedCity:
        from itaudit.sim.snmpfleet import SNMPFleet
        from itaudit.sim.sshfleet import SimHost, SSHFleet

        _check_free(f"{SSH_NET}1", SSH_PORT, socket.SOCK_STREAM)
        _check_free(f"{SNMP_NET}1", SNMP_PORT, socket.SOCK_DGRAM)
        cases = ssh_cases()
        if not cases:
            raise ItauditError(f"no recorded probe output under {FIXTURES}: this itaudit was installed without "
                               "its demo recordings; reinstall it from the wheel or a source checkout")
        self.ssh_hosts = [(f"{SSH_NET}{i + 1}", case) for i, case in enumerate(cases)]
        ssh = SSHFleet([SimHost(address=a, case_dir=c, port=SSH_PORT) for a, c in self.ssh_hosts],
                       username="itaudit", password=self.password, key_dir=self.workdir / "sim-host-keys")
        ssh.start()
        self._fleets.append(ssh)
        # Two devices on the network that nobody put in the inventory: discovery finds them.
        for address, port in STRAYS:
            sock = socket.create_server((address, port))
            self._strays.append(sock)
        names = demo_snmp_names()
        if names:
            fleet = SNMPFleet(FIXTURES / "snmp", names=names, base_address=f"{SNMP_NET}1", port=SNMP_PORT,
                              cache_dir=self.workdir / "snmpsim-cache")
            for name, dev in list(fleet.devices.items()):
                fleet.devices[name] = dataclasses.replace(
                    dev, v3_auth_key=self.auth_key, v3_priv_key=self.priv_key, v3_auth_proto="SHA",
                    v3_priv_proto="AES")
            fleet.start()
            self._fleets.append(fleet)
            fleet.wait_ready()
            self.snmp_devices = [(d.address, d.name, d.port) for d in fleet.devices.values()]
        return self

    def __exit__(self, *exc: object) -> None:
        for fleet in reversed(self._fleets):
            fleet.stop()
        self._fleets.clear()
        for sock in self._strays:
            sock.close()
        self._strays.clear()


def run_demo(out_dir: Path, *, keep_running: bool = False, as_of: dt.date | None = None,
             console: Console | None = None) -> int:
    """Run the whole demo; return the process exit code (0, or 3 if a target failed unexpectedly)."""
    console = console or Console()
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # A demo run starts clean, so its report describes this run's city only.
    for stale in ("data", "config.toml"):
        p = out_dir / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    as_of = as_of or dt.date.today()
    with SimulatedCity(out_dir / ".sim") as city:
        os.environ.update(city.env())
        cfg_path = out_dir / "config.toml"
        write_config(cfg_path, city.ssh_hosts, city.snmp_devices, unreachable=f"{SSH_NET}250")
        cfg = config_mod.load(cfg_path)
        city_cfg = cfg.city(CITY_ID)
        console.print(f"Simulated city of Lakeside: {len(city.ssh_hosts)} SSH hosts on {SSH_NET}x:{SSH_PORT}, "
                      f"{len(city.snmp_devices)} SNMP devices on {SNMP_NET}x:{SNMP_PORT}, 1 host switched off.")
        # Two earlier monthly scans of the same fleet, each judged on its own date, give the
        # report a history: nothing was fixed meanwhile, so risk grew as devices aged and
        # patches got older. This is what a city that defers gets, month after month.
        directory = _demo_directory()
        for months_back in (2, 1):
            past = _months_before(as_of, months_back)
            run_scan(cfg, city_cfg, as_of=past, now=f"{past.isoformat()}T02:00:00+00:00",
                     directory_read=_directory_read(directory, past))
        found = _discover(cfg, city_cfg)
        console.print(f"Discovery of {', '.join(city_cfg.discovery.ranges)}: {len(found.sightings)} addresses "
                      f"answered, {len(found.unmanaged)} not managed by anyone: "
                      + ", ".join(f"{s['address']} ({escape(s.get('guess') or '?')})" for s in found.unmanaged))
        summary = run_scan(cfg, city_cfg, as_of=as_of, directory_read=_directory_read(directory, as_of))
        console.print(f"Directory: {summary.directory_computers} computer objects (a recording of a real Samba AD "
                      f"domain controller), {summary.directory_only} of them judged from the directory only.")
        store = Store(city_cfg.database, readonly=True)
        paths = plugins.report_writer("monthly")(city_cfg, store, as_of=as_of, out_dir=out_dir,
                                                 formats=("html",))
        _print_summary(console, cfg_path, summary, store, paths, city_cfg, as_of)
        store.close()
        if not keep_running:
            cmd = _itaudit_command()
            console.print(Text(f"Next: open the report in a browser; '{cmd} findings -c {cfg_path}' lists the "
                               f"findings; '{cmd} demo --keep-running' keeps the city up to scan it yourself."),
                          soft_wrap=True)
        if keep_running:
            # The demo's secrets go to an owner-only file, not to the terminal.
            env_file = out_dir / "demo.env"
            fd = os.open(env_file, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.writelines(f"export {k}={v}\n" for k, v in city.env().items())
            console.print(f"\nThe simulated city stays up. Scan it yourself with:\n"
                          f"  . {env_file}\n"
                          f"  {_itaudit_command()} scan -c {cfg_path}\nPress Ctrl-C to stop.")
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            with contextlib.suppress(KeyboardInterrupt):
                done.wait()
    # One host is switched off on purpose; any other failure is a real problem.
    unexpected = [e for e in summary.errors if not e[0].startswith(f"ssh://{SSH_NET}250")]
    return 3 if unexpected else 0


def _print_summary(console: Console, cfg_path: Path, summary: Any, store: Store, paths: list[Path],
                   city: Any, as_of: dt.date) -> None:
    # One row per device, worst first. Names stay whole; the other columns wrap at 80 columns.
    worst: dict[int, dict[str, Any]] = {}
    for f in store.open_findings():
        worst.setdefault(f["device_id"], f)
    rank = {k: v + 1 for k, v in rules.SEVERITY_RANK.items()}  # 0: no finding

    def order(d: dict[str, Any]) -> tuple[int, str]:
        w = worst.get(d["id"])
        return (-(99 if d["last_status"] == "error" else rank.get(w["severity"], 0) if w else 0), d["name"] or "")

    rows, styles = [], []
    # The directory's computers are counted, not listed: one screen stays one screen.
    for d in sorted((d for d in store.devices() if d["protocol"] != "directory"), key=order):
        w = worst.get(d["id"])
        system = " ".join(x for x in (d["os_name"] or "", d["model"] or "") if x) or "—"
        if d["last_status"] == "error":
            finding, style = f"could not be checked: {d['last_error'] or ''}", "red"
        elif w:
            finding, style = f"{w['severity']}: {w['title']}", _color(w["severity"])
        else:
            finding, style = "no open findings", "green"
        rows.append([d["name"] or d["address"], d["department"] or "", system, finding])
        styles.append(style)
    console.print(f"City of Lakeside — audit of {as_of.isoformat()}", style="bold")
    print_table((Column("device", keep=True), Column("department", weight=2), Column("system", weight=3),
                 Column("worst open finding", weight=4)), rows, styles=styles)
    console.print(f"{summary.total} devices: {summary.ok} checked, {summary.partial} partly checked, "
                  f"{summary.failed} could not be checked"
                  + (f" ({summary.directory_only} of them judged from the directory only: "
                     f"itaudit directory -c {cfg_path})." if summary.directory_only else "."))
    for p in paths:
        console.print(Text.assemble("Report: ", (str(p), "bold")), soft_wrap=True)
    console.print(Text(f"Config: {cfg_path}"), soft_wrap=True)
    console.print(Text(f"Database: {city.database}"), soft_wrap=True)


def _itaudit_command() -> str:
    """How the user reaches this itaudit: ``itaudit`` when it is on PATH, else its path."""
    argv0 = Path(sys.argv[0])
    found = shutil.which("itaudit")
    if argv0.name != "itaudit" or (found and Path(found).resolve() == argv0.resolve()):
        return "itaudit"
    return str(argv0)


def _check_free(address: str, port: int, kind: int) -> None:
    """The demo's addresses are free, or a clear error naming what holds them and how to stop it."""
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((address, port))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ItauditError(f"cannot use the demo address {address}:{port}: {exc.strerror}") from None
    holder = _holder(address, port, "tcp" if kind == socket.SOCK_STREAM else "udp")
    if holder:
        pid, cmd = holder
        what = f"process {pid} ({cmd})"
        how = (f"stop it with Ctrl-C in its terminal or 'kill {pid}'" if "demo" in cmd
               else f"stop that program ('kill {pid}') or run the demo where the port is free")
    else:
        what, how = "another program", "stop it (e.g. an earlier 'itaudit demo --keep-running': Ctrl-C)"
    raise ItauditError(f"the demo's address {address}:{port} is already in use by {what}: {how}, "
                       "then run the demo again")


def _holder(address: str, port: int, proto: str) -> tuple[int, str] | None:
    """The process listening on ``address:port`` (as far as this user may see), or None."""
    import psutil

    try:
        for conn in psutil.net_connections(kind=proto):
            if conn.laddr and conn.laddr.port == port and conn.laddr.ip in (address, "0.0.0.0", "::") and conn.pid:  # noqa: S104
                try:
                    return conn.pid, " ".join(psutil.Process(conn.pid).cmdline())[:120]
                except psutil.Error:
                    return conn.pid, "?"
    except psutil.Error:
        return None
    return None


def _discover(cfg: Any, city: Any) -> Any:
    """Sweep the city's configured range, as the monthly discovery would."""
    from itaudit.discover import plan_sweep, run_discovery

    return run_discovery(cfg, city, plan_sweep(city), verify_ssh=False)


def _demo_directory() -> dict[str, Any]:
    """The demo city's Active Directory: a recorded read (itaudit/data/demo_directory.json)."""
    import json

    from itaudit.knowledge import shipped_data_dir

    return dict(json.loads((shipped_data_dir() / "demo_directory.json").read_text(encoding="utf-8")))


def _directory_read(doc: dict[str, Any], as_of: dt.date) -> Any:
    """The recorded directory as read on ``as_of`` (the spine reaches collectors through plugins)."""
    return plugins.directory_recording()(doc, as_of)


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` earlier (clamped to the month's length)."""
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=d)
        except ValueError:
            continue
    raise ValueError(day)


def _color(severity: str) -> str:
    return {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}.get(severity, "white")

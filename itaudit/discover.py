"""Discovery: sweep a city's configured ranges, record who answered, say who nobody manages.

Library API (the CLI is a thin layer over it):

- ``plan_sweep(city, cidrs, force=...)`` checks the ranges and returns the exact address
  list. It refuses anything outside ``[cities.<id>.discovery] ranges`` (no flag overrides
  that), and refuses malformed, overlapping or enormous ranges unless ``force`` — every
  refusal says how many addresses the sweep would have touched.
- ``run_discovery(cfg, city, plan)`` sweeps (``collectors.sweep``), verifies SSH logins
  with the city's credentials, matches answers to known devices (SSH host key, then
  address), stores one sighting per responding address and reconciles the asset register.
- ``discovered_targets(city, store)`` (``itaudit.inventory``): with ``auto_add = true``, the
  devices reachable with a city credential that the config does not list yet, as scan targets.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from itaudit import inventory, plugins
from itaudit.config import CityConfig, Config
from itaudit.credentials import SNMPCredential, SSHCredential
from itaudit.errors import ConfigError
from itaudit.inventory import discovered_targets  # noqa: F401 - part of the discovery API
from itaudit.model import ResultStatus, Target
from itaudit.store import Store

log = logging.getLogger("itaudit.discover")

HARD_LIMIT = 1 << 20  # even --force does not sweep more than a /12 at once
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What an open port says about a device nobody manages (first match wins, most telling first).
_PORT_HINTS = (
    (9100, "printer (raw printing on 9100)"),
    (3389, "Windows (remote desktop)"),
    (5985, "Windows (WinRM)"),
    (5986, "Windows (WinRM over TLS)"),
    (445, "Windows or NAS (file sharing, SMB)"),
    (23, "network gear or old device (telnet, unencrypted)"),
    (22, "Linux, Unix or network gear (SSH)"),
    (2222, "SSH on port 2222"),
    (443, "web management (HTTPS)"),
    (80, "web management (HTTP)"),
)


@dataclass
class SweepPlan:
    """The exact addresses a sweep may touch, and the ranges they come from."""

    city_id: str
    networks: list[Network]
    excluded: list[Network] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    forced: bool = False

    def allows(self, address: str) -> bool:
        """True only inside a planned range and outside every excluded one."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return (any(ip in n for n in self.networks)
                and not any(ip in x for x in self.excluded))

    @property
    def ranges(self) -> list[str]:
        return [str(n) for n in self.networks]


@dataclass
class DiscoveryResult:
    """One run: its id, the plan, one dict per responding address, and the reconciliation."""

    discovery_id: int
    plan: SweepPlan
    sightings: list[dict[str, Any]]
    register: dict[str, Any] | None = None  # None: no asset register to reconcile

    @property
    def managed(self) -> list[dict[str, Any]]:
        return [s for s in self.sightings if s["managed"]]

    @property
    def unmanaged(self) -> list[dict[str, Any]]:
        return [s for s in self.sightings if not s["managed"]]


def _count(nets: Sequence[Network]) -> int:
    return sum(n.num_addresses for n in nets)


def _hosts(net: Network) -> list[str]:
    # Network and broadcast addresses answer nothing useful; /31 and /32 have none.
    if isinstance(net, ipaddress.IPv4Network) and net.prefixlen < 31:
        return [str(h) for h in net.hosts()]
    return [str(a) for a in net]


def _parse(value: str, where: str, key: str | None) -> Network:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ConfigError(f"{where}: not an address range: {value!r} (use CIDR like 10.1.0.0/24)",
                          key=key) from None


def plan_sweep(city: CityConfig, cidrs: Sequence[str] = (), *, force: bool = False) -> SweepPlan:
    """Check the ranges to sweep and list their addresses; raise ``ConfigError`` to refuse.

    ``cidrs`` (from the command line) must lie inside the configured ranges; with none,
    the configured ranges are swept.
    """
    dk = f"cities.{city.id}.discovery"
    disc = city.discovery
    configured = [_parse(r, "configured range", f"{dk}.ranges") for r in disc.ranges]
    if not configured:
        raise ConfigError("no ranges to sweep: set ranges = [\"10.1.0.0/24\", ...] under "
                          f"[{dk}]", key=f"{dk}.ranges")
    excluded = [_parse(r, "excluded range", f"{dk}.exclude") for r in disc.exclude]
    if cidrs:
        nets = [_parse(c, "command line", None) for c in cidrs]
        for n in nets:
            if not any(n.version == c.version and n.subnet_of(c) for c in configured):  # type: ignore[arg-type]
                raise ConfigError(f"{n} ({n.num_addresses} addresses) is outside the configured ranges "
                                  f"({', '.join(map(str, configured))}); discovery never sweeps anything else",
                                  key=f"{dk}.ranges")
    else:
        nets = configured
    touched = _count(nets)
    overlaps = [(a, b) for i, a in enumerate(nets) for b in nets[i + 1:] if a.overlaps(b)]  # type: ignore[arg-type]
    if overlaps and not force:
        a, b = overlaps[0]
        raise ConfigError(f"ranges {a} and {b} overlap ({touched} addresses counted, some twice); "
                          "fix the ranges or pass --force to sweep each address once", key=f"{dk}.ranges")
    merged: list[Network] = []
    for version in (4, 6):
        same = [n for n in nets if n.version == version]
        merged += list(ipaddress.collapse_addresses(same))  # type: ignore[arg-type,type-var]
    touched = _count(merged)
    if touched > HARD_LIMIT:
        raise ConfigError(f"refusing to sweep {touched} addresses ({', '.join(map(str, merged))}): "
                          f"more than {HARD_LIMIT} even with --force; sweep smaller ranges", key=f"{dk}.ranges")
    if touched > disc.max_addresses and not force:
        raise ConfigError(f"the sweep would touch {touched} addresses ({', '.join(map(str, merged))}), more "
                          f"than {disc.max_addresses}; pass --force if that is really meant",
                          key=f"{dk}.ranges")
    plan = SweepPlan(city.id, merged, excluded, forced=force)
    plan.addresses = [a for n in merged for a in _hosts(n) if plan.allows(a)]
    return plan


def _guess(open_ports: list[int]) -> str | None:
    for port, hint in _PORT_HINTS:
        if port in open_ports:
            return hint
    return f"open ports {', '.join(map(str, open_ports))}" if open_ports else None


def run_discovery(cfg: Config, city: CityConfig, plan: SweepPlan, *, store: Store | None = None,
                  tcp: Any = None, snmp: Any = None, verify_ssh: bool = True,
                  progress: Callable[[int, int], None] | None = None,
                  now: str | None = None) -> DiscoveryResult:
    """Sweep ``plan``, classify and store every responding address; return the run."""
    sweep = plugins.tool("sweep")
    disc = city.discovery
    opts = sweep.SweepOptions(
        ports=disc.ports, rate=disc.rate, concurrency=disc.concurrency, connect_timeout=disc.timeout,
        snmp_port=disc.snmp_port, snmp_timeout=disc.timeout,
        snmp_credentials=[c for c in city.credentials.values() if isinstance(c, SNMPCredential)],
    )
    own_store = store is None
    store = store or Store(city.database)
    try:
        discovery_id = store.begin_discovery(city.id, plan.ranges, len(plan.addresses), now=now)
        try:
            answers = sweep.sweep(plan.addresses, plan.allows, opts, tcp=tcp, snmp=snmp, progress=progress)
        except BaseException:
            store.finish_discovery(discovery_id, complete=False, now=now)  # interrupted: marked, not lost
            raise
        verified = _verify_ssh(cfg, city, answers, plan) if verify_ssh else {}
        configured = {t.address: t for t in city.targets}
        sightings = []
        for a in answers:
            s: dict[str, Any] = {"address": a.address, "open_ports": list(a.open_ports),
                                 "snmp_sysobjectid": a.snmp_sysobjectid, "ssh_banner": a.ssh_banner,
                                 "ssh_host_key": None, "managed": False, "protocol": None, "port": None,
                                 "credential": None, "device_id": None, "guess": _guess(a.open_ports)}
            if a.address in configured:
                t = configured[a.address]
                s.update(managed=True, protocol=t.protocol, port=t.port, credential=t.credential)
            elif a.address in verified:
                host_key, cred, port = verified[a.address]
                s.update(managed=True, protocol="ssh", port=None if port == 22 else port, credential=cred,
                         ssh_host_key=host_key)
            elif a.snmp_credential:
                s.update(managed=True, protocol="snmp", port=None if disc.snmp_port == 161 else disc.snmp_port,
                         credential=a.snmp_credential)
            device = store.device_for_sighting(a.address, s["ssh_host_key"])
            if device:
                s["device_id"] = device["id"]
            store.record_sighting(discovery_id, s, now=now)
            sightings.append(s)
        store.finish_discovery(discovery_id, now=now)
        register = reconcile_register(store, sightings, as_of=dt.date.fromisoformat((now or _today())[:10]))
        return DiscoveryResult(discovery_id, plan, sightings, register)
    finally:
        if own_store:
            store.close()


def _today() -> str:
    return dt.date.today().isoformat()


def _verify_ssh(cfg: Config, city: CityConfig, answers: list[Any], plan: SweepPlan) -> dict[str, tuple[str, str, int]]:
    """Log in to answering SSH ports with the city's SSH credentials, first that works wins.

    Only key-based credentials (key file or agent) unless ``verify_with_passwords``: an
    unmanaged SSH server may be a rogue one, and a password tried on it is a password given
    to it. A key login proves the key without revealing it.

    Returns ``{address: (host key fingerprint, credential name, port)}``. Addresses the
    config already lists are skipped: they are managed by definition.
    """
    creds = [c for c in city.credentials.values() if isinstance(c, SSHCredential)
             and (city.discovery.verify_with_passwords or c.key_file or c.use_agent)]
    listed = {t.address for t in city.targets}
    todo = [a for a in answers if a.ssh_banner and a.address not in listed and plan.allows(a.address)]
    if not creds or not todo:
        return {}
    ctx = inventory.collect_context(cfg, city)
    ctx.timeout = min(ctx.timeout, 10.0)
    collector = plugins.collector_class("ssh")()
    out: dict[str, tuple[str, str, int]] = {}
    for cred in creds:
        targets = [Target(address=a.address, protocol="ssh", city_id=city.id, port=a.ssh_port, credential=cred.name)
                   for a in todo if a.address not in out]
        for res in collector.collect_many(targets, ctx):
            if res.status != ResultStatus.ERROR:
                out[res.target.address] = (res.facts.identity.ssh_host_key or "", cred.name,
                                           res.target.port or 22)
    return out


def reconcile_register(store: Store, sightings: list[dict[str, Any]], *, as_of: dt.date,
                       stale_days: int = 30) -> dict[str, Any] | None:
    """Compare the imported asset register with what discovery saw.

    Returns ``{"not_seen": [...], "not_in_register": [...]}``: register rows whose address no
    discovery saw in ``stale_days``, and addresses seen now that the register lacks. None
    when no asset register was imported.
    """
    register = store.asset_rows()
    if not register:
        return None
    since = (as_of - dt.timedelta(days=stale_days)).isoformat()
    recent = store.recent_sightings(since)
    seen_addresses = {a for a, _ in recent}
    seen_devices = {d for _, d in recent if d is not None}
    in_register = {r.get("address") for r in register if r.get("address")}
    register_devices = {r.get("device_id") for r in register if r.get("device_id")}

    def seen(r: dict[str, Any]) -> bool:
        # A register line is seen at its address, or as its device wherever DHCP put it.
        return r.get("address") in seen_addresses or (r.get("device_id") or -1) in seen_devices

    return {
        "not_seen": [{k: r.get(k) for k in ("key", "address", "hostname", "serial", "department")}
                     for r in register if (r.get("address") or r.get("device_id")) and not seen(r)],
        "not_in_register": [s["address"] for s in sightings
                            if s["address"] not in in_register and s.get("device_id") not in register_devices],
    }

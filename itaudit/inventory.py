"""The inventory stage: what a scan collects from, and the context its collectors get.

- ``scan_targets(city, store)``: the city's configured targets, plus (with discovery's
  ``auto_add``) the devices the latest sweep reached with a city credential;
- ``discovered_targets(city, store)``: those auto-added devices alone;
- ``collect_context(cfg, city)``: a ``CollectContext`` holding only this city's credentials
  and known_hosts, so a credential of one city can never reach another city's target;
- ``apply_register(store)``: asset-register rows whose device a scan has just seen first.

Scanning (``itaudit.scan``) and discovery (``itaudit.discover``) both start from here, so
neither imports the other.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from itaudit.config import CityConfig, Config
from itaudit.credentials import Credential
from itaudit.model import Target
from itaudit.store import Store


@dataclass
class CollectContext:
    """What a collector gets for one run: one city's credentials, known hosts and limits."""

    city_id: str
    credentials: Mapping[str, Credential] = field(default_factory=dict)
    known_hosts: Path | None = None  # itaudit's own pinned host keys (TOFU)
    timeout: float = 20.0  # per-host deadline: connect + auth + probe
    concurrency: int = 16
    max_output: int = 4 * 1024 * 1024  # bytes kept from one probe
    allow_sudo: bool = True  # a credential's own ``sudo = true`` still decides
    stop: threading.Event | None = None  # set when the scan stops: start no further host


def collect_context(cfg: Config, city: CityConfig, stop: threading.Event | None = None) -> CollectContext:
    """The context collectors get: only this city's credentials and known_hosts."""
    city.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return CollectContext(
        city_id=city.id,
        credentials=dict(city.credentials),
        known_hosts=city.known_hosts,
        timeout=cfg.settings.timeout,
        concurrency=cfg.settings.concurrency,
        max_output=cfg.settings.max_output_bytes,
        stop=stop,
    )


def discovered_targets(city: CityConfig, store: Store) -> list[Target]:
    """With ``auto_add = true``: targets found by the latest discovery that the config lacks.

    Only devices reachable with a city credential; tagged ``discovered``. Empty otherwise.
    """
    if not city.discovery.auto_add:
        return []
    have = {(t.protocol, t.address, t.port or 0) for t in city.targets}
    have_addr = {t.address for t in city.targets}
    out = []
    for s in store.discovered_candidates():
        key = (s["protocol"], s["address"], s["port"] or 0)
        if key in have or s["address"] in have_addr or s["credential"] not in city.credentials:
            continue
        have.add(key)
        out.append(Target(address=s["address"], protocol=s["protocol"], city_id=city.id, port=s["port"],
                          credential=s["credential"], tags=["discovered"]))
    return out


def scan_targets(city: CityConfig, store: Store) -> list[Target]:
    """Everything a scan of ``city`` collects from: configured targets, then auto-added discoveries."""
    return list(city.targets) + discovered_targets(city, store)


def apply_register(store: Store) -> int:
    """Tie asset-register rows to devices a scan saw for the first time; return how many matched."""
    from itaudit.assets import apply_pending

    return apply_pending(store)

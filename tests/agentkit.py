"""Helpers for the agent, MSP and portfolio tests: config files and slow-but-real targets.

Targets are ``local`` (this host, through psutil), SSH addresses where nothing listens
(refused at once) and SNMP devices that never answer (a bound UDP socket that stays
silent: each costs the scan about a second, so a test can stop or kill a scan midway).
Everything binds 127.0.6.0/24.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

SILENT_SNMP_HOST = "127.0.6.30"
REFUSED_SSH_HOST = "127.0.6.40"  # nothing listens on :2222 here


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table(name: str, values: dict[str, Any]) -> list[str]:
    return [f"[{name}]"] + [f"{k} = {_value(v)}" for k, v in values.items()] + [""]


def city_block(cid: str, *, targets: list[dict[str, Any]], credentials: dict[str, dict[str, Any]] | None = None,
               schedule: dict[str, Any] | None = None, delivery: dict[str, Any] | None = None,
               timezone: str = "America/Chicago", name: str | None = None) -> str:
    """The TOML of one city."""
    lines = _table(f"cities.{cid}", {"name": name or f"City of {cid.title()}", "timezone": timezone})
    for cname, c in (credentials or {}).items():
        lines += _table(f"cities.{cid}.credentials.{cname}", c)
    if schedule:
        lines += _table(f"cities.{cid}.schedule", schedule)
    if delivery:
        lines += _table(f"cities.{cid}.delivery", delivery)
    for t in targets:
        lines += [f"[[cities.{cid}.targets]]"] + [f"{k} = {_value(v)}" for k, v in t.items()] + [""]
    return "\n".join(lines)


def write_config(path: Path, cities: list[str], *, settings: dict[str, Any] | None = None,
                 smtp: dict[str, Any] | None = None) -> Path:
    """A whole config file (owner-only, as a real one is)."""
    lines = _table("settings", {"data_dir": "data", "timeout": 2, "concurrency": 4, **(settings or {})})
    if smtp:
        lines += _table("smtp", smtp)
    path.write_text("\n".join(lines) + "\n" + "\n".join(cities), encoding="utf-8")
    path.chmod(0o600)
    return path


def local_target(name: str, address: str = "localhost") -> dict[str, Any]:
    return {"address": address, "protocol": "local", "name": name, "kind": "server"}


class SilentUDP:
    """UDP ports that receive and never answer: SNMP devices that time out."""

    def __init__(self, n: int, host: str = SILENT_SNMP_HOST):
        self.host = host
        self.socks: list[socket.socket] = []
        while len(self.socks) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((host, random.randint(20000, 32000)))
            except OSError:
                s.close()
                continue
            self.socks.append(s)

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.socks]

    def targets(self, prefix: str) -> list[dict[str, Any]]:
        return [{"address": self.host, "port": p, "protocol": "snmp", "credential": "net",
                 "name": f"{prefix}-switch-{i}", "kind": "switch"} for i, p in enumerate(self.ports)]

    def close(self) -> None:
        for s in self.socks:
            s.close()


SNMP_CRED = {"type": "snmp", "version": "v2c", "community_env": "ITAUDIT_TEST_COMMUNITY"}

"""The explicit list of built-in collectors, check modules and reports.

``itaudit`` (the spine) never imports ``collectors``, ``checks`` or ``reports`` at module
level: it reaches them only through the dotted names below (and the ``itaudit.*`` entry
points for third-party plugins), by the functions of this module; no other module loads
anything by name. ``tests/test_layering.py`` enforces both.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

BUILTIN_COLLECTORS: dict[str, str] = {
    "ssh": "collectors.ssh:SSHCollector",
    "snmp": "collectors.snmp:SNMPCollector",
    "local": "collectors.local:LocalCollector",
    "winrm": "collectors.winrm:WinRMCollector",
}

# Reads a city's directory (one call per scan, not per target): ``read_directory(cfg, password)``.
BUILTIN_DIRECTORY_READER = "collectors.directory:read_directory"
# Replays a recorded directory read (the demo city's directory).
BUILTIN_DIRECTORY_RECORDING = "collectors.directory:recorded_read"

BUILTIN_CHECK_MODULES: tuple[str, ...] = (
    "checks.lifecycle",
    "checks.hardware",
    "checks.patching",
    "checks.exposure",
    "checks.kev",
    "checks.dataquality",
    "checks.directory",
)

# Other outer-layer pieces the spine uses, by name: the discovery sweep and the SSH probe parser
# (the simulated fleet derives its answers from it).
BUILTIN_TOOLS: dict[str, str] = {
    "sweep": "collectors.sweep",
    "ssh_probe_parser": "collectors.ssh:parse_probe",
    "known_hosts": "collectors.known_hosts",  # itaudit hostkey list / accept
    "ssh": "collectors.ssh",
    "board": "reports.board:create_app",  # itaudit serve
    "board_site": "reports.board_sites:create_board",  # itaudit serve and the agent: login, TLS, cities
}

BUILTIN_REPORTS: dict[str, str] = {
    "monthly": "reports.monthly:write_monthly",
    "plan": "reports.plan:write_plan",
    "worklist": "reports.worklist:write_worklist",
    "portfolio": "reports.portfolio:write_portfolio",
    "annual": "reports.annual:write_annual",
    "request": "reports.request:write_request",
    "evidence": "reports.evidence:write_evidence",
    "opendata": "reports.opendata:write_opendata",
}


def entry_points(group: str) -> Any:
    """Installed plugins of ``group`` (importlib.metadata is imported only when plugins are looked up)."""
    from importlib.metadata import entry_points as eps

    return eps(group=group)


def _load(dotted: str) -> Any:
    module, _, attr = dotted.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def collector_class(protocol: str) -> Any:
    """Return the collector class for a protocol (built-in or entry point)."""
    if protocol in BUILTIN_COLLECTORS:
        return _load(BUILTIN_COLLECTORS[protocol])
    for ep in entry_points(group="itaudit.collectors"):
        if ep.name == protocol:
            return ep.load()
    raise KeyError(protocol)


def directory_reader() -> Any:
    """The function that reads a city's directory (see ``collectors/directory.py``)."""
    return _load(BUILTIN_DIRECTORY_READER)


def directory_recording() -> Any:
    """The function that replays a recorded directory read (``recorded_read(doc, as_of)``)."""
    return _load(BUILTIN_DIRECTORY_RECORDING)


@cache
def load_checks() -> dict[str, Any]:
    """Import every check module so their ``@check`` decorators register."""
    for name in BUILTIN_CHECK_MODULES:
        importlib.import_module(name)
    for ep in entry_points(group="itaudit.checks"):
        ep.load()
    from itaudit.checking import REGISTRY

    return REGISTRY


def terminal_summary() -> Any:
    """The month's summary as (label, value) rows for the terminal (the monthly report's figures)."""
    return _load("reports.monthly:summary_rows")


def tool(name: str) -> Any:
    """A built-in outer-layer tool listed in ``BUILTIN_TOOLS``."""
    return _load(BUILTIN_TOOLS[name])


def report_writer(name: str) -> Any:
    if name in BUILTIN_REPORTS:
        return _load(BUILTIN_REPORTS[name])
    for ep in entry_points(group="itaudit.reports"):
        if ep.name == name:
            return ep.load()
    raise KeyError(name)

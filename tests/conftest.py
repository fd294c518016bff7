"""Shared pytest fixtures. Peer fixtures (real sshd, snmpd, snmpsim) live in the
``peers_*.py`` modules beside this file and are re-exported here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_peer(ok: bool, reason: str) -> None:
    """Skip when a real peer is missing; under CI a missing peer is a failure."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


from peers_samba import *  # noqa: E402,F403
from peers_snmp import *  # noqa: E402,F403
from peers_ssh import *  # noqa: E402,F403

"""Helpers for the check tests: build DeviceFacts and a CheckContext directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from itaudit.checking import CheckContext, DeviceRecord, run_checks
from itaudit.knowledge import Knowledge
from itaudit.model import (
    DeviceFacts,
    Finding,
    Hardware,
    Identity,
    Patching,
    Posture,
    Service,
    Software,
)
from itaudit.plugins import load_checks
from itaudit.policy import Policy

AS_OF = dt.date(2026, 11, 23)


def facts(
    *,
    identity: dict[str, Any] | None = None,
    software: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
    patching: dict[str, Any] | None = None,
    posture: dict[str, Any] | None = None,
    scanned: bool = True,
) -> DeviceFacts:
    """Facts as a successful scan would leave them (``scanned=False``: nothing collected)."""
    post = dict(posture or {})
    if "listening" in post and post["listening"] is not None:
        post["listening"] = [Service(*s) for s in post["listening"]]
    f = DeviceFacts(
        identity=Identity(hostname="host1", **(identity or {})),
        software=Software(**(software or {})),
        hardware=Hardware(**(hardware or {})),
        patching=Patching(**(patching or {})),
        posture=Posture(**post),
    )
    if scanned:
        f.sources = {"test": "test"}
        f.collected_at = "2026-11-22T10:00:00+00:00"
    return f


def ctx(
    kind: str | None = "server", *, as_of: dt.date = AS_OF, policy: Policy | None = None, **device: Any
) -> CheckContext:
    return CheckContext(
        as_of=as_of,
        device=DeviceRecord(kind=kind, **device),
        policy=policy or Policy(),
        knowledge=Knowledge.load(),
    )


def run(check_id: str, f: DeviceFacts, c: CheckContext) -> Finding:
    """Run one registered check through run_checks (so ``applies_to`` applies)."""
    spec = load_checks()[check_id]
    out = run_checks(f, c, [spec])
    assert len(out) == 1, f"{check_id} did not apply to kind {c.device.kind}"
    return out[0]

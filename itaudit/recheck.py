"""Re-judge exploited vulnerabilities on stored facts after a data update: no rescan.

Every device's latest stored facts (the observation of its last successful scan) get back
their latest installed-package list (``Store.latest_packages``, kept per device because
the observation keeps only the count), and the ``VULN-`` checks run again with the
knowledge in use now. The verdicts are recorded against the scan those facts came from
(``check_results`` of that scan, the finding episodes' ``last_scan_id``): the same facts,
judged with newer data. Nothing else about the scan or the device changes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from itaudit.checking import CheckContext, DeviceRecord, run_checks
from itaudit.plugins import load_checks
from itaudit.store import Store, utcnow

PREFIX = "VULN-"


@dataclass
class RecheckReport:
    """How many devices were judged again and which verdicts changed."""

    devices: int = 0
    skipped: int = 0  # never scanned successfully: no facts to judge
    changed: list[tuple[int, str, str, str]] = field(default_factory=list)  # device, check, before, after


def recheck_vulns(store: Store, city: Any, *, as_of: dt.date, knowledge: Any) -> RecheckReport:
    """Run the ``VULN-`` checks again on every device's latest stored facts and packages."""
    specs = sorted((s for k, s in load_checks().items() if k.startswith(PREFIX)), key=lambda s: s.id)
    report = RecheckReport()
    now = utcnow()
    for dev in store.devices():
        row = store.db.execute(
            "select scan_id from observations where device_id = ? and facts is not null order by id desc limit 1",
            [dev["id"]]).fetchone()
        facts = store.latest_facts(dev["id"])
        if row is None or facts is None:
            report.skipped += 1
            continue
        kept = store.latest_packages(dev["id"])
        if kept is not None:
            facts.patching.packages = kept[0]
            facts.gaps.pop("patching.packages", None)
        record = DeviceRecord(id=dev["id"], kind=dev["kind"], department=dev["department"],
                              budget_line=dev["budget_line"], first_seen=dev["first_seen"],
                              last_seen=dev["last_seen"],
                              criticality=json.loads(dev["criticality"]) if dev["criticality"] else [])
        ctx = CheckContext(as_of=as_of, device=record, policy=city.policy, knowledge=knowledge)
        findings = run_checks(facts, ctx, specs)
        before = {c: s for c, s in store.db.execute(
            "select check_id, status from check_results where scan_id = ? and device_id = ? and check_id like ?",
            [row[0], dev["id"], PREFIX + "%"])}
        store.reapply_findings(int(row[0]), dev["id"], findings, now)
        report.devices += 1
        for f in findings:
            if before.get(f.check_id) != f.status.value:
                report.changed.append((dev["id"], f.check_id, before.get(f.check_id, "-"), f.status.value))
    return report


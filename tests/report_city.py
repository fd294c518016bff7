"""A synthetic city's history for report tests and the report benchmark.

Built through the real store API (begin_scan / record_result / finish_scan with ``now``),
one scan per month, so the reports have a true story to tell: old PCs on Windows 10, a few
exploited flaws being fixed, patching getting better, two devices that cannot be reached,
and one device with a hostile hostname. The age verdicts (``HW-001``, ``HW-002``) come from
the real checks; the other verdicts are made by hand, but every cost on them is priced the
way the checks price it (``checks._common.labour``: staff time at the city's rate on its
operating line), so the findings and the capital plan agree on every device. A device that
cannot be reached is judged on its dates on record, as ``itaudit.scan`` judges it.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks._common import labour
from itaudit.checking import REGISTRY, CheckContext, DeviceRecord, run_checks
from itaudit.config import BudgetLine, CityConfig
from itaudit.model import (
    CollectResult,
    DeviceFacts,
    Finding,
    ResultStatus,
    Severity,
    Status,
    Target,
)
from itaudit.plugins import load_checks
from itaudit.policy import Policy
from itaudit.store import Store

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
LINES = {
    "101-1410-5740": ("IT capital equipment", "capital"),
    "101-1410-5310": ("IT operating supplies and services", "operating"),
    "101-2110-5740": ("Police capital equipment", "capital"),
    "601-4410-5740": ("Water utility capital", "capital"),
}
KINDS = [  # kind, share, os choices (refresh age, price and line: the city's policy)
    ("workstation", 0.55, ["Windows 10 Pro", "Windows 11 Pro"]),
    ("laptop", 0.15, ["Windows 10 Pro", "Windows 11 Pro"]),
    (
        "server",
        0.10,
        [
            "Ubuntu 22.04",
            "Ubuntu 18.04",
            "Windows Server 2012 R2",
            "Windows Server 2022",
            "CentOS Linux 7",
            "Debian 12",
        ],
    ),
    ("switch", 0.10, ["Cisco IOS 15.2"]),
    ("firewall", 0.03, ["FortiOS 7.2"]),
    ("printer", 0.04, ["HP FutureSmart 5"]),
    ("ups", 0.03, ["APC AOS 6.8"]),
]
CRITICALITY = {"Police": ["public-safety"], "Water": ["water"], "Finance": ["finance"]}
AGE_CHECKS = ("HW-001", "HW-002")
DEPTS = ["City Hall", "Police", "Fire", "Water", "Library", "Finance", "Public Works"]
EOL_OS = {
    "Ubuntu 18.04": "2023-05-31",
    "Windows Server 2012 R2": "2023-10-10",
    "CentOS Linux 7": "2024-06-30",
    "Windows 10 Pro": "2025-10-14",
}


def city_config(db: Path, city_id: str = "springfield", name: str = "Springfield") -> CityConfig:
    """A real CityConfig with budget lines, and a policy that names the city's capital and operating lines."""
    budget_lines = {a: BudgetLine(account=a, name=n, kind=k) for a, (n, k) in LINES.items()}
    policy = Policy(capital_budget_line="101-1410-5740", operating_budget_line="101-1410-5310",
                    line_kinds={a: k for a, (_, k) in LINES.items()})
    return CityConfig(
        id=city_id,
        name=name,
        database=db,
        known_hosts=db.with_name("known_hosts"),
        policy=policy,
        budget_lines=budget_lines,
    )


@dataclass
class Dev:
    i: int
    kind: str
    os: str
    dept: str
    purchase: dt.date | None
    hostname: str
    tags: list[str]
    unreachable: bool = False
    kev_fixed_month: int | None = None
    patch_fixed_month: int | None = None
    snmp_public: bool = False
    replaced_month: int | None = None  # month index when this device was swapped for a new one

    def at(self, month_idx: int, day: dt.date) -> Dev:
        """The device as it stood in that month (a replaced PC is new and runs Windows 11)."""
        if self.replaced_month is not None and month_idx >= self.replaced_month:
            return Dev(
                **{
                    **self.__dict__,
                    "os": self.os.replace("Windows 10", "Windows 11"),
                    "purchase": day - dt.timedelta(days=20),
                    "replaced_month": None,
                }
            )
        return self


def make_devices(n: int, seed: int = 7, start: dt.date = dt.date(2024, 11, 1)) -> list[Dev]:
    rng = random.Random(seed)
    devs = []
    weights = [k[1] for k in KINDS]
    for i in range(n):
        kind, _, oses = rng.choices(KINDS, weights)[0]
        dept = rng.choice(DEPTS)
        tags = ["rugged"] if kind == "laptop" and dept == "Police" else []  # patrol-car laptops
        age_days = rng.randint(200, 365 * 9)
        purchase = None if rng.random() < 0.06 else start - dt.timedelta(days=age_days)
        os_name = rng.choice(oses)
        host = f"{dept.split()[0].lower()}-{kind[:3]}-{i:04d}"
        devs.append(
            Dev(
                i,
                kind,
                os_name,
                dept,
                purchase,
                host,
                tags,
                kev_fixed_month=rng.choice([None, 3, 6, 9, 30]) if rng.random() < 0.08 else None,
                patch_fixed_month=rng.randint(0, 30) if rng.random() < 0.5 else None,
                snmp_public=kind in ("switch", "printer", "ups") and rng.random() < 0.3,
                replaced_month=rng.randint(4, 24) if "Windows 10" in os_name and rng.random() < 0.6 else None,
            )
        )
    if n >= 3:
        devs[0].hostname = HOSTILE
        devs[1].unreachable = True
        devs[2].unreachable = True
    return devs


def _context(city: CityConfig, d: Dev, day: dt.date) -> CheckContext:
    """What a check sees of the device on ``day``: the city's policy and the device's record."""
    record = DeviceRecord(kind=d.kind, department=d.dept, criticality=CRITICALITY.get(d.dept, []),
                          purchase_date=d.purchase, tags=list(d.tags))
    return CheckContext(as_of=day, device=record, policy=city.policy)


def _age_verdicts(d: Dev, ctx: CheckContext, facts: DeviceFacts) -> list[Finding]:
    """``HW-001`` and ``HW-002`` as the checks judge them: refresh age, price, line and fiscal year
    from the city's policy (``itaudit.rules``), the same the capital plan uses."""
    load_checks()
    return run_checks(facts, ctx, [REGISTRY[c] for c in AGE_CHECKS])


def _verdicts(city: CityConfig, d: Dev, month_idx: int, day: dt.date) -> list[Finding]:
    ctx = _context(city, d, day)
    out: list[Finding] = _age_verdicts(d, ctx, _facts(d))

    def add(
        cid: str,
        title: str,
        sev: Severity,
        status: Status,
        summary: str = "",
        cost: Any = None,
        remediation: str = "",
        evidence: str = "",
    ) -> None:
        out.append(
            Finding(
                check_id=cid,
                status=status,
                severity=sev,
                title=title,
                summary=summary,
                remediation=remediation,
                evidence=evidence,
                cost=cost,
            )
        )

    eol = EOL_OS.get(d.os)
    eol_fail = eol is not None and day.isoformat() >= eol
    add(
        "EOL-001",
        "Operating system past end of security support",
        Severity.HIGH,
        Status.FAIL if eol_fail else Status.PASS,
        f"{d.os} no longer receives security fixes (since {eol})." if eol_fail else "",
        # A server or PC on unsupported software gets a new operating system (staff time), as
        # EOL-001 prices it; new hardware is HW-004's or the refresh age's business.
        labour(ctx, "os_upgrade", "upgrade to a supported release"),
        f"Upgrade {d.os} to a supported release.",
        f"os={d.os}",
    )
    if d.kind in ("workstation", "laptop", "server"):
        # Patch backlog shrinks over the months: fewer devices have updates waiting.
        share = max(0.12, 0.55 - 0.03 * month_idx)
        pending = random.Random(d.i * 1000 + month_idx).random() < share
        add(
            "PATCH-001",
            "Security updates pending",
            Severity.MEDIUM,
            Status.FAIL if pending else Status.PASS,
            "Security updates are waiting to be installed.",
            labour(ctx, "patch", "install the updates"),
            "Install pending security updates (apt upgrade / Windows Update).",
            "security_updates=7",
        )
    if d.kev_fixed_month is not None:
        exploited = month_idx < d.kev_fixed_month
        add(
            "VULN-001",
            "Known exploited vulnerability",
            Severity.CRITICAL,
            Status.FAIL if exploited else Status.PASS,
            "Runs software with a flaw criminals are exploiting.",
            labour(ctx, "patch", "update to the fixed release"),
            "Apply the vendor fix listed in CISA KEV.",
            "CVE-2024-0000 matched product family",
        )
    if d.snmp_public:
        add(
            "SEC-004",
            "SNMP answers the default community",
            Severity.HIGH,
            Status.FAIL if month_idx < 20 else Status.PASS,
            "Anyone on the network can read its settings.",
            labour(ctx, "config_change", "change the SNMP configuration"),
            "Set a private community or SNMPv3.",
            "community public answered",
        )
    return out


def _facts(d: Dev) -> DeviceFacts:
    f = DeviceFacts()
    f.identity.hostname = d.hostname
    f.identity.kind = d.kind
    f.identity.serial = f"SN{d.i:06d}"
    f.identity.description = d.hostname
    f.software.os_name = d.os
    f.software.product = d.os.split()[0].lower()
    f.hardware.manufacture_date = d.purchase
    return f


def build(
    db: Path,
    *,
    n: int = 40,
    months: int = 14,
    end: dt.date = dt.date(2026, 10, 20),
    skip_months: tuple[int, ...] = (),
    seed: int = 7,
    hostile: bool = True,
) -> tuple[Any, Store]:
    """Create ``db`` with ``months`` monthly scans ending at ``end``; return (city, store)."""
    city = city_config(db)
    store = Store(db)
    devs = make_devices(n, seed=seed)
    if not hostile and devs:
        devs[0].hostname = "cityhall-wor-0000"
    for m in range(months):
        idx = end.year * 12 + end.month - 1 - (months - 1 - m)
        day = dt.date(idx // 12, idx % 12 + 1, min(end.day, 28))
        if m in skip_months:
            continue
        now = f"{day.isoformat()}T09:00:00+00:00"
        scan_id = store.begin_scan(city.id, day, len(devs), now=now)
        for d in devs:
            dm = d.at(m, day)  # a replaced PC has its new purchase date on record
            target = Target(
                address=f"10.20.{d.i // 250}.{d.i % 250 + 1}",
                protocol="snmp" if d.kind in ("switch", "firewall", "printer", "ups") else "ssh",
                city_id=city.id,
                name=None if d.i else None,
                department=d.dept,
                kind=d.kind,
                purchase_date=dm.purchase,
                criticality=CRITICALITY.get(d.dept, []),
                tags=list(d.tags),
            )
            if d.unreachable and m >= months - 3:
                res = CollectResult(
                    target, ResultStatus.ERROR, error_kind="timeout", error="no answer within 20 s"
                )
                # Judged on its dates on record and its last facts, as itaudit.scan does.
                aged = _age_verdicts(dm, _context(city, dm, day), _facts(dm))
                store.record_result(scan_id, res, aged, now=now)
                continue
            res = CollectResult(target, ResultStatus.OK, facts=_facts(dm))
            store.record_result(scan_id, res, _verdicts(city, dm, m, day), now=now)
        store.finish_scan(scan_id, now=now)
    return city, store


def main(argv: list[str] | None = None) -> int:
    """Write the synthetic city's reports (for docs/img): ``python tests/report_city.py OUT_DIR [N]``."""
    import sys

    from reports.monthly import write_monthly
    from reports.plan import write_plan
    from reports.worklist import write_worklist

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "report-samples")
    n = int(args[1]) if len(args) > 1 else 180
    out.mkdir(parents=True, exist_ok=True)
    db = out / "springfield.db"
    for p in out.glob("springfield.db*"):
        p.unlink()
    city, store = build(db, n=n, months=14, hostile=False)
    as_of = dt.date(2026, 10, 25)
    budget = {
        "101-1410-5740": {2027: 60000, 2028: 60000, 2029: 60000, 2030: 60000, 2031: 60000},
        "101-1410-5310": {2027: 40000, 2028: 40000, 2029: 40000, 2030: 40000, 2031: 40000},
    }
    for p in (
        write_monthly(city, store, as_of=as_of, out_dir=out, formats=("html", "pdf", "md", "json"))
        + write_plan(
            city, store, as_of=as_of, out_dir=out, formats=("html", "pdf", "csv", "xlsx"), budgeted=budget
        )
        + write_worklist(city, store, as_of=as_of, out_dir=out, formats=("html", "csv"))
    ):
        print(p)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Exploited vulnerabilities: CISA KEV flags joined by CVE ID to version-range knowledge.

KEV says which flaws criminals exploit (and which in ransomware campaigns); it has no
version ranges. Whether a flaw affects *this* device's version comes from the CVE records
in ``vulns.json`` (``itaudit.vulns``). Two checks, so that a manager never reads a guess as
a fact: VULN-001 lists only flaws the version data confirms; VULN-002 lists the ones IT
must confirm by hand, each with the reason.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass

from checks._common import internet_facing, knowledge_of, labour, lifecycle_of, name_of, refs, unknown_result
from itaudit.checking import CheckContext, check
from itaudit.knowledge import KevEntry, Knowledge, product_for
from itaudit.model import CheckResult, DeviceFacts, Severity, Status
from itaudit.vulns import AFFECTED, MAYBE, Verdict, ecosystem_for, windows_version

MAX_LISTED = 10
# Distribution kernels carry backported fixes: the upstream ranges in the kernel's CVE
# records say nothing about "5.15.0-91-generic". Their answer needs the distribution's data.
_DISTRO = {
    "ubuntu", "debian", "rhel", "rocky-linux", "almalinux", "centos", "centos-stream", "oracle-linux",
    "sles", "opensuse", "fedora", "alpine-linux", "amazon-linux", "proxmox-ve",
}
# Products whose version string always shows its rebuild or hotfix suffix when there is one
# (IOS XE "17.9.4a", PAN-OS "10.1.9-h3", ASA "9.16(4)19"), so "10.1.9" is older than
# "10.1.9-h3". Elsewhere a missing suffix may be a build the device did not report (ESXi
# "7.0.3" without its build, SonicOS "7.0.1" without "-5111"): a boundary inside it is "maybe".
_COMPLETE_VERSIONS = {"cisco-ios-xe", "cisco-ios", "cisco-asa", "pan-os", "fortios", "junos", "windows",
                      "windows-server"}


@dataclass
class _Assessment:
    product: str
    version: str | None
    hits: list[tuple[KevEntry, Verdict]]
    kev_date: str
    vulns_date: str

    def having(self, status: str) -> list[tuple[KevEntry, Verdict]]:
        return [(e, v) for e, v in self.hits if v.status == status]


def _version(facts: DeviceFacts, product: str) -> tuple[str | None, bool]:
    """The most exact version string the device gave, and whether it is exact enough."""
    sw = facts.software
    if product.startswith("windows"):
        return windows_version(sw.os_version, sw.os_build), True
    base = sw.os_version or sw.firmware
    raw = sw.os_build
    # The collector keeps the raw string ("10.1.9-h3", "7.0.1-5111") when it differs from
    # the normalised one: use it when it extends the normalised version.
    if base and raw and raw.strip().startswith(base.strip()):
        base = raw.strip()
    return base, product in _COMPLETE_VERSIONS


def judge(kn: Knowledge, product: str, version: str | None, *, precise: bool | None = None,
          released: dt.date | None = None, installed: dict[str, str] | None = None,
          kernel: str | None = None) -> list[tuple[KevEntry, Verdict]]:
    """A verdict for every KEV entry of ``product``'s family at ``version`` (one rule for the
    check and for ``bench/vuln_eval.py``).

    For a Linux distribution the family is the kernel's KEV entries, judged on the running
    ``kernel`` with the distribution's fixed kernel where its data gives one; to them come
    the KEV CVEs of distribution packages (OSV) that concern this host (data for its
    distribution, or a listed package installed), judged on ``installed`` (binary package
    -> version).
    """
    if precise is None:
        precise = product in _COMPLETE_VERSIONS
    data = kn.vulns()
    key = "windows" if product.startswith("windows") else product
    entries = list(kn.kev_matches(product))
    ecosystem = None
    kernel_cves: set[str] = set()
    if product in _DISTRO:
        ecosystem = ecosystem_for(product, version)
        kernel_cves = {e.cve for e in entries}
        extra = data.package_candidates(ecosystem, installed)
        entries += [e for e in map(kn.kev_entry, extra) if e is not None and e.cve not in kernel_cves]
    hits = []
    for e in entries:
        pv = (data.assess_packages(e.cve, ecosystem, installed, kernel=kernel, kernel_cve=e.cve in kernel_cves,
                                   released=released)
              if product in _DISTRO else None)
        if pv is not None:
            hits.append((e, pv))
            continue
        v = data.assess(e.cve, key, version, released=released, precise=precise, listed=e.date_added)
        if product in _DISTRO and v.status == MAYBE:
            v = Verdict(v.cve, MAYBE, "the distribution's fixed kernel version is not in the shipped data",
                        source=v.source)
        hits.append((e, v))
    return hits


# VULN-001 and VULN-002 run one after the other on the same facts: judge once (per thread).
_memo = threading.local()


def assess(facts: DeviceFacts, ctx: CheckContext) -> _Assessment | CheckResult:
    """Verdict per KEV entry of the device's product family, or an ``unknown`` result."""
    last = getattr(_memo, "last", None)
    if last is not None and last[0] is facts and last[1] is ctx:
        return last[2]
    result = _assess(facts, ctx)
    _memo.last = (facts, ctx, result)
    return result


def _assess(facts: DeviceFacts, ctx: CheckContext) -> _Assessment | CheckResult:
    kn = knowledge_of(ctx)
    product = product_for(kn, facts.software)
    if product is None or not kn.kev_knows(product):
        return unknown_result(
            summary=f"We could not match {name_of(facts, ctx)}'s software to the exploited-vulnerability catalog.",
            detail=f"product {product or 'not identified'}",
            missing=["software.product"],
        )
    version, precise = _version(facts, product)
    life = lifecycle_of(facts, ctx)
    released = life.release_date if isinstance(life.release_date, dt.date) else None
    pkgs = facts.patching.packages
    installed = {p.name: p.version for p in pkgs} if pkgs else None
    hits = judge(kn, product, version, precise=precise, released=released, installed=installed,
                 kernel=facts.software.kernel)
    dates = kn.data_dates()
    return _Assessment(product, version, hits, dates["kev"], dates["vulns"])


def _data_line(a: _Assessment) -> str:
    return f"KEV catalog dated {a.kev_date}; version data (CVE records) dated {a.vulns_date}."


def _listing(items: list[tuple[KevEntry, Verdict]], *, ransomware: bool) -> str:
    parts = []
    for e, v in items[:MAX_LISTED]:
        extra = [f"fixed in {v.fixed}"] if v.fixed else []
        extra.append(f"CISA due {e.due_date}" if e.due_date else "no CISA due date")
        if ransomware and e.ransomware:
            extra.append("used by ransomware")
        parts.append(f"{e.cve} {e.name} ({'; '.join(extra)}): {v.reason}")
    more = f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "; ".join(parts) + more


@check(
    "VULN-001",
    title="Runs a version with known exploited vulnerabilities (CISA KEV, version confirmed)",
    severity="high",
    **refs("VULN-001"),
)
def vuln_kev(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device's exact version is affected by flaws in CISA's Known Exploited Vulnerabilities catalog.

    KEV lists vulnerabilities that criminals are exploiting now, with a due date by which
    US federal agencies must fix them (good guidance for a city too). KEV has no version
    ranges: it only says which CVEs to look at for the device's product (``kev_products.json``).
    Each of those CVEs is then checked against the affected and fixed versions in its CVE
    record (``vulns.json``: the vendor's own data, CISA's enrichment as the fallback), and
    this check fails only for CVEs whose range contains the device's version. A CVE
    published before the running release came out is not listed unless the data says so.
    CVEs the data cannot settle go to VULN-002 ("may be affected — IT to confirm").
    Critical when a confirmed CVE is used in ransomware campaigns (KEV
    ``knownRansomwareCampaignUse = Known``), or the device is internet-facing, or its
    software no longer receives fixes at all.
    """
    a = assess(facts, ctx)
    if isinstance(a, CheckResult):
        return a
    if not a.version:
        return unknown_result(
            summary=f"We cannot tell which exploited flaws affect {name_of(facts, ctx)} without its software version.",
            missing=["software.os_version"],
        )
    hits = a.having(AFFECTED)
    maybe = a.having(MAYBE)
    if not hits:
        open_note = f"; {len(maybe)} more need IT to confirm (VULN-002)" if maybe else ""
        return CheckResult(
            Status.PASS,
            summary=f"No flaw that criminals exploit is confirmed for {name_of(facts, ctx)}'s version{open_note}.",
            evidence=f"{a.product} {a.version}: {len(a.hits)} KEV entries for the product checked against their "
            f"version ranges; {len(a.hits) - len(maybe)} do not affect this version. {_data_line(a)}",
        )
    life = lifecycle_of(facts, ctx)
    ransomware = [e for e, _ in hits if e.ransomware]
    critical = bool(ransomware) or internet_facing(facts, ctx) or life.status == "eol"
    n = len(hits)
    rw = f", {len(ransomware)} of them used in ransomware attacks" if ransomware else ""
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} runs a version with {n} flaw{'s' if n != 1 else ''} that criminals are "
        f"actively exploiting{rw}: update it now.",
        detail=f"{a.product} {a.version}: the CVE records' version ranges confirm each listed CVE"
        + (f"; {len(maybe)} more need IT to confirm (VULN-002)" if maybe else "")
        + (f"; this release no longer receives fixes ({life.reason})" if life.status == "eol" else ""),
        evidence=_listing(hits, ransomware=True) + f". {_data_line(a)}",
        remediation="Install the fixed release named for each CVE (or the vendor's mitigation) before CISA's "
        "due date.",
        cost=labour(ctx, "patch", "update to the fixed release"),
        severity=Severity.CRITICAL if critical else None,
    )


@check(
    "VULN-002",
    title="May be affected by known exploited vulnerabilities (IT to confirm)",
    severity="medium",
    **refs("VULN-002"),
)
def vuln_kev_unconfirmed(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """Exploited flaws (CISA KEV) for the device's product that the version data cannot settle.

    For each KEV CVE of the product whose CVE record does not say whether the device's
    version is affected, this check says so with the reason: no record in the shipped data,
    a record without usable version numbers, a version the comparator cannot read or that
    leaves out the build a fix names, a distribution package whose fixed version is not in
    the data. IT confirms each by hand. Never more than medium: a guess is not a finding
    that criminals are exploiting the device.
    """
    a = assess(facts, ctx)
    if isinstance(a, CheckResult):
        return a
    maybe = a.having(MAYBE)
    if not maybe:
        return CheckResult(
            Status.PASS,
            summary=f"Every exploited flaw listed for {name_of(facts, ctx)}'s product is settled by version data.",
            evidence=f"{a.product} {a.version}: {len(a.hits)} KEV entries checked. {_data_line(a)}",
        )
    reasons = Counter(v.reason.split(" (")[0] for _, v in maybe)
    why = "; ".join(f"{r} ({c})" for r, c in reasons.most_common(3))
    n = len(maybe)
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} may be affected by {n} flaw{'s' if n != 1 else ''} that criminals exploit "
        f"— IT to confirm: {why}.",
        detail=f"{a.product} {a.version or 'version unknown'}: the shipped version data cannot say whether these "
        "CVEs affect this version.",
        evidence=_listing(maybe, ransomware=False) + f". {_data_line(a)}",
        remediation="For each CVE read the vendor advisory, compare its fixed version with this device's, and "
        "update if the device is older; `itaudit data update` may settle some of them.",
        cost=labour(ctx, "patch", "review the advisories"),
    )

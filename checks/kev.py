"""Known exploited vulnerabilities: CISA KEV entries for the device's product family."""

from __future__ import annotations

from checks._common import internet_facing, knowledge_of, labour, lifecycle_of, name_of, refs, unknown_result
from itaudit.checking import CheckContext, check
from itaudit.knowledge import product_for
from itaudit.model import CheckResult, DeviceFacts, Severity, Status

# Families whose patch date we collect: KEV entries older than the last install are
# assumed fixed; without that date we cannot narrow the family list and say unknown.
_PATCHED_OS = {
    "windows",
    "windows-server",
    "windows-server-core",
    "ubuntu",
    "debian",
    "rhel",
    "rocky-linux",
    "almalinux",
    "centos",
    "centos-stream",
    "oracle-linux",
    "sles",
    "opensuse",
    "fedora",
    "alpine-linux",
    "amazon-linux",
    "proxmox-ve",
}
MAX_LISTED = 10


@check(
    "VULN-001",
    title="Product family has known exploited vulnerabilities (CISA KEV)",
    severity="high",
    **refs("VULN-001"),
)
def vuln_kev(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The device runs a product family with flaws in CISA's Known Exploited Vulnerabilities catalog.

    KEV lists vulnerabilities that criminals are exploiting now, with a due date by which
    US federal agencies must fix them (good guidance for a city too). KEV has no version
    ranges, so the match is by vendor and product family (``kev_products.json``) and is
    narrowed by time: for operating systems whose update date we collect, only entries
    added after the last update count (older ones are assumed patched); for firmware,
    only entries added after the running release came out. A match therefore means
    "check these advisories against your exact version", not proof of exposure.
    Critical when an entry is used in ransomware campaigns, or the device is internet-
    facing, or its software no longer receives fixes at all.
    """
    kn = knowledge_of(ctx)
    product = product_for(kn, facts.software)
    if product is None or not kn.kev_knows(product):
        return unknown_result(
            summary=f"We could not match {name_of(facts, ctx)}'s software to the exploited-vulnerability catalog.",
            detail=f"product {product or 'not identified'}",
            missing=["software.product"],
        )
    life = lifecycle_of(facts, ctx)
    if product in _PATCHED_OS:
        since = facts.patching.last_patched
        if since is None:
            return unknown_result(
                summary=f"We cannot tell which exploited flaws affect {name_of(facts, ctx)} without its last "
                "update date.",
                missing=["patching.last_patched"],
            )
        basis = f"added to KEV after the last update ({since.isoformat()})"
    else:
        since = life.release_date if hasattr(life.release_date, "isoformat") else None
        basis = (
            f"added to KEV after release {life.cycle} came out ({since.isoformat()})"
            if since
            else "all entries for the family (running release date unknown)"
        )
    hits = kn.kev_matches(product, since=since)
    dates = kn.data_dates()["kev"]
    if not hits:
        return CheckResult(
            Status.PASS,
            summary=f"No actively exploited flaws listed for {name_of(facts, ctx)}'s software since its last "
            f"update.",
            evidence=f"{product}: {basis}; KEV catalog dated {dates}",
        )
    ransomware = [h for h in hits if h.ransomware]
    critical = bool(ransomware) or internet_facing(facts, ctx) or life.status == "eol"
    listed = "; ".join(
        f"{h.cve} {h.name} (added {h.date_added}, CISA due {h.due_date}"
        f"{', used by ransomware' if h.ransomware else ''})"
        for h in hits[:MAX_LISTED]
    )
    more = f" and {len(hits) - MAX_LISTED} more" if len(hits) > MAX_LISTED else ""
    n = len(hits)
    return CheckResult(
        Status.FAIL,
        summary=f"{name_of(facts, ctx)} runs software with {n} flaw{'s' if n != 1 else ''} being actively "
        f"exploited "
        f"by criminals{' (some used in ransomware attacks)' if ransomware else ''}: check and patch now.",
        detail=f"{product} family match; {basis}. KEV has no version ranges: confirm each advisory against "
        f"version {facts.software.os_version or facts.software.firmware or '?'}"
        + (f"; this release no longer receives fixes ({life.reason})" if life.status == "eol" else ""),
        evidence=listed + more + f". KEV catalog dated {dates}.",
        remediation="For each CVE read the vendor advisory, confirm whether this version is affected, and "
        "apply the fixed release or mitigation before CISA's due date.",
        cost=labour(ctx, "patch", "review the advisories and update"),
        severity=Severity.CRITICAL if critical else None,
    )

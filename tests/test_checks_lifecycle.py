"""EOL-00x through run_checks, on real version strings."""

from __future__ import annotations

import pytest
from checkhelp import AS_OF, ctx, facts, run

from itaudit import rules
from itaudit.model import DeviceFacts
from itaudit.policy import Policy

WIN10_PRO = {
    "os_family": "windows",
    "os_name": "Microsoft Windows 10 Pro",
    "os_version": "10.0.19045",
    "edition": "Professional",
}
UBUNTU_2204 = {"os_family": "linux", "os_name": "Ubuntu", "os_version": "22.04.4", "product": "ubuntu"}
UBUNTU_2404 = {"os_family": "linux", "os_name": "Ubuntu", "os_version": "24.04.1", "product": "ubuntu"}
CENTOS7 = {"os_family": "linux", "os_name": "CentOS Linux", "os_version": "7.9.2009"}
FORTI_72 = {"os_family": "fortios", "os_version": "7.2.5"}
DEBIAN12 = {"os_family": "linux", "os_name": "Debian GNU/Linux", "os_version": "12.5"}
SERVER_2012R2 = {
    "os_family": "windows",
    "os_name": "Microsoft Windows Server 2012 R2 Standard",
    "os_version": "6.3.9600",
}
UNKNOWN_OS = {"os_family": "linux", "os_name": "Ubuntu", "os_version": "foo"}

CASES = [
    ("EOL-001", "fail", facts(software=WIN10_PRO), ctx("workstation")),
    ("EOL-001", "fail", facts(software=CENTOS7), ctx("server")),
    ("EOL-001", "fail", facts(software=SERVER_2012R2), ctx("server")),
    ("EOL-001", "pass", facts(software=UBUNTU_2204), ctx("server")),
    ("EOL-001", "pass", facts(software=WIN10_PRO), ctx("workstation", policy=Policy(esu_purchased=True))),
    ("EOL-001", "unknown", facts(software=UNKNOWN_OS), ctx("server")),
    ("EOL-001", "unknown", facts(), ctx("server")),
    ("EOL-002", "fail", facts(software=UBUNTU_2204), ctx("server")),
    ("EOL-002", "pass", facts(software=UBUNTU_2404), ctx("server")),
    ("EOL-002", "pass", facts(software=CENTOS7), ctx("server")),
    ("EOL-002", "unknown", facts(software=UNKNOWN_OS), ctx("server")),
    ("EOL-003", "fail", facts(software=WIN10_PRO), ctx("workstation", policy=Policy(esu_purchased=True))),
    ("EOL-003", "fail", facts(software=DEBIAN12), ctx("server")),
    ("EOL-003", "pass", facts(software=UBUNTU_2404), ctx("server")),
    ("EOL-003", "unknown", facts(), ctx("server")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_lifecycle_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail or "Could not be checked: missing" in finding.summary


def test_eol001_plain_words_and_critical_on_firewall():
    f = run("EOL-001", facts(software=FORTI_72), ctx("firewall"))
    assert f.status.value == "fail"
    assert "unsupported software" in f.summary and "no longer receives security fixes" in f.summary
    assert f.severity.value == "critical"
    # A firewall's firmware is tied to its hardware: the cost is the replacement the capital plan
    # budgets this fiscal year (itaudit.rules.pull_year), priced by the one rule.
    pol = Policy()
    price = rules.replacement_price(pol, kind="firewall")
    assert (f.cost.kind, f.cost.amount, f.cost.fiscal_year) == (price.kind, price.amount, pol.fiscal_year(AS_OF))
    assert f.cost.basis.startswith("replacement firewall") and "tied to the hardware" in f.remediation
    assert "CISA CPG 1.0.1 1.E" in f.references and "CIS v8 2.2" in f.references
    # The same software on a virtual appliance costs staff time: there is no hardware to replace.
    vm = facts(software=FORTI_72)
    vm.software.virtualization = "kvm"
    g = run("EOL-001", vm, ctx("firewall"))
    assert g.cost.kind == "operating" and g.cost.basis.startswith("2 h")


def test_eol001_windows10_mentions_esu_option_and_hw004():
    f = run("EOL-001", facts(software=WIN10_PRO), ctx("workstation"))
    assert "Extended Security Updates" in f.remediation and "HW-004" in f.remediation
    assert f.severity.value == "high"


def test_eol001_unknown_names_missing_edition_for_windows_build_with_editions():
    sw = {"os_family": "windows", "os_name": "Windows", "os_version": "10.0.26100"}
    f = run("EOL-001", facts(software=sw), ctx("workstation"))
    assert f.status.value == "unknown"
    assert "edition" in f.summary


def test_eol003_esu_cost_is_year_two_price():
    # Windows 10 left support 2025-10-14; on 2026-11-23 the city is in its second ESU year.
    f = run("EOL-003", facts(software=WIN10_PRO), ctx("workstation", policy=Policy(esu_purchased=True)))
    assert f.cost.amount == 122 and f.cost.kind == "operating"


def test_findings_name_the_configured_device_first_and_the_host_second():
    f = facts(software=FORTI_72)
    f.identity.hostname = "FGT60E-prod"
    named = run("EOL-001", f, ctx("firewall", name="ch-fw01"))
    assert named.summary.startswith("ch-fw01 (host FGT60E-prod) runs unsupported software")
    same = run("EOL-001", f, ctx("firewall", name="fgt60e-PROD"))
    assert same.summary.startswith("fgt60e-PROD runs")  # no repeat when they are the same name
    assert run("EOL-001", f, ctx("firewall")).summary.startswith("FGT60E-prod runs")


def test_eol001_unifi_device_is_unknown_and_says_how_it_was_identified():
    """UniFi AP firmware is never judged by the UniFi Network Application's lifecycle (issue 18)."""
    from pathlib import Path

    from collectors import fingerprint, snmprec

    snap = snmprec.snapshot(Path(__file__).parent / "fixtures" / "snmp" / "unifi_uap_ac_pro.snmprec")
    device = DeviceFacts()
    fingerprint.apply(fingerprint.identify(snap), device, address="10.0.0.5")
    finding = run("EOL-001", device, ctx("wireless"))
    assert finding.status.value == "unknown", finding.summary
    assert "identified by family: rule unifi-ap" in finding.evidence

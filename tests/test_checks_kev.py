"""VULN-001 / VULN-002 against the shipped KEV snapshot (2026-08-07) and CVE records (vulns.json).

The versions are those of the demo fixtures (tests/fixtures/snmp, windows); the expected
answers are the vendor advisories' (see tests/fixtures/vuln/eval.json for the citations).
"""

from __future__ import annotations

import pytest
from checkhelp import ctx, facts, run

from checks.kev import judge
from itaudit.knowledge import Knowledge

FORTI_60 = {"os_family": "fortios", "os_version": "6.0.9", "product": "fortios"}
IOSXE = {"os_family": "ios-xe", "os_version": "17.9.4a", "product": "cisco-ios-xe"}
PANOS = {"os_family": "pan-os", "os_version": "10.1.9", "os_build": "10.1.9-h3", "product": "pan-os"}
SONIC = {"os_family": "sonicos", "os_version": "7.0.1", "os_build": "7.0.1-5111", "product": "sonicos"}
WIN10 = {
    "os_family": "windows",
    "os_name": "Microsoft Windows 10 Pro",
    "os_version": "10.0.19045",
    "os_build": "19045.6456",
    "edition": "Professional",
    "product": "windows",
}
CASES = [
    ("VULN-001", "fail", facts(software=FORTI_60), ctx("firewall")),
    ("VULN-001", "pass", facts(software=IOSXE), ctx("switch")),
    ("VULN-001", "unknown", facts(software={"os_family": "printer-os"}), ctx("printer")),
    ("VULN-001", "unknown", facts(software={"os_family": "fortios", "product": "fortios"}), ctx("firewall")),
    # KEV added CVE-2025-20352 (IOS and IOS XE SNMP) in 2025-09; its record is not shipped.
    ("VULN-002", "fail", facts(software=IOSXE), ctx("switch")),
    # RouterOS 7.15: CVE-2018-14847's record ends at 6.42; CVE-2018-7445 (no record) was
    # published before 7.15 came out.
    ("VULN-002", "pass", facts(software={"os_family": "routeros", "os_version": "7.15.3", "product": "routeros"}),
     ctx("router")),
    ("VULN-002", "fail", facts(software=PANOS), ctx("firewall")),
    ("VULN-002", "unknown", facts(software={"os_family": "printer-os"}), ctx("printer")),
]


@pytest.mark.parametrize(
    ("check_id", "status", "f", "c"), CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_kev_cases(check_id, status, f, c):
    finding = run(check_id, f, c)
    assert finding.status.value == status, finding.summary
    if status == "unknown":
        assert "missing facts:" in finding.detail


def test_confirmed_ransomware_flaws_make_the_firewall_critical():
    f = run("VULN-001", facts(software=FORTI_60), ctx("firewall"))
    assert f.severity.value == "critical"
    assert "actively exploiting" in f.summary and "used in ransomware attacks" in f.summary
    # FG-IR-22-398, FG-IR-23-097, FG-IR-24-015: 6.0.9 is inside each range; FG-IR-24-535 is 7.0 only.
    for cve in ("CVE-2022-42475", "CVE-2023-27997", "CVE-2024-21762"):
        assert cve in f.evidence
    assert "CVE-2024-55591" not in f.evidence and "CISA due" in f.evidence


def test_fixed_ios_xe_is_not_called_affected_by_the_web_ui_flaws():
    # cisco-sa-iosxe-webui-privesc-j22SaA4z: 17.9.4a is the fixed release.
    f = run("VULN-001", facts(software=IOSXE), ctx("switch"))
    assert f.status.value == "pass" and "CVE-2023-20198" not in f.evidence


def test_pan_os_101_gets_only_the_flaw_its_version_has_and_no_ransomware_words():
    f = run("VULN-001", facts(software=PANOS), ctx("firewall"))
    assert f.status.value == "fail"
    assert "CVE-2024-9474" in f.evidence and "fixed in 10.1.14-h6" in f.evidence
    for cve in ("CVE-2024-3400", "CVE-2024-0012"):  # 10.1 is not affected (vendor advisories)
        assert cve not in f.evidence
    # The 2026-08-07 catalog tags CVE-2024-9474 knownRansomwareCampaignUse = Known (it was
    # Unknown in 2025-08): "ransomware" follows the tag of the confirmed CVE, nothing else.
    assert "1 of them used in ransomware attacks" in f.summary and f.severity.value == "critical"


def test_unconfirmed_flaws_say_may_be_affected_and_are_never_critical_or_ransomware():
    f = run("VULN-002", facts(software=PANOS), ctx("firewall", tags=["internet-facing"]))
    assert f.status.value == "fail" and f.severity.value == "medium"
    assert "may be affected" in f.summary and "IT to confirm" in f.summary
    assert "no CVE record in the shipped data" in f.summary
    assert "ransomware" not in f.summary + f.evidence and "actively exploiting" not in f.summary


def test_sonicos_build_newer_than_the_last_affected_one_is_not_affected():
    # SNWLID-2024-0015: "7.0.1-5035 and older versions"; 7.0.1-5111 is past it.
    f = run("VULN-001", facts(software=SONIC), ctx("firewall"))
    assert "CVE-2024-40766" not in f.evidence
    # Without the build the device's "7.0.1" cannot be placed against 7.0.1-5035: maybe, not affected.
    nobuild = {k: v for k, v in SONIC.items() if k != "os_build"}
    assert run("VULN-001", facts(software=nobuild), ctx("firewall")).status.value == "pass"
    g = run("VULN-002", facts(software=nobuild), ctx("firewall"))
    assert "CVE-2024-40766" in g.evidence and "not precise enough" in g.evidence


def test_windows_build_and_ubr_decide():
    # The demo fixture's 19045.6456 (October 2025) is CVE-2025-59230's fix and past
    # CVE-2025-33073's (19045.5965); it predates 19045.6575 (CVE-2025-62215, KEV 2025-11),
    # 19045.6691 (CVE-2025-62221, KEV 2025-12) and 19045.6809 (CVE-2026-20805, KEV 2026-01).
    demo = run("VULN-001", facts(software=WIN10), ctx("workstation"))
    assert demo.status.value == "fail" and "3 flaws " in demo.summary
    for cve in ("CVE-2025-62215", "CVE-2025-62221", "CVE-2026-20805"):
        assert cve in demo.evidence
    assert "CVE-2025-59230" not in demo.evidence and "CVE-2025-33073" not in demo.evidence
    patched = run("VULN-001", facts(software=dict(WIN10, os_build="19045.6809")), ctx("workstation"))
    assert patched.status.value == "pass"
    old = dict(WIN10, os_build="19045.3803")  # December 2023 (tests/fixtures/windows/non-english-de)
    f = run("VULN-001", facts(software=old), ctx("workstation"))
    assert f.status.value == "fail" and "more" in f.evidence  # more than the 10 listed
    verdicts = {e.cve: v.status for e, v in judge(Knowledge.load(), "windows", "10.0.19045.3803")}
    assert verdicts["CVE-2024-21412"] == "affected"  # fixed in 19045.4046
    assert verdicts["CVE-2023-36025"] == "not_affected"  # fixed in 19045.3693
    no_ubr = dict(WIN10, os_build=None)
    g = run("VULN-002", facts(software=no_ubr), ctx("workstation"))
    assert "update level unknown" in g.summary
    assert run("VULN-001", facts(software=no_ubr), ctx("workstation")).status.value == "pass"


def test_unreadable_version_is_maybe_never_affected():
    weird = {"os_family": "fortios", "os_version": "build-abc", "product": "fortios"}
    assert run("VULN-001", facts(software=weird), ctx("firewall")).status.value == "pass"
    g = run("VULN-002", facts(software=weird), ctx("firewall"))
    assert "version unreadable" in g.summary + g.evidence

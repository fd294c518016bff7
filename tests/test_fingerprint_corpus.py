"""Identification on the real-recording development corpus (../shared/reference, GPL, read in place).

The corpus is never copied into the project: these tests read it where it lies and skip
when it is absent (a clone without ``../shared``). Under CI=true, a ``../shared/reference``
without the corpus is a failure, not a skip. Each recording is replayed in memory with the
SNMP collector's own requests (``collectors.snmprec``); ``bench/fingerprint_eval.py``
without ``--offline`` does the same over UDP against snmpsim.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from collectors import fingerprint as fp
from collectors import snmprec
from itaudit.model import DeviceFacts

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
CORPUS = REFERENCE / "snmp-field-corpus"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

FLOORS = {"os_family": 95.0, "version": 90.0, "model": 90.0, "serial": 90.0}


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not (CORPUS / "expected.jsonl").is_file():
        if IN_CI and REFERENCE.is_dir():
            pytest.fail(f"CI=true and {REFERENCE} exists, but the SNMP field corpus is missing")
        pytest.skip("SNMP field corpus (../shared/reference/snmp-field-corpus) not present")
    return CORPUS


def identify(corpus: Path, name: str) -> fp.Identification:
    return fp.identify(snmprec.snapshot(corpus / f"{name}.snmprec"))


@pytest.fixture(scope="module")
def evaluation(corpus):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import fingerprint_eval
    finally:
        sys.path.remove(str(ROOT / "bench"))
    expected = fingerprint_eval.load_expected(corpus)
    facts = fingerprint_eval.collect_offline(corpus, list(expected))
    return fingerprint_eval.score(expected, facts)


def test_corpus_floors_and_no_confidently_wrong_family(evaluation):
    totals, _misses, wrong = evaluation
    assert not wrong, wrong
    for field, floor in FLOORS.items():
        ok, known = totals[field]
        assert known >= 100, f"{field}: only {known} recordings with a known value"
        assert 100 * ok / known >= floor, f"{field}: {ok}/{known} below {floor}%"


def test_every_rule_cites_a_source_and_is_the_one_its_recordings_get(corpus):
    names = {json.loads(line)["name"] for line in (corpus / "expected.jsonl").read_text().splitlines()}
    for rule in fp.load_rules()["rules"]:
        assert rule.get("source"), rule["id"]
        for ref in rule.get("from", []):
            stem = ref.split("tests/snmpsim/")[1].split(".snmprec")[0]
            assert stem in names, (rule["id"], ref)
            assert identify(corpus, stem).rule == rule["id"], (rule["id"], stem)  # not shadowed


# --- look-alike pairs: each decided by a distinguishing fact, on real recordings -------------

def test_firepower_ftd_is_not_asa(corpus):
    ftd = identify(corpus, "ftd_3130")
    asa = identify(corpus, "asa")
    assert (ftd.os_family, ftd.os_version) == ("cisco-ftd", "7.4.1.1")  # not the embedded ASA 9.20
    assert asa.os_family == "cisco-asa"


def test_opnsense_is_not_pfsense_nor_plain_freebsd(corpus):
    ident = identify(corpus, "opnsense_vm")
    assert ident.os_family == "opnsense"
    assert ident.os_version == "21.1"  # the OPNsense branch, not the 12.1 HardenedBSD kernel


def test_extreme_voss_on_an_extreme_sysobjectid_is_not_exos(corpus):
    voss = identify(corpus, "voss_7432cq")  # sysObjectID 1916.2.302, Extreme's own tree
    assert voss.sys_object_id.startswith("1.3.6.1.4.1.1916.")
    assert (voss.os_family, voss.os_version, voss.serial) == ("voss", "8.0.5.0", "1914Q-20413")
    assert identify(corpus, "xos").os_family == "exos"


def test_eaton_pdu_is_not_an_eaton_ups(corpus):
    pdu = identify(corpus, "eatonpdu_dbq")
    assert (pdu.os_family, pdu.kind, pdu.vendor) == ("eaton-epdu", "other", "Eaton")
    assert (pdu.model, pdu.serial) == ("DBQ145412", "ADO3051266")
    ups = identify(corpus, "eatonups_eaton-connectups")
    assert (ups.os_family, ups.kind) == ("eaton-ups", "ups")


def test_mge_card_vendor_is_decided_by_the_model_not_the_enterprise_number(corpus):
    # MGE's enterprise 705 is shared by Eaton (ex-MGE Office Protection) and Schneider
    # (Galaxy) products: the family says "MGE MIB", the vendor comes from the model name.
    ident = identify(corpus, "eaton-mgeups_93ps")  # upsmgIdentFamilyName '93PS'
    assert (ident.os_family, ident.vendor, ident.serial) == ("mge-ups", "Eaton (MGE)", "H2652000009")
    bare = identify(corpus, "eaton-mgeups_comet")  # only the system group answers: sysDescr 'Comet'
    assert (bare.os_family, bare.vendor) == ("mge-ups", "Eaton (MGE)")
    rule = next(r for r in fp.load_rules()["rules"] if r["id"] == "mge-ups")
    assert rule["vendor"].startswith("MGE UPS Systems")  # the answer when the model says nothing


def test_routeros_needs_routeros_evidence(corpus):
    ident = identify(corpus, "routeros_rb750gr3")
    assert (ident.os_family, ident.os_version, ident.model) == ("routeros", "7.7", "RB750Gr3")


def test_phone_adapter_and_power_supply_are_not_switches_or_aps(corpus):
    spa = identify(corpus, "ciscospa")  # Cisco SB subtree 9.6.1.23: an ATA, not an SB switch
    assert (spa.os_family, spa.kind) == ("cisco-spa", "other")
    usp = identify(corpus, "unifi-usp_rps")  # 'USP-RPS 6.6.61' looks like UniFi AP/switch firmware
    assert (usp.os_family, usp.kind) == ("unifi-usp", "other")


def test_appliance_kernel_is_not_its_version(corpus):
    for name in ("rubrik", "nutanix-aos", "dell-compellent", "ucos_cucm", "gaia_23900"):
        ident = identify(corpus, name)
        kernel = fp.kernel_version(ident.description)
        assert ident.os_family not in (None, "linux", "freebsd"), name
        if kernel:
            assert fp.normalize_version(ident.version_raw) != fp.normalize_version(kernel), name


def test_net_snmp_is_never_the_vendor(corpus):
    for line in (corpus / "expected.jsonl").read_text().splitlines():
        row = json.loads(line)
        if (row["sysObjectID"] or "").startswith(".1.3.6.1.4.1.8072."):
            ident = identify(corpus, row["name"])
            assert ident.vendor is None or "net-snmp" not in ident.vendor.lower(), row["name"]


def test_how_a_device_was_identified_is_recorded(corpus):
    ident = identify(corpus, "dlink_dgs-3120-24tc")
    facts = DeviceFacts()
    fp.apply(ident, facts, address="10.0.0.1")
    how = facts.evidence["snmp_identified_by"]
    assert "rule dlink" in how and "version: 1.3.6.1.2.1.16.19.2.0" in how
    assert (facts.software.os_family, facts.software.os_version) == ("dlink", "2.00.010")


# --- HOST-RESOURCES for a device no vendor rule recognises ----------------------------------

def test_generic_host_gets_processor_disks_and_host_uptime(corpus):
    facts = DeviceFacts()
    ident = identify(corpus, "linux_opensips")  # Net-SNMP on an EC2 Linux host: the generic rule
    fp.apply(ident, facts)
    hw = facts.hardware
    assert ident.rule == "linux"
    assert hw.cpu_model == "Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz"  # hrDeviceDescr, vendor id dropped
    assert hw.cpu_cores == 1  # one hrDeviceProcessor row, followed by rows of other types
    # hrStorageFixedDisk rows: "/" is 26211579 x 4096 bytes; tmpfs mounts are not disks
    assert [(d.name, d.size_bytes) for d in hw.disks] == [("/", 26211579 * 4096)]
    assert facts.identity.uptime_seconds == 1001962247 // 100  # hrSystemUptime, the host's
    assert "hrSystemUptime" in facts.evidence["snmp_identified_by"]


def test_processor_count_is_unknown_when_the_walk_may_have_cut_it(corpus):
    ident = identify(corpus, "linux_powermon")  # processor rows fill the rows read
    assert ident.cpu_model == "Intel(R) Xeon(R) CPU X5670 @ 2.93GHz"
    assert ident.cpu_cores is None


def test_recognised_gear_does_not_pay_for_host_resources(corpus):
    snap = snmprec.snapshot(corpus / "dsm.snmprec")  # the recording has hrStorage and hrDevice
    assert "1.3.6.1.2.1.25.1.1.0" in snmprec.load(corpus / "dsm.snmprec")
    assert fp.identify(snap).rule == "synology"
    assert not any(oid.startswith(("1.3.6.1.2.1.25.2.3", "1.3.6.1.2.1.25.3.2")) for oid in snap)

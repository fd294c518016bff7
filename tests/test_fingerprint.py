"""Fingerprint rules and value parsing, on plain SNMP snapshots (no network)."""

from __future__ import annotations

import datetime as dt

import pytest

from collectors import fingerprint as fp
from itaudit.model import DeviceFacts, Kind

DESCR, OBJID = fp.SYS["descr"], fp.SYS["objectid"]


def test_rules_are_well_formed():
    rules = fp.load_rules()["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    kinds = {k.value for k in Kind}
    for rule in rules:
        assert rule.get("source"), rule["id"]
        assert rule["kind"] in kinds, rule["id"]
        assert rule.get("when"), rule["id"]
        for k in rule.get("kinds", []):
            assert k["kind"] in kinds


def test_enterprise_numbers_are_dated_with_a_source():
    import json
    from importlib import resources

    data = json.loads(resources.files("itaudit").joinpath("data/enterprise_numbers.json").read_text())
    assert data["source"].startswith("https://www.iana.org/")
    assert dt.date.fromisoformat(data["date"])
    assert fp.enterprise_numbers()["9"] == "Cisco"


@pytest.mark.parametrize("raw,want", [
    ("v7.2.5,build1517,230606 (GA.F)", "7.2.5"),
    ("15.0(2)SE11", "15.0(2)SE11"),
    ("17.09.04a", "17.09.04a"),
    ("9.12(3)", "9.12(3)"),
    ("WC.16.10.0009", "16.10.0009"),
    ("10.1.14-h6", "10.1.14"),
    ("2S0_2000.003.504", "2000.003.504"),  # Kyocera: a dotted core beats a bare prefix digit
    ("Build 42", "42"),
])
def test_normalize_version(raw, want):
    assert fp.normalize_version(raw) == want


def test_numeric_core():
    assert fp.numeric_core("17.09.04a") == (17, 9, 4)
    assert fp.numeric_core("15.0(2)SE11") == (15, 0, 2)
    assert fp.numeric_core(None) == ()


@pytest.mark.parametrize("value,want", [
    (bytes([0x07, 0xE2, 5, 21, 0, 0, 0, 0]), dt.date(2018, 5, 21)),  # DateAndTime
    (b"03/15/2019", dt.date(2019, 3, 15)),
    (b"01/02/19", dt.date(2019, 1, 2)),
    (b"2020-07-01", dt.date(2020, 7, 1)),
    (b"13/45/2019", None),
    (b"garbage", None),
    (None, None),
])
def test_parse_date(value, want):
    assert fp.parse_date(value) == want


def test_text_is_bounded_and_binary_becomes_hex():
    assert fp.text(b"\x00\xff\xfe\x01" * 4).startswith("0x")
    assert len(fp.text(b"A" * 100_000, 300)) <= 300
    assert fp.text(b"  line\x07one  ") == "line one"
    assert fp.text(b"") is None


def test_unknown_device_gets_vendor_from_enterprise_number_and_kind_other():
    ident = fp.identify({DESCR: b"mystery box", OBJID: "1.3.6.1.4.1.41112.99.1"})
    assert ident.rule is None
    assert ident.vendor == "Ubiquiti"
    assert ident.kind == "other"
    facts = DeviceFacts()
    fp.apply(ident, facts, address="10.0.0.9")
    assert facts.identity.kind == "other" and "software.os_family" in facts.gaps


def test_empty_snapshot_does_not_crash():
    ident = fp.identify({})
    assert ident.kind == "other" and ident.vendor is None


def test_plan_fetches_vendor_objects_of_candidate_rules_only():
    plan = fp.plan({DESCR: b"x", OBJID: "1.3.6.1.4.1.12356.101.1.644"})
    assert "1.3.6.1.4.1.12356.101.4.1.1.0" in plan.gets  # fgSysVersion
    assert "1.3.6.1.4.1.25461.2.1.2.1.1.0" not in plan.gets  # no PAN-OS objects
    assert len(plan.gets) < 48


def test_rule_order_ios_xe_before_ios():
    descr = (b"Cisco IOS Software [Dublin], Catalyst L3 Switch Software (CAT9K_IOSXE), "
             b"Version 17.12.3, RELEASE SOFTWARE (fc7)")
    ident = fp.identify({DESCR: descr, OBJID: "1.3.6.1.4.1.9.1.2494"})
    assert (ident.os_family, ident.os_version, ident.kind) == ("ios-xe", "17.12.3", "switch")


def test_entity_chassis_row_is_preferred_over_stack_row():
    snap = {
        DESCR: b"Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E9, RELEASE",
        OBJID: "1.3.6.1.4.1.9.1.1208",
        f"{fp.ENT}.5.1": 11, f"{fp.ENT}.13.1": b"", f"{fp.ENT}.11.1": b"",
        f"{fp.ENT}.5.1001": 3, f"{fp.ENT}.13.1001": b"WS-C2960X-48FPD-L", f"{fp.ENT}.11.1001": b"FOC1932X0AB",
        f"{fp.ENT}.17.1001": bytes([0x07, 0xDF, 8, 1, 0, 0, 0, 0]),
    }
    ident = fp.identify(snap)
    assert (ident.model, ident.serial, ident.kind) == ("WS-C2960X-48FPD-L", "FOC1932X0AB", "switch")
    assert ident.os_version == "15.2(7)E9"
    assert ident.manufacture_date == dt.date(2015, 8, 1)


def test_port_count_and_speeds_from_if_mib():
    snap = {OBJID: "1.3.6.1.4.1.8072.3.2.10", DESCR: b"Linux h 6.1.0-18-amd64 #1 SMP",
            f"{fp.IF_TYPE}.1": 24, f"{fp.IF_TYPE}.2": 6, f"{fp.IF_TYPE}.3": 6,
            f"{fp.IF_HIGH_SPEED}.2": 1000, f"{fp.IF_HIGH_SPEED}.3": 10000}
    ident = fp.identify(snap)
    assert ident.port_count == 2
    assert ident.port_speeds == {"1G": 1, "10G": 1}
    assert ident.os_family == "linux" and ident.os_version == "6.1.0"


# --- issue 18 --------------------------------------------------------------------------

FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "snmp"


def test_unifi_device_firmware_is_not_judged_by_the_controller_lifecycle():
    import datetime as _dt

    from collectors import snmprec
    from itaudit.knowledge import Knowledge, lifecycle_for_facts

    ident = fp.identify(snmprec.snapshot(FIXTURES / "unifi_uap_ac_pro.snmprec"))
    facts = DeviceFacts()
    fp.apply(ident, facts, address="10.0.0.5")
    assert (facts.software.os_family, facts.software.product) == ("unifi", None)
    answer = lifecycle_for_facts(Knowledge.load(), facts.software, as_of=_dt.date(2026, 12, 3))
    assert answer.status == "unknown"  # not the UniFi Network Application's "eol"
    assert Knowledge.load().product_key("unifi network") == "unifi-network"  # the controller still resolves


def test_full_iana_registry_names_unlisted_enterprises_and_net_snmp_is_no_vendor():
    assert len(fp.iana_registry()) > 60000
    ident = fp.identify({DESCR: b"EH-8010FX", OBJID: "1.3.6.1.4.1.31926.1"})
    assert ident.rule is None and ident.vendor == fp.iana_registry()[31926]
    linux = fp.identify({DESCR: b"Linux h 6.1.0-18-amd64 #1 SMP", OBJID: "1.3.6.1.4.1.8072.3.2.10"})
    assert linux.vendor is None


def test_snmprec_values_and_replayed_walks_are_bounded():
    from collectors import snmprec

    assert snmprec.parse_value("4x", "00ff") == b"\x00\xff"
    assert snmprec.parse_value("6", ".1.3.6.1.4.1.9") == "1.3.6.1.4.1.9"
    assert snmprec.parse_value("64", "10.0.0.1") == "10.0.0.1"
    assert snmprec.parse_value("2", "oops") is None
    values = snmprec.load(FIXTURES / "hostile_values.snmprec")
    session = snmprec.RecordedSession(values)
    import asyncio

    rows = asyncio.run(session.walk(["1.3.6.1.2.1.47.1.1.1.1.11"], 5))
    assert 0 < len(rows) <= 5
    assert asyncio.run(session.get(["1.3.6.1.2.1.99.0"])) == {"1.3.6.1.2.1.99.0": None}


def test_relative_oid_is_under_the_sysobjectid_only():
    assert fp.relative_oid("1.3.6.1.4.1.890.1.5.8.20", {"objid": ".1.10.0"}) == "1.3.6.1.4.1.890.1.5.8.20.1.10.0"
    assert fp.relative_oid("1.3.6.1.4.1.259.10.1.43.101", {"objid": ".1.1.3.1.6.1", "up": 1}) == \
        "1.3.6.1.4.1.259.10.1.43.1.1.3.1.6.1"
    assert fp.relative_oid("1.3.6.1.4.1.9", {"objid": ".1", "up": 5}) is None
    assert fp.relative_oid("not an oid", {"objid": ".1"}) is None


def test_kernel_version_is_found_in_linux_and_freebsd_sysdescr():
    assert fp.kernel_version("Linux host 5.15.0-105-generic #115-Ubuntu SMP") == "5.15.0-105-generic"
    assert fp.kernel_version("FreeBSD fw 12.1-RELEASE-p19-HBSD FreeBSD") == "12.1-RELEASE"
    assert fp.kernel_version("US-8, 5.76.7.13442, Linux 3.6.5") == "3.6.5"
    assert fp.kernel_version("Cisco IOS Software") is None


def test_entity_placeholders_do_not_win_the_chassis_row():
    snap = {f"{fp.ENT}.11.1": b"<private>", f"{fp.ENT}.13.1": b"", f"{fp.ENT}.13.1000": b"WS-C4948E"}
    assert fp._chassis(snap)["model"] == b"WS-C4948E"


def test_every_extractor_oid_is_fetched_when_its_rule_is_a_candidate():
    plan = fp.plan({DESCR: b"AP130, HiveOS 8.1r2a build-178408", OBJID: "1.3.6.1.4.1.26928.1"})
    assert "1.3.6.1.4.1.26928.1.2.5.0" in plan.gets  # ahSerialNumber
    assert len(plan.gets) <= 48  # one GET request (MAX_GET_OIDS)


@pytest.mark.parametrize("objid", ["1.3.6.1.4.1.14988.1", "1.3.6.1.4.1.890.1.5.8.20",
                                   "1.3.6.1.4.1.259.10.1.43.101", 7, b"\xff"])
def test_wrong_types_and_empty_entity_tables_give_a_partial_answer(objid):
    """An agent answering wrong types everywhere (ints for text, text for ints) does not crash us."""
    snap = {DESCR: 42, OBJID: objid, fp.SYS["name"]: None, f"{fp.ENT}.5.1": b"3", f"{fp.ENT}.13.1": 12,
            f"{fp.ENT}.11.1": b"\x00\x01", "1.3.6.1.4.1.14988.1.1.4.4.0": 5, "1.3.6.1.2.1.33.1.1.2.0": [1]}
    ident = fp.identify(snap)
    assert ident.kind in {k.value for k in Kind}
    assert fp.chassis_candidates(snap) == ["1"]
    fp.plan(snap)
    facts = DeviceFacts()
    fp.apply(ident, facts, address="10.0.0.9")

"""Agents that misbehave, on real Net-SNMP snmpd peers: a partial identification with a reason, no hang.

Each scenario is its own snmpd process on loopback. The misbehaviour is a ``pass_persist``
extension (tests/snmp_bad_agent.py) whose answers snmpd forwards unchecked, the way a buggy
vendor extension makes a real agent loop (GETNEXT answering the same OID again), serve an
endless ENTITY-MIB table, answer wrong types, or register a table without rows (a
``pass_persist`` process, so the agent answers at a normal speed). The
system-group-only agent is snmpd with a VACM view of the system group alone, so every
GETNEXT past it is answered endOfMibView and every other GET noSuchObject.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers_snmp import _need_snmpd, _pick, _start_snmpd, _stop

from collectors import fingerprint as fp
from collectors.base import CollectContext
from collectors.snmp import SNMPCollector
from itaudit.credentials import SNMPCredential
from itaudit.model import ResultStatus, Target

pytestmark = pytest.mark.peers
COMMUNITY = "bad-agent-5Rt"
SCRIPT = Path(__file__).resolve().parent / "snmp_bad_agent.py"
SCENARIOS = ("loop", "huge", "wrongtypes", "empty", "systemonly")
# An enterprise number with no fingerprint rule: the device is unrecognised, so both the
# ENTITY-MIB and HOST-RESOURCES are read from it.
UNKNOWN_OBJID = ".1.3.6.1.4.1.42424.1.1"


def _conf(scenario: str) -> str:
    conf = f"sysObjectID {UNKNOWN_OBJID}\nsysDescr Bad agent {scenario}\nsysName bad-{scenario}\n"
    if scenario == "systemonly":
        return conf + (f"com2sec sysonly 127.0.0.0/8 {COMMUNITY}\n"
                       "group sysgrp v2c sysonly\n"
                       "view systemview included .1.3.6.1.2.1.1\n"
                       'access sysgrp "" any noauth exact systemview none none\n')
    return conf + (f"rocommunity {COMMUNITY} 127.0.0.0/8\n"
                   f"pass_persist .1.3.6.1.2.1.47 {sys.executable} {SCRIPT} {scenario}\n")


@pytest.fixture(scope="module")
def bad_agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    _need_snmpd()
    groups = [[f"127.0.21.{base + i}" for i in range(len(SCENARIOS))] for base in (1, 11, 21, 31)]
    addresses = _pick(groups, 1161)
    procs = []
    try:
        for scenario, address in zip(SCENARIOS, addresses, strict=True):
            tmp = tmp_path_factory.mktemp(f"snmpd-{scenario}")
            procs.append(_start_snmpd(tmp, _conf(scenario), address, 1161, COMMUNITY, 1))
        yield dict(zip(SCENARIOS, addresses, strict=True))
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="module")
def results(bad_agents, monkeypatch_module):
    monkeypatch_module.setenv("ITAUDIT_TEST_BAD_COMMUNITY", COMMUNITY)
    cred = SNMPCredential("bad", version="v2c", community_env="ITAUDIT_TEST_BAD_COMMUNITY")
    ctx = CollectContext("test", {"bad": cred}, timeout=20, concurrency=8)
    targets = [Target(address, "snmp", port=1161, name=name, credential="bad")
               for name, address in bad_agents.items()]
    return {r.target.name: r for r in SNMPCollector(exposure=False).collect_many(targets, ctx)}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_misbehaving_agent_gives_a_partial_identification_with_reasons(results, scenario):
    result = results[scenario]
    assert result.status is ResultStatus.OK, result.error
    facts = result.facts
    assert facts.identity.description == f"Bad agent {scenario}"
    assert facts.identity.sys_object_id == UNKNOWN_OBJID.strip(".")
    assert facts.identity.vendor == fp.vendor_of_enterprise(42424)  # IANA registry, not a guess
    assert facts.software.os_family is None
    assert facts.gaps["software.os_family"] == "no fingerprint rule matched this device"
    assert "software.os_version" in facts.gaps
    # Bounded: a loop or an endless table costs a few more requests, never an endless walk.
    assert int(facts.evidence["snmp_round_trips"]) <= 8, facts.evidence["snmp_round_trips"]


def test_a_looping_entity_walk_stops_and_reads_the_one_row_it_got(results):
    facts = results["loop"].facts
    assert facts.identity.model is None and facts.identity.serial is None  # the loop row has no model


def test_an_endless_entity_table_still_gives_the_chassis_row(results):
    facts = results["huge"].facts
    assert (facts.identity.model, facts.identity.serial) == ("HUGE-1", "SN-HUGE-1")


def test_wrong_types_are_not_taken_for_values(results):
    facts = results["wrongtypes"].facts
    assert facts.identity.serial is None  # an INTEGER where a serial string belongs
    assert facts.identity.model is None  # an OBJECT IDENTIFIER where a model name belongs


def test_system_group_only_agent_answers_end_of_mib_past_it(results):
    facts = results["systemonly"].facts
    assert facts.identity.hostname == "bad-systemonly"
    assert facts.identity.model is None and facts.identity.serial is None
    assert facts.hardware.cpu_model is None and facts.hardware.disks == []  # HOST-RESOURCES not in view

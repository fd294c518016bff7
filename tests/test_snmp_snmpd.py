"""SNMP collection against a real Net-SNMP snmpd: v2c, v3 authPriv, v1-only, errors."""

from __future__ import annotations

import time

import pytest

from collectors.base import CollectContext
from collectors.snmp import SNMPCollector
from itaudit.credentials import SNMPCredential
from itaudit.model import ResultStatus, Target

pytestmark = pytest.mark.peers


def v2c(monkeypatch, community: str, version: str = "v2c") -> CollectContext:
    monkeypatch.setenv("ITAUDIT_TEST_COMMUNITY", community)
    cred = SNMPCredential("c", version=version, community_env="ITAUDIT_TEST_COMMUNITY")
    return CollectContext("test", {"c": cred}, timeout=8)


def v3(monkeypatch, peer, auth_key: str | None = None, user: str | None = None,
       auth: str | None = None, priv: str | None = "default") -> CollectContext:
    monkeypatch.setenv("ITAUDIT_TEST_AUTH", auth_key or peer.auth_key)
    monkeypatch.setenv("ITAUDIT_TEST_PRIV", peer.priv_key)
    priv_protocol = peer.priv_protocol if priv == "default" else priv
    cred = SNMPCredential("c", version="v3", username=user or peer.v3_user, auth_protocol=auth or peer.auth_protocol,
                          auth_key_env="ITAUDIT_TEST_AUTH", priv_protocol=priv_protocol,
                          priv_key_env="ITAUDIT_TEST_PRIV" if priv_protocol else None)
    return CollectContext("test", {"c": cred}, timeout=8)


def target(peer) -> Target:
    return Target(peer.address, "snmp", port=peer.port, credential="c")


def test_v2c_identifies_linux_and_judges_exposure(snmpd, monkeypatch):
    result = SNMPCollector().collect(target(snmpd), v2c(monkeypatch, snmpd.community))
    assert result.status is ResultStatus.OK, result.error
    facts = result.facts
    assert facts.software.os_family == "linux"
    assert facts.identity.kind == "server"
    assert facts.identity.vendor is None  # Net-SNMP is the agent, not the vendor (issue 18)
    assert facts.identity.hostname == "snmpd-test"
    assert facts.identity.location == "City Hall server room <b>2</b>"
    assert facts.hardware.memory_bytes and facts.hardware.memory_bytes > 64 * 2**20  # hrMemorySize
    assert facts.hardware.port_count is None or facts.hardware.port_count >= 0
    assert facts.posture.snmp_default_communities == []
    assert {"v1", "v2c", "v3"} <= set(facts.posture.snmp_versions)
    assert snmpd.community not in repr(result)


def test_v3_authpriv(snmpd, monkeypatch):
    result = SNMPCollector().collect(target(snmpd), v3(monkeypatch, snmpd))
    assert result.status is ResultStatus.OK, result.error
    assert result.facts.identity.hostname == "snmpd-test"
    assert "v3" in result.facts.posture.snmp_versions
    assert result.facts.posture.snmp_v3_nopriv is False  # 'rouser ... priv' refuses authNoPriv


def test_v3_sha256_aes256(snmpd, monkeypatch):
    ctx = v3(monkeypatch, snmpd, user=f"{snmpd.v3_user}256", auth="sha256", priv="aes256")
    result = SNMPCollector(exposure=False).collect(target(snmpd), ctx)
    assert result.status is ResultStatus.OK, result.error
    assert result.facts.identity.hostname == "snmpd-test"


def test_v3_auth_without_privacy_is_flagged(snmpd, monkeypatch):
    ctx = v3(monkeypatch, snmpd, user=f"{snmpd.v3_user}-np", auth="sha", priv=None)
    result = SNMPCollector().collect(target(snmpd), ctx)
    assert result.status is ResultStatus.OK, result.error
    assert result.facts.posture.snmp_v3_nopriv is True


def test_v3_wrong_auth_key_is_an_auth_error(snmpd, monkeypatch):
    result = SNMPCollector(exposure=False).collect(target(snmpd), v3(monkeypatch, snmpd, "not-the-key-123"))
    assert result.status is ResultStatus.ERROR
    assert result.error_kind == "auth"
    assert "not-the-key" not in (result.error or "")


def test_wrong_community_is_reported_as_auth_when_the_agent_speaks_v3(snmpd, monkeypatch):
    result = SNMPCollector(exposure=False, request_timeout=0.5, retries=0).collect(
        target(snmpd), v2c(monkeypatch, "wrong-community"))
    assert result.status is ResultStatus.ERROR
    assert result.error_kind == "auth"
    assert "community" in result.error
    assert "wrong-community" not in result.error


def test_device_answering_v1_only(snmpd_v1only, monkeypatch):
    result = SNMPCollector(exposure_timeout=0.5).collect(
        target(snmpd_v1only), v2c(monkeypatch, snmpd_v1only.community, "v1"))
    assert result.status is ResultStatus.OK, result.error
    assert result.facts.identity.hostname == "v1-only"
    versions = result.facts.posture.snmp_versions
    assert "v1" in versions and "v2c" not in versions

    refused = SNMPCollector(exposure=False, request_timeout=0.5, retries=0).collect(
        target(snmpd_v1only), v2c(monkeypatch, snmpd_v1only.community, "v2c"))
    assert refused.status is ResultStatus.ERROR


def test_nothing_listening_times_out_with_a_clear_reason(monkeypatch):
    ctx = v2c(monkeypatch, "public")
    ctx.timeout = 4
    t0 = time.monotonic()
    result = SNMPCollector(request_timeout=0.5, retries=0, exposure_timeout=0.3).collect(
        Target("127.0.4.250", "snmp", port=1169, credential="c"), ctx)
    assert result.status is ResultStatus.ERROR
    assert result.error_kind == "timeout"
    assert "wrong community, unreachable" in result.error
    assert time.monotonic() - t0 < ctx.timeout + 1


def test_collect_many_yields_every_target(snmpd, monkeypatch):
    ctx = v2c(monkeypatch, snmpd.community)
    targets = [target(snmpd), Target("127.0.4.251", "snmp", port=1169, credential="c"),
               Target(snmpd.address, "snmp", port=snmpd.port, credential="missing")]
    results = list(SNMPCollector(exposure=False, request_timeout=0.4, retries=0).collect_many(targets, ctx))
    assert len(results) == 3
    by_addr = {(r.target.address, r.target.credential): r for r in results}
    assert by_addr[(snmpd.address, "c")].status is ResultStatus.OK
    assert by_addr[("127.0.4.251", "c")].error_kind == "timeout"
    assert by_addr[(snmpd.address, "missing")].error_kind == "auth"

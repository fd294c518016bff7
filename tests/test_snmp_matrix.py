"""Issue 16's SNMP matrix: real snmpd processes configured the ways a city's gear is, and the
exposure findings each must raise, whatever our own credential's outcome; plus every kind of
refusal named in plain words (usmStats reports) against the standard test snmpd."""

from __future__ import annotations

import pytest
from checkhelp import ctx as check_ctx

from collectors.base import CollectContext
from collectors.snmp import SNMPCollector
from itaudit.checking import run_checks
from itaudit.credentials import SNMPCredential
from itaudit.model import ResultStatus, Target
from itaudit.plugins import load_checks

pytestmark = pytest.mark.peers

USER, AUTH, PRIV = "cityv3", "auth-pass-Zk81", "priv-pass-Zk81"


def v3_ctx(monkeypatch, user=USER, auth=AUTH, priv=PRIV, auth_protocol="sha", priv_protocol="aes128"):
    monkeypatch.setenv("ITAUDIT_T16_AUTH", auth or "")
    monkeypatch.setenv("ITAUDIT_T16_PRIV", priv or "")
    cred = SNMPCredential("c", version="v3", username=user, auth_protocol=auth_protocol if auth else None,
                          auth_key_env="ITAUDIT_T16_AUTH" if auth else None,
                          priv_protocol=priv_protocol if priv else None,
                          priv_key_env="ITAUDIT_T16_PRIV" if priv else None)
    return CollectContext("test", {"c": cred}, timeout=8)


def v2c_ctx(monkeypatch, community):
    monkeypatch.setenv("ITAUDIT_T16_COMM", community)
    return CollectContext("test", {"c": SNMPCredential("c", version="v2c", community_env="ITAUDIT_T16_COMM")},
                          timeout=8)


def collect(address, port, ctx):
    return SNMPCollector().collect(Target(address, "snmp", port=port, credential="c"), ctx)


def net(facts) -> dict[str, str]:
    load_checks()  # judged as a switch: NET checks apply to network gear
    return {f.check_id: f.status.value for f in run_checks(facts, check_ctx("switch"))
            if f.check_id.startswith("NET-")}


def test_v2c_public_and_private_are_found_even_when_our_v3_login_fails(snmpd_matrix, monkeypatch):
    address = snmpd_matrix.start("pubpriv", "rocommunity public 127.0.0.0/8\nrwcommunity private 127.0.0.0/8\n"
                                 "sysName pubpriv\n", "public")
    # Our credential is a v3 user this agent does not have: the login fails, the probes still run.
    result = collect(address, snmpd_matrix.PORT, v3_ctx(monkeypatch))
    assert result.status is ResultStatus.ERROR and "usmStatsUnknownUserNames" in result.error
    assert result.facts.posture.snmp_default_communities == ["public", "private"]
    assert result.facts.identity.description.startswith("Linux")  # told by the default community's answer
    assert result.facts.identity.kind == "server"
    got = net(result.facts)
    assert got["NET-001"] == "fail" and got["NET-010"] == "fail"  # v1/v2c beside (user-less) v3
    load_checks()
    f = next(f for f in run_checks(result.facts, check_ctx("switch")) if f.check_id == "NET-001")
    assert f.severity.value == "critical"  # a default write community


def test_v3_authpriv_plus_public(snmpd_matrix, monkeypatch):
    address = snmpd_matrix.start("v3pub", f'createUser {USER} SHA "{AUTH}" AES "{PRIV}"\nrouser {USER} priv\n'
                                 "rocommunity public 127.0.0.0/8\nsysName v3pub\n", "public")
    result = collect(address, snmpd_matrix.PORT, v3_ctx(monkeypatch))
    assert result.status is ResultStatus.OK, result.error
    po = result.facts.posture
    assert po.snmp_default_communities == ["public"] and po.snmp_v3_nopriv is False
    assert {"v2c", "v3"} <= set(po.snmp_versions)
    got = net(result.facts)
    assert (got["NET-001"], got["NET-002"], got["NET-003"], got["NET-010"]) == ("fail", "pass", "pass", "fail")


def test_v3_noauthnopriv_accepted(snmpd_matrix, monkeypatch):
    address = snmpd_matrix.start(
        "noauth", f'createUser {USER} SHA "{AUTH}" AES "{PRIV}"\nrouser {USER} noauth\n'
        "createUser opsview\nrouser opsview noauth\nrocommunity ready-Zk81 127.0.0.0/8\nsysName noauth\n",
        "ready-Zk81")
    # A city credential without authentication at all: its traffic is neither signed nor encrypted.
    plain = collect(address, snmpd_matrix.PORT, v3_ctx(monkeypatch, user="opsview", auth=None, priv=None))
    assert plain.status is ResultStatus.OK, plain.error
    assert plain.facts.posture.snmp_v3_nopriv is True and net(plain.facts)["NET-003"] == "fail"
    # An authPriv credential on an agent that also lets the same user in without auth or privacy.
    strong = collect(address, snmpd_matrix.PORT, v3_ctx(monkeypatch))
    assert strong.status is ResultStatus.OK, strong.error
    assert strong.facts.posture.snmp_v3_nopriv is True and net(strong.facts)["NET-003"] == "fail"


@pytest.mark.parametrize(("case", "words"), [
    ("user", "does not know SNMPv3 user"),
    ("auth", "wrong auth key"),
    ("priv", "wrong privacy key"),
    ("community", "not v2c with our community"),
    ("timeout", "no answer"),
])
def test_each_refusal_is_named(snmpd, monkeypatch, case, words):
    port = snmpd.port
    if case == "community":
        ctx = v2c_ctx(monkeypatch, "not-the-community")
    elif case == "timeout":
        ctx, port = v2c_ctx(monkeypatch, snmpd.community), snmpd.port + 7  # nothing listens there
    else:
        ctx = v3_ctx(monkeypatch, user="nosuchuser" if case == "user" else snmpd.v3_user,
                     auth="wrong-auth-Zk81" if case == "auth" else snmpd.auth_key,
                     priv="wrong-priv-Zk81" if case == "priv" else snmpd.priv_key)
    result = collect(snmpd.address, port, ctx)
    assert result.status is ResultStatus.ERROR
    assert words in result.error, result.error
    assert result.error_kind == ("timeout" if case == "timeout" else "auth")
    if case != "timeout":  # the agent answered something: the exposure probes ran anyway
        assert result.facts.posture.snmp_default_communities == []
        assert "v3" in result.facts.posture.snmp_versions

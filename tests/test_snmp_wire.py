"""The SNMPv1/v2c codec (collectors.snmpwire) on fixed bytes.

The reference messages were encoded once by pysnmp 7.1 / pyasn1 (an independent BER
encoder) and are kept here as hex, so these tests need no SNMP library. The codec is also
exercised end to end by every v1/v2c test against snmpd and snmpsim.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors import snmpwire as w

# GetResponse, v2c, community "public", request-id 1234567: sysDescr "Cisco <b>",
# sysObjectID, TimeTicks 2^32-1, an IpAddress, Integer -5, Counter64 2^64-1,
# noSuchObject and endOfMibView.
RESPONSE = bytes.fromhex(
    "3081b602010104067075626c6963a281a8020312d68702010002010030819a301506082b060102010101000409436973636f"
    "203c623e301506082b0601020101020006092b0601040109019054301106082b06010201010300430500ffffffff3015060d"
    "2b06010201041401017f00000140047f000001300d06082b060102010201000201fb3018060b2b060102011f010101060146"
    "0900ffffffffffffffff300d06092b060104018c9a40018000300806042b0601098200")
# GetBulk, v2c, "private", request-id 42, max-repetitions 12, entPhysicalClass + ifType
BULK = bytes.fromhex(
    "3039020101040770726976617465a52b02012a02010002010c3020300f060b2b060102012f01010101050500300d06092b06"
    "010201020201030500")
# Get, v1, "public", request-id 2^31-1, sysDescr.0
GET_V1 = bytes.fromhex(
    "302902010004067075626c6963a01c02047fffffff020100020100300e300c06082b060102010101000500")


def test_requests_match_an_independent_encoder():
    assert w.encode_request(1, b"private", w.GETBULK, 42, ["1.3.6.1.2.1.47.1.1.1.1.5", "1.3.6.1.2.1.2.2.1.3"],
                            0, 12) == BULK
    assert w.encode_request(0, b"public", w.GET, 2**31 - 1, ["1.3.6.1.2.1.1.1.0"]) == GET_V1


def test_response_values_in_plain_form():
    version, community, rid, es, ix, binds = w.decode_response(RESPONSE)
    assert (version, community, rid, es, ix) == (1, b"public", 1234567, 0, 0)
    assert binds == [
        ("1.3.6.1.2.1.1.1.0", b"Cisco <b>"),
        ("1.3.6.1.2.1.1.2.0", "1.3.6.1.4.1.9.1.2132"),
        ("1.3.6.1.2.1.1.3.0", 2**32 - 1),
        ("1.3.6.1.2.1.4.20.1.1.127.0.0.1", "127.0.0.1"),
        ("1.3.6.1.2.1.2.1.0", -5),
        ("1.3.6.1.2.1.31.1.1.1.6.1", 2**64 - 1),
        ("1.3.6.1.4.1.200000.1", None),
        ("1.3.6.1.9", w.END),
    ]


def test_octets_are_bounded():
    binds = w.decode_response(RESPONSE, max_octets=5)[5]
    assert binds[0][1] == b"Cisco"


@pytest.mark.parametrize("data", [
    b"", b"\x30", RESPONSE[:-3], b"\x02\x01\x01", BULK,  # empty, truncated, not a message, a request
    RESPONSE.replace(b"\x82\x00", b"\x99\x00"),  # unknown value tag
    bytes.fromhex("3084ffffffff"),  # a length far past the datagram
    bytes.fromhex("300b020101040161a203020101"),  # PDU header cut short
])
def test_malformed_datagrams_are_rejected(data):
    with pytest.raises(w.WireError):
        w.decode_response(data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(data):
    with contextlib.suppress(w.WireError):  # any other exception fails the test
        w.decode_response(data)


@given(st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=40))
def test_oid_round_trip(arcs):
    oid = ".".join(map(str, [1, 3, *arcs]))
    tlv = w.encode_oid(oid)
    assert w.decode_oid(tlv[2:] if tlv[1] < 0x80 else tlv[2 + (tlv[1] & 0x7F):]) == oid


def test_bad_oids_are_refused():
    for oid in ("", "1", "3.1.2", "1.40.1", "1.3.x"):
        with pytest.raises(ValueError):
            w.encode_oid(oid)


def test_message_version_tells_v3_from_community_messages():
    from collectors.snmp import V3_DISCOVERY

    assert w.message_version(RESPONSE) == 1
    assert w.message_version(GET_V1) == 0
    assert w.message_version(V3_DISCOVERY) == 3
    with pytest.raises(w.WireError):
        w.decode_response(V3_DISCOVERY)  # v3 is not decoded, only recognised
    for junk in (b"", b"\x30", b"\x04\x03abc", RESPONSE[:3], b"\x30\x03\x04\x01\x03"):
        assert w.message_version(junk) is None

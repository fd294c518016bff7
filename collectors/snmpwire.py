"""SNMPv1/v2c messages as bytes: encode GET / GETNEXT / GETBULK, decode the Response.

Community-based SNMP has no security processing, so a request is a few nested BER TLVs
and a response is read with a small decoder: a tenth of the client CPU of a general ASN.1
library, which matters when a city's scan sends tens of thousands of messages. SNMPv3
stays with pysnmp (``collectors.snmp``). Pure: no I/O, no pysnmp.

Decoded values follow ``collectors.snmp``'s plain form: int (INTEGER, counters, gauges,
TimeTicks), bytes (OCTET STRING, Opaque; at most ``max_octets``), str (OBJECT IDENTIFIER,
IpAddress), None (noSuchObject, noSuchInstance) and ``END`` (endOfMibView). Anything
malformed raises ``WireError``; the caller drops that datagram like a corrupt packet.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

GET, GETNEXT, RESPONSE, GETBULK = 0xA0, 0xA1, 0xA2, 0xA5
MAX_OID_ARCS = 128  # arcs kept from an OID *value* (names are kept whole, as sent)


class WireError(ValueError):
    """A datagram that is not a well-formed SNMPv1/v2c Response."""


class _End:
    """endOfMibView: the agent has nothing after this OID."""

    def __repr__(self) -> str:
        return "END"


END = _End()


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


@lru_cache(maxsize=8192)
def encode_oid(oid: str) -> bytes:
    """Dotted OID -> BER TLV (cached: the same columns are asked of every device)."""
    arcs = [int(x) for x in oid.strip(".").split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise ValueError(f"not an OID: {oid[:80]!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


_NULL_VALUE = b"\x05\x00"


def encode_request(version: int, community: bytes, pdu: int, request_id: int, oids: list[str],
                   non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A GET/GETNEXT/GETBULK message (``version`` 0 = v1, 1 = v2c) asking for ``oids``."""
    binds = b"".join(_tlv(0x30, encode_oid(o) + _NULL_VALUE) for o in oids)
    second, third = (non_repeaters, max_repetitions) if pdu == GETBULK else (0, 0)
    body = _int(request_id) + _int(second) + _int(third) + _tlv(0x30, binds)
    return _tlv(0x30, _int(version) + _tlv(0x04, community) + _tlv(pdu, body))


def _read(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """One TLV header at ``pos``: (tag, start of value, end of value)."""
    if pos + 2 > end:
        raise WireError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise WireError("bad length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > end:
        raise WireError("truncated")
    return tag, pos, pos + length


def decode_oid(body: bytes, limit: int | None = None) -> str:
    """BER OID contents -> dotted string (at most ``limit`` arcs)."""
    if not body or body[-1] & 0x80:
        raise WireError("bad OID")
    arcs: list[int] = []
    value = 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            if not arcs:
                head = 0 if value < 40 else 1 if value < 80 else 2
                arcs += [head, value - 40 * head]
            else:
                arcs.append(value)
            value = 0
    return ".".join(map(str, arcs[:limit] if limit else arcs))


def _value(tag: int, body: bytes, max_octets: int) -> Any:
    if tag in (0x04, 0x44):  # OCTET STRING, Opaque
        return body[:max_octets]
    if tag == 0x02:
        return int.from_bytes(body, "big", signed=True) if body else 0
    if tag in (0x41, 0x42, 0x43, 0x46, 0x47):  # Counter32, Gauge32, TimeTicks, Counter64, UInteger32
        return int.from_bytes(body, "big")
    if tag == 0x06:
        return decode_oid(body, MAX_OID_ARCS)
    if tag == 0x40:
        if len(body) != 4:
            raise WireError("bad IpAddress")
        return ".".join(map(str, body))
    if tag in (0x80, 0x81):  # noSuchObject, noSuchInstance
        return None
    if tag == 0x82:
        return END
    if tag == 0x05:
        return ""
    raise WireError(f"unexpected value tag 0x{tag:02x}")


def message_version(data: bytes) -> int | None:
    """The msgVersion of an SNMP message (0 = v1, 1 = v2c, 3 = v3), or None if it is not one."""
    try:
        tag, pos, end = _read(data, 0, len(data))
        if tag != 0x30:
            return None
        tag, a, b = _read(data, pos, end)
    except WireError:
        return None
    if tag != 0x02 or not 0 < b - a <= 4:
        return None
    return int.from_bytes(data[a:b], "big", signed=True)


def decode_response(data: bytes, max_octets: int = 16384) -> tuple[int, bytes, int, int, int, list[tuple[str, Any]]]:
    """A Response message -> (version, community, request_id, error_status, error_index, varbinds)."""
    tag, pos, end = _read(data, 0, len(data))
    if tag != 0x30:
        raise WireError("not a message")
    tag, a, b = _read(data, pos, end)
    if tag != 0x02:
        raise WireError("no version")
    version = int.from_bytes(data[a:b], "big", signed=True)
    tag, a, pos = _read(data, b, end)
    if tag != 0x04:
        raise WireError("no community")
    community = data[a:pos]
    tag, pos, end = _read(data, pos, end)
    if tag != RESPONSE:
        raise WireError("not a Response PDU")
    head = []
    for _ in range(3):
        tag, a, pos = _read(data, pos, end)
        if tag != 0x02:
            raise WireError("bad PDU header")
        head.append(int.from_bytes(data[a:pos], "big", signed=True))
    tag, pos, end = _read(data, pos, end)
    if tag != 0x30:
        raise WireError("no varbind list")
    binds: list[tuple[str, Any]] = []
    while pos < end:
        tag, a, pos = _read(data, pos, end)
        if tag != 0x30:
            raise WireError("bad varbind")
        tag, c, d = _read(data, a, pos)
        if tag != 0x06:
            raise WireError("bad varbind name")
        name = decode_oid(data[c:d])
        tag, c, e = _read(data, d, pos)
        binds.append((name, _value(tag, data[c:e], max_octets)))
    return version, community, head[0], head[1], head[2], binds

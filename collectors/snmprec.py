"""Replay an snmpsim recording (``.snmprec``) in memory, with the SNMP collector's requests.

``RecordedSession`` answers ``get`` and ``walk`` like ``collectors.snmp._Session`` does on
the wire (a missing object is None; a walk stops at the end of its column or after
``max_rows`` rows), so ``collectors.snmp.gather`` fetches from a recording exactly what it
would fetch from the agent serving it. Used to evaluate the fingerprint rules on a folder
of real recordings in seconds (``bench/fingerprint_eval.py --offline`` and the corpus test);
the snmpsim path (``itaudit.sim.snmpfleet``) stays the check of the protocol edge.

Format: one ``OID|tag|value`` per line; tags are BER types (2 INTEGER, 4 OCTET STRING,
5 NULL, 6 OBJECT IDENTIFIER, 64 IpAddress, 65 Counter32, 66 Gauge32, 67 TimeTicks,
70 Counter64), an ``x`` suffix means the value is hex.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collectors import snmp
from collectors.fingerprint import Identification, identify, plan

MAX_OCTETS = 16384


def _key(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.split(".") if x.isdigit())


def parse_value(tag: str, raw: str) -> Any:
    """One recorded value -> what the collector hands to the fingerprint code."""
    hexed = tag.endswith("x")
    base = tag.rstrip("x")
    data = bytes.fromhex(raw) if hexed else None
    if base == "4":
        return (data if data is not None else raw.encode("utf-8", "surrogateescape"))[:MAX_OCTETS]
    if base == "6":
        return raw.strip(".")
    if base == "64":
        return ".".join(str(b) for b in data) if data is not None else raw
    if base == "5":
        return None
    if base in ("2", "65", "66", "67", "70"):
        try:
            return int(raw)
        except ValueError:
            return None
    return data if data is not None else raw.encode("utf-8", "surrogateescape")


def load(path: Path) -> dict[str, Any]:
    """A recording as ``{numeric OID: value}`` (malformed lines are skipped)."""
    values: dict[str, Any] = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            oid, sep, rest = line.rstrip("\r\n").partition("|")
            tag, sep2, raw = rest.partition("|")
            if not sep or not sep2 or not oid[:1].isdigit():
                continue
            try:
                values[oid.strip(".")] = parse_value(tag, raw)
            except ValueError:
                continue
    return values


class RecordedSession:
    """``get``/``walk`` over a recording, counting requests like the live session."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.order = sorted(values, key=_key)
        self.keys = [_key(o) for o in self.order]
        self.round_trips = 0

    async def get(self, oids: Sequence[str]) -> dict[str, Any]:
        if oids:
            self.round_trips += 1
        return {o: self.values.get(o) for o in dict.fromkeys(oids)}

    async def walk(self, columns: Sequence[str], max_rows: int, reps: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if columns:
            self.round_trips += 1
        for col in columns:
            i = bisect.bisect_right(self.keys, _key(col))
            n = 0
            while i < len(self.order) and n < max_rows and self.order[i].startswith(col + "."):
                out[self.order[i]] = self.values[self.order[i]]
                i += 1
                n += 1
        return out


async def _collect(values: dict[str, Any]) -> dict[str, Any]:
    session = RecordedSession(values)
    system = await session.get(snmp.SYSTEM_OIDS)
    return await snmp.gather(session, system, plan(system))


def snapshot(path: Path) -> dict[str, Any]:
    """What the SNMP collector would have read from the agent serving this recording."""
    return asyncio.run(_collect(load(path)))


def identify_recording(path: Path) -> Identification:
    return identify(snapshot(path))

#!/usr/bin/env python3
"""A misbehaving ENTITY-MIB extension for a real Net-SNMP snmpd (``pass_persist`` protocol).

snmpd starts ``snmp_bad_agent.py SCENARIO`` once, writes ``get``/``getnext`` and an OID on
its stdin, and sends whatever this answers, unchecked, to the manager: the way a buggy
vendor extension makes a real agent loop, answer wrong types or serve an endless table.
Scenarios:

- ``loop``: every GETNEXT in the subtree answers the same row again (OID not increasing);
- ``huge``: an endless entPhysicalTable, row 1 the chassis, every later row a port;
- ``wrongtypes``: three rows whose class is text, serial an integer, model an OID;
- ``empty``: the subtree is registered but has no rows.
"""

from __future__ import annotations

import sys

TABLE = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)
COLUMNS = (2, 5, 7, 11, 13)  # entPhysicalDescr, Class, Name, SerialNum, ModelName


def value(scenario: str, col: int, row: int) -> tuple[str, str]:
    if scenario == "wrongtypes":
        return {2: ("integer", "7"), 5: ("string", "chassis"), 7: ("ipaddress", "10.0.0.1"),
                11: ("integer", "123456"), 13: ("objectid", ".1.3.6.1.4.1.9.1.1")}[col]
    chassis = row == 1
    return {2: ("string", "Chassis" if chassis else f"Port {row}"),
            5: ("integer", "3" if chassis else "10"),
            7: ("string", "HUGE-1" if chassis else f"port{row}"),
            11: ("string", "SN-HUGE-1" if chassis else ""),
            13: ("string", "HUGE-1" if chassis else "")}[col]


def rows(scenario: str) -> int | None:
    return 3 if scenario == "wrongtypes" else None  # None: endless


def following(scenario: str, oid: tuple[int, ...]) -> tuple[int, int] | None:
    """The (column, row) after ``oid`` in column-major order, or None past the table."""
    limit = rows(scenario)
    if oid[:len(TABLE)] < TABLE:
        return COLUMNS[0], 1
    rest = oid[len(TABLE):]
    if oid[:len(TABLE)] > TABLE or not rest:
        return (COLUMNS[0], 1) if not rest and oid[:len(TABLE)] == TABLE else None
    col = rest[0]
    row = rest[1] if len(rest) > 1 else 0
    for c in COLUMNS:
        if c == col and (limit is None or row < limit):
            return c, row + 1
        if c > col:
            return c, 1
    return None


def answer(scenario: str, mode: str, raw: str) -> list[str]:
    """The lines to send back for one request (``-g`` GET, ``-n`` GETNEXT)."""
    oid = tuple(int(x) for x in raw.strip(".").split(".") if x.isdigit())
    if scenario == "empty":
        return ["NONE"]
    if scenario == "loop":
        if mode == "-n" or oid == TABLE + (5, 1):
            return ["." + ".".join(map(str, TABLE + (5, 1))), "integer", "3"]
        return ["NONE"]
    at: tuple[int, int] | None
    if mode == "-g":
        rest = oid[len(TABLE):]
        limit = rows(scenario)
        ok = (oid[:len(TABLE)] == TABLE and len(rest) == 2 and rest[0] in COLUMNS and rest[1] >= 1
              and (limit is None or rest[1] <= limit))
        at = (rest[0], rest[1]) if ok else None
    else:
        at = following(scenario, oid)
    if at is None:
        return ["NONE"]
    kind, text = value(scenario, *at)
    return ["." + ".".join(map(str, TABLE + at)), kind, text]


def main() -> None:
    scenario = sys.argv[1]
    modes = {"get": "-g", "getnext": "-n"}
    for line in sys.stdin:
        command = line.strip()
        if command == "PING":
            out = ["PONG"]
        elif command in modes:
            out = answer(scenario, modes[command], sys.stdin.readline().strip())
        elif command == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out = ["not-writable"]
        else:
            continue
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

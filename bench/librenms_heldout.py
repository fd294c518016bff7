"""Select held-out recordings from a LibreNMS checkout: city-type devices the rules were not written from.

The development corpus (``snmp-field-corpus``) is a subset of LibreNMS's own test data
(``tests/snmpsim/<name>.snmprec`` with ``tests/data/<name>.json``). A LibreNMS checkout
holds many more recordings; this module picks those that measure generalisation:

- not a corpus recording (by name), and not the same device and firmware as one: the same
  LibreNMS ``os`` with the same hardware and version strings, or the same sysObjectID and
  sysDescr;
- city-type: the LibreNMS ``os`` is one of the corpus's keys (group ``corpus-families``: the
  families the rules were written for, on other devices and firmware) or one of
  ``OTHER_CITY_KEYS`` below (group ``other-families``: gear a small city runs that the corpus
  has no recording of: pfSense, MikroTik SwOS, Cisco access points, MGE Galaxy, TrueNAS,
  CyberPower, printers, F5, NetApp ... and not carrier, cable, optical or PON gear);
- ``<name>@<context>.snmprec`` files are one SNMP context (a VLAN's bridge table) of another
  recording, not a device: left out;
- recordings with a ``tests/data`` JSON give family, kind, version, model and serial
  (``os.discovery.devices[0]``, as the corpus README describes); recordings without one
  still give the family, which LibreNMS's OS-detection test takes from the file name
  (``<os>.snmprec`` or ``<os>_<variant>.snmprec``), so they count for the family only.

The checkout is GPL data read in place: nothing from it is copied into the project.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# LibreNMS keys of gear a small city runs, outside the corpus's keys (judged by hand from
# each key's LibreNMS type and what the product is; carrier, cable-TV, optical-transport,
# PON, broadcast and mobile-operator equipment is left out on purpose).
OTHER_CITY_KEYS = frozenset({
    # firewalls, web security, load balancers
    "pfsense", "zywall", "zyxelusg", "barracudangfirewall", "fortiauthenticator", "fortisandbox",
    "mcafeewebgateway", "skyhighwebprotect", "ns-bsd", "secureplatform", "pixos", "cyberoam-utm",
    "f5", "fortiadc", "aloha", "loadbalancer", "velocloud", "viptela", "riverbed",
    # switches, routers, small-office and branch gear
    "swos", "arista_eos", "aos7", "dell-os10", "ftos", "dlink-dgs1250", "tplink", "trendnet",
    "netonix", "pepwave", "openwrt", "dd-wrt", "freshtomato", "asuswrt-merlin", "keeneticos",
    "rutos", "rutos-2xx", "rutos-rutm", "ironware", "fabos", "oneaccess", "adtran-aos",
    "microsens-g6", "ntron", "transition", "ruijie", "zyxelac", "zyxelnwa", "ciscome1200",
    "icr-os", "advantech", "cnos", "weos", "altalabs", "comtrol", "sixnet", "cumulus", "slxos",
    "hikvision-cam", "hikvision-nvr", "dahua-nvr", "vivotek",
    # wireless
    "ciscowap", "fortiap", "grandstream-ap", "altalabs-ap", "ruckuswireless-sz", "xirrus_aos",
    "moxa-awk", "airos-af", "ligoos", "cmm", "cmm4",
    # printers
    "canonprinter", "dell-laser", "epson", "fujifilmprinter", "okilan", "samsungprinter", "sharp",
    "utax", "zebra",
    # UPS, PDUs, power
    "cyberpower", "apc-mgeups", "eatonupsm2", "eaton-matrix", "socomec-ups", "powerwalker",
    "enlogic-pdu", "chatsworth-pdu", "apc-cpdu", "iboot", "digipower", "netmanplus", "abbups",
    "orvaldi-ups", "ts-bspdu", "vertiv-ita2", "webpower-smart2", "panduit-eagle", "conteg-pdu",
    "ipoman", "fs-net-pdu", "rnx-updu", "ats", "marathonups",
    # storage, servers, BMCs, time, environment
    "truenas", "truenas-scale", "netapp", "equallogic", "purestorage", "onefs", "intelliflash",
    "ibmtl", "quantum", "freebsd", "dhcpatriot", "supermicro-bmc", "fujitsuiRMC", "ibm-imm",
    "mbg-meinbergos", "apc-netbotz", "aos-emu2", "hwg-ste2", "hwg-wld", "hwg-perseus", "nti",
    "teracom", "vutlan", "webmon", "papouch-quido", "sensatronics-ittm", "interseptor",
})

_SQUASH = re.compile(r"[^0-9a-z]")


def _squash(value: object) -> str:
    return _SQUASH.sub("", str(value or "").casefold())


def _device(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["os"]["discovery"]["devices"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _system(recording: Path) -> tuple[str, str]:
    """(sysObjectID, sysDescr) as LibreNMS writes them, read from the recording's text."""
    oid = descr = ""
    with open(recording, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("1.3.6.1.2.1.1.1.0|"):
                parts = line.rstrip("\r\n").split("|", 2)
                if len(parts) == 3:
                    descr = parts[2]
                    if parts[1].endswith("x") and re.fullmatch(r"[0-9a-fA-F]*", descr):
                        descr = bytes.fromhex(descr).decode("utf-8", "replace")
            elif line.startswith("1.3.6.1.2.1.1.2.0|"):
                parts = line.rstrip("\r\n").split("|", 2)
                if len(parts) == 3:
                    oid = "." + parts[2].strip(".")
    return oid, descr


def select(checkout: Path, corpus_rows: list[dict]) -> tuple[dict[str, dict], dict[str, str], dict[str, int]]:
    """(expected rows by name, group by name, counts of what was left out and why)."""
    snmpsim = checkout / "tests" / "snmpsim"
    data = checkout / "tests" / "data"
    corpus_names = {r["name"] for r in corpus_rows}
    corpus_keys = {r["os"] for r in corpus_rows}
    same_device = {(r["os"], _squash(r["hardware"]), _squash(r["version"])) for r in corpus_rows
                   if r.get("hardware") or r.get("version")}
    same_system = {(r["sysObjectID"], r["sysDescr"]) for r in corpus_rows}

    devices: dict[str, dict] = {}
    for recording in sorted(snmpsim.glob("*.snmprec")):
        device = _device(data / f"{recording.stem}.json")
        if device and device.get("os"):
            devices[recording.stem] = device
    key_type: dict[str, str] = {}
    for device in devices.values():
        key_type.setdefault(device["os"], device.get("type"))
    known_keys = sorted(set(key_type) | corpus_keys, key=len, reverse=True)

    rows: dict[str, dict] = {}
    groups: dict[str, str] = {}
    left = {"in corpus": 0, "same device and firmware as a corpus recording": 0,
            "not city-type": 0, "no LibreNMS key": 0, "SNMP-context part of another recording": 0}
    for recording in sorted(snmpsim.glob("*.snmprec")):
        name = recording.stem
        if "@" in name:
            left["SNMP-context part of another recording"] += 1
            continue
        if name in corpus_names:
            left["in corpus"] += 1
            continue
        device = devices.get(name)
        if device is None:
            key = next((k for k in known_keys if name == k or name.startswith(k + "_")), None)
            if key is None:
                left["no LibreNMS key"] += 1
                continue
            oid, descr = _system(recording)
            device = {"os": key, "type": key_type.get(key), "version": None, "hardware": None,
                      "serial": None, "sysObjectID": oid, "sysDescr": descr, "family_only": True}
        key = device["os"]
        if key in corpus_keys:
            group = "corpus-families"
        elif key in OTHER_CITY_KEYS:
            group = "other-families"
        else:
            left["not city-type"] += 1
            continue
        if ((key, _squash(device.get("hardware")), _squash(device.get("version"))) in same_device
                or (device.get("sysObjectID"), device.get("sysDescr")) in same_system):
            left["same device and firmware as a corpus recording"] += 1
            continue
        rows[name] = {"name": name, **{k: device.get(k) for k in
                                       ("os", "type", "version", "hardware", "serial", "sysObjectID", "sysDescr")},
                      "family_only": bool(device.get("family_only"))}
        groups[name] = group
    return rows, groups, left

"""Evaluate itaudit's SNMP identification on a folder of real recordings.

Serves every ``*.snmprec`` of the folder with snmpsim (one loopback address each), runs
the real ``SNMPCollector`` against all of them, and compares OS family, kind, version,
model and serial with ``expected.jsonl`` (the identification LibreNMS derived).

    .venv/bin/python bench/fingerprint_eval.py [--corpus DIR] [--misses] [--only NAME...]

How the comparison is fair to both sides (the corpus README asks for normalisation):
- OS family: LibreNMS ``os`` keys are mapped to itaudit families (FAMILY_MAP below).
- kind: LibreNMS ``type`` is mapped to the set of itaudit kinds it covers (TYPE_MAP).
- version: numeric cores are compared ("v6.4.12,build2060" ~ "6.4.12"); ours may be a
  dotted prefix-extension of theirs or the reverse ("6.1.7601" ~ "NT 6.1").
- model: alphanumerics only, case-folded, one containing the other.
- serial: exact after trimming, case-folded.
A field counts only where the expected value is known (not null, not "<private>").
The corpus is GPL: it is read in place and never copied into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.base import CollectContext  # noqa: E402
from collectors.fingerprint import numeric_core  # noqa: E402
from collectors.snmp import SNMPCollector  # noqa: E402
from itaudit.credentials import SNMPCredential  # noqa: E402
from itaudit.model import Target  # noqa: E402
from itaudit.sim.snmpfleet import SNMPFleet  # noqa: E402

DEFAULT_CORPUS = Path("/work/shared/reference/snmp-field-corpus")

FAMILY_MAP: dict[str, set[str]] = {
    "airos": {"airos"}, "apc": {"apc-nmc"}, "aruba-instant": {"arubaos"}, "arubaos-cx": {"arubaos-cx"},
    "arubaos": {"arubaos"}, "asa": {"cisco-asa"}, "axiscam": {"axis-os"}, "brother": {"brother"},
    "ciscosb": {"cisco-sb"}, "ciscowlc": {"cisco-aireos"}, "dnos": {"dell-os9", "dell-os10"},
    "drac": {"idrac"}, "dsm": {"dsm"}, "eatonups": {"eaton-ups"}, "edgeos": {"edgeos"},
    "edgeswitch": {"edgeswitch", "unifi"}, "fortigate": {"fortios"}, "hpe-ilo": {"ilo"}, "ios": {"ios"},
    "iosxe": {"ios-xe"}, "jetdirect": {"hp-printer"}, "jetstream": {"tp-link"}, "junos": {"junos"},
    "konica": {"konica"}, "kyocera": {"kyocera"}, "linux": {"linux"}, "merakimr": {"meraki"},
    "merakims": {"meraki"}, "netgear": {"netgear"}, "nxos": {"nx-os"}, "panos": {"pan-os"},
    "poweralert": {"tripplite"}, "powerconnect": {"dell-powerconnect"}, "procurve": {"arubaos-switch"},
    "qnap": {"qts"}, "ricoh": {"ricoh"}, "routeros": {"routeros"}, "ruckuswireless-unleashed": {"ruckus"},
    "ruckuswireless": {"ruckus"}, "sonicwall": {"sonicos"}, "sophos-xg": {"sfos"}, "unifi": {"unifi"},
    "vmware-esxi": {"esxi"}, "windows": {"windows"}, "xerox": {"xerox"}, "xos": {"exos"},
    "zyxelwlc": {"zyxel"},
}
TYPE_MAP: dict[str, set[str]] = {
    "network": {"switch", "router", "firewall"}, "wireless": {"wireless"}, "firewall": {"firewall"},
    "printer": {"printer"}, "power": {"ups", "other"}, "storage": {"storage"},
    "server": {"server", "workstation"}, "appliance": {"server", "camera", "firewall", "other"},
}
FIELDS = ("os_family", "kind", "version", "model", "serial")


def known(value: object) -> bool:
    return value not in (None, "", "<private>")


def version_ok(expected: str, ours: str | None) -> bool:
    if not ours:
        return False
    cores = [numeric_core(m) for m in re.findall(r"\d+(?:[.(]\d+)*", expected)]
    mine = numeric_core(ours)
    if not cores:
        return expected.strip().casefold() == ours.strip().casefold()
    for core in cores:
        if core == mine:
            return True
        shorter = min(len(core), len(mine))
        if shorter >= 2 and core[:shorter] == mine[:shorter]:
            return True
    return False


def squash(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.casefold())


def model_ok(expected: str, ours: str | None) -> bool:
    if not ours:
        return False
    a, b = squash(expected), squash(ours)
    return bool(a and b and len(b) >= 2 and (a in b or b in a))


def compare(exp: dict, facts: dict) -> dict[str, bool | None]:
    """Per field: True/False, or None when the expected value is unknown."""
    ident, sw = facts["identity"], facts["software"]
    out: dict[str, bool | None] = {}
    out["os_family"] = sw.get("os_family") in FAMILY_MAP.get(exp["os"], {exp["os"]})
    kinds = TYPE_MAP.get(exp["type"], {exp["type"]})
    out["kind"] = ident.get("kind") in kinds if known(exp["type"]) else None
    out["version"] = (version_ok(exp["version"], sw.get("os_version") or sw.get("os_build"))
                      if known(exp["version"]) else None)
    out["model"] = model_ok(exp["hardware"], ident.get("model")) if known(exp["hardware"]) else None
    out["serial"] = ((ident.get("serial") or "").strip().casefold() == exp["serial"].strip().casefold()
                     if known(exp["serial"]) else None)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--base-address", default="127.0.4.130")
    ap.add_argument("--port", type=int, default=1163)
    ap.add_argument("--only", nargs="*", help="recording stems to evaluate")
    ap.add_argument("--misses", action="store_true", help="print every miss with our value")
    ap.add_argument("--exposure", action="store_true", help="also run the exposure probes")
    args = ap.parse_args()

    expected = {}
    with open(args.corpus / "expected.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            expected[row["name"]] = row
    names = [n for n in expected if not args.only or n in args.only]
    os.environ["ITAUDIT_EVAL_COMMUNITY"] = "public"
    cred = SNMPCredential("eval", version="v2c", community_env="ITAUDIT_EVAL_COMMUNITY")
    ctx = CollectContext(city_id="eval", credentials={"eval": cred}, timeout=20, concurrency=16)
    fleet = SNMPFleet(args.corpus, names=names, base_address=args.base_address, port=args.port, v3=False,
                      ready_timeout=180)
    with fleet:
        targets = [Target(d.address, "snmp", port=d.port, name=d.name, credential="eval")
                   for d in fleet.devices.values()]
        t0 = time.monotonic()
        collector = SNMPCollector(exposure=args.exposure, request_timeout=3, retries=2)
        results = {r.target.name: r for r in collector.collect_many(targets, ctx)}
        wall = time.monotonic() - t0

    totals = {f: [0, 0] for f in FIELDS}
    misses: list[str] = []
    for name in names:
        res = results[name]
        if res.error:
            misses.append(f"{name}: ERROR {res.error}")
            for f in FIELDS:
                totals[f][1] += 1 if f in ("os_family",) else 0
            continue
        facts = res.facts.to_dict()
        verdict = compare(expected[name], facts)
        for f, ok in verdict.items():
            if ok is None:
                continue
            totals[f][1] += 1
            totals[f][0] += int(ok)
            if not ok:
                exp_key = {"os_family": "os", "kind": "type", "version": "version", "model": "hardware",
                           "serial": "serial"}[f]
                ours = {"os_family": facts["software"]["os_family"], "kind": facts["identity"]["kind"],
                        "version": facts["software"]["os_version"], "model": facts["identity"]["model"],
                        "serial": facts["identity"]["serial"]}[f]
                misses.append(f"{name}: {f}: expected {expected[name][exp_key]!r}, got {ours!r}")

    print(f"{len(names)} recordings, collected in {wall:.1f}s wall")
    for f in FIELDS:
        ok, n = totals[f]
        print(f"  {f:10s} {ok:3d}/{n:<3d} {100 * ok / n if n else 0:5.1f}%")
    if args.misses or len(misses) < 40:
        print("misses:")
        for m in misses:
            print("  " + m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

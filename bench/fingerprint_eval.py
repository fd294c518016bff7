"""Evaluate itaudit's SNMP identification on a folder of real recordings.

Serves every ``*.snmprec`` of the folder with snmpsim (one loopback address each), runs
the real ``SNMPCollector`` against all of them, and compares OS family, kind, version,
model and serial with ``expected.jsonl`` (the identification LibreNMS derived).

    .venv/bin/python bench/fingerprint_eval.py [--corpus DIR] [--misses] [--only NAME...]
    .venv/bin/python bench/fingerprint_eval.py --librenms CHECKOUT [--offline] [--misses]

``--librenms`` measures on held-out recordings instead: city-type recordings of a LibreNMS
checkout that are not in the corpus and not the same device and firmware as a corpus one
(``bench/librenms_heldout.py`` says how they are chosen); figures per group and in total.

How the comparison is fair to both sides (the corpus README asks for normalisation):
- OS family: LibreNMS ``os`` keys are mapped to itaudit families (FAMILY_MAP below).
- kind: LibreNMS ``type`` is mapped to the set of itaudit kinds it covers (TYPE_MAP).
- version: numeric cores are compared ("v6.4.12,build2060" ~ "6.4.12"); ours may be a
  dotted prefix-extension of theirs or the reverse ("6.1.7601" ~ "NT 6.1").
- model: alphanumerics only, case-folded, one containing the other.
- serial: exact after trimming, collapsing blanks and a trailing dot, case-folded.
A field counts only where the expected value is known (not null, not "<private>"), and
not where the corpus README says LibreNMS's value is not a model or serial (NOT_A_MODEL,
NOT_A_SERIAL: CPU architectures, agent placeholders, MAC addresses).
"Confidently wrong" is a family that is neither the expected one nor generic
(GENERIC_FAMILIES: no family, linux, freebsd, ups, printer).
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
sys.path.insert(0, str(ROOT / "bench"))

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
    # LibreNMS keys -> itaudit families (same name when not listed)
    "ftd": {"cisco-ftd"}, "ise": {"cisco-ise"}, "cimc": {"cisco-imc"}, "ucos": {"cisco-ucos"},
    "ciscospa": {"cisco-spa"}, "eatonpdu": {"eaton-epdu"}, "eaton-mgeups": {"mge-ups"}, "ewc": {"extreme-ewc"},
    "hiveos-wireless": {"hiveos"}, "dlinkap": {"dlink-ap"}, "lcoslx": {"lcos-lx"}, "lcossx": {"lcos-sx"},
    "edgecos": {"edgecore"}, "aos6": {"aos"}, "linksys-ss": {"linksys"}, "rutos-rutx": {"rutos"},
    "moxa-etherdevice": {"moxa"}, "fs-switch": {"fsos"}, "bintec-beip-plus": {"bintec"},
    "grandstream-sw": {"grandstream"}, "forcepoint": {"forcepoint-ngfw"}, "forcepoint-fe": {"forcepoint-flexedge"},
    "pulse": {"pulse-secure"}, "barracudawafirewall": {"barracuda-waf"}, "barracudaspamfirewall": {"barracuda-spam"},
    "airos-af-ltu": {"airfiber-ltu"}, "airos-af60": {"airfiber-60"}, "edgeos-ep": {"edgepower"},
    "ptp670": {"cambium-ptp"}, "cnwave60": {"cnwave"}, "pmp": {"canopy"}, "hpmsm": {"hp-msm"},
    "xclarity": {"lenovo-xcc"}, "ibmc": {"huawei-ibmc"}, "hpblmos": {"hp-oa"}, "avocent": {"avocent-acs"},
    "trippliteconsole": {"tripplite-console"}, "dell-powervault": {"dell-powervault-me"}, "exagridos": {"exagrid"},
    "generex-ups": {"generex-cs121"}, "netagent2": {"netagent"}, "deltaups": {"delta-ups"},
    "huaweiups": {"huawei-ups"}, "hpe-mapdu": {"hpe-pdu"}, "atenpdu": {"aten-pdu"}, "gude-esb": {"gude"},
    "rittal-cmc-iii-pu": {"rittal-cmc-iii"}, "patton-sn": {"patton-smartnode"}, "allworx_voip": {"allworx"},
    "polycomLens": {"poly"}, "panasonic-ns": {"panasonic-pbx"}, "nios": {"infoblox-nios"},
    "bluecatnetworks": {"bluecat"}, "mbg-ltos6": {"meinberg-lantime"}, "hwg-poseidon": {"hwg"},
    "seh-uds": {"seh-utn"}, "zynos": {"zyxel"}, "fortiswitch": {"fortiswitchos"},
    "ruckuswireless-hotzone": {"ruckus"}, "apc-epdu": {"apc-nmc"},
    # held-out keys (bench/librenms_heldout.py) naming the same product as an itaudit family
    "zywall": {"zyxel"}, "zyxelusg": {"zyxel"}, "zyxelac": {"zyxel"}, "zyxelnwa": {"zyxel"},
    "canonprinter": {"canon"}, "tplink": {"tp-link"}, "f5": {"big-ip"}, "ftos": {"dell-os9"},
    "arista_eos": {"eos"}, "dlink-dgs1250": {"dlink"}, "hwg-ste2": {"hwg"}, "hwg-wld": {"hwg"},
    "hwg-perseus": {"hwg"}, "hikvision-nvr": {"hikvision"}, "hikvision-cam": {"hikvision"},
    "ruckuswireless-sz": {"ruckus"}, "mbg-meinbergos": {"meinberg-lantime"}, "truenas-scale": {"truenas"},
    "utax": {"kyocera"}, "socomec-ups": {"socomec"}, "eatonupsm2": {"eaton-ups"}, "apc-mgeups": {"mge-ups"},
    "aos-emu2": {"apc-nmc"}, "aos7": {"aos"}, "netapp": {"ontap"}, "ironware": {"fastiron"},
    "rutos-2xx": {"rutos"}, "rutos-rutm": {"rutos"}, "supermicro-bmc": {"supermicro-bmc"},
    "fortiap": {"fortiap"}, "equallogic": {"equallogic"},
}
# LibreNMS names some products by the MIB they answer; these families are the product itself:
# a Cisco Business Wireless AP (CBW240AC) is LibreNMS's "ciscowlc", an Eaton 9PX answering the
# MGE MIB is its "eaton-mgeups".
FAMILY_MAP["ciscowlc"] = {"cisco-aireos", "cisco-cbw"}
FAMILY_MAP["eaton-mgeups"] = {"mge-ups", "eaton-ups"}
# Recordings whose LibreNMS key covers more than the mapped family: only the key itself is right.
NOT_MAPPED = {
    "netapp_e2700": "NetApp E-Series (SANtricity), not ONTAP",
    "ironware": "NetIron CER router (IronWare), not FastIron",
}
# Recordings LibreNMS files under a key that does not name what they run.
ALSO_RIGHT = {
    "ucos_2": ({"nx-os"}, "Cisco UCS 6100 fabric interconnect: sysDescr 'Cisco NX-OS(tm) ucs'"),
}
# Not a claim about the product: an answer in these is "unknown/generic", never "confidently wrong".
GENERIC_FAMILIES = {None, "", "linux", "freebsd", "ups", "printer"}
TYPE_MAP: dict[str, set[str]] = {
    "network": {"switch", "router", "firewall", "wireless", "other"}, "wireless": {"wireless"},
    "firewall": {"firewall"},
    "printer": {"printer"}, "power": {"ups", "other"}, "storage": {"storage"},
    "server": {"server", "workstation"}, "appliance": {"server", "camera", "firewall", "wireless", "other"},
    "environment": {"other"}, "collaboration": {"other", "server"}, "loadbalancer": {"firewall", "other"},
    "OOB Management": {"other"}, "timing": {"other"}, "encoder": {"camera", "other"},
}
FIELDS = ("os_family", "kind", "version", "model", "serial")


def known(value: object) -> bool:
    return value not in (None, "", "<private>")


# The corpus README warns that some LibreNMS "hardware" strings are not models and some
# "serials" are not serials. Only these documented kinds are left out, each for a reason:
# a CPU architecture LibreNMS writes for generic hosts ("Generic x86 64-bit", "AMD x64"),
# a placeholder the agent answered ("Unknown", "unavailable", "SerialNumber"), and a MAC
# address LibreNMS shows as an Axis camera's serial (we do not read MACs as serials).
NOT_A_MODEL = re.compile(r"^(Generic (x86|ARM)\S*( 64-bit)?|(Intel|AMD) x64|amd64|x86_64|i[3-6]86)$", re.I)
NOT_A_SERIAL = re.compile(r"^(unknown|unavailable|serialnumber|n/a|none)$|^([0-9a-f]{1,2}:){5}[0-9a-f]{1,2}$", re.I)


def model_known(value: object) -> bool:
    return known(value) and not NOT_A_MODEL.match(str(value).strip())


def serial_known(value: object) -> bool:
    return known(value) and not NOT_A_SERIAL.match(str(value).strip())


def same_serial(expected: str, ours: str | None) -> bool:
    def norm(s: str) -> str:
        return " ".join(s.split()).strip(" .").casefold()
    return bool(ours) and norm(expected) == norm(ours or "")


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
    right = {exp["os"]} if exp.get("name") in NOT_MAPPED else FAMILY_MAP.get(exp["os"], {exp["os"]})
    if exp.get("name") in ALSO_RIGHT:
        right = right | ALSO_RIGHT[exp["name"]][0]
    out["os_family"] = sw.get("os_family") in right
    out["wrong_family"] = not out["os_family"] and sw.get("os_family") not in GENERIC_FAMILIES
    if exp.get("family_only"):
        return {**out, "kind": None, "version": None, "model": None, "serial": None}
    kinds = TYPE_MAP.get(exp["type"], {exp["type"]})
    out["kind"] = ident.get("kind") in kinds if known(exp["type"]) else None
    out["version"] = (version_ok(exp["version"], sw.get("os_version") or sw.get("os_build"))
                      if known(exp["version"]) else None)
    out["model"] = model_ok(exp["hardware"], ident.get("model")) if model_known(exp["hardware"]) else None
    out["serial"] = same_serial(exp["serial"], ident.get("serial")) if serial_known(exp["serial"]) else None
    return out


def load_expected(corpus: Path) -> dict[str, dict]:
    expected = {}
    with open(corpus / "expected.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            expected[row["name"]] = row
    return expected


def collect_offline(corpus: Path, names: list[str]) -> dict[str, dict]:
    """Facts per recording, replayed in memory with the collector's own requests (no UDP)."""
    from collectors import fingerprint, snmprec
    from itaudit.model import DeviceFacts

    out = {}
    for name in names:
        ident = fingerprint.identify(snmprec.snapshot(corpus / f"{name}.snmprec"))
        facts = DeviceFacts()
        fingerprint.apply(ident, facts, address=name)
        out[name] = facts.to_dict()
    return out


def collect_snmpsim(corpus: Path, names: list[str], base_address: str, port: int,
                    exposure: bool) -> dict[str, dict | str]:
    """Facts per recording, collected over UDP from snmpsim serving the folder (error text on failure)."""
    os.environ["ITAUDIT_EVAL_COMMUNITY"] = "public"
    cred = SNMPCredential("eval", version="v2c", community_env="ITAUDIT_EVAL_COMMUNITY")
    ctx = CollectContext(city_id="eval", credentials={"eval": cred}, timeout=20, concurrency=16)
    fleet = SNMPFleet(corpus, names=names, base_address=base_address, port=port, v3=False, ready_timeout=180)
    with fleet:
        targets = [Target(d.address, "snmp", port=d.port, name=d.name, credential="eval")
                   for d in fleet.devices.values()]
        collector = SNMPCollector(exposure=exposure, request_timeout=3, retries=2)
        results = {r.target.name: r for r in collector.collect_many(targets, ctx)}
    return {n: (f"ERROR {r.error}" if r.error else r.facts.to_dict()) for n, r in results.items()}


def score(expected: dict[str, dict], facts: dict[str, dict | str]) -> tuple[dict[str, list[int]], list[str], list[str]]:
    """(per field [right, known], misses, confidently wrong families)."""
    totals = {f: [0, 0] for f in FIELDS}
    misses: list[str] = []
    wrong: list[str] = []
    keys = {"os_family": "os", "kind": "type", "version": "version", "model": "hardware", "serial": "serial"}
    for name, got in facts.items():
        if isinstance(got, str):
            misses.append(f"{name}: {got}")
            totals["os_family"][1] += 1
            continue
        verdict = compare(expected[name], got)
        ours = {"os_family": got["software"]["os_family"], "kind": got["identity"]["kind"],
                "version": got["software"]["os_version"], "model": got["identity"]["model"],
                "serial": got["identity"]["serial"]}
        if verdict.pop("wrong_family"):
            wrong.append(f"{name}: expected {expected[name]['os']!r}, got {ours['os_family']!r}")
        for f, ok in verdict.items():
            if ok is None:
                continue
            totals[f][1] += 1
            totals[f][0] += int(ok)
            if not ok:
                misses.append(f"{name}: {f}: expected {expected[name][keys[f]]!r}, got {ours[f]!r}")
    return totals, misses, wrong


def check_citations(snmpsim: Path) -> list[str]:
    """Rules' held-out citations: each ``held_out`` recording gets the rule, no ``not_for`` one does."""
    from collectors import fingerprint, snmprec

    out = []
    for rule in fingerprint.load_rules()["rules"]:
        for key, should in (("held_out", True), ("not_for", False)):
            for ref in rule.get(key, []):
                stem = ref.split("tests/snmpsim/")[1].split(".snmprec")[0]
                path = snmpsim / f"{stem}.snmprec"
                if not path.exists():
                    out.append(f"MISSING {rule['id']} {key} {stem}")
                    continue
                got = snmprec.identify_recording(path).rule
                ok = (got == rule["id"]) == should
                out.append(f"{'ok  ' if ok else 'FAIL'} {rule['id']} {key} {stem} (gets {got})")
    return out


def report(totals: dict[str, list[int]], wrong: list[str], misses: list[str], title: str,
           all_misses: bool) -> None:
    print(title)
    for f in FIELDS:
        ok, n = totals[f]
        print(f"  {f:10s} {ok:3d}/{n:<3d} {100 * ok / n if n else 0:5.1f}%")
    unknown = totals["os_family"][1] - totals["os_family"][0] - len(wrong)
    print(f"  family unknown or generic: {unknown}; confidently wrong: {len(wrong)}")
    for w in wrong:
        print("    WRONG " + w)
    if all_misses or len(misses) < 40:
        print("misses:")
        for m in misses:
            print("  " + m)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--base-address", default="127.0.4.130")
    ap.add_argument("--port", type=int, default=1163)
    ap.add_argument("--librenms", type=Path, metavar="CHECKOUT",
                    help="measure on held-out recordings of this LibreNMS checkout (tests/snmpsim, tests/data)")
    ap.add_argument("--only", nargs="*", help="recording stems to evaluate")
    ap.add_argument("--misses", action="store_true", help="print every miss with our value")
    ap.add_argument("--exposure", action="store_true", help="also run the exposure probes")
    ap.add_argument("--offline", action="store_true",
                    help="replay each recording in memory (collectors.snmprec) instead of serving it with snmpsim")
    args = ap.parse_args()

    expected = load_expected(args.corpus)
    folder, groups = args.corpus, {}
    if args.librenms:
        from librenms_heldout import select

        expected, groups, left = select(args.librenms, list(expected.values()))
        folder = args.librenms / "tests" / "snmpsim"
        print(f"held out from {args.librenms}: {len(expected)} recordings "
              f"({sum(1 for r in expected.values() if r['family_only'])} family only); left out: "
              + ", ".join(f"{n} {why}" for why, n in left.items()))
    names = [n for n in expected if not args.only or n in args.only]
    t0 = time.monotonic()
    if args.offline:
        facts: dict[str, dict | str] = dict(collect_offline(folder, names))
    else:
        facts = collect_snmpsim(folder, names, args.base_address, args.port, args.exposure)
    wall = time.monotonic() - t0
    how = "replayed in memory" if args.offline else "collected over UDP from snmpsim"
    print(f"{len(names)} recordings, {how} in {wall:.1f}s wall")
    for group in sorted(set(groups.values())):
        part = {n: f for n, f in facts.items() if groups[n] == group}
        totals, misses, wrong = score(expected, part)
        report(totals, wrong, misses, f"group {group}: {len(part)} recordings", args.misses)
    totals, misses, wrong = score(expected, facts)
    report(totals, wrong, misses, "all", args.misses and not groups)
    if groups:
        full = {n: f for n, f in facts.items() if not expected[n].get("family_only")}
        ftotals, _, fwrong = score(expected, full)
        ok, n = ftotals["os_family"]
        print(f"  family on the {n} recordings with a LibreNMS data file: {ok}/{n} {100 * ok / n if n else 0:.1f}%"
              f" (the {len(facts) - len(full)} others have only the file name's key); confidently wrong: {len(fwrong)}")
    if args.librenms:
        print("rules' held-out citations (held_out: gets the rule; not_for: does not):")
        for line in check_citations(folder):
            print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

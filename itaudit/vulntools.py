"""Build ``vulns.json`` (version ranges per CVE) from real CVE JSON 5 records.

Input: a folder of CVE JSON 5 records exactly as published (``CVE-YYYY-N.json``; the CNA
container is the vendor's own data, CISA's vulnrichment adds an ADP container with CPE
ranges) and ``SOURCES.json`` naming where each file came from (repository, path, commit).
Output: ``itaudit/data/vulns.json`` (format ``itaudit-vulns/1``), which ``itaudit.vulns``
reads. Run ``python -m itaudit.vulntools tests/fixtures/vuln/cve5`` to regenerate.

What the conversion does, and nothing more:

- maps the record's vendor/product names (and ADP CPE names) to itaudit product keys
  (``PRODUCTS`` below); a product the map does not know is dropped;
- keeps each ``versions[]`` entry as published, except vendor phrases the schema cannot
  express, which become ranges with the original text kept in ``text``: "7.0.1-5035 and
  older versions", "6.0.5 and below", "A to B"; VMware's bare "7.0" (the whole 7.0 line);
- takes the CNA's entries for a product, and CISA's ADP entries only when the CNA gave no
  usable version for that product.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from itaudit.vulns import VULNS_FORMAT, _usable, validate_vulns

# (itaudit product key, vendor pattern, product pattern) over the CNA's affected[] names.
PRODUCTS: list[tuple[str, str, str]] = [
    ("cisco-ios-xe", r"cisco", r"\bIOS XE\b|\bIOS, XR, and XE\b"),
    ("cisco-ios", r"cisco", r"^(Cisco )?IOS( Software)?$|^IOS$|\bIOS and IOS XE\b|\bIOS, IOS XE\b|"
                            r"\bIOS, IOS XR\b|\bIOS, XR\b"),
    ("cisco-asa", r"cisco", r"Adaptive Security Appliance"),
    ("fortios", r"fortinet", r"^(Fortinet )?FortiOS$|^FortiGate$|^Fortinet FortiOS\b"),
    ("pan-os", r"palo ?alto", r"^PAN-OS$|GlobalProtect Portal"),
    ("routeros", r"mikrotik", r"RouterOS"),
    ("junos", r"juniper", r"^Junos OS$"),
    ("qnap-qts", r"qnap", r"^QTS$"),
    ("sonicos", r"sonicwall", r"^SonicOS$"),
    ("vmware-esxi", r"vmware|n/a", r"^VMware ESXi$|^ESXi$"),
    ("windows", r"microsoft", r"^Windows (\d|Server|RT)"),
]
# CISA ADP CPE vendor:product -> product key (fallback when the CNA has no usable versions).
CPES = {
    "cisco:ios_xe": "cisco-ios-xe",
    "cisco:ios": "cisco-ios",
    "cisco:adaptive_security_appliance_software": "cisco-asa",
    "fortinet:fortios": "fortios",
    "paloaltonetworks:pan-os": "pan-os",
    "sonicwall:sonicos": "sonicos",
    "vmware:esxi": "vmware-esxi",
}
# How records name a product in free text ("FortiOS 6.0.0 to 6.0.4, FortiProxy 2.0.0 ...").
TEXT_NAMES = {"fortios": "FortiOS", "pan-os": "PAN-OS", "sonicos": "SonicOS", "routeros": "RouterOS",
              "qnap-qts": "QTS", "cisco-asa": "Adaptive Security Appliance"}
_V = r"\d[\w.\-()]*\w|\d"
_SPAN_RE = re.compile(rf"(?:(?P<prod>[A-Za-z][\w\-]*)\s+)?(?P<a>{_V})(?:\s+(?:to|through)\s+(?P<b>{_V})|"
                      rf"\s+and\s+(?P<older>earlier|older|below|prior))?")
_DESC_RE = r"\b{name}\s+(?:versions?\s+)?(?P<op>through|before|prior to|up to)\s+(?P<v>{v})"
_OLDER = re.compile(r"^\s*(?:version\s+)?(\S+)\s+and\s+(?:older|below|earlier|prior)(?:\s+versions?)?\s*$", re.I)
_SPAN = re.compile(r"^\s*(\d[\w.\-()]*)\s+(?:to|through|-)\s+(\d[\w.\-()]*)\s*$", re.I)


def normalise_entry(entry: dict[str, Any], product: str) -> dict[str, Any]:
    """One ``versions[]`` entry as the matcher reads it (phrases turned into ranges)."""
    e: dict[str, Any] = {k: entry[k] for k in ("version", "status", "lessThan", "lessThanOrEqual", "changes",
                                                "versionType") if k in entry}
    if "lessThan" in e or "lessThanOrEqual" in e:
        for k in ("lessThan", "lessThanOrEqual"):
            if k in e:
                e[k] = str(e[k]).strip()
        top = e.get("lessThan", "")
        m = re.fullmatch(r"(\d+(?:\.\d+)*)\*", top)
        if m:  # Juniper: lessThan "21.1*" = every 21.1 release
            nums = m.group(1).split(".")
            e["lessThan"] = ".".join([*nums[:-1], str(int(nums[-1]) + 1)])
            e["text"] = f"{e.get('version')} up to {top}"
        elif "," in top:  # Juniper: "22.3R2-S2, 22.3R3-S1": one fix per maintenance release
            fixes = [f.strip() for f in top.split(",") if f.strip()]
            e["lessThan"] = fixes[-1]
            e["changes"] = [{"at": f, "status": "unaffected"} for f in fixes]
            e["text"] = f"fixed in {top}"
        return e
    text = str(e.get("version", ""))
    m = _OLDER.match(text)
    if m:
        # "7.1.1-7058 and older versions" speaks for its own release line (7.1) only: whether
        # an older line is affected the phrase does not say (NVD's ranges often start later).
        line = ".".join(re.findall(r"\d+", m.group(1))[:2])
        return {"version": line, "lessThanOrEqual": m.group(1), "status": e.get("status", "affected"), "text": text}
    m = _SPAN.match(text)
    if m:
        return {"version": m.group(1), "lessThanOrEqual": m.group(2), "status": e.get("status", "affected"),
                "text": text}
    m = re.fullmatch(r"(\d+(?:\.\d+)*)\.[*x]", text.strip())
    if m:  # "8.0.*": every version of the 8.0 line
        nums = m.group(1).split(".")
        top = ".".join([*nums[:-1], str(int(nums[-1]) + 1)])
        return {"version": m.group(1), "lessThan": top, "status": e.get("status", "affected"), "text": text}
    if product == "vmware-esxi" and re.fullmatch(r"\d+\.\d+", text.strip()):
        major, minor = text.strip().split(".")
        return {"version": text.strip(), "lessThan": f"{major}.{int(minor) + 1}",
                "status": e.get("status", "affected"), "text": f"{text} (VMware: the whole {text} line)"}
    return e


def text_spans(text: str, name: str | None) -> list[dict[str, Any]]:
    """Ranges from a vendor's free-text version list, kept only where they name ``name``.

    "FortiOS 6.0.0 to 6.0.4, 5.6.3 to 5.6.7, FortiProxy 2.0.0" gives FortiOS's two spans;
    "PAN-OS 7.1.18 and earlier, PAN-OS 8.0.11 and earlier" gives a range per release line.
    """
    out: list[dict[str, Any]] = []
    current: str | None = None
    named = False
    for m in _SPAN_RE.finditer(text):
        if m.group("prod") and m.group("prod").lower() not in ("and", "or", "version", "versions"):
            current, named = m.group("prod"), True
        if named and name and (current or "").lower() != name.lower():
            continue
        a, b = m.group("a"), m.group("b")
        if b:
            out.append({"version": a, "lessThanOrEqual": b, "status": "affected", "text": text})
        elif m.group("older"):
            line = ".".join(re.findall(r"\d+", a)[:2])
            out.append({"version": line, "lessThanOrEqual": a, "status": "affected", "text": text})
        else:
            out.append({"version": a, "status": "affected", "text": text})
    return out


def _from_description(record: dict[str, Any], key: str) -> dict[str, Any] | None:
    """MITRE-era records say the range only in words: "MikroTik RouterOS through 6.42 allows ..."."""
    name = TEXT_NAMES.get(key)
    if not name:
        return None
    cna = (record.get("containers") or {}).get("cna") or {}
    for d in cna.get("descriptions") or []:
        m = re.search(_DESC_RE.format(name=re.escape(name), v=_V), str(d.get("value", "")))
        if m:
            op = "lessThanOrEqual" if m.group("op") in ("through", "up to") else "lessThan"
            return {"default": "unaffected", "from": "description", "names": [name],
                    "versions": [{"version": "0", op: m.group("v"), "status": "affected", "text": m.group(0)}]}
    return None


def products_of(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Product key -> {"default", "versions", "from"} for one CVE JSON 5 record."""
    out: dict[str, dict[str, Any]] = {}
    cna = (record.get("containers") or {}).get("cna") or {}
    for aff in cna.get("affected") or []:
        vendor, name = str(aff.get("vendor", "")), str(aff.get("product", ""))
        for key, vpat, ppat in PRODUCTS:
            if re.search(vpat, f"{vendor} {name}", re.I) and re.search(ppat, name, re.I):
                slot = out.setdefault(key, {"default": None, "versions": [], "from": "cna", "names": []})
                slot["names"].append(name)
                if aff.get("defaultStatus"):
                    slot["default"] = aff["defaultStatus"]
                for v in aff.get("versions") or []:
                    e = normalise_entry(v, key)
                    if key == "windows":
                        e["product"] = name
                    if not _usable(e) and " " in str(e.get("version", "")):
                        slot["versions"].extend(text_spans(str(e["version"]), TEXT_NAMES.get(key)))
                    else:
                        slot["versions"].append(e)
    for adp in (record.get("containers") or {}).get("adp") or []:
        for aff in adp.get("affected") or []:
            for cpe in aff.get("cpes") or []:
                parts = cpe.split(":")
                cpe_key = CPES.get(":".join(parts[3:5])) if len(parts) > 5 else None
                if cpe_key is None:
                    continue
                key = cpe_key
                have = out.get(key)
                if have and have["from"] == "cna" and any(_usable(e) for e in have["versions"]):
                    continue
                slot = out.setdefault(key, {"default": None, "versions": [], "from": "adp", "names": []})
                if slot["from"] == "cna":  # CNA gave nothing usable: CISA's ranges replace it
                    slot.update(default=None, versions=[], **{"from": "adp"})
                slot["names"].append(cpe)
                slot["versions"].extend(normalise_entry(v, key) for v in aff.get("versions") or [])
    for key in TEXT_NAMES:
        have = out.get(key)
        if have is None or not any(_usable(e) for e in have["versions"]):
            desc = _from_description(record, key)
            if desc is not None:
                out[key] = desc
    for slot in out.values():
        slot["names"] = sorted(set(slot["names"]))
        if slot["default"] in (None, "unknown"):
            slot.pop("default")
    return out


_SUMMARY_PACKAGE = re.compile(r"^(?:\w+: )?([\w.+-]+?)(?::[\w.]+)?\s+(?:security|bug fix)")


def osv_packages(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Ecosystem ("Ubuntu:18.04:LTS", "AlmaLinux:9") -> the distribution's fixed version per
    package, with its binary package names (what ``dpkg -l`` / ``rpm -qa`` list), from one
    OSV record. Every row names its record (``record``).

    Records that list binary packages one by one (AlmaLinux) sometimes carry only part of
    the advisory (a kernel advisory listing only ``kernel-doc``): when the package the
    summary names ("Important: kernel security update") is not among them, the rows are
    marked ``partial`` and never support "not affected".
    """
    out: dict[str, list[dict[str, Any]]] = {}
    names = {str((a.get("package") or {}).get("name")) for a in record.get("affected") or []}
    m = _SUMMARY_PACKAGE.match(str(record.get("summary") or ""))
    per_binary = not any((a.get("ecosystem_specific") or {}).get("binaries") for a in record.get("affected") or [])
    partial = per_binary and bool(record.get("summary")) and (m is None or m.group(1) not in names)
    for aff in record.get("affected") or []:
        pkg = aff.get("package") or {}
        eco, name = pkg.get("ecosystem"), pkg.get("name")
        if not eco or not name:
            continue
        introduced, fixed = "0", None
        for rng in aff.get("ranges") or []:
            if rng.get("type") != "ECOSYSTEM":
                continue
            for ev in rng.get("events") or []:
                introduced = ev.get("introduced", introduced)
                fixed = ev.get("fixed", fixed)
        binaries = sorted({b["binary_name"] for b in (aff.get("ecosystem_specific") or {}).get("binaries") or []
                           if b.get("binary_name") and not b["binary_name"].endswith("-dbgsym")}) or [name]
        row: dict[str, Any] = {"name": name, "introduced": introduced, "fixed": fixed, "binaries": binaries,
                               "record": record.get("id")}
        if partial:
            row["partial"] = True
        if fixed is None:  # no fix: only the listed versions are known to be affected
            row["versions"] = list(aff.get("versions") or [])
        out.setdefault(eco, []).append(row)
    return out


def add_osv_record(packages: dict[str, Any], record: dict[str, Any], cves: list[str],
                   source: dict[str, Any]) -> None:
    """Merge one OSV record into ``packages`` (CVE -> records and rows per ecosystem)."""
    rows = osv_packages(record)
    for cve in cves:
        slot = packages.setdefault(cve, {"records": {}, "ecosystems": {}})
        slot["records"][record["id"]] = {"modified": str(record.get("modified", ""))[:10] or None,
                                         "source": {k: source[k] for k in ("repo", "path", "commit")}}
        for eco, eco_rows in rows.items():
            have = slot["ecosystems"].setdefault(eco, [])
            have[:] = [r for r in have if r.get("record") != record["id"]] + eco_rows


DEBIAN_RELEASES = {"squeeze": 6, "wheezy": 7, "jessie": 8, "stretch": 9, "buster": 10, "bullseye": 11,
                   "bookworm": 12, "trixie": 13}
_DEB_HEAD = re.compile(r"^\[(?P<day>[^\]]+)\] (?P<id>D[SL]A-\d+-\d+) (?P<src>\S+) - ")
_DEB_FIX = re.compile(r"^\s+\[(?P<rel>\w+)\] - (?P<src>\S+) (?P<ver>\d\S*)\s*$")


def debian_advisories(text: str) -> list[dict[str, Any]]:
    """The entries of the Debian security tracker's ``DSA/list`` or ``DLA/list``.

    Each entry: ``{"id", "day", "cves", "ecosystems": {"Debian:11": [row]}}``. Debian lists the
    fixed version per SOURCE package: rows carry ``source_only`` (the binary packages built
    from it are not named, so only a binary of the same name can be compared).
    """
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for line in text.splitlines():
        m = _DEB_HEAD.match(line)
        if m:
            cur = {"id": m.group("id"), "day": m.group("day"), "cves": [], "ecosystems": {}}
            out.append(cur)
            continue
        if cur is None:
            continue
        if line.strip().startswith("{"):
            cur["cves"] += re.findall(r"CVE-\d{4}-\d+", line)
            continue
        f = _DEB_FIX.match(line)
        if f and f.group("rel") in DEBIAN_RELEASES:
            eco = f"Debian:{DEBIAN_RELEASES[f.group('rel')]}"
            cur["ecosystems"].setdefault(eco, []).append(
                {"name": f.group("src"), "introduced": "0", "fixed": f.group("ver"), "binaries": [f.group("src")],
                 "record": cur["id"], "source_only": True})
    return out


def add_debian_list(packages: dict[str, Any], text: str, source: dict[str, Any], cves: set[str] | None = None) -> None:
    """Merge the entries of a Debian DSA/DLA list into ``packages`` (only ``cves``, if given)."""
    for adv in debian_advisories(text):
        for cve in adv["cves"]:
            if cves is not None and cve not in cves:
                continue
            slot = packages.setdefault(cve, {"records": {}, "ecosystems": {}})
            slot["records"][adv["id"]] = {"modified": None, "feed": "debian-tracker", "published": _deb_day(adv["day"]),
                                          "source": {k: source[k] for k in ("repo", "path", "commit")}}
            for eco, rows in adv["ecosystems"].items():
                slot["ecosystems"].setdefault(eco, []).extend(rows)


def _deb_day(day: str) -> str | None:
    """"26 Jan 2021" -> "2021-01-26" (the tracker's date of the advisory)."""
    import datetime as dt

    try:
        return dt.datetime.strptime(day.strip(), "%d %b %Y").date().isoformat()
    except ValueError:
        return None


def osv_cves(record: dict[str, Any], src: dict[str, Any]) -> list[str]:
    """The CVEs an OSV record is filed under: ``cves`` (or ``cve``) of its source entry."""
    return list(src.get("cves") or ([src["cve"]] if src.get("cve") else []))


def build_vulns(*records_dirs: Path, cves: set[str] | None = None, osv_dir: Path | None = None,
                debian_dir: Path | None = None) -> dict[str, Any]:
    """``vulns.json`` from the records in ``records_dirs``, each with its ``SOURCES.json``.

    A CVE found in several folders is taken from the later folder. The snapshot date is
    the oldest of the folders' dates (the data is no newer than its oldest part).
    """
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    metas = []
    for d in records_dirs:
        sources = json.loads((d / "SOURCES.json").read_text(encoding="utf-8"))
        metas.append(sources)
        for cve, src in sources["records"].items():
            found[cve] = (d, src)
    doc: dict[str, Any] = {
        "format": VULNS_FORMAT,
        "snapshot": min(m["snapshot"] for m in metas),
        "source": {"name": " + ".join(m["name"] for m in metas),
                   "licence": "; ".join(m.get("licence", "") for m in metas),
                   "about": " ".join(m["about"] for m in metas)},
        "cves": {},
    }
    for cve, (records_dir, src) in sorted(found.items()):
        if cves is not None and cve not in cves:
            continue
        rec = json.loads((records_dir / f"{cve}.json").read_text(encoding="utf-8"))
        meta = rec.get("cveMetadata") or {}
        if meta.get("cveId") != cve:
            raise ValueError(f"{cve}.json holds {meta.get('cveId')!r}")
        doc["cves"][cve] = {
            "published": str(meta.get("datePublished", ""))[:10] or None,
            "updated": str(meta.get("dateUpdated", ""))[:10] or None,
            "source": {k: src[k] for k in ("repo", "path", "commit")},
            "products": products_of(rec),
        }
    if osv_dir is not None:
        sources = json.loads((osv_dir / "SOURCES.json").read_text(encoding="utf-8"))
        doc["source"]["name"] += " + " + sources["name"]
        doc["packages"] = {}
        for osv_id, src in sorted(sources["records"].items()):
            rec = json.loads((osv_dir / src.get("file", f"{osv_id}.json")).read_text(encoding="utf-8"))
            if rec.get("id") != osv_id:
                raise ValueError(f"{osv_id}: the file holds {rec.get('id')!r}")
            add_osv_record(doc["packages"], rec, osv_cves(rec, src), src)
    if debian_dir is not None:
        sources = json.loads((debian_dir / "SOURCES.json").read_text(encoding="utf-8"))
        doc["source"]["name"] += " + " + sources["name"]
        packages = doc.setdefault("packages", {})
        for src in sources["lists"].values():
            add_debian_list(packages, (debian_dir / src["file"]).read_text(encoding="utf-8"), src,
                            set(src["cves"]))
    validate_vulns(doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``itaudit/data/vulns.json`` from a folder of records (default: the test fixtures)."""
    args = argv if argv is not None else sys.argv[1:]
    root = Path(__file__).resolve().parents[1]
    fixtures = root / "tests" / "fixtures" / "vuln"
    records = [Path(a) for a in args] or [fixtures / "cve5", fixtures / "cvelist"]
    out = Path(__file__).resolve().parent / "data" / "vulns.json"
    doc = build_vulns(*records, osv_dir=fixtures / "osv" if not args else None,
                      debian_dir=fixtures / "debian" if not args else None)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    n = sum(1 for r in doc["cves"].values() if r["products"])
    print(f"wrote {len(doc['cves'])} CVE records ({n} with product data) to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

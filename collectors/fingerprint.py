"""Identify network gear from SNMP values, with rules kept as data.

Pure: no I/O besides reading the shipped rule files once. The SNMP collector asks
``plan(system)`` which OIDs to fetch after the system group, then hands every value it
got (a flat ``{numeric OID: value}`` snapshot: bytes, str for OIDs/IPs, int) to
``identify(snapshot)``, and ``apply()`` writes the result into ``DeviceFacts``.

Rules live in ``itaudit/data/fingerprints.json`` (documented there): each names a
family (vendor, kind, OS family, lifecycle product key), when it applies (sysObjectID
prefixes, sysDescr patterns, vendor objects present), which vendor scalars to GET, and
where version, model and serial come from (an OID, sysDescr, or the ENTITY-MIB chassis
row), each with an optional regex. An unknown device still gets a vendor from the IANA
enterprise number in its sysObjectID and kind ``other``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from itaudit.errors import KnowledgeError
from itaudit.model import DeviceFacts, Disk, clip

SYS = {
    "descr": "1.3.6.1.2.1.1.1.0",
    "objectid": "1.3.6.1.2.1.1.2.0",
    "uptime": "1.3.6.1.2.1.1.3.0",
    "contact": "1.3.6.1.2.1.1.4.0",
    "name": "1.3.6.1.2.1.1.5.0",
    "location": "1.3.6.1.2.1.1.6.0",
}
ENT = "1.3.6.1.2.1.47.1.1.1.1"
ENT_COLUMNS = {
    "descr": 2, "class": 5, "name": 7, "hardware": 8, "firmware": 9, "software": 10,
    "serial": 11, "mfg_name": 12, "model": 13, "mfg_date": 17,
}
IF_TYPE = "1.3.6.1.2.1.2.2.1.3"
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"
HR_DEVICE_DESCR = "1.3.6.1.2.1.25.3.2.1.3"
ENT_CLASS = ENT + ".5"
HR_MEMORY_SIZE = "1.3.6.1.2.1.25.2.2.0"
HR_PREFIX = "1.3.6.1.2.1.25."
HR_SYSTEM_UPTIME = "1.3.6.1.2.1.25.1.1.0"
HR_DEVICE_TYPE = "1.3.6.1.2.1.25.3.2.1.2"
HR_PROCESSOR = "1.3.6.1.2.1.25.3.1.3"  # hrDeviceProcessor
HR_STORAGE = "1.3.6.1.2.1.25.2.3.1"  # hrStorageEntry: .2 type, .3 descr, .4 allocation units, .5 size
HR_FIXED_DISK = "1.3.6.1.2.1.25.2.1.4"  # hrStorageFixedDisk
MAX_DISKS = 16
# Net-SNMP reports memory-backed mounts (tmpfs on /dev/shm, /run, /sys/fs/cgroup) as fixed disks.
_PSEUDO_MOUNT = re.compile(r"^/(?:dev|run|sys|proc)(?:/|$)")
_CPU_VENDOR_ID = re.compile(r"^(?:GenuineIntel|AuthenticAMD):\s*")
ETHERNET_TYPES = {6, 62, 117, 69}  # ethernetCsmacd, fastEther, gigabitEthernet, fastEtherFX
ENTERPRISES = "1.3.6.1.4.1."


@dataclass
class Plan:
    """What to fetch after the system group: scalars to GET and table columns to walk."""

    gets: list[str]
    walks: list[str]  # short tables (ENTITY-MIB, hrDevice): walked together, few rows
    if_walks: list[str]  # IF-MIB columns: walked together, more rows


@dataclass
class Identification:
    """What the rules concluded about one device (all text bounded and safe)."""

    rule: str | None = None
    vendor: str | None = None
    kind: str = "other"
    os_family: str | None = None
    os_name: str | None = None
    product: str | None = None
    os_version: str | None = None
    version_raw: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    hardware_rev: str | None = None
    manufacture_date: dt.date | None = None
    port_count: int | None = None
    memory_bytes: int | None = None
    cpu_model: str | None = None
    cpu_cores: int | None = None  # None when the walked rows may not hold every processor
    disks: list[tuple[str, int]] = field(default_factory=list)  # (hrStorageDescr, bytes)
    port_speeds: dict[str, int] = field(default_factory=dict)  # "1G" -> ports
    battery_replace_date: dt.date | None = None
    battery_status: str | None = None
    hostname: str | None = None
    description: str | None = None
    location: str | None = None
    contact: str | None = None
    uptime_seconds: int | None = None
    sys_object_id: str | None = None
    enterprise: int | None = None
    how: dict[str, str] = field(default_factory=dict)  # field -> where its value came from


# --- rule data -----------------------------------------------------------------------


@cache
def load_rules() -> dict[str, Any]:
    """The shipped fingerprint rules, compiled once (regexes pre-built)."""
    try:
        text = resources.files("itaudit").joinpath("data/fingerprints.json").read_text("utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise KnowledgeError(f"fingerprint rules unreadable: {exc}") from exc
    for rule in data["rules"]:
        for clause in rule.get("when", []):
            if "descr" in clause:
                clause["_descr"] = re.compile(clause["descr"], re.I | re.S)
            if "not_descr" in clause:
                clause["_not_descr"] = re.compile(clause["not_descr"], re.I | re.S)
            for oid, rx in clause.get("match", {}).items():
                clause.setdefault("_match", {})[oid] = re.compile(rx, re.I | re.S)
        for key in ("version", "model", "serial", "firmware", "os_name"):
            for spec in rule.get(key, []):
                if "re" in spec:
                    spec["_re"] = re.compile(spec["re"], re.I | re.S)
        for k in rule.get("kinds", []) + rule.get("vendors", []):
            k["_re"] = re.compile(k["re"], re.I | re.S)
        # Every scalar an extractor names is fetched when the rule is a candidate.
        specs = [s for key in ("version", "model", "serial", "firmware", "os_name", "kinds", "vendors")
                 for s in rule.get(key, [])]
        rule["_gets"] = list(dict.fromkeys(rule.get("get", []) + [s["oid"] for s in specs if "oid" in s]))
        rule["_relative"] = [s for s in specs if "objid" in s]
    data["_default_gets"] = [s["oid"] for key in ("version", "model", "serial", "vendor")
                             for s in data["defaults"].get(key, []) if "oid" in s]
    return data


@cache
def _enterprise_data() -> dict[str, Any]:
    try:
        text = resources.files("itaudit").joinpath("data/enterprise_numbers.json").read_text("utf-8")
        data = json.loads(text)
        return {"numbers": dict(data["numbers"]), "agents": dict(data.get("agents", {})),
                "registry": data.get("registry", {})}
    except (OSError, ValueError, KeyError) as exc:
        raise KnowledgeError(f"enterprise numbers unreadable: {exc}") from exc


def enterprise_numbers() -> dict[str, str]:
    """IANA private enterprise number -> the name a city would use (curated subset)."""
    return _enterprise_data()["numbers"]


@cache
def iana_registry() -> dict[int, str]:
    """The full IANA Private Enterprise Numbers registry (shipped, dated): number -> organisation."""
    name = _enterprise_data()["registry"].get("file", "enterprise_numbers_iana.tsv.gz")
    try:
        raw = gzip.decompress(resources.files("itaudit").joinpath(f"data/{name}").read_bytes()).decode("utf-8")
    except (OSError, ValueError, EOFError) as exc:
        raise KnowledgeError(f"enterprise number registry unreadable: {exc}") from exc
    out: dict[int, str] = {}
    for line in raw.splitlines():
        num, sep, org = line.partition("\t")
        if sep and num.isdigit():
            out[int(num)] = org.strip()
    return out


@cache
def sysobjectid_names() -> dict[str, str]:
    """sysObjectID -> registered product name (CISCO-PRODUCTS-MIB), shipped and dated."""
    try:
        text = resources.files("itaudit").joinpath("data/sysobjectid_names.json").read_text("utf-8")
        return dict(json.loads(text)["names"])
    except (OSError, ValueError, KeyError) as exc:
        raise KnowledgeError(f"product names unreadable: {exc}") from exc


def vendor_of_enterprise(number: int | None) -> str | None:
    """Vendor named by an enterprise number; None for agent software (Net-SNMP) or unknown."""
    if number is None or str(number) in _enterprise_data()["agents"]:
        return None
    return enterprise_numbers().get(str(number)) or iana_registry().get(number)


# --- value helpers -------------------------------------------------------------------

_NUMERIC_OID = re.compile(r"\d+(?:\.\d+){1,127}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY_BYTES = bytes([*range(9), *range(14, 32), 127])  # counted with translate(): C speed


def text(value: Any, limit: int = 512) -> str | None:
    """Device value -> safe, bounded, stripped text (binary octets become hex)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            s = value.decode("utf-8")
        except UnicodeDecodeError:
            s = value.decode("latin-1")
        if value and len(value) - len(value.translate(None, _BINARY_BYTES)) > len(value) // 4:
            s = "0x" + value[:64].hex()  # binary: hex, like snmpget does
    else:
        s = str(value)
    s = _CONTROL.sub(" ", s).strip()
    return clip(s, limit) if s else None


def _line(value: Any, limit: int = 512) -> str | None:
    s = text(value, limit * 4)
    return clip(" ".join(s.split()), limit) if s else None


def oid_under(oid: str, prefix: str) -> bool:
    prefix = prefix.strip(".")
    return oid == prefix or oid.startswith(prefix + ".")


# --- planning ------------------------------------------------------------------------


def _pre_match(clause: Mapping[str, Any], objid: str, descr: str) -> bool:
    """The part of a clause decidable from the system group alone."""
    if "oid" in clause and not any(oid_under(objid, p) for p in clause["oid"]):
        return False
    if "_not_descr" in clause and clause["_not_descr"].search(descr):
        return False
    return not ("_descr" in clause and not clause["_descr"].search(descr))


@cache
def _rule_index() -> tuple[dict[int, list[int]], list[int]]:
    """Rules by the enterprise numbers their clauses are limited to, and the open rules.

    A rule with a clause that names no sysObjectID prefix can match any device ("open").
    """
    by_enterprise: dict[int, list[int]] = {}
    open_rules: list[int] = []
    for i, rule in enumerate(load_rules()["rules"]):
        if any("oid" not in c for c in rule.get("when", [])):
            open_rules.append(i)
            continue
        for ent in {enterprise_of(p) for c in rule["when"] for p in c["oid"]}:
            by_enterprise.setdefault(ent if ent is not None else -1, []).append(i)
    return by_enterprise, open_rules


@lru_cache(maxsize=1024)
def _pre_matches(objid: str, descr: str) -> tuple[tuple[dict[str, Any], tuple[dict[str, Any], ...]], ...]:
    """(rule, its clauses that hold on the system group) for every candidate rule, in file order.

    Computed once per device (plan, needs_entity and identify share it): only the rules of
    the sysObjectID's enterprise and the open rules are looked at.
    """
    rules = load_rules()["rules"]
    by_enterprise, open_rules = _rule_index()
    ent = enterprise_of(objid)
    idx = sorted(set(open_rules) | set(by_enterprise.get(ent if ent is not None else -1, ()))
                 | set(by_enterprise.get(-1, ())))
    out = []
    for i in idx:
        clauses = tuple(c for c in rules[i].get("when", []) if _pre_match(c, objid, descr))
        if clauses:
            out.append((rules[i], clauses))
    return tuple(out)


def _candidates(objid: str, descr: str) -> list[dict[str, Any]]:
    return [rule for rule, _ in _pre_matches(objid, descr)]


def plan(system: Mapping[str, Any]) -> Plan:
    """Which scalars to GET and columns to walk, given the system group's values."""
    data = load_rules()
    objid = text(system.get(SYS["objectid"])) or ""
    descr = text(system.get(SYS["descr"]), 4096) or ""
    gets: list[str] = list(data["common"]["get"]) + data["_default_gets"]
    extra_walks: list[str] = []
    for rule in _candidates(objid, descr):
        gets += rule["_gets"]
        gets += [o for o in (relative_oid(objid, spec) for spec in rule["_relative"]) if o]
        for clause in rule.get("when", []):
            gets += list(clause.get("match", {}))
            gets += clause.get("has", [])
        extra_walks += rule.get("walk", [])
    walks = list(dict.fromkeys(extra_walks))
    return Plan(list(dict.fromkeys(g for g in gets if g not in SYS.values())), walks, [IF_TYPE])


def needs_entity(snap: Mapping[str, Any]) -> bool:
    """Whether the ENTITY-MIB is still worth two requests after the vendor objects."""
    return second_round(snap)[0]


def second_round(snap: Mapping[str, Any]) -> tuple[bool, bool]:
    """(read the ENTITY-MIB?, with the HOST-RESOURCES columns?), from one identification.

    The ENTITY-MIB is read when the vendor objects left model, serial or version unknown.
    Then only entPhysicalClass is walked to find the chassis, and that one row is read with
    a GET (``chassis_candidates``, ``entity_row_oids``): a tenth of the varbinds of a full
    walk. HOST-RESOURCES rides in that walk when no rule matched or a generic host rule
    did; decided after the first round (many appliances share Net-SNMP's Linux sysObjectID
    and are told apart by vendor objects), so recognised gear never reads it.
    """
    ident = identify(snap)
    entity = not (ident.model and ident.serial and ident.os_version)
    return entity, entity and (ident.rule is None or bool(_rules_by_id()[ident.rule].get("host_resources")))


@cache
def _rules_by_id() -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in load_rules()["rules"]}


def host_resources_columns() -> list[str]:
    """The HOST-RESOURCES columns to walk (``host_resources`` in the rules file)."""
    return list(load_rules()["host_resources"]["walk"])


def chassis_candidates(snap: Mapping[str, Any], limit: int = 1) -> list[str] | None:
    """ENTITY-MIB indexes worth a GET: the first chassis rows (class 3).

    Without a chassis row (some agents describe the box as a container or a stack member),
    the first three rows that are not ports, sensors or power supplies. None when the agent
    has no entPhysicalClass column at all (then walk a few columns).
    """
    prefix = ENT_CLASS + "."
    rows = sorted(((_index_key(o[len(prefix):]), o[len(prefix):], v) for o, v in snap.items()
                   if o.startswith(prefix)), key=lambda r: r[0])
    if not rows:
        return None
    chassis = [idx for _, idx, cls in rows if cls == 3][:limit]
    if chassis:
        return chassis
    others = [idx for _, idx, cls in rows if cls not in (6, 8, 10)][:3]  # powerSupply, sensor, port
    return others or [rows[0][1]]


def entity_row_oids(indexes: list[str]) -> list[str]:
    """The ENTITY-MIB columns we use, for the given rows."""
    return [f"{ENT}.{n}.{idx}" for idx in indexes for n in ENT_COLUMNS.values() if n != 5]


ENTITY_FALLBACK_WALK = [f"{ENT}.{ENT_COLUMNS[c]}" for c in ("descr", "software", "serial", "model")]


def _index_key(idx: str) -> tuple[int, ...]:
    return tuple(int(x) for x in idx.split(".") if x.isdigit())


# --- identification ------------------------------------------------------------------


def _entity_rows(snap: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    names = {str(n): k for k, n in ENT_COLUMNS.items()}
    base = ENT + "."
    for oid, val in snap.items():
        if oid.startswith(base):
            col, _, idx = oid[len(base):].partition(".")
            if col in names and idx:
                # Of the SMI type the MIB defines, or ignored: entPhysicalClass is an INTEGER,
                # every other column read here an OCTET STRING (an agent answering an INTEGER
                # or an OID for a serial or a model is not believed).
                key = names[col]
                if isinstance(val, bytes) if key != "class" else (isinstance(val, int) and not isinstance(val, bool)):
                    rows.setdefault(idx, {})[key] = val
    return rows


def _real(value: Any) -> bool:
    t = text(value)
    return bool(t) and t.lower() not in _PLACEHOLDERS


def _chassis(snap: Mapping[str, Any]) -> dict[str, Any]:
    """The ENTITY-MIB row that describes the box.

    The first chassis (class 3) row with a model or serial, else the first chassis row,
    else the first row with a real model, then with a real serial (placeholders such as
    '<private>' do not count), else the first row.
    """
    rows = _entity_rows(snap)
    ordered = sorted(rows, key=_index_key)
    tests = (lambda r: r.get("class") == 3 and (_real(r.get("model")) or _real(r.get("serial"))),
             lambda r: r.get("class") == 3,
             lambda r: _real(r.get("model")),
             lambda r: _real(r.get("serial")))
    for test in tests:
        for idx in ordered:
            if test(rows[idx]):
                return rows[idx]
    return rows[ordered[0]] if ordered else {}


def _first_under(snap: Mapping[str, Any], column: str) -> Any:
    best: tuple[tuple[int, ...], Any] | None = None
    for oid, val in snap.items():
        if oid.startswith(column + ".") and text(val):
            k = tuple(int(x) for x in oid[len(column) + 1:].split(".") if x.isdigit())
            if best is None or k < best[0]:
                best = (k, val)
    return best[1] if best else None


def relative_oid(objid: str, spec: Mapping[str, Any]) -> str | None:
    """An object under the device's own sysObjectID (per-model MIBs: Zyxel, Edgecore, Moxa, Allied).

    ``{"objid": ".1.10.0", "up": 1}``: sysObjectID without its last ``up`` arcs, then the suffix.
    """
    if not objid or not _NUMERIC_OID.fullmatch(objid) or not objid.startswith(ENTERPRISES):
        return None
    arcs = objid.split(".")
    up = int(spec.get("up", 0))
    if up >= len(arcs) - 7:
        return None
    return ".".join(arcs[: len(arcs) - up]) + spec["objid"]


def _source(spec: Mapping[str, Any], snap: Mapping[str, Any], chassis: Mapping[str, Any]) -> Any:
    if "oid" in spec:
        return snap.get(spec["oid"])
    if "objid" in spec:
        rel = relative_oid(text(snap.get(SYS["objectid"]), 256) or "", spec)
        return snap.get(rel) if rel else None
    if "sys" in spec:
        return snap.get(SYS[spec["sys"]])
    if "entity" in spec:
        return chassis.get(spec["entity"])
    if "first" in spec:  # first non-empty row of a walked column
        return _first_under(snap, spec["first"])
    if "const" in spec:
        return spec["const"]
    if "product_name" in spec:  # the registered name of the sysObjectID itself
        return sysobjectid_names().get(text(snap.get(SYS["objectid"]), 256) or "")
    return None


_SPEC_NAMES = {"oid": "{}", "sys": "sys{}", "entity": "ENTITY-MIB chassis {}", "first": "first row of {}",
               "const": "rule constant", "objid": "sysObjectID + {}",
               "product_name": "registered name of the sysObjectID (sysobjectid_names.json){}"}


def _spec_name(spec: Mapping[str, Any]) -> str:
    for key, form in _SPEC_NAMES.items():
        if key in spec:
            return form.format(str(spec[key]).capitalize() if key == "sys" else spec[key])
    return "?"


def extract(specs: list[Mapping[str, Any]], snap: Mapping[str, Any], chassis: Mapping[str, Any],
            limit: int = 256, how: dict[str, str] | None = None, field: str = "") -> str | None:
    """First non-empty value produced by a list of extractor specs (``how[field]`` says which)."""
    for spec in specs:
        raw = _source(spec, snap, chassis)
        value = _line(raw, 4096)
        if not value:
            continue
        if "_re" in spec:
            m = spec["_re"].search(value)
            if not m:
                continue
            groups = [g for g in m.groups() if g] if m.groups() else [m.group(0)]
            if not groups:
                continue
            value = spec.get("join", "").join(groups) if "join" in spec else groups[0]
        value = value.strip(" ,;\"'")
        if value and value.lower() not in _PLACEHOLDERS:
            if how is not None and field:
                how[field] = _spec_name(spec)
            return clip(value, limit)
    return None


_PLACEHOLDERS = {"", "n/a", "na", "unknown", "none", "0", "<private>", "unavailable", "not available",
                 "serialnumber", "serial number", "default string", "to be filled by o.e.m."}
_KERNEL = re.compile(r"^Linux \S+ (\d+\.\d+[\w.+-]*)|\bLinux (\d+\.\d+\.\d+[\w.+-]*)|^FreeBSD \S+ (\d+\.\d+-\w+)")


def kernel_version(descr: str | None) -> str | None:
    """The kernel release a Linux/FreeBSD sysDescr names ("Linux host 5.15.0-105-generic ...")."""
    m = _KERNEL.search(descr or "")
    return next((g for g in m.groups() if g), None) if m else None


def match_rule(snap: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first rule (in file order) one of whose clauses holds for this snapshot."""
    objid = text(snap.get(SYS["objectid"])) or ""
    descr = text(snap.get(SYS["descr"]), 4096) or ""
    for rule, clauses in _pre_matches(objid, descr):
        for clause in clauses:
            if any(not text(snap.get(o)) for o in clause.get("has", [])):
                continue
            if all(rx.search(_line(snap.get(oid), 4096) or "") for oid, rx in clause.get("_match", {}).items()):
                return rule
    return None


def enterprise_of(objid: str | None) -> int | None:
    if objid and objid.startswith(ENTERPRISES):
        head = objid[len(ENTERPRISES):].split(".")[0]
        if head.isdigit():
            return int(head)
    return None


def identify(snap: Mapping[str, Any]) -> Identification:
    """Apply the rules to a snapshot of SNMP values."""
    chassis = _chassis(snap)
    objid = text(snap.get(SYS["objectid"]), 256)
    if objid is not None and not _NUMERIC_OID.fullmatch(objid):
        objid = None  # a sysObjectID that is not an OID is ignored, not trusted
    ident = Identification(
        sys_object_id=objid,
        description=text(snap.get(SYS["descr"]), 1024),
        hostname=_line(snap.get(SYS["name"]), 255),
        location=_line(snap.get(SYS["location"]), 255),
        contact=_line(snap.get(SYS["contact"]), 255),
        enterprise=enterprise_of(objid),
    )
    up = snap.get(SYS["uptime"])
    if isinstance(up, int) and up >= 0:
        ident.uptime_seconds = up // 100
    rule = match_rule(snap)
    defaults = load_rules()["defaults"]
    if rule is not None:
        ident.rule = rule["id"]
        ident.vendor = rule.get("vendor")
        ident.kind = rule.get("kind", "other")
        ident.os_family = rule.get("os_family")
        ident.product = rule.get("product")
        ident.os_name = extract(rule.get("os_name", []), snap, chassis) or rule.get("name")
        for k in rule.get("kinds", []):
            if k["_re"].search(_line(_source(k, snap, chassis), 4096) or ""):
                ident.kind = k["kind"]
                ident.product = k.get("product", ident.product)
                break
        for v in rule.get("vendors", []):
            if v["_re"].search(_line(_source(v, snap, chassis), 4096) or ""):
                ident.vendor = v["vendor"]
                break
    else:
        rule = {}
    if ident.vendor is None and ident.enterprise is not None:
        ident.vendor = vendor_of_enterprise(ident.enterprise)
    how: dict[str, str] = {}
    ident.how = how
    if ident.rule:
        how["family"] = f"rule {ident.rule}: {rule.get('source', '')}"
    if ident.vendor and ident.rule is None:
        how["vendor"] = f"IANA enterprise number {ident.enterprise} in sysObjectID"
    ident.version_raw = extract(rule.get("version", []) + defaults["version"], snap, chassis, how=how, field="version")
    kernel = kernel_version(ident.description)
    if (ident.version_raw and kernel and rule.get("version_style") != "kernel"
            and normalize_version(ident.version_raw) == normalize_version(kernel)):
        # An appliance's sysDescr names the Linux/BSD kernel it runs: that is not its OS version.
        ident.version_raw = None
        how["version"] = f"kernel {kernel} in sysDescr is not the appliance's version"
    ident.os_version = normalize_version(ident.version_raw, rule.get("version_style"))
    ident.model = extract(rule.get("model", []) + defaults["model"], snap, chassis, how=how, field="model")
    ident.serial = extract(rule.get("serial", []) + defaults["serial"], snap, chassis, 128, how=how, field="serial")
    ident.firmware = extract(rule.get("firmware", []), snap, chassis) or _line(chassis.get("firmware"), 128)
    ident.hardware_rev = _line(chassis.get("hardware"), 64)
    ident.manufacture_date = (parse_date(chassis.get("mfg_date"))
                              or parse_date(snap.get(rule.get("manufacture_date_oid", ""))))
    if ident.vendor is None:
        ident.vendor = extract(defaults.get("vendor", []), snap, chassis, 128, how=how, field="vendor")
    _interfaces(ident, snap)
    _ups(ident, snap, rule)
    memory = snap.get(HR_MEMORY_SIZE)  # HOST-RESOURCES-MIB hrMemorySize, in KiB
    if isinstance(memory, int) and 0 < memory < 2**40:
        ident.memory_bytes = memory * 1024
    _host_resources(ident, snap)
    return ident


def _column(snap: Mapping[str, Any], column: str) -> dict[tuple[int, ...], Any]:
    """One walked table column as {index: value}, in index order."""
    rows = {_index_key(oid[len(column) + 1:]): val for oid, val in snap.items() if oid.startswith(column + ".")}
    return dict(sorted(rows.items()))


def _host_resources(ident: Identification, snap: Mapping[str, Any]) -> None:
    """HOST-RESOURCES-MIB: host uptime, processors and fixed disks (when they were read).

    hrSystemUptime is in the RFC 2790 compliance's mandatory hrSystemGroup and is walked
    with the tables: without it nothing of HOST-RESOURCES was read.
    """
    if HR_SYSTEM_UPTIME not in snap:
        return
    snap = {oid: val for oid, val in snap.items() if oid.startswith(HR_PREFIX)}
    up = snap.get(HR_SYSTEM_UPTIME)
    if isinstance(up, int) and up > 0:
        ident.uptime_seconds = up // 100  # the host's, not the SNMP agent's (sysUpTime)
        ident.how["uptime"] = "HOST-RESOURCES hrSystemUptime"
    types = _column(snap, HR_DEVICE_TYPE)
    descrs = _column(snap, HR_DEVICE_DESCR)
    cpus = [idx for idx, t in types.items() if isinstance(t, str) and t.strip(".") == HR_PROCESSOR]
    if cpus:
        model = _line(descrs.get(cpus[0]), 128)
        ident.cpu_model = _CPU_VENDOR_ID.sub("", model) if model else None
        # Every processor is counted only if a row of another type follows the last one
        # (the walk reads a few rows, and processors come first in hrDeviceTable).
        if any(idx > cpus[-1] for idx in types if idx not in cpus):
            ident.cpu_cores = len(cpus)
    kinds = _column(snap, HR_STORAGE + ".2")
    names = _column(snap, HR_STORAGE + ".3")
    units = _column(snap, HR_STORAGE + ".4")
    sizes = _column(snap, HR_STORAGE + ".5")
    for idx, kind in kinds.items():
        if not (isinstance(kind, str) and kind.strip(".") == HR_FIXED_DISK):
            continue
        unit, size, name = units.get(idx), sizes.get(idx), _line(names.get(idx), 128)
        if (isinstance(unit, int) and isinstance(size, int) and unit > 0 and size > 0 and name
                and not _PSEUDO_MOUNT.match(name)):
            ident.disks.append((name, unit * size))
        if len(ident.disks) >= MAX_DISKS:
            break


_VERSION_CORE = re.compile(r"\d+(?:\.\d+)*\(\d+[a-zA-Z]?\)[\w().]*|\d+(?:\.\d+)+[a-zA-Z]?")
_BARE_NUMBER = re.compile(r"\d+")


def normalize_version(raw: str | None, style: str | None = None) -> str | None:
    """A comparable version: "v7.2.5,build1517" -> "7.2.5"; IOS "15.0(2)SE11" kept whole."""
    if not raw:
        return None
    s = raw.strip()
    if style == "raw":
        return clip(s, 64)
    s = re.sub(r"^[vV](?=\d)", "", s)
    # A dotted or IOS-style core anywhere beats a bare leading number: Kyocera's
    # "2S0_2000.003.504" is version 2000.003.504, not 2.
    m = _VERSION_CORE.search(s) or _BARE_NUMBER.search(s)
    return clip(m.group(0) if m else s, 64)


def numeric_core(version: str | None) -> tuple[int, ...]:
    """Leading numeric components of a version, for comparisons: "17.09.04a" -> (17, 9, 4)."""
    if not version:
        return ()
    m = re.search(r"\d+(?:[.(]\d+)*", version)
    return tuple(int(x) for x in re.split(r"[.(]", m.group(0))) if m else ()


def parse_date(value: Any) -> dt.date | None:
    """SNMP DateAndTime octets, "MM/DD/YYYY", "MM/DD/YY" or ISO text -> date."""
    if value is None:
        return None
    if isinstance(value, bytes) and len(value) in (8, 11):
        year = int.from_bytes(value[:2], "big")
        try:
            return dt.date(year, value[2], value[3]) if year > 1970 else None
        except ValueError:
            pass
    s = text(value, 64) or ""
    for pattern, order in ((r"(\d{4})-(\d{2})-(\d{2})", "ymd"), (r"(\d{1,2})/(\d{1,2})/(\d{4})", "mdy"),
                           (r"(\d{1,2})/(\d{1,2})/(\d{2})\b", "mdy2")):
        m = re.search(pattern, s)
        if not m:
            continue
        a, b, c = (int(x) for x in m.groups())
        try:
            if order == "ymd":
                return dt.date(a, b, c)
            return dt.date(c + (2000 if order == "mdy2" else 0), a, b)
        except ValueError:
            return None
    return None


def _interfaces(ident: Identification, snap: Mapping[str, Any]) -> None:
    types: dict[str, int] = {}
    speeds: dict[str, int] = {}
    for oid, val in snap.items():
        if oid.startswith(IF_TYPE + ".") and isinstance(val, int):
            types[oid[len(IF_TYPE) + 1:]] = val
        elif oid.startswith(IF_HIGH_SPEED + ".") and isinstance(val, int):
            speeds[oid[len(IF_HIGH_SPEED) + 1:]] = val
    ports = [idx for idx, t in types.items() if t in ETHERNET_TYPES]
    if ports:
        ident.port_count = len(ports)
    for idx in ports:
        mbps = speeds.get(idx)
        if mbps:
            label = f"{mbps // 1000}G" if mbps >= 1000 else f"{mbps}M"
            ident.port_speeds[label] = ident.port_speeds.get(label, 0) + 1


_UPS_BATTERY = {1: "unknown", 2: "normal", 3: "low", 4: "depleted"}  # UPS-MIB upsBatteryStatus
_APC_BATTERY = {1: "unknown", 2: "normal", 3: "low", 4: "fault"}  # PowerNet upsBasicBatteryStatus


def _ups(ident: Identification, snap: Mapping[str, Any], rule: Mapping[str, Any]) -> None:
    ups = load_rules()["ups"]
    ident.battery_replace_date = parse_date(snap.get(ups["apc_last_replace"]))
    status = snap.get(ups["apc_battery_status"])
    if isinstance(status, int):
        ident.battery_status = _APC_BATTERY.get(status)
    elif isinstance(snap.get(ups["ups_battery_status"]), int):
        ident.battery_status = _UPS_BATTERY.get(snap[ups["ups_battery_status"]])
    if snap.get(ups["apc_replace_indicator"]) == 2:
        ident.battery_status = "replace"  # upsAdvBatteryReplaceIndicator: batteryNeedsReplacing


def apply(ident: Identification, facts: DeviceFacts, *, address: str | None = None) -> None:
    """Write an identification into a DeviceFacts (identity, software, hardware)."""
    i, s, h = facts.identity, facts.software, facts.hardware
    i.address = address
    i.kind, i.vendor, i.model, i.serial = ident.kind, ident.vendor, ident.model, ident.serial
    i.hostname, i.description, i.location, i.contact = (ident.hostname, ident.description,
                                                       ident.location, ident.contact)
    i.sys_object_id, i.uptime_seconds = ident.sys_object_id, ident.uptime_seconds
    s.os_family, s.os_name, s.os_version, s.product = (ident.os_family, ident.os_name,
                                                       ident.os_version, ident.product)
    s.os_build = ident.version_raw if ident.version_raw != ident.os_version else None
    s.firmware = ident.firmware
    h.vendor, h.model, h.serial = ident.vendor, ident.model, ident.serial
    h.manufacture_date = ident.manufacture_date
    h.port_count = ident.port_count
    h.memory_bytes = ident.memory_bytes
    if ident.cpu_model or ident.cpu_cores:
        h.cpu_model, h.cpu_cores = ident.cpu_model, ident.cpu_cores
    if ident.disks:
        h.disks = [Disk(name=name, size_bytes=size) for name, size in ident.disks]
    h.battery_replace_date, h.battery_status = ident.battery_replace_date, ident.battery_status
    if ident.rule is None:
        facts.gaps["software.os_family"] = "no fingerprint rule matched this device"
    elif ident.os_family is None:
        facts.gaps["software.os_family"] = (f"{ident.vendor or 'the vendor'} is known but the evidence does not "
                                            "decide which operating system or firmware family it runs")
    if ident.os_version is None:
        facts.gaps["software.os_version"] = "the device does not report a version we recognise"
    if ident.how:
        facts.evidence["snmp_identified_by"] = clip("; ".join(f"{k}: {v}" for k, v in ident.how.items()), 1000)
    if ident.port_speeds:
        speeds = sorted(ident.port_speeds.items())
        facts.evidence["snmp_port_speeds"] = ", ".join(f"{n}x{k}" for k, n in speeds)


def evidence(snap: Mapping[str, Any], limit: int) -> str:
    """Bounded raw evidence: the system group and the identifying values, one per line."""
    keep = [SYS["descr"], SYS["objectid"], SYS["name"]]
    lines = [f"{o} = {_line(snap.get(o), 300)}" for o in keep if snap.get(o) is not None]
    for oid in sorted(snap):
        if oid in keep or oid.startswith((IF_TYPE, IF_HIGH_SPEED)):
            continue
        val = _line(snap[oid], 120)
        if val:
            lines.append(f"{oid} = {val}")
        if sum(len(x) for x in lines) > limit:
            break
    return clip("\n".join(lines), limit) or ""

"""Parse the output of ``probes/windows.ps1`` (one compact JSON line per section).

Pure functions, no I/O; ``parse_windows`` never raises. Handles what Windows PowerShell
5.1 and PowerShell 7 really print: ``\\/Date(ms)\\/`` and ISO dates, DMTF strings, dates
wrapped in ``{"value": …, "DateTime": …}``, a single object where an array was expected,
enums as numbers or names, output in UTF-16 or an OEM code page, and localized text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from collectors.sections import ProbeOutput, split_sections
from itaudit.model import DeviceFacts, Disk, Kind, Service, clip

SOURCE = "ssh:windows-probe"

SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "os": ("software.os_name", "software.os_version", "software.product", "software.release",
           "software.install_date", "software.last_boot", "identity.hostname"),
    "cv": ("software.os_build", "software.edition"),
    "cs": ("hardware.vendor", "hardware.model", "hardware.memory_bytes"),
    "bios": ("hardware.bios_vendor", "hardware.bios_version", "hardware.bios_date", "hardware.serial"),
    "cpu": ("hardware.cpu_model", "hardware.cpu_cores"),
    "disks": ("hardware.disks",),
    "tpm": ("hardware.tpm_version",),
    "secureboot": ("hardware.secure_boot",),
    "hotfixes": ("patching.hotfixes", "patching.last_patched"),
    "wu": ("patching.pending_updates", "patching.security_updates"),
    "reboot": ("patching.reboot_required",),
    "au": ("patching.auto_updates",),
    "defender": ("posture.antivirus", "posture.antivirus_enabled", "posture.av_signature_age_days"),
    "firewall": ("posture.firewall_active",),
    "bitlocker": ("posture.disk_encryption",),
    "smb": ("posture.smb1_enabled",),
    "rdp": ("posture.rdp_enabled", "posture.rdp_nla"),
    "admins": ("posture.local_admins",),
    "listening": ("posture.listening",),
}

# Windows 10/11 feature updates by build, as endoflife.date names their release cycles.
_CLIENT_BUILDS = {
    10240: "10-1507", 10586: "10-1511", 14393: "10-1607", 15063: "10-1703", 16299: "10-1709",
    17134: "10-1803", 17763: "10-1809", 18362: "10-1903", 18363: "10-1909", 19041: "10-2004",
    19042: "10-20h2", 19043: "10-21h1", 19044: "10-21h2", 19045: "10-22h2",
    7601: "7-sp1", 9200: "8", 9600: "8.1",
    22000: "11-21h2", 22621: "11-22h2", 22631: "11-23h2", 26100: "11-24h2", 26200: "11-25h2",
    28000: "11-26h1",
}
# Cycles that endoflife.date splits into Enterprise/Education ("-e") and Home/Pro ("-w").
_SPLIT_CYCLES = {"10-1607", "10-1703", "10-1709", "10-1803", "10-1809", "10-1909", "10-20h2", "10-21h2",
                 "11-21h2", "11-22h2", "11-23h2", "11-24h2", "11-25h2", "11-26h1"}
_LTSC_CYCLES = {"10-1507", "10-1607", "10-1809", "10-21h2", "11-24h2"}
_SERVER_BUILDS = {6001: "2008-sp2", 6002: "2008-sp2", 6003: "2008-sp2",
                  7601: "2008-r2-sp1", 9200: "2012", 9600: "2012-r2", 14393: "2016",
                  17763: "2019", 20348: "2022", 26100: "2025"}
_EDITIONS = {
    "professional": "Pro", "professionaln": "Pro N", "core": "Home", "coresinglelanguage": "Home",
    "enterprise": "Enterprise", "enterprisen": "Enterprise N", "education": "Education",
    "educationn": "Education N", "enterprises": "Enterprise LTSC", "iotenterprises": "IoT Enterprise LTSC",
    "iotenterprise": "IoT Enterprise", "professionalworkstation": "Pro for Workstations",
    "serverstandard": "Standard", "serverdatacenter": "Datacenter", "serversolution": "Essentials",
}
_LAPTOP_CHASSIS = {8, 9, 10, 11, 14, 30, 31, 32}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def decode_output(data: str | bytes | None) -> str:
    """Decode probe bytes: UTF-16 (BOM or NULs), else UTF-8, else Windows-1252; never raises."""
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if len(data) > 8 and data[1:200:2].count(0) > len(data[1:200:2]) * 0.8:
        return data.decode("utf-16-le", errors="replace")
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_windows(data: str | bytes | None) -> DeviceFacts:
    """Parse Windows probe output (text or bytes, possibly cut short) into facts; never raises."""
    facts = DeviceFacts()
    facts.software.os_family = "windows"
    try:
        out = split_sections(decode_output(data))
    except Exception as exc:  # defensive: nothing may escape a parser
        for section in SECTION_FIELDS:
            _gap_fields(facts, section, f"probe output unreadable: {type(exc).__name__}")
        return facts
    _parse_into(facts, out)
    return facts


def _parse_into(facts: DeviceFacts, out: ProbeOutput) -> None:
    for name in ("identity", "software", "hardware", "patching", "posture"):
        facts.sources[name] = SOURCE
    values: dict[str, Any] = {}
    for name, text in out.sections.items():
        values[name] = _json_line(text)
    meta = values.get("meta") if isinstance(values.get("meta"), dict) else {}
    collected = _date_time(meta.get("date")) if meta else None
    if collected:
        facts.collected_at = collected.isoformat()
    ctx: dict[str, Any] = {"collected": collected, "values": values}
    for section, fn in _PARSERS:
        if section not in out.sections:
            _gap_fields(facts, section, "section missing (probe cut short)" if not out.complete
                        else "section missing")
            continue
        v = values.get(section)
        if section == out.last and not out.complete:
            _gap_fields(facts, section, "section truncated (probe cut short)")
            continue
        if v is _BAD:
            _gap_fields(facts, section, "section is not valid JSON")
            continue
        if isinstance(v, dict) and "_error" in v:
            _gap_fields(facts, section, f"probe error: {clip(v.get('_error'), 160)}")
            ctx[f"error:{section}"] = str(v.get("_error") or "")
            if section not in ("secureboot", "tpm"):
                continue
        try:
            fn(facts, v, ctx)
        except Exception as exc:  # one bad section must not lose the others
            _gap_fields(facts, section, f"section unparseable: {type(exc).__name__}")
    _finish(facts, ctx)
    if facts.identity.kind is None:
        facts.identity.kind = Kind.WORKSTATION.value
    for dotted in [k for k in facts.gaps if facts.get(k) not in (None, [], "")]:
        del facts.gaps[dotted]


_BAD = object()


def _json_line(text: str) -> Any:
    for line in text.splitlines():
        s = line.strip()
        if s[:1] in ("{", "[", '"') or s in ("true", "false", "null") or s[:1].isdigit():
            try:
                return json.loads(s)
            except ValueError:
                continue
    return _BAD


# --- helpers ---------------------------------------------------------------------------


def _gap(facts: DeviceFacts, dotted: str, reason: str) -> None:
    facts.gaps.setdefault(dotted, reason)


def _gap_fields(facts: DeviceFacts, section: str, reason: str) -> None:
    for f in SECTION_FIELDS.get(section, ()):
        if facts.get(f) in (None, [], ""):
            _gap(facts, f, reason)


def _one(v: Any) -> dict[str, Any]:
    """PowerShell prints a lone object where an array was expected, and vice versa."""
    if isinstance(v, list):
        v = next((x for x in v if isinstance(x, dict)), {})
    return v if isinstance(v, dict) else {}


def _many(v: Any) -> list[Any]:
    if v is None or (isinstance(v, dict) and ("_empty" in v or "_error" in v)):
        return []
    return v if isinstance(v, list) else [v]


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1", "yes", "on", "wahr"):
            return True
        if s in ("false", "0", "no", "off", "falsch"):
            return False
    return None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


_MSDATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
_DMTF = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})")


def _date_time(v: Any) -> dt.datetime | None:
    """Every date form PowerShell emits, to an aware UTC datetime (None when unreadable)."""
    if isinstance(v, dict):
        v = v.get("value", v.get("DateTime"))
    if isinstance(v, int | float) and not isinstance(v, bool):
        return None
    if not isinstance(v, str) or not v.strip():
        return None
    s = v.strip()
    m = _MSDATE.search(s)
    try:
        if m:
            d = _EPOCH + dt.timedelta(milliseconds=int(m.group(1)))
        elif _DMTF.match(s) and "-" not in s[:8]:
            g = _DMTF.match(s).groups()  # type: ignore[union-attr]
            d = dt.datetime(*map(int, g), tzinfo=dt.UTC)
        elif re.match(r"\d{4}-\d{2}-\d{2}", s):
            s = re.sub(r"(\.\d{6})\d+", r"\1", s).replace("Z", "+00:00")
            d = dt.datetime.fromisoformat(s)
            d = d if d.tzinfo else d.replace(tzinfo=dt.UTC)
        elif m2 := re.match(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", s):  # de-DE: 14.11.2023
            d = dt.datetime(int(m2.group(3)), int(m2.group(2)), int(m2.group(1)), tzinfo=dt.UTC)
        elif m3 := re.match(r"(\d{1,2})/(\d{1,2})/(\d{4})", s):  # en-US: 11/14/2023
            d = dt.datetime(int(m3.group(3)), int(m3.group(1)), int(m3.group(2)), tzinfo=dt.UTC)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    if d.year < 1980:  # 1601/1970 placeholders mean "never"
        return None
    return d.astimezone(dt.UTC)


def _date(v: Any) -> dt.date | None:
    d = _date_time(v)
    return d.date() if d else None


def _text(v: Any, limit: int = 256) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return clip(s, limit) if s else None


# --- sections --------------------------------------------------------------------------


def _os(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    sw = facts.software
    caption = _text(o.get("Caption"), 128)
    sw.os_name = caption
    sw.os_version = _text(o.get("Version"), 32)
    build = _int(o.get("BuildNumber"))
    ctx["build"] = build
    ptype = _int(o.get("ProductType"))
    server = ptype in (2, 3) if ptype is not None else "server" in (caption or "").lower()
    ctx["server"] = server
    sw.product = "windows-server" if server else "windows"
    sw.install_date = _date(o.get("InstallDate"))
    boot = _date_time(o.get("LastBootUpTime"))
    sw.last_boot = boot.isoformat() if boot else None
    sw.arch = _text(o.get("OSArchitecture"), 32)
    facts.identity.hostname = _text(o.get("CSName"), 255)
    if server:
        facts.identity.kind = Kind.SERVER.value
    collected = ctx.get("collected")
    if boot and isinstance(collected, dt.datetime) and collected >= boot:
        facts.identity.uptime_seconds = int((collected - boot).total_seconds())


def _cv(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    sw = facts.software
    build = ctx.get("build") or _int(o.get("CurrentBuild"))
    ubr = _int(o.get("UBR"))
    if build:
        sw.os_build = f"{build}.{ubr}" if ubr is not None else str(build)
    edition_id = str(o.get("EditionID") or "")
    ctx["edition_id"] = edition_id
    ctx["display_version"] = str(o.get("DisplayVersion") or o.get("ReleaseId") or "")
    if sw.os_version is None and build:
        sw.os_version = f"10.0.{build}" if build >= 10240 else None
    if sw.install_date is None:
        ts = _int(o.get("InstallDate"))
        if ts:
            sw.install_date = dt.datetime.fromtimestamp(ts, dt.UTC).date()


def _finish_os(facts: DeviceFacts, ctx: dict) -> None:
    sw = facts.software
    build = ctx.get("build")
    if build is None and sw.os_build:
        build = _int(sw.os_build.split(".")[0])
    edition_id = (ctx.get("edition_id") or "").lower()
    caption = sw.os_name or ""
    server = ctx.get("server")
    if server is None:
        server = "server" in caption.lower() or edition_id.startswith("server")
        if sw.os_name or edition_id:
            sw.product = "windows-server" if server else "windows"
    if server:
        m = re.search(r"\b(Standard|Datacenter|Essentials|Foundation|Enterprise|Web)\b", caption, re.I)
        sw.edition = m.group(1).title() if m else _EDITIONS.get(edition_id)
        sw.release = _SERVER_BUILDS.get(build or 0)
        if sw.release is None and build:
            _gap(facts, "software.release", f"unrecognised Windows Server build {build}")
        if facts.identity.kind in (None, Kind.WORKSTATION.value):
            facts.identity.kind = Kind.SERVER.value
        return
    sw.edition = _EDITIONS.get(edition_id) or (_text(ctx.get("edition_id"), 64) if edition_id else None)
    if sw.edition is None:
        m = re.search(r"Windows \d+ (.+)$", caption)
        sw.edition = _text(m.group(1), 64) if m else None
    cycle = _CLIENT_BUILDS.get(build or 0)
    if cycle is None:
        if build:
            _gap(facts, "software.release", f"unrecognised Windows build {build}")
        return
    if build and build >= 22000 and not cycle.startswith("11"):
        cycle = "11" + cycle[2:]
    ltsc = edition_id.endswith("s") and edition_id.startswith(("enterprise", "iotenterprise"))
    if ltsc and cycle in _LTSC_CYCLES:
        cycle += "-iot-lts" if edition_id.startswith("iot") else "-e-lts"
    elif cycle in _SPLIT_CYCLES:
        ent = edition_id.startswith(("enterprise", "education", "iotenterprise"))
        cycle += "-e" if ent else "-w"
    sw.release = cycle


# Editions as Active Directory's operatingSystem attribute spells them ("Windows 10 Enterprise
# LTSC"), mapped to the EditionID the probe reads from the registry. First match wins.
_CAPTION_EDITIONS = (
    ("iot enterprise ltsc", "iotenterprises"), ("iot enterprise", "iotenterprise"),
    ("enterprise ltsc", "enterprises"), ("ltsb", "enterprises"), ("enterprise", "enterprise"),
    ("pro education", "education"), ("education", "education"),
    ("pro for workstations", "professionalworkstation"), ("professional", "professional"), (" pro", "professional"),
    ("home", "core"),
)


def judge_os(facts: DeviceFacts, caption: str | None, build: int | None) -> None:
    """Product, edition and lifecycle release from an OS name and build alone.

    The directory collector knows only ``operatingSystem`` ("Windows 10 Enterprise") and the
    build from ``operatingSystemVersion``; this applies the same build and edition tables as
    the probe's parser, so both paths name the same release.
    """
    caption = caption or ""
    low = f" {caption.lower()}"
    edition_id = next((eid for words, eid in _CAPTION_EDITIONS if words in low), "")
    server = "server" in low
    facts.software.product = "windows-server" if server else "windows"
    _finish_os(facts, {"build": build, "server": server, "edition_id": edition_id})


def _cs(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    hw = facts.hardware
    hw.vendor = _text(o.get("Manufacturer"), 128)
    hw.model = _text(o.get("Model"), 128)
    hw.memory_bytes = _int(o.get("TotalPhysicalMemory"))
    facts.identity.vendor, facts.identity.model = hw.vendor, hw.model
    model = (hw.model or "").lower()
    vendor = (hw.vendor or "").lower()
    virt = "none"
    if "virtual machine" in model and "microsoft" in vendor:
        virt = "microsoft"
    elif "vmware" in model or "vmware" in vendor:
        virt = "vmware"
    elif "kvm" in model or "qemu" in vendor or model.startswith("standard pc"):
        virt = "kvm"
    elif "virtualbox" in model:
        virt = "oracle"
    facts.software.virtualization = virt
    if not ctx.get("server") and _int(o.get("PCSystemType")) == 2:
        facts.identity.kind = Kind.LAPTOP.value


def _enclosure(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    types = o.get("ChassisTypes")
    types = types if isinstance(types, list) else [types]
    if not ctx.get("server") and any(_int(t) in _LAPTOP_CHASSIS for t in types):
        facts.identity.kind = Kind.LAPTOP.value
    ctx["enclosure_serial"] = o.get("SerialNumber")


_SERIAL_JUNK = {"", "0", "none", "default string", "to be filled by o.e.m.", "system serial number",
                "not specified", "0123456789"}


def _bios(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    hw = facts.hardware
    hw.bios_vendor = _text(o.get("Manufacturer"), 128)
    hw.bios_version = _text(o.get("SMBIOSBIOSVersion"), 128)
    hw.bios_date = _date(o.get("ReleaseDate"))
    if hw.bios_date is None:
        _gap(facts, "hardware.bios_date", "no BIOS release date reported")
    serial = _text(o.get("SerialNumber"), 128)
    if serial is None or serial.lower() in _SERIAL_JUNK:
        serial = _text(ctx.get("enclosure_serial"), 128)
    if serial is not None and serial.lower() in _SERIAL_JUNK:
        serial = None
    hw.serial = serial
    facts.identity.serial = serial


def _cpu(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    cpus = [c for c in _many(v) if isinstance(c, dict)]
    if not cpus:
        _gap(facts, "hardware.cpu_model", "no processor reported")
        return
    facts.hardware.cpu_model = _text(re.sub(r"\s+", " ", str(cpus[0].get("Name") or "")), 128)
    cores = [_int(c.get("NumberOfLogicalProcessors")) for c in cpus]
    facts.hardware.cpu_cores = sum(c for c in cores if c) or None


def _disks(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    disks = []
    for i, d in enumerate(x for x in _many(v) if isinstance(x, dict)):
        disks.append(Disk(name=f"disk{i}", size_bytes=_int(d.get("Size")), model=_text(d.get("Model"), 128)))
    facts.hardware.disks = disks


def _tpm(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    if "error:tpm" in ctx:
        return  # needs an administrator; the gap is recorded
    if isinstance(v, dict) and "_empty" in v:
        facts.hardware.tpm_version = "none"
        return
    o = _one(v)
    spec = str(o.get("SpecVersion") or "")
    m = re.match(r"\s*(\d+\.\d+)", spec)
    if m:
        facts.hardware.tpm_version = m.group(1)
    elif o:
        _gap(facts, "hardware.tpm_version", "TPM present but spec version unreadable")
    else:
        facts.hardware.tpm_version = "none"


def _secureboot(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    err = ctx.get("error:secureboot")
    if err is not None:
        # Legacy BIOS: "Cmdlet not supported on this platform: 0xC0000002" (any language).
        if "0xC0000002" in err or "not supported" in err.lower():
            facts.hardware.secure_boot = False
            facts.gaps.pop("hardware.secure_boot", None)
        return
    facts.hardware.secure_boot = _bool(_one(v).get("enabled"))


def _hotfixes(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    collected = ctx.get("collected")
    today = collected.date() if isinstance(collected, dt.datetime) else dt.date.today()
    latest_ok = today + dt.timedelta(days=1)
    ids, dates = [], []
    unreliable = 0
    for hf in _many(v):
        if not isinstance(hf, dict):
            continue
        hid = _text(hf.get("HotFixID"), 32)
        if hid:
            ids.append(hid)
        d = _date(hf.get("InstalledOn"))
        # InstalledOn is parsed by Windows with the current culture and is often empty or
        # day/month swapped (a date in the future); such dates are not used.
        if d is None or d > latest_ok:
            unreliable += 1
            continue
        dates.append(d)
    facts.patching.hotfixes = ids
    facts.patching.package_manager = "windows-update"
    ctx["hotfix_dates"] = dates
    if unreliable:
        facts.add_evidence("hotfixes", f"{unreliable} of {len(ids)} hotfixes had no usable InstalledOn date")


def _wu(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    facts.patching.pending_updates = _int(o.get("pending"))
    facts.patching.security_updates = _int(o.get("security"))
    ctx["wu_last"] = _date(o.get("last_success"))


def _reboot(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    flags = [_bool(o.get(k)) for k in ("wu", "cbs")]
    if any(f is not None for f in flags):
        facts.patching.reboot_required = any(bool(f) for f in flags)


def _au(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    svc = str(o.get("wuauserv") or "").lower()
    no_auto = _int(o.get("NoAutoUpdate"))
    options = _int(o.get("AUOptions"))
    if svc in ("disabled", "4") or no_auto == 1 or options == 2:
        facts.patching.auto_updates = False
    elif options in (3, 4, 5):
        facts.patching.auto_updates = True
    elif ctx.get("server"):
        _gap(facts, "patching.auto_updates", "no Windows Update policy set (server default is download only)")
    else:
        facts.patching.auto_updates = True  # client default without a policy: automatic


def _defender(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    po = facts.posture
    if o.get("AMServiceEnabled") is not None or o.get("AntivirusEnabled") is not None:
        po.antivirus = "Microsoft Defender"
        po.antivirus_enabled = bool(_bool(o.get("AntivirusEnabled")) and
                                    _bool(o.get("RealTimeProtectionEnabled")) is not False)
    age = _int(o.get("AntivirusSignatureAge"))
    last = _date_time(o.get("AntivirusSignatureLastUpdated"))
    collected = ctx.get("collected")
    if age is not None and 0 <= age < 65000:
        po.av_signature_age_days = age
    elif last and isinstance(collected, dt.datetime):
        po.av_signature_age_days = max(0, (collected - last).days)


def _av(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    po = facts.posture
    for p in _many(v):
        if not isinstance(p, dict):
            continue
        name = _text(p.get("displayName"), 128)
        state = _int(p.get("productState"))
        if not name or "defender" in name.lower() or state is None:
            continue
        # productState: bits 12-15 = 1 when real-time scanning is on; bits 4-7 = 0 when
        # signatures are current.
        if (state >> 12) & 0xF == 1:
            po.antivirus, po.antivirus_enabled = name, True
            if (state >> 4) & 0xF != 0 and po.av_signature_age_days is None:
                _gap(facts, "posture.av_signature_age_days", f"{name} reports out-of-date signatures")
            return
    if po.antivirus is None and _many(v):
        names = [_text(p.get("displayName"), 64) for p in _many(v) if isinstance(p, dict)]
        po.antivirus = ", ".join(n for n in names if n) or None


def _firewall(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    profiles = {}
    for p in _many(v):
        if isinstance(p, dict) and p.get("Name") is not None:
            profiles[str(p["Name"])] = _bool(p.get("Enabled"))
    if not profiles:
        _gap(facts, "posture.firewall_active", "no firewall profiles reported")
        return
    known = [e for e in profiles.values() if e is not None]
    facts.posture.firewall_active = all(known) if known else None
    facts.posture.firewall_detail = clip(
        ", ".join(f"{n}: {'on' if e else 'off' if e is False else '?'}" for n, e in profiles.items()), 256)


def _bitlocker(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    vols = [x for x in _many(v) if isinstance(x, dict)]
    if not vols:
        _gap(facts, "posture.disk_encryption", "no encryptable volume reported")
        return
    os_vols = [x for x in vols if _int(x.get("VolumeType")) == 0] or [
        x for x in vols if str(x.get("DriveLetter") or "").upper().startswith("C")]
    status = [_int(x.get("ProtectionStatus")) for x in (os_vols or vols)]
    if any(s == 2 or s is None for s in status):
        _gap(facts, "posture.disk_encryption", "BitLocker protection status unknown (locked volume)")
        facts.posture.disk_encryption = None if not any(s == 1 for s in status) else True
    else:
        facts.posture.disk_encryption = all(s == 1 for s in status)
    detail = "; ".join(
        f"{x.get('DriveLetter') or '?'} {'on' if _int(x.get('ProtectionStatus')) == 1 else 'off'}"
        for x in vols)
    facts.add_evidence("bitlocker", detail)


def _smb(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    val = _bool(o.get("smb1"))
    if val is None and o.get("reg") is not None:
        val = _bool(o.get("reg"))
    facts.posture.smb1_enabled = val


def _rdp(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    o = _one(v)
    deny = _int(o.get("fDenyTSConnections"))
    if deny is not None:
        facts.posture.rdp_enabled = deny == 0
    nla = _int(o.get("UserAuthentication"))
    if nla is not None:
        facts.posture.rdp_nla = nla == 1
    elif facts.posture.rdp_enabled is False:
        facts.posture.rdp_nla = None


def _admins(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    names = [clip(str(x), 128) or "" for x in _many(v) if isinstance(x, str) and x.strip()]
    facts.posture.local_admins = names
    if not names:
        _gap(facts, "posture.local_admins", "no members reported")


def _listening(facts: DeviceFacts, v: Any, ctx: dict) -> None:
    found: dict[tuple[str, int, str], Service] = {}
    for item in _many(v):
        if not isinstance(item, str):
            continue
        proto, _, rest = item.partition("/")
        addr, _, port = rest.rpartition("/")
        if proto in ("tcp", "udp") and port.isdigit():
            svc = Service(proto=proto, port=int(port), address=addr or None)
            found.setdefault((proto, int(port), addr), svc)
    facts.posture.listening = sorted(found.values(), key=lambda s: (s.proto, s.port, s.address or ""))


_PARSERS: list[tuple[str, Callable[[DeviceFacts, Any, dict], None]]] = [
    ("os", _os), ("cv", _cv), ("cs", _cs), ("enclosure", _enclosure), ("bios", _bios), ("cpu", _cpu),
    ("disks", _disks), ("tpm", _tpm), ("secureboot", _secureboot), ("hotfixes", _hotfixes), ("wu", _wu),
    ("reboot", _reboot), ("au", _au), ("defender", _defender), ("av", _av), ("firewall", _firewall),
    ("bitlocker", _bitlocker), ("smb", _smb), ("rdp", _rdp), ("admins", _admins), ("listening", _listening),
]


def _finish(facts: DeviceFacts, ctx: dict) -> None:
    try:
        _finish_os(facts, ctx)
    except Exception as exc:
        _gap(facts, "software.release", f"release unrecognised: {type(exc).__name__}")
    dates = list(ctx.get("hotfix_dates") or [])
    if ctx.get("wu_last"):
        dates.append(ctx["wu_last"])
    if dates:
        facts.patching.last_patched = max(dates)
    elif "hotfixes" in ctx["values"]:
        _gap(facts, "patching.last_patched", "no reliable install date for any update")

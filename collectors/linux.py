"""Parse the output of ``probes/linux.sh`` into ``DeviceFacts``.

Pure functions, no I/O. ``parse_linux`` never raises: a missing or unreadable section
leaves its facts ``None`` and records why in ``facts.gaps["section.field"]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable
from itertools import starmap

from collectors import sshd_config
from collectors.sections import ProbeOutput, kv_lines, split_sections
from itaudit.model import DeviceFacts, Disk, Kind, Package, Service, clip

SOURCE = "ssh:linux-probe"

# Which facts each probe section feeds, so a missing section marks them unknown.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "hostname": ("identity.hostname",),
    "os-release": ("software.os_name", "software.os_version", "software.product", "software.release"),
    "uname": ("software.kernel", "software.arch"),
    "virt": ("software.virtualization",),
    "uptime": ("identity.uptime_seconds",),
    "dmi": ("hardware.vendor", "hardware.model", "hardware.serial", "hardware.bios_vendor",
            "hardware.bios_version", "hardware.bios_date"),
    "cpu": ("hardware.cpu_model", "hardware.cpu_cores"),
    "memory": ("hardware.memory_bytes",),
    "disks": ("hardware.disks", "posture.disk_encryption"),
    "packages": ("patching.package_manager", "patching.installed_count"),
    "updates": ("patching.pending_updates", "patching.security_updates"),
    "last-change": ("patching.last_patched", "patching.last_package_change"),
    "reboot": ("patching.reboot_required",),
    "autoupdate": ("patching.auto_updates",),
    "sshd": ("posture.ssh_root_login", "posture.ssh_password_auth", "posture.ssh_empty_passwords",
             "posture.ssh_x11_forwarding", "posture.ssh_agent_forwarding", "posture.ssh_max_auth_tries",
             "posture.ssh_login_grace_seconds"),
    "listening": ("posture.listening",),
    "firewall": ("posture.firewall_active",),
    "accounts": ("posture.uid0_accounts", "posture.empty_password_accounts", "posture.local_admins"),
}

# Values that vendors leave in DMI fields instead of real data.
_PLACEHOLDERS = {
    "", "to be filled by o.e.m.", "default string", "system serial number", "not specified",
    "not applicable", "none", "0123456789", "system product name", "system manufacturer",
    "o.e.m.", "oem", "123456789", "chassis serial number", "invalid", "n/a",
}

_PRODUCTS = {
    "debian": "debian", "ubuntu": "ubuntu", "rhel": "rhel", "rocky": "rocky-linux",
    "centos": "centos", "almalinux": "almalinux", "sles": "sles", "sled": "sles",
    "opensuse-leap": "opensuse", "opensuse": "opensuse", "amzn": "amazon-linux",
    "ol": "oracle-linux", "fedora": "fedora", "alpine": "alpine-linux",
}
_MAJOR_ONLY = {"rhel", "rocky-linux", "centos", "almalinux", "oracle-linux", "debian", "centos-stream",
               "fedora"}

_LAPTOP_CHASSIS = {8, 9, 10, 11, 14, 30, 31, 32}
_DESKTOP_CHASSIS = {3, 4, 13, 15, 16, 35, 36}

def parse_linux(data: str | bytes | None) -> DeviceFacts:
    """Parse Linux probe output (text or bytes, possibly cut short) into facts; never raises."""
    facts = DeviceFacts()
    try:
        out = split_sections(data)
    except Exception as exc:  # defensive: splitting is simple, but nothing may escape
        _gap_all(facts, f"probe output unreadable: {type(exc).__name__}")
        return facts
    _parse_into(facts, out)
    return facts


def _parse_into(facts: DeviceFacts, out: ProbeOutput) -> None:
    facts.software.os_family = "linux"
    meta = kv_lines(out.sections.get("meta", ""))
    collected = _parse_iso(meta.get("date"))
    if collected:
        facts.collected_at = collected.isoformat()
    for name in ("identity", "software", "hardware", "patching", "posture"):
        facts.sources[name] = SOURCE
    ctx: dict[str, object] = {"collected": collected, "uid": meta.get("uid"), "sudo": meta.get("sudo"),
                              "sudo_why": meta.get("sudo_why")}
    for section, fn in _PARSERS:
        text = out.sections.get(section)
        if text is None:
            reason = "section missing (probe cut short)" if not out.complete else "section missing"
            _gap_fields(facts, section, reason)
            continue
        if section == out.last and not out.complete:
            # The section the output stopped in is incomplete: a part would mislead
            # (half a package list is a wrong count), so its facts stay unknown.
            _gap_fields(facts, section, "section truncated (probe cut short)")
            continue
        try:
            fn(facts, text, ctx)
        except Exception as exc:  # one bad section must not lose the others
            _gap_fields(facts, section, f"section unparseable: {type(exc).__name__}")
    _finish(facts, out, ctx)
    if facts.identity.kind is None:
        facts.identity.kind = Kind.SERVER.value
    # A later source (e.g. release files for a missing os-release) may have filled a gap.
    for dotted in [k for k in facts.gaps if facts.get(k) not in (None, [], "")]:
        del facts.gaps[dotted]


# --- helpers ---------------------------------------------------------------------------


def _no_root(ctx: dict) -> str:
    """Why a root-only fact is unknown: no root, and what became of ``sudo -n``."""
    why = ctx.get("sudo_why")
    return f"not readable without root (sudo: {why})" if why else "not readable without root"


def _gap(facts: DeviceFacts, dotted: str, reason: str) -> None:
    facts.gaps.setdefault(dotted, reason)


def _gap_fields(facts: DeviceFacts, section: str, reason: str) -> None:
    for f in SECTION_FIELDS.get(section, ()):
        if facts.get(f) in (None, [], ""):
            _gap(facts, f, reason)


def _gap_all(facts: DeviceFacts, reason: str) -> None:
    for section in SECTION_FIELDS:
        _gap_fields(facts, section, reason)


def _parse_iso(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    try:
        d = dt.datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


def _int(s: object) -> int | None:
    try:
        return int(str(s).strip())
    except (TypeError, ValueError):
        return None


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1]
    return v


def _clean(v: str | None) -> str | None:
    if v is None:
        return None
    v = v.strip()
    if v.lower() in _PLACEHOLDERS or v.startswith("!"):
        return None
    return clip(v, 256)


# --- sections --------------------------------------------------------------------------


def _hostname(facts: DeviceFacts, text: str, ctx: dict) -> None:
    name = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if name:
        facts.identity.hostname = clip(name, 255)
    else:
        _gap(facts, "identity.hostname", "empty hostname")


def _os(facts: DeviceFacts, text: str, ctx: dict) -> None:
    osr = {k: _unquote(v) for k, v in kv_lines(text).items()}
    ctx["os-release"] = osr
    facts.add_evidence("os-release", text)
    # Identify the OS now: later sections (updates) depend on the distribution.
    ctx["os-done"] = True
    _finish_os(facts, ctx)


def _release_files(facts: DeviceFacts, text: str, ctx: dict) -> None:
    files: dict[str, str] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("--- "):
            cur = line[4:].strip()
            files[cur] = ""
        elif cur:
            files[cur] += line + "\n"
    ctx["release-files"] = files


def _finish_os(facts: DeviceFacts, ctx: dict) -> None:
    """Combine os-release with the older release files into product/version/release."""
    osr: dict[str, str] = ctx.get("os-release") or {}  # type: ignore[assignment]
    files: dict[str, str] = ctx.get("release-files") or {}  # type: ignore[assignment]
    sw = facts.software
    os_id = osr.get("ID", "").lower()
    version_id = osr.get("VERSION_ID", "")
    name = osr.get("PRETTY_NAME") or osr.get("NAME")
    if not os_id:
        os_id, version_id, name = _from_release_files(files)
    if not os_id:
        for f in SECTION_FIELDS["os-release"]:
            _gap(facts, f, "no os-release or known release file")
        return
    product = _PRODUCTS.get(os_id)
    if os_id == "centos" and "stream" in (osr.get("NAME", "") + osr.get("PRETTY_NAME", "")).lower():
        product = "centos-stream"
    if product is None:
        for like in osr.get("ID_LIKE", "").lower().split():
            if like in _PRODUCTS:
                _gap(facts, "software.product", f"unrecognised distribution {os_id!r} (like {like})")
                break
        else:
            _gap(facts, "software.product", f"unrecognised distribution {os_id!r}")
    sw.product = product
    sw.os_name = clip(name, 128)
    version = version_id
    if os_id == "debian":
        dv = files.get("/etc/debian_version", "").strip()
        if re.fullmatch(r"\d+(\.\d+)*", dv) and (not version or dv.split(".")[0] == version):
            version = dv
    elif os_id in ("centos", "rhel", "rocky", "almalinux", "ol"):
        rel = files.get("/etc/centos-release", "") or files.get("/etc/redhat-release", "")
        m = re.search(r"release (\d+(?:\.\d+)?)", rel)
        if m and (not version or m.group(1).split(".")[0] == version.split(".")[0]):
            version = m.group(1) if len(m.group(1)) > len(version) else version
    elif os_id in ("sles", "sled", "opensuse-leap") and "-SP" in version:
        major, _, sp = version.partition("-SP")
        version = f"{major}.{sp}"
    sw.os_version = version or None
    if not version:
        _gap(facts, "software.os_version", "os-release has no VERSION_ID")
        return
    if product in _MAJOR_ONLY:
        sw.release = version.split(".")[0]
    elif product == "alpine-linux":
        sw.release = ".".join(version.split(".")[:2])
    elif product in ("sles", "opensuse") and "." not in version:
        sw.release = f"{version}.0"
    else:
        sw.release = version if product else None


def _from_release_files(files: dict[str, str]) -> tuple[str, str, str | None]:
    for path in ("/etc/centos-release", "/etc/redhat-release", "/etc/system-release"):
        text = files.get(path, "").strip()
        m = re.search(r"release (\d+(?:\.\d+)?)", text)
        if text and m:
            low = text.lower()
            os_id = ("centos" if "centos" in low else "rocky" if "rocky" in low
                     else "almalinux" if "alma" in low else "rhel" if "red hat" in low else "")
            if os_id:
                return os_id, m.group(1), text.splitlines()[0]
    lsb = kv_lines(files.get("/etc/lsb-release", ""))
    if lsb.get("DISTRIB_ID"):
        return (lsb["DISTRIB_ID"].lower(), _unquote(lsb.get("DISTRIB_RELEASE", "")),
                _unquote(lsb.get("DISTRIB_DESCRIPTION", lsb["DISTRIB_ID"])))
    dv = files.get("/etc/debian_version", "").strip()
    if re.fullmatch(r"\d+(\.\d+)*", dv):
        return "debian", dv.split(".")[0], f"Debian GNU/Linux {dv}"
    av = files.get("/etc/alpine-release", "").strip()
    if av:
        return "alpine", av, f"Alpine Linux v{av}"
    return "", "", None


def _uname(facts: DeviceFacts, text: str, ctx: dict) -> None:
    d = kv_lines(text)
    facts.software.kernel = clip(d.get("kernel") or None, 128)
    facts.software.arch = clip(d.get("arch") or None, 32)
    ctx["kernel"] = d.get("kernel")


def _virt(facts: DeviceFacts, text: str, ctx: dict) -> None:
    d = kv_lines(text)
    v = d.get("detect_virt") or ""
    if not v or v == "none":
        if d.get("dockerenv"):
            v = "docker"
        elif d.get("container"):
            v = d["container"]
        elif d.get("cgroup_container"):
            v = "container"
        elif d.get("hypervisor_flag"):
            v = "vm"
    facts.software.virtualization = clip(v or "none", 32)


def _uptime(facts: DeviceFacts, text: str, ctx: dict) -> None:
    first = text.split()
    secs = int(float(first[0])) if first else None
    if secs is None:
        _gap(facts, "identity.uptime_seconds", "no /proc/uptime")
        return
    facts.identity.uptime_seconds = secs
    collected = ctx.get("collected")
    if isinstance(collected, dt.datetime):
        facts.software.last_boot = (collected - dt.timedelta(seconds=secs)).isoformat(timespec="seconds")


def _dmi(facts: DeviceFacts, text: str, ctx: dict) -> None:
    hw = facts.hardware
    if "!no-dmi" in text:
        for f in SECTION_FIELDS["dmi"]:
            _gap(facts, f, "no DMI on this host (/sys/class/dmi/id absent: container or non-x86)")
        return
    d = kv_lines(text)
    fields = {"sys_vendor": "vendor", "product_name": "model", "product_serial": "serial",
              "bios_vendor": "bios_vendor", "bios_version": "bios_version"}
    for key, attr in fields.items():
        raw = d.get(key)
        val = _clean(raw)
        setattr(hw, attr, val)
        if val is None:
            why = (_no_root(ctx) if raw == "!unreadable" else
                   "not present" if raw in (None, "!missing") else "placeholder value")
            _gap(facts, f"hardware.{attr}", why)
    raw_date = d.get("bios_date")
    hw.bios_date = _mdy(raw_date)
    if hw.bios_date is None:
        _gap(facts, "hardware.bios_date", _no_root(ctx) if raw_date == "!unreadable"
             else "no BIOS date in DMI")
    facts.identity.vendor, facts.identity.model, facts.identity.serial = hw.vendor, hw.model, hw.serial
    chassis = _int(d.get("chassis_type"))
    if chassis in _LAPTOP_CHASSIS:
        facts.identity.kind = Kind.LAPTOP.value
    elif chassis in _DESKTOP_CHASSIS:
        facts.identity.kind = Kind.WORKSTATION.value
    product = (hw.model or "").lower()
    if facts.software.virtualization in (None, "none", "vm"):
        for needle, virt in (("vmware", "vmware"), ("virtualbox", "oracle"), ("kvm", "kvm"),
                             ("virtual machine", "microsoft"), ("hvm domu", "xen")):
            if needle in product:
                facts.software.virtualization = virt
                break


def _mdy(s: str | None) -> dt.date | None:
    if not s:
        return None
    m = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s*", s)
    if not m:
        return None
    year = int(m.group(3))
    year += 2000 if year < 80 else 1900 if year < 100 else 0
    try:
        return dt.date(year, int(m.group(1)), int(m.group(2)))
    except ValueError:
        return None


def _cpu(facts: DeviceFacts, text: str, ctx: dict) -> None:
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() in ("model name", "Processor", "cpu model") and v.strip():
            facts.hardware.cpu_model = clip(re.sub(r"\s+", " ", v.strip()), 128)
            break
    facts.hardware.cpu_cores = _int(kv_lines(text).get("processors")) or None
    if facts.hardware.cpu_model is None:
        _gap(facts, "hardware.cpu_model", "no model name in /proc/cpuinfo")


def _memory(facts: DeviceFacts, text: str, ctx: dict) -> None:
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.M)
    if m:
        facts.hardware.memory_bytes = int(m.group(1)) * 1024
    else:
        _gap(facts, "hardware.memory_bytes", "no MemTotal in /proc/meminfo")


_WHOLE_DISK = re.compile(r"sd[a-z]+|vd[a-z]+|nvme\d+n\d+|xvd[a-z]+|hd[a-z]+")
_LSBLK = re.compile(r'([A-Z:]+)="([^"]*)"')


def _disks(facts: DeviceFacts, text: str, ctx: dict) -> None:
    disks: list[Disk] = []
    current: Disk | None = None
    crypt = False
    lsblk = "!no-lsblk" not in text
    for line in text.splitlines():
        if line.startswith("crypttab_entries="):
            crypt = crypt or (_int(line.split("=", 1)[1]) or 0) > 0
            continue
        if not lsblk:
            parts = line.split()
            if len(parts) == 4 and parts[2].isdigit() and _WHOLE_DISK.fullmatch(parts[3]):
                disks.append(Disk(name=parts[3], size_bytes=int(parts[2]) * 1024))
            continue
        f = dict(_LSBLK.findall(line))
        if not f:
            continue
        typ = f.get("TYPE", "")
        if typ == "disk" and not re.match(r"(zram|loop|ram|fd)", f.get("NAME", "")):
            current = Disk(name=f.get("NAME", "?"), size_bytes=_int(f.get("SIZE")),
                           model=_clean(f.get("MODEL")), encrypted=False)
            disks.append(current)
        elif typ == "crypt" or f.get("FSTYPE") == "crypto_LUKS":
            crypt = True
            if current is not None:
                current.encrypted = True
    facts.hardware.disks = disks
    if not lsblk:
        for d in disks:
            d.encrypted = None
        _gap(facts, "posture.disk_encryption", "lsblk not available")
        facts.posture.disk_encryption = True if crypt else None
        return
    facts.posture.disk_encryption = crypt
    if not disks:
        _gap(facts, "hardware.disks", "no block devices listed")


_PKG_LINE = re.compile(r"^([^\t\n=]+)\t([^\t\n]*)\t([^\t\n]*)\t[ih]i", re.M)
_APK_LINE = re.compile(r"^(\S+)-([^-\s]+-r\d+)$", re.M)


def _packages(facts: DeviceFacts, text: str, ctx: dict) -> None:
    lines = text.splitlines()
    pm = kv_lines("\n".join(lines[:1])).get("pm", "")
    pt = facts.patching
    if pm in ("", "none"):
        _gap(facts, "patching.package_manager", "no dpkg, rpm or apk on the host")
        _gap(facts, "patching.installed_count", "no package manager")
        return
    pt.package_manager = {"dpkg": "apt", "rpm": "rpm", "apk": "apk"}.get(pm, pm)
    # starmap builds the (often 2,000) records from C: half the cost of a comprehension.
    if pm == "apk":
        pkgs = list(starmap(Package, _APK_LINE.findall(text)))
    else:
        # Installed ("ii") or held ("hi"); removed-but-configured ("rc") packages are not installed.
        pkgs = list(starmap(Package, _PKG_LINE.findall(text)))
        for p in pkgs:
            if not p.arch:
                p.arch = None
    pt.packages = pkgs
    pt.installed_count = len(pkgs)
    ctx["unattended-upgrades"] = "\nunattended-upgrades\t" in text


def _rc_blocks(text: str) -> list[tuple[list[str], int | None]]:
    """Split an updates section into (lines, rc) blocks, separated by ``--- `` lines."""
    blocks: list[tuple[list[str], int | None]] = []
    cur: list[str] = []
    rc: int | None = None
    for line in text.splitlines():
        if line.startswith("--- "):
            blocks.append((cur, rc))
            cur, rc = [], None
        elif re.fullmatch(r"rc=\d+", line.strip()):
            rc = int(line.strip()[3:])
        else:
            cur.append(line)
    blocks.append((cur, rc))
    return blocks


def _updates(facts: DeviceFacts, text: str, ctx: dict) -> None:
    pt = facts.patching
    tool = kv_lines(text.split("\n", 1)[0]).get("tool", "")
    body = text.split("\n", 1)[1] if "\n" in text else ""
    facts.add_evidence("updates", body[:2000])
    if pt.package_manager in (None, "rpm") and tool in ("dnf", "yum", "zypper"):
        pt.package_manager = tool
    if tool == "apt":
        inst = [ln for ln in body.splitlines() if ln.startswith("Inst ")]
        summary = re.search(r"(\d+) upgraded", body)
        errors = [ln for ln in body.splitlines() if ln.startswith("E: ")]
        if not inst and (errors or not summary):
            reason = clip(errors[0], 200) if errors else "apt-get -s gave no answer"
            _gap(facts, "patching.pending_updates", reason or "apt error")
            _gap(facts, "patching.security_updates", reason or "apt error")
            return
        # An update is an "Inst NAME [OLD] (NEW ...)" line; a line without "[OLD]" is a new package that an
        # update pulls in. `apt-get upgrade` holds back updates that need a new package (often security
        # ones), so the probe simulates dist-upgrade; what apt still reports "not upgraded" (held, or held
        # back by an older probe's plain upgrade) is pending too, though its security status is not shown.
        upgrades = [ln for ln in inst if re.match(r"Inst \S+ \[", ln)]
        held = int(m.group(1)) if (m := re.search(r"(\d+) not upgraded", body)) else 0
        pt.pending_updates = len(upgrades) + held
        pt.security_updates = sum(1 for ln in upgrades if re.search(r"-[Ss]ecurity[:/ ]|-security\b", ln))
        if held:
            facts.add_evidence("updates-held", f"{held} more updates apt holds back; whether they are security "
                               "updates is not shown, so the security count is a lower bound")
    elif tool in ("dnf", "yum"):
        blocks = _rc_blocks(body)
        lines, rc = blocks[0]
        if rc not in (0, 100):
            reason = _first_error(lines) or f"{tool} check-update failed (rc={rc})"
            _gap(facts, "patching.pending_updates", reason)
        else:
            names = set()
            for ln in lines:
                if ln.startswith(("Obsoleting", "Security:")):
                    break
                parts = ln.split()
                if len(parts) == 3 and "." in parts[0] and not ln.startswith(" "):
                    names.add(parts[0])
            pt.pending_updates = len(names)
        if len(blocks) > 1:
            slines, src = blocks[1]
            pkgs = {p[2] for p in (ln.split() for ln in slines)
                    if len(p) >= 3 and ("/Sec" in p[1] or p[1].lower() == "security")}
            if not pkgs and facts.software.product == "centos":
                _gap(facts, "patching.security_updates", "CentOS publishes no security errata (updateinfo)")
            elif src == 0 or pkgs:
                pt.security_updates = len(pkgs)
            else:
                _gap(facts, "patching.security_updates",
                     _first_error(slines) or f"{tool} updateinfo failed (rc={src})")
        else:
            _gap(facts, "patching.security_updates", "no updateinfo output")
    elif tool == "zypper":
        blocks = _rc_blocks(body)
        lines, rc = blocks[0]
        rows = [ln for ln in lines if re.match(r"^v\s*\|", ln)]
        if rc == 0 or rows:
            pt.pending_updates = len(rows)
        else:
            _gap(facts, "patching.pending_updates", _first_error(lines) or f"zypper failed (rc={rc})")
        if len(blocks) > 1:
            slines, src = blocks[1]
            needed = [ln for ln in slines if "|" in ln and re.search(r"\|\s*needed\s*\|", ln)]
            if src in (0, 100, 101) or needed:
                pt.security_updates = len(needed)
            else:
                _gap(facts, "patching.security_updates", _first_error(slines) or "zypper list-patches failed")
    else:
        _gap(facts, "patching.pending_updates", "no supported package manager (apt, dnf, yum, zypper)")
        _gap(facts, "patching.security_updates", "no supported package manager")


def _first_error(lines: list[str]) -> str | None:
    for ln in lines:
        s = ln.strip()
        if s and re.search(r"error|cache|no such|not found|permission|failed", s, re.I):
            return clip(s, 200)
    return None


def _last_change(facts: DeviceFacts, text: str, ctx: dict) -> None:
    d = kv_lines(text)
    dates: list[dt.date] = []
    for key in ("dpkg_log_last", "apt_history_last"):
        v = d.get(key, "")
        m = re.match(r"(\d{4}-\d{2}-\d{2})", v)
        if m:
            with contextlib.suppress(ValueError):
                dates.append(dt.date.fromisoformat(m.group(1)))
    for key in ("rpm_last_install", "dpkg_status_mtime"):
        ts = _int(d.get(key))
        if ts and ts > 0:
            dates.append(dt.datetime.fromtimestamp(ts, dt.UTC).date())
    if dates:
        facts.patching.last_package_change = max(dates)
    else:
        _gap(facts, "patching.last_package_change", "no package log or database date readable")
    # Last SECURITY update: an upgrade (or a new kernel image) in apt's history whose version
    # is the one in the distribution's security archive index.
    sec = re.match(r"(\d{4}-\d{2}-\d{2})\s+\S+\s*(.*)", d.get("apt_security_last", ""))
    if sec:
        with contextlib.suppress(ValueError):
            facts.patching.last_patched = dt.date.fromisoformat(sec.group(1))
            facts.add_evidence("last-security-update", f"{sec.group(1)} {clip(sec.group(2), 200)}")
    if facts.patching.last_patched is not None:
        return
    if "apt_security_index" in d:
        why = ("no security archive index in /var/lib/apt/lists (apt update never fetched the -security suite)"
               if _int(d.get("apt_security_index")) == 0 else
               "apt's history (/var/log/apt/history.log*) records no upgrade to a version from the security archive")
    elif facts.patching.package_manager in ("rpm", "dnf", "yum", "zypper") or "rpm_last_install" in d:
        why = "the date of the last security update is not read on RPM systems yet (only the last package change)"
    else:
        why = "no apt history and security index readable to date the last security update"
    _gap(facts, "patching.last_patched", why)


def _kernel_key(v: str) -> list[tuple[int, int, str]]:
    # Numbers compare as numbers, words as words, never a number against a word.
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-_+~]", v)]


def _reboot(facts: DeviceFacts, text: str, ctx: dict) -> None:
    d = kv_lines(text)
    signals: list[bool] = []
    if d.get("reboot_required_file") == "1":
        signals.append(True)
    rc = _int(d.get("needs_restarting_rc"))
    if rc in (0, 1):
        signals.append(rc == 1)
    running = d.get("running_kernel", "")
    # SUSE keeps a compressed vmlinux-*.gz beside vmlinuz-*: same kernel.
    kernels = [k.split("-", 1)[1].removesuffix(".gz") for k in d.get("boot_kernels", "").split() if "-" in k]
    kernels = [k for k in kernels if "rescue" not in k]
    if running and kernels:
        # Not the newest installed kernel, or the running one was removed by an upgrade.
        signals.append(running not in kernels or max(kernels, key=_kernel_key) != running)
    if facts.patching.package_manager == "apt" and "reboot_required_file" not in d:
        signals.append(False)
    if signals:
        facts.patching.reboot_required = any(signals)
        if d.get("reboot_pkgs"):
            facts.add_evidence("reboot", clip(d["reboot_pkgs"], 500))
    else:
        _gap(facts, "patching.reboot_required", "no reboot indicator available")


def _autoupdate(facts: DeviceFacts, text: str, ctx: dict) -> None:
    units = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) >= 3 and p[0] == "unit":
            units[p[1]] = p[2]
    apply = re.search(r"^apply_updates\s*=\s*(\S+)", text, re.M)
    apply_yes = bool(apply and apply.group(1).lower() in ("yes", "true", "1"))
    pm = facts.patching.package_manager
    if pm == "apt":
        uu = re.search(r'APT::Periodic::Unattended-Upgrade "(\d+)"', text)
        enabled = bool(uu and uu.group(1) != "0")
        installed = bool(ctx.get("unattended-upgrades")) or units.get("unattended-upgrades.service") == "enabled"
        facts.patching.auto_updates = enabled and installed
    elif pm in ("dnf", "yum", "rpm"):
        if units.get("dnf-automatic-install.timer") == "enabled":
            facts.patching.auto_updates = True
        elif units.get("dnf-automatic.timer") == "enabled" or units.get("yum-cron.service") == "enabled":
            facts.patching.auto_updates = apply_yes
        elif units:
            facts.patching.auto_updates = False
        else:
            _gap(facts, "patching.auto_updates", "systemctl not available")
    else:
        _gap(facts, "patching.auto_updates", "no supported automatic-update mechanism recognised")


def _sshd(facts: DeviceFacts, text: str, ctx: dict) -> None:
    facts.add_evidence("sshd", text)
    lines = text.splitlines()
    if not lines or not lines[0].startswith("listener="):
        _sshd_legacy(facts, lines)
        return
    head: dict[str, str] = {}
    body_at = len(lines)
    for i, ln in enumerate(lines):
        k, eq, v = ln.partition("=")
        if not eq or k not in ("listener", "config", "conn", "options", "source", "via", "why", "groups"):
            body_at = i
            break
        head.setdefault(k, v)
    body = lines[body_at:]
    daemon = " ".join(head.get("listener", "").split()).removeprefix("sshd: ").split(" [listener]")[0]
    daemon = daemon or "the sshd serving our session (not found among our process's ancestors)"
    conf = head.get("config", "default")
    conn = sshd_config.Connection.parse(head.get("conn", ""), head.get("groups"))
    root_conn = sshd_config.Connection(**{**conn.__dict__, "user": "root", "groups": None})
    if head.get("source") == "sshd-T":
        split = body.index("--- as root") if "--- as root" in body else len(body)
        own = _sshd_t(body[:split])
        root = _sshd_t(body[split + 1:]) if split < len(body) else own
        missing = [k for k in sshd_config.KEYS if k not in own]
        if "permitrootlogin" not in own or len(missing) > 3:
            _sshd_unknown(facts, f"sshd -T output unreadable (no {', '.join(missing[:3])} line)")
            return
        via = " through sudo -n" if head.get("via") == "sudo" else ""
        source = f"sshd -T{via} of {clip(daemon, 200)} (config {conf}), for our login {conn.user or '?'}"
        own_eff = sshd_config.Effective(values=own, unknown={k: "not in sshd -T output" for k in missing})
        root_eff = sshd_config.Effective(values=root)
    elif head.get("source") == "config":
        if not any(ln.startswith("--- file ") for ln in body):
            unreadable = next((ln.split(None, 1)[1] for ln in body if ln.startswith("!unreadable ")), None)
            sudo = ctx.get("sudo_why") or "unknown"
            why = (f"sshd -T could not run ({clip(head.get('why'), 120) or 'no output'}) and "
                   + (f"{unreadable} is not readable without root (sudo: {sudo})" if unreadable
                      else f"the config file {conf} was not found"))
            _sshd_unknown(facts, why)
            return
        items = sshd_config.directives(body)
        own_eff = sshd_config.effective_settings(items, conn)
        root_eff = sshd_config.effective_settings(items, root_conn)
        source = (f"configuration files of {clip(daemon, 200)} (config {conf}, Include and Match applied; "
                  f"sshd -T could not run: {clip(head.get('why'), 120) or 'no output'})")
    elif head.get("source") == "none":
        _sshd_unknown(facts, f"the SSH server's settings were not read: {clip(head.get('why'), 200)}")
        return
    else:
        _sshd_unknown(facts, "sshd section unreadable")
        return
    _sshd_apply(facts, own_eff, root_eff, source)


def _sshd_t(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ln in lines:
        k, _, v = ln.strip().partition(" ")
        k = k.lower()
        k = {"challengeresponseauthentication": "kbdinteractiveauthentication"}.get(k, k)
        if re.fullmatch(r"[a-z0-9]+", k) and v.strip():
            out.setdefault(k, v.strip())
    return out


def _sshd_unknown(facts: DeviceFacts, reason: str) -> None:
    for f in SECTION_FIELDS["sshd"]:
        _gap(facts, f, reason)


def _sshd_apply(facts: DeviceFacts, own: sshd_config.Effective, root: sshd_config.Effective, source: str) -> None:
    po = facts.posture
    po.ssh_settings_source = clip(source, 400)
    v = own.values

    def flag(key: str, field: str) -> bool | None:
        if key not in v:
            _gap(facts, f"posture.{field}", own.unknown.get(key, f"{key} not known"))
            return None
        return v[key].lower() == "yes"

    po.ssh_password_auth = sshd_config.password_login(v)
    if po.ssh_password_auth is None:
        _gap(facts, "posture.ssh_password_auth", "; ".join(sorted(set(own.unknown.values()))) or "unknown")
    po.ssh_empty_passwords = flag("permitemptypasswords", "ssh_empty_passwords")
    po.ssh_x11_forwarding = flag("x11forwarding", "ssh_x11_forwarding")
    po.ssh_agent_forwarding = flag("allowagentforwarding", "ssh_agent_forwarding")
    tries = _int(v.get("maxauthtries"))
    po.ssh_max_auth_tries = tries
    if tries is None:
        _gap(facts, "posture.ssh_max_auth_tries", own.unknown.get("maxauthtries", "MaxAuthTries unreadable"))
    grace = sshd_config.seconds(v.get("logingracetime", ""))
    po.ssh_login_grace_seconds = grace
    if grace is None:
        _gap(facts, "posture.ssh_login_grace_seconds", own.unknown.get("logingracetime", "LoginGraceTime unreadable"))
    prl = root.values.get("permitrootlogin", "").lower()
    if not prl:
        _gap(facts, "posture.ssh_root_login", root.unknown.get("permitrootlogin", "PermitRootLogin unknown"))
        return
    prl = "prohibit-password" if prl == "without-password" else prl
    if prl == "yes" and sshd_config.password_login(root.values) is False:
        prl = "yes-keys-only"  # root may log in, but no password is accepted for root
    po.ssh_root_login = clip(prl, 32)


def _sshd_legacy(facts: DeviceFacts, lines: list[str]) -> None:
    """Recordings of the probe before it identified the serving daemon: /etc/ssh/sshd_config."""
    po = facts.posture
    source = kv_lines("\n".join(lines[:1])).get("source", "")
    settings: dict[str, str] = {}
    if source == "sshd-T":
        for ln in lines[1:]:
            k, _, v = ln.strip().partition(" ")
            if k and k.lower() not in settings:
                settings[k.lower()] = v.strip()
        po.ssh_settings_source = "sshd -T (default configuration; the serving daemon was not identified)"
    else:
        main: list[str] = []
        drop_in: list[str] = []
        target = None
        unreadable = False
        for ln in lines[1:]:
            if ln.startswith("--- "):
                target = main if ln[4:].strip() == "/etc/ssh/sshd_config" else drop_in
            elif ln.startswith("!unreadable"):
                unreadable = unreadable or ln.split()[-1] == "/etc/ssh/sshd_config"
            elif target is not None:
                target.append(ln)
        if not main:
            _sshd_unknown(facts, "sshd_config not readable without root" if unreadable else "sshd_config not found")
            return
        ordered: list[str] = []
        for ln in main:
            if ln.strip().lower().startswith("include"):
                ordered.extend(drop_in)
                drop_in = []
            else:
                ordered.append(ln)
        for ln in ordered:
            parts = ln.strip().split(None, 1)
            if not parts:
                continue
            key = parts[0].lower()
            if key == "match":  # conditional blocks do not change the global defaults
                break
            if key not in settings and len(parts) == 2:
                settings[key] = parts[1].strip()
        settings.setdefault("permitrootlogin", "prohibit-password")
        settings.setdefault("passwordauthentication", "yes")
        po.ssh_settings_source = "/etc/ssh/sshd_config (the serving daemon was not identified)"
    po.ssh_root_login = clip(settings.get("permitrootlogin", "").lower() or None, 32)
    if po.ssh_root_login == "without-password":
        po.ssh_root_login = "prohibit-password"
    pa = settings.get("passwordauthentication", "").lower()
    po.ssh_password_auth = True if pa == "yes" else False if pa == "no" else None
    for f in SECTION_FIELDS["sshd"][2:]:
        _gap(facts, f, "not recorded by this (older) probe")


def _listening(facts: DeviceFacts, text: str, ctx: dict) -> None:
    lines = text.splitlines()
    tool = kv_lines("\n".join(lines[:1])).get("tool", "")
    found: dict[tuple[str, int, str], Service] = {}

    def add(proto: str, addr: str, port: int) -> None:
        key = (proto, port, addr)
        if key not in found:
            found[key] = Service(proto=proto, port=port, address=addr)

    if tool in ("ss", "netstat"):
        for ln in lines[1:]:
            p = ln.split()
            if len(p) < 4 or p[0].lower().startswith(("netid", "proto", "active")):
                continue
            proto = p[0].lower().rstrip("6")
            if proto not in ("tcp", "udp"):
                continue
            if tool == "ss":
                if proto == "tcp" and p[1] != "LISTEN":
                    continue
                local = p[4] if len(p) > 4 else ""
            else:
                if proto == "tcp" and "LISTEN" not in p:
                    continue
                local = p[3]
            addr, _, port = local.rpartition(":")
            if port.isdigit():
                add(proto, addr.strip("[]").split("%")[0] or "*", int(port))
    elif tool == "proc":
        proto = ""
        for ln in lines[1:]:
            if ln.startswith("--- "):
                proto = ln[4:].strip()
                continue
            p = ln.split()
            if len(p) < 4 or ":" not in p[1] or p[0] == "sl":
                continue
            state = p[3]
            base = proto.rstrip("6")
            if (base == "tcp" and state != "0A") or (base == "udp" and state != "07"):
                continue
            hexaddr, _, hexport = p[1].partition(":")
            add(base, _hexaddr(hexaddr), int(hexport, 16))
    else:
        _gap(facts, "posture.listening", "no ss, netstat or /proc/net")
        return
    facts.posture.listening = sorted(found.values(), key=lambda s: (s.proto, s.port, s.address or ""))
    facts.add_evidence("listening", "\n".join(lines[:80]))


def _hexaddr(h: str) -> str:
    try:
        if len(h) == 8:
            return ".".join(str(b) for b in reversed(bytes.fromhex(h)))
        if set(h) == {"0"}:
            return "::"
        return "::" if h.strip("0") == "" else f"ipv6:{h.lower()}"
    except ValueError:
        return "?"


def _firewall(facts: DeviceFacts, text: str, ctx: dict) -> None:
    active = [p[1] for p in (ln.split() for ln in text.splitlines())
              if len(p) >= 3 and p[0] == "unit" and p[2] == "active"]
    d = kv_lines(text)
    ufw = d.get("ENABLED", "").lower() == "yes"
    nft = _int(d.get("nft_rules"))
    ipt = _int(d.get("iptables_rules"))
    policy = d.get("iptables_policy", "")
    detail = []
    if active:
        detail.append("active: " + ", ".join(active))
    if ufw:
        detail.append("ufw enabled")
    if nft:
        detail.append(f"nftables rules: {nft}")
    if ipt:
        detail.append(f"iptables rules: {ipt}")
    if "DROP" in policy or "REJECT" in policy:
        detail.append("iptables INPUT policy drop")
    root_view = nft is not None or ipt is not None
    if active or ufw or nft or ipt or "DROP" in policy:
        facts.posture.firewall_active = True
    elif root_view or "!not-root" not in text and any(ln.startswith("unit ") for ln in text.splitlines()):
        facts.posture.firewall_active = False
        detail.append("no firewall service active and no rules loaded")
    else:
        _gap(facts, "posture.firewall_active", "no firewall service active; rules " + _no_root(ctx))
    facts.posture.firewall_detail = clip("; ".join(detail) or None, 256)


def _accounts(facts: DeviceFacts, text: str, ctx: dict) -> None:
    uid0, empty = [], []
    shadow = ""
    groups: dict[str, list[str]] = {}
    for ln in text.splitlines():
        k, _, v = ln.partition("=")
        if k == "uid0":
            uid0.append(clip(v, 64) or "")
        elif k == "empty":
            empty.append(clip(v, 64) or "")
        elif k == "shadow":
            shadow = v
        elif k in ("admgroup", "admprimary"):
            group, _, members = v.partition(":")
            groups.setdefault(group, []).extend(m for m in members.split(",") if m)
    facts.posture.uid0_accounts = uid0 or None
    if not uid0:
        _gap(facts, "posture.uid0_accounts", "/etc/passwd not readable")
    if shadow in ("read", "sudo"):
        facts.posture.empty_password_accounts = empty
    else:
        _gap(facts, "posture.empty_password_accounts", "/etc/shadow " + _no_root(ctx))
    if "groupfile=read" in text:
        # Administrators: UID 0 accounts and the members of the sudo/wheel/admin groups
        # (rules in /etc/sudoers that name other users or groups are not read).
        admins = list(dict.fromkeys([*uid0, *(m for g in ("sudo", "wheel", "admin") for m in groups.get(g, []))]))
        facts.posture.local_admins = [clip(a, 64) or "" for a in admins][:200]
        facts.add_evidence("admins", "; ".join(f"{g}: {','.join(m) or '-'}" for g, m in groups.items())
                           or "no sudo, wheel or admin group")
    else:
        _gap(facts, "posture.local_admins", "/etc/group not read")


_PARSERS: list[tuple[str, Callable[[DeviceFacts, str, dict], None]]] = [
    ("hostname", _hostname),
    ("release-files", _release_files),
    ("os-release", _os),
    ("uname", _uname),
    ("virt", _virt),
    ("uptime", _uptime),
    ("dmi", _dmi),
    ("cpu", _cpu),
    ("memory", _memory),
    ("disks", _disks),
    ("packages", _packages),
    ("updates", _updates),
    ("last-change", _last_change),
    ("reboot", _reboot),
    ("autoupdate", _autoupdate),
    ("sshd", _sshd),
    ("listening", _listening),
    ("firewall", _firewall),
    ("accounts", _accounts),
]


def _finish(facts: DeviceFacts, out: ProbeOutput, ctx: dict) -> None:
    """Derived facts that need more than one section."""
    try:
        if not ctx.get("os-done"):
            _finish_os(facts, ctx)
    except Exception as exc:
        for f in SECTION_FIELDS["os-release"]:
            _gap(facts, f, f"os identification failed: {type(exc).__name__}")

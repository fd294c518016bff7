"""The domain model: targets, device facts, collection results and findings.

This is a leaf module: it imports nothing else from the project, so collectors,
checks, the store and the reports can all depend on it.

Conventions
- A fact that is ``None`` is unknown. Why it is unknown may be recorded in
  ``DeviceFacts.gaps`` under the dotted field name (``"hardware.bios_date"``).
- Dates are ``datetime.date`` (or ISO strings once serialised); times are UTC ISO.
- Everything here round-trips through ``to_dict`` / ``from_dict`` as plain JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

# Bounds for device-supplied text, so a hostile device cannot bloat the database.
MAX_TEXT = 1024
MAX_EVIDENCE = 4096


class Kind(StrEnum):
    """What a device is, in the words of a refresh policy."""

    SERVER = "server"
    WORKSTATION = "workstation"
    LAPTOP = "laptop"
    SWITCH = "switch"
    ROUTER = "router"
    FIREWALL = "firewall"
    WIRELESS = "wireless"
    PRINTER = "printer"
    UPS = "ups"
    STORAGE = "storage"
    CAMERA = "camera"
    OTHER = "other"


class Status(StrEnum):
    """Outcome of one check on one device."""

    FAIL = "fail"
    PASS = "pass"  # noqa: S105 - not a password
    UNKNOWN = "unknown"
    ERROR = "error"


class Severity(StrEnum):
    """How bad a failed check is. ``rank`` orders them (higher is worse)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class ResultStatus(StrEnum):
    """Outcome of collecting one target."""

    OK = "ok"
    PARTIAL = "partial"  # some sections missing (timeout mid-probe, bad section)
    ERROR = "error"  # nothing usable collected


def clip(text: Any, limit: int = MAX_TEXT) -> str | None:
    """Bound device-supplied text and make it safe to store: str, no NULs, at most ``limit``."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    s = str(text).replace("\x00", "")
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


# --- Targets -------------------------------------------------------------------------


@dataclass
class Target:
    """One thing to audit, as the config (or discovery) describes it.

    ``credential`` is the *name* of a credential of the same city; the secret itself is
    resolved only inside the collector at connect time and never stored here.
    """

    address: str
    protocol: str  # "ssh", "snmp", "local"
    city_id: str = ""
    port: int | None = None
    name: str | None = None
    credential: str | None = None
    department: str | None = None
    kind: str | None = None  # a Kind value, when the config knows better than the probe
    criticality: list[str] = field(default_factory=list)
    purchase_date: dt.date | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.protocol}://{self.address}{port}"


# --- Facts ---------------------------------------------------------------------------


@dataclass
class Identity:
    address: str | None = None
    hostname: str | None = None
    kind: str | None = None  # Kind value
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    mac: str | None = None
    ssh_host_key: str | None = None  # "ssh-ed25519 SHA256:..." fingerprint
    snmp_engine_id: str | None = None
    sys_object_id: str | None = None
    description: str | None = None  # sysDescr or equivalent
    location: str | None = None
    contact: str | None = None
    uptime_seconds: int | None = None


@dataclass
class Software:
    os_family: str | None = None  # "linux", "windows", "ios-xe", "fortios", ...
    os_name: str | None = None  # "Ubuntu", "Windows Server 2012 R2 Standard"
    os_version: str | None = None  # normalized: "22.04", "10.0.19045", "7.2.5"
    os_build: str | None = None  # "19045.4291"
    edition: str | None = None  # "Enterprise", "Professional", "Standard"
    product: str | None = None  # lifecycle product key: "ubuntu", "windows", "fortios"
    release: str | None = None  # lifecycle release cycle when known: "22.04", "10-22h2"
    kernel: str | None = None
    arch: str | None = None
    firmware: str | None = None
    virtualization: str | None = None  # "kvm", "vmware", "none", ...
    install_date: dt.date | None = None
    last_boot: str | None = None


@dataclass
class Disk:
    name: str
    size_bytes: int | None = None
    model: str | None = None
    encrypted: bool | None = None


@dataclass
class Hardware:
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    bios_vendor: str | None = None
    bios_version: str | None = None
    bios_date: dt.date | None = None
    manufacture_date: dt.date | None = None
    cpu_model: str | None = None
    cpu_cores: int | None = None
    memory_bytes: int | None = None
    disks: list[Disk] = field(default_factory=list)
    tpm_version: str | None = None  # "2.0", "1.2", "none"
    secure_boot: bool | None = None
    port_count: int | None = None
    battery_replace_date: dt.date | None = None  # UPS
    battery_status: str | None = None


@dataclass
class Package:
    name: str
    version: str
    arch: str | None = None


@dataclass
class Patching:
    package_manager: str | None = None  # "apt", "dnf", "yum", "zypper", "windows-update"
    installed_count: int | None = None
    packages: list[Package] = field(default_factory=list)
    pending_updates: int | None = None
    security_updates: int | None = None
    last_patched: dt.date | None = None  # last SECURITY update installed (package manager logs)
    last_package_change: dt.date | None = None  # last install/upgrade of any package
    reboot_required: bool | None = None
    auto_updates: bool | None = None
    hotfixes: list[str] = field(default_factory=list)


@dataclass
class Service:
    proto: str  # "tcp" / "udp"
    port: int
    address: str | None = None
    process: str | None = None


@dataclass
class Posture:
    ssh_root_login: str | None = None  # "yes", "no", "prohibit-password", ...
    ssh_password_auth: bool | None = None  # passwords accepted (PasswordAuthentication, or PAM kbd-interactive)
    ssh_empty_passwords: bool | None = None  # PermitEmptyPasswords
    ssh_x11_forwarding: bool | None = None
    ssh_agent_forwarding: bool | None = None  # AllowAgentForwarding
    ssh_max_auth_tries: int | None = None
    ssh_login_grace_seconds: int | None = None  # LoginGraceTime (0 = no limit)
    ssh_settings_source: str | None = None  # where the settings above were read ("sshd -T ...", files)
    ssh_banner: str | None = None  # the server's version string, as any client sees it
    # The server's algorithm offer, from its KEXINIT (seen before any login)
    ssh_kex_offered: list[str] | None = None
    ssh_host_keys_offered: list[str] | None = None
    ssh_ciphers_offered: list[str] | None = None
    ssh_macs_offered: list[str] | None = None
    listening: list[Service] | None = None
    firewall_active: bool | None = None
    firewall_detail: str | None = None
    disk_encryption: bool | None = None
    antivirus: str | None = None
    antivirus_enabled: bool | None = None
    av_signature_age_days: int | None = None
    smb1_enabled: bool | None = None
    rdp_enabled: bool | None = None
    rdp_nla: bool | None = None
    local_admins: list[str] | None = None
    uid0_accounts: list[str] | None = None
    empty_password_accounts: list[str] | None = None
    snmp_versions: list[str] | None = None  # answered: "v1", "v2c", "v3"
    snmp_default_communities: list[str] | None = None  # "public", "private" answered
    snmp_v3_nopriv: bool | None = None


@dataclass
class Directory:
    """What Active Directory says about a computer object (``collectors/directory.py``).

    All ``None`` when the device is not in a directory. ``created`` is when the computer
    object was made (the machine is at least that old in the city: an age estimate, a lower
    bound). ``last_logon`` is ``lastLogonTimestamp``, replicated lazily: up to 14 days late.
    LAPS and BitLocker facts are ``None`` when they cannot be known (schema without the
    attribute, recovery objects the bind account may not read); see ``gaps``.
    """

    dn: str | None = None
    name: str | None = None
    dns_host_name: str | None = None
    created: dt.date | None = None
    last_logon: dt.date | None = None
    password_last_set: dt.date | None = None
    disabled: bool | None = None
    domain_controller: bool | None = None  # userAccountControl SERVER_TRUST_ACCOUNT
    laps_expires: dt.date | None = None  # the later of the legacy and Windows LAPS expiry
    laps_managed: bool | None = None  # an expiry attribute is set (LAPS manages the admin password)
    laps_source: str | None = None  # which attribute(s) the schema has: "legacy", "windows", "legacy+windows"
    bitlocker_keys: int | None = None  # msFVE-RecoveryInformation objects under the computer
    read_at: str | None = None  # UTC ISO time of the directory read


@dataclass
class DeviceFacts:
    """Everything collected about one device in one scan."""

    identity: Identity = field(default_factory=Identity)
    software: Software = field(default_factory=Software)
    hardware: Hardware = field(default_factory=Hardware)
    patching: Patching = field(default_factory=Patching)
    posture: Posture = field(default_factory=Posture)
    directory: Directory = field(default_factory=Directory)
    # section name -> probe that produced it ("ssh:linux", "snmp:system", "psutil")
    sources: dict[str, str] = field(default_factory=dict)
    collected_at: str | None = None  # UTC ISO time
    # dotted fact name -> why it is unknown ("no DMI access", "section truncated")
    gaps: dict[str, str] = field(default_factory=dict)
    # bounded raw evidence, probe section -> text
    evidence: dict[str, str] = field(default_factory=dict)

    def get(self, dotted: str) -> Any:
        """Return a fact by dotted name, e.g. ``facts.get("software.os_version")``."""
        obj: Any = self
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj

    def add_evidence(self, name: str, text: str | bytes | None) -> None:
        if text:
            self.evidence[name] = clip(text, MAX_EVIDENCE) or ""

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceFacts:
        return _from_dict(cls, data)


@dataclass
class CollectResult:
    """The outcome of collecting one target: facts, or an error with its reason."""

    target: Target
    status: ResultStatus
    facts: DeviceFacts = field(default_factory=DeviceFacts)
    error_kind: str | None = None  # CollectError.kind
    error: str | None = None  # human sentence, never a secret
    started_at: str | None = None
    duration_ms: int | None = None
    # Findings a collector raises itself (e.g. a changed host key): check_id -> detail
    collector_findings: dict[str, str] = field(default_factory=dict)


# --- Findings ------------------------------------------------------------------------


@dataclass
class Cost:
    amount: float
    kind: str = "operating"  # "capital" or "operating"
    budget_line: str | None = None
    basis: str = ""  # how the amount was worked out, in words
    fiscal_year: int | None = None  # the fiscal year it falls in (None: now)


@dataclass
class CheckResult:
    """What a check function returns for one device."""

    status: Status
    summary: str = ""  # plain-English sentence for a manager
    detail: str = ""  # technician detail
    evidence: str = ""
    remediation: str = ""
    cost: Cost | None = None
    severity: Severity | None = None  # overrides the check's default when set
    missing: list[str] = field(default_factory=list)  # facts missing for unknown


@dataclass
class Finding:
    """One check's verdict on one device, as stored and reported."""

    check_id: str
    status: Status
    severity: Severity
    title: str
    summary: str
    detail: str = ""
    evidence: str = ""
    remediation: str = ""
    cost: Cost | None = None
    references: list[str] = field(default_factory=list)
    device_id: int | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    resolved_at: str | None = None


# --- (de)serialisation ---------------------------------------------------------------


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    return obj


def _from_dict(cls: Any, data: Any) -> Any:  # cls: a dataclass type
    """Rebuild nested dataclasses from plain dicts, tolerating unknown keys."""
    if not dataclasses.is_dataclass(cls) or not isinstance(data, dict):
        return data
    hints = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, f in hints.items():
        if name not in data:
            continue
        kwargs[name] = _convert(f.type, data[name])
    make: Any = cls  # a dataclass type (is_dataclass narrows it to "instance or type")
    return make(**kwargs)


_NESTED: dict[str, type] = {}


def _convert(type_str: Any, value: Any) -> Any:
    if value is None:
        return None
    t = str(type_str)
    if "dt.date" in t and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    for name, klass in _NESTED.items():
        if t.startswith(f"list[{name}]") and isinstance(value, list):
            return [_from_dict(klass, v) for v in value]
        if t == name or t.startswith(f"{name} "):
            return _from_dict(klass, value)
    return value


_NESTED.update(
    {
        "Identity": Identity,
        "Software": Software,
        "Hardware": Hardware,
        "Patching": Patching,
        "Posture": Posture,
        "Directory": Directory,
        "Disk": Disk,
        "Package": Package,
        "Service": Service,
    }
)

"""Configuration: TOML loaded with ``tomllib`` into typed objects, validated at load time.

Every error names the file and the dotted key. Secrets never sit in the file: credentials
point to an environment variable, a key file, the ssh-agent or a keyring entry.
Precedence for settings: command-line flags, then ``ITAUDIT_*`` environment variables,
then the file. ``config.example.toml`` documents every key accepted here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit import board_config
from itaudit.board_config import BoardConfig
from itaudit.credentials import Credential, SNMPCredential, SSHCredential, WinRMCredential
from itaudit.errors import ConfigError
from itaudit.model import Kind
from itaudit.policy import Policy, parse_policy

PROTOCOLS = ("ssh", "snmp", "local", "winrm")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keys that would put a secret in the file: refused with a pointer to the *_env form.
_SECRET_KEYS = {"password", "community", "auth_key", "priv_key", "passphrase", "secret"}


@dataclass(frozen=True)
class BudgetLine:
    account: str  # "101-1410-5740"
    name: str
    kind: str = "operating"  # "capital" or "operating"


@dataclass
class Settings:
    data_dir: Path
    concurrency: int = 16
    timeout: float = 20.0
    max_output_bytes: int = 4 * 1024 * 1024
    log_format: str = "text"  # "text" or "json"


# --- agent: schedule, delivery, SMTP ---------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When the agent scans a city and when it writes and sends the monthly report."""

    scan: str = "daily"  # "daily", "weekly", "hourly" or "off"
    scan_at: str = "02:00"  # HH:MM in the city's time zone (hourly: the minute, ":MM")
    scan_weekday: str = "sunday"  # for weekly scans
    report_day: int = 1  # day of the month; 29-31 fall on the last day of shorter months
    report_at: str = "06:00"  # HH:MM in the city's time zone
    report: bool = True  # write (and deliver) the monthly report


@dataclass(frozen=True)
class Delivery:
    """Who receives a city's monthly summary, and what is attached."""

    recipients: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str = "{city}: IT risk summary for {month}"
    attach: tuple[str, ...] = ("pdf", "xlsx")  # the manager PDF and the capital-plan spreadsheet
    sender: str | None = None  # key "from": this city's From address (default: smtp.from)


@dataclass(frozen=True)
class SMTPConfig:
    """The outgoing mail server. The password is a reference (env or keyring), never the value."""

    host: str
    sender: str
    port: int = 587
    security: str = "starttls"  # "starttls", "tls" (implicit, usually port 465) or "none"
    username: str | None = None
    password_env: str | None = None
    password_keyring: str | None = None  # "service/user"
    ca_file: str | None = None  # extra CA bundle for a private mail server
    timeout: float = 30.0
    retry_attempts: int = 8
    retry_backoff: float = 60.0  # seconds before the first retry; doubles each time
    retry_backoff_max: float = 3600.0


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Discovery:
    """``[cities.<id>.discovery]``: which ranges to sweep and how gently."""

    ranges: tuple[str, ...] = ()  # CIDR blocks (or single addresses) the city owns
    exclude: tuple[str, ...] = ()
    ports: tuple[int, ...] = (22, 23, 80, 443, 445, 3389, 5985, 5986, 9100)
    snmp_port: int = 161
    rate: float = 50.0  # probes per second
    concurrency: int = 64  # >= rate x timeout, or silent addresses slow the sweep
    timeout: float = 1.0  # per probe, seconds
    auto_add: bool = False  # add devices reachable with the city's credentials to the next scan
    max_addresses: int = 4096  # larger sweeps need --force
    # Unmanaged SSH servers are logged in to with key-based credentials only: a password sent
    # to an unknown host is a password given to it. True also tries password credentials.
    verify_with_passwords: bool = False


@dataclass(frozen=True)
class Evidence:
    """``[cities.<id>.evidence]``: the city's own question templates and its attestation file."""

    templates: tuple[Path, ...] = ()  # extra evidence templates (JSON), e.g. the city's insurer's questions
    attestations: Path | None = None  # default: attestations.json beside the city's database


@dataclass
class DirectoryConfig:
    """``[cities.<id>.directory]``: the Active Directory to read computer objects from.

    Read-only: one search of computer objects, nothing written. TLS is mandatory (LDAPS, or
    StartTLS on 389) and the certificate is validated against ``ca_file`` (else the system's
    trust store) and ``tls_name``. The bind password is a reference, never the value.
    """

    server: str
    base_dn: str
    bind_dn: str  # simple: a DN or UPN; ntlm: "CITY\\user" or a UPN; kerberos: a UPN (user@realm)
    password_env: str | None = None
    password_keyring: str | None = None  # "service/user"
    security: str = "ldaps"  # "ldaps" (636) or "starttls" (389)
    port: int = 636
    ca_file: str | None = None
    tls_name: str | None = None  # the name the certificate must carry (default: server)
    page_size: int = 500
    timeout: float = 30.0
    search_filter: str = "(objectCategory=computer)"
    bind: str = "simple"  # "simple", "ntlm" or "kerberos" (collectors/ldap_bind.py)

    @property
    def label(self) -> str:
        return f"ldap{'s' if self.security == 'ldaps' else ''}://{self.server}:{self.port}"


@dataclass
class CityConfig:
    id: str
    name: str
    database: Path
    known_hosts: Path
    policy: Policy
    budget_lines: dict[str, BudgetLine] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
    targets: list[Any] = field(default_factory=list)  # list[model.Target]
    departments: dict[str, dict[str, Any]] = field(default_factory=dict)
    timezone: str = "UTC"
    schedule: Schedule = field(default_factory=Schedule)
    delivery: Delivery = field(default_factory=Delivery)
    discovery: Discovery = field(default_factory=Discovery)
    evidence: Evidence = field(default_factory=Evidence)
    directory: DirectoryConfig | None = None


@dataclass
class SiteConfig:
    """``[site]``: this install is an MSP's collector inside one city. After each scan it pushes a
    signed snapshot of the city's database outbound over OpenSSH SFTP to the MSP's inbox."""

    city: str
    name: str  # the site's own name (default: the city id)
    host: str
    user: str
    identity_file: Path  # SSH key that logs in to the inbox (SFTP only, chrooted)
    signing_key: Path  # SSH key that signs each manifest (ssh-keygen -Y sign)
    known_hosts: Path  # the MSP's pinned host key: never trust on first use here
    port: int = 22
    directory: str = "inbox"  # folder inside the chroot
    keep_undelivered: int = 60  # snapshots kept while the link is down (each is the whole database)
    retry_backoff: float = 60.0
    retry_backoff_max: float = 3600.0
    timeout: float = 60.0
    bandwidth_kbps: int = 0  # cap on the upload (sftp -l), so a push never fills a small city's uplink


@dataclass
class CentralConfig:
    """``[central]``: the MSP's end. Each city's site pushes into ``inbox_root/<city>/inbox``;
    ingest verifies and swaps the snapshot in as that city's database."""

    inbox_root: Path
    allowed_signers: Path  # ssh-keygen allowed-signers file: one line per city (principal = city id)
    keep: int = 5  # snapshots kept per city after ingest
    stale_after_hours: float = 48.0  # a site silent longer is shown as stale


@dataclass
class Config:
    path: Path
    settings: Settings
    cities: dict[str, CityConfig]
    warnings: list[str] = field(default_factory=list)
    # Warnings that matter only to the agent (it sends the email): other commands stay quiet.
    agent_warnings: list[str] = field(default_factory=list)
    smtp: SMTPConfig | None = None
    site: SiteConfig | None = None
    central: CentralConfig | None = None
    board: BoardConfig | None = None  # [board]: itaudit/board_config.py

    def city(self, city_id: str | None) -> CityConfig:
        """Return one city; with no id, the only city (or a ConfigError naming the choices)."""
        if city_id is None:
            if len(self.cities) == 1:
                return next(iter(self.cities.values()))
            raise ConfigError(
                f"several cities configured ({', '.join(sorted(self.cities))}); choose one with --city",
                path=str(self.path),
            )
        if city_id not in self.cities:
            raise ConfigError(
                f"no city '{city_id}' (configured: {', '.join(sorted(self.cities)) or 'none'})",
                key=f"cities.{city_id}", path=str(self.path),
            )
        return self.cities[city_id]


# --- loading -------------------------------------------------------------------------


def load(path: str | Path, *, env: dict[str, str] | None = None,
         overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate a config file. Raises ``ConfigError`` naming file and key."""
    from itaudit.model import Target

    path = Path(path)
    env = dict(os.environ if env is None else env)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None

    v = _Validator(str(path))
    v.keys(doc, "", {"settings", "cities", "smtp", "site", "central", "board"})
    base = path.parent.resolve()

    s = v.table(doc, "settings", "settings")
    v.keys(s, "settings", {"data_dir", "concurrency", "timeout", "max_output_bytes", "log_format"})
    data_dir = _resolve(base, v.opt(s, "data_dir", str, "settings", "itaudit-data"))
    settings = Settings(
        data_dir=data_dir,
        concurrency=v.opt(s, "concurrency", int, "settings", 16),
        timeout=float(v.opt(s, "timeout", (int, float), "settings", 20)),
        max_output_bytes=v.opt(s, "max_output_bytes", int, "settings", 4 * 1024 * 1024),
        log_format=v.choice(s, "log_format", ("text", "json"), "settings", "text"),
    )
    # ITAUDIT_* environment overrides the file; CLI overrides (passed in) win over both.
    env_map = {"ITAUDIT_DATA_DIR": "data_dir", "ITAUDIT_CONCURRENCY": "concurrency",
               "ITAUDIT_TIMEOUT": "timeout", "ITAUDIT_LOG_FORMAT": "log_format"}
    for var, attr in env_map.items():
        if env.get(var):
            _set_setting(settings, attr, env[var], f"environment {var}", str(path))
    for attr, value in (overrides or {}).items():
        if value is not None:
            _set_setting(settings, attr, value, f"option --{attr.replace('_', '-')}", str(path))
    if settings.concurrency < 1 or settings.concurrency > 1024:
        raise ConfigError("must be between 1 and 1024", key="settings.concurrency", path=str(path))
    if not 0 < settings.timeout <= 3600:  # (NaN fails this too)
        raise ConfigError("must be between 0 and 3600 seconds", key="settings.timeout", path=str(path))
    if settings.max_output_bytes < 64 * 1024:
        raise ConfigError("must be at least 65536 (a device's probe output is cut at this size)",
                          key="settings.max_output_bytes", path=str(path))

    cities_doc = v.table(doc, "cities", "cities")
    if not cities_doc:
        raise ConfigError("at least one city is required, e.g. [cities.springfield]", key="cities",
                          path=str(path))
    cities: dict[str, CityConfig] = {}
    for cid, ct in cities_doc.items():
        k = f"cities.{cid}"
        if not _ID_RE.match(cid):
            raise ConfigError("city id must be lower-case letters, digits, '-' or '_'", key=k, path=str(path))
        if not isinstance(ct, dict):
            raise ConfigError("must be a table", key=k, path=str(path))
        v.keys(ct, k, {"name", "database", "timezone", "policy", "budget_lines", "credentials", "targets",
                       "departments", "known_hosts", "schedule", "delivery", "discovery", "evidence",
                       "directory"})
        city_dir = settings.data_dir / cid
        budget_lines = _budget_lines(v, ct, k)
        try:
            policy = parse_policy(v.table(ct, "policy", k), f"{k}.policy")
        except ConfigError as exc:
            if exc.path:
                raise
            raise ConfigError(str(exc).removeprefix(f"key '{exc.key}': "), key=exc.key, path=str(path)) from None
        policy.line_kinds = {account: line.kind for account, line in budget_lines.items()}
        departments = v.table(ct, "departments", k)
        for dname, dtab in departments.items():
            if not isinstance(dtab, dict):
                raise ConfigError("must be a table", key=f"{k}.departments.{dname}", path=str(path))
        city = CityConfig(
            id=cid,
            name=v.opt(ct, "name", str, k, cid.title()),
            database=_resolve(base, v.opt(ct, "database", str, k, str(city_dir / "itaudit.db"))),
            known_hosts=_resolve(base, v.opt(ct, "known_hosts", str, k, str(city_dir / "known_hosts"))),
            policy=policy,
            budget_lines=budget_lines,
            credentials=_credentials(v, ct, k),
            departments=departments,
            timezone=v.opt(ct, "timezone", str, k, "UTC"),
        )
        city.targets = _targets(v, ct, k, city, Target)
        city.schedule = _schedule(v, ct, k)
        city.delivery = _delivery(v, ct, k)
        city.discovery = _discovery(v, ct, k)
        city.evidence = _evidence(v, ct, k, base)
        city.directory = _directory(v, ct, k, base)
        _check_budget_refs(city, k, str(path))
        cities[cid] = city

    cfg = Config(path=path, settings=settings, cities=cities, smtp=_smtp(v, doc), site=_site(v, doc, cities, base),
                 central=_central(v, doc, base), board=board_config.parse(v, doc, base, cities))
    _check_agent(cfg)
    _warn_permissions(cfg, path)
    return cfg


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base / p)


def _set_setting(settings: Settings, attr: str, value: Any, origin: str, path: str) -> None:
    try:
        if attr == "data_dir":
            settings.data_dir = Path(os.path.expanduser(str(value))).resolve()
        elif attr == "concurrency":
            settings.concurrency = int(value)
        elif attr == "timeout":
            settings.timeout = float(value)
        elif attr == "log_format":
            if value not in ("text", "json"):
                raise ValueError(value)
            settings.log_format = str(value)
    except ValueError:
        raise ConfigError(f"{origin}: invalid value {value!r}", key=f"settings.{attr}", path=path) from None


def _budget_lines(v: _Validator, ct: dict[str, Any], k: str) -> dict[str, BudgetLine]:
    out = {}
    for account, bt in v.table(ct, "budget_lines", k).items():
        bk = f'{k}.budget_lines."{account}"'
        if not isinstance(bt, dict):
            raise ConfigError("must be a table with name and kind", key=bk, path=v.path)
        v.keys(bt, bk, {"name", "kind"})
        out[account] = BudgetLine(
            account=account,
            name=v.req(bt, "name", str, bk),
            kind=v.choice(bt, "kind", ("capital", "operating"), bk, "operating"),
        )
    return out


def _credentials(v: _Validator, ct: dict[str, Any], k: str) -> dict[str, Credential]:
    out: dict[str, Credential] = {}
    for name, c in v.table(ct, "credentials", k).items():
        ck = f"{k}.credentials.{name}"
        if not isinstance(c, dict):
            raise ConfigError("must be a table", key=ck, path=v.path)
        for secret in _SECRET_KEYS & set(c):
            raise ConfigError(
                f"secrets never sit in the config file: use {secret}_env (an environment variable)"
                + (", key_file, or a keyring entry" if secret == "password" else ""),  # noqa: S105
                key=f"{ck}.{secret}", path=v.path,
            )
        ctype = v.choice(c, "type", ("ssh", "snmp", "winrm"), ck, None)
        if ctype == "winrm":
            v.keys(c, ck, {"type", "username", "password_env", "password_keyring", "auth", "transport", "ca_file"})
            ca_file = v.opt(c, "ca_file", str, ck, None)
            winrm = WinRMCredential(
                name=name, username=v.req(c, "username", str, ck),
                password_env=v.opt(c, "password_env", str, ck, None),
                password_keyring=v.opt(c, "password_keyring", str, ck, None),
                # Basic is not a choice: it sends the password itself, and over HTTP in clear.
                auth=v.choice(c, "auth", ("negotiate", "kerberos", "ntlm"), ck, "negotiate"),
                transport=v.choice(c, "transport", ("https", "http"), ck, "https"),
                ca_file=str(_resolve(Path(v.path).parent.resolve(), ca_file)) if ca_file else None,
            )
            if not (winrm.password_env or winrm.password_keyring):
                raise ConfigError("needs password_env or password_keyring", key=ck, path=v.path)
            cred: Credential = winrm
        elif ctype == "ssh":
            v.keys(c, ck, {"type", "username", "key_file", "password_env", "password_keyring", "use_agent", "sudo",
                           "legacy_algorithms"})
            cred = SSHCredential(
                name=name,
                username=v.req(c, "username", str, ck),
                key_file=v.opt(c, "key_file", str, ck, None),
                password_env=v.opt(c, "password_env", str, ck, None),
                password_keyring=v.opt(c, "password_keyring", str, ck, None),
                use_agent=v.opt(c, "use_agent", bool, ck, False),
                sudo=v.opt(c, "sudo", bool, ck, False),
                legacy_algorithms=v.opt(c, "legacy_algorithms", bool, ck, False),
            )
            assert isinstance(cred, SSHCredential)
            if cred.key_file:
                cred = SSHCredential(**{**cred.__dict__, "key_file": str(Path(os.path.expanduser(cred.key_file)))})
            if not (cred.key_file or cred.password_env or cred.password_keyring or cred.use_agent):
                raise ConfigError("needs one of key_file, password_env, password_keyring or use_agent = true",
                                  key=ck, path=v.path)
        else:
            v.keys(c, ck, {"type", "version", "community_env", "community_file", "username", "auth_protocol",
                           "auth_key_env", "priv_protocol", "priv_key_env"})
            version = v.choice(c, "version", ("v1", "v2c", "v3"), ck, "v3")
            cred = SNMPCredential(
                name=name,
                version=version,
                community_env=v.opt(c, "community_env", str, ck, None),
                community_file=v.opt(c, "community_file", str, ck, None),
                username=v.opt(c, "username", str, ck, None),
                auth_protocol=v.choice(c, "auth_protocol", ("md5", "sha", "sha224", "sha256", "sha384", "sha512"),
                                       ck, None),
                auth_key_env=v.opt(c, "auth_key_env", str, ck, None),
                priv_protocol=v.choice(c, "priv_protocol", ("des", "aes128", "aes192", "aes256"), ck, None),
                priv_key_env=v.opt(c, "priv_key_env", str, ck, None),
            )
            if version in ("v1", "v2c") and not (cred.community_env or cred.community_file):
                raise ConfigError("SNMP v1/v2c needs community_env or community_file", key=ck, path=v.path)
            if version == "v3" and not cred.username:
                raise ConfigError("SNMPv3 needs username", key=f"{ck}.username", path=v.path)
            if version == "v3" and cred.auth_protocol and not cred.auth_key_env:
                raise ConfigError("auth_protocol set without auth_key_env", key=f"{ck}.auth_key_env", path=v.path)
            if version == "v3" and cred.priv_protocol and not (cred.priv_key_env and cred.auth_protocol):
                raise ConfigError("priv_protocol needs auth_protocol and priv_key_env", key=f"{ck}.priv_key_env",
                                  path=v.path)
        out[name] = cred
    return out


def _targets(v: _Validator, ct: dict[str, Any], k: str, city: CityConfig, target_cls: Any) -> list[Any]:
    raw = ct.get("targets", [])
    if not isinstance(raw, list):
        raise ConfigError("must be an array of tables ([[...targets]])", key=f"{k}.targets", path=v.path)
    targets = []
    seen: dict[tuple[str, str, int | None], str] = {}
    for i, t in enumerate(raw):
        tk = f"{k}.targets[{i}]"
        if not isinstance(t, dict):
            raise ConfigError("must be a table", key=tk, path=v.path)
        v.keys(t, tk, {"address", "protocol", "port", "name", "credential", "department", "kind", "criticality",
                       "purchase_date", "tags"})
        address = v.req(t, "address", str, tk)
        protocol = v.choice(t, "protocol", PROTOCOLS, tk, "ssh")
        if protocol != "local":
            _check_address(address, f"{tk}.address", v.path)
        cred = v.opt(t, "credential", str, tk, None)
        if protocol != "local":
            if cred is None:
                raise ConfigError(f"a {protocol} target needs a credential", key=f"{tk}.credential", path=v.path)
            if cred not in city.credentials:
                # Credentials are per city: another city's credential of the same name is not visible here.
                raise ConfigError(f"no credential '{cred}' in this city (defined: "
                                  f"{', '.join(sorted(city.credentials)) or 'none'})",
                                  key=f"{tk}.credential", path=v.path)
            found = city.credentials[cred]
            ctype = ("ssh" if isinstance(found, SSHCredential) else "winrm" if isinstance(found, WinRMCredential)
                     else "snmp")
            if ctype != protocol:
                raise ConfigError(f"credential '{cred}' is for {ctype}, target is {protocol}",
                                  key=f"{tk}.credential", path=v.path)
        kind = v.opt(t, "kind", str, tk, None)
        if kind is not None and kind not in {x.value for x in Kind}:
            raise ConfigError(f"unknown kind {kind!r}; one of {', '.join(x.value for x in Kind)}",
                              key=f"{tk}.kind", path=v.path)
        dept = v.opt(t, "department", str, tk, None)
        purchase = t.get("purchase_date")
        if purchase is not None:
            if isinstance(purchase, str):
                try:
                    purchase = dt.date.fromisoformat(purchase)
                except ValueError:
                    raise ConfigError("must be a date (YYYY-MM-DD)", key=f"{tk}.purchase_date", path=v.path) from None
            elif isinstance(purchase, dt.datetime):
                purchase = purchase.date()
            elif not isinstance(purchase, dt.date):
                raise ConfigError("must be a date (YYYY-MM-DD)", key=f"{tk}.purchase_date", path=v.path)
        port = v.opt(t, "port", int, tk, None)
        if port is not None and not 0 < port < 65536:
            raise ConfigError("must be 1-65535", key=f"{tk}.port", path=v.path)
        ident = (protocol, address, port)
        if ident in seen:
            raise ConfigError(f"duplicate of {seen[ident]}", key=tk, path=v.path)
        seen[ident] = tk
        targets.append(target_cls(
            address=address, protocol=protocol, city_id=city.id, port=port,
            name=v.opt(t, "name", str, tk, None), credential=cred, department=dept, kind=kind,
            criticality=v.str_list(t, "criticality", tk), purchase_date=purchase, tags=v.str_list(t, "tags", tk),
        ))
    return targets


def _hhmm(v: _Validator, t: dict[str, Any], key: str, prefix: str, default: str, *, minute_only: bool) -> str:
    value = v.opt(t, key, str, prefix, default)
    ok = re.match(r"^:[0-5]\d$", value) if minute_only else _HHMM_RE.match(value)
    if not ok:
        what = "a minute like \":15\"" if minute_only else "a time like \"02:00\" (24 h)"
        raise ConfigError(f"must be {what}", key=f"{prefix}.{key}", path=v.path)
    return value


def _schedule(v: _Validator, ct: dict[str, Any], k: str) -> Schedule:
    """``[cities.<id>.schedule]``: scan cadence and monthly report day, in the city's time zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tz = ct.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {tz!r} (use an IANA name like \"America/Chicago\")",
                          key=f"{k}.timezone", path=v.path) from None
    sk = f"{k}.schedule"
    st = v.table(ct, "schedule", k)
    v.keys(st, sk, {"scan", "scan_at", "scan_weekday", "report_day", "report_at", "report"})
    scan = v.choice(st, "scan", ("daily", "weekly", "hourly", "off"), sk, "daily")
    default_at = ":00" if scan == "hourly" else "02:00"
    report_day = v.opt(st, "report_day", int, sk, 1)
    if not 1 <= report_day <= 31:
        raise ConfigError("must be a day of the month, 1-31", key=f"{sk}.report_day", path=v.path)
    return Schedule(
        scan=scan,
        scan_at=_hhmm(v, st, "scan_at", sk, default_at, minute_only=scan == "hourly"),
        scan_weekday=v.choice(st, "scan_weekday", WEEKDAYS, sk, "sunday"),
        report_day=report_day,
        report_at=_hhmm(v, st, "report_at", sk, "06:00", minute_only=False),
        report=v.opt(st, "report", bool, sk, True),
    )


def _addresses(v: _Validator, t: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
    values = v.str_list(t, key, prefix)
    for i, addr in enumerate(values):
        if not _EMAIL_RE.match(addr):
            raise ConfigError(f"not an email address: {addr!r}", key=f"{prefix}.{key}[{i}]", path=v.path)
    return tuple(values)


def _delivery(v: _Validator, ct: dict[str, Any], k: str) -> Delivery:
    """``[cities.<id>.delivery]``: the monthly summary's recipients and attachments."""
    dk = f"{k}.delivery"
    d = v.table(ct, "delivery", k)
    v.keys(d, dk, {"recipients", "cc", "subject", "attach", "from"})
    sender = v.opt(d, "from", str, dk, None)
    if sender is not None and not _EMAIL_RE.match(sender):
        raise ConfigError(f"not an email address: {sender!r}", key=f"{dk}.from", path=v.path)
    attach = v.str_list(d, "attach", dk) if "attach" in d else list(Delivery.attach)
    for i, a in enumerate(attach):
        if a not in ("pdf", "xlsx", "csv", "html", "json", "evidence"):
            raise ConfigError(f"unknown attachment {a!r} (pdf, xlsx, csv, html, json, evidence)",
                              key=f"{dk}.attach[{i}]", path=v.path)
    subject = v.opt(d, "subject", str, dk, Delivery.subject)
    try:
        subject.format(city="c", month="m")
    except (KeyError, IndexError, ValueError):
        raise ConfigError("may use only {city} and {month} as placeholders", key=f"{dk}.subject",
                          path=v.path) from None
    return Delivery(recipients=_addresses(v, d, "recipients", dk), cc=_addresses(v, d, "cc", dk),
                    subject=subject, attach=tuple(attach), sender=sender)


def _evidence(v: _Validator, ct: dict[str, Any], k: str, base: Path) -> Evidence:
    """``[cities.<id>.evidence]``: paths relative to the config file, like the database's."""
    ek = f"{k}.evidence"
    e = v.table(ct, "evidence", k)
    v.keys(e, ek, {"templates", "attestations"})
    templates = tuple(_resolve(base, t) for t in v.str_list(e, "templates", ek))
    for i, t in enumerate(templates):
        if not t.is_file():
            raise ConfigError(f"template file not found: {t}", key=f"{ek}.templates[{i}]", path=v.path)
    att = v.opt(e, "attestations", str, ek, "")
    return Evidence(templates=templates, attestations=_resolve(base, att) if att else None)


def _discovery(v: _Validator, ct: dict[str, Any], k: str) -> Discovery:
    """``[cities.<id>.discovery]``: sweep ranges, ports and pace; each value checked here."""
    dk = f"{k}.discovery"
    d = v.table(ct, "discovery", k)
    v.keys(d, dk, {"ranges", "exclude", "ports", "snmp_port", "rate", "concurrency", "timeout", "auto_add",
                   "max_addresses", "verify_with_passwords"})
    for key in ("ranges", "exclude"):
        for i, r in enumerate(v.str_list(d, key, dk)):
            try:
                ipaddress.ip_network(r, strict=False)
            except ValueError:
                raise ConfigError(f"not an address range: {r!r} (use CIDR like \"10.1.0.0/24\")",
                                  key=f"{dk}.{key}[{i}]", path=v.path) from None
    ports = d.get("ports", list(Discovery.ports))
    if not isinstance(ports, list) or not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536
                                              for p in ports):
        raise ConfigError("must be a list of port numbers 1-65535", key=f"{dk}.ports", path=v.path)
    out = Discovery(
        ranges=tuple(v.str_list(d, "ranges", dk)), exclude=tuple(v.str_list(d, "exclude", dk)),
        ports=tuple(dict.fromkeys(ports)), snmp_port=v.opt(d, "snmp_port", int, dk, 161),
        rate=float(v.opt(d, "rate", (int, float), dk, 50)), concurrency=v.opt(d, "concurrency", int, dk, 64),
        timeout=float(v.opt(d, "timeout", (int, float), dk, 1.0)), auto_add=v.opt(d, "auto_add", bool, dk, False),
        max_addresses=v.opt(d, "max_addresses", int, dk, 4096),
        verify_with_passwords=v.opt(d, "verify_with_passwords", bool, dk, False),
    )
    if not 0 < out.snmp_port < 65536:
        raise ConfigError("must be 1-65535", key=f"{dk}.snmp_port", path=v.path)
    if not 0 < out.rate <= 10000:
        raise ConfigError("must be between 0 and 10000 probes per second", key=f"{dk}.rate", path=v.path)
    if not 1 <= out.concurrency <= 1024:
        raise ConfigError("must be between 1 and 1024", key=f"{dk}.concurrency", path=v.path)
    if not 0 < out.timeout <= 30:
        raise ConfigError("must be between 0 and 30 seconds", key=f"{dk}.timeout", path=v.path)
    if out.max_addresses < 1:
        raise ConfigError("must be at least 1", key=f"{dk}.max_addresses", path=v.path)
    return out


def _site(v: _Validator, doc: dict[str, Any], cities: dict[str, CityConfig], base: Path) -> SiteConfig | None:
    """``[site]``: push signed snapshots of one city's database to an MSP (docs/sites.md)."""
    if "site" not in doc:
        return None
    t = v.table(doc, "site", "site")
    v.keys(t, "site", {"city", "name", "host", "port", "user", "directory", "identity_file", "signing_key",
                       "known_hosts", "keep_undelivered", "retry_backoff", "retry_backoff_max", "timeout",
                       "bandwidth_kbps"})
    city = v.opt(t, "city", str, "site", next(iter(cities)) if len(cities) == 1 else None)
    if city is None:
        raise ConfigError("several cities configured: name the one this site scans", key="site.city", path=v.path)
    if city not in cities:
        raise ConfigError(f"no city '{city}' in this config", key="site.city", path=v.path)
    host = v.req(t, "host", str, "site")
    _check_address(host, "site.host", v.path)
    identity = _resolve(base, v.req(t, "identity_file", str, "site"))
    directory = v.opt(t, "directory", str, "site", "inbox")
    if not re.match(r"^[A-Za-z0-9._/-]{1,200}$", directory) or ".." in directory.split("/"):
        raise ConfigError("a plain folder name inside the inbox (letters, digits, . _ - /)", key="site.directory",
                          path=v.path)
    site = SiteConfig(
        city=city, name=v.opt(t, "name", str, "site", city), host=host,
        user=v.req(t, "user", str, "site"), identity_file=identity,
        signing_key=_resolve(base, v.opt(t, "signing_key", str, "site", str(identity))),
        known_hosts=_resolve(base, v.req(t, "known_hosts", str, "site")),
        port=v.opt(t, "port", int, "site", 22), directory=directory,
        keep_undelivered=v.opt(t, "keep_undelivered", int, "site", 60),
        retry_backoff=float(v.opt(t, "retry_backoff", (int, float), "site", 60)),
        retry_backoff_max=float(v.opt(t, "retry_backoff_max", (int, float), "site", 3600)),
        timeout=float(v.opt(t, "timeout", (int, float), "site", 60)),
        bandwidth_kbps=v.opt(t, "bandwidth_kbps", int, "site", 0),
    )
    if site.bandwidth_kbps < 0:
        raise ConfigError("kbit/s, 0 for no cap", key="site.bandwidth_kbps", path=v.path)
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", site.name):
        raise ConfigError("letters, digits, '.', '_' or '-'", key="site.name", path=v.path)
    if not 1 <= site.port <= 65535:
        raise ConfigError("must be a TCP port, 1-65535", key="site.port", path=v.path)
    if site.keep_undelivered < 1:
        raise ConfigError("must be at least 1", key="site.keep_undelivered", path=v.path)
    if not 0 <= site.retry_backoff <= site.retry_backoff_max:
        raise ConfigError("need 0 <= retry_backoff <= retry_backoff_max", key="site.retry_backoff", path=v.path)
    if not 0 < site.timeout <= 3600:
        raise ConfigError("must be between 0 and 3600 seconds", key="site.timeout", path=v.path)
    return site


def _central(v: _Validator, doc: dict[str, Any], base: Path) -> CentralConfig | None:
    """``[central]``: ingest the snapshots the cities' sites push (docs/sites.md)."""
    if "central" not in doc:
        return None
    t = v.table(doc, "central", "central")
    v.keys(t, "central", {"inbox_root", "allowed_signers", "keep", "stale_after_hours"})
    central = CentralConfig(
        inbox_root=_resolve(base, v.req(t, "inbox_root", str, "central")),
        allowed_signers=_resolve(base, v.req(t, "allowed_signers", str, "central")),
        keep=v.opt(t, "keep", int, "central", 5),
        stale_after_hours=float(v.opt(t, "stale_after_hours", (int, float), "central", 48)),
    )
    if central.keep < 1:
        raise ConfigError("must be at least 1", key="central.keep", path=v.path)
    return central


def _directory(v: _Validator, ct: dict[str, Any], k: str, base: Path) -> DirectoryConfig | None:
    """``[cities.<id>.directory]``: the Active Directory server, bind account and TLS trust."""
    if "directory" not in ct:
        return None
    dk = f"{k}.directory"
    d = v.table(ct, "directory", k)
    for secret in _SECRET_KEYS & set(d):
        raise ConfigError(f"secrets never sit in the config file: use {secret}_env or {secret}_keyring",
                          key=f"{dk}.{secret}", path=v.path)
    v.keys(d, dk, {"server", "port", "security", "ca_file", "tls_name", "base_dn", "bind_dn", "password_env",
                   "password_keyring", "page_size", "timeout", "filter", "bind"})
    server = v.req(d, "server", str, dk)
    _check_address(server, f"{dk}.server", v.path)
    security = v.choice(d, "security", ("ldaps", "starttls"), dk, "ldaps")
    port = v.opt(d, "port", int, dk, 636 if security == "ldaps" else 389)
    if not 0 < port < 65536:
        raise ConfigError("must be 1-65535", key=f"{dk}.port", path=v.path)
    ca_file = v.opt(d, "ca_file", str, dk, None)
    if ca_file is not None:
        ca_file = str(_resolve(base, ca_file))
    cfg = DirectoryConfig(
        server=server, base_dn=v.req(d, "base_dn", str, dk), bind_dn=v.req(d, "bind_dn", str, dk),
        password_env=v.opt(d, "password_env", str, dk, None),
        password_keyring=v.opt(d, "password_keyring", str, dk, None),
        security=security, port=port, ca_file=ca_file, tls_name=v.opt(d, "tls_name", str, dk, None),
        page_size=v.opt(d, "page_size", int, dk, 500), timeout=float(v.opt(d, "timeout", (int, float), dk, 30)),
        search_filter=v.opt(d, "filter", str, dk, "(objectCategory=computer)"),
        bind=v.choice(d, "bind", ("simple", "ntlm", "kerberos"), dk, "simple"),
    )
    if not (cfg.password_env or cfg.password_keyring) and cfg.bind != "kerberos":
        raise ConfigError("needs password_env or password_keyring (the bind account's password)", key=dk,
                          path=v.path)
    _check_bind_account(cfg, dk, v.path)
    if "=" not in cfg.base_dn:
        raise ConfigError(f"not a distinguished name: {cfg.base_dn!r} (like \"DC=city,DC=local\")",
                          key=f"{dk}.base_dn", path=v.path)
    if not 1 <= cfg.page_size <= 1000:
        raise ConfigError("must be between 1 and 1000 (Active Directory's MaxPageSize is 1000)",
                          key=f"{dk}.page_size", path=v.path)
    if not 0 < cfg.timeout <= 3600:
        raise ConfigError("must be between 0 and 3600 seconds", key=f"{dk}.timeout", path=v.path)
    if not (cfg.search_filter.startswith("(") and cfg.search_filter.endswith(")")):
        raise ConfigError("must be an LDAP filter in parentheses", key=f"{dk}.filter", path=v.path)
    return cfg


def _check_bind_account(cfg: DirectoryConfig, dk: str, path: str | None) -> None:
    """The account form each bind needs; Kerberos needs its optional extra installed."""
    account = cfg.bind_dn
    if cfg.bind == "ntlm" and not (re.fullmatch(r"[^\\@=,]+\\[^\\@=,]+", account)
                                   or re.fullmatch(r"[^\\@=,]+@[^\\@=,]+", account)):
        raise ConfigError(f"bind = \"ntlm\" needs the account as DOMAIN\\user or user@domain, not {account!r}",
                          key=f"{dk}.bind_dn", path=path)
    if cfg.bind == "kerberos":
        if not re.fullmatch(r"[^\\@=,]+@[A-Za-z0-9.-]+", account):
            raise ConfigError(f"bind = \"kerberos\" needs the account as user@REALM (a UPN), not {account!r}",
                              key=f"{dk}.bind_dn", path=path)
        import importlib.util

        if importlib.util.find_spec("gssapi") is None:
            raise ConfigError("bind = \"kerberos\" needs python-gssapi: pip install 'itaudit[kerberos]' (it builds "
                              "against the system's MIT Kerberos: apt-get install libkrb5-dev)", key=f"{dk}.bind",
                              path=path)


def _smtp(v: _Validator, doc: dict[str, Any]) -> SMTPConfig | None:
    """Top-level ``[smtp]``: one outgoing mail server for every city (an MSP's relay)."""
    if "smtp" not in doc:
        return None
    t = v.table(doc, "smtp", "smtp")
    for secret in _SECRET_KEYS & set(t):
        raise ConfigError(f"secrets never sit in the config file: use {secret}_env or {secret}_keyring",
                          key=f"smtp.{secret}", path=v.path)
    v.keys(t, "smtp", {"host", "port", "security", "username", "password_env", "password_keyring", "from",
                       "ca_file", "timeout", "retry_attempts", "retry_backoff", "retry_backoff_max"})
    host = v.req(t, "host", str, "smtp")
    _check_address(host, "smtp.host", v.path)
    security = v.choice(t, "security", ("starttls", "tls", "none"), "smtp", "starttls")
    sender = v.req(t, "from", str, "smtp")
    if not _EMAIL_RE.match(sender):
        raise ConfigError(f"not an email address: {sender!r}", key="smtp.from", path=v.path)
    port = v.opt(t, "port", int, "smtp", 465 if security == "tls" else 587)
    if not 0 < port < 65536:
        raise ConfigError("must be 1-65535", key="smtp.port", path=v.path)
    cfg = SMTPConfig(
        host=host, sender=sender, port=port, security=security,
        username=v.opt(t, "username", str, "smtp", None),
        password_env=v.opt(t, "password_env", str, "smtp", None),
        password_keyring=v.opt(t, "password_keyring", str, "smtp", None),
        ca_file=v.opt(t, "ca_file", str, "smtp", None),
        timeout=float(v.opt(t, "timeout", (int, float), "smtp", 30)),
        retry_attempts=v.opt(t, "retry_attempts", int, "smtp", 8),
        retry_backoff=float(v.opt(t, "retry_backoff", (int, float), "smtp", 60)),
        retry_backoff_max=float(v.opt(t, "retry_backoff_max", (int, float), "smtp", 3600)),
    )
    if cfg.username and not (cfg.password_env or cfg.password_keyring):
        raise ConfigError("username set without password_env or password_keyring", key="smtp.username",
                          path=v.path)
    if (cfg.password_env or cfg.password_keyring) and not cfg.username:
        raise ConfigError("a password needs a username", key="smtp.username", path=v.path)
    if cfg.security == "none" and cfg.username:
        raise ConfigError("refusing to send a password without TLS: use security = \"starttls\" or \"tls\"",
                          key="smtp.security", path=v.path)
    if cfg.timeout <= 0:
        raise ConfigError("must be positive", key="smtp.timeout", path=v.path)
    if not 1 <= cfg.retry_attempts <= 100:
        raise ConfigError("must be between 1 and 100", key="smtp.retry_attempts", path=v.path)
    if cfg.retry_backoff < 0 or cfg.retry_backoff_max < cfg.retry_backoff:
        raise ConfigError("need 0 <= retry_backoff <= retry_backoff_max", key="smtp.retry_backoff",
                          path=v.path)
    if cfg.ca_file:
        ca_file = _resolve(Path(v.path).parent.resolve(), cfg.ca_file)
        cfg = SMTPConfig(**{**cfg.__dict__, "ca_file": str(ca_file)})
    return cfg


def _check_agent(cfg: Config) -> None:
    """Cities never share a database or a known_hosts file (their address ranges overlap);
    recipients without a mail server can only be served by --dry-run: say so at load."""
    for attr in ("database", "known_hosts"):
        seen: dict[Path, str] = {}
        for city in cfg.cities.values():
            where = Path(getattr(city, attr)).resolve()
            if where in seen:
                raise ConfigError(f"the same file as cities.{seen[where]}.{attr}: every city keeps its own",
                                  key=f"cities.{city.id}.{attr}", path=str(cfg.path))
            seen[where] = city.id
    if cfg.smtp is None:
        for city in cfg.cities.values():
            if city.delivery.recipients:
                text = (f"cities.{city.id}.delivery has recipients but there is no [smtp] table: "
                        "the monthly email can only be written to a file (--dry-run)")
                cfg.warnings.append(text)
                cfg.agent_warnings.append(text)
                break


def _check_address(address: str, key: str, path: str) -> None:
    try:
        ipaddress.ip_address(address)
        return
    except ValueError:
        pass
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", address):
        raise ConfigError(f"not an IP address or host name: {address!r}", key=key, path=path)


def _check_budget_refs(city: CityConfig, k: str, path: str) -> None:
    """Budget lines referenced by the policy must be defined for the city."""
    for ref_key, account in city.policy.budget_line_refs():
        if account not in city.budget_lines:
            raise ConfigError(f"budget line '{account}' is not defined under [{k}.budget_lines]",
                              key=f"{k}.policy.{ref_key}", path=path)
        if ref_key.endswith("operating_budget_line") and city.budget_lines[account].kind != "operating":
            raise ConfigError(f"budget line '{account}' is a {city.budget_lines[account].kind} line; staff time "
                              f"and subscriptions need an operating line", key=f"{k}.policy.{ref_key}", path=path)


def _warn_permissions(cfg: Config, path: Path) -> None:
    """A config readable by others that names secrets gets a warning (issue: the tool's own security)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    has_secret_refs = any(
        getattr(c, "password_env", None) or getattr(c, "key_file", None) or getattr(c, "auth_key_env", None)
        or getattr(c, "community_env", None) or getattr(c, "community_file", None)
        for city in cfg.cities.values() for c in city.credentials.values()
    ) or any(city.directory is not None for city in cfg.cities.values())
    if has_secret_refs and mode & (stat.S_IROTH | stat.S_IWOTH):
        cfg.warnings.append(f"{path} is readable by other users and references credentials; "
                            f"consider chmod 600 {path}")


class _Validator:
    """Small helpers that check one key's type and raise a ConfigError naming it."""

    def __init__(self, path: str):
        self.path = path

    def keys(self, table: dict[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                full = f"{prefix}.{key}" if prefix else key
                raise ConfigError(f"unknown key (allowed here: {', '.join(sorted(allowed))})", key=full,
                                  path=self.path)

    def table(self, parent: dict[str, Any], key: str, prefix: str) -> dict[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            full = key if prefix == key else f"{prefix}.{key}"
            raise ConfigError("must be a table", key=full, path=self.path)
        return value

    def _full(self, prefix: str, key: str) -> str:
        return f"{prefix}.{key}" if prefix else key

    def req(self, t: dict[str, Any], key: str, typ: Any, prefix: str) -> Any:
        if key not in t:
            raise ConfigError("is required", key=self._full(prefix, key), path=self.path)
        return self.opt(t, key, typ, prefix, None)

    def opt(self, t: dict[str, Any], key: str, typ: Any, prefix: str, default: Any) -> Any:
        if key not in t:
            return default
        value = t[key]
        # bool is an int in Python; refuse true/false where a number is expected.
        if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
            name = typ.__name__ if isinstance(typ, type) else "/".join(x.__name__ for x in typ)
            raise ConfigError(f"must be of type {name}, got {type(value).__name__}",
                              key=self._full(prefix, key), path=self.path)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError("must be a finite number", key=self._full(prefix, key), path=self.path)
        if key.endswith("_env") and not _ENV_NAME.fullmatch(value):
            # Most likely the secret itself pasted in place of the variable's name: never echoed.
            raise ConfigError("must be the NAME of an environment variable (letters, digits, _), not the secret "
                              "itself; put the secret in that variable", key=self._full(prefix, key), path=self.path)
        return value

    def choice(self, t: dict[str, Any], key: str, choices: tuple[str, ...], prefix: str, default: Any) -> Any:
        if key not in t:
            if default is None and key == "type":
                raise ConfigError(f"is required (one of {', '.join(choices)})", key=self._full(prefix, key),
                                  path=self.path)
            return default
        value = t[key]
        if value not in choices:
            raise ConfigError(f"must be one of {', '.join(choices)}, got {value!r}",
                              key=self._full(prefix, key), path=self.path)
        return value

    def str_list(self, t: dict[str, Any], key: str, prefix: str) -> list[str]:
        value = t.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ConfigError("must be a list of strings", key=self._full(prefix, key), path=self.path)
        return list(value)


# Documentation address ranges (RFC 5737, RFC 3849): never a real device. The starter config
# written by `itaudit init` uses them, so an unedited starter config is recognised and refused.
DOCUMENTATION_NETS = tuple(ipaddress.ip_network(n) for n in
                           ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


def _documentation_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address.endswith(".example") or address.endswith(".example.org")
    return any(ip in net for net in DOCUMENTATION_NETS)


def check_scannable(city: CityConfig, targets: list[Any], path: str | None = None) -> None:
    """Refuse to scan a city with targets at documentation addresses (192.0.2.0/24 and the like,
    which no real device has): the starter config from ``itaudit init`` was not edited yet."""
    examples = [t.address for t in targets if _documentation_address(t.address)]
    if examples:
        raise ConfigError(
            f"{', '.join(examples[:3])}{' …' if len(examples) > 3 else ''}: documentation addresses from the "
            f"starter config, not devices: edit [[cities.{city.id}.targets]] (addresses, "
            f"credentials) and [cities.{city.id}.credentials] in the config first",
            key=f"cities.{city.id}.targets", path=path)


def check_sweepable(city: CityConfig, ranges: list[str], path: str | None = None) -> None:
    """Refuse to sweep documentation ranges (the starter config's placeholders)."""
    for r in ranges:
        try:
            net = ipaddress.ip_network(r, strict=False)
        except ValueError:
            continue
        if any(net.version == d.version and net.subnet_of(d) for d in DOCUMENTATION_NETS):  # type: ignore[arg-type]
            raise ConfigError(f"{r} is a documentation range from the starter config, not the city's network: "
                              f"set [cities.{city.id}.discovery] ranges to the city's own address blocks",
                              key=f"cities.{city.id}.discovery.ranges", path=path)


def verify_secrets(city: CityConfig, targets: list[Any], path: str | None = None) -> None:
    """Every secret the targets need can be read now, before any device is contacted.

    A missing environment variable, key file or keyring entry is a config error naming the
    credential and where its secret should come from (the value itself is read and dropped).
    """

    verify_credentials(city, {t.credential for t in targets if t.credential}, path)
    d = city.directory
    if d is not None:  # the directory's bind account, read before any device too
        from itaudit.credentials import read_secret
        from itaudit.errors import AuthError

        try:
            read_secret(env=d.password_env, keyring_ref=d.password_keyring)
        except AuthError as exc:
            attr = "password_env" if d.password_env else "password_keyring"
            raise ConfigError(f"the directory's bind account: {exc}", key=f"cities.{city.id}.directory.{attr}",
                              path=path) from None


def verify_credentials(city: CityConfig, names: Any, path: str | None = None) -> None:
    """The secrets of the named credentials of ``city`` can be read now (see ``verify_secrets``)."""
    from itaudit.credentials import read_secret
    from itaudit.errors import AuthError

    for name in sorted(names):
        cred = city.credentials.get(name)
        if cred is None:
            continue
        base = f"cities.{city.id}.credentials.{name}"
        refs: list[tuple[str, dict[str, str]]] = []
        if isinstance(cred, SSHCredential):
            if cred.password_env:
                refs.append(("password_env", {"env": cred.password_env}))
            if cred.password_keyring:
                refs.append(("password_keyring", {"keyring_ref": cred.password_keyring}))
            if cred.key_file:
                refs.append(("key_file", {"file": cred.key_file}))
            if cred.use_agent and not (cred.key_file or cred.password_env or cred.password_keyring) \
                    and not os.environ.get("SSH_AUTH_SOCK"):
                raise ConfigError(f"credential '{name}' uses the ssh-agent, but SSH_AUTH_SOCK is not set "
                                  "(no agent is running for this user)", key=f"{base}.use_agent", path=path)
        else:  # SNMP and WinRM credentials
            for attr, kind in (("password_env", "env"), ("password_keyring", "keyring_ref"),
                               ("community_env", "env"), ("community_file", "file"),
                               ("auth_key_env", "env"), ("priv_key_env", "env")):
                value = getattr(cred, attr, None)
                if value:
                    refs.append((attr, {kind: value}))
        for attr, ref in refs:
            try:
                if "file" in ref and attr == "key_file":
                    with open(ref["file"], "rb"):  # a private key: readable is enough here
                        pass
                else:
                    read_secret(**ref)
            except AuthError as exc:
                raise ConfigError(f"credential '{name}': {exc}", key=f"{base}.{attr}", path=path) from None
            except OSError as exc:
                raise ConfigError(f"credential '{name}': cannot read key file {ref['file']}: {exc.strerror}",
                                  key=f"{base}.{attr}", path=path) from None

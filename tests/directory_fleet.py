"""The computer objects the Samba test domain controller is populated with (tests/peers_samba.py).

A deterministic mix of Windows 7/10/11 and Server 2008-2025 builds as Active Directory
spells them (``operatingSystem``, ``operatingSystemVersion``), with stale, never-logged-on,
disabled, LAPS-managed and BitLocker-escrowed cases, non-ASCII names and an object with
missing attributes. This is what the directory holds; tests assert what itaudit derives
from reading it back over LDAPS.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

DOMAIN = "city.test"
BASE_DN = "DC=city,DC=test"

# (operatingSystem, operatingSystemVersion, expected lifecycle product, expected release)
OS_MIX = (
    ("Windows 7 Professional", "6.1 (7601)", "windows", "7-sp1"),
    ("Windows 10 Pro", "10.0 (19045)", "windows", "10-22h2"),
    ("Windows 10 Enterprise", "10.0 (19044)", "windows", "10-21h2-e"),
    ("Windows 10 Enterprise LTSC", "10.0 (17763)", "windows", "10-1809-e-lts"),
    ("Windows 11 Pro", "10.0 (22631)", "windows", "11-23h2-w"),
    ("Windows 11 Enterprise", "10.0 (26100)", "windows", "11-24h2-e"),
    ("Windows 11 Pro", "10.0 (26100)", "windows", "11-24h2-w"),
    ("Windows 10 Pro", "10.0 (19045)", "windows", "10-22h2"),
    ("Windows Server 2008 R2 Standard", "6.1 (7601)", "windows-server", "2008-r2-sp1"),
    ("Windows Server 2008 Standard", "6.0 (6003)", "windows-server", "2008-sp2"),
    ("Windows Server 2012 R2 Standard", "6.3 (9600)", "windows-server", "2012-r2"),
    ("Windows Server 2016 Standard", "10.0 (14393)", "windows-server", "2016"),
    ("Windows Server 2019 Datacenter", "10.0 (17763)", "windows-server", "2019"),
    ("Windows Server 2022 Standard", "10.0 (20348)", "windows-server", "2022"),
    ("Windows Server 2025 Standard", "10.0 (26100)", "windows-server", "2025"),
)


@dataclass(frozen=True)
class Computer:
    name: str  # cn and sAMAccountName (without $)
    dns: str | None
    os: str | None
    version: str | None
    created: str  # YYYY-MM-DD (whenCreated, set with the relax control)
    last_logon: str | None  # YYYY-MM-DD (lastLogonTimestamp) or None: never logged on
    disabled: bool
    laps_expires: str | None  # YYYY-MM-DD (ms-Mcs-AdmPwdExpirationTime) or None
    laps_password: str | None  # ms-Mcs-AdmPwd: set on some, so a test can prove it is never read
    recovery_keys: int  # msFVE-RecoveryInformation objects under the computer
    product: str | None = None
    release: str | None = None


def fleet(as_of: dt.date, n: int = 240) -> list[Computer]:
    """``n`` computers (at least 200 in the peer tests), the same for the same ``as_of``."""
    out = []
    for i in range(1, n + 1):
        os_name, version, product, release = OS_MIX[i % len(OS_MIX)]
        server = "Server" in os_name
        name = f"{'SRV' if server else 'PC'}-{i:04d}"
        if i % 37 == 0:
            name = f"KÄMMEREI-{i:03d}"  # non-ASCII names happen (a department's own naming)
        created = as_of - dt.timedelta(days=30 + (i * 131) % 3600)
        last_logon: dt.date | None = as_of - dt.timedelta(days=(i * 7) % 30)
        if i % 10 == 0:
            last_logon = as_of - dt.timedelta(days=120 + i)  # stale
        if i % 50 == 7:
            last_logon = None  # joined, never logged on
        laps = as_of + dt.timedelta(days=1 + i % 29) if i % 3 != 0 else None
        comp = Computer(
            name=name,
            dns=f"{name.lower()}.{DOMAIN}",
            os=os_name,
            version=version,
            created=created.isoformat(),
            last_logon=last_logon.isoformat() if last_logon else None,
            disabled=i % 25 == 0,
            laps_expires=laps.isoformat() if laps else None,
            laps_password=f"LapsSecret-{i:04d}!" if laps and i % 2 == 0 else None,
            recovery_keys=(1 + i % 2) if i % 4 == 0 else 0,
            product=product,
            release=release,
        )
        out.append(comp)
    # One object with only what a join always writes: no OS, no DNS name, no logon.
    out.append(Computer(name="BARE-0001", dns=None, os=None, version=None,
                        created=(as_of - dt.timedelta(days=400)).isoformat(), last_logon=None, disabled=False,
                        laps_expires=None, laps_password=None, recovery_keys=0))
    return out


def as_json(computers: list[Computer]) -> list[dict[str, object]]:
    return [asdict(c) for c in computers]

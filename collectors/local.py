"""The agent's own host, through psutil and the standard library (no network)."""

from __future__ import annotations

import datetime as dt
import platform
import socket
import time
from pathlib import Path

import psutil

from collectors.base import CollectContext, Collector, now_iso
from itaudit.model import CollectResult, DeviceFacts, Disk, Kind, ResultStatus, Service, Target, clip


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    out[key.strip()] = value.strip().strip('"')
            return out
        except OSError:
            continue
    return out


def _dmi(name: str) -> str | None:
    try:
        value = Path("/sys/class/dmi/id", name).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return clip(value) or None


class LocalCollector(Collector):
    """Facts about the machine itaudit runs on: identity, OS, hardware, listening ports."""

    protocol = "local"

    def collect(self, target: Target, ctx: CollectContext) -> CollectResult:
        facts = DeviceFacts(collected_at=now_iso())
        rel = _os_release()
        ident, sw, hw = facts.identity, facts.software, facts.hardware
        ident.address = target.address
        ident.hostname = clip(socket.gethostname())
        ident.kind = target.kind or Kind.SERVER.value
        ident.uptime_seconds = int(time.time() - psutil.boot_time())
        sw.os_family = platform.system().lower()
        sw.os_name = clip(rel.get("PRETTY_NAME") or platform.platform())
        sw.product = rel.get("ID") or None
        sw.os_version = rel.get("VERSION_ID") or None
        sw.release = rel.get("VERSION_ID") or None
        sw.kernel = platform.release()
        sw.arch = platform.machine()
        hw.vendor = _dmi("sys_vendor")
        hw.model = _dmi("product_name")
        hw.serial = _dmi("product_serial")
        hw.bios_vendor = _dmi("bios_vendor")
        hw.bios_version = _dmi("bios_version")
        bios_date = _dmi("bios_date")
        if bios_date:
            try:
                hw.bios_date = dt.datetime.strptime(bios_date, "%m/%d/%Y").date()
            except ValueError:
                facts.gaps["hardware.bios_date"] = f"unparsed BIOS date {bios_date!r}"
        else:
            facts.gaps["hardware.bios_date"] = "DMI not readable"
        hw.cpu_model = clip(platform.processor()) or None
        hw.cpu_cores = psutil.cpu_count(logical=True)
        hw.memory_bytes = psutil.virtual_memory().total
        for part in psutil.disk_partitions(all=False):
            try:
                size = psutil.disk_usage(part.mountpoint).total
            except OSError:
                size = None
            hw.disks.append(Disk(name=part.device, size_bytes=size))
        try:
            conns = psutil.net_connections(kind="inet")
            services = {(("tcp" if c.type == socket.SOCK_STREAM else "udp"), c.laddr.port, c.laddr.ip)
                        for c in conns if c.status in ("LISTEN", "NONE") and c.laddr}
            facts.posture.listening = [Service(proto=p, port=port, address=ip) for p, port, ip in sorted(services)]
        except (psutil.AccessDenied, OSError) as exc:
            facts.gaps["posture.listening"] = f"not readable: {exc}"
        facts.sources.update({"identity": "psutil", "software": "os-release", "hardware": "dmi+psutil",
                              "posture": "psutil"})
        return CollectResult(target, ResultStatus.OK, facts=facts)

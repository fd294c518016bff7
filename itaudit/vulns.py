"""Which exploited flaws affect *this* version: version-range knowledge joined to KEV by CVE ID.

``vulns.json`` (package data, built by ``bench/build_vulns.py`` from real CVE JSON 5 records,
one source per record) holds, per CVE, the affected and fixed versions the vendor (the CNA)
published, with CISA's ADP enrichment as the fallback. KEV (``kev.json``) stays the
"exploited in the wild" and "ransomware" flag; it never decides whether a version is
affected.

A verdict is one of three words, and "affected" is said only when version data confirms it:

- ``affected``: the device's version falls in a range (or list) the record marks affected.
- ``not_affected``: the record's data puts the version outside every affected range
  (``defaultStatus: unaffected``, an explicit ``unaffected`` entry, newer than the last
  affected version of its own release line, or absent from a vendor's full list of
  affected releases of that line).
- ``maybe``: anything else, with the reason in plain words (no record, no usable
  versions, version unreadable or not precise enough, the record silent about the line).

Version comparison: ``firmware_key`` orders vendor firmware strings (IOS XE ``17.9.4a``,
PAN-OS ``10.1.9-h3``, ASA ``9.16(4)19``, SonicOS ``7.0.1-5111``, Junos ``21.4R3-S4.9``) by
their number and letter runs; Windows compares ``major.minor.build.UBR``; Debian and RPM
package versions use ``univers`` (epochs, ``~``, ``+debNuM``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from itaudit.errors import KnowledgeError

VULNS_FORMAT = "itaudit-vulns/1"
AFFECTED, NOT_AFFECTED, MAYBE = "affected", "not_affected", "maybe"
# A vendor enumeration of affected releases (Cisco lists every one) is taken as complete for
# a release line only when it is a real list, not one or two examples.
MIN_ENUMERATION = 5

_SILENT = "the record does not say"
_RPM_FAMILIES = ("Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE")
_TOKEN_RE = re.compile(r"\d+|[a-z]+")
_OPEN = ("", "0", "*", "n/a", "all", "-", "unspecified")
# A Debian or RPM version: optional epoch, then a digit, then the characters both allow.
_PACKAGE_VERSION = re.compile(r"^(?:\d+:)?\d[A-Za-z0-9.+~^_:-]*$")


@dataclass(frozen=True)
class Verdict:
    """Is one version affected by one CVE? ``status`` is affected, not_affected or maybe."""

    cve: str
    status: str
    reason: str
    fixed: str | None = None  # first unaffected version of the device's line, when known
    source: str = ""


class Unreadable(ValueError):
    """A version string the comparator cannot read."""


# --- comparators ---------------------------------------------------------------------------


def firmware_key(version: str) -> tuple[int | str, ...]:
    """Order key of a vendor firmware version: its runs of digits and of letters.

    ``"17.9.4a"`` -> (17, 9, 4, "a"); ``"10.1.9-h3"`` -> (10, 1, 9, "h", 3); ``"9.16(4)19"``
    -> (9, 16, 4, 19). A version with more runs than another it starts with is newer
    (``17.9.4a`` after ``17.9.4``, ``10.1.9-h3`` after ``10.1.9``): the firmware of these
    vendors marks rebuilds and hotfixes with suffixes, never pre-releases.
    """
    v = (version or "").strip().lower()
    m = re.match(r"^esxi(\d)(\d)(?:u(\d+))?([a-z]?)(?:-(\d+))?$", v)  # "ESXi70U3s-24585291"
    if m:
        parts: list[int | str] = [int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)]
        if m.group(4):
            parts.append(m.group(4))
        if m.group(5):
            parts.append(int(m.group(5)))
        return tuple(parts)
    toks = _TOKEN_RE.findall(v)
    if not toks or not toks[0].isdigit():
        raise Unreadable(version)
    return tuple(int(t) if t.isdigit() else t for t in toks)


def _cmp_keys(a: tuple[int | str, ...], b: tuple[int | str, ...]) -> int:
    for x, y in zip(a, b, strict=False):
        if type(x) is not type(y):
            raise Unreadable(f"{a} vs {b}")  # "17.9.4a" against "17.9.4.1": no order is safe
        if x != y:
            return -1 if x < y else 1  # type: ignore[operator]
    return (len(a) > len(b)) - (len(a) < len(b))


def compare(a: str, b: str, scheme: str = "firmware") -> int:
    """-1, 0 or 1 as ``a`` is older, equal or newer than ``b``; raises ``Unreadable``."""
    if scheme in ("deb", "rpm"):
        for x in (a, b):
            if not _PACKAGE_VERSION.match(x or ""):
                raise Unreadable(f"{x!r} is not a {scheme} package version")
        try:
            from univers.versions import DebianVersion, RpmVersion

            cls: Any = DebianVersion if scheme == "deb" else RpmVersion
            va, vb = cls(a), cls(b)
        except Exception as exc:  # noqa: BLE001 - univers raises several types on bad input
            raise Unreadable(f"{a!r} or {b!r}: {exc}") from exc
        return (va > vb) - (va < vb)
    return _cmp_keys(firmware_key(a), firmware_key(b))


def train(version: str) -> tuple[int, ...]:
    """The release line of a firmware version: its first two numbers (``17.9``, ``10.1``)."""
    nums = [t for t in firmware_key(version) if isinstance(t, int)]
    return tuple(nums[:2])


# --- the data ------------------------------------------------------------------------------


def validate_vulns(doc: Any, *, where: str = "vulns.json") -> None:
    """Raise ``KnowledgeError`` unless ``doc`` is a vulnerability file we understand."""
    if not isinstance(doc, dict) or doc.get("format") != VULNS_FORMAT:
        raise KnowledgeError(f"{where}: unknown format (expected {VULNS_FORMAT})")
    try:
        dt.date.fromisoformat(str(doc.get("snapshot")))
    except ValueError as exc:
        raise KnowledgeError(f"{where}: no valid snapshot date") from exc
    cves = doc.get("cves")
    if not isinstance(cves, dict) or not cves:
        raise KnowledgeError(f"{where}: no CVE records")
    for cve, rec in cves.items():
        if not re.match(r"^CVE-\d{4}-\d+$", cve) or not isinstance(rec, dict):
            raise KnowledgeError(f"{where}: bad record {cve!r}")
        src = rec.get("source") or {}
        if not (src.get("repo") and src.get("path") and src.get("commit")):
            raise KnowledgeError(f"{where}: {cve} has no source (repo, path, commit)")
        if not isinstance(rec.get("products"), dict):
            raise KnowledgeError(f"{where}: {cve} has no products mapping")
    for cve, rec in (doc.get("packages") or {}).items():
        rec = package_record(rec) if isinstance(rec, dict) else None
        if not re.match(r"^CVE-\d{4}-\d+$", cve) or not rec or not rec["records"]:
            raise KnowledgeError(f"{where}: package record {cve!r} has no source")
        if any(not (r.get("source") or {}).get("commit") for r in rec["records"].values()):
            raise KnowledgeError(f"{where}: package record {cve!r} has no source")
        if not isinstance(rec.get("ecosystems"), dict):
            raise KnowledgeError(f"{where}: package record {cve} has no ecosystems")


def package_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A CVE's distribution data as ``{"records": {osv_id: {...}}, "ecosystems": {...}}``.

    One CVE gathers the records of several distributions (an Ubuntu CVE record, AlmaLinux
    advisories ...); each row names the record it came from. A file written by an older
    build (one record per CVE: ``id``, ``source``) reads the same way.
    """
    if "records" in rec:
        return rec
    if "id" not in rec:
        return {"records": {}, "ecosystems": rec.get("ecosystems")}
    one = {"modified": rec.get("modified"), "source": rec.get("source")}
    return {"records": {rec["id"]: one},
            "ecosystems": {eco: [{**row, "record": rec["id"]} for row in rows]
                           for eco, rows in (rec.get("ecosystems") or {}).items()}}


class VulnData:
    """Version ranges per CVE and product key, and the verdict for one device version."""

    def __init__(self, doc: dict[str, Any], path: str = ""):
        validate_vulns(doc, where=path or "vulns.json")
        self.doc = doc
        self.path = path
        self.cves: dict[str, dict[str, Any]] = doc["cves"]
        # CVE -> distribution package data (OSV): fixed version per source package and release.
        self.packages: dict[str, dict[str, Any]] = {
            cve: package_record(rec) for cve, rec in (doc.get("packages") or {}).items()}
        self._index: dict[str, tuple[set[str], frozenset[str]]] | None = None

    @classmethod
    def load(cls, path: Path | str) -> VulnData:
        """Load and validate ``vulns.json`` (cached per path)."""
        return _load(str(path))

    @property
    def snapshot(self) -> str:
        return str(self.doc["snapshot"])

    def source_text(self) -> str:
        s = self.doc.get("source") or {}
        return f"{s.get('name', 'CVE records')} (snapshot {self.snapshot})"

    def record(self, cve: str) -> dict[str, Any] | None:
        return self.cves.get(cve)

    def assess(
        self,
        cve: str,
        product: str,
        version: str | None,
        *,
        released: dt.date | None = None,
        precise: bool = True,
        listed: dt.date | None = None,
    ) -> Verdict:
        """Verdict for ``product`` at ``version`` on ``cve``.

        ``released``: the running release's date; a CVE published before it is not listed
        as affecting it unless the version data says so (``not_affected`` with that reason).
        ``precise=False``: the device reports its version without the build or hotfix part,
        so a boundary inside that version gives ``maybe``. ``listed``: the day KEV added the
        CVE, a bound on its publication when no record is shipped.
        """
        rec = self.cves.get(cve)
        published = (_day(rec.get("published")) if rec else None) or listed
        src = _source(rec)
        entry = (rec or {}).get("products", {}).get(product)
        usable = [e for e in (entry or {}).get("versions", []) if _usable(e)]
        if not rec or not entry or not usable:
            why = (
                "no CVE record in the shipped data" if not rec
                else f"the record names no {product} versions" if not entry
                else "the record gives no usable version numbers"
            )
            if released and published and published < released:
                return Verdict(cve, NOT_AFFECTED, f"published {published} before this release came out "
                               f"({released}); {why}", source=src)
            return Verdict(cve, MAYBE, why, source=src)
        if not version:
            return Verdict(cve, MAYBE, "version unknown", source=src)
        scheme = entry.get("scheme", "firmware")
        if product in ("windows", "windows-server"):
            return self._windows(cve, version, usable, src, rec)
        try:
            v = _judge(cve, version, usable, entry.get("default"), scheme, precise, src)
        except Unreadable:
            return Verdict(cve, MAYBE, f"version unreadable ({version!r} cannot be compared with the "
                           "record's versions)", source=src)
        if v.status == MAYBE and v.reason.startswith(_SILENT) and released and published and published < released:
            return Verdict(cve, NOT_AFFECTED, f"published {published} before this release came out ({released}); "
                           f"{v.reason}", source=src)
        return v

    def package_candidates(self, ecosystem: str | None, installed: dict[str, str] | None) -> list[str]:
        """CVEs with distribution data that concern a host: data for its distribution, or
        one of the packages a record lists is installed (Debian's sudo against an Ubuntu
        record: IT confirms)."""
        family = (ecosystem or "").split(":")[0]
        if self._index is None:
            # Per CVE: the families whose rows can be judged without knowing which binaries a
            # source package builds (binary rows, or the kernel), and every package name listed.
            self._index = {cve: ({e.split(":")[0] for e, rows in rec["ecosystems"].items()
                                  if any(not r.get("source_only") or r["name"] in _KERNEL_SOURCES for r in rows)},
                                 frozenset(b for rows in rec["ecosystems"].values() for r in rows
                                           for b in r["binaries"]))
                           for cve, rec in self.packages.items()}
        names = installed.keys() if installed else None
        return sorted(cve for cve, (fams, binaries) in self._index.items()
                      if (family and family in fams) or (names is not None and not names.isdisjoint(binaries)))

    def assess_packages(self, cve: str, ecosystem: str | None, installed: dict[str, str] | None,
                        kernel: str | None = None, kernel_cve: bool = False,
                        released: dt.date | None = None) -> Verdict | None:
        """Verdict from the distribution's fixed versions (OSV) against installed packages.

        ``installed``: binary package name -> version (``dpkg -l``, ``rpm -qa``). ``kernel``:
        the running kernel (``uname -r``); a kernel fix counts for the kernel that runs, not
        for the newest one installed. None when no distribution data exists for ``cve`` (the
        caller falls back to other data). ``released``: the running release's date (Debian's
        advisories name only the releases supported when they came out).
        """
        rec = self.packages.get(cve)
        if rec is None:
            return None
        srcs = {rid: _source(r) for rid, r in rec["records"].items()}
        any_src = ", ".join(sorted(set(srcs.values())))
        if not ecosystem:
            return Verdict(cve, MAYBE, "the distribution release is not known", source=any_src)
        if installed is None:
            return Verdict(cve, MAYBE, "installed packages unknown (not collected)", source=any_src)
        # Ubuntu publishes fixes for releases past standard support under "Ubuntu:Pro:<release>".
        pro = ecosystem.replace("Ubuntu:", "Ubuntu:Pro:", 1) if ecosystem.startswith("Ubuntu:") else None
        rows = rec["ecosystems"].get(ecosystem) or (rec["ecosystems"].get(pro) if pro else None)
        family = ecosystem.split(":")[0]
        if rows is None:
            mine = sorted({srcs[r["record"]] for e, rs in rec["ecosystems"].items() if e.split(":")[0] == family
                           for r in rs if r.get("record") in srcs})
            if mine and family == "Debian":
                # Debian's advisories name the releases supported when they came out: a release
                # newer than all of them and published after the last advisory shipped the fix
                # (from unstable); any other release is not covered (a point-release fix, LTS).
                listed = sorted(_release_number(e) for e in rec["ecosystems"] if e.split(":")[0] == family)
                days = [_day(r.get("published")) for r in rec["records"].values() if r.get("feed") == "debian-tracker"]
                last = max((d for d in days if d), default=None)
                if _release_number(ecosystem) > listed[-1] and released and last and released > last:
                    return Verdict(cve, NOT_AFFECTED, f"no Debian advisory for {ecosystem}: it came out ({released}) "
                                   f"after the fixes for Debian {', '.join(str(n) for n in listed)} ({last})",
                                   source=", ".join(mine))
                return Verdict(cve, MAYBE, f"no Debian advisory for {ecosystem} in the shipped lists (fixes listed for "
                               f"Debian {', '.join(str(n) for n in listed)})", source=", ".join(mine))
            if mine:
                return Verdict(cve, NOT_AFFECTED, f"the distribution lists no affected package for {ecosystem}",
                               source=", ".join(mine))
            return Verdict(cve, MAYBE, f"no {family} data in the shipped records", source=any_src)
        src = ", ".join(sorted({srcs.get(r.get("record", ""), any_src) for r in rows}))
        scheme = "deb" if family in ("Ubuntu", "Debian") else "rpm" if family in _RPM_FAMILIES else None
        if scheme is None:
            return Verdict(cve, MAYBE, f"no version comparator for {family} packages", source=src)
        complete = [r for r in rows if not r.get("partial")]
        kernel_rows = [r for r in complete if r["name"] in _KERNEL_SOURCES]
        if kernel_rows:
            return _kernel_verdict(cve, kernel_rows, scheme, kernel, src, installed, family)
        if kernel_cve:
            return Verdict(cve, MAYBE, f"the {family} record names no kernel package for {ecosystem} (only "
                           f"{', '.join(sorted({r['name'] for r in rows})[:3])})", source=src)
        v = _package_verdict(cve, ecosystem, complete, scheme, installed, src) if complete else None
        if len(complete) < len(rows) and (v is None or v.status != AFFECTED):
            ids = ", ".join(sorted({str(r.get("record")) for r in rows if r.get("partial")}))
            return Verdict(cve, MAYBE, f"the distribution's advisory ({ids}) lists only part of its packages",
                           source=src)
        return v

    def _windows(self, cve: str, version: str, entries: list[dict[str, Any]], src: str,
                 rec: dict[str, Any]) -> Verdict:
        parts = version.split(".")
        if len(parts) < 4 or not all(p.isdigit() for p in parts):
            return Verdict(cve, MAYBE, f"update level unknown (version {version!r} has no UBR)", source=src)
        build = parts[2]
        mine = [e for e in entries if str(e.get("lessThan", e.get("version", ""))).split(".")[2:3] == [build]]
        if not mine:
            return Verdict(cve, NOT_AFFECTED, f"Microsoft lists no affected version of build {build}",
                           source=src)
        try:
            return _judge(cve, version, mine, "unknown", "firmware", True, src)
        except Unreadable:
            return Verdict(cve, MAYBE, f"version unreadable ({version!r})", source=src)


# The package a distribution builds its kernel from: its fix is judged on the running kernel.
_KERNEL_SOURCES = {"kernel", "linux"}
_ARCH_SUFFIX = re.compile(r"(?:\+\w+)?$")
_EPOCH = re.compile(r"^(\d+):")


def _release_number(ecosystem: str) -> int:
    m = re.match(r"^\D*:(\d+)", ecosystem)
    return int(m.group(1)) if m else 0


def _kernel_verdict(cve: str, rows: list[dict[str, Any]], scheme: str, kernel: str | None,
                    src: str, installed: dict[str, str], family: str) -> Verdict:
    """A kernel CVE: the running kernel's package version against the distribution's fix.

    RPM: ``uname -r`` is the kernel package's version-release and architecture. Debian: the
    running kernel's image package (``linux-image-<uname -r>``) carries the source version.
    Ubuntu's kernels come from many source packages (linux, linux-hwe-*, linux-aws ...): not
    judged here.
    """
    if not kernel:
        return Verdict(cve, MAYBE, "the running kernel is not known", source=src)
    if scheme == "deb":
        image = installed.get(f"linux-image-{kernel}") or installed.get(f"linux-image-unsigned-{kernel}")
        if family != "Debian" or image is None:
            return Verdict(cve, MAYBE, f"the running kernel {kernel}'s package is not identified", source=src)
        running = image
    else:
        running = re.sub(r"\.(x86_64|aarch64|ppc64le|s390x|i686)$", "", _ARCH_SUFFIX.sub("", kernel.strip()))
    if re.search(r"\.rt\d|\+rt|-rt", kernel):
        return Verdict(cve, MAYBE, f"real-time kernel {kernel}: its fix is not in the shipped rows", source=src)
    fixes = sorted({r["fixed"] for r in rows if r["fixed"]})
    if scheme == "deb":
        # A backported kernel (buster's linux-5.10 beside its 4.19 "linux") has its own fixes.
        line = re.findall(r"\d+", running)[:2]
        fixes = [f for f in fixes if re.findall(r"\d+", f.split(":")[-1])[:2] == line]
        if not fixes:
            return Verdict(cve, MAYBE, f"no fix listed for the running kernel's line ({kernel}, {running})",
                           source=src)
    if not fixes:
        return Verdict(cve, MAYBE, f"no kernel fix published for this release (kernel {kernel})", source=src)
    try:
        older = [f for f in fixes if compare(running, f, scheme) < 0]
    except Unreadable:
        return Verdict(cve, MAYBE, f"version unreadable (running kernel {kernel!r})", source=src)
    if len(older) == len(fixes):
        return Verdict(cve, AFFECTED, f"running kernel {running} is older than the fixed kernel {fixes[0]}",
                       fixes[0], src)
    if not older:
        return Verdict(cve, NOT_AFFECTED, f"running kernel {running} is at or past the fixed kernel "
                       f"{', '.join(fixes)}", source=src)
    return Verdict(cve, MAYBE, f"running kernel {running} lies between the fixed kernels {', '.join(fixes)} "
                   "of different advisories", source=src)


def _package_verdict(cve: str, ecosystem: str, rows: list[dict[str, Any]], scheme: str,
                     installed: dict[str, str], src: str) -> Verdict:
    """Installed binaries against every fixed version the distribution lists for them.

    A binary is affected only when it is older than every fix listed for it (several
    advisories may name it); newer than all of them it is not; in between is "maybe".
    """
    per_binary: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for binary in row["binaries"]:
            per_binary.setdefault(binary, []).append(row)
    unsure: Verdict | None = None
    for binary, brows in sorted(per_binary.items()):
        have = installed.get(binary)
        if have is None:
            if all(r.get("source_only") for r in brows):
                unsure = unsure or Verdict(cve, MAYBE, f"the binary packages built from {binary} are not identified "
                                           f"(the {ecosystem.split(':')[0]} advisory names the source package)",
                                           source=src)
            continue
        unfixed = [r for r in brows if r["fixed"] is None]
        if unfixed:
            if any(have in r.get("versions", ()) for r in unfixed):
                return Verdict(cve, AFFECTED, f"{binary} {have} is a listed affected version (no fix in "
                               f"{ecosystem} yet)", source=src)
            unsure = unsure or Verdict(cve, MAYBE, f"{binary} {have}: no fix in {ecosystem} and the version is "
                                       "not listed", source=src)
            continue
        fixes = sorted({r["fixed"] for r in brows}, key=lambda f: f)
        if scheme == "rpm" and not _EPOCH.match(have) and any(_EPOCH.match(f) and not f.startswith("0:")
                                                               for f in fixes):
            unsure = unsure or Verdict(cve, MAYBE, f"version unreadable ({binary} {have!r} is listed without "
                                       f"its epoch; the fix is {fixes[0]})", source=src)
            continue
        try:
            older = [f for f in fixes if compare(have, f, scheme) < 0]
        except Unreadable:
            return Verdict(cve, MAYBE, f"version unreadable ({binary} {have!r})", source=src)
        if older and len(older) == len(fixes):
            return Verdict(cve, AFFECTED, f"{binary} {have} is older than the fixed {older[0]}", older[0], src)
        if older:
            unsure = unsure or Verdict(cve, MAYBE, f"{binary} {have} lies between the fixed versions "
                                       f"{', '.join(fixes)} of different advisories", source=src)
    if unsure is not None:
        return unsure
    names = sorted(per_binary)
    if any(b in installed for b in names):
        return Verdict(cve, NOT_AFFECTED, f"{', '.join(b for b in names if b in installed)} at or past the "
                       "fixed version", source=src)
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return Verdict(cve, NOT_AFFECTED, f"{shown} not installed", source=src)


def _usable(e: dict[str, Any]) -> bool:
    if e.get("versionType") == "git":
        return False  # commit hashes (the Linux CNA's first list) order nothing
    top = e.get("lessThan") or e.get("lessThanOrEqual")
    if top is not None:
        if str(top).strip() in ("*", ""):
            return False  # "every version": too coarse to confirm anything
        try:
            firmware_key(str(top))
        except Unreadable:
            return e.get("scheme") in ("deb", "rpm")
        return True
    v = str(e.get("version", "")).strip().lower()
    if v in _OPEN:
        return False
    try:
        firmware_key(v)
    except Unreadable:
        return False
    return True


def _judge(cve: str, version: str, entries: list[dict[str, Any]], default: str | None, scheme: str,
           precise: bool, src: str) -> Verdict:
    exact_same_line = 0
    bound_below: tuple[str, bool] | None = None  # the affected bound of the device's line it is past, inclusive?
    # Newer than every affected version the record lists, on every line it lists.
    above_all = all((e.get("lessThan") or e.get("lessThanOrEqual")) and e.get("status", "affected") == "affected"
                    for e in entries)
    for e in entries:
        status = e.get("status", "affected")
        top = e.get("lessThan") or e.get("lessThanOrEqual")
        if top is None:
            if compare(version, e["version"], scheme) == 0:
                return _verdict(cve, status, f"version {version} is listed as {status}", None, src)
            if scheme == "firmware" and train(e["version"]) == train(version) and status == "affected":
                exact_same_line += 1
            continue
        top = str(top).strip()
        start = str(e.get("version", "0")).strip()
        incl = "lessThanOrEqual" in e
        if start.lower() not in _OPEN and compare(version, start, scheme) < 0:
            above_all = False  # older than this range: not "newer than everything listed"
            continue
        c = compare(version, top, scheme)
        if not precise and scheme == "firmware" and _is_prefix(version, top):
            return Verdict(cve, MAYBE, f"version not precise enough ({version} against the boundary {top})",
                           source=src)
        inside = c < 0 or (incl and c == 0)
        if inside:
            status = _changes(version, e, scheme)
            fixed = top if not incl and status == "affected" and "text" not in e else None
            span = f"“{e['text']}”" if "text" in e else f"{start}–{top}" + (" inclusive" if incl else "")
            why = f"version {version} is in the affected range {span}" + (f", fixed in {fixed}" if fixed else "")
            return _verdict(cve, status, why if status == "affected" else
                            f"version {version} is at or past the fix ({_fix_point(e)})", fixed, src)
        if status == "affected" and scheme == "firmware" and train(top) == train(version):
            bound_below = (top, incl)
        if c <= 0:
            above_all = False
    if default == "unaffected":
        return Verdict(cve, NOT_AFFECTED, f"version {version} is outside every affected range", source=src)
    if default == "affected":
        return Verdict(cve, AFFECTED, f"the record marks every version not listed as affected ({version})",
                       source=src)
    if bound_below:
        top, incl = bound_below
        return Verdict(cve, NOT_AFFECTED, f"version {version} is newer than the last affected version {top} of its "
                       "line" if incl else f"version {version} is at or past {top}, the fix of its line", source=src)
    if above_all:
        return Verdict(cve, NOT_AFFECTED, f"version {version} is newer than every affected version the record "
                       "lists", source=src)
    if exact_same_line >= MIN_ENUMERATION:
        return Verdict(cve, NOT_AFFECTED, f"version {version} is not in the vendor's list of affected "
                       "releases of its line", source=src)
    return Verdict(cve, MAYBE, f"{_SILENT} whether version {version} is affected", source=src)


def _changes(version: str, e: dict[str, Any], scheme: str) -> str:
    """Status at ``version`` inside a range with ``changes``.

    One change is a plain fix point. Several (PAN-OS: "10.2.7-h24", "10.2.8-h21", ...) name a
    hotfix per maintenance release, not a timeline: only the change of the device's own
    maintenance release counts; a release the list skips is "unknown" (never guessed).
    """
    status = e.get("status", "affected")
    changes = e.get("changes") or []
    if len(changes) <= 1 or scheme != "firmware":
        for ch in changes:
            if compare(version, ch["at"], scheme) >= 0:
                status = ch.get("status", status)
        return status
    mine = [ch for ch in changes if _release(ch["at"]) == _release(version)]
    if mine:
        return mine[0].get("status", status) if compare(version, mine[0]["at"], scheme) >= 0 else status
    if all(compare(version, ch["at"], scheme) < 0 for ch in changes):
        return status
    return "unknown"


def _release(version: str) -> tuple[int | str, ...]:
    """Maintenance release of a firmware version: its first three numbers (10.2.8 of 10.2.8-h21,
    22.3 R2 of Junos 22.3R2-S2)."""
    return tuple(t for t in firmware_key(version) if isinstance(t, int))[:3]


def _fix_point(e: dict[str, Any]) -> str:
    ats = [c["at"] for c in e.get("changes") or [] if c.get("status") == "unaffected"]
    return ", ".join(ats) or str(e.get("lessThan") or e.get("lessThanOrEqual"))


def _is_prefix(version: str, top: str) -> bool:
    a, b = firmware_key(version), firmware_key(top)
    return len(a) < len(b) and b[: len(a)] == a


def _verdict(cve: str, status: str, why: str, fixed: str | None, src: str) -> Verdict:
    if status == "affected":
        return Verdict(cve, AFFECTED, why, fixed, src)
    if status == "unaffected":
        return Verdict(cve, NOT_AFFECTED, why, source=src)
    return Verdict(cve, MAYBE, f"the record's fix list does not settle version {why.split()[1]} "
                   f"(status {status!r})", source=src)


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _source(rec: dict[str, Any] | None) -> str:
    if not rec:
        return ""
    s = rec.get("source") or {}
    return f"{s.get('repo')}/{s.get('path')}@{str(s.get('commit', ''))[:10]}"


@cache
def _load(path: str) -> VulnData:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeError(f"{path}: vulnerability file is missing") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path}: vulnerability file is corrupt (not JSON: {exc})") from exc
    return VulnData(doc, path)


def ecosystem_for(product: str, version: str | None) -> str | None:
    """OSV ecosystem of a distribution release: ``Ubuntu:22.04:LTS``, ``Debian:12``; else None."""
    v = (version or "").strip()
    if product == "ubuntu":
        m = re.match(r"^(\d{2})\.(\d{2})", v)
        if not m:
            return None
        lts = m.group(2) == "04" and int(m.group(1)) % 2 == 0
        return f"Ubuntu:{m.group(1)}.{m.group(2)}" + (":LTS" if lts else "")
    names = {"debian": "Debian", "rhel": "Red Hat", "rocky-linux": "Rocky Linux", "almalinux": "AlmaLinux",
             "alpine-linux": "Alpine", "sles": "SUSE"}
    m = re.match(r"^(\d+)", v)
    return f"{names[product]}:{m.group(1)}" if product in names and m else None


def windows_version(os_version: str | None, os_build: str | None) -> str | None:
    """``10.0.19045.6456`` from ``10.0.19045`` and ``19045.6456`` (or ``6.3.9600.21620``)."""
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?", os_version or "")
    b = re.match(r"^(\d+)\.(\d+)$", os_build or "")
    if m and m.group(4):
        return m.group(0)
    if b:
        build, ubr = b.group(1), b.group(2)
        if m and m.group(3) == build:
            return f"{m.group(1)}.{m.group(2)}.{build}.{ubr}"
        major = "6.3" if build == "9600" else "6.1" if build in ("7600", "7601") else "10.0"
        return f"{major}.{build}.{ubr}"
    return m.group(0) if m else None

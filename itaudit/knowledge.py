"""Shipped, dated knowledge: product lifecycles and the CISA KEV catalog.

Files (package data under ``itaudit/data/``; ``itaudit data update`` may write newer
copies of the first two into a data directory that overrides them file by file):

- ``lifecycle.json``: an endoflife.date snapshot (releases with eoas, eol, eoes, latest).
- ``kev.json``: the CISA Known Exploited Vulnerabilities catalog, trimmed to used fields.
- ``lifecycle_curated.json``: rows endoflife.date lacks (Junos, ASA, SonicOS, ...), each
  with a source link; product aliases; which products' extended support is free or paid.
- ``kev_products.json``: lifecycle product key -> KEV vendor/product patterns (which KEV
  entries to *consider* for a device; whether one affects it is ``vulns.json``'s answer).
- ``vulns.json``: affected and fixed versions per CVE from real CVE JSON 5 records, one
  source per record (``itaudit.vulns``, built by ``itaudit.vulntools``).

Meaning of the lifecycle dates (endoflife.date's): ``eoas`` end of active support,
``eol`` end of *security* support, ``eoes`` end of extended support. A date field may
also be ``true`` (already ended, date unknown) or ``false`` (no end announced).

Status (``LifecycleAnswer.status``), judged at an explicit ``as_of`` date:
``supported`` | ``ending_soon`` (eol within 365 days) | ``extended`` (past eol, inside
extended support that is free, or paid and bought) | ``eol`` | ``unknown``.
Paid extended years (Windows 10 ESU, Windows Server ESU, Ubuntu Pro/ESM, RHEL ELS) count
only when the caller says the city bought them (``paid_extended=True``, from the city
policy); otherwise the device is ``eol``. A version the matcher does not understand is
``unknown``, never ``eol``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from itaudit.errors import KnowledgeError
from itaudit.vulns import VulnData

LIFECYCLE_FORMAT = "itaudit-lifecycle/1"
CURATED_FORMAT = "itaudit-lifecycle-curated/1"
KEV_FORMAT = "itaudit-kev/1"
KEV_MAP_FORMAT = "itaudit-kev-products/1"
ENDING_SOON_DAYS = 365
STATUSES = ("supported", "ending_soon", "extended", "eol", "unknown")

DateLike = dt.date | bool | None


def shipped_data_dir() -> Path:
    """The package data folder (read-only when installed)."""
    return Path(str(resources.files("itaudit") / "data"))


def user_data_dir() -> Path:
    """Where ``itaudit data update`` writes by default: ``$ITAUDIT_DATA_DIR`` or XDG data home."""
    env = os.environ.get("ITAUDIT_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "itaudit" / "data"


# --- validation (shared with itaudit.datatools) ------------------------------------------


def _check_date(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if not isinstance(value, str):
        raise KnowledgeError(f"{where}: date must be an ISO string, true or false, got {value!r}")
    try:
        dt.date.fromisoformat(value)
    except ValueError as exc:
        raise KnowledgeError(f"{where}: bad date {value!r}") from exc


def _validate_releases(prod: Any, where: str, *, need_source: bool) -> None:
    if not isinstance(prod, dict) or not isinstance(prod.get("releases"), list):
        raise KnowledgeError(f"{where}: product has no releases list")
    for i, rel in enumerate(prod["releases"]):
        w = f"{where}.releases[{i}]"
        if not isinstance(rel, dict) or not isinstance(rel.get("cycle"), str) or not rel["cycle"]:
            raise KnowledgeError(f"{w}: release without a cycle name")
        for k in ("releaseDate", "eoas", "eol", "eoes"):
            _check_date(rel.get(k), f"{w}.{k}")
        if "eol" not in rel:
            raise KnowledgeError(f"{w}: release without eol")
        if need_source and not str(rel.get("source", "")).startswith("https://"):
            raise KnowledgeError(f"{w}: curated row without a https source link")
        if "match" in rel:
            try:
                re.compile(rel["match"])
            except re.error as exc:
                raise KnowledgeError(f"{w}.match: bad pattern ({exc})") from exc


def validate_lifecycle(doc: Any, *, where: str = "lifecycle.json") -> None:
    """Raise ``KnowledgeError`` unless ``doc`` is a lifecycle snapshot we understand."""
    if not isinstance(doc, dict) or doc.get("format") != LIFECYCLE_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise KnowledgeError(f"{where}: unknown format {got!r} (expected {LIFECYCLE_FORMAT})")
    _check_date(doc.get("snapshot"), f"{where}.snapshot")
    if not doc.get("snapshot"):
        raise KnowledgeError(f"{where}: no snapshot date")
    products = doc.get("products")
    if not isinstance(products, dict) or not products:
        raise KnowledgeError(f"{where}: no products")
    for key, prod in products.items():
        _validate_releases(prod, f"{where}: products.{key}", need_source=False)


def validate_curated(doc: Any, *, where: str = "lifecycle_curated.json") -> None:
    """Raise ``KnowledgeError`` unless ``doc`` is a curated lifecycle file (source per row)."""
    if not isinstance(doc, dict) or doc.get("format") != CURATED_FORMAT:
        raise KnowledgeError(f"{where}: unknown format (expected {CURATED_FORMAT})")
    _check_date(doc.get("reviewed"), f"{where}.reviewed")
    for key, prod in (doc.get("products") or {}).items():
        _validate_releases(prod, f"{where}: products.{key}", need_source=True)
    for key, ext in (doc.get("extended_support") or {}).items():
        if not isinstance(ext, dict) or ext.get("kind") not in ("free", "paid"):
            raise KnowledgeError(f"{where}: extended_support.{key}.kind must be 'free' or 'paid'")


def validate_kev(doc: Any, *, where: str = "kev.json") -> None:
    """Raise ``KnowledgeError`` unless ``doc`` is a trimmed KEV catalog we understand."""
    if not isinstance(doc, dict) or doc.get("format") != KEV_FORMAT:
        raise KnowledgeError(f"{where}: unknown format (expected {KEV_FORMAT})")
    _check_date(doc.get("dateReleased") or None, f"{where}.dateReleased")
    vulns = doc.get("vulnerabilities")
    if not isinstance(vulns, list) or not vulns:
        raise KnowledgeError(f"{where}: no vulnerabilities")
    for i, v in enumerate(vulns):
        if not isinstance(v, dict) or not re.match(r"^CVE-\d{4}-\d+$", str(v.get("cveID", ""))):
            raise KnowledgeError(f"{where}: vulnerabilities[{i}] has no valid cveID")
        if not v.get("vendorProject") or not v.get("product"):
            raise KnowledgeError(f"{where}: {v['cveID']} has no vendorProject/product")
        for k in ("dateAdded", "dueDate"):
            _check_date(v.get(k), f"{where}: {v['cveID']}.{k}")


# --- answers ------------------------------------------------------------------------------


def _date(value: Any) -> DateLike:
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


@dataclass(frozen=True)
class Release:
    """One release cycle of one product, as the knowledge files describe it."""

    product: str
    cycle: str
    label: str | None = None
    release_date: DateLike = None
    eoas: DateLike = None
    eol: DateLike = None
    eoes: DateLike = None
    latest: str | None = None
    lts: bool = False
    link: str | None = None
    source: str | None = None  # curated rows: the vendor page the dates come from
    match: str | None = None  # curated rows: regex over the raw version string
    note: str | None = None


@dataclass
class LifecycleAnswer:
    """Is this product version still supported on ``as_of``? With dates and source."""

    status: str
    product: str | None
    as_of: dt.date
    cycle: str | None = None
    label: str | None = None
    title: str | None = None
    release_date: DateLike = None
    eoas: DateLike = None
    eol: DateLike = None  # end of security support
    eoes: DateLike = None  # end of extended (often paid) support
    extended_kind: str | None = None  # "free" or "paid" when eoes applies
    extended_name: str | None = None  # "Extended Security Updates (ESU)", "Debian LTS"
    latest: str | None = None
    source: str = ""  # data set and date, or the curated row's vendor page
    link: str | None = None
    data_date: str | None = None
    reason: str = ""

    @property
    def days_to_eol(self) -> int | None:
        return (self.eol - self.as_of).days if isinstance(self.eol, dt.date) else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, dt.date):
                d[k] = v.isoformat()
        d["days_to_eol"] = self.days_to_eol
        return d


@dataclass(frozen=True)
class KevEntry:
    """One CISA KEV entry: exploited in the wild, with CISA's due-date guidance."""

    cve: str
    vendor: str
    product: str
    name: str
    date_added: dt.date | None
    due_date: dt.date | None
    ransomware: bool  # knownRansomwareCampaignUse == "Known"
    description: str = ""
    required_action: str = ""


@dataclass
class _Tables:
    lifecycle: dict[str, Any]
    curated: dict[str, Any]
    kev: dict[str, Any]
    kev_map: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


# --- version helpers -------------------------------------------------------------------

_NUM_RE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")
_WIN_SUFFIXES = ("iot-lts", "e-lts", "iot", "e", "w")
_WIN_PREFERENCE = {
    "iot-lts": ("iot-lts", "e-lts", "iot", "e", ""),
    "e-lts": ("e-lts", "e", ""),
    "iot": ("iot", "e", ""),
    "e": ("e", ""),
    "w": ("w", ""),
}
_SERVER_NAME_RE = re.compile(r"\b(2003|2008|2012|2016|2019|2022|2025)(\s*r2)?\b", re.I)


def numeric_parts(version: str) -> tuple[int, ...] | None:
    """Leading dotted numbers of a version string: ``"10.2.3-h4"`` -> (10, 2, 3)."""
    m = _NUM_RE.match(version or "")
    if not m:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def windows_build(version: str | None) -> int | None:
    """Build number from ``10.0.19045``, ``6.3.9600``, ``19045.4291`` or ``19045``."""
    if not version:
        return None
    v = version.strip()
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", v)
    if m:
        return int(m.group(3))
    m = re.match(r"^(\d{4,5})(?:\.\d+)?$", v)
    return int(m.group(1)) if m else None


def windows_edition_class(edition: str | None) -> str | None:
    """Map an edition name or EditionID to endoflife.date's suffix: e, w, e-lts, iot-lts, iot."""
    if not edition:
        return None
    e = re.sub(r"[\s_\-]", "", edition.lower())
    if "iot" in e and ("ltsc" in e or "ltsb" in e or e.endswith("enterprises")):
        return "iot-lts"
    if "ltsc" in e or "ltsb" in e or e in ("enterprises", "enterprisesn"):
        return "e-lts"
    if "iot" in e:
        return "iot"
    if "proeducation" in e or "professionaleducation" in e:
        return "w"
    if "enterprise" in e or "education" in e:
        return "e"
    if any(w in e for w in ("pro", "home", "core", "workstation", "smode")):
        return "w"
    return None


def _win_suffix(cycle: str) -> str:
    for s in _WIN_SUFFIXES:
        if cycle.endswith("-" + s):
            return s
    return ""


# --- the knowledge object ------------------------------------------------------------------


class Knowledge:
    """Lifecycle and KEV lookups over the shipped (or updated) data files."""

    def __init__(self, tables: _Tables):
        self._t = tables
        self._releases: dict[str, list[Release]] = {}
        self._titles: dict[str, str] = {}
        self._links: dict[str, str] = {}
        self._curated_keys: set[str] = set()
        for key, prod in tables.lifecycle["products"].items():
            self._add_product(key, prod, curated=False)
        for key, prod in (tables.curated.get("products") or {}).items():
            self._add_product(key, prod, curated=True)
        self._aliases = {k.lower(): v for k, v in (tables.curated.get("aliases") or {}).items()}
        self._extended = tables.curated.get("extended_support") or {}
        self._kev = [self._kev_entry(v) for v in tables.kev["vulnerabilities"]]
        self._kev_by_cve: dict[str, KevEntry] | None = None
        # (product key, vendor) -> the family's entries: one catalogue pass per family, not per device.
        self._kev_family: dict[tuple[str, str], list[KevEntry]] = {}

    # loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, data_dir: Path | str | None = None) -> Knowledge:
        """Load the shipped data, with files in ``data_dir`` (if given) overriding it.

        Cached per directory. A corrupt or unknown-format file raises ``KnowledgeError``
        naming the file; callers that want to fall back call ``load()`` without a dir.
        """
        return _load_cached(str(Path(data_dir).resolve()) if data_dir else "")

    def _add_product(self, key: str, prod: dict[str, Any], *, curated: bool) -> None:
        self._titles[key] = prod.get("title", key)
        self._links[key] = prod.get("link") or f"https://endoflife.date/{key}"
        if curated:
            self._curated_keys.add(key)
        rows = self._releases.setdefault(key, [])
        for r in prod["releases"]:
            rows.append(
                Release(
                    product=key,
                    cycle=r["cycle"],
                    label=r.get("label"),
                    release_date=_date(r.get("releaseDate")),
                    eoas=_date(r.get("eoas")),
                    eol=_date(r.get("eol")),
                    eoes=_date(r.get("eoes")),
                    latest=r.get("latest"),
                    lts=bool(r.get("lts")),
                    link=r.get("link"),
                    source=r.get("source"),
                    match=r.get("match"),
                    note=r.get("note"),
                )
            )

    @staticmethod
    def _kev_entry(v: dict[str, Any]) -> KevEntry:
        def d(s: Any) -> dt.date | None:
            return dt.date.fromisoformat(s) if isinstance(s, str) and s else None

        return KevEntry(
            cve=v["cveID"],
            vendor=v["vendorProject"],
            product=v["product"],
            name=v.get("vulnerabilityName") or "",
            date_added=d(v.get("dateAdded")),
            due_date=d(v.get("dueDate")),
            ransomware=str(v.get("knownRansomwareCampaignUse", "")).lower() == "known",
            description=v.get("shortDescription") or "",
            required_action=v.get("requiredAction") or "",
        )

    # dates and sources -----------------------------------------------------------------

    def data_dates(self) -> dict[str, str]:
        """Dates of the data in use, for every report: {"lifecycle": ..., "kev": ..., ...}."""
        return {
            "lifecycle": str(self._t.lifecycle.get("snapshot")),
            "lifecycle_curated": str(self._t.curated.get("reviewed")),
            "kev": str(self._t.kev.get("dateReleased") or self._t.kev.get("catalogVersion")),
            "vulns": self._vulns_snapshot(),
        }

    def data_sources(self) -> dict[str, str]:
        """One attribution line per data set (name, licence, file in use)."""
        lc, kev = self._t.lifecycle.get("source", {}), self._t.kev.get("source", {})
        return {
            "lifecycle": f"{lc.get('name')} ({lc.get('licence')}) — {self._t.files.get('lifecycle')}",
            "lifecycle_curated": f"itaudit curated vendor tables — {self._t.files.get('curated')}",
            "kev": f"{kev.get('name')} {self._t.kev.get('catalogVersion')} ({kev.get('licence')})"
            f" — {self._t.files.get('kev')}",
            "vulns": f"{self.vulns().source_text()} — {self._t.files.get('vulns')}",
        }

    def lifecycle_products(self) -> list[str]:
        """Product keys of the endoflife.date snapshot (what ``data update`` refreshes)."""
        return sorted(self._t.lifecycle["products"])

    def products(self) -> list[str]:
        """Every product key the lifecycle lookup knows, snapshot and curated."""
        return sorted(self._releases)

    def product_key(self, name: str | None) -> str | None:
        """Resolve a product key or alias ("panos", "Red Hat Enterprise Linux") to a key."""
        if not name:
            return None
        n = name.strip().lower()
        if n in self._aliases:
            return self._aliases[n]
        if n in self._releases:
            return n
        n2 = re.sub(r"[\s_]+", "-", n)
        if n2 in self._aliases:
            return self._aliases[n2]
        return n2 if n2 in self._releases else None

    # lifecycle -------------------------------------------------------------------------

    def lifecycle(
        self,
        product: str,
        version: str | None,
        *,
        edition: str | None = None,
        release: str | None = None,
        as_of: dt.date,
        paid_extended: bool = False,
        name: str | None = None,
    ) -> LifecycleAnswer:
        """Judge ``product`` ``version`` at ``as_of``. Never guesses: a miss is ``unknown``.

        ``release`` (a cycle name such as ``"22.04"`` or ``"10-22h2"``) wins over the
        version when given. ``name`` is an OS display name used only as a fallback for
        Windows Server when no build is known ("Windows Server 2012 R2 Standard").
        ``paid_extended`` says the city bought the product's paid extended support.
        """
        key = self.product_key(product)
        if key is None:
            return self._unknown(product, as_of, f"product {product!r} is not in the lifecycle data")
        rel: Release | None = None
        note = ""
        if release:
            rel = self._exact(key, release)
            if rel is None and not version:
                return self._unknown(key, as_of, f"release {release!r} not found for {key}")
        if rel is None:
            if key == "windows":
                rel, note = self._match_windows(key, version, edition, as_of, paid_extended)
            elif key.startswith("windows-server"):
                rel, note = self._match_windows_server(key, version, name or edition)
            else:
                rel, note = self._match_generic(key, version)
        if rel is None:
            return self._unknown(key, as_of, note)
        return self._judge(rel, as_of, paid_extended, note)

    def _unknown(self, product: str | None, as_of: dt.date, reason: str) -> LifecycleAnswer:
        return LifecycleAnswer(
            status="unknown",
            product=product,
            as_of=as_of,
            title=self._titles.get(product or ""),
            reason=reason,
            data_date=self.data_dates()["lifecycle"],
            source=self._source_text(product) if product in self._releases else "",
        )

    def _source_text(self, key: str | None, rel: Release | None = None) -> str:
        if rel is not None and rel.source:
            return f"{rel.source} (itaudit curated table, reviewed {self._t.curated.get('reviewed')})"
        return f"endoflife.date/{key} (snapshot {self._t.lifecycle.get('snapshot')})"

    def _exact(self, key: str, cycle: str) -> Release | None:
        c = cycle.strip().lower()
        for r in self._releases.get(key, []):
            if r.cycle.lower() == c:
                return r
        return None

    def _match_generic(self, key: str, version: str | None) -> tuple[Release | None, str]:
        if not version or not version.strip():
            return None, "no version known"
        exact = self._exact(key, version)
        if exact is not None:
            return exact, ""
        rows = self._releases.get(key, [])
        for r in rows:
            if r.match and re.search(r.match, version.strip(), re.I):
                return r, ""
        parts = numeric_parts(version)
        if not parts:
            return None, f"version {version!r} not understood for {key}"
        index: dict[tuple[int, ...], Release] = {}
        for r in rows:
            if r.match is None and re.fullmatch(r"\d+(\.\d+)*", r.cycle):
                index.setdefault(tuple(int(p) for p in r.cycle.split(".")), r)
        for n in range(len(parts), 0, -1):
            if parts[:n] in index:
                return index[parts[:n]], ""
        return None, (
            f"version {version!r} matches no {key} release in the data dated "
            f"{self.data_dates()['lifecycle']} (newer than the data, or not tracked)"
        )

    def _match_windows(
        self, key: str, version: str | None, edition: str | None, as_of: dt.date, paid: bool
    ) -> tuple[Release | None, str]:
        build = windows_build(version)
        if build is None:
            return None, f"Windows version {version!r} has no build number"
        rows = [r for r in self._releases[key] if windows_build(r.latest) == build]
        if not rows:
            return None, f"Windows build {build} is not in the lifecycle data"
        cls = windows_edition_class(edition)
        if cls is not None:
            by_suffix = {_win_suffix(r.cycle): r for r in rows}
            for s in _WIN_PREFERENCE[cls]:
                if s in by_suffix:
                    return by_suffix[s], ""
            return None, f"no Windows build {build} release for edition {edition!r}"
        if len(rows) == 1:
            return rows[0], ""
        # Edition unknown: answer only if every edition of this build agrees.
        verdicts = {self._judge(r, as_of, paid, "").status for r in rows}
        if len(verdicts) == 1:
            return rows[0], "edition unknown; every edition of this build has the same status"
        cycles = ", ".join(r.cycle for r in rows)
        return None, f"Windows build {build}: edition needed (releases {cycles} differ)"

    def _match_windows_server(
        self, key: str, version: str | None, name: str | None
    ) -> tuple[Release | None, str]:
        build = windows_build(version)
        rows = self._releases[key]
        if build is not None:
            hits = [r for r in rows if windows_build(r.latest) == build]
            if hits:
                # 17763 is both Server 2019 (LTSC) and 1809 SAC: LTSC is what cities run.
                hits.sort(key=lambda r: (not r.lts, r.cycle))
                return hits[0], ""
        for text in (version, name):
            m = _SERVER_NAME_RE.search(text or "")
            if m:
                cycle = m.group(1) + ("-r2" if m.group(2) else "")
                found = self._exact(key, cycle)
                if found is None:
                    # "2008 R2" is listed as "2008-r2-sp1": take its latest service pack.
                    sps = sorted(r.cycle for r in rows if r.cycle.startswith(cycle + "-sp"))
                    found = self._exact(key, sps[-1]) if sps else None
                if found is not None:
                    return found, ""
        return None, f"Windows Server version {version!r} not understood"

    def _judge(self, rel: Release, as_of: dt.date, paid_extended: bool, note: str) -> LifecycleAnswer:
        ext = self._extended.get(rel.product) or {}
        ans = LifecycleAnswer(
            status="unknown",
            product=rel.product,
            as_of=as_of,
            cycle=rel.cycle,
            label=rel.label,
            title=self._titles.get(rel.product),
            release_date=rel.release_date,
            eoas=rel.eoas,
            eol=rel.eol,
            eoes=rel.eoes,
            latest=rel.latest,
            source=self._source_text(rel.product, rel),
            link=rel.source or rel.link or self._links.get(rel.product),
            data_date=self.data_dates()["lifecycle"],
        )
        if rel.eoes not in (None, True):
            ans.extended_kind = ext.get("kind", "paid")
            ans.extended_name = ext.get("name", "extended support")
        reasons = [note] if note else []
        if rel.note:
            reasons.append(rel.note)
        eol = rel.eol
        if eol is None:
            ans.reason = "; ".join([*reasons, "no end-of-support date in the data"])
            return ans
        if not (eol is True or (isinstance(eol, dt.date) and eol <= as_of)):
            if isinstance(eol, dt.date) and (eol - as_of).days <= ENDING_SOON_DAYS:
                ans.status = "ending_soon"
                reasons.insert(0, f"security support ends {eol.isoformat()}")
            else:
                ans.status = "supported"
                reasons.insert(0, f"security support until {eol.isoformat()}" if eol else "no end announced")
            ans.reason = "; ".join(reasons)
            return ans
        ended = f"security support ended {eol.isoformat()}" if isinstance(eol, dt.date) else (
            "security support has ended"
        )
        eoes = rel.eoes
        ext_active = eoes is False or (isinstance(eoes, dt.date) and eoes > as_of)
        if ext_active:
            until = eoes.isoformat() if isinstance(eoes, dt.date) else "no end announced"
            if ans.extended_kind == "free":
                ans.status = "extended"
                reasons.insert(0, f"{ended}; {ans.extended_name} (free) until {until}")
            elif paid_extended:
                ans.status = "extended"
                reasons.insert(0, f"{ended}; paid {ans.extended_name} bought, until {until}")
            else:
                ans.status = "eol"
                reasons.insert(0, f"{ended}; paid {ans.extended_name} available until {until} but not bought")
        else:
            ans.status = "eol"
            reasons.insert(0, ended)
        ans.reason = "; ".join(reasons)
        return ans

    # KEV ---------------------------------------------------------------------------------

    def kev_knows(self, product: str | None) -> bool:
        """True when ``product`` maps to KEV vendor/product names (so no match means none)."""
        key = self.product_key(product) or (product or "").lower()
        return key in (self._t.kev_map.get("products") or {})

    def kev_matches(
        self, product: str | None, *, vendor: str | None = None, since: dt.date | None = None
    ) -> list[KevEntry]:
        """KEV entries for a product family, newest first.

        KEV has no version ranges: this matches the *family* (vendor and product names
        from ``kev_products.json``), so a match means "this family has flaws exploited in
        the wild; check the advisory for your version", not proof of exposure. ``since``
        keeps only entries added after that date (e.g. the device's last update).
        ``vendor`` limits to that KEV vendorProject when given.
        """
        key = self.product_key(product) or (product or "").lower()
        family = self._kev_family.get((key, (vendor or "").lower()))
        if family is None:
            pats = (self._t.kev_map.get("products") or {}).get(key) or []
            family = []
            for e in self._kev:
                if vendor and e.vendor.lower() != vendor.lower():
                    continue
                for p in pats:
                    if e.vendor.lower() == p["vendor"].lower() and re.search(p["product"], e.product, re.I):
                        family.append(e)
                        break
            family.sort(key=lambda e: (e.date_added or dt.date.min, e.cve), reverse=True)
            self._kev_family[(key, (vendor or "").lower())] = family
        return [e for e in family if since is None or (e.date_added is not None and e.date_added > since)]

    def vulns(self) -> VulnData:
        """Version ranges per CVE (``vulns.json``), loaded on first use."""
        return VulnData.load(self._t.files["vulns"])

    def _vulns_snapshot(self) -> str:
        try:
            return self.vulns().snapshot
        except KnowledgeError:
            return "unavailable"

    def kev_entry(self, cve: str) -> KevEntry | None:
        """Look one CVE up in the KEV catalog."""
        if self._kev_by_cve is None:
            self._kev_by_cve = {e.cve: e for e in reversed(self._kev)}  # the first entry wins
        return self._kev_by_cve.get(cve)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeError(f"{path}: {what} file is missing") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path}: {what} file is corrupt (not JSON: {exc})") from exc


@cache
def _load_cached(data_dir: str) -> Knowledge:
    shipped = shipped_data_dir()
    override = Path(data_dir) if data_dir else None

    def pick(name: str) -> Path:
        if override is not None and (override / name).exists():
            return override / name
        return shipped / name

    files = {
        "lifecycle": pick("lifecycle.json"),
        "curated": pick("lifecycle_curated.json"),
        "kev": pick("kev.json"),
        "kev_map": pick("kev_products.json"),
        "vulns": pick("vulns.json"),
    }
    lifecycle = _read_json(files["lifecycle"], "lifecycle")
    validate_lifecycle(lifecycle, where=str(files["lifecycle"]))
    curated = _read_json(files["curated"], "curated lifecycle")
    validate_curated(curated, where=str(files["curated"]))
    kev = _read_json(files["kev"], "KEV")
    validate_kev(kev, where=str(files["kev"]))
    kev_map = _read_json(files["kev_map"], "KEV product map")
    if not isinstance(kev_map, dict) or kev_map.get("format") != KEV_MAP_FORMAT:
        raise KnowledgeError(f"{files['kev_map']}: unknown format (expected {KEV_MAP_FORMAT})")
    return Knowledge(_Tables(lifecycle, curated, kev, kev_map, {k: str(v) for k, v in files.items()}))


@cache
def _frameworks() -> dict[str, Any]:
    path = shipped_data_dir() / "frameworks.json"
    doc = _read_json(path, "frameworks")
    if not isinstance(doc, dict) or not isinstance(doc.get("checks"), dict):
        raise KnowledgeError(f"{path}: unknown format (expected a 'checks' mapping)")
    return doc


def framework_refs(check_id: str) -> dict[str, tuple[str, ...]]:
    """``cpg=`` and ``cis=`` for ``@check`` from frameworks.json (frameworks are data)."""
    row = _frameworks()["checks"].get(check_id) or {}
    return {"cpg": tuple(row.get("cpg", ())), "cis": tuple(row.get("cis", ()))}


def product_for(knowledge: Knowledge, software: Any) -> str | None:
    """The lifecycle product key for collected software facts (``Software``), or None."""
    if getattr(software, "product", None):
        key = knowledge.product_key(software.product)
        if key:
            return key
    fam = (getattr(software, "os_family", None) or "").strip().lower()
    name = (getattr(software, "os_name", None) or "").strip().lower()
    if fam == "windows" or name.startswith(("microsoft windows", "windows")):
        return "windows-server" if "server" in name else "windows"
    for text in (name, re.split(r"\s+v?\d", name)[0], fam):
        key = knowledge.product_key(text) if text else None
        if key:
            return key
    return None


def lifecycle_for_facts(
    knowledge: Knowledge, software: Any, *, as_of: dt.date, paid_extended: Any = None
) -> LifecycleAnswer:
    """Lifecycle answer for a device's ``Software`` facts (product inferred from the facts).

    ``paid_extended`` is a callable ``product -> bool`` (``Policy.paid_extended``) or None.
    """
    product = product_for(knowledge, software)
    if product is None:
        return LifecycleAnswer(
            status="unknown",
            product=None,
            as_of=as_of,
            reason="operating system or firmware not identified (no product, family or name)",
            data_date=knowledge.data_dates()["lifecycle"],
        )
    version = software.os_version or software.firmware or software.os_build
    edition = software.edition
    if product == "windows" and not edition and software.os_name:
        # "Microsoft Windows 10 Pro" -> "Pro"
        m = re.search(r"windows\s+\d+\s+(.+)$", software.os_name, re.I)
        edition = m.group(1) if m else None
    if product == "windows" and software.os_build and windows_build(version) is None:
        version = software.os_build
    paid = bool(paid_extended(product)) if callable(paid_extended) else bool(paid_extended)
    return knowledge.lifecycle(
        product,
        version,
        edition=edition,
        release=software.release,
        as_of=as_of,
        paid_extended=paid,
        name=software.os_name,
    )


def load_preferred(data_dir: Path | str | None = None) -> tuple[Knowledge, str | None]:
    """Updated data (``data_dir`` or ``user_data_dir()``) when present and valid, else shipped.

    Returns the knowledge and, when an updated copy was refused, a warning to show; the
    shipped copy is then used, so a bad download never stops a scan.
    """
    d = Path(data_dir) if data_dir else user_data_dir()
    if any((d / n).exists() for n in ("lifecycle.json", "kev.json", "vulns.json")):
        try:
            return Knowledge.load(d), None
        except KnowledgeError as exc:
            return Knowledge.load(), f"ignoring updated data ({exc}); using the shipped copy"
    return Knowledge.load(), None

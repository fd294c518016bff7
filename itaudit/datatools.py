"""Build and refresh the shipped knowledge files (lifecycle snapshot, CISA KEV).

Two ways in:

- ``build_lifecycle_from_reference(ref_dir)`` reads endoflife.date's product pages
  (Markdown with YAML front matter) from a local checkout. It needs PyYAML, a
  development-only dependency: the generated JSON is what ships, and the runtime
  never imports yaml. Run ``python -m itaudit.datatools REF_DIR`` to regenerate.
- ``update_data(data_dir, fetch=...)`` is what ``itaudit data update`` calls: it
  downloads endoflife.date API v1 product documents and the CISA KEV feed, converts
  and validates them with the same rules the loader uses, and writes each file
  atomically. Any failure leaves the previous copy untouched. ``fetch`` is injectable
  so tests never touch the network.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit.errors import KnowledgeError
from itaudit.knowledge import (
    KEV_FORMAT,
    LIFECYCLE_FORMAT,
    validate_kev,
    validate_lifecycle,
)

ENDOFLIFE_API = "https://endoflife.date/api/v1/products/{product}"
KEV_FEED = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
# Fields of a KEV entry the checks and reports use; the rest is dropped to keep the file small.
KEV_FIELDS = (
    "cveID",
    "vendorProject",
    "product",
    "vulnerabilityName",
    "dateAdded",
    "shortDescription",
    "requiredAction",
    "dueDate",
    "knownRansomwareCampaignUse",
)
MAX_DOWNLOAD = 20 * 1024 * 1024

Fetch = Callable[[str], bytes]


# --- endoflife.date product pages (local reference checkout) ---------------------------


def _front_matter(text: str) -> dict[str, Any]:
    try:
        import yaml  # development-only: see module docstring
    except ImportError as exc:  # pragma: no cover - depends on the dev environment
        raise KnowledgeError("building from endoflife.date pages needs PyYAML (pip install pyyaml)") from exc
    if not text.startswith("---"):
        raise KnowledgeError("no YAML front matter")
    body = text[3:].split("\n---", 1)[0]
    data = yaml.safe_load(body)
    if not isinstance(data, dict):
        raise KnowledgeError("front matter is not a mapping")
    return data


def _jsonable_date(value: Any) -> str | bool | None:
    """A lifecycle date as stored: ISO string, True (passed, date unknown), False (no end yet)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        dt.date.fromisoformat(value[:10])
        return value[:10]
    raise KnowledgeError(f"unexpected lifecycle value {value!r}")


def release_from_page(row: dict[str, Any]) -> dict[str, Any]:
    """Convert one ``releases:`` row of a product page into the shipped shape."""
    lts = row.get("lts")
    out: dict[str, Any] = {
        "cycle": str(row["releaseCycle"]),
        "label": row.get("releaseLabel") or row.get("codename"),
        "releaseDate": _jsonable_date(row.get("releaseDate")),
        "eoas": _jsonable_date(row.get("eoas")),
        "eol": _jsonable_date(row.get("eol")),
        "eoes": _jsonable_date(row.get("eoes")),
        "latest": str(row["latest"]) if row.get("latest") is not None else None,
        "lts": bool(lts) if not isinstance(lts, dt.date) else True,
        "link": row.get("link"),
    }
    return {k: v for k, v in out.items() if v is not None}


def build_lifecycle_from_reference(
    ref_dir: Path, *, snapshot: str, commit: str, products: Iterable[str] | None = None
) -> dict[str, Any]:
    """Read ``ref_dir/products/*.md`` into the shipped lifecycle document."""
    pages = sorted((ref_dir / "products").glob("*.md"))
    wanted = set(products) if products else None
    doc: dict[str, Any] = {
        "format": LIFECYCLE_FORMAT,
        "source": {
            "name": "endoflife.date",
            "url": "https://github.com/endoflife-date/endoflife.date",
            "commit": commit,
            "licence": "MIT",
        },
        "snapshot": snapshot,
        "products": {},
    }
    for page in pages:
        key = page.stem
        if wanted is not None and key not in wanted:
            continue
        meta = _front_matter(page.read_text(encoding="utf-8"))
        doc["products"][key] = {
            "title": meta.get("title", key),
            "link": f"https://endoflife.date/{key}",
            "eolColumn": meta.get("eolColumn"),
            "eoesColumn": meta.get("eoesColumn"),
            "releases": [release_from_page(r) for r in meta.get("releases") or []],
        }
    validate_lifecycle(doc, where=str(ref_dir))
    return doc


# --- endoflife.date API v1 -----------------------------------------------------------


def _api_date(is_flag: Any, date: Any) -> str | bool | None:
    if isinstance(date, str) and date:
        return _jsonable_date(date)
    if isinstance(is_flag, bool):
        return is_flag
    return None


def release_from_api(rel: dict[str, Any]) -> dict[str, Any]:
    """Convert one API v1 ``ProductRelease`` into the shipped shape."""
    if not isinstance(rel, dict) or not isinstance(rel.get("name"), str):
        raise KnowledgeError("API release without a name")
    latest = rel.get("latest") if isinstance(rel.get("latest"), dict) else {}
    out: dict[str, Any] = {
        "cycle": rel["name"],
        "label": rel.get("label"),
        "releaseDate": _api_date(None, rel.get("releaseDate")),
        "eoas": _api_date(rel.get("isEoas"), rel.get("eoasFrom")) if "isEoas" in rel else None,
        "eol": _api_date(rel.get("isEol"), rel.get("eolFrom")),
        "eoes": _api_date(rel.get("isEoes"), rel.get("eoesFrom")) if "isEoes" in rel else None,
        "latest": latest.get("name"),
        "lts": bool(rel.get("isLts")),
        "link": latest.get("link"),
    }
    return {k: v for k, v in out.items() if v is not None}


def product_from_api(key: str, payload: Any) -> dict[str, Any]:
    """Convert an API v1 ``/products/{product}`` response; refuse anything unexpected."""
    if not isinstance(payload, dict) or not str(payload.get("schema_version", "")).startswith("1."):
        raise KnowledgeError(f"{key}: not an endoflife.date API v1 response (schema_version)")
    result = payload.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("releases"), list):
        raise KnowledgeError(f"{key}: response has no result.releases list")
    return {
        "title": result.get("label") or key,
        "link": f"https://endoflife.date/{key}",
        "releases": [release_from_api(r) for r in result["releases"]],
    }


# --- CISA KEV ---------------------------------------------------------------------------


def trim_kev(feed: Any, *, where: str = "KEV feed") -> dict[str, Any]:
    """Keep the fields itaudit uses from the CISA KEV JSON feed, validated."""
    if not isinstance(feed, dict) or not isinstance(feed.get("vulnerabilities"), list):
        raise KnowledgeError(f"{where}: not a CISA KEV catalog (no vulnerabilities list)")
    count = feed.get("count")
    if count is not None and count != len(feed["vulnerabilities"]):
        # CISA's feed states its own length: a cut or edited copy does not match it.
        raise KnowledgeError(f"{where}: says {count} entries but holds {len(feed['vulnerabilities'])} "
                             "(truncated or tampered)")
    doc = {
        "format": KEV_FORMAT,
        "source": {
            "name": "CISA Known Exploited Vulnerabilities catalog",
            "url": KEV_FEED,
            "licence": "CC0-1.0",
        },
        "catalogVersion": feed.get("catalogVersion"),
        "dateReleased": str(feed.get("dateReleased", ""))[:10],
        "vulnerabilities": [
            {k: v.get(k) for k in KEV_FIELDS} for v in feed["vulnerabilities"] if isinstance(v, dict)
        ],
    }
    validate_kev(doc, where=where)
    return doc


# --- writing and updating ----------------------------------------------------------------


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write JSON next to ``path`` and rename it into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=False, sort_keys=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the data is public
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def urllib_fetch(url: str, timeout: float = 30.0) -> bytes:
    """Download ``url`` (https only), bounded in size."""
    import urllib.request  # here, not at module level: http.client and ssl cost every CLI start

    if not url.startswith("https://"):
        raise KnowledgeError(f"refusing non-https URL {url}")
    req = urllib.request.Request(url, headers={"User-Agent": "itaudit-data-update"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - https checked above
        data = resp.read(MAX_DOWNLOAD + 1)
    if len(data) > MAX_DOWNLOAD:
        raise KnowledgeError(f"{url}: response larger than {MAX_DOWNLOAD} bytes")
    return data


@dataclass
class UpdateReport:
    """What ``update_data`` did, file by file."""

    updated: dict[str, str] = field(default_factory=dict)  # file -> new data date
    failed: dict[str, str] = field(default_factory=dict)  # file -> reason (old copy kept)

    @property
    def ok(self) -> bool:
        return not self.failed


def _json(fetch: Fetch, url: str) -> Any:
    raw = fetch(url)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{url}: not JSON ({exc})") from exc


def update_data(
    data_dir: Path,
    *,
    fetch: Fetch = urllib_fetch,
    products: Iterable[str] | None = None,
    today: dt.date | None = None,
) -> UpdateReport:
    """Refresh lifecycle.json and kev.json in ``data_dir``; keep the old copy on any failure.

    ``products`` defaults to those in the currently shipped snapshot. The lifecycle file
    is replaced only when every product downloaded and validated (all or nothing), so a
    half-updated table never mixes dates from two days.
    """
    from itaudit.knowledge import Knowledge

    report = UpdateReport()
    day = (today or dt.date.today()).isoformat()
    current = Knowledge.load()
    keys = list(products) if products else sorted(current.lifecycle_products())
    try:
        doc: dict[str, Any] = {
            "format": LIFECYCLE_FORMAT,
            "source": {
                "name": "endoflife.date API v1",
                "url": "https://endoflife.date/docs/api/v1/",
                "licence": "MIT",
            },
            "snapshot": day,
            "products": {},
        }
        for key in keys:
            doc["products"][key] = product_from_api(key, _json(fetch, ENDOFLIFE_API.format(product=key)))
        validate_lifecycle(doc, where="endoflife.date API")
        write_json_atomic(data_dir / "lifecycle.json", doc)
        report.updated["lifecycle.json"] = day
    except Exception as exc:  # network, parse or validation: keep the old copy
        report.failed["lifecycle.json"] = f"{type(exc).__name__}: {exc}"
    try:
        kev = trim_kev(_json(fetch, KEV_FEED), where=KEV_FEED)
        have = current.data_dates().get("kev", "")
        if (data_dir / "kev.json").exists():
            have = Knowledge.load(data_dir).data_dates().get("kev", have)
        if kev["dateReleased"] and have and kev["dateReleased"] < have:
            raise KnowledgeError(f"{KEV_FEED}: catalog dated {kev['dateReleased']} is older than the one in use "
                                 f"({have}); refusing to go back")
        write_json_atomic(data_dir / "kev.json", kev)
        write_json_atomic(data_dir / "snapshots" / f"kev-{kev['dateReleased'] or day}.json", kev)
        report.updated["kev.json"] = kev["dateReleased"]
    except Exception as exc:
        report.failed["kev.json"] = f"{type(exc).__name__}: {exc}"
    return report


def main(argv: list[str] | None = None) -> int:
    """Regenerate the shipped lifecycle.json and kev.json from ``../shared/reference``."""
    args = argv if argv is not None else sys.argv[1:]
    ref = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "shared" / "reference"
    out = Path(__file__).resolve().parent / "data"
    doc = build_lifecycle_from_reference(ref / "endoflife", snapshot="2026-08-22", commit="a70eca3")
    write_json_atomic(out / "lifecycle.json", doc)
    feed = json.loads((ref / "kev" / "known_exploited_vulnerabilities.json").read_text(encoding="utf-8"))
    write_json_atomic(out / "kev.json", trim_kev(feed))
    print(f"wrote {len(doc['products'])} products and {len(feed['vulnerabilities'])} KEV entries to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

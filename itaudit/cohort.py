"""Comparing a city with a cohort of peer cities, without a server.

Cities exchange their KPI-only open-data files (no device data: one row per measure and
month). ``itaudit cohort add FILE`` validates a peer's file and keeps a copy in the city's
data folder (``<database folder>/cohort/``); the monthly summary then says where the city
stands on each measure (median, quartile, rank) when at least ``MIN_PEERS`` peers of
similar size have a recent value for it, and says so when not.

Files, not database rows: the file is the thing cities exchange and audit, so it is kept as
received (inspectable, easy to remove, the same folder can serve every city of an MSP), and
every read validates it again, so a file edited or grown stale later is named and left out
rather than trusted. No schema change is needed.

The exchange format (``itaudit-opendata/1``) is read here, in one place. It is the long-format
CSV that ``itaudit report opendata`` writes (``reports/opendata.py``): one row per
(period, measure) with the header

    period,measure_id,measure,target,better,actual,status,numerator,denominator,unit,data_date

``period`` is ``YYYY-MM``; ``measure_id`` is a key of ``itaudit.measures`` (``score``,
``refresh``, ``supported``, ``patched``, ``exposure``, ``freshness``, ``uncheckable``,
``completeness``; a file without ``measure_id`` may carry the key in ``measure``); ``actual``
is a number (empty: no data); ``numerator`` of ``denominator`` devices. Two optional columns
name the file's format and city: ``format`` (``itaudit-opendata/1``; a higher number is a
newer format, refused) and ``city``; without ``city`` the city comes from the file name
(``springfield-it-measures-2026-11.csv`` -> ``springfield``). Other columns are ignored. A
city's size is its largest ``denominator`` (devices judged), and a peer is "of similar size"
when its size is between half and twice the city's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import shutil
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itaudit.errors import ItauditError
from itaudit.measures import MEASURE_KEYS, default_measures

FORMAT = "itaudit-opendata/1"
# ``itaudit report opendata``'s columns (reports/opendata.py writes them), with the optional format and city.
COLUMNS = ("format", "city", "period", "measure_id", "measure", "target", "better", "actual", "status",
           "numerator", "denominator", "unit", "data_date")
REQUIRED = ("period", "actual", "denominator")
_FILE_CITY = re.compile(r"-it-measures-\d{4}-\d{2}$")
MIN_PEERS = 3
MAX_AGE_MONTHS = 18
SIZE_FACTOR = 2.0  # similar size: between half and twice the city's devices
MAX_BYTES = 5_000_000
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_FORMAT = re.compile(r"^itaudit-opendata/(\d+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class CohortError(ItauditError):
    """A peer's open-data file cannot be used; the message names the file and the reason."""


@dataclass
class PeerFile:
    """A validated peer file: its city, latest period, size and latest value per measure."""

    path: Path
    city: str
    period: str  # the latest period in the file
    devices: int
    values: dict[str, float]  # measure -> actual at the latest period with a value
    missing: list[str] = field(default_factory=list)  # measures the file does not give

    @property
    def size_band(self) -> str:
        return size_band(self.devices)


def size_band(devices: int) -> str:
    """A size band for people ("100-249 devices"); similarity itself uses ``SIZE_FACTOR``."""
    for lo, hi in ((0, 99), (100, 249), (250, 499), (500, 999), (1000, 2499)):
        if devices <= hi:
            return f"{lo}-{hi} devices"
    return "2,500+ devices"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "peer"


def _number(value: str, what: str, where: str) -> float | None:
    value = (value or "").strip()
    if value == "":
        return None
    try:
        num = float(value)
    except ValueError:
        raise CohortError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(num) or num < 0:
        raise CohortError(f"{where}: {what} {value!r} must be a finite number of at least 0")
    return num


def read_peer_file(path: Path | str) -> PeerFile:
    """Read and validate one open-data file; any problem is a ``CohortError`` naming it."""
    path = Path(path)
    name = path.name
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CohortError(f"{name}: larger than {MAX_BYTES // 1_000_000} MB; not an open-data file")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CohortError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CohortError(f"{name}: not UTF-8 text; expected an itaudit open-data CSV") from None
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as exc:
        raise CohortError(f"{name}: not a readable CSV ({exc})") from None
    missing_cols = [c for c in REQUIRED if c not in header]
    if "measure_id" not in header and "measure" not in header:
        missing_cols.insert(1, "measure_id")
    if missing_cols:
        raise CohortError(f"{name}: missing column(s) {', '.join(missing_cols)}; expected the header "
                          f"{','.join(COLUMNS)}")
    measures = default_measures()
    cities: set[str] = set()
    latest: dict[str, tuple[str, float]] = {}
    periods: set[str] = set()
    devices = 0
    for n, raw in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else "" for k, v in raw.items()}
        where = f"{name} line {n}"
        fmt = row.get("format", "")
        if fmt:
            m = _FORMAT.match(fmt)
            if not m:
                raise CohortError(f"{where}: unknown format {fmt!r} (expected {FORMAT})")
            if int(m.group(1)) > 1:
                raise CohortError(f"{where}: format {fmt} is newer than this itaudit reads ({FORMAT}); "
                                  "update itaudit to compare with it")
        if row.get("city"):
            # A peer's file is outside input: no control characters (terminal escapes), a sane length.
            cities.add(_CONTROL.sub("", row["city"])[:80].strip() or "unnamed")
        period = row.get("period", "")
        if not _PERIOD.match(period):
            raise CohortError(f"{where}: period {period!r} is not a month (YYYY-MM)")
        measure = row.get("measure_id") or row.get("measure", "")
        if measure not in measures:
            continue  # a measure this version does not know: ignored, not an error (newer writers add some)
        actual = _number(row.get("actual", ""), "actual", where)
        den = _number(row.get("denominator", ""), "denominator", where)
        if actual is not None and measures[measure].unit in ("%", "points") and actual > 100:
            raise CohortError(f"{where}: {measure} = {actual:g} is impossible (at most 100)")
        periods.add(period)
        if den is not None and measure != "uncheckable":
            devices = max(devices, int(den))
        if actual is not None and (measure not in latest or period > latest[measure][0]):
            latest[measure] = (period, actual)
    if not periods:
        raise CohortError(f"{name}: no rows for any known measure ({', '.join(MEASURE_KEYS)})")
    if len(cities) > 1:
        raise CohortError(f"{name}: rows from several cities ({', '.join(sorted(cities))}); one city per file")
    city = next(iter(cities)) if cities else _CONTROL.sub("", _FILE_CITY.sub("", path.stem))[:80]
    return PeerFile(path=path, city=city, period=max(periods), devices=devices,
                    values={k: v for k, (_, v) in latest.items()},
                    missing=[k for k in MEASURE_KEYS if k not in latest])


def cohort_dir(city: Any) -> Path | None:
    """Where a city keeps its peers' files: ``cohort/`` beside its database (None without one)."""
    database = getattr(city, "database", None)
    return Path(database).parent / "cohort" if database else None


def _months_between(period: str, day: dt.date) -> int:
    y, m = int(period[:4]), int(period[5:7])
    return (day.year * 12 + day.month) - (y * 12 + m)


def _own(city: Any, peer: PeerFile) -> bool:
    names = {_slug(str(getattr(city, "id", ""))), _slug(str(getattr(city, "name", "")))}
    return _slug(peer.city) in names


def add_peer_file(city: Any, src: Path | str, *, as_of: dt.date) -> tuple[PeerFile, Path]:
    """Validate ``src`` and keep a copy for ``city``; refuses its own, stale or unusable files."""
    peer = read_peer_file(src)
    if _own(city, peer):
        raise CohortError(f"{Path(src).name}: this is {peer.city}'s own file; a city is not its own peer")
    age = _months_between(peer.period, as_of)
    if age > MAX_AGE_MONTHS:
        raise CohortError(f"{Path(src).name}: its latest month, {peer.period}, is {age} months old "
                          f"(more than {MAX_AGE_MONTHS}); ask {peer.city} for a newer file")
    if age < -1:
        raise CohortError(f"{Path(src).name}: its latest month, {peer.period}, is in the future")
    folder = cohort_dir(city)
    if folder is None:
        raise CohortError(f"city {getattr(city, 'id', '?')} has no database folder to keep peer files in")
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{_slug(peer.city)}.csv"
    shutil.copyfile(src, dest)
    return peer, dest


@dataclass
class Excluded:
    name: str
    reason: str


@dataclass
class CohortView:
    """Where the city stands among its peers, measure by measure."""

    peers: list[PeerFile]  # used: recent and of similar size
    excluded: list[Excluded]
    by_measure: dict[str, str]  # measure -> one line for the report
    stats: dict[str, dict[str, Any]]  # measure -> {n, median, q1, q3, rank, of, quartile}
    sentence: str


def stand(value: float, peers: list[float], better: str) -> dict[str, Any]:
    """Median, quartiles and the city's rank (1 = best) and quartile among its peers' values."""
    q1, median, q3 = statistics.quantiles(peers, n=4, method="inclusive")
    higher = better == "higher"
    rank = 1 + sum(1 for v in peers if (v > value if higher else v < value))
    if higher:
        quartile = "top" if value >= q3 else "second" if value >= median else "third" if value >= q1 else "bottom"
    else:
        quartile = "top" if value <= q1 else "second" if value <= median else "third" if value <= q3 else "bottom"
    return {"n": len(peers), "median": median, "q1": q1, "q3": q3, "rank": rank, "of": len(peers) + 1,
            "quartile": quartile}


_Q = {"top": 1, "second": 2, "third": 3, "bottom": 4}  # Q1 = the best quarter of the cohort


def cohort_view(city: Any, rows: Iterable[Any], *, as_of: dt.date, devices: int,
                folder: Path | None = None) -> CohortView | None:
    """Compare ``rows`` (objects with key, actual, better, unit) with the peers' files; None without any."""
    folder = folder or cohort_dir(city)
    files = sorted(folder.glob("*.csv")) if folder is not None and folder.is_dir() else []
    if not files:
        return None
    peers: list[PeerFile] = []
    excluded: list[Excluded] = []
    for f in files:
        try:
            peer = read_peer_file(f)
        except CohortError as exc:
            excluded.append(Excluded(f.name, str(exc).split(": ", 1)[-1]))
            continue
        age = _months_between(peer.period, as_of)
        if _own(city, peer):
            excluded.append(Excluded(peer.city, "the city's own file"))
        elif age > MAX_AGE_MONTHS:
            excluded.append(Excluded(peer.city, f"latest month {peer.period} is older than {MAX_AGE_MONTHS} months"))
        elif devices and not (devices / SIZE_FACTOR <= peer.devices <= devices * SIZE_FACTOR):
            excluded.append(Excluded(peer.city, f"not of similar size ({peer.devices:,} devices against "
                                                f"{devices:,})"))
        else:
            peers.append(peer)
    by: dict[str, str] = {}
    stats: dict[str, dict[str, Any]] = {}
    for row in rows:
        values = [p.values[row.key] for p in peers if row.key in p.values]
        if row.actual is None:
            continue
        if len(values) < MIN_PEERS:
            by[row.key] = f"{len(values)} peer{'s' if len(values) != 1 else ''}: too few"
            continue
        s = stand(float(row.actual), values, row.better)
        stats[row.key] = s
        unit = "%" if row.unit == "%" else ""
        by[row.key] = f"peers {s['median']:.0f}{unit} · {s['rank']}/{s['of']} · Q{_Q[s['quartile']]}"
    if len(peers) < MIN_PEERS:
        sentence = (f"{len(peers)} peer cit{'y' if len(peers) == 1 else 'ies'} of similar size with recent data: "
                    f"at least {MIN_PEERS} are needed to compare, so no comparison is shown.")
    else:
        sentence = (f"Peers: {len(peers)} cities of similar size ({size_band(devices)}), from their open data: "
                    f"their median · our rank (1 = best) · our quarter (Q1 = best).")
    return CohortView(peers=peers, excluded=excluded, by_measure=by, stats=stats, sentence=sentence)

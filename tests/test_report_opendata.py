"""Open data: the scorecard's city-wide figures as a long CSV, a Frictionless descriptor and a
DCAT entry; no device name, address, serial, vulnerability or finding text leaves in them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
import report_city

from reports.model import build_monthly
from reports.opendata import COLUMNS, write_opendata

AS_OF = dt.date(2026, 10, 25)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    # The synthetic city: one device named with HTML/script, two that cannot be reached.
    city, store = report_city.build(tmp_path_factory.mktemp("opendata") / "city.db", n=60, months=6)
    yield city, store
    store.close()


def _device_strings(store) -> set[str]:
    out: set[str] = set()
    for d in store.devices():
        for key in ("name", "hostname", "address", "serial", "mac", "identity_key", "ssh_host_key", "model"):
            if d.get(key):
                out.add(str(d[key]))
    for f in store.db.query("select summary, detail, evidence, title from findings"):
        out |= {str(v) for v in f.values() if v}
    for r in store.db.query("select summary from check_results where summary != ''"):
        out.add(str(r["summary"]))
    return {s for s in out if len(s) >= 4}


def test_no_device_level_text_leaves(city, tmp_path: Path) -> None:
    c, store = city
    paths = write_opendata(c, store, as_of=AS_OF, out_dir=tmp_path)
    assert [p.name for p in paths] == ["springfield-it-measures-2026-10.csv", "datapackage.json", "dcat.jsonld"]
    text = "\n".join(p.read_text() for p in paths)
    secrets = _device_strings(store)
    assert report_city.HOSTILE in secrets and len(secrets) > 100  # the check below has something to find
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []
    assert "<script" not in text and "CVE-" not in text and "10.20." not in text


def test_csv_is_long_format_and_agrees_with_the_scorecard(city, tmp_path: Path) -> None:
    c, store = city
    csv_path = write_opendata(c, store, as_of=AS_OF, out_dir=tmp_path)[0]
    raw = csv_path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # plain UTF-8 for portals
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert list(rows[0]) == [name for name, _, _ in COLUMNS]
    rep = build_monthly(c, store, as_of=AS_OF)
    now = {r["measure_id"]: r for r in rows if r["period"] == "2026-10"}
    assert set(now) == {k.key for k in rep.kpis}
    for k in rep.kpis:
        r = now[k.key]
        if k.actual is None:
            assert r["actual"] == "" and r["status"] == "No data"
            continue
        assert float(r["actual"]) == pytest.approx(k.actual, abs=0.01)
        assert float(r["target"]) == k.target
        if r["denominator"]:
            assert float(r["numerator"]) / float(r["denominator"]) * 100 == pytest.approx(k.actual, abs=0.01)
        assert r["data_date"] == "2026-10-20"
    periods = sorted({r["period"] for r in rows})
    assert periods[0] == "2026-05" and periods[-1] == "2026-10"  # from the first scan, not before it
    assert len(rows) == len(periods) * len(rep.kpis)


def test_descriptors_describe_the_csv(city, tmp_path: Path) -> None:
    c, store = city
    csv_path, pkg_path, dcat_path = write_opendata(c, store, as_of=AS_OF, out_dir=tmp_path)
    pkg = json.loads(pkg_path.read_text())
    res = pkg["resources"][0]
    assert pkg["profile"] == "tabular-data-package" and res["path"] == csv_path.name
    header = csv_path.read_text().splitlines()[0].split(",")
    assert [f["name"] for f in res["schema"]["fields"]] == header
    assert res["schema"]["primaryKey"] == ["period", "measure_id"]
    assert pkg["temporal"] == {"start": "2026-05", "end": "2026-10"}
    dcat = json.loads(dcat_path.read_text())
    assert dcat["@type"] == "dcat:Dataset" and dcat["dct:publisher"]["foaf:name"] == "Springfield"
    assert dcat["dcat:distribution"][0]["dcat:downloadURL"] == csv_path.name
    with pytest.raises(ValueError, match="unknown report format"):
        write_opendata(c, store, as_of=AS_OF, out_dir=tmp_path, formats=("xlsx",))

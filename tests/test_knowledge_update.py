"""`itaudit data update`: validation and the keep-the-old-copy failure path, never the network."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from itaudit import datatools, knowledge_cli
from itaudit.errors import KnowledgeError
from itaudit.knowledge import Knowledge, shipped_data_dir

REF_KEV = {
    "title": "CISA KEV",
    "catalogVersion": "2026.11.20",
    "dateReleased": "2026-11-20T12:00:00Z",
    "count": 1,
    "vulnerabilities": [
        {
            "cveID": "CVE-2026-0001",
            "vendorProject": "Fortinet",
            "product": "FortiOS",
            "vulnerabilityName": "FortiOS test flaw",
            "dateAdded": "2026-11-19",
            "shortDescription": "x",
            "requiredAction": "patch",
            "dueDate": "2026-12-10",
            "knownRansomwareCampaignUse": "Known",
            "notes": "",
            "cwes": [],
        }
    ],
}


def _api(release_name: str) -> dict:
    return {
        "schema_version": "1.2.0",
        "generated_at": "2026-11-20T00:00:00Z",
        "result": {
            "name": "fortios",
            "label": "FortiOS",
            "releases": [
                {
                    "name": release_name,
                    "codename": None,
                    "label": release_name,
                    "releaseDate": "2024-07-25",
                    "isLts": False,
                    "ltsFrom": None,
                    "isEoas": False,
                    "eoasFrom": "2028-07-25",
                    "isEol": False,
                    "eolFrom": "2030-01-25",
                    "isMaintained": True,
                    "latest": {"name": "7.6.9", "date": None, "link": "https://docs.fortinet.com/"},
                }
            ],
        },
    }


def fake_fetch(table: dict):
    def fetch(url: str) -> bytes:
        if url not in table:
            raise OSError(f"network unreachable: {url}")
        v = table[url]
        return v if isinstance(v, bytes) else json.dumps(v).encode()

    return fetch


def _seed(tmp_path):
    for name in ("lifecycle.json", "kev.json"):
        shutil.copy(shipped_data_dir() / name, tmp_path / name)
    return {n: (tmp_path / n).read_bytes() for n in ("lifecycle.json", "kev.json")}


def test_network_failure_keeps_old_copies(tmp_path):
    before = _seed(tmp_path)
    report = datatools.update_data(tmp_path, fetch=fake_fetch({}), products=["fortios"])
    assert not report.ok and set(report.failed) == {"lifecycle.json", "kev.json"}
    assert "network unreachable" in report.failed["kev.json"]
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_garbage_download_is_refused_and_old_copy_kept(tmp_path):
    before = _seed(tmp_path)
    fetch = fake_fetch(
        {
            datatools.ENDOFLIFE_API.format(product="fortios"): b"<html>oops</html>",
            datatools.KEV_FEED: {"unexpected": True},
        }
    )
    report = datatools.update_data(tmp_path, fetch=fetch, products=["fortios"])
    assert "not JSON" in report.failed["lifecycle.json"]
    assert "not a CISA KEV catalog" in report.failed["kev.json"]
    assert {n: (tmp_path / n).read_bytes() for n in before} == before


def test_wrong_api_schema_is_refused():
    with pytest.raises(KnowledgeError, match="schema_version"):
        datatools.product_from_api("fortios", {"schema_version": "2.0.0", "result": {"releases": []}})


def test_good_download_is_written_atomically_and_loads(tmp_path):
    fetch = fake_fetch(
        {datatools.ENDOFLIFE_API.format(product="fortios"): _api("7.6"), datatools.KEV_FEED: REF_KEV}
    )
    report = datatools.update_data(
        tmp_path, fetch=fetch, products=["fortios"], today=__import__("datetime").date(2026, 11, 20)
    )
    assert report.ok, report.failed
    kn = Knowledge.load(tmp_path)
    assert kn.data_dates()["lifecycle"] == "2026-11-20" and kn.data_dates()["kev"] == "2026-11-20"
    ans = kn.lifecycle("fortios", "7.6.2", as_of=__import__("datetime").date(2026, 11, 23))
    assert ans.status == "supported" and str(ans.eol) == "2030-01-25"
    assert [e.cve for e in kn.kev_matches("fortios")] == ["CVE-2026-0001"]
    assert "notes" not in json.loads((tmp_path / "kev.json").read_text())["vulnerabilities"][0]


def test_shipped_lifecycle_matches_reference_source():
    """The shipped snapshot is what the generator makes from ../shared/reference (skips without it)."""
    ref = knowledge_cli.ROOT.parent / "shared" / "reference" / "endoflife"
    if not ref.exists():
        pytest.skip("reference checkout not present")
    pytest.importorskip("yaml")
    doc = datatools.build_lifecycle_from_reference(ref, snapshot="2026-08-22", commit="a70eca3")
    shipped = json.loads((shipped_data_dir() / "lifecycle.json").read_text())
    assert doc == shipped


def test_cli_data_update_failure_exit_code_and_message(tmp_path, monkeypatch):
    before = _seed(tmp_path)
    monkeypatch.setattr(knowledge_cli, "FETCH", fake_fetch({}))
    monkeypatch.setattr(knowledge_cli, "VULN_GET", lambda url, headers: (_ for _ in ()).throw(OSError("offline")))
    res = CliRunner().invoke(knowledge_cli.data_group, ["update", "--data-dir", str(tmp_path)])
    assert res.exit_code == 3  # 1 means "findings at or above --fail-on"; a partial update is 3
    assert "previous copy stays in use" in res.output
    assert {n: (tmp_path / n).read_bytes() for n in before} == before


def test_cli_lifecycle_json():
    res = CliRunner().invoke(
        knowledge_cli.lifecycle_cmd, ["ubuntu", "22.04.4", "--as-of", "2026-11-23", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["status"] == "ending_soon" and doc["cycle"] == "22.04" and doc["eol"] == "2027-04-01"
    assert doc["data_date"] == "2026-08-22" and "endoflife.date" in doc["source"]
    res = CliRunner().invoke(
        knowledge_cli.lifecycle_cmd,
        ["windows", "10.0.19045", "--edition", "Pro", "--as-of", "2026-11-23", "--extended-bought"],
    )
    assert "extended" in res.output and "2028-10-10" in res.output
    bad = CliRunner().invoke(knowledge_cli.lifecycle_cmd, ["ubuntu", "22.04", "--as-of", "yesterday"])
    assert bad.exit_code == 2

"""Lifecycle lookups on real version strings, KEV matching, and refusing bad data files."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from itaudit.errors import KnowledgeError
from itaudit.knowledge import Knowledge, load_preferred, shipped_data_dir, windows_edition_class

AS_OF = dt.date(2026, 11, 23)
SNAPSHOT = dt.date(2026, 8, 22)


@pytest.fixture(scope="module")
def kn() -> Knowledge:
    return Knowledge.load()


@pytest.mark.parametrize(
    ("product", "version", "edition", "as_of", "status", "cycle"),
    [
        # Windows by build and edition
        ("windows", "10.0.19045", "Professional", AS_OF, "eol", "10-22h2"),
        ("windows", "10.0.19045", None, AS_OF, "eol", "10-22h2"),
        ("windows", "19045.4291", "Enterprise", AS_OF, "eol", "10-22h2"),
        ("windows", "10.0.26100", "Enterprise", SNAPSHOT, "supported", "11-24h2-e"),
        ("windows", "10.0.26100", "Enterprise", AS_OF, "ending_soon", "11-24h2-e"),
        ("windows", "10.0.26100", "Professional", AS_OF, "eol", "11-24h2-w"),
        ("windows", "10.0.26100", "EnterpriseS", AS_OF, "supported", "11-24h2-e-lts"),
        ("windows", "10.0.26100", "IoT Enterprise LTSC", AS_OF, "supported", "11-24h2-iot-lts"),
        ("windows", "10.0.22631", "Pro", AS_OF, "eol", "11-23h2-w"),
        ("windows", "10.0.17763", "Enterprise LTSC", AS_OF, "supported", "10-1809-e-lts"),
        ("windows", "6.1.7601", None, AS_OF, "eol", "7-sp1"),
        # Windows Server by build
        ("windows-server", "6.3.9600", None, AS_OF, "eol", "2012-r2"),
        ("windows-server", "10.0.14393", None, AS_OF, "ending_soon", "2016"),
        ("windows-server", "10.0.17763", None, AS_OF, "supported", "2019"),
        ("windows-server", "10.0.20348", None, AS_OF, "supported", "2022"),
        ("windows-server", "10.0.26100", None, AS_OF, "supported", "2025"),
        # Linux point releases
        ("ubuntu", "22.04.4", None, AS_OF, "ending_soon", "22.04"),
        ("ubuntu", "22.04.3 LTS", None, dt.date(2026, 1, 1), "supported", "22.04"),
        ("ubuntu", "18.04.6", None, AS_OF, "eol", "18.04"),
        ("debian", "11.9", None, AS_OF, "eol", "11"),
        ("debian", "12.5", None, AS_OF, "extended", "12"),
        ("rhel", "8.9", None, AS_OF, "supported", "8"),
        ("rocky", "8.9", None, AS_OF, "supported", "8"),
        ("almalinux", "9.3", None, AS_OF, "supported", "9"),
        ("centos", "7.9.2009", None, AS_OF, "eol", "7"),
        # network firmware
        ("fortios", "7.2.5", None, AS_OF, "eol", "7.2"),
        ("fortios", "7.4.3", None, AS_OF, "supported", "7.4"),
        ("panos", "10.2.3-h4", None, AS_OF, "eol", "10.2"),
        ("pan-os", "11.1.2-h3", None, dt.date(2026, 1, 1), "supported", "11.1"),
        ("ios-xe", "17.9.4a", None, AS_OF, "eol", "17.9"),
        ("ios-xe", "17.12.2", None, AS_OF, "ending_soon", "17.12"),
        ("esxi", "7.0.3", None, AS_OF, "eol", "7.0"),
        ("esxi", "8.0 Update 2", None, SNAPSHOT, "supported", "8.0"),
        ("routeros", "7.21.5", None, AS_OF, "supported", "7.21"),
        # curated rows
        ("junos", "21.4R3-S5", None, AS_OF, "eol", "10.x-22.x"),
        ("ios", "12.2(55)SE12", None, AS_OF, "eol", "12.x"),
        ("asa", "9.8(4)", None, AS_OF, "eol", "9.0-9.8"),
        ("pfsense", "2.8.1", None, AS_OF, "supported", "2.8"),
        ("dsm", "6.2.4-25556", None, AS_OF, "eol", "6.2"),
    ],
)
def test_lifecycle_real_versions(kn, product, version, edition, as_of, status, cycle):
    ans = kn.lifecycle(product, version, edition=edition, as_of=as_of)
    assert (ans.status, ans.cycle) == (status, cycle), ans.reason
    assert ans.source and ans.data_date == "2026-08-22"


@pytest.mark.parametrize(
    ("product", "version", "edition"),
    [
        ("ubuntu", "foo", None),
        ("foo", "1.0", None),
        ("windows", "10.0.26100", None),  # editions disagree: needs the edition
        ("windows", "10.0.99999", "Pro"),
        ("windows", "Windows 10", None),
        ("fortios", "7.3.1", None),  # no such cycle
        ("fortios", "", None),
        ("junos", "23.4R2", None),  # not curated: unknown, never eol
        ("ios", "15.2(7)E8", None),
        ("ubuntu", "30.04", None),  # newer than the data
    ],
)
def test_versions_not_understood_are_unknown_never_eol(kn, product, version, edition):
    ans = kn.lifecycle(product, version, edition=edition, as_of=AS_OF)
    assert ans.status == "unknown"
    assert ans.reason


def test_windows10_esu_is_paid_extended(kn):
    bought = kn.lifecycle("windows", "10.0.19045", edition="Pro", as_of=AS_OF, paid_extended=True)
    assert bought.status == "extended" and bought.extended_kind == "paid"
    assert bought.eoes == dt.date(2028, 10, 10)
    after = kn.lifecycle(
        "windows", "10.0.19045", edition="Pro", as_of=dt.date(2028, 10, 11), paid_extended=True
    )
    assert after.status == "eol"


def test_ubuntu_esm_is_paid_and_debian_lts_free(kn):
    assert kn.lifecycle("ubuntu", "18.04", as_of=AS_OF).status == "eol"
    assert kn.lifecycle("ubuntu", "18.04", as_of=AS_OF, paid_extended=True).status == "extended"
    deb = kn.lifecycle("debian", "12", as_of=AS_OF)
    assert deb.status == "extended" and deb.extended_kind == "free"


def test_release_argument_and_server_name_fallback(kn):
    assert kn.lifecycle("windows", None, release="10-22h2", as_of=AS_OF).cycle == "10-22h2"
    ans = kn.lifecycle("windows-server", None, name="Microsoft Windows Server 2008 R2 Standard", as_of=AS_OF)
    assert (ans.status, ans.cycle) == ("eol", "2008-r2-sp1")


@pytest.mark.parametrize(
    ("edition", "cls"),
    [
        ("Professional", "w"),
        ("Core", "w"),
        ("ProfessionalEducation", "w"),
        ("Pro for Workstations", "w"),
        ("Enterprise", "e"),
        ("Education", "e"),
        ("EnterpriseS", "e-lts"),
        ("Enterprise LTSC", "e-lts"),
        ("IoTEnterpriseS", "iot-lts"),
        ("Datacenter", None),
    ],
)
def test_windows_edition_class(edition, cls):
    assert windows_edition_class(edition) == cls


def test_data_dates(kn):
    assert kn.data_dates() == {
        "lifecycle": "2026-08-22",
        "lifecycle_curated": "2026-08-22",
        "kev": "2026-08-07",
        "vulns": "2025-01-24",
    }
    assert "MIT" in kn.data_sources()["lifecycle"] and "CC0" in kn.data_sources()["kev"]
    assert "vulnrichment" in kn.data_sources()["vulns"]


def test_kev_matches_by_family(kn):
    forti = kn.kev_matches("fortios")
    assert forti and all(e.vendor == "Fortinet" and e.product.startswith("FortiOS") for e in forti)
    assert all(e.due_date for e in forti)
    assert any(e.ransomware for e in kn.kev_matches("windows"))
    recent = kn.kev_matches("windows", since=dt.date(2025, 6, 1))
    assert recent and all(e.date_added > dt.date(2025, 6, 1) for e in recent)
    assert kn.kev_knows("panos") and not kn.kev_knows("printer-os")
    assert kn.kev_matches("printer-os") == []
    assert kn.kev_entry("CVE-2025-48384").vendor == "Git"


# --- bad data files --------------------------------------------------------------------


def _copy(tmp_path):
    for name in ("lifecycle.json", "kev.json"):
        shutil.copy(shipped_data_dir() / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("lifecycle.json", "{not json", "corrupt"),
        ("lifecycle.json", json.dumps({"format": "something-else/9"}), "unknown format"),
        (
            "lifecycle.json",
            json.dumps(
                {
                    "format": "itaudit-lifecycle/1",
                    "snapshot": "2026-01-01",
                    "products": {"x": {"releases": [{"cycle": "1", "eol": "31/12/2025"}]}},
                }
            ),
            "bad date",
        ),
        ("kev.json", "", "corrupt"),
        (
            "kev.json",
            json.dumps({"format": "itaudit-kev/1", "vulnerabilities": [{"cveID": "nope"}]}),
            "cveID",
        ),
    ],
)
def test_corrupt_or_unknown_files_are_refused(tmp_path, name, content, message):
    d = _copy(tmp_path)
    (d / name).write_text(content)
    with pytest.raises(KnowledgeError, match=message):
        Knowledge.load(d)
    kn, warning = load_preferred(d)
    assert warning and "shipped copy" in warning
    assert kn.data_dates()["lifecycle"] == "2026-08-22"


def test_curated_row_without_source_is_refused():
    from itaudit.knowledge import validate_curated

    doc = json.loads((shipped_data_dir() / "lifecycle_curated.json").read_text())
    validate_curated(doc)
    del doc["products"]["junos"]["releases"][0]["source"]
    with pytest.raises(KnowledgeError, match="source"):
        validate_curated(doc)


def test_override_dir_wins(tmp_path):
    d = _copy(tmp_path)
    doc = json.loads((d / "lifecycle.json").read_text())
    doc["snapshot"] = "2027-01-01"
    (d / "lifecycle.json").write_text(json.dumps(doc))
    assert Knowledge.load(d).data_dates()["lifecycle"] == "2027-01-01"
    assert load_preferred(d)[0].data_dates()["lifecycle"] == "2027-01-01"

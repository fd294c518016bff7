"""The Windows probe parser on every recorded case (tests/fixtures/windows/<case>/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_parsers_linux import compare

from collectors.windows import decode_output, parse_windows
from itaudit.model import DeviceFacts

FIX = Path(__file__).parent / "fixtures" / "windows"
CASES = sorted(p for p in FIX.iterdir() if (p / "probe.txt").exists())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_windows_case(case: Path) -> None:
    facts = parse_windows((case / "probe.txt").read_bytes())
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    assert compare(facts, expected) == []
    assert facts.software.os_family == "windows"
    assert facts.to_dict() == DeviceFacts.from_dict(facts.to_dict()).to_dict()


def test_at_least_the_required_cases() -> None:
    required = {"win10-22h2", "win11-23h2", "win11-24h2", "winserver-2012r2", "winserver-2016", "winserver-2019",
                "winserver-2022", "ps51-single-object", "non-english-de"}
    assert required <= {c.name for c in CASES}


@pytest.mark.parametrize(("build", "edition", "release"), [
    (19045, "Professional", "10-22h2"), (19044, "Enterprise", "10-21h2-e"), (19044, "EnterpriseS", "10-21h2-e-lts"),
    (22631, "Professional", "11-23h2-w"), (22631, "Education", "11-23h2-e"), (26100, "Core", "11-24h2-w"),
    (26100, "IoTEnterpriseS", "11-24h2-iot-lts"), (17763, "Professional", "10-1809-w"),
    (19041, "Professional", "10-2004"),
])
def test_client_release_cycles(build: int, edition: str, release: str) -> None:
    probe = ("=== SECTION os ===\n" + json.dumps({"Caption": "Microsoft Windows", "BuildNumber": str(build),
                                                 "Version": f"10.0.{build}", "ProductType": 1})
             + "\n=== SECTION cv ===\n" + json.dumps({"EditionID": edition, "UBR": 1}) + "\n=== END ===\n")
    assert parse_windows(probe).software.release == release


def test_output_in_utf16_and_codepage_decodes() -> None:
    text = (FIX / "non-english-de" / "probe.txt").read_text(encoding="utf-8")
    for raw in (text.encode("utf-16"), text.encode("utf-16-le"), text.encode("cp1252")):
        facts = parse_windows(raw)
        assert facts.software.release == "10-22h2"
        assert "STADT\\Domänen-Admins" in (facts.posture.local_admins or [])
    assert decode_output(b"\xff\xfeA\x00") == "A"


def test_truncated_json_section_is_unknown() -> None:
    text = (FIX / "win10-22h2" / "probe.txt").read_text()
    cut = text[: text.index("=== SECTION defender ===") + 60]
    facts = parse_windows(cut)
    assert facts.software.release == "10-22h2"
    assert facts.posture.antivirus is None and "posture.antivirus" in facts.gaps
    assert facts.posture.firewall_active is None and "cut short" in facts.gaps["posture.firewall_active"]

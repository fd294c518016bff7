"""Property tests: truncated, garbled, oversized and non-UTF-8 probe output never breaks a parser,
and every fact lost to damage is unknown with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.linux import SECTION_FIELDS as LINUX_FIELDS
from collectors.linux import parse_linux
from collectors.windows import SECTION_FIELDS as WINDOWS_FIELDS
from collectors.windows import parse_windows
from itaudit.model import MAX_TEXT, DeviceFacts

FIX = Path(__file__).parent / "fixtures"
PARSERS = {"linux": (parse_linux, LINUX_FIELDS), "windows": (parse_windows, WINDOWS_FIELDS)}
SAMPLES = {p: sorted((FIX / p).glob("*/probe.txt")) for p in PARSERS}
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fields(sections: dict[str, tuple[str, ...]]) -> list[str]:
    return sorted({f for fs in sections.values() for f in fs})


def _bounded(obj) -> bool:
    """No string in the facts is longer than the model's bound (except raw evidence)."""
    if isinstance(obj, dict):
        return all(_bounded(v) for k, v in obj.items() if k != "evidence")
    if isinstance(obj, list):
        return all(_bounded(v) for v in obj)
    return not isinstance(obj, str) or len(obj) <= MAX_TEXT


def _check(facts: DeviceFacts) -> None:
    assert isinstance(facts, DeviceFacts)
    d = facts.to_dict()
    json.dumps(d)
    assert _bounded(d)


@pytest.mark.parametrize("platform", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_truncated_output_loses_facts_only_with_a_reason(platform: str, data) -> None:
    parse, sections = PARSERS[platform]
    sample = data.draw(st.sampled_from(SAMPLES[platform]))
    raw = sample.read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    full, part = parse(raw), parse(raw[:cut])
    _check(part)
    for f in _fields(sections):
        if full.get(f) not in (None, []) and part.get(f) in (None, []):
            assert f in part.gaps, f"{sample.parent.name} cut at {cut}: {f} lost without a reason"


@pytest.mark.parametrize("platform", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_garbled_output_never_raises(platform: str, data) -> None:
    parse, _ = PARSERS[platform]
    raw = bytearray(data.draw(st.sampled_from(SAMPLES[platform])).read_bytes())
    for _ in range(data.draw(st.integers(0, 30))):
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        junk = data.draw(st.binary(min_size=1, max_size=40))
        if data.draw(st.booleans()):
            raw[pos:pos + len(junk)] = junk
        else:
            raw[pos:pos] = junk
    _check(parse(bytes(raw)))


@pytest.mark.parametrize("platform", sorted(PARSERS))
@FUZZ
@given(body=st.lists(st.one_of(st.text(max_size=200), st.sampled_from([
    "=== SECTION os-release ===", "=== SECTION os ===", "=== SECTION dmi ===", "=== SECTION packages ===",
    "=== SECTION hotfixes ===", "=== SECTION listening ===", "=== SECTION sshd ===", "=== END ===",
    "pm=dpkg", "tool=ss", "tool=apt", "source=config", "--- /etc/ssh/sshd_config", '{"_error": "x"}', "[]",
    '{"BuildNumber": "99999", "ProductType": "x"}', "rc=100", "--- security", "!no-dmi", "=== SECTION cpu ===",
])), max_size=60))
def test_random_sections_never_raise(platform: str, body: list[str]) -> None:
    parse, _ = PARSERS[platform]
    _check(parse("\n".join(body)))


@pytest.mark.parametrize("platform", sorted(PARSERS))
def test_oversized_lines_and_sections_are_bounded(platform: str) -> None:
    parse, _ = PARSERS[platform]
    huge = "A" * 3_000_000
    probe = f"=== SECTION hostname ===\n{huge}\n=== SECTION os ===\n{{\"Caption\": \"{huge}\"}}\n" + \
        "=== SECTION os-release ===\n" + f'PRETTY_NAME="{huge}"\nID=debian\nVERSION_ID="12"\n' * 3 + "=== END ===\n"
    _check(parse(probe.encode()))


@pytest.mark.parametrize("platform", sorted(PARSERS))
def test_empty_and_none(platform: str) -> None:
    parse, sections = PARSERS[platform]
    for raw in (b"", None, b"\x00\xff\xfe", "no sections at all"):
        facts = parse(raw)
        _check(facts)
        assert all(f in facts.gaps for f in _fields(sections) if facts.get(f) in (None, []))

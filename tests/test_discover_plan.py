"""Discovery planning: only configured ranges, and bad ranges refused with the address count."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from itaudit.config import load
from itaudit.discover import plan_sweep
from itaudit.errors import ConfigError
from itaudit.store import Store


def _config(tmp_path: Path, discovery: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(f"""
[settings]
data_dir = "{tmp_path / 'data'}"
[cities.testville]
name = "Testville"
[cities.testville.discovery]
{discovery}
""", encoding="utf-8")
    return p


def _city(tmp_path: Path, discovery: str):  # type: ignore[no-untyped-def]
    return load(_config(tmp_path, discovery)).city("testville")


def test_configured_ranges_minus_exclusions(tmp_path: Path) -> None:
    city = _city(tmp_path, 'ranges = ["127.0.7.0/28"]\nexclude = ["127.0.7.8/30"]')
    plan = plan_sweep(city)
    assert plan.addresses[0] == "127.0.7.1" and plan.addresses[-1] == "127.0.7.14"
    assert not {"127.0.7.8", "127.0.7.9", "127.0.7.10", "127.0.7.11"} & set(plan.addresses)
    assert len(plan.addresses) == 10
    assert not plan.allows("127.0.7.9") and not plan.allows("127.0.8.1") and plan.allows("127.0.7.3")


def test_command_line_range_must_be_inside_configured(tmp_path: Path) -> None:
    city = _city(tmp_path, 'ranges = ["127.0.7.0/24"]')
    assert plan_sweep(city, ["127.0.7.16/29"]).addresses == [f"127.0.7.{i}" for i in range(17, 23)]
    for outside in ("127.0.6.0/24", "127.0.0.0/16"):
        with pytest.raises(ConfigError, match=r"outside the configured ranges") as exc:
            plan_sweep(city, [outside], force=True)  # --force never widens the ranges
        assert "addresses" in str(exc.value)


def test_malformed_range_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _city(tmp_path, 'ranges = ["10.1.0.0/33"]')
    assert exc.value.key == "cities.testville.discovery.ranges[0]"
    city = _city(tmp_path, 'ranges = ["127.0.7.0/24"]')
    with pytest.raises(ConfigError, match="not an address range"):
        plan_sweep(city, ["127.0.7.x"])


def test_enormous_range_needs_force_and_says_how_many(tmp_path: Path) -> None:
    city = _city(tmp_path, 'ranges = ["10.0.0.0/8"]')
    for force in (False, True):  # a /8 by mistake: beyond the hard limit, even forced
        with pytest.raises(ConfigError, match="refusing to sweep 16777216 addresses"):
            plan_sweep(city, force=force)
    big = _city(tmp_path, 'ranges = ["10.1.0.0/19"]')
    with pytest.raises(ConfigError, match="would touch 8192 addresses .* pass --force"):
        plan_sweep(big)
    assert len(plan_sweep(big, force=True).addresses) == 8190
    city = _city(tmp_path, 'ranges = ["10.1.0.0/20"]')
    assert len(plan_sweep(city).addresses) == 4094  # exactly at the limit: allowed


def test_overlapping_ranges_need_force(tmp_path: Path) -> None:
    city = _city(tmp_path, 'ranges = ["127.0.7.0/24", "127.0.7.128/25"]')
    with pytest.raises(ConfigError, match=r"overlap \(384 addresses"):
        plan_sweep(city)
    plan = plan_sweep(city, force=True)
    assert len(plan.addresses) == 254 == len(set(plan.addresses))


@pytest.mark.parametrize("bad, key", [
    ("rate = 0", "rate"), ("concurrency = 0", "concurrency"), ("ports = [0]", "ports"),
    ("auto_add = 1", "auto_add"), ("colour = 1", "colour"),
])
def test_bad_discovery_keys_name_the_key(tmp_path: Path, bad: str, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _city(tmp_path, bad)
    assert exc.value.key == f"cities.testville.discovery.{key}"


def test_inventory_completeness_counts(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.db")
    assert store.inventory_completeness(dt.date(2026, 11, 1)) == (0, 0)
    with store.tx():
        store._insert("devices", {"city_id": "t", "identity_key": "k1", "protocol": "ssh", "address": "10.0.0.1",
                                  "first_seen": "2026-10-01T00:00:00+00:00"})
    d = store.begin_discovery("t", ["10.0.0.0/24"], 254, now="2026-10-05T00:00:00+00:00")
    for addr in ("10.0.0.1", "10.0.0.7", "10.0.0.9"):
        store.record_sighting(d, {"address": addr, "open_ports": [80]}, now="2026-10-05T00:00:00+00:00")
    store.finish_discovery(d, now="2026-10-05T00:01:00+00:00")
    assert store.inventory_completeness(dt.date(2026, 10, 31)) == (1, 2)
    assert store.inventory_completeness(dt.date(2026, 10, 4)) == (1, 0)  # before the sweep
    assert store.discoveries()[0]["n_unmanaged"] == 3


def test_register_reconciled_by_address_and_device(tmp_path: Path) -> None:
    from itaudit.discover import reconcile_register

    store = Store(tmp_path / "r.db")
    with store.tx():
        dev = store._insert("devices", {"city_id": "t", "identity_key": "k", "protocol": "ssh", "address": "10.0.0.50"})
        for key, addr, device in (("A1", "10.0.0.1", None), ("A2", "10.0.0.2", None), ("A3", "10.0.0.3", dev)):
            store._insert("assets", {"key": key, "address": addr, "device_id": device})
    d = store.begin_discovery("t", ["10.0.0.0/24"], 254, now="2026-11-20T00:00:00+00:00")
    sightings = [{"address": "10.0.0.1", "open_ports": [22]}, {"address": "10.0.0.9", "open_ports": [80]},
                 {"address": "10.0.0.50", "open_ports": [22], "device_id": dev}]  # A3 moved by DHCP
    for s in sightings:
        store.record_sighting(d, s, now="2026-11-20T00:00:00+00:00")
    store.finish_discovery(d)
    out = reconcile_register(store, sightings, as_of=dt.date(2026, 11, 23))
    assert out is not None
    assert [r["key"] for r in out["not_seen"]] == ["A2"]
    assert out["not_in_register"] == ["10.0.0.9"]
    # 30 days later nothing was seen: every register line is stale.
    late = reconcile_register(store, [], as_of=dt.date(2027, 1, 1))
    assert late is not None and len(late["not_seen"]) == 3

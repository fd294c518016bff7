"""Extended-support offers and their prices: one table, one rule (``rules.deferral_price``),
used by EOL-003, the plan, the do-nothing projection and the budget request."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from itaudit import rules
from itaudit.errors import ConfigError
from itaudit.knowledge import Knowledge, lifecycle_for_facts, shipped_data_dir
from itaudit.model import DeviceFacts
from itaudit.policy import extended_offers, parse_policy
from reports.projection import build_projection
from reports.request import build_request
from tests import history_city

AS_OF = dt.date(2026, 11, 25)


def test_every_offer_has_a_source_a_date_and_prices_that_never_fall():
    doc = json.loads((shipped_data_dir() / "extended_support.json").read_text())
    assert doc["format"] == "itaudit-extended-support/1"
    for oid, row in doc["offers"].items():
        assert row["source"].startswith("https://") and dt.date.fromisoformat(row["checked"]), oid
        known = [p for p in row["per_unit_by_year"] if p is not None]
        assert known == sorted(known), f"{oid}: a later year is never cheaper"
        assert len(row["per_unit_by_year"]) == row["years"], oid


def test_each_offer_reaches_real_lifecycle_cycles():
    # An offer whose cycles match nothing in the lifecycle data would never be priced.
    lifecycle = json.loads((shipped_data_dir() / "lifecycle.json").read_text())["products"]
    for oid, row in extended_offers().items():
        cycles = [r["cycle"] for p in row["products"] for r in (lifecycle[p]["releases"] if isinstance(
            lifecycle[p], dict) else lifecycle[p])]
        assert any(row["pattern"].search(c) for c in cycles), oid


def test_windows10_prices_by_year_and_end():
    start = dt.date(2025, 10, 14)
    years = [rules.deferral_price(None, "windows-10-esu", start, start + dt.timedelta(days=365 * k + 10))
             for k in range(4)]
    assert [(y.year, y.price, y.available) for y in years] == [
        (1, 61.0, True), (2, 122.0, True), (3, 244.0, True), (4, None, False)]
    assert years[0].next_price == 122.0 and years[2].next_price is None
    assert "none can be bought" in years[3].words()


def test_no_public_price_says_ask_the_vendor():
    p = rules.deferral_price(None, "rhel-7-els", dt.date(2024, 6, 30), AS_OF)
    assert p.available and p.price is None and not p.known
    assert p.words().endswith("no public price: ask the vendor")


def test_the_city_price_wins_and_is_named():
    pol = parse_policy({"extended_support_prices": {"rhel-7-els": [300, 300, 350, 400]}}, "cities.x.policy")
    p = rules.deferral_price(pol, "rhel-7-els", dt.date(2024, 6, 30), AS_OF)
    assert (p.year, p.price, p.source) == (3, 350.0, "city policy")


def test_end_of_extended_support_closes_the_offer():
    eol, eoes = dt.date(2023, 10, 10), dt.date(2026, 10, 13)  # Windows Server 2012 R2
    assert rules.offer_for("windows-server", "2012-r2") == "windows-server-2012-esu"
    assert rules.deferral_price(None, "windows-server-2012-esu", eol, dt.date(2026, 10, 1), eoes).available
    assert not rules.deferral_price(None, "windows-server-2012-esu", eol, dt.date(2026, 10, 20), eoes).available


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"nope": [1]}, "cities.x.policy.extended_support_prices.nope", "unknown offer"),
    ({"rhel-7-els": [1, 2]}, "cities.x.policy.extended_support_prices.rhel-7-els", "list of 4 prices"),
    ({"windows-10-esu": [61, -1, 3]}, "cities.x.policy.extended_support_prices.windows-10-esu", "negative"),
    ({"windows-10-esu": [61, "a", 3]}, "cities.x.policy.extended_support_prices.windows-10-esu[1]", "expected float"),
])
def test_bad_prices_are_config_errors_naming_the_key(table, key, words):
    with pytest.raises(ConfigError) as exc:
        parse_policy({"extended_support_prices": table}, "cities.x.policy")
    assert exc.value.key == key and words in str(exc.value)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("defer") / "city.db"
    c, store = history_city.build(db, n=60, months=24)
    yield c, store
    store.close()


def _offer_devices(store, offer: str) -> list[DeviceFacts]:
    scan = store.report_scans()[-1]
    kn = Knowledge.load()
    out = []
    for o in store.observations(scan.id):
        facts = DeviceFacts.from_dict(json.loads(o["facts"]))
        ans = lifecycle_for_facts(kn, facts.software, as_of=AS_OF)
        if rules.offer_for(ans.product, ans.cycle) == offer:
            out.append(facts)
    return out


def test_projection_prices_every_offer_and_names_the_unpriced(city):
    c, store = city
    ubuntu = _offer_devices(store, "ubuntu-pro-esm")
    assert ubuntu, "the generated city runs Ubuntu 20.04 servers (a real recording)"
    p = build_projection(c, store, as_of=AS_OF)
    rows = [o for o in p.offers if o.offer == "ubuntu-pro-esm"]
    assert [r.devices for r in rows] == [len(ubuntu), len(ubuntu)]
    assert all(r.price is None and r.total is None for r in rows)
    assert "Ubuntu Pro (Expanded Security Maintenance)" in p.unpriced and "ask the vendor" in p.sentences[1]
    # Windows Server 2012 R2 ESU ended 2026-10-13: listed as no longer sold, adds nothing.
    ws = [o for o in p.offers if o.offer == "windows-server-2012-esu"]
    assert ws and all(not o.available for o in ws)
    win10 = sum(o.total or 0 for o in p.offers if o.offer == "windows-10-esu" and o.months == 12)
    assert p.deferral_cost[12] == win10

    # With the city's own Ubuntu Pro price, the deferral cost adds it, year by year, by hand:
    # Ubuntu 20.04 left standard support 2025-05-31; the scan of November 2026 is in paid year 2.
    pol = dataclasses.replace(c.policy, extended_support_prices={"ubuntu-pro-esm": (100.0, 200.0, 300.0, 400.0,
                                                                                  500.0)})
    priced = build_projection(dataclasses.replace(c, policy=pol), store, as_of=AS_OF)
    assert priced.deferral_cost[12] == p.deferral_cost[12] + 200.0 * len(ubuntu)
    assert priced.deferral_cost[24] == p.deferral_cost[24] + (200.0 + 300.0) * len(ubuntu)
    assert "Ubuntu Pro" not in " ".join(priced.unpriced)


def test_request_defers_with_the_same_prices(city):
    c, store = city
    pol = dataclasses.replace(c.policy, extended_support_prices={"windows-server-2012-esu": (900.0, 1800.0, 3600.0)})
    for policy in (c.policy, pol):
        req = build_request(dataclasses.replace(c, policy=policy), store, as_of=AS_OF)
        start, end = dt.date.fromisoformat(req.start), dt.date.fromisoformat(req.end)
        kn = Knowledge.load()
        devices = {d["address"]: d for d in store.devices()}
        seen = False
        for line in req.lines:
            expected = 0.0
            for item in (i for i in build_plan_items(c, store) if i.budget_line == line.account):
                latest = store.latest_facts(int(devices[item.address]["id"]))
                ans = lifecycle_for_facts(kn, latest[1].software, as_of=AS_OF)
                offer = rules.offer_for(ans.product, ans.cycle)
                if offer and ans.eol <= end:
                    p = rules.deferral_price(policy, offer, ans.eol, max(start, ans.eol), ans.eoes)
                    expected += p.price if p.known and p.price else 0.0
                    seen = seen or offer == "windows-server-2012-esu"
            assert line.defer_cost == pytest.approx(expected)
        assert seen, "a Windows Server 2012 R2 server is due in the request's year"
        # Its ESU ended on 2026-10-13 (lifecycle data): no city price can buy a year that is not sold.
        assert any("no longer sold" in line.defer_words for line in req.lines)


def build_plan_items(c, store):
    from reports.plan import build_plan

    plan = build_plan(c, store, as_of=AS_OF)
    return [i for i in plan.items if i.fiscal_year == plan.fiscal_years[1]]

"""Policy defaults, department overrides, TOML validation naming the key, fiscal years."""

from __future__ import annotations

import datetime as dt

import pytest

from itaudit.errors import ConfigError
from itaudit.policy import Policy, fiscal_year_bounds, fiscal_year_of, parse_policy, windows11_requirements

P = "cities.springfield.policy"


def test_defaults_from_shipped_table():
    pol = Policy()
    assert pol.refresh_for("desktop").years == 5 and pol.refresh_for("workstation").cost == 1200
    assert pol.refresh_for("laptop").cost == 1600
    assert pol.refresh_for("laptop", tags=["rugged"]).cost == 4500
    assert pol.refresh_for("switch", tags=["core"]).cost == 20000
    assert pol.refresh_for("server").capital and not pol.refresh_for("wireless").capital
    assert pol.refresh_for("ups-battery").years == 4
    assert pol.refresh_for("toaster").years == pol.refresh["other"].years
    assert windows11_requirements()["tpm_min"] == "2.0"


def test_parse_policy_overrides_and_departments():
    pol = parse_policy(
        {
            "fiscal_year_start_month": 10,
            "labour_rate": 95,
            "esu_purchased": True,
            "extended_support": ["Ubuntu"],
            "capital_budget_line": "101-1410-5740",
            "operating_budget_line": "101-1410-5310",
            "refresh": {
                "server": {"years": 7},
                "camera": {"years": 8, "cost": 900, "budget_line": "101-2110-5310"},
            },
            "criticality_weights": {"water": 2},
            "departments": {
                "police": {"budget_line": "101-2110-5740", "refresh": {"laptop": {"years": 3, "cost": 4800}}}
            },
        },
        P,
    )
    assert pol.refresh_for("server").years == 7 and pol.refresh_for("server").cost == 9000
    assert pol.refresh_for("server").budget_line == "101-1410-5740"
    assert pol.refresh_for("workstation").budget_line == "101-1410-5310"
    assert pol.refresh_for("camera").budget_line == "101-2110-5310"
    police = pol.refresh_for("laptop", "police")
    assert (police.years, police.cost, police.budget_line) == (3, 4800, "101-2110-5740")
    assert pol.refresh_for("laptop", "finance").years == 4
    assert pol.refresh_for("workstation", "police").budget_line == "101-2110-5740"
    assert pol.paid_extended("windows") and pol.paid_extended("ubuntu") and not pol.paid_extended("rhel")
    assert pol.criticality_weight(["water", "finance"]) == 2 and pol.criticality_weight([]) == 1.0
    assert pol.fiscal_year(dt.date(2026, 10, 1)) == 2027


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"patch_max_dayz": 30}, f"{P}.patch_max_dayz"),
        ({"patch_max_days": "30"}, f"{P}.patch_max_days"),
        ({"esu_purchased": 1}, f"{P}.esu_purchased"),
        ({"labour_rate": True}, f"{P}.labour_rate"),
        ({"fiscal_year_start_month": 13}, f"{P}.fiscal_year_start_month"),
        ({"refresh": {"laptop": {"yeers": 3}}}, f"{P}.refresh.laptop.yeers"),
        ({"refresh": {"laptop": {"years": 0}}}, f"{P}.refresh.laptop.years"),
        ({"refresh": {"kiosk": {"years": 3}}}, f"{P}.refresh.kiosk"),
        ({"departments": {"police": {"budgetline": "x"}}}, f"{P}.departments.police.budgetline"),
        (
            {"departments": {"police": {"refresh": {"laptop": {"cost": "a lot"}}}}},
            f"{P}.departments.police.refresh.laptop.cost",
        ),
        ({"extended_support": "ubuntu"}, f"{P}.extended_support"),
        ({"criticality_weights": {"water": "high"}}, f"{P}.criticality_weights.water"),
    ],
)
def test_parse_policy_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as exc:
        parse_policy(table, P)
    assert exc.value.key == key


@pytest.mark.parametrize(
    ("day", "start", "fy"),
    [
        (dt.date(2026, 7, 1), 7, 2027),
        (dt.date(2026, 6, 30), 7, 2026),
        (dt.date(2027, 6, 30), 7, 2027),
        (dt.date(2026, 10, 1), 10, 2027),
        (dt.date(2026, 9, 30), 10, 2026),
        (dt.date(2026, 1, 1), 1, 2026),
        (dt.date(2026, 12, 31), 1, 2026),
    ],
)
def test_fiscal_year_of(day, start, fy):
    assert fiscal_year_of(day, start) == fy


def test_fiscal_year_bounds():
    assert fiscal_year_bounds(2027, 7) == (dt.date(2026, 7, 1), dt.date(2027, 6, 30))
    assert fiscal_year_bounds(2027, 1) == (dt.date(2027, 1, 1), dt.date(2027, 12, 31))
    with pytest.raises(ValueError):
        fiscal_year_of(dt.date(2026, 1, 1), 0)


def test_budget_line_refs_name_their_keys():
    pol = parse_policy(
        {
            "capital_budget_line": "cap",
            "refresh": {"camera": {"years": 8, "cost": 900, "budget_line": "cam"}},
            "departments": {"police": {"budget_line": "pd", "refresh": {"laptop": {"budget_line": "pdl"}}}},
        },
        P,
    )
    assert sorted(pol.budget_line_refs()) == sorted(
        [
            ("capital_budget_line", "cap"),
            ("refresh.camera.budget_line", "cam"),
            ("departments.police.budget_line", "pd"),
            ("departments.police.refresh.laptop.budget_line", "pdl"),
        ]
    )


def test_kpi_targets_and_budgeted_amounts_parse_and_name_bad_keys() -> None:
    from itaudit.policy import parse_policy as _parse

    pol = _parse({"kpi_targets": {"patched": 90, "uncheckable": 2},
                  "budgeted": {"101-1410-5740": {"FY2027": 60000, "fy2028": 45000.5}}}, "cities.x.policy")
    assert pol.kpi_targets == {"patched": 90.0, "uncheckable": 2.0}
    assert pol.budgeted == {"101-1410-5740": {2027: 60000.0, 2028: 45000.5}}
    assert ('budgeted."101-1410-5740"', "101-1410-5740") in pol.budget_line_refs()
    for bad, key in (({"kpi_targets": {"speed": 1}}, "cities.x.policy.kpi_targets.speed"),
                     ({"kpi_targets": {"patched": "high"}}, "cities.x.policy.kpi_targets.patched"),
                     ({"budgeted": {"101": {"next": 5}}}, 'cities.x.policy.budgeted."101".next')):
        with pytest.raises(ConfigError) as exc:
            _parse(bad, "cities.x.policy")
        assert exc.value.key == key


def test_capital_flag_follows_the_citys_threshold():
    """The shipped classes are capital or not by the city's threshold, not the shipped $5,000."""
    high = parse_policy({"capitalization_threshold": 10000}, P)
    assert not high.refresh_for("server").capital  # $9,000 < $10,000
    assert high.refresh_for("switch", tags=["core"]).capital  # $20,000
    low = parse_policy({"capitalization_threshold": 1000}, P)
    assert low.refresh_for("workstation").capital  # $1,200 >= $1,000
    assert not Policy(capitalization_threshold=10000).refresh_for("server").capital
    # An explicit flag still wins, and a department's cheaper rule is judged by the same threshold.
    pol = parse_policy(
        {
            "capitalization_threshold": 10000,
            "refresh": {"server": {"capital": True}},
            "departments": {"police": {"refresh": {"server": {"cost": 4000}}}},
        },
        P,
    )
    assert pol.refresh_for("server").capital and not pol.refresh_for("server", "police").capital


def test_pay_line_is_one_precedence_for_replacements_and_operating_money():
    pol = parse_policy(
        {
            "capital_budget_line": "101-1410-5740",
            "operating_budget_line": "101-1410-5310",
            "departments": {
                "police": {"budget_line": "101-2110-5740", "operating_budget_line": "101-2110-5310"},
                "water": {"budget_line": "601-7110-5740"},
            },
        },
        P,
    )
    pol.line_kinds = {"601-7110-5740": "capital", "601-7110-5310": "operating"}
    server = pol.refresh_for("server", "police")
    # Replacement: the asset register's line first, then the policy's line for the class.
    assert pol.pay_line("replacement", rule=server, device_line="601-7110-5740") == "601-7110-5740"
    assert pol.pay_line("replacement", rule=server) == "101-2110-5740"
    # A PC under the threshold is operating money: the department's operating line when it has one.
    assert pol.refresh_for("workstation", "police").budget_line == "101-2110-5310"
    # ... never a capital line: Water has only a capital line, so its PC is paid by the city's operating line.
    assert pol.refresh_for("workstation", "water").budget_line == "101-1410-5310"
    line, source = pol.line_for(False, cls="workstation", department="water")
    assert line == "101-1410-5310" and "(601-7110-5740) is a capital line" in source
    # A capital item is never paid from an operating line, even the register's.
    assert pol.line_for(True, cls="server", department="water", device_line="601-7110-5310")[0] == "601-7110-5740"
    # Staff time: never the department's capital line; the register's line only when it is not capital.
    assert pol.operating_line("police") == "101-2110-5310"
    assert pol.operating_line("water") == "101-1410-5310"
    assert pol.operating_line("water", device_line="601-7110-5740") == "101-1410-5310"
    assert pol.operating_line("water", device_line="601-7110-5310") == "601-7110-5310"
    with pytest.raises(ValueError):
        pol.pay_line("replacement")


def test_staff_time_for_police_devices_goes_to_an_operating_line():
    """With the shipped example config, a check's labour cost for a Police device lands on an
    operating line (it went to "101-2110-5740 Police equipment", which the summary labels capital)."""
    from pathlib import Path

    from checks._common import labour, replacement
    from itaudit.checking import CheckContext, DeviceRecord
    from itaudit.config import load
    from itaudit.model import DeviceFacts

    cfg = load(Path(__file__).resolve().parents[1] / "config.example.toml", env={})
    city = cfg.cities["springfield"]
    kinds = {a: b.kind for a, b in city.budget_lines.items()}
    ctx = CheckContext(as_of=dt.date(2026, 10, 1), device=DeviceRecord(kind="server", department="Police"),
                       policy=city)
    cost = labour(ctx, "os_upgrade", "upgrade the operating system")
    assert cost.kind == "operating" and kinds[cost.budget_line] == "operating"
    assert cost.budget_line == "101-2110-5310"
    # A device the register puts on a capital line still gets its staff time from an operating line.
    ctx.device.budget_line = "101-2110-5740"
    assert kinds[labour(ctx, "patch", "patch").budget_line] == "operating"
    facts = DeviceFacts()
    facts.identity.kind = "server"
    assert replacement(facts, ctx, "old").budget_line == "101-2110-5740"
    for dept in [None, *city.policy.departments]:
        assert kinds[city.policy.operating_line(dept)] == "operating", dept


def test_config_refuses_a_capital_line_as_an_operating_line(tmp_path):
    from itaudit.config import load

    path = tmp_path / "c.toml"
    path.write_text(
        '[settings]\ndata_dir = "d"\n[cities.x]\nname = "X"\n'
        '[cities.x.budget_lines."101-2110-5740"]\nname = "Police equipment"\nkind = "capital"\n'
        '[cities.x.policy.departments.police]\noperating_budget_line = "101-2110-5740"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as exc:
        load(path, env={})
    assert exc.value.key == "cities.x.policy.departments.police.operating_budget_line"
    assert "capital line" in str(exc.value)

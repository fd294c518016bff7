"""The demo's recorded directory (a real Samba AD DC read, itaudit/data/demo_directory.json)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from collectors.directory import FORBIDDEN, RECORDING_FORMAT, recorded_read, search_attributes
from itaudit.errors import ProtocolError
from itaudit.knowledge import shipped_data_dir

DOC = json.loads((shipped_data_dir() / "demo_directory.json").read_text(encoding="utf-8"))


def test_recording_holds_only_what_the_collector_asks_for():
    assert DOC["format"] == RECORDING_FORMAT
    allowed = {a.lower() for a in search_attributes(DOC["laps_source"])} | {"name"}
    seen = {k.lower() for e in DOC["entries"] for k in e["attributes"]}
    assert seen <= allowed and not seen & FORBIDDEN
    text = json.dumps(DOC)
    assert "LapsSecret" not in text and "RecoveryPassword" not in text


def test_replayed_dates_move_with_the_as_of_date():
    recorded = dt.date.fromisoformat(DOC["recorded_on"])
    now = recorded_read(DOC, recorded)
    later = recorded_read(DOC, recorded + dt.timedelta(days=100))
    assert len(now.computers) == len(later.computers) >= 150
    for a, b in zip(now.computers, later.computers, strict=True):
        assert a.directory.name == b.directory.name
        if a.directory.created:
            assert b.directory.created - a.directory.created == dt.timedelta(days=100)
        if a.directory.last_logon:
            assert b.directory.last_logon - a.directory.last_logon == dt.timedelta(days=100)
        if a.directory.laps_expires:
            assert b.directory.laps_expires - a.directory.laps_expires == dt.timedelta(days=100)
    assert now.recovery_objects and sum(f.directory.bitlocker_keys or 0 for f in now.computers) == \
        now.recovery_objects


def test_not_a_recording_is_refused():
    with pytest.raises(ProtocolError, match="not a directory recording"):
        recorded_read({"format": "something else"}, dt.date(2026, 1, 1))

"""Schedule versions on SQLite and PostgreSQL: immutable, diffed, current per channel-day."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from epg.errors import NoScheduleError, ScheduleRejected
from epg.xmltv import check_schema
from tests.epg.conftest import DAY, G03, World, good_day


def xmltv_bytes(world: World) -> bytes:
    return world.services.xmltv.export([G03], DAY, 7).body


def test_versions_record_who_when_checksum_and_diff(world: World) -> None:
    first = world.csv(good_day(), "v1.csv")
    v1 = world.load(first, who="张工")
    rows = good_day()
    rows[6][4] = "L4"  # 09:10 lesson changes from L3 to L4
    world.clock.advance(3600)
    v2 = world.load(world.csv(rows, "v2.csv"), who="李工")
    assert v2 > v1

    current = world.services.schedules.current(G03, DAY)
    assert current is not None and current.version == v2
    history = world.services.schedules.history(G03, DAY)
    assert [v.number for v in history] == [v2, v1]
    newest = history[0]
    assert newest.created_by == "李工"
    assert newest.source_name == "v2.csv"
    assert newest.source_sha256 == hashlib.sha256((world.tmp / "v2.csv").read_bytes()).hexdigest()
    assert newest.created_at == world.clock.now()
    diff = newest.diffs[0]
    assert diff.previous_version == v1
    assert diff.removed == ("09:10:00.00 lesson L3",)
    assert diff.added == ("09:10:00.00 lesson L4",)
    assert history[1].diffs[0].previous_version is None


def test_refused_load_changes_nothing(world: World) -> None:
    world.load(world.csv(good_day(), "v1.csv"))
    before_stamp = world.services.schedules.stamp()
    before_xml = xmltv_bytes(world)
    assert check_schema(before_xml) == []  # independent judge: XMLTV schema (py-xmltv xmltv.xsd)
    rows = good_day()
    rows[6][4] = "L4"  # a change that would show in the guide …
    rows.append([G03, DAY.isoformat(), "09:15:00", "ad", "AD1", "", ""])  # … and a bad ad
    with pytest.raises(ScheduleRejected):
        world.load(world.csv(rows, "bad.csv"))
    assert world.services.schedules.stamp() == before_stamp
    assert [v.number for v in world.services.schedules.history(G03, DAY)] == [before_stamp]
    assert xmltv_bytes(world) == before_xml


def test_rollback_restores_an_earlier_version_as_a_new_one(world: World) -> None:
    v1 = world.load(world.csv(good_day(), "v1.csv"))
    original = xmltv_bytes(world)
    rows = good_day()
    rows[7][2] = "20:00:00"
    v2 = world.load(world.csv(rows, "v2.csv"))
    assert xmltv_bytes(world) != original
    store = world.services.schedules
    v3 = store.rollback(G03, DAY, to=None, created_by="值班员", at=world.clock.now())
    assert v3.number > v2
    assert f"to v{v1}" in v3.note
    assert xmltv_bytes(world) == original
    assert [v.number for v in store.history(G03, DAY)] == [v3.number, v2, v1]
    with pytest.raises(NoScheduleError):
        store.rollback(G03, DAY, to=999, created_by="x", at=world.clock.now())
    with pytest.raises(NoScheduleError):
        store.rollback(G03, DAY + timedelta(days=30), to=None, created_by="x", at=world.clock.now())


def test_partners_keys_are_hashed_and_revocable(world: World) -> None:
    partners = world.services.partners
    partner, key = partners.add("湖北广电", [G03], at=world.clock.now())
    assert partner.channels == (G03,)
    found = partners.authenticate(key)
    assert found is not None and found.name == "湖北广电"
    assert partners.authenticate(key + "x") is None
    from sqlalchemy import text

    with world.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_sha256 FROM epg_partner")).scalar_one()
    assert stored == hashlib.sha256(key.encode()).hexdigest() and key not in stored
    partners.revoke("湖北广电", at=world.clock.now())
    assert partners.authenticate(key) is None
    _again, new_key = partners.add("湖北广电", [G03], at=world.clock.now())
    assert partners.authenticate(new_key) is not None and new_key != key

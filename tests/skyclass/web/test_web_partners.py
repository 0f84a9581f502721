"""Partner keys over real HTTP: created by an admin, shown once, isolated to /epg/…, revocable."""

from __future__ import annotations

import httpx
from conftest import Served
from lxml import etree
from web_world import DAY, G03, G07, good_day, login


def test_partner_keys_open_the_guide_only(served: Served) -> None:
    world = served.world
    world.epg.importer.load(world.csv(good_day()), created_by="op", at=world.clock.now())
    with login(served.base, "adm") as admin:
        created = admin.post("/api/partners", json={"name": "湖北广电", "channels": [G03]})
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        listed = admin.get("/api/partners").json()
        assert [p["name"] for p in listed] == ["湖北广电"]
        assert key not in admin.get("/api/partners").text  # shown once, never listed
        page = admin.get("/console/partners")
        assert key not in page.text

    with httpx.Client(base_url=served.base, timeout=30, headers={"X-API-Key": key}) as partner:
        guide = partner.get(f"/epg/{G03}.xml", params={"from": DAY.isoformat()})
        assert guide.status_code == 200
        # independent judge: lxml parses the XMLTV the key opened
        assert etree.fromstring(guide.content).tag == "tv"
        assert partner.get(f"/epg/{G07}.xml").status_code == 403  # not its channel
        # The key opens nothing else: no API call, no page, no metrics.
        for path in ("/api/status", "/api/session", "/api/partners", "/api/assets"):
            assert partner.get(path).status_code == 401, path
        assert (
            partner.post("/api/partners", json={"name": "x", "channels": [G03]}).status_code == 401
        )
        page = partner.get("/console/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert partner.get("/metrics").status_code == 401

    # A console session does not open the guide either: that needs a partner key.
    with login(served.base, "op") as op:
        assert op.get(f"/epg/{G03}.xml").status_code == 401

    with login(served.base, "adm") as admin:
        revoked = admin.post("/api/partners/湖北广电/revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    with httpx.Client(base_url=served.base, timeout=30, headers={"X-API-Key": key}) as partner:
        assert partner.get(f"/epg/{G03}.xml").status_code == 401
    actions = [(e.action, e.target, e.actor) for e in _audit(served)]
    assert ("partner.create", "湖北广电", "adm") in actions
    assert ("partner.revoke", "湖北广电", "adm") in actions
    assert all(key not in str(e.detail) for e in _audit(served))


def test_bad_partner_requests_are_clear(served: Served) -> None:
    with login(served.base, "adm") as admin:
        unknown = admin.post("/api/partners", json={"name": "某台", "channels": ["nope.example"]})
        assert unknown.status_code == 400 and "unknown channel" in unknown.json()["detail"]
        assert admin.post("/api/partners", json={"name": "某台", "channels": []}).status_code == 422
        first = admin.post("/api/partners", json={"name": "某台", "channels": [G03]})
        assert first.status_code == 201
        twice = admin.post("/api/partners", json={"name": "某台", "channels": [G03]})
        assert twice.status_code == 400 and "revoke it first" in twice.json()["detail"]
        missing = admin.post("/api/partners/无此台/revoke")
        assert missing.status_code == 400 and "no partner" in missing.json()["detail"]


def _audit(served: Served) -> list:  # type: ignore[type-arg]
    from skyclass.web.audit import AuditLog

    return AuditLog(served.world.sessions()).list()

"""Access control over real HTTP: nothing without login, each role only its own pages and actions.

Every route is enumerated from the app itself, so a route added later without a
guard fails here. Runs on SQLite and on PostgreSQL (sessions live in the database).
Independent judge: FastAPI's own route table says what exists; httpx talks to uvicorn
over a loopback socket, as a browser or script would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Served
from fastapi.routing import APIRoute
from web_world import DAY, G03, USERS, login

from skyclass.web.auth import Permission, may
from skyclass.web.users import Role

PARAMS = {
    "channel_id": G03,
    "ref": "L1",
    "number": "1",
    "seq": "0",
    "day": DAY.isoformat(),
    "name": "nobody",
    "index": "0",
    "finding_id": "f1",
}


def _permission(dependant: Any) -> Permission | str | None:
    for dep in dependant.dependencies:
        found = getattr(dep.call, "permission", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        if getattr(dep.call, "__name__", "") == "logged_in":
            return "any"
        deeper = _permission(dep)
        if deeper is not None:
            return deeper
    return None


def api_routes(routes: Any) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps those as branches)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


def guarded(app: Any) -> Iterator[tuple[str, str, Permission | str | None]]:
    """(method, concrete path, permission) of every console page and API route."""
    for route in api_routes(app.routes):
        if not route.path.startswith(("/api/", "/console")) or route.path == "/api/login":
            continue
        path = route.path
        for key, value in PARAMS.items():
            path = path.replace("{" + key + "}", value)
        assert "{" not in path, f"add a sample value for {route.path}"
        for method in sorted(route.methods - {"HEAD"}):
            yield method, path, _permission(route.dependant)


def test_nothing_is_reachable_without_login(served: Served) -> None:
    routes = list(guarded(served.app))
    assert len(routes) > 40  # every page and call, not a handful
    with httpx.Client(base_url=served.base, timeout=30) as anonymous:
        for method, path, _perm in routes:
            answer = anonymous.request(method, path, follow_redirects=False)
            if path.startswith("/api/"):
                assert answer.status_code == 401, (method, path, answer.text)
                assert "log in" in answer.json()["detail"]
            else:
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/login?next="), path
        # Unknown paths, malformed bodies and a forged cookie tell an anonymous caller nothing.
        assert anonymous.get("/api/no-such-thing").status_code == 401
        assert anonymous.post("/api/partners", content=b"{not json").status_code == 401
        anonymous.cookies.set("skyclass_session", "forged")
        assert anonymous.get("/api/status").status_code == 401
        page = anonymous.get("/console/assets?q=x", follow_redirects=False)
        assert page.headers["location"] == "/login?next=%2Fconsole%2Fassets%3Fq%3Dx"


@pytest.mark.parametrize("name", sorted(USERS))
def test_each_role_reaches_only_its_own_pages_and_actions(served: Served, name: str) -> None:
    role = USERS[name]
    routes = list(guarded(served.app))
    with login(served.base, name) as client:
        for method, path, perm in routes:
            if path in ("/api/logout", "/logout"):
                continue
            allowed = perm == "any" or (isinstance(perm, Permission) and may(role, perm))
            if method != "GET" and allowed:
                continue  # changes a permitted role makes are tested where they belong
            answer = client.request(method, path, follow_redirects=False)
            if allowed:
                assert answer.status_code not in (401, 403), (name, method, path, answer.text)
            else:
                assert answer.status_code == 403, (name, method, path, answer.status_code)
                assert "无权限" in answer.text, (name, path)


def test_the_role_map_matches_the_issue() -> None:
    """Only an operator publishes, only a reviewer approves, only an admin manages keys."""
    for role in Role:
        assert may(role, Permission.SCHEDULE_EDIT) == (role is Role.OPERATOR)
        assert may(role, Permission.ASSETS_REVIEW) == (role is Role.REVIEWER)
        assert may(role, Permission.PARTNERS_MANAGE) == (role is Role.ADMIN)
        assert may(role, Permission.FINDINGS_VIEW) == (role is Role.COMPLIANCE)


def test_forbidden_changes_change_nothing(served: Served) -> None:
    world = served.world
    stamp = world.epg.schedules.stamp()
    csv_bytes = world.csv([]).read_bytes()
    with login(served.base, "rev") as reviewer:
        refused = reviewer.post(
            "/api/schedule/publish", files={"file": ("week.csv", csv_bytes, "text/csv")}
        )
        assert refused.status_code == 403
    with login(served.base, "op") as operator:
        approve = operator.post(
            "/api/assets/LP/review",
            json={"approve": True, "political": True, "scientific": True, "normative": True},
        )
        assert approve.status_code == 403
        key = operator.post("/api/partners", json={"name": "湖北广电", "channels": [G03]})
        assert key.status_code == 403
    assert world.epg.schedules.stamp() == stamp
    assert world.epg.assets.get("LP").review_state.value == "pending"
    assert world.epg.partners.list() == []


def test_errors_under_cacheable_paths_are_not_cacheable(served: Served) -> None:
    """/epg/, /static/ and /fonts/ answers may sit in a CDN; their errors may not
    (a cached 404 or 405 would outlive the fix). No outside judge: the header is read."""
    with httpx.Client(base_url=served.base, timeout=30) as anonymous:
        for method, path in (("GET", "/epg/no/such/guide"), ("POST", "/epg/xmltv.xml"),
                             ("GET", "/static/no-such-file.css")):  # fmt: skip
            answer = anonymous.request(method, path)
            assert answer.status_code >= 400, (method, path)
            assert answer.headers["cache-control"] == "no-store", (method, path)
        style = anonymous.get("/static/console.css")  # while a success there stays cacheable
        assert style.status_code == 200 and style.headers.get("cache-control") != "no-store"

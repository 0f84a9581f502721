"""Every page: served by skyclass alone (nothing from the internet), Chinese first, guarded.

Independent judge: lxml parses each page and lists every src, href and form action.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Served
from lxml import html as lxml_html
from sqlalchemy.orm import sessionmaker
from web_world import USERS, login

import skyclass.web
from skyclass.web.auth import may
from skyclass.web.console import NAV
from skyclass.web.sessions import SessionStore
from skyclass.web.users import UserStore

STATIC = Path(skyclass.web.__file__).with_name("static")


def test_pages_load_nothing_from_elsewhere(served_lite: Served) -> None:
    seen = 0
    for name, role in USERS.items():
        with login(served_lite.base, name) as client:
            for href, zh, en, permission in NAV:
                if not may(role, permission):
                    continue
                page = client.get(href)
                assert page.status_code == 200, (name, href)
                assert "default-src 'self'" in page.headers["content-security-policy"]
                assert page.headers["x-frame-options"] == "DENY"
                assert page.headers["cache-control"] == "no-store"
                tree = lxml_html.fromstring(page.text)
                links = tree.xpath("//@src | //@href | //@action")
                outside = [u for u in links if u.startswith(("http:", "https:", "//"))]
                assert outside == [], (href, outside)
                assert tree.xpath("//script/@src") == ["/static/console.js"]
                assert not [s for s in tree.xpath("//script") if (s.text or "").strip()]
                assert f"{zh} <small>{en}</small>" in page.text  # Chinese first
                seen += 1
    assert seen == sum(1 for r in USERS.values() for *_x, p in NAV if may(r, p))
    assert (STATIC / "console.js").stat().st_size < 1_000_000
    assert "http" not in (STATIC / "console.css").read_text().replace("https://", "")


def test_the_cjk_font_is_served_from_the_installed_wheel(served_lite: Served) -> None:
    with login(served_lite.base, "op") as client:
        font = client.get("/fonts/cjk.otf")
    assert font.status_code == 200 and font.content[:4] == b"OTTO"  # OpenType (CFF) magic
    assert "max-age" in font.headers["cache-control"]


def test_passwd_logs_the_user_out_everywhere(
    served_lite: Served, cli: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    """`skyclass users passwd` ends the user's sessions (same database as the server)."""
    world = served_lite.world
    monkeypatch.setenv("SKYCLASS_DATABASE_URL", str(world.engine.url))
    monkeypatch.setenv("SKYCLASS_PASSWORD", "a brand new password")
    with login(served_lite.base, "op") as client:
        assert client.get("/api/session").status_code == 200
        changed = cli("users", "passwd", "op")
        assert changed.code == 0, changed.stderr
        assert "1 session(s) logged out" in changed.stdout
        assert client.get("/api/session").status_code == 401
    sessions: sessionmaker[Any] = world.sessions()
    user = UserStore(sessions).get("op")
    assert user is not None and SessionStore(sessions).close_all(user) == 0
    with login(served_lite.base, "op", "a brand new password") as client:
        assert client.get("/api/session").json()["user"] == "op"


def test_serve_and_users_are_commands(cli: Any) -> None:
    for args in (("serve", "--help"), ("users", "--help"), ("users", "add", "--help")):
        result = cli(*args)
        assert result.code == 0, result.stderr
    assert "--metrics-token" in cli("serve", "--help").stdout

"""Logins over real HTTP: cookie flags, CSRF, the failed-login throttle, expiry, hashing.

Independent judges: the standard library's SimpleCookie parses Set-Cookie; argon2-cffi's
verifier checks the stored hashes; the throttle's expiry runs on a frozen clock.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
from conftest import Served
from sqlalchemy import text
from web_world import G03, PASSWORD, form_token, login, serve

from skyclass.web import create_app
from skyclass.web.sessions import ThrottlePolicy


def _cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    """Parsed with the standard library, not with our own code."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    (name, morsel), *_ = jar.items()
    flags = {k.lower(): str(v) for k, v in morsel.items() if v}
    return name, flags


def test_session_cookie_is_httponly_samesite_and_secure_behind_https(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as client:
        plain = client.post("/api/login", json={"name": "op", "password": PASSWORD})
        assert plain.status_code == 200
        name, flags = _cookie_attributes(plain.headers["set-cookie"])
        assert name == "skyclass_session"
        assert flags.get("httponly") and flags.get("samesite", "").lower() == "lax"
        assert "secure" not in flags  # plain HTTP: a Secure cookie would never come back
        behind_tls = client.post(
            "/api/login",
            json={"name": "op", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        _name, tls_flags = _cookie_attributes(behind_tls.headers["set-cookie"])
        assert tls_flags.get("secure") and tls_flags.get("httponly")
        assert tls_flags.get("samesite", "").lower() == "lax"

        # The HTML login form sets the same flags, and its own CSRF cookie is HttpOnly too.
        form = client.get("/login")
        _n, csrf_flags = _cookie_attributes(form.headers["set-cookie"])
        assert csrf_flags.get("httponly") and csrf_flags.get("samesite", "").lower() == "strict"
        answer = client.post(
            "/login",
            data={"name": "op", "password": PASSWORD, "csrf_token": form_token(form.text)},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        _n, page_flags = _cookie_attributes(answer.headers["set-cookie"])
        assert page_flags.get("httponly") and page_flags.get("samesite", "").lower() == "lax"

        # A cross-site form can only send text/plain or form bodies: the API login refuses
        # them, so another site cannot log a browser into an account of its choosing.
        client.cookies.clear()
        forged = client.post(
            "/api/login",
            content=f'{{"name": "op", "password": "{PASSWORD}"}}'.encode(),
            headers={"Content-Type": "text/plain"},
        )
        assert forged.status_code == 422 and "set-cookie" not in forged.headers


def test_wrong_passwords_are_rate_limited_per_name_and_the_limit_expires(served: Served) -> None:
    clock = served.world.clock
    limit = ThrottlePolicy().per_user
    with httpx.Client(base_url=served.base, timeout=30) as client:
        for _ in range(limit):
            wrong = client.post("/api/login", json={"name": "op", "password": "wrong password"})
            assert wrong.status_code == 401
        # Locked now: even the right password is refused, without being checked.
        locked = client.post("/api/login", json={"name": "op", "password": PASSWORD})
        assert locked.status_code == 429, locked.text
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
        assert "登录失败次数过多" in locked.json()["detail"]
        # Another user from the same address is not locked by op's failures.
        assert (
            client.post("/api/login", json={"name": "rev", "password": PASSWORD}).status_code == 200
        )
        # The HTML form answers 429 as well.
        client.cookies.clear()
        form = client.get("/login")
        page = client.post(
            "/login",
            data={"name": "op", "password": PASSWORD, "csrf_token": form_token(form.text)},
        )
        assert page.status_code == 429 and "登录失败次数过多" in page.text
        clock.advance(15 * 60 + 1)  # the window passes
        assert (
            client.post("/api/login", json={"name": "op", "password": PASSWORD}).status_code == 200
        )


def test_wrong_passwords_are_rate_limited_per_address(served: Served) -> None:
    # A smaller policy than the default 20 per address: the same code, fewer argon2 checks.
    policy = ThrottlePolicy(per_user=3, per_address=6)
    app = create_app(served.world, throttle=policy)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        for n in range(policy.per_address):
            answer = client.post("/api/login", json={"name": f"guess{n}", "password": "x" * 9})
            assert answer.status_code == 401
        locked = client.post("/api/login", json={"name": "adm", "password": PASSWORD})
        assert locked.status_code == 429
        served.world.clock.advance(16 * 60)
        again = client.post("/api/login", json={"name": "adm", "password": PASSWORD})
        assert again.status_code == 200


def test_a_form_post_without_csrf_is_refused_and_changes_nothing(served: Served) -> None:
    world = served.world
    with login(served.base, "adm") as admin:
        page = admin.get("/console/partners")
        token = form_token(page.text)
        del admin.headers["X-CSRF-Token"]  # a browser form, as a forging site would send it
        forged = admin.post("/console/partners", data={"name": "伪造", "channels": G03})
        assert forged.status_code == 403 and "CSRF" in forged.text
        wrong = admin.post(
            "/console/partners", data={"name": "伪造", "channels": G03, "csrf_token": "x" * 43}
        )
        assert wrong.status_code == 403
        assert world.epg.partners.list() == []
        # The API refuses a change without the header just the same.
        api = admin.post("/api/partners", json={"name": "伪造", "channels": [G03]})
        assert api.status_code == 403 and "CSRF" in api.json()["detail"]
        assert world.epg.partners.list() == []
        # With the page's token the same post works.
        done = admin.post(
            "/console/partners", data={"name": "湖北广电", "channels": G03, "csrf_token": token}
        )
        assert done.status_code == 200 and "只显示这一次" in done.text
        assert [p.name for p in world.epg.partners.list()] == ["湖北广电"]
    with httpx.Client(base_url=served.base, timeout=30) as anonymous:
        anonymous.get("/login")
        no_token = anonymous.post("/login", data={"name": "op", "password": PASSWORD})
        assert no_token.status_code == 403  # the login form is protected too (double submit)


def test_logout_and_expiry_end_the_session(served: Served) -> None:
    with login(served.base, "op") as client:
        assert client.get("/api/session").status_code == 200
        served.world.clock.advance(12 * 3600 + 1)
        assert client.get("/api/session").status_code == 401
    with login(served.base, "op") as client:
        assert client.post("/api/logout").status_code == 204
        assert client.get("/api/status").status_code == 401
    entries = [(e.actor, e.action) for e in _audit(served)]
    assert ("op", "session.login") in entries and ("op", "session.logout") in entries


def test_passwords_are_stored_as_argon2_hashes(served: Served) -> None:
    from argon2 import PasswordHasher

    with served.world.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, password_hash FROM console_user")).all()
        tokens = conn.execute(text("SELECT token_sha256 FROM console_session")).all()
    assert len(rows) == 4
    for _name, digest in rows:
        assert digest.startswith("$argon2id$") and PASSWORD not in digest
        assert PasswordHasher().verify(digest, PASSWORD)
    assert tokens == []  # nobody logged in yet
    with login(served.base, "op") as client:
        cookie = client.cookies["skyclass_session"]
    with served.world.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_sha256 FROM console_session")).scalars().all()
    assert cookie not in stored and len(stored) == 1  # only the hash of the cookie


def _audit(served: Served) -> list:  # type: ignore[type-arg]
    from skyclass.web.audit import AuditLog

    return AuditLog(served.world.sessions()).list()
